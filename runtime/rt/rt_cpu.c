/* rt_cpu.c — which QKC_AOT_FEAT_* the running CPU (and the OS) offers,
 * for picking the version of a kernel that runs here.
 *
 * x86-64: cpuid for the instructions, xgetbv for the register state the
 * OS saves (a CPU with AVX-512 under an OS that does not save the ZMM
 * registers must not run AVX-512 code). AMX tiles also need the Linux
 * permission request (arch_prctl ARCH_REQ_XCOMP_PERM); AMX_INT8 is only
 * reported when it is granted. AArch64: getauxval(AT_HWCAP).
 *
 * The result is detected once per process and kept in a static atomic:
 * a write-once cache (two threads racing both store the same value). */
#include "runtime/rt/rt_internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#if defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__aarch64__)
#include <sys/auxv.h>
#endif

#if defined(__x86_64__)
static void cpuid(unsigned leaf, unsigned sub, unsigned r[4])
{
    __asm__ __volatile__("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

static uint64_t xgetbv0(void)
{
    unsigned lo, hi;
    __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

#define BIT(v, n) (((v) >> (n)) & 1u)

/* Asks Linux for the AMX tile data state (XFEATURE_XTILEDATA = 18);
 * without it the first tile instruction faults. */
static int amx_permitted(void)
{
#if defined(SYS_arch_prctl)
    return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18) == 0;
#else
    return 0;
#endif
}

static int64_t detect(void)
{
    unsigned r[4], l7[4] = {0}, l71[4] = {0};
    cpuid(0, 0, r);
    unsigned max_leaf = r[0];
    cpuid(1, 0, r);
    unsigned ecx1 = r[2];
    if (max_leaf >= 7) {
        cpuid(7, 0, l7);
        if (l7[0] >= 1)
            cpuid(7, 1, l71);
    }
    uint64_t xcr0 = BIT(ecx1, 27) ? xgetbv0() : 0; /* OSXSAVE */
    int os_avx = BIT(ecx1, 28) && (xcr0 & 0x6) == 0x6;       /* XMM, YMM state */
    int os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0;         /* opmask, ZMM state */
    int os_amx = (xcr0 & 0x60000) == 0x60000;                /* tile config, tile data */
    int64_t m = 0;
    m |= BIT(ecx1, 23) ? QKC_AOT_FEAT_POPCNT : 0;
    m |= os_avx && BIT(ecx1, 12) ? QKC_AOT_FEAT_FMA : 0;
    m |= os_avx && BIT(l7[1], 5) ? QKC_AOT_FEAT_AVX2 : 0;
    m |= os_avx && BIT(l71[0], 4) ? QKC_AOT_FEAT_AVXVNNI : 0;
    if (os_avx512) {
        m |= BIT(l7[1], 16) ? QKC_AOT_FEAT_AVX512F : 0;
        m |= BIT(l7[1], 30) ? QKC_AOT_FEAT_AVX512BW : 0;
        m |= BIT(l7[1], 31) ? QKC_AOT_FEAT_AVX512VL : 0;
        m |= BIT(l7[2], 1) ? QKC_AOT_FEAT_AVX512VBMI : 0;
        m |= BIT(l7[2], 11) ? QKC_AOT_FEAT_AVX512VNNI : 0;
        m |= BIT(l7[2], 14) ? QKC_AOT_FEAT_VPOPCNTDQ : 0;
    }
    if (os_amx && BIT(l7[3], 25) && amx_permitted())
        m |= QKC_AOT_FEAT_AMX_INT8;
    return m;
}
#elif defined(__aarch64__)
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1UL << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
#ifndef HWCAP_SVE
#define HWCAP_SVE (1UL << 22)
#endif

static int64_t detect(void)
{
    unsigned long hw = getauxval(AT_HWCAP);
    int64_t m = 0;
    m |= hw & HWCAP_ASIMD ? QKC_AOT_FEAT_NEON : 0;
    m |= hw & HWCAP_ASIMDDP ? QKC_AOT_FEAT_DOTPROD : 0;
    m |= hw & HWCAP_SVE ? QKC_AOT_FEAT_SVE : 0;
    return m;
}
#else
static int64_t detect(void)
{
    return 0;
}
#endif

#define DETECTED ((int64_t)1 << 62) /* marks the cache as filled */

int64_t qkrt_cpu_features(void)
{
    static _Atomic int64_t cache;
    int64_t v = atomic_load_explicit(&cache, memory_order_acquire);
    if (!v) {
        v = detect() | DETECTED;
        atomic_store_explicit(&cache, v, memory_order_release);
    }
    return v & ~DETECTED;
}

static const struct {
    int64_t bit;
    const char *name;
} feature_names[] = {
    {QKC_AOT_FEAT_AVX2, "avx2"},
    {QKC_AOT_FEAT_FMA, "fma"},
    {QKC_AOT_FEAT_AVX512F, "avx512f"},
    {QKC_AOT_FEAT_AVX512BW, "avx512bw"},
    {QKC_AOT_FEAT_AVX512VL, "avx512vl"},
    {QKC_AOT_FEAT_AVX512VNNI, "avx512vnni"},
    {QKC_AOT_FEAT_AVXVNNI, "avxvnni"},
    {QKC_AOT_FEAT_AVX512VBMI, "avx512vbmi"},
    {QKC_AOT_FEAT_AMX_INT8, "amx-int8"},
    {QKC_AOT_FEAT_POPCNT, "popcnt"},
    {QKC_AOT_FEAT_VPOPCNTDQ, "vpopcntdq"},
    {QKC_AOT_FEAT_NEON, "neon"},
    {QKC_AOT_FEAT_DOTPROD, "dotprod"},
    {QKC_AOT_FEAT_SVE, "sve"},
};

void qkrt_features_text(int64_t mask, char *buf, size_t n)
{
    size_t len = 0;
    if (n)
        buf[0] = 0;
    for (size_t i = 0; i < sizeof feature_names / sizeof feature_names[0]; i++) {
        if (!(mask & feature_names[i].bit) || len >= n)
            continue;
        int w = snprintf(buf + len, n - len, "%s%s", len ? "," : "", feature_names[i].name);
        len += w > 0 ? (size_t)w : 0;
        mask &= ~feature_names[i].bit;
    }
    if (mask && len < n) /* bits this runtime has no name for */
        snprintf(buf + len, n - len, "%s0x%llx", len ? "," : "", (unsigned long long)mask);
    else if (!len && n)
        snprintf(buf, n, "none");
}

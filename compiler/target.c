/* target.c — target descriptions: what the tiled-IR builder and the tuner
 * know of a machine (vector width, registers, caches, cores; warp geometry
 * for GPUs). The host is read from CPU features and sysfs; AOT and GPU
 * targets come from presets. */
#include "compiler/tir.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__aarch64__)
#include <sys/auxv.h>
#endif

/* Reads a sysfs cache size such as "48K" or "2048K"; 0 if unreadable. */
static int64_t read_cache_size(int index)
{
    char path[96], buf[32];
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", index);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int64_t v = 0;
    if (fgets(buf, sizeof buf, f)) {
        char *end;
        v = strtoll(buf, &end, 10);
        if (*end == 'K')
            v *= 1024;
        else if (*end == 'M')
            v *= 1024 * 1024;
    }
    fclose(f);
    return v;
}

static int read_cache_level(int index, char *type, size_t n)
{
    char path[96], buf[32];
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", index);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int level = fgets(buf, sizeof buf, f) ? atoi(buf) : 0;
    fclose(f);
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", index);
    f = fopen(path, "r");
    type[0] = 0;
    if (f) {
        if (!fgets(type, (int)n, f))
            type[0] = 0;
        fclose(f);
    }
    return level;
}

static void read_caches(qk_target *t)
{
    for (int i = 0; i < 8; i++) {
        char type[32];
        int level = read_cache_level(i, type, sizeof type);
        if (level == 0)
            break;
        if (strncmp(type, "Instruction", 11) == 0)
            continue;
        int64_t size = read_cache_size(i);
        if (level == 1)
            t->l1 = size;
        else if (level == 2)
            t->l2 = size;
        else if (level == 3)
            t->l3 = size;
    }
}

static void cpu_preset(qk_target *t, const char *name, int bits, int regs)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->kind = QK_TARGET_CPU;
    t->vector_bits = bits;
    t->vector_regs = regs;
    t->l1 = 32 * 1024;
    t->l2 = 1024 * 1024;
    t->l3 = 8 * 1024 * 1024;
    t->line = 64;
    t->cores = 1;
}

/* NVIDIA GPU presets for work without a device (emit, PTX, tuning
 * legality); a context on a machine whose device has the same compute
 * capability reads the real figures from the driver instead (the CUDA
 * backend's describe hook). From NVIDIA's tuning guides:
 *   sm_80  A100: 108 SMs, L2 40 MB, 164 KB shared memory per SM (163 KB
 *          opt-in per block), 64K registers per SM and per block.
 *   sm_90  H100 SXM: 132 SMs, L2 50 MB, 228 KB per SM (227 KB opt-in),
 *          64K registers per SM and per block. (H200: the same SMs.) */
typedef struct gpu_spec {
    const char *name;
    int sm, sm_count, l2_mb, smem_per_sm_kb, smem_optin_kb;
} gpu_spec;

static const gpu_spec gpu_specs[] = {
    {"sm_80", 80, 108, 40, 164, 163},
    {"sm_90", 90, 132, 50, 228, 227},
};

static void gpu_preset(qk_target *t, const gpu_spec *g)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", g->name);
    t->kind = QK_TARGET_GPU;
    t->vector_bits = 32;
    t->vector_regs = 255;
    t->warp = 32;
    t->smem_per_block = 48 * 1024; /* without opt-in */
    t->regs_per_thread = 255;
    t->sm = g->sm;
    t->line = 128;
    t->l2 = (int64_t)g->l2_mb * 1024 * 1024;
    t->sm_count = g->sm_count;
    t->smem_per_sm = g->smem_per_sm_kb * 1024;
    t->smem_optin = g->smem_optin_kb * 1024;
    t->regs_per_sm = 65536;
    t->regs_per_block = 65536;
}

static int gpu_named(const char *name, qk_target *t)
{
    for (int i = 0; i < QK_COUNT(gpu_specs); i++)
        if (strcmp(name, gpu_specs[i].name) == 0) {
            gpu_preset(t, &gpu_specs[i]);
            return 0;
        }
    return -1;
}

/* CPU model name from /proc/cpuinfo ("" when unreadable). */
static void read_cpu_model(char *buf, size_t n)
{
    buf[0] = 0;
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0 && strncmp(line, "CPU part", 8) != 0)
            continue;
        char *v = strchr(line, ':');
        if (!v)
            continue;
        v++;
        while (*v == ' ' || *v == '\t')
            v++;
        v[strcspn(v, "\n")] = 0;
        snprintf(buf, n, "%s", v);
        break;
    }
    fclose(f);
}

#if defined(__x86_64__)
static unsigned x86_features(void)
{
    unsigned m = 0;
    __builtin_cpu_init();
#define QK_FEAT_CHECK(name, bit)                                                                                    \
    if (__builtin_cpu_supports(name))                                                                               \
        m |= bit;
    QK_FEAT_CHECK("avx2", QK_FEAT_AVX2)
    QK_FEAT_CHECK("fma", QK_FEAT_FMA)
    QK_FEAT_CHECK("avx512f", QK_FEAT_AVX512F)
    QK_FEAT_CHECK("avx512bw", QK_FEAT_AVX512BW)
    QK_FEAT_CHECK("avx512vl", QK_FEAT_AVX512VL)
    QK_FEAT_CHECK("avx512vnni", QK_FEAT_AVX512VNNI)
    QK_FEAT_CHECK("avx512vbmi", QK_FEAT_AVX512VBMI)
    QK_FEAT_CHECK("popcnt", QK_FEAT_POPCNT)
    QK_FEAT_CHECK("avx512vpopcntdq", QK_FEAT_VPOPCNTDQ)
#undef QK_FEAT_CHECK
    /* AVX-VNNI and AMX are newer than GCC 12's names: CPUID leaf 7. */
    unsigned a, b, c, d;
    __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(1));
    if (a & (1u << 4))
        m |= QK_FEAT_AVXVNNI;
    __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(0));
    if (d & (1u << 25))
        m |= QK_FEAT_AMX_INT8;
    return m;
}
#endif

#if defined(__aarch64__)
static unsigned arm_features(void)
{
    unsigned m = QK_FEAT_NEON;
    unsigned long hw = getauxval(AT_HWCAP);
    if (hw & (1ul << 20)) /* HWCAP_ASIMDDP */
        m |= QK_FEAT_DOTPROD;
    if (hw & (1ul << 22)) /* HWCAP_SVE */
        m |= QK_FEAT_SVE;
    return m;
}
#endif

/* QK_FEAT_* of the machine qkc runs on. */
static unsigned host_features(void)
{
#if defined(__x86_64__)
    return x86_features();
#elif defined(__aarch64__)
    return arm_features();
#else
    return 0;
#endif
}

void qk_target_host(qk_target *t)
{
#if defined(__x86_64__)
    unsigned feat = x86_features();
    if (feat & QK_FEAT_AVX512F)
        cpu_preset(t, "host", 512, 32);
    else if (feat & QK_FEAT_AVX2)
        cpu_preset(t, "host", 256, 16);
    else
        cpu_preset(t, "host", 128, 16);
    t->features = feat;
#elif defined(__aarch64__)
    cpu_preset(t, "host", 128, 32);
    t->features = arm_features();
#else
    cpu_preset(t, "host", 128, 16);
#endif
    read_cpu_model(t->cpu, sizeof t->cpu);
    read_caches(t);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    t->cores = n > 0 ? (int)n : 1;
}

/* "aarch64" followed by "+dotprod" and/or "+sve" in any order: a
 * Neoverse-N1-like core (128-bit NEON, 32 registers). The name is made
 * canonical ("aarch64+dotprod+sve"): it keys caches and tuning records.
 * -1 on an unknown suffix. */
static int aarch64_preset(const char *name, qk_target *t)
{
    unsigned feat = QK_FEAT_NEON;
    for (const char *p = name + strlen("aarch64"); *p;) {
        if (*p++ != '+')
            return -1;
        size_t n = strcspn(p, "+");
        if (n == strlen("dotprod") && strncmp(p, "dotprod", n) == 0)
            feat |= QK_FEAT_DOTPROD;
        else if (n == strlen("sve") && strncmp(p, "sve", n) == 0)
            feat |= QK_FEAT_SVE;
        else
            return -1;
        p += n;
    }
    cpu_preset(t, "aarch64", 128, 32);
    snprintf(t->name, sizeof t->name, "aarch64%s%s", feat & QK_FEAT_DOTPROD ? "+dotprod" : "",
             feat & QK_FEAT_SVE ? "+sve" : "");
    t->features = feat;
    t->l1 = 64 * 1024;
    t->l2 = 1024 * 1024;
    t->l3 = 32 * 1024 * 1024;
    return 0;
}

/* Presets:
 *   host                  the machine qkc runs on (qk_target_host)
 *   x86-64-v3             AVX2 + FMA, 256-bit vectors x 16 registers
 *   x86-64-v4             AVX-512 F/BW/VL, 512-bit vectors x 32 registers
 *   aarch64[+dotprod][+sve]  NEON, 128-bit vectors x 32 registers; +dotprod:
 *                         sdot/udot; +sve: SVE instructions on the same
 *                         128-bit fixed-length vectors. Caches of a
 *                         Neoverse N1 (L1 64K, L2 1M, L3 32M). Code for
 *                         these is emitted (qkc emit, AOT), never JIT-run
 *                         on another architecture.
 *   sm_80, sm_90          NVIDIA GPUs
 * x86 and aarch64 presets describe one core (cores = 1). */
int qk_target_named(const char *name, qk_target *t)
{
    if (!name || !*name || strcmp(name, "host") == 0)
        qk_target_host(t);
    else if (strncmp(name, "aarch64", strlen("aarch64")) == 0)
        return aarch64_preset(name, t);
    else if (strcmp(name, "x86-64-v3") == 0) {
        cpu_preset(t, name, 256, 16);
        t->features = QK_FEAT_AVX2 | QK_FEAT_FMA | QK_FEAT_POPCNT;
    } else if (strcmp(name, "x86-64-v4") == 0) {
        cpu_preset(t, name, 512, 32);
        t->features = QK_FEAT_AVX2 | QK_FEAT_FMA | QK_FEAT_POPCNT | QK_FEAT_AVX512F | QK_FEAT_AVX512BW |
                      QK_FEAT_AVX512VL;
    }
    else
        return gpu_named(name, t);
    return 0;
}

const char *const qk_target_presets[] = {"host", "x86-64-v3", "x86-64-v4", "aarch64", "sm_80", "sm_90", NULL};

void qk_target_print(const qk_target *t, qk_buf *out)
{
    if (t->kind == QK_TARGET_GPU) {
        qk_buf_printf(out,
                      "target %s: gpu sm_%d%s%s, %d SMs, warp %d, shared memory %d KiB per block (%d KiB opt-in), "
                      "%d KiB per SM, registers %d per SM, %d per block, %d per thread, L2 %lld MiB\n",
                      t->name, t->sm, t->cpu[0] ? " " : "", t->cpu, t->sm_count, t->warp, t->smem_per_block / 1024,
                      t->smem_optin / 1024, t->smem_per_sm / 1024, t->regs_per_sm, t->regs_per_block,
                      t->regs_per_thread, (long long)(t->l2 >> 20));
        return;
    }
    qk_buf_printf(out, "target %s: cpu, %d-bit vectors x %d registers, L1 %lld KiB, L2 %lld KiB, L3 %lld KiB, %d cores\n",
                  t->name, t->vector_bits, t->vector_regs, (long long)(t->l1 >> 10), (long long)(t->l2 >> 10),
                  (long long)(t->l3 >> 10), t->cores);
}

/* Names of the QK_FEAT_* bits, by bit. */
static const char *const feat_names[] = {
    "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512vnni", "avxvnni", "avx512vbmi", "amx-int8", "popcnt",
    "vpopcntdq", NULL, NULL, NULL, NULL, NULL, "neon", "dotprod", "sve"};

int qk_target_runs_here(const qk_target *t, char *why, size_t n)
{
    if (t->kind != QK_TARGET_CPU || strcmp(t->name, "host") == 0)
        return 1;
#if defined(__aarch64__)
    int here_arm = 1;
#else
    int here_arm = 0;
#endif
    int arm = (t->features & QK_FEAT_NEON) != 0;
    if (arm != here_arm) {
        snprintf(why, n, "target %s is for %s CPUs and this machine is not one: emit its code (qkc emit) or build it "
                 "ahead of time (qkc build) and run it there", t->name, arm ? "AArch64" : "x86-64");
        return 0;
    }
    unsigned missing = t->features & ~host_features();
    if (!missing)
        return 1;
    qk_buf b = {0};
    for (int i = 0; i < QK_COUNT(feat_names); i++)
        if ((missing & (1u << i)) && feat_names[i])
            qk_buf_printf(&b, "%s%s", b.len ? ", " : "", feat_names[i]);
    char *s = qk_buf_take(&b);
    snprintf(why, n, "target %s needs CPU features this machine lacks (%s)", t->name, s);
    free(s);
    return 0;
}

void qk_target_fingerprint(const qk_target *t, char *buf, size_t n)
{
    qk_buf b = {0};
    qk_buf_printf(&b, "%s|%s|%d-bit|", t->name, t->cpu[0] ? t->cpu : "-", t->vector_bits);
    int first = 1;
    for (int i = 0; i <= 10; i++) /* the x86 bits; the AArch64 ones follow (the text keys stored records) */
        if (t->features & (1u << i)) {
            qk_buf_printf(&b, "%s%s", first ? "" : ",", feat_names[i]);
            first = 0;
        }
    if (t->features & QK_FEAT_NEON)
        qk_buf_printf(&b, "%sneon", first ? "" : ",");
    if (t->features & QK_FEAT_DOTPROD)
        qk_buf_puts(&b, ",dotprod");
    if (t->features & QK_FEAT_SVE)
        qk_buf_puts(&b, ",sve");
    if (t->kind == QK_TARGET_GPU)
        qk_buf_printf(&b, "sm_%d", t->sm);
    qk_buf_printf(&b, "|L1=%lldK,L2=%lldK,L3=%lldK|cores=%d", (long long)(t->l1 >> 10), (long long)(t->l2 >> 10),
                  (long long)(t->l3 >> 10), t->cores);
    char *s = qk_buf_take(&b);
    snprintf(buf, n, "%s", s);
    free(s);
}

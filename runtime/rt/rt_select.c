/* rt_select.c — qkc_rt_select: which version of a kernel runs here.
 *
 * Without QKC_AOT_ISA, the first of k->variants (best first) that can
 * run: a CPU version whose QKC_AOT_FEAT_* this CPU has all of, or a CUDA
 * version where a CUDA driver with a device at least as new as the
 * version's PTX target is present (qkrt_cuda_runs: probed once per
 * process, so a CUDA version listed before the CPU ones wins on a machine
 * with a GPU it runs on, and is skipped on one without, or with an older
 * GPU).
 *
 * QKC_AOT_ISA (read once per process) names a version by its isa string
 * exactly; it is used if this CPU has its features, else the launch is
 * refused (never run code that would fault on an unknown instruction). A
 * forced CUDA version is taken as is: its launch reports a missing driver
 * or device. An isa that no version has is an error listing those there
 * are.
 *
 * The choice depends only on the kernel, the CPU, the driver probe and
 * the variable, each fixed for the process, so it is the same on every
 * call: "once per kernel" without a per-kernel cache. */
#include "runtime/rt/rt_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* QKC_AOT_ISA, copied once per process (a write-once cache). */
static pthread_once_t env_once = PTHREAD_ONCE_INIT;
static char env_isa[128];
static int env_state; /* 0 unset, 1 set, 2 set but too long for any isa */

static void read_env(void)
{
    const char *s = getenv("QKC_AOT_ISA");
    if (!s || !*s)
        return;
    env_state = strlen(s) < sizeof env_isa ? 1 : 2;
    snprintf(env_isa, sizeof env_isa, "%s", s);
}

/* "x86-64-v4 (avx2,fma,...), sm_90 (cuda)" into buf. */
static void list_variants(const qkc_aot_kernel *k, int with_features, char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = 0;
    for (int64_t i = 0; i < k->nvariants && len < n; i++) {
        const qkc_aot_variant *v = &k->variants[i];
        char feat[256] = "";
        if (v->kind == QKC_AOT_CUDA)
            snprintf(feat, sizeof feat, " (cuda)");
        else if (with_features) {
            char names[240];
            qkrt_features_text(v->features, names, sizeof names);
            snprintf(feat, sizeof feat, " (%s)", names);
        }
        int w = snprintf(buf + len, n - len, "%s%s%s", i ? ", " : "", v->isa ? v->isa : "?", feat);
        len += w > 0 ? (size_t)w : 0;
    }
}

static int cpu_runs(const qkc_aot_variant *v, int64_t cpu)
{
    return v->kind == QKC_AOT_CPU && v->entry && (v->features & ~cpu) == 0;
}

/* The version named by QKC_AOT_ISA. */
static int select_forced(const qkc_aot_kernel *k, const qkc_aot_variant **out, char *err, size_t errsz)
{
    char list[1024];
    for (int64_t i = 0; env_state == 1 && i < k->nvariants; i++) {
        const qkc_aot_variant *v = &k->variants[i];
        if (!v->isa || strcmp(v->isa, env_isa) != 0)
            continue;
        int64_t cpu = qkrt_cpu_features(), missing = v->features & ~cpu;
        if (v->kind == QKC_AOT_CPU && !v->entry)
            return qkrt_fail(err, errsz, QKC_RT_ERR_INTERNAL, "kernel '%s': version %s has no code", qkrt_name(k),
                             v->isa);
        if (v->kind == QKC_AOT_CPU && missing) {
            char need[256], have[256];
            qkrt_features_text(missing, need, sizeof need);
            qkrt_features_text(cpu, have, sizeof have);
            return qkrt_fail(err, errsz, QKC_RT_ERR_TARGET,
                             "QKC_AOT_ISA=%s needs %s which this CPU lacks (it has %s); kernel '%s' is built for %s",
                             env_isa, need, have, qkrt_name(k), (list_variants(k, 0, list, sizeof list), list));
        }
        *out = v;
        return QKC_RT_OK;
    }
    list_variants(k, 0, list, sizeof list);
    return qkrt_fail(err, errsz, QKC_RT_ERR_TARGET, "QKC_AOT_ISA=%s: kernel '%s' has no such version; it is built for %s",
                     env_isa, qkrt_name(k), list[0] ? list : "nothing");
}

/* None runs here: what the kernel was built for and what this machine has. */
static int none_runs(const qkc_aot_kernel *k, int64_t cpu, int has_cuda, char *err, size_t errsz)
{
    char list[1024], have[256], why[512] = "";
    list_variants(k, 1, list, sizeof list);
    qkrt_features_text(cpu, have, sizeof have);
    if (!has_cuda)
        return qkrt_fail(err, errsz, QKC_RT_ERR_TARGET,
                         "kernel '%s' has no version this CPU runs: it is built for %s; this CPU has %s", qkrt_name(k),
                         list[0] ? list : "nothing", have);
    for (int64_t i = 0; i < k->nvariants && !why[0]; i++) /* the first CUDA version's reason */
        if (k->variants[i].kind == QKC_AOT_CUDA)
            qkrt_cuda_runs(&k->variants[i], why, sizeof why);
    return qkrt_fail(err, errsz, QKC_RT_ERR_NO_DEVICE,
                     "kernel '%s' has no version that runs here: it is built for %s; this CPU has %s, and %s", qkrt_name(k),
                     list, have, why);
}

int qkrt_select(const qkc_aot_kernel *k, const qkc_aot_variant **out, char *err, size_t errsz)
{
    *out = NULL;
    if (!k)
        return qkrt_fail(err, errsz, QKC_RT_ERR_INVALID_ARG, "NULL kernel");
    if (!qkrt_abi_ok(k))
        return qkrt_bad_abi(k, err, errsz);
    if (k->nvariants < 0 || (k->nvariants > 0 && !k->variants))
        return qkrt_fail(err, errsz, QKC_RT_ERR_INTERNAL, "kernel '%s': damaged descriptor (variants)", qkrt_name(k));
    pthread_once(&env_once, read_env);
    if (env_state)
        return select_forced(k, out, err, errsz);
    int64_t cpu = qkrt_cpu_features();
    int has_cuda = 0;
    for (int64_t i = 0; i < k->nvariants; i++) {
        const qkc_aot_variant *v = &k->variants[i];
        has_cuda |= v->kind == QKC_AOT_CUDA;
        if (cpu_runs(v, cpu) || (v->kind == QKC_AOT_CUDA && qkrt_cuda_runs(v, NULL, 0))) {
            *out = v;
            return QKC_RT_OK;
        }
    }
    return none_runs(k, cpu, has_cuda, err, errsz);
}

const qkc_aot_variant *qkc_rt_select(const qkc_aot_kernel *k, char *err, size_t errsz)
{
    const qkc_aot_variant *v = NULL;
    if (qkrt_select(k, &v, err, errsz) != QKC_RT_OK)
        return NULL;
    return v;
}

/* llvm_target.c — LLVM target machines for qkc's targets: the host (its
 * CPU name and features from LLVM), the named x86 presets (the host's
 * triple, the preset name as the CPU) and the AArch64 presets (their own
 * triple: code for them is emitted, not run by the JIT). */
#include "backends/llvm/llvm_internal.h"

#include <string.h>

/* Converts an LLVMErrorRef into a message in err (consumes it). */
int llvm_take_error(LLVMErrorRef e, const char *what, char *err, size_t errsz)
{
    char *m = LLVMGetErrorMessage(e);
    snprintf(err, errsz, "%s: %s", what, m);
    LLVMDisposeErrorMessage(m);
    return -1;
}

/* AArch64 presets (not the host): a fixed triple, a CPU whose features
 * match the preset's, and the features spelled out. The AArch64 target is
 * initialized here, since only the native one is elsewhere (the calls are
 * idempotent). */
static void describe_aarch64(const qk_target *t, llvm_tm_desc *d)
{
    LLVMInitializeAArch64TargetInfo();
    LLVMInitializeAArch64Target();
    LLVMInitializeAArch64TargetMC();
    LLVMInitializeAArch64AsmPrinter();
    snprintf(d->triple, sizeof d->triple, "aarch64-unknown-linux-gnu");
    /* neoverse-n1 implies +dotprod (ARMv8.2); a plain preset stays generic */
    snprintf(d->cpu, sizeof d->cpu, "%s", t->features & QK_FEAT_DOTPROD ? "neoverse-n1" : "generic");
    qk_buf f = {0};
    qk_buf_puts(&f, "+neon");
    if (t->features & QK_FEAT_DOTPROD)
        qk_buf_puts(&f, ",+dotprod");
    if (t->features & QK_FEAT_SVE)
        qk_buf_puts(&f, ",+sve");
    d->features = qk_buf_take(&f);
}

int llvm_describe_target(const qk_target *t, llvm_tm_desc *d, char *err, size_t errsz)
{
    memset(d, 0, sizeof *d);
    if (t->kind != QK_TARGET_CPU) {
        snprintf(err, errsz, "the LLVM backend compiles CPU targets; '%s' is a GPU target", t->name);
        return -1;
    }
    if (strcmp(t->name, "host") != 0 && (t->features & QK_FEAT_NEON)) {
        describe_aarch64(t, d);
        return 0;
    }
    char *triple = LLVMGetDefaultTargetTriple();
    snprintf(d->triple, sizeof d->triple, "%s", triple);
    LLVMDisposeMessage(triple);
    if (strcmp(t->name, "host") == 0) {
        char *cpu = LLVMGetHostCPUName(), *feat = LLVMGetHostCPUFeatures();
        snprintf(d->cpu, sizeof d->cpu, "%s", cpu);
        d->features = qk_xstrdup(feat);
        LLVMDisposeMessage(cpu);
        LLVMDisposeMessage(feat);
    } else { /* presets: the CPU name carries the features; they are also
              * spelled out so the code generator sees them (has_feature) */
        static const struct {
            unsigned bit;
            const char *name;
        } x86[] = {{QK_FEAT_AVX2, "+avx2"},         {QK_FEAT_FMA, "+fma"},
                   {QK_FEAT_POPCNT, "+popcnt"},     {QK_FEAT_AVX512F, "+avx512f"},
                   {QK_FEAT_AVX512BW, "+avx512bw"}, {QK_FEAT_AVX512VL, "+avx512vl"},
                   {QK_FEAT_AVX512VNNI, "+avx512vnni"}, {QK_FEAT_AVX512VBMI, "+avx512vbmi"}};
        snprintf(d->cpu, sizeof d->cpu, "%s", t->name);
        qk_buf f = {0};
        for (size_t i = 0; i < QK_COUNT(x86); i++)
            if (t->features & x86[i].bit)
                qk_buf_printf(&f, "%s%s", f.len ? "," : "", x86[i].name);
        d->features = qk_buf_take(&f);
    }
    return 0;
}

LLVMTargetMachineRef llvm_make_tm(const llvm_tm_desc *d, char *err, size_t errsz)
{
    LLVMTargetRef target;
    char *msg = NULL;
    if (LLVMGetTargetFromTriple(d->triple, &target, &msg)) {
        snprintf(err, errsz, "no LLVM target for %s: %s", d->triple, msg ? msg : "?");
        LLVMDisposeMessage(msg);
        return NULL;
    }
    return LLVMCreateTargetMachine(target, d->triple, d->cpu, d->features, LLVMCodeGenLevelAggressive, LLVMRelocPIC,
                                   LLVMCodeModelJITDefault);
}


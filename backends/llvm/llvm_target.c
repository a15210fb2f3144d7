/* llvm_target.c — LLVM target machines for qkc's targets: the host (its
 * CPU name and features from LLVM) and the named presets. */
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

int llvm_describe_target(const qk_target *t, llvm_tm_desc *d, char *err, size_t errsz)
{
    memset(d, 0, sizeof *d);
    if (t->kind != QK_TARGET_CPU) {
        snprintf(err, errsz, "the LLVM backend compiles CPU targets; '%s' is a GPU target", t->name);
        return -1;
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
    } else { /* presets: the CPU name carries the features */
        snprintf(d->cpu, sizeof d->cpu, "%s", t->name);
        d->features = qk_xstrdup("");
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


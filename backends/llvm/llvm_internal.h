/* llvm_internal.h — the LLVM backend's internal interface. LLVM types never
 * appear outside backends/llvm/.
 *
 * llvm_codegen.c  tiled IR -> LLVM module
 * llvm_target.c   triples, CPUs and features of qkc's targets; target machines
 * llvm_jit.c      the pass pipeline, ORC LLJIT, emission of IR/asm text, and the
 *                 qk_backend_llvm hook table
 * llvm_aot.c      ahead-of-time objects: many kernels and ISAs in one
 *                 module with their qkc_aot_kernel descriptors */
#ifndef QK_LLVM_INTERNAL_H
#define QK_LLVM_INTERNAL_H

#include "backends/backend.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <stdlib.h>

/* Triple, CPU and features of a target, as strings LLVM takes. */
typedef struct llvm_tm_desc {
    char triple[64];
    char cpu[64];
    char *features; /* malloc'd */
} llvm_tm_desc;

/* llvm_codegen.c */
LLVMModuleRef llvm_gen_module(LLVMContextRef ctx, const tir_func *f, const char *symbol, const llvm_tm_desc *tm);

/* llvm_target.c */
/* Fills d for t (triple, CPU, features; d->features malloc'd). 0 or -1 + err. */
int llvm_describe_target(const qk_target *t, llvm_tm_desc *d, char *err, size_t errsz);
/* A target machine for d (its target must be initialized). NULL + err. */
LLVMTargetMachineRef llvm_make_tm(const llvm_tm_desc *d, char *err, size_t errsz);
/* Converts an LLVMErrorRef into "what: message" in err (consumes it); -1. */
int llvm_take_error(LLVMErrorRef e, const char *what, char *err, size_t errsz);

/* llvm_aot.c: the aot_object hook (backend.h). */
int llvm_aot_object(const qk_aot_unit *u, int split, qk_aot_objects *out, char *err, size_t errsz);

/* llvm_jit.c */
/* Builds, verifies and optimizes (llvm_pipeline) f's module in ctx. NULL + err. */
LLVMModuleRef llvm_build_module(LLVMContextRef ctx, const tir_func *f, const char *sym, const llvm_tm_desc *d,
                                LLVMTargetMachineRef tm, char *err, size_t errsz);

#endif

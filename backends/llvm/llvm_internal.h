/* llvm_internal.h — the LLVM backend's internal interface. LLVM types never
 * appear outside backends/llvm/.
 *
 * llvm_codegen.c  tiled IR -> LLVM module
 * llvm_jit.c      target machines, O3, ORC LLJIT, emission of IR/asm text,
 *                 and the qk_backend_llvm hook table */
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

#endif

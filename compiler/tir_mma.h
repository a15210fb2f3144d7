/* tir_mma.h — warp-level tensor-core tiles for GPU targets, built by
 * tir_mma.c for the statements of tir_build.c that fit them (see
 * docs/cuda.md, "Tensor cores"). Nothing here names a format: the fit is
 * decided from the format descriptor, and W is decoded with tir_decode.
 *
 * Prefix: tmma_. */
#ifndef QK_TIR_MMA_H
#define QK_TIR_MMA_H

#include "compiler/tir.h"

/* What the builder has made of the function's arguments (nodes in the
 * entry block), indexed like tir_build.c's context. */
typedef struct tmma_env {
    tir_func *f;
    const kir_kernel *k;
    const qk_target *t;
    const int *ptr;      /* tensor -> TS_PTR node */
    const int *stride;   /* tensor*QK_MAX_RANK+d -> i64 node (elements) */
    const int *rowbytes; /* quantized tensor -> i64 node */
    const int *dimnode;  /* dimension symbol -> i64 node */
    /* The epilogue: lowers the statement's right-hand side with `sum`
     * (its one reduction) replaced by the f32 value `v`, for the output
     * point whose LHS variables are the i64 nodes lhs[0..nlhs), and stores
     * it, all into block b. NULL: only a bare sum is taken. */
    void (*finish)(void *ctx, int b, const int *lhs, const kir_expr *sum, int v);
    void *ctx;
} tmma_env;

/* If statement st (with rhs, its fused right-hand side) is a contraction
 * y[m, n] = sum(k) X[m, k] * W[n, k] whose operand types fit a tensor-core
 * MMA, emits its grid into the entry block — a TL_WARP loop over tiles of
 * 16 rows n, over the items [begin, end) shifted by item_off — appends its
 * tir_grid (phase 0; the caller sets it), and returns the node counting
 * its work items. Returns -1 and emits nothing when it does not fit. */
int tmma_build_stmt(const tmma_env *env, const kir_stmt *st, const kir_expr *rhs, int item_off);

#endif

/* kir_fixture.h — building small Kernel IR kernels by hand in tests, with
 * dims, indices and variable lists written as short strings:
 *
 *     kfx *f = kfx_new("gemv");
 *     kfx_param(f, "x", QK_DT_F32, "K");
 *     kfx_qparam(f, "W", fmt, "N, K");
 *     kfx_result(f, "y", QK_DT_F32, "N");
 *     kfx_var(f, "n", "N", 0);
 *     kfx_var(f, "k", "K", 1);
 *     kfx_stmt(f, "y", "n", kfx_sum(f, "k", kfx_bin(f, KB_MUL, kfx_load(f, "x", "k"), kfx_load(f, "W", "n, k"))));
 *
 * Variables belong to the statement being built (the next kfx_stmt);
 * kfx_load and kfx_sum look names up among them. Tensors must be added
 * params first, then results, then temps. Everything lives in f->arena;
 * kfx_free releases it. Malformed specs abort (they are test bugs). */
#ifndef QK_KIR_FIXTURE_H
#define QK_KIR_FIXTURE_H

#include "compiler/kir.h"

#define KFX_MAX 32

typedef struct kfx {
    qk_arena *arena;
    kir_kernel *k;
} kfx;

kfx *kfx_new(const char *name);
void kfx_free(kfx *f);

/* "K", "H - 2", "W+1", "34" (symbols are added on first use). */
kir_dim kfx_dim(kfx *f, const char *spec);
int kfx_param(kfx *f, const char *name, qk_dtype dt, const char *dims);
int kfx_qparam(kfx *f, const char *name, const qk_format *fmt, const char *dims);
int kfx_result(kfx *f, const char *name, qk_dtype dt, const char *dims);
int kfx_temp(kfx *f, const char *name, const char *dims);
int kfx_tensor_id(kfx *f, const char *name);
/* A variable of the statement being built. */
int kfx_var(kfx *f, const char *name, const char *extent, int is_reduction);

kir_expr *kfx_const(kfx *f, double v);
/* Indices: comma-separated affine expressions, e.g. "c, h + r, 2*w - 1". */
kir_expr *kfx_load(kfx *f, const char *tensor, const char *indices);
kir_expr *kfx_bin(kfx *f, kir_binop op, kir_expr *a, kir_expr *b);
kir_expr *kfx_un(kfx *f, kir_unop op, kir_expr *a);
kir_expr *kfx_cast(kfx *f, qk_dtype dt, kir_expr *a);
kir_expr *kfx_sum(kfx *f, const char *vars, kir_expr *body);
/* Appends `tensor[lhs] = rhs`; returns the statement index. */
int kfx_stmt(kfx *f, const char *tensor, const char *lhs, kir_expr *rhs);

/* The qk_num of a dtype (f32, f16, bf16, u8, i8; NONE -> QK_NUM_NONE). */
qk_num kfx_num(qk_dtype dt);
/* A finished format with canonical layout and a per-block scale and zero
 * point of these dtypes; scale_dt / zero_dt QK_DT_NONE mean none. */
qk_format *kfx_format(qk_arena *a, const char *name, qk_code_kind code, int bits, int offset, int block,
                      qk_dtype scale_dt, qk_dtype zero_dt);
/* y[n] = sum(k) x[k] * W[n, k] + b[n]; W quantized with fmt, else f32. */
kfx *kfx_gemv(const qk_format *fmt);
/* A view with contiguous row-major strides. */
kir_view kfx_view(void *data, int rank, const int64_t *shape);

#endif

/* host-jit — libqkc inside a host application: the program compiles its
 * kernel from a string at start-up, quantizes f32 weights with the
 * library's packers and runs a tiny two-layer perceptron on a batch of
 * inputs:
 *
 *   h = relu(W1 x + b1)    W1: q8_0 [H, D]   (ggml's 8-bit blocks)
 *   y = W2 h + b2          W2: q4_0 [O, H]   (ggml's 4-bit blocks)
 *
 * stdout: y, one value per line (%.6g), the same numbers as
 * examples/host-aot, which compiles the same kernel ahead of time.
 * stderr: how long getting the kernel took. The first start compiles it
 * with LLVM and stores the object code in the disk cache
 * ($QKC_CACHE_DIR, else ~/.cache/qkc/kernels); later starts load it from
 * there, which takes about a millisecond. (qkc.h does not say whether a
 * kernel came from the cache: the time shows it.) */
#include <qkc.h>

#include "../common/mlp_data.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* The text of examples/host-aot/mlp.qk. `import ggml` finds the standard
 * formats in qkc's installed dsl directory. */
static const char MLP_QK[] =
    "import ggml\n"
    "\n"
    "kernel mlp(x: f32[B, D], W1: q8_0[H, D], b1: f32[H], W2: q4_0[O, H], b2: f32[O]) -> y: f32[B, O] {\n"
    "  h[b, j] = relu(sum(d) x[b, d] * W1[j, d] + b1[j])\n"
    "  y[b, o] = sum(j) h[b, j] * W2[o, j] + b2[o]\n"
    "}\n"
    "\n"
    "schedule mlp { parallel o }\n";

/* ---- the JIT ---- */

static double now_ms(void)
{
    struct timespec t;
    timespec_get(&t, TIME_UTC);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Parses the source and gets the compiled kernel (from the disk cache
 * when an earlier start compiled it). Reports what went wrong. */
static qkc_status load_kernel(qkc_ctx *ctx, qkc_program **prog, qkc_kernel **k)
{
    double t0 = now_ms();
    qkc_status st = qkc_program_create(ctx, MLP_QK, "mlp.qk", prog);
    if (st == QKC_ERR_COMPILE)
        fputs(qkc_program_diagnostics_text(*prog), stderr);
    if (st == QKC_OK)
        st = qkc_kernel_get(*prog, "mlp", k);
    if (st != QKC_OK)
        return st;
    const char *config = NULL, *origin = NULL;
    qkc_kernel_config(*k, &config, &origin);
    fprintf(stderr, "host-jit: kernel mlp for %s ready in %.1f ms (configuration: %s)\n", qkc_ctx_target(ctx),
            now_ms() - t0, origin);
    return QKC_OK;
}

/* Quantizes rows x cols f32 weights into a new buffer of format fmt. */
static qkc_status pack(const qkc_program *prog, const char *fmt, const float *w, int64_t rows, int64_t cols,
                       void **out)
{
    size_t bytes = 0;
    qkc_status st = qkc_format_size(prog, fmt, rows, cols, &bytes);
    if (st != QKC_OK)
        return st;
    *out = malloc(bytes);
    if (!*out)
        return QKC_ERR_NOMEM;
    return qkc_pack(prog, fmt, w, rows, cols, *out, bytes);
}

/* Packs the weights and runs the MLP on the batch: y is B x O. */
static qkc_status run_mlp(qkc_program *prog, qkc_kernel *k, mlp_data *m, float *y)
{
    void *w1 = NULL, *w2 = NULL;
    qkc_status st = pack(prog, "q8_0", m->w1, H, D, &w1);
    if (st == QKC_OK)
        st = pack(prog, "q4_0", m->w2, O, H, &w2);
    if (st == QKC_OK) {
        /* Declaration order; strides left zero: contiguous row-major. */
        qkc_tensor args[6] = {
            {.data = m->x, .dtype = QKC_F32, .rank = 2, .shape = {B, D}},
            {.data = w1, .dtype = QKC_PACKED, .rank = 2, .shape = {H, D}},
            {.data = m->b1, .dtype = QKC_F32, .rank = 1, .shape = {H}},
            {.data = w2, .dtype = QKC_PACKED, .rank = 2, .shape = {O, H}},
            {.data = m->b2, .dtype = QKC_F32, .rank = 1, .shape = {O}},
            {.data = y, .dtype = QKC_F32, .rank = 2, .shape = {B, O}},
        };
        st = qkc_launch(k, args, 6, NULL);
    }
    free(w1);
    free(w2);
    return st;
}

int main(void)
{
    static mlp_data m;
    static float y[B * O];
    make_data(&m);

    qkc_ctx *ctx = NULL;
    qkc_program *prog = NULL;
    qkc_kernel *k = NULL;
    qkc_status st = qkc_ctx_create(NULL, &ctx); /* host CPU; cache and tuning db from the environment */
    if (st == QKC_OK)
        st = load_kernel(ctx, &prog, &k);
    if (st == QKC_OK)
        st = run_mlp(prog, k, &m, y);
    if (st == QKC_OK)
        print_outputs(y);
    else
        fprintf(stderr, "host-jit: %s: %s\n", qkc_strerror(st), ctx ? qkc_errmsg(ctx) : "no context");
    qkc_program_destroy(prog);
    qkc_ctx_destroy(ctx);
    return st == QKC_OK ? 0 : 1;
}

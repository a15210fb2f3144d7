/* host-aot — the MLP of examples/host-jit, compiled ahead of time: the
 * build runs `qkc build mlp.qk` (qkc_add_kernels in CMakeLists.txt),
 * which writes mlp_kernels.a and mlp_kernels.h, and this program links
 * that archive and libqkc_rt only. No LLVM, no libffi and no compiler are
 * loaded at run time (`ldd host_aot` shows the C library only).
 *
 *   h = relu(W1 x + b1)    W1: q8_0 [H, D]
 *   y = W2 h + b2          W2: q4_0 [O, H]
 *
 * stdout: y, one value per line (%.6g): the same numbers as host-jit
 * (same weights, same packer, same kernel code). */
#include "mlp_kernels.h"
#include "../common/mlp_data.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- the generated kernel ---- */

/* Packs the weights with the generated packers (the same bytes as
 * qkc_pack) and runs the MLP on the batch with a thread pool: y is B x O. */
static int run_mlp(const mlp_data *m, float *y, char *err, size_t errsz)
{
    int64_t n1 = mlp_kernels_mlp_W1_bytes(H, D), n2 = mlp_kernels_mlp_W2_bytes(O, H);
    void *w1 = malloc((size_t)n1), *w2 = malloc((size_t)n2);
    int st = w1 && w2 ? QKC_RT_OK : QKC_RT_ERR_NOMEM;
    if (st == QKC_RT_OK)
        st = mlp_kernels_mlp_W1_pack(m->w1, H, D, w1, n1, NULL);
    if (st == QKC_RT_OK)
        st = mlp_kernels_mlp_W2_pack(m->w2, O, H, w2, n2, NULL);
    qkc_rt_pool *pool = qkc_rt_pool_new(0); /* one thread per core; NULL would run on this thread */
    if (st == QKC_RT_OK) {
        qkc_rt_opts opts = {.pool = pool, .err = err, .errsz = errsz};
        /* dims B, D, H, O, then the leading strides of x and y (0: row-major) */
        st = mlp_kernels_mlp(m->x, w1, m->b1, w2, m->b2, y, B, D, H, O, 0, 0, &opts);
    }
    qkc_rt_pool_free(pool);
    free(w1);
    free(w2);
    return st;
}

int main(void)
{
    static mlp_data m;
    static float y[B * O];
    char err[256] = "";
    make_data(&m);
    int st = run_mlp(&m, y, err, sizeof err);
    if (st != QKC_RT_OK) {
        fprintf(stderr, "host-aot: status %d: %s\n", st, err[0] ? err : "packing failed");
        return 1;
    }
    print_outputs(y);
    return 0;
}

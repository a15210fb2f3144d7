/* backend.c — qk_backend_cuda, the GPU backend's hooks: tiled IR -> CUDA C
 * (emit.c) -> PTX by NVRTC (nvrtc.c) -> module and launch through the
 * driver API (driver.c). compile needs NVRTC but no GPU, so PTX can be
 * produced and checked (`qkc emit --stage=ptx`, ptxas in the tests) on
 * machines without a device; launch needs libcuda.so.1 and a device. */
#include <stdlib.h>
#include <string.h>

#include "backends/cuda/cuda_internal.h"

/* The compute capability for NVRTC: the target's, 80 when it has none. */
static int target_sm(const cuda_state *st) { return st && st->target.sm > 0 ? st->target.sm : 80; }

static int cuda_create(const qk_target *t, void **state, char *err, size_t errsz) {
    if (t->kind != QK_TARGET_GPU) {
        snprintf(err, errsz, "the CUDA backend needs a GPU target, not '%s'", t->name);
        return -1;
    }
    cuda_state *st = qk_xcalloc(1, sizeof *st);
    st->target = *t;
    pthread_mutex_init(&st->lock, NULL);
    *state = st;
    return 0;
}

static void cuda_destroy(void *state) {
    cuda_state *st = state;
    if (!st)
        return;
    cuda_driver_unload(&st->drv);
    cuda_nvrtc_unload(&st->nvrtc);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

/* CUDA C -> PTX for f; the caller frees *ptx. */
static int build_ptx(cuda_state *st, const tir_func *f, char **kname, char **ptx, size_t *len, char *err,
                     size_t errsz) {
    qk_buf src = {0};
    int sm = target_sm(st);
    int rc = cuda_emit_source(f, sm, &src, err, errsz);
    *kname = cuda_kernel_name(f);
    if (rc == 0) {
        char file[300];
        snprintf(file, sizeof file, "%.280s.cu", *kname);
        rc = cuda_nvrtc_compile(st, src.s, file, sm, ptx, len, err, errsz);
    }
    qk_buf_free(&src);
    return rc;
}

static int cuda_compile(void *state, const tir_func *f, qk_code *out, char *err, size_t errsz) {
    cuda_code *code = qk_xcalloc(1, sizeof *code);
    if (build_ptx(state, f, &code->kname, &code->ptx, &code->ptx_len, err, errsz)) {
        free(code->kname);
        free(code);
        return -1;
    }
    out->fn = NULL;
    out->priv = code;
    return 0;
}

static void cuda_release(void *state, qk_code *c) {
    cuda_code *code = c ? c->priv : NULL;
    if (!code)
        return;
    if (state)
        cuda_driver_release_code(state, code);
    free(code->kname);
    free(code->ptx);
    free(code);
    c->priv = NULL;
}

/* PTX for `qkc emit`; with no state, a temporary one for sm_80. */
static int emit_ptx(void *state, const tir_func *f, qk_buf *out, char *err, size_t errsz) {
    cuda_state tmp = {.target = {.kind = QK_TARGET_GPU, .sm = 80}};
    cuda_state *st = state ? state : &tmp;
    if (!state)
        pthread_mutex_init(&tmp.lock, NULL);
    char *kname = NULL, *ptx = NULL;
    size_t len = 0;
    int rc = build_ptx(st, f, &kname, &ptx, &len, err, errsz);
    if (rc == 0)
        qk_buf_puts(out, ptx);
    free(kname);
    free(ptx);
    if (!state) {
        cuda_nvrtc_unload(&tmp.nvrtc);
        pthread_mutex_destroy(&tmp.lock);
    }
    return rc;
}

static int cuda_emit(void *state, const tir_func *f, qk_emit_stage stage, qk_buf *out, char *err, size_t errsz) {
    switch (stage) {
    case QK_EMIT_CUDA: return cuda_emit_source(f, target_sm(state), out, err, errsz);
    case QK_EMIT_PTX: return emit_ptx(state, f, out, err, errsz);
    default:
        snprintf(err, errsz, "the CUDA backend emits the stages cuda and ptx only");
        return -1;
    }
}

static int cuda_launch(void *state, const tir_func *f, qk_code *code, void **args, const int64_t *arg_bytes,
                       char *err, size_t errsz) {
    return cuda_driver_launch(state, f, code ? code->priv : NULL, args, arg_bytes, err, errsz);
}

const qk_backend qk_backend_cuda = {
    .name = "cuda",
    .create = cuda_create,
    .destroy = cuda_destroy,
    .compile = cuda_compile,
    .release = cuda_release,
    .emit = cuda_emit,
    .launch = cuda_launch,
};

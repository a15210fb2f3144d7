/* backend.c — qk_backend_cuda, the GPU backend's hooks: tiled IR -> CUDA C
 * (emit.c) -> PTX by NVRTC (nvrtc.c) -> module and launch through the
 * driver API (driver.c). compile needs NVRTC but no GPU, so PTX can be
 * produced and checked (`qkc emit --stage=ptx`, ptxas in the tests) on
 * machines without a device; launch needs libcuda.so.1 and a device.
 *
 * The PTX is the backend's object for the runtime's disk cache
 * (compile_obj/load_obj): a kernel compiled before skips NVRTC, and
 * needs no NVRTC at all. The module is loaded from it at the first
 * launch. The object's tag (the cache key's backend part) names the NVRTC
 * version, found when the tag is first asked for: PTX made by another
 * NVRTC (another PTX ISA version, which the driver may reject) is not
 * reused, and without NVRTC only PTX cached as "nvrtc=none" would match,
 * i.e. nothing: the cache serves the NVRTC that filled it. */
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
    cuda_obj_tag(st);
    pthread_mutex_init(&st->lock, NULL);
    *state = st;
    return 0;
}

void cuda_obj_tag(cuda_state *st) {
    const qk_target *t = &st->target;
    char nvrtc[32] = "none";
    if (st->nvrtc.lib)
        snprintf(nvrtc, sizeof nvrtc, "%d.%d", st->nvrtc.major, st->nvrtc.minor);
    snprintf(st->obj_tag, sizeof st->obj_tag,
             "cuda ptx compute_%d block=%d nvrtc=%s|%s|warp=%d smem=%d/%d/%d regs=%d/%d/%d sms=%d l2=%lld",
             target_sm(st), CUDA_BLOCK, nvrtc, t->cpu, t->warp, t->smem_per_block, t->smem_optin, t->smem_per_sm,
             t->regs_per_sm, t->regs_per_block, t->regs_per_thread, t->sm_count, (long long)t->l2);
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

/* The tag, naming the NVRTC (loaded now if it can be: a failure shows
 * as nvrtc=none, and compiling reports it). */
static const char *cuda_tag(void *state) {
    cuda_state *st = state;
    char err[512];
    pthread_mutex_lock(&st->lock);
    int ready = st->tag_ready;
    pthread_mutex_unlock(&st->lock);
    if (!ready)
        cuda_nvrtc_load(st, err, sizeof err);
    pthread_mutex_lock(&st->lock);
    if (!st->tag_ready) {
        cuda_obj_tag(st);
        st->tag_ready = 1;
    }
    pthread_mutex_unlock(&st->lock);
    return st->obj_tag;
}

/* The PTX text (without its NUL) is the object. */
static int cuda_compile_obj(void *state, const tir_func *f, void **obj, size_t *n, char *err, size_t errsz) {
    char *kname = NULL, *ptx = NULL;
    size_t len = 0;
    int rc = build_ptx(state, f, &kname, &ptx, &len, err, errsz);
    free(kname);
    if (rc != 0) {
        free(ptx);
        return -1;
    }
    *obj = ptx;
    *n = len;
    return 0;
}

/* Code from PTX bytes; they must be text that defines f's kernel. */
static int cuda_load_obj(void *state, const tir_func *f, const void *obj, size_t n, qk_code *out, char *err,
                         size_t errsz) {
    (void)state;
    cuda_code *code = qk_xcalloc(1, sizeof *code);
    code->kname = cuda_kernel_name(f);
    code->ptx = qk_xmalloc(n + 1);
    memcpy(code->ptx, obj, n);
    code->ptx[n] = 0;
    code->ptx_len = n;
    if (n == 0 || strlen(code->ptx) != n || !strstr(code->ptx, code->kname)) {
        snprintf(err, errsz, "cached PTX is not text defining %s", code->kname);
        free(code->kname);
        free(code->ptx);
        free(code);
        return -1;
    }
    out->fn = NULL;
    out->priv = code;
    return 0;
}

static int cuda_code_text(void *state, const qk_code *c, qk_emit_stage stage, qk_buf *out) {
    (void)state;
    const cuda_code *code = c ? c->priv : NULL;
    if (stage != QK_EMIT_PTX || !code || !code->ptx)
        return -1;
    qk_buf_puts(out, code->ptx);
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

/* f's PTX (malloc'd into *ptx) and the state's sm; with no state, a
 * temporary one for sm_80 (qkc emit, the tuner on a preset). */
static int ptx_of(void *state, const tir_func *f, char **ptx, int *sm, char *err, size_t errsz) {
    cuda_state tmp = {.target = {.kind = QK_TARGET_GPU, .sm = 80}};
    cuda_state *st = state ? state : &tmp;
    if (!state)
        pthread_mutex_init(&tmp.lock, NULL);
    char *kname = NULL;
    size_t len = 0;
    *ptx = NULL;
    int rc = build_ptx(st, f, &kname, ptx, &len, err, errsz);
    *sm = target_sm(st);
    free(kname);
    if (!state) {
        cuda_nvrtc_unload(&tmp.nvrtc);
        pthread_mutex_destroy(&tmp.lock);
    }
    return rc;
}

/* PTX for `qkc emit`. */
static int emit_ptx(void *state, const tir_func *f, qk_buf *out, char *err, size_t errsz) {
    char *ptx;
    int sm, rc = ptx_of(state, f, &ptx, &sm, err, errsz);
    if (rc == 0)
        qk_buf_puts(out, ptx);
    free(ptx);
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
                       const int64_t *phase_ends, char *err, size_t errsz) {
    return cuda_driver_launch(state, f, code ? code->priv : NULL, args, arg_bytes, phase_ends, err, errsz);
}

static int cuda_launch_timed(void *state, const tir_func *f, qk_code *code, void **args, const int64_t *arg_bytes,
                             int copies, int reps, double *seconds, char *err, size_t errsz) {
    return cuda_driver_launch_timed(state, f, code ? code->priv : NULL, args, arg_bytes, copies, reps, seconds, err,
                                    errsz);
}

static int cuda_copy_bandwidth(void *state, int64_t bytes, int reps, double *bytes_per_s, char *err, size_t errsz) {
    return cuda_driver_copy_bandwidth(state, bytes, reps, bytes_per_s, err, errsz);
}

static int cuda_describe(void *state, qk_target *t, char *err, size_t errsz) {
    cuda_state *st = state;
    int rc = cuda_driver_describe(st, t, err, errsz);
    if (rc == 1) {
        pthread_mutex_lock(&st->lock);
        st->target = *t;
        cuda_obj_tag(st);
        pthread_mutex_unlock(&st->lock);
    }
    return rc;
}

/* Registers and shared memory of f's kernel: PTX by NVRTC, then ptxas -v. */
static int cuda_resources(void *state, const tir_func *f, qk_resources *out, char *err, size_t errsz) {
    char *ptx;
    int sm, rc = ptx_of(state, f, &ptx, &sm, err, errsz);
    if (rc == 0) {
        out->block = CUDA_BLOCK;
        rc = cuda_ptxas_info(ptx, sm, out, err, errsz);
    }
    free(ptx);
    return rc;
}

const qk_backend qk_backend_cuda = {
    .name = "cuda",
    .create = cuda_create,
    .destroy = cuda_destroy,
    .compile = cuda_compile,
    .release = cuda_release,
    .emit = cuda_emit,
    .launch = cuda_launch,
    .obj_tag = cuda_tag,
    .compile_obj = cuda_compile_obj,
    .load_obj = cuda_load_obj,
    .code_text = cuda_code_text,
    .describe = cuda_describe,
    .launch_timed = cuda_launch_timed,
    .copy_bandwidth = cuda_copy_bandwidth,
    .resources = cuda_resources,
};

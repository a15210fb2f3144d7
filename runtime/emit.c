/* emit.c — qkc_kernel_emit: the text of one pipeline stage of a kernel
 * (`qkc emit --stage=...`). The front stages (ast, kir, tir) come from the
 * runtime's own data; llvm/asm/cuda/ptx come from the backend, and only
 * from a backend of the matching target kind. */
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>

typedef enum { ST_AST, ST_KIR, ST_TIR, ST_BACKEND } stage_kind;

static const struct {
    const char *name;
    stage_kind kind;
    qk_emit_stage be;
    int gpu; /* backend stages: 1 = needs a GPU target, 0 = a CPU target */
} stages[] = {
    {"ast", ST_AST, 0, 0},
    {"kir", ST_KIR, 0, 0},
    {"tir", ST_TIR, 0, 0},
    {"llvm", ST_BACKEND, QK_EMIT_LLVM, 0},
    {"asm", ST_BACKEND, QK_EMIT_ASM, 0},
    {"cuda", ST_BACKEND, QK_EMIT_CUDA, 1},
    {"ptx", ST_BACKEND, QK_EMIT_PTX, 1},
};

static int stage_index(const char *name)
{
    for (int i = 0; i < QK_COUNT(stages); i++)
        if (strcmp(stages[i].name, name) == 0)
            return i;
    return -1;
}

/* Checks that a backend stage fits the context's target. */
static qkc_status check_kind(const qkc_kernel *k, int si)
{
    const qk_target *t = &k->prog->ctx->target;
    int gpu = t->kind == QK_TARGET_GPU;
    if (stages[si].gpu == gpu)
        return QKC_OK;
    if (stages[si].gpu)
        return rt_fail(k->prog->ctx, QKC_ERR_UNSUPPORTED,
                       "stage '%s' needs a GPU target, but this context targets %s: create a context with "
                       "target \"sm_90\" or \"sm_80\" (qkc emit --target sm_90)",
                       stages[si].name, t->name);
    return rt_fail(k->prog->ctx, QKC_ERR_UNSUPPORTED,
                   "stage '%s' needs a CPU target, but this context targets %s: use stage 'cuda' or 'ptx', or "
                   "a CPU target (host, x86-64-v3, x86-64-v4, aarch64+dotprod)",
                   stages[si].name, t->name);
}

static qkc_status emit_backend(qkc_kernel *k, int si, qk_buf *out)
{
    qkc_ctx *ctx = k->prog->ctx;
    qkc_status st = check_kind(k, si);
    if (st != QKC_OK)
        return st;
    char err[2048] = "";
    void *state = NULL;
    if (rt_backend_state(ctx, &state, err, sizeof err) != 0)
        state = NULL; /* emit works without state where the backend can */
    err[0] = 0;
    const rt_entry *e = k->entry; /* compiled code may hold the text already (e.g. PTX from the disk cache) */
    if (e->has_code && ctx->backend->code_text && ctx->backend->code_text(state, &e->code, stages[si].be, out) == 0)
        return QKC_OK;
    if (ctx->backend->emit(state, k->entry->f, stages[si].be, out, err, sizeof err) == 0)
        return QKC_OK;
    qkc_status code = ctx->backend->absent ? QKC_ERR_UNSUPPORTED
                      : rt_is_no_device(err) ? QKC_ERR_NO_DEVICE
                                             : QKC_ERR_TARGET;
    return rt_fail(ctx, code, "kernel '%s': emitting %s failed: %s", k->kir->name, stages[si].name,
                   err[0] ? err : "unknown error");
}

static qkc_status emit_stage(qkc_kernel *k, int si, qk_buf *out)
{
    switch (stages[si].kind) {
    case ST_AST:
        if (!k->kir->ast)
            return rt_fail(k->prog->ctx, QKC_ERR_UNSUPPORTED, "kernel '%s' has no AST text", k->kir->name);
        qk_buf_puts(out, k->kir->ast);
        return QKC_OK;
    case ST_KIR:
        kir_print_kernel(k->kir, out);
        return QKC_OK;
    case ST_TIR:
        tir_print(k->entry->f, out);
        return QKC_OK;
    case ST_BACKEND:
        return emit_backend(k, si, out);
    }
    return QKC_ERR_INTERNAL;
}

qkc_status qkc_kernel_emit(qkc_kernel *k, const char *stage, char **text)
{
    if (text)
        *text = NULL;
    if (!k || !stage || !text)
        return rt_fail(k ? k->prog->ctx : NULL, QKC_ERR_INVALID_ARG, "qkc_kernel_emit: NULL %s",
                       !k ? "kernel" : !stage ? "stage" : "text");
    int si = stage_index(stage);
    if (si < 0)
        return rt_fail(k->prog->ctx, QKC_ERR_INVALID_ARG,
                       "unknown stage '%s' (stages: ast, kir, tir, llvm, asm, cuda, ptx)", stage);
    qk_buf b = {0};
    qkc_status st = emit_stage(k, si, &b);
    if (st != QKC_OK) {
        qk_buf_free(&b);
        return st;
    }
    *text = qk_buf_take(&b);
    return QKC_OK;
}

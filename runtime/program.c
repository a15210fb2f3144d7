/* program.c — programs: one source compiled by the frontend into Kernel
 * IR, plus its diagnostics (structured and rendered). Kernels are
 * compiled on demand by qkc_kernel_get (kernel.c) and owned here. */
#include "frontend/frontend.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static qkc_program *program_new(qkc_ctx *ctx)
{
    qkc_program *p = qk_xcalloc(1, sizeof *p);
    p->ctx = ctx;
    qk_diags_init(&p->diags);
    pthread_mutex_init(&p->mu, NULL);
    return p;
}

static void render_diags(qkc_program *p)
{
    qk_buf b = {0};
    qk_diags_render(&p->diags, &b);
    p->diag_text = qk_buf_take(&b);
}

qkc_status qkc_program_create(qkc_ctx *ctx, const char *source, const char *filename, qkc_program **out)
{
    if (out)
        *out = NULL;
    if (!ctx || !source || !out)
        return rt_fail(ctx, QKC_ERR_INVALID_ARG, "qkc_program_create: NULL %s",
                       !ctx ? "ctx" : !source ? "source" : "out");
    qkc_program *p = program_new(ctx);
    const char *name = filename ? filename : "<input>";
    p->kir = qk_frontend_compile(source, strlen(source), name, ctx->dsl_path, &p->diags);
    render_diags(p);
    if (!p->kir || p->diags.nerrors > 0) {
        kir_program_free(p->kir);
        p->kir = NULL;
        *out = p;
        return rt_fail(ctx, QKC_ERR_COMPILE, "%s", p->diag_text[0] ? p->diag_text : "compile error");
    }
    p->kernels = qk_xcalloc((size_t)p->kir->nkernels + 1, sizeof *p->kernels);
    *out = p;
    return QKC_OK;
}

qkc_status qkc_program_create_file(qkc_ctx *ctx, const char *path, qkc_program **out)
{
    if (out)
        *out = NULL;
    if (!ctx || !path || !out)
        return rt_fail(ctx, QKC_ERR_INVALID_ARG, "qkc_program_create_file: NULL %s",
                       !ctx ? "ctx" : !path ? "path" : "out");
    size_t len = 0;
    char *text = qk_read_file(path, &len);
    if (!text)
        return rt_fail(ctx, QKC_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
    if (strlen(text) != len) {
        free(text);
        return rt_fail(ctx, QKC_ERR_IO, "'%s' contains a NUL byte: not a source file", path);
    }
    qkc_status st = qkc_program_create(ctx, text, path, out);
    free(text);
    return st;
}

void qkc_program_destroy(qkc_program *p)
{
    if (!p)
        return;
    if (p->kir)
        for (int i = 0; i < p->kir->nkernels; i++)
            rt_kernel_free(p->kernels[i]);
    free(p->kernels);
    kir_program_free(p->kir);
    qk_diags_free(&p->diags);
    free(p->diag_text);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

const kir_program *rt_program_kir(const qkc_program *p)
{
    return p ? p->kir : NULL;
}

/* ---- diagnostics ---- */

int qkc_program_ndiagnostics(const qkc_program *p)
{
    return p ? p->diags.n : 0;
}

qkc_status qkc_program_diagnostic(const qkc_program *p, int i, qkc_diagnostic *out)
{
    if (!p || !out)
        return QKC_ERR_INVALID_ARG;
    if (i < 0 || i >= p->diags.n)
        return rt_fail(p->ctx, QKC_ERR_NOT_FOUND, "no diagnostic %d (the program has %d)", i, p->diags.n);
    const qk_diag *d = &p->diags.items[i];
    static const qkc_severity sev[] = {[QK_SEV_ERROR] = QKC_SEV_ERROR, [QK_SEV_WARNING] = QKC_SEV_WARNING,
                                       [QK_SEV_NOTE] = QKC_SEV_NOTE};
    *out = (qkc_diagnostic){d->loc.file, d->loc.line, d->loc.col, sev[d->sev], d->msg};
    return QKC_OK;
}

const char *qkc_program_diagnostics_text(const qkc_program *p)
{
    return p && p->diag_text ? p->diag_text : "";
}

/* ---- kernels by index ---- */

int qkc_program_nkernels(const qkc_program *p)
{
    return p && p->kir ? p->kir->nkernels : 0;
}

const char *qkc_program_kernel_name(const qkc_program *p, int i)
{
    if (!p || !p->kir || i < 0 || i >= p->kir->nkernels)
        return NULL;
    return p->kir->kernels[i]->name;
}

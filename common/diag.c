/* diag.c — diagnostics: collection, and rendering as
 * "file:line:col: error: message", the source line and a caret. */
#include "common/base.h"

#include <stdlib.h>
#include <string.h>

void qk_diags_init(qk_diags *d)
{
    memset(d, 0, sizeof *d);
    d->max_errors = 20;
}

void qk_diags_free(qk_diags *d)
{
    for (int i = 0; i < d->n; i++)
        free(d->items[i].msg);
    for (int i = 0; i < d->nsrcs; i++) {
        free(d->srcs[i].name);
        free(d->srcs[i].text);
    }
    free(d->items);
    free(d->srcs);
    memset(d, 0, sizeof *d);
}

const qk_source *qk_diags_add_source(qk_diags *d, const char *name, const char *text, size_t len)
{
    if (d->nsrcs == d->capsrcs) {
        /* Sources are referenced by pointer: grow by allocating a larger
         * array only while empty-ish is unsafe, so keep names/texts in
         * separately allocated strings and never move those. */
        d->capsrcs = d->capsrcs ? d->capsrcs * 2 : 8;
        d->srcs = qk_xrealloc(d->srcs, (size_t)d->capsrcs * sizeof *d->srcs);
    }
    qk_source *s = &d->srcs[d->nsrcs++];
    s->name = qk_xstrdup(name ? name : "<input>");
    s->text = qk_xmalloc(len + 1);
    memcpy(s->text, text, len);
    s->text[len] = 0;
    s->len = len;
    return s;
}

const qk_source *qk_diags_find_source(const qk_diags *d, const char *name)
{
    if (!name)
        return NULL;
    for (int i = 0; i < d->nsrcs; i++)
        if (d->srcs[i].name == name || strcmp(d->srcs[i].name, name) == 0)
            return &d->srcs[i];
    return NULL;
}

void qk_diag_vadd(qk_diags *d, qk_severity sev, qk_loc loc, const char *fmt, va_list ap)
{
    if (sev == QK_SEV_ERROR && d->nerrors >= d->max_errors) {
        d->nerrors++;
        return;
    }
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 16;
        d->items = qk_xrealloc(d->items, (size_t)d->cap * sizeof *d->items);
    }
    qk_buf b = {0};
    qk_buf_vprintf(&b, fmt, ap);
    d->items[d->n++] = (qk_diag){loc, sev, qk_buf_take(&b)};
    if (sev == QK_SEV_ERROR)
        d->nerrors++;
}

void qk_diag_add(qk_diags *d, qk_severity sev, qk_loc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    qk_diag_vadd(d, sev, loc, fmt, ap);
    va_end(ap);
}

static const char *sev_name(qk_severity s)
{
    return s == QK_SEV_ERROR ? "error" : s == QK_SEV_WARNING ? "warning" : "note";
}

/* Prints line `line` of src and a caret under column col (tabs kept so the
 * caret lines up). */
static void render_caret(const qk_source *src, int line, int col, qk_buf *out)
{
    const char *p = src->text, *end = src->text + src->len;
    for (int l = 1; l < line && p < end; p++)
        if (*p == '\n')
            l++;
    if (p > end)
        return;
    const char *e = p;
    while (e < end && *e != '\n' && *e != '\r')
        e++;
    qk_buf_printf(out, "  %.*s\n  ", (int)(e - p), p);
    for (int i = 1; i < col && p + i - 1 < e; i++)
        qk_buf_puts(out, p[i - 1] == '\t' ? "\t" : " ");
    qk_buf_puts(out, "^\n");
}

void qk_diags_render(const qk_diags *d, qk_buf *out)
{
    for (int i = 0; i < d->n; i++) {
        const qk_diag *g = &d->items[i];
        const char *file = g->loc.file ? g->loc.file : "qkc";
        if (g->loc.line > 0)
            qk_buf_printf(out, "%s:%d:%d: %s: %s\n", file, g->loc.line, g->loc.col, sev_name(g->sev), g->msg);
        else
            qk_buf_printf(out, "%s: %s: %s\n", file, sev_name(g->sev), g->msg);
        const qk_source *src = qk_diags_find_source(d, g->loc.file);
        if (src && g->loc.line > 0)
            render_caret(src, g->loc.line, g->loc.col, out);
    }
    if (d->nerrors > d->max_errors)
        qk_buf_printf(out, "qkc: note: %d more errors not shown\n", d->nerrors - d->max_errors);
}

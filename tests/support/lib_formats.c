/* lib_formats.c — see lib_formats.h. */
#include "support/lib_formats.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/kir.h"
#include "frontend/frontend.h"

static int by_name(const void *a, const void *b)
{
    return strcmp(a, b);
}

kir_program *rtt_compile(const char *src, size_t n, const char *file, const char *dir, qk_diags *d)
{
    qk_diags_init(d);
    kir_program *p = qk_frontend_compile(src, n, file, dir, d);
    if (!p) {
        qk_buf b = {0};
        qk_diags_render(d, &b);
        fprintf(stderr, "%s does not compile:\n%s\n", file, b.s ? b.s : "");
        qk_buf_free(&b);
    }
    return p;
}

/* Appends the formats of one file; -1 if it does not compile. */
static int add_file(const char *dir, const char *file, rtt_format *out, int *n, int max)
{
    char src[600];
    snprintf(src, sizeof src, "import \"%s/%s\"\n", dir, file);
    qk_diags d;
    kir_program *p = rtt_compile(src, strlen(src), file, dir, &d);
    if (!p) {
        qk_diags_free(&d);
        return -1;
    }
    for (int i = 0; i < p->nformats && *n < max; i++) {
        const qk_format *f = p->formats[i];
        int dup = 0;
        for (int j = 0; j < *n; j++)
            dup |= strcmp(out[j].name, f->name) == 0;
        if (dup)
            continue;
        rtt_format *l = &out[(*n)++];
        memset(l, 0, sizeof *l);
        snprintf(l->file, sizeof l->file, "%s", file);
        snprintf(l->name, sizeof l->name, "%s", f->name);
        l->code = f->code;
        l->block = f->block;
        l->bits = f->bits;
        l->vq = f->code == QK_CODE_VQ;
        l->books = f->vq_books;
        l->dim = f->vq_dim;
        l->bpw = qk_format_bits_per_weight(f);
    }
    kir_program_free(p);
    qk_diags_free(&d);
    return 0;
}

int rtt_lib_formats(const char *dir, rtt_format *out, int max)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return -1;
    char names[128][64];
    int nf = 0;
    for (struct dirent *e; (e = readdir(dp)) && nf < 128;) {
        size_t len = strlen(e->d_name);
        if (len > 3 && len < 60 && strcmp(e->d_name + len - 3, ".qk") == 0)
            snprintf(names[nf++], 64, "%s", e->d_name);
    }
    closedir(dp);
    qsort(names, (size_t)nf, sizeof names[0], by_name);
    int n = 0, bad = 0;
    for (int i = 0; i < nf; i++)
        bad |= add_file(dir, names[i], out, &n, max) != 0;
    return bad ? -1 : n;
}

void rtt_weight_type(const rtt_format *f, char *w, size_t nw, char *book, size_t nb)
{
    book[0] = 0;
    if (!f->vq) {
        snprintf(w, nw, "%s", f->name);
        return;
    }
    snprintf(w, nw, "%s(C)", f->name);
    if (f->books > 1)
        snprintf(book, nb, ", C: f16[%d, %d, %d]", f->books, 1 << f->bits, f->dim);
    else
        snprintf(book, nb, ", C: f16[%d, %d]", 1 << f->bits, f->dim);
}

int rtt_integer_code(const rtt_format *f)
{
    return f->code == QK_CODE_SINT || f->code == QK_CODE_UINT || f->code == QK_CODE_OFFSET ||
           f->code == QK_CODE_TERNARY || f->code == QK_CODE_BINARY;
}

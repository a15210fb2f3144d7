/* arena.c — bump allocation for one compilation (AST, KIR, TIR), freed in
 * one call; plus the abort-on-OOM helpers and the qk_bug path. */
#include "common/base.h"

#include <stdlib.h>
#include <string.h>

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} chunk;

struct qk_arena {
    chunk *head;
};

_Noreturn void qk_bug_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "qkc: internal error at %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nqkc: this is a bug in qkc; please report it\n", stderr);
    abort();
}

void *qk_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        qk_bug("out of memory (%zu bytes)", n);
    return p;
}

void *qk_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        qk_bug("out of memory (%zu x %zu bytes)", n, size);
    return p;
}

void *qk_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        qk_bug("out of memory (%zu bytes)", n);
    return q;
}

char *qk_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(qk_xmalloc(n), s, n);
}

qk_arena *qk_arena_new(void)
{
    return qk_xcalloc(1, sizeof(qk_arena));
}

void qk_arena_free(qk_arena *a)
{
    if (!a)
        return;
    for (chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(a);
}

void *qk_alloc(qk_arena *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    chunk *c = a->head;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > 65536 ? size : 65536;
        c = qk_xmalloc(sizeof(chunk) + cap);
        c->used = 0;
        c->cap = cap;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += size;
    return memset(p, 0, size);
}

char *qk_strndup(qk_arena *a, const char *s, size_t n)
{
    char *p = qk_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *qk_strdup(qk_arena *a, const char *s)
{
    return qk_strndup(a, s, strlen(s));
}

char *qk_asprintf(qk_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = qk_alloc(a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

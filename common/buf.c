/* buf.c — growable text buffer used by every printer and message. */
#include "common/base.h"

#include <stdlib.h>
#include <string.h>

void qk_buf_vprintf(qk_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return;
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        b->s = qk_xrealloc(b->s, cap);
        b->cap = cap;
    }
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void qk_buf_append(qk_buf *b, const void *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->s = qk_xrealloc(b->s, cap);
        b->cap = cap;
    }
    memcpy(b->s + b->len, data, n);
    b->len += n;
    b->s[b->len] = 0;
}

void qk_buf_printf(qk_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    qk_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void qk_buf_puts(qk_buf *b, const char *s)
{
    qk_buf_printf(b, "%s", s);
}

void qk_buf_indent(qk_buf *b, int n)
{
    qk_buf_printf(b, "%*s", 2 * n, "");
}

char *qk_buf_take(qk_buf *b)
{
    char *s = b->s ? b->s : qk_xstrdup("");
    b->s = NULL;
    b->len = b->cap = 0;
    return s;
}

void qk_buf_free(qk_buf *b)
{
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}

/* file.c — reading whole files. */
#include "common/base.h"

#include <errno.h>
#include <stdlib.h>

char *qk_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *s = qk_xmalloc(cap);
    for (;;) {
        if (n + 1 >= cap)
            s = qk_xrealloc(s, cap *= 2);
        size_t r = fread(s + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(s);
        errno = EIO;
        return NULL;
    }
    s[n] = 0;
    if (len)
        *len = n;
    return s;
}

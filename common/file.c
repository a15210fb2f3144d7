/* file.c — reading whole files; where the standard formats are. */
#include "common/base.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__linux__)
#include <dlfcn.h>
#endif

#ifndef QKC_DSL_DIR
#define QKC_DSL_DIR ""
#endif
#ifndef QKC_DSL_FROM_BIN
#define QKC_DSL_FROM_BIN "../share/qkc/dsl"
#endif
#ifndef QKC_DSL_FROM_LIB
#define QKC_DSL_FROM_LIB "../share/qkc/dsl"
#endif

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

/* buf = the directory of file + "/" + rel, made canonical, if that is a
 * directory. */
static int dir_beside(const char *file, const char *rel, char *buf, size_t n)
{
    const char *slash = strrchr(file, '/');
    char path[4096];
    if (!slash || snprintf(path, sizeof path, "%.*s/%s", (int)(slash - file), file, rel) >= (int)sizeof path)
        return 0;
    char *real = realpath(path, NULL);
    struct stat st;
    int ok = real && strlen(real) < n && stat(real, &st) == 0 && S_ISDIR(st.st_mode);
    if (ok)
        memcpy(buf, real, strlen(real) + 1);
    free(real);
    return ok;
}

const char *qk_dsl_dir(char *buf, size_t n)
{
#if defined(__linux__)
    Dl_info info;
    /* dladdr names the executable by argv[0]: only trust a shared object's path. */
    if (dladdr((void *)qk_dsl_dir, &info) && info.dli_fname && strstr(info.dli_fname, ".so") &&
        dir_beside(info.dli_fname, QKC_DSL_FROM_LIB, buf, n))
        return buf;
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = 0;
        if (dir_beside(exe, QKC_DSL_FROM_BIN, buf, n))
            return buf;
    }
#endif
    return QKC_DSL_DIR;
}

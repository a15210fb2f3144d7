/* cuda_host.c — see cuda_host.h. */
#include "support/cuda_host.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void rtt_cuda_batch(qk_buf *out, const char *const *srcs, int n)
{
    qk_buf body = {0};
    for (int i = 0; i < n; i++) {
        qk_buf_printf(&body, "namespace qkc_batch_%d {\n", i);
        for (const char *p = srcs[i]; *p;) {
            size_t len = strcspn(p, "\n");
            int include = strncmp(p, "#include", 8) == 0;
            if (include && !(out->s && memmem(out->s, out->len, p, len)))
                qk_buf_printf(out, "%.*s\n", (int)len, p);
            else if (!include)
                qk_buf_printf(&body, "%.*s\n", (int)len, p);
            p += len + (p[len] == '\n');
        }
        qk_buf_puts(&body, "}\n");
    }
    if (body.s)
        qk_buf_append(out, body.s, body.len);
    qk_buf_free(&body);
}

const char *rtt_ptxas_path(const char *configured)
{
    if (configured && *configured && access(configured, X_OK) == 0)
        return configured;
    return access("/usr/local/cuda/bin/ptxas", X_OK) == 0 ? "/usr/local/cuda/bin/ptxas" : NULL;
}

/* Writes text to a new temporary file named from tmpl (suffix chars). */
static int write_temp(char *tmpl, int suffix, const char *text, size_t len)
{
    int fd = mkstemps(tmpl, suffix);
    if (fd < 0)
        return -1;
    int ok = write(fd, text, len) == (ssize_t)len;
    close(fd);
    return ok ? 0 : -1;
}

int rtt_ptxas(const char *ptxas, const char *ptx, int sm, qk_buf *log)
{
    char path[] = "/tmp/qkc_test_ptx_XXXXXX.ptx", out[] = "/tmp/qkc_test_ptxas_XXXXXX.log";
    if (write_temp(path, 4, ptx, strlen(ptx)) != 0)
        return -1;
    int fd = mkstemps(out, 4);
    if (fd >= 0)
        close(fd);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' -arch=sm_%d '%s' -o /dev/null >'%s' 2>&1", ptxas, sm, path, out);
    int st = system(cmd);
    if (log) {
        size_t n = 0;
        char *text = qk_read_file(out, &n);
        if (text)
            qk_buf_append(log, text, n);
        free(text);
    }
    unlink(path);
    unlink(out);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The CUDA names the emitter uses, for g++ (cuda_fp16.h is not read);
 * needs <math.h> and <string.h> before it. */
const char rtt_cuda_shims[] =
    "#define __global__\n#define __launch_bounds__(n)\n#define __device__\n#define __forceinline__ inline\n"
    "static inline int __popc(unsigned x) { return __builtin_popcount(x); }\n"
    "static inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }\n"
    "static inline float __uint_as_float(unsigned u) { float f; memcpy(&f, &u, 4); return f; }\n"
    "static inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }\n"
    "typedef _Float16 __half;\n"
    "static inline __half __ushort_as_half(unsigned short b) { __half h; memcpy(&h, &b, 2); return h; }\n"
    "static inline unsigned short __half_as_ushort(__half h) { unsigned short b; memcpy(&b, &h, 2); return b; }\n"
    "static inline float __half2float(__half h) { return (float)h; }\n"
    "static inline __half __float2half_rn(float f) { return (__half)f; }\n";

/* The host run's globals: one emulated thread at a time. */
static const char emu_globals[] =
    "#include <math.h>\n#include <string.h>\n"
    "struct qk_dim3 { unsigned x; };\n"
    "extern \"C\" { qk_dim3 blockIdx, blockDim, gridDim, threadIdx; }\n";

/* src without its #include <cuda_fp16.h> lines. */
static char *host_source(const char *src)
{
    qk_buf b = {0};
    qk_buf_puts(&b, emu_globals);
    qk_buf_puts(&b, rtt_cuda_shims);
    for (const char *p = src; *p;) {
        size_t len = strcspn(p, "\n");
        if (strncmp(p, "#include <cuda_fp16.h>", 22) != 0)
            qk_buf_printf(&b, "%.*s\n", (int)len, p);
        p += len + (p[len] == '\n');
    }
    return qk_buf_take(&b);
}

int rtt_emu_open(const char *src, rtt_emu *m, char *why, size_t n)
{
    memset(m, 0, sizeof *m);
    if (system("g++ --version >/dev/null 2>&1") != 0) {
        snprintf(why, n, "no g++ for the host run of the emitted CUDA C");
        return 1;
    }
    char *text = host_source(src);
    char cc[] = "/tmp/qkc_emu_XXXXXX.cc", so[] = "/tmp/qkc_emu_XXXXXX.so", log[] = "/tmp/qkc_emu_XXXXXX.log";
    int rc = write_temp(cc, 3, text, strlen(text));
    free(text);
    int fd1 = mkstemps(so, 3), fd2 = mkstemps(log, 4);
    if (fd1 >= 0)
        close(fd1);
    if (fd2 >= 0)
        close(fd2);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "g++ -std=c++17 -O0 -ffp-contract=off -w -shared -fPIC -o %s %s >%s 2>&1", so, cc, log);
    if (rc == 0 && fd1 >= 0 && system(cmd) == 0)
        m->lib = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!m->lib) {
        size_t len = 0;
        char *msg = qk_read_file(log, &len);
        snprintf(why, n, "g++ failed on the emitted CUDA C: %.1500s", msg ? msg : "");
        free(msg);
    }
    unlink(cc);
    unlink(so);
    unlink(log);
    if (!m->lib)
        return -1;
    m->block = dlsym(m->lib, "blockIdx");
    m->bdim = dlsym(m->lib, "blockDim");
    m->grid = dlsym(m->lib, "gridDim");
    m->thread = dlsym(m->lib, "threadIdx");
    return m->block && m->bdim && m->grid && m->thread ? 0 : -1;
}

void rtt_emu_close(rtt_emu *m)
{
    if (m->lib)
        dlclose(m->lib);
    m->lib = NULL;
}

/* Every argument is a pointer or an i64, passed alike in integer
 * registers and 8-byte stack slots, so one 24-word call type fits every
 * kernel (the callee ignores the words it does not declare). */
typedef void (*emu_fn)(uintptr_t, uintptr_t, uintptr_t, uintptr_t, uintptr_t, uintptr_t, uintptr_t, uintptr_t,
                       uintptr_t, uintptr_t, uintptr_t, uintptr_t, uintptr_t, uintptr_t, uintptr_t, uintptr_t,
                       uintptr_t, uintptr_t, uintptr_t, uintptr_t, uintptr_t, uintptr_t, uintptr_t, uintptr_t);

int rtt_emu_run(rtt_emu *m, const char *kname, int nargs, const uintptr_t *av, int64_t lo, int64_t hi)
{
    void *sym = dlsym(m->lib, kname);
    if (!sym || nargs < 2 || nargs > 24)
        return -1;
    uintptr_t w[24] = {0};
    memcpy(w, av, (size_t)nargs * sizeof *w);
    w[nargs - 2] = (uintptr_t)lo;
    w[nargs - 1] = (uintptr_t)hi;
    emu_fn fn;
    memcpy(&fn, &sym, sizeof fn);
    for (int step = 0; step < 6; step++) {
        *m->grid = 3;
        *m->bdim = 2;
        *m->block = (unsigned)(step / 2);
        *m->thread = (unsigned)(step % 2);
        fn(w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8], w[9], w[10], w[11], w[12], w[13], w[14], w[15],
           w[16], w[17], w[18], w[19], w[20], w[21], w[22], w[23]);
    }
    return 0;
}

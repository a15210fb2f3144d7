/* ptxas.c — the registers and shared memory of a kernel's PTX, from the
 * toolkit's assembler: `ptxas -v -arch=sm_XX` prints, per entry,
 *   ptxas info    : Used 40 registers, used 0 barriers, 1024 bytes smem
 *       0 bytes stack frame, 8 bytes spill stores, 8 bytes spill loads
 * which the tuner's legality check needs (compiler/tune_gpu.c). NVRTC
 * stops at PTX, so the assembler runs as a child process on a temporary
 * file; nothing here needs a device. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backends/cuda/cuda_internal.h"

static int executable(const char *path) { return *path && access(path, X_OK) == 0; }

int cuda_ptxas_path(char *buf, size_t n) {
    const char *env = getenv("QKC_PTXAS"), *home = getenv("CUDA_HOME");
    if (env && executable(env))
        return snprintf(buf, n, "%s", env) < (int)n ? 0 : -1;
    if (home && *home) {
        snprintf(buf, n, "%s/bin/ptxas", home);
        if (executable(buf))
            return 0;
    }
    snprintf(buf, n, "/usr/local/cuda/bin/ptxas");
    return executable(buf) ? 0 : -1;
}

/* The number before `suffix` on the same line as `after` (or anywhere
 * when after is NULL); -1 when absent. */
static int number_before(const char *log, const char *after, const char *suffix) {
    const char *p = after ? strstr(log, after) : log;
    if (!p)
        return -1;
    const char *eol = strchr(p, '\n');
    const char *s = strstr(p, suffix);
    if (!s || (after && eol && s > eol))
        return -1;
    while (s > log && s[-1] == ' ')
        s--;
    const char *d = s;
    while (d > log && d[-1] >= '0' && d[-1] <= '9')
        d--;
    return d < s ? atoi(d) : -1;
}

int cuda_ptxas_parse(const char *log, qk_resources *r) {
    int regs = number_before(log, "Used ", " registers");
    if (regs < 0)
        return -1;
    int smem = number_before(log, "Used ", " bytes smem");
    int spill = number_before(log, NULL, " bytes spill stores");
    r->regs = regs;
    r->smem = smem > 0 ? smem : 0;
    r->spill = spill > 0 ? spill : 0;
    return 0;
}

/* Runs `ptxas -v -arch=sm_<sm> in -o /dev/null` with its output in log
 * (a file). The child's exit status, or -1. */
static int run_ptxas(const char *ptxas, const char *in, int sm, const char *log) {
    char arch[32];
    snprintf(arch, sizeof arch, "-arch=sm_%d", sm);
    int fd = open(log, O_WRONLY | O_TRUNC);
    if (fd < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) { /* only async-signal-safe calls here: the caller may have threads */
        if (dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
            _exit(127);
        execl(ptxas, ptxas, "-v", arch, in, "-o", "/dev/null", (char *)NULL);
        _exit(127);
    }
    close(fd);
    if (pid < 0)
        return -1;
    int st = 0;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int write_all(int fd, const char *s, size_t len) {
    while (len > 0) {
        ssize_t w = write(fd, s, len);
        if (w <= 0)
            return -1;
        s += w;
        len -= (size_t)w;
    }
    return 0;
}

/* The first line of log that says "error", for messages. */
static void first_error(const char *log, char *err, size_t errsz) {
    const char *e = log ? strstr(log, "error") : NULL;
    if (!e) {
        snprintf(err, errsz, "ptxas failed without a message");
        return;
    }
    while (e > log && e[-1] != '\n')
        e--;
    snprintf(err, errsz, "ptxas: %.*s", (int)strcspn(e, "\n"), e);
}

int cuda_ptxas_info(const char *ptx, int sm, qk_resources *r, char *err, size_t errsz) {
    char ptxas[1024];
    if (cuda_ptxas_path(ptxas, sizeof ptxas) != 0) {
        snprintf(err, errsz, "no ptxas ($QKC_PTXAS, $CUDA_HOME/bin or /usr/local/cuda/bin)");
        return -1;
    }
    char in[] = "/tmp/qkc_ptxas_XXXXXX.ptx", log[] = "/tmp/qkc_ptxas_XXXXXX.log";
    int fd = mkstemps(in, 4), fl = mkstemps(log, 4);
    int rc = -1;
    if (fd < 0 || fl < 0 || write_all(fd, ptx, strlen(ptx)) != 0)
        snprintf(err, errsz, "cannot write a temporary file for ptxas: %s", strerror(errno));
    else {
        close(fd);
        fd = -1;
        int st = run_ptxas(ptxas, in, sm, log);
        char *text = qk_read_file(log, NULL);
        if (st != 0)
            first_error(text, err, errsz);
        else if (!text || cuda_ptxas_parse(text, r) != 0)
            snprintf(err, errsz, "ptxas -v printed no register count");
        else
            rc = 0;
        free(text);
    }
    if (fd >= 0)
        close(fd);
    if (fl >= 0)
        close(fl);
    unlink(in);
    unlink(log);
    return rc;
}

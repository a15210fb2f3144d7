/* test_overhead.c — correctness of the overhead work (no timings: those
 * are measured by `qkc bench`): the on-disk kernel cache (a kernel
 * compiled in one context is loaded from disk by a fresh one; truncated,
 * corrupted, foreign or colliding files are recompiled and replaced; an
 * unusable directory or cache_dir = "" writes nothing and still works;
 * the default directory comes from $QKC_CACHE_DIR, $XDG_CACHE_HOME or
 * $HOME) and launches that the small-work rule keeps on the calling
 * thread, or that the spinning pool runs, against the reference. */
#include <CUnit/Basic.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "qkc.h"
#include "support/rt_test.h"

static const char *SRC =
    "format q4 { code = uint4 offset 8; block = 32; scale = f16 }\n"
    "kernel gemv(x: f32[K], W: q4[N, K], b: f32[N]) -> y: f32[N] {\n"
    "  y[n] = sum(k) x[k] * W[n, k] + b[n]\n"
    "}\n"
    "kernel mm(x: f32[M, K], w: f32[N, K]) -> y: f32[M, N] {\n"
    "  y[m, n] = sum(k) x[m, k] * w[n, k]\n"
    "}\n";

static char g_tmp[256]; /* this run's scratch directory */

/* ---- helpers ---- */

static char *path_in(const char *dir, const char *name)
{
    static char buf[4][512];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

/* Number of cached objects (*.o) in dir; the first one's name in first. */
static int count_objects(const char *dir, char *first, size_t n)
{
    DIR *d = opendir(dir);
    int count = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len > 2 && strcmp(e->d_name + len - 2, ".o") == 0) {
            if (count++ == 0 && first)
                snprintf(first, n, "%s/%s", dir, e->d_name);
        }
    }
    if (d)
        closedir(d);
    return count;
}

static int dir_is_empty_or_absent(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n == 0;
}

static qkc_ctx *new_ctx(const char *cache_dir, int threads)
{
    qkc_ctx *ctx = NULL;
    qkc_ctx_options o = {.threads = threads, .cache_dir = cache_dir};
    CU_ASSERT_EQUAL_FATAL(qkc_ctx_create(&o, &ctx), QKC_OK);
    return ctx;
}

/* Gets kernel name in a fresh context and program, launches it on dims
 * with threads and compares with the reference. 0 when all is well. */
static int run_once(const char *cache_dir, const char *name, const int64_t *dims, int threads)
{
    qkc_ctx *ctx = new_ctx(cache_dir, 2);
    qkc_program *p = NULL;
    qkc_kernel *k = NULL;
    int bad = qkc_program_create(ctx, SRC, "overhead.qk", &p) != QKC_OK || qkc_kernel_get(p, name, &k) != QKC_OK;
    if (bad)
        fprintf(stderr, "\n  %s: %s\n", name, qkc_errmsg(ctx));
    rtt_rng r = {7};
    rtt_args a;
    char err[512];
    if (!bad && rtt_args_make(p, k, dims, &r, &a, err, sizeof err) == 0) {
        qkc_launch_options o = {.threads = threads};
        bad = qkc_launch(k, a.t, a.n, &o) != QKC_OK || qkc_reference(k, a.ref, a.n) != QKC_OK;
        if (!bad && rtt_compare(&a, err, sizeof err))
            bad = 1, fprintf(stderr, "\n  %s: %s\n", name, err);
        rtt_args_free(&a);
    } else if (!bad) {
        bad = 1, fprintf(stderr, "\n  %s: %s\n", name, err);
    }
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
    return bad;
}

static const int64_t GEMV_DIMS[] = {96, 40}; /* K, N (qkc_kernel_dim_name order) */

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
           a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static int read_bytes(const char *path, unsigned char **buf, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc(*n ? *n : 1);
    size_t got = fread(*buf, 1, *n, f);
    fclose(f);
    return got == *n ? 0 : -1;
}

static void write_bytes(const char *path, const unsigned char *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite(buf, 1, n, f), n);
    fclose(f);
}

/* ---- the disk cache ---- */

/* A kernel compiled in context A is loaded from disk by a fresh context
 * B: the file is left as it was (a miss would write a new one). */
static void test_disk_hit(void)
{
    const char *dir = path_in(g_tmp, "hit/kernels"); /* parents are created too */
    CU_ASSERT_EQUAL(run_once(dir, "gemv", GEMV_DIMS, 1), 0);
    char file[512] = "";
    CU_ASSERT_EQUAL_FATAL(count_objects(dir, file, sizeof file), 1);
    struct stat before, after;
    CU_ASSERT_EQUAL_FATAL(stat(file, &before), 0);
    CU_ASSERT_EQUAL(before.st_mode & 077, 0); /* private to the user */
    CU_ASSERT_EQUAL(run_once(dir, "gemv", GEMV_DIMS, 1), 0);
    CU_ASSERT_EQUAL(run_once(dir, "gemv", GEMV_DIMS, 0), 0);
    CU_ASSERT_EQUAL_FATAL(stat(file, &after), 0);
    CU_ASSERT(same_file(&before, &after));
    CU_ASSERT_EQUAL(count_objects(dir, NULL, 0), 1);
    /* another kernel gets its own file */
    const int64_t mm_dims[] = {5, 33, 17}; /* M, K, N */
    CU_ASSERT_EQUAL(run_once(dir, "mm", mm_dims, 1), 0);
    CU_ASSERT_EQUAL(count_objects(dir, NULL, 0), 2);
    CU_ASSERT_EQUAL(run_once(dir, "mm", mm_dims, 0), 0);
}

typedef void (*damage_fn)(const char *path, unsigned char *orig, size_t n);

static void truncate_half(const char *path, unsigned char *orig, size_t n)
{
    write_bytes(path, orig, n / 2);
}

static void truncate_header(const char *path, unsigned char *orig, size_t n)
{
    write_bytes(path, orig, 12);
}

static void empty_file(const char *path, unsigned char *orig, size_t n)
{
    write_bytes(path, orig, 0);
}

/* Flips bytes in the section table at the end of the object: the
 * linker would reject it. */
static void flip_tail(const char *path, unsigned char *orig, size_t n)
{
    unsigned char *c = malloc(n);
    memcpy(c, orig, n);
    for (size_t i = n - 64; i < n - 48; i++)
        c[i] ^= 0x5a;
    write_bytes(path, c, n);
    free(c);
}

/* Flips bytes in the middle of the object, which is machine code the
 * linker takes as it is: only the checksum notices. The header is
 * "QKCOBJ01", ident length, object length, checksum (u64 each). */
static void flip_code(const char *path, unsigned char *orig, size_t n)
{
    uint64_t ident_n, obj_n;
    memcpy(&ident_n, orig + 8, 8);
    memcpy(&obj_n, orig + 16, 8);
    CU_ASSERT_EQUAL_FATAL(32 + ident_n + obj_n, n);
    unsigned char *c = malloc(n);
    memcpy(c, orig, n);
    size_t mid = 32 + (size_t)ident_n + (size_t)obj_n / 2;
    for (size_t i = mid; i < mid + 16; i++)
        c[i] ^= 0xff;
    write_bytes(path, c, n);
    free(c);
}

/* Changes the stored key (as a hash collision would look). */
static void other_key(const char *path, unsigned char *orig, size_t n)
{
    unsigned char *c = malloc(n);
    memcpy(c, orig, n);
    c[40] ^= 1; /* inside the ident text, just after the 32-byte header */
    write_bytes(path, c, n);
    free(c);
}

/* A huge length field in the header. */
static void bad_length(const char *path, unsigned char *orig, size_t n)
{
    unsigned char *c = malloc(n);
    memcpy(c, orig, n);
    memset(c + 16, 0xff, 8);
    write_bytes(path, c, n);
    free(c);
}

static void garbage(const char *path, unsigned char *orig, size_t n)
{
    unsigned char *c = malloc(n);
    for (size_t i = 0; i < n; i++)
        c[i] = (unsigned char)(i * 131 + 7);
    write_bytes(path, c, n);
    free(c);
}

/* Group- and world-writable: someone else could have put code there. */
static void world_writable(const char *path, unsigned char *orig, size_t n)
{
    write_bytes(path, orig, n);
    chmod(path, 0666);
}

/* Each damaged file is a miss: the kernel is recompiled (results equal
 * the reference) and the file replaced by a good one. */
static void test_disk_damaged(void)
{
    static const struct {
        const char *what;
        damage_fn fn;
    } cases[] = {
        {"truncated", truncate_half}, {"header only", truncate_header}, {"empty", empty_file},
        {"flipped section table", flip_tail}, {"flipped code", flip_code}, {"other key", other_key},
        {"bad length", bad_length},
        {"garbage", garbage}, {"world-writable", world_writable},
    };
    const char *dir = path_in(g_tmp, "damaged");
    CU_ASSERT_EQUAL_FATAL(run_once(dir, "gemv", GEMV_DIMS, 1), 0);
    char file[512] = "";
    CU_ASSERT_EQUAL_FATAL(count_objects(dir, file, sizeof file), 1);
    unsigned char *orig = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL_FATAL(read_bytes(file, &orig, &n), 0);
    CU_ASSERT_FATAL(n > 128);
    for (int i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
        cases[i].fn(file, orig, n);
        struct stat damaged, after;
        CU_ASSERT_EQUAL_FATAL(stat(file, &damaged), 0);
        int bad = run_once(dir, "gemv", GEMV_DIMS, 1);
        if (bad)
            fprintf(stderr, "\n  case: %s\n", cases[i].what);
        CU_ASSERT_EQUAL(bad, 0);
        CU_ASSERT_EQUAL_FATAL(stat(file, &after), 0);
        CU_ASSERT(!same_file(&damaged, &after)); /* rewritten */
        CU_ASSERT_EQUAL(after.st_mode & 077, 0);
        unsigned char *now = NULL;
        size_t m = 0;
        CU_ASSERT_EQUAL(read_bytes(file, &now, &m), 0);
        CU_ASSERT(m == n && memcmp(now, orig, n) == 0); /* code generation is deterministic */
        free(now);
        CU_ASSERT_EQUAL(count_objects(dir, NULL, 0), 1);
    }
    free(orig);
    /* the good file is a hit again */
    struct stat before, after;
    CU_ASSERT_EQUAL(stat(file, &before), 0);
    CU_ASSERT_EQUAL(run_once(dir, "gemv", GEMV_DIMS, 0), 0);
    CU_ASSERT_EQUAL(stat(file, &after), 0);
    CU_ASSERT(same_file(&before, &after));
}

/* A directory that cannot be created, or a path through a regular file:
 * kernels still compile and run, without a cache. */
static void test_disk_unusable(void)
{
    CU_ASSERT_EQUAL(run_once("/proc/qkc-no-such-dir/kernels", "gemv", GEMV_DIMS, 1), 0);
    const char *file = path_in(g_tmp, "plain-file");
    write_bytes(file, (const unsigned char *)"x", 1);
    CU_ASSERT_EQUAL(run_once(path_in(file, "kernels"), "gemv", GEMV_DIMS, 0), 0);
    struct stat st;
    CU_ASSERT_EQUAL(stat(file, &st), 0);
    CU_ASSERT(S_ISREG(st.st_mode) && st.st_size == 1);
}

/* Saves and restores one environment variable. */
typedef struct saved_env {
    const char *name;
    char *value; /* NULL: was unset */
} saved_env;

static saved_env save_env(const char *name)
{
    const char *v = getenv(name);
    return (saved_env){name, v ? strdup(v) : NULL};
}

static void restore_env(saved_env *s)
{
    if (s->value)
        setenv(s->name, s->value, 1);
    else
        unsetenv(s->name);
    free(s->value);
}

/* cache_dir = "" writes nothing; NULL follows $QKC_CACHE_DIR, then
 * $XDG_CACHE_HOME/qkc/kernels, then $HOME/.cache/qkc/kernels; an empty
 * $QKC_CACHE_DIR disables the cache. */
static void test_disk_directory_choice(void)
{
    saved_env s1 = save_env("QKC_CACHE_DIR"), s2 = save_env("XDG_CACHE_HOME"), s3 = save_env("HOME");
    char env_dir[512], xdg[512], home[512];
    snprintf(env_dir, sizeof env_dir, "%s", path_in(g_tmp, "env"));
    snprintf(xdg, sizeof xdg, "%s", path_in(g_tmp, "xdg"));
    snprintf(home, sizeof home, "%s", path_in(g_tmp, "home"));
    setenv("QKC_CACHE_DIR", env_dir, 1);
    setenv("XDG_CACHE_HOME", xdg, 1);
    setenv("HOME", home, 1);

    CU_ASSERT_EQUAL(run_once("", "gemv", GEMV_DIMS, 1), 0);
    CU_ASSERT(dir_is_empty_or_absent(env_dir) && dir_is_empty_or_absent(xdg) && dir_is_empty_or_absent(home));

    CU_ASSERT_EQUAL(run_once(NULL, "gemv", GEMV_DIMS, 1), 0);
    CU_ASSERT_EQUAL(count_objects(env_dir, NULL, 0), 1);

    setenv("QKC_CACHE_DIR", "", 1);
    CU_ASSERT_EQUAL(run_once(NULL, "gemv", GEMV_DIMS, 1), 0);
    CU_ASSERT(dir_is_empty_or_absent(xdg) && dir_is_empty_or_absent(home));

    unsetenv("QKC_CACHE_DIR");
    CU_ASSERT_EQUAL(run_once(NULL, "gemv", GEMV_DIMS, 1), 0);
    CU_ASSERT_EQUAL(count_objects(path_in(xdg, "qkc/kernels"), NULL, 0), 1);

    unsetenv("XDG_CACHE_HOME");
    CU_ASSERT_EQUAL(run_once(NULL, "gemv", GEMV_DIMS, 1), 0);
    CU_ASSERT_EQUAL(count_objects(path_in(home, ".cache/qkc/kernels"), NULL, 0), 1);

    restore_env(&s1);
    restore_env(&s2);
    restore_env(&s3);
}

/* ---- launches ---- */

/* Launches k on dims with each thread count, reps times (with pauses
 * longer than the pool's spin, so sleeping workers are woken too), and
 * compares every run with one reference run. */
static void launch_reps(qkc_program *p, const char *name, const int64_t *dims, int reps)
{
    qkc_kernel *k = NULL;
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get(p, name, &k), QKC_OK);
    rtt_rng r = {11};
    rtt_args a;
    char err[512];
    CU_ASSERT_EQUAL_FATAL(rtt_args_make(p, k, dims, &r, &a, err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(qkc_reference(k, a.ref, a.n), QKC_OK);
    static const int threads[] = {0, 1, 2, 0};
    for (int i = 0; i < reps * 4; i++) {
        rtt_args_clear_results(&a);
        qkc_launch_options o = {.threads = threads[i % 4]};
        CU_ASSERT_EQUAL(qkc_launch(k, a.t, a.n, &o), QKC_OK);
        int bad = rtt_compare(&a, err, sizeof err);
        if (bad)
            fprintf(stderr, "\n  %s threads=%d: %s\n", name, o.threads, err);
        CU_ASSERT_EQUAL(bad, 0);
        if (i % 7 == 3)
            nanosleep(&(struct timespec){0, 300 * 1000}, NULL);
    }
    rtt_args_free(&a);
}

/* Small shapes (the caller alone under threads = 0), ragged ones, and one
 * above the small-work bound (the pool), on a context with 2 threads. */
static void test_launch_shapes(void)
{
    qkc_ctx *ctx = new_ctx("", 2);
    qkc_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(qkc_program_create(ctx, SRC, "overhead.qk", &p), QKC_OK);
    static const int64_t gemv[][2] = {{32, 1}, {64, 64}, {96, 17}, {1024, 3}, {4096, 160}};
    for (int i = 0; i < 5; i++)
        launch_reps(p, "gemv", gemv[i], 6);
    static const int64_t mm[][3] = {{1, 1, 1}, {33, 5, 17}, {64, 64, 64}, {200, 96, 72}};
    for (int i = 0; i < 4; i++)
        launch_reps(p, "mm", mm[i], 3);
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
}

/* ---- setup ---- */

static int make_tmp(void)
{
    snprintf(g_tmp, sizeof g_tmp, "%s/qkc-overhead-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(g_tmp) ? 0 : -1;
}

static void remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        for (struct dirent *e; d && (e = readdir(d));)
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
                char sub[1024];
                snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
                remove_tree(sub);
            }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

int main(void)
{
    if (make_tmp() != 0) {
        perror("mkdtemp");
        return 1;
    }
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("overhead", NULL, NULL);
    CU_add_test(s, "disk cache: hit in a fresh context", test_disk_hit);
    CU_add_test(s, "disk cache: damaged files are recompiled", test_disk_damaged);
    CU_add_test(s, "disk cache: unusable directory", test_disk_unusable);
    CU_add_test(s, "disk cache: directory choice and \"\"", test_disk_directory_choice);
    CU_add_test(s, "launch: small and pooled shapes", test_launch_shapes);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    remove_tree(g_tmp);
    return failures != 0;
}

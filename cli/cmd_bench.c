/* cmd_bench.c — `qkc bench`: measures one kernel's speed as ratios to the
 * machine's limits (`qkc probe`'s figures from the tuning database) and to
 * baselines timed in the same run. On GPU targets the kernel is timed on
 * the device (runtime/device.h) against the device's copy bandwidth.
 *
 * The pipeline of one run (run_bench):
 *   load the program, compile the kernel once per thread count
 *     (qkc_kernel_get_ex: explicit config, tuning database, schedule, model);
 *   check it against qkc_reference, on a reduced shape when the full one is
 *     too big for the interpreter (each reduced dim not a multiple of 8, so
 *     tiles have ragged edges);
 *   fetch the probe for this machine's fingerprint, or run a quick one;
 *   time it cold (rotating through copies of the inputs that together are
 *     beyond 3 x L3 and 256 MiB, so the weights come from DRAM) and hot (the same
 *     buffers every repetition) for each thread count;
 *   optional baselines (the reference interpreter, f32 sgemm from BLAS) and
 *     overheads (launch vs direct call; cold JIT vs disk-cache hit);
 *   print a table, or one JSON object with --json.
 *
 * Inputs are built like `qkc run` builds them (uniform [-1, 1], quantized
 * parameters packed from random f32; vector codebooks repeat a tile,
 * inputs.c). */
#include "cli/cli.h"
#include "common/base.h"
#include "compiler/tir.h"
#include "runtime/device.h"
#include "runtime/probe.h"
#include "runtime/tunedb.h"

#include <dlfcn.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BENCH_MAX_T 64
#define BENCH_MAX_DIMS 64
#define BENCH_MAX_THREADS 16
#define BENCH_MAX_RUNS (2 * BENCH_MAX_THREADS)
#define BENCH_CHECK_LIMIT ((double)(1 << 24)) /* prod(dims) the reference checks at full size */
#define BENCH_CHECK_DIM 1000                  /* reduced dims are at most this */
#define BENCH_MAX_COPIES 4096
#define BENCH_GPU_MAX_COPIES 64
#define BENCH_GPU_MAX_BYTES (4.0 * (1 << 30)) /* device memory for the copies of a cold run */

/* All tensors of one kernel call: one copy of the inputs. */
typedef struct bench_set {
    qkc_tensor t[BENCH_MAX_T];
    size_t bytes[BENCH_MAX_T];
} bench_set;

/* One timed mode and thread count. Ratios are NAN without a probe. */
typedef struct bench_run {
    const char *mode; /* "cold" or "hot" */
    int threads;
    int64_t reps;
    double median_s, min_s;
    double gbps_w, gbps_in, gops;
    double ratio_bw, ratio_int8, ratio_f32;
    double limit_bw;   /* bytes/s the bandwidth ratio divides by */
    const char *level; /* what ratio_bw compares with: "DRAM", "L3", "L2" */
    int scaled;        /* the bandwidth limit was scaled from the all-threads figure */
    const char *config;
    /* --baseline read (cold): the weights' bytes streamed by the probe's
     * read loop on as many threads, one pass after each repetition */
    double read_median_s, read_bytes, read_gbps, ratio_read;
} bench_run;

typedef struct bench_sgemm {
    int threads;
    double median_s, gflops, ratio; /* ratio: kernel GOP/s / sgemm GFLOP/s */
} bench_sgemm;

typedef struct bench {
    /* options */
    const char *file, *kname, *dims_text, *config_text, *target, *db;
    int any_layout; /* --layout any */
    int threads[BENCH_MAX_THREADS], nthreads, max_threads;
    int64_t reps; /* 0: enough for ~1 s */
    int cold, hot, json, check, overhead, compile_only;
    const char *baseline; /* "none", "ref", "sgemm", "read" */
    /* the program and one kernel handle per thread count */
    qkc_ctx *ctx;
    qkc_program *p;
    qkc_kernel *k[BENCH_MAX_THREADS];
    int n, ndims, cores;
    qkc_param_info info[BENCH_MAX_T];
    int64_t dims[BENCH_MAX_DIMS];
    cli_rng rng;
    qk_target host;
    char fingerprint[512];
    /* GPU targets: timed on the device (qk_device_time), the probe is the device's */
    int gpu;
    qk_target dev;
    int dev_copies; /* device copies of every tensor for cold runs */
    /* inputs at the full shape: sets[0] for hot, all of them for cold */
    bench_set *sets;
    int ncopies;
    double weight_bytes, input_bytes, set_bytes;
    double own_weight_bytes; /* the packed weights in their formats' own layouts (row-interleaved ones may grow) */
    /* the check (and the ref baseline, on the same shape) */
    int checked, reduced, check_pass;
    char check_shape[256];
    double check_err, ref_s, ref_kernel_s;
    /* the probe */
    qk_probe_result probe;
    int have_probe;
    /* results */
    bench_run runs[BENCH_MAX_RUNS];
    int nruns;
    bench_sgemm sgemm[BENCH_MAX_THREADS];
    int nsgemm;
    char sgemm_lib[64], sgemm_note[256];
    int have_overhead;
    char tiny_shape[256], direct_note[512];
    double launch_us, direct_us, jit_cold_ms, disk_hit_ms;
} bench;

/* Text for the reader: stdout, or stderr when stdout carries JSON. */
static void say(const bench *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const bench *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(b->json ? stderr : stdout, fmt, ap);
    va_end(ap);
    fflush(b->json ? stderr : stdout);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ---- options ---- */

/* "1,2,4" -> distinct thread counts in 1..1024, in the given order. */
static int parse_threads(bench *b, const cli_cmd *cmd, const char *v)
{
    b->nthreads = 0;
    for (const char *p = v; *p;) {
        size_t len = strcspn(p, ",");
        char num[32] = "";
        int64_t t = 0;
        if (len == 0 || len >= sizeof num)
            return cli_usage_error(cmd, "--threads needs a comma-separated list of counts in 1..1024, got '%s'", v);
        memcpy(num, p, len);
        if (cli_parse_i64(num, &t) != 0 || t < 1 || t > 1024)
            return cli_usage_error(cmd, "--threads: '%s' is not a thread count in 1..1024", num);
        int dup = 0;
        for (int i = 0; i < b->nthreads; i++)
            dup |= b->threads[i] == (int)t;
        if (!dup && b->nthreads == BENCH_MAX_THREADS)
            return cli_usage_error(cmd, "--threads: at most %d thread counts", BENCH_MAX_THREADS);
        if (!dup)
            b->threads[b->nthreads++] = (int)t;
        p += len + (p[len] == ',');
        if (p[-1] == ',' && !*p)
            return cli_usage_error(cmd, "--threads: trailing ',' in '%s'", v);
    }
    return b->nthreads ? 0 : cli_usage_error(cmd, "--threads needs at least one count");
}

static int parse_choice(const cli_cmd *cmd, const char *opt, const char *v, const char *const *choices)
{
    for (int i = 0; choices[i]; i++)
        if (strcmp(v, choices[i]) == 0)
            return i;
    char list[128] = "";
    for (int i = 0; choices[i]; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", choices[i]);
    cli_usage_error(cmd, "--%s must be one of %s, got '%s'", opt, list, v);
    return -1;
}

static int parse_opts(bench *b, const cli_cmd *cmd, const cli_args *a)
{
    static const char *const modes[] = {"cold", "hot", "both", NULL};
    static const char *const baselines[] = {"none", "ref", "sgemm", "read", NULL};
    const char *v;
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    b->cores = nc < 1 ? 1 : nc > 1024 ? 1024 : (int)nc;
    b->file = a->pos[0];
    b->kname = cli_get(cmd, a, "kernel");
    b->dims_text = cli_get(cmd, a, "dims");
    b->config_text = cli_get(cmd, a, "config");
    if (cli_layout(cmd, a, &b->any_layout) != 0)
        return 2;
    b->target = cli_get(cmd, a, "target");
    b->db = cli_get(cmd, a, "db");
    b->json = cli_get(cmd, a, "json") != NULL;
    b->check = cli_get(cmd, a, "no-check") == NULL;
    b->overhead = cli_get(cmd, a, "overhead") != NULL;
    b->compile_only = cli_get(cmd, a, "compile") != NULL;
    char def[32];
    snprintf(def, sizeof def, "1,%d", b->cores);
    if (parse_threads(b, cmd, (v = cli_get(cmd, a, "threads")) ? v : def))
        return 2;
    if ((v = cli_get(cmd, a, "reps")) && (cli_parse_i64(v, &b->reps) != 0 || b->reps < 1 || b->reps > 10000000))
        return cli_usage_error(cmd, "--reps needs a positive integer, got '%s'", v);
    int mode = (v = cli_get(cmd, a, "mode")) ? parse_choice(cmd, "mode", v, modes) : 2;
    int base = (v = cli_get(cmd, a, "baseline")) ? parse_choice(cmd, "baseline", v, baselines) : 0;
    if (mode < 0 || base < 0)
        return 2;
    b->cold = mode != 1;
    b->hot = mode != 0;
    b->baseline = baselines[base];
    for (int i = 0; i < b->nthreads; i++)
        b->max_threads = b->threads[i] > b->max_threads ? b->threads[i] : b->max_threads;
    return 0;
}

/* ---- the program, the kernels, the dims ---- */

static int load(bench *b)
{
    qkc_ctx_options o = {.target = b->target, .threads = b->max_threads, .tuning_db = b->db};
    qkc_status st = qkc_ctx_create(&o, &b->ctx);
    if (st != QKC_OK)
        return st == QKC_ERR_TARGET
                   ? cli_error("unknown target '%s' (targets: host, x86-64-v3, x86-64-v4, sm_80, sm_90)", b->target)
                   : cli_error("cannot create a context: %s", qkc_strerror(st));
    st = qkc_program_create_file(b->ctx, b->file, &b->p);
    if (b->p)
        fputs(qkc_program_diagnostics_text(b->p), stderr);
    if (st == QKC_ERR_COMPILE)
        return 1;
    return st == QKC_OK ? 0 : cli_error("%s", qkc_errmsg(b->ctx));
}

/* One kernel handle per thread count: the tuning database keys records by
 * thread count, so each may have its own configuration. */
static int get_kernels(bench *b, const cli_cmd *cmd)
{
    if (!b->kname && qkc_program_nkernels(b->p) == 1)
        b->kname = qkc_program_kernel_name(b->p, 0);
    if (!b->kname)
        return cli_usage_error(cmd, "--kernel NAME is required (%s has %d kernels)", b->file,
                               qkc_program_nkernels(b->p));
    for (int i = 0; i < b->nthreads; i++) {
        qkc_kernel_options o = {.dims = b->dims_text, .threads = b->threads[i], .config = b->config_text,
                                .any_layout = b->any_layout};
        qkc_status st = qkc_kernel_get_ex(b->p, b->kname, &o, &b->k[i]);
        if (st == QKC_ERR_INVALID_ARG)
            return cli_usage_error(cmd, "%s", qkc_errmsg(b->ctx));
        if (st != QKC_OK)
            return cli_error("%s", qkc_errmsg(b->ctx));
    }
    b->n = qkc_kernel_nparams(b->k[0]);
    b->ndims = qkc_kernel_ndims(b->k[0]);
    if (b->n > BENCH_MAX_T || b->ndims > BENCH_MAX_DIMS)
        return cli_error("kernel %s has too many tensors or dims for qkc bench", b->kname);
    for (int i = 0; i < b->n; i++)
        qkc_kernel_param(b->k[0], i, &b->info[i]);
    return 0;
}

static int dim_index(const bench *b, const char *name, size_t len)
{
    for (int i = 0; i < b->ndims; i++) {
        const char *d = qkc_kernel_dim_name(b->k[0], i);
        if (strlen(d) == len && strncmp(d, name, len) == 0)
            return i;
    }
    return -1;
}

/* "N=8192,K=8192" for dims (the kernel's order). */
static void dims_str(const bench *b, const int64_t *dims, char *buf, size_t n)
{
    buf[0] = 0;
    for (int i = 0; i < b->ndims; i++)
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%s=%lld", i ? "," : "", qkc_kernel_dim_name(b->k[0], i),
                 (long long)dims[i]);
}

/* Parses --dims into b->dims; every dim must be given. */
static int parse_dims(bench *b, const cli_cmd *cmd)
{
    int set[BENCH_MAX_DIMS] = {0};
    char all[512] = "";
    for (int i = 0; i < b->ndims; i++)
        snprintf(all + strlen(all), sizeof all - strlen(all), "%s%s", i ? ", " : "", qkc_kernel_dim_name(b->k[0], i));
    for (const char *p = b->dims_text ? b->dims_text : ""; *p;) {
        size_t item = strcspn(p, ",");
        const char *eq = memchr(p, '=', item);
        int i = eq ? dim_index(b, p, (size_t)(eq - p)) : -1;
        char num[32] = "";
        if (eq)
            snprintf(num, sizeof num, "%.*s", (int)(item - (size_t)(eq - p) - 1), eq + 1);
        if (i < 0 || cli_parse_i64(num, &b->dims[i]) != 0 || b->dims[i] < 0)
            return cli_usage_error(cmd, "--dims: bad item '%.*s' (kernel %s has dims %s; values >= 0)", (int)item, p,
                                   b->kname, all);
        set[i] = 1;
        p += item + (p[item] == ',');
    }
    for (int i = 0; i < b->ndims; i++)
        if (!set[i])
            return cli_usage_error(cmd, "--dims: %s is missing (kernel %s has dims %s)", qkc_kernel_dim_name(b->k[0], i),
                                   b->kname, all);
    return 0;
}

static double prod_dims(const bench *b, const int64_t *dims)
{
    double p = 1;
    for (int i = 0; i < b->ndims; i++)
        p *= (double)dims[i];
    return p;
}

/* ---- tensors ---- */

/* Shape, buffer and contents of tensor i at dims. */
static int make_tensor(bench *b, bench_set *s, const int64_t *dims, int i)
{
    cli_inputs in = {b->ctx, b->p, b->k[0], b->info, dims, &b->rng, s->t, s->bytes};
    return cli_make_input(&in, i);
}

static void free_set(const bench *b, bench_set *s)
{
    for (int i = 0; i < b->n; i++)
        free(s->t[i].data);
    memset(s, 0, sizeof *s);
}

/* Every tensor at dims; dense ones first, so codebooks exist before the
 * tensors packed with them. */
static int make_set(bench *b, bench_set *s, const int64_t *dims)
{
    memset(s, 0, sizeof *s);
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < b->n; i++)
            if ((b->info[i].dtype == QKC_PACKED) == pass && make_tensor(b, s, dims, i))
                return free_set(b, s), 1;
    return 0;
}

static int copy_set(const bench *b, bench_set *dst, const bench_set *src)
{
    *dst = *src;
    for (int i = 0; i < b->n; i++)
        dst->t[i].data = NULL;
    for (int i = 0; i < b->n; i++) {
        dst->t[i].data = cli_alloc(src->bytes[i]);
        if (!dst->t[i].data)
            return free_set(b, dst), cli_error("out of memory for a copy of the inputs");
        memcpy(dst->t[i].data, src->t[i].data, src->bytes[i]);
    }
    return 0;
}

static int launch(const bench *b, qkc_kernel *k, bench_set *s, int threads)
{
    qkc_launch_options o = {.threads = threads};
    qkc_status st = qkc_launch(k, s->t, b->n, &o);
    return st == QKC_OK ? 0 : cli_error("launch of %s: %s", b->kname, qkc_errmsg(b->ctx));
}

/* ---- the check against the reference interpreter ---- */

/* The check shape: the full one, or each dim above BENCH_CHECK_DIM cut to
 * it, then the largest halved until the product is small enough; a cut
 * dim that is a multiple of 8 loses 1, so tiles have ragged edges. */
static int check_dims(const bench *b, int64_t *d)
{
    int cut[BENCH_MAX_DIMS] = {0};
    memcpy(d, b->dims, (size_t)b->ndims * sizeof *d);
    if (prod_dims(b, d) <= BENCH_CHECK_LIMIT)
        return 0;
    for (int i = 0; i < b->ndims; i++)
        if (d[i] > BENCH_CHECK_DIM)
            d[i] = BENCH_CHECK_DIM, cut[i] = 1;
    while (prod_dims(b, d) > BENCH_CHECK_LIMIT) {
        int m = 0;
        for (int i = 1; i < b->ndims; i++)
            m = d[i] > d[m] ? i : m;
        d[m] /= 2;
        cut[m] = 1;
    }
    for (int i = 0; i < b->ndims; i++)
        if (cut[i] && d[i] > 8 && d[i] % 8 == 0)
            d[i] -= 1;
    return 1;
}

/* Compares every result of kernel handle ki; prints its check line.
 * Accumulates into check_pass / check_err. */
static void compare(bench *b, int ki, const bench_set *s, const bench_set *ref, const char *full)
{
    char what[512] = "", who[64] = "";
    int pass = 1;
    for (int i = 0; i < b->n; i++) {
        if (!b->info[i].is_result)
            continue;
        double tol, e = cli_result_error(&s->t[i], ref->t[i].data, s->bytes[i], NULL, &tol);
        pass &= e <= tol;
        b->check_err = fmax(b->check_err, e);
        snprintf(what + strlen(what), sizeof what - strlen(what), "%s%s %s %.3g (tol %.0e)", what[0] ? ", " : "",
                 b->info[i].name, cli_dtype_is_int(s->t[i].dtype) ? "max abs err" : "rel err", e, tol);
    }
    b->check_pass &= pass;
    int several = 0;
    for (int j = 1; j < b->nthreads; j++)
        several |= b->k[j] != b->k[0];
    if (several)
        snprintf(who, sizeof who, " (config for %d threads)", b->threads[ki]);
    if (b->reduced)
        say(b, "check%s: %s at %s (reduced from %s for the reference interpreter): %s\n", who, what, b->check_shape,
            full, pass ? "PASS" : "FAIL");
    else
        say(b, "check%s: %s at %s: %s\n", who, what, b->check_shape, pass ? "PASS" : "FAIL");
}

/* Runs every distinct kernel handle on s and compares it with ref. */
static int check_kernels(bench *b, bench_set *s, const bench_set *ref, const char *full)
{
    b->check_pass = 1;
    for (int ki = 0; ki < b->nthreads; ki++) {
        int seen = 0;
        for (int j = 0; j < ki; j++)
            seen |= b->k[j] == b->k[ki];
        if (seen)
            continue;
        for (int i = 0; i < b->n; i++)
            if (b->info[i].is_result)
                memset(s->t[i].data, 0xff, s->bytes[i]);
        if (launch(b, b->k[ki], s, b->threads[ki]))
            return 1;
        compare(b, ki, s, ref, full);
    }
    b->checked = 1;
    return 0;
}

/* Median seconds of a 1-thread hot launch on s (>= 5 reps, ~0.2 s). */
static double time_hot(const bench *b, qkc_kernel *k, bench_set *s)
{
    double t0 = cli_now();
    if (launch(b, k, s, 1))
        return -1;
    double once = cli_now() - t0;
    int64_t reps = once > 0 ? (int64_t)(0.2 / once) : 1000;
    reps = reps < 5 ? 5 : reps > 10000 ? 10000 : reps;
    double *ts = malloc((size_t)reps * sizeof *ts);
    for (int64_t r = 0; ts && r < reps; r++) {
        t0 = cli_now();
        if (launch(b, k, s, 1))
            return free(ts), -1;
        ts[r] = cli_now() - t0;
    }
    if (!ts)
        return cli_error("out of memory"), -1;
    qsort(ts, (size_t)reps, sizeof *ts, cmp_double);
    double med = ts[reps / 2];
    free(ts);
    return med;
}

/* The reference and the kernel on the check shape; the reference is timed
 * for --baseline ref. 0, or 1 after an error. */
static int run_check(bench *b)
{
    int64_t d[BENCH_MAX_DIMS];
    char full[256];
    b->reduced = check_dims(b, d);
    dims_str(b, d, b->check_shape, sizeof b->check_shape);
    dims_str(b, b->dims, full, sizeof full);
    bench_set s, ref;
    if (make_set(b, &s, d))
        return 1;
    if (copy_set(b, &ref, &s))
        return free_set(b, &s), 1;
    double t0 = cli_now();
    qkc_status st = qkc_reference(b->k[0], ref.t, b->n);
    b->ref_s = cli_now() - t0;
    int rc = st == QKC_OK ? check_kernels(b, &s, &ref, full) : cli_error("reference: %s", qkc_errmsg(b->ctx));
    if (rc == 0 && strcmp(b->baseline, "ref") == 0) {
        b->ref_kernel_s = time_hot(b, b->k[0], &s);
        rc = b->ref_kernel_s < 0;
    }
    free_set(b, &s);
    free_set(b, &ref);
    return rc;
}

/* ---- the probe ---- */

static const char *db_path(const bench *b, char *buf, size_t n)
{
    return b->db ? b->db : qk_tunedb_default_path(buf, n);
}

static int probe_stored(bench *b, const char *path)
{
    qk_tunedb *db = NULL;
    char err[512] = "";
    if (!path || access(path, F_OK) != 0 || qk_tunedb_open(path, 1, &db, err, sizeof err) != 0)
        return 0;
    int found = qk_tunedb_probe_get(db, b->fingerprint, &b->probe, err, sizeof err);
    qk_tunedb_close(db);
    return found == 1;
}

/* Stores a fresh probe (best effort); the outcome as text. */
static void probe_store(const bench *b, const char *path, char *note, size_t n)
{
    qk_tunedb *db = NULL;
    char err[512] = "";
    if (!path)
        snprintf(note, n, "not stored: no database path");
    else if (qk_tunedb_open(path, 0, &db, err, sizeof err) != 0 ||
             qk_tunedb_probe_put(db, &b->probe, err, sizeof err) != 0)
        snprintf(note, n, "not stored: %s", err);
    else
        snprintf(note, n, "stored in %s", path);
    qk_tunedb_close(db);
}

/* The stored probe for this machine, else a quick measurement now. */
static void load_probe(bench *b)
{
    char buf[4096], err[512] = "", note[1024];
    const char *path = db_path(b, buf, sizeof buf);
    if (probe_stored(b, path)) {
        b->have_probe = 1;
        return;
    }
    qk_probe_opts o = {.threads = 0, .quick = 1};
    if (qk_probe_run(&o, &b->probe, err, sizeof err) != 0) {
        say(b, "probe: none stored for this machine, and measuring failed (%s): ratios are left out\n", err);
        return;
    }
    b->have_probe = 1;
    probe_store(b, path, note, sizeof note);
    say(b, "probe: none stored for this machine: measured now (quick, %.1f s), %s; 'qkc probe' measures fully\n",
        b->probe.seconds, note);
}

/* GPU targets: the device's stored probe, else a quick one now (stored).
 * Without a driver or device that is an error: nothing can be timed. */
static int load_device_probe(bench *b)
{
    char buf[4096], note[4200];
    const char *path = db_path(b, buf, sizeof buf);
    if (probe_stored(b, path)) {
        b->have_probe = 1;
        return 0;
    }
    if (qk_device_probe(b->ctx, 1, &b->probe) != QKC_OK)
        return cli_error("%s", qkc_errmsg(b->ctx));
    b->have_probe = 1;
    probe_store(b, path, note, sizeof note);
    say(b, "probe: none stored for this device: measured now (quick, %.1f s), %s; 'qkc probe --target %s' measures "
           "fully\n",
        b->probe.seconds, note, qkc_ctx_target(b->ctx));
    return 0;
}

/* The probe's figure for t threads: [0] one thread, [1] all threads;
 * in between, the all-threads figure scaled by t / threads. */
static double probe_at(const bench *b, const double fig[2], int t, int *scaled)
{
    int all = b->probe.threads > 0 ? b->probe.threads : b->cores;
    if (t <= 1)
        return fig[0];
    if (t >= all)
        return fig[1];
    *scaled = 1;
    return fig[1] * t / all;
}

static void print_probe(const bench *b)
{
    const qk_probe_result *p = &b->probe;
    if (b->gpu) {
        say(b, "probe: device memory copy bandwidth %.1f GB/s (read + write)\n", p->read_bw[QK_PROBE_DRAM][0] / 1e9);
        return;
    }
    say(b, "probe: read GB/s (1 | %d threads): DRAM %.1f | %.1f, L3 %.1f | %.1f, L2 %.1f | %.1f; "
           "per core: int8 %.0f GOP/s (%s), f32 %.0f GFLOP/s (%s)\n",
        p->threads, p->read_bw[QK_PROBE_DRAM][0] / 1e9, p->read_bw[QK_PROBE_DRAM][1] / 1e9,
        p->read_bw[QK_PROBE_L3][0] / 1e9, p->read_bw[QK_PROBE_L3][1] / 1e9, p->read_bw[QK_PROBE_L2][0] / 1e9,
        p->read_bw[QK_PROBE_L2][1] / 1e9, p->int8_dot[0] / 1e9, p->int8_insn, p->f32_fma[0] / 1e9, p->f32_insn);
}

/* ---- timing ---- */

/* The inputs at the full shape, and for cold mode enough copies that the
 * others, read between two uses of one, exceed 3 x L3 and 256 MiB
 * (cli_cold_copies): with fewer, part of a copy can survive in an L3
 * whose replacement does not evict the oldest lines first, and "cold"
 * figures exceed DRAM's. */
static int make_copies(bench *b)
{
    bench_set first;
    if (make_set(b, &first, b->dims))
        return 1;
    for (int i = 0; i < b->n; i++) {
        b->set_bytes += (double)first.bytes[i];
        if (!b->info[i].is_result) {
            b->input_bytes += (double)first.bytes[i];
            b->weight_bytes += b->info[i].dtype == QKC_PACKED ? (double)first.bytes[i] : 0;
            size_t own = first.bytes[i];
            if (b->info[i].dtype == QKC_PACKED && b->info[i].repack_rows &&
                qkc_format_size(b->p, b->info[i].format, first.t[i].shape[0], first.t[i].shape[1], &own) != QKC_OK)
                own = first.bytes[i];
            b->own_weight_bytes += b->info[i].dtype == QKC_PACKED ? (double)own : 0;
        }
    }
    int copies = !b->cold ? 1 : cli_cold_copies(b->set_bytes, b->host.l3, BENCH_MAX_COPIES);
    if (b->cold && strcmp(b->baseline, "read") == 0 && copies < 4) /* the read pass takes the copy half a turn ahead */
        copies = 4;
    if (b->gpu) { /* one host set; the copies for cold runs are made on the device, beyond 3 x its L2 */
        int64_t l2 = b->dev.l2 > 0 ? b->dev.l2 : 50 << 20;
        double dev = fmin(ceil(3.0 * (double)l2 / fmax(b->set_bytes, 1)), BENCH_GPU_MAX_BYTES / fmax(b->set_bytes, 1));
        b->dev_copies = dev < 2 ? 2 : dev > BENCH_GPU_MAX_COPIES ? BENCH_GPU_MAX_COPIES : (int)dev;
        copies = 1;
    }
    b->sets = calloc((size_t)copies, sizeof *b->sets);
    if (!b->sets)
        return free_set(b, &first), cli_error("out of memory");
    b->sets[0] = first;
    for (b->ncopies = 1; b->ncopies < copies; b->ncopies++)
        if (copy_set(b, &b->sets[b->ncopies], &first))
            return 1;
    return 0;
}

/* Ratio of the run's bandwidth to the probe's limit for its level. */
static void ratios(const bench *b, bench_run *r)
{
    r->ratio_bw = r->ratio_int8 = r->ratio_f32 = r->limit_bw = NAN;
    int t = r->threads, lvl = QK_PROBE_DRAM, ct = t < b->cores ? t : b->cores;
    if (strcmp(r->mode, "hot") == 0 && b->host.l2 > 0 && b->set_bytes <= (double)b->host.l2 * ct)
        lvl = QK_PROBE_L2;
    else if (strcmp(r->mode, "hot") == 0 && b->host.l3 > 0 && b->set_bytes <= (double)b->host.l3)
        lvl = QK_PROBE_L3;
    r->level = lvl == QK_PROBE_L2 ? "L2" : lvl == QK_PROBE_L3 ? "L3" : "DRAM";
    if (b->gpu)
        r->level = "copy";
    if (!b->have_probe)
        return;
    if (b->gpu) { /* the device's copy bandwidth is the one limit probed */
        r->limit_bw = b->probe.read_bw[QK_PROBE_DRAM][0];
        r->ratio_bw = r->limit_bw > 0 ? (b->weight_bytes > 0 ? r->gbps_w : r->gbps_in) * 1e9 / r->limit_bw : NAN;
        return;
    }
    r->limit_bw = probe_at(b, b->probe.read_bw[lvl], t, &r->scaled);
    double gbps = b->weight_bytes > 0 ? r->gbps_w : r->gbps_in;
    r->ratio_bw = r->limit_bw > 0 ? gbps * 1e9 / r->limit_bw : NAN;
    r->ratio_int8 = b->probe.int8_dot[0] > 0 ? r->gops * 1e9 / (b->probe.int8_dot[0] * ct) : NAN;
    r->ratio_f32 = b->probe.f32_fma[0] > 0 ? r->gops * 1e9 / (b->probe.f32_fma[0] * ct) : NAN;
}

static void figures(const bench *b, bench_run *r)
{
    double t = r->median_s > 0 ? r->median_s : 1e-12;
    r->gbps_w = b->weight_bytes / t / 1e9;
    r->gbps_in = b->input_bytes / t / 1e9;
    r->gops = 2 * prod_dims(b, b->dims) / t / 1e9;
    ratios(b, r);
    r->read_gbps = r->ratio_read = NAN;
    if (r->read_median_s > 0 && r->read_bytes > 0) {
        r->read_gbps = r->read_bytes / r->read_median_s / 1e9;
        r->ratio_read = (b->weight_bytes > 0 ? r->gbps_w : r->gbps_in) / r->read_gbps;
    }
}

/* Device times of tm->reps launches on the device copies of sets[0]. */
static int device_time(const bench *b, const qk_device_timing *tm)
{
    qkc_status st = qk_device_time(b->k[0], b->sets[0].t, b->n, tm);
    return st == QKC_OK ? 0 : cli_error("timed launch of %s: %s", b->kname, qkc_errmsg(b->ctx));
}

/* GPU: three launches to size the run (about 0.5 s of kernel time, 10 to
 * 100000 reps), then the timed reps, each on the next device copy (cold)
 * or the same one (hot). Times are the device's (events), median. */
static int measure_gpu(bench *b, int cold, bench_run *r)
{
    double first[3];
    qk_device_timing tm = {.copies = cold ? b->dev_copies : 1, .reps = 3, .seconds = first};
    if (device_time(b, &tm))
        return 1;
    qsort(first, 3, sizeof *first, cmp_double);
    int64_t reps = b->reps ? b->reps : first[1] > 0 ? (int64_t)(0.5 / first[1]) : 100000;
    reps = b->reps ? reps : reps < 10 ? 10 : reps > 100000 ? 100000 : reps;
    double *ts = malloc((size_t)reps * sizeof *ts);
    if (!ts)
        return cli_error("out of memory");
    tm.reps = (int)reps;
    tm.seconds = ts;
    if (device_time(b, &tm))
        return free(ts), 1;
    qsort(ts, (size_t)reps, sizeof *ts, cmp_double);
    *r = (bench_run){.mode = cold ? "cold" : "hot", .threads = 1, .reps = reps, .median_s = ts[reps / 2],
                     .min_s = ts[0]};
    free(ts);
    qkc_kernel_config(b->k[0], &r->config, NULL);
    figures(b, r);
    return 0;
}

/* --baseline read: one pass of the probe's read loop over the packed
 * parameters of s (every input when none is packed), each split into t
 * parts of whole 512 bytes, part i on thread i. Seconds (summed over the
 * tensors) and the bytes read, or -1 after an error. */
static double read_pass(const bench *b, const bench_set *s, int t, double *bytes)
{
    void *parts[BENCH_MAX_THREADS];
    double total = 0;
    *bytes = 0;
    for (int i = 0; i < b->n; i++) {
        int packed = b->info[i].dtype == QKC_PACKED;
        if (b->info[i].is_result || (b->weight_bytes > 0 && !packed))
            continue;
        uintptr_t p0 = ((uintptr_t)s->t[i].data + 63) / 64 * 64;
        size_t skip = p0 - (uintptr_t)s->t[i].data;
        size_t each = s->bytes[i] > skip ? (s->bytes[i] - skip) / (size_t)t / 512 * 512 : 0;
        if (each == 0)
            continue;
        for (int k = 0; k < t; k++)
            parts[k] = (char *)p0 + (size_t)k * each;
        char err[256];
        double got = 0, sec = qk_probe_read_pass(parts, t, each, &got, err, sizeof err);
        if (sec < 0)
            return cli_error("read baseline: %s", err), -1;
        total += sec;
        *bytes += got;
    }
    return total;
}

/* Warm-up (a pass over the copies), then the timed repetitions, each on
 * the next copy (cold) or the same one (hot). With --baseline read, cold:
 * after each repetition a read pass over the copy half a turn ahead (as
 * cold as the kernel's: the other copies were read in between), so the
 * kernel and the memory system's plain read rate are measured in the same
 * seconds, under the same load from the host's other tenants. */
static int measure(bench *b, int ti, int cold, bench_run *r)
{
    if (b->gpu)
        return measure_gpu(b, cold, r);
    int ncopies = cold ? b->ncopies : 1, t = b->threads[ti];
    double once = 0;
    for (int c = 0; c < (ncopies > 2 ? ncopies : 2); c++) {
        double t0 = cli_now();
        if (launch(b, b->k[ti], &b->sets[c % ncopies], t))
            return 1;
        once = cli_now() - t0;
    }
    int64_t reps = b->reps ? b->reps : once > 0 ? (int64_t)(1.0 / once) : 100000;
    reps = b->reps ? reps : reps < 5 ? 5 : reps > 100000 ? 100000 : reps;
    int rd = cold && strcmp(b->baseline, "read") == 0;
    if (rd && !b->reps && reps > 1000) /* a read pass (and its threads' start) after each: bound the run */
        reps = 1000;
    double *ts = malloc((size_t)reps * sizeof *ts), *rs = rd ? malloc((size_t)reps * sizeof *rs) : NULL, rbytes = 0;
    if (!ts || (rd && !rs))
        return free(ts), free(rs), cli_error("out of memory");
    for (int64_t i = 0; i < reps; i++) {
        bench_set *s = &b->sets[i % ncopies];
        double t0 = cli_now();
        if (launch(b, b->k[ti], s, t))
            return free(ts), free(rs), 1;
        ts[i] = cli_now() - t0;
        if (rd && (rs[i] = read_pass(b, &b->sets[(i + ncopies / 2) % ncopies], t, &rbytes)) < 0)
            return free(ts), free(rs), 1;
    }
    qsort(ts, (size_t)reps, sizeof *ts, cmp_double);
    *r = (bench_run){.mode = cold ? "cold" : "hot", .threads = t, .reps = reps, .median_s = ts[reps / 2],
                     .min_s = ts[0]};
    if (rd) {
        qsort(rs, (size_t)reps, sizeof *rs, cmp_double);
        r->read_median_s = rs[reps / 2];
        r->read_bytes = rbytes;
    }
    free(ts);
    free(rs);
    qkc_kernel_config(b->k[ti], &r->config, NULL);
    figures(b, r);
    return 0;
}

static void pct(char *buf, size_t n, double r)
{
    if (isnan(r))
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, "%.1f%%", 100 * r);
}

static void print_run(const bench *b, const bench_run *r)
{
    char bw[32], i8[16], f32[16], lvl[48];
    pct(bw, sizeof bw, r->ratio_bw);
    pct(i8, sizeof i8, r->ratio_int8);
    pct(f32, sizeof f32, r->ratio_f32);
    snprintf(lvl, sizeof lvl, "%s %s%s", bw, r->level, r->scaled ? "*" : "");
    say(b, "%-5s %7d %7lld %11.4f %11.4f %9.2f %9.2f %9.2f  %-13s %9s %9s\n", r->mode, r->threads, (long long)r->reps,
        r->median_s * 1e3, r->min_s * 1e3, r->gbps_w, r->gbps_in, r->gops, lvl, i8, f32);
    if (!isnan(r->read_gbps))
        say(b, "      baseline read (the same bytes, cold, %d thread%s, one pass after each repetition): median %.4f ms, "
               "%.2f GB/s; kernel / read = %.1f%%\n",
            r->threads, r->threads > 1 ? "s" : "", r->read_median_s * 1e3, r->read_gbps, 100 * r->ratio_read);
    else if (strcmp(b->baseline, "read") == 0 && strcmp(r->mode, "cold") == 0)
        say(b, "      baseline read skipped: %s\n",
            b->gpu ? "a CPU baseline (the GPU's limit is its probe's copy bandwidth)"
                   : "the weights hold fewer than 512 bytes per thread");
}

static int run_timing(bench *b)
{
    say(b, "%-5s %7s %7s %11s %11s %9s %9s %9s  %-13s %9s %9s\n", "mode", "threads", "reps", "median ms", "min ms",
        "GB/s W", "GB/s in", "GOP/s", "of bw limit", "of int8", "of f32");
    int scaled = 0;
    for (int cold = 1; cold >= 0; cold--) {
        if ((cold && !b->cold) || (!cold && !b->hot))
            continue;
        for (int ti = 0; ti < (b->gpu ? 1 : b->nthreads); ti++) { /* threads mean nothing on a GPU */
            bench_run *r = &b->runs[b->nruns];
            if (measure(b, ti, cold, r))
                return 1;
            b->nruns++;
            scaled |= r->scaled;
            print_run(b, r);
        }
    }
    if (scaled)
        say(b, "* limit scaled linearly from the probe's all-threads figure (threads / %d)\n", b->probe.threads);
    return 0;
}

/* ---- baseline: f32 sgemm from a BLAS library ---- */

typedef void (*bench_sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                               const float *bm, int ldb, float beta, float *c, int ldc);
typedef void (*bench_nthreads_fn)(int);

enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };

/* The indexes of dims named M, N, K (any case), or -1 when the kernel has
 * other dims. */
static int mnk_dims(const bench *b, int idx[3])
{
    idx[0] = idx[1] = idx[2] = -1;
    if (b->ndims != 3)
        return -1;
    for (int i = 0; i < 3; i++) {
        const char *d = qkc_kernel_dim_name(b->k[0], i);
        const char *pos = d[0] && !d[1] ? strchr("MNK", d[0] & ~0x20) : NULL;
        if (!pos || idx[pos - "MNK"] >= 0)
            return -1;
        idx[pos - "MNK"] = i;
    }
    return 0;
}

static void *open_blas(bench *b)
{
    static const char *const libs[] = {"libopenblas.so.0", "libopenblas.so", "libblas.so.3"};
    for (int i = 0; i < 3; i++) {
        void *h = dlopen(libs[i], RTLD_NOW | RTLD_LOCAL);
        if (h && dlsym(h, "cblas_sgemm")) {
            snprintf(b->sgemm_lib, sizeof b->sgemm_lib, "%s", libs[i]);
            return h;
        }
        if (h)
            dlclose(h);
    }
    return NULL;
}

/* Median of C[M,N] = A[M,K] . B[N,K]^T (>= 3 reps, ~0.5 s; one when a call
 * takes longer). */
static double time_sgemm(bench_sgemm_fn f, int m, int n, int k, const float *A, const float *B, float *C)
{
    double ts[1000];
    double t0 = cli_now();
    f(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, CBLAS_TRANS, m, n, k, 1.0f, A, k, B, k, 0.0f, C, n);
    double once = cli_now() - t0;
    int reps = once > 0.5 ? 0 : once > 0 ? (int)(0.5 / once) : 1000;
    reps = reps == 0 ? 0 : reps < 3 ? 3 : reps > 1000 ? 1000 : reps;
    for (int r = 0; r < reps; r++) {
        t0 = cli_now();
        f(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, CBLAS_TRANS, m, n, k, 1.0f, A, k, B, k, 0.0f, C, n);
        ts[r] = cli_now() - t0;
    }
    if (reps == 0)
        return once;
    qsort(ts, (size_t)reps, sizeof *ts, cmp_double);
    return ts[reps / 2];
}

/* The kernel's GOP/s at t threads: the hot run, else the cold one. */
static double kernel_gops(const bench *b, int t)
{
    double g = NAN;
    for (int i = 0; i < b->nruns; i++)
        if (b->runs[i].threads == t && (isnan(g) || strcmp(b->runs[i].mode, "hot") == 0))
            g = b->runs[i].gops;
    return g;
}

static int sgemm_runs(bench *b, void *h, const int idx[3])
{
    bench_sgemm_fn f = (bench_sgemm_fn)dlsym(h, "cblas_sgemm");
    bench_nthreads_fn setn = (bench_nthreads_fn)dlsym(h, "openblas_set_num_threads");
    int64_t m = b->dims[idx[0]], n = b->dims[idx[1]], k = b->dims[idx[2]];
    if (m <= 0 || n <= 0 || k <= 0 || m > INT32_MAX || n > INT32_MAX || k > INT32_MAX)
        return snprintf(b->sgemm_note, sizeof b->sgemm_note, "sgemm baseline skipped: M, N, K must be in 1..2^31"), 0;
    float *A = malloc((size_t)(m * k) * sizeof *A), *B = malloc((size_t)(n * k) * sizeof *B);
    float *C = malloc((size_t)(m * n) * sizeof *C);
    if (!A || !B || !C)
        return free(A), free(B), free(C), cli_error("out of memory for the sgemm baseline");
    cli_fill_dense(&b->rng, QKC_F32, A, m * k);
    cli_fill_dense(&b->rng, QKC_F32, B, n * k);
    if (!setn)
        snprintf(b->sgemm_note, sizeof b->sgemm_note,
                 "%s is not OpenBLAS (no openblas_set_num_threads): thread count not set, "
                 "likely an untuned BLAS; apt-get install libopenblas0 for a fair baseline",
                 b->sgemm_lib);
    for (int ti = 0; ti < b->nthreads; ti++) {
        bench_sgemm *s = &b->sgemm[b->nsgemm++];
        s->threads = b->threads[ti];
        if (setn)
            setn(s->threads);
        s->median_s = time_sgemm(f, (int)m, (int)n, (int)k, A, B, C);
        s->gflops = 2.0 * (double)m * (double)n * (double)k / s->median_s / 1e9;
        s->ratio = kernel_gops(b, s->threads) / s->gflops;
    }
    free(A), free(B), free(C);
    return 0;
}

static int run_sgemm(bench *b)
{
    int idx[3];
    if (mnk_dims(b, idx) != 0) {
        snprintf(b->sgemm_note, sizeof b->sgemm_note, "sgemm baseline skipped: the kernel's dims are not M, N, K");
        return say(b, "%s\n", b->sgemm_note), 0;
    }
    void *h = open_blas(b);
    if (!h) {
        snprintf(b->sgemm_note, sizeof b->sgemm_note,
                 "sgemm baseline skipped: libopenblas not found (apt-get install libopenblas0)");
        return say(b, "%s\n", b->sgemm_note), 0;
    }
    int rc = sgemm_runs(b, h, idx);
    dlclose(h);
    for (int i = 0; rc == 0 && i < b->nsgemm; i++)
        say(b, "baseline sgemm (%s, f32, hot): %d threads %.4f ms, %.2f GFLOP/s; kernel / sgemm = %.2fx\n",
            b->sgemm_lib, b->sgemm[i].threads, b->sgemm[i].median_s * 1e3, b->sgemm[i].gflops, b->sgemm[i].ratio);
    if (rc == 0 && b->sgemm_note[0])
        say(b, "  (%s)\n", b->sgemm_note);
    return rc;
}

/* ---- overheads: launch vs direct call ---- */

/* Block length of a format: the largest column count packed like one. */
static int64_t block_len(const bench *b, const char *format)
{
    size_t one, n;
    if (qkc_format_size(b->p, format, 1, 1, &one) != QKC_OK)
        return 64;
    for (int64_t c = 2; c <= 4096; c++)
        if (qkc_format_size(b->p, format, 1, c, &n) != QKC_OK || n > one)
            return c - 1;
    return 64;
}

/* Every dim 64, except blocked axes of quantized tensors: one block; then
 * the largest other dims halved (not below 8) while the product of the
 * dims exceeds 2^14, so that 21000 calls stay quick. */
static void tiny_dims(const bench *b, int64_t *d)
{
    int64_t blk[BENCH_MAX_DIMS] = {0};
    for (int i = 0; i < b->n; i++) {
        const qkc_param_info *in = &b->info[i];
        const char *last = in->rank ? in->dims[in->rank - 1] : "";
        int j = in->dtype == QKC_PACKED ? dim_index(b, last, strlen(last)) : -1;
        int64_t len = j >= 0 ? block_len(b, in->format) : 0;
        if (j >= 0 && len > blk[j])
            blk[j] = len;
    }
    for (int i = 0; i < b->ndims; i++)
        d[i] = blk[i] ? blk[i] : 64;
    while (prod_dims(b, d) > (double)(1 << 14)) {
        int m = -1;
        for (int i = 0; i < b->ndims; i++)
            if (!blk[i] && d[i] > 8 && (m < 0 || d[i] > d[m]))
                m = i;
        if (m < 0)
            break;
        d[m] /= 2;
    }
}

typedef uint64_t u64;

/* Calls fn with n pointer-sized arguments (tensor pointers and int64
 * values are passed alike on the supported 64-bit ABIs). */
static int call_direct(void *fn, const u64 *a, int n)
{
    switch (n) {
    case 3: ((void (*)(u64, u64, u64))fn)(a[0], a[1], a[2]); return 0;
    case 4: ((void (*)(u64, u64, u64, u64))fn)(a[0], a[1], a[2], a[3]); return 0;
    case 5: ((void (*)(u64, u64, u64, u64, u64))fn)(a[0], a[1], a[2], a[3], a[4]); return 0;
    case 6: ((void (*)(u64, u64, u64, u64, u64, u64))fn)(a[0], a[1], a[2], a[3], a[4], a[5]); return 0;
    case 7: ((void (*)(u64, u64, u64, u64, u64, u64, u64))fn)(a[0], a[1], a[2], a[3], a[4], a[5], a[6]); return 0;
    case 8:
        ((void (*)(u64, u64, u64, u64, u64, u64, u64, u64))fn)(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
        return 0;
    case 9:
        ((void (*)(u64, u64, u64, u64, u64, u64, u64, u64, u64))fn)(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7],
                                                                      a[8]);
        return 0;
    case 10:
        ((void (*)(u64, u64, u64, u64, u64, u64, u64, u64, u64, u64))fn)(a[0], a[1], a[2], a[3], a[4], a[5], a[6],
                                                                           a[7], a[8], a[9]);
        return 0;
    case 11:
        ((void (*)(u64, u64, u64, u64, u64, u64, u64, u64, u64, u64, u64))fn)(a[0], a[1], a[2], a[3], a[4], a[5],
                                                                                a[6], a[7], a[8], a[9], a[10]);
        return 0;
    case 12:
        ((void (*)(u64, u64, u64, u64, u64, u64, u64, u64, u64, u64, u64, u64))fn)(
            a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11]);
        return 0;
    case 13:
        ((void (*)(u64, u64, u64, u64, u64, u64, u64, u64, u64, u64, u64, u64, u64))fn)(
            a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12]);
        return 0;
    case 14:
        ((void (*)(u64, u64, u64, u64, u64, u64, u64, u64, u64, u64, u64, u64, u64, u64))fn)(
            a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13]);
        return 0;
    case 15:
        ((void (*)(u64, u64, u64, u64, u64, u64, u64, u64, u64, u64, u64, u64, u64, u64, u64))fn)(
            a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14]);
        return 0;
    case 16:
        ((void (*)(u64, u64, u64, u64, u64, u64, u64, u64, u64, u64, u64, u64, u64, u64, u64, u64))fn)(
            a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15]);
        return 0;
    default: return -1;
    }
}

/* The argument list of qkc_kernel_c_signature's ABI for s at dims:
 * tensors, dims, leading strides of dense rank >= 2 tensors, begin, end. */
static int direct_args(const bench *b, const bench_set *s, const int64_t *dims, u64 *a, int cap)
{
    int n = 0;
    for (int i = 0; i < b->n && n < cap; i++)
        a[n++] = (u64)(uintptr_t)s->t[i].data;
    for (int i = 0; i < b->ndims && n < cap; i++)
        a[n++] = (u64)dims[i];
    for (int i = 0; i < b->n; i++) {
        const qkc_tensor *t = &s->t[i];
        for (int d = 0; b->info[i].dtype != QKC_PACKED && d + 1 < t->rank && n < cap; d++) {
            int64_t stride = 1;
            for (int e = d + 1; e < t->rank; e++)
                stride *= t->shape[e];
            a[n++] = (u64)stride;
        }
    }
    int64_t items = 0;
    if (n + 2 > cap || qkc_kernel_work_items(b->k[0], dims, &items) != QKC_OK)
        return -1;
    a[n++] = 0;
    a[n++] = (u64)items;
    return n;
}

/* Arguments in a C signature "void f(a, b, c)". */
static int signature_args(const char *sig)
{
    const char *open = sig ? strchr(sig, '(') : NULL;
    if (!open || open[1] == ')')
        return 0;
    int n = 1;
    for (const char *p = open; *p; p++)
        n += *p == ',';
    return n;
}

static int one_call(const bench *b, bench_set *s, void *fn, const u64 *args, int nargs)
{
    qkc_launch_options o = {.threads = 1};
    if (fn)
        return call_direct(fn, args, nargs);
    return qkc_launch(b->k[0], s->t, b->n, &o) == QKC_OK ? 0 : -1;
}

/* Median microseconds per call over 200 batches of 100 calls, after 1000
 * calls of warm-up; through fn when given, else qkc_launch on 1 thread. */
static double per_call_us(const bench *b, bench_set *s, void *fn, const u64 *args, int nargs)
{
    enum { BATCH = 100, BATCHES = 200, WARM = 1000 };
    double ts[BATCHES];
    for (int i = 0; i < WARM; i++)
        if (one_call(b, s, fn, args, nargs))
            return -1;
    for (int i = 0; i < BATCHES; i++) {
        double t0 = cli_now();
        for (int j = 0; j < BATCH; j++)
            one_call(b, s, fn, args, nargs);
        ts[i] = (cli_now() - t0) / BATCH;
    }
    qsort(ts, BATCHES, sizeof *ts, cmp_double);
    return ts[BATCHES / 2] * 1e6;
}

static int launch_overhead(bench *b)
{
    int64_t d[BENCH_MAX_DIMS];
    tiny_dims(b, d);
    dims_str(b, d, b->tiny_shape, sizeof b->tiny_shape);
    bench_set s;
    if (make_set(b, &s, d))
        return 1;
    b->launch_us = per_call_us(b, &s, NULL, NULL, 0);
    if (b->launch_us < 0)
        return free_set(b, &s), cli_error("launch at %s: %s", b->tiny_shape, qkc_errmsg(b->ctx));
    void *fn = NULL;
    u64 args[64];
    int nargs = direct_args(b, &s, d, args, 64), want = signature_args(qkc_kernel_c_signature(b->k[0]));
    b->direct_us = NAN;
    if (qkc_kernel_fnptr(b->k[0], &fn) != QKC_OK)
        snprintf(b->direct_note, sizeof b->direct_note, "no direct call: %s", qkc_errmsg(b->ctx));
    else if (nargs != want || nargs < 3 || nargs > 16)
        snprintf(b->direct_note, sizeof b->direct_note, "no direct call: %d arguments (%d laid out; 3..16 supported)",
                 want, nargs);
    else
        b->direct_us = per_call_us(b, &s, fn, args, nargs);
    free_set(b, &s);
    return 0;
}

/* ---- overheads: compile latency ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* ms of program create + kernel get in a new context on cache dir. */
static int time_compile(bench *b, const char *dir, const char *config, double *ms)
{
    qkc_ctx_options o = {.target = b->target, .threads = 1, .cache_dir = dir, .tuning_db = ""};
    qkc_ctx *ctx = NULL;
    qkc_program *p = NULL;
    qkc_kernel *k = NULL;
    if (qkc_ctx_create(&o, &ctx) != QKC_OK)
        return cli_error("cannot create a context for the compile timing");
    qkc_kernel_options ko = {.dims = b->dims_text, .threads = b->threads[0], .config = config};
    double t0 = cli_now();
    qkc_status st = qkc_program_create_file(ctx, b->file, &p);
    if (st == QKC_OK)
        st = qkc_kernel_get_ex(p, b->kname, &ko, &k);
    *ms = (cli_now() - t0) * 1e3;
    int rc = st == QKC_OK ? 0 : cli_error("compile timing: %s", qkc_errmsg(ctx));
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
    return rc;
}

/* Cold JIT, then a disk-cache hit, in fresh contexts on a fresh cache
 * directory; both compile the configuration the benchmark used. */
static int compile_latency(bench *b)
{
    const char *tmp = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/qkc-bench-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return cli_error("cannot create a temporary cache directory in %s", tmp && tmp[0] ? tmp : "/tmp");
    const char *config = NULL;
    qkc_kernel_config(b->k[0], &config, NULL);
    int rc = time_compile(b, dir, config, &b->jit_cold_ms);
    if (rc == 0)
        rc = time_compile(b, dir, config, &b->disk_hit_ms);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}

static void print_compile(const bench *b)
{
    say(b, "compile: %.1f ms cold JIT, %.1f ms disk-cache hit (program + kernel, fresh contexts)\n", b->jit_cold_ms,
        b->disk_hit_ms);
}

static void print_json(const bench *b);

/* --compile: the compile latency alone; nothing runs. */
static int run_compile_only(bench *b)
{
    if (compile_latency(b))
        return 1;
    b->have_overhead = 1;
    b->launch_us = b->direct_us = NAN;
    snprintf(b->direct_note, sizeof b->direct_note, "--compile: launches not measured");
    print_compile(b);
    if (b->json)
        print_json(b);
    return 0;
}

static int run_overhead(bench *b)
{
    if (launch_overhead(b) || compile_latency(b))
        return 1;
    b->have_overhead = 1;
    if (isnan(b->direct_us))
        say(b, "overhead: launch %.3f us per call at %s (1 thread); %s\n", b->launch_us, b->tiny_shape,
            b->direct_note);
    else
        say(b, "overhead: launch %.3f us, direct call %.3f us per call at %s (1 thread): launch adds %.3f us\n",
            b->launch_us, b->direct_us, b->tiny_shape, b->launch_us - b->direct_us);
    print_compile(b);
    return 0;
}

/* ---- JSON ---- */

static void jnum(double v)
{
    if (isnan(v) || isinf(v))
        printf("null");
    else
        printf("%.6g", v);
}

static void json_head(const bench *b)
{
    const char *config = NULL, *origin = NULL;
    qkc_kernel_config(b->k[0], &config, &origin);
    printf("{\"kernel\": ");
    cli_json_str(stdout, b->kname);
    printf(", \"file\": ");
    cli_json_str(stdout, b->file);
    printf(", \"dims\": {");
    for (int i = 0; i < b->ndims; i++) {
        printf("%s", i ? ", " : "");
        cli_json_str(stdout, qkc_kernel_dim_name(b->k[0], i));
        printf(": %lld", (long long)b->dims[i]);
    }
    printf("}, \"target\": ");
    cli_json_str(stdout, qkc_ctx_target(b->ctx));
    printf(", \"fingerprint\": ");
    cli_json_str(stdout, b->fingerprint);
    printf(", \"config\": ");
    cli_json_str(stdout, config);
    printf(", \"config_origin\": ");
    cli_json_str(stdout, origin);
}

static void json_check(const bench *b)
{
    printf(", \"check\": ");
    if (!b->checked) {
        printf("null");
        return;
    }
    printf("{\"shape\": ");
    cli_json_str(stdout, b->check_shape);
    printf(", \"reduced\": %s, \"rel_err\": ", b->reduced ? "true" : "false");
    jnum(b->check_err);
    printf(", \"pass\": %s}", b->check_pass ? "true" : "false");
}

static void json_pair(const char *key, const double v[2], double unit)
{
    printf(", \"%s\": [", key);
    jnum(v[0] / unit);
    printf(", ");
    jnum(v[1] / unit);
    printf("]");
}

static void json_probe(const bench *b)
{
    const qk_probe_result *p = &b->probe;
    printf(", \"probe\": ");
    if (!b->have_probe) {
        printf("null");
        return;
    }
    printf("{\"threads\": %d", p->threads);
    json_pair("dram_gbps", p->read_bw[QK_PROBE_DRAM], 1e9);
    json_pair("l3_gbps", p->read_bw[QK_PROBE_L3], 1e9);
    json_pair("l2_gbps", p->read_bw[QK_PROBE_L2], 1e9);
    json_pair("int8_gops", p->int8_dot, 1e9);
    json_pair("f32_gflops", p->f32_fma, 1e9);
    printf(", \"int8_insn\": ");
    cli_json_str(stdout, p->int8_insn);
    printf(", \"f32_insn\": ");
    cli_json_str(stdout, p->f32_insn);
    printf(", \"created\": %lld}", (long long)p->created);
}

static void json_run(const bench *b, const bench_run *r)
{
    printf("{\"mode\": \"%s\", \"threads\": %d, \"reps\": %lld, \"median_s\": ", r->mode, r->threads,
           (long long)r->reps);
    jnum(r->median_s);
    printf(", \"min_s\": ");
    jnum(r->min_s);
    printf(", \"weight_bytes\": %.0f, \"weight_bytes_own\": %.0f, \"input_bytes\": %.0f, \"gbps_weights\": ",
           b->weight_bytes, b->own_weight_bytes, b->input_bytes);
    jnum(r->gbps_w);
    printf(", \"gbps_weights_own\": ");
    jnum(r->median_s > 0 ? b->own_weight_bytes / r->median_s / 1e9 : NAN);
    printf(", \"gbps_inputs\": ");
    jnum(r->gbps_in);
    printf(", \"gops\": ");
    jnum(r->gops);
    printf(", \"ratio_bw\": ");
    jnum(r->ratio_bw);
    printf(", \"ratio_bw_level\": \"%s\", \"ratio_bw_scaled\": %s, \"bw_limit_gbps\": ", r->level,
           r->scaled ? "true" : "false");
    jnum(r->limit_bw / 1e9);
    printf(", \"ratio_int8_peak\": ");
    jnum(r->ratio_int8);
    printf(", \"ratio_f32_peak\": ");
    jnum(r->ratio_f32);
    printf(", \"config\": ");
    cli_json_str(stdout, r->config);
    printf(", \"read_gbps\": ");
    jnum(r->read_gbps);
    printf(", \"ratio_read\": ");
    jnum(r->ratio_read);
    printf("}");
}

static void json_baseline(const bench *b)
{
    printf(", \"baseline\": ");
    if (strcmp(b->baseline, "ref") == 0 && b->checked) {
        printf("{\"kind\": \"ref\", \"shape\": ");
        cli_json_str(stdout, b->check_shape);
        printf(", \"threads\": 1, \"ref_s\": ");
        jnum(b->ref_s);
        printf(", \"kernel_s\": ");
        jnum(b->ref_kernel_s);
        printf(", \"speedup\": ");
        jnum(b->ref_s / b->ref_kernel_s);
        printf("}");
    } else if (strcmp(b->baseline, "sgemm") == 0) {
        printf("{\"kind\": \"sgemm\", \"library\": ");
        cli_json_str(stdout, b->nsgemm ? b->sgemm_lib : "");
        printf(", \"note\": ");
        cli_json_str(stdout, b->sgemm_note);
        printf(", \"runs\": [");
        for (int i = 0; i < b->nsgemm; i++) {
            printf("%s{\"threads\": %d, \"median_s\": ", i ? ", " : "", b->sgemm[i].threads);
            jnum(b->sgemm[i].median_s);
            printf(", \"gflops\": ");
            jnum(b->sgemm[i].gflops);
            printf(", \"ratio\": ");
            jnum(b->sgemm[i].ratio);
            printf("}");
        }
        printf("]}");
    } else if (strcmp(b->baseline, "read") == 0)
        printf("{\"kind\": \"read\"}");
    else
        printf("null");
}

static void json_overhead(const bench *b)
{
    printf(", \"overhead\": ");
    if (!b->have_overhead) {
        printf("null");
        return;
    }
    printf("{\"shape\": ");
    cli_json_str(stdout, b->tiny_shape);
    printf(", \"launch_us\": ");
    jnum(b->launch_us);
    printf(", \"direct_us\": ");
    jnum(b->direct_us);
    printf(", \"diff_us\": ");
    jnum(b->launch_us - b->direct_us);
    printf(", \"direct_note\": ");
    cli_json_str(stdout, b->direct_note);
    printf(", \"jit_cold_ms\": ");
    jnum(b->jit_cold_ms);
    printf(", \"disk_hit_ms\": ");
    jnum(b->disk_hit_ms);
    printf("}");
}

static void print_json(const bench *b)
{
    json_head(b);
    json_check(b);
    json_probe(b);
    printf(", \"runs\": [");
    for (int i = 0; i < b->nruns; i++) {
        printf("%s", i ? ", " : "");
        json_run(b, &b->runs[i]);
    }
    printf("]");
    json_baseline(b);
    json_overhead(b);
    printf("}\n");
}

/* ---- the command ---- */

static void print_head(const bench *b)
{
    char d[256];
    dims_str(b, b->dims, d, sizeof d);
    say(b, "qkc bench: kernel %s (%s) on %s, dims %s\n", b->kname, b->file, qkc_ctx_target(b->ctx), d);
    const char *c0 = NULL, *o0 = NULL;
    qkc_kernel_config(b->k[0], &c0, &o0);
    int same = 1;
    for (int i = 1; i < b->nthreads; i++)
        same &= b->k[i] == b->k[0];
    for (int i = 0; i < (same ? 1 : b->nthreads); i++) {
        const char *c = NULL, *o = NULL;
        qkc_kernel_config(b->k[i], &c, &o);
        if (same)
            say(b, "config: %s (%s)\n", c, o);
        else
            say(b, "config (%d threads): %s (%s)\n", b->threads[i], c, o);
    }
}

static void print_data(const bench *b)
{
    say(b, "data: packed weights %.2f MB, all inputs %.2f MB", b->weight_bytes / 1e6, b->input_bytes / 1e6);
    if (b->own_weight_bytes != b->weight_bytes) /* base-3 or N:M codes, row-interleaved */
        say(b, " (the row-interleaved layout: %.2f MB in the formats' own; GB/s W counts the bytes read, x %.3f "
               "for the own layout's)",
            b->own_weight_bytes / 1e6, b->own_weight_bytes / b->weight_bytes);
    if (b->cold && b->gpu)
        say(b, "; cold: %d device copies of every tensor, %.1f MB (L2 %lld KB)", b->dev_copies,
            b->dev_copies * b->set_bytes / 1e6, (long long)(b->dev.l2 >> 10));
    else if (b->cold)
        say(b, "; cold: %d copies of every tensor, %.1f MB (L3 %lld KB)", b->ncopies, b->ncopies * b->set_bytes / 1e6,
            (long long)(b->host.l3 >> 10));
    say(b, "\n");
}

/* Everything after the options: 0, 1 (error or FAIL) or 2 (usage). */
static int bench_all(bench *b, const cli_cmd *cmd)
{
    int rc = load(b);
    if (rc == 0)
        rc = get_kernels(b, cmd);
    if (rc == 0)
        rc = parse_dims(b, cmd);
    if (rc)
        return rc;
    qk_device_target(b->ctx, &b->dev);
    b->gpu = b->dev.kind == QK_TARGET_GPU;
    if (b->gpu) /* the device is the machine measured: its probe and records */
        qk_target_fingerprint(&b->dev, b->fingerprint, sizeof b->fingerprint);
    print_head(b);
    if (b->compile_only)
        return run_compile_only(b);
    if ((b->check || strcmp(b->baseline, "ref") == 0) && run_check(b))
        return 1;
    if (b->gpu && load_device_probe(b))
        return 1;
    if (!b->gpu)
        load_probe(b);
    if (b->have_probe)
        print_probe(b);
    if (make_copies(b))
        return 1;
    print_data(b);
    if (strcmp(b->baseline, "read") == 0 && !b->cold)
        say(b, "baseline read skipped: it runs after cold repetitions only (--mode hot)\n");
    if (run_timing(b))
        return 1;
    if (b->checked && strcmp(b->baseline, "ref") == 0)
        say(b, "baseline ref (reference interpreter, 1 thread) at %s: %.4f ms vs kernel %.4f ms: speed-up %.1fx\n",
            b->check_shape, b->ref_s * 1e3, b->ref_kernel_s * 1e3, b->ref_s / b->ref_kernel_s);
    if (strcmp(b->baseline, "sgemm") == 0 && run_sgemm(b))
        return 1;
    if (b->overhead && run_overhead(b))
        return 1;
    if (b->json)
        print_json(b);
    return b->checked && !b->check_pass;
}

static void bench_free(bench *b)
{
    for (int i = 0; b->sets && i < b->ncopies; i++)
        free_set(b, &b->sets[i]);
    free(b->sets);
    qkc_program_destroy(b->p);
    qkc_ctx_destroy(b->ctx);
    free(b);
}

static int run_bench(const cli_cmd *cmd, const cli_args *a)
{
    bench *b = calloc(1, sizeof *b);
    if (!b)
        return cli_error("out of memory");
    b->rng.s = 1;
    qk_target_host(&b->host);
    qk_target_fingerprint(&b->host, b->fingerprint, sizeof b->fingerprint);
    int rc = parse_opts(b, cmd, a);
    if (rc == 0)
        rc = bench_all(b, cmd);
    bench_free(b);
    return rc;
}

const cli_cmd cli_cmd_bench = {
    .name = "bench",
    .summary = "Time a kernel cold and hot; report GB/s, GOP/s and ratios to the machine's probed limits.",
    .usage = "FILE --kernel NAME --dims N=8192,K=8192 [--threads 1,2] [--mode cold|hot|both] [--json] [options]",
    .details =
        "First the kernel is checked against the reference interpreter as 'qkc run' does; when the product\n"
        "of the dims exceeds 2^24, on a reduced shape (dims cut to <= 1000, and not multiples of 8, so tiles\n"
        "have ragged edges). A FAIL makes the exit status 1. Then, per mode and thread count: a warm-up,\n"
        "R repetitions, median and min time.\n"
        "  cold: the weights come from DRAM: the inputs are copied until the copies exceed 3 x L3 and 256 MiB\n"
        "        (the probe's DRAM working set; at least 2 copies) and each repetition uses the next copy.\n"
        "  hot:  the same buffers every repetition (the working set stays in cache if it fits).\n"
        "Inputs: uniform in [-1, 1], quantized parameters packed from random f32 (a vector-codebook tensor\n"
        "repeats a packed tile of 64K weights: its quantizer searches the whole codebook per group).\n"
        "Figures: GB/s W = bytes of the packed (quantized) parameters / time (the bytes the kernel reads: a\n"
        "row-interleaved layout of base-3 or N:M codes is larger than the format's own, and the data line\n"
        "and --json's gbps_weights_own give the own layout's); GB/s in = bytes of all inputs / time;\n"
        "GOP/s = 2 x (product of all dims) / time, i.e. 2*M*N*K for a contraction.\n"
        "Ratios use 'qkc probe's figures for this machine from the tuning database (measured now, quickly,\n"
        "and stored when absent): bandwidth ratio = GB/s W (GB/s in when nothing is packed) / the read\n"
        "bandwidth of DRAM (cold) or of the level the working set fits in (hot: L2 x threads, L3, else\n"
        "DRAM), for the thread count: the 1-thread figure, the all-threads figure, or in between the\n"
        "all-threads figure scaled by threads / cores (marked *). GOP/s is divided by the int8 dot-product\n"
        "peak and by the f32 FMA peak of one core times the threads.\n"
        "GPU targets (sm_80, sm_90): the launches are timed on the device with CUDA events, the buffers kept\n"
        "there across repetitions (cold: copies on the device beyond 3 x its L2, used in turn; hot: one set);\n"
        "one row per mode (--threads does not apply); the bandwidth ratio divides by the device's copy\n"
        "bandwidth ('qkc probe --target', measured now, quickly, and stored when absent); no compute ratios.\n"
        "Without a CUDA driver or device, GPU targets fail (exit 1) with 'no CUDA driver' / 'no CUDA device';\n"
        "a device of another architecture than the target is refused (bench it with its own target).\n"
        "--baseline ref times the reference interpreter on the check shape against the kernel on 1 thread\n"
        "(it runs the check even with --no-check);\n"
        "--baseline sgemm times f32 C = A . B^T from OpenBLAS (kernels with dims M, N, K) at each thread count.\n"
        "--baseline read (CPU, cold mode): after each repetition, one pass of the probe's read loop over the same\n"
        "weight bytes (another cold copy, split over as many threads), and kernel / read as a share: the\n"
        "memory system's plain read rate measured in the same seconds as the kernel, a ratio the host's other\n"
        "tenants move far less than the ratio to the stored probe (at most 1000 repetitions unless --reps).\n"
        "json: runs[].read_gbps, ratio_read.\n"
        "--overhead measures qkc_launch against a direct call of the raw entry point at a tiny shape, and\n"
        "the compile latency (cold JIT, then disk-cache hit) in fresh contexts on a temporary cache;\n"
        "--compile measures only that and runs nothing (so it needs no device: GPU code is compiled by NVRTC).\n"
        "Exit status: 0, 1 (FAIL or an error), 2 (bad options, dims, configuration or a missing --kernel).",
    .example = "qkc bench examples/q4_gemv.qk --kernel gemv --dims N=8192,K=8192 --threads 1,2",
    .opts = {{"kernel", 'k', "NAME", "the kernel to time", "the only kernel, if there is one"},
             {"dims", 'd', "D=V,...", "a value for every dimension of the kernel", NULL},
             {"threads", 'j', "T,T,...", "thread counts to time", "1,<cores>"},
             {"reps", 'r', "R", "timed repetitions per mode and thread count", "enough for ~1 s, at least 5"},
             {"mode", 'm', "MODE", "cold, hot or both", "both"},
             {"baseline", 'b', "B", "none, ref (reference interpreter), sgemm (OpenBLAS f32) or read (same-run DRAM read)",
              "none"},
             {"config", 'c', "TEXT", "explicit configuration, e.g. \"tile_par=4 unroll=2\"", "tuning db/model"},
             CLI_OPT_LAYOUT,
             {"target", 't', "T", "host, x86-64-v3, x86-64-v4, sm_80, sm_90 (aarch64 targets: emit/build only)", "host"},
             {"db", 0, "PATH", "tuning database (configurations and the probe)", "$QKC_TUNE_DB or ~/.cache/qkc/tune.db"},
             {"json", 0, NULL, "print one JSON object (human lines go to stderr)", NULL},
             {"no-check", 0, NULL, "skip the check against the reference interpreter", NULL},
             {"overhead", 0, NULL, "also measure launch overhead and compile latency", NULL},
             {"compile", 0, NULL, "only measure the compile latency (cold, then disk-cache hit); runs nothing", NULL},
             {0}},
    .min_pos = 1,
    .max_pos = 1,
    .run = run_bench,
};

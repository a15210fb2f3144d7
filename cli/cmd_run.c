/* cmd_run.c — `qkc run`: compile one kernel, run it on random inputs,
 * check it against the reference interpreter (qkc_reference) on the same
 * inputs, and time it.
 *
 * Inputs are uniform in [-1, 1] from a seeded splitmix64 (integers: small
 * ranges); quantized parameters are packed from random f32 with qkc_pack.
 * Tolerances by result dtype: f32 1e-4, f16 4e-3, bf16 3e-2 (normwise:
 * max|y - ref| / max|ref|); integer results: max abs error <= 1. */
#include "cli/cli.h"
#include "common/base.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RUN_MAX_T 64
#define RUN_MAX_DIMS 64

typedef struct run_state {
    qkc_ctx *ctx;
    qkc_program *p;
    qkc_kernel *k;
    const char *kname;
    int n, ndims;
    int64_t dims[RUN_MAX_DIMS];
    qkc_param_info info[RUN_MAX_T];
    qkc_tensor args[RUN_MAX_T], ref[RUN_MAX_T];
    size_t bytes[RUN_MAX_T];
    cli_rng rng;
    uint64_t seed;
    int threads;
} run_state;

/* ---- dims ---- */

static int dim_index(const run_state *s, const char *name, size_t len)
{
    for (int i = 0; i < s->ndims; i++) {
        const char *d = qkc_kernel_dim_name(s->k, i);
        if (strlen(d) == len && strncmp(d, name, len) == 0)
            return i;
    }
    return -1;
}

static char *dim_list(const run_state *s)
{
    size_t cap = 1024;
    char *b = calloc(1, cap);
    for (int i = 0; b && i < s->ndims; i++)
        snprintf(b + strlen(b), cap - strlen(b), "%s%s", i ? ", " : "", qkc_kernel_dim_name(s->k, i));
    return b;
}

static int dims_error(const run_state *s, const char *what, const char *name, size_t len)
{
    char *l = dim_list(s);
    cli_error("--dims %s %.*s (kernel %s has dims %s)", what, (int)len, name, s->kname, l && l[0] ? l : "none");
    free(l);
    return 1;
}

/* Parses "N=4096,K=4096" into s->dims; every dim must be given. */
static int parse_dims(run_state *s, const char *spec)
{
    int set[RUN_MAX_DIMS] = {0};
    for (const char *p = spec ? spec : ""; *p;) {
        const char *eq = strchr(p, '='), *comma = strchr(p, ',');
        size_t item = comma ? (size_t)(comma - p) : strlen(p);
        if (!eq || (size_t)(eq - p) >= item)
            return cli_error("--dims: expected NAME=VALUE, got '%.*s'", (int)item, p);
        int i = dim_index(s, p, (size_t)(eq - p));
        if (i < 0)
            return dims_error(s, "names an unknown dim", p, (size_t)(eq - p));
        char num[32] = "";
        snprintf(num, sizeof num, "%.*s", (int)(item - (size_t)(eq - p) - 1), eq + 1);
        if (cli_parse_i64(num, &s->dims[i]) != 0 || s->dims[i] < 0)
            return cli_error("--dims: %.*s must be a non-negative integer, got '%s'", (int)(eq - p), p, num);
        set[i] = 1;
        p += item + (comma ? 1 : 0);
    }
    for (int i = 0; i < s->ndims; i++)
        if (!set[i])
            return dims_error(s, "is missing", qkc_kernel_dim_name(s->k, i), strlen(qkc_kernel_dim_name(s->k, i)));
    return 0;
}

/* ---- tensors ---- */

/* Sets up tensor i: shape from the dims, buffer, contents, and its copy
 * for the reference run. */
static int make_tensor(run_state *s, int i)
{
    cli_inputs in = {s->ctx, s->p, s->k, s->info, s->dims, &s->rng, s->args, s->bytes};
    if (cli_make_input(&in, i))
        return 1;
    s->ref[i] = s->args[i];
    s->ref[i].data = malloc(s->bytes[i] ? s->bytes[i] : 1);
    if (!s->ref[i].data)
        return cli_error("out of memory for %s (%zu bytes)", s->info[i].name, s->bytes[i]);
    if (s->info[i].is_result)
        memset(s->ref[i].data, 0, s->bytes[i]);
    else
        memcpy(s->ref[i].data, s->args[i].data, s->bytes[i]);
    return 0;
}

/* ---- comparison ---- */

/* Compares result i; prints one line; 0 = PASS. */
static int compare(const run_state *s, int i)
{
    const qkc_tensor *t = &s->args[i];
    double maxerr, tol, e = cli_result_error(t, s->ref[i].data, s->bytes[i], &maxerr, &tol);
    int isint = cli_dtype_is_int(t->dtype), pass = e <= tol;
    printf("  %s: max abs err %.3g, rel err %.3g (tol %.0e %s): %s\n", s->info[i].name, maxerr,
           isint ? maxerr : e, tol, isint ? "max abs" : "normwise", pass ? "PASS" : "FAIL");
    return !pass;
}

/* ---- timing ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int launch(run_state *s)
{
    qkc_launch_options o = {.threads = s->threads};
    qkc_status st = qkc_launch(s->k, s->args, s->n, &o);
    return st == QKC_OK ? 0 : cli_error("launch: %s", qkc_errmsg(s->ctx));
}

static int timing(run_state *s, int64_t reps)
{
    double t0 = cli_now();
    if (launch(s))
        return 1;
    double once = cli_now() - t0;
    if (reps <= 0)
        reps = once > 0 ? (int64_t)(0.5 / once) : 1000;
    reps = reps < 3 ? 3 : reps > 100000 ? 100000 : reps;
    double *ts = malloc((size_t)reps * sizeof *ts);
    for (int64_t r = 0; ts && r < reps; r++) {
        t0 = cli_now();
        if (launch(s))
            return free(ts), 1;
        ts[r] = cli_now() - t0;
    }
    if (!ts)
        return cli_error("out of memory");
    qsort(ts, (size_t)reps, sizeof *ts, cmp_double);
    double med = ts[reps / 2], in = 0;
    free(ts);
    for (int i = 0; i < s->n; i++)
        in += s->info[i].is_result ? 0 : (double)s->bytes[i];
    printf("  time: median %.4g ms over %lld reps; inputs %.3g MB -> %.2f GB/s\n", med * 1e3, (long long)reps,
           in / 1e6, med > 0 ? in / med / 1e9 : 0.0);
    return 0;
}

/* ---- the command ---- */

static int setup(run_state *s, const cli_cmd *cmd, const cli_args *a)
{
    s->kname = cli_get(cmd, a, "kernel");
    if (!s->kname && qkc_program_nkernels(s->p) == 1)
        s->kname = qkc_program_kernel_name(s->p, 0);
    if (!s->kname)
        return cli_error("--kernel NAME is required (the program has %d kernels)", qkc_program_nkernels(s->p));
    qkc_kernel_options ko = {.config = cli_get(cmd, a, "config")};
    if (cli_layout(cmd, a, &ko.any_layout) != 0)
        return 2;
    qkc_status st = qkc_kernel_get_ex(s->p, s->kname, &ko, &s->k);
    if (st == QKC_ERR_INVALID_ARG)
        return cli_usage_error(cmd, "%s", qkc_errmsg(s->ctx));
    if (st != QKC_OK)
        return cli_error("%s", qkc_errmsg(s->ctx));
    s->n = qkc_kernel_nparams(s->k);
    s->ndims = qkc_kernel_ndims(s->k);
    if (s->n > RUN_MAX_T || s->ndims > RUN_MAX_DIMS)
        return cli_error("kernel %s has too many tensors for qkc run", s->kname);
    if (parse_dims(s, cli_get(cmd, a, "dims")))
        return 1;
    for (int i = 0; i < s->n; i++)
        qkc_kernel_param(s->k, i, &s->info[i]);
    for (int pass = 0; pass < 2; pass++) /* dense first: codebooks exist before what is packed with them */
        for (int i = 0; i < s->n; i++)
            if ((s->info[i].dtype == QKC_PACKED) == pass && make_tensor(s, i))
                return 1;
    return 0;
}

static void print_header(const run_state *s)
{
    printf("qkc run: kernel %s on %s, dims", s->kname, qkc_ctx_target(s->ctx));
    for (int i = 0; i < s->ndims; i++)
        printf("%s%s=%lld", i ? ", " : " ", qkc_kernel_dim_name(s->k, i), (long long)s->dims[i]);
    printf(", seed %llu, threads ", (unsigned long long)s->seed);
    if (s->threads)
        printf("%d\n", s->threads);
    else
        printf("all cores\n");
    const char *cfg = NULL, *origin = NULL;
    if (qkc_kernel_config(s->k, &cfg, &origin) == QKC_OK)
        printf("  config: %s (%s)\n", cfg, origin);
}

/* Reference, kernel, comparison. 0 = every result passes, 1 = a FAIL,
 * -1 = an error (printed). */
static int check_results(run_state *s)
{
    if (qkc_reference(s->k, s->ref, s->n) != QKC_OK)
        return cli_error("%s", qkc_errmsg(s->ctx)), -1;
    if (launch(s))
        return -1;
    int bad = 0;
    for (int i = 0; i < s->n; i++)
        if (s->info[i].is_result)
            bad |= compare(s, i);
    return bad;
}

static int parse_run_opts(run_state *s, const cli_cmd *cmd, const cli_args *a, int64_t *reps)
{
    const char *v;
    int64_t t = 0;
    s->seed = 1;
    if ((v = cli_get(cmd, a, "seed")) && cli_parse_u64(v, &s->seed) != 0)
        return cli_usage_error(cmd, "--seed needs a non-negative integer, got '%s'", v);
    if ((v = cli_get(cmd, a, "threads")) && (cli_parse_i64(v, &t) != 0 || t < 0 || t > 1024))
        return cli_usage_error(cmd, "--threads needs an integer in 0..1024, got '%s'", v);
    if ((v = cli_get(cmd, a, "reps")) && (cli_parse_i64(v, reps) != 0 || *reps < 1))
        return cli_usage_error(cmd, "--reps needs a positive integer, got '%s'", v);
    s->threads = (int)t;
    s->rng.s = s->seed;
    return 0;
}

static void run_free(run_state *s)
{
    for (int i = 0; i < s->n; i++) {
        free(s->args[i].data);
        free(s->ref[i].data);
    }
    qkc_program_destroy(s->p);
    qkc_ctx_destroy(s->ctx);
    free(s);
}

static int run_run(const cli_cmd *cmd, const cli_args *a)
{
    run_state *s = calloc(1, sizeof *s);
    int64_t reps = 0;
    if (!s)
        return cli_error("out of memory");
    int rc = parse_run_opts(s, cmd, a, &reps);
    if (rc == 0)
        rc = cli_load(a->pos[0], cli_get(cmd, a, "target"), s->threads, &s->ctx, &s->p);
    if (rc == 0)
        rc = setup(s, cmd, a);
    if (rc == 0) {
        print_header(s);
        rc = check_results(s);
        if (rc >= 0)
            rc = timing(s, reps) ? 1 : rc;
        else
            rc = 1;
    }
    run_free(s);
    return rc;
}

const cli_cmd cli_cmd_run = {
    .name = "run",
    .summary = "Compile a kernel, run it on random inputs, check it against the reference, and time it.",
    .usage = "FILE --kernel NAME --dims N=4096,K=4096 [--seed S] [--threads T] [--reps R] [--target T] [--config TEXT]\n"
             "               [--layout own|any]",
    .details = "Inputs are uniform in [-1, 1] (seeded; quantized parameters are packed from random f32).\n"
               "Per result it prints the max abs error, the normwise relative error max|y-ref|/max|ref|,\n"
               "the tolerance (f32 1e-4, f16 4e-3, bf16 3e-2; integers: max abs error <= 1) and PASS/FAIL,\n"
               "then the median time and the effective bandwidth (bytes of all inputs / time).\n"
               "Exit status 1 when a result fails.",
    .example = "qkc run examples/q4_gemv.qk --kernel gemv --dims N=4096,K=4096",
    .opts = {{"kernel", 'k', "NAME", "the kernel to run", "the only kernel, if there is one"},
             {"dims", 'd', "D=V,...", "a value for every dimension of the kernel", NULL},
             {"seed", 0, "S", "seed of the random inputs", "1"},
             {"threads", 'j', "T", "worker threads (0 = every core)", "0"},
             {"reps", 'r', "R", "timed repetitions", "enough for ~0.5 s, at least 3"},
             {"target", 't', "T", "host, x86-64-v3, x86-64-v4, sm_80, sm_90 (aarch64 targets: emit/build only)", "host"},
             {"config", 'c', "TEXT", "explicit configuration, e.g. \"repack=1\" (weights row-interleaved: converted here)",
              "tuning db/model"},
             CLI_OPT_LAYOUT,
             {0}},
    .min_pos = 1,
    .max_pos = 1,
    .run = run_run,
};

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

/* Evaluates a declared dim text such as "N", "H-2", "64", "N+1". */
static int eval_dim(const run_state *s, const char *text, int64_t *out)
{
    int64_t v = 0;
    int sign = 1;
    for (const char *p = text; *p;) {
        size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789");
        if (n == 0) {
            if (*p != '+' && *p != '-' && *p != ' ')
                return -1;
            sign = *p == '-' ? -1 : *p == '+' ? 1 : sign;
            p++;
            continue;
        }
        int i = dim_index(s, p, n);
        char *end;
        int64_t t = i >= 0 ? s->dims[i] : (int64_t)strtoll(p, &end, 10);
        if (i < 0 && end != p + n)
            return -1;
        v += sign * t;
        p += n;
    }
    *out = v;
    return 0;
}

/* ---- tensors ---- */

static void fill_dense(run_state *s, qkc_dtype t, void *data, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        double u = cli_rng_uniform(&s->rng, -1, 1);
        switch (t) {
        case QKC_F32: ((float *)data)[i] = (float)u; break;
        case QKC_F16: ((uint16_t *)data)[i] = qk_f32_to_f16((float)u); break;
        case QKC_BF16: ((uint16_t *)data)[i] = qk_f32_to_bf16((float)u); break;
        case QKC_I8: ((int8_t *)data)[i] = (int8_t)lrint(u * 8); break;
        case QKC_I32: ((int32_t *)data)[i] = (int32_t)lrint(u * 100); break;
        case QKC_U8: ((uint8_t *)data)[i] = (uint8_t)lrint((u + 1) * 7.5); break;
        default: break;
        }
    }
}

static int fill_packed(run_state *s, int i, int64_t rows, int64_t cols)
{
    const qkc_param_info *in = &s->info[i];
    float *src = malloc((size_t)(rows * cols > 0 ? rows * cols : 1) * sizeof *src);
    if (!src)
        return cli_error("out of memory for %s", in->name);
    for (int64_t j = 0; j < rows * cols; j++)
        src[j] = (float)cli_rng_uniform(&s->rng, -1, 1);
    qkc_pack_options o = {0};
    if (in->codebook >= 0) {
        o.codebook = s->args[in->codebook].data;
        o.codebook_bytes = s->bytes[in->codebook];
    }
    qkc_status st = qkc_pack_ex(s->p, in->format, src, rows, cols, s->args[i].data, s->bytes[i], &o);
    free(src);
    return st == QKC_OK ? 0 : cli_error("packing %s: %s", in->name, qkc_errmsg(s->ctx));
}

/* Sets up tensor i: shape from the dims, buffer, contents. */
static int make_tensor(run_state *s, int i)
{
    const qkc_param_info *in = &s->info[i];
    qkc_tensor *t = &s->args[i];
    t->dtype = in->dtype;
    t->rank = in->rank;
    int64_t elems = 1, rows = 1;
    for (int d = 0; d < in->rank; d++) {
        if (eval_dim(s, in->dims[d], &t->shape[d]) != 0)
            return cli_error("%s: cannot size dim '%s' from --dims", in->name, in->dims[d]);
        if (t->shape[d] < 0)
            t->shape[d] = 0; /* empty: the shape check explains what does not fit */
        elems *= t->shape[d];
        rows *= d + 1 < in->rank ? t->shape[d] : 1;
    }
    int64_t cols = in->rank ? t->shape[in->rank - 1] : 1;
    if (in->dtype == QKC_PACKED && qkc_format_size(s->p, in->format, rows, cols, &s->bytes[i]) != QKC_OK)
        return cli_error("%s", qkc_errmsg(s->ctx));
    if (in->dtype != QKC_PACKED)
        s->bytes[i] = (size_t)elems * cli_dtype_size(in->dtype);
    t->data = malloc(s->bytes[i] ? s->bytes[i] : 1);
    s->ref[i] = *t;
    s->ref[i].data = calloc(1, s->bytes[i] ? s->bytes[i] : 1);
    if (!t->data || !s->ref[i].data)
        return cli_error("out of memory for %s (%zu bytes)", in->name, s->bytes[i]);
    if (in->is_result) {
        memset(t->data, 0xff, s->bytes[i]); /* NaN for floats: unwritten outputs fail */
        return 0;
    }
    int rc = in->dtype == QKC_PACKED ? fill_packed(s, i, rows, cols) : (fill_dense(s, in->dtype, t->data, elems), 0);
    memcpy(s->ref[i].data, t->data, s->bytes[i]);
    return rc;
}

/* ---- comparison ---- */

static double load_elem(qkc_dtype t, const void *d, int64_t i)
{
    switch (t) {
    case QKC_F32: return ((const float *)d)[i];
    case QKC_F16: return qk_f16_to_f32(((const uint16_t *)d)[i]);
    case QKC_BF16: return qk_bf16_to_f32(((const uint16_t *)d)[i]);
    case QKC_I8: return ((const int8_t *)d)[i];
    case QKC_I32: return ((const int32_t *)d)[i];
    case QKC_U8: return ((const uint8_t *)d)[i];
    default: return 0;
    }
}

static double tolerance(qkc_dtype t)
{
    return t == QKC_F32 ? 1e-4 : t == QKC_F16 ? 4e-3 : t == QKC_BF16 ? 3e-2 : 1;
}

/* Compares result i; prints one line; 0 = PASS. */
static int compare(const run_state *s, int i)
{
    const qkc_tensor *t = &s->args[i];
    int64_t n = (int64_t)(s->bytes[i] / cli_dtype_size(t->dtype));
    double maxerr = 0, maxref = 0;
    for (int64_t j = 0; j < n; j++) {
        double y = load_elem(t->dtype, t->data, j), r = load_elem(t->dtype, s->ref[i].data, j);
        double e = fabs(y - r);
        maxerr = isnan(e) ? INFINITY : fmax(maxerr, e);
        maxref = fmax(maxref, fabs(r));
    }
    double rel = maxref > 0 ? maxerr / maxref : maxerr, tol = tolerance(t->dtype);
    int isint = t->dtype == QKC_I8 || t->dtype == QKC_I32 || t->dtype == QKC_U8;
    int pass = isint ? maxerr <= tol : rel <= tol;
    printf("  %s: max abs err %.3g, rel err %.3g (tol %.0e %s): %s\n", s->info[i].name, maxerr, rel, tol,
           isint ? "max abs" : "normwise", pass ? "PASS" : "FAIL");
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
    if (qkc_kernel_get(s->p, s->kname, &s->k) != QKC_OK)
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
    .usage = "FILE --kernel NAME --dims N=4096,K=4096 [--seed S] [--threads T] [--reps R] [--target T]",
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
             {"target", 't', "T", "host, x86-64-v3, x86-64-v4, sm_80, sm_90", "host"},
             {0}},
    .min_pos = 1,
    .max_pos = 1,
    .run = run_run,
};

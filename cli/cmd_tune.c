/* cmd_tune.c — `qkc tune`: the autotuner's driver.
 *
 *   qkc tune FILE --kernel K --dims N=..,K=.. [--threads 1,2] [--top 8]
 *     ranks tile configurations with the cost model (compiler/tune.c),
 *     compiles the best few, checks each against the reference
 *     interpreter on a reduced, ragged shape, times each, stores every
 *     measurement in the tuning database and shows that a compile in a
 *     new context picks the winner.
 *   qkc tune FILE --kernel K --sweep N=1024..16384 [--sweep-dims K=N]
 *       [--formats a,b] [--threads 1,2] --csv OUT.csv --plot OUT.svg
 *     a short tune per (format, size, threads): database records, a CSV
 *     and an SVG plot against the machine's probed limits.
 *   qkc tune db list | export | prune     the database itself.
 *
 * Like `info`, the command reads Kernel IR and the target through the
 * runtime's internal header: the model, the records' kernel hash and the
 * argument shapes need them. */
#include "cli/cli.h"
#include "common/base.h"
#include "compiler/tune.h"
#include "runtime/probe.h"
#include "runtime/runtime.h"
#include "runtime/tunedb.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TU_MAX_T 64    /* tensors of a kernel */
#define TU_MAX_SYMS 32 /* dimension symbols */
#define TU_MAX_CANDS 64
#define TU_MAX_THREADS 8
#define TU_MAX_SIZES 32
#define TU_MAX_FORMATS 48
#define TU_MAX_LIB 512
#define TU_CHECK_CAP 700       /* largest dimension of the reference check */
#define TU_CHECK_WORK 4e6      /* multiply-adds the reference check may cost */
#define TU_DIRECT_PACK 2000000 /* elements packed directly; larger tensors repeat a packed tile */
#define TU_MAX_COPIES 1024     /* sets of inputs a cold measurement rotates through */

/* ---- small parsers ---- */

/* "1,2,4": values in [lo, hi]. 0 or -1. */
static int parse_list(const char *s, int64_t lo, int64_t hi, int64_t *out, int max, int *n)
{
    *n = 0;
    while (s && *s) {
        size_t len = strcspn(s, ",");
        char num[32];
        if (len == 0 || len >= sizeof num || *n == max)
            return -1;
        memcpy(num, s, len);
        num[len] = 0;
        if (cli_parse_i64(num, &out[*n]) != 0 || out[*n] < lo || out[*n] > hi)
            return -1;
        (*n)++;
        s += len + (s[len] == ',');
    }
    return *n > 0 ? 0 : -1;
}

static int sym_index(const kir_kernel *k, const char *name, size_t n)
{
    for (int i = 0; i < k->nsyms; i++)
        if (strlen(k->syms[i]) == n && strncmp(k->syms[i], name, n) == 0)
            return i;
    return -1;
}

static void print_syms(const kir_kernel *k, FILE *f)
{
    for (int i = 0; i < k->nsyms; i++)
        fprintf(f, "%s%s", i ? ", " : "", k->syms[i]);
    fprintf(f, "%s\n", k->nsyms ? "" : "none");
}

/* "N=4096,K=4096" -> vals[sym], given[sym] = 1. 0, or 1 after a message. */
static int parse_dims(const kir_kernel *k, const char *spec, int64_t *vals, int *given)
{
    for (const char *p = spec ? spec : ""; *p;) {
        size_t item = strcspn(p, ","), eq = strcspn(p, "=");
        char num[32];
        if (eq >= item || eq == 0 || item - eq - 1 >= sizeof num || item - eq - 1 == 0)
            return cli_error("--dims: expected NAME=VALUE,..., got '%.*s'", (int)item, p);
        int s = sym_index(k, p, eq);
        if (s < 0) {
            cli_error("--dims: kernel %s has no dimension '%.*s'", k->name, (int)eq, p);
            fprintf(stderr, "its dimensions: ");
            print_syms(k, stderr);
            return 1;
        }
        snprintf(num, sizeof num, "%.*s", (int)(item - eq - 1), p + eq + 1);
        if (cli_parse_i64(num, &vals[s]) != 0 || vals[s] < 1 || vals[s] > ((int64_t)1 << 40))
            return cli_error("--dims: %.*s must be an integer in 1..2^40, got '%s'", (int)eq, p, num);
        given[s] = 1;
        p += item + (p[item] == ',');
    }
    return 0;
}

static int missing_dims(const kir_kernel *k, const int *given)
{
    for (int i = 0; i < k->nsyms; i++)
        if (!given[i]) {
            char all[512] = "";
            for (int j = 0; j < k->nsyms; j++)
                snprintf(all + strlen(all), sizeof all - strlen(all), "%s%s", j ? ", " : "", k->syms[j]);
            return cli_error("--dims: no value for %s (kernel %s has dimensions %s)", k->syms[i], k->name, all);
        }
    return 0;
}

/* "K=4096,N=4096": names sorted, the shape text of database records. */
static void shape_text(const kir_kernel *k, const int64_t *dims, char *buf, size_t n)
{
    int order[TU_MAX_SYMS], m = k->nsyms < TU_MAX_SYMS ? k->nsyms : TU_MAX_SYMS;
    for (int i = 0; i < m; i++) {
        int j = i;
        while (j > 0 && strcmp(k->syms[order[j - 1]], k->syms[i]) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    buf[0] = 0;
    for (int i = 0; i < m; i++)
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%s=%lld", i ? "," : "", k->syms[order[i]],
                 (long long)dims[order[i]]);
}

/* ---- what a measurement is worth ---- */

/* Sum over top-level reductions of their lengths, fused temps followed. */
static double sum_lengths(const kir_kernel *k, const kir_expr *e, const int64_t *dims, int depth)
{
    if (!e || depth > 16)
        return 0;
    const kir_tensor *t = e->kind == KE_LOAD ? &k->tensors[e->tensor] : NULL;
    if (t && t->kind == KIR_TEMP && !t->materialized && t->def_stmt >= 0)
        return sum_lengths(k, k->stmts[t->def_stmt].rhs, dims, depth + 1);
    if (e->kind == KE_SUM) {
        double len = 1;
        for (int i = 0; i < e->nvars; i++)
            len *= (double)kir_dim_value(k->vars[e->vars[i]].extent, dims);
        return len;
    }
    return sum_lengths(k, e->a, dims, depth + 1) + sum_lengths(k, e->b, dims, depth + 1);
}

/* Operations of one launch: 2 per multiply-add of every reduction of the
 * results and materialized temps. */
static double kernel_ops(const kir_kernel *k, const int64_t *dims)
{
    double ops = 0;
    for (int s = 0; s < k->nstmts; s++) {
        const kir_stmt *st = &k->stmts[s];
        const kir_tensor *t = &k->tensors[st->tensor];
        if (t->kind != KIR_RESULT && !t->materialized)
            continue;
        double pts = 1;
        for (int i = 0; i < st->nlhs; i++)
            pts *= (double)kir_dim_value(k->vars[st->lhs[i]].extent, dims);
        ops += 2 * pts * sum_lengths(k, st->rhs, dims, 0);
    }
    return ops;
}

static void tensor_geom(const kir_kernel *k, int i, const int64_t *dims, int64_t *shape, int64_t *rows, int64_t *cols)
{
    const kir_tensor *t = &k->tensors[i];
    *rows = 1;
    *cols = 1;
    for (int d = 0; d < t->rank; d++) {
        int64_t v = kir_dim_value(t->dims[d], dims);
        shape[d] = v < 0 ? 0 : v;
        if (d + 1 < t->rank)
            *rows *= shape[d];
        else
            *cols = shape[d];
    }
}

static double tensor_bytes(const kir_kernel *k, int i, const int64_t *dims)
{
    int64_t shape[QK_MAX_RANK], rows, cols;
    tensor_geom(k, i, dims, shape, &rows, &cols);
    const kir_tensor *t = &k->tensors[i];
    if (t->fmt)
        return (double)qk_format_size(t->fmt, rows, cols);
    return (double)rows * (double)cols * qk_dtype_size(t->dtype);
}

/* Bytes of the packed weights (every quantized parameter; a kernel
 * without one: its largest parameter). */
static double weight_bytes(const kir_kernel *k, const int64_t *dims)
{
    double q = 0, big = 0;
    for (int i = 0; i < k->nparams; i++) {
        double b = tensor_bytes(k, i, dims);
        q += k->tensors[i].fmt ? b : 0;
        big = b > big ? b : big;
    }
    return q > 0 ? q : big;
}

/* The kernel's first quantized parameter, or -1. */
static int first_quant(const kir_kernel *k)
{
    for (int i = 0; i < k->nparams; i++)
        if (k->tensors[i].fmt)
            return i;
    return -1;
}

/* ---- arguments: random inputs, packed weights, result buffers ---- */

typedef struct tu_args {
    int n;
    qkc_tensor t[TU_MAX_T];
    size_t bytes[TU_MAX_T];
    void *ref[TU_MAX_T]; /* results of the reference (NULL for params) */
} tu_args;

static void args_free(tu_args *a)
{
    for (int i = 0; i < a->n; i++) {
        free(a->t[i].data);
        free(a->ref[i]);
    }
    memset(a, 0, sizeof *a);
}

/* dst: a copy of src in buffers of its own (results cleared). 0 or -1. */
static int args_clone(const tu_args *src, tu_args *dst)
{
    *dst = *src;
    for (int i = 0; i < src->n; i++) {
        dst->t[i].data = cli_alloc(src->bytes[i] ? src->bytes[i] : 1);
        dst->ref[i] = src->ref[i] ? calloc(1, src->bytes[i] ? src->bytes[i] : 1) : NULL;
        if (dst->t[i].data)
            memcpy(dst->t[i].data, src->t[i].data, src->bytes[i]);
        if (!dst->t[i].data || (src->ref[i] && !dst->ref[i])) {
            for (int j = i + 1; j < src->n; j++)
                dst->t[j].data = dst->ref[j] = NULL;
            args_free(dst);
            return -1;
        }
    }
    return 0;
}

/* Sets up tensor i of k at dims. */
static int make_tensor(qkc_program *p, const kir_kernel *k, int i, const int64_t *dims, cli_rng *r, tu_args *a,
                       char *err, size_t errsz)
{
    const kir_tensor *t = &k->tensors[i];
    qkc_tensor *x = &a->t[i];
    int64_t rows, cols;
    tensor_geom(k, i, dims, x->shape, &rows, &cols);
    x->rank = t->rank;
    x->dtype = t->fmt ? QKC_PACKED : rt_dtype_from_qk(t->dtype);
    double bytes = tensor_bytes(k, i, dims);
    if (bytes > 1e12)
        return snprintf(err, errsz, "%s would need %.3g bytes", t->name, bytes), -1;
    a->bytes[i] = (size_t)bytes;
    x->data = cli_alloc(a->bytes[i]);
    if (!x->data)
        return snprintf(err, errsz, "out of memory for %s (%zu bytes)", t->name, a->bytes[i]), -1;
    if (i >= k->nparams) { /* results: NaN bytes, so unwritten outputs fail the check */
        memset(x->data, 0xff, a->bytes[i]);
        a->ref[i] = calloc(1, a->bytes[i] ? a->bytes[i] : 1);
        return a->ref[i] ? 0 : (snprintf(err, errsz, "out of memory"), -1);
    }
    if (!t->fmt) {
        cli_fill_dense(r, rt_dtype_from_qk(t->dtype), x->data, rows * cols);
        return 0;
    }
    const void *book = t->book >= 0 ? a->t[t->book].data : NULL;
    size_t book_bytes = t->book >= 0 ? a->bytes[t->book] : 0;
    /* large tensors and every vector-codebook one repeat a tile of 5 rows x 7 blocks */
    int tile = t->fmt->code == QK_CODE_VQ || rows * cols > TU_DIRECT_PACK;
    return cli_pack_random(p, t->fmt->name, rows, cols, book, book_bytes, tile ? 5 : 0, tile ? 7 : 0, r, x->data,
                           a->bytes[i], err, errsz);
}

/* Every tensor of k at dims: dense ones first (codebooks exist before
 * the tensors packed with them). 0 or -1 + err. */
static int args_make(qkc_program *p, const kir_kernel *k, const int64_t *dims, uint64_t seed, tu_args *a, char *err,
                     size_t errsz)
{
    memset(a, 0, sizeof *a);
    if (k->nparams + k->nresults > TU_MAX_T)
        return snprintf(err, errsz, "kernel %s has more than %d tensors", k->name, TU_MAX_T), -1;
    a->n = k->nparams + k->nresults;
    cli_rng r = {seed};
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < a->n; i++)
            if ((k->tensors[i].fmt != NULL) == pass && make_tensor(p, k, i, dims, &r, a, err, errsz) != 0)
                return -1;
    return 0;
}

static void reset_results(tu_args *a)
{
    for (int i = 0; i < a->n; i++)
        if (a->ref[i])
            memset(a->t[i].data, 0xff, a->bytes[i]);
}

static qkc_status run_reference(qkc_kernel *kn, const tu_args *a)
{
    qkc_tensor ref[TU_MAX_T];
    for (int i = 0; i < a->n; i++) {
        ref[i] = a->t[i];
        if (a->ref[i])
            ref[i].data = a->ref[i];
    }
    return qkc_reference(kn, ref, a->n);
}

/* Result i against the reference, with qkc run's tolerances: f32 1e-4,
 * f16 4e-3, bf16 3e-2 normwise; integers max abs error <= 1. */
static int compare_one(const kir_kernel *k, const tu_args *a, int i, char *why, size_t n)
{
    qk_dtype dt = k->tensors[i].dtype;
    int64_t cnt = (int64_t)(a->bytes[i] / (size_t)qk_dtype_size(dt));
    double maxerr = 0, maxref = 0;
    for (int64_t j = 0; j < cnt; j++) {
        double y = qk_dtype_load(dt, a->t[i].data, j), r = qk_dtype_load(dt, a->ref[i], j);
        double e = fabs(y - r);
        maxerr = isnan(e) ? INFINITY : fmax(maxerr, e);
        maxref = fmax(maxref, fabs(r));
    }
    int isint = !qk_dtype_is_float(dt);
    double tol = dt == QK_DT_F32 ? 1e-4 : dt == QK_DT_F16 ? 4e-3 : dt == QK_DT_BF16 ? 3e-2 : 1;
    double err = isint || maxref == 0 ? maxerr : maxerr / maxref;
    if (err <= tol)
        return 0;
    snprintf(why, n, "result %s differs from the reference: %s error %.3g > %.0e", k->tensors[i].name,
             isint ? "max abs" : "normwise", err, tol);
    return 1;
}

static int compare_all(const kir_kernel *k, const tu_args *a, char *why, size_t n)
{
    for (int i = k->nparams; i < a->n; i++)
        if (compare_one(k, a, i, why, n))
            return 1;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Times reps launches after a warm-up (reps <= 0: enough for about
 * budget seconds, 3 to 1000), launch r on sets[r % nsets]: with one set
 * its inputs stay in cache as far as they fit (hot); with several, each
 * launch reads inputs the others have evicted (cold). The times are
 * appended to ts (cap in all). 0, or -1 when a launch fails. */
static int time_launches(qkc_kernel *kn, tu_args *sets, int nsets, int threads, int64_t reps, double budget,
                         double *ts, int *nts, int cap)
{
    qkc_launch_options o = {.threads = threads};
    for (int c = 1; c < nsets; c++)
        if (qkc_launch(kn, sets[c].t, sets[c].n, &o) != QKC_OK)
            return -1;
    double t0 = cli_now();
    if (qkc_launch(kn, sets[0].t, sets[0].n, &o) != QKC_OK)
        return -1;
    double once = cli_now() - t0;
    if (reps <= 0) {
        reps = once > 0 ? (int64_t)(budget / once) : 1000;
        reps = reps < 3 ? 3 : reps > 1000 ? 1000 : reps;
    }
    for (int64_t r = 0; r < reps && *nts < cap; r++) {
        tu_args *a = &sets[(r + 1) % nsets];
        t0 = cli_now();
        if (qkc_launch(kn, a->t, a->n, &o) != QKC_OK)
            return -1;
        ts[(*nts)++] = cli_now() - t0;
    }
    return 0;
}

/* ---- the session: options, database, probe, measuring context ---- */

enum { TU_AUTO, TU_COLD, TU_HOT }; /* --mode: auto is cold when the inputs exceed L3 */

typedef struct tu_session {
    const char *file, *kname, *target;
    char *source; /* the file's text */
    char dbpath[4096];
    qk_tunedb *db; /* NULL: measurements are not stored */
    qkc_ctx *ctx;  /* measuring context (no tuning database) */
    char fp[512];  /* fingerprint of the target: the records' key */
    qk_probe_result probe;
    int probe_tried, have_probe;
    int threads[TU_MAX_THREADS], nthreads;
    int top;
    int any_layout; /* --layout any: row-interleaved candidates too */
    int mode;       /* TU_AUTO, TU_COLD, TU_HOT: how candidates are timed */
    int64_t reps;
    int json;
    int stored; /* records written */
} tu_session;

/* One measured configuration. */
typedef struct tu_meas {
    char config[256];
    int model_rank;
    double model_s, seconds, gbps, gops;
    int ok;        /* compiled, matched the reference, timed */
    char why[512]; /* else what went wrong */
    double *ts;    /* launch times of every pass (freed when the point is done) */
    int nts, cap;
    double spread; /* interquartile range of the launch times over their median */
} tu_meas;

/* One tuned point: a kernel (one format) at one shape and thread count. */
typedef struct tu_point {
    char format[64];
    char shape[256], check_shape[256];
    int threads;
    double wbytes, ops, bpw;
    int copies;      /* sets of inputs the timing rotates through (> 1: cold) */
    double in_bytes; /* bytes of one set of inputs */
    int n;
    tu_meas m[TU_MAX_CANDS];
    int best;    /* index into m, -1 when none passed */
    int failed;  /* candidates that failed (compile, check, launch) */
    double corr; /* model vs measurement, over the passing ones */
    char followup_cfg[256], followup_origin[512];
} tu_point;

/* Read bandwidth of a level for `threads`, interpolated between the
 * probe's one-thread and all-threads figures. */
static double probe_bw(const qk_probe_result *p, int level, int threads)
{
    double one = p->read_bw[level][0], all = p->read_bw[level][1];
    if (threads <= 1 || p->threads <= 1)
        return one;
    if (threads >= p->threads)
        return all;
    return one + (all - one) * (threads - 1) / (p->threads - 1);
}

static void limits_for(const tu_session *S, int threads, tune_limits *lim)
{
    memset(lim, 0, sizeof *lim);
    if (!S->have_probe)
        return;
    lim->dram_bw = probe_bw(&S->probe, QK_PROBE_DRAM, threads);
    lim->l3_bw = probe_bw(&S->probe, QK_PROBE_L3, threads);
    lim->l2_bw = probe_bw(&S->probe, QK_PROBE_L2, threads);
    lim->f32_flops = S->probe.f32_fma[0];
    lim->int8_ops = S->probe.int8_dot[0];
}

/* The machine's limits: stored by `qkc probe`, else a quick probe now
 * (stored when the database is writable). */
static void load_probe(tu_session *S)
{
    qk_target host;
    qk_target_host(&host);
    char fp[512], err[512] = "";
    qk_target_fingerprint(&host, fp, sizeof fp);
    if (S->db && qk_tunedb_probe_get(S->db, fp, &S->probe, err, sizeof err) == 1) {
        S->have_probe = 1;
        return;
    }
    fprintf(stderr, "qkc tune: no probe results for this machine in the database; quick probe (about 1 s)...\n");
    qk_probe_opts po = {.threads = 0, .quick = 1};
    if (qk_probe_run(&po, &S->probe, err, sizeof err) != 0) {
        fprintf(stderr, "qkc tune: warning: probe failed (%s); the model assumes round figures\n", err);
        return;
    }
    S->have_probe = 1;
    if (S->db && qk_tunedb_probe_put(S->db, &S->probe, err, sizeof err) != 0)
        fprintf(stderr, "qkc tune: warning: probe results not stored: %s\n", err);
}

static void store(tu_session *S, const kir_kernel *k, const tu_point *pt, const tu_meas *m, const char *origin)
{
    if (!S->db)
        return;
    qk_tune_record r;
    memset(&r, 0, sizeof r);
    tune_kernel_hash(k, r.kernel_hash);
    snprintf(r.kernel_name, sizeof r.kernel_name, "%s", k->name);
    snprintf(r.shape, sizeof r.shape, "%s", pt->shape);
    snprintf(r.fingerprint, sizeof r.fingerprint, "%s", S->fp);
    snprintf(r.config, sizeof r.config, "%s", m->config);
    snprintf(r.version, sizeof r.version, "%s", qkc_version());
    snprintf(r.origin, sizeof r.origin, "%s", origin);
    snprintf(r.timing, sizeof r.timing, "%s", pt->copies > 1 ? "cold" : "hot");
    r.threads = pt->threads;
    r.seconds = m->seconds;
    r.gbps = m->gbps;
    r.gops = m->gops;
    char err[512];
    if (qk_tunedb_put(S->db, &r, err, sizeof err) == 0) {
        S->stored++;
        return;
    }
    fprintf(stderr, "qkc tune: warning: %s; further results are not stored\n", err);
    qk_tunedb_close(S->db);
    S->db = NULL;
}

/* ---- one tuned point ---- */

static int64_t ragged(int64_t v)
{
    return v > 16 && v % 8 == 0 ? v - 3 : v;
}

/* The reference check's shape: every dimension capped at TU_CHECK_CAP and
 * off multiples of 8 (ragged tiles and blocks), the largest halved until
 * the work is small. plain: powers of two instead (for kernels whose
 * shapes must be, e.g. hadamard()). */
static void check_dims(const kir_kernel *k, const int64_t *dims, int plain, int64_t *out)
{
    for (int i = 0; i < k->nsyms; i++) {
        int64_t v = dims[i] > TU_CHECK_CAP ? TU_CHECK_CAP : dims[i];
        if (plain)
            while (v & (v - 1))
                v &= v - 1;
        out[i] = plain ? v : ragged(v);
    }
    while (kernel_ops(k, out) / 2 > TU_CHECK_WORK) {
        int j = -1;
        for (int i = 0; i < k->nsyms; i++)
            if (out[i] > 16 && (j < 0 || out[i] >= out[j]))
                j = i;
        if (j < 0)
            break;
        out[j] = plain ? out[j] / 2 : ragged(out[j] / 2);
    }
}

/* Arguments as one kernel reads them: the parameters it reads
 * row-interleaved (qkc_param_info.repack_rows) converted into buffers of
 * the view's own, every other tensor (results and reference results
 * included) shared with the arguments it views. */
typedef struct tu_view {
    tu_args a;
    void *own[TU_MAX_T];
} tu_view;

static void view_free(tu_view *v)
{
    for (int i = 0; i < v->a.n; i++)
        free(v->own[i]);
    memset(v, 0, sizeof *v);
}

/* 0, or -1 with why. */
static int view_make(qkc_kernel *kn, qkc_ctx *ctx, const tu_args *a, tu_view *v, char *why, size_t n)
{
    memset(v, 0, sizeof *v);
    v->a = *a;
    for (int i = 0; i < a->n; i++) {
        qkc_param_info pi;
        if (a->ref[i] || qkc_kernel_param(kn, i, &pi) != QKC_OK || !pi.repack_rows)
            continue;
        const qkc_tensor *t = &a->t[i];
        int64_t rows = 1, cols = t->rank ? t->shape[t->rank - 1] : 1;
        for (int d = 0; d + 1 < t->rank; d++)
            rows *= t->shape[d];
        size_t bytes = 0;
        if (qkc_kernel_repacked_size(kn, i, rows, cols, &bytes) != QKC_OK ||
            !(v->own[i] = cli_alloc(bytes ? bytes : 1)) ||
            qkc_kernel_repack(kn, i, t->data, a->bytes[i], rows, cols, v->own[i], bytes) != QKC_OK) {
            snprintf(why, n, "converting %s to the row-interleaved layout: %s", pi.name,
                     bytes && !v->own[i] ? "out of memory" : qkc_errmsg(ctx));
            view_free(v);
            return -1;
        }
        v->a.t[i].data = v->own[i];
        v->a.bytes[i] = bytes;
    }
    return 0;
}

/* The check's arguments and reference results, on a ragged shape, else
 * on a power-of-two one. 0, or -1 with why. */
static int prepare_check(qkc_program *p, const kir_kernel *k, qkc_kernel *kn, const int64_t *dims, tu_args *chk,
                         tu_point *pt, char *why, size_t n)
{
    for (int plain = 0; plain < 2; plain++) {
        int64_t cd[TU_MAX_SYMS];
        check_dims(k, dims, plain, cd);
        shape_text(k, cd, pt->check_shape, sizeof pt->check_shape);
        if (args_make(p, k, cd, 0x7e57 + (uint64_t)plain, chk, why, n) != 0)
            return args_free(chk), -1;
        tu_view v; /* the reference reads the parameters in kn's layout */
        if (view_make(kn, p->ctx, chk, &v, why, n) != 0)
            return args_free(chk), -1;
        qkc_status st = run_reference(kn, &v.a);
        view_free(&v);
        if (st == QKC_OK)
            return 0;
        snprintf(why, n, "reference on %s: %s", pt->check_shape, qkc_errmsg(p->ctx));
        args_free(chk);
    }
    return -1;
}

typedef struct tu_run {
    tu_session *S;
    qkc_program *p;
    const kir_kernel *k;
    const int64_t *dims;
    tu_args chk, *full; /* full[0..pt->copies) */
    int have_chk; /* chk holds the reference results */
    const char *origin;
    int passes; /* timing passes over the candidates: 2 when there are several */
    /* full[] as the last candidate read them, kept for the next one of the
     * same layout (converting 8 copies of a large matrix takes seconds) */
    tu_view *views;
    int nviews;
    char layout[TU_MAX_T]; /* each parameter's repack_rows for views, 0: own */
} tu_run;

/* Launch on chk against the reference, then time on the sets full[0..pt->copies).
 * 0, or -1 with m->why. */
static int check_and_time(tu_run *R, tu_point *pt, tu_meas *m, qkc_kernel *kn, tu_args *chk, tu_args *full)
{
    qkc_ctx *ctx = R->p->ctx;
    qkc_launch_options lo = {.threads = pt->threads};
    reset_results(chk);
    if (qkc_launch(kn, chk->t, chk->n, &lo) != QKC_OK)
        return snprintf(m->why, sizeof m->why, "launch on %s: %s", pt->check_shape, qkc_errmsg(ctx)), -1;
    if (compare_all(R->k, chk, m->why, sizeof m->why))
        return -1;
    int64_t reps = R->S->reps > 0 && R->passes > 1 ? (R->S->reps + 1) / 2 : R->S->reps;
    if (!m->ts) {
        m->cap = R->passes * (int)(reps > 0 ? reps : 1000);
        if (!(m->ts = malloc((size_t)m->cap * sizeof *m->ts)))
            return snprintf(m->why, sizeof m->why, "out of memory"), -1;
    }
    if (time_launches(kn, full, pt->copies, pt->threads, reps, 0.3 / R->passes, m->ts, &m->nts, m->cap) != 0)
        return snprintf(m->why, sizeof m->why, "launch on %s: %s", pt->shape, qkc_errmsg(ctx)), -1;
    return 0;
}

static void views_drop(tu_run *R)
{
    for (int i = 0; i < R->nviews; i++)
        view_free(&R->views[i]);
    free(R->views);
    R->views = NULL;
    R->nviews = 0;
}

/* R->views: full[] in kn's layout, converted unless the last candidate's
 * layout was the same. 0, or -1 with why. */
static int views_for(tu_run *R, tu_point *pt, qkc_kernel *kn, char *why, size_t n)
{
    char layout[TU_MAX_T] = {0};
    for (int i = 0; i < R->full[0].n && i < TU_MAX_T; i++) {
        qkc_param_info pi;
        if (!R->full[0].ref[i] && qkc_kernel_param(kn, i, &pi) == QKC_OK)
            layout[i] = (char)pi.repack_rows;
    }
    if (R->views && memcmp(layout, R->layout, sizeof layout) == 0)
        return 0;
    views_drop(R);
    if (!(R->views = calloc((size_t)pt->copies, sizeof *R->views)))
        return snprintf(why, n, "out of memory"), -1;
    while (R->nviews < pt->copies && view_make(kn, R->p->ctx, &R->full[R->nviews], &R->views[R->nviews], why, n) == 0)
        R->nviews++;
    if (R->nviews < pt->copies)
        return views_drop(R), -1;
    memcpy(R->layout, layout, sizeof layout);
    return 0;
}

/* Compile, check against the reference, time. 0, or -1 with m->why. */
static int try_candidate(tu_run *R, tu_point *pt, tu_meas *m)
{
    qkc_kernel_options o = {.dims = pt->shape, .threads = pt->threads, .config = m->config};
    qkc_kernel *kn = NULL;
    qkc_ctx *ctx = R->p->ctx;
    if (qkc_kernel_get_ex(R->p, R->k->name, &o, &kn) != QKC_OK)
        return snprintf(m->why, sizeof m->why, "compile: %s", qkc_errmsg(ctx)), -1;
    if (!R->have_chk && prepare_check(R->p, R->k, kn, R->dims, &R->chk, pt, m->why, sizeof m->why) != 0)
        return -1;
    R->have_chk = 1;
    tu_view chk;
    tu_args *sets = calloc((size_t)pt->copies, sizeof *sets);
    int rc = -1;
    if (!sets)
        snprintf(m->why, sizeof m->why, "out of memory");
    else if (views_for(R, pt, kn, m->why, sizeof m->why) == 0 &&
             view_make(kn, ctx, &R->chk, &chk, m->why, sizeof m->why) == 0) {
        for (int i = 0; i < pt->copies; i++)
            sets[i] = R->views[i].a;
        rc = check_and_time(R, pt, m, kn, &chk.a, sets);
        view_free(&chk);
    }
    free(sets);
    return rc;
}

/* One timing pass of a candidate (checked again each pass); a failure is
 * reported loudly and ends its measurement. */
static void measure_pass(tu_run *R, tu_point *pt, tu_meas *m)
{
    if (try_candidate(R, pt, m) == 0)
        return;
    fprintf(stderr, "qkc tune: FAIL: kernel %s, %s, %d thread%s, configuration '%s': %s (not stored)\n", R->k->name,
            pt->shape, pt->threads, pt->threads == 1 ? "" : "s", m->config, m->why);
    pt->failed++;
    m->ok = -1;
}

/* The candidates in model order, then again in reverse (passes = 2): a
 * drift of the machine's speed during the tune (this VM's DRAM rate moves
 * by half within minutes) then weighs on every candidate alike instead of
 * favouring the first or the last. Each candidate's time is the median of
 * its launches of both passes; then it is stored. */
static void measure_all(tu_run *R, tu_point *pt, const tune_cand *c, int n)
{
    for (int i = 0; i < n; i++) {
        tu_meas *m = &pt->m[pt->n++];
        memset(m, 0, sizeof *m);
        tir_config_print(&c[i].cfg, m->config, sizeof m->config);
        m->model_rank = i + 1;
        m->model_s = c[i].model_s;
        measure_pass(R, pt, m);
    }
    for (int pass = 1; pass < R->passes; pass++)
        for (int i = n - 1; i >= 0; i--)
            if (pt->m[i].ok == 0)
                measure_pass(R, pt, &pt->m[i]);
    for (int i = 0; i < n; i++) {
        tu_meas *m = &pt->m[i];
        if (m->ok == 0 && m->nts > 0) {
            qsort(m->ts, (size_t)m->nts, sizeof *m->ts, cmp_double);
            m->seconds = m->ts[m->nts / 2];
            m->spread = (m->ts[m->nts * 3 / 4] - m->ts[m->nts / 4]) / m->seconds;
            m->gbps = pt->wbytes / m->seconds / 1e9;
            m->gops = pt->ops / m->seconds / 1e9;
            m->ok = 1;
            store(R->S, R->k, pt, m, R->origin);
        } else
            m->ok = 0;
        free(m->ts);
        m->ts = NULL;
    }
}

/* The fastest passing candidate after the winner, or -1. */
static int runner_up(const tu_point *pt)
{
    int r = -1;
    for (int i = 0; i < pt->n; i++)
        if (i != pt->best && pt->m[i].ok && (r < 0 || pt->m[i].seconds < pt->m[r].seconds))
            r = i;
    return r;
}

/* Winner and the model's rank correlation over the passing candidates. */
static void finish_point(tu_point *pt)
{
    double a[TU_MAX_CANDS], b[TU_MAX_CANDS];
    int n = 0;
    pt->best = -1;
    for (int i = 0; i < pt->n; i++) {
        if (!pt->m[i].ok)
            continue;
        if (pt->best < 0 || pt->m[i].seconds <= pt->m[pt->best].seconds) /* ties: the later, as lookups */
            pt->best = i;
        a[n] = pt->m[i].model_s;
        b[n++] = pt->m[i].seconds;
    }
    pt->corr = tune_rank_corr(a, b, n);
}

static int measure_cands(tu_session *S, qkc_program *p, const kir_kernel *k, const int64_t *dims, const tune_cand *c,
                         int n, const char *origin, tu_point *pt);

/* Shape, bytes and format of a point. */
static void point_init(tu_point *pt, const kir_kernel *k, const int64_t *dims, int threads)
{
    pt->threads = threads;
    pt->best = -1;
    shape_text(k, dims, pt->shape, sizeof pt->shape);
    pt->wbytes = weight_bytes(k, dims);
    pt->ops = kernel_ops(k, dims);
    int q = first_quant(k);
    snprintf(pt->format, sizeof pt->format, "%s", q >= 0 ? k->tensors[q].fmt->name : "-");
    pt->bpw = q >= 0 ? qk_format_bits_per_weight(k->tensors[q].fmt) : 0;
}

/* Tunes kernel k of program p at dims and `threads`: the model's best
 * `top` configurations, each checked, timed and stored. 0, or 1 when the
 * point could not be measured at all (message printed). */
static int tune_point(tu_session *S, qkc_program *p, const kir_kernel *k, const int64_t *dims, int threads, int top,
                      const char *origin, tu_point *pt)
{
    point_init(pt, k, dims, threads);
    tir_config base;
    tir_default_config(&S->ctx->target, &base);
    tir_apply_schedule(k, &base);
    if (!S->probe_tried) { /* here, not earlier: bad options fail before anything runs */
        S->probe_tried = 1;
        load_probe(S);
    }
    tune_limits lim;
    limits_for(S, threads, &lim);
    tune_cand c[TU_MAX_CANDS];
    int max = top < TU_MAX_CANDS - 5 ? top : TU_MAX_CANDS - 5;
    int n = tune_candidates(k, &S->ctx->target, &base, dims, threads, &lim, c, max);
    char why[256];
    if (S->any_layout) { /* row-interleaved candidates too, all measured, in the model's order */
        n += tune_repack_candidates(k, &S->ctx->target, &base, dims, threads, &lim, c + n, 5, why, sizeof why);
        for (int i = 1; i < n; i++)
            for (int j = i; j > 0 && c[j - 1].model_s > c[j].model_s; j--) {
                tune_cand x = c[j];
                c[j] = c[j - 1];
                c[j - 1] = x;
            }
    }
    return measure_cands(S, p, k, dims, c, n, origin, pt);
}

/* The target's last cache level: its bytes, and its name into *lvl. */
static int64_t last_level(const tu_session *S, const char **lvl)
{
    const qk_target *t = &S->ctx->target;
    if (lvl)
        *lvl = t->l3 > 0 ? "L3" : "L2";
    return t->l3 > 0 ? t->l3 : t->l2;
}

/* How many sets of inputs of in_bytes the timing rotates through: 1
 * (hot) unless --mode cold, or --mode auto and they exceed the L3 (the
 * last level the target names); then as many as qkc bench's cold runs
 * (cli_cold_copies): the weights come from DRAM, as a decoder's do. */
static int timing_copies(const tu_session *S, double in_bytes)
{
    int64_t llc = last_level(S, NULL);
    int within = in_bytes <= (double)(llc > 0 ? llc : 32 << 20);
    if (S->ctx->target.kind == QK_TARGET_GPU || S->mode == TU_HOT || (S->mode == TU_AUTO && within))
        return 1;
    return cli_cold_copies(in_bytes, llc, TU_MAX_COPIES);
}

/* Measures c[0..n) at dims (pt prepared by the caller). 0, or 1 when the
 * point could not be measured at all (message printed). */
static int measure_cands(tu_session *S, qkc_program *p, const kir_kernel *k, const int64_t *dims, const tune_cand *c,
                         int n, const char *origin, tu_point *pt)
{
    tu_run R = {.S = S, .p = p, .k = k, .dims = dims, .origin = origin};
    tu_args first;
    char err[512];
    if (args_make(p, k, dims, 0x5eed, &first, err, sizeof err) != 0) {
        args_free(&first);
        return cli_error("kernel %s at %s: %s", k->name, pt->shape, err);
    }
    pt->in_bytes = 0;
    for (int i = 0; i < k->nparams; i++)
        pt->in_bytes += (double)first.bytes[i];
    pt->copies = timing_copies(S, pt->in_bytes);
    int made = 0;
    if ((R.full = calloc((size_t)pt->copies, sizeof *R.full)) != NULL) {
        R.full[made++] = first;
        while (made < pt->copies && args_clone(&first, &R.full[made]) == 0)
            made++;
    }
    if (made < pt->copies) {
        for (int i = 0; i < made; i++)
            args_free(&R.full[i]);
        if (!R.full)
            args_free(&first);
        free(R.full);
        return cli_error("kernel %s at %s: out of memory for %d copies of the inputs (%.1f MB each)", k->name,
                         pt->shape, pt->copies, pt->in_bytes / 1e6);
    }
    R.passes = n > 1 ? 2 : 1;
    measure_all(&R, pt, c, n);
    views_drop(&R);
    for (int i = 0; i < pt->copies; i++)
        args_free(&R.full[i]);
    free(R.full);
    args_free(&R.chk);
    finish_point(pt);
    return 0;
}

/* A new context on the same database compiles the kernel without a
 * configuration: which one it picks, and why. */
static void followup(const tu_session *S, tu_point *pt)
{
    qkc_ctx_options o = {.target = S->target, .threads = pt->threads, .tuning_db = S->dbpath};
    qkc_ctx *ctx = NULL;
    qkc_program *p = NULL;
    qkc_kernel *kn = NULL;
    const char *cfg = "", *origin = "";
    snprintf(pt->followup_origin, sizeof pt->followup_origin, "(failed)");
    if (qkc_ctx_create(&o, &ctx) != QKC_OK)
        return;
    qkc_kernel_options ko = {.dims = pt->shape, .threads = pt->threads, .any_layout = S->any_layout};
    if (qkc_program_create(ctx, S->source, S->file, &p) == QKC_OK &&
        qkc_kernel_get_ex(p, S->kname, &ko, &kn) == QKC_OK && qkc_kernel_config(kn, &cfg, &origin) == QKC_OK) {
        snprintf(pt->followup_cfg, sizeof pt->followup_cfg, "%s", cfg);
        snprintf(pt->followup_origin, sizeof pt->followup_origin, "%s", origin);
    } else
        snprintf(pt->followup_origin, sizeof pt->followup_origin, "(failed: %s)", qkc_errmsg(ctx));
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
}

/* ---- printing a tuned point ---- */

static const char *plural(int n)
{
    return n == 1 ? "" : "s";
}

/* DRAM read bandwidth for `threads` (0 when not probed). */
static double dram_for(const tu_session *S, int threads)
{
    return S->have_probe ? probe_bw(&S->probe, QK_PROBE_DRAM, threads) : 0;
}

static void print_limits(const tu_session *S, int threads)
{
    if (!S->have_probe) {
        printf("machine limits: not probed (run 'qkc probe'); the model assumes round figures\n");
        return;
    }
    printf("machine limits (%d thread%s): DRAM %.1f GB/s, L3 %.1f GB/s, L2 %.1f GB/s; one core: %.0f GFLOP/s f32, "
           "%.0f GOP/s int8\n",
           threads, plural(threads), probe_bw(&S->probe, QK_PROBE_DRAM, threads) / 1e9,
           probe_bw(&S->probe, QK_PROBE_L3, threads) / 1e9, probe_bw(&S->probe, QK_PROBE_L2, threads) / 1e9,
           S->probe.f32_fma[0] / 1e9, S->probe.int8_dot[0] / 1e9);
}

/* How the candidates were timed: inputs cold (rotated copies) or hot. */
static void print_timing(const tu_session *S, const tu_point *pt)
{
    const char *lvl;
    int64_t llc = last_level(S, &lvl);
    if (S->ctx->target.kind == QK_TARGET_GPU) /* the device keeps its own buffers */
        return;
    if (pt->copies > 1)
        printf("timed cold: each launch reads the next of %d copies of the inputs (%.3g MB each, %.4g MB in all; "
               "%s %.4g MB)%s%s\n",
               pt->copies, pt->in_bytes / 1e6, pt->copies * pt->in_bytes / 1e6, lvl, llc / 1e6,
               S->mode == TU_COLD ? ", --mode cold" : "",
               pt->copies * pt->in_bytes < 3.0 * (double)llc ? "; too small to leave the cache between uses" : "");
    else
        printf("timed hot: every launch reads the same inputs (%.3g MB; %s %.4g MB)%s\n", pt->in_bytes / 1e6, lvl,
               llc / 1e6, S->mode == TU_HOT ? ", --mode hot" : "");
}

static void print_point(const tu_session *S, const tu_point *pt)
{
    printf("\nqkc tune: kernel %s (%s) on %s, %s, %d thread%s\n", S->kname, S->file, qkc_ctx_target(S->ctx), pt->shape,
           pt->threads, plural(pt->threads));
    printf("weights: %.2f MB packed (%s, %.4g bits/weight); %.3g GOP per launch\n", pt->wbytes / 1e6, pt->format,
           pt->bpw, pt->ops / 1e9);
    print_limits(S, pt->threads);
    print_timing(S, pt);
    printf("every candidate is checked against the reference on %s first\n\n", pt->check_shape);
    printf("%5s %12s %12s %7s %8s %8s  %-5s  %s\n", "model", "model (us)", "time (us)", "spread", "GB/s", "GOP/s",
           "check", "configuration");
    for (int i = 0; i < pt->n; i++) {
        const tu_meas *m = &pt->m[i];
        if (m->ok)
            printf("%5d %12.1f %12.1f %6.1f%% %8.2f %8.2f  %-5s  %s%s\n", m->model_rank, m->model_s * 1e6,
                   m->seconds * 1e6, 100 * m->spread, m->gbps, m->gops, "ok", m->config,
                   i == pt->best ? "   <- fastest" : "");
        else
            printf("%5d %12.1f %12s %7s %8s %8s  %-5s  %s\n", m->model_rank, m->model_s * 1e6, "-", "-", "-", "-",
                   "FAIL", m->config);
    }
    int ok = pt->n - pt->failed;
    if (ok >= 3)
        printf("\nmodel vs measurement: Spearman rank correlation %+.2f over %d candidates\n", pt->corr, ok);
    else
        printf("\nmodel vs measurement: too few candidates (%d) for a rank correlation\n", ok);
    if (pt->best < 0) {
        printf("winner: none (every candidate failed)\n");
        return;
    }
    const tu_meas *w = &pt->m[pt->best];
    double dram = dram_for(S, pt->threads);
    printf("winner: %s\n        %.1f us, %.2f GB/s", w->config, w->seconds * 1e6, w->gbps);
    if (dram > 0)
        printf(" (%.0f%% of DRAM read bandwidth, %d thread%s)", 100 * w->gbps * 1e9 / dram, pt->threads,
               plural(pt->threads));
    printf(", %.2f GOP/s; model rank %d\n", w->gops, w->model_rank);
    int second = runner_up(pt);
    if (second >= 0) {
        const tu_meas *r = &pt->m[second];
        double gap = r->seconds / w->seconds - 1, half = (w->spread > r->spread ? w->spread : r->spread) / 2;
        if (gap < half)
            printf("        the runner-up (model rank %d) is %.1f%% slower, within the launches' spread (half of "
                   "%.1f%%): their order may change from run to run\n",
                   r->model_rank, 100 * gap, 200 * half);
    }
}

static void json_point(const tu_session *S, const tu_point *pt, int last)
{
    printf("    {\"format\": ");
    cli_json_str(stdout, pt->format);
    printf(", \"shape\": ");
    cli_json_str(stdout, pt->shape);
    printf(", \"threads\": %d, \"check_shape\": ", pt->threads);
    cli_json_str(stdout, pt->check_shape);
    printf(", \"weight_bytes\": %.0f, \"ops\": %.0f, \"bits_per_weight\": %.6g, \"timing\": \"%s\", \"copies\": %d,"
           "\n     \"candidates\": [",
           pt->wbytes, pt->ops, pt->bpw, pt->copies > 1 ? "cold" : "hot", pt->copies);
    for (int i = 0; i < pt->n; i++) {
        const tu_meas *m = &pt->m[i];
        printf("%s\n       {\"model_rank\": %d, \"model_seconds\": %.6g, \"config\": ", i ? "," : "", m->model_rank,
               m->model_s);
        cli_json_str(stdout, m->config);
        printf(", \"ok\": %s, ", m->ok ? "true" : "false");
        if (m->ok)
            printf("\"seconds\": %.6g, \"spread\": %.4g, \"gbps\": %.6g, \"gops\": %.6g}", m->seconds, m->spread,
                   m->gbps, m->gops);
        else {
            printf("\"error\": ");
            cli_json_str(stdout, m->why);
            printf("}");
        }
    }
    printf("],\n     \"rank_corr\": %.4f, \"winner\": ", pt->corr);
    if (pt->best >= 0) {
        const tu_meas *w = &pt->m[pt->best];
        double dram = dram_for(S, pt->threads);
        printf("{\"config\": ");
        cli_json_str(stdout, w->config);
        printf(", \"seconds\": %.6g, \"gbps\": %.6g, \"gops\": %.6g, \"ratio_dram\": %.4f}", w->seconds, w->gbps,
               w->gops, dram > 0 ? w->gbps * 1e9 / dram : 0.0);
    } else
        printf("null");
    if (pt->followup_origin[0]) {
        printf(",\n     \"followup\": {\"config\": ");
        cli_json_str(stdout, pt->followup_cfg);
        printf(", \"origin\": ");
        cli_json_str(stdout, pt->followup_origin);
        printf("}");
    }
    printf("}%s\n", last ? "" : ",");
}

/* A CSV field: quoted (shapes and configurations hold commas/spaces). */
static void csv_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

#define TU_CSV_HEADER "format,kernel,shape,threads,config,seconds,gbps,gops,ratio_dram,bits_per_weight"

/* One result as the CSV and the plot see it. */
typedef struct tu_res {
    char format[64], shape[256], config[256];
    int threads;
    int64_t x; /* sweeps: the swept value */
    double seconds, gbps, gops, bpw;
    int ok;
} tu_res;

static void res_of(tu_res *r, const tu_point *pt, const tu_meas *m)
{
    memset(r, 0, sizeof *r);
    snprintf(r->format, sizeof r->format, "%s", pt->format);
    snprintf(r->shape, sizeof r->shape, "%s", pt->shape);
    r->threads = pt->threads;
    r->bpw = pt->bpw;
    if (!m || !m->ok)
        return;
    snprintf(r->config, sizeof r->config, "%s", m->config);
    r->seconds = m->seconds;
    r->gbps = m->gbps;
    r->gops = m->gops;
    r->ok = 1;
}

/* One CSV row (no newline); a result that failed has empty numbers. */
static void csv_row(FILE *f, const tu_session *S, const char *kname, const tu_res *r)
{
    csv_str(f, r->format);
    fputc(',', f);
    csv_str(f, kname);
    fputc(',', f);
    csv_str(f, r->shape);
    fprintf(f, ",%d,", r->threads);
    csv_str(f, r->config);
    double dram = dram_for(S, r->threads);
    if (r->ok)
        fprintf(f, ",%.6g,%.6g,%.6g,", r->seconds, r->gbps, r->gops);
    else
        fprintf(f, ",,,,");
    if (r->ok && dram > 0)
        fprintf(f, "%.4f", r->gbps * 1e9 / dram);
    fprintf(f, ",%.6g", r->bpw);
}

static FILE *open_out(const char *path)
{
    if (strcmp(path, "-") == 0)
        return stdout;
    FILE *f = fopen(path, "w");
    if (!f)
        cli_error("cannot write %s: %s", path, strerror(errno));
    return f;
}

static int close_out(FILE *f, const char *path)
{
    if (f == stdout)
        return fflush(f) == 0 ? 0 : 1;
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    return bad ? cli_error("error writing %s", path) : 0;
}

/* Every measured candidate of the points, with its model rank. */
static int write_tune_csv(const tu_session *S, const char *path, const tu_point *pts, int n)
{
    FILE *f = open_out(path);
    if (!f)
        return 1;
    fprintf(f, "%s,model_rank,model_seconds\n", TU_CSV_HEADER);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < pts[i].n; j++)
            if (pts[i].m[j].ok) {
                tu_res r;
                res_of(&r, &pts[i], &pts[i].m[j]);
                csv_row(f, S, S->kname, &r);
                fprintf(f, ",%d,%.6g\n", pts[i].m[j].model_rank, pts[i].m[j].model_s);
            }
    return close_out(f, path);
}

/* ---- the session ---- */

static int online_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 && n < 1024 ? (int)n : 1;
}

/* Options shared by tuning and sweeps. 0, or an exit code. */
static int session_opts(tu_session *S, const cli_cmd *cmd, const cli_args *a, int sweep)
{
    const char *v;
    int64_t vals[TU_MAX_THREADS];
    S->file = a->pos[0];
    S->kname = cli_get(cmd, a, "kernel");
    S->target = cli_get(cmd, a, "target");
    S->json = cli_get(cmd, a, "json") != NULL;
    S->nthreads = 1;
    S->threads[0] = online_cores();
    if ((v = cli_get(cmd, a, "threads"))) {
        if (parse_list(v, 1, 1024, vals, TU_MAX_THREADS, &S->nthreads) != 0)
            return cli_usage_error(cmd, "--threads needs a list of thread counts in 1..1024 (at most %d), got '%s'",
                                   TU_MAX_THREADS, v);
        for (int i = 0; i < S->nthreads; i++)
            S->threads[i] = (int)vals[i];
    }
    int64_t top = sweep ? 3 : 8;
    if ((v = cli_get(cmd, a, "top")) && (cli_parse_i64(v, &top) != 0 || top < 1 || top > TU_MAX_CANDS))
        return cli_usage_error(cmd, "--top needs an integer in 1..%d, got '%s'", TU_MAX_CANDS, v);
    S->top = (int)top;
    if (cli_layout(cmd, a, &S->any_layout) != 0)
        return 2;
    static const char *const modes[] = {"auto", "cold", "hot", NULL};
    if ((v = cli_get(cmd, a, "mode"))) {
        for (S->mode = 0; modes[S->mode] && strcmp(modes[S->mode], v) != 0; S->mode++)
            ;
        if (!modes[S->mode])
            return cli_usage_error(cmd, "--mode needs auto, cold or hot, got '%s'", v);
    }
    if ((v = cli_get(cmd, a, "reps")) && (cli_parse_i64(v, &S->reps) != 0 || S->reps < 1 || S->reps > 100000))
        return cli_usage_error(cmd, "--reps needs an integer in 1..100000, got '%s'", v);
    if (a->npos != 1)
        return cli_usage_error(cmd, "expected one FILE (or 'db list|export|prune')");
    return 0;
}

static const char *db_path_of(const cli_cmd *cmd, const cli_args *a, char *buf, size_t n)
{
    const char *v = cli_get(cmd, a, "db");
    if (v) {
        snprintf(buf, n, "%s", v);
        return buf;
    }
    return qk_tunedb_default_path(buf, n);
}

/* Context, source and database (a failure there only means nothing is
 * stored). 0 or an exit code. */
static int session_open(tu_session *S, const cli_cmd *cmd, const cli_args *a)
{
    int maxt = 1;
    for (int i = 0; i < S->nthreads; i++)
        maxt = S->threads[i] > maxt ? S->threads[i] : maxt;
    qkc_ctx_options o = {.target = S->target, .threads = maxt, .tuning_db = ""};
    qkc_status st = qkc_ctx_create(&o, &S->ctx);
    if (st != QKC_OK)
        return st == QKC_ERR_TARGET ? cli_error("unknown target '%s' (host, x86-64-v3, x86-64-v4, sm_80, sm_90)", S->target)
                                    : cli_error("cannot create a context: %s", qkc_strerror(st));
    qk_target_fingerprint(&S->ctx->target, S->fp, sizeof S->fp);
    S->source = qk_read_file(S->file, NULL);
    if (!S->source)
        return cli_error("cannot read %s: %s", S->file, strerror(errno));
    char err[1024] = "";
    if (!db_path_of(cmd, a, S->dbpath, sizeof S->dbpath))
        fprintf(stderr, "qkc tune: warning: no tuning database (no --db, $QKC_TUNE_DB or $HOME): results are not "
                        "stored\n");
    else if (qk_tunedb_open(S->dbpath, 0, &S->db, err, sizeof err) != 0) {
        fprintf(stderr, "qkc tune: warning: %s; results are not stored\n", err);
        S->db = NULL;
    }
    return 0;
}

static void session_close(tu_session *S)
{
    qk_tunedb_close(S->db);
    qkc_ctx_destroy(S->ctx);
    free(S->source);
}

/* Compiles source into *p, printing diagnostics. 0 or 1. */
static int compile_source(tu_session *S, const char *source, qkc_program **p)
{
    qkc_status st = qkc_program_create(S->ctx, source, S->file, p);
    if (*p && st != QKC_OK)
        fputs(qkc_program_diagnostics_text(*p), stderr);
    if (st == QKC_ERR_COMPILE)
        return 1;
    return st == QKC_OK ? 0 : cli_error("%s", qkc_errmsg(S->ctx));
}

/* The kernel to tune: --kernel, or the program's only one. */
static const kir_kernel *find_kernel(tu_session *S, qkc_program *p)
{
    const kir_program *kp = rt_program_kir(p);
    if (!S->kname && kp && kp->nkernels == 1)
        S->kname = kp->kernels[0]->name;
    if (!S->kname) {
        cli_error("--kernel NAME is required (%s has %d kernels)", S->file, kp ? kp->nkernels : 0);
        return NULL;
    }
    const kir_kernel *k = kp ? kir_find_kernel(kp, S->kname) : NULL;
    if (!k) {
        cli_error("no kernel '%s' in %s (it has:%s)", S->kname, S->file, kp && kp->nkernels ? "" : " none");
        for (int i = 0; kp && i < kp->nkernels; i++)
            fprintf(stderr, "%s %s", i ? "," : "", kp->kernels[i]->name);
        if (kp && kp->nkernels)
            fprintf(stderr, "\n");
    }
    if (k && k->nsyms > TU_MAX_SYMS) {
        cli_error("kernel %s has more than %d dimensions", k->name, TU_MAX_SYMS);
        return NULL;
    }
    return k;
}

/* ---- qkc tune FILE: one shape ---- */

static void print_followup(const tu_session *S, const tu_point *pt)
{
    printf("follow-up: a new context on the same database compiles %s for %s, %d thread%s, and picks\n  %s\n"
           "  origin: %s\n",
           S->kname, pt->shape, pt->threads, plural(pt->threads), pt->followup_cfg[0] ? pt->followup_cfg : "-",
           pt->followup_origin);
    if (pt->best >= 0 && pt->followup_cfg[0] && strcmp(pt->followup_cfg, pt->m[pt->best].config) != 0)
        printf("  (not this run's winner: the database holds a faster record for this kernel and shape)\n");
}

static void json_single(const tu_session *S, const tu_point *pts, int n)
{
    printf("{\"file\": ");
    cli_json_str(stdout, S->file);
    printf(", \"kernel\": ");
    cli_json_str(stdout, S->kname);
    printf(", \"target\": ");
    cli_json_str(stdout, qkc_ctx_target(S->ctx));
    printf(", \"db\": ");
    cli_json_str(stdout, S->db ? S->dbpath : "");
    printf(", \"stored\": %d,\n  \"points\": [\n", S->stored);
    for (int i = 0; i < n; i++)
        json_point(S, &pts[i], i + 1 == n);
    printf("  ]}\n");
}

static int run_single(tu_session *S, const cli_cmd *cmd, const cli_args *a, qkc_program *p, const kir_kernel *k)
{
    int64_t dims[TU_MAX_SYMS] = {0};
    int given[TU_MAX_SYMS] = {0};
    if (parse_dims(k, cli_get(cmd, a, "dims"), dims, given) || missing_dims(k, given))
        return 1;
    tu_point *pts = calloc((size_t)S->nthreads, sizeof *pts);
    if (!pts)
        return cli_error("out of memory");
    int rc = 0, failed = 0;
    for (int t = 0; t < S->nthreads; t++) {
        if (tune_point(S, p, k, dims, S->threads[t], S->top, "tune", &pts[t]) != 0) {
            rc = 1;
            continue;
        }
        failed += pts[t].failed;
        followup(S, &pts[t]);
        if (!S->json) {
            print_point(S, &pts[t]);
            print_followup(S, &pts[t]);
        }
    }
    if (S->json)
        json_single(S, pts, S->nthreads);
    else if (S->db)
        printf("\nstored %d record%s in %s (origin \"tune\")\n", S->stored, plural(S->stored), S->dbpath);
    const char *csv = cli_get(cmd, a, "csv");
    if (csv)
        rc |= write_tune_csv(S, csv, pts, S->nthreads);
    if (failed)
        rc = cli_error("%d candidate configuration%s did not match the reference or did not run: a bug in qkc, "
                       "please report it (see FAIL above)",
                       failed, plural(failed));
    free(pts);
    return rc;
}

/* ---- qkc tune FILE --target sm_XX: GPU candidates ----
 *
 * The model's best --top, each checked for legality (registers and
 * shared memory from ptxas through the backend's resources hook, else an
 * estimate; tune_gpu.c: NVRTC takes up to seconds per candidate), listed
 * with its verdict, then the legal ones measured on the device like CPU
 * candidates. Without a device
 * for the target nothing can be timed: tune says so and exits 1, unless
 * --model-only asked for the list alone. */

/* tune_gpu_usage_fn over the backend's resources hook. */
static int gpu_usage(void *arg, const tir_func *f, tune_gpu_usage *u, char *err, size_t n)
{
    qkc_ctx *ctx = arg;
    void *state = NULL;
    qk_resources r = {0};
    if (!ctx->backend->resources)
        return snprintf(err, n, "the %s backend reports no resources", ctx->backend->name), -1;
    if (rt_backend_state(ctx, &state, err, n) != 0 || ctx->backend->resources(state, f, &r, err, n) != 0)
        return -1;
    qk_resources_usage(&r, u);
    return 0;
}

/* 1 when ctx's machine has a device of its target's compute capability;
 * else 0 and why. */
static int gpu_device_ready(qkc_ctx *ctx, char *why, size_t n)
{
    void *state = NULL;
    qk_target t = ctx->target;
    if (!ctx->backend->describe || rt_backend_state(ctx, &state, why, n) != 0)
        return 0;
    return ctx->backend->describe(state, &t, why, n) == 1;
}

/* The parameters the GPU builder honours, and the schedule's requests. */
static void gpu_tiles_text(const tir_config *cfg, char *buf, size_t n)
{
    char all[256];
    tir_config_print(cfg, all, sizeof all);
    const char *sched = strstr(all, " parallel=");
    if (!sched)
        sched = strstr(all, " tile.");
    snprintf(buf, n, "tile_par=%d tile_inner=%d%s", cfg->tile_par, cfg->tile_inner, sched ? sched : "");
}

static void print_gpu(const tu_session *S, const char *shape, const tune_cand *c, const tune_gpu_verdict *v, int n,
                      int legal)
{
    printf("kernel %s on %s, %s: %d candidate%s (distinct code), %d legal\n", S->kname, qkc_ctx_target(S->ctx),
           shape, n, plural(n), legal);
    printf("  %-4s  %-28s %10s %11s %6s %6s  %s\n", "rank", "configuration", "model us", "registers", "smem",
           "spill", "verdict");
    const char *estimated = NULL;
    for (int i = 0; i < n; i++) {
        char tiles[256], regs[32];
        gpu_tiles_text(&c[i].cfg, tiles, sizeof tiles);
        snprintf(regs, sizeof regs, "%d %s", v[i].use.regs, v[i].use.from_ptxas ? "ptxas" : "est.");
        if (!v[i].use.from_ptxas && v[i].estimate[0] && !estimated)
            estimated = v[i].estimate;
        printf("  %-4d  %-28s %10.2f %11s %6d %6d  %s%s\n", i + 1, tiles, c[i].model_s * 1e6, regs, v[i].use.smem,
               v[i].use.spill, v[i].legal ? "legal" : "ILLEGAL: ", v[i].legal ? "" : v[i].why);
    }
    if (estimated)
        printf("  registers marked est. are estimates (no ptxas report: %s)\n", estimated);
}

static void json_gpu(const tu_session *S, const char *shape, const tune_cand *c, const tune_gpu_verdict *v, int n,
                     const char *measured_why)
{
    printf("{\"kernel\": ");
    cli_json_str(stdout, S->kname);
    printf(", \"target\": ");
    cli_json_str(stdout, qkc_ctx_target(S->ctx));
    printf(", \"shape\": ");
    cli_json_str(stdout, shape);
    printf(", \"measured\": false, \"why\": ");
    cli_json_str(stdout, measured_why);
    printf(",\n  \"candidates\": [\n");
    for (int i = 0; i < n; i++) {
        char cfg[256];
        tir_config_print(&c[i].cfg, cfg, sizeof cfg);
        printf("    {\"rank\": %d, \"config\": ", i + 1);
        cli_json_str(stdout, cfg);
        printf(", \"model_s\": %.9g, \"registers\": %d, \"registers_from\": \"%s\", \"smem\": %d, \"spill\": %d, "
               "\"legal\": %s, \"why\": ",
               c[i].model_s, v[i].use.regs, v[i].use.from_ptxas ? "ptxas" : "estimate", v[i].use.smem,
               v[i].use.spill, v[i].legal ? "true" : "false");
        cli_json_str(stdout, v[i].legal ? "" : v[i].why);
        printf("}%s\n", i + 1 < n ? "," : "");
    }
    printf("  ]}\n");
}

/* Measures the legal candidates c[0..legal) on the device. */
static int gpu_measure(tu_session *S, qkc_program *p, const kir_kernel *k, const int64_t *dims, const tune_cand *c,
                       int legal)
{
    tu_point *pt = calloc(1, sizeof *pt);
    if (!pt)
        return cli_error("out of memory");
    point_init(pt, k, dims, 1);
    int rc = measure_cands(S, p, k, dims, c, legal, "tune", pt);
    if (rc == 0) {
        followup(S, pt);
        print_point(S, pt);
        print_followup(S, pt);
        if (S->db)
            printf("\nstored %d record%s in %s (origin \"tune\")\n", S->stored, plural(S->stored), S->dbpath);
        if (pt->failed)
            rc = cli_error("%d candidate configuration%s did not match the reference or did not run (see FAIL above)",
                           pt->failed, plural(pt->failed));
    }
    free(pt);
    return rc;
}

static int run_gpu(tu_session *S, const cli_cmd *cmd, const cli_args *a, qkc_program *p, const kir_kernel *k)
{
    int64_t dims[TU_MAX_SYMS] = {0};
    int given[TU_MAX_SYMS] = {0};
    if (parse_dims(k, cli_get(cmd, a, "dims"), dims, given) || missing_dims(k, given))
        return 1;
    char shape[256], why[512] = "--model-only";
    shape_text(k, dims, shape, sizeof shape);
    tir_config base;
    tir_default_config(&S->ctx->target, &base);
    tir_apply_schedule(k, &base);
    tune_cand c[TU_MAX_CANDS];
    tune_gpu_verdict v[TU_MAX_CANDS];
    int n = tune_candidates(k, &S->ctx->target, &base, dims, 1, NULL, c, S->top > 1 ? S->top : 2);
    n = n < S->top ? n : S->top; /* asking for one would give the JIT's choice, not the model's */
    int legal = tune_gpu_check(k, &S->ctx->target, c, n, gpu_usage, S->ctx, v);
    int model_only = cli_get(cmd, a, "model-only") != NULL;
    int ready = !model_only && gpu_device_ready(S->ctx, why, sizeof why);
    if (S->json && !ready) {
        json_gpu(S, shape, c, v, n, why);
        return legal > 0 && model_only ? 0 : 1;
    }
    if (!S->json)
        print_gpu(S, shape, c, v, n, legal);
    if (legal == 0)
        return cli_error("no legal configuration of %s for %s", S->kname, qkc_ctx_target(S->ctx));
    if (model_only)
        return 0;
    if (!ready)
        return cli_error("measuring needs a CUDA device for %s, and there is none here (%s): the list above is the "
                         "model's ranking with its legality checks; nothing was timed or stored (--model-only lists "
                         "it without this error)",
                         qkc_ctx_target(S->ctx), why);
    return gpu_measure(S, p, k, dims, c, legal);
}

/* ---- sweeps: what is swept ---- */

typedef struct tu_sweep {
    int sym; /* the swept dimension */
    int64_t vals[TU_MAX_SIZES];
    int nvals;
    int tied[TU_MAX_SYMS];         /* 1: takes the swept value too */
    char fmts[TU_MAX_FORMATS][64]; /* --formats; none: the kernel's own */
    int nfmts;
    int gops; /* --metric gops */
    const char *csv, *plot;
} tu_sweep;

/* "N=1024..16384" (lo, 2 lo, 4 lo, ... <= hi) or "N=1024,4096". */
static int parse_sweep(const cli_cmd *cmd, const kir_kernel *k, const char *spec, tu_sweep *sw)
{
    const char *eq = strchr(spec, '=');
    const char *dots = eq ? strstr(eq, "..") : NULL;
    int64_t lo = 0, hi = 0;
    sw->sym = eq ? sym_index(k, spec, (size_t)(eq - spec)) : -1;
    if (!eq || eq == spec)
        return cli_usage_error(cmd, "--sweep: expected NAME=LO..HI or NAME=V1,V2,..., got '%s'", spec);
    if (sw->sym < 0) {
        cli_error("--sweep: kernel %s has no dimension '%.*s'", k->name, (int)(eq - spec), spec);
        fprintf(stderr, "its dimensions: ");
        print_syms(k, stderr);
        return 1;
    }
    if (!dots) {
        if (parse_list(eq + 1, 1, (int64_t)1 << 40, sw->vals, TU_MAX_SIZES, &sw->nvals) != 0)
            return cli_usage_error(cmd,
                                   "--sweep: expected NAME=LO..HI or NAME=V1,V2,... (at most %d positive "
                                   "values), got '%s'",
                                   TU_MAX_SIZES, spec);
        return 0;
    }
    char a[32], b[32];
    snprintf(a, sizeof a, "%.*s", (int)(dots - eq - 1), eq + 1);
    snprintf(b, sizeof b, "%s", dots + 2);
    if (cli_parse_i64(a, &lo) != 0 || cli_parse_i64(b, &hi) != 0 || lo < 1 || hi < lo || hi > ((int64_t)1 << 40))
        return cli_usage_error(cmd, "--sweep: expected NAME=LO..HI with integers 1 <= LO <= HI, got '%s'", spec);
    for (int64_t v = lo; v <= hi && sw->nvals < TU_MAX_SIZES; v *= 2)
        sw->vals[sw->nvals++] = v;
    return 0;
}

/* "K=N,M=N": dimensions that take the swept value. */
static int parse_tied(const cli_cmd *cmd, const kir_kernel *k, const char *spec, tu_sweep *sw)
{
    for (const char *p = spec ? spec : ""; *p;) {
        size_t item = strcspn(p, ","), eq = strcspn(p, "=");
        int d = eq < item ? sym_index(k, p, eq) : -1;
        int s = eq < item ? sym_index(k, p + eq + 1, item - eq - 1) : -1;
        if (d < 0 || s != sw->sym)
            return cli_usage_error(cmd, "--sweep-dims: expected DIM=%s,... with dimensions of kernel %s, got '%.*s'",
                                   k->syms[sw->sym], k->name, (int)item, p);
        sw->tied[d] = 1;
        p += item + (p[item] == ',');
    }
    return 0;
}

static int parse_formats(const cli_cmd *cmd, const char *spec, tu_sweep *sw)
{
    for (const char *p = spec ? spec : ""; *p;) {
        size_t n = strcspn(p, ",");
        if (n == 0 || n >= sizeof sw->fmts[0] || sw->nfmts == TU_MAX_FORMATS)
            return cli_usage_error(cmd, "--formats: expected a list of at most %d format names, got '%s'",
                                   TU_MAX_FORMATS, spec);
        snprintf(sw->fmts[sw->nfmts++], sizeof sw->fmts[0], "%.*s", (int)n, p);
        p += n + (p[n] == ',');
    }
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* 1 when an executable `prog` is on $PATH. */
static int on_path(const char *prog)
{
    const char *path = getenv("PATH");
    char buf[4096];
    while (path && *path) {
        size_t n = strcspn(path, ":");
        snprintf(buf, sizeof buf, "%.*s/%s", (int)n, path, prog);
        if (n && access(buf, X_OK) == 0)
            return 1;
        path += n + (path[n] == ':');
    }
    return 0;
}

static int sweep_opts(const cli_cmd *cmd, const cli_args *a, const kir_kernel *k, tu_sweep *sw)
{
    memset(sw, 0, sizeof *sw);
    const char *metric = cli_get(cmd, a, "metric");
    if (metric && strcmp(metric, "gbps") != 0 && strcmp(metric, "gops") != 0)
        return cli_usage_error(cmd, "--metric is gbps or gops, got '%s'", metric);
    sw->gops = metric && strcmp(metric, "gops") == 0;
    sw->csv = cli_get(cmd, a, "csv");
    sw->plot = cli_get(cmd, a, "plot");
    if (sw->plot && !ends_with(sw->plot, ".svg") && !ends_with(sw->plot, ".png"))
        return cli_usage_error(cmd, "--plot: the file name must end in .svg (or .png, drawn by gnuplot)");
    if (sw->plot && ends_with(sw->plot, ".png") && !on_path("gnuplot"))
        return cli_error("--plot %s: PNG needs gnuplot on PATH, which is not there; use an .svg name (qkc writes "
                         "SVG itself)",
                         sw->plot);
    if (sw->plot && strpbrk(sw->plot, "'\"\n"))
        return cli_error("--plot: the file name must not contain quotes");
    int rc = parse_sweep(cmd, k, cli_get(cmd, a, "sweep"), sw);
    if (rc == 0)
        rc = parse_tied(cmd, k, cli_get(cmd, a, "sweep-dims"), sw);
    if (rc == 0)
        rc = parse_formats(cmd, cli_get(cmd, a, "formats"), sw);
    return rc;
}

/* ---- sweeps: one source per format ---- */

/* A token of .qk text at *i: 'i' identifier, '0' number, '"' string, or
 * the character; 0 at the end. Comments are skipped. */
static int next_tok(const char *s, size_t *i, size_t *start, size_t *len)
{
    for (;;) {
        while (s[*i] == ' ' || s[*i] == '\t' || s[*i] == '\r' || s[*i] == '\n')
            (*i)++;
        if (s[*i] != '#')
            break;
        while (s[*i] && s[*i] != '\n')
            (*i)++;
    }
    *start = *i;
    char c = s[*i];
    if (!c)
        return *len = 0, 0;
    int kind = c;
    if (c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        kind = c >= '0' && c <= '9' ? '0' : 'i';
        while (s[*i] == '_' || (s[*i] >= 'a' && s[*i] <= 'z') || (s[*i] >= 'A' && s[*i] <= 'Z') ||
               (s[*i] >= '0' && s[*i] <= '9'))
            (*i)++;
    } else if (c == '"') {
        (*i)++;
        while (s[*i] && s[*i] != '"' && s[*i] != '\n')
            (*i)++;
        if (s[*i] == '"')
            (*i)++;
    } else
        (*i)++;
    *len = *i - *start;
    return kind;
}

static int tok_is(const char *s, size_t start, size_t len, const char *word)
{
    return strlen(word) == len && strncmp(s + start, word, len) == 0;
}

/* Inside a parameter list (after '('): offset of the format name of
 * parameter `param` when it is `fmt`, else -1. */
static long param_format_at(const char *s, size_t *i, const char *param, const char *fmt)
{
    int depth = 1, expect_name = 1;
    size_t st, len;
    while (depth > 0) {
        int kind = next_tok(s, i, &st, &len);
        if (kind == 0)
            return -1;
        if (kind == '(' || kind == '[')
            depth++;
        else if (kind == ')' || kind == ']')
            depth--;
        else if (kind == ',' && depth == 1) {
            expect_name = 1;
            continue;
        } else if (kind == 'i' && depth == 1 && expect_name && tok_is(s, st, len, param)) {
            if (next_tok(s, i, &st, &len) != ':' || next_tok(s, i, &st, &len) != 'i' || !tok_is(s, st, len, fmt))
                return -1;
            return (long)st;
        }
        expect_name = 0;
    }
    return -1;
}

/* Offset of the format name of `param` in `kernel kname(...)`, or -1. */
static long find_param_format(const char *s, const char *kname, const char *param, const char *fmt)
{
    size_t i = 0, st, len;
    int kind;
    while ((kind = next_tok(s, &i, &st, &len)) != 0) {
        if (kind != 'i' || !tok_is(s, st, len, "kernel"))
            continue;
        if (next_tok(s, &i, &st, &len) != 'i' || !tok_is(s, st, len, kname))
            continue;
        if (next_tok(s, &i, &st, &len) == '(')
            return param_format_at(s, &i, param, fmt);
    }
    return -1;
}

/* Formats of the standard library and the module that defines each. */
typedef struct tu_lib {
    int n;
    struct {
        char name[64], module[64];
        int vq;
    } f[TU_MAX_LIB];
} tu_lib;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void lib_file(qkc_ctx *ctx, tu_lib *L, const char *path)
{
    qkc_program *p = NULL;
    if (qkc_program_create_file(ctx, path, &p) == QKC_OK) {
        const kir_program *kp = rt_program_kir(p);
        for (int i = 0; kp && i < kp->nformats && L->n < TU_MAX_LIB; i++) {
            const qk_format *f = kp->formats[i];
            int seen = 0;
            for (int j = 0; j < L->n && !seen; j++)
                seen = strcmp(L->f[j].name, f->name) == 0;
            const char *file = f->loc.file ? f->loc.file : path, *base = strrchr(file, '/');
            base = base ? base + 1 : file;
            if (seen || !ends_with(base, ".qk") || strlen(base) - 3 >= sizeof L->f[0].module)
                continue;
            snprintf(L->f[L->n].name, sizeof L->f[0].name, "%s", f->name);
            snprintf(L->f[L->n].module, sizeof L->f[0].module, "%.*s", (int)(strlen(base) - 3), base);
            L->f[L->n++].vq = f->code == QK_CODE_VQ;
        }
    }
    qkc_program_destroy(p);
}

static void lib_dir(qkc_ctx *ctx, tu_lib *L, const char *dir, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%.*s", (int)n, dir);
    DIR *d = n ? opendir(path) : NULL;
    char *names[256];
    int m = 0;
    for (struct dirent *e; d && (e = readdir(d)) != NULL && m < 256;)
        if (e->d_name[0] != '.' && ends_with(e->d_name, ".qk"))
            names[m++] = strdup(e->d_name);
    if (d)
        closedir(d);
    qsort(names, (size_t)m, sizeof names[0], cmp_str);
    for (int i = 0; i < m; i++) {
        snprintf(path, sizeof path, "%.*s/%s", (int)n, dir, names[i] ? names[i] : "");
        if (names[i])
            lib_file(ctx, L, path);
        free(names[i]);
    }
}

/* The directories `import NAME` searches: the standard formats, then $QKC_DSL_PATH. */
static void lib_load(qkc_ctx *ctx, tu_lib *L)
{
    char dsl[4096];
    const char *lists[2] = {qk_dsl_dir(dsl, sizeof dsl), getenv("QKC_DSL_PATH")};
    for (int l = 0; l < 2; l++)
        for (const char *s = lists[l]; s && *s;) {
            size_t n = strcspn(s, ":");
            lib_dir(ctx, L, s, n);
            s += n + (s[n] == ':');
        }
}

static void print_lib(const tu_lib *L)
{
    fprintf(stderr, "formats of the standard library:");
    for (int i = 0; i < L->n; i++)
        fprintf(stderr, "%s %s", i ? "," : "", L->f[i].name);
    fprintf(stderr, "%s\n", L->n ? "" : " none found");
}

/* The source with kernel k's first quantized parameter in format `name`
 * (plus an import of its module when the file does not see it). NULL
 * after a message. */
static char *format_source(tu_session *S, const kir_program *kp, const kir_kernel *k, const char *name, tu_lib **L)
{
    int q = first_quant(k);
    if (q < 0)
        return cli_error("--formats: kernel %s has no quantized parameter", k->name), NULL;
    const qk_format *old = k->tensors[q].fmt, *mine = kir_find_format(kp, name);
    if (strcmp(old->name, name) == 0)
        return qk_xstrdup(S->source);
    const char *module = NULL;
    int vq = mine && mine->code == QK_CODE_VQ;
    if (!mine) {
        if (!*L) {
            *L = qk_xcalloc(1, sizeof **L);
            lib_load(S->ctx, *L);
        }
        for (int i = 0; i < (*L)->n && !module; i++)
            if (strcmp((*L)->f[i].name, name) == 0) {
                module = (*L)->f[i].module;
                vq = (*L)->f[i].vq;
            }
        if (!module) {
            cli_error("--formats: unknown format '%s' (not in %s, its imports, or the standard library)", name,
                      S->file);
            print_lib(*L);
            return NULL;
        }
    }
    if (vq || old->code == QK_CODE_VQ)
        return cli_error("--formats: %s: vector-codebook formats need their own codebook parameter; tune that "
                         "kernel directly instead of substituting its format",
                         vq ? name : old->name),
               NULL;
    long at = find_param_format(S->source, k->name, k->tensors[q].name, old->name);
    if (at < 0)
        return cli_error("--formats: cannot find '%s: %s' in the parameter list of kernel %s in %s", k->tensors[q].name,
                         old->name, k->name, S->file),
               NULL;
    qk_buf b = {0};
    qk_buf_printf(&b, "%.*s%s%s", (int)at, S->source, name, S->source + at + strlen(old->name));
    if (module)
        qk_buf_printf(&b, "\nimport %s\n", module);
    return qk_buf_take(&b);
}

/* ---- sweeps: the plot ---- */

typedef struct tu_series {
    char label[128];
    const char *format;
    int threads, color, dash;
    int n;
    double x[TU_MAX_SIZES], y[TU_MAX_SIZES];
} tu_series;

typedef struct tu_limit {
    char label[96];
    double v; /* in the plot's unit (GB/s or GOP/s) */
} tu_limit;

typedef struct tu_plot {
    tu_series *s;
    int ns, nfmts;
    tu_limit lim[4], off[4]; /* drawn, and too far above the data to draw */
    int nlim, noff;
    double ymax;
    char title[512], xlabel[128], ylabel[64];
} tu_plot;

static const char *const tu_colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                        "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};
static const char *const tu_dashes[] = {"", "8,4", "3,3", "10,3,3,3"};

static int find_series(const tu_plot *pl, const char *format, int threads)
{
    for (int j = 0; j < pl->ns; j++)
        if (strcmp(pl->s[j].format, format) == 0 && pl->s[j].threads == threads)
            return j;
    return -1;
}

/* A series for r's (format, threads): the format's color, the thread
 * count's dash pattern. */
static int new_series(tu_plot *pl, const tu_res *r, const tu_session *S)
{
    tu_series *s = &pl->s[pl->ns];
    s->format = r->format;
    s->threads = r->threads;
    s->color = -1;
    for (int m = 0; m < pl->ns; m++)
        if (strcmp(pl->s[m].format, r->format) == 0)
            s->color = pl->s[m].color;
    if (s->color < 0)
        s->color = pl->nfmts++ % QK_COUNT(tu_colors);
    for (int t = 0; t < S->nthreads; t++)
        if (S->threads[t] == r->threads)
            s->dash = t % QK_COUNT(tu_dashes);
    snprintf(s->label, sizeof s->label, "%s, %d thread%s", r->format, r->threads, plural(r->threads));
    return pl->ns++;
}

/* One series per (format, threads), in the order the rows came. */
static int plot_series(tu_plot *pl, const tu_res *rows, int nrows, const tu_session *S, int gops)
{
    pl->s = calloc((size_t)(nrows ? nrows : 1), sizeof *pl->s);
    if (!pl->s)
        return -1;
    for (int i = 0; i < nrows; i++) {
        const tu_res *r = &rows[i];
        int j = find_series(pl, r->format, r->threads);
        if (j < 0)
            j = new_series(pl, r, S);
        if (!r->ok || pl->s[j].n == TU_MAX_SIZES)
            continue;
        double y = gops ? r->gops : r->gbps;
        pl->s[j].x[pl->s[j].n] = log2((double)r->x);
        pl->s[j].y[pl->s[j].n++] = y;
        pl->ymax = fmax(pl->ymax, y);
    }
    return 0;
}

static void add_limit(tu_plot *pl, const char *label, double v)
{
    if (v <= 0)
        return;
    int far = pl->ymax > 0 && v > 8 * pl->ymax; /* would squash the data: named, not drawn */
    tu_limit *l = far ? &pl->off[pl->noff++] : &pl->lim[pl->nlim++];
    snprintf(l->label, sizeof l->label, "%s", label);
    l->v = v;
}

/* The probed limits as horizontal lines: DRAM and L3 read bandwidth
 * (GB/s), or peak f32 FMA and int8 dot rates (GOP/s). */
static void plot_limits(tu_plot *pl, const tu_session *S, int gops)
{
    if (!S->have_probe)
        return;
    const qk_probe_result *p = &S->probe;
    char l[96];
    const char *unit = gops ? "GOP/s" : "GB/s";
    double v[4] = {
        gops ? p->f32_fma[0] : p->read_bw[QK_PROBE_DRAM][0], gops ? p->f32_fma[1] : p->read_bw[QK_PROBE_DRAM][1],
        gops ? p->int8_dot[0] : p->read_bw[QK_PROBE_L3][0], gops ? p->int8_dot[1] : p->read_bw[QK_PROBE_L3][1]};
    const char *name[4] = {
        gops ? "f32 FMA, 1 core" : "DRAM, 1 thread", gops ? "f32 FMA, all %d cores" : "DRAM, all %d threads",
        gops ? "int8 dot, 1 core" : "L3, 1 thread", gops ? "int8 dot, all %d cores" : "L3, all %d threads"};
    for (int i = 0; i < 4; i++) {
        if ((i & 1) && p->threads <= 1)
            continue;
        char n[64];
        snprintf(n, sizeof n, name[i], p->threads);
        snprintf(l, sizeof l, "%s %.1f %s", n, v[i] / 1e9, unit);
        add_limit(pl, l, v[i] / 1e9);
    }
}

/* XML text: &, <, >, quotes escaped. */
static void svg_text(FILE *f, const char *s)
{
    for (; *s; s++)
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default: fputc(*s, f);
        }
}

/* A round step for about 6 ticks up to top. */
static double nice_step(double top)
{
    double raw = top / 6, p = pow(10, floor(log10(raw))), m = raw / p;
    return p * (m <= 1 ? 1 : m <= 2 ? 2 : m <= 2.5 ? 2.5 : m <= 5 ? 5 : 10);
}

#define SVG_W 980
#define SVG_H 560
#define PX0 80.0 /* plot area */
#define PX1 700.0
#define PY0 60.0
#define PY1 490.0

typedef struct tu_axes {
    double xlo, xhi, ytop, ystep;
} tu_axes;

static double px(const tu_axes *ax, double lx)
{
    return PX0 + (lx - ax->xlo) / (ax->xhi - ax->xlo) * (PX1 - PX0);
}

static double py(const tu_axes *ax, double y)
{
    return PY1 - y / ax->ytop * (PY1 - PY0);
}

static void svg_axes(FILE *f, const tu_plot *pl, const tu_axes *ax, const tu_sweep *sw)
{
    fprintf(f, "<g stroke=\"#e0e0e0\" stroke-width=\"1\">\n");
    for (double y = ax->ystep; y <= ax->ytop + 1e-9; y += ax->ystep)
        fprintf(f, "  <line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", PX0, py(ax, y), PX1, py(ax, y));
    for (int i = 0; i < sw->nvals; i++) {
        double x = px(ax, log2((double)sw->vals[i]));
        fprintf(f, "  <line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", x, PY0, x, PY1);
    }
    fprintf(f, "</g>\n<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n",
            PX0, PY0, PX1 - PX0, PY1 - PY0);
    for (double y = 0; y <= ax->ytop + 1e-9; y += ax->ystep)
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", PX0 - 6, py(ax, y) + 4, y);
    for (int i = 0; i < sw->nvals; i++)
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%lld</text>\n",
                px(ax, log2((double)sw->vals[i])), PY1 + 18, (long long)sw->vals[i]);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", (PX0 + PX1) / 2, PY1 + 42);
    svg_text(f, pl->xlabel);
    fprintf(f, "</text>\n<text x=\"20\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 20 %.1f)\">",
            (PY0 + PY1) / 2, (PY0 + PY1) / 2);
    svg_text(f, pl->ylabel);
    fprintf(f, "</text>\n<text x=\"%.1f\" y=\"30\" text-anchor=\"middle\" font-size=\"15\">", SVG_W / 2.0);
    svg_text(f, pl->title);
    fprintf(f, "</text>\n");
}

/* Dashed lines, each labelled at its right end (with a white halo over
 * the data; labels closer than a line of text are moved apart). */
static void svg_limits(FILE *f, const tu_plot *pl, const tu_axes *ax)
{
    double used[4];
    for (int i = 0; i < pl->nlim; i++) {
        double y = py(ax, pl->lim[i].v), ty = y - 4;
        for (int again = 1; again;) {
            again = 0;
            for (int j = 0; j < i; j++)
                if (fabs(used[j] - ty) < 13) {
                    ty = used[j] - 13;
                    again = 1;
                }
        }
        used[i] = ty;
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#555\" stroke-width=\"1.2\" "
                "stroke-dasharray=\"6,4\"/>\n",
                PX0, y, PX1, y);
        fprintf(f,
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#444\" font-size=\"11\" stroke=\"white\" "
                "stroke-width=\"3\" paint-order=\"stroke\">",
                PX1 - 4, ty);
        svg_text(f, pl->lim[i].label);
        fprintf(f, "</text>\n");
    }
}

static void svg_series(FILE *f, const tu_plot *pl, const tu_axes *ax)
{
    for (int i = 0; i < pl->ns; i++) {
        const tu_series *s = &pl->s[i];
        const char *c = tu_colors[s->color], *d = tu_dashes[s->dash];
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s%s%s points=\"", c,
                *d ? " stroke-dasharray=\"" : "", d, *d ? "\"" : "");
        for (int j = 0; j < s->n; j++)
            fprintf(f, "%s%.1f,%.1f", j ? " " : "", px(ax, s->x[j]), py(ax, s->y[j]));
        fprintf(f, "\"/>\n");
        for (int j = 0; j < s->n; j++)
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n", px(ax, s->x[j]), py(ax, s->y[j]),
                    c);
    }
}

static void svg_legend(FILE *f, const tu_plot *pl)
{
    double x = PX1 + 20, y = PY0 + 10;
    for (int i = 0; i < pl->ns; i++, y += 20) {
        const tu_series *s = &pl->s[i];
        const char *d = tu_dashes[s->dash];
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s%s%s/>\n",
                x, y, x + 28, y, tu_colors[s->color], *d ? " stroke-dasharray=\"" : "", d, *d ? "\"" : "");
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n", x + 14, y, tu_colors[s->color]);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">", x + 36, y + 4);
        svg_text(f, s->label);
        fprintf(f, "</text>\n");
    }
    if (pl->nlim)
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#555\">dashed: this machine's limits</text>\n", x, y += 10);
    if (!pl->nlim && !pl->noff)
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#555\">(no probe: limits not drawn)</text>\n", x, y += 10);
    for (int i = 0; i < pl->noff; i++) {
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#555\" font-size=\"11\">off scale: ", x, y += 18);
        svg_text(f, pl->off[i].label);
        fprintf(f, "</text>\n");
    }
}

static void plot_axes(const tu_plot *pl, const tu_sweep *sw, tu_axes *ax)
{
    ax->xlo = log2((double)sw->vals[0]);
    ax->xhi = ax->xlo;
    for (int i = 0; i < sw->nvals; i++) {
        ax->xlo = fmin(ax->xlo, log2((double)sw->vals[i]));
        ax->xhi = fmax(ax->xhi, log2((double)sw->vals[i]));
    }
    double pad = ax->xhi > ax->xlo ? (ax->xhi - ax->xlo) * 0.06 : 1;
    ax->xlo -= pad;
    ax->xhi += pad;
    double top = pl->ymax;
    for (int i = 0; i < pl->nlim; i++)
        top = fmax(top, pl->lim[i].v);
    top = top > 0 ? top * 1.08 : 1;
    ax->ystep = nice_step(top);
    ax->ytop = ceil(top / ax->ystep) * ax->ystep;
}

static int plot_svg(const char *path, const tu_plot *pl, const tu_sweep *sw)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return cli_error("cannot write %s: %s", path, strerror(errno));
    tu_axes ax;
    plot_axes(pl, sw, &ax);
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n<title>",
            SVG_W, SVG_H, SVG_W, SVG_H);
    svg_text(f, pl->title);
    fprintf(f, "</title>\n<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"white\"/>\n", SVG_W, SVG_H);
    svg_axes(f, pl, &ax, sw);
    svg_limits(f, pl, &ax);
    svg_series(f, pl, &ax);
    svg_legend(f, pl);
    fprintf(f, "</svg>\n");
    return close_out(f, path);
}

/* gnuplot's single-quoted strings: no quotes inside. */
static void gp_str(FILE *g, const char *s)
{
    fputc('\'', g);
    for (; *s; s++)
        fputc(*s == '\'' ? '"' : *s, g);
    fputc('\'', g);
}

static int plot_png(const char *path, const tu_plot *pl)
{
    FILE *g = popen("gnuplot", "w");
    if (!g)
        return cli_error("cannot run gnuplot: %s", strerror(errno));
    fprintf(g, "set terminal pngcairo size %d,%d\nset output ", SVG_W, SVG_H);
    gp_str(g, path);
    fprintf(g, "\nset title ");
    gp_str(g, pl->title);
    fprintf(g, "\nset xlabel ");
    gp_str(g, pl->xlabel);
    fprintf(g, "\nset ylabel ");
    gp_str(g, pl->ylabel);
    fprintf(g, "\nset logscale x 2\nset grid\nset key outside right\nset yrange [0:*]\nplot ");
    for (int i = 0; i < pl->ns; i++) {
        fprintf(g, "%s'-' using 1:2 with linespoints lw 2 pt 7 title ", i ? ", " : "");
        gp_str(g, pl->s[i].label);
    }
    for (int i = 0; i < pl->nlim; i++) {
        fprintf(g, "%s%g with lines dt 2 lc rgb '#555555' title ", i || pl->ns ? ", " : "", pl->lim[i].v);
        gp_str(g, pl->lim[i].label);
    }
    fprintf(g, "\n");
    for (int i = 0; i < pl->ns; i++) {
        for (int j = 0; j < pl->s[i].n; j++)
            fprintf(g, "%.0f %g\n", pow(2, pl->s[i].x[j]), pl->s[i].y[j]);
        fprintf(g, "e\n");
    }
    int st = pclose(g);
    return st == 0 ? 0 : cli_error("gnuplot failed to draw %s (status %d)", path, st);
}

static int write_plot(const tu_session *S, const tu_sweep *sw, const kir_kernel *k, const tu_res *rows, int n)
{
    tu_plot pl;
    memset(&pl, 0, sizeof pl);
    if (plot_series(&pl, rows, n, S, sw->gops) != 0)
        return cli_error("out of memory");
    plot_limits(&pl, S, sw->gops);
    char tied[64] = "";
    for (int i = 0; i < k->nsyms; i++)
        if (sw->tied[i])
            snprintf(tied + strlen(tied), sizeof tied - strlen(tied), ", %s = %s", k->syms[i], k->syms[sw->sym]);
    snprintf(pl.title, sizeof pl.title, "qkc tune: kernel %s of %s on %s", k->name, S->file, qkc_ctx_target(S->ctx));
    snprintf(pl.xlabel, sizeof pl.xlabel, "%s (log scale)%s", k->syms[sw->sym], tied);
    snprintf(pl.ylabel, sizeof pl.ylabel, "%s", sw->gops ? "GOP/s" : "GB/s of packed weights");
    int rc = ends_with(sw->plot, ".png") ? plot_png(sw->plot, &pl) : plot_svg(sw->plot, &pl, sw);
    free(pl.s);
    return rc;
}

/* ---- sweeps: the run ---- */

static void fmt_secs(double s, char *buf, size_t n)
{
    if (s >= 60)
        snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(buf, n, "%.0fs", s);
}

/* A bar with the ETA on a terminal; else one line per finished point. */
static void progress(int done, int total, double t0, const char *what)
{
    static const char bar[] = "##############################", rest[] = "------------------------------";
    double el = cli_now() - t0, eta = done > 0 ? el / done * (total - done) : 0;
    char e[32];
    fmt_secs(eta, e, sizeof e);
    if (cli_isatty(stderr)) {
        int w = 30, fill = total > 0 ? done * w / total : w;
        fprintf(stderr, "\r[%.*s%.*s] %d/%d  %-48.48s ETA %s\033[K", fill, bar, w - fill, rest, done, total, what,
                done ? e : "?");
        if (done == total)
            fputc('\n', stderr);
    } else if (done > 0)
        fprintf(stderr, "sweep %d/%d: %s (ETA %s)\n", done, total, what, e);
    fflush(stderr);
}

/* One program per format (the file itself without --formats). Every
 * format is checked before anything is measured. */
static int sweep_programs(tu_session *S, qkc_program *p0, const kir_kernel *k0, const tu_sweep *sw, qkc_program **progs,
                          const kir_kernel **ks)
{
    tu_lib *L = NULL;
    int rc = 0;
    for (int f = 0; f < sw->nfmts && rc == 0; f++) {
        char *src = format_source(S, rt_program_kir(p0), k0, sw->fmts[f], &L);
        rc = src ? compile_source(S, src, &progs[f]) : 1;
        free(src);
        if (rc == 0)
            ks[f] = kir_find_kernel(rt_program_kir(progs[f]), k0->name);
        if (rc == 0 && !ks[f])
            rc = cli_error("--formats %s: kernel %s vanished", sw->fmts[f], k0->name);
        else if (rc && src)
            cli_error("--formats %s: kernel %s does not compile with this format (see above)", sw->fmts[f], k0->name);
    }
    if (sw->nfmts == 0)
        ks[0] = k0;
    free(L);
    return rc;
}

static void sweep_summary(const tu_session *S, const tu_sweep *sw, const kir_kernel *k, const tu_res *rows, int n)
{
    printf("qkc tune --sweep: kernel %s (%s) on %s, %s over", k->name, S->file, qkc_ctx_target(S->ctx),
           k->syms[sw->sym]);
    for (int i = 0; i < sw->nvals; i++)
        printf(" %lld", (long long)sw->vals[i]);
    printf("; best of the model's top %d per point\n\n", S->top);
    printf("%-14s %-28s %7s %9s %6s %9s  %s\n", "format", "shape", "threads", "GB/s", "DRAM", "GOP/s", "configuration");
    for (int i = 0; i < n; i++) {
        const tu_res *r = &rows[i];
        double dram = dram_for(S, r->threads);
        char pct[16] = "-";
        if (r->ok && dram > 0)
            snprintf(pct, sizeof pct, "%.0f%%", 100 * r->gbps * 1e9 / dram);
        if (r->ok)
            printf("%-14s %-28s %7d %9.2f %6s %9.2f  %s\n", r->format, r->shape, r->threads, r->gbps, pct, r->gops,
                   r->config);
        else
            printf("%-14s %-28s %7d %9s %6s %9s  %s\n", r->format, r->shape, r->threads, "-", "-", "-", "(failed)");
    }
}

static void sweep_json(const tu_session *S, const tu_res *rows, int n)
{
    printf("[");
    for (int i = 0; i < n; i++) {
        const tu_res *r = &rows[i];
        double dram = dram_for(S, r->threads);
        printf("%s\n  {\"format\": ", i ? "," : "");
        cli_json_str(stdout, r->format);
        printf(", \"kernel\": ");
        cli_json_str(stdout, S->kname);
        printf(", \"shape\": ");
        cli_json_str(stdout, r->shape);
        printf(", \"threads\": %d, \"ok\": %s, \"config\": ", r->threads, r->ok ? "true" : "false");
        cli_json_str(stdout, r->config);
        printf(", \"seconds\": %.6g, \"gbps\": %.6g, \"gops\": %.6g, \"ratio_dram\": %.4f, \"bits_per_weight\": %.6g}",
               r->seconds, r->gbps, r->gops, r->ok && dram > 0 ? r->gbps * 1e9 / dram : 0.0, r->bpw);
    }
    printf("%s]\n", n ? "\n" : "");
}

static int sweep_csv(const tu_session *S, const char *path, const tu_res *rows, int n)
{
    FILE *f = open_out(path);
    if (!f)
        return 1;
    fprintf(f, "%s\n", TU_CSV_HEADER);
    for (int i = 0; i < n; i++) {
        csv_row(f, S, S->kname, &rows[i]);
        fputc('\n', f);
    }
    return close_out(f, path);
}

/* Every (format, size, threads) point: a short tune, its best result. */
static int sweep_points(tu_session *S, const tu_sweep *sw, qkc_program *p0, qkc_program **progs, const kir_kernel **ks,
                        const int64_t *dims, tu_res *rows, int *failed)
{
    int nf = sw->nfmts ? sw->nfmts : 1, total = nf * sw->nvals * S->nthreads, i = 0, rc = 0;
    tu_point *pt = malloc(sizeof *pt);
    if (!pt)
        return cli_error("out of memory");
    double t0 = cli_now();
    progress(0, total, t0, "");
    for (int f = 0; f < nf; f++)
        for (int v = 0; v < sw->nvals; v++)
            for (int t = 0; t < S->nthreads; t++, i++) {
                int64_t d[TU_MAX_SYMS];
                for (int s = 0; s < ks[f]->nsyms; s++)
                    d[s] = s == sw->sym || sw->tied[s] ? sw->vals[v] : dims[s];
                memset(pt, 0, sizeof *pt);
                rc |= tune_point(S, sw->nfmts ? progs[f] : p0, ks[f], d, S->threads[t], S->top, "sweep", pt);
                *failed += pt->failed;
                res_of(&rows[i], pt, pt->best >= 0 ? &pt->m[pt->best] : NULL);
                rows[i].x = sw->vals[v];
                char what[384];
                if (rows[i].ok)
                    snprintf(what, sizeof what, "%s %s, %d thread%s: %.2f GB/s", pt->format, pt->shape, pt->threads,
                             plural(pt->threads), rows[i].gbps);
                else
                    snprintf(what, sizeof what, "%s %s, %d thread%s: failed", pt->format, pt->shape, pt->threads,
                             plural(pt->threads));
                progress(i + 1, total, t0, what);
            }
    free(pt);
    return rc;
}

static int run_sweep(tu_session *S, const cli_cmd *cmd, const cli_args *a, qkc_program *p0, const kir_kernel *k0)
{
    tu_sweep *sw = calloc(1, sizeof *sw);
    qkc_program *progs[TU_MAX_FORMATS] = {0};
    const kir_kernel *ks[TU_MAX_FORMATS] = {0};
    int64_t dims[TU_MAX_SYMS] = {0};
    int given[TU_MAX_SYMS] = {0}, failed = 0;
    tu_res *rows = NULL;
    int rc = sw ? sweep_opts(cmd, a, k0, sw) : cli_error("out of memory");
    if (rc == 0)
        rc = parse_dims(k0, cli_get(cmd, a, "dims"), dims, given);
    if (rc == 0) {
        for (int s = 0; s < k0->nsyms; s++)
            given[s] |= s == sw->sym || sw->tied[s];
        rc = missing_dims(k0, given);
    }
    if (rc == 0)
        rc = sweep_programs(S, p0, k0, sw, progs, ks);
    int n = rc == 0 ? (sw->nfmts ? sw->nfmts : 1) * sw->nvals * S->nthreads : 0;
    if (rc == 0 && !(rows = calloc((size_t)n, sizeof *rows)))
        rc = cli_error("out of memory");
    if (rc == 0) {
        rc = sweep_points(S, sw, p0, progs, ks, dims, rows, &failed);
        if (S->json)
            sweep_json(S, rows, n);
        else
            sweep_summary(S, sw, k0, rows, n);
        if (sw->csv)
            rc |= sweep_csv(S, sw->csv, rows, n);
        if (sw->plot)
            rc |= write_plot(S, sw, k0, rows, n);
        if (!S->json)
            printf("\n%d record%s stored%s%s%s%s%s%s\n", S->stored, plural(S->stored), S->db ? " in " : "",
                   S->db ? S->dbpath : " (no database)", sw->csv ? "; CSV: " : "", sw->csv ? sw->csv : "",
                   sw->plot ? "; plot: " : "", sw->plot ? sw->plot : "");
    }
    if (failed)
        rc = cli_error("%d candidate configuration%s did not match the reference or did not run: a bug in qkc, "
                       "please report it (see FAIL above)",
                       failed, plural(failed));
    for (int f = 0; f < TU_MAX_FORMATS; f++)
        qkc_program_destroy(progs[f]);
    free(rows);
    free(sw);
    return rc;
}

/* ---- qkc tune db ---- */

/* Opens an existing database; list and export never create one. */
static int db_open_existing(const cli_cmd *cmd, const cli_args *a, int readonly, qk_tunedb **db, char *path, size_t n)
{
    struct stat st;
    char err[1024] = "";
    if (!db_path_of(cmd, a, path, n))
        return cli_error("no tuning database path: give --db PATH or set $QKC_TUNE_DB");
    if (stat(path, &st) != 0)
        return cli_error("no tuning database at %s (qkc tune and qkc probe create it)", path);
    if (qk_tunedb_open(path, readonly, db, err, sizeof err) != 0)
        return cli_error("%s", err);
    return 0;
}

static void print_record(const qk_tune_record *r)
{
    char when[32] = "?";
    time_t t = (time_t)r->created;
    struct tm tm;
    if (localtime_r(&t, &tm))
        strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
    printf("%6lld  %-16s  %-12s %-8.8s  %-24s %3d %-6s %12.1f %8.2f %8.2f  %-6s %s\n", (long long)r->id, when,
           r->kernel_name, r->kernel_hash, r->shape, r->threads, r->timing[0] ? r->timing : "-", r->seconds * 1e6,
           r->gbps, r->gops, r->origin, r->config);
}

static int db_list(const cli_cmd *cmd, const cli_args *a)
{
    qk_tunedb *db = NULL;
    char path[4096], err[1024] = "";
    const char *v = cli_get(cmd, a, "limit");
    int64_t limit = 0;
    if (v && (cli_parse_i64(v, &limit) != 0 || limit < 1 || limit > 1000000000))
        return cli_usage_error(cmd, "--limit needs a positive integer, got '%s'", v);
    if (db_open_existing(cmd, a, 1, &db, path, sizeof path))
        return 1;
    qk_tune_filter flt = {.kernel_name = cli_get(cmd, a, "kernel"), .limit = (int)limit};
    qk_tune_record *r = NULL;
    int n = qk_tunedb_list(db, &flt, &r, err, sizeof err);
    qk_tunedb_close(db);
    if (n < 0)
        return cli_error("%s", err);
    if (cli_get(cmd, a, "json")) {
        char *j = qk_tunedb_json(r, n);
        printf("%s\n", j);
        free(j);
    } else {
        printf("%d record%s in %s, newest first\n", n, plural(n), path);
        printf("%6s  %-16s  %-12s %-8s  %-24s %3s %-6s %12s %8s %8s  %-6s %s\n", "id", "measured", "kernel", "hash",
               "shape", "thr", "timing", "time (us)", "GB/s", "GOP/s", "origin", "configuration");
        for (int i = 0; i < n; i++)
            print_record(&r[i]);
    }
    free(r);
    return 0;
}

static int db_export(const cli_cmd *cmd, const cli_args *a)
{
    const char *csv = cli_get(cmd, a, "csv"), *out = cli_get(cmd, a, "output");
    int json = cli_get(cmd, a, "json") != NULL;
    if (json && csv)
        return cli_usage_error(cmd, "db export: --csv FILE and --json exclude each other");
    if (csv && out && strcmp(csv, "-") != 0)
        return cli_usage_error(cmd, "db export: give the file once (--csv FILE or -o FILE)");
    const char *path = csv && strcmp(csv, "-") != 0 ? csv : out ? out : "-";
    qk_tunedb *db = NULL;
    char dbpath[4096], err[1024] = "";
    if (db_open_existing(cmd, a, 1, &db, dbpath, sizeof dbpath))
        return 1;
    qk_tune_filter flt = {.kernel_name = cli_get(cmd, a, "kernel")};
    qk_tune_record *r = NULL;
    int n = qk_tunedb_list(db, &flt, &r, err, sizeof err);
    qk_tunedb_close(db);
    if (n < 0)
        return cli_error("%s", err);
    char *text = json ? qk_tunedb_json(r, n) : qk_tunedb_csv(r, n);
    free(r);
    FILE *f = open_out(path);
    int rc = 1;
    if (f) {
        fputs(text, f);
        if (json)
            fputc('\n', f);
        rc = close_out(f, path);
    }
    free(text);
    if (rc == 0 && f != stdout)
        fprintf(stderr, "qkc tune db export: %d record%s to %s\n", n, plural(n), path);
    return rc;
}

static int db_prune(const cli_cmd *cmd, const cli_args *a)
{
    const char *older = cli_get(cmd, a, "older-than"), *kernel = cli_get(cmd, a, "kernel");
    int keep = cli_get(cmd, a, "keep-best") != NULL, all = cli_get(cmd, a, "all") != NULL;
    int64_t days = 0;
    if (!older && !kernel && !keep && !all)
        return cli_usage_error(cmd, "db prune needs a selector (--keep-best, --older-than DAYS, --kernel NAME); "
                                    "to delete every record, say --all");
    if (older && (cli_parse_i64(older, &days) != 0 || days < 0 || days > 1000000))
        return cli_usage_error(cmd, "--older-than needs a number of days, got '%s'", older);
    qk_tunedb *db = NULL;
    char path[4096], err[1024] = "";
    if (db_open_existing(cmd, a, 0, &db, path, sizeof path))
        return 1;
    qk_tune_filter flt = {.kernel_name = kernel, .older_than = older ? (int64_t)time(NULL) - days * 86400 : 0};
    int n = qk_tunedb_prune(db, &flt, keep, err, sizeof err);
    qk_tunedb_close(db);
    if (n < 0)
        return cli_error("%s", err);
    printf("pruned %d record%s from %s\n", n, plural(n), path);
    return 0;
}

static int run_db(const cli_cmd *cmd, const cli_args *a)
{
    const char *sub = a->npos > 1 ? a->pos[1] : "";
    if (a->npos > 2)
        return cli_usage_error(cmd, "unexpected argument '%s'", a->pos[2]);
    if (strcmp(sub, "list") == 0)
        return db_list(cmd, a);
    if (strcmp(sub, "export") == 0)
        return db_export(cmd, a);
    if (strcmp(sub, "prune") == 0)
        return db_prune(cmd, a);
    return cli_usage_error(cmd, "qkc tune db needs list, export or prune%s%s%s", *sub ? " (got '" : "", sub,
                           *sub ? "')" : "");
}

/* ---- the command ---- */

static int run_tune(const cli_cmd *cmd, const cli_args *a)
{
    if (a->npos >= 1 && strcmp(a->pos[0], "db") == 0) /* a file named db: ./db */
        return run_db(cmd, a);
    tu_session S;
    memset(&S, 0, sizeof S);
    int sweep = cli_get(cmd, a, "sweep") != NULL;
    int rc = session_opts(&S, cmd, a, sweep);
    if (rc == 0 && !sweep && (cli_get(cmd, a, "formats") || cli_get(cmd, a, "sweep-dims") || cli_get(cmd, a, "plot")))
        rc = cli_usage_error(cmd, "--formats, --sweep-dims and --plot belong to sweeps (--sweep D=LO..HI)");
    qkc_program *p = NULL;
    const kir_kernel *k = NULL;
    if (rc == 0)
        rc = session_open(&S, cmd, a);
    if (rc == 0)
        rc = compile_source(&S, S.source, &p);
    if (rc == 0 && !(k = find_kernel(&S, p)))
        rc = 1;
    if (rc == 0 && S.ctx->target.kind == QK_TARGET_GPU && sweep)
        rc = cli_usage_error(cmd, "sweeps measure CPU kernels; GPU targets tune one shape (--dims)");
    else if (rc == 0 && S.ctx->target.kind == QK_TARGET_GPU && cli_get(cmd, a, "mode"))
        rc = cli_usage_error(cmd, "--mode times CPU kernels; GPU targets are timed on the device");
    else if (rc == 0 && S.ctx->target.kind == QK_TARGET_GPU)
        rc = run_gpu(&S, cmd, a, p, k);
    else if (rc == 0)
        rc = sweep ? run_sweep(&S, cmd, a, p, k) : run_single(&S, cmd, a, p, k);
    qkc_program_destroy(p);
    session_close(&S);
    return rc;
}

/* CLI_MAX_OPTS (cli.h) must exceed the number of options below. */
#define TUNE_DB_OPTS                                                                                                   \
    {"keep-best", 0, NULL, "db prune: keep the fastest record per kernel, shape, machine, threads, timing", NULL},     \
        {"older-than", 0, "DAYS", "db prune: only records older than DAYS days", NULL},                                \
        {"all", 0, NULL, "db prune: every record (that the other selectors leave)", NULL},                             \
        {"output", 'o', "FILE", "db export: write to FILE", "standard output"},

const cli_cmd cli_cmd_tune = {
    .name = "tune",
    .summary = "Autotune a kernel's tile configuration (cost model + measurement), sweep sizes and formats, "
               "manage the tuning database.",
    .usage = "FILE --kernel K --dims D=V,... [--threads T,...] [--top N] [--reps R] [--mode auto|cold|hot]\n"
             "                [--layout own|any] [--csv OUT]\n"
             "       qkc tune FILE --kernel K --dims D=V,... --target sm_80|sm_90 [--model-only] [--top N] [--json]\n"
             "       qkc tune FILE --kernel K --sweep D=LO..HI [--sweep-dims D2=D] [--dims ...] [--formats F,...]\n"
             "                [--threads T,...] [--csv OUT.csv] [--plot OUT.svg] [--metric gbps|gops]\n"
             "       qkc tune db list [--kernel NAME] [--limit N] [--json]\n"
             "       qkc tune db export [--json] [-o FILE | --csv FILE]\n"
             "       qkc tune db prune (--keep-best | --older-than DAYS | --kernel NAME | --all)...",
    .details = "Tuning one shape: the cost model (BLIS-style register tiles for contractions, bytes per memory\n"
               "level and a per-format decode cost for matrix-vector products) ranks the legal configurations\n"
               "(lanes, tile_par, tile_inner, unroll, idot, idot_bytes, kblocks); the best --top are compiled,\n"
               "each checked against the reference interpreter on a reduced shape (dimensions capped near 700,\n"
               "off multiples of 8), then timed: the median of --reps launches after a warm-up, taken in two\n"
               "passes (the candidates in the model's order, then in reverse, half the launches each) so that a\n"
               "drift of the machine's speed favours no candidate. --mode auto (the\n"
               "default) times cold when the inputs exceed the L3 cache: each launch reads the next of several\n"
               "copies of them (together beyond 3 x L3 and 256 MiB, as qkc bench's cold mode), so the weights come\n"
               "from DRAM as a decoding model's do, and a configuration is not chosen by the part of a matrix that a\n"
               "repeated launch would find in L3; else hot (the same inputs every launch). --mode cold|hot forces\n"
               "either. The line 'timed cold|hot' says which ran, and each record keeps it: a lookup takes the\n"
               "fastest cold record, else the fastest hot one (cold and hot times are never compared), else one\n"
               "from before records kept it. A configuration that does not match the reference is reported as\n"
               "FAIL, never stored, and makes the exit status 1. Every measurement is stored in the tuning\n"
               "database (origin \"tune\"); the table shows the model's rank, the measured time, its spread (the\n"
               "interquartile range of the launches over their median), GB/s of packed weights, GOP/s, the\n"
               "Spearman rank correlation of model and measurement, and the winner, with a warning when the\n"
               "runner-up is within the spread. Finally a\n"
               "new context on the same database compiles the kernel without a configuration and prints the\n"
               "origin of its choice: \"tuning-db (exact shape)\" once the winner is stored. Schedule-block\n"
               "requests (tile n = 16, ...) are kept: the search varies what the schedule leaves open.\n"
               "\n"
               "Layouts: by default every candidate reads the weights in their format's own bytes, what a caller\n"
               "of qkc_kernel_get gets. --layout any adds up to 5 candidates that read them row-interleaved\n"
               "(repack=1: the builder's tiles, two row groups a work item, the software prefetch off or on and\n"
               "8 KiB ahead, a scheduling boundary per row group: fence=1), for kernels that can (integer-dot\n"
               "sums on a CPU; docs/api.md); each is checked and timed on converted weights like the others.\n"
               "Records that read row-interleaved weights are only ever used by callers that ask for any layout\n"
               "(qkc_kernel_options.any_layout, --layout any).\n"
               "\n"
               "GPU targets (--target sm_80|sm_90): tile_par x tile_inner outputs per thread (tensor-core tiles\n"
               "take nothing from the configuration: one candidate), ranked by a GPU model; each of the best --top\n"
               "is checked for legality (registers per thread and block, shared memory) with ptxas -v figures, else\n"
               "an estimate, and listed with its verdict. With a CUDA device for the target the legal ones are\n"
               "measured and stored; without one tune exits 1 saying so. --model-only: the list alone (exit 0).\n"
               "\n"
               "Sweeps: --sweep N=1024..16384 takes N = 1024, 2048, ..., 16384 (or a list N=1024,4096);\n"
               "--sweep-dims K=N gives K the same value; other dimensions come from --dims. --formats a,b,c\n"
               "substitutes the format of the kernel's first quantized parameter (importing the standard-library\n"
               "module that defines it); an unknown format is an error before anything runs. Each (format, size,\n"
               "threads) point is a short tune (--top, default 3); records have origin \"sweep\". The CSV has the\n"
               "columns format,kernel,shape,threads,config,seconds,gbps,gops,ratio_dram,bits_per_weight (the\n"
               "best configuration per point). The plot (SVG written by qkc; PNG through gnuplot when it is on\n"
               "PATH) shows GB/s of packed weights (--metric gops: GOP/s) against the swept size on a log2 axis,\n"
               "one line per format and thread count, and the machine's limits from 'qkc probe' as dashed lines\n"
               "(a quick probe runs and is stored when the database has none).\n"
               "\n"
               "The database: --db PATH, else $QKC_TUNE_DB, else $XDG_CACHE_HOME/qkc/tune.db, else\n"
               "~/.cache/qkc/tune.db. When it cannot be opened, tune warns and stores nothing; db list/export say\n"
               "so and exit 1. db prune without a selector is a usage error (say --all to delete everything).\n"
               "Exit status: 0, 1 (failure or a FAIL), 2 (usage).",
    .example = "qkc tune examples/q4_gemv.qk --kernel gemv --dims N=8192,K=8192 --threads 1\n"
               "  qkc tune examples/q4_gemv.qk --kernel gemv --sweep N=1024..16384 --sweep-dims K=N \\\n"
               "      --formats q4_0,q8_0,tq2_0 --threads 1,2 --csv sweep.csv --plot sweep.svg\n"
               "  qkc tune db list --kernel gemv --limit 20\n"
               "  qkc tune db export --json -o records.json\n"
               "  qkc tune db prune --keep-best",
    .opts = {{"kernel", 'k', "NAME", "the kernel to tune", "the only kernel, if there is one"},
             {"dims", 'd', "D=V,...", "a value for every dimension (sweeps: the dimensions not swept)", NULL},
             {"threads", 'j', "T,...", "thread counts to tune for, e.g. 1,2", "every core"},
             {"top", 'n', "N", "candidates measured per point (the model's best N)", "8; sweeps: 3"},
             {"reps", 'r', "R", "timed launches per candidate", "enough for ~0.3 s (two passes of at least 3)"},
             {"mode", 'm', "MODE", "CPU: auto, cold (inputs from DRAM: copies rotated) or hot (the same inputs)",
              "auto: cold when the inputs exceed L3"},
             {"db", 0, "PATH", "the tuning database", "$QKC_TUNE_DB or ~/.cache/qkc/tune.db"},
             {"csv", 0, "FILE", "write results as CSV to FILE ('-': standard output)", NULL},
             {"json", 0, NULL, "print JSON instead of tables", NULL},
             {"target", 't', "T", "host, x86-64-v3, x86-64-v4 (measured on this machine); sm_80, sm_90 (ranked and "
                                  "checked here, measured on a CUDA device)", "host"},
             {"model-only", 0, NULL, "GPU targets: list the ranked candidates and their legality, measure nothing",
              NULL},
             {"sweep", 0, "D=LO..HI", "sweep dimension D over LO, 2 LO, ..., HI (or D=V1,V2,...)", NULL},
             {"sweep-dims", 0, "D2=D,...", "dimensions that take the swept value too", NULL},
             {"formats", 0, "F,...", "sweeps: formats substituted for the first quantized parameter's", NULL},
             {"plot", 0, "FILE", "sweeps: plot to FILE.svg (or FILE.png through gnuplot)", NULL},
             {"metric", 0, "M", "plot gbps (GB/s of packed weights) or gops (GOP/s)", "gbps"},
             {"limit", 0, "N", "db list: at most N records", "all"},
             CLI_OPT_LAYOUT,
             TUNE_DB_OPTS{0}},
    .min_pos = 1,
    .max_pos = 3,
    .run = run_tune,
};

/* ref.c — the reference interpreter: executes Kernel IR directly and so
 * defines what every compiled kernel of every backend must compute.
 *
 * It is written to be obviously correct, not fast: statements run in
 * order; for every point of a statement's LHS index space the expression
 * tree is evaluated recursively in double over the current variable
 * bindings. Dense loads read exact values through the view's strides,
 * quantized loads decode exactly through qk_format_get, SUM adds in double
 * over the whole range, temps are materialized as double arrays, results
 * are rounded by qk_dtype_store. A later statement that reads a result
 * reads the stored (rounded) value back.
 *
 * Rounding: CAST rounds once, from double straight to the target type
 * (f16/bf16 included). Result stores use qk_dtype_store, which goes
 * through f32 for f16/bf16; that double rounding can differ from one
 * rounding only on exact f16 ties created by the f32 step, and is the
 * documented storage rule. max/min follow C fmax/fmin (a NaN operand
 * loses), so relu(NaN) = 0. */
#include "compiler/kir.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct ref_ctx {
    const kir_kernel *k;
    const kir_view *views;
    const int64_t *dims;
    int64_t *val;    /* current value of every variable */
    double **temps;  /* per tensor: materialized temp, or NULL */
    int64_t (*tstride)[QK_MAX_RANK]; /* row-major strides of the temps */
    uint8_t **packed; /* per tensor: packed bytes of a quantize() temp, or NULL */
    int64_t *row_bytes; /* quantize() temps: bytes of one packed row */
    double *line;       /* scratch line of the longest transform */
    float *fline;
} ref_ctx;

static int fail(char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errsz)
        vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- operators, as tables ---- */

static double op_add(double a, double b) { return a + b; }
static double op_sub(double a, double b) { return a - b; }
static double op_mul(double a, double b) { return a * b; }
static double op_div(double a, double b) { return a / b; }
/* max/min are IEEE maxNum/minNum (C fmax/fmin): a NaN operand loses. */
static double op_max(double a, double b) { return fmax(a, b); }
static double op_min(double a, double b) { return fmin(a, b); }

static double (*const binops[])(double, double) = {
    [KB_ADD] = op_add, [KB_SUB] = op_sub, [KB_MUL] = op_mul,
    [KB_DIV] = op_div, [KB_MAX] = op_max, [KB_MIN] = op_min,
};
_Static_assert(QK_COUNT(binops) == KB_COUNT, "binop table size");

static double un_neg(double x) { return -x; }
static double un_relu(double x) { return fmax(x, 0); }
static double un_gelu(double x)
{
    const double pi = 3.14159265358979323846;
    return 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x * x * x)));
}
static double un_silu(double x) { return x / (1 + exp(-x)); }
static double un_exp(double x) { return exp(x); }
static double un_tanh(double x) { return tanh(x); }
static double un_abs(double x) { return fabs(x); }
static double un_sqrt(double x) { return sqrt(x); }

static double (*const unops[])(double) = {
    [KU_NEG] = un_neg, [KU_RELU] = un_relu, [KU_GELU] = un_gelu, [KU_SILU] = un_silu,
    [KU_EXP] = un_exp, [KU_TANH] = un_tanh, [KU_ABS] = un_abs,   [KU_SQRT] = un_sqrt,
};
_Static_assert(QK_COUNT(unops) == KU_COUNT, "unop table size");

/* Rounds v once, to nearest even, to a binary float with p significand
 * bits, minimum normal exponent emin and largest finite value max
 * (overflow gives infinity). Exact: v / q and the product are powers of
 * two away from integers. */
static double round_float(double v, int p, int emin, double max)
{
    if (v == 0 || !isfinite(v))
        return v;
    int e;
    frexp(v, &e); /* |v| in [2^(e-1), 2^e) */
    int lead = e - 1 < emin ? emin : e - 1;
    double q = ldexp(1.0, lead - (p - 1));
    double r = nearbyint(v / q) * q;
    return fabs(r) > max ? copysign(INFINITY, v) : r;
}

static double round_int(double v, double lo, double hi)
{
    if (isnan(v))
        return 0;
    v = nearbyint(v);
    return v < lo ? lo : v > hi ? hi : v;
}

/* CAST: the value rounded to the precision and range of dtype t, in one
 * rounding step (double -> f16 directly, not through f32). */
static double cast_to(qk_dtype t, double v)
{
    switch (t) {
    case QK_DT_F32: return (double)(float)v;
    case QK_DT_F16: return round_float(v, 11, -14, 65504.0);
    case QK_DT_BF16: return round_float(v, 8, -126, 0x1.fep127);
    case QK_DT_I8: return round_int(v, -128, 127);
    case QK_DT_I32: return round_int(v, -2147483648.0, 2147483647.0);
    case QK_DT_U8: return round_int(v, 0, 255);
    default: qk_bug("cast to dtype %d", (int)t);
    }
}

/* ---- evaluation ---- */

static int64_t index_value(const ref_ctx *c, const kir_index *ix)
{
    int64_t v = ix->c;
    for (int t = 0; t < ix->nterms; t++)
        v += ix->terms[t].coef * c->val[ix->terms[t].var];
    return v;
}

/* Quantized: leading indices select the row, the last one the element.
 * Params decode from their view; quantize() temps from their packed
 * buffer. */
static double load_quant(const ref_ctx *c, int ti, const int64_t *idx)
{
    const kir_tensor *t = &c->k->tensors[ti];
    int64_t row = 0;
    for (int d = 0; d + 1 < t->rank; d++)
        row = row * kir_dim_value(t->dims[d], c->dims) + idx[d];
    if (t->kind == KIR_TEMP)
        return qk_format_get(t->fmt, c->packed[ti], row, kir_dim_value(t->dims[t->rank - 1], c->dims),
                             idx[t->rank - 1], NULL);
    const kir_view *vw = &c->views[ti];
    const void *book = t->book >= 0 ? c->views[t->book].data : NULL;
    return qk_format_get(t->fmt, vw->data, row, vw->shape[t->rank - 1], idx[t->rank - 1], book);
}

static double eval_load(const ref_ctx *c, const kir_expr *e)
{
    const kir_tensor *t = &c->k->tensors[e->tensor];
    int64_t idx[QK_MAX_RANK], off = 0;
    for (int d = 0; d < t->rank; d++)
        idx[d] = index_value(c, &e->idx[d]);
    if (t->fmt)
        return load_quant(c, e->tensor, idx);
    if (t->kind == KIR_TEMP) {
        for (int d = 0; d < t->rank; d++)
            off += idx[d] * c->tstride[e->tensor][d];
        return c->temps[e->tensor][off];
    }
    const kir_view *vw = &c->views[e->tensor];
    for (int d = 0; d < t->rank; d++)
        off += idx[d] * vw->stride[d];
    return qk_dtype_load(t->dtype, vw->data, off);
}

static double eval(const ref_ctx *c, const kir_expr *e);

/* Sum of e->a over variables level.. of e->vars, outermost first. */
static double eval_sum(const ref_ctx *c, const kir_expr *e, int level)
{
    if (level == e->nvars)
        return eval(c, e->a);
    int var = e->vars[level];
    int64_t n = kir_dim_value(c->k->vars[var].extent, c->dims);
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        c->val[var] = i;
        s += eval_sum(c, e, level + 1);
    }
    return s;
}

static double eval(const ref_ctx *c, const kir_expr *e)
{
    switch (e->kind) {
    case KE_CONST: return e->value;
    case KE_LOAD: return eval_load(c, e);
    case KE_BIN: return binops[e->op](eval(c, e->a), eval(c, e->b));
    case KE_UN: return unops[e->op](eval(c, e->a));
    case KE_CAST: return cast_to((qk_dtype)e->op, eval(c, e->a));
    case KE_SUM: return eval_sum(c, e, 0);
    case KE_QUANT:
    case KE_HADAMARD: break; /* statement forms, run by run_transform */
    }
    qk_bug("expression kind %d", (int)e->kind);
}

/* ---- statements ---- */

static void store(const ref_ctx *c, const kir_stmt *st, double v)
{
    const kir_tensor *t = &c->k->tensors[st->tensor];
    int64_t off = 0;
    if (t->kind == KIR_TEMP) {
        for (int d = 0; d < st->nlhs; d++)
            off += c->val[st->lhs[d]] * c->tstride[st->tensor][d];
        c->temps[st->tensor][off] = v;
        return;
    }
    const kir_view *vw = &c->views[st->tensor];
    for (int d = 0; d < st->nlhs; d++)
        off += c->val[st->lhs[d]] * vw->stride[d];
    qk_dtype_store(t->dtype, vw->data, off, v);
}

/* In-place fast Walsh-Hadamard transform of runs of n (a power of two)
 * values, normalized by 1/sqrt(n). */
static void fwht(double *x, int64_t len, int64_t n)
{
    for (int64_t r = 0; r + n <= len; r += n) {
        for (int64_t h = 1; h < n; h *= 2)
            for (int64_t i = r; i < r + n; i += 2 * h)
                for (int64_t j = i; j < i + h; j++) {
                    double a = x[j], b = x[j + h];
                    x[j] = a + b, x[j + h] = a - b;
                }
        for (int64_t i = r; i < r + n; i++)
            x[i] /= sqrt((double)n);
    }
}

/* quantize()/hadamard() statement: for every point of the LHS indices
 * other than the transform's variable (the last LHS index for quantize),
 * evaluates the operand along that variable into line[], transforms it
 * and stores the line. */
static void run_transform(const ref_ctx *c, const kir_stmt *st, int tv, const int64_t *ext, double *line,
                          float *fline)
{
    const kir_expr *e = st->rhs;
    const kir_tensor *t = &c->k->tensors[st->tensor];
    int var = st->lhs[tv];
    int64_t n = ext[tv];
    for (int64_t i = 0; i < n; i++) {
        c->val[var] = i;
        line[i] = eval(c, e->a);
    }
    if (e->kind == KE_QUANT) {
        int64_t row = 0;
        for (int d = 0; d < st->nlhs - 1; d++)
            row = row * ext[d] + c->val[st->lhs[d]];
        for (int64_t i = 0; i < n; i++)
            fline[i] = (float)line[i];
        qk_format_pack(t->fmt, fline, 1, n, c->packed[st->tensor] + row * c->row_bytes[st->tensor], NULL, NULL,
                       0);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        line[i] *= kir_hadamard_sign(e->hseed, i);
    fwht(line, n, e->hsize ? e->hsize : n);
    for (int64_t i = 0; i < n; i++) {
        c->val[var] = i;
        int64_t off = 0;
        for (int d = 0; d < st->nlhs; d++)
            off += c->val[st->lhs[d]] * c->tstride[st->tensor][d];
        c->temps[st->tensor][off] = line[i];
    }
}

/* Runs one statement over its LHS index space (row-major order). */
static void run_stmt(const ref_ctx *c, const kir_stmt *st)
{
    int tv = -1; /* transform variable position, for quantize()/hadamard() */
    if (st->rhs->kind == KE_QUANT)
        tv = st->nlhs - 1;
    for (int d = 0; st->rhs->kind == KE_HADAMARD && d < st->nlhs; d++)
        if (st->lhs[d] == st->rhs->hvar)
            tv = d;
    int64_t ext[QK_MAX_RANK];
    for (int d = 0; d < st->nlhs; d++) {
        ext[d] = kir_dim_value(c->k->vars[st->lhs[d]].extent, c->dims);
        if (ext[d] == 0)
            return;
        c->val[st->lhs[d]] = 0;
    }
    if (tv >= 0 && !c->line)
        return;
    for (;;) {
        if (tv >= 0)
            run_transform(c, st, tv, ext, c->line, c->fline);
        else
            store(c, st, eval(c, st->rhs));
        int d = st->nlhs - 1;
        for (; d >= 0; d--) {
            if (d == tv)
                continue;
            if (++c->val[st->lhs[d]] < ext[d])
                break;
            c->val[st->lhs[d]] = 0;
        }
        if (d < 0)
            return;
    }
}

/* Allocates temp i: a double array (row-major over its dims), or the
 * packed bytes of a quantize() temp. */
static int alloc_temp(ref_ctx *c, int i, char *err, size_t errsz)
{
    const kir_tensor *t = &c->k->tensors[i];
    uint64_t n = 1;
    for (int d = t->rank - 1; d >= 0; d--) {
        c->tstride[i][d] = (int64_t)n;
        uint64_t ext = (uint64_t)kir_dim_value(t->dims[d], c->dims);
        if (ext && n > SIZE_MAX / sizeof(double) / ext)
            return fail(err, errsz, "out of memory: temp '%s' is too large", t->name);
        n *= ext;
    }
    if (t->fmt) {
        int64_t k = kir_dim_value(t->dims[t->rank - 1], c->dims), rows = k ? (int64_t)n / k : 0;
        c->row_bytes[i] = qk_format_row_bytes(t->fmt, k);
        c->packed[i] = calloc(1, (size_t)qk_format_size(t->fmt, rows, k) + 1);
        if (!c->packed[i])
            return fail(err, errsz, "out of memory: temp '%s'", t->name);
        return 0;
    }
    c->temps[i] = malloc(n ? n * sizeof(double) : 1);
    if (!c->temps[i])
        return fail(err, errsz, "out of memory: temp '%s' needs %" PRIu64 " bytes", t->name, n * sizeof(double));
    return 0;
}

/* The line buffers of quantize()/hadamard() statements. */
static int alloc_lines(ref_ctx *c, char *err, size_t errsz)
{
    int64_t n = 1;
    for (int s = 0; s < c->k->nstmts; s++) {
        const kir_stmt *st = &c->k->stmts[s];
        for (int d = 0; d < st->nlhs; d++) {
            int64_t e = kir_dim_value(c->k->vars[st->lhs[d]].extent, c->dims);
            if ((st->rhs->kind == KE_QUANT || st->rhs->kind == KE_HADAMARD) && e > n)
                n = e;
        }
    }
    c->line = malloc((size_t)n * sizeof(double));
    c->fline = malloc((size_t)n * sizeof(float));
    return c->line && c->fline ? 0 : fail(err, errsz, "out of memory");
}

/* Views must have data wherever a non-empty tensor is read or written,
 * and kir_bind on them must give exactly dims. */
static int check_views(const kir_kernel *k, const kir_view *views, const int64_t *dims, char *err, size_t errsz)
{
    int64_t *bound = malloc(sizeof(int64_t) * (size_t)(k->nsyms + 1));
    if (!bound)
        return fail(err, errsz, "out of memory");
    int rc = kir_bind(k, views, bound, err, errsz);
    for (int s = 0; s < k->nsyms && rc == 0; s++)
        if (bound[s] != dims[s])
            rc = fail(err, errsz, "dimension '%s' is %" PRId64 " but the views give %" PRId64, k->syms[s], dims[s],
                      bound[s]);
    free(bound);
    for (int i = 0; i < k->nparams + k->nresults && rc == 0; i++) {
        int empty = 0;
        for (int d = 0; d < views[i].rank; d++)
            empty |= views[i].shape[d] == 0;
        if (!empty && !views[i].data)
            rc = fail(err, errsz, "tensor '%s' has no data", k->tensors[i].name);
    }
    return rc;
}

static void free_ctx(ref_ctx *c)
{
    for (int i = 0; c->temps && i < c->k->ntensors; i++)
        free(c->temps[i]);
    for (int i = 0; c->packed && i < c->k->ntensors; i++)
        free(c->packed[i]);
    free(c->packed);
    free(c->line);
    free(c->fline);
    free(c->temps);
    free(c->tstride);
    free(c->row_bytes);
    free(c->val);
}

int ref_run(const kir_kernel *k, const kir_view *views, const int64_t *dims, char *err, size_t errsz)
{
    if (check_views(k, views, dims, err, errsz))
        return -1;
    ref_ctx c = {.k = k, .views = views, .dims = dims};
    c.val = calloc((size_t)k->nvars + 1, sizeof *c.val);
    c.temps = calloc((size_t)k->ntensors + 1, sizeof *c.temps);
    c.tstride = calloc((size_t)k->ntensors + 1, sizeof *c.tstride);
    c.row_bytes = calloc((size_t)k->ntensors + 1, sizeof *c.row_bytes);
    c.packed = calloc((size_t)k->ntensors + 1, sizeof *c.packed);
    int rc = c.val && c.temps && c.tstride && c.row_bytes && c.packed ? 0 : fail(err, errsz, "out of memory");
    if (rc == 0)
        rc = alloc_lines(&c, err, errsz);
    for (int i = k->nparams + k->nresults; i < k->ntensors && rc == 0; i++)
        rc = alloc_temp(&c, i, err, errsz);
    for (int s = 0; s < k->nstmts && rc == 0; s++)
        run_stmt(&c, &k->stmts[s]);
    free_ctx(&c);
    return rc;
}

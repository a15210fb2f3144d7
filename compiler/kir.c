/* kir.c — Kernel IR utilities: the text printer (qkc emit --stage=kir),
 * the structural verifier that runs after kir_build and before every
 * consumer, and launch-time binding of dimension symbols (kir_bind), which
 * also proves that no load of any statement can leave its tensor before a
 * single byte is touched.
 *
 * Text form of a kernel:
 *     kernel gemv(x: f32[K], W: q4_0[N, K], b: f32[N]) -> (y: f32[N])
 *       y[n] = add(sum(k) mul(load x[k], load W[n, k]), load b[n])  # n < N, k < K
 * Operators print in prefix form with fixed arity, so the text needs no
 * precedence rules; temps are declared on `temp` lines before the
 * statements; the trailing comment lists every variable of the statement
 * with its extent, LHS variables first. A VQ parameter names its codebook
 * (`W: aqlm(C)[N, K]`); materializing statements print as
 * `xq[m, k] = quantize(load x[m, k], q8_0)` and
 * `xh[k] = hadamard(load x[k], k, 0, 7)` (variable, size, seed). */
#include "compiler/kir.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void kir_program_free(kir_program *p)
{
    if (p)
        qk_arena_free(p->arena); /* the program struct lives in its own arena */
}

static const char *const binop_names[] = {
#define KIR_B_NAME(id, name) name,
    KIR_BINOPS(KIR_B_NAME)
#undef KIR_B_NAME
};
_Static_assert(QK_COUNT(binop_names) == KB_COUNT, "binop table size");

static const char *const unop_names[] = {
#define KIR_U_NAME(id, name) name,
    KIR_UNOPS(KIR_U_NAME)
#undef KIR_U_NAME
};
_Static_assert(QK_COUNT(unop_names) == KU_COUNT, "unop table size");

/* Prefix mnemonics of the binary ops in the text form. */
static const char *const binop_words[] = {
    [KB_ADD] = "add", [KB_SUB] = "sub", [KB_MUL] = "mul",
    [KB_DIV] = "div", [KB_MAX] = "max", [KB_MIN] = "min",
};
_Static_assert(QK_COUNT(binop_words) == KB_COUNT, "binop word table size");

const char *kir_binop_name(int op)
{
    return op >= 0 && op < KB_COUNT ? binop_names[op] : "?";
}

const char *kir_unop_name(int op)
{
    return op >= 0 && op < KU_COUNT ? unop_names[op] : "?";
}

const kir_kernel *kir_find_kernel(const kir_program *p, const char *name)
{
    for (int i = 0; p && i < p->nkernels; i++)
        if (p->kernels[i]->name && strcmp(p->kernels[i]->name, name) == 0)
            return p->kernels[i];
    return NULL;
}

const qk_format *kir_find_format(const kir_program *p, const char *name)
{
    for (int i = 0; p && i < p->nformats; i++)
        if (p->formats[i]->name && strcmp(p->formats[i]->name, name) == 0)
            return p->formats[i];
    return NULL;
}

/* ---- printer ---- */

static const char *sym_name(const kir_kernel *k, int sym)
{
    return sym >= 0 && sym < k->nsyms && k->syms[sym] ? k->syms[sym] : "?";
}

static const char *var_name(const kir_kernel *k, int v)
{
    return v >= 0 && v < k->nvars && k->vars[v].name ? k->vars[v].name : "?";
}

/* `K`, `H - 2`, `W + 1`, `34`. */
void kir_print_dim(const kir_kernel *k, kir_dim d, qk_buf *out)
{
    if (d.sym < 0) {
        qk_buf_printf(out, "%" PRId64, d.c);
        return;
    }
    qk_buf_puts(out, sym_name(k, d.sym));
    if (d.c > 0)
        qk_buf_printf(out, " + %" PRId64, d.c);
    else if (d.c < 0)
        qk_buf_printf(out, " - %" PRIu64, (uint64_t)0 - (uint64_t)d.c);
}

/* `h + r`, `2*i - 1`, `-j + 3`, `0`. Zero coefficients are skipped. */
static void print_index(const kir_kernel *k, const kir_index *ix, qk_buf *out)
{
    int first = 1;
    for (int t = 0; t < ix->nterms; t++) {
        int64_t c = ix->terms[t].coef;
        if (c == 0)
            continue;
        uint64_t mag = c < 0 ? (uint64_t)0 - (uint64_t)c : (uint64_t)c;
        if (first)
            qk_buf_puts(out, c < 0 ? "-" : "");
        else
            qk_buf_puts(out, c < 0 ? " - " : " + ");
        if (mag != 1)
            qk_buf_printf(out, "%" PRIu64 "*", mag);
        qk_buf_puts(out, var_name(k, ix->terms[t].var));
        first = 0;
    }
    if (first)
        qk_buf_printf(out, "%" PRId64, ix->c);
    else if (ix->c != 0)
        qk_buf_printf(out, " %c %" PRIu64, ix->c < 0 ? '-' : '+',
                      ix->c < 0 ? (uint64_t)0 - (uint64_t)ix->c : (uint64_t)ix->c);
}

static void print_indices(const kir_kernel *k, const kir_index *idx, int n, qk_buf *out)
{
    if (n == 0)
        return;
    qk_buf_puts(out, "[");
    for (int i = 0; i < n; i++) {
        if (i)
            qk_buf_puts(out, ", ");
        print_index(k, &idx[i], out);
    }
    qk_buf_puts(out, "]");
}

/* Shortest decimal that reads back as the same double. */
static void print_number(double v, qk_buf *out)
{
    char s[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(s, sizeof s, "%.*g", prec, v);
        if (strtod(s, NULL) == v || isnan(v))
            break;
    }
    qk_buf_puts(out, s);
}

static void print_expr(const kir_kernel *k, const kir_expr *e, qk_buf *out);

static void print_call(const kir_kernel *k, const char *fn, const kir_expr *a, const kir_expr *b, qk_buf *out)
{
    qk_buf_printf(out, "%s(", fn);
    print_expr(k, a, out);
    if (b) {
        qk_buf_puts(out, ", ");
        print_expr(k, b, out);
    }
    qk_buf_puts(out, ")");
}

static void print_sum(const kir_kernel *k, const kir_expr *e, qk_buf *out)
{
    qk_buf_puts(out, "sum(");
    for (int i = 0; i < e->nvars; i++)
        qk_buf_printf(out, "%s%s", i ? ", " : "", var_name(k, e->vars[i]));
    qk_buf_puts(out, ") ");
    print_expr(k, e->a, out);
}

static void print_expr(const kir_kernel *k, const kir_expr *e, qk_buf *out)
{
    if (!e) {
        qk_buf_puts(out, "<null>");
        return;
    }
    switch (e->kind) {
    case KE_CONST: print_number(e->value, out); break;
    case KE_LOAD:
        if (e->tensor < 0 || e->tensor >= k->ntensors) {
            qk_buf_printf(out, "load <tensor %d>", e->tensor);
            break;
        }
        qk_buf_printf(out, "load %s", k->tensors[e->tensor].name);
        print_indices(k, e->idx, k->tensors[e->tensor].rank, out);
        break;
    case KE_BIN:
        print_call(k, e->op >= 0 && e->op < KB_COUNT ? binop_words[e->op] : "?", e->a, e->b, out);
        break;
    case KE_UN: print_call(k, kir_unop_name(e->op), e->a, NULL, out); break;
    case KE_CAST: {
        char fn[32];
        snprintf(fn, sizeof fn, "cast<%s>", qk_dtype_name((qk_dtype)e->op));
        print_call(k, fn, e->a, NULL, out);
        break;
    }
    case KE_SUM: print_sum(k, e, out); break;
    case KE_QUANT:
        qk_buf_puts(out, "quantize(");
        print_expr(k, e->a, out);
        qk_buf_printf(out, ", %s)", e->fmt && e->fmt->name ? e->fmt->name : "?");
        break;
    case KE_HADAMARD:
        qk_buf_puts(out, "hadamard(");
        print_expr(k, e->a, out);
        qk_buf_printf(out, ", %s, %" PRId64 ", %" PRIu64 ")", var_name(k, e->hvar), e->hsize, e->hseed);
        break;
    default: qk_buf_printf(out, "<expr kind %d>", (int)e->kind);
    }
}

static const char *tname(const kir_kernel *k, int t);

/* `x: f32[K]`, `W: q4_0[N, K]`, `s: f32`; temps without a dtype: `g[M, N]`. */
static void print_tensor(const kir_kernel *k, const kir_tensor *t, qk_buf *out)
{
    qk_buf_puts(out, t->name ? t->name : "?");
    if (t->fmt) {
        qk_buf_printf(out, ": %s", t->fmt->name ? t->fmt->name : "?");
        if (t->fmt->code == QK_CODE_VQ && t->book >= 0)
            qk_buf_printf(out, "(%s)", tname(k, t->book));
    } else if (t->dtype != QK_DT_NONE) {
        qk_buf_printf(out, ": %s", qk_dtype_name(t->dtype));
    }
    if (t->rank == 0)
        return;
    qk_buf_puts(out, "[");
    for (int d = 0; d < t->rank; d++) {
        if (d)
            qk_buf_puts(out, ", ");
        kir_print_dim(k, t->dims[d], out);
    }
    qk_buf_puts(out, "]");
}

static void print_tensor_list(const kir_kernel *k, int from, int to, qk_buf *out)
{
    qk_buf_puts(out, "(");
    for (int i = from; i < to; i++) {
        if (i > from)
            qk_buf_puts(out, ", ");
        print_tensor(k, &k->tensors[i], out);
    }
    qk_buf_puts(out, ")");
}

/* `  # n < N, k < K`: the statement's variables, LHS first. */
static void print_extents(const kir_kernel *k, int s, qk_buf *out)
{
    int first = 1;
    for (int pass = 0; pass < 2; pass++) {
        for (int v = 0; v < k->nvars; v++) {
            if (k->vars[v].stmt != s || k->vars[v].is_reduction != pass)
                continue;
            qk_buf_printf(out, "%s%s < ", first ? "  # " : ", ", var_name(k, v));
            kir_print_dim(k, k->vars[v].extent, out);
            first = 0;
        }
    }
}

static void print_stmt(const kir_kernel *k, int s, qk_buf *out)
{
    const kir_stmt *st = &k->stmts[s];
    qk_buf_indent(out, 1);
    qk_buf_puts(out, st->tensor >= 0 && st->tensor < k->ntensors ? k->tensors[st->tensor].name : "?");
    if (st->nlhs > 0) {
        qk_buf_puts(out, "[");
        for (int i = 0; i < st->nlhs; i++)
            qk_buf_printf(out, "%s%s", i ? ", " : "", var_name(k, st->lhs[i]));
        qk_buf_puts(out, "]");
    }
    qk_buf_puts(out, " = ");
    print_expr(k, st->rhs, out);
    print_extents(k, s, out);
    qk_buf_puts(out, "\n");
}

/* `  schedule { tile n = 16, k = 256; parallel n; unroll 4 }` */
static void print_sched(const kir_sched *sc, qk_buf *out)
{
    const char *sep = " ";
    qk_buf_puts(out, "  schedule {");
    if (sc->ntiles > 0) {
        qk_buf_puts(out, " tile ");
        for (int i = 0; i < sc->ntiles; i++)
            qk_buf_printf(out, "%s%s = %d", i ? ", " : "", sc->tiles[i].index, sc->tiles[i].size);
        sep = "; ";
    }
    if (sc->parallel) {
        qk_buf_printf(out, "%sparallel %s", sep, sc->parallel);
        sep = "; ";
    }
    if (sc->unroll)
        qk_buf_printf(out, "%sunroll %d", sep, sc->unroll);
    qk_buf_puts(out, " }\n");
}

void kir_print_kernel(const kir_kernel *k, qk_buf *out)
{
    int nio = k->nparams + k->nresults;
    qk_buf_printf(out, "kernel %s", k->name ? k->name : "?");
    print_tensor_list(k, 0, k->nparams, out);
    qk_buf_puts(out, " -> ");
    print_tensor_list(k, k->nparams, nio, out);
    qk_buf_puts(out, "\n");
    for (int i = nio; i < k->ntensors; i++) {
        qk_buf_puts(out, "  temp ");
        print_tensor(k, &k->tensors[i], out);
        qk_buf_puts(out, "\n");
    }
    for (int s = 0; s < k->nstmts; s++)
        print_stmt(k, s, out);
    if (k->sched.present)
        print_sched(&k->sched, out);
}

void kir_print_program(const kir_program *p, qk_buf *out)
{
    for (int i = 0; i < p->nformats; i++) {
        qk_format_print(p->formats[i], out);
        qk_buf_puts(out, "\n");
    }
    for (int i = 0; i < p->nkernels; i++) {
        if (i || p->nformats)
            qk_buf_puts(out, "\n");
        kir_print_kernel(p->kernels[i], out);
    }
}

int64_t kir_dim_value(kir_dim d, const int64_t *dims)
{
    return (d.sym >= 0 ? dims[d.sym] : 0) + d.c;
}

/* ---- verifier ---- */

typedef struct vctx {
    const kir_kernel *k;
    char *err;
    size_t errsz;
    int stmt;            /* statement being checked, or -1 */
    unsigned char *scope; /* nvars flags: bound at this point of the walk */
} vctx;

static int vfail(vctx *v, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (v->err && v->errsz) {
        if (v->stmt >= 0)
            snprintf(v->err, v->errsz, "kernel %s, statement %d: %s", v->k->name ? v->k->name : "?", v->stmt,
                     msg);
        else
            snprintf(v->err, v->errsz, "kernel %s: %s", v->k->name ? v->k->name : "?", msg);
    }
    return -1;
}

static int dim_ok(const kir_kernel *k, kir_dim d)
{
    return d.sym >= -1 && d.sym < k->nsyms;
}

static int dims_equal(kir_dim a, kir_dim b)
{
    return a.sym == b.sym && a.c == b.c;
}

static const char *tname(const kir_kernel *k, int t)
{
    return t >= 0 && t < k->ntensors && k->tensors[t].name ? k->tensors[t].name : "?";
}

/* The tensor's kind matches its position, its type is complete. */
static int verify_tensor_type(vctx *v, int i)
{
    const kir_kernel *k = v->k;
    const kir_tensor *t = &k->tensors[i];
    kir_tensor_kind want = i < k->nparams ? KIR_PARAM : i < k->nparams + k->nresults ? KIR_RESULT : KIR_TEMP;
    if (t->kind != want)
        return vfail(v, "tensor '%s' is listed as a %s but has kind %d", tname(k, i),
                     want == KIR_PARAM ? "param" : want == KIR_RESULT ? "result" : "temp", (int)t->kind);
    if (t->rank < 0 || t->rank > QK_MAX_RANK)
        return vfail(v, "tensor '%s' has rank %d", tname(k, i), t->rank);
    for (int d = 0; d < t->rank; d++)
        if (!dim_ok(k, t->dims[d]))
            return vfail(v, "tensor '%s' dimension %d names symbol %d", tname(k, i), d, t->dims[d].sym);
    if (t->fmt && (t->kind == KIR_RESULT || (t->kind == KIR_TEMP && !t->materialized)))
        return vfail(v, "%s '%s' is quantized; only parameters and quantize() temps may be",
                     t->kind == KIR_RESULT ? "result" : "temp", tname(k, i));
    if (t->materialized && t->kind != KIR_TEMP)
        return vfail(v, "%s '%s' is marked materialized; only temps may be",
                     t->kind == KIR_RESULT ? "result" : "parameter", tname(k, i));
    if (t->fmt && t->rank < 1)
        return vfail(v, "quantized tensor '%s' has rank 0", tname(k, i));
    if (t->fmt && t->dtype != QK_DT_NONE)
        return vfail(v, "quantized tensor '%s' also has dtype %s", tname(k, i), qk_dtype_name(t->dtype));
    if (!t->fmt && t->dtype == QK_DT_NONE && t->kind != KIR_TEMP)
        return vfail(v, "tensor '%s' has neither a dtype nor a format", tname(k, i));
    if (t->dtype != QK_DT_NONE && (t->dtype < 0 || t->dtype >= QK_DT_COUNT))
        return vfail(v, "tensor '%s' has unknown dtype %d", tname(k, i), (int)t->dtype);
    return 0;
}

/* A VQ parameter names a dense parameter of the codebook's dtype, rank 3
 * [books, 2^bits, dim] or (one book) rank 2 [2^bits, dim]. */
static int verify_book(vctx *v, int i)
{
    const kir_kernel *k = v->k;
    const kir_tensor *t = &k->tensors[i];
    if (!t->fmt || t->fmt->code != QK_CODE_VQ || t->kind != KIR_PARAM)
        return 0;
    if (t->book < 0 || t->book >= k->nparams || t->book == i)
        return vfail(v, "VQ parameter '%s' has codebook tensor %d; it needs another parameter", tname(k, i),
                     t->book);
    const kir_tensor *c = &k->tensors[t->book];
    if (c->fmt || c->dtype != t->fmt->vq_dtype)
        return vfail(v, "codebook '%s' of '%s' is not a dense %s tensor", tname(k, t->book), tname(k, i),
                     qk_dtype_name(t->fmt->vq_dtype));
    if (c->rank != 3 && !(c->rank == 2 && t->fmt->vq_books == 1))
        return vfail(v, "codebook '%s' of '%s' has rank %d", tname(k, t->book), tname(k, i), c->rank);
    return 0;
}

/* Params are never defined; results and temps by exactly one statement,
 * the one def_stmt names. */
static int verify_tensor_def(vctx *v, int i)
{
    const kir_kernel *k = v->k;
    const kir_tensor *t = &k->tensors[i];
    int ndefs = 0;
    for (int s = 0; s < k->nstmts; s++)
        ndefs += k->stmts[s].tensor == i;
    if (t->kind == KIR_PARAM) {
        if (ndefs)
            return vfail(v, "parameter '%s' is assigned", tname(k, i));
        return t->def_stmt == -1 ? 0 : vfail(v, "parameter '%s' has def_stmt %d", tname(k, i), t->def_stmt);
    }
    if (ndefs != 1)
        return vfail(v, "%s '%s' is defined %d times, expected once", t->kind == KIR_RESULT ? "result" : "temp",
                     tname(k, i), ndefs);
    if (t->def_stmt < 0 || t->def_stmt >= k->nstmts || k->stmts[t->def_stmt].tensor != i)
        return vfail(v, "tensor '%s' has def_stmt %d, which does not define it", tname(k, i), t->def_stmt);
    return 0;
}

static int verify_tensors(vctx *v)
{
    const kir_kernel *k = v->k;
    if (k->nparams < 0 || k->nresults < 0 || k->nparams + k->nresults > k->ntensors)
        return vfail(v, "bad tensor counts: %d params, %d results, %d tensors", k->nparams, k->nresults,
                     k->ntensors);
    if (k->nresults == 0)
        return vfail(v, "no results");
    for (int i = 0; i < k->ntensors; i++)
        if (verify_tensor_type(v, i) || verify_tensor_def(v, i) || verify_book(v, i))
            return -1;
    return 0;
}

static int verify_vars(vctx *v)
{
    const kir_kernel *k = v->k;
    for (int i = 0; i < k->nvars; i++) {
        if (!dim_ok(k, k->vars[i].extent))
            return vfail(v, "variable '%s' has an extent with symbol %d", var_name(k, i), k->vars[i].extent.sym);
        if (k->vars[i].stmt < 0 || k->vars[i].stmt >= k->nstmts)
            return vfail(v, "variable '%s' belongs to statement %d of %d", var_name(k, i), k->vars[i].stmt,
                         k->nstmts);
    }
    return 0;
}

static int verify_index(vctx *v, const kir_expr *e, int p)
{
    const kir_kernel *k = v->k;
    const kir_index *ix = &e->idx[p];
    if (ix->nterms < 0 || ix->nterms > KIR_MAX_TERMS)
        return vfail(v, "index %d of '%s' has %d terms", p, tname(k, e->tensor), ix->nterms);
    for (int t = 0; t < ix->nterms; t++) {
        int var = ix->terms[t].var;
        if (var < 0 || var >= k->nvars)
            return vfail(v, "index %d of '%s' uses variable %d of %d", p, tname(k, e->tensor), var, k->nvars);
        if (k->vars[var].stmt != v->stmt)
            return vfail(v, "index %d of '%s' uses '%s' of statement %d", p, tname(k, e->tensor), var_name(k, var),
                         k->vars[var].stmt);
        if (!v->scope[var])
            return vfail(v, "index %d of '%s' uses '%s' outside the sum that binds it", p, tname(k, e->tensor),
                         var_name(k, var));
    }
    return 0;
}

static int verify_load(vctx *v, const kir_expr *e)
{
    const kir_kernel *k = v->k;
    if (e->tensor < 0 || e->tensor >= k->ntensors)
        return vfail(v, "load of tensor %d of %d", e->tensor, k->ntensors);
    const kir_tensor *t = &k->tensors[e->tensor];
    if (t->kind != KIR_PARAM && t->def_stmt >= v->stmt)
        return vfail(v, "'%s' is read before it is defined (by statement %d)", tname(k, e->tensor), t->def_stmt);
    if (t->rank > 0 && !e->idx)
        return vfail(v, "load of '%s' has no indices", tname(k, e->tensor));
    for (int p = 0; p < t->rank; p++)
        if (verify_index(v, e, p))
            return -1;
    return 0;
}

static int verify_expr(vctx *v, const kir_expr *e);

static int verify_sum(vctx *v, const kir_expr *e)
{
    const kir_kernel *k = v->k;
    if (e->nvars < 1 || !e->vars)
        return vfail(v, "sum without variables");
    for (int i = 0; i < e->nvars; i++) {
        int var = e->vars[i];
        if (var < 0 || var >= k->nvars)
            return vfail(v, "sum over variable %d of %d", var, k->nvars);
        if (k->vars[var].stmt != v->stmt)
            return vfail(v, "sum over '%s' of statement %d", var_name(k, var), k->vars[var].stmt);
        if (!k->vars[var].is_reduction)
            return vfail(v, "sum over '%s', which is not a reduction variable", var_name(k, var));
        if (v->scope[var])
            return vfail(v, "sum over '%s', which is already bound", var_name(k, var));
        v->scope[var] = 1;
    }
    int rc = verify_expr(v, e->a);
    for (int i = 0; i < e->nvars; i++)
        v->scope[e->vars[i]] = 0;
    return rc;
}

static int verify_expr(vctx *v, const kir_expr *e)
{
    if (!e)
        return vfail(v, "missing operand");
    switch (e->kind) {
    case KE_CONST: return 0;
    case KE_LOAD: return verify_load(v, e);
    case KE_BIN:
        if (e->op < 0 || e->op >= KB_COUNT)
            return vfail(v, "unknown binary op %d", e->op);
        return verify_expr(v, e->a) || verify_expr(v, e->b) ? -1 : 0;
    case KE_UN:
        if (e->op < 0 || e->op >= KU_COUNT)
            return vfail(v, "unknown unary op %d", e->op);
        return verify_expr(v, e->a);
    case KE_CAST:
        if (e->op < 0 || e->op >= QK_DT_COUNT)
            return vfail(v, "cast to unknown dtype %d", e->op);
        return verify_expr(v, e->a);
    case KE_SUM: return verify_sum(v, e);
    case KE_QUANT:
    case KE_HADAMARD:
        return vfail(v, "%s() is not the whole right-hand side of its statement",
                     e->kind == KE_QUANT ? "quantize" : "hadamard");
    }
    return vfail(v, "unknown expression kind %d", (int)e->kind);
}

static int has_sum(const kir_expr *e)
{
    return e && (e->kind == KE_SUM || has_sum(e->a) || has_sum(e->b));
}

/* quantize(): the temp has the format, rank >= 1 and no dtype, and the
 * format can be quantized in a kernel. */
static int verify_quant(vctx *v, const kir_expr *e, const kir_tensor *t)
{
    char why[256];
    if (!e->fmt)
        return vfail(v, "quantize() without a format");
    if (t->fmt != e->fmt)
        return vfail(v, "temp '%s' does not have the format of its quantize()", t->name);
    if (t->rank < 1 || t->dtype != QK_DT_NONE)
        return vfail(v, "quantized temp '%s' needs rank >= 1 and no dtype", t->name);
    if (!qk_format_kernel_quantizable(e->fmt, why, sizeof why))
        return vfail(v, "format '%s' cannot be quantized in a kernel: %s", e->fmt->name ? e->fmt->name : "?", why);
    return 0;
}

/* hadamard(): an f32 temp, an LHS transform variable, a size 0 or 2^n. */
static int verify_hadamard(vctx *v, const kir_expr *e, const kir_stmt *st, const kir_tensor *t)
{
    int lhs = 0;
    for (int i = 0; i < st->nlhs; i++)
        lhs |= st->lhs[i] == e->hvar;
    if (!lhs)
        return vfail(v, "hadamard() variable %d is not a left-hand side variable", e->hvar);
    if (e->hsize < 0 || (e->hsize & (e->hsize - 1)) != 0)
        return vfail(v, "hadamard() size %" PRId64 " is not 0 or a power of two", e->hsize);
    if (t->fmt || t->dtype != QK_DT_F32)
        return vfail(v, "hadamard() temp '%s' is not a dense f32 tensor", t->name);
    return 0;
}

/* The right-hand side. One that is quantize() or hadamard() defines a
 * materialized temp from an operand without sums; any other defines a
 * tensor that is not materialized. */
static int verify_rhs(vctx *v, const kir_stmt *st)
{
    const kir_tensor *t = &v->k->tensors[st->tensor];
    const kir_expr *e = st->rhs;
    int special = e && (e->kind == KE_QUANT || e->kind == KE_HADAMARD);
    if (!special && t->materialized)
        return vfail(v, "temp '%s' is materialized but not defined by quantize() or hadamard()", t->name);
    if (!special)
        return verify_expr(v, e);
    const char *fn = e->kind == KE_QUANT ? "quantize" : "hadamard";
    if (t->kind != KIR_TEMP || !t->materialized)
        return vfail(v, "%s() defines '%s', which is not a materialized temp", fn, t->name);
    if (has_sum(e->a))
        return vfail(v, "the operand of %s() contains a sum", fn);
    if (e->kind == KE_QUANT ? verify_quant(v, e, t) : verify_hadamard(v, e, st, t))
        return -1;
    return verify_expr(v, e->a);
}

/* LHS: one distinct non-reduction variable of this statement per
 * dimension, ranging over exactly that dimension. */
static int verify_lhs(vctx *v, const kir_stmt *st)
{
    const kir_kernel *k = v->k;
    const kir_tensor *t = &k->tensors[st->tensor];
    if (st->nlhs != t->rank)
        return vfail(v, "'%s' has rank %d but %d LHS indices", t->name, t->rank, st->nlhs);
    for (int i = 0; i < st->nlhs; i++) {
        int var = st->lhs[i];
        if (var < 0 || var >= k->nvars)
            return vfail(v, "LHS index %d is variable %d of %d", i, var, k->nvars);
        if (k->vars[var].stmt != v->stmt)
            return vfail(v, "LHS variable '%s' belongs to statement %d", var_name(k, var), k->vars[var].stmt);
        if (k->vars[var].is_reduction)
            return vfail(v, "LHS variable '%s' is a reduction variable", var_name(k, var));
        if (v->scope[var])
            return vfail(v, "LHS variable '%s' appears twice", var_name(k, var));
        if (!dims_equal(k->vars[var].extent, t->dims[i]))
            return vfail(v, "LHS variable '%s' does not range over dimension %d of '%s'", var_name(k, var), i,
                         t->name);
        v->scope[var] = 1;
    }
    return 0;
}

static int verify_stmt(vctx *v, int s)
{
    const kir_kernel *k = v->k;
    const kir_stmt *st = &k->stmts[s];
    v->stmt = s;
    memset(v->scope, 0, (size_t)k->nvars);
    if (st->tensor < 0 || st->tensor >= k->ntensors)
        return vfail(v, "assigns tensor %d of %d", st->tensor, k->ntensors);
    if (k->tensors[st->tensor].kind == KIR_PARAM)
        return vfail(v, "assigns parameter '%s'", tname(k, st->tensor));
    if (st->nlhs > 0 && !st->lhs)
        return vfail(v, "LHS indices missing");
    if (verify_lhs(v, st) || verify_rhs(v, st))
        return -1;
    for (int var = 0; var < k->nvars; var++)
        if (k->vars[var].stmt == s && !k->vars[var].is_reduction && !v->scope[var])
            return vfail(v, "variable '%s' is neither on the LHS nor bound by a sum", var_name(k, var));
    return 0;
}

int kir_verify(const kir_kernel *k, char *err, size_t errsz)
{
    vctx v = {.k = k, .err = err, .errsz = errsz, .stmt = -1};
    if (k->nsyms < 0 || k->nvars < 0 || k->nstmts < 0 || k->ntensors < 0)
        return vfail(&v, "negative counts");
    for (int s = 0; s < k->nstmts; s++)
        if (k->stmts[s].tensor < 0 || k->stmts[s].tensor >= k->ntensors)
            return v.stmt = s, vfail(&v, "assigns tensor %d of %d", k->stmts[s].tensor, k->ntensors);
    if (verify_tensors(&v) || verify_vars(&v))
        return -1;
    v.scope = qk_xcalloc((size_t)k->nvars + 1, 1);
    int rc = 0;
    for (int s = 0; s < k->nstmts && rc == 0; s++)
        rc = verify_stmt(&v, s);
    free(v.scope);
    return rc;
}

/* ---- launch-time binding ---- */

static int bfail(char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errsz)
        vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
    return -1;
}

/* First pass over one view: rank, non-negative shape, and binding of the
 * symbols its dimensions name first. from[sym] records the binder. */
static int bind_view(const kir_kernel *k, int i, const kir_view *vw, int64_t *dims, int *from, char *err,
                     size_t errsz)
{
    const kir_tensor *t = &k->tensors[i];
    if (vw->rank != t->rank)
        return bfail(err, errsz, "tensor '%s' has rank %d, expected %d", t->name, vw->rank, t->rank);
    for (int d = 0; d < t->rank; d++) {
        kir_dim kd = t->dims[d];
        if (vw->shape[d] < 0)
            return bfail(err, errsz, "tensor '%s' dimension %d has negative size %" PRId64, t->name, d,
                         vw->shape[d]);
        if (kd.sym < 0 || from[kd.sym] >= 0)
            continue;
        dims[kd.sym] = vw->shape[d] - kd.c;
        from[kd.sym] = i;
        if (dims[kd.sym] < 0)
            return bfail(err, errsz, "negative dimension: '%s' dimension %d is %" PRId64 ", which makes %s = %" PRId64,
                         t->name, d, vw->shape[d], sym_name(k, kd.sym), dims[kd.sym]);
    }
    return 0;
}

/* Second pass: every dimension of the view equals its computed value. */
static int check_view(const kir_kernel *k, int i, const kir_view *vw, const int64_t *dims, const int *from,
                      char *err, size_t errsz)
{
    const kir_tensor *t = &k->tensors[i];
    for (int d = 0; d < t->rank; d++) {
        kir_dim kd = t->dims[d];
        int64_t want = kir_dim_value(kd, dims);
        if (vw->shape[d] == want)
            continue;
        if (kd.sym < 0)
            return bfail(err, errsz, "shape mismatch: %s dimension %d is %" PRId64 ", expected %" PRId64, t->name,
                         d, vw->shape[d], want);
        qk_buf b = {0};
        kir_print_dim(k, kd, &b);
        if (kd.c != 0)
            qk_buf_printf(&b, " = %" PRId64 " (%s = %" PRId64 " from %s)", want, sym_name(k, kd.sym), dims[kd.sym],
                          tname(k, from[kd.sym]));
        else
            qk_buf_printf(&b, " = %" PRId64 " (from %s)", want, tname(k, from[kd.sym]));
        bfail(err, errsz, "shape mismatch: %s dimension %d is %" PRId64 " but %s", t->name, d, vw->shape[d], b.s);
        qk_buf_free(&b);
        return -1;
    }
    return 0;
}

/* Temps and variable extents computed from the symbols are >= 0. */
static int check_derived(const kir_kernel *k, const int64_t *dims, char *err, size_t errsz)
{
    for (int i = k->nparams + k->nresults; i < k->ntensors; i++)
        for (int d = 0; d < k->tensors[i].rank; d++)
            if (kir_dim_value(k->tensors[i].dims[d], dims) < 0)
                return bfail(err, errsz, "temp '%s' dimension %d is negative (%" PRId64 ")", tname(k, i), d,
                             kir_dim_value(k->tensors[i].dims[d], dims));
    for (int v = 0; v < k->nvars; v++)
        if (kir_dim_value(k->vars[v].extent, dims) < 0)
            return bfail(err, errsz, "index '%s' has negative extent %" PRId64, var_name(k, v),
                         kir_dim_value(k->vars[v].extent, dims));
    return 0;
}

typedef struct rctx {
    const kir_kernel *k;
    const int64_t *dims;
    char *err;
    size_t errsz;
} rctx;

/* [lo, hi] of an affine index over the variables' ranges (all extents
 * > 0 here). Returns -1 on int64 overflow. */
static int index_bounds(const rctx *r, const kir_index *ix, int64_t *lo, int64_t *hi)
{
    *lo = *hi = ix->c;
    for (int t = 0; t < ix->nterms; t++) {
        int64_t last = kir_dim_value(r->k->vars[ix->terms[t].var].extent, r->dims) - 1, span;
        if (__builtin_mul_overflow(ix->terms[t].coef, last, &span))
            return -1;
        if (__builtin_add_overflow(span > 0 ? *hi : *lo, span, span > 0 ? hi : lo))
            return -1;
    }
    return 0;
}

static int range_fail(const rctx *r, const kir_expr *e, int p, int64_t reach, int64_t size)
{
    const kir_tensor *t = &r->k->tensors[e->tensor];
    qk_buf b = {0};
    qk_buf_puts(&b, t->name);
    print_indices(r->k, e->idx, t->rank, &b);
    if (e->loc.line > 0)
        qk_buf_printf(&b, " (at %s:%d:%d)", e->loc.file ? e->loc.file : "?", e->loc.line, e->loc.col);
    bfail(r->err, r->errsz, "out of range: %s reaches %" PRId64 " in dimension %d of size %" PRId64, b.s, reach, p,
          size);
    qk_buf_free(&b);
    return -1;
}

static int check_load_range(const rctx *r, const kir_expr *e)
{
    const kir_tensor *t = &r->k->tensors[e->tensor];
    for (int p = 0; p < t->rank; p++) {
        int64_t lo, hi, size = kir_dim_value(t->dims[p], r->dims);
        if (index_bounds(r, &e->idx[p], &lo, &hi))
            return range_fail(r, e, p, e->idx[p].c < 0 ? INT64_MIN : INT64_MAX, size);
        if (lo < 0)
            return range_fail(r, e, p, lo, size);
        if (hi >= size)
            return range_fail(r, e, p, hi, size);
    }
    return 0;
}

/* Loads inside a sum over an empty range never execute: only loads whose
 * enclosing variables all have extent > 0 are checked. */
static int check_ranges(const rctx *r, const kir_expr *e)
{
    switch (e->kind) {
    case KE_LOAD: return check_load_range(r, e);
    case KE_BIN: return check_ranges(r, e->a) || check_ranges(r, e->b) ? -1 : 0;
    case KE_UN:
    case KE_CAST:
    case KE_QUANT:
    case KE_HADAMARD: return check_ranges(r, e->a);
    case KE_SUM:
        for (int i = 0; i < e->nvars; i++)
            if (kir_dim_value(r->k->vars[e->vars[i]].extent, r->dims) == 0)
                return 0;
        return check_ranges(r, e->a);
    default: return 0;
    }
}

static int check_stmt_ranges(const rctx *r, const kir_stmt *st)
{
    for (int i = 0; i < st->nlhs; i++)
        if (kir_dim_value(r->k->vars[st->lhs[i]].extent, r->dims) == 0)
            return 0; /* the statement does nothing */
    return check_ranges(r, st->rhs);
}

static void print_shape(const int64_t *shape, int rank, qk_buf *out)
{
    qk_buf_puts(out, "[");
    for (int d = 0; d < rank; d++)
        qk_buf_printf(out, "%s%" PRId64, d ? ", " : "", shape[d]);
    qk_buf_puts(out, "]");
}

/* The codebook view of VQ parameter i has the shape its format needs:
 * [books, 2^bits, dim], or [2^bits, dim] for a rank-2 codebook. */
static int check_book_view(const kir_kernel *k, int i, const kir_view *views, char *err, size_t errsz)
{
    const kir_tensor *t = &k->tensors[i];
    const kir_view *cv = &views[t->book];
    int64_t want[3];
    int r = 0;
    if (cv->rank != 2)
        want[r++] = t->fmt->vq_books;
    want[r++] = (int64_t)1 << t->fmt->bits;
    want[r++] = t->fmt->vq_dim;
    int same = cv->rank == r;
    for (int d = 0; same && d < r; d++)
        same = cv->shape[d] == want[d];
    if (same)
        return 0;
    qk_buf got = {0}, need = {0};
    print_shape(cv->shape, cv->rank, &got);
    print_shape(want, r, &need);
    bfail(err, errsz, "codebook tensor '%s' has shape %s, format '%s' needs %s", tname(k, t->book), got.s,
          t->fmt->name ? t->fmt->name : "?", need.s);
    qk_buf_free(&got);
    qk_buf_free(&need);
    return -1;
}

static int check_books(const kir_kernel *k, const kir_view *views, char *err, size_t errsz)
{
    for (int i = 0; i < k->nparams; i++) {
        const kir_tensor *t = &k->tensors[i];
        if (t->fmt && t->fmt->code == QK_CODE_VQ && t->book >= 0 && t->book < k->nparams &&
            check_book_view(k, i, views, err, errsz))
            return -1;
    }
    return 0;
}

/* hadamard(): the transform variable's extent is a power of two (size 0)
 * or a multiple of the size. */
static int check_hadamards(const kir_kernel *k, const int64_t *dims, char *err, size_t errsz)
{
    for (int s = 0; s < k->nstmts; s++) {
        const kir_expr *e = k->stmts[s].rhs;
        if (!e || e->kind != KE_HADAMARD || e->hvar < 0 || e->hvar >= k->nvars)
            continue;
        int64_t n = kir_dim_value(k->vars[e->hvar].extent, dims);
        if (e->hsize == 0 && (n & (n - 1)) != 0)
            return bfail(err, errsz, "hadamard over '%s' (statement %d) needs a power-of-two extent, got %" PRId64,
                         var_name(k, e->hvar), s, n);
        if (e->hsize > 0 && n % e->hsize != 0)
            return bfail(err, errsz, "hadamard size %" PRId64 " does not divide the extent %" PRId64 " of '%s' "
                         "(statement %d)", e->hsize, n, var_name(k, e->hvar), s);
    }
    return 0;
}

int kir_bind(const kir_kernel *k, const kir_view *views, int64_t *dims_out, char *err, size_t errsz)
{
    int nio = k->nparams + k->nresults, rc = 0;
    int *from = qk_xmalloc(sizeof(int) * (size_t)(k->nsyms + 1));
    for (int s = 0; s < k->nsyms; s++)
        from[s] = -1, dims_out[s] = 0;
    for (int i = 0; i < nio && rc == 0; i++)
        rc = bind_view(k, i, &views[i], dims_out, from, err, errsz);
    for (int s = 0; s < k->nsyms && rc == 0; s++)
        if (from[s] < 0)
            rc = bfail(err, errsz, "dimension '%s' is not the size of any parameter or result", sym_name(k, s));
    for (int i = 0; i < nio && rc == 0; i++)
        rc = check_view(k, i, &views[i], dims_out, from, err, errsz);
    free(from);
    if (rc == 0)
        rc = check_derived(k, dims_out, err, errsz);
    if (rc == 0)
        rc = check_books(k, views, err, errsz);
    if (rc == 0)
        rc = check_hadamards(k, dims_out, err, errsz);
    rctx r = {k, dims_out, err, errsz};
    for (int s = 0; s < k->nstmts && rc == 0; s++)
        rc = check_stmt_ranges(&r, &k->stmts[s]);
    return rc;
}

/* sema.c — semantic checks over the whole program (all files, one global
 * namespace of formats and kernels). Third stage of the frontend: after
 * it, every name in the AST is resolved (tensors, formats, index
 * variables, built-ins), every index variable has an extent, and
 * compiler/kir_build.c can lower the tree without further checks.
 *
 * Each format is checked and finished by sema_format.c before any kernel;
 * every format reaching kir_build is finished (qk_format_finish).
 *
 * Index extents are inferred from the positions where a variable appears
 * alone (coefficient 1, no other term, no constant): an LHS position of a
 * result, or a position of a loaded tensor. All such positions must agree
 * exactly (same symbol, same constant).
 *
 * quantize() and hadamard() are resolved here from calls; both must be the
 * whole RHS of a statement that defines a new temp, which becomes
 * materialized (quantized, or f32). A VQ parameter's codebook "(C)" is
 * resolved to another parameter and its constant dims are checked. */
#include "frontend/ast.h"

#include <stdlib.h>
#include <string.h>

typedef struct sema {
    qk_arena *a;
    qk_diags *d;
    int nformats, nkernels;
    ast_format **formats;
    ast_kernel **kernels;
} sema;

/* State while checking one statement of one kernel. */
typedef struct kctx {
    sema *s;
    ast_kernel *k;
    int stmt;
    ast_stmt *st;
    int nscope; /* enclosing summation variables, innermost last */
    int *scope;
    int errors_before;
    ast_expr *whole_rhs; /* the RHS when the statement defines a new temp */
} kctx;

#define ERR(s, loc, ...) qk_error((s)->d, (loc), __VA_ARGS__)

/* "3:14", or "file:3:14" when loc is in another file than here. */
static const char *where(sema *s, qk_loc loc, qk_loc here)
{
    if (loc.file && here.file && strcmp(loc.file, here.file) != 0)
        return qk_asprintf(s->a, "%s:%d:%d", loc.file, loc.line, loc.col);
    return qk_asprintf(s->a, "%d:%d", loc.line, loc.col);
}

void sema_dim_str(const ast_kernel *k, kir_dim dim, char *buf, size_t n)
{
    if (dim.sym < 0)
        snprintf(buf, n, "%lld", (long long)dim.c);
    else if (dim.c == 0)
        snprintf(buf, n, "%s", k->syms[dim.sym]);
    else
        snprintf(buf, n, "%s%+lld", k->syms[dim.sym], (long long)dim.c);
}

/* ---- formats ---- */

static ast_format *find_format(sema *s, const char *name)
{
    for (int i = 0; i < s->nformats; i++)
        if (strcmp(s->formats[i]->name, name) == 0)
            return s->formats[i];
    return NULL;
}

static void declare_format(sema *s, ast_format *f)
{
    ast_format *old = find_format(s, f->name);
    if (old) {
        ERR(s, f->loc, "redefinition of format '%s' (first defined at %s)", f->name, where(s, old->loc, f->loc));
        return;
    }
    if (qk_dtype_from_name(f->name) != QK_DT_NONE) {
        ERR(s, f->loc, "format name '%s' is a built-in type", f->name);
        return;
    }
    sema_format(s->a, s->d, f);
    *(ast_format **)ast_push(s->a, &s->formats, &s->nformats, sizeof f) = f;
}

/* ---- kernel declarations ---- */

static ast_tensor *find_tensor(ast_kernel *k, const char *name)
{
    for (int i = 0; i < k->ntensors; i++)
        if (strcmp(k->tensors[i]->name, name) == 0)
            return k->tensors[i];
    return NULL;
}

static int sym_index(sema *s, ast_kernel *k, const char *sym)
{
    for (int i = 0; i < k->nsyms; i++)
        if (strcmp(k->syms[i], sym) == 0)
            return i;
    *(const char **)ast_push(s->a, &k->syms, &k->nsyms, sizeof sym) = sym;
    return k->nsyms - 1;
}

static int check_dims(sema *s, ast_kernel *k, ast_tensor *t)
{
    if (t->rank > QK_MAX_RANK) {
        ERR(s, t->dims[QK_MAX_RANK].loc, "tensor '%s' has rank %d; the maximum is %d", t->name, t->rank,
            QK_MAX_RANK);
        return -1;
    }
    int bad = 0;
    for (int i = 0; i < t->rank; i++) {
        ast_dim *dm = &t->dims[i];
        if (!dm->sym && (dm->c < 1 || dm->c > AST_MAX_DIM)) {
            ERR(s, dm->loc, "dimension %lld out of range 1..%lld", (long long)dm->c, AST_MAX_DIM);
            bad = -1;
        } else if (dm->sym && (dm->c < -AST_MAX_DIM || dm->c > AST_MAX_DIM)) {
            ERR(s, dm->loc, "dimension offset %lld is out of range", (long long)dm->c);
            bad = -1;
        }
        t->kdims[i] = (kir_dim){dm->sym ? sym_index(s, k, dm->sym) : -1, dm->c};
    }
    return bad;
}

static int is_vq(const ast_format *f)
{
    return f && f->ok && f->f.code == QK_CODE_VQ;
}

/* A codebook "(C)" only on VQ formats, and always on them. */
static void check_book_use(sema *s, ast_tensor *t)
{
    if (t->book.s && t->fmt && !is_vq(t->fmt) && t->fmt->ok)
        ERR(s, t->book.loc, "format '%s' takes no codebook ('(%s)' is only for VQ formats)", t->type, t->book.s);
    else if (t->book.s && !t->fmt && t->dtype != QK_DT_NONE)
        ERR(s, t->book.loc, "dense tensor '%s' takes no codebook ('(%s)' is only for VQ formats)", t->name,
            t->book.s);
    else if (!t->book.s && is_vq(t->fmt) && t->kind == KIR_PARAM)
        ERR(s, t->type_loc, "VQ format '%s' needs its codebook parameter: write '%s: %s(C)[...]'", t->type, t->name,
            t->type);
}

/* type = DTYPE | FORMAT ["(" CODEBOOK ")"] */
static void check_type(sema *s, ast_tensor *t)
{
    t->book_index = -1;
    t->dtype = qk_dtype_from_name(t->type);
    if (t->dtype == QK_DT_U8) {
        ERR(s, t->type_loc, "'u8' is not a tensor element type (use f32, f16, bf16, i8 or i32)");
        return;
    }
    if (t->dtype != QK_DT_NONE) {
        check_book_use(s, t);
        return;
    }
    t->fmt = find_format(s, t->type);
    if (!t->fmt)
        ERR(s, t->type_loc, "unknown format '%s'", t->type);
    else if (t->kind == KIR_RESULT)
        ERR(s, t->type_loc, "results cannot be quantized yet ('%s' has format '%s')", t->name, t->type);
    else if (t->rank == 0)
        ERR(s, t->type_loc, "quantized tensor '%s' must have rank at least 1 (its last dimension is the block axis)",
            t->name);
    else
        check_book_use(s, t);
}

static void add_tensor(sema *s, ast_kernel *k, ast_tensor *t)
{
    t->index = k->ntensors;
    *(ast_tensor **)ast_push(s->a, &k->tensors, &k->ntensors, sizeof t) = t;
}

static void declare_tensor(sema *s, ast_kernel *k, ast_tensor *t, kir_tensor_kind kind)
{
    ast_tensor *old = find_tensor(k, t->name);
    if (old)
        ERR(s, t->loc, "redefinition of '%s' (first declared at %s)", t->name, where(s, old->loc, t->loc));
    t->kind = kind;
    t->def_stmt = -1;
    check_type(s, t);
    t->dims_ok = check_dims(s, k, t) == 0;
    if (!old)
        add_tensor(s, k, t);
}

/* The codebook shape a VQ format needs for a codebook tensor of rank 2
 * ([2^bits, dim], one book) or 3 ([books, 2^bits, dim]), as text. */
static const char *book_shape(sema *s, const qk_format *q, int rank, int64_t *shape)
{
    int i = 0;
    if (rank == 3)
        shape[i++] = q->vq_books;
    shape[i++] = (int64_t)1 << q->bits;
    shape[i] = q->vq_dim;
    if (rank == 3)
        return qk_asprintf(s->a, "[%lld, %lld, %lld]", (long long)shape[0], (long long)shape[1], (long long)shape[2]);
    return qk_asprintf(s->a, "[%lld, %lld]", (long long)shape[0], (long long)shape[1]);
}

static int check_book_rank(sema *s, ast_tensor *w, ast_tensor *c)
{
    const qk_format *q = &w->fmt->f;
    int64_t shape[3];
    if (c->rank == 3 || (c->rank == 2 && q->vq_books == 1))
        return 0;
    if (q->vq_books == 1)
        ERR(s, c->loc, "codebook '%s' of format '%s' must have rank 2 %s or 3 %s, found rank %d", c->name, w->type,
            book_shape(s, q, 2, shape), book_shape(s, q, 3, shape), c->rank);
    else
        ERR(s, c->loc, "codebook '%s' of format '%s' must have rank 3 %s, found rank %d", c->name, w->type,
            book_shape(s, q, 3, shape), c->rank);
    return -1;
}

/* W: fmt(C)[...]: C is a dense parameter of the format's codebook dtype,
 * rank 2 or 3; its constant dims must match here, symbolic ones are
 * checked by kir_bind at launch. */
static void check_book(sema *s, ast_kernel *k, ast_tensor *w)
{
    const qk_format *q = &w->fmt->f;
    ast_tensor *c = find_tensor(k, w->book.s);
    if (!c || c->kind != KIR_PARAM || c == w) {
        ERR(s, w->book.loc, "codebook '%s' is not %sparameter of kernel '%s'", w->book.s, c == w ? "another " : "a ",
            k->name);
        return;
    }
    if (c->fmt || c->dtype != q->vq_dtype) {
        ERR(s, c->type_loc, "codebook '%s' of format '%s' must be a dense %s tensor, found %s", c->name, w->type,
            qk_dtype_name(q->vq_dtype), c->type);
        return;
    }
    if (check_book_rank(s, w, c) < 0 || !c->dims_ok)
        return;
    int64_t shape[3];
    const char *want = book_shape(s, q, c->rank, shape);
    for (int j = 0; j < c->rank; j++)
        if (!c->dims[j].sym && c->dims[j].c != shape[j]) {
            ERR(s, c->dims[j].loc, "codebook '%s' dimension %d is %lld, format '%s' needs %s", c->name, j,
                (long long)c->dims[j].c, w->type, want);
            return;
        }
    w->book_index = c->index;
}

static void check_books(sema *s, ast_kernel *k)
{
    for (int i = 0; i < k->nparams; i++) {
        ast_tensor *t = &k->params[i];
        if (t->book.s && is_vq(t->fmt) && t->rank >= 1)
            check_book(s, k, t);
    }
}

/* A result dim K+c needs K bound by a parameter. */
static void check_result_dims(sema *s, ast_kernel *k, int nparam_syms)
{
    for (int i = 0; i < k->nresults; i++) {
        ast_tensor *t = &k->results[i];
        for (int j = 0; j < t->rank && j < QK_MAX_RANK; j++)
            if (t->dims[j].sym && t->dims[j].c != 0 && t->kdims[j].sym >= nparam_syms)
                ERR(s, t->dims[j].loc, "dimension symbol '%s' of result '%s' must appear in a parameter when used "
                    "with an offset", t->dims[j].sym, t->name);
    }
}

/* ---- index variables ---- */

static int new_var(kctx *c, const char *name, qk_loc loc, int is_reduction)
{
    ast_kernel *k = c->k;
    ast_var *v = ast_push(c->s->a, &k->vars, &k->nvars, sizeof *v);
    *v = (ast_var){.name = name, .loc = loc, .stmt = c->stmt, .is_reduction = is_reduction};
    return k->nvars - 1;
}

static int lhs_var(kctx *c, const char *name)
{
    for (int i = 0; i < c->st->nlhs; i++)
        if (strcmp(c->st->lhs[i], name) == 0)
            return c->st->lhs_vars[i];
    return -1;
}

/* Innermost summation variable named name, else the LHS one, else -1. */
static int lookup_var(kctx *c, const char *name)
{
    for (int i = c->nscope - 1; i >= 0; i--)
        if (strcmp(c->k->vars[c->scope[i]].name, name) == 0)
            return c->scope[i];
    return lhs_var(c, name);
}

static int same_dim(kir_dim a, kir_dim b)
{
    return a.sym == b.sym && a.c == b.c;
}

/* Records that var ranges over dim, as seen at loc. */
static void infer(kctx *c, int var, kir_dim dim, qk_loc loc)
{
    ast_var *v = &c->k->vars[var];
    if (!v->has_extent) {
        v->has_extent = 1;
        v->extent = dim;
        v->extent_loc = loc;
        return;
    }
    if (same_dim(v->extent, dim))
        return;
    char here[64], there[64];
    sema_dim_str(c->k, dim, here, sizeof here);
    sema_dim_str(c->k, v->extent, there, sizeof there);
    ERR(c->s, loc, "index '%s' ranges over %s here but over %s at %s", v->name, here, there,
        where(c->s, v->extent_loc, loc));
}

/* ---- expressions ---- */

static void check_expr(kctx *c, ast_expr *e);

static int defined_later(kctx *c, const char *name)
{
    for (int i = c->stmt; i < c->k->nstmts; i++)
        if (strcmp(c->k->stmts[i].name, name) == 0)
            return 1;
    return 0;
}

/* Resolves the load's tensor; NULL (reported) when it cannot be read. */
static ast_tensor *load_target(kctx *c, ast_expr *e)
{
    if (!e->has_brackets && lookup_var(c, e->name) >= 0) {
        ERR(c->s, e->loc, "index '%s' cannot be used as a value", e->name);
        return NULL;
    }
    ast_tensor *t = find_tensor(c->k, e->name);
    if (!t && defined_later(c, e->name))
        ERR(c->s, e->loc, "temp '%s' is used before it is defined", e->name);
    else if (!t)
        ERR(c->s, e->loc, "unknown tensor '%s'", e->name);
    else if (t->kind == KIR_RESULT)
        ERR(c->s, e->loc, "cannot read result '%s' (compute it into a temp and read that)", e->name);
    else if (e->nidx != t->rank)
        ERR(c->s, e->loc, "'%s' has rank %d but is indexed with %d ind%s", t->name, t->rank, e->nidx,
            e->nidx == 1 ? "ex" : "ices");
    else
        return t;
    return NULL;
}

static void check_index(kctx *c, ast_tensor *t, int pos, ast_index *ix)
{
    for (int i = 0; i < ix->nterms; i++) {
        ast_term *tm = &ix->terms[i];
        tm->var = lookup_var(c, tm->name);
        if (tm->var < 0)
            ERR(c->s, tm->loc, "index '%s' is not bound: it is neither a left-hand side index nor bound by an "
                "enclosing sum", tm->name);
    }
    int alone = ix->nterms == 1 && ix->terms[0].coef == 1 && ix->c == 0;
    if (alone && ix->terms[0].var >= 0 && t->dims_ok)
        infer(c, ix->terms[0].var, t->kdims[pos], ix->terms[0].loc);
    if (t->fmt && pos == t->rank - 1 && !alone)
        ERR(c->s, ix->loc, "the last (block) dimension of quantized tensor '%s' must be indexed by a plain index "
            "variable", t->name);
}

static void check_load(kctx *c, ast_expr *e)
{
    ast_tensor *t = load_target(c, e);
    if (!t)
        return;
    e->tensor = t->index;
    for (int i = 0; i < e->nidx; i++)
        check_index(c, t, i, &e->idx[i]);
}

static const struct builtin {
    const char *name;
    ast_expr_kind kind;
    int op, nargs;
} builtins[] = {
    {"relu", AST_UN, KU_RELU, 1}, {"gelu", AST_UN, KU_GELU, 1}, {"silu", AST_UN, KU_SILU, 1},
    {"exp", AST_UN, KU_EXP, 1},   {"tanh", AST_UN, KU_TANH, 1}, {"abs", AST_UN, KU_ABS, 1},
    {"sqrt", AST_UN, KU_SQRT, 1}, {"max", AST_BIN, KB_MAX, 2},  {"min", AST_BIN, KB_MIN, 2},
    {"f32", AST_CAST, QK_DT_F32, 1}, {"f16", AST_CAST, QK_DT_F16, 1}, {"bf16", AST_CAST, QK_DT_BF16, 1},
    {"i8", AST_CAST, QK_DT_I8, 1},   {"i32", AST_CAST, QK_DT_I32, 1},
};

/* ---- quantize() and hadamard() ---- */

static const ast_expr *first_sum(const ast_expr *e)
{
    if (!e || e->kind == AST_SUM)
        return e;
    if (e->kind == AST_CALL) {
        const ast_expr *found = NULL;
        for (int i = 0; i < e->nargs && !found; i++)
            found = first_sum(e->args[i]);
        return found;
    }
    const ast_expr *a = first_sum(e->a);
    return a ? a : first_sum(e->b);
}

/* The operand of quantize()/hadamard(): checked, and without sums. */
static void check_operand(kctx *c, ast_expr *call, ast_expr *e)
{
    check_expr(c, e);
    const ast_expr *sum = first_sum(e);
    if (sum)
        ERR(c->s, sum->loc, "the operand of %s() cannot contain a sum (compute the sum into a temp first)",
            call->name);
}

/* A bare name argument (parsed as a load without brackets), else NULL. */
static const char *bare_name(const ast_expr *e)
{
    return e->kind == AST_LOAD && !e->has_brackets ? e->name : NULL;
}

/* quantize(E, FMT) */
static void check_quantize(kctx *c, ast_expr *e)
{
    if (e->nargs != 2) {
        ERR(c->s, e->loc, "'quantize' takes 2 arguments (an expression and a format), found %d", e->nargs);
        return;
    }
    check_operand(c, e, e->args[0]);
    ast_expr *arg = e->args[1];
    const char *name = bare_name(arg);
    ast_format *fmt = name ? find_format(c->s, name) : NULL;
    if (!name) {
        ERR(c->s, arg->loc, "the second argument of quantize() must be a format name");
        return;
    }
    if (!fmt) {
        ERR(c->s, arg->loc, "unknown format '%s'", name);
        return;
    }
    e->kind = AST_QUANT;
    e->a = e->args[0];
    e->fmt = fmt;
    char why[256];
    if (fmt->ok && !qk_format_kernel_quantizable(&fmt->f, why, sizeof why))
        ERR(c->s, arg->loc, "quantize(): %s", why);
}

/* An integer literal argument of hadamard(); returns -1 (reported) if it
 * is not one. */
static int int_literal(kctx *c, const ast_expr *e, const char *what, int64_t *v)
{
    if (e->kind != AST_NUM || !e->is_int) {
        ERR(c->s, e->loc, "the %s of hadamard() must be an integer literal >= 0", what);
        return -1;
    }
    *v = e->ival;
    return 0;
}

/* hadamard(E, k [, SIZE [, SEED]]) */
static void check_hadamard(kctx *c, ast_expr *e)
{
    if (e->nargs < 2 || e->nargs > 4) {
        ERR(c->s, e->loc, "'hadamard' takes 2 to 4 arguments (expression, index[, size[, seed]]), found %d",
            e->nargs);
        return;
    }
    check_operand(c, e, e->args[0]);
    const char *name = bare_name(e->args[1]);
    e->hvar = name ? lhs_var(c, name) : -1;
    if (e->hvar < 0) {
        ERR(c->s, e->args[1]->loc, "the second argument of hadamard() must be a left-hand side index of the "
            "statement");
        return;
    }
    int64_t size = 0, seed = 0;
    if (e->nargs > 2 && int_literal(c, e->args[2], "size", &size) < 0)
        return;
    if (size != 0 && ((size & (size - 1)) != 0 || size > (1LL << 30))) {
        ERR(c->s, e->args[2]->loc, "hadamard size %lld is not a power of two (at most 2^30), nor 0",
            (long long)size);
        return;
    }
    if (e->nargs > 3 && int_literal(c, e->args[3], "seed", &seed) < 0)
        return;
    e->kind = AST_HADAMARD;
    e->a = e->args[0];
    e->hsize = size;
    e->hseed = (uint64_t)seed;
}

/* The size of a hadamard() transform fits its variable's constant extent
 * (symbolic extents are checked by kir_bind). */
static void check_hadamard_extent(kctx *c, const ast_expr *e)
{
    const ast_var *v = &c->k->vars[e->hvar];
    int64_t n = v->extent.c;
    if (!v->has_extent || v->extent.sym >= 0)
        return;
    if (e->hsize == 0 && (n & (n - 1)) != 0)
        ERR(c->s, e->args[1]->loc, "hadamard over '%s' needs a power-of-two extent, found %lld (give a size that "
            "divides it)", v->name, (long long)n);
    else if (e->hsize != 0 && n % e->hsize != 0)
        ERR(c->s, e->args[2]->loc, "hadamard size %lld does not divide the extent %lld of '%s'", (long long)e->hsize,
            (long long)n, v->name);
}

/* quantize() and hadamard() must be the whole RHS of a new temp. */
static int check_special(kctx *c, ast_expr *e)
{
    int q = strcmp(e->name, "quantize") == 0;
    if (!q && strcmp(e->name, "hadamard") != 0)
        return 0;
    if (e != c->whole_rhs)
        ERR(c->s, e->loc, "%s() must be the whole right-hand side of a statement that defines a new temp",
            e->name);
    else if (q)
        check_quantize(c, e);
    else
        check_hadamard(c, e);
    return 1;
}

/* call = NAME "(" args ")": becomes AST_UN, AST_BIN, AST_CAST, AST_QUANT
 * or AST_HADAMARD. */
static void check_call(kctx *c, ast_expr *e)
{
    if (check_special(c, e))
        return;
    for (int i = 0; i < e->nargs; i++)
        check_expr(c, e->args[i]);
    const struct builtin *b = NULL;
    for (int i = 0; i < QK_COUNT(builtins); i++)
        if (strcmp(builtins[i].name, e->name) == 0)
            b = &builtins[i];
    if (!b) {
        ERR(c->s, e->loc, "unknown function '%s'", e->name);
        return;
    }
    if (e->nargs != b->nargs) {
        ERR(c->s, e->loc, "'%s' takes %d argument%s, found %d", b->name, b->nargs, b->nargs == 1 ? "" : "s",
            e->nargs);
        return;
    }
    e->kind = b->kind;
    e->op = b->op;
    e->a = e->args[0];
    e->b = b->nargs == 2 ? e->args[1] : NULL;
}

static void check_sum_var(kctx *c, ast_expr *e, int i)
{
    const char *name = e->vars[i];
    qk_loc loc = e->var_locs[i];
    for (int j = 0; j < i; j++)
        if (strcmp(e->vars[j], name) == 0)
            ERR(c->s, loc, "duplicate summation index '%s'", name);
    if (lhs_var(c, name) >= 0)
        ERR(c->s, loc, "summation index '%s' is also an index of the left-hand side", name);
    else
        for (int j = 0; j < c->nscope; j++)
            if (strcmp(c->k->vars[c->scope[j]].name, name) == 0) {
                ERR(c->s, loc, "summation index '%s' shadows the index of an enclosing sum", name);
                break;
            }
}

static void check_sum(kctx *c, ast_expr *e)
{
    e->var_ids = qk_alloc(c->s->a, (size_t)e->nvars * sizeof(int));
    for (int i = 0; i < e->nvars; i++) {
        check_sum_var(c, e, i);
        e->var_ids[i] = new_var(c, e->vars[i], e->var_locs[i], 1);
    }
    for (int i = 0; i < e->nvars; i++)
        *(int *)ast_push(c->s->a, &c->scope, &c->nscope, sizeof(int)) = e->var_ids[i];
    check_expr(c, e->a);
    c->nscope -= e->nvars;
}

static void check_expr(kctx *c, ast_expr *e)
{
    switch (e->kind) {
    case AST_NUM:
        break;
    case AST_LOAD:
        check_load(c, e);
        break;
    case AST_CALL:
        check_call(c, e);
        break;
    case AST_SUM:
        check_sum(c, e);
        break;
    default: /* AST_BIN, AST_UN, AST_CAST from the parser */
        check_expr(c, e->a);
        if (e->b)
            check_expr(c, e->b);
        break;
    }
}

/* ---- statements ---- */

/* The statement's target: an unassigned result, or NULL for a new temp
 * (reported problems also give NULL, with *bad set). */
static ast_tensor *stmt_target(kctx *c, ast_stmt *st, int *bad)
{
    ast_tensor *t = find_tensor(c->k, st->name);
    *bad = 1;
    if (!t)
        *bad = 0;
    else if (t->kind == KIR_PARAM)
        ERR(c->s, st->loc, "cannot assign to parameter '%s'", st->name);
    else if (t->kind == KIR_TEMP)
        ERR(c->s, st->loc, "temp '%s' is already defined at %s", st->name, where(c->s, t->loc, st->loc));
    else if (t->def_stmt >= 0)
        ERR(c->s, st->loc, "result '%s' is already assigned at %s", st->name,
            where(c->s, c->k->stmts[t->def_stmt].loc, st->loc));
    else if (st->nlhs != t->rank) {
        t->def_stmt = c->stmt; /* assigned, if badly: not "never assigned" too */
        ERR(c->s, st->loc, "'%s' has rank %d but is assigned with %d ind%s", t->name, t->rank, st->nlhs,
            st->nlhs == 1 ? "ex" : "ices");
    } else {
        *bad = 0;
    }
    return *bad ? NULL : t;
}

static void declare_lhs(kctx *c, ast_stmt *st, ast_tensor *t)
{
    st->lhs_vars = qk_alloc(c->s->a, (size_t)(st->nlhs + 1) * sizeof(int));
    for (int i = 0; i < st->nlhs; i++) {
        st->lhs_vars[i] = -1;
        if (lhs_var(c, st->lhs[i]) >= 0)
            ERR(c->s, st->lhs_locs[i], "duplicate index '%s' on the left-hand side", st->lhs[i]);
        st->lhs_vars[i] = new_var(c, st->lhs[i], st->lhs_locs[i], 0);
        if (t && t->dims_ok)
            infer(c, st->lhs_vars[i], t->kdims[i], st->lhs_locs[i]);
    }
}

static void check_inferred(kctx *c)
{
    for (int i = 0; i < c->k->nvars; i++) {
        ast_var *v = &c->k->vars[i];
        if (v->stmt == c->stmt && !v->has_extent)
            ERR(c->s, v->loc, "cannot infer the range of index '%s'", v->name);
    }
}

/* quantize() gives the temp its format, hadamard() makes it f32; both
 * temps are materialized. */
static void materialize(kctx *c, ast_stmt *st, ast_tensor *t)
{
    if (st->rhs->kind == AST_QUANT) {
        t->fmt = st->rhs->fmt;
        t->materialized = 1;
        if (t->rank == 0 && t->dims_ok)
            ERR(c->s, st->loc, "quantize() needs a temp with at least one index (its last index is the block axis)");
    } else if (st->rhs->kind == AST_HADAMARD) {
        t->dtype = QK_DT_F32;
        t->materialized = 1;
    }
}

/* A new temp: its dims are the extents of its LHS indices. */
static void define_temp(kctx *c, ast_stmt *st)
{
    ast_tensor *t = qk_alloc(c->s->a, sizeof *t);
    *t = (ast_tensor){.name = st->name, .loc = st->loc, .kind = KIR_TEMP, .dtype = QK_DT_NONE,
                      .rank = st->nlhs, .def_stmt = c->stmt, .dims_ok = 1, .book_index = -1};
    if (t->rank > QK_MAX_RANK) {
        ERR(c->s, st->lhs_locs[QK_MAX_RANK], "temp '%s' has rank %d; the maximum is %d", t->name, t->rank,
            QK_MAX_RANK);
        t->rank = 0;
        t->dims_ok = 0;
    }
    for (int i = 0; i < t->rank; i++) {
        ast_var *v = &c->k->vars[st->lhs_vars[i]];
        t->kdims[i] = v->extent;
        t->dims_ok &= v->has_extent;
    }
    materialize(c, st, t);
    add_tensor(c->s, c->k, t);
    st->tensor = t->index;
}

static void check_stmt(kctx *c, int i)
{
    ast_stmt *st = &c->k->stmts[i];
    c->stmt = i;
    c->st = st;
    c->nscope = 0;
    c->errors_before = c->s->d->nerrors;
    st->tensor = -1;
    int bad;
    ast_tensor *t = stmt_target(c, st, &bad);
    c->whole_rhs = !t && !bad ? st->rhs : NULL;
    declare_lhs(c, st, t);
    check_expr(c, st->rhs);
    if (c->s->d->nerrors == c->errors_before)
        check_inferred(c);
    if (c->s->d->nerrors == c->errors_before && st->rhs->kind == AST_HADAMARD)
        check_hadamard_extent(c, st->rhs);
    if (t) {
        t->def_stmt = i;
        st->tensor = t->index;
    } else if (!bad) {
        define_temp(c, st);
    }
}

static void check_kernel(sema *s, ast_kernel *k)
{
    int before = s->d->nerrors;
    for (int i = 0; i < k->nparams; i++)
        declare_tensor(s, k, &k->params[i], KIR_PARAM);
    int nparam_syms = k->nsyms;
    check_books(s, k);
    for (int i = 0; i < k->nresults; i++)
        declare_tensor(s, k, &k->results[i], KIR_RESULT);
    check_result_dims(s, k, nparam_syms);
    kctx c = {.s = s, .k = k};
    for (int i = 0; i < k->nstmts; i++)
        check_stmt(&c, i);
    for (int i = 0; i < k->nresults; i++)
        if (k->results[i].def_stmt < 0 && find_tensor(k, k->results[i].name) == &k->results[i])
            ERR(s, k->results[i].loc, "result '%s' is never assigned", k->results[i].name);
    k->ok = s->d->nerrors == before;
}

static ast_kernel *find_kernel(sema *s, const char *name)
{
    for (int i = 0; i < s->nkernels; i++)
        if (strcmp(s->kernels[i]->name, name) == 0)
            return s->kernels[i];
    return NULL;
}

static void declare_kernel(sema *s, ast_kernel *k)
{
    ast_kernel *old = find_kernel(s, k->name);
    if (old) {
        ERR(s, k->loc, "redefinition of kernel '%s' (first defined at %s)", k->name, where(s, old->loc, k->loc));
        return;
    }
    *(ast_kernel **)ast_push(s->a, &s->kernels, &s->nkernels, sizeof k) = k;
    check_kernel(s, k);
}

/* ---- schedules ---- */

/* 1: an index of some statement; 2: an LHS index of some statement. */
static int index_use(ast_kernel *k, const char *name)
{
    int use = 0;
    for (int i = 0; i < k->nvars; i++)
        if (strcmp(k->vars[i].name, name) == 0)
            use = use == 2 || !k->vars[i].is_reduction ? 2 : 1;
    return use;
}

static void check_size(sema *s, int64_t v, qk_loc loc, const char *what)
{
    if (v < 1 || v > AST_MAX_SIZE)
        ERR(s, loc, "%s %lld out of range 1..%d", what, (long long)v, AST_MAX_SIZE);
}

static void check_tiles(sema *s, ast_sched *sc, ast_kernel *k)
{
    if (sc->ntiles > 8)
        ERR(s, sc->tiles[8].loc, "too many tiled indices in schedule for '%s' (at most 8)", k->name);
    for (int i = 0; i < sc->ntiles; i++) {
        ast_tile *t = &sc->tiles[i];
        for (int j = 0; j < i; j++)
            if (strcmp(sc->tiles[j].index, t->index) == 0)
                ERR(s, t->loc, "duplicate tile size for index '%s'", t->index);
        if (!index_use(k, t->index))
            ERR(s, t->loc, "unknown index '%s' in schedule for '%s' (not used by any statement)", t->index, k->name);
        check_size(s, t->size, t->size_loc, "tile size");
    }
}

static void check_sched(sema *s, ast_sched *sc)
{
    ast_kernel *k = find_kernel(s, sc->kernel);
    if (!k) {
        ERR(s, sc->name_loc, "unknown kernel '%s' in schedule", sc->kernel);
        return;
    }
    if (k->sched) {
        ERR(s, sc->loc, "duplicate schedule for kernel '%s' (first at %s)", k->name, where(s, k->sched->loc, sc->loc));
        return;
    }
    k->sched = sc;
    if (!k->ok)
        return;
    check_tiles(s, sc, k);
    if (sc->parallel && index_use(k, sc->parallel) == 1)
        ERR(s, sc->parallel_loc, "parallel index '%s' is not a left-hand side index of '%s'", sc->parallel, k->name);
    else if (sc->parallel && !index_use(k, sc->parallel))
        ERR(s, sc->parallel_loc, "unknown index '%s' in schedule for '%s' (not used by any statement)",
            sc->parallel, k->name);
    if (sc->has_unroll)
        check_size(s, sc->unroll, sc->unroll_loc, "unroll factor");
}

/* Files are visited imported-first (the reverse of load order), so a
 * clash between a library and the user's file is reported in the user's. */
int sema_program(ast_program *prog, qk_arena *a, qk_diags *d)
{
    sema s = {.a = a, .d = d};
    int before = d->nerrors;
    for (int i = prog->nfiles - 1; i >= 0; i--)
        for (int j = 0; j < prog->files[i]->nformats; j++)
            declare_format(&s, prog->files[i]->formats[j]);
    for (int i = prog->nfiles - 1; i >= 0; i--)
        for (int j = 0; j < prog->files[i]->nkernels; j++)
            declare_kernel(&s, prog->files[i]->kernels[j]);
    for (int i = prog->nfiles - 1; i >= 0; i--)
        for (int j = 0; j < prog->files[i]->nscheds; j++)
            check_sched(&s, prog->files[i]->scheds[j]);
    return d->nerrors - before;
}

/* kir_fixture.c — see kir_fixture.h. A tiny scanner reads the dimension,
 * index and name-list strings; every mistake in them is a test bug and
 * aborts through qk_bug. */
#include "support/kir_fixture.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

kfx *kfx_new(const char *name)
{
    qk_arena *a = qk_arena_new();
    kfx *f = qk_alloc(a, sizeof *f);
    f->arena = a;
    kir_kernel *k = f->k = qk_alloc(a, sizeof *k);
    k->name = qk_strdup(a, name);
    k->syms = qk_alloc(a, KFX_MAX * sizeof *k->syms);
    k->tensors = qk_alloc(a, KFX_MAX * sizeof *k->tensors);
    k->vars = qk_alloc(a, KFX_MAX * sizeof *k->vars);
    k->stmts = qk_alloc(a, KFX_MAX * sizeof *k->stmts);
    return f;
}

void kfx_free(kfx *f)
{
    if (f)
        qk_arena_free(f->arena);
}

static void skip_ws(const char **p)
{
    while (isspace((unsigned char)**p))
        (*p)++;
}

/* Reads an identifier into buf; returns 0 when there is none. */
static int scan_ident(const char **p, char *buf, size_t n)
{
    skip_ws(p);
    size_t len = 0;
    while (isalnum((unsigned char)(*p)[len]) || (*p)[len] == '_')
        len++;
    if (len == 0 || isdigit((unsigned char)**p) || len >= n)
        return 0;
    memcpy(buf, *p, len);
    buf[len] = 0;
    *p += len;
    return 1;
}

static int scan_int(const char **p, int64_t *v)
{
    skip_ws(p);
    if (!isdigit((unsigned char)**p))
        return 0;
    char *end;
    *v = strtoll(*p, &end, 10);
    *p = end;
    return 1;
}

static int sym_id(kfx *f, const char *name)
{
    kir_kernel *k = f->k;
    for (int i = 0; i < k->nsyms; i++)
        if (strcmp(k->syms[i], name) == 0)
            return i;
    qk_assert(k->nsyms < KFX_MAX);
    k->syms[k->nsyms] = qk_strdup(f->arena, name);
    return k->nsyms++;
}

/* dim = int | sym [("+" | "-") int] */
static kir_dim scan_dim(kfx *f, const char **p)
{
    char name[64];
    kir_dim d = {-1, 0};
    if (scan_int(p, &d.c))
        return d;
    if (!scan_ident(p, name, sizeof name))
        qk_bug("kfx: bad dimension at '%s'", *p);
    d.sym = sym_id(f, name);
    skip_ws(p);
    if (**p == '+' || **p == '-') {
        int neg = **p == '-';
        (*p)++;
        if (!scan_int(p, &d.c))
            qk_bug("kfx: bad dimension constant at '%s'", *p);
        d.c = neg ? -d.c : d.c;
    }
    return d;
}

kir_dim kfx_dim(kfx *f, const char *spec)
{
    kir_dim d = scan_dim(f, &spec);
    skip_ws(&spec);
    if (*spec)
        qk_bug("kfx: trailing text in dimension: '%s'", spec);
    return d;
}

/* Parses a comma-separated list of dims into t. */
static void scan_dims(kfx *f, kir_tensor *t, const char *spec)
{
    const char *p = spec;
    skip_ws(&p);
    while (*p) {
        qk_assert(t->rank < QK_MAX_RANK);
        t->dims[t->rank++] = scan_dim(f, &p);
        skip_ws(&p);
        if (*p == ',')
            p++;
        else if (*p)
            qk_bug("kfx: bad dimension list '%s'", spec);
        skip_ws(&p);
    }
}

static int add_tensor(kfx *f, const char *name, kir_tensor_kind kind, qk_dtype dt, const qk_format *fmt,
                      const char *dims)
{
    kir_kernel *k = f->k;
    qk_assert(k->ntensors < KFX_MAX);
    int ntemps = k->ntensors - k->nparams - k->nresults;
    qk_assert(kind == KIR_TEMP || ntemps == 0);
    qk_assert(kind != KIR_PARAM || k->nresults == 0);
    kir_tensor *t = &k->tensors[k->ntensors];
    t->name = qk_strdup(f->arena, name);
    t->kind = kind;
    t->dtype = dt;
    t->fmt = fmt;
    t->def_stmt = -1;
    scan_dims(f, t, dims);
    k->nparams += kind == KIR_PARAM;
    k->nresults += kind == KIR_RESULT;
    return k->ntensors++;
}

int kfx_param(kfx *f, const char *name, qk_dtype dt, const char *dims)
{
    return add_tensor(f, name, KIR_PARAM, dt, NULL, dims);
}

int kfx_qparam(kfx *f, const char *name, const qk_format *fmt, const char *dims)
{
    return add_tensor(f, name, KIR_PARAM, QK_DT_NONE, fmt, dims);
}

int kfx_result(kfx *f, const char *name, qk_dtype dt, const char *dims)
{
    return add_tensor(f, name, KIR_RESULT, dt, NULL, dims);
}

int kfx_temp(kfx *f, const char *name, const char *dims)
{
    return add_tensor(f, name, KIR_TEMP, QK_DT_NONE, NULL, dims);
}

int kfx_tensor_id(kfx *f, const char *name)
{
    for (int i = 0; i < f->k->ntensors; i++)
        if (strcmp(f->k->tensors[i].name, name) == 0)
            return i;
    qk_bug("kfx: no tensor '%s'", name);
}

int kfx_var(kfx *f, const char *name, const char *extent, int is_reduction)
{
    kir_kernel *k = f->k;
    qk_assert(k->nvars < KFX_MAX);
    kir_var *v = &k->vars[k->nvars];
    v->name = qk_strdup(f->arena, name);
    v->extent = kfx_dim(f, extent);
    v->is_reduction = is_reduction;
    v->stmt = k->nstmts;
    return k->nvars++;
}

/* The latest variable of the statement being built with this name. */
static int var_id(kfx *f, const char *name)
{
    for (int i = f->k->nvars - 1; i >= 0; i--)
        if (f->k->vars[i].stmt == f->k->nstmts && strcmp(f->k->vars[i].name, name) == 0)
            return i;
    qk_bug("kfx: no variable '%s' in statement %d", name, f->k->nstmts);
}

static kir_expr *new_expr(kfx *f, kir_expr_kind kind)
{
    kir_expr *e = qk_alloc(f->arena, sizeof *e);
    e->kind = kind;
    return e;
}

kir_expr *kfx_const(kfx *f, double v)
{
    kir_expr *e = new_expr(f, KE_CONST);
    e->value = v;
    return e;
}

/* term = ["-"] (int ["*" ident] | ident) */
static void scan_term(kfx *f, const char **p, int sign, kir_index *ix)
{
    char name[64];
    int64_t c = 1;
    skip_ws(p);
    if (**p == '-') {
        sign = -sign;
        (*p)++;
    }
    int has_int = scan_int(p, &c);
    skip_ws(p);
    if (has_int && **p != '*') {
        ix->c += sign * c;
        return;
    }
    if (has_int)
        (*p)++;
    if (!scan_ident(p, name, sizeof name))
        qk_bug("kfx: bad index term at '%s'", *p);
    qk_assert(ix->nterms < KIR_MAX_TERMS);
    ix->terms[ix->nterms].var = var_id(f, name);
    ix->terms[ix->nterms++].coef = sign * c;
}

/* index = term (("+" | "-") term)* ; stops at ',' or the end. */
static kir_index scan_index(kfx *f, const char **p)
{
    kir_index ix = {0};
    scan_term(f, p, 1, &ix);
    for (;;) {
        skip_ws(p);
        if (**p != '+' && **p != '-')
            return ix;
        int sign = **p == '-' ? -1 : 1;
        (*p)++;
        scan_term(f, p, sign, &ix);
    }
}

kir_expr *kfx_load(kfx *f, const char *tensor, const char *indices)
{
    kir_expr *e = new_expr(f, KE_LOAD);
    e->tensor = kfx_tensor_id(f, tensor);
    int rank = f->k->tensors[e->tensor].rank;
    e->idx = qk_alloc(f->arena, sizeof(kir_index) * (size_t)(rank + 1));
    const char *p = indices;
    for (int i = 0; i < rank; i++) {
        e->idx[i] = scan_index(f, &p);
        skip_ws(&p);
        if (*p == ',')
            p++;
    }
    skip_ws(&p);
    if (*p)
        qk_bug("kfx: load %s[%s]: index count or syntax", tensor, indices);
    return e;
}

kir_expr *kfx_bin(kfx *f, kir_binop op, kir_expr *a, kir_expr *b)
{
    kir_expr *e = new_expr(f, KE_BIN);
    e->op = op;
    e->a = a;
    e->b = b;
    return e;
}

kir_expr *kfx_un(kfx *f, kir_unop op, kir_expr *a)
{
    kir_expr *e = new_expr(f, KE_UN);
    e->op = op;
    e->a = a;
    return e;
}

kir_expr *kfx_cast(kfx *f, qk_dtype dt, kir_expr *a)
{
    kir_expr *e = new_expr(f, KE_CAST);
    e->op = dt;
    e->a = a;
    return e;
}

/* Reads "a, b, c" as variable ids of the statement being built. */
static int scan_vars(kfx *f, const char *list, int *out)
{
    char name[64];
    int n = 0;
    const char *p = list;
    while (scan_ident(&p, name, sizeof name)) {
        qk_assert(n < QK_MAX_RANK);
        out[n++] = var_id(f, name);
        skip_ws(&p);
        if (*p == ',')
            p++;
    }
    skip_ws(&p);
    if (*p)
        qk_bug("kfx: bad variable list '%s'", list);
    return n;
}

kir_expr *kfx_sum(kfx *f, const char *vars, kir_expr *body)
{
    int ids[QK_MAX_RANK];
    kir_expr *e = new_expr(f, KE_SUM);
    e->nvars = scan_vars(f, vars, ids);
    e->vars = qk_alloc(f->arena, sizeof(int) * (size_t)(e->nvars + 1));
    memcpy(e->vars, ids, sizeof(int) * (size_t)e->nvars);
    e->a = body;
    return e;
}

int kfx_stmt(kfx *f, const char *tensor, const char *lhs, kir_expr *rhs)
{
    kir_kernel *k = f->k;
    qk_assert(k->nstmts < KFX_MAX);
    int ids[QK_MAX_RANK];
    kir_stmt *st = &k->stmts[k->nstmts];
    st->tensor = kfx_tensor_id(f, tensor);
    st->nlhs = scan_vars(f, lhs, ids);
    st->lhs = qk_alloc(f->arena, sizeof(int) * (size_t)(st->nlhs + 1));
    memcpy(st->lhs, ids, sizeof(int) * (size_t)st->nlhs);
    st->rhs = rhs;
    k->tensors[st->tensor].def_stmt = k->nstmts;
    return k->nstmts++;
}

qk_num kfx_num(qk_dtype dt)
{
    switch (dt) {
    case QK_DT_F32: return QK_NUM_F32;
    case QK_DT_F16: return QK_NUM_F16;
    case QK_DT_BF16: return QK_NUM_BF16;
    case QK_DT_U8: return QK_NUM_U8;
    case QK_DT_I8: return QK_NUM_I8;
    case QK_DT_NONE: return QK_NUM_NONE;
    default: qk_bug("kfx: dtype %s has no qk_num", qk_dtype_name(dt));
    }
}

qk_format *kfx_format(qk_arena *a, const char *name, qk_code_kind code, int bits, int offset, int block,
                      qk_dtype scale_dt, qk_dtype zero_dt)
{
    qk_format *fmt = qk_alloc(a, sizeof *fmt);
    char err[256];
    fmt->name = qk_strdup(a, name);
    fmt->code = code;
    fmt->bits = bits;
    fmt->offset = offset;
    fmt->block = block;
    fmt->scale_per = scale_dt == QK_DT_NONE ? QK_PER_NONE : QK_PER_BLOCK;
    fmt->scale_num = kfx_num(scale_dt);
    fmt->zero = zero_dt == QK_DT_NONE ? QK_ZERO_NONE : QK_ZERO_BLOCK;
    fmt->zero_num = kfx_num(zero_dt);
    if (qk_format_finish(fmt, err, sizeof err))
        qk_bug("kfx: %s", err);
    return fmt;
}

kir_view kfx_view(void *data, int rank, const int64_t *shape)
{
    kir_view v = {.data = data, .rank = rank};
    int64_t s = 1;
    for (int d = rank - 1; d >= 0; d--) {
        v.shape[d] = shape[d];
        v.stride[d] = s;
        s *= shape[d];
    }
    return v;
}

kfx *kfx_gemv(const qk_format *fmt)
{
    kfx *f = kfx_new("gemv");
    kfx_param(f, "x", QK_DT_F32, "K");
    if (fmt)
        kfx_qparam(f, "W", fmt, "N, K");
    else
        kfx_param(f, "W", QK_DT_F32, "N, K");
    kfx_param(f, "b", QK_DT_F32, "N");
    kfx_result(f, "y", QK_DT_F32, "N");
    kfx_var(f, "n", "N", 0);
    kfx_var(f, "k", "K", 1);
    kir_expr *dot = kfx_sum(f, "k", kfx_bin(f, KB_MUL, kfx_load(f, "x", "k"), kfx_load(f, "W", "n, k")));
    kfx_stmt(f, "y", "n", kfx_bin(f, KB_ADD, dot, kfx_load(f, "b", "n")));
    return f;
}

/* kir_build.c — lowers the checked AST (frontend/ast.h, after sema.c) to
 * Kernel IR (kir.h). First stage of compiler/: every name is already
 * resolved and every index variable has an extent, so this is a
 * mechanical translation into a new program arena. File names in locs
 * are copied into that arena, so the program outlives the qk_diags. */
#include "frontend/ast.h"

#include <string.h>

typedef struct builder {
    kir_program *p;
    qk_arena *a;
    qk_diags *d;
    int nfiles;
    const char **from, **to; /* registered file name -> arena copy */
} builder;

static qk_loc kloc(builder *b, qk_loc loc)
{
    for (int i = 0; i < b->nfiles; i++)
        if (b->from[i] == loc.file)
            return (qk_loc){b->to[i], loc.line, loc.col};
    if (loc.file)
        loc.file = qk_strdup(b->a, loc.file);
    return loc;
}

/* ---- formats ---- */

/* sema has finished the format (qk_format_finish); this copies it, and
 * its value table, into the program's arena. */
static void build_format(builder *b, const ast_format *af)
{
    if (!af->ok)
        qk_bug("format '%s' reached kir_build unchecked", af->name);
    qk_format *f = qk_alloc(b->a, sizeof *f);
    *f = af->f;
    f->name = qk_strdup(b->a, af->name);
    f->loc = kloc(b, af->loc);
    if (af->f.table) {
        size_t n = ((size_t)1 << af->f.bits) * sizeof *af->f.table;
        double *t = qk_alloc(b->a, n);
        memcpy(t, af->f.table, n);
        f->table = t;
    }
    b->p->formats[b->p->nformats++] = f;
}

static const qk_format *format_of(builder *b, const ast_format *af)
{
    for (int i = 0; i < b->p->nformats; i++)
        if (strcmp(b->p->formats[i]->name, af->name) == 0)
            return b->p->formats[i];
    qk_bug("format '%s' was not built", af->name);
}

/* ---- expressions ---- */

static kir_index build_index(const ast_index *ix)
{
    kir_index k = {.nterms = ix->nterms, .c = ix->c};
    for (int i = 0; i < ix->nterms; i++) {
        k.terms[i].var = ix->terms[i].var;
        k.terms[i].coef = ix->terms[i].coef;
    }
    return k;
}

/* quantize(a, fmt) / hadamard(a, hvar, hsize, hseed), without the operand. */
static void build_materializing(builder *b, const ast_expr *e, kir_expr *k)
{
    k->kind = e->kind == AST_QUANT ? KE_QUANT : KE_HADAMARD;
    k->fmt = e->kind == AST_QUANT ? format_of(b, e->fmt) : NULL;
    k->hvar = e->hvar;
    k->hsize = e->hsize;
    k->hseed = e->hseed;
}

static kir_expr *build_expr(builder *b, const ast_expr *e)
{
    kir_expr *k = qk_alloc(b->a, sizeof *k);
    k->loc = kloc(b, e->loc);
    k->op = e->op;
    switch (e->kind) {
    case AST_NUM:
        k->kind = KE_CONST;
        k->value = e->num;
        return k;
    case AST_LOAD:
        k->kind = KE_LOAD;
        k->tensor = e->tensor;
        k->idx = qk_alloc(b->a, (size_t)(e->nidx + 1) * sizeof *k->idx);
        for (int i = 0; i < e->nidx; i++)
            k->idx[i] = build_index(&e->idx[i]);
        return k;
    case AST_SUM:
        k->kind = KE_SUM;
        k->nvars = e->nvars;
        k->vars = qk_alloc(b->a, (size_t)e->nvars * sizeof(int));
        memcpy(k->vars, e->var_ids, (size_t)e->nvars * sizeof(int));
        break;
    case AST_BIN:
        k->kind = KE_BIN;
        k->b = build_expr(b, e->b);
        break;
    case AST_UN:
        k->kind = KE_UN;
        break;
    case AST_CAST:
        k->kind = KE_CAST;
        break;
    case AST_QUANT:
    case AST_HADAMARD:
        build_materializing(b, e, k);
        break;
    case AST_CALL:
        qk_bug("unresolved call '%s' after sema", e->name);
    }
    k->a = build_expr(b, e->a);
    return k;
}

/* ---- kernels ---- */

static void build_tensor(builder *b, const ast_tensor *t, kir_tensor *k)
{
    k->name = qk_strdup(b->a, t->name);
    k->loc = kloc(b, t->loc);
    k->kind = t->kind;
    k->dtype = t->fmt ? QK_DT_NONE : t->dtype;
    k->fmt = t->fmt ? format_of(b, t->fmt) : NULL;
    k->rank = t->rank;
    memcpy(k->dims, t->kdims, sizeof k->dims);
    k->def_stmt = t->def_stmt;
    k->book = t->book_index;
    k->materialized = t->materialized;
}

static void build_stmt(builder *b, const ast_stmt *s, kir_stmt *k)
{
    k->loc = kloc(b, s->loc);
    k->tensor = s->tensor;
    k->nlhs = s->nlhs;
    k->lhs = qk_alloc(b->a, (size_t)(s->nlhs + 1) * sizeof(int));
    memcpy(k->lhs, s->lhs_vars, (size_t)s->nlhs * sizeof(int));
    k->rhs = build_expr(b, s->rhs);
}

static void build_sched(builder *b, const ast_sched *s, kir_sched *k)
{
    k->present = 1;
    k->loc = kloc(b, s->loc);
    k->ntiles = s->ntiles;
    for (int i = 0; i < s->ntiles; i++) {
        k->tiles[i].index = qk_strdup(b->a, s->tiles[i].index);
        k->tiles[i].size = (int)s->tiles[i].size;
        k->tiles[i].loc = kloc(b, s->tiles[i].loc);
    }
    if (s->parallel) {
        k->parallel = qk_strdup(b->a, s->parallel);
        k->parallel_loc = kloc(b, s->parallel_loc);
    }
    k->unroll = s->has_unroll ? (int)s->unroll : 0;
}

static void build_vars(builder *b, const ast_kernel *a, kir_kernel *k)
{
    k->nvars = a->nvars;
    k->vars = qk_alloc(b->a, (size_t)(a->nvars + 1) * sizeof *k->vars);
    for (int i = 0; i < a->nvars; i++) {
        const ast_var *v = &a->vars[i];
        k->vars[i] = (kir_var){qk_strdup(b->a, v->name), kloc(b, v->loc), v->extent, v->is_reduction, v->stmt};
    }
}

static kir_kernel *build_kernel(builder *b, const ast_kernel *a)
{
    kir_kernel *k = qk_alloc(b->a, sizeof *k);
    k->name = qk_strdup(b->a, a->name);
    k->loc = kloc(b, a->loc);
    k->source = qk_strndup(b->a, a->src, a->srclen);
    qk_buf text = {0};
    ast_print_kernel(a, &text);
    k->ast = qk_strdup(b->a, text.s ? text.s : "");
    qk_buf_free(&text);
    k->nsyms = a->nsyms;
    k->syms = qk_alloc(b->a, (size_t)(a->nsyms + 1) * sizeof *k->syms);
    for (int i = 0; i < a->nsyms; i++)
        k->syms[i] = qk_strdup(b->a, a->syms[i]);
    k->nparams = a->nparams;
    k->nresults = a->nresults;
    k->ntensors = a->ntensors;
    k->tensors = qk_alloc(b->a, (size_t)(a->ntensors + 1) * sizeof *k->tensors);
    for (int i = 0; i < a->ntensors; i++)
        build_tensor(b, a->tensors[i], &k->tensors[i]);
    build_vars(b, a, k);
    k->nstmts = a->nstmts;
    k->stmts = qk_alloc(b->a, (size_t)(a->nstmts + 1) * sizeof *k->stmts);
    for (int i = 0; i < a->nstmts; i++)
        build_stmt(b, &a->stmts[i], &k->stmts[i]);
    if (a->sched)
        build_sched(b, a->sched, &k->sched);
    return k;
}

static void count_decls(const ast_program *prog, int *nformats, int *nkernels)
{
    *nformats = *nkernels = 0;
    for (int i = 0; i < prog->nfiles; i++) {
        *nformats += prog->files[i]->nformats;
        *nkernels += prog->files[i]->nkernels;
    }
}

static void map_files(builder *b, const ast_program *prog)
{
    b->nfiles = prog->nfiles;
    b->from = qk_alloc(b->a, (size_t)(prog->nfiles + 1) * sizeof(char *));
    b->to = qk_alloc(b->a, (size_t)(prog->nfiles + 1) * sizeof(char *));
    for (int i = 0; i < prog->nfiles; i++) {
        b->from[i] = prog->files[i]->name;
        b->to[i] = qk_strdup(b->a, prog->files[i]->name);
    }
}

kir_program *kir_build_program(const ast_program *prog, qk_diags *d)
{
    qk_arena *a = qk_arena_new();
    kir_program *p = qk_alloc(a, sizeof *p);
    p->arena = a;
    builder b = {.p = p, .a = a, .d = d};
    map_files(&b, prog);
    int nf, nk;
    count_decls(prog, &nf, &nk);
    p->formats = qk_alloc(a, (size_t)(nf + 1) * sizeof *p->formats);
    p->kernels = qk_alloc(a, (size_t)(nk + 1) * sizeof *p->kernels);
    for (int i = prog->nfiles - 1; i >= 0; i--)
        for (int j = 0; j < prog->files[i]->nformats; j++)
            build_format(&b, prog->files[i]->formats[j]);
    for (int i = prog->nfiles - 1; i >= 0; i--)
        for (int j = 0; j < prog->files[i]->nkernels; j++)
            p->kernels[p->nkernels++] = build_kernel(&b, prog->files[i]->kernels[j]);
    return p;
}

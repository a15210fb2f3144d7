/* ast_print.c — the checked AST of one kernel as an indented tree, one
 * node per line (what `qkc emit --stage=ast` shows). Example:
 *
 *   kernel gemv @1:1
 *     param x: f32[K]
 *     result y: f32[N]
 *     stmt y[n] @2:3
 *       add
 *         sum k
 *           mul
 *             load x[k]
 *             load W[n, k]
 *         load b[n]
 *
 * Resolved built-ins print as `quantize FMT` and `hadamard k, size S,
 * seed R` above their operand.
 */
#include "frontend/ast.h"

static void print_tensor(const char *role, const ast_tensor *t, qk_buf *out)
{
    qk_buf_printf(out, "  %s %s: %s", role, t->name, t->type);
    if (t->book.s)
        qk_buf_printf(out, "(%s)", t->book.s);
    qk_buf_puts(out, "[");
    for (int i = 0; i < t->rank; i++) {
        const ast_dim *d = &t->dims[i];
        qk_buf_puts(out, i ? ", " : "");
        if (!d->sym)
            qk_buf_printf(out, "%lld", (long long)d->c);
        else if (d->c == 0)
            qk_buf_puts(out, d->sym);
        else
            qk_buf_printf(out, "%s%+lld", d->sym, (long long)d->c);
    }
    qk_buf_puts(out, "]\n");
}

static void print_index(const ast_index *ix, qk_buf *out)
{
    for (int i = 0; i < ix->nterms; i++) {
        int64_t c = ix->terms[i].coef;
        if (i)
            qk_buf_puts(out, c < 0 ? " - " : " + ");
        else if (c < 0)
            qk_buf_puts(out, "-");
        if (c != 1 && c != -1)
            qk_buf_printf(out, "%lld*", (long long)(c < 0 ? -c : c));
        qk_buf_puts(out, ix->terms[i].name);
    }
    if (ix->nterms == 0)
        qk_buf_printf(out, "%lld", (long long)ix->c);
    else if (ix->c)
        qk_buf_printf(out, " %c %lld", ix->c < 0 ? '-' : '+', (long long)(ix->c < 0 ? -ix->c : ix->c));
}

static const char *const binops[] = {"add", "sub", "mul", "div", "max", "min"};
static const char *const unops[] = {"neg", "relu", "gelu", "silu", "exp", "tanh", "abs", "sqrt"};
_Static_assert(QK_COUNT(binops) == KB_COUNT, "binop names");
_Static_assert(QK_COUNT(unops) == KU_COUNT, "unop names");

static void print_expr(const ast_expr *e, int depth, qk_buf *out)
{
    qk_buf_indent(out, depth);
    switch (e->kind) {
    case AST_NUM:
        qk_buf_printf(out, "num %.17g\n", e->num);
        return;
    case AST_LOAD:
        qk_buf_printf(out, "load %s[", e->name);
        for (int i = 0; i < e->nidx; i++) {
            qk_buf_puts(out, i ? ", " : "");
            print_index(&e->idx[i], out);
        }
        qk_buf_puts(out, "]\n");
        return;
    case AST_SUM:
        qk_buf_puts(out, "sum");
        for (int i = 0; i < e->nvars; i++)
            qk_buf_printf(out, "%s%s", i ? ", " : " ", e->vars[i]);
        qk_buf_puts(out, "\n");
        break;
    case AST_BIN:
        qk_buf_printf(out, "%s\n", binops[e->op]);
        break;
    case AST_UN:
        qk_buf_printf(out, "%s\n", unops[e->op]);
        break;
    case AST_CAST:
        qk_buf_printf(out, "cast %s\n", qk_dtype_name((qk_dtype)e->op));
        break;
    case AST_QUANT:
        qk_buf_printf(out, "quantize %s\n", e->fmt->name);
        break;
    case AST_HADAMARD:
        qk_buf_printf(out, "hadamard %s, size %lld, seed %llu\n", e->args[1]->name, (long long)e->hsize,
                      (unsigned long long)e->hseed);
        break;
    case AST_CALL:
        qk_buf_printf(out, "call %s\n", e->name);
        for (int i = 0; i < e->nargs; i++)
            print_expr(e->args[i], depth + 1, out);
        return;
    }
    print_expr(e->a, depth + 1, out);
    if (e->kind == AST_BIN)
        print_expr(e->b, depth + 1, out);
}

static void print_stmt(const ast_stmt *s, qk_buf *out)
{
    qk_buf_printf(out, "  stmt %s[", s->name);
    for (int i = 0; i < s->nlhs; i++)
        qk_buf_printf(out, "%s%s", i ? ", " : "", s->lhs[i]);
    qk_buf_printf(out, "] @%d:%d\n", s->loc.line, s->loc.col);
    print_expr(s->rhs, 2, out);
}

static void print_sched(const ast_sched *s, qk_buf *out)
{
    qk_buf_printf(out, "  schedule @%d:%d\n", s->loc.line, s->loc.col);
    for (int i = 0; i < s->ntiles; i++)
        qk_buf_printf(out, "    tile %s = %lld\n", s->tiles[i].index, (long long)s->tiles[i].size);
    if (s->parallel)
        qk_buf_printf(out, "    parallel %s\n", s->parallel);
    if (s->has_unroll)
        qk_buf_printf(out, "    unroll %lld\n", (long long)s->unroll);
}

void ast_print_kernel(const ast_kernel *k, qk_buf *out)
{
    qk_buf_printf(out, "kernel %s @%d:%d\n", k->name, k->loc.line, k->loc.col);
    for (int i = 0; i < k->nparams; i++)
        print_tensor("param", &k->params[i], out);
    for (int i = 0; i < k->nresults; i++)
        print_tensor("result", &k->results[i], out);
    for (int i = 0; i < k->nstmts; i++)
        print_stmt(&k->stmts[i], out);
    if (k->sched)
        print_sched(k->sched, out);
}

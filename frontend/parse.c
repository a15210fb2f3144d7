/* parse.c — recursive-descent parser: tokens (lex.re) to the syntax tree
 * (ast.h) of one file. Second stage of the frontend; sema.c checks the
 * tree afterwards. The grammar rule of each function is written above it
 * (docs/language.md has the whole grammar).
 *
 * Statements and attributes are separated by ';' or a line break: an item
 * ends where the next token is ';', '}' or the first token of a line.
 * Errors longjmp to the innermost recovery point (a declaration, a
 * statement, an attribute), which skips to the next item and goes on, so
 * one run reports several independent mistakes. */
#include "frontend/ast.h"

#include <setjmp.h>
#include <string.h>

typedef struct parser {
    lex_token *tok;
    qk_arena *a;
    qk_diags *d;
    ast_file *file;
    jmp_buf *recover;
    int depth;
} parser;

void *ast_push(qk_arena *a, void *arrp, int *n, size_t size)
{
    char **arr = arrp;
    if (*n == 0 || (*n >= 4 && (*n & (*n - 1)) == 0)) {
        size_t cap = *n == 0 ? 4 : (size_t)*n * 2;
        char *grown = qk_alloc(a, cap * size);
        if (*n)
            memcpy(grown, *arr, (size_t)*n * size);
        *arr = grown;
    }
    return *arr + (size_t)(*n)++ * size;
}

/* ---- tokens ---- */

static int equal(const lex_token *t, const char *s)
{
    return t->kind != TK_STRING && t->kind != TK_EOF && strcmp(t->text, s) == 0;
}

static int is_ident(const lex_token *t, const char *s)
{
    return t->kind == TK_IDENT && strcmp(t->text, s) == 0;
}

/* How a token reads in "found ..." messages. */
static const char *tok_desc(parser *p, const lex_token *t)
{
    if (t->kind == TK_EOF)
        return "end of file";
    if (t->kind == TK_STRING)
        return "a string";
    return qk_asprintf(p->a, "'%.32s%s'", t->text, t->len > 32 ? "..." : "");
}

static _Noreturn void fail_at(parser *p, qk_loc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    qk_diag_vadd(p->d, QK_SEV_ERROR, loc, fmt, ap);
    va_end(ap);
    longjmp(*p->recover, 1);
}

/* Consumes s or reports "expected 's' <where>, found ...". */
static lex_token *skip(parser *p, const char *s, const char *where)
{
    lex_token *t = p->tok;
    if (!equal(t, s))
        fail_at(p, t->loc, "expected '%s' %s, found %s", s, where, tok_desc(p, t));
    p->tok++;
    return t;
}

static int consume(parser *p, const char *s)
{
    if (!equal(p->tok, s))
        return 0;
    p->tok++;
    return 1;
}

static lex_token *expect_ident(parser *p, const char *what)
{
    lex_token *t = p->tok;
    if (t->kind != TK_IDENT)
        fail_at(p, t->loc, "expected %s, found %s", what, tok_desc(p, t));
    p->tok++;
    return t;
}

/* int = ["-"] INT */
static int64_t parse_int(parser *p, const char *what, qk_loc *loc)
{
    lex_token *t = p->tok;
    *loc = t->loc;
    int neg = consume(p, "-");
    if (p->tok->kind != TK_INT)
        fail_at(p, p->tok->loc, "expected %s, found %s", what, tok_desc(p, p->tok));
    int64_t v = p->tok++->ival;
    return neg ? -v : v;
}

static int at_top_decl(const lex_token *t)
{
    return t->kind == TK_EOF || (t->bol && t->kind == TK_KEYWORD && !equal(t, "sum"));
}

/* An item of a block ends at ';', '}', a line break or the end. */
static void end_item(parser *p, const char *what)
{
    if (consume(p, ";") || equal(p->tok, "}") || p->tok->bol)
        return;
    fail_at(p, p->tok->loc, "expected newline or ';' after %s, found %s", what, tok_desc(p, p->tok));
}

/* Error recovery inside a block: skip past the broken item. */
static void sync_item(parser *p, lex_token *start)
{
    if (p->tok == start && !equal(p->tok, "}") && p->tok->kind != TK_EOF)
        p->tok++;
    while (!equal(p->tok, "}") && !at_top_decl(p->tok) && !p->tok->bol) {
        if (consume(p, ";"))
            return;
        p->tok++;
    }
}

typedef void item_fn(parser *p, void *ctx);

/* block = "{" (item (";" | newline))* "}"
 * Calls item() for each item, recovering from errors item by item. */
static void parse_block(parser *p, item_fn *item, void *ctx, const char *what)
{
    skip(p, "{", what);
    jmp_buf jb, *outer = p->recover;
    p->recover = &jb;
    while (!equal(p->tok, "}") && !at_top_decl(p->tok)) {
        lex_token *volatile start = p->tok;
        if (setjmp(jb) == 0) {
            if (!consume(p, ";"))
                item(p, ctx);
        } else {
            sync_item(p, start);
        }
    }
    p->recover = outer;
    skip(p, "}", qk_asprintf(p->a, "at the end of %s", what));
}

/* ---- formats ---- */

static int dup_attr(parser *p, int *seen, lex_token *key, ast_format *f)
{
    if (*seen)
        fail_at(p, key->loc, "duplicate attribute '%s' in format '%s'", key->text, f->name);
    *seen = 1;
    return 1;
}

/* attr = "code" "=" IDENT ["offset" int]
 *      | "block" "=" int
 *      | "scale" "=" IDENT
 *      | "zero" "=" IDENT */
static void format_attr(parser *p, void *ctx)
{
    ast_format *f = ctx;
    lex_token *key = expect_ident(p, "a format attribute (code, block, scale or zero)");
    int known = is_ident(key, "code") || is_ident(key, "block") || is_ident(key, "scale") || is_ident(key, "zero");
    if (!known)
        fail_at(p, key->loc, "unknown format attribute '%s' (expected code, block, scale or zero)", key->text);
    skip(p, "=", qk_asprintf(p->a, "after '%s'", key->text));
    if (is_ident(key, "block") && dup_attr(p, &f->has_block, key, f)) {
        f->block = parse_int(p, "a block size", &f->block_loc);
    } else if (is_ident(key, "code") && dup_attr(p, &f->has_code, key, f)) {
        lex_token *t = expect_ident(p, "a code type such as int4 or uint3");
        f->code = t->text;
        f->code_loc = t->loc;
        if (is_ident(p->tok, "offset")) {
            p->tok++;
            f->has_offset = 1;
            f->offset = parse_int(p, "an offset", &f->offset_loc);
        }
    } else {
        int scale = is_ident(key, "scale");
        dup_attr(p, scale ? &f->has_scale : &f->has_zero, key, f);
        lex_token *t = expect_ident(p, scale ? "a scale type" : "a zero-point type");
        *(scale ? &f->scale : &f->zero) = t->text;
        *(scale ? &f->scale_loc : &f->zero_loc) = t->loc;
    }
    end_item(p, "format attribute");
}

/* format = "format" IDENT "{" attr* "}" */
static void parse_format(parser *p)
{
    ast_format *f = qk_alloc(p->a, sizeof *f);
    f->loc = p->tok++->loc;
    f->name = expect_ident(p, "a format name")->text;
    parse_block(p, format_attr, f, qk_asprintf(p->a, "format '%s'", f->name));
    *(ast_format **)ast_push(p->a, &p->file->formats, &p->file->nformats, sizeof f) = f;
}

/* ---- kernel declarations ---- */

/* dim = INT | IDENT [("+" | "-") INT] */
static void parse_dim(parser *p, ast_dim *dim)
{
    lex_token *t = p->tok;
    dim->loc = t->loc;
    if (t->kind == TK_INT) {
        dim->c = t->ival;
        p->tok++;
        return;
    }
    dim->sym = expect_ident(p, "a dimension (a name or an integer)")->text;
    if (equal(p->tok, "+") || equal(p->tok, "-")) {
        int neg = equal(p->tok++, "-");
        if (p->tok->kind != TK_INT)
            fail_at(p, p->tok->loc, "expected an integer after '%s' in dimension, found %s", neg ? "-" : "+",
                    tok_desc(p, p->tok));
        dim->c = neg ? -p->tok->ival : p->tok->ival;
        p->tok++;
    }
}

/* param = IDENT ":" IDENT ["[" [dim ("," dim)*] "]"] */
static void parse_param(parser *p, ast_tensor *t)
{
    lex_token *name = expect_ident(p, "a parameter name");
    t->name = name->text;
    t->loc = name->loc;
    skip(p, ":", qk_asprintf(p->a, "after '%s'", t->name));
    lex_token *ty = expect_ident(p, "a type (a dtype or a format name)");
    t->type = ty->text;
    t->type_loc = ty->loc;
    if (!consume(p, "["))
        return;
    if (consume(p, "]"))
        return;
    do
        parse_dim(p, ast_push(p->a, &t->dims, &t->rank, sizeof *t->dims));
    while (consume(p, ","));
    skip(p, "]", "after dimension list");
}

/* params = "(" [param ("," param)*] ")" */
static void parse_params(parser *p, ast_kernel *k)
{
    skip(p, "(", "after kernel name");
    if (consume(p, ")"))
        return;
    do
        parse_param(p, ast_push(p->a, &k->params, &k->nparams, sizeof *k->params));
    while (consume(p, ","));
    skip(p, ")", "after parameter list");
}

/* results = param | "(" param ("," param)* ")" */
static void parse_results(parser *p, ast_kernel *k)
{
    skip(p, "->", "before the kernel's results");
    if (!consume(p, "(")) {
        parse_param(p, ast_push(p->a, &k->results, &k->nresults, sizeof *k->results));
        return;
    }
    do
        parse_param(p, ast_push(p->a, &k->results, &k->nresults, sizeof *k->results));
    while (consume(p, ","));
    skip(p, ")", "after result list");
}

/* ---- expressions ---- */

static ast_expr *new_expr(parser *p, ast_expr_kind kind, qk_loc loc)
{
    ast_expr *e = qk_alloc(p->a, sizeof *e);
    e->kind = kind;
    e->loc = loc;
    e->height = 1;
    return e;
}

static void set_height(parser *p, ast_expr *e, const ast_expr *child)
{
    if (child && child->height + 1 > e->height)
        e->height = child->height + 1;
    if (e->height > AST_MAX_HEIGHT)
        fail_at(p, e->loc, "expression is too large (more than %d levels deep)", AST_MAX_HEIGHT);
}

static ast_expr *new_bin(parser *p, int op, ast_expr *a, ast_expr *b, qk_loc loc)
{
    ast_expr *e = new_expr(p, AST_BIN, loc);
    e->op = op;
    e->a = a;
    e->b = b;
    set_height(p, e, a);
    set_height(p, e, b);
    return e;
}

static ast_expr *parse_expr(parser *p);
static ast_expr *parse_term(parser *p);

static void enter(parser *p, qk_loc loc)
{
    if (++p->depth > AST_MAX_DEPTH)
        fail_at(p, loc, "expression nested too deeply (more than %d levels)", AST_MAX_DEPTH);
}

/* Adds coef*name to an index, combining repeated names. */
static void add_term(parser *p, ast_index *ix, lex_token *name, int64_t coef)
{
    for (int i = 0; i < ix->nterms; i++)
        if (strcmp(ix->terms[i].name, name->text) == 0) {
            ix->terms[i].coef += coef;
            return;
        }
    if (ix->nterms == KIR_MAX_TERMS)
        fail_at(p, name->loc, "index expression has more than %d index variables", KIR_MAX_TERMS);
    ix->terms[ix->nterms++] = (ast_term){name->text, name->loc, coef, -1};
}

static int64_t check_coef(parser *p, int64_t v, qk_loc loc)
{
    if (v > AST_MAX_DIM || v < -AST_MAX_DIM)
        fail_at(p, loc, "index constant %lld is out of range", (long long)v);
    return v;
}

/* iterm = INT ["*" IDENT] | IDENT */
static void parse_iterm(parser *p, ast_index *ix, int sign)
{
    lex_token *t = p->tok;
    if (t->kind == TK_INT) {
        p->tok++;
        int64_t v = check_coef(p, t->ival, t->loc) * sign;
        if (consume(p, "*"))
            add_term(p, ix, expect_ident(p, "an index name after '*'"), v);
        else
            ix->c = check_coef(p, ix->c + v, t->loc);
        return;
    }
    if (t->kind != TK_IDENT)
        fail_at(p, t->loc, "expected an index expression (such as i, i + 1 or 2 * i), found %s", tok_desc(p, t));
    add_term(p, ix, expect_ident(p, "an index name"), sign);
}

/* index = ["-"] iterm (("+" | "-") iterm)* */
static void parse_index(parser *p, ast_index *ix)
{
    ix->loc = p->tok->loc;
    int sign = consume(p, "-") ? -1 : 1;
    parse_iterm(p, ix, sign);
    while (equal(p->tok, "+") || equal(p->tok, "-")) {
        sign = equal(p->tok++, "-") ? -1 : 1;
        parse_iterm(p, ix, sign);
    }
    int n = 0;
    for (int i = 0; i < ix->nterms; i++) {
        check_coef(p, ix->terms[i].coef, ix->terms[i].loc);
        if (ix->terms[i].coef != 0)
            ix->terms[n++] = ix->terms[i];
    }
    ix->nterms = n;
}

/* load = IDENT ["[" [index ("," index)*] "]"] */
static ast_expr *parse_load(parser *p, lex_token *name)
{
    ast_expr *e = new_expr(p, AST_LOAD, name->loc);
    e->name = name->text;
    if (!consume(p, "["))
        return e;
    e->has_brackets = 1;
    if (consume(p, "]"))
        return e;
    do
        parse_index(p, ast_push(p->a, &e->idx, &e->nidx, sizeof *e->idx));
    while (consume(p, ","));
    skip(p, "]", "after index list");
    return e;
}

/* call = IDENT "(" [expr ("," expr)*] ")" */
static ast_expr *parse_call(parser *p, lex_token *name)
{
    ast_expr *e = new_expr(p, AST_CALL, name->loc);
    e->name = name->text;
    skip(p, "(", "after function name");
    if (!consume(p, ")")) {
        do {
            ast_expr *arg = parse_expr(p);
            set_height(p, e, arg);
            *(ast_expr **)ast_push(p->a, &e->args, &e->nargs, sizeof arg) = arg;
        } while (consume(p, ","));
        skip(p, ")", "after arguments");
    }
    return e;
}

/* primary = NUMBER | "(" expr ")" | call | load */
static ast_expr *parse_primary(parser *p)
{
    lex_token *t = p->tok;
    if (t->kind == TK_INT || t->kind == TK_FLOAT) {
        p->tok++;
        ast_expr *e = new_expr(p, AST_NUM, t->loc);
        e->num = t->fval;
        return e;
    }
    if (consume(p, "(")) {
        ast_expr *e = parse_expr(p);
        skip(p, ")", "to close '('");
        return e;
    }
    if (t->kind != TK_IDENT)
        fail_at(p, t->loc, "expected an expression, found %s", tok_desc(p, t));
    p->tok++;
    if (equal(p->tok, "("))
        return parse_call(p, t);
    return parse_load(p, t);
}

/* sum = "sum" "(" IDENT ("," IDENT)* ")" term */
static ast_expr *parse_sum(parser *p)
{
    ast_expr *e = new_expr(p, AST_SUM, p->tok++->loc);
    skip(p, "(", "after 'sum'");
    int n = 0;
    do {
        lex_token *v = expect_ident(p, "a summation index name");
        *(const char **)ast_push(p->a, &e->vars, &e->nvars, sizeof(char *)) = v->text;
        *(qk_loc *)ast_push(p->a, &e->var_locs, &n, sizeof(qk_loc)) = v->loc;
    } while (consume(p, ","));
    skip(p, ")", "after summation indices");
    e->a = parse_term(p);
    set_height(p, e, e->a);
    return e;
}

/* unary = "-" unary | sum | primary */
static ast_expr *parse_unary(parser *p)
{
    lex_token *t = p->tok;
    enter(p, t->loc);
    ast_expr *e;
    if (consume(p, "-")) {
        e = new_expr(p, AST_UN, t->loc);
        e->op = KU_NEG;
        e->a = parse_unary(p);
        set_height(p, e, e->a);
    } else if (equal(t, "sum")) {
        e = parse_sum(p);
    } else {
        e = parse_primary(p);
    }
    p->depth--;
    return e;
}

/* term = unary (("*" | "/") unary)* */
static ast_expr *parse_term(parser *p)
{
    ast_expr *e = parse_unary(p);
    while (equal(p->tok, "*") || equal(p->tok, "/")) {
        lex_token *op = p->tok++;
        e = new_bin(p, equal(op, "*") ? KB_MUL : KB_DIV, e, parse_unary(p), op->loc);
    }
    return e;
}

/* expr = term (("+" | "-") term)* */
static ast_expr *parse_expr(parser *p)
{
    ast_expr *e = parse_term(p);
    while (equal(p->tok, "+") || equal(p->tok, "-")) {
        lex_token *op = p->tok++;
        e = new_bin(p, equal(op, "+") ? KB_ADD : KB_SUB, e, parse_term(p), op->loc);
    }
    return e;
}

/* ---- statements ---- */

/* lhs = IDENT ["[" [IDENT ("," IDENT)*] "]"] */
static void parse_lhs(parser *p, ast_stmt *s)
{
    lex_token *name = expect_ident(p, "a tensor name at the start of a statement");
    s->loc = name->loc;
    s->name = name->text;
    if (!consume(p, "[") || consume(p, "]"))
        return;
    int n = 0;
    do {
        lex_token *v = expect_ident(p, "an index name (left-hand side indices are plain names)");
        *(const char **)ast_push(p->a, &s->lhs, &s->nlhs, sizeof(char *)) = v->text;
        *(qk_loc *)ast_push(p->a, &s->lhs_locs, &n, sizeof(qk_loc)) = v->loc;
    } while (consume(p, ","));
    if (!equal(p->tok, "]"))
        fail_at(p, p->tok->loc, "expected ',' or ']' in left-hand side index list, found %s "
                "(left-hand side indices are plain names)", tok_desc(p, p->tok));
    p->tok++;
}

/* stmt = lhs "=" expr */
static void parse_stmt(parser *p, void *ctx)
{
    ast_kernel *k = ctx;
    ast_stmt s = {0};
    parse_lhs(p, &s);
    skip(p, "=", "after the left-hand side");
    p->depth = 0;
    s.rhs = parse_expr(p);
    end_item(p, "statement");
    *(ast_stmt *)ast_push(p->a, &k->stmts, &k->nstmts, sizeof s) = s;
}

/* kernel = "kernel" IDENT params results "{" stmt* "}" */
static void parse_kernel(parser *p)
{
    ast_kernel *k = qk_alloc(p->a, sizeof *k);
    lex_token *start = p->tok++;
    k->loc = start->loc;
    k->file = p->file;
    k->name = expect_ident(p, "a kernel name")->text;
    parse_params(p, k);
    parse_results(p, k);
    parse_block(p, parse_stmt, k, qk_asprintf(p->a, "kernel '%s'", k->name));
    k->src = p->file->text + start->off;
    k->srclen = p->tok[-1].end - start->off;
    *(ast_kernel **)ast_push(p->a, &p->file->kernels, &p->file->nkernels, sizeof k) = k;
}

/* ---- schedules ---- */

/* sitem = "tile" IDENT "=" int ("," IDENT "=" int)* | "parallel" IDENT | "unroll" int */
static void sched_item(parser *p, void *ctx)
{
    ast_sched *s = ctx;
    lex_token *key = expect_ident(p, "'tile', 'parallel' or 'unroll'");
    if (is_ident(key, "tile")) {
        do {
            ast_tile *t = ast_push(p->a, &s->tiles, &s->ntiles, sizeof *t);
            lex_token *ix = expect_ident(p, "an index name after 'tile'");
            t->index = ix->text;
            t->loc = ix->loc;
            skip(p, "=", "after the tiled index");
            t->size = parse_int(p, "a tile size", &t->size_loc);
        } while (consume(p, ","));
    } else if (is_ident(key, "parallel")) {
        if (s->parallel)
            fail_at(p, key->loc, "duplicate 'parallel' in schedule for '%s'", s->kernel);
        lex_token *ix = expect_ident(p, "an index name after 'parallel'");
        s->parallel = ix->text;
        s->parallel_loc = ix->loc;
    } else if (is_ident(key, "unroll")) {
        if (s->has_unroll)
            fail_at(p, key->loc, "duplicate 'unroll' in schedule for '%s'", s->kernel);
        s->has_unroll = 1;
        s->unroll = parse_int(p, "an unroll factor", &s->unroll_loc);
    } else {
        fail_at(p, key->loc, "unknown schedule item '%s' (expected tile, parallel or unroll)", key->text);
    }
    end_item(p, "schedule item");
}

/* schedule = "schedule" IDENT "{" sitem* "}" */
static void parse_schedule(parser *p)
{
    ast_sched *s = qk_alloc(p->a, sizeof *s);
    s->loc = p->tok++->loc;
    lex_token *name = expect_ident(p, "a kernel name after 'schedule'");
    s->kernel = name->text;
    s->name_loc = name->loc;
    parse_block(p, sched_item, s, qk_asprintf(p->a, "schedule '%s'", s->kernel));
    *(ast_sched **)ast_push(p->a, &p->file->scheds, &p->file->nscheds, sizeof s) = s;
}

/* ---- files ---- */

/* import = "import" (STRING | IDENT) */
static void parse_import(parser *p)
{
    p->tok++;
    lex_token *t = p->tok;
    const char *path = NULL;
    if (t->kind == TK_STRING && t->len > 0)
        path = t->text;
    else if (t->kind == TK_IDENT)
        path = qk_asprintf(p->a, "%s.qk", t->text);
    else
        fail_at(p, t->loc, "expected a file name (\"name.qk\" or a bare name) after 'import', found %s",
                t->kind == TK_STRING ? "an empty string" : tok_desc(p, t));
    p->tok++;
    ast_import *im = ast_push(p->a, &p->file->imports, &p->file->nimports, sizeof *im);
    im->loc = t->loc;
    im->path = path;
    if (!at_top_decl(p->tok) && !consume(p, ";") && !p->tok->bol)
        fail_at(p, p->tok->loc, "expected newline or ';' after import, found %s", tok_desc(p, p->tok));
}

/* decl = import | format | kernel | schedule | ";" */
static void parse_decl(parser *p)
{
    lex_token *t = p->tok;
    if (consume(p, ";"))
        return;
    if (equal(t, "import"))
        parse_import(p);
    else if (equal(t, "format"))
        parse_format(p);
    else if (equal(t, "kernel"))
        parse_kernel(p);
    else if (equal(t, "schedule"))
        parse_schedule(p);
    else
        fail_at(p, t->loc, "expected 'import', 'format', 'kernel' or 'schedule', found %s", tok_desc(p, t));
}

/* file = decl* EOF */
static void parse_decls(parser *p)
{
    jmp_buf jb;
    p->recover = &jb;
    while (p->tok->kind != TK_EOF) {
        lex_token *volatile start = p->tok;
        if (setjmp(jb) == 0)
            parse_decl(p);
        else
            while (p->tok->kind != TK_EOF && (p->tok == start || !at_top_decl(p->tok)))
                p->tok++;
    }
    p->recover = NULL;
}

void parse_file(ast_file *f, lex_token *toks, int ntoks, qk_arena *a, qk_diags *d)
{
    (void)ntoks;
    parser p = {.tok = toks, .a = a, .d = d, .file = f};
    parse_decls(&p);
}

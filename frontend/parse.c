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
    skip(p, "{", qk_asprintf(p->a, "to start %s", what));
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

static const char *const fattr_names[FA_COUNT] = {
    [FA_CODE] = "code",         [FA_BLOCK] = "block",   [FA_SCALE] = "scale",
    [FA_MIN] = "min",           [FA_ZERO] = "zero",     [FA_TENSOR_SCALE] = "tensor_scale",
    [FA_SPARSE] = "sparse",     [FA_CODEBOOK] = "codebook", [FA_LAYOUT] = "layout",
};

static ast_word parse_word(parser *p, const char *what)
{
    lex_token *t = expect_ident(p, what);
    return (ast_word){t->text, t->loc};
}

static ast_int parse_aint(parser *p, const char *what)
{
    ast_int r;
    r.v = parse_int(p, what, &r.loc);
    return r;
}

/* Marks a modifier seen, or reports it as a duplicate. */
static void once(parser *p, int *seen, const lex_token *t, const char *where)
{
    if (*seen)
        fail_at(p, t->loc, "duplicate '%s' in %s", t->text, where);
    *seen = 1;
}

/* number = ["-"] (INT | FLOAT) */
static double parse_number(parser *p, const char *what)
{
    int neg = consume(p, "-");
    lex_token *t = p->tok;
    if (t->kind != TK_INT && t->kind != TK_FLOAT)
        fail_at(p, t->loc, "expected %s, found %s", what, tok_desc(p, t));
    p->tok++;
    return neg ? -t->fval : t->fval;
}

/* table = "[" number ("," number)* "]" */
static void parse_table(parser *p, ast_code *c)
{
    c->table_loc = p->tok++->loc;
    do {
        double v = parse_number(p, "a table value (a number)");
        *(double *)ast_push(p->a, &c->table, &c->ntable, sizeof v) = v;
    } while (consume(p, ","));
    skip(p, "]", "after the table values");
}

/* One modifier of a code; returns 0 at the end of the code. */
static int code_modifier(parser *p, ast_code *c)
{
    lex_token *t = p->tok;
    if (t->bol)
        return 0;
    if (equal(t, "[")) {
        once(p, &c->has_table, t, "code");
        parse_table(p, c);
    } else if (is_ident(t, "offset")) {
        once(p, &c->has_offset, p->tok++, "code");
        c->offset = parse_aint(p, "an offset");
    } else if (is_ident(t, "dim")) {
        once(p, &c->has_dim, p->tok++, "code");
        c->dim = parse_aint(p, "a VQ group size after 'dim'");
    } else if (is_ident(t, "books")) {
        once(p, &c->has_books, p->tok++, "code");
        c->books = parse_aint(p, "a number of codebooks after 'books'");
    } else if (is_ident(t, "signs")) {
        once(p, &c->signs, p->tok++, "code");
        c->signs_loc = t->loc;
    } else {
        return 0;
    }
    return 1;
}

/* code = IDENT ("offset" int | "dim" INT | "books" INT | "signs" | table)* */
static void parse_code(parser *p, ast_format *f)
{
    f->code.name = parse_word(p, "a code type such as int4, e2m1, nf4, table or vq8");
    while (code_modifier(p, &f->code))
        ;
}

/* scale = "none" | IDENT ["*" IDENT] ["per" ("block" | "row" | "tensor" | INT)] */
static void parse_scale(parser *p, ast_format *f)
{
    ast_scale *s = &f->scale;
    s->num = parse_word(p, "a scale type (f32, f16, bf16, e8m0, ue4m3, e4m3 or none)");
    if (strcmp(s->num.s, "none") == 0) {
        s->none = 1;
        return;
    }
    if (consume(p, "*"))
        s->sub = parse_word(p, "a sub-block scale type such as uint6 after '*'");
    if (!is_ident(p->tok, "per") || p->tok->bol)
        return;
    p->tok++;
    if (p->tok->kind == TK_INT || equal(p->tok, "-")) {
        s->has_per_n = 1;
        s->per_n = parse_aint(p, "a sub-block size");
    } else {
        s->per = parse_word(p, "'block', 'row', 'tensor' or a sub-block size after 'per'");
    }
}

/* min = ["-"] IDENT ["*" IDENT] */
static void parse_min(parser *p, ast_format *f)
{
    f->min.neg = consume(p, "-");
    f->min.num = parse_word(p, "a min type such as f16");
    if (consume(p, "*"))
        f->min.sub = parse_word(p, "a sub-block min type such as uint6 after '*'");
}

/* zero = IDENT | number */
static void parse_zero(parser *p, ast_format *f)
{
    f->zero.loc = p->tok->loc;
    if (p->tok->kind == TK_IDENT)
        f->zero.type = parse_word(p, "a zero-point type");
    else
        f->zero.value = parse_number(p, "a zero-point type (u8, i8, f16, f32) or a constant");
}

/* sparse = INT ":" INT */
static void parse_sparse(parser *p, ast_format *f)
{
    f->sp_n = parse_aint(p, "N of N:M sparsity");
    skip(p, ":", "in N:M sparsity");
    f->sp_m = parse_aint(p, "M of N:M sparsity");
}

/* Reads "A:B" into a, b. */
static void parse_range(parser *p, ast_int *a, ast_int *b, const char *what)
{
    *a = parse_aint(p, what);
    skip(p, ":", qk_asprintf(p->a, "in %s", what));
    *b = parse_aint(p, what);
}

/* One modifier of a layout piece; returns 0 at the end of the item. */
static int piece_modifier(parser *p, ast_litem *it)
{
    lex_token *t = p->tok;
    if (t->bol || t->kind != TK_IDENT)
        return 0;
    int place_seen = it->place != QK_PLACE_STREAM;
    p->tok++;
    if (is_ident(t, "bits")) {
        once(p, &it->has_bits, t, "layout item");
        parse_range(p, &it->lo, &it->hi, "a bit range LO:HI");
    } else if (is_ident(t, "interleave") || is_ident(t, "base3")) {
        if (place_seen)
            fail_at(p, t->loc, "a layout item has at most one of 'interleave' and 'base3'");
        it->place = is_ident(t, "base3") ? QK_PLACE_BASE3 : QK_PLACE_INTERLEAVE;
        it->place_loc = t->loc;
        it->group = parse_aint(p, qk_asprintf(p->a, "a group size in bytes after '%s'", t->text));
    } else if (is_ident(t, "at")) {
        once(p, &it->has_at, t, "layout item");
        it->at = parse_aint(p, "a byte offset after 'at'");
    } else if (is_ident(t, "shift")) {
        once(p, &it->has_shift, t, "layout item");
        it->shift = parse_aint(p, "a bit shift after 'shift'");
    } else {
        fail_at(p, t->loc, "unknown layout modifier '%s' (expected bits, interleave, base3, at or shift)", t->text);
    }
    return 1;
}

/* litem = "pad" INT
 *       | IDENT ["[" INT ":" INT "]"] ("bits" INT ":" INT | "interleave" INT | "base3" INT
 *                                      | "at" INT | "shift" INT)* */
static void layout_item(parser *p, void *ctx)
{
    ast_format *f = ctx;
    ast_litem it = {.place = QK_PLACE_STREAM};
    it.loc = p->tok->loc;
    if (is_ident(p->tok, "pad")) {
        p->tok++;
        it.is_pad = 1;
        it.pad = parse_aint(p, "a number of bytes after 'pad'");
    } else {
        it.field = parse_word(p, "a layout field (scale, zero, min, subscale, submin, codes, index, signs) or 'pad'");
        if (consume(p, "[")) {
            it.has_range = 1;
            parse_range(p, &it.a, &it.b, "an item range [A:B]");
            skip(p, "]", "after the item range");
        }
        while (piece_modifier(p, &it))
            ;
    }
    end_item(p, "layout item");
    *(ast_litem *)ast_push(p->a, &f->layout, &f->nlayout, sizeof it) = it;
}

static int fattr_lookup(const char *name)
{
    for (int i = 0; i < FA_COUNT; i++)
        if (strcmp(fattr_names[i], name) == 0)
            return i;
    return -1;
}

/* attr = "code" "=" code | "block" "=" int | "scale" "=" scale | "min" "=" min
 *      | "zero" "=" zero | "tensor_scale" "=" IDENT | "sparse" "=" sparse
 *      | "codebook" "=" IDENT | "layout" "{" { litem sep } "}" */
static void format_attr(parser *p, void *ctx)
{
    ast_format *f = ctx;
    lex_token *key = expect_ident(p, "a format attribute");
    int a = fattr_lookup(key->text);
    if (a < 0)
        fail_at(p, key->loc, "unknown format attribute '%s' (expected code, block, scale, min, zero, tensor_scale, "
                "sparse, codebook or layout)", key->text);
    if (f->has[a])
        fail_at(p, key->loc, "duplicate attribute '%s' in format '%s'", key->text, f->name);
    f->has[a] = 1;
    f->key_loc[a] = key->loc;
    if (a == FA_LAYOUT) {
        parse_block(p, layout_item, f, qk_asprintf(p->a, "the layout of format '%s'", f->name));
        end_item(p, "format attribute");
        return;
    }
    skip(p, "=", qk_asprintf(p->a, "after '%s'", key->text));
    switch ((ast_fattr)a) {
    case FA_CODE: parse_code(p, f); break;
    case FA_BLOCK: f->block = parse_aint(p, "a block size"); break;
    case FA_SCALE: parse_scale(p, f); break;
    case FA_MIN: parse_min(p, f); break;
    case FA_ZERO: parse_zero(p, f); break;
    case FA_TENSOR_SCALE: f->tensor_scale = parse_word(p, "a tensor scale type (f32)"); break;
    case FA_SPARSE: parse_sparse(p, f); break;
    case FA_CODEBOOK: f->codebook = parse_word(p, "a codebook element type (f16 or f32)"); break;
    default: break;
    }
    end_item(p, "format attribute");
}

/* format = "format" IDENT "{" { attr sep } "}" */
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

/* param = IDENT ":" IDENT ["(" IDENT ")"] ["[" [dim ("," dim)*] "]"] */
static void parse_param(parser *p, ast_tensor *t)
{
    lex_token *name = expect_ident(p, "a parameter name");
    t->name = name->text;
    t->loc = name->loc;
    skip(p, ":", qk_asprintf(p->a, "after '%s'", t->name));
    lex_token *ty = expect_ident(p, "a type (a dtype or a format name)");
    t->type = ty->text;
    t->type_loc = ty->loc;
    if (consume(p, "(")) {
        t->book = parse_word(p, "the name of the codebook parameter");
        skip(p, ")", "after the codebook name");
    }
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
        e->is_int = t->kind == TK_INT;
        e->ival = t->ival;
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

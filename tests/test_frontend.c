/* test_frontend.c — unit tests of the frontend: lexer (tokens, positions,
 * numbers), parser (precedence, sum binding, affine indices, schedules),
 * sema (extents, names), the Kernel IR it produces, and imports. */
#include "frontend/ast.h"
#include "frontend/frontend.h"

#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef QKC_SOURCE_DIR
#define QKC_SOURCE_DIR "."
#endif

static const char *GEMV =
    "format q4 { code = int4 offset 8; block = 32; scale = f16 }\n"
    "kernel gemv(x: f32[K], W: q4[N, K], b: f32[N]) -> y: f32[N] {\n"
    "  y[n] = sum(k) x[k] * W[n, k] + b[n]\n"
    "}\n"
    "schedule gemv { tile n = 16, k = 256; parallel n; unroll 2 }\n";

/* ---- helpers ---- */

static kir_program *compile(const char *src, qk_diags *d)
{
    qk_diags_init(d);
    return qk_frontend_compile(src, strlen(src), "t.qk", NULL, d);
}

/* Compiles src expecting success; frees diagnostics. */
static kir_program *ok(const char *src)
{
    qk_diags d;
    kir_program *p = compile(src, &d);
    if (!p) {
        qk_buf b = {0};
        qk_diags_render(&d, &b);
        fprintf(stderr, "\nunexpected errors:\n%s", b.s);
        qk_buf_free(&b);
    }
    qk_diags_free(&d);
    return p;
}

/* Compiles src expecting an error whose message starts with msg. */
static int fails_with(const char *src, const char *msg, int line, int col)
{
    qk_diags d;
    kir_program *p = compile(src, &d);
    int found = 0;
    for (int i = 0; i < d.n; i++)
        if (strncmp(d.items[i].msg, msg, strlen(msg)) == 0 && d.items[i].loc.line == line &&
            d.items[i].loc.col == col)
            found = 1;
    if (!found) {
        qk_buf b = {0};
        qk_diags_render(&d, &b);
        fprintf(stderr, "\nwanted %d:%d: %s\ngot:\n%s", line, col, msg, b.s ? b.s : "(nothing)\n");
        qk_buf_free(&b);
    }
    kir_program_free(p);
    qk_diags_free(&d);
    return found && !p;
}

static int lex(const char *src, lex_token **toks, qk_arena *a, qk_diags *d)
{
    qk_diags_init(d);
    return lex_tokenize(src, strlen(src), "t.qk", a, d, toks);
}

/* ---- lexer ---- */

static void test_lex_tokens(void)
{
    qk_arena *a = qk_arena_new();
    qk_diags d;
    lex_token *t;
    int n = lex("kernel f(x: f32[K]) -> y # c\n  y[i]=-x[i]*2 // c2\n\"a.qk\" sum", &t, a, &d);
    CU_ASSERT_EQUAL(d.nerrors, 0);
    CU_ASSERT_EQUAL(n, 27);
    CU_ASSERT_EQUAL(t[0].kind, TK_KEYWORD);
    CU_ASSERT_EQUAL(t[1].kind, TK_IDENT);
    CU_ASSERT_STRING_EQUAL(t[10].text, "->");
    CU_ASSERT_EQUAL(t[10].loc.col, 21);
    CU_ASSERT_EQUAL(t[12].loc.line, 2);
    CU_ASSERT_EQUAL(t[12].loc.col, 3);
    CU_ASSERT(t[12].bol);
    CU_ASSERT(!t[13].bol);
    CU_ASSERT_EQUAL(t[23].kind, TK_INT);
    CU_ASSERT_EQUAL(t[24].kind, TK_STRING);
    CU_ASSERT_STRING_EQUAL(t[24].text, "a.qk");
    CU_ASSERT_EQUAL(t[24].loc.col, 1);
    CU_ASSERT_EQUAL(t[25].kind, TK_KEYWORD);
    CU_ASSERT_EQUAL(t[26].kind, TK_EOF);
    qk_diags_free(&d);
    qk_arena_free(a);
}

static void test_lex_numbers(void)
{
    qk_arena *a = qk_arena_new();
    qk_diags d;
    lex_token *t;
    int n = lex("42 1.5 1e-3 .25 2. 7E2", &t, a, &d);
    CU_ASSERT_EQUAL(n, 7);
    CU_ASSERT_EQUAL(t[0].kind, TK_INT);
    CU_ASSERT_EQUAL(t[0].ival, 42);
    CU_ASSERT_EQUAL(t[1].kind, TK_FLOAT);
    CU_ASSERT_DOUBLE_EQUAL(t[1].fval, 1.5, 0);
    CU_ASSERT_DOUBLE_EQUAL(t[2].fval, 1e-3, 1e-18);
    CU_ASSERT_DOUBLE_EQUAL(t[3].fval, 0.25, 0);
    CU_ASSERT_DOUBLE_EQUAL(t[4].fval, 2.0, 0);
    CU_ASSERT_DOUBLE_EQUAL(t[5].fval, 700.0, 0);
    CU_ASSERT_EQUAL(d.nerrors, 0);
    qk_diags_free(&d);
    n = lex("99999999999999999999999 1e999", &t, a, &d);
    CU_ASSERT_EQUAL(d.nerrors, 2);
    CU_ASSERT_EQUAL(t[0].ival, INT64_MAX);
    qk_diags_free(&d);
    qk_arena_free(a);
}

static void test_lex_bad_bytes(void)
{
    qk_arena *a = qk_arena_new();
    qk_diags d;
    lex_token *t;
    const char src[] = "a @ \xc3\xa9\xff b\0c \"x";
    qk_diags_init(&d);
    int n = lex_tokenize(src, sizeof src - 1, "t.qk", a, &d, &t);
    CU_ASSERT_EQUAL(d.nerrors, 4); /* '@', the UTF-8 run, NUL, unterminated string */
    CU_ASSERT_EQUAL(n, 5);         /* a b c "x" EOF */
    CU_ASSERT_EQUAL(d.items[1].loc.col, 5);
    CU_ASSERT_STRING_EQUAL(d.items[1].msg, "unexpected byte 0xc3");
    CU_ASSERT_STRING_EQUAL(d.items[3].msg, "unterminated string");
    qk_diags_free(&d);
    qk_arena_free(a);
}

/* ---- parser ---- */

static ast_file *parse(const char *src, qk_arena *a, qk_diags *d)
{
    ast_file *f = qk_alloc(a, sizeof *f);
    f->name = "t.qk";
    f->text = src;
    f->len = strlen(src);
    lex_token *t;
    int n = lex(src, &t, a, d);
    parse_file(f, t, n, a, d);
    return f;
}

/* The printed tree of the first statement's right-hand side. */
static char *rhs_tree(const char *body)
{
    qk_arena *a = qk_arena_new();
    qk_diags d;
    char *src = qk_asprintf(a, "kernel k(x: f32[N]) -> y: f32[N] {\n y[i] = %s\n}\n", body);
    ast_file *f = parse(src, a, &d);
    CU_ASSERT_EQUAL(d.nerrors, 0);
    qk_buf b = {0};
    if (f->nkernels == 1 && f->kernels[0]->nstmts == 1) {
        ast_kernel *k = f->kernels[0];
        k->nparams = k->nresults = 0;
        k->stmts[0].nlhs = 0;
        ast_print_kernel(k, &b);
    }
    qk_diags_free(&d);
    qk_arena_free(a);
    return qk_buf_take(&b);
}

static void check_tree(const char *body, const char *want)
{
    char *got = rhs_tree(body);
    const char *p = strstr(got, "\n  stmt");
    p = p ? strchr(p + 1, '\n') + 1 : got;
    if (strcmp(p, want) != 0)
        fprintf(stderr, "\n%s\nwant:\n%sgot:\n%s", body, want, p);
    CU_ASSERT_STRING_EQUAL(p, want);
    free(got);
}

static void test_parse_precedence(void)
{
    check_tree("1 + 2 * 3 - 4",
               "    sub\n      add\n        num 1\n        mul\n          num 2\n          num 3\n      num 4\n");
    check_tree("-(1 + 2) / 3",
               "    div\n      neg\n        add\n          num 1\n          num 2\n      num 3\n");
    check_tree("max(1, 2)\n  * 3", "    mul\n      call max\n        num 1\n        num 2\n      num 3\n");
}

static void test_parse_sum_binding(void)
{
    check_tree("sum(k) x[k] * x[k] + x[i]",
               "    add\n      sum k\n        mul\n          load x[k]\n          load x[k]\n      load x[i]\n");
    check_tree("2 * sum(j, k) x[j] * x[k]",
               "    mul\n      num 2\n      sum j, k\n        mul\n          load x[j]\n          load x[k]\n");
    check_tree("sum(j) sum(k) x[j + k]", "    sum j\n      sum k\n        load x[j + k]\n");
}

static void test_parse_affine(void)
{
    check_tree("x[2 * i + 1] + x[i - 1 + i] + x[-i + 3 + j - j] + x[3]",
               "    add\n      add\n        add\n          load x[2*i + 1]\n          load x[2*i - 1]\n"
               "        load x[-i + 3]\n      load x[3]\n");
    qk_arena *a = qk_arena_new();
    qk_diags d;
    parse("kernel k(x: f32[N]) -> y: f32[N] { y[i] = x[a + b + c + d + e] }", a, &d);
    CU_ASSERT_EQUAL(d.nerrors, 1);
    CU_ASSERT_STRING_EQUAL(d.items[0].msg, "index expression has more than 4 index variables");
    qk_diags_free(&d);
    qk_arena_free(a);
}

static void test_parse_schedule(void)
{
    qk_arena *a = qk_arena_new();
    qk_diags d;
    ast_file *f = parse(GEMV, a, &d);
    CU_ASSERT_EQUAL(d.nerrors, 0);
    CU_ASSERT_EQUAL_FATAL(f->nscheds, 1);
    ast_sched *s = f->scheds[0];
    CU_ASSERT_STRING_EQUAL(s->kernel, "gemv");
    CU_ASSERT_EQUAL(s->ntiles, 2);
    CU_ASSERT_STRING_EQUAL(s->tiles[1].index, "k");
    CU_ASSERT_EQUAL(s->tiles[1].size, 256);
    CU_ASSERT_STRING_EQUAL(s->parallel, "n");
    CU_ASSERT_EQUAL(s->unroll, 2);
    CU_ASSERT_EQUAL(f->nformats, 1);
    CU_ASSERT_EQUAL(f->formats[0]->offset, 8);
    qk_diags_free(&d);
    qk_arena_free(a);
}

static void test_parse_recovery(void)
{
    qk_arena *a = qk_arena_new();
    qk_diags d;
    parse("kernel k(x: f32[N]) -> y: f32[N] {\n"
          "  t[i] = x[i] +\n"
          "  u[i] = x[i]\n"
          "  y[i] = (x[i]\n"
          "}\n"
          "format f { code = int4 block = 3 }\n"
          "kernel z( -> y: f32 { y = 1 }\n"
          "schedule k { tile }\n",
          a, &d);
    CU_ASSERT_EQUAL(d.nerrors, 5);
    if (d.nerrors == 5) {
        CU_ASSERT_EQUAL(d.items[0].loc.line, 3); /* '=' after u[i]: the '+' continued the line */
        CU_ASSERT_EQUAL(d.items[1].loc.line, 5); /* missing ')' */
        CU_ASSERT_EQUAL(d.items[2].loc.line, 6);
        CU_ASSERT_EQUAL(d.items[3].loc.line, 7);
        CU_ASSERT_EQUAL(d.items[4].loc.line, 8);
    }
    qk_diags_free(&d);
    qk_arena_free(a);
}

static void test_parse_depth_limit(void)
{
    qk_buf b = {0};
    qk_buf_puts(&b, "kernel k() -> y: f32 { y = ");
    for (int i = 0; i < 5000; i++)
        qk_buf_puts(&b, "(");
    qk_buf_puts(&b, "1 }");
    CU_ASSERT(fails_with(b.s, "expression nested too deeply", 1, 228));
    qk_buf_free(&b);
    qk_buf_puts(&b, "kernel k() -> y: f32 { y = 1");
    for (int i = 0; i < 5000; i++)
        qk_buf_puts(&b, " + 1");
    qk_buf_puts(&b, " }");
    CU_ASSERT(fails_with(b.s, "expression is too large", 1, 30 + 4 * (AST_MAX_HEIGHT - 1)));
    qk_buf_free(&b);
}

/* ---- sema and KIR ---- */

static const kir_var *var_named(const kir_kernel *k, int stmt, const char *name)
{
    for (int i = 0; i < k->nvars; i++)
        if (k->vars[i].stmt == stmt && strcmp(k->vars[i].name, name) == 0)
            return &k->vars[i];
    return NULL;
}

static void test_kir_gemv(void)
{
    kir_program *p = ok(GEMV);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(p->nformats, 1);
    const qk_format *f = p->formats[0];
    CU_ASSERT_EQUAL(f->code, QK_CODE_OFFSET);
    CU_ASSERT_EQUAL(f->bits, 4);
    CU_ASSERT_EQUAL(f->offset, 8);
    CU_ASSERT_EQUAL(f->block, 32);
    CU_ASSERT_EQUAL(f->scale, QK_SCALE_BLOCK);
    CU_ASSERT_EQUAL(f->scale_dtype, QK_DT_F16);
    CU_ASSERT_EQUAL(f->zero, QK_ZERO_NONE);
    CU_ASSERT_EQUAL(f->block_bytes, 18);
    CU_ASSERT_EQUAL_FATAL(p->nkernels, 1);
    const kir_kernel *k = p->kernels[0];
    char err[256] = "";
    CU_ASSERT_EQUAL(kir_verify(k, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(k->name, "gemv");
    CU_ASSERT_EQUAL(k->ntensors, 4);
    CU_ASSERT_EQUAL(k->nparams, 3);
    CU_ASSERT_EQUAL(k->nresults, 1);
    CU_ASSERT_EQUAL_FATAL(k->nsyms, 2);
    CU_ASSERT_STRING_EQUAL(k->syms[0], "K");
    CU_ASSERT_STRING_EQUAL(k->syms[1], "N");
    CU_ASSERT_PTR_EQUAL(k->tensors[1].fmt, f);
    CU_ASSERT_EQUAL(k->tensors[1].dtype, QK_DT_NONE);
    CU_ASSERT_EQUAL(k->tensors[3].kind, KIR_RESULT);
    CU_ASSERT_EQUAL(k->tensors[3].def_stmt, 0);
    CU_ASSERT_EQUAL(k->tensors[0].def_stmt, -1);
    CU_ASSERT_EQUAL(k->nvars, 2);
    const kir_var *n = var_named(k, 0, "n"), *kk = var_named(k, 0, "k");
    CU_ASSERT_FATAL(n && kk);
    CU_ASSERT(!n->is_reduction && n->extent.sym == 1 && n->extent.c == 0);
    CU_ASSERT(kk->is_reduction && kk->extent.sym == 0 && kk->extent.c == 0);
    const kir_expr *e = k->stmts[0].rhs;
    CU_ASSERT_EQUAL(e->kind, KE_BIN);
    CU_ASSERT_EQUAL(e->op, KB_ADD);
    CU_ASSERT_EQUAL(e->a->kind, KE_SUM);
    CU_ASSERT_EQUAL(e->a->nvars, 1);
    CU_ASSERT_EQUAL(e->a->a->b->tensor, 1);
    CU_ASSERT_EQUAL(e->a->a->b->idx[1].terms[0].var, e->a->vars[0]);
    CU_ASSERT(k->sched.present);
    CU_ASSERT_EQUAL(k->sched.ntiles, 2);
    CU_ASSERT_EQUAL(k->sched.unroll, 2);
    CU_ASSERT_STRING_EQUAL(k->sched.parallel, "n");
    CU_ASSERT(strncmp(k->source, "kernel gemv(", 12) == 0);
    CU_ASSERT(k->source[strlen(k->source) - 1] == '}');
    CU_ASSERT(strstr(k->ast, "sum k") != NULL);
    CU_ASSERT_STRING_EQUAL(k->loc.file, "t.qk");
    CU_ASSERT_EQUAL(e->loc.line, 3);
    kir_program_free(p);
}

static void test_kir_temps_and_casts(void)
{
    kir_program *p = ok("format q8 { code = int8; block = 32; scale = f32 }\n"
                        "kernel mlp(x: f32[M, K], W: q8[N, K], b: f32[N]) -> (y: f32[M, N], z: f16[M, N]) {\n"
                        "  t[m, n] = sum(k) x[m, k] * W[n, k]\n"
                        "  y[m, n] = relu(t[m, n] + b[n])\n"
                        "  z[m, n] = f16(gelu(t[m, n])); s = 2.5e-1\n"
                        "}\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    const kir_kernel *k = p->kernels[0];
    char err[256] = "";
    CU_ASSERT_EQUAL(kir_verify(k, err, sizeof err), 0);
    CU_ASSERT_EQUAL(k->ntensors, 7);
    CU_ASSERT_EQUAL(k->nresults, 2);
    const kir_tensor *t = &k->tensors[5];
    CU_ASSERT_STRING_EQUAL(t->name, "t");
    CU_ASSERT_EQUAL(t->kind, KIR_TEMP);
    CU_ASSERT_EQUAL(t->dtype, QK_DT_NONE);
    CU_ASSERT_PTR_NULL(t->fmt);
    CU_ASSERT_EQUAL(t->rank, 2);
    CU_ASSERT(t->dims[0].sym == 0 && t->dims[1].sym == 2); /* M, N */
    CU_ASSERT_EQUAL(k->tensors[6].rank, 0);
    CU_ASSERT_EQUAL(k->nstmts, 4);
    const kir_expr *z = k->stmts[2].rhs;
    CU_ASSERT(z->kind == KE_CAST && z->op == QK_DT_F16);
    CU_ASSERT(z->a->kind == KE_UN && z->a->op == KU_GELU);
    CU_ASSERT(k->stmts[1].rhs->kind == KE_UN && k->stmts[1].rhs->op == KU_RELU);
    CU_ASSERT_DOUBLE_EQUAL(k->stmts[3].rhs->value, 0.25, 0);
    kir_program_free(p);
}

static void test_kir_conv(void)
{
    char *src = qk_read_file(QKC_SOURCE_DIR "/examples/conv.qk", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(src);
    kir_program *p = ok(src);
    free(src);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    const kir_kernel *k = p->kernels[0];
    char err[256] = "";
    CU_ASSERT_EQUAL(kir_verify(k, err, sizeof err), 0);
    CU_ASSERT_EQUAL(k->nsyms, 4); /* C H W O */
    const kir_var *h = var_named(k, 0, "h"), *r = var_named(k, 0, "r");
    CU_ASSERT_FATAL(h && r);
    CU_ASSERT(h->extent.sym == 1 && h->extent.c == -2);
    CU_ASSERT(r->extent.sym == -1 && r->extent.c == 3 && r->is_reduction);
    const kir_expr *sum = k->stmts[0].rhs;
    CU_ASSERT_EQUAL(sum->kind, KE_SUM);
    CU_ASSERT_EQUAL(sum->nvars, 3);
    const kir_index *ix = &sum->a->a->idx[1];
    CU_ASSERT_EQUAL(ix->nterms, 2);
    kir_program_free(p);
}

static void test_sema_errors(void)
{
    const char *hdr = "kernel k(x: f32[N], A: f32[N, N]) -> y: f32[N] {\n";
    struct {
        const char *body, *msg;
        int line, col;
    } cases[] = {
        {"y[i] = x[j]", "index 'j' is not bound", 2, 10},
        {"y[i] = A[i]", "'A' has rank 2 but is indexed with 1 index", 2, 8},
        {"y[i] = sum(i) x[i]", "summation index 'i' is also an index of the left-hand side", 2, 12},
        {"y[i] = sum(j) sum(j) A[i, j]", "summation index 'j' shadows", 2, 19},
        {"y[i] = sum(j) x[i + j]", "cannot infer the range of index 'j'", 2, 12},
        {"y[i] = q[i]", "unknown tensor 'q'", 2, 8},
        {"x[i] = 1", "cannot assign to parameter 'x'", 2, 1},
        {"y[i, j] = 1", "'y' has rank 1 but is assigned with 2 indices", 2, 1},
        {"y[i] = foo(x[i])", "unknown function 'foo'", 2, 8},
        {"y[i] = max(x[i])", "'max' takes 2 arguments, found 1", 2, 8},
        {"y[i] = t[i]\nt[i] = x[i]", "temp 't' is used before it is defined", 2, 8},
        {"y[i] = i", "index 'i' cannot be used as a value", 2, 8},
    };
    for (int i = 0; i < QK_COUNT(cases); i++) {
        qk_buf b = {0};
        qk_buf_printf(&b, "%s%s\n}\n", hdr, cases[i].body);
        CU_ASSERT(fails_with(b.s, cases[i].msg, cases[i].line, cases[i].col));
        qk_buf_free(&b);
    }
}

static void test_sema_extents(void)
{
    CU_ASSERT(fails_with("kernel k(x: f32[K], W: f32[N, J]) -> y: f32[N] {\n  y[n] = sum(k) x[k] * W[n, k]\n}\n",
                         "index 'k' ranges over J here but over K at 2:19", 2, 29));
    CU_ASSERT(fails_with("kernel k(x: f32[N]) -> y: f32[M+1] {\n  y[n] = x[n]\n}\n",
                         "dimension symbol 'M' of result 'y' must appear in a parameter", 1, 31));
    CU_ASSERT(fails_with("kernel k(x: f32[N]) -> y: f32[N] {\n  t[i, j] = x[i]\n  y[n] = t[n, 0]\n}\n",
                         "cannot infer the range of index 'j'", 2, 8));
    kir_program *p = ok("kernel k(x: f32[N], w: f32[3]) -> y: f32[N-2] {\n"
                        "  y[n] = sum(r) x[n + r] * w[r]\n}\n");
    CU_ASSERT_PTR_NOT_NULL(p);
    kir_program_free(p);
}

static void test_sema_schedule_errors(void)
{
    const char *k = "kernel g(x: f32[K]) -> y: f32[K] { y[n] = x[n] }\n";
    struct {
        const char *sched, *msg;
        int col;
    } cases[] = {
        {"schedule h { unroll 2 }", "unknown kernel 'h' in schedule", 10},
        {"schedule g { tile q = 4 }", "unknown index 'q' in schedule for 'g'", 19},
        {"schedule g { tile n = 0 }", "tile size 0 out of range 1..4096", 23},
        {"schedule g { tile n = 8192 }", "tile size 8192 out of range 1..4096", 23},
        {"schedule g { unroll -1 }", "unroll factor -1 out of range 1..4096", 21},
        {"schedule g { parallel m }", "unknown index 'm'", 23},
        {"schedule g {} schedule g {}", "duplicate schedule for kernel 'g'", 15},
    };
    for (int i = 0; i < QK_COUNT(cases); i++) {
        qk_buf b = {0};
        qk_buf_printf(&b, "%s%s\n", k, cases[i].sched);
        CU_ASSERT(fails_with(b.s, cases[i].msg, 2, cases[i].col));
        qk_buf_free(&b);
    }
    CU_ASSERT(fails_with("kernel g(x: f32[K]) -> y: f32 { y = sum(k) x[k] }\nschedule g { parallel k }\n",
                         "parallel index 'k' is not a left-hand side index of 'g'", 2, 23));
}

static void test_formats(void)
{
    kir_program *p = ok("format a { code = uint4 offset 8; block = 32; scale = f16 }\n"
                        "format b { code = uint3\n block = 64\n scale = f16\n zero = u8 }\n"
                        "format c { block = 16; code = int2 }\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(p->nformats, 3);
    CU_ASSERT(p->formats[0]->code == QK_CODE_OFFSET && p->formats[0]->offset == 8);
    CU_ASSERT(p->formats[1]->code == QK_CODE_UINT && p->formats[1]->zero_dtype == QK_DT_U8);
    CU_ASSERT(p->formats[1]->zero == QK_ZERO_BLOCK);
    CU_ASSERT(p->formats[2]->code == QK_CODE_SINT && p->formats[2]->scale == QK_SCALE_NONE);
    kir_program_free(p);
    CU_ASSERT(fails_with("format f { code = int9; block = 32 }", "bit width 9 out of range 1..8", 1, 19));
    CU_ASSERT(fails_with("format f { code = uint4 offset 16; block = 32 }", "offset 16 out of range 0..15", 1, 32));
    CU_ASSERT(fails_with("format f { code = int4; block = 32; block = 2 }", "duplicate attribute 'block'", 1, 37));
    CU_ASSERT(fails_with("format f { code = int4 }", "format 'f' has no 'block' attribute", 1, 1));
}

/* ---- imports ---- */

static char tmpdir[64];

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

static void test_imports(void)
{
    strcpy(tmpdir, "/tmp/qkc_fe_XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(tmpdir));
    write_file("a.qk", "import \"b.qk\"\nformat fa { code = int4; block = 32 }\n");
    write_file("b.qk", "import a\nimport \"a.qk\"\nformat fb { code = int8; block = 16; scale = f32 }\n");
    char main_path[256];
    snprintf(main_path, sizeof main_path, "%s/main.qk", tmpdir);
    const char *src = "import a\nimport ggml\n"
                      "kernel k(x: f32[K], W: fb[N, K], V: q4_0[N, K]) -> y: f32[N] {\n"
                      "  y[n] = sum(k) x[k] * (W[n, k] + V[n, k])\n}\n";
    write_file("main.qk", src);
    qk_diags d;
    qk_diags_init(&d);
    kir_program *p = qk_frontend_compile(src, strlen(src), main_path, NULL, &d);
    CU_ASSERT_PTR_NOT_NULL(p);
    CU_ASSERT_EQUAL(d.nerrors, 0);
    CU_ASSERT_EQUAL(d.nsrcs, 4);
    if (p) {
        CU_ASSERT_EQUAL(p->nformats, 6); /* fa, fb, 4 from ggml */
        CU_ASSERT_PTR_NOT_NULL(kir_find_format(p, "q4_0"));
    }
    qk_diags_free(&d);
    /* Locs stay valid after the diagnostics are gone. */
    if (p)
        CU_ASSERT(strstr(p->kernels[0]->loc.file, "main.qk") != NULL);
    kir_program_free(p);

    /* A file given only by dsl_path, and a missing import. */
    qk_diags_init(&d);
    const char *s2 = "import a\nimport missing\n";
    p = qk_frontend_compile(s2, strlen(s2), NULL, tmpdir, &d);
    CU_ASSERT_PTR_NULL(p);
    CU_ASSERT_EQUAL(d.nerrors, 1);
    if (d.n == 1) {
        CU_ASSERT_STRING_EQUAL(d.items[0].msg, "cannot find import 'missing.qk'");
        CU_ASSERT_EQUAL(d.items[0].loc.line, 2);
        CU_ASSERT_EQUAL(d.items[0].loc.col, 8);
    }
    qk_diags_free(&d);

    /* $QKC_DSL_PATH is searched last. */
    setenv("QKC_DSL_PATH", tmpdir, 1);
    qk_diags_init(&d);
    p = qk_frontend_compile("import b", 8, NULL, NULL, &d);
    CU_ASSERT_PTR_NOT_NULL(p);
    kir_program_free(p);
    qk_diags_free(&d);
    unsetenv("QKC_DSL_PATH");

    /* Redefinition across files names the other file. */
    qk_diags_init(&d);
    const char *s3 = "import a\nformat fb { code = int8; block = 16 }\n";
    p = qk_frontend_compile(s3, strlen(s3), main_path, NULL, &d);
    CU_ASSERT_PTR_NULL(p);
    CU_ASSERT(d.n == 1 && strstr(d.items[0].msg, "redefinition of format 'fb' (first defined at") &&
              strstr(d.items[0].msg, "b.qk:3:1"));
    qk_diags_free(&d);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

static void test_examples_and_dsl(void)
{
    static const char *const files[] = {"examples/q4_gemv.qk", "examples/q8_gemm_relu.qk", "examples/q3_zero.qk",
                                        "examples/ffn.qk",     "examples/conv.qk",         "dsl/ggml.qk",
                                        "dsl/basic.qk"};
    for (int i = 0; i < QK_COUNT(files); i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", QKC_SOURCE_DIR, files[i]);
        size_t len;
        char *src = qk_read_file(path, &len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(src);
        qk_diags d;
        qk_diags_init(&d);
        kir_program *p = qk_frontend_compile(src, len, path, NULL, &d);
        CU_ASSERT_PTR_NOT_NULL(p);
        for (int j = 0; p && j < p->nkernels; j++) {
            char err[256] = "";
            int rc = kir_verify(p->kernels[j], err, sizeof err);
            if (rc)
                fprintf(stderr, "\n%s: %s\n", files[i], err);
            CU_ASSERT_EQUAL(rc, 0);
        }
        kir_program_free(p);
        qk_diags_free(&d);
        free(src);
    }
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite lexs = CU_add_suite("lex", NULL, NULL);
    CU_add_test(lexs, "tokens and positions", test_lex_tokens);
    CU_add_test(lexs, "numbers", test_lex_numbers);
    CU_add_test(lexs, "bad bytes", test_lex_bad_bytes);
    CU_pSuite ps = CU_add_suite("parse", NULL, NULL);
    CU_add_test(ps, "precedence", test_parse_precedence);
    CU_add_test(ps, "sum binding", test_parse_sum_binding);
    CU_add_test(ps, "affine indices", test_parse_affine);
    CU_add_test(ps, "schedule", test_parse_schedule);
    CU_add_test(ps, "error recovery", test_parse_recovery);
    CU_add_test(ps, "depth limits", test_parse_depth_limit);
    CU_pSuite ss = CU_add_suite("sema+kir", NULL, NULL);
    CU_add_test(ss, "gemv", test_kir_gemv);
    CU_add_test(ss, "temps and casts", test_kir_temps_and_casts);
    CU_add_test(ss, "conv", test_kir_conv);
    CU_add_test(ss, "errors", test_sema_errors);
    CU_add_test(ss, "extents", test_sema_extents);
    CU_add_test(ss, "schedule errors", test_sema_schedule_errors);
    CU_add_test(ss, "formats", test_formats);
    CU_pSuite is = CU_add_suite("imports", NULL, NULL);
    CU_add_test(is, "resolution", test_imports);
    CU_add_test(is, "examples and dsl", test_examples_and_dsl);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures != 0;
}

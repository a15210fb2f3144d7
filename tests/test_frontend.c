/* test_frontend.c — unit tests of the frontend: lexer (tokens, positions,
 * numbers), parser (precedence, sum binding, affine indices, schedules),
 * sema (extents, names), the Kernel IR it produces, and imports. */
#include "frontend/ast.h"
#include "frontend/frontend.h"

#include <CUnit/Basic.h>
#include <dirent.h>
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
    CU_ASSERT(f->formats[0]->code.has_offset && f->formats[0]->code.offset.v == 8);
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
    CU_ASSERT_EQUAL(f->scale_per, QK_PER_BLOCK);
    CU_ASSERT_EQUAL(f->scale_num, QK_NUM_F16);
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
    CU_ASSERT(p->formats[1]->code == QK_CODE_UINT && p->formats[1]->zero_num == QK_NUM_U8);
    CU_ASSERT(p->formats[1]->zero == QK_ZERO_BLOCK);
    CU_ASSERT(p->formats[2]->code == QK_CODE_SINT && p->formats[2]->scale_per == QK_PER_NONE);
    kir_program_free(p);
    CU_ASSERT(fails_with("format f { code = int9; block = 32 }", "bit width 9 out of range 1..8", 1, 19));
    CU_ASSERT(fails_with("format f { code = uint4 offset 16; block = 32 }", "offset 16 out of range 0..15", 1, 32));
    CU_ASSERT(fails_with("format f { code = int4; block = 32; block = 2 }", "duplicate attribute 'block'", 1, 37));
    CU_ASSERT(fails_with("format f { code = int4 }", "format 'f' has no 'block' attribute", 1, 1));
}

/* ---- format attributes (format.h fields) ---- */

/* The one format of src, compiled alone; NULL (reported) on errors. */
static kir_program *one_format(const char *src, const qk_format **f)
{
    kir_program *p = ok(src);
    *f = p && p->nformats == 1 ? p->formats[0] : NULL;
    CU_ASSERT_PTR_NOT_NULL(*f);
    return p;
}

static void test_format_scalar_codes(void)
{
    static const struct {
        const char *code;
        qk_code_kind kind;
        int bits, ebits, mbits, bias;
        qk_mf_special special;
    } cases[] = {
        {"ternary", QK_CODE_TERNARY, 2, 0, 0, 0, 0},
        {"binary", QK_CODE_BINARY, 1, 0, 0, 0, 0},
        {"e2m1", QK_CODE_MINIFLOAT, 4, 2, 1, 1, QK_MF_FINITE},
        {"e3m2", QK_CODE_MINIFLOAT, 6, 3, 2, 3, QK_MF_FINITE},
        {"e2m3", QK_CODE_MINIFLOAT, 6, 2, 3, 1, QK_MF_FINITE},
        {"e4m3", QK_CODE_MINIFLOAT, 8, 4, 3, 7, QK_MF_FN},
        {"e5m2", QK_CODE_MINIFLOAT, 8, 5, 2, 15, QK_MF_IEEE},
        {"uint5 offset 16", QK_CODE_OFFSET, 5, 0, 0, 0, 0},
        {"int3", QK_CODE_SINT, 3, 0, 0, 0, 0},
    };
    for (int i = 0; i < QK_COUNT(cases); i++) {
        char src[128];
        snprintf(src, sizeof src, "format f { code = %s; block = 32; scale = f16 }", cases[i].code);
        const qk_format *f;
        kir_program *p = one_format(src, &f);
        if (f) {
            CU_ASSERT_EQUAL(f->code, cases[i].kind);
            CU_ASSERT_EQUAL(f->bits, cases[i].bits);
            if (cases[i].kind == QK_CODE_MINIFLOAT) {
                CU_ASSERT(f->ebits == cases[i].ebits && f->mbits == cases[i].mbits && f->bias == cases[i].bias);
                CU_ASSERT_EQUAL(f->special, cases[i].special);
            }
            /* canonical layout: f16 scale, then the codes packed */
            CU_ASSERT_EQUAL(f->block_bytes, 2 + (32 * cases[i].bits + 7) / 8);
            CU_ASSERT_EQUAL(f->explicit_layout, 0);
        }
        kir_program_free(p);
    }
}

static void test_format_tables(void)
{
    /* NF4: the normal-float quantiles of QLoRA (Dettmers et al. 2023). */
    static const double nf4[16] = {-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
                                   -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
                                   0.07958029955625534, 0.16093020141124725, 0.24611230194568634,
                                   0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                                   0.7229568362236023, 1.0};
    const qk_format *f;
    kir_program *p = one_format("format n { code = nf4; block = 64; scale = f16 }", &f);
    if (f) {
        CU_ASSERT(f->code == QK_CODE_TABLE && f->bits == 4);
        for (int i = 0; i < 16; i++)
            CU_ASSERT_DOUBLE_EQUAL(f->table[i], nf4[i], 0);
    }
    kir_program_free(p);
    p = one_format("format t { code = table [-1.5, -0.25,\n 0, 2e1]; block = 8 }", &f);
    if (f) {
        CU_ASSERT(f->code == QK_CODE_TABLE && f->bits == 2);
        CU_ASSERT(f->table[0] == -1.5 && f->table[1] == -0.25 && f->table[2] == 0 && f->table[3] == 20);
        CU_ASSERT_EQUAL(f->scale_per, QK_PER_NONE);
    }
    kir_program_free(p);
    p = one_format("format b { code = table [1, -1]; block = 8 }", &f);
    CU_ASSERT(f && f->bits == 1 && f->table[1] == -1);
    kir_program_free(p);
}

static void test_format_vq(void)
{
    const qk_format *f;
    kir_program *p = one_format("format a { code = vq16 dim 8; block = 8; scale = f16 per row }", &f);
    if (f) {
        CU_ASSERT(f->code == QK_CODE_VQ && f->bits == 16 && f->vq_dim == 8 && f->vq_books == 1);
        CU_ASSERT(!f->vq_signs && f->vq_dtype == QK_DT_F16);
        CU_ASSERT_EQUAL(f->scale_per, QK_PER_ROW);
        CU_ASSERT_EQUAL(f->row_header_bytes, 2);
        CU_ASSERT_EQUAL(f->block_bytes, 2);
        CU_ASSERT_EQUAL(qk_format_codebook_elems(f), 65536 * 8);
    }
    kir_program_free(p);
    p = one_format("format e { code = vq8 dim 8 books 2 signs; block = 32; scale = f16; codebook = f32 }", &f);
    if (f) {
        CU_ASSERT(f->code == QK_CODE_VQ && f->bits == 8 && f->vq_dim == 8 && f->vq_books == 2);
        CU_ASSERT(f->vq_signs && f->vq_dtype == QK_DT_F32);
        CU_ASSERT_EQUAL(f->items[QK_FIELD_CODES], 32 / 8 * 2);
        CU_ASSERT_EQUAL(f->items[QK_FIELD_SIGNS], 4);
        CU_ASSERT_EQUAL(f->width[QK_FIELD_SIGNS], 7);
    }
    kir_program_free(p);
}

static void test_format_scales_mins_zeros(void)
{
    const qk_format *f;
    kir_program *p = one_format("format a { code = uint4; block = 256; scale = f16 * uint6 per 32\n"
                                "  min = -f16 * uint6 }", &f);
    if (f) {
        CU_ASSERT(f->scale_per == QK_PER_BLOCK && f->scale_num == QK_NUM_F16);
        CU_ASSERT(f->sub_block == 32 && f->sub_num == QK_NUM_UINT && f->sub_bits == 6);
        CU_ASSERT(f->min_num == QK_NUM_F16 && f->min_sign == -1);
        CU_ASSERT(f->submin_num == QK_NUM_UINT && f->submin_bits == 6);
        CU_ASSERT(f->items[QK_FIELD_SUBSCALE] == 8 && f->items[QK_FIELD_SUBMIN] == 8);
    }
    kir_program_free(p);
    p = one_format("format n { code = e2m1; block = 64; scale = ue4m3 per 16; tensor_scale = f32 }", &f);
    if (f) {
        CU_ASSERT(f->scale_per == QK_PER_BLOCK && f->scale_num == QK_NUM_NONE);
        CU_ASSERT(f->sub_block == 16 && f->sub_num == QK_NUM_UE4M3);
        CU_ASSERT(f->tensor_scale == 1 && f->tensor_header_bytes == 4);
        CU_ASSERT_EQUAL(f->block_bytes, 4 + 32);
    }
    kir_program_free(p);
    p = one_format("format t { code = ternary; block = 128; scale = f32 per tensor }", &f);
    CU_ASSERT(f && f->scale_per == QK_PER_TENSOR && f->scale_num == QK_NUM_F32 && f->tensor_header_bytes == 4);
    kir_program_free(p);
    p = one_format("format m { code = uint4; block = 32; scale = bf16 per block; min = e8m0 }", &f);
    CU_ASSERT(f && f->scale_num == QK_NUM_BF16 && f->min_num == QK_NUM_E8M0 && f->min_sign == 1);
    kir_program_free(p);
    p = one_format("format z { code = uint4; block = 32; scale = f16; zero = 7.5 }", &f);
    CU_ASSERT(f && f->zero == QK_ZERO_CONST && f->zero_const == 7.5);
    kir_program_free(p);
    p = one_format("format z { code = int4; block = 32; scale = e8m0; zero = i8 }", &f);
    CU_ASSERT(f && f->zero == QK_ZERO_BLOCK && f->zero_num == QK_NUM_I8 && f->scale_num == QK_NUM_E8M0);
    kir_program_free(p);
    p = one_format("format s { code = int8; block = 64; scale = f16; sparse = 2:4 }", &f);
    if (f) {
        CU_ASSERT(f->sp_n == 2 && f->sp_m == 4 && f->kept == 32);
        CU_ASSERT(f->items[QK_FIELD_INDEX] == 32 && f->width[QK_FIELD_INDEX] == 2);
    }
    kir_program_free(p);
    p = one_format("format x { code = int8; block = 32; scale = none; zero = none }", &f);
    CU_ASSERT(f && f->scale_per == QK_PER_NONE && f->zero == QK_ZERO_NONE);
    kir_program_free(p);
}

/* ---- explicit layouts: the ggml formats of the spec, byte-exact ---- */

static const char *GGML =
    "format q4_0 { code = uint4 offset 8; block = 32; scale = f16; layout { scale; codes interleave 16 } }\n"
    "format q4_1 { code = uint4; block = 32; scale = f16; min = f16; layout { scale; min; codes interleave 16 } }\n"
    "format q5_0 { code = uint5 offset 16; block = 32; scale = f16\n"
    "              layout { scale; codes bits 4:5; codes bits 0:4 interleave 16 } }\n"
    "format q8_0 { code = int8; block = 32; scale = f16; layout { scale; codes } }\n"
    "format tq2_0 { code = ternary; block = 256; scale = f16; layout { codes interleave 32; scale } }\n"
    "format tq1_0 { code = ternary; block = 256; scale = f16\n"
    "               layout { codes[0:160] base3 32; codes[160:240] base3 16; codes[240:256] base3 4; scale } }\n"
    "format mxfp4 { code = e2m1; block = 32; scale = e8m0; layout { scale; codes interleave 16 } }\n"
    "format q4_K { code = uint4; block = 256; scale = f16 * uint6 per 32; min = -f16 * uint6\n"
    "  layout {\n"
    "    scale; min\n"
    "    subscale[0:4] interleave 4 at 4\n"
    "    submin[0:4] interleave 4 at 8\n"
    "    subscale[4:8] bits 0:4 interleave 4 at 12\n"
    "    submin[4:8] bits 0:4 interleave 4 at 12 shift 4\n"
    "    subscale[4:8] bits 4:6 interleave 4 at 4 shift 6\n"
    "    submin[4:8] bits 4:6 interleave 4 at 8 shift 6\n"
    "    codes interleave 32 at 16\n"
    "  } }\n";

#define PC(fl, pl, first, count, lo, width, byte, shift, group) \
    ((qk_piece){QK_FIELD_##fl, QK_PLACE_##pl, first, count, lo, width, byte, shift, group})

static void check_pieces(const qk_format *f, const qk_piece *want, int n, int block_bytes)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT(f->explicit_layout);
    CU_ASSERT_EQUAL(f->npieces, n);
    CU_ASSERT_EQUAL(f->block_bytes, block_bytes);
    for (int i = 0; i < n && i < f->npieces; i++) {
        const qk_piece *g = &f->pieces[i], *w = &want[i];
        int same = g->field == w->field && g->place == w->place && g->first == w->first && g->count == w->count &&
                   g->lo == w->lo && g->width == w->width && g->byte == w->byte && g->shift == w->shift &&
                   (w->place == QK_PLACE_STREAM || g->group == w->group);
        if (!same)
            fprintf(stderr, "\n%s piece %d: field %d place %d items %d+%d bits %d+%d at %d.%d group %d\n", f->name,
                    i, g->field, g->place, g->first, g->count, g->lo, g->width, g->byte, g->shift, g->group);
        CU_ASSERT(same);
    }
}

static void test_layout_pieces(void)
{
    kir_program *p = ok(GGML);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    /* The cursor starts at 0 and moves to the end of each piece. */
    check_pieces(kir_find_format(p, "q4_0"),
                 (qk_piece[]){PC(SCALE, STREAM, 0, 1, 0, 16, 0, 0, 0), PC(CODES, INTERLEAVE, 0, 32, 0, 4, 2, 0, 16)},
                 2, 18);
    check_pieces(kir_find_format(p, "q4_1"),
                 (qk_piece[]){PC(SCALE, STREAM, 0, 1, 0, 16, 0, 0, 0), PC(MIN, STREAM, 0, 1, 0, 16, 2, 0, 0),
                              PC(CODES, INTERLEAVE, 0, 32, 0, 4, 4, 0, 16)},
                 3, 20);
    /* 32 one-bit items from byte 2 end at byte 6. */
    check_pieces(kir_find_format(p, "q5_0"),
                 (qk_piece[]){PC(SCALE, STREAM, 0, 1, 0, 16, 0, 0, 0), PC(CODES, STREAM, 0, 32, 4, 1, 2, 0, 0),
                              PC(CODES, INTERLEAVE, 0, 32, 0, 4, 6, 0, 16)},
                 3, 22);
    check_pieces(kir_find_format(p, "q8_0"),
                 (qk_piece[]){PC(SCALE, STREAM, 0, 1, 0, 16, 0, 0, 0), PC(CODES, STREAM, 0, 32, 0, 8, 2, 0, 0)}, 2,
                 34);
    /* 256 2-bit codes, 4 per byte, runs of 32 bytes: 64 bytes. */
    check_pieces(kir_find_format(p, "tq2_0"),
                 (qk_piece[]){PC(CODES, INTERLEAVE, 0, 256, 0, 2, 0, 0, 32), PC(SCALE, STREAM, 0, 1, 0, 16, 64, 0, 0)},
                 2, 66);
    /* 5 digits per byte: 160/5 = 32, 80/5 = 16 bytes; 16 digits in runs of 4 bytes fill 4 bytes. */
    check_pieces(kir_find_format(p, "tq1_0"),
                 (qk_piece[]){PC(CODES, BASE3, 0, 160, 0, 2, 0, 0, 32), PC(CODES, BASE3, 160, 80, 0, 2, 32, 0, 16),
                              PC(CODES, BASE3, 240, 16, 0, 2, 48, 0, 4), PC(SCALE, STREAM, 0, 1, 0, 16, 52, 0, 0)},
                 4, 54);
    check_pieces(kir_find_format(p, "mxfp4"),
                 (qk_piece[]){PC(SCALE, STREAM, 0, 1, 0, 8, 0, 0, 0), PC(CODES, INTERLEAVE, 0, 32, 0, 4, 1, 0, 16)},
                 2, 17);
    check_pieces(kir_find_format(p, "q4_K"),
                 (qk_piece[]){PC(SCALE, STREAM, 0, 1, 0, 16, 0, 0, 0), PC(MIN, STREAM, 0, 1, 0, 16, 2, 0, 0),
                              PC(SUBSCALE, INTERLEAVE, 0, 4, 0, 6, 4, 0, 4), PC(SUBMIN, INTERLEAVE, 0, 4, 0, 6, 8, 0, 4),
                              PC(SUBSCALE, INTERLEAVE, 4, 4, 0, 4, 12, 0, 4),
                              PC(SUBMIN, INTERLEAVE, 4, 4, 0, 4, 12, 4, 4),
                              PC(SUBSCALE, INTERLEAVE, 4, 4, 4, 2, 4, 6, 4),
                              PC(SUBMIN, INTERLEAVE, 4, 4, 4, 2, 8, 6, 4),
                              PC(CODES, INTERLEAVE, 0, 256, 0, 4, 16, 0, 32)},
                 9, 144);
    kir_program_free(p);
}

static uint64_t fe_rng = 0x9E3779B97F4A7C15ull;

static void random_block(uint8_t *b, int n)
{
    for (int i = 0; i < n; i++) {
        fe_rng ^= fe_rng << 13, fe_rng ^= fe_rng >> 7, fe_rng ^= fe_rng << 17;
        b[i] = (uint8_t)(fe_rng >> 24);
    }
}

/* Items read through the layout match ggml's definitions (FORMATS.md). */
static void test_layout_ggml_bytes(void)
{
    kir_program *p = ok(GGML);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    uint8_t b[144];
    const qk_format *f = kir_find_format(p, "q4_K");
    random_block(b, 144);
    const uint8_t *sc = b + 4, *qs = b + 16;
    for (int j = 0; j < 8; j++) {
        int s = j < 4 ? sc[j] & 63 : (sc[j + 4] & 0xF) | ((sc[j - 4] >> 6) << 4);
        int m = j < 4 ? sc[j + 4] & 63 : (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4);
        CU_ASSERT_EQUAL(qk_format_item(f, b, QK_FIELD_SUBSCALE, j), (uint32_t)s);
        CU_ASSERT_EQUAL(qk_format_item(f, b, QK_FIELD_SUBMIN, j), (uint32_t)m);
    }
    for (int i = 0; i < 256; i++) {
        int j = i / 32, q = qs[32 * (j / 2) + i % 32];
        CU_ASSERT_EQUAL(qk_format_item(f, b, QK_FIELD_CODES, i), (uint32_t)(j % 2 ? q >> 4 : q & 15));
    }
    CU_ASSERT_EQUAL(qk_format_item(f, b, QK_FIELD_SCALE, 0), (uint32_t)(b[0] | b[1] << 8));
    CU_ASSERT_EQUAL(qk_format_item(f, b, QK_FIELD_MIN, 0), (uint32_t)(b[2] | b[3] << 8));
    f = kir_find_format(p, "q5_0");
    random_block(b, 22);
    uint32_t h = b[2] | b[3] << 8 | b[4] << 16 | (uint32_t)b[5] << 24;
    for (int i = 0; i < 32; i++) {
        uint32_t lo = i < 16 ? b[6 + i] & 15 : b[6 + i - 16] >> 4;
        CU_ASSERT_EQUAL(qk_format_item(f, b, QK_FIELD_CODES, i), lo | ((h >> i) & 1) << 4);
    }
    f = kir_find_format(p, "tq2_0");
    random_block(b, 66);
    for (int i = 0; i < 256; i++)
        CU_ASSERT_EQUAL(qk_format_item(f, b, QK_FIELD_CODES, i), (uint32_t)((b[(i / 128) * 32 + i % 32] >> (2 * ((i / 32) % 4))) & 3));
    f = kir_find_format(p, "tq1_0");
    random_block(b, 54);
    static const int pow3[5] = {1, 3, 9, 27, 81};
    for (int i = 0; i < 256; i++) {
        int byte = i < 160 ? i % 32 : i < 240 ? 32 + (i - 160) % 16 : 48 + (i - 240) % 4;
        int n = i < 160 ? i / 32 : i < 240 ? (i - 160) / 16 : (i - 240) / 4;
        CU_ASSERT_EQUAL(qk_format_item(f, b, QK_FIELD_CODES, i), (uint32_t)(((b[byte] * pow3[n]) & 255) * 3 >> 8));
    }
    kir_program_free(p);
}

static void test_layout_pad_and_cursor(void)
{
    const qk_format *f;
    /* pad moves the cursor; 'at' does not move it back. */
    kir_program *p = one_format("format f { code = int4; block = 8; scale = f16; zero = u8\n"
                                "  layout { zero; pad 1; scale; codes[4:8] at 10; codes[0:4] } }", &f);
    if (f)
        check_pieces(f,
                     (qk_piece[]){PC(ZERO, STREAM, 0, 1, 0, 8, 0, 0, 0), PC(SCALE, STREAM, 0, 1, 0, 16, 2, 0, 0),
                                  PC(CODES, STREAM, 4, 4, 0, 4, 10, 0, 0), PC(CODES, STREAM, 0, 4, 0, 4, 12, 0, 0)},
                     4, 14);
    kir_program_free(p);
    p = one_format("format g { code = int4; block = 8; layout { codes[4:8] at 2\n codes[0:4] at 0 } }", &f);
    if (f)
        check_pieces(f, (qk_piece[]){PC(CODES, STREAM, 4, 4, 0, 4, 2, 0, 0), PC(CODES, STREAM, 0, 4, 0, 4, 0, 0, 0)},
                     2, 4);
    kir_program_free(p);
}

static void test_format_errors(void)
{
    static const struct {
        const char *src, *msg;
        int col;
    } cases[] = {
        {"format f { code = vq8 dim 6; block = 32 }", "block 32 is not a multiple of the VQ dim 6", 38},
        {"format f { code = int8; block = 30; sparse = 2:4 }", "block 30 is not a multiple of the sparsity group 4", 33},
        {"format f { code = uint4; block = 64; scale = f16 * uint6 per 24 }",
         "block 64 is not a multiple of the sub-block size 24", 62},
        {"format f { code = int8; block = 32; sparse = 4:4 }", "sparsity N = 4 out of range 1..3", 46},
        {"format f { code = int8; block = 32; sparse = 1:17 }", "sparsity group M = 17 out of range 2..16", 48},
        {"format f { code = table [1, 2, 3]; block = 32 }", "table has 3 values", 25},
        {"format f { code = int4; block = 32; codebook = f16 }", "'codebook' applies only to VQ codes", 37},
        {"format f { code = uint4; block = 32; zero = u8; min = f16 }", "format 'f' has both 'zero' and 'min'", 49},
        {"format f { code = uint4; block = 32; scale = f16; min = f16 * uint6 }",
         "a two-level min needs a two-level scale", 63},
        {"format f { code = vq8; block = 32 }", "VQ code 'vq8' needs 'dim D'", 19},
        {"format f { code = vq17 dim 2; block = 32 }", "VQ index width 17 out of range 1..16", 19},
        {"format f { code = int4 dim 8; block = 32 }", "'dim' applies only to vqN codes", 28},
        {"format f { code = e9m9; block = 32 }", "unknown code type 'e9m9'", 19},
        {"format f { code = int4; block = 32; scale = f16 * uint6 }", "a two-level scale is per sub-block", 51},
        {"format f { code = int4; block = 32; scale = f16 per col }", "unknown scale granularity 'col'", 53},
        {"format f { code = int4; block = 32; layout { scale } }", "format 'f' has no 'scale' field", 46},
        {"format f { code = int4; block = 32; layout { codes[0:40] } }", "item range [0:40] out of range", 52},
        {"format f { code = int4; block = 32; layout { codes bits 2:5 } }", "bit range 2:5 out of range", 57},
        {"format f { code = int4; block = 32; layout { codes; codes[3:4] } }",
         "bit 0 of 'codes' item 3 is placed twice", 53},
        {"format f { code = int4; block = 32; layout { codes[1:32] } }",
         "the layout of format 'f' does not place bit 0 of 'codes' item 0", 37},
        {"format f { code = int4; block = 32; layout { codes shift 4 } }", "'shift' needs an explicit position", 58},
        {"format f { code = int4; block = 32; layout { codes; pad 2 } }", "'pad' at the end of a layout", 53},
        {"format f { code = int4; block = 32; layout { codes at 0 foo } }", "unknown layout modifier 'foo'", 57},
        {"format f { code = vq8 dim 8 dim 4; block = 32 }", "duplicate 'dim' in code", 29},
    };
    for (int i = 0; i < QK_COUNT(cases); i++)
        CU_ASSERT(fails_with(cases[i].src, cases[i].msg, 1, cases[i].col));
    /* What only qk_format_finish knows is reported at the format, or at the layout. */
    qk_diags d;
    kir_program *p = compile("format f { code = int4; block = 32; min = f16 }", &d);
    CU_ASSERT(!p && d.n == 1 && d.items[0].loc.col == 1 && strstr(d.items[0].msg, "min"));
    qk_diags_free(&d);
    p = compile("format f { code = int4; block = 32; scale = f16\n layout { scale; codes at 1 } }", &d);
    CU_ASSERT(!p && d.n == 1 && d.items[0].loc.line == 2 && d.items[0].loc.col == 2);
    qk_diags_free(&d);
}

/* ---- quantize(), hadamard(), codebooks ---- */

static const char *QH = "format q8 { code = int8; block = 32; scale = f16 }\n"
                        "kernel qh(x: f32[M, K], W: q8[N, K]) -> y: f32[M, N] {\n"
                        "  xh[m, k] = hadamard(x[m, k], k, 16, 7)\n"
                        "  xq[m, k] = quantize(xh[m, k] * 2, q8)\n"
                        "  z[k] = hadamard(x[0, k], k)\n"
                        "  y[m, n] = sum(k) xq[m, k] * W[n, k] * z[k]\n"
                        "}\n";

static void test_kir_quantize_hadamard(void)
{
    kir_program *p = ok(QH);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    const kir_kernel *k = p->kernels[0];
    char err[256] = "";
    CU_ASSERT_EQUAL(kir_verify(k, err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(k->ntensors, 6);
    const kir_tensor *xh = &k->tensors[3], *xq = &k->tensors[4], *z = &k->tensors[5];
    CU_ASSERT(xh->kind == KIR_TEMP && xh->materialized && xh->dtype == QK_DT_F32 && !xh->fmt && xh->rank == 2);
    CU_ASSERT(xq->kind == KIR_TEMP && xq->materialized && xq->dtype == QK_DT_NONE && xq->rank == 2);
    CU_ASSERT_PTR_EQUAL(xq->fmt, p->formats[0]);
    CU_ASSERT(xq->dims[0].sym == 0 && xq->dims[1].sym == 1); /* M, K */
    CU_ASSERT(z->materialized && z->rank == 1 && z->dims[0].sym == 1);
    CU_ASSERT(!k->tensors[0].materialized && k->tensors[0].book == -1 && k->tensors[1].book == -1);
    const kir_expr *h = k->stmts[0].rhs;
    CU_ASSERT(h->kind == KE_HADAMARD && h->hvar == k->stmts[0].lhs[1] && h->hsize == 16 && h->hseed == 7);
    CU_ASSERT(h->a->kind == KE_LOAD && h->a->tensor == 0);
    const kir_expr *q = k->stmts[1].rhs;
    CU_ASSERT(q->kind == KE_QUANT && q->fmt == p->formats[0]);
    CU_ASSERT(q->a->kind == KE_BIN && q->a->a->tensor == 3);
    CU_ASSERT(k->stmts[2].rhs->hsize == 0 && k->stmts[2].rhs->hseed == 0);
    qk_buf b = {0};
    kir_print_kernel(k, &b);
    CU_ASSERT(strstr(b.s, "  temp xh: f32[M, K]\n  temp xq: q8[M, K]\n") != NULL);
    CU_ASSERT(strstr(b.s, "xh[m, k] = hadamard(load x[m, k], k, 16, 7)") != NULL);
    CU_ASSERT(strstr(b.s, "xq[m, k] = quantize(mul(load xh[m, k], 2), q8)") != NULL);
    CU_ASSERT(strstr(b.s, "z[k] = hadamard(load x[0, k], k, 0, 0)") != NULL);
    qk_buf_free(&b);
    CU_ASSERT(strstr(k->ast, "quantize q8") && strstr(k->ast, "hadamard k, size 16, seed 7"));
    kir_program_free(p);
}

static void test_kir_codebook(void)
{
    kir_program *p = ok("format aq { code = vq8 dim 4 books 2; block = 16; scale = f16 per row }\n"
                        "format a1 { code = vq4 dim 2; block = 8; codebook = f32 }\n"
                        "kernel g(x: f32[K], W: aq(C)[N, K], C: f16[2, E, 4], V: a1(D)[N, K], D: f32[16, 2])\n"
                        "    -> y: f32[N] {\n"
                        "  y[n] = sum(k) x[k] * (W[n, k] + V[n, k])\n"
                        "}\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    const kir_kernel *k = p->kernels[0];
    char err[256] = "";
    CU_ASSERT_EQUAL(kir_verify(k, err, sizeof err), 0);
    CU_ASSERT_EQUAL(k->tensors[1].book, 2);
    CU_ASSERT_EQUAL(k->tensors[3].book, 4);
    CU_ASSERT_EQUAL(k->tensors[2].book, -1);
    qk_buf b = {0};
    kir_print_kernel(k, &b);
    CU_ASSERT(strstr(b.s, "W: aq(C)[N, K]") && strstr(b.s, "V: a1(D)[N, K]"));
    qk_buf_free(&b);
    kir_program_free(p);
}

static void test_sema_new_errors(void)
{
    const char *fmts = "format q8 { code = int8; block = 32; scale = f16 }\n"
                       "format qm { code = uint4; block = 32; scale = f16; min = f16 }\n"
                       "format vq { code = vq8 dim 4; block = 16 }\n";
    struct {
        const char *body, *msg;
        int line, col;
    } cases[] = {
        {"kernel k(x: f32[K]) -> y: f32[K] {\n t[k] = 1 + quantize(x[k], q8)\n y[k] = t[k]\n}",
         "quantize() must be the whole right-hand side", 5, 13},
        {"kernel k(x: f32[K]) -> y: f32[K] {\n y[k] = hadamard(x[k], k)\n}",
         "hadamard() must be the whole right-hand side", 5, 9},
        {"kernel k(x: f32[K]) -> y: f32[K] {\n t[k] = quantize(x[k], qm)\n y[k] = t[k]\n}",
         "quantize(): ", 5, 24},
        {"kernel k(x: f32[K]) -> y: f32[K] {\n t[k] = quantize(x[k], nope)\n y[k] = t[k]\n}",
         "unknown format 'nope'", 5, 24},
        {"kernel k(x: f32[K, K]) -> y: f32[K] {\n t[k] = quantize(sum(j) x[k, j], q8)\n y[k] = t[k]\n}",
         "the operand of quantize() cannot contain a sum", 5, 18},
        {"kernel k(x: f32[K]) -> y: f32[K] {\n t[k] = hadamard(x[k], k, 12)\n y[k] = t[k]\n}",
         "hadamard size 12 is not a power of two", 5, 27},
        {"kernel k(x: f32[K], z: f32[J]) -> y: f32[K] {\n t[k] = hadamard(x[k], j)\n y[k] = t[k]\n}",
         "the second argument of hadamard() must be a left-hand side index", 5, 24},
        {"kernel k(x: f32[12]) -> y: f32[12] {\n t[k] = hadamard(x[k], k)\n y[k] = t[k]\n}",
         "hadamard over 'k' needs a power-of-two extent, found 12", 5, 24},
        {"kernel k(x: f32[24]) -> y: f32[24] {\n t[k] = hadamard(x[k], k, 16)\n y[k] = t[k]\n}",
         "hadamard size 16 does not divide the extent 24 of 'k'", 5, 27},
        {"kernel k(x: f32[K]) -> y: f32[K] {\n t[k] = hadamard(x[k], k, 0, -3)\n y[k] = t[k]\n}",
         "the seed of hadamard() must be an integer literal >= 0", 5, 30},
        {"kernel k(x: f32[K]) -> y: f32 {\n t = quantize(x[0], q8)\n y = t\n}",
         "quantize() needs a temp with at least one index", 5, 2},
        {"kernel k(x: f32[K], W: q8(C)[N, K], C: f16[256, 4]) -> y: f32[N] {\n y[n] = sum(k) W[n, k]\n}",
         "format 'q8' takes no codebook", 4, 27},
        {"kernel k(x: f32[K], W: vq[N, K]) -> y: f32[N] {\n y[n] = sum(k) W[n, k]\n}",
         "VQ format 'vq' needs its codebook parameter", 4, 24},
        {"kernel k(x: f32[K], W: vq(C)[N, K]) -> y: f32[N] {\n y[n] = sum(k) W[n, k]\n}",
         "codebook 'C' is not a parameter of kernel 'k'", 4, 27},
        {"kernel k(C: f32[256, 4], W: vq(C)[N, K]) -> y: f32[N] {\n y[n] = sum(k) W[n, k]\n}",
         "codebook 'C' of format 'vq' must be a dense f16 tensor, found f32", 4, 13},
        {"kernel k(C: f16[1024], W: vq(C)[N, K]) -> y: f32[N] {\n y[n] = sum(k) W[n, k]\n}",
         "codebook 'C' of format 'vq' must have rank 2 [256, 4] or 3 [1, 256, 4], found rank 1", 4, 10},
        {"kernel k(C: f16[255, E], W: vq(C)[N, K]) -> y: f32[N] {\n y[n] = sum(k) W[n, k]\n}",
         "codebook 'C' dimension 0 is 255, format 'vq' needs [256, 4]", 4, 17},
        {"kernel k(x: f32[K], W: f32(C)[N, K]) -> y: f32[N] {\n y[n] = sum(k) W[n, k]\n}",
         "dense tensor 'W' takes no codebook", 4, 28},
    };
    for (int i = 0; i < QK_COUNT(cases); i++) {
        qk_buf b = {0};
        qk_buf_printf(&b, "%s%s\n", fmts, cases[i].body);
        CU_ASSERT(fails_with(b.s, cases[i].msg, cases[i].line, cases[i].col));
        qk_buf_free(&b);
    }
}

static void test_spec_library(void)
{
    kir_program *p = ok(GGML);
    CU_ASSERT_PTR_NOT_NULL(p);
    qk_buf b = {0};
    if (p)
        kir_print_program(p, &b);
    CU_ASSERT(b.s && strstr(b.s, "format q4_K {") != NULL);
    qk_buf_free(&b);
    kir_program_free(p);
    /* The MX and NVFP4 families and AQLM-style codebooks. */
    p = ok("format mxfp8 { code = e4m3; block = 32; scale = e8m0 }\n"
           "format mxfp6 { code = e3m2; block = 32; scale = e8m0 }\n"
           "format mxint8 { code = int8; block = 32; scale = e8m0 }\n"
           "format nvfp4 { code = e2m1; block = 16; scale = ue4m3; tensor_scale = f32 }\n"
           "format bitnet { code = ternary; block = 256; scale = f32 per tensor }\n"
           "format xnor { code = binary; block = 64; scale = f32 per row }\n"
           "format aqlm_2x8 { code = vq8 dim 8 books 2; block = 8; scale = f16 per row }\n"
           "format e8p { code = vq8 dim 8 signs; block = 8; scale = f16 per row }\n"
           "format sp24 { code = int8; block = 32; scale = f16; sparse = 2:4 }\n");
    CU_ASSERT_PTR_NOT_NULL(p);
    CU_ASSERT(p && p->nformats == 9);
    kir_program_free(p);
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
        CU_ASSERT(p->nformats >= 6); /* fa, fb, the formats of ggml */
        CU_ASSERT_PTR_NOT_NULL(kir_find_format(p, "fa"));
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

/* Every .qk file of dir compiles, and its kernels verify. */
static void compile_dir(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", QKC_SOURCE_DIR, dir);
    DIR *dp = opendir(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dp);
    int n = 0;
    for (struct dirent *de; (de = readdir(dp));) {
        size_t len = strlen(de->d_name);
        if (len < 4 || strcmp(de->d_name + len - 3, ".qk") != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s/%s", QKC_SOURCE_DIR, dir, de->d_name);
        char *src = qk_read_file(path, &len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(src);
        qk_diags d;
        qk_diags_init(&d);
        kir_program *p = qk_frontend_compile(src, len, path, NULL, &d);
        if (!p)
            fprintf(stderr, "\n%s does not compile\n", path);
        CU_ASSERT_PTR_NOT_NULL(p);
        for (int j = 0; p && j < p->nkernels; j++) {
            char err[256] = "";
            int rc = kir_verify(p->kernels[j], err, sizeof err);
            if (rc)
                fprintf(stderr, "\n%s: %s\n", path, err);
            CU_ASSERT_EQUAL(rc, 0);
        }
        kir_program_free(p);
        qk_diags_free(&d);
        free(src);
        n++;
    }
    closedir(dp);
    CU_ASSERT(n >= 2);
}

static void test_examples_and_dsl(void)
{
    compile_dir("examples");
    compile_dir("dsl");
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
    CU_pSuite fs = CU_add_suite("formats v2", NULL, NULL);
    CU_add_test(fs, "scalar codes", test_format_scalar_codes);
    CU_add_test(fs, "tables and nf4", test_format_tables);
    CU_add_test(fs, "vq codes", test_format_vq);
    CU_add_test(fs, "scales, mins, zeros, sparsity", test_format_scales_mins_zeros);
    CU_add_test(fs, "layout pieces", test_layout_pieces);
    CU_add_test(fs, "layouts read ggml bytes", test_layout_ggml_bytes);
    CU_add_test(fs, "pad and cursor", test_layout_pad_and_cursor);
    CU_add_test(fs, "format errors", test_format_errors);
    CU_add_test(fs, "spec library", test_spec_library);
    CU_pSuite qs = CU_add_suite("quantize, hadamard, codebooks", NULL, NULL);
    CU_add_test(qs, "kir of quantize and hadamard", test_kir_quantize_hadamard);
    CU_add_test(qs, "codebook parameters", test_kir_codebook);
    CU_add_test(qs, "errors", test_sema_new_errors);
    CU_pSuite is = CU_add_suite("imports", NULL, NULL);
    CU_add_test(is, "resolution", test_imports);
    CU_add_test(is, "examples and dsl", test_examples_and_dsl);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures != 0;
}

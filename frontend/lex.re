/* lex.re — the qkc lexer (re2c). First stage of the frontend: turns one
 * source text into an array of tokens with positions, for parse.c.
 *
 * Comments run from '#' or '//' to the end of the line. Line breaks are
 * not tokens; each token records whether it is the first on its line
 * (bol), which is how the parser separates statements. Any byte sequence
 * is accepted: NUL bytes before the end, invalid UTF-8 and stray
 * characters are reported once per run and skipped. */
#include "frontend/ast.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct lexer {
    const unsigned char *src, *lim, *line_start;
    int line;
    int bol;
    const char *file;
    qk_arena *a;
    qk_diags *d;
    lex_token *toks;
    int n;
} lexer;

static const char *const keywords[] = {"import", "format", "kernel", "schedule", "sum"};

static qk_loc loc_at(const lexer *L, const unsigned char *p)
{
    return (qk_loc){L->file, L->line, (int)(p - L->line_start) + 1};
}

static lex_token *add_token(lexer *L, lex_kind kind, const unsigned char *s, const unsigned char *e)
{
    lex_token *t = ast_push(L->a, &L->toks, &L->n, sizeof *t);
    t->kind = kind;
    t->text = qk_strndup(L->a, (const char *)s, (size_t)(e - s));
    t->len = (int)(e - s);
    t->loc = loc_at(L, s);
    t->bol = L->bol;
    t->off = (size_t)(s - L->src);
    t->end = (size_t)(e - L->src);
    L->bol = 0;
    return t;
}

static void add_ident(lexer *L, const unsigned char *s, const unsigned char *e)
{
    lex_token *t = add_token(L, TK_IDENT, s, e);
    for (int i = 0; i < QK_COUNT(keywords); i++)
        if (strcmp(t->text, keywords[i]) == 0)
            t->kind = TK_KEYWORD;
}

/* Decimal integer, saturating at INT64_MAX with an error. */
static void add_int(lexer *L, const unsigned char *s, const unsigned char *e)
{
    lex_token *t = add_token(L, TK_INT, s, e);
    uint64_t v = 0;
    int big = 0;
    for (const unsigned char *p = s; p < e; p++) {
        if (v > (uint64_t)(INT64_MAX - 9) / 10)
            big = 1;
        else
            v = v * 10 + (uint64_t)(*p - '0');
    }
    if (big) {
        qk_error(L->d, t->loc, "integer literal '%.40s%s' is too large", t->text, t->len > 40 ? "..." : "");
        v = INT64_MAX;
    }
    t->ival = (int64_t)v;
    t->fval = (double)v;
}

static void add_float(lexer *L, const unsigned char *s, const unsigned char *e)
{
    lex_token *t = add_token(L, TK_FLOAT, s, e);
    errno = 0;
    t->fval = strtod(t->text, NULL);
    if (!isfinite(t->fval) || (errno == ERANGE && fabs(t->fval) > 1.0)) {
        qk_error(L->d, t->loc, "number '%.40s' is out of range", t->text);
        t->fval = 0;
    }
}

static void add_string(lexer *L, const unsigned char *s, const unsigned char *e)
{
    lex_token *t = add_token(L, TK_STRING, s + 1, e - 1);
    t->loc.col--;
    t->off--;
    t->end++;
    if (memchr(s + 1, 0, (size_t)(e - s - 2)))
        qk_error(L->d, t->loc, "string contains a NUL byte");
}

/* Reports one stray byte; returns the end of the run of bytes that are
 * equally invalid (so invalid UTF-8 gives one error, not one per byte). */
static const unsigned char *bad_char(lexer *L, const unsigned char *s)
{
    qk_loc loc = loc_at(L, s);
    if (*s >= 0x21 && *s < 0x7f)
        qk_error(L->d, loc, "unexpected character '%c'", *s);
    else
        qk_error(L->d, loc, "unexpected byte 0x%02x", *s);
    const unsigned char *p = s + 1;
    if (*s >= 0x80)
        while (p < L->lim && *p >= 0x80)
            p++;
    return p;
}

static void newline(lexer *L, const unsigned char *after)
{
    L->line++;
    L->line_start = after;
    L->bol = 1;
}

/* Scans one token (or skips blanks/comments) starting at *pcur. Returns 0
 * at the end of input. */
static int lex_step(lexer *L, const unsigned char **pcur)
{
    const unsigned char *cur = *pcur, *mar = cur, *tok = cur;
    const unsigned char *lim = L->lim;
    (void)mar;
#define DONE(e) do { *pcur = (e); return 1; } while (0)
    /*!re2c
        re2c:api:style = free-form;
        re2c:define:YYCTYPE = "unsigned char";
        re2c:define:YYCURSOR = cur;
        re2c:define:YYMARKER = mar;
        re2c:define:YYLIMIT = lim;
        re2c:yyfill:enable = 0;
        re2c:eof = 0;

        digit = [0-9];
        ident = [A-Za-z_][A-Za-z0-9_]*;
        exp   = [eE] [+-]? digit+;
        float = digit+ "." digit* exp? | "." digit+ exp? | digit+ exp;

        $                   { *pcur = cur; return 0; }
        [ \t\r\v\f]+        { DONE(cur); }
        "\n"                { newline(L, cur); DONE(cur); }
        ("#" | "//") [^\n]* { DONE(cur); }
        ident               { add_ident(L, tok, cur); DONE(cur); }
        digit+              { add_int(L, tok, cur); DONE(cur); }
        float               { add_float(L, tok, cur); DONE(cur); }
        "\"" [^"\n]* "\""   { add_string(L, tok, cur); DONE(cur); }
        "\"" [^"\n]*        {
            qk_error(L->d, loc_at(L, tok), "unterminated string");
            add_string(L, tok, cur + 1); /* keep parsing as if it were closed */
            DONE(cur);
        }
        "->" | [{}()[\],;:=+\-*/] { add_token(L, TK_PUNCT, tok, cur); DONE(cur); }
        *                   { DONE(bad_char(L, tok)); }
    */
#undef DONE
}

int lex_tokenize(const char *text, size_t len, const char *file, qk_arena *a, qk_diags *d, lex_token **out)
{
    lexer L = {0};
    L.src = L.line_start = (const unsigned char *)text;
    L.lim = L.src + len;
    L.line = 1;
    L.bol = 1;
    L.file = file;
    L.a = a;
    L.d = d;
    const unsigned char *cur = L.src;
    while (lex_step(&L, &cur))
        ;
    lex_token *eof = add_token(&L, TK_EOF, L.lim, L.lim);
    eof->bol = 1;
    *out = L.toks;
    return L.n;
}

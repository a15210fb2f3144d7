/* ast.h — the frontend's internal interface: tokens (lex.re), the syntax
 * tree (parse.c), the annotations sema.c adds to it, the tree printer
 * (ast_print.c), and the lowering to Kernel IR (compiler/kir_build.c),
 * which is the only reader of the AST outside frontend/.
 *
 * Every token and node carries a qk_loc whose file points at the name the
 * source was registered under in the qk_diags. All memory comes from one
 * arena per compilation (ast arena), freed by frontend.c.
 *
 * Prefixes: lex_, parse_, sema_, ast_. */
#ifndef QK_AST_H
#define QK_AST_H

#include "common/base.h"
#include "compiler/format.h"
#include "compiler/kir.h"

/* Limits that keep every recursive walk (here and in later stages) on a
 * bounded stack. */
#define AST_MAX_DEPTH 200   /* parser recursion: parentheses, calls, unary */
#define AST_MAX_HEIGHT 1000 /* height of one expression tree */
#define AST_MAX_SIZE 4096   /* tile, unroll sizes */
#define AST_MAX_DIM 2147483647LL

/* ---- lex.re ---- */
typedef enum {
    TK_IDENT,   /* also the contextual keywords and type names */
    TK_KEYWORD, /* reserved: import format kernel schedule sum */
    TK_INT,
    TK_FLOAT,
    TK_STRING, /* text is the contents, without quotes */
    TK_PUNCT,
    TK_EOF,
} lex_kind;

typedef struct lex_token {
    lex_kind kind;
    const char *text; /* NUL-terminated copy (arena) */
    int len;
    qk_loc loc;
    int bol;       /* first token on its line */
    size_t off;    /* byte offset of the token in the source */
    size_t end;    /* byte offset just past the token */
    int64_t ival;  /* TK_INT, saturated */
    double fval;   /* TK_INT and TK_FLOAT */
} lex_token;

/* Tokenizes text[0..len) (text[len] must be NUL). Errors go to d; bad
 * bytes are skipped. Returns the number of tokens; the last is TK_EOF. */
int lex_tokenize(const char *text, size_t len, const char *file, qk_arena *a, qk_diags *d, lex_token **out);

/* ---- parse.c: syntax tree ---- */
typedef struct ast_format ast_format;

/* A word with its position (NULL s: absent). */
typedef struct ast_word {
    const char *s;
    qk_loc loc;
} ast_word;

/* An integer with its position. */
typedef struct ast_int {
    int64_t v;
    qk_loc loc;
} ast_int;


/* A dimension in a declaration: sym + c (sym NULL: the constant c). */
typedef struct ast_dim {
    const char *sym;
    int64_t c;
    qk_loc loc;
} ast_dim;

/* A param, a result or a temp. */
typedef struct ast_tensor {
    const char *name;
    qk_loc loc;
    const char *type; /* NULL for temps */
    qk_loc type_loc;
    ast_word book;    /* W: fmt(C)[...]: the codebook parameter's name */
    int rank;
    ast_dim *dims;
    /* sema */
    kir_tensor_kind kind;
    qk_dtype dtype;
    ast_format *fmt;
    kir_dim kdims[QK_MAX_RANK];
    int dims_ok;   /* kdims known (a broken temp has none) */
    int def_stmt;  /* -1 for params */
    int index;     /* position in the kernel's tensor table */
    int book_index; /* codebook tensor, else -1 */
    int materialized; /* temps defined by quantize()/hadamard() */
} ast_tensor;

typedef struct ast_term {
    const char *name;
    qk_loc loc;
    int64_t coef;
    int var; /* sema */
} ast_term;

/* Affine index expression: sum(coef * name) + c. */
typedef struct ast_index {
    qk_loc loc;
    int nterms;
    ast_term terms[KIR_MAX_TERMS];
    int64_t c;
} ast_index;

typedef enum {
    AST_NUM,
    AST_LOAD,
    AST_BIN,  /* op: kir_binop */
    AST_UN,   /* op: kir_unop */
    AST_CALL, /* resolved by sema into AST_UN, AST_BIN, AST_CAST, AST_QUANT
                 or AST_HADAMARD */
    AST_CAST, /* op: qk_dtype */
    AST_SUM,
    AST_QUANT,    /* quantize(a, fmt) */
    AST_HADAMARD, /* hadamard(a, hvar[, hsize[, hseed]]) */
} ast_expr_kind;

typedef struct ast_expr {
    ast_expr_kind kind;
    qk_loc loc;
    int height;
    double num;        /* NUM */
    int is_int;        /* NUM: written as an integer literal */
    int64_t ival;      /* NUM: its value when is_int */
    const char *name;  /* LOAD: tensor, CALL: function */
    int nidx;          /* LOAD */
    ast_index *idx;
    int has_brackets;  /* LOAD: written T[...] rather than T */
    int op;
    struct ast_expr *a, *b; /* BIN a,b; UN, CAST, SUM: a */
    int nargs;              /* CALL */
    struct ast_expr **args;
    int nvars;              /* SUM */
    const char **vars;
    qk_loc *var_locs;
    int *var_ids;           /* sema */
    int tensor;             /* LOAD, sema */
    ast_format *fmt;        /* QUANT, sema */
    int hvar;               /* HADAMARD, sema: the transform variable */
    int64_t hsize;          /* HADAMARD: 0 = the extent of hvar */
    uint64_t hseed;         /* HADAMARD: 0 = no random signs */
} ast_expr;

typedef struct ast_stmt {
    qk_loc loc;
    const char *name;
    int nlhs;
    const char **lhs;
    qk_loc *lhs_locs;
    ast_expr *rhs;
    /* sema */
    int tensor;
    int *lhs_vars;
} ast_stmt;

/* An index variable of one statement (sema). */
typedef struct ast_var {
    const char *name;
    qk_loc loc;
    int stmt;
    int is_reduction;
    int has_extent;
    kir_dim extent;
    qk_loc extent_loc; /* where the extent was first inferred */
} ast_var;

typedef struct ast_sched ast_sched;

typedef struct ast_kernel {
    const char *name;
    qk_loc loc;
    int nparams, nresults;
    ast_tensor *params, *results;
    int nstmts;
    ast_stmt *stmts;
    const char *src; /* points into the registered source */
    size_t srclen;
    struct ast_file *file;
    /* sema */
    int ntensors;
    ast_tensor **tensors; /* params, results, temps */
    int nsyms;
    const char **syms;
    int nvars;
    ast_var *vars;
    ast_sched *sched;
    int ok;
} ast_kernel;

/* Format attributes, each allowed once. */
typedef enum {
    FA_CODE,
    FA_BLOCK,
    FA_SCALE,
    FA_MIN,
    FA_ZERO,
    FA_TENSOR_SCALE,
    FA_SPARSE,
    FA_CODEBOOK,
    FA_LAYOUT,
    FA_COUNT
} ast_fattr;

/* code = NAME [offset INT] [dim INT] [books INT] [signs] [ "[" numbers "]" ] */
typedef struct ast_code {
    ast_word name; /* int4 uint3 ternary binary e2m1 ... nf4 table vq8 */
    int has_offset, has_dim, has_books, signs, has_table;
    ast_int offset, dim, books;
    qk_loc signs_loc, table_loc;
    int ntable;
    double *table;
} ast_code;

/* scale = none | NUM ["*" SUB] ["per" (block | row | tensor | INT)] */
typedef struct ast_scale {
    int none;
    ast_word num, sub; /* sub.s: two-level */
    ast_word per;      /* "block" "row" "tensor", or NULL */
    int has_per_n;
    ast_int per_n;
} ast_scale;

/* min = ["-"] NUM ["*" SUB] */
typedef struct ast_min {
    int neg;
    ast_word num, sub;
} ast_min;

/* zero = NUM-TYPE | ["-"] NUMBER | none */
typedef struct ast_zero {
    ast_word type; /* u8 i8 f16 f32 none; NULL for a constant */
    double value;
    qk_loc loc;
} ast_zero;

/* One item of layout { ... }: a piece of a field, or pad N. */
typedef struct ast_litem {
    qk_loc loc;
    int is_pad;
    ast_int pad;
    ast_word field;
    int has_range, has_bits, has_at, has_shift;
    ast_int a, b;   /* [a:b] */
    ast_int lo, hi; /* bits lo:hi */
    int place;      /* qk_place */
    ast_int group;  /* interleave / base3 */
    qk_loc place_loc;
    ast_int at, shift;
} ast_litem;

struct ast_format {
    const char *name;
    qk_loc loc;
    int has[FA_COUNT];
    qk_loc key_loc[FA_COUNT];
    ast_code code;
    ast_int block;
    ast_scale scale;
    ast_min min;
    ast_zero zero;
    ast_word tensor_scale;
    ast_int sp_n, sp_m;
    ast_word codebook;
    int nlayout;
    ast_litem *layout;
    /* sema */
    qk_format f; /* finished (qk_format_finish) when ok; table in the ast arena */
    int ok;
};

typedef struct ast_tile {
    const char *index;
    qk_loc loc;
    int64_t size;
    qk_loc size_loc;
} ast_tile;

struct ast_sched {
    const char *kernel;
    qk_loc loc, name_loc;
    int ntiles;
    ast_tile *tiles;
    const char *parallel;
    qk_loc parallel_loc;
    int has_unroll;
    int64_t unroll;
    qk_loc unroll_loc;
};

typedef struct ast_import {
    const char *path; /* as written; "ggml" becomes "ggml.qk" */
    qk_loc loc;
} ast_import;

typedef struct ast_file {
    const char *name; /* registered name (diags) */
    const char *path; /* canonical path, for import-once */
    const char *dir;  /* directory searched first for its imports; NULL: none */
    const char *text;
    size_t len;
    int nimports, nformats, nkernels, nscheds;
    ast_import *imports;
    ast_format **formats;
    ast_kernel **kernels;
    ast_sched **scheds;
} ast_file;

typedef struct ast_program {
    int nfiles;
    ast_file **files;
} ast_program;

/* Parses one tokenized file into f (whose name/text are set). Errors go
 * to d with recovery at statement and declaration boundaries. */
void parse_file(ast_file *f, lex_token *toks, int ntoks, qk_arena *a, qk_diags *d);

/* Appends one zeroed element to an arena-backed vector; returns it. */
void *ast_push(qk_arena *a, void *arrp, int *n, size_t size);

/* ---- sema_format.c ---- */
/* Checks one format declaration and finishes f->f (f->ok = 1), or
 * reports to d. Value tables are allocated in a. */
void sema_format(qk_arena *a, qk_diags *d, ast_format *f);

/* ---- sema.c ---- */
/* Resolves names and checks every rule of the language over all files of
 * the program; annotates the AST. Returns the number of errors. */
int sema_program(ast_program *prog, qk_arena *a, qk_diags *d);
/* "K", "K+2", "H-2", "3" */
void sema_dim_str(const ast_kernel *k, kir_dim dim, char *buf, size_t n);

/* ---- ast_print.c ---- */
/* The kernel's tree, one node per line, indented (emit --stage=ast). */
void ast_print_kernel(const ast_kernel *k, qk_buf *out);

/* ---- compiler/kir_build.c ---- */
/* Lowers a checked program into a new kir_program (its own arena). */
kir_program *kir_build_program(const ast_program *prog, qk_diags *d);

#endif

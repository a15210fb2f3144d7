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

#ifndef QKC_DSL_DIR
#define QKC_DSL_DIR ""
#endif

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
    AST_CALL, /* resolved by sema into AST_UN, AST_BIN or AST_CAST */
    AST_CAST, /* op: qk_dtype */
    AST_SUM,
} ast_expr_kind;

typedef struct ast_expr {
    ast_expr_kind kind;
    qk_loc loc;
    int height;
    double num;        /* NUM */
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

struct ast_format {
    const char *name;
    qk_loc loc;
    int has_code, has_block, has_scale, has_zero, has_offset;
    const char *code; /* "int4", "uint3" ... */
    qk_loc code_loc;
    int64_t offset;
    qk_loc offset_loc;
    int64_t block;
    qk_loc block_loc;
    const char *scale, *zero;
    qk_loc scale_loc, zero_loc;
    /* sema */
    qk_format f; /* validated fields (layout filled by kir_build) */
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

/* kir.h — Kernel IR: the typed, tensor-level form of a kernel, produced
 * from the checked AST (kir_build.c) and consumed by the reference
 * interpreter (ref.c) and the tiled-IR builder (tir_build.c).
 *
 * A kernel owns a list of tensors (params, then results, then temps), a
 * list of index variables and a list of statements
 *     T[v0, v1, ...] = expr
 * where expr is a tree of loads with affine indices, constants, arithmetic,
 * built-ins, casts and SUM reductions. Dimensions are symbols bound at
 * launch (plus a constant) or constants. All memory comes from the
 * program's arena.
 *
 * Semantics (the reference interpreter defines them exactly):
 *  - every load yields a real number: dense elements exactly, quantized
 *    elements by exact decode (format.h);
 *  - arithmetic is over the reals (double in the reference, f32 in compiled
 *    code); casts round to the named type's precision;
 *  - a temp holds reals; results are rounded to their dtype when stored
 *    (qk_dtype_store rules).
 *
 * Prefix: kir_. */
#ifndef QK_KIR_H
#define QK_KIR_H

#include "common/base.h"
#include "compiler/format.h"

#define KIR_MAX_TERMS 4

/* size = (sym >= 0 ? dims[sym] : 0) + c */
typedef struct kir_dim {
    int sym;
    int64_t c;
} kir_dim;

typedef enum { KIR_PARAM, KIR_RESULT, KIR_TEMP } kir_tensor_kind;

typedef struct kir_tensor {
    const char *name;
    qk_loc loc;
    kir_tensor_kind kind;
    qk_dtype dtype;        /* dense element type; QK_DT_NONE when fmt is set */
    const qk_format *fmt;  /* quantized: the last dim is the reduction (block) axis */
    int rank;
    kir_dim dims[QK_MAX_RANK]; /* temps: the extents of their LHS indices */
    int def_stmt;          /* temps and results: defining statement, else -1 */
    int book;              /* VQ formats: the param tensor holding the codebook
                              (W: fmt(C)[...] in the DSL), else -1 */
    int materialized;      /* temps defined by quantize()/hadamard() */
} kir_tensor;

/* Affine index: sum(coef * var) + c. */
typedef struct kir_index {
    int nterms;
    struct {
        int var;
        int64_t coef;
    } terms[KIR_MAX_TERMS];
    int64_t c;
} kir_index;

typedef struct kir_var {
    const char *name;
    qk_loc loc;
    kir_dim extent;   /* range [0, extent) */
    int is_reduction; /* bound by a SUM, else by the LHS */
    int stmt;         /* owning statement */
} kir_var;

#define KIR_EXPRS(X) \
    X(CONST, "const") \
    X(LOAD, "load")   \
    X(BIN, "bin")     \
    X(UN, "un")       \
    X(CAST, "cast")   \
    X(SUM, "sum")     \
    X(QUANT, "quantize") \
    X(HADAMARD, "hadamard")

typedef enum {
#define KIR_E_ENUM(id, name) KE_##id,
    KIR_EXPRS(KIR_E_ENUM)
#undef KIR_E_ENUM
} kir_expr_kind;

/* Binary ops: arithmetic and the two-argument built-ins. */
#define KIR_BINOPS(X) \
    X(ADD, "+")       \
    X(SUB, "-")       \
    X(MUL, "*")       \
    X(DIV, "/")       \
    X(MAX, "max")     \
    X(MIN, "min")

typedef enum {
#define KIR_B_ENUM(id, name) KB_##id,
    KIR_BINOPS(KIR_B_ENUM)
#undef KIR_B_ENUM
    KB_COUNT
} kir_binop;

/* Unary ops. gelu is the tanh form:
 *   0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
 * silu(x) = x / (1 + exp(-x)); relu(x) = max(x, 0). */
#define KIR_UNOPS(X) \
    X(NEG, "neg")    \
    X(RELU, "relu")  \
    X(GELU, "gelu")  \
    X(SILU, "silu")  \
    X(EXP, "exp")    \
    X(TANH, "tanh")  \
    X(ABS, "abs")    \
    X(SQRT, "sqrt")

typedef enum {
#define KIR_U_ENUM(id, name) KU_##id,
    KIR_UNOPS(KIR_U_ENUM)
#undef KIR_U_ENUM
    KU_COUNT
} kir_unop;

typedef struct kir_expr {
    kir_expr_kind kind;
    qk_loc loc;
    double value;          /* CONST */
    int tensor;            /* LOAD: index into kernel->tensors */
    kir_index *idx;        /* LOAD: tensors[tensor].rank indices */
    int op;                /* BIN: kir_binop, UN: kir_unop, CAST: qk_dtype */
    struct kir_expr *a, *b; /* operands (UN/CAST/SUM use a) */
    int nvars;             /* SUM: reduction variables, outermost first */
    int *vars;
    /* QUANT: a is the operand, fmt the format. Only as the whole RHS of a
     * temp statement; the temp tensor then has fmt (its last LHS index is
     * the block axis) and holds exactly what qk_format_pack then
     * qk_format_get give for the operand's values along that axis
     * (rows = the other LHS indices). The format passes
     * qk_format_kernel_quantizable().
     * HADAMARD: a is the operand; hvar its transform variable (an LHS
     * variable of the statement), hsize the transform size (0: the extent
     * of hvar, which must then be a power of two; else a power of two that
     * divides it), hseed 0 or the seed of a fixed random sign vector. The
     * temp (f32, dense) holds, for each run of hsize consecutive positions
     * i of hvar, H (s .* x) / sqrt(hsize) with H the Sylvester Hadamard
     * matrix and s_i = kir_hadamard_sign(hseed, i) (i the global position;
     * all +1 when hseed is 0). Both temps are materialized, never fused. */
    const qk_format *fmt;
    int hvar;
    int64_t hsize;
    uint64_t hseed;
} kir_expr;

/* Sign of position i of the fixed random sign vector of seed s:
 * splitmix64(s * 0x9E3779B97F4A7C15 + i), top bit set -> -1. */
static inline int kir_hadamard_sign(uint64_t s, int64_t i)
{
    if (!s)
        return 1;
    uint64_t z = s * 0x9E3779B97F4A7C15ull + (uint64_t)i + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (z >> 63) ? -1 : 1;
}

typedef struct kir_stmt {
    qk_loc loc;
    int tensor; /* a RESULT or TEMP tensor */
    int nlhs;   /* == tensors[tensor].rank */
    int *lhs;   /* distinct LHS variables */
    kir_expr *rhs;
} kir_stmt;

/* The optional schedule block, by index name; applies to every statement
 * that has an index of that name. Values are requests: the tiled-IR
 * builder clamps them to what the target allows and prints its choice. */
typedef struct kir_sched {
    int present;
    qk_loc loc;
    int ntiles;
    struct {
        const char *index;
        int size;
        qk_loc loc;
    } tiles[8];
    const char *parallel; /* NULL: the builder chooses */
    qk_loc parallel_loc;
    int unroll; /* 0: default */
} kir_sched;

typedef struct kir_kernel {
    const char *name;
    qk_loc loc;
    const char *source; /* the kernel's DSL text (for headers/comments); may be NULL */
    const char *ast;    /* the kernel's AST as printed by the frontend (emit --stage=ast) */
    int nsyms;
    const char **syms; /* dimension symbols, in order of first appearance */
    int ntensors, nparams, nresults; /* tensors[0..nparams) params, then results, then temps */
    kir_tensor *tensors;
    int nvars;
    kir_var *vars;
    int nstmts;
    kir_stmt *stmts; /* in source order; temps are defined before use */
    kir_sched sched;
} kir_kernel;

typedef struct kir_program {
    qk_arena *arena; /* owns everything below; freed by kir_program_free */
    int nformats;
    qk_format **formats;
    int nkernels;
    kir_kernel **kernels;
} kir_program;

/* ---- kir.c ---- */
void kir_program_free(kir_program *p); /* NULL is harmless */
const char *kir_binop_name(int op);
const char *kir_unop_name(int op);
const kir_kernel *kir_find_kernel(const kir_program *p, const char *name);
const qk_format *kir_find_format(const kir_program *p, const char *name);
/* Text form (qkc emit --stage=kir). */
void kir_print_kernel(const kir_kernel *k, qk_buf *out);
void kir_print_program(const kir_program *p, qk_buf *out);
void kir_print_dim(const kir_kernel *k, kir_dim d, qk_buf *out);
/* Structural checks; returns 0 or -1 with the first problem in err. */
int kir_verify(const kir_kernel *k, char *err, size_t errsz);

/* A tensor as handed to a kernel at launch (runtime or reference). */
typedef struct kir_view {
    void *data;
    int rank;
    int64_t shape[QK_MAX_RANK];
    int64_t stride[QK_MAX_RANK]; /* in elements; dense tensors only */
} kir_view;

/* Binds every dimension symbol from the views of params and results
 * (views[0 .. nparams+nresults)), then checks every shape, every affine
 * index range (no access can fall outside its tensor) and non-negative
 * dims. dims_out has nsyms entries. Returns 0 or -1 with a message. */
int kir_bind(const kir_kernel *k, const kir_view *views, int64_t *dims_out, char *err, size_t errsz);
int64_t kir_dim_value(kir_dim d, const int64_t *dims);

/* ---- ref.c: the reference interpreter ---- */
/* Executes k on views (params, then results) with dims from kir_bind.
 * Double accumulation, exact decode, temps materialized in double.
 * Results are stored with qk_dtype_store. Returns 0 or -1 with a message
 * (bad views, out of memory for temps). */
int ref_run(const kir_kernel *k, const kir_view *views, const int64_t *dims, char *err, size_t errsz);

#endif

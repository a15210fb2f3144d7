/* tir.h — the tiled IR: one target-neutral, structured loop IR with explicit
 * vector lanes, produced from Kernel IR by tir_build.c for a target
 * description and a tile configuration, and lowered mechanically by the
 * backends (LLVM vector code, CUDA C).
 *
 * A function is a tree of blocks. A block is a list of node ids; a node is
 * either a value (typed: scalar kind x lanes) or a statement (store, loop,
 * if, variable set). A value may be used after its definition in the same
 * block or in any block nested inside it. LOOP nodes are also the value of
 * their induction variable (i64 scalar). Mutable accumulators are VAR
 * nodes read with VGET and written with VSET.
 *
 * Decoding of quantized formats happens in tir_build.c with generic ops
 * only (loads of bytes, shuffles, shifts, masks, conversions, multiplies);
 * the backends never see a format.
 *
 * The function's arguments (in this order) are: one pointer per kernel
 * tensor (params then results), one i64 per dimension symbol, one i64 per
 * leading stride of every dense tensor of rank >= 2 (dims 0..rank-2, in
 * elements), one pointer per scratch buffer (tir_func.scratch: the
 * materialized temps of quantize() and hadamard()), then `begin` and `end`: the range of work items this call
 * computes. Work items are the program instances of the grid (one output
 * tile each, counted over all statements). Calling with [0, items) runs the
 * whole kernel on the calling thread.
 *
 * Prefix: tir_. */
#ifndef QK_TIR_H
#define QK_TIR_H

#include "common/base.h"
#include "compiler/kir.h"

typedef enum { TS_VOID, TS_I1, TS_I8, TS_I16, TS_I32, TS_I64, TS_F32, TS_PTR } tir_scalar;

typedef struct tir_type {
    uint8_t s;      /* tir_scalar */
    uint16_t lanes; /* 1 = scalar */
} tir_type;

/* X(id, name, nops): nops operands in a[0..nops). */
#define TIR_OPS(X)                                                             \
    /* values */                                                               \
    X(CONST, "const", 0)   /* imm (ints) or fimm (f32), splat over lanes; an   \
                              integer vector with shuf != NULL has per-lane    \
                              values shuf[0..lanes) instead */                 \
    X(ARG, "arg", 0)       /* imm = argument index */                          \
    X(ADD, "add", 2) X(SUB, "sub", 2) X(MUL, "mul", 2)                         \
    X(DIV, "div", 2)       /* signed integer division */                       \
    X(REM, "rem", 2)       /* signed integer remainder */                      \
    X(MIN, "min", 2) X(MAX, "max", 2) /* signed integers */                   \
    X(SHL, "shl", 2) X(SHR, "shr", 2) /* logical right */                     \
    X(SAR, "sar", 2)                  /* arithmetic right */                  \
    X(AND, "and", 2) X(OR, "or", 2) X(XOR, "xor", 2)                           \
    X(FADD, "fadd", 2) X(FSUB, "fsub", 2) X(FMUL, "fmul", 2)                   \
    X(FDIV, "fdiv", 2) X(FMAX, "fmax", 2) X(FMIN, "fmin", 2)                   \
    X(FMA, "fma", 3)       /* a*b + c */                                       \
    X(FNEG, "fneg", 1) X(FABS, "fabs", 1) X(FSQRT, "fsqrt", 1)                 \
    X(FEXP, "fexp", 1)                                                         \
    X(FRINT, "frint", 1)   /* round half to even */                            \
    X(ZEXT, "zext", 1) X(SEXT, "sext", 1) X(TRUNC, "trunc", 1)                 \
    X(SITOFP, "sitofp", 1) X(UITOFP, "uitofp", 1) X(FPTOSI, "fptosi", 1)       \
    X(H2F, "h2f", 1)       /* i16 bits of binary16 -> f32 */                   \
    X(F2H, "f2h", 1)       /* f32 -> i16 bits of binary16, RNE */              \
    X(BITCAST, "bitcast", 1) /* i32 <-> f32 of the same lanes, integer       \
                                vectors of the same total bits, or a mask  \
                                i1 x B -> one iB (lane l is bit l) */      \
    X(ILT, "ilt", 2)       /* signed a < b -> i1 */                            \
    X(IEQ, "ieq", 2)       /* integers a == b -> i1 */                         \
    X(POPCNT, "popcnt", 1) /* population count of an integer, same type */     \
    X(LUT, "lut", 1)       /* lane i = shuf[a0[i] mod imm]: i8 x L from a0    \
                              i8 x L (table bytes; vpshufb, vpermb, tbl), or   \
                              f32 x L from a0 i32 x L (table of f32 bits;     \
                              vpermps); imm a power of two, 2..256 */          \
    X(PERM, "perm", 2)     /* f32 x L: lane i = a0[a1[i] mod L], a0 f32 x L  \
                              (a table built at run time), a1 i32 x L; L a   \
                              power of two (vpermps) */                       \
    X(DOT4, "dot4", 3)     /* i32 x L: a2 + sum over each group of 4 byte lanes \
                              of ext(a0) * sext(a1); a0, a1 are i8 x 4L; imm \
                              is the tir_dot_mode: ext = zext (vpdpbusd) or  \
                              sext (sdot); widening multiplies elsewhere */  \
    X(FLT, "flt", 2)       /* ordered a < b -> i1 */                           \
    X(SELECT, "select", 3) /* a ? b : c */                                     \
    X(SPLAT, "splat", 1)   /* scalar -> lanes */                               \
    X(SHUFFLE, "shuffle", 1) /* result lane i = a[shuf[i]] */                  \
    X(HADD, "hadd", 1)     /* f32 vector -> f32 scalar sum of lanes */         \
    X(LANEID, "laneid", 0) /* GPU: i32 lane 0..31 of the thread in its warp */ \
    X(INSERT, "insert", 2) /* a0 with lane imm replaced by scalar a1 */        \
    X(EXTRACT, "extract", 1) /* scalar lane imm of vector a0 */                \
    X(MMA, "mma", 4)       /* GPU warp-level D = A * B + C: a0 A fragment,     \
                              a1 B fragment, a2 C (the result's type), a3    \
                              sparse metadata (i32) or -1; imm: tir_mma_kind; \
                              fragments: tir_mma_shape_of(imm) */           \
    X(LOAD, "load", 3)     /* ptr arg, byte offset i64, mask (i1 x lanes) or -1; \
                              masked-off lanes read as 0 */                    \
    X(GATHER, "gather", 3) /* ptr arg, byte offsets (i64 x lanes), mask or -1: \
                              lane l loads one scalar of the result's kind   \
                              at ptr + a1[l]; masked-off lanes read as 0 */    \
    X(VAR, "var", 1)       /* mutable variable, initial value a[0] */          \
    X(VGET, "vget", 1)     /* current value of VAR a[0] */                     \
    /* statements */                                                           \
    X(VSET, "vset", 2)     /* VAR a[0] = a[1] */                               \
    X(STORE, "store", 4)   /* ptr, byte offset, value, mask or -1 */           \
    X(PREFETCH, "prefetch", 2) /* ptr, byte offset: a hint that the line    \
                              there will be read soon (no fault, no value) */ \
    X(FENCE, "fence", 0)   /* no effect: a boundary the code generator's      \
                              instruction scheduler does not move code over */ \
    X(LOOP, "loop", 3)     /* for (iv = a0; iv < a1; iv += a2) body */         \
    X(IF, "if", 1)         /* if (a0) body else alt */

typedef enum {
#define TIR_OP_ENUM(id, name, nops) TIR_##id,
    TIR_OPS(TIR_OP_ENUM)
#undef TIR_OP_ENUM
    TIR_OP_COUNT
} tir_op;

/* DOT4's imm: how the first operand's bytes are read. The builder picks
 * the one the target has an instruction for (tir_build.c). */
typedef enum {
    TIR_DOT_US = 0, /* unsigned x signed: x86 VNNI vpdpbusd */
    TIR_DOT_SS = 1, /* signed x signed: AArch64 sdot */
} tir_dot_mode;

typedef enum {
    TL_SERIAL,
    TL_UNROLL,   /* hint: fully unroll (constant trip count) */
    TL_PARALLEL, /* the grid loop over work items [begin, end) */
    TL_WARP,     /* GPU: the grid loop over work items [begin, end), each item
                    computed cooperatively by the 32 threads of one warp
                    (every value is per thread; LANEID tells them apart) */
} tir_loop_kind;

/* MMA's imm: one PTX warp-level matrix multiply-accumulate, m16 x n8 with
 * A row-major and B column-major (see backends/cuda/emit.c and
 * docs/cuda.md for the fragment layouts). Fragments are i32 vectors whose
 * words pack 2 f16 or 4 s8 elements, lowest index in the low bits. */
typedef enum {
    TIR_MMA_F16_K16,    /* mma.sync m16n8k16 f32.f16.f16.f32: A i32x4, B i32x2, C f32x4 */
    TIR_MMA_S8_K32,     /* mma.sync m16n8k32 s32.s8.s8.s32: A i32x4, B i32x2, C i32x4 */
    TIR_MMA_SP_F16_K32, /* mma.sp 2:4 m16n8k32 f32.f16.f16.f32: A i32x4 (kept items), B i32x4,
                           C f32x4, metadata i32 (sparsity selector 0) */
    TIR_MMA_COUNT
} tir_mma_kind;

/* Shape of an MMA kind: k (reduction length), words of A and B, C kind. */
typedef struct tir_mma_shape {
    int k, a_words, b_words;
    tir_scalar acc;  /* TS_F32 or TS_I32 (4 lanes) */
    int sparse;      /* takes a metadata operand */
    const char *ptx; /* the instruction, e.g. "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32" */
} tir_mma_shape;

typedef struct tir_node {
    uint16_t op;
    tir_type type;
    int32_t a[4];     /* operands (node ids), -1 when absent */
    int64_t imm;
    double fimm;
    int32_t *shuf;    /* SHUFFLE: source-lane indices; CONST: per-lane ints */
    int32_t body;     /* LOOP/IF: block id */
    int32_t alt;      /* IF: else block id, or -1 */
    uint8_t kind;     /* LOOP: tir_loop_kind */
    const char *name; /* loops, vars, args: for printing */
} tir_node;

typedef struct tir_block {
    int n, cap;
    int32_t *ids;
} tir_block;

typedef struct tir_arg {
    const char *name;
    tir_scalar s;     /* TS_PTR or TS_I64 */
    qk_dtype dtype;   /* pointers: element dtype for the C signature (U8 for packed) */
    int is_const;     /* pointers to params */
} tir_arg;

/* Tile configuration: data, chosen by tir_default_config() or the schedule,
 * later by the tuner. */
typedef struct tir_config {
    int lanes;       /* f32 lanes per vector: 16 (AVX-512), 8 (AVX2), 4, or 1 */
    int tile_par;    /* outputs per work item along the parallel index */
    int tile_inner;  /* register tile along the innermost other LHS index */
    int unroll;      /* vector chunks per reduction step (dense reductions) */
    int idot;        /* 1: integer dot products (DOT4) where both operands of a
                        product have integer codes; 0: decode to f32 and FMA */
    int idot_bytes;  /* byte lanes of one DOT4 chunk: 16, 32 or 64 */
    int kblocks;     /* quantized blocks per reduction-loop iteration (1, 2, 4) */
    int repack;      /* 0, or R = 4, 8, 16: the weights are read in the row-interleaved
                        layout of R rows (compiler/rowpack.h), R rows per vector;
                        1: R chosen for the target (one vector of i32 lanes).
                        Part of the kernel's ABI: never chosen by the tuner */
    int streams;     /* CPU: runs of a thread's work items taken in turn (1, 2, 4,
                        8; tir_build.c grid_loop); 0: the builder's choice */
    int prefetch;    /* CPU, row-interleaved weights, popcount reductions of
                        sign-bit weights and block loops of one inner point
                        (tir_build.c block_prefetch): bytes ahead of each weight
                        line read that a software prefetch asks for (a multiple
                        of 64, at most 65536); 0: none; -1: the builder's
                        choice, settled by tir_settle_config before the
                        configuration is printed, keyed or built */
    int fence;       /* CPU, row-interleaved weights: 1 puts a scheduling boundary
                        (TIR_FENCE) before each row group (or step) of a work
                        item's loop block, so LLVM's scheduler orders each group
                        apart and keeps fewer values live (fewer spills); a
                        candidate of qkc tune --layout any, never the default */
    char parallel[64]; /* name of the parallel index; "" = builder's choice */
    int ntiles;        /* per-index requests from the schedule block */
    struct {
        char index[32];
        int size;
    } tiles[8];
} tir_config;

/* What the builder needs to know of a target. */
typedef enum { QK_TARGET_CPU, QK_TARGET_GPU } qk_target_kind;

/* CPU features the builder and backends may use (qk_target.features). */
enum {
    QK_FEAT_AVX2 = 1 << 0,
    QK_FEAT_FMA = 1 << 1,
    QK_FEAT_AVX512F = 1 << 2,
    QK_FEAT_AVX512BW = 1 << 3,
    QK_FEAT_AVX512VL = 1 << 4,
    QK_FEAT_AVX512VNNI = 1 << 5, /* vpdpbusd on 128/256/512-bit vectors */
    QK_FEAT_AVXVNNI = 1 << 6,    /* vpdpbusd, VEX-encoded (256-bit) */
    QK_FEAT_AVX512VBMI = 1 << 7, /* vpermb */
    QK_FEAT_AMX_INT8 = 1 << 8,
    QK_FEAT_POPCNT = 1 << 9,
    QK_FEAT_VPOPCNTDQ = 1 << 10,
    QK_FEAT_NEON = 1 << 16,
    QK_FEAT_DOTPROD = 1 << 17, /* AArch64 sdot/udot (s8 x s8, u8 x u8; no u8 x s8) */
    QK_FEAT_SVE = 1 << 18,     /* AArch64 SVE, used on 128-bit fixed-length vectors */
};

typedef struct qk_target {
    char name[32];        /* "host", "x86-64-v3", "x86-64-v4", "aarch64+dotprod", "sm_80", ... */
    qk_target_kind kind;
    unsigned features;    /* QK_FEAT_* */
    char cpu[64];         /* CPU model name ("" for presets) */
    int vector_bits;      /* CPU: 128/256/512; GPU: 32 (one lane per thread) */
    int vector_regs;      /* CPU: 16 or 32 */
    int64_t l1, l2, l3;   /* bytes; 0 when unknown */
    int line;             /* cache line bytes */
    int cores;
    int warp, smem_per_block, regs_per_thread; /* GPU */
    int sm;               /* GPU: compute capability, e.g. 80, 90 */
    int sm_count;         /* GPU: streaming multiprocessors */
    int smem_optin;       /* GPU: shared memory bytes a block may opt in to */
    int smem_per_sm;      /* GPU: shared memory bytes per SM */
    int regs_per_sm, regs_per_block; /* GPU: 32-bit registers */
} qk_target;

/* Per statement, what the runtime needs to size the grid. */
typedef struct tir_grid {
    int stmt;
    kir_dim extent; /* extent of the parallel index (1 if the result is rank 0) */
    int tile;       /* outputs per work item along it */
    int phase;      /* grids of phase p run after every item of phases < p */
    int warp;       /* 1: each work item is computed by one warp (TL_WARP) */
} tir_grid;

/* Scratch memory of a materialized temp (quantize(), hadamard()), passed
 * as a pointer argument; the runtime sizes it from the dims. */
typedef enum {
    TIR_SCRATCH_PACKED, /* the temp's packed bytes: qk_format_size(fmt, rows, K) */
    TIR_SCRATCH_STAGE,  /* f32 staging of a quantize() operand: rows * K floats */
    TIR_SCRATCH_DENSE,  /* the temp as f32, row-major over its dims */
    TIR_SCRATCH_SUMS,   /* row-interleaved weights (cfg.repack): the int8 operand's
                           sums per group of `group` items, i32 [rows][ceil(K / group)];
                           tensor is that operand (-1: unused, 0 bytes) */
} tir_scratch_kind;

typedef struct tir_scratch {
    int tensor; /* kir tensor index of the temp */
    int kind;   /* tir_scratch_kind */
    int arg;    /* its argument index */
    int group;  /* SUMS: items per sum */
} tir_scratch;

typedef struct tir_func {
    qk_arena *arena;
    const char *name;
    int nargs;
    tir_arg *args;
    int arg_begin, arg_end;  /* indexes of the begin/end arguments */
    int nnodes, capnodes;
    tir_node *nodes;
    int nblocks, capblocks;
    tir_block *blocks;
    int entry;               /* block id of the function body */
    tir_config cfg;          /* the configuration actually used */
    int ngrids;
    tir_grid *grids;
    int nphases;             /* 1 + the largest grid phase */
    int nscratch;
    tir_scratch *scratch;
    int repack_tensor;       /* kir tensor read in the row-interleaved layout, or -1 */
    int repack_rows;         /* its R */
} tir_func;

/* ---- tir.c: construction, printing, verification ---- */
tir_func *tir_func_new(qk_arena *a, const char *name);
int tir_block_new(tir_func *f);
/* Appends a node to block b; returns its id. Operands are node ids or -1. */
int tir_emit(tir_func *f, int b, tir_op op, tir_type t, int a0, int a1, int a2, int a3);
int tir_const_i(tir_func *f, int b, tir_scalar s, int lanes, int64_t v);
int tir_const_f(tir_func *f, int b, int lanes, double v);
int tir_loop(tir_func *f, int b, int lo, int hi, int step, tir_loop_kind kind, const char *name, int *body);
int tir_if(tir_func *f, int b, int cond, int *then_block, int *else_block /* NULL: no else */);
int tir_shuffle(tir_func *f, int b, int src, int lanes, const int32_t *idx);
/* Integer vector constant with per-lane values (lanes > 1). */
int tir_const_lanes(tir_func *f, int b, tir_scalar s, int lanes, const int32_t *vals);
/* LUT of i8 vector idx into the n (power of two, 2..256) bytes of table. */
int tir_lut(tir_func *f, int b, int idx, int n, const uint8_t *table);
/* LUT of i32 vector idx into n (power of two, 2..256) f32 values. */
int tir_lut_f32(tir_func *f, int b, int idx, int n, const float *table);
tir_type tir_t(tir_scalar s, int lanes);
/* Shape of MMA kind k (k < TIR_MMA_COUNT). */
const tir_mma_shape *tir_mma_shape_of(int k);
const char *tir_op_name(int op);
const char *tir_scalar_name(int s);
void tir_print(const tir_func *f, qk_buf *out);
/* Checks operand dominance, types, lanes and arguments. 0 or -1 + err. */
int tir_verify(const tir_func *f, char *err, size_t errsz);

/* ---- target.c ---- */
/* The machine qkc runs on: vector width from CPU features, caches from
 * sysfs, cores from sysconf. */
void qk_target_host(qk_target *t);
/* Named presets: host, x86-64-v3, x86-64-v4, aarch64[+dotprod][+sve]
 * (suffixes in any order), sm_80, sm_90 (see target.c). -1 if unknown. */
int qk_target_named(const char *name, qk_target *t);
/* The names qk_target_named knows (aarch64 once, without suffixes),
 * NULL-terminated. */
extern const char *const qk_target_presets[];
void qk_target_print(const qk_target *t, qk_buf *out);
/* 1 if CPU code for t runs on this machine (same architecture, every
 * feature present; always for host and GPU targets), else 0 with the
 * reason in why: code for other machines is emitted, never run. */
int qk_target_runs_here(const qk_target *t, char *why, size_t n);
/* A stable text naming what decides tuned configurations: target name,
 * CPU model, features, vector width, cache sizes, cores. Records of the
 * tuning database and probe results are keyed by it. */
void qk_target_fingerprint(const qk_target *t, char *buf, size_t n);

/* ---- tir.c: configurations as text ---- */
/* "lanes=16 tile_par=4 tile_inner=4 unroll=4 idot=1 idot_bytes=32 kblocks=1"
 * (plus " parallel=n" and " tile.NAME=S" for schedule requests). */
void tir_config_print(const tir_config *cfg, char *buf, size_t n);
/* Parses the text of tir_config_print (any subset of keys, in any order,
 * over the values already in *cfg). 0, or -1 with a message in err. */
int tir_config_parse(const char *text, tir_config *cfg, char *err, size_t errsz);

/* ---- tir_build.c ---- */
/* Default configuration for a target (lanes from vector_bits, tiles). */
void tir_default_config(const qk_target *t, tir_config *cfg);
/* Applies the kernel's schedule block on top of cfg. */
void tir_apply_schedule(const kir_kernel *k, tir_config *cfg);
/* The prefetch distance of prefetch = -1 (docs/performance.md, fifteenth
 * session: 4 KiB ahead read 1.1-2.1x as fast cold on one Zen 5 core for
 * row-interleaved codes narrower than a byte, and no slower beyond the
 * spread on two threads; 8-bit codes, whose loops do little per byte,
 * read 10-25% slower with it on one core, so they get none, unless a byte
 * takes more than one op to its integer image: e4m3's three table planes
 * read 36% of DRAM's rate without, 57% with it, seventeenth session). */
#define TIR_PREFETCH_AUTO 4096
/* The distance of prefetch = -1 for the block loops of a matrix-vector
 * product (one point per inner index) whose weights have codes of 8 bits
 * or more, read in their own layout (tir_build.c block_prefetch): each
 * row of the tile is a stream, and one core's hardware prefetcher feeds
 * several streams less well than one. Twenty-third session of issue 4,
 * 8192^2 cold on one Zen 5 core, share of the same-run read: q8_0 x f32
 * 24-27% -> 52-56%, mxfp8_e5m2 31-37% -> 49-53% (1-2 KiB best; 4 KiB
 * 41-43%), e4m3 26-27% -> 33-34%; 4-bit codes, whose f32 loops do more
 * per byte, gained nothing (a 16-row tile lost 20% hot), so they get none. */
#define TIR_PREFETCH_ROWS 2048
/* Replaces the builder's choices that change the code and are not given
 * (prefetch = -1) by their values for kernel k on target t: TIR_PREFETCH_AUTO
 * on a CPU when a quantized parameter has codes narrower than 8 bits (or
 * 8-bit codes whose integer image is no add or xor, or none) and
 * either repack is set or a parameter is a sign-bit string (a popcount
 * reduction may read it; one that does not ignores the hint);
 * TIR_PREFETCH_ROWS without repack when a weight (quantized, rank 2 or
 * more) has codes of 8 bits or more (the block loops of matrix-vector
 * products read it; other loops ignore the hint); else none.
 * So a configuration's printed text and its cache key name the code
 * built. tir_build and tune_candidates settle their configurations;
 * other callers that print or key a configuration settle it first. */
void tir_settle_config(const kir_kernel *k, const qk_target *t, tir_config *cfg);
/* Lowers one kernel. Returns NULL with a message in err when the kernel
 * cannot be lowered (never for a kernel that passed sema and kir_verify,
 * unless a limit documented in docs/architecture.md is hit). */
tir_func *tir_build(qk_arena *a, const kir_kernel *k, const qk_target *t, const tir_config *cfg,
                    char *err, size_t errsz);
/* Number of work items for dims (sum over grids of ceil(extent/tile)). */
int64_t tir_work_items(const tir_func *f, const int64_t *dims);
/* Work items [*lo, *hi) of phase p (grids are numbered in phase order). */
void tir_phase_items(const tir_func *f, const int64_t *dims, int p, int64_t *lo, int64_t *hi);
/* Bytes of scratch buffer i for dims. */
int64_t tir_scratch_bytes(const tir_func *f, const kir_kernel *k, int i, const int64_t *dims);

#endif

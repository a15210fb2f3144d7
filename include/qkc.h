/* qkc.h — the public C API of libqkc, a compiler for quantized tensor
 * kernels. This is the only header an application includes.
 *
 * Handles
 *   qkc_ctx      a compiler context: target, thread pool, JIT, kernel cache.
 *   qkc_program  one compiled source (its formats, kernels, diagnostics).
 *   qkc_kernel   one kernel of a program, compiled for the context's target.
 * Each has a create/destroy pair; destroying NULL is harmless. A kernel is
 * owned by its program and lives until the program is destroyed; a program
 * must be destroyed before its context.
 *
 * Errors
 *   Every fallible call returns a qkc_status. qkc_strerror() names a status;
 *   qkc_errmsg(ctx) gives the calling thread's last message on that context.
 *   The library never exits the process and keeps no mutable global state.
 *
 * Threads
 *   A context may be shared by any number of threads: compiling programs,
 *   getting kernels and launching kernels are safe concurrently. A program
 *   and its kernels may be used from several threads at once (read-only
 *   after creation). qkc_ctx_destroy must not race with other calls on it.
 *
 * Tensors
 *   Arguments are qkc_tensor records in the kernel's declaration order:
 *   parameters first, then results. Dense tensors have a dtype, a shape and
 *   strides in elements (NULL-equivalent: all strides 0 means contiguous
 *   row-major); the innermost stride must be 1. Quantized tensors use
 *   QKC_PACKED: data points at the format's packed bytes (see qkc_pack),
 *   shape is the logical shape (e.g. [N, K]), strides are ignored. Every
 *   shape is checked against the kernel's declared dimensions before any
 *   memory is read or written.
 */
#ifndef QKC_H
#define QKC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QKC_VERSION_MAJOR 0
#define QKC_VERSION_MINOR 2
#define QKC_VERSION_PATCH 0
#define QKC_MAX_RANK 8

typedef enum qkc_status {
    QKC_OK = 0,
    QKC_ERR_INVALID_ARG = 1, /* NULL handle or pointer, bad option value */
    QKC_ERR_NOMEM = 2,       /* allocation failed */
    QKC_ERR_IO = 3,          /* a file could not be read or written */
    QKC_ERR_COMPILE = 4,     /* the source has errors: see the diagnostics */
    QKC_ERR_NOT_FOUND = 5,   /* no kernel/format/parameter of that name */
    QKC_ERR_SHAPE = 6,       /* tensor count, rank, shape or stride mismatch */
    QKC_ERR_DTYPE = 7,       /* tensor dtype does not match the declaration */
    QKC_ERR_TARGET = 8,      /* unknown target, or code generation failed */
    QKC_ERR_NO_DEVICE = 9,   /* GPU target, but no CUDA driver/device/NVRTC */
    QKC_ERR_UNSUPPORTED = 10,/* valid request that this version cannot do */
    QKC_ERR_INTERNAL = 11,   /* a bug in qkc: please report it */
} qkc_status;

typedef enum qkc_dtype {
    QKC_F32 = 0,
    QKC_F16 = 1,
    QKC_BF16 = 2,
    QKC_I8 = 3,
    QKC_I32 = 4,
    QKC_U8 = 5,
    QKC_PACKED = 100, /* bytes of a quantized format */
} qkc_dtype;

typedef struct qkc_ctx qkc_ctx;
typedef struct qkc_program qkc_program;
typedef struct qkc_kernel qkc_kernel;

/* ---- version and errors ---- */
const char *qkc_version(void);              /* "0.2.0" */
const char *qkc_strerror(qkc_status status); /* static string, never NULL */
/* The calling thread's last error message on ctx ("" if none). Valid until
 * this thread's next failing call on ctx. */
const char *qkc_errmsg(const qkc_ctx *ctx);

/* ---- context ---- */
typedef struct qkc_ctx_options {
    const char *target;   /* "host" (default), "x86-64-v3", "x86-64-v4", "sm_80", "sm_90"; also
                             "aarch64[+dotprod][+sve]" for emit only (no JIT of foreign code) */
    int threads;          /* worker threads for launches; 0 = number of cores */
    const char *dsl_path; /* extra import directory (':'-separated); NULL = none */
    /* Directory of the on-disk kernel cache (compiled object code keyed by
     * the kernel's content, target and configuration). NULL: $QKC_CACHE_DIR,
     * else $XDG_CACHE_HOME/qkc/kernels, else ~/.cache/qkc/kernels.
     * "" (here or in $QKC_CACHE_DIR) disables it. */
    const char *cache_dir;
    /* The tuning database (SQLite) consulted when a kernel is compiled.
     * NULL: $QKC_TUNE_DB, else $XDG_CACHE_HOME/qkc/tune.db, else
     * ~/.cache/qkc/tune.db. "" disables it. A missing or corrupt file is
     * not an error: the cost model decides and a warning is recorded
     * (qkc_kernel_config). */
    const char *tuning_db;
} qkc_ctx_options;

/* opts may be NULL for the defaults. */
qkc_status qkc_ctx_create(const qkc_ctx_options *opts, qkc_ctx **out);
void qkc_ctx_destroy(qkc_ctx *ctx);
const char *qkc_ctx_target(const qkc_ctx *ctx); /* the resolved target name */

/* ---- programs ---- */
/* Parses and checks source (filename is used in diagnostics and to resolve
 * imports; may be NULL). On QKC_ERR_COMPILE *out is still set to a program
 * that holds the diagnostics (and nothing else usable); destroy it. On other
 * errors *out is NULL. */
qkc_status qkc_program_create(qkc_ctx *ctx, const char *source, const char *filename, qkc_program **out);
qkc_status qkc_program_create_file(qkc_ctx *ctx, const char *path, qkc_program **out);
void qkc_program_destroy(qkc_program *prog);

typedef enum { QKC_SEV_ERROR = 0, QKC_SEV_WARNING = 1, QKC_SEV_NOTE = 2 } qkc_severity;
typedef struct qkc_diagnostic {
    const char *file; /* may be NULL */
    int line, col;    /* 1-based; 0 when not tied to a position */
    qkc_severity severity;
    const char *message;
} qkc_diagnostic;

int qkc_program_ndiagnostics(const qkc_program *prog);
qkc_status qkc_program_diagnostic(const qkc_program *prog, int i, qkc_diagnostic *out);
/* All diagnostics rendered as "file:line:col: error: msg", source line, caret. */
const char *qkc_program_diagnostics_text(const qkc_program *prog);

int qkc_program_nkernels(const qkc_program *prog);
const char *qkc_program_kernel_name(const qkc_program *prog, int i); /* NULL if out of range */

/* ---- kernels ---- */
/* Compiles (or finds in the cache) the named kernel for the context's
 * target. The kernel is owned by prog. */
qkc_status qkc_kernel_get(qkc_program *prog, const char *name, qkc_kernel **out);
const char *qkc_kernel_name(const qkc_kernel *k);

/* Options of qkc_kernel_get_ex. The tile configuration of a kernel is
 * chosen, in order: `config` when given; else the tuning database's best
 * record for this kernel, machine and shape (exact shape, else the
 * nearest shape bucket) among those of a layout the caller accepts
 * (any_layout); else the kernel's schedule block, if it has one; else
 * the cost model for the shape. With any_layout and no record, the
 * weights are read row-interleaved where the kernel can read them so,
 * with the schedule's or the builder's tiles (docs/api.md). The shape is
 * `dims` ("N=4096,K=4096"; NULL = 4096 for every dimension). The kernel
 * is still correct for every shape: the configuration only decides
 * speed. */
typedef struct qkc_kernel_options {
    const char *dims;   /* shape the kernel is tuned for, or NULL */
    int threads;        /* thread count it will run with (0 = the context's) */
    const char *config; /* explicit configuration ("tile_par=4 idot=1 ..."), or NULL */
    int any_layout;     /* 0: every parameter in its format's own bytes. 1: the
                           caller converts each parameter whose
                           qkc_param_info.repack_rows is not 0 with
                           qkc_kernel_repack, so that a tuning record or the
                           model may choose the row-interleaved layout (the
                           model does where the kernel can read it). Ignored
                           with config, which says the layout itself; other
                           values: QKC_ERR_INVALID_ARG. */
} qkc_kernel_options;
/* Like qkc_kernel_get with options; opts NULL = qkc_kernel_get. Each
 * distinct configuration is its own kernel handle, owned by prog. */
qkc_status qkc_kernel_get_ex(qkc_program *prog, const char *name, const qkc_kernel_options *opts, qkc_kernel **out);
/* The configuration a kernel was compiled with, and where it came from:
 * "explicit", "tuning-db (exact shape)", "tuning-db (bucket of K=..,N=..)",
 * "schedule", "model", "schedule, row-interleaved weights" or "model,
 * row-interleaved weights" (any_layout without a record), possibly
 * followed by "; warning: ..." when the tuning database could not be
 * read. Strings live as long as k. */
qkc_status qkc_kernel_config(const qkc_kernel *k, const char **config, const char **origin);

typedef struct qkc_param_info {
    const char *name;
    int is_result;
    qkc_dtype dtype;    /* QKC_PACKED for quantized */
    const char *format; /* format name for QKC_PACKED, else NULL */
    int rank;
    const char *dims[QKC_MAX_RANK]; /* "N", "K", "H-2", "64" */
    int codebook; /* vector-codebook formats: the parameter holding the codebook
                     (pass its data in qkc_pack_options.codebook); else -1 */
    int repack_rows; /* 0: the format's own layout; R: the kernel reads this
                        parameter row-interleaved, R rows per group (see
                        qkc_kernel_repack) */
} qkc_param_info;

int qkc_kernel_nparams(const qkc_kernel *k); /* params + results */
qkc_status qkc_kernel_param(const qkc_kernel *k, int i, qkc_param_info *out);
int qkc_kernel_ndims(const qkc_kernel *k);
const char *qkc_kernel_dim_name(const qkc_kernel *k, int i);

/* Kernel-private weight layout. A CPU kernel compiled with "repack=R" in
 * its configuration (R = 4, 8 or 16) reads its weights (the quantized
 * parameter whose rows are the result's parallel index; repack_rows in
 * its qkc_param_info) in the row-interleaved layout of R rows: the R
 * rows' scales side by side and their codes interleaved 4 by 4, so one
 * vector holds one step of R rows (docs/performance.md). qkc_launch and
 * qkc_reference take that parameter in this layout; qkc_kernel_repack
 * makes it, exactly, from the format's bytes (qkc_pack), once per weight
 * tensor. The size is the format's own when rows is a multiple of R, but
 * for base-3 codes (stored as 2-bit ones) and N:M codes (stored densely),
 * which grow (docs/api.md). */
qkc_status qkc_kernel_repacked_size(const qkc_kernel *k, int param, int64_t rows, int64_t cols, size_t *bytes);
qkc_status qkc_kernel_repack(const qkc_kernel *k, int param, const void *src, size_t src_bytes, int64_t rows,
                             int64_t cols, void *dst, size_t dst_bytes);
/* The inverse: the format's own bytes from the row-interleaved ones;
 * QKC_ERR_INVALID_ARG for a state the format cannot hold (a base-3 digit
 * 3, too many non-zero codes in an N:M group), which qkc_reference also
 * refuses. */
qkc_status qkc_kernel_unrepack(const qkc_kernel *k, int param, const void *src, size_t src_bytes, int64_t rows,
                               int64_t cols, void *dst, size_t dst_bytes);

typedef struct qkc_tensor {
    void *data;
    qkc_dtype dtype;
    int rank;
    int64_t shape[QKC_MAX_RANK];
    int64_t strides[QKC_MAX_RANK]; /* elements; all zero = contiguous */
} qkc_tensor;

typedef struct qkc_launch_options {
    int threads; /* 0 = the context's thread count, except that small work (under
                    ~256 KiB touched) runs on the calling thread alone;
                    1 = calling thread only; n = up to n threads */
} qkc_launch_options;

/* Runs the kernel. args has qkc_kernel_nparams(k) entries. opts may be NULL. */
qkc_status qkc_launch(qkc_kernel *k, const qkc_tensor *args, int nargs, const qkc_launch_options *opts);
/* Runs the reference interpreter (exact decode, double accumulation) on the
 * same arguments: the semantic oracle every compiled kernel is tested
 * against. */
qkc_status qkc_reference(qkc_kernel *k, const qkc_tensor *args, int nargs);

/* The raw entry point of a CPU kernel and its C signature, e.g.
 *   void gemv(const float *x, const uint8_t *W, const float *b, float *y,
 *             int64_t N, int64_t K, int64_t begin, int64_t end)
 * Arguments: one pointer per tensor (params, then results), one int64_t per
 * dimension (qkc_kernel_dim_name order), one int64_t per leading stride of
 * each dense tensor of rank >= 2 (in elements), then the work-item range.
 * Call with begin = 0 and end = qkc_kernel_work_items() to run it all;
 * disjoint ranges may run on different threads. */
qkc_status qkc_kernel_fnptr(const qkc_kernel *k, void **fn);
const char *qkc_kernel_c_signature(const qkc_kernel *k);
qkc_status qkc_kernel_work_items(const qkc_kernel *k, const int64_t *dims, int64_t *items);
/* Text of one compiler stage: "ast", "kir", "tir", "llvm", "asm", "cuda", "ptx". */
qkc_status qkc_kernel_emit(qkc_kernel *k, const char *stage, char **text /* free() it */);

/* ---- formats: packers and unpackers ---- */
/* rows x cols logical elements (cols = the reduction axis). */
qkc_status qkc_format_size(const qkc_program *prog, const char *format, int64_t rows, int64_t cols, size_t *bytes);
qkc_status qkc_pack(const qkc_program *prog, const char *format, const float *src, int64_t rows, int64_t cols,
                    void *dst, size_t dst_bytes);
qkc_status qkc_unpack(const qkc_program *prog, const char *format, const void *src, size_t src_bytes,
                      int64_t rows, int64_t cols, float *dst);

/* Options of the quantizer (NULL = defaults). Vector-codebook formats
 * need their codebook: books x 2^bits x dim values of the format's
 * codebook dtype (qkc_format_codebook tells the count and dtype); the
 * quantizer picks the nearest codeword (exhaustive search). */
typedef struct qkc_pack_options {
    const void *codebook;
    size_t codebook_bytes;
    int mse; /* 1: search block scales that minimise the squared error (default: absmax) */
} qkc_pack_options;
qkc_status qkc_pack_ex(const qkc_program *prog, const char *format, const float *src, int64_t rows, int64_t cols,
                       void *dst, size_t dst_bytes, const qkc_pack_options *opts);
qkc_status qkc_unpack_ex(const qkc_program *prog, const char *format, const void *src, size_t src_bytes,
                         int64_t rows, int64_t cols, float *dst, const qkc_pack_options *opts);
/* The codebook a format reads at launch and when packing: element count
 * (0 when it has none) and dtype (QKC_F16 or QKC_F32). */
qkc_status qkc_format_codebook(const qkc_program *prog, const char *format, size_t *elems, qkc_dtype *dtype);

#ifdef __cplusplus
}
#endif
#endif

/* qkc_aot.h — kernels built ahead of time by `qkc build`, and libqkc_rt,
 * the small runtime they link against (no LLVM, no libffi, no compiler).
 *
 * `qkc build` writes an object (or archive) and a header. The object holds,
 * for each kernel, one compiled version per target ISA and a constant
 * descriptor (qkc_aot_kernel) that says how to call them: tensors, dims,
 * grid, scratch buffers, and the format of every quantized tensor. The
 * generated header declares the descriptors and defines small typed
 * wrappers (static inline) that call the functions below:
 *
 *   status = prefix_gemv(W, x, y, N, K, 0, 0, NULL);   // strides 0: row-major
 *
 * Thread safety: everything here may be called from several threads at
 * once. A qkc_rt_pool runs one launch at a time (launches from several
 * threads on one pool are serialized); use one pool per thread for
 * parallel launches.
 *
 * Compatibility: QKC_AOT_ABI changes whenever the layout of the structs
 * below changes; libqkc_rt reads descriptors of ABI QKC_AOT_ABI_MIN to
 * QKC_AOT_ABI and refuses others with QKC_RT_ERR_UNSUPPORTED. An object
 * built by qkc X.Y links against libqkc_rt X.Y' for any Y' >= Y of the
 * same major version X. ABI 2 adds the row-interleaved weight layout
 * (qkc_aot_kernel.variant_repack); `qkc build` writes ABI 2 only for
 * kernels with a version that reads it (`--layout any`), ABI 1 otherwise,
 * so objects built without it link against older runtimes too.
 *
 * Prefixes: qkc_aot_ (data), qkc_rt_ (functions). */
#ifndef QKC_AOT_H
#define QKC_AOT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QKC_AOT_ABI 2
#define QKC_AOT_ABI_MIN 1
#define QKC_AOT_MAX_RANK 8

/* Status codes: the same numbers as qkc_status in qkc.h. */
enum {
    QKC_RT_OK = 0,
    QKC_RT_ERR_INVALID_ARG = 1, /* NULL pointer, bad option */
    QKC_RT_ERR_NOMEM = 2,
    QKC_RT_ERR_SHAPE = 6,       /* negative dim, bad stride, buffer too small */
    QKC_RT_ERR_TARGET = 8,      /* no version of the kernel runs on this CPU */
    QKC_RT_ERR_NO_DEVICE = 9,   /* GPU version, but no CUDA driver or device */
    QKC_RT_ERR_UNSUPPORTED = 10,/* descriptor of another ABI, VQ without book */
    QKC_RT_ERR_INTERNAL = 11,   /* a damaged descriptor or format image */
};

/* CPU features a version needs (same bits as the compiler's QK_FEAT_*). */
enum {
    QKC_AOT_FEAT_AVX2 = 1 << 0,
    QKC_AOT_FEAT_FMA = 1 << 1,
    QKC_AOT_FEAT_AVX512F = 1 << 2,
    QKC_AOT_FEAT_AVX512BW = 1 << 3,
    QKC_AOT_FEAT_AVX512VL = 1 << 4,
    QKC_AOT_FEAT_AVX512VNNI = 1 << 5,
    QKC_AOT_FEAT_AVXVNNI = 1 << 6,
    QKC_AOT_FEAT_AVX512VBMI = 1 << 7,
    QKC_AOT_FEAT_AMX_INT8 = 1 << 8,
    QKC_AOT_FEAT_POPCNT = 1 << 9,
    QKC_AOT_FEAT_VPOPCNTDQ = 1 << 10,
    QKC_AOT_FEAT_NEON = 1 << 16,
    QKC_AOT_FEAT_DOTPROD = 1 << 17,
    QKC_AOT_FEAT_SVE = 1 << 18,
};

/* One kernel argument: a pointer (tensors, scratch) or an integer (dims,
 * strides). */
typedef union qkc_aot_arg {
    void *p;
    int64_t i;
} qkc_aot_arg;

/* An extent: dims[sym] + c when sym >= 0, else c. */
typedef struct qkc_aot_dim {
    int64_t sym;
    int64_t c;
} qkc_aot_dim;

enum { QKC_AOT_PARAM = 0, QKC_AOT_RESULT = 1, QKC_AOT_TEMP = 2 };

typedef struct qkc_aot_tensor {
    const char *name;
    int64_t kind;         /* QKC_AOT_PARAM, _RESULT or _TEMP */
    const char *dtype;    /* "f32", "f16", "bf16", "i8", "i32", "u8"; "packed" */
    int64_t elem_bytes;   /* dense element size; 1 for packed */
    int64_t rank;
    qkc_aot_dim dims[QKC_AOT_MAX_RANK];
    /* Quantized tensors: the format, serialized by the compiler (opaque
     * here: libqkc_rt reads it), its DSL text, and for codebook formats
     * the index of the param holding the books (else -1). NULL/0 dense. */
    const unsigned char *format;
    int64_t format_bytes;
    const char *format_text;
    int64_t book;
} qkc_aot_tensor;

/* Work items: grid g covers ceil(extent / tile) items; phase p runs after
 * every item of the phases before it. */
typedef struct qkc_aot_grid {
    qkc_aot_dim extent;
    int64_t tile;
    int64_t phase;
} qkc_aot_grid;

enum { QKC_AOT_SCRATCH_PACKED = 0, QKC_AOT_SCRATCH_STAGE = 1, QKC_AOT_SCRATCH_DENSE = 2, QKC_AOT_SCRATCH_SUMS = 3 };

/* A scratch buffer the runtime allocates per launch: for tensors[tensor]
 * (a temp), PACKED: its packed bytes (format size of rows x K), STAGE and
 * DENSE: 4 bytes per element. SUMS (ABI 2, versions that read weights
 * row-interleaved): the sums of tensors[tensor] (the int8 operand, a
 * param or a temp; -1: unused, no bytes) per group of G items, int32
 * [rows][ceil(K / G)], G from qkc_aot_kernel.variant_repack. */
typedef struct qkc_aot_scratch {
    int64_t tensor;
    int64_t kind;
} qkc_aot_scratch;

enum { QKC_AOT_CPU = 0, QKC_AOT_CUDA = 1 };

/* The compiled body of a CPU version: argv has the kernel's full argument
 * list (tensors, dims, strides, scratch pointers; see nargs), and the call
 * computes work items [begin, end). */
typedef void (*qkc_aot_entry)(const qkc_aot_arg *argv, int64_t begin, int64_t end);

typedef struct qkc_aot_variant {
    const char *isa;      /* "x86-64-v4", "x86-64-v3", "aarch64+dotprod", "sm_90", ... */
    int64_t kind;         /* QKC_AOT_CPU or QKC_AOT_CUDA */
    int64_t features;     /* QKC_AOT_FEAT_* the CPU must have */
    qkc_aot_entry entry;  /* CPU; NULL for CUDA */
    /* CUDA: PTX text (NUL-terminated, gpu_code_bytes includes the NUL) and
     * the kernel's entry name in it; launch geometry as the JIT backend. */
    const char *gpu_code;
    int64_t gpu_code_bytes;
    const char *gpu_symbol;
    int64_t gpu_block;    /* threads per block */
    const char *config;   /* the tile configuration, as `qkc emit --stage=tir` shows it */
    const char *config_origin; /* "tuning-db", "model", "schedule" */
    int64_t ngrids;
    const qkc_aot_grid *grids;
    int64_t nphases;
    int64_t nscratch;
    const qkc_aot_scratch *scratch;
} qkc_aot_variant;

typedef struct qkc_aot_kernel {
    int64_t abi;          /* QKC_AOT_ABI */
    const char *name;     /* the kernel's name in the DSL */
    const char *symbol;   /* C name of the typed wrapper: prefix_name */
    const char *source;   /* the DSL text of the kernel */
    const char *qkc_version;
    int64_t nparams, nresults;
    int64_t ntensors;     /* params, results, then temps */
    const qkc_aot_tensor *tensors;
    int64_t ndims;
    const char *const *dim_names;
    /* Strides: for every param/result that is dense with rank >= 2, in
     * tensor order, one per dim 0..rank-2 (elements). */
    int64_t nstrides;
    /* Full argument count of an entry: ntensors' params+results, ndims,
     * nstrides, then one per scratch buffer of the chosen variant. */
    int64_t nvariants;
    const qkc_aot_variant *variants; /* best first */
    /* ABI 2: three per version, in variants' order: the param that
     * version reads in the row-interleaved layout (`qkc build --layout
     * any`), -1 for none; its rows per group (0 for none); and the items
     * per sum of its SUMS scratch (0 for none). NULL: no version reads
     * the layout (so in the ABI 1 descriptors this qkc writes, and in a
     * descriptor written by hand); descriptors written by a qkc before
     * 2026-11 end before this field, so read it only where abi >= 2. */
    const int64_t *variant_repack;
} qkc_aot_kernel;

/* ---- libqkc_rt ---- */

typedef struct qkc_rt_pool qkc_rt_pool;

/* A pool of threads (threads <= 0: the number of cores). NULL on failure. */
qkc_rt_pool *qkc_rt_pool_new(int threads);
void qkc_rt_pool_free(qkc_rt_pool *pool);
int qkc_rt_pool_threads(const qkc_rt_pool *pool);

/* A CUDA context for GPU versions: the driver (libcuda.so.1, opened with
 * dlopen), device 0's primary context, and the modules loaded so far
 * (each version's PTX is loaded on its first launch). NULL, with a
 * message, where there is no driver or device. After a sticky CUDA error
 * (an illegal address in a kernel) it refuses every launch: the process
 * must restart to use CUDA again. */
typedef struct qkc_rt_gpu qkc_rt_gpu;
qkc_rt_gpu *qkc_rt_gpu_new(char *err, size_t errsz);
void qkc_rt_gpu_free(qkc_rt_gpu *gpu);

typedef struct qkc_rt_opts {
    qkc_rt_pool *pool;  /* NULL: run on the calling thread */
    qkc_rt_gpu *gpu;    /* GPU versions; NULL: a context made for this call (the
                           driver opened, the PTX JIT-loaded, every call: slow) */
    char *err;          /* optional: receives a message on failure */
    size_t errsz;
} qkc_rt_opts;

/* The version qkc_rt_launch runs on this machine: the first of
 * k->variants whose features the CPU has (CUDA versions only where a
 * driver and a device at least as new as the version's PTX target are
 * present), or the one named by the environment
 * variable QKC_AOT_ISA (e.g. "x86-64-v3"), read once per process. NULL,
 * with a message, if none can run. The choice is made once per kernel. */
const qkc_aot_variant *qkc_rt_select(const qkc_aot_kernel *k, char *err, size_t errsz);

/* Runs k. argv: one pointer per param and result, one integer per dim
 * (k->dim_names order), then k->nstrides strides, where 0 means the
 * row-major stride of that dim. Dims and strides are validated before any
 * tensor memory is touched. opts may be NULL. Returns QKC_RT_OK or an
 * error status with a message in opts->err. */
int qkc_rt_launch(const qkc_aot_kernel *k, const qkc_aot_arg *argv, const qkc_rt_opts *opts);

/* Packed bytes of quantized tensor `tensor` of k for its shape (the
 * tensor's own extents, rank k->tensors[tensor].rank). -1 if it is not
 * quantized or a dim is negative. */
int64_t qkc_rt_packed_bytes(const qkc_aot_kernel *k, int tensor, const int64_t *shape);

/* Quantizes f32 src (row-major, the tensor's shape) into dst (dst_bytes,
 * at least qkc_rt_packed_bytes). codebook: the books for VQ formats (the
 * book tensor's dtype), else NULL. Same bytes as qkc_pack of the JIT API. */
int qkc_rt_pack(const qkc_aot_kernel *k, int tensor, const float *src, const int64_t *shape, void *dst,
                int64_t dst_bytes, const void *codebook, char *err, size_t errsz);
/* Decodes packed src (src_bytes) to f32 dst. */
int qkc_rt_unpack(const qkc_aot_kernel *k, int tensor, const void *src, int64_t src_bytes, const int64_t *shape,
                  float *dst, const void *codebook, char *err, size_t errsz);

/* Kernel-private weight layout (`qkc build --layout any`). A version may
 * read a quantized param in a row-interleaved layout instead of its
 * format's bytes (faster matrix-vector products; docs/embedding.md).
 * qkc_rt_repacked_bytes: the bytes the version qkc_rt_select picks reads
 * for tensor at shape: the row-interleaved size where it reads that
 * layout, else qkc_rt_packed_bytes; -1 if the tensor is not quantized, a
 * dim is negative or no version runs here. qkc_rt_repack converts the
 * format's bytes (qkc_rt_pack's, src_bytes >= qkc_rt_packed_bytes) into
 * what that version reads: the row-interleaved layout, or a copy of the
 * bytes where it reads the format's own. Codes and scales are moved,
 * never re-quantized. The result is specific to the version that runs
 * (QKC_AOT_ISA included): convert on the machine that launches. */
int64_t qkc_rt_repacked_bytes(const qkc_aot_kernel *k, int tensor, const int64_t *shape);
int qkc_rt_repack(const qkc_aot_kernel *k, int tensor, const void *src, int64_t src_bytes, const int64_t *shape,
                  void *dst, int64_t dst_bytes, char *err, size_t errsz);

/* "0.2.0": the runtime's version. */
const char *qkc_rt_version(void);

#ifdef __cplusplus
}
#endif

#endif

/* backend.h — the interface every backend implements: a struct of hooks
 * over the tiled IR. The runtime picks a backend by the target's kind and
 * never includes a backend's own headers.
 *
 * Prefix: qk_backend_. */
#ifndef QK_BACKEND_H
#define QK_BACKEND_H

#include "compiler/tir.h"
#include "compiler/tune.h"

#include <stdlib.h>

/* Compiled code for one tiled-IR function, owned by the backend state that
 * made it (freed with release). For CPU backends fn is the host entry point
 * with the C signature of tir.h; for GPU backends fn is NULL and launch
 * goes through the backend's launch hook. */
typedef struct qk_code {
    void *fn;
    void *priv;
} qk_code;

typedef enum {
    QK_EMIT_LLVM, /* textual LLVM IR after optimization */
    QK_EMIT_ASM,  /* target assembly */
    QK_EMIT_CUDA, /* CUDA C source */
    QK_EMIT_PTX,  /* PTX text */
} qk_emit_stage;

/* ---- ahead-of-time objects (`qkc build`) ----
 * What a backend needs to write one object holding many kernels, each in
 * one or more versions (one per target ISA), and the constant
 * qkc_aot_kernel descriptors of include/qkc_aot.h that libqkc_rt reads.
 * The runtime (runtime/aot.c) fills these; the backend turns them into
 * code and data. */
typedef struct qk_aot_variant {
    const qk_target *target; /* its ISA; CPU versions are compiled from f */
    const tir_func *f;
    const char *config;      /* tir_config_print of f->cfg */
    const char *origin;      /* where the configuration came from */
    /* GPU versions: code made by the GPU backend beforehand */
    const char *gpu_code;    /* PTX text */
    const char *gpu_symbol;  /* its entry */
    int gpu_block;           /* threads per block */
} qk_aot_variant;

typedef struct qk_aot_kernel {
    const kir_kernel *k;
    const char *symbol;        /* C name of the typed wrapper: prefix_name */
    /* Per tensor of k (params, results, temps): its serialized format
     * (qk_format_serialize) or NULL/0 when dense. */
    const qk_buf *format_images;
    int nvariants;             /* best first */
    const qk_aot_variant *variants;
} qk_aot_kernel;

typedef struct qk_aot_unit {
    const char *prefix;
    const qk_target *host;     /* the CPU the object is for (its triple) */
    int nkernels;
    const qk_aot_kernel *kernels;
} qk_aot_unit;

typedef struct qk_aot_object {
    void *data;      /* malloc'd */
    size_t len;
    int nsyms;
    char **syms;     /* malloc'd names of its external definitions */
} qk_aot_object;

typedef struct qk_aot_objects {
    int n;
    qk_aot_object *o;
} qk_aot_objects;

static inline void qk_aot_objects_free(qk_aot_objects *x)
{
    for (int i = 0; i < x->n; i++) {
        free(x->o[i].data);
        for (int j = 0; j < x->o[i].nsyms; j++)
            free(x->o[i].syms[j]);
        free(x->o[i].syms);
    }
    free(x->o);
    x->n = 0;
    x->o = NULL;
}

/* What one GPU kernel uses, as the assembler reports it (the resources
 * hook): the figures the tuner's legality check needs. */
typedef struct qk_resources {
    int regs;  /* 32-bit registers per thread */
    int smem;  /* static shared memory bytes per block */
    int spill; /* bytes of spill stores per thread */
    int block; /* threads per block of every launch */
} qk_resources;

/* The tuner's view of r (compiler/tune.h); from_ptxas is left to it. */
static inline void qk_resources_usage(const qk_resources *r, tune_gpu_usage *u)
{
    u->regs = r->regs;
    u->smem = r->smem;
    u->spill = r->spill;
    u->block = r->block;
}

typedef struct qk_backend {
    const char *name;
    /* Non-NULL in a build without this backend (backends/llvm_absent.c):
     * why, for messages. Every hook then fails with it, and the runtime
     * defers the failure to launch, as for code that cannot run here. */
    const char *absent;
    /* Creates per-context state (e.g. an LLJIT). 0 or -1 + err. */
    int (*create)(const qk_target *t, void **state, char *err, size_t errsz);
    void (*destroy)(void *state);
    /* Compiles f to runnable code. Must be safe to call from several
     * threads on one state. 0 or -1 + err. */
    int (*compile)(void *state, const tir_func *f, qk_code *out, char *err, size_t errsz);
    void (*release)(void *state, qk_code *code);
    /* Text of one stage for `qkc emit`. state may be NULL. */
    int (*emit)(void *state, const tir_func *f, qk_emit_stage stage, qk_buf *out, char *err, size_t errsz);
    /* GPU only: runs items [begin, end) of code with host-side arguments
     * (args as in tir.h; pointers are host memory, copied in and out;
     * arg_bytes[i] is the size of pointer argument i). phase_ends (NULL:
     * one phase) holds f->nphases item counts: phase p is the items
     * [phase_ends[p - 1] (begin for p = 0), phase_ends[p]), and runs after
     * every item of the phases before it, on buffers that stay on the
     * device in between. */
    int (*launch)(void *state, const tir_func *f, qk_code *code, void **args, const int64_t *arg_bytes,
                  const int64_t *phase_ends, char *err, size_t errsz);
    /* Optional (NULL in backends without them): relocatable object code,
     * which the runtime's on-disk kernel cache stores between processes.
     * obj_tag names everything an object depends on besides f (target
     * triple, CPU, features, compiler version); an object is only loaded
     * by a state with the same tag. The string lives as long as state. */
    const char *(*obj_tag)(void *state);
    /* Compiles f to object bytes (*obj malloc'd, *n bytes): the code
     * compile would produce. Safe from several threads. 0 or -1 + err. */
    int (*compile_obj)(void *state, const tir_func *f, void **obj, size_t *n, char *err, size_t errsz);
    /* Makes an object from compile_obj of the same f (this process or an
     * earlier one, same obj_tag) runnable, as compile does; out is freed
     * with release. Safe from several threads. 0 or -1 + err. */
    int (*load_obj)(void *state, const tir_func *f, const void *obj, size_t n, qk_code *out, char *err,
                    size_t errsz);
    /* Optional (CPU backends): relocatable objects for u defining, for
     * every kernel, the external constant `<symbol>_kernel` (qkc_aot_kernel)
     * and the NULL-terminated array `<prefix>_kernels`. With split = 0 one
     * object holds everything; with split = 1 (archives) each CPU version
     * is its own object, compiled in parallel, and the first object holds
     * the descriptors. Every object's external symbols are listed (an
     * archive's index needs them). Free with qk_aot_objects_free. */
    int (*aot_object)(const qk_aot_unit *u, int split, qk_aot_objects *out, char *err, size_t errsz);
    /* Optional: the text of stage held by compiled code (e.g. the PTX a
     * GPU compile made, perhaps loaded from the disk cache), so that emit
     * need not compile again. 0, or -1 when code has no such text. */
    int (*code_text)(void *state, const qk_code *code, qk_emit_stage stage, qk_buf *out);

    /* ---- optional device hooks (GPU backends) ---- */
    /* Reads the device's description (SMs, shared memory, registers, L2,
     * name) into *t when the machine has a device t's code runs on
     * natively. 1 when *t was replaced, 0 when there is no such device (t
     * unchanged), -1 + err when there is no driver or it failed. Called
     * once, when a context is created. */
    int (*describe)(void *state, qk_target *t, char *err, size_t errsz);
    /* As launch, but the buffers stay on the device across repetitions:
     * `copies` device copies of them are made (used in turn, so that a
     * set larger than the device's cache comes from memory every time),
     * each is run once to warm up, then reps launches are timed one by
     * one on the device (seconds[0..reps)). Results are copied back from
     * the first copy. 0 or -1 + err. */
    int (*launch_timed)(void *state, const tir_func *f, qk_code *code, void **args, const int64_t *arg_bytes,
                        int copies, int reps, double *seconds, char *err, size_t errsz);
    /* The device memory's copy bandwidth: bytes read plus bytes written
     * per second by a device-to-device copy of `bytes` bytes, best of
     * reps. 0 or -1 + err. */
    int (*copy_bandwidth)(void *state, int64_t bytes, int reps, double *bytes_per_s, char *err, size_t errsz);
    /* Optional, GPU: the registers and shared memory f's kernel uses, from
     * the toolkit's assembler (no device needed). 0, or -1 + err when the
     * assembler is missing or rejects the code (err says which). */
    int (*resources)(void *state, const tir_func *f, qk_resources *out, char *err, size_t errsz);
} qk_backend;

extern const qk_backend qk_backend_llvm;
extern const qk_backend qk_backend_cuda;

#endif

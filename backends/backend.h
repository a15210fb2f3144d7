/* backend.h — the interface every backend implements: a struct of hooks
 * over the tiled IR. The runtime picks a backend by the target's kind and
 * never includes a backend's own headers.
 *
 * Prefix: qk_backend_. */
#ifndef QK_BACKEND_H
#define QK_BACKEND_H

#include "compiler/tir.h"

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

typedef struct qk_backend {
    const char *name;
    /* Creates per-context state (e.g. an LLJIT). 0 or -1 + err. */
    int (*create)(const qk_target *t, void **state, char *err, size_t errsz);
    void (*destroy)(void *state);
    /* Compiles f to runnable code. Must be safe to call from several
     * threads on one state. 0 or -1 + err. */
    int (*compile)(void *state, const tir_func *f, qk_code *out, char *err, size_t errsz);
    void (*release)(void *state, qk_code *code);
    /* Text of one stage for `qkc emit`. state may be NULL. */
    int (*emit)(void *state, const tir_func *f, qk_emit_stage stage, qk_buf *out, char *err, size_t errsz);
    /* GPU only: runs items [0, items) of code with host-side arguments
     * (args as in tir.h; pointers are host memory, copied in and out). */
    int (*launch)(void *state, const tir_func *f, qk_code *code, void **args, const int64_t *arg_bytes,
                  char *err, size_t errsz);
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
} qk_backend;

extern const qk_backend qk_backend_llvm;
extern const qk_backend qk_backend_cuda;

#endif

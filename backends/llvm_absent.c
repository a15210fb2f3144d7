/* llvm_absent.c — qk_backend_llvm in a build without LLVM
 * (-DQKC_WITH_LLVM=OFF): the CPU backend's hooks, each failing with the
 * same message, so the runtime, `qkc build` and the CLI report that CPU
 * code is unavailable instead of failing to link. GPU targets and the
 * reference interpreter need no LLVM. */
#include "backends/backend.h"

#include <stdio.h>

#define NO_LLVM                                                                                                 \
    "qkc was built without LLVM: CPU code generation is unavailable; use a GPU target (sm_80, sm_90) or the " \
    "reference interpreter"

static int absent(char *err, size_t errsz)
{
    snprintf(err, errsz, "%s", NO_LLVM);
    return -1;
}

static int create(const qk_target *t, void **state, char *err, size_t errsz)
{
    *state = NULL;
    return absent(err, errsz);
}

static void destroy(void *state)
{
}

static int compile(void *state, const tir_func *f, qk_code *out, char *err, size_t errsz)
{
    return absent(err, errsz);
}

static void release(void *state, qk_code *code)
{
}

static int emit(void *state, const tir_func *f, qk_emit_stage stage, qk_buf *out, char *err, size_t errsz)
{
    return absent(err, errsz);
}

static int aot_object(const qk_aot_unit *u, int split, qk_aot_objects *out, char *err, size_t errsz)
{
    out->n = 0;
    out->o = NULL;
    return absent(err, errsz);
}

const qk_backend qk_backend_llvm = {
    .name = "llvm (absent)",
    .absent = NO_LLVM,
    .create = create,
    .destroy = destroy,
    .compile = compile,
    .release = release,
    .emit = emit,
    .aot_object = aot_object,
};

/* nvrtc.c — CUDA C to PTX with NVRTC, opened with dlopen so that qkc
 * builds and runs without the CUDA toolkit (it then reports "NVRTC not
 * found" when a GPU kernel is compiled).
 *
 * The library is searched in this order: $QKC_NVRTC, the path CMake found
 * (QKC_NVRTC_PATH), libnvrtc.so, libnvrtc.so.13, libnvrtc.so.12, and
 * /usr/local/cuda/lib64/libnvrtc.so. cuda_fp16.h comes from
 * QKC_CUDA_INCLUDE, else /usr/local/cuda/include.
 *
 * The NVRTC found fixes the PTX ISA version (.version) of the PTX: a newer
 * NVRTC than the driver's CUDA release makes PTX the driver rejects
 * (driver.c says so), and its version is part of the disk cache's key
 * (cuda_obj_tag). */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cuda/cuda_internal.h"

#ifndef QKC_NVRTC_PATH
#define QKC_NVRTC_PATH ""
#endif
#ifndef QKC_CUDA_INCLUDE
#define QKC_CUDA_INCLUDE ""
#endif

static void *open_nvrtc(void) {
    const char *env = getenv("QKC_NVRTC");
    const char *names[] = {env, QKC_NVRTC_PATH, "libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12",
                           "/usr/local/cuda/lib64/libnvrtc.so"};
    for (int i = 0; i < QK_COUNT(names); i++) {
        if (!names[i] || !*names[i])
            continue;
        /* NODELETE: NVRTC keeps allocations in its globals; unmapping it
         * at dlclose would leave them unreachable (a leak report). */
        void *lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
        if (lib)
            return lib;
    }
    return NULL;
}

/* Resolves one symbol into *slot; 0 or -1. */
static int resolve(cuda_nvrtc *nv, const char **missing) {
    struct {
        const char *name;
        void *slot;
    } t[] = {
        {"nvrtcCreateProgram", &nv->create_program}, {"nvrtcCompileProgram", &nv->compile_program},
        {"nvrtcGetProgramLogSize", &nv->get_log_size}, {"nvrtcGetProgramLog", &nv->get_log},
        {"nvrtcGetPTXSize", &nv->get_ptx_size},      {"nvrtcGetPTX", &nv->get_ptx},
        {"nvrtcDestroyProgram", &nv->destroy_program}, {"nvrtcGetErrorString", &nv->error_string},
        {"nvrtcVersion", &nv->version},
    };
    for (int i = 0; i < QK_COUNT(t); i++)
        if (cuda_api_sym(nv->lib, t[i].name, t[i].slot)) {
            *missing = t[i].name;
            return -1;
        }
    return 0;
}

int cuda_nvrtc_load(cuda_state *st, char *err, size_t errsz) {
    int rc = 0;
    pthread_mutex_lock(&st->lock);
    if (!st->nvrtc.lib) {
        cuda_nvrtc nv = {.lib = open_nvrtc()};
        const char *missing = NULL;
        if (!nv.lib) {
            snprintf(err, errsz, "NVRTC not found (set QKC_NVRTC to libnvrtc.so)");
            rc = -1;
        } else if (resolve(&nv, &missing)) {
            snprintf(err, errsz, "NVRTC not usable: symbol %s is missing (set QKC_NVRTC to libnvrtc.so)", missing);
            dlclose(nv.lib);
            rc = -1;
        } else if (nv.version(&nv.major, &nv.minor) != 0) {
            snprintf(err, errsz, "NVRTC not usable: nvrtcVersion failed (set QKC_NVRTC to libnvrtc.so)");
            dlclose(nv.lib);
            rc = -1;
        } else {
            st->nvrtc = nv;
        }
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

void cuda_nvrtc_unload(cuda_nvrtc *nv) {
    if (nv->lib)
        dlclose(nv->lib);
    memset(nv, 0, sizeof *nv);
}

/* NVRTC's log for prog (malloc'd, never NULL). */
static char *program_log(const cuda_nvrtc *nv, nvrtcProgram prog) {
    size_t n = 0;
    if (nv->get_log_size(prog, &n) != 0 || n == 0)
        return qk_xstrdup("");
    char *log = qk_xcalloc(n + 1, 1);
    if (nv->get_log(prog, log) != 0)
        log[0] = 0;
    return log;
}

static char *take_ptx(const cuda_nvrtc *nv, nvrtcProgram prog, size_t *len) {
    size_t n = 0;
    if (nv->get_ptx_size(prog, &n) != 0 || n == 0)
        return NULL;
    char *ptx = qk_xcalloc(n + 1, 1);
    if (nv->get_ptx(prog, ptx) != 0) {
        free(ptx);
        return NULL;
    }
    *len = strlen(ptx);
    return ptx;
}

/* -I options: the configured CUDA include directory, then the default
 * install's (a directory that does not exist is harmless). */
static int include_opts(char inc[2][1100]) {
    int n = 0;
    if (*QKC_CUDA_INCLUDE)
        snprintf(inc[n++], sizeof inc[0], "-I%s", QKC_CUDA_INCLUDE);
    if (strcmp(QKC_CUDA_INCLUDE, "/usr/local/cuda/include") != 0)
        snprintf(inc[n++], sizeof inc[0], "-I%s", "/usr/local/cuda/include");
    return n;
}

int cuda_nvrtc_compile(cuda_state *st, const char *src, const char *name, int sm, char **ptx, size_t *ptx_len,
                       char *err, size_t errsz) {
    if (cuda_nvrtc_load(st, err, errsz))
        return -1;
    const cuda_nvrtc *nv = &st->nvrtc; /* immutable once loaded */
    char arch[48], inc[2][1100];
    snprintf(arch, sizeof arch, "--gpu-architecture=compute_%d", sm);
    /* --fmad=false: the tiled IR says where it wants an fma; a separate
     * fmul + fadd must round twice, as on the CPU backends. */
    const char *opts[6] = {arch, "--std=c++17", "-default-device", "--fmad=false"};
    int nopts = 4, ninc = include_opts(inc);
    for (int i = 0; i < ninc; i++)
        opts[nopts++] = inc[i];
    nvrtcProgram prog = NULL;
    nvrtcResult r = nv->create_program(&prog, src, name, 0, NULL, NULL);
    if (r != 0) {
        snprintf(err, errsz, "nvrtcCreateProgram: %s", nv->error_string(r));
        return -1;
    }
    r = nv->compile_program(prog, nopts, opts);
    if (r != 0) {
        char *log = program_log(nv, prog);
        snprintf(err, errsz, "NVRTC failed to compile %s for compute_%d (%s):\n%s", name, sm, nv->error_string(r),
                 log);
        free(log);
        nv->destroy_program(&prog);
        return -1;
    }
    *ptx = take_ptx(nv, prog, ptx_len);
    nv->destroy_program(&prog);
    if (!*ptx) {
        snprintf(err, errsz, "NVRTC returned no PTX for %s", name);
        return -1;
    }
    return 0;
}

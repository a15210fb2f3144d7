/* runtime.h — internal interface of the runtime (libqkc's public API in
 * include/qkc.h is implemented on top of it). The runtime owns the
 * handles: a context (target, backend state, thread pool, kernel cache,
 * per-thread error messages), programs (Kernel IR + diagnostics) and
 * kernels (a cache entry + introspection strings).
 *
 * Pipeline position: last. It reads the frontend (source -> KIR), the
 * compiler (KIR -> TIR) and a backend (TIR -> code) through their headers.
 *
 * Prefix: rt_. Nothing here is visible to applications. */
#ifndef QK_RUNTIME_H
#define QK_RUNTIME_H

#include "backends/backend.h"
#include "runtime/tunedb.h"
#include "common/base.h"
#include "compiler/kir.h"
#include "compiler/tir.h"
#include "qkc.h"

#include <pthread.h>
#if QKC_HAVE_FFI /* only calls of CPU code need it: builds without LLVM have none */
#include <ffi.h>
#endif

#define RT_ERR_SLOTS 32
#define RT_MAX_ARGS 128

/* ---- pool.c: a thread pool for launches ---- */
/* Runs fn(arg, begin, end) over disjoint chunks covering [0, items). */
typedef void (*rt_task_fn)(void *arg, int64_t begin, int64_t end);
typedef struct rt_pool rt_pool;
/* A pool of up to nthreads-1 workers (the caller is the last thread).
 * Workers start on the first run that needs them. */
rt_pool *rt_pool_new(int nthreads);
void rt_pool_free(rt_pool *p); /* NULL is harmless */
/* Runs the task on min(threads, pool size) threads, the caller included;
 * returns when every chunk is done. One run at a time per pool (callers
 * from other threads wait). Returns 0, or -1 when workers could not start
 * (the task has then run entirely on the caller). */
int rt_pool_run(rt_pool *p, int threads, int64_t items, rt_task_fn fn, void *arg);

/* ---- cache.c: compiled kernels, keyed by content ---- */
/* One compiled kernel: its tiled IR (argument layout, grid) and code. */
typedef struct rt_entry {
    uint64_t hash;
    char *key;         /* the full key text (collisions are compared away) */
    int refs;          /* kernels using it; guarded by the cache mutex */
    qk_arena *arena;   /* owns f */
    tir_func *f;
    int has_code;      /* 0: GPU code not available (code_err says why) */
    qk_code code;
    char *code_err;
#if QKC_HAVE_FFI
    ffi_cif cif;       /* CPU: prepared once for the entry point */
    ffi_type **types;
#endif
    struct rt_entry *next;
} rt_entry;

typedef struct rt_cache {
    pthread_mutex_t mu;
    rt_entry *head;
    int64_t hits, misses;
} rt_cache;

void rt_cache_init(rt_cache *c);
/* Frees every entry (their code is released through the backend). */
void rt_cache_fini(rt_cache *c, const qk_backend *be, void *state);
/* Returns the entry for key with one more reference, or NULL. */
rt_entry *rt_cache_find(rt_cache *c, uint64_t hash, const char *key);
/* Inserts e (refs = 1) unless an equal key arrived meanwhile: then returns
 * that one (with a reference) and the caller discards e. */
rt_entry *rt_cache_insert(rt_cache *c, rt_entry *e);
void rt_cache_release(rt_cache *c, rt_entry *e);
/* Frees an entry that never entered the cache. */
void rt_entry_free(rt_entry *e, const qk_backend *be, void *state);

/* ---- ctx.c ---- */
typedef struct rt_errslot {
    pthread_t tid;
    int used;
    char *msg;
} rt_errslot;

struct qkc_ctx {
    qk_target target;
    const qk_backend *backend;
    char *dsl_path;
    int threads;
    pthread_mutex_t backend_mu; /* guards lazy backend creation */
    int backend_tried;
    void *backend_state;        /* NULL until created (or when it failed) */
    char *backend_err;
    rt_pool *pool;
    rt_cache cache;
    char *cache_dir;            /* on-disk kernel cache directory; NULL = disabled */
    char *tuning_db;            /* resolved path of the tuning database; NULL = disabled */
    pthread_mutex_t tdb_mu;     /* guards the lazily opened database */
    int tdb_tried;
    qk_tunedb *tdb;             /* NULL when absent or unreadable */
    char *tdb_warning;          /* why it could not be read, or NULL */
    pthread_mutex_t err_mu;
    rt_errslot errs[RT_ERR_SLOTS];
    int err_next;
};

/* Records the calling thread's message on ctx and returns status. */
qkc_status rt_fail(const qkc_ctx *ctx, qkc_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Creates the backend state on first use. 0, or -1 with the reason in err. */
int rt_backend_state(qkc_ctx *ctx, void **state, char *err, size_t errsz);
/* 1 when a backend message means "no GPU/driver/NVRTC here". */
int rt_is_no_device(const char *msg);

/* ---- diskcache.c: compiled objects on disk ---- */
/* The cache directory for the option (include/qkc.h): malloc'd, or NULL
 * when disabled. Creates nothing. */
char *rt_cache_dir_resolve(const char *opt);
/* Compiles e->f through the disk cache in dir (NULL = none, or a backend
 * without object hooks: plain compile). *hit = 1 when loaded from disk.
 * 0, or -1 + err. */
int rt_compile_cached(const qk_backend *be, void *state, const char *dir, rt_entry *e, int *hit, char *err,
                      size_t errsz);

/* ---- program.c ---- */
struct qkc_program {
    qkc_ctx *ctx;
    kir_program *kir; /* NULL when the source had errors */
    qk_diags diags;
    char *diag_text;
    pthread_mutex_t mu; /* guards kernels[] */
    qkc_kernel **kernels; /* one slot per KIR kernel, filled on first get */
};

/* The program's Kernel IR (NULL after compile errors): for the CLI's
 * `info` command, which lists formats. */
const kir_program *rt_program_kir(const qkc_program *p);

/* ---- kernel.c ---- */
struct qkc_kernel {
    qkc_program *prog;
    const kir_kernel *kir;
    struct qkc_kernel *next; /* other configurations of the same KIR kernel */
    char *config;            /* tir_config_print of the configuration used */
    char *origin;            /* where it came from (qkc_kernel_config) */
    rt_entry *entry;
    qk_arena *arena;  /* signature and dim strings */
    char *signature;
    const char ***dim_text; /* [tensor][dim] as printed ("N", "H-2", "64") */
};

/* Resolves the configuration of k on target t for opts: explicit, tuning
 * database (ctx's, records of t's fingerprint), schedule, model
 * (include/qkc.h). *origin is malloc'd. */
qkc_status rt_choose_config(qkc_ctx *ctx, const kir_kernel *k, const qk_target *t, const qkc_kernel_options *opts,
                            tir_config *cfg, char **origin);
/* Frees a kernel (and its later configurations) and drops their cache
 * references (program destroy). */
void rt_kernel_free(qkc_kernel *k);
/* 16 hex digits naming the kernel's canonical text (KIR and formats),
 * without target or configuration: the key of tuning-database records. */
void rt_kernel_hash(const kir_kernel *k, char out[17]);

/* ---- aot.c: ahead-of-time builds (`qkc build`) ---- */
typedef struct rt_aot_opts {
    int nprograms;
    qkc_program *const *programs; /* parsed without errors, all on one context */
    const char *kernels;   /* comma-separated kernel names; NULL = every kernel */
    const char *targets;   /* comma-separated target names; NULL = "host" */
    const char *prefix;    /* C prefix of generated names (an identifier) */
    const char *dims;      /* shape the configurations are chosen for; NULL = 4096 each */
    int threads;           /* thread count for tuning-database lookups (0 = cores) */
    const char *output;    /* object or archive path */
    int archive;           /* 1: a static archive, 0: one object */
    const char *header;    /* generated header path */
    int any_layout;        /* 1: versions may read weights row-interleaved (qkc_kernel_options.any_layout) */
} rt_aot_opts;
/* Builds every selected kernel for every target into o->output and writes
 * o->header. *log (malloc'd, may be NULL) gets one line per version:
 * kernel, target and configuration with its origin. QKC_OK or a status
 * with the message on ctx. */
qkc_status rt_aot_build(qkc_ctx *ctx, const rt_aot_opts *o, char **log);

/* ---- launch.c ---- */
/* Validates args against k's declaration and binds the dims: fills views
 * and dims (k->kir->nsyms entries). Touches no tensor memory. */
qkc_status rt_check_args(const qkc_kernel *k, const qkc_tensor *args, int nargs, kir_view *views, int64_t *dims);
/* Prepares the libffi call interface of a CPU entry. 0, or -1 (also in a
 * build without libffi). */
int rt_entry_prep_ffi(rt_entry *e);

/* ---- types.c ---- */
qk_dtype rt_dtype_to_qk(qkc_dtype t);  /* QK_DT_NONE for PACKED/unknown */
qkc_dtype rt_dtype_from_qk(qk_dtype t);
const char *rt_qkc_dtype_name(qkc_dtype t); /* "f32", ..., "packed", "?" */
const char *rt_c_type(qk_dtype t);     /* "float", "uint16_t", ... */

#endif

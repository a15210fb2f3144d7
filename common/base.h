/* base.h — utilities shared by every stage of qkc: source locations,
 * diagnostics, arenas, growable buffers, dtypes, half/bfloat16 conversion,
 * hashing. Nothing here knows about the DSL, the IRs or LLVM.
 *
 * Prefix: qk_. No mutable global state anywhere in this module. */
#ifndef QK_BASE_H
#define QK_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define QK_MAX_RANK 8
#define QK_COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* A position in a source file. file points at a string owned by the
 * qk_diags (or arena) that produced it; line and col are 1-based. */
typedef struct qk_loc {
    const char *file;
    int line, col;
} qk_loc;

/* ---- arena.c: memory for one compilation, freed in one call ---- */
typedef struct qk_arena qk_arena;
qk_arena *qk_arena_new(void);
void qk_arena_free(qk_arena *a);              /* NULL is harmless */
void *qk_alloc(qk_arena *a, size_t size);      /* zeroed; never NULL (aborts on OOM) */
char *qk_strdup(qk_arena *a, const char *s);
char *qk_strndup(qk_arena *a, const char *s, size_t n);
char *qk_asprintf(qk_arena *a, const char *fmt, ...);

/* Allocation helpers that abort loudly on out-of-memory (an internal bug
 * path: qkc cannot continue without memory). */
void *qk_xmalloc(size_t n);
void *qk_xcalloc(size_t n, size_t size);
void *qk_xrealloc(void *p, size_t n);
char *qk_xstrdup(const char *s);

/* Internal invariant failure: prints file:line and the message, aborts.
 * Never used for user errors. */
_Noreturn void qk_bug_at(const char *file, int line, const char *fmt, ...);
#define qk_bug(...) qk_bug_at(__FILE__, __LINE__, __VA_ARGS__)
#define qk_assert(c) ((c) ? (void)0 : qk_bug("assertion failed: %s", #c))

/* ---- buf.c: growable text buffer (printers, messages) ---- */
typedef struct qk_buf {
    char *s;
    size_t len, cap;
} qk_buf;
void qk_buf_printf(qk_buf *b, const char *fmt, ...);
void qk_buf_vprintf(qk_buf *b, const char *fmt, va_list ap);
void qk_buf_puts(qk_buf *b, const char *s);
void qk_buf_append(qk_buf *b, const void *data, size_t n); /* bytes; keeps a NUL after them */
void qk_buf_indent(qk_buf *b, int n); /* n*2 spaces */
char *qk_buf_take(qk_buf *b);         /* returns malloc'd string (never NULL), resets b */
void qk_buf_free(qk_buf *b);

/* ---- diag.c: diagnostics with file:line:col, source line and caret ---- */
typedef enum { QK_SEV_ERROR, QK_SEV_WARNING, QK_SEV_NOTE } qk_severity;

typedef struct qk_diag {
    qk_loc loc;
    qk_severity sev;
    char *msg;
} qk_diag;

typedef struct qk_source {
    char *name; /* file name as given */
    char *text; /* NUL-terminated contents */
    size_t len;
} qk_source;

/* Collects diagnostics and owns the source texts they point into.
 * Stops recording after max_errors errors (default 20). */
typedef struct qk_diags {
    qk_diag *items;
    int n, cap;
    int nerrors;
    int max_errors;
    qk_source *srcs;
    int nsrcs, capsrcs;
} qk_diags;

void qk_diags_init(qk_diags *d);
void qk_diags_free(qk_diags *d);
/* Registers a copy of text under name; returns the stable source (its name
 * pointer is what qk_loc.file should point at). */
const qk_source *qk_diags_add_source(qk_diags *d, const char *name, const char *text, size_t len);
const qk_source *qk_diags_find_source(const qk_diags *d, const char *name);
void qk_diag_add(qk_diags *d, qk_severity sev, qk_loc loc, const char *fmt, ...);
void qk_diag_vadd(qk_diags *d, qk_severity sev, qk_loc loc, const char *fmt, va_list ap);
#define qk_error(d, loc, ...) qk_diag_add((d), QK_SEV_ERROR, (loc), __VA_ARGS__)
/* Renders every diagnostic as
 *   file:line:col: error: message
 *     <source line>
 *          ^
 * A loc with line 0 prints "file: error: message" (or "qkc: error:" when
 * file is NULL) without a source line. */
void qk_diags_render(const qk_diags *d, qk_buf *out);

/* ---- dtype.c: the element types of dense tensors ---- */
#define QK_DTYPES(X)                 \
    X(F32, "f32", 4, 1)              \
    X(F16, "f16", 2, 1)              \
    X(BF16, "bf16", 2, 1)            \
    X(I8, "i8", 1, 0)                \
    X(I32, "i32", 4, 0)              \
    X(U8, "u8", 1, 0)

typedef enum {
#define QK_DT_ENUM(id, name, size, isfloat) QK_DT_##id,
    QK_DTYPES(QK_DT_ENUM)
#undef QK_DT_ENUM
    QK_DT_COUNT,
    QK_DT_NONE = -1
} qk_dtype;

const char *qk_dtype_name(qk_dtype t);
int qk_dtype_size(qk_dtype t);
int qk_dtype_is_float(qk_dtype t);
qk_dtype qk_dtype_from_name(const char *name); /* QK_DT_NONE if unknown */

/* Storage conversions, round-to-nearest-even, as IEEE binary16 / bfloat16
 * (NaN preserved, overflow to infinity). */
uint16_t qk_f32_to_f16(float f);
float qk_f16_to_f32(uint16_t h);
uint16_t qk_f32_to_bf16(float f);
float qk_bf16_to_f32(uint16_t h);
/* Reads element i of a dense buffer of dtype t as double (exact). */
double qk_dtype_load(qk_dtype t, const void *base, int64_t i);
/* Stores v into element i, with the rounding of dtype t: floats round to
 * nearest even; integers round half to even and saturate. */
void qk_dtype_store(qk_dtype t, void *base, int64_t i, double v);

/* ---- hash.c ---- */
uint64_t qk_hash64(const void *data, size_t n, uint64_t seed);

/* ---- file.c ---- */
/* Reads a whole file, NUL-terminated; returns NULL (errno set) on failure. */
char *qk_read_file(const char *path, size_t *len);
/* The directory of the standard formats (dsl/): <prefix>/share/qkc/dsl
 * beside an installed qkc, found from the file of libqkc.so or of the
 * executable (so an installed prefix may move), else QKC_DSL_DIR, the
 * source tree's dsl/. Returns buf, or the constant QKC_DSL_DIR. */
const char *qk_dsl_dir(char *buf, size_t n);

#endif

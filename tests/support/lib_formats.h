/* lib_formats.h — the formats of the standard library (dsl/*.qk) for
 * tests that run every format (test_library, test_aot, test_aarch64), and
 * the weight-operand text of a kernel over one. Prefix: rtt_. */
#ifndef QKC_LIB_FORMATS_H
#define QKC_LIB_FORMATS_H

#include <stddef.h>

#include "frontend/frontend.h"

typedef struct rtt_format {
    char file[64];       /* the dsl/ file that defines it first */
    char name[64];
    int code;            /* qk_code_kind */
    int block, bits;
    int vq, books, dim;  /* vector codebooks */
    double bpw;          /* bits per weight */
} rtt_format;

/* Every format of dir's *.qk files, files in name order, a format
 * imported by several files once. Returns the count (at most max), or -1
 * when a file does not compile (its diagnostics are printed). */
int rtt_lib_formats(const char *dir, rtt_format *out, int max);

/* The weight operand's type in a kernel: "NAME", or "NAME(C)" for codebook
 * formats with the codebook param ", C: f16[...]" in book (else ""). */
void rtt_weight_type(const rtt_format *f, char *w, size_t nw, char *book, size_t nb);

/* qk_frontend_compile of src (named file, imports from dir or NULL) into
 * d, which it initializes; NULL when it does not compile, with the
 * rendered diagnostics printed. The caller frees d (and the program). */
kir_program *rtt_compile(const char *src, size_t n, const char *file, const char *dir, qk_diags *d);

/* 1 for codes with an integer image: int/uint/offset, ternary, sign bits. */
int rtt_integer_code(const rtt_format *f);

#endif

/* frontend.h — the frontend stage's interface: DSL source in, Kernel IR
 * out. Lexing (lex.re), parsing (parse.c), import resolution
 * (frontend.c), semantic checks (sema.c) and lowering
 * (compiler/kir_build.c) all happen inside qk_frontend_compile.
 *
 * Threading: no global state; concurrent calls with distinct qk_diags are
 * safe. Prefix: qk_frontend_. */
#ifndef QK_FRONTEND_H
#define QK_FRONTEND_H

#include "common/base.h"
#include "compiler/kir.h"

/* Parses source (named filename, may be NULL → "<input>") and everything
 * it imports, checks it, and lowers it to Kernel IR. All diagnostics go
 * to d (sources are registered in d so carets render).
 * Import search: the importing file's directory, then each dir of
 * dsl_path (':'-separated, may be NULL), then qk_dsl_dir() (an
 * installed qkc's share/qkc/dsl, else the repo's dsl/), then each dir
 * of $QKC_DSL_PATH if set.
 * Returns NULL if any error was reported. The returned program owns an
 * arena with everything (file names are copied into it: locs stay valid
 * after d is freed); free it with kir_program_free. */
kir_program *qk_frontend_compile(const char *source, size_t len, const char *filename, const char *dsl_path,
                                 qk_diags *d);

#endif

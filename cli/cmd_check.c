/* cmd_check.c — `qkc check` (diagnostics only) and `qkc info` (formats
 * and kernels of a program, with C signatures). */
#include "cli/cli.h"
#include "runtime/runtime.h"

#include <stdlib.h>

/* ---- check ---- */

static int check_one(qkc_ctx *ctx, const char *path, int verbose)
{
    qkc_program *p = NULL;
    qkc_status st = qkc_program_create_file(ctx, path, &p);
    if (p)
        fputs(qkc_program_diagnostics_text(p), stderr);
    int bad = st != QKC_OK;
    if (st != QKC_OK && st != QKC_ERR_COMPILE)
        cli_error("%s", qkc_errmsg(ctx));
    else if (verbose && !bad)
        printf("%s: ok (%d kernel%s)\n", path, qkc_program_nkernels(p), qkc_program_nkernels(p) == 1 ? "" : "s");
    qkc_program_destroy(p);
    return bad;
}

static int run_check(const cli_cmd *cmd, const cli_args *a)
{
    qkc_ctx *ctx = NULL;
    if (qkc_ctx_create(NULL, &ctx) != QKC_OK)
        return cli_error("cannot create a context");
    int verbose = cli_get(cmd, a, "verbose") != NULL, bad = 0;
    for (int i = 0; i < a->npos; i++)
        bad |= check_one(ctx, a->pos[i], verbose);
    qkc_ctx_destroy(ctx);
    return bad;
}

const cli_cmd cli_cmd_check = {
    .name = "check",
    .summary = "Parse and check .qk files; print diagnostics only.",
    .usage = "[-v] FILE...",
    .details = "Diagnostics go to stderr as 'file:line:col: error: message' with the source line and a caret.\n"
               "Exit status: 0 when no file has errors, 1 otherwise. Prints nothing on success unless -v.",
    .example = "qkc check examples/q4_gemv.qk",
    .opts = {{"verbose", 'v', NULL, "print one line per file that checks fine", NULL}, {0}},
    .min_pos = 1,
    .max_pos = CLI_MAX_POS,
    .run = run_check,
};

/* ---- info ---- */

static void print_formats(const qkc_program *p)
{
    const kir_program *kp = rt_program_kir(p);
    printf("formats (%d):\n", kp ? kp->nformats : 0);
    for (int i = 0; kp && i < kp->nformats; i++) {
        qk_buf b = {0};
        qk_format_print(kp->formats[i], &b);
        printf("  %s\n", b.s ? b.s : kp->formats[i]->name);
        qk_buf_free(&b);
    }
}

static int print_kernels(qkc_program *p, qkc_ctx *ctx)
{
    int n = qkc_program_nkernels(p), bad = 0;
    printf("kernels (%d):\n", n);
    for (int i = 0; i < n; i++) {
        qkc_kernel *k = NULL;
        const char *name = qkc_program_kernel_name(p, i);
        if (qkc_kernel_get(p, name, &k) != QKC_OK) {
            printf("  %s: cannot compile: %s\n", name, qkc_errmsg(ctx));
            bad = 1;
            continue;
        }
        printf("  %s;\n", qkc_kernel_c_signature(k));
    }
    return bad;
}

static int run_info(const cli_cmd *cmd, const cli_args *a)
{
    qkc_ctx *ctx = NULL;
    qkc_program *p = NULL;
    int rc = cli_load(a->pos[0], cli_get(cmd, a, "target"), 0, &ctx, &p);
    if (rc == 0) {
        printf("%s (target %s)\n", a->pos[0], qkc_ctx_target(ctx));
        print_formats(p);
        rc = print_kernels(p, ctx);
    }
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
    return rc;
}

const cli_cmd cli_cmd_info = {
    .name = "info",
    .summary = "List a program's formats (with bits/weight) and kernels (with C signatures).",
    .usage = "FILE [--target T]",
    .example = "qkc info examples/q4_gemv.qk",
    .opts = {{"target", 't', "T", "target the signatures are for: host, x86-64-v3, x86-64-v4, sm_80, sm_90",
              "host"},
             {0}},
    .min_pos = 1,
    .max_pos = 1,
    .run = run_info,
};

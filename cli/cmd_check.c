/* cmd_check.c — `qkc check`: parse and check .qk files, print diagnostics
 * only. (`qkc info` is cmd_info.c.) */
#include "cli/cli.h"

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

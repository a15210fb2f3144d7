/* cmd_emit.c — `qkc emit --stage=S FILE`: prints one pipeline stage of
 * every kernel (or of --kernel NAME). The GPU stages (cuda, ptx) use a
 * GPU context (sm_90 unless --target names another), so they work from a
 * CPU-only machine. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

static int is_gpu_stage(const char *s)
{
    return strcmp(s, "cuda") == 0 || strcmp(s, "ptx") == 0;
}

static int emit_kernel(qkc_program *p, qkc_ctx *ctx, const char *name, const char *stage,
                       const qkc_kernel_options *ko, int banner)
{
    qkc_kernel *k = NULL;
    if (qkc_kernel_get_ex(p, name, ko, &k) != QKC_OK)
        return cli_error("%s", qkc_errmsg(ctx));
    char *text = NULL;
    if (qkc_kernel_emit(k, stage, &text) != QKC_OK)
        return cli_error("%s", qkc_errmsg(ctx));
    if (banner)
        printf("%s ==== kernel %s (%s) ====\n", strcmp(stage, "llvm") == 0 || strcmp(stage, "asm") == 0 ? ";" : "//",
               name, stage);
    fputs(text, stdout);
    if (text[0] && text[strlen(text) - 1] != '\n')
        putchar('\n');
    free(text);
    return 0;
}

static const char *stage_names[] = {"ast", "kir", "tir", "llvm", "asm", "cuda", "ptx"};

static int known_stage(const char *s)
{
    for (size_t i = 0; i < sizeof stage_names / sizeof *stage_names; i++)
        if (strcmp(stage_names[i], s) == 0)
            return 1;
    return 0;
}

static int run_emit(const cli_cmd *cmd, const cli_args *a)
{
    const char *stage = cli_get(cmd, a, "stage"), *target = cli_get(cmd, a, "target");
    const char *kname = cli_get(cmd, a, "kernel");
    qkc_kernel_options ko = {.config = cli_get(cmd, a, "config")};
    if (cli_layout(cmd, a, &ko.any_layout) != 0)
        return 2;
    if (!stage)
        return cli_usage_error(cmd, "missing --stage (ast, kir, tir, llvm, asm, cuda, ptx)");
    if (!known_stage(stage))
        return cli_usage_error(cmd, "unknown stage '%s' (ast, kir, tir, llvm, asm, cuda, ptx)", stage);
    if (!target && is_gpu_stage(stage))
        target = "sm_90";
    qkc_ctx *ctx = NULL;
    qkc_program *p = NULL;
    int rc = cli_load(a->pos[0], target, 1, &ctx, &p);
    int n = rc == 0 ? qkc_program_nkernels(p) : 0;
    if (rc == 0 && kname)
        rc = emit_kernel(p, ctx, kname, stage, &ko, 0);
    for (int i = 0; rc == 0 && !kname && i < n; i++)
        rc = emit_kernel(p, ctx, qkc_program_kernel_name(p, i), stage, &ko, n > 1);
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
    return rc;
}

const cli_cmd cli_cmd_emit = {
    .name = "emit",
    .summary = "Print one compiler stage of a program's kernels.",
    .usage = "--stage=ast|kir|tir|llvm|asm|cuda|ptx FILE [--kernel NAME] [--target T] [--config TEXT]\n"
             "                [--layout own|any]",
    .details = "Stages: ast (parsed kernel), kir (Kernel IR), tir (tiled loop IR), llvm (optimized LLVM IR),\n"
               "asm (target assembly), cuda (CUDA C), ptx (PTX from NVRTC). llvm/asm need a CPU target;\n"
               "cuda/ptx use a GPU target (sm_90 unless --target says otherwise) and need no GPU.",
    .example = "qkc emit --stage=tir examples/q4_gemv.qk --kernel gemv",
    .opts = {{"stage", 's', "STAGE", "the stage to print (required)", NULL},
             {"kernel", 'k', "NAME", "only this kernel", "every kernel"},
             {"target", 't', "T", "host, x86-64-v3, x86-64-v4, aarch64[+dotprod][+sve], sm_80, sm_90", "host; sm_90 for cuda/ptx"},
             {"config", 'c', "TEXT", "explicit configuration, e.g. \"tile_par=4 repack=16\"", "the kernel's usual choice"},
             CLI_OPT_LAYOUT,
             {0}},
    .min_pos = 1,
    .max_pos = 1,
    .run = run_emit,
};

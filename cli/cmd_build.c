/* cmd_build.c — `qkc build FILE... -o OUT`: kernels compiled ahead of time
 * into a static archive (or one object with -c) plus a C header, for one
 * or several targets (several x86 ISAs: one version each, dispatched at
 * run time by libqkc_rt). The work is runtime/aot.c's; this file parses
 * options, loads the sources and names the outputs. */
#include "cli/cli.h"
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>

/* "dir/libmlp.a" -> "mlp": the file's stem without "lib", as an identifier. */
static void default_prefix(const char *out, char *buf, size_t n)
{
    const char *base = strrchr(out, '/');
    base = base ? base + 1 : out;
    if (strncmp(base, "lib", 3) == 0 && base[3] && base[3] != '.')
        base += 3;
    size_t j = 0;
    if (!((*base >= 'a' && *base <= 'z') || (*base >= 'A' && *base <= 'Z') || *base == '_'))
        buf[j++] = 'k';
    for (; *base && *base != '.' && j + 1 < n; base++)
        buf[j++] = (*base >= 'a' && *base <= 'z') || (*base >= 'A' && *base <= 'Z') || (*base >= '0' && *base <= '9')
                       ? *base
                       : '_';
    buf[j] = 0;
}

/* OUT with its extension replaced by ".h". */
static char *default_header(const char *out)
{
    const char *slash = strrchr(out, '/'), *dot = strrchr(out, '.');
    size_t n = dot && (!slash || dot > slash) ? (size_t)(dot - out) : strlen(out);
    char *h = malloc(n + 3);
    if (h) {
        memcpy(h, out, n);
        memcpy(h + n, ".h", 3);
    }
    return h;
}

/* "dir/mlp.qk" -> "libmlp.a" (or "mlp.o"). */
static char *default_output(const char *src, int object)
{
    const char *base = strrchr(src, '/');
    base = base ? base + 1 : src;
    size_t n = strcspn(base, ".");
    char *o = malloc(n + 8);
    if (o)
        snprintf(o, n + 8, object ? "%.*s.o" : "lib%.*s.a", (int)n, base);
    return o;
}

static int run_build(const cli_cmd *cmd, const cli_args *a)
{
    int object = cli_get(cmd, a, "c") != NULL;
    const char *out = cli_get(cmd, a, "output"), *hdr = cli_get(cmd, a, "header");
    const char *prefix = cli_get(cmd, a, "prefix"), *threads = cli_get(cmd, a, "threads");
    int64_t nthreads = 0;
    int any_layout = 0;
    if (cli_layout(cmd, a, &any_layout) != 0)
        return 2;
    if (threads && (cli_parse_i64(threads, &nthreads) != 0 || nthreads < 0 || nthreads > 4096))
        return cli_usage_error(cmd, "--threads wants a count, got '%s'", threads);
    char *out_owned = out ? NULL : default_output(a->pos[0], object);
    out = out ? out : out_owned;
    char *hdr_owned = hdr ? NULL : default_header(out);
    hdr = hdr ? hdr : hdr_owned;
    char pbuf[128];
    if (!prefix) {
        default_prefix(out, pbuf, sizeof pbuf);
        prefix = pbuf;
    }

    qkc_ctx *ctx = NULL;
    qkc_program *progs[CLI_MAX_POS] = {0};
    int rc = 0;
    for (int i = 0; rc == 0 && i < a->npos; i++) {
        if (i == 0) {
            rc = cli_load(a->pos[0], NULL, 0, &ctx, &progs[0]);
            continue;
        }
        qkc_status st = qkc_program_create_file(ctx, a->pos[i], &progs[i]);
        if (progs[i])
            fputs(qkc_program_diagnostics_text(progs[i]), stderr);
        rc = st == QKC_ERR_COMPILE ? 1 : st != QKC_OK ? cli_error("%s", qkc_errmsg(ctx)) : 0;
    }
    if (rc == 0) {
        rt_aot_opts o = {.nprograms = a->npos,
                         .programs = progs,
                         .kernels = cli_get(cmd, a, "kernel"),
                         .targets = cli_get(cmd, a, "target"),
                         .prefix = prefix,
                         .dims = cli_get(cmd, a, "dims"),
                         .threads = (int)nthreads,
                         .output = out,
                         .archive = !object,
                         .header = hdr,
                         .any_layout = any_layout};
        char *log = NULL;
        qkc_status st = rt_aot_build(ctx, &o, &log);
        if (st != QKC_OK)
            rc = cli_error("%s", qkc_errmsg(ctx));
        else {
            if (cli_get(cmd, a, "verbose") && log)
                fputs(log, stderr);
            printf("wrote %s and %s (prefix %s)\n", out, hdr, prefix);
        }
        free(log);
    }
    for (int i = 0; i < a->npos; i++)
        qkc_program_destroy(progs[i]);
    qkc_ctx_destroy(ctx);
    free(out_owned);
    free(hdr_owned);
    return rc;
}

const cli_cmd cli_cmd_build = {
    .name = "build",
    .summary = "Compile kernels ahead of time into an archive or object and a C header.",
    .usage = "FILE... [-o OUT] [-c] [--target LIST] [--header H] [--prefix P] [--kernel K,...] [--layout own|any]",
    .details =
        "Every kernel of the files (or those named by --kernel) is compiled for every target of --target:\n"
        "host, x86-64-v3 (AVX2), x86-64-v4 (AVX-512), aarch64, aarch64+dotprod, aarch64+sve, sm_80, sm_90.\n"
        "Several x86 targets give one version each, and the runtime picks the best one the CPU supports\n"
        "(QKC_AOT_ISA=NAME forces one). GPU targets embed PTX (NVRTC is needed at build time, not at run time).\n"
        "Tile configurations come from the tuning database for each target when it has records, else from\n"
        "the cost model for --dims. The header declares, per kernel, a typed function, packers for its\n"
        "quantized parameters and their sizes. With --layout any a CPU version may read a weight in the\n"
        "row-interleaved layout (as the JIT does for qkc_kernel_options.any_layout); the header then also\n"
        "declares <kernel>_<W>_repacked_bytes and _repack, which convert the packer's bytes on the machine\n"
        "that launches. Programs link the output with libqkc_rt only\n"
        "(-lqkc_rt -lpthread -ldl -lm): no LLVM, no libffi. See docs/embedding.md.",
    .example = "qkc build examples/q4_gemv.qk --target x86-64-v3,x86-64-v4 -o libq4.a",
    .opts = {{"output", 'o', "OUT", "the archive (or object with -c)", "lib<first file>.a"},
             {"c", 'c', NULL, "write one relocatable object instead of an archive", NULL},
             {"target", 't', "LIST", "comma-separated targets", "host"},
             {"header", 0, "H", "the generated header", "OUT with .h"},
             {"prefix", 'p', "P", "C prefix of every generated name", "OUT's stem without lib"},
             {"kernel", 'k', "K,...", "only these kernels", "every kernel"},
             {"dims", 'd', "N=V,...", "shape the configurations are chosen for", "4096 per dim"},
             {"threads", 'j', "N", "thread count for tuning-database lookups", "cores"},
             {"verbose", 'v', NULL, "print each version's configuration and its origin", NULL},
             {"layout", 0, "own|any",
              "any: a version may read a weight row-interleaved (a tuning record's or the model's choice); the "
              "header then declares <kernel>_<W>_repack, which converts the packer's bytes for it",
              "own: the format's bytes"},
             {0}},
    .min_pos = 1,
    .max_pos = CLI_MAX_POS,
    .run = run_build,
};

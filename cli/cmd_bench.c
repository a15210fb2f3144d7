/* cmd_bench.c — qkc bench (being written). */
#include "cli/cli.h"

static int run_bench(const cli_cmd *cmd, const cli_args *a)
{
    (void)cmd;
    (void)a;
    return cli_error("qkc bench: not built yet");
}

const cli_cmd cli_cmd_bench = {
    .name = "bench",
    .summary = "(being written)",
    .usage = "",
    .example = "",
    .opts = {{0}},
    .min_pos = 0,
    .max_pos = 64,
    .run = run_bench,
};

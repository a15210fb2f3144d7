/* cmd_tune.c — qkc tune (being written). */
#include "cli/cli.h"

static int run_tune(const cli_cmd *cmd, const cli_args *a)
{
    (void)cmd;
    (void)a;
    return cli_error("qkc tune: not built yet");
}

const cli_cmd cli_cmd_tune = {
    .name = "tune",
    .summary = "(being written)",
    .usage = "",
    .example = "",
    .opts = {{0}},
    .min_pos = 0,
    .max_pos = 64,
    .run = run_tune,
};

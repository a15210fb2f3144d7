/* cmd_probe.c — qkc probe (being written). */
#include "cli/cli.h"

static int run_probe(const cli_cmd *cmd, const cli_args *a)
{
    (void)cmd;
    (void)a;
    return cli_error("qkc probe: not built yet");
}

const cli_cmd cli_cmd_probe = {
    .name = "probe",
    .summary = "(being written)",
    .usage = "",
    .example = "",
    .opts = {{0}},
    .min_pos = 0,
    .max_pos = 64,
    .run = run_probe,
};

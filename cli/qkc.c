/* qkc.c — the qkc command-line driver: dispatches to one command.
 *   qkc check | emit | run | info | pack | unpack | probe | bench | tune
 * Each command is a cli_cmd table entry (cmd_*.c) with its options,
 * help text and example. */
#include "cli/cli.h"

#include <string.h>

#define QKC_COUNT_CMDS ((int)(sizeof commands / sizeof commands[0]))

static const cli_cmd *const commands[] = {
    &cli_cmd_check, &cli_cmd_emit, &cli_cmd_run, &cli_cmd_info, &cli_cmd_pack, &cli_cmd_unpack,
    &cli_cmd_probe, &cli_cmd_bench, &cli_cmd_tune, &cli_cmd_build,
};

static void top_help(FILE *f)
{
    fprintf(f, "usage: qkc COMMAND [options] FILE...\n\n"
               "qkc compiles quantized tensor kernels written in the .qk language.\n\ncommands:\n");
    for (int i = 0; i < QKC_COUNT_CMDS; i++)
        fprintf(f, "  %-8s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(f, "\n'qkc COMMAND --help' describes one command. 'qkc --version' prints the version.\n"
               "\nexample:\n  qkc run examples/q4_gemv.qk --kernel gemv --dims N=4096,K=4096\n");
}

static const cli_cmd *find_cmd(const char *name)
{
    for (int i = 0; i < QKC_COUNT_CMDS; i++)
        if (strcmp(commands[i]->name, name) == 0)
            return commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        top_help(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        const cli_cmd *c = argc > 2 ? find_cmd(argv[2]) : NULL;
        if (c)
            cli_help(c, stdout);
        else
            top_help(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("qkc %s\n", qkc_version());
        return 0;
    }
    const cli_cmd *cmd = find_cmd(argv[1]);
    if (!cmd) {
        fprintf(stderr, "qkc: unknown command '%s'\n\n", argv[1]);
        top_help(stderr);
        return 2;
    }
    cli_args a;
    int rc = cli_parse(cmd, argc - 2, argv + 2, &a);
    return rc >= 0 ? rc : cmd->run(cmd, &a);
}

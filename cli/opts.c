/* opts.c — a table-driven option parser for the qkc commands:
 *   --name=value | --name value | -x value | -xvalue | --flag | -f | --
 * and the --help text generated from the same table. */
#include "cli/cli.h"

#include <stdarg.h>
#include <string.h>

static int find_long(const cli_cmd *cmd, const char *name, size_t n)
{
    for (int i = 0; cmd->opts[i].name; i++)
        if (strlen(cmd->opts[i].name) == n && strncmp(cmd->opts[i].name, name, n) == 0)
            return i;
    return -1;
}

static int find_short(const cli_cmd *cmd, char c)
{
    for (int i = 0; cmd->opts[i].name; i++)
        if (cmd->opts[i].shrt == c)
            return i;
    return -1;
}

int cli_usage_error(const cli_cmd *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "qkc %s: ", cmd->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: qkc %s %s\nTry 'qkc %s --help' for more.\n", cmd->name, cmd->usage, cmd->name);
    return 2;
}

/* "--name[=value]" at argv[*i]. Returns -1 or an exit code. */
static int parse_long(const cli_cmd *cmd, int argc, char **argv, int *i, cli_args *out)
{
    const char *s = argv[*i] + 2;
    const char *eq = strchr(s, '=');
    size_t n = eq ? (size_t)(eq - s) : strlen(s);
    int o = find_long(cmd, s, n);
    if (o < 0)
        return cli_usage_error(cmd, "unknown option '--%.*s'", (int)n, s);
    if (!cmd->opts[o].metavar) {
        if (eq)
            return cli_usage_error(cmd, "option '--%s' takes no value", cmd->opts[o].name);
        out->val[o] = "1";
        return -1;
    }
    if (eq) {
        out->val[o] = eq + 1;
        return -1;
    }
    if (*i + 1 >= argc)
        return cli_usage_error(cmd, "option '--%s' needs a value (%s)", cmd->opts[o].name, cmd->opts[o].metavar);
    out->val[o] = argv[++*i];
    return -1;
}

/* "-x[value]" or a cluster of flags "-vq". */
static int parse_short(const cli_cmd *cmd, int argc, char **argv, int *i, cli_args *out)
{
    for (const char *p = argv[*i] + 1; *p; p++) {
        int o = find_short(cmd, *p);
        if (o < 0)
            return cli_usage_error(cmd, "unknown option '-%c'", *p);
        if (!cmd->opts[o].metavar) {
            out->val[o] = "1";
            continue;
        }
        if (p[1]) {
            out->val[o] = p + 1;
            return -1;
        }
        if (*i + 1 >= argc)
            return cli_usage_error(cmd, "option '-%c' needs a value (%s)", *p, cmd->opts[o].metavar);
        out->val[o] = argv[++*i];
        return -1;
    }
    return -1;
}

static int is_help(const char *s)
{
    return strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0;
}

int cli_parse(const cli_cmd *cmd, int argc, char **argv, cli_args *out)
{
    memset(out, 0, sizeof *out);
    int only_pos = 0;
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        int rc = -1;
        if (!only_pos && is_help(s)) {
            cli_help(cmd, stdout);
            return 0;
        } else if (!only_pos && strcmp(s, "--") == 0) {
            only_pos = 1;
        } else if (!only_pos && s[0] == '-' && s[1] == '-') {
            rc = parse_long(cmd, argc, argv, &i, out);
        } else if (!only_pos && s[0] == '-' && s[1]) {
            rc = parse_short(cmd, argc, argv, &i, out);
        } else if (out->npos < CLI_MAX_POS) {
            out->pos[out->npos++] = s;
        } else {
            return cli_usage_error(cmd, "too many arguments");
        }
        if (rc >= 0)
            return rc;
    }
    if (out->npos < cmd->min_pos)
        return cli_usage_error(cmd, "missing %s", cmd->min_pos == 1 ? "FILE" : "arguments");
    if (out->npos > cmd->max_pos)
        return cli_usage_error(cmd, "unexpected argument '%s'", out->pos[cmd->max_pos]);
    return -1;
}

const char *cli_get(const cli_cmd *cmd, const cli_args *a, const char *name)
{
    int o = find_long(cmd, name, strlen(name));
    return o < 0 ? NULL : a->val[o];
}

void cli_help(const cli_cmd *cmd, FILE *f)
{
    fprintf(f, "usage: qkc %s %s\n\n%s\n", cmd->name, cmd->usage, cmd->summary);
    if (cmd->details)
        fprintf(f, "\n%s\n", cmd->details);
    fprintf(f, "\noptions:\n");
    for (int i = 0; cmd->opts[i].name; i++) {
        const cli_opt *o = &cmd->opts[i];
        char left[64];
        snprintf(left, sizeof left, "%s%c%s--%s%s%s", o->shrt ? "-" : "", o->shrt ? o->shrt : ' ',
                 o->shrt ? ", " : "  ", o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
        fprintf(f, "  %-26s %s", o->shrt ? left : left + 1, o->help);
        if (o->def)
            fprintf(f, " (default: %s)", o->def);
        fprintf(f, "\n");
    }
    fprintf(f, "  %-26s %s\n", "-h, --help", "show this help");
    fprintf(f, "\nexample:\n  %s\n", cmd->example);
}

int cli_layout(const cli_cmd *cmd, const cli_args *a, int *any)
{
    const char *v = cli_get(cmd, a, "layout");
    *any = v && strcmp(v, "any") == 0;
    if (!v || *any || strcmp(v, "own") == 0)
        return 0;
    cli_usage_error(cmd, "--layout takes 'own' (the format's bytes) or 'any' (qkc may choose the row-interleaved "
                         "layout), got '%s'",
                    v);
    return -1;
}

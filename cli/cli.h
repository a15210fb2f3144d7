/* cli.h — the `qkc` command-line driver: one file per command group
 * (cmd_*.c), a small table-driven option parser (opts.c) and helpers
 * (util.c). Commands use the public API of include/qkc.h; `info` also
 * reads the program's formats through the runtime's internal header.
 *
 * Exit codes: 0 success, 1 failure (diagnostics, FAIL, I/O), 2 usage.
 *
 * Prefix: cli_. */
#ifndef QKC_CLI_H
#define QKC_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "qkc.h"

#define CLI_MAX_OPTS 32
#define CLI_MAX_POS 64

/* ---- opts.c ---- */
typedef struct cli_opt {
    const char *name;    /* long name without "--" */
    char shrt;           /* short letter or 0 */
    const char *metavar; /* NULL: a flag without a value */
    const char *help;
    const char *def;     /* default shown in --help; NULL: none */
} cli_opt;

typedef struct cli_args {
    const char *val[CLI_MAX_OPTS]; /* option values (flags: "1"), NULL if absent */
    const char *pos[CLI_MAX_POS];
    int npos;
} cli_args;

typedef struct cli_cmd {
    const char *name;
    const char *summary;
    const char *usage;   /* after "qkc NAME " */
    const char *details; /* paragraph for --help; may be NULL */
    const char *example;
    cli_opt opts[CLI_MAX_OPTS]; /* ends with {0} */
    int min_pos, max_pos;
    int (*run)(const struct cli_cmd *cmd, const cli_args *a);
} cli_cmd;

/* Parses argv (after the command name). Returns -1 when the arguments are
 * fine, else the exit code to use: 0 after printing --help, 2 after a
 * usage error (printed to stderr). */
int cli_parse(const cli_cmd *cmd, int argc, char **argv, cli_args *out);
void cli_help(const cli_cmd *cmd, FILE *f);
/* Option value by long name (NULL if absent). */
const char *cli_get(const cli_cmd *cmd, const cli_args *a, const char *name);
/* Prints "qkc CMD: msg" plus the usage line; returns 2. */
int cli_usage_error(const cli_cmd *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- util.c ---- */
/* splitmix64: a portable, seedable generator. */
typedef struct cli_rng {
    uint64_t s;
} cli_rng;
uint64_t cli_rng_next(cli_rng *r);
double cli_rng_uniform(cli_rng *r, double lo, double hi);

/* Strict integer parse of a whole string; 0 or -1. */
int cli_parse_i64(const char *s, int64_t *out);
int cli_parse_u64(const char *s, uint64_t *out);
/* Prints "qkc: error: msg" to stderr; returns 1. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Creates a context for target (NULL = host) and loads path into *prog,
 * printing diagnostics (warnings too) to stderr. 0 or an exit code. */
int cli_load(const char *path, const char *target, int threads, qkc_ctx **ctx, qkc_program **prog);
double cli_now(void); /* seconds, monotonic */
int cli_write_file(const char *path, const void *data, size_t n);
void *cli_read_file(const char *path, size_t *n);
size_t cli_dtype_size(qkc_dtype t);
const char *cli_dtype_name(qkc_dtype t);
/* Writes s as a JSON string literal (quotes and escapes included). */
void cli_json_str(FILE *f, const char *s);
/* 1 when f is a terminal (progress bars are drawn only then). */
int cli_isatty(FILE *f);

/* ---- commands ---- */
extern const cli_cmd cli_cmd_check, cli_cmd_info, cli_cmd_emit, cli_cmd_run, cli_cmd_pack, cli_cmd_unpack;
extern const cli_cmd cli_cmd_probe, cli_cmd_bench, cli_cmd_tune;

#endif

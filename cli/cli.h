/* cli.h — the `qkc` command-line driver: one file per command group
 * (cmd_*.c), a small table-driven option parser (opts.c) and helpers
 * (util.c). Commands use the public API of include/qkc.h; `info`, `tune`
 * and the packer of random weights (inputs.c) also read the program's
 * formats through the runtime's internal header.
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

/* The --layout option of run, bench, tune and emit (qkc_kernel_options.any_layout); build has its own text. */
#define CLI_OPT_LAYOUT                                                                                             \
    {"layout", 0, "own|any",                                                                                       \
     "any: the kernel may read its weights row-interleaved (a tuning record's or the model's choice; they are "  \
     "converted here), as a caller that converts them with qkc_kernel_repack gets",                             \
     "own: the format's bytes"}
/* --layout's value: *any = 0 for "own" or absent, 1 for "any". -1 when the
 * value is neither (usage error printed: exit with 2). */
int cli_layout(const cli_cmd *cmd, const cli_args *a, int *any);

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
void *cli_alloc(size_t n); /* 64-byte aligned (a tensor's data); free() frees it */
/* Sets of inputs of set_bytes a cold measurement rotates through (2..max):
 * the others, read between two uses of one, exceed 3 x l3 (0: 32 MiB)
 * and the probe's DRAM working set (256 MiB), so no part of a set is
 * still in a last-level cache when it comes round again, even one
 * larger than the target reports (a VM's vCPUs on two dies). */
int cli_cold_copies(double set_bytes, int64_t l3, int max);
int cli_write_file(const char *path, const void *data, size_t n);
void *cli_read_file(const char *path, size_t *n);
size_t cli_dtype_size(qkc_dtype t);
const char *cli_dtype_name(qkc_dtype t);
/* Writes s as a JSON string literal (quotes and escapes included). */
void cli_json_str(FILE *f, const char *s);
/* 1 when f is a terminal (progress bars are drawn only then). */
int cli_isatty(FILE *f);

/* ---- inputs.c: random inputs and comparison with the reference ---- */
/* What cli_make_input works on: the kernel's parameters (params then
 * results), their tensors and byte sizes, the dims (kernel order). */
typedef struct cli_inputs {
    qkc_ctx *ctx;
    qkc_program *p;
    const qkc_kernel *k;
    const qkc_param_info *info;
    const int64_t *dims;
    cli_rng *rng;
    qkc_tensor *args;
    size_t *bytes;
} cli_inputs;
/* Value of a declared dim text ("N", "H-2", "64") under dims; 0 or -1. */
int cli_eval_dim(const qkc_kernel *k, const int64_t *dims, const char *text, int64_t *out);
void cli_fill_dense(cli_rng *rng, qkc_dtype t, void *data, int64_t n);
/* Shape, buffer and contents of tensor i (results: 0xff bytes). A
 * codebook parameter must be made before the tensors packed with it.
 * 0, or an exit code after printing the error. */
int cli_make_input(const cli_inputs *in, int i);
int cli_dtype_is_int(qkc_dtype t);
/* Random weights of format (rows x cols) packed into dst (bytes long;
 * book: the codebook of a vector-codebook format, else NULL). tile_rows
 * = 0 packs every value; else a tile of tile_rows rows and tile_blocks
 * blocks (0: the whole width) is packed and repeated, rows cycling
 * through its rows and blocks through its blocks: every byte is a valid
 * code or scale, which the reference decodes like any other tensor (a
 * vector-codebook quantizer searches its whole codebook per group, hours
 * at 8192 x 8192). 0, or -1 with the reason in err. */
int cli_pack_random(qkc_program *p, const char *format, int64_t rows, int64_t cols, const void *book,
                    size_t book_bytes, int64_t tile_rows, int64_t tile_blocks, cli_rng *r, void *dst, size_t bytes,
                    char *err, size_t errsz);
/* Error of result y against ref (bytes of y): normwise relative for
 * floats, max abs for integers; *tol its tolerance, *maxerr (may be
 * NULL) the max abs error. */
double cli_result_error(const qkc_tensor *y, const void *ref, size_t bytes, double *maxerr, double *tol);

/* ---- commands ---- */
extern const cli_cmd cli_cmd_check, cli_cmd_info, cli_cmd_emit, cli_cmd_run, cli_cmd_pack, cli_cmd_unpack;
extern const cli_cmd cli_cmd_probe, cli_cmd_bench, cli_cmd_tune, cli_cmd_build;

#endif

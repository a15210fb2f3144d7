/* cmd_pack.c — `qkc pack` (f32 -> a format's packed bytes) and
 * `qkc unpack` (packed bytes -> f32), with a format defined in a .qk
 * file. Raw files are little-endian f32, rows x cols, row-major. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

typedef struct pack_job {
    const char *format, *in, *out, *book;
    int mse;
    int64_t rows, cols;
    uint64_t seed;
    qkc_ctx *ctx;
    qkc_program *p;
} pack_job;

static int parse_job(const cli_cmd *cmd, const cli_args *a, pack_job *j)
{
    memset(j, 0, sizeof *j);
    j->format = cli_get(cmd, a, "format");
    j->in = cli_get(cmd, a, "in");
    j->out = cli_get(cmd, a, "out");
    j->book = cli_get(cmd, a, "codebook");
    j->mse = cli_get(cmd, a, "mse") != NULL;
    const char *r = cli_get(cmd, a, "rows"), *c = cli_get(cmd, a, "cols"), *s = cli_get(cmd, a, "seed");
    if (!j->format || !r || !c || !j->out)
        return cli_usage_error(cmd, "--format, --rows, --cols and -o are required");
    if (cli_parse_i64(r, &j->rows) || j->rows < 0 || cli_parse_i64(c, &j->cols) || j->cols < 0)
        return cli_usage_error(cmd, "--rows and --cols need non-negative integers");
    j->seed = 1;
    if (s && cli_parse_u64(s, &j->seed))
        return cli_usage_error(cmd, "--seed needs a non-negative integer, got '%s'", s);
    return -1;
}

/* Reads n f32 from path, or makes random ones. */
static float *input_f32(const pack_job *j, int64_t n)
{
    if (!j->in) {
        float *v = malloc((size_t)(n ? n : 1) * sizeof *v);
        cli_rng rng = {j->seed};
        for (int64_t i = 0; v && i < n; i++)
            v[i] = (float)cli_rng_uniform(&rng, -1, 1);
        return v;
    }
    size_t len = 0;
    float *v = cli_read_file(j->in, &len);
    if (!v) {
        cli_error("cannot read '%s'", j->in);
        return NULL;
    }
    if (len != (size_t)n * sizeof(float)) {
        cli_error("'%s' has %zu bytes; %lld x %lld f32 need %lld", j->in, len, (long long)j->rows,
                  (long long)j->cols, (long long)(n * 4));
        free(v);
        return NULL;
    }
    return v;
}

/* Options of the quantizer; reads the codebook file when the format
 * needs one (its size is checked by the library). */
static int pack_options(pack_job *j, qkc_pack_options *o, void **book)
{
    memset(o, 0, sizeof *o);
    *book = NULL;
    o->mse = j->mse;
    size_t elems = 0;
    qkc_dtype dt;
    if (qkc_format_codebook(j->p, j->format, &elems, &dt) != QKC_OK)
        return cli_error("%s", qkc_errmsg(j->ctx));
    if (elems == 0) {
        if (j->book)
            return cli_error("format %s has no codebook; drop --codebook", j->format);
        return 0;
    }
    if (!j->book)
        return cli_error("format %s reads a codebook of %zu %s values: give it with --codebook FILE", j->format,
                         elems, dt == QKC_F32 ? "f32" : "f16");
    size_t len = 0;
    *book = cli_read_file(j->book, &len);
    if (!*book)
        return cli_error("cannot read '%s'", j->book);
    o->codebook = *book;
    o->codebook_bytes = len;
    return 0;
}

static int do_pack(pack_job *j)
{
    size_t bytes = 0;
    if (qkc_format_size(j->p, j->format, j->rows, j->cols, &bytes) != QKC_OK)
        return cli_error("%s", qkc_errmsg(j->ctx));
    qkc_pack_options o;
    void *book;
    if (pack_options(j, &o, &book))
        return 1;
    float *src = input_f32(j, j->rows * j->cols);
    void *dst = malloc(bytes ? bytes : 1);
    int rc = !src || !dst;
    if (!rc && qkc_pack_ex(j->p, j->format, src, j->rows, j->cols, dst, bytes, &o) != QKC_OK)
        rc = cli_error("%s", qkc_errmsg(j->ctx));
    free(book);
    if (!rc)
        rc = cli_write_file(j->out, dst, bytes);
    if (!rc)
        printf("packed %lld x %lld into %zu bytes of %s: %s\n", (long long)j->rows, (long long)j->cols, bytes,
               j->format, j->out);
    free(src);
    free(dst);
    return rc;
}

static int do_unpack(pack_job *j)
{
    size_t bytes = 0, len = 0;
    if (qkc_format_size(j->p, j->format, j->rows, j->cols, &bytes) != QKC_OK)
        return cli_error("%s", qkc_errmsg(j->ctx));
    qkc_pack_options o;
    void *book;
    if (pack_options(j, &o, &book))
        return 1;
    void *src = cli_read_file(j->in, &len);
    if (!src) {
        free(book);
        return cli_error("cannot read '%s'", j->in);
    }
    size_t n = (size_t)(j->rows * j->cols);
    float *dst = malloc((n ? n : 1) * sizeof *dst);
    int rc = !dst;
    if (!rc && len != bytes)
        rc = cli_error("'%s' has %zu bytes; %s needs %zu for %lld x %lld", j->in, len, j->format, bytes,
                       (long long)j->rows, (long long)j->cols);
    if (!rc && qkc_unpack_ex(j->p, j->format, src, len, j->rows, j->cols, dst, &o) != QKC_OK)
        rc = cli_error("%s", qkc_errmsg(j->ctx));
    free(book);
    if (!rc)
        rc = cli_write_file(j->out, dst, n * sizeof *dst);
    free(src);
    free(dst);
    return rc;
}

static int run_job(const cli_cmd *cmd, const cli_args *a, int pack)
{
    pack_job j;
    int rc = parse_job(cmd, a, &j);
    if (rc >= 0)
        return rc;
    if (!pack && !j.in)
        return cli_usage_error(cmd, "-i FILE (the packed input) is required");
    rc = cli_load(a->pos[0], NULL, 1, &j.ctx, &j.p);
    if (rc == 0)
        rc = pack ? do_pack(&j) : do_unpack(&j);
    qkc_program_destroy(j.p);
    qkc_ctx_destroy(j.ctx);
    return rc;
}

static int run_pack(const cli_cmd *cmd, const cli_args *a)
{
    return run_job(cmd, a, 1);
}

static int run_unpack(const cli_cmd *cmd, const cli_args *a)
{
    return run_job(cmd, a, 0);
}

#define PACK_COMMON_OPTS                                                                          \
    {"format", 'f', "NAME", "the format (defined in FILE)", NULL},                                \
        {"rows", 0, "R", "rows of the logical tensor", NULL},                                     \
        {"cols", 0, "C", "columns (the reduction axis, which blocks run along)", NULL},          \
        {"out", 'o', "OUT", "output file", NULL},                                                 \
        {"codebook", 0, "FILE", "raw codebook values (vector-codebook formats)", NULL}

const cli_cmd cli_cmd_pack = {
    .name = "pack",
    .summary = "Quantize f32 values into a format's packed bytes.",
    .usage = "FILE --format NAME --rows R --cols C [--in x.f32] -o out.bin",
    .details = "Input: raw little-endian f32, rows x cols, row-major (random in [-1, 1] without --in).\n"
               "Output: the format's byte layout (docs/formats.md). Round to nearest with absmax scales,\n"
               "N:M formats keep the N largest of every M, codebook formats pick the nearest codeword\n"
               "of --codebook (raw values, books x 2^bits x dim, of the format's codebook dtype).",
    .example = "qkc pack examples/q4_gemv.qk --format q4 --rows 64 --cols 256 -o w.bin",
    .opts = {PACK_COMMON_OPTS,
             {"in", 'i', "IN", "f32 input file", "random values"},
             {"seed", 0, "S", "seed of the random values", "1"},
             {"mse", 0, NULL, "search block scales minimising the squared error", "absmax scales"},
             {0}},
    .min_pos = 1,
    .max_pos = 1,
    .run = run_pack,
};

const cli_cmd cli_cmd_unpack = {
    .name = "unpack",
    .summary = "Decode a format's packed bytes into f32 values.",
    .usage = "FILE --format NAME --rows R --cols C -i in.bin -o out.f32",
    .details = "Output: raw little-endian f32, rows x cols, row-major.",
    .example = "qkc unpack examples/q4_gemv.qk --format q4 --rows 64 --cols 256 -i w.bin -o w.f32",
    .opts = {PACK_COMMON_OPTS, {"in", 'i', "IN", "packed input file (required)", NULL}, {0}},
    .min_pos = 1,
    .max_pos = 1,
    .run = run_unpack,
};

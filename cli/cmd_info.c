/* cmd_info.c — `qkc info`: what a program or a format is.
 *   qkc info FILE.qk          formats (with bits/weight) and kernels (C signatures)
 *   qkc info NAME             a standard-library format: DSL text, sizes,
 *   qkc info FILE.qk:NAME     fields, layout pieces, packed size of a shape
 *   qkc info --list           every standard-library format with bits/weight
 * The standard library is every *.qk file in the directories `import`
 * searches after the importing file's own: the standard formats
 * (qk_dsl_dir: an installed qkc's share/qkc/dsl, else the repo's dsl/),
 * then each directory of $QKC_DSL_PATH. Formats come from the runtime's
 * Kernel IR (runtime.h), already checked by qk_format_finish. */
#include "cli/cli.h"
#include "compiler/rowpack.h"
#include "compiler/tir_decode.h"
#include "runtime/device.h"
#include "runtime/runtime.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define INFO_MAX_FILES 64
#define INFO_MAX_FORMATS 512
#define INFO_MAX_DIMS 8

/* ---- the standard library ---- */

typedef struct info_lib {
    qkc_ctx *ctx;
    qkc_program *progs[INFO_MAX_FILES];
    int nprogs;
    const qk_format *fmts[INFO_MAX_FORMATS];
    int nfmts;
    int bad; /* a library file has errors (its diagnostics went to stderr) */
} info_lib;

static const qk_format *lib_find(const info_lib *L, const char *name)
{
    for (int i = 0; i < L->nfmts; i++)
        if (strcmp(L->fmts[i]->name, name) == 0)
            return L->fmts[i];
    return NULL;
}

/* Adds the formats of one compiled file (imports included); a name seen
 * before (an earlier directory, an import) keeps its first definition. */
static void lib_add_formats(info_lib *L, const kir_program *kp)
{
    for (int i = 0; kp && i < kp->nformats; i++)
        if (!lib_find(L, kp->formats[i]->name) && L->nfmts < INFO_MAX_FORMATS)
            L->fmts[L->nfmts++] = kp->formats[i];
}

static void lib_load_file(info_lib *L, const char *path)
{
    if (L->nprogs == INFO_MAX_FILES)
        return;
    qkc_program *p = NULL;
    qkc_status st = qkc_program_create_file(L->ctx, path, &p);
    if (p)
        fputs(qkc_program_diagnostics_text(p), stderr);
    if (st != QKC_OK) {
        if (st != QKC_ERR_COMPILE)
            cli_error("%s", qkc_errmsg(L->ctx));
        L->bad = 1;
        qkc_program_destroy(p);
        return;
    }
    L->progs[L->nprogs++] = p;
    lib_add_formats(L, rt_program_kir(p));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_qk_name(const char *s)
{
    size_t n = strlen(s);
    return n > 3 && strcmp(s + n - 3, ".qk") == 0 && s[0] != '.';
}

/* Every *.qk of one directory, in name order. */
static void lib_load_dir(info_lib *L, const char *dir, size_t dirlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%.*s", (int)dirlen, dir);
    DIR *d = dirlen ? opendir(path) : NULL;
    if (!d)
        return;
    char *names[INFO_MAX_FILES];
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL && n < INFO_MAX_FILES;)
        if (is_qk_name(e->d_name))
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_str);
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%.*s/%s", (int)dirlen, dir, names[i]);
        lib_load_file(L, path);
        free(names[i]);
    }
}

/* Each directory of a ':'-separated list. */
static void lib_load_dirs(info_lib *L, const char *list)
{
    while (list && *list) {
        size_t n = strcspn(list, ":");
        lib_load_dir(L, list, n);
        list += n + (list[n] == ':');
    }
}

static int lib_open(info_lib *L)
{
    memset(L, 0, sizeof *L);
    if (qkc_ctx_create(NULL, &L->ctx) != QKC_OK)
        return cli_error("cannot create a context");
    char dsl[4096];
    lib_load_dirs(L, qk_dsl_dir(dsl, sizeof dsl));
    lib_load_dirs(L, getenv("QKC_DSL_PATH"));
    return 0;
}

static void lib_close(info_lib *L)
{
    for (int i = 0; i < L->nprogs; i++)
        qkc_program_destroy(L->progs[i]);
    qkc_ctx_destroy(L->ctx);
}

/* The file name of a format's definition, without its directory. */
static const char *base_name(const char *path)
{
    const char *s = path ? strrchr(path, '/') : NULL;
    return s ? s + 1 : path ? path : "?";
}

/* ---- one format in detail ---- */

static const char *const field_names[] = {
#define INFO_FIELD_NAME(id, name) name,
    QK_FIELDS(INFO_FIELD_NAME)
#undef INFO_FIELD_NAME
};
_Static_assert(sizeof field_names / sizeof field_names[0] == QK_FIELD_COUNT, "field name table");

/* The element code as the DSL writes it (without table values). */
static const char *code_text(const qk_format *f, char *buf, size_t n)
{
    switch (f->code) {
    case QK_CODE_SINT: snprintf(buf, n, "int%d", f->bits); break;
    case QK_CODE_UINT: snprintf(buf, n, "uint%d", f->bits); break;
    case QK_CODE_OFFSET: snprintf(buf, n, "uint%d offset %d", f->bits, f->offset); break;
    case QK_CODE_TERNARY: snprintf(buf, n, "ternary"); break;
    case QK_CODE_BINARY: snprintf(buf, n, "binary"); break;
    case QK_CODE_MINIFLOAT: snprintf(buf, n, "e%dm%d", f->ebits, f->mbits); break;
    case QK_CODE_TABLE: snprintf(buf, n, "table of %d", 1 << f->bits); break;
    case QK_CODE_VQ: snprintf(buf, n, "vq%d index", f->bits); break;
    }
    return buf;
}

/* What the items of a field are: a number type or the element code. */
static const char *field_type(const qk_format *f, int fl, char *buf, size_t n)
{
    switch (fl) {
    case QK_FIELD_SCALE: return qk_num_name(f->scale_num, 0);
    case QK_FIELD_ZERO: return qk_num_name(f->zero_num, 0);
    case QK_FIELD_MIN: return qk_num_name(f->min_num, 0);
    case QK_FIELD_SUBSCALE: return qk_num_name(f->sub_num, f->sub_bits);
    case QK_FIELD_SUBMIN: return qk_num_name(f->submin_num, f->submin_bits);
    case QK_FIELD_CODES: return code_text(f, buf, n);
    case QK_FIELD_INDEX: return "position in its group";
    case QK_FIELD_SIGNS: return "sign bits";
    }
    return "?";
}

static void print_fields(const qk_format *f)
{
    printf("fields (per block):\n  %-9s %6s %5s %6s  %s\n", "field", "items", "bits", "total", "type");
    for (int fl = 0; fl < QK_FIELD_COUNT; fl++) {
        if (!f->items[fl])
            continue;
        char buf[48];
        printf("  %-9s %6d %5d %6d  %s\n", field_names[fl], f->items[fl], f->width[fl], f->items[fl] * f->width[fl],
               field_type(f, fl, buf, sizeof buf));
    }
}

static void print_piece(int i, const qk_piece *p)
{
    char place[32], items[32], bits[32];
    if (p->place == QK_PLACE_STREAM)
        snprintf(place, sizeof place, "stream");
    else
        snprintf(place, sizeof place, "%s %d", p->place == QK_PLACE_BASE3 ? "base3" : "interleave", p->group);
    snprintf(items, sizeof items, "%d..%d", p->first, p->first + p->count);
    snprintf(bits, sizeof bits, "%d..%d", p->lo, p->lo + p->width);
    const char *fl = p->field >= 0 && p->field < QK_FIELD_COUNT ? field_names[p->field] : "?";
    printf("  %5d  %-9s %-9s %-6s %-14s %5d %5d\n", i, fl, items, bits, place, p->byte, p->shift);
}

static void print_layout(const qk_format *f)
{
    printf("layout (%s): each piece places items [a..b) of a field, value bits [lo..hi) of each,\n"
           "at a byte (and bit shift) of the block\n",
           f->explicit_layout ? "explicit" : "canonical");
    printf("  %5s  %-9s %-9s %-6s %-14s %5s %5s\n", "piece", "field", "items", "bits", "placement", "byte", "shift");
    for (int i = 0; i < f->npieces; i++)
        print_piece(i, &f->pieces[i]);
}

/* "N=4096,K=4096": the last dim is the block axis, the others are rows. */
static int parse_shape(const char *spec, int64_t *rows, int64_t *k, char *text, size_t textsz)
{
    int64_t dims[INFO_MAX_DIMS];
    int n = 0;
    for (const char *p = spec; *p;) {
        size_t item = strcspn(p, ","), eq = strcspn(p, "=");
        char num[32];
        if (eq >= item || eq == 0 || item - eq - 1 >= sizeof num || n == INFO_MAX_DIMS)
            return cli_error("--dims: expected NAME=VALUE,... (at most %d), got '%s'", INFO_MAX_DIMS, spec);
        snprintf(num, sizeof num, "%.*s", (int)(item - eq - 1), p + eq + 1);
        if (cli_parse_i64(num, &dims[n]) != 0 || dims[n] < 1 || dims[n] > ((int64_t)1 << 40))
            return cli_error("--dims: %.*s must be an integer in 1..2^40, got '%s'", (int)eq, p, num);
        n++;
        p += item + (p[item] == ',');
    }
    if (n == 0)
        return cli_error("--dims: expected NAME=VALUE,..., got '%s'", spec);
    *rows = 1;
    for (int i = 0; i + 1 < n; i++)
        *rows *= dims[i];
    *k = dims[n - 1];
    snprintf(text, textsz, "%s", spec);
    return 0;
}

/* The row-interleaved layout (configuration repack=R): whether integer-
 * dot kernels read it (with the integer image's bytes a code) and its
 * size where it grows, and whether f32 work does (the f32 form). */
static void print_rowpack(const qk_format *f, int64_t rows, int64_t k)
{
    char why[256];
    qk_rowpack rp;
    tdec_image img;
    if (qk_rowpack_f32(f, 4, &rp, why, sizeof why))
        printf("row-interleaved layout, f32 work (-c repack=R, x f32): the format's size; a shift and a "
               "lookup of %d f32 values decode one code of R rows\n",
               1 << rp.parts[0].w);
    else
        printf("row-interleaved layout, f32 work (-c repack=R, x f32): none: %s\n", why);
    int sgn = !tdec_int_image(f, 256, TDEC_PLANES, &img);
    if (sgn && !tdec_int_image_sgn(f, TDEC_PLANES, &img)) {
        printf("row-interleaved layout (-c repack=R): none: no integer image, so no integer-dot kernel reads it\n");
        return;
    }
    printf("integer image: %d byte%s a code (one integer dot product each)\n", img.planes,
           img.planes > 1 ? "s" : "");
    if (!qk_rowpack_check(f, 4, &rp, why, sizeof why)) {
        printf("row-interleaved layout (-c repack=R): none: %s\n", why);
        return;
    }
    int64_t r16 = (rows + 15) / 16 * 16, own = qk_format_size(f, r16, k), lay = qk_rowpack_size(f, 16, r16, k);
    printf("row-interleaved layout (-c repack=R, integer-dot kernels): ");
    if (lay == own)
        printf("the format's size (rows a multiple of R)%s\n",
               sgn ? "; sign-magnitude codes: read with repack=16 on AVX-512 VBMI, times x quantize()d in the "
                     "kernel to int8 with an e8m0 block scale (the sign negates x's byte, and such x never holds -128)"
                   : "");
    else
        printf("%lld bytes for %lld rows, %.4g bits/weight (%s; the format's own: %lld)\n", (long long)lay,
               (long long)r16, qk_format_bits_per_weight(f) * (double)lay / (double)own,
               rp.pruned >= 0 ? "N:M codes stored densely" : "base-3 digits as 2-bit codes", (long long)own);
}

static void print_size(const qk_format *f, const char *shape, int64_t rows, int64_t k)
{
    int64_t blocks = (k + f->block - 1) / f->block, total = qk_format_size(f, rows, k);
    printf("packed size of [%s] (last dim = block axis): %lld rows x ", shape, (long long)rows);
    if (f->row_header_bytes)
        printf("(%d + %lld blocks x %d bytes)", f->row_header_bytes, (long long)blocks, f->block_bytes);
    else
        printf("%lld blocks x %d bytes", (long long)blocks, f->block_bytes);
    if (f->tensor_header_bytes)
        printf(" + %d", f->tensor_header_bytes);
    printf(" = %lld bytes", (long long)total);
    if (total >= 1 << 20)
        printf(" (%.2f MiB)", (double)total / (1024.0 * 1024.0));
    printf("\n");
}

static void print_codebook(const qk_format *f)
{
    int64_t n = qk_format_codebook_elems(f);
    if (!n)
        return;
    int esz = f->vq_dtype == QK_DT_F32 ? 4 : 2;
    char books[16] = "";
    if (f->vq_books > 1)
        snprintf(books, sizeof books, "%d, ", f->vq_books);
    printf("codebook (a kernel parameter): [%s%d, %d] %s = %lld elements, %lld bytes\n", books, 1 << f->bits,
           f->vq_dim, esz == 4 ? "f32" : "f16", (long long)n, (long long)n * esz);
    if (f->vq_books > 1)
        printf("  shape: [books, 2^bits, dim]\n");
}

static int print_format(const qk_format *f, const char *dims)
{
    int64_t rows = 0, k = 0;
    char shape[256];
    if (parse_shape(dims, &rows, &k, shape, sizeof shape))
        return 1;
    qk_buf b = {0};
    qk_format_print(f, &b);
    printf("%s\n\n", b.s ? b.s : f->name);
    qk_buf_free(&b);
    printf("defined at %s:%d\n", f->loc.file ? f->loc.file : "?", f->loc.line);
    printf("bits/weight: %g (tensor and row headers not counted)\n", qk_format_bits_per_weight(f));
    printf("block: %d elements, %d bytes; row header %d bytes; tensor header %d bytes\n", f->block, f->block_bytes,
           f->row_header_bytes, f->tensor_header_bytes);
    print_fields(f);
    print_layout(f);
    print_codebook(f);
    print_size(f, shape, rows, k);
    print_rowpack(f, rows, k);
    return 0;
}

/* ---- the command ---- */

static void print_lib_names(const info_lib *L, FILE *out)
{
    for (int i = 0; i < L->nfmts; i++)
        fprintf(out, "%s%s", i ? ", " : "", L->fmts[i]->name);
    fprintf(out, "\n");
}

static int run_list(info_lib *L)
{
    printf("%-14s %11s %6s %6s  %s\n", "format", "bits/weight", "block", "bytes", "file");
    for (int i = 0; i < L->nfmts; i++) {
        const qk_format *f = L->fmts[i];
        printf("%-14s %11g %6d %6d  %s\n", f->name, qk_format_bits_per_weight(f), f->block, f->block_bytes,
               base_name(f->loc.file));
    }
    return L->bad;
}

static int run_lib_format(info_lib *L, const char *name, const char *dims)
{
    const qk_format *f = lib_find(L, name);
    if (f)
        return print_format(f, dims);
    cli_error("unknown format '%s' (not a file, not in the standard library)", name);
    fprintf(stderr, "library formats: ");
    if (L->nfmts)
        print_lib_names(L, stderr);
    else {
        char dsl[4096];
        fprintf(stderr, "none found (searched '%s' and $QKC_DSL_PATH)\n", qk_dsl_dir(dsl, sizeof dsl));
    }
    return 1;
}

/* FILE.qk:NAME */
static int run_file_format(const char *arg, const char *colon, const char *dims)
{
    char path[4096];
    snprintf(path, sizeof path, "%.*s", (int)(colon - arg), arg);
    qkc_ctx *ctx = NULL;
    qkc_program *p = NULL;
    int rc = cli_load(path, NULL, 0, &ctx, &p);
    const kir_program *kp = rc == 0 ? rt_program_kir(p) : NULL;
    const qk_format *f = kp ? kir_find_format(kp, colon + 1) : NULL;
    if (f) {
        rc = print_format(f, dims);
    } else if (rc == 0) {
        rc = cli_error("no format '%s' in %s (it has:%s)", colon + 1, path, kp && kp->nformats ? "" : " none");
        for (int i = 0; kp && i < kp->nformats; i++)
            fprintf(stderr, "%s %s", i ? "," : " ", kp->formats[i]->name);
        if (kp && kp->nformats)
            fprintf(stderr, "\n");
    }
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
    return rc;
}

static void print_formats(const qkc_program *p)
{
    const kir_program *kp = rt_program_kir(p);
    printf("formats (%d):\n", kp ? kp->nformats : 0);
    for (int i = 0; kp && i < kp->nformats; i++) {
        qk_buf b = {0};
        qk_format_print(kp->formats[i], &b);
        printf("  %s\n", b.s ? b.s : kp->formats[i]->name);
        qk_buf_free(&b);
    }
}

static int print_kernels(qkc_program *p, qkc_ctx *ctx)
{
    int n = qkc_program_nkernels(p), bad = 0;
    printf("kernels (%d):\n", n);
    for (int i = 0; i < n; i++) {
        qkc_kernel *k = NULL;
        const char *name = qkc_program_kernel_name(p, i);
        if (qkc_kernel_get(p, name, &k) != QKC_OK) {
            printf("  %s: cannot compile: %s\n", name, qkc_errmsg(ctx));
            bad = 1;
            continue;
        }
        printf("  %s;\n", qkc_kernel_c_signature(k));
    }
    return bad;
}

/* FILE.qk: the program's formats and kernels. */
static int run_program(const char *path, const char *target)
{
    qkc_ctx *ctx = NULL;
    qkc_program *p = NULL;
    int rc = cli_load(path, target, 0, &ctx, &p);
    if (rc == 0) {
        printf("%s (target %s)\n", path, qkc_ctx_target(ctx));
        print_formats(p);
        rc = print_kernels(p, ctx);
    }
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
    return rc;
}

static int is_file(const char *s)
{
    struct stat st;
    return stat(s, &st) == 0 && S_ISREG(st.st_mode);
}

/* The ':' of "FILE.qk:NAME", or NULL. */
static const char *file_colon(const char *s)
{
    const char *c = strrchr(s, ':');
    return c && c - s > 3 && strncmp(c - 3, ".qk", 3) == 0 && c[1] ? c : NULL;
}

static int run_library(const char *name, int list, const char *dims)
{
    info_lib L;
    int rc = lib_open(&L);
    if (rc == 0)
        rc = list ? run_list(&L) : run_lib_format(&L, name, dims);
    lib_close(&L);
    return rc;
}

/* --targets: every preset as a context sees it (a GPU target with the
 * device's figures when this machine has a matching device). */
static int run_targets(void)
{
    for (int i = 0; qk_target_presets[i]; i++) {
        qkc_ctx_options o = {.target = qk_target_presets[i], .threads = 1, .tuning_db = ""};
        qkc_ctx *ctx = NULL;
        if (qkc_ctx_create(&o, &ctx) != QKC_OK)
            return cli_error("cannot create a context for target %s", qk_target_presets[i]);
        qk_target t;
        qk_device_target(ctx, &t);
        qkc_ctx_destroy(ctx);
        qk_buf b = {0};
        qk_target_print(&t, &b);
        fputs(b.s ? b.s : "", stdout);
        qk_buf_free(&b);
    }
    return 0;
}

static int run_info(const cli_cmd *cmd, const cli_args *a)
{
    int list = cli_get(cmd, a, "list") != NULL;
    if (cli_get(cmd, a, "targets")) {
        if (list || a->npos)
            return cli_usage_error(cmd, "--targets takes no FILE, FORMAT or --list");
        return run_targets();
    }
    const char *dims = cli_get(cmd, a, "dims");
    if (list != (a->npos == 0))
        return cli_usage_error(cmd, list ? "--list takes no FILE or FORMAT" : "missing FILE or FORMAT");
    if (list)
        return run_library(NULL, 1, NULL);
    const char *arg = a->pos[0], *colon = file_colon(arg);
    if (colon)
        return run_file_format(arg, colon, dims ? dims : "N=4096,K=4096");
    if (is_qk_name(base_name(arg)) || is_file(arg))
        return run_program(arg, cli_get(cmd, a, "target"));
    return run_library(arg, 0, dims ? dims : "N=4096,K=4096");
}

const cli_cmd cli_cmd_info = {
    .name = "info",
    .summary = "Describe a format (sizes, fields, byte layout) or a program (formats and kernel signatures).",
    .usage = "FILE.qk [--target T] | FORMAT [--dims D=V,...] | FILE.qk:FORMAT [--dims D=V,...] | --list | --targets",
    .details = "qkc info FILE.qk lists the program's formats (with bits/weight) and every kernel's C signature.\n"
               "qkc info FORMAT describes a standard-library format (dsl/*.qk, e.g. q4_K, nvfp4, aqlm_2x8):\n"
               "its DSL text, bits/weight, block bytes, fields, the layout pieces (which bits of which items\n"
               "sit at which byte of a block), the packed size of an example tensor (--dims, last dim =\n"
               "the block axis), whether f32 work reads it row-interleaved (-c repack=R: the f32 form),\n"
               "its integer image's bytes a code, and its row-interleaved layout for integer-dot kernels:\n"
               "the format's size, a larger one (base-3 and N:M codes), or none and why. FILE.qk:FORMAT does\n"
               "the same for a format of a file (or one it imports).\n"
               "qkc info --list lists every standard-library format with bits/weight, block size and bytes.\n"
               "The standard library is every .qk file of the installed dsl/ directory, then of each\n"
               "directory of $QKC_DSL_PATH. Exit status 1 for an unknown format or a file with errors.\n"
               "qkc info --targets describes every target preset (aarch64 stands for its +dotprod/+sve\n"
               "variants); a GPU target shows the device's own figures (read from the driver) when this\n"
               "machine has a device of that compute capability, else the preset's.",
    .example = "qkc info q4_K --dims N=4096,K=11008",
    .opts = {{"target", 't', "T", "target the signatures are for: host, x86-64-v3, x86-64-v4, sm_80, sm_90",
              "host"},
             {"dims", 'd', "D=V,...", "shape of the example tensor for the packed size (last dim = block axis)",
              "N=4096,K=4096"},
             {"list", 'l', NULL, "list every standard-library format", NULL},
             {"targets", 0, NULL, "describe every target preset (GPUs: the device's figures when present)", NULL},
             {0}},
    .min_pos = 0,
    .max_pos = 1,
    .run = run_info,
};

/* aot.c — ahead-of-time builds (`qkc build`): the selected kernels of
 * parsed programs, lowered for every requested target (configuration from
 * the tuning database for that target's fingerprint, else the schedule or
 * the cost model on the target's geometry), handed to the CPU backend's
 * aot_object hook as one unit, written as an object or a static archive,
 * with a C header declaring the descriptors and typed wrappers over
 * libqkc_rt (include/qkc_aot.h).
 *
 * GPU versions are compiled to PTX here through the GPU backend (NVRTC at
 * build time, no device needed) and embedded as data by the CPU backend. */
#include "runtime/runtime.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define AOT_MAX_TARGETS 8

typedef struct aot_build {
    qkc_ctx *ctx;
    const rt_aot_opts *o;
    qk_arena *arena;
    int ntargets;
    qk_target targets[AOT_MAX_TARGETS];
    int nkernels, capkernels;
    qk_aot_kernel *kernels;
    qk_buf log;
} aot_build;

/* ---- targets ---- */

static int is_arm(const qk_target *t)
{
    return t->kind == QK_TARGET_CPU && (t->features & QK_FEAT_NEON);
}

static int has_target(const aot_build *b, const char *name)
{
    for (int i = 0; i < b->ntargets; i++)
        if (strcmp(b->targets[i].name, name) == 0)
            return 1;
    return 0;
}

static qkc_status parse_targets(aot_build *b)
{
    const char *list = b->o->targets && b->o->targets[0] ? b->o->targets : "host";
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(n < 63 ? n : 63), p);
        p += n + (p[n] == ',');
        if (!name[0] || has_target(b, name))
            continue;
        if (b->ntargets == AOT_MAX_TARGETS)
            return rt_fail(b->ctx, QKC_ERR_INVALID_ARG, "at most %d targets in one build", AOT_MAX_TARGETS);
        qk_target *t = &b->targets[b->ntargets];
        if (strcmp(name, "host") == 0)
            qk_target_host(t);
        else if (qk_target_named(name, t) != 0)
            return rt_fail(b->ctx, QKC_ERR_TARGET,
                           "unknown target '%s' (host, x86-64-v3, x86-64-v4, aarch64, aarch64+dotprod, "
                           "aarch64+sve, sm_80, sm_90)",
                           name);
        b->ntargets++;
    }
    int arm = -1;
    for (int i = 0; i < b->ntargets; i++) {
        if (b->targets[i].kind != QK_TARGET_CPU)
            continue;
        if (arm >= 0 && arm != is_arm(&b->targets[i]))
            return rt_fail(b->ctx, QKC_ERR_TARGET,
                           "targets '%s' and '%s' are different architectures: one object holds one (build them "
                           "separately)",
                           b->targets[0].name, b->targets[i].name);
        arm = is_arm(&b->targets[i]);
    }
    return QKC_OK;
}

/* Dispatch order: GPU versions first (used where a device is present),
 * then CPU versions from the widest vectors and most features down. */
static int better(const qk_target *a, const qk_target *b)
{
    if (a->kind != b->kind)
        return a->kind == QK_TARGET_GPU;
    if (a->vector_bits != b->vector_bits)
        return a->vector_bits > b->vector_bits;
    return __builtin_popcount(a->features) > __builtin_popcount(b->features);
}

/* ---- kernels ---- */

static int selected(const char *list, const char *name)
{
    if (!list || !list[0])
        return 1;
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        size_t m = strcspn(p, ",");
        if (m == n && strncmp(p, name, n) == 0)
            return 1;
        p += m + (p[m] == ',');
    }
    return 0;
}

/* PTX of f through the GPU backend, its entry name and block size. */
static qkc_status gpu_code(aot_build *b, const kir_kernel *k, const qk_target *t, qk_aot_variant *v)
{
    char err[2048] = "";
    void *state = NULL;
    qk_buf ptx = {0};
    int rc = qk_backend_cuda.create(t, &state, err, sizeof err);
    if (rc == 0)
        rc = qk_backend_cuda.emit(state, v->f, QK_EMIT_PTX, &ptx, err, sizeof err);
    if (state)
        qk_backend_cuda.destroy(state);
    if (rc != 0) {
        qk_buf_free(&ptx);
        return rt_fail(b->ctx, QKC_ERR_TARGET, "kernel '%s' for %s: %s", k->name, t->name, err);
    }
    v->gpu_code = qk_strdup(b->arena, ptx.s);
    qk_buf_free(&ptx);
    const char *e = strstr(v->gpu_code, ".entry ");
    const char *m = strstr(v->gpu_code, ".maxntid ");
    if (!e || !m)
        return rt_fail(b->ctx, QKC_ERR_INTERNAL, "kernel '%s': no .entry/.maxntid in the PTX", k->name);
    e += 7;
    v->gpu_symbol = qk_strndup(b->arena, e, strcspn(e, "( \n"));
    v->gpu_block = atoi(m + 9);
    return QKC_OK;
}

static qkc_status add_version(aot_build *b, const kir_kernel *k, const qk_target *t, qk_aot_variant *v)
{
    qkc_kernel_options ko = {.dims = b->o->dims, .threads = b->o->threads, .any_layout = b->o->any_layout};
    tir_config cfg;
    char *origin = NULL, err[2048] = "";
    qkc_status st = rt_choose_config(b->ctx, k, t, &ko, &cfg, &origin);
    if (st != QKC_OK)
        return st;
    v->target = t;
    v->origin = qk_strdup(b->arena, origin);
    free(origin);
    tir_func *f = tir_build(b->arena, k, t, &cfg, err, sizeof err);
    if (!f)
        return rt_fail(b->ctx, QKC_ERR_UNSUPPORTED, "kernel '%s' for %s: cannot lower to the tiled IR: %s", k->name,
                       t->name, err);
    if (tir_verify(f, err, sizeof err) != 0)
        return rt_fail(b->ctx, QKC_ERR_INTERNAL, "kernel '%s' for %s: tiled IR failed verification: %s", k->name,
                       t->name, err);
    v->f = f;
    char text[512];
    tir_config_print(&f->cfg, text, sizeof text);
    v->config = qk_strdup(b->arena, text);
    qk_buf_printf(&b->log, "%s %s: %s (%s)\n", k->name, t->name, v->config, v->origin);
    return t->kind == QK_TARGET_GPU ? gpu_code(b, k, t, v) : QKC_OK;
}

static qkc_status add_kernel(aot_build *b, const kir_kernel *k)
{
    for (int i = 0; i < b->nkernels; i++)
        if (strcmp(b->kernels[i].k->name, k->name) == 0)
            return rt_fail(b->ctx, QKC_ERR_INVALID_ARG,
                           "two kernels named '%s' in one build (select one with --kernel or rename it)", k->name);
    if (b->nkernels == b->capkernels) {
        b->capkernels = b->capkernels ? 2 * b->capkernels : 8;
        b->kernels = qk_xrealloc(b->kernels, (size_t)b->capkernels * sizeof *b->kernels);
    }
    qk_aot_kernel *ak = &b->kernels[b->nkernels++];
    memset(ak, 0, sizeof *ak);
    ak->k = k;
    ak->symbol = qk_asprintf(b->arena, "%s_%s", b->o->prefix, k->name);
    qk_buf *img = qk_alloc(b->arena, sizeof(qk_buf) * (size_t)(k->ntensors + 1));
    ak->format_images = img;
    for (int i = 0; i < k->ntensors; i++)
        if (k->tensors[i].fmt)
            qk_format_serialize(k->tensors[i].fmt, &img[i]);
    int order[AOT_MAX_TARGETS];
    for (int i = 0; i < b->ntargets; i++) { /* insertion sort, best first */
        int j = i;
        while (j > 0 && better(&b->targets[i], &b->targets[order[j - 1]])) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    qk_aot_variant *vs = qk_alloc(b->arena, sizeof *vs * (size_t)b->ntargets);
    ak->variants = vs;
    for (int i = 0; i < b->ntargets; i++) {
        qkc_status st = add_version(b, k, &b->targets[order[i]], &vs[i]);
        if (st != QKC_OK)
            return st;
        ak->nvariants++;
    }
    return QKC_OK;
}

static qkc_status collect(aot_build *b)
{
    for (int p = 0; p < b->o->nprograms; p++) {
        const kir_program *kp = rt_program_kir(b->o->programs[p]);
        for (int i = 0; kp && i < kp->nkernels; i++) {
            if (!selected(b->o->kernels, kp->kernels[i]->name))
                continue;
            qkc_status st = add_kernel(b, kp->kernels[i]);
            if (st != QKC_OK)
                return st;
        }
    }
    if (b->nkernels == 0 && !b->o->kernels)
        return rt_fail(b->ctx, QKC_ERR_NOT_FOUND, "the sources define no kernel");
    if (b->o->kernels) /* every named kernel must exist */
        for (const char *p = b->o->kernels; *p;) {
            size_t m = strcspn(p, ",");
            int found = 0;
            for (int i = 0; i < b->nkernels; i++)
                found |= strlen(b->kernels[i].k->name) == m && strncmp(b->kernels[i].k->name, p, m) == 0;
            if (!found && m)
                return rt_fail(b->ctx, QKC_ERR_NOT_FOUND, "no kernel named '%.*s' in the sources", (int)m, p);
            p += m + (p[m] == ',');
        }
    return QKC_OK;
}

/* ---- files ---- */

static qkc_status write_file(aot_build *b, const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return rt_fail(b->ctx, QKC_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    int ok = fwrite(data, 1, n, f) == n;
    ok &= fclose(f) == 0;
    if (!ok) {
        remove(path);
        return rt_fail(b->ctx, QKC_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    }
    return QKC_OK;
}

static void ar_header(qk_buf *out, const char *name, size_t size)
{
    char h[61];
    snprintf(h, sizeof h, "%-16s%-12s%-6s%-6s%-8s%-10zu`\n", name, "0", "0", "0", "644", size);
    qk_buf_append(out, h, 60);
}

static void put_be32(qk_buf *out, uint32_t v)
{
    unsigned char c[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                          (unsigned char)v};
    qk_buf_append(out, c, 4);
}

/* A System V / GNU archive of the objects with the symbol index the
 * linker wants (each object's external definitions). */
static void archive(const qk_aot_objects *objs, qk_buf *out)
{
    int nsyms = 0;
    qk_buf names = {0};
    for (int i = 0; i < objs->n; i++)
        for (int j = 0; j < objs->o[i].nsyms; j++) {
            qk_buf_append(&names, objs->o[i].syms[j], strlen(objs->o[i].syms[j]) + 1);
            nsyms++;
        }
    size_t index = 4 + 4 * (size_t)nsyms + names.len;
    size_t at = 8 + 60 + index + (index & 1); /* first member's header */
    qk_buf_append(out, "!<arch>\n", 8);
    ar_header(out, "/", index);
    put_be32(out, (uint32_t)nsyms);
    for (int i = 0; i < objs->n; i++) {
        for (int j = 0; j < objs->o[i].nsyms; j++)
            put_be32(out, (uint32_t)at);
        at += 60 + objs->o[i].len + (objs->o[i].len & 1);
    }
    qk_buf_append(out, names.s, names.len);
    if (index & 1)
        qk_buf_append(out, "\n", 1);
    for (int i = 0; i < objs->n; i++) {
        char name[17];
        snprintf(name, sizeof name, "k%d.o/", i);
        ar_header(out, name, objs->o[i].len);
        qk_buf_append(out, objs->o[i].data, objs->o[i].len);
        if (objs->o[i].len & 1)
            qk_buf_append(out, "\n", 1);
    }
    qk_buf_free(&names);
}

/* ---- the header ---- */

static const char *ctype(const kir_tensor *t)
{
    return t->fmt ? "void" : rt_c_type(t->dtype);
}

/* Name of extent d of tensor t in packer signatures: the dim's symbol when
 * it is a plain symbol used once in t, else d<N>; "" for constants. */
static void extent_name(const kir_kernel *k, const kir_tensor *t, int d, char *out, size_t n)
{
    kir_dim x = t->dims[d];
    out[0] = 0;
    if (x.sym < 0)
        return;
    int uses = 0;
    for (int e = 0; e < t->rank; e++)
        uses += t->dims[e].sym == x.sym;
    if (x.c == 0 && uses == 1)
        snprintf(out, n, "%s", k->syms[x.sym]);
    else
        snprintf(out, n, "d%d", d);
}

static void comment_text(qk_buf *h, const char *text)
{
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n");
        qk_buf_puts(h, " *   ");
        for (size_t i = 0; i < n; i++)
            if (p[i] == '*' && p[i + 1] == '/')
                qk_buf_puts(h, "* ");
            else
                qk_buf_append(h, &p[i], 1);
        qk_buf_puts(h, "\n");
        p += n + (p[n] == '\n');
    }
}

static void header_call(qk_buf *h, const qk_aot_kernel *ak)
{
    const kir_kernel *k = ak->k;
    int nt = k->nparams + k->nresults;
    qk_buf_printf(h, "static inline int %s(", ak->symbol);
    for (int i = 0; i < nt; i++) {
        const kir_tensor *t = &k->tensors[i];
        qk_buf_printf(h, "%s%s *%s, ", t->kind == KIR_PARAM ? "const " : "", ctype(t), t->name);
    }
    for (int i = 0; i < k->nsyms; i++)
        qk_buf_printf(h, "int64_t %s, ", k->syms[i]);
    for (int i = 0; i < nt; i++)
        for (int d = 0; !k->tensors[i].fmt && d + 1 < k->tensors[i].rank; d++)
            qk_buf_printf(h, "int64_t %s_stride%d, ", k->tensors[i].name, d);
    qk_buf_puts(h, "const qkc_rt_opts *opts)\n{\n");
    int n = 0;
    qk_buf buf = {0};
    for (int i = 0; i < nt; i++)
        qk_buf_printf(&buf, "    a[%d].p = (void *)%s;\n", n++, k->tensors[i].name);
    for (int i = 0; i < k->nsyms; i++)
        qk_buf_printf(&buf, "    a[%d].i = %s;\n", n++, k->syms[i]);
    for (int i = 0; i < nt; i++)
        for (int d = 0; !k->tensors[i].fmt && d + 1 < k->tensors[i].rank; d++)
            qk_buf_printf(&buf, "    a[%d].i = %s_stride%d;\n", n++, k->tensors[i].name, d);
    qk_buf_printf(h, "    qkc_aot_arg a[%d];\n%s    return qkc_rt_launch(&%s_kernel, a, opts);\n}\n", n ? n : 1,
                  buf.s ? buf.s : "", ak->symbol);
    qk_buf_free(&buf);
}

/* "int64_t N, int64_t K" and "N, K" of tensor i's packer. */
static void extent_lists(const kir_kernel *k, int i, qk_buf *params, qk_buf *shape)
{
    const kir_tensor *t = &k->tensors[i];
    for (int d = 0; d < t->rank; d++) {
        char name[80];
        extent_name(k, t, d, name, sizeof name);
        if (name[0])
            qk_buf_printf(params, "int64_t %s, ", name);
        if (name[0])
            qk_buf_printf(shape, "%s%s", d ? ", " : "", name);
        else
            qk_buf_printf(shape, "%s%lld", d ? ", " : "", (long long)t->dims[d].c);
    }
}

/* 1 if a version of ak reads param i row-interleaved. */
static int repacked(const qk_aot_kernel *ak, int i)
{
    for (int v = 0; v < ak->nvariants; v++)
        if (ak->variants[v].f->repack_tensor == i)
            return 1;
    return 0;
}

static void header_packers(qk_buf *h, const qk_aot_kernel *ak)
{
    const kir_kernel *k = ak->k;
    for (int i = 0; i < k->nparams; i++) {
        const kir_tensor *t = &k->tensors[i];
        if (!t->fmt)
            continue;
        qk_buf params = {0}, shape = {0};
        extent_lists(k, i, &params, &shape);
        const char *ps = params.s ? params.s : "", *sh = shape.s ? shape.s : "0";
        size_t pl = params.len >= 2 ? params.len - 2 : 0; /* without the trailing ", " */
        qk_buf_printf(h,
                      "/* Packed bytes of %s (format %s). */\n"
                      "static inline int64_t %s_%s_bytes(%.*s)\n{\n"
                      "    const int64_t s[%d] = {%s};\n    return qkc_rt_packed_bytes(&%s_kernel, %d, s);\n}\n",
                      t->name, t->fmt->name, ak->symbol, t->name, (int)pl, pl ? ps : "void", t->rank, sh,
                      ak->symbol, i);
        qk_buf_printf(h,
                      "static inline int %s_%s_pack(const float *src, %svoid *dst, int64_t dst_bytes, "
                      "const void *codebook)\n{\n"
                      "    const int64_t s[%d] = {%s};\n"
                      "    return qkc_rt_pack(&%s_kernel, %d, src, s, dst, dst_bytes, codebook, NULL, 0);\n}\n",
                      ak->symbol, t->name, ps, t->rank, sh, ak->symbol, i);
        qk_buf_printf(h,
                      "static inline int %s_%s_unpack(const void *src, int64_t src_bytes, %sfloat *dst, "
                      "const void *codebook)\n{\n"
                      "    const int64_t s[%d] = {%s};\n"
                      "    return qkc_rt_unpack(&%s_kernel, %d, src, src_bytes, s, dst, codebook, NULL, 0);\n}\n",
                      ak->symbol, t->name, ps, t->rank, sh, ak->symbol, i);
        if (repacked(ak, i))
            qk_buf_printf(h,
                          "/* %s in the layout the version that runs here reads (row-interleaved, or\n"
                          " * its format's bytes): convert %s_%s_pack's bytes with _repack before a launch. */\n"
                          "static inline int64_t %s_%s_repacked_bytes(%.*s)\n{\n"
                          "    const int64_t s[%d] = {%s};\n    return qkc_rt_repacked_bytes(&%s_kernel, %d, s);\n}\n"
                          "static inline int %s_%s_repack(const void *src, int64_t src_bytes, %svoid *dst, "
                          "int64_t dst_bytes)\n{\n"
                          "    const int64_t s[%d] = {%s};\n"
                          "    return qkc_rt_repack(&%s_kernel, %d, src, src_bytes, s, dst, dst_bytes, NULL, 0);\n}\n",
                          t->name, ak->symbol, t->name, ak->symbol, t->name, (int)pl, pl ? ps : "void", t->rank, sh,
                          ak->symbol, i, ak->symbol, t->name, ps, t->rank, sh, ak->symbol, i);
        qk_buf_free(&params);
        qk_buf_free(&shape);
    }
}

static void header_kernel(qk_buf *h, const qk_aot_kernel *ak)
{
    const kir_kernel *k = ak->k;
    qk_buf_printf(h, "\n/* ---- kernel %s ----\n *\n", k->name);
    if (k->source)
        comment_text(h, k->source);
    qk_buf_puts(h, " *\n * Versions (dispatch order):\n");
    for (int v = 0; v < ak->nvariants; v++) {
        const tir_func *f = ak->variants[v].f;
        qk_buf_printf(h, " *   %s: %s (%s)", ak->variants[v].target->name, ak->variants[v].config,
                      ak->variants[v].origin);
        if (f->repack_tensor >= 0)
            qk_buf_printf(h, "; reads %s row-interleaved (%d rows)", k->tensors[f->repack_tensor].name,
                          f->repack_rows);
        qk_buf_puts(h, "\n");
    }
    qk_buf_puts(h, " *\n * Tensors:");
    for (int i = 0; i < k->nparams + k->nresults; i++) {
        const kir_tensor *t = &k->tensors[i];
        qk_buf_printf(h, " %s %s[", t->name, t->fmt ? t->fmt->name : qk_dtype_name(t->dtype));
        for (int d = 0; d < t->rank; d++) {
            qk_buf sd = {0};
            kir_print_dim(k, t->dims[d], &sd);
            qk_buf_printf(h, "%s%s", d ? ", " : "", sd.s ? sd.s : "");
            qk_buf_free(&sd);
        }
        qk_buf_puts(h, "]");
    }
    qk_buf_puts(h, ".\n * Strides (elements, dims 0..rank-2 of dense tensors) of 0 mean row-major.\n"
                   " * Returns QKC_RT_OK, or a status with a message in opts->err. */\n");
    qk_buf_printf(h, "extern const qkc_aot_kernel %s_kernel;\n", ak->symbol);
    header_call(h, ak);
    header_packers(h, ak);
}

static void header(aot_build *b, qk_buf *h)
{
    char guard[128];
    size_t j = 0;
    for (const char *p = b->o->prefix; *p && j + 10 < sizeof guard; p++)
        guard[j++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    snprintf(guard + j, sizeof guard - j, "_QKC_H");
    qk_buf_printf(h, "/* Generated by qkc %s (`qkc build`) for targets", QKC_VERSION);
    for (int i = 0; i < b->ntargets; i++)
        qk_buf_printf(h, "%s %s", i ? "," : "", b->targets[i].name);
    qk_buf_printf(h, ". Do not edit.\n"
                     " * Link the object/archive with libqkc_rt (-lqkc_rt -lpthread -ldl -lm); see\n"
                     " * docs/embedding.md. */\n"
                     "#ifndef %s\n#define %s\n\n#include <stdint.h>\n#include <qkc_aot.h>\n\n"
                     "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
                     "/* Every kernel of this build, NULL-terminated. */\n"
                     "extern const qkc_aot_kernel *const %s_kernels[];\n",
                  guard, guard, b->o->prefix);
    for (int i = 0; i < b->nkernels; i++)
        header_kernel(h, &b->kernels[i]);
    qk_buf_printf(h, "\n#ifdef __cplusplus\n}\n#endif\n\n#endif /* %s */\n", guard);
}

/* ---- the build ---- */

static int is_ident(const char *s)
{
    if (!s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

static qkc_status emit(aot_build *b)
{
    qk_aot_unit u = {.prefix = b->o->prefix, .nkernels = b->nkernels, .kernels = b->kernels};
    qk_target host;
    qk_target_host(&host);
    u.host = &host;
    qk_aot_objects objs;
    char err[2048] = "";
    if (qk_backend_llvm.aot_object(&u, b->o->archive, &objs, err, sizeof err) != 0)
        return rt_fail(b->ctx, QKC_ERR_TARGET, "%s", err);
    qk_buf out = {0};
    if (b->o->archive)
        archive(&objs, &out);
    else
        qk_buf_append(&out, objs.o[0].data, objs.o[0].len);
    qk_aot_objects_free(&objs);
    qkc_status st = write_file(b, b->o->output, out.s, out.len);
    qk_buf_free(&out);
    if (st == QKC_OK && b->o->header) {
        qk_buf h = {0};
        header(b, &h);
        st = write_file(b, b->o->header, h.s, h.len);
        qk_buf_free(&h);
    }
    return st;
}

qkc_status rt_aot_build(qkc_ctx *ctx, const rt_aot_opts *o, char **log)
{
    if (log)
        *log = NULL;
    if (!ctx || !o || !o->output || o->nprograms < 0 || (o->nprograms && !o->programs))
        return ctx ? rt_fail(ctx, QKC_ERR_INVALID_ARG, "AOT build: missing output or programs") : QKC_ERR_INVALID_ARG;
    if (!is_ident(o->prefix))
        return rt_fail(ctx, QKC_ERR_INVALID_ARG, "prefix '%s' is not a C identifier", o->prefix ? o->prefix : "");
    for (int i = 0; i < o->nprograms; i++)
        if (!o->programs[i] || !rt_program_kir(o->programs[i]) || o->programs[i]->ctx != ctx)
            return rt_fail(ctx, QKC_ERR_INVALID_ARG, "AOT build: program %d has errors or another context", i);
    if (qk_backend_llvm.absent) /* the object is host code, whatever its kernels' targets */
        return rt_fail(ctx, QKC_ERR_UNSUPPORTED,
                       "qkc was built without LLVM: ahead-of-time builds (qkc build) are unavailable for every target "
                       "(a GPU kernel's PTX is embedded in a host object too); JIT-compile GPU kernels instead "
                       "(qkc run/emit --target sm_90)");
    aot_build b = {.ctx = ctx, .o = o, .arena = qk_arena_new()};
    qkc_status st = parse_targets(&b);
    if (st == QKC_OK)
        st = collect(&b);
    if (st == QKC_OK)
        st = emit(&b);
    for (int i = 0; i < b.nkernels; i++)
        for (int t = 0; t < b.kernels[i].k->ntensors; t++)
            qk_buf_free((qk_buf *)&b.kernels[i].format_images[t]);
    free(b.kernels);
    qk_arena_free(b.arena);
    if (log)
        *log = qk_buf_take(&b.log);
    else
        qk_buf_free(&b.log);
    return st;
}

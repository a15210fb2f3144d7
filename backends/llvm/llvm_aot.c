/* llvm_aot.c — ahead-of-time objects for `qkc build`: every CPU version of
 * every kernel in one LLVM module, each optimized with its own target
 * machine (its functions carry their own target-cpu/target-features, so
 * one object holds AVX2 and AVX-512 code side by side), plus per version
 * a trampoline with the fixed C signature of qkc_aot_entry, and the
 * constant descriptors of include/qkc_aot.h. Versions are optimized in
 * parallel (one LLVM context per job, one thread per core) and brought
 * into the main module as bitcode.
 *
 * The descriptor structs there are made of 8-byte fields only (int64_t
 * and pointers), so the literal LLVM struct types below have the same
 * layout as the C structs on every LP64 target. Only the descriptors and
 * the kernel list are external symbols; code, strings and tables are
 * internal, so several qkc-built libraries link into one program. */
#include "backends/llvm/llvm_internal.h"
#include "qkc_aot.h"

#include <llvm-c/BitReader.h>
#include <llvm-c/BitWriter.h>
#include <llvm-c/Linker.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

typedef struct aot_job aot_job;

typedef struct aot {
    LLVMContextRef ctx;
    aot_job *jobs; /* CPU versions in kernel, then version order */
    int next_job;
    LLVMModuleRef mod;
    LLVMTypeRef i64, ptr;
    LLVMTypeRef dim_t, tensor_t, grid_t, scratch_t, variant_t, kernel_t;
    int nglobals; /* names of internal data */
} aot;

/* ---- constants ---- */

static LLVMValueRef i64c(aot *a, int64_t v)
{
    return LLVMConstInt(a->i64, (unsigned long long)v, 1);
}

static LLVMValueRef null_ptr(aot *a)
{
    return LLVMConstPointerNull(a->ptr);
}

/* An internal constant global holding init; returns its address. */
static LLVMValueRef global(aot *a, LLVMValueRef init, const char *what)
{
    char name[64];
    snprintf(name, sizeof name, "qkaot.%s.%d", what, a->nglobals++);
    LLVMValueRef g = LLVMAddGlobal(a->mod, LLVMTypeOf(init), name);
    LLVMSetInitializer(g, init);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMPrivateLinkage);
    LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
    return g;
}

static LLVMValueRef str(aot *a, const char *s)
{
    if (!s)
        return null_ptr(a);
    return global(a, LLVMConstStringInContext(a->ctx, s, (unsigned)strlen(s), 0), "str");
}

static LLVMValueRef bytes(aot *a, const void *p, size_t n)
{
    if (!p || !n)
        return null_ptr(a);
    LLVMValueRef g = global(a, LLVMConstStringInContext(a->ctx, p, (unsigned)n, 1), "bytes");
    LLVMSetAlignment(g, 8);
    return g;
}

/* An internal array of n constants of type t (NULL when n == 0). */
static LLVMValueRef array(aot *a, LLVMTypeRef t, LLVMValueRef *v, int n, const char *what)
{
    if (n == 0)
        return null_ptr(a);
    return global(a, LLVMConstArray2(t, v, (uint64_t)n), what);
}

static LLVMValueRef record(aot *a, LLVMTypeRef t, LLVMValueRef *v, int n)
{
    return LLVMConstNamedStruct(t, v, (unsigned)n);
}

static LLVMTypeRef struct_type(aot *a, const char *name, LLVMTypeRef *f, int n)
{
    LLVMTypeRef t = LLVMStructCreateNamed(a->ctx, name);
    LLVMStructSetBody(t, f, (unsigned)n, 0);
    return t;
}

/* The types of include/qkc_aot.h, field by field. */
static void make_types(aot *a)
{
    LLVMTypeRef I = a->i64, P = a->ptr;
    a->dim_t = struct_type(a, "qkc_aot_dim", (LLVMTypeRef[]){I, I}, 2);
    LLVMTypeRef dims = LLVMArrayType2(a->dim_t, QKC_AOT_MAX_RANK);
    a->tensor_t = struct_type(a, "qkc_aot_tensor", (LLVMTypeRef[]){P, I, P, I, I, dims, P, I, P, I}, 10);
    a->grid_t = struct_type(a, "qkc_aot_grid", (LLVMTypeRef[]){a->dim_t, I, I}, 3);
    a->scratch_t = struct_type(a, "qkc_aot_scratch", (LLVMTypeRef[]){I, I}, 2);
    a->variant_t =
        struct_type(a, "qkc_aot_variant", (LLVMTypeRef[]){P, I, I, P, P, I, P, I, P, P, I, P, I, I, P}, 15);
    /* variant_repack is written for ABI 1 descriptors too (NULL), so a copy
     * of any descriptor this qkc writes reads no byte past it */
    a->kernel_t = struct_type(a, "qkc_aot_kernel", (LLVMTypeRef[]){I, P, P, P, P, I, I, I, P, I, P, I, I, P, P}, 15);
}

static LLVMValueRef dim(aot *a, kir_dim d)
{
    return record(a, a->dim_t, (LLVMValueRef[]){i64c(a, d.sym), i64c(a, d.c)}, 2);
}

/* ---- code ---- */

static void isa_ident(const char *isa, char *out, size_t n)
{
    size_t i = 0;
    for (; isa[i] && i + 1 < n; i++)
        out[i] = (isa[i] >= 'a' && isa[i] <= 'z') || (isa[i] >= '0' && isa[i] <= '9') ? isa[i] : '_';
    out[i] = 0;
}

/* The C type of f's entry (tir.h's argument list). */
static LLVMTypeRef entry_type(aot *a, const tir_func *f)
{
    LLVMTypeRef *types = qk_xcalloc((size_t)f->nargs + 1, sizeof *types);
    for (int i = 0; i < f->nargs; i++)
        types[i] = f->args[i].s == TS_PTR ? a->ptr : a->i64;
    LLVMTypeRef t = LLVMFunctionType(LLVMVoidTypeInContext(a->ctx), types, (unsigned)f->nargs, 0);
    free(types);
    return t;
}

/* A trampoline `void t(const qkc_aot_arg *argv, int64_t begin, int64_t end)`
 * calling entry with f's argument list read from argv. */
static LLVMValueRef trampoline(aot *a, const tir_func *f, LLVMValueRef entry, const char *name)
{
    LLVMTypeRef ft = LLVMFunctionType(LLVMVoidTypeInContext(a->ctx), (LLVMTypeRef[]){a->ptr, a->i64, a->i64}, 3, 0);
    LLVMValueRef fn = LLVMAddFunction(a->mod, name, ft);
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    LLVMBuilderRef b = LLVMCreateBuilderInContext(a->ctx);
    LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(a->ctx, fn, "entry"));
    LLVMValueRef *args = qk_xcalloc((size_t)f->nargs + 1, sizeof *args);
    int slot = 0;
    for (int i = 0; i < f->nargs; i++) {
        LLVMTypeRef ty = f->args[i].s == TS_PTR ? a->ptr : a->i64;
        if (i == f->arg_begin)
            args[i] = LLVMGetParam(fn, 1);
        else if (i == f->arg_end)
            args[i] = LLVMGetParam(fn, 2);
        else {
            LLVMValueRef at = LLVMBuildGEP2(b, a->i64, LLVMGetParam(fn, 0), (LLVMValueRef[]){i64c(a, slot++)}, 1, "");
            args[i] = LLVMBuildLoad2(b, ty, at, "");
        }
    }
    LLVMBuildCall2(b, entry_type(a, f), entry, args, (unsigned)f->nargs, "");
    LLVMBuildRetVoid(b);
    LLVMDisposeBuilder(b);
    free(args);
    return fn;
}

/* One CPU version compiled on a worker thread in its own LLVM context
 * and target machine (see ENVIRONMENT.md: that is safe in parallel), kept
 * as bitcode until the main module links it. */
typedef struct aot_job {
    const qk_aot_kernel *ak;
    const qk_aot_variant *v;
    char sym[256];
    int split;                /* 1: emit an object here; 0: keep bitcode */
    LLVMMemoryBufferRef bc;
    void *obj;
    size_t objlen;
    int rc;
    char err[1024];
} aot_job;

typedef struct aot_jobs {
    int n;
    aot_job *jobs;
    _Atomic int next;
} aot_jobs;

static void compile_job(aot_job *j)
{
    llvm_tm_desc d;
    j->rc = -1;
    if (llvm_describe_target(j->v->target, &d, j->err, sizeof j->err))
        return;
    LLVMTargetMachineRef tm = llvm_make_tm(&d, j->err, sizeof j->err);
    if (tm) {
        LLVMContextRef ctx = LLVMContextCreate();
        LLVMModuleRef m = llvm_build_module(ctx, j->v->f, j->sym, &d, tm, j->err, sizeof j->err);
        if (m && j->split) { /* its own object; the entry is a hidden global */
            LLVMValueRef fn = LLVMGetNamedFunction(m, j->sym);
            LLVMSetVisibility(fn, LLVMHiddenVisibility);
            char *msg = NULL;
            LLVMMemoryBufferRef mb = NULL;
            if (LLVMTargetMachineEmitToMemoryBuffer(tm, m, LLVMObjectFile, &msg, &mb))
                snprintf(j->err, sizeof j->err, "code generation failed for '%s' (%s): %s", j->ak->k->name,
                         j->v->target->name, msg ? msg : "?");
            else {
                j->objlen = LLVMGetBufferSize(mb);
                j->obj = qk_xmalloc(j->objlen ? j->objlen : 1);
                memcpy(j->obj, LLVMGetBufferStart(mb), j->objlen);
                LLVMDisposeMemoryBuffer(mb);
                j->rc = 0;
            }
            LLVMDisposeMessage(msg);
        } else if (m) {
            j->bc = LLVMWriteBitcodeToMemoryBuffer(m);
            j->rc = 0;
        }
        if (m)
            LLVMDisposeModule(m);
        LLVMContextDispose(ctx);
        LLVMDisposeTargetMachine(tm);
    }
    free(d.features);
}

static void *job_worker(void *arg)
{
    aot_jobs *q = arg;
    for (int i; (i = atomic_fetch_add(&q->next, 1)) < q->n;)
        compile_job(&q->jobs[i]);
    return NULL;
}

/* Compiles every job, on up to one thread per core. */
static void run_jobs(aot_jobs *q)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int nt = (int)(cores < 1 ? 1 : cores > 32 ? 32 : cores);
    nt = nt > q->n ? q->n : nt;
    pthread_t th[32];
    int started = 0;
    for (int i = 1; i < nt; i++)
        started += pthread_create(&th[started], NULL, job_worker, q) == 0;
    job_worker(q); /* the caller too; it alone if no thread started */
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
}

/* Links job j's bitcode into a->mod; returns the version's trampoline. */
static LLVMValueRef cpu_version(aot *a, aot_job *j, char *err, size_t errsz)
{
    if (j->rc != 0) {
        snprintf(err, errsz, "%s", j->err);
        return NULL;
    }
    if (j->split) { /* a declaration of the entry in the other object */
        LLVMValueRef entry = LLVMAddFunction(a->mod, j->sym, entry_type(a, j->v->f));
        LLVMSetVisibility(entry, LLVMHiddenVisibility);
        char tname[280];
        snprintf(tname, sizeof tname, "%s.argv", j->sym);
        return trampoline(a, j->v->f, entry, tname);
    }
    LLVMModuleRef m = NULL;
    if (LLVMParseBitcodeInContext2(a->ctx, j->bc, &m)) {
        snprintf(err, errsz, "internal error: cannot read back the %s version of '%s'", j->v->target->name,
                 j->ak->k->name);
        return NULL;
    }
    LLVMSetDataLayout(m, LLVMGetDataLayoutStr(a->mod));
    if (LLVMLinkModules2(a->mod, m)) {
        snprintf(err, errsz, "internal error: cannot link the %s version of '%s'", j->v->target->name,
                 j->ak->k->name);
        return NULL;
    }
    LLVMValueRef entry = LLVMGetNamedFunction(a->mod, j->sym);
    if (!entry) {
        snprintf(err, errsz, "internal error: entry %s missing after linking", j->sym);
        return NULL;
    }
    LLVMSetLinkage(entry, LLVMInternalLinkage);
    char tname[280];
    snprintf(tname, sizeof tname, "%s.argv", j->sym);
    return trampoline(a, j->v->f, entry, tname);
}

/* ---- descriptors ---- */

static const char *dtype_text(const kir_tensor *t)
{
    return t->fmt ? "packed" : qk_dtype_name(t->dtype);
}

static LLVMValueRef tensor(aot *a, const qk_aot_kernel *ak, int i)
{
    const kir_tensor *t = &ak->k->tensors[i];
    LLVMValueRef dims[QKC_AOT_MAX_RANK];
    for (int d = 0; d < QKC_AOT_MAX_RANK; d++)
        dims[d] = dim(a, d < t->rank ? t->dims[d] : (kir_dim){-1, 0});
    const qk_buf *img = &ak->format_images[i];
    qk_buf text = {0};
    if (t->fmt)
        qk_format_print(t->fmt, &text);
    int kind = t->kind == KIR_PARAM ? QKC_AOT_PARAM : t->kind == KIR_RESULT ? QKC_AOT_RESULT : QKC_AOT_TEMP;
    LLVMValueRef f[] = {str(a, t->name),
                        i64c(a, kind),
                        str(a, dtype_text(t)),
                        i64c(a, t->fmt ? 1 : qk_dtype_size(t->dtype)),
                        i64c(a, t->rank),
                        LLVMConstArray2(a->dim_t, dims, QKC_AOT_MAX_RANK),
                        bytes(a, img->s, img->len),
                        i64c(a, (int64_t)img->len),
                        str(a, text.s),
                        i64c(a, t->book)};
    qk_buf_free(&text);
    return record(a, a->tensor_t, f, 10);
}

_Static_assert((int)TIR_SCRATCH_PACKED == QKC_AOT_SCRATCH_PACKED && (int)TIR_SCRATCH_STAGE == QKC_AOT_SCRATCH_STAGE &&
                   (int)TIR_SCRATCH_DENSE == QKC_AOT_SCRATCH_DENSE && (int)TIR_SCRATCH_SUMS == QKC_AOT_SCRATCH_SUMS,
               "scratch kinds are written as the TIR's numbers");

/* Items per sum of f's SUMS scratch (the row-interleaved layout's), 0: none. */
static int sums_group(const tir_func *f)
{
    for (int s = 0; s < f->nscratch; s++)
        if (f->scratch[s].kind == TIR_SCRATCH_SUMS)
            return f->scratch[s].group;
    return 0;
}

/* The descriptor ABI of ak: 2 where a version reads the row-interleaved
 * layout (qkc_aot_kernel.variant_repack), else 1, which older runtimes read. */
static int kernel_abi(const qk_aot_kernel *ak)
{
    for (int i = 0; i < ak->nvariants; i++)
        if (ak->variants[i].f->repack_tensor >= 0 || sums_group(ak->variants[i].f))
            return 2;
    return 1;
}

static LLVMValueRef variant(aot *a, const qk_aot_kernel *ak, const qk_aot_variant *v, char *err, size_t errsz)
{
    const tir_func *f = v->f;
    int gpu = v->target->kind == QK_TARGET_GPU;
    LLVMValueRef entry = null_ptr(a);
    if (!gpu && !(entry = cpu_version(a, &a->jobs[a->next_job++], err, errsz)))
        return NULL;
    LLVMValueRef *grids = qk_xcalloc((size_t)f->ngrids + 1, sizeof *grids);
    for (int g = 0; g < f->ngrids; g++)
        grids[g] = record(a, a->grid_t,
                          (LLVMValueRef[]){dim(a, f->grids[g].extent), i64c(a, f->grids[g].tile),
                                           i64c(a, f->grids[g].phase)},
                          3);
    LLVMValueRef *scr = qk_xcalloc((size_t)f->nscratch + 1, sizeof *scr);
    for (int s = 0; s < f->nscratch; s++)
        scr[s] = record(a, a->scratch_t, (LLVMValueRef[]){i64c(a, f->scratch[s].tensor), i64c(a, f->scratch[s].kind)},
                        2);
    LLVMValueRef fields[] = {str(a, v->target->name),
                             i64c(a, gpu ? QKC_AOT_CUDA : QKC_AOT_CPU),
                             i64c(a, gpu ? 0 : (int64_t)v->target->features),
                             entry,
                             gpu ? str(a, v->gpu_code) : null_ptr(a),
                             i64c(a, gpu && v->gpu_code ? (int64_t)strlen(v->gpu_code) + 1 : 0),
                             gpu ? str(a, v->gpu_symbol) : null_ptr(a),
                             i64c(a, gpu ? v->gpu_block : 0),
                             str(a, v->config),
                             str(a, v->origin),
                             i64c(a, f->ngrids),
                             array(a, a->grid_t, grids, f->ngrids, "grids"),
                             i64c(a, f->nphases),
                             i64c(a, f->nscratch),
                             array(a, a->scratch_t, scr, f->nscratch, "scratch")};
    free(grids);
    free(scr);
    return record(a, a->variant_t, fields, 15);
}

/* qkc_aot_kernel.variant_repack: per version, the param it reads
 * row-interleaved (-1: none), its rows per group, and the items per sum
 * of its SUMS scratch (0: none). */
static LLVMValueRef variant_repack(aot *a, const qk_aot_kernel *ak)
{
    LLVMValueRef *v = qk_xcalloc(3 * (size_t)ak->nvariants + 1, sizeof *v);
    for (int i = 0; i < ak->nvariants; i++) {
        const tir_func *f = ak->variants[i].f;
        v[3 * i] = i64c(a, f->repack_tensor);
        v[3 * i + 1] = i64c(a, f->repack_tensor >= 0 ? f->repack_rows : 0);
        v[3 * i + 2] = i64c(a, sums_group(f));
    }
    LLVMValueRef r = array(a, a->i64, v, 3 * ak->nvariants, "repack");
    free(v);
    return r;
}

/* Strides of the typed call: dims 0..rank-2 of dense params/results. */
static int64_t stride_count(const kir_kernel *k)
{
    int64_t n = 0;
    for (int i = 0; i < k->nparams + k->nresults; i++)
        if (!k->tensors[i].fmt && k->tensors[i].rank >= 2)
            n += k->tensors[i].rank - 1;
    return n;
}

static LLVMValueRef kernel(aot *a, const qk_aot_kernel *ak, char *err, size_t errsz)
{
    const kir_kernel *k = ak->k;
    LLVMValueRef *ts = qk_xcalloc((size_t)k->ntensors + 1, sizeof *ts);
    for (int i = 0; i < k->ntensors; i++)
        ts[i] = tensor(a, ak, i);
    LLVMValueRef *names = qk_xcalloc((size_t)k->nsyms + 1, sizeof *names);
    for (int i = 0; i < k->nsyms; i++)
        names[i] = str(a, k->syms[i]);
    LLVMValueRef *vs = qk_xcalloc((size_t)ak->nvariants + 1, sizeof *vs);
    LLVMValueRef r = NULL;
    int ok = 1, abi = kernel_abi(ak);
    for (int i = 0; ok && i < ak->nvariants; i++)
        ok = (vs[i] = variant(a, ak, &ak->variants[i], err, errsz)) != NULL;
    if (ok) {
        LLVMValueRef f[] = {i64c(a, abi),
                            str(a, k->name),
                            str(a, ak->symbol),
                            str(a, k->source),
                            str(a, QKC_VERSION),
                            i64c(a, k->nparams),
                            i64c(a, k->nresults),
                            i64c(a, k->ntensors),
                            array(a, a->tensor_t, ts, k->ntensors, "tensors"),
                            i64c(a, k->nsyms),
                            array(a, a->ptr, names, k->nsyms, "dims"),
                            i64c(a, stride_count(k)),
                            i64c(a, ak->nvariants),
                            array(a, a->variant_t, vs, ak->nvariants, "variants"),
                            abi >= 2 ? variant_repack(a, ak) : null_ptr(a)};
        char name[256];
        snprintf(name, sizeof name, "%s_kernel", ak->symbol);
        r = LLVMAddGlobal(a->mod, a->kernel_t, name);
        LLVMSetInitializer(r, record(a, a->kernel_t, f, 15));
        LLVMSetGlobalConstant(r, 1);
    }
    free(ts);
    free(names);
    free(vs);
    return r;
}

/* The triple and a baseline CPU of the object: that of the first CPU
 * version (code outside the versions must run on every CPU the dispatcher
 * may meet), else the machine qkc runs on. */
static int object_desc(const qk_aot_unit *u, llvm_tm_desc *d, char *err, size_t errsz)
{
    const qk_target *t = u->host;
    for (int i = 0; i < u->nkernels; i++)
        for (int j = 0; j < u->kernels[i].nvariants; j++)
            if (u->kernels[i].variants[j].target->kind == QK_TARGET_CPU) {
                t = u->kernels[i].variants[j].target;
                i = u->nkernels;
                break;
            }
    if (llvm_describe_target(t, d, err, errsz))
        return -1;
    snprintf(d->cpu, sizeof d->cpu, "%s", strncmp(d->triple, "x86_64", 6) == 0 ? "x86-64" : "generic");
    free(d->features);
    d->features = qk_xstrdup(strncmp(d->triple, "aarch64", 7) == 0 ? "+neon" : "");
    return 0;
}

static int emit_object(aot *a, const llvm_tm_desc *d, void **obj, size_t *n, char *err, size_t errsz)
{
    char *msg = NULL;
    if (LLVMVerifyModule(a->mod, LLVMReturnStatusAction, &msg)) {
        snprintf(err, errsz, "internal error: invalid AOT module: %.400s", msg ? msg : "?");
        LLVMDisposeMessage(msg);
        return -1;
    }
    LLVMDisposeMessage(msg);
    msg = NULL;
    LLVMTargetMachineRef tm = llvm_make_tm(d, err, errsz);
    if (!tm)
        return -1;
    LLVMMemoryBufferRef mb = NULL;
    int r = 0;
    if (LLVMTargetMachineEmitToMemoryBuffer(tm, a->mod, LLVMObjectFile, &msg, &mb)) {
        snprintf(err, errsz, "code generation failed: %s", msg ? msg : "?");
        LLVMDisposeMessage(msg);
        r = -1;
    } else {
        *n = LLVMGetBufferSize(mb);
        *obj = qk_xmalloc(*n ? *n : 1);
        memcpy(*obj, LLVMGetBufferStart(mb), *n);
        LLVMDisposeMemoryBuffer(mb);
    }
    LLVMDisposeTargetMachine(tm);
    return r;
}

static char *dup_printf(const char *fmt, const char *a, const char *b)
{
    char buf[512];
    snprintf(buf, sizeof buf, fmt, a, b);
    return qk_xstrdup(buf);
}

int llvm_aot_object(const qk_aot_unit *u, int split, qk_aot_objects *out, char *err, size_t errsz)
{
    memset(out, 0, sizeof *out);
    void *obj = NULL;
    size_t n = 0;
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    llvm_tm_desc d;
    if (object_desc(u, &d, err, errsz))
        return -1;
    LLVMTargetMachineRef tm = llvm_make_tm(&d, err, errsz);
    if (!tm) {
        free(d.features);
        return -1;
    }
    aot a = {.ctx = LLVMContextCreate()};
    a.mod = LLVMModuleCreateWithNameInContext(u->prefix, a.ctx);
    LLVMSetTarget(a.mod, d.triple);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
    char *layout = LLVMCopyStringRepOfTargetData(td);
    LLVMSetDataLayout(a.mod, layout);
    LLVMDisposeMessage(layout);
    LLVMDisposeTargetData(td);
    LLVMDisposeTargetMachine(tm);
    a.i64 = LLVMInt64TypeInContext(a.ctx);
    a.ptr = LLVMPointerTypeInContext(a.ctx, 0);
    make_types(&a);
    aot_jobs q = {0};
    for (int i = 0; i < u->nkernels; i++)
        for (int j = 0; j < u->kernels[i].nvariants; j++)
            q.n += u->kernels[i].variants[j].target->kind == QK_TARGET_CPU;
    q.jobs = qk_xcalloc((size_t)q.n + 1, sizeof *q.jobs);
    for (int i = 0, n = 0; i < u->nkernels; i++)
        for (int j = 0; j < u->kernels[i].nvariants; j++) {
            const qk_aot_variant *v = &u->kernels[i].variants[j];
            if (v->target->kind != QK_TARGET_CPU)
                continue;
            aot_job *jb = &q.jobs[n++];
            char isa[40];
            isa_ident(v->target->name, isa, sizeof isa);
            jb->ak = &u->kernels[i];
            jb->v = v;
            jb->split = split;
            snprintf(jb->sym, sizeof jb->sym, "qkaot.%s.%s", u->kernels[i].symbol, isa);
        }
    run_jobs(&q);
    a.jobs = q.jobs;
    LLVMValueRef *list = qk_xcalloc((size_t)u->nkernels + 1, sizeof *list);
    int r = 0;
    for (int i = 0; r == 0 && i < u->nkernels; i++)
        r = (list[i] = kernel(&a, &u->kernels[i], err, errsz)) ? 0 : -1;
    if (r == 0) {
        list[u->nkernels] = null_ptr(&a);
        LLVMValueRef init = LLVMConstArray2(a.ptr, list, (uint64_t)u->nkernels + 1);
        char name[200];
        snprintf(name, sizeof name, "%s_kernels", u->prefix);
        LLVMValueRef g = LLVMAddGlobal(a.mod, LLVMTypeOf(init), name);
        LLVMSetInitializer(g, init);
        LLVMSetGlobalConstant(g, 1);
        r = emit_object(&a, &d, &obj, &n, err, errsz);
    }
    if (r == 0) { /* the descriptors' object, then the versions' */
        out->o = qk_xcalloc((size_t)q.n + 1, sizeof *out->o);
        qk_aot_object *m = &out->o[out->n++];
        m->data = obj;
        m->len = n;
        m->syms = qk_xcalloc((size_t)u->nkernels + 1, sizeof *m->syms);
        for (int i = 0; i < u->nkernels; i++)
            m->syms[m->nsyms++] = dup_printf("%s%s", u->kernels[i].symbol, "_kernel");
        m->syms[m->nsyms++] = dup_printf("%s%s", u->prefix, "_kernels");
        for (int i = 0; split && i < q.n; i++) {
            qk_aot_object *o = &out->o[out->n++];
            o->data = q.jobs[i].obj;
            o->len = q.jobs[i].objlen;
            q.jobs[i].obj = NULL;
            o->syms = qk_xcalloc(1, sizeof *o->syms);
            o->syms[o->nsyms++] = qk_xstrdup(q.jobs[i].sym);
        }
    }
    free(list);
    for (int i = 0; i < q.n; i++) {
        if (q.jobs[i].bc)
            LLVMDisposeMemoryBuffer(q.jobs[i].bc);
        free(q.jobs[i].obj);
    }
    free(q.jobs);
    LLVMDisposeModule(a.mod);
    LLVMContextDispose(a.ctx);
    free(d.features);
    return r;
}

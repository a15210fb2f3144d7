/* llvm_jit.c — the CPU backend's driver: target machines for the host and
 * the named x86 presets, the pass pipeline (new pass manager), one ORC LLJIT
 * per context, and text emission for `qkc emit --stage=llvm|asm`.
 *
 * Every kernel goes through a relocatable object: compile_obj builds the
 * module, runs the pipeline and emits an object in memory; load_obj links an object
 * into the LLJIT. compile is the two in a row, and the runtime's disk
 * cache (runtime/diskcache.c) stores the objects in between. Each loaded
 * object gets its own JITDylib (which resolves libc/libm from the
 * process) and resource tracker, so objects made by other processes --
 * whose entry symbols all read "qk_<kernel name>" -- never collide, and
 * release frees one kernel's code.
 *
 * Thread safety: compile_obj builds its module in its own LLVM context
 * with its own target machine, so it runs in parallel; adding to the JIT
 * and looking the symbol up happen under the state's mutex
 * (unsynchronized add+lookup on one LLJIT crashes, see ENVIRONMENT.md). */
#include "backends/llvm/llvm_internal.h"

#include <pthread.h>
#include <string.h>

typedef struct llvm_state {
    LLVMOrcLLJITRef jit;
    pthread_mutex_t mu; /* guards the JIT and next_id */
    llvm_tm_desc tm;
    char *tag;          /* obj_tag: what objects depend on */
    long next_id;       /* names of per-kernel JITDylibs */
} llvm_state;

typedef struct llvm_code {
    LLVMOrcResourceTrackerRef rt;
} llvm_code;

/* "llvm 19.1.7 x86_64-pc-linux-gnu rocketlake +avx512f,...": everything
 * besides the tiled IR that decides the bytes of an object. */
static char *make_tag(const llvm_tm_desc *d)
{
    unsigned major, minor, patch;
    LLVMGetVersion(&major, &minor, &patch);
    qk_buf b = {0};
    qk_buf_printf(&b, "llvm %u.%u.%u %s %s %s", major, minor, patch, d->triple, d->cpu, d->features);
    return qk_buf_take(&b);
}

/* 1 when d's architecture is not the machine's: such a state emits text
 * and objects (qkc emit, qkc build) but cannot run code. */
static int foreign(const llvm_tm_desc *d)
{
    char *host = LLVMGetDefaultTargetTriple();
    size_t n = strcspn(host, "-");
    int r = strncmp(d->triple, host, n) != 0 || (d->triple[n] != '-' && d->triple[n] != 0);
    LLVMDisposeMessage(host);
    return r;
}

static int cannot_run(const llvm_state *s, char *err, size_t errsz)
{
    snprintf(err, errsz, "%s code cannot run on this machine: build it with `qkc build`", s->tm.triple);
    return -1;
}

static int llvm_create(const qk_target *t, void **out, char *err, size_t errsz)
{
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    llvm_state *s = qk_xcalloc(1, sizeof *s);
    if (llvm_describe_target(t, &s->tm, err, errsz)) {
        free(s);
        return -1;
    }
    if (foreign(&s->tm)) { /* no JIT: load_obj reports it */
        pthread_mutex_init(&s->mu, NULL);
        s->tag = make_tag(&s->tm);
        *out = s;
        return 0;
    }
    LLVMTargetMachineRef tm = llvm_make_tm(&s->tm, err, errsz);
    if (!tm) {
        free(s->tm.features);
        free(s);
        return -1;
    }
    LLVMOrcLLJITBuilderRef jb = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(jb, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm)); /* owns tm */
    LLVMErrorRef e = LLVMOrcCreateLLJIT(&s->jit, jb); /* owns jb */
    if (e) {
        free(s->tm.features);
        free(s);
        return llvm_take_error(e, "cannot create the JIT", err, errsz);
    }
    pthread_mutex_init(&s->mu, NULL);
    s->tag = make_tag(&s->tm);
    *out = s;
    return 0;
}

static void llvm_destroy(void *state)
{
    llvm_state *s = state;
    if (!s)
        return;
    LLVMErrorRef e = s->jit ? LLVMOrcDisposeLLJIT(s->jit) : NULL;
    if (e)
        LLVMConsumeError(e);
    pthread_mutex_destroy(&s->mu);
    free(s->tm.features);
    free(s->tag);
    free(s);
}

/* Warp-level ops (TL_WARP loops, LANEID, INSERT of fragments, MMA) exist
 * only for GPU targets: -1 with a message for the first one. EXTRACT of a
 * lane is lowered on CPUs too. */
static int reject_gpu_only(const tir_func *f, char *err, size_t errsz)
{
    for (int id = 0; id < f->nnodes; id++) {
        const tir_node *n = &f->nodes[id];
        int op = n->op;
        if (op == TIR_LANEID || op == TIR_INSERT || op == TIR_MMA ||
            (op == TIR_LOOP && n->kind == TL_WARP)) {
            snprintf(err, errsz, "'%s': node %d (%s) is warp-level GPU code, which the LLVM backend does not lower",
                     f->name, id, op == TIR_LOOP ? "warp loop" : tir_op_name(op));
            return -1;
        }
    }
    return 0;
}

/* The optimization passes every kernel module runs. The generated IR is
 * already vectorized, unrolled and tiled, with its VAR nodes as allocas:
 * what it needs is promotion to registers (sroa), folding (instcombine,
 * early-cse, gvn: the decode's shifts and masks, repeated address
 * arithmetic), loops rotated and those of a constant trip count unrolled
 * (without that the codebook gathers' kernels ran 1.8x slower), hoisting
 * loop-invariant work (licm), and dead-store and CFG cleanup. LLVM's
 * default<O3> spent 35-60% of a cold compile (a 4-bit GEMV: 34 of 61 ms) in
 * passes that find nothing to do here (loop and SLP vectorizers, runtime
 * unrolling, inlining, IPO); this list compiles the same kernels in
 * 0.5-0.7x the time and runs them as fast (docs/performance.md,
 * twenty-first session). instcombine named in a pipeline text checks
 * that one iteration reached a fixpoint and aborts the process when it
 * did not (LLVM 19); the default pipelines turn that check off, and so
 * does <no-verify-fixpoint> here. */
static const char llvm_pipeline[] = "function(sroa,early-cse<memssa>,instcombine<no-verify-fixpoint>,simplifycfg,"
                                    "loop(loop-rotate,loop-unroll-full),loop-mssa(licm),gvn,"
                                    "instcombine<no-verify-fixpoint>,dse,simplifycfg)";

LLVMModuleRef llvm_build_module(LLVMContextRef ctx, const tir_func *f, const char *sym, const llvm_tm_desc *d,
                                LLVMTargetMachineRef tm, char *err, size_t errsz)
{
    if (reject_gpu_only(f, err, errsz))
        return NULL;
    LLVMModuleRef mod = llvm_gen_module(ctx, f, sym, d);
    char *msg = NULL;
    if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg)) {
        snprintf(err, errsz, "internal error: invalid LLVM IR for '%s': %.400s", f->name, msg ? msg : "?");
        LLVMDisposeMessage(msg);
        LLVMDisposeModule(mod);
        return NULL;
    }
    LLVMDisposeMessage(msg);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
    char *layout = LLVMCopyStringRepOfTargetData(td);
    LLVMSetDataLayout(mod, layout);
    LLVMDisposeMessage(layout);
    LLVMDisposeTargetData(td);
    LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
    LLVMErrorRef e = LLVMRunPasses(mod, llvm_pipeline, tm, opts);
    LLVMDisposePassBuilderOptions(opts);
    if (e) {
        llvm_take_error(e, "optimization failed", err, errsz);
        LLVMDisposeModule(mod);
        return NULL;
    }
    return mod;
}

/* The entry point's symbol in every object: the same in every process,
 * since objects outlive the process that made them. */
static void entry_symbol(const tir_func *f, char *sym, size_t n)
{
    snprintf(sym, n, "qk_%.150s", f->name);
}

/* Builds f's module, runs the pipeline and emits a relocatable object (malloc'd). */
static int llvm_compile_obj(void *state, const tir_func *f, void **obj, size_t *n, char *err, size_t errsz)
{
    llvm_state *s = state;
    char sym[160];
    entry_symbol(f, sym, sizeof sym);
    *obj = NULL;
    *n = 0;
    if (!s->jit) /* nothing could load it: kernels of a foreign target have IR, no code */
        return cannot_run(s, err, errsz);
    LLVMTargetMachineRef tm = llvm_make_tm(&s->tm, err, errsz);
    if (!tm)
        return -1;
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef mod = llvm_build_module(ctx, f, sym, &s->tm, tm, err, errsz);
    LLVMMemoryBufferRef mb = NULL;
    char *msg = NULL;
    int r = -1;
    if (mod && LLVMTargetMachineEmitToMemoryBuffer(tm, mod, LLVMObjectFile, &msg, &mb)) {
        snprintf(err, errsz, "code generation failed for '%s': %s", f->name, msg ? msg : "?");
        LLVMDisposeMessage(msg);
    } else if (mod) {
        *n = LLVMGetBufferSize(mb);
        *obj = qk_xmalloc(*n ? *n : 1);
        memcpy(*obj, LLVMGetBufferStart(mb), *n);
        LLVMDisposeMemoryBuffer(mb);
        r = 0;
    }
    if (mod)
        LLVMDisposeModule(mod);
    LLVMContextDispose(ctx);
    LLVMDisposeTargetMachine(tm);
    return r;
}

/* Result of one symbol lookup. The lookup API reports through a callback;
 * with LLJIT's in-place dispatcher it runs before the call returns, but
 * nothing promises that, so the caller waits for done. */
typedef struct lookup_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    LLVMErrorRef err;
    LLVMOrcExecutorAddress addr;
} lookup_wait;

static void lookup_done(LLVMErrorRef err, LLVMOrcCSymbolMapPairs res, size_t n, void *ctx)
{
    lookup_wait *w = ctx;
    pthread_mutex_lock(&w->mu);
    w->err = err;
    if (!err && n > 0)
        w->addr = res[0].Sym.Address;
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Address of sym in jd (caller holds s->mu). */
static LLVMErrorRef lookup_in(llvm_state *s, LLVMOrcJITDylibRef jd, const char *sym, LLVMOrcExecutorAddress *addr)
{
    lookup_wait w = {.done = 0};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    LLVMOrcCJITDylibSearchOrderElement order = {jd, LLVMOrcJITDylibLookupFlagsMatchExportedSymbolsOnly};
    LLVMOrcCLookupSetElement want = {LLVMOrcLLJITMangleAndIntern(s->jit, sym), /* owned by the lookup */
                                     LLVMOrcSymbolLookupFlagsRequiredSymbol};
    LLVMOrcExecutionSessionLookup(LLVMOrcLLJITGetExecutionSession(s->jit), LLVMOrcLookupKindStatic, &order, 1,
                                  &want, 1, lookup_done, &w);
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    *addr = w.addr;
    return w.err;
}

/* A fresh JITDylib that resolves process symbols (libc, libm), as the
 * main JITDylib does (caller holds s->mu). */
static LLVMErrorRef new_dylib(llvm_state *s, LLVMOrcJITDylibRef *jd)
{
    char name[64];
    snprintf(name, sizeof name, "qk_kernel_%ld", s->next_id++);
    *jd = LLVMOrcExecutionSessionCreateBareJITDylib(LLVMOrcLLJITGetExecutionSession(s->jit), name);
    LLVMOrcDefinitionGeneratorRef gen = NULL;
    LLVMErrorRef e =
        LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(s->jit), NULL, NULL);
    if (!e)
        LLVMOrcJITDylibAddGenerator(*jd, gen); /* owned by jd */
    return e;
}

/* Links an object made by llvm_compile_obj (here or in an earlier process
 * with the same obj_tag) and looks its entry point up. */
static int llvm_load_obj(void *state, const tir_func *f, const void *obj, size_t n, qk_code *out, char *err,
                         size_t errsz)
{
    llvm_state *s = state;
    if (!s->jit)
        return cannot_run(s, err, errsz);
    char sym[160];
    entry_symbol(f, sym, sizeof sym);
    LLVMMemoryBufferRef mb = LLVMCreateMemoryBufferWithMemoryRangeCopy(obj, n, sym);
    LLVMOrcResourceTrackerRef rt = NULL;
    LLVMOrcJITDylibRef jd = NULL;
    LLVMOrcExecutorAddress addr = 0;
    pthread_mutex_lock(&s->mu);
    LLVMErrorRef e = new_dylib(s, &jd);
    if (!e) {
        rt = LLVMOrcJITDylibCreateResourceTracker(jd);
        e = LLVMOrcLLJITAddObjectFileWithRT(s->jit, rt, mb); /* owns mb */
        mb = NULL;
    }
    if (!e)
        e = lookup_in(s, jd, sym, &addr);
    if (e && rt) {
        LLVMErrorRef e2 = LLVMOrcResourceTrackerRemove(rt);
        if (e2)
            LLVMConsumeError(e2);
        LLVMOrcReleaseResourceTracker(rt);
    }
    pthread_mutex_unlock(&s->mu);
    if (mb)
        LLVMDisposeMemoryBuffer(mb);
    if (e)
        return llvm_take_error(e, "JIT linking failed", err, errsz);
    llvm_code *c = qk_xcalloc(1, sizeof *c);
    c->rt = rt;
    out->fn = (void *)(uintptr_t)addr;
    out->priv = c;
    return 0;
}

static int llvm_compile(void *state, const tir_func *f, qk_code *out, char *err, size_t errsz)
{
    void *obj = NULL;
    size_t n = 0;
    int r = llvm_compile_obj(state, f, &obj, &n, err, errsz);
    if (r == 0)
        r = llvm_load_obj(state, f, obj, n, out, err, errsz);
    free(obj);
    return r;
}

static const char *llvm_obj_tag(void *state)
{
    return ((llvm_state *)state)->tag;
}

/* Frees one kernel's code. Its (now empty) JITDylib stays until the JIT
 * is disposed: the C API cannot remove a JITDylib. */
static void llvm_release(void *state, qk_code *code)
{
    llvm_state *s = state;
    llvm_code *c = code ? code->priv : NULL;
    if (!c)
        return;
    pthread_mutex_lock(&s->mu);
    LLVMErrorRef e = LLVMOrcResourceTrackerRemove(c->rt);
    if (e)
        LLVMConsumeError(e);
    LLVMOrcReleaseResourceTracker(c->rt);
    pthread_mutex_unlock(&s->mu);
    free(c);
    code->priv = NULL;
    code->fn = NULL;
}

static int emit_text(const llvm_tm_desc *d, const tir_func *f, qk_emit_stage stage, qk_buf *out, char *err,
                     size_t errsz)
{
    LLVMTargetMachineRef tm = llvm_make_tm(d, err, errsz);
    if (!tm)
        return -1;
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef mod = llvm_build_module(ctx, f, f->name, d, tm, err, errsz);
    int r = -1;
    if (mod && stage == QK_EMIT_LLVM) {
        char *s = LLVMPrintModuleToString(mod);
        qk_buf_puts(out, s);
        LLVMDisposeMessage(s);
        r = 0;
    } else if (mod) {
        LLVMMemoryBufferRef mb = NULL;
        char *msg = NULL;
        if (LLVMTargetMachineEmitToMemoryBuffer(tm, mod, LLVMAssemblyFile, &msg, &mb)) {
            snprintf(err, errsz, "assembly emission failed: %s", msg ? msg : "?");
            LLVMDisposeMessage(msg);
        } else {
            qk_buf_printf(out, "%.*s", (int)LLVMGetBufferSize(mb), LLVMGetBufferStart(mb));
            LLVMDisposeMemoryBuffer(mb);
            r = 0;
        }
    }
    if (mod)
        LLVMDisposeModule(mod);
    LLVMContextDispose(ctx);
    LLVMDisposeTargetMachine(tm);
    return r;
}

/* state may be NULL: then the host target is used. */
static int llvm_emit(void *state, const tir_func *f, qk_emit_stage stage, qk_buf *out, char *err, size_t errsz)
{
    if (stage != QK_EMIT_LLVM && stage != QK_EMIT_ASM) {
        snprintf(err, errsz, "the LLVM backend emits 'llvm' and 'asm' text only");
        return -1;
    }
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    if (state)
        return emit_text(&((llvm_state *)state)->tm, f, stage, out, err, errsz);
    qk_target host;
    llvm_tm_desc d;
    qk_target_host(&host);
    if (llvm_describe_target(&host, &d, err, errsz))
        return -1;
    int r = emit_text(&d, f, stage, out, err, errsz);
    free(d.features);
    return r;
}

const qk_backend qk_backend_llvm = {
    .name = "llvm",
    .create = llvm_create,
    .destroy = llvm_destroy,
    .compile = llvm_compile,
    .release = llvm_release,
    .emit = llvm_emit,
    .launch = NULL,
    .obj_tag = llvm_obj_tag,
    .compile_obj = llvm_compile_obj,
    .load_obj = llvm_load_obj,
    .aot_object = llvm_aot_object,
};

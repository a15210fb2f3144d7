/* llvm_jit.c — the CPU backend's driver: target machines for the host and
 * the named x86 presets, the O3 pipeline (new pass manager), one ORC LLJIT
 * per context with one resource tracker per kernel, and text emission for
 * `qkc emit --stage=llvm|asm`.
 *
 * Thread safety: each compile builds its module in its own LLVM context and
 * runs O3 with its own target machine; adding to the JIT and looking the
 * symbol up happen under the state's mutex (unsynchronized add+lookup on
 * one LLJIT crashes, see ENVIRONMENT.md). */
#include "backends/llvm/llvm_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

typedef struct llvm_state {
    LLVMOrcLLJITRef jit;
    pthread_mutex_t mu;
    llvm_tm_desc tm;
    atomic_long next_id;
} llvm_state;

typedef struct llvm_code {
    LLVMOrcResourceTrackerRef rt;
} llvm_code;

/* Converts an LLVMErrorRef into a message in err (consumes it). */
static int take_error(LLVMErrorRef e, const char *what, char *err, size_t errsz)
{
    char *m = LLVMGetErrorMessage(e);
    snprintf(err, errsz, "%s: %s", what, m);
    LLVMDisposeErrorMessage(m);
    return -1;
}

static int describe_target(const qk_target *t, llvm_tm_desc *d, char *err, size_t errsz)
{
    memset(d, 0, sizeof *d);
    if (t->kind != QK_TARGET_CPU) {
        snprintf(err, errsz, "the LLVM backend compiles CPU targets; '%s' is a GPU target", t->name);
        return -1;
    }
    char *triple = LLVMGetDefaultTargetTriple();
    snprintf(d->triple, sizeof d->triple, "%s", triple);
    LLVMDisposeMessage(triple);
    if (strcmp(t->name, "host") == 0) {
        char *cpu = LLVMGetHostCPUName(), *feat = LLVMGetHostCPUFeatures();
        snprintf(d->cpu, sizeof d->cpu, "%s", cpu);
        d->features = qk_xstrdup(feat);
        LLVMDisposeMessage(cpu);
        LLVMDisposeMessage(feat);
    } else { /* presets: the CPU name carries the features */
        snprintf(d->cpu, sizeof d->cpu, "%s", t->name);
        d->features = qk_xstrdup("");
    }
    return 0;
}

static LLVMTargetMachineRef make_tm(const llvm_tm_desc *d, char *err, size_t errsz)
{
    LLVMTargetRef target;
    char *msg = NULL;
    if (LLVMGetTargetFromTriple(d->triple, &target, &msg)) {
        snprintf(err, errsz, "no LLVM target for %s: %s", d->triple, msg ? msg : "?");
        LLVMDisposeMessage(msg);
        return NULL;
    }
    return LLVMCreateTargetMachine(target, d->triple, d->cpu, d->features, LLVMCodeGenLevelAggressive, LLVMRelocPIC,
                                   LLVMCodeModelJITDefault);
}

static int llvm_create(const qk_target *t, void **out, char *err, size_t errsz)
{
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    llvm_state *s = qk_xcalloc(1, sizeof *s);
    if (describe_target(t, &s->tm, err, errsz)) {
        free(s);
        return -1;
    }
    LLVMTargetMachineRef tm = make_tm(&s->tm, err, errsz);
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
        return take_error(e, "cannot create the JIT", err, errsz);
    }
    pthread_mutex_init(&s->mu, NULL);
    *out = s;
    return 0;
}

static void llvm_destroy(void *state)
{
    llvm_state *s = state;
    if (!s)
        return;
    LLVMErrorRef e = LLVMOrcDisposeLLJIT(s->jit);
    if (e)
        LLVMConsumeError(e);
    pthread_mutex_destroy(&s->mu);
    free(s->tm.features);
    free(s);
}

/* Builds, verifies and optimizes f's module in ctx. */
static LLVMModuleRef build_module(LLVMContextRef ctx, const tir_func *f, const char *sym, const llvm_tm_desc *d,
                                  LLVMTargetMachineRef tm, char *err, size_t errsz)
{
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
    LLVMErrorRef e = LLVMRunPasses(mod, "default<O3>", tm, opts);
    LLVMDisposePassBuilderOptions(opts);
    if (e) {
        take_error(e, "optimization failed", err, errsz);
        LLVMDisposeModule(mod);
        return NULL;
    }
    return mod;
}

static int llvm_compile(void *state, const tir_func *f, qk_code *out, char *err, size_t errsz)
{
    llvm_state *s = state;
    char sym[160];
    snprintf(sym, sizeof sym, "qk_%ld_%s", (long)atomic_fetch_add(&s->next_id, 1), f->name);
    LLVMTargetMachineRef tm = make_tm(&s->tm, err, errsz);
    if (!tm)
        return -1;
    LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
    LLVMModuleRef mod = build_module(LLVMOrcThreadSafeContextGetContext(tsc), f, sym, &s->tm, tm, err, errsz);
    LLVMDisposeTargetMachine(tm);
    if (!mod) {
        LLVMOrcDisposeThreadSafeContext(tsc);
        return -1;
    }
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(mod, tsc); /* owns mod */
    LLVMOrcDisposeThreadSafeContext(tsc);
    pthread_mutex_lock(&s->mu);
    LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(s->jit);
    LLVMOrcResourceTrackerRef rt = LLVMOrcJITDylibCreateResourceTracker(jd);
    LLVMErrorRef e = LLVMOrcLLJITAddLLVMIRModuleWithRT(s->jit, rt, tsm); /* owns tsm */
    LLVMOrcExecutorAddress addr = 0;
    if (!e)
        e = LLVMOrcLLJITLookup(s->jit, &addr, sym);
    pthread_mutex_unlock(&s->mu);
    if (e) {
        LLVMOrcReleaseResourceTracker(rt);
        return take_error(e, "JIT compilation failed", err, errsz);
    }
    llvm_code *c = qk_xcalloc(1, sizeof *c);
    c->rt = rt;
    out->fn = (void *)(uintptr_t)addr;
    out->priv = c;
    return 0;
}

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
    LLVMTargetMachineRef tm = make_tm(d, err, errsz);
    if (!tm)
        return -1;
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef mod = build_module(ctx, f, f->name, d, tm, err, errsz);
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
    if (describe_target(&host, &d, err, errsz))
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
};

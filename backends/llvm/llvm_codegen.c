/* llvm_codegen.c — tiled IR -> LLVM IR through the LLVM-C API.
 *
 * A mechanical lowering: every TIR value node becomes one or a few LLVM
 * instructions of the same lane count (lanes == 1 is a scalar), loops
 * become header/body/latch blocks with a phi for the induction variable,
 * VAR nodes become allocas in the entry block (promoted to registers by
 * the optimization pipeline of llvm_jit.c), masked loads and stores use
 * llvm.masked.*, gathers llvm.masked.gather over i8 GEPs of the per-lane
 * offsets. Nothing
 * here knows about formats or kernels. Target-specific intrinsics (x86
 * vpdpbusd, AArch64 sdot) are used only where the function's target
 * features have them, each with a generic fallback. */
#include "backends/llvm/llvm_internal.h"

#include <string.h>

/* A constant table of lut's generic path: its entries (the TIR node's),
 * their count and scalar type, and the global that holds them. */
typedef struct gen_lut {
    const int32_t *ents;
    int n, s;
    LLVMValueRef tab;
} gen_lut;

typedef struct gen {
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMBuilderRef alloca_b;
    LLVMValueRef fn;
    const tir_func *f;
    const llvm_tm_desc *tm;
    LLVMValueRef *val; /* node id -> value */
    uint8_t *uses;     /* node id -> the USE_* kinds of its readers */
    /* The constant tables of lut's generic path, reused by content: a
     * kernel looks one table up in every step of its unrolled loop, and
     * one global each would leave merging them to a module pass. */
    gen_lut luts[16];
    int nluts;
} gen;

static LLVMTypeRef scalar_type(gen *g, int s)
{
    switch (s) {
    case TS_I1: return LLVMInt1TypeInContext(g->ctx);
    case TS_I8: return LLVMInt8TypeInContext(g->ctx);
    case TS_I16: return LLVMInt16TypeInContext(g->ctx);
    case TS_I32: return LLVMInt32TypeInContext(g->ctx);
    case TS_I64: return LLVMInt64TypeInContext(g->ctx);
    case TS_F32: return LLVMFloatTypeInContext(g->ctx);
    case TS_PTR: return LLVMPointerTypeInContext(g->ctx, 0);
    default: return LLVMVoidTypeInContext(g->ctx);
    }
}

static LLVMTypeRef type_of(gen *g, tir_type t)
{
    LLVMTypeRef s = scalar_type(g, t.s);
    return t.lanes > 1 ? LLVMVectorType(s, t.lanes) : s;
}

static LLVMTypeRef vec1(gen *g, tir_type t)
{
    return LLVMVectorType(scalar_type(g, t.s), t.lanes);
}

/* Declaration of an overloaded intrinsic. */
static LLVMValueRef intrinsic(gen *g, const char *name, LLVMTypeRef *tys, int n, LLVMTypeRef *fnty)
{
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    if (!id)
        qk_bug("no intrinsic %s", name);
    *fnty = LLVMIntrinsicGetType(g->ctx, id, tys, (size_t)n);
    return LLVMGetIntrinsicDeclaration(g->mod, id, tys, (size_t)n);
}

static LLVMValueRef call_intr(gen *g, const char *name, LLVMTypeRef ty, LLVMValueRef *args, int nargs)
{
    LLVMTypeRef fnty;
    LLVMValueRef fn = intrinsic(g, name, &ty, 1, &fnty);
    return LLVMBuildCall2(g->b, fnty, fn, args, (unsigned)nargs, "");
}

static LLVMValueRef v(gen *g, int id)
{
    return g->val[id];
}

static LLVMValueRef const_node(gen *g, const tir_node *n)
{
    LLVMTypeRef s = scalar_type(g, n->type.s);
    int lanes = n->type.lanes;
    LLVMValueRef el[256];
    for (int i = 0; i < lanes && i < 256; i++) {
        if (n->type.s == TS_F32)
            el[i] = LLVMConstReal(s, n->fimm);
        else
            el[i] = LLVMConstInt(s, (unsigned long long)(n->shuf ? (int64_t)n->shuf[i] : n->imm), 1);
    }
    return lanes > 1 ? LLVMConstVector(el, (unsigned)lanes) : el[0];
}

static LLVMValueRef splat(gen *g, LLVMValueRef x, int lanes)
{
    LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(x), (unsigned)lanes);
    LLVMValueRef ins = LLVMBuildInsertElement(g->b, LLVMGetPoison(vt), x,
                                              LLVMConstInt(LLVMInt32TypeInContext(g->ctx), 0, 0), "");
    LLVMValueRef zero = LLVMConstNull(LLVMVectorType(LLVMInt32TypeInContext(g->ctx), (unsigned)lanes));
    return LLVMBuildShuffleVector(g->b, ins, LLVMGetPoison(vt), zero, "");
}

static LLVMValueRef shuffle(gen *g, const tir_node *n)
{
    LLVMValueRef src = v(g, n->a[0]);
    tir_type st = g->f->nodes[n->a[0]].type;
    if (st.lanes == 1) { /* every index is 0: a splat */
        return n->type.lanes > 1 ? splat(g, src, n->type.lanes) : src;
    }
    LLVMValueRef idx[256];
    LLVMTypeRef i32 = LLVMInt32TypeInContext(g->ctx);
    for (int i = 0; i < n->type.lanes; i++)
        idx[i] = LLVMConstInt(i32, (unsigned long long)n->shuf[i], 0);
    if (n->type.lanes == 1)
        return LLVMBuildExtractElement(g->b, src, idx[0], "");
    return LLVMBuildShuffleVector(g->b, src, LLVMGetPoison(LLVMTypeOf(src)), LLVMConstVector(idx, n->type.lanes), "");
}

/* Sum of the lanes by halving (lanes are a power of two), else serially. */
static LLVMValueRef hadd(gen *g, LLVMValueRef x, int lanes)
{
    LLVMTypeRef i32 = LLVMInt32TypeInContext(g->ctx);
    if (lanes & (lanes - 1)) {
        LLVMValueRef s = LLVMBuildExtractElement(g->b, x, LLVMConstInt(i32, 0, 0), "");
        for (int i = 1; i < lanes; i++)
            s = LLVMBuildFAdd(g->b, s, LLVMBuildExtractElement(g->b, x, LLVMConstInt(i32, (unsigned)i, 0), ""), "");
        return s;
    }
    while (lanes > 1) {
        int h = lanes / 2;
        LLVMValueRef lo[128], hi[128];
        for (int i = 0; i < h; i++) {
            lo[i] = LLVMConstInt(i32, (unsigned)i, 0);
            hi[i] = LLVMConstInt(i32, (unsigned)(i + h), 0);
        }
        LLVMValueRef a = h > 1 ? LLVMBuildShuffleVector(g->b, x, LLVMGetPoison(LLVMTypeOf(x)), LLVMConstVector(lo, h), "")
                               : LLVMBuildExtractElement(g->b, x, lo[0], "");
        LLVMValueRef b = h > 1 ? LLVMBuildShuffleVector(g->b, x, LLVMGetPoison(LLVMTypeOf(x)), LLVMConstVector(hi, h), "")
                               : LLVMBuildExtractElement(g->b, x, hi[0], "");
        x = LLVMBuildFAdd(g->b, a, b, "");
        lanes = h;
    }
    return x;
}

static LLVMValueRef address(gen *g, const tir_node *n)
{
    LLVMValueRef off = v(g, n->a[1]);
    return LLVMBuildGEP2(g->b, LLVMInt8TypeInContext(g->ctx), v(g, n->a[0]), &off, 1, "");
}

static LLVMValueRef mask_vec(gen *g, int id)
{
    LLVMValueRef m = v(g, id);
    if (g->f->nodes[id].type.lanes > 1)
        return m;
    return LLVMBuildInsertElement(g->b, LLVMGetPoison(LLVMVectorType(LLVMInt1TypeInContext(g->ctx), 1)), m,
                                  LLVMConstInt(LLVMInt32TypeInContext(g->ctx), 0, 0), "");
}

static LLVMValueRef load(gen *g, const tir_node *n)
{
    LLVMValueRef p = address(g, n);
    if (n->a[2] < 0) {
        LLVMValueRef l = LLVMBuildLoad2(g->b, type_of(g, n->type), p, "");
        LLVMSetAlignment(l, 1);
        return l;
    }
    LLVMTypeRef vt = vec1(g, n->type), tys[2] = {vt, LLVMPointerTypeInContext(g->ctx, 0)}, fnty;
    LLVMValueRef fn = intrinsic(g, "llvm.masked.load", tys, 2, &fnty);
    LLVMValueRef args[4] = {p, LLVMConstInt(LLVMInt32TypeInContext(g->ctx), 1, 0), mask_vec(g, n->a[2]),
                            LLVMConstNull(vt)};
    LLVMValueRef r = LLVMBuildCall2(g->b, fnty, fn, args, 4, "");
    if (n->type.lanes == 1)
        r = LLVMBuildExtractElement(g->b, r, LLVMConstInt(LLVMInt32TypeInContext(g->ctx), 0, 0), "");
    return r;
}

/* Lane l reads one scalar at ptr + offsets[l] (byte offsets, alignment 1):
 * llvm.masked.gather over a vector of i8 GEPs; one lane is a plain load. */
static LLVMValueRef gather(gen *g, const tir_node *n)
{
    if (n->type.lanes == 1)
        return load(g, n);
    LLVMTypeRef i32 = LLVMInt32TypeInContext(g->ctx), vt = vec1(g, n->type);
    LLVMValueRef off = v(g, n->a[1]);
    LLVMValueRef ptrs = LLVMBuildGEP2(g->b, LLVMInt8TypeInContext(g->ctx), v(g, n->a[0]), &off, 1, "");
    LLVMTypeRef tys[2] = {vt, LLVMTypeOf(ptrs)}, fnty;
    LLVMValueRef fn = intrinsic(g, "llvm.masked.gather", tys, 2, &fnty);
    LLVMValueRef mask;
    if (n->a[2] >= 0) {
        mask = v(g, n->a[2]);
    } else {
        LLVMValueRef one[256];
        for (int i = 0; i < n->type.lanes; i++)
            one[i] = LLVMConstInt(LLVMInt1TypeInContext(g->ctx), 1, 0);
        mask = LLVMConstVector(one, (unsigned)n->type.lanes);
    }
    LLVMValueRef args[4] = {ptrs, LLVMConstInt(i32, 1, 0), mask, LLVMConstNull(vt)};
    return LLVMBuildCall2(g->b, fnty, fn, args, 4, "");
}

static void store(gen *g, const tir_node *n)
{
    LLVMValueRef p = address(g, n), x = v(g, n->a[2]);
    tir_type t = g->f->nodes[n->a[2]].type;
    if (n->a[3] < 0) {
        LLVMSetAlignment(LLVMBuildStore(g->b, x, p), 1);
        return;
    }
    if (t.lanes == 1)
        x = LLVMBuildInsertElement(g->b, LLVMGetPoison(vec1(g, t)), x, LLVMConstInt(LLVMInt32TypeInContext(g->ctx), 0, 0),
                                   "");
    LLVMTypeRef tys[2] = {vec1(g, t), LLVMPointerTypeInContext(g->ctx, 0)}, fnty;
    LLVMValueRef fn = intrinsic(g, "llvm.masked.store", tys, 2, &fnty);
    LLVMValueRef args[4] = {x, p, LLVMConstInt(LLVMInt32TypeInContext(g->ctx), 1, 0), mask_vec(g, n->a[3])};
    LLVMBuildCall2(g->b, fnty, fn, args, 4, "");
}

/* llvm.prefetch: read, keep in every level (x86 prefetcht0), data. */
static void prefetch(gen *g, const tir_node *n)
{
    LLVMTypeRef i32 = LLVMInt32TypeInContext(g->ctx), ptr = LLVMPointerTypeInContext(g->ctx, 0), fnty;
    LLVMValueRef fn = intrinsic(g, "llvm.prefetch", &ptr, 1, &fnty);
    LLVMValueRef args[4] = {address(g, n), LLVMConstInt(i32, 0, 0), LLVMConstInt(i32, 3, 0), LLVMConstInt(i32, 1, 0)};
    LLVMBuildCall2(g->b, fnty, fn, args, 4, "");
}

/* TIR_FENCE: an empty inline asm with side effects, which LLVM's
 * machine scheduler treats as a region boundary and emits as nothing. */
static void fence(gen *g)
{
    LLVMTypeRef fnty = LLVMFunctionType(LLVMVoidTypeInContext(g->ctx), NULL, 0, 0);
    LLVMValueRef asm_ = LLVMGetInlineAsm(fnty, "", 0, "", 0, 1, 0, LLVMInlineAsmDialectATT, 0);
    LLVMBuildCall2(g->b, fnty, asm_, NULL, 0, "");
}

static LLVMTypeRef half_type(gen *g, int lanes)
{
    LLVMTypeRef h = LLVMHalfTypeInContext(g->ctx);
    return lanes > 1 ? LLVMVectorType(h, lanes) : h;
}

/* Unary and conversion ops. */
static LLVMValueRef unary(gen *g, const tir_node *n)
{
    LLVMValueRef a = v(g, n->a[0]);
    LLVMTypeRef t = type_of(g, n->type);
    switch (n->op) {
    case TIR_FNEG: return LLVMBuildFNeg(g->b, a, "");
    case TIR_FABS: return call_intr(g, "llvm.fabs", t, &a, 1);
    case TIR_FSQRT: return call_intr(g, "llvm.sqrt", t, &a, 1);
    case TIR_FEXP: return call_intr(g, "llvm.exp", t, &a, 1);
    case TIR_FRINT: return call_intr(g, "llvm.roundeven", t, &a, 1);
    case TIR_ZEXT: return LLVMBuildZExt(g->b, a, t, "");
    case TIR_SEXT: return LLVMBuildSExt(g->b, a, t, "");
    case TIR_TRUNC: return LLVMBuildTrunc(g->b, a, t, "");
    case TIR_SITOFP: return LLVMBuildSIToFP(g->b, a, t, "");
    case TIR_UITOFP: return LLVMBuildUIToFP(g->b, a, t, "");
    case TIR_FPTOSI: return LLVMBuildFPToSI(g->b, a, t, "");
    case TIR_BITCAST: return LLVMBuildBitCast(g->b, a, t, "");
    case TIR_H2F: return LLVMBuildFPExt(g->b, LLVMBuildBitCast(g->b, a, half_type(g, n->type.lanes), ""), t, "");
    case TIR_F2H: return LLVMBuildBitCast(g->b, LLVMBuildFPTrunc(g->b, a, half_type(g, n->type.lanes), ""), t, "");
    case TIR_POPCNT: return call_intr(g, "llvm.ctpop", t, &a, 1);
    case TIR_SPLAT: return n->type.lanes > 1 ? splat(g, a, n->type.lanes) : a;
    case TIR_HADD: return hadd(g, a, g->f->nodes[n->a[0]].type.lanes);
    case TIR_EXTRACT:
        return LLVMBuildExtractElement(g->b, a, LLVMConstInt(LLVMInt32TypeInContext(g->ctx), (unsigned)n->imm, 0), "");
    default: qk_bug("unary %s", tir_op_name(n->op));
    }
}

static int has_feature(gen *g, const char *feat);

/* Kinds of use of a node (gen.uses). USE_COMPARE: an integer compare
 * reads it; single bits that are compared stay with LLVM, which tests
 * them in place (vptestmb) and folds the test into the compare's user.
 * USE_BITS: a bitwise op or shift reads it; LLVM fuses such chains on
 * bytes (vpternlog, one affine for shift-and-shift) better alone. */
enum { USE_COMPARE = 1, USE_BITS = 2 };

/* Fills g->uses in one pass over the nodes. */
static void note_uses(gen *g)
{
    for (int i = 0; i < g->f->nnodes; i++) {
        int op = g->f->nodes[i].op;
        int kind = op == TIR_IEQ || op == TIR_ILT ? USE_COMPARE
                   : op == TIR_AND || op == TIR_OR || op == TIR_XOR || op == TIR_SHL || op == TIR_SHR || op == TIR_SAR
                       ? USE_BITS
                       : 0;
        for (int k = 0; kind && k < 2; k++) /* all of these have two operands */
            if (g->f->nodes[i].a[k] >= 0)
                g->uses[g->f->nodes[i].a[k]] |= (uint8_t)kind;
    }
}

/* The kinds of use of node n among `kinds`. */
static int used_as(gen *g, const tir_node *n, int kinds)
{
    return g->uses[n - g->f->nodes] & kinds;
}

static int64_t const_lane(gen *g, int id, int i)
{
    const tir_node *c = &g->f->nodes[id];
    if (c->op != TIR_CONST || c->type.s == TS_F32)
        return -1;
    return c->shuf ? c->shuf[i] : c->imm;
}

/* A call of the non-overloaded intrinsic named by fmt with its vector
 * width in bits (fmt's one %d); NULL when this LLVM lacks it. */
static LLVMValueRef call_sized(gen *g, const char *fmt, int bits, LLVMValueRef *args, unsigned n)
{
    char name[64];
    snprintf(name, sizeof name, fmt, bits);
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    if (!id)
        return NULL;
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(g->mod, id, NULL, 0);
    return LLVMBuildCall2(g->b, LLVMIntrinsicGetType(g->ctx, id, NULL, 0), fn, args, n, "");
}

/* AND(SHR(x, s), m) on bytes, with per-lane constant shifts s < 8 and
 * masks m that keep no bit shifted in from the next byte: one vpmultishiftqb
 * (AVX-512 VBMI; byte i takes the 8 bits of its qword from bit 8 (i % 8) +
 * s_i) and the AND, in place of LLVM's widen, vpsrlvw, narrow for shifts
 * that differ per lane. NULL where it does not apply. */
static LLVMValueRef and_shifted_bytes(gen *g, const tir_node *n)
{
    int L = n->type.lanes;
    if (n->type.s != TS_I8 || (L != 16 && L != 32 && L != 64) || !has_feature(g, "+avx512vbmi") ||
        (L < 64 && !has_feature(g, "+avx512vl")))
        return NULL;
    for (int side = 0; side < 2; side++) {
        const tir_node *sh = &g->f->nodes[n->a[side]];
        int mask = n->a[1 - side];
        if (sh->op != TIR_SHR || sh->type.s != TS_I8 || sh->type.lanes != L)
            continue;
        LLVMValueRef ctrl[64];
        int ok = 1, varies = 0;
        for (int i = 0; i < L && ok; i++) {
            int64_t s = const_lane(g, sh->a[1], i), m = const_lane(g, mask, i);
            ok = s >= 0 && s < 8 && m >= 0 && ((m & 0xff) >> (8 - s)) == 0;
            varies |= s != const_lane(g, sh->a[1], 0);
            ctrl[i] = LLVMConstInt(LLVMInt8TypeInContext(g->ctx), (unsigned)(8 * (i % 8) + (ok ? s : 0)), 0);
        }
        if (!ok || !varies || used_as(g, n, USE_COMPARE)) /* a uniform shift is one instruction already */
            continue;
        LLVMValueRef args[2] = {LLVMConstVector(ctrl, (unsigned)L), v(g, sh->a[0])};
        LLVMValueRef r = call_sized(g, "llvm.x86.avx512.pmultishift.qb.%d", L * 8, args, 2);
        return r ? LLVMBuildAnd(g->b, r, v(g, mask), "") : NULL;
    }
    return NULL;
}

/* Byte shift sh (SHR or SHL of i8 lanes by s) done in 16-bit lanes: each
 * byte's s bits nearest its neighbour hold that neighbour's bits (the
 * caller masks them off). */
static LLVMValueRef word_shift(gen *g, const tir_node *sh, int s)
{
    int L = sh->type.lanes;
    LLVMTypeRef i16 = LLVMInt16TypeInContext(g->ctx);
    LLVMValueRef amount[32];
    for (int i = 0; i < L / 2; i++)
        amount[i] = LLVMConstInt(i16, (unsigned long long)s, 0);
    LLVMValueRef w = LLVMBuildBitCast(g->b, v(g, sh->a[0]), LLVMVectorType(i16, (unsigned)L / 2), "");
    LLVMValueRef k = LLVMConstVector(amount, (unsigned)L / 2);
    w = sh->op == TIR_SHR ? LLVMBuildLShr(g->b, w, k, "") : LLVMBuildShl(g->b, w, k, "");
    return LLVMBuildBitCast(g->b, w, type_of(g, sh->type), "");
}

/* AND(SHR(x, s), m) or AND(SHL(x, s), m) on bytes, with one constant
 * shift 0 < s < 8 and one constant mask m for every lane (2-bit and
 * 1-bit codes fed to a dot product). x86 has no byte shift: LLVM lowers
 * one to a GFNI vgf2p8affineqb where it can, and the AND follows.
 *
 * Where m clears the s bits a 16-bit shift brings in from the
 * neighbouring byte, the shift is done in 16-bit lanes (vpsrlw/vpsllw)
 * and the AND kept. Else one vgf2p8affineqb, whose 8x8 bit matrix moves
 * each kept bit to its place (result bit i = parity of x AND matrix byte
 * 7 - i), does both. The first is preferred although it is one
 * instruction more: on Zen 4 a zmm vgf2p8affineqb takes the pipes of
 * vpdpbusd for as long as a vpdpbusd does (measured: a pair of them
 * costs two vpdpbusd, a vpsrlw with a vpdpbusd 1.3), and a 1-bit code's
 * dot product spends a shift and a vpdpbusd per 4 codes of a row
 * (the loop of 1-bit codes with f16 scales and zeros: 161 cycles an
 * iteration with the affine, 141 with the 16-bit shift;
 * docs/performance.md). NULL where neither applies. */
static LLVMValueRef affine_bytes(gen *g, const tir_node *n)
{
    int L = n->type.lanes;
    if (n->type.s != TS_I8 || (L != 16 && L != 32 && L != 64) || !has_feature(g, "+gfni") ||
        (L == 64 && !has_feature(g, "+avx512bw")) || (L == 32 && !has_feature(g, "+avx")))
        return NULL;
    for (int side = 0; side < 2; side++) {
        const tir_node *sh = &g->f->nodes[n->a[side]];
        int mask = n->a[1 - side];
        if ((sh->op != TIR_SHR && sh->op != TIR_SHL) || sh->type.s != TS_I8 || sh->type.lanes != L)
            continue;
        int64_t s = const_lane(g, sh->a[1], 0), m = const_lane(g, mask, 0);
        int ok = s > 0 && s < 8 && m >= 0;
        for (int i = 1; i < L && ok; i++)
            ok = const_lane(g, sh->a[1], i) == s && const_lane(g, mask, i) == m;
        if (!ok || used_as(g, n, USE_COMPARE | USE_BITS))
            continue;
        int crossing = sh->op == TIR_SHR ? (int)(m & 0xff) >> (8 - s) : (int)(m & ((1 << s) - 1));
        if (!crossing) /* the bits that cross between bytes are masked off */
            return LLVMBuildAnd(g->b, word_shift(g, sh, (int)s), v(g, mask), "");
        uint64_t A = 0; /* row i (result bit i) is byte 7 - i */
        for (int i = 0; i < 8; i++) {
            int from = sh->op == TIR_SHR ? i + (int)s : i - (int)s;
            if ((m >> i & 1) && from >= 0 && from < 8)
                A |= (uint64_t)1 << (8 * (7 - i) + from);
        }
        LLVMValueRef bytes[64];
        for (int i = 0; i < L; i++)
            bytes[i] = LLVMConstInt(LLVMInt8TypeInContext(g->ctx), A >> (8 * (i % 8)) & 0xff, 0);
        LLVMValueRef args[3] = {v(g, sh->a[0]), LLVMConstVector(bytes, (unsigned)L),
                                LLVMConstInt(LLVMInt8TypeInContext(g->ctx), 0, 0)};
        return call_sized(g, "llvm.x86.vgf2p8affineqb.%d", L * 8, args, 3);
    }
    return NULL;
}

static LLVMValueRef binary(gen *g, const tir_node *n)
{
    LLVMValueRef a = v(g, n->a[0]), b = v(g, n->a[1]);
    LLVMValueRef ab[2] = {a, b};
    switch (n->op) {
    case TIR_ADD: return LLVMBuildAdd(g->b, a, b, "");
    case TIR_SUB: return LLVMBuildSub(g->b, a, b, "");
    case TIR_MUL: return LLVMBuildMul(g->b, a, b, "");
    case TIR_DIV: return LLVMBuildSDiv(g->b, a, b, "");
    case TIR_REM: return LLVMBuildSRem(g->b, a, b, "");
    case TIR_MIN: return LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, a, b, ""), a, b, "");
    case TIR_MAX: return LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, LLVMIntSGT, a, b, ""), a, b, "");
    case TIR_SHL: return LLVMBuildShl(g->b, a, b, "");
    case TIR_SHR: return LLVMBuildLShr(g->b, a, b, "");
    case TIR_SAR: return LLVMBuildAShr(g->b, a, b, "");
    case TIR_AND: {
        LLVMValueRef r = and_shifted_bytes(g, n);
        if (!r)
            r = affine_bytes(g, n);
        return r ? r : LLVMBuildAnd(g->b, a, b, "");
    }
    case TIR_OR: return LLVMBuildOr(g->b, a, b, "");
    case TIR_XOR: return LLVMBuildXor(g->b, a, b, "");
    case TIR_FADD: return LLVMBuildFAdd(g->b, a, b, "");
    case TIR_FSUB: return LLVMBuildFSub(g->b, a, b, "");
    case TIR_FMUL: return LLVMBuildFMul(g->b, a, b, "");
    case TIR_FDIV: return LLVMBuildFDiv(g->b, a, b, "");
    case TIR_FMAX: return call_intr(g, "llvm.maxnum", type_of(g, n->type), ab, 2);
    case TIR_FMIN: return call_intr(g, "llvm.minnum", type_of(g, n->type), ab, 2);
    case TIR_ILT: return LLVMBuildICmp(g->b, LLVMIntSLT, a, b, "");
    case TIR_IEQ: return LLVMBuildICmp(g->b, LLVMIntEQ, a, b, "");
    case TIR_FLT: return LLVMBuildFCmp(g->b, LLVMRealOLT, a, b, "");
    default: qk_bug("binary %s", tir_op_name(n->op));
    }
}

static void gen_block(gen *g, int b);

static void gen_loop(gen *g, int id)
{
    const tir_node *n = &g->f->nodes[id];
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(g->b);
    LLVMBasicBlockRef head = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "loop");
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "body");
    LLVMBasicBlockRef exit = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "exit");
    LLVMBuildBr(g->b, head);
    LLVMPositionBuilderAtEnd(g->b, head);
    LLVMValueRef iv = LLVMBuildPhi(g->b, LLVMInt64TypeInContext(g->ctx), n->name ? n->name : "i");
    g->val[id] = iv;
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, iv, v(g, n->a[1]), ""), body, exit);
    LLVMPositionBuilderAtEnd(g->b, body);
    gen_block(g, n->body);
    LLVMValueRef next = LLVMBuildAdd(g->b, iv, v(g, n->a[2]), "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(g->b);
    LLVMBuildBr(g->b, head);
    LLVMValueRef in_v[2] = {v(g, n->a[0]), next};
    LLVMBasicBlockRef in_b[2] = {pre, latch};
    LLVMAddIncoming(iv, in_v, in_b, 2);
    LLVMPositionBuilderAtEnd(g->b, exit);
}

static void gen_if(gen *g, const tir_node *n)
{
    LLVMBasicBlockRef t = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "then");
    LLVMBasicBlockRef e = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "else");
    LLVMBasicBlockRef j = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "join");
    LLVMBuildCondBr(g->b, v(g, n->a[0]), t, e);
    LLVMPositionBuilderAtEnd(g->b, t);
    gen_block(g, n->body);
    LLVMBuildBr(g->b, j);
    LLVMPositionBuilderAtEnd(g->b, e);
    if (n->alt >= 0)
        gen_block(g, n->alt);
    LLVMBuildBr(g->b, j);
    LLVMPositionBuilderAtEnd(g->b, j);
}

/* 1 if the function's target features include feat ("+avx512vnni"). */
static int has_feature(gen *g, const char *feat)
{
    const char *all = g->tm->features ? g->tm->features : "";
    size_t n = strlen(feat);
    for (const char *p = strstr(all, feat); p; p = strstr(p + 1, feat))
        if ((p == all || p[-1] == ',') && (p[n] == ',' || p[n] == 0))
            return 1;
    return 0;
}

/* Lanes [first, first + n) of vector x (n > 1). */
static LLVMValueRef lanes_of(gen *g, LLVMValueRef x, int first, int n)
{
    LLVMValueRef idx[64];
    for (int i = 0; i < n; i++)
        idx[i] = LLVMConstInt(LLVMInt32TypeInContext(g->ctx), (unsigned)(first + i), 0);
    return LLVMBuildShuffleVector(g->b, x, LLVMGetPoison(LLVMTypeOf(x)), LLVMConstVector(idx, (unsigned)n), "");
}

/* The n (a power of two) vectors of w lanes in part[], joined in order
 * (part[] is overwritten). */
static LLVMValueRef concat(gen *g, LLVMValueRef *part, int n, int w)
{
    for (; n > 1; n /= 2, w *= 2) {
        LLVMValueRef idx[256];
        for (int i = 0; i < 2 * w; i++)
            idx[i] = LLVMConstInt(LLVMInt32TypeInContext(g->ctx), (unsigned)i, 0);
        for (int i = 0; i < n / 2; i++)
            part[i] = LLVMBuildShuffleVector(g->b, part[2 * i], part[2 * i + 1], LLVMConstVector(idx, (unsigned)(2 * w)),
                                             "");
    }
    return part[0];
}

/* x86 VNNI: one vpdpbusd (unsigned x signed) on 128/256/512 bits, where
 * the target has it; NULL otherwise. */
static LLVMValueRef dot4_vnni(gen *g, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c, int L)
{
    int vnni = has_feature(g, "+avx512vnni") && (L == 16 || has_feature(g, "+avx512vl"));
    if (!vnni && L == 8 && has_feature(g, "+avxvnni"))
        vnni = 1;
    if (!vnni || (L != 4 && L != 8 && L != 16))
        return NULL;
    char name[48];
    snprintf(name, sizeof name, "llvm.x86.avx512.vpdpbusd.%d", L * 32);
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    if (!id)
        return NULL;
    LLVMTypeRef vt = LLVMVectorType(LLVMInt32TypeInContext(g->ctx), (unsigned)L);
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(g->mod, id, NULL, 0);
    LLVMTypeRef fnty = LLVMIntrinsicGetType(g->ctx, id, NULL, 0);
    LLVMValueRef args[3] = {c, LLVMBuildBitCast(g->b, a, vt, ""), LLVMBuildBitCast(g->b, b, vt, "")};
    return LLVMBuildCall2(g->b, fnty, fn, args, 3, "");
}

/* AArch64 dot product (signed x signed): one sdot per 128 bits (64 bits
 * for 2 lanes), where the target has it; NULL otherwise. */
static LLVMValueRef dot4_sdot(gen *g, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c, int L)
{
    if (!has_feature(g, "+dotprod") || (L & (L - 1)) || L < 2 || L > 64)
        return NULL;
    int step = L == 2 ? 2 : 4;
    LLVMTypeRef tys[2] = {LLVMVectorType(LLVMInt32TypeInContext(g->ctx), (unsigned)step),
                          LLVMVectorType(LLVMInt8TypeInContext(g->ctx), (unsigned)(4 * step))},
                fnty;
    LLVMValueRef fn = intrinsic(g, "llvm.aarch64.neon.sdot", tys, 2, &fnty);
    if (L == step) {
        LLVMValueRef args[3] = {c, a, b};
        return LLVMBuildCall2(g->b, fnty, fn, args, 3, "");
    }
    LLVMValueRef part[16];
    for (int i = 0; i < L / step; i++) {
        LLVMValueRef args[3] = {lanes_of(g, c, i * step, step), lanes_of(g, a, 4 * i * step, 4 * step),
                                lanes_of(g, b, 4 * i * step, 4 * step)};
        part[i] = LLVMBuildCall2(g->b, fnty, fn, args, 3, "");
    }
    return concat(g, part, L / step, step);
}

/* Any target: widening multiplies and pairwise adds, which LLVM turns into
 * pmaddwd-style code on x86 and smull/sadalp-style code on AArch64. */
static LLVMValueRef dot4_widen(gen *g, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c, int L, int sa)
{
    LLVMTypeRef i32 = LLVMInt32TypeInContext(g->ctx), w = LLVMVectorType(i32, (unsigned)(4 * L));
    LLVMValueRef wa = sa ? LLVMBuildSExt(g->b, a, w, "") : LLVMBuildZExt(g->b, a, w, "");
    LLVMValueRef p = LLVMBuildMul(g->b, wa, LLVMBuildSExt(g->b, b, w, ""), "");
    LLVMValueRef idx[4][64];
    for (int l = 0; l < L; l++)
        for (int j = 0; j < 4; j++)
            idx[j][l] = LLVMConstInt(i32, (unsigned long long)(4 * l + j), 0);
    LLVMValueRef sum = c;
    for (int j = 0; j < 4; j++) {
        LLVMValueRef part = L == 1 ? LLVMBuildExtractElement(g->b, p, idx[j][0], "")
                                   : LLVMBuildShuffleVector(g->b, p, LLVMGetPoison(w), LLVMConstVector(idx[j], (unsigned)L), "");
        sum = LLVMBuildAdd(g->b, sum, part, "");
    }
    return sum;
}

/* DOT4: c + per group of 4 byte lanes ext(a) * sext(b), ext by the node's
 * tir_dot_mode. The target's instruction for the mode where it has one,
 * else widening multiplies (exact everywhere). */
static LLVMValueRef dot4(gen *g, const tir_node *n)
{
    int L = n->type.lanes, ss = n->imm == TIR_DOT_SS;
    LLVMValueRef a = v(g, n->a[0]), b = v(g, n->a[1]), c = v(g, n->a[2]);
    LLVMValueRef r = L > 1 ? (ss ? dot4_sdot(g, a, b, c, L) : dot4_vnni(g, a, b, c, L)) : NULL;
    return r ? r : dot4_widen(g, a, b, c, L, ss);
}

/* <w x T> of table entries tab[0..w) (entries past n are 0); T is i8 for
 * byte tables, f32 (from the stored bits) otherwise. With rep16, byte j
 * is tab[j % 16] (vpshufb looks up within each 128-bit lane). */
static LLVMValueRef table_vec(gen *g, int f32, const int32_t *tab, int n, int w, int rep16)
{
    LLVMTypeRef et = f32 ? LLVMInt32TypeInContext(g->ctx) : LLVMInt8TypeInContext(g->ctx);
    LLVMValueRef c[64];
    for (int j = 0; j < w; j++) {
        int k = rep16 ? j % 16 : j;
        c[j] = LLVMConstInt(et, k < n ? (unsigned)tab[k] : 0, 0);
    }
    LLVMValueRef vec = LLVMConstVector(c, (unsigned)w);
    return f32 ? LLVMConstBitCast(vec, LLVMVectorType(LLVMFloatTypeInContext(g->ctx), (unsigned)w)) : vec;
}

/* One permute instruction looking up a w-lane index vector in the n
 * entries of tab, or NULL where the target has none: bytes: vpshufb (16
 * entries), vpermb (w), vpermi2b (2w), AArch64 tbl1 (16) and tbl4 (64);
 * f32: vpermps (w), vpermi2ps (2w). Indices are below n, or *exact is set
 * when the instruction reads them mod n (an x86 permute of n entries). */
static LLVMValueRef lut_part(gen *g, int f32, const int32_t *tab, int n, LLVMValueRef idx, int w, int *exact)
{
    const char *name = NULL;
    int form = 0; /* 0: (table, idx); 1: (lo, idx, hi); 2: tbl4; 3: tbl1 */
    int vl = has_feature(g, "+avx512vl"), bits = w * (f32 ? 32 : 8);
    if (f32) {
        if (n <= w && bits == 512 && has_feature(g, "+avx512f"))
            name = "llvm.x86.avx512.permvar.sf.512";
        else if (n <= w && bits == 256 && has_feature(g, "+avx2"))
            name = "llvm.x86.avx2.permps";
        else if (n <= 2 * w && has_feature(g, "+avx512f") && (bits == 512 || vl) && bits >= 128) {
            name = bits == 512 ? "llvm.x86.avx512.vpermi2var.ps.512"
                   : bits == 256 ? "llvm.x86.avx512.vpermi2var.ps.256" : "llvm.x86.avx512.vpermi2var.ps.128";
            form = 1;
        }
    } else if (has_feature(g, "+avx2") || has_feature(g, "+avx512bw")) {
        int vbmi = has_feature(g, "+avx512vbmi") && (w == 64 || vl);
        if (n <= 16 && w == 16)
            name = "llvm.x86.ssse3.pshuf.b.128";
        else if (n <= 16 && w == 32 && has_feature(g, "+avx2"))
            name = "llvm.x86.avx2.pshuf.b";
        else if (n <= 16 && w == 64 && has_feature(g, "+avx512bw"))
            name = "llvm.x86.avx512.pshuf.b.512";
        else if (n <= w && vbmi)
            name = w == 64 ? "llvm.x86.avx512.permvar.qi.512" : w == 32 ? "llvm.x86.avx512.permvar.qi.256"
                                                                        : "llvm.x86.avx512.permvar.qi.128";
        else if (n <= 2 * w && vbmi) {
            name = w == 64 ? "llvm.x86.avx512.vpermi2var.qi.512" : w == 32 ? "llvm.x86.avx512.vpermi2var.qi.256"
                                                                           : "llvm.x86.avx512.vpermi2var.qi.128";
            form = 1;
        }
    } else if (has_feature(g, "+neon") && w == 16) {
        name = n <= 16 ? "llvm.aarch64.neon.tbl1" : n <= 64 ? "llvm.aarch64.neon.tbl4" : NULL;
        form = n <= 16 ? 3 : 2;
    }
    unsigned id = name ? LLVMLookupIntrinsicID(name, strlen(name)) : 0;
    if (!id)
        return NULL;
    *exact = form < 2 && n == (form == 1 ? 2 * w : w) && (f32 || n > 16);
    LLVMTypeRef vt = LLVMVectorType(LLVMInt8TypeInContext(g->ctx), (unsigned)w);
    int ov = form >= 2; /* tbl is overloaded on its result */
    LLVMTypeRef fnty = LLVMIntrinsicGetType(g->ctx, id, ov ? &vt : NULL, ov ? 1 : 0);
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(g->mod, id, ov ? &vt : NULL, ov ? 1 : 0);
    if (form == 1) {
        LLVMValueRef args[3] = {table_vec(g, f32, tab, n, w, 0), idx,
                                table_vec(g, f32, tab + w, n > w ? n - w : 0, w, 0)};
        return LLVMBuildCall2(g->b, fnty, fn, args, 3, "");
    }
    if (form == 2) {
        LLVMValueRef args[5];
        for (int q = 0; q < 4; q++)
            args[q] = table_vec(g, 0, tab + 16 * q, n > 16 * q ? n - 16 * q : 0, 16, 0);
        args[4] = idx;
        return LLVMBuildCall2(g->b, fnty, fn, args, 5, "");
    }
    LLVMValueRef args[2] = {table_vec(g, f32, tab, n, w, !f32 && n <= 16 && w > 16), idx};
    return LLVMBuildCall2(g->b, fnty, fn, args, 2, "");
}

/* lut_part, or two of them over the table's halves chosen by the index
 * bit n/2 (one level: a 256-byte table as two vpermi2b, 16 f32 as two
 * AVX2 vpermps). */
static LLVMValueRef lut_split(gen *g, int f32, const int32_t *tab, int n, LLVMValueRef idx, int w, int *exact)
{
    LLVMValueRef r = lut_part(g, f32, tab, n, idx, w, exact);
    if (r || n < 4)
        return r;
    int e1 = 0, e2 = 0;
    LLVMValueRef lo = lut_part(g, f32, tab, n / 2, idx, w, &e1);
    LLVMValueRef hi = lo ? lut_part(g, f32, tab + n / 2, n / 2, idx, w, &e2) : NULL;
    if (!hi)
        return NULL;
    *exact = e1 && e2;
    LLVMTypeRef it = LLVMTypeOf(idx);
    LLVMValueRef bit = LLVMBuildAnd(g->b, idx, splat(g, LLVMConstInt(LLVMGetElementType(it), (unsigned)(n / 2), 0), w),
                                    "");
    return LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, LLVMIntNE, bit, LLVMConstNull(it), ""), hi, lo, "");
}

/* A LUT's index node with the ANDs that keep its low log2(N) bits looked
 * through: they do not change idx mod N. */
static int lut_index_raw(gen *g, int id, int N)
{
    for (;;) {
        const tir_node *n = &g->f->nodes[id];
        int k = -1;
        for (int i = 0; n->op == TIR_AND && i < 2; i++) {
            const tir_node *c = &g->f->nodes[n->a[i]];
            if (c->op == TIR_CONST && !c->shuf && ((uint64_t)c->imm & (uint64_t)(N - 1)) == (uint64_t)(N - 1))
                k = i;
        }
        if (k < 0)
            return id;
        id = n->a[1 - k];
    }
}

/* The private constant array of tab[0..n) as type s (f32: bit patterns),
 * one global per distinct content. */
static LLVMValueRef lut_table(gen *g, const int32_t *tab, int n, int s, int f32)
{
    for (int i = 0; i < g->nluts; i++)
        if (g->luts[i].n == n && g->luts[i].s == s && !memcmp(g->luts[i].ents, tab, (size_t)n * sizeof *tab))
            return g->luts[i].tab;
    LLVMTypeRef et = scalar_type(g, s), i32 = LLVMInt32TypeInContext(g->ctx);
    LLVMValueRef ents[256];
    for (int j = 0; j < n; j++)
        ents[j] = f32 ? LLVMConstBitCast(LLVMConstInt(i32, (unsigned)tab[j], 0), et)
                      : LLVMConstInt(et, (unsigned)tab[j], 0);
    LLVMValueRef r = LLVMAddGlobal(g->mod, LLVMArrayType(et, (unsigned)n), "qkc.lut");
    LLVMSetInitializer(r, LLVMConstArray(et, ents, (unsigned)n));
    LLVMSetGlobalConstant(r, 1);
    LLVMSetLinkage(r, LLVMPrivateLinkage);
    LLVMSetUnnamedAddress(r, LLVMGlobalUnnamedAddr);
    if (g->nluts < QK_COUNT(g->luts))
        g->luts[g->nluts++] = (gen_lut){tab, n, s, r};
    return r;
}

/* LUT: lane i = table[idx[i] mod n]. The index vector is cut into (or
 * widened to) the target's permute width: 64 bytes or 16 f32 lanes at
 * most, 16 bytes or 4 f32 lanes at least. Without a permute instruction:
 * a gather from a constant array (correct anywhere; the builder emits LUT
 * only where the target has one). */
static LLVMValueRef lut(gen *g, const tir_node *n)
{
    int L = n->type.lanes, N = (int)n->imm, f32 = n->type.s == TS_F32;
    LLVMTypeRef i32 = LLVMInt32TypeInContext(g->ctx);
    LLVMValueRef idx = v(g, n->a[0]);
    LLVMTypeRef it = L > 1 ? LLVMGetElementType(LLVMTypeOf(idx)) : LLVMTypeOf(idx);
    if (N < 256 || f32) {
        LLVMValueRef m = LLVMConstInt(it, (unsigned)(N - 1), 0);
        idx = LLVMBuildAnd(g->b, idx, L > 1 ? splat(g, m, L) : m, "");
    }
    int wide = has_feature(g, f32 ? "+avx512f" : "+avx512bw"), avx2 = has_feature(g, "+avx2");
    int wmax = f32 ? (wide ? 16 : 8) : (wide ? 64 : avx2 ? 32 : 16), wmin = f32 ? 4 : 16, w = wmax;
    while (w > wmin && (L < w || L % w))
        w /= 2;
    /* x86's f32 permutes read the index mod their entries (vpermps: w,
     * vpermi2ps: 2w): where every part's table has exactly that many, the
     * index goes in without its masks (the decoder's field mask included);
     * else the parts built are dropped (dead code) and built again on the
     * masked index */
    LLVMValueRef raw = f32 && L > 1 ? v(g, lut_index_raw(g, n->a[0], N)) : idx;
    /* a smaller f32 table (2-bit codes: 4 entries) repeated to the
     * permute's w: entry i mod w is entry i mod N, so the raw index goes
     * in as well, without its AND */
    const int32_t *ptab = n->shuf;
    int32_t rep[16];
    int NT = N;
    if (f32 && L > 1 && N < w && w <= 16 && !(N & (N - 1))) {
        for (int i = 0; i < w; i++)
            rep[i] = ptab[i % N];
        ptab = rep;
        NT = w;
    }
    int parts = L > w ? L / w : 1, p = 0;
    LLVMValueRef part[64];
    for (int pass = raw != idx ? 0 : 1; pass < 2 && p < parts; pass++) {
        LLVMValueRef x = pass ? idx : raw;
        if (L < w) { /* widen: lanes past L index entry 0 */
            LLVMValueRef sel[64];
            for (int j = 0; j < w; j++)
                sel[j] = LLVMConstInt(i32, (unsigned)(j < L ? j : L), 0);
            LLVMValueRef src = L > 1 ? x : LLVMBuildInsertElement(g->b, LLVMGetPoison(LLVMVectorType(it, 1)), x,
                                                                  LLVMConstInt(i32, 0, 0), "");
            x = LLVMBuildShuffleVector(g->b, src, LLVMConstNull(LLVMVectorType(it, (unsigned)L)),
                                       LLVMConstVector(sel, (unsigned)w), "");
        }
        for (p = 0; p < parts; p++) {
            int exact = 0;
            part[p] = lut_split(g, f32, ptab, NT, parts > 1 ? lanes_of(g, x, p * w, w) : x, w, &exact);
            if (!part[p] || (!pass && !exact))
                break;
        }
        if (p < parts && !pass)
            p = 0; /* the masked index next */
    }
    if (p == parts) {
        LLVMValueRef r = concat(g, part, parts, w);
        if (L >= w)
            return r;
        return L > 1 ? lanes_of(g, r, 0, L) : LLVMBuildExtractElement(g->b, r, LLVMConstInt(i32, 0, 0), "");
    }
    /* generic: load each lane from a constant array */
    LLVMTypeRef et = scalar_type(g, n->type.s);
    LLVMValueRef tab = lut_table(g, n->shuf, N, n->type.s, f32);
    LLVMTypeRef i64 = LLVMInt64TypeInContext(g->ctx);
    LLVMValueRef off = LLVMBuildZExt(g->b, idx, L > 1 ? LLVMVectorType(i64, (unsigned)L) : i64, "");
    LLVMValueRef ptrs = LLVMBuildGEP2(g->b, et, tab, &off, 1, "");
    if (L == 1)
        return LLVMBuildLoad2(g->b, et, ptrs, "");
    LLVMTypeRef vt = LLVMVectorType(et, (unsigned)L), tys[2] = {vt, LLVMTypeOf(ptrs)}, fnty;
    LLVMValueRef fn = intrinsic(g, "llvm.masked.gather", tys, 2, &fnty);
    LLVMValueRef one = LLVMConstInt(LLVMInt1TypeInContext(g->ctx), 1, 0);
    LLVMValueRef args[4] = {ptrs, LLVMConstInt(i32, f32 ? 4 : 1, 0), splat(g, one, L), LLVMConstNull(vt)};
    return LLVMBuildCall2(g->b, fnty, fn, args, 4, "");
}

/* TIR_PERM: lane i = table[idx[i] mod L] of a table in a register:
 * vpermps (its index is read mod L) for 8 and 16 lanes, else lane by
 * lane. */
static LLVMValueRef perm(gen *g, const tir_node *n)
{
    int L = n->type.lanes;
    LLVMValueRef tab = v(g, n->a[0]), idx = v(g, n->a[1]);
    const char *name = L == 16 && has_feature(g, "+avx512f") ? "llvm.x86.avx512.permvar.sf.512"
                       : L == 8 && has_feature(g, "+avx2")   ? "llvm.x86.avx2.permps"
                                                             : NULL;
    if (name) {
        unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
        LLVMTypeRef fnty = LLVMIntrinsicGetType(g->ctx, id, NULL, 0);
        LLVMValueRef fn = LLVMGetIntrinsicDeclaration(g->mod, id, NULL, 0);
        LLVMValueRef args[2] = {tab, idx};
        return LLVMBuildCall2(g->b, fnty, fn, args, 2, "");
    }
    LLVMTypeRef i32 = LLVMInt32TypeInContext(g->ctx);
    LLVMValueRef r = LLVMGetPoison(LLVMTypeOf(tab)), m = LLVMConstInt(i32, (unsigned)(L - 1), 0);
    for (int i = 0; i < L; i++) {
        LLVMValueRef lane = LLVMConstInt(i32, (unsigned)i, 0);
        LLVMValueRef j = LLVMBuildAnd(g->b, LLVMBuildExtractElement(g->b, idx, lane, ""), m, "");
        r = LLVMBuildInsertElement(g->b, r, LLVMBuildExtractElement(g->b, tab, j, ""), lane, "");
    }
    return r;
}

static void gen_node(gen *g, int id)
{
    const tir_node *n = &g->f->nodes[id];
    LLVMValueRef r = NULL;
    switch (n->op) {
    case TIR_CONST: r = const_node(g, n); break;
    case TIR_ARG: r = LLVMGetParam(g->fn, (unsigned)n->imm); break;
    case TIR_FMA: {
        LLVMValueRef args[3] = {v(g, n->a[0]), v(g, n->a[1]), v(g, n->a[2])};
        r = call_intr(g, "llvm.fma", type_of(g, n->type), args, 3);
        break;
    }
    case TIR_SELECT: r = LLVMBuildSelect(g->b, v(g, n->a[0]), v(g, n->a[1]), v(g, n->a[2]), ""); break;
    case TIR_SHUFFLE: r = shuffle(g, n); break;
    case TIR_LOAD: r = load(g, n); break;
    case TIR_GATHER: r = gather(g, n); break;
    case TIR_DOT4: r = dot4(g, n); break;
    case TIR_LUT: r = lut(g, n); break;
    case TIR_PERM: r = perm(g, n); break;
    case TIR_STORE: store(g, n); break;
    case TIR_PREFETCH: prefetch(g, n); break;
    case TIR_FENCE: fence(g); break;
    case TIR_VAR:
        r = LLVMBuildAlloca(g->alloca_b, type_of(g, n->type), "acc");
        LLVMBuildStore(g->b, v(g, n->a[0]), r);
        break;
    case TIR_VGET: r = LLVMBuildLoad2(g->b, type_of(g, n->type), v(g, n->a[0]), ""); break;
    case TIR_VSET: LLVMBuildStore(g->b, v(g, n->a[1]), v(g, n->a[0])); break;
    case TIR_LOOP: gen_loop(g, id); return;
    case TIR_IF: gen_if(g, n); break;
    case TIR_ADD: case TIR_SUB: case TIR_MUL: case TIR_DIV: case TIR_REM: case TIR_MIN: case TIR_MAX:
    case TIR_SHL: case TIR_SHR: case TIR_SAR: case TIR_AND: case TIR_OR: case TIR_XOR:
    case TIR_FADD: case TIR_FSUB: case TIR_FMUL: case TIR_FDIV: case TIR_FMAX: case TIR_FMIN:
    case TIR_ILT: case TIR_IEQ: case TIR_FLT:
        r = binary(g, n);
        break;
    default: r = unary(g, n); break;
    }
    g->val[id] = r;
}

static void gen_block(gen *g, int b)
{
    for (int i = 0; i < g->f->blocks[b].n; i++)
        gen_node(g, g->f->blocks[b].ids[i]);
}

static LLVMTypeRef fn_type(gen *g)
{
    LLVMTypeRef ps[512];
    int n = g->f->nargs < 512 ? g->f->nargs : 512;
    for (int i = 0; i < n; i++)
        ps[i] = scalar_type(g, g->f->args[i].s);
    return LLVMFunctionType(LLVMVoidTypeInContext(g->ctx), ps, (unsigned)n, 0);
}

LLVMModuleRef llvm_gen_module(LLVMContextRef ctx, const tir_func *f, const char *symbol, const llvm_tm_desc *tm)
{
    gen g = {.ctx = ctx, .f = f, .tm = tm};
    g.mod = LLVMModuleCreateWithNameInContext(symbol, ctx);
    LLVMSetTarget(g.mod, tm->triple);
    g.fn = LLVMAddFunction(g.mod, symbol, fn_type(&g));
    LLVMAddTargetDependentFunctionAttr(g.fn, "target-cpu", tm->cpu);
    LLVMAddTargetDependentFunctionAttr(g.fn, "target-features", tm->features);
    char width[16];
    snprintf(width, sizeof width, "%d", f->cfg.lanes * 32);
    LLVMAddTargetDependentFunctionAttr(g.fn, "min-legal-vector-width", width);
    LLVMAddTargetDependentFunctionAttr(g.fn, "prefer-vector-width", width);
    g.val = qk_xcalloc((size_t)f->nnodes + 1, sizeof *g.val);
    g.uses = qk_xcalloc((size_t)f->nnodes + 1, sizeof *g.uses);
    note_uses(&g);
    g.b = LLVMCreateBuilderInContext(ctx);
    g.alloca_b = LLVMCreateBuilderInContext(ctx);
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(ctx, g.fn, "entry");
    LLVMBasicBlockRef start = LLVMAppendBasicBlockInContext(ctx, g.fn, "start");
    LLVMPositionBuilderAtEnd(g.alloca_b, entry);
    LLVMPositionBuilderAtEnd(g.b, start);
    gen_block(&g, f->entry);
    LLVMBuildRetVoid(g.b);
    LLVMBuildBr(g.alloca_b, start); /* allocas stay above the branch */
    LLVMDisposeBuilder(g.b);
    LLVMDisposeBuilder(g.alloca_b);
    free(g.val);
    free(g.uses);
    return g.mod;
}

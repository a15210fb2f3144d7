/* emit.c — CUDA C from the tiled IR, the first step of the CUDA backend
 * (tiled IR -> CUDA C -> NVRTC -> PTX -> driver).
 *
 * A GPU thread is one lane: the builder gives GPU targets functions whose
 * values all have lanes == 1, and this file refuses anything else. Each
 * value node becomes one statement `T vN = ...;`, VAR a mutable local,
 * LOOP a `for`, IF an `if/else`, and the TL_PARALLEL loop over work items
 * a grid-stride loop over the threads of the whole grid.
 *
 * Integers are kept in unsigned C types (TIR integers are signless; wrap
 * around is then defined) and computed in at least 32 bits so that
 * narrow operands never promote to a signed int; the signed ops (div,
 * rem, min, max, sar, ilt, sext, sitofp, fptosi) read a signed view.
 *
 * Warp-level tensor-core code (tir_mma.c) adds TL_WARP grid loops, whose
 * items are strided over warps instead of threads, and MMA nodes. Their
 * fragments are the only vector values allowed here: small structs of
 * registers (qkc_u32x2, qkc_u32x4, qkc_f32x4) built with INSERT and read
 * with EXTRACT. Each MMA kind becomes a call of a helper written once per
 * source with inline PTX; under -DQKC_HOST_EMU only their prototypes are
 * emitted, so that a host emulation of the warp can supply them. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cuda/cuda_internal.h"

typedef struct emitter {
    const tir_func *f;
    qk_buf *out;
    char *err;
    size_t errsz;
    int failed;
} emitter;

static void fail(emitter *e, const char *fmt, ...) {
    if (e->failed)
        return;
    e->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    if (e->errsz)
        vsnprintf(e->err, e->errsz, fmt, ap);
    va_end(ap);
}

/* Storage type of a scalar kind. */
static const char *ctype(int s) {
    switch (s) {
    case TS_I1: return "bool";
    case TS_I8: return "unsigned char";
    case TS_I16: return "unsigned short";
    case TS_I32: return "unsigned";
    case TS_I64: return "unsigned long long";
    case TS_F32: return "float";
    case TS_PTR: return "unsigned char *";
    default: return NULL;
    }
}

/* Register-array type of a fragment value (i32 x 2 or 4, f32 x 4), else NULL. */
static const char *vtype(tir_type t) {
    if (t.s == TS_I32 && t.lanes == 2)
        return "qkc_u32x2";
    if (t.s == TS_I32 && t.lanes == 4)
        return "qkc_u32x4";
    if (t.s == TS_F32 && t.lanes == 4)
        return "qkc_f32x4";
    return NULL;
}

/* Unsigned and signed computation types (never narrower than 32 bits). */
static const char *stype(int s) { return s == TS_I64 ? "long long" : "int"; }

static const tir_node *node(const emitter *e, int id) { return &e->f->nodes[id]; }
static int sk(const emitter *e, int id) { return node(e, id)->type.s; }

/* Value of node id read as its unsigned computation type. */
static void uval(emitter *e, int id) {
    int s = sk(e, id);
    if (node(e, id)->op == TIR_LOOP) /* induction variables are long long */
        qk_buf_printf(e->out, "(unsigned long long)v%d", id);
    else if (s == TS_I64 || s == TS_I32)
        qk_buf_printf(e->out, "v%d", id);
    else
        qk_buf_printf(e->out, "(unsigned)v%d", id);
}

/* Value of node id read as a signed integer (sign-extended from its width;
 * i1 reads as 0 or -1). */
static void sval(emitter *e, int id) {
    static const char *const view[] = {
        [TS_I1] = "-(int)", [TS_I8] = "(int)(signed char)", [TS_I16] = "(int)(short)",
        [TS_I32] = "(int)", [TS_I64] = "(long long)",
    };
    int s = sk(e, id);
    if (s < TS_I1 || s > TS_I64) {
        fail(e, "node %d is used as a signed integer but has type %s", id, tir_scalar_name(s));
        return;
    }
    qk_buf_printf(e->out, "(%sv%d)", view[s], id);
}

/* Starts `T vN = ` for value node id. */
static void def(emitter *e, int id, int depth) {
    const tir_node *n = node(e, id);
    qk_buf_indent(e->out, depth);
    if (n->op == TIR_ARG && n->type.s == TS_PTR && e->f->args[n->imm].is_const)
        qk_buf_printf(e->out, "const unsigned char *v%d = ", id);
    else if (n->type.s == TS_PTR)
        qk_buf_printf(e->out, "unsigned char *v%d = ", id);
    else if (n->type.lanes > 1)
        qk_buf_printf(e->out, "%s v%d = ", vtype(n->type), id);
    else
        qk_buf_printf(e->out, "%s v%d = ", ctype(n->type.s), id);
}

/* An f32 literal that reads back to exactly v. */
static void float_lit(emitter *e, double v) {
    float f = (float)v;
    char s[64];
    snprintf(s, sizeof s, "%.9g", f);
    if (!isfinite(f) || strtof(s, NULL) != f || (f == 0 && signbit(f))) {
        uint32_t bits;
        memcpy(&bits, &f, 4);
        qk_buf_printf(e->out, "__uint_as_float(0x%08xu)", bits);
        return;
    }
    qk_buf_puts(e->out, s);
    if (!strpbrk(s, ".e"))
        qk_buf_puts(e->out, ".0");
    qk_buf_puts(e->out, "f");
}

static unsigned long long width_mask(int s) {
    switch (s) {
    case TS_I8: return 0xffull;
    case TS_I16: return 0xffffull;
    case TS_I32: return 0xffffffffull;
    default: return ~0ull;
    }
}

/* A fragment constant: every lane the same value (per-lane ints from shuf). */
static void vector_const(emitter *e, const tir_node *n) {
    qk_buf_puts(e->out, "{{");
    for (int l = 0; l < n->type.lanes; l++) {
        qk_buf_puts(e->out, l ? ", " : "");
        if (n->type.s == TS_F32)
            float_lit(e, n->fimm);
        else
            qk_buf_printf(e->out, "0x%xu", (unsigned)(n->shuf ? n->shuf[l] : n->imm));
    }
    qk_buf_puts(e->out, "}}");
}

static void emit_const(emitter *e, const tir_node *n) {
    if (n->type.lanes > 1)
        vector_const(e, n);
    else if (n->type.s == TS_F32)
        float_lit(e, n->fimm);
    else if (n->type.s == TS_I1)
        qk_buf_puts(e->out, (n->shuf ? n->shuf[0] : n->imm) & 1 ? "true" : "false");
    else { /* a one-lane per-lane constant (shuf != NULL) holds its value in shuf[0] */
        unsigned long long v = (unsigned long long)(n->shuf ? (int64_t)n->shuf[0] : n->imm) & width_mask(n->type.s);
        if (n->type.s == TS_I64)
            qk_buf_printf(e->out, "0x%llxull", v);
        else if (n->type.s == TS_I32)
            qk_buf_printf(e->out, "0x%llxu", v);
        else
            qk_buf_printf(e->out, "(%s)0x%llxu", ctype(n->type.s), v);
    }
}

/* `(T)(U(a) op U(b))`: wrapping integer arithmetic and bit ops. */
static void int_binary(emitter *e, const tir_node *n, const char *op) {
    qk_buf_printf(e->out, "(%s)(", ctype(n->type.s));
    uval(e, n->a[0]);
    qk_buf_printf(e->out, " %s ", op);
    uval(e, n->a[1]);
    qk_buf_puts(e->out, ")");
}

/* `(T)(S(a) op S(b))`: signed division and remainder. */
static void signed_binary(emitter *e, const tir_node *n, const char *op) {
    qk_buf_printf(e->out, "(%s)(", ctype(n->type.s));
    sval(e, n->a[0]);
    qk_buf_printf(e->out, " %s ", op);
    sval(e, n->a[1]);
    qk_buf_puts(e->out, ")");
}

static void signed_minmax(emitter *e, const tir_node *n, const char *cmp) {
    sval(e, n->a[0]);
    qk_buf_printf(e->out, " %s ", cmp);
    sval(e, n->a[1]);
    qk_buf_printf(e->out, " ? v%d : v%d", n->a[0], n->a[1]);
}

static void shift(emitter *e, const tir_node *n) {
    qk_buf_printf(e->out, "(%s)(", ctype(n->type.s));
    if (n->op == TIR_SAR)
        sval(e, n->a[0]);
    else
        uval(e, n->a[0]);
    qk_buf_puts(e->out, n->op == TIR_SHL ? " << " : " >> ");
    uval(e, n->a[1]);
    qk_buf_puts(e->out, ")");
}

static void float_binary(emitter *e, const tir_node *n, const char *op) {
    qk_buf_printf(e->out, "v%d %s v%d", n->a[0], op, n->a[1]);
}

static void call(emitter *e, const tir_node *n, const char *fn, int nargs) {
    qk_buf_printf(e->out, "%s(", fn);
    for (int i = 0; i < nargs; i++)
        qk_buf_printf(e->out, "%sv%d", i ? ", " : "", n->a[i]);
    qk_buf_puts(e->out, ")");
}

/* zext/sext/trunc between integer widths. */
static void int_cast(emitter *e, const tir_node *n) {
    int to = n->type.s;
    if (to == TS_I1) {
        qk_buf_printf(e->out, "(v%d & 1) != 0", n->a[0]);
        return;
    }
    qk_buf_printf(e->out, "(%s)", ctype(to));
    if (n->op == TIR_SEXT)
        sval(e, n->a[0]);
    else
        uval(e, n->a[0]);
}

static void bitcast(emitter *e, const tir_node *n) {
    int from = sk(e, n->a[0]), to = n->type.s;
    if (from == to)
        qk_buf_printf(e->out, "v%d", n->a[0]);
    else if (from == TS_I32 && to == TS_F32)
        qk_buf_printf(e->out, "__uint_as_float(v%d)", n->a[0]);
    else if (from == TS_F32 && to == TS_I32)
        qk_buf_printf(e->out, "__float_as_uint(v%d)", n->a[0]);
    else
        fail(e, "bitcast from %s to %s at node %d is not supported by the CUDA backend",
             tir_scalar_name(from), tir_scalar_name(to), (int)(n - e->f->nodes));
}

/* `*(const T *)(base + (long long)off)`. */
static void address(emitter *e, const char *qual, int s, int base, int off) {
    qk_buf_printf(e->out, "*(%s%s *)(v%d + (long long)v%d)", qual, ctype(s), base, off);
}

static void load(emitter *e, const tir_node *n) {
    if (n->a[2] >= 0)
        qk_buf_printf(e->out, "v%d ? ", n->a[2]);
    address(e, "const ", n->type.s, n->a[0], n->a[1]);
    if (n->a[2] >= 0)
        qk_buf_printf(e->out, " : (%s)0", ctype(n->type.s));
}

/* Population count in the operand's width (narrow kinds are zero-extended). */
static void popcount(emitter *e, const tir_node *n) {
    qk_buf_printf(e->out, "(%s)%s(", ctype(n->type.s), n->type.s == TS_I64 ? "__popcll" : "__popc");
    uval(e, n->a[0]);
    qk_buf_puts(e->out, ")");
}

/* LUT of one lane: a string literal of the table's bytes, indexed. */
static void lut(emitter *e, const tir_node *n) {
    qk_buf_puts(e->out, "(unsigned char)\"");
    for (int i = 0; i < n->imm; i++)
        qk_buf_printf(e->out, "\\x%02x", (unsigned)n->shuf[i]);
    qk_buf_printf(e->out, "\"[(unsigned)v%d & 0x%llxu]", n->a[0], (unsigned long long)(n->imm - 1));
}

/* SHUFFLE of one lane: the source lane must be 0. */
static void shuffle(emitter *e, const tir_node *n, int id) {
    if (!n->shuf || n->shuf[0] != 0)
        fail(e, "shuffle at node %d selects lane %d of a one-lane value", id, n->shuf ? n->shuf[0] : -1);
    qk_buf_printf(e->out, "v%d", n->a[0]);
}

/* Helper names of the MMA kinds (one per kind, written by emit_mma_helpers). */
static const char *const mma_helper[] = {
    [TIR_MMA_F16_K16] = "qkc_mma_f16_m16n8k16",
    [TIR_MMA_S8_K32] = "qkc_mma_s8_m16n8k32",
    [TIR_MMA_SP_F16_K32] = "qkc_mma_sp_f16_m16n8k32",
};
_Static_assert(QK_COUNT(mma_helper) == TIR_MMA_COUNT, "mma helper table size");

static void mma_call(emitter *e, const tir_node *n) {
    qk_buf_printf(e->out, "%s(v%d, v%d, v%d", mma_helper[n->imm], n->a[0], n->a[1], n->a[2]);
    if (n->a[3] >= 0)
        qk_buf_printf(e->out, ", v%d", n->a[3]);
    qk_buf_puts(e->out, ")");
}

/* The right-hand side of value node id. */
static void value_rhs(emitter *e, int id) {
    const tir_node *n = node(e, id);
    switch (n->op) {
    case TIR_CONST: emit_const(e, n); break;
    case TIR_ARG:
        qk_buf_printf(e->out, "a%d", (int)n->imm);
        break;
    case TIR_ADD: int_binary(e, n, "+"); break;
    case TIR_SUB: int_binary(e, n, "-"); break;
    case TIR_MUL: int_binary(e, n, "*"); break;
    case TIR_DIV: signed_binary(e, n, "/"); break;
    case TIR_REM: signed_binary(e, n, "%"); break;
    case TIR_MIN: signed_minmax(e, n, "<"); break;
    case TIR_MAX: signed_minmax(e, n, ">"); break;
    case TIR_SHL: case TIR_SHR: case TIR_SAR: shift(e, n); break;
    case TIR_AND: int_binary(e, n, "&"); break;
    case TIR_OR: int_binary(e, n, "|"); break;
    case TIR_XOR: int_binary(e, n, "^"); break;
    case TIR_FADD: float_binary(e, n, "+"); break;
    case TIR_FSUB: float_binary(e, n, "-"); break;
    case TIR_FMUL: float_binary(e, n, "*"); break;
    case TIR_FDIV: float_binary(e, n, "/"); break;
    case TIR_FMAX: call(e, n, "fmaxf", 2); break;
    case TIR_FMIN: call(e, n, "fminf", 2); break;
    case TIR_FMA: call(e, n, "fmaf", 3); break;
    case TIR_FNEG: qk_buf_printf(e->out, "-v%d", n->a[0]); break;
    case TIR_FABS: call(e, n, "fabsf", 1); break;
    case TIR_FSQRT: call(e, n, "sqrtf", 1); break;
    case TIR_FEXP: call(e, n, "expf", 1); break;
    case TIR_FRINT: call(e, n, "rintf", 1); break;
    case TIR_ZEXT: case TIR_SEXT: case TIR_TRUNC: int_cast(e, n); break;
    case TIR_SITOFP:
        qk_buf_puts(e->out, "(float)");
        sval(e, n->a[0]);
        break;
    case TIR_UITOFP:
        qk_buf_puts(e->out, "(float)");
        uval(e, n->a[0]);
        break;
    case TIR_FPTOSI: qk_buf_printf(e->out, "(%s)(%s)v%d", ctype(n->type.s), stype(n->type.s), n->a[0]); break;
    case TIR_H2F: qk_buf_printf(e->out, "__half2float(__ushort_as_half(v%d))", n->a[0]); break;
    case TIR_F2H: qk_buf_printf(e->out, "__half_as_ushort(__float2half_rn(v%d))", n->a[0]); break;
    case TIR_BITCAST: bitcast(e, n); break;
    case TIR_ILT:
        sval(e, n->a[0]);
        qk_buf_puts(e->out, " < ");
        sval(e, n->a[1]);
        break;
    case TIR_IEQ:
        uval(e, n->a[0]);
        qk_buf_puts(e->out, " == ");
        uval(e, n->a[1]);
        break;
    case TIR_POPCNT: popcount(e, n); break;
    case TIR_LUT:
        if (n->type.s != TS_I8)
            fail(e, "f32 table lookups (lut, node %d) are not emitted for GPU targets", id);
        else
            lut(e, n);
        break;
    case TIR_FLT: float_binary(e, n, "<"); break;
    case TIR_SELECT: qk_buf_printf(e->out, "v%d ? v%d : v%d", n->a[0], n->a[1], n->a[2]); break;
    case TIR_SPLAT: case TIR_HADD: case TIR_VAR: case TIR_VGET: qk_buf_printf(e->out, "v%d", n->a[0]); break;
    case TIR_SHUFFLE: shuffle(e, n, id); break;
    case TIR_LOAD: case TIR_GATHER: load(e, n); break; /* one lane: a gather is a load */
    case TIR_LANEID: qk_buf_puts(e->out, "(unsigned)(threadIdx.x & 31u)"); break;
    case TIR_INSERT: qk_buf_printf(e->out, "v%d", n->a[0]); break; /* then the lane is set (emit_node) */
    case TIR_EXTRACT: qk_buf_printf(e->out, "v%d.r[%d]", n->a[0], (int)n->imm); break;
    case TIR_MMA: mma_call(e, n); break;
    case TIR_DOT4: fail(e, "integer dot products (dot4, node %d) are not emitted for GPU targets yet", id); break;
    default: fail(e, "tiled-IR op '%s' at node %d is not a value", tir_op_name(n->op), id);
    }
}

static void emit_block(emitter *e, int b, int depth);

/* `for` header of a LOOP; the grid loop strides over the whole grid. */
static void loop_header(emitter *e, int id, int depth) {
    const tir_node *n = node(e, id);
    qk_buf_indent(e->out, depth);
    if (n->kind == TL_UNROLL) {
        qk_buf_puts(e->out, "#pragma unroll\n");
        qk_buf_indent(e->out, depth);
    }
    if (n->kind == TL_PARALLEL)
        qk_buf_printf(e->out,
                      "for (long long v%d = (long long)v%d + (long long)(blockIdx.x * (long long)blockDim.x + "
                      "threadIdx.x) * (long long)v%d; v%d < (long long)v%d; "
                      "v%d += (long long)gridDim.x * blockDim.x * (long long)v%d) {",
                      id, n->a[0], n->a[2], id, n->a[1], id, n->a[2]);
    else if (n->kind == TL_WARP) /* item = global warp index: every lane of a warp runs the same items */
        qk_buf_printf(e->out,
                      "for (long long v%d = (long long)v%d + ((blockIdx.x * (long long)blockDim.x + "
                      "threadIdx.x) >> 5) * (long long)v%d; v%d < (long long)v%d; "
                      "v%d += ((long long)gridDim.x * blockDim.x >> 5) * (long long)v%d) {",
                      id, n->a[0], n->a[2], id, n->a[1], id, n->a[2]);
    else
        qk_buf_printf(e->out, "for (long long v%d = (long long)v%d; v%d < (long long)v%d; v%d += (long long)v%d) {",
                      id, n->a[0], id, n->a[1], id, n->a[2]);
    if (n->name)
        qk_buf_printf(e->out, " // %s%s", n->name,
                      n->kind == TL_PARALLEL ? " (grid-stride)" : n->kind == TL_WARP ? " (one warp per item)" : "");
    qk_buf_puts(e->out, "\n");
}

static void emit_loop(emitter *e, int id, int depth) {
    loop_header(e, id, depth);
    emit_block(e, node(e, id)->body, depth + 1);
    qk_buf_indent(e->out, depth);
    qk_buf_puts(e->out, "}\n");
}

static void emit_if(emitter *e, int id, int depth) {
    const tir_node *n = node(e, id);
    qk_buf_indent(e->out, depth);
    qk_buf_printf(e->out, "if (v%d) {\n", n->a[0]);
    emit_block(e, n->body, depth + 1);
    if (n->alt >= 0) {
        qk_buf_indent(e->out, depth);
        qk_buf_puts(e->out, "} else {\n");
        emit_block(e, n->alt, depth + 1);
    }
    qk_buf_indent(e->out, depth);
    qk_buf_puts(e->out, "}\n");
}

static void emit_store(emitter *e, const tir_node *n, int depth) {
    qk_buf_indent(e->out, depth);
    if (n->a[3] >= 0)
        qk_buf_printf(e->out, "if (v%d) ", n->a[3]);
    address(e, "", sk(e, n->a[2]), n->a[0], n->a[1]);
    qk_buf_printf(e->out, " = v%d;\n", n->a[2]);
}

static void emit_node(emitter *e, int id, int depth) {
    const tir_node *n = node(e, id);
    switch (n->op) {
    case TIR_LOOP: emit_loop(e, id, depth); return;
    case TIR_IF: emit_if(e, id, depth); return;
    case TIR_STORE: emit_store(e, n, depth); return;
    case TIR_PREFETCH: return; /* a CPU cache hint: nothing on a GPU */
    case TIR_FENCE: return;    /* a CPU scheduling boundary: nothing on a GPU */
    case TIR_VSET:
        qk_buf_indent(e->out, depth);
        qk_buf_printf(e->out, "v%d = v%d;\n", n->a[0], n->a[1]);
        return;
    default:
        def(e, id, depth);
        value_rhs(e, id);
        qk_buf_puts(e->out, ";\n");
        if (n->op == TIR_INSERT) {
            qk_buf_indent(e->out, depth);
            qk_buf_printf(e->out, "v%d.r[%d] = v%d;\n", id, (int)n->imm, n->a[1]);
        }
    }
}

static void emit_block(emitter *e, int b, int depth) {
    const tir_block *blk = &e->f->blocks[b];
    for (int i = 0; i < blk->n && !e->failed; i++)
        emit_node(e, blk->ids[i], depth);
}

/* 1 if node id may have a vector type: MMA fragments only, held in
 * variables, built lane by lane or constant. */
static int fragment_ok(emitter *e, int id) {
    const tir_node *n = node(e, id);
    int op = n->op;
    if (!vtype(n->type))
        return 0;
    return op == TIR_CONST || op == TIR_VAR || op == TIR_VGET || op == TIR_INSERT || op == TIR_MMA;
}

/* Vectors may only flow into fragment ops (and VSET, STORE of scalars). */
static int vector_use_ok(emitter *e, int id) {
    const tir_node *n = node(e, id);
    if (n->op == TIR_INSERT || n->op == TIR_EXTRACT || n->op == TIR_MMA || n->op == TIR_VAR ||
        n->op == TIR_VGET || n->op == TIR_VSET)
        return 1;
    for (int i = 0; i < 4; i++)
        if (n->a[i] >= 0 && n->a[i] < e->f->nnodes && node(e, n->a[i])->type.lanes > 1)
            return 0;
    return 1;
}

/* Rejects what one lane per thread cannot express: vectors other than
 * MMA fragments, unknown kinds, stores through const arguments. */
static int check_node(emitter *e, int id) {
    const tir_node *n = node(e, id);
    if (n->op >= TIR_OP_COUNT) {
        fail(e, "unknown tiled-IR op %d at node %d", n->op, id);
        return -1;
    }
    if (n->op == TIR_MMA && !tir_mma_shape_of((int)n->imm)) {
        fail(e, "unknown mma kind %lld at node %d", (long long)n->imm, id);
        return -1;
    }
    if (!vector_use_ok(e, id)) {
        fail(e, "node %d (%s) uses a vector; the CUDA backend keeps vectors only as MMA fragments", id,
             tir_op_name(n->op));
        return -1;
    }
    if (n->type.lanes > 1 && !fragment_ok(e, id)) {
        fail(e, "the CUDA backend emits one lane per thread; got %sx%d at node %d", tir_scalar_name(n->type.s),
             n->type.lanes, id);
        return -1;
    }
    if (n->op == TIR_STORE && n->a[0] >= 0 && node(e, n->a[0])->op == TIR_ARG &&
        e->f->args[node(e, n->a[0])->imm].is_const) {
        fail(e, "store at node %d writes the const argument '%s'", id, e->f->args[node(e, n->a[0])->imm].name);
        return -1;
    }
    if (n->op == TIR_ARG && (n->imm < 0 || n->imm >= e->f->nargs)) {
        fail(e, "arg node %d names argument %lld of %d", id, (long long)n->imm, e->f->nargs);
        return -1;
    }
    if (n->type.s != TS_VOID && !ctype(n->type.s)) {
        fail(e, "bad scalar kind %d at node %d", n->type.s, id);
        return -1;
    }
    return 0;
}

static int check_func(emitter *e) {
    for (int i = 0; i < e->f->nargs; i++)
        if (e->f->args[i].s != TS_PTR && e->f->args[i].s != TS_I64) {
            fail(e, "argument %d ('%s') is neither a pointer nor i64", i, e->f->args[i].name);
            return -1;
        }
    for (int id = 0; id < e->f->nnodes; id++)
        if (check_node(e, id))
            return -1;
    return 0;
}

char *cuda_kernel_name(const tir_func *f) {
    const char *src = f->name && *f->name ? f->name : "qkc_kernel";
    char *s = qk_xmalloc(strlen(src) + 2), *p = s;
    if (isdigit((unsigned char)*src))
        *p++ = '_';
    for (; *src; src++)
        *p++ = isalnum((unsigned char)*src) ? *src : '_';
    *p = 0;
    return s;
}

static int uses_half(const tir_func *f) {
    for (int id = 0; id < f->nnodes; id++)
        if (f->nodes[id].op == TIR_H2F || f->nodes[id].op == TIR_F2H)
            return 1;
    return 0;
}

static int uses_mma(const tir_func *f, int kind) {
    for (int id = 0; id < f->nnodes; id++)
        if (f->nodes[id].op == TIR_MMA && f->nodes[id].imm == kind)
            return 1;
    return 0;
}

static int uses_vectors(const tir_func *f) {
    for (int id = 0; id < f->nnodes; id++)
        if (f->nodes[id].type.lanes > 1)
            return 1;
    return 0;
}

/* `{%first, ..., %first+n-1}`. */
static void ptx_regs(qk_buf *out, int first, int n) {
    qk_buf_puts(out, "{");
    for (int i = 0; i < n; i++)
        qk_buf_printf(out, "%s%%%d", i ? ", " : "", first + i);
    qk_buf_puts(out, "}");
}

/* One helper: d = mma(a, b, c[, e]) as inline PTX. Operand numbering: d
 * 0..3, a, b, c, then the metadata; the sparsity selector is 0 (threads 0
 * and 1 of each quad give the metadata of f16 m16n8k32). */
static void mma_helper_def(qk_buf *out, int kind) {
    const tir_mma_shape *sh = tir_mma_shape_of(kind);
    const char *ct = sh->acc == TS_F32 ? "qkc_f32x4" : "qkc_u32x4", *cc = sh->acc == TS_F32 ? "f" : "r";
    qk_buf_printf(out, "static __device__ __forceinline__ %s %s(qkc_u32x4 a, qkc_u32x%d b, %s c%s) {\n", ct,
                  mma_helper[kind], sh->b_words, ct, sh->sparse ? ", unsigned e" : "");
    /* .aligned: the whole warp must execute it together; lanes may just
     * have left a per-lane branch (an epilogue), so reconverge first. */
    qk_buf_printf(out, "    %s d;\n    __syncwarp();\n    asm volatile(\"%s ", ct, sh->ptx);
    int ra = 4, rb = ra + sh->a_words, rc = rb + sh->b_words;
    ptx_regs(out, 0, 4);
    qk_buf_puts(out, ", ");
    ptx_regs(out, ra, sh->a_words);
    qk_buf_puts(out, ", ");
    ptx_regs(out, rb, sh->b_words);
    qk_buf_puts(out, ", ");
    ptx_regs(out, rc, 4);
    if (sh->sparse)
        qk_buf_printf(out, ", %%%d, 0x0", rc + 4);
    qk_buf_puts(out, ";\\n\"\n        : ");
    for (int i = 0; i < 4; i++)
        qk_buf_printf(out, "%s\"=%s\"(d.r[%d])", i ? ", " : "", cc, i);
    qk_buf_puts(out, "\n        : ");
    for (int i = 0; i < sh->a_words; i++)
        qk_buf_printf(out, "\"r\"(a.r[%d]), ", i);
    for (int i = 0; i < sh->b_words; i++)
        qk_buf_printf(out, "\"r\"(b.r[%d]), ", i);
    for (int i = 0; i < 4; i++)
        qk_buf_printf(out, "%s\"%s\"(c.r[%d])", i ? ", " : "", cc, i);
    if (sh->sparse)
        qk_buf_puts(out, ", \"r\"(e)");
    qk_buf_puts(out, ");\n    return d;\n}\n");
}

/* Fragment types, and the MMA helpers this function calls. */
static void emit_mma_helpers(const tir_func *f, qk_buf *out) {
    if (!uses_vectors(f))
        return;
    qk_buf_puts(out, "\nstruct qkc_u32x2 { unsigned r[2]; };\nstruct qkc_u32x4 { unsigned r[4]; };\n"
                     "struct qkc_f32x4 { float r[4]; };\n");
    int any = 0;
    for (int k = 0; k < TIR_MMA_COUNT; k++)
        any |= uses_mma(f, k);
    if (!any)
        return;
    qk_buf_puts(out, "#ifndef QKC_HOST_EMU\n");
    for (int k = 0; k < TIR_MMA_COUNT; k++)
        if (uses_mma(f, k))
            mma_helper_def(out, k);
    qk_buf_puts(out, "#else /* a host emulation of the warp defines them */\n");
    for (int k = 0; k < TIR_MMA_COUNT; k++)
        if (uses_mma(f, k)) {
            const tir_mma_shape *sh = tir_mma_shape_of(k);
            const char *ct = sh->acc == TS_F32 ? "qkc_f32x4" : "qkc_u32x4";
            qk_buf_printf(out, "%s %s(qkc_u32x4 a, qkc_u32x%d b, %s c%s);\n", ct, mma_helper[k], sh->b_words, ct,
                          sh->sparse ? ", unsigned e" : "");
        }
    qk_buf_puts(out, "#endif\n");
}

/* One parameter per argument: pointers as bytes, i64 as long long. */
static void emit_params(emitter *e) {
    for (int i = 0; i < e->f->nargs; i++) {
        const tir_arg *a = &e->f->args[i];
        qk_buf_puts(e->out, i ? ",\n    " : "\n    ");
        if (a->s == TS_PTR)
            qk_buf_printf(e->out, "%sunsigned char *a%d", a->is_const ? "const " : "", i);
        else
            qk_buf_printf(e->out, "long long a%d", i);
        if (a->name)
            qk_buf_printf(e->out, " /* %s%s%s */", a->name, a->s == TS_PTR ? ": " : "",
                          a->s == TS_PTR ? qk_dtype_name(a->dtype) : "");
    }
}

int cuda_emit_source(const tir_func *f, int sm, qk_buf *out, char *err, size_t errsz) {
    emitter e = {.f = f, .out = out, .err = err, .errsz = errsz};
    if (check_func(&e))
        return -1;
    char *kname = cuda_kernel_name(f);
    qk_buf_printf(out, "// %s: generated by qkc from the tiled IR for sm_%d; %s.\n", kname, sm,
                  uses_vectors(f) ? "warp-level MMA tiles" : "one lane per thread");
    if (uses_half(f))
        qk_buf_puts(out, "#include <cuda_fp16.h>\n");
    emit_mma_helpers(f, out);
    qk_buf_printf(out, "\nextern \"C\" __global__ void __launch_bounds__(%d) %s(", CUDA_BLOCK, kname);
    emit_params(&e);
    qk_buf_puts(out, ")\n{\n");
    emit_block(&e, f->entry, 1);
    qk_buf_puts(out, "}\n");
    free(kname);
    return e.failed ? -1 : 0;
}

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
 * rem, min, max, sar, ilt, sext, sitofp, fptosi) read a signed view. */
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

static void emit_const(emitter *e, const tir_node *n) {
    if (n->type.s == TS_F32)
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
    else
        qk_buf_printf(e->out, "for (long long v%d = (long long)v%d; v%d < (long long)v%d; v%d += (long long)v%d) {",
                      id, n->a[0], id, n->a[1], id, n->a[2]);
    if (n->name)
        qk_buf_printf(e->out, " // %s%s", n->name, n->kind == TL_PARALLEL ? " (grid-stride)" : "");
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
    case TIR_VSET:
        qk_buf_indent(e->out, depth);
        qk_buf_printf(e->out, "v%d = v%d;\n", n->a[0], n->a[1]);
        return;
    default:
        def(e, id, depth);
        value_rhs(e, id);
        qk_buf_puts(e->out, ";\n");
    }
}

static void emit_block(emitter *e, int b, int depth) {
    const tir_block *blk = &e->f->blocks[b];
    for (int i = 0; i < blk->n && !e->failed; i++)
        emit_node(e, blk->ids[i], depth);
}

/* Rejects what one lane per thread cannot express: vectors, unknown
 * kinds, stores through const arguments. */
static int check_node(emitter *e, int id) {
    const tir_node *n = node(e, id);
    if (n->op >= TIR_OP_COUNT) {
        fail(e, "unknown tiled-IR op %d at node %d", n->op, id);
        return -1;
    }
    if (n->type.lanes > 1) {
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
    qk_buf_printf(out, "// %s: generated by qkc from the tiled IR for sm_%d; one lane per thread.\n", kname, sm);
    if (uses_half(f))
        qk_buf_puts(out, "#include <cuda_fp16.h>\n");
    qk_buf_printf(out, "\nextern \"C\" __global__ void __launch_bounds__(%d) %s(", CUDA_BLOCK, kname);
    emit_params(&e);
    qk_buf_puts(out, ")\n{\n");
    emit_block(&e, f->entry, 1);
    qk_buf_puts(out, "}\n");
    free(kname);
    return e.failed ? -1 : 0;
}

/* tir.c — the tiled IR's data structure: construction helpers, the text
 * printer (`qkc emit --stage=tir`) and the verifier that runs after
 * tir_build and before any backend sees a function. */
#include "compiler/tir.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    int nops;
} ops[] = {
#define TIR_OP_ROW(id, name, nops) {name, nops},
    TIR_OPS(TIR_OP_ROW)
#undef TIR_OP_ROW
};
_Static_assert(QK_COUNT(ops) == TIR_OP_COUNT, "tir op table size");

static const char *scalar_names[] = {"void", "i1", "i8", "i16", "i32", "i64", "f32", "ptr"};
_Static_assert(QK_COUNT(scalar_names) == TS_PTR + 1, "scalar table size");

const char *tir_op_name(int op)
{
    return op >= 0 && op < TIR_OP_COUNT ? ops[op].name : "?";
}

const char *tir_scalar_name(int s)
{
    return s >= 0 && s <= TS_PTR ? scalar_names[s] : "?";
}

static const tir_mma_shape mma_shapes[] = {
    [TIR_MMA_F16_K16] = {16, 4, 2, TS_F32, 0, "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32"},
    [TIR_MMA_S8_K32] = {32, 4, 2, TS_I32, 0, "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32"},
    [TIR_MMA_SP_F16_K32] = {32, 4, 4, TS_F32, 1, "mma.sp.sync.aligned.m16n8k32.row.col.f32.f16.f16.f32"},
};
_Static_assert(QK_COUNT(mma_shapes) == TIR_MMA_COUNT, "mma shape table size");

const tir_mma_shape *tir_mma_shape_of(int k)
{
    return k >= 0 && k < TIR_MMA_COUNT ? &mma_shapes[k] : NULL;
}

tir_type tir_t(tir_scalar s, int lanes)
{
    return (tir_type){(uint8_t)s, (uint16_t)lanes};
}

tir_func *tir_func_new(qk_arena *a, const char *name)
{
    tir_func *f = qk_alloc(a, sizeof *f);
    f->arena = a;
    f->name = qk_strdup(a, name);
    f->entry = tir_block_new(f);
    f->repack_tensor = -1;
    return f;
}

int tir_block_new(tir_func *f)
{
    if (f->nblocks == f->capblocks) {
        int cap = f->capblocks ? f->capblocks * 2 : 16;
        tir_block *nb = qk_alloc(f->arena, (size_t)cap * sizeof *nb);
        if (f->nblocks)
            memcpy(nb, f->blocks, (size_t)f->nblocks * sizeof *nb);
        f->blocks = nb;
        f->capblocks = cap;
    }
    f->blocks[f->nblocks] = (tir_block){0};
    return f->nblocks++;
}

static void block_push(tir_func *f, int b, int id)
{
    tir_block *bl = &f->blocks[b];
    if (bl->n == bl->cap) {
        int cap = bl->cap ? bl->cap * 2 : 16;
        int32_t *ids = qk_alloc(f->arena, (size_t)cap * sizeof *ids);
        if (bl->n)
            memcpy(ids, bl->ids, (size_t)bl->n * sizeof *ids);
        bl->ids = ids;
        bl->cap = cap;
    }
    bl->ids[bl->n++] = id;
}

int tir_emit(tir_func *f, int b, tir_op op, tir_type t, int a0, int a1, int a2, int a3)
{
    if (f->nnodes == f->capnodes) {
        int cap = f->capnodes ? f->capnodes * 2 : 256;
        tir_node *nn = qk_alloc(f->arena, (size_t)cap * sizeof *nn);
        if (f->nnodes)
            memcpy(nn, f->nodes, (size_t)f->nnodes * sizeof *nn);
        f->nodes = nn;
        f->capnodes = cap;
    }
    int id = f->nnodes++;
    f->nodes[id] = (tir_node){.op = (uint16_t)op, .type = t, .a = {a0, a1, a2, a3}, .body = -1, .alt = -1};
    block_push(f, b, id);
    return id;
}

int tir_const_i(tir_func *f, int b, tir_scalar s, int lanes, int64_t v)
{
    int id = tir_emit(f, b, TIR_CONST, tir_t(s, lanes), -1, -1, -1, -1);
    f->nodes[id].imm = v;
    return id;
}

int tir_const_f(tir_func *f, int b, int lanes, double v)
{
    int id = tir_emit(f, b, TIR_CONST, tir_t(TS_F32, lanes), -1, -1, -1, -1);
    f->nodes[id].fimm = v;
    return id;
}

int tir_loop(tir_func *f, int b, int lo, int hi, int step, tir_loop_kind kind, const char *name, int *body)
{
    int inner = tir_block_new(f);
    int id = tir_emit(f, b, TIR_LOOP, tir_t(TS_I64, 1), lo, hi, step, -1);
    f->nodes[id].body = inner;
    f->nodes[id].kind = (uint8_t)kind;
    f->nodes[id].name = name ? qk_strdup(f->arena, name) : NULL;
    *body = inner;
    return id;
}

int tir_if(tir_func *f, int b, int cond, int *then_block, int *else_block)
{
    int t = tir_block_new(f);
    int e = else_block ? tir_block_new(f) : -1;
    int id = tir_emit(f, b, TIR_IF, tir_t(TS_VOID, 1), cond, -1, -1, -1);
    f->nodes[id].body = t;
    f->nodes[id].alt = e;
    *then_block = t;
    if (else_block)
        *else_block = e;
    return id;
}

int tir_shuffle(tir_func *f, int b, int src, int lanes, const int32_t *idx)
{
    tir_type t = f->nodes[src].type;
    int id = tir_emit(f, b, TIR_SHUFFLE, tir_t((tir_scalar)t.s, lanes), src, -1, -1, -1);
    int32_t *s = qk_alloc(f->arena, (size_t)lanes * sizeof *s);
    memcpy(s, idx, (size_t)lanes * sizeof *s);
    f->nodes[id].shuf = s;
    return id;
}

int tir_const_lanes(tir_func *f, int b, tir_scalar s, int lanes, const int32_t *vals)
{
    int id = tir_emit(f, b, TIR_CONST, tir_t(s, lanes), -1, -1, -1, -1);
    int32_t *v = qk_alloc(f->arena, (size_t)lanes * sizeof *v);
    memcpy(v, vals, (size_t)lanes * sizeof *v);
    f->nodes[id].shuf = v;
    return id;
}

int tir_lut(tir_func *f, int b, int idx, int n, const uint8_t *table)
{
    int id = tir_emit(f, b, TIR_LUT, f->nodes[idx].type, idx, -1, -1, -1);
    int32_t *v = qk_alloc(f->arena, (size_t)n * sizeof *v);
    for (int i = 0; i < n; i++)
        v[i] = table[i];
    f->nodes[id].shuf = v;
    f->nodes[id].imm = n;
    return id;
}

int tir_lut_f32(tir_func *f, int b, int idx, int n, const float *table)
{
    int id = tir_emit(f, b, TIR_LUT, tir_t(TS_F32, f->nodes[idx].type.lanes), idx, -1, -1, -1);
    int32_t *v = qk_alloc(f->arena, (size_t)n * sizeof *v);
    memcpy(v, table, (size_t)n * sizeof *v);
    f->nodes[id].shuf = v;
    f->nodes[id].imm = n;
    return id;
}

/* ---- printer ---- */

static void print_type(tir_type t, qk_buf *out)
{
    if (t.lanes > 1)
        qk_buf_printf(out, "%sx%d", tir_scalar_name(t.s), t.lanes);
    else
        qk_buf_puts(out, tir_scalar_name(t.s));
}

static void print_ref(const tir_func *f, int id, qk_buf *out)
{
    const tir_node *n = &f->nodes[id];
    if (n->op == TIR_ARG)
        qk_buf_printf(out, "%%%s", f->args[n->imm].name);
    else if (n->op == TIR_LOOP || n->op == TIR_VAR)
        qk_buf_printf(out, "%%%s.%d", n->name ? n->name : "v", id);
    else
        qk_buf_printf(out, "%%%d", id);
}

static void print_operands(const tir_func *f, const tir_node *n, int nops, qk_buf *out)
{
    for (int i = 0; i < nops; i++) {
        if (n->a[i] < 0)
            continue;
        qk_buf_puts(out, i ? ", " : " ");
        print_ref(f, n->a[i], out);
    }
}

static void print_block(const tir_func *f, int b, int depth, qk_buf *out);

static void print_const(const tir_node *n, qk_buf *out)
{
    if (n->type.s == TS_F32)
        qk_buf_printf(out, " %.9g", n->fimm);
    else
        qk_buf_printf(out, " %lld", (long long)n->imm);
}

static void print_node(const tir_func *f, int id, int depth, qk_buf *out)
{
    const tir_node *n = &f->nodes[id];
    static const char *kinds[] = {"for", "unroll", "parallel for", "warp-parallel for"};
    qk_buf_indent(out, depth);
    if (n->op == TIR_LOOP) {
        qk_buf_printf(out, "%s ", kinds[n->kind]);
        print_ref(f, id, out);
        qk_buf_puts(out, " in [");
        print_ref(f, n->a[0], out);
        qk_buf_puts(out, ", ");
        print_ref(f, n->a[1], out);
        qk_buf_puts(out, ") step ");
        print_ref(f, n->a[2], out);
        qk_buf_puts(out, " {\n");
        print_block(f, n->body, depth + 1, out);
        qk_buf_indent(out, depth);
        qk_buf_puts(out, "}\n");
        return;
    }
    if (n->op == TIR_IF) {
        qk_buf_puts(out, "if ");
        print_ref(f, n->a[0], out);
        qk_buf_puts(out, " {\n");
        print_block(f, n->body, depth + 1, out);
        if (n->alt >= 0) {
            qk_buf_indent(out, depth);
            qk_buf_puts(out, "} else {\n");
            print_block(f, n->alt, depth + 1, out);
        }
        qk_buf_indent(out, depth);
        qk_buf_puts(out, "}\n");
        return;
    }
    if (n->type.s != TS_VOID && n->op != TIR_VSET && n->op != TIR_STORE && n->op != TIR_PREFETCH) {
        print_ref(f, id, out);
        qk_buf_puts(out, ": ");
        print_type(n->type, out);
        qk_buf_puts(out, " = ");
    }
    qk_buf_puts(out, tir_op_name(n->op));
    if (n->op == TIR_DOT4 && n->imm == TIR_DOT_SS)
        qk_buf_puts(out, ".ss"); /* signed x signed (sdot); plain dot4 is unsigned x signed */
    if (n->op == TIR_CONST)
        print_const(n, out);
    else if (n->op == TIR_ARG)
        qk_buf_printf(out, " %lld", (long long)n->imm);
    else
        print_operands(f, n, ops[n->op].nops, out);
    if (n->op == TIR_INSERT || n->op == TIR_EXTRACT)
        qk_buf_printf(out, " lane %lld", (long long)n->imm);
    if (n->op == TIR_MMA && tir_mma_shape_of((int)n->imm))
        qk_buf_printf(out, " # %s", tir_mma_shape_of((int)n->imm)->ptx);
    if (n->shuf && (n->op == TIR_SHUFFLE || n->op == TIR_CONST || n->op == TIR_LUT)) {
        qk_buf_puts(out, " [");
        for (int i = 0; i < (n->op == TIR_LUT ? (int)n->imm : n->type.lanes); i++) {
            float fv;
            memcpy(&fv, &n->shuf[i], sizeof fv);
            if (n->op == TIR_LUT && n->type.s == TS_F32)
                qk_buf_printf(out, "%s%.9g", i ? " " : "", fv);
            else
                qk_buf_printf(out, "%s%d", i ? " " : "", n->shuf[i]);
        }
        qk_buf_puts(out, "]");
    }
    qk_buf_puts(out, "\n");
}

static void print_block(const tir_func *f, int b, int depth, qk_buf *out)
{
    for (int i = 0; i < f->blocks[b].n; i++)
        print_node(f, f->blocks[b].ids[i], depth, out);
}

void tir_print(const tir_func *f, qk_buf *out)
{
    qk_buf_printf(out, "func %s(", f->name);
    for (int i = 0; i < f->nargs; i++) {
        const tir_arg *a = &f->args[i];
        qk_buf_printf(out, "%s%s: ", i ? ", " : "", a->name);
        if (a->s == TS_PTR)
            qk_buf_printf(out, "%sptr<%s>", a->is_const ? "const " : "", qk_dtype_name(a->dtype));
        else
            qk_buf_puts(out, "i64");
    }
    qk_buf_puts(out, ")\n");
    char cfg[256];
    tir_config_print(&f->cfg, cfg, sizeof cfg);
    qk_buf_printf(out, "  # config: %s\n", cfg);
    for (int g = 0; g < f->ngrids; g++)
        qk_buf_printf(out, "  # grid %d: statement %d, %d outputs per work item%s\n", g, f->grids[g].stmt,
                      f->grids[g].tile, f->grids[g].warp ? " (computed by one warp)" : "");
    qk_buf_puts(out, "{\n");
    print_block(f, f->entry, 1, out);
    qk_buf_puts(out, "}\n");
}

/* ---- verifier ---- */

typedef struct vstate {
    const tir_func *f;
    char *visible; /* node id -> defined and in scope */
    char *err;
    size_t errsz;
} vstate;

static int vfail(vstate *v, int id, const char *msg)
{
    snprintf(v->err, v->errsz, "tir verify: node %%%d (%s): %s", id, tir_op_name(v->f->nodes[id].op), msg);
    return -1;
}

static int is_int(int s)
{
    return s >= TS_I1 && s <= TS_I64;
}

static int int_bits(int s)
{
    return s == TS_I8 ? 8 : s == TS_I16 ? 16 : s == TS_I32 ? 32 : 64;
}

static int same(tir_type a, tir_type b)
{
    return a.s == b.s && a.lanes == b.lanes;
}

/* MMA: fragment types from its shape. */
static const char *check_mma(const tir_func *f, const tir_node *n)
{
    const tir_mma_shape *sh = tir_mma_shape_of((int)n->imm);
    if (!sh)
        return "unknown mma kind";
    tir_type ta = f->nodes[n->a[0]].type, tb = f->nodes[n->a[1]].type, tc = f->nodes[n->a[2]].type;
    if (!same(ta, tir_t(TS_I32, sh->a_words)) || !same(tb, tir_t(TS_I32, sh->b_words)))
        return "mma A and B fragments are i32 vectors of the shape's words";
    if (!same(tc, tir_t(sh->acc, 4)) || !same(n->type, tc))
        return "mma C and D are 4 lanes of the shape's accumulator kind";
    if (sh->sparse != (n->a[3] >= 0))
        return "mma.sp takes a metadata operand, dense mma none";
    if (n->a[3] >= 0 && !same(f->nodes[n->a[3]].type, tir_t(TS_I32, 1)))
        return "mma.sp metadata is an i32 scalar";
    return NULL;
}

/* Type rules of the value ops; returns NULL if fine, else a message. */
static const char *check_types(const tir_func *f, const tir_node *n)
{
    const tir_node *a = n->a[0] >= 0 ? &f->nodes[n->a[0]] : NULL;
    const tir_node *b = n->a[1] >= 0 ? &f->nodes[n->a[1]] : NULL;
    switch (n->op) {
    case TIR_ADD: case TIR_SUB: case TIR_MUL: case TIR_DIV: case TIR_REM: case TIR_MIN: case TIR_MAX:
    case TIR_SHL: case TIR_SHR: case TIR_SAR: case TIR_AND: case TIR_OR: case TIR_XOR:
        if (!is_int(n->type.s) || !same(a->type, n->type) || !same(b->type, n->type))
            return "integer operands and result must have the same type";
        return NULL;
    case TIR_FADD: case TIR_FSUB: case TIR_FMUL: case TIR_FDIV: case TIR_FMAX: case TIR_FMIN:
        if (n->type.s != TS_F32 || !same(a->type, n->type) || !same(b->type, n->type))
            return "f32 operands and result must have the same type";
        return NULL;
    case TIR_FMA:
        if (n->type.s != TS_F32 || !same(a->type, n->type) || !same(b->type, n->type) ||
            !same(f->nodes[n->a[2]].type, n->type))
            return "fma operands must all match the result";
        return NULL;
    case TIR_FNEG: case TIR_FABS: case TIR_FSQRT: case TIR_FEXP: case TIR_FRINT:
        return n->type.s == TS_F32 && same(a->type, n->type) ? NULL : "f32 unary type mismatch";
    case TIR_ZEXT: case TIR_SEXT: case TIR_TRUNC:
        return is_int(a->type.s) && is_int(n->type.s) && a->type.lanes == n->type.lanes ? NULL
                                                                                       : "integer conversion lanes";
    case TIR_SITOFP: case TIR_UITOFP:
        return is_int(a->type.s) && n->type.s == TS_F32 && a->type.lanes == n->type.lanes ? NULL : "int to f32";
    case TIR_FPTOSI:
        return a->type.s == TS_F32 && is_int(n->type.s) && a->type.lanes == n->type.lanes ? NULL : "f32 to int";
    case TIR_H2F:
        return a->type.s == TS_I16 && n->type.s == TS_F32 && a->type.lanes == n->type.lanes ? NULL : "h2f wants i16";
    case TIR_F2H:
        return a->type.s == TS_F32 && n->type.s == TS_I16 && a->type.lanes == n->type.lanes ? NULL : "f2h wants f32";
    case TIR_BITCAST:
        if (is_int(a->type.s) && is_int(n->type.s) && a->type.s != TS_I1 && n->type.s != TS_I1 &&
            a->type.lanes * int_bits(a->type.s) == n->type.lanes * int_bits(n->type.s))
            return NULL;
        if (a->type.s == TS_I1 && is_int(n->type.s) && n->type.s != TS_I1 && n->type.lanes == 1 &&
            a->type.lanes == int_bits(n->type.s)) /* a mask to an integer: lane l is bit l */
            return NULL;
        return a->type.lanes == n->type.lanes &&
                       ((a->type.s == TS_I32 && n->type.s == TS_F32) || (a->type.s == TS_F32 && n->type.s == TS_I32))
                   ? NULL
                   : "bitcast is i32 <-> f32, between integer vectors of the same size, or i1 x B -> iB";
    case TIR_ILT: case TIR_FLT:
        return n->type.s == TS_I1 && same(a->type, b->type) && a->type.lanes == n->type.lanes ? NULL
                                                                                             : "compare types";
    case TIR_IEQ:
        return n->type.s == TS_I1 && is_int(a->type.s) && same(a->type, b->type) && a->type.lanes == n->type.lanes
                   ? NULL
                   : "ieq compares integers of one type -> i1";
    case TIR_POPCNT:
        return is_int(n->type.s) && same(a->type, n->type) ? NULL : "popcnt operand and result must be one integer type";
    case TIR_PERM:
        return n->type.s == TS_F32 && same(a->type, n->type) && b->type.s == TS_I32 &&
                       b->type.lanes == n->type.lanes && n->type.lanes >= 2 && !(n->type.lanes & (n->type.lanes - 1))
                   ? NULL
                   : "perm maps a table f32 x L and an index i32 x L (L a power of two) to f32 x L";
    case TIR_LUT:
        if (!(n->type.s == TS_I8 && same(a->type, n->type)) &&
            !(n->type.s == TS_F32 && a->type.s == TS_I32 && a->type.lanes == n->type.lanes))
            return "lut maps i8 x L to i8 x L, or i32 x L to f32 x L";
        if (!n->shuf || n->imm < 2 || n->imm > 256 || (n->imm & (n->imm - 1)))
            return "lut needs a table of 2..256 (a power of two) entries";
        for (int i = 0; n->type.s == TS_I8 && i < n->imm; i++)
            if (n->shuf[i] < 0 || n->shuf[i] > 255)
                return "lut table entries are bytes";
        return NULL;
    case TIR_DOT4: {
        const tir_node *c = &f->nodes[n->a[2]];
        return n->type.s == TS_I32 && same(c->type, n->type) && a->type.s == TS_I8 && same(a->type, b->type) &&
                       a->type.lanes == 4 * n->type.lanes
                   ? NULL
                   : "dot4 takes i8 x 4L, i8 x 4L, i32 x L -> i32 x L";
    }
    case TIR_SELECT: {
        const tir_node *c = &f->nodes[n->a[2]];
        return a->type.s == TS_I1 && a->type.lanes == n->type.lanes && same(b->type, n->type) && same(c->type, n->type)
                   ? NULL
                   : "select types";
    }
    case TIR_SPLAT:
        return a->type.lanes == 1 && a->type.s == n->type.s ? NULL : "splat takes a scalar of the result's kind";
    case TIR_SHUFFLE:
        for (int i = 0; i < n->type.lanes; i++)
            if (!n->shuf || n->shuf[i] < 0 || n->shuf[i] >= a->type.lanes)
                return "shuffle index out of range";
        return a->type.s == n->type.s ? NULL : "shuffle kind";
    case TIR_HADD:
        return a->type.s == TS_F32 && n->type.s == TS_F32 && n->type.lanes == 1 ? NULL : "hadd f32 vector -> f32";
    case TIR_LANEID:
        return n->type.s == TS_I32 && n->type.lanes == 1 ? NULL : "laneid is an i32 scalar";
    case TIR_INSERT:
        return same(a->type, n->type) && b->type.s == n->type.s && b->type.lanes == 1 && n->imm >= 0 &&
                       n->imm < n->type.lanes
                   ? NULL
                   : "insert puts a scalar of the vector's kind at a lane inside it";
    case TIR_EXTRACT:
        return a->type.s == n->type.s && n->type.lanes == 1 && n->imm >= 0 && n->imm < a->type.lanes
                   ? NULL
                   : "extract takes a lane inside the vector, of its kind";
    case TIR_MMA:
        return check_mma(f, n);
    default:
        return NULL;
    }
}

static const char *check_memory(const tir_func *f, const tir_node *n)
{
    const tir_node *p = &f->nodes[n->a[0]];
    int reads = n->op != TIR_STORE && n->op != TIR_PREFETCH;
    if (p->op != TIR_ARG || f->args[p->imm].s != TS_PTR)
        return "address must be a pointer argument";
    tir_type ot = f->nodes[n->a[1]].type;
    if (n->op == TIR_GATHER) {
        if (ot.s != TS_I64 || ot.lanes != n->type.lanes)
            return "gather offsets must be i64 with the result's lanes";
        if (n->type.s == TS_VOID || n->type.s == TS_I1 || n->type.s == TS_PTR)
            return "gather loads i8, i16, i32, i64 or f32";
    } else if (ot.s != TS_I64 || ot.lanes != 1) {
        return "byte offset must be a scalar i64";
    }
    if (n->op == TIR_PREFETCH)
        return NULL;
    int mask = reads ? n->a[2] : n->a[3];
    int lanes = reads ? n->type.lanes : f->nodes[n->a[2]].type.lanes;
    if (mask >= 0 && (f->nodes[mask].type.s != TS_I1 || f->nodes[mask].type.lanes != lanes))
        return "mask must be i1 with the value's lanes";
    if (n->op == TIR_STORE && f->args[p->imm].is_const)
        return "store through a const (parameter) pointer";
    return NULL;
}

static int verify_block(vstate *v, int b);

static int verify_node(vstate *v, int id)
{
    const tir_func *f = v->f;
    const tir_node *n = &f->nodes[id];
    if (n->op >= TIR_OP_COUNT)
        return vfail(v, id, "unknown op");
    for (int i = 0; i < ops[n->op].nops; i++) {
        int a = n->a[i];
        int optional = ((n->op == TIR_LOAD || n->op == TIR_GATHER) && i == 2) || (n->op == TIR_STORE && i == 3) ||
                       (n->op == TIR_MMA && i == 3);
        if (a < 0 && optional)
            continue;
        if (a < 0 || a >= f->nnodes || !v->visible[a])
            return vfail(v, id, "operand not defined in an enclosing scope before use");
    }
    const char *msg = NULL;
    if (n->op == TIR_ARG && (n->imm < 0 || n->imm >= f->nargs))
        msg = "argument index out of range";
    else if (n->op == TIR_LOAD || n->op == TIR_STORE || n->op == TIR_GATHER || n->op == TIR_PREFETCH)
        msg = check_memory(f, n);
    else if ((n->op == TIR_VGET || n->op == TIR_VSET) && f->nodes[n->a[0]].op != TIR_VAR)
        msg = "vget/vset need a var";
    else if (n->op == TIR_VSET && !same(f->nodes[n->a[1]].type, f->nodes[n->a[0]].type))
        msg = "vset value type differs from the var";
    else if (n->op == TIR_VAR && !same(f->nodes[n->a[0]].type, n->type))
        msg = "var initial value type";
    else if (n->op == TIR_LOOP || n->op == TIR_IF)
        msg = NULL;
    else if (n->op == TIR_FENCE)
        msg = n->type.s != TS_VOID ? "a fence has no value" : NULL;
    else
        msg = check_types(f, n);
    if (msg)
        return vfail(v, id, msg);
    if (n->op == TIR_LOOP) {
        for (int i = 0; i < 3; i++)
            if (f->nodes[n->a[i]].type.s != TS_I64 || f->nodes[n->a[i]].type.lanes != 1)
                return vfail(v, id, "loop bounds must be scalar i64");
        v->visible[id] = 1;
        return verify_block(v, n->body);
    }
    if (n->op == TIR_IF) {
        if (f->nodes[n->a[0]].type.s != TS_I1 || f->nodes[n->a[0]].type.lanes != 1)
            return vfail(v, id, "if condition must be a scalar i1");
        if (verify_block(v, n->body) || (n->alt >= 0 && verify_block(v, n->alt)))
            return -1;
    }
    v->visible[id] = 1;
    return 0;
}

/* Values defined in a block go out of scope when it ends. */
static int verify_block(vstate *v, int b)
{
    const tir_block *bl = &v->f->blocks[b];
    for (int i = 0; i < bl->n; i++)
        if (verify_node(v, bl->ids[i]))
            return -1;
    for (int i = 0; i < bl->n; i++)
        v->visible[bl->ids[i]] = 0;
    return 0;
}

int tir_verify(const tir_func *f, char *err, size_t errsz)
{
    vstate v = {f, qk_xcalloc((size_t)f->nnodes + 1, 1), err, errsz};
    int r = verify_block(&v, f->entry);
    free(v.visible);
    if (r == 0 && (f->arg_begin < 0 || f->arg_end < 0 || f->arg_begin >= f->nargs || f->arg_end >= f->nargs)) {
        snprintf(err, errsz, "tir verify: missing begin/end arguments");
        r = -1;
    }
    return r;
}

/* ---- configurations as text ---- */

void tir_config_print(const tir_config *cfg, char *buf, size_t n)
{
    qk_buf b = {0};
    qk_buf_printf(&b, "lanes=%d tile_par=%d tile_inner=%d unroll=%d idot=%d idot_bytes=%d kblocks=%d", cfg->lanes,
                  cfg->tile_par, cfg->tile_inner, cfg->unroll, cfg->idot, cfg->idot_bytes, cfg->kblocks);
    if (cfg->repack)
        qk_buf_printf(&b, " repack=%d", cfg->repack);
    if (cfg->streams)
        qk_buf_printf(&b, " streams=%d", cfg->streams);
    /* printed once settled (tir_settle_config), 0 included, so that the text
     * parses back to the same code whatever -1 would settle to */
    if (cfg->prefetch >= 0)
        qk_buf_printf(&b, " prefetch=%d", cfg->prefetch);
    if (cfg->fence)
        qk_buf_printf(&b, " fence=%d", cfg->fence);
    if (cfg->parallel[0])
        qk_buf_printf(&b, " parallel=%s", cfg->parallel);
    for (int i = 0; i < cfg->ntiles; i++)
        qk_buf_printf(&b, " tile.%s=%d", cfg->tiles[i].index, cfg->tiles[i].size);
    char *s = qk_buf_take(&b);
    snprintf(buf, n, "%s", s);
    free(s);
}

/* Integer keys of the configuration text, with their legal ranges. */
static int *config_field(tir_config *cfg, const char *key, size_t len, int *lo, int *hi)
{
    static const struct {
        const char *name;
        size_t off;
        int lo, hi;
    } keys[] = {
        {"lanes", offsetof(tir_config, lanes), 1, 64},
        {"tile_par", offsetof(tir_config, tile_par), 1, 64},
        {"tile_inner", offsetof(tir_config, tile_inner), 1, 64},
        {"unroll", offsetof(tir_config, unroll), 1, 16},
        {"idot", offsetof(tir_config, idot), 0, 1},
        {"idot_bytes", offsetof(tir_config, idot_bytes), 4, 64},
        {"kblocks", offsetof(tir_config, kblocks), 1, 16},
        {"repack", offsetof(tir_config, repack), 0, 16},
        {"streams", offsetof(tir_config, streams), 0, 8},
        {"prefetch", offsetof(tir_config, prefetch), 0, 65536},
        {"fence", offsetof(tir_config, fence), 0, 1},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strlen(keys[i].name) == len && strncmp(keys[i].name, key, len) == 0) {
            *lo = keys[i].lo;
            *hi = keys[i].hi;
            return (int *)((char *)cfg + keys[i].off);
        }
    return NULL;
}

int tir_config_parse(const char *text, tir_config *cfg, char *err, size_t errsz)
{
    tir_config c = *cfg;
    const char *p = text ? text : "";
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        if (!*p)
            break;
        const char *eq = p;
        while (*eq && *eq != '=' && *eq != ' ' && *eq != ',')
            eq++;
        if (*eq != '=') {
            snprintf(err, errsz, "configuration: expected key=value at '%.*s'", (int)(eq - p), p);
            return -1;
        }
        const char *v = eq + 1, *end = v;
        while (*end && *end != ' ' && *end != ',' && *end != '\t')
            end++;
        size_t klen = (size_t)(eq - p);
        if (klen == 8 && strncmp(p, "parallel", 8) == 0) {
            if ((size_t)(end - v) >= sizeof c.parallel) {
                snprintf(err, errsz, "configuration: parallel index name too long");
                return -1;
            }
            snprintf(c.parallel, sizeof c.parallel, "%.*s", (int)(end - v), v);
        } else {
            char *stop;
            long val = strtol(v, &stop, 10);
            if (stop != end || end == v) {
                snprintf(err, errsz, "configuration: '%.*s' needs an integer value, got '%.*s'", (int)klen, p,
                         (int)(end - v), v);
                return -1;
            }
            if (klen > 5 && strncmp(p, "tile.", 5) == 0) {
                int i = 0;
                while (i < c.ntiles && !(strlen(c.tiles[i].index) == klen - 5 &&
                                         strncmp(c.tiles[i].index, p + 5, klen - 5) == 0))
                    i++;
                if (i == c.ntiles && c.ntiles == 8) {
                    snprintf(err, errsz, "configuration: too many tile requests");
                    return -1;
                }
                if (klen - 5 >= sizeof c.tiles[0].index || val < 1 || val > 4096) {
                    snprintf(err, errsz, "configuration: bad tile request '%.*s'", (int)(end - p), p);
                    return -1;
                }
                snprintf(c.tiles[i].index, sizeof c.tiles[i].index, "%.*s", (int)(klen - 5), p + 5);
                c.tiles[i].size = (int)val;
                if (i == c.ntiles)
                    c.ntiles++;
            } else {
                int lo, hi;
                int *fld = config_field(&c, p, klen, &lo, &hi);
                if (!fld) {
                    snprintf(err, errsz,
                             "configuration: unknown key '%.*s' (keys: lanes, tile_par, tile_inner, unroll, idot, "
                             "idot_bytes, kblocks, repack, streams, prefetch, fence, parallel, tile.INDEX)",
                             (int)klen, p);
                    return -1;
                }
                if (val < lo || val > hi) {
                    snprintf(err, errsz, "configuration: %.*s=%ld is out of range [%d, %d]", (int)klen, p, val, lo,
                             hi);
                    return -1;
                }
                if (fld == &c.repack && val != 0 && val != 1 && val != 4 && val != 8 && val != 16) {
                    snprintf(err, errsz, "configuration: repack=%ld: rows per group are 4, 8 or 16 (1: the target's "
                             "choice, 0: the format's layout)", val);
                    return -1;
                }
                if (fld == &c.prefetch && val % 64) {
                    snprintf(err, errsz, "configuration: prefetch=%ld: bytes ahead are a multiple of 64 (a cache "
                             "line; 0: no prefetch)", val);
                    return -1;
                }
                if (fld == &c.streams && (val & (val - 1))) {
                    snprintf(err, errsz, "configuration: streams=%ld: runs taken in turn are 1, 2, 4 or 8 (0: the "
                             "builder's choice)", val);
                    return -1;
                }
                *fld = (int)val;
            }
        }
        p = end;
    }
    *cfg = c;
    return 0;
}

/* format.h — the format descriptor: how one quantized tensor is stored.
 *
 * A format is pure data. Every stage that decodes (the reference
 * interpreter, the tiled-IR decode lowering, the packers) reads this
 * descriptor and applies generic rules; nothing anywhere switches on a
 * format's name. docs/formats.md is the user-facing description.
 *
 * ---- Shape of a packed tensor ----
 * A quantized tensor has rank >= 1; its last dim K is the reduction axis,
 * the leading dims are flattened into rows. Packed bytes:
 *     [tensor header: tensor_header_bytes][row 0][row 1]...
 *     row = [row header: row_header_bytes][block 0][block 1]...
 * ceil(K / block) blocks per row of block_bytes each; the last block of a
 * row is padded (its missing elements quantize as 0). The tensor header
 * holds the per-tensor scale (f32 or scale_num) and then the extra f32
 * tensor scale; the row header holds the per-row scale. No alignment.
 *
 * ---- Value of dense element e of a block (0 <= e < block) ----
 *   sparse (sp_n > 0): the block stores block/sp_m groups of sp_n kept
 *     items; kept item j belongs to group j / sp_n and sits at position
 *     index[j] (0..sp_m-1) of it. Element e is the kept item whose group is
 *     e / sp_m and whose index is e % sp_m, or exactly 0 if none is.
 *     Everything below is then evaluated for that kept item j, with the
 *     sub-block taken from the dense position e.
 *   c = codeval of the item's code:
 *       SINT/UINT/OFFSET   integers (offset: code - offset)
 *       TERNARY            code - 1 (code 0..2; a 2-bit 3 decodes as 2)
 *       BINARY             bit 0 -> +1, bit 1 -> -1
 *       MINIFLOAT          OCP minifloat (ebits, mbits, bias, special)
 *       TABLE              table[code] (2^bits values, rounded to f32)
 *       VQ                 group g = e / vq_dim, lane t = e % vq_dim:
 *                          sum over books b of book[b][idx(g, b)][t];
 *                          with vq_signs, negated when sign bit t of the
 *                          group's vq_dim-1 stored sign bits is 1, the
 *                          last lane's sign being the parity of those bits.
 *   v = c - zero                 zero: none | constant | stored per block
 *   v = v * scale                scale: none | per tensor | per row |
 *                                per block | two-level:
 *                                  super (per block, scale_num or 1) *
 *                                  sub (per sub_block, sub_num)
 *   v = v + min_sign * min       min: none | per block (min_num) |
 *                                  two-level: super_min * sub_min
 *   v = v * tensor_scale         optional extra f32 per tensor (NVFP4)
 *
 * ---- Fields and layout ----
 * A block is made of fields (qk_field), each a list of items of a fixed
 * bit width: codes (kept items; VQ indices, group-major then book),
 * scale, zero, min (one item each), subscale/submin (block/sub_block
 * items), index (kept items, ceil(log2 sp_m) bits), signs (block/vq_dim
 * items of vq_dim-1 bits). Pieces place ranges of items and ranges of
 * their bits at byte positions inside the block (qk_piece). The canonical
 * layout, used when the DSL gives none, is every field in the order of
 * qk_field, each starting on a fresh byte, items packed LSB-first
 * (QK_PLACE_STREAM). Byte-exact external layouts (ggml) are written as
 * explicit pieces in the DSL.
 *
 * Prefix: qk_format_, qk_num_. */
#ifndef QK_FORMAT_H
#define QK_FORMAT_H

#include "common/base.h"

typedef enum {
    QK_CODE_SINT,      /* two's complement */
    QK_CODE_UINT,      /* unsigned */
    QK_CODE_OFFSET,    /* unsigned code minus a constant offset */
    QK_CODE_TERNARY,   /* {-1, 0, 1}: 2-bit code, or base-3 digit (placement) */
    QK_CODE_BINARY,    /* {+1, -1} as a sign bit */
    QK_CODE_MINIFLOAT, /* e2m1, e3m2, e2m3, e4m3, e5m2 */
    QK_CODE_TABLE,     /* scalar codebook given in the format (nf4, lists) */
    QK_CODE_VQ,        /* index into codebook tensor(s) passed at launch */
} qk_code_kind;

/* Minifloat special values (OCP): */
typedef enum {
    QK_MF_FINITE, /* no inf, no NaN (e2m1, e3m2, e2m3) */
    QK_MF_FN,     /* no inf; all-ones exponent and mantissa is NaN (e4m3) */
    QK_MF_IEEE,   /* all-ones exponent: inf (mantissa 0) or NaN (e5m2) */
} qk_mf_special;

/* Numeric type of a stored scale, zero point or min. */
typedef enum {
    QK_NUM_NONE,
    QK_NUM_F32,
    QK_NUM_F16,
    QK_NUM_BF16,
    QK_NUM_E8M0,  /* 2^(e-127); 0xff is NaN */
    QK_NUM_UE4M3, /* unsigned e4m3 (bias 7, 0x7f NaN), NVFP4 block scales */
    QK_NUM_E4M3,  /* signed e4m3 */
    QK_NUM_U8,
    QK_NUM_I8,
    QK_NUM_UINT,  /* unsigned integer of a given width 1..8 (sub-block scales/mins) */
} qk_num;

typedef enum { QK_PER_NONE, QK_PER_TENSOR, QK_PER_ROW, QK_PER_BLOCK } qk_per;
typedef enum { QK_ZERO_NONE, QK_ZERO_CONST, QK_ZERO_BLOCK } qk_zero_kind;

/* Fields of a block, in canonical order. */
#define QK_FIELDS(X)           \
    X(SCALE, "scale")          \
    X(ZERO, "zero")            \
    X(MIN, "min")              \
    X(SUBSCALE, "subscale")    \
    X(SUBMIN, "submin")        \
    X(CODES, "codes")          \
    X(INDEX, "index")          \
    X(SIGNS, "signs")

typedef enum {
#define QK_FIELD_ENUM(id, name) QK_FIELD_##id,
    QK_FIELDS(QK_FIELD_ENUM)
#undef QK_FIELD_ENUM
    QK_FIELD_COUNT
} qk_field;

typedef enum {
    /* bit position of item t (relative to the piece's first item):
     *   byte*8 + shift + t*width, a little-endian bit string (items may
     *   straddle bytes). */
    QK_PLACE_STREAM,
    /* runs of `group` bytes; S = (8 - shift) / width slots per byte:
     *   byte + (t / (group*S)) * group + t % group,
     *   bit shift + width * ((t / group) % S).
     * ggml's nibble order is interleave 16 (q4_0), 32 (q4_K, tq2_0). */
    QK_PLACE_INTERLEAVE,
    /* base-3 digits of ternary codes, 5 per byte, in runs of `group`
     * bytes: byte + (t / (group*5)) * group + t % group holds digit
     * n = (t / group) % 5, read as ((q * 3^n) & 255) * 3 >> 8 (ggml tq1_0);
     * a byte stores ceil(sum_n d_n 3^(4-n) * 256 / 243). width is 2 (the
     * digit's value range), shift must be 0. */
    QK_PLACE_BASE3,
} qk_place;

typedef struct qk_piece {
    int field;        /* qk_field */
    int place;        /* qk_place */
    int first, count; /* items [first, first + count) of the field */
    int lo, width;    /* bits [lo, lo + width) of each item's value */
    int byte, shift;  /* position in the block (bytes from its start) */
    int group;        /* INTERLEAVE / BASE3: bytes per run */
} qk_piece;

#define QK_MAX_BLOCK 4096
#define QK_MAX_PIECES 32
#define QK_MAX_VQ_BOOKS 4

typedef struct qk_format {
    const char *name;
    qk_loc loc;

    /* element code */
    qk_code_kind code;
    int bits;   /* stored code width: 1..8; VQ: index width 1..16; TERNARY 2; BINARY 1 */
    int offset; /* OFFSET */
    int ebits, mbits, bias;   /* MINIFLOAT */
    qk_mf_special special;    /* MINIFLOAT */
    const double *table;      /* TABLE: 2^bits values (owned by the program's arena) */
    int vq_dim, vq_books;     /* VQ: elements per index group, codebooks summed */
    int vq_signs;             /* VQ: explicit vq_dim-1 sign bits + parity per group */
    qk_dtype vq_dtype;        /* VQ: codebook element type, f16 or f32 */

    int block; /* elements per block, 1..QK_MAX_BLOCK */

    /* scale */
    qk_per scale_per;    /* NONE, TENSOR, ROW or BLOCK */
    qk_num scale_num;    /* its type; BLOCK with sub_block: the super scale (NONE = 1) */
    int sub_block;       /* two-level: elements per sub-block (divides block), 0 = none */
    qk_num sub_num;      /* sub-block scale type (UINT: sub_bits wide, or a float num) */
    int sub_bits;
    /* min: v += min_sign * (min_num value [* submin]) */
    qk_num min_num;      /* NONE, or per-block (super-)min type */
    int min_sign;        /* +1 or -1 */
    qk_num submin_num;   /* two-level min: per sub-block, or NONE */
    int submin_bits;
    /* zero point */
    qk_zero_kind zero;
    qk_num zero_num;     /* BLOCK: u8, i8, f16, f32 */
    double zero_const;   /* CONST */
    int tensor_scale;    /* 1: extra f32 per-tensor scale */

    /* N:M sparsity along the reduction axis; sp_n = 0 when dense */
    int sp_n, sp_m;

    /* layout */
    int explicit_layout; /* pieces came from the DSL */
    int npieces;
    qk_piece pieces[QK_MAX_PIECES];

    /* Filled by qk_format_finish(): */
    int items[QK_FIELD_COUNT];  /* items per block of each field (0 = absent) */
    int width[QK_FIELD_COUNT];  /* bits per item */
    int block_bytes;
    int row_header_bytes;       /* per-row scale */
    int tensor_header_bytes;    /* per-tensor scale, then tensor_scale */
    int kept;                   /* items of CODES that are elements: block*sp_n/sp_m, or block */
} qk_format;

/* Options of the quantizer. */
typedef struct qk_pack_opts {
    const void *codebook; /* VQ: books of vq_dtype, [vq_books][2^bits][vq_dim]; else NULL */
    int mse;              /* 1: search block scales that minimise squared error */
} qk_pack_opts;

/* ---- qk_num ---- */
const char *qk_num_name(qk_num n, int bits); /* "f16", "e8m0", "uint6", ... */
int qk_num_bits(qk_num n, int bits);         /* storage width in bits */
double qk_num_decode(qk_num n, uint32_t raw);  /* raw: the stored bits */
/* Nearest representable value (round half to even, saturating to the
 * largest finite value, NaN stays NaN where the type has one, else 0);
 * returns the stored bits. */
uint32_t qk_num_encode(qk_num n, int bits, double v);

/* ---- minifloats (element codes and scale types) ---- */
/* Exact value of code (ebits+mbits+1 bits, sign on top) of an OCP
 * minifloat; unsigned when is_unsigned. */
double qk_minifloat_decode(int ebits, int mbits, int bias, qk_mf_special sp, int is_unsigned, uint32_t code);
/* f32 value -> code: round to nearest even, saturate to max finite, NaN
 * to the NaN code where there is one, else 0. */
uint32_t qk_minifloat_encode(int ebits, int mbits, int bias, qk_mf_special sp, int is_unsigned, double v);

/* ---- the format ---- */
/* Checks ranges and combinations, fills items/width, builds the canonical
 * layout when npieces == 0, verifies an explicit layout (every bit of
 * every item placed exactly once, no two pieces share a bit, inside the
 * block) and computes the sizes. Returns 0, or -1 with a message in err
 * (the frontend reports it at the format's position). */
int qk_format_finish(qk_format *f, char *err, size_t errsz);

/* Smallest and largest codeval of an integer-like code (SINT, UINT,
 * OFFSET, TERNARY, BINARY). */
void qk_format_code_range(const qk_format *f, int *lo, int *hi);
/* Value of one raw scalar code (every kind but VQ). */
double qk_format_codeval(const qk_format *f, uint32_t code);

/* Raw value of item i of field fl of one block (all its pieces joined). */
uint32_t qk_format_item(const qk_format *f, const uint8_t *blk, int fl, int i);
/* ORs value v into item i of field fl of a block (bits must be zero). */
void qk_format_put_item(const qk_format *f, uint8_t *blk, int fl, int i, uint32_t v);

/* Where the bits of one item lie in its block: one entry per piece. For a
 * base-3 piece, `bit` is the digit's place (0..4) in its byte. */
typedef struct qk_item_bits {
    int byte;
    int bit, width, lo; /* bits [bit, bit + width) hold the value's bits [lo, lo + width) */
    int base3;
} qk_item_bits;
/* The pieces of item i of field fl into out[0..max); returns their count
 * (at most QK_MAX_PIECES). qk_format_item joins the same pieces. */
int qk_format_item_bits(const qk_format *f, int fl, int i, qk_item_bits *out, int max);
/* Digit `place` (0..4) of a base-3 byte, as qk_format_item reads it. */
uint32_t qk_format_base3_digit(uint8_t q, int place);

int64_t qk_format_row_bytes(const qk_format *f, int64_t k); /* header + blocks */
int64_t qk_format_size(const qk_format *f, int64_t rows, int64_t k);
/* Expected number of codebook elements (vq_books * 2^bits * vq_dim), 0
 * for formats without one. */
int64_t qk_format_codebook_elems(const qk_format *f);

/* Exact value of element k of row `row` of a packed tensor of row length
 * klen (double, no rounding). codebook: VQ books, else NULL. */
double qk_format_get(const qk_format *f, const uint8_t *tensor, int64_t row, int64_t klen, int64_t k,
                     const void *codebook);

/* Bits per weight (tensor and row headers not counted). */
double qk_format_bits_per_weight(const qk_format *f);

/* Quantizes rows x k f32 values (row-major) into dst (qk_format_size
 * bytes). Round to nearest; absmax scales (mean |x| for BINARY),
 * min/max with a zero point or min; N:M keeps the sp_n largest |x| of
 * every sp_m; VQ picks the nearest codeword (sum of books: greedy book by
 * book, then two refinement passes). Returns 0, or -1 + err (VQ without
 * codebook). */
int qk_format_pack(const qk_format *f, const float *src, int64_t rows, int64_t k, uint8_t *dst,
                   const qk_pack_opts *opts, char *err, size_t errsz);
/* Decodes every element to f32 (rounded from the exact value). */
void qk_format_unpack(const qk_format *f, const uint8_t *src, int64_t rows, int64_t k, float *dst,
                      const void *codebook);

/* 1 if quantize(x, f) can be compiled into a kernel: code SINT, UINT,
 * OFFSET, TERNARY, BINARY or MINIFLOAT; scale none, per block (single
 * level) or per row, of f32/f16/bf16/e8m0; no zero point, min, tensor
 * scale, sparsity or base-3 placement. Else 0 with the reason in why. */
int qk_format_kernel_quantizable(const qk_format *f, char *why, size_t whysz);

/* ---- serialized formats (ahead-of-time objects, libqkc_rt) ----
 * A flat byte image of a finished format: a header (magic, version,
 * sizeof(qk_format)), the struct with its pointers cleared, then the
 * table values. Only read back by the same qkc version's runtime. */
void qk_format_serialize(const qk_format *f, qk_buf *out);
/* Reads an image into *f; the table (if any) is malloc'd into *table
 * (free it after the last use of f), the name points into nothing ("").
 * 0, or -1 + err when the image is damaged or from another version. */
int qk_format_deserialize(const void *data, size_t n, qk_format *f, double **table, char *err, size_t errsz);

/* The format as DSL text on one line plus "# B bits/weight". */
void qk_format_print(const qk_format *f, qk_buf *out);

#endif

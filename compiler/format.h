/* format.h — the format descriptor: how one quantized tensor is stored.
 *
 * A format is pure data. Every stage that decodes (the reference
 * interpreter, the tiled-IR decode lowering, the packers) reads this
 * descriptor and applies generic rules; nothing anywhere switches on a
 * format's name.
 *
 * Value of one element (issue 2 scope; later kinds slot into the enums):
 *     value = (codeval(code) - zero) * scale
 * codeval: SINT   two's complement of `bits` bits
 *          UINT   code as unsigned
 *          OFFSET code - offset
 * zero:    0, or the block's stored zero point (zero_dtype)
 * scale:   1, or the block's stored scale (scale_dtype)
 *
 * Canonical byte layout of a tensor [rows, K] (K = reduction axis, last):
 * each row is ceil(K / block) blocks, rows are contiguous. A block is
 *     [scale : scale_dtype][zero : zero_dtype][codes : ceil(block*bits/8) bytes]
 * codes packed LSB-first: element e of the block occupies bits
 * [e*bits, (e+1)*bits) of the code bytes read as a little-endian bit
 * string. The last block of a row is padded with zero bytes when K is not
 * a multiple of block. No alignment is required.
 *
 * Prefix: qk_format_. */
#ifndef QK_FORMAT_H
#define QK_FORMAT_H

#include "common/base.h"

typedef enum {
    QK_CODE_SINT,   /* two's complement */
    QK_CODE_UINT,   /* unsigned */
    QK_CODE_OFFSET, /* unsigned code minus a constant offset */
} qk_code_kind;

typedef enum {
    QK_SCALE_NONE,
    QK_SCALE_BLOCK, /* one scale per block along the reduction axis */
} qk_scale_kind;

typedef enum {
    QK_ZERO_NONE,
    QK_ZERO_BLOCK, /* one stored zero point per block */
} qk_zero_kind;

#define QK_MAX_BLOCK 4096

typedef struct qk_format {
    const char *name;
    qk_loc loc;
    qk_code_kind code;
    int bits;   /* 1..8 */
    int offset; /* QK_CODE_OFFSET only */
    int block;  /* elements per block, 1..QK_MAX_BLOCK */
    qk_scale_kind scale;
    qk_dtype scale_dtype; /* f32, f16, bf16 */
    qk_zero_kind zero;
    qk_dtype zero_dtype; /* u8, i8, f16, f32 */
    /* Canonical layout, filled by qk_format_finish(). */
    int scale_off, zero_off, codes_off; /* byte offsets inside a block */
    int code_bytes;                     /* ceil(block*bits/8) */
    int block_bytes;
} qk_format;

/* Checks ranges and fills the layout fields. Returns 0, or -1 with a
 * message in err (a format built by the frontend never fails here). */
int qk_format_finish(qk_format *f, char *err, size_t errsz);

/* Smallest and largest codeval of the format's element code. */
void qk_format_code_range(const qk_format *f, int *lo, int *hi);
/* codeval of a raw code (bits wide, already masked). */
int qk_format_codeval(const qk_format *f, unsigned code);

int64_t qk_format_row_bytes(const qk_format *f, int64_t k);
int64_t qk_format_size(const qk_format *f, int64_t rows, int64_t k);
/* Exact value of element k of one packed row (double, no rounding). */
double qk_format_get(const qk_format *f, const uint8_t *row, int64_t k);
/* Bits per weight of the canonical layout (for a multiple of block). */
double qk_format_bits_per_weight(const qk_format *f);

/* Quantizes rows x k f32 values (row-major, contiguous) into dst, which
 * must hold qk_format_size() bytes. Round-to-nearest, absmax scales for
 * formats without a zero point, min/max (asymmetric) with one. */
void qk_format_pack(const qk_format *f, const float *src, int64_t rows, int64_t k, uint8_t *dst);
/* Decodes every element to f32 (rounded from the exact value). */
void qk_format_unpack(const qk_format *f, const uint8_t *src, int64_t rows, int64_t k, float *dst);

/* One line describing the format, e.g.
 * "format q4 { code = int4 offset 8; block = 32; scale = f16 }  # 4.50 bits/weight" */
void qk_format_print(const qk_format *f, qk_buf *out);

#endif

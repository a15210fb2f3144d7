/* tir_decode.h — decode and encode of quantized elements as tiled-IR ops,
 * generic over qk_format (format.h): every placement, code kind, scale
 * scheme, sparsity and codebook is lowered from the descriptor with
 * generic ops (byte loads, shuffles, gathers, shifts, masks, converts,
 * multiplies). Used by tir_build.c; nothing here knows a format by name.
 *
 * Values computed here must equal qk_format_get() of the same bytes
 * (rounded to f32), and tdec_encode_row() must write exactly the bytes
 * qk_format_pack() writes for the same f32 inputs.
 *
 * Prefix: tdec_. */
#ifndef QK_TIR_DECODE_H
#define QK_TIR_DECODE_H

#include "compiler/format.h"
#include "compiler/tir.h"

/* Where one row of a packed tensor is. */
typedef struct tdec_src {
    const qk_format *fmt;
    int ptr;  /* TS_PTR node: the packed tensor (tensor header at byte 0) */
    int row;  /* i64 node: byte offset of the row start (its row header) */
    int book; /* TS_PTR node of the codebook tensor (VQ), else -1 */
    int wide; /* 1: unaligned little-endian 16/32-bit loads are fine (CPU) */
    int lut_f32; /* largest f32 table a LUT may look up (tables, minifloats);
                    0: select trees and arithmetic only */
    int byte_perm; /* 1: any byte shuffle of a vector is one instruction
                      (x86 AVX512-VBMI's vpermb) */
} tdec_src;

/* flags */
enum {
    TDEC_UNSCALED = 1, /* stop after "c - zero": no scale, min or tensor scale
                          (the caller multiplies by tdec_scale() itself;
                          only valid when tdec_scale_factorable()) */
    TDEC_NOFACTOR = 2, /* with TDEC_UNSCALED: code values are also left
                          tdec_code_factor() off, a power of two for the
                          caller to fold into the block's scale */
    TDEC_PAIRED = 4,   /* the chunk is half h = (first_const / lanes) % 2 of
                          a pair of full chunks, and its lanes hold the pair's
                          items in tdec_paired_item() order, not in sequence
                          (only where tdec_paired_ok()) */
};

/* Paired chunks (TDEC_PAIRED): lane l of half h holds item
 * 16 (l / 8) + 8 h + l % 8 of the pair. It is the order of a byte
 * unpack within 16-byte lanes (x86 vpunpck{l,h}bw), which puts 8-bit
 * codes in the high bytes of 16-bit words in one in-lane op where the
 * sequential order takes a two-source byte permute and a half extract
 * (twenty-seventh session of issue 4). */
int tdec_paired_item(int l, int h);
/* 1 when chunks of `lanes` items of f, two at a time from an even
 * chunk of a block, can be decoded in that order: 8-bit minifloats that
 * binary16 holds, read from their high bytes (byte_perm targets, at
 * least 16 lanes), with one scale, zero and min over every pair. The
 * caller reads the other operands of the chunk in the same order. */
int tdec_paired_ok(const qk_format *f, int lanes, int lut_f32, int byte_perm);

/* The power of two (exact) that TDEC_NOFACTOR leaves a chunk of `lanes`
 * values of f off: 2^(15 - bias) for minifloats decoded through binary16
 * (saves the decode's multiply), 1 elsewhere. */
double tdec_code_factor(const qk_format *f, int lanes);

/* Values (f32 x lanes) of `lanes` consecutive items of block kb (i64
 * node) of the row, starting at in-block item `first` (i64 node). Items
 * are elements, or kept items for N:M formats. When first_const >= 0 it is
 * the compile-time value of `first` and the decode uses constant per-lane
 * byte windows and shuffles; else per-lane offsets are computed at run
 * time (gathers). The items must lie inside the block (lanes may exceed
 * the remaining items only in a tail the caller masks; reads stay inside
 * the block's bytes). */
int tdec_chunk(tir_func *f, int b, const tdec_src *s, int kb, int first, int first_const, int lanes,
               unsigned flags);

/* N:M formats: values (f32 x lanes) of `lanes` consecutive dense elements
 * of block kb from in-block element `first` (a multiple of sp_m, as lanes
 * is; first_const as tdec_chunk): the kept items of their groups decoded
 * once, then moved to the lanes their index names (shuffles and selects),
 * pruned elements 0. Dense operands are then read in place instead of
 * gathered at the kept positions. flags as tdec_chunk (the code factor is
 * the dense lanes'). */
int tdec_chunk_dense(tir_func *f, int b, const tdec_src *s, int kb, int first, int first_const, int lanes,
                     unsigned flags);

/* Raw item values (i32 x lanes) of field CODES for the same items (code
 * bits joined from all pieces; base-3 digits 0..2). */
int tdec_codes(tir_func *f, int b, const tdec_src *s, int kb, int first, int first_const, int lanes);

/* N:M formats: dense in-block positions (i64 x lanes) of those kept
 * items: (j / sp_n) * sp_m + index[j]. */
int tdec_positions(tir_func *f, int b, const tdec_src *s, int kb, int first, int first_const, int lanes);

/* 1 if the format's value is (c - zero) * S with S constant over a block
 * (scale per block single-level, per row or per tensor, tensor scale; no
 * min, no sub-block scales), so a caller can factor S out of a block's
 * partial sum. */
int tdec_scale_factorable(const qk_format *f);
/* S of block kb (f32 scalar): block scale * row scale * tensor scales;
 * 1.0 when the format has none. */
int tdec_scale(tir_func *f, int b, const tdec_src *s, int kb);

/* The per-tensor factors of every value (the per-tensor scale and the
 * extra tensor scale; f32 scalar), or -1 when the format has neither. */
int tdec_tensor_factor(tir_func *f, int b, const tdec_src *s);

/* Value (f32 scalar) of dense element k (i64 node) of the row, any
 * format (N:M: searches the element's group; pruned elements are 0). */
int tdec_element(tir_func *f, int b, const tdec_src *s, int k);

/* ---- integer dot products ----
 * A format has an integer image when every code's value is
 * scale_img * (u + off) with u a byte computed from the raw code by one
 * cheap op (unsigned; signed after tdec_image_signed), and scale_img a
 * power of two: int/uint/offset
 * codes of up to 8 bits, ternary and sign codes. Then
 *     value = mul * u + add
 * over one scale group (tdec_group items) with mul, add f32 scalars that
 * fold the image scale, the offset, zero points, block/sub-block scales,
 * mins and the tensor scale. */
typedef enum { TDEC_IMG_ADD, TDEC_IMG_XOR, TDEC_IMG_SEL1, TDEC_IMG_LUT } tdec_img_kind;
#define TDEC_PLANES 4 /* bytes of the widest LUT image */
typedef struct tdec_image {
    int kind;         /* ADD: u = r + c (mod 256); XOR: u = r ^ c; SEL1: u = r ? c1 : c;
                         LUT: u = lut[r] (one TIR_LUT byte permute) */
    int c, c1;
    int off;          /* value of code r = scale_img * (u(r) + off) */
    double scale_img;
    int nlut;         /* LUT: 2^bits entries */
    int planes;       /* LUT images wider than a byte: u = sum_p hi_p[r] * 256^p (hi_0 = lut), each
                         plane a byte image of its own (tdec_image_plane); 1 for every other image */
    uint8_t lut[256];
    uint8_t hi[TDEC_PLANES - 1][256];
    int sgn;          /* LUT of 128 entries read at the code's low 7 bits (sign-magnitude codes,
                         tdec_int_image_sgn): bit 7 of the raw code negates the value */
    int nanflag;      /* sgn: the codes whose value is NaN have bit 7 of the top plane set, which
                         no magnitude reaches (their u is otherwise 0) */
    uint32_t umax;    /* sgn: the largest magnitude u (NaN codes left out) */
} tdec_image;
/* 1 and *img when f has an integer image (and is no codebook), else 0.
 * N:M formats have their dense twin's image when no zero point, min or
 * sub-block scale is there to move a pruned element's 0 and -off is a u
 * of the image: tdec_codes_u8 gives pruned elements u = -off.
 * Tables and minifloats have one when every code's value is an integer
 * times one power of two and the integers span at most 256: an affine
 * image when they follow the code (ADD/XOR), else a LUT image of 2^bits
 * entries, allowed only when 2^bits <= lut_max (what the target permutes
 * in one or two instructions; 0: none). With planes > 1 (at most
 * TDEC_PLANES), integers spanning up to 256^planes take a LUT image of
 * that many bytes (e3m2: 2, e4m3: 3, nf4: 4); planes = 1 refuses them. */
int tdec_int_image(const qk_format *f, int lut_max, int planes, tdec_image *img);
/* The sign-magnitude image of 8-bit minifloat codes that have no plain
 * one (e4m3: NaN codes): value(r) = scale_img * (r & 0x80 ? -1 : 1) *
 * u(r & 0x7F) with u the magnitudes' integers (off 0) in at most `planes`
 * bytes; codes whose value is NaN (both signs) set img->nanflag's bit.
 * The sign goes onto the int8 operand (DOT4 of u and -s), which must
 * therefore never hold -128. 0 when the codes are not symmetric, or
 * hold an infinity. */
int tdec_int_image_sgn(const qk_format *f, int planes, tdec_image *img);
/* Byte p (0 .. img->planes - 1) of a LUT image as a one-byte image of its
 * own: u_p = byte p of u, off 0 but for byte 0 (which keeps img->off). */
tdec_image tdec_image_plane(const tdec_image *img, int p);
/* Makes f's image one whose u is read as a signed byte (the first operand
 * of a signed x signed DOT4): unchanged when every u is below 128, else
 * u' = u ^ 0x80 = u - 128 and off += 128 (the caller's sum(s) term then
 * carries the 128); each plane of a wider image alike, off += 128 * 256^p.
 * 0 (img then unusable) when that offset leaves an int. */
int tdec_image_signed(const qk_format *f, tdec_image *img);
/* 1 if the codes are raw signed bytes (int8, no zero, no min, scale
 * factorable): the signed operand of DOT4, whose value is tdec_scale * r. */
int tdec_is_s8(const qk_format *f);
/* Items over which mul/add are constant: the sub-block, else the block;
 * 0 when constant over the whole row. */
int tdec_group(const qk_format *f);
/* u (i8 x lanes) of `lanes` consecutive codes, as tdec_codes; for N:M
 * formats of `lanes` dense elements (first_const a multiple of sp_m, as
 * lanes), pruned ones -off (tdec_chunk_dense). */
int tdec_codes_u8(tir_func *f, int b, const tdec_src *s, const tdec_image *img, int kb, int first, int first_const,
                  int lanes);
/* u (i8 x lanes) of raw codes r (i8 x lanes): the image's one op. */
int tdec_image_apply(tir_func *f, int b, const tdec_image *img, int r);
/* f32 x lanes of stored numbers of type n: raw is i32 x lanes holding the
 * stored bits (masked to the type's width). */
int tdec_num(tir_func *f, int b, qk_num n, int raw);
/* tdec_num, less the power of two *factor where leaving it out saves an
 * operation per vector (e4m3 numbers in vectors, built in binary16 and
 * off by 2^8); *factor is 1 otherwise. value = result * *factor. */
int tdec_num_unscaled(tir_func *f, int b, qk_num n, int raw, double *factor);
/* Raw code bytes (i8 x lanes) of an s8 format, as tdec_codes. */
int tdec_codes_s8(tir_func *f, int b, const tdec_src *s, int kb, int first, int first_const, int lanes);
/* mul and add (f32 scalars; *add = -1 when it is 0) of the scale group
 * holding in-block item `first` of block kb. */
void tdec_group_affine(tir_func *f, int b, const tdec_src *s, const tdec_image *img, int kb, int first,
                       int first_const, int *mul, int *add);

/* Quantizes klen (i64 node) f32 values, stored contiguously at byte
 * offset vals_off (i64 node) of TS_PTR node vals, into the row `dst`
 * (its row header and ceil(klen/block) blocks, padding included), exactly
 * as qk_format_pack() does. dst->fmt must pass
 * qk_format_kernel_quantizable(). The row's bytes are zeroed first.
 * lanes: f32 lanes of the target's vectors (1: scalar loops only); codes
 * that are whole bytes in element order with a maximum for statistic
 * (SINT amax, UINT max: exact in any order) are computed `lanes` at a
 * time, the rest with scalar loops. */
void tdec_encode_row(tir_func *f, int b, const tdec_src *dst, int vals, int vals_off, int klen, int lanes);

#endif

/* blockshape.c (twentieth session): a C loop of the shape of qkc's q4_0 GEMV block (16 rows,
   one stream), with its parts switched at compile time:
     gcc -O2 -march=native -DXB=0|1 -DFL=0..6 -DSU=0|1 -DRS=0|1 -o b blockshape.c && ./b 4096
   XB: x broadcast from memory (moving) or from registers; SU: the per-block sum correction
   from a scalar load; RS: each block's dots from a zero accumulator (else chains across
   blocks); FL: what is done with the block's int32 dots: 0 added to an int accumulator (and
   the scales to a float one), 1 qkc's: converted, times scale x x's scale, FMA into y;
   2 FMA with the scale only; 3 converted and added; 4 int add, and an FMA of the scales with
   x's scale; 5 bit-cast and a float add; 6 converted to float and back, int add.
   The argument is the prefetcht0 distance. Prints the share of a plain read of 256 MiB. */
#include "overlap.h"
static int PF; static char xbuf[65536] __attribute__((aligned(64)));
#define PF9(p) if (PF) for (int q = 0; q < 9; q++) _mm_prefetch((p) + PF + 64 * q, _MM_HINT_T0);
__attribute__((noipa)) static __m512 run(const char *buf, size_t n) {
  __m512 y0 = _mm512_setzero_ps(), y1 = y0; __m512i m = _mm512_set1_epi8(15), A0 = _mm512_setzero_si512(), A1 = A0;
  const char *xp = xbuf; const int *sp = (const int *)(xbuf + 32768);
  __m512i xr[8]; for (int i = 0; i < 8; i++) xr[i] = _mm512_set1_epi8(i + 1);
  for (size_t o = 0; o + 576 <= n; o += 576) {
    const char *p = buf + o;
    PF9(p)
#pragma GCC unroll 2
    for (int b = 0; b < 2; b++) {
      const char *q = p + 288 * b;
      __m512i acc = RS ? _mm512_setzero_si512() : (b ? A1 : A0);
#pragma GCC unroll 4
      for (int s = 0; s < 4; s++) {
        __m512i v = _mm512_loadu_si512(q + 32 + 64 * s);
        __m512i lo = _mm512_and_si512(v, m), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m);
        acc = _mm512_dpbusd_epi32(acc, lo, XB ? _mm512_set1_epi32(*(const int *)(xp + 2 + 8 * s)) : xr[2 * s]);
        acc = _mm512_dpbusd_epi32(acc, hi, XB ? _mm512_set1_epi32(*(const int *)(xp + 6 + 8 * s)) : xr[2 * s + 1]);
      }
      if (SU) acc = _mm512_add_epi32(acc, _mm512_set1_epi32(-8 * *sp));
      __m512 sc = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)q));
      if (FL == 2) { if (b) y1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), sc, y1); else y0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), sc, y0); }
      else if (FL == 3) { if (b) y1 = _mm512_add_ps(_mm512_cvtepi32_ps(acc), y1); else y0 = _mm512_add_ps(_mm512_cvtepi32_ps(acc), y0); }
      else if (FL == 4) { __m512 xs = _mm512_set1_ps((float)*(const _Float16 *)xp);
        if (b) { y1 = _mm512_fmadd_ps(sc, xs, y1); A1 = _mm512_add_epi32(A1, acc); } else { y0 = _mm512_fmadd_ps(sc, xs, y0); A0 = _mm512_add_epi32(A0, acc); } }
      else if (FL == 5) { if (b) y1 = _mm512_add_ps(_mm512_castsi512_ps(acc), y1); else y0 = _mm512_add_ps(_mm512_castsi512_ps(acc), y0); }
      else if (FL == 6) { if (b) A1 = _mm512_add_epi32(A1, _mm512_cvtps_epi32(_mm512_cvtepi32_ps(acc))); else A0 = _mm512_add_epi32(A0, _mm512_cvtps_epi32(_mm512_cvtepi32_ps(acc))); }
      else if (FL) {
        __m512 xs = _mm512_set1_ps((float)*(const _Float16 *)xp);
        if (b) y1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_mul_ps(sc, xs), y1);
        else y0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_mul_ps(sc, xs), y0);
      } else { if (b) { y1 = _mm512_add_ps(y1, sc); A1 = acc; } else { y0 = _mm512_add_ps(y0, sc); A0 = acc; } }
      if (RS && (!FL || FL == 4)) { if (b) A1 = _mm512_add_epi32(A1, acc); else A0 = _mm512_add_epi32(A0, acc); }
      xp += 34; sp++;
    }
    if (xp >= xbuf + 8192) { xp = xbuf; sp = (const int *)(xbuf + 32768); }
  }
  return _mm512_add_ps(_mm512_add_ps(y0, y1), _mm512_cvtepi32_ps(_mm512_add_epi32(A0, A1)));
}
static long loop(const char *buf, size_t n) { return (long)_mm512_reduce_add_ps(run(buf, n)); }
int main(int argc, char **argv){
  PF = atoi(argv[1]); memset(xbuf, 1, sizeof xbuf);
  char label[32]; snprintf(label, sizeof label, "XB%d FL%d SU%d RS%d", XB, FL, SU, RS);
  ov_measure(label, loop);
}

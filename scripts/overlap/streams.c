/* streams.c (twentieth session): hand.c's mode-1 loop with the mode, the extra work and the
   stream layout fixed at compile time:
     gcc -O2 -march=native -DCMODE=M -DE=X -DNS=S -DST=B -o s streams.c && ./s 1 PF
   M = 1 the q4_0-like loop (one stream); 10 / 11 / 12 = it + X (0..4) independent vector ops,
   vector ops on the line's load, or scalar ops a line; 20 = the 2-block step of 4 row groups
   B = 73728 bytes apart (4 streams: the GEMV's work item at K = 8192), 21 = the same with the 4
   groups' prefetches first, 22 = the 4 groups' steps interleaved into one stream; 30 = S groups
   B apart through an inner loop (the compiler keeps the loop and its prefetch loop: slower).
   PF = prefetcht0 distance in bytes. Prints the share of a plain read of the same 256 MiB. */
#include "overlap.h"
static int PF;
#define EXTRA_I(k) if (E > k) __asm__ volatile("vpaddd %1, %0, %0" : "+v"(d##k) : "v"(m));
#define EXTRA_D(k) if (E > k) __asm__ volatile("vpxord %1, %0, %0" : "+v"(d##k) : "v"(v));
#define EXTRA_S(k) if (E > k) __asm__ volatile("addq $1, %0" : "+r"(s##k));
#define LINE(p, acc0, acc1) { __m512i v = _mm512_loadu_si512(p); \
   __m512i lo = _mm512_and_si512(v, m), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m); \
   acc0 = _mm512_dpbusd_epi32(acc0, lo, x); acc1 = _mm512_dpbusd_epi32(acc1, hi, x2); \
   if (mode == 10) { EXTRA_I(0) EXTRA_I(1) EXTRA_I(2) EXTRA_I(3) } \
   else if (mode == 11) { EXTRA_D(0) EXTRA_D(1) EXTRA_D(2) EXTRA_D(3) } \
   else if (mode == 12) { EXTRA_S(0) EXTRA_S(1) EXTRA_S(2) EXTRA_S(3) } }
#define PF9(p) if (PF) for (int q = 0; q < 9; q++) _mm_prefetch((p) + PF + 64 * q, _MM_HINT_T0);
#define SCALES(p) f = _mm512_add_ps(f, _mm512_cvtph_ps(_mm256_loadu_si256((const void *)(p))));
#define CODES(p, A0, A1, A2, A3, A4, A5, A6, A7) LINE((p), A0, A1) LINE((p) + 64, A2, A3) LINE((p) + 128, A4, A5) LINE((p) + 192, A6, A7)
#define BLOCKS(p, A0, A1, A2, A3, A4, A5, A6, A7) SCALES(p) CODES((p) + 32, A0, A1, A2, A3, A4, A5, A6, A7) \
    SCALES((p) + 288) CODES((p) + 320, A0, A1, A2, A3, A4, A5, A6, A7)
__attribute__((noipa)) static __m512i run(const char *buf, size_t n, int mode) { if (mode) mode = CMODE;
  __m512i a0=_mm512_setzero_si512(),a1=a0,a2=a0,a3=a0,a4=a0,a5=a0,a6=a0,a7=a0; __m512 f = _mm512_setzero_ps();
  __m512i d0=a0,d1=a0,d2=a0,d3=a0; long s0=0,s1=0,s2=0,s3=0;
  __m512i x = _mm512_set1_epi8(3), x2 = _mm512_set1_epi8(5), m = _mm512_set1_epi8(15);
  if (mode == 0) { for (size_t o = 0; o + 256 <= n; o += 256) { const char *p = buf + o;
      a0 = _mm512_add_epi32(a0, _mm512_load_si512(p)); a1 = _mm512_add_epi32(a1, _mm512_load_si512(p+64));
      a2 = _mm512_add_epi32(a2, _mm512_load_si512(p+128)); a3 = _mm512_add_epi32(a3, _mm512_load_si512(p+192)); } }
  else if (mode == 30) { const size_t st = ST; for (size_t w = 0; w + NS * st <= n; w += NS * st)
    for (size_t o = 0; o < st; o += 576) { const char *p = buf + w + o;
      for (int g = 0; g < NS; g++) { PF9(p + g * st) BLOCKS(p + g * st, a0, a1, a2, a3, a4, a5, a6, a7) } } }
  else if (mode == 20) { const size_t st = 73728; for (size_t w = 0; w + 4 * st <= n; w += 4 * st)
    for (size_t o = 0; o < st; o += 576) { const char *p = buf + w + o;
      PF9(p) BLOCKS(p, a0, a1, a2, a3, a4, a5, a6, a7)
      PF9(p + st) BLOCKS(p + st, a0, a1, a2, a3, a4, a5, a6, a7)
      PF9(p + 2 * st) BLOCKS(p + 2 * st, a0, a1, a2, a3, a4, a5, a6, a7)
      PF9(p + 3 * st) BLOCKS(p + 3 * st, a0, a1, a2, a3, a4, a5, a6, a7) } }
  else if (mode == 22) { const size_t st = 576; for (size_t o = 0; o + 4 * st <= n; o += 4 * st) { const char *p = buf + o;
      PF9(p) BLOCKS(p, a0, a1, a2, a3, a4, a5, a6, a7)
      PF9(p + st) BLOCKS(p + st, a0, a1, a2, a3, a4, a5, a6, a7)
      PF9(p + 2 * st) BLOCKS(p + 2 * st, a0, a1, a2, a3, a4, a5, a6, a7)
      PF9(p + 3 * st) BLOCKS(p + 3 * st, a0, a1, a2, a3, a4, a5, a6, a7) } }
  else if (mode == 21) { const size_t st = 73728; for (size_t w = 0; w + 4 * st <= n; w += 4 * st)
    for (size_t o = 0; o < st; o += 576) { const char *p = buf + w + o;
      PF9(p) PF9(p + st) PF9(p + 2 * st) PF9(p + 3 * st)
      BLOCKS(p, a0, a1, a2, a3, a4, a5, a6, a7)
      BLOCKS(p + st, a0, a1, a2, a3, a4, a5, a6, a7)
      BLOCKS(p + 2 * st, a0, a1, a2, a3, a4, a5, a6, a7)
      BLOCKS(p + 3 * st, a0, a1, a2, a3, a4, a5, a6, a7) } }
  else for (size_t o = 0; o + 576 <= n; o += 576) {
    const char *p = buf + o;
    PF9(p)
    BLOCKS(p, a0, a1, a2, a3, a4, a5, a6, a7)
  }
  a0 = _mm512_add_epi32(a0, _mm512_cvtps_epi32(f));
  a0 = _mm512_add_epi32(a0, _mm512_add_epi32(_mm512_add_epi32(d0, d1), _mm512_add_epi32(d2, d3)));
  a0 = _mm512_add_epi32(a0, _mm512_set1_epi64(s0 + s1 + s2 + s3));
  return _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a0,a1),_mm512_add_epi32(a2,a3)),_mm512_add_epi32(_mm512_add_epi32(a4,a5),_mm512_add_epi32(a6,a7)));
}
static long loop(const char *buf, size_t n) { return _mm512_reduce_add_epi32(run(buf, n, CMODE)); }
int main(int argc, char **argv){
  PF = atoi(argv[2]);
  char label[32]; snprintf(label, sizeof label, "m%d_e%d", CMODE, E);
  ov_measure(label, loop);
}

#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
/* Hand-written q4_0-like GEMV loops against a plain read of the same 256 MiB, one thread.
   hand MODE PF [ARG]: PF = prefetcht0 distance in bytes (0 = none); prints the cold rate, the read
   rate of the same buffer (alternated, best of 5 each) and their ratio, and the loop's rate in L1.
   MODE 0 read only; 1 q4_0-like: 288-byte blocks (32 B f16 scales + 256 B codes), 2 dpbusd a line,
   x in registers; 2 the same with the two blocks' scales first (every code load on a line);
   3 mode 1 + a spill store and reload a block; 4 mode 1 + x broadcast from memory (ARG 0: moving,
   1: fixed address, 2: scattered within 8 KiB); 5 mode 1 with each block's dots in one chain;
   6 mode 1 unrolled 4x; 7 a C copy of qkc's q4_0 block (x broadcast per dot, per-block sum
   correction, scale FMA); 8 mode 7 without the float work; 9 the generated loop (qloop, link
   a gen.py output).  Build: gcc -O2 -march=native -o hand hand.c loop.S  */
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static int PF, MODE, NOFOLD; void qloop(const char *W, long items, const char *x, int *sums, long stride, long nblocks); static int qsums[65536]; static char xbuf[65536]; static __m512 spill[4];
#define LINE(p, acc0, acc1) { __m512i v = _mm512_loadu_si512(p); if (NOFOLD) __asm__("" : "+v"(v)); \
   __m512i lo = _mm512_and_si512(v, m), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m); \
   acc0 = _mm512_dpbusd_epi32(acc0, lo, x); acc1 = _mm512_dpbusd_epi32(acc1, hi, x2); }
#define PF9(p) if (PF) for (int q = 0; q < 9; q++) _mm_prefetch((p) + PF + 64 * q, _MM_HINT_T0);
#define SCALES(p) f = _mm512_add_ps(f, _mm512_cvtph_ps(_mm256_loadu_si256((const void *)(p))));
#define CODES(p, A0, A1, A2, A3, A4, A5, A6, A7) LINE((p), A0, A1) LINE((p) + 64, A2, A3) LINE((p) + 128, A4, A5) LINE((p) + 192, A6, A7)
/* two 288-byte blocks: each its 32 bytes of scales, then its 256 bytes of codes */
#define BLOCKS(p, A0, A1, A2, A3, A4, A5, A6, A7) SCALES(p) CODES((p) + 32, A0, A1, A2, A3, A4, A5, A6, A7) \
    SCALES((p) + 288) CODES((p) + 320, A0, A1, A2, A3, A4, A5, A6, A7)
__attribute__((noipa)) static __m512i run(const char *buf, size_t n, int mode) {
  __m512i a0=_mm512_setzero_si512(),a1=a0,a2=a0,a3=a0,a4=a0,a5=a0,a6=a0,a7=a0; __m512 f = _mm512_setzero_ps();
  __m512i x = _mm512_set1_epi8(3), x2 = _mm512_set1_epi8(5), m = _mm512_set1_epi8(15);
  if (mode == 9) { long st = 256 * 288; qloop(buf, n / (4 * st), xbuf, qsums, st, 256); return a0; }
  if (mode == 7 || mode == 8) { /* C version of qkc's q4_0 block: per block of 32 items x 16 rows */
    __m512 y0 = _mm512_setzero_ps(), y1 = y0; const char *xp = xbuf; const int *sp = (const int *)(xbuf + 32768);
    for (size_t o = 0; o + 576 <= n; o += 576) {
      const char *p = buf + o;
      PF9(p)
      for (int b = 0; b < 2; b++, p += 288, xp += 34, sp++) {
        __m512 sc = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)p));
        __m512 xs = _mm512_set1_ps((float)*(const _Float16 *)xp);
        __m512i acc = _mm512_setzero_si512();
        for (int s = 0; s < 4; s++) {
          __m512i v = _mm512_loadu_si512(p + 32 + 64 * s);
          __m512i lo = _mm512_and_si512(v, m), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m);
          acc = _mm512_dpbusd_epi32(acc, lo, _mm512_set1_epi32(*(const int *)(xp + 2 + 8 * s)));
          acc = _mm512_dpbusd_epi32(acc, hi, _mm512_set1_epi32(*(const int *)(xp + 6 + 8 * s)));
        }
        acc = _mm512_add_epi32(acc, _mm512_set1_epi32(-8 * *sp));
        if (mode == 7) { if (b) y1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_mul_ps(sc, xs), y1); else y0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_mul_ps(sc, xs), y0); }
        else a0 = _mm512_add_epi32(a0, acc);
      }
      if (xp >= xbuf + 8192) { xp = xbuf; sp = (const int *)(xbuf + 32768); }
    }
    return _mm512_add_epi32(a0, _mm512_cvtps_epi32(_mm512_add_ps(y0, y1)));
  }
  if (mode == 0) { for (size_t o = 0; o + 256 <= n; o += 256) { const char *p = buf + o;
      a0 = _mm512_add_epi32(a0, _mm512_load_si512(p)); a1 = _mm512_add_epi32(a1, _mm512_load_si512(p+64));
      a2 = _mm512_add_epi32(a2, _mm512_load_si512(p+128)); a3 = _mm512_add_epi32(a3, _mm512_load_si512(p+192)); } }
  else if (mode == 6) {
#pragma GCC unroll 4
  for (size_t o = 0; o + 576 <= n; o += 576) {
    const char *p = buf + o;
    PF9(p)
    BLOCKS(p, a0, a1, a2, a3, a4, a5, a6, a7)
  } }
  else if (mode == 1) for (size_t o = 0; o + 576 <= n; o += 576) {   /* two 288-byte blocks */
    const char *p = buf + o;
    PF9(p)
    BLOCKS(p, a0, a1, a2, a3, a4, a5, a6, a7)
  } else if (mode == 5) for (size_t o = 0; o + 576 <= n; o += 576) {   /* long chains */
    const char *p = buf + o;
    PF9(p)
    BLOCKS(p, a0, a0, a0, a0, a1, a1, a1, a1)
  } else if (mode == 3 || mode == 4) { const char *xp = xbuf; for (size_t o = 0; o + 576 <= n; o += 576) {
    const char *p = buf + o;
    PF9(p)
    if (mode == 4) { x = _mm512_set1_epi32(*(const int *)xp); x2 = _mm512_set1_epi32(*(const int *)(xp + 4)); if (NOFOLD == 0) { xp += 8; if (xp >= xbuf + 8192) xp = xbuf; } else if (NOFOLD == 2) xp = xbuf + (((o >> 6) * 2654435761u) & 8184); }
    SCALES(p) CODES(p + 32, a0, a1, a2, a3, a4, a5, a6, a7)
    if (mode == 3) { spill[0] = f; __asm__ volatile("" ::: "memory"); f = spill[0]; spill[1] = _mm512_castsi512_ps(a0); __asm__ volatile("" ::: "memory"); a0 = _mm512_castps_si512(spill[1]); }
    SCALES(p + 288) CODES(p + 320, a0, a1, a2, a3, a4, a5, a6, a7)
  } } else for (size_t o = 0; o + 576 <= n; o += 576) {   /* packet: 2 headers then 2 code blocks */
    const char *p = buf + o;
    PF9(p)
    SCALES(p) CODES(p + 64, a0, a1, a2, a3, a4, a5, a6, a7)
    SCALES(p + 32) CODES(p + 320, a0, a1, a2, a3, a4, a5, a6, a7)
  }
  a0 = _mm512_add_epi32(a0, _mm512_cvtps_epi32(f));
  return _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a0,a1),_mm512_add_epi32(a2,a3)),_mm512_add_epi32(_mm512_add_epi32(a4,a5),_mm512_add_epi32(a6,a7)));
}
int main(int argc, char **argv){
  MODE = atoi(argv[1]); PF = atoi(argv[2]); NOFOLD = argc > 3 ? atoi(argv[3]) : 0;
  size_t n = 256u<<20;
  char *buf = aligned_alloc(4096, n + (1<<20)); memset(buf, 1, n + (1<<20));
  char *hot = aligned_alloc(4096, 36864); memset(hot, 1, 36864);
  double best=1e9, bestr=1e9, besth=1e9; __m512i r=_mm512_setzero_si512();
  for (int rep=0;rep<5;rep++){ double t=now(); r=_mm512_add_epi32(r,run(buf,n,MODE)); t=now()-t; if(t<best)best=t;
     t=now(); r=_mm512_add_epi32(r,run(buf,n,0)); t=now()-t; if(t<bestr)bestr=t; }
  for (int rep=0;rep<5;rep++){ double t=now(); for (int i=0;i<8192;i++) r=_mm512_add_epi32(r,run(hot,36864,MODE)); t=now()-t; if(t<besth)besth=t; }
  printf("mode=%d PF=%5d  cold %.1f GB/s  read %.1f  (%.0f%%)  L1 %.0f GB/s  (%d)\n",MODE,PF,n/best/1e9,n/bestr/1e9,100*bestr/best, 8192.0*36864/besth/1e9,_mm512_reduce_add_epi32(r)&1);
}

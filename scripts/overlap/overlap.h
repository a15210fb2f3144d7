/* overlap.h — the timing shared by the overlap experiments (hand.c, streams.c, blockshape.c,
   harness.c): a plain read of a buffer, and a loop cold over 256 MiB alternated with that read
   (best of 5 each), then the loop in L1 (36 KiB, 8192 passes, best of 5). */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
/* Four sequential loads a step, as the probe's read loop. */
__attribute__((noipa)) static long rd(const char *buf, size_t n) {
  __m512i a0=_mm512_setzero_si512(),a1=a0,a2=a0,a3=a0;
  for (size_t o = 0; o + 256 <= n; o += 256) { const char *p = buf + o;
      a0 = _mm512_add_epi32(a0, _mm512_load_si512(p)); a1 = _mm512_add_epi32(a1, _mm512_load_si512(p+64));
      a2 = _mm512_add_epi32(a2, _mm512_load_si512(p+128)); a3 = _mm512_add_epi32(a3, _mm512_load_si512(p+192)); }
  return _mm512_reduce_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a0,a1),_mm512_add_epi32(a2,a3)));
}
/* Prints "LABEL cold X GB/s  read Y  (share%)  L1 Z GB/s" for loop(buf, n), which returns a
   value that keeps its work alive. */
static void ov_measure(const char *label, long (*loop)(const char *, size_t)) {
  size_t n = 256u<<20;
  char *buf = aligned_alloc(4096, n + (1<<20)); memset(buf, 1, n + (1<<20));
  char *hot = aligned_alloc(4096, 36864); memset(hot, 1, 36864);
  double best=1e9, bestr=1e9, besth=1e9; long r = 0;
  for (int rep=0;rep<5;rep++){ double t=now(); r+=loop(buf,n); t=now()-t; if(t<best)best=t;
     t=now(); r+=rd(buf,n); t=now()-t; if(t<bestr)bestr=t; }
  for (int rep=0;rep<5;rep++){ double t=now(); for (int i=0;i<8192;i++) r+=loop(hot,36864); t=now()-t; if(t<besth)besth=t; }
  printf("%s cold %.1f GB/s  read %.1f  (%.1f%%)  L1 %.0f GB/s  (%ld)\n",label,n/best/1e9,n/bestr/1e9,100*bestr/best, 8192.0*36864/besth/1e9,r&1);
  free(buf); free(hot);
}

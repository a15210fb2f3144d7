/* fpcurve.c (twenty-seventh session): how much of the read rate a loop keeps cold when its
   vector work, not its loads, limits it in L1. One stream, 4 lines a step, each line loaded
   once and added to an accumulator, then F FMAs on it into 16 independent accumulators (no
   chain waits on latency: the FMA ports are what fills). F = 0..12 sets the loop's L1 rate
   from several times the read rate down to about it.
     gcc -O2 -march=native -o fpcurve fpcurve.c && ./fpcurve
   Prints, for each F, overlap.h's line: cold GB/s, the read of the same 256 MiB, the share,
   and the L1 rate. */
#include "overlap.h"
#define LOOP(F)                                                                                  \
    __attribute__((noipa)) static long loop##F(const char *buf, size_t n)                        \
    {                                                                                            \
        __m512 a[16], m = _mm512_set1_ps(1.0001f);                                               \
        for (int j = 0; j < 16; j++)                                                             \
            a[j] = _mm512_setzero_ps();                                                          \
        for (size_t o = 0; o + 256 <= n; o += 256) {                                             \
            _Pragma("GCC unroll 4") for (int l = 0; l < 4; l++)                                  \
            {                                                                                    \
                __m512 v = _mm512_load_ps((const float *)(buf + o + 64 * l));                    \
                a[(5 * l) & 15] = _mm512_add_ps(a[(5 * l) & 15], v);                             \
                _Pragma("GCC unroll 16") for (int f = 0; f < F; f++) a[(l * F + f + 1) & 15] =   \
                    _mm512_fmadd_ps(v, m, a[(l * F + f + 1) & 15]);                              \
            }                                                                                    \
        }                                                                                        \
        __m512 r = a[0];                                                                         \
        for (int j = 1; j < 16; j++)                                                             \
            r = _mm512_add_ps(r, a[j]);                                                          \
        return (long)_mm512_reduce_add_ps(r);                                                    \
    }
LOOP(0) LOOP(2) LOOP(4) LOOP(6) LOOP(8) LOOP(12)
int main(void)
{
    long (*loops[])(const char *, size_t) = {loop0, loop2, loop4, loop6, loop8, loop12};
    const char *names[] = {"F=0 ", "F=2 ", "F=4 ", "F=6 ", "F=8 ", "F=12"};
    for (int i = 0; i < 6; i++)
        ov_measure(names[i], loops[i]);
    return 0;
}

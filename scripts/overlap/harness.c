#include "overlap.h"
void qloop(const char *W, long items, const char *x, int *sums, long stride, long nblocks);
int main(int argc, char **argv){
  long K = 8192, nblocks = K / 32, stride = nblocks * 288;
  long items = (256l << 20) / (4 * stride);
  size_t n = items * 4 * stride;
  char *W = aligned_alloc(4096, n + (1 << 20)); memset(W, 1, n + (1 << 20));
  char *x = aligned_alloc(64, 65536); memset(x, 2, 65536);
  int *sums = aligned_alloc(64, 65536); memset(sums, 0, 65536);
  long hitems = 1; /* hot: one work item of 4 groups at K small */
  double best = 1e9, bestr = 1e9, besth = 1e9; long r = 0;
  for (int rep = 0; rep < 7; rep++) {
    double t = now(); qloop(W, items, x, sums, stride, nblocks); t = now() - t; if (t < best) best = t;
    t = now(); r += rd(W, n); t = now() - t; if (t < bestr) bestr = t;
  }
  /* hot: K = 512 -> 4 groups x 16 blocks x 288 = 18 KiB, in L1 */
  long hK = 512, hb = hK / 32, hs = hb * 288;
  for (int rep = 0; rep < 5; rep++) { double t = now(); for (int i = 0; i < 20000; i++) qloop(W, 1, x, sums, hs, hb); t = now() - t; if (t < besth) besth = t; }
  printf("%-22s cold %.1f GB/s  read %.1f  (%.1f%%)  L1 %.0f GB/s (%ld %d)\n", argc > 1 ? argv[1] : "", n / best / 1e9, n / bestr / 1e9, 100 * bestr / best, 20000.0 * 4 * hs / besth / 1e9, r & 1, sums[0] & 1);
}

/* probe.h — measures the machine's limits: read bandwidth per cache level
 * and thread count, peak f32 FMA rate and peak int8 dot-product rate.
 * `qkc probe` stores the result in the tuning database (tunedb.h) under
 * the target fingerprint; `qkc bench` reports its figures as ratios to
 * these limits.
 *
 * The measurement loops are hand-written with compiler intrinsics behind
 * cpu-feature checks: they measure the machine, they are not kernels.
 *
 * Prefix: qk_probe_. */
#ifndef QK_PROBE_H
#define QK_PROBE_H

#include <stddef.h>
#include <stdint.h>

enum { QK_PROBE_L1, QK_PROBE_L2, QK_PROBE_L3, QK_PROBE_DRAM, QK_PROBE_LEVELS };

/* A GPU device's probe (runtime/device.h: qk_device_probe) uses the same
 * record: threads = 0, read_bw[QK_PROBE_DRAM] = the device memory's copy
 * bandwidth, every other figure 0. */
typedef struct qk_probe_result {
    char fingerprint[512];  /* qk_target_fingerprint of the host (or the device's target) */
    int threads;            /* "all threads" = this many; 0 for a device probe */
    /* read bandwidth in bytes/s: [level][0] one thread, [level][1] all threads */
    double read_bw[QK_PROBE_LEVELS][2];
    int64_t ws_bytes[QK_PROBE_LEVELS]; /* working set measured per thread at each level */
    double f32_fma[2];      /* FLOP/s (an FMA lane counts 2): one core, all cores */
    double int8_dot[2];     /* OP/s (a multiply-add of int8 counts 2): one core, all cores */
    char f32_insn[32];      /* what was measured, e.g. "vfmadd231ps zmm" */
    char int8_insn[32];     /* e.g. "vpdpbusd zmm", "vpmaddubsw ymm" */
    int64_t created;        /* unix time */
    double seconds;         /* how long the probe took */
} qk_probe_result;

typedef struct qk_probe_opts {
    int threads;  /* 0 = every online core */
    int quick;    /* 1: fewer repetitions and a smaller DRAM set (~1 s in all) */
} qk_probe_opts;

/* Runs every measurement on this machine. 0, or -1 with a message. */
int qk_probe_run(const qk_probe_opts *opts, qk_probe_result *out, char *err, size_t errsz);
/* One pass of the widest read loop (the one the probe times) over the
 * first `bytes` of each of n buffers, buffer i on thread i (the caller is
 * thread 0), from a barrier to the last finish, without a warm-up: for a
 * baseline read in the same run as a kernel's repetitions (`qkc bench
 * --baseline read`). Buffers 64-byte aligned; bytes is rounded down to a
 * multiple of 512 and *bytes_read gets the bytes read in all. Seconds, or
 * -1 with a message. */
double qk_probe_read_pass(void *const *bufs, int n, size_t bytes, double *bytes_read, char *err, size_t errsz);
/* Human-readable table, and a JSON object (no trailing newline). The
 * caller frees the returned strings. */
char *qk_probe_text(const qk_probe_result *r);
char *qk_probe_json(const qk_probe_result *r);

#endif

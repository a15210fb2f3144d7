/* probe.c — measures this machine's limits for `qkc probe` (probe.h):
 * read bandwidth of each cache level and of DRAM on one thread and on all
 * threads, and the peak f32 FMA and int8 dot-product rates on one core and
 * on all cores. Benchmarks report their figures as ratios to these.
 *
 * Every measurement is a job: a team of threads (the caller is thread 0),
 * each with its own buffer, touched by its reader before timing. Thread 0
 * calibrates how much work one repetition does (a few ms), then every
 * repetition starts at a barrier and lasts until the last thread finishes;
 * the fastest repetition counts. Repetitions are short and many, so that
 * some run without being preempted on a shared machine. Threads are not
 * pinned: the scheduler spreads busy threads over idle cores, where a pin
 * could tie one to a core that another process keeps busy.
 *
 * The loops are hand-written for the widest vectors the CPU has, chosen at
 * run time, so the file builds for any x86-64 (and, with plain C loops on
 * 16-byte GNU vectors, anywhere else). The compute loops write each
 * instruction as inline asm: the compiler can neither fold nor hoist them,
 * nor add register moves. They need an optimized build (the default
 * RelWithDebInfo): at -O0 accumulators live in memory. */
#include "runtime/probe.h"

#include "common/base.h"
#include "compiler/tir.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define PROBE_MAX_THREADS 256
#define PROBE_MAX_REPS 30
#define PROBE_ALIGN 4096
#define PROBE_NACC 12 /* independent accumulators of the compute loops */
#define MiB ((int64_t)1 << 20)

/* Sums n floats at p, `passes` times; returns the sum (used, so kept). */
typedef double (*probe_read_fn)(const float *p, size_t n, int64_t passes);
/* Runs `units` iterations of a compute loop; returns its accumulators' sum. */
typedef double (*probe_compute_fn)(int64_t units);

/* ---- read loops: 8 independent accumulators, 8 vectors per iteration ----
 * The SIMD loops read the buffer as 4 sequential streams in lockstep (its
 * quarters): one stream per thread leaves DRAM bandwidth unused on cores
 * whose prefetchers track several streams (Zen 4: a GEMV of 4 row groups
 * read 10% more than one stream), and a limit must be the most a loop
 * can read. Every byte is read once per pass either way. */

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static double read_zmm(const float *p, size_t n, int64_t passes)
{
    __m512 s[8];
#pragma GCC unroll 16
    for (int j = 0; j < 8; j++)
        s[j] = _mm512_setzero_ps();
    size_t q = n / 4 / 32 * 32; /* floats per stream */
    for (int64_t k = 0; k < passes; k++)
        for (size_t i = 0; i + 32 <= q; i += 32) {
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++)
                s[j] = _mm512_add_ps(s[j], _mm512_load_ps(p + (size_t)(j / 2) * q + i + 16 * (j % 2)));
        }
#pragma GCC unroll 16
    for (int j = 1; j < 8; j++)
        s[0] = _mm512_add_ps(s[0], s[j]);
    return _mm512_reduce_add_ps(s[0]);
}

__attribute__((target("avx"))) static double read_ymm(const float *p, size_t n, int64_t passes)
{
    __m256 s[8];
#pragma GCC unroll 16
    for (int j = 0; j < 8; j++)
        s[j] = _mm256_setzero_ps();
    size_t q = n / 4 / 16 * 16; /* floats per stream */
    for (int64_t k = 0; k < passes; k++)
        for (size_t i = 0; i + 16 <= q; i += 16) {
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++)
                s[j] = _mm256_add_ps(s[j], _mm256_load_ps(p + (size_t)(j / 2) * q + i + 8 * (j % 2)));
        }
#pragma GCC unroll 16
    for (int j = 1; j < 8; j++)
        s[0] = _mm256_add_ps(s[0], s[j]);
    float out[8];
    _mm256_storeu_ps(out, s[0]);
    return (double)out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
}
#endif

/* The portable loop: GNU vectors of 16 bytes (SSE2 on x86-64, NEON on
 * AArch64). */
typedef float probe_v4f __attribute__((vector_size(16)));
typedef uint32_t probe_v4i __attribute__((vector_size(16)));

static double read_v4(const float *p, size_t n, int64_t passes)
{
    const probe_v4f *v = (const probe_v4f *)p;
    probe_v4f s[8] = {{0}};
    for (int64_t k = 0; k < passes; k++)
        for (size_t i = 0; i + 32 <= n; i += 32) {
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++)
                s[j] += v[i / 4 + (size_t)j];
        }
#pragma GCC unroll 16
    for (int j = 1; j < 8; j++)
        s[0] += s[j];
    return (double)s[0][0] + s[0][1] + s[0][2] + s[0][3];
}

/* ---- f32 FMA loops: PROBE_NACC chains c += a * b ---- */

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static double fma_zmm(int64_t units)
{
    __m512 a = _mm512_set1_ps(1e-3f), b = _mm512_set1_ps(1e-3f), c[PROBE_NACC];
#pragma GCC unroll 16
    for (int j = 0; j < PROBE_NACC; j++)
        c[j] = _mm512_set1_ps((float)j);
    for (int64_t i = 0; i < units; i++) {
#pragma GCC unroll 16
        for (int j = 0; j < PROBE_NACC; j++)
            __asm__("vfmadd231ps %2, %1, %0" : "+v"(c[j]) : "v"(a), "v"(b));
    }
#pragma GCC unroll 16
    for (int j = 1; j < PROBE_NACC; j++)
        c[0] = _mm512_add_ps(c[0], c[j]);
    return _mm512_reduce_add_ps(c[0]);
}

__attribute__((target("avx,fma"))) static double fma_ymm(int64_t units)
{
    __m256 a = _mm256_set1_ps(1e-3f), b = _mm256_set1_ps(1e-3f), c[PROBE_NACC];
#pragma GCC unroll 16
    for (int j = 0; j < PROBE_NACC; j++)
        c[j] = _mm256_set1_ps((float)j);
    for (int64_t i = 0; i < units; i++) {
#pragma GCC unroll 16
        for (int j = 0; j < PROBE_NACC; j++)
            __asm__("vfmadd231ps %2, %1, %0" : "+x"(c[j]) : "x"(a), "x"(b));
    }
#pragma GCC unroll 16
    for (int j = 1; j < PROBE_NACC; j++)
        c[0] = _mm256_add_ps(c[0], c[j]);
    float out[8];
    _mm256_storeu_ps(out, c[0]);
    return out[0];
}
#endif

/* Multiply and add on 16-byte vectors, for CPUs without the above. Built
 * with -std=c11 the compiler does not contract them into an FMA; either
 * way a lane does 2 FLOPs per iteration. The chains through c[j] keep the
 * loop from being folded. */
static double fma_v4(int64_t units)
{
    probe_v4f a = {1e-3f, 1e-3f, 1e-3f, 1e-3f}, c[PROBE_NACC];
#pragma GCC unroll 16
    for (int j = 0; j < PROBE_NACC; j++)
        c[j] = (probe_v4f){(float)j, (float)j, (float)j, (float)j};
    for (int64_t i = 0; i < units; i++) {
#pragma GCC unroll 16
        for (int j = 0; j < PROBE_NACC; j++)
            c[j] = c[j] * a + a;
    }
#pragma GCC unroll 16
    for (int j = 1; j < PROBE_NACC; j++)
        c[0] += c[j];
    return c[0][0];
}

/* ---- int8 dot-product loops ---- */

#if defined(__x86_64__)
/* vpdpbusd: 4 u8 x s8 products summed into each i32 lane. */
__attribute__((target("avx512f,avx512vnni"))) static double dot_vnni_zmm(int64_t units)
{
    __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(2), c[PROBE_NACC];
#pragma GCC unroll 16
    for (int j = 0; j < PROBE_NACC; j++)
        c[j] = _mm512_set1_epi32(j);
    for (int64_t i = 0; i < units; i++) {
#pragma GCC unroll 16
        for (int j = 0; j < PROBE_NACC; j++)
            __asm__("vpdpbusd %2, %1, %0" : "+v"(c[j]) : "v"(a), "v"(b));
    }
#pragma GCC unroll 16
    for (int j = 1; j < PROBE_NACC; j++)
        c[0] = _mm512_add_epi32(c[0], c[j]);
    return _mm512_reduce_add_epi32(c[0]);
}

/* AVX-VNNI: the VEX form on ymm ({vex} picks it over the EVEX one). */
__attribute__((target("avx2"))) static double dot_vnni_ymm(int64_t units)
{
    __m256i a = _mm256_set1_epi8(1), b = _mm256_set1_epi8(2), c[PROBE_NACC];
#pragma GCC unroll 16
    for (int j = 0; j < PROBE_NACC; j++)
        c[j] = _mm256_set1_epi32(j);
    for (int64_t i = 0; i < units; i++) {
#pragma GCC unroll 16
        for (int j = 0; j < PROBE_NACC; j++)
            __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(c[j]) : "x"(a), "x"(b));
    }
#pragma GCC unroll 16
    for (int j = 1; j < PROBE_NACC; j++)
        c[0] = _mm256_add_epi32(c[0], c[j]);
    return _mm256_extract_epi32(c[0], 0);
}

/* Without VNNI: vpmaddubsw (u8 x s8 pairs -> i16), vpmaddwd by ones (pairs
 * -> i32), vpaddd into the accumulator. Eight chains: only the add is on
 * the loop-carried path. */
#define PROBE_MADD_ASM "vpmaddubsw %[b], %[a], %[t]\n\tvpmaddwd %[one], %[t], %[t]\n\tvpaddd %[t], %[c], %[c]"

__attribute__((target("avx512f,avx512bw"))) static double dot_madd_zmm(int64_t units)
{
    __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(2), one = _mm512_set1_epi16(1), c[8], t;
#pragma GCC unroll 16
    for (int j = 0; j < 8; j++)
        c[j] = _mm512_set1_epi32(j);
    for (int64_t i = 0; i < units; i++) {
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++)
            __asm__(PROBE_MADD_ASM : [c] "+v"(c[j]), [t] "=&v"(t) : [a] "v"(a), [b] "v"(b), [one] "v"(one));
    }
#pragma GCC unroll 16
    for (int j = 1; j < 8; j++)
        c[0] = _mm512_add_epi32(c[0], c[j]);
    return _mm512_reduce_add_epi32(c[0]);
}

__attribute__((target("avx2"))) static double dot_madd_ymm(int64_t units)
{
    __m256i a = _mm256_set1_epi8(1), b = _mm256_set1_epi8(2), one = _mm256_set1_epi16(1), c[8], t;
#pragma GCC unroll 16
    for (int j = 0; j < 8; j++)
        c[j] = _mm256_set1_epi32(j);
    for (int64_t i = 0; i < units; i++) {
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++)
            __asm__(PROBE_MADD_ASM : [c] "+x"(c[j]), [t] "=&x"(t) : [a] "x"(a), [b] "x"(b), [one] "x"(one));
    }
#pragma GCC unroll 16
    for (int j = 1; j < 8; j++)
        c[0] = _mm256_add_epi32(c[0], c[j]);
    return _mm256_extract_epi32(c[0], 0);
}
#endif

/* Portable: i32 multiply-adds on 16-byte vectors (not an int8 dot, but
 * the closest a plain loop gets). */
static double dot_v4(int64_t units)
{
    probe_v4i a = {3, 3, 3, 3}, c[PROBE_NACC];
#pragma GCC unroll 16
    for (uint32_t j = 0; j < PROBE_NACC; j++)
        c[j] = (probe_v4i){j, j, j, j};
    for (int64_t i = 0; i < units; i++) {
#pragma GCC unroll 16
        for (int j = 0; j < PROBE_NACC; j++)
            c[j] = c[j] * a + a;
    }
#pragma GCC unroll 16
    for (int j = 1; j < PROBE_NACC; j++)
        c[0] += c[j];
    return c[0][0];
}

/* ---- choosing the loops for this CPU ---- */

typedef struct probe_loop {
    probe_compute_fn fn;
    double ops;       /* operations per unit (per loop iteration, all lanes) */
    const char *insn; /* what it measures */
} probe_loop;

typedef struct probe_kernels {
    probe_read_fn read;
    probe_loop fma, dot;
} probe_kernels;

/* The widest read loop this CPU runs. */
static probe_read_fn select_read(void)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return read_zmm;
    if (__builtin_cpu_supports("avx"))
        return read_ymm;
#endif
    return read_v4;
}

/* An FMA is 2 FLOPs per lane; a multiply-add of int8 is 2 OPs. */
static void select_kernels(const qk_target *t, probe_kernels *k)
{
    *k = (probe_kernels){select_read(), {fma_v4, 2.0 * 4 * PROBE_NACC, "mul+add f32 x4 (C)"},
                         {dot_v4, 2.0 * 4 * PROBE_NACC, "mul+add i32 x4 (C)"}};
#if defined(__x86_64__)
    if (__builtin_cpu_supports("fma"))
        k->fma = (probe_loop){fma_ymm, 2.0 * 8 * PROBE_NACC, "vfmadd231ps ymm"};
    if (__builtin_cpu_supports("avx512f"))
        k->fma = (probe_loop){fma_zmm, 2.0 * 16 * PROBE_NACC, "vfmadd231ps zmm"};
    if (__builtin_cpu_supports("avx2"))
        k->dot = (probe_loop){dot_madd_ymm, 2.0 * 32 * 8, "vpmaddubsw ymm"};
    if (__builtin_cpu_supports("avx512bw"))
        k->dot = (probe_loop){dot_madd_zmm, 2.0 * 64 * 8, "vpmaddubsw zmm"};
    if (t->features & QK_FEAT_AVXVNNI)
        k->dot = (probe_loop){dot_vnni_ymm, 2.0 * 32 * PROBE_NACC, "vpdpbusd ymm"};
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni"))
        k->dot = (probe_loop){dot_vnni_zmm, 2.0 * 64 * PROBE_NACC, "vpdpbusd zmm"};
#else
    (void)t;
#endif
}

/* ---- a team of threads ---- */

static double probe_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The buffers of one read level: thread i streams buf[i]. */
typedef struct probe_bufs {
    int n;
    size_t bytes;
    float **buf;
    int *touched; /* written once, by the thread that reads it */
} probe_bufs;

typedef struct probe_job probe_job;

typedef struct probe_worker {
    probe_job *job;
    int idx;
    pthread_t tid;
    double t0[PROBE_MAX_REPS], t1[PROBE_MAX_REPS];
    double sink; /* the loops' results, so they are not dead code */
} probe_worker;

struct probe_job {
    /* what to run */
    int n, reps;          /* threads; repetitions at most */
    double target;        /* seconds one repetition should take, at least */
    double budget;        /* seconds of repetitions, after the first three */
    probe_bufs *bufs;     /* a read job, or */
    probe_compute_fn fn;  /* a compute job */
    probe_read_fn read;
    /* while it runs */
    int64_t units;        /* work of one repetition, set by thread 0 (preset: not calibrated) */
    int done;             /* repetitions run, set by thread 0 */
    char stop[PROBE_MAX_REPS + 1]; /* thread 0's decision before repetition r */
    atomic_int gate;      /* 0 wait, 1 go, -1 abort */
    atomic_int arrived, phase;
    probe_worker *w;
};

/* All n threads meet here. Spins, then yields: with more threads than
 * cores the waiting ones let the late ones run. */
static void job_barrier(probe_job *j)
{
    int phase = atomic_load(&j->phase);
    if (atomic_fetch_add(&j->arrived, 1) == j->n - 1) {
        atomic_store(&j->arrived, 0);
        atomic_fetch_add(&j->phase, 1);
        return;
    }
    for (int spin = 0; atomic_load(&j->phase) == phase; spin++)
        if (spin > 1000)
            sched_yield();
}

static double job_work(probe_worker *w, int64_t units)
{
    const probe_job *j = w->job;
    if (j->bufs)
        return j->read(j->bufs->buf[w->idx], j->bufs->bytes / sizeof(float), units);
    return j->fn(units);
}

/* Thread 0, alone: doubles the work until it takes a quarter of the
 * target, then scales it to the target. Doubles as the warm-up. */
static int64_t job_calibrate(probe_worker *w)
{
    const probe_job *j = w->job;
    int64_t units = j->bufs ? 1 : 1024;
    for (;;) {
        double t = probe_now();
        w->sink += job_work(w, units);
        t = probe_now() - t;
        if (t >= j->target / 4 || units >= ((int64_t)1 << 40))
            return (int64_t)ceil((double)units * j->target / (t > 0 ? t : 1e-9));
        units *= 2;
    }
}

/* Thread 0 decides before each barrier whether repetition r runs; every
 * thread reads that decision after the barrier (one slot per repetition,
 * so a late reader never sees the next one). */
static void job_thread_reps(probe_worker *w)
{
    probe_job *j = w->job;
    double start = probe_now();
    for (int r = 0;; r++) {
        if (w->idx == 0 && (r == j->reps || (r >= 3 && probe_now() - start > j->budget))) {
            j->stop[r] = 1;
            j->done = r;
        }
        job_barrier(j);
        if (j->stop[r])
            return;
        w->t0[r] = probe_now();
        w->sink += job_work(w, j->units);
        w->t1[r] = probe_now();
    }
}

static void *job_thread(void *arg)
{
    probe_worker *w = arg;
    probe_job *j = w->job;
    while (atomic_load(&j->gate) == 0)
        sched_yield();
    if (atomic_load(&j->gate) < 0)
        return NULL;
    if (j->bufs && !j->bufs->touched[w->idx]) {
        memset(j->bufs->buf[w->idx], 1, j->bufs->bytes); /* first touch by its reader */
        j->bufs->touched[w->idx] = 1;
    }
    job_barrier(j);
    if (w->idx == 0 && j->units <= 0)
        j->units = job_calibrate(w);
    job_barrier(j);
    job_thread_reps(w);
    return NULL;
}

/* The fastest repetition: from the first start to the last finish. */
static double job_best(const probe_job *j)
{
    double best = INFINITY;
    for (int r = 0; r < j->done; r++) {
        double t0 = INFINITY, t1 = 0;
        for (int i = 0; i < j->n; i++) {
            t0 = fmin(t0, j->w[i].t0[r]);
            t1 = fmax(t1, j->w[i].t1[r]);
        }
        best = fmin(best, t1 - t0);
    }
    return best;
}

/* Runs the job (the caller is thread 0) and returns its best time in
 * seconds, or -1 with a message. */
static double job_run(probe_job *j, char *err, size_t errsz)
{
    j->w = calloc((size_t)j->n, sizeof *j->w);
    if (!j->w) {
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    for (int i = 0; i < j->n; i++)
        j->w[i] = (probe_worker){.job = j, .idx = i};
    int started = 1;
    for (; started < j->n; started++)
        if (pthread_create(&j->w[started].tid, NULL, job_thread, &j->w[started]) != 0)
            break;
    atomic_store(&j->gate, started == j->n ? 1 : -1);
    if (started == j->n)
        job_thread(&j->w[0]);
    for (int i = 1; i < started; i++)
        pthread_join(j->w[i].tid, NULL);
    double best = started == j->n ? job_best(j) : -1;
    if (started != j->n)
        snprintf(err, errsz, "cannot start %d threads (started %d)", j->n, started);
    free(j->w);
    j->w = NULL;
    return best;
}

/* ---- the measurements ---- */

typedef struct probe_plan {
    int threads, reps;
    double target, budget;
    probe_kernels k;
} probe_plan;

static void bufs_free(probe_bufs *b)
{
    for (int i = 0; b->buf && i < b->n; i++)
        free(b->buf[i]);
    free(b->buf);
    free(b->touched);
}

/* n buffers of `bytes` each (untouched: each reader touches its own). */
static int bufs_alloc(probe_bufs *b, int n, int64_t bytes, char *err, size_t errsz)
{
    *b = (probe_bufs){.n = n, .bytes = (size_t)bytes};
    b->buf = calloc((size_t)n, sizeof *b->buf);
    b->touched = calloc((size_t)n, sizeof *b->touched);
    int ok = b->buf && b->touched;
    for (int i = 0; ok && i < n; i++)
        ok = (b->buf[i] = aligned_alloc(PROBE_ALIGN, (size_t)bytes)) != NULL;
    if (!ok) {
        snprintf(err, errsz, "out of memory: %d x %lld MiB of probe buffers", n, (long long)(bytes / MiB));
        bufs_free(b);
    }
    return ok ? 0 : -1;
}

/* Bytes/s streaming each buffer once per unit on n threads. */
static double measure_read(const probe_plan *pl, probe_bufs *b, int n, char *err, size_t errsz)
{
    probe_job j = {.n = n, .reps = pl->reps, .target = pl->target, .budget = pl->budget, .bufs = b,
                   .read = pl->k.read};
    double t = job_run(&j, err, errsz);
    return t < 0 ? -1 : (double)j.units * (double)b->bytes * n / t;
}

double qk_probe_read_pass(void *const *bufs, int n, size_t bytes, double *bytes_read, char *err, size_t errsz)
{
    if (n < 1 || n > PROBE_MAX_THREADS) {
        snprintf(err, errsz, "read pass: %d threads (1..%d)", n, PROBE_MAX_THREADS);
        return -1;
    }
    for (int i = 0; i < n; i++)
        if ((uintptr_t)bufs[i] % 64) {
            snprintf(err, errsz, "read pass: buffer %d is not 64-byte aligned", i);
            return -1;
        }
    int touched[PROBE_MAX_THREADS];
    for (int i = 0; i < n; i++)
        touched[i] = 1;
    probe_bufs b = {.n = n, .bytes = bytes / 512 * 512, .buf = (float **)bufs, .touched = touched};
    probe_job j = {.n = n, .reps = 1, .bufs = &b, .read = select_read(), .units = 1};
    double t = job_run(&j, err, errsz);
    *bytes_read = (double)b.bytes * n;
    return t;
}

/* Operations/s of a compute loop on n threads. */
static double measure_compute(const probe_plan *pl, const probe_loop *loop, int n, char *err, size_t errsz)
{
    probe_job j = {.n = n, .reps = pl->reps, .target = pl->target, .budget = pl->budget, .fn = loop->fn};
    double t = job_run(&j, err, errsz);
    return t < 0 ? -1 : (double)j.units * loop->ops * n / t;
}

static int64_t round_up(int64_t v, int64_t to)
{
    return (v + to - 1) / to * to;
}

/* Per-thread working sets: half of L1 and L2 (private), half of L3 split
 * among the threads (shared), and for DRAM at least 8x (quick: 4x) L3 in
 * all, 256 (quick: 128) MiB per thread or more, within a quarter of RAM. */
static void working_sets(const qk_target *t, int threads, int quick, int64_t ws[QK_PROBE_LEVELS])
{
    int64_t l1 = t->l1 > 0 ? t->l1 : 32 << 10, l2 = t->l2 > 0 ? t->l2 : 1 * MiB, l3 = t->l3 > 0 ? t->l3 : 32 * MiB;
    ws[QK_PROBE_L1] = round_up(l1 / 2, PROBE_ALIGN);
    ws[QK_PROBE_L2] = round_up(l2 / 2, PROBE_ALIGN);
    int64_t l3ws = l3 / 2 / threads;
    ws[QK_PROBE_L3] = round_up(l3ws > 2 * l2 ? l3ws : 2 * l2, PROBE_ALIGN);
    int64_t dram = quick ? 128 * MiB : 256 * MiB, spread = (quick ? 4 : 8) * l3 / threads;
    dram = dram > spread ? dram : spread;
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    int64_t cap = pages > 0 && psize > 0 ? (int64_t)pages * psize / 4 / threads : dram;
    dram = dram < cap ? dram : cap;
    ws[QK_PROBE_DRAM] = round_up(dram > 16 * MiB ? dram : 16 * MiB, PROBE_ALIGN);
}

/* One level: one thread, then all (reusing thread 0's buffer). */
static int measure_level(const probe_plan *pl, int64_t bytes, double bw[2], char *err, size_t errsz)
{
    probe_bufs b;
    if (bufs_alloc(&b, pl->threads, bytes, err, errsz))
        return -1;
    bw[0] = measure_read(pl, &b, 1, err, errsz);
    bw[1] = pl->threads == 1 || bw[0] < 0 ? bw[0] : measure_read(pl, &b, pl->threads, err, errsz);
    bufs_free(&b);
    return bw[0] < 0 || bw[1] < 0 ? -1 : 0;
}

static int measure_peak(const probe_plan *pl, const probe_loop *loop, double rate[2], char *err, size_t errsz)
{
    rate[0] = measure_compute(pl, loop, 1, err, errsz);
    rate[1] = pl->threads == 1 || rate[0] < 0 ? rate[0] : measure_compute(pl, loop, pl->threads, err, errsz);
    return rate[0] < 0 || rate[1] < 0 ? -1 : 0;
}

static int measure_all(const probe_plan *pl, qk_probe_result *out, char *err, size_t errsz)
{
    for (int lv = 0; lv < QK_PROBE_LEVELS; lv++)
        if (measure_level(pl, out->ws_bytes[lv], out->read_bw[lv], err, errsz))
            return -1;
    if (measure_peak(pl, &pl->k.fma, out->f32_fma, err, errsz))
        return -1;
    return measure_peak(pl, &pl->k.dot, out->int8_dot, err, errsz);
}

int qk_probe_run(const qk_probe_opts *opts, qk_probe_result *out, char *err, size_t errsz)
{
    qk_probe_opts o = opts ? *opts : (qk_probe_opts){0};
    if (!out) {
        snprintf(err, errsz, "qk_probe_run: no result to fill");
        return -1;
    }
    if (o.threads < 0 || o.threads > PROBE_MAX_THREADS) {
        snprintf(err, errsz, "threads must be 0 (every core) .. %d, got %d", PROBE_MAX_THREADS, o.threads);
        return -1;
    }
    double start = probe_now();
    qk_target t;
    qk_target_host(&t);
    memset(out, 0, sizeof *out);
    qk_target_fingerprint(&t, out->fingerprint, sizeof out->fingerprint);
    probe_plan pl = {.threads = o.threads ? o.threads : (t.cores > 0 ? t.cores : 1),
                     .reps = o.quick ? 8 : PROBE_MAX_REPS,
                     .target = o.quick ? 0.002 : 0.005,
                     .budget = o.quick ? 0.05 : 0.3};
    select_kernels(&t, &pl.k);
    out->threads = pl.threads;
    working_sets(&t, pl.threads, o.quick, out->ws_bytes);
    snprintf(out->f32_insn, sizeof out->f32_insn, "%s", pl.k.fma.insn);
    snprintf(out->int8_insn, sizeof out->int8_insn, "%s", pl.k.dot.insn);
    int rc = measure_all(&pl, out, err, errsz);
    out->created = (int64_t)time(NULL);
    out->seconds = probe_now() - start;
    return rc;
}

/* ---- printing ---- */

static const char *const level_names[QK_PROBE_LEVELS] = {"L1", "L2", "L3", "DRAM"};
static const char *const level_keys[QK_PROBE_LEVELS] = {"l1", "l2", "l3", "dram"};

static void size_text(int64_t bytes, char *buf, size_t n)
{
    if (bytes >= MiB && bytes % MiB == 0)
        snprintf(buf, n, "%lld MiB", (long long)(bytes / MiB));
    else if (bytes >= 1024)
        snprintf(buf, n, "%.0f KiB", (double)bytes / 1024);
    else
        snprintf(buf, n, "%lld B", (long long)bytes);
}

/* A device probe (threads = 0, runtime/device.h): one figure. */
static char *device_text(const qk_probe_result *r, const char *when)
{
    qk_buf b = {0};
    char ws[32];
    size_text(r->ws_bytes[QK_PROBE_DRAM], ws, sizeof ws);
    qk_buf_printf(&b, "device: %s\nmeasured %s in %.1f s\n\n", r->fingerprint, when, r->seconds);
    qk_buf_printf(&b, "device memory copy bandwidth (device to device, bytes read + written): %.1f GB/s, %s "
                      "copied\n",
                  r->read_bw[QK_PROBE_DRAM][0] / 1e9, ws);
    return qk_buf_take(&b);
}

char *qk_probe_text(const qk_probe_result *r)
{
    qk_buf b = {0};
    char when[64] = "?", all[32], ws[32];
    time_t created = (time_t)r->created;
    struct tm tm;
    if (gmtime_r(&created, &tm))
        strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tm);
    if (r->threads == 0)
        return device_text(r, when);
    snprintf(all, sizeof all, "%d thread%s", r->threads, r->threads == 1 ? "" : "s");
    qk_buf_printf(&b, "machine: %s\nmeasured %s in %.1f s\n\n", r->fingerprint, when, r->seconds);
    qk_buf_printf(&b, "%-14s %12s %14s %14s\n", "read bandwidth", "working set", "1 thread", all);
    for (int lv = 0; lv < QK_PROBE_LEVELS; lv++) {
        size_text(r->ws_bytes[lv], ws, sizeof ws);
        qk_buf_printf(&b, "  %-12s %12s %9.1f GB/s %9.1f GB/s\n", level_names[lv], ws, r->read_bw[lv][0] / 1e9,
                      r->read_bw[lv][1] / 1e9);
    }
    qk_buf_printf(&b, "\n%-27s %14s %14s\n", "peak compute", "1 core", all);
    qk_buf_printf(&b, "  f32 FMA  %-17s %6.1f GFLOP/s %6.1f GFLOP/s\n", r->f32_insn, r->f32_fma[0] / 1e9,
                  r->f32_fma[1] / 1e9);
    qk_buf_printf(&b, "  int8 dot %-17s %8.1f GOP/s %8.1f GOP/s\n", r->int8_insn, r->int8_dot[0] / 1e9,
                  r->int8_dot[1] / 1e9);
    return qk_buf_take(&b);
}

static void json_str(qk_buf *b, const char *s)
{
    qk_buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            qk_buf_printf(b, "\\%c", *p);
        else if (*p < 0x20)
            qk_buf_printf(b, "\\u%04x", *p);
        else
            qk_buf_printf(b, "%c", *p);
    }
    qk_buf_puts(b, "\"");
}

/* JSON has no NaN or infinity: those become null. */
static void json_num(qk_buf *b, double v)
{
    if (isfinite(v))
        qk_buf_printf(b, "%.9g", v);
    else
        qk_buf_puts(b, "null");
}

static void json_pair(qk_buf *b, const char *key, const double v[2])
{
    qk_buf_printf(b, "\"%s\":[", key);
    json_num(b, v[0]);
    qk_buf_puts(b, ",");
    json_num(b, v[1]);
    qk_buf_puts(b, "]");
}

char *qk_probe_json(const qk_probe_result *r)
{
    qk_buf b = {0};
    qk_buf_puts(&b, "{\"fingerprint\":");
    json_str(&b, r->fingerprint);
    qk_buf_printf(&b, ",\"threads\":%d,\"created\":%lld,\"seconds\":", r->threads, (long long)r->created);
    json_num(&b, r->seconds);
    qk_buf_puts(&b, ",\"read_bw\":{");
    for (int lv = 0; lv < QK_PROBE_LEVELS; lv++) {
        qk_buf_puts(&b, lv ? "," : "");
        json_pair(&b, level_keys[lv], r->read_bw[lv]);
    }
    qk_buf_puts(&b, "},\"ws_bytes\":{");
    for (int lv = 0; lv < QK_PROBE_LEVELS; lv++)
        qk_buf_printf(&b, "%s\"%s\":%lld", lv ? "," : "", level_keys[lv], (long long)r->ws_bytes[lv]);
    qk_buf_puts(&b, "},");
    json_pair(&b, "f32_fma", r->f32_fma);
    qk_buf_puts(&b, ",");
    json_pair(&b, "int8_dot", r->int8_dot);
    qk_buf_puts(&b, ",\"f32_insn\":");
    json_str(&b, r->f32_insn);
    qk_buf_puts(&b, ",\"int8_insn\":");
    json_str(&b, r->int8_insn);
    qk_buf_puts(&b, "}");
    return qk_buf_take(&b);
}

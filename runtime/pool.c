/* pool.c — the launch thread pool. A run splits work items [0, items)
 * into chunks handed out by an atomic counter; the calling thread takes
 * chunks too. Runs are serialized per pool by run_mu, so launches from
 * several threads on one context are safe (they take turns). Workers
 * start lazily, on the first run that wants them.
 *
 * Between runs a worker spins on the run counter for RT_SPIN_NS before it
 * sleeps on a condition variable, and the caller spins the same way for
 * the workers to finish: back-to-back launches (a model's layers) then
 * cost a few cache-line transfers instead of a futex wake-up and a
 * scheduler round trip (tens of microseconds) each. */
#include "runtime/runtime.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#define RT_SPIN_NS 50000 /* 50 us */

struct rt_pool {
    int size;                 /* max threads, caller included */
    int nstarted;             /* workers started */
    pthread_t *workers;
    pthread_mutex_t run_mu;   /* one run at a time */
    pthread_mutex_t mu;       /* guards the sleeping counts (and the condvars) */
    pthread_cond_t wake, done_cv;
    int sleepers;             /* workers waiting on wake */
    int waiting;              /* 1 while the caller waits on done_cv */
    /* (run number << 16) | workers taking part in the run: one word, so
     * a worker never pairs one run's number with another's count. The
     * task is published before it changes. */
    atomic_ullong gen;
    atomic_int quit;
    atomic_int ndone;         /* workers done with this run */
    rt_task_fn fn;
    void *arg;
    int64_t items, chunk;
    atomic_llong next;
};

typedef struct worker_arg {
    rt_pool *p;
    int idx;
    uint64_t seen; /* gen at start: the worker waits for a later run */
} worker_arg;

rt_pool *rt_pool_new(int nthreads)
{
    rt_pool *p = qk_xcalloc(1, sizeof *p);
    p->size = nthreads < 1 ? 1 : nthreads > 0xffff ? 0xffff : nthreads;
    p->workers = qk_xcalloc((size_t)p->size, sizeof *p->workers);
    pthread_mutex_init(&p->run_mu, NULL);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    atomic_init(&p->gen, 0);
    atomic_init(&p->quit, 0);
    atomic_init(&p->ndone, 0);
    atomic_init(&p->next, 0);
    return p;
}

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Spins up to RT_SPIN_NS until done(p, v) holds. 1 if it does. */
static int spin_until(rt_pool *p, int (*done)(rt_pool *, uint64_t), uint64_t v)
{
    int64_t until = 0;
    for (int i = 1;; i++) {
        if (done(p, v))
            return 1;
        cpu_relax();
        if (i % 64 == 0) { /* read the clock now and then only */
            int64_t t = now_ns();
            if (!until)
                until = t + RT_SPIN_NS;
            else if (t > until)
                return 0;
        }
    }
}

static int new_run(rt_pool *p, uint64_t seen)
{
    return atomic_load_explicit(&p->gen, memory_order_acquire) != seen || atomic_load(&p->quit);
}

static int all_done(rt_pool *p, uint64_t nworkers)
{
    return (uint64_t)atomic_load_explicit(&p->ndone, memory_order_acquire) == nworkers;
}

/* Takes chunks until the counter passes items. */
static void take_chunks(rt_pool *p)
{
    for (;;) {
        int64_t b = atomic_fetch_add(&p->next, p->chunk);
        if (b >= p->items)
            return;
        int64_t e = b + p->chunk < p->items ? b + p->chunk : p->items;
        p->fn(p->arg, b, e);
    }
}

/* Waits for a run after seen (spinning, then sleeping). */
static void wait_run(rt_pool *p, uint64_t seen)
{
    if (spin_until(p, new_run, seen))
        return;
    pthread_mutex_lock(&p->mu);
    p->sleepers++;
    while (!new_run(p, seen))
        pthread_cond_wait(&p->wake, &p->mu);
    p->sleepers--;
    pthread_mutex_unlock(&p->mu);
}

static void *worker_main(void *varg)
{
    worker_arg wa = *(worker_arg *)varg;
    free(varg);
    rt_pool *p = wa.p;
    uint64_t seen = wa.seen;
    for (;;) {
        wait_run(p, seen);
        if (atomic_load(&p->quit))
            break;
        seen = atomic_load_explicit(&p->gen, memory_order_acquire);
        int nworkers = (int)(seen & 0xffff);
        if (wa.idx >= nworkers)
            continue;
        take_chunks(p);
        /* the last one wakes the caller if it went to sleep */
        if (atomic_fetch_add_explicit(&p->ndone, 1, memory_order_acq_rel) + 1 == nworkers) {
            pthread_mutex_lock(&p->mu);
            if (p->waiting)
                pthread_cond_signal(&p->done_cv);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

/* Starts workers up to n (caller holds run_mu). Returns how many are
 * running. A new worker waits for a run after the current gen. */
static int start_workers(rt_pool *p, int n)
{
    while (p->nstarted < n) {
        worker_arg *wa = qk_xmalloc(sizeof *wa);
        *wa = (worker_arg){p, p->nstarted, atomic_load(&p->gen)};
        if (pthread_create(&p->workers[p->nstarted], NULL, worker_main, wa) != 0) {
            free(wa);
            break;
        }
        p->nstarted++;
    }
    return p->nstarted;
}

/* Publishes a run to the workers: the task first, then the new gen. */
static void publish(rt_pool *p, int nw, int64_t items, rt_task_fn fn, void *arg)
{
    p->fn = fn;
    p->arg = arg;
    p->items = items;
    int64_t chunk = items / ((int64_t)(nw + 1) * 8);
    p->chunk = chunk < 1 ? 1 : chunk;
    atomic_store(&p->next, 0);
    atomic_store(&p->ndone, 0);
    uint64_t run = (atomic_load(&p->gen) >> 16) + 1;
    pthread_mutex_lock(&p->mu);
    atomic_store_explicit(&p->gen, run << 16 | (uint64_t)nw, memory_order_release);
    if (p->sleepers)
        pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
}

/* Waits until the nw workers of this run are done. */
static void join(rt_pool *p, int nw)
{
    if (spin_until(p, all_done, (uint64_t)nw))
        return;
    pthread_mutex_lock(&p->mu);
    p->waiting = 1;
    while (!all_done(p, (uint64_t)nw))
        pthread_cond_wait(&p->done_cv, &p->mu);
    p->waiting = 0;
    pthread_mutex_unlock(&p->mu);
}

int rt_pool_run(rt_pool *p, int threads, int64_t items, rt_task_fn fn, void *arg)
{
    if (items <= 0)
        return 0;
    if (threads > p->size)
        threads = p->size;
    if (threads > items)
        threads = (int)items;
    pthread_mutex_lock(&p->run_mu);
    int want = threads - 1;
    int got = want > 0 ? start_workers(p, want) : 0;
    int nw = got < want ? got : want;
    publish(p, nw, items, fn, arg);
    take_chunks(p);
    join(p, nw);
    pthread_mutex_unlock(&p->run_mu);
    return got < want ? -1 : 0;
}

void rt_pool_free(rt_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nstarted; i++)
        pthread_join(p->workers[i], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done_cv);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->run_mu);
    free(p->workers);
    free(p);
}

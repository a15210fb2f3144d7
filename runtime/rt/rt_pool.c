/* rt_pool.c — qkc_rt_pool: the threads a CPU launch runs on.
 *
 * threads - 1 workers are started with the pool and sleep on a condition
 * variable between runs. A run (one phase of a launch) publishes a task
 * under the mutex and bumps a generation counter; workers and the calling
 * thread then take chunks of work items from an atomic counter until it
 * passes the end, and the caller waits until every worker has finished:
 * that wait is the barrier between phases.
 *
 * A launch holds launch_mu across all its phases, so launches from
 * several threads on one pool take turns (the contract of qkc_aot.h). */
#include "runtime/rt/rt_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#define QKRT_MAX_THREADS 1024

struct qkc_rt_pool {
    int size;                /* threads of a run, the caller included */
    int nworkers;
    pthread_t *workers;
    pthread_mutex_t launch_mu; /* one launch at a time */
    pthread_mutex_t mu;        /* guards everything below but next */
    pthread_cond_t wake, done;
    uint64_t gen;            /* run number: workers wait for a new one */
    int quit;
    int busy;                /* workers not yet done with this run */
    qkrt_task_fn fn;
    void *arg;
    int64_t items, chunk;
    atomic_llong next;       /* first item not yet taken */
};

/* Takes chunks until the counter passes items. */
static void take_chunks(qkc_rt_pool *p, qkrt_task_fn fn, void *arg, int64_t items, int64_t chunk)
{
    for (;;) {
        int64_t b = atomic_fetch_add(&p->next, chunk);
        if (b >= items)
            return;
        fn(arg, b, b + chunk < items ? b + chunk : items);
    }
}

static void *worker_main(void *varg)
{
    qkc_rt_pool *p = varg;
    uint64_t seen = 0; /* workers start before the first run (gen 0) */
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->gen == seen)
            pthread_cond_wait(&p->wake, &p->mu);
        if (p->quit)
            break;
        seen = p->gen;
        qkrt_task_fn fn = p->fn;
        void *arg = p->arg;
        int64_t items = p->items, chunk = p->chunk;
        pthread_mutex_unlock(&p->mu);
        take_chunks(p, fn, arg, items, chunk);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static int default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)(n < QKRT_MAX_THREADS ? n : QKRT_MAX_THREADS) : 1;
}

/* Stops and joins the workers started so far. */
static void stop_workers(qkc_rt_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nworkers; i++)
        pthread_join(p->workers[i], NULL);
    p->nworkers = 0;
}

static void destroy(qkc_rt_pool *p)
{
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->launch_mu);
    free(p->workers);
    free(p);
}

qkc_rt_pool *qkc_rt_pool_new(int threads)
{
    qkc_rt_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->size = threads <= 0 ? default_threads() : threads < QKRT_MAX_THREADS ? threads : QKRT_MAX_THREADS;
    p->workers = calloc((size_t)p->size, sizeof *p->workers);
    pthread_mutex_init(&p->launch_mu, NULL);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->next, 0);
    if (!p->workers) {
        destroy(p);
        return NULL;
    }
    for (int i = 0; i + 1 < p->size; i++) {
        if (pthread_create(&p->workers[i], NULL, worker_main, p) != 0) {
            stop_workers(p);
            destroy(p);
            return NULL;
        }
        p->nworkers++;
    }
    return p;
}

void qkc_rt_pool_free(qkc_rt_pool *p)
{
    if (!p)
        return;
    stop_workers(p);
    destroy(p);
}

int qkc_rt_pool_threads(const qkc_rt_pool *p)
{
    return p ? p->size : 0;
}

void qkrt_pool_lock(qkc_rt_pool *p)
{
    pthread_mutex_lock(&p->launch_mu);
}

void qkrt_pool_unlock(qkc_rt_pool *p)
{
    pthread_mutex_unlock(&p->launch_mu);
}

void qkrt_pool_run(qkc_rt_pool *p, int64_t items, qkrt_task_fn fn, void *arg)
{
    if (items <= 0)
        return;
    if (p->nworkers == 0 || items == 1) {
        fn(arg, 0, items);
        return;
    }
    /* about 8 chunks per thread: small enough to even out uneven items */
    int64_t chunk = items / ((int64_t)p->size * 8);
    chunk = chunk < 1 ? 1 : chunk;
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->items = items;
    p->chunk = chunk;
    atomic_store(&p->next, 0);
    p->busy = p->nworkers;
    p->gen++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    take_chunks(p, fn, arg, items, chunk);
    pthread_mutex_lock(&p->mu);
    while (p->busy > 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

/* pool.c — the launch thread pool. A run splits work items [0, items)
 * into chunks handed out by an atomic counter; the calling thread takes
 * chunks too. Runs are serialized per pool by run_mu, so launches from
 * several threads on one context are safe (they take turns). Workers
 * start lazily, on the first run that wants them, and sleep on a
 * condition variable between runs. */
#include "runtime/runtime.h"

#include <stdatomic.h>
#include <stdlib.h>

struct rt_pool {
    int size;                 /* max threads, caller included */
    int nstarted;             /* workers started */
    pthread_t *workers;
    pthread_mutex_t run_mu;   /* one run at a time */
    pthread_mutex_t mu;       /* guards the fields below */
    pthread_cond_t wake, done_cv;
    uint64_t gen;             /* bumped per run */
    int quit;
    int nworkers;             /* workers taking part in this run */
    int ndone;
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
    p->size = nthreads < 1 ? 1 : nthreads;
    p->workers = qk_xcalloc((size_t)p->size, sizeof *p->workers);
    pthread_mutex_init(&p->run_mu, NULL);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    atomic_init(&p->next, 0);
    return p;
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

static void *worker_main(void *varg)
{
    worker_arg wa = *(worker_arg *)varg;
    free(varg);
    rt_pool *p = wa.p;
    uint64_t seen = wa.seen;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->gen == seen && !p->quit)
            pthread_cond_wait(&p->wake, &p->mu);
        if (p->quit)
            break;
        seen = p->gen;
        if (wa.idx >= p->nworkers)
            continue;
        pthread_mutex_unlock(&p->mu);
        take_chunks(p);
        pthread_mutex_lock(&p->mu);
        if (++p->ndone == p->nworkers)
            pthread_cond_signal(&p->done_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Starts workers up to n (caller holds run_mu, not mu). Returns how many
 * are running. A new worker waits for a run after the current gen. */
static int start_workers(rt_pool *p, int n)
{
    pthread_mutex_lock(&p->mu);
    while (p->nstarted < n) {
        worker_arg *wa = qk_xmalloc(sizeof *wa);
        *wa = (worker_arg){p, p->nstarted, p->gen};
        if (pthread_create(&p->workers[p->nstarted], NULL, worker_main, wa) != 0) {
            free(wa);
            break;
        }
        p->nstarted++;
    }
    int got = p->nstarted;
    pthread_mutex_unlock(&p->mu);
    return got;
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
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->items = items;
    int64_t chunk = items / ((int64_t)(nw + 1) * 8);
    p->chunk = chunk < 1 ? 1 : chunk;
    atomic_store(&p->next, 0);
    p->nworkers = nw;
    p->ndone = 0;
    p->gen++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    take_chunks(p);
    pthread_mutex_lock(&p->mu);
    while (p->ndone < p->nworkers)
        pthread_cond_wait(&p->done_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&p->run_mu);
    return got < want ? -1 : 0;
}

void rt_pool_free(rt_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
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

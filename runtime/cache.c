/* cache.c — the in-memory kernel cache of a context. Entries are keyed by
 * a hash of the kernel's canonical text (see kernel.c: KIR, formats,
 * target, tile configuration, qkc version) and compared by the full key,
 * so a hash collision costs a compile, never a wrong kernel. Entries are
 * refcounted by the kernels using them and live until the context dies. */
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>

void rt_cache_init(rt_cache *c)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
}

void rt_entry_free(rt_entry *e, const qk_backend *be, void *state)
{
    if (!e)
        return;
    if (e->has_code && be && be->release)
        be->release(state, &e->code);
    qk_arena_free(e->arena);
#if QKC_HAVE_FFI
    free(e->types);
#endif
    free(e->code_err);
    free(e->key);
    free(e);
}

void rt_cache_fini(rt_cache *c, const qk_backend *be, void *state)
{
    rt_entry *e = c->head;
    while (e) {
        rt_entry *next = e->next;
        rt_entry_free(e, be, state);
        e = next;
    }
    c->head = NULL;
    pthread_mutex_destroy(&c->mu);
}

/* Caller holds c->mu. */
static rt_entry *find_locked(rt_cache *c, uint64_t hash, const char *key)
{
    for (rt_entry *e = c->head; e; e = e->next)
        if (e->hash == hash && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

rt_entry *rt_cache_find(rt_cache *c, uint64_t hash, const char *key)
{
    pthread_mutex_lock(&c->mu);
    rt_entry *e = find_locked(c, hash, key);
    if (e) {
        e->refs++;
        c->hits++;
    }
    pthread_mutex_unlock(&c->mu);
    return e;
}

rt_entry *rt_cache_insert(rt_cache *c, rt_entry *e)
{
    pthread_mutex_lock(&c->mu);
    rt_entry *old = find_locked(c, e->hash, e->key);
    if (old) {
        old->refs++;
        c->hits++;
    } else {
        e->refs = 1;
        e->next = c->head;
        c->head = e;
        c->misses++;
    }
    pthread_mutex_unlock(&c->mu);
    return old ? old : e;
}

void rt_cache_release(rt_cache *c, rt_entry *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&c->mu);
    e->refs--;
    pthread_mutex_unlock(&c->mu);
}

/* tune_gpu.c — legality of the tuner's GPU candidates (tune.h): a
 * configuration is kept only when its kernel fits the target's
 * registers and shared memory. The figures come from the assembler's
 * report (ptxas -v, through the CUDA backend's resources hook, which the
 * caller passes in as a callback: the compiler does not call backends),
 * else from a rough estimate over the tiled IR, and the verdict says
 * which. Nothing here needs a device.
 *
 * Prefix: tune_. */
#include "compiler/tune.h"

#include <stdio.h>
#include <string.h>

int tune_gpu_fits(const qk_target *t, const tune_gpu_usage *u, char *why, size_t n)
{
    long long block_regs = (long long)u->regs * u->block;
    if (t->regs_per_thread > 0 && u->regs > t->regs_per_thread)
        snprintf(why, n, "%d registers per thread > the limit of %d", u->regs, t->regs_per_thread);
    else if (t->regs_per_block > 0 && block_regs > t->regs_per_block)
        snprintf(why, n, "%d registers x %d threads = %lld > %d registers per block", u->regs, u->block, block_regs,
                 t->regs_per_block);
    else if (t->regs_per_sm > 0 && block_regs > t->regs_per_sm)
        snprintf(why, n, "%d registers x %d threads = %lld > %d registers per SM", u->regs, u->block, block_regs,
                 t->regs_per_sm);
    else if (u->smem > t->smem_per_block)
        snprintf(why, n, "%d bytes of shared memory > %d per block", u->smem, t->smem_per_block);
    else
        return 1;
    return 0;
}

void tune_gpu_estimate(const tir_func *f, tune_gpu_usage *u)
{
    int warp = 0;
    for (int i = 0; i < f->ngrids; i++)
        warp |= f->grids[i].warp;
    int tp = f->cfg.tile_par > 0 ? f->cfg.tile_par : 1, ti = f->cfg.tile_inner > 0 ? f->cfg.tile_inner : 1;
    int points = tp * ti > 64 ? 64 : tp * ti; /* the builder's cap */
    int regs = warp ? 64 : 32 + 4 * points;
    memset(u, 0, sizeof *u);
    u->regs = regs > 255 ? 255 : regs;
    u->spill = regs > 255 ? 4 * (regs - 255) : 0;
    u->block = TUNE_GPU_BLOCK;
}

/* The verdict of one configuration. */
static void check_one(const kir_kernel *k, const qk_target *t, const tir_config *cfg, tune_gpu_usage_fn fn,
                      void *ctx, tune_gpu_verdict *v)
{
    memset(v, 0, sizeof *v);
    qk_arena *a = qk_arena_new();
    char err[192] = "";
    tir_func *f = tir_build(a, k, t, cfg, err, sizeof err);
    if (!f)
        snprintf(v->why, sizeof v->why, "does not build: %s", err);
    else {
        if (!fn || fn(ctx, f, &v->use, v->estimate, sizeof v->estimate) != 0) {
            if (!fn)
                snprintf(v->estimate, sizeof v->estimate, "no assembler given");
            tune_gpu_estimate(f, &v->use);
        } else
            v->use.from_ptxas = 1;
        if (v->use.block <= 0)
            v->use.block = TUNE_GPU_BLOCK;
        v->legal = tune_gpu_fits(t, &v->use, v->why, sizeof v->why);
    }
    qk_arena_free(a);
}

int tune_gpu_check(const kir_kernel *k, const qk_target *t, tune_cand *c, int n, tune_gpu_usage_fn fn, void *ctx,
                   tune_gpu_verdict *v)
{
    for (int i = 0; i < n; i++)
        check_one(k, t, &c[i].cfg, fn, ctx, &v[i]);
    int legal = 0;
    for (int i = 0; i < n; i++) /* stable: legal ones keep their order, so do illegal ones */
        if (v[i].legal) {
            tune_cand cc = c[i];
            tune_gpu_verdict vv = v[i];
            memmove(&c[legal + 1], &c[legal], (size_t)(i - legal) * sizeof *c);
            memmove(&v[legal + 1], &v[legal], (size_t)(i - legal) * sizeof *v);
            c[legal] = cc;
            v[legal] = vv;
            legal++;
        }
    return legal;
}

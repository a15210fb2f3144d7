/* mlp_data.h — the weights, inputs and printing shared by
 * examples/host-jit and examples/host-aot, so that both print the same
 * numbers: a deterministic xorshift generator fills the f32 model.
 * Included by both main.c files (header-only, static functions). */
#ifndef QKC_EXAMPLE_MLP_DATA_H
#define QKC_EXAMPLE_MLP_DATA_H

#include "rng.h"

#include <stdint.h>
#include <stdio.h>

enum { B = 3, D = 64, H = 64, O = 8 };

/* The model and a batch of inputs, f32 . */
typedef struct mlp_data {
    float w1[H * D], b1[H], w2[O * H], b2[O], x[B * D];
} mlp_data;

static void fill(float *v, int n, float scale, uint32_t *s)
{
    for (int i = 0; i < n; i++)
        v[i] = scale * next_value(s);
}

static void make_data(mlp_data *m)
{
    uint32_t s = 0x9e3779b9u;
    fill(m->w1, H * D, 0.5f, &s);
    fill(m->b1, H, 0.1f, &s);
    fill(m->w2, O * H, 0.5f, &s);
    fill(m->b2, O, 0.1f, &s);
    fill(m->x, B * D, 1.0f, &s);
}

static void print_outputs(const float *y)
{
    for (int i = 0; i < B * O; i++)
        printf("%.6g\n", y[i]);
}

#endif

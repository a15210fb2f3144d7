/* rng.h — the deterministic inputs of the examples: xorshift32, mapped
 * to [-1, 1). Header-only. */
#ifndef QKC_EXAMPLE_RNG_H
#define QKC_EXAMPLE_RNG_H

#include <stdint.h>

static float next_value(uint32_t *s)
{
    uint32_t v = *s;
    v ^= v << 13;
    v ^= v >> 17;
    v ^= v << 5;
    *s = v;
    return (float)(v >> 8) / 8388608.0f - 1.0f;
}

#endif

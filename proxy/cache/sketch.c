/* sketch.c - the count-min sketch of sketch.h. */
#include "proxy/cache/sketch.h"

#include <stdlib.h>
#include <string.h>

#define SKETCH_WIDTH_MIN  32 /* counters per row: 64 bytes in all */
#define SKETCH_NIBBLE_LOW 0x7777777777777777ULL
#define SKETCH_PERIOD     10 /* recordings per counter of a row between halvings */

int sketch_init(struct sketch *s, size_t bytes)
{
    size_t width = SKETCH_WIDTH_MIN;
    while (width * 2 <= bytes / 2) /* 4 rows of 4-bit counters: bytes / 2 per row */
        width *= 2;
    memset(s, 0, sizeof(*s));
    s->words = calloc(SKETCH_ROWS * width / 16, sizeof(uint64_t));
    if (s->words == NULL)
        return -1;
    s->width = width;
    s->shift = 64;
    for (size_t w = width; w > 1; w /= 2)
        s->shift--;
    s->period = (uint64_t)SKETCH_PERIOD * width;
    return 0;
}

void sketch_free(struct sketch *s)
{
    free(s->words);
    s->words = NULL;
}

size_t sketch_bytes(const struct sketch *s)
{
    return SKETCH_ROWS * s->width / 2;
}

/* Finds the counters of hash h: per row its word and the counter's shift in
 * it; returns the smallest. Inline with its callers, so that the four stay
 * in registers (a function filling a struct cost 185 instructions a
 * recording, this about 60). */
static inline unsigned sketch_find(const struct sketch *s, uint64_t h, uint64_t *word[SKETCH_ROWS],
                                   unsigned shift[SKETCH_ROWS])
{
    unsigned m = SKETCH_MAX;
    size_t row_words = s->width / 16;
#pragma GCC unroll 4
    for (unsigned row = 0; row < SKETCH_ROWS; row++) {
        size_t idx = sketch_index(s, h, row);
        word[row] = &s->words[row * row_words + idx / 16];
        shift[row] = 4 * (unsigned)(idx % 16);
        unsigned c = (unsigned)(*word[row] >> shift[row]) & 15;
        m = c < m ? c : m;
    }
    return m;
}

/* Halves every counter: popularity ages out. */
static void sketch_halve(struct sketch *s)
{
    size_t words = SKETCH_ROWS * s->width / 16;
    for (size_t i = 0; i < words; i++)
        s->words[i] = (s->words[i] >> 1) & SKETCH_NIBBLE_LOW;
    s->adds /= 2;
    s->halvings++;
}

sketch_add_e sketch_add(struct sketch *s, uint64_t h)
{
    uint64_t *word[SKETCH_ROWS];
    unsigned shift[SKETCH_ROWS];
    unsigned m = sketch_find(s, h, word, shift);
    if (m == SKETCH_MAX)
        return SKETCH_FULL;
#pragma GCC unroll 4
    for (unsigned row = 0; row < SKETCH_ROWS; row++) {
        if (((*word[row] >> shift[row]) & 15) == m)
            *word[row] += 1ULL << shift[row];
    }
    if (++s->adds < s->period)
        return SKETCH_ADDED;
    sketch_halve(s);
    return SKETCH_HALVED;
}

unsigned sketch_estimate(const struct sketch *s, uint64_t h)
{
    uint64_t *word[SKETCH_ROWS];
    unsigned shift[SKETCH_ROWS];
    return sketch_find(s, h, word, shift);
}

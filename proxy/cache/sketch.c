/* sketch.c - the count-min sketch of sketch.h. */
#include "proxy/cache/sketch.h"

#include <stdlib.h>
#include <string.h>

#define SKETCH_ROWS       4
#define SKETCH_WIDTH_MIN  32 /* counters per row: 64 bytes in all */
#define SKETCH_NIBBLE_LOW 0x7777777777777777ULL
#define SKETCH_PERIOD     10 /* recordings per counter of a row between halvings */

/* Odd multipliers that give each row its own index for one hash. */
static const uint64_t SKETCH_SEEDS[SKETCH_ROWS] = {0x9e3779b97f4a7c15ULL, 0xbf58476d1ce4e5b9ULL,
                                                   0x94d049bb133111ebULL, 0xd6e8feb86659fd93ULL};

/* Where the counters of one hash are: per row a word and a nibble in it. */
struct sketch_at {
    size_t word[SKETCH_ROWS];
    unsigned shift[SKETCH_ROWS];
};

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

static struct sketch_at sketch_at(const struct sketch *s, uint64_t h)
{
    struct sketch_at at;
    for (unsigned row = 0; row < SKETCH_ROWS; row++) {
        size_t idx = (size_t)((h * SKETCH_SEEDS[row]) >> s->shift);
        at.word[row] = row * (s->width / 16) + idx / 16;
        at.shift[row] = 4 * (unsigned)(idx % 16);
    }
    return at;
}

static unsigned sketch_counter(const struct sketch *s, const struct sketch_at *at, unsigned row)
{
    return (unsigned)(s->words[at->word[row]] >> at->shift[row]) & 15;
}

static unsigned sketch_min(const struct sketch *s, const struct sketch_at *at)
{
    unsigned m = SKETCH_MAX;
    for (unsigned row = 0; row < SKETCH_ROWS; row++) {
        unsigned c = sketch_counter(s, at, row);
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
}

bool sketch_add(struct sketch *s, uint64_t h)
{
    struct sketch_at at = sketch_at(s, h);
    unsigned m = sketch_min(s, &at);
    if (m == SKETCH_MAX)
        return false;
    for (unsigned row = 0; row < SKETCH_ROWS; row++) {
        if (sketch_counter(s, &at, row) == m)
            s->words[at.word[row]] += 1ULL << at.shift[row];
    }
    if (++s->adds < s->period)
        return false;
    sketch_halve(s);
    return true;
}

unsigned sketch_estimate(const struct sketch *s, uint64_t h)
{
    struct sketch_at at = sketch_at(s, h);
    return sketch_min(s, &at);
}

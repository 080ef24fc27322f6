/* sketch.h - the local tier's frequency sketch: about how often each hash
 * was recorded lately, for W-TinyLFU admission (tier.c).
 *
 * A count-min sketch of 4 rows of 4-bit counters, each row indexed by its own
 * product of the hash. Updates are conservative (only the counters at the
 * hash's minimum grow), which keeps rare hashes from inheriting the counts of
 * the frequent ones they share counters with. Every counter is halved once the
 * recordings since the last halving reach the period (10 per counter of a
 * row), so old popularity fades.
 *
 * A blocked layout (a hash's 4 counters in one 64-byte line, as Caffeine's)
 * reads one cache line instead of four, but its correlated collisions cost
 * hit ratio: on Zipf 0.99 with scans at a 10% cache, 78.2% against 79.1%
 * (tier_bench 1000000 30000000), at any sketch size tried.
 *
 * Pure and single-threaded.
 */
#ifndef NEARCACHE_SKETCH_H
#define NEARCACHE_SKETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SKETCH_MAX  15 /* a counter saturates there */
#define SKETCH_ROWS 4

/* Odd multipliers that give each row its own index for one hash. */
static const uint64_t SKETCH_SEEDS[SKETCH_ROWS] = {0x9e3779b97f4a7c15ULL, 0xbf58476d1ce4e5b9ULL,
                                                   0x94d049bb133111ebULL, 0xd6e8feb86659fd93ULL};

struct sketch {
    uint64_t *words;   /* 4 rows of width / 16 words of 16 counters */
    size_t width;      /* counters per row, a power of two */
    int shift;         /* 64 - log2(width) */
    uint64_t adds;     /* recordings since the last halving */
    uint64_t period;   /* recordings between two halvings */
    uint64_t halvings; /* since sketch_init */
};

typedef enum {
    SKETCH_ADDED = 0,
    SKETCH_FULL,   /* not recorded: its counters are saturated, and stay so until a halving */
    SKETCH_HALVED, /* recorded, then every counter halved */
} sketch_add_e;

/* Sizes the sketch to at most bytes (rows of a power of two of counters, 64
 * bytes at least), with a halving period of 10 recordings per counter of a
 * row (320 for 64 bytes). Returns 0, or -1 on ENOMEM. */
int sketch_init(struct sketch *s, size_t bytes);

void sketch_free(struct sketch *s);

/* The bytes the sketch holds. */
size_t sketch_bytes(const struct sketch *s);

/* Records one request of hash h. */
sketch_add_e sketch_add(struct sketch *s, uint64_t h);

/* The index of hash h's counter in row. */
static inline size_t sketch_index(const struct sketch *s, uint64_t h, unsigned row)
{
    return (size_t)((h * SKETCH_SEEDS[row]) >> s->shift);
}

/* Starts loading the lines of h's counters, for a sketch_add to come.
 * Inline, as table_prefetch: on every tier lookup (a GET hit 1,389 -> 1,347
 * instructions when the two were made inline). */
static inline void sketch_prefetch(const struct sketch *s, uint64_t h)
{
    size_t row_words = s->width / 16;
#pragma GCC unroll 4
    for (unsigned row = 0; row < SKETCH_ROWS; row++)
        __builtin_prefetch(&s->words[row * row_words + sketch_index(s, h, row) / 16]);
}

/* Returns the estimated requests of h since about one period: at least the
 * true count (a count-min never underestimates before saturation), at most
 * SKETCH_MAX. */
unsigned sketch_estimate(const struct sketch *s, uint64_t h);

#endif

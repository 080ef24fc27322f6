/* table.h - the local tier's hash table: item pointers by 64-bit hash, in
 * 64-byte buckets of 7 slots with a one-byte tag of each item's hash beside
 * them, so that a lookup reads one cache line of the table and dereferences
 * only the items whose tag matches (about 1 in 255 of the others).
 *
 * Open addressing over buckets: an item goes to the first bucket with a free
 * slot from its home bucket on, and every full bucket it passes counts it in
 * its overflow byte, so a lookup stops at the first bucket that has none.
 * Never full: table_insert() doubles it past 6 items per bucket on average.
 * Several items may share a hash (the tier's variants of one key); the table
 * never compares items, the caller does, walking the candidates.
 *
 * Pure and single-threaded.
 */
#ifndef NEARCACHE_TABLE_H
#define NEARCACHE_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TABLE_SLOTS        7
#define TABLE_LOAD         6   /* items per bucket, on average, before doubling */
#define TABLE_OVERFLOW_MAX 255 /* an overflow count that stays: never decremented */

struct table_bucket {
    uint8_t tag[TABLE_SLOTS]; /* 0 = free slot */
    uint8_t overflow;         /* items placed past this bucket that passed it */
    void *item[TABLE_SLOTS];
};

struct table {
    struct table_bucket *buckets;
    size_t mask; /* buckets - 1, a power of two minus one */
    size_t items;
};

/* The item's hash again, for growing and checking. */
typedef uint64_t (*table_hash_fn)(const void *item);

/* A walk over the slots that may hold an item of one hash. */
struct table_walk {
    size_t home;      /* the hash's bucket */
    size_t bucket;    /* the bucket of the slot last returned */
    unsigned slot;    /* the slot last returned */
    unsigned pending; /* bits of the current bucket's matching slots still to return */
    uint8_t tag;
};

/* Creates a table of `buckets` buckets (a power of two). Returns 0, or -1 on ENOMEM. */
int table_init(struct table *t, size_t buckets);

void table_free(struct table *t);

/* The bytes of the bucket array. */
size_t table_bytes(const struct table *t);

/* Starts loading the home bucket of h into the cache. */
static inline void table_prefetch(const struct table *t, uint64_t h)
{
    __builtin_prefetch(&t->buckets[h & t->mask]);
}

/* The tag of hash h: its top byte, never 0 (which marks a free slot). */
static inline uint8_t table_tag(uint64_t h)
{
    uint8_t tag = (uint8_t)(h >> 56);
    return tag != 0 ? tag : 1;
}

_Static_assert(offsetof(struct table_bucket, overflow) == TABLE_SLOTS && TABLE_SLOTS == 7,
               "the tags and the overflow byte are one word");

/* The slots of b whose tag is tag, as bits: the 7 tags compared at once as
 * one word (a byte loop cost 56 instructions a lookup, this 14). A byte of
 * x = tags ^ tag is 0 exactly where ((x & 0x7f) + 0x7f) | x has no top bit
 * (no carry crosses bytes); the top bits, moved to bit 0 of each byte, are
 * gathered into bits 0..6 by one multiply. */
static inline unsigned table_match(const struct table_bucket *b, uint8_t tag)
{
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    uint64_t w;
    memcpy(&w, b->tag, sizeof(w)); /* the tags, then the overflow byte */
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    uint64_t x = w ^ ones * tag;
    uint64_t zero = ~(((x & ~high) + ~high) | x) & high & ~(0xffULL << 56);
    return (unsigned)(((zero >> 7) * 0x0102040810204080ULL) >> 56);
}

static inline void table_walk_at(const struct table *t, struct table_walk *w, size_t bucket)
{
    w->bucket = bucket;
    w->pending = table_match(&t->buckets[bucket], w->tag);
}

/* Starts a walk over the items of hash h. The walk is inline, as every
 * lookup walks: a GET hit 1,214 -> 1,208 instructions. */
static inline void table_walk_start(const struct table *t, uint64_t h, struct table_walk *w)
{
    w->home = h & t->mask;
    w->tag = table_tag(h);
    table_walk_at(t, w, w->home);
}

/* Returns the next item whose tag is h's (maybe of another hash), or NULL at
 * the end. */
static inline void *table_walk_next(const struct table *t, struct table_walk *w)
{
    while (w->pending == 0) {
        size_t next = (w->bucket + 1) & t->mask;
        if (t->buckets[w->bucket].overflow == 0 || next == w->home)
            return NULL;
        table_walk_at(t, w, next);
    }
    w->slot = (unsigned)__builtin_ctz(w->pending);
    w->pending &= w->pending - 1;
    return t->buckets[w->bucket].item[w->slot];
}

/* Removes the item table_walk_next() last returned; the walk goes on. */
void table_walk_remove(struct table *t, struct table_walk *w);

/* Removes item, stored under hash h. Returns false if it is not there. */
bool table_remove(struct table *t, uint64_t h, const void *item);

/* Stores item under hash h, doubling the table first when it is loaded
 * (rehashing every item with hash; on ENOMEM it stays loaded, still
 * correct). Returns the bytes the bucket array grew by. */
size_t table_insert(struct table *t, uint64_t h, void *item, table_hash_fn hash);

/* Verifies every item is in reach of its home bucket with its tag, and the
 * overflow counts. Returns 0, or -1 with a reason in why (len bytes). */
int table_check(const struct table *t, table_hash_fn hash, char *why, size_t len);

#endif

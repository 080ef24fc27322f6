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

/* Starts a walk over the items of hash h. */
void table_walk_start(const struct table *t, uint64_t h, struct table_walk *w);

/* Returns the next item whose tag is h's (maybe of another hash), or NULL at
 * the end. */
void *table_walk_next(const struct table *t, struct table_walk *w);

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

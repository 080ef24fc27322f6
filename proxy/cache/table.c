/* table.c - the tagged bucket hash table of table.h. */
#include "proxy/cache/table.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(struct table_bucket) == 64, "a bucket is one cache line");

static struct table_bucket *table_alloc(size_t buckets)
{
    struct table_bucket *b = aligned_alloc(64, buckets * sizeof(*b));
    if (b != NULL)
        memset(b, 0, buckets * sizeof(*b));
    return b;
}

int table_init(struct table *t, size_t buckets)
{
    t->buckets = table_alloc(buckets);
    t->mask = buckets - 1;
    t->items = 0;
    return t->buckets != NULL ? 0 : -1;
}

void table_free(struct table *t)
{
    free(t->buckets);
    t->buckets = NULL;
}

size_t table_bytes(const struct table *t)
{
    return (t->mask + 1) * sizeof(struct table_bucket);
}

/* Frees slot `slot` of bucket `bucket`, whose item's home is `home`: the
 * buckets it passed count it no more. */
static void table_free_slot(struct table *t, size_t home, size_t bucket, unsigned slot)
{
    for (size_t b = home; b != bucket; b = (b + 1) & t->mask) {
        if (t->buckets[b].overflow != TABLE_OVERFLOW_MAX)
            t->buckets[b].overflow--;
    }
    t->buckets[bucket].tag[slot] = 0;
    t->buckets[bucket].item[slot] = NULL;
    t->items--;
}

void table_walk_remove(struct table *t, struct table_walk *w)
{
    table_free_slot(t, w->home, w->bucket, w->slot);
}

bool table_remove(struct table *t, uint64_t h, const void *item)
{
    struct table_walk w;
    table_walk_start(t, h, &w);
    for (const void *it; (it = table_walk_next(t, &w)) != NULL;) {
        if (it == item) {
            table_walk_remove(t, &w);
            return true;
        }
    }
    return false;
}

/* Stores item in the first free slot from h's home bucket on. */
static void table_place(struct table *t, uint64_t h, void *item)
{
    size_t b = h & t->mask;
    unsigned free_slots;
    while ((free_slots = table_match(&t->buckets[b], 0)) == 0) {
        if (t->buckets[b].overflow != TABLE_OVERFLOW_MAX)
            t->buckets[b].overflow++;
        b = (b + 1) & t->mask;
    }
    unsigned slot = (unsigned)__builtin_ctz(free_slots);
    t->buckets[b].tag[slot] = table_tag(h);
    t->buckets[b].item[slot] = item;
    t->items++;
}

/* Doubles the bucket array. Returns the bytes it grew by, 0 on ENOMEM. */
static size_t table_grow(struct table *t, table_hash_fn hash)
{
    size_t n = t->mask + 1;
    struct table_bucket *old = t->buckets;
    struct table_bucket *nb = table_alloc(2 * n);
    if (nb == NULL)
        return 0;
    t->buckets = nb;
    t->mask = 2 * n - 1;
    t->items = 0;
    for (size_t b = 0; b < n; b++) {
        for (unsigned s = 0; s < TABLE_SLOTS; s++) {
            if (old[b].tag[s] != 0)
                table_place(t, hash(old[b].item[s]), old[b].item[s]);
        }
    }
    free(old);
    return n * sizeof(*nb);
}

size_t table_insert(struct table *t, uint64_t h, void *item, table_hash_fn hash)
{
    size_t grown = 0;
    if (t->items >= TABLE_LOAD * (t->mask + 1))
        grown = table_grow(t, hash);
    table_place(t, h, item);
    return grown;
}

/* Counts, per bucket, the items that passed it; checks each is in reach
 * (every bucket it passed has an overflow) with its tag. */
static int table_check_items(const struct table *t, table_hash_fn hash, size_t *passed,
                             size_t *items, char *why, size_t len)
{
    for (size_t b = 0; b <= t->mask; b++) {
        for (unsigned s = 0; s < TABLE_SLOTS; s++) {
            if (t->buckets[b].tag[s] == 0)
                continue;
            uint64_t h = hash(t->buckets[b].item[s]);
            if (t->buckets[b].tag[s] != table_tag(h)) {
                snprintf(why, len, "table: bucket %zu slot %u: a wrong tag", b, s);
                return -1;
            }
            for (size_t p = h & t->mask; p != b; p = (p + 1) & t->mask)
                passed[p]++;
            ++*items;
        }
    }
    return 0;
}

int table_check(const struct table *t, table_hash_fn hash, char *why, size_t len)
{
    size_t items = 0, *passed = calloc(t->mask + 1, sizeof(*passed));
    if (passed == NULL) {
        snprintf(why, len, "table: out of memory to check");
        return -1;
    }
    int rc = table_check_items(t, hash, passed, &items, why, len);
    for (size_t b = 0; rc == 0 && b <= t->mask; b++) {
        size_t o = t->buckets[b].overflow;
        if (o != TABLE_OVERFLOW_MAX && o != passed[b]) {
            snprintf(why, len, "table: bucket %zu: overflow %zu, %zu items passed it", b, o,
                     passed[b]);
            rc = -1;
        }
    }
    if (rc == 0 && items != t->items) {
        snprintf(why, len, "table: %zu items counted, %zu stored", t->items, items);
        rc = -1;
    }
    free(passed);
    return rc;
}

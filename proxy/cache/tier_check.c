/* tier_check.c - tier_check(): the local tier's bookkeeping verified in
 * O(entries x candidates), for NEARCACHE_DEBUG=1 and the tests.
 */
#include "proxy/cache/tier_internal.h"

#include <stdarg.h>
#include <stdio.h>

static int tier_fail(char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes the reason to why. Returns -1. */
static int tier_fail(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return -1;
}

/* Whether e is among the table's candidates for its hash. */
static bool tier_in_table(const struct tier *t, const struct tier_entry *e)
{
    struct table_walk w;
    const void *it;
    table_walk_start(&t->table, tier_entry_hash(e), &w);
    while ((it = table_walk_next(&t->table, &w)) != NULL) {
        if (it == e)
            return true;
    }
    return false;
}

/* Whether e is where list s requires: marked with segment s and in the
 * table, or for the flushed list out of the table. */
static bool tier_placed(const struct tier *t, const struct tier_entry *e, int s)
{
    if (s == TIER_SEG_FLUSHED)
        return !tier_in_table(t, e);
    return e->seg == s && tier_in_table(t, e);
}

/* Walks list s: its links both ways, its entries' marks and places, its
 * count and bytes. Adds its entries to *n, stopping past the count (a cycle). */
static int tier_check_list(const struct tier *t, int s, size_t *n, char *why, size_t len)
{
    const struct tier_list *l = &t->seg[s];
    const struct tier_entry *prev = NULL;
    size_t bytes = 0, count = 0;
    for (const struct tier_entry *e = l->head; e != NULL; prev = e, e = e->next) {
        if (e->prev != prev)
            return tier_fail(why, len, "list %d: an entry is linked wrong", s);
        if (++*n > t->stats.entries + t->stats.flushed_entries)
            return tier_fail(why, len, "lists hold more than the %zu entries counted",
                             t->stats.entries + t->stats.flushed_entries);
        if (!tier_placed(t, e, s))
            return tier_fail(why, len, "list %d: an entry marked wrong, or wrong in the table", s);
        bytes += tier_cost(e);
        count++;
    }
    if (l->tail != prev)
        return tier_fail(why, len, "list %d: its tail is not its last entry", s);
    if (bytes != l->bytes || count != l->count)
        return tier_fail(why, len, "list %d: %zu bytes and %zu entries counted, %zu and %zu held",
                         s, l->bytes, l->count, bytes, count);
    return 0;
}

/* Whether no entry before e among the candidates of its hash has e's (db, key). */
static bool tier_first_of_key(const struct tier *t, const struct tier_entry *e)
{
    struct table_walk w;
    const struct tier_entry *o;
    table_walk_start(&t->table, tier_entry_hash(e), &w);
    while ((o = table_walk_next(&t->table, &w)) != NULL && o != e) {
        if (tier_same_key(o, e->db, e->data, e->klen))
            return false;
    }
    return true;
}

/* table_hash_fn */
static uint64_t tier_check_hash(const void *item)
{
    return tier_entry_hash(item);
}

/* Counts the distinct live keys in the table. */
static size_t tier_count_keys(const struct tier *t)
{
    size_t keys = 0;
    for (size_t b = 0; b <= t->table.mask; b++) {
        for (unsigned s = 0; s < TABLE_SLOTS; s++) {
            const struct tier_entry *e = t->table.buckets[b].item[s];
            keys += e != NULL && tier_first_of_key(t, e);
        }
    }
    return keys;
}

int tier_check(const struct tier *t, char *why, size_t len)
{
    size_t n = 0, bytes = t->stats.table_bytes;
    for (int s = 0; s < TIER_LISTS; s++) {
        if (tier_check_list(t, s, &n, why, len) < 0)
            return -1;
        bytes += t->seg[s].bytes;
    }
    size_t live = n - t->seg[TIER_SEG_FLUSHED].count;
    if (live != t->stats.entries || live != t->table.items)
        return tier_fail(why, len, "%zu entries counted, %zu in the segments, %zu in the table",
                         t->stats.entries, live, t->table.items);
    if (t->seg[TIER_SEG_FLUSHED].count != t->stats.flushed_entries)
        return tier_fail(why, len, "%zu flushed entries counted, %zu held",
                         t->stats.flushed_entries, t->seg[TIER_SEG_FLUSHED].count);
    if (bytes != t->stats.bytes)
        return tier_fail(why, len, "%zu bytes counted, %zu held", t->stats.bytes, bytes);
    if (bytes > t->stats.max_bytes)
        return tier_fail(why, len, "%zu bytes held, over the budget of %zu", bytes,
                         t->stats.max_bytes);
    if (table_check(&t->table, tier_check_hash, why, len) < 0)
        return -1;
    size_t keys = tier_count_keys(t);
    if (keys != t->stats.keys)
        return tier_fail(why, len, "%zu keys counted, %zu in the table", t->stats.keys, keys);
    return 0;
}

/* tests/unit/tier_flush.c - the local tier's flushes, which set the entries
 * aside at once and free them later (within tier_expire_some's budget, or
 * before any eviction), and keys that collide in its table (same bucket, same
 * tag). Part of test_tier, with tier.c.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "proxy/cache/tier.h"
#include "proxy/lib/hash.h"
#include "tier_util.h"

/* ---- flushes ------------------------------------------------------------------------ */

static void check_ok(const struct tier *t, const char *when)
{
    char why[160] = "";
    cr_assert_eq(tier_check(t, why, sizeof(why)), 0, "%s: %s", when, why);
}

/* Fills a tier of 256 KB with keys "<prefix>:i" until it evicts; returns how many. */
static int fill_until_full(struct tier *t, const char *prefix)
{
    char k[KEYBUF];
    int i = 0;
    for (uint64_t ev = tier_stats(t)->evictions; tier_stats(t)->evictions == ev; i++)
        cr_assert_eq(request(t, key_of(k, prefix, i)), 0);
    return i;
}

Test(tier, flush_all_is_at_once_and_a_refill_evicts_the_flushed_entries_first)
{
    struct tier *t = tier_create(256 * 1024, 4096);
    char k[KEYBUF];
    int n = fill_until_full(t, "old");
    size_t bytes = entry_bytes(t), held = tier_stats(t)->entries;
    uint64_t evictions = tier_stats(t)->evictions, invalidated = tier_stats(t)->invalidated_entries;
    tier_flush_all(t);
    const struct tier_stats *s = tier_stats(t);
    cr_assert_eq(s->entries, 0);
    cr_assert_eq(s->keys, 0);
    cr_assert_eq(s->flushed_entries, held);
    cr_assert_eq(entry_bytes(t), bytes, "flushed entries are counted until freed");
    cr_assert_eq(s->invalidated_entries, invalidated + held);
    check_ok(t, "after the flush");
    int seen = 0;
    for (int i = 0; i < n; i++) {
        cr_assert_null(get(t, 0, key_of(k, "old", i), "GET"), "a flushed entry was served");
        tier_variants(t, 0, k, strlen(k), 0, count_variant, &seen);
    }
    cr_assert_eq(seen, 0, "a flushed entry was listed");
    cr_assert_eq(tier_invalidate_key(t, 0, key_of(k, "old", n - 1), strlen(k)), 0);
    /* as many new keys as were held: they take the flushed entries' place */
    for (int i = 0; i < (int)held; i++)
        cr_assert_eq(request(t, key_of(k, "new", i)), 0);
    cr_assert_eq(s->evictions, evictions, "a live entry went before the flushed ones");
    cr_assert_lt(s->flushed_entries, held / 4);
    cr_assert_leq(s->bytes, s->max_bytes);
    for (int i = 0; i < (int)held; i++)
        cr_assert_not_null(get(t, 0, key_of(k, "new", i), "GET"));
    check_ok(t, "after the refill");
    tier_destroy(&t);
}

Test(tier, expire_some_frees_flushed_entries_within_its_budget)
{
    struct tier *t = tier_create(256 * 1024, 4096);
    fill_until_full(t, "old");
    cr_assert_eq(put_at(t, 0, "soon", "GET", "+v\r\n", 10, 0), 0);
    tier_flush_all(t);
    cr_assert_eq(put_at(t, 0, "ttl", "GET", "+v\r\n", 10, 0), 0);
    size_t flushed = tier_stats(t)->flushed_entries, bytes = tier_stats(t)->bytes;
    cr_assert_gt(flushed, 100);
    while (tier_stats(t)->flushed_entries > 16) {
        cr_assert_eq(tier_expire_some(t, 100, 16), 0, "the budget went to the sweep");
        cr_assert_eq(tier_stats(t)->flushed_entries, flushed - 16);
        cr_assert_lt(tier_stats(t)->bytes, bytes);
        flushed -= 16;
        bytes = tier_stats(t)->bytes;
        check_ok(t, "while reclaiming");
    }
    size_t n = 0;
    for (int round = 0; round < 100 && n == 0; round++)
        n += tier_expire_some(t, 100, 16);
    cr_assert_eq(n, 1, "the live expired entry is reclaimed once the flushed ones are");
    cr_assert_eq(tier_stats(t)->flushed_entries, 0);
    cr_assert_eq(tier_stats(t)->entries, 0);
    cr_assert_eq(tier_stats(t)->bytes, tier_stats(t)->table_bytes);
    check_ok(t, "after reclaiming");
    tier_destroy(&t);
}

Test(tier, many_flushes_never_bring_a_flushed_entry_back)
{
    struct tier *t = tier_create(MB, 4096);
    char reply[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(reply, sizeof(reply), "+%d\r\n", i);
        cr_assert_eq(put(t, 0, "k", "GET", reply), 0);
        cr_assert_eq(put(t, 0, "k", "HGET\0f", reply), 0);
        cr_assert_str_eq(get(t, 0, "k", "GET"), reply);
        tier_flush_all(t); /* nothing reclaimed in between */
        cr_assert_null(get(t, 0, "k", "GET"), "flush %d: a flushed entry came back", i);
        cr_assert_null(get(t, 0, "k", "HGET\0f"));
        cr_assert_eq(tier_stats(t)->flushed_entries, 2 * (size_t)(i + 1));
        if (i % 50 == 0)
            check_ok(t, "between flushes");
    }
    check_ok(t, "after the flushes");
    tier_destroy(&t);
}

Test(tier, flush_db_keeps_the_flushed_entries_for_reclaim)
{
    struct tier *t = tier_create(MB, 4096);
    cr_assert_eq(put(t, 0, "a", "GET", "+a\r\n"), 0);
    cr_assert_eq(put(t, 1, "b", "GET", "+b\r\n"), 0);
    tier_flush_all(t);
    cr_assert_eq(put(t, 0, "c", "GET", "+c\r\n"), 0);
    cr_assert_eq(put(t, 1, "d", "GET", "+d\r\n"), 0);
    tier_flush_db(t, 0);
    cr_assert_null(get(t, 0, "c", "GET"));
    cr_assert_str_eq(get(t, 1, "d", "GET"), "+d\r\n");
    cr_assert_eq(tier_stats(t)->entries, 1);
    cr_assert_eq(tier_stats(t)->flushed_entries, 2);
    check_ok(t, "after flush_db");
    tier_destroy(&t);
}

/* ---- tag collisions ------------------------------------------------------------------ */

/* Finds n keys "c:<i>" whose hashes in db 0 share the initial table's home
 * bucket (8 buckets) and their tag (top byte): the tier's hash of (0, key)
 * is the key's MurmurHash64A. */
static void colliding_keys(char keys[][KEYBUF], int n)
{
    uint64_t first = 0;
    int found = 0;
    for (int i = 0; found < n; i++) {
        char k[KEYBUF];
        key_of(k, "c", i);
        uint64_t h = hash_murmur64a(k, strlen(k), 0);
        if (found == 0)
            first = h;
        if ((h & 7) == (first & 7) && h >> 56 == first >> 56)
            snprintf(keys[found++], KEYBUF, "%s", k);
    }
}

Test(tier, keys_that_share_a_bucket_and_a_tag_stay_apart)
{
    struct tier *t = tier_create(MB, 4096);
    char keys[10][KEYBUF], reply[32];
    colliding_keys(keys, 10); /* more than a bucket holds: 3 overflow */
    for (int i = 0; i < 10; i++) {
        snprintf(reply, sizeof(reply), "+%d\r\n", i);
        cr_assert_eq(put(t, 0, keys[i], "GET", reply), 0);
        cr_assert_eq(put(t, 0, keys[i], "HGET\0f", reply), 0);
    }
    cr_assert_eq(tier_stats(t)->keys, 10);
    check_ok(t, "after the puts");
    for (int i = 0; i < 10; i++) {
        snprintf(reply, sizeof(reply), "+%d\r\n", i);
        cr_assert_str_eq(get(t, 0, keys[i], "GET"), reply);
        cr_assert_null(get(t, 1, keys[i], "GET"));
    }
    cr_assert_eq(tier_invalidate_key(t, 0, keys[3], strlen(keys[3])), 2);
    cr_assert_null(get(t, 0, keys[3], "GET"));
    struct listed l = {0};
    cr_assert_eq(tier_variants(t, 0, keys[4], strlen(keys[4]), 0, list_variant, &l), 2);
    cr_assert_eq(put(t, 0, keys[9], "GET", "+new\r\n"), 0);
    cr_assert_str_eq(get(t, 0, keys[9], "GET"), "+new\r\n");
    cr_assert_str_eq(get(t, 0, keys[8], "GET"), "+8\r\n");
    cr_assert_eq(tier_stats(t)->keys, 9);
    cr_assert_eq(tier_stats(t)->entries, 18);
    check_ok(t, "after the invalidation");
    tier_destroy(&t);
}

/* tests/unit/tier.c - the local tier: hits and replacement, W-TinyLFU
 * eviction order (scan resistance, LRU window, lazy promotion), byte
 * accounting, entry size limit, expiry, invalidation of a key's variants, db
 * isolation, the fill race rule, binary-safe identities, overhead per entry,
 * a randomized run against a reference model, and the self-check
 * (tier_check). Flushes and table collisions: tier_flush.c.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/cache/tier.h"
#include "tier_util.h"

#include "tests/unit/leaks.h"

TestSuite(tier, .fini = check_leaks);

/* ---- basics ------------------------------------------------------------------ */

Test(tier, get_put_replace_and_stats)
{
    struct tier *t = tier_create(MB, 4096);
    cr_assert_not_null(t);
    cr_assert_null(get(t, 0, "k", "GET"));
    cr_assert_eq(put(t, 0, "k", "GET", "$1\r\na\r\n"), 0);
    cr_assert_str_eq(get(t, 0, "k", "GET"), "$1\r\na\r\n");
    cr_assert_eq(put(t, 0, "k", "GET", "$2\r\nbb\r\n"), 0);
    cr_assert_str_eq(get(t, 0, "k", "GET"), "$2\r\nbb\r\n");
    const struct tier_stats *s = tier_stats(t);
    cr_assert_eq(s->hits, 2);
    cr_assert_eq(s->misses, 1);
    cr_assert_eq(s->fills, 2);
    cr_assert_eq(s->entries, 1);
    cr_assert_eq(s->keys, 1);
    cr_assert_eq(entry_bytes(t), tier_entry_cost(1, 3, 8));
    tier_destroy(&t);
    cr_assert_null(t);
    tier_destroy(&t);
}

/* Variants of every length up to 40 that differ from a cached one in one
 * byte, wherever it is, are other entries. */
Test(tier, variants_differing_in_any_byte_are_apart)
{
    struct tier *t = tier_create(1 << 20, 4096);
    char v[41], w[41];
    for (size_t n = 1; n <= 40; n++) {
        memset(v, 'a', n);
        v[n] = '\0';
        cr_assert_eq(put(t, 0, "k", v, "r"), 0);
        for (size_t p = 0; p < n; p++) {
            memcpy(w, v, n + 1);
            w[p] = 'b';
            cr_assert_null(get(t, 0, "k", w), "length %zu, byte %zu", n, p);
        }
        cr_assert_str_eq(get(t, 0, "k", v), "r");
    }
    tier_destroy(&t);
}

Test(tier, create_refuses_a_budget_smaller_than_its_tables)
{
    cr_assert_null(tier_create(1024, 100));
    struct tier *t = tier_create(64 * 1024, 100);
    cr_assert_not_null(t);
    cr_assert_leq(tier_stats(t)->bytes, 64 * 1024);
    cr_assert_eq(tier_stats(t)->bytes, tier_stats(t)->table_bytes);
    tier_destroy(&t);
}

/* ---- eviction order ------------------------------------------------------------ */

Test(tier, scan_of_one_hit_keys_does_not_evict_a_frequent_key)
{
    struct tier *t = tier_create(64 * 1024, 4096);
    char k[KEYBUF];
    cr_assert_eq(request(t, "hot"), 0);
    for (int i = 0; i < 8; i++)
        cr_assert_not_null(get(t, 0, "hot", "GET"));
    for (int i = 0; i < 5000; i++)
        request(t, key_of(k, "scan", i));
    cr_assert_gt(tier_stats(t)->evictions, 4000);
    cr_assert_not_null(get(t, 0, "hot", "GET"), "a one-hit scan evicted the frequent key");
    tier_destroy(&t);
}

/* Fills the main space with keys requested three times, caches "older" then
 * "newer" (requested once), hits "older" (with walk, only lists its variants,
 * which must leave its place alone), caches nfresh one-hit keys, and reports
 * which of the two is still resident. */
static void recency_run(int nfresh, bool walk, bool *older, bool *newer)
{
    struct tier *t = tier_create(64 * 1024, 4096);
    char k[KEYBUF];
    for (int i = 0; tier_stats(t)->evictions == 0; i++) {
        request(t, key_of(k, "base", i));
        get(t, 0, k, "GET");
        get(t, 0, k, "GET");
        cr_assert_lt(i, 10000);
    }
    /* The base keys still in the window were hit: one-hit keys pushed through
     * it use up their second round, so that "older" finds none of them marked. */
    for (int i = 0; i < 8; i++)
        request(t, key_of(k, "pad", i));
    cr_assert_eq(request(t, "older"), 0);
    cr_assert_eq(request(t, "newer"), 0);
    int seen = 0;
    for (int i = 0; walk && i < 8; i++)
        tier_variants(t, 0, "older", 5, 0, count_variant, &seen);
    cr_assert_eq(seen, walk ? 8 : 0);
    if (!walk)
        cr_assert_not_null(get(t, 0, "older", "GET")); /* now the more recent of the two */
    for (int i = 0; i < nfresh; i++)
        request(t, key_of(k, "fresh", i));
    *newer = get(t, 0, "newer", "GET") != NULL;
    *older = get(t, 0, "older", "GET") != NULL;
    tier_destroy(&t);
}

Test(tier, among_equally_rare_keys_the_least_recently_used_goes_first)
{
    for (int n = 0; n < 100; n++) {
        bool older, newer;
        recency_run(n, false, &older, &newer);
        if (older && newer)
            continue;
        cr_assert_not(newer, "the more recently used key went first (after %d)", n);
        cr_assert(older, "both went at once (after %d)", n);
        return;
    }
    cr_assert_fail("100 one-hit keys evicted neither");
}

Test(tier, listing_variants_does_not_count_as_a_use)
{
    for (int n = 0; n < 100; n++) {
        bool older, newer;
        recency_run(n, true, &older, &newer);
        if (older && newer)
            continue;
        cr_assert_not(older, "listing its variants made a key recently used (after %d)", n);
        cr_assert(newer, "both went at once (after %d)", n);
        return;
    }
    cr_assert_fail("100 one-hit keys evicted neither");
}

Test(tier, a_more_frequent_candidate_displaces_a_rare_resident)
{
    struct tier *t = tier_create(64 * 1024, 4096);
    char k[KEYBUF];
    for (int i = 0; tier_stats(t)->evictions == 0; i++)
        request(t, key_of(k, "base", i));
    for (int i = 0; i < 6; i++)
        get(t, 0, "popular", "GET"); /* requested often before it is ever cached */
    cr_assert_eq(request(t, "popular"), 0);
    for (int i = 0; i < 200; i++)
        request(t, key_of(k, "fresh", i)); /* pushes it out of the window */
    cr_assert_not_null(get(t, 0, "popular", "GET"), "the filter rejected a frequent key");
    tier_destroy(&t);
}

Test(tier, a_hit_in_probation_outlasts_its_unhit_neighbours)
{
    struct tier *t = tier_create(64 * 1024, 4096);
    char k[KEYBUF];
    int seen = 0;
    for (int i = 0; tier_stats(t)->evictions == 0; i++)
        request(t, key_of(k, "base", i)); /* main full of keys seen once, base:0 its LRU */
    cr_assert_not_null(get(t, 0, "base:0", "GET")); /* promoted, lazily */
    for (int i = 0; i < 60; i++) {
        key_of(k, "hot", i);
        for (int n = 0; n < 3; n++)
            get(t, 0, k, "GET"); /* more frequent than any resident: evicts */
        request(t, k);
    }
    cr_assert_eq(tier_variants(t, 0, "base:1", 6, 0, count_variant, &seen), 0);
    cr_assert_eq(tier_variants(t, 0, "base:0", 6, 0, count_variant, &seen), 1,
                 "a hit entry went with the unhit ones");
    tier_destroy(&t);
}

Test(tier, listing_variants_does_not_count_as_a_request)
{
    struct tier *t = tier_create(64 * 1024, 4096);
    char k[KEYBUF];
    int seen = 0;
    for (int i = 0; tier_stats(t)->evictions == 0; i++)
        request(t, key_of(k, "base", i));
    for (int i = 0; i < 6; i++)
        tier_variants(t, 0, "popular", 7, 0, count_variant, &seen);
    cr_assert_eq(seen, 0);
    cr_assert_eq(request(t, "popular"), 0);
    for (int i = 0; i < 6; i++)
        tier_variants(t, 0, "popular", 7, 0, count_variant, &seen);
    cr_assert_eq(seen, 6);
    for (int i = 0; i < 200; i++)
        request(t, key_of(k, "fresh", i)); /* pushes it out of the window */
    cr_assert_null(get(t, 0, "popular", "GET"), "listing its variants made a key frequent");
    tier_destroy(&t);
}

/* ---- byte accounting ------------------------------------------------------------- */

Test(tier, bytes_are_the_sum_of_entry_costs_and_return_exactly)
{
    struct tier *t = tier_create(4 * MB, 4096);
    char k[KEYBUF];
    size_t sum = 0;
    for (int i = 0; i < 500; i++) {
        const char *variant = i % 3 == 0 ? "GET" : "HGET\0f";
        size_t vlen = i % 3 == 0 ? 3 : 6;
        key_of(k, "acct", i);
        char reply[64];
        int rlen = snprintf(reply, sizeof(reply), "$%d\r\n%0*d\r\n", i % 20, i % 20, 0);
        cr_assert_eq(
            tier_put(t, 0, k, strlen(k), variant, vlen, reply, (size_t)rlen, 0, tier_seq(t), 0), 0);
        sum += tier_entry_cost(strlen(k), vlen, (size_t)rlen);
        cr_assert_eq(entry_bytes(t), sum);
    }
    size_t before = tier_stats(t)->bytes;
    cr_assert_eq(put(t, 0, "x", "GET", "+OK\r\n"), 0);
    cr_assert_eq(put(t, 0, "x",
                     "GETRANGE\0"
                     "0\0"
                     "3",
                     "+OK\r\n"),
                 0);
    cr_assert_eq(tier_stats(t)->bytes,
                 before + tier_entry_cost(1, 3, 5) + tier_entry_cost(1, 8, 5));
    cr_assert_eq(tier_invalidate_key(t, 0, "x", 1), 2);
    cr_assert_eq(tier_stats(t)->bytes, before);
    cr_assert_eq(put(t, 3, "y", "GET", "+OK\r\n"), 0);
    tier_flush_db(t, 3);
    cr_assert_eq(tier_stats(t)->bytes, before);
    size_t entries = tier_stats(t)->entries, held = entry_bytes(t);
    tier_flush_all(t);
    cr_assert_eq(entry_bytes(t), held, "flushed entries are counted until freed");
    cr_assert_eq(tier_stats(t)->entries, 0);
    cr_assert_eq(tier_stats(t)->keys, 0);
    cr_assert_eq(tier_stats(t)->flushed_entries, entries);
    cr_assert_eq(tier_expire_some(t, 0, SIZE_MAX), 0, "flushed entries are not expired ones");
    cr_assert_eq(tier_stats(t)->flushed_entries, 0);
    cr_assert_eq(tier_stats(t)->bytes, tier_stats(t)->table_bytes);
    cr_assert_eq(put(t, 0, "z", "GET", "+OK\r\n"), 0);
    cr_assert_str_eq(get(t, 0, "z", "GET"), "+OK\r\n");
    tier_destroy(&t);
}

Test(tier, eviction_keeps_bytes_within_max_after_every_put)
{
    size_t max = 96 * 1024;
    struct tier *t = tier_create(max, 8192);
    char k[KEYBUF];
    static char reply[8192];
    memset(reply, 'r', sizeof(reply));
    for (int i = 0; i < 3000; i++) {
        key_of(k, "fill", i);
        size_t rlen = (size_t)(i * 7919) % sizeof(reply);
        tier_put(t, 0, k, strlen(k), "GET", 3, reply, rlen, 0, tier_seq(t), 0);
        cr_assert_leq(tier_stats(t)->bytes, max);
    }
    cr_assert_gt(tier_stats(t)->evictions, 0);
    tier_destroy(&t);
}

/* ---- size limit and expiry --------------------------------------------------------- */

Test(tier, replies_over_max_entry_bytes_are_not_admitted)
{
    struct tier *t = tier_create(MB, 8);
    cr_assert_eq(put(t, 0, "k", "GET", "12345678"), 0);
    cr_assert_eq(put(t, 0, "k", "GET", "123456789"), TIER_PUT_TOO_BIG);
    cr_assert_null(get(t, 0, "k", "GET"), "the superseded reply stayed");
    cr_assert_eq(tier_stats(t)->entries, 0);
    cr_assert_eq(tier_stats(t)->fills_rejected, 1);
    tier_destroy(&t);
}

Test(tier, expired_entries_are_never_returned)
{
    struct tier *t = tier_create(MB, 4096);
    cr_assert_eq(put_at(t, 0, "k", "GET", "+a\r\n", 100, 10), 0);
    cr_assert_not_null(get_at(t, 0, "k", "GET", 99));
    cr_assert_null(get_at(t, 0, "k", "GET", 100));
    cr_assert_eq(tier_stats(t)->expirations, 1);
    cr_assert_eq(tier_stats(t)->entries, 0);
    cr_assert_eq(put_at(t, 0, "k", "GET", "+a\r\n", 50, 50), TIER_PUT_REJECTED);
    cr_assert_null(get_at(t, 0, "k", "GET", 0));
    tier_destroy(&t);
}

Test(tier, expire_some_reclaims_incrementally)
{
    struct tier *t = tier_create(4 * MB, 4096);
    char k[KEYBUF];
    for (int i = 0; i < 300; i++)
        cr_assert_eq(put_at(t, 0, key_of(k, "e", i), "GET", "+v\r\n", i % 2 ? 1000 : 0, 0), 0);
    cr_assert_eq(tier_expire_some(t, 999, 100000), 0);
    size_t reclaimed = 0;
    for (int round = 0; round < 1000 && reclaimed < 150; round++) {
        size_t n = tier_expire_some(t, 1000, 16);
        cr_assert_leq(n, 16);
        reclaimed += n;
    }
    cr_assert_eq(reclaimed, 150);
    cr_assert_eq(tier_stats(t)->entries, 150);
    cr_assert_eq(tier_stats(t)->expirations, 150);
    size_t sum = 0;
    for (int i = 0; i < 300; i += 2)
        sum += tier_entry_cost(strlen(key_of(k, "e", i)), 3, 4);
    cr_assert_eq(entry_bytes(t), sum);
    for (int i = 0; i < 300; i++)
        cr_assert_eq(get_at(t, 0, key_of(k, "e", i), "GET", 1000) != NULL, i % 2 == 0);
    tier_destroy(&t);
}

/* ---- invalidation, databases, binary identities --------------------------------------- */

Test(tier, invalidate_key_drops_every_variant_of_that_key_only)
{
    struct tier *t = tier_create(MB, 4096);
    static const struct {
        const char *v;
        size_t len;
    } variants[] = {{"GET", 3},
                    {"HGET\0f1", 7},
                    {"LRANGE\0"
                     "0\0"
                     "9",
                     10}};
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(tier_put(t, 0, "k", 1, variants[i].v, variants[i].len, "+1\r\n", 4, 0, 0, 0),
                     0);
        cr_assert_eq(tier_put(t, 1, "k", 1, variants[i].v, variants[i].len, "+2\r\n", 4, 0, 0, 0),
                     0);
    }
    cr_assert_eq(put(t, 0, "k2", "GET", "+3\r\n"), 0);
    cr_assert_eq(tier_stats(t)->keys, 3);
    cr_assert_eq(tier_invalidate_key(t, 0, "k", 1), 3);
    cr_assert_eq(tier_invalidate_key(t, 0, "k", 1), 0);
    struct tier_view v;
    for (size_t i = 0; i < 3; i++) {
        cr_assert_not(tier_get(t, 0, "k", 1, variants[i].v, variants[i].len, 0, &v));
        cr_assert(tier_get(t, 1, "k", 1, variants[i].v, variants[i].len, 0, &v));
    }
    cr_assert_str_eq(get(t, 0, "k2", "GET"), "+3\r\n");
    const struct tier_stats *s = tier_stats(t);
    cr_assert_eq(s->keys, 2);
    cr_assert_eq(s->entries, 4);
    cr_assert_eq(s->invalidated_keys, 1);
    cr_assert_eq(s->invalidated_entries, 3);
    tier_destroy(&t);
}

Test(tier, databases_are_isolated)
{
    struct tier *t = tier_create(MB, 4096);
    cr_assert_eq(put(t, 0, "k", "GET", "+zero\r\n"), 0);
    cr_assert_eq(put(t, 1, "k", "GET", "+one\r\n"), 0);
    cr_assert_null(get(t, 2, "k", "GET"));
    cr_assert_str_eq(get(t, 0, "k", "GET"), "+zero\r\n");
    cr_assert_str_eq(get(t, 1, "k", "GET"), "+one\r\n");
    tier_flush_db(t, 0);
    cr_assert_null(get(t, 0, "k", "GET"));
    cr_assert_str_eq(get(t, 1, "k", "GET"), "+one\r\n");
    cr_assert_eq(put(t, -1, "k", "GET", "+x\r\n"), TIER_PUT_INVALID);
    cr_assert_eq(put(t, 65536, "k", "GET", "+x\r\n"), TIER_PUT_INVALID);
    cr_assert_null(get(t, 65536, "k", "GET"));
    tier_destroy(&t);
}

Test(tier, keys_and_variants_are_binary_safe)
{
    struct tier *t = tier_create(MB, 4096);
    static const struct {
        const char *key;
        size_t klen;
        const char *variant;
        size_t vlen;
        const char *reply;
    } cases[] = {
        {"a\0b", 3, "GET", 3, "+1\r\n"},      {"a\0c", 3, "GET", 3, "+2\r\n"},
        {"a", 1, "GET", 3, "+3\r\n"},         {"a\0", 2, "GET", 3, "+4\r\n"},
        {"a\0b", 3, "HGET\0f1", 7, "+5\r\n"}, {"a\0b", 3, "HGET\0f2", 7, "+6\r\n"},
        {"a\0b", 3, "HGET\0f", 6, "+7\r\n"},  {"", 0, "GET", 3, "+8\r\n"},
    };
    size_t n = sizeof(cases) / sizeof(cases[0]);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(tier_put(t, 0, cases[i].key, cases[i].klen, cases[i].variant, cases[i].vlen,
                              cases[i].reply, 4, 0, 0, 0),
                     0);
    cr_assert_eq(tier_stats(t)->entries, n);
    cr_assert_eq(tier_stats(t)->keys, 5);
    for (size_t i = 0; i < n; i++) {
        struct tier_view v;
        cr_assert(
            tier_get(t, 0, cases[i].key, cases[i].klen, cases[i].variant, cases[i].vlen, 0, &v));
        cr_assert_eq(v.len, 4);
        cr_assert_eq(memcmp(v.reply, cases[i].reply, 4), 0, "case %zu", i);
    }
    cr_assert_eq(tier_invalidate_key(t, 0, "a\0b", 3), 4);
    cr_assert_eq(tier_stats(t)->entries, n - 4);
    tier_destroy(&t);
}

Test(tier, variants_lists_the_live_variants_of_one_key_and_changes_nothing)
{
    struct tier *t = tier_create(MB, 4096);
    cr_assert_eq(tier_put(t, 0, "a\0b", 3, "GET", 3, "+1", 2, 0, 0, 0), 0);
    cr_assert_eq(tier_put(t, 0, "a\0b", 3, "HGET\0f1", 7, "+2", 2, 50, 0, 0), 0);
    cr_assert_eq(tier_put(t, 0, "a\0b", 3, "HGET\0f2", 7, "+3", 2, 5, 0, 0), 0); /* expires */
    cr_assert_eq(tier_put(t, 1, "a\0b", 3, "GET", 3, "+4", 2, 0, 0, 0), 0);      /* other db */
    cr_assert_eq(tier_put(t, 0, "a\0c", 3, "GET", 3, "+5", 2, 0, 0, 0), 0);      /* other key */
    cr_assert_eq(tier_put(t, 0, "a", 1, "GET", 3, "+6", 2, 0, 0, 0), 0);         /* its prefix */
    struct tier_stats before = *tier_stats(t);
    struct listed l = {0};
    cr_assert_eq(tier_variants(t, 0, "a\0b", 3, 10, list_variant, &l), 2);
    cr_assert_eq(l.n, 2);
    cr_assert(listed_has(&l, "GET=+1@0"));
    cr_assert(listed_has(&l, "HGET|f1=+2@50"));
    l.n = 0;
    cr_assert_eq(tier_variants(t, 1, "a\0b", 3, 10, list_variant, &l), 1);
    cr_assert(listed_has(&l, "GET=+4@0"));
    l.n = 0;
    cr_assert_eq(tier_variants(t, 0, "a\0", 2, 10, list_variant, &l), 0);
    cr_assert_eq(tier_variants(t, 2, "a\0b", 3, 10, list_variant, &l), 0);
    cr_assert_eq(tier_variants(t, -1, "a\0b", 3, 10, list_variant, &l), 0);
    cr_assert_eq(l.n, 0);
    const struct tier_stats *after = tier_stats(t);
    cr_assert_eq(memcmp(&before, after, sizeof(before)), 0, "listing changed the counters");
    cr_assert_eq(after->entries, 6, "the expired variant was reclaimed by a listing");
    cr_assert_eq(tier_check(t, (char[128]){0}, 128), 0);
    tier_destroy(&t);
}

/* ---- the fill race --------------------------------------------------------------------- */

Test(tier, fill_sent_before_an_invalidation_of_its_key_is_refused)
{
    struct tier *t = tier_create(4 * MB, 4096);
    char k[KEYBUF];
    uint64_t sent = tier_seq(t);
    cr_assert_eq(tier_invalidate_key(t, 0, "k", 1), 0); /* not resident: still remembered */
    cr_assert_eq(tier_put(t, 0, "k", 1, "GET", 3, "+old\r\n", 6, 0, sent, 0), TIER_PUT_STALE);
    cr_assert_null(get(t, 0, "k", "GET"));
    cr_assert_eq(tier_stats(t)->fills_refused, 1);
    cr_assert_eq(tier_put(t, 0, "k", 1, "GET", 3, "+new\r\n", 6, 0, tier_seq(t), 0), 0);
    /* other keys mostly fall in other buckets: those fills stand */
    int accepted = 0;
    for (int i = 0; i < 100; i++) {
        key_of(k, "other", i);
        accepted += tier_put(t, 0, k, strlen(k), "GET", 3, "+v\r\n", 4, 0, sent, 0) == 0;
    }
    cr_assert_geq(accepted, 90);
    tier_destroy(&t);
}

Test(tier, flushes_refuse_every_older_fill)
{
    static void (*const flushes[])(struct tier *) = {tier_flush_all, NULL};
    for (int f = 0; f < 2; f++) {
        struct tier *t = tier_create(MB, 4096);
        char k[KEYBUF];
        uint64_t sent = tier_seq(t);
        if (flushes[f] != NULL)
            flushes[f](t);
        else
            tier_flush_db(t, 5);
        for (int i = 0; i < 50; i++) {
            key_of(k, "k", i);
            cr_assert_eq(tier_put(t, i % 2, k, strlen(k), "GET", 3, "+v\r\n", 4, 0, sent, 0),
                         TIER_PUT_STALE);
        }
        cr_assert_eq(tier_stats(t)->entries, 0);
        cr_assert_eq(put(t, 0, "k:0", "GET", "+v\r\n"), 0);
        tier_destroy(&t);
    }
}

/* ---- overhead ------------------------------------------------------------------------------ */

Test(tier, metadata_overhead_is_at_most_64_bytes_per_entry)
{
    cr_assert_leq(tier_overhead_per_entry(), 64);
    cr_assert_leq(tier_entry_cost(10, 3, 20) - 33 + 2 * sizeof(void *), tier_overhead_per_entry());
    /* measured: after growth the table holds at least one slot per two entries */
    struct tier *t = tier_create(64 * MB, 4096);
    char k[KEYBUF];
    size_t raw = 0;
    for (int i = 0; i < 20000; i++) {
        key_of(k, "o", i);
        cr_assert_eq(tier_put(t, 0, k, strlen(k), "GET", 3, "+v\r\n", 4, 0, 0, 0), 0);
        raw += strlen(k) + 3 + 4;
    }
    const struct tier_stats *s = tier_stats(t);
    /* 20000 entries -> 4096 buckets of 64 bytes (at most 6 entries per bucket) */
    size_t empty = tier_stats(t)->table_bytes - 4096 * 64;
    cr_assert_leq((s->bytes - empty - raw) / s->entries, 64);
    tier_destroy(&t);
}

/* ---- randomized model ---------------------------------------------------------------------- */

#define M_DBS      2
#define M_KEYS     40
#define M_VARIANTS 3
#define M_SLOTS    (M_DBS * M_KEYS * M_VARIANTS)

#define M_INFLIGHT 4

/* What the tier may return for one identity: nothing, or exactly this. */
struct model_slot {
    bool valid;
    uint64_t version;
    uint64_t expire_at_ms;
};

/* A read sent upstream whose reply has not come back yet. */
struct model_read {
    int db, key, variant;
    uint64_t since;   /* tier_seq() when sent */
    bool invalidated; /* its key was invalidated or flushed since */
};

struct model {
    struct model_slot slot[M_SLOTS];
    struct model_read inflight[M_INFLIGHT]; /* oldest first */
    int ninflight;
    uint64_t now;
    uint64_t version;
};

static int slot_of(int db, int key, int variant)
{
    return (db * M_KEYS + key) * M_VARIANTS + variant;
}

static int variant_of(char *buf, int variant)
{
    return snprintf(buf, 8, "V%c%d", '\0', variant);
}

static int reply_of(char *buf, uint64_t version)
{
    return snprintf(buf, 64, "$%d\r\n%0*llu\r\n", 40, 40, (unsigned long long)version);
}

/* Drops a key's variants in the model; db or key -1 means all. */
static void model_drop(struct model *m, int db, int key)
{
    for (int i = 0; i < M_SLOTS; i++) {
        int d = i / (M_KEYS * M_VARIANTS), k = i / M_VARIANTS % M_KEYS;
        if ((db < 0 || d == db) && (key < 0 || k == key))
            m->slot[i].valid = false;
    }
    for (int r = 0; r < m->ninflight; r++) {
        struct model_read *rd = &m->inflight[r];
        if ((db < 0 || rd->db == db || key < 0) && (key < 0 || rd->key == key))
            rd->invalidated = true; /* a flush of any db refuses every older fill */
    }
}

static void model_check_get(struct tier *t, struct model *m, int db, int key, int variant)
{
    char k[KEYBUF], var[8], expect[64];
    key_of(k, "m", key);
    int vlen = variant_of(var, variant);
    struct tier_view v;
    if (!tier_get(t, db, k, strlen(k), var, (size_t)vlen, m->now, &v))
        return;
    const struct model_slot *s = &m->slot[slot_of(db, key, variant)];
    cr_assert(s->valid, "returned an invalidated or never stored entry");
    cr_assert(s->expire_at_ms == 0 || s->expire_at_ms > m->now, "returned an expired entry");
    int n = reply_of(expect, s->version);
    cr_assert_eq(v.len, (size_t)n);
    cr_assert_eq(memcmp(v.reply, expect, (size_t)n), 0, "returned a superseded reply");
}

/* The oldest read in flight comes back: a fill with the seq it was sent at. */
static void model_fill(struct tier *t, struct model *m)
{
    struct model_read rd = m->inflight[0];
    memmove(&m->inflight[0], &m->inflight[1], sizeof(rd) * (size_t)--m->ninflight);
    int i = slot_of(rd.db, rd.key, rd.variant);
    char k[KEYBUF], var[8];
    static char reply[512];
    key_of(k, "m", rd.key);
    int vlen = variant_of(var, rd.variant);
    uint64_t version = ++m->version;
    size_t len = (size_t)reply_of(reply, version) + (rand() % 5 == 0 ? 300 : 0); /* over limit */
    uint64_t expire = rand() % 2 ? 0 : m->now + 1 + (uint64_t)(rand() % 500);
    int r =
        tier_put(t, rd.db, k, strlen(k), var, (size_t)vlen, reply, len, expire, rd.since, m->now);
    if (rd.invalidated)
        cr_assert_eq(r, TIER_PUT_STALE, "a fill older than an invalidation was stored");
    if (r == 0)
        m->slot[i] = (struct model_slot){true, version, expire};
    else if (r != TIER_PUT_STALE)
        m->slot[i].valid = false;
}

static void model_step(struct tier *t, struct model *m)
{
    int db = rand() % M_DBS, key = rand() % M_KEYS, variant = rand() % M_VARIANTS;
    int op = rand() % 1000;
    char k[KEYBUF];
    m->now += (uint64_t)(rand() % 3);
    if (op < 450) {
        model_check_get(t, m, db, key, variant);
    } else if (op < 800) {
        if (m->ninflight < M_INFLIGHT && op < 650)
            m->inflight[m->ninflight++] = (struct model_read){db, key, variant, tier_seq(t), false};
        else if (m->ninflight > 0)
            model_fill(t, m);
    } else if (op < 830) {
        key_of(k, "m", key);
        tier_invalidate_key(t, db, k, strlen(k));
        model_drop(m, db, key);
    } else if (op < 995) {
        tier_expire_some(t, m->now, 8);
    } else if (op < 997) {
        tier_flush_all(t);
        model_drop(m, -1, -1);
    } else {
        tier_flush_db(t, db);
        model_drop(m, db, -1);
    }
}

Test(tier, randomized_operations_agree_with_the_model)
{
    size_t max = 8 * 1024;
    uint64_t evictions = 0;
    for (unsigned seed = 1; seed <= 20; seed++) {
        srand(seed);
        struct tier *t = tier_create(max, 200);
        cr_assert_not_null(t);
        struct model m;
        memset(&m, 0, sizeof(m));
        for (int step = 0; step < 5000; step++) {
            char why[160];
            model_step(t, &m);
            const struct tier_stats *s = tier_stats(t);
            cr_assert_leq(s->bytes, max, "seed %u step %d", seed, step);
            cr_assert_leq(s->keys, s->entries);
            cr_assert_eq(tier_check(t, why, sizeof(why)), 0, "seed %u step %d: %s", seed, step,
                         why);
        }
        evictions += tier_stats(t)->evictions;
        cr_assert_gt(tier_stats(t)->hits, 0, "seed %u never hit: the test checks nothing", seed);
        tier_destroy(&t);
    }
    cr_assert_gt(evictions, 0, "no eviction: the bound was never exercised");
}

/* ---- self-check ---------------------------------------------------------------------------- */

/* A tier of many keys, some with several variants, some evicted, some
 * invalidated, some hit (promoted to protected). */
static struct tier *busy_tier(void)
{
    struct tier *t = tier_create(MB, MB);
    char k[KEYBUF];
    cr_assert_not_null(t);
    for (int i = 0; i < 30000; i++) {
        request(t, key_of(k, "busy", i % 10000));
        if (i % 7 == 0)
            put(t, 1, key_of(k, "busy", i % 300), "HGET\0f", "$1\r\nv\r\n");
        if (i % 11 == 0)
            tier_invalidate_key(t, 0, k, strlen(k));
    }
    cr_assert_gt(tier_stats(t)->evictions, 0, "the budget was never reached");
    cr_assert_gt(tier_stats(t)->keys, 100);
    return t;
}

Test(tier, check_passes_on_a_busy_tier)
{
    char why[160] = "";
    struct tier *t = busy_tier();
    cr_expect_eq(tier_check(t, why, sizeof(why)), 0, "%s", why);
    tier_flush_db(t, 1);
    cr_expect_eq(tier_check(t, why, sizeof(why)), 0, "after flush_db: %s", why);
    tier_flush_all(t);
    cr_expect_eq(tier_check(t, why, sizeof(why)), 0, "after flush_all: %s", why);
    tier_destroy(&t);
}

/* tier_stats() points into the tier: a test may corrupt a counter through it. */
static struct tier_stats *stats_of(struct tier *t)
{
    return (struct tier_stats *)tier_stats(t);
}

Test(tier, check_fails_on_a_wrong_counter)
{
    static const struct {
        const char *counter;
        size_t entries, keys, bytes; /* added (mod 2^64) to the counter */
        const char *why;             /* in the reason */
    } CASES[] = {
        {"entries + 1", 1, 0, 0, "entries counted"},
        {"entries - 1", (size_t)-1, 0, 0, "more than the"},
        {"keys + 1", 0, 1, 0, "keys counted"},
        {"keys - 1", 0, (size_t)-1, 0, "keys counted"},
        {"bytes + 1", 0, 0, 1, "bytes counted"},
        {"bytes - 100", 0, 0, (size_t)-100, "bytes counted"},
    };
    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
        char why[160] = "";
        struct tier *t = busy_tier();
        stats_of(t)->entries += CASES[i].entries;
        stats_of(t)->keys += CASES[i].keys;
        stats_of(t)->bytes += CASES[i].bytes;
        cr_expect_eq(tier_check(t, why, sizeof(why)), -1, "%s passed", CASES[i].counter);
        cr_expect(strstr(why, CASES[i].why) != NULL, "%s: reason \"%s\"", CASES[i].counter, why);
        tier_destroy(&t);
    }
}

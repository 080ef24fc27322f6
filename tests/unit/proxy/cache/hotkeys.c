/* tests/unit/proxy/cache/hotkeys.c - the hot-key summary: the true top 10
 * of a Zipf stream with known counts, its error bounds, reads, writes and
 * hits, merging two halves, heavy replacement in a small summary, long keys
 * and the size limits.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/cache/hotkeys.h"

#include "tests/unit/leaks.h"

TestSuite(hotkeys, .fini = check_leaks);

#define ZIPF_KEYS 5000
#define ZIPF_TOP  100000 /* requests of the hottest key; key i gets ZIPF_TOP / i */

/* Key i's true requests; every fourth is a write, every other read a hit. */
static uint64_t zipf_count(int i)
{
    return (uint64_t)(ZIPF_TOP / pow(i, 1.0));
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Every request of a Zipf stream over ZIPF_KEYS keys, shuffled; *n its length. */
static int *zipf_stream(size_t *n)
{
    size_t total = 0;
    for (int i = 1; i <= ZIPF_KEYS; i++)
        total += zipf_count(i);
    int *s = malloc(total * sizeof(*s));
    cr_assert_not_null(s);
    size_t k = 0;
    for (int i = 1; i <= ZIPF_KEYS; i++)
        for (uint64_t j = 0; j < zipf_count(i); j++)
            s[k++] = i;
    uint64_t seed = 88172645463325252ull;
    for (size_t i = total - 1; i > 0; i--) {
        size_t j = rng_next(&seed) % (i + 1);
        int t = s[i];
        s[i] = s[j];
        s[j] = t;
    }
    *n = total;
    return s;
}

/* Counts stream[from..to) into h, with the write and hit pattern above. */
static void feed(struct hotkeys *h, const int *stream, size_t from, size_t to, uint64_t *seen)
{
    char key[32];
    for (size_t i = from; i < to; i++) {
        int k = stream[i];
        uint64_t nth = seen[k]++;
        bool write = nth % 4 == 3, hit = !write && nth % 2 == 0;
        int len = snprintf(key, sizeof(key), "user:%d:profile", k);
        hotkeys_count(h, key, (size_t)len, !write, write, hit);
    }
}

/* The top 10 of h are keys 1..10 in order, within their error bounds. */
static void assert_true_top10(const struct hotkeys *h)
{
    struct hotkeys_entry top[10];
    cr_assert_eq(hotkeys_top(h, top, 10), 10);
    for (int i = 0; i < 10; i++) {
        char want[32];
        snprintf(want, sizeof(want), "user:%d:profile", i + 1);
        cr_assert_eq(top[i].klen, strlen(want), "rank %d", i + 1);
        cr_assert_eq(memcmp(top[i].key, want, top[i].klen), 0, "rank %d is %.*s", i + 1,
                     (int)top[i].klen, top[i].key);
        uint64_t truth = zipf_count(i + 1);
        cr_assert_leq(top[i].count - top[i].error, truth, "rank %d", i + 1);
        cr_assert_geq(top[i].count, truth, "rank %d", i + 1);
        cr_assert_eq(top[i].reads + top[i].writes + top[i].error, top[i].count);
    }
}

Test(hotkeys, finds_the_true_top_10_of_a_zipf_stream)
{
    size_t n;
    int *stream = zipf_stream(&n);
    uint64_t *seen = calloc(ZIPF_KEYS + 1, sizeof(*seen));
    struct hotkeys *h = hotkeys_create(HOTKEYS_SIZE);
    feed(h, stream, 0, n, seen);
    assert_true_top10(h);
    struct hotkeys_entry top[1];
    hotkeys_top(h, top, 1);
    /* the hottest key is never replaced: its counts are exact */
    cr_assert_eq(top[0].error, 0);
    cr_assert_eq(top[0].writes, ZIPF_TOP / 4);
    cr_assert_eq(top[0].reads, ZIPF_TOP - ZIPF_TOP / 4);
    cr_assert_eq(top[0].hits, ZIPF_TOP / 2);
    hotkeys_destroy(&h);
    cr_assert_null(h);
    free(seen);
    free(stream);
}

Test(hotkeys, merging_two_halves_keeps_the_top_10)
{
    size_t n;
    int *stream = zipf_stream(&n);
    uint64_t *seen = calloc(ZIPF_KEYS + 1, sizeof(*seen));
    struct hotkeys *a = hotkeys_create(HOTKEYS_SIZE), *b = hotkeys_create(HOTKEYS_SIZE);
    struct hotkeys *sum = hotkeys_create(2 * HOTKEYS_SIZE);
    feed(a, stream, 0, n / 2, seen);
    feed(b, stream, n / 2, n, seen);
    hotkeys_merge(sum, a);
    hotkeys_merge(sum, b);
    assert_true_top10(sum);
    hotkeys_destroy(&a);
    hotkeys_destroy(&b);
    hotkeys_destroy(&sum);
    free(seen);
    free(stream);
}

/* A summary of 4 counters under a stream of 10,000 distinct keys and one
 * that recurs: every key is kept once, the recurring one stays on top. */
Test(hotkeys, heavy_replacement_keeps_the_index_consistent)
{
    struct hotkeys *h = hotkeys_create(4);
    char key[32];
    for (int i = 0; i < 10000; i++) {
        int len = snprintf(key, sizeof(key), "k%d", i);
        hotkeys_count(h, key, (size_t)len, 1, 0, 0);
        hotkeys_count(h, "hot", 3, 1, 0, 1);
    }
    struct hotkeys_entry top[8];
    size_t n = hotkeys_top(h, top, 8);
    cr_assert_eq(n, 4);
    cr_assert_eq(top[0].klen, 3);
    cr_assert_eq(memcmp(top[0].key, "hot", 3), 0);
    cr_assert_eq(top[0].count, 10000);
    cr_assert_eq(top[0].hits, 10000);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            cr_assert(top[i].klen != top[j].klen || memcmp(top[i].key, top[j].key, top[i].klen),
                      "a key is kept twice");
    hotkeys_clear(h);
    cr_assert_eq(hotkeys_top(h, top, 8), 0);
    hotkeys_destroy(&h);
}

/* Two keys that share their first HOTKEYS_KEY_MAX bytes are two keys. */
Test(hotkeys, long_keys_are_told_apart_and_shown_cut)
{
    char a[HOTKEYS_KEY_MAX + 10], b[HOTKEYS_KEY_MAX + 10];
    memset(a, 'x', sizeof(a));
    memcpy(b, a, sizeof(b));
    b[sizeof(b) - 1] = 'y';
    struct hotkeys *h = hotkeys_create(8);
    hotkeys_count(h, a, sizeof(a), 2, 0, 0);
    hotkeys_count(h, b, sizeof(b), 1, 0, 0);
    hotkeys_count(h, "", 0, 0, 0, 0); /* no weight: nothing */
    struct hotkeys_entry top[4];
    cr_assert_eq(hotkeys_top(h, top, 4), 2);
    cr_assert_eq(top[0].count, 2);
    cr_assert_eq(top[0].klen, sizeof(a));
    cr_assert_eq(memcmp(top[0].key, a, HOTKEYS_KEY_MAX), 0);
    cr_assert_eq(top[1].count, 1);
    hotkeys_destroy(&h);
}

Test(hotkeys, sizes_out_of_range_are_refused)
{
    cr_assert_null(hotkeys_create(0));
    cr_assert_null(hotkeys_create(HOTKEYS_MAX + 1));
    struct hotkeys *h = hotkeys_create(HOTKEYS_MAX);
    cr_assert_not_null(h);
    hotkeys_destroy(&h);
    hotkeys_destroy(&h);
    hotkeys_destroy(NULL);
}

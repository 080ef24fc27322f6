/* tests/unit/table.c - the tier's tagged bucket table: items found by hash
 * among tag collisions, overflow into the next buckets and back, walks that
 * stop early, removal during a walk, growth, and its self-check.
 */
#include <criterion/criterion.h>

#include <stdlib.h>

#include "proxy/cache/table.h"

#include "tests/unit/leaks.h"

TestSuite(table, .fini = check_leaks);

/* An item: its hash is stored in it, as the tier's entries imply theirs. */
struct item {
    uint64_t h;
};

static uint64_t item_hash(const void *it)
{
    return ((const struct item *)it)->h;
}

/* A hash with tag byte tag for home bucket home. */
static uint64_t hash_of(uint8_t tag, uint64_t home)
{
    return (uint64_t)tag << 56 | home;
}

/* Counts the items a walk of h returns, and whether it returns want. */
static int walk_count(const struct table *t, uint64_t h, const void *want, bool *found)
{
    struct table_walk w;
    int n = 0;
    const void *it;
    *found = false;
    table_walk_start(t, h, &w);
    while ((it = table_walk_next(t, &w)) != NULL) {
        n++;
        *found |= it == want;
    }
    return n;
}

static void check_ok(const struct table *t)
{
    char why[128] = "";
    cr_assert_eq(table_check(t, item_hash, why, sizeof(why)), 0, "%s", why);
}

Test(table, a_walk_returns_only_items_with_the_same_tag)
{
    struct table t;
    cr_assert_eq(table_init(&t, 8), 0);
    struct item a = {hash_of(7, 3)}, b = {hash_of(7, 3 + 8)}, c = {hash_of(9, 3)};
    table_insert(&t, a.h, &a, item_hash);
    table_insert(&t, b.h, &b, item_hash); /* same tag and bucket, another hash */
    table_insert(&t, c.h, &c, item_hash); /* same bucket, another tag */
    bool found;
    cr_assert_eq(walk_count(&t, a.h, &a, &found), 2, "a tag collision is a candidate");
    cr_assert(found);
    cr_assert_eq(walk_count(&t, c.h, &c, &found), 1, "another tag is not");
    cr_assert(found);
    cr_assert_eq(walk_count(&t, hash_of(8, 3), NULL, &found), 0);
    check_ok(&t);
    cr_assert(table_remove(&t, b.h, &b));
    cr_assert_not(table_remove(&t, b.h, &b));
    cr_assert_eq(walk_count(&t, a.h, &a, &found), 1);
    check_ok(&t);
    table_free(&t);
}

Test(table, tag_zero_is_never_a_free_slot)
{
    struct table t;
    cr_assert_eq(table_init(&t, 8), 0);
    struct item a = {hash_of(0, 1)}, b = {hash_of(1, 1)};
    table_insert(&t, a.h, &a, item_hash);
    table_insert(&t, b.h, &b, item_hash);
    bool found;
    cr_assert_eq(walk_count(&t, a.h, &a, &found), 2, "tag 0 is stored as 1");
    cr_assert(found);
    check_ok(&t);
    table_free(&t);
}

Test(table, a_full_bucket_overflows_into_the_next_and_back)
{
    struct table t;
    cr_assert_eq(table_init(&t, 8), 0);
    struct item it[12];
    for (int i = 0; i < 12; i++) {
        it[i].h = hash_of(5, 7); /* the last bucket: overflow wraps to bucket 0 */
        table_insert(&t, it[i].h, &it[i], item_hash);
    }
    cr_assert_eq(t.buckets[7].overflow, 5);
    bool found;
    cr_assert_eq(walk_count(&t, it[0].h, &it[11], &found), 12);
    cr_assert(found, "an item placed past its home bucket is out of reach");
    cr_assert_eq(walk_count(&t, hash_of(5, 6), NULL, &found), 0, "bucket 6 has no overflow");
    check_ok(&t);
    for (int i = 11; i >= 0; i--) {
        cr_assert(table_remove(&t, it[i].h, &it[i]));
        check_ok(&t);
    }
    cr_assert_eq(t.buckets[7].overflow, 0);
    cr_assert_eq(t.items, 0);
    table_free(&t);
}

Test(table, removal_during_a_walk_keeps_the_walk_going)
{
    struct table t;
    cr_assert_eq(table_init(&t, 8), 0);
    struct item it[10];
    for (int i = 0; i < 10; i++) {
        it[i].h = hash_of(3, 2);
        table_insert(&t, it[i].h, &it[i], item_hash);
    }
    struct table_walk w;
    int seen = 0;
    table_walk_start(&t, hash_of(3, 2), &w);
    for (void *p; (p = table_walk_next(&t, &w)) != NULL; seen++) {
        if (seen % 2 == 0)
            table_walk_remove(&t, &w);
    }
    cr_assert_eq(seen, 10);
    cr_assert_eq(t.items, 5);
    check_ok(&t);
    table_free(&t);
}

Test(table, grows_past_its_load_and_keeps_every_item)
{
    struct table t;
    cr_assert_eq(table_init(&t, 8), 0);
    enum { N = 5000 };
    struct item *it = malloc(N * sizeof(*it));
    size_t grown = 0;
    for (int i = 0; i < N; i++) {
        it[i].h = (uint64_t)i * 0x9e3779b97f4a7c15ULL;
        grown += table_insert(&t, it[i].h, &it[i], item_hash);
        cr_assert_leq(t.items, TABLE_LOAD * (t.mask + 1));
    }
    cr_assert_eq(grown, table_bytes(&t) - 8 * sizeof(struct table_bucket));
    cr_assert_geq(t.items * 2, TABLE_LOAD * (t.mask + 1) / 2, "grew too early");
    for (int i = 0; i < N; i++) {
        bool found;
        walk_count(&t, it[i].h, &it[i], &found);
        cr_assert(found, "item %d lost", i);
    }
    check_ok(&t);
    free(it);
    table_free(&t);
}

Test(table, check_finds_a_wrong_overflow_a_wrong_tag_and_a_wrong_count)
{
    struct table t;
    char why[128] = "";
    cr_assert_eq(table_init(&t, 8), 0);
    struct item it[9];
    for (int i = 0; i < 9; i++) {
        it[i].h = hash_of(4, 1);
        table_insert(&t, it[i].h, &it[i], item_hash);
    }
    check_ok(&t);
    t.buckets[1].overflow--;
    cr_assert_eq(table_check(&t, item_hash, why, sizeof(why)), -1);
    cr_assert(strstr(why, "overflow") != NULL, "%s", why);
    t.buckets[1].overflow++;
    t.buckets[1].tag[0] = 9;
    cr_assert_eq(table_check(&t, item_hash, why, sizeof(why)), -1);
    cr_assert(strstr(why, "tag") != NULL, "%s", why);
    t.buckets[1].tag[0] = 4;
    t.items++;
    cr_assert_eq(table_check(&t, item_hash, why, sizeof(why)), -1);
    cr_assert(strstr(why, "items counted") != NULL, "%s", why);
    t.items--;
    check_ok(&t);
    table_free(&t);
}

/* Unit tests for proxy/cache.c: what each request means for the local tier. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "policy/policy.h"
#include "proxy/cache/cache.h"
#include "proxy/cache/fill.h"
#include "proxy/cache/mget.h"
#include "proxy/exchange.h"

#include "tests/unit/frame.h"
#include "tests/unit/leaks.h"

static struct config cfg;
static struct command_table *keys;
static struct policy *policy;
static struct cache_store *store;
static struct cache *cache;

static void setup(void)
{
    config_init(&cfg);
    keys = command_table_create();
    cr_assert(keys != NULL && command_table_add_builtin(keys) > 0);
    char err[256];
    policy = policy_create();
    cr_assert(policy != NULL && policy_build(policy, NULL, err, sizeof(err)) == 0);
    store = cache_store_create(&cfg, false);
    cr_assert_not_null(store);
    cache = cache_create(&cfg, policy, store);
    cr_assert_not_null(cache);
    cache_set_active(cache, true);
}

static void teardown(void)
{
    cache_destroy(&cache);
    cache_store_destroy(&store);
    policy_destroy(&policy);
    command_table_destroy(&keys);
    config_deinit(&cfg);
    check_leaks();
}

TestSuite(cache, .init = setup, .fini = teardown);

static size_t stats_of(char *buf, size_t len)
{
    struct cache_figures f;
    cache_figures(cache, &f);
    return cache_stats(&f, buf, len);
}

/* The lane of the configured database in RESP2. */
static const struct lane DB0 = {0, 2};

/* Plans one request at time now, served in lane serve (NULL: not shared). */
static struct cache_plan plan_of(const char *line, const struct lane *serve, uint64_t now)
{
    struct frame f = frame_of(line);
    struct cache_plan plan;
    struct request_keys scratch = {0};
    struct request r;
    request_init(&r, keys, f.buf, &f.req, &scratch);
    cache_plan(cache, &r, serve, now, &plan);
    request_keys_free(&scratch);
    free(f.buf);
    return plan;
}

/* Runs a read to completion: plan, reply, PTTL reply. Returns true on a hit. */
static bool read_through(const char *line, const char *reply, const char *pttl, uint64_t now)
{
    struct cache_plan plan = plan_of(line, &DB0, now);
    if (plan.hit) {
        cr_assert_eq(plan.view.len, strlen(reply));
        cr_assert(memcmp(plan.view.reply, reply, plan.view.len) == 0, "%s", line);
        return true;
    }
    cr_assert_not_null(plan.fill, "%s: a cacheable miss gets a fill", line);
    cache_fill_reply(plan.fill, reply, strlen(reply), 0);
    cache_fill_finish(cache, plan.fill, pttl, strlen(pttl), now);
    return false;
}

static void write_through(const char *line)
{
    struct cache_plan plan = plan_of(line, &DB0, 0);
    cr_assert_not(plan.hit);
    cr_assert_null(plan.fill, "%s: writes are not filled", line);
    cr_assert_not_null(plan.writes, "%s: writes are invalidated again on completion", line);
    cache_writes_done(cache, &plan.writes);
    cr_assert_null(plan.writes);
}

Test(cache, miss_fill_then_hit)
{
    struct cache_plan plan = plan_of("GET k", &DB0, 0);
    cr_assert_not(plan.hit);
    const char *pttl;
    size_t len;
    cache_fill_pttl(plan.fill, &pttl, &len);
    cr_assert_eq(len, strlen("*2\r\n$4\r\nPTTL\r\n$1\r\nk\r\n"));
    cr_assert(memcmp(pttl, "*2\r\n$4\r\nPTTL\r\n$1\r\nk\r\n", len) == 0);
    cache_fill_reply(plan.fill, "$1\r\nv\r\n", 7, 0);
    cache_fill_finish(cache, plan.fill, ":-1\r\n", 5, 0);
    cr_assert(read_through("GET k", "$1\r\nv\r\n", ":-1\r\n", 1));
    cr_assert(read_through("get k", "$1\r\nv\r\n", ":-1\r\n", 1), "the same, spelled otherwise");
    cr_assert_not(read_through("GETRANGE k 0 -1", "$1\r\nv\r\n", ":-1\r\n", 1), "another variant");
}

Test(cache, writes_drop_every_variant)
{
    read_through("HGET h a", "$1\r\n1\r\n", ":-1\r\n", 0);
    read_through("HGETALL h", "*2\r\n$1\r\na\r\n$1\r\n1\r\n", ":-1\r\n", 0);
    cr_assert(read_through("HGET h a", "$1\r\n1\r\n", ":-1\r\n", 0));
    write_through("HSET h a 2");
    cr_assert_not(read_through("HGET h a", "$1\r\n2\r\n", ":-1\r\n", 0));
    cr_assert_not(read_through("HGETALL h", "*2\r\n$1\r\na\r\n$1\r\n2\r\n", ":-1\r\n", 0));
}

Test(cache, a_fill_racing_an_invalidation_is_refused)
{
    struct cache_plan plan = plan_of("GET k", &DB0, 0);
    write_through("SET k new");
    cache_fill_reply(plan.fill, "$3\r\nold\r\n", 9, 0);
    cache_fill_finish(cache, plan.fill, ":-1\r\n", 5, 0);
    cr_assert_not(read_through("GET k", "$3\r\nnew\r\n", ":-1\r\n", 0), "the stale fill was kept");
    cr_assert(read_through("GET k", "$3\r\nnew\r\n", ":-1\r\n", 0));
}

Test(cache, expiry_is_capped_by_the_key_ttl_and_cache_ttl)
{
    read_through("GET k", "$1\r\nv\r\n", ":100\r\n", 1000);
    cr_assert(read_through("GET k", "$1\r\nv\r\n", ":100\r\n", 1099));
    cr_assert_not(read_through("GET j", "$1\r\nv\r\n", ":-1\r\n", 1100));
    cr_assert_not(read_through("GET k", "$1\r\nv\r\n", ":-1\r\n", 1100), "outlived its TTL");
    /* No TTL in Redis: cache.ttl (5 minutes by default) bounds it. */
    cr_assert(read_through("GET j", "$1\r\nv\r\n", ":-1\r\n", 1100 + 299999));
    cr_assert_not(read_through("GET j", "$1\r\nv\r\n", ":-1\r\n", 1100 + 300000));
}

Test(cache, errors_and_failed_pttl_are_not_cached)
{
    read_through("GET k", "-WRONGTYPE Operation against a key\r\n", ":-1\r\n", 0);
    cr_assert_not(read_through("GET k", "$1\r\nv\r\n", "-ERR upstream timeout\r\n", 0));
    cr_assert_not(read_through("GET k", "$1\r\nv\r\n", ":-1\r\n", 0));
    cr_assert(read_through("GET k", "$1\r\nv\r\n", ":-1\r\n", 0));
}

Test(cache, only_cacheable_reads_on_shared_connections)
{
    static const char *const NEVER[] = {
        "TTL k", "PTTL k", "RANDOMKEY", "SRANDMEMBER s", "SCAN 0", "OBJECT ENCODING k", "PING"};
    for (size_t i = 0; i < sizeof(NEVER) / sizeof(NEVER[0]); i++) {
        struct cache_plan plan = plan_of(NEVER[i], &DB0, 0);
        cr_expect(!plan.hit && plan.fill == NULL && plan.writes == NULL && plan.mget == NULL, "%s",
                  NEVER[i]);
    }
    struct cache_plan plan = plan_of("GET k", NULL, 0);
    cr_expect(!plan.hit && plan.fill == NULL, "a dedicated connection's read");
    plan = plan_of("MGET a b", NULL, 0);
    cr_expect(!plan.hit && plan.mget == NULL, "a dedicated connection's MGET");
}

Test(cache, scripts_and_flushes_drop_everything)
{
    static const char *const FLUSHING[] = {"EVAL return 0", "EVALSHA abc 0", "FCALL f 0",
                                           "FLUSHDB",       "FLUSHALL",      "SWAPDB 0 1"};
    for (size_t i = 0; i < sizeof(FLUSHING) / sizeof(FLUSHING[0]); i++) {
        read_through("GET k", "$1\r\nv\r\n", ":-1\r\n", 0);
        cr_assert(read_through("GET k", "$1\r\nv\r\n", ":-1\r\n", 0));
        write_through(FLUSHING[i]);
        cr_expect_not(read_through("GET k", "$1\r\nv\r\n", ":-1\r\n", 0), "%s", FLUSHING[i]);
    }
}

Test(cache, inactive_tier_serves_nothing_but_still_invalidates)
{
    read_through("GET k", "$1\r\nv\r\n", ":-1\r\n", 0);
    cache_set_active(cache, false);
    struct cache_plan plan = plan_of("GET k", &DB0, 0);
    cr_assert(!plan.hit && plan.fill == NULL);
    plan = plan_of("SET k w", &DB0, 0);
    cr_assert_not_null(plan.writes);
    cache_writes_done(cache, &plan.writes);
    cache_set_active(cache, true);
    cr_assert_not(read_through("GET k", "$1\r\nw\r\n", ":-1\r\n", 0), "emptied when turned off");
}

Test(cache, transaction_writes_merge_and_complete_together)
{
    read_through("GET a", "$1\r\n1\r\n", ":-1\r\n", 0);
    read_through("GET b", "$1\r\n1\r\n", ":-1\r\n", 0);
    struct cache_keys *multi = NULL;
    struct cache_plan p1 = plan_of("SET a 2", &DB0, 0), p2 = plan_of("DEL b", &DB0, 0);
    cache_writes_merge(&multi, &p1.writes);
    cache_writes_merge(&multi, &p2.writes);
    cr_assert(p1.writes == NULL && p2.writes == NULL && multi != NULL);
    /* A read between queueing and EXEC fills again; EXEC's completion drops it. */
    read_through("GET a", "$1\r\n1\r\n", ":-1\r\n", 0);
    read_through("GET b", "$1\r\n1\r\n", ":-1\r\n", 0);
    cache_writes_done(cache, &multi);
    cr_assert_not(read_through("GET a", "$1\r\n2\r\n", ":-1\r\n", 0));
    cr_assert_not(read_through("GET b", "$-1\r\n", ":-2\r\n", 0));
}

Test(cache, stats_lines)
{
    read_through("GET k", "$1\r\nv\r\n", ":-1\r\n", 0);
    read_through("GET k", "$1\r\nv\r\n", ":-1\r\n", 0);
    char buf[1024];
    size_t n = stats_of(buf, sizeof(buf));
    cr_assert_eq(n, strlen(buf));
    cr_assert_not_null(strstr(buf, "\r\nhits:1\r\n"), "%s", buf);
    cr_assert_not_null(strstr(buf, "\r\nmisses:1\r\n"), "%s", buf);
    cr_assert_not_null(strstr(buf, "\r\nentries:1\r\n"), "%s", buf);
    cr_assert_eq(stats_of(buf, 10), 9, "truncated to the buffer");
}

/* A variant is the command and what follows the key: reads that differ
 * there, or in the key, are entries of their own. */
Test(cache, variants_differ_by_command_key_and_arguments)
{
    cr_assert_not(read_through("GETRANGE k 0 1", "$2\r\nab\r\n", ":-1\r\n", 0));
    cr_assert_not(read_through("GETRANGE k 0 2", "$3\r\nabc\r\n", ":-1\r\n", 0));
    cr_assert_not(read_through("GETRANGE k 0 12", "$3\r\nabc\r\n", ":-1\r\n", 0));
    cr_assert_not(read_through("GETRANGE k0 1 2", "$0\r\n\r\n", ":-1\r\n", 0));
    cr_assert_not(read_through("STRLEN k", ":3\r\n", ":-1\r\n", 0));
    cr_assert_not(read_through("GET k", "$3\r\nabc\r\n", ":-1\r\n", 0));
    cr_assert_not(read_through("GET k0", "$1\r\nz\r\n", ":-1\r\n", 0));
    cr_assert(read_through("GETRANGE k 0 1", "$2\r\nab\r\n", ":-1\r\n", 0));
    cr_assert(read_through("GETRANGE k 0 2", "$3\r\nabc\r\n", ":-1\r\n", 0));
    cr_assert(read_through("getrange k 0 12", "$3\r\nabc\r\n", ":-1\r\n", 0));
    cr_assert(read_through("STRLEN k", ":3\r\n", ":-1\r\n", 0));
    cr_assert(read_through("GET k", "$3\r\nabc\r\n", ":-1\r\n", 0));
    cr_assert(read_through("GET k0", "$1\r\nz\r\n", ":-1\r\n", 0));
    cr_assert(read_through("GETRANGE k0 1 2", "$0\r\n\r\n", ":-1\r\n", 0));
}

Test(cache, mget_is_split_between_the_tier_and_redis)
{
    read_through("GET a", "$1\r\n1\r\n", ":-1\r\n", 0);
    struct cache_plan plan = plan_of("MGET b a c", &DB0, 0);
    cr_assert_not(plan.hit);
    cr_assert_not_null(plan.mget);
    const char *data;
    size_t len;
    cache_mget_request(plan.mget, &data, &len);
    static const char FORWARD[] = "*3\r\n$4\r\nMGET\r\n$1\r\nb\r\n$1\r\nc\r\n";
    cr_assert(len == strlen(FORWARD) && memcmp(data, FORWARD, len) == 0, "%.*s", (int)len, data);
    cr_assert_eq(cache_mget_misses(plan.mget), 2);
    cache_mget_pttl(plan.mget, 1, &data, &len);
    cr_assert(len == 21 && memcmp(data, "*2\r\n$4\r\nPTTL\r\n$1\r\nc\r\n", len) == 0);
    static const char REPLY[] = "*2\r\n$1\r\n2\r\n$-1\r\n";
    cache_mget_merge(cache, plan.mget, REPLY, strlen(REPLY), &data, &len);
    static const char MERGED[] = "*3\r\n$1\r\n2\r\n$1\r\n1\r\n$-1\r\n";
    cr_assert(len == strlen(MERGED) && memcmp(data, MERGED, len) == 0, "%.*s", (int)len, data);
    cache_mget_finish(cache, plan.mget, 0, ":-1\r\n", 5, 0);
    cache_mget_finish(cache, plan.mget, 1, ":-2\r\n", 5, 0);
    cache_mget_put(&plan.mget);
    cr_assert(read_through("GET b", "$1\r\n2\r\n", ":-1\r\n", 0), "b was filled by the MGET");
    cr_assert_not(read_through("GET c", "$-1\r\n", ":-2\r\n", 0), "a nil from MGET is not");
    plan = plan_of("MGET a b a", &DB0, 0);
    cr_assert(plan.hit, "all hits: answered at once");
    cr_assert(plan.view.len == 25 &&
              memcmp(plan.view.reply, "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n1\r\n", 25) == 0);
}

Test(cache, mget_error_reply_passes_through)
{
    struct cache_plan plan = plan_of("MGET x y", &DB0, 0);
    const char *data;
    size_t len;
    static const char ERR[] = "-ERR upstream connection lost\r\n";
    cache_mget_merge(cache, plan.mget, ERR, strlen(ERR), &data, &len);
    cr_assert(data == ERR && len == strlen(ERR));
    cache_mget_finish(cache, plan.mget, 0, ERR, strlen(ERR), 0);
    cache_mget_finish(cache, plan.mget, 1, ERR, strlen(ERR), 0);
    cache_mget_put(&plan.mget);
    cr_assert_not(read_through("GET x", "$1\r\n1\r\n", ":-1\r\n", 0));
}

/* ---- with policy rules ---------------------------------------------------- */

/* Replaces the policy with one of these cache and invalidation rules, as a
 * reload does. */
static void use_rules(const struct policy_cache_rule *rules, size_t n,
                      const struct policy_invalidate_rule *inv, size_t ninv)
{
    char err[256];
    struct policy *next = policy_create();
    cr_assert_not_null(next);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(policy_add_cache(next, &rules[i], err, sizeof(err)), 0, "%s", err);
    for (size_t i = 0; i < ninv; i++)
        cr_assert_eq(policy_add_invalidate(next, &inv[i], err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(policy_build(next, policy, err, sizeof(err)), 0, "%s", err);
    policy_take_over(next, policy);
    cache_reload(cache, &cfg, next);
    policy_destroy(&policy);
    policy = next;
}

/* A plain read that forwards without a fill. */
static void read_unfilled(const char *line)
{
    struct cache_plan plan = plan_of(line, &DB0, 0);
    cr_assert(!plan.hit && plan.fill == NULL, "%s", line);
    for (size_t i = 0; plan.mget != NULL && i < cache_mget_misses(plan.mget); i++) {
        const char *pttl;
        size_t len;
        cache_mget_pttl(plan.mget, i, &pttl, &len);
        cr_assert_eq(len, 0, "%s: key %zu of the MGET gets no fill", line, i);
    }
    cache_mget_put(&plan.mget);
}

static size_t stat_of(const char *name)
{
    char buf[2048], want[64];
    stats_of(buf, sizeof(buf));
    snprintf(want, sizeof(want), "\n%s:", name);
    const char *p = strstr(buf, want);
    cr_assert_not_null(p, "%s", name);
    return (size_t)strtoull(p + strlen(want), NULL, 10);
}

Test(cache, a_bypass_rule_is_never_filled)
{
    const struct policy_cache_rule rules[] = {{.name = "live", .keys = "live:*", .cache = false}};
    use_rules(rules, 1, NULL, 0);
    read_unfilled("GET live:1");
    read_unfilled("MGET live:1");
    cr_assert_not(read_through("GET other", "$1\r\nv\r\n", ":-1\r\n", 0));
    cr_assert(read_through("GET other", "$1\r\nv\r\n", ":-1\r\n", 0), "other keys still are");
}

Test(cache, a_fixed_ttl_replaces_cache_ttl)
{
    const struct policy_cache_rule rules[] = {
        {.name = "short", .keys = "s:*", .cache = true, .ttl_ms = 100}};
    use_rules(rules, 1, NULL, 0);
    read_through("GET s:1", "$1\r\nv\r\n", ":-1\r\n", 1000);
    cr_assert(read_through("GET s:1", "$1\r\nv\r\n", ":-1\r\n", 1099));
    cr_assert_not(read_through("GET s:1", "$1\r\nv\r\n", ":-1\r\n", 1100));
    read_through("GET s:2", "$1\r\nv\r\n", ":50\r\n", 1000);
    cr_assert_not(read_through("GET s:2", "$1\r\nv\r\n", ":-1\r\n", 1050), "the key's TTL caps it");
}

Test(cache, admission_waits_for_the_nth_read)
{
    const struct policy_cache_rule rules[] = {
        {.name = "warm", .keys = "w:*", .cache = true, .admit_reads = 3, .admit_window_ms = 10000}};
    use_rules(rules, 1, NULL, 0);
    read_unfilled("GET w:1");
    read_unfilled("GET w:1");
    cr_assert_not(read_through("GET w:1", "$1\r\nv\r\n", ":-1\r\n", 0), "third read fills");
    cr_assert(read_through("GET w:1", "$1\r\nv\r\n", ":-1\r\n", 0));
}

Test(cache, max_entry_and_compression_per_rule)
{
    const struct policy_cache_rule rules[] = {
        {.name = "small", .keys = "s:*", .cache = true, .max_entry = 16},
        {.name = "blob", .keys = "b:*", .cache = true, .compress_over = 1024},
    };
    use_rules(rules, 2, NULL, 0);
    read_through("GET s:1", "$20\r\n01234567890123456789\r\n", ":-1\r\n", 0);
    cr_assert_not(read_through("GET s:1", "$1\r\nv\r\n", ":-1\r\n", 0), "over max_entry");
    size_t n = 100000;
    char *big = malloc(n + 16);
    int h = snprintf(big, 16, "$%zu\r\n", n - 10);
    memset(big + h, 'x', n - 10 - (size_t)h);
    for (size_t i = (size_t)h; i < n - 10; i += 97)
        big[i] = (char)('a' + i % 26);
    size_t len = n - 10;
    memcpy(big + len, "\r\n", 2);
    big[len + 2] = '\0';
    size_t before = stat_of("bytes");
    read_through("GET b:1", big, ":-1\r\n", 0);
    cr_assert_lt(stat_of("bytes") - before, len / 4, "stored compressed");
    cr_assert(read_through("GET b:1", big, ":-1\r\n", 0), "served byte for byte");
    free(big);
}

Test(cache, entries_of_a_changed_rule_are_not_served_after_a_reload)
{
    struct policy_cache_rule rules[] = {
        {.name = "a", .keys = "a:*", .cache = true, .ttl_ms = 60000},
        {.name = "b", .keys = "b:*", .cache = true, .ttl_ms = 60000},
    };
    use_rules(rules, 2, NULL, 0);
    read_through("GET a:1", "$1\r\nv\r\n", ":-1\r\n", 0);
    read_through("GET b:1", "$1\r\nv\r\n", ":-1\r\n", 0);
    use_rules(rules, 2, NULL, 0);
    cr_assert(read_through("GET a:1", "$1\r\nv\r\n", ":-1\r\n", 0), "unchanged: kept");
    cr_assert(read_through("GET b:1", "$1\r\nv\r\n", ":-1\r\n", 0), "unchanged: kept");
    rules[1].ttl_ms = 1000;
    use_rules(rules, 2, NULL, 0);
    cr_assert(read_through("GET a:1", "$1\r\nv\r\n", ":-1\r\n", 0), "a rule before it: kept");
    cr_assert_not(read_through("GET b:1", "$1\r\nv\r\n", ":-1\r\n", 0), "its rule changed");
    rules[0].ttl_ms = 1000;
    use_rules(rules, 2, NULL, 0);
    cr_assert_not(read_through("GET a:1", "$1\r\nv\r\n", ":-1\r\n", 0), "its rule changed");
    cr_assert_not(read_through("GET b:1", "$1\r\nv\r\n", ":-1\r\n", 0), "a rule before it did");
}

static const char *const EMB_DROP[] = {"embeddings:{m}:*"};
static const struct policy_invalidate_rule EMB_RULE = {
    .name = "emb", .when = "model:{m}", .drop = EMB_DROP, .ndrop = 1};

Test(cache, an_invalidation_rule_drops_the_entries_of_its_captures)
{
    use_rules(NULL, 0, &EMB_RULE, 1);
    read_through("GET embeddings:1:a", "$1\r\nv\r\n", ":-1\r\n", 0);
    read_through("HGET embeddings:1:b f", "$1\r\nv\r\n", ":-1\r\n", 0);
    read_through("GET embeddings:2:a", "$1\r\nv\r\n", ":-1\r\n", 0);
    write_through("SET model:1 x");
    cr_assert_not(read_through("GET embeddings:1:a", "$1\r\nv\r\n", ":-1\r\n", 0));
    cr_assert_not(read_through("HGET embeddings:1:b f", "$1\r\nv\r\n", ":-1\r\n", 0));
    cr_assert(read_through("GET embeddings:2:a", "$1\r\nv\r\n", ":-1\r\n", 0), "other capture");
    /* The same rule, fired by an invalidation from Redis. */
    cache_invalidate(cache, "model:2", 7, 0);
    cr_assert_not(read_through("GET embeddings:2:a", "$1\r\nv\r\n", ":-1\r\n", 0));
    cr_assert(read_through("GET embeddings:1:a", "$1\r\nv\r\n", ":-1\r\n", 0));
}

Test(cache, a_fill_racing_a_rule_is_not_served)
{
    use_rules(NULL, 0, &EMB_RULE, 1);
    struct cache_plan plan = plan_of("GET embeddings:1:a", &DB0, 0);
    cr_assert_not_null(plan.fill);
    write_through("DEL model:1");
    cache_fill_reply(plan.fill, "$3\r\nold\r\n", 9, 0);
    cache_fill_finish(cache, plan.fill, ":-1\r\n", 5, 0);
    cr_assert_not(read_through("GET embeddings:1:a", "$3\r\nnew\r\n", ":-1\r\n", 0));
    cr_assert(read_through("GET embeddings:1:a", "$3\r\nnew\r\n", ":-1\r\n", 0));
}

/* Lanes: databases and protocols are apart in the tier. */
static const struct lane DB1 = {1, 2}, DB0_RESP3 = {0, 3};

/* Whether line is a hit in lane (a miss's fill is dropped). */
static bool hits(const struct lane *lane, const char *line)
{
    struct cache_plan plan = plan_of(line, lane, 0);
    cache_fill_destroy(&plan.fill);
    cache_mget_put(&plan.mget);
    return plan.hit;
}

/* Fills line's reply in lane, then reports whether a second read hits. */
static bool fill_in(const struct lane *lane, const char *line, const char *reply)
{
    struct cache_plan plan = plan_of(line, lane, 0);
    if (plan.hit)
        return true;
    cr_assert_not_null(plan.fill, "%s", line);
    cache_fill_reply(plan.fill, reply, strlen(reply), 0);
    cache_fill_finish(cache, plan.fill, ":-1\r\n", 5, 0);
    plan = plan_of(line, lane, 0);
    cache_fill_destroy(&plan.fill);
    return plan.hit && plan.view.len == strlen(reply) &&
           memcmp(plan.view.reply, reply, plan.view.len) == 0;
}

Test(cache, databases_and_protocols_have_entries_of_their_own)
{
    cr_assert(fill_in(&DB0, "GET k", "$2\r\nv0\r\n"));
    cr_assert(fill_in(&DB1, "GET k", "$2\r\nv1\r\n"), "db 1 served db 0's entry");
    cr_assert(fill_in(&DB0_RESP3, "GET nokey", "_\r\n"));
    cr_assert_not(hits(&DB0, "GET nokey"), "a RESP2 client got a RESP3 reply");
    cr_assert_not(hits(&DB0_RESP3, "MGET k nokey"), "k is not cached for RESP3");
}

Test(cache, a_write_drops_the_key_in_every_database)
{
    cr_assert(fill_in(&DB0, "GET k", "$2\r\nv0\r\n"));
    cr_assert(fill_in(&DB1, "GET k", "$2\r\nv1\r\n"));
    cr_assert(fill_in(&DB0_RESP3, "GET k", "$2\r\nv0\r\n"));
    write_through("SET k w"); /* a dedicated connection's database is not known */
    cr_assert_not(hits(&DB1, "GET k"));
    cr_assert_not(hits(&DB0_RESP3, "GET k"));
    cr_assert(fill_in(&DB1, "GET k", "$2\r\nv1\r\n"));
    cache_invalidate(cache, "k", 1, 0); /* Redis's invalidations name no database */
    cr_assert_not(hits(&DB1, "GET k"));
}

/* ---- single flight ------------------------------------------------------- */

/* What a joined read was answered with: "" for "go on your own". */
static char joined_reply[64];

static void joined_done(struct exchange *x, const char *data, size_t len, uint64_t now_ms)
{
    (void)now_ms;
    exchange_destroy(&x);
    snprintf(joined_reply, sizeof(joined_reply), "%.*s", data != NULL ? (int)len : 0,
             data != NULL ? data : "");
}

/* Plans line in lane; it must join a read in flight, and is joined to it. */
static void join(const struct lane *lane, const char *line)
{
    struct cache_plan plan = plan_of(line, lane, 0);
    cr_assert_not_null(plan.join, "%s did not join the read in flight", line);
    cr_assert_null(plan.fill);
    cache_fill_join(plan.join, exchange_create(joined_done, NULL));
    strcpy(joined_reply, "(none)");
}

Test(cache, identical_misses_join_the_read_in_flight)
{
    struct cache_plan lead = plan_of("GET k", &DB0, 0);
    cr_assert_not_null(lead.fill);
    join(&DB0, "GET k");
    cr_assert_not(hits(&DB1, "GET k"), "another database joined");
    cr_assert_not(hits(&DB0_RESP3, "GET k"), "another protocol joined");
    struct cache_plan other = plan_of("GETRANGE k 0 1", &DB0, 0);
    cr_assert_null(other.join, "another variant joined");
    cache_fill_destroy(&other.fill);
    cache_fill_reply(lead.fill, "$1\r\nv\r\n", 7, 0);
    cr_assert_str_eq(joined_reply, "$1\r\nv\r\n");
    cache_fill_finish(cache, lead.fill, ":-1\r\n", 5, 0);
    cr_assert_eq(stat_of("fills_joined"), 1);
}

Test(cache, an_invalidation_sends_the_joined_on_their_own)
{
    struct cache_plan lead = plan_of("GET k", &DB0, 0);
    join(&DB0, "GET k");
    write_through("SET k new");
    struct cache_plan late = plan_of("GET k", &DB0, 0);
    cr_assert_null(late.join, "joined a read sent before a write");
    cache_fill_reply(lead.fill, "$3\r\nold\r\n", 9, 0);
    cr_assert_str_eq(joined_reply, "", "answered with what the write replaced");
    cache_fill_finish(cache, lead.fill, ":-1\r\n", 5, 0);
    cache_fill_destroy(&late.fill);
}

Test(cache, a_read_that_ends_unanswered_sends_the_joined_on_their_own)
{
    struct cache_plan lead = plan_of("GET k", &DB0, 0);
    join(&DB0, "GET k");
    cache_fill_destroy(&lead.fill);
    cr_assert_str_eq(joined_reply, "");
    struct cache_plan next = plan_of("GET k", &DB0, 0);
    cr_assert_null(next.join, "joined a read that is gone");
    cache_fill_destroy(&next.fill);
}

/* ---- writes in flight ------------------------------------------------------ */

/* A fill that lands while a write of its key is in flight is not stored,
 * and what the tier holds of the key is not served until the write is done:
 * a client that wrote k and reads it before the write's reply must not get
 * the value the write replaces. */
Test(cache, a_key_with_a_write_in_flight_is_neither_served_nor_filled)
{
    cr_assert(fill_in(&DB1, "GET k", "$3\r\nold\r\n"));
    struct cache_plan read = plan_of("GET k", &DB0, 0); /* sent before the write */
    struct cache_plan write = plan_of("SET k new", &DB0, 0);
    cr_assert_not_null(write.writes);
    cr_assert_not(hits(&DB1, "GET k"), "served while the write is in flight");
    struct cache_plan racing = plan_of("GET k", &DB0, 0);
    cr_assert_null(racing.join, "joined a read while a write of its key is in flight");
    cache_fill_reply(read.fill, "$3\r\nold\r\n", 9, 0);
    cache_fill_finish(cache, read.fill, ":-1\r\n", 5, 0);
    cache_fill_reply(racing.fill, "$3\r\nold\r\n", 9, 0); /* ran at Redis before the write */
    cache_fill_finish(cache, racing.fill, ":-1\r\n", 5, 0);
    cr_assert_not(hits(&DB0, "GET k"), "the writer could read what its write replaces");
    cache_writes_done(cache, &write.writes);
    cr_assert_not(hits(&DB0, "GET k"), "a fill stored while the write was in flight");
    cr_assert(fill_in(&DB0, "GET k", "$3\r\nnew\r\n"), "filled again once the write is done");
}

Test(cache, a_transaction_keeps_its_keys_in_flight_until_exec)
{
    struct cache_plan a = plan_of("SET a 1", &DB0, 0), b = plan_of("EVAL x 0", &DB0, 0);
    struct cache_keys *multi = NULL;
    cache_writes_merge(&multi, &a.writes);
    cache_writes_merge(&multi, &b.writes);
    struct cache_plan other = plan_of("GET z", &DB0, 0);
    cr_assert_not_null(other.fill);
    cache_fill_reply(other.fill, "$1\r\nz\r\n", 7, 0);
    cache_fill_finish(cache, other.fill, ":-1\r\n", 5, 0);
    cr_assert_not(hits(&DB0, "GET z"), "a script's keys are not known: nothing is filled");
    cache_writes_done(cache, &multi);
    cr_assert(fill_in(&DB0, "GET z", "$1\r\nz\r\n"));
}

/* ---- a store shared by workers: the tier in shards ------------------------- */

static void setup_shared(void)
{
    setup();
    cache_destroy(&cache);
    cache_store_destroy(&store);
    store = cache_store_create(&cfg, true); /* 64mb / 1mb: 16 shards */
    cr_assert_not_null(store);
    cache = cache_create(&cfg, policy, store);
    cr_assert_not_null(cache);
    cache_set_active(cache, true);
}

TestSuite(shared, .init = setup_shared, .fini = teardown);

/* The tier's entries, summed over the shards. */
static size_t entries(void)
{
    struct cache_figures f;
    cache_figures(cache, &f);
    return f.entries;
}

Test(shared, keys_spread_over_the_shards_are_each_served_and_invalidated)
{
    char line[32];
    for (int i = 0; i < 200; i++) {
        snprintf(line, sizeof(line), "GET k%d", i);
        cr_assert(fill_in(&DB0, line, "$1\r\nv\r\n"), "%s", line);
    }
    struct cache_figures f;
    cache_figures(cache, &f);
    cr_assert_eq(f.entries, 200);
    cr_assert_eq(f.max_bytes, (size_t)cfg.cache_max_memory, "the shards share the budget");
    for (int i = 0; i < 200; i++) {
        snprintf(line, sizeof(line), "GET k%d", i);
        cr_assert(hits(&DB0, line), "%s", line);
    }
    write_through("DEL k7 k150");
    cache_invalidate(cache, "k42", 3, 0);
    cr_assert_eq(entries(), 197);
    cr_assert_not(hits(&DB0, "GET k7"));
    cr_assert_not(hits(&DB0, "GET k150"));
    cr_assert_not(hits(&DB0, "GET k42"));
    cr_assert(hits(&DB0, "GET k8"));
    cache_flush(cache);
    cr_assert_eq(entries(), 0, "a flush empties every shard");
}

Test(shared, a_write_of_unknown_keys_holds_back_fills_in_every_shard)
{
    struct cache_plan script = plan_of("EVAL x 0", &DB0, 0);
    char line[32];
    for (int i = 0; i < 50; i++) {
        snprintf(line, sizeof(line), "GET s%d", i);
        cr_assert_not(fill_in(&DB0, line, "$1\r\nv\r\n"));
    }
    cr_assert_eq(entries(), 0, "a fill was stored while the script was in flight");
    cache_writes_done(cache, &script.writes);
    cr_assert(fill_in(&DB0, "GET s3", "$1\r\nv\r\n"));
    cr_assert_eq(entries(), 1);
}

Test(shared, a_hit_is_a_copy_that_outlives_the_entry)
{
    cr_assert(fill_in(&DB0, "GET k", "$1\r\nv\r\n"));
    struct cache_plan plan = plan_of("GET k", &DB0, 0);
    cr_assert(plan.hit);
    struct cache *mine = cache, *other = cache_create(&cfg, policy, store); /* a second worker */
    cr_assert_not_null(other);
    cache_set_active(other, true);
    cache = other;
    write_through("SET k w");                         /* frees the entry */
    cr_assert(fill_in(&DB0, "GET k", "$1\r\nw\r\n")); /* likely in its memory */
    cache = mine;
    cache_destroy(&other);
    cr_assert_eq(plan.view.len, 7);
    cr_assert(memcmp(plan.view.reply, "$1\r\nv\r\n", 7) == 0);
}

Test(shared, a_key_is_dropped_in_every_database_of_every_worker)
{
    static const struct lane DB3 = {3, 2};
    cr_assert(fill_in(&DB0, "GET k", "$1\r\nv\r\n"));
    struct cache *other = cache_create(&cfg, policy, store); /* a second worker */
    cr_assert_not_null(other);
    cache_set_active(other, true);
    struct cache *mine = cache;
    cache = other;
    cr_assert(fill_in(&DB3, "GET k", "$1\r\nw\r\n"));
    cr_assert(hits(&DB0, "GET k"), "filled by the other worker, served by this one");
    cache = mine;
    cache_invalidate(cache, "k", 1, 0);
    cr_assert_eq(entries(), 0, "database 3, first filled by the other worker, kept its entry");
    cache_destroy(&other);
}

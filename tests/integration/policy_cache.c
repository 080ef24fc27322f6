/* policy_cache.c - end-to-end tests of the YAML policy's cache and
 * invalidation rules (spec: policy-spec.md, engine contract: policy/policy.h)
 * against a real redis-server: cache rules (bypass, fixed TTL, admission,
 * max_entry, compression); invalidation rules fired through the proxy and by
 * writes made directly on Redis; per-rule statistics.
 *
 * Each test writes its own config file with a `policy:` section and starts
 * the proxy with --config on it (harness/policy.h). Unless a test needs
 * tracking, the proxy runs with cache.tracking=false so that only the policy
 * can explain what the tier serves: a value written directly on Redis and
 * still served stale proves the entry came from the tier, a fresh value
 * proves it did not.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <unistd.h>

#include "harness/bytes.h"
#include "harness/clock.h"
#include "harness/fixtures.h"
#include "harness/policy.h"
#include "harness/proxy.h"
#include "harness/redis.h"
#include "harness/sock.h"

TestSuite(policy, .init = fixture_redis, .fini = fixture_policy_stop, .timeout = 90);

/* Waits until the proxy's tier is active (the subscriber is up and redirected). */
static void wait_active(int fd)
{
    for (int i = 0; proxy_stat(fd, "cache_active") != 1; i++) {
        cr_assert(i < HARNESS_TIMEOUT_MS / 25, "the tier never became active");
        harness_sleep_ms(25);
    }
}

/* ---- 6. cache rules ---------------------------------------------------------------- */

Test(policy, bypass_rule_never_serves_from_the_tier)
{
    start_with_policy("policy:\n"
                      "  cache:\n"
                      "    - name: live\n"
                      "      keys: \"live:*\"\n"
                      "      cache: false\n",
                      NO_TRACKING);
    redis_call_expect(&fx_redis, "SET live:1 a", "+OK\r\n");
    redis_call_expect(&fx_redis, "SET other a", "+OK\r\n");
    int c = sock_connect_or_fail(fx_proxy.port);
    long long hits = proxy_stat(c, "hits");
    for (int i = 0; i < 3; i++)
        sock_call_expect(c, "GET live:1", 1, "$1\r\na\r\n");
    cr_assert_eq(proxy_stat(c, "hits"), hits, "a bypassed key was served from the tier");
    rule_expect(c, "cache", "live", 0, 3, 0, 0);
    /* Fresh after a direct write, although tracking is off. */
    redis_call_expect(&fx_redis, "SET live:1 b", "+OK\r\n");
    sock_call_expect(c, "GET live:1", 1, "$1\r\nb\r\n");
    rule_expect(c, "cache", "live", 0, 4, 0, 0);
    /* A key outside the rule is cached: the same steps serve it stale. */
    cache_key(c, "GET other", "$1\r\na\r\n");
    redis_call_expect(&fx_redis, "SET other b", "+OK\r\n");
    sock_call_expect(c, "GET other", 1, "$1\r\na\r\n");
    rule_expect(c, "cache", "live", 0, 4, 0, 0);
    close(c);
    proxy_finish(&fx_proxy);
}

Test(policy, fixed_ttl_rule_bounds_staleness_of_its_keys_only)
{
    start_with_policy("policy:\n"
                      "  cache:\n"
                      "    - name: short\n"
                      "      keys: \"short:*\"\n"
                      "      ttl: 1s\n",
                      NO_TRACKING); /* cache.ttl stays 5m */
    redis_call_expect(&fx_redis, "SET short:1 old", "+OK\r\n");
    redis_call_expect(&fx_redis, "SET long:1 old", "+OK\r\n");
    int c = sock_connect_or_fail(fx_proxy.port);
    cache_key(c, "GET short:1", "$3\r\nold\r\n");
    cache_key(c, "GET long:1", "$3\r\nold\r\n");
    redis_call_expect(&fx_redis, "SET short:1 new", "+OK\r\n");
    redis_call_expect(&fx_redis, "SET long:1 new", "+OK\r\n");
    /* Within the rule's TTL the stale value is served: it is the tier's. */
    long long hits = proxy_stat(c, "hits");
    sock_call_expect(c, "GET short:1", 1, "$3\r\nold\r\n");
    cr_assert_eq(proxy_stat(c, "hits"), hits + 1);
    /* After it, the new one; a key under cache.ttl (5m) is still stale. */
    sock_read_until(c, "GET short:1", "$3\r\nnew\r\n");
    sock_call_expect(c, "GET long:1", 1, "$3\r\nold\r\n");
    close(c);
    proxy_finish(&fx_proxy);
}

Test(policy, admission_fills_only_from_the_nth_read)
{
    start_with_policy("policy:\n"
                      "  cache:\n"
                      "    - name: warm\n"
                      "      keys: \"warm:*\"\n"
                      "      admit: {reads: 3, window: 10s}\n",
                      NO_TRACKING);
    redis_call_expect(&fx_redis, "SET warm:1 v1", "+OK\r\n");
    int c = sock_connect_or_fail(fx_proxy.port);
    long long fills = proxy_stat(c, "fills");
    sock_call_expect(c, "GET warm:1", 1, "$2\r\nv1\r\n"); /* read 1 */
    sock_call_expect(c, "GET warm:1", 1, "$2\r\nv1\r\n"); /* read 2 */
    cr_assert_eq(proxy_stat(c, "fills"), fills, "filled before the third read");
    /* Neither read filled: a direct write is seen at once. */
    redis_call_expect(&fx_redis, "SET warm:1 v2", "+OK\r\n");
    sock_call_expect(c, "GET warm:1", 1, "$2\r\nv2\r\n"); /* read 3: admitted, fills */
    cr_assert_eq(proxy_stat(c, "fills"), fills + 1, "the third read did not fill");
    /* It did fill: the next write made elsewhere is not seen (tracking off). */
    redis_call_expect(&fx_redis, "SET warm:1 v3", "+OK\r\n");
    sock_call_expect(c, "GET warm:1", 1, "$2\r\nv2\r\n"); /* read 4: a hit */
    rule_expect(c, "cache", "warm", 1, 3, 0, 0);
    /* A key outside the rule is admitted at once. */
    redis_call_expect(&fx_redis, "SET cold:1 a", "+OK\r\n");
    sock_call_expect(c, "GET cold:1", 1, "$1\r\na\r\n");
    cr_assert_eq(proxy_stat(c, "fills"), fills + 2);
    close(c);
    proxy_finish(&fx_proxy);
}

Test(policy, max_entry_rule_keeps_big_replies_out)
{
    start_with_policy("policy:\n"
                      "  cache:\n"
                      "    - name: small\n"
                      "      keys: \"small:*\"\n"
                      "      max_entry: 100b\n",
                      NO_TRACKING);
    char *v200 = filler(200, 'a');
    redis_set_raw("small:big", v200, 200);
    redis_set_raw("other:big", v200, 200);
    redis_call_expect(&fx_redis, "SET small:tiny old", "+OK\r\n");
    int c = sock_connect_or_fail(fx_proxy.port);
    struct bytes want = {0}, get_small = {0}, get_other = {0};
    bytes_append_bulk(&want, v200, 200);
    req_add(&get_small, "GET", "small:big", NULL);
    req_add(&get_other, "GET", "other:big", NULL);
    for (int i = 0; i < 2; i++) {
        exchange_expect(c, &get_small, 1, &want, "GET small:big");
        exchange_expect(c, &get_other, 1, &want, "GET other:big");
        sock_call_expect(c, "GET small:tiny", 1, "$3\r\nold\r\n");
    }
    redis_call_expect(&fx_redis, "SET small:big new", "+OK\r\n");
    redis_call_expect(&fx_redis, "SET other:big new", "+OK\r\n");
    redis_call_expect(&fx_redis, "SET small:tiny new", "+OK\r\n");
    sock_call_expect(c, "GET small:big", 1, "$3\r\nnew\r\n");  /* never cached */
    exchange_expect(c, &get_other, 1, &want, "GET other:big"); /* cache.max_entry 1mb */
    sock_call_expect(c, "GET small:tiny", 1, "$3\r\nold\r\n"); /* under the rule's limit */
    free(v200);
    bytes_free(&want);
    bytes_free(&get_small);
    bytes_free(&get_other);
    close(c);
    proxy_finish(&fx_proxy);
}

Test(policy, compressed_entries_are_served_byte_exact)
{
    start_with_policy("policy:\n"
                      "  cache:\n"
                      "    - name: blobs\n"
                      "      keys: \"blob:*\"\n"
                      "      compress_over: 1kb\n",
                      (const char *const[]){"cache.tracking=false", "upstream.timeout=2s", NULL});
    enum { SIZE = 100 * 1024 };
    char *value = filler(SIZE, 'z');
    redis_set_raw("blob:1", value, SIZE);
    redis_set_raw("raw:1", value, SIZE);
    struct bytes want = {0};
    bytes_append_bulk(&want, value, SIZE);
    int c = sock_connect_or_fail(fx_proxy.port);
    cr_assert_eq(proxy_stat(c, "entries"), 0);
    long long empty = proxy_stat(c, "bytes"); /* the tier's own overhead */
    struct bytes req = {0};
    req_add(&req, "GET", "blob:1", NULL);
    exchange_expect(c, &req, 1, &want, "GET blob:1 (fill)");
    cr_assert_eq(proxy_stat(c, "entries"), 1, "GET blob:1 did not fill");
    long long bytes = proxy_stat(c, "bytes");
    cr_assert_lt(bytes - empty, SIZE / 4,
                 "a compressible %d-byte reply takes %lld bytes of the tier", SIZE, bytes - empty);
    /* Served from the tier while Redis cannot answer, byte for byte. */
    long long hits = proxy_stat(c, "hits");
    redis_pause(&fx_redis);
    exchange_expect(c, &req, 1, &want, "GET blob:1 (hit, Redis paused)");
    exchange_expect(c, &req, 1, &want, "GET blob:1 (hit again)");
    cr_assert_eq(proxy_stat(c, "hits"), hits + 2);
    redis_resume(&fx_redis);
    rule_expect(c, "cache", "blobs", 2, 1, 0, 0);
    /* The same reply under no compression does take its size. */
    req.len = 0;
    req_add(&req, "GET", "raw:1", NULL);
    exchange_expect(c, &req, 1, &want, "GET raw:1 (fill)");
    cr_assert_eq(proxy_stat(c, "entries"), 2, "GET raw:1 did not fill");
    cr_assert_gt(proxy_stat(c, "bytes"), bytes + SIZE);
    free(value);
    bytes_free(&want);
    bytes_free(&req);
    close(c);
    proxy_finish(&fx_proxy);
}

/* ---- 7. invalidation rules ---------------------------------------------------------- */

static const char EMBEDDINGS_YAML[] = "policy:\n"
                                      "  invalidate:\n"
                                      "    - name: model-embeddings\n"
                                      "      when: \"model:{m}\"\n"
                                      "      drop: \"embeddings:{m}:*\"\n"
                                      "    - name: model-deleted\n"
                                      "      when: \"model:{m}\"\n"
                                      "      commands: [del]\n"
                                      "      drop: [\"embeddings:{m}:*\", \"meta:{m}\"]\n";

Test(policy, invalidation_rule_drops_its_targets_on_a_write_through_the_proxy)
{
    start_with_policy(EMBEDDINGS_YAML, NO_TRACKING);
    redis_call_expect(&fx_redis, "MSET embeddings:1:a a1 embeddings:1:b b1 embeddings:2:a c1",
                      "+OK\r\n");
    int c = sock_connect_or_fail(fx_proxy.port);
    cache_key(c, "GET embeddings:1:a", "$2\r\na1\r\n");
    cache_key(c, "GET embeddings:1:b", "$2\r\nb1\r\n");
    cache_key(c, "GET embeddings:2:a", "$2\r\nc1\r\n");
    redis_call_expect(&fx_redis, "MSET embeddings:1:a a2 embeddings:1:b b2 embeddings:2:a c2",
                      "+OK\r\n");
    /* Cached: the direct writes are not seen (tracking is off). */
    sock_call_expect(c, "GET embeddings:1:a\nGET embeddings:1:b\nGET embeddings:2:a", 3,
                     "$2\r\na1\r\n$2\r\nb1\r\n$2\r\nc1\r\n");
    /* A SET of model:1 drops embeddings:1:* and nothing else. */
    sock_call_expect(c, "SET model:1 v", 1, "+OK\r\n");
    sock_call_expect(c, "GET embeddings:1:a\nGET embeddings:1:b\nGET embeddings:2:a", 3,
                     "$2\r\na2\r\n$2\r\nb2\r\n$2\r\nc1\r\n");
    rule_expect(c, "invalidate", "model-embeddings", 0, 0, 0, 1);
    rule_expect(c, "invalidate", "model-deleted", 0, 0, 0, 0); /* its filter is DEL */
    /* DEL model:2 fires both rules. */
    redis_call_expect(&fx_redis, "SET model:2 v", "+OK\r\n"); /* tracking is off */
    sock_call_expect(c, "DEL model:2", 1, ":1\r\n");
    sock_call_expect(c, "GET embeddings:2:a", 1, "$2\r\nc2\r\n");
    rule_expect(c, "invalidate", "model-embeddings", 0, 0, 0, 2);
    rule_expect(c, "invalidate", "model-deleted", 0, 0, 0, 1);
    /* A write of a key no rule names fires nothing and drops nothing. */
    cache_key(c, "GET embeddings:1:a", "$2\r\na2\r\n");
    redis_call_expect(&fx_redis, "SET embeddings:1:a a3", "+OK\r\n");
    sock_call_expect(c, "SET models 1\nSET model: 1\nGET embeddings:1:a", 3,
                     "+OK\r\n+OK\r\n$2\r\na2\r\n");
    rule_expect(c, "invalidate", "model-embeddings", 0, 0, 0, 2);
    close(c);
    proxy_finish(&fx_proxy);
}

Test(policy, invalidation_rule_fires_on_a_write_made_directly_on_redis)
{
    start_with_policy("policy:\n"
                      "  invalidate:\n"
                      "    - name: model-embeddings\n"
                      "      when: \"model:{m}\"\n"
                      "      drop: \"embeddings:{m}:*\"\n",
                      (const char *const[]){"cache.tracking=true", NULL});
    int a = sock_connect_or_fail(fx_proxy.port);
    int b = sock_connect_or_fail(fx_proxy.port);
    wait_active(a);
    redis_call_expect(&fx_redis, "MSET embeddings:1:a a1 embeddings:2:a c1", "+OK\r\n");
    cache_key(a, "GET embeddings:1:a", "$2\r\na1\r\n");
    cache_key(a, "GET embeddings:2:a", "$2\r\nc1\r\n");
    cr_assert_eq(rule_counts(a, "invalidate", "model-embeddings").invalidations, 0);
    /* Only model:1 changes, elsewhere: no tracking message names an embeddings key. */
    redis_call_expect(&fx_redis, "SET model:1 v2", "+OK\r\n");
    for (int i = 0; rule_counts(a, "invalidate", "model-embeddings").invalidations < 1; i++) {
        cr_assert(i < HARNESS_TIMEOUT_MS / 10, "the rule never fired on a direct write");
        harness_sleep_ms(10);
    }
    /* With Redis paused: embeddings:2:a is still served from the tier ... */
    long long hits = proxy_stat(a, "hits");
    redis_pause(&fx_redis);
    sock_call_expect(a, "GET embeddings:2:a", 1, "$2\r\nc1\r\n");
    cr_assert_eq(proxy_stat(a, "hits"), hits + 1);
    /* ... while embeddings:1:a is forwarded to Redis: no reply until it runs. */
    static const char GET1[] = "*2\r\n$3\r\nGET\r\n$14\r\nembeddings:1:a\r\n";
    struct bytes in = {0};
    cr_assert_eq(sock_exchange(b, GET1, sizeof(GET1) - 1, &in, NULL, 0, HARNESS_TIMEOUT_MS),
                 SOCK_DONE);
    /* Times out ("Redis received 0 of the 34 bytes") if it was served locally. */
    redis_wait_unread(&fx_redis, sizeof(GET1) - 1);
    cr_assert_eq(proxy_stat(a, "hits"), hits + 1, "embeddings:1:a was served from the tier");
    cr_assert_eq(in.len, 0, "a reply while Redis is paused: %s", bytes_show(&in));
    redis_resume(&fx_redis);
    cr_assert_eq(sock_read_replies(b, &in, 0, 1, HARNESS_TIMEOUT_MS), SOCK_DONE);
    cr_assert(bytes_equal_str(&in, "$2\r\na1\r\n"), "GET embeddings:1:a: %s", bytes_show(&in));
    cr_assert_eq(proxy_stat(a, "hits"), hits + 1);
    cr_assert_geq(rule_counts(a, "invalidate", "model-embeddings").invalidations, 1);
    bytes_free(&in);
    close(a);
    close(b);
    proxy_finish(&fx_proxy);
}

/* ---- 8. per-rule statistics ------------------------------------------------------- */

Test(policy, per_rule_statistics_count_what_happened)
{
    start_with_policy("policy:\n"
                      "  validate:\n"
                      "    - name: no-x\n"
                      "      keys: \"x:*\"\n"
                      "      action: deny\n"
                      "    - name: ro\n"
                      "      keys: \"ro:*\"\n"
                      "      action: read-only\n"
                      "  cache:\n"
                      "    - name: cached\n"
                      "      keys: \"c:*\"\n"
                      "    - name: bypass\n"
                      "      keys: \"b:*\"\n"
                      "      cache: false\n"
                      "  invalidate:\n"
                      "    - name: w-drops-c\n"
                      "      when: \"w:{id}\"\n"
                      "      drop: \"c:{id}\"\n",
                      NO_TRACKING);
    int c = sock_connect_or_fail(fx_proxy.port);
    rule_expect(c, "validate", "no-x", 0, 0, 0, 0);
    rule_expect(c, "cache", "cached", 0, 0, 0, 0);
    rule_expect(c, "invalidate", "w-drops-c", 0, 0, 0, 0);
    /* Rejections: one per request, however many keys. */
    const char *denied = rejection("no-x", "command 'set' is denied on these keys");
    sock_call_expect(c, "SET x:1 v", 1, denied);
    sock_call_expect(c, "MSET x:1 v x:2 w", 1,
                     rejection("no-x", "command 'mset' is denied on these keys"));
    sock_call_expect(c, "GET x:1", 1, rejection("no-x", "command 'get' is denied on these keys"));
    sock_call_expect(c, "GET ro:1\nSET ro:1 v", 2,
                     "$-1\r\n-ERR policy ro: keys matching this rule are read-only\r\n");
    rule_expect(c, "validate", "no-x", 0, 0, 3, 0);
    rule_expect(c, "validate", "ro", 0, 0, 1, 0);
    /* Cache: a miss that fills, then hits; a bypassed read is a miss. */
    redis_call_expect(&fx_redis, "MSET c:1 one b:1 two", "+OK\r\n");
    sock_call_expect(c, "GET c:1", 1, "$3\r\none\r\n");
    sock_call_expect(c, "GET c:1\nGET c:1", 2, "$3\r\none\r\n$3\r\none\r\n");
    sock_call_expect(c, "GET b:1\nGET b:1", 2, "$3\r\ntwo\r\n$3\r\ntwo\r\n");
    rule_expect(c, "cache", "cached", 2, 1, 0, 0);
    rule_expect(c, "cache", "bypass", 0, 2, 0, 0);
    /* Invalidation: each write of w:1 fires once; the next read misses. */
    sock_call_expect(c, "SET w:1 a", 1, "+OK\r\n");
    sock_call_expect(c, "SET w:1 b", 1, "+OK\r\n");
    rule_expect(c, "invalidate", "w-drops-c", 0, 0, 0, 2);
    sock_call_expect(c, "GET c:1", 1, "$3\r\none\r\n");
    sock_call_expect(c, "GET c:1", 1, "$3\r\none\r\n");
    rule_expect(c, "cache", "cached", 3, 2, 0, 0);
    /* Nothing else moved. */
    rule_expect(c, "validate", "no-x", 0, 0, 3, 0);
    rule_expect(c, "validate", "ro", 0, 0, 1, 0);
    rule_expect(c, "cache", "bypass", 0, 2, 0, 0);
    close(c);
    proxy_finish(&fx_proxy);
}

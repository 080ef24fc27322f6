/* End-to-end tests of the local tier in the request path, against a real
 * redis-server: reads served with no upstream round trip, writes through the
 * proxy invalidating at once (read-your-writes across connections, also for
 * transactions, scripts and FLUSHALL), every variant of a key dropped
 * together, expiry bounded by the key's TTL in Redis, and the TTL-bounded
 * staleness of writes made elsewhere when tracking is off. Tracking itself is
 * exercised in tracking.c. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness/bytes.h"
#include "harness/clock.h"
#include "harness/fixtures.h"
#include "harness/proc.h"
#include "harness/proxy.h"
#include "harness/redis.h"
#include "harness/sock.h"

TestSuite(cache, .init = fixture_redis, .fini = fixture_stop, .timeout = 60);

/* A proxy whose tier serves at once (no tracking), with extra settings. */
static void start_caching_proxy(const char *extra)
{
    static const char *sets[4];
    sets[0] = "cache.tracking=false";
    sets[1] = extra;
    sets[2] = NULL;
    proxy_start(&fx_proxy, fx_redis.port, sets);
}

Test(cache, hits_are_served_while_redis_is_paused)
{
    harness_require_proxy();
    start_caching_proxy("upstream.timeout=2s");
    int c = sock_connect_or_fail(fx_proxy.port);
    /* A read pipelined behind a write of its key is not cached: it was sent
     * before the write completed. Reads sent after it are. */
    sock_call_expect(c, "SET k v\nHSET h f 1", 2, "+OK\r\n:1\r\n");
    sock_call_expect(c, "GET k\nHGET h f\nGET missing", 3, "$1\r\nv\r\n$1\r\n1\r\n$-1\r\n");
    long long hits = proxy_stat(c, "hits");
    redis_pause(&fx_redis);
    /* Pipelined, in order, with no upstream: Redis cannot answer now. */
    sock_call_expect(c, "GET k\nHGET h f\nGET missing\nGET k", 4,
                     "$1\r\nv\r\n$1\r\n1\r\n$-1\r\n$1\r\nv\r\n");
    cr_assert_eq(proxy_stat(c, "hits"), hits + 4);
    redis_resume(&fx_redis);
    close(c);
    proxy_finish(&fx_proxy);
}

Test(cache, writes_through_the_proxy_are_read_at_once_on_other_connections)
{
    harness_require_proxy();
    start_caching_proxy(NULL);
    int a = sock_connect_or_fail(fx_proxy.port);
    int b = sock_connect_or_fail(fx_proxy.port);
    char line[64], want[64];
    for (int i = 0; i < 300; i++) {
        snprintf(line, sizeof(line), "GET k\nGET k");
        struct bytes in = {0};
        sock_call_or_fail(a, line, 2, &in); /* fills, then hits */
        bytes_free(&in);
        snprintf(line, sizeof(line), "SET k v%d", i);
        sock_call_expect(b, line, 1, "+OK\r\n");
        snprintf(want, sizeof(want), "$%zu\r\nv%d\r\n", strlen(line) - 6, i);
        sock_call_expect(a, "GET k", 1, want);
    }
    cr_assert_gt(proxy_stat(a, "hits"), 250, "the reads were not served from the tier");
    close(a);
    close(b);
    proxy_finish(&fx_proxy);
}

Test(cache, every_variant_of_a_key_is_dropped_by_a_write)
{
    harness_require_proxy();
    start_caching_proxy(NULL);
    int c = sock_connect_or_fail(fx_proxy.port);
    sock_call_expect(c, "HSET h a 1 b 2\nHGET h a\nHGETALL h\nHLEN h", 4,
                     ":2\r\n$1\r\n1\r\n*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n:2\r\n");
    sock_call_expect(c, "HSET h a 9 c 3\nHGET h a\nHGETALL h\nHLEN h", 4,
                     ":1\r\n$1\r\n9\r\n*6\r\n$1\r\na\r\n$1\r\n9\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\n"
                     "c\r\n$1\r\n3\r\n:3\r\n");
    close(c);
    proxy_finish(&fx_proxy);
}

Test(cache, transactions_scripts_and_flushes_invalidate)
{
    harness_require_proxy();
    start_caching_proxy(NULL);
    int a = sock_connect_or_fail(fx_proxy.port);
    int b = sock_connect_or_fail(fx_proxy.port);
    sock_call_expect(a, "SET k 1", 1, "+OK\r\n");
    sock_call_expect(a, "GET k\nGET k", 2, "$1\r\n1\r\n$1\r\n1\r\n");
    sock_call_expect(b, "MULTI\nSET k 2\nEXEC", 3, "+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n");
    sock_call_expect(a, "GET k\nGET k", 2, "$1\r\n2\r\n$1\r\n2\r\n");
    /* A script that declares its key, and one that does not. */
    sock_call_expect(b, "EVAL \"return redis.call('SET', KEYS[1], '3')\" 1 k", 1, "+OK\r\n");
    sock_call_expect(a, "GET k\nGET k", 2, "$1\r\n3\r\n$1\r\n3\r\n");
    sock_call_expect(b, "EVAL \"return redis.call('SET', 'k', '4')\" 0", 1, "+OK\r\n");
    sock_call_expect(a, "GET k\nGET k", 2, "$1\r\n4\r\n$1\r\n4\r\n");
    sock_call_expect(b, "FLUSHALL", 1, "+OK\r\n");
    sock_call_expect(a, "GET k", 1, "$-1\r\n");
    /* A cached nil is dropped when the key is created. */
    sock_call_expect(b, "SET k 5", 1, "+OK\r\n");
    sock_call_expect(a, "GET k", 1, "$1\r\n5\r\n");
    close(a);
    close(b);
    proxy_finish(&fx_proxy);
}

Test(cache, entries_do_not_outlive_the_key_ttl)
{
    harness_require_proxy();
    start_caching_proxy("cache.ttl=1m");
    int c = sock_connect_or_fail(fx_proxy.port);
    sock_call_expect(c, "SET k v PX 300", 1, "+OK\r\n");
    sock_call_expect(c, "GET k", 1, "$1\r\nv\r\n"); /* fills */
    sock_call_expect(c, "GET k", 1, "$1\r\nv\r\n"); /* hits */
    cr_assert_geq(proxy_stat(c, "hits"), 1);
    harness_sleep_ms(450);
    sock_call_expect(c, "GET k", 1, "$-1\r\n");
    close(c);
    proxy_finish(&fx_proxy);
}

Test(cache, without_tracking_external_writes_are_seen_within_cache_ttl)
{
    harness_require_proxy();
    start_caching_proxy("cache.ttl=300ms");
    int c = sock_connect_or_fail(fx_proxy.port);
    sock_call_expect(c, "SET k old", 1, "+OK\r\n");
    sock_call_expect(c, "GET k", 1, "$3\r\nold\r\n");
    redis_call_expect(&fx_redis, "SET k new", "+OK\r\n");
    sock_call_expect(c, "GET k", 1, "$3\r\nold\r\n"); /* the documented staleness */
    harness_sleep_ms(400);
    sock_call_expect(c, "GET k", 1, "$3\r\nnew\r\n");
    close(c);
    proxy_finish(&fx_proxy);
}

Test(cache, disabled_tier_forwards_every_read)
{
    harness_require_proxy();
    start_caching_proxy("cache.enabled=false");
    int c = sock_connect_or_fail(fx_proxy.port);
    sock_call_expect(c, "SET k v\nGET k\nGET k", 3, "+OK\r\n$1\r\nv\r\n$1\r\nv\r\n");
    cr_assert_eq(proxy_stat(c, "cache_enabled"), 0);
    struct bytes in = {0};
    sock_call_or_fail(c, "NEARCACHE STATS", 1, &in);
    bytes_puts(&in, "");
    cr_assert_not_null(strstr(in.data, "\ntracking:off\r\n"), "%s", bytes_show(&in));
    bytes_free(&in);
    cr_assert_eq(proxy_stat(c, "hits"), 0);
    redis_call_expect(&fx_redis, "SET k w", "+OK\r\n");
    sock_call_expect(c, "GET k", 1, "$1\r\nw\r\n");
    close(c);
    proxy_finish(&fx_proxy);
}

Test(cache, nearcache_command_errors)
{
    harness_require_proxy();
    start_caching_proxy(NULL);
    int c = sock_connect_or_fail(fx_proxy.port);
    sock_call_expect(
        c, "NEARCACHE\nNEARCACHE FOO\nNEARCACHE STATS x\nNEARCACHE HOTKEYS 1 2", 4,
        PROXY_NEARCACHE_USAGE PROXY_NEARCACHE_USAGE PROXY_NEARCACHE_USAGE PROXY_NEARCACHE_USAGE);
    close(c);
    proxy_finish(&fx_proxy);
}

/* ---- writes made elsewhere, through CLIENT TRACKING ------------------------- */

/* Waits until the proxy's tier is active (the subscriber is up and redirected). */
static void wait_active(int fd)
{
    for (int i = 0; proxy_stat(fd, "cache_active") != 1; i++) {
        cr_assert(i < 200, "the tier never became active");
        harness_sleep_ms(25);
    }
}

/* Caches GET k through fd. */
static void cache_key(int fd, const char *want)
{
    cache_read(fd, "GET k", want);
}

/* Waits until NEARCACHE STATS says tracking:state. */
static void wait_tracking(int fd, const char *state)
{
    char line[64];
    snprintf(line, sizeof(line), "\ntracking:%s\r\n", state);
    struct bytes in = {0};
    for (int i = 0;; i++) {
        in.len = 0;
        sock_call_or_fail(fd, "NEARCACHE STATS", 1, &in);
        bytes_puts(&in, "");
        if (strstr(in.data, line) != NULL)
            break;
        cr_assert(i < 400, "tracking never became %s: %s", state, bytes_show(&in));
        harness_sleep_ms(25);
    }
    bytes_free(&in);
}

/* Kills the proxy's invalidation subscriber on Redis and waits until the
 * proxy, asked through fd, has counted the loss. */
static void kill_subscriber(int fd)
{
    long long losses = proxy_stat(fd, "tracking_losses");
    redis_kill_subscribers(&fx_redis);
    for (int i = 0; proxy_stat(fd, "tracking_losses") == losses; i++) {
        cr_assert(i < 400, "the loss was never seen");
        harness_sleep_ms(25);
    }
}

Test(cache, writes_made_elsewhere_are_invalidated_through_tracking)
{
    harness_require_proxy();
    proxy_start(&fx_proxy, fx_redis.port, NULL);
    int c = sock_connect_or_fail(fx_proxy.port);
    wait_active(c);
    struct bytes in = {0};
    sock_call_or_fail(c, "NEARCACHE STATS", 1, &in);
    bytes_puts(&in, "");
    cr_assert_not_null(strstr(in.data, "\ntracking:on\r\n"), "%s", bytes_show(&in));
    bytes_free(&in);
    char set[64], want[64];
    for (int i = 0; i < 20; i++) {
        snprintf(set, sizeof(set), "SET k v%d", i);
        snprintf(want, sizeof(want), "$%zu\r\nv%d\r\n", strlen(set) - 6, i);
        redis_call_expect(&fx_redis, set, "+OK\r\n");
        sock_read_until(c, "GET k", want);
        cache_key(c, want);
    }
    redis_call_expect(&fx_redis, "FLUSHALL", "+OK\r\n");
    sock_read_until(c, "GET k", "$-1\r\n");
    cr_assert_gt(proxy_stat(c, "invalidated_entries"), 0);
    close(c);
    proxy_finish(&fx_proxy);
}

Test(cache, subscriber_killed_then_back_keeps_the_tier_coherent)
{
    harness_require_proxy();
    proxy_start(&fx_proxy, fx_redis.port, NULL);
    int c = sock_connect_or_fail(fx_proxy.port);
    wait_active(c);
    redis_call_expect(&fx_redis, "SET k before", "+OK\r\n");
    sock_read_until(c, "GET k", "$6\r\nbefore\r\n");
    cache_key(c, "$6\r\nbefore\r\n");
    redis_kill_subscribers(&fx_redis);
    /* Written while the subscriber may be down: never served stale after. */
    redis_call_expect(&fx_redis, "SET k after", "+OK\r\n");
    sock_read_until(c, "GET k", "$5\r\nafter\r\n");
    wait_active(c);
    cache_key(c, "$5\r\nafter\r\n");
    redis_call_expect(&fx_redis, "SET k again", "+OK\r\n");
    sock_read_until(c, "GET k", "$5\r\nagain\r\n");
    close(c);
    proxy_finish(&fx_proxy);
}

Test(cache, two_proxies_in_front_of_one_redis_stay_coherent)
{
    harness_require_proxy();
    struct proxy other = {0};
    proxy_start(&fx_proxy, fx_redis.port, NULL);
    proxy_start(&other, fx_redis.port, NULL);
    int a = sock_connect_or_fail(fx_proxy.port);
    int b = sock_connect_or_fail(other.port);
    wait_active(a);
    wait_active(b);
    sock_call_expect(a, "SET k 1", 1, "+OK\r\n");
    sock_read_until(b, "GET k", "$1\r\n1\r\n");
    cache_key(b, "$1\r\n1\r\n");
    sock_call_expect(a, "SET k 2", 1, "+OK\r\n");
    sock_read_until(b, "GET k", "$1\r\n2\r\n");
    cache_key(a, "$1\r\n2\r\n");
    sock_call_expect(b, "DEL k", 1, ":1\r\n");
    sock_read_until(a, "GET k", "$-1\r\n");
    close(a);
    close(b);
    proxy_stop_clean(&other);
    proxy_finish(&fx_proxy);
}

Test(cache, mget_mixes_hits_and_misses)
{
    harness_require_proxy();
    start_caching_proxy("upstream.timeout=2s");
    int c = sock_connect_or_fail(fx_proxy.port);
    redis_call_expect(&fx_redis, "MSET a 1 b 22 c 333", "+OK\r\n");
    redis_call_expect(&fx_redis, "HSET h f v", ":1\r\n");
    sock_call_expect(c, "GET a", 1, "$1\r\n1\r\n");
    /* a from the tier; b, c, h and the missing z fetched in one MGET. */
    static const char WANT[] =
        "*6\r\n$1\r\n1\r\n$2\r\n22\r\n$3\r\n333\r\n$-1\r\n$-1\r\n$1\r\n1\r\n";
    sock_call_expect(c, "MGET a b c h z a", 1, WANT);
    struct bytes direct = redis_call(&fx_redis, "MGET a b c h z a");
    cr_assert(bytes_equal_str(&direct, WANT), "direct: %s", bytes_show(&direct));
    bytes_free(&direct);
    /* The values it fetched filled the tier: served while Redis is paused. */
    long long hits = proxy_stat(c, "hits");
    redis_pause(&fx_redis);
    sock_call_expect(c, "MGET c b a\nGET b", 2,
                     "*3\r\n$3\r\n333\r\n$2\r\n22\r\n$1\r\n1\r\n$2\r\n22\r\n");
    cr_assert_eq(proxy_stat(c, "hits"), hits + 4);
    redis_resume(&fx_redis);
    /* A nil from MGET may be a hash: never cached as GET's reply. */
    sock_call_expect(c, "GET h", 1,
                     "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    sock_call_expect(c, "SET b 4", 1, "+OK\r\n");
    sock_call_expect(c, "MGET a b", 1, "*2\r\n$1\r\n1\r\n$1\r\n4\r\n");
    close(c);
    proxy_finish(&fx_proxy);
}

Test(cache, bcast_tracking_caches_only_keys_under_its_prefixes)
{
    harness_require_proxy();
    static const char *const sets[] = {"cache.tracking_prefixes=user:,session:", NULL};
    proxy_start(&fx_proxy, fx_redis.port, sets);
    int c = sock_connect_or_fail(fx_proxy.port);
    wait_active(c);
    redis_call_expect(&fx_redis, "SET user:1 a", "+OK\r\n");
    redis_call_expect(&fx_redis, "SET other b", "+OK\r\n");
    /* A key under a prefix is cached (after the SET's broadcast invalidation,
     * which may land after the first fill and drop it). */
    cache_read(c, "GET user:1", "$1\r\na\r\n");
    long long hits = proxy_stat(c, "hits");
    sock_call_expect(c, "GET user:1", 1, "$1\r\na\r\n");
    cr_assert_eq(proxy_stat(c, "hits"), hits + 1, "a key under a prefix stays cached");
    for (int i = 0; i < 3; i++)
        sock_call_expect(c, "GET other", 1, "$1\r\nb\r\n");
    cr_assert_eq(proxy_stat(c, "hits"), hits + 1, "a key outside the prefixes is not");
    /* Broadcast invalidations for the prefixes reach the tier. */
    redis_call_expect(&fx_redis, "SET user:1 z", "+OK\r\n");
    sock_read_until(c, "GET user:1", "$1\r\nz\r\n");
    struct bytes info = redis_call(&fx_redis, "CLIENT LIST");
    bytes_puts(&info, "");
    cr_assert_not_null(strstr(info.data, "flags=tB"), "no BCAST tracking: %s", bytes_show(&info));
    bytes_free(&info);
    close(c);
    proxy_finish(&fx_proxy);
}

/* After a stall of the proxy, the invalidation of a key written elsewhere and
 * a read of that key wait in their sockets together: the invalidation is
 * handled first, so the read is not answered from the tier. */
Test(cache, invalidation_waiting_beside_a_read_is_handled_first)
{
    harness_require_proxy();
    proxy_start(&fx_proxy, fx_redis.port, NULL);
    int c = sock_connect_or_fail(fx_proxy.port);
    wait_active(c);
    struct bytes in = {0}, get = {0};
    req_add(&get, "GET", "k", NULL);
    char set[32], want[32];
    for (int i = 0; i < 5; i++) {
        snprintf(want, sizeof(want), "$2\r\nv%d\r\n", i);
        snprintf(set, sizeof(set), "SET k v%d", i);
        redis_call_expect(&fx_redis, set, "+OK\r\n");
        sock_read_until(c, "GET k", want);
        cache_key(c, want);
        kill(fx_proxy.pid, SIGSTOP);
        snprintf(set, sizeof(set), "SET k w%d", i);
        redis_call_expect(&fx_redis, set, "+OK\r\n");
        harness_sleep_ms(50); /* the invalidation reaches the proxy's socket */
        in.len = 0;
        cr_assert(sock_exchange(c, get.data, get.len, &in, NULL, 0, HARNESS_TIMEOUT_MS) ==
                  SOCK_DONE);
        harness_sleep_ms(20);
        kill(fx_proxy.pid, SIGCONT);
        cr_assert(sock_read_replies(c, &in, 0, 1, HARNESS_TIMEOUT_MS) == SOCK_DONE);
        want[4] = 'w';
        cr_assert(bytes_equal_str(&in, want), "round %d: %s", i, bytes_show(&in));
    }
    bytes_free(&in);
    bytes_free(&get);
    close(c);
    proxy_finish(&fx_proxy);
}

/* The same with a backlog: 1,000 cached keys written elsewhere during the
 * stall, 60 KB of invalidations, more than one read of the subscriber's
 * socket takes: all are applied before the reads waiting beside them. */
Test(cache, a_backlog_of_invalidations_is_applied_before_reads)
{
    harness_require_proxy();
    proxy_start(&fx_proxy, fx_redis.port, NULL);
    int c = sock_connect_or_fail(fx_proxy.port);
    int d = sock_connect_or_fail(fx_redis.port);
    wait_active(c);
    struct bytes set_a = {0}, set_b = {0}, gets = {0}, in = {0};
    for (int i = 0; i < 1000; i++) {
        const char *sep = i > 0 ? "\n" : "";
        bytes_printf(&set_a, "%sSET k%d a", sep, i);
        bytes_printf(&set_b, "%sSET k%d b", sep, i);
        bytes_printf(&gets, "%sGET k%d", sep, i);
    }
    sock_call_or_fail(d, set_a.data, 1000, &in);
    /* c's connection fills only once Redis accepted its CLIENT TRACKING, which
     * can come after cache_active (over TLS, under load): wait for one fill */
    cache_read(c, "GET k0", "$1\r\na\r\n");
    sock_call_or_fail(c, gets.data, 1000, &in); /* fills */
    long long hits = proxy_stat(c, "hits");
    sock_call_or_fail(c, gets.data, 1000, &in);
    cr_assert_eq(proxy_stat(c, "hits"), hits + 1000, "not every key was cached");
    kill(fx_proxy.pid, SIGSTOP);
    sock_call_or_fail(d, set_b.data, 1000, &in);
    harness_sleep_ms(100);
    sock_call(c, "GET k999\nGET k0", 0, &in, HARNESS_TIMEOUT_MS);
    harness_sleep_ms(20);
    kill(fx_proxy.pid, SIGCONT);
    in.len = 0;
    cr_assert(sock_read_replies(c, &in, 0, 2, HARNESS_TIMEOUT_MS) == SOCK_DONE);
    cr_assert(bytes_equal_str(&in, "$1\r\nb\r\n$1\r\nb\r\n"), "%s", bytes_show(&in));
    bytes_free(&set_a);
    bytes_free(&set_b);
    bytes_free(&gets);
    bytes_free(&in);
    close(c);
    close(d);
    proxy_finish(&fx_proxy);
}

/* ---- the coherence state machine against a real Redis --------------------- */

/* A user that may not run CLIENT TRACKING: refused (TTL-bounded, entries kept
 * although writes made elsewhere are not reported, also across a loss of the
 * subscriber); once permitted, a probe brings coherence back, with the
 * entries filled meanwhile dropped. */
Test(cache, tracking_refused_then_permitted)
{
    harness_require_proxy();
    redis_call_expect(&fx_redis, "ACL SETUSER app on >pw ~* &* +@all -client|tracking", "+OK\r\n");
    static const char *const sets[] = {"upstream.username=app", "upstream.password=pw", NULL};
    proxy_start(&fx_proxy, fx_redis.port, sets);
    int c = sock_connect_or_fail(fx_proxy.port);
    wait_tracking(c, "refused");
    cr_assert_gt(proxy_stat(c, "tracking_refusals"), 0);
    redis_call_expect(&fx_redis, "SET k before", "+OK\r\n");
    cache_key(c, "$6\r\nbefore\r\n");
    redis_call_expect(&fx_redis, "SET k after", "+OK\r\n");
    sock_call_expect(c, "GET k", 1, "$6\r\nbefore\r\n"); /* stale within cache.ttl */
    /* Losing the subscriber changes nothing while refused. */
    kill_subscriber(c);
    wait_tracking(c, "refused");
    sock_call_expect(c, "GET k", 1, "$6\r\nbefore\r\n");
    redis_call_expect(&fx_redis, "ACL SETUSER app +client|tracking", "+OK\r\n");
    wait_tracking(c, "on");
    sock_call_expect(c, "GET k", 1, "$5\r\nafter\r\n");
    cache_key(c, "$5\r\nafter\r\n");
    redis_call_expect(&fx_redis, "SET k again", "+OK\r\n");
    sock_read_until(c, "GET k", "$5\r\nagain\r\n");
    close(c);
    proxy_finish(&fx_proxy);
}

/* The race: the subscriber is killed, and Redis stalls past upstream.timeout
 * while the connections' CLIENT TRACKING for the new subscriber are in
 * flight (or they name a subscriber already gone). Repeated until such a
 * failed attempt happened: never taken as a refusal, and the tier stays
 * coherent for writes made elsewhere. */
Test(cache, subscriber_killed_under_a_stall_is_not_a_refusal)
{
    harness_require_proxy();
    static const char *const sets[] = {"upstream.timeout=200ms", NULL};
    proxy_start(&fx_proxy, fx_redis.port, sets);
    int c = sock_connect_or_fail(fx_proxy.port);
    int d = sock_connect_or_fail(fx_redis.port);
    struct bytes in = {0};
    wait_tracking(c, "on");
    for (int i = 0; proxy_stat(c, "tracking_failures") == 0; i++) {
        cr_assert(i < 60, "no CLIENT TRACKING failed in %d rounds", i);
        sock_call_or_fail(d, "CLIENT KILL TYPE pubsub", 1, &in);
        usleep((useconds_t)(i % 12) * 100);
        sock_call_expect(d, "DEBUG SLEEP 0.3", 1, "+OK\r\n");
        cr_assert_eq(proxy_stat(c, "tracking_refusals"), 0, "a failed attempt taken as refused");
        wait_tracking(c, "on");
    }
    redis_call_expect(&fx_redis, "SET k 1", "+OK\r\n");
    sock_read_until(c, "GET k", "$1\r\n1\r\n");
    cache_key(c, "$1\r\n1\r\n");
    redis_call_expect(&fx_redis, "SET k 2", "+OK\r\n");
    sock_read_until(c, "GET k", "$1\r\n2\r\n");
    close(c);
    close(d);
    bytes_free(&in);
    proxy_finish(&fx_proxy);
}

/* In BCAST mode a connection tracked for a lost subscriber turns tracking
 * off before it is tracked again: Redis refuses prefixes a connection
 * already has. */
Test(cache, bcast_tracking_comes_back_after_a_subscriber_loss)
{
    harness_require_proxy();
    static const char *const sets[] = {"cache.tracking_prefixes=user:", NULL};
    proxy_start(&fx_proxy, fx_redis.port, sets);
    int c = sock_connect_or_fail(fx_proxy.port);
    wait_active(c);
    kill_subscriber(c);
    wait_active(c);
    redis_call_expect(&fx_redis, "SET user:1 a", "+OK\r\n");
    cache_read(c, "GET user:1", "$1\r\na\r\n");
    redis_call_expect(&fx_redis, "SET user:1 b", "+OK\r\n");
    sock_read_until(c, "GET user:1", "$1\r\nb\r\n");
    cr_assert_eq(proxy_stat(c, "tracking_failures"), 0);
    close(c);
    proxy_finish(&fx_proxy);
}

/* Redis's count of GETs run (INFO commandstats). */
static long long gets_run(void)
{
    struct bytes info = redis_call(&fx_redis, "INFO commandstats");
    bytes_puts(&info, "");
    const char *at = strstr(info.data, "cmdstat_get:calls=");
    long long n = at != NULL ? atoll(at + 18) : 0;
    bytes_free(&info);
    return n;
}

/* Single flight: many clients missing one key at once cost Redis one read.
 * Redis is paused while they ask, so that every miss arrives while the
 * first is in flight. */
Test(cache, simultaneous_misses_of_a_key_cost_redis_one_read)
{
    enum { CLIENTS = 20 };
    harness_require_proxy();
    start_caching_proxy(NULL);
    redis_call_expect(&fx_redis, "SET hot v", "+OK\r\n");
    int fds[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        fds[i] = sock_connect_or_fail(fx_proxy.port);
    long long before = gets_run();
    redis_pause(&fx_redis);
    struct bytes req = {0};
    req_add(&req, "GET", "hot", NULL);
    for (int i = 0; i < CLIENTS; i++)
        cr_assert_eq(write(fds[i], req.data, req.len), (ssize_t)req.len);
    redis_wait_unread(&fx_redis, 1);
    harness_sleep_ms(50); /* every client's request read by the proxy */
    redis_resume(&fx_redis);
    for (int i = 0; i < CLIENTS; i++) {
        struct bytes in = {0};
        cr_assert_eq(sock_read_replies(fds[i], &in, 0, 1, HARNESS_TIMEOUT_MS), SOCK_DONE);
        cr_assert(bytes_equal_str(&in, "$1\r\nv\r\n"), "client %d got %s", i, bytes_show(&in));
        bytes_free(&in);
        close(fds[i]);
    }
    /* one read per worker: reads in flight are joined within a worker */
    long long reads = gets_run() - before;
    cr_assert(reads >= 1 && reads <= proxy_workers(), "%lld GETs reached Redis", reads);
    int c = sock_connect_or_fail(fx_proxy.port);
    cr_assert_eq(proxy_stat(c, "fills_joined"), CLIENTS - reads);
    close(c);
    bytes_free(&req);
    proxy_finish(&fx_proxy);
}

/* Sends req through fd without reading a reply. */
static void send_only(int fd, const struct bytes *req)
{
    cr_assert_eq(write(fd, req->data, req->len), (ssize_t)req->len);
}

/* SIGTERM with clients on both workers: a worker that has drained reads no
 * more invalidations, while the other may still serve, from the tier they
 * share, what it filled. Each client holds its worker in the drain with a
 * large reply it does not read yet; they are let go one at a time, each after
 * every key was written on Redis: what it reads then is the new value. */
Test(cache, a_drained_worker_leaves_no_unwatched_entry_behind)
{
    enum { CLIENTS = 8, BIG = 16 << 20, BIG_REPLY = BIG + 13 };
    harness_require_proxy();
    if (proxy_workers() < 2)
        cr_skip_test("one worker");
    static const char *const sets[] = {"shutdown.drain_timeout=30s", NULL};
    proxy_start(&fx_proxy, fx_redis.port, sets);
    redis_call_expect(&fx_redis, "SETRANGE big 16777215 x", ":16777216\r\n");
    int c[CLIENTS];
    char line[64];
    struct bytes gets = {0}, big = {0}, in = {0}, want = {0};
    req_add(&big, "GET", "big", NULL);
    int small = 64 * 1024; /* what the kernel holds of the large reply stays far below it */
    for (int i = 0; i < CLIENTS; i++) {
        c[i] = sock_connect_or_fail(fx_proxy.port);
        cr_assert_eq(setsockopt(c[i], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
        snprintf(line, sizeof(line), "SET k%d v0", i);
        redis_call_expect(&fx_redis, line, "+OK\r\n");
        snprintf(line, sizeof(line), "GET k%d", i);
        cache_read(c[i], line, "$2\r\nv0\r\n"); /* filled by c[i]'s worker */
        req_lines(&gets, line);
    }
    for (int i = 0; i < CLIENTS; i++)
        send_only(c[i], &big);
    harness_sleep_ms(300); /* the replies fill the sockets; the rest waits in the proxy */
    proxy_signal(&fx_proxy, SIGTERM);
    proxy_wait_log(&fx_proxy, "draining");
    for (int r = 0; r < CLIENTS; r++) {
        for (int j = 0; j < CLIENTS; j++) {
            snprintf(line, sizeof(line), "SET k%d v%d", j, r + 1);
            redis_call_expect(&fx_redis, line, "+OK\r\n");
        }
        harness_sleep_ms(300); /* the invalidations reach the subscribers */
        send_only(c[r], &gets);
        in.len = 0;
        /* once answered, the client is idle: the drain may close it at once */
        sock_status_e st = sock_read_replies(c[r], &in, 0, 1 + CLIENTS, HARNESS_TIMEOUT_MS);
        cr_assert(st == SOCK_DONE || st == SOCK_EOF, "client %d: %d after %zu bytes", r, st,
                  in.len);
        cr_assert_eq(in.len - BIG_REPLY, 8 * CLIENTS, "client %d read %zu bytes", r, in.len);
        memmove(in.data, in.data + BIG_REPLY, in.len - BIG_REPLY);
        in.len -= BIG_REPLY;
        want.len = 0;
        for (int j = 0; j < CLIENTS; j++)
            bytes_printf(&want, "$2\r\nv%d\r\n", r + 1);
        cr_assert(bytes_equal_str(&in, want.data), "client %d read %s", r, bytes_show(&in));
        close(c[r]);
        harness_sleep_ms(200); /* its worker ends if it was its last client */
    }
    int status = proxy_wait(&fx_proxy, HARNESS_TIMEOUT_MS);
    cr_assert(harness_exited_with(status, 0), "exit status after SIGTERM: %#x", status);
    bytes_free(&gets);
    bytes_free(&big);
    bytes_free(&in);
    bytes_free(&want);
}

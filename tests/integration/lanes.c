/* tests/integration/lanes.c - clients that select a database or say HELLO
 * keep shared connections (the lane of their database and protocol) and the
 * tier: each connect preamble is answered byte for byte as Redis answers it,
 * repeated reads are tier hits, and a write in any lane, or made elsewhere,
 * invalidates what every lane reads. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness/bytes.h"
#include "harness/clock.h"
#include "harness/fixtures.h"
#include "harness/proxy.h"
#include "harness/redis.h"
#include "harness/session.h"
#include "harness/sock.h"

TestSuite(lanes, .init = fixture_redis, .fini = fixture_stop, .timeout = 90);

/* What client libraries send on connect. HELLO's reply holds the connection's
 * id, which differs between runs: it is not compared. */
static const char *const PREAMBLES[] = {
    "CLIENT SETNAME app",
    "CLIENT SETINFO lib-name nc-test",
    "SELECT 0",
    "SELECT 1",
    "HELLO 2",
    "HELLO 3",
    "HELLO 3 SETNAME app",
    "HELLO 3 SETNAME app\nSELECT 2",
};

/* Reads and writes whose replies differ between RESP2 and RESP3, twice each
 * so that the second is served from the tier. */
static const char *const TRAFFIC[] = {
    "SET k v",
    "GET k\nGET k\nGET nokey\nGET nokey",
    "HSET h f v\nHGETALL h\nHGETALL h\nHGETALL nohash\nHGETALL nohash",
    "SADD s a\nSMEMBERS s\nSMEMBERS s",
    "ZADD z 1.5 a\nZRANGE z 0 -1 WITHSCORES\nZRANGE z 0 -1 WITHSCORES\nZSCORE z a\nZSCORE z a",
    "MGET k nokey\nMGET k nokey",
    "CLIENT GETNAME\nPING",
    "RESET\nGET k\nCLIENT GETNAME",
};

static void preamble_scenario(struct run *run)
{
    const char *preamble = run->arg;
    struct sess s;
    sess_open(&s, run->port, "client", &run->transcript);
    if (strncmp(preamble, "HELLO", 5) == 0)
        sess_do_quiet(&s, preamble);
    else
        sess_do(&s, preamble);
    sess_do_all(&s, TRAFFIC, ARRAY_LEN(TRAFFIC));
    sess_close(&s);
}

Test(lanes, every_preamble_replies_as_redis)
{
    harness_require_proxy();
    proxy_start(&fx_proxy, fx_redis.port, NULL);
    for (size_t i = 0; i < ARRAY_LEN(PREAMBLES); i++)
        compare_scenario(&fx_redis, &fx_proxy, preamble_scenario, PREAMBLES[i]);
    proxy_finish(&fx_proxy);
}

/* The number of replies a preamble gets: one per line. */
static size_t lines_of(const char *text)
{
    size_t n = 1;
    for (const char *p = text; *p != '\0'; p++)
        n += *p == '\n';
    return n;
}

Test(lanes, every_preamble_is_served_from_the_tier)
{
    harness_require_proxy();
    proxy_start(&fx_proxy, fx_redis.port, NULL);
    for (size_t i = 0; i < ARRAY_LEN(PREAMBLES); i++) {
        int c = sock_connect_or_fail(fx_proxy.port);
        struct bytes in = {0};
        sock_call_or_fail(c, PREAMBLES[i], lines_of(PREAMBLES[i]),
                          &in); /* replies compared above */
        sock_call_expect(c, "SET k v", 1, "+OK\r\n");
        cache_read(c, "GET k", "$1\r\nv\r\n");
        long long hits = proxy_stat(c, "hits");
        sock_call_expect(c, "GET k\nGET k", 2, "$1\r\nv\r\n$1\r\nv\r\n");
        cr_assert_eq(proxy_stat(c, "hits"), hits + 2, "%s: reads not served from the tier",
                     PREAMBLES[i]);
        bytes_free(&in);
        close(c);
    }
    proxy_finish(&fx_proxy);
}

/* A connection to the proxy in database db, speaking resp. */
static int open_in(int db, int resp)
{
    char line[64];
    int c = sock_connect_or_fail(fx_proxy.port);
    struct bytes in = {0};
    snprintf(line, sizeof(line), "HELLO %d\nSELECT %d", resp, db);
    sock_call_or_fail(c, line, 2, &in);
    cr_assert(in.len > 5 && memcmp(in.data + in.len - 5, "+OK\r\n", 5) == 0, "%s", bytes_show(&in));
    bytes_free(&in);
    return c;
}

/* Runs lines on Redis directly in database db. */
static void direct_in(int db, const char *lines, size_t replies, const char *want)
{
    char select[64];
    int r = sock_connect_or_fail(fx_redis.port);
    snprintf(select, sizeof(select), "SELECT %d", db);
    sock_call_expect(r, select, 1, "+OK\r\n");
    sock_call_expect(r, lines, replies, want);
    close(r);
}

/* Reads GET k through fd until it answers want (writes made elsewhere are
 * seen once Redis's invalidation arrives). */
static void read_until(int fd, const char *want)
{
    struct bytes in = {0};
    for (int i = 0;; i++) {
        in.len = 0;
        sock_call_or_fail(fd, "GET k", 1, &in);
        if (bytes_equal_str(&in, want))
            break;
        cr_assert(i < 200, "GET k stayed %s, not %s", bytes_show(&in), want);
        harness_sleep_ms(10);
    }
    bytes_free(&in);
}

Test(lanes, writes_in_any_lane_invalidate_every_lane)
{
    harness_require_proxy();
    proxy_start(&fx_proxy, fx_redis.port, NULL);
    direct_in(0, "SET k zero", 1, "+OK\r\n");
    direct_in(1, "SET k one", 1, "+OK\r\n");
    int a = open_in(1, 3), b = open_in(1, 2), z = open_in(0, 2);
    cache_read(a, "GET k", "$3\r\none\r\n");
    cache_read(b, "GET k", "$3\r\none\r\n");
    cache_read(z, "GET k", "$4\r\nzero\r\n");
    sock_call_expect(b, "SET k two", 1, "+OK\r\n"); /* RESP2, db 1: at once for all */
    sock_call_expect(a, "GET k", 1, "$3\r\ntwo\r\n");
    sock_call_expect(z, "GET k", 1, "$4\r\nzero\r\n");
    cache_read(a, "GET k", "$3\r\ntwo\r\n");
    sock_call_expect(a, "SET k three", 1, "+OK\r\n"); /* RESP3 */
    sock_call_expect(b, "GET k", 1, "$5\r\nthree\r\n");
    cache_read(b, "GET k", "$5\r\nthree\r\n");
    direct_in(1, "SET k four", 1, "+OK\r\n"); /* elsewhere: CLIENT TRACKING */
    read_until(a, "$4\r\nfour\r\n");
    read_until(b, "$4\r\nfour\r\n");
    close(a);
    close(b);
    close(z);
    proxy_finish(&fx_proxy);
}

/* Commands that move data between databases, through the proxy. */
Test(lanes, move_copy_swapdb_and_flushdb_invalidate_what_they_change)
{
    harness_require_proxy();
    proxy_start(&fx_proxy, fx_redis.port, NULL);
    int z = open_in(0, 2), o = open_in(1, 3);
    sock_call_expect(z, "SET k moved\nSET src copied", 2, "+OK\r\n+OK\r\n");
    cache_read(z, "GET k", "$5\r\nmoved\r\n");
    cache_read(o, "GET k", "_\r\n");
    sock_call_expect(z, "MOVE k 1", 1, ":1\r\n");
    sock_call_expect(z, "GET k", 1, "$-1\r\n");
    sock_call_expect(o, "GET k", 1, "$5\r\nmoved\r\n");
    cache_read(o, "GET k", "$5\r\nmoved\r\n");
    sock_call_expect(z, "COPY src k DB 1 REPLACE", 1, ":1\r\n");
    sock_call_expect(o, "GET k", 1, "$6\r\ncopied\r\n");
    cache_read(o, "GET k", "$6\r\ncopied\r\n");
    cache_read(z, "GET src", "$6\r\ncopied\r\n");
    sock_call_expect(z, "SWAPDB 0 1", 1, "+OK\r\n");
    sock_call_expect(o, "GET k\nGET src", 2, "_\r\n$6\r\ncopied\r\n");
    sock_call_expect(z, "GET k", 1, "$6\r\ncopied\r\n");
    cache_read(z, "GET k", "$6\r\ncopied\r\n");
    sock_call_expect(z, "FLUSHDB", 1, "+OK\r\n");
    sock_call_expect(z, "GET k", 1, "$-1\r\n");
    close(z);
    close(o);
    proxy_finish(&fx_proxy);
}

/* Redis pushes tracking-redir-broken to a RESP3 connection whose tracking
 * redirects to a client that is gone: on a RESP3 lane's shared connection
 * that is the proxy's subscriber, killed here while the proxy is stopped,
 * before it can redirect again. The push is taken as out of band (never as
 * a reply), the tier is flushed, and the RESP3 client reads the new value. */
Test(lanes, a_redirection_broken_push_on_a_resp3_lane)
{
    harness_require_proxy();
    proxy_start(&fx_proxy, fx_redis.port, NULL);
    direct_in(0, "SET k v", 1, "+OK\r\n");
    int a = open_in(0, 3);
    cache_read(a, "GET k", "$1\r\nv\r\n");
    proxy_signal(&fx_proxy, SIGSTOP);
    redis_kill_subscribers(&fx_redis);
    direct_in(0, "SET k w", 1, "+OK\r\n"); /* Redis cannot deliver the invalidation */
    proxy_signal(&fx_proxy, SIGCONT);
    read_until(a, "$1\r\nw\r\n");
    sock_call_expect(a, "GET nokey\nGET k", 2, "_\r\n$1\r\nw\r\n");
    proxy_wait_log(&fx_proxy, "redirection broken");
    close(a);
    proxy_finish(&fx_proxy);
}

/* Where a client's writes land after SELECTs and RESETs pipelined with them,
 * on its shared connection and on a dedicated one: where Redis would put
 * them. */
Test(lanes, pipelined_selects_and_resets_end_where_redis_would)
{
    harness_require_proxy();
    proxy_start(&fx_proxy, fx_redis.port, NULL);
    int c = sock_connect_or_fail(fx_proxy.port);
    sock_call_expect(c, "SELECT 1\nSELECT 0\nSET a x", 3, "+OK\r\n+OK\r\n+OK\r\n");
    sock_call_expect(c, "SELECT 2\nRESET\nSET b x", 3, "+OK\r\n+RESET\r\n+OK\r\n");
    sock_call_expect(c, "SELECT 3\nWATCH k\nRESET", 3, "+OK\r\n+OK\r\n+RESET\r\n");
    sock_call_expect(c, "SET c x", 1, "+OK\r\n"); /* after the dedicated connection went */
    sock_call_expect(c, "SELECT 1\nSELECT 1\nSET d x", 3, "+OK\r\n+OK\r\n+OK\r\n");
    direct_in(0, "EXISTS a b c d", 1, ":3\r\n");
    direct_in(1, "DBSIZE", 1, ":1\r\n");
    direct_in(2, "DBSIZE", 1, ":0\r\n");
    direct_in(3, "DBSIZE", 1, ":0\r\n");
    close(c);
    proxy_finish(&fx_proxy);
}

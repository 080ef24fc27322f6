/* faults.c - end-to-end tests of nearcache under hostile input and failure.
 *
 * protocol: malformed, unknown and empty requests, compared with Redis.
 * faults:   abandoned pipelines, Redis killed, paused and restarted,
 *           graceful shutdown.
 * config:   --check-config.
 * clients:  a real client library (redis-py) through the proxy.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/bytes.h"
#include "harness/clock.h"
#include "harness/fixtures.h"
#include "harness/logs.h"
#include "harness/proc.h"
#include "harness/proxy.h"
#include "harness/redis.h"
#include "harness/session.h"
#include "harness/sock.h"

#define ERR_LOST        "-ERR upstream connection lost\r\n"
#define ERR_UNAVAILABLE "-ERR upstream unavailable\r\n"
#define ERR_TIMEOUT     "-ERR upstream timeout\r\n"

static bool starts_with(const struct bytes *b, const char *prefix)
{
    size_t n = strlen(prefix);
    return b->len >= n && memcmp(b->data, prefix, n) == 0;
}

/* Repeats `lines` (one request) on fd until the reply is not an -ERR upstream
 * error, within the bound, and returns that reply in in. */
static void call_until_upstream_back(int fd, const char *lines, struct bytes *in)
{
    for (int i = 0; i < 150; i++) {
        sock_call_or_fail(fd, lines, 1, in);
        if (!starts_with(in, "-ERR upstream "))
            return;
        harness_sleep_ms(100);
    }
    cr_assert_fail("[%s] still answered %s after 15 s", lines, bytes_show(in));
}

/* ---- protocol ---------------------------------------------------------------- */

TestSuite(protocol, .init = fixture_both, .fini = fixture_stop, .timeout = 120);

struct bad_input {
    const char *name;
    struct bytes bytes;
};

static void bad_input_add(struct bad_input *t, size_t *n, const char *name, const char *p,
                          size_t len)
{
    t[*n].name = name;
    memset(&t[*n].bytes, 0, sizeof(t[*n].bytes));
    bytes_append(&t[*n].bytes, p, len);
    (*n)++;
}

#define BAD(name, lit) bad_input_add(cases, &n, name, lit, sizeof(lit) - 1)

/* Fills cases with hostile requests; returns how many. */
static size_t bad_inputs(struct bad_input *cases)
{
    size_t n = 0;
    BAD("invalid multibulk length", "*abc\r\n");
    BAD("multibulk length over INT_MAX", "*3000000000\r\n");
    BAD("invalid bulk length", "*1\r\n$abc\r\n");
    BAD("negative bulk length", "*1\r\n$-5\r\n");
    BAD("bulk length over 512 MB", "*1\r\n$600000000\r\n");
    BAD("non-printable bulk length", "*1\r\n$\x01\r\n");
    BAD("expected '$', got ':'", "*2\r\n$3\r\nGET\r\n:1\r\n");
    BAD("expected '$' on the first argument", "*1\r\nPING\r\n");
    BAD("expected '$', got a control byte", "*2\r\n$3\r\nGET\r\n\x01\r\n");
    BAD("unbalanced double quotes", "SET \"foo bar\r\n");
    BAD("closing quote not followed by a space", "SET \"foo\"bar x\r\n");
    BAD("unbalanced single quotes", "ECHO 'abc\r\n");
    BAD("a valid request, then garbage", "*1\r\n$4\r\nPING\r\n*x\r\n");
    BAD("garbage after a partial pipeline", "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$x\r\n");
    /* Exactly one byte over the 64 KB limits, so that Redis has read it all. */
    struct bytes big = {0};
    for (int i = 0; i < 65537; i++)
        bytes_append(&big, "a", 1);
    bad_input_add(cases, &n, "too big inline request", big.data, big.len);
    big.data[0] = '*';
    memset(big.data + 1, '1', big.len - 1);
    bad_input_add(cases, &n, "too big mbulk count string", big.data, big.len);
    big.len = 0;
    bytes_puts(&big, "*1\r\n$");
    for (int i = 0; i < 65536; i++)
        bytes_append(&big, "1", 1);
    bad_input_add(cases, &n, "too big bulk count string", big.data, big.len);
    bytes_free(&big);
    return n;
}

/* Sends input on a fresh connection to port; returns whether the peer closed. */
static bool send_until_close(int port, const struct bytes *input, struct bytes *got)
{
    int fd = sock_connect_or_fail(port);
    sock_status_e st = sock_exchange(fd, input->data, input->len, got, NULL, 0, 5000);
    if (st == SOCK_DONE)
        st = sock_read_until_eof(fd, got, 5000);
    close(fd);
    return st == SOCK_EOF;
}

Test(protocol, malformed_requests_get_redis_error_and_close)
{
    struct bad_input cases[32];
    size_t n = bad_inputs(cases);
    struct sess bystander;
    sess_open(&bystander, fx_proxy.port, "bystander", NULL);
    sess_do(&bystander, "SET k v");
    for (size_t i = 0; i < n; i++) {
        struct bytes direct = {0}, proxied = {0};
        bool direct_closed = send_until_close(fx_redis.port, &cases[i].bytes, &direct);
        bool proxy_closed = send_until_close(fx_proxy.port, &cases[i].bytes, &proxied);
        cr_assert(direct_closed && strstr(direct.data, "-ERR Protocol error: ") != NULL,
                  "%s: Redis itself answered %s", cases[i].name, bytes_show(&direct));
        compare_bytes(cases[i].name, &direct, &proxied);
        cr_assert(proxy_closed, "%s: the proxy did not close the connection", cases[i].name);
        sess_do(&bystander, "GET k");
        sess_expect(&bystander, "$1\r\nv\r\n");
        bytes_free(&direct);
        bytes_free(&proxied);
        bytes_free(&cases[i].bytes);
    }
    sess_close(&bystander);
    proxy_finish(&fx_proxy);
}

static void unknown_command_scenario(struct run *run)
{
    struct sess a;
    sess_open(&a, run->port, "A", &run->transcript);
    const struct bytes *r = sess_do(&a, "FOOBAR a b");
    cr_assert(starts_with(r, "-ERR unknown command 'FOOBAR', with args beginning with: 'a' 'b'"),
              "%s", bytes_show(r));
    sess_do_raw(&a, "*1\r\n$0\r\n\r\n", 10);
    sess_do_raw(&a, "foobar\r\n", 8);
    sess_do(&a, "PING");
    sess_expect(&a, "+PONG\r\n");
    sess_close(&a);
}

Test(protocol, unknown_command_keeps_connection)
{
    compare_scenario(&fx_redis, &fx_proxy, unknown_command_scenario, NULL);
    proxy_finish(&fx_proxy);
}

static void empty_requests_scenario(struct run *run)
{
    static const char *const empty[] = {"*0\r\n",  "\r\n",    "\n",
                                        "   \r\n", "*-1\r\n", "*0\r\n*-5\r\n\r\n \n"};
    struct sess a;
    sess_open(&a, run->port, "A", &run->transcript);
    for (size_t i = 0; i < ARRAY_LEN(empty); i++) {
        sess_do_raw(&a, empty[i], strlen(empty[i]));
        sess_expect(&a, "");
    }
    sess_do(&a, "PING");
    sess_expect(&a, "+PONG\r\n");
    sess_close(&a);
}

Test(protocol, empty_requests_get_no_reply)
{
    compare_scenario(&fx_redis, &fx_proxy, empty_requests_scenario, NULL);
    proxy_finish(&fx_proxy);
}

/* QUIT is answered, then the connection closes, like a protocol error. */
Test(protocol, quit_replies_then_closes)
{
    struct bytes quit = {0}, direct = {0}, proxied = {0};
    req_lines(&quit, "PING\nQUIT\nPING");
    bool direct_closed = send_until_close(fx_redis.port, &quit, &direct);
    bool proxy_closed = send_until_close(fx_proxy.port, &quit, &proxied);
    cr_assert(direct_closed && bytes_equal_str(&direct, "+PONG\r\n+OK\r\n"),
              "Redis itself answered %s", bytes_show(&direct));
    compare_bytes("QUIT", &direct, &proxied);
    cr_assert(proxy_closed, "the proxy did not close the connection after QUIT");
    bytes_free(&quit);
    bytes_free(&direct);
    bytes_free(&proxied);
    proxy_finish(&fx_proxy);
}

/* Redis skips the two bytes after a bulk without checking that they are CRLF. */
Test(protocol, bulk_terminator_is_not_checked)
{
    static const char req[] = "*1\r\n$4\r\nPINGxx*2\r\n$4\r\nECHO\r\n$2\r\nabXY";
    compare_stream(&fx_redis, &fx_proxy, req, sizeof(req) - 1);
    proxy_finish(&fx_proxy);
}

/* ---- faults ------------------------------------------------------------------ */

TestSuite(faults, .init = fixture_redis, .fini = fixture_stop, .timeout = 120);

/* A client pipelines 1,000 GETs and closes without reading: the replies that
 * come back for it must not reach anyone else on the shared connection. */
Test(faults, abandoned_pipeline_keeps_upstream_in_sync)
{
    static const char *const sets[] = {"upstream.pool_size=1", NULL};
    proxy_start(&fx_proxy, fx_redis.port, sets);
    struct sess b;
    sess_open(&b, fx_proxy.port, "B", NULL);
    sess_do(&b, "SET k aaa\nSET other bbb");
    sess_expect(&b, "+OK\r\n+OK\r\n");
    struct bytes pipeline = {0}, junk = {0};
    for (int i = 0; i < 1000; i++)
        req_add(&pipeline, "GET", "k", NULL);
    int incr = 0;
    for (int round = 0; round < 5; round++) {
        int fd = sock_connect_or_fail(fx_proxy.port);
        sock_exchange(fd, pipeline.data, pipeline.len, &junk, NULL, 0, HARNESS_TIMEOUT_MS);
        close(fd);
        for (int i = 0; i < 20; i++) {
            char want[32];
            sess_do(&b, "GET other");
            sess_expect(&b, "$3\r\nbbb\r\n");
            sess_do(&b, "INCR n");
            snprintf(want, sizeof(want), ":%d\r\n", ++incr);
            sess_expect(&b, want);
        }
    }
    bytes_free(&pipeline);
    bytes_free(&junk);
    sess_close(&b);
    proxy_finish(&fx_proxy);
}

/* Sends the requests of lines without reading; returns how many bytes. */
static size_t send_only(int fd, const char *lines)
{
    struct bytes req = {0}, in = {0};
    req_lines(&req, lines);
    sock_status_e st = sock_exchange(fd, req.data, req.len, &in, NULL, 0, HARNESS_TIMEOUT_MS);
    cr_assert(st == SOCK_DONE && in.len == 0, "sending [%s]: %s", lines, bytes_show(&in));
    size_t n = req.len;
    bytes_free(&req);
    bytes_free(&in);
    return n;
}

/* True when r[0..len) is exactly the NUL-terminated s. */
static bool span_is(const char *r, int len, const char *s)
{
    return len == (int)strlen(s) && memcmp(r, s, (size_t)len) == 0;
}

/* Checks the replies to a pipeline of INCRs cut by an outage: :1, :2, ... :k in
 * order, then only upstream errors. Returns how many replies there were. */
static size_t check_cut_traffic(const struct bytes *in)
{
    size_t count = 0;
    long next = 1;
    bool cut = false;
    for (size_t off = 0; off < in->len; count++) {
        size_t end = reply_end(in->data, in->len, off);
        cr_assert(end != 0 && end != (size_t)-1, "bad reply stream at byte %zu", off);
        const char *r = in->data + off;
        int len = (int)(end - off);
        char want[32];
        snprintf(want, sizeof(want), ":%ld\r\n", next);
        if (!cut && span_is(r, len, want)) {
            next++;
        } else {
            cut = true;
            bool lost = span_is(r, len, ERR_LOST);
            bool down = span_is(r, len, ERR_UNAVAILABLE);
            cr_assert(lost || down, "reply %zu (after :%ld): %.*s", count, next - 1, len, r);
        }
        off = end;
    }
    return count;
}

Test(faults, redis_killed_then_restarted)
{
    harness_require_proxy();
    static const char *const sets[] = {"upstream.timeout=5s", "upstream.connect_timeout=200ms",
                                       NULL};
    proxy_start(&fx_proxy, fx_redis.port, sets);
    struct bytes in = {0};
    int c = sock_connect_or_fail(fx_proxy.port);
    sock_call_or_fail(c, "SET k v", 1, &in);

    /* Requests already forwarded when Redis dies: "connection lost". */
    redis_pause(&fx_redis);
    redis_wait_unread(&fx_redis, send_only(c, "GET k\nGET j\nGET i")); /* not joined: distinct */
    redis_kill(&fx_redis);
    in.len = 0;
    cr_assert(sock_read_replies(c, &in, 0, 3, HARNESS_TIMEOUT_MS) == SOCK_DONE,
              "in-flight requests: %s", bytes_show(&in));
    cr_assert(bytes_equal_str(&in, ERR_LOST ERR_LOST ERR_LOST), "in-flight requests got %s",
              bytes_show(&in));

    /* New requests while it is down: "unavailable", and the client stays. */
    for (int i = 0; i < 3; i++) {
        sock_call_or_fail(c, "GET k", 1, &in);
        cr_assert(bytes_equal_str(&in, ERR_UNAVAILABLE), "while Redis is down: %s",
                  bytes_show(&in));
    }
    redis_restart(&fx_redis);
    call_until_upstream_back(c, "SET k v2", &in);
    cr_assert(bytes_equal_str(&in, "+OK\r\n"), "after the restart: %s", bytes_show(&in));
    sock_call_or_fail(c, "GET k", 1, &in);
    cr_assert(bytes_equal_str(&in, "$2\r\nv2\r\n"), "after the restart: %s", bytes_show(&in));

    /* Killed in the middle of a 20,000-request pipeline, without a pause. */
    struct bytes pipeline = {0}, traffic = {0};
    for (int i = 0; i < 20000; i++)
        req_add(&pipeline, "INCR", "n", NULL);
    int d = sock_connect_or_fail(fx_proxy.port);
    sock_exchange(d, pipeline.data, pipeline.len, &traffic, NULL, 0, HARNESS_TIMEOUT_MS);
    redis_kill(&fx_redis);
    cr_assert(sock_read_replies(d, &traffic, 0, 20000, HARNESS_TIMEOUT_MS) == SOCK_DONE,
              "the pipelining client did not get 20,000 replies");
    cr_assert_eq(check_cut_traffic(&traffic), 20000);
    sock_call_or_fail(d, "PING", 1, &in);
    cr_assert(bytes_equal_str(&in, ERR_UNAVAILABLE), "PING while down: %s", bytes_show(&in));
    redis_restart(&fx_redis);
    call_until_upstream_back(d, "SET k v3", &in);
    cr_assert(bytes_equal_str(&in, "+OK\r\n"), "after the second restart: %s", bytes_show(&in));
    sock_call_or_fail(c, "GET k", 1, &in);
    cr_assert(bytes_equal_str(&in, "$2\r\nv3\r\n"), "after the second restart: %s",
              bytes_show(&in));
    close(c);
    close(d);
    bytes_free(&in);
    bytes_free(&traffic);
    bytes_free(&pipeline);
    proxy_finish(&fx_proxy);
}

/* Started while Redis is down: it listens, answers "unavailable", and serves
 * once Redis comes up. */
Test(faults, proxy_started_before_redis)
{
    harness_require_proxy();
    static const char *const sets[] = {"upstream.connect_timeout=200ms", NULL};
    redis_kill(&fx_redis);
    proxy_start(&fx_proxy, fx_redis.port, sets);
    struct bytes in = {0};
    int c = sock_connect_or_fail(fx_proxy.port);
    sock_call_or_fail(c, "GET k", 1, &in);
    cr_assert(bytes_equal_str(&in, ERR_UNAVAILABLE), "GET with Redis down: %s", bytes_show(&in));
    redis_restart(&fx_redis);
    call_until_upstream_back(c, "SET k v", &in);
    cr_assert(bytes_equal_str(&in, "+OK\r\n"), "once Redis is up: %s", bytes_show(&in));
    close(c);
    bytes_free(&in);
    proxy_finish(&fx_proxy);
}

/* A client with its own upstream connection (CLIENT NO-EVICT) loses its session state
 * with it: it gets an error for its in-flight request, then EOF. */
Test(faults, dedicated_client_closed_when_its_upstream_dies)
{
    harness_require_proxy();
    static const char *const sets[] = {"upstream.timeout=5s", "upstream.connect_timeout=200ms",
                                       NULL};
    proxy_start(&fx_proxy, fx_redis.port, sets);
    struct bytes in = {0}, idle_in = {0};
    int e = sock_connect_or_fail(fx_proxy.port);
    int idle = sock_connect_or_fail(fx_proxy.port);
    sock_call_or_fail(e, "CLIENT NO-EVICT on\nSET k v", 2, &in);
    cr_assert(bytes_equal_str(&in, "+OK\r\n+OK\r\n"), "%s", bytes_show(&in));
    sock_call_or_fail(idle, "CLIENT NO-EVICT on", 1, &idle_in);
    redis_pause(&fx_redis);
    redis_wait_unread(&fx_redis, send_only(e, "GET k"));
    redis_kill(&fx_redis);
    in.len = 0;
    cr_assert(sock_read_until_eof(e, &in, HARNESS_TIMEOUT_MS) == SOCK_EOF,
              "the dedicated client's connection stayed open; got %s", bytes_show(&in));
    cr_assert(bytes_equal_str(&in, ERR_LOST), "in-flight request got %s", bytes_show(&in));
    idle_in.len = 0;
    cr_assert(sock_read_until_eof(idle, &idle_in, HARNESS_TIMEOUT_MS) == SOCK_EOF,
              "the idle dedicated client's connection stayed open");
    cr_assert(idle_in.len == 0, "the idle client got %s", bytes_show(&idle_in));
    redis_restart(&fx_redis);
    int f = sock_connect_or_fail(fx_proxy.port);
    call_until_upstream_back(f, "PING", &in);
    cr_assert(bytes_equal_str(&in, "+PONG\r\n"), "%s", bytes_show(&in));
    close(e);
    close(idle);
    close(f);
    bytes_free(&in);
    bytes_free(&idle_in);
    proxy_finish(&fx_proxy);
}

/* A paused Redis: requests time out, and the connection that timed out is not
 * reused (its late reply would otherwise answer the next request). */
Test(faults, redis_paused_times_out_then_recovers)
{
    harness_require_proxy();
    static const char *const sets[] = {"upstream.timeout=500ms", "upstream.pool_size=1", NULL};
    proxy_start(&fx_proxy, fx_redis.port, sets);
    struct bytes in = {0};
    int c = sock_connect_or_fail(fx_proxy.port);
    sock_call_or_fail(c, "SET k v1", 1, &in);
    redis_pause(&fx_redis);
    sock_call_or_fail(c, "GET k", 1, &in);
    cr_assert(bytes_equal_str(&in, ERR_TIMEOUT), "GET while paused: %s", bytes_show(&in));
    redis_resume(&fx_redis);
    call_until_upstream_back(c, "SET k v2", &in);
    cr_assert(bytes_equal_str(&in, "+OK\r\n"), "first request after resuming: %s", bytes_show(&in));
    sock_call_or_fail(c, "GET k", 1, &in);
    cr_assert(bytes_equal_str(&in, "$2\r\nv2\r\n"), "GET after resuming: %s", bytes_show(&in));
    close(c);
    bytes_free(&in);
    proxy_finish(&fx_proxy);
}

/* The proxy is stopped (its loop stalls) while Redis's reply waits in its
 * socket, for longer than upstream.timeout: on waking, the reply is read
 * before the deadline is judged, so the request gets it, not a timeout. */
Test(faults, reply_waiting_after_a_stall_is_not_a_timeout)
{
    harness_require_proxy();
    static const char *const sets[] = {"upstream.timeout=300ms", "upstream.pool_size=1", NULL};
    proxy_start(&fx_proxy, fx_redis.port, sets);
    struct bytes in = {0};
    int c = sock_connect_or_fail(fx_proxy.port);
    sock_call_expect(c, "SET k v1", 1, "+OK\r\n");
    redis_pause(&fx_redis);
    static const char get[] = "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    cr_assert(sock_exchange(c, get, sizeof(get) - 1, &in, NULL, 0, HARNESS_TIMEOUT_MS) ==
              SOCK_DONE);
    redis_wait_unread(&fx_redis, sizeof(get) - 1);
    kill(fx_proxy.pid, SIGSTOP);
    redis_resume(&fx_redis);
    harness_sleep_ms(1000);
    kill(fx_proxy.pid, SIGCONT);
    cr_assert(sock_read_replies(c, &in, 0, 1, HARNESS_TIMEOUT_MS) == SOCK_DONE);
    cr_assert(bytes_equal_str(&in, "$2\r\nv1\r\n"), "GET across the stall: %s", bytes_show(&in));
    close(c);
    bytes_free(&in);
    proxy_finish(&fx_proxy);
}

/* The proxy stalls for longer than upstream.timeout after taking a request
 * and before writing it to Redis (stall.c, preloaded, sleeps in its writev),
 * and Redis then takes 50 ms to answer (DEBUG SLEEP): the wait for the reply
 * restarts when the loop runs again, so the request gets its reply, not a
 * timeout. */
Test(faults, request_taken_before_a_stall_is_not_a_timeout)
{
    harness_require_proxy();
    char dir[256], trigger[300], asan[512];
    harness_mkdtemp(dir, sizeof(dir));
    snprintf(trigger, sizeof(trigger), "%s/stall", dir);
    snprintf(asan, sizeof(asan), "%s:verify_asan_link_order=0",
             getenv("ASAN_OPTIONS") ? getenv("ASAN_OPTIONS") : "");
    setenv("ASAN_OPTIONS", asan, 1);
    setenv("LD_PRELOAD", NEARCACHE_STALL_SHIM, 1);
    setenv("NC_STALL_FILE", trigger, 1);
    setenv("NC_STALL_MS", "600", 1);
    static const char *const sets[] = {"upstream.timeout=200ms", "upstream.pool_size=1", NULL};
    proxy_start(&fx_proxy, fx_redis.port, sets);
    unsetenv("LD_PRELOAD");
    int c = sock_connect_or_fail(fx_proxy.port);
    sock_call_expect(c, "PING", 1, "+PONG\r\n");
    for (int round = 0; round < 3; round++) {
        harness_write_file(trigger, "");
        sock_call_expect(c, "DEBUG SLEEP 0.05", 1, "+OK\r\n");
        cr_assert(access(trigger, F_OK) < 0, "the stall did not happen");
    }
    close(c);
    proxy_finish(&fx_proxy);
    harness_rmdir(dir);
}

/* Replies that keep arriving are progress. Two other clients keep Redis
 * busy with DEBUG SLEEP 0.05, taking turns, so that Redis writes a
 * pipeline's replies a slice per 50 ms: with upstream.timeout at 300 ms,
 * every GET of 16 of a 128 KB value, and the PING queued behind them for most
 * of a second, are answered. */
Test(faults, replies_arriving_are_progress_not_a_timeout)
{
    harness_require_proxy();
    static const char *const sets[] = {"upstream.timeout=300ms", "upstream.pool_size=1",
                                       "cache.enabled=false", NULL};
    enum { VALUE = 128 << 10, GETS = 16 };
    proxy_start(&fx_proxy, fx_redis.port, sets);
    char *value = malloc(VALUE);
    cr_assert_not_null(value);
    memset(value, 'v', VALUE);
    struct bytes in = {0}, out = {0};
    req_addv(&out, 3, (const char *const[]){"SET", "big", value}, (const size_t[]){3, 3, VALUE});
    int c = sock_connect_or_fail(fx_proxy.port);
    cr_assert(sock_exchange(c, out.data, out.len, &in, "+OK\r\n", 5, HARNESS_TIMEOUT_MS) ==
              SOCK_DONE);
    out.len = in.len = 0;
    for (int i = 0; i < GETS; i++)
        req_add(&out, "GET", "big", NULL);
    req_add(&out, "PING", NULL);
    char port[16];
    snprintf(port, sizeof(port), "%d", fx_redis.port);
    const char *const busy[] = {"redis-cli", "-p",    port,   "-r", "20",
                                "DEBUG",     "SLEEP", "0.05", NULL};
    pid_t sleepers[] = {harness_spawn(busy, "/dev/null"), harness_spawn(busy, "/dev/null")};
    harness_sleep_ms(20);
    cr_assert(sock_exchange(c, out.data, out.len, &in, NULL, 0, HARNESS_TIMEOUT_MS) == SOCK_DONE);
    cr_assert(sock_read_replies(c, &in, 0, GETS + 1, HARNESS_TIMEOUT_MS) == SOCK_DONE);
    cr_assert(bytes_ends_with(&in, "+PONG\r\n", 7), "replies end with %s", bytes_show(&in));
    size_t one = strlen("$131072\r\n") + VALUE + 2;
    cr_assert_eq(in.len, GETS * one + 7, "a GET failed: %zu bytes of replies", in.len);
    for (size_t i = 0; i < ARRAY_LEN(sleepers); i++)
        cr_assert(harness_exited_with(harness_wait(sleepers[i], HARNESS_TIMEOUT_MS), 0));
    close(c);
    free(value);
    bytes_free(&in);
    bytes_free(&out);
    proxy_finish(&fx_proxy);
}

/* Connects until the proxy refuses (or resets, when the listener closes in
 * the middle of a handshake); true if it did within the bound. Accepted
 * connections are closed at once (they may predate the signal's handling). */
static bool refuses_connections(int port)
{
    for (int i = 0; i < HARNESS_TIMEOUT_MS / 20; i++) {
        int fd = sock_connect(port);
        if (fd < 0)
            return true;
        close(fd);
        harness_sleep_ms(20);
    }
    return false;
}

/* SIGTERM while 1,000 requests wait on a paused Redis: the listener closes,
 * every reply is still delivered, then the client is closed and it exits 0. */
Test(faults, sigterm_drains_in_flight_requests)
{
    harness_require_proxy();
    static const char *const sets[] = {"shutdown.drain_timeout=5s", "upstream.timeout=5s", NULL};
    proxy_start(&fx_proxy, fx_redis.port, sets);
    struct bytes in = {0}, pipeline = {0}, want = {0};
    int c = sock_connect_or_fail(fx_proxy.port);
    sock_call_or_fail(c, "SET k v", 1, &in);
    redis_pause(&fx_redis);
    for (int i = 1; i <= 1000; i++) {
        req_add(&pipeline, "INCR", "n", NULL);
        bytes_printf(&want, ":%d\r\n", i);
    }
    in.len = 0;
    cr_assert(sock_exchange(c, pipeline.data, pipeline.len, &in, NULL, 0, HARNESS_TIMEOUT_MS) ==
              SOCK_DONE);
    redis_wait_unread(&fx_redis, pipeline.len);
    proxy_signal(&fx_proxy, SIGTERM);
    cr_assert(refuses_connections(fx_proxy.port),
              "new connections were still accepted during the drain");
    redis_resume(&fx_redis);
    sock_status_e st = sock_read_until_eof(c, &in, HARNESS_TIMEOUT_MS);
    cr_assert(st == SOCK_EOF, "the client was not closed after the drain");
    bytes_assert_equal("replies drained at shutdown", &want, &in);
    int status = proxy_wait(&fx_proxy, HARNESS_TIMEOUT_MS);
    cr_assert(harness_exited_with(status, 0), "exit status after SIGTERM: %#x", status);
    cr_assert(sock_connect(fx_proxy.port) < 0 && errno == ECONNREFUSED,
              "connecting after the exit did not fail");
    close(c);
    bytes_free(&in);
    bytes_free(&pipeline);
    bytes_free(&want);
}

/* Requests whose bytes reached the proxy before SIGTERM but were not read
 * yet (the proxy was stopped): the drain reads, executes and answers them
 * before closing the client. */
Test(faults, sigterm_answers_requests_not_yet_read)
{
    harness_require_proxy();
    proxy_start(&fx_proxy, fx_redis.port, NULL);
    struct bytes in = {0}, out = {0};
    int c = sock_connect_or_fail(fx_proxy.port);
    sock_call_expect(c, "PING", 1, "+PONG\r\n");
    kill(fx_proxy.pid, SIGSTOP);
    req_lines(&out, "SET drained 1\nGET drained");
    in.len = 0;
    cr_assert(sock_exchange(c, out.data, out.len, &in, NULL, 0, HARNESS_TIMEOUT_MS) == SOCK_DONE);
    proxy_signal(&fx_proxy, SIGTERM);
    kill(fx_proxy.pid, SIGCONT);
    cr_assert(sock_read_until_eof(c, &in, HARNESS_TIMEOUT_MS) == SOCK_EOF);
    cr_assert(bytes_equal_str(&in, "+OK\r\n$1\r\n1\r\n"), "replies: %s", bytes_show(&in));
    redis_call_expect(&fx_redis, "GET drained", "$1\r\n1\r\n");
    int status = proxy_wait(&fx_proxy, HARNESS_TIMEOUT_MS);
    cr_assert(harness_exited_with(status, 0), "exit status after SIGTERM: %#x", status);
    close(c);
    bytes_free(&in);
    bytes_free(&out);
}

Test(faults, sigint_exits_cleanly)
{
    harness_require_proxy();
    proxy_start(&fx_proxy, fx_redis.port, NULL);
    struct bytes in = {0};
    int c = sock_connect_or_fail(fx_proxy.port);
    sock_call_or_fail(c, "SET k v", 1, &in);
    proxy_signal(&fx_proxy, SIGINT);
    int status = proxy_wait(&fx_proxy, HARNESS_TIMEOUT_MS);
    cr_assert(harness_exited_with(status, 0), "exit status after SIGINT: %#x", status);
    cr_assert(sock_read_until_eof(c, &in, HARNESS_TIMEOUT_MS) == SOCK_EOF);
    close(c);
    bytes_free(&in);
}

/* The harness itself: kill -9 and restart on the same port. */
Test(faults, harness_restarts_redis_on_same_port)
{
    struct bytes in = redis_call(&fx_redis, "SET k v");
    int port = fx_redis.port;
    redis_kill(&fx_redis);
    cr_assert(sock_connect(port) < 0, "the port still answers after SIGKILL");
    redis_restart(&fx_redis);
    cr_assert_eq(fx_redis.port, port);
    bytes_free(&in);
    in = redis_call(&fx_redis, "GET k");
    cr_assert(bytes_equal_str(&in, "$-1\r\n"), "data survived the kill: %s", bytes_show(&in));
    bytes_free(&in);
}

/* ---- config ------------------------------------------------------------------ */

static char config_dir[256]; /* made by the first check_config */

static void config_teardown(void)
{
    harness_rmdir(config_dir);
}

TestSuite(config, .fini = config_teardown, .timeout = 60);

/* Writes text to config_dir/name and runs --check-config -c on it, with the
 * variable env ("NAME=value") set unless NULL. Returns its status, with its
 * output in out. */
static int check_config(const char *env, const char *name, const char *text, char *path,
                        size_t plen, struct bytes *out)
{
    char out_path[512];
    if (config_dir[0] == '\0')
        harness_mkdtemp(config_dir, sizeof(config_dir));
    snprintf(path, plen, "%s/%s", config_dir, name);
    snprintf(out_path, sizeof(out_path), "%s/%s.out", config_dir, name);
    FILE *f = fopen(path, "w");
    cr_assert(f != NULL && fputs(text, f) >= 0 && fclose(f) == 0, "writing %s", path);
    const char *plain[] = {harness_bin(), "--check-config", "-c", path, NULL};
    const char *with_env[] = {"env", env, harness_bin(), "--check-config", "-c", path, NULL};
    int status = harness_run(env != NULL ? with_env : plain, out_path, HARNESS_TIMEOUT_MS);
    bytes_append_file(out, out_path);
    return status;
}

Test(config, check_config_accepts_valid_file)
{
    harness_require_proxy();
    static const char valid[] = "listen: 127.0.0.1:6380\n"
                                "upstream:\n"
                                "  address: 127.0.0.1:6379\n"
                                "  pool_size: 4\n"
                                "  timeout: 500ms\n";
    char path[512];
    struct bytes out = {0};
    int status = check_config(NULL, "valid.yaml", valid, path, sizeof(path), &out);
    cr_assert(harness_exited_with(status, 0),
              "--check-config on a valid file: status %#x, output %s", status, bytes_show(&out));
    bytes_free(&out);
}

static const struct {
    const char *name;
    const char *yaml;
    int line;
    const char *key;
} BAD_CONFIGS[] = {
    {"unknown top-level key", "listen: 127.0.0.1:6380\nbogus: 1\n", 2, "bogus"},
    {"unknown nested key",
     "listen: 127.0.0.1:6380\nupstream:\n  address: 127.0.0.1:6379\n  bogus_key: 1\n", 4,
     "bogus_key"},
    {"pool size not a number", "upstream:\n  address: 127.0.0.1:6379\n  pool_size: lots\n", 3,
     "pool_size"},
    {"timeout not a duration", "listen: 127.0.0.1:6380\n\nupstream:\n  timeout: soon\n", 4,
     "timeout"},
};

Test(config, check_config_reports_file_line_key)
{
    harness_require_proxy();
    for (size_t i = 0; i < ARRAY_LEN(BAD_CONFIGS); i++) {
        char path[512], prefix[600], name[32];
        struct bytes out = {0};
        snprintf(name, sizeof(name), "bad%zu.yaml", i);
        int status = check_config(NULL, name, BAD_CONFIGS[i].yaml, path, sizeof(path), &out);
        cr_assert(harness_exited_with(status, 2), "%s: status %#x, output %s", BAD_CONFIGS[i].name,
                  status, bytes_show(&out));
        snprintf(prefix, sizeof(prefix), "%s:%d: ", path, BAD_CONFIGS[i].line);
        const char *at = out.data ? strstr(out.data, prefix) : NULL;
        cr_assert(at != NULL, "%s: no \"%s\" in %s", BAD_CONFIGS[i].name, prefix, bytes_show(&out));
        at += strlen(prefix);
        const char *sep = strstr(at, ": ");
        const char *eol = strchr(at, '\n');
        cr_assert(sep != NULL && (eol == NULL || sep < eol) && sep[2] != '\n' && sep[2] != '\0',
                  "%s: not \"file:line: key: reason\": %s", BAD_CONFIGS[i].name, at);
        char key[128];
        snprintf(key, sizeof(key), "%.*s", (int)(sep - at), at);
        cr_assert(strstr(key, BAD_CONFIGS[i].key) != NULL, "%s: key \"%s\", expected %s",
                  BAD_CONFIGS[i].name, key, BAD_CONFIGS[i].key);
        bytes_free(&out);
    }
}

/* NEARCACHE_DEBUG is 0 or 1 (or empty): any other value stops the proxy at
 * start with status 2, --check-config included. */
Test(config, nearcache_debug_is_0_or_1)
{
    static const struct {
        const char *env;
        int status;
    } CASES[] = {
        {"NEARCACHE_DEBUG=2", 2}, {"NEARCACHE_DEBUG=yes", 2}, {"NEARCACHE_DEBUG=1", 0},
        {"NEARCACHE_DEBUG=0", 0}, {"NEARCACHE_DEBUG=", 0},
    };
    harness_require_proxy();
    for (size_t i = 0; i < ARRAY_LEN(CASES); i++) {
        char path[512];
        struct bytes out = {0};
        int status = check_config(CASES[i].env, "debug.yaml", "log_format: json\n", path,
                                  sizeof(path), &out);
        cr_expect(harness_exited_with(status, CASES[i].status), "%s: status %#x, output %s",
                  CASES[i].env, status, bytes_show(&out));
        bool said = out.data != NULL && strstr(out.data, "NEARCACHE_DEBUG: expected 0 or 1\n");
        cr_expect(said == (CASES[i].status == 2), "%s: output %s", CASES[i].env, bytes_show(&out));
        bytes_free(&out);
    }
}

/* ---- clients ------------------------------------------------------------------ */

TestSuite(clients, .init = fixture_both, .fini = fixture_stop, .timeout = 120);

static const char PY_SCRIPT[] =
    "import sys\n"
    "try:\n"
    "    import redis\n"
    "except ImportError:\n"
    "    sys.exit('this python3 has no redis module (apt install python3-redis)')\n"
    "r = redis.Redis(host='127.0.0.1', port=int(sys.argv[1]), socket_timeout=10)\n"
    "assert r.ping() is True\n"
    "assert r.set('py:k', b'v\\x00\\xff\\r\\n') is True\n"
    "assert r.get('py:k') == b'v\\x00\\xff\\r\\n', r.get('py:k')\n"
    "assert r.get('py:missing') is None\n"
    "p = r.pipeline(transaction=True)\n"
    "p.set('py:a', 1).incr('py:a').get('py:a').rpush('py:l', 'x', 'y')\n"
    "p.lrange('py:l', 0, -1).hset('py:h', mapping={'f': 'v'}).hgetall('py:h')\n"
    "res = p.execute()\n"
    "assert res == [True, 2, b'2', 2, [b'x', b'y'], 1, {b'f': b'v'}], res\n"
    "p = r.pipeline(transaction=False)\n"
    "for i in range(1000):\n"
    "    p.set('py:n%d' % i, i)\n"
    "for i in range(1000):\n"
    "    p.get('py:n%d' % i)\n"
    "res = p.execute()\n"
    "assert res == [True] * 1000 + [str(i).encode() for i in range(1000)]\n"
    "def double(pipe):\n"
    "    v = int(pipe.get('py:a'))\n"
    "    pipe.multi()\n"
    "    pipe.set('py:a', v * 2)\n"
    "assert r.transaction(double, 'py:a') == [True]\n"
    "assert r.get('py:a') == b'4'\n"
    "ps = r.pubsub()\n"
    "ps.subscribe('py:ch')\n"
    "m = ps.get_message(timeout=10)\n"
    "assert m and m['type'] == 'subscribe', m\n"
    "assert r.publish('py:ch', 'hello') == 1\n"
    "m = ps.get_message(timeout=10)\n"
    "assert m and m['type'] == 'message' and m['data'] == b'hello', m\n"
    "ps.unsubscribe('py:ch')\n"
    "ps.close()\n"
    "try:\n"
    "    r.execute_command('NOSUCHCMD')\n"
    "    raise AssertionError('no error for an unknown command')\n"
    "except redis.ResponseError as e:\n"
    "    assert 'unknown command' in str(e), e\n"
    "print('redis-py ok')\n";

Test(clients, redis_py)
{
    char port[16], dir[256], out_path[320];
    snprintf(port, sizeof(port), "%d", fx_proxy.port);
    harness_mkdtemp(dir, sizeof(dir));
    snprintf(out_path, sizeof(out_path), "%s/python.out", dir);
    const char *python = getenv("NC_IT_PYTHON");
    if (python == NULL)
        python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
    const char *argv[] = {python, "-c", PY_SCRIPT, port, NULL};
    int status = harness_run(argv, out_path, 30000);
    if (!harness_exited_with(status, 0))
        harness_print_file(out_path, "python3 output");
    harness_rmdir(dir);
    cr_assert(harness_exited_with(status, 0), "the redis-py script failed (status %#x)", status);
    proxy_finish(&fx_proxy);
}

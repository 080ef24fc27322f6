/* large.c - end-to-end tests of large frames: requests of hundreds of KB read
 * in many pieces or in one write among small requests, clients that go away
 * in the middle of one, Redis that stops reading them, and large replies read
 * late. The proxy queues a large frame by reference to the buffer it was read
 * into (proxy/lib/buf.h): whatever happens next, the bytes that reach Redis
 * and the clients are the ones sent, byte for byte.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/bytes.h"
#include "harness/clock.h"
#include "harness/fixtures.h"
#include "harness/proxy.h"
#include "harness/redis.h"
#include "harness/session.h"
#include "harness/sock.h"

TestSuite(compare, .init = fixture_both, .fini = fixture_stop, .timeout = 120);

/* A value of n bytes, different for each seed. */
static char *pattern(size_t n, unsigned seed)
{
    char *p = malloc(n);
    cr_assert(p != NULL);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)(i * 131 + seed);
    return p;
}

/* Large SETs, APPENDs and MSETs among small requests, as one stream. */
static size_t large_stream(struct bytes *req)
{
    char *a = pattern(300000, 1), *b = pattern(100000, 2), *c = pattern(50000, 3);
    const char *const argv[][5] = {
        {"SET", "big:1", a},    {"GET", "none"},          {"SET", "big:2", b},     {"INCR", "n"},
        {"APPEND", "big:2", c}, {"GET", "big:1"},         {"SET", "s", "x"},       {"GET", "big:2"},
        {"STRLEN", "big:2"},    {"MSET", "a", c, "b", b}, {"MGET", "a", "b", "s"}, {"GET", "big:1"},
    };
    const size_t lens[][5] = {
        {3, 5, 300000}, {3, 4},    {3, 5, 100000}, {4, 1}, {6, 5, 50000},
        {3, 5},         {3, 1, 1}, {3, 5},         {6, 5}, {4, 1, 50000, 1, 100000},
        {4, 1, 1, 1},   {3, 5},
    };
    const int argc[] = {3, 2, 3, 2, 3, 2, 3, 2, 2, 5, 4, 2};
    for (size_t i = 0; i < ARRAY_LEN(argc); i++)
        req_addv(req, argc[i], argv[i], lens[i]);
    free(a);
    free(b);
    free(c);
    return ARRAY_LEN(argc);
}

/* The stream sent in pieces of `piece` bytes with a pause after each (0: in
 * one write), then every reply read. */
static void large_stream_scenario(struct run *run)
{
    struct bytes req = {0}, in = {0};
    size_t count = large_stream(&req);
    size_t piece = *(const size_t *)run->arg;
    int fd = sock_connect_or_fail(run->port);
    for (size_t off = 0; off < req.len;) {
        size_t n = piece == 0 || req.len - off < piece ? req.len - off : piece;
        cr_assert(sock_exchange(fd, req.data + off, n, &in, NULL, 0, HARNESS_TIMEOUT_MS) ==
                  SOCK_DONE);
        off += n;
        if (piece != 0)
            usleep(100);
    }
    cr_assert(sock_read_replies(fd, &in, 0, count, HARNESS_TIMEOUT_MS) == SOCK_DONE);
    bytes_append(&run->transcript, in.data, in.len);
    close(fd);
    bytes_free(&req);
    bytes_free(&in);
}

Test(compare, large_frames_among_small_requests_in_one_write)
{
    static const size_t piece = 0;
    compare_scenario(&fx_redis, &fx_proxy, large_stream_scenario, &piece);
    proxy_finish(&fx_proxy);
}

Test(compare, large_frames_among_small_requests_in_many_pieces)
{
    static const size_t piece = 4093; /* frames and headers cut anywhere */
    compare_scenario(&fx_redis, &fx_proxy, large_stream_scenario, &piece);
    proxy_finish(&fx_proxy);
}

/* Tests that start the proxy themselves, with their own settings. */
TestSuite(isolation, .init = fixture_redis, .fini = fixture_stop, .timeout = 120);

/* Clients that go away in the middle of a large SET (in its header, its
 * payload, its terminator) leave nothing behind on the shared connection: the
 * complete SET before it ran, the cut one did not, and another client's large
 * values go to Redis and back intact. */
Test(isolation, client_gone_mid_large_frame)
{
    static const char *const sets[] = {"upstream.pool_size=1", NULL};
    proxy_start(&fx_proxy, fx_redis.port, sets);
    enum { LEN = 200000 };
    char *value = pattern(LEN, 9);
    struct bytes whole = {0}, cut = {0}, want = {0}, junk = {0};
    const char *set1[] = {"SET", "a:1", value}, *set2[] = {"SET", "a:2", value};
    const size_t lens[] = {3, 3, LEN};
    req_addv(&whole, 3, set1, lens);
    req_addv(&cut, 3, set2, lens);
    const size_t cuts[] = {10, 30, 70000, cut.len - 1};
    int b = sock_connect_or_fail(fx_proxy.port);
    for (size_t i = 0; i < ARRAY_LEN(cuts); i++) {
        int a = sock_connect_or_fail(fx_proxy.port);
        struct bytes out = {0};
        bytes_append(&out, whole.data, whole.len);
        bytes_append(&out, cut.data, cuts[i]);
        cr_assert(sock_exchange(a, out.data, out.len, &junk, NULL, 0, HARNESS_TIMEOUT_MS) ==
                  SOCK_DONE);
        close(a);
        bytes_free(&out);
        sock_read_until(b, "STRLEN a:1", ":200000\r\n");
        sock_call_expect(b, "GET a:2\nDEL a:1", 2, "$-1\r\n:1\r\n");
        struct bytes in = {0};
        cr_assert(sock_exchange(b, cut.data, cut.len, &in, "+OK\r\n", 5, HARNESS_TIMEOUT_MS) ==
                  SOCK_DONE);
        sock_call_or_fail(b, "GET a:2", 1, &in);
        want.len = 0;
        bytes_append_bulk(&want, value, LEN);
        bytes_assert_equal("the large value", &want, &in);
        sock_call_expect(b, "DEL a:2", 1, ":1\r\n");
        bytes_free(&in);
    }
    close(b);
    free(value);
    bytes_free(&whole);
    bytes_free(&cut);
    bytes_free(&want);
    bytes_free(&junk);
    proxy_finish(&fx_proxy);
}

/* Large replies read from Redis in one go are queued to their clients by
 * reference: a client that reads its replies late gets them intact while
 * another's stream through the same connection meanwhile. */
Test(isolation, slow_reader_of_large_replies)
{
    static const char *const sets[] = {"upstream.pool_size=1", "cache.enabled=false", NULL};
    proxy_start(&fx_proxy, fx_redis.port, sets);
    enum { KEYS = 8, LEN = 120000, ROUNDS = 20 };
    struct bytes req = {0}, want = {0}, in = {0};
    int fast = sock_connect_or_fail(fx_proxy.port);
    for (int i = 0; i < KEYS; i++) {
        char key[16], *value = pattern(LEN, (unsigned)i);
        snprintf(key, sizeof(key), "v:%d", i);
        const char *argv[] = {"SET", key, value};
        const size_t lens[] = {3, strlen(key), LEN};
        req.len = 0;
        req_addv(&req, 3, argv, lens);
        in.len = 0;
        cr_assert(sock_exchange(fast, req.data, req.len, &in, "+OK\r\n", 5, HARNESS_TIMEOUT_MS) ==
                  SOCK_DONE);
        bytes_append_bulk(&want, value, LEN);
        free(value);
    }
    req.len = 0;
    for (int i = 0; i < KEYS; i++) {
        char key[16];
        snprintf(key, sizeof(key), "v:%d", i);
        req_add(&req, "GET", key, NULL);
    }
    int slow = sock_connect_or_fail(fx_proxy.port);
    struct bytes slow_in = {0};
    cr_assert(sock_exchange(slow, req.data, req.len, &slow_in, NULL, 0, HARNESS_TIMEOUT_MS) ==
              SOCK_DONE);
    for (int r = 0; r < ROUNDS; r++) {
        in.len = 0;
        cr_assert(sock_exchange(fast, req.data, req.len, &in, NULL, 0, HARNESS_TIMEOUT_MS) ==
                  SOCK_DONE);
        cr_assert(sock_read_replies(fast, &in, 0, KEYS, HARNESS_TIMEOUT_MS) == SOCK_DONE);
        bytes_assert_equal("the fast client's replies", &want, &in);
    }
    cr_assert(sock_read_replies(slow, &slow_in, 0, KEYS, HARNESS_TIMEOUT_MS) == SOCK_DONE);
    bytes_assert_equal("the slow client's replies", &want, &slow_in);
    close(fast);
    close(slow);
    bytes_free(&req);
    bytes_free(&want);
    bytes_free(&in);
    bytes_free(&slow_in);
    proxy_finish(&fx_proxy);
}

/* Large SETs pile up in the proxy while Redis reads nothing: each waits
 * queued by reference to the client's buffer while that buffer reads the next
 * ones, and each reaches Redis as it was sent. */
Test(isolation, large_sets_queued_while_redis_reads_nothing)
{
    static const char *const sets[] = {"upstream.pool_size=1", NULL};
    proxy_start(&fx_proxy, fx_redis.port, sets);
    enum { KEYS = 40, LEN = 300000 }; /* 12 MB: more than the sockets hold */
    struct bytes req = {0}, in = {0}, want = {0};
    int fd = sock_connect_or_fail(fx_proxy.port);
    sock_call_expect(fd, "PING", 1, "+PONG\r\n");
    for (int i = 0; i < KEYS; i++) {
        char key[16], *value = pattern(LEN, (unsigned)(100 + i));
        snprintf(key, sizeof(key), "p:%d", i);
        const char *argv[] = {"SET", key, value};
        const size_t lens[] = {3, strlen(key), LEN};
        req_addv(&req, 3, argv, lens);
        free(value);
    }
    redis_pause(&fx_redis);
    for (size_t off = 0; off < req.len; off += 65536) { /* a read (or more) each */
        size_t n = req.len - off < 65536 ? req.len - off : 65536;
        cr_assert(sock_exchange(fd, req.data + off, n, &in, NULL, 0, HARNESS_TIMEOUT_MS) ==
                  SOCK_DONE);
        usleep(1000);
    }
    usleep(100000);
    redis_resume(&fx_redis);
    cr_assert(sock_read_replies(fd, &in, 0, KEYS, HARNESS_TIMEOUT_MS) == SOCK_DONE);
    for (int i = 0; i < KEYS; i++)
        bytes_append(&want, "+OK\r\n", 5);
    bytes_assert_equal("the SETs' replies", &want, &in);
    for (int i = 0; i < KEYS; i++) {
        char line[32], *value = pattern(LEN, (unsigned)(100 + i));
        snprintf(line, sizeof(line), "GET p:%d", i);
        sock_call_or_fail(fd, line, 1, &in);
        want.len = 0;
        bytes_append_bulk(&want, value, LEN);
        bytes_assert_equal("a value set while Redis read nothing", &want, &in);
        free(value);
    }
    close(fd);
    bytes_free(&req);
    bytes_free(&in);
    bytes_free(&want);
    proxy_finish(&fx_proxy);
}

/* tests/integration/preamble.c - what client libraries send on connect
 * (a name, SELECT of the configured database, AUTH with the proxy's own
 * credentials) is answered as Redis answers it and keeps the client on its
 * shared connection, served from the tier. */
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

TestSuite(preamble, .init = fixture_redis, .fini = fixture_stop, .timeout = 60);

/* The proxy's upstream user, which clients may also name in AUTH. */
static void start_as_app(void)
{
    harness_require_proxy();
    redis_call_expect(&fx_redis, "ACL SETUSER app on >pw ~* &* +@all", "+OK\r\n");
    static const char *const sets[] = {"upstream.username=app", "upstream.password=pw",
                                       "cache.tracking=false", NULL};
    proxy_start(&fx_proxy, fx_redis.port, sets);
}

/* Each line runs on a connection of its own, through the proxy and directly. */
static const char *const NAMES[] = {
    "CLIENT GETNAME\nCLIENT SETNAME app\nCLIENT GETNAME\nPING",
    "CLIENT SETNAME app\nCLIENT SETNAME \"\"\nCLIENT GETNAME",
    "CLIENT SETNAME \"a b\"\nCLIENT SETNAME \"a\\nb\"\nCLIENT SETNAME \"\\xff\"\nCLIENT GETNAME",
    "CLIENT SETNAME\nCLIENT SETNAME a b\nCLIENT GETNAME x",
    "CLIENT SETNAME app\nRESET\nCLIENT GETNAME",
    "CLIENT SETNAME app\nMULTI\nCLIENT GETNAME\nEXEC\nCLIENT GETNAME",
    "CLIENT SETNAME app\nSELECT 2\nCLIENT GETNAME\nCLIENT SETNAME other\nCLIENT GETNAME",
};

Test(preamble, client_names_reply_as_redis)
{
    start_as_app();
    COMPARE_STEPS(NAMES);
}

/* A named client subscribes: its connection becomes a raw stream, so the
 * name stays the proxy's (nothing of the proxy's own may reach it). */
static const char *const NAMED_SUBSCRIBER[] = {
    "CLIENT SETNAME app",
    "SUBSCRIBE ch\nPING",
    "UNSUBSCRIBE ch\nPING",
};

Test(preamble, a_named_client_subscribes)
{
    start_as_app();
    COMPARE_STEPS(NAMED_SUBSCRIBER);
}

static const char *const SELECTS[] = {
    "SELECT 0\nSET k v\nGET k",
    "SELECT 00\nSELECT -0\nSELECT x\nSELECT 0 1",
    "SELECT 16",
    "SELECT 1\nSET k in-1\nSELECT 0\nGET k",
};

Test(preamble, select_reply_as_redis)
{
    start_as_app();
    COMPARE_STEPS(SELECTS);
}

static const char *const AUTHS[] = {
    "AUTH app pw\nPING", "AUTH app wrong\nPING", "AUTH nobody pw",
    "AUTH pw",           "AUTH app pw extra",    "AUTH app",
};

Test(preamble, auth_replies_as_redis)
{
    start_as_app();
    COMPARE_STEPS(AUTHS);
}

/* The preamble of a named, authenticating, SELECT-0 client: its reads are
 * tier hits, which they would not be on a dedicated connection. */
Test(preamble, a_client_with_a_preamble_is_served_from_the_tier)
{
    start_as_app();
    int c = sock_connect_or_fail(fx_proxy.port);
    sock_call_expect(c, "AUTH app pw\nCLIENT SETNAME web-1\nSELECT 0", 3, "+OK\r\n+OK\r\n+OK\r\n");
    sock_call_expect(c, "SET k v", 1, "+OK\r\n");
    sock_call_expect(c, "GET k", 1, "$1\r\nv\r\n"); /* a miss: it fills the tier */
    long long hits = proxy_stat(c, "hits");
    sock_call_expect(c, "GET k\nGET k", 2, "$1\r\nv\r\n$1\r\nv\r\n");
    cr_assert_eq(proxy_stat(c, "hits"), hits + 2, "the reads were not served from the tier");
    sock_call_expect(c, "CLIENT GETNAME", 1, "$5\r\nweb-1\r\n");
    close(c);
    proxy_finish(&fx_proxy);
}

/* Whether Redis's CLIENT LIST shows a connection named name. */
static bool listed(const char *name)
{
    char needle[64];
    int n = snprintf(needle, sizeof(needle), "name=%s ", name);
    struct bytes list = redis_call(&fx_redis, "CLIENT LIST");
    bool found = memmem(list.data, list.len, needle, (size_t)n) != NULL;
    bytes_free(&list);
    return found;
}

/* Redis's count of connections accepted since it started (this call's own
 * connection included). */
static long long connections_received(void)
{
    struct bytes info = redis_call(&fx_redis, "INFO stats");
    const char *at = memmem(info.data, info.len, "total_connections_received:", 27);
    long long n = at != NULL ? atoll(at + 27) : -1;
    bytes_free(&info);
    return n;
}

/* A named client that takes a dedicated connection takes its name along
 * (Redis's CLIENT LIST shows it there); given back, the connection loses the
 * name and is kept as a spare, which the client's next transaction reuses. */
Test(preamble, a_name_follows_the_client_to_its_dedicated_connection)
{
    start_as_app();
    int c = sock_connect_or_fail(fx_proxy.port);
    sock_call_expect(c, "CLIENT SETNAME web-2\nMULTI", 2, "+OK\r\n+OK\r\n");
    cr_assert(listed("web-2"), "the dedicated connection has no name");
    sock_call_expect(c, "DISCARD", 1, "+OK\r\n");
    for (int i = 0; listed("web-2"); i++) {
        cr_assert_lt(i, 200, "the spare kept the client's name");
        harness_sleep_ms(10);
    }
    long long before = connections_received();
    sock_call_expect(c, "MULTI\nDISCARD\nCLIENT GETNAME", 3, "+OK\r\n+OK\r\n$5\r\nweb-2\r\n");
    cr_assert_eq(connections_received(), before + 1, "the spare was not reused");
    close(c);
    proxy_finish(&fx_proxy);
}

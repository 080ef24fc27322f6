/* tests/integration/auth.c - client authentication at the proxy
 * (clients.password, clients.users): a Redis with requirepass and the same
 * users in its ACL answers every AUTH, HELLO ... AUTH, NOAUTH and NOPERM
 * case byte for byte as the proxy does; authenticated clients stay on shared
 * connections and are served from the tier; passwords never reach the log. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness/bytes.h"
#include "harness/fixtures.h"
#include "harness/policy.h"
#include "harness/proxy.h"
#include "harness/redis.h"
#include "harness/session.h"
#include "harness/sock.h"

TestSuite(auth, .init = fixture_redis, .fini = fixture_policy_stop, .timeout = 60);

/* The users, in Redis's ACL and in the proxy's config: "orders" may run
 * GET, SET and MGET on orders:* only (given by the SHA-256 of "ordpw"). */
static const char CONFIG[] = "upstream:\n"
                             "  password: pw\n"
                             "clients:\n"
                             "  password: pw\n"
                             "  users:\n"
                             "    - {name: app, password: apppw}\n"
                             "    - name: orders\n"
                             "      password_sha256: "
                             "24daf6e2fe43f38a8db5e13835b7c79b5beba0e7f034f5132cda20c4223dd8d4\n"
                             "      keys: ['orders:*']\n"
                             "      commands: [get, set, mget]\n";

static void start(void)
{
    harness_require_proxy();
    redis_call_expect(&fx_redis, "ACL SETUSER app on >apppw ~* &* +@all", "+OK\r\n");
    redis_call_expect(&fx_redis, "ACL SETUSER orders on >ordpw ~orders:* +get +set +mget",
                      "+OK\r\n");
    redis_require_password(&fx_redis, "pw");
    proxy_start_config(&fx_proxy, fx_redis.port, write_config(CONFIG), NULL);
}

/* Stops the proxy, which must still be running. */
static void finish(void)
{
    cr_assert(!proxy_log_contains(&fx_proxy, "apppw") && !proxy_log_contains(&fx_proxy, "ordpw"),
              "a password reached the log");
    proxy_stop_clean(&fx_proxy);
}

/* Runs first (its reply not compared: HELLO's holds a connection id), then
 * lines (one reply each) on a fresh connection to Redis and to the proxy, and
 * fails unless the replies to lines are the same bytes. */
static void compare_after(const char *first, const char *lines)
{
    size_t n = 1;
    for (const char *p = lines; *p != '\0'; p++)
        n += *p == '\n';
    struct bytes direct = {0}, proxied = {0};
    int d = sock_connect_or_fail(fx_redis.port), p = sock_connect_or_fail(fx_proxy.port);
    redis_reset(&fx_redis);
    if (first != NULL)
        sock_call_or_fail(d, first, 1, &direct);
    sock_call_or_fail(d, lines, n, &direct);
    redis_reset(&fx_redis);
    if (first != NULL)
        sock_call_or_fail(p, first, 1, &proxied);
    sock_call_or_fail(p, lines, n, &proxied);
    compare_bytes(lines, &direct, &proxied);
    close(d);
    close(p);
    bytes_free(&direct);
    bytes_free(&proxied);
}

static const char *const CASES[] = {
    /* Nothing but AUTH, HELLO, QUIT and RESET before authenticating. */
    "GET k\nSET k v\nPING\nCLIENT SETNAME x\nSELECT 1\nMULTI\nHELLO\nHELLO 3\nHELLO 2\nRESET\nGET "
    "k",
    /* Redis's own errors come first: unknown commands, arity. */
    "FOO\nGET\nGET k",
    /* Wrong passwords, unknown users, malformed AUTH: the connection is kept. */
    "AUTH wrong\nAUTH app wrong\nAUTH nobody apppw\nAUTH a b c\nAUTH\nAUTH default wrong\nGET k",
    "HELLO 3 AUTH app wrong\nHELLO 2 AUTH nobody x\nGET k",
    /* The default user, and a user; a failed AUTH keeps the user it had. */
    "AUTH pw\nSET k v\nGET k\nAUTH wrong\nGET k",
    "AUTH default pw\nGET k",
    "AUTH app apppw\nSET k v2\nGET k\nRESET\nGET k\nAUTH app apppw\nGET k",
    /* A user limited to some keys and commands. */
    "AUTH orders ordpw\nSET orders:1 x\nGET orders:1\nGET k\nSET k y\nDEL orders:1\n"
    "MGET orders:1 orders:2\nMGET orders:1 k\nPING\nMULTI\nCLIENT GETNAME\nGET\nRESET\nGET k",
};

Test(auth, every_case_replies_as_redis)
{
    start();
    for (size_t i = 0; i < ARRAY_LEN(CASES); i++)
        compare_after(NULL, CASES[i]);
    /* RESP3 after HELLO ... AUTH: nil, maps and the name are RESP3's. */
    compare_after("HELLO 3 AUTH app apppw SETNAME web",
                  "SET k v\nGET k\nGET nokey\nHSET h f v\nHGETALL h\nCLIENT GETNAME\nRESET\nGET k");
    compare_after("HELLO 3 AUTH orders ordpw", "GET orders:1\nGET k\nAUTH app apppw\nGET k");
    finish();
}

/* Whether reading GET k through fd turns into tier hits. */
static void served_from_tier(int fd)
{
    cache_read(fd, "GET k", "$1\r\nv\r\n");
    long long hits = proxy_stat(fd, "hits");
    sock_call_expect(fd, "GET k\nGET k", 2, "$1\r\nv\r\n$1\r\nv\r\n");
    cr_assert_eq(proxy_stat(fd, "hits"), hits + 2);
}

Test(auth, authenticated_clients_are_served_from_the_tier)
{
    static const char *const PREAMBLES[] = {"AUTH pw", "AUTH app apppw",
                                            "HELLO 3 AUTH app apppw SETNAME web"};
    start();
    redis_call_expect(&fx_redis, "SET k v", "+OK\r\n");
    for (size_t i = 0; i < ARRAY_LEN(PREAMBLES); i++) {
        struct bytes in = {0};
        int c = sock_connect_or_fail(fx_proxy.port);
        sock_call_or_fail(c, PREAMBLES[i], 1, &in);
        cr_assert(in.len > 0 && in.data[0] != '-', "%s: %s", PREAMBLES[i], bytes_show(&in));
        served_from_tier(c);
        bytes_free(&in);
        close(c);
    }
    finish();
}

/* A reload that removes a user logs its clients out; one that adds a user
 * lets it in, without a restart. */
Test(auth, a_reload_changes_the_users)
{
    start();
    int c = sock_connect_or_fail(fx_proxy.port);
    sock_call_expect(c, "AUTH app apppw\nPING", 2, "+OK\r\n+PONG\r\n");
    write_config("upstream:\n  password: pw\nclients:\n  users:\n    - {name: new, password: x}\n");
    sock_call_expect(c, "NEARCACHE RELOAD", 1, "+OK\r\n");
    sock_call_expect(c, "PING\nAUTH pw\nAUTH new x\nPING", 4,
                     "-NOAUTH Authentication required.\r\n"
                     "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
                     "+OK\r\n+PONG\r\n");
    close(c);
    proxy_stop_clean(&fx_proxy);
}

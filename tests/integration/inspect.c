/* inspect.c - end-to-end tests of NEARCACHE INSPECT <key> and NEARCACHE
 * EXPLAIN <key> [command [args...]] (proxy/admin_inspect.h) against a real
 * redis-server: a key's variants as reads fill the tier and writes empty it
 * (RESP2 and RESP3, a TTL no longer than the key's, a rule that does not
 * cache), a write in flight, the tracking state; the rules EXPLAIN names for
 * keys that each kind of rule matches, for writes, without rules; wrong
 * argument counts. The suite runs again with two workers sharing the tier.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/bytes.h"
#include "harness/clock.h"
#include "harness/fixtures.h"
#include "harness/policy.h"
#include "harness/proxy.h"
#include "harness/redis.h"
#include "harness/sock.h"
#include "tests/lines.h"

TestSuite(inspect, .init = fixture_redis, .fini = fixture_policy_stop, .timeout = 90);

static const char POLICY[] = "policy:\n"
                             "  validate:\n"
                             "    - name: sessions-ro\n"
                             "      keys: \"session:*\"\n"
                             "      action: read-only\n"
                             "  cache:\n"
                             "    - name: live\n"
                             "      keys: \"live:*\"\n"
                             "      cache: false\n"
                             "    - name: users\n"
                             "      keys: \"user:*\"\n"
                             "      ttl: 60s\n"
                             "  invalidate:\n"
                             "    - name: profile\n"
                             "      when: \"user:{id}\"\n"
                             "      drop: [\"user:{id}:profile\"]\n";

/* The text of the bulk reply to line through fd (caller frees). */
static char *ask(int fd, const char *line)
{
    struct bytes in = {0};
    sock_call_or_fail(fd, line, 1, &in);
    cr_assert(in.len > 0 && in.data[0] == '$', "%s: %s", line, bytes_show(&in));
    char *body = strstr(in.data, "\r\n");
    cr_assert_not_null(body);
    char *text = strdup(body + 2);
    cr_assert_not_null(text);
    text[strlen(text) - 2] = '\0'; /* the bulk's own CRLF */
    bytes_free(&in);
    return text;
}

/* Fails unless INSPECT key through fd holds every line of want (NULL-terminated). */
static char *inspect_expect(int fd, const char *key, const char *const *want)
{
    char line[128];
    snprintf(line, sizeof(line), "NEARCACHE INSPECT %s", key);
    char *text = ask(fd, line);
    for (; *want != NULL; want++)
        cr_assert(has_line(text, *want), "%s: no line %s in\n%s", line, *want, text);
    return text;
}

/* The value of the ttl_ms= field of the variant line of text ending in tail. */
static long long variant_ttl(const char *text, const char *tail)
{
    for (const char *at = strstr(text, "variant:"); at != NULL; at = strstr(at + 1, "variant:")) {
        const char *end = strstr(at, "\r\n");
        size_t n = strlen(tail);
        if (end - at > (long)n && strncmp(end - n, tail, n) == 0)
            return atoll(strstr(at, "ttl_ms=") + 7);
    }
    cr_assert_fail("no variant ending in %s in\n%s", tail, text);
    return -1;
}

Test(inspect, a_key_through_fill_hit_and_write)
{
    start_with_policy(POLICY, NO_TRACKING);
    redis_call_expect(&fx_redis, "SET user:1 hello PX 30000", "+OK\r\n");
    redis_call_expect(&fx_redis, "HSET user:h f1 v", ":1\r\n");
    int c = sock_connect_or_fail(fx_proxy.port);
    free(inspect_expect(c, "user:1",
                        (const char *[]){"db:0", "cached:0", "rule:users cache=1 ttl_ms=60000",
                                         "tracked:1", "writes_in_flight:0", "tracking:off", NULL}));
    cache_read(c, "GET user:1", "$5\r\nhello\r\n");
    struct bytes pttl = redis_call(&fx_redis, "PTTL user:1");
    char *text = inspect_expect(c, "user:1", (const char *[]){"cached:1", NULL});
    cr_assert_eq(lines_with(text, "variant:"), 1, "%s", text);
    cr_assert_eq(lines_with(text, "variant:resp2 bytes=11 stored=11 "), 1, "%s", text);
    long long ttl = variant_ttl(text, " compressed=0 current=1 get");
    /* Capped by the key's own PTTL (read just before; the loop's clock may lag a little). */
    cr_assert(ttl > 0 && ttl <= atoll(pttl.data + 1) + 20, "ttl_ms=%lld, PTTL %s", ttl,
              bytes_show(&pttl));
    free(text);
    bytes_free(&pttl);
    /* A RESP3 client's read is a variant of its own. */
    int c3 = sock_connect_or_fail(fx_proxy.port);
    struct bytes in = {0};
    sock_call_or_fail(c3, "HELLO 3", 1, &in);
    cache_read(c3, "GET user:1", "$5\r\nhello\r\n");
    text = inspect_expect(c, "user:1", (const char *[]){"cached:1", NULL});
    cr_assert_eq(lines_with(text, "variant:resp3 bytes=11 "), 1, "%s", text);
    cr_assert_eq(lines_with(text, "variant:resp2 bytes=11 "), 1, "%s", text);
    variant_ttl(text, " current=1 get");
    free(text);
    /* The arguments but the key are shown. */
    cache_read(c, "HGET user:h f1", "$1\r\nv\r\n");
    text = inspect_expect(c, "user:h", (const char *[]){"cached:1", NULL});
    variant_ttl(text, " current=1 hget f1");
    free(text);
    /* Another database holds none of them. */
    sock_call_expect(c3, "SELECT 2", 1, "+OK\r\n");
    free(inspect_expect(c3, "user:h", (const char *[]){"db:2", "cached:0", NULL}));
    /* A write through the proxy drops them all. */
    sock_call_expect(c, "SET user:1 x", 1, "+OK\r\n");
    text = inspect_expect(c, "user:1",
                          (const char *[]){"cached:0", "rule:users cache=1 ttl_ms=60000", NULL});
    cr_assert_eq(lines_with(text, "variant:"), 0, "%s", text);
    free(text);
    bytes_free(&in);
    close(c3);
    close(c);
    proxy_finish(&fx_proxy);
}

Test(inspect, a_key_its_rule_does_not_cache_and_a_key_outside_the_prefixes)
{
    start_with_policy(POLICY, (const char *[]){"cache.tracking_prefixes=user:", NULL});
    redis_call_expect(&fx_redis, "SET live:1 a", "+OK\r\n");
    int c = sock_connect_or_fail(fx_proxy.port);
    for (int i = 0; i < 3; i++)
        sock_call_expect(c, "GET live:1", 1, "$1\r\na\r\n");
    char *text = inspect_expect(
        c, "live:1", (const char *[]){"cached:0", "rule:live cache=0", "tracked:0", NULL});
    cr_assert_eq(lines_with(text, "variant:"), 0, "%s", text);
    free(text);
    /* The state of the worker's tracking, once the subscriber is up. */
    for (int i = 0;; i++) {
        text = ask(c, "NEARCACHE INSPECT user:1");
        if (has_line(text, "tracking:on"))
            break;
        cr_assert(i < HARNESS_TIMEOUT_MS / 25, "tracking never came on:\n%s", text);
        free(text);
        harness_sleep_ms(25);
    }
    cr_assert(has_line(text, "tracked:1"), "%s", text);
    free(text);
    close(c);
    proxy_finish(&fx_proxy);
}

Test(inspect, a_write_in_flight)
{
    start_with_policy(POLICY, NO_TRACKING);
    int w = sock_connect_or_fail(fx_proxy.port), c = sock_connect_or_fail(fx_proxy.port);
    sock_call_expect(c, "PING", 1, "+PONG\r\n");
    redis_call_expect(&fx_redis, "CLIENT PAUSE 2000 WRITE", "+OK\r\n");
    struct bytes set = {0}, in = {0};
    req_add(&set, "SET", "user:7", "v", NULL);
    cr_assert_eq(sock_exchange(w, set.data, set.len, &in, NULL, 0, HARNESS_TIMEOUT_MS), SOCK_DONE);
    for (int i = 0;; i++) { /* the SET reaches the proxy, then waits on Redis */
        char *text = ask(c, "NEARCACHE INSPECT user:7");
        bool writing = has_line(text, "writes_in_flight:1");
        free(text);
        if (writing)
            break;
        cr_assert(i < 1000 / 10, "the paused SET never showed as in flight");
        harness_sleep_ms(10);
    }
    redis_call_expect(&fx_redis, "CLIENT UNPAUSE", "+OK\r\n");
    cr_assert_eq(sock_read_replies(w, &in, 0, 1, HARNESS_TIMEOUT_MS), SOCK_DONE);
    cr_assert(bytes_equal_str(&in, "+OK\r\n"), "%s", bytes_show(&in));
    free(inspect_expect(c, "user:7", (const char *[]){"writes_in_flight:0", NULL}));
    bytes_free(&set);
    bytes_free(&in);
    close(w);
    close(c);
    proxy_finish(&fx_proxy);
}

Test(inspect, explain_names_the_rules_of_each_kind)
{
    static const struct {
        const char *line;
        const char *want[4];
    } cases[] = {
        {"NEARCACHE EXPLAIN user:1",
         {"request:get user:1", "cacheable:1",
          "cache:users:cache: decides [keys=user:* ttl_ms=60000 max_entry=0 compress_over=0]",
          "invalidate:profile:fires: drops user:1:profile [when=user:{id} commands=*]"}},
        {"NEARCACHE EXPLAIN user:1:profile",
         {"invalidate:profile:dropped_by: a write of user:1 [drop=user:{id}:profile commands=*]",
          "stamps:2"}},
        {"NEARCACHE EXPLAIN session:1 set x",
         {"request:set session:1 x", "command:set", "writes_key:1",
          "validate:sessions-ro:reject: decides [keys=session:* commands=* action=read-only]: "
          "keys matching this rule are read-only"}},
        {"NEARCACHE EXPLAIN session:1 DEL",
         {"request:DEL session:1", "cacheable:0",
          "validate:sessions-ro:reject: decides [keys=session:* commands=* action=read-only]: "
          "keys matching this rule are read-only"}},
        {"NEARCACHE EXPLAIN live:1 hget f",
         {"request:hget live:1 f", "cacheable:1",
          "cache:live:bypass: decides [keys=live:* cache=false]"}},
        {"NEARCACHE EXPLAIN other SET",
         {"request:SET other \"\"",
          "validate:default:allow: decides, no rule applies [action=allow]",
          "cache:default:cache: decides, no rule matches [ttl_ms=300000 max_entry=0 "
          "compress_over=0]"}},
        {"NEARCACHE EXPLAIN k nosuch a", {"request:nosuch k a", "command:unknown", "cacheable:0"}},
        {"NEARCACHE EXPLAIN \"user:a b\"",
         {"request:get user:a\\x20b",
          "invalidate:profile:fires: drops user:a\\x20b:profile [when=user:{id} commands=*]"}},
    };
    start_with_policy(POLICY, NO_TRACKING);
    int c = sock_connect_or_fail(fx_proxy.port);
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char *text = ask(c, cases[i].line);
        for (size_t k = 0; k < ARRAY_LEN(cases[i].want) && cases[i].want[k] != NULL; k++)
            cr_expect(has_line(text, cases[i].want[k]), "%s: no line %s in\n%s", cases[i].line,
                      cases[i].want[k], text);
        free(text);
    }
    /* An explanation fires nothing: the entry of user:1:profile stays. */
    redis_call_expect(&fx_redis, "SET user:1:profile p", "+OK\r\n");
    cache_read(c, "GET user:1:profile", "$1\r\np\r\n");
    free(ask(c, "NEARCACHE EXPLAIN user:1 SET v"));
    free(inspect_expect(c, "user:1:profile", (const char *[]){"cached:1", NULL}));
    rule_expect(c, "invalidate", "profile", 0, 0, 0, 0);
    close(c);
    proxy_finish(&fx_proxy);
}

Test(inspect, explain_without_rules)
{
    start_with_policy("cache:\n  ttl: 90s\n", NO_TRACKING);
    int c = sock_connect_or_fail(fx_proxy.port);
    char *text = ask(c, "NEARCACHE EXPLAIN k");
    cr_assert_str_eq(text, "request:get k\r\ncommand:get\r\nwrites_key:0\r\n"
                           "validate:default:allow: decides, no rule applies [action=allow]\r\n"
                           "cacheable:1\r\n"
                           "cache:default:cache: decides, no rule matches [ttl_ms=90000 "
                           "max_entry=0 compress_over=0]\r\n"
                           "stamps:0\r\n");
    free(text);
    close(c);
    proxy_finish(&fx_proxy);
}

Test(inspect, wrong_argument_counts_get_the_usage_error)
{
    static const char *const lines[] = {"NEARCACHE INSPECT", "NEARCACHE INSPECT a b",
                                        "NEARCACHE EXPLAIN", "nearcache inspect",
                                        "NEARCACHE STATS x", "NEARCACHE NOSUCH k"};
    start_with_policy(POLICY, NO_TRACKING);
    int c = sock_connect_or_fail(fx_proxy.port);
    for (size_t i = 0; i < ARRAY_LEN(lines); i++)
        sock_call_expect(c, lines[i], 1, PROXY_NEARCACHE_USAGE);
    sock_call_expect(c, "PING", 1, "+PONG\r\n"); /* the connection stays open */
    free(ask(c, "nearcache inspect k"));         /* any case */
    free(ask(c, "NEARCACHE EXPLAIN k get"));
    close(c);
    proxy_finish(&fx_proxy);
}

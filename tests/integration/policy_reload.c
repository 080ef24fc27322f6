/* policy_reload.c - end-to-end tests of replacing the YAML policy (spec:
 * policy-spec.md) against a real redis-server: hot reload by SIGHUP and
 * NEARCACHE RELOAD (a broken file keeps the running policy, a good one applies
 * on open connections, and the loop never waits for the file), and
 * --check-config on the shipped policy and on broken ones (file:line).
 *
 * Each test writes its own config file with a `policy:` section and starts
 * the proxy with --config on it (harness/policy.h). Unless a test needs
 * tracking, the proxy runs with cache.tracking=false so that only the policy
 * can explain what the tier serves: a value written directly on Redis and
 * still served stale proves the entry came from the tier, a fresh value
 * proves it did not.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness/bytes.h"
#include "harness/clock.h"
#include "harness/fixtures.h"
#include "harness/policy.h"
#include "harness/proc.h"
#include "harness/proxy.h"
#include "harness/redis.h"
#include "harness/sock.h"

TestSuite(policy, .init = fixture_redis, .fini = fixture_policy_stop, .timeout = 90);

/* ---- 9. hot reload ----------------------------------------------------------------- */

static const char RELOAD_P1[] = "policy:\n"
                                "  validate:\n"
                                "    - name: a-no-set\n"
                                "      keys: \"a:*\"\n"
                                "      commands: [set]\n"
                                "      action: deny\n"
                                "  cache:\n"
                                "    - name: c-rule\n"
                                "      keys: \"c:*\"\n"
                                "      ttl: 1m\n";

/* Line 6 holds the bad pattern. */
static const char RELOAD_BROKEN[] = "policy:\n"
                                    "  validate:\n"
                                    "    - name: a-writable\n"
                                    "      keys: \"a:*\"\n"
                                    "    - name: broken\n"
                                    "      keys: \"a:[\"\n";
#define RELOAD_BROKEN_AT "6: policy.validate[1].keys: "

static const char RELOAD_P2[] = "policy:\n"
                                "  validate:\n"
                                "    - name: a-writable\n"
                                "      keys: \"a:*\"\n"
                                "  cache:\n"
                                "    - name: c-rule\n"
                                "      keys: \"c:*\"\n"
                                "      ttl: 2m\n"
                                "    - name: live-b\n"
                                "      keys: \"b:*\"\n"
                                "      cache: false\n";

Test(policy, reload_keeps_the_old_policy_when_broken_and_applies_a_good_one_live)
{
    start_with_policy(RELOAD_P1, NO_TRACKING);
    int c = sock_connect_or_fail(fx_proxy.port);
    const char *p1_denied = rejection("a-no-set", "command 'set' is denied on these keys");
    redis_call_expect(&fx_redis, "SET b:1 old", "+OK\r\n");
    sock_call_expect(c, "SET a:1 x", 1, p1_denied);
    cache_key(c, "GET b:1", "$3\r\nold\r\n");
    redis_call_expect(&fx_redis, "SET b:1 new", "+OK\r\n");
    sock_call_expect(c, "GET b:1", 1, "$3\r\nold\r\n"); /* cached under P1 */
    redis_call_expect(&fx_redis, "SET c:1 old", "+OK\r\n");
    cache_key(c, "GET c:1", "$3\r\nold\r\n");
    redis_call_expect(&fx_redis, "SET c:1 new", "+OK\r\n");
    sock_call_expect(c, "GET c:1", 1, "$3\r\nold\r\n");

    /* A broken file and SIGHUP: logged with file:line, P1 stays. */
    write_config(RELOAD_BROKEN);
    char where[400];
    snprintf(where, sizeof(where), "%s:" RELOAD_BROKEN_AT, cfg_path);
    proxy_signal(&fx_proxy, SIGHUP);
    proxy_wait_log(&fx_proxy, where);
    struct bytes want = {0};
    bytes_printf(&want, "%s$3\r\nold\r\n+PONG\r\n", p1_denied);
    sock_call_expect(c, "SET a:1 y\nGET b:1\nPING", 3, want.data);

    /* NEARCACHE RELOAD answers the same error, on the same connection. */
    struct bytes in = {0};
    sock_call_or_fail(c, "NEARCACHE RELOAD", 1, &in);
    char prefix[480];
    snprintf(prefix, sizeof(prefix), "-ERR reload failed: %s", where);
    cr_assert(in.len > strlen(prefix) && strncmp(in.data, prefix, strlen(prefix)) == 0 &&
                  memchr(in.data, '\n', in.len) == in.data + in.len - 1,
              "NEARCACHE RELOAD: want %s..., got %s", prefix, bytes_show(&in));
    want.len = 0;
    bytes_printf(&want, "%s$3\r\nold\r\n", p1_denied);
    sock_call_expect(c, "SET a:2 y\nGET b:1", 2, want.data);
    redis_call_expect(&fx_redis, "EXISTS a:1 a:2", ":0\r\n");

    /* A good P2 and SIGHUP: enforced on the same connection. */
    write_config(RELOAD_P2);
    proxy_signal(&fx_proxy, SIGHUP);
    sock_read_until(c, "SET a:1 z", "+OK\r\n");
    redis_call_expect(&fx_redis, "GET a:1", "$1\r\nz\r\n");
    /* b:1 was cached under a rule P2 changed: no longer served. */
    sock_call_expect(c, "GET b:1", 1, "$3\r\nnew\r\n");
    redis_call_expect(&fx_redis, "SET b:1 newer", "+OK\r\n");
    sock_call_expect(c, "GET b:1\nGET b:1", 2, "$5\r\nnewer\r\n$5\r\nnewer\r\n");
    rule_expect(c, "cache", "live-b", 0, 3, 0, 0);
    /* c:1 was cached under a rule whose TTL P2 changed: not served either,
     * and cached again under the new rule. */
    sock_call_expect(c, "GET c:1", 1, "$3\r\nnew\r\n");
    redis_call_expect(&fx_redis, "SET c:1 newer", "+OK\r\n");
    sock_call_expect(c, "GET c:1", 1, "$3\r\nnew\r\n");
    /* Its counters carried over the reload (same kind and name): 2 hits and
     * 1 miss under P1, 1 of each under P2. */
    rule_expect(c, "cache", "c-rule", 3, 2, 0, 0);
    /* NEARCACHE RELOAD of a good file answers +OK. */
    sock_call_expect(c, "NEARCACHE RELOAD\nSET a:3 w", 2, "+OK\r\n+OK\r\n");
    bytes_free(&in);
    bytes_free(&want);
    close(c);
    proxy_finish(&fx_proxy);
}

/* Opens the FIFO at path for writing once a reader has it open (bounded). */
static int fifo_open_writer(const char *path)
{
    for (int i = 0; i < HARNESS_TIMEOUT_MS / 10; i++) {
        int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0)
            return fd;
        cr_assert(errno == ENXIO, "open %s: %s", path, strerror(errno));
        harness_sleep_ms(10);
    }
    cr_assert_fail("nothing opened %s for reading", path);
    return -1;
}

/* A reload reads and builds off the event loop. While it waits on the
 * settings file (a FIFO that nobody writes to yet), clients are served under
 * the running policy and its NEARCACHE RELOAD is not answered; once the file
 * arrives the new policy is applied and the reload answers +OK. */
Test(policy, reload_never_stalls_the_loop)
{
    start_with_policy(RELOAD_P1, NO_TRACKING);
    int c = sock_connect_or_fail(fx_proxy.port);
    int w = sock_connect_or_fail(fx_proxy.port);
    cr_assert(unlink(cfg_path) == 0 && mkfifo(cfg_path, 0600) == 0, "fifo: %s", strerror(errno));
    struct bytes in = {0}, req = {0};
    req_add(&req, "NEARCACHE", "RELOAD", NULL);
    cr_assert(sock_exchange(w, req.data, req.len, &in, NULL, 0, HARNESS_TIMEOUT_MS) == SOCK_DONE);
    int fifo = fifo_open_writer(cfg_path); /* the reload is reading now */
    struct bytes want = {0};
    bytes_printf(&want, "+OK\r\n$1\r\nx\r\n+PONG\r\n%s",
                 rejection("a-no-set", "command 'set' is denied on these keys"));
    sock_call_expect(c, "SET b:1 x\nGET b:1\nPING\nSET a:1 x", 4, want.data);
    cr_assert(sock_read_replies(w, &in, 0, 1, 200) == SOCK_TIMEOUT, "answered before the file: %s",
              bytes_show(&in));
    cr_assert(write(fifo, RELOAD_P2, sizeof(RELOAD_P2) - 1) == (ssize_t)sizeof(RELOAD_P2) - 1);
    close(fifo);
    cr_assert(sock_read_replies(w, &in, 0, 1, HARNESS_TIMEOUT_MS) == SOCK_DONE);
    cr_assert(bytes_equal_str(&in, "+OK\r\n"), "NEARCACHE RELOAD: %s", bytes_show(&in));
    sock_call_expect(c, "SET a:1 z", 1, "+OK\r\n");
    bytes_free(&in);
    bytes_free(&req);
    bytes_free(&want);
    close(c);
    close(w);
    proxy_finish(&fx_proxy);
}

/* ---- 10. --check-config ------------------------------------------------------------ */

/* A file of the source tree. */
static void source_path(char *dst, size_t len, const char *rel)
{
    snprintf(dst, len, "%s/%s", NEARCACHE_SOURCE_DIR, rel);
}

/* Runs nearcache --check-config --config path; its output into out. */
static int check_config(const char *path, struct bytes *out)
{
    char log[400];
    temp_path(log, sizeof(log), "check.out");
    const char *argv[] = {harness_bin(), "--check-config", "--config", path, NULL};
    int status = harness_run(argv, log, HARNESS_TIMEOUT_MS);
    out->len = 0;
    bytes_append_file(out, log);
    bytes_puts(out, "");
    return status;
}

Test(policy, check_config_accepts_the_shipped_policy)
{
    harness_require_proxy();
    char path[512];
    source_path(path, sizeof(path), "config/policy.yaml");
    cr_assert_eq(access(path, R_OK), 0, "%s is not readable", path);
    struct bytes out = {0};
    int status = check_config(path, &out);
    cr_assert(harness_exited_with(status, 0), "--check-config %s: status %#x, output %s", path,
              status, bytes_show(&out));
    /* It does hold a policy (this test cannot pass on an empty file). */
    struct bytes text = {0};
    cr_assert(bytes_append_file(&text, path));
    bytes_puts(&text, "");
    cr_assert(strncmp(text.data, "policy:", 7) == 0 || strstr(text.data, "\npolicy:") != NULL,
              "%s has no policy section", path);
    bytes_free(&text);
    bytes_free(&out);
}

Test(policy, check_config_reports_file_line_for_a_broken_policy)
{
    harness_require_proxy();
    static const struct {
        const char *yaml;
        int line;
        const char *where; /* the start of the message after "file:line: " */
    } CASES[] = {
        {"policy:\n  validate:\n    - {name: x, keys: \"a:[\"}\n", 3, "policy.validate[0].keys: "},
        {"policy:\n  validate:\n    - {name: x, keys: \"a:*\", bogus: 1}\n", 3,
         "policy.validate[0]"},
        {"policy:\n  cache:\n    - {name: ok, keys: \"a:*\"}\n"
         "    - {name: t, keys: \"b:*\", ttl: {min: 10s, max: 5s}}\n",
         4, "policy.cache[1].ttl: min 10000ms is above max 5000ms\n"},
        {"policy:\n  invalidate:\n    - {name: i, when: \"m:{a}\", drop: \"e:{b}:*\"}\n", 3,
         "policy.invalidate[0].drop"},
        {"policy:\n  modules:\n    - {name: no-such-module}\n", 3, "policy.modules[0]"},
        {"policy:\n  default:\n    action: maybe\n", 3, "policy.default.action: "},
    };
    for (size_t i = 0; i < ARRAY_LEN(CASES); i++) {
        char path[400], want[600];
        snprintf(want, sizeof(want), "broken%zu.yaml", i);
        temp_path(path, sizeof(path), want);
        harness_write_file(path, CASES[i].yaml);
        struct bytes out = {0};
        int status = check_config(path, &out);
        snprintf(want, sizeof(want), "%s:%d: %s", path, CASES[i].line, CASES[i].where);
        cr_assert(harness_exited_with(status, 2), "case %zu: status %#x, output %s", i, status,
                  bytes_show(&out));
        cr_assert(strncmp(out.data, want, strlen(want)) == 0, "case %zu: want %s..., got %s", i,
                  want, bytes_show(&out));
        cr_assert(strchr(out.data, '\n') == out.data + out.len - 1, "case %zu: not one line: %s", i,
                  bytes_show(&out));
        bytes_free(&out);
    }
}

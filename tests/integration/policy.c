/* policy.c - end-to-end tests of the YAML policy (spec: policy-spec.md,
 * engine contract: policy/policy.h) against a real redis-server: validation
 * rejections byte for byte (deny_commands, value and key limits, read-only
 * and allow-list rules, command classes, custom reasons, the hygiene module),
 * alone, pipelined and inside MULTI; cache rules (bypass, fixed TTL,
 * admission, max_entry, compression); invalidation rules fired through the
 * proxy and by writes made directly on Redis; per-rule statistics; hot reload
 * by SIGHUP and NEARCACHE RELOAD; and --check-config.
 *
 * Each test writes its own config file with a `policy:` section and starts
 * the proxy with --config on it. Unless a test needs tracking, the proxy runs
 * with cache.tracking=false so that only the policy can explain what the tier
 * serves: a value written directly on Redis and still served stale proves the
 * entry came from the tier, a fresh value proves it did not.
 */
#include "session.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char cfg_dir[256];
static char cfg_path[320];

static void policy_fini(void)
{
    fixture_stop();
    if (cfg_dir[0] != '\0')
        harness_rmdir(cfg_dir);
    cfg_dir[0] = '\0';
}

TestSuite(policy, .init = fixture_redis, .fini = policy_fini, .timeout = 90);

static const char *const NO_TRACKING[] = {"cache.tracking=false", NULL};

/* ---- helpers ------------------------------------------------------------------ */

/* A path in the test's temp dir (created on first use, removed by .fini). */
static const char *temp_path(char *dst, size_t len, const char *name)
{
    if (cfg_dir[0] == '\0')
        harness_mkdtemp(cfg_dir, sizeof(cfg_dir));
    int n = snprintf(dst, len, "%s/%s", cfg_dir, name);
    cr_assert(n > 0 && (size_t)n < len, "temp path too long: %s/%s", cfg_dir, name);
    return dst;
}

/* (Re)writes the test's config file with yaml; returns its path. */
static const char *write_config(const char *yaml)
{
    temp_path(cfg_path, sizeof(cfg_path), "nearcache.yaml");
    harness_write_file(cfg_path, yaml);
    return cfg_path;
}

/* Starts fx_proxy with yaml as its config file and the settings in sets. */
static void start_with_policy(const char *yaml, const char *const *sets)
{
    harness_require_proxy();
    proxy_start_config(&fx_proxy, fx_redis.port, write_config(yaml), sets);
}

/* "-ERR policy <rule>: <reason>\r\n" appended to b. */
static void add_rejection(struct bytes *b, const char *rule, const char *reason)
{
    bytes_printf(b, "-ERR policy %s: %s\r\n", rule, reason);
}

/* printf into one of 8 static buffers used in turn: enough for the
 * arguments of one call. */
static const char *ring_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *ring_printf(const char *fmt, ...)
{
    static char ring[8][320];
    static unsigned next;
    char *dst = ring[next++ % 8];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, sizeof(ring[0]), fmt, ap);
    va_end(ap);
    return dst;
}

/* "-ERR policy <rule>: <reason>\r\n". */
static const char *rejection(const char *rule, const char *reason)
{
    return ring_printf("-ERR policy %s: %s\r\n", rule, reason);
}

static const char *value_reason(size_t size, size_t limit)
{
    return ring_printf("value of %zu bytes is over the %zu byte limit", size, limit);
}

static const char *key_reason(size_t size, size_t limit)
{
    return ring_printf("key of %zu bytes is over the %zu byte limit", size, limit);
}

/* Sends the whole requests in req in one write, reads n replies and fails
 * unless they are exactly want. */
static void exchange_expect(int fd, const struct bytes *req, size_t n, const struct bytes *want,
                            const char *what)
{
    struct bytes in = {0};
    sock_status_e st = sock_exchange(fd, req->data, req->len, &in, NULL, 0, HARNESS_TIMEOUT_MS);
    if (st == SOCK_DONE)
        st = sock_read_replies(fd, &in, 0, n, HARNESS_TIMEOUT_MS);
    cr_assert(st == SOCK_DONE, "%s: %s after %s", what,
              st == SOCK_EOF ? "connection closed" : "no reply", bytes_show(&in));
    bytes_assert_equal(what, want, &in);
    bytes_free(&in);
}

/* exchange_expect with a one-reply request and a NUL-terminated want. */
static void request_expect(int fd, const struct bytes *req, const char *want, const char *what)
{
    struct bytes w = {0};
    bytes_puts(&w, want);
    exchange_expect(fd, req, 1, &w, what);
    bytes_free(&w);
}

/* n bytes of filler (caller frees): a pattern with CR, LF and NUL in it. */
static char *filler(size_t n, char seed)
{
    char *p = malloc(n ? n : 1);
    cr_assert(p != NULL);
    static const char PATTERN[] = "nearcache policy test value\r\n\0";
    for (size_t i = 0; i < n; i++)
        p[i] = i % 61 == 0 ? seed : PATTERN[i % (sizeof(PATTERN) - 1)];
    return p;
}

/* SET key value directly on Redis, binary safe. */
static void redis_set_raw(const char *key, const char *value, size_t n)
{
    int fd = sock_connect_or_fail(fx_redis.port);
    struct bytes req = {0};
    const char *argv[] = {"SET", key, value};
    const size_t lens[] = {3, strlen(key), n};
    req_addv(&req, 3, argv, lens);
    request_expect(fd, &req, "+OK\r\n", "direct SET");
    bytes_free(&req);
    close(fd);
}

/* The body of NEARCACHE POLICY (a bulk string) into out, NUL-terminated. */
static void policy_text(int fd, struct bytes *out)
{
    struct bytes in = {0};
    sock_call_or_fail(fd, "NEARCACHE POLICY", 1, &in);
    bytes_puts(&in, "");
    cr_assert(in.data[0] == '$', "NEARCACHE POLICY is not a bulk string: %s", bytes_show(&in));
    const char *nl = strstr(in.data, "\r\n");
    long long n = atoll(in.data + 1);
    size_t head = (size_t)(nl - in.data) + 2;
    cr_assert(n >= 0 && head + (size_t)n + 2 == in.len, "NEARCACHE POLICY framing: %s",
              bytes_show(&in));
    out->len = 0;
    bytes_append(out, in.data + head, (size_t)n);
    bytes_free(&in);
}

/* The line of NEARCACHE POLICY starting with prefix, or NULL. */
static const char *find_line(const struct bytes *text, const char *prefix)
{
    size_t plen = strlen(prefix);
    for (const char *at = text->data; at != NULL && *at != '\0';) {
        if (strncmp(at, prefix, plen) == 0)
            return at;
        at = strstr(at, "\r\n");
        if (at != NULL)
            at += 2;
    }
    return NULL;
}

struct counts {
    long long hits, misses, rejections, invalidations;
};

/* The counters of one rule from NEARCACHE POLICY ("validate", "cache",
 * "invalidate" or "module" for kind). */
static struct counts rule_counts(int fd, const char *kind, const char *name)
{
    struct bytes text = {0};
    policy_text(fd, &text);
    char prefix[160];
    snprintf(prefix, sizeof(prefix), "rule:%s:%s:", kind, name);
    const char *line = find_line(&text, prefix);
    cr_assert_not_null(line, "NEARCACHE POLICY has no %s line:\n%s", prefix,
                       text.data ? text.data : "");
    struct counts c;
    int got =
        sscanf(line + strlen(prefix), "hits=%lld,misses=%lld,rejections=%lld,invalidations=%lld",
               &c.hits, &c.misses, &c.rejections, &c.invalidations);
    cr_assert_eq(got, 4, "malformed NEARCACHE POLICY line: %.*s", (int)strcspn(line, "\r\n"), line);
    bytes_free(&text);
    return c;
}

/* Fails unless NEARCACHE POLICY holds exactly this line for the rule. */
static void rule_expect(int fd, const char *kind, const char *name, long long hits,
                        long long misses, long long rejections, long long invalidations)
{
    struct bytes text = {0};
    policy_text(fd, &text);
    char line[256];
    snprintf(line, sizeof(line),
             "rule:%s:%s:hits=%lld,misses=%lld,rejections=%lld,invalidations=%lld\r\n", kind, name,
             hits, misses, rejections, invalidations);
    char prefix[160];
    snprintf(prefix, sizeof(prefix), "rule:%s:%s:", kind, name);
    const char *at = find_line(&text, prefix);
    cr_assert(at != NULL && strncmp(at, line, strlen(line)) == 0,
              "want %.*s; NEARCACHE POLICY:\n%s", (int)strlen(line) - 2, line,
              text.data ? text.data : "");
    bytes_free(&text);
}

/* Reads line through fd until the global hits counter grows (a fill, then a
 * hit); every reply must be want. */
static void cache_key(int fd, const char *line, const char *want)
{
    long long hits = proxy_stat(fd, "hits");
    for (int i = 0; proxy_stat(fd, "hits") == hits; i++) {
        cr_assert(i < 100, "%s was never served from the tier", line);
        sock_call_expect(fd, line, 1, want);
    }
}

/* Waits until the proxy's tier is active (the subscriber is up and redirected). */
static void wait_active(int fd)
{
    for (int i = 0; proxy_stat(fd, "cache_active") != 1; i++) {
        cr_assert(i < HARNESS_TIMEOUT_MS / 25, "the tier never became active");
        harness_sleep_ms(25);
    }
}

/* The whole reply of one direct request, NUL-terminated (caller frees). */
static struct bytes direct(const char *line)
{
    struct bytes b = redis_call(&fx_redis, line);
    bytes_puts(&b, "");
    return b;
}

/* ---- 1. deny_commands ----------------------------------------------------------- */

static const char DENY_YAML[] = "policy:\n"
                                "  deny_commands: [flushall, flushdb, keys, debug, config]\n";

Test(policy, deny_commands_are_rejected_not_forwarded_and_the_connection_stays)
{
    start_with_policy(DENY_YAML, NO_TRACKING);
    redis_call_expect(&fx_redis, "SET keep 1", "+OK\r\n");
    redis_call_expect(&fx_redis, "CONFIG RESETSTAT", "+OK\r\n");
    int c = sock_connect_or_fail(fx_proxy.port);
    static const struct {
        const char *line;
        const char *name;
    } CASES[] = {
        {"FLUSHALL", "flushall"},
        {"flushdb", "flushdb"},
        {"KEYS *", "keys"},
        {"CONFIG GET maxmemory", "config|get"},
        {"FlushAll ASYNC", "flushall"},
        {"DEBUG SLEEP 0", "debug"},
        {"config set maxmemory 1mb", "config|set"},
    };
    for (size_t i = 0; i < ARRAY_LEN(CASES); i++) {
        char reason[96];
        snprintf(reason, sizeof(reason), "command '%s' is denied", CASES[i].name);
        sock_call_expect(c, CASES[i].line, 1, rejection("deny_commands", reason));
        sock_call_expect(c, "PING", 1, "+PONG\r\n"); /* same connection, still open */
    }
    /* Nothing reached Redis: the data is there and it never ran them. */
    redis_call_expect(&fx_redis, "GET keep", "$1\r\n1\r\n");
    redis_call_expect(&fx_redis, "DBSIZE", ":1\r\n");
    struct bytes stats = direct("INFO commandstats");
    static const char *const NEVER[] = {
        "cmdstat_flushall:",   "cmdstat_flushdb:", "cmdstat_keys:",
        "cmdstat_config|get:", "cmdstat_debug:",   "cmdstat_config|set:"};
    for (size_t i = 0; i < ARRAY_LEN(NEVER); i++)
        cr_assert_null(strstr(stats.data, NEVER[i]), "Redis ran a denied command: %s in %s",
                       NEVER[i], stats.data);
    bytes_free(&stats);
    redis_call_expect(&fx_redis, "CONFIG GET maxmemory", "*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n");
    /* Allowed commands still work on the same connection. */
    sock_call_expect(c, "GET keep\nSET other 2\nGET other", 3, "$1\r\n1\r\n+OK\r\n$1\r\n2\r\n");
    close(c);
    proxy_finish(&fx_proxy);
}

/* ---- 2. pipelines --------------------------------------------------------------- */

static const char PIPELINE_YAML[] = "policy:\n"
                                    "  default:\n"
                                    "    max_value_size: 1kb\n"
                                    "  deny_commands: [flushall, keys]\n";

Test(policy, pipeline_mixing_allowed_and_rejected_requests_keeps_order)
{
    start_with_policy(PIPELINE_YAML, NO_TRACKING);
    redis_call_expect(&fx_redis, "SET pre kept", "+OK\r\n");
    int c = sock_connect_or_fail(fx_proxy.port);
    char *big = filler(2000, 'B');
    struct bytes req = {0}, want = {0};
    enum { ROUNDS = 40, PER_ROUND = 8 };
    for (int i = 1; i <= ROUNDS; i++) {
        char n[16];
        snprintf(n, sizeof(n), "%d", i);
        req_add(&req, "SET", "a", n, NULL);
        req_add(&req, "FLUSHALL", NULL);
        req_add(&req, "GET", "a", NULL);
        const char *set_big[] = {"SET", "big", big};
        const size_t set_big_lens[] = {3, 3, 2000};
        req_addv(&req, 3, set_big, set_big_lens);
        req_add(&req, "INCR", "c", NULL);
        req_add(&req, "GET", "big", NULL);
        req_add(&req, "KEYS", "*", NULL);
        req_add(&req, "PING", NULL);
        bytes_puts(&want, "+OK\r\n");
        add_rejection(&want, "deny_commands", "command 'flushall' is denied");
        bytes_append_bulk(&want, n, strlen(n));
        add_rejection(&want, "default", value_reason(2000, 1024));
        bytes_printf(&want, ":%d\r\n", i);
        bytes_puts(&want, "$-1\r\n");
        add_rejection(&want, "deny_commands", "command 'keys' is denied");
        bytes_puts(&want, "+PONG\r\n");
    }
    exchange_expect(c, &req, ROUNDS * PER_ROUND, &want, "pipeline");
    /* The rejected requests were not executed. */
    redis_call_expect(&fx_redis, "GET pre", "$4\r\nkept\r\n");
    redis_call_expect(&fx_redis, "EXISTS big", ":0\r\n");
    redis_call_expect(&fx_redis, "GET c", "$2\r\n40\r\n");
    redis_call_expect(&fx_redis, "GET a", "$2\r\n40\r\n");
    sock_call_expect(c, "PING", 1, "+PONG\r\n");
    free(big);
    bytes_free(&req);
    bytes_free(&want);
    close(c);
    proxy_finish(&fx_proxy);
}

/* ---- 3. transactions ------------------------------------------------------------ */

/* The steps of the transaction scenario, with %s for the rejected command;
 * between steps 1 and 2 the watched key w is written directly on Redis. */
static const struct {
    const char *lines;
    size_t replies;
} MULTI_STEPS[] = {
    {"MULTI\nSET x 1\n%s\nSET y 2\nEXEC", 5},  {"EXISTS x y\nWATCH w\nMULTI\nSET x 1\n%s\nEXEC", 6},
    {"MULTI\nSET z 1\nEXEC\nEXISTS x y z", 4}, {"MULTI\nGET z\n%s\nDISCARD\nPING\nEXISTS x y", 6},
    {"MULTI\nSET q 1\nINCR q\nEXEC", 4},
};

/* Runs MULTI_STEPS on a fresh connection to port with `rejected` as the
 * command Redis or the proxy refuses; appends every reply to out. */
static void multi_scenario(int port, const char *rejected, struct bytes *out)
{
    int fd = sock_connect_or_fail(port);
    for (size_t i = 0; i < ARRAY_LEN(MULTI_STEPS); i++) {
        char lines[256];
        snprintf(lines, sizeof(lines), MULTI_STEPS[i].lines, rejected);
        struct bytes in = {0};
        sock_call_or_fail(fd, lines, MULTI_STEPS[i].replies, &in);
        bytes_append(out, in.data, in.len);
        bytes_free(&in);
        if (i == 1)
            redis_call_expect(&fx_redis, "SET w changed", "+OK\r\n");
    }
    close(fd);
}

Test(policy, rejection_inside_multi_aborts_the_exec_like_a_queued_error)
{
    start_with_policy(DENY_YAML, NO_TRACKING);
    /* The shape Redis gives for a queued error (an unknown command). */
    struct bytes unknown = direct("NOSUCHCMD");
    cr_assert(unknown.len > 0 && unknown.data[0] == '-', "%s", bytes_show(&unknown));
    struct bytes redis_run = {0}, proxy_run = {0};
    multi_scenario(fx_redis.port, "NOSUCHCMD", &redis_run);
    redis_call_expect(&fx_redis, "FLUSHALL", "+OK\r\n");
    multi_scenario(fx_proxy.port, "FLUSHALL", &proxy_run);
    /* Expected: Redis's replies with its error replaced by the rejection. */
    static const char DENIED[] = "-ERR policy deny_commands: command 'flushall' is denied\r\n";
    struct bytes want = {0};
    for (const char *p = redis_run.data, *end = p + redis_run.len; p < end;) {
        const char *at = memmem(p, (size_t)(end - p), unknown.data, unknown.len);
        size_t n = at ? (size_t)(at - p) : (size_t)(end - p);
        bytes_append(&want, p, n);
        if (at == NULL)
            break;
        bytes_puts(&want, DENIED);
        p = at + unknown.len;
    }
    bytes_assert_equal("transaction replies (direct with the rejection substituted)", &want,
                       &proxy_run);
    /* The brief's shape, spelled out. */
    static const char FIRST[] = "+OK\r\n+QUEUED\r\n"
                                "-ERR policy deny_commands: command 'flushall' is denied\r\n"
                                "+QUEUED\r\n"
                                "-EXECABORT Transaction discarded because of previous errors.\r\n";
    cr_assert(proxy_run.len >= sizeof(FIRST) - 1 &&
                  memcmp(proxy_run.data, FIRST, sizeof(FIRST) - 1) == 0,
              "first transaction: %s", bytes_show(&proxy_run));
    /* Nothing of the aborted transactions ran; WATCH was cleared by the abort,
     * so the later transactions ran although w changed. */
    redis_call_expect(&fx_redis, "EXISTS x y", ":0\r\n");
    redis_call_expect(&fx_redis, "GET z", "$1\r\n1\r\n");
    redis_call_expect(&fx_redis, "GET q", "$1\r\n2\r\n");
    bytes_free(&unknown);
    bytes_free(&redis_run);
    bytes_free(&proxy_run);
    bytes_free(&want);
    proxy_finish(&fx_proxy);
}

Test(policy, rejection_inside_multi_in_one_write)
{
    start_with_policy(PIPELINE_YAML, NO_TRACKING);
    int c = sock_connect_or_fail(fx_proxy.port);
    char *big = filler(1500, 'M');
    struct bytes req = {0}, want = {0};
    req_add(&req, "MULTI", NULL);
    req_add(&req, "SET", "x", "1", NULL);
    const char *set_big[] = {"SET", "v", big};
    const size_t set_big_lens[] = {3, 1, 1500};
    req_addv(&req, 3, set_big, set_big_lens);
    req_add(&req, "SET", "y", "2", NULL);
    req_add(&req, "EXEC", NULL);
    req_add(&req, "MULTI", NULL);
    req_add(&req, "INCR", "n", NULL);
    req_add(&req, "EXEC", NULL);
    req_add(&req, "EXISTS", "x", "y", "v", NULL);
    bytes_puts(&want, "+OK\r\n+QUEUED\r\n");
    add_rejection(&want, "default", value_reason(1500, 1024));
    bytes_puts(&want, "+QUEUED\r\n-EXECABORT Transaction discarded because of previous errors.\r\n"
                      "+OK\r\n+QUEUED\r\n*1\r\n:1\r\n:0\r\n");
    exchange_expect(c, &req, 9, &want, "MULTI pipeline");
    redis_call_expect(&fx_redis, "EXISTS x y v", ":0\r\n");
    redis_call_expect(&fx_redis, "GET n", "$1\r\n1\r\n");
    free(big);
    bytes_free(&req);
    bytes_free(&want);
    close(c);
    proxy_finish(&fx_proxy);
}

/* ---- 4. value size -------------------------------------------------------------- */

/* One request with the arguments in args ("@" stands for a value of the
 * given size). */
static void req_with_value(struct bytes *req, const char *const *args, size_t size)
{
    const char *argv[8];
    size_t lens[8];
    int argc = 0;
    char *value = filler(size, 'V');
    for (; args[argc] != NULL; argc++) {
        bool at = strcmp(args[argc], "@") == 0;
        argv[argc] = at ? value : args[argc];
        lens[argc] = at ? size : strlen(args[argc]);
    }
    req_addv(req, argc, argv, lens);
    free(value);
}

Test(policy, oversized_values_are_rejected_for_every_write_command)
{
    start_with_policy("policy:\n"
                      "  default:\n"
                      "    max_value_size: 1kb\n",
                      NO_TRACKING);
    char *read_big = filler(2000, 'R');
    redis_set_raw("stored", read_big, 2000);
    int c = sock_connect_or_fail(fx_proxy.port);
    static const struct {
        const char *args[7];
        size_t size;
        bool rejected;
    } CASES[] = {
        {{"SET", "k", "@"}, 2000, true},
        {{"SET", "k", "@"}, 1025, true},
        {{"SET", "k", "@"}, 1024, false},
        {{"SET", "k", "@"}, 500, false},
        {{"MSET", "a", "1", "b", "@"}, 2000, true},
        {{"HSET", "h", "f", "@"}, 2000, true},
        {{"HSET", "h", "@", "v"}, 1500, true}, /* a field is a value too */
        {{"LPUSH", "l", "1", "@"}, 2000, true},
        {{"APPEND", "k", "@"}, 2000, true},
        {{"XADD", "s", "*", "f", "@"}, 2000, true},
        {{"SETRANGE", "k", "0", "@"}, 1100, true},
        {{"SADD", "set", "@"}, 1025, true},
        /* Reads are never limited, whatever the size of their arguments. */
        {{"SISMEMBER", "set", "@"}, 2000, false},
        {{"ECHO", "@"}, 3000, false},
    };
    for (size_t i = 0; i < ARRAY_LEN(CASES); i++) {
        struct bytes req = {0}, want = {0};
        req_with_value(&req, CASES[i].args, CASES[i].size);
        if (CASES[i].rejected) {
            add_rejection(&want, "default", value_reason(CASES[i].size, 1024));
        } else if (strcmp(CASES[i].args[0], "SET") == 0) {
            bytes_puts(&want, "+OK\r\n");
        } else if (strcmp(CASES[i].args[0], "SISMEMBER") == 0) {
            bytes_puts(&want, ":0\r\n");
        } else {
            char *v = filler(CASES[i].size, 'V');
            bytes_append_bulk(&want, v, CASES[i].size);
            free(v);
        }
        char what[64];
        snprintf(what, sizeof(what), "%s with a %zu-byte value", CASES[i].args[0], CASES[i].size);
        exchange_expect(c, &req, 1, &want, what);
        bytes_free(&req);
        bytes_free(&want);
    }
    /* The last SET that passed holds; nothing rejected ran. */
    redis_call_expect(&fx_redis, "STRLEN k", ":500\r\n");
    redis_call_expect(&fx_redis, "EXISTS a b h l s set", ":0\r\n");
    /* A read of a big value is not affected. */
    struct bytes req = {0}, want = {0};
    req_add(&req, "GET", "stored", NULL);
    bytes_append_bulk(&want, read_big, 2000);
    exchange_expect(c, &req, 1, &want, "GET of a 2000-byte value");
    free(read_big);
    bytes_free(&req);
    bytes_free(&want);
    close(c);
    proxy_finish(&fx_proxy);
}

/* ---- 5. validation rules ---------------------------------------------------------- */

static const char RULES_YAML[] = "policy:\n"
                                 "  default:\n"
                                 "    max_key_length: 256\n"
                                 "  validate:\n"
                                 "    - name: sessions-read-only\n"
                                 "      keys: \"session:*\"\n"
                                 "      action: read-only\n"
                                 "    - name: short-keys\n"
                                 "      keys: \"short:*\"\n"
                                 "      max_key_length: 16\n"
                                 "    - name: locked\n"
                                 "      keys: \"locked:*\"\n"
                                 "      action: deny\n"
                                 "      reason: \"locked by the ops team\"\n"
                                 "    - name: keep-on-delete\n"
                                 "      keys: \"keep:*\"\n"
                                 "      commands: [DEL]\n"
                                 "      action: deny\n"
                                 "    - name: no-config-set\n"
                                 "      commands: \"config|set\"\n"
                                 "      action: deny\n"
                                 "      reason: \"use the ops proxy\"\n"
                                 "    - name: no-admin\n"
                                 "      commands: [admin]\n"
                                 "      action: deny\n"
                                 "      reason: \"admin commands are disabled\"\n";

Test(policy, read_only_key_limits_commands_classes_and_custom_reasons)
{
    start_with_policy(RULES_YAML, NO_TRACKING);
    redis_call_expect(&fx_redis, "SET session:1 v", "+OK\r\n");
    int c = sock_connect_or_fail(fx_proxy.port);
    const char *ro = rejection("sessions-read-only", "keys matching this rule are read-only");
    sock_call_expect(c, "SET session:1 x", 1, ro);
    sock_call_expect(c, "DEL session:1", 1, ro);
    sock_call_expect(c, "MSET ok:1 a session:2 b", 1, ro);
    sock_call_expect(c, "GET session:1\nEXISTS session:1", 2, "$1\r\nv\r\n:1\r\n");
    redis_call_expect(&fx_redis, "EXISTS ok:1 session:2", ":0\r\n");
    redis_call_expect(&fx_redis, "GET session:1", "$1\r\nv\r\n");

    /* Key length: the rule's limit for its keys, the default's for others,
     * for reads as for writes. */
    sock_call_expect(c, "SET short:abcdefghi 1", 1, "+OK\r\n");  /* 15 bytes */
    sock_call_expect(c, "SET short:abcdefghij 1", 1, "+OK\r\n"); /* 16 bytes */
    const char *long_short = rejection("short-keys", key_reason(17, 16));
    sock_call_expect(c, "SET short:abcdefghijk 1", 1, long_short);
    sock_call_expect(c, "GET short:abcdefghijk", 1, long_short);
    sock_call_expect(c, "SET other:abcdefghijklmnopqrstuvwxyz 1", 1, "+OK\r\n");
    char line[400];
    char key[301];
    memset(key, 'k', 300);
    key[300] = '\0';
    snprintf(line, sizeof(line), "SET %s v", key);
    sock_call_expect(c, line, 1, rejection("default", key_reason(300, 256)));
    snprintf(line, sizeof(line), "GET %.256s", key);
    sock_call_expect(c, line, 1, "$-1\r\n");
    redis_call_expect(&fx_redis, "EXISTS short:abcdefghijk", ":0\r\n");

    /* A custom reason replaces the generated one. */
    sock_call_expect(c, "GET locked:1", 1, rejection("locked", "locked by the ops team"));
    sock_call_expect(c, "SET locked:1 x", 1, rejection("locked", "locked by the ops team"));

    /* A command filter by name: only DEL is denied on keep:*. */
    sock_call_expect(c, "SET keep:1 v\nSET keep:2 v", 2, "+OK\r\n+OK\r\n");
    sock_call_expect(c, "DEL keep:1", 1,
                     rejection("keep-on-delete", "command 'del' is denied on these keys"));
    sock_call_expect(c, "UNLINK keep:1", 1, ":1\r\n");
    redis_call_expect(&fx_redis, "EXISTS keep:1 keep:2", ":1\r\n");

    /* A subcommand by name, then the admin class. */
    sock_call_expect(c, "CONFIG SET maxmemory-policy allkeys-lru", 1,
                     rejection("no-config-set", "use the ops proxy"));
    sock_call_expect(c, "CONFIG GET maxmemory-policy", 1,
                     rejection("no-admin", "admin commands are disabled"));
    sock_call_expect(c, "SLOWLOG LEN", 1, rejection("no-admin", "admin commands are disabled"));
    redis_call_expect(&fx_redis, "CONFIG GET maxmemory-policy",
                      "*2\r\n$16\r\nmaxmemory-policy\r\n$10\r\nnoeviction\r\n");
    sock_call_expect(c, "PING\nECHO hi", 2, "+PONG\r\n$2\r\nhi\r\n");
    close(c);
    proxy_finish(&fx_proxy);
}

Test(policy, allow_list_denies_every_key_outside_its_rules)
{
    start_with_policy("policy:\n"
                      "  default:\n"
                      "    action: deny\n"
                      "  validate:\n"
                      "    - name: keyless\n"
                      "      commands: [ping, echo]\n"
                      "    - name: app\n"
                      "      keys: \"app:*\"\n"
                      "      action: allow\n",
                      NO_TRACKING);
    redis_call_expect(&fx_redis, "SET other old", "+OK\r\n");
    int c = sock_connect_or_fail(fx_proxy.port);
    sock_call_expect(c, "SET app:1 x\nGET app:1\nINCR app:n", 3, "+OK\r\n$1\r\nx\r\n:1\r\n");
    sock_call_expect(c, "SET other 1", 1,
                     rejection("default", "command 'set' is denied on these keys"));
    sock_call_expect(c, "GET other", 1,
                     rejection("default", "command 'get' is denied on these keys"));
    sock_call_expect(c, "MSET app:2 a other b", 1,
                     rejection("default", "command 'mset' is denied on these keys"));
    sock_call_expect(c, "DEL app:1 other", 1,
                     rejection("default", "command 'del' is denied on these keys"));
    sock_call_expect(c, "PING\nECHO e", 2, "+PONG\r\n$1\r\ne\r\n");
    redis_call_expect(&fx_redis, "GET other", "$3\r\nold\r\n");
    redis_call_expect(&fx_redis, "EXISTS app:1 app:2", ":1\r\n");
    close(c);
    proxy_finish(&fx_proxy);
}

/* ---- 11. the hygiene module ------------------------------------------------------ */

/* Runs cmd key [value] through fd and expects want. */
static void key_expect(int fd, const char *cmd, const char *key, size_t klen, const char *want)
{
    struct bytes req = {0};
    const char *argv[] = {cmd, key, "v"};
    const size_t lens[] = {strlen(cmd), klen, 1};
    req_addv(&req, strcmp(cmd, "SET") == 0 ? 3 : 2, argv, lens);
    char what[64];
    snprintf(what, sizeof(what), "%s of a %zu-byte key", cmd, klen);
    request_expect(fd, &req, want, what);
    bytes_free(&req);
}

Test(policy, hygiene_module_rejects_keys_with_spaces_or_control_bytes)
{
    start_with_policy("policy:\n"
                      "  modules:\n"
                      "    - name: hygiene\n",
                      NO_TRACKING);
    int c = sock_connect_or_fail(fx_proxy.port);
    const char *bad = rejection("hygiene", "key contains a space or control byte");
    static const struct {
        const char *key;
        size_t len;
    } BAD[] = {{"a b", 3}, {"a\x01z", 3}, {"tab\t", 4}, {"nul\0", 4}, {"del\x7f", 4}, {" ", 1}};
    for (size_t i = 0; i < ARRAY_LEN(BAD); i++) {
        key_expect(c, "SET", BAD[i].key, BAD[i].len, bad);
        key_expect(c, "GET", BAD[i].key, BAD[i].len, bad);
    }
    key_expect(c, "SET", "good:key", 8, "+OK\r\n");
    key_expect(c, "SET", "caf\xc3\xa9", 5, "+OK\r\n"); /* bytes above 0x7f are fine */
    redis_call_expect(&fx_redis, "DBSIZE", ":2\r\n");
    rule_expect(c, "module", "hygiene", 0, 0, 2 * (long long)ARRAY_LEN(BAD), 0);
    close(c);
    proxy_finish(&fx_proxy);
}

Test(policy, hygiene_module_allow_spaces)
{
    start_with_policy("policy:\n"
                      "  modules:\n"
                      "    - name: hygiene\n"
                      "      allow_spaces: true\n",
                      NO_TRACKING);
    int c = sock_connect_or_fail(fx_proxy.port);
    /* The spec names no reason for this mode; spaces being allowed, the
     * implemented one does not mention them. */
    const char *bad = rejection("hygiene", "key contains a control byte");
    key_expect(c, "SET", "a b", 3, "+OK\r\n");
    key_expect(c, "GET", "a b", 3, "$1\r\nv\r\n");
    key_expect(c, "SET", "a\x01z", 3, bad);
    key_expect(c, "SET", "del\x7f", 4, bad);
    redis_call_expect(&fx_redis, "DBSIZE", ":1\r\n");
    close(c);
    proxy_finish(&fx_proxy);
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

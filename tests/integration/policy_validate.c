/* policy_validate.c - end-to-end tests of the YAML policy's validation
 * (spec: policy-spec.md, engine contract: policy/policy.h) against a real
 * redis-server: rejections byte for byte (deny_commands, value and key
 * limits, read-only and allow-list rules, command classes, custom reasons,
 * the hygiene module), alone, pipelined and inside MULTI. The connection
 * stays open after a rejection, and nothing rejected reaches Redis.
 *
 * Each test writes its own config file with a `policy:` section and starts
 * the proxy with --config on it (harness/policy.h). Unless a test needs
 * tracking, the proxy runs with cache.tracking=false so that only the policy
 * can explain what the tier serves: a value written directly on Redis and
 * still served stale proves the entry came from the tier, a fresh value
 * proves it did not.
 */
#include <criterion/criterion.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/bytes.h"
#include "harness/fixtures.h"
#include "harness/policy.h"
#include "harness/proxy.h"
#include "harness/redis.h"
#include "harness/session.h"
#include "harness/sock.h"

TestSuite(policy, .init = fixture_redis, .fini = fixture_policy_stop, .timeout = 90);

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

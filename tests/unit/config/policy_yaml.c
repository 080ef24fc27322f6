/* tests/unit/policy_yaml.c - the policy section of the config file: the
 * shipped example loads, builds and behaves as its comments say; each field
 * reaches the engine; every error is one exact "file:line: policy.<where>:
 * reason" line naming the offending node, and a failed load keeps nothing;
 * the config owns its policy through copy, commit, drop and deinit.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "config/policy_yaml.h"
#include "policy/policy.h"
#include "proxy/proto/keys.h"
#include "proxy/proto/resp.h"

#include "tests/unit/leaks.h"
#include "tests/unit/yaml_file.h"

#define ERRLEN 512

TestSuite(policy_yaml, .fini = check_leaks);

/* ---- helpers ------------------------------------------------------------- */

/* Loads text over cfg from a temp file (path receives its name). */
static int load_text(struct config *cfg, const char *text, char *path, size_t pathlen, char *err)
{
    return load_text_file(cfg, text, path, pathlen, err, ERRLEN);
}

/* Loads text (which must load) into a fresh config and builds its policy. */
static struct policy *load_policy(const char *text)
{
    struct config cfg;
    char err[ERRLEN] = "", path[256];
    config_init(&cfg);
    cr_assert_eq(load_text(&cfg, text, path, sizeof(path), err), 0, "%s", err);
    struct policy *p = cfg.policy;
    cfg.policy = NULL;
    config_deinit(&cfg);
    cr_assert_not_null(p, "no policy from:\n%s", text);
    cr_assert_eq(policy_build(p, NULL, err, sizeof(err)), 0, "%s", err);
    return p;
}

/* The shipped example, found from this file's path unless CMake says where
 * the sources are. */
static void example_path(char *buf, size_t len)
{
    snprintf(buf, len, "%s/config/policy.yaml", NEARCACHE_SOURCE_DIR);
}

/* A request for the engine: words as a multibulk frame in buf. */
struct words {
    char buf[512];
    struct resp_request req;
    struct request_keys scratch;
    struct request r;
};

static struct command_table *keys_builtin(void)
{
    struct command_table *t = command_table_create();
    cr_assert_not_null(t);
    cr_assert_gt(command_table_add_builtin(t), 0);
    return t;
}

static void request_make(struct words *r, const struct command_table *t, const char *const *words)
{
    struct resp_scanner s;
    size_t n = 0, len = 0;
    while (words[n] != NULL)
        n++;
    len += (size_t)snprintf(r->buf + len, sizeof(r->buf) - len, "*%zu\r\n", n);
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(r->buf + len, sizeof(r->buf) - len, "$%zu\r\n%s\r\n",
                                strlen(words[i]), words[i]);
    cr_assert_lt(len, sizeof(r->buf));
    memset(&s, 0, sizeof(s));
    resp_scanner_reset(&s);
    cr_assert_eq(resp_scan_request(&s, &RESP_LIMITS_DEFAULT, r->buf, len, &r->req), RESP_OK);
    r->scratch = (struct request_keys){0};
    request_init(&r->r, t, r->buf, &r->req, &r->scratch);
}

/* The engine's answer to words: "" when forwarded, else the reply without its CRLF. */
static void check(struct policy *p, const struct command_table *t, const char *const *words,
                  const char *want)
{
    struct words r;
    char reply[POLICY_REPLY_MAX + 1];
    request_make(&r, t, words);
    size_t n = policy_check(p, &r.r, reply);
    request_keys_free(&r.scratch);
    cr_assert_leq(n, POLICY_REPLY_MAX);
    if (n >= 2 && reply[n - 2] == '\r')
        n -= 2;
    reply[n] = '\0';
    cr_expect_str_eq(reply, want, "%s %s: got '%s', want '%s'", words[0], words[1] ? words[1] : "",
                     reply, want);
}

#define WORDS(...)                                                                                 \
    (const char *const[])                                                                          \
    {                                                                                              \
        __VA_ARGS__, NULL                                                                          \
    }

/* ---- the shipped example ------------------------------------------------- */

struct rule_name {
    policy_kind_e kind;
    const char *name;
};

static const struct rule_name EXAMPLE_RULES[] = {
    {POLICY_KIND_VALIDATE, "deny_commands"},
    {POLICY_KIND_VALIDATE, "sessions-read-only"},
    {POLICY_KIND_VALIDATE, "billing-no-scripts"},
    {POLICY_KIND_VALIDATE, "tmp-limits"},
    {POLICY_KIND_VALIDATE, "no-admin"},
    {POLICY_KIND_CACHE, "ratelimit-bypass"},
    {POLICY_KIND_CACHE, "profiles"},
    {POLICY_KIND_CACHE, "reports"},
    {POLICY_KIND_CACHE, "embeddings"},
    {POLICY_KIND_INVALIDATE, "model-embeddings"},
    {POLICY_KIND_INVALIDATE, "profile-derived"},
    {POLICY_KIND_MODULE, "hygiene"},
};

#define EXAMPLE_RULES_LEN (sizeof(EXAMPLE_RULES) / sizeof(EXAMPLE_RULES[0]))

/* The rules of p in order, the default rules (if listed) left out. */
static void expect_rules(const struct policy *p, const struct rule_name *want, size_t nwant)
{
    size_t j = 0;
    for (size_t i = 0; i < policy_rule_count(p); i++) {
        const char *name = NULL;
        policy_kind_e kind;
        cr_assert_not_null(policy_rule(p, i, &name, &kind));
        if (kind != POLICY_KIND_INVALIDATE && strcmp(name, "default") == 0)
            continue;
        cr_assert_lt(j, nwant, "extra rule %s", name);
        cr_expect_eq(kind, want[j].kind, "rule %zu (%s): kind %d", i, name, (int)kind);
        cr_expect_str_eq(name, want[j].name, "rule %zu", i);
        j++;
    }
    cr_expect_eq(j, nwant, "%zu rules, want %zu", j, nwant);
}

Test(policy_yaml, example_loads_and_builds)
{
    struct config cfg;
    char err[ERRLEN] = "", path[512];
    example_path(path, sizeof(path));
    config_init(&cfg);
    cr_assert_eq(config_load_file(&cfg, path, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), 0, "%s", err);
    cr_assert_not_null(cfg.policy);
    expect_rules(cfg.policy, EXAMPLE_RULES, EXAMPLE_RULES_LEN);
    cr_assert_eq(policy_build(cfg.policy, NULL, err, sizeof(err)), 0, "%s", err);
    cr_expect_not(policy_empty(cfg.policy));
    cr_expect_eq(cfg.cache_max_entry, 4 << 20);
    config_deinit(&cfg);
}

/* What the example's comments promise, through the engine. */
Test(policy_yaml, example_behaves_as_documented)
{
    struct config cfg;
    char err[ERRLEN] = "", path[512];
    struct command_table *t = keys_builtin();
    example_path(path, sizeof(path));
    config_init(&cfg);
    cr_assert_eq(config_load_file(&cfg, path, err, sizeof(err)), 0, "%s", err);
    struct policy *p = cfg.policy;
    cr_assert_eq(policy_build(p, NULL, err, sizeof(err)), 0, "%s", err);

    check(p, t, WORDS("FLUSHALL"), "-ERR policy deny_commands: command 'flushall' is denied");
    check(p, t, WORDS("CONFIG", "SET", "maxmemory", "1"),
          "-ERR policy deny_commands: command 'config|set' is denied");
    check(p, t, WORDS("SET", "session:1", "x"),
          "-ERR policy sessions-read-only: sessions are written by the auth service only");
    check(p, t, WORDS("GET", "session:1"), "");
    check(p, t, WORDS("EVAL", "return 1", "1", "billing:7"),
          "-ERR policy billing-no-scripts: command 'eval' is denied on these keys");
    check(p, t, WORDS("GET", "billing:7"), "");
    check(p, t, WORDS("SET", "tmp:x", "0123456789"), "");
    check(p, t,
          WORDS("SET", "tmp:0123456789012345678901234567890123456789012345678901234567890", "x"),
          "-ERR policy tmp-limits: key of 65 bytes is over the 64 byte limit");
    check(p, t, WORDS("SHUTDOWN"),
          "-ERR policy no-admin: admin commands go to Redis directly, not through the proxy");
    check(p, t, WORDS("GET", "a b"), "-ERR policy hygiene: key contains a space or control byte");

    const struct policy_cached *rule = policy_cache_rule(p, "ratelimit:1.2.3.4", 17);
    cr_expect_str_eq(rule->name, "ratelimit-bypass");
    cr_expect_not(rule->cache);
    rule = policy_cache_rule(p, "report:2024-01-01:sales", 23);
    cr_expect_str_eq(rule->name, "reports");
    cr_expect(rule->cache);
    cr_expect_eq(rule->max_entry, 4 << 20);
    cr_expect_eq(rule->compress_over, 1024);
    rule = policy_cache_rule(p, "user:42:profile", 15);
    cr_expect_str_eq(rule->name, "profiles");
    cr_expect_eq(rule->max_entry, 64 << 10);
    cr_expect_eq(rule->compress_over, 0);
    rule = policy_cache_rule(p, "other", 5);
    cr_expect_str_eq(rule->name, "default");

    /* model:bert drops embeddings:bert:* only */
    size_t n = policy_stamp(p, "embeddings:bert:1", 17, NULL, 0);
    struct policy_stamp bert[POLICY_STAMPS_MAX], gpt[POLICY_STAMPS_MAX];
    cr_assert(n > 0 && n <= POLICY_STAMPS_MAX);
    cr_assert_eq(policy_stamp(p, "embeddings:bert:1", 17, bert, POLICY_STAMPS_MAX), n);
    size_t m = policy_stamp(p, "embeddings:gpt:1", 16, gpt, POLICY_STAMPS_MAX);
    cr_assert(m > 0 && m <= POLICY_STAMPS_MAX);
    cr_expect_eq(policy_on_write(p, "model:bert", 10, "set", 1000), 1);
    cr_expect_not(policy_stamps_current(p, bert, n));
    cr_expect(policy_stamps_current(p, gpt, m));

    /* profile-derived: listed commands and tracking fire it, others do not */
    cr_expect_eq(policy_on_write(p, "user:42:profile", 15, "expire", 1000), 0);
    cr_expect_eq(policy_on_write(p, "user:42:profile", 15, "hset", 1000), 1);
    cr_expect_eq(policy_on_write(p, "user:42:profile", 15, NULL, 1000), 1);

    command_table_destroy(&t);
    config_deinit(&cfg);
}

/* ---- each field reaches the engine --------------------------------------- */

Test(policy_yaml, ttl_and_admit)
{
    const char *text = "policy:\n"
                       "  cache:\n"
                       "    - name: fixed\n"
                       "      keys: 'f:*'\n"
                       "      ttl: 2s\n"
                       "    - name: zero\n"
                       "      keys: 'z:*'\n"
                       "      ttl: 0\n"
                       "    - name: adaptive\n"
                       "      keys: 'a:*'\n"
                       "      ttl: {min: 1s, max: 11s}\n"
                       "    - name: admitted\n"
                       "      keys: 'n:*'\n"
                       "      admit: {reads: 3, window: 10s}\n";
    struct policy *p = load_policy(text);
    const struct policy_cached *r = policy_cache_rule(p, "f:1", 3);
    cr_expect_eq(policy_ttl(p, r, "f:1", 3, 777, 0), 2000);
    r = policy_cache_rule(p, "z:1", 3);
    cr_expect_eq(policy_ttl(p, r, "z:1", 3, 777, 0), 777);
    /* never read: the minimum; read often within the (default 1m) window: more */
    r = policy_cache_rule(p, "a:1", 3);
    cr_expect_eq(policy_ttl(p, r, "a:1", 3, 777, 0), 1000);
    for (int i = 0; i < 10; i++)
        policy_note_read(p, r, "a:1", 3, false, 50000 + (uint64_t)i);
    uint64_t ttl = policy_ttl(p, r, "a:1", 3, 777, 50010);
    cr_expect(ttl > 1000 && ttl <= 11000, "adaptive ttl %llu", (unsigned long long)ttl);

    r = policy_cache_rule(p, "n:1", 3);
    policy_note_read(p, r, "n:1", 3, false, 1000);
    cr_expect_not(policy_admit(p, r, "n:1", 3, 1000));
    policy_note_read(p, r, "n:1", 3, false, 1001);
    cr_expect_not(policy_admit(p, r, "n:1", 3, 1001));
    policy_note_read(p, r, "n:1", 3, false, 1002);
    cr_expect(policy_admit(p, r, "n:1", 3, 1002));
    policy_destroy(&p);
}

Test(policy_yaml, defaults_and_validate_fields)
{
    const char *text = "policy:\n"
                       "  validate:\n"
                       "    - name: ro\n"
                       "      keys: 'ro:*'\n"
                       "      action: READ-ONLY\n"
                       "    - name: small\n"
                       "      keys: 's:*'\n"
                       "      max_key_length: 4\n"
                       "      max_value_size: 1kb\n"
                       "    - name: inherit\n"
                       "      keys: 'i:*'\n"
                       "      max_key_length: -1\n"
                       "    - name: gets\n"
                       "      commands: get\n"
                       "      action: deny\n"
                       "      reason: no reads today\n"
                       "  default:\n"
                       "    action: deny\n"
                       "    max_key_length: 8\n"
                       "    max_value_size: 2\n"
                       "  deny_commands: ping\n";
    struct command_table *t = keys_builtin();
    struct policy *p = load_policy(text);
    check(p, t, WORDS("PING"), "-ERR policy deny_commands: command 'ping' is denied");
    check(p, t, WORDS("SET", "ro:1", "x"), "-ERR policy ro: keys matching this rule are read-only");
    check(p, t, WORDS("STRLEN", "ro:1"), "");
    check(p, t, WORDS("SET", "s:1", "x"), "");
    check(p, t, WORDS("SET", "s:123", "x"),
          "-ERR policy small: key of 5 bytes is over the 4 byte limit");
    check(p, t, WORDS("SET", "i:1234567", "x"),
          "-ERR policy default: key of 9 bytes is over the 8 byte limit"); /* the default's */
    check(p, t, WORDS("GET", "x"), "-ERR policy gets: no reads today");
    check(p, t, WORDS("STRLEN", "x"),
          "-ERR policy default: command 'strlen' is denied on these keys");
    command_table_destroy(&t);
    policy_destroy(&p);
}

/* ---- files that load ----------------------------------------------------- */

struct good_case {
    const char *name;
    const char *text;
    bool has_policy; /* cfg.policy is set */
    bool empty;      /* and policy_empty */
};

static const struct good_case GOOD[] = {
    {"no section", "listen: 127.0.0.1:7000\n", false, false},
    {"null section", "policy: ~\n", false, false},
    {"empty section", "policy:\n  # validate: []\n", false, false},
    {"empty mapping", "policy: {}\n", false, false},
    {"null parts", "policy:\n  default:\n  validate: ~\n  cache: []\n  modules:\n", true, true},
    {"empty deny_commands", "policy:\n  deny_commands: []\n", true, true},
    {"null optional fields",
     "policy:\n  validate:\n    - {name: a, keys: ~, commands: ~, reason: ~}\n", true, false},
    {"flow style everywhere",
     "policy: {cache: [{name: c, keys: 'k:*', ttl: {min: 0, max: 1s, window: 1s}}],"
     " invalidate: [{name: i, when: 'k:{x}', drop: ['k:{x}', 'j:{x}:*'], commands: [set]}]}\n",
     true, false},
};

Test(policy_yaml, good_files)
{
    for (size_t i = 0; i < sizeof(GOOD) / sizeof(GOOD[0]); i++) {
        const struct good_case *c = &GOOD[i];
        struct config cfg;
        char err[ERRLEN] = "", path[256];
        config_init(&cfg);
        cr_expect_eq(load_text(&cfg, c->text, path, sizeof(path), err), 0, "%s: %s", c->name, err);
        cr_expect_eq(cfg.policy != NULL, c->has_policy, "%s", c->name);
        if (cfg.policy != NULL) {
            cr_expect_eq(policy_empty(cfg.policy), c->empty, "%s", c->name);
            cr_expect_eq(policy_build(cfg.policy, NULL, err, sizeof(err)), 0, "%s: %s", c->name,
                         err);
        }
        config_deinit(&cfg);
    }
}

/* ---- files that do not --------------------------------------------------- */

struct bad_case {
    const char *name;
    const char *text;
    const char *want; /* the error after "path:" */
};

static const struct bad_case BAD[] = {
    /* clients.users, read by the same loader */
    {"users not a list", "clients:\n  users: {name: a}\n",
     "2: clients.users: expected a list of users"},
    {"user without name", "clients:\n  users:\n    - {password: x}\n",
     "3: clients.users[0].name: required"},
    {"user twice",
     "clients:\n  users:\n    - {name: a, password: x}\n    - {name: a, password: y}\n",
     "4: clients.users[1].name: user 'a' given twice"},
    {"user without password", "clients:\n  users:\n    - {name: a}\n",
     "3: clients.users[0]: password: give password or password_sha256"},
    {"user with a bad digest", "clients:\n  users:\n    - {name: a, password_sha256: abc}\n",
     "3: clients.users[0].password_sha256: expected 64 hex digits"},
    {"user with a bad pattern", "clients:\n  users:\n    - {name: a, password: x, keys: ['a[']}\n",
     "3: clients.users[0].keys[0]: unterminated '[' at offset 1"},
    {"user with a bad class",
     "clients:\n  users:\n    - {name: a, password: x, commands: ['a b']}\n",
     "3: clients.users[0].commands[0]: bad command name 'a b'"},
    {"user with an unknown key", "clients:\n  users:\n    - {name: a, password: x, acl: y}\n",
     "3: clients.users[0].acl: unknown key"},
    /* structure */
    {"section not a mapping", "log_level: info\npolicy: [1]\n", "2: policy: expected a mapping"},
    {"section a scalar", "policy: yes\n", "1: policy: expected a mapping"},
    {"unknown part", "policy:\n  validate: []\n  rules: []\n", "3: policy.rules: unknown key"},
    {"repeated part", "policy:\n  cache: []\n  validate: []\n  cache: []\n",
     "4: policy.cache: duplicate key"},
    {"complex key", "policy:\n  ? [a]\n  : 1\n", "2: policy: keys must be plain names"},
    {"non-list validate", "policy:\n  validate:\n    name: a\n",
     "3: policy.validate: expected a list"},
    {"non-list cache", "policy:\n  cache: profiles\n", "2: policy.cache: expected a list"},
    {"non-list modules", "policy:\n  modules: {name: hygiene}\n",
     "2: policy.modules: expected a list"},
    {"default not a mapping", "policy:\n  default: deny\n",
     "2: policy.default: expected a mapping"},
    {"rule not a mapping",
     "policy:\n  invalidate:\n    - name: a\n      when: x\n      drop: y\n"
     "    - x\n",
     "6: policy.invalidate[1]: expected a mapping"},
    {"null rule", "policy:\n  cache:\n    -\n", "3: policy.cache[0]: expected a mapping"},
    {"module not a mapping", "policy:\n  modules: [hygiene]\n",
     "2: policy.modules[0]: expected a mapping"},
    /* unknown keys at each level */
    {"unknown key in default", "policy:\n  default:\n    action: allow\n    limit: 1\n",
     "4: policy.default.limit: unknown key"},
    {"unknown key in validate", "policy:\n  validate:\n    - name: a\n      key: 'x:*'\n",
     "4: policy.validate[0].key: unknown key"},
    {"unknown key in cache",
     "policy:\n  cache:\n    - name: a\n      keys: 'a:*'\n    - name: b\n      keys: 'b:*'\n"
     "      tll: 1s\n",
     "7: policy.cache[1].tll: unknown key"},
    {"unknown key in ttl",
     "policy:\n  cache:\n    - name: a\n      keys: 'a:*'\n"
     "      ttl: {min: 1s, max: 2s, span: 1m}\n",
     "5: policy.cache[0].ttl.span: unknown key"},
    {"unknown key in admit",
     "policy:\n  cache:\n    - name: a\n      keys: 'a:*'\n"
     "      admit:\n        reads: 2\n        within: 1s\n",
     "7: policy.cache[0].admit.within: unknown key"},
    {"unknown key in invalidate",
     "policy:\n  invalidate:\n    - name: a\n      when: 'a:*'\n      drop: b\n      fire: all\n",
     "6: policy.invalidate[0].fire: unknown key"},
    {"dotted key", "policy:\n  cache:\n    - name: a\n      keys: 'a:*'\n      ttl.min: 1s\n",
     "5: policy.cache[0].ttl.min: unknown key"},
    {"line break in a key", "policy:\n  default: {\"action\\nx\": deny}\n",
     "2: policy.default.action\\x0ax: unknown key"},
    /* repeated keys */
    {"repeated field", "policy:\n  validate:\n    - name: a\n      action: deny\n      name: b\n",
     "5: policy.validate[0].name: duplicate key"},
    {"repeated ttl field",
     "policy:\n  cache:\n    - name: a\n      keys: 'a:*'\n"
     "      ttl: {min: 1s, max: 2s, min: 0}\n",
     "5: policy.cache[0].ttl.min: duplicate key"},
    {"repeated module arg",
     "policy:\n  modules:\n    - name: hygiene\n      jitter: 1\n"
     "      jitter: 2\n",
     "5: policy.modules[0].jitter: duplicate key"},
    /* required fields */
    {"validate without name", "policy:\n  validate:\n    - keys: 'a:*'\n      action: deny\n",
     "3: policy.validate[0].name: required"},
    {"null name", "policy:\n  validate:\n    - name: ~\n",
     "3: policy.validate[0].name: needs a value"},
    {"cache without keys", "policy:\n  cache:\n    - name: a\n      ttl: 1s\n",
     "3: policy.cache[0].keys: required"},
    {"invalidate without drop", "policy:\n  invalidate:\n    - name: a\n      when: 'a:{x}'\n",
     "3: policy.invalidate[0].drop: required"},
    {"invalidate without when", "policy:\n  invalidate:\n    - {name: a, drop: b}\n",
     "3: policy.invalidate[0].when: required"},
    {"ttl without max",
     "policy:\n  cache:\n    - name: a\n      keys: 'a:*'\n      ttl:\n"
     "        min: 1s\n",
     "6: policy.cache[0].ttl.max: required"},
    {"admit without reads",
     "policy:\n  cache:\n    - name: a\n      keys: 'a:*'\n"
     "      admit: {window: 1s}\n",
     "5: policy.cache[0].admit.reads: required"},
    {"module without name", "policy:\n  modules:\n    - jitter: 5\n",
     "3: policy.modules[0].name: required"},
    {"module arg null", "policy:\n  modules:\n    - name: hygiene\n      jitter:\n",
     "4: policy.modules[0].jitter: needs a value"},
    /* types */
    {"name a list", "policy:\n  validate:\n    - name: [a]\n",
     "3: policy.validate[0].name: expected a value, not a list"},
    {"keys a mapping", "policy:\n  validate:\n    - name: a\n      keys:\n        x: 1\n",
     "5: policy.validate[0].keys: expected a value, not a mapping"},
    {"commands a mapping", "policy:\n  validate:\n    - name: a\n      commands: {get: 1}\n",
     "4: policy.validate[0].commands: expected a value or a list, not a mapping"},
    {"nested command list",
     "policy:\n  validate:\n    - name: a\n      commands:\n        - get\n"
     "        - [set]\n",
     "6: policy.validate[0].commands[1]: expected a value, not a list"},
    {"null command", "policy:\n  deny_commands: [flushall, ~]\n",
     "2: policy.deny_commands[1]: needs a value"},
    {"empty commands", "policy:\n  validate:\n    - name: a\n      commands: []\n",
     "4: policy.validate[0].commands: expected at least one entry"},
    {"empty drop", "policy:\n  invalidate:\n    - name: a\n      when: 'a:{x}'\n      drop: []\n",
     "5: policy.invalidate[0].drop: expected at least one entry"},
    {"ttl a list", "policy:\n  cache:\n    - name: a\n      keys: 'a:*'\n      ttl: [1s]\n",
     "5: policy.cache[0].ttl: expected a value, not a list"},
    {"admit a scalar", "policy:\n  cache:\n    - name: a\n      keys: 'a:*'\n      admit: 2\n",
     "5: policy.cache[0].admit: expected a mapping"},
    {"module arg a list", "policy:\n  modules:\n    - name: hygiene\n      jitter: [1]\n",
     "4: policy.modules[0].jitter: expected a value, not a list"},
    {"NUL in a pattern", "policy:\n  validate:\n    - name: a\n      keys: \"a\\0b\"\n",
     "4: policy.validate[0].keys: contains a NUL byte"},
    /* values */
    {"bad action", "policy:\n  validate:\n    - name: a\n      action: block\n",
     "4: policy.validate[0].action: expected allow, deny or read-only"},
    {"bad default action", "policy:\n  default:\n    action: readonly\n",
     "3: policy.default.action: expected allow, deny or read-only"},
    {"bad bool", "policy:\n  cache:\n    - name: a\n      keys: 'a:*'\n      cache: maybe\n",
     "5: policy.cache[0].cache: expected true or false"},
    {"bad size", "policy:\n  default:\n    max_value_size: 1 mb\n",
     "3: policy.default.max_value_size: expected a size like 64mb"},
    {"negative default limit", "policy:\n  default:\n    max_key_length: -1\n",
     "3: policy.default.max_key_length: must be between 0 and 4gb"},
    {"limit below -1", "policy:\n  validate:\n    - name: a\n      max_value_size: -2\n",
     "4: policy.validate[0].max_value_size: must be between -1b and 4gb"},
    {"max_entry too big",
     "policy:\n  cache:\n    - name: a\n      keys: 'a:*'\n"
     "      max_entry: 2gb\n",
     "5: policy.cache[0].max_entry: must be between 0 and 1gb"},
    {"bad duration", "policy:\n  cache:\n    - name: a\n      keys: 'a:*'\n      ttl: 5 min\n",
     "5: policy.cache[0].ttl: expected a duration like 500ms"},
    {"hours are not a unit", "policy:\n  cache:\n    - name: a\n      keys: 'a:*'\n      ttl: 1h\n",
     "5: policy.cache[0].ttl: expected a duration like 500ms"},
    {"ttl too long", "policy:\n  cache:\n    - name: a\n      keys: 'a:*'\n      ttl: 10081m\n",
     "5: policy.cache[0].ttl: must be between 0 and 10080m"},
    {"zero window",
     "policy:\n  cache:\n    - name: a\n      keys: 'a:*'\n"
     "      ttl: {min: 1s, max: 2s, window: 0}\n",
     "5: policy.cache[0].ttl.window: must be between 1ms and 10080m"},
    {"zero reads",
     "policy:\n  cache:\n    - name: a\n      keys: 'a:*'\n"
     "      admit:\n        reads: 0\n",
     "6: policy.cache[0].admit.reads: must be between 1 and 1000000"},
    {"reads not a number",
     "policy:\n  cache:\n    - name: a\n      keys: 'a:*'\n"
     "      admit:\n        reads: 2x\n",
     "6: policy.cache[0].admit.reads: expected an integer"},
    /* errors of policy_add_*, at the field's node (the item a list's error quotes) */
    {"bad pattern",
     "policy:\n  validate:\n    - name: a\n      action: deny\n"
     "      keys: 'user:[abc'\n",
     "5: policy.validate[0].keys: unterminated '[' at offset 5"},
    {"bad cache pattern", "policy:\n  cache:\n    - name: a\n      keys: 'a:{id'\n",
     "4: policy.cache[0].keys: unterminated '{' at offset 2"},
    {"bad when", "policy:\n  invalidate:\n    - name: a\n      when: 'a}'\n      drop: b\n",
     "4: policy.invalidate[0].when: unbalanced '}' at offset 1"},
    {"bad drop pattern in a list",
     "policy:\n  invalidate:\n    - name: a\n      when: 'a:{x}'\n      drop:\n"
     "        - 'b:{x}'\n        - 'c:[{x}'\n",
     "7: policy.invalidate[0].drop[1]: unterminated '[' at offset 2"},
    {"capture in drop missing from when",
     "policy:\n  invalidate:\n    - name: a\n      when: 'model:{m}'\n"
     "      drop: ['embeddings:{m}:*', 'cards:{id}']\n",
     "5: policy.invalidate[0].drop[1]: 'cards:{id}' uses capture 'id' that when lacks"},
    {"drop capture after a wildcard",
     "policy:\n  invalidate:\n    - name: a\n      when: 'model:{m}'\n"
     "      drop: '*:{m}'\n",
     "5: policy.invalidate[0].drop: '*:{m}' has more than literal bytes and captures before "
     "its last capture"},
    {"min above max",
     "policy:\n  cache:\n    - name: a\n      keys: 'a:*'\n    - name: b\n"
     "      keys: 'b:*'\n      ttl:\n        min: 10s\n        max: 5s\n",
     "8: policy.cache[1].ttl: min 10000ms is above max 5000ms"},
    {"admit reads without window",
     "policy:\n  cache:\n    - name: a\n      keys: 'a:*'\n      admit: {reads: 2}\n",
     "5: policy.cache[0].admit: window is required when reads > 1"},
    {"duplicate rule name",
     "policy:\n  validate:\n    - name: a\n      action: deny\n    - name: a\n"
     "      keys: 'x:*'\n",
     "5: policy.validate[1].name: duplicate rule 'a'"},
    {"rule named like deny_commands",
     "policy:\n  validate:\n    - name: deny_commands\n  deny_commands: [keys]\n",
     "3: policy.validate[0].name: duplicate rule 'deny_commands'"},
    {"reserved rule name", "policy:\n  cache:\n    - name: default\n      keys: 'a:*'\n",
     "3: policy.cache[0].name: 'default' is reserved for the default rule"},
    {"bad rule name", "policy:\n  invalidate:\n    - name: 'a b'\n      when: a\n      drop: b\n",
     "3: policy.invalidate[0].name: must be 1-63 bytes of [A-Za-z0-9_.:-]"},
    {"empty command name", "policy:\n  validate:\n    - name: a\n      commands: [get, '']\n",
     "4: policy.validate[0].commands[1]: bad command name ''"},
    {"empty denied command", "policy:\n  deny_commands: [flushall, \"\"]\n",
     "2: policy.deny_commands[1]: bad command name ''"},
    {"denied command with a space", "policy:\n  deny_commands: 'flush all'\n",
     "2: policy.deny_commands: bad command name 'flush all'"},
    {"read class on invalidate",
     "policy:\n  invalidate:\n    - name: a\n      when: a\n      drop: b\n"
     "      commands: [set, read]\n",
     "6: policy.invalidate[0].commands[1]: class 'read' does not apply here"},
    {"reason of two lines",
     "policy:\n  validate:\n    - name: a\n      action: deny\n      reason: \"no\\nway\"\n",
     "5: policy.validate[0].reason: must be one line without control bytes"},
    {"unknown module", "policy:\n  modules:\n    - name: hygiene\n    - name: tidy\n",
     "4: policy.modules[1].name: unknown module 'tidy'"},
    {"module twice", "policy:\n  modules:\n    - name: hygiene\n    - {jitter: 1, name: hygiene}\n",
     "4: policy.modules[1].name: module 'hygiene' is enabled twice"},
    {"bad module arg", "policy:\n  modules:\n    - name: hygiene\n      jitter: 60\n",
     "4: policy.modules[0].jitter: must be a whole percent from 0 to 50"},
    {"unknown module arg",
     "policy:\n  modules:\n    - name: hygiene\n      allow_spaces: true\n      color: red\n",
     "5: policy.modules[0].color: unknown setting of module hygiene"},
    /* an error after good parts keeps none of them */
    {"error in the last part",
     "policy:\n  default: {action: deny}\n  deny_commands: keys\n  validate: [{name: a}]\n"
     "  cache: [{name: c, keys: 'c:*'}]\n  invalidate: [{name: i, when: a, drop: b}]\n"
     "  modules: [{name: hygiene, jitter: -1}]\n",
     "7: policy.modules[0].jitter: must be a whole percent from 0 to 50"},
};

/* Each file fails with the exact line and leaves the config as it was: no
 * policy. */
Test(policy_yaml, bad_files)
{
    for (size_t i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++) {
        const struct bad_case *c = &BAD[i];
        struct config cfg;
        char err[ERRLEN] = "", want[ERRLEN], path[256];
        config_init(&cfg);
        cr_expect_eq(load_text(&cfg, c->text, path, sizeof(path), err), -1, "%s loaded", c->name);
        snprintf(want, sizeof(want), "%s:%s", path, c->want);
        cr_expect_str_eq(err, want, "%s:\n got  %s\n want %s", c->name, err, want);
        cr_expect_null(cfg.policy, "%s", c->name);
        config_deinit(&cfg);
    }
}

/* ---- ownership ----------------------------------------------------------- */

static const char POLICY_A[] = "policy:\n  validate:\n    - {name: a, action: deny}\n";
static const char POLICY_B[] = "policy:\n  cache:\n    - {name: b, keys: 'b:*', cache: false}\n";

/* The name of the first rule of p that is not a default rule. */
static const char *first_rule(const struct policy *p)
{
    for (size_t i = 0; i < policy_rule_count(p); i++) {
        const char *name = NULL;
        policy_kind_e kind;
        policy_rule(p, i, &name, &kind);
        if (strcmp(name, "default") != 0)
            return name;
    }
    return "(none)";
}

/* Each step leaves exactly one owner: leaks and double frees show in the
 * sanitizer build. */
Test(policy_yaml, config_owns_its_policy)
{
    struct config cfg;
    char err[ERRLEN] = "", path[256];
    config_init(&cfg);
    cr_assert_null(cfg.policy);
    cr_assert_eq(load_text(&cfg, POLICY_A, path, sizeof(path), err), 0, "%s", err);
    struct policy *a = cfg.policy;
    cr_assert_not_null(a);
    cr_expect_str_eq(first_rule(a), "a");

    /* the environment works on a copy and commits it: the policy passes over */
    char *env[] = {"NEARCACHE_UPSTREAM_POOL_SIZE=7", NULL};
    cr_assert_eq(config_load_env(&cfg, env, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(cfg.policy, a);
    cr_expect_eq(cfg.pool_size, 7);

    /* a failed environment drops its copy, not the policy */
    char *bad_env[] = {"NEARCACHE_UPSTREAM_POOL_SIZE=8", "NEARCACHE_BOGUS=1", NULL};
    cr_assert_eq(config_load_env(&cfg, bad_env, err, sizeof(err)), -1);
    cr_expect_eq(cfg.policy, a);
    cr_expect_eq(cfg.pool_size, 7);

    /* a file without a policy section keeps it */
    cr_assert_eq(load_text(&cfg, "log_level: info\n", path, sizeof(path), err), 0, "%s", err);
    cr_expect_eq(cfg.policy, a);

    /* a file whose policy fails keeps the old one and frees the new one */
    cr_assert_eq(load_text(&cfg, "policy:\n  cache:\n    - {name: b, keys: 'b:*', ttl: x}\n", path,
                           sizeof(path), err),
                 -1);
    cr_expect_eq(cfg.policy, a);

    /* a file whose policy loads but another key fails: the same */
    cr_assert_eq(load_text(&cfg, "policy:\n  cache:\n    - {name: b, keys: 'b:*'}\nbogus: 1\n",
                           path, sizeof(path), err),
                 -1);
    cr_expect_eq(cfg.policy, a);

    /* another policy replaces it (the old one is freed) */
    cr_assert_eq(load_text(&cfg, POLICY_B, path, sizeof(path), err), 0, "%s", err);
    cr_assert_not_null(cfg.policy);
    cr_expect_str_eq(first_rule(cfg.policy), "b");

    /* a null section removes it */
    cr_assert_eq(load_text(&cfg, "policy: ~\n", path, sizeof(path), err), 0, "%s", err);
    cr_expect_null(cfg.policy);

    cr_assert_eq(load_text(&cfg, POLICY_A, path, sizeof(path), err), 0, "%s", err);
    config_deinit(&cfg);
    cr_expect_null(cfg.policy);
}

/* The loader on its own: a null node gives no policy, errors leave *out. */
Test(policy_yaml, loader_api)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    char err[ERRLEN] = "";
    const char *text = "a: ~\nb: {cache: [{name: c}]}\nc: {modules: [{name: hygiene}]}\n";
    cr_assert(yaml_parser_initialize(&parser));
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
    cr_assert(yaml_parser_load(&parser, &doc));
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    yaml_node_pair_t *pairs = root->data.mapping.pairs.start;
    struct policy *sentinel = policy_create(); /* *out is not touched on error */
    struct policy *p = sentinel;
    cr_assert_not_null(sentinel);

    cr_expect_eq(policy_yaml_load(&doc, yaml_document_get_node(&doc, pairs[0].value), "t.yaml", &p,
                                  err, sizeof(err)),
                 0);
    cr_expect_null(p);
    p = sentinel;
    cr_expect_eq(policy_yaml_load(&doc, yaml_document_get_node(&doc, pairs[1].value), "t.yaml", &p,
                                  err, sizeof(err)),
                 -1);
    cr_expect_eq(p, sentinel);
    cr_expect_str_eq(err, "t.yaml:2: policy.cache[0].keys: required");
    p = NULL;
    cr_expect_eq(policy_yaml_load(&doc, yaml_document_get_node(&doc, pairs[2].value), "t.yaml", &p,
                                  err, sizeof(err)),
                 0, "%s", err);
    cr_expect_not_null(p);
    policy_destroy(&p);
    policy_destroy(&sentinel);

    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
}

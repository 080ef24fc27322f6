/* tests/unit/policy/explain.c - policy_explain (policy/explain.c): which
 * validation, cache and invalidation rules apply to a key for a command, and
 * why, as NEARCACHE EXPLAIN shows it; that it agrees with policy_check on
 * who decides, and that it counts and fires nothing.
 *
 * One policy of every kind of rule, and a table of requests: keys that several
 * rules match, that none does, captures, binary keys, writes, commands
 * without keys, an unknown command.
 */
#include "proxy/lib/text.h"
#include "proxy/proto/resp_write.h"
#include "tests/lines.h"
#include "tests/unit/policy_util.h"

TestSuite(explain, .init = policy_test_setup, .fini = policy_test_teardown);

#define DEFAULT_TTL 300000
#define LINES_MAX   8

static const struct vspec vrules[] = {
    {"sessions-ro", "session:*", NULL, POLICY_READ_ONLY, INHERIT, INHERIT, NULL},
    {"user-writes", "user:{id}", "write", POLICY_DENY, INHERIT, INHERIT,
     "users are written by the user service"},
    {"reads", "*", "read", POLICY_ALLOW, INHERIT, INHERIT, NULL},
    {"tmp", "tmp:*", NULL, POLICY_ALLOW, 10, 5, NULL},
    {"cfg", NULL, "config", POLICY_DENY, INHERIT, INHERIT, NULL},
};

static const struct policy_cache_rule crules[] = {
    {"live", "live:*", false, 0, 0, 0, 0, 0, 0, 0, 0},
    {"users", "user:*", true, 60000, 0, 0, 0, 0, 0, 0, 1024},
    {"feeds", "feed:*", true, 0, 1000, 60000, 30000, 2, 10000, 4096, 0},
    {"all-users", "user:{id}", true, 5000, 0, 0, 0, 0, 0, 0, 0},
};

static const struct ispec irules[] = {
    {"profile", "user:{id}", NULL, "user:{id}:profile feed:{id}:*"},
    {"on-del", "session:{sid}", "del", "session:{sid}:*"},
};

static struct policy *every_rule(void)
{
    struct policy *p = policy_create();
    char err[256] = "";
    cr_assert_not_null(p);
    for (size_t i = 0; i < LEN(vrules); i++)
        cr_assert_eq(add_validate(p, &vrules[i], err, sizeof(err)), 0, "%s", err);
    for (size_t i = 0; i < LEN(crules); i++)
        cr_assert_eq(policy_add_cache(p, &crules[i], err, sizeof(err)), 0, "%s", err);
    for (size_t i = 0; i < LEN(irules); i++)
        cr_assert_eq(add_invalidate(p, &irules[i], err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(policy_build(p, NULL, err, sizeof(err)), 0, "%s", err);
    return p;
}

/* The explanation of key (klen bytes) in request f, NUL-terminated; free it. */
static char *explain_frame(struct policy *p, struct frame *f, const char *key, size_t klen)
{
    struct request_keys scratch = {0};
    struct request r;
    struct text out = {0};
    request_init(&r, keys, f->buf, &f->req, &scratch);
    policy_explain(p, &r, key, klen, DEFAULT_TTL, &out);
    request_keys_free(&scratch);
    cr_assert_not(out.oom);
    cr_assert_not_null(out.data);
    cr_assert_eq(strlen(out.data), out.len, "a NUL in the explanation");
    return out.data;
}

static char *explain(struct policy *p, const char *line, const char *key)
{
    struct frame f = frame_of(line);
    char *out = explain_frame(p, &f, key, strlen(key));
    free(f.buf);
    return out;
}

struct explain_case {
    const char *line; /* the request */
    const char *key;
    const char *lines[LINES_MAX]; /* lines it holds, NULL-terminated */
    const char *prefix;           /* lines starting with it ... */
    size_t count;                 /* ... number this many (to catch extra ones) */
};

static const struct explain_case cases[] = {
    {"GET user:42",
     "user:42",
     {"command:get", "writes_key:0",
      "validate:user-writes:skip: its commands do not name 'get' [keys=user:{id} commands=write "
      "action=deny]",
      "validate:reads:allow: decides [keys=* commands=read action=allow]", "cacheable:1",
      "cache:users:cache: decides [keys=user:* ttl_ms=60000 max_entry=0 compress_over=1024]",
      "cache:all-users:cache: shadowed by users [keys=user:{id} ttl_ms=5000 max_entry=0 "
      "compress_over=0]",
      "invalidate:profile:fires: drops user:42:profile feed:42:* [when=user:{id} commands=*]"},
     "validate:",
     3},
    {"SET user:42 x",
     "user:42",
     {"command:set", "writes_key:1",
      "validate:user-writes:reject: decides [keys=user:{id} commands=write action=deny]: users "
      "are written by the user service",
      "validate:reads:skip: its commands do not name 'set' [keys=* commands=read action=allow]",
      "cacheable:0",
      "invalidate:profile:fires: drops user:42:profile feed:42:* [when=user:{id} commands=*]"},
     "invalidate:",
     1},
    /* user:{id} captures the rest: the rule fires on it too, with id=42:profile */
    {"GET user:42:profile",
     "user:42:profile",
     {"invalidate:profile:dropped_by: a write of user:42 [drop=user:{id}:profile commands=*]",
      "invalidate:profile:fires: drops user:42:profile:profile feed:42:profile:* "
      "[when=user:{id} commands=*]",
      "stamps:2"},
     "invalidate:",
     2},
    {"SET session:1 x",
     "session:1",
     {"validate:sessions-ro:reject: decides [keys=session:* commands=* action=read-only]: keys "
      "matching this rule are read-only",
      "validate:reads:skip: its commands do not name 'set' [keys=* commands=read action=allow]",
      "invalidate:on-del:ignores: its commands do not name 'set' [when=session:{sid} "
      "commands=del]",
      "cache:default:cache: decides, no rule matches [ttl_ms=300000 max_entry=0 "
      "compress_over=0]"},
     "cache:",
     1},
    {"DEL session:1",
     "session:1",
     {"writes_key:1",
      "invalidate:on-del:fires: drops session:1:* [when=session:{sid} commands=del]"},
     NULL,
     0},
    {"GET session:1:a",
     "session:1:a",
     {"validate:sessions-ro:allow: decides [keys=session:* commands=* action=read-only]",
      "validate:reads:allow: shadowed by sessions-ro [keys=* commands=read action=allow]",
      "invalidate:on-del:dropped_by: a write of session:1 [drop=session:{sid}:* commands=del]",
      "invalidate:on-del:fires: drops session:1:a:* [when=session:{sid} commands=del]"},
     NULL,
     0},
    {"GET live:1",
     "live:1",
     {"cache:live:bypass: decides [keys=live:* cache=false]", "stamps:0"},
     "invalidate:",
     0},
    {"HGET feed:7:x f",
     "feed:7:x",
     {"command:hget",
      "cache:feeds:cache: decides [keys=feed:* ttl_min_ms=1000 ttl_max_ms=60000 "
      "ttl_window_ms=30000 admit_reads=2 admit_window_ms=10000 max_entry=4096 compress_over=0]",
      "invalidate:profile:dropped_by: a write of user:7 [drop=feed:{id}:* commands=*]"},
     NULL,
     0},
    {"SET tmp:12345678 abc",
     "tmp:12345678",
     {"validate:tmp:reject: decides [keys=tmp:* commands=* action=allow max_key_length=10 "
      "max_value_size=5]: key of 12 bytes is over the 10 byte limit",
      "validate:cfg:skip: its commands do not name 'set' [keys=* commands=config action=deny]"},
     "validate:",
     3},
    {"SET tmp:1 abcdef",
     "tmp:1",
     {"validate:tmp:reject: decides [keys=tmp:* commands=* action=allow max_key_length=10 "
      "max_value_size=5]: value of 6 bytes is over the 5 byte limit"},
     NULL,
     0},
    /* no keys: the rules without keys, then the defaults */
    {"CONFIG GET maxmemory",
     "maxmemory",
     {"command:config|get",
      "validate:cfg:reject: decides [keys=* commands=config action=deny]: command 'config|get' "
      "is denied"},
     "validate:",
     1},
    {"PING x",
     "x",
     {"validate:cfg:skip: its commands do not name 'ping' [keys=* commands=config action=deny]",
      "validate:default:allow: decides, no rule applies [action=allow]", "cacheable:0"},
     NULL,
     0},
    {"NOSUCH k",
     "k",
     {"command:unknown", "writes_key:0",
      "validate:default:allow: decides, no rule applies [action=allow]", "cacheable:0"},
     NULL,
     0},
    /* a key the command has, but not as a key */
    {"HGET other user:1",
     "user:1",
     {"validate:*:none: 'hget' does not take the key as a key"},
     "validate:",
     1},
};

Test(explain, lines_for_every_kind_of_rule)
{
    struct policy *p = every_rule();
    for (size_t i = 0; i < LEN(cases); i++) {
        const struct explain_case *c = &cases[i];
        char *out = explain(p, c->line, c->key);
        for (size_t l = 0; l < LINES_MAX && c->lines[l] != NULL; l++)
            cr_expect(has_line(out, c->lines[l]), "%s: no line\n%s\nin\n%s", c->line, c->lines[l],
                      out);
        if (c->prefix != NULL)
            cr_expect_eq(lines_with(out, c->prefix), c->count, "%s: %zu lines of %s in\n%s",
                         c->line, c->count, c->prefix, out);
        free(out);
    }
    policy_destroy(&p);
}

Test(explain, the_rule_it_says_decides_is_the_one_that_rejects)
{
    struct policy *p = every_rule();
    static const struct {
        const char *line, *key, *rule;
    } agree[] = {
        {"SET user:42 x", "user:42", "user-writes"},
        {"SET session:1 x", "session:1", "sessions-ro"},
        {"SET tmp:12345678 abc", "tmp:12345678", "tmp"},
        {"CONFIG GET maxmemory", "maxmemory", "cfg"},
    };
    for (size_t i = 0; i < LEN(agree); i++) {
        char want[128], line[128];
        snprintf(want, sizeof(want), "-ERR policy %s: ", agree[i].rule);
        cr_expect_eq(strncmp(check(p, agree[i].line), want, strlen(want)), 0, "%s", agree[i].line);
        char *out = explain(p, agree[i].line, agree[i].key);
        snprintf(line, sizeof(line), "validate:%s:reject: decides ", agree[i].rule);
        cr_expect_not_null(strstr(out, line), "%s:\n%s", agree[i].line, out);
        free(out);
    }
    policy_destroy(&p);
}

Test(explain, counts_nothing_and_fires_nothing)
{
    struct policy *p = every_rule();
    struct entry before = stamp(p, "user:42:profile");
    for (int i = 0; i < 3; i++) {
        free(explain(p, "SET user:42 x", "user:42"));
        free(explain(p, "GET user:42", "user:42"));
    }
    cr_expect(current(p, &before), "explaining a write fired its invalidation rule");
    cr_expect_eq(stats_of(p, POLICY_KIND_VALIDATE, "user-writes")->rejections, 0);
    cr_expect_eq(stats_of(p, POLICY_KIND_CACHE, "users")->misses, 0);
    cr_expect_eq(stats_of(p, POLICY_KIND_INVALIDATE, "profile")->invalidations, 0);
    cr_expect_eq(write_key(p, "user:42", "set"), 1);
    cr_expect_not(current(p, &before), "the stamps of this test see nothing");
    policy_destroy(&p);
}

Test(explain, an_empty_policy_has_the_defaults_only)
{
    struct policy *p = validate_policy(NULL, 0, NULL);
    char *out = explain(p, "GET k", "k");
    cr_expect_str_eq(out, "command:get\r\nwrites_key:0\r\n"
                          "validate:default:allow: decides, no rule applies [action=allow]\r\n"
                          "cacheable:1\r\n"
                          "cache:default:cache: decides, no rule matches [ttl_ms=300000 "
                          "max_entry=0 compress_over=0]\r\n"
                          "stamps:0\r\n");
    free(out);
    policy_destroy(&p);
}

Test(explain, key_bytes_are_escaped_so_that_every_line_frames)
{
    struct policy *p = every_rule();
    static const char key[] = "user:\r\n 1\0\xff";
    const char *argv[] = {"GET", key};
    const size_t lens[] = {3, sizeof(key) - 1};
    struct frame f;
    f.len = resp_write_command(NULL, 0, 2, argv, lens);
    f.buf = malloc(f.len);
    resp_write_command(f.buf, f.len, 2, argv, lens);
    frame_scan(&f);
    char *out = explain_frame(p, &f, key, sizeof(key) - 1);
    cr_expect(has_line(out,
                       "invalidate:profile:fires: drops user:\\x0d\\x0a\\x201\\x00\\xff:profile "
                       "feed:\\x0d\\x0a\\x201\\x00\\xff:* [when=user:{id} commands=*]"),
              "%s", out);
    cr_expect_eq(lines_with(out, ""), 10, "%s", out); /* every line ends in CRLF, none split */
    cr_expect(strlen(out) >= 2 && strcmp(out + strlen(out) - 2, "\r\n") == 0, "%s", out);
    free(out);
    free(f.buf);
    policy_destroy(&p);
}

Test(explain, enabled_modules_are_named_with_their_hooks)
{
    struct policy *p = policy_create();
    struct policy_module_args args = {NULL, NULL, 0};
    char err[256] = "";
    cr_assert_eq(policy_add_module(p, "hygiene", &args, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(policy_build(p, NULL, err, sizeof(err)), 0, "%s", err);
    char *out = explain(p, "GET k", "k");
    cr_expect(has_line(out, "module:hygiene: hooks validate ttl"), "%s", out);
    free(out);
    policy_destroy(&p);
}

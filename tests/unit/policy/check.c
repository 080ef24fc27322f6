/* tests/unit/check.c - validation (policy/check.c): which rule decides,
 * command filters, actions, limits, replies, and validation rule errors.
 */
#include "tests/unit/policy_util.h"

TestSuite(check, .init = policy_test_setup, .fini = policy_test_teardown);

static const struct vspec ordered_rules[] = {
    {"cfg-set", NULL, "config|set", POLICY_DENY, INHERIT, INHERIT, NULL},
    {"cfg", NULL, "CONFIG", POLICY_ALLOW, INHERIT, INHERIT, NULL},
    {"deny-admin", NULL, "admin", POLICY_DENY, INHERIT, INHERIT, NULL},
    {"sessions-ro", "session:*", NULL, POLICY_READ_ONLY, INHERIT, INHERIT, NULL},
    {"user-writes", "user:{id}", "write", POLICY_DENY, INHERIT, INHERIT,
     "users are written by the user service"},
    {"reads", "*", "read", POLICY_ALLOW, INHERIT, INHERIT, NULL},
    {"tmp", "tmp:*", NULL, POLICY_ALLOW, 10, 5, NULL},
    {"tenants", "t:{tenant}:*", "set", POLICY_ALLOW, 0, 0, NULL},
};

static const struct check_case ordered_cases[] = {
    {"GET session:1", ""},
    {"SET session:1 x", "-ERR policy sessions-ro: keys matching this rule are read-only\r\n"},
    {"DEL session:1", "-ERR policy sessions-ro: keys matching this rule are read-only\r\n"},
    {"SET user:1 x", "-ERR policy user-writes: users are written by the user service\r\n"},
    {"GET user:1", ""},
    {"CONFIG SET maxmemory 1", "-ERR policy cfg-set: command 'config|set' is denied\r\n"},
    {"config get maxmemory", ""},
    {"CONFIG NOSUCH x", ""},
    {"DEBUG SLEEP 0", "-ERR policy deny-admin: command 'debug' is denied\r\n"},
    {"FLUSHALL", "-ERR policy default: command 'flushall' is denied\r\n"},
    {"PING", "-ERR policy default: command 'ping' is denied\r\n"},
    {"NOSUCHCMD a", "-ERR policy default: command 'nosuchcmd' is denied\r\n"},
    {"SET tmp:1 abc", ""},
    {"SET tmp:12345678 x", "-ERR policy tmp: key of 12 bytes is over the 10 byte limit\r\n"},
    {"SET tmp:1 abcdef", "-ERR policy tmp: value of 6 bytes is over the 5 byte limit\r\n"},
    {"GET tmp:12345678", ""}, /* "reads" comes first */
    {"SET other x", "-ERR policy default: command 'set' is denied on these keys\r\n"},
    {"GET other", ""},
    {"SET t:acme:1 x", ""},
    {"SET t:acme x", "-ERR policy default: command 'set' is denied on these keys\r\n"},
    {"MSET tmp:1 a session:2 b",
     "-ERR policy sessions-ro: keys matching this rule are read-only\r\n"},
    {"MSET other 1 session:2 b", "-ERR policy default: command 'mset' is denied on these keys\r\n"},
    {"MSET tmp:1 a tmp:2 b", ""},
    {"COPY session:1 tmp:2", ""},
    {"COPY tmp:2 session:1", "-ERR policy sessions-ro: keys matching this rule are read-only\r\n"},
    {"MGET session:1 user:1 other", ""},
};

Test(check, first_applicable_rule_decides)
{
    struct policy_defaults d = {POLICY_DENY, 0, 0};
    struct policy *p = validate_policy(ordered_rules, LEN(ordered_rules), &d);

    run_cases(p, ordered_cases, LEN(ordered_cases));
    cr_expect_eq(stats_of(p, POLICY_KIND_VALIDATE, "sessions-ro")->rejections, 4);
    cr_expect_eq(stats_of(p, POLICY_KIND_VALIDATE, "tmp")->rejections, 2);
    cr_expect_eq(stats_of(p, POLICY_KIND_VALIDATE, "default")->rejections, 6);
    cr_expect_eq(stats_of(p, POLICY_KIND_VALIDATE, "reads")->rejections, 0);
    policy_destroy(&p);
    cr_assert_null(p);
}

struct filter_case {
    const char *commands;
    const char *line;
    bool applies;
};

static const struct filter_case filter_cases[] = {
    {"get", "GET k", true},
    {"GET", "get k", true},
    {"set", "GET k", false},
    {"get set", "SET k v", true},
    {"config", "CONFIG SET a b", true},
    {"config", "CONFIG GET a", true},
    {"config", "CONFIG", true},
    {"config|set", "CONFIG GET a", false},
    {"config|set", "config set a b", true},
    {"CONFIG|SET", "config set a b", true},
    {"xgroup", "XGROUP CREATE s g $", true},
    {"read", "GET k", true},
    {"READ", "GET k", true},
    {"read", "SET k v", false},
    {"read", "EVAL_RO s 0", true},
    {"write", "SET k v", true},
    {"write", "DEL k", true},
    {"write", "EVAL s 0", true},
    {"write", "EVALSHA abc 1 k", true},
    {"write", "FCALL f 0", true},
    {"write", "FLUSHDB", true},
    {"write", "SWAPDB 0 1", true},
    {"write", "GET k", false},
    {"write", "EVAL_RO s 0", false},
    {"write", "PUBLISH ch m", false},
    {"admin", "CONFIG SET a b", true},
    {"admin", "DEBUG SLEEP 0", true},
    {"admin", "GET k", false},
    {"nosuch", "NOSUCH x", true},
    {"nosuch", "nosuchx x", false},
    {"read write admin", "NOSUCH x", false},
    {"read write admin", "PING", false},
    {NULL, "NOSUCH x", true},
    {NULL, "PING", true},
};

Test(check, command_filters_by_name_container_and_class)
{
    for (size_t i = 0; i < LEN(filter_cases); i++) {
        const struct filter_case *c = &filter_cases[i];
        struct vspec rule = {"r", NULL, c->commands, POLICY_DENY, INHERIT, INHERIT, "no"};
        struct policy *p = validate_policy(&rule, 1, NULL);
        const char *want = c->applies ? "-ERR policy r: no\r\n" : "";
        cr_expect_str_eq(check(p, c->line), want, "[%s] on %s", c->commands, c->line);
        policy_destroy(&p);
    }
}

Test(check, rules_without_keys_decide_every_key_and_keyless_requests)
{
    static const struct vspec rules[] = {
        {"no-flush", NULL, "flushall flushdb", POLICY_DENY, INHERIT, INHERIT, NULL},
        {"cache-ro", "cache:*", NULL, POLICY_READ_ONLY, INHERIT, INHERIT, NULL},
        {"all-short", NULL, NULL, POLICY_ALLOW, 8, INHERIT, NULL},
    };
    static const struct check_case cases[] = {
        {"FLUSHDB", "-ERR policy no-flush: command 'flushdb' is denied\r\n"},
        {"SET cache:1 v", "-ERR policy cache-ro: keys matching this rule are read-only\r\n"},
        {"SET a23456789 v", "-ERR policy all-short: key of 9 bytes is over the 8 byte limit\r\n"},
        {"SET a2345678 v", ""},
        {"PING", ""},
        /* keys that cannot be told (wrong arity): decided as keyless */
        {"GET", ""},
    };
    struct policy *p = validate_policy(rules, LEN(rules), NULL);

    run_cases(p, cases, LEN(cases));
    policy_destroy(&p);
}

Test(check, default_action_deny_and_read_only)
{
    static const struct check_case deny[] = {
        {"GET k", "-ERR policy default: command 'get' is denied on these keys\r\n"},
        {"PING", "-ERR policy default: command 'ping' is denied\r\n"},
    };
    static const struct check_case read_only[] = {
        {"GET k", ""},
        {"PING", ""},
        {"SET k v", "-ERR policy default: keys matching this rule are read-only\r\n"},
        {"FLUSHALL", "-ERR policy default: keys matching this rule are read-only\r\n"},
        {"EVAL s 0", "-ERR policy default: keys matching this rule are read-only\r\n"},
        {"SORT k", ""},
        {"SORT k STORE d", "-ERR policy default: keys matching this rule are read-only\r\n"},
    };
    struct policy_defaults d = {POLICY_DENY, 0, 0};
    struct policy *p = validate_policy(NULL, 0, &d);

    run_cases(p, deny, LEN(deny));
    policy_destroy(&p);
    d.action = POLICY_READ_ONLY;
    p = validate_policy(NULL, 0, &d);
    run_cases(p, read_only, LEN(read_only));
    policy_destroy(&p);
}

Test(check, default_limits_report_the_default_rule)
{
    static const struct vspec rules[] = {
        {"inherits", "i:*", NULL, POLICY_ALLOW, INHERIT, INHERIT, "never shown"},
        {"unlimited", "u:*", NULL, POLICY_ALLOW, 0, 0, NULL},
        {"own", "o:*", NULL, POLICY_ALLOW, 4, 2, "own limits"},
    };
    static const struct check_case cases[] = {
        {"GET k23456", "-ERR policy default: key of 6 bytes is over the 5 byte limit\r\n"},
        {"GET i:3456", "-ERR policy default: key of 6 bytes is over the 5 byte limit\r\n"},
        {"SET i:3 abcd", "-ERR policy default: value of 4 bytes is over the 3 byte limit\r\n"},
        {"SET u:3456789 abcdefgh", ""},
        {"SET o:3 abc", "-ERR policy own: own limits\r\n"},
        {"SET o:345 a", "-ERR policy own: own limits\r\n"},
        {"SET k abc", ""},
        {"PING", ""},
    };
    struct policy_defaults d = {POLICY_ALLOW, 5, 3};
    struct policy *p = validate_policy(rules, LEN(rules), &d);

    run_cases(p, cases, LEN(cases));
    cr_expect_eq(stats_of(p, POLICY_KIND_VALIDATE, "default")->rejections, 3);
    cr_expect_eq(stats_of(p, POLICY_KIND_VALIDATE, "own")->rejections, 2);
    policy_destroy(&p);
}

struct size_case {
    const char *line;
    bool rejected;
};

/* With max_value_size 5: the largest argument that is no key and no name. */
static const struct size_case size_cases[] = {
    {"SET k 123456", true},
    {"SET k 12345", false},
    {"SET k123456789 v", false},
    {"SET k v PX 1234567", true},
    {"MSET a 1 b 123456", true},
    {"MSET a 1 b 2 c 3", false},
    {"MSET aaaaaaaa 1 bbbbbbbb 2", false},
    {"HSET h f 123456", true},
    {"HSET h 123456 v", true},
    {"HSET hhhhhhhh f v", false},
    {"LPUSH l a 123456", true},
    {"LPUSH llllllll a b", false},
    {"XADD s * f 123456", true},
    {"XADD ssssssss * f v", false},
    {"APPEND k 123456", true},
    {"SETRANGE k 0 123456", true},
    {"SETRANGE k 0 12345", false},
    {"XGROUP CREATE s g $", false},
    {"XGROUP CREATE s g123456 $", true},
    {"GET kkkkkkkkkkkkk", false},
    {"HGET h 123456789", false},
    {"GETRANGE k 0 123456789", false},
    {"MGET kkkkkkkk llllllll", false},
    {"PUBLISH ch 123456789", false},
    {"EVAL 1234567 0", false}, /* no keys and no rule: no limits */
    {"EVAL 1234567 1 k", true},
};

Test(check, value_size_on_writes_only)
{
    struct policy_defaults d = {POLICY_ALLOW, 0, 5};
    struct policy *p = validate_policy(NULL, 0, &d);

    for (size_t i = 0; i < LEN(size_cases); i++) {
        const char *got = check(p, size_cases[i].line);
        cr_expect_eq(got[0] != '\0', size_cases[i].rejected, "%s: %s", size_cases[i].line, got);
        if (got[0] != '\0')
            cr_expect(strstr(got, "-ERR policy default: value of ") == got, "%s", got);
    }
    policy_destroy(&p);
}

/* A multibulk frame of argc arguments: MSET k0000000 v ... with the value
 * of the last pair `last`. */
static struct frame mset_frame(size_t pairs, const char *last)
{
    size_t cap = 32 + pairs * 40 + strlen(last), at = 0;
    struct frame f;

    f.buf = malloc(cap);
    cr_assert_not_null(f.buf);
    at += (size_t)sprintf(f.buf + at, "*%zu\r\n$4\r\nMSET\r\n", 1 + 2 * pairs);
    for (size_t i = 0; i < pairs; i++) {
        const char *v = i + 1 == pairs ? last : "v";
        at += (size_t)sprintf(f.buf + at, "$8\r\nk%07zu\r\n$%zu\r\n%s\r\n", i, strlen(v), v);
    }
    f.len = at;
    frame_scan(&f);
    return f;
}

Test(check, huge_mset_is_checked_whole)
{
    static const struct vspec rules[] = {
        {"deep", "k0499998", NULL, POLICY_DENY, INHERIT, INHERIT, NULL},
    };
    struct policy_defaults d = {POLICY_ALLOW, 0, 5};
    struct policy *p = validate_policy(NULL, 0, &d);
    struct frame f = mset_frame(500000, "12345");

    cr_expect_str_eq(check_frame(p, &f), "");
    free(f.buf);
    f = mset_frame(500000, "123456");
    cr_expect_str_eq(check_frame(p, &f),
                     "-ERR policy default: value of 6 bytes is over the 5 byte limit\r\n");
    free(f.buf);
    policy_destroy(&p);
    p = validate_policy(rules, LEN(rules), NULL);
    f = mset_frame(500000, "v");
    cr_expect_str_eq(check_frame(p, &f),
                     "-ERR policy deep: command 'mset' is denied on these keys\r\n");
    free(f.buf);
    policy_destroy(&p);
}

Test(check, replies_hold_no_key_bytes_and_fit)
{
    static const struct vspec rules[] = {
        {"deny", "secret:*", NULL, POLICY_DENY, INHERIT, INHERIT, NULL},
        {"ro", "ro-secret:*", NULL, POLICY_READ_ONLY, INHERIT, INHERIT, NULL},
        {"len", "long-secret:*", NULL, POLICY_ALLOW, 12, 3, NULL},
    };
    static const char *const lines[] = {"GET secret:1", "SET ro-secret:1 v", "GET long-secret:1",
                                        "SET long-secret: secret"};
    struct policy *p = validate_policy(rules, LEN(rules), NULL);

    for (size_t i = 0; i < LEN(lines); i++) {
        const char *got = check(p, lines[i]);
        cr_expect(got[0] == '-' && strstr(got, "secret:") == NULL && strstr(got, "\"") == NULL,
                  "%s: %s", lines[i], got);
    }
    /* An unknown command's name is printed only as printable bytes. */
    struct policy_defaults d = {POLICY_DENY, 0, 0};
    policy_destroy(&p);
    p = validate_policy(NULL, 0, &d);
    cr_expect_str_eq(check(p, "\"BAD\\r\\nCMD\" k"),
                     "-ERR policy default: command 'bad??cmd' is denied\r\n");
    policy_destroy(&p);
}

Test(check, custom_reason_is_truncated_safely)
{
    char ascii[400], utf8[401];
    struct vspec rules[] = {
        {"a", "a", NULL, POLICY_DENY, INHERIT, INHERIT, ascii},
        {"u", "u", NULL, POLICY_DENY, INHERIT, INHERIT, utf8},
    };
    memset(ascii, 'x', sizeof(ascii) - 1);
    ascii[sizeof(ascii) - 1] = '\0';
    for (size_t i = 0; i < 400; i += 2)
        memcpy(utf8 + i, "\xc3\xa9", 2); /* U+00E9 */
    utf8[400] = '\0';
    struct policy *p = validate_policy(rules, LEN(rules), NULL);
    const char *got = check(p, "GET a");

    cr_expect_eq(strlen(got), POLICY_REPLY_MAX);
    cr_expect(strncmp(got, "-ERR policy a: xxx", 18) == 0);
    cr_expect_str_eq(got + POLICY_REPLY_MAX - 3, "x\r\n");
    got = check(p, "GET u");
    size_t n = strlen(got);
    cr_expect_leq(n, POLICY_REPLY_MAX);
    cr_expect_str_eq(got + n - 4, "\xc3\xa9\r\n", "cut between characters");
    policy_destroy(&p);
}

/* ---- rule errors ------------------------------------------------------------ */

struct verr_case {
    struct vspec rule;
    const char *err;
};

static const struct verr_case verr_cases[] = {
    {{"", NULL, NULL, POLICY_ALLOW, INHERIT, INHERIT, NULL},
     "name: must be 1-63 bytes of [A-Za-z0-9_.:-]"},
    {{"a b", NULL, NULL, POLICY_ALLOW, INHERIT, INHERIT, NULL},
     "name: must be 1-63 bytes of [A-Za-z0-9_.:-]"},
    {{"a123456789a123456789a123456789a123456789a123456789a123456789abcd", NULL, NULL, POLICY_ALLOW,
      INHERIT, INHERIT, NULL},
     "name: must be 1-63 bytes of [A-Za-z0-9_.:-]"},
    {{"dup", NULL, NULL, POLICY_ALLOW, INHERIT, INHERIT, NULL}, "name: duplicate rule 'dup'"},
    {{"default", NULL, NULL, POLICY_ALLOW, INHERIT, INHERIT, NULL},
     "name: 'default' is reserved for the default rule"},
    {{"x", "[abc", NULL, POLICY_ALLOW, INHERIT, INHERIT, NULL},
     "keys: unterminated '[' at offset 0"},
    {{"x", "a{}", NULL, POLICY_ALLOW, INHERIT, INHERIT, NULL},
     "keys: empty capture name at offset 1"},
    {{"x", NULL, "get|", POLICY_ALLOW, INHERIT, INHERIT, NULL},
     "commands: bad command name 'get|'"},
    {{"x", NULL, "", POLICY_ALLOW, INHERIT, INHERIT, NULL}, ""},
    {{"x", NULL, NULL, POLICY_ALLOW, -2, INHERIT, NULL}, "max_key_length: must be -1 or more"},
    {{"x", NULL, NULL, POLICY_ALLOW, INHERIT, -5, NULL}, "max_value_size: must be -1 or more"},
    {{"x", NULL, NULL, POLICY_ALLOW, INHERIT, INHERIT, "two\nlines"},
     "reason: must be one line without control bytes"},
    {{"x", NULL, NULL, (policy_action_e)7, INHERIT, INHERIT, NULL}, "action: unknown action"},
};

Test(check, validate_rule_errors)
{
    static const struct vspec dup = {"dup", NULL, NULL, POLICY_ALLOW, INHERIT, INHERIT, NULL};

    for (size_t i = 0; i < LEN(verr_cases); i++) {
        struct policy *p = policy_create();
        char err[256] = "";
        cr_assert_eq(add_validate(p, &dup, err, sizeof(err)), 0);
        int rc = add_validate(p, &verr_cases[i].rule, err, sizeof(err));
        if (verr_cases[i].err[0] == '\0')
            cr_expect_eq(rc, 0, "case %zu: %s", i, err);
        else
            cr_expect(rc == -1 && strcmp(err, verr_cases[i].err) == 0, "case %zu: %d %s", i, rc,
                      err);
        policy_destroy(&p);
    }
}

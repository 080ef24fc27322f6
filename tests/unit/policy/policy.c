/* tests/unit/policy.c - the rule engine (policy/policy.c): building, cache
 * rules and modules, the hygiene module among them. Validation is tested in
 * tests/unit/check.c, invalidation in tests/unit/invalidate.c, reloads and
 * statistics in tests/unit/policy/registry.c.
 *
 * Requests are built from inline lines (resp_inline_encode) or, for binary
 * and very large ones, as multibulk frames, and looked up in the built-in
 * command table as the proxy does.
 */
#include "tests/unit/policy_util.h"

TestSuite(policy, .init = policy_test_setup, .fini = policy_test_teardown);

/* ---- building errors -------------------------------------------------------- */

Test(policy, cache_rule_and_build_errors)
{
    static const struct {
        struct policy_cache_rule rule;
        const char *err;
    } ccases[] = {
        {{"c", NULL, true, 0, 0, 0, 0, 0, 0, 0, 0}, "keys: required"},
        {{"c", "a:*", true, 0, 10000, 5000, 0, 0, 0, 0, 0}, "ttl: min 10000ms is above max 5000ms"},
        {{"c", "a:*", true, 0, 0, 0, 0, 2, 0, 0, 0}, "admit: window is required when reads > 1"},
        {{"c", "a:*", true, 0, 0, 0, 0, 0, 0, -1, 0}, "max_entry: must be 0 or more"},
        {{"c", "a:*", true, 0, 0, 0, 0, 0, 0, 0, -1}, "compress_over: must be 0 or more"},
        {{"default", "a:*", true, 0, 0, 0, 0, 0, 0, 0, 0},
         "name: 'default' is reserved for the default rule"},
    };
    char err[256];

    for (size_t i = 0; i < LEN(ccases); i++) {
        struct policy *p = policy_create();
        err[0] = '\0';
        cr_expect_eq(policy_add_cache(p, &ccases[i].rule, err, sizeof(err)), -1);
        cr_expect_str_eq(err, ccases[i].err, "cache case %zu", i);
        policy_destroy(&p);
    }
    struct policy *p = policy_create();
    struct policy_defaults d = {POLICY_ALLOW, -1, 0};
    cr_expect_eq(policy_set_defaults(p, &d, err, sizeof(err)), -1);
    cr_expect_str_eq(err, "max_key_length: must be 0 or more");
    cr_assert_eq(policy_build(p, NULL, err, sizeof(err)), 0);
    cr_expect_eq(policy_add_cache(p, &ccases[1].rule, err, sizeof(err)), -1);
    cr_expect_str_eq(err, "policy: rules added after policy_build");
    cr_expect_eq(policy_build(p, NULL, err, sizeof(err)), -1);
    policy_destroy(&p);
}

Test(policy, empty)
{
    static const struct policy_cache_rule c = {"c", "a:*", true, 0, 0, 0, 0, 0, 0, 0, 0};
    struct policy_defaults d = {POLICY_READ_ONLY, 0, 0};
    struct policy *p = policy_create();
    char err[128], reply[POLICY_REPLY_MAX];

    cr_expect(policy_empty(p));
    cr_assert_eq(policy_build(p, NULL, err, sizeof(err)), 0);
    struct frame f = frame_of("FLUSHALL");
    struct request_keys scratch = {0};
    struct request r;
    request_init(&r, keys, f.buf, &f.req, &scratch);
    cr_expect_eq(policy_check(p, &r, reply), 0);
    request_keys_free(&scratch);
    free(f.buf);
    cr_expect_eq(policy_cache_rule(p, "k", 1)->index, 0);
    cr_expect_eq(policy_stamp(p, "k", 1, NULL, 0), 0);
    policy_destroy(&p);
    p = policy_create();
    cr_assert_eq(policy_add_cache(p, &c, err, sizeof(err)), 0);
    cr_expect_not(policy_empty(p));
    policy_destroy(&p);
    p = policy_create();
    cr_assert_eq(policy_set_defaults(p, &d, err, sizeof(err)), 0);
    cr_expect_not(policy_empty(p));
    policy_destroy(&p);
}

/* ---- cache rules ----------------------------------------------------------- */

static struct policy *cache_policy(const struct policy_cache_rule *rules, size_t n,
                                   struct policy *prev)
{
    struct policy *p = policy_create();
    char err[256] = "";

    cr_assert_not_null(p);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(policy_add_cache(p, &rules[i], err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(policy_build(p, prev, err, sizeof(err)), 0, "%s", err);
    policy_take_over(p, prev);
    return p;
}

Test(policy, cache_rule_first_match_and_default)
{
    static const struct policy_cache_rule rules[] = {
        {"profiles", "user:{id}:profile", true, 30000, 0, 0, 0, 0, 0, 4096, 1024},
        {"users", "user:*", false, 0, 0, 0, 0, 0, 0, 0, 0},
        {"ends-x", "*x", true, 0, 0, 0, 0, 0, 0, 0, 0},
    };
    static const struct {
        const char *key;
        const char *rule;
        uint16_t index;
        bool cache;
    } cases[] = {
        {"user:1:profile", "profiles", 0, true},
        {"user:1:x", "users", 1, false},
        {"abx", "ends-x", 2, true},
        {"zzz", "default", 3, true},
        {"", "default", 3, true},
    };
    struct policy *p = cache_policy(rules, LEN(rules), NULL);

    for (size_t i = 0; i < LEN(cases); i++) {
        const struct policy_cached *c = policy_cache_rule(p, cases[i].key, strlen(cases[i].key));
        cr_expect_str_eq(c->name, cases[i].rule, "%s", cases[i].key);
        cr_expect_eq(c->index, cases[i].index, "%s", cases[i].key);
        cr_expect_eq(c->cache, cases[i].cache, "%s", cases[i].key);
        cr_expect_eq(policy_cache_rule_at(p, c->index), c);
    }
    const struct policy_cached *c = policy_cache_rule(p, "user:1:profile", 14);
    cr_expect(c->max_entry == 4096 && c->compress_over == 1024);
    cr_expect_null(policy_cache_rule_at(p, 4));
    c->stats->hits += 2;
    cr_expect_eq(stats_of(p, POLICY_KIND_CACHE, "profiles")->hits, 2);
    policy_destroy(&p);
}

static uint64_t ttl_of(struct policy *p, const char *key, uint64_t now)
{
    const struct policy_cached *c = policy_cache_rule(p, key, strlen(key));

    return policy_ttl(p, c, key, strlen(key), 300000, now);
}

static void read_n(struct policy *p, const char *key, int n, uint64_t now)
{
    const struct policy_cached *c = policy_cache_rule(p, key, strlen(key));

    for (int i = 0; i < n; i++)
        policy_note_read(p, c, key, strlen(key), false, now);
}

Test(policy, ttl_fixed_and_adaptive_formula)
{
    static const struct policy_cache_rule rules[] = {
        {"adaptive", "a:*", true, 0, 1000, 101000, 60000, 0, 0, 0, 0},
        {"fixed", "f:*", true, 5000, 0, 0, 0, 0, 0, 0, 0},
    };
    struct policy *p = cache_policy(rules, LEN(rules), NULL);

    cr_expect_eq(ttl_of(p, "f:1", 0), 5000);
    cr_expect_eq(ttl_of(p, "plain", 0), 300000, "the default rule: cache.ttl");
    cr_expect_eq(ttl_of(p, "a:1", 0), 1000, "R = 0: min");
    read_n(p, "a:1", 1, 0);
    cr_expect_eq(ttl_of(p, "a:1", 0), 1000 + 100000 / 11, "R = 1");
    read_n(p, "a:1", 89, 10);
    cr_expect_eq(ttl_of(p, "a:1", 10), 1000 + 90000, "R = 90: 90/100 of the span");
    cr_expect_eq(policy_on_write(p, "a:1", 3, "set", 20), 0);
    cr_expect_eq(ttl_of(p, "a:1", 20), 1000 + 45000, "W = 1 halves it");
    /* Half a window later the previous window counts for half: R = 45; the
     * write window began with the write, at 20: W = 1 - 29980 / 60000. */
    double w = 2 - 29980.0 / 60000;
    uint64_t got = ttl_of(p, "a:1", 90000), want = 1000 + (uint64_t)(100000.0 * 45 / 55 / w);
    cr_expect(got + 1 >= want && got <= want + 1, "sliding: %llu, want %llu",
              (unsigned long long)got, (unsigned long long)want);
    cr_expect_eq(ttl_of(p, "a:1", 200000), 1000, "two windows later: forgotten");
    read_n(p, "a:2", 1000, 200000);
    cr_expect_geq(ttl_of(p, "a:2", 200000), 99000, "many reads, no writes: near max");
    cr_expect_leq(ttl_of(p, "a:2", 200000), 101000);
    policy_destroy(&p);
}

static bool admit_read(struct policy *p, const char *key, uint64_t now)
{
    const struct policy_cached *c = policy_cache_rule(p, key, strlen(key));

    policy_note_read(p, c, key, strlen(key), false, now);
    return policy_admit(p, c, key, strlen(key), now);
}

Test(policy, admission_counts_reads_in_a_sliding_window)
{
    static const struct policy_cache_rule rules[] = {
        {"admit3", "a:*", true, 0, 0, 0, 0, 3, 10000, 0, 0},
        {"once", "o:*", true, 0, 0, 0, 0, 1, 0, 0, 0},
        {"bypass", "b:*", false, 0, 0, 0, 0, 0, 0, 0, 0},
    };
    static const struct {
        uint64_t at[4];
        bool admitted[4];
    } runs[] = {
        {{0, 1, 2, 3}, {false, false, true, true}},                 /* the 3rd read admits */
        {{0, 10000, 20000, 30000}, {false, false, false, false}},   /* one per window */
        {{0, 9000, 12000, 14000}, {false, false, false, true}},     /* 1 + 2 * 0.8, 2 + 2 * 0.6 */
        {{5000, 30000, 30001, 30002}, {false, false, false, true}}, /* old reads forgotten */
    };

    for (size_t r = 0; r < LEN(runs); r++) {
        struct policy *p = cache_policy(rules, LEN(rules), NULL);
        for (size_t i = 0; i < 4; i++)
            cr_expect_eq(admit_read(p, "a:1", runs[r].at[i]), runs[r].admitted[i],
                         "run %zu read %zu", r, i);
        cr_expect_not(admit_read(p, "a:other", runs[r].at[3]), "another key's reads");
        policy_destroy(&p);
    }
    struct policy *p = cache_policy(rules, LEN(rules), NULL);
    cr_expect(admit_read(p, "o:1", 0));
    cr_expect_not(admit_read(p, "b:1", 0));
    cr_expect(admit_read(p, "x", 0), "the default rule admits at once");
    cr_expect(policy_should_cache(p, "x", 1, 100), "no module objects");
    policy_destroy(&p);
}

/* ---- modules --------------------------------------------------------------- */

static struct policy *hygiene_policy(const char *const *names, const char *const *values, size_t n,
                                     const struct policy_cache_rule *cache)
{
    struct policy *p = policy_create();
    struct policy_module_args args = {names, values, n};
    char err[256] = "";

    if (cache != NULL)
        cr_assert_eq(policy_add_cache(p, cache, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(policy_add_module(p, "hygiene", &args, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(policy_build(p, NULL, err, sizeof(err)), 0, "%s", err);
    return p;
}

Test(policy, hygiene_rejects_spaces_and_control_bytes)
{
    static const char *const names[] = {"allow_spaces"}, *const yes[] = {"true"},
                             *const no[] = {"false"};
    static const char SPACE[] = "-ERR policy hygiene: key contains a space or control byte\r\n",
                      CONTROL[] = "-ERR policy hygiene: key contains a control byte\r\n";
    static const struct {
        const char *line;
        const char *strict, *lax; /* replies without and with allow_spaces */
    } cases[] = {
        {"GET ab", "", ""},
        {"GET \"a b\"", SPACE, ""},
        {"GET \"a\\tb\"", SPACE, CONTROL},
        {"GET \"a\\x7f\"", SPACE, CONTROL},
        {"GET \"\\x01\"", SPACE, CONTROL},
        {"GET \"\\xff\"", "", ""},
        {"MSET ok 1 \"b c\" 2", SPACE, ""},
        {"SET k \"v w\\n\"", "", ""},
        {"PING", "", ""},
    };
    struct policy *strict = hygiene_policy(names, no, 1, NULL);
    struct policy *lax = hygiene_policy(names, yes, 1, NULL);
    struct policy *plain = hygiene_policy(NULL, NULL, 0, NULL);

    for (size_t i = 0; i < LEN(cases); i++) {
        cr_expect_str_eq(check(strict, cases[i].line), cases[i].strict, "%s", cases[i].line);
        cr_expect_str_eq(check(plain, cases[i].line), cases[i].strict, "%s", cases[i].line);
        cr_expect_str_eq(check(lax, cases[i].line), cases[i].lax, "%s", cases[i].line);
    }
    policy_destroy(&strict);
    policy_destroy(&lax);
    policy_destroy(&plain);
}

Test(policy, hygiene_ttl_jitter_is_deterministic_and_bounded)
{
    static const char *const names[] = {"jitter"}, *const ten[] = {"10"}, *const zero[] = {"0"};
    static const struct policy_cache_rule fixed = {"f", "f:*", true, 5000, 0, 0, 0, 0, 0, 0, 0};
    struct policy *p = hygiene_policy(names, ten, 1, &fixed);
    struct policy *none = hygiene_policy(names, zero, 1, NULL);
    uint64_t least = UINT64_MAX, most = 0;

    for (int i = 0; i < 1000; i++) {
        char key[32];
        snprintf(key, sizeof(key), "key:%d", i);
        uint64_t t = ttl_of(p, key, 0);
        cr_assert(t >= 270000 && t <= 300000, "%s: %llu", key, (unsigned long long)t);
        cr_assert_eq(ttl_of(p, key, 5), t, "deterministic");
        cr_assert_eq(ttl_of(none, key, 0), 300000);
        least = t < least ? t : least;
        most = t > most ? t : most;
    }
    cr_expect(least < 273000 && most > 297000, "spread: %llu..%llu", (unsigned long long)least,
              (unsigned long long)most);
    uint64_t f = ttl_of(p, "f:1", 0);
    cr_expect(f >= 4500 && f <= 5000, "the rule's TTL jittered: %llu", (unsigned long long)f);
    policy_destroy(&p);
    policy_destroy(&none);
}

Test(policy, module_errors)
{
    static const struct {
        const char *name, *arg, *value, *err;
    } cases[] = {
        {"hygiene", "jitter", "51", "jitter: must be a whole percent from 0 to 50"},
        {"hygiene", "jitter", "-1", "jitter: must be a whole percent from 0 to 50"},
        {"hygiene", "jitter", "10%", "jitter: must be a whole percent from 0 to 50"},
        {"hygiene", "jitter", "", "jitter: must be a whole percent from 0 to 50"},
        {"hygiene", "allow_spaces", "yes", "allow_spaces: must be true or false"},
        {"hygiene", "colour", "red", "colour: unknown setting of module hygiene"},
        {"nosuch", "a", "b", "name: unknown module 'nosuch'"},
    };
    char err[256];

    for (size_t i = 0; i < LEN(cases); i++) {
        struct policy *p = policy_create();
        struct policy_module_args args = {&cases[i].arg, &cases[i].value, 1};
        err[0] = '\0';
        cr_expect_eq(policy_add_module(p, cases[i].name, &args, err, sizeof(err)), -1);
        cr_expect_str_eq(err, cases[i].err, "case %zu", i);
        cr_expect(policy_empty(p), "nothing was added");
        policy_destroy(&p);
    }
    struct policy *p = policy_create();
    struct policy_module_args none = {NULL, NULL, 0};
    cr_assert_eq(policy_add_module(p, "hygiene", &none, err, sizeof(err)), 0);
    cr_expect_not(policy_empty(p));
    cr_expect_eq(policy_add_module(p, "hygiene", &none, err, sizeof(err)), -1);
    cr_expect_str_eq(err, "name: module 'hygiene' is enabled twice");
    policy_destroy(&p);
}

/* A module that records what its hooks saw, to test the interface itself. */
struct recorder {
    int creates;
    char last_write[64];
    int writes, tracked_writes, errors;
    size_t vetoed_over; /* should_cache says no to replies longer than this */
};

static struct recorder rec;

static void *rec_create(const struct policy_module_args *args, char *err, size_t errlen)
{
    for (size_t i = 0; i < args->count; i++) {
        if (strcmp(args->names[i], "veto_over") != 0) {
            snprintf(err, errlen, "%s: unknown setting", args->names[i]);
            return NULL;
        }
        rec.vetoed_over = (size_t)atoi(args->values[i]);
    }
    rec.creates++;
    return &rec;
}

static const char *rec_validate(void *state, const struct policy_request *r)
{
    (void)state;
    return r->nkeys == 1 && r->keys[0].len == 6 && memcmp(r->buf + r->keys[0].off, "banned", 6) == 0
               ? "banned key"
               : NULL;
}

static bool rec_should_cache(void *state, const char *key, size_t klen, size_t reply_len)
{
    (void)key;
    (void)klen;
    return reply_len <= ((struct recorder *)state)->vetoed_over;
}

static uint64_t rec_ttl(void *state, const char *key, size_t klen, uint64_t ttl_ms)
{
    (void)state;
    (void)key;
    return ttl_ms / 2 + klen;
}

static void rec_on_write(void *state, const char *key, size_t klen, const char *command)
{
    struct recorder *r = state;
    snprintf(r->last_write, sizeof(r->last_write), "%.*s %s", (int)klen, key,
             command != NULL ? command : "(tracking)");
    r->writes++;
    r->tracked_writes += command == NULL;
}

static void rec_on_error(void *state, const char *reply, size_t len)
{
    (void)reply;
    ((struct recorder *)state)->errors += len > 0;
}

static const struct policy_module RECORDER = {
    "recorder",       rec_create, NULL,         rec_validate,
    rec_should_cache, rec_ttl,    rec_on_write, rec_on_error,
};

Test(policy, every_module_hook_is_called)
{
    char err[256];
    static const char *const names[] = {"veto_over"}, *const values[] = {"100"};
    const struct policy_module_args args = {names, values, 1};
    memset(&rec, 0, sizeof(rec));
    struct policy *p = policy_create();
    cr_assert_eq(policy_use_module(p, &RECORDER, &args, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(policy_use_module(p, &RECORDER, &args, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "name: module 'recorder' is enabled twice");
    cr_assert_eq(policy_build(p, NULL, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(rec.creates, 1);
    cr_assert_not(policy_empty(p), "a module alone makes the policy worth consulting");

    cr_assert_str_eq(check(p, "GET banned"), "-ERR policy recorder: banned key\r\n");
    cr_assert_eq(rec.errors, 1, "a rejection is an error reply");
    char stats[2048];
    policy_stats(p, stats, sizeof(stats));
    cr_assert_not_null(
        strstr(stats,
               "rule:module:recorder:hits=0,misses=0,rejections=1,invalidations=0,writes=0\r\n"),
        "%s", stats);
    cr_assert_str_eq(check(p, "GET fine"), "");
    policy_on_error(p, "-ERR from redis\r\n", 17);
    cr_assert_eq(rec.errors, 2);

    const struct policy_cached *rule = policy_cache_rule(p, "k", 1);
    cr_assert(policy_should_cache(p, "k", 1, 100));
    cr_assert_not(policy_should_cache(p, "k", 1, 101), "vetoed by the module");
    cr_assert_eq(policy_ttl(p, rule, "key", 3, 1000, 0), 503, "the module halves, plus klen");

    policy_on_write(p, "user:1", 6, "set", 0);
    cr_assert_str_eq(rec.last_write, "user:1 set");
    policy_on_write(p, "user:2", 6, NULL, 0);
    cr_assert_str_eq(rec.last_write, "user:2 (tracking)");
    cr_assert(rec.writes == 2 && rec.tracked_writes == 1);
    policy_destroy(&p);

    struct policy *bad = policy_create();
    static const char *const unknown[] = {"colour"};
    const struct policy_module_args wrong = {unknown, values, 1};
    cr_assert_eq(policy_use_module(bad, &RECORDER, &wrong, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "colour: unknown setting");
    policy_destroy(&bad);
}

/* tests/unit/policy/registry.c - the rules by kind and name
 * (policy/registry.c): fingerprints, what a reload hands over (generations,
 * counters, windows), the name table and blocks of counters past their first
 * growth, and the statistics lines. Through policy.h, as the proxy uses them.
 */
#include "tests/unit/policy_util.h"

TestSuite(registry, .init = policy_test_setup, .fini = policy_test_teardown);

static bool admit_read(struct policy *p, const char *key, uint64_t now)
{
    const struct policy_cached *c = policy_cache_rule(p, key, strlen(key));

    policy_note_read(p, c, key, strlen(key), false, now);
    return policy_admit(p, c, key, strlen(key), now);
}

/* ---- reloads --------------------------------------------------------------- */

struct world {
    const struct policy_cache_rule *cache;
    size_t ncache;
    const struct ispec *inval;
    size_t ninval;
    const struct vspec *validate;
    size_t nvalidate;
    bool hygiene;
};

/* A policy with w's rules, not built. */
static struct policy *world_rules(const struct world *w)
{
    struct policy *p = policy_create();
    char err[256] = "";

    cr_assert_not_null(p);
    for (size_t i = 0; i < w->nvalidate; i++)
        cr_assert_eq(add_validate(p, &w->validate[i], err, sizeof(err)), 0, "%s", err);
    for (size_t i = 0; i < w->ncache; i++)
        cr_assert_eq(policy_add_cache(p, &w->cache[i], err, sizeof(err)), 0, "%s", err);
    for (size_t i = 0; i < w->ninval; i++)
        cr_assert_eq(add_invalidate(p, &w->inval[i], err, sizeof(err)), 0, "%s", err);
    if (w->hygiene) {
        struct policy_module_args none = {NULL, NULL, 0};
        cr_assert_eq(policy_add_module(p, "hygiene", &none, err, sizeof(err)), 0, "%s", err);
    }
    return p;
}

/* A policy with w's rules built over prev (NULL: none), before the take-over. */
static struct policy *world_built(const struct world *w, const struct policy *prev)
{
    struct policy *p = world_rules(w);
    char err[256] = "";

    cr_assert_eq(policy_build(p, prev, err, sizeof(err)), 0, "%s", err);
    return p;
}

/* A policy with w's rules that took prev's place, as a reload does. */
static struct policy *world_policy(const struct world *w, struct policy *prev)
{
    struct policy *p = world_built(w, prev);

    policy_take_over(p, prev);
    return p;
}

static void fingerprints(const struct world *w, uint32_t *out)
{
    struct policy *p = world_policy(w, NULL);

    for (size_t i = 0; i <= w->ncache; i++)
        out[i] = policy_cache_rule_at(p, (uint16_t)i)->fingerprint;
    policy_destroy(&p);
}

Test(registry, fingerprints_follow_earlier_rules_and_invalidation)
{
    static const struct policy_cache_rule base[] = {
        {"c0", "a:*", true, 1000, 0, 0, 0, 0, 0, 0, 0},
        {"c1", "b:*", true, 1000, 0, 0, 0, 0, 0, 0, 0},
        {"c2", "c:*", true, 1000, 0, 0, 0, 0, 0, 0, 0},
    };
    static const struct policy_cache_rule c1_ttl[] = {
        {"c0", "a:*", true, 1000, 0, 0, 0, 0, 0, 0, 0},
        {"c1", "b:*", true, 2000, 0, 0, 0, 0, 0, 0, 0},
        {"c2", "c:*", true, 1000, 0, 0, 0, 0, 0, 0, 0},
    };
    static const struct policy_cache_rule c2_keys[] = {
        {"c0", "a:*", true, 1000, 0, 0, 0, 0, 0, 0, 0},
        {"c1", "b:*", true, 1000, 0, 0, 0, 0, 0, 0, 0},
        {"c2", "cc:*", true, 1000, 0, 0, 0, 0, 0, 0, 0},
    };
    static const struct policy_cache_rule c1_same[] = {
        {"c0", "a:*", true, 1000, 0, 0, 0, 0, 0, 0, 0},
        {"c1", "b:*", true, 1000, 0, 0, 0, 1, 5000, 0, 0}, /* admits at once all the same */
        {"c2", "c:*", true, 1000, 0, 0, 0, 0, 0, 0, 0},
    };
    static const struct ispec inv[] = {{"i", "m:{m}", NULL, "a:{m}"}};
    static const struct ispec inv_drop[] = {{"i", "m:{m}", NULL, "a:{m}:*"}};
    static const struct ispec inv_cmds[] = {{"i", "m:{m}", "del", "a:{m}"}};
    static const struct vspec val[] = {{"v", "x:*", NULL, POLICY_DENY, INHERIT, INHERIT, NULL}};
    static const struct {
        struct world w;
        bool changed[4]; /* c0, c1, c2, default */
    } cases[] = {
        {{base, 3, inv, 1, NULL, 0, false}, {false, false, false, false}},
        {{c1_ttl, 3, inv, 1, NULL, 0, false}, {false, true, true, true}},
        {{c1_same, 3, inv, 1, NULL, 0, false}, {false, false, false, false}},
        {{c2_keys, 3, inv, 1, NULL, 0, false}, {false, false, true, true}},
        {{base, 3, inv_drop, 1, NULL, 0, false}, {true, true, true, true}},
        {{base, 3, inv_cmds, 1, NULL, 0, false}, {true, true, true, true}},
        {{base, 3, NULL, 0, NULL, 0, false}, {true, true, true, true}},
        {{base, 3, inv, 1, val, 1, true}, {false, false, false, false}},
        {{base, 2, inv, 1, NULL, 0, false}, {false, false, true, true}},
    };
    const struct world ref = {base, 3, inv, 1, NULL, 0, false};
    uint32_t want[4], got[4];

    fingerprints(&ref, want);
    for (size_t i = 0; i < LEN(cases); i++) {
        fingerprints(&cases[i].w, got);
        /* With 2 rules, index 2 is the default: compare it with the default. */
        if (cases[i].w.ncache == 2)
            got[3] = got[2];
        for (size_t r = 0; r < 4; r++)
            if (r < 3 && r >= cases[i].w.ncache)
                continue;
            else
                cr_expect_eq(got[r] != want[r], cases[i].changed[r], "case %zu rule %zu", i, r);
    }
}

Test(registry, reload_takes_over_generations_counters_and_windows)
{
    static const struct policy_cache_rule admit[] = {
        {"c", "a:*", true, 0, 0, 0, 0, 3, 10000, 0, 0}};
    static const struct policy_cache_rule admit2[] = {
        {"c", "a:*", true, 0, 0, 0, 0, 3, 20000, 0, 0}};
    static const struct ispec inv[] = {{"i", "m:{m}", NULL, "a:{m}"}};
    static const struct vspec val[] = {{"v", "x:*", NULL, POLICY_DENY, INHERIT, INHERIT, NULL},
                                       {"c", "never:*", NULL, POLICY_DENY, INHERIT, INHERIT, NULL}};
    const struct world w1 = {admit, 1, inv, 1, val, 1, false};
    const struct world w2 = {admit, 1, inv, 1, val, 2, false};
    const struct world w3 = {admit2, 1, inv, 1, val, 2, false};
    struct policy *prev = world_policy(&w1, NULL), *next;

    struct entry e1 = stamp(prev, "a:1"), e2 = stamp(prev, "a:2");
    cr_assert_eq(write_key(prev, "m:1", "set"), 1);
    cr_expect_str_neq(check(prev, "GET x:1"), "");
    policy_cache_rule(prev, "a:1", 3)->stats->misses = 3; /* and two reads below */
    cr_expect_not(admit_read(prev, "a:9", 0));
    cr_expect_not(admit_read(prev, "a:9", 1));

    next = world_policy(&w2, prev);
    policy_destroy(&prev);
    cr_expect_not(current(next, &e1), "invalidated before the reload: still stale");
    cr_expect(current(next, &e2));
    write_key(next, "m:2", "set");
    cr_expect_not(current(next, &e2));
    cr_expect_eq(stats_of(next, POLICY_KIND_VALIDATE, "v")->rejections, 1);
    cr_expect_eq(stats_of(next, POLICY_KIND_VALIDATE, "c")->rejections, 0);
    cr_expect_eq(stats_of(next, POLICY_KIND_CACHE, "c")->misses, 5, "same kind and name only");
    cr_expect_eq(stats_of(next, POLICY_KIND_INVALIDATE, "i")->invalidations, 2);
    cr_expect(admit_read(next, "a:9", 2), "the unchanged rule kept its reads");

    prev = next;
    next = world_policy(&w3, prev);
    policy_destroy(&prev);
    cr_expect_not(current(next, &e2), "still stale after a second reload");
    cr_expect_not(admit_read(next, "a:9", 3), "a changed rule starts over");
    policy_destroy(&next);
}

/* The state a reload hands over is prev's at policy_take_over, not at
 * policy_build: prev keeps serving in between, and build leaves it alone. */
Test(registry, take_over_moves_counters_windows_and_generations)
{
    static const struct policy_cache_rule same[] = {{"c", "a:*", true, 0, 0, 0, 0, 3, 10000, 0, 0}};
    static const struct policy_cache_rule changed[] = {
        {"c", "a:*", true, 0, 0, 0, 0, 3, 20000, 0, 0}};
    static const struct policy_cache_rule renamed[] = {
        {"d", "a:*", true, 0, 0, 0, 0, 3, 10000, 0, 0}};
    static const struct policy_cache_rule moved[] = {
        {"n", "n:*", true, 0, 0, 0, 0, 0, 0, 0, 0}, {"c", "a:*", true, 0, 0, 0, 0, 3, 10000, 0, 0}};
    static const struct ispec inv[] = {{"i", "m:{m}", NULL, "a:{m}"}};
    static const struct ispec inv2[] = {{"i", "m:{m}", NULL, "a:{m}:*"}};
    static const struct vspec val[] = {{"v", "x:*", NULL, POLICY_DENY, INHERIT, INHERIT, NULL}};
    static const struct {
        const char *what;
        struct world w;
        const char *rule; /* the cache rule matching a:9 */
        uint64_t misses;  /* its counter after the take-over */
        bool window;      /* its admission window was handed over */
    } cases[] = {
        {"same rules", {same, 1, inv, 1, val, 1, true}, "c", 5, true},
        {"admission window changed", {changed, 1, inv, 1, val, 1, true}, "c", 5, false},
        {"renamed", {renamed, 1, inv, 1, val, 1, true}, "d", 0, false},
        {"after a new rule", {moved, 2, inv, 1, val, 1, true}, "c", 5, false},
        {"invalidation changed", {same, 1, inv2, 1, val, 1, true}, "c", 5, false},
    };
    const struct world base = {same, 1, inv, 1, val, 1, true};

    for (size_t i = 0; i < LEN(cases); i++) {
        struct policy *prev = world_policy(&base, NULL), *next;
        struct entry e = stamp(prev, "a:1");
        char before[1024], after[1024];

        policy_cache_rule(prev, "a:9", 3)->stats->misses = 3; /* and two reads below */
        cr_expect_not(admit_read(prev, "a:9", 0));
        policy_stats(prev, before, sizeof(before));
        next = world_built(&cases[i].w, prev);
        policy_stats(prev, after, sizeof(after));
        cr_expect_str_eq(after, before, "%s: build leaves prev alone", cases[i].what);
        /* prev serves on until the take-over */
        cr_expect_not(admit_read(prev, "a:9", 1), "%s", cases[i].what);
        cr_expect_str_neq(check(prev, "GET x:1"), "");
        cr_expect_str_neq(check(prev, "GET \"a b\""), "");
        cr_expect_eq(write_key(prev, "m:1", "set"), 1);
        cr_expect_not(current(prev, &e));
        policy_take_over(next, prev);
        policy_destroy(&prev);

        const char *what = cases[i].what;
        cr_expect_eq(stats_of(next, POLICY_KIND_CACHE, cases[i].rule)->misses, cases[i].misses,
                     "%s", what);
        cr_expect_eq(admit_read(next, "a:9", 2), cases[i].window, "%s: third read", what);
        cr_expect_not(admit_read(next, "a:8", 2), "%s: a first read is not admitted", what);
        cr_expect_eq(stats_of(next, POLICY_KIND_VALIDATE, "v")->rejections, 1, "%s", what);
        cr_expect_eq(stats_of(next, POLICY_KIND_INVALIDATE, "i")->invalidations, 1, "%s", what);
        cr_expect_eq(stats_of(next, POLICY_KIND_MODULE, "hygiene")->rejections, 1, "%s", what);
        cr_expect_not(current(next, &e), "%s: fired before the take-over: still stale", what);
        policy_destroy(&next);
    }
}

Test(registry, take_over_only_from_the_policy_built_over)
{
    static const struct policy_cache_rule cache[] = {
        {"c", "a:*", true, 0, 0, 0, 0, 3, 10000, 0, 0}};
    const struct world w = {cache, 1, NULL, 0, NULL, 0, false};
    struct policy *prev = world_policy(&w, NULL), *other = world_policy(&w, NULL);
    struct policy *next = world_built(&w, prev);

    policy_cache_rule(prev, "a:1", 3)->stats->hits = 7;
    policy_cache_rule(other, "a:1", 3)->stats->hits = 9;
    policy_take_over(next, NULL);
    policy_take_over(next, other);
    cr_expect_eq(stats_of(next, POLICY_KIND_CACHE, "c")->hits, 0, "not built over those");
    policy_take_over(next, prev);
    cr_expect_eq(stats_of(next, POLICY_KIND_CACHE, "c")->hits, 7);
    policy_cache_rule(prev, "a:1", 3)->stats->hits = 8;
    policy_take_over(next, prev);
    cr_expect_eq(stats_of(next, POLICY_KIND_CACHE, "c")->hits, 7, "the second time: nothing");
    policy_destroy(&prev);
    policy_destroy(&other);
    policy_destroy(&next);
}

/* ---- stats ----------------------------------------------------------------- */

Test(registry, stats_lines)
{
    static const struct policy_cache_rule cache[] = {{"c", "a:*", true, 0, 0, 0, 0, 0, 0, 0, 0}};
    static const struct ispec inv[] = {{"i", "m:{m}", NULL, "a:{m}"}};
    static const struct vspec val[] = {{"v", "x:*", NULL, POLICY_DENY, INHERIT, INHERIT, NULL}};
    const struct world w = {cache, 1, inv, 1, val, 1, false};
    struct policy *p = world_policy(&w, NULL);
    char buf[1024];

    check(p, "GET x:1");
    policy_cache_rule(p, "a:1", 3)->stats->hits = 2;
    policy_cache_rule(p, "a:1", 3)->stats->misses = 1;
    write_key(p, "m:1", NULL);
    size_t n = policy_stats(p, buf, sizeof(buf));
    cr_expect_eq(n, strlen(buf));
    cr_expect_str_eq(
        buf, "rule:validate:v:hits=0,misses=0,rejections=1,invalidations=0,writes=0\r\n"
             "rule:validate:default:hits=0,misses=0,rejections=0,invalidations=0,writes=0\r\n"
             "rule:cache:c:hits=2,misses=1,rejections=0,invalidations=0,writes=0\r\n"
             "rule:cache:default:hits=0,misses=0,rejections=0,invalidations=0,writes=0\r\n"
             "rule:invalidate:i:hits=0,misses=0,rejections=0,invalidations=1,writes=0\r\n");
    cr_expect_eq(policy_rule_count(p), 5);
    cr_expect_eq(policy_stats(p, buf, 10), 9, "truncated to the buffer");
    cr_expect_eq(strlen(buf), 9);
    policy_destroy(&p);
}

/* ---- many rules ------------------------------------------------------------ */

#define MANY 2500 /* rules of each kind: past a block of counters and many table growths */

/* A policy with MANY validation and cache rules, named v<i> and c<i>, in the
 * order of i or, reversed, of MANY - 1 - i; built over prev. */
static struct policy *many_rules(bool reversed, struct policy *prev)
{
    struct policy *p = policy_create();
    char err[256] = "", name[16], keys_text[32];

    cr_assert_not_null(p);
    for (size_t n = 0; n < MANY; n++) {
        size_t i = reversed ? MANY - 1 - n : n;
        snprintf(name, sizeof(name), "v%zu", i);
        snprintf(keys_text, sizeof(keys_text), "v%zu:*", i);
        const struct policy_validate_rule v = {.name = name,
                                               .keys = keys_text,
                                               .action = POLICY_DENY,
                                               .max_key_length = INHERIT,
                                               .max_value_size = INHERIT};
        cr_assert_eq(policy_add_validate(p, &v, err, sizeof(err)), 0, "%s", err);
        snprintf(name, sizeof(name), "c%zu", i);
        snprintf(keys_text, sizeof(keys_text), "c%zu:*", i);
        const struct policy_cache_rule c = {name, keys_text, true, 1000, 0, 0, 0, 0, 0, 0, 0};
        cr_assert_eq(policy_add_cache(p, &c, err, sizeof(err)), 0, "%s", err);
    }
    cr_assert_eq(policy_build(p, prev, err, sizeof(err)), 0, "%s", err);
    policy_take_over(p, prev);
    return p;
}

/* Every rule keeps its own counters: across blocks, and across a reload that
 * lists the rules in the other order (found by name, not by position). The
 * table refuses a duplicate wherever it landed. */
Test(registry, many_rules_keep_their_counters)
{
    struct policy *prev = many_rules(false, NULL), *next;
    char err[256] = "", name[16];

    for (size_t i = 0; i < MANY; i++) {
        snprintf(name, sizeof(name), "v%zu", i);
        /* no writable accessor for a validation rule's counters: the cells are p's */
        ((struct policy_rule_stats *)stats_of(prev, POLICY_KIND_VALIDATE, name))->rejections = i;
        snprintf(name, sizeof(name), "c%zu:x", i);
        policy_cache_rule(prev, name, strlen(name))->stats->hits = 2 * i + 1;
    }
    cr_expect_eq(policy_rule_count(prev), 2 * MANY + 2);
    next = many_rules(true, prev);
    policy_destroy(&prev);
    for (size_t i = 0; i < MANY; i++) {
        snprintf(name, sizeof(name), "v%zu", i);
        cr_expect_eq(stats_of(next, POLICY_KIND_VALIDATE, name)->rejections, i, "%s", name);
        snprintf(name, sizeof(name), "c%zu", i);
        cr_expect_eq(stats_of(next, POLICY_KIND_CACHE, name)->hits, 2 * i + 1, "%s", name);
    }
    policy_destroy(&next);

    struct policy *p = policy_create();
    const struct policy_cache_rule c = {"c1234", "x:*", true, 0, 0, 0, 0, 0, 0, 0, 0};
    cr_assert_not_null(p);
    for (size_t i = 0; i < MANY; i++) {
        struct policy_cache_rule r = c;
        snprintf(name, sizeof(name), "c%zu", i);
        r.name = name;
        cr_assert_eq(policy_add_cache(p, &r, err, sizeof(err)), 0, "%s", err);
    }
    cr_expect_eq(policy_add_cache(p, &c, err, sizeof(err)), -1);
    cr_expect_str_eq(err, "name: duplicate rule 'c1234'");
    const struct policy_validate_rule v = {"c1234", NULL, NULL, 0, POLICY_DENY, 0, 0, NULL};
    cr_expect_eq(policy_add_validate(p, &v, err, sizeof(err)), 0, "another kind: %s", err);
    policy_destroy(&p);
}

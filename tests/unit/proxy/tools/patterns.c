/* tests/unit/proxy/tools/patterns.c - keys grouped into policy patterns.
 *
 * Each case feeds keys and expects the groups, in order, with their counts.
 * Every group's pattern must compile (policy/pattern.h) and match every key
 * sampled into it: with samples as large as the input, that is every key.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/pattern.h"
#include "proxy/tools/patterns.h"
#include "tests/unit/leaks.h"

#define MAX_KEYS   12
#define MAX_GROUPS 6
#define UUID       "123e4567-e89b-12d3-a456-426614174000"
#define HEX32      "9f86d081884c7d659a2feaa0c55ad015"

TestSuite(patterns, .fini = check_leaks);

struct expect_group {
    const char *pattern;
    uint64_t keys;
};

struct group_case {
    const char *name;
    size_t fold_over; /* 0: the default */
    size_t max_nodes; /* 0: the default */
    const char *keys[MAX_KEYS];
    struct expect_group groups[MAX_GROUPS];
};

static const struct group_case cases[] = {
    {"digits",
     0,
     0,
     {"user:1:profile", "user:22:profile", "user:333:profile"},
     {{"user:{id}:profile", 3}}},
    {"hex32", 0, 0, {"session:" HEX32, "session:0123456789abcdef"}, {{"session:{id}", 2}}},
    {"hex without a digit is a word",
     0,
     0,
     {"tag:deadbeefcafe", "tag:abc1"},
     {{"tag:deadbeefcafe", 1}, {"tag:abc1", 1}}},
    {"uuid before a colon", 0, 0, {"order:" UUID ":items"}, {{"order:{id}:items", 1}}},
    {"uuid before a dash is a star", 0, 0, {"x-" UUID "-y"}, {{"x-*-y", 1}}},
    {"literal keys stay",
     0,
     0,
     {"config", "feature-flags", "config"},
     {{"config", 2}, {"feature-flags", 1}}},
    {"literal before capture",
     0,
     0,
     {"product:1", "product:featured", "product:2"},
     {{"product:featured", 1}, {"product:{id}", 2}}},
    {"longer capture first",
     0,
     0,
     {"user:1", "user:1:profile"},
     {{"user:{id}:profile", 1}, {"user:{id}", 1}}},
    {"second capture named id2", 0, 0, {"t:1:u:2", "t:3:u:4"}, {{"t:{id}:u:{id2}", 2}}},
    {"every separator", 0, 0, {"a/1", "b.2", "c-3"}, {{"a/{id}", 1}, {"b.{id}", 1}, {"c-{id}", 1}}},
    {"high cardinality folds",
     3,
     0,
     {"user:alice:profile", "user:bob:profile", "user:carol:profile", "user:dave:profile"},
     {{"user:{id}:profile", 4}}},
    {"fold at the cap, not before",
     3,
     0,
     {"user:alice:profile", "user:bob:profile", "user:carol:profile"},
     {{"user:alice:profile", 1}, {"user:bob:profile", 1}, {"user:carol:profile", 1}}},
    {"fold merges subtrees",
     2,
     0,
     {"a:x:1", "a:y:2", "a:z:b"},
     {{"a:{id}:b", 1}, {"a:{id}:{id2}", 2}}},
    {"folded node takes new literals", 1, 0, {"k:a", "k:b", "k:c", "k:d"}, {{"k:{id}", 4}}},
    {"glob bytes escaped",
     0,
     0,
     {"we*ird?:1", "br[a]ce{s}\\:2"},
     {{"we\\*ird\\?:{id}", 1}, {"br\\[a\\]ce\\{s\\}\\\\:{id}", 1}}},
    {"trailing separator", 0, 0, {"a:", "a:"}, {{"a:", 2}}},
    {"node cap overflows", 0, 2, {"a:b", "a:c", "d"}, {{"a:b", 1}, {"a:*", 1}, {"*", 1}}},
    {"overflow after a capture", 0, 3, {"u:1:x", "u:2:y"}, {{"u:{id}:x", 1}, {"u:{id}:*", 1}}},
};

struct seen {
    const struct group_case *c;
    size_t n;
    uint64_t total;
};

/* patterns_each_fn: checks group n against the case and its samples against
 * the compiled pattern. */
static void check_group(void *arg, const struct patterns_group *g)
{
    struct seen *s = arg;
    const struct expect_group *e = &s->c->groups[s->n];
    cr_assert_lt(s->n, MAX_GROUPS, "%s: more groups than expected", s->c->name);
    cr_assert_not_null(e->pattern, "%s: extra group '%s'", s->c->name, g->pattern);
    cr_assert_str_eq(g->pattern, e->pattern, "%s: group %zu", s->c->name, s->n);
    cr_assert_eq(g->pattern_len, strlen(g->pattern));
    cr_assert_eq(g->keys, e->keys, "%s: '%s' counted %llu keys", s->c->name, g->pattern,
                 (unsigned long long)g->keys);
    /* no expected pattern but an overflow group ends with '*' */
    cr_assert_eq(g->overflow, e->pattern[strlen(e->pattern) - 1] == '*');
    char err[128] = "";
    struct pattern *p = pattern_compile(g->pattern, g->pattern_len, err, sizeof(err));
    cr_assert_not_null(p, "%s: '%s' does not compile: %s", s->c->name, g->pattern, err);
    cr_assert_eq(g->nsamples, g->keys, "%s: every key is sampled", s->c->name);
    for (size_t i = 0; i < g->nsamples; i++)
        cr_assert(pattern_match(p, g->samples[i], g->sample_lens[i], NULL),
                  "%s: '%s' does not match its key '%s'", s->c->name, g->pattern, g->samples[i]);
    pattern_destroy(&p);
    s->n++;
    s->total += g->keys;
}

static void run_case(const struct group_case *c)
{
    struct patterns_options o = {
        .fold_over = c->fold_over, .max_nodes = c->max_nodes, .samples = MAX_KEYS};
    struct patterns *p = patterns_create(&o);
    cr_assert_not_null(p);
    size_t nkeys = 0, ngroups = 0;
    for (; nkeys < MAX_KEYS && c->keys[nkeys] != NULL; nkeys++)
        cr_assert_eq(patterns_add(p, c->keys[nkeys], strlen(c->keys[nkeys])), 0);
    while (ngroups < MAX_GROUPS && c->groups[ngroups].pattern != NULL)
        ngroups++;
    struct seen s = {.c = c};
    cr_assert_eq(patterns_each(p, check_group, &s), ngroups, "%s: groups", c->name);
    cr_assert_eq(s.n, ngroups, "%s", c->name);
    cr_assert_eq(s.total, nkeys, "%s: every key in one group", c->name);
    cr_assert_eq(patterns_keys(p), nkeys);
    patterns_destroy(&p);
    cr_assert_null(p);
}

Test(patterns, table)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i]);
}

/* Usernames past fold_over fold; the node count stays bounded. */
Test(patterns, folding_bounds_nodes)
{
    struct patterns *p = patterns_create(&(struct patterns_options){.fold_over = 16});
    char key[64];
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(key, sizeof(key), "user:name%c%c%c:profile", 'a' + i % 26,
                         'a' + i / 26 % 26, 'a' + i / 676 % 26);
        cr_assert_eq(patterns_add(p, key, (size_t)n), 0);
    }
    cr_assert_leq(patterns_nodes(p), 20, "nodes: %zu", patterns_nodes(p));
    cr_assert_eq(patterns_keys(p), 5000);
    cr_assert_eq(patterns_overflowed(p), 0);
    patterns_destroy(&p);
}

/* Past max_nodes keys go to overflow groups, counted, none lost. */
Test(patterns, node_cap_counts_overflow)
{
    struct patterns *p = patterns_create(&(struct patterns_options){.max_nodes = 10});
    char key[64];
    for (int i = 0; i < 100; i++) {
        int n = snprintf(key, sizeof(key), "k%d:v", i);
        cr_assert_eq(patterns_add(p, key, (size_t)n), 0);
    }
    cr_assert_leq(patterns_nodes(p), 10);
    cr_assert_eq(patterns_overflowed(p), 95, "overflowed %llu",
                 (unsigned long long)patterns_overflowed(p));
    patterns_destroy(&p);
}

struct sampled {
    size_t groups, nsamples;
};

static void count_samples(void *arg, const struct patterns_group *g)
{
    struct sampled *s = arg;
    s->groups++;
    s->nsamples = g->nsamples;
    cr_assert_eq(g->keys, 1000);
    for (size_t i = 0; i < g->nsamples; i++)
        cr_assert(strncmp(g->samples[i], "s:", 2) == 0 && g->sample_lens[i] > 2);
}

/* A group keeps at most samples keys, and a reservoir spreads them. */
Test(patterns, reservoir_is_bounded)
{
    struct patterns *p = patterns_create(&(struct patterns_options){.samples = 5, .seed = 7});
    char key[32];
    for (int i = 0; i < 1000; i++)
        patterns_add(p, key, (size_t)snprintf(key, sizeof(key), "s:%d", i));
    struct sampled s = {0};
    cr_assert_eq(patterns_each(p, count_samples, &s), 1);
    cr_assert_eq(s.nsamples, 5);
    patterns_destroy(&p);
}

/* Long keys are bounded by PATTERNS_TEXT_MAX: they overflow, never overrun. */
Test(patterns, long_keys_overflow)
{
    struct patterns *p = patterns_create(NULL);
    char key[4 * PATTERNS_TEXT_MAX];
    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = i % 2 ? ':' : '*';
    cr_assert_eq(patterns_add(p, key, sizeof(key)), 0);
    cr_assert_eq(patterns_overflowed(p), 1);
    patterns_destroy(&p);
}

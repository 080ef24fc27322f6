/* tests/unit/invalidate.c - invalidation rules (policy/invalidate.c): firing,
 * stamps, the invalidation property on random keys, tracking sources, and
 * invalidation rule errors.
 */
#include "tests/unit/policy_util.h"

#include "policy/pattern.h"

TestSuite(invalidate, .init = policy_test_setup, .fini = policy_test_teardown);

static const struct ispec basic_rules[] = {
    {"model-embeddings", "model:{m}", NULL, "embeddings:{m}:* meta:{m}"},
    {"deletes", "doc:{id}", "del UNLINK", "page:{id}"},
    {"groups", "s:{x}", "xgroup", "sg:{x}"},
    {"flushes", "flush:*", "write", "cache:*"},
};

Test(invalidate, invalidation_fires_on_matching_writes)
{
    struct policy *p = inval_policy(basic_rules, LEN(basic_rules), NULL);
    struct entry ea1 = stamp(p, "embeddings:a:1"), ea2 = stamp(p, "embeddings:a:2"),
                 eb1 = stamp(p, "embeddings:b:1"), ma = stamp(p, "meta:a"), mb = stamp(p, "meta:b"),
                 p7 = stamp(p, "page:7"), p8 = stamp(p, "page:8"), sg = stamp(p, "sg:1"),
                 cz = stamp(p, "cache:zz"), other = stamp(p, "other");

    cr_expect(ea1.n == 2 && ma.n == 2 && p7.n == 2 && cz.n == 2 && other.n == 0);
    cr_expect_eq(write_key(p, "model:a", "set"), 1);
    cr_expect(!current(p, &ea1) && !current(p, &ea2) && !current(p, &ma));
    cr_expect(current(p, &eb1) && current(p, &mb) && current(p, &other));
    ea1 = stamp(p, "embeddings:a:1");
    cr_expect(current(p, &ea1), "stamped again after the write: current");
    cr_expect_eq(write_key(p, "doc:7", "set"), 0, "filtered out");
    cr_expect(current(p, &p7));
    cr_expect_eq(write_key(p, "doc:7", "del"), 1);
    cr_expect(!current(p, &p7) && current(p, &p8));
    cr_expect_eq(write_key(p, "doc:8", NULL), 1, "tracking fires every rule");
    cr_expect(!current(p, &p8));
    cr_expect_eq(write_key(p, "doc:9", "unlink"), 1, "names are matched case-insensitively");
    cr_expect_eq(write_key(p, "s:1", "xgroup|create"), 1, "by container");
    cr_expect(!current(p, &sg));
    cr_expect_eq(write_key(p, "flush:now", "hset"), 1, "class write: every write");
    cr_expect(!current(p, &cz));
    cr_expect_eq(write_key(p, "nothing", "set"), 0);
    cr_expect_eq(stats_of(p, POLICY_KIND_INVALIDATE, "deletes")->invalidations, 3);
    cr_expect_eq(stats_of(p, POLICY_KIND_INVALIDATE, "model-embeddings")->invalidations, 1);
    policy_destroy(&p);
}

Test(invalidate, every_matching_rule_fires_and_too_many_stamps)
{
    static const struct ispec rules[] = {
        {"a", "k:{x}", NULL, "d:{x}"},
        {"b", "k:*", NULL, "d:*"},
        {"c", "*:{y}", NULL, "d:{y} e:{y}"},
        {"d", "k*", NULL, "d*"},
    };
    struct policy *p = inval_policy(rules, LEN(rules), NULL);
    struct policy_stamp s[POLICY_STAMPS_MAX];

    cr_expect_eq(write_key(p, "k:1", "set"), 4);
    cr_expect_eq(policy_stamp(p, "d:1", 3, s, LEN(s)), 8);
    cr_expect_eq(policy_stamp(p, "d:1", 3, s, 3), 8, "the count, whatever fits");
    cr_expect_eq(policy_stamp(p, "e:1", 3, s, LEN(s)), 2);
    policy_destroy(&p);

    static const struct ispec wide[] = {
        {"a", "k", NULL, "x:*"}, {"b", "k", NULL, "x:*"}, {"c", "k", NULL, "x:*"},
        {"d", "k", NULL, "x:*"}, {"e", "k", NULL, "x:*"},
    };
    p = inval_policy(wide, LEN(wide), NULL);
    cr_expect_eq(policy_stamp(p, "x:1", 3, s, LEN(s)), 10, "more than POLICY_STAMPS_MAX");
    policy_destroy(&p);
}

Test(invalidate, a_delimiter_in_a_value_invalidates_the_whole_rule)
{
    static const struct ispec rules[] = {{"r", "model:{m}", NULL, "e:{m}:*"}};
    struct policy *p = inval_policy(rules, LEN(rules), NULL);
    struct entry ab = stamp(p, "e:a:b:1"), zz = stamp(p, "e:zz:1");

    write_key(p, "model:a:b", "set");
    cr_expect_not(current(p, &ab), "e:a:b:1 matches e:a:b:*");
    cr_expect_not(current(p, &zz), "safe over-invalidation");
    struct entry c = stamp(p, "e:c:1"), d = stamp(p, "e:d:1");
    write_key(p, "model:c", "set");
    cr_expect(!current(p, &c) && current(p, &d));
    policy_destroy(&p);
}

/* ---- the invalidation property --------------------------------------------- */

static const struct ispec prop_rules[] = {
    {"r1", "m:{a}", NULL, "e:{a}:*"},           {"r2", "t:{x}/{y}", NULL, "d/{y}/{x}"},
    {"r3", "u:{id}", NULL, "p:{id} q:{id}.x*"}, {"r4", "*:{k}", NULL, "w:{k}-*"},
    {"r5", "v{a}.{b}", NULL, "z{b}.{a}.*"},
};

static unsigned rnd(unsigned *seed, unsigned n)
{
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 8) % n;
}

static size_t rnd_bytes(unsigned *seed, const char *alphabet, size_t least, size_t most, char *out)
{
    size_t n = least + rnd(seed, (unsigned)(most - least + 1)), k = strlen(alphabet);

    for (size_t i = 0; i < n; i++)
        out[i] = alphabet[rnd(seed, (unsigned)k)];
    return n;
}

/* Renders a pattern of literals, '{name}' and '*' into out (NUL-terminated):
 * a capture takes its value from caps (bindings in src) half of the time when
 * caps has it, else random bytes; '*' random bytes. Returns the length. */
static size_t render(const char *text, const struct pattern_capture *caps, const char *src,
                     const char *alphabet, unsigned *seed, char *out)
{
    size_t at = 0;

    for (const char *t = text; *t != '\0'; t++) {
        if (*t == '*') {
            at += rnd_bytes(seed, alphabet, 0, 3, out + at);
        } else if (*t == '{') {
            const char *end = strchr(t, '}');
            size_t c = 0;
            while (caps != NULL && c < PATTERN_MAX_CAPTURES && caps[c].name != NULL &&
                   !(caps[c].name_len == (size_t)(end - t - 1) &&
                     memcmp(caps[c].name, t + 1, caps[c].name_len) == 0))
                c++;
            if (caps != NULL && c < PATTERN_MAX_CAPTURES && caps[c].name != NULL && rnd(seed, 2)) {
                memcpy(out + at, src + caps[c].off, caps[c].len);
                at += caps[c].len;
            } else {
                at += rnd_bytes(seed, alphabet, 1, 3, out + at);
            }
            t = end;
        } else {
            out[at++] = *t;
        }
    }
    out[at] = '\0';
    return at;
}

struct prop_world {
    struct pattern *when[LEN(prop_rules)];
    struct pattern *drop[LEN(prop_rules)][2];
    const char *drop_text[LEN(prop_rules)][2];
};

static void world_init(struct prop_world *w)
{
    char err[128];

    memset(w, 0, sizeof(*w));
    for (size_t r = 0; r < LEN(prop_rules); r++) {
        char buf[64];
        w->when[r] =
            pattern_compile(prop_rules[r].when, strlen(prop_rules[r].when), err, sizeof(err));
        snprintf(buf, sizeof(buf), "%s", prop_rules[r].drops);
        char *sp = strchr(buf, ' ');
        size_t n0 = sp ? (size_t)(sp - buf) : strlen(buf);
        w->drop_text[r][0] = prop_rules[r].drops;
        w->drop[r][0] = pattern_compile(prop_rules[r].drops, n0, err, sizeof(err));
        if (sp != NULL) {
            w->drop_text[r][1] = strchr(prop_rules[r].drops, ' ') + 1;
            w->drop[r][1] =
                pattern_compile(w->drop_text[r][1], strlen(w->drop_text[r][1]), err, sizeof(err));
        }
    }
}

static void world_deinit(struct prop_world *w)
{
    for (size_t r = 0; r < LEN(prop_rules); r++) {
        pattern_destroy(&w->when[r]);
        pattern_destroy(&w->drop[r][0]);
        pattern_destroy(&w->drop[r][1]);
    }
}

/* Whether key matches the expansion of some drop with the captures of a
 * `when` that matches s: the entries a write of s must invalidate. */
static bool must_drop(const struct prop_world *w, const char *s, size_t slen, const char *key,
                      size_t klen)
{
    for (size_t r = 0; r < LEN(prop_rules); r++) {
        struct pattern_capture caps[PATTERN_MAX_CAPTURES];
        if (!pattern_match(w->when[r], s, slen, caps))
            continue;
        for (size_t d = 0; d < 2 && w->drop[r][d] != NULL; d++) {
            char exp[256], err[128];
            int n = pattern_expand(w->drop[r][d], caps, s, exp, sizeof(exp));
            cr_assert_gt(n, 0);
            struct pattern *e = pattern_compile(exp, (size_t)n, err, sizeof(err));
            cr_assert_not_null(e, "%s: %s", exp, err);
            bool hit = pattern_match(e, key, klen, NULL);
            pattern_destroy(&e);
            if (hit)
                return true;
        }
    }
    return false;
}

/* Writes random keys s and checks every entry stamped before: stale when it
 * matches an expansion; returns how many of the others stayed current. */
static void run_property(const char *alphabet, unsigned seed, int rounds, size_t *kept,
                         size_t *others)
{
    struct policy *p = inval_policy(prop_rules, LEN(prop_rules), NULL);
    struct prop_world w;

    world_init(&w);
    *kept = *others = 0;
    for (int round = 0; round < rounds; round++) {
        char s[64], keys_[48][64];
        struct entry e[48];
        size_t r = rnd(&seed, LEN(prop_rules)), slen, nk = 0;
        slen = render(prop_rules[r].when, NULL, NULL, alphabet, &seed, s);
        for (size_t j = 0; j < LEN(prop_rules); j++) {
            struct pattern_capture caps[PATTERN_MAX_CAPTURES];
            bool m = pattern_match(w.when[j], s, slen, caps);
            for (size_t d = 0; d < 2 && w.drop[j][d] != NULL; d++) {
                char text[64];
                snprintf(text, sizeof(text), "%.*s", (int)strcspn(w.drop_text[j][d], " "),
                         w.drop_text[j][d]);
                for (int k = 0; k < 4; k++, nk++)
                    render(text, m ? caps : NULL, s, alphabet, &seed, keys_[nk]);
            }
        }
        for (size_t k = 0; k < nk; k++)
            e[k] = stamp(p, keys_[k]);
        policy_on_write(p, s, slen, NULL, 0);
        for (size_t k = 0; k < nk; k++) {
            size_t klen = strlen(keys_[k]);
            if (must_drop(&w, s, slen, keys_[k], klen)) {
                cr_assert_not(current(p, &e[k]), "write %s left %s current", s, keys_[k]);
            } else {
                (*others)++;
                *kept += current(p, &e[k]);
            }
        }
    }
    world_deinit(&w);
    policy_destroy(&p);
}

Test(invalidate, property_every_expanded_entry_goes_stale)
{
    size_t kept, others;

    /* Values full of delimiters and glob bytes. */
    run_property("ab:/.-x*?[\\", 7, 3000, &kept, &others);
    cr_expect_gt(others, 0);
    run_property("ab:.", 99, 3000, &kept, &others);
}

Test(invalidate, property_other_entries_stay_current)
{
    size_t kept, others;

    run_property("abcdefgh", 5, 3000, &kept, &others);
    cr_expect_gt(others, 10000);
    cr_expect_geq(kept * 100, others * 99, "kept %zu of %zu", kept, others);
}

/* ---- sources and errors ----------------------------------------------------- */

/* 5,000 rules on "w<i>:{id}": no more than POLICY_SOURCES_MAX sources, as long
 * as that allows ("w<i>" cut to "w<d><d>"...), and every rule's prefix is
 * covered by one of them. */
Test(invalidate, sources_are_bounded_and_cover_every_rule)
{
    enum { N = 5000 };
    static struct ispec rules[N];
    static char names[N][16], whens[N][24];
    for (size_t i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "r%zu", i);
        snprintf(whens[i], sizeof(whens[i]), "w%zu:{id}", i);
        rules[i] = (struct ispec){names[i], whens[i], NULL, "x:{id}"};
    }
    struct policy *p = inval_policy(rules, N, NULL);
    size_t n = policy_source_count(p), len, longest = 0;
    cr_assert_leq(n, POLICY_SOURCES_MAX);
    cr_assert_gt(n, 100, "cut further than needed: %zu sources", n);
    for (size_t i = 0; i < N; i++) {
        bool covered = false;
        for (size_t j = 0; j < n && !covered; j++) {
            const char *s = policy_source(p, j, &len);
            covered = len <= strlen(whens[i]) && memcmp(s, whens[i], len) == 0;
        }
        cr_assert(covered, "%s is not covered", whens[i]);
    }
    for (size_t j = 0; j < n; j++) {
        policy_source(p, j, &len);
        longest = len > longest ? len : longest;
    }
    cr_expect_eq(longest, 4, "the longest cut that fits: \"w123\"");
    policy_destroy(&p);
}

Test(invalidate, sources_are_deduplicated_prefixes)
{
    static const struct ispec rules[] = {
        {"a", "user:{id}", NULL, "x:{id}"},
        {"b", "user:{id}:x", NULL, "y:{id}"},
        {"c", "us*", NULL, "z"},
        {"d", "model:{m}", NULL, "w:{m}"},
        {"e", "mod", NULL, "v"},
        {"f", "abc", NULL, "u"},
        {"g", "mod", NULL, "t"},
    };
    static const struct ispec any[] = {{"a", "user:{id}", NULL, "x:{id}"}, {"b", "*x", NULL, "y"}};
    static const char *const want[] = {"abc", "mod", "us"};
    struct policy *p = inval_policy(rules, LEN(rules), NULL);
    size_t len;

    cr_assert_eq(policy_source_count(p), LEN(want));
    for (size_t i = 0; i < LEN(want); i++) {
        const char *s = policy_source(p, i, &len);
        cr_expect(len == strlen(want[i]) && memcmp(s, want[i], len) == 0, "%zu: %.*s", i, (int)len,
                  s);
    }
    policy_destroy(&p);
    p = inval_policy(any, LEN(any), NULL);
    cr_assert_eq(policy_source_count(p), 1);
    policy_source(p, 0, &len);
    cr_expect_eq(len, 0, "\"\" stands for every key");
    policy_destroy(&p);
}

Test(invalidate, rule_errors)
{
    static const char *const no_cap[] = {"e:{x}:*"}, *const loose[] = {"e*:{m}"},
                             *const cls[] = {"[ab]{m}"}, *const ok[] = {"e:{m}:*", "f:{m}"},
                             *const read[] = {"read"};
    static const struct {
        struct policy_invalidate_rule rule;
        const char *err;
    } icases[] = {
        {{"i", NULL, NULL, 0, ok, 2}, "when: required"},
        {{"i", "model:{m}", NULL, 0, NULL, 0}, "drop: required"},
        {{"i", "model:{m}", NULL, 0, no_cap, 1},
         "drop: 'e:{x}:*' uses capture 'x' that when lacks"},
        {{"i", "model:{m}", NULL, 0, loose, 1},
         "drop: 'e*:{m}' has more than literal bytes and captures before its last capture"},
        {{"i", "model:{m}", NULL, 0, cls, 1},
         "drop: '[ab]{m}' has more than literal bytes and captures before its last capture"},
        {{"i", "model:{m}", read, 1, ok, 2}, "commands: class 'read' does not apply here"},
        {{"i", "model:{m", NULL, 0, ok, 2}, "when: unterminated '{' at offset 6"},
    };
    char err[256];

    for (size_t i = 0; i < LEN(icases); i++) {
        struct policy *p = policy_create();
        err[0] = '\0';
        cr_expect_eq(policy_add_invalidate(p, &icases[i].rule, err, sizeof(err)), -1);
        cr_expect_str_eq(err, icases[i].err, "invalidate case %zu", i);
        policy_destroy(&p);
    }
}

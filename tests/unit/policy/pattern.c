/* tests/unit/pattern.c - Redis globs with captures, expansion, and the set index.
 *
 * The glob table's printable cases were checked with KEYS on redis-server
 * 7.0.15 (SET key, KEYS pattern); the binary and capture cases are ours.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/pattern.h"
#include "tests/unit/leaks.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

TestSuite(pattern, .fini = check_leaks);

static struct pattern *compile_ok(const char *text, size_t len)
{
    char err[128] = "";
    struct pattern *p = pattern_compile(text, len, err, sizeof(err));

    cr_assert_not_null(p, "compile '%s': %s", text, err);
    return p;
}

struct glob_case {
    const char *pattern;
    const char *key;
    bool match;
};

/* Checked against redis-server 7.0.15. */
static const struct glob_case redis_cases[] = {
    {"*", "", true},
    {"", "", true},
    {"", "a", false},
    {"a", "a", true},
    {"a", "b", false},
    {"a", "", false},
    {"a", "aa", false},
    {"?", "a", true},
    {"?", "", false},
    {"??", "ab", true},
    {"??", "a", false},
    {"a*", "a", true},
    {"a*", "abc", true},
    {"a*", "b", false},
    {"*a", "ba", true},
    {"*a", "ab", false},
    {"a*b*c", "axxbyyc", true},
    {"a*b*c", "axxbyy", false},
    {"a*b*c", "abc", true},
    {"a*b*c", "acb", false},
    {"h?llo", "hello", true},
    {"h?llo", "hllo", false},
    {"h[ae]llo", "hello", true},
    {"h[ae]llo", "hallo", true},
    {"h[ae]llo", "hillo", false},
    {"h[^e]llo", "hallo", true},
    {"h[^e]llo", "hello", false},
    {"h[a-b]llo", "hbllo", true},
    {"h[a-b]llo", "hcllo", false},
    {"h[b-a]llo", "hallo", true},
    {"h\\*llo", "h*llo", true},
    {"h\\*llo", "hello", false},
    {"[\\]]", "]", true},
    {"[]", "]", false},
    {"[]]", "]]", false},
    {"[^]", "a", true},
    {"[^]", "", false},
    {"[a-]]", "^", true},
    {"[a-]]", "b", false},
    {"[a-]]", "]", true},
    {"[a-]]", "a", true},
    {"\\", "\\", true},
    {"\\a", "a", true},
    {"a**b", "ab", true},
    {"a**b", "axb", true},
    {"*?", "", false},
    {"*?", "a", true},
    {"a*?", "a", false},
    {"*[0-9]", "abc5", true},
    {"*[0-9]", "abc", false},
    {"[!a]", "b", false},
    {"[!a]", "!", true},
    {"[\\^a]", "^", true},
    {"[a\\-z]", "-", true},
    {"[a\\-z]", "b", false},
    {"*a*a*b", "aaab", true},
    {"*a*a*b", "aab", true},
    {"*a*a*b", "ab", false},
    {"user:*:p", "user:1:2:p", true},
    {"[a-c-e]", "-", true},
    {"[a-c-e]", "d", false},
    {"[a-c-e]", "e", true},
    {"*\\", "ab\\", true},
};

Test(pattern, redis_globs)
{
    for (size_t i = 0; i < LEN(redis_cases); i++) {
        const struct glob_case *c = &redis_cases[i];
        struct pattern *p = compile_ok(c->pattern, strlen(c->pattern));
        cr_expect_eq(pattern_match(p, c->key, strlen(c->key), NULL), c->match,
                     "'%s' against '%s': want %d", c->pattern, c->key, c->match);
        pattern_destroy(&p);
        cr_assert_null(p);
    }
}

struct bin_case {
    const char *pattern;
    size_t plen;
    const char *key;
    size_t klen;
    bool match;
};

#define BIN(p, k, m)                                                                               \
    {                                                                                              \
        p, sizeof(p) - 1, k, sizeof(k) - 1, m                                                      \
    }

static const struct bin_case bin_cases[] = {
    BIN("a\0*", "a\0b", true),        BIN("a\0*", "ab", false),
    BIN("a?b", "a\0b", true),         BIN("[\0]", "\0", true),
    BIN("[^\0]", "\0", false),        BIN("a*", "a\0\xff", true),
    BIN("[\x80-\xff]", "\x90", true), BIN("[\x80-\xff]", "a", false),
    BIN("*\xff", "\0\0\xff", true),   BIN("\\\0", "\0", true),
    BIN("\\{x\\}", "{x}", true),      BIN("[{}]", "}", true),
};

Test(pattern, binary_and_escapes)
{
    for (size_t i = 0; i < LEN(bin_cases); i++) {
        const struct bin_case *c = &bin_cases[i];
        struct pattern *p = compile_ok(c->pattern, c->plen);
        cr_expect_eq(pattern_match(p, c->key, c->klen, NULL), c->match, "binary case %zu", i);
        pattern_destroy(&p);
    }
}

struct slow_case {
    const char *pattern;
    bool match_b; /* against 9,999 'a' then 'b'; none matches 10,000 'a' */
};

static const struct slow_case slow_cases[] = {
    {"a*a*a*a*a*a*a*a*b", true},     {"*a*a*a*a*a*a*a*a*a*a*b", true},
    {"*?*?*?*?*?*b", true},          {"*{x}b", true},
    {"a*[ab]*[ab]*[ab]*c", false},   {"*a{y}:z", false},
    {"*a*a*a*a*a*a*a*a*a*c", false},
};

Test(pattern, pathological_patterns_finish)
{
    size_t n = 10000;
    char *key = malloc(n);

    cr_assert_not_null(key);
    for (size_t i = 0; i < LEN(slow_cases); i++) {
        struct pattern *p = compile_ok(slow_cases[i].pattern, strlen(slow_cases[i].pattern));
        memset(key, 'a', n);
        cr_expect_not(pattern_match(p, key, n, NULL), "%s", slow_cases[i].pattern);
        key[n - 1] = 'b';
        cr_expect_eq(pattern_match(p, key, n, NULL), slow_cases[i].match_b, "%s",
                     slow_cases[i].pattern);
        pattern_destroy(&p);
    }
    free(key);
}

struct cap_case {
    const char *pattern;
    const char *key;
    bool match;
    const char *want; /* "name=value name=value" in capture order */
};

static const struct cap_case cap_cases[] = {
    {"user:{id}:profile", "user:42:profile", true, "id=42"},
    {"user:{id}:profile", "user::profile", false, ""},
    {"user:{id}:profile", "user:4:2:profile", false, ""},
    {"user:{id}", "user:4:2", true, "id=4:2"},
    {"user:{id}", "user:", false, ""},
    {"t{tenant}/{kind}:{id}", "tacme/doc:7", true, "tenant=acme kind=doc id=7"},
    {"*:{m}:*", "a:b:c:d", true, "m=b"},
    {"*/{m}", "x/y/z", true, "m=y/z"},
    {"[ab]{x}\\*", "bq*", true, "x=q"},
    {"{a}.{b}", "1.2.3", true, "a=1 b=2.3"},
};

static void caps_text(const struct pattern_capture *caps, const char *key, char *out, size_t len)
{
    size_t at = 0;

    out[0] = '\0';
    for (size_t c = 0; c < PATTERN_MAX_CAPTURES && caps[c].name != NULL; c++)
        at +=
            (size_t)snprintf(out + at, len - at, "%s%.*s=%.*s", c ? " " : "", (int)caps[c].name_len,
                             caps[c].name, (int)caps[c].len, key + caps[c].off);
}

Test(pattern, captures)
{
    for (size_t i = 0; i < LEN(cap_cases); i++) {
        const struct cap_case *c = &cap_cases[i];
        struct pattern *p = compile_ok(c->pattern, strlen(c->pattern));
        struct pattern_capture caps[PATTERN_MAX_CAPTURES];
        char got[256];

        memset(caps, 0x5a, sizeof(caps));
        cr_assert_eq(pattern_match(p, c->key, strlen(c->key), caps), c->match, "%s on %s",
                     c->pattern, c->key);
        if (c->match) {
            caps_text(caps, c->key, got, sizeof(got));
            cr_expect_str_eq(got, c->want, "%s on %s", c->pattern, c->key);
        } else {
            cr_expect_eq(caps[0].off, (size_t)0x5a5a5a5a5a5a5a5aull, "caps touched on no match");
        }
        pattern_destroy(&p);
    }
}

struct err_case {
    const char *pattern;
    const char *err;
};

static const struct err_case err_cases[] = {
    {"[abc", "unterminated '[' at offset 0"},
    {"x[a-]y", "unterminated '[' at offset 1"},
    {"[\\", "unterminated '[' at offset 0"},
    {"a{id", "unterminated '{' at offset 1"},
    {"a{}b", "empty capture name at offset 1"},
    {"a{i d}", "bad byte in capture name at offset 1"},
    {"a}b", "unbalanced '}' at offset 1"},
    {"{a}:{a}", "duplicate capture name at offset 4"},
    {"{a}:{b}:{c}:{d}:{e}:{f}:{g}:{h}:{i}", "too many captures at offset 32"},
    {"{a}*", "capture 'a' must be followed by a literal byte or end the pattern"},
    {"{a}{b}", "capture 'a' must be followed by a literal byte or end the pattern"},
    {"{aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}", "capture name too long at offset 0"},
};

Test(pattern, compile_errors)
{
    for (size_t i = 0; i < LEN(err_cases); i++) {
        char err[128] = "";
        struct pattern *p =
            pattern_compile(err_cases[i].pattern, strlen(err_cases[i].pattern), err, sizeof(err));
        cr_expect_null(p, "%s compiled", err_cases[i].pattern);
        cr_expect_str_eq(err, err_cases[i].err);
        pattern_destroy(&p);
    }
}

Test(pattern, literal_prefix)
{
    static const struct {
        const char *pattern;
        const char *prefix;
    } cases[] = {{"user:{id}:*", "user:"},
                 {"session:*", "session:"},
                 {"*x", ""},
                 {"a\\*b?", "a*b"},
                 {"abc", "abc"},
                 {"[a]bc", ""}};

    for (size_t i = 0; i < LEN(cases); i++) {
        struct pattern *p = compile_ok(cases[i].pattern, strlen(cases[i].pattern));
        const char *prefix;
        size_t n = pattern_literal_prefix(p, &prefix);
        cr_expect_eq(n, strlen(cases[i].prefix), "%s", cases[i].pattern);
        cr_expect_eq(memcmp(prefix, cases[i].prefix, n), 0, "%s", cases[i].pattern);
        pattern_destroy(&p);
    }
}

struct expand_case {
    const char *source;
    const char *key;
    const char *tmpl;
    int ret;
    const char *out;
};

static const struct expand_case expand_cases[] = {
    {"model:{m}", "model:abc", "embeddings:{m}:*", 16, "embeddings:abc:*"},
    {"model:{m}", "model:a*[b]?\\{}", "e:{m}", 18, "e:a\\*\\[b\\]\\?\\\\\\{\\}"},
    {"{t}:{id}", "acme:7", "x:{id}:{t}:\\{lit\\}:[{}]", 21, "x:7:acme:\\{lit\\}:[{}]"},
    {"{t}:{id}", "acme:7", "x:{nope}", PATTERN_ENOCAP, NULL},
    {"{t}:{id}", "acme:7", "a-very-long-template:{t}", PATTERN_ENOSPACE, NULL},
};

Test(pattern, expand)
{
    for (size_t i = 0; i < LEN(expand_cases); i++) {
        const struct expand_case *c = &expand_cases[i];
        struct pattern *src = compile_ok(c->source, strlen(c->source));
        struct pattern *tmpl = compile_ok(c->tmpl, strlen(c->tmpl));
        struct pattern_capture caps[PATTERN_MAX_CAPTURES];
        char out[24];

        cr_assert(pattern_match(src, c->key, strlen(c->key), caps));
        int ret = pattern_expand(tmpl, caps, c->key, out, sizeof(out));
        cr_expect_eq(ret, c->ret, "case %zu: %d %s", i, ret, out);
        if (c->out != NULL) {
            struct pattern *back = compile_ok(out, strlen(out));
            cr_expect_str_eq(out, c->out);
            pattern_destroy(&back);
        }
        pattern_destroy(&src);
        pattern_destroy(&tmpl);
    }
}

Test(pattern, expanded_pattern_matches_captured_bytes_literally)
{
    static const char key[] = "model:a*[b]?\\x";
    struct pattern *src = compile_ok("model:{m}", 9);
    struct pattern *tmpl = compile_ok("e:{m}:*", 7);
    struct pattern_capture caps[PATTERN_MAX_CAPTURES];
    struct pattern *out_p;
    char out[64];
    int n;

    cr_assert(pattern_match(src, key, strlen(key), caps));
    n = pattern_expand(tmpl, caps, key, out, sizeof(out));
    cr_assert_gt(n, 0);
    out_p = compile_ok(out, (size_t)n);
    cr_expect(pattern_match(out_p, "e:a*[b]?\\x:1", 12, NULL));
    cr_expect_not(pattern_match(out_p, "e:aZ[b]?\\x:1", 12, NULL));
    cr_expect_not(pattern_match(out_p, "e:a*b?\\x:1", 10, NULL));
    pattern_destroy(&out_p);
    pattern_destroy(&src);
    pattern_destroy(&tmpl);
}

/* 1,000 rules over overlapping prefixes, some with an empty prefix. */
static void make_rule(unsigned i, char *out, size_t len)
{
    static const char *const forms[] = {"t%u:{id}:*", "t%u:*", "t%u*",      "*:%u",
                                        "t%u:x{id}",  "t%u",   "t%u:[ab]*", "?%u*"};
    snprintf(out, len, forms[i % LEN(forms)], (i * 7919u) % 97u);
}

enum { RULES = 1000 };

/* The RULES rules of make_rule in a set (not built), each valued by its
 * index in ids; pats receives them (freed by rules_free). */
static struct pattern_set *rules_set(struct pattern **pats, size_t *ids)
{
    struct pattern_set *set = pattern_set_create();
    cr_assert_not_null(set);
    for (size_t i = 0; i < RULES; i++) {
        char text[64];
        make_rule((unsigned)i, text, sizeof(text));
        pats[i] = compile_ok(text, strlen(text));
        ids[i] = i;
        cr_assert_eq(pattern_set_add(set, pats[i], &ids[i]), 0);
    }
    return set;
}

static void rules_free(struct pattern_set **set, struct pattern **pats)
{
    pattern_set_destroy(set);
    for (size_t i = 0; i < RULES; i++)
        pattern_destroy(&pats[i]);
}

/* A pseudo-random key near the rules' prefixes, from *seed; returns its length. */
static size_t random_key(unsigned *seed, char *key, size_t len)
{
    *seed = *seed * 1103515245u + 12345u;
    int n = snprintf(key, len, "%s%u%s%s", (*seed >> 8) % 5 ? "t" : "q", (*seed >> 12) % 110,
                     (*seed >> 20) % 3 ? ":" : "",
                     (*seed >> 24) % 4 == 0 ? "" : ((*seed >> 26) % 2 ? "a1" : "x2"));
    return (size_t)n;
}

static size_t linear_first(struct pattern **pats, size_t n, const char *key, size_t klen)
{
    for (size_t i = 0; i < n; i++)
        if (pattern_match(pats[i], key, klen, NULL))
            return i;
    return n;
}

Test(pattern, set_agrees_with_linear_scan)
{
    enum { N = RULES, KEYS = 20000 };
    static size_t ids[N];
    static struct pattern *pats[N];
    struct pattern_set *set = rules_set(pats, ids);
    unsigned seed = 12345;

    cr_assert_null(pattern_set_first(set, "t1", 2, NULL), "unbuilt set");
    cr_assert_eq(pattern_set_build(set), 0);
    cr_assert_eq(pattern_set_add(set, pats[0], NULL), -1);
    for (int k = 0; k < KEYS; k++) {
        char key[32];
        struct pattern_capture caps[PATTERN_MAX_CAPTURES];
        size_t n = random_key(&seed, key, sizeof(key));
        size_t want = linear_first(pats, N, key, (size_t)n);
        size_t *got = pattern_set_first(set, key, (size_t)n, caps);
        cr_assert_eq(got ? *got : N, want, "key %s", key);
        if (got != NULL && pattern_capture_count(pats[*got]) > 0)
            cr_expect_eq(memcmp(caps[0].name, "id", caps[0].name_len), 0, "key %s", key);
    }
    rules_free(&set, pats);
}

Test(pattern, set_first_in_insertion_order)
{
    static const char *const rules[] = {"user:{id}:profile", "user:*", "*", "user:1:profile"};
    struct pattern *pats[LEN(rules)];
    struct pattern_set *set = pattern_set_create();
    struct pattern_capture caps[PATTERN_MAX_CAPTURES];
    static int vals[LEN(rules)];

    for (size_t i = 0; i < LEN(rules); i++) {
        pats[i] = compile_ok(rules[i], strlen(rules[i]));
        cr_assert_eq(pattern_set_add(set, pats[i], &vals[i]), 0);
    }
    cr_assert_eq(pattern_set_build(set), 0);
    cr_expect_eq(pattern_set_first(set, "user:1:profile", 14, caps), &vals[0]);
    cr_expect_eq(caps[0].off, 5);
    cr_expect_eq(caps[0].len, 1);
    cr_expect_eq(pattern_set_first(set, "user:1:x", 8, NULL), &vals[1]);
    cr_expect_eq(pattern_set_first(set, "other", 5, NULL), &vals[2]);
    cr_expect_eq(pattern_set_first(set, "", 0, NULL), &vals[2]);
    pattern_set_destroy(&set);
    cr_assert_null(set);
    for (size_t i = 0; i < LEN(rules); i++)
        pattern_destroy(&pats[i]);
}

/* ---- pattern_set_each ------------------------------------------------------ */

struct collect {
    size_t ids[1100];
    struct pattern_capture caps[1100];
    size_t n;
    size_t stop_after; /* 0: never stop */
};

static bool collect_fn(void *arg, void *value, const struct pattern_capture *caps)
{
    struct collect *c = arg;

    c->caps[c->n] = caps[0];
    c->ids[c->n++] = *(size_t *)value;
    return c->n == c->stop_after;
}

Test(pattern, set_each_agrees_with_linear_scan)
{
    enum { N = RULES, KEYS = 5000 };
    static size_t ids[N];
    static struct collect got;
    static struct pattern *pats[N];
    struct pattern_set *set = rules_set(pats, ids);
    unsigned seed = 4242;

    got.n = 0;
    cr_assert_eq(pattern_set_each(set, "t1", 2, collect_fn, &got), 0, "unbuilt set");
    cr_assert_eq(pattern_set_build(set), 0);
    for (int k = 0; k < KEYS; k++) {
        char key[32];
        size_t want = 0;
        size_t n = random_key(&seed, key, sizeof(key));
        got.n = 0;
        got.stop_after = 0;
        cr_assert_eq(pattern_set_each(set, key, (size_t)n, collect_fn, &got), got.n);
        for (size_t i = 0; i < N; i++) {
            struct pattern_capture caps[PATTERN_MAX_CAPTURES];
            if (!pattern_match(pats[i], key, (size_t)n, caps))
                continue;
            cr_assert(want < got.n && got.ids[want] == i, "key %s: match %zu is rule %zu", key,
                      want, i);
            cr_assert(got.caps[want].off == caps[0].off && got.caps[want].len == caps[0].len &&
                          got.caps[want].name == caps[0].name,
                      "key %s rule %zu: captures", key, i);
            want++;
        }
        cr_assert_eq(got.n, want, "key %s", key);
        if (want > 1) {
            got.n = 0;
            got.stop_after = 2;
            cr_assert_eq(pattern_set_each(set, key, (size_t)n, collect_fn, &got), 2, "stops");
        }
    }
    rules_free(&set, pats);
}

/* More distinct prefix lengths than the merge keeps on the stack. */
Test(pattern, set_each_with_many_prefix_groups)
{
    enum { N = 45 };
    static size_t ids[N];
    static struct collect got;
    struct pattern *pats[N];
    struct pattern_set *set = pattern_set_create();
    char key[64];

    memset(key, 'a', sizeof(key));
    for (size_t i = 0; i < N; i++) {
        char text[64];
        size_t len = (i * 17) % N; /* every length once, out of order */
        memset(text, 'a', len);
        strcpy(text + len, i % 3 ? "*" : "{x}");
        pats[i] = compile_ok(text, strlen(text));
        ids[i] = i;
        cr_assert_eq(pattern_set_add(set, pats[i], &ids[i]), 0);
    }
    cr_assert_eq(pattern_set_build(set), 0);
    for (size_t klen = 0; klen <= 50; klen += 5) {
        size_t want = 0;
        got.n = 0;
        got.stop_after = 0;
        pattern_set_each(set, key, klen, collect_fn, &got);
        for (size_t i = 0; i < N; i++)
            if (pattern_match(pats[i], key, klen, NULL))
                cr_assert(want < got.n && got.ids[want++] == i, "klen %zu rule %zu", klen, i);
        cr_assert_eq(got.n, want, "klen %zu", klen);
        got.n = 0;
        got.stop_after = 3;
        if (want >= 3)
            cr_assert_eq(pattern_set_each(set, key, klen, collect_fn, &got), 3);
    }
    pattern_set_destroy(&set);
    for (size_t i = 0; i < N; i++)
        pattern_destroy(&pats[i]);
}

/* ---- capture details and widening ------------------------------------------ */

Test(pattern, capture_names_and_stops)
{
    static const struct {
        const char *pattern;
        const char *names; /* space-separated */
        const char *stops; /* per capture: the stop byte, or '$' for none */
        bool anchored;
    } cases[] = {
        {"user:{id}:profile", "id", ":", true},
        {"e:{m}", "m", "$", true},
        {"{t}/{kind}.{id}", "t kind id", "/.$", true},
        {"e:{m}:*", "m", ":", true},
        {"*:{m}", "m", "$", false},
        {"?{m}", "m", "$", false},
        {"[ab]{m}", "m", "$", false},
        {"a{x}-*b{y}", "x y", "-$", false},
        {"\\*{x}.", "x", ".", true},
        {"no captures*", "", "", true},
    };

    for (size_t i = 0; i < LEN(cases); i++) {
        struct pattern *p = compile_ok(cases[i].pattern, strlen(cases[i].pattern));
        char names[64] = "";
        size_t at = 0;
        for (size_t c = 0; c < pattern_capture_count(p); c++) {
            size_t len;
            const char *name = pattern_capture_name(p, c, &len);
            unsigned char stop = 0;
            bool has = pattern_capture_stop(p, c, &stop);
            at += (size_t)snprintf(names + at, sizeof(names) - at, "%s%.*s", c ? " " : "", (int)len,
                                   name);
            cr_expect_eq(has ? stop : '$', (unsigned char)cases[i].stops[c], "%s capture %zu",
                         cases[i].pattern, c);
        }
        cr_expect_str_eq(names, cases[i].names, "%s", cases[i].pattern);
        cr_expect_eq(pattern_captures_anchored(p), cases[i].anchored, "%s", cases[i].pattern);
        pattern_destroy(&p);
    }
}

Test(pattern, widen)
{
    static const struct {
        const char *pattern, *wide;
    } cases[] = {
        {"e:{m}:*", "e:*:*"},
        {"{a}.{b}", "*.*"},
        {"x\\{y\\}[{}]{z}", "x\\{y\\}[{}]*"},
        {"plain", "plain"},
    };
    char out[64];

    for (size_t i = 0; i < LEN(cases); i++) {
        struct pattern *p = compile_ok(cases[i].pattern, strlen(cases[i].pattern));
        int n = pattern_widen(p, out, sizeof(out));
        cr_expect_eq(n, (int)strlen(cases[i].wide), "%s", cases[i].pattern);
        cr_expect_str_eq(out, cases[i].wide);
        cr_expect_eq(pattern_widen(p, out, 3), PATTERN_ENOSPACE);
        pattern_destroy(&p);
    }
    /* Every key an expansion matches, the widened pattern matches. */
    struct pattern *src = compile_ok("m:{m}", 5), *drop = compile_ok("e:{m}.x", 7);
    struct pattern_capture caps[PATTERN_MAX_CAPTURES];
    cr_assert(pattern_match(src, "m:a.b", 5, caps));
    int n = pattern_expand(drop, caps, "m:a.b", out, sizeof(out));
    struct pattern *exp = compile_ok(out, (size_t)n);
    cr_expect(pattern_match(exp, "e:a.b.x", 7, NULL));
    cr_expect_not(pattern_match(drop, "e:a.b.x", 7, NULL), "the drop binds m = a");
    n = pattern_widen(drop, out, sizeof(out));
    struct pattern *wide = compile_ok(out, (size_t)n);
    cr_expect(pattern_match(wide, "e:a.b.x", 7, NULL));
    pattern_destroy(&src);
    pattern_destroy(&drop);
    pattern_destroy(&exp);
    pattern_destroy(&wide);
}

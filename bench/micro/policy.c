/* bench/micro/policy.c - costs of the rule engine (policy/policy.c). Prints; asserts
 * nothing.
 *
 * (a) policy_check of one request against 10 and 1,000 validation rules.
 * (b) pattern invalidation at 1,000,000 entries "embeddings:<m>:<i>" (1,000
 *     models x 1,000 chunks) under the rule when "model:{m}" drop
 *     "embeddings:{m}:*": stamping at fill time, policy_on_write per firing,
 *     policy_stamps_current per hit; and for contrast what a scan-based design
 *     would spend on the event loop per firing: pattern_match of every key
 *     against the expanded pattern.
 * (c) a reload of a policy of 10,000 and 40,000 rules of each kind, generated
 *     as YAML: parsing it, policy_yaml_load, policy_build (first, and over the
 *     policy it replaces) and policy_take_over, the one step on the loop.
 *
 * usage: policy_bench [ITERATIONS]   (default 1000000)
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yaml.h>

#include "config/policy_yaml.h"
#include "policy/pattern.h"
#include "policy/policy.h"

#define MODELS  1000
#define CHUNKS  1000
#define ENTRIES (MODELS * CHUNKS)

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void die(const char *what, const char *err)
{
    fprintf(stderr, "policy_bench: %s: %s\n", what, err);
    exit(1);
}

/* ---- (a) validation -------------------------------------------------------- */

/* Rule i of n: a few shared rules, then tenant rules that never fit the key,
 * and the rule that decides the key last. */
static void add_rule(struct policy *p, size_t i, size_t n)
{
    static const char *const shared[] = {"session:*", "cart:{id}", "feed:*:items", "*:lock"};
    static const char *const writes[] = {"write"};
    char name[32], keys[64], err[256];
    struct policy_validate_rule r = {name, keys, NULL, 0, POLICY_ALLOW, -1, -1, NULL};

    snprintf(name, sizeof(name), "r%zu", i);
    if (i + 1 == n) {
        snprintf(keys, sizeof(keys), "user:{id}:*");
        r.max_value_size = 1 << 20;
    } else if (i < 4) {
        snprintf(keys, sizeof(keys), "%s", shared[i]);
        r.action = POLICY_READ_ONLY;
    } else {
        snprintf(keys, sizeof(keys), "tenant%zu:{id}:%s", i, i % 2 ? "*" : "meta");
        r.commands = writes;
        r.ncommands = 1;
        r.action = POLICY_DENY;
    }
    if (policy_add_validate(p, &r, err, sizeof(err)) < 0)
        die("add", err);
}

static double bench_check(const struct command_table *t, size_t nrules, const char *line,
                          long iters)
{
    struct policy *p = policy_create();
    struct resp_scanner s;
    struct resp_request req;
    char err[256], reply[POLICY_REPLY_MAX];
    size_t len, rejected = 0;
    int64_t argc;
    const char *why;
    char *buf = resp_inline_encode(line, strlen(line), &len, &argc, &why);
    double t0;

    for (size_t i = 0; i < nrules; i++)
        add_rule(p, i, nrules);
    if (policy_build(p, NULL, err, sizeof(err)) < 0)
        die("build", err);
    resp_scanner_reset(&s);
    if (buf == NULL || resp_scan_request(&s, &RESP_LIMITS_DEFAULT, buf, len, &req) != RESP_OK)
        die("request", line);
    struct request_keys scratch = {0};
    struct request r;
    t0 = now_ns();
    for (long k = 0; k < iters; k++) {
        request_init(&r, t, buf, &req, &scratch);
        rejected += policy_check(p, &r, reply) != 0;
    }
    t0 = (now_ns() - t0) / (double)iters;
    if (rejected != 0)
        fprintf(stderr, "unexpected rejection of %s\n", line);
    request_keys_free(&scratch);
    free(buf);
    policy_destroy(&p);
    return t0;
}

static void bench_validation(long iters)
{
    static const char *const lines[] = {"GET user:12345:profile",
                                        "SET user:12345:profile 0123456789",
                                        "MGET user:1:a user:2:b user:3:c user:4:d"};
    struct command_table *t = command_table_create();

    if (t == NULL || command_table_add_builtin(t) < 0)
        die("keys", "built-in table");
    printf("(a) policy_check, the deciding rule last\n");
    printf("    %-42s %12s %12s %7s\n", "request", "10 rules", "1000 rules", "ratio");
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        double small = bench_check(t, 10, lines[i], iters);
        double large = bench_check(t, 1000, lines[i], iters);
        printf("    %-42s %9.1f ns %9.1f ns %7.2f\n", lines[i], small, large, large / small);
    }
    command_table_destroy(&t);
}

/* ---- (b) invalidation ------------------------------------------------------ */

struct entries {
    char *keys;  /* ENTRIES keys, each NUL-terminated */
    size_t *off; /* of key i in keys */
    uint8_t *len;
    struct policy_stamp (*stamps)[2];
};

static void entries_fill(struct entries *e)
{
    size_t at = 0;

    e->keys = malloc((size_t)ENTRIES * 32);
    e->off = malloc(sizeof(*e->off) * ENTRIES);
    e->len = malloc(ENTRIES);
    e->stamps = malloc(sizeof(*e->stamps) * ENTRIES);
    if (!e->keys || !e->off || !e->len || !e->stamps)
        die("entries", "out of memory");
    for (size_t i = 0; i < ENTRIES; i++) {
        int n = sprintf(e->keys + at, "embeddings:%zu:%zu", i / CHUNKS, i % CHUNKS);
        e->off[i] = at;
        e->len[i] = (uint8_t)n;
        at += (size_t)n + 1;
    }
}

static void entries_free(struct entries *e)
{
    free(e->keys);
    free(e->off);
    free(e->len);
    free(e->stamps);
}

static struct policy *inval_policy(void)
{
    static const char *const drop[] = {"embeddings:{m}:*"};
    struct policy_invalidate_rule r = {"model-embeddings", "model:{m}", NULL, 0, drop, 1};
    struct policy *p = policy_create();
    char err[256];

    if (p == NULL || policy_add_invalidate(p, &r, err, sizeof(err)) < 0 ||
        policy_build(p, NULL, err, sizeof(err)) < 0)
        die("invalidate", err);
    return p;
}

/* Scans every key with the expanded pattern, as a design without stamps
 * would on each firing. Returns ns for the whole scan; *hits the matches. */
static double scan_once(const struct entries *e, const char *model, size_t *hits)
{
    struct pattern *src, *drop, *exp;
    struct pattern_capture caps[PATTERN_MAX_CAPTURES];
    char out[64], err[128];
    double t0 = now_ns();
    int n;

    src = pattern_compile("model:{m}", 9, err, sizeof(err));
    drop = pattern_compile("embeddings:{m}:*", 16, err, sizeof(err));
    if (!src || !drop || !pattern_match(src, model, strlen(model), caps))
        die("scan", err);
    n = pattern_expand(drop, caps, model, out, sizeof(out));
    exp = n > 0 ? pattern_compile(out, (size_t)n, err, sizeof(err)) : NULL;
    if (exp == NULL)
        die("scan", "expand");
    *hits = 0;
    for (size_t i = 0; i < ENTRIES; i++)
        *hits += pattern_match(exp, e->keys + e->off[i], e->len[i], NULL);
    t0 = now_ns() - t0;
    pattern_destroy(&src);
    pattern_destroy(&drop);
    pattern_destroy(&exp);
    return t0;
}

static void bench_invalidation(void)
{
    struct entries e;
    struct policy *p = inval_policy();
    char model[32];
    size_t stale = 0, current = 0, hits;
    double t_stamp, t_fire, t_check, t_scan;
    enum { FIRINGS = 100000, SCANS = 5 };

    entries_fill(&e);
    t_stamp = now_ns();
    for (size_t i = 0; i < ENTRIES; i++)
        if (policy_stamp(p, e.keys + e.off[i], e.len[i], e.stamps[i], 2) != 2)
            die("stamp", e.keys + e.off[i]);
    t_stamp = (now_ns() - t_stamp) / ENTRIES;

    snprintf(model, sizeof(model), "model:7");
    t_fire = now_ns();
    policy_on_write(p, model, strlen(model), "set", 0);
    t_fire = now_ns() - t_fire;
    t_check = now_ns();
    for (size_t i = 0; i < ENTRIES; i++) {
        bool ok = policy_stamps_current(p, e.stamps[i], 2);
        stale += !ok;
        current += ok;
    }
    t_check = (now_ns() - t_check) / ENTRIES;
    /* Many firings, for a steadier per-firing figure. */
    double t_many = now_ns();
    for (int k = 0; k < FIRINGS; k++) {
        int n = snprintf(model, sizeof(model), "model:%d", 1000 + k % 1000);
        policy_on_write(p, model, (size_t)n, "set", 0);
    }
    t_many = (now_ns() - t_many) / FIRINGS;
    t_scan = 0;
    for (int k = 0; k < SCANS; k++)
        t_scan += scan_once(&e, "model:7", &hits);
    t_scan /= SCANS;

    printf("\n(b) pattern invalidation, %d entries (%d models x %d chunks)\n", ENTRIES, MODELS,
           CHUNKS);
    printf("    when \"model:{m}\" drop \"embeddings:{m}:*\"\n");
    printf("    %-48s %12.1f ns/key\n", "policy_stamp at fill", t_stamp);
    printf("    %-48s %12.1f ns (first), %.1f ns (mean of %d)\n",
           "policy_on_write(\"model:<m>\") per firing", t_fire, t_many, FIRINGS);
    printf("    %-48s %12.1f ns/hit\n", "policy_stamps_current (2 stamps)", t_check);
    printf("    %-48s %12.1f ms/firing (%.1f ns/key)\n", "scan 1M keys with the expanded pattern",
           t_scan / 1e6, t_scan / ENTRIES);
    printf("    stale after model:7 fired: %zu (scan matched %zu), current %zu\n", stale, hits,
           current);
    printf("    firing is %.0fx cheaper than scanning\n", t_scan / t_many);
    entries_free(&e);
    policy_destroy(&p);
}

/* ---- (c) reloading a large policy ------------------------------------------ */

/* A growing text buffer for the generated YAML. */
struct text {
    char *buf;
    size_t len, cap;
};

static void text_printf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_printf(struct text *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    while (n >= 0 && t->len + (size_t)n >= t->cap) {
        t->cap = t->cap ? t->cap * 2 : 1 << 16;
        if ((t->buf = realloc(t->buf, t->cap)) == NULL)
            die("yaml", "out of memory");
    }
    va_start(ap, fmt);
    vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += n >= 0 ? (size_t)n : 0;
}

/* The policy section with n rules of each kind: validation rules on their own
 * tenant prefix (one in 1,000 without keys), cache rules on their own app
 * prefix (one in 1,000 adaptive, one in 1,000 with admission), invalidation
 * rules with two drops each. */
static void policy_text(struct text *t, size_t n)
{
    static const char *const actions[] = {"deny", "read-only", "allow"};

    text_printf(t, "policy:\n  validate:\n");
    for (size_t i = 0; i < n; i++) {
        if (i % 1000 == 999)
            text_printf(t, "    - {name: v%zu, commands: [admin], action: deny}\n", i);
        else
            text_printf(t,
                        "    - {name: v%zu, keys: \"t%zu:{id}:*\", commands: [%s], action: %s}\n",
                        i, i, i % 2 ? "write" : "get, set", actions[i % 3]);
    }
    text_printf(t, "  cache:\n");
    for (size_t i = 0; i < n; i++) {
        const char *extra = i % 1000 == 1   ? ", ttl: {min: 1s, max: 10m}"
                            : i % 1000 == 2 ? ", admit: {reads: 2, window: 10s}"
                                            : ", ttl: 1m";
        text_printf(t, "    - {name: c%zu, keys: \"app%zu:{id}\"%s}\n", i, i, extra);
    }
    text_printf(t, "  invalidate:\n");
    for (size_t i = 0; i < n; i++)
        text_printf(
            t, "    - {name: i%zu, when: \"m%zu:{m}\", drop: [\"e%zu:{m}:*\", \"f%zu:{m}\"]}\n", i,
            i, i, i);
}

/* The phases of a reload, in ns. */
struct reload_times {
    double parse, load, build, rebuild, take_over;
};

/* Parses t and loads its policy section, timing both. */
static struct policy *policy_load(const struct text *t, double *parse, double *load)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    struct policy *p = NULL;
    char err[512];
    double t0 = now_ns();

    if (!yaml_parser_initialize(&parser))
        die("yaml", "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)t->buf, t->len);
    if (!yaml_parser_load(&parser, &doc))
        die("yaml", parser.problem != NULL ? parser.problem : "parse error");
    *parse = now_ns() - t0;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    yaml_node_t *section = yaml_document_get_node(&doc, root->data.mapping.pairs.start[0].value);
    t0 = now_ns();
    if (policy_yaml_load(&doc, section, "bench.yaml", &p, err, sizeof(err)) < 0)
        die("load", err);
    *load = now_ns() - t0;
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return p;
}

/* Builds p over prev (NULL: none), timing it. */
static void reload_build(struct policy *p, const struct policy *prev, double *build)
{
    char err[256];
    double t0 = now_ns();

    if (policy_build(p, prev, err, sizeof(err)) < 0)
        die("build", err);
    *build = now_ns() - t0;
}

/* A first load and build of t, then a reload of the same text over it:
 * load, build over the first, take-over. Returns whether the take-over
 * carried every cache rule's counters. */
static bool reload_once(const struct text *t, struct reload_times *r)
{
    struct policy *prev = policy_load(t, &r->parse, &r->load), *p;
    bool carried = true;

    reload_build(prev, NULL, &r->build);
    for (uint16_t i = 0; policy_cache_rule_at(prev, i) != NULL; i++)
        policy_cache_rule_at(prev, i)->stats->hits = i + 1u;
    p = policy_load(t, &r->parse, &r->load);
    reload_build(p, prev, &r->rebuild);
    r->take_over = now_ns();
    policy_take_over(p, prev);
    r->take_over = now_ns() - r->take_over;
    policy_destroy(&prev);
    for (uint16_t i = 0; policy_cache_rule_at(p, i) != NULL; i++)
        carried = carried && policy_cache_rule_at(p, i)->stats->hits == i + 1u;
    policy_destroy(&p);
    return carried;
}

/* Each phase's best of RUNS reloads of n rules of each kind. */
static void bench_reload_size(size_t n)
{
    enum { RUNS = 3 };
    struct text t = {NULL, 0, 0};
    struct reload_times best = {0}, r;
    bool carried = true;

    policy_text(&t, n);
    for (int k = 0; k < RUNS; k++) {
        carried = reload_once(&t, &r) && carried;
        best.parse = k == 0 || r.parse < best.parse ? r.parse : best.parse;
        best.load = k == 0 || r.load < best.load ? r.load : best.load;
        best.build = k == 0 || r.build < best.build ? r.build : best.build;
        best.rebuild = k == 0 || r.rebuild < best.rebuild ? r.rebuild : best.rebuild;
        best.take_over = k == 0 || r.take_over < best.take_over ? r.take_over : best.take_over;
    }
    printf("    %6zu %6.1f MB %9.1f ms %9.1f ms %9.1f ms %9.1f ms %9.3f ms %s\n", n,
           (double)t.len / 1e6, best.parse / 1e6, best.load / 1e6, best.build / 1e6,
           best.rebuild / 1e6, best.take_over / 1e6, carried ? "yes" : "NO");
    free(t.buf);
}

static void bench_reload(void)
{
    static const size_t sizes[] = {10000, 40000};

    printf("\n(c) reloading a policy of N rules of each kind (validate, cache, invalidate),\n"
           "    best of 3: YAML parse (libyaml), policy_yaml_load, policy_build without and\n"
           "    over the policy replaced, policy_take_over; counters carried\n");
    printf("    %6s %9s %12s %12s %12s %12s %12s %s\n", "N", "yaml", "parse", "load", "build",
           "rebuild", "take-over", "carried");
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        bench_reload_size(sizes[i]);
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 1000000;

    bench_validation(iters);
    bench_invalidation();
    bench_reload();
    return 0;
}

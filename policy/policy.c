/* policy.c - the rule engine: rule lists, building, cache rules and modules.
 * Validation is in check.c, invalidation in invalidate.c, the rules by kind
 * and name (their counters, fingerprints and statistics, and what a reload
 * hands over) in registry.c; the structures they share are in rules.h.
 *
 * Every lookup goes through a pattern_set (pattern.h) so that its cost does
 * not grow with the number of rules whose literal prefix does not fit the
 * key: validation rules (a rule without `keys` is in the set as "*"), cache
 * rules, the `when` of invalidation rules and, for stamping entries, every
 * drop pattern of every invalidation rule.
 *
 * Memory: the generation table is 256 KB; a cache rule with admission has
 * one window (16 KB, window.h), an adaptive one two more (reads and writes).
 */
#include "policy/policy.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/check.h"
#include "policy/invalidate.h"
#include "policy/registry.h"
#include "policy/rules.h"

#define TTL_WINDOW_MS 60000u /* adaptive TTL window when none is given */

/* ---- helpers --------------------------------------------------------------- */

/* arr grown to hold n + 1 elements of size, or NULL (arr then unchanged). */
static void *grow(void *arr, size_t *cap, size_t n, size_t size)
{
    size_t want = *cap ? *cap * 2 : 8;
    void *a;

    if (n < *cap)
        return arr;
    a = realloc(arr, want * size);
    if (a != NULL)
        *cap = want;
    return a;
}

char *rules_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);

    return d != NULL ? memcpy(d, s, n) : NULL;
}

void rules_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int name_check(const char *name, char *err, size_t errlen)
{
    size_t n = name != NULL ? strlen(name) : 0;

    for (size_t i = 0; i < n; i++)
        if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-", name[i]) ==
            NULL) {
            n = 0;
            break;
        }
    if (n == 0 || n > POLICY_NAME_MAX) {
        rules_set_err(err, errlen, "name: must be 1-%d bytes of [A-Za-z0-9_.:-]", POLICY_NAME_MAX);
        return -1;
    }
    return 0;
}

int rules_compile(const char *field, const char *text, struct pattern **out, char *err,
                  size_t errlen)
{
    char why[128];

    if (text == NULL) {
        rules_set_err(err, errlen, "%s: required", field);
        return -1;
    }
    *out = pattern_compile(text, strlen(text), why, sizeof(why));
    if (*out == NULL)
        rules_set_err(err, errlen, "%s: %s", field, why);
    return *out != NULL ? 0 : -1;
}

/* ---- create and destroy ---------------------------------------------------- */

/* Fills what the request path sees of c (index and fingerprint at build). */
static void crule_publish(struct crule *c, struct policy_rule_stats *stats)
{
    c->pub.name = c->name;
    c->pub.cache = c->cfg.cache;
    c->pub.max_entry = c->cfg.max_entry;
    c->pub.compress_over = c->cfg.compress_over;
    c->pub.stats = stats;
}

struct policy *policy_create(void)
{
    struct policy *p = calloc(1, sizeof(*p));
    struct policy_rule_stats *stats = NULL;

    if (p == NULL)
        return NULL;
    pthread_mutex_init(&p->lock, NULL);
    p->gens = invalidate_table_create();
    if (p->gens == NULL || (p->validate_default = registry_cell(p)) == NULL ||
        (stats = registry_cell(p)) == NULL) {
        policy_destroy(&p);
        return NULL;
    }
    strcpy(p->cache_default.name, "default");
    p->cache_default.cfg.cache = true;
    crule_publish(&p->cache_default, stats);
    return p;
}

static void crule_free(struct crule *r)
{
    free(r->keys_text);
    pattern_destroy(&r->keys);
    window_destroy(&r->admit);
    window_destroy(&r->reads);
    window_destroy(&r->writes);
    free(r);
}

void policy_destroy(struct policy **pp)
{
    struct policy *p = *pp;

    if (p == NULL)
        return;
    for (size_t i = 0; i < p->nmods; i++)
        if (p->mods[i].mod->destroy != NULL)
            p->mods[i].mod->destroy(p->mods[i].state);
    for (size_t i = 0; i < p->nvalidate; i++)
        check_rule_free(p->validate[i]);
    for (size_t i = 0; i < p->ncache; i++)
        crule_free(p->cache[i]);
    for (size_t i = 0; i < p->ninval; i++)
        invalidate_rule_free(p->inval[i]);
    free(p->mods);
    free(p->validate);
    free(p->cache);
    free(p->inval);
    pattern_set_destroy(&p->vset);
    pattern_set_destroy(&p->cset);
    pattern_set_destroy(&p->wset);
    pattern_set_destroy(&p->dset);
    free(p->keyless);
    free(p->sources);
    free(p->names);
    for (size_t i = 0; i < p->nblocks; i++)
        free(p->cells[i]);
    free(p->cells);
    free(p->stats_moves);
    free(p->window_moves);
    free(p->gens);
    free(p->koffs);
    pthread_mutex_destroy(&p->lock);
    free(p);
    *pp = NULL;
}

/* ---- adding rules ---------------------------------------------------------- */

/* Checks what every add checks: not built, a valid name, unique in its kind
 * (the default rules of validate and cache reserve "default"); and makes
 * room for what registry_enter needs. */
static int add_check(struct policy *p, policy_kind_e kind, const char *name, char *err,
                     size_t errlen)
{
    if (p->built) {
        rules_set_err(err, errlen, "policy: rules added after policy_build");
        return -1;
    }
    if (name_check(name, err, errlen) < 0)
        return -1;
    if (kind != POLICY_KIND_INVALIDATE && strcmp(name, "default") == 0) {
        rules_set_err(err, errlen, "name: 'default' is reserved for the default rule");
        return -1;
    }
    if (registry_has(p, kind, name)) {
        rules_set_err(err, errlen, "name: duplicate rule '%s'", name);
        return -1;
    }
    if (registry_reserve(p) < 0) {
        rules_set_err(err, errlen, "name: out of memory");
        return -1;
    }
    return 0;
}

int rules_limit_check(const char *field, int64_t v, int64_t least, char *err, size_t errlen)
{
    if (v >= least)
        return 0;
    rules_set_err(err, errlen, "%s: must be %d or more", field, (int)least);
    return -1;
}

int policy_set_defaults(struct policy *p, const struct policy_defaults *d, char *err, size_t errlen)
{
    if (p->built) {
        rules_set_err(err, errlen, "policy: defaults set after policy_build");
        return -1;
    }
    if ((unsigned)d->action > POLICY_READ_ONLY) {
        rules_set_err(err, errlen, "action: unknown action");
        return -1;
    }
    if (rules_limit_check("max_key_length", d->max_key_length, 0, err, errlen) < 0 ||
        rules_limit_check("max_value_size", d->max_value_size, 0, err, errlen) < 0)
        return -1;
    p->defaults = *d;
    return 0;
}

int policy_add_validate(struct policy *p, const struct policy_validate_rule *r, char *err,
                        size_t errlen)
{
    struct vrule *v, **arr;

    if (add_check(p, POLICY_KIND_VALIDATE, r->name, err, errlen) < 0)
        return -1;
    v = calloc(1, sizeof(*v));
    arr = grow(p->validate, &p->cap_validate, p->nvalidate, sizeof(*arr));
    if (arr != NULL)
        p->validate = arr;
    if (v == NULL || arr == NULL) {
        free(v);
        rules_set_err(err, errlen, "name: out of memory");
        return -1;
    }
    if (check_rule_fill(v, r, err, errlen) < 0) {
        check_rule_free(v);
        return -1;
    }
    v->stats = registry_enter(p, POLICY_KIND_VALIDATE, p->nvalidate, v->name);
    p->validate[p->nvalidate++] = v;
    return 0;
}

static int crule_check(const struct policy_cache_rule *r, char *err, size_t errlen)
{
    if (r->ttl_max_ms != 0 && r->ttl_min_ms > r->ttl_max_ms) {
        rules_set_err(err, errlen, "ttl: min %llums is above max %llums",
                      (unsigned long long)r->ttl_min_ms, (unsigned long long)r->ttl_max_ms);
        return -1;
    }
    if (r->admit_reads > 1 && r->admit_window_ms == 0) {
        rules_set_err(err, errlen, "admit: window is required when reads > 1");
        return -1;
    }
    if (rules_limit_check("max_entry", r->max_entry, 0, err, errlen) < 0 ||
        rules_limit_check("compress_over", r->compress_over, 0, err, errlen) < 0)
        return -1;
    return 0;
}

int policy_add_cache(struct policy *p, const struct policy_cache_rule *r, char *err, size_t errlen)
{
    struct crule *c, **arr;

    if (add_check(p, POLICY_KIND_CACHE, r->name, err, errlen) < 0 ||
        crule_check(r, err, errlen) < 0)
        return -1;
    if (p->ncache + 1 >= UINT16_MAX) {
        rules_set_err(err, errlen, "name: more than %u cache rules", UINT16_MAX - 2);
        return -1;
    }
    c = calloc(1, sizeof(*c));
    arr = grow(p->cache, &p->cap_cache, p->ncache, sizeof(*arr));
    if (arr != NULL)
        p->cache = arr;
    if (c == NULL || arr == NULL) {
        free(c);
        rules_set_err(err, errlen, "name: out of memory");
        return -1;
    }
    if (rules_compile("keys", r->keys, &c->keys, err, errlen) < 0 ||
        (c->keys_text = rules_strdup(r->keys)) == NULL) {
        if (c->keys != NULL)
            rules_set_err(err, errlen, "keys: out of memory");
        crule_free(c);
        return -1;
    }
    strcpy(c->name, r->name);
    c->cfg = *r;
    c->cfg.name = c->cfg.keys = NULL;
    if (c->cfg.ttl_max_ms != 0 && c->cfg.ttl_window_ms == 0)
        c->cfg.ttl_window_ms = TTL_WINDOW_MS;
    crule_publish(c, registry_enter(p, POLICY_KIND_CACHE, p->ncache, c->name));
    p->cache[p->ncache++] = c;
    return 0;
}

int policy_add_invalidate(struct policy *p, const struct policy_invalidate_rule *r, char *err,
                          size_t errlen)
{
    struct irule *v, **arr;

    if (add_check(p, POLICY_KIND_INVALIDATE, r->name, err, errlen) < 0)
        return -1;
    v = calloc(1, sizeof(*v));
    arr = grow(p->inval, &p->cap_inval, p->ninval, sizeof(*arr));
    if (arr != NULL)
        p->inval = arr;
    if (v == NULL || arr == NULL) {
        free(v);
        rules_set_err(err, errlen, "name: out of memory");
        return -1;
    }
    if (invalidate_rule_fill(v, r, err, errlen) < 0) {
        invalidate_rule_free(v);
        return -1;
    }
    v->stats = registry_enter(p, POLICY_KIND_INVALIDATE, p->ninval, v->name);
    p->inval[p->ninval++] = v;
    return 0;
}

int policy_add_module(struct policy *p, const char *name, const struct policy_module_args *args,
                      char *err, size_t errlen)
{
    const struct policy_module *const *m = policy_modules;
    for (; *m != NULL && strcmp((*m)->name, name) != 0; m++)
        ;
    if (*m == NULL) {
        rules_set_err(err, errlen, "name: unknown module '%.63s'", name);
        return -1;
    }
    return policy_use_module(p, *m, args, err, errlen);
}

int policy_use_module(struct policy *p, const struct policy_module *m,
                      const struct policy_module_args *args, char *err, size_t errlen)
{
    struct module_slot *arr;
    for (size_t i = 0; i < p->nmods; i++)
        if (p->mods[i].mod == m) {
            rules_set_err(err, errlen, "name: module '%s' is enabled twice", m->name);
            return -1;
        }
    if (p->built) {
        rules_set_err(err, errlen, "policy: module added after policy_build");
        return -1;
    }
    if ((arr = grow(p->mods, &p->cap_mods, p->nmods, sizeof(*arr))) != NULL)
        p->mods = arr;
    if (arr == NULL || registry_reserve(p) < 0) {
        rules_set_err(err, errlen, "name: out of memory");
        return -1;
    }
    if (errlen > 0)
        err[0] = '\0';
    void *state = m->create != NULL ? m->create(args, err, errlen) : NULL;
    if (state == NULL && errlen > 0 && err[0] != '\0')
        return -1;
    p->mods[p->nmods] =
        (struct module_slot){m, state, registry_enter(p, POLICY_KIND_MODULE, p->nmods, m->name)};
    p->nmods++;
    return 0;
}

/* ---- building -------------------------------------------------------------- */

/* Fills the four pattern sets and the list of rules without keys. */
static int build_sets(struct policy *p)
{
    p->vset = pattern_set_create();
    p->cset = pattern_set_create();
    p->wset = pattern_set_create();
    p->dset = pattern_set_create();
    p->keyless = calloc(p->nvalidate + 1, sizeof(*p->keyless));
    if (!p->vset || !p->cset || !p->wset || !p->dset || !p->keyless)
        return -1;
    for (size_t i = 0; i < p->nvalidate; i++) {
        if (pattern_set_add(p->vset, p->validate[i]->keys, p->validate[i]) < 0)
            return -1;
        if (p->validate[i]->keys_text == NULL)
            p->keyless[p->nkeyless++] = p->validate[i];
    }
    for (size_t i = 0; i < p->ncache; i++)
        if (pattern_set_add(p->cset, p->cache[i]->keys, p->cache[i]) < 0)
            return -1;
    for (size_t i = 0; i < p->ninval; i++) {
        struct irule *r = p->inval[i];
        if (pattern_set_add(p->wset, r->when, r) < 0)
            return -1;
        for (size_t d = 0; d < r->ndrops; d++)
            if (pattern_set_add(p->dset, r->drops[d].wide, &r->drops[d]) < 0)
                return -1;
    }
    if (pattern_set_build(p->vset) < 0 || pattern_set_build(p->cset) < 0 ||
        pattern_set_build(p->wset) < 0 || pattern_set_build(p->dset) < 0)
        return -1;
    return 0;
}

/* policy_empty, worked out. */
static bool policy_has_nothing(const struct policy *p)
{
    const struct policy_defaults *d = &p->defaults;

    return p->nvalidate == 0 && p->ncache == 0 && p->ninval == 0 && p->nmods == 0 &&
           d->action == POLICY_ALLOW && d->max_key_length == 0 && d->max_value_size == 0;
}

int policy_build(struct policy *p, const struct policy *prev, char *err, size_t errlen)
{
    if (p->built || p == prev) {
        rules_set_err(err, errlen, "policy: built twice");
        return -1;
    }
    if (build_sets(p) < 0 || invalidate_sources_build(p) < 0)
        goto oom;
    registry_fingerprint(p);
    if (registry_build(p, prev) < 0)
        goto oom;
    p->over = prev;
    p->validates = p->nvalidate > 0 || p->defaults.action != POLICY_ALLOW ||
                   p->defaults.max_key_length > 0 || p->defaults.max_value_size > 0;
    for (size_t i = 0; i < p->nmods; i++)
        p->validates = p->validates || p->mods[i].mod->validate != NULL;
    for (size_t i = 0; i < p->ncache; i++)
        p->counts_writes = p->counts_writes || p->cache[i]->cfg.ttl_max_ms != 0;
    p->empty = policy_has_nothing(p);
    p->built = true;
    return 0;
oom:
    rules_set_err(err, errlen, "policy: out of memory");
    return -1;
}

bool policy_empty(const struct policy *p)
{
    return p->built ? p->empty : policy_has_nothing(p); /* asked on every request */
}

/* ---- cache rules ----------------------------------------------------------- */

static struct crule *crule_of(struct policy *p, const struct policy_cached *rule)
{
    return rule->index < p->ncache ? p->cache[rule->index] : &p->cache_default;
}

const struct policy_cached *policy_cache_rule(const struct policy *p, const char *key, size_t klen)
{
    struct crule *c = p->built ? pattern_set_first(p->cset, key, klen, NULL) : NULL;

    return c != NULL ? &c->pub : &p->cache_default.pub;
}

const struct policy_cached *policy_cache_rule_at(const struct policy *p, uint16_t index)
{
    if (index < p->ncache)
        return &p->cache[index]->pub;
    return index == p->ncache ? &p->cache_default.pub : NULL;
}

/* Adds a read of key to c's windows. Out of line: a rule without windows
 * then reads without saving registers (a GET hit 1,266 -> 1,253 instructions). */
static __attribute__((noinline)) void note_windows(struct policy *p, struct crule *c,
                                                   const char *key, size_t klen, uint64_t now_ms)
{
    policy_hold(p);
    if (c->admit != NULL)
        window_add(c->admit, key, klen, now_ms);
    if (c->reads != NULL)
        window_add(c->reads, key, klen, now_ms);
    policy_release(p);
}

void policy_note_read(struct policy *p, const struct policy_cached *rule, const char *key,
                      size_t klen, bool hit, uint64_t now_ms)
{
    struct crule *c = crule_of(p, rule);

    policy_count(p, hit ? &c->pub.stats->hits : &c->pub.stats->misses);
    if (c->admit != NULL || c->reads != NULL)
        note_windows(p, c, key, klen, now_ms);
}

void policy_note_writes(struct policy *p, const char *key, size_t klen, uint64_t n)
{
    uint64_t *writes = &crule_of(p, policy_cache_rule(p, key, klen))->pub.stats->writes;
    if (p->shared)
        __atomic_fetch_add(writes, n, __ATOMIC_RELAXED);
    else
        *writes += n;
}

bool policy_admit(struct policy *p, const struct policy_cached *rule, const char *key, size_t klen,
                  uint64_t now_ms)
{
    struct crule *c = crule_of(p, rule);

    if (!c->cfg.cache)
        return false;
    if (c->admit == NULL)
        return true;
    policy_hold(p);
    double reads = window_estimate(c->admit, key, klen, now_ms);
    policy_release(p);
    /* The estimate is a sum of whole counts and a fraction: allow for rounding. */
    return reads + 1e-9 >= (double)c->cfg.admit_reads;
}

bool policy_should_cache(struct policy *p, const char *key, size_t klen, size_t reply_len)
{
    bool keep = true;
    if (p->nmods == 0)
        return true;
    policy_hold(p);
    for (size_t i = 0; keep && i < p->nmods; i++) {
        const struct policy_module *m = p->mods[i].mod;
        keep = m->should_cache == NULL || m->should_cache(p->mods[i].state, key, klen, reply_len);
    }
    policy_release(p);
    return keep;
}

uint64_t policy_ttl(struct policy *p, const struct policy_cached *rule, const char *key,
                    size_t klen, uint64_t default_ms, uint64_t now_ms)
{
    struct crule *c = crule_of(p, rule);
    const struct policy_cache_rule *r = &c->cfg;
    uint64_t ttl = r->ttl_ms != 0 ? r->ttl_ms : default_ms;

    policy_hold(p);
    if (r->ttl_max_ms != 0 && c->reads != NULL && c->writes != NULL) {
        double reads = window_estimate(c->reads, key, klen, now_ms);
        double writes = window_estimate(c->writes, key, klen, now_ms);
        double span = (double)(r->ttl_max_ms - r->ttl_min_ms);
        ttl = r->ttl_min_ms + (uint64_t)(span * reads / (reads + 10) / (1 + writes));
    }
    for (size_t i = 0; i < p->nmods; i++)
        if (p->mods[i].mod->ttl != NULL)
            ttl = p->mods[i].mod->ttl(p->mods[i].state, key, klen, ttl);
    policy_release(p);
    return ttl;
}

/* ---- modules --------------------------------------------------------------- */

void policy_on_error_held(struct policy *p, const char *reply, size_t len)
{
    for (size_t i = 0; i < p->nmods; i++)
        if (p->mods[i].mod->on_error != NULL)
            p->mods[i].mod->on_error(p->mods[i].state, reply, len);
}

void policy_on_error(struct policy *p, const char *reply, size_t len)
{
    if (p->nmods == 0)
        return;
    policy_hold(p);
    policy_on_error_held(p, reply, len);
    policy_release(p);
}

void policy_share(struct policy *p)
{
    p->shared = true;
}

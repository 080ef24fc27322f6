/* policy.c - the rule engine: rule lists, building, cache rules, statistics
 * and modules. Validation is in check.c, invalidation in invalidate.c; the
 * structures they share are in rules.h.
 *
 * Every lookup goes through a pattern_set (pattern.h) so that its cost does
 * not grow with the number of rules whose literal prefix does not fit the
 * key: validation rules (a rule without `keys` is in the set as "*"), cache
 * rules, the `when` of invalidation rules and, for stamping entries, every
 * drop pattern of every invalidation rule.
 *
 * A reload is split so that the event loop waits only for what is O(1) per
 * rule: a hash table of each policy's rule names (also the duplicate check
 * of every add) lets policy_build, off the loop, list the counters and
 * windows of each rule's namesake in the policy it replaces; then
 * policy_take_over copies and moves them. Counters live in blocks of cells
 * rather than in the rules, so that copy runs through contiguous memory.
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
#include "policy/rules.h"

#define TTL_WINDOW_MS 60000u /* adaptive TTL window when none is given */
#define FNV32_OFFSET  2166136261u
#define FNV32_PRIME   16777619u
#define STATS_BLOCK   1024u /* cells of counters per block */

static const char *const KIND_NAMES[] = {"validate", "cache", "invalidate", "module"};

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

static uint32_t fnv32(uint32_t h, const void *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ ((const unsigned char *)s)[i]) * FNV32_PRIME;
    return h;
}

/* A field into a 32-bit fingerprint: its length, then its bytes. */
static uint32_t fp_str(uint32_t h, const char *s)
{
    uint64_t n = s != NULL ? strlen(s) + 1 : 0;

    h = fnv32(h, &n, sizeof(n));
    return s != NULL ? fnv32(h, s, n - 1) : h;
}

static uint32_t fp_num(uint32_t h, uint64_t v)
{
    return fnv32(h, &v, sizeof(v));
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

/* Fingerprint of a filter, in the order it was written. */
static uint32_t filter_fp(uint32_t h, const struct cmd_filter *f)
{
    h = fp_num(h, f->classes);
    for (size_t i = 0; i < f->n; i++)
        h = fp_str(h, f->names[i].name);
    return fp_num(h, f->n);
}

/* ---- rules by kind ---------------------------------------------------------- */

/* Number of rules of kind, the default rule of validate and cache included. */
static size_t kind_count(const struct policy *p, policy_kind_e kind)
{
    const size_t n[] = {p->nvalidate + 1, p->ncache + 1, p->ninval, p->nmods};

    return n[kind];
}

/* Rule i < kind_count of kind (the default rule last): its name in *name,
 * its counters returned. */
static struct policy_rule_stats *kind_rule(const struct policy *p, policy_kind_e kind, size_t i,
                                           const char **name)
{
    const struct crule *c;

    switch (kind) {
    case POLICY_KIND_VALIDATE:
        *name = i < p->nvalidate ? p->validate[i]->name : "default";
        return i < p->nvalidate ? p->validate[i]->stats : p->validate_default;
    case POLICY_KIND_CACHE:
        c = i < p->ncache ? p->cache[i] : &p->cache_default;
        *name = c->name;
        return c->pub.stats;
    case POLICY_KIND_INVALIDATE:
        *name = p->inval[i]->name;
        return p->inval[i]->stats;
    default:
        *name = p->mods[i].mod->name;
        return p->mods[i].stats;
    }
}

/* ---- names and counters of added rules ------------------------------------- */

static uint32_t name_hash(policy_kind_e kind, const char *name)
{
    unsigned char k = (unsigned char)kind;
    uint32_t h = fnv32(fnv32(FNV32_OFFSET, &k, 1), name, strlen(name));

    return h ^ (h >> 16);
}

/* Whether p has a rule or module of kind called name (the default rules
 * aside); its position within its kind in *idx. Reads only the table and
 * the names, which do not change once the rule is added. */
static bool names_find(const struct policy *p, policy_kind_e kind, const char *name, uint32_t *idx)
{
    uint32_t h = name_hash(kind, name);
    size_t mask = p->names_cap - 1;

    for (size_t s = h & mask; p->names_cap > 0 && p->names[s].ref != 0; s = (s + 1) & mask) {
        uint32_t ref = p->names[s].ref - 1;
        const char *other;
        if (p->names[s].hash != h || (ref & 3) != kind)
            continue;
        kind_rule(p, kind, ref >> 2, &other);
        if (strcmp(other, name) == 0) {
            *idx = ref >> 2;
            return true;
        }
    }
    return false;
}

/* Stores slot in the first free slot of its probe sequence in slots[cap]. */
static void name_place(struct name_slot *slots, size_t cap, struct name_slot slot)
{
    size_t s = slot.hash & (cap - 1);

    while (slots[s].ref != 0)
        s = (s + 1) & (cap - 1);
    slots[s] = slot;
}

/* Makes room in the name table for one more name (it stays at most half
 * full). Returns 0, or -1 when out of memory. */
static int names_reserve(struct policy *p)
{
    size_t cap = p->names_cap ? p->names_cap * 2 : 16;
    struct name_slot *slots;

    if (2 * (p->nnames + 1) <= p->names_cap)
        return 0;
    if ((slots = calloc(cap, sizeof(*slots))) == NULL)
        return -1;
    for (size_t i = 0; i < p->names_cap; i++)
        if (p->names[i].ref != 0)
            name_place(slots, cap, p->names[i]);
    free(p->names);
    p->names = slots;
    p->names_cap = cap;
    return 0;
}

/* Makes sure a cell of counters is free for the next rule: a new block when
 * the last is full. Returns 0, or -1 when out of memory. */
static int cells_reserve(struct policy *p)
{
    struct policy_rule_stats **arr, *block;

    if (p->ncells < p->nblocks * STATS_BLOCK)
        return 0;
    if ((arr = grow(p->cells, &p->cap_blocks, p->nblocks, sizeof(*arr))) == NULL)
        return -1;
    p->cells = arr;
    if ((block = calloc(STATS_BLOCK, sizeof(*block))) == NULL)
        return -1;
    p->cells[p->nblocks++] = block;
    return 0;
}

/* The next cell of counters (cells_reserve made sure of one), zeroed. */
static struct policy_rule_stats *cells_take(struct policy *p)
{
    size_t i = p->ncells++;

    return &p->cells[i / STATS_BLOCK][i % STATS_BLOCK];
}

/* Enters rule i of kind, called name (the rule's own copy), in the name
 * table and returns its counters, where add_check made room for both. */
static struct policy_rule_stats *rule_enter(struct policy *p, policy_kind_e kind, size_t i,
                                            const char *name)
{
    uint32_t ref = 1 + (uint32_t)(i << 2 | kind);

    name_place(p->names, p->names_cap, (struct name_slot){name_hash(kind, name), ref});
    p->nnames++;
    return cells_take(p);
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

    if (p == NULL)
        return NULL;
    p->gens = invalidate_table_create();
    if (p->gens == NULL || cells_reserve(p) < 0) {
        policy_destroy(&p);
        return NULL;
    }
    p->validate_default = cells_take(p); /* the first block holds both */
    strcpy(p->cache_default.name, "default");
    p->cache_default.cfg.cache = true;
    crule_publish(&p->cache_default, cells_take(p));
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
    free(p->keys);
    free(p->kflags);
    free(p->koffs);
    free(p);
    *pp = NULL;
}

/* ---- adding rules ---------------------------------------------------------- */

/* Checks what every add checks: not built, a valid name, unique in its kind
 * (the default rules of validate and cache reserve "default"); and makes
 * room for what rule_enter needs. */
static int add_check(struct policy *p, policy_kind_e kind, const char *name, char *err,
                     size_t errlen)
{
    uint32_t other;

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
    if (names_find(p, kind, name, &other)) {
        rules_set_err(err, errlen, "name: duplicate rule '%s'", name);
        return -1;
    }
    if (names_reserve(p) < 0 || cells_reserve(p) < 0) {
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
    v->stats = rule_enter(p, POLICY_KIND_VALIDATE, p->nvalidate, v->name);
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
    crule_publish(c, rule_enter(p, POLICY_KIND_CACHE, p->ncache, c->name));
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
    v->stats = rule_enter(p, POLICY_KIND_INVALIDATE, p->ninval, v->name);
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
    if (arr == NULL || names_reserve(p) < 0 || cells_reserve(p) < 0) {
        rules_set_err(err, errlen, "name: out of memory");
        return -1;
    }
    if (errlen > 0)
        err[0] = '\0';
    void *state = m->create != NULL ? m->create(args, err, errlen) : NULL;
    if (state == NULL && errlen > 0 && err[0] != '\0')
        return -1;
    p->mods[p->nmods] =
        (struct module_slot){m, state, rule_enter(p, POLICY_KIND_MODULE, p->nmods, m->name)};
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

/* Fingerprint of a cache rule's meaning: settings that do not apply (the
 * fixed TTL of an adaptive rule, the window of a rule admitting at once) are
 * left out, so that spelling them differently changes nothing. */
static uint32_t crule_fp(uint32_t h, const struct crule *c)
{
    const struct policy_cache_rule *r = &c->cfg;
    bool adaptive = r->ttl_max_ms != 0, admits = r->admit_reads > 1;

    h = fp_str(fp_str(h, c->name), c->keys_text);
    h = fp_num(fp_num(h, r->cache), adaptive ? 0 : r->ttl_ms);
    h = fp_num(fp_num(h, adaptive ? r->ttl_min_ms : 0), adaptive ? r->ttl_max_ms : 0);
    h = fp_num(fp_num(h, adaptive ? r->ttl_window_ms : 0), admits ? r->admit_reads : 1);
    h = fp_num(fp_num(h, admits ? r->admit_window_ms : 0), (uint64_t)r->max_entry);
    return fp_num(h, (uint64_t)r->compress_over);
}

/* Fingerprints: every invalidation rule, then the cache rules in order. */
static void build_fingerprints(struct policy *p)
{
    uint32_t h = FNV32_OFFSET;

    for (size_t i = 0; i < p->ninval; i++) {
        const struct irule *r = p->inval[i];
        h = filter_fp(fp_str(fp_str(h, r->name), r->when_text), &r->filter);
        for (size_t d = 0; d < r->ndrops; d++)
            h = fp_str(h, r->drops[d].text);
        h = fp_num(h, r->ndrops);
    }
    for (size_t i = 0; i < p->ncache; i++) {
        struct crule *c = p->cache[i];
        h = crule_fp(h, c);
        c->pub.index = (uint16_t)i;
        c->pub.fingerprint = h;
    }
    p->cache_default.pub.index = (uint16_t)p->ncache;
    p->cache_default.pub.fingerprint = fp_str(h, "default");
}

/* Lists in p->stats_moves the counters of each rule's namesake in prev
 * (same kind and name; the default rules are each other's): addresses only,
 * which do not change once a rule is added. Returns 0, or -1 when out of
 * memory. */
static int build_stats_moves(struct policy *p, const struct policy *prev)
{
    p->stats_moves = malloc(policy_rule_count(p) * sizeof(*p->stats_moves));
    if (p->stats_moves == NULL)
        return -1;
    for (policy_kind_e k = POLICY_KIND_VALIDATE; k <= POLICY_KIND_MODULE; k++) {
        size_t n = kind_count(p, k);
        bool has_default = k == POLICY_KIND_VALIDATE || k == POLICY_KIND_CACHE;
        for (size_t i = 0; i < n; i++) {
            const char *name;
            struct policy_rule_stats *to = kind_rule(p, k, i, &name);
            uint32_t j;
            if (has_default && i + 1 == n)
                j = (uint32_t)kind_count(prev, k) - 1;
            else if (!names_find(prev, k, name, &j))
                continue;
            p->stats_moves[p->nstats_moves++] =
                (struct stats_move){to, kind_rule(prev, k, j, &name)};
        }
    }
    return 0;
}

/* prev's cache rule with c's name and fingerprint, or NULL. */
static struct crule *prev_twin(const struct policy *prev, const struct crule *c)
{
    uint32_t j;

    if (prev == NULL || !names_find(prev, POLICY_KIND_CACHE, c->name, &j))
        return NULL;
    return prev->cache[j]->pub.fingerprint == c->pub.fingerprint ? prev->cache[j] : NULL;
}

/* Creates *w when the rule uses it (used) and its twin has none to hand
 * over (policy_take_over then moves the twin's). */
static int window_need(struct window **w, bool used, const struct window *twin, uint64_t ms)
{
    if (!used || twin != NULL)
        return 0;
    *w = window_create(ms);
    return *w != NULL ? 0 : -1;
}

/* Creates the windows of rules that use them, unless their twin in prev
 * has them to hand over: those are listed in p->window_moves (whether a
 * rule has windows changes only when its policy is built or takes over).
 * Returns 0, or -1 when out of memory. */
static int build_windows(struct policy *p, const struct policy *prev)
{
    if (prev != NULL && (p->window_moves = calloc(p->ncache + 1, sizeof(*p->window_moves))) == NULL)
        return -1;
    for (size_t i = 0; i < p->ncache; i++) {
        struct crule *c = p->cache[i], *twin = prev_twin(prev, c);
        const struct policy_cache_rule *r = &c->cfg;
        bool admit = r->admit_reads > 1, adaptive = r->ttl_max_ms != 0;
        if (window_need(&c->admit, admit, twin ? twin->admit : NULL, r->admit_window_ms) < 0 ||
            window_need(&c->reads, adaptive, twin ? twin->reads : NULL, r->ttl_window_ms) < 0 ||
            window_need(&c->writes, adaptive, twin ? twin->writes : NULL, r->ttl_window_ms) < 0)
            return -1;
        if (twin != NULL && (twin->admit != NULL || twin->reads != NULL || twin->writes != NULL))
            p->window_moves[p->nwindow_moves++] = (struct window_move){c, twin};
    }
    return 0;
}

int policy_build(struct policy *p, const struct policy *prev, char *err, size_t errlen)
{
    if (p->built || p == prev) {
        rules_set_err(err, errlen, "policy: built twice");
        return -1;
    }
    if (build_sets(p) < 0 || invalidate_sources_build(p) < 0)
        goto oom;
    build_fingerprints(p);
    if ((prev != NULL && build_stats_moves(p, prev) < 0) || build_windows(p, prev) < 0)
        goto oom;
    p->over = prev;
    p->validates = p->nvalidate > 0 || p->defaults.action != POLICY_ALLOW ||
                   p->defaults.max_key_length > 0 || p->defaults.max_value_size > 0;
    for (size_t i = 0; i < p->nmods; i++)
        p->validates = p->validates || p->mods[i].mod->validate != NULL;
    for (size_t i = 0; i < p->ncache; i++)
        p->counts_writes = p->counts_writes || p->cache[i]->cfg.ttl_max_ms != 0;
    p->built = true;
    return 0;
oom:
    rules_set_err(err, errlen, "policy: out of memory");
    return -1;
}

static void move_window(struct window **to, struct window **from)
{
    if (*to == NULL) {
        *to = *from;
        *from = NULL;
    }
}

void policy_take_over(struct policy *p, struct policy *prev)
{
    uint32_t *gens = p->gens;

    if (prev == NULL || prev != p->over)
        return;
    p->gens = prev->gens;
    prev->gens = gens;
    for (size_t i = 0; i < p->nstats_moves; i++)
        *p->stats_moves[i].to = *p->stats_moves[i].from;
    for (size_t i = 0; i < p->nwindow_moves; i++) {
        struct crule *to = p->window_moves[i].to, *from = p->window_moves[i].from;
        move_window(&to->admit, &from->admit);
        move_window(&to->reads, &from->reads);
        move_window(&to->writes, &from->writes);
    }
    free(p->stats_moves);
    free(p->window_moves);
    p->stats_moves = NULL;
    p->window_moves = NULL;
    p->nstats_moves = p->nwindow_moves = 0;
    p->over = NULL;
}

bool policy_empty(const struct policy *p)
{
    const struct policy_defaults *d = &p->defaults;

    return p->nvalidate == 0 && p->ncache == 0 && p->ninval == 0 && p->nmods == 0 &&
           d->action == POLICY_ALLOW && d->max_key_length == 0 && d->max_value_size == 0;
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

void policy_note_read(struct policy *p, const struct policy_cached *rule, const char *key,
                      size_t klen, uint64_t now_ms)
{
    struct crule *c = crule_of(p, rule);

    if (c->admit != NULL)
        window_add(c->admit, key, klen, now_ms);
    if (c->reads != NULL)
        window_add(c->reads, key, klen, now_ms);
}

bool policy_admit(struct policy *p, const struct policy_cached *rule, const char *key, size_t klen,
                  uint64_t now_ms)
{
    struct crule *c = crule_of(p, rule);

    if (!c->cfg.cache)
        return false;
    /* The estimate is a sum of whole counts and a fraction: allow for rounding. */
    return c->admit == NULL ||
           window_estimate(c->admit, key, klen, now_ms) + 1e-9 >= (double)c->cfg.admit_reads;
}

bool policy_should_cache(struct policy *p, const char *key, size_t klen, size_t reply_len)
{
    for (size_t i = 0; i < p->nmods; i++) {
        const struct policy_module *m = p->mods[i].mod;
        if (m->should_cache != NULL && !m->should_cache(p->mods[i].state, key, klen, reply_len))
            return false;
    }
    return true;
}

uint64_t policy_ttl(struct policy *p, const struct policy_cached *rule, const char *key,
                    size_t klen, uint64_t default_ms, uint64_t now_ms)
{
    struct crule *c = crule_of(p, rule);
    const struct policy_cache_rule *r = &c->cfg;
    uint64_t ttl = r->ttl_ms != 0 ? r->ttl_ms : default_ms;

    if (r->ttl_max_ms != 0 && c->reads != NULL && c->writes != NULL) {
        double reads = window_estimate(c->reads, key, klen, now_ms);
        double writes = window_estimate(c->writes, key, klen, now_ms);
        double span = (double)(r->ttl_max_ms - r->ttl_min_ms);
        ttl = r->ttl_min_ms + (uint64_t)(span * reads / (reads + 10) / (1 + writes));
    }
    for (size_t i = 0; i < p->nmods; i++)
        if (p->mods[i].mod->ttl != NULL)
            ttl = p->mods[i].mod->ttl(p->mods[i].state, key, klen, ttl);
    return ttl;
}

/* ---- modules --------------------------------------------------------------- */

void policy_on_error(struct policy *p, const char *reply, size_t len)
{
    for (size_t i = 0; i < p->nmods; i++)
        if (p->mods[i].mod->on_error != NULL)
            p->mods[i].mod->on_error(p->mods[i].state, reply, len);
}

/* ---- statistics ------------------------------------------------------------ */

size_t policy_rule_count(const struct policy *p)
{
    return p->nvalidate + 1 + p->ncache + 1 + p->ninval + p->nmods;
}

const struct policy_rule_stats *policy_rule(const struct policy *p, size_t i, const char **name,
                                            policy_kind_e *kind)
{
    policy_kind_e k = POLICY_KIND_VALIDATE;

    for (; i >= kind_count(p, k); k++)
        i -= kind_count(p, k);
    *kind = k;
    return kind_rule(p, k, i, name);
}

size_t policy_stats(const struct policy *p, char *buf, size_t len)
{
    size_t at = 0;

    if (len == 0)
        return 0;
    buf[0] = '\0';
    for (size_t i = 0; i < policy_rule_count(p) && at + 1 < len; i++) {
        const char *name;
        policy_kind_e kind;
        const struct policy_rule_stats *s = policy_rule(p, i, &name, &kind);
        int n = snprintf(buf + at, len - at,
                         "rule:%s:%s:hits=%llu,misses=%llu,rejections=%llu,invalidations=%llu\r\n",
                         KIND_NAMES[kind], name, (unsigned long long)s->hits,
                         (unsigned long long)s->misses, (unsigned long long)s->rejections,
                         (unsigned long long)s->invalidations);
        if (n < 0)
            break;
        at += (size_t)n < len - at ? (size_t)n : len - at - 1;
    }
    return at;
}

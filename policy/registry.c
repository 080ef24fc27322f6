/* registry.c - a policy's rules by kind and name: their counters, their
 * fingerprints, the statistics, and what a reload hands over.
 *
 * A reload is split so that the event loop waits only for what is O(1) per
 * rule: a hash table of each policy's rule names (also the duplicate check
 * of every add) lets policy_build, off the loop, list the counters and
 * windows of each rule's namesake in the policy it replaces; then
 * policy_take_over copies and moves them. Counters live in blocks of cells
 * rather than in the rules, so that copy runs through contiguous memory. A
 * cache rule's windows go only to its twin: the same name and fingerprint,
 * which covers the rule's meaning, the cache rules before it and the
 * invalidation rules.
 */
#include "policy/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/lib/hash.h"

#define STATS_BLOCK 1024u /* cells of counters per block */

static const char *const KIND_NAMES[] = {"validate", "cache", "invalidate", "module"};

/* ---- fingerprints ---------------------------------------------------------- */

/* A field into a 32-bit fingerprint: its length, then its bytes. */
static uint32_t fp_str(uint32_t h, const char *s)
{
    uint64_t n = s != NULL ? strlen(s) + 1 : 0;

    h = hash_fnv1a32_continue(h, &n, sizeof(n));
    return s != NULL ? hash_fnv1a32_continue(h, s, n - 1) : h;
}

static uint32_t fp_num(uint32_t h, uint64_t v)
{
    return hash_fnv1a32_continue(h, &v, sizeof(v));
}

/* Fingerprint of a filter, in the order it was written. */
static uint32_t filter_fp(uint32_t h, const struct cmd_filter *f)
{
    h = fp_num(h, f->classes);
    for (size_t i = 0; i < f->n; i++)
        h = fp_str(h, f->names[i].name);
    return fp_num(h, f->n);
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
void registry_fingerprint(struct policy *p)
{
    uint32_t h = HASH_FNV32_OFFSET;

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

/* ---- rules by kind --------------------------------------------------------- */

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
    uint32_t h =
        hash_fnv1a32_continue(hash_fnv1a32_continue(HASH_FNV32_OFFSET, &k, 1), name, strlen(name));

    return h ^ (h >> 16);
}

/* Whether p has a rule or module of kind called name (the default rules
 * aside); its position within its kind in *idx. */
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
    size_t cap = p->cap_blocks ? p->cap_blocks * 2 : 8;

    if (p->ncells < p->nblocks * STATS_BLOCK)
        return 0;
    if (p->nblocks == p->cap_blocks) {
        if ((arr = realloc(p->cells, cap * sizeof(*arr))) == NULL)
            return -1;
        p->cells = arr;
        p->cap_blocks = cap;
    }
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

bool registry_has(const struct policy *p, policy_kind_e kind, const char *name)
{
    uint32_t idx;

    return names_find(p, kind, name, &idx);
}

int registry_reserve(struct policy *p)
{
    return names_reserve(p) < 0 || cells_reserve(p) < 0 ? -1 : 0;
}

struct policy_rule_stats *registry_cell(struct policy *p)
{
    return cells_reserve(p) < 0 ? NULL : cells_take(p);
}

struct policy_rule_stats *registry_enter(struct policy *p, policy_kind_e kind, size_t i,
                                         const char *name)
{
    uint32_t ref = 1 + (uint32_t)(i << 2 | kind);

    name_place(p->names, p->names_cap, (struct name_slot){name_hash(kind, name), ref});
    p->nnames++;
    return cells_take(p);
}

/* ---- reloads --------------------------------------------------------------- */

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

int registry_build(struct policy *p, const struct policy *prev)
{
    if (prev != NULL && build_stats_moves(p, prev) < 0)
        return -1;
    return build_windows(p, prev);
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
                         "rule:%s:%s:hits=%llu,misses=%llu,rejections=%llu,invalidations=%llu,"
                         "writes=%llu\r\n",
                         KIND_NAMES[kind], name, (unsigned long long)s->hits,
                         (unsigned long long)s->misses, (unsigned long long)s->rejections,
                         (unsigned long long)s->invalidations, (unsigned long long)s->writes);
        if (n < 0)
            break;
        at += (size_t)n < len - at ? (size_t)n : len - at - 1;
    }
    return at;
}

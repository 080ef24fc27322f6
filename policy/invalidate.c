/* invalidate.c - invalidation rules: their drop patterns, the generation
 * table, stamps and firing.
 *
 * Invalidation state is a table of GEN_SLOTS generations. A (rule, drop)
 * pair has an identity, the hash of the rule's name, `when` text and the
 * drop text; its targets are one slot per tuple of captured values, the hash
 * of the identity and the values, and one rule-wide slot, the hash of the
 * identity. A firing bumps the value slot, or the rule-wide slot when a
 * captured value holds the byte that ends its capture in the drop pattern.
 * An entry carries the generation of the value slot its key binds when the
 * drop matches it, and the rule-wide generation when the drop widened (its
 * captures made '*') matches it. Why this is enough: a key matching the
 * expansion of a drop with values free of their stop bytes binds exactly
 * those values (only literals and captures precede the last capture), so it
 * holds that value slot; a key matching any expansion matches the widened
 * drop, so it holds the rule-wide slot. Slot collisions only over-invalidate.
 *
 * The table is 256 KB (GEN_SLOTS generations).
 */
#include "policy/invalidate.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "policy/check.h"
#include "proxy/lib/hash.h"

#define GEN_SLOTS 65536u
#define VALUE_TAG 0x9e3779b97f4a7c15ull

/* A prefix whose writes Redis must report (policy_source). */
struct source {
    const char *prefix; /* borrowed from a when pattern */
    size_t len;
};

/* A field into a 64-bit slot hash (FNV-1a): its length, least significant
 * byte first, then its bytes. */
static uint64_t hash_field(uint64_t h, const char *s, size_t n)
{
    unsigned char len[sizeof(n)];

    for (size_t i = 0; i < sizeof(n); i++)
        len[i] = (unsigned char)(n >> (8 * i));
    return hash_fnv1a64_continue(hash_fnv1a64_continue(h, len, sizeof(len)), s, n);
}

static uint32_t stamp_slot(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return (uint32_t)h & (GEN_SLOTS - 1);
}

uint32_t *invalidate_table_create(void)
{
    return calloc(GEN_SLOTS, sizeof(uint32_t));
}

/* ---- compiling rules ------------------------------------------------------- */

/* Compiles d->wide: every key an expansion of the drop matches matches it. */
static int drop_widen(struct drop *d, char *err, size_t errlen)
{
    size_t cap = 2 * strlen(d->text) + 1;
    char *text = malloc(cap), why[128];
    int n = text != NULL ? pattern_widen(d->pat, text, cap) : PATTERN_ENOSPACE;

    d->wide = n >= 0 ? pattern_compile(text, (size_t)n, why, sizeof(why)) : NULL;
    free(text);
    if (d->wide == NULL)
        rules_set_err(err, errlen, "drop: out of memory");
    return d->wide != NULL ? 0 : -1;
}

/* Fills d from drop text for rule r: compiled, its captures mapped to the
 * captures of when, their stop bytes recorded. */
static int drop_fill(struct drop *d, struct irule *r, const char *text, char *err, size_t errlen)
{
    if (rules_compile("drop", text, &d->pat, err, errlen) < 0)
        return -1;
    if ((d->text = rules_strdup(text)) == NULL) {
        rules_set_err(err, errlen, "drop: out of memory");
        return -1;
    }
    if (!pattern_captures_anchored(d->pat)) {
        rules_set_err(err, errlen,
                      "drop: '%s' has more than literal bytes and captures before its last "
                      "capture",
                      text);
        return -1;
    }
    if (drop_widen(d, err, errlen) < 0)
        return -1;
    d->ncaps = pattern_capture_count(d->pat);
    for (size_t i = 0; i < d->ncaps; i++) {
        size_t len, wlen, w, nw = pattern_capture_count(r->when);
        const char *name = pattern_capture_name(d->pat, i, &len);
        for (w = 0; w < nw; w++) {
            const char *wname = pattern_capture_name(r->when, w, &wlen);
            if (wlen == len && memcmp(wname, name, len) == 0)
                break;
        }
        if (w == nw) {
            rules_set_err(err, errlen, "drop: '%s' uses capture '%.*s' that when lacks", text,
                          (int)len, name);
            return -1;
        }
        d->from[i] = (uint8_t)w;
        d->has_stop[i] = pattern_capture_stop(d->pat, i, &d->stop[i]);
    }
    d->ident = hash_field(hash_field(hash_field(HASH_FNV64_OFFSET, r->name, strlen(r->name)),
                                     r->when_text, strlen(r->when_text)),
                          text, strlen(text));
    return 0;
}

int invalidate_rule_fill(struct irule *v, const struct policy_invalidate_rule *r, char *err,
                         size_t errlen)
{
    strcpy(v->name, r->name);
    if (rules_compile("when", r->when, &v->when, err, errlen) < 0 ||
        check_filter_init(&v->filter, r->commands, r->commands ? r->ncommands : 0,
                          COMMAND_CLASS_WRITE, err, errlen) < 0)
        return -1;
    if (r->drop == NULL || r->ndrop == 0) {
        rules_set_err(err, errlen, "drop: required");
        return -1;
    }
    v->when_text = rules_strdup(r->when);
    v->drops = calloc(r->ndrop, sizeof(*v->drops));
    if (v->when_text == NULL || v->drops == NULL) {
        rules_set_err(err, errlen, "drop: out of memory");
        return -1;
    }
    for (; v->ndrops < r->ndrop; v->ndrops++)
        if (drop_fill(&v->drops[v->ndrops], v, r->drop[v->ndrops], err, errlen) < 0) {
            v->ndrops++; /* freed with the rule */
            return -1;
        }
    return 0;
}

void invalidate_rule_free(struct irule *r)
{
    free(r->when_text);
    pattern_destroy(&r->when);
    free(r->filter.names);
    for (size_t i = 0; i < r->ndrops; i++) {
        free(r->drops[i].text);
        pattern_destroy(&r->drops[i].pat);
        pattern_destroy(&r->drops[i].wide);
    }
    free(r->drops);
    free(r);
}

static int source_cmp(const void *a, const void *b)
{
    const struct source *x = a, *y = b;
    int c = memcmp(x->prefix, y->prefix, x->len < y->len ? x->len : y->len);

    return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

/* Keeps, of the sorted sources src[0..n), each cut to at most cut bytes,
 * those that no prefix kept before extends; returns how many. With apply
 * they are moved to the front of src (cut), else only counted. */
static size_t sources_merge(struct source *src, size_t n, size_t cut, bool apply)
{
    struct source last = {0};
    size_t kept = 0;

    for (size_t i = 0; i < n; i++) {
        struct source s = src[i];
        if (s.len > cut)
            s.len = cut;
        /* Sorted (and cutting keeps the order): whatever extends a kept
         * prefix follows it directly. */
        if (kept > 0 && last.len <= s.len && memcmp(last.prefix, s.prefix, last.len) == 0)
            continue;
        last = s;
        if (apply)
            src[kept] = s;
        kept++;
    }
    return kept;
}

int invalidate_sources_build(struct policy *p)
{
    size_t lo = 0, hi = 0;

    p->sources = calloc(p->ninval + 1, sizeof(*p->sources));
    if (p->sources == NULL)
        return -1;
    for (size_t i = 0; i < p->ninval; i++) {
        p->sources[i].len = pattern_literal_prefix(p->inval[i]->when, &p->sources[i].prefix);
        hi = p->sources[i].len > hi ? p->sources[i].len : hi;
    }
    qsort(p->sources, p->ninval, sizeof(*p->sources), source_cmp);
    /* The longest cut that leaves at most POLICY_SOURCES_MAX: cutting more
     * only ever leaves fewer, and a cut of 0 leaves one (""). */
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;
        if (sources_merge(p->sources, p->ninval, mid, false) <= POLICY_SOURCES_MAX)
            lo = mid;
        else
            hi = mid - 1;
    }
    p->nsources = sources_merge(p->sources, p->ninval, lo, true);
    return 0;
}

/* ---- stamps and firing ---------------------------------------------------- */

struct stamping {
    const struct policy *p;
    const char *key;
    size_t klen;
    struct policy_stamp *out;
    size_t max, n;
};

static void stamp_put(struct stamping *s, uint32_t slot)
{
    if (s->n < s->max)
        s->out[s->n] =
            (struct policy_stamp){slot, __atomic_load_n(&s->p->gens[slot], __ATOMIC_RELAXED)};
    s->n++;
}

/* pattern_set_each callback over the widened drop patterns: the key may
 * match an expansion of the drop, so it depends on the rule-wide target, and
 * on the target of its values when the drop binds them. */
static bool stamp_drop(void *arg, void *value, const struct pattern_capture *wide_caps)
{
    struct stamping *s = arg;
    const struct drop *d = value;
    struct pattern_capture caps[PATTERN_MAX_CAPTURES];
    uint64_t h = d->ident ^ VALUE_TAG;

    (void)wide_caps;
    if (pattern_match(d->pat, s->key, s->klen, caps)) {
        for (size_t i = 0; i < d->ncaps; i++)
            h = hash_field(h, s->key + caps[i].off, caps[i].len);
        stamp_put(s, stamp_slot(h));
    }
    stamp_put(s, stamp_slot(d->ident));
    return false;
}

size_t policy_stamp(const struct policy *p, const char *key, size_t klen, struct policy_stamp *out,
                    size_t max)
{
    struct stamping s = {p, key, klen, out, max, 0};

    if (p->built && p->ninval > 0)
        pattern_set_each(p->dset, key, klen, stamp_drop, &s);
    return s.n;
}

bool policy_stamps_current(const struct policy *p, const struct policy_stamp *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (__atomic_load_n(&p->gens[s[i].slot & (GEN_SLOTS - 1)], __ATOMIC_RELAXED) != s[i].gen)
            return false;
    return true;
}

struct firing {
    struct policy *p;
    const char *key;
    const struct cmd_query *q; /* NULL: from tracking, every rule */
    size_t fired;
};

/* Bumps the target of drop d for the values captured by when. */
static void drop_fire(struct policy *p, const struct drop *d, const char *key,
                      const struct pattern_capture *caps)
{
    uint64_t h = d->ident ^ VALUE_TAG;
    bool exact = true;

    for (size_t i = 0; i < d->ncaps; i++) {
        const struct pattern_capture *c = &caps[d->from[i]];
        if (d->has_stop[i] && memchr(key + c->off, d->stop[i], c->len) != NULL)
            exact = false;
        h = hash_field(h, key + c->off, c->len);
    }
    /* read without the lock by policy_stamps_current */
    __atomic_fetch_add(&p->gens[exact ? stamp_slot(h) : stamp_slot(d->ident)], 1, __ATOMIC_RELAXED);
}

/* pattern_set_each callback over the when patterns: every rule fires. */
static bool fire_rule(void *arg, void *value, const struct pattern_capture *caps)
{
    struct firing *f = arg;
    struct irule *r = value;

    if (f->q != NULL && !check_filter_match(&r->filter, f->q))
        return false;
    for (size_t i = 0; i < r->ndrops; i++)
        drop_fire(f->p, &r->drops[i], f->key, caps);
    r->stats->invalidations++;
    f->fired++;
    return false;
}

size_t policy_on_write(struct policy *p, const char *key, size_t klen, const char *command,
                       uint64_t now_ms)
{
    struct cmd_query q;
    struct firing f = {p, key, NULL, 0};
    struct crule *c;

    if (!p->built || (p->ninval == 0 && !p->counts_writes && p->nmods == 0))
        return 0;
    if (command != NULL) {
        check_query_write(&q, command);
        f.q = &q;
    }
    policy_hold(p);
    if (p->ninval > 0)
        pattern_set_each(p->wset, key, klen, fire_rule, &f);
    c = p->counts_writes ? pattern_set_first(p->cset, key, klen, NULL) : NULL;
    if (c != NULL && c->writes != NULL)
        window_add(c->writes, key, klen, now_ms);
    for (size_t i = 0; i < p->nmods; i++)
        if (p->mods[i].mod->on_write != NULL)
            p->mods[i].mod->on_write(p->mods[i].state, key, klen, command);
    policy_release(p);
    return f.fired;
}

size_t policy_source_count(const struct policy *p)
{
    return p->nsources;
}

const char *policy_source(const struct policy *p, size_t i, size_t *len)
{
    *len = p->sources[i].len;
    return p->sources[i].prefix;
}

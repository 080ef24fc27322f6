/* pattern.c - Redis globs with named captures, and a prefix index over them.
 *
 * A pattern compiles to an array of ops, one per matching item. Matching walks
 * ops and key together; on a mismatch it returns to the last '*' and lets it
 * take one more byte. Everything between two stars is deterministic (a
 * capture stops at the first byte equal to its stop byte), and where such a
 * run ends never decreases as its start moves right, so returning to earlier
 * stars cannot help: the classic two-pointer glob algorithm stays correct.
 */
#include "policy/pattern.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/lib/hash.h"

enum op_kind_e { OP_LIT, OP_ANY, OP_STAR, OP_CLASS, OP_CAPTURE };

struct pattern_op {
    uint8_t kind;
    uint8_t byte;     /* OP_LIT: the byte; OP_CAPTURE: the stop byte */
    bool has_stop;    /* OP_CAPTURE: false when it ends the pattern */
    uint8_t cap;      /* OP_CAPTURE: capture index */
    uint8_t bits[32]; /* OP_CLASS: member bytes, negation applied */
};

struct pattern_name {
    size_t off; /* of the name in text, after '{' */
    size_t len;
};

struct pattern {
    struct pattern_op *ops;
    size_t nops;
    char *text; /* copy of the source, for pattern_expand */
    size_t text_len;
    char *prefix; /* unescaped leading literal bytes */
    size_t prefix_len;
    struct pattern_name names[PATTERN_MAX_CAPTURES];
    size_t ncaps;
};

/* ---- compile ----------------------------------------------------------------- */

static void class_set(struct pattern_op *op, unsigned lo, unsigned hi)
{
    if (lo > hi) {
        unsigned t = lo;
        lo = hi;
        hi = t;
    }
    for (unsigned c = lo; c <= hi; c++)
        op->bits[c >> 3] |= (uint8_t)(1u << (c & 7));
}

/* Parses a class whose '[' is at t[i] into op, as stringmatchlen reads it.
 * Returns the index of its ']', or len when it is unterminated. */
static size_t compile_class(const unsigned char *t, size_t len, size_t i, struct pattern_op *op)
{
    bool neg;

    op->kind = OP_CLASS;
    i++;
    neg = i < len && t[i] == '^';
    if (neg)
        i++;
    for (; i < len && t[i] != ']'; i++) {
        if (t[i] == '\\' && len - i >= 2) {
            i++;
            class_set(op, t[i], t[i]);
        } else if (len - i >= 3 && t[i + 1] == '-') {
            class_set(op, t[i], t[i + 2]);
            i += 2;
        } else {
            class_set(op, t[i], t[i]);
        }
    }
    if (neg)
        for (size_t b = 0; b < sizeof(op->bits); b++)
            op->bits[b] = (uint8_t)~op->bits[b];
    return i;
}

static bool name_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Parses a capture whose '{' is at t[i] into op and p->names. Returns the
 * index of its '}', or 0 with err set. */
static size_t compile_capture(struct pattern *p, size_t i, struct pattern_op *op, char *err,
                              size_t errlen)
{
    const char *t = p->text, *why = NULL;
    size_t start = i + 1, end = start;

    while (end < p->text_len && name_byte((unsigned char)t[end]))
        end++;
    if (end >= p->text_len)
        why = "unterminated '{'";
    else if (t[end] != '}')
        why = "bad byte in capture name";
    else if (end == start)
        why = "empty capture name";
    else if (end - start > PATTERN_NAME_MAX)
        why = "capture name too long";
    else if (p->ncaps == PATTERN_MAX_CAPTURES)
        why = "too many captures";
    for (size_t c = 0; why == NULL && c < p->ncaps; c++)
        if (p->names[c].len == end - start &&
            memcmp(t + p->names[c].off, t + start, end - start) == 0)
            why = "duplicate capture name";
    if (why != NULL) {
        snprintf(err, errlen, "%s at offset %zu", why, i);
        return 0;
    }
    op->kind = OP_CAPTURE;
    op->cap = (uint8_t)p->ncaps;
    p->names[p->ncaps].off = start;
    p->names[p->ncaps++].len = end - start;
    return end;
}

/* Fills p->ops from p->text. Returns 0, or -1 with err set. */
static int compile_ops(struct pattern *p, char *err, size_t errlen)
{
    const unsigned char *t = (const unsigned char *)p->text;
    size_t len = p->text_len;

    for (size_t i = 0; i < len; i++) {
        struct pattern_op *op = &p->ops[p->nops++];
        memset(op, 0, sizeof(*op));
        if (t[i] == '*') {
            op->kind = OP_STAR;
        } else if (t[i] == '?') {
            op->kind = OP_ANY;
        } else if (t[i] == '[') {
            size_t at = i;
            i = compile_class(t, len, i, op);
            if (i == len) {
                snprintf(err, errlen, "unterminated '[' at offset %zu", at);
                return -1;
            }
        } else if (t[i] == '{') {
            i = compile_capture(p, i, op, err, errlen);
            if (i == 0)
                return -1;
        } else if (t[i] == '}') {
            snprintf(err, errlen, "unbalanced '}' at offset %zu", i);
            return -1;
        } else {
            if (t[i] == '\\' && i + 1 < len)
                i++;
            op->kind = OP_LIT;
            op->byte = t[i];
        }
    }
    return 0;
}

/* Gives each capture its stop byte and the pattern its literal prefix.
 * Returns 0, or -1 with err set. */
static int compile_finish(struct pattern *p, char *err, size_t errlen)
{
    for (size_t i = 0; i < p->nops; i++) {
        struct pattern_op *op = &p->ops[i];
        if (op->kind != OP_CAPTURE || i + 1 == p->nops)
            continue;
        if (p->ops[i + 1].kind != OP_LIT) {
            const struct pattern_name *n = &p->names[op->cap];
            snprintf(err, errlen,
                     "capture '%.*s' must be followed by a literal byte or end the pattern",
                     (int)n->len, p->text + n->off);
            return -1;
        }
        op->has_stop = true;
        op->byte = p->ops[i + 1].byte;
    }
    while (p->prefix_len < p->nops && p->ops[p->prefix_len].kind == OP_LIT) {
        p->prefix[p->prefix_len] = (char)p->ops[p->prefix_len].byte;
        p->prefix_len++;
    }
    return 0;
}

struct pattern *pattern_compile(const char *text, size_t len, char *err, size_t errlen)
{
    struct pattern *p = calloc(1, sizeof(*p));

    if (p == NULL)
        goto oom;
    p->ops = calloc(len + 1, sizeof(*p->ops));
    p->text = malloc(len + 1);
    p->prefix = malloc(len + 1);
    if (p->ops == NULL || p->text == NULL || p->prefix == NULL)
        goto oom;
    memcpy(p->text, text, len);
    p->text[len] = '\0';
    p->text_len = len;
    if (compile_ops(p, err, errlen) < 0 || compile_finish(p, err, errlen) < 0)
        goto fail;
    return p;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    pattern_destroy(&p);
    return NULL;
}

void pattern_destroy(struct pattern **p)
{
    if (*p == NULL)
        return;
    free((*p)->ops);
    free((*p)->text);
    free((*p)->prefix);
    free(*p);
    *p = NULL;
}

/* ---- match ------------------------------------------------------------------- */

/* Matches op at key[ki..klen). Returns whether it does; sets *next to the
 * index after what it took. */
static bool op_step(const struct pattern_op *op, const unsigned char *k, size_t klen, size_t ki,
                    size_t *next, struct pattern_capture *caps)
{
    const unsigned char *stop;

    if (ki >= klen)
        return false;
    switch (op->kind) {
    case OP_LIT:
        *next = ki + 1;
        return k[ki] == op->byte;
    case OP_ANY:
        *next = ki + 1;
        return true;
    case OP_CLASS:
        *next = ki + 1;
        return (op->bits[k[ki] >> 3] >> (k[ki] & 7)) & 1;
    default: /* OP_CAPTURE */
        *next = klen;
        if (op->has_stop) {
            stop = memchr(k + ki, op->byte, klen - ki);
            if (stop == NULL || stop == k + ki)
                return false;
            *next = (size_t)(stop - k);
        }
        caps[op->cap].off = ki;
        caps[op->cap].len = *next - ki;
        return true;
    }
}

bool pattern_match(const struct pattern *p, const char *key, size_t klen,
                   struct pattern_capture *caps)
{
    const unsigned char *k = (const unsigned char *)key;
    struct pattern_capture got[PATTERN_MAX_CAPTURES] = {{0}};
    size_t pi = 0, ki = 0, star_pi = SIZE_MAX, star_ki = 0, next;

    for (;;) {
        if (pi < p->nops && p->ops[pi].kind == OP_STAR) {
            star_pi = pi++;
            star_ki = ki;
            if (pi == p->nops)
                break; /* a trailing '*' takes the rest */
            continue;
        }
        if (pi < p->nops && op_step(&p->ops[pi], k, klen, ki, &next, got)) {
            pi++;
            ki = next;
            continue;
        }
        if (pi == p->nops && ki == klen)
            break;
        if (star_pi == SIZE_MAX || star_ki >= klen)
            return false;
        pi = star_pi + 1;
        ki = ++star_ki;
    }
    if (caps != NULL) {
        for (size_t c = 0; c < PATTERN_MAX_CAPTURES; c++) {
            caps[c] = got[c];
            caps[c].name = c < p->ncaps ? p->text + p->names[c].off : NULL;
            caps[c].name_len = c < p->ncaps ? p->names[c].len : 0;
        }
    }
    return true;
}

size_t pattern_literal_prefix(const struct pattern *p, const char **prefix)
{
    *prefix = p->prefix;
    return p->prefix_len;
}

size_t pattern_capture_count(const struct pattern *p)
{
    return p->ncaps;
}

const char *pattern_capture_name(const struct pattern *p, size_t i, size_t *len)
{
    *len = p->names[i].len;
    return p->text + p->names[i].off;
}

/* The op of capture i, or NULL. */
static const struct pattern_op *capture_op(const struct pattern *p, size_t i)
{
    for (size_t k = 0; k < p->nops; k++)
        if (p->ops[k].kind == OP_CAPTURE && p->ops[k].cap == i)
            return &p->ops[k];
    return NULL;
}

bool pattern_capture_stop(const struct pattern *p, size_t i, unsigned char *stop)
{
    const struct pattern_op *op = capture_op(p, i);

    if (op == NULL || !op->has_stop)
        return false;
    *stop = op->byte;
    return true;
}

bool pattern_captures_anchored(const struct pattern *p)
{
    const struct pattern_op *last = p->ncaps ? capture_op(p, p->ncaps - 1) : NULL;

    for (const struct pattern_op *op = p->ops; last != NULL && op < last; op++)
        if (op->kind != OP_LIT && op->kind != OP_CAPTURE)
            return false;
    return true;
}

/* ---- expand ------------------------------------------------------------------ */

static const struct pattern_capture *capture_find(const struct pattern_capture *caps,
                                                  const char *name, size_t len)
{
    for (size_t c = 0; caps != NULL && c < PATTERN_MAX_CAPTURES; c++)
        if (caps[c].name != NULL && caps[c].name_len == len && memcmp(caps[c].name, name, len) == 0)
            return &caps[c];
    return NULL;
}

/* Appends src[0..n) to out at *at, with glob-special bytes escaped when
 * escape is set. Returns 0, or -1 when out (keeping room for a NUL) is full. */
static int out_put(char *out, size_t outlen, size_t *at, const char *src, size_t n, bool escape)
{
    for (size_t i = 0; i < n; i++) {
        bool special = escape && src[i] != '\0' && strchr("*?[]\\{}", src[i]) != NULL;
        if (*at + special + 1 >= outlen)
            return -1;
        if (special)
            out[(*at)++] = '\\';
        out[(*at)++] = src[i];
    }
    return 0;
}

/* p's text with each capture replaced: by its value in key (escaped) when
 * caps is given, else by '*'. Returns as pattern_expand does. */
static int substitute(const struct pattern *p, const struct pattern_capture *caps, const char *key,
                      char *out, size_t outlen)
{
    size_t at = 0, pos = 0;

    if (outlen == 0)
        return PATTERN_ENOSPACE;
    for (size_t c = 0; c < p->ncaps; c++) {
        const struct pattern_name *n = &p->names[c];
        const struct pattern_capture *v =
            caps != NULL ? capture_find(caps, p->text + n->off, n->len) : NULL;
        if (caps != NULL && v == NULL)
            return PATTERN_ENOCAP;
        if (out_put(out, outlen, &at, p->text + pos, n->off - 1 - pos, false) < 0 ||
            (v != NULL ? out_put(out, outlen, &at, key + v->off, v->len, true)
                       : out_put(out, outlen, &at, "*", 1, false)) < 0)
            return PATTERN_ENOSPACE;
        pos = n->off + n->len + 1;
    }
    if (out_put(out, outlen, &at, p->text + pos, p->text_len - pos, false) < 0 || at > INT32_MAX)
        return PATTERN_ENOSPACE;
    out[at] = '\0';
    return (int)at;
}

int pattern_expand(const struct pattern *p, const struct pattern_capture *caps, const char *key,
                   char *out, size_t outlen)
{
    return substitute(p, caps, key, out, outlen);
}

int pattern_widen(const struct pattern *p, char *out, size_t outlen)
{
    return substitute(p, NULL, NULL, out, outlen);
}

/* ---- set --------------------------------------------------------------------- */

struct set_entry {
    const struct pattern *pat;
    void *value;
};

/* One distinct literal prefix: its members are entry indices, ascending. */
struct set_bucket {
    uint64_t hash;
    const char *prefix; /* borrowed from a member's pattern */
    size_t len;
    size_t first; /* into members */
    size_t count;
    bool used;
};

struct pattern_set {
    struct set_entry *entries;
    size_t n, cap;
    bool built;
    size_t *members;          /* entry indices grouped by bucket */
    struct set_bucket *table; /* open addressing, power-of-two size */
    size_t mask;
    size_t *lens; /* distinct prefix lengths, ascending */
    size_t nlens;
};

/* Hashes key[*at, len) on from h and moves *at to len: the prefixes of one
 * key share their FNV-1a state, each byte hashed once. */
static uint64_t prefix_hash(uint64_t h, const char *key, size_t *at, size_t len)
{
    if (*at < len) {
        h = hash_fnv1a64_continue(h, key + *at, len - *at);
        *at = len;
    }
    return h;
}

struct pattern_set *pattern_set_create(void)
{
    return calloc(1, sizeof(struct pattern_set));
}

void pattern_set_destroy(struct pattern_set **set)
{
    if (*set == NULL)
        return;
    free((*set)->entries);
    free((*set)->members);
    free((*set)->table);
    free((*set)->lens);
    free(*set);
    *set = NULL;
}

int pattern_set_add(struct pattern_set *set, const struct pattern *pattern, void *value)
{
    if (set->built)
        return -1;
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 16;
        struct set_entry *e = realloc(set->entries, cap * sizeof(*e));
        if (e == NULL)
            return -1;
        set->entries = e;
        set->cap = cap;
    }
    set->entries[set->n].pat = pattern;
    set->entries[set->n++].value = value;
    return 0;
}

struct sort_item {
    const char *prefix;
    size_t len;
    size_t idx;
};

static int sort_cmp(const void *a, const void *b)
{
    const struct sort_item *x = a, *y = b;
    int c;

    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    c = memcmp(x->prefix, y->prefix, x->len);
    if (c != 0)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Puts the group items[first..first+count) into the hash table and, when its
 * length is new, into lens. */
static void set_insert(struct pattern_set *set, const struct sort_item *items, size_t first,
                       size_t count)
{
    uint64_t h = hash_fnv1a64(items[first].prefix, items[first].len);
    size_t slot = (size_t)h & set->mask;

    while (set->table[slot].used)
        slot = (slot + 1) & set->mask;
    set->table[slot] =
        (struct set_bucket){h, items[first].prefix, items[first].len, first, count, true};
    if (set->nlens == 0 || set->lens[set->nlens - 1] != items[first].len)
        set->lens[set->nlens++] = items[first].len;
}

int pattern_set_build(struct pattern_set *set)
{
    size_t size = 16;
    struct sort_item *items = calloc(set->n + 1, sizeof(*items));

    while (size < 2 * set->n)
        size *= 2;
    set->members = calloc(set->n + 1, sizeof(*set->members));
    set->table = calloc(size, sizeof(*set->table));
    set->lens = calloc(set->n + 1, sizeof(*set->lens));
    if (items == NULL || set->members == NULL || set->table == NULL || set->lens == NULL) {
        free(items);
        return -1;
    }
    set->mask = size - 1;
    for (size_t i = 0; i < set->n; i++) {
        items[i].len = pattern_literal_prefix(set->entries[i].pat, &items[i].prefix);
        items[i].idx = i;
    }
    qsort(items, set->n, sizeof(*items), sort_cmp);
    for (size_t i = 0, first = 0; i < set->n; i++) {
        set->members[i] = items[i].idx;
        if (i + 1 == set->n || items[first].len != items[i + 1].len ||
            memcmp(items[first].prefix, items[i + 1].prefix, items[first].len) != 0) {
            set_insert(set, items, first, i + 1 - first);
            first = i + 1;
        }
    }
    free(items);
    set->built = true;
    return 0;
}

static const struct set_bucket *set_lookup(const struct pattern_set *set, uint64_t h,
                                           const char *key, size_t len)
{
    for (size_t slot = (size_t)h & set->mask; set->table[slot].used;
         slot = (slot + 1) & set->mask) {
        const struct set_bucket *b = &set->table[slot];
        if (b->hash == h && b->len == len && memcmp(b->prefix, key, len) == 0)
            return b;
    }
    return NULL;
}

void *pattern_set_first(const struct pattern_set *set, const char *key, size_t klen,
                        struct pattern_capture *caps)
{
    uint64_t h = HASH_FNV64_OFFSET;
    size_t best = SIZE_MAX, at = 0;

    if (!set->built)
        return NULL;
    for (size_t l = 0; l < set->nlens && set->lens[l] <= klen; l++) {
        const struct set_bucket *b;
        h = prefix_hash(h, key, &at, set->lens[l]);
        b = set_lookup(set, h, key, set->lens[l]);
        for (size_t m = 0; b != NULL && m < b->count; m++) {
            size_t idx = set->members[b->first + m];
            if (idx >= best)
                break;
            if (pattern_match(set->entries[idx].pat, key, klen, caps))
                best = idx;
        }
    }
    return best == SIZE_MAX ? NULL : set->entries[best].value;
}

/* ---- each -------------------------------------------------------------------- */

/* Prefix groups merged on the stack; more groups than this (a key with this
 * many distinct rule-prefix lengths before it) take the slower walk. */
#define SET_EACH_HEADS 32

struct each_walk {
    const struct pattern_set *set;
    const char *key;
    size_t klen;
    pattern_each_fn fn;
    void *arg;
    size_t calls;
};

/* Matches entry idx against the key and calls fn on a match. Returns true
 * when fn asks to stop. */
static bool each_visit(struct each_walk *w, size_t idx)
{
    struct pattern_capture caps[PATTERN_MAX_CAPTURES];
    const struct set_entry *e = &w->set->entries[idx];

    if (!pattern_match(e->pat, w->key, w->klen, caps))
        return false;
    w->calls++;
    return w->fn(w->arg, e->value, caps);
}

/* The groups whose prefix is a prefix of the key, in prefix-length order:
 * up to max in out. Returns how many there are (possibly more than max). */
static size_t each_groups(const struct pattern_set *set, const char *key, size_t klen,
                          const struct set_bucket **out, size_t max)
{
    uint64_t h = HASH_FNV64_OFFSET;
    size_t n = 0, at = 0;

    for (size_t l = 0; l < set->nlens && set->lens[l] <= klen; l++) {
        const struct set_bucket *b;
        h = prefix_hash(h, key, &at, set->lens[l]);
        b = set_lookup(set, h, key, set->lens[l]);
        if (b != NULL && n < max)
            out[n] = b;
        n += b != NULL;
    }
    return n;
}

/* The smallest member of group b above after (SIZE_MAX for none yet), or
 * SIZE_MAX. Members are ascending: binary search. */
static size_t group_next(const struct pattern_set *set, const struct set_bucket *b, size_t after)
{
    size_t lo = 0, hi = b->count;

    while (after != SIZE_MAX && lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (set->members[b->first + mid] <= after)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < b->count ? set->members[b->first + lo] : SIZE_MAX;
}

/* The walk for more than SET_EACH_HEADS groups: finds the groups again for
 * each candidate. O(D * (P + log n)) per candidate, no memory. */
static void each_slow(struct each_walk *w)
{
    size_t after = SIZE_MAX;

    for (;;) {
        const struct set_bucket *b;
        uint64_t h = HASH_FNV64_OFFSET;
        size_t next = SIZE_MAX, at = 0;
        for (size_t l = 0; l < w->set->nlens && w->set->lens[l] <= w->klen; l++) {
            h = prefix_hash(h, w->key, &at, w->set->lens[l]);
            b = set_lookup(w->set, h, w->key, w->set->lens[l]);
            size_t idx = b != NULL ? group_next(w->set, b, after) : SIZE_MAX;
            if (idx < next)
                next = idx;
        }
        if (next == SIZE_MAX || each_visit(w, next))
            return;
        after = next;
    }
}

size_t pattern_set_each(const struct pattern_set *set, const char *key, size_t klen,
                        pattern_each_fn fn, void *arg)
{
    const struct set_bucket *heads[SET_EACH_HEADS];
    size_t pos[SET_EACH_HEADS] = {0}, n;
    struct each_walk w = {set, key, klen, fn, arg, 0};

    if (!set->built)
        return 0;
    n = each_groups(set, key, klen, heads, SET_EACH_HEADS);
    if (n > SET_EACH_HEADS) {
        each_slow(&w);
        return w.calls;
    }
    for (;;) {
        size_t best = SIZE_MAX, g = 0;
        for (size_t i = 0; i < n; i++) {
            size_t idx =
                pos[i] < heads[i]->count ? set->members[heads[i]->first + pos[i]] : SIZE_MAX;
            if (idx < best) {
                best = idx;
                g = i;
            }
        }
        if (best == SIZE_MAX)
            break;
        pos[g]++;
        if (each_visit(&w, best))
            break;
    }
    return w.calls;
}

/* patterns.c - the prefix tree of key segments behind patterns.h. */
#include "proxy/tools/patterns.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEP_END  0  /* the segment ends the key */
#define SEG_COST 9  /* bound of a capture's text ("{id999}") and its separator */
#define UUID_LEN 36 /* 8-4-4-4-12 */

/* A reservoir of sampled keys. */
struct sample_set {
    char **keys;
    size_t *lens;
    size_t n;
    uint64_t seen;
};

/* One step: a literal segment or a capture, with the separator after it. */
struct node {
    char *text; /* literal bytes (owned), NULL for a capture */
    size_t len;
    unsigned char sep; /* ':' '/' '.' '-' or SEP_END */
    bool capture;
    bool dashed; /* a capture that held a UUID: it may contain '-' */
    bool folded; /* literal segments below go to captures */
    size_t cost; /* bound of the pattern text up to and with this node */
    struct node **kids;
    size_t nkids, capkids, nliterals;
    uint64_t keys;     /* keys ending here (sep SEP_END) */
    uint64_t overflow; /* keys stopped here by the node cap */
    struct sample_set ends, over;
};

struct patterns {
    struct patterns_options o;
    struct node root;
    size_t nnodes;
    uint64_t keys, overflowed;
    uint64_t rng;
};

/* A segment of a key being cut. */
struct token {
    const char *seg;
    size_t len;
    unsigned char sep;
    bool id;
    bool dashed;
};

static bool is_sep(unsigned char c)
{
    return c == ':' || c == '/' || c == '.' || c == '-';
}

static bool is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Whether s[0..len) starts with a UUID that ends there or at a separator. */
static bool is_uuid(const char *s, size_t len)
{
    if (len < UUID_LEN || (len > UUID_LEN && !is_sep((unsigned char)s[UUID_LEN])))
        return false;
    for (size_t i = 0; i < UUID_LEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !is_hex((unsigned char)s[i]))
            return false;
    }
    return true;
}

/* Whether seg is an id: digits only, or 8+ hex digits with a digit. */
static bool is_id(const char *seg, size_t len)
{
    bool digits = len > 0, hex = len >= 8, some_digit = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)seg[i];
        bool digit = c >= '0' && c <= '9';
        digits = digits && digit;
        hex = hex && is_hex(c);
        some_digit = some_digit || digit;
    }
    return digits || (hex && some_digit);
}

/* Cuts the next token of key[*pos..len) and moves *pos past it. */
static void next_token(const char *key, size_t len, size_t *pos, struct token *t)
{
    const char *s = key + *pos;
    size_t rest = len - *pos, n = 0;
    t->dashed = is_uuid(s, rest);
    if (t->dashed) {
        n = UUID_LEN;
    } else {
        while (n < rest && !is_sep((unsigned char)s[n]))
            n++;
    }
    t->seg = s;
    t->len = n;
    t->sep = n < rest ? (unsigned char)s[n] : SEP_END;
    t->id = t->dashed || is_id(s, n);
    *pos += n < rest ? n + 1 : n;
}

static uint64_t rng_next(struct patterns *p)
{
    p->rng ^= p->rng << 13;
    p->rng ^= p->rng >> 7;
    p->rng ^= p->rng << 17;
    return p->rng;
}

static void samples_free(struct sample_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->keys[i]);
    free(s->keys);
    free(s->lens);
    memset(s, 0, sizeof(*s));
}

/* Offers key to s (reservoir sampling). Returns 0, or -1 out of memory. */
static int samples_offer(struct patterns *p, struct sample_set *s, const char *key, size_t len)
{
    size_t cap = p->o.samples, slot;
    s->seen++;
    if (cap == 0)
        return 0;
    if (s->keys == NULL) {
        s->keys = calloc(cap, sizeof(*s->keys));
        s->lens = calloc(cap, sizeof(*s->lens));
        if (s->keys == NULL || s->lens == NULL) {
            samples_free(s);
            return -1;
        }
    }
    if (s->n < cap) {
        slot = s->n;
    } else {
        slot = (size_t)(rng_next(p) % s->seen);
        if (slot >= cap)
            return 0;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, key, len);
    copy[len] = '\0';
    if (slot < s->n)
        free(s->keys[slot]);
    else
        s->n++;
    s->keys[slot] = copy;
    s->lens[slot] = len;
    return 0;
}

/* Moves src's samples into dst while it has room; frees the others. */
static void samples_merge(struct patterns *p, struct sample_set *dst, struct sample_set *src)
{
    if (dst->keys == NULL && src->keys != NULL) {
        uint64_t seen = dst->seen;
        *dst = *src;
        dst->seen += seen;
        memset(src, 0, sizeof(*src));
        return;
    }
    for (size_t i = 0; i < src->n; i++) {
        if (dst->n < p->o.samples) {
            dst->keys[dst->n] = src->keys[i];
            dst->lens[dst->n++] = src->lens[i];
            src->keys[i] = NULL;
        }
    }
    dst->seen += src->seen;
    samples_free(src);
}

static void node_free(struct patterns *p, struct node *n)
{
    for (size_t i = 0; i < n->nkids; i++)
        node_free(p, n->kids[i]);
    free(n->kids);
    free(n->text);
    samples_free(&n->ends);
    samples_free(&n->over);
    if (n != &p->root) {
        free(n);
        p->nnodes--;
    }
}

/* Appends kid to n's children. Returns 0 or -1. */
static int kid_push(struct node *n, struct node *kid)
{
    if (n->nkids == n->capkids) {
        size_t cap = n->capkids ? 2 * n->capkids : 4;
        struct node **kids = realloc(n->kids, cap * sizeof(*kids));
        if (kids == NULL)
            return -1;
        n->kids = kids;
        n->capkids = cap;
    }
    n->kids[n->nkids++] = kid;
    n->nliterals += !kid->capture;
    return 0;
}

/* Removes child i of n, keeping the others' order. */
static void kid_remove(struct node *n, size_t i)
{
    n->nliterals -= !n->kids[i]->capture;
    memmove(&n->kids[i], &n->kids[i + 1], (n->nkids - i - 1) * sizeof(*n->kids));
    n->nkids--;
}

/* The child of n matching the token's kind, text and separator, or -1. */
static ptrdiff_t kid_find(const struct node *n, bool capture, const char *seg, size_t len,
                          unsigned char sep)
{
    for (size_t i = 0; i < n->nkids; i++) {
        const struct node *k = n->kids[i];
        if (k->capture == capture && k->sep == sep &&
            (capture || (k->len == len && memcmp(k->text, seg, len) == 0)))
            return (ptrdiff_t)i;
    }
    return -1;
}

/* The cost of a segment in pattern text: escapes may double it; as a
 * capture it is at most SEG_COST, so folding never makes it longer. */
static size_t seg_cost(size_t len)
{
    return 2 * len + 1 > SEG_COST ? 2 * len + 1 : SEG_COST;
}

static int fold(struct patterns *p, struct node *n);

/* Merges src's counts, samples and subtree into dst and frees src. */
static int merge(struct patterns *p, struct node *dst, struct node *src)
{
    dst->keys += src->keys;
    dst->overflow += src->overflow;
    dst->dashed = dst->dashed || src->dashed;
    samples_merge(p, &dst->ends, &src->ends);
    samples_merge(p, &dst->over, &src->over);
    int rc = 0;
    while (src->nkids > 0 && rc == 0) {
        struct node *k = src->kids[0];
        kid_remove(src, 0);
        ptrdiff_t at = kid_find(dst, k->capture, k->text, k->len, k->sep);
        if (at >= 0)
            rc = merge(p, dst->kids[at], k);
        else if (kid_push(dst, k) < 0)
            rc = (node_free(p, k), -1);
    }
    node_free(p, src);
    if (rc == 0 && (dst->folded || dst->nliterals > p->o.fold_over) && dst->nliterals > 0)
        rc = fold(p, dst);
    return rc;
}

/* Folds n: each literal child becomes, or is merged into, the capture
 * child with its separator. No node is allocated. Returns 0 or -1. */
static int fold(struct patterns *p, struct node *n)
{
    n->folded = true;
    for (size_t i = 0; i < n->nkids;) {
        struct node *k = n->kids[i];
        if (k->capture) {
            i++;
            continue;
        }
        ptrdiff_t at = kid_find(n, true, NULL, 0, k->sep);
        if (at < 0) {
            free(k->text);
            k->text = NULL;
            k->len = 0;
            k->capture = true;
            n->nliterals--;
            i++;
            continue;
        }
        kid_remove(n, i);
        if (merge(p, n->kids[at < (ptrdiff_t)i ? at : at - 1], k) < 0)
            return -1;
    }
    return 0;
}

/* The child of n for t, made if missing; NULL when the node cap (or the
 * pattern length bound) stops it (*oom false) or memory runs out (*oom). */
static struct node *step(struct patterns *p, struct node *n, const struct token *t, bool *oom)
{
    *oom = false;
    bool capture = t->id || n->folded;
    ptrdiff_t at = kid_find(n, capture, t->seg, t->len, t->sep);
    if (at < 0 && !capture && n->nliterals >= p->o.fold_over) {
        if (fold(p, n) < 0)
            return (*oom = true, NULL);
        capture = true;
        at = kid_find(n, true, NULL, 0, t->sep);
    }
    if (at >= 0) {
        n->kids[at]->dashed = n->kids[at]->dashed || t->dashed;
        return n->kids[at];
    }
    size_t cost = n->cost + (capture ? SEG_COST : seg_cost(t->len));
    if (p->nnodes >= p->o.max_nodes || cost > PATTERNS_TEXT_MAX)
        return NULL;
    struct node *k = calloc(1, sizeof(*k));
    if (k == NULL || (!capture && (k->text = malloc(t->len + 1)) == NULL)) {
        free(k);
        return (*oom = true, NULL);
    }
    if (!capture)
        memcpy(k->text, t->seg, t->len);
    k->len = capture ? 0 : t->len;
    k->sep = t->sep;
    k->capture = capture;
    k->dashed = t->dashed;
    k->cost = cost;
    if (kid_push(n, k) < 0) {
        free(k->text);
        free(k);
        return (*oom = true, NULL);
    }
    p->nnodes++;
    return k;
}

struct patterns *patterns_create(const struct patterns_options *o)
{
    struct patterns *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    if (o != NULL)
        p->o = *o;
    if (p->o.fold_over == 0)
        p->o.fold_over = PATTERNS_FOLD_OVER;
    if (p->o.max_nodes == 0)
        p->o.max_nodes = PATTERNS_MAX_NODES;
    p->rng = p->o.seed ? p->o.seed : 0x9e3779b97f4a7c15ull;
    return p;
}

void patterns_destroy(struct patterns **p)
{
    if (p == NULL || *p == NULL)
        return;
    node_free(*p, &(*p)->root);
    free(*p);
    *p = NULL;
}

int patterns_add(struct patterns *p, const char *key, size_t len)
{
    struct node *n = &p->root;
    size_t pos = 0;
    for (;;) {
        struct token t;
        bool oom;
        next_token(key, len, &pos, &t);
        struct node *k = step(p, n, &t, &oom);
        if (oom)
            return -1;
        if (k == NULL) {
            if (samples_offer(p, &n->over, key, len) < 0)
                return -1;
            n->overflow++;
            p->overflowed++;
            break;
        }
        n = k;
        if (t.sep == SEP_END) {
            if (samples_offer(p, &n->ends, key, len) < 0)
                return -1;
            n->keys++;
            break;
        }
    }
    p->keys++;
    return 0;
}

/* The state of a walk: the pattern text so far. */
struct walk {
    patterns_each_fn fn;
    void *arg;
    size_t groups;
    char text[PATTERNS_TEXT_MAX + 2];
};

static void emit(struct walk *w, size_t len, size_t captures, uint64_t keys,
                 const struct sample_set *s, int overflow)
{
    w->text[len] = '\0';
    struct patterns_group g = {
        .pattern = w->text,
        .pattern_len = len,
        .keys = keys,
        .captures = captures,
        .overflow = overflow,
        .nsamples = s->n,
        .samples = (const char *const *)s->keys,
        .sample_lens = s->lens,
    };
    w->fn(w->arg, &g);
    w->groups++;
}

/* Appends n's own text at w->text[len]; returns the new length. */
static size_t node_text(struct walk *w, const struct node *n, size_t len, size_t captures)
{
    if (n->capture && n->dashed && n->sep == '-') {
        w->text[len++] = '*';
    } else if (n->capture) {
        if (captures == 1)
            len += (size_t)sprintf(w->text + len, "{id}");
        else
            len += (size_t)sprintf(w->text + len, "{id%zu}", captures);
    } else {
        for (size_t i = 0; i < n->len; i++) {
            if (strchr("*?[]\\{}", n->text[i]) != NULL && n->text[i] != '\0')
                w->text[len++] = '\\';
            w->text[len++] = n->text[i];
        }
    }
    if (n->sep != SEP_END)
        w->text[len++] = (char)n->sep;
    return len;
}

/* Visits n (whose text ends at w->text[len]): pass 0 literal children, pass
 * 1 captures followed by a separator, pass 2 captures ending the key. */
static void visit(struct walk *w, const struct node *n, size_t len, size_t captures)
{
    if (n->keys > 0)
        emit(w, len, captures, n->keys, &n->ends, 0);
    for (int pass = 0; pass < 3; pass++) {
        for (size_t i = 0; i < n->nkids; i++) {
            const struct node *k = n->kids[i];
            int kind = !k->capture ? 0 : k->sep != SEP_END ? 1 : 2;
            if (kind != pass)
                continue;
            size_t c = captures + k->capture;
            visit(w, k, node_text(w, k, len, c), c);
        }
    }
    if (n->overflow > 0) {
        w->text[len] = '*';
        emit(w, len + 1, captures + 1, n->overflow, &n->over, 1);
    }
}

size_t patterns_each(const struct patterns *p, patterns_each_fn fn, void *arg)
{
    struct walk *w = malloc(sizeof(*w));
    if (w == NULL)
        return 0;
    w->fn = fn;
    w->arg = arg;
    w->groups = 0;
    visit(w, &p->root, 0, 0);
    size_t groups = w->groups;
    free(w);
    return groups;
}

uint64_t patterns_keys(const struct patterns *p)
{
    return p->keys;
}

size_t patterns_nodes(const struct patterns *p)
{
    return p->nnodes;
}

uint64_t patterns_overflowed(const struct patterns *p)
{
    return p->overflowed;
}

/* patterns.h - groups a stream of keys into key patterns, as policy rules
 * write them (policy/pattern.h): "user:{id}:profile", "session:{id}".
 *
 * A key is cut into segments at the separators ':' '/' '.' '-'; each segment
 * with the separator after it (or the end of the key) is one step of a prefix
 * tree. A segment of digits only, of 8 or more hex digits with at least one
 * digit among them, or a UUID (8-4-4-4-12 hex digits, its dashes included) is
 * an id: it takes the node's capture child for that separator rather than a
 * literal child. A node with more than fold_over distinct literal children is
 * folded: its literal children are merged into the capture children (their
 * subtrees merged recursively, counts added) and every later literal segment
 * there goes to a capture too; so "user:alice:profile" with thousands of
 * other names becomes "user:{id}:profile".
 *
 * Memory is bounded by max_nodes: a key that needs a node past the cap is
 * counted at the deepest node it reached, whose pattern then gets an
 * overflow group "<prefix>*" (the literal bytes of the path, then '*').
 * Each group keeps a reservoir of up to samples keys (uniform over the keys
 * it counted, as far as folding allows: a merge keeps the first keys of each
 * reservoir), copied. Pure: no I/O.
 */
#ifndef NEARCACHE_PATTERNS_H
#define NEARCACHE_PATTERNS_H

#include <stddef.h>
#include <stdint.h>

#define PATTERNS_FOLD_OVER 64    /* default fold_over */
#define PATTERNS_MAX_NODES 20000 /* default max_nodes */
#define PATTERNS_TEXT_MAX  1024  /* longest pattern text; longer keys overflow */

struct patterns;

struct patterns_options {
    size_t fold_over; /* 0: PATTERNS_FOLD_OVER */
    size_t max_nodes; /* 0: PATTERNS_MAX_NODES */
    size_t samples;   /* keys kept per group; 0 keeps none */
    uint64_t seed;    /* of the reservoirs' choices; the same seed, the same samples */
};

/* One group, as patterns_each hands it out; every pointer is borrowed for
 * the call. pattern is NUL-terminated policy pattern text: literal bytes
 * escaped with '\' where the glob syntax needs it, captures named id, id2,
 * id3... in order; an id that may contain the separator after it (a UUID
 * before '-') is written '*' instead, so the pattern still matches. */
struct patterns_group {
    const char *pattern;
    size_t pattern_len;
    uint64_t keys;              /* keys counted in the group */
    size_t captures;            /* '{...}' and '*' in the pattern */
    int overflow;               /* 1: a "<prefix>*" group of keys past the node cap */
    size_t nsamples;            /* <= samples */
    const char *const *samples; /* the sampled keys, not NUL-terminated... */
    const size_t *sample_lens;  /* ...of these lengths */
};

/* Called by patterns_each for each group. */
typedef void (*patterns_each_fn)(void *arg, const struct patterns_group *g);

/* An empty tree (options copied; NULL options: the defaults without
 * samples), owned by the caller (patterns_destroy), or NULL when out of
 * memory. */
struct patterns *patterns_create(const struct patterns_options *o);

/* Frees *p (NULL allowed) and sets *p to NULL. */
void patterns_destroy(struct patterns **p);

/* Counts key[0..len) (any bytes) in its group. Returns 0, or -1 when out of
 * memory (the key is then not counted; the tree stays usable). */
int patterns_add(struct patterns *p, const char *key, size_t len);

/* Calls fn for every group, in an order fit for first-match rules: at each
 * node, literal children before capture children, a capture's longer
 * patterns before the one ending there, the overflow group last. Returns the
 * number of groups. */
size_t patterns_each(const struct patterns *p, patterns_each_fn fn, void *arg);

/* Keys counted so far. */
uint64_t patterns_keys(const struct patterns *p);

/* Nodes in the tree now (at most max_nodes). */
size_t patterns_nodes(const struct patterns *p);

/* Keys counted in overflow groups. */
uint64_t patterns_overflowed(const struct patterns *p);

#endif

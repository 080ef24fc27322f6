/* rules.h - the rule engine's private structures, shared by policy.c (rule
 * lists, building, cache rules), registry.c (the name table, counters,
 * fingerprints, reloads and statistics), check.c (validation) and
 * invalidate.c (invalidation rules). Not for use outside policy/.
 *
 * Ownership: a policy owns its rules, and each rule owns its strings,
 * patterns, filter names and windows; the *_text strings are the policy's
 * copies of the rule's patterns. Every rule's counters (stats) are a cell of
 * the policy's blocks of counters (registry.c).
 */
#ifndef NEARCACHE_POLICY_RULES_H
#define NEARCACHE_POLICY_RULES_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/pattern.h"
#include "policy/policy.h"
#include "policy/window.h"

struct filter_name {
    size_t len;
    char name[COMMAND_NAME_MAX + 1];
};

/* A command list: classes and lower-case names. Empty: every command. */
struct cmd_filter {
    unsigned classes;
    struct filter_name *names;
    size_t n;
};

/* What a command filter is matched against. */
struct cmd_query {
    const char *name; /* lower case, "container|sub" for a subcommand */
    size_t len;
    size_t container; /* length of "container" before '|', 0 without one */
    unsigned classes;
};

struct vrule {
    char name[POLICY_NAME_MAX + 1];
    char *keys_text;      /* NULL: every key */
    struct pattern *keys; /* "*" when keys_text is NULL */
    struct cmd_filter filter;
    policy_action_e action;
    int64_t max_key_length;
    int64_t max_value_size;
    char *reason;
    struct policy_rule_stats *stats;
};

struct crule {
    struct policy_cached pub; /* its stats: the rule's counters */
    char name[POLICY_NAME_MAX + 1];
    char *keys_text;
    struct pattern *keys;
    struct policy_cache_rule cfg; /* numbers only */
    struct window *admit;         /* admission window, when admit_reads > 1 */
    struct window *reads;         /* adaptive TTL windows */
    struct window *writes;
};

/* One drop pattern of an invalidation rule (see invalidate.c). */
struct drop {
    char *text;
    struct pattern *pat;
    struct pattern *wide; /* pat with its captures widened to '*' */
    uint64_t ident;       /* hash of rule name, when text and drop text */
    size_t ncaps;
    uint8_t from[PATTERN_MAX_CAPTURES]; /* drop capture i is when capture from[i] */
    bool has_stop[PATTERN_MAX_CAPTURES];
    unsigned char stop[PATTERN_MAX_CAPTURES];
};

struct irule {
    char name[POLICY_NAME_MAX + 1];
    char *when_text;
    struct pattern *when;
    struct cmd_filter filter;
    struct drop *drops;
    size_t ndrops;
    struct policy_rule_stats *stats;
};

struct module_slot {
    const struct policy_module *mod;
    void *state;
    struct policy_rule_stats *stats;
};

/* A slot of a policy's name table (registry.c): a rule by kind and position. */
struct name_slot {
    uint32_t hash;
    uint32_t ref; /* 0: empty; else 1 + (index within its kind << 2 | kind) */
};

/* What policy_take_over hands from the policy a reload replaces to its
 * successor, as policy_build found it: a rule's counters, the windows of a
 * cache rule. */
struct stats_move {
    struct policy_rule_stats *to;
    const struct policy_rule_stats *from;
};

struct window_move {
    struct crule *to, *from;
};

struct source; /* invalidate.c */

struct policy {
    struct policy_defaults defaults;
    struct vrule **validate;
    size_t nvalidate, cap_validate;
    struct crule **cache;
    size_t ncache, cap_cache;
    struct irule **inval;
    size_t ninval, cap_inval;
    struct module_slot *mods;
    size_t nmods, cap_mods;
    struct policy_rule_stats *validate_default;
    struct crule cache_default;
    /* the rules' counters, in blocks that never move, in the order of adds */
    struct policy_rule_stats **cells;
    size_t ncells, nblocks, cap_blocks;
    /* the names of the rules and modules by kind (not the default rules), an
     * open-addressing table: duplicates are refused at add, and a reload
     * finds a rule's namesake in the policy it replaces */
    struct name_slot *names;
    size_t names_cap, nnames;
    bool built;
    /* built by policy_build */
    struct pattern_set *vset, *cset, *wset, *dset;
    struct vrule **keyless; /* rules without keys, in order */
    size_t nkeyless;
    struct source *sources;
    size_t nsources;
    uint32_t *gens;     /* the generation table (invalidate.c) */
    bool empty;         /* policy_empty */
    bool validates;     /* rules, defaults or a module hook to check requests with */
    bool counts_writes; /* an adaptive cache rule */
    /* built over the policy a reload replaces, until policy_take_over */
    const struct policy *over;
    struct stats_move *stats_moves; /* from the rules' namesakes */
    size_t nstats_moves;
    struct window_move *window_moves; /* from the cache rules' twins that have windows */
    size_t nwindow_moves;
    /* policy_check's scratch: the sorted key offsets of a request */
    size_t *koffs;
    size_t cap_koffs;
    /* policy_share: consulted by several threads at once */
    bool shared;
    pthread_mutex_t lock; /* what the request path changes but its counters */
};

/* Counts one more in a rule's counter: an atomic add when shared. */
static inline void policy_count(const struct policy *p, uint64_t *counter)
{
    if (p->shared)
        __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
    else
        (*counter)++;
}

/* Holds the policy's lock when it is shared (nothing to do otherwise). */
static inline void policy_hold(struct policy *p)
{
    if (p->shared)
        pthread_mutex_lock(&p->lock);
}

static inline void policy_release(struct policy *p)
{
    if (p->shared)
        pthread_mutex_unlock(&p->lock);
}

/* policy_on_error with the lock held (policy_check). */
void policy_on_error_held(struct policy *p, const char *reply, size_t len);

/* ---- helpers for building rules (policy.c) ------------------------------- */

/* Writes the formatted one-line reason into err (nothing when errlen is 0). */
void rules_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A malloc'd copy of s, owned by the caller; NULL when out of memory. */
char *rules_strdup(const char *s);

/* Compiles text into *out (owned by the caller). Returns 0, or -1 with
 * "field: reason" in err ("field: required" when text is NULL). */
int rules_compile(const char *field, const char *text, struct pattern **out, char *err,
                  size_t errlen);

/* 0 when v >= least, else -1 with "field: must be <least> or more" in err. */
int rules_limit_check(const char *field, int64_t v, int64_t least, char *err, size_t errlen);

#endif

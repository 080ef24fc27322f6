/* policy.h - the rule engine: validation, cache and invalidation rules.
 *
 * A policy is built once from rules (config/policy_yaml.c reads them from YAML),
 * then consulted on the request path. Three lists, each in file order:
 *
 * Validation rules decide whether a request may be forwarded. For each key of
 * the request (key positions from proxy/keys.h) the first rule that applies
 * decides: a rule applies when its key pattern matches the key (a rule
 * without one matches every key) and its command list names the command or
 * its class (a rule without one names every command). A request without keys
 * (or whose keys cannot be told) is decided by the first rule without a key
 * pattern that names the command, else by the default action alone (no
 * limits). Actions: allow, deny, read-only (rejects commands that write the
 * key: a key its spec flags as written, or any key of a write command that
 * its spec does not flag as only read; keyless: any write command). An
 * allowing rule still enforces its limits: the
 * longest key and the largest value (every argument of a write command that
 * is not a key and not the command's name). A key no rule decides gets the
 * defaults: default_action and the default limits. A request is rejected when
 * any of its keys is; the first rejection in key order is reported. Then each
 * module's validate hook runs in order.
 *
 * Cache rules decide, for the key of a cacheable read, the first rule whose
 * pattern matches: cache or bypass, a fixed or adaptive TTL, admission after
 * N reads in a window, the largest reply cached and compression. A key no
 * rule matches gets the default rule: cached, cache.ttl, admitted at once.
 *
 * Invalidation rules fire on every write to a key that their `when` pattern
 * matches (through the proxy, and optionally only for listed commands; or
 * from a Redis tracking invalidation, where the command is unknown and every
 * matching rule fires): the local entries whose keys match a `drop` pattern,
 * with the captures of `when` substituted, become invalid. Every matching
 * rule fires, not only the first. This costs O(1) per firing whatever the
 * size of the tier: an entry is stamped when it is filled with the
 * generations of the invalidation targets its key falls in (policy_stamp),
 * firing bumps a generation, and a hit whose stamps are not current is a miss
 * (policy_stamps_current).
 *
 * Pure: no I/O and no clock; time is passed in as now_ms. A policy is used by
 * one thread at a time unless it is shared (policy_share: the request path's
 * functions may then be called from several threads at once), except that
 * policy_build may read the policy it replaces while that one serves
 * requests (see policy_build); the rest (policy_take_over, policy_stats,
 * policy_rule) wants the others stopped. Nothing on the
 * building path (policy_create, policy_add_*, policy_build) keeps static
 * state or logs: it may run on any thread.
 */
#ifndef NEARCACHE_POLICY_H
#define NEARCACHE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/proto/request.h"

#define POLICY_NAME_MAX   63  /* longest rule name */
#define POLICY_REPLY_MAX  256 /* longest rejection reply, "-ERR policy ...\r\n" included */
#define POLICY_STAMPS_MAX 8   /* most stamps one entry carries; more: not cached */

typedef enum {
    POLICY_ALLOW = 0,
    POLICY_DENY,
    POLICY_READ_ONLY,
} policy_action_e;

typedef enum {
    POLICY_KIND_VALIDATE = 0,
    POLICY_KIND_CACHE,
    POLICY_KIND_INVALIDATE,
    POLICY_KIND_MODULE, /* an enabled module: rejections by its validate hook */
} policy_kind_e;

/* ---- building ------------------------------------------------------------ */

/* Strings in the rules below are borrowed for the call only: the policy keeps
 * copies. A command list holds class names ("read", "write", "admin") and
 * command names in any case ("GET", "config" for every CONFIG subcommand,
 * "config|set" for one). */

/* Settings for keys no validation rule decides. Limits: 0 = none. */
struct policy_defaults {
    policy_action_e action; /* default POLICY_ALLOW */
    int64_t max_key_length;
    int64_t max_value_size;
};

struct policy_validate_rule {
    const char *name;
    const char *keys;            /* glob with captures (pattern.h), or NULL: every key */
    const char *const *commands; /* NULL or ncommands == 0: every command */
    size_t ncommands;
    policy_action_e action;
    int64_t max_key_length; /* -1: the default's; 0: none */
    int64_t max_value_size; /* -1: the default's; 0: none */
    const char *reason;     /* replaces the generated reason of a rejection, or NULL */
};

struct policy_cache_rule {
    const char *name;
    const char *keys; /* glob with captures; required */
    bool cache;       /* false: bypass, never served or filled */
    /* TTL: fixed when ttl_max_ms is 0 (ttl_ms, 0 meaning cache.ttl), else
     * adaptive between ttl_min_ms and ttl_max_ms from the key's reads and
     * writes in the last ttl_window_ms (see policy_ttl). */
    uint64_t ttl_ms;
    uint64_t ttl_min_ms;
    uint64_t ttl_max_ms;
    uint64_t ttl_window_ms;
    uint32_t admit_reads; /* fill only from the admit_reads-th read in the window; 0/1: at once */
    uint64_t admit_window_ms; /* required when admit_reads > 1 */
    int64_t max_entry;        /* largest reply cached; 0: cache.max_entry */
    int64_t compress_over;    /* compress replies of at least this many bytes; 0: never */
};

struct policy_invalidate_rule {
    const char *name;
    const char *when;            /* glob with captures; required */
    const char *const *commands; /* NULL or 0: every write */
    size_t ncommands;
    const char *const *drop; /* globs; their captures must all be captures of `when`, and
                                only literal bytes and captures may precede their last capture */
    size_t ndrop;
};

/* An extension module's settings: name/value pairs, borrowed for create. */
struct policy_module_args {
    const char *const *names;
    const char *const *values;
    size_t count;
};

/* What a module's validate hook sees of a request. */
struct policy_request {
    const char *name;          /* lower-case command name, "container|sub" for a subcommand */
    const struct command *cmd; /* NULL for a command the key table does not know */
    const char *buf;           /* the request frame */
    const struct resp_request *req;
    const struct resp_view *keys; /* views into buf */
    size_t nkeys;
};

/* An extension module: compiled in, listed in policy_modules[] (modules.c),
 * enabled by name in the policy. Every hook may be NULL. Hooks run after the
 * YAML rules, modules in the order the policy lists them. */
struct policy_module {
    const char *name;
    /* Returns the module's state (NULL is a valid state when err stays
     * empty), or NULL with a one-line reason in err. May run on another
     * thread than the hooks (a reload builds its policy off the loop). */
    void *(*create)(const struct policy_module_args *args, char *err, size_t errlen);
    void (*destroy)(void *state);
    /* NULL to allow, or the reason to reject (static or owned by state). */
    const char *(*validate)(void *state, const struct policy_request *r);
    /* false keeps a reply the rules would cache out of the tier. */
    bool (*should_cache)(void *state, const char *key, size_t klen, size_t reply_len);
    /* Adjusts the local TTL the rules chose; the key's own TTL still caps it. */
    uint64_t (*ttl)(void *state, const char *key, size_t klen, uint64_t ttl_ms);
    /* A key was written: command is the lower-case name, NULL from tracking. */
    void (*on_write)(void *state, const char *key, size_t klen, const char *command);
    /* A request was answered with an error (Redis's, or a rejection). */
    void (*on_error)(void *state, const char *reply, size_t len);
};

/* The compiled-in modules, NULL-terminated (policy/modules.c). */
extern const struct policy_module *const policy_modules[];

struct policy;

/* An empty policy (every request allowed, every cacheable key cached with
 * cache.ttl), owned by the caller; NULL when out of memory. */
struct policy *policy_create(void);

/* Frees *p (NULL allowed), destroying module states; sets *p to NULL. */
void policy_destroy(struct policy **p);

/* Lets several threads (workers) consult p at once: its rules' counters are
 * counted with atomic adds, the generations of the invalidation rules are
 * read without a lock, and the rest the request path changes (windows,
 * policy_check's scratch, the modules' state) is changed under a lock of
 * p's own, taken only by the rules and modules that need it: a policy of
 * plain cache rules takes none on a hit. Call before p is used. */
void policy_share(struct policy *p);

/* Each add returns 0, or -1 with "field: reason" in err (for the loader to
 * prefix with file:line): a duplicate name (within its list), a bad pattern,
 * an unknown class or command name (commands the key table does not know are
 * accepted as names), a capture of `drop` that `when` lacks, a limit below
 * -1, min > max. The name "default" is reserved for the default validation
 * and cache rules. Not after policy_build. */
int policy_set_defaults(struct policy *p, const struct policy_defaults *d, char *err,
                        size_t errlen);
int policy_add_validate(struct policy *p, const struct policy_validate_rule *r, char *err,
                        size_t errlen);
int policy_add_cache(struct policy *p, const struct policy_cache_rule *r, char *err, size_t errlen);
int policy_add_invalidate(struct policy *p, const struct policy_invalidate_rule *r, char *err,
                          size_t errlen);
/* Enables the compiled-in module called name with args. -1: unknown name,
 * enabled twice, or its create failed. */
int policy_add_module(struct policy *p, const char *name, const struct policy_module_args *args,
                      char *err, size_t errlen);

/* Enables module m (borrowed: it must outlive the policy) with args, as
 * policy_add_module does once it has found it by name; for modules an
 * embedding program or a test registers itself. -1: enabled twice, or its
 * create failed. */
int policy_use_module(struct policy *p, const struct policy_module *m,
                      const struct policy_module_args *args, char *err, size_t errlen);

/* Indexes the rules and computes their fingerprints. When prev is not NULL
 * (the policy a reload replaces, built), also finds each rule's namesake in
 * prev, for policy_take_over. Reads of prev only what does not change while
 * it serves requests (names, fingerprints, rule settings, whether a rule has
 * windows) and writes nothing to it, so it may run on another thread then.
 * Until p is taken over or destroyed, prev must be neither destroyed nor
 * taken over by another policy. Returns 0, or -1 with a reason in err (out
 * of memory; p can then only be destroyed). */
int policy_build(struct policy *p, const struct policy *prev, char *err, size_t errlen);

/* Moves prev's runtime state into p, which policy_build built over prev, so
 * that nothing cached under prev can come back stale: the generations of
 * the invalidation targets (always), the counters of rules of the same kind
 * and name, and the read and write windows of cache rules left unchanged
 * (same name and fingerprint). On the thread that uses prev, between two of
 * its calls, once p's build has returned 0. O(rules), no allocation, cannot
 * fail. prev must then be destroyed, not used; nothing of it stays shared
 * with p, so that may happen on any thread. Does nothing when prev is NULL
 * or p was not built over prev, and the second time. */
void policy_take_over(struct policy *p, struct policy *prev);

/* True when the policy has no rules and no modules (the request path can
 * skip it). */
bool policy_empty(const struct policy *p);

/* ---- validation ---------------------------------------------------------- */

/* Checks one complete multibulk request (its keys are found here if they
 * were not yet). Returns 0 to forward it, or the
 * length of the reply written into reply (at most POLICY_REPLY_MAX bytes):
 * "-ERR policy <rule>: <reason>\r\n", one line, no key bytes in it. Counts the
 * rejection on the rule and calls the modules' on_error. */
size_t policy_check(struct policy *p, struct request *r, char *reply);

/* ---- cache rules --------------------------------------------------------- */

/* Per-rule counters, for every kind (fields that do not apply stay 0). */
struct policy_rule_stats {
    uint64_t hits;          /* cache: reads answered from the tier */
    uint64_t misses;        /* cache: reads forwarded (including bypassed and not admitted) */
    uint64_t rejections;    /* validate: requests rejected */
    uint64_t invalidations; /* invalidate: firings */
    uint64_t writes;        /* cache: writes of its keys, estimated from the hot-key sample
                               (policy_note_writes) */
};

/* A cache rule as the request path sees it. */
struct policy_cached {
    const char *name;
    uint16_t index;       /* position among the cache rules; the default rule is last */
    uint32_t fingerprint; /* of this rule, the rules before it and the invalidation rules */
    bool cache;
    int64_t max_entry;     /* 0: cache.max_entry */
    int64_t compress_over; /* 0: never */
    struct policy_rule_stats *stats;
};

/* The first cache rule whose pattern matches key, else the default rule.
 * Never NULL. */
const struct policy_cached *policy_cache_rule(const struct policy *p, const char *key, size_t klen);

/* The cache rule at index, or NULL when there is none (after a reload). An
 * entry filled under (index, fingerprint) is still governed by the same rule
 * when that rule exists and has the same fingerprint. */
const struct policy_cached *policy_cache_rule_at(const struct policy *p, uint16_t index);

/* Records a read of key under rule, answered from the tier (hit) or not:
 * counts it on the rule, and keeps it for admission and adaptive TTLs. */
void policy_note_read(struct policy *p, const struct policy_cached *rule, const char *key,
                      size_t klen, bool hit, uint64_t now_ms);

/* Counts n writes of key on the cache rule it falls under (the hot-key
 * sample's estimate of the writes a sampled one stands for). */
void policy_note_writes(struct policy *p, const char *key, size_t klen, uint64_t n);

/* Whether a read of key sent now (policy_note_read called) should fill the
 * tier: the rule caches and the key was read admit_reads times in the
 * window. Asked when the read is forwarded (no PTTL probe when not). */
bool policy_admit(struct policy *p, const struct policy_cached *rule, const char *key, size_t klen,
                  uint64_t now_ms);

/* Whether every module's should_cache agrees to keep the reply of key
 * (reply_len bytes) in the tier. Asked when the reply has arrived. */
bool policy_should_cache(struct policy *p, const char *key, size_t klen, size_t reply_len);

/* The local TTL for a fill of key under rule, before the key's own TTL caps
 * it: a fixed rule's ttl (default_ms when 0), or the adaptive
 *   min + (max - min) * R / (R + 10) / (1 + W)
 * with R the key's reads and W its writes in the rule's window; then each
 * module's ttl hook. */
uint64_t policy_ttl(struct policy *p, const struct policy_cached *rule, const char *key,
                    size_t klen, uint64_t default_ms, uint64_t now_ms);

/* ---- invalidation rules -------------------------------------------------- */

/* A generation an entry depends on. */
struct policy_stamp {
    uint32_t slot;
    uint32_t gen;
};

/* The stamps for an entry of key filled now, for each (rule, drop pattern)
 * the key may fall under: the generation of the values the drop captures
 * from the key (when the drop matches it) and the rule's own (when the drop
 * with its captures read as '*' matches it): at most two per pair. Writes
 * min(n, max) into out and returns n; n > max means the key falls under too
 * many targets to be cached. */
size_t policy_stamp(const struct policy *p, const char *key, size_t klen, struct policy_stamp *out,
                    size_t max);

/* Whether no target stamped in s[0..n) was invalidated since. */
bool policy_stamps_current(const struct policy *p, const struct policy_stamp *s, size_t n);

/* A write of key: fires the invalidation rules whose `when` matches it (for
 * command, a lower-case command name, the rules listing it or listing none;
 * for command NULL, from tracking, every rule), counts the write for adaptive
 * TTLs, and calls the modules' on_write. Returns the number of rules fired. */
size_t policy_on_write(struct policy *p, const char *key, size_t klen, const char *command,
                       uint64_t now_ms);

/* An error reply Redis gave to a client's request: calls modules' on_error. */
void policy_on_error(struct policy *p, const char *reply, size_t len);

/* Redis checks the prefixes of CLIENT TRACKING ... BCAST against one another
 * in quadratic time, blocking every client meanwhile (tens of seconds at
 * 40,000 prefixes): the sources never number more than this. */
#define POLICY_SOURCES_MAX 1000

/* The literal prefixes of every `when` pattern, without overlaps (a prefix
 * that extends another is left out; "" stands for every key): the prefixes
 * whose writes Redis must report (CLIENT TRACKING ... BCAST PREFIX) for the
 * rules to fire on writes made elsewhere. When there would be more than
 * POLICY_SOURCES_MAX, all are cut to the longest length that leaves at most
 * that many: shorter prefixes cover more keys, so Redis reports a superset
 * of the writes needed (each still matched against the rules). i < count. */
size_t policy_source_count(const struct policy *p);
const char *policy_source(const struct policy *p, size_t i, size_t *len);

/* ---- explanation ---------------------------------------------------------- */

struct text;

/* Explains what p does with key in request r (its command, its keys found by
 * request_keys; key should be one of them), as "name:value" lines
 * (CRLF-terminated) appended to out (proxy/lib/text.h), pattern texts and
 * the key's bytes escaped:
 *   command:<name>|unknown, writes_key:0|1
 *   validate:<rule>:<allow|reject|skip>: ... one per validation rule whose
 *     keys match key (for a command that takes no keys: per rule without
 *     keys), in order; the first that applies "decides", the later ones are
 *     "shadowed"; "skip": its commands do not name the command; the defaults
 *     as "default" when no rule applies; a rejection ends with its reason
 *   cacheable:0|1, then cache:<rule>:<cache|bypass>: ... one per cache rule
 *     whose keys match, the first deciding (else "default"), with its
 *     settings (default_ttl_ms for a ttl of 0); stamps:<n>, the
 *     invalidation targets an entry of key depends on
 *   invalidate:<rule>:<fires|ignores>: ... per invalidation rule whose `when`
 *     matches key: the drop patterns a write of key fires, its captures
 *     substituted, or why the command does not fire it
 *   invalidate:<rule>:dropped_by: ... per drop pattern that may match key:
 *     the write (`when` with the drop's captures substituted) that drops it
 *   module:<name>: hooks ... per enabled module, whose hooks run after the
 *     rules and may change what they decide (not run here)
 * Counts nothing and fires nothing. Out of memory: out->oom. */
void policy_explain(struct policy *p, struct request *r, const char *key, size_t klen,
                    uint64_t default_ttl_ms, struct text *out);

/* ---- statistics ---------------------------------------------------------- */

/* Number of rules of every kind, and the i-th in kind then file order. The
 * default rules count: "default" ends the validation rules (rejections by
 * the defaults) and the cache rules (index policy_cache_rule_at gives it).
 * The enabled modules come last, as kind POLICY_KIND_MODULE (rejections by
 * their validate hooks). */
size_t policy_rule_count(const struct policy *p);
const struct policy_rule_stats *policy_rule(const struct policy *p, size_t i, const char **name,
                                            policy_kind_e *kind);

/* Writes one "rule:<kind>:<name>:hits=..,misses=..,rejections=..,invalidations=.."
 * line (CRLF-terminated) per rule into buf (at most len bytes, NUL-terminated).
 * Returns the length written. */
size_t policy_stats(const struct policy *p, char *buf, size_t len);

#endif

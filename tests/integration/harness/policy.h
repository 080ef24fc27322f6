/* policy.h - the fixture of the policy tests (integration/policy_*.c): a
 * config file with a `policy:` section in the test's temp dir, the proxy
 * started on it, the rejection texts the proxy must send, and the per-rule
 * counters of NEARCACHE POLICY.
 *
 * Like the rest of the harness, every function fails the current criterion
 * test (cr_assert) when something is not as expected or does not happen
 * within HARNESS_TIMEOUT_MS. Strings returned as `const char *` are static:
 * see each function for how long they stay valid.
 */
#ifndef NEARCACHE_TESTS_HARNESS_POLICY_H
#define NEARCACHE_TESTS_HARNESS_POLICY_H

#include <stddef.h>

#include "harness/bytes.h"

/* The settings of a proxy whose tier only the policy can explain: without
 * tracking, a value written directly on Redis and still served stale proves
 * the entry came from the tier. NULL-terminated, for proxy_start's sets. */
extern const char *const NO_TRACKING[];

/* The path write_config last wrote ("" before). */
extern char cfg_path[320];

/* .fini: fixture_stop, then removes the test's temp dir. */
void fixture_policy_stop(void);

/* ---- config and proxy ---------------------------------------------------- */

/* Writes to dst (len bytes) the path of name in the test's temp dir (created
 * on first use, removed by fixture_policy_stop) and returns dst. */
const char *temp_path(char *dst, size_t len, const char *name);
/* (Re)writes the test's config file with yaml, atomically; returns its path
 * (cfg_path). */
const char *write_config(const char *yaml);
/* Starts fx_proxy with yaml as its config file and the settings in sets
 * (may be NULL). Skips the test in direct mode (harness_require_proxy). */
void start_with_policy(const char *yaml, const char *const *sets);

/* ---- rejections ---------------------------------------------------------- */

/* "-ERR policy <rule>: <reason>\r\n" appended to b. */
void add_rejection(struct bytes *b, const char *rule, const char *reason);
/* "-ERR policy <rule>: <reason>\r\n". This and the two reasons below return
 * one of 8 static buffers used in turn: enough for the arguments of one call. */
const char *rejection(const char *rule, const char *reason);
/* "value of SIZE bytes is over the LIMIT byte limit". */
const char *value_reason(size_t size, size_t limit);
/* "key of SIZE bytes is over the LIMIT byte limit". */
const char *key_reason(size_t size, size_t limit);

/* ---- requests ------------------------------------------------------------ */

/* Sends the whole requests in req in one write, reads n replies and fails
 * unless they are exactly want; what names the step in the message. */
void exchange_expect(int fd, const struct bytes *req, size_t n, const struct bytes *want,
                     const char *what);
/* exchange_expect with a one-reply request and a NUL-terminated want. */
void request_expect(int fd, const struct bytes *req, const char *want, const char *what);
/* n bytes of filler (caller frees): a pattern with CR, LF and NUL in it, with
 * seed every 61 bytes. */
char *filler(size_t n, char seed);
/* SET key value (n bytes) directly on fx_redis, binary safe. */
void redis_set_raw(const char *key, const char *value, size_t n);
/* Reads line through fd until the global hits counter grows (a fill, then a
 * hit); every reply must be want. */
void cache_key(int fd, const char *line, const char *want);

/* ---- NEARCACHE POLICY ---------------------------------------------------- */

/* The counters of one rule. */
struct counts {
    long long hits, misses, rejections, invalidations;
};

/* The counters of one rule from NEARCACHE POLICY, asked through fd ("validate",
 * "cache", "invalidate" or "module" for kind); fails if the rule is absent. */
struct counts rule_counts(int fd, const char *kind, const char *name);
/* Fails unless NEARCACHE POLICY holds exactly these counters for the rule
 * (its writes, an estimate from the hot-key sample, are not compared). */
void rule_expect(int fd, const char *kind, const char *name, long long hits, long long misses,
                 long long rejections, long long invalidations);

#endif

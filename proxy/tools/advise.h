/* advise.h - recommendations from what `nearcache analyze` saw: per key
 * pattern, whether and how to cache it (a policy cache rule) and what is
 * risky about it; and the `policy:` section those rules make.
 *
 * The thresholds are those of the proxy's defaults (config/nearcache.yaml):
 * values over cache.max_entry (1mb) are never cached; a pattern whose keys
 * would fill more than an eighth of cache.max_memory (64mb) gets `admit`;
 * values of 4kb and more (median) get `compress_over: 4kb`; a pattern whose
 * hot keys are written at least half as often as read is not cached; the
 * rule's TTL is adaptive, its max the median remaining TTL the samples
 * showed (1s to 10m, whole minutes from 2m; 5m without TTLs), its min a
 * sixtieth of that (>= 1s).
 * Only patterns with a capture (or an overflow "*") holding at least 1% of
 * the keys seen, or hot keys, get a rule. Pure: no I/O.
 */
#ifndef NEARCACHE_ADVISE_H
#define NEARCACHE_ADVISE_H

#include <jansson.h>
#include <stddef.h>

#define ADVISE_MAX_ENTRY     (1024 * 1024)      /* cache.max_entry's default */
#define ADVISE_MAX_MEMORY    (64 * 1024 * 1024) /* cache.max_memory's default */
#define ADVISE_COMPRESS_OVER 4096               /* compress_over advised */
#define ADVISE_RULE_SHARE    0.01               /* least share of the keys for a rule */

/* Adds to report (as analyze_run builds it: "scan", "patterns", "proxy")
 * each pattern's "advice" and "risks" (arrays of sentences) and "rule" (the
 * cache rule advised, its fields as the policy's YAML writes them, or
 * null), and appends global sentences to report's "advice". Returns 0, or
 * -1 with a reason in err when out of memory or report lacks a part. */
int advise_report(json_t *report, char *err, size_t errlen);

/* The YAML of a config file holding only a `policy:` section with the
 * report's rules (a comment says where it came from); NUL-terminated,
 * owned by the caller (free), or NULL when out of memory. */
char *advise_policy(const json_t *report);

#endif

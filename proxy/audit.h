/* audit.h - measured staleness: re-reading a sample of tier hits from Redis.
 *
 * With cache.audit_rate N, about one hit in N (at random gaps, as
 * observe.h samples) is sent again to Redis right after the tier answered
 * it, on the shared connection the hit was served for (same database and
 * protocol, so the reply bytes compare), and Redis's reply is compared with
 * the bytes served. A check whose bytes are equal is fresh. When they
 * differ, the key may have been written between the hit and the re-read:
 * the audit waits AUDIT_GRACE_MS for the invalidation of such a write (its
 * own, through the proxy, or Redis's, for a write made elsewhere) and
 * counts the check as raced when one came, else as stale: a hit served
 * after Redis had replaced the value with no invalidation on its way, which
 * the coherence guarantees say never happens. An error from the connection
 * (lost, timed out) is not a check.
 */
#ifndef NEARCACHE_AUDIT_H
#define NEARCACHE_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUDIT_GRACE_MS     100 /* how long a differing check waits for an invalidation */
#define AUDIT_INFLIGHT_MAX 64  /* re-reads a worker has outstanding; more are skipped */

struct worker;
struct upstream;
struct request;
struct audit_check;

/* A worker's audit: counters read by the metrics. */
struct audit {
    uint32_t skip; /* hits until the next check */
    uint32_t rate; /* cache.audit_rate in force */
    uint64_t rng;
    size_t inflight;             /* checks not yet judged */
    struct audit_check *waiting; /* differing checks waiting out the grace */
    uint64_t checks, stale, raced;
};

/* Sets up w's audit from w->cfg. */
void audit_setup(struct worker *w);

/* Frees the checks waiting; those in flight free themselves when their
 * reply (or its error) comes. */
void audit_teardown(struct worker *w);

/* After a reload: cache.audit_rate in force from the next hit. */
void audit_reload(struct worker *w);

/* Re-reads the hit of rq, answered with reply[0..len), on up. */
void audit_hit(struct worker *w, struct upstream *up, struct request *rq, const char *reply,
               size_t len);

/* On every tier hit: audits it now and then. */
static inline void audit_note(struct audit *a, struct worker *w, struct upstream *up,
                              struct request *rq, const char *reply, size_t len)
{
    if (__builtin_expect(--a->skip == 0, 0))
        audit_hit(w, up, rq, reply, len);
}

/* Judges the differing checks whose grace is over (the worker's tick). */
void audit_tick(struct worker *w, uint64_t now_ms);

#endif

/* invalidation.h - keeping the local tier coherent with Redis.
 *
 * The glue between the invalidation subscriber (tracking.h), the coherence
 * state machine (coherence.h), the tier and the shared connections: it
 * starts the subscriber, sends CLIENT TRACKING ... REDIRECT <id> on every
 * shared connection (as an exchange of its own) and retries it when it
 * fails, re-probes a Redis that refused it, applies Redis's invalidations to
 * the tier, and says whether a read on a connection may fill the tier.
 * Without the tier or with cache.tracking off it only marks the tier active.
 */
#ifndef NEARCACHE_INVALIDATION_H
#define NEARCACHE_INVALIDATION_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy/cache/coherence.h"
#include "proxy/upstream.h"

struct invalidation;
struct net_addr;
struct pool;
struct policy;
struct worker;

/* Sets up coherence for w (its loop, settings and tier, borrowed) and the
 * shared connections of pool (borrowed; set up later, with
 * invalidation_owner as their owner); the subscriber, which connects to
 * *redis (borrowed, read at each connection), starts when the loop runs.
 * shared_tier: one of a cluster's nodes, whose tier also holds the other
 * nodes' keys: it stays on, emptied when this node's tracking is lost, and
 * this node's reads are served and filled only while it is tracked. NULL
 * (after logging why) when memory runs out. */
struct invalidation *invalidation_create(struct worker *w, const struct pool *pool,
                                         const struct net_addr *redis, bool shared_tier);

/* The subscriber's connections may hold bytes the loop has not seen yet
 * (tracking_poll): handles them now. */
void invalidation_poll(struct invalidation *inv);

/* The primary moved (Sentinel): the tier is emptied and the subscriber
 * subscribes again on the new one; until it has, the tier neither serves
 * nor fills. */
void invalidation_restart(struct invalidation *inv, const char *why);

/* Stops the subscriber and frees *inv; NULL and *inv == NULL accepted. */
void invalidation_destroy(struct invalidation **inv);

/* The owner of the shared connections: a connection that becomes ready is
 * tracked; one that breaks after carrying traffic empties the tier, since
 * what it read is no longer tracked. */
const struct upstream_owner *invalidation_owner(struct invalidation *inv);

/* Asks Redis to report writes under the invalidation rules' source prefixes
 * of p, so that the rules fire on writes made elsewhere too. Returns 0, or
 * -1 when out of memory. */
int invalidation_set_sources(struct invalidation *inv, const struct policy *p);

/* True when reads on up (a shared connection) may fill the tier: it is
 * tracked by the current subscriber, or tracking is off or refused
 * (TTL-bounded mode). */
bool invalidation_may_fill(const struct invalidation *inv, const struct upstream *up);

/* Retries failed CLIENT TRACKING and probes a Redis that refused it, when due. */
void invalidation_tick(struct invalidation *inv, uint64_t now_ms);

/* The coherence state and its counters (NEARCACHE STATS). */
const struct coherence *invalidation_state(const struct invalidation *inv);

#endif

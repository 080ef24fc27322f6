/* tracking.h - the invalidation subscriber for Redis client-side caching.
 *
 * One connection to Redis, owned by this module, subscribed to
 * __redis__:invalidate (RESP2). The proxy's data connections run
 * CLIENT TRACKING on REDIRECT <id> with the id this module reports, and Redis
 * publishes here the keys whose cached replies are no longer valid. When the
 * subscription is lost the module says so once and reconnects by itself with
 * backoff (at once after a working connection, else 50 ms doubling up to
 * reconnect_max_ms); once subscribed again it reports the new id, which the
 * data connections must redirect to from then on.
 *
 * Sources: key prefixes whose writes, made by any client, Redis must report
 * here (for invalidation rules on keys the proxy may never have read). A
 * second connection owned by this module, the registration connection, runs
 * CLIENT TRACKING on REDIRECT <id> BCAST PREFIX p1 PREFIX p2 ... once the
 * subscription is confirmed. With sources, the subscription counts as up only
 * once both connections are ready, and losing either one is a loss of both.
 *
 * Everything runs on the caller's libev loop and never blocks it. The address
 * is the caller's, read at each connection: it may move (endpoint.h) or be a
 * TLS tunnel's (tunnel.h).
 */
#ifndef NEARCACHE_TRACKING_H
#define NEARCACHE_TRACKING_H

#include <ev.h>
#include <stddef.h>

#include "proxy/net.h"

/* One invalidated key: key[0..len) is binary and borrowed for the call only. */
typedef void (*tracking_key_fn)(void *arg, const char *key, size_t len);
/* Redis flushed a database (FLUSHALL/FLUSHDB): every cached reply is invalid. */
typedef void (*tracking_flush_fn)(void *arg);
/* client_id > 0: subscribed (and, when there are sources, Redis accepted
 * them: writes to them are reported from now on); data connections must
 * redirect to this id.
 * client_id == -1: the subscription or the registration of the sources was
 * lost (or a new list of sources refused); invalidations may have been
 * missed, so everything cached is suspect. Reported once per loss, and only
 * after a subscription existed (never while the first connect keeps failing). */
typedef void (*tracking_state_fn)(void *arg, long long client_id);

/* Callbacks (any may be NULL) and their argument. None of them may call
 * tracking_destroy. */
struct tracking_callbacks {
    tracking_key_fn key;
    tracking_flush_fn flush;
    tracking_state_fn state;
    void *arg;
};

struct tracking;

/* Starts the subscriber on loop, connecting to *addr (borrowed; len 0: not
 * known yet, attempts fail until it is); user may be NULL, password NULL for no AUTH
 * (both copied; the registration connection uses them too).
 * connect_timeout_ms bounds connect plus AUTH, CLIENT ID and SUBSCRIBE, and
 * the registration of the sources; reconnect_max_ms caps the backoff. There
 * are no sources until tracking_set_sources. cb is copied. The first
 * attempt starts when the loop runs; Redis being down is not an error.
 * Returns NULL (after logging why) when out of memory. */
struct tracking *tracking_create(struct ev_loop *loop, const struct net_addr *addr,
                                 const char *user, const char *password, int connect_timeout_ms,
                                 int reconnect_max_ms, const struct tracking_callbacks *cb);

/* The client id invalidations must be redirected to, or -1 unless subscribed
 * (with the sources registered). */
long long tracking_client_id(const struct tracking *t);

/* Sets the sources: prefixes[i][0..lens[i]) for i < n, binary, copied (lens
 * NULL: NUL-terminated strings). An empty prefix means every key (BCAST
 * without PREFIX, whatever else the list holds). Redis refuses prefixes that
 * overlap one another, so the caller should give none; a refusal is logged
 * (rate-limited) with Redis's error and handled like a failed handshake: the
 * subscription is never reported up until the list is fixed.
 * May be called at any time, also from a tracking callback. Before or during
 * an attempt the list is used by it; while subscribed the change is applied
 * on the next loop iteration: n == 0 closes the registration connection, a
 * new list replaces the old one (CLIENT TRACKING off, then on), and a refusal
 * or a timeout (connect_timeout_ms) is a loss, reported as state -1. The
 * same list as the current one changes nothing.
 * Returns 0, or -1 when out of memory or n is absurd (the previous list
 * stays). */
int tracking_set_sources(struct tracking *t, const char *const *prefixes, const size_t *lens,
                         size_t n);

/* Reads what its connections hold now, without waiting for the loop to see
 * it: a TLS tunnel has just relayed bytes to them (tunnel.h), and an
 * invalidation must be handled before reads waiting beside it. */
void tracking_poll(struct tracking *t);

/* Drops the connections and subscribes again at once, at the address in
 * force now (Sentinel moved the primary): a loss, reported as state -1 when
 * the subscription was up. Not from inside a tracking callback. */
void tracking_restart(struct tracking *t, const char *why);

/* Closes the connections, stops the timers and frees everything; no callback
 * is called. *t is set to NULL; NULL and *t == NULL are accepted. Not from
 * inside a tracking callback. */
void tracking_destroy(struct tracking **t);

#endif

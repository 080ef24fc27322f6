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
 * Everything runs on the caller's libev loop and never blocks it. A host name
 * is resolved once, in tracking_create.
 */
#ifndef NEARCACHE_TRACKING_H
#define NEARCACHE_TRACKING_H

#include <ev.h>
#include <stddef.h>

/* One invalidated key: key[0..len) is binary and borrowed for the call only. */
typedef void (*tracking_key_fn)(void *arg, const char *key, size_t len);
/* Redis flushed a database (FLUSHALL/FLUSHDB): every cached reply is invalid. */
typedef void (*tracking_flush_fn)(void *arg);
/* client_id > 0: subscribed, data connections must redirect to this id.
 * client_id == -1: the subscription was lost; invalidations may have been
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

/* Starts the subscriber on loop: address is "host:port", "[v6]:port" or an
 * absolute unix socket path; user may be NULL, password NULL for no AUTH
 * (both copied). connect_timeout_ms bounds connect plus AUTH, CLIENT ID and
 * SUBSCRIBE; reconnect_max_ms caps the backoff. cb is copied. The first
 * attempt starts when the loop runs; Redis being down is not an error.
 * Returns NULL (after logging why) when the address is invalid or cannot be
 * resolved, or when out of memory. */
struct tracking *tracking_create(struct ev_loop *loop, const char *address, const char *user,
                                 const char *password, int connect_timeout_ms, int reconnect_max_ms,
                                 const struct tracking_callbacks *cb);

/* The client id invalidations must be redirected to, or -1 unless subscribed. */
long long tracking_client_id(const struct tracking *t);

/* Closes the connection, stops the timers and frees everything; no callback
 * is called. *t is set to NULL; NULL and *t == NULL are accepted. Not from
 * inside a tracking callback. */
void tracking_destroy(struct tracking **t);

#endif

/* pool.h - the upstream connections of one loop.
 *
 * A fixed number of shared connections, which clients are spread over round
 * robin and which carry most traffic, and the spare dedicated connections:
 * a client that needs connection state of its own (SELECT, MULTI, SUBSCRIBE,
 * ...) takes one and gives it back when its state is gone, to be reused
 * while it is still in the pool's (authenticated, configured database) state.
 */
#ifndef NEARCACHE_POOL_H
#define NEARCACHE_POOL_H

#include <stdbool.h>

#include "proxy/upstream.h"

struct pool {
    struct upstream_env env;  /* what every connection needs */
    struct upstream **shared; /* nshared of them */
    int nshared;
    unsigned next;         /* round-robin cursor for new clients */
    struct upstream *idle; /* spare dedicated connections, linked by next */
    int nidle;
    bool keep_spares; /* false while draining */
};

/* Connects n shared connections, each owned by shared_owner (which hears
 * when one becomes ready or breaks). env is copied. Returns 0, or -1 when out
 * of memory (pool_teardown frees what was made). */
int pool_setup(struct pool *p, const struct upstream_env *env, int n,
               const struct upstream_owner *shared_owner);

/* Closes the spares and frees every connection (at a safe point). */
void pool_teardown(struct pool *p);

/* The shared connection for a new client, round robin. */
struct upstream *pool_home(struct pool *p);

/* The shared connection i, i < p->nshared. */
struct upstream *pool_shared(const struct pool *p, int i);

/* A dedicated connection for owner: a spare one or a new one. NULL when out
 * of memory. */
struct upstream *pool_dedicated_get(struct pool *p, const struct upstream_owner *owner);

/* Takes back a dedicated connection, which no client request is waiting on
 * (the proxy's own bookkeeping may be): kept as a spare when reusable (its
 * state is the pool's), ready, and there is room (upstream.idle_dedicated),
 * else closed. */
void pool_dedicated_put(struct pool *p, struct upstream *up, bool reusable);

/* Deadlines and reconnects of the shared connections (upstream_tick). */
void pool_tick(struct pool *p, ev_tstamp now, bool stalled);

#endif

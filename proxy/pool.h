/* pool.h - the upstream connections of one loop.
 *
 * Shared connections carry most traffic: clients are spread over them round
 * robin. They come in lanes, one per (database, protocol) that clients use:
 * lane 0, the configured database in RESP2, opens at start; a client that
 * selects another database or says HELLO 3 moves to that lane's shared
 * connections, opened on first use (at most POOL_LANES_MAX lanes, each with
 * upstream.pool_size connections). The pool also keeps spare dedicated
 * connections: a client that needs connection state of its own (MULTI,
 * SUBSCRIBE, ...) takes one of its lane and gives it back when its state is
 * gone, to be reused while it is still in its lane's state.
 */
#ifndef NEARCACHE_POOL_H
#define NEARCACHE_POOL_H

#include <stdbool.h>

#include "proxy/upstream.h"

#define POOL_LANES_MAX 32

struct pool {
    struct upstream_env env;            /* what every connection needs (counters: below) */
    struct upstream_counters counters;  /* of every connection of the pool */
    struct upstream_owner shared_owner; /* of every shared connection */
    struct lane lanes[POOL_LANES_MAX];  /* nlanes open */
    int nlanes;
    int per_lane;             /* shared connections per lane */
    struct upstream **shared; /* per_lane * POOL_LANES_MAX; lane i's from i * per_lane */
    unsigned next;            /* round-robin cursor for new clients */
    struct upstream *idle;    /* spare dedicated connections, linked by next */
    int nidle;
    bool keep_spares; /* false while draining */
};

/* Opens lane 0 (the configured database, RESP2) with n shared connections
 * per lane, each owned by shared_owner (which hears when one becomes ready
 * or breaks). env is copied. Returns 0, or -1 when out of memory
 * (pool_teardown frees what was made). */
int pool_setup(struct pool *p, const struct upstream_env *env, int n,
               const struct upstream_owner *shared_owner);

/* Closes the spares and frees every connection (at a safe point). */
void pool_teardown(struct pool *p);

/* The index of the lane for (db, resp), opening it on first use; -1 when
 * POOL_LANES_MAX lanes are open or memory runs out. */
int pool_lane(struct pool *p, struct lane lane);

/* The number of shared connection slots in use: pool_shared(p, i) is
 * defined for i below it. */
int pool_slots(const struct pool *p);

/* A shared connection of lane for a new client, round robin. */
struct upstream *pool_home(struct pool *p, int lane);

/* The shared connection in slot i, i < pool_slots(p). */
struct upstream *pool_shared(const struct pool *p, int i);

/* A dedicated connection of lane for owner: a spare one or a new one. NULL
 * when out of memory. */
struct upstream *pool_dedicated_get(struct pool *p, const struct upstream_owner *owner, int lane);

/* Takes back a dedicated connection, which no client request is waiting on
 * (the proxy's own bookkeeping may be): kept as a spare when reusable (its
 * state is its lane's), ready, and there is room (upstream.idle_dedicated),
 * else closed. */
void pool_dedicated_put(struct pool *p, struct upstream *up, bool reusable);

/* True when every shared connection of lane 0 carries traffic. */
bool pool_ready(const struct pool *p);

/* The primary moved: every shared connection reconnects (upstream_reset)
 * and the spares are closed. */
void pool_reset(struct pool *p);

/* Deadlines and reconnects of the shared connections (upstream_tick). */
void pool_tick(struct pool *p, ev_tstamp now, bool stalled);

#endif

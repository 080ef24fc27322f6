/* route.h - where a request goes when Redis is a cluster (upstream.cluster).
 *
 * Each worker keeps its own copy of the cluster's slot map (map.h): a node
 * per primary, each with a pool of connections of its own (pool.h), and for
 * every slot the node that owns it. A request whose keys share a slot goes
 * to that slot's node; one without keys goes to the anchor, the worker's
 * main pool (worker.h), which connects to a primary of the cluster; keys of
 * several slots are refused with Redis Cluster's own -CROSSSLOT error. A
 * client's requests to one node all take the same connection of it, so that
 * they run in the order sent.
 *
 * The map is read at start (route_discover: CLUSTER SHARDS, or CLUSTER
 * SLOTS before Redis 7, from the first seed that answers), then again every
 * upstream.cluster_refresh and whenever a redirect shows it is out of date,
 * on the anchor's connection. A -MOVED reply moves the slot at once (the
 * request is sent again to the node named); an -ASK reply sends the request
 * once to the node named, after ASKING, the map unchanged.
 */
#ifndef NEARCACHE_ROUTE_H
#define NEARCACHE_ROUTE_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

#include "proxy/cache/coherence.h"
#include "proxy/cluster/map.h"
#include "proxy/net.h"
#include "proxy/pool.h"

struct config;
struct invalidation;
struct policy;
struct request;
struct session;
struct worker;

/* What a worker counts of the cluster. */
struct route_counters {
    uint64_t moved;     /* -MOVED replies followed */
    uint64_t ask;       /* -ASK replies followed */
    uint64_t tryagain;  /* -TRYAGAIN replies retried */
    uint64_t refreshes; /* slot maps read and applied after the first */
};

struct route;

/* Reads the slot map from the first of cfg's seeds (upstream.cluster) that
 * answers, with tls for TLS, and sets *anchor to that seed's address when it
 * is a primary, else to the first primary's. Returns the map (refs 1), or
 * NULL after logging why: the proxy then starts without one, anchored at the
 * first seed, and learns the map there. */
struct map *route_discover(const struct config *cfg, SSL_CTX *tls, struct net_addr *anchor);

/* Sets up w's routes from map (may be NULL), with a pool per primary, and
 * points the anchor (w->pool's endpoint) at a primary. Returns NULL when out
 * of memory. */
struct route *route_create(struct worker *w, const struct map *map);

/* Closes every node's connections (failing what they hold) and frees *rt;
 * *rt is set to NULL. Call at a safe point. Accepts NULL. */
void route_destroy(struct route **rt);

typedef enum {
    ROUTE_GO = 0, /* *pool, *lane and s->home are set */
    ROUTE_STALL,  /* a connection of another node holds the client's requests in flight */
    ROUTE_CROSS,  /* its keys hash to several slots */
    ROUTE_REFUSE, /* *err is the reply: a key of another node than the client's
                     transaction or watch, or no connection can be had */
} route_e;

#define ROUTE_BY_KEYS (-3) /* route_request's slot: the slot of the request's keys */

/* Where request rq of a client in session s goes: the pool of slot's node
 * (ROUTE_BY_KEYS: of its keys' slot; none: s's dedicated connection's, or
 * the anchor's) in *pool and the index of s's lane there in *lane, with
 * s->home set to the client's connection of it. */
route_e route_request(struct route *rt, struct session *s, struct request *rq, int slot,
                      struct pool **pool, int *lane, const char **err);

/* Whether every slot has a primary known. */
bool route_covered(const struct route *rt);

/* Counts the changes of the slots' owners: a client with requests in flight
 * routed under another count waits for them (a key's later request must not
 * reach its new node before an earlier one is redirected there). */
unsigned route_gen(const struct route *rt);

/* The client's (session s) shared connection to the node of slot (the
 * anchor's while the slot's owner is unknown); NULL when none can be had. */
struct upstream *route_slot_home(struct route *rt, const struct session *s, int slot);

/* A redirect: when the error reply data is -MOVED or -ASK, the client's
 * connection (session s) to the node it names, in *up (NULL when none can
 * be had), *asking set for -ASK; a -MOVED moves its slot to that node and
 * has the map read again soon. Returns false for any other reply. */
bool route_redirect(struct route *rt, const struct session *s, const char *data, size_t len,
                    struct upstream **up, bool *asking);

/* Runs fn(arg, false) at the next tick (within 100 ms: a -TRYAGAIN's
 * backoff, counted), or fn(arg, true) when the route is destroyed first.
 * Returns 0, or -1 when out of memory. */
int route_retry(struct route *rt, void (*fn)(void *arg, bool cancelled), void *arg);

/* Deadlines of every node's connections (pool_tick), what route_later
 * deferred, and the map read again when due. */
void route_tick(struct route *rt, ev_tstamp now, bool stalled);

/* True when the map is known and every node's shared connections are up. */
bool route_ready(const struct route *rt);

/* Registers p's invalidation sources with every node's tracking (a reload;
 * invalidation_set_sources). Returns 0, or -1 when out of memory. */
int route_set_sources(struct route *rt, const struct policy *p);

/* The invalidation that tracks up, a shared connection of a node's pool or
 * of the anchor's (w->inv): whether its reads may be served and fill. */
struct invalidation *route_inv(const struct route *rt, const struct upstream *up);

/* The pool of slot's node: the anchor's while it is unknown, or for slot
 * SLOT_NONE. */
struct pool *route_slot_pool(struct route *rt, int slot);

/* A slot of each primary that owns one, at most max of them, in slots;
 * returns how many. */
size_t route_primaries(const struct route *rt, int *slots, size_t max);

/* The pool up (a shared connection) belongs to: a node's or the anchor's. */
struct pool *route_pool_of(const struct route *rt, const struct upstream *up);

/* The map is out of date (a node said so): it is read again soon. */
void route_stale(struct route *rt);

/* Folds the tracking of every primary into out: its state becomes the first
 * node's that is not on (when out's is on), its counters the sums. */
void route_tracking_add(const struct route *rt, struct coherence *out);

/* Adds the counters of every node's connections to up, and the route's to
 * out. */
void route_counters_add(const struct route *rt, struct upstream_counters *up,
                        struct route_counters *out);

#endif

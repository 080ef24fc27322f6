/* route.c - a worker's copy of the slot map, its nodes' pools, redirects. */
#include "proxy/cluster/route.h"

#include <hiredis/read.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "proxy/cache/cache.h"
#include "proxy/ctl.h"
#include "proxy/endpoint.h"
#include "proxy/exchange.h"
#include "proxy/invalidation.h"
#include "proxy/lib/log.h"
#include "proxy/proto/slot.h"
#include "proxy/session.h"
#include "proxy/tunnel.h"
#include "proxy/worker.h"

#define ROUTE_NODES_MAX  (2 * MAP_NODES_MAX) /* primaries of now and of before */
#define ROUTE_SOON_S     0.1                 /* a redirect has the map read this soon */
#define ROUTE_TIMEOUT_MS 2000                /* route_discover's wait per seed */

static const char ERR_CROSSSLOT[] = "-CROSSSLOT Keys in request don't hash to the same slot\r\n";
static const char SHARDS[] = "*2\r\n$7\r\nCLUSTER\r\n$6\r\nSHARDS\r\n";
static const char SLOTS[] = "*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n";

/* Work deferred to the next tick (route_retry). */
struct route_later {
    struct route_later *next;
    void (*fn)(void *arg, bool cancelled);
    void *arg;
};

/* A primary, now or before, with the connections of this worker to it. */
struct route_node {
    struct endpoint ep;
    struct pool pool;
    char host[256];
    int port;
    bool listed; /* a primary in the map last read */
    struct route *rt;
    struct invalidation *inv; /* its tracking: the tier serves its keys while it is on */
    struct tunnel *tunnel;    /* upstream.tls: the tracking subscriber's way to it */
};

struct route {
    struct worker *w;
    struct pool *anchor; /* w->pool: requests without keys, and the map */
    struct map *map;     /* the last read, or NULL */
    struct route_node *nodes[ROUTE_NODES_MAX];
    int nnodes;
    struct route_node *by_slot[SLOT_COUNT]; /* NULL: unowned, or not known yet */
    bool use_slots;                         /* Redis before 7: CLUSTER SLOTS */
    bool asked;                             /* a read of the map is in flight */
    const struct endpoint *from;            /* where: an unknown endpoint in its reply is it */
    ev_tstamp refresh_at;                   /* when to read it next */
    struct route_later *later;              /* retries for the next tick */
    bool check_anchor;                      /* a new map: is the anchor still a primary? */
    unsigned gen;                           /* by_slot's changes (route_gen) */
    struct route_counters counters;
};

/* The host of "host:port" or "[v6]:port" in host. */
static void route_host(const char *shown, char *host, size_t len)
{
    int port;
    if (net_addr_split(shown, host, len, &port) < 0)
        host[0] = '\0';
}

/* Parses a reply to SHARDS (or SLOTS with use_slots) from a server at host. */
static struct map *route_parse(const redisReply *r, const char *host, bool use_slots, bool tls,
                               char *err, size_t errlen)
{
    return use_slots ? map_parse_slots(r, host, err, errlen)
                     : map_parse_shards(r, host, tls, err, errlen);
}

static bool route_unknown_subcommand(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR && strstr(r->str, "nknown subcommand") != NULL;
}

/* Asks one seed for the map. */
static struct map *route_ask_seed(const struct config *cfg, SSL_CTX *tls, const char *seed,
                                  char *err, size_t errlen)
{
    struct net_addr addr;
    const char *why;
    char host[256];
    if (net_addr_parse(seed, &addr, &why) < 0) {
        snprintf(err, errlen, "%s", why);
        return NULL;
    }
    route_host(seed, host, sizeof(host));
    struct ctl_target to = {&addr,
                            tls,
                            cfg->upstream_tls_server_name ? cfg->upstream_tls_server_name : host,
                            cfg->upstream_username,
                            cfg->upstream_password,
                            ROUTE_TIMEOUT_MS};
    bool use_slots = false;
    redisReply *r = ctl_call(&to, 2, (const char *[]){"CLUSTER", "SHARDS"}, err, errlen);
    if (r != NULL && route_unknown_subcommand(r)) {
        freeReplyObject(r);
        use_slots = true;
        r = ctl_call(&to, 2, (const char *[]){"CLUSTER", "SLOTS"}, err, errlen);
    }
    if (r == NULL)
        return NULL;
    struct map *m = route_parse(r, host, use_slots, tls != NULL, err, errlen);
    freeReplyObject(r);
    return m;
}

/* The address of host:port (a name is resolved); -1 when it has none. */
static int route_address(const char *host, int port, struct net_addr *addr)
{
    char text[300];
    const char *why;
    snprintf(text, sizeof(text), strchr(host, ':') != NULL ? "[%s]:%d" : "%s:%d", host, port);
    return net_addr_parse(text, addr, &why);
}

struct map *route_discover(const struct config *cfg, SSL_CTX *tls, struct net_addr *anchor)
{
    char *items, err[256] = "", host[256];
    const char *why;
    size_t n;
    int port;
    if (config_list_split(cfg->cluster, &items, &n) < 0)
        return NULL;
    struct map *m = NULL;
    const char *seed = items;
    for (size_t i = 0; i < n; i++, seed += strlen(seed) + 1) {
        if ((m = route_ask_seed(cfg, tls, seed, err, sizeof(err))) != NULL)
            break;
        log_warn("cluster_seed_failed", "cluster seed {address=%s}: {reason=%s}", seed, err);
    }
    seed = m != NULL ? seed : items; /* the one that answered, or the first */
    bool primary =
        m == NULL || m->nnodes == 0 ||
        (net_addr_split(seed, host, sizeof(host), &port) == 0 && map_node_of(m, host, port) >= 0);
    if ((primary || route_address(m->nodes[0].host, m->nodes[0].port, anchor) < 0) &&
        net_addr_parse(seed, anchor, &why) < 0)
        anchor->len = 0;
    if (m != NULL)
        log_notice("cluster_map",
                   "cluster map from {address=%s}: {nodes=%d} primaries, {slots=%u} slots covered",
                   seed, m->nnodes, map_covered(m));
    else
        log_error("cluster_unknown", "no cluster seed answered: the map is read from the first "
                                     "seed once it answers");
    free(items);
    return m;
}

static struct route_node *node_find(struct route *rt, const char *host, int port)
{
    for (int i = 0; i < rt->nnodes; i++)
        if (rt->nodes[i]->port == port && strcmp(rt->nodes[i]->host, host) == 0)
            return rt->nodes[i];
    return NULL;
}

/* Has the map read again within ROUTE_SOON_S. */
static void route_soon(struct route *rt)
{
    ev_tstamp soon = ev_now(rt->w->loop) + ROUTE_SOON_S;
    if (rt->refresh_at > soon)
        rt->refresh_at = soon;
}

/* The node at host:port, made (and connecting) on first use; NULL when out
 * of memory or room. */
/* Its own tracking: shared connections' events go to its invalidation. */
static void node_ready(void *arg, struct upstream *up)
{
    const struct upstream_owner *o = invalidation_owner(((struct route_node *)arg)->inv);
    o->ready(o->arg, up);
}

/* A shared connection broke or could not connect: the node may have failed,
 * and a replica may be taking over its slots. */
static void node_lost(void *arg, struct upstream *up, bool was_ready)
{
    struct route_node *n = arg;
    const struct upstream_owner *o = invalidation_owner(n->inv);
    o->lost(o->arg, up, was_ready);
    route_soon(n->rt);
}

static void node_push(void *arg, const char *data, size_t len)
{
    const struct upstream_owner *o = invalidation_owner(((struct route_node *)arg)->inv);
    o->push(o->arg, data, len);
}

/* The tunnel handed invalidations to the node's subscriber: read them now. */
static void node_relay(void *arg)
{
    invalidation_poll(((struct route_node *)arg)->inv);
}

static void node_free(struct route_node *n)
{
    pool_teardown(&n->pool);
    invalidation_destroy(&n->inv);
    tunnel_destroy(&n->tunnel);
    endpoint_deinit(&n->ep);
    free(n);
}

/* Its endpoint, tracking (through a tunnel over TLS) and pool. */
static int node_setup(struct route *rt, struct route_node *n, const char *address)
{
    struct worker *w = rt->w;
    const struct config *cfg = w->cfg;
    char err[256];
    struct upstream_env env = rt->anchor->env;
    env.ep = &n->ep;
    env.check_role = false;
    if (endpoint_init(&n->ep, w->loop, address, cfg->upstream_tls_server_name, err, sizeof(err)) <
        0) {
        log_limited(LOG_ERROR, "cluster_node_invalid", "cluster node {address=%s}: {reason=%s}",
                    address, err);
        return -1;
    }
    const struct net_addr *redis = &n->ep.addr;
    if (env.tls != NULL) {
        if ((n->tunnel = tunnel_create(w->loop, &n->ep, &w->pool.env.tls, err, sizeof(err))) ==
            NULL) {
            log_limited(LOG_ERROR, "tunnel_failed", "cluster node {address=%s}: {reason=%s}",
                        address, err);
            return -1;
        }
        tunnel_set_relay(n->tunnel, node_relay, n);
        redis = tunnel_addr(n->tunnel);
    }
    n->inv = invalidation_create(w, &n->pool, redis, true);
    const struct upstream_owner owner = {node_ready, node_lost, node_push, NULL, n};
    return n->inv != NULL && pool_setup(&n->pool, &env, cfg->pool_size, &owner) == 0 &&
                   invalidation_set_sources(n->inv, w->policy) == 0
               ? 0
               : -1;
}

/* The node at host:port, made (and connecting) on first use; NULL when out
 * of memory or room. */
static struct route_node *node_get(struct route *rt, const char *host, int port)
{
    struct route_node *n = node_find(rt, host, port);
    char address[300];
    if (n != NULL || rt->nnodes == ROUTE_NODES_MAX || (n = calloc(1, sizeof(*n))) == NULL)
        return n;
    snprintf(address, sizeof(address), strchr(host, ':') != NULL ? "[%s]:%d" : "%s:%d", host, port);
    snprintf(n->host, sizeof(n->host), "%s", host);
    n->port = port;
    n->rt = rt;
    if (node_setup(rt, n, address) < 0) {
        node_free(n);
        return NULL;
    }
    rt->nodes[rt->nnodes++] = n;
    return n;
}

/* Points the anchor at a primary of m when it is at none. */
static void route_anchor(struct route *rt, const struct map *m)
{
    struct endpoint *ep = rt->anchor->env.ep;
    char host[256] = "";
    int port = 0;
    net_addr_split(ep->shown, host, sizeof(host), &port);
    if (m->nnodes == 0 || (ep->addr.len > 0 && map_node_of(m, host, port) >= 0))
        return;
    struct route_node *n = node_find(rt, m->nodes[0].host, m->nodes[0].port);
    if (n != NULL && n->ep.addr.len > 0)
        endpoint_set(ep, &n->ep.addr, "cluster_anchor_moved", "not a primary of the cluster");
}

static void route_apply(struct route *rt, struct map *m)
{
    struct route_node **of = calloc((size_t)m->nnodes + 1, sizeof(*of));
    if (of == NULL)
        return;
    for (int i = 0; i < rt->nnodes; i++)
        rt->nodes[i]->listed = false;
    for (int i = 0; i < m->nnodes; i++)
        if ((of[i] = node_get(rt, m->nodes[i].host, m->nodes[i].port)) != NULL)
            of[i]->listed = true;
    for (unsigned s = 0; s < SLOT_COUNT; s++)
        rt->by_slot[s] = m->owner[s] == MAP_NO_NODE ? NULL : of[m->owner[s]];
    free(of);
    size_t moved = map_diff(rt->map, m, NULL, NULL);
    rt->gen += moved > 0;
    /* After a failover the keys are on a node that tracks none of the
     * proxy's reads (and may have lost writes). A slot migrated between
     * primaries needs nothing: MIGRATE invalidates the keys it moves on the
     * node they leave. */
    if (map_failed_over(rt->map, m)) {
        cache_flush(rt->w->cache);
        log_notice("cluster_failover", "cluster: a primary was replaced: local tier flushed");
    }
    if (rt->map != NULL && moved > 0 && rt->w->id == 0)
        log_notice("cluster_map_changed",
                   "cluster map: {slots=%zu} slots changed owner, {nodes=%d} primaries", moved,
                   m->nnodes);
    map_release(&rt->map);
    rt->map = map_hold(m);
    rt->check_anchor = true; /* at the tick: this may run in a reply on the anchor's connection */
}

/* exchange_done_fn of a read of the map on the anchor. */
static void route_on_map(struct exchange *x, const char *data, size_t len, uint64_t now_ms)
{
    (void)now_ms;
    struct route *rt = x->arg;
    exchange_destroy(&x);
    rt->asked = false;
    redisReader *rd = redisReaderCreate();
    void *reply = NULL;
    char err[256] = "", host[256];
    if (rd == NULL || redisReaderFeed(rd, data, len) != REDIS_OK ||
        redisReaderGetReply(rd, &reply) != REDIS_OK || reply == NULL) {
        redisReaderFree(rd);
        return;
    }
    redisReaderFree(rd);
    if (!rt->use_slots && route_unknown_subcommand(reply)) {
        rt->use_slots = true;
        rt->refresh_at = 0;
    } else if (((redisReply *)reply)->type != REDIS_REPLY_ERROR) {
        route_host(rt->from->shown, host, sizeof(host));
        struct map *m =
            route_parse(reply, host, rt->use_slots, rt->anchor->env.tls != NULL, err, sizeof(err));
        if (m != NULL) {
            route_apply(rt, m);
            rt->counters.refreshes++;
            map_release(&m);
        } else {
            log_limited(LOG_WARN, "cluster_map_invalid", "cluster map: {reason=%s}", err);
        }
    }
    freeReplyObject(reply);
}

/* A connection that can carry a read of the map now: the anchor's first,
 * else the first of a primary's, that is up. */
static struct upstream *route_asker(const struct route *rt)
{
    struct upstream *up = pool_shared(rt->anchor, 0);
    for (int i = 0; up->state != UPSTREAM_READY && i < rt->nnodes; i++)
        if (rt->nodes[i]->listed)
            up = pool_shared(&rt->nodes[i]->pool, 0);
    return up->state == UPSTREAM_READY ? up : NULL;
}

/* Reads the map again, unless a read is in flight or no connection is up. */
static void route_refresh(struct route *rt, ev_tstamp now)
{
    struct upstream *up = rt->asked ? NULL : route_asker(rt);
    struct exchange *x = up != NULL ? exchange_create(route_on_map, rt) : NULL;
    if (x == NULL)
        return;
    rt->asked = true;
    rt->from = up->env->ep;
    rt->refresh_at = now + rt->w->cfg->cluster_refresh_ms / 1000.0;
    if (rt->use_slots)
        upstream_send(up, SLOTS, sizeof(SLOTS) - 1, x);
    else
        upstream_send(up, SHARDS, sizeof(SHARDS) - 1, x);
}

int route_retry(struct route *rt, void (*fn)(void *arg, bool cancelled), void *arg)
{
    struct route_later *l = malloc(sizeof(*l));
    if (l == NULL)
        return -1;
    *l = (struct route_later){rt->later, fn, arg};
    rt->later = l;
    rt->counters.tryagain++;
    return 0;
}

/* Runs what was deferred (and what that defers runs next time). */
static void route_run_later(struct route *rt, bool cancelled)
{
    struct route_later *l = rt->later;
    rt->later = NULL;
    while (l != NULL) {
        struct route_later *next = l->next;
        l->fn(l->arg, cancelled);
        free(l);
        l = next;
    }
}

struct route *route_create(struct worker *w, const struct map *map)
{
    struct route *rt = calloc(1, sizeof(*rt));
    if (rt == NULL)
        return NULL;
    rt->w = w;
    rt->anchor = &w->pool;
    if (map != NULL)
        route_apply(rt, (struct map *)map);
    return rt;
}

void route_destroy(struct route **rtp)
{
    struct route *rt = *rtp;
    if (rt == NULL)
        return;
    route_run_later(rt, true);
    for (int i = 0; i < rt->nnodes; i++)
        pool_teardown(&rt->nodes[i]->pool);
    sched_run(&rt->w->sched); /* frees the connections closed, while their pools are there */
    for (int i = 0; i < rt->nnodes; i++)
        node_free(rt->nodes[i]);
    map_release(&rt->map);
    free(rt);
    *rtp = NULL;
}

/* The client's connection to p in lane (its lane's index in p in *index). */
static struct upstream *route_home(struct pool *p, struct lane lane, unsigned pick, int *index)
{
    *index = pool_lane(p, lane);
    if (*index < 0)
        return NULL;
    return pool_shared(p, *index * p->per_lane + (int)(pick % (unsigned)p->per_lane));
}

struct pool *route_slot_pool(struct route *rt, int slot)
{
    return slot >= 0 && rt->by_slot[slot] != NULL ? &rt->by_slot[slot]->pool : rt->anchor;
}

route_e route_request(struct route *rt, struct session *s, struct request *rq, int slot,
                      struct pool **pool, int *lane, const char **err)
{
    if (slot == ROUTE_BY_KEYS)
        slot = slot_of_request(rq);
    struct pool *p = route_slot_pool(rt, slot);
    *err = ERR_CROSSSLOT;
    if (slot == SLOT_CROSS)
        return ROUTE_CROSS;
    if (s->state != SESSION_SHARED) {
        if (slot == SLOT_NONE)
            p = s->dpool;
        if (p != s->dpool) /* the dedicated connection goes back once its request is answered */
            return s->held != 0 ? ROUTE_REFUSE : ROUTE_STALL;
    }
    struct upstream *home = route_home(p, rt->anchor->lanes[s->lane], s->pick, lane);
    if (home == NULL) {
        *err = UPSTREAM_ERR_UNAVAILABLE;
        return ROUTE_REFUSE;
    }
    s->home = home;
    *pool = p;
    return ROUTE_GO;
}

unsigned route_gen(const struct route *rt)
{
    return rt->gen;
}

bool route_covered(const struct route *rt)
{
    return rt->map != NULL && map_covered(rt->map) == SLOT_COUNT;
}

struct upstream *route_slot_home(struct route *rt, const struct session *s, int slot)
{
    int lane;
    return route_home(route_slot_pool(rt, slot), rt->anchor->lanes[s->lane], s->pick, &lane);
}

/* Parses "-MOVED <slot> <host>:<port>" or "-ASK ...". */
static bool route_parse_redirect(const char *data, size_t len, bool *asking, unsigned *slot,
                                 char *host, size_t hostlen, int *port)
{
    char line[320], address[300];
    if (len < 6 || len >= sizeof(line) || data[len - 1] != '\n')
        return false;
    memcpy(line, data, len);
    line[len - 2] = '\0';
    *asking = strncmp(line, "-ASK ", 5) == 0;
    if (!*asking && strncmp(line, "-MOVED ", 7) != 0)
        return false;
    if (sscanf(line + (*asking ? 5 : 7), "%u %299s", slot, address) != 2 || *slot >= SLOT_COUNT)
        return false;
    return net_addr_split(address, host, hostlen, port) == 0 && *port > 0;
}

bool route_redirect(struct route *rt, const struct session *s, const char *data, size_t len,
                    struct upstream **up, bool *asking)
{
    char host[256];
    int port, lane;
    unsigned slot;
    if (!route_parse_redirect(data, len, asking, &slot, host, sizeof(host), &port))
        return false;
    struct route_node *n = node_get(rt, host, port);
    *up = n != NULL ? route_home(&n->pool, rt->anchor->lanes[s->lane], s->pick, &lane) : NULL;
    if (*asking) {
        rt->counters.ask++;
        return true;
    }
    rt->counters.moved++;
    if (n != NULL && rt->by_slot[slot] != n) {
        rt->by_slot[slot] = n;
        rt->gen++;
    }
    route_soon(rt);
    return true;
}

void route_tick(struct route *rt, ev_tstamp now, bool stalled)
{
    route_run_later(rt, false);
    if (rt->check_anchor)
        route_anchor(rt, rt->map);
    rt->check_anchor = false;
    for (int i = 0; i < rt->nnodes; i++) {
        struct route_node *n = rt->nodes[i];
        pool_tick(&n->pool, now, stalled);
        invalidation_tick(n->inv, worker_now_ms(rt->w));
        if (n->listed && pool_shared(&n->pool, 0)->state == UPSTREAM_DOWN)
            route_soon(rt); /* a primary is down: its replica's promotion is followed at once */
    }
    if (now >= rt->refresh_at)
        route_refresh(rt, now);
}

bool route_ready(const struct route *rt)
{
    if (rt->map == NULL)
        return false;
    for (int i = 0; i < rt->nnodes; i++)
        if (rt->nodes[i]->listed && !pool_ready(&rt->nodes[i]->pool))
            return false;
    return true;
}

int route_set_sources(struct route *rt, const struct policy *p)
{
    int rc = 0;
    for (int i = 0; i < rt->nnodes; i++)
        rc |= invalidation_set_sources(rt->nodes[i]->inv, p);
    return rc;
}

struct invalidation *route_inv(const struct route *rt, const struct upstream *up)
{
    for (int i = 0; i < rt->nnodes; i++)
        if (up->env == &rt->nodes[i]->pool.env)
            return rt->nodes[i]->inv;
    return rt->w->inv;
}

size_t route_primaries(const struct route *rt, int *slots, size_t max)
{
    size_t n = 0;
    const struct route_node *seen[ROUTE_NODES_MAX];
    for (unsigned s = 0; s < SLOT_COUNT && n < max && n < ROUTE_NODES_MAX; s++) {
        const struct route_node *node = rt->by_slot[s];
        size_t i = 0;
        while (node != NULL && i < n && seen[i] != node)
            i++;
        if (node != NULL && i == n) {
            seen[n] = node;
            slots[n++] = (int)s;
        }
    }
    return n;
}

struct pool *route_pool_of(const struct route *rt, const struct upstream *up)
{
    for (int i = 0; i < rt->nnodes; i++)
        if (up->env == &rt->nodes[i]->pool.env)
            return &rt->nodes[i]->pool;
    return rt->anchor;
}

void route_stale(struct route *rt)
{
    route_soon(rt);
}

void route_tracking_add(const struct route *rt, struct coherence *out)
{
    for (int i = 0; i < rt->nnodes; i++) {
        const struct coherence *co = invalidation_state(rt->nodes[i]->inv);
        if (!rt->nodes[i]->listed)
            continue;
        if (out->state == COHERENCE_ON && co->state != COHERENCE_ON)
            out->state = co->state;
        out->losses += co->losses;
        out->refusals += co->refusals;
        out->failures += co->failures;
    }
}

void route_counters_add(const struct route *rt, struct upstream_counters *up,
                        struct route_counters *out)
{
    for (int i = 0; i < rt->nnodes; i++) {
        const struct upstream_counters *c = &rt->nodes[i]->pool.counters;
        for (int k = 0; k < UPSTREAM_FAILED_KINDS; k++)
            up->failed[k] += c->failed[k];
        up->reconnects += c->reconnects;
    }
    out->moved += rt->counters.moved;
    out->ask += rt->counters.ask;
    out->refreshes += rt->counters.refreshes;
    out->tryagain += rt->counters.tryagain;
}

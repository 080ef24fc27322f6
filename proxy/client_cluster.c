/* client_cluster.c - a client's requests to a Redis Cluster. */
#include "proxy/client_cluster.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "proxy/cache/cache.h"
#include "proxy/cache/fill.h"
#include "proxy/cluster/fanout.h"
#include "proxy/cluster/own.h"
#include "proxy/client_own.h"
#include "proxy/cluster/route.h"
#include "proxy/cluster/scan.h"
#include "proxy/req.h"
#include "proxy/upstream.h"
#include "proxy/worker.h"

/* Sends again on up what a redirect (asking: an -ASK) turned back: the
 * client's next requests wait for it. False when out of memory. */
static bool client_cluster_resend(struct client *c, struct upstream *up, bool asking,
                                  const char *data, size_t len, struct exchange *x)
{
    static const char ASKING[] = "*1\r\n$6\r\nASKING\r\n";
    struct exchange *a = asking ? exchange_create(exchange_discard, NULL) : NULL;
    if (asking && a == NULL)
        return false;
    if (a != NULL)
        upstream_send(up, ASKING, sizeof(ASKING) - 1, a);
    upstream_send(up, data, len, x);
    c->session.barrier = true;
    return true;
}

/* A request a node answered -TRYAGAIN or -UNBLOCKED, sent again at the next
 * tick. */
struct client_retry {
    struct worker *w;
    struct exchange *x;
    struct req *r; /* whose client it is */
    const char *data;
    size_t len;
    int slot;            /* a part's: goes to its node then; a blocking command's node */
    struct upstream *up; /* the shared connection where it went, or NULL */
    bool dedicated;      /* else on the client's dedicated connection */
    bool asking;         /* after an ASKING: it went to an -ASK's node */
    size_t reply_len;
    char reply[]; /* what the node answered: the client's answer if it cannot go again */
};

/* The client takes a dedicated connection of pool p's, in its lane. */
static struct upstream *client_cluster_take(struct client *c, struct pool *p)
{
    int lane = pool_lane(p, c->w->pool.lanes[c->session.lane]);
    struct upstream *up = lane >= 0 ? pool_dedicated_get(p, &c->owner, lane) : NULL;
    if (up != NULL && c->id.name != NULL)
        client_name_carry(c, up);
    return up;
}

/* A blocking command whose dedicated connection the node closed (after its
 * -UNBLOCKED): the client takes one of its slot's node again. */
static struct upstream *client_cluster_rededicate(struct client *c, int slot)
{
    struct session *s = &c->session;
    struct pool *p = route_slot_pool(c->w->route, slot);
    struct upstream *up =
        s->state == SESSION_SHARED && slot >= 0 ? client_cluster_take(c, p) : NULL;
    if (up != NULL) {
        s->state = SESSION_DEDICATED;
        s->dedicated = s->cur = up;
        s->dpool = p;
    }
    return up;
}

static void client_cluster_retry(void *arg, bool cancelled)
{
    struct client_retry *t = arg;
    struct client *c = t->r->client;
    struct upstream *up = NULL;
    if (c != NULL && !cancelled && t->dedicated)
        up = c->session.dedicated != NULL ? c->session.dedicated
                                          : client_cluster_rededicate(c, t->slot);
    else if (c != NULL && !cancelled)
        up = t->up != NULL ? t->up : route_slot_home(t->w->route, &c->session, t->slot);
    if (up == NULL || !upstream_usable(up) ||
        !client_cluster_resend(c, up, t->asking, t->data, t->len, t->x))
        t->x->done(t->x, t->reply, t->reply_len, worker_now_ms(t->w));
    free(t);
}

/* Asks for x's request (data, to slot's node) again at the next tick: it
 * went on up (a shared connection, after an ASKING for asking; NULL: the
 * client's dedicated connection, found again then, or for a part slot's
 * node), and the node answered reply. False when out of memory. */
static bool client_cluster_again(struct client *c, struct req *r, struct exchange *x,
                                 const char *data, size_t len, struct upstream *up, bool dedicated,
                                 bool asking, int slot, const char *reply, size_t reply_len)
{
    struct client_retry *t = malloc(sizeof(*t) + reply_len);
    if (t == NULL)
        return false;
    *t = (struct client_retry){c->w, x, r, data, len, slot, up, dedicated, asking, reply_len};
    memcpy(t->reply, reply, reply_len);
    if (route_retry(c->w->route, client_cluster_retry, t) < 0) {
        free(t);
        return false;
    }
    c->session.barrier = true;
    return true;
}

/* A reply that asks for the same request later: -TRYAGAIN (a multi-key
 * request over a slot being migrated), -UNBLOCKED (a blocked command whose
 * node a manual failover demoted, which then closes the connection: the map
 * is read again, and the request goes to its slot's node, which redirects it
 * if need be). */
static bool client_cluster_tryagain(struct client *c, const char *data, size_t len)
{
    if (len > 11 && memcmp(data, "-UNBLOCKED ", 11) == 0) {
        route_stale(c->w->route);
        return true;
    }
    return len > 10 && memcmp(data, "-TRYAGAIN ", 10) == 0;
}

/* A request on the client's dedicated connection (a blocking command) goes
 * to the node of to (a shared connection): the client takes a dedicated
 * connection of that node's instead. NULL when none can be had. */
static struct upstream *client_cluster_move(struct client *c, struct upstream *to)
{
    struct session *s = &c->session;
    struct pool *p = route_pool_of(c->w->route, to);
    struct upstream *old = s->dedicated;
    bool named = s->named;
    struct upstream *up = client_cluster_take(c, p);
    if (up == NULL)
        return NULL;
    pool_dedicated_put(s->dpool, old, !named && !s->spoiled); /* unlike the pool's: closed */
    s->dedicated = up;
    s->dpool = p;
    s->spoiled = false;
    return up;
}

/* exchange_done_fn of a part of a split command (x->index): a redirect sends
 * it again, else the reply goes to the merge. */
static void client_cluster_part(struct exchange *x, const char *data, size_t len, uint64_t now_ms)
{
    struct fanout *f = x->arg;
    size_t i = x->index;
    struct client *c = ((struct req *)fanout_owner(f)->arg)->client;
    struct upstream *up;
    bool asking;
    const char *request;
    size_t request_len;
    fanout_request(f, i, &request, &request_len);
    int max = c != NULL ? c->w->cfg->cluster_max_redirects : 0;
    if (c != NULL && client_cluster_tryagain(c, data, len) && fanout_redirect(f, i, max) &&
        client_cluster_again(c, fanout_owner(f)->arg, x, request, request_len, NULL, false, false,
                             fanout_slot(f, i), data, len))
        return;
    if (c != NULL && len > 0 && data[0] == '-' &&
        route_redirect(c->w->route, &c->session, data, len, &up, &asking) && up != NULL &&
        upstream_usable(up) && fanout_redirect(f, i, max) &&
        client_cluster_resend(c, up, asking, request, request_len, x))
        return;
    exchange_destroy(&x);
    fanout_reply(f, i, data, len, now_ms);
}

/* A command of kind over several slots (a part per slot), or over every
 * primary (broadcast: a part per node): each part on the client's
 * connection to its node, merged into one reply in order. */
static void client_cluster_fanout(struct client *c, struct request *rq, fanout_kind_e kind,
                                  bool broadcast)
{
    static const char ERR_UNAVAILABLE[] = UPSTREAM_ERR_UNAVAILABLE;
    struct worker *w = c->w;
    int slots[MAP_NODES_MAX];
    size_t n = broadcast ? route_primaries(w->route, slots, MAP_NODES_MAX) : 0;
    struct req *r = req_create(c);
    struct exchange *owner = r != NULL ? client_exchange(r) : NULL;
    struct fanout *f = owner == NULL ? NULL
                       : broadcast   ? fanout_broadcast(rq, kind, slots, n, owner)
                                     : fanout_create(rq, kind, owner);
    if (f == NULL) { /* out of memory: r, if any, goes with the client */
        if (owner != NULL) {
            r->inflight = false;
            c->session.inflight--;
        }
        exchange_destroy(&owner);
        client_close(c);
        return;
    }
    struct cache_plan plan; /* a write invalidates the tier now, and again on the reply */
    cache_plan(w->cache, rq, NULL, worker_now_ms(w), &plan);
    r->writes = plan.writes;
    for (size_t i = 0; i < fanout_parts(f); i++) {
        struct upstream *up = route_slot_home(w->route, &c->session, fanout_slot(f, i));
        struct exchange *x = exchange_create(client_cluster_part, f);
        const char *data;
        size_t len;
        fanout_request(f, i, &data, &len);
        if (x != NULL && up != NULL && upstream_usable(up)) {
            x->index = i;
            upstream_send(up, data, len, x);
            continue;
        }
        exchange_destroy(&x);
        fanout_reply(f, i, ERR_UNAVAILABLE, sizeof(ERR_UNAVAILABLE) - 1, worker_now_ms(w));
    }
    fanout_sent(f, worker_now_ms(w));
}

/* A command for every primary (DBSIZE, KEYS, FLUSHALL, FLUSHDB) on a shared
 * connection, while the map is known: true when sent so. */
static bool client_cluster_broadcast(struct client *c, struct request *rq)
{
    int slot;
    fanout_kind_e kind = fanout_broadcast_kind(rq);
    if (kind == FANOUT_NONE || c->session.state != SESSION_SHARED || c->session.held != 0 ||
        route_primaries(c->w->route, &slot, 1) == 0)
        return false;
    client_cluster_fanout(c, rq, kind, true);
    return true;
}

/* A SCAN to one primary: its reply goes to the client's exchange with the
 * client's cursor in it (scan.h). */
struct client_scan {
    struct exchange *owner;
    int node;
    int nnodes;
};

static void client_cluster_scanned(struct exchange *x, const char *data, size_t len,
                                   uint64_t now_ms)
{
    struct client_scan *sc = x->arg;
    struct exchange *owner = sc->owner;
    size_t outlen;
    char *out = scan_reply(data, len, sc->node, sc->nnodes, &outlen);
    exchange_destroy(&x);
    free(sc);
    if (out != NULL)
        owner->done(owner, out, outlen, now_ms);
    else
        owner->done(owner, data, len, now_ms);
    free(out);
}

/* SCAN on a shared connection, while the map is known: sent to the primary
 * its cursor names (scan.h); true when sent so (or answered). */
static bool client_cluster_scan(struct client *c, struct request *rq)
{
    static const char DONE[] = "*2\r\n$1\r\n0\r\n*0\r\n";
    static const char ERR_UNAVAILABLE[] = UPSTREAM_ERR_UNAVAILABLE;
    struct session *s = &c->session;
    int slots[SCAN_NODES_MAX], node;
    size_t len, n;
    if (!scan_is(rq) || s->state != SESSION_SHARED || s->held != 0 ||
        (n = route_primaries(c->w->route, slots, SCAN_NODES_MAX)) == 0)
        return false;
    char *bytes = scan_request(rq, (int)n, &node, &len);
    if (bytes == NULL && node == -1)
        return false; /* not a cursor: the anchor answers the error */
    if (bytes == NULL && node == -2)
        client_local(c, DONE, sizeof(DONE) - 1);
    struct req *r = bytes != NULL ? req_create(c) : NULL;
    struct client_scan *sc = r != NULL ? malloc(sizeof(*sc)) : NULL;
    struct exchange *x = sc != NULL ? exchange_create(client_cluster_scanned, sc) : NULL;
    struct exchange *owner = x != NULL ? client_exchange(r) : NULL;
    struct upstream *up = owner != NULL ? route_slot_home(c->w->route, s, slots[node]) : NULL;
    if (owner != NULL) {
        *sc = (struct client_scan){owner, node, (int)n};
        if (up != NULL && upstream_usable(up))
            upstream_send(up, bytes, len, x);
        else
            x->done(x, ERR_UNAVAILABLE, sizeof(ERR_UNAVAILABLE) - 1, worker_now_ms(c->w));
    } else if (node >= 0) { /* out of memory */
        exchange_destroy(&x);
        free(sc);
        client_close(c);
    }
    free(bytes);
    return true;
}

/* CLUSTER commands, READONLY, READWRITE and ASKING (cluster/own.h): true
 * when answered here; else *slot is where the request goes. */
static bool client_cluster_own(struct client *c, struct request *rq, int *slot)
{
    struct worker *w = c->w;
    struct sockaddr_storage sa;
    socklen_t salen = sizeof(sa);
    char host[INET6_ADDRSTRLEN] = "127.0.0.1", *reply = NULL;
    int port = 0;
    size_t len = 0;
    *slot = ROUTE_BY_KEYS;
    if (rq->cmd == NULL || (rq->cmd->kind != COMMAND_STICKY && /* READONLY, READWRITE, ASKING */
                            strncmp(rq->cmd->name, "cluster|", 8) != 0))
        return false; /* nearly every request: no look at the table below */
    if (getsockname(c->fd, (struct sockaddr *)&sa, &salen) == 0 && sa.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
    } else if (sa.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
    }
    const struct own_view v = {host, port, w->pool.lanes[c->session.lane].resp,
                               route_covered(w->route), w->cfg->listen};
    own_e own = cluster_own(rq, &v, &reply, &len, slot);
    if (own != OWN_ANSWERED)
        return false;
    if (reply == NULL)
        client_close(c);
    else
        client_local(c, reply, len);
    free(reply);
    return true;
}

struct upstream *client_cluster_route(struct client *c, struct request *rq, bool *stall)
{
    struct session *s = &c->session;
    struct pool *pool;
    const char *err;
    int lane, slot;
    bool oom;
    *stall = false;
    if (client_cluster_own(c, rq, &slot))
        return NULL;
    /* Requests in flight come first when the map changed since they were
     * routed, and before a request that goes to several nodes while they
     * hold the order: a redirect or a retry of theirs (barrier), or a
     * dedicated connection. */
    unsigned gen = route_gen(c->w->route);
    bool wait = s->inflight > 0 && (s->barrier || s->state != SESSION_SHARED);
    bool wide = s->held == 0 && (fanout_broadcast_kind(rq) != FANOUT_NONE || scan_is(rq));
    if (s->inflight > 0 && (s->gen != gen || (wait && wide))) {
        *stall = true;
        return NULL;
    }
    s->gen = gen;
    s->barrier = s->barrier && s->inflight > 0;
    if (client_cluster_broadcast(c, rq) || client_cluster_scan(c, rq))
        return NULL;
    if (rq->kind == COMMAND_MULTI && s->state == SESSION_SHARED && !s->parked) {
        session_apply(s, COMMAND_MULTI);
        s->parked = true;
        client_local(c, "+OK\r\n", 5);
        return NULL;
    }
    route_e routed = route_request(c->w->route, s, rq, slot, &pool, &lane, &err);
    fanout_kind_e split = routed == ROUTE_CROSS && s->held == 0 ? fanout_kind(rq) : FANOUT_NONE;
    if (split != FANOUT_NONE) {
        if ((*stall = wait))
            return NULL;
        s->barrier = false;
        client_cluster_fanout(c, rq, split, false);
        return NULL;
    }
    if (routed == ROUTE_CROSS || routed == ROUTE_REFUSE) {
        s->multi_dirty |= (s->held & SESSION_MULTI) != 0;
        client_local(c, err, strlen(err));
        return NULL;
    }
    *stall = routed == ROUTE_STALL;
    if (*stall)
        return NULL;
    struct upstream *up =
        session_route(s, s->parked ? COMMAND_MULTI : rq->kind, pool, lane, &c->owner, &oom);
    if (oom)
        client_close(c);
    *stall = up == NULL && !oom;
    return up;
}

void client_cluster_open(struct client *c, struct upstream *up)
{
    static const char MULTI[] = "*1\r\n$5\r\nMULTI\r\n";
    struct exchange *x = exchange_create(exchange_discard, NULL);
    if (x != NULL)
        upstream_send(up, MULTI, sizeof(MULTI) - 1, x);
    else
        client_close(c); /* out of memory: the transaction cannot open */
    c->session.parked = false;
}

bool client_cluster_redirect(struct req *r, struct exchange *x, const char *data, size_t len)
{
    struct client *c = r->client;
    struct req_kept *k = r->kept;
    struct upstream *up;
    bool asking;
    int max = c->w->cfg->cluster_max_redirects;
    bool dedicated = k != NULL && k->up == NULL; /* a blocking command */
    if (k != NULL && r->redirects < max && client_cluster_tryagain(c, data, len) &&
        client_cluster_again(c, r, x, k->request, k->len, k->up, dedicated, k->asking, k->slot,
                             data, len)) {
        r->redirects++;
        return true;
    }
    if (!route_redirect(c->w->route, &c->session, data, len, &up, &asking) || k == NULL ||
        r->redirects >= max || up == NULL || !upstream_usable(up) ||
        (dedicated && (up = client_cluster_move(c, up)) == NULL))
        return false; /* learnt from, but the reply goes to the client */
    r->redirects++;   /* before sending: a send that fails answers r at once */
    c->session.cur = up;
    k->up = dedicated ? NULL : up;
    k->asking = asking;
    if (r->fill != NULL) { /* the read does not fill: its PTTL went to the other node */
        cache_fill_reply(r->fill, data, len, worker_now_ms(c->w));
        r->fill = NULL;
    }
    return client_cluster_resend(c, up, asking, k->request, k->len, x);
}

/* client_cluster.c - a client's requests to a Redis Cluster. */
#include "proxy/client_cluster.h"

#include <string.h>

#include "config/config.h"
#include "proxy/cluster/route.h"
#include "proxy/req.h"
#include "proxy/upstream.h"
#include "proxy/worker.h"

struct upstream *client_cluster_route(struct client *c, struct request *rq, bool *stall)
{
    struct session *s = &c->session;
    struct pool *pool;
    const char *err;
    int lane;
    bool oom;
    *stall = false;
    if (rq->kind == COMMAND_MULTI && s->state == SESSION_SHARED && !s->parked) {
        session_apply(s, COMMAND_MULTI);
        s->parked = true;
        client_local(c, "+OK\r\n", 5);
        return NULL;
    }
    int routed = route_request(c->w->route, s, rq, &pool, &lane, &err);
    if (routed < 0) {
        s->multi_dirty |= (s->held & SESSION_MULTI) != 0;
        client_local(c, err, strlen(err));
        return NULL;
    }
    *stall = routed > 0;
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
    static const char ASKING[] = "*1\r\n$6\r\nASKING\r\n";
    struct client *c = r->client;
    struct upstream *up;
    bool asking;
    if (!route_redirect(c->w->route, &c->session, data, len, &up, &asking) || r->kept == NULL ||
        r->redirects >= c->w->cfg->cluster_max_redirects || up == NULL || !upstream_usable(up))
        return false; /* learnt from, but the reply goes to the client */
    struct exchange *a = asking ? exchange_create(exchange_discard, NULL) : NULL;
    if (asking && a == NULL)
        return false;
    if (a != NULL)
        upstream_send(up, ASKING, sizeof(ASKING) - 1, a);
    upstream_send(up, r->kept->request, r->kept->len, x);
    r->redirects++;
    c->session.barrier = true;
    c->session.cur = up;
    return true;
}

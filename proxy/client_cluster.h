/* client_cluster.h - a client's requests to a Redis Cluster (upstream.cluster).
 *
 * Where each request goes is the route's to say (cluster/route.h); this is
 * the client's side of it: a request goes to the connection of its slot's
 * node, a redirect sends it again where Redis says, and a transaction waits
 * for its first command to know its node.
 */
#ifndef NEARCACHE_CLIENT_CLUSTER_H
#define NEARCACHE_CLIENT_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/client.h"
#include "proxy/exchange.h"
#include "proxy/proto/request.h"

struct req;

/* The connection for rq: its slot's node's, in the client's session. NULL
 * when answered here (an error such as -CROSSSLOT, or a MULTI, which is
 * answered +OK and sent before the next request, on the node that request
 * picks: a transaction runs where its keys are), or with *stall when it must
 * wait for the requests in flight. */
struct upstream *client_cluster_route(struct client *c, struct request *rq, bool *stall);

/* The client took the dedicated connection up for the first request after a
 * MULTI client_cluster_route answered: the MULTI goes first. */
void client_cluster_open(struct client *c, struct upstream *up);

/* The error reply data came for r (whose client is there) on exchange x: the
 * route learns from a -MOVED or -ASK, and a request kept (r->kept) goes
 * again on x to the node named (after ASKING for -ASK), or after a -TRYAGAIN
 * to the same node at the next tick, at most upstream.cluster_max_redirects
 * times; the client's next requests wait for it, so that none overtakes it.
 * False: x and the reply are the caller's. */
bool client_cluster_redirect(struct req *r, struct exchange *x, const char *data, size_t len);

#endif

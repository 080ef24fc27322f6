/* endpoint.h - where Redis is: an address that can move.
 *
 * upstream.address may name a host: managed services and Kubernetes Services
 * move the address behind a name. The name is resolved at start (blocking,
 * as a check of the setting) and again before every reconnect, in a resolver
 * thread so that a slow DNS server never stalls the loop; a changed address
 * is logged. Under Sentinel the address is the primary Sentinel names, set
 * by sentinel.c, and unknown until it has answered.
 *
 * Every change of the address calls moved. A change of a known one, either
 * way, is a move: the server then moves every connection and the tracking
 * subscriber, since the node behind the new address is another Redis whose
 * data may differ; the first address learnt is not (the other workers hear
 * of both).
 */
#ifndef NEARCACHE_ENDPOINT_H
#define NEARCACHE_ENDPOINT_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "proxy/net.h"

struct endpoint_resolver;

/* known: an address was known before (a move), else it is the first. */
typedef void (*endpoint_moved_fn)(void *arg, bool known);

struct endpoint {
    struct ev_loop *loop;
    char name[280];                /* upstream.address when it names a host; "" otherwise */
    struct net_addr addr;          /* where connections go now; len 0 while unknown */
    char shown[80];                /* addr as text, for logs and NEARCACHE STATS */
    char server_name[256];         /* TLS: the name sent and verified ("" for none) */
    ev_tstamp resolved;            /* when the name's last resolution ended */
    uint64_t moves;                /* times a known addr changed */
    struct endpoint_resolver *res; /* the thread, started on first use */
    endpoint_moved_fn moved;       /* or NULL */
    void *moved_arg;
};

/* Sets ep up for address (NULL: unknown until endpoint_set), resolving a name
 * now. server_name (upstream.tls_server_name) may be NULL: the host of
 * address is verified then. Returns 0, or -1 with err. */
int endpoint_init(struct endpoint *ep, struct ev_loop *loop, const char *address,
                  const char *server_name, char *err, size_t errlen);

/* Stops the resolver thread. */
void endpoint_deinit(struct endpoint *ep);

/* Whether a connection may be made now to a moving address: true when the
 * address is known and, for a name, was resolved after since (the moment the
 * previous connection was lost). Else starts a resolution (if none runs) and
 * returns false: ask again on a later turn of the loop. */
bool endpoint_ready(struct endpoint *ep, ev_tstamp since);

/* Points ep at addr (a Sentinel's answer, or a resolution): logs a change as
 * event, with why, and calls moved (counted in moves when the address was
 * known before). */
void endpoint_set(struct endpoint *ep, const struct net_addr *addr, const char *event,
                  const char *why);

#endif

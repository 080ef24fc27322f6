/* tunnel.h - TLS for the hiredis control connections.
 *
 * The tracking subscriber and the Sentinel client use hiredis, and Debian
 * 12's hiredis (0.14) has no TLS. When their server must be reached over TLS
 * they connect instead to a unix socket in a private directory (mode 0700)
 * that the tunnel listens on: each connection it accepts is relayed, on the
 * loop, to a new TLS connection to the endpoint's current address, made
 * with the data path's transport (tls.h) and the context in force. Either
 * side closing closes both, so hiredis sees a failed TLS connection as a
 * closed one and reconnects as it always does.
 *
 * The hop must not reorder events: an invalidation that arrives while a
 * client's read of its key waits too (after a stall of the loop) must be
 * handled first. So the tunnel's watchers run at the highest priority, as
 * the subscriber's do, and once it has handed bytes to hiredis's socket it
 * calls relayed, which reads them at once (tracking_poll) instead of leaving
 * them for the loop's next turn.
 */
#ifndef NEARCACHE_TUNNEL_H
#define NEARCACHE_TUNNEL_H

#include <ev.h>
#include <openssl/ssl.h>

#include "proxy/net.h"

struct endpoint;
struct tunnel;

/* Listens for control connections to relay to ep (borrowed, read at each
 * connection) with *ctx (borrowed; a reload may replace it). NULL with err
 * when the socket cannot be made. */
struct tunnel *tunnel_create(struct ev_loop *loop, const struct endpoint *ep, SSL_CTX *const *ctx,
                             char *err, size_t errlen);

typedef void (*tunnel_relay_fn)(void *arg);

/* Calls fn(arg) whenever bytes from the server were handed to the local side. */
void tunnel_set_relay(struct tunnel *t, tunnel_relay_fn fn, void *arg);

/* The address hiredis connects to instead of the server: a unix socket. */
const struct net_addr *tunnel_addr(const struct tunnel *t);

/* Closes every relayed connection and the socket, and removes its directory.
 * *t is set to NULL; NULL is accepted. */
void tunnel_destroy(struct tunnel **t);

#endif

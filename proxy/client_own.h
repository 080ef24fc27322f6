/* client_own.h - what a client's connection state consists of, answered by
 * the proxy itself.
 *
 * Names and library info (CLIENT SETNAME/GETNAME/SETINFO), the database
 * (SELECT), the protocol (HELLO) and authentication (AUTH, and client
 * authentication at the proxy: NOAUTH, NOPERM) are kept per client
 * (identity.h) rather than on a Redis connection, so that the client keeps
 * a shared connection of its lane (pool.h) and the local tier. Replies are
 * Redis's own; what the proxy cannot answer exactly goes on to Redis.
 */
#ifndef NEARCACHE_CLIENT_OWN_H
#define NEARCACHE_CLIENT_OWN_H

#include <stdbool.h>

#include "proxy/client.h"
#include "proxy/proto/request.h"

typedef enum {
    CLIENT_OWN_FORWARD = 0, /* not the proxy's to answer: on to Redis as any command */
    CLIENT_OWN_DONE,        /* answered, or sent on the client's behalf */
    CLIENT_OWN_STALL,       /* must wait until the requests in flight are answered */
} client_own_e;

/* Client authentication at the proxy: an unauthenticated client gets
 * NOAUTH for everything but AUTH, HELLO, QUIT and RESET (and for what Redis
 * rejects first: unknown commands, wrong arity); a user limited to some keys
 * or commands gets NOPERM for the others, which inside MULTI dooms the EXEC.
 * True when answered so. */
bool client_gated(struct client *c, struct request *rq);

/* A command whose entry has an own (command.h): SELECT, HELLO, AUTH,
 * CLIENT SETNAME, GETNAME and SETINFO, answered here when the client can keep
 * its shared connection (or, for a name, its dedicated one). */
client_own_e client_own(struct client *c, const struct request *rq);

/* Redis accepted the SELECT or HELLO that client_own sent: the client moves
 * to lane (with every lane taken, it is closed after this reply). */
void client_moved(struct client *c, struct lane lane);

/* A client with a name takes a dedicated connection up: the connection gets
 * the name first (so that GETNAME and CLIENT LIST show it there); it is
 * cleared again when the connection goes back to the pool (session_settle). */
void client_name_carry(struct client *c, struct upstream *up);

/* NEARCACHE STATS | POLICY | RELOAD | INSPECT | EXPLAIN (admin.h): answered
 * in order; a reload once it is applied or has failed. */
void client_nearcache(struct client *c, const char *buf, const struct resp_request *req);

#endif

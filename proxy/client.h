/* client.h - client connections and the request path.
 *
 * Each request a client sends takes one path, in order (client.c): scan the
 * frame, parse it once into a request (proto/request.h), answer locally what
 * the proxy owns (protocol errors, QUIT, NEARCACHE), check the policy, choose
 * the upstream connection (session.h), let the cache plan it (a tier hit is
 * answered at once; a write invalidates first), and queue it as an exchange
 * on its connection. Replies come back in any order from the proxy's point of
 * view and leave in request order: each request holds a slot in the client's
 * FIFO until every earlier reply is written.
 */
#ifndef NEARCACHE_CLIENT_H
#define NEARCACHE_CLIENT_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

#include "proxy/identity.h"
#include "proxy/lib/buf.h"
#include "proxy/proto/resp.h"
#include "proxy/sched.h"
#include "proxy/session.h"
#include "proxy/upstream.h"

struct worker;
struct req;
struct cache_keys;

struct client {
    struct worker *w;
    int fd;
    SSL *ssl; /* a client of the TLS listener; NULL for a plain one */
    ev_io rio;
    ev_io wio;
    struct rbuf in;
    struct resp_scanner scan;
    struct obuf out;
    struct req *head; /* replies owed, in request order */
    struct req *tail;
    struct session session;          /* connection state and routing */
    struct upstream_owner owner;     /* what its dedicated connection tells it */
    struct cache_keys *multi_writes; /* keys written by the open transaction */
    struct identity id;              /* its name and library, kept by the proxy */
    ev_tstamp last_active;           /* when bytes were last read */
    unsigned hits_unsent;            /* replies from the tier not yet written */
    bool handshaking;                /* its TLS handshake is not over */
    bool spoke;                      /* bytes were read from it */
    bool stalled;                    /* next request waits for the in-flight ones */
    bool reading;                    /* read watcher active */
    bool last_write;                 /* close once the output is written */
    bool closing;                    /* freed at the next safe point */
    struct sched_item resume;        /* SCHED_RESUME */
    struct sched_item flush;         /* SCHED_FLUSH_CLIENT */
    struct sched_item reap;          /* SCHED_REAP */
    struct client *prev;             /* the worker's list of clients */
    struct client *next;
};

/* Takes over an accepted socket and links the client into w's list; with
 * tls, the client's TLS handshake comes first. Returns NULL (socket closed)
 * when out of memory. */
struct client *client_create(struct worker *w, int fd, SSL_CTX *tls);

/* Closes the socket now; the client leaves w's list and is freed at the next
 * safe point. */
void client_close(struct client *c);

/* Enforces the deadlines of its dedicated connection (upstream_tick) and
 * closes it once idle for client.idle_timeout. */
void client_tick(struct client *c, ev_tstamp now, bool stalled);

/* Answers from the proxy itself, in order with the replies still owed. */
void client_local(struct client *c, const char *data, size_t len);

/* An exchange whose reply goes to r, in its client's order; r counts as in
 * flight from now on. NULL when out of memory. */
struct exchange *client_exchange(struct req *r);

/* Answers -ERR upstream unavailable (no connection to Redis can carry the
 * request), counting it. */
void client_unavailable(struct client *c);

/* True when nothing is owed to the client and nothing of it waits: no reply
 * pending or unsent, and no request in flight, buffered, or still unread in
 * its socket. A drain closes a client only then. */
bool client_idle(const struct client *c);

#endif

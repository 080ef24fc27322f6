/* client.h - client connections and the request path.
 *
 * Each request a client sends takes one path, in order: scan the frame,
 * answer locally what the proxy owns (protocol errors, QUIT), choose the
 * upstream connection (the client's shared one, or a dedicated one while the
 * client holds connection state), and queue it there. Replies come back in
 * any order from the proxy's point of view and leave in request order: each
 * request holds a slot in the client's FIFO until every earlier one is sent.
 */
#ifndef NEARCACHE_CLIENT_H
#define NEARCACHE_CLIENT_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

#include "proxy/lib/buf.h"
#include "proxy/proto/resp.h"

struct server;
struct upstream;
struct cache_fill;
struct cache_keys;
struct cache_mget;

/* One request awaiting its reply. Owned by its client's FIFO; while it is in
 * flight the upstream also links it, and if the client goes first the
 * upstream frees it when the reply arrives. */
struct req {
    struct req *cnext;     /* client FIFO */
    struct req *unext;     /* upstream in-flight FIFO */
    struct client *client; /* NULL once the client has gone */
    char *data;            /* bytes kept until the reply can be written */
    size_t len;
    size_t cap;
    ev_tstamp sent;
    bool inflight;             /* linked by an upstream, reply not yet received */
    bool done;                 /* reply complete, waiting for earlier replies */
    bool blocking;             /* may legitimately take longer than the reply deadline */
    bool execabort;            /* a DISCARD in place of EXEC: its +OK becomes EXECABORT */
    bool fill_owner;           /* fill is this (internal PTTL) request's to complete */
    long long tracking_id;     /* internal CLIENT TRACKING ... REDIRECT <id>, else 0 */
    struct cache_mget *mget;   /* an MGET split with the tier, or a PTTL behind one */
    size_t mget_index;         /* the PTTL's miss */
    bool mget_pttl;            /* this is a PTTL behind an MGET */
    struct cache_fill *fill;   /* a read whose reply may fill the local tier */
    struct cache_keys *writes; /* keys to invalidate again when the reply arrives */
};

struct client {
    struct server *srv;
    int fd;
    ev_io rio;
    ev_io wio;
    struct rbuf in;
    struct resp_scanner scan;
    struct obuf out;
    struct req *head; /* replies owed, in request order */
    struct req *tail;
    struct upstream *home;           /* shared connection */
    struct upstream *ded;            /* dedicated connection while state is held */
    struct upstream *cur;            /* where the requests in flight went */
    struct cache_keys *multi_writes; /* keys written by the open transaction */
    size_t inflight;
    ev_tstamp last_active;
    bool sticky;         /* holds state that lasts (SELECT, HELLO 3, CLIENT SETNAME, ...) */
    bool in_multi;       /* between MULTI and EXEC/DISCARD */
    bool watching;       /* WATCH outstanding */
    bool multi_dirty;    /* the policy rejected a command of the open transaction */
    bool stream;         /* raw pass-through with its dedicated connection */
    bool reset_ded;      /* RESET sent: drop the dedicated connection once idle */
    bool stalled;        /* next request waits for the in-flight ones */
    bool reading;        /* read watcher active */
    bool last_write;     /* close once the output is written */
    bool closing;        /* freed at the next safe point */
    bool dirty;          /* on the server's flush list */
    bool ready;          /* on the server's resume list */
    struct client *prev; /* server's client list */
    struct client *next;
    struct client *dirty_next;
    struct client *ready_next;
};

/* Takes over an accepted socket. Returns NULL (socket closed) when out of memory. */
struct client *client_create(struct server *srv, int fd);

/* Frees a closed client. Call only at a safe point of the loop. */
void client_destroy(struct client **c);

/* Closes the socket now and frees the client at the next safe point. */
void client_close(struct client *c);

/* Hands the reply (or an error) for r to its client; frees r if the client is gone. */
void client_reply(struct req *r, const char *data, size_t len);

/* Hands an out-of-band RESP3 push from the client's dedicated connection. */
void client_push(struct client *c, const char *data, size_t len);

/* Hands stream-mode bytes from the client's dedicated connection. */
void client_stream(struct client *c, const char *data, size_t len);

/* Tells the client its dedicated connection is gone; was_ready says whether it
 * had carried traffic (the client's session state is then lost). */
void client_dedicated_lost(struct client *c, bool was_ready);

/* Processes buffered requests again after a stall; called at a safe point. */
void client_resume(struct client *c);

/* Writes queued replies; called before the loop sleeps. */
void client_flush(struct client *c);

/* True when nothing is owed to the client and nothing of it waits: no reply
 * pending or unsent, and no request in flight, buffered, or still unread in
 * its socket. A drain closes a client only then. */
bool client_idle(const struct client *c);

#endif

/* upstream.h - connections to Redis.
 *
 * A shared connection carries the requests of many clients, written in
 * batches; its replies are matched to requests in FIFO order and handed back
 * as raw bytes. A dedicated connection serves one client that holds
 * connection state (a transaction, a subscription, a selected database...).
 * Each connection authenticates and selects the configured database before it
 * carries traffic, fails every request it holds with a clear error when Redis
 * goes away or stops answering, and (when shared) reconnects with backoff.
 */
#ifndef NEARCACHE_UPSTREAM_H
#define NEARCACHE_UPSTREAM_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

#include "proxy/lib/buf.h"
#include "proxy/proto/resp.h"

struct server;
struct client;
struct req;
struct cache_fill;
struct cache_mget;

typedef enum {
    UPSTREAM_DOWN = 0,   /* no socket; a shared one waits for its next attempt */
    UPSTREAM_CONNECTING, /* connect() in progress */
    UPSTREAM_HANDSHAKE,  /* AUTH / SELECT / PING sent, replies pending */
    UPSTREAM_READY,      /* carrying traffic */
} upstream_state_e;

struct upstream {
    struct server *srv;
    int fd;
    ev_io rio;
    ev_io wio;
    upstream_state_e state;
    bool dedicated;       /* serves one client (owner) instead of many */
    bool stream;          /* bytes pass through unframed to owner */
    bool was_ready;       /* reached READY at least once since connecting */
    bool closing;         /* destroyed at the next safe point */
    bool dirty;           /* on the server's flush list */
    struct client *owner; /* dedicated: the client it serves; NULL when idle */
    struct rbuf in;
    struct resp_scanner scan;
    struct obuf out;
    size_t hs_bytes;  /* handshake bytes at the front of out, still unwritten */
    int hs_pending;   /* handshake replies still expected */
    struct req *head; /* requests sent or queued, oldest first */
    struct req *tail;
    size_t inflight;
    ev_tstamp since;    /* when the current state began */
    ev_tstamp retry_at; /* DOWN: when to reconnect */
    int backoff_ms;
    ev_tstamp progress;          /* when reply bytes last arrived */
    long long tracked_id;        /* CLIENT TRACKING redirects to this id (0: not tracking) */
    bool tracking_sent;          /* CLIENT TRACKING on sent since connecting */
    unsigned tracks_inflight;    /* CLIENT TRACKING on awaiting their replies */
    ev_tstamp track_retry_at;    /* a failed CLIENT TRACKING is sent again from then on */
    struct upstream *next;       /* server's idle or dead list */
    struct upstream *dirty_next; /* server's flush list */
};

/* Allocates a connection and starts connecting. Returns NULL when out of memory. */
struct upstream *upstream_create(struct server *srv, bool dedicated);

/* Fails what it holds ("-ERR upstream connection lost"), closes the socket and
 * frees it; *up is set to NULL. Call only at a safe point of the loop. */
void upstream_destroy(struct upstream **up);

/* True when a request sent now will be carried (ready or connecting). */
bool upstream_usable(const struct upstream *up);

/* Queues one request's bytes; r receives the reply (NULL in stream mode, where
 * replies are not matched). Written at the next flush. */
void upstream_send(struct upstream *up, const char *data, size_t len, struct req *r);

/* Queues the PTTL of a read's fill right behind the read r: when both replies
 * are in, the read's reply fills the local tier. Takes ownership of fill. */
void upstream_send_fill(struct upstream *up, struct req *r, struct cache_fill *fill);

/* Sends CLIENT TRACKING on, redirected to the subscriber id, on a ready
 * shared connection (after CLIENT TRACKING off when it may be tracking
 * already, since Redis refuses BCAST prefixes that a connection already
 * has); the reply goes to server_tracking_reply. */
void upstream_track(struct upstream *up, long long id);

/* Queues an MGET split with the tier (reply to r, merged with the hits) and
 * the PTTL of each missing key behind it, to fill the tier. Takes ownership
 * of m. */
void upstream_send_mget(struct upstream *up, struct req *r, struct cache_mget *m);

/* Switches a dedicated connection to pass-through: everything Redis sends is
 * handed to the owner as it arrives. */
void upstream_set_stream(struct upstream *up);

/* Writes queued bytes; called before the loop sleeps. */
void upstream_flush(struct upstream *up);

/* Enforces the connect and reply deadlines and reconnects when due. A
 * deadline is judged after reading what the socket holds: a request times
 * out only when no reply bytes have arrived for upstream.timeout while it was
 * the oldest one waiting (replies streaming in for earlier requests are
 * progress). With stalled (the loop itself stood still since the last tick:
 * the process was stopped or starved), the waits restart at now instead: a
 * request taken before the stall may not even have been written yet, and no
 * reply could be read meanwhile. */
void upstream_tick(struct upstream *up, ev_tstamp now, bool stalled);

/* Stops or resumes reading replies (back-pressure from a slow stream client). */
void upstream_pause(struct upstream *up, bool paused);

/* Marks the connection for destruction at the next safe point. */
void upstream_close(struct upstream *up);

#endif

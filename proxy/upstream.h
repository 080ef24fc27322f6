/* upstream.h - connections to Redis: a transport for exchanges.
 *
 * A connection connects, authenticates, switches to RESP3 when its lane says
 * so and selects its lane's database before it carries traffic, writes the requests queued on it in
 * batches, matches Redis's replies to their exchanges in FIFO order and hands each reply to its
 * exchange's done function (exchange.h), as raw bytes. It knows nothing of what a request is for.
 * When Redis goes away or stops answering, every exchange it holds gets a clear error instead, and
 * its owner hears of it. A shared connection carries the requests of many clients and reconnects
 * with backoff; a dedicated one serves one client that holds connection state (a transaction, a
 * subscription, a selected database...) and is done for when it breaks.
 */
#ifndef NEARCACHE_UPSTREAM_H
#define NEARCACHE_UPSTREAM_H

#include <ev.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

#include "proxy/exchange.h"
#include "proxy/lib/buf.h"
#include "proxy/proto/request.h"
#include "proxy/proto/resp.h"
#include "proxy/sched.h"

struct config;
struct endpoint;

/* The reply to a request when no connection to Redis can carry it. */
#define UPSTREAM_ERR_UNAVAILABLE "-ERR upstream unavailable\r\n"

/* The errors requests get instead of a reply from Redis. */
typedef enum {
    UPSTREAM_FAILED_UNAVAILABLE = 0, /* no connection could carry it */
    UPSTREAM_FAILED_LOST,            /* its connection broke: it may or may not have run */
    UPSTREAM_FAILED_TIMEOUT,         /* no reply within upstream.timeout */
    UPSTREAM_FAILED_KINDS,
} upstream_failed_e;

/* What a loop counts of its connections. */
struct upstream_counters {
    uint64_t failed[UPSTREAM_FAILED_KINDS]; /* clients' requests, by the error they got */
    uint64_t reconnects;                    /* attempts of shared connections after the first */
};

/* Which of the errors above reply is, when it is one an exchange was given
 * (the very bytes: compared by address); UPSTREAM_FAILED_KINDS when not. */
upstream_failed_e upstream_failed_kind(const char *reply);

/* What every connection of a loop needs; borrowed, outliving them. */
struct upstream_env {
    struct ev_loop *loop;
    struct sched *sched;
    const struct config *cfg; /* upstream.* settings, read when used */
    struct endpoint *ep;      /* where Redis is now */
    const struct resp_limits *limits;
    struct upstream_counters *counters;
    SSL_CTX *tls;    /* upstream.tls: connections made from now on speak TLS; else NULL */
    bool check_role; /* Sentinel: ROLE in the handshake; a node not master is refused */
};

struct upstream;

/* Whoever holds a connection hears of it through these (any may be NULL). */
struct upstream_owner {
    /* The handshake succeeded: the connection carries traffic from now on. */
    void (*ready)(void *arg, struct upstream *up);
    /* The connection broke (every exchange it held has had its error). A
     * dedicated one is closed by then; was_ready says whether it had carried
     * traffic. */
    void (*lost)(void *arg, struct upstream *up, bool was_ready);
    /* A RESP3 push frame, out of band. */
    void (*push)(void *arg, const char *data, size_t len);
    /* Stream mode: bytes as Redis sends them. */
    void (*stream)(void *arg, const char *data, size_t len);
    void *arg;
};

typedef enum {
    UPSTREAM_DOWN = 0,   /* no socket; a shared one waits for its next attempt */
    UPSTREAM_CONNECTING, /* connect() in progress */
    UPSTREAM_TLS,        /* TLS handshake in progress */
    UPSTREAM_HANDSHAKE,  /* AUTH / SELECT / PING sent, replies pending */
    UPSTREAM_READY,      /* carrying traffic */
} upstream_state_e;

struct upstream {
    const struct upstream_env *env;
    struct upstream_owner owner;
    int fd;
    SSL *ssl; /* NULL for a plain connection */
    ev_io rio;
    ev_io wio;
    upstream_state_e state;
    int slot;         /* a shared one's place in its pool; -1 for a dedicated one */
    struct lane lane; /* the database and protocol it is opened in */
    bool dedicated;   /* serves one client instead of many */
    bool stream;      /* bytes pass through unframed to the owner */
    bool was_ready;   /* reached READY at least once since connecting */
    bool closing;     /* destroyed at the next safe point */
    struct rbuf in;
    struct resp_scanner scan;
    struct obuf out;
    size_t hs_bytes;       /* handshake bytes at the front of out, still unwritten */
    int hs_pending;        /* handshake replies still expected */
    struct exchange *head; /* exchanges sent or queued, oldest first */
    struct exchange *tail;
    size_t inflight;
    ev_tstamp since;    /* when the current state began */
    ev_tstamp retry_at; /* DOWN: when to reconnect */
    int backoff_ms;
    ev_tstamp progress;      /* when reply bytes last arrived */
    unsigned drops;          /* times its socket and buffers were dropped (a reply's reader
                                checks it: the reply's owner may reset the connection) */
    struct upstream *next;   /* the pool's list of spares */
    struct sched_item flush; /* SCHED_FLUSH_UPSTREAM */
    struct sched_item reap;  /* SCHED_REAP */
};

/* Allocates a connection for owner in lane and starts connecting. Returns
 * NULL when out of memory. */
struct upstream *upstream_create(const struct upstream_env *env, const struct upstream_owner *owner,
                                 bool dedicated, struct lane lane);

/* Fails what it holds ("-ERR upstream connection lost"), closes the socket and
 * frees it; *up is set to NULL. Call only at a safe point of the loop. */
void upstream_destroy(struct upstream **up);

/* Marks the connection for destruction at the next safe point, failing what
 * it holds now. Its owner is not told. */
void upstream_close(struct upstream *up);

/* Drops the connection as if it broke: what it holds gets "-ERR upstream
 * connection lost" (or unavailable before it was ready), its owner is told,
 * and a shared one connects again at once, to the address in force, so that
 * requests sent meanwhile wait for it instead of failing. */
void upstream_reset(struct upstream *up);

/* Hands the connection to a new owner (a spare dedicated one changing hands). */
void upstream_set_owner(struct upstream *up, const struct upstream_owner *owner);

/* True when a request sent now will be carried (ready or connecting). */
bool upstream_usable(const struct upstream *up);

/* Queues one request's bytes; x receives the reply (NULL in stream mode,
 * where replies are not matched). Written at the next safe point. When the
 * bytes cannot be queued, x gets its error at once. */
void upstream_send(struct upstream *up, const char *data, size_t len, struct exchange *x);

/* The oldest exchange awaiting its reply, or NULL. */
struct exchange *upstream_oldest(const struct upstream *up);

/* Switches a dedicated connection to pass-through: everything Redis sends is
 * handed to the owner as it arrives. */
void upstream_set_stream(struct upstream *up);

/* Stops or resumes reading replies (back-pressure from a slow stream client). */
void upstream_pause(struct upstream *up, bool paused);

/* Enforces the connect and reply deadlines and reconnects when due. A
 * deadline is judged after reading what the socket holds: a request times
 * out only when no reply bytes have arrived for upstream.timeout while it was
 * the oldest one waiting (replies streaming in for earlier requests are
 * progress). With stalled (the loop itself stood still since the last tick:
 * the process was stopped or starved), the waits restart at now instead: a
 * request taken before the stall may not even have been written yet, and no
 * reply could be read meanwhile. */
void upstream_tick(struct upstream *up, ev_tstamp now, bool stalled);

#endif

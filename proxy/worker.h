/* worker.h - what the request path of one event loop shares.
 *
 * The settings, the command table, the local tier, the policy, the upstream
 * pool, the safe-point queues and the counters that clients, the admin
 * command and reloads use. The server (server.h) sets one up and owns it;
 * clients and the modules under them see only this, so that none of them
 * depends on the listener, the signals or the drain.
 */
#ifndef NEARCACHE_WORKER_H
#define NEARCACHE_WORKER_H

#include <ev.h>
#include <openssl/ssl.h>
#include <stdint.h>

#include "proxy/metrics.h"
#include "proxy/pool.h"
#include "proxy/proto/request.h"
#include "proxy/proto/resp.h"
#include "proxy/sched.h"

struct config;
struct cache;
struct client;
struct invalidation;
struct policy;
struct reload;

struct worker_stats {
    int clients; /* connected now */
    uint64_t total_connections;
};

struct worker {
    struct ev_loop *loop;
    struct config *cfg; /* reloads update it in place */
    struct resp_limits limits;
    struct sched sched;
    struct pool pool;                 /* env.tls: the upstream TLS context, or NULL */
    SSL_CTX *tls_clients;             /* the TLS listener's context, or NULL; reloads replace it */
    struct command_table *commands;   /* from COMMAND, else built in, and the proxy's own */
    struct request_keys request_keys; /* the keys of the request being dispatched */
    struct cache *cache;              /* the local tier in the request path */
    struct policy *policy;            /* built rules; a reload replaces it */
    struct invalidation *inv;         /* tracking: whether the tier may serve and fill */
    struct reload *reload;            /* SIGHUP and NEARCACHE RELOAD */
    struct client *clients;           /* every connected client (client.c links them) */
    struct worker_stats stats;
    struct metrics metrics; /* requests per command, bytes, latencies */
    uint64_t generation;    /* reloads applied: clients find their user again after one */
};

/* The loop's time in milliseconds. */
static inline uint64_t worker_now_ms(const struct worker *w)
{
    return (uint64_t)(ev_now(w->loop) * 1000);
}

#endif

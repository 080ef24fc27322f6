/* worker.h - what the request path of one event loop shares.
 *
 * The settings, the command table, the local tier, the policy, the upstream
 * pool, the safe-point queues and the counters that clients, the admin
 * command and reloads use. The settings, the command table and the policy
 * are the same for every worker, and the cache's tier is shared (cache.h);
 * the rest is the worker's own. The server (server.h) sets them up and owns them;
 * clients and the modules under them see only this, so that none of them
 * depends on the listener, the signals or the drain.
 */
#ifndef NEARCACHE_WORKER_H
#define NEARCACHE_WORKER_H

#include <ev.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

#include "proxy/audit.h"
#include "proxy/metrics.h"
#include "proxy/observe.h"
#include "proxy/pool.h"
#include "proxy/proto/request.h"
#include "proxy/proto/resp.h"
#include "proxy/sched.h"

struct config;
struct crew;
struct exchange;
struct cache;
struct client;
struct invalidation;
struct policy;
struct reload;
struct route;

struct worker_stats {
    int clients; /* connected now; other workers read it (relaxed atomic stores) */
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
    struct route *route;              /* upstream.cluster: where requests go; NULL for one Redis */
    struct client *clients;           /* every connected client (client.c links them) */
    struct worker_stats stats;
    struct metrics metrics; /* requests per command, bytes, latencies */
    struct observe observe; /* the hot-key sample */
    struct audit audit;     /* cache.audit_rate's checks */
    uint64_t generation;    /* reloads applied: clients find their user again after one */
    int id;                 /* 0: the main thread's, which has the reloads and the admin endpoint */
    struct worker *const *all; /* every worker of the process, all[id] being this one */
    int nall;
    struct crew *crew; /* to stop the others while reading or changing their state */
};

/* Stops every other worker, for w to read or change their state (crew.h),
 * until worker_resume; nothing to do with one worker. */
void worker_stop_others(struct worker *w);
void worker_resume(struct worker *w);

/* Reloads the settings and the policy of every worker (worker 0's reload.h
 * runs it); waiter gets the answer on w's loop. Returns 0, or -1 when out of
 * memory (waiter not taken). */
int worker_reload(struct worker *w, struct exchange *waiter);

/* The clients connected to every worker now (read without stopping them). */
int worker_clients(const struct worker *w);

/* Whether worker i has ended (its state is being freed): read it only while
 * the others are stopped. */
bool worker_gone(const struct worker *w, int i);

/* The loop's time in milliseconds. */
static inline uint64_t worker_now_ms(const struct worker *w)
{
    return (uint64_t)(ev_now(w->loop) * 1000);
}

#endif

/* server.h - the proxy process: listener, upstream pool, event loop, lifecycle.
 *
 * Work that must not run inside an I/O callback (resuming stalled clients,
 * writing, freeing closed connections) is queued on the server and done
 * before the loop sleeps, in that order.
 */
#ifndef NEARCACHE_SERVER_H
#define NEARCACHE_SERVER_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "proxy/cache/coherence.h"
#include "proxy/net.h"
#include "proxy/proto/request.h"
#include "proxy/proto/resp.h"

struct client;
struct upstream;
struct cache;
struct command_table;
struct policy;

/* Reads the settings from the same sources as at start-up into out (which it
 * initializes; the caller deinitializes it). Returns 0, or -1 with err set to
 * "file:line: key: reason". Used by reloads, on a thread of their own: it
 * must not touch the running settings. */
typedef int (*server_load_fn)(void *arg, struct config *out, char *err, size_t errlen);

struct server {
    struct ev_loop *loop;
    struct config *cfg; /* the caller's; reloads update it in place */
    server_load_fn load;
    void *load_arg;
    struct resp_limits limits;
    struct net_addr upstream_addr;
    int listen_fd;
    ev_io accept_io;
    ev_prepare prepare;
    ev_timer cron;
    ev_tstamp cron_at; /* when it last ran */
    ev_signal sig_term;
    ev_signal sig_int;
    ev_signal sig_hup;
    struct command_table *commands;   /* from COMMAND, else built in, and the proxy's own */
    struct request_keys request_keys; /* the keys of the request being dispatched */
    struct cache *cache;              /* the local tier in the request path */
    struct policy *policy;            /* built rules; a reload replaces it */
    struct reload *reload;            /* SIGHUP and NEARCACHE RELOAD: reload.h */
    struct tracking *tracking;        /* invalidation subscriber, NULL without tracking */
    struct coherence coherence;       /* whether the tier may serve and fill */
    struct upstream **pool;           /* shared connections */
    unsigned pool_next;               /* round-robin cursor for new clients */
    struct upstream *idle;            /* spare dedicated connections */
    int nidle;
    struct client *clients;
    int nclients;
    struct client *dirty_clients;
    struct upstream *dirty_ups;
    struct client *ready_clients;
    struct client *dead_clients;
    struct upstream *dead_ups;
    bool draining;
    ev_tstamp drain_deadline;
    uint64_t total_connections;
    uint64_t total_requests;
    uint64_t reloads;
    uint64_t reloads_failed;
};

/* Binds the listener, connects the pool and installs the signal handlers
 * (SIGTERM and SIGINT drain, SIGHUP reloads through load). Takes cfg's
 * policy (cfg->policy is left NULL) and builds it. Returns 0, or -1 after
 * logging why. */
int server_setup(struct server *srv, struct ev_loop *loop, struct config *cfg, server_load_fn load,
                 void *load_arg);

/* Asks Redis to report writes under the invalidation rules' source prefixes,
 * so that the rules fire on writes made elsewhere too. Returns 0, or -1 when
 * out of memory. */
int server_track_sources(struct server *srv);

/* Runs until a drain completes; returns the process exit status. */
int server_run(struct server *srv);

/* Closes every connection and frees what setup allocated. */
void server_teardown(struct server *srv);

/* Returns a dedicated connection for c: a spare one or a new one. NULL when
 * out of memory. */
struct upstream *server_dedicated_get(struct server *srv, struct client *c);

/* Takes back c's dedicated connection: kept as a spare when reusable (its
 * state is the pool's) and there is room, else closed. */
void server_dedicated_put(struct server *srv, struct upstream *up, bool reusable);

/* The loop's time in milliseconds. */
uint64_t server_now_ms(const struct server *srv);

/* True when reads on up may fill the local tier: up is tracked by the
 * current subscriber, or tracking is off or refused (TTL-bounded mode). */
bool server_may_fill(const struct server *srv, const struct upstream *up);

/* The reply (data) to the CLIENT TRACKING ... REDIRECT sent_id that up sent:
 * runs the coherence state machine (coherence.h) and carries out its
 * actions. */
void server_tracking_reply(struct server *srv, struct upstream *up, long long sent_id,
                           const char *data, size_t len);

/* A shared connection became ready: it runs CLIENT TRACKING when the
 * coherence state wants it (which, when refused, is a probe). */
void server_upstream_ready(struct server *srv, struct upstream *up);

/* Queues work for the next safe point of the loop. */
void server_want_flush_client(struct server *srv, struct client *c);
void server_want_flush_upstream(struct server *srv, struct upstream *up);
void server_want_resume(struct server *srv, struct client *c);
void server_client_dead(struct server *srv, struct client *c);
void server_upstream_dead(struct server *srv, struct upstream *up);

#endif

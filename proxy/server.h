/* server.h - the proxy process: workers, set-up, timers, signals, drain.
 *
 * The server runs `workers` event loops (crew.h), each a worker
 * (worker.h: the request path's state) with its own clients, upstream
 * connections and tracking subscriber; they share the settings, the policy,
 * the command table and the local tier (cache_store). Worker 0 runs on the
 * main thread and also owns what there is one of: the admin endpoint,
 * reloads, Sentinel, SIGHUP (reload) and SIGTERM/SIGINT (drain: stop
 * accepting, let clients finish, exit). server_worker.c is one worker's part.
 */
#ifndef NEARCACHE_SERVER_H
#define NEARCACHE_SERVER_H

#include <ev.h>
#include <stdbool.h>

#include "proxy/crew.h"
#include "proxy/endpoint.h"
#include "proxy/net.h"
#include "proxy/reload.h"
#include "proxy/worker.h"

struct cache_store;
struct config;
struct http;
struct map;
struct sentinel;
struct server;
struct tunnel;

struct listener {
    struct server_worker *sw;
    const char *address; /* borrowed from the settings */
    int fd;              /* -1 when off or closed */
    bool tls;            /* its clients speak TLS */
    ev_io io;
};

/* One worker's part: its request path, its listeners (TCP ports are shared
 * with SO_REUSEPORT, so the kernel spreads connections over the workers; a
 * unix socket is worker 0's alone), where Redis is as it sees it, and its
 * tick. */
struct server_worker {
    struct worker w;
    struct server *srv;
    struct listener listeners[2]; /* listen, tls.listen */
    struct endpoint upstream;     /* where Redis is */
    struct tunnel *tunnel;        /* upstream.tls: the tracking subscriber's way to Redis */
    ev_timer cron;
    ev_tstamp cron_at; /* when it last ran */
    bool draining;
    ev_tstamp drain_deadline;
};

struct server {
    struct config *cfg;
    struct crew crew;
    struct server_worker *workers[CREW_MAX]; /* nworkers; [0] runs on the main thread */
    struct worker *all[CREW_MAX];            /* each one's w */
    int nworkers;
    struct cache_store *store; /* the tier they share */
    struct sentinel *sentinel; /* NULL without upstream.sentinels; moves worker 0's endpoint */
    struct map *map;           /* upstream.cluster: the slot map read at start, or NULL */
    ev_timer tick;             /* readiness and watch_config, on worker 0's loop */
    ev_signal sig_term;
    ev_signal sig_int;
    ev_signal sig_hup;
    bool watching;          /* watch_config */
    const char *watch_path; /* the config file, NULL without -c; borrowed */
    uint64_t watch_stamp;   /* the watched files' versions last seen */
    ev_tstamp watch_at;     /* when to look again */
    struct http *admin;     /* the admin endpoint, NULL when off */
    bool ready;             /* as last told to systemd */
    bool draining;
};

/* Binds the listener and the admin endpoint, connects the pool and installs
 * the signal handlers (SIGTERM and SIGINT drain, SIGHUP reloads through
 * load, as does a change of the file at config_path with watch_config).
 * Takes cfg's policy (cfg->policy is left NULL) and builds it. Tells
 * systemd (sd_notify) when it is ready, reloading and stopping. Returns 0,
 * or -1 after logging why. */
int server_setup(struct server *srv, struct ev_loop *loop, struct config *cfg, reload_load_fn load,
                 void *load_arg, const char *config_path);

/* Whether the address of Redis is learnt rather than set: a primary named
 * by Sentinel, or a cluster's anchor (route.h). */
bool server_moving(const struct config *cfg);

/* Runs until a drain completes; returns the process exit status. */
int server_run(struct server *srv);

/* Closes every connection and frees what setup allocated. */
void server_teardown(struct server *srv);

#endif

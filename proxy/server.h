/* server.h - the proxy process: listeners, set-up, timers, signals, drain.
 *
 * The server sets up one worker (worker.h: the request path's shared state)
 * and owns everything around it: the listening sockets (listen, and tls.listen
 * whose clients speak TLS) and the clients they accept, where Redis is (an
 * endpoint, followed through Sentinel when configured), the periodic tick that
 * enforces deadlines, SIGHUP (reload) and SIGTERM/SIGINT (drain: stop
 * accepting, let clients finish, exit).
 */
#ifndef NEARCACHE_SERVER_H
#define NEARCACHE_SERVER_H

#include <ev.h>
#include <stdbool.h>

#include "proxy/endpoint.h"
#include "proxy/net.h"
#include "proxy/reload.h"
#include "proxy/worker.h"

struct config;
struct http;
struct sentinel;
struct server;
struct tunnel;

struct listener {
    struct server *srv;
    const char *address; /* borrowed from the settings */
    int fd;              /* -1 when off or closed */
    bool tls;            /* its clients speak TLS */
    ev_io io;
};

struct server {
    struct worker w;
    struct endpoint upstream;     /* where Redis is */
    struct sentinel *sentinel;    /* NULL without upstream.sentinels */
    struct tunnel *tunnel;        /* upstream.tls: the tracking subscriber's way to Redis */
    struct listener listeners[2]; /* listen, tls.listen */
    ev_timer cron;
    ev_tstamp cron_at; /* when it last ran */
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
    ev_tstamp drain_deadline;
};

/* Binds the listener and the admin endpoint, connects the pool and installs
 * the signal handlers (SIGTERM and SIGINT drain, SIGHUP reloads through
 * load, as does a change of the file at config_path with watch_config).
 * Takes cfg's policy (cfg->policy is left NULL) and builds it. Tells
 * systemd (sd_notify) when it is ready, reloading and stopping. Returns 0,
 * or -1 after logging why. */
int server_setup(struct server *srv, struct ev_loop *loop, struct config *cfg, reload_load_fn load,
                 void *load_arg, const char *config_path);

/* Runs until a drain completes; returns the process exit status. */
int server_run(struct server *srv);

/* Closes every connection and frees what setup allocated. */
void server_teardown(struct server *srv);

#endif

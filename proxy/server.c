/* server.c - the workers, set-up and teardown, signals, reloads, drain. */
#include "proxy/server.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "config/config.h"
#include "policy/policy.h"
#include "proxy/cache/cache.h"
#include "proxy/admin.h"
#include "proxy/cluster/route.h"
#include "proxy/http.h"
#include "proxy/introspect.h"
#include "proxy/lib/hash.h"
#include "proxy/lib/log.h"
#include "proxy/proto/command.h"
#include "proxy/sentinel.h"
#include "proxy/tls.h"
#include "proxy/server_worker.h"

#define SERVER_TICK_S  0.1 /* readiness is told to systemd this promptly */
#define SERVER_WATCH_S 1.0 /* watch_config looks at the file this often */

/* Drain for every worker, on its loop. */
struct drain_order {
    struct server_worker *sw;
    ev_tstamp deadline;
};

static void drain_run(void *arg)
{
    struct drain_order *d = arg;
    server_worker_drain(d->sw, d->deadline);
    free(d);
}

static void break_run(void *arg)
{
    ev_break(((struct server_worker *)arg)->w.loop, EVBREAK_ALL);
}

static void server_on_signal(struct ev_loop *loop, ev_signal *sig, int revents)
{
    (void)revents;
    struct server *srv = sig->data;
    if (srv->draining) {
        log_notice("drain_abort", "signal {signal=%d} again: exiting now", sig->signum);
        for (int i = 1; i < srv->nworkers; i++)
            crew_post(&srv->crew, i, break_run, srv->workers[i]);
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    int clients = worker_clients(srv->all[0]);
    log_notice("drain_start",
               "signal {signal=%d}: draining {clients=%d} clients (at most {timeout_ms=%d} ms)",
               sig->signum, clients, srv->cfg->drain_timeout_ms);
    sd_notify(0, "STOPPING=1");
    srv->draining = true;
    ev_tstamp deadline = ev_now(loop) + srv->cfg->drain_timeout_ms / 1000.0;
    for (int i = 1; i < srv->nworkers; i++) {
        struct drain_order *d = malloc(sizeof(*d));
        if (d != NULL)
            *d = (struct drain_order){srv->workers[i], deadline};
        if (d == NULL || crew_post(&srv->crew, i, drain_run, d) < 0) {
            free(d);
            crew_post(&srv->crew, i, break_run, srv->workers[i]);
        }
    }
    server_worker_drain(srv->workers[0], deadline);
}

/* exchange_done_fn of a reload the server asked for: systemd hears that it
 * is over, whatever the outcome (a failed one keeps the running settings). */
static void server_on_reloaded(struct exchange *x, const char *data, size_t len, uint64_t now_ms)
{
    (void)data;
    (void)len;
    (void)now_ms;
    exchange_destroy(&x);
    sd_notify(0, "READY=1");
}

static void server_reload(struct server *srv)
{
    struct exchange *x = exchange_create(server_on_reloaded, srv);
    if (x == NULL || reload_request(srv->all[0]->reload, x) < 0) {
        exchange_destroy(&x);
        log_error("out_of_memory", "reload: out of memory");
        return;
    }
    sd_notify(0, "RELOADING=1");
}

static void server_on_hup(struct ev_loop *loop, ev_signal *sig, int revents)
{
    (void)loop;
    (void)revents;
    server_reload(sig->data);
}

/* What identifies the versions of the watched files (watch_config): the
 * config file and the TLS certificates, keys and CAs in force, so that a
 * renewed certificate (a Secret updated by cert-manager) is reloaded too.
 * stat() follows symlinks, so a Kubernetes ConfigMap or Secret update, which
 * repoints one, shows as a new inode; a file that cannot be read is a change
 * too. One hash of them all. */
static uint64_t server_watch_stamp(const struct server *srv)
{
    const struct config *cfg = srv->cfg;
    const char *const paths[] = {
        srv->watch_path,          cfg->tls_cert_file,          cfg->tls_key_file,
        cfg->tls_ca_file,         cfg->upstream_tls_cert_file, cfg->upstream_tls_key_file,
        cfg->upstream_tls_ca_file};
    uint64_t h = hash_fnv1a64("", 0);
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct stat st;
        char one[128] = "-";
        if (paths[i] != NULL && stat(paths[i], &st) == 0)
            snprintf(one, sizeof(one), "%llu:%llu:%lld:%lld.%09ld", (unsigned long long)st.st_dev,
                     (unsigned long long)st.st_ino, (long long)st.st_size,
                     (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
        h = hash_fnv1a64_continue(h, one, strlen(one) + 1);
    }
    return h;
}

/* watch_config: reloads when a watched file has changed since the last look. */
static void server_watch_tick(struct server *srv, ev_tstamp now)
{
    if (!srv->watching || now < srv->watch_at)
        return;
    srv->watch_at = now + SERVER_WATCH_S;
    uint64_t stamp = server_watch_stamp(srv);
    if (stamp == srv->watch_stamp)
        return;
    srv->watch_stamp = stamp;
    log_notice("config_changed", "config file {path=%s} or a TLS file changed: reloading",
               srv->watch_path != NULL ? srv->watch_path : "(none)");
    server_reload(srv);
}

/* Tells systemd when readiness changes (READY=1 the first time). */
static void server_notify_ready(struct server *srv)
{
    const char *why;
    bool ready = admin_ready(srv->all[0], &why);
    if (ready == srv->ready)
        return;
    srv->ready = ready;
    if (ready)
        sd_notify(0, "READY=1\nSTATUS=ready");
    else
        sd_notifyf(0, "STATUS=not ready: %s", why);
}

static void server_on_tick(struct ev_loop *loop, ev_timer *timer, int revents)
{
    (void)revents;
    struct server *srv = timer->data;
    server_notify_ready(srv);
    server_watch_tick(srv, ev_now(loop));
}

/* Learns the commands from Redis's COMMAND, or falls back to the built-in
 * table when Redis cannot be asked now; then adds the proxy's own. */
static int server_setup_commands(struct server *srv, SSL_CTX *tls)
{
    struct worker *w = srv->all[0];
    const struct endpoint *ep = &srv->workers[0]->upstream;
    const struct config *cfg = w->cfg;
    char err[256];
    const struct ctl_target redis = {&ep->addr,
                                     tls,
                                     ep->server_name,
                                     cfg->upstream_username,
                                     cfg->upstream_password,
                                     cfg->connect_timeout_ms};
    w->commands = command_table_create();
    if (w->commands == NULL)
        return -1;
    int n = ep->addr.len == 0 ? (snprintf(err, sizeof(err), "no primary known yet"), -1)
                              : introspect_commands(&redis, w->commands, err, sizeof(err));
    if (n > 0) {
        log_info("commands_loaded", "key positions of {commands=%d} commands from COMMAND", n);
    } else {
        log_warn("commands_builtin",
                 "COMMAND unavailable ({reason=%s}): using the built-in command table", err);
        if (command_table_add_builtin(w->commands) < 0)
            return -1;
    }
    return command_table_add_proxy(w->commands);
}

/* What the workers share: the policy, the TLS contexts, Sentinel, the
 * reloads, the command table and the tier, set up in worker 0. */
static int server_setup_shared(struct server *srv, reload_load_fn load, void *load_arg)
{
    struct server_worker *first = srv->workers[0];
    struct worker *w = &first->w;
    struct config *cfg = srv->cfg;
    char err[512];
    if ((w->policy = reload_build_policy(cfg, NULL, err, sizeof(err))) == NULL) {
        log_crit("policy_invalid", "policy: {reason=%s}", err);
        return -1;
    }
    if (srv->nworkers > 1)
        policy_share(w->policy);
    w->tls_clients = tls_listen_ctx(cfg, err, sizeof(err));
    if (w->tls_clients == NULL && err[0] != '\0') {
        log_crit("tls_invalid", "{reason=%s}", err);
        return -1;
    }
    /* tunnels and Sentinel read it here, also after a reload */
    SSL_CTX *tls = w->pool.env.tls = tls_upstream_ctx(cfg, err, sizeof(err));
    if (tls == NULL && err[0] != '\0') {
        log_crit("upstream_tls_invalid", "{reason=%s}", err);
        return -1;
    }
    if (cfg->upstream_tls && !cfg->upstream_tls_verify)
        log_warn("tls_verify_off",
                 "upstream.tls_verify is off: Redis's certificate is not checked");
    if (cfg->sentinels != NULL &&
        (srv->sentinel = sentinel_create(w->loop, cfg, &first->upstream, &w->pool.env.tls, err,
                                         sizeof(err))) == NULL) {
        log_crit("sentinel_invalid", "upstream.sentinels: {reason=%s}", err);
        return -1;
    }
    if (cfg->cluster != NULL) {
        struct net_addr anchor;
        srv->map = route_discover(cfg, tls, &anchor);
        if (anchor.len == 0) {
            log_crit("upstream_address_invalid", "upstream.cluster: no seed has an address");
            return -1;
        }
        endpoint_set(&first->upstream, &anchor, "upstream_primary", "cluster anchor");
    }
    if ((w->reload = reload_create(w, load, load_arg)) == NULL ||
        server_setup_commands(srv, tls) < 0 ||
        (srv->store = cache_store_create(cfg, srv->nworkers > 1)) == NULL) {
        log_crit("out_of_memory", "out of memory");
        return -1;
    }
    return 0;
}

/* The CPU time the process's cgroup may use, in CPUs rounded up (a
 * Kubernetes CPU limit): cgroup v2's cpu.max, else v1's CFS quota; 0 when
 * there is no limit or none can be read. */
static int server_cpu_quota(void)
{
    long long quota = -1, period = 0;
    char max[32] = "";
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
    if (f != NULL) {
        if (fscanf(f, "%31s %lld", max, &period) == 2 && strcmp(max, "max") != 0)
            quota = atoll(max);
        fclose(f);
    } else if ((f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "r")) != NULL) {
        if (fscanf(f, "%lld", &quota) != 1)
            quota = -1;
        fclose(f);
        if ((f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "r")) != NULL) {
            if (fscanf(f, "%lld", &period) != 1)
                period = 0;
            fclose(f);
        }
    }
    return quota > 0 && period > 0 ? (int)((quota + period - 1) / period) : 0;
}

/* The number of workers: workers, or for 0 one per CPU the process may run
 * on (its affinity), at most its cgroup's CPU limit. */
static int server_worker_count(const struct config *cfg)
{
    cpu_set_t set;
    int n = cfg->workers;
    if (n == 0) {
        int quota = server_cpu_quota();
        n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
        n = quota > 0 && quota < n ? quota : n;
    }
    return n < 1 ? 1 : n > CREW_MAX ? CREW_MAX : n;
}

bool server_moving(const struct config *cfg)
{
    return cfg->sentinels != NULL || cfg->cluster != NULL;
}

/* The workers: allocated, linked to one another, worker 0's endpoint. */
static int server_make_workers(struct server *srv, struct ev_loop *loop)
{
    char err[512];
    const struct config *cfg = srv->cfg;
    int n = server_worker_count(cfg);
    if (crew_init(&srv->crew, n, loop) < 0) {
        log_crit("workers_failed", "cannot make an event loop for {workers=%d} workers", n);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        struct server_worker *sw = calloc(1, sizeof(*sw));
        if (sw == NULL) {
            log_crit("out_of_memory", "out of memory");
            return -1;
        }
        srv->workers[i] = sw;
        srv->all[i] = &sw->w;
        srv->nworkers = i + 1;
        sw->srv = srv;
        sw->w = (struct worker){.loop = srv->crew.m[i].loop,
                                .cfg = srv->cfg,
                                .id = i,
                                .all = srv->all,
                                .nall = n,
                                .crew = &srv->crew};
    }
    if (endpoint_init(&srv->workers[0]->upstream, loop, server_moving(cfg) ? NULL : cfg->upstream,
                      cfg->upstream_tls_server_name, err, sizeof(err)) < 0) {
        log_crit("upstream_address_invalid", "{reason=%s}", err);
        return -1;
    }
    return 0;
}

/* watch_config: the file at path and the TLS files are looked at every
 * SERVER_WATCH_S. */
static void server_setup_watch(struct server *srv, const char *path)
{
    if (!srv->cfg->watch_config)
        return;
    if (path == NULL)
        log_warn("watch_config_unavailable",
                 "watch_config: no config file (-c) to watch, only the TLS files");
    srv->watching = true;
    srv->watch_path = path;
    srv->watch_stamp = server_watch_stamp(srv);
}

int server_setup(struct server *srv, struct ev_loop *loop, struct config *cfg, reload_load_fn load,
                 void *load_arg, const char *config_path)
{
    memset(srv, 0, sizeof(*srv));
    srv->cfg = cfg;
    if (server_make_workers(srv, loop) < 0 || server_setup_shared(srv, load, load_arg) < 0)
        return -1;
    for (int i = 0; i < srv->nworkers; i++)
        if (server_worker_setup(srv->workers[i], srv->all[0]) < 0)
            return -1;
    if (config_admin_on(cfg) && (srv->admin = http_create(srv->all[0])) == NULL)
        return -1;
    server_setup_watch(srv, config_path);
    ev_timer_init(&srv->tick, server_on_tick, SERVER_TICK_S, SERVER_TICK_S);
    ev_signal_init(&srv->sig_term, server_on_signal, SIGTERM);
    ev_signal_init(&srv->sig_int, server_on_signal, SIGINT);
    ev_signal_init(&srv->sig_hup, server_on_hup, SIGHUP);
    srv->tick.data = srv;
    srv->sig_term.data = srv->sig_int.data = srv->sig_hup.data = srv;
    ev_timer_start(loop, &srv->tick);
    ev_signal_start(loop, &srv->sig_term);
    ev_signal_start(loop, &srv->sig_int);
    ev_signal_start(loop, &srv->sig_hup);
    log_notice("listening",
               "listening on {listen=%s} and {tls_listen=%s}, upstream {upstream=%s}, "
               "{workers=%d} workers with a pool of {pool_size=%d} each",
               cfg->listen, config_tls_on(cfg) ? cfg->tls_listen : "none",
               cfg->sentinels != NULL ? cfg->master_name : cfg->upstream, srv->nworkers,
               cfg->pool_size);
    return 0;
}

int server_run(struct server *srv)
{
    void *args[CREW_MAX];
    for (int i = 0; i < srv->nworkers; i++)
        args[i] = srv->workers[i];
    /* after the signal watchers: the threads inherit the mask they block */
    if (crew_start(&srv->crew, server_worker_run, args) < srv->nworkers - 1) {
        log_crit("workers_failed", "cannot start the worker threads");
        return 1;
    }
    ev_run(srv->all[0]->loop, 0);
    server_worker_leave(srv->workers[0]);
    if (srv->draining)
        log_notice("drain_done", "drained, exiting");
    return 0;
}

void server_teardown(struct server *srv)
{
    struct server_worker *first = srv->workers[0];
    if (first == NULL)
        return;
    struct worker *w = &first->w;
    for (int i = 1; i < srv->nworkers; i++) /* threads not started ended nothing */
        if (!srv->crew.m[i].running)
            server_worker_teardown(srv->workers[i]);
    server_worker_teardown(first);
    crew_teardown(&srv->crew); /* joins the threads, which tear down their own */
    reload_destroy(&w->reload);
    http_destroy(&srv->admin); /* after the reloads it may wait on are answered */
    sentinel_destroy(&srv->sentinel);
    cache_store_destroy(&srv->store);
    policy_destroy(&w->policy);
    command_table_destroy(&w->commands);
    if (w->loop != NULL) {
        ev_timer_stop(w->loop, &srv->tick);
        ev_signal_stop(w->loop, &srv->sig_term);
        ev_signal_stop(w->loop, &srv->sig_int);
        ev_signal_stop(w->loop, &srv->sig_hup);
    }
    SSL_CTX_free(w->tls_clients);
    SSL_CTX_free(w->pool.env.tls);
    map_release(&srv->map);
    for (int i = 0; i < srv->nworkers; i++)
        free(srv->workers[i]);
}

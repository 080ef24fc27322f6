/* server.c - listeners, set-up and teardown, the periodic tick, signals, drain. */
#include "proxy/server.h"

#include <errno.h>
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
#include "proxy/client.h"
#include "proxy/http.h"
#include "proxy/introspect.h"
#include "proxy/invalidation.h"
#include "proxy/lib/hash.h"
#include "proxy/lib/log.h"
#include "proxy/proto/command.h"
#include "proxy/sentinel.h"
#include "proxy/tls.h"
#include "proxy/tunnel.h"

#define SERVER_CRON_S       0.1 /* deadlines are enforced to this granularity */
#define SERVER_STALL_S      0.2 /* a longer gap between ticks: the loop stood still */
#define SERVER_ACCEPT_BURST 64  /* connections accepted per wake-up */
#define SERVER_WATCH_S      1.0 /* watch_config looks at the file this often */

static const char ERR_MAX_CLIENTS[] = "-ERR max number of clients reached\r\n";

static void server_accept_one(struct server *srv, int fd, bool tls)
{
    struct worker *w = &srv->w;
    if (net_tune(fd) < 0 || srv->draining) {
        close(fd);
        return;
    }
    if (w->stats.clients >= w->cfg->max_clients) {
        ssize_t ignored = write(fd, ERR_MAX_CLIENTS, sizeof(ERR_MAX_CLIENTS) - 1);
        (void)ignored;
        close(fd);
        return;
    }
    client_create(w, fd, tls ? w->tls_clients : NULL);
}

static void server_on_accept(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)revents;
    struct listener *l = io->data;
    for (int i = 0; i < SERVER_ACCEPT_BURST; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                log_limited(LOG_WARN, "accept_failed", "accept: {reason=%s}", strerror(errno));
            if (errno == EMFILE || errno == ENFILE) /* out of descriptors: the next tick retries */
                ev_io_stop(loop, io);
            return;
        }
        server_accept_one(l->srv, fd, l->tls);
    }
}

/* Binds l to address (NULL: l stays off). Returns 0, or -1 after logging. */
static int server_listen(struct server *srv, struct listener *l, const char *address, bool tls)
{
    struct net_addr addr;
    const char *why;
    l->srv = srv;
    l->fd = -1;
    l->tls = tls;
    l->address = address;
    if (address == NULL)
        return 0;
    const char *setting = tls ? "tls.listen" : "listen";
    if (net_addr_parse(address, &addr, &why) < 0) {
        log_crit("listen_failed", "{setting=%s} {address=%s}: {reason=%s}", setting, address, why);
        return -1;
    }
    if ((l->fd = net_listen(&addr)) < 0) {
        log_crit("listen_failed", "{setting=%s} {address=%s}: {reason=%s}", setting, address,
                 strerror(errno));
        return -1;
    }
    ev_io_init(&l->io, server_on_accept, l->fd, EV_READ);
    l->io.data = l;
    ev_io_start(srv->w.loop, &l->io);
    return 0;
}

static void server_stop_listening(struct server *srv)
{
    for (int i = 0; i < 2; i++) {
        struct listener *l = &srv->listeners[i];
        if (l->fd < 0)
            continue;
        ev_io_stop(srv->w.loop, &l->io);
        close(l->fd);
        l->fd = -1;
        if (l->address[0] == '/')
            unlink(l->address);
    }
}

/* Draining: idle clients are closed; the loop ends when none is left or the
 * drain timeout has passed. */
static void server_drain_tick(struct server *srv, ev_tstamp now)
{
    for (struct client *c = srv->w.clients, *next; c != NULL; c = next) {
        next = c->next;
        if (client_idle(c) || now >= srv->drain_deadline)
            client_close(c);
    }
    if (srv->w.stats.clients == 0) {
        log_notice("drain_done", "drained, exiting");
        ev_break(srv->w.loop, EVBREAK_ALL);
    }
}

static void server_on_signal(struct ev_loop *loop, ev_signal *sig, int revents)
{
    (void)revents;
    struct server *srv = sig->data;
    if (srv->draining) {
        log_notice("drain_abort", "signal {signal=%d} again: exiting now", sig->signum);
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    log_notice("drain_start",
               "signal {signal=%d}: draining {clients=%d} clients (at most {timeout_ms=%d} ms)",
               sig->signum, srv->w.stats.clients, srv->w.cfg->drain_timeout_ms);
    sd_notify(0, "STOPPING=1");
    srv->draining = true;
    srv->w.pool.keep_spares = false;
    srv->drain_deadline = ev_now(loop) + srv->w.cfg->drain_timeout_ms / 1000.0;
    server_stop_listening(srv);
    server_drain_tick(srv, ev_now(loop));
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
    if (x == NULL || reload_request(srv->w.reload, x) < 0) {
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
    const struct config *cfg = srv->w.cfg;
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
    bool ready = admin_ready(&srv->w, &why);
    if (ready == srv->ready)
        return;
    srv->ready = ready;
    if (ready)
        sd_notify(0, "READY=1\nSTATUS=ready");
    else
        sd_notifyf(0, "STATUS=not ready: %s", why);
}

static void server_on_cron(struct ev_loop *loop, ev_timer *timer, int revents)
{
    (void)revents;
    struct server *srv = timer->data;
    struct worker *w = &srv->w;
    ev_tstamp now = ev_now(loop);
    bool stalled = now - srv->cron_at > SERVER_STALL_S;
    if (stalled)
        log_limited(LOG_WARN, "loop_stalled",
                    "loop stalled for {stall_ms=%.0f} ms (process stopped or starved); "
                    "waits for Redis restart now",
                    (now - srv->cron_at) * 1000);
    srv->cron_at = now;
    for (int i = 0; i < 2; i++) {
        struct listener *l = &srv->listeners[i];
        if (l->fd >= 0 && !ev_is_active(&l->io))
            ev_io_start(loop, &l->io); /* stopped when descriptors ran out */
    }
    pool_tick(&w->pool, now, stalled);
    for (struct client *c = w->clients, *next; c != NULL; c = next) {
        next = c->next;
        client_tick(c, now, stalled);
    }
    invalidation_tick(w->inv, worker_now_ms(w));
    cache_tick(w->cache, worker_now_ms(w));
    server_notify_ready(srv);
    server_watch_tick(srv, now);
    if (srv->draining)
        server_drain_tick(srv, now);
}

/* Learns the commands from Redis's COMMAND, or falls back to the built-in
 * table when Redis cannot be asked now; then adds the proxy's own. */
static int server_setup_commands(struct server *srv, SSL_CTX *tls)
{
    struct worker *w = &srv->w;
    const struct config *cfg = w->cfg;
    char err[256];
    const struct ctl_target redis = {&srv->upstream.addr,       tls,
                                     srv->upstream.server_name, cfg->upstream_username,
                                     cfg->upstream_password,    cfg->connect_timeout_ms};
    w->commands = command_table_create();
    if (w->commands == NULL)
        return -1;
    int n = srv->upstream.addr.len == 0
                ? (snprintf(err, sizeof(err), "no primary known yet"), -1)
                : introspect_commands(&redis, w->commands, err, sizeof(err));
    if (n > 0) {
        log_info("commands_loaded", "key positions of {commands=%d} commands from COMMAND", n);
    } else {
        log_warn("commands_builtin",
                 "COMMAND unavailable ({reason=%s}): using the built-in command table", err);
        if (command_table_add_builtin(w->commands) < 0)
            return -1;
    }
    if (command_table_add_proxy(w->commands) < 0)
        return -1;
    return metrics_setup(&w->metrics, command_table_count(w->commands));
}

/* Redis moved (Sentinel named a new primary, or the name resolves to a new
 * address): the tier is emptied and tracked again there, and every
 * connection moves (what was in flight gets connection lost). */
static void server_on_moved(void *arg)
{
    struct server *srv = arg;
    struct worker *w = &srv->w;
    invalidation_restart(w->inv, "Redis moved");
    pool_reset(&w->pool);
    for (struct client *c = w->clients, *next; c != NULL; c = next) {
        next = c->next; /* a client whose session is lost is closed */
        if (c->session.dedicated != NULL)
            upstream_reset(c->session.dedicated);
    }
}

/* The tunnel handed invalidations to the subscriber's socket: read them now. */
static void server_on_relay(void *arg)
{
    invalidation_poll(((struct server *)arg)->w.inv);
}

/* The way to Redis: the upstream TLS context, the tracking subscriber
 * (through a tunnel over TLS) and the pool. */
static int server_setup_upstream(struct server *srv, SSL_CTX *tls)
{
    struct worker *w = &srv->w;
    const struct config *cfg = w->cfg;
    char err[512];
    const struct net_addr *redis = &srv->upstream.addr;
    const struct upstream_env env = {.loop = w->loop,
                                     .sched = &w->sched,
                                     .cfg = cfg,
                                     .ep = &srv->upstream,
                                     .limits = &w->limits,
                                     .tls = tls,
                                     .check_role = cfg->sentinels != NULL};
    if (tls != NULL) {
        srv->tunnel = tunnel_create(w->loop, &srv->upstream, &w->pool.env.tls, err, sizeof(err));
        if (srv->tunnel == NULL) {
            log_crit("tunnel_failed", "upstream.tls: {reason=%s}", err);
            return -1;
        }
        tunnel_set_relay(srv->tunnel, server_on_relay, srv);
        redis = tunnel_addr(srv->tunnel);
    }
    if ((w->inv = invalidation_create(w, redis)) == NULL ||
        pool_setup(&w->pool, &env, cfg->pool_size, invalidation_owner(w->inv)) < 0) {
        log_crit("out_of_memory", "out of memory");
        return -1;
    }
    return invalidation_set_sources(w->inv, w->policy);
}

/* The request path: tier, policy, pool, coherence and reloads. */
static int server_setup_worker(struct server *srv, struct ev_loop *loop, struct config *cfg,
                               reload_load_fn load, void *load_arg)
{
    struct worker *w = &srv->w;
    char err[512];
    w->loop = loop;
    w->cfg = cfg;
    w->limits.max_bulk_len = cfg->max_bulk_len;
    w->limits.max_multibulk_len = cfg->max_multibulk_len;
    w->limits.max_inline_len = (size_t)cfg->max_inline_len;
    sched_setup(&w->sched, loop);
    if ((w->policy = reload_build_policy(cfg, NULL, err, sizeof(err))) == NULL) {
        log_crit("policy_invalid", "policy: {reason=%s}", err);
        return -1;
    }
    /* tunnels and Sentinel read it here, also after a reload (pool_setup keeps it) */
    SSL_CTX *tls = w->pool.env.tls = tls_upstream_ctx(cfg, err, sizeof(err));
    if (tls == NULL && err[0] != '\0') {
        log_crit("upstream_tls_invalid", "{reason=%s}", err);
        return -1;
    }
    if (cfg->upstream_tls && !cfg->upstream_tls_verify)
        log_warn("tls_verify_off",
                 "upstream.tls_verify is off: Redis's certificate is not checked");
    if (cfg->sentinels != NULL &&
        (srv->sentinel = sentinel_create(loop, cfg, &srv->upstream, &w->pool.env.tls, err,
                                         sizeof(err))) == NULL) {
        log_crit("sentinel_invalid", "upstream.sentinels: {reason=%s}", err);
        return -1;
    }
    if ((w->reload = reload_create(w, load, load_arg)) == NULL ||
        server_setup_commands(srv, tls) < 0 || (w->cache = cache_create(cfg, w->policy)) == NULL) {
        log_crit("out_of_memory", "out of memory");
        return -1;
    }
    return server_setup_upstream(srv, tls);
}

/* watch_config: the file at path and the TLS files are looked at every
 * SERVER_WATCH_S. */
static void server_setup_watch(struct server *srv, const char *path)
{
    if (!srv->w.cfg->watch_config)
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
    srv->listeners[0].fd = srv->listeners[1].fd = -1;
    srv->w.loop = loop;
    srv->w.cfg = cfg;
    char err[512];
    if (endpoint_init(&srv->upstream, loop, cfg->sentinels != NULL ? NULL : cfg->upstream,
                      cfg->upstream_tls_server_name, err, sizeof(err)) < 0) {
        log_crit("upstream_address_invalid", "{reason=%s}", err);
        return -1;
    }
    srv->upstream.moved = server_on_moved;
    srv->upstream.moved_arg = srv;
    srv->w.tls_clients = tls_listen_ctx(cfg, err, sizeof(err));
    if (srv->w.tls_clients == NULL && err[0] != '\0') {
        log_crit("tls_invalid", "{reason=%s}", err);
        return -1;
    }
    if (server_listen(srv, &srv->listeners[0], cfg->listen, false) < 0 ||
        server_listen(srv, &srv->listeners[1], config_tls_on(cfg) ? cfg->tls_listen : NULL, true) <
            0 ||
        server_setup_worker(srv, loop, cfg, load, load_arg) < 0)
        return -1;
    if (config_admin_on(cfg) && (srv->admin = http_create(&srv->w)) == NULL)
        return -1;
    server_setup_watch(srv, config_path);
    ev_timer_init(&srv->cron, server_on_cron, SERVER_CRON_S, SERVER_CRON_S);
    ev_now_update(loop); /* set-up may have taken a while: not a stall */
    srv->cron_at = ev_now(loop);
    ev_signal_init(&srv->sig_term, server_on_signal, SIGTERM);
    ev_signal_init(&srv->sig_int, server_on_signal, SIGINT);
    ev_signal_init(&srv->sig_hup, server_on_hup, SIGHUP);
    srv->cron.data = srv;
    srv->sig_term.data = srv->sig_int.data = srv->sig_hup.data = srv;
    ev_timer_start(loop, &srv->cron);
    ev_signal_start(loop, &srv->sig_term);
    ev_signal_start(loop, &srv->sig_int);
    ev_signal_start(loop, &srv->sig_hup);
    log_notice("listening",
               "listening on {listen=%s} and {tls_listen=%s}, upstream {upstream=%s}, pool of "
               "{pool_size=%d}",
               cfg->listen, config_tls_on(cfg) ? cfg->tls_listen : "none",
               cfg->sentinels != NULL ? cfg->master_name : cfg->upstream, cfg->pool_size);
    return 0;
}

int server_run(struct server *srv)
{
    ev_run(srv->w.loop, 0);
    return 0;
}

void server_teardown(struct server *srv)
{
    struct worker *w = &srv->w;
    server_stop_listening(srv);
    while (w->clients != NULL)
        client_close(w->clients);
    reload_destroy(&w->reload);
    http_destroy(&srv->admin); /* after the reloads it may wait on are answered */
    if (w->sched.loop != NULL) {
        sched_run(&w->sched); /* writes and frees what the closes queued */
        pool_teardown(&w->pool);
        sched_teardown(&w->sched);
    }
    invalidation_destroy(&w->inv);
    sentinel_destroy(&srv->sentinel);
    tunnel_destroy(&srv->tunnel);
    cache_destroy(&w->cache);
    policy_destroy(&w->policy);
    command_table_destroy(&w->commands);
    metrics_teardown(&w->metrics);
    request_keys_free(&w->request_keys);
    ev_timer_stop(w->loop, &srv->cron);
    ev_signal_stop(w->loop, &srv->sig_term);
    ev_signal_stop(w->loop, &srv->sig_int);
    ev_signal_stop(w->loop, &srv->sig_hup);
    SSL_CTX_free(w->tls_clients);
    SSL_CTX_free(w->pool.env.tls);
    endpoint_deinit(&srv->upstream);
}

/* server.c - listener, upstream pool, deferred work, timers, signals, drain. */
#include "proxy/server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "policy/policy.h"
#include "proxy/cache/cache.h"
#include "proxy/client.h"
#include "proxy/introspect.h"
#include "proxy/proto/command.h"
#include "proxy/tracking.h"
#include "proxy/lib/log.h"
#include "proxy/reload.h"
#include "proxy/upstream.h"

#define SERVER_CRON_S        0.1 /* deadlines are enforced to this granularity */
#define SERVER_STALL_S       0.2 /* a longer gap between ticks: the loop stood still */
#define SERVER_ACCEPT_BURST  64  /* connections accepted per wake-up */
#define SERVER_TRACK_RETRY_S 0.5 /* a failed CLIENT TRACKING is sent again after this */

static const char ERR_MAX_CLIENTS[] = "-ERR max number of clients reached\r\n";

void server_want_flush_client(struct server *srv, struct client *c)
{
    if (c->dirty || c->closing)
        return;
    c->dirty = true;
    c->dirty_next = srv->dirty_clients;
    srv->dirty_clients = c;
}

void server_want_flush_upstream(struct server *srv, struct upstream *up)
{
    if (up->dirty || up->closing)
        return;
    up->dirty = true;
    up->dirty_next = srv->dirty_ups;
    srv->dirty_ups = up;
}

void server_want_resume(struct server *srv, struct client *c)
{
    if (c->ready || c->closing)
        return;
    c->ready = true;
    c->ready_next = srv->ready_clients;
    srv->ready_clients = c;
}

static void server_unlink_client(struct server *srv, struct client *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        srv->clients = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    srv->nclients--;
}

void server_client_dead(struct server *srv, struct client *c)
{
    server_unlink_client(srv, c);
    c->next = srv->dead_clients;
    srv->dead_clients = c;
}

void server_upstream_dead(struct server *srv, struct upstream *up)
{
    for (struct upstream **p = &srv->idle; *p != NULL; p = &(*p)->next) {
        if (*p == up) {
            *p = up->next;
            srv->nidle--;
            break;
        }
    }
    up->next = srv->dead_ups;
    srv->dead_ups = up;
}

struct upstream *server_dedicated_get(struct server *srv, struct client *c)
{
    struct upstream *up = srv->idle;
    if (up != NULL) {
        srv->idle = up->next;
        srv->nidle--;
        up->next = NULL;
    } else {
        up = upstream_create(srv, true);
        if (up == NULL)
            return NULL;
    }
    up->owner = c;
    return up;
}

void server_dedicated_put(struct server *srv, struct upstream *up, bool reusable)
{
    if (reusable && up->state == UPSTREAM_READY && up->inflight == 0 && !up->stream &&
        srv->nidle < srv->cfg->idle_dedicated && !srv->draining) {
        up->owner = NULL;
        up->next = srv->idle;
        srv->idle = up;
        srv->nidle++;
        return;
    }
    upstream_close(up);
}

/* Runs the deferred work: resume stalled clients, write, free the closed. */
static void server_on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    struct server *srv = w->data;
    while (srv->ready_clients != NULL || srv->dirty_ups != NULL || srv->dirty_clients != NULL) {
        while (srv->ready_clients != NULL) {
            struct client *c = srv->ready_clients;
            srv->ready_clients = c->ready_next;
            c->ready = false;
            client_resume(c);
        }
        while (srv->dirty_ups != NULL) {
            struct upstream *up = srv->dirty_ups;
            srv->dirty_ups = up->dirty_next;
            up->dirty = false;
            upstream_flush(up);
        }
        while (srv->dirty_clients != NULL) {
            struct client *c = srv->dirty_clients;
            srv->dirty_clients = c->dirty_next;
            c->dirty = false;
            client_flush(c);
        }
    }
    while (srv->dead_clients != NULL) {
        struct client *c = srv->dead_clients;
        srv->dead_clients = c->next;
        client_destroy(&c);
    }
    while (srv->dead_ups != NULL) {
        struct upstream *up = srv->dead_ups;
        srv->dead_ups = up->next;
        upstream_destroy(&up);
    }
}

static void server_accept_one(struct server *srv, int fd)
{
    if (net_tune(fd) < 0 || srv->draining) {
        close(fd);
        return;
    }
    if (srv->nclients >= srv->cfg->max_clients) {
        ssize_t ignored = write(fd, ERR_MAX_CLIENTS, sizeof(ERR_MAX_CLIENTS) - 1);
        (void)ignored;
        close(fd);
        return;
    }
    struct client *c = client_create(srv, fd);
    if (c == NULL)
        return;
    c->next = srv->clients;
    if (srv->clients != NULL)
        srv->clients->prev = c;
    srv->clients = c;
    srv->nclients++;
    srv->total_connections++;
}

static void server_on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct server *srv = w->data;
    for (int i = 0; i < SERVER_ACCEPT_BURST; i++) {
        int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                log_limited(LOG_WARN, "accept: %s", strerror(errno));
            return;
        }
        server_accept_one(srv, fd);
    }
}

static void server_stop_listening(struct server *srv)
{
    if (srv->listen_fd < 0)
        return;
    ev_io_stop(srv->loop, &srv->accept_io);
    close(srv->listen_fd);
    srv->listen_fd = -1;
    if (srv->cfg->listen[0] == '/')
        unlink(srv->cfg->listen);
}

/* Draining: idle clients are closed; the loop ends when none is left or the
 * drain timeout has passed. */
static void server_drain_tick(struct server *srv, ev_tstamp now)
{
    for (struct client *c = srv->clients, *next; c != NULL; c = next) {
        next = c->next;
        if (client_idle(c) || now >= srv->drain_deadline)
            client_close(c);
    }
    if (srv->nclients == 0) {
        log_notice("drained, exiting");
        ev_break(srv->loop, EVBREAK_ALL);
    }
}

static void server_on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)revents;
    struct server *srv = w->data;
    if (srv->draining) {
        log_notice("signal %d again: exiting now", w->signum);
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    log_notice("signal %d: draining %d clients (at most %d ms)", w->signum, srv->nclients,
               srv->cfg->drain_timeout_ms);
    srv->draining = true;
    srv->drain_deadline = ev_now(loop) + srv->cfg->drain_timeout_ms / 1000.0;
    server_stop_listening(srv);
    server_drain_tick(srv, ev_now(loop));
}

uint64_t server_now_ms(const struct server *srv)
{
    return (uint64_t)(ev_now(srv->loop) * 1000);
}

/* How many bytes of a reply to show in the log: its line without the CRLF,
 * at most 200. */
static int server_shown(size_t len)
{
    return (int)(len > 2 && len < 200 ? len - 2 : len < 200 ? len : 200);
}

bool server_may_fill(const struct server *srv, const struct upstream *up)
{
    return coherence_may_fill(&srv->coherence, up->tracked_id);
}

/* Sends CLIENT TRACKING on the first ready shared connection not already
 * waiting for a reply to one. */
static void server_tracking_probe(struct server *srv)
{
    for (int i = 0; i < srv->cfg->pool_size; i++) {
        struct upstream *up = srv->pool[i];
        if (up->state == UPSTREAM_READY && up->tracks_inflight == 0) {
            upstream_track(up, srv->coherence.id);
            return;
        }
    }
}

/* Carries out the actions of a coherence event; up, data and len are the
 * connection and reply behind it (NULL for subscriber events). */
static void server_coherence_apply(struct server *srv, unsigned actions, struct upstream *up,
                                   long long sent_id, const char *data, size_t len)
{
    const struct coherence *co = &srv->coherence;
    if (actions & COHERENCE_FLUSH)
        cache_flush(srv->cache);
    if (actions & (COHERENCE_TIER_OFF | COHERENCE_TIER_ON))
        cache_set_active(srv->cache, (actions & COHERENCE_TIER_ON) != 0);
    if ((actions & COHERENCE_MARK) && up != NULL)
        up->tracked_id = sent_id;
    if ((actions & COHERENCE_RETRY) && up != NULL)
        up->track_retry_at = ev_now(srv->loop) + SERVER_TRACK_RETRY_S;
    if (actions & COHERENCE_TRACK_ALL) {
        for (int i = 0; i < srv->cfg->pool_size; i++)
            if (srv->pool[i] != up)
                upstream_track(srv->pool[i], co->id);
    }
    if (actions & COHERENCE_PROBE)
        server_tracking_probe(srv);
    if (!(actions & COHERENCE_LOG))
        return;
    int n = data == NULL ? 0 : server_shown(len);
    if (co->state == COHERENCE_REFUSED)
        log_warn("tracking: CLIENT TRACKING refused (%.*s): writes made elsewhere are seen "
                 "within cache.ttl only; asking again every %d ms",
                 n, data, COHERENCE_PROBE_MS);
    else if (co->state == COHERENCE_DOWN)
        log_warn("tracking: subscriber lost: local tier off until it is back");
    else
        log_notice("tracking: invalidations redirected to client %lld", co->id);
}

void server_tracking_reply(struct server *srv, struct upstream *up, long long sent_id,
                           const char *data, size_t len)
{
    unsigned actions = coherence_reply(&srv->coherence, sent_id, data, len, server_now_ms(srv));
    if (actions & COHERENCE_RETRY) {
        log_limited(LOG_WARN, "tracking: CLIENT TRACKING failed (%.*s): trying again",
                    server_shown(len), data);
    }
    server_coherence_apply(srv, actions, up, sent_id, data, len);
}

void server_upstream_ready(struct server *srv, struct upstream *up)
{
    if (coherence_wants_tracking(&srv->coherence))
        upstream_track(up, srv->coherence.id);
}

/* Tracks again the shared connections whose last attempt failed, and probes
 * a Redis that refused tracking when that is due. */
static void server_tracking_tick(struct server *srv, ev_tstamp now)
{
    const struct coherence *co = &srv->coherence;
    server_coherence_apply(srv, coherence_tick(&srv->coherence, server_now_ms(srv)), NULL, 0, NULL,
                           0);
    if (co->state != COHERENCE_ON)
        return;
    for (int i = 0; i < srv->cfg->pool_size; i++) {
        struct upstream *up = srv->pool[i];
        if (up->state == UPSTREAM_READY && up->tracked_id != co->id && up->tracks_inflight == 0 &&
            now >= up->track_retry_at)
            upstream_track(up, co->id);
    }
}

static void server_on_cron(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct server *srv = w->data;
    ev_tstamp now = ev_now(loop);
    bool stalled = now - srv->cron_at > SERVER_STALL_S;
    if (stalled)
        log_limited(LOG_WARN,
                    "loop stalled for %.0f ms (process stopped or starved); "
                    "waits for Redis restart now",
                    (now - srv->cron_at) * 1000);
    srv->cron_at = now;
    for (int i = 0; i < srv->cfg->pool_size; i++)
        upstream_tick(srv->pool[i], now, stalled);
    int idle_ms = srv->cfg->client_idle_timeout_ms;
    for (struct client *c = srv->clients, *next; c != NULL; c = next) {
        next = c->next;
        if (c->ded != NULL)
            upstream_tick(c->ded, now, stalled);
        if (idle_ms > 0 && c->head == NULL && !c->stream &&
            (now - c->last_active) * 1000 >= idle_ms)
            client_close(c);
    }
    server_tracking_tick(srv, now);
    cache_tick(srv->cache, server_now_ms(srv));
    if (srv->draining)
        server_drain_tick(srv, now);
}

static void server_on_invalidate(void *arg, const char *key, size_t len)
{
    struct server *srv = arg;
    cache_invalidate(srv->cache, key, len, server_now_ms(srv));
}

static void server_on_flush(void *arg)
{
    struct server *srv = arg;
    cache_flush(srv->cache);
}

/* The subscriber came up with a new id (data connections redirect to it from
 * now on) or went down (invalidations may be missed). */
static void server_on_tracking(void *arg, long long id)
{
    struct server *srv = arg;
    server_coherence_apply(srv, coherence_subscriber(&srv->coherence, id, server_now_ms(srv)), NULL,
                           0, NULL, 0);
}

/* Starts the invalidation subscriber when the tier and tracking are on;
 * without it the tier serves at once, stale for at most cache.ttl. */
static int server_setup_tracking(struct server *srv)
{
    const struct config *cfg = srv->cfg;
    bool tracking = cfg->cache_enabled && cfg->cache_tracking;
    coherence_init(&srv->coherence, tracking);
    if (!tracking) {
        cache_set_active(srv->cache, true);
        return 0;
    }
    const struct tracking_callbacks cb = {server_on_invalidate, server_on_flush, server_on_tracking,
                                          srv};
    srv->tracking =
        tracking_create(srv->loop, cfg->upstream, cfg->upstream_username, cfg->upstream_password,
                        cfg->connect_timeout_ms, cfg->reconnect_max_ms, &cb);
    return srv->tracking != NULL ? 0 : -1;
}

int server_track_sources(struct server *srv)
{
    size_t n = policy_source_count(srv->policy);
    if (srv->tracking == NULL)
        return 0;
    const char **prefixes = calloc(n + 1, sizeof(*prefixes));
    size_t *lens = calloc(n + 1, sizeof(*lens));
    int rc = prefixes != NULL && lens != NULL ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < n; i++)
        prefixes[i] = policy_source(srv->policy, i, &lens[i]);
    if (rc == 0)
        rc = tracking_set_sources(srv->tracking, prefixes, lens, n);
    free(prefixes);
    free(lens);
    return rc;
}

static void server_on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    struct server *srv = w->data;
    if (reload_request(srv->reload, NULL) < 0)
        log_error("reload: out of memory");
}

/* Learns the commands from Redis's COMMAND, or falls back to the built-in
 * table when Redis cannot be asked now; then adds the proxy's own. */
static int server_setup_commands(struct server *srv)
{
    const struct config *cfg = srv->cfg;
    char host[256] = "", err[256];
    int port = 0;
    srv->commands = command_table_create();
    if (srv->commands == NULL || net_addr_split(cfg->upstream, host, sizeof(host), &port) < 0)
        return -1;
    int n = introspect_commands(port > 0 ? host : NULL, port, port > 0 ? NULL : cfg->upstream,
                                cfg->upstream_username, cfg->upstream_password,
                                cfg->connect_timeout_ms, srv->commands, err, sizeof(err));
    if (n > 0) {
        log_info("key positions of %d commands from COMMAND", n);
    } else {
        log_warn("COMMAND unavailable (%s): using the built-in command table", err);
        if (command_table_add_builtin(srv->commands) < 0)
            return -1;
    }
    return command_table_add_proxy(srv->commands);
}

static int server_setup_pool(struct server *srv)
{
    srv->pool = calloc((size_t)srv->cfg->pool_size, sizeof(*srv->pool));
    if (srv->pool == NULL)
        return -1;
    for (int i = 0; i < srv->cfg->pool_size; i++) {
        srv->pool[i] = upstream_create(srv, false);
        if (srv->pool[i] == NULL)
            return -1;
    }
    return 0;
}

int server_setup(struct server *srv, struct ev_loop *loop, struct config *cfg, server_load_fn load,
                 void *load_arg)
{
    char err[512];
    memset(srv, 0, sizeof(*srv));
    srv->loop = loop;
    srv->cfg = cfg;
    srv->load = load;
    srv->load_arg = load_arg;
    srv->listen_fd = -1;
    srv->prepare.data = srv;
    srv->limits.max_bulk_len = cfg->max_bulk_len;
    srv->limits.max_multibulk_len = cfg->max_multibulk_len;
    srv->limits.max_inline_len = (size_t)cfg->max_inline_len;
    struct net_addr listen_addr;
    const char *why;
    if (net_addr_parse(cfg->upstream, &srv->upstream_addr, &why) < 0) {
        log_crit("upstream.address %s: %s", cfg->upstream, why);
        return -1;
    }
    if (net_addr_parse(cfg->listen, &listen_addr, &why) < 0) {
        log_crit("listen %s: %s", cfg->listen, why);
        return -1;
    }
    srv->listen_fd = net_listen(&listen_addr);
    if (srv->listen_fd < 0) {
        log_crit("listen %s: %s", cfg->listen, strerror(errno));
        return -1;
    }
    if ((srv->policy = reload_build_policy(cfg, NULL, err, sizeof(err))) == NULL) {
        log_crit("policy: %s", err);
        return -1;
    }
    if ((srv->reload = reload_create(srv)) == NULL || server_setup_commands(srv) < 0 ||
        (srv->cache = cache_create(cfg, srv->policy)) == NULL || server_setup_pool(srv) < 0) {
        log_crit("out of memory");
        return -1;
    }
    if (server_setup_tracking(srv) < 0 || server_track_sources(srv) < 0)
        return -1;
    ev_io_init(&srv->accept_io, server_on_accept, srv->listen_fd, EV_READ);
    ev_prepare_init(&srv->prepare, server_on_prepare);
    ev_timer_init(&srv->cron, server_on_cron, SERVER_CRON_S, SERVER_CRON_S);
    ev_now_update(loop); /* set-up may have taken a while: not a stall */
    srv->cron_at = ev_now(loop);
    ev_signal_init(&srv->sig_term, server_on_signal, SIGTERM);
    ev_signal_init(&srv->sig_int, server_on_signal, SIGINT);
    ev_signal_init(&srv->sig_hup, server_on_hup, SIGHUP);
    srv->accept_io.data = srv->cron.data = srv;
    srv->sig_term.data = srv->sig_int.data = srv->sig_hup.data = srv;
    ev_io_start(loop, &srv->accept_io);
    ev_prepare_start(loop, &srv->prepare);
    ev_timer_start(loop, &srv->cron);
    ev_signal_start(loop, &srv->sig_term);
    ev_signal_start(loop, &srv->sig_int);
    ev_signal_start(loop, &srv->sig_hup);
    log_notice("listening on %s, upstream %s, pool of %d", cfg->listen, cfg->upstream,
               cfg->pool_size);
    return 0;
}

int server_run(struct server *srv)
{
    ev_run(srv->loop, 0);
    return 0;
}

void server_teardown(struct server *srv)
{
    server_stop_listening(srv);
    while (srv->clients != NULL)
        client_close(srv->clients);
    while (srv->idle != NULL)
        upstream_close(srv->idle);
    reload_destroy(&srv->reload);
    server_on_prepare(srv->loop, &srv->prepare, 0); /* frees what the closes queued */
    for (int i = 0; srv->pool != NULL && i < srv->cfg->pool_size; i++)
        upstream_destroy(&srv->pool[i]);
    free(srv->pool);
    srv->pool = NULL;
    tracking_destroy(&srv->tracking);
    cache_destroy(&srv->cache);
    policy_destroy(&srv->policy);
    command_table_destroy(&srv->commands);
    request_keys_free(&srv->request_keys);
    ev_prepare_stop(srv->loop, &srv->prepare);
    ev_timer_stop(srv->loop, &srv->cron);
    ev_signal_stop(srv->loop, &srv->sig_term);
    ev_signal_stop(srv->loop, &srv->sig_int);
    ev_signal_stop(srv->loop, &srv->sig_hup);
}

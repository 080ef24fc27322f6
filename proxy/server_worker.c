/* server_worker.c - one worker: listeners, upstream, tick, drain, thread. */
#include "proxy/server_worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "proxy/cache/cache.h"
#include "proxy/client.h"
#include "proxy/cluster/route.h"
#include "proxy/invalidation.h"
#include "proxy/lib/buf.h"
#include "proxy/lib/log.h"
#include "proxy/reload.h"
#include "proxy/req.h"
#include "proxy/tunnel.h"

#define SERVER_CRON_S       0.1 /* deadlines are enforced to this granularity */
#define SERVER_STALL_S      0.2 /* a longer gap between ticks: the loop stood still */
#define SERVER_ACCEPT_BURST 64  /* connections accepted per wake-up */

static const char ERR_MAX_CLIENTS[] = "-ERR max number of clients reached\r\n";

void worker_stop_others(struct worker *w)
{
    if (w->nall > 1)
        crew_stop(w->crew, w->id);
}

void worker_resume(struct worker *w)
{
    if (w->nall > 1)
        crew_resume(w->crew);
}

bool worker_gone(const struct worker *w, int i)
{
    return w->nall > 1 && w->crew->m[i].gone;
}

/* A reload asked of a worker other than 0, which worker 0 runs: its
 * answer goes back to the asker's loop. */
struct relay {
    struct worker *w; /* the asker */
    struct exchange *waiter;
    char *reply;
    size_t len;
};

static void relay_deliver(void *arg)
{
    struct relay *r = arg;
    static const char ERR_OOM[] = "-ERR reload failed: out of memory\r\n";
    struct exchange *waiter = r->waiter;
    if (r->reply != NULL)
        waiter->done(waiter, r->reply, r->len, worker_now_ms(r->w));
    else
        waiter->done(waiter, ERR_OOM, sizeof(ERR_OOM) - 1, worker_now_ms(r->w));
    free(r->reply);
    free(r);
}

/* exchange_done_fn on worker 0: the reload is over. */
static void relay_answered(struct exchange *x, const char *data, size_t len, uint64_t now_ms)
{
    (void)now_ms;
    struct relay *r = x->arg;
    exchange_destroy(&x);
    if ((r->reply = malloc(len)) != NULL) {
        memcpy(r->reply, data, len);
        r->len = len;
    }
    if (crew_post(r->w->crew, r->w->id, relay_deliver, r) < 0)
        log_error("out_of_memory", "reload: out of memory answering worker {worker=%d}", r->w->id);
}

static void relay_request(void *arg)
{
    struct relay *r = arg;
    struct worker *first = r->w->all[0];
    struct exchange *x = exchange_create(relay_answered, r);
    if (x == NULL || reload_request(first->reload, x) < 0) {
        exchange_destroy(&x);
        crew_post(r->w->crew, r->w->id, relay_deliver, r); /* answered: out of memory */
    }
}

int worker_reload(struct worker *w, struct exchange *waiter)
{
    if (w->id == 0)
        return reload_request(w->reload, waiter);
    struct relay *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return -1;
    *r = (struct relay){w, waiter, NULL, 0};
    if (crew_post(w->crew, 0, relay_request, r) < 0) {
        free(r);
        return -1;
    }
    return 0;
}

int worker_clients(const struct worker *w)
{
    int n = 0;
    for (int i = 0; i < w->nall; i++)
        n += __atomic_load_n(&w->all[i]->stats.clients, __ATOMIC_RELAXED);
    return n;
}

static void accept_one(struct server_worker *sw, int fd, bool tls)
{
    struct worker *w = &sw->w;
    if (net_tune(fd) < 0 || sw->draining) {
        close(fd);
        return;
    }
    if (worker_clients(w) >= w->cfg->max_clients) { /* clients.max is the process's */
        ssize_t ignored = write(fd, ERR_MAX_CLIENTS, sizeof(ERR_MAX_CLIENTS) - 1);
        (void)ignored;
        close(fd);
        return;
    }
    client_create(w, fd, tls ? w->tls_clients : NULL);
}

static void on_accept(struct ev_loop *loop, ev_io *io, int revents)
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
        accept_one(l->sw, fd, l->tls);
    }
}

/* Binds l to address (NULL: l stays off; a unix socket: worker 0's alone).
 * Returns 0, or -1 after logging. */
static int listen_on(struct server_worker *sw, struct listener *l, const char *address, bool tls)
{
    struct net_addr addr;
    const char *why;
    *l = (struct listener){.sw = sw, .address = address, .fd = -1, .tls = tls};
    if (address == NULL || (address[0] == '/' && sw->w.id > 0))
        return 0;
    const char *setting = tls ? "tls.listen" : "listen";
    if (net_addr_parse(address, &addr, &why) < 0) {
        log_crit("listen_failed", "{setting=%s} {address=%s}: {reason=%s}", setting, address, why);
        return -1;
    }
    if ((l->fd = net_listen(&addr, sw->w.nall > 1)) < 0) {
        log_crit("listen_failed", "{setting=%s} {address=%s}: {reason=%s}", setting, address,
                 strerror(errno));
        return -1;
    }
    ev_io_init(&l->io, on_accept, l->fd, EV_READ);
    l->io.data = l;
    ev_io_start(sw->w.loop, &l->io);
    return 0;
}

static void stop_listening(struct server_worker *sw)
{
    for (int i = 0; i < 2; i++) {
        struct listener *l = &sw->listeners[i];
        if (l->fd < 0)
            continue;
        ev_io_stop(sw->w.loop, &l->io);
        close(l->fd);
        l->fd = -1;
        if (l->address[0] == '/')
            unlink(l->address);
    }
}

/* Draining: idle clients are closed; the loop ends when none is left or the
 * drain timeout has passed. */
static void drain_tick(struct server_worker *sw, ev_tstamp now)
{
    struct worker *w = &sw->w;
    for (struct client *c = w->clients, *next; c != NULL; c = next) {
        next = c->next;
        if (client_idle(c) || now >= sw->drain_deadline)
            client_close(c);
    }
    if (w->stats.clients == 0)
        ev_break(w->loop, EVBREAK_ALL);
}

void server_worker_drain(struct server_worker *sw, ev_tstamp deadline)
{
    sw->draining = true;
    sw->w.pool.keep_spares = false;
    sw->drain_deadline = deadline;
    stop_listening(sw);
    drain_tick(sw, ev_now(sw->w.loop));
}

static void on_cron(struct ev_loop *loop, ev_timer *timer, int revents)
{
    (void)revents;
    struct server_worker *sw = timer->data;
    struct worker *w = &sw->w;
    ev_tstamp now = ev_now(loop);
    bool stalled = now - sw->cron_at > SERVER_STALL_S;
    if (stalled)
        log_limited(LOG_WARN, "loop_stalled",
                    "loop stalled for {stall_ms=%.0f} ms (process stopped or starved); "
                    "waits for Redis restart now",
                    (now - sw->cron_at) * 1000);
    sw->cron_at = now;
    for (int i = 0; i < 2; i++) {
        struct listener *l = &sw->listeners[i];
        if (l->fd >= 0 && !ev_is_active(&l->io))
            ev_io_start(loop, &l->io); /* stopped when descriptors ran out */
    }
    pool_tick(&w->pool, now, stalled);
    if (w->route != NULL)
        route_tick(w->route, now, stalled);
    for (struct client *c = w->clients, *next; c != NULL; c = next) {
        next = c->next;
        client_tick(c, now, stalled);
    }
    invalidation_tick(w->inv, worker_now_ms(w));
    audit_tick(w, worker_now_ms(w));
    cache_tick(w->cache, worker_now_ms(w));
    if (sw->draining)
        drain_tick(sw, now);
}

/* Redis moved (known: Sentinel named a new primary, or the name resolves to
 * a new address): the tier is emptied and tracked again there, and every
 * connection moves (what was in flight gets connection lost). Worker 0's
 * endpoint, which Sentinel sets, tells the others, also of the first
 * primary named. */
static void on_moved(void *arg, bool known)
{
    struct server_worker *sw = arg;
    struct worker *w = &sw->w;
    for (int i = 1; w->id == 0 && i < sw->srv->nworkers; i++)
        server_worker_follow(sw->srv->workers[i], &sw->upstream.addr);
    if (!known)
        return;
    invalidation_restart(w->inv, "Redis moved");
    pool_reset(&w->pool);
    for (struct client *c = w->clients, *next; c != NULL; c = next) {
        next = c->next; /* a client whose session is lost is closed */
        if (c->session.dedicated != NULL && c->session.dpool == &w->pool) /* not a node's */
            upstream_reset(c->session.dedicated);
    }
}

/* A new address for a worker other than 0, on its loop. */
struct follow {
    struct server_worker *sw;
    struct net_addr addr;
};

static void follow_run(void *arg)
{
    struct follow *f = arg;
    endpoint_set(&f->sw->upstream, &f->addr, "upstream_address_changed", "worker 0 moved");
    free(f);
}

void server_worker_follow(struct server_worker *sw, const struct net_addr *addr)
{
    struct follow *f = malloc(sizeof(*f));
    if (f != NULL)
        *f = (struct follow){sw, *addr};
    if (f == NULL || crew_post(&sw->srv->crew, sw->w.id, follow_run, f) < 0) {
        free(f);
        log_error("out_of_memory", "worker {worker=%d} cannot follow Redis: out of memory",
                  sw->w.id);
    }
}

/* The tunnel handed invalidations to the subscriber's socket: read them now. */
static void on_relay(void *arg)
{
    invalidation_poll(((struct server_worker *)arg)->w.inv);
}

/* The way to Redis: the tracking subscriber (through a tunnel over TLS)
 * and the pool. */
static int setup_upstream(struct server_worker *sw)
{
    struct worker *w = &sw->w;
    const struct config *cfg = w->cfg;
    char err[512];
    const struct net_addr *redis = &sw->upstream.addr;
    const struct upstream_env env = {.loop = w->loop,
                                     .sched = &w->sched,
                                     .cfg = cfg,
                                     .ep = &sw->upstream,
                                     .limits = &w->limits,
                                     .tls = w->pool.env.tls,
                                     .check_role = cfg->sentinels != NULL};
    if (env.tls != NULL) {
        sw->tunnel = tunnel_create(w->loop, &sw->upstream, &w->pool.env.tls, err, sizeof(err));
        if (sw->tunnel == NULL) {
            log_crit("tunnel_failed", "upstream.tls: {reason=%s}", err);
            return -1;
        }
        tunnel_set_relay(sw->tunnel, on_relay, sw);
        redis = tunnel_addr(sw->tunnel);
    }
    if ((w->inv = invalidation_create(w, &w->pool, redis, cfg->cluster != NULL)) == NULL ||
        pool_setup(&w->pool, &env, cfg->pool_size, invalidation_owner(w->inv)) < 0 ||
        (cfg->cluster != NULL && (w->route = route_create(w, sw->srv->map)) == NULL)) {
        log_crit("out_of_memory", "out of memory");
        return -1;
    }
    return invalidation_set_sources(w->inv, w->policy);
}

int server_worker_setup(struct server_worker *sw, const struct worker *first)
{
    struct worker *w = &sw->w;
    const struct config *cfg = w->cfg;
    char err[512];
    w->limits.max_bulk_len = cfg->max_bulk_len;
    w->limits.max_multibulk_len = cfg->max_multibulk_len;
    w->limits.max_inline_len = (size_t)cfg->max_inline_len;
    sched_setup(&w->sched, w->loop);
    sw->listeners[0].fd = sw->listeners[1].fd = -1;
    if (first != w) {
        w->policy = first->policy;
        w->commands = first->commands;
        w->tls_clients = first->tls_clients;
        w->pool.env.tls = first->pool.env.tls;
        if (endpoint_init(&sw->upstream, w->loop, server_moving(cfg) ? NULL : cfg->upstream,
                          cfg->upstream_tls_server_name, err, sizeof(err)) < 0) {
            log_crit("upstream_address_invalid", "{reason=%s}", err);
            return -1;
        }
        if (server_moving(cfg) && first->pool.env.ep->addr.len > 0)
            endpoint_set(&sw->upstream, &first->pool.env.ep->addr, "upstream_address_changed",
                         "worker 0's");
    }
    sw->upstream.moved = on_moved;
    sw->upstream.moved_arg = sw;
    if (metrics_setup(&w->metrics, command_table_count(w->commands)) < 0 || observe_setup(w) < 0 ||
        (w->cache = cache_create(cfg, w->policy, sw->srv->store)) == NULL) {
        log_crit("out_of_memory", "out of memory");
        return -1;
    }
    audit_setup(w);
    if (listen_on(sw, &sw->listeners[0], cfg->listen, false) < 0 ||
        listen_on(sw, &sw->listeners[1], config_tls_on(cfg) ? cfg->tls_listen : NULL, true) < 0 ||
        setup_upstream(sw) < 0)
        return -1;
    ev_timer_init(&sw->cron, on_cron, SERVER_CRON_S, SERVER_CRON_S);
    sw->cron.data = sw;
    ev_timer_start(w->loop, &sw->cron);
    ev_now_update(w->loop); /* set-up may have taken a while: not a stall */
    sw->cron_at = ev_now(w->loop);
    return 0;
}

void *server_worker_run(void *arg)
{
    struct server_worker *sw = arg;
    ev_run(sw->w.loop, 0);
    server_worker_leave(sw);
    server_worker_teardown(sw);
    exchange_free_kept();
    req_free_kept();
    obuf_free_kept();
    return NULL;
}

void server_worker_leave(struct server_worker *sw)
{
    if (sw->w.nall > 1)
        cache_flush(sw->w.cache);
    crew_leave(&sw->srv->crew, sw->w.id);
}

void server_worker_teardown(struct server_worker *sw)
{
    struct worker *w = &sw->w;
    stop_listening(sw);
    while (w->clients != NULL)
        client_close(w->clients);
    if (w->sched.loop != NULL) {
        sched_run(&w->sched); /* writes and frees what the closes queued */
        pool_teardown(&w->pool);
        route_destroy(&w->route);
        sched_teardown(&w->sched);
    }
    invalidation_destroy(&w->inv);
    tunnel_destroy(&sw->tunnel);
    audit_teardown(w);
    cache_destroy(&w->cache);
    metrics_teardown(&w->metrics);
    observe_teardown(w);
    request_keys_free(&w->request_keys);
    if (w->loop != NULL)
        ev_timer_stop(w->loop, &sw->cron);
    endpoint_deinit(&sw->upstream);
}

/* upstream.c - connections to Redis: connect, handshake, send, match replies, fail. */
#include "proxy/upstream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "proxy/cache/cache.h"
#include "proxy/client.h"
#include "proxy/lib/log.h"
#include "proxy/net.h"
#include "proxy/server.h"

#define UPSTREAM_BACKOFF_MIN_MS 50

static const char ERR_LOST[] = "-ERR upstream connection lost\r\n";
static const char ERR_UNAVAILABLE[] = "-ERR upstream unavailable\r\n";
static const char ERR_TIMEOUT[] = "-ERR upstream timeout\r\n";

static void upstream_on_read(struct ev_loop *loop, ev_io *w, int revents);
static void upstream_on_write(struct ev_loop *loop, ev_io *w, int revents);

/* Appends one command in multibulk form to the output. */
static void out_command(struct upstream *up, int argc, const char *const *argv)
{
    char head[32];
    obuf_append(&up->out, head, (size_t)snprintf(head, sizeof(head), "*%d\r\n", argc));
    for (int i = 0; i < argc; i++) {
        size_t n = strlen(argv[i]);
        obuf_append(&up->out, head, (size_t)snprintf(head, sizeof(head), "$%zu\r\n", n));
        obuf_append(&up->out, argv[i], n);
        obuf_append(&up->out, "\r\n", 2);
    }
}

/* Appends one command to the handshake. */
static void handshake_add(struct upstream *up, int argc, const char *const *argv)
{
    out_command(up, argc, argv);
    up->hs_pending++;
}

/* Queues AUTH and SELECT as configured, then PING, which proves that Redis
 * answers (a stopped server still accepts TCP connections). */
static void handshake_queue(struct upstream *up)
{
    const struct config *cfg = up->srv->cfg;
    if (cfg->upstream_password != NULL) {
        const char *argv[] = {"AUTH", cfg->upstream_username, cfg->upstream_password};
        if (cfg->upstream_username != NULL)
            handshake_add(up, 3, argv);
        else
            handshake_add(up, 2, (const char *const[]){"AUTH", cfg->upstream_password});
    }
    if (cfg->upstream_database != 0) {
        char db[16];
        snprintf(db, sizeof(db), "%d", cfg->upstream_database);
        handshake_add(up, 2, (const char *const[]){"SELECT", db});
    }
    handshake_add(up, 1, (const char *const[]){"PING"});
    up->hs_bytes = up->out.len;
}

static void upstream_set_state(struct upstream *up, upstream_state_e state)
{
    up->state = state;
    up->since = ev_now(up->srv->loop);
}

static void upstream_connect(struct upstream *up)
{
    up->fd = net_connect(&up->srv->upstream_addr);
    if (up->fd < 0) {
        log_limited(LOG_WARN, "upstream: connect: %s", strerror(errno));
        upstream_set_state(up, UPSTREAM_DOWN);
        up->retry_at = ev_now(up->srv->loop) + up->backoff_ms / 1000.0;
        return;
    }
    resp_scanner_reset(&up->scan);
    ev_io_init(&up->rio, upstream_on_read, up->fd, EV_READ);
    ev_io_init(&up->wio, upstream_on_write, up->fd, EV_WRITE);
    ev_io_start(up->srv->loop, &up->wio);
    up->was_ready = false;
    handshake_queue(up);
    upstream_set_state(up, UPSTREAM_CONNECTING);
}

struct upstream *upstream_create(struct server *srv, bool dedicated)
{
    struct upstream *up = calloc(1, sizeof(*up));
    if (up == NULL)
        return NULL;
    up->srv = srv;
    up->fd = -1;
    up->dedicated = dedicated;
    upstream_connect(up);
    return up;
}

/* Hands a reply (or an error standing for it) to r, after the local tier has
 * taken what it needs: the read's reply or the PTTL for a fill, and the
 * second invalidation of a write's keys. */
static void upstream_complete(struct upstream *up, struct req *r, const char *data, size_t len)
{
    struct cache *cache = up->srv->cache;
    if (r->fill != NULL) {
        if (r->fill_owner)
            cache_fill_finish(cache, r->fill, data, len, server_now_ms(up->srv));
        else
            cache_fill_reply(r->fill, data, len);
        r->fill = NULL;
    }
    cache_writes_done(cache, &r->writes);
    if (r->mget != NULL) {
        if (r->mget_pttl)
            cache_mget_finish(cache, r->mget, r->mget_index, data, len, server_now_ms(up->srv));
        else
            cache_mget_merge(cache, r->mget, data, len, &data, &len);
        cache_mget_put(&r->mget);
    }
    if (r->tracking_id != 0) {
        up->tracks_inflight--;
        server_tracking_reply(up->srv, up, r->tracking_id, data, len);
    }
    client_reply(r, data, len);
}

/* Fails every request held with err, oldest first. */
static void upstream_fail_requests(struct upstream *up, const char *err, size_t len)
{
    while (up->head != NULL) {
        struct req *r = up->head;
        up->head = r->unext;
        r->unext = NULL;
        up->inflight--;
        upstream_complete(up, r, err, len);
    }
    up->tail = NULL;
}

/* Drops the socket and everything in transit; err goes to every request held. */
static void upstream_disconnect(struct upstream *up, const char *err, size_t len)
{
    if (up->fd >= 0) {
        ev_io_stop(up->srv->loop, &up->rio);
        ev_io_stop(up->srv->loop, &up->wio);
        close(up->fd);
        up->fd = -1;
    }
    obuf_deinit(&up->out);
    rbuf_deinit(&up->in);
    resp_scanner_reset(&up->scan);
    up->hs_bytes = 0;
    up->hs_pending = 0;
    upstream_set_state(up, UPSTREAM_DOWN);
    up->tracked_id = 0;
    up->tracking_sent = false;
    upstream_fail_requests(up, err, len);
}

/* The connection broke or stopped answering. A dedicated one is done for; a
 * shared one retries after a growing delay. */
static void upstream_fail(struct upstream *up, const char *err, size_t len)
{
    bool was_ready = up->was_ready;
    if (was_ready && !up->dedicated) /* what it read is no longer tracked */
        cache_flush(up->srv->cache);
    if (was_ready)
        log_limited(LOG_WARN, "upstream: connection lost (%s)",
                    up->dedicated ? "dedicated" : "shared");
    upstream_disconnect(up, err, len);
    if (up->dedicated) {
        struct client *owner = up->owner;
        upstream_close(up);
        if (owner != NULL)
            client_dedicated_lost(owner, was_ready);
        return;
    }
    if (!was_ready)
        up->backoff_ms = up->backoff_ms == 0 ? UPSTREAM_BACKOFF_MIN_MS : up->backoff_ms * 2;
    if (up->backoff_ms > up->srv->cfg->reconnect_max_ms)
        up->backoff_ms = up->srv->cfg->reconnect_max_ms;
    up->retry_at = ev_now(up->srv->loop) + (was_ready ? 0 : up->backoff_ms / 1000.0);
}

void upstream_destroy(struct upstream **upp)
{
    struct upstream *up = *upp;
    if (up == NULL)
        return;
    upstream_disconnect(up, ERR_LOST, sizeof(ERR_LOST) - 1);
    free(up);
    *upp = NULL;
}

void upstream_close(struct upstream *up)
{
    if (up->closing)
        return;
    up->closing = true;
    up->owner = NULL;
    upstream_disconnect(up, ERR_LOST, sizeof(ERR_LOST) - 1);
    server_upstream_dead(up->srv, up);
}

bool upstream_usable(const struct upstream *up)
{
    return !up->closing && up->state != UPSTREAM_DOWN;
}

void upstream_send(struct upstream *up, const char *data, size_t len, struct req *r)
{
    if (obuf_append(&up->out, data, len) < 0) {
        upstream_fail(up, ERR_LOST, sizeof(ERR_LOST) - 1);
        if (r != NULL)
            upstream_complete(up, r, ERR_UNAVAILABLE, sizeof(ERR_UNAVAILABLE) - 1);
        return;
    }
    if (r != NULL) {
        r->inflight = true;
        r->sent = ev_now(up->srv->loop);
        if (up->tail != NULL)
            up->tail->unext = r;
        else
            up->head = r;
        up->tail = r;
        up->inflight++;
    }
    server_want_flush_upstream(up->srv, up);
}

void upstream_send_fill(struct upstream *up, struct req *r, struct cache_fill *fill)
{
    struct req *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        cache_fill_destroy(&fill);
        return;
    }
    const char *data;
    size_t len;
    cache_fill_pttl(fill, &data, &len);
    r->fill = fill;
    p->fill = fill;
    p->fill_owner = true;
    upstream_send(up, data, len, p);
}

void upstream_send_mget(struct upstream *up, struct req *r, struct cache_mget *m)
{
    const char *data;
    size_t len;
    struct cache_mget *keep = cache_mget_get(m); /* r's reply may come (as an error) at once */
    cache_mget_request(m, &data, &len);
    r->mget = m;
    upstream_send(up, data, len, r);
    for (size_t i = 0; i < cache_mget_misses(keep); i++) {
        cache_mget_pttl(keep, i, &data, &len);
        struct req *p = len > 0 ? calloc(1, sizeof(*p)) : NULL;
        if (p == NULL)
            continue;
        p->mget = cache_mget_get(keep);
        p->mget_index = i;
        p->mget_pttl = true;
        upstream_send(up, data, len, p);
    }
    cache_mget_put(&keep);
}

void upstream_track(struct upstream *up, long long tracking_id)
{
    const struct server *srv = up->srv;
    size_t nprefix = cache_prefix_count(srv->cache);
    if (up->dedicated || up->state != UPSTREAM_READY || up->closing)
        return;
    struct req *r = calloc(1, sizeof(*r));
    struct req *off = up->tracking_sent ? calloc(1, sizeof(*off)) : NULL;
    const char **argv = calloc(6 + 2 * nprefix, sizeof(*argv));
    if (r == NULL || argv == NULL || (up->tracking_sent && off == NULL)) {
        free(r);
        free(off);
        free(argv);
        return;
    }
    if (off != NULL) { /* its reply goes nowhere */
        out_command(up, 3, (const char *const[]){"CLIENT", "TRACKING", "off"});
        upstream_send(up, "", 0, off);
    }
    char id[24];
    snprintf(id, sizeof(id), "%lld", tracking_id);
    int argc = 0;
    argv[argc++] = "CLIENT";
    argv[argc++] = "TRACKING";
    argv[argc++] = "on";
    argv[argc++] = "REDIRECT";
    argv[argc++] = id;
    if (nprefix > 0) /* BCAST: every key under the prefixes, read or not */
        argv[argc++] = "BCAST";
    for (size_t i = 0; i < nprefix; i++) {
        argv[argc++] = "PREFIX";
        argv[argc++] = cache_prefix(srv->cache, i);
    }
    out_command(up, argc, argv);
    free(argv);
    r->tracking_id = tracking_id;
    up->tracking_sent = true;
    up->tracks_inflight++;
    upstream_send(up, "", 0, r);
}

void upstream_set_stream(struct upstream *up)
{
    up->stream = true;
}

void upstream_pause(struct upstream *up, bool paused)
{
    if (up->fd < 0 || up->state == UPSTREAM_CONNECTING)
        return;
    if (paused)
        ev_io_stop(up->srv->loop, &up->rio);
    else
        ev_io_start(up->srv->loop, &up->rio);
}

void upstream_flush(struct upstream *up)
{
    if (up->fd < 0 || up->state == UPSTREAM_CONNECTING || up->out.len == 0)
        return;
    size_t limit = up->state == UPSTREAM_HANDSHAKE ? up->hs_bytes : SIZE_MAX;
    ssize_t n = limit == 0 ? 0 : obuf_write(&up->out, up->fd, limit);
    if (n < 0) {
        upstream_fail(up, ERR_LOST, sizeof(ERR_LOST) - 1);
        return;
    }
    up->hs_bytes -= (size_t)n < up->hs_bytes ? (size_t)n : up->hs_bytes;
    bool more = up->out.len > 0 && (up->state == UPSTREAM_READY || up->hs_bytes > 0);
    if (more)
        ev_io_start(up->srv->loop, &up->wio);
    else
        ev_io_stop(up->srv->loop, &up->wio);
}

static void upstream_on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct upstream *up = (struct upstream *)((char *)w - offsetof(struct upstream, wio));
    if (up->state == UPSTREAM_CONNECTING) {
        int err = net_connect_error(up->fd);
        if (err != 0) {
            log_limited(LOG_WARN, "upstream: connect: %s", strerror(err));
            upstream_fail(up, ERR_UNAVAILABLE, sizeof(ERR_UNAVAILABLE) - 1);
            return;
        }
        upstream_set_state(up, UPSTREAM_HANDSHAKE);
        ev_io_start(up->srv->loop, &up->rio);
    }
    upstream_flush(up);
}

/* A handshake reply: errors other than NOAUTH to PING make the connection fail. */
static void upstream_on_handshake(struct upstream *up, const char *data,
                                  const struct resp_reply *rep)
{
    up->hs_pending--;
    if (rep->type == '-' || rep->type == '!') {
        int n = (int)(rep->len > 200 ? 200 : rep->len - 2);
        bool noauth = up->hs_pending == 0 && rep->len > 7 && memcmp(data, "-NOAUTH", 7) == 0;
        if (!noauth) {
            log_limited(LOG_ERROR, "upstream: handshake refused: %.*s", n, data);
            upstream_fail(up, ERR_UNAVAILABLE, sizeof(ERR_UNAVAILABLE) - 1);
            return;
        }
        log_limited(LOG_WARN, "upstream: Redis requires authentication; set upstream.password");
    }
    if (up->hs_pending == 0) {
        if (!up->dedicated)
            log_notice("upstream: connected");
        upstream_set_state(up, UPSTREAM_READY);
        up->was_ready = true;
        up->backoff_ms = 0;
        if (!up->dedicated)
            server_upstream_ready(up->srv, up);
        server_want_flush_upstream(up->srv, up);
    }
}

/* Routes one complete reply frame. */
static void upstream_on_reply(struct upstream *up, const char *data, const struct resp_reply *rep)
{
    if (up->hs_pending > 0) {
        upstream_on_handshake(up, data, rep);
        return;
    }
    if (rep->type == '>' && up->owner != NULL) {
        client_push(up->owner, data, rep->len);
        return;
    }
    struct req *r = up->head;
    if (r == NULL) {
        log_limited(LOG_WARN, "upstream: unexpected reply of %zu bytes dropped", rep->len);
        return;
    }
    up->head = r->unext;
    if (up->head == NULL)
        up->tail = NULL;
    r->unext = NULL;
    up->inflight--;
    upstream_complete(up, r, data, rep->len);
}

/* Stream mode: everything read goes to the owner as it is. */
static void upstream_pass_through(struct upstream *up)
{
    size_t len = rbuf_len(&up->in);
    if (up->owner != NULL)
        client_stream(up->owner, rbuf_head(&up->in), len);
    if (up->fd >= 0)
        rbuf_consume(&up->in, len);
}

/* Reads what the socket holds and handles every complete reply in it. */
static void upstream_read(struct upstream *up)
{
    ssize_t n = rbuf_read(&up->in, up->fd);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        upstream_fail(up, up->was_ready ? ERR_LOST : ERR_UNAVAILABLE,
                      up->was_ready ? sizeof(ERR_LOST) - 1 : sizeof(ERR_UNAVAILABLE) - 1);
        return;
    }
    if (n > 0)
        up->progress = ev_now(up->srv->loop);
    while (up->fd >= 0 && rbuf_len(&up->in) > 0) {
        if (up->stream && up->hs_pending == 0) {
            upstream_pass_through(up);
            return;
        }
        struct resp_reply rep;
        resp_status_e st = resp_scan_reply(&up->scan, &up->srv->limits, rbuf_head(&up->in),
                                           rbuf_len(&up->in), &rep);
        if (st == RESP_INCOMPLETE)
            return;
        if (st == RESP_ERROR) {
            log_limited(LOG_ERROR, "upstream: unreadable reply: %s", up->scan.err);
            upstream_fail(up, ERR_LOST, sizeof(ERR_LOST) - 1);
            return;
        }
        upstream_on_reply(up, rbuf_head(&up->in), &rep);
        if (up->fd >= 0)
            rbuf_consume(&up->in, rep.len);
    }
}

static void upstream_on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    upstream_read((struct upstream *)((char *)w - offsetof(struct upstream, rio)));
}

/* True when the oldest request has waited timeout_ms without reply bytes
 * arriving. */
static bool upstream_waited(const struct upstream *up, ev_tstamp now, int timeout_ms)
{
    if (up->fd < 0 || up->state != UPSTREAM_READY || up->head == NULL || up->head->blocking)
        return false;
    ev_tstamp from = up->head->sent > up->progress ? up->head->sent : up->progress;
    return (now - from) * 1000 >= timeout_ms;
}

/* upstream_waited, judged again after reading what the socket holds: after a
 * stall of the loop, the replies may be there already. */
static bool upstream_overdue(struct upstream *up, ev_tstamp now, int timeout_ms)
{
    if (timeout_ms <= 0 || !ev_is_active(&up->rio) || !upstream_waited(up, now, timeout_ms))
        return false;
    upstream_read(up);
    return upstream_waited(up, now, timeout_ms);
}

void upstream_tick(struct upstream *up, ev_tstamp now, bool stalled)
{
    const struct config *cfg = up->srv->cfg;
    if (stalled)
        up->since = up->progress = now;
    switch (up->state) {
    case UPSTREAM_DOWN:
        if (!up->dedicated && now >= up->retry_at)
            upstream_connect(up);
        break;
    case UPSTREAM_CONNECTING:
    case UPSTREAM_HANDSHAKE:
        if ((now - up->since) * 1000 < cfg->connect_timeout_ms)
            break;
        if (up->state == UPSTREAM_HANDSHAKE && ev_is_active(&up->rio))
            upstream_read(up); /* the replies may be in after a stall of the loop */
        if (up->fd >= 0 && up->state != UPSTREAM_READY) {
            log_limited(LOG_WARN, "upstream: no answer within %d ms", cfg->connect_timeout_ms);
            upstream_fail(up, ERR_UNAVAILABLE, sizeof(ERR_UNAVAILABLE) - 1);
        }
        break;
    case UPSTREAM_READY:
        if (upstream_overdue(up, now, cfg->request_timeout_ms)) {
            log_limited(LOG_WARN, "upstream: no reply within %d ms", cfg->request_timeout_ms);
            upstream_fail(up, ERR_TIMEOUT, sizeof(ERR_TIMEOUT) - 1);
            if (!up->dedicated) /* a stalled server gets a pause, not a reconnect storm */
                up->retry_at = now + UPSTREAM_BACKOFF_MIN_MS / 1000.0;
        }
        break;
    }
}

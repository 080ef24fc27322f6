/* upstream.c - connections to Redis: connect, handshake, send, match replies, fail. */
#include "proxy/upstream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "proxy/endpoint.h"
#include "proxy/lib/log.h"
#include "proxy/net.h"
#include "proxy/proto/resp_write.h"
#include "proxy/tls.h"

#define UPSTREAM_BACKOFF_MIN_MS 50

static const char ERR_LOST[] = "-ERR upstream connection lost\r\n";
static const char ERR_UNAVAILABLE[] = UPSTREAM_ERR_UNAVAILABLE;
static const char ERR_TIMEOUT[] = "-ERR upstream timeout\r\n";

static void upstream_on_read(struct ev_loop *loop, ev_io *w, int revents);
static void upstream_on_write(struct ev_loop *loop, ev_io *w, int revents);
static void upstream_disconnect(struct upstream *up, const char *err, size_t len);
static void upstream_fail(struct upstream *up, const char *err, size_t len);
static void upstream_flush(struct upstream *up);

/* Appends one command to the handshake; -1 when out of memory. */
static int handshake_add(struct upstream *up, int argc, const char *const *argv)
{
    up->hs_pending++;
    return resp_append_command(&up->out, argc, argv, NULL);
}

/* Queues AUTH as configured, HELLO 3 and SELECT as the lane says, ROLE under
 * Sentinel (the node must still be the primary), then PING, which proves that
 * Redis answers (a stopped server still accepts TCP connections). -1 when out
 * of memory. */
static int handshake_queue(struct upstream *up)
{
    const struct config *cfg = up->env->cfg;
    int rc = 0;
    if (cfg->upstream_password != NULL && cfg->upstream_username != NULL)
        rc |= handshake_add(
            up, 3, (const char *const[]){"AUTH", cfg->upstream_username, cfg->upstream_password});
    else if (cfg->upstream_password != NULL)
        rc |= handshake_add(up, 2, (const char *const[]){"AUTH", cfg->upstream_password});
    if (up->lane.resp == 3)
        rc |= handshake_add(up, 2, (const char *const[]){"HELLO", "3"});
    if (up->lane.db != 0) {
        char db[16];
        snprintf(db, sizeof(db), "%d", up->lane.db);
        rc |= handshake_add(up, 2, (const char *const[]){"SELECT", db});
    }
    if (up->env->check_role)
        rc |= handshake_add(up, 1, (const char *const[]){"ROLE"});
    rc |= handshake_add(up, 1, (const char *const[]){"PING"});
    up->hs_bytes = up->out.len;
    return rc;
}

/* The loop's time in milliseconds, as exchanges get it. */
static uint64_t upstream_now_ms(const struct upstream *up)
{
    return (uint64_t)(ev_now(up->env->loop) * 1000);
}

static void upstream_set_state(struct upstream *up, upstream_state_e state)
{
    up->state = state;
    up->since = ev_now(up->env->loop);
}

static void upstream_connect(struct upstream *up)
{
    const struct net_addr *addr = &up->env->ep->addr;
    up->fd = addr->len > 0 ? net_connect(addr) : -1;
    if (up->fd < 0) {
        log_limited(LOG_WARN, "upstream_connect_failed", "upstream: connect: {reason=%s}",
                    addr->len > 0 ? strerror(errno) : "no primary known yet");
        upstream_set_state(up, UPSTREAM_DOWN);
        up->retry_at = ev_now(up->env->loop) + up->backoff_ms / 1000.0;
        return;
    }
    resp_scanner_reset(&up->scan);
    ev_io_init(&up->rio, upstream_on_read, up->fd, EV_READ);
    ev_io_init(&up->wio, upstream_on_write, up->fd, EV_WRITE);
    ev_io_start(up->env->loop, &up->wio);
    up->was_ready = false;
    upstream_set_state(up, UPSTREAM_CONNECTING);
    if (handshake_queue(up) < 0) {
        log_limited(LOG_ERROR, "out_of_memory", "upstream: out of memory");
        upstream_disconnect(up, ERR_UNAVAILABLE, sizeof(ERR_UNAVAILABLE) - 1);
        up->retry_at = ev_now(up->env->loop) + UPSTREAM_BACKOFF_MIN_MS / 1000.0;
    }
}

static void upstream_on_flush(struct sched_item *it)
{
    upstream_flush((struct upstream *)((char *)it - offsetof(struct upstream, flush)));
}

static void upstream_on_reap(struct sched_item *it)
{
    struct upstream *up = (struct upstream *)((char *)it - offsetof(struct upstream, reap));
    upstream_destroy(&up);
}

struct upstream *upstream_create(const struct upstream_env *env, const struct upstream_owner *owner,
                                 bool dedicated, struct lane lane)
{
    struct upstream *up = calloc(1, sizeof(*up));
    if (up == NULL)
        return NULL;
    up->env = env;
    up->owner = *owner;
    up->fd = -1;
    up->slot = -1;
    up->dedicated = dedicated;
    up->lane = lane;
    sched_item_init(&up->flush, upstream_on_flush);
    sched_item_init(&up->reap, upstream_on_reap);
    upstream_connect(up);
    return up;
}

void upstream_set_owner(struct upstream *up, const struct upstream_owner *owner)
{
    up->owner = *owner;
}

upstream_failed_e upstream_failed_kind(const char *reply)
{
    return reply == ERR_LOST          ? UPSTREAM_FAILED_LOST
           : reply == ERR_TIMEOUT     ? UPSTREAM_FAILED_TIMEOUT
           : reply == ERR_UNAVAILABLE ? UPSTREAM_FAILED_UNAVAILABLE
                                      : UPSTREAM_FAILED_KINDS;
}

/* Fails every exchange held with err, oldest first. */
static void upstream_fail_requests(struct upstream *up, const char *err, size_t len)
{
    uint64_t now_ms = upstream_now_ms(up);

    while (up->head != NULL) {
        struct exchange *x = up->head;
        up->head = x->next;
        x->next = NULL;
        up->inflight--;
        x->done(x, err, len, now_ms);
    }
    up->tail = NULL;
}

/* Drops the socket and everything in transit; err goes to every request held. */
static void upstream_disconnect(struct upstream *up, const char *err, size_t len)
{
    if (up->fd >= 0) {
        ev_io_stop(up->env->loop, &up->rio);
        ev_io_stop(up->env->loop, &up->wio);
        tls_free(up->ssl);
        up->ssl = NULL;
        close(up->fd);
        up->fd = -1;
    }
    obuf_deinit(&up->out);
    rbuf_deinit(&up->in);
    resp_scanner_reset(&up->scan);
    up->drops++;
    up->hs_bytes = 0;
    up->hs_pending = 0;
    upstream_set_state(up, UPSTREAM_DOWN);
    upstream_fail_requests(up, err, len);
}

/* The connection broke or stopped answering. A dedicated one is done for; a
 * shared one retries after a growing delay. */
static void upstream_fail(struct upstream *up, const char *err, size_t len)
{
    bool was_ready = up->was_ready;
    struct upstream_owner owner = up->owner;
    if (was_ready)
        log_limited(LOG_WARN, "upstream_lost", "upstream: connection lost ({connection=%s})",
                    up->dedicated ? "dedicated" : "shared");
    upstream_disconnect(up, err, len);
    if (up->dedicated) {
        upstream_close(up);
    } else {
        if (!was_ready)
            up->backoff_ms = up->backoff_ms == 0 ? UPSTREAM_BACKOFF_MIN_MS : up->backoff_ms * 2;
        if (up->backoff_ms > up->env->cfg->reconnect_max_ms)
            up->backoff_ms = up->env->cfg->reconnect_max_ms;
        up->retry_at = ev_now(up->env->loop) + (was_ready ? 0 : up->backoff_ms / 1000.0);
    }
    if (owner.lost != NULL)
        owner.lost(owner.arg, up, was_ready);
}

/* Fails the connection with what its requests may have seen: once it was
 * ready, they may have run ("connection lost"); before, only its handshake
 * was written (upstream_flush), so none ran ("unavailable"): a TLS 1.3
 * server that refuses the client's certificate says so only after the
 * handshake, when the proxy is already writing its AUTH or PING. */
static void upstream_broke(struct upstream *up)
{
    if (up->was_ready)
        upstream_fail(up, ERR_LOST, sizeof(ERR_LOST) - 1);
    else
        upstream_fail(up, ERR_UNAVAILABLE, sizeof(ERR_UNAVAILABLE) - 1);
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
    up->owner = (struct upstream_owner){0};
    upstream_disconnect(up, ERR_LOST, sizeof(ERR_LOST) - 1);
    sched_want(up->env->sched, SCHED_REAP, &up->reap);
}

void upstream_reset(struct upstream *up)
{
    if (up->closing)
        return;
    if (up->state != UPSTREAM_DOWN)
        upstream_broke(up);
    up->backoff_ms = 0;
    if (!up->dedicated && !up->closing) { /* requests queue while it connects */
        up->env->counters->reconnects++;
        upstream_connect(up);
    }
}

bool upstream_usable(const struct upstream *up)
{
    return !up->closing && up->state != UPSTREAM_DOWN;
}

void upstream_send(struct upstream *up, const char *data, size_t len, struct exchange *x)
{
    if (up->closing || up->state == UPSTREAM_DOWN) { /* failed under an earlier send */
        if (x != NULL)
            x->done(x, ERR_UNAVAILABLE, sizeof(ERR_UNAVAILABLE) - 1, upstream_now_ms(up));
        return;
    }
    if (obuf_append(&up->out, data, len) < 0) {
        upstream_fail(up, ERR_LOST, sizeof(ERR_LOST) - 1);
        if (x != NULL)
            x->done(x, ERR_UNAVAILABLE, sizeof(ERR_UNAVAILABLE) - 1, upstream_now_ms(up));
        return;
    }
    if (x != NULL) {
        x->sent = ev_now(up->env->loop);
        x->next = NULL;
        if (up->tail != NULL)
            up->tail->next = x;
        else
            up->head = x;
        up->tail = x;
        up->inflight++;
    }
    if (!up->closing)
        sched_want(up->env->sched, SCHED_FLUSH_UPSTREAM, &up->flush);
}

struct exchange *upstream_oldest(const struct upstream *up)
{
    return up->head;
}

void upstream_set_stream(struct upstream *up)
{
    up->stream = true;
}

void upstream_pause(struct upstream *up, bool paused)
{
    if (up->fd < 0 || up->state == UPSTREAM_CONNECTING || up->state == UPSTREAM_TLS)
        return;
    if (paused)
        ev_io_stop(up->env->loop, &up->rio);
    else
        ev_io_start(up->env->loop, &up->rio);
}

/* Writes queued bytes; run at the safe point. */
static void upstream_flush(struct upstream *up)
{
    if (up->fd < 0 || up->state == UPSTREAM_CONNECTING || up->state == UPSTREAM_TLS ||
        up->out.len == 0)
        return;
    size_t limit = up->state == UPSTREAM_HANDSHAKE ? up->hs_bytes : SIZE_MAX;
    ssize_t n = limit == 0 ? 0 : tls_write(up->ssl, up->fd, &up->out, limit);
    if (n < 0) {
        upstream_broke(up);
        return;
    }
    up->hs_bytes -= (size_t)n < up->hs_bytes ? (size_t)n : up->hs_bytes;
    bool more = up->out.len > 0 && (up->state == UPSTREAM_READY || up->hs_bytes > 0);
    if (more)
        ev_io_start(up->env->loop, &up->wio);
    else
        ev_io_stop(up->env->loop, &up->wio);
}

/* The connection carries the Redis handshake from now on. */
static void upstream_begin_handshake(struct upstream *up)
{
    upstream_set_state(up, UPSTREAM_HANDSHAKE);
    ev_io_start(up->env->loop, &up->rio);
    upstream_flush(up);
}

/* Advances the TLS handshake, waiting for the socket as OpenSSL asks. */
static void upstream_tls_step(struct upstream *up)
{
    tls_step_e step = tls_handshake(up->ssl);
    if (step == TLS_FAILED) {
        log_limited(LOG_ERROR, "upstream_tls_failed",
                    "upstream: TLS with {upstream=%s}: {reason=%s}", up->env->ep->shown,
                    tls_reason());
        upstream_fail(up, ERR_UNAVAILABLE, sizeof(ERR_UNAVAILABLE) - 1);
    } else if (step == TLS_DONE) {
        ev_io_stop(up->env->loop, &up->wio);
        upstream_begin_handshake(up);
    } else {
        bool rd = step == TLS_WANT_READ;
        (rd ? ev_io_start : ev_io_stop)(up->env->loop, &up->rio);
        (rd ? ev_io_stop : ev_io_start)(up->env->loop, &up->wio);
    }
}

/* connect() completed: TLS first when configured, then the handshake. */
static void upstream_connected(struct upstream *up)
{
    int err = net_connect_error(up->fd);
    if (err != 0) {
        log_limited(LOG_WARN, "upstream_connect_failed", "upstream: connect: {reason=%s}",
                    strerror(err));
        upstream_fail(up, ERR_UNAVAILABLE, sizeof(ERR_UNAVAILABLE) - 1);
        return;
    }
    if (up->env->tls == NULL) {
        upstream_begin_handshake(up);
        return;
    }
    up->ssl = tls_connect_new(up->env->tls, up->fd, up->env->ep->server_name);
    if (up->ssl == NULL) {
        log_limited(LOG_ERROR, "out_of_memory", "upstream: out of memory");
        upstream_fail(up, ERR_UNAVAILABLE, sizeof(ERR_UNAVAILABLE) - 1);
        return;
    }
    upstream_set_state(up, UPSTREAM_TLS);
    upstream_tls_step(up);
}

static void upstream_on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct upstream *up = (struct upstream *)((char *)w - offsetof(struct upstream, wio));
    if (up->state == UPSTREAM_CONNECTING)
        upstream_connected(up);
    else if (up->state == UPSTREAM_TLS)
        upstream_tls_step(up);
    else
        upstream_flush(up);
}

/* True when a ROLE reply names a primary: an array whose first element is
 * "master". */
static bool upstream_role_master(const char *data, size_t len)
{
    static const char MASTER[] = "$6\r\nmaster\r\n";
    const char *crlf = len > 0 && data[0] == '*' ? memchr(data, '\n', len) : NULL;
    return crlf != NULL && (size_t)(data + len - crlf - 1) >= sizeof(MASTER) - 1 &&
           memcmp(crlf + 1, MASTER, sizeof(MASTER) - 1) == 0;
}

/* A handshake reply: errors other than NOAUTH to PING make the connection fail. */
static void upstream_on_handshake(struct upstream *up, const char *data,
                                  const struct resp_reply *rep)
{
    up->hs_pending--;
    if (rep->type == '-' || rep->type == '!') {
        int n = (int)log_redis_error_len(data, rep->len > 200 ? 200 : rep->len - 2);
        bool noauth = up->hs_pending == 0 && rep->len > 7 && memcmp(data, "-NOAUTH", 7) == 0;
        if (!noauth) {
            log_limited(LOG_ERROR, "upstream_handshake_refused",
                        "upstream: handshake refused: {reason=%.*s}", n, data);
            upstream_fail(up, ERR_UNAVAILABLE, sizeof(ERR_UNAVAILABLE) - 1);
            return;
        }
        log_limited(LOG_WARN, "upstream_auth_required",
                    "upstream: Redis requires authentication; set upstream.password");
    } else if (up->env->check_role && up->hs_pending == 1 &&
               !upstream_role_master(data, rep->len)) {
        log_limited(LOG_WARN, "upstream_not_primary",
                    "upstream: {upstream=%s} is no longer the primary; waiting for Sentinel",
                    up->env->ep->shown);
        upstream_fail(up, ERR_UNAVAILABLE, sizeof(ERR_UNAVAILABLE) - 1);
        return;
    }
    if (up->hs_pending == 0) {
        if (!up->dedicated)
            log_notice("upstream_connected", "upstream: connected");
        upstream_set_state(up, UPSTREAM_READY);
        up->was_ready = true;
        up->backoff_ms = 0;
        sched_want(up->env->sched, SCHED_FLUSH_UPSTREAM, &up->flush);
        if (up->owner.ready != NULL)
            up->owner.ready(up->owner.arg, up);
    }
}

/* Routes one complete reply frame. */
static void upstream_on_reply(struct upstream *up, const char *data, const struct resp_reply *rep)
{
    if (up->hs_pending > 0) {
        upstream_on_handshake(up, data, rep);
        return;
    }
    if (rep->type == '>' && up->owner.push != NULL) {
        up->owner.push(up->owner.arg, data, rep->len);
        return;
    }
    struct exchange *x = up->head;
    if (x == NULL) {
        log_limited(LOG_WARN, "upstream_unexpected_reply",
                    "upstream: unexpected reply of {bytes=%zu} bytes dropped", rep->len);
        return;
    }
    up->head = x->next;
    if (up->head == NULL)
        up->tail = NULL;
    x->next = NULL;
    up->inflight--;
    x->done(x, data, rep->len, upstream_now_ms(up));
}

/* Stream mode: everything read goes to the owner as it is. */
static void upstream_pass_through(struct upstream *up)
{
    size_t len = rbuf_len(&up->in);
    if (up->owner.stream != NULL)
        up->owner.stream(up->owner.arg, rbuf_head(&up->in), len);
    if (up->fd >= 0)
        rbuf_consume(&up->in, len);
}

/* Reads what the socket holds and handles every complete reply in it. */
static void upstream_read(struct upstream *up)
{
    ssize_t n = tls_read(up->ssl, up->fd, &up->in);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        if (n < 0 && up->ssl != NULL) /* an alert: with TLS 1.3, a refused client certificate */
            log_limited(LOG_ERROR, "upstream_tls_failed",
                        "upstream: TLS with {upstream=%s}: {reason=%s}", up->env->ep->shown,
                        tls_reason());
        upstream_broke(up);
        return;
    }
    if (n > 0)
        up->progress = ev_now(up->env->loop);
    while (up->fd >= 0 && rbuf_len(&up->in) > 0) {
        if (up->stream && up->hs_pending == 0) {
            upstream_pass_through(up);
            return;
        }
        struct resp_reply rep;
        resp_status_e st = resp_scan_reply(&up->scan, up->env->limits, rbuf_head(&up->in),
                                           rbuf_len(&up->in), &rep);
        if (st == RESP_INCOMPLETE)
            return;
        if (st == RESP_ERROR) {
            log_limited(LOG_ERROR, "upstream_bad_reply", "upstream: unreadable reply: {reason=%s}",
                        up->scan.err);
            upstream_fail(up, ERR_LOST, sizeof(ERR_LOST) - 1);
            return;
        }
        unsigned drops = up->drops;
        upstream_on_reply(up, rbuf_head(&up->in), &rep);
        if (up->drops != drops) /* its owner dropped it meanwhile: the bytes went too */
            return;
        rbuf_consume(&up->in, rep.len);
    }
}

static void upstream_on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct upstream *up = (struct upstream *)((char *)w - offsetof(struct upstream, rio));
    if (up->state == UPSTREAM_TLS)
        upstream_tls_step(up);
    else
        upstream_read(up);
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
    const struct config *cfg = up->env->cfg;
    if (stalled)
        up->since = up->progress = now;
    switch (up->state) {
    case UPSTREAM_DOWN:
        /* a name is resolved again before each reconnect (endpoint.h) */
        if (!up->dedicated && now >= up->retry_at && endpoint_ready(up->env->ep, up->since)) {
            up->env->counters->reconnects++;
            upstream_connect(up);
        }
        break;
    case UPSTREAM_CONNECTING:
    case UPSTREAM_TLS:
    case UPSTREAM_HANDSHAKE:
        if ((now - up->since) * 1000 < cfg->connect_timeout_ms)
            break;
        if (up->state == UPSTREAM_HANDSHAKE && ev_is_active(&up->rio))
            upstream_read(up); /* the replies may be in after a stall of the loop */
        if (up->fd >= 0 && up->state != UPSTREAM_READY) {
            log_limited(LOG_WARN, "upstream_connect_timeout",
                        "upstream: no answer within {timeout_ms=%d} ms", cfg->connect_timeout_ms);
            upstream_fail(up, ERR_UNAVAILABLE, sizeof(ERR_UNAVAILABLE) - 1);
        }
        break;
    case UPSTREAM_READY:
        if (upstream_overdue(up, now, cfg->request_timeout_ms)) {
            log_limited(LOG_WARN, "upstream_timeout",
                        "upstream: no reply within {timeout_ms=%d} ms", cfg->request_timeout_ms);
            upstream_fail(up, ERR_TIMEOUT, sizeof(ERR_TIMEOUT) - 1);
            if (!up->dedicated) /* a stalled server gets a pause, not a reconnect storm */
                up->retry_at = now + UPSTREAM_BACKOFF_MIN_MS / 1000.0;
        }
        break;
    }
}

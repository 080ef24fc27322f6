/* client.c - client connections: the request path and in-order replies. */
#include "proxy/client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "config/config.h"
#include "policy/policy.h"
#include "proxy/cache/cache.h"
#include "proxy/proto/request.h"
#include "proxy/lib/log.h"
#include "proxy/reload.h"
#include "proxy/server.h"
#include "proxy/upstream.h"

/* Reading from a client (or its stream) pauses while this much output waits. */
#define CLIENT_OUT_HIGH (1024 * 1024)
#define CLIENT_OUT_LOW  (256 * 1024)

static const char ERR_UNAVAILABLE[] = "-ERR upstream unavailable\r\n";
static const char ERR_EXECABORT[] =
    "-EXECABORT Transaction discarded because of previous errors.\r\n";
/* Sent in place of the EXEC of a transaction with a rejected command. */
static const char DISCARD_FRAME[] = "*1\r\n$7\r\nDISCARD\r\n";

typedef enum {
    DISPATCH_DONE = 0, /* the request was answered or queued */
    DISPATCH_STALL,    /* it must wait until the requests in flight are answered */
} dispatch_e;

static void client_on_read(struct ev_loop *loop, ev_io *w, int revents);
static void client_on_write(struct ev_loop *loop, ev_io *w, int revents);

/* Freed request slots kept for reuse: one is taken and given back for
 * nearly every request, so malloc and free stay off the request path. */
#define REQ_FREE_KEEP 4096
static struct req *req_free_list; /* linked by cnext */
static size_t req_free_count;

static struct req *req_create(struct client *c)
{
    struct req *r = req_free_list;
    if (r != NULL) {
        req_free_list = r->cnext;
        req_free_count--;
        memset(r, 0, sizeof(*r));
    } else if ((r = calloc(1, sizeof(*r))) == NULL) {
        return NULL;
    }
    r->client = c;
    if (c->tail != NULL)
        c->tail->cnext = r;
    else
        c->head = r;
    c->tail = r;
    return r;
}

static void req_destroy(struct req *r)
{
    free(r->data);
    if (req_free_count >= REQ_FREE_KEEP) {
        free(r);
        return;
    }
    r->cnext = req_free_list;
    req_free_list = r;
    req_free_count++;
}

/* Keeps bytes in r until the reply can be written in order. */
static int req_keep(struct req *r, const char *data, size_t len)
{
    if (buf_grow(&r->data, &r->cap, r->len + len, 64) < 0)
        return -1;
    memcpy(r->data + r->len, data, len);
    r->len += len;
    return 0;
}

static void client_update_reading(struct client *c)
{
    bool want = !c->closing && !c->last_write && !c->stalled && c->out.len < CLIENT_OUT_HIGH;
    if (c->stream && c->ded != NULL)
        upstream_pause(c->ded, c->out.len >= CLIENT_OUT_HIGH);
    if (want == c->reading)
        return;
    c->reading = want;
    if (want)
        ev_io_start(c->srv->loop, &c->rio);
    else
        ev_io_stop(c->srv->loop, &c->rio);
}

/* Queues reply bytes for writing, within the output limit. */
static void client_emit(struct client *c, const char *data, size_t len)
{
    if (c->closing || len == 0)
        return;
    int64_t limit = c->srv->cfg->max_output_buffer;
    if (obuf_append(&c->out, data, len) < 0 || (limit > 0 && (int64_t)c->out.len > limit)) {
        log_limited(LOG_WARN, "client: output buffer over %lld bytes, closing",
                    (long long)c->srv->cfg->max_output_buffer);
        client_close(c);
        return;
    }
    server_want_flush_client(c->srv, c);
}

/* Writes out the replies at the head of the FIFO that are complete. */
static void client_drain_done(struct client *c)
{
    while (c->head != NULL && c->head->done) {
        struct req *r = c->head;
        c->head = r->cnext;
        if (c->head == NULL)
            c->tail = NULL;
        client_emit(c, r->data, r->len);
        req_destroy(r);
    }
}

/* Answers from the proxy itself, in order with the replies still owed. */
static void client_local(struct client *c, const char *data, size_t len)
{
    if (c->head == NULL) {
        client_emit(c, data, len);
        return;
    }
    struct req *r = req_create(c);
    if (r == NULL || req_keep(r, data, len) < 0) {
        client_close(c);
        return;
    }
    r->done = true;
}

void client_reply(struct req *r, const char *data, size_t len)
{
    struct client *c = r->client;
    r->inflight = false;
    if (c == NULL) {
        req_destroy(r);
        return;
    }
    if (r->execabort && len == 5 && memcmp(data, "+OK\r\n", 5) == 0) {
        data = ERR_EXECABORT;
        len = sizeof(ERR_EXECABORT) - 1;
    } else if (len > 0 && (data[0] == '-' || data[0] == '!')) {
        policy_on_error(c->srv->policy, data, len);
    }
    c->inflight--;
    if (r == c->head) {
        c->head = r->cnext;
        if (c->head == NULL)
            c->tail = NULL;
        client_emit(c, r->data, r->len);
        client_emit(c, data, len);
        req_destroy(r);
        client_drain_done(c);
    } else if (req_keep(r, data, len) == 0) {
        r->done = true;
    } else {
        client_close(c);
    }
    if (c->inflight == 0 && !c->closing)
        server_want_resume(c->srv, c);
}

void client_push(struct client *c, const char *data, size_t len)
{
    /* A push that arrives while a reply is awaited goes out before that reply. */
    struct upstream *d = c->ded;
    if (d != NULL && d->head != NULL && d->head->client == c) {
        if (req_keep(d->head, data, len) < 0)
            client_close(c);
        return;
    }
    client_local(c, data, len);
}

void client_stream(struct client *c, const char *data, size_t len)
{
    client_local(c, data, len);
    client_update_reading(c);
}

void client_dedicated_lost(struct client *c, bool was_ready)
{
    bool had_state = c->sticky || c->in_multi || c->watching || c->stream;
    bool was_stream = c->stream;
    c->ded = NULL;
    c->sticky = c->in_multi = c->watching = c->stream = c->reset_ded = false;
    c->multi_dirty = false;
    if (was_stream && !was_ready) {
        client_local(c, ERR_UNAVAILABLE, sizeof(ERR_UNAVAILABLE) - 1);
        c->last_write = true;
    } else if (was_ready && had_state) {
        /* Its session state went with the connection: say so by closing, as
         * Redis going away would have. */
        c->last_write = true;
    }
    server_want_flush_client(c->srv, c);
    client_update_reading(c);
}

/* Records what the request does to the connection's state. */
static void client_apply_state(struct client *c, command_kind_e kind)
{
    switch (kind) {
    case COMMAND_STICKY:
        c->sticky = true;
        break;
    case COMMAND_STREAM:
        c->stream = true;
        break;
    case COMMAND_MULTI:
        c->in_multi = true;
        break;
    case COMMAND_EXEC:
        c->in_multi = c->watching = c->multi_dirty = false;
        break;
    case COMMAND_WATCH:
        c->watching = true;
        break;
    case COMMAND_UNWATCH:
        c->watching = false;
        break;
    case COMMAND_RESET:
        c->sticky = c->in_multi = c->watching = c->multi_dirty = false;
        c->reset_ded = true;
        break;
    case COMMAND_SHARED:
    case COMMAND_BLOCKING:
    case COMMAND_QUIT:
    case COMMAND_NEARCACHE:
        break;
    }
}

/* Chooses the connection for a request: the dedicated one while the client
 * holds state or the command needs it, else the client's shared one. A switch
 * waits until the requests in flight elsewhere are answered, so that requests
 * run in the order sent. Returns NULL to stall (or when the client had to be
 * closed for want of memory). */
static struct upstream *client_route(struct client *c, command_kind_e kind)
{
    bool needs_own = kind == COMMAND_STICKY || kind == COMMAND_STREAM || kind == COMMAND_BLOCKING ||
                     kind == COMMAND_MULTI || kind == COMMAND_WATCH;
    if (c->ded == NULL && needs_own) {
        if (c->inflight > 0)
            return NULL;
        c->ded = server_dedicated_get(c->srv, c);
        if (c->ded == NULL) {
            client_close(c);
            return NULL;
        }
    }
    struct upstream *target = c->ded != NULL ? c->ded : c->home;
    if (c->inflight > 0 && (c->cur != target || kind == COMMAND_STREAM))
        return NULL;
    return target;
}

/* Answers with a bulk string of len bytes from body (which has room for
 * the CRLF after them). */
static void client_bulk(struct client *c, char *body, size_t len)
{
    char head[32];
    int h = snprintf(head, sizeof(head), "$%zu\r\n", len);
    memcpy(body + len, "\r\n", 2);
    client_local(c, head, (size_t)h);
    client_local(c, body, len + 2);
}

/* NEARCACHE STATS: the proxy's and the local tier's counters. */
static void client_stats(struct client *c)
{
    char body[2048];
    struct server *srv = c->srv;
    const struct coherence *co = &srv->coherence;
    int n = snprintf(body, sizeof(body),
                     "clients:%d\r\ntotal_connections:%llu\r\n"
                     "total_requests:%llu\r\ntracking:%s\r\ntracking_losses:%llu\r\n"
                     "tracking_refusals:%llu\r\ntracking_failures:%llu\r\n"
                     "reloads:%llu\r\nreloads_failed:%llu\r\n",
                     srv->nclients, (unsigned long long)srv->total_connections,
                     (unsigned long long)srv->total_requests, coherence_state_name(co->state),
                     (unsigned long long)co->losses, (unsigned long long)co->refusals,
                     (unsigned long long)co->failures, (unsigned long long)srv->reloads,
                     (unsigned long long)srv->reloads_failed);
    client_bulk(c, body,
                (size_t)n + cache_stats(srv->cache, body + n, sizeof(body) - 2 - (size_t)n));
}

/* NEARCACHE POLICY: a line of counters per rule. */
static void client_policy_stats(struct client *c)
{
    size_t cap = 256 + policy_rule_count(c->srv->policy) * (2 * POLICY_NAME_MAX + 128);
    char *body = malloc(cap);
    if (body == NULL) {
        client_close(c);
        return;
    }
    client_bulk(c, body, policy_stats(c->srv->policy, body, cap - 2));
    free(body);
}

/* NEARCACHE RELOAD: the settings and the policy, as SIGHUP does; answered
 * once the reload is applied or has failed (reload.h). */
static void client_reload(struct client *c)
{
    static const char ERR_OOM[] = "-ERR reload failed: out of memory\r\n";
    struct req *r = req_create(c);
    if (r == NULL) {
        client_close(c);
        return;
    }
    r->inflight = true;
    c->inflight++;
    if (reload_request(c->srv->reload, r) < 0)
        client_reply(r, ERR_OOM, sizeof(ERR_OOM) - 1);
}

/* The proxy's own command: NEARCACHE STATS | POLICY | RELOAD. */
static dispatch_e client_nearcache(struct client *c, const char *buf,
                                   const struct resp_request *req)
{
    static const char USAGE[] = "-ERR unknown subcommand or wrong number of arguments for "
                                "'nearcache'. Try NEARCACHE STATS, POLICY or RELOAD.\r\n";
    static const struct {
        const char *name;
        void (*run)(struct client *c);
    } SUBS[] = {
        {"stats", client_stats}, {"policy", client_policy_stats}, {"reload", client_reload}};
    struct resp_view sub = req->argc == 2 ? req->argv[1] : (struct resp_view){0, 0};
    for (size_t i = 0; i < sizeof(SUBS) / sizeof(*SUBS); i++) {
        if (sub.len == strlen(SUBS[i].name) &&
            strncasecmp(buf + sub.off, SUBS[i].name, sub.len) == 0) {
            SUBS[i].run(c);
            return DISPATCH_DONE;
        }
    }
    client_local(c, USAGE, sizeof(USAGE) - 1);
    return DISPATCH_DONE;
}

/* Queues a request on its upstream connection, or answers it from the local
 * tier. Writes invalidate the tier first; a transaction's writes complete
 * with its EXEC. The EXEC of a transaction in which the policy rejected a
 * command goes as a DISCARD, answered with Redis's EXECABORT. */
static dispatch_e client_forward(struct client *c, struct upstream *up, struct request *rq)
{
    struct server *srv = c->srv;
    command_kind_e kind = rq->kind;
    bool abort = kind == COMMAND_EXEC && c->multi_dirty && rq->cmd != NULL &&
                 strcmp(rq->cmd->name, "exec") == 0;
    struct resp_request discard = {RESP_REQ_MULTIBULK, sizeof(DISCARD_FRAME) - 1, 1, {{8, 7}}};
    struct request discard_rq = {DISCARD_FRAME, &discard, NULL, COMMAND_EXEC, rq->keys, -1};
    if (abort)
        rq = &discard_rq;
    client_apply_state(c, kind);
    struct cache_plan plan;
    cache_plan(srv->cache, rq, up == c->home && server_may_fill(srv, up), server_now_ms(srv),
               &plan);
    if (plan.hit) {
        client_local(c, plan.view.reply, plan.view.len);
        return DISPATCH_DONE;
    }
    struct req *r = req_create(c);
    if (r == NULL) {
        cache_fill_destroy(&plan.fill);
        cache_mget_put(&plan.mget);
        cache_writes_done(srv->cache, &plan.writes);
        client_close(c);
        return DISPATCH_DONE;
    }
    r->blocking = kind == COMMAND_BLOCKING;
    r->execabort = abort;
    if (c->in_multi) {
        cache_writes_merge(&c->multi_writes, &plan.writes);
    } else {
        if (kind == COMMAND_EXEC)
            cache_writes_merge(&r->writes, &c->multi_writes);
        cache_writes_merge(&r->writes, &plan.writes);
    }
    c->inflight++;
    c->cur = up;
    if (plan.mget != NULL) {
        upstream_send_mget(up, r, plan.mget);
        return DISPATCH_DONE;
    }
    upstream_send(up, rq->buf, rq->frame->len, r);
    if (plan.fill != NULL)
        upstream_send_fill(up, r, plan.fill);
    return DISPATCH_DONE;
}

/* Answers a request the policy rejects; inside MULTI that dooms the EXEC. */
static bool client_rejected(struct client *c, struct request *rq)
{
    char reply[POLICY_REPLY_MAX];
    if (policy_empty(c->srv->policy))
        return false;
    size_t n = policy_check(c->srv->policy, rq, reply);
    if (n == 0)
        return false;
    c->multi_dirty |= c->in_multi;
    client_local(c, reply, n);
    return true;
}

/* Sends one complete multibulk request on its way. */
static dispatch_e client_dispatch(struct client *c, const char *buf, const struct resp_request *req)
{
    struct server *srv = c->srv;
    srv->total_requests++;
    struct request rq;
    request_init(&rq, srv->commands, buf, req, &srv->request_keys);
    if (c->stream) {
        /* Replies are not matched here: a write is invalidated now only. */
        if (client_rejected(c, &rq))
            return DISPATCH_DONE;
        struct cache_plan plan;
        cache_plan(srv->cache, &rq, false, server_now_ms(srv), &plan);
        cache_writes_done(srv->cache, &plan.writes);
        upstream_send(c->ded, buf, req->len, NULL);
        return DISPATCH_DONE;
    }
    if (rq.kind == COMMAND_NEARCACHE)
        return client_nearcache(c, buf, req);
    if (rq.kind == COMMAND_QUIT) {
        client_local(c, "+OK\r\n", 5);
        c->last_write = true;
        return DISPATCH_DONE;
    }
    if (rq.kind == COMMAND_RESET && c->ded == NULL) {
        client_local(c, "+RESET\r\n", 8);
        return DISPATCH_DONE;
    }
    if (client_rejected(c, &rq))
        return DISPATCH_DONE;
    struct upstream *up = client_route(c, rq.kind);
    if (up == NULL)
        return DISPATCH_STALL;
    if (!upstream_usable(up)) {
        client_local(c, ERR_UNAVAILABLE, sizeof(ERR_UNAVAILABLE) - 1);
        return DISPATCH_DONE;
    }
    if (rq.kind == COMMAND_STREAM) {
        client_apply_state(c, rq.kind);
        upstream_set_stream(up);
        upstream_send(up, buf, req->len, NULL);
        return DISPATCH_DONE;
    }
    return client_forward(c, up, &rq);
}

/* Answers a malformed request as Redis does, then closes after writing. */
static void client_protocol_error(struct client *c, const char *err)
{
    char line[256];
    int n = snprintf(line, sizeof(line), "-ERR %s\r\n", err);
    client_local(c, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
    c->last_write = true;
    log_limited(LOG_INFO, "client: %s", err);
}

/* Inline requests are re-encoded as multibulk before they go upstream. */
static dispatch_e client_dispatch_inline(struct client *c, const char *line, size_t len)
{
    size_t mlen;
    int64_t argc;
    const char *err;
    char *mb = resp_inline_encode(line, len, &mlen, &argc, &err);
    if (mb == NULL) {
        if (err != NULL)
            client_protocol_error(c, err);
        return DISPATCH_DONE;
    }
    struct resp_scanner s;
    struct resp_request req;
    resp_scanner_reset(&s);
    dispatch_e d = DISPATCH_DONE;
    if (resp_scan_request(&s, &c->srv->limits, mb, mlen, &req) == RESP_OK)
        d = client_dispatch(c, mb, &req);
    else
        client_protocol_error(c, s.err != NULL ? s.err : "Protocol error: bad inline request");
    free(mb);
    return d;
}

/* Frames and dispatches every complete request buffered, until one stalls. */
static void client_process(struct client *c)
{
    while (!c->closing && !c->last_write && !c->stalled && rbuf_len(&c->in) > 0) {
        const char *buf = rbuf_head(&c->in);
        size_t avail = rbuf_len(&c->in);
        struct resp_request req;
        resp_status_e st = resp_scan_request(&c->scan, &c->srv->limits, buf, avail, &req);
        if (st == RESP_INCOMPLETE) {
            if ((int64_t)avail > c->srv->cfg->max_query_buffer) {
                log_limited(LOG_WARN, "client: query buffer over %zu bytes, closing", avail);
                client_close(c);
            }
            break;
        }
        if (st == RESP_ERROR) {
            client_protocol_error(c, c->scan.err);
            break;
        }
        dispatch_e d = DISPATCH_DONE;
        if (req.kind == RESP_REQ_MULTIBULK)
            d = client_dispatch(c, buf, &req);
        else if (req.kind == RESP_REQ_INLINE)
            d = client_dispatch_inline(c, buf + req.argv[0].off, req.argv[0].len);
        if (d == DISPATCH_STALL) {
            resp_scanner_reset(&c->scan);
            c->stalled = true;
            break;
        }
        if (!c->closing)
            rbuf_consume(&c->in, req.len);
    }
    client_update_reading(c);
}

void client_resume(struct client *c)
{
    if (c->closing)
        return;
    if (c->inflight == 0 && c->ded != NULL && !c->stream) {
        bool held = c->sticky || c->in_multi || c->watching;
        if (c->reset_ded || !held) {
            server_dedicated_put(c->srv, c->ded, !c->reset_ded);
            c->ded = NULL;
            c->reset_ded = false;
        }
    }
    c->stalled = false;
    client_process(c);
}

void client_flush(struct client *c)
{
    if (c->closing)
        return;
    if (c->out.len > 0 && obuf_write(&c->out, c->fd, SIZE_MAX) < 0) {
        client_close(c);
        return;
    }
    if (c->out.len > 0) {
        ev_io_start(c->srv->loop, &c->wio);
    } else {
        ev_io_stop(c->srv->loop, &c->wio);
        if (c->last_write && c->head == NULL) {
            client_close(c);
            return;
        }
    }
    if (c->out.len < CLIENT_OUT_LOW)
        client_update_reading(c);
}

bool client_idle(const struct client *c)
{
    int unread = 0;
    if (c->head != NULL || c->out.len > 0 || c->inflight > 0 || rbuf_len(&c->in) > 0)
        return false;
    return c->fd < 0 || ioctl(c->fd, FIONREAD, &unread) < 0 || unread == 0;
}

static void client_on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct client *c = (struct client *)((char *)w - offsetof(struct client, rio));
    ssize_t n = rbuf_read(&c->in, c->fd);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        client_close(c);
        return;
    }
    if (n > 0) {
        c->last_active = ev_now(loop);
        client_process(c);
    }
}

static void client_on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    client_flush((struct client *)((char *)w - offsetof(struct client, wio)));
}

struct client *client_create(struct server *srv, int fd)
{
    struct client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return NULL;
    }
    c->srv = srv;
    c->fd = fd;
    resp_scanner_reset(&c->scan);
    c->home = srv->pool[srv->pool_next++ % (unsigned)srv->cfg->pool_size];
    c->last_active = ev_now(srv->loop);
    ev_io_init(&c->rio, client_on_read, fd, EV_READ);
    ev_io_init(&c->wio, client_on_write, fd, EV_WRITE);
    client_update_reading(c);
    return c;
}

void client_close(struct client *c)
{
    if (c->closing)
        return;
    c->closing = true;
    ev_io_stop(c->srv->loop, &c->rio);
    ev_io_stop(c->srv->loop, &c->wio);
    close(c->fd);
    c->fd = -1;
    /* Replies still in flight are dropped by their upstream when they arrive. */
    while (c->head != NULL) {
        struct req *r = c->head;
        c->head = r->cnext;
        if (r->inflight)
            r->client = NULL;
        else
            req_destroy(r);
    }
    c->tail = NULL;
    if (c->ded != NULL) {
        upstream_close(c->ded);
        c->ded = NULL;
    }
    cache_writes_done(c->srv->cache, &c->multi_writes);
    server_client_dead(c->srv, c);
}

void client_destroy(struct client **cp)
{
    struct client *c = *cp;
    if (c == NULL)
        return;
    rbuf_deinit(&c->in);
    obuf_deinit(&c->out);
    free(c);
    *cp = NULL;
}

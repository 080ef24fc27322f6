/* client.c - client connections: the request path and in-order replies. */
#include "proxy/client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "config/config.h"
#include "policy/policy.h"
#include "proxy/client_cluster.h"
#include "proxy/client_own.h"
#include "proxy/cluster/route.h"
#include "proxy/cache/cache.h"
#include "proxy/cache/fill.h"
#include "proxy/cache/mget.h"
#include "proxy/exchange.h"
#include "proxy/invalidation.h"
#include "proxy/lib/log.h"
#include "proxy/proto/request.h"
#include "proxy/proto/slot.h"
#include "proxy/req.h"
#include "proxy/tls.h"
#include "proxy/upstream.h"
#include "proxy/worker.h"

/* Reading from a client (or its stream) pauses while this much output waits. */
#define CLIENT_OUT_HIGH (1024 * 1024)
#define CLIENT_OUT_LOW  (256 * 1024)
#define CLIENT_TLS_S    10 /* a TLS handshake must be over within this */

static const char ERR_EXECABORT[] =
    "-EXECABORT Transaction discarded because of previous errors.\r\n";
/* Sent in place of the EXEC of a transaction with a rejected command. */
static const char DISCARD_FRAME[] = "*1\r\n$7\r\nDISCARD\r\n";
static const struct resp_request DISCARD = {
    RESP_REQ_MULTIBULK, sizeof(DISCARD_FRAME) - 1, 1, {{8, 7}}};

typedef enum {
    DISPATCH_DONE = 0, /* the request was answered or queued */
    DISPATCH_STALL,    /* it must wait until the requests in flight are answered */
} dispatch_e;

static void client_on_read(struct ev_loop *loop, ev_io *w, int revents);
static void client_on_write(struct ev_loop *loop, ev_io *w, int revents);
static void client_on_reply(struct exchange *x, const char *data, size_t len, uint64_t now_ms);

struct exchange *client_exchange(struct req *r)
{
    struct exchange *x = exchange_create(client_on_reply, r);
    if (x != NULL) {
        r->inflight = true;
        r->client->session.inflight++;
    }
    return x;
}

static void client_update_reading(struct client *c)
{
    const struct session *s = &c->session;
    bool want = !c->closing && !c->last_write && !c->stalled && c->out.len < CLIENT_OUT_HIGH;
    if (s->state == SESSION_STREAM && s->dedicated != NULL)
        upstream_pause(s->dedicated, c->out.len >= CLIENT_OUT_HIGH);
    if (want == c->reading)
        return;
    c->reading = want;
    if (want)
        ev_io_start(c->w->loop, &c->rio);
    else
        ev_io_stop(c->w->loop, &c->rio);
}

/* Queues reply bytes for writing, within the output limit. */
static void client_emit(struct client *c, const char *data, size_t len)
{
    if (c->closing || len == 0)
        return;
    int64_t limit = c->w->cfg->max_output_buffer;
    if (obuf_append(&c->out, data, len) < 0 || (limit > 0 && (int64_t)c->out.len > limit)) {
        log_limited(LOG_WARN, "client_output_limit",
                    "client: output buffer over {limit_bytes=%lld} bytes, closing",
                    (long long)limit);
        client_close(c);
        return;
    }
    sched_want(&c->w->sched, SCHED_FLUSH_CLIENT, &c->flush);
}

/* Writes out the replies at the head of the FIFO that are complete. */
static void client_drain_done(struct client *c)
{
    while (c->head != NULL && c->head->done) {
        struct req *r = c->head;
        c->head = r->next;
        if (c->head == NULL)
            c->tail = NULL;
        client_emit(c, r->data, r->len);
        req_destroy(r);
    }
}

/* client_local behind replies still owed: kept in its slot until then. */
static __attribute__((noinline)) void client_local_queued(struct client *c, const char *data,
                                                          size_t len)
{
    struct req *r = req_create(c);
    if (r == NULL || req_keep(r, data, len) < 0) {
        client_close(c);
        return;
    }
    r->done = true;
}

/* The common case, nothing owed before it, without a frame for the other
 * (client_local_queued): a GET hit 1,131 -> 1,111 instructions. */
void client_local(struct client *c, const char *data, size_t len)
{
    if (c->head == NULL)
        client_emit(c, data, len);
    else
        client_local_queued(c, data, len);
}

/* Puts the reply to r in order: written now if r is at the head. */
static void client_reply(struct client *c, struct req *r, const char *data, size_t len)
{
    if (r->execabort && len == 5 && memcmp(data, "+OK\r\n", 5) == 0) {
        data = ERR_EXECABORT;
        len = sizeof(ERR_EXECABORT) - 1;
    } else if (len > 0 && (data[0] == '-' || data[0] == '!')) {
        policy_on_error(c->w->policy, data, len);
    }
    c->session.inflight--;
    if (r == c->head) {
        c->head = r->next;
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
    if (c->session.inflight == 0 && !c->closing)
        sched_want(&c->w->sched, SCHED_RESUME, &c->resume);
}

/* A read joined to another client's must go to Redis after all: sent on the
 * connection it was planned for (its client has sent nothing since). */
static void client_resend(struct req *r)
{
    struct client *c = r->client;
    struct exchange *x = c != NULL ? exchange_create(client_on_reply, r) : NULL;
    if (x != NULL) {
        upstream_send(r->kept->up, r->kept->request, r->kept->len, x);
        return;
    }
    r->inflight = false;
    if (c == NULL) {
        req_destroy(r);
        return;
    }
    c->session.inflight--;
    client_close(c); /* out of memory */
}

/* exchange_done_fn of a client's request: the tier takes what it needs (the
 * read's reply for its fill, the second invalidation of a write's keys, the
 * hits an MGET's reply is merged with), then the reply goes in order. data
 * NULL: a joined read the read it joined cannot answer (fill.h). */
static void client_on_reply(struct exchange *x, const char *data, size_t len, uint64_t now_ms)
{
    struct req *r = x->arg;
    if (data != NULL && len > 0 && data[0] == '-' && r->client != NULL &&
        r->client->w->route != NULL && client_cluster_redirect(r, x, data, len))
        return;
    exchange_destroy(&x);
    if (data == NULL) {
        client_resend(r);
        return;
    }
    if (r->fill != NULL) { /* first: reads joined to it may close this client */
        cache_fill_reply(r->fill, data, len, now_ms);
        r->fill = NULL;
    }
    r->inflight = false;
    cache_writes_done(r->cache, &r->writes);
    if (r->mget != NULL) {
        cache_mget_merge(r->cache, r->mget, data, len, &data, &len);
        cache_mget_put(&r->mget);
    }
    if (r->client == NULL) { /* the client went first */
        req_destroy(r);
        return;
    }
    struct worker *w = r->client->w;
    metrics_observe(&w->metrics.upstream, ev_now(w->loop) - r->at, 1);
    metrics_size(&w->metrics.sizes, len);
    upstream_failed_e failed =
        len > 0 && data[0] == '-' ? upstream_failed_kind(data) : UPSTREAM_FAILED_KINDS;
    if (failed < UPSTREAM_FAILED_KINDS)
        w->pool.counters.failed[failed]++;

    if (r->move.resp > 0 && len > 0 && data[0] != '-')
        client_moved(r->client, r->move);
    client_reply(r->client, r, data, len);
}

/* A RESP3 push from the client's dedicated connection; one that arrives
 * while a reply is awaited goes out before that reply. */
static void client_on_push(void *arg, const char *data, size_t len)
{
    struct client *c = arg;
    struct exchange *x = upstream_oldest(c->session.dedicated);
    if (x != NULL && x->done == client_on_reply && ((struct req *)x->arg)->client == c) {
        if (req_keep(x->arg, data, len) < 0)
            client_close(c);
        return;
    }
    client_local(c, data, len);
}

/* Stream-mode bytes from the client's dedicated connection. */
static void client_on_stream(void *arg, const char *data, size_t len)
{
    struct client *c = arg;
    client_local(c, data, len);
    client_update_reading(c);
}

/* The dedicated connection broke: the client is told as Redis going away
 * would have told it. */
static void client_on_lost(void *arg, struct upstream *up, bool was_ready)
{
    (void)up;
    struct client *c = arg;
    switch (session_lost(&c->session, was_ready)) {
    case SESSION_UNAVAILABLE:
        client_unavailable(c);
        c->last_write = true;
        break;
    case SESSION_CLOSE:
        c->last_write = true;
        break;
    case SESSION_GO_ON:
        break;
    }
    sched_want(&c->w->sched, SCHED_FLUSH_CLIENT, &c->flush);
    client_update_reading(c);
}

/* Queues the exchanges of a planned request: the request itself (or the MGET
 * of the missing keys in its place) and the PTTLs behind it that fill the
 * tier. */
static void client_send(struct client *c, struct upstream *up, struct req *r, struct request *rq,
                        struct cache_plan *plan)
{
    const char *data = rq->buf;
    size_t len = rq->frame->len;
    if (plan->mget != NULL)
        cache_mget_request(plan->mget, &data, &len);
    /* A cluster node may redirect it: one on a shared connection, or a
     * blocking command on a dedicated one that holds no other state. */
    const struct session *s = &c->session;
    bool keep = c->w->route != NULL && (up->slot >= 0 || (up == s->dedicated && s->held == 0));
    struct exchange *x = !keep || req_keep_request(r, up, data, len, slot_of_request(rq)) == 0
                             ? client_exchange(r)
                             : NULL;
    if (x == NULL) {
        cache_fill_destroy(&plan->fill);
        cache_mget_put(&plan->mget);
        cache_writes_done(r->cache, &r->writes);
        client_close(c);
        return;
    }
    x->blocking = rq->kind == COMMAND_BLOCKING;
    if (plan->mget != NULL) {
        struct cache_mget *m = plan->mget;
        r->mget = cache_mget_get(m); /* its reply may come (as an error) at once */
        upstream_send(up, data, len, x);
        for (size_t i = 0; i < cache_mget_misses(m); i++) {
            struct exchange *p = cache_mget_exchange(m, i, &data, &len);
            if (p != NULL)
                upstream_send(up, data, len, p);
        }
        cache_mget_put(&plan->mget);
        return;
    }
    if (plan->fill == NULL) {
        upstream_send(up, data, len, x);
        return;
    }
    const char *pttl;
    size_t plen;
    struct exchange *p = cache_fill_exchange(plan->fill, &pttl, &plen);
    r->fill = p != NULL ? plan->fill : NULL;
    upstream_send(up, data, len, x);
    if (p != NULL)
        upstream_send(up, pttl, plen, p);
}

/* A read that joins an identical one in flight (fill.h): answered with its
 * reply, or sent on up after all. The client's next requests wait for it, so
 * that none of them runs at Redis before it. */
static dispatch_e client_join(struct client *c, struct upstream *up, const struct request *rq,
                              struct cache_fill *leader)
{
    struct req *r = req_create(c);
    struct exchange *x = r != NULL && req_keep_request(r, up, rq->buf, rq->frame->len, -1) == 0
                             ? client_exchange(r)
                             : NULL;
    if (x == NULL) {
        client_close(c);
        return DISPATCH_DONE;
    }
    c->session.cur = up;
    c->session.barrier = true;
    cache_fill_join(leader, x);
    return DISPATCH_DONE;
}

/* Queues a request on its upstream connection, or answers it from the local
 * tier. Writes invalidate the tier first; a transaction's writes complete
 * with its EXEC. The EXEC of a transaction in which the policy rejected a
 * command goes as a DISCARD, answered with Redis's EXECABORT. Always inline
 * in client_dispatch, its one caller: a GET hit 1,275 -> 1,266 instructions. */
static inline __attribute__((always_inline)) dispatch_e
client_forward(struct client *c, struct upstream *up, struct request *rq, uint64_t now_ms)
{
    struct worker *w = c->w;
    struct session *s = &c->session;
    command_kind_e kind = rq->kind;
    bool abort = kind == COMMAND_EXEC && s->multi_dirty && rq->cmd != NULL &&
                 strcmp(rq->cmd->name, "exec") == 0;
    struct request discard_rq; /* filled only when needed (a GET hit 1,325 -> 1,313) */
    if (abort) {
        discard_rq = (struct request){
            DISCARD_FRAME, &DISCARD, NULL, COMMAND_EXEC, rq->keys, -1, REQUEST_SLOT_UNSEEN};
        rq = &discard_rq;
    }
    session_apply(s, kind);
    struct cache_plan plan;
    struct invalidation *inv = w->route != NULL ? route_inv(w->route, up) : w->inv;
    const struct lane *serve = up == s->home && invalidation_may_fill(inv, up) ? &up->lane : NULL;
    cache_plan(w->cache, rq, serve, now_ms, &plan);
    observe_request(&w->observe, w, rq, plan.hit);
    if (plan.hit) {
        client_local(c, plan.view.reply, plan.view.len);
        c->hits_unsent++;
        metrics_size(&w->metrics.sizes, plan.view.len);
        audit_note(&w->audit, w, up, rq, plan.view.reply, plan.view.len);
        return DISPATCH_DONE;
    }
    if (plan.join != NULL)
        return client_join(c, up, rq, plan.join);
    struct req *r = req_create(c);
    if (r == NULL) {
        cache_fill_destroy(&plan.fill);
        cache_mget_put(&plan.mget);
        cache_writes_done(w->cache, &plan.writes);
        client_close(c);
        return DISPATCH_DONE;
    }
    r->execabort = abort;
    if (s->held & SESSION_MULTI) {
        cache_writes_merge(&c->multi_writes, &plan.writes);
    } else {
        if (kind == COMMAND_EXEC)
            cache_writes_merge(&r->writes, &c->multi_writes);
        cache_writes_merge(&r->writes, &plan.writes);
    }
    s->cur = up;
    client_send(c, up, r, rq, &plan);
    return DISPATCH_DONE;
}

void client_unavailable(struct client *c)
{
    static const char ERR_UNAVAILABLE[] = UPSTREAM_ERR_UNAVAILABLE;
    c->w->pool.counters.failed[UPSTREAM_FAILED_UNAVAILABLE]++;
    client_local(c, ERR_UNAVAILABLE, sizeof(ERR_UNAVAILABLE) - 1);
}

/* Answers a request the policy rejects; inside MULTI that dooms the EXEC. */
static __attribute__((noinline)) bool client_check(struct client *c, struct request *rq)
{
    char reply[POLICY_REPLY_MAX];
    size_t n = policy_check(c->w->policy, rq, reply);
    if (n == 0)
        return false;
    c->session.multi_dirty |= (c->session.held & SESSION_MULTI) != 0;
    client_local(c, reply, n);
    return true;
}

/* client_check, unless the policy checks nothing: then no frame is set up
 * for its reply buffer (a GET hit 1,253 -> 1,237 instructions). */
static bool client_rejected(struct client *c, struct request *rq)
{
    return !policy_empty(c->w->policy) && client_check(c, rq);
}

/* Sends one complete multibulk request on its way. */
static dispatch_e client_dispatch(struct client *c, const char *buf, const struct resp_request *req,
                                  uint64_t now_ms)
{
    struct worker *w = c->w;
    struct session *s = &c->session;
    struct request rq;
    request_init(&rq, w->commands, buf, req, &w->request_keys);
    w->metrics.calls[rq.cmd != NULL ? rq.cmd->index + 1 : 0]++;
    /* Most clients need no check: authenticated, or no authentication, and
     * no user with limits to find again after a reload. */
    if ((!c->id.authed || c->id.user_name != NULL) && client_gated(c, &rq))
        return DISPATCH_DONE;
    if (s->state == SESSION_STREAM) {
        /* Replies are not matched here: a write is invalidated now only. */
        if (client_rejected(c, &rq))
            return DISPATCH_DONE;
        struct cache_plan plan;
        cache_plan(w->cache, &rq, NULL, now_ms, &plan);
        cache_writes_done(w->cache, &plan.writes);
        upstream_send(s->dedicated, buf, req->len, NULL);
        return DISPATCH_DONE;
    }
    if (rq.kind == COMMAND_NEARCACHE) {
        client_nearcache(c, buf, req);
        return DISPATCH_DONE;
    }
    if (rq.kind == COMMAND_QUIT) {
        client_local(c, "+OK\r\n", 5);
        c->last_write = true;
        return DISPATCH_DONE;
    }
    if (rq.kind == COMMAND_RESET && s->state == SESSION_SHARED) {
        if (s->barrier && s->inflight > 0)
            return DISPATCH_STALL; /* a SELECT or HELLO in flight would undo it */
        identity_reset(&c->id, w->cfg);
        session_apply(s, COMMAND_RESET);
        session_move(s, &w->pool, 0);
        client_local(c, "+RESET\r\n", 8);
        return DISPATCH_DONE;
    }
    if (client_rejected(c, &rq))
        return DISPATCH_DONE;
    if (rq.kind == COMMAND_RESET) { /* Redis's RESET: database 0, RESP2; the proxy's: lane 0 */
        identity_reset(&c->id, w->cfg);
        session_move(s, &w->pool, 0);
    }
    if (rq.cmd != NULL && rq.cmd->own != COMMAND_OWN_NONE) {
        client_own_e own = client_own(c, &rq);
        if (own != CLIENT_OWN_FORWARD)
            return own == CLIENT_OWN_STALL ? DISPATCH_STALL : DISPATCH_DONE;
    }
    bool oom = false, was_shared = s->state == SESSION_SHARED;
    struct upstream *up;
    if (w->route != NULL) {
        bool stall;
        if ((up = client_cluster_route(c, &rq, &stall)) == NULL)
            return stall ? DISPATCH_STALL : DISPATCH_DONE;
    } else if ((up = session_route(s, rq.kind, &w->pool, s->lane, &c->owner, &oom)) == NULL) {
        if (oom)
            client_close(c);
        return oom ? DISPATCH_DONE : DISPATCH_STALL;
    }
    if (!upstream_usable(up)) {
        if (up == s->dedicated && !up->was_ready) { /* refused at once: don't keep it */
            bool parked = s->parked; /* a MULTI answered +OK: still open, and doomed */
            upstream_close(up);
            session_lost(s, false);
            s->parked = parked;
            s->held |= parked ? SESSION_MULTI : 0;
            s->multi_dirty = parked;
        }
        client_unavailable(c);
        return DISPATCH_DONE;
    }
    /* A stream's replies are not matched: its name stays the proxy's. */
    if (was_shared && s->state != SESSION_SHARED && c->id.name != NULL && rq.kind != COMMAND_STREAM)
        client_name_carry(c, up);
    if (s->parked && s->state == SESSION_DEDICATED)
        client_cluster_open(c, up);
    if (rq.kind == COMMAND_STREAM) {
        session_apply(s, rq.kind);
        upstream_set_stream(up);
        upstream_send(up, buf, req->len, NULL);
        return DISPATCH_DONE;
    }
    return client_forward(c, up, &rq, now_ms);
}

/* Answers a malformed request as Redis does, then closes after writing. */
static void client_protocol_error(struct client *c, const char *err)
{
    char line[256];
    int n = snprintf(line, sizeof(line), "-ERR %s\r\n", err);
    client_local(c, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
    c->last_write = true;
    log_limited(LOG_INFO, "client_protocol_error", "client: {reason=%s}", err);
}
/* Inline requests are re-encoded as multibulk before they go upstream. */
static dispatch_e client_dispatch_inline(struct client *c, const char *line, size_t len,
                                         uint64_t now_ms)
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
    if (resp_scan_request(&s, &c->w->limits, mb, mlen, &req) == RESP_OK)
        d = client_dispatch(c, mb, &req, now_ms);
    else
        client_protocol_error(c, s.err != NULL ? s.err : "Protocol error: bad inline request");
    free(mb);
    return d;
}

/* Frames and dispatches every complete request buffered, until one stalls. */
static void client_process(struct client *c)
{
    uint64_t now_ms = worker_now_ms(c->w); /* the loop's: once for every request read */
    while (!c->closing && !c->last_write && !c->stalled && rbuf_len(&c->in) > 0) {
        const char *buf = rbuf_head(&c->in);
        size_t avail = rbuf_len(&c->in);
        struct resp_request req;
        resp_status_e st = resp_scan_request(&c->scan, &c->w->limits, buf, avail, &req);
        if (st == RESP_INCOMPLETE) {
            if ((int64_t)avail > c->w->cfg->max_query_buffer) {
                log_limited(LOG_WARN, "client_query_limit",
                            "client: query buffer over {bytes=%zu} bytes, closing", avail);
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
            d = client_dispatch(c, buf, &req, now_ms);
        else if (req.kind == RESP_REQ_INLINE)
            d = client_dispatch_inline(c, buf + req.argv[0].off, req.argv[0].len, now_ms);
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

/* SCHED_RESUME: the requests in flight are answered; the dedicated
 * connection goes back once no state is held, and reading goes on. */
static void client_on_resume(struct sched_item *it)
{
    struct client *c = (struct client *)((char *)it - offsetof(struct client, resume));
    if (c->closing)
        return;
    session_settle(&c->session);
    c->stalled = false;
    client_process(c);
}

/* SCHED_FLUSH_CLIENT: writes queued replies. */
static void client_on_flush(struct sched_item *it)
{
    struct client *c = (struct client *)((char *)it - offsetof(struct client, flush));
    if (c->closing)
        return;
    struct metrics *m = &c->w->metrics;
    if (c->hits_unsent > 0) {
        metrics_observe(&m->hit, metrics_clock(m, c->w->loop) - c->last_active, c->hits_unsent);
        c->hits_unsent = 0;
    }
    ssize_t sent = c->out.len > 0 ? tls_write(c->ssl, c->fd, &c->out, SIZE_MAX) : 0;
    if (sent < 0) {
        client_close(c);
        return;
    }
    m->bytes_out += (uint64_t)sent;
    if (c->out.len > 0) {
        ev_io_start(c->w->loop, &c->wio);
    } else {
        ev_io_stop(c->w->loop, &c->wio);
        if (c->last_write && c->head == NULL) {
            client_close(c);
            return;
        }
    }
    if (c->out.len < CLIENT_OUT_LOW)
        client_update_reading(c);
}

/* SCHED_REAP: frees a closed client. */
static void client_on_reap(struct sched_item *it)
{
    struct client *c = (struct client *)((char *)it - offsetof(struct client, reap));
    rbuf_deinit(&c->in);
    obuf_deinit(&c->out);
    identity_free(&c->id);
    free(c);
}

bool client_idle(const struct client *c)
{
    int unread = 0;
    if (c->head != NULL || c->out.len > 0 || c->session.inflight > 0 || rbuf_len(&c->in) > 0)
        return false;
    return c->fd < 0 || ioctl(c->fd, FIONREAD, &unread) < 0 || unread == 0;
}

void client_tick(struct client *c, ev_tstamp now, bool stalled)
{
    int idle_ms = c->w->cfg->client_idle_timeout_ms;
    if (c->session.dedicated != NULL)
        upstream_tick(c->session.dedicated, now, stalled);
    if (c->handshaking && !stalled && now - c->last_active >= CLIENT_TLS_S) {
        log_limited(LOG_WARN, "client_tls_failed",
                    "client: TLS handshake not over in {timeout_s=%d} s", CLIENT_TLS_S);
        client_close(c);
    } else if (idle_ms > 0 && c->head == NULL && c->session.state != SESSION_STREAM &&
               (now - c->last_active) * 1000 >= idle_ms) {
        client_close(c);
    }
}

/* A plain client whose first bytes are a TLS handshake record (type 22,
 * version 3.x) is told so and closed: read as an inline request it would
 * wait for a newline that never comes. */
static bool client_speaks_tls(struct client *c)
{
    static const char ERR_TLS[] =
        "-ERR Protocol error: TLS on a plain port (connect to tls.listen)\r\n";
    const unsigned char *p = (const unsigned char *)rbuf_head(&c->in);
    if (c->ssl != NULL || rbuf_len(&c->in) < 2 || p[0] != 0x16 || p[1] != 0x03)
        return false;
    log_limited(LOG_WARN, "client_tls_failed", "client: a TLS handshake on the plain port");
    client_local(c, ERR_TLS, sizeof(ERR_TLS) - 1);
    c->last_write = true;
    client_update_reading(c);
    return true;
}

/* Advances a TLS client's handshake; requests are read once it is over. */
static void client_tls_step(struct client *c)
{
    tls_step_e step = tls_handshake(c->ssl);
    if (step == TLS_FAILED) {
        log_limited(LOG_WARN, "client_tls_failed", "client: TLS handshake: {reason=%s}",
                    tls_reason());
        client_close(c);
        return;
    }
    c->handshaking = step != TLS_DONE;
    (step == TLS_WANT_WRITE ? ev_io_start : ev_io_stop)(c->w->loop, &c->wio);
    if (c->handshaking)
        return;
    c->reading = false; /* the watcher, started for the handshake, follows the rules again */
    ev_io_stop(c->w->loop, &c->rio);
    client_update_reading(c);
    ev_feed_event(c->w->loop, &c->rio, EV_READ); /* requests may have come with the last flight */
}

static void client_on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct client *c = (struct client *)((char *)w - offsetof(struct client, rio));
    if (c->handshaking) {
        client_tls_step(c);
        return;
    }
    ssize_t n = tls_read(c->ssl, c->fd, &c->in);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        client_close(c);
        return;
    }
    if (n > 0) {
        c->last_active = ev_now(loop);
        c->w->metrics.bytes_in += (uint64_t)n;
        if (!c->spoke && client_speaks_tls(c))
            return;
        c->spoke = true;
        client_process(c);
    }
}

static void client_on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct client *c = (struct client *)((char *)w - offsetof(struct client, wio));
    if (c->handshaking)
        client_tls_step(c);
    else
        client_on_flush(&c->flush);
}

struct client *client_create(struct worker *w, int fd, SSL_CTX *tls)
{
    struct client *c = calloc(1, sizeof(*c));
    SSL *ssl = c != NULL && tls != NULL ? tls_accept_new(tls, fd) : NULL;
    if (c == NULL || (tls != NULL && ssl == NULL)) {
        free(c);
        close(fd);
        return NULL;
    }
    c->ssl = ssl;
    c->handshaking = ssl != NULL;
    c->w = w;
    c->fd = fd;
    identity_init(&c->id, w->cfg);
    resp_scanner_reset(&c->scan);
    c->session.pick = w->pool.next;
    c->session.home = pool_home(&w->pool, 0);
    c->session.spread = w->route != NULL;
    c->owner = (struct upstream_owner){
        .lost = client_on_lost, .push = client_on_push, .stream = client_on_stream, .arg = c};
    c->last_active = ev_now(w->loop);
    sched_item_init(&c->resume, client_on_resume);
    sched_item_init(&c->flush, client_on_flush);
    sched_item_init(&c->reap, client_on_reap);
    ev_io_init(&c->rio, client_on_read, fd, EV_READ);
    ev_io_init(&c->wio, client_on_write, fd, EV_WRITE);
    c->next = w->clients;
    if (w->clients != NULL)
        w->clients->prev = c;
    w->clients = c;
    __atomic_store_n(&w->stats.clients, w->stats.clients + 1, __ATOMIC_RELAXED); /* others count */
    w->stats.total_connections++;
    if (c->handshaking) {
        c->reading = true;
        ev_io_start(w->loop, &c->rio); /* the ClientHello */
    } else {
        client_update_reading(c);
    }
    return c;
}

void client_close(struct client *c)
{
    struct worker *w = c->w;
    if (c->closing)
        return;
    c->closing = true;
    ev_io_stop(w->loop, &c->rio);
    ev_io_stop(w->loop, &c->wio);
    tls_free(c->ssl);
    c->ssl = NULL;
    close(c->fd);
    c->fd = -1;
    /* Replies still in flight are dropped when they arrive. */
    while (c->head != NULL) {
        struct req *r = c->head;
        c->head = r->next;
        if (r->inflight)
            r->client = NULL;
        else
            req_destroy(r);
    }
    c->tail = NULL;
    session_end(&c->session);
    cache_writes_done(w->cache, &c->multi_writes);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->clients = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    __atomic_store_n(&w->stats.clients, w->stats.clients - 1, __ATOMIC_RELAXED);
    sched_want(&w->sched, SCHED_REAP, &c->reap);
}

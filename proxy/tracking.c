/* tracking.c - the invalidation subscriber for Redis client-side caching.
 *
 * At most two hiredis async contexts at a time, driven by the libev adapter:
 * the subscriber (ac), created by an attempt, and the registration connection
 * (rac), created once the subscription is confirmed when there are sources.
 * An attempt is up when the subscription is confirmed and rac (if any) has
 * answered +OK to every CLIENT TRACKING sent on it; one deadline covers both.
 *
 * A context ends in one of three ways: hiredis frees it after a connect
 * failure or a disconnect (on_connect / on_disconnect tell us, and we only
 * forget it), or we free it ourselves from a timer callback (the deadline
 * passed, the handshake or the registration was refused, the sources were
 * emptied) or when the other context is lost. It is never freed from inside
 * one of its own callbacks. ac->data points back to the tracking object while
 * the context is ours; it is cleared before we free it so that the callbacks
 * hiredis runs while freeing are ignored.
 */
#include "proxy/tracking.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>

#include "proxy/ctl.h"
#include "proxy/hiredis_libev.h"
#include "proxy/lib/log.h"
#include "proxy/net.h"

#define TRACKING_CHANNEL        "__redis__:invalidate"
#define TRACKING_BACKOFF_MIN_MS 50
#define TRACKING_READ_MAX       64 /* hiredis reads per wake-up: 1 MB */

struct tracking {
    struct ev_loop *loop;
    struct tracking_callbacks cb;
    const struct net_addr *addr; /* borrowed: where to connect, read at each connection */
    char *user;
    char *password;
    ev_tstamp connect_timeout;
    int reconnect_max_ms;
    int backoff_ms;         /* delay of the last failed attempt's retry */
    redisAsyncContext *ac;  /* subscriber; NULL while waiting for the next attempt */
    redisAsyncContext *rac; /* registration; NULL without sources or before subscribed */
    ev_timer timer;         /* ac NULL: next attempt; else the handshake or
                               registration deadline, or at once when doomed */
    ev_timer apply;         /* the sources changed while subscribed */
    bool doomed;            /* handshake or registration failed: drop all at the timer */
    bool subscribed;        /* SUBSCRIBE confirmed on ac */
    unsigned reg_waiting;   /* CLIENT TRACKING on sent on rac, not answered yet */
    long long pending_id;   /* CLIENT ID of ac, before it is up */
    long long client_id;    /* -1 unless up */
    char *src_bytes;        /* the sources, concatenated */
    size_t *src_lens;       /* their lengths, nsrc of them */
    size_t nsrc;
};

static void tracking_attempt(struct tracking *t);

/* ---- connection lifecycle ------------------------------------------------- */

/* Arms the timer for the next attempt: at once after a working connection,
 * else after a backoff that doubles up to reconnect_max_ms. */
static void tracking_schedule(struct tracking *t, bool at_once)
{
    if (at_once) {
        t->backoff_ms = 0;
    } else {
        t->backoff_ms = t->backoff_ms == 0 ? TRACKING_BACKOFF_MIN_MS : t->backoff_ms * 2;
        if (t->backoff_ms > t->reconnect_max_ms)
            t->backoff_ms = t->reconnect_max_ms;
    }
    ev_timer_stop(t->loop, &t->timer);
    ev_timer_set(&t->timer, at_once ? 0. : t->backoff_ms / 1000.0, 0.);
    ev_timer_start(t->loop, &t->timer);
}

/* Frees a context of ours from outside its callbacks, silencing them first. */
static void tracking_drop(redisAsyncContext **slot)
{
    redisAsyncContext *ac = *slot;
    if (ac == NULL)
        return;
    *slot = NULL;
    ac->data = NULL;
    redisAsyncFree(ac);
}

/* The attempt failed or a working subscription ended: frees the contexts
 * still ours (the caller forgot the one hiredis is freeing, if any), schedules
 * the next attempt and reports the loss if the subscription was up. */
static void tracking_lost(struct tracking *t, const char *why)
{
    bool was_subscribed = t->client_id > 0;
    tracking_drop(&t->ac);
    tracking_drop(&t->rac);
    ev_timer_stop(t->loop, &t->apply);
    t->doomed = false;
    t->subscribed = false;
    t->reg_waiting = 0;
    t->pending_id = -1;
    t->client_id = -1;
    tracking_schedule(t, was_subscribed);
    if (was_subscribed) {
        log_warn("tracking_lost",
                 "tracking: invalidation connection lost ({reason=%s}); reconnecting", why);
        if (t->cb.state != NULL)
            t->cb.state(t->cb.arg, -1);
    } else {
        log_limited(LOG_WARN, "tracking_subscribe_failed",
                    "tracking: cannot subscribe to invalidations ({reason=%s}); retry in "
                    "{retry_ms=%d} ms",
                    why, t->backoff_ms);
    }
}

/* Returns the tracking object of a context that is still ours, else NULL. */
static struct tracking *tracking_of(const redisAsyncContext *ac)
{
    struct tracking *t = ac->data;
    return t != NULL && (t->ac == ac || t->rac == ac) ? t : NULL;
}

/* Marks the attempt (or, while up, the subscription) as failed; the contexts
 * are freed at the timer, outside hiredis's callbacks. */
static void tracking_fail(struct tracking *t)
{
    t->doomed = true;
    ev_timer_stop(t->loop, &t->timer);
    ev_timer_set(&t->timer, 0., 0.);
    ev_timer_start(t->loop, &t->timer);
}

static void tracking_doom(struct tracking *t, const char *what, const redisReply *r)
{
    bool auth_refused = r != NULL && r->type == REDIS_REPLY_ERROR &&
                        (strncmp(r->str, "NOAUTH", 6) == 0 || strncmp(r->str, "WRONGPASS", 9) == 0);
    log_limited(LOG_WARN, "tracking_refused", "tracking: {step=%s} refused%s", what,
                auth_refused ? " (check upstream.username / upstream.password)" : "");
    tracking_fail(t);
}

/* A context of ours ended (hiredis frees it when the current callback
 * returns): the attempt failed, or the subscription is lost. */
static void tracking_ended(struct tracking *t, const redisAsyncContext *ac, const char *why)
{
    char buf[160];
    snprintf(buf, sizeof(buf), "%s%s", ac == t->rac ? "registration connection: " : "", why);
    if (t->ac == ac)
        t->ac = NULL;
    if (t->rac == ac)
        t->rac = NULL;
    tracking_lost(t, buf);
}

static void tracking_on_connect(const redisAsyncContext *ac, int status)
{
    struct tracking *t = tracking_of(ac);
    if (t == NULL || status == REDIS_OK)
        return;
    tracking_ended(t, ac, ac->errstr != NULL ? ac->errstr : "connect failed");
}

static void tracking_on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    struct tracking *t = tracking_of(ac);
    if (t == NULL)
        return;
    tracking_ended(t, ac, ac->errstr != NULL && ac->err != 0 ? ac->errstr : "closed");
}

/* ---- replies ------------------------------------------------------------------ */

static void tracking_on_auth(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)privdata;
    struct tracking *t = tracking_of(ac);
    const redisReply *r = reply;
    if (t == NULL || r == NULL)
        return;
    if (r->type == REDIS_REPLY_ERROR)
        tracking_doom(t, "AUTH", r);
}

static void tracking_on_client_id(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)privdata;
    struct tracking *t = tracking_of(ac);
    const redisReply *r = reply;
    if (t == NULL || r == NULL)
        return;
    if (r->type != REDIS_REPLY_INTEGER || r->integer <= 0) {
        tracking_doom(t, "CLIENT ID", r);
        return;
    }
    t->pending_id = r->integer;
}

/* The payload of one invalidation message: the keys, or nil for "all". */
static void tracking_invalidate(struct tracking *t, const redisReply *payload)
{
    switch (payload->type) {
    case REDIS_REPLY_ARRAY:
        for (size_t i = 0; i < payload->elements; i++) {
            const redisReply *k = payload->element[i];
            if (k->type == REDIS_REPLY_STRING && t->cb.key != NULL)
                t->cb.key(t->cb.arg, k->str, k->len);
        }
        break;
    case REDIS_REPLY_STRING:
        if (t->cb.key != NULL)
            t->cb.key(t->cb.arg, payload->str, payload->len);
        break;
    case REDIS_REPLY_NIL:
        if (t->cb.flush != NULL)
            t->cb.flush(t->cb.arg);
        break;
    default:
        log_limited(LOG_WARN, "tracking_unexpected_payload",
                    "tracking: unexpected invalidation payload type {type=%d}", payload->type);
        break;
    }
}

/* Reports the subscription up once it is confirmed and the sources, if any,
 * are registered; while up, ends the deadline of a re-registration. */
static void tracking_maybe_up(struct tracking *t)
{
    if (t->doomed || !t->subscribed)
        return;
    if (t->nsrc > 0 && (t->rac == NULL || t->reg_waiting > 0))
        return;
    ev_timer_stop(t->loop, &t->timer);
    if (t->client_id > 0)
        return;
    t->client_id = t->pending_id;
    t->backoff_ms = 0;
    log_notice("tracking_subscribed",
               "tracking: subscribed to invalidations as client {client_id=%lld} ({prefixes=%zu} "
               "source prefixes)",
               t->client_id, t->nsrc);
    if (t->cb.state != NULL)
        t->cb.state(t->cb.arg, t->client_id);
}

static int tracking_register_start(struct tracking *t);

/* The subscription confirmed: the connection now carries invalidations. */
static void tracking_subscribed(struct tracking *t)
{
    if (t->doomed || t->pending_id <= 0 || t->subscribed)
        return;
    t->subscribed = true;
    if (t->nsrc > 0 && tracking_register_start(t) < 0) {
        tracking_fail(t);
        return;
    }
    tracking_maybe_up(t);
}

static void tracking_on_message(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)privdata;
    struct tracking *t = tracking_of(ac);
    const redisReply *r = reply;
    if (t == NULL || r == NULL)
        return;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        r->element[0]->type != REDIS_REPLY_STRING) {
        log_limited(LOG_WARN, "tracking_unexpected_reply",
                    "tracking: unexpected reply on the invalidation connection");
        return;
    }
    const char *kind = r->element[0]->str;
    if (strcasecmp(kind, "subscribe") == 0)
        tracking_subscribed(t);
    else if (strcasecmp(kind, "message") == 0 && t->client_id > 0)
        tracking_invalidate(t, r->element[2]);
}

/* ---- registration of the sources ------------------------------------------------- */

/* Redis refused the registration (or its connection's AUTH): the sources
 * are not reported, which is a failed handshake, or a loss while up. */
static void tracking_refused(struct tracking *t, const char *what, const redisReply *r)
{
    const char *err = r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STATUS ? r->str : "?";
    log_limited(LOG_WARN, "tracking_prefixes_refused",
                "tracking: {step=%s} of the source prefixes refused: {reason=%.200s}", what, err);
    tracking_fail(t);
}

static void tracking_on_register(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)privdata;
    struct tracking *t = tracking_of(ac);
    const redisReply *r = reply;
    if (t == NULL || r == NULL)
        return;
    if (t->reg_waiting > 0)
        t->reg_waiting--;
    if (r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0)
        tracking_maybe_up(t);
    else
        tracking_refused(t, "CLIENT TRACKING BCAST", r);
}

static void tracking_on_unregister(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)privdata;
    struct tracking *t = tracking_of(ac);
    const redisReply *r = reply;
    if (t == NULL || r == NULL)
        return;
    if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "OK") != 0)
        tracking_refused(t, "CLIENT TRACKING off", r);
}

/* Queues CLIENT TRACKING on REDIRECT <id> BCAST [PREFIX p]... on rac, after
 * CLIENT TRACKING off when it replaces an earlier list. */
static int tracking_register_send(struct tracking *t, bool replace)
{
    bool every_key = false;
    for (size_t i = 0; i < t->nsrc; i++)
        every_key = every_key || t->src_lens[i] == 0;
    size_t argc = 6 + (every_key ? 0 : 2 * t->nsrc);
    const char **argv = malloc(argc * sizeof(*argv));
    size_t *lens = malloc(argc * sizeof(*lens));
    if (argv == NULL || lens == NULL) {
        free(argv);
        free(lens);
        return REDIS_ERR;
    }
    char id[32];
    snprintf(id, sizeof(id), "%lld", t->pending_id);
    const char *head[] = {"CLIENT", "TRACKING", "on", "REDIRECT", id, "BCAST"};
    for (size_t i = 0; i < 6; i++) {
        argv[i] = head[i];
        lens[i] = strlen(head[i]);
    }
    const char *p = t->src_bytes;
    for (size_t i = 0, a = 6; a < argc; i++, a += 2) {
        argv[a] = "PREFIX";
        lens[a] = 6;
        argv[a + 1] = p;
        lens[a + 1] = t->src_lens[i];
        p += t->src_lens[i];
    }
    int rc = REDIS_OK;
    if (replace)
        rc = redisAsyncCommand(t->rac, tracking_on_unregister, NULL, "CLIENT TRACKING off");
    if (rc == REDIS_OK)
        rc = redisAsyncCommandArgv(t->rac, tracking_on_register, NULL, (int)argc, argv, lens);
    if (rc == REDIS_OK)
        t->reg_waiting++;
    free(argv);
    free(lens);
    return rc;
}

/* Queues AUTH on a new context, as on the subscriber. */
static int tracking_auth(struct tracking *t, redisAsyncContext *ac)
{
    if (t->password != NULL && t->user != NULL)
        return redisAsyncCommand(ac, tracking_on_auth, t, "AUTH %s %s", t->user, t->password);
    if (t->password != NULL)
        return redisAsyncCommand(ac, tracking_on_auth, t, "AUTH %s", t->password);
    return REDIS_OK;
}

/* Creates a context attached to the loop with our callbacks, or NULL. */
/* The read watcher of our contexts: handles everything waiting in the
 * socket (hiredis reads 16 KB a call), up to TRACKING_READ_MAX calls, so
 * that after a stall of the loop every waiting invalidation is applied
 * before any client's read that waited beside it. */
/* Reads and handles everything ac's socket holds. */
static void tracking_drain(redisAsyncContext *ac)
{
    struct tracking *t = tracking_of(ac);
    int fd = ac->c.fd, unread = 0;
    for (int i = 0; i < TRACKING_READ_MAX; i++) {
        redisAsyncHandleRead(ac); /* may free ac: then neither t->ac nor t->rac is it */
        if (t == NULL || (t->ac != ac && t->rac != ac) || ioctl(fd, FIONREAD, &unread) < 0 ||
            unread == 0)
            return;
    }
}

static void tracking_on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    tracking_drain(((redisLibevEvents *)w->data)->context);
}

void tracking_poll(struct tracking *t)
{
    if (t->ac != NULL)
        tracking_drain(t->ac);
    if (t->rac != NULL)
        tracking_drain(t->rac);
}

/* Hooks ac's watchers (just attached, not started): the highest priority, so
 * that when an invalidation and a client's read of its key are both
 * waiting, as after a stall of the loop, the invalidation is handled first
 * and the read is not answered from the tier; and a read callback that
 * drains the socket. */
static int tracking_hook(redisAsyncContext *ac)
{
    redisLibevEvents *e = ac->ev.data;
    if (e == NULL || ev_is_active(&e->rev) || ev_is_active(&e->wev))
        return -1;
    ev_set_priority(&e->rev, EV_MAXPRI);
    ev_set_priority(&e->wev, EV_MAXPRI);
    ev_set_cb(&e->rev, tracking_on_readable);
    return 0;
}

static redisAsyncContext *tracking_connect(struct tracking *t, char *why, size_t whylen)
{
    redisAsyncContext *ac = ctl_async_connect(t->addr);
    if (ac == NULL || ac->err != 0) {
        snprintf(why, whylen, "%s",
                 ac != NULL          ? ac->errstr
                 : t->addr->len == 0 ? "no address known yet"
                                     : "out of memory");
        if (ac != NULL)
            redisAsyncFree(ac);
        return NULL;
    }
    ac->data = t;
    if (redisLibevAttach(t->loop, ac) != REDIS_OK || tracking_hook(ac) < 0 ||
        redisAsyncSetConnectCallback(ac, tracking_on_connect) != REDIS_OK ||
        redisAsyncSetDisconnectCallback(ac, tracking_on_disconnect) != REDIS_OK) {
        snprintf(why, whylen, "cannot attach to the loop");
        ac->data = NULL;
        redisAsyncFree(ac);
        return NULL;
    }
    return ac;
}

/* Opens the registration connection and queues its handshake. */
static int tracking_register_start(struct tracking *t)
{
    char why[128];
    t->rac = tracking_connect(t, why, sizeof(why));
    if (t->rac == NULL) {
        log_limited(LOG_WARN, "tracking_register_failed",
                    "tracking: registration connection: {reason=%s}", why);
        return -1;
    }
    t->reg_waiting = 0;
    if (tracking_auth(t, t->rac) != REDIS_OK || tracking_register_send(t, false) != REDIS_OK) {
        log_limited(LOG_WARN, "tracking_register_failed",
                    "tracking: cannot queue the registration of the source prefixes");
        tracking_drop(&t->rac);
        return -1;
    }
    return 0;
}

/* The sources changed while subscribed: registers the new list, or closes
 * the registration connection when there are none. Runs outside any hiredis
 * callback. */
static void tracking_on_apply(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct tracking *t = w->data;
    if (!t->subscribed || t->doomed)
        return;
    if (t->nsrc == 0) {
        tracking_drop(&t->rac);
        t->reg_waiting = 0;
        tracking_maybe_up(t);
        return;
    }
    if (t->rac == NULL ? tracking_register_start(t) < 0
                       : tracking_register_send(t, true) != REDIS_OK) {
        if (t->rac != NULL)
            log_limited(LOG_WARN, "tracking_register_failed",
                        "tracking: cannot queue the new source prefixes");
        tracking_fail(t);
        return;
    }
    if (t->client_id > 0) { /* the deadline of the re-registration */
        ev_timer_stop(t->loop, &t->timer);
        ev_timer_set(&t->timer, t->connect_timeout, 0.);
        ev_timer_start(t->loop, &t->timer);
    }
}

/* ---- attempts ------------------------------------------------------------------ */

/* Queues AUTH, CLIENT ID and SUBSCRIBE; hiredis writes them once connected. */
static int tracking_handshake(struct tracking *t, redisAsyncContext *ac)
{
    int rc = tracking_auth(t, ac);
    if (rc == REDIS_OK)
        rc = redisAsyncCommand(ac, tracking_on_client_id, t, "CLIENT ID");
    if (rc == REDIS_OK)
        rc = redisAsyncCommand(ac, tracking_on_message, t, "SUBSCRIBE " TRACKING_CHANNEL);
    return rc;
}

/* Starts one connection attempt, armed with the handshake deadline. */
static void tracking_attempt(struct tracking *t)
{
    char why[128];
    t->doomed = false;
    t->subscribed = false;
    t->pending_id = -1;
    t->ac = tracking_connect(t, why, sizeof(why));
    if (t->ac == NULL) {
        tracking_lost(t, why);
        return;
    }
    if (tracking_handshake(t, t->ac) != REDIS_OK) {
        tracking_lost(t, "cannot queue the handshake");
        return;
    }
    ev_timer_stop(t->loop, &t->timer);
    ev_timer_set(&t->timer, t->connect_timeout, 0.);
    ev_timer_start(t->loop, &t->timer);
}

/* With a context: its handshake (or, while up, the registration of new
 * sources) timed out or failed, drop both. Without one: time for the next
 * attempt. */
static void tracking_on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct tracking *t = w->data;
    if (t->ac == NULL) {
        tracking_attempt(t);
        return;
    }
    bool up = t->client_id > 0;
    const char *why = t->doomed ? (up ? "registration refused" : "handshake refused")
                                : (up ? "registration timeout" : "connect timeout");
    tracking_lost(t, why);
}

/* ---- public API ------------------------------------------------------------------- */

struct tracking *tracking_create(struct ev_loop *loop, const struct net_addr *addr,
                                 const char *user, const char *password, int connect_timeout_ms,
                                 int reconnect_max_ms, const struct tracking_callbacks *cb)
{
    struct tracking *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->loop = loop;
    if (cb != NULL)
        t->cb = *cb;
    t->connect_timeout = connect_timeout_ms > 0 ? connect_timeout_ms / 1000.0 : 1.0;
    t->reconnect_max_ms =
        reconnect_max_ms >= TRACKING_BACKOFF_MIN_MS ? reconnect_max_ms : TRACKING_BACKOFF_MIN_MS;
    t->pending_id = -1;
    t->client_id = -1;
    t->addr = addr;
    if ((user != NULL && (t->user = strdup(user)) == NULL) ||
        (password != NULL && (t->password = strdup(password)) == NULL)) {
        log_error("out_of_memory", "tracking: out of memory");
        goto fail;
    }
    ev_timer_init(&t->timer, tracking_on_timer, 0., 0.);
    t->timer.data = t;
    ev_timer_init(&t->apply, tracking_on_apply, 0., 0.);
    t->apply.data = t;
    ev_timer_start(loop, &t->timer);
    return t;
fail:
    free(t->user);
    free(t->password);
    free(t);
    return NULL;
}

void tracking_restart(struct tracking *t, const char *why)
{
    t->backoff_ms = 0;
    tracking_lost(t, why);
    tracking_schedule(t, true);
}

long long tracking_client_id(const struct tracking *t)
{
    return t->client_id;
}

/* True when the n prefixes are the current sources. */
static bool tracking_same_sources(const struct tracking *t, const size_t *lens, size_t n,
                                  const char *bytes, size_t total)
{
    if (n != t->nsrc)
        return false;
    size_t cur = 0;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] != t->src_lens[i])
            return false;
        cur += lens[i];
    }
    return cur == total && (total == 0 || memcmp(bytes, t->src_bytes, total) == 0);
}

int tracking_set_sources(struct tracking *t, const char *const *prefixes, const size_t *lens,
                         size_t n)
{
    size_t *new_lens = NULL;
    char *bytes = NULL;
    size_t total = 0;
    if (n > (INT_MAX - 6) / 2)
        return -1;
    if (n > 0 && (new_lens = malloc(n * sizeof(*new_lens))) == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        new_lens[i] = lens != NULL ? lens[i] : strlen(prefixes[i]);
        if (new_lens[i] > SIZE_MAX - 1 - total)
            goto fail;
        total += new_lens[i];
    }
    if (n > 0 && (bytes = malloc(total + 1)) == NULL)
        goto fail;
    for (size_t i = 0, off = 0; i < n; off += new_lens[i], i++)
        if (new_lens[i] > 0)
            memcpy(bytes + off, prefixes[i], new_lens[i]);
    if (tracking_same_sources(t, new_lens, n, bytes, total)) {
        free(new_lens);
        free(bytes);
        return 0;
    }
    free(t->src_lens);
    free(t->src_bytes);
    t->src_lens = new_lens;
    t->src_bytes = bytes;
    t->nsrc = n;
    if (t->subscribed) { /* applied outside any callback the caller may be in */
        ev_timer_stop(t->loop, &t->apply);
        ev_timer_set(&t->apply, 0., 0.);
        ev_timer_start(t->loop, &t->apply);
    }
    return 0;
fail:
    free(new_lens);
    free(bytes);
    return -1;
}

void tracking_destroy(struct tracking **tp)
{
    if (tp == NULL || *tp == NULL)
        return;
    struct tracking *t = *tp;
    ev_timer_stop(t->loop, &t->timer);
    ev_timer_stop(t->loop, &t->apply);
    tracking_drop(&t->ac);
    tracking_drop(&t->rac);
    free(t->src_lens);
    free(t->src_bytes);
    free(t->user);
    free(t->password);
    free(t);
    *tp = NULL;
}

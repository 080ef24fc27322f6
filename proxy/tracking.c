/* tracking.c - the invalidation subscriber for Redis client-side caching.
 *
 * One hiredis async context at a time, driven by the libev adapter. The
 * context is created by an attempt, and ends in one of three ways: hiredis
 * frees it after a connect failure or a disconnect (on_connect / on_disconnect
 * tell us, and we only forget it), or we free it ourselves from the timer
 * callback when the handshake deadline passes or the handshake failed. It is
 * never freed from inside one of its own callbacks. ac->data points back to
 * the tracking object while the context is ours; it is cleared before we free
 * it so that the callbacks hiredis runs while freeing are ignored.
 */
#include "proxy/tracking.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wshadow"
#include <hiredis/adapters/libev.h>
#pragma GCC diagnostic pop

#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "proxy/log.h"
#include "proxy/net.h"

#define TRACKING_CHANNEL        "__redis__:invalidate"
#define TRACKING_BACKOFF_MIN_MS 50

struct tracking {
    struct ev_loop *loop;
    struct tracking_callbacks cb;
    char host[NI_MAXHOST]; /* numeric address, or the unix socket path */
    int port;              /* 0 for a unix socket */
    char *user;
    char *password;
    ev_tstamp connect_timeout;
    int reconnect_max_ms;
    int backoff_ms;        /* delay of the last failed attempt's retry */
    redisAsyncContext *ac; /* NULL while waiting for the next attempt */
    ev_timer timer;        /* ac set: handshake deadline; ac NULL: next attempt */
    bool doomed;           /* handshake failed: drop ac at the timer */
    long long pending_id;  /* CLIENT ID of ac, before SUBSCRIBE is confirmed */
    long long client_id;   /* -1 unless subscribed */
};

static void tracking_attempt(struct tracking *t);

/* ---- address ------------------------------------------------------------ */

/* Resolves address once into a numeric host and port (or a unix path), so
 * that reconnecting never waits on DNS. */
static int tracking_resolve(struct tracking *t, const char *address)
{
    struct net_addr addr;
    const char *why = NULL;
    if (net_addr_parse(address, &addr, &why) < 0) {
        log_error("tracking: %s: %s", address, why);
        return -1;
    }
    if (addr.sa.ss_family == AF_UNIX) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)&addr.sa;
        snprintf(t->host, sizeof(t->host), "%s", un->sun_path);
        t->port = 0;
        return 0;
    }
    char serv[NI_MAXSERV];
    if (getnameinfo((const struct sockaddr *)&addr.sa, addr.len, t->host, sizeof(t->host), serv,
                    sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        log_error("tracking: %s: cannot convert the address", address);
        return -1;
    }
    t->port = atoi(serv);
    return 0;
}

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

/* The context is gone (or about to be freed by whoever called us): forget it,
 * schedule the next attempt and report the loss if a subscription existed. */
static void tracking_lost(struct tracking *t, const char *why)
{
    bool was_subscribed = t->client_id > 0;
    t->ac = NULL;
    t->doomed = false;
    t->pending_id = -1;
    t->client_id = -1;
    tracking_schedule(t, was_subscribed);
    if (was_subscribed) {
        log_warn("tracking: invalidation connection lost (%s); reconnecting", why);
        if (t->cb.state != NULL)
            t->cb.state(t->cb.arg, -1);
    } else {
        log_limited(LOG_WARN, "tracking: cannot subscribe to invalidations (%s); retry in %d ms",
                    why, t->backoff_ms);
    }
}

/* Frees our context from outside its callbacks, silencing them first. */
static void tracking_drop(struct tracking *t)
{
    redisAsyncContext *ac = t->ac;
    if (ac == NULL)
        return;
    t->ac = NULL;
    ac->data = NULL;
    redisAsyncFree(ac);
}

/* Returns the tracking object of a context that is still ours, else NULL. */
static struct tracking *tracking_of(const redisAsyncContext *ac)
{
    struct tracking *t = ac->data;
    return t != NULL && t->ac == ac ? t : NULL;
}

/* Marks the handshake as failed; the context is freed at the timer, outside
 * hiredis's callbacks. */
static void tracking_doom(struct tracking *t, const char *what, const redisReply *r)
{
    bool auth_refused = r != NULL && r->type == REDIS_REPLY_ERROR &&
                        (strncmp(r->str, "NOAUTH", 6) == 0 || strncmp(r->str, "WRONGPASS", 9) == 0);
    log_limited(LOG_WARN, "tracking: %s refused%s", what,
                auth_refused ? " (check upstream.username / upstream.password)" : "");
    t->doomed = true;
    ev_timer_stop(t->loop, &t->timer);
    ev_timer_set(&t->timer, 0., 0.);
    ev_timer_start(t->loop, &t->timer);
}

static void tracking_on_connect(const redisAsyncContext *ac, int status)
{
    struct tracking *t = tracking_of(ac);
    if (t == NULL || status == REDIS_OK)
        return;
    /* hiredis frees ac when this returns. */
    tracking_lost(t, ac->errstr != NULL ? ac->errstr : "connect failed");
}

static void tracking_on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    struct tracking *t = tracking_of(ac);
    if (t == NULL)
        return;
    /* hiredis frees ac when this returns. */
    tracking_lost(t, ac->errstr != NULL && ac->err != 0 ? ac->errstr : "closed");
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
        log_limited(LOG_WARN, "tracking: unexpected invalidation payload type %d", payload->type);
        break;
    }
}

/* The subscription confirmed: the connection now carries invalidations. */
static void tracking_subscribed(struct tracking *t)
{
    if (t->doomed || t->pending_id <= 0)
        return;
    ev_timer_stop(t->loop, &t->timer);
    t->client_id = t->pending_id;
    t->backoff_ms = 0;
    log_notice("tracking: subscribed to invalidations as client %lld", t->client_id);
    if (t->cb.state != NULL)
        t->cb.state(t->cb.arg, t->client_id);
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
        log_limited(LOG_WARN, "tracking: unexpected reply on the invalidation connection");
        return;
    }
    const char *kind = r->element[0]->str;
    if (strcasecmp(kind, "subscribe") == 0)
        tracking_subscribed(t);
    else if (strcasecmp(kind, "message") == 0 && t->client_id > 0)
        tracking_invalidate(t, r->element[2]);
}

/* ---- attempts ------------------------------------------------------------------ */

/* Queues AUTH, CLIENT ID and SUBSCRIBE; hiredis writes them once connected. */
static int tracking_handshake(struct tracking *t, redisAsyncContext *ac)
{
    int rc = REDIS_OK;
    if (t->password != NULL && t->user != NULL)
        rc = redisAsyncCommand(ac, tracking_on_auth, t, "AUTH %s %s", t->user, t->password);
    else if (t->password != NULL)
        rc = redisAsyncCommand(ac, tracking_on_auth, t, "AUTH %s", t->password);
    if (rc == REDIS_OK)
        rc = redisAsyncCommand(ac, tracking_on_client_id, t, "CLIENT ID");
    if (rc == REDIS_OK)
        rc = redisAsyncCommand(ac, tracking_on_message, t, "SUBSCRIBE " TRACKING_CHANNEL);
    return rc;
}

/* Starts one connection attempt, armed with the handshake deadline. */
static void tracking_attempt(struct tracking *t)
{
    redisAsyncContext *ac =
        t->port == 0 ? redisAsyncConnectUnix(t->host) : redisAsyncConnect(t->host, t->port);
    if (ac == NULL || ac->err != 0) {
        char why[128];
        snprintf(why, sizeof(why), "%s", ac != NULL ? ac->errstr : "out of memory");
        if (ac != NULL)
            redisAsyncFree(ac);
        tracking_lost(t, why);
        return;
    }
    t->ac = ac;
    ac->data = t;
    t->doomed = false;
    t->pending_id = -1;
    if (redisLibevAttach(t->loop, ac) != REDIS_OK ||
        redisAsyncSetConnectCallback(ac, tracking_on_connect) != REDIS_OK ||
        redisAsyncSetDisconnectCallback(ac, tracking_on_disconnect) != REDIS_OK ||
        tracking_handshake(t, ac) != REDIS_OK) {
        tracking_drop(t);
        tracking_lost(t, "cannot queue the handshake");
        return;
    }
    ev_timer_stop(t->loop, &t->timer);
    ev_timer_set(&t->timer, t->connect_timeout, 0.);
    ev_timer_start(t->loop, &t->timer);
}

/* With a context: its handshake timed out or failed, drop it. Without one:
 * time for the next attempt. */
static void tracking_on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct tracking *t = w->data;
    if (t->ac == NULL) {
        tracking_attempt(t);
        return;
    }
    const char *why = t->doomed ? "handshake refused" : "connect timeout";
    tracking_drop(t);
    tracking_lost(t, why);
}

/* ---- public API ------------------------------------------------------------------- */

struct tracking *tracking_create(struct ev_loop *loop, const char *address, const char *user,
                                 const char *password, int connect_timeout_ms, int reconnect_max_ms,
                                 const struct tracking_callbacks *cb)
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
    if (tracking_resolve(t, address) < 0)
        goto fail;
    if ((user != NULL && (t->user = strdup(user)) == NULL) ||
        (password != NULL && (t->password = strdup(password)) == NULL)) {
        log_error("tracking: out of memory");
        goto fail;
    }
    ev_timer_init(&t->timer, tracking_on_timer, 0., 0.);
    t->timer.data = t;
    ev_timer_start(loop, &t->timer);
    return t;
fail:
    free(t->user);
    free(t->password);
    free(t);
    return NULL;
}

long long tracking_client_id(const struct tracking *t)
{
    return t->client_id;
}

void tracking_destroy(struct tracking **tp)
{
    if (tp == NULL || *tp == NULL)
        return;
    struct tracking *t = *tp;
    ev_timer_stop(t->loop, &t->timer);
    tracking_drop(t);
    free(t->user);
    free(t->password);
    free(t);
    *tp = NULL;
}

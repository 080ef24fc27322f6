/* invalidation.c - subscriber, coherence state and CLIENT TRACKING on the pool. */
#include "proxy/invalidation.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "policy/policy.h"
#include "proxy/cache/cache.h"
#include "proxy/lib/log.h"
#include "proxy/proto/resp_write.h"
#include "proxy/tracking.h"
#include "proxy/worker.h"

#define TRACK_RETRY_MS 500 /* a failed CLIENT TRACKING is sent again after this */

/* The tracking state of one shared connection. */
struct track_conn {
    struct invalidation *inv;
    long long tracked_id; /* CLIENT TRACKING redirects to this id (0: not tracking) */
    bool sent;            /* CLIENT TRACKING on sent since connecting */
    unsigned inflight;    /* CLIENT TRACKING on awaiting their replies */
    uint64_t retry_at;    /* a failed attempt is sent again from then on (ms) */
};

struct invalidation {
    struct worker *w;
    const struct pool *pool;   /* whose shared connections it tracks */
    bool shared_tier;          /* one of a cluster's: the tier serves other nodes' keys too */
    struct tracking *tracking; /* the subscriber, NULL without tracking */
    struct coherence coherence;
    struct upstream_owner owner; /* of the shared connections */
    struct track_conn *conns;    /* by the shared connection's slot */
};

/* How many bytes of a reply to show in the log: its line without the CRLF,
 * at most 200. */
static int shown(size_t len)
{
    return (int)(len > 2 && len < 200 ? len - 2 : len < 200 ? len : 200);
}

static struct track_conn *conn_of(const struct invalidation *inv, const struct upstream *up)
{
    return up->slot >= 0 ? &inv->conns[up->slot] : NULL;
}

static void track_reply(struct exchange *x, const char *data, size_t len, uint64_t now_ms);

/* Sends CLIENT TRACKING on, redirected to the subscriber, on a ready shared
 * connection: after CLIENT TRACKING off when it may be tracking already,
 * since Redis refuses BCAST prefixes that a connection already has. */
static void track(struct invalidation *inv, struct upstream *up)
{
    struct track_conn *tc = conn_of(inv, up);
    const struct cache *cache = inv->w->cache;
    size_t nprefix = cache_prefix_count(cache);
    long long id = inv->coherence.id;
    if (tc == NULL || up->state != UPSTREAM_READY || up->closing)
        return;
    struct exchange *x = exchange_create(track_reply, tc);
    struct exchange *off = tc->sent ? exchange_create(exchange_discard, NULL) : NULL;
    const char **argv = calloc(6 + 2 * nprefix, sizeof(*argv));
    char sid[24], *cmd = NULL;
    size_t len = 0;
    snprintf(sid, sizeof(sid), "%lld", id);
    int argc = 0;
    if (argv != NULL) {
        argv[argc++] = "CLIENT";
        argv[argc++] = "TRACKING";
        argv[argc++] = "on";
        argv[argc++] = "REDIRECT";
        argv[argc++] = sid;
        if (nprefix > 0) /* BCAST: every key under the prefixes, read or not */
            argv[argc++] = "BCAST";
        for (size_t i = 0; i < nprefix; i++) {
            argv[argc++] = "PREFIX";
            argv[argc++] = cache_prefix(cache, i);
        }
    }
    if (argv != NULL) {
        len = resp_write_command(NULL, 0, argc, argv, NULL);
        if ((cmd = malloc(len)) != NULL)
            resp_write_command(cmd, len, argc, argv, NULL);
    }
    free(argv);
    if (x == NULL || cmd == NULL || (tc->sent && off == NULL)) {
        exchange_destroy(&x);
        exchange_destroy(&off);
        free(cmd);
        return;
    }
    if (off != NULL) {
        static const char OFF[] = "*3\r\n$6\r\nCLIENT\r\n$8\r\nTRACKING\r\n$3\r\noff\r\n";
        upstream_send(up, OFF, sizeof(OFF) - 1, off);
    }
    x->index = (size_t)id;
    tc->sent = true;
    tc->inflight++;
    upstream_send(up, cmd, len, x);
    free(cmd);
}

/* Sends CLIENT TRACKING on the first ready shared connection not already
 * waiting for a reply to one. */
static void probe(struct invalidation *inv)
{
    const struct pool *pool = inv->pool;
    for (int i = 0; i < pool_slots(pool); i++) {
        struct upstream *up = pool_shared(pool, i);
        if (up->state == UPSTREAM_READY && inv->conns[i].inflight == 0) {
            track(inv, up);
            return;
        }
    }
}

/* Carries out the actions of a coherence event; tc, data and len are the
 * connection and reply behind it (NULL for subscriber events). */
static void apply(struct invalidation *inv, unsigned actions, struct track_conn *tc,
                  long long sent_id, const char *data, size_t len, uint64_t now_ms)
{
    const struct coherence *co = &inv->coherence;
    struct cache *cache = inv->w->cache;
    const struct pool *pool = inv->pool;
    if ((actions & COHERENCE_FLUSH) || (inv->shared_tier && (actions & COHERENCE_TIER_OFF)))
        cache_flush(cache);
    /* A cluster's tier stays on: its nodes' reads are served or not by their
     * own tracking (invalidation_may_fill). */
    if ((actions & (COHERENCE_TIER_OFF | COHERENCE_TIER_ON)) && !inv->shared_tier)
        cache_set_active(cache, (actions & COHERENCE_TIER_ON) != 0);
    if ((actions & COHERENCE_MARK) && tc != NULL)
        tc->tracked_id = sent_id;
    if ((actions & COHERENCE_RETRY) && tc != NULL)
        tc->retry_at = now_ms + TRACK_RETRY_MS;
    if (actions & COHERENCE_TRACK_ALL) {
        for (int i = 0; i < pool_slots(pool); i++)
            if (&inv->conns[i] != tc)
                track(inv, pool_shared(pool, i));
    }
    if (actions & COHERENCE_PROBE)
        probe(inv);
    if (!(actions & COHERENCE_LOG))
        return;
    int n = data == NULL ? 0 : shown(len);
    if (co->state == COHERENCE_REFUSED)
        log_warn("tracking_state",
                 "tracking: CLIENT TRACKING {state=%s} ({reason=%.*s}): writes made elsewhere are "
                 "seen within cache.ttl only; asking again every {retry_ms=%d} ms",
                 "refused", n, data, COHERENCE_PROBE_MS);
    else if (co->state == COHERENCE_DOWN)
        log_warn("tracking_state",
                 "tracking: subscriber {state=%s}: local tier off until it is back", "lost");
    else
        log_notice("tracking_state",
                   "tracking: invalidations {state=%s} to client {client_id=%lld}", "redirected",
                   co->id);
}

/* The reply to CLIENT TRACKING on ... REDIRECT x->index. */
static void track_reply(struct exchange *x, const char *data, size_t len, uint64_t now_ms)
{
    struct track_conn *tc = x->arg;
    long long sent_id = (long long)x->index;
    exchange_destroy(&x);
    tc->inflight--;
    struct invalidation *inv = tc->inv;
    unsigned actions = coherence_reply(&inv->coherence, sent_id, data, len, now_ms);
    if (actions & COHERENCE_RETRY)
        log_limited(LOG_WARN, "tracking_redirect_failed",
                    "tracking: CLIENT TRACKING failed ({reason=%.*s}): trying again", shown(len),
                    data);
    apply(inv, actions, tc, sent_id, data, len, now_ms);
}

/* A shared connection is ready: it runs CLIENT TRACKING when the coherence
 * state wants it (which, when refused, is a probe). */
static void on_ready(void *arg, struct upstream *up)
{
    struct invalidation *inv = arg;
    if (coherence_wants_tracking(&inv->coherence))
        track(inv, up);
}

/* A push on a shared connection (RESP3 lanes): Redis says the subscriber
 * it redirected to is gone, so invalidations may have been missed. */
static void on_push(void *arg, const char *data, size_t len)
{
    static const char BROKEN[] = "tracking-redir-broken";
    struct invalidation *inv = arg;
    if (memmem(data, len, BROKEN, sizeof(BROKEN) - 1) != NULL) {
        log_limited(LOG_WARN, "tracking_redirect_broken",
                    "tracking: redirection broken: local tier flushed");
        cache_flush(inv->w->cache);
    }
}

static void on_lost(void *arg, struct upstream *up, bool was_ready)
{
    struct invalidation *inv = arg;
    struct track_conn *tc = conn_of(inv, up);
    if (was_ready) /* what it read is no longer tracked */
        cache_flush(inv->w->cache);
    if (tc != NULL) {
        tc->tracked_id = 0;
        tc->sent = false;
    }
}

void invalidation_tick(struct invalidation *inv, uint64_t now_ms)
{
    const struct coherence *co = &inv->coherence;
    const struct pool *pool = inv->pool;
    apply(inv, coherence_tick(&inv->coherence, now_ms), NULL, 0, NULL, 0, now_ms);
    if (co->state != COHERENCE_ON)
        return;
    for (int i = 0; i < pool_slots(pool); i++) {
        struct upstream *up = pool_shared(pool, i);
        struct track_conn *tc = &inv->conns[i];
        if (up->state == UPSTREAM_READY && tc->tracked_id != co->id && tc->inflight == 0 &&
            now_ms >= tc->retry_at)
            track(inv, up);
    }
}

static void on_invalidate(void *arg, const char *key, size_t len)
{
    struct invalidation *inv = arg;
    cache_invalidate(inv->w->cache, key, len, worker_now_ms(inv->w));
}

static void on_flush(void *arg)
{
    struct invalidation *inv = arg;
    cache_flush(inv->w->cache);
}

/* The subscriber came up with a new id (data connections redirect to it from
 * now on) or went down (invalidations may be missed). */
static void on_subscriber(void *arg, long long id)
{
    struct invalidation *inv = arg;
    uint64_t now_ms = worker_now_ms(inv->w);
    apply(inv, coherence_subscriber(&inv->coherence, id, now_ms), NULL, 0, NULL, 0, now_ms);
}

struct invalidation *invalidation_create(struct worker *w, const struct pool *pool,
                                         const struct net_addr *redis, bool shared_tier)
{
    const struct config *cfg = w->cfg;
    bool tracking = cfg->cache_enabled && cfg->cache_tracking;
    struct invalidation *inv = calloc(1, sizeof(*inv));
    size_t nconns = (size_t)cfg->pool_size * POOL_LANES_MAX;
    if (inv == NULL || (inv->conns = calloc(nconns, sizeof(*inv->conns))) == NULL) {
        free(inv);
        log_crit("out_of_memory", "out of memory");
        return NULL;
    }
    inv->w = w;
    inv->pool = pool;
    inv->shared_tier = shared_tier;
    inv->owner =
        (struct upstream_owner){.ready = on_ready, .lost = on_lost, .push = on_push, .arg = inv};
    for (size_t i = 0; i < nconns; i++)
        inv->conns[i].inv = inv;
    coherence_init(&inv->coherence, tracking);
    if (!tracking || shared_tier)
        cache_set_active(w->cache, true);
    if (!tracking)
        return inv;
    const struct tracking_callbacks cb = {on_invalidate, on_flush, on_subscriber, inv};
    inv->tracking = tracking_create(w->loop, redis, cfg->upstream_username, cfg->upstream_password,
                                    cfg->connect_timeout_ms, cfg->reconnect_max_ms, &cb);
    if (inv->tracking == NULL) {
        invalidation_destroy(&inv);
        return NULL;
    }
    return inv;
}

void invalidation_poll(struct invalidation *inv)
{
    if (inv != NULL && inv->tracking != NULL)
        tracking_poll(inv->tracking);
}

void invalidation_restart(struct invalidation *inv, const char *why)
{
    cache_flush(inv->w->cache); /* also without tracking: the new primary's data may differ */
    if (inv->tracking != NULL)
        tracking_restart(inv->tracking, why);
}

void invalidation_destroy(struct invalidation **inv)
{
    if (inv == NULL || *inv == NULL)
        return;
    tracking_destroy(&(*inv)->tracking);
    free((*inv)->conns);
    free(*inv);
    *inv = NULL;
}

const struct upstream_owner *invalidation_owner(struct invalidation *inv)
{
    return &inv->owner;
}

int invalidation_set_sources(struct invalidation *inv, const struct policy *p)
{
    size_t n = policy_source_count(p);
    if (inv->tracking == NULL)
        return 0;
    const char **prefixes = calloc(n + 1, sizeof(*prefixes));
    size_t *lens = calloc(n + 1, sizeof(*lens));
    int rc = prefixes != NULL && lens != NULL ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < n; i++)
        prefixes[i] = policy_source(p, i, &lens[i]);
    if (rc == 0)
        rc = tracking_set_sources(inv->tracking, prefixes, lens, n);
    free(prefixes);
    free(lens);
    return rc;
}

bool invalidation_may_fill(const struct invalidation *inv, const struct upstream *up)
{
    const struct track_conn *tc = conn_of(inv, up);
    return tc != NULL && coherence_may_fill(&inv->coherence, tc->tracked_id);
}

const struct coherence *invalidation_state(const struct invalidation *inv)
{
    return &inv->coherence;
}

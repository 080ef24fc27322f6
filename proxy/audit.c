/* audit.c - re-reading sampled tier hits and judging them. */
#include "proxy/audit.h"

#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "policy/policy.h"
#include "proxy/cache/cache.h"
#include "proxy/exchange.h"
#include "proxy/lib/log.h"
#include "proxy/proto/request.h"
#include "proxy/upstream.h"
#include "proxy/worker.h"

/* One hit being checked: its key, what was served and when. */
struct audit_check {
    struct audit_check *next; /* the worker's waiting list */
    struct worker *w;
    int db;
    uint64_t seq;    /* the key's tier sequence at the hit (cache_key_seq) */
    uint64_t due_ms; /* waiting: when the grace is over */
    size_t klen, slen;
    char *served; /* what the tier answered */
    char key[];
};

void audit_setup(struct worker *w)
{
    struct audit *a = &w->audit;
    a->rate = (uint32_t)w->cfg->cache_audit_rate;
    a->rng = 0x2545f4914f6cdd1dull ^ (uint64_t)(w->id + 1);
    a->skip = observe_gap(&a->rng, a->rate);
}

static void check_free(struct audit_check *k)
{
    k->w->audit.inflight--;
    free(k->served);
    free(k);
}

void audit_teardown(struct worker *w)
{
    while (w->audit.waiting != NULL) {
        struct audit_check *k = w->audit.waiting;
        w->audit.waiting = k->next;
        check_free(k);
    }
}

void audit_reload(struct worker *w)
{
    struct audit *a = &w->audit;
    if (a->rate != (uint32_t)w->cfg->cache_audit_rate) {
        a->rate = (uint32_t)w->cfg->cache_audit_rate;
        a->skip = observe_gap(&a->rng, a->rate);
    }
}

/* Counts k as raced (an invalidation of its key came since the hit) or
 * stale, and frees it. */
static void check_judge(struct audit_check *k)
{
    struct worker *w = k->w;
    if (cache_key_changed(w->cache, k->db, k->key, k->klen, k->seq)) {
        w->audit.raced++;
    } else {
        w->audit.stale++;
        log_limited(LOG_WARN, "audit_stale",
                    "audit: a tier hit differed from Redis with no write of its key seen "
                    "({stale=%llu} of {checks=%llu} checks)",
                    (unsigned long long)w->audit.stale, (unsigned long long)w->audit.checks);
        log_debug("audit_stale_key", "audit: stale hit of {key=%.*s} under cache rule {rule=%s}",
                  (int)k->klen, k->key, policy_cache_rule(w->policy, k->key, k->klen)->name);
    }
    check_free(k);
}

/* exchange_done_fn of a re-read: Redis's reply now. */
static void check_answered(struct exchange *x, const char *data, size_t len, uint64_t now_ms)
{
    static const char LOCAL_ERR[] = "-ERR upstream ";
    struct audit_check *k = x->arg;
    struct audit *a = &k->w->audit;
    exchange_destroy(&x);
    if (len >= sizeof(LOCAL_ERR) - 1 && memcmp(data, LOCAL_ERR, sizeof(LOCAL_ERR) - 1) == 0) {
        check_free(k); /* the connection's failure, not Redis's answer */
        return;
    }
    a->checks++;
    if (len == k->slen && memcmp(data, k->served, len) == 0) {
        check_free(k);
        return;
    }
    k->due_ms = now_ms + AUDIT_GRACE_MS;
    k->next = a->waiting;
    a->waiting = k;
}

void audit_hit(struct worker *w, struct upstream *up, struct request *rq, const char *reply,
               size_t len)
{
    struct audit *a = &w->audit;
    a->skip = observe_gap(&a->rng, a->rate);
    if (a->rate == 0 || a->inflight >= AUDIT_INFLIGHT_MAX || request_keys(rq) != 1)
        return; /* rate 0: off, the gap only ran out */
    struct resp_view key = rq->keys->views[0];
    struct audit_check *k = malloc(sizeof(*k) + key.len);
    struct exchange *x = k != NULL ? exchange_create(check_answered, k) : NULL;
    if (x == NULL || (k->served = malloc(len > 0 ? len : 1)) == NULL) {
        exchange_destroy(&x);
        free(k);
        return;
    }
    *k = (struct audit_check){NULL, w, up->lane.db, 0, 0, key.len, len, k->served};
    memcpy(k->key, rq->buf + key.off, key.len);
    memcpy(k->served, reply, len);
    k->seq = cache_key_seq(w->cache, k->key, k->klen);
    a->inflight++;
    upstream_send(up, rq->buf, rq->frame->len, x);
}

void audit_tick(struct worker *w, uint64_t now_ms)
{
    for (struct audit_check **p = &w->audit.waiting; *p != NULL;) {
        struct audit_check *k = *p;
        if (k->due_ms > now_ms) {
            p = &k->next;
            continue;
        }
        *p = k->next;
        check_judge(k);
    }
}

/* admin.c - NEARCACHE STATS, POLICY, RELOAD, HOTKEYS and INVALIDATE. */
#include "proxy/admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "policy/policy.h"
#include "proxy/cache/cache.h"
#include "proxy/endpoint.h"
#include "proxy/invalidation.h"
#include "proxy/lib/log.h"
#include "proxy/observe.h"
#include "proxy/proto/args.h"
#include "proxy/proto/resp_write.h"
#include "proxy/reload.h"
#include "proxy/worker.h"

#define ADMIN_STATS_MAX 2048

static const char USAGE[] =
    "-ERR unknown subcommand or wrong number of arguments for "
    "'nearcache'. Try NEARCACHE STATS, POLICY, RELOAD, HOTKEYS [count], "
    "INVALIDATE pattern, INSPECT key or EXPLAIN key [command [args...]].\r\n";

admin_command_e admin_parse(const char *buf, const struct resp_request *req)
{
    static const struct {
        const char *name;
        admin_command_e cmd;
        int64_t min_argc, max_argc; /* the command's name and the subcommand's included */
    } SUBS[] = {
        {"stats", ADMIN_STATS, 2, 2},
        {"policy", ADMIN_POLICY, 2, 2},
        {"reload", ADMIN_RELOAD, 2, 2},
        {"hotkeys", ADMIN_HOTKEYS, 2, 3},
        {"invalidate", ADMIN_INVALIDATE, 3, 3},
        {"inspect", ADMIN_INSPECT, 3, 3},
        {"explain", ADMIN_EXPLAIN, 3, INT64_MAX},
    };
    struct resp_view sub = req->argc >= 2 ? req->argv[1] : (struct resp_view){0, 0};
    for (size_t i = 0; i < sizeof(SUBS) / sizeof(*SUBS); i++) {
        if (sub.len == strlen(SUBS[i].name) &&
            strncasecmp(buf + sub.off, SUBS[i].name, sub.len) == 0)
            return req->argc >= SUBS[i].min_argc && req->argc <= SUBS[i].max_argc ? SUBS[i].cmd
                                                                                  : ADMIN_USAGE;
    }
    return ADMIN_USAGE;
}

/* Requests received by one worker, of every command. */
static uint64_t requests_of(const struct worker *w)
{
    uint64_t n = 0;
    for (size_t i = 0; i < w->metrics.ncalls; i++)
        n += w->metrics.calls[i];
    return n;
}

void admin_sum(struct worker *w, struct admin_sums *out)
{
    memset(out, 0, sizeof(*out));
    out->pool_ready = true;
    out->tracking = *invalidation_state(w->all[0]->inv);
    cache_figures(w->all[0]->cache, &out->cache);
    for (int i = 0; i < w->nall; i++) {
        const struct worker *x = w->all[i];
        if (worker_gone(w, i))
            continue;
        const struct coherence *co = invalidation_state(x->inv);
        out->clients += x->stats.clients;
        out->total_connections += x->stats.total_connections;
        out->total_requests += requests_of(x);
        out->audit_checks += x->audit.checks;
        out->audit_stale += x->audit.stale;
        out->audit_raced += x->audit.raced;
        out->hot_sampled += x->observe.sampled;
        for (int k = 0; k < UPSTREAM_FAILED_KINDS; k++)
            out->upstream.failed[k] += x->pool.counters.failed[k];
        out->upstream.reconnects += x->pool.counters.reconnects;
        out->pool_ready = out->pool_ready && pool_ready(&x->pool);
        if (x->route != NULL) {
            route_counters_add(x->route, &out->upstream, &out->cluster);
            route_tracking_add(x->route, &out->tracking);
            out->pool_ready = out->pool_ready && route_ready(x->route);
        }
        if (out->tracking.state == COHERENCE_ON && co->state != COHERENCE_ON)
            out->tracking.state = co->state;
        if (i > 0) {
            out->tracking.losses += co->losses;
            out->tracking.refusals += co->refusals;
            out->tracking.failures += co->failures;
            cache_figures_add(x->cache, &out->cache);
        }
    }
}

bool admin_sums_ready(const struct admin_sums *s, const char **why)
{
    coherence_state_e tracking = s->tracking.state;
    *why = !s->pool_ready                  ? "upstream connections are not up"
           : tracking == COHERENCE_DOWN    ? "tracking is down: the tier is off"
           : tracking == COHERENCE_REFUSED ? "Redis refuses CLIENT TRACKING: the tier is off"
                                           : NULL;
    return *why == NULL;
}

bool admin_ready(struct worker *w, const char **why)
{
    struct admin_sums sums;
    worker_stop_others(w);
    admin_sum(w, &sums);
    worker_resume(w);
    return admin_sums_ready(&sums, why);
}

/* STATS: the workers', the tracking's and the tier's counters. */
static size_t admin_stats(struct worker *w, char *body, size_t cap)
{
    struct admin_sums s;
    uint64_t reloads, failed;
    worker_stop_others(w);
    admin_sum(w, &s);
    reload_counts(w->all[0]->reload, &reloads, &failed);
    const struct endpoint *ep = w->all[0]->pool.env.ep;
    int n = snprintf(body, cap,
                     "clients:%d\r\ntotal_connections:%llu\r\n"
                     "total_requests:%llu\r\ntracking:%s\r\ntracking_losses:%llu\r\n"
                     "tracking_refusals:%llu\r\ntracking_failures:%llu\r\n"
                     "reloads:%llu\r\nreloads_failed:%llu\r\n"
                     "upstream_address:%s\r\nupstream_moves:%llu\r\nworkers:%d\r\n",
                     s.clients, (unsigned long long)s.total_connections,
                     (unsigned long long)s.total_requests, coherence_state_name(s.tracking.state),
                     (unsigned long long)s.tracking.losses, (unsigned long long)s.tracking.refusals,
                     (unsigned long long)s.tracking.failures, (unsigned long long)reloads,
                     (unsigned long long)failed, ep->shown, (unsigned long long)ep->moves, w->nall);
    worker_resume(w);
    if (w->route != NULL)
        n += snprintf(body + n, cap - (size_t)n,
                      "cluster_moved:%llu\r\ncluster_ask:%llu\r\ncluster_tryagain:%llu\r\n"
                      "cluster_refreshes:%llu\r\n",
                      (unsigned long long)s.cluster.moved, (unsigned long long)s.cluster.ask,
                      (unsigned long long)s.cluster.tryagain,
                      (unsigned long long)s.cluster.refreshes);
    n += snprintf(body + n, cap - (size_t)n,
                  "audit_checks:%llu\r\naudit_stale:%llu\r\naudit_raced:%llu\r\n"
                  "hotkeys_sampled:%llu\r\n",
                  (unsigned long long)s.audit_checks, (unsigned long long)s.audit_stale,
                  (unsigned long long)s.audit_raced, (unsigned long long)s.hot_sampled);
    return (size_t)n + cache_stats(&s.cache, body + n, cap - (size_t)n);
}

/* A copy of the line reply text[0..len) (a status or an error). */
static char *admin_line(const char *text, size_t len, size_t *out_len)
{
    char *reply = malloc(len);
    if (reply != NULL)
        memcpy(reply, text, len);
    *out_len = len;
    return reply;
}

/* HOTKEYS [count]: count defaults to 10. */
static char *admin_hotkeys(struct worker *w, const char *buf, const struct resp_request *req,
                           size_t *len)
{
    static const char NOT_INT[] = "-ERR value is not an integer or out of range\r\n";
    static const char OFF[] = "-ERR hot keys are not sampled: set hotkeys.sample\r\n";
    int64_t n = 10;
    if (req->argc == 3 && (!resp_parse_ll(buf + req->argv[2].off, req->argv[2].len, &n) || n < 0))
        return admin_line(NOT_INT, sizeof(NOT_INT) - 1, len);
    if (w->cfg->hotkeys_sample == 0)
        return admin_line(OFF, sizeof(OFF) - 1, len);
    return observe_hotkeys_reply(w, (size_t)n, len);
}

/* INVALIDATE pattern: +OK, or why the pattern is not one. */
static char *admin_invalidate(struct worker *w, const char *buf, const struct resp_request *req,
                              size_t *len)
{
    char why[128], line[192];
    struct resp_view p = req->argv[2];
    worker_stop_others(w); /* the pattern list is the workers' */
    int rc = cache_invalidate_pattern(w->cache, buf + p.off, p.len, why, sizeof(why));
    worker_resume(w);
    if (rc == 0) {
        log_notice("admin_invalidate", "admin: tier entries matching a pattern dropped");
        return admin_line("+OK\r\n", 5, len);
    }
    int n = snprintf(line, sizeof(line), "-ERR invalid pattern: %s\r\n", why);
    return admin_line(line, (size_t)n, len);
}

/* STATS or POLICY: "name:value" lines in a bulk string. */
static char *admin_lines(struct worker *w, admin_command_e cmd, size_t *len)
{
    size_t cap = cmd == ADMIN_STATS
                     ? ADMIN_STATS_MAX
                     : 256 + policy_rule_count(w->policy) * (2 * POLICY_NAME_MAX + 128);
    char *body = malloc(cap);
    if (body == NULL)
        return NULL;
    size_t n = 0;
    if (cmd == ADMIN_STATS) {
        n = admin_stats(w, body, cap);
    } else {
        worker_stop_others(w); /* the policy's counters are the workers' */
        n = policy_stats(w->policy, body, cap);
        worker_resume(w);
    }
    char *reply = malloc(RESP_HEADER_MAX + n + 2);
    if (reply != NULL)
        *len = resp_write_bulk(reply, RESP_HEADER_MAX + n + 2, body, n);
    free(body);
    return reply;
}

char *admin_reply(struct worker *w, admin_command_e cmd, const char *buf,
                  const struct resp_request *req, size_t *len)
{
    switch (cmd) {
    case ADMIN_STATS:
    case ADMIN_POLICY:
        return admin_lines(w, cmd, len);
    case ADMIN_HOTKEYS:
        return admin_hotkeys(w, buf, req, len);
    case ADMIN_INVALIDATE:
        return admin_invalidate(w, buf, req, len);
    default:
        return admin_line(USAGE, sizeof(USAGE) - 1, len);
    }
}

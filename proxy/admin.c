/* admin.c - NEARCACHE STATS, POLICY and RELOAD. */
#include "proxy/admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/policy.h"
#include "proxy/cache/cache.h"
#include "proxy/endpoint.h"
#include "proxy/invalidation.h"
#include "proxy/proto/resp_write.h"
#include "proxy/reload.h"
#include "proxy/worker.h"

#define ADMIN_STATS_MAX 2048

static const char USAGE[] = "-ERR unknown subcommand or wrong number of arguments for "
                            "'nearcache'. Try NEARCACHE STATS, POLICY or RELOAD.\r\n";

admin_command_e admin_parse(const char *buf, const struct resp_request *req)
{
    static const struct {
        const char *name;
        admin_command_e cmd;
    } SUBS[] = {{"stats", ADMIN_STATS}, {"policy", ADMIN_POLICY}, {"reload", ADMIN_RELOAD}};
    struct resp_view sub = req->argc == 2 ? req->argv[1] : (struct resp_view){0, 0};
    for (size_t i = 0; i < sizeof(SUBS) / sizeof(*SUBS); i++) {
        if (sub.len == strlen(SUBS[i].name) &&
            strncasecmp(buf + sub.off, SUBS[i].name, sub.len) == 0)
            return SUBS[i].cmd;
    }
    return ADMIN_USAGE;
}

uint64_t admin_total_requests(const struct worker *w)
{
    uint64_t n = 0;
    for (size_t i = 0; i < w->metrics.ncalls; i++)
        n += w->metrics.calls[i];
    return n;
}

/* STATS: the worker's, the tracking's and the tier's counters. */
static size_t admin_stats(const struct worker *w, char *body, size_t cap)
{
    const struct coherence *co = invalidation_state(w->inv);
    uint64_t reloads, failed;
    reload_counts(w->reload, &reloads, &failed);
    int n = snprintf(body, cap,
                     "clients:%d\r\ntotal_connections:%llu\r\n"
                     "total_requests:%llu\r\ntracking:%s\r\ntracking_losses:%llu\r\n"
                     "tracking_refusals:%llu\r\ntracking_failures:%llu\r\n"
                     "reloads:%llu\r\nreloads_failed:%llu\r\n"
                     "upstream_address:%s\r\nupstream_moves:%llu\r\n",
                     w->stats.clients, (unsigned long long)w->stats.total_connections,
                     (unsigned long long)admin_total_requests(w), coherence_state_name(co->state),
                     (unsigned long long)co->losses, (unsigned long long)co->refusals,
                     (unsigned long long)co->failures, (unsigned long long)reloads,
                     (unsigned long long)failed, w->pool.env.ep->shown,
                     (unsigned long long)w->pool.env.ep->moves);
    return (size_t)n + cache_stats(w->cache, body + n, cap - (size_t)n);
}

char *admin_reply(const struct worker *w, admin_command_e cmd, size_t *len)
{
    if (cmd != ADMIN_STATS && cmd != ADMIN_POLICY) {
        char *usage = malloc(sizeof(USAGE) - 1);
        if (usage != NULL)
            memcpy(usage, USAGE, sizeof(USAGE) - 1);
        *len = sizeof(USAGE) - 1;
        return usage;
    }
    size_t cap = cmd == ADMIN_STATS
                     ? ADMIN_STATS_MAX
                     : 256 + policy_rule_count(w->policy) * (2 * POLICY_NAME_MAX + 128);
    char *body = malloc(cap);
    if (body == NULL)
        return NULL;
    size_t n = cmd == ADMIN_STATS ? admin_stats(w, body, cap) : policy_stats(w->policy, body, cap);
    char *reply = malloc(RESP_HEADER_MAX + n + 2);
    if (reply != NULL)
        *len = resp_write_bulk(reply, RESP_HEADER_MAX + n + 2, body, n);
    free(body);
    return reply;
}

bool admin_ready(const struct worker *w, const char **why)
{
    coherence_state_e tracking = invalidation_state(w->inv)->state;
    *why = !pool_ready(&w->pool)           ? "upstream connections are not up"
           : tracking == COHERENCE_DOWN    ? "tracking is down: the tier is off"
           : tracking == COHERENCE_REFUSED ? "Redis refuses CLIENT TRACKING: the tier is off"
                                           : NULL;
    return *why == NULL;
}

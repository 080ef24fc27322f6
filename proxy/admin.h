/* admin.h - the proxy's own command: NEARCACHE STATS | POLICY | RELOAD |
 * HOTKEYS [count] | INVALIDATE pattern | INSPECT key | EXPLAIN key [command
 * [args...]].
 *
 * STATS and POLICY are answered at once from the worker's counters (a bulk
 * string of "name:value" lines); RELOAD is answered when the reload it
 * starts has been applied or has failed (reload.h); INSPECT and EXPLAIN are
 * answered at once too (admin_inspect.h).
 */
#ifndef NEARCACHE_ADMIN_H
#define NEARCACHE_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/cache/cache.h"
#include "proxy/cluster/route.h"
#include "proxy/cache/coherence.h"
#include "proxy/proto/resp.h"
#include "proxy/upstream.h"

struct worker;

typedef enum {
    ADMIN_USAGE = 0,  /* anything else: answered with a usage error */
    ADMIN_STATS,      /* the proxy's, the tracking's and the tier's counters */
    ADMIN_POLICY,     /* a line of counters per policy rule */
    ADMIN_RELOAD,     /* reload the settings and the policy, as SIGHUP does */
    ADMIN_HOTKEYS,    /* the hottest keys seen (observe.h) */
    ADMIN_INVALIDATE, /* drop the tier's entries of keys matching a pattern */
    ADMIN_INSPECT,    /* one key's entries in the tier (admin_inspect.h) */
    ADMIN_EXPLAIN,    /* the rules that apply to one key (admin_inspect.h) */
} admin_command_e;

/* Which NEARCACHE subcommand the complete multibulk request in buf is. */
admin_command_e admin_parse(const char *buf, const struct resp_request *req);

/* The reply to a command other than ADMIN_RELOAD, ADMIN_INSPECT and
 * ADMIN_EXPLAIN (the complete multibulk
 * request in buf), in a malloc'd buffer of *len bytes that the caller
 * frees; every worker's counters (the others are stopped meanwhile). NULL
 * when out of memory. */
char *admin_reply(struct worker *w, admin_command_e cmd, const char *buf,
                  const struct resp_request *req, size_t *len);

/* The counters of every worker, summed. */
struct admin_sums {
    int clients;
    uint64_t total_connections;
    uint64_t total_requests;
    struct upstream_counters upstream;
    bool pool_ready; /* every worker's shared connections of lane 0 are up (of every primary,
                        in a cluster, whose map is known) */
    struct coherence tracking; /* worker 0's state unless another's is worse; counters summed */
    struct cache_figures cache;
    struct route_counters cluster;                   /* upstream.cluster: redirects and maps read */
    uint64_t audit_checks, audit_stale, audit_raced; /* cache.audit_rate (audit.h) */
    uint64_t hot_sampled;                            /* requests sampled (observe.h) */
};

/* Sums every worker's counters into out; call with the others stopped
 * (worker_stop_others). */
void admin_sum(struct worker *w, struct admin_sums *out);

/* Whether the proxy is ready to serve by these sums: every shared connection
 * of lane 0 is up and, when tracking is on, it has Redis's invalidations. If
 * not, *why says what is missing. */
bool admin_sums_ready(const struct admin_sums *s, const char **why);

/* The same, stopping the others to sum. */
bool admin_ready(struct worker *w, const char **why);

#endif

/* admin.h - the proxy's own command: NEARCACHE STATS | POLICY | RELOAD.
 *
 * STATS and POLICY are answered at once from the worker's counters (a bulk
 * string of "name:value" lines); RELOAD is answered when the reload it
 * starts has been applied or has failed (reload.h).
 */
#ifndef NEARCACHE_ADMIN_H
#define NEARCACHE_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/proto/resp.h"

struct worker;

typedef enum {
    ADMIN_USAGE = 0, /* anything else: answered with a usage error */
    ADMIN_STATS,     /* the proxy's, the tracking's and the tier's counters */
    ADMIN_POLICY,    /* a line of counters per policy rule */
    ADMIN_RELOAD,    /* reload the settings and the policy, as SIGHUP does */
} admin_command_e;

/* Which NEARCACHE subcommand the complete multibulk request in buf is. */
admin_command_e admin_parse(const char *buf, const struct resp_request *req);

/* The reply to a command other than ADMIN_RELOAD, in a malloc'd buffer of
 * *len bytes that the caller frees. NULL when out of memory. */
char *admin_reply(const struct worker *w, admin_command_e cmd, size_t *len);

/* Requests received, of every command. */
uint64_t admin_total_requests(const struct worker *w);

/* Whether the proxy is ready to serve: every shared connection of lane 0 is
 * up and, when tracking is on, it has Redis's invalidations. If not, *why
 * says what is missing. */
bool admin_ready(const struct worker *w, const char **why);

#endif

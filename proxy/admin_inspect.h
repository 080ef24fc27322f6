/* admin_inspect.h - NEARCACHE INSPECT <key> and NEARCACHE EXPLAIN <key>
 * [command [args...]]: what the local tier holds of one key, and which
 * policy rules apply to it and why.
 *
 * Both answer at once, on the client's own worker, with a bulk string of
 * "name:value" lines (CRLF-terminated, a name may repeat), like STATS. The
 * key and the arguments are the client's own bytes: they appear in the
 * reply, escaped (proxy/lib/text.h), and are never logged.
 */
#ifndef NEARCACHE_ADMIN_INSPECT_H
#define NEARCACHE_ADMIN_INSPECT_H

#include <stddef.h>

#include "proxy/admin.h"
#include "proxy/proto/request.h"
#include "proxy/proto/resp.h"

struct worker;

/* The reply to ADMIN_INSPECT or ADMIN_EXPLAIN, the complete multibulk
 * request in buf (req, its key as argument 2), for a client in lane (its
 * database and protocol): in a malloc'd buffer of *len bytes that the caller
 * frees. NULL when out of memory.
 *
 * INSPECT: db:<n>, then the lines of cache_inspect (proxy/cache/inspect.h)
 * for the key in lane's database, then tracking:on|down|refused|off, the
 * state of the worker's invalidation tracking.
 *
 * EXPLAIN: request:<command> [<sub>] <key> [<args>...], the request
 * explained (the command, GET when none is given; a container's subcommand
 * first; then the key, then the arguments after the command, then empty
 * ones ("") up to the command's arity), then the lines of policy_explain
 * (policy/policy.h) for the key in it. */
char *admin_inspect(struct worker *w, admin_command_e cmd, const struct lane *lane, const char *buf,
                    const struct resp_request *req, size_t *len);

#endif

/* catalog.h - the tools nearcache's MCP server offers (mcp.h rows).
 *
 * Each tool asks the proxy through a hiredis connection (blocking: never on
 * the event loop) and answers an object:
 *
 *   cache_stats      NEARCACHE STATS as an object, numbers as numbers
 *   hot_keys         NEARCACHE HOTKEYS n: the hottest keys and their counts
 *   inspect_key      NEARCACHE INSPECT key, and Redis's type, TTL and value
 *                    read in MULTI/EXEC (never answered from the tier)
 *   explain_policy   NEARCACHE EXPLAIN key [command]
 *   pattern_analysis `nearcache analyze` of the proxy's Redis, bounded
 *   invalidate       NEARCACHE INVALIDATE pattern (changes state)
 *   reload           NEARCACHE RELOAD (changes state)
 *   performance_tuning `nearcache tune` through the proxy, bounded in time
 *                    (writes and deletes keys under its own prefix)
 *   bulk_operations  `nearcache bulk` of a bounded batch (writes to Redis)
 *
 * The `name:value` line replies are parsed generically: a repeated name
 * becomes an array. Adding a tool is one row and one function.
 */
#ifndef NEARCACHE_MCP_CATALOG_H
#define NEARCACHE_MCP_CATALOG_H

#include <hiredis/hiredis.h>
#include <signal.h>
#include <stddef.h>

#include "proxy/mcp/mcp.h"

#define CATALOG_VERSION "0.1.0" /* serverInfo.version: nearcache's, as main.c prints it */

/* What a transport gives the tools (the env of mcp_handle), borrowed. */
struct catalog_env {
    redisContext *rc;           /* the connection to the proxy; NULL: it could not be made */
    const char *proxy;          /* the proxy's address, for a tool that opens connections of
                                   its own (performance_tuning, pattern_analysis's figures) */
    const char *proxy_password; /* AUTH there; NULL: none */
    const char *upstream_user, *upstream_password; /* AUTH at Redis; NULL: none */
    volatile sig_atomic_t *stop; /* non-zero: the long tools end now (shutdown); may be NULL */
};

/* The tool table (static); *n gets its length. */
const struct mcp_tool *catalog_tools(size_t *n);

#endif

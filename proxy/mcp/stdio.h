/* stdio.h - `nearcache mcp`: the MCP server over stdio, for local agents.
 *
 * Newline-delimited JSON-RPC on stdin, answers on stdout, logs on stderr.
 * The tools (catalog.h) talk to a running proxy over RESP:
 *
 *   nearcache mcp [--proxy ADDR] [--password P] [--admin-token T]
 *
 * --proxy is host:port, [v6]:port or a unix socket path (default
 * 127.0.0.1:6380, the default listen); --password authenticates with the
 * proxy (clients.password, or NEARCACHE_PASSWORD); --admin-token (or
 * NEARCACHE_ADMIN_TOKEN) lists and allows the tools that change state
 * (invalidate, reload, performance_tuning, bulk_operations): over stdio the
 * token is the operator's say-so, not checked against admin.token.
 */
#ifndef NEARCACHE_MCP_STDIO_H
#define NEARCACHE_MCP_STDIO_H

/* Serves stdin until it ends. Returns 0, 1 when stdout failed, 2 for bad
 * arguments (the usage printed on stderr). argv[0] is "mcp". */
int mcp_main(int argc, char **argv);

#endif

/* http.h - the admin endpoint: HTTP/1.1 on admin.listen, on the loop.
 *
 * libmicrohttpd parses HTTP; it runs in its "external epoll" mode, driven by
 * an ev_io on its epoll descriptor and an ev_timer on its timeouts, so it
 * never blocks the loop and needs no thread. Routes:
 *
 *   GET  /metrics  the figures in the Prometheus text format (metrics.h)
 *   GET  /stats    the same figures as JSON
 *   GET  /healthz  200 while the loop turns
 *   GET  /readyz   200 when ready to serve (admin_ready), else 503 and why
 *   GET  /config   the settings in force and the policy's rules, as JSON,
 *                  secrets redacted
 *   POST /reload   reloads as SIGHUP does; answered when applied or failed
 *   POST /flush    empties the local tier
 *   POST /mcp      the MCP server (proxy/mcp/): one JSON-RPC message, up to
 *                  64 KB, answered by the MCP thread (runner.h); GET -> 405
 *
 * The POST actions need admin.token set and "Authorization: Bearer <token>":
 * 401 without the header, 403 with another token or with no token set.
 * Connections are limited in number, size of request (headers and body) and
 * time (idle for 5 s, or a request unfinished 5 s after it began: closed),
 * so that no admin client can hold memory or the loop.
 */
#ifndef NEARCACHE_HTTP_H
#define NEARCACHE_HTTP_H

struct worker;
struct http;

/* Starts serving on w->cfg->admin_listen (which must be on). Returns NULL
 * after logging why (address taken, out of memory). */
struct http *http_create(struct worker *w);

/* Stops serving and closes every admin connection; *h is set to NULL.
 * Accepts NULL and *h == NULL. Reloads waited on must be answered first
 * (reload_destroy). */
void http_destroy(struct http **h);

#endif

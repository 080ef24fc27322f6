/* runner.h - the admin endpoint's MCP thread.
 *
 * Tool calls are blocking RESP round trips, so they never run on the loop:
 * the admin endpoint (http.c) hands each /mcp message to one thread, which
 * answers it with mcp_handle and the tools of catalog.h, and gets the answer
 * back on the loop (an ev_async). The thread talks to the proxy itself
 * through a socketpair whose other end the loop adopts as a client of
 * worker 0 (client_create), authenticated as the default user (no key or
 * command limits, as clients.password's user); the pair is made once and
 * again whenever it breaks (the client closed for idling, say).
 * At most RUNNER_JOBS messages wait or run at once.
 */
#ifndef NEARCACHE_MCP_RUNNER_H
#define NEARCACHE_MCP_RUNNER_H

#include <stddef.h>

struct worker;
struct runner;
struct mcp_request;

#define RUNNER_JOBS 4 /* messages queued or running; more are refused */

/* Called on the loop with a message's answer (malloc'd, the callee frees
 * it; NULL: nothing to send, or not run when status is 503) and the HTTP
 * status. */
typedef void (*runner_done_fn)(void *arg, char *answer, unsigned status);

/* Starts the thread; w is worker 0. NULL after logging why. */
struct runner *runner_create(struct worker *w);

/* Queues body[0, len) (copied) with what the transport knows of it; done
 * gets the answer on the loop. Returns 0, or -1 when RUNNER_JOBS are
 * queued already or out of memory (done is not called). */
int runner_submit(struct runner *r, const char *body, size_t len, const struct mcp_request *req,
                  runner_done_fn done, void *arg);

/* Stops and joins the thread (a round trip it waits on is cut off), then
 * calls done for every message still held: its answer, or NULL and 503 for
 * one not run. *r is set to NULL; accepts NULL and *r == NULL. */
void runner_destroy(struct runner **r);

#endif

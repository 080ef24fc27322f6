/* reload.h - SIGHUP and NEARCACHE RELOAD, without stalling the loop.
 *
 * Reading the settings and compiling a policy of tens of thousands of rules
 * takes long enough to stall every client if done on the event loop, and a
 * stall makes healthy requests look timed out. So a reload runs in two
 * halves. A worker thread calls the server's load function and builds the
 * new policy against the running one (reading only what never changes in
 * it: policy.h); then the loop applies the result in one short step:
 * settings a running proxy cannot change are kept (and logged), the running
 * policy's counters, windows and generations move to the new one, and the
 * invalidation sources are registered again. The policy replaced is freed by
 * the next reload's thread, or at exit.
 *
 * One reload runs at a time. A request made while one runs starts another
 * when it ends, so that every request is answered by a reload that read the
 * files after the request was made; requests made meanwhile share it.
 */
#ifndef NEARCACHE_RELOAD_H
#define NEARCACHE_RELOAD_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/exchange.h"

struct config;
struct policy;
struct worker;

struct reload;

/* Reads the settings from the same sources as at start-up into out (which it
 * initializes; the caller deinitializes it). Returns 0, or -1 with err set to
 * "file:line: key: reason". Runs on a thread of its own: it must not touch
 * the running settings. */
typedef int (*reload_load_fn)(void *arg, struct config *out, char *err, size_t errlen);

/* Creates the reloader of w (whose loop, settings, policy, tier and
 * invalidation sources it updates), reading with load(load_arg). NULL when
 * out of memory. */
struct reload *reload_create(struct worker *w, reload_load_fn load, void *load_arg);

/* How many reloads ran, and how many of them failed. */
void reload_counts(const struct reload *r, uint64_t *runs, uint64_t *failed);

/* Waits for a reload in progress and discards it; every waiter is answered
 * with an error. *r is set to NULL; NULL and *r == NULL are accepted. */
void reload_destroy(struct reload **r);

/* Starts a reload, or queues one behind the running one. waiter (NULL for a
 * signal) is an exchange that gets the reply through its done function:
 * "+OK", or "-ERR reload failed: <reason>" with the running settings kept.
 * Returns 0, or -1 when out of memory (waiter not taken). */
int reload_request(struct reload *r, struct exchange *waiter);

/* Builds the policy loaded into cfg (taken from it, cfg->policy is left
 * NULL; an empty policy when there is none) against prev, the running one
 * (NULL at start), which it only reads: safe on another thread while the
 * loop uses prev. NULL with err set on failure. */
struct policy *reload_build_policy(struct config *cfg, const struct policy *prev, char *err,
                                   size_t errlen);

#endif

/* server_worker.h - one worker of the server (server.h): its listeners, its
 * way to Redis, its tick, its drain and its thread.
 */
#ifndef NEARCACHE_SERVER_WORKER_H
#define NEARCACHE_SERVER_WORKER_H

#include "proxy/server.h"

/* Sets up sw->w, whose loop, settings and server are set, for serving: the
 * policy, command table and TLS contexts are first's (worker 0's, already
 * set up, or sw's own when it is worker 0), and so is the address of Redis
 * when Sentinel named it. Listens, connects the pool and the tracking
 * subscriber, and starts the tick. Returns 0, or -1 after logging why. */
int server_worker_setup(struct server_worker *sw, const struct worker *first);

/* Stops accepting and closes clients as they become idle, or all of them at
 * deadline; the loop ends when none is left. */
void server_worker_drain(struct server_worker *sw, ev_tstamp deadline);

/* On sw's loop, soon: points sw's endpoint at addr (where worker 0's moved). */
void server_worker_follow(struct server_worker *sw, const struct net_addr *addr);

/* A worker thread (crew_start): runs sw's loop, leaves, then tears it down. */
void *server_worker_run(void *arg);

/* After sw's loop has ended: it reads no more invalidations while the other
 * workers may still serve, from the tier they share, what it filled. The
 * tier is emptied before the crew hears that sw is gone. */
void server_worker_leave(struct server_worker *sw);

/* Closes every connection of sw and frees what set-up allocated, but not
 * what it shares with the others. */
void server_worker_teardown(struct server_worker *sw);

#endif

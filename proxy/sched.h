/* sched.h - the loop's safe point: work deferred until just before it sleeps.
 *
 * Callbacks never write or free a connection themselves: they queue it here,
 * and once per loop iteration (an ev_prepare watcher) the queues run in a
 * fixed order: clients that stalled resume reading, then every upstream
 * connection with requests queued writes them in one writev (many clients'
 * requests together), then clients with replies write them, again until no
 * queue is left; last, connections that were closed are freed, never inside
 * one of their own callbacks. This is redis's beforeSleep.
 */
#ifndef NEARCACHE_SCHED_H
#define NEARCACHE_SCHED_H

#include <ev.h>
#include <stdbool.h>

typedef enum {
    SCHED_RESUME = 0,     /* a stalled client reads again */
    SCHED_FLUSH_UPSTREAM, /* an upstream connection writes */
    SCHED_FLUSH_CLIENT,   /* a client writes */
    SCHED_REAP,           /* a closed connection is freed */
    SCHED_QUEUES,
} sched_queue_e;

struct sched_item;

/* Runs one queued item; it is off its queue by then. */
typedef void (*sched_fn)(struct sched_item *it);

/* Embedded in what it schedules (its owner finds itself with offsetof): one
 * item per queue the owner may be on. Only sched.c touches next and queued. */
struct sched_item {
    struct sched_item *next;
    bool queued;
    sched_fn run;
};

struct sched {
    struct ev_loop *loop;
    ev_prepare prepare;
    struct sched_item *queue[SCHED_QUEUES];
};

/* Starts running the queues at every iteration of loop. */
void sched_setup(struct sched *s, struct ev_loop *loop);

/* Runs what is queued now, the frees last. */
void sched_run(struct sched *s);

/* Runs what is queued (the frees too), and stops. */
void sched_teardown(struct sched *s);

/* An item that runs run when its turn comes. */
void sched_item_init(struct sched_item *it, sched_fn run);

/* Queues it on q unless it is queued already. O(1). */
void sched_want(struct sched *s, sched_queue_e q, struct sched_item *it);

#endif

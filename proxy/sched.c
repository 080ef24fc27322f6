/* sched.c - the queues run at the loop's safe point. */
#include "proxy/sched.h"

#include <stddef.h>

void sched_item_init(struct sched_item *it, sched_fn run)
{
    *it = (struct sched_item){NULL, false, run};
}

void sched_want(struct sched *s, sched_queue_e q, struct sched_item *it)
{
    if (it->queued)
        return;
    it->queued = true;
    it->next = s->queue[q];
    s->queue[q] = it;
}

/* Runs queue q until it is empty (running an item may queue others). */
static void sched_drain(struct sched *s, sched_queue_e q)
{
    while (s->queue[q] != NULL) {
        struct sched_item *it = s->queue[q];
        s->queue[q] = it->next;
        it->next = NULL;
        it->queued = false;
        it->run(it);
    }
}

void sched_run(struct sched *s)
{
    while (s->queue[SCHED_RESUME] != NULL || s->queue[SCHED_FLUSH_UPSTREAM] != NULL ||
           s->queue[SCHED_FLUSH_CLIENT] != NULL) {
        sched_drain(s, SCHED_RESUME);
        sched_drain(s, SCHED_FLUSH_UPSTREAM);
        sched_drain(s, SCHED_FLUSH_CLIENT);
    }
    sched_drain(s, SCHED_REAP);
}

static void sched_on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    sched_run((struct sched *)((char *)w - offsetof(struct sched, prepare)));
}

void sched_setup(struct sched *s, struct ev_loop *loop)
{
    *s = (struct sched){.loop = loop};
    ev_prepare_init(&s->prepare, sched_on_prepare);
    ev_prepare_start(loop, &s->prepare);
}

void sched_teardown(struct sched *s)
{
    sched_run(s);
    ev_prepare_stop(s->loop, &s->prepare);
}

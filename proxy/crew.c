/* crew.c - worker threads: posting work to a loop, stopping the world. */
#include "proxy/crew.h"

#include <stdlib.h>
#include <string.h>

struct crew_msg {
    struct crew_msg *next;
    crew_fn fn;
    void *arg;
};

/* Called with c->mu held by a member not stopping the world: waits, counted
 * as paused, until nobody but self stops it. */
static void pause_locked(struct crew *c, int self)
{
    c->paused++;
    pthread_cond_broadcast(&c->cv);
    while (c->stopper >= 0 && c->stopper != self)
        pthread_cond_wait(&c->cv, &c->mu);
    c->paused--;
}

/* The member's wake-up: pauses if the world is stopped, then runs what was
 * posted to it. */
static void crew_on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop;
    (void)revents;
    struct crew_member *m = w->data;
    struct crew *c = m->crew;
    pthread_mutex_lock(&c->mu);
    if (c->stopper >= 0 && c->stopper != m->id)
        pause_locked(c, m->id);
    struct crew_msg *msg = m->head;
    m->head = m->tail = NULL;
    pthread_mutex_unlock(&c->mu);
    while (msg != NULL) {
        struct crew_msg *next = msg->next;
        msg->fn(msg->arg);
        free(msg);
        msg = next;
    }
}

int crew_init(struct crew *c, int n, struct ev_loop *loop)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->stopper = -1;
    for (int i = 0; i < n; i++) {
        struct crew_member *m = &c->m[i];
        m->crew = c;
        m->id = i;
        m->loop = i == 0 ? loop : ev_loop_new(EVFLAG_AUTO);
        if (m->loop == NULL)
            return -1;
        c->n = i + 1;
        ev_async_init(&m->wake, crew_on_wake);
        m->wake.data = m;
        ev_set_priority(&m->wake, EV_MAXPRI);
        ev_async_start(m->loop, &m->wake);
        ev_unref(m->loop); /* the wake-up alone does not keep a loop running */
    }
    return 0;
}

int crew_start(struct crew *c, void *(*run)(void *), void *const *args)
{
    int started = 0;
    for (int i = 1; i < c->n; i++) {
        c->m[i].running = pthread_create(&c->m[i].thread, NULL, run, args[i]) == 0;
        started += c->m[i].running;
    }
    return started;
}

int crew_post(struct crew *c, int to, crew_fn fn, void *arg)
{
    struct crew_msg *msg = malloc(sizeof(*msg));
    if (msg == NULL)
        return -1;
    *msg = (struct crew_msg){NULL, fn, arg};
    struct crew_member *m = &c->m[to];
    pthread_mutex_lock(&c->mu);
    if (m->tail != NULL)
        m->tail->next = msg;
    else
        m->head = msg;
    m->tail = msg;
    pthread_mutex_unlock(&c->mu);
    ev_async_send(m->loop, &m->wake);
    return 0;
}

void crew_stop(struct crew *c, int self)
{
    pthread_mutex_lock(&c->mu);
    while (c->stopper >= 0) /* another's turn first: take part in it */
        pause_locked(c, self);
    c->stopper = self;
    for (int i = 0; i < c->n; i++)
        if (i != self)
            ev_async_send(c->m[i].loop, &c->m[i].wake);
    while (c->paused < c->n - 1)
        pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

void crew_resume(struct crew *c)
{
    pthread_mutex_lock(&c->mu);
    c->stopper = -1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

void crew_leave(struct crew *c, int self)
{
    pthread_mutex_lock(&c->mu);
    c->m[self].gone = true;
    c->paused++;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

void crew_teardown(struct crew *c)
{
    for (int i = 0; i < c->n; i++) {
        struct crew_member *m = &c->m[i];
        if (m->running)
            pthread_join(m->thread, NULL);
        for (struct crew_msg *msg = m->head, *next; msg != NULL; msg = next) {
            next = msg->next;
            free(msg);
        }
        m->head = m->tail = NULL;
        if (m->loop != NULL) {
            ev_ref(m->loop);
            ev_async_stop(m->loop, &m->wake);
            if (i > 0)
                ev_loop_destroy(m->loop);
        }
    }
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
}

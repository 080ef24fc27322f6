/* crew.h - the worker threads of the process, each running an event loop.
 *
 * Member 0 is the main thread's loop; the others run on threads of their
 * own. A member can hand another a function to run on its loop (crew_post),
 * and can stop the world: every other member pauses at a safe point (between
 * two callbacks of its loop, holding no lock) until crew_resume, so that the
 * stopper may read or change any member's state (a reload applied, Redis
 * moved, counters summed). Two members stopping the world at once take turns:
 * one waiting for its turn takes part in the other's stop meanwhile.
 */
#ifndef NEARCACHE_CREW_H
#define NEARCACHE_CREW_H

#include <ev.h>
#include <pthread.h>
#include <stdbool.h>

#define CREW_MAX 64 /* workers */

typedef void (*crew_fn)(void *arg);

struct crew_msg;

struct crew_member {
    struct crew *crew;
    int id;
    struct ev_loop *loop;
    ev_async wake; /* posts and stops */
    struct crew_msg *head, *tail;
    pthread_t thread;
    bool running; /* its thread was started */
    bool gone;    /* its loop has ended (crew_leave): its state is not to be touched */
};

struct crew {
    int n;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stopper; /* the member stopping the world, or -1 */
    int paused;  /* members paused for it, or gone */
    struct crew_member m[CREW_MAX];
};

/* Sets up n members (1..CREW_MAX); member 0 runs on loop, the others get
 * loops of their own. Returns 0, or -1 when a loop cannot be made. */
int crew_init(struct crew *c, int n, struct ev_loop *loop);

/* Starts members 1..n-1, each running run(arg_of(i)) on its thread (run
 * runs its loop and returns when it ends). Returns the number started. */
int crew_start(struct crew *c, void *(*run)(void *), void *const *args);

/* Runs fn(arg) on member to's loop, soon. Returns 0, or -1 when out of
 * memory. */
int crew_post(struct crew *c, int to, crew_fn fn, void *arg);

/* Member self stops the world: returns once every other member is paused
 * (or has ended). */
void crew_stop(struct crew *c, int self);

/* Lets the paused members go on. */
void crew_resume(struct crew *c);

/* Member self's loop has ended for good: it no longer pauses, and nobody
 * waits for it. */
void crew_leave(struct crew *c, int self);

/* Waits for members 1..n-1 to end, and frees their loops and what was
 * posted and not run. */
void crew_teardown(struct crew *c);

#endif

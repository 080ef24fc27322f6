/* exchange.h - one request in flight to Redis, and what to do with its reply.
 *
 * Whoever sends a request to Redis (a client's request, the PTTL behind a
 * read that may fill the tier, a part of a split MGET, a CLIENT TRACKING)
 * takes an exchange, says which function gets the reply, and queues it on an
 * upstream connection with the request's bytes. The connection matches
 * replies to exchanges in FIFO order and calls done exactly once per
 * exchange: with the reply, or with an error reply standing for it when the
 * connection fails. It never looks inside. Exchanges come from and go back
 * to this module's free list, so that malloc stays off the request path.
 * Pure: no I/O.
 */
#ifndef NEARCACHE_EXCHANGE_H
#define NEARCACHE_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

struct exchange;

/* Receives the reply (a complete RESP frame, or "-ERR upstream ...\r\n"),
 * valid only during the call, at now_ms by the loop's clock. x is the
 * callee's from then on: it destroys it (or reuses it). */
typedef void (*exchange_done_fn)(struct exchange *x, const char *data, size_t len, uint64_t now_ms);

struct exchange {
    struct exchange *next; /* the upstream connection's FIFO */
    exchange_done_fn done;
    void *arg;     /* done's */
    size_t index;  /* done's (a split MGET's miss) */
    double sent;   /* when it was queued, by the loop's clock, in seconds */
    bool blocking; /* may take longer than upstream.timeout (BLPOP, WAIT, ...) */
};

/* Freed exchanges kept for reuse (exchange.c): one is taken and given back
 * for nearly every forwarded request, inline. Only the functions below
 * touch them. */
#define EXCHANGE_FREE_KEEP 4096
extern _Thread_local struct exchange *exchange_free_list; /* linked by next */
extern _Thread_local size_t exchange_free_count;

/* Returns an exchange whose reply goes to done(x, ...) with x->arg = arg,
 * or NULL when out of memory. */
static inline struct exchange *exchange_create(exchange_done_fn done, void *arg)
{
    struct exchange *x = exchange_free_list;
    if (x != NULL) {
        exchange_free_list = x->next;
        exchange_free_count--;
    } else if ((x = malloc(sizeof(*x))) == NULL) {
        return NULL;
    }
    *x = (struct exchange){NULL, done, arg, 0, 0, false};
    return x;
}

/* Gives *x back; *x is set to NULL. Accepts NULL and *x == NULL. */
static inline void exchange_destroy(struct exchange **x)
{
    if (x == NULL || *x == NULL)
        return;
    if (exchange_free_count >= EXCHANGE_FREE_KEEP) {
        free(*x);
    } else {
        (*x)->next = exchange_free_list;
        exchange_free_list = *x;
        exchange_free_count++;
    }
    *x = NULL;
}

/* Frees the exchanges this thread keeps for reuse (a worker thread ending). */
void exchange_free_kept(void);

/* An exchange_done_fn for requests whose reply goes nowhere (the proxy's
 * own bookkeeping on a connection): destroys x. */
void exchange_discard(struct exchange *x, const char *data, size_t len, uint64_t now_ms);

#endif

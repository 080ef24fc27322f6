/* session.h - a client's connection state, and where its requests go.
 *
 * Most clients never hold state of their own on a Redis connection, and
 * their requests go to the shared connection they were given, in the lane
 * of the database and protocol they use (pool.h): SELECT and HELLO move a
 * client from lane to lane. A command that sets other connection state
 * (CLIENT TRACKING, READONLY, an AUTH the proxy does not answer...), opens a
 * transaction or a watch, or may block, moves the client to a dedicated
 * connection of its lane, where it stays while it holds that state; a
 * subscription or MONITOR turns the dedicated connection into a raw stream.
 * The state machine:
 *
 *   SHARED --sticky, multi, watch, blocking--> DEDICATED
 *   DEDICATED --nothing held, nothing in flight--> SHARED (connection kept as a spare)
 *   DEDICATED --RESET--> DEDICATED, spoiled: back to SHARED once idle and
 *       nothing held again, the connection closed (RESET undid its AUTH and SELECT)
 *   SHARED or DEDICATED --stream command--> STREAM (until the connection ends)
 *   DEDICATED or STREAM --connection lost--> SHARED (the client is told)
 *
 * In DEDICATED, `held` says which state is held (several may be). A switch
 * of connection waits until the requests in flight are answered, so that
 * requests run in the order sent. Pure bookkeeping: the upstream
 * connections come from and go back to the pool.
 */
#ifndef NEARCACHE_SESSION_H
#define NEARCACHE_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/proto/command.h"

struct pool;
struct upstream;
struct upstream_owner;

typedef enum {
    SESSION_SHARED = 0, /* no state of its own: the shared connection */
    SESSION_DEDICATED,  /* a dedicated connection, while state is held */
    SESSION_STREAM,     /* replies no longer match requests: raw pass-through */
} session_state_e;

/* What the client must do after losing its dedicated connection. */
typedef enum {
    SESSION_GO_ON = 0,   /* nothing was lost */
    SESSION_CLOSE,       /* state went with it: close after the replies owed */
    SESSION_UNAVAILABLE, /* a stream never started: answer unavailable, then close */
} session_lost_e;

/* Kinds of state held in SESSION_DEDICATED. */
#define SESSION_STICKY 1u /* lasts: SELECT, AUTH, HELLO 3, CLIENT SETNAME, ... */
#define SESSION_MULTI  2u /* between MULTI and EXEC/DISCARD */
#define SESSION_WATCH  4u /* WATCH outstanding */

struct session {
    session_state_e state;
    unsigned held;         /* SESSION_STICKY | SESSION_MULTI | SESSION_WATCH */
    bool multi_dirty;      /* the policy rejected a command of the open transaction */
    bool spoiled;          /* RESET ran on the dedicated connection, so it is unlike the pool's:
                              closed, not kept, when given back */
    bool named;            /* the dedicated connection was given the client's name: it is
                              cleared (CLIENT SETNAME "") before the connection goes back */
    int lane;              /* its lane in the pool */
    bool barrier;          /* the next requests wait for those in flight: their answer decides where
                              they go (a SELECT), or when (a read joined to another client's) */
    struct upstream *home; /* the shared connection, in its lane */
    struct upstream *dedicated; /* the dedicated one, NULL in SESSION_SHARED */
    struct pool *dpool;         /* the pool it came from and goes back to */
    unsigned pick;              /* which of a lane's shared connections is its home */
    bool parked;                /* cluster: a MULTI the proxy answered, sent before the next
                                   request on the node that request picks */
    unsigned gen;               /* cluster: the map's route_gen its requests in flight went by */
    bool spread;                /* cluster: shared connections of several nodes may carry its
                                   requests at once (a key always goes to one of them) */
    struct upstream *cur;       /* where the requests in flight went */
    size_t inflight;            /* requests sent and not yet answered */
};

/* Takes a dedicated connection from pool's lane for owner and holds it;
 * false when none could be had. */
bool session_dedicate(struct session *s, struct pool *pool, int lane,
                      const struct upstream_owner *owner);

/* Chooses the connection for a request of kind: the dedicated one while
 * state is held or the command needs it (session_dedicate), else the shared
 * one (s->home). Returns NULL to stall: requests in flight elsewhere (or the
 * answer that decides a move) must come first, or no connection could be
 * had (*oom set). Inline: on every request (a GET hit 1,111 -> 1,097
 * instructions). */
static inline struct upstream *session_route(struct session *s, command_kind_e kind,
                                             struct pool *pool, int lane,
                                             const struct upstream_owner *owner, bool *oom)
{
    bool needs_own = kind == COMMAND_STICKY || kind == COMMAND_STREAM || kind == COMMAND_BLOCKING ||
                     kind == COMMAND_MULTI || kind == COMMAND_WATCH;
    *oom = false;
    if (s->barrier && s->inflight > 0)
        return NULL;
    s->barrier = false;
    if (s->state == SESSION_SHARED && needs_own) {
        if (s->inflight > 0)
            return NULL;
        if (!session_dedicate(s, pool, lane, owner)) {
            *oom = true;
            return NULL;
        }
    }
    struct upstream *target = s->dedicated != NULL ? s->dedicated : s->home;
    bool switch_ok = s->spread && s->state == SESSION_SHARED;
    if (s->inflight > 0 && ((s->cur != target && !switch_ok) || kind == COMMAND_STREAM))
        return NULL;
    return target;
}

/* Moves a client on its shared connection to lane (a shared connection of
 * it): its next requests wait for those in flight. */
void session_move(struct session *s, struct pool *pool, int lane);

/* Records what a request of kind does to the state, once it is sent. */
void session_apply(struct session *s, command_kind_e kind);

/* At an idle point (nothing in flight): gives the dedicated connection back
 * to its pool once no state is held (kept as a spare unless it is spoiled). */
void session_settle(struct session *s);

/* The dedicated connection broke (it is closed already); was_ready says
 * whether it had carried traffic. Back to SESSION_SHARED. */
session_lost_e session_lost(struct session *s, bool was_ready);

/* Drops everything at close: the dedicated connection is closed. */
void session_end(struct session *s);

#endif

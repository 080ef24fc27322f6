/* session.c - the client connection-state machine. */
#include "proxy/session.h"

#include "proxy/exchange.h"
#include "proxy/pool.h"
#include "proxy/upstream.h"

bool session_dedicate(struct session *s, struct pool *pool, int lane,
                      const struct upstream_owner *owner)
{
    if ((s->dedicated = pool_dedicated_get(pool, owner, lane)) == NULL)
        return false;
    s->dpool = pool;
    s->state = SESSION_DEDICATED;
    return true;
}

void session_move(struct session *s, struct pool *pool, int lane)
{
    if (lane != s->lane) {
        s->lane = lane;
        s->home = pool_home(pool, lane);
    }
}

void session_apply(struct session *s, command_kind_e kind)
{
    switch (kind) {
    case COMMAND_STICKY:
        s->held |= SESSION_STICKY;
        break;
    case COMMAND_STREAM:
        s->state = SESSION_STREAM;
        break;
    case COMMAND_MULTI:
        s->held |= SESSION_MULTI;
        break;
    case COMMAND_EXEC:
        s->held &= ~(SESSION_MULTI | SESSION_WATCH);
        s->multi_dirty = false;
        break;
    case COMMAND_WATCH:
        s->held |= SESSION_WATCH;
        break;
    case COMMAND_UNWATCH:
        s->held &= ~SESSION_WATCH;
        break;
    case COMMAND_RESET:
        s->held = 0;
        s->parked = false;
        s->multi_dirty = false;
        s->spoiled |= s->state == SESSION_DEDICATED;
        break;
    case COMMAND_SHARED:
    case COMMAND_BLOCKING:
    case COMMAND_QUIT:
    case COMMAND_NEARCACHE:
        break;
    }
}

void session_settle(struct session *s)
{
    if (s->state != SESSION_DEDICATED || s->inflight > 0 || s->held != 0)
        return;
    if (s->named && !s->spoiled) {
        static const char UNNAME[] = "*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$0\r\n\r\n";
        struct exchange *x = exchange_create(exchange_discard, NULL);
        if (x != NULL)
            upstream_send(s->dedicated, UNNAME, sizeof(UNNAME) - 1, x);
        s->spoiled = x == NULL;
    }
    pool_dedicated_put(s->dpool, s->dedicated, !s->spoiled);
    s->dedicated = NULL;
    s->state = SESSION_SHARED;
    s->held = 0;
    s->spoiled = s->named = false;
}

session_lost_e session_lost(struct session *s, bool was_ready)
{
    bool had_state = s->held != 0 || s->state == SESSION_STREAM;
    bool was_stream = s->state == SESSION_STREAM;
    s->dedicated = NULL;
    s->state = SESSION_SHARED;
    s->held = 0;
    s->multi_dirty = s->spoiled = s->named = s->parked = false;
    if (was_stream && !was_ready)
        return SESSION_UNAVAILABLE;
    return was_ready && had_state ? SESSION_CLOSE : SESSION_GO_ON;
}

void session_end(struct session *s)
{
    if (s->dedicated != NULL)
        upstream_close(s->dedicated);
    s->dedicated = NULL;
    s->state = SESSION_SHARED;
}

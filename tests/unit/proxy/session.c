/* Unit tests for proxy/session.c: the client connection-state machine. The
 * pool hands out spare connections that never touch a socket. */
#include <criterion/criterion.h>
#include <string.h>

#include "config/config.h"
#include "proxy/pool.h"
#include "proxy/session.h"

static struct config cfg;
static struct pool pool;
static struct upstream home, spares[4];
static const struct upstream_owner owner = {0};

static void setup(void)
{
    memset(&cfg, 0, sizeof(cfg));
    cfg.idle_dedicated = 4;
    memset(&pool, 0, sizeof(pool));
    pool.env.cfg = &cfg;
    pool.keep_spares = true;
    for (int i = 0; i < 4; i++) {
        memset(&spares[i], 0, sizeof(spares[i]));
        spares[i].state = UPSTREAM_READY;
        spares[i].dedicated = true;
        pool_dedicated_put(&pool, &spares[i], true);
    }
    cr_assert_eq(pool.nidle, 4);
}

TestSuite(session, .init = setup);

static struct session fresh(void)
{
    return (struct session){.home = &home};
}

/* Routes and sends one request of kind, as the client does. */
static struct upstream *send(struct session *s, command_kind_e kind)
{
    bool oom;
    struct upstream *up = session_route(s, kind, &pool, s->lane, &owner, &oom);
    cr_assert(!oom);
    if (up != NULL) {
        session_apply(s, kind);
        s->cur = up;
        s->inflight++;
    }
    return up;
}

Test(session, data_commands_stay_shared)
{
    struct session s = fresh();
    cr_expect_eq(send(&s, COMMAND_SHARED), &home);
    cr_expect_eq(send(&s, COMMAND_EXEC), &home);
    cr_expect_eq(s.state, SESSION_SHARED);
    cr_expect_eq(pool.nidle, 4);
}

Test(session, state_takes_a_dedicated_connection_once_idle)
{
    struct session s = fresh();
    send(&s, COMMAND_SHARED);
    cr_expect_null(send(&s, COMMAND_STICKY), "a switch waits for the requests in flight");
    s.inflight = 0;
    struct upstream *up = send(&s, COMMAND_STICKY);
    cr_expect(up >= &spares[0] && up <= &spares[3]);
    cr_expect_eq(s.state, SESSION_DEDICATED);
    cr_expect_eq(s.held, SESSION_STICKY);
    cr_expect_eq(send(&s, COMMAND_SHARED), up, "everything follows it there");
}

Test(session, transaction_ends_and_connection_goes_back)
{
    struct session s = fresh();
    struct upstream *up = send(&s, COMMAND_MULTI);
    send(&s, COMMAND_SHARED);
    send(&s, COMMAND_EXEC);
    cr_expect_eq(s.held, 0);
    session_settle(&s);
    cr_expect_eq(s.state, SESSION_DEDICATED, "not while requests are in flight");
    s.inflight = 0;
    session_settle(&s);
    cr_expect_eq(s.state, SESSION_SHARED);
    cr_expect_null(s.dedicated);
    cr_expect_eq(pool.idle, up, "kept as a spare");
}

Test(session, watch_and_sticky_are_held_together)
{
    struct session s = fresh();
    send(&s, COMMAND_STICKY);
    send(&s, COMMAND_WATCH);
    send(&s, COMMAND_UNWATCH);
    s.inflight = 0;
    session_settle(&s);
    cr_expect_eq(s.state, SESSION_DEDICATED, "SELECT still holds it");
    cr_expect_eq(s.held, SESSION_STICKY);
}

Test(session, reset_drops_the_state_and_the_connection)
{
    struct session s = fresh();
    struct upstream *up = send(&s, COMMAND_STICKY);
    send(&s, COMMAND_RESET);
    cr_expect(s.spoiled);
    cr_expect_eq(s.held, 0);
    s.inflight = 0;
    up->closing = true; /* pool_dedicated_put closes it: no socket to close here */
    up->state = UPSTREAM_DOWN;
    int idle = pool.nidle;
    pool.keep_spares = false;
    session_settle(&s);
    cr_expect_eq(s.state, SESSION_SHARED);
    cr_expect_eq(pool.nidle, idle, "a RESET connection is not kept");
}

Test(session, state_set_after_reset_keeps_the_connection)
{
    struct session s = fresh();
    struct upstream *up = send(&s, COMMAND_STICKY);
    send(&s, COMMAND_RESET);
    send(&s, COMMAND_STICKY); /* SELECT 2 pipelined behind RESET */
    s.inflight = 0;
    session_settle(&s);
    cr_expect_eq(s.state, SESSION_DEDICATED);
    cr_expect_eq(s.dedicated, up);
}

Test(session, stream_stalls_behind_requests_in_flight)
{
    struct session s = fresh();
    struct upstream *up = send(&s, COMMAND_STICKY);
    cr_expect_null(send(&s, COMMAND_STREAM));
    s.inflight = 0;
    cr_expect_eq(send(&s, COMMAND_STREAM), up);
    cr_expect_eq(s.state, SESSION_STREAM);
}

Test(session, lost_connection_says_what_went_with_it)
{
    struct session s = fresh();
    send(&s, COMMAND_BLOCKING);
    cr_expect_eq(session_lost(&s, true), SESSION_GO_ON, "a BLPOP holds no state");
    cr_expect_eq(s.state, SESSION_SHARED);
    s = fresh();
    send(&s, COMMAND_STICKY);
    cr_expect_eq(session_lost(&s, true), SESSION_CLOSE);
    cr_expect_null(s.dedicated);
    s = fresh();
    send(&s, COMMAND_STREAM);
    cr_expect_eq(session_lost(&s, false), SESSION_UNAVAILABLE);
    s = fresh();
    send(&s, COMMAND_STICKY);
    cr_expect_eq(session_lost(&s, false), SESSION_GO_ON, "never carried traffic");
}

/* Unit tests for proxy/coherence.c: every transition of the tier's coherence
 * state machine, the classification of CLIENT TRACKING replies, and the
 * sequences of events behind the faults it must survive. */
#include <criterion/criterion.h>
#include <string.h>

#include "proxy/cache/coherence.h"

#define OK      "+OK\r\n"
#define GONE    "-ERR The client ID you want redirect to does not exist\r\n"
#define TIMEOUT "-ERR upstream timeout\r\n"
#define LOST    "-ERR upstream connection lost\r\n"
#define OVERLAP                                                                                    \
    "-ERR Prefix 'user:1' overlaps with an existing prefix 'user:'. Prefixes for a single client " \
    "must not overlap.\r\n"
#define NOPERM   "-NOPERM this user has no permissions to run the 'client|tracking' command\r\n"
#define UNKNOWN  "-ERR unknown command 'CLIENT', with args beginning with: 'TRACKING' \r\n"
#define UNKNOWN7 "-ERR unknown subcommand 'TRACKING'. Try CLIENT HELP.\r\n"
#define UNKNOWN6                                                                                   \
    "-ERR Unknown subcommand or wrong number of arguments for 'TRACKING'. Try CLIENT HELP\r\n"

struct classify_case {
    const char *reply;
    long long sent_id; /* the current subscriber is 7 */
    coherence_reply_e want;
};

Test(coherence, classifies_replies)
{
    static const struct classify_case CASES[] = {
        {OK, 7, COHERENCE_ACCEPTED},
        {OK, 6, COHERENCE_FAILED},
        {GONE, 7, COHERENCE_FAILED},
        {TIMEOUT, 7, COHERENCE_FAILED},
        {LOST, 7, COHERENCE_FAILED},
        {OVERLAP, 7, COHERENCE_FAILED},
        {"-LOADING x\r\n", 7, COHERENCE_FAILED},
        {"", 7, COHERENCE_FAILED},
        {"-", 7, COHERENCE_FAILED},
        {NOPERM, 7, COHERENCE_REFUSED_REPLY},
        {UNKNOWN, 7, COHERENCE_REFUSED_REPLY},
        {UNKNOWN7, 7, COHERENCE_REFUSED_REPLY},
        {UNKNOWN6, 7, COHERENCE_REFUSED_REPLY},
        {"-noperm x\r\n", 7, COHERENCE_REFUSED_REPLY},
    };
    struct coherence c;
    coherence_init(&c, true);
    coherence_subscriber(&c, 7, 0);
    for (size_t i = 0; i < sizeof(CASES) / sizeof(*CASES); i++) {
        const struct classify_case *t = &CASES[i];
        cr_expect_eq(coherence_classify(&c, t->sent_id, t->reply, strlen(t->reply)), t->want,
                     "case %zu: %s", i, t->reply);
    }
}

/* One step of a scenario: an event and what must follow. */
struct step {
    char ev;           /* 'u' subscriber up (id), 'l' lost, 'r' reply, 't' tick */
    long long id;      /* up: the new id; reply: the id it was sent with */
    const char *reply; /* 'r' only */
    uint64_t now_ms;
    coherence_state_e state; /* after the step */
    unsigned actions;        /* exactly these */
};

struct scenario {
    const char *name;
    bool tracking;
    struct step steps[8];
};

#define ON      COHERENCE_ON
#define DOWN    COHERENCE_DOWN
#define REFUSED COHERENCE_REFUSED
#define OFF     COHERENCE_OFF
#define F       COHERENCE_FLUSH
#define TOFF    COHERENCE_TIER_OFF
#define TON     COHERENCE_TIER_ON
#define MARK    COHERENCE_MARK
#define RETRY   COHERENCE_RETRY
#define ALL     COHERENCE_TRACK_ALL
#define PROBE   COHERENCE_PROBE
#define LOG     COHERENCE_LOG

static const struct scenario SCENARIOS[] = {
    {"off ignores everything",
     false,
     {{'u', 5, NULL, 0, OFF, 0},
      {'r', 5, NOPERM, 0, OFF, 0},
      {'l', -1, NULL, 0, OFF, 0},
      {'t', 0, NULL, 99999, OFF, 0}}},
    {"down, on, accepted, lost, on again",
     true,
     {{'r', 3, OK, 0, DOWN, 0},
      {'u', 5, NULL, 0, ON, TON | ALL | LOG},
      {'r', 5, OK, 1, ON, MARK},
      {'l', -1, NULL, 2, DOWN, TOFF | LOG},
      {'r', 5, OK, 3, DOWN, 0},
      {'u', 6, NULL, 4, ON, TON | ALL | LOG}}},
    {"a new id without a loss reported flushes and tracks again",
     true,
     {{'u', 5, NULL, 0, ON, TON | ALL | LOG}, {'u', 6, NULL, 1, ON, F | ALL | LOG}}},
    /* The defect: the subscriber dies between CLIENT ID and the redirect, or
     * Redis stalls past upstream.timeout: failures, never a refusal. */
    {"subscriber killed under the redirect, then a stall",
     true,
     {{'u', 5, NULL, 0, ON, TON | ALL | LOG},
      {'l', -1, NULL, 1, DOWN, TOFF | LOG},
      {'r', 5, GONE, 2, DOWN, 0},
      {'u', 6, NULL, 3, ON, TON | ALL | LOG},
      {'r', 6, TIMEOUT, 4, ON, RETRY},
      {'r', 6, LOST, 5, ON, RETRY},
      {'r', 5, OK, 6, ON, RETRY},
      {'r', 6, OK, 7, ON, MARK}}},
    {"refused while on, probed, accepted",
     true,
     {{'u', 5, NULL, 0, ON, TON | ALL | LOG},
      {'r', 5, NOPERM, 100, REFUSED, LOG},
      {'t', 0, NULL, 100 + COHERENCE_PROBE_MS - 1, REFUSED, 0},
      {'t', 0, NULL, 100 + COHERENCE_PROBE_MS, REFUSED, PROBE},
      {'r', 5, NOPERM, 2200, REFUSED, 0},
      {'t', 0, NULL, 2200, REFUSED, 0},
      {'r', 5, OK, 2300, ON, F | MARK | ALL | LOG}}},
    {"refused while down, then the subscriber comes back: a probe at once",
     true,
     {{'r', 5, UNKNOWN7, 0, REFUSED, TON | LOG},
      {'t', 0, NULL, COHERENCE_PROBE_MS, REFUSED, 0},
      {'u', 6, NULL, 10, REFUSED, PROBE},
      {'r', 6, TIMEOUT, 20, REFUSED, 0},
      {'l', -1, NULL, 30, REFUSED, 0},
      {'t', 0, NULL, 30 + 2 * COHERENCE_PROBE_MS, REFUSED, 0},
      {'u', 7, NULL, 40, REFUSED, PROBE},
      {'r', 7, OK, 50, ON, F | MARK | ALL | LOG}}},
    {"an old id's +OK does not end refused mode",
     true,
     {{'u', 5, NULL, 0, ON, TON | ALL | LOG},
      {'r', 5, UNKNOWN, 1, REFUSED, LOG},
      {'u', 6, NULL, 2, REFUSED, PROBE},
      {'r', 5, OK, 3, REFUSED, 0}}},
};

static void run_step(struct coherence *c, const struct step *s, const char *name, size_t i)
{
    unsigned got = 0;
    switch (s->ev) {
    case 'u':
    case 'l':
        got = coherence_subscriber(c, s->id, s->now_ms);
        break;
    case 'r':
        got = coherence_reply(c, s->id, s->reply, strlen(s->reply), s->now_ms);
        break;
    case 't':
        got = coherence_tick(c, s->now_ms);
        break;
    }
    cr_expect_eq(c->state, s->state, "%s, step %zu: state %s", name, i,
                 coherence_state_name(c->state));
    cr_expect_eq(got, s->actions, "%s, step %zu: actions %#x, want %#x", name, i, got, s->actions);
}

Test(coherence, transitions)
{
    for (size_t n = 0; n < sizeof(SCENARIOS) / sizeof(*SCENARIOS); n++) {
        const struct scenario *sc = &SCENARIOS[n];
        struct coherence c;
        coherence_init(&c, sc->tracking);
        cr_expect_eq(c.state, sc->tracking ? DOWN : OFF);
        for (size_t i = 0; i < 8 && sc->steps[i].ev != 0; i++)
            run_step(&c, &sc->steps[i], sc->name, i);
    }
}

Test(coherence, may_fill)
{
    struct coherence c;
    coherence_init(&c, false);
    cr_expect(coherence_may_fill(&c, 0), "off: TTL-bounded fills");
    coherence_init(&c, true);
    cr_expect_not(coherence_may_fill(&c, 0), "down");
    cr_expect_not(coherence_wants_tracking(&c));
    coherence_subscriber(&c, 5, 0);
    cr_expect(coherence_wants_tracking(&c));
    cr_expect_not(coherence_may_fill(&c, 0), "on, connection not tracked");
    cr_expect_not(coherence_may_fill(&c, 4), "on, tracked for an old subscriber");
    cr_expect(coherence_may_fill(&c, 5), "on, tracked");
    coherence_reply(&c, 5, NOPERM, strlen(NOPERM), 0);
    cr_expect(coherence_may_fill(&c, 0), "refused: TTL-bounded fills");
    cr_expect(coherence_wants_tracking(&c), "refused with a subscriber: probes");
    coherence_subscriber(&c, -1, 0);
    cr_expect_not(coherence_wants_tracking(&c), "nothing to redirect to");
}

Test(coherence, counts)
{
    struct coherence c;
    coherence_init(&c, true);
    coherence_subscriber(&c, -1, 0); /* never up: not a loss */
    coherence_subscriber(&c, 5, 0);
    coherence_reply(&c, 5, GONE, strlen(GONE), 0);
    coherence_subscriber(&c, -1, 0);
    coherence_reply(&c, 5, NOPERM, strlen(NOPERM), 0);
    cr_expect_eq(c.losses, 1);
    cr_expect_eq(c.failures, 1);
    cr_expect_eq(c.refusals, 1);
    cr_expect_str_eq(coherence_state_name(c.state), "refused");
}

/* coherence.c - the tier's coherence state machine: a transition table. */
#include "proxy/cache/coherence.h"

#include <string.h>
#include <strings.h>

typedef enum {
    EV_UP = 0,
    EV_LOST,
    EV_ACCEPTED,
    EV_REFUSED,
    EV_FAILED,
    EV_COUNT,
} event_e;

struct transition {
    coherence_state_e next;
    unsigned actions;
};

/* clang-format off */
#define T(state, actions) {COHERENCE_##state, (actions)}
#define STAY(state)       {COHERENCE_##state, 0}

/* TRANSITIONS[state][event]; the header draws the same table. */
static const struct transition TRANSITIONS[][EV_COUNT] = {
    [COHERENCE_OFF] = {STAY(OFF), STAY(OFF), STAY(OFF), STAY(OFF), STAY(OFF)},
    [COHERENCE_DOWN] = {
        [EV_UP]       = T(ON, COHERENCE_TIER_ON | COHERENCE_TRACK_ALL | COHERENCE_LOG),
        [EV_LOST]     = STAY(DOWN),
        [EV_ACCEPTED] = STAY(DOWN),
        [EV_REFUSED]  = T(REFUSED, COHERENCE_TIER_ON | COHERENCE_LOG),
        [EV_FAILED]   = STAY(DOWN),
    },
    [COHERENCE_ON] = {
        [EV_UP]       = T(ON, COHERENCE_FLUSH | COHERENCE_TRACK_ALL | COHERENCE_LOG),
        [EV_LOST]     = T(DOWN, COHERENCE_TIER_OFF | COHERENCE_LOG),
        [EV_ACCEPTED] = T(ON, COHERENCE_MARK),
        [EV_REFUSED]  = T(REFUSED, COHERENCE_LOG),
        [EV_FAILED]   = T(ON, COHERENCE_RETRY),
    },
    [COHERENCE_REFUSED] = {
        [EV_UP]       = T(REFUSED, COHERENCE_PROBE),
        [EV_LOST]     = STAY(REFUSED),
        [EV_ACCEPTED] = T(ON, COHERENCE_FLUSH | COHERENCE_MARK | COHERENCE_TRACK_ALL |
                              COHERENCE_LOG),
        [EV_REFUSED]  = STAY(REFUSED),
        [EV_FAILED]   = STAY(REFUSED),
    },
};
/* clang-format on */

/* Error replies that say Redis will not track for this proxy: the command
 * is unknown (renamed, disabled, Redis < 6) or its user may not run it.
 * Compared case-insensitively with the start of the reply. */
static const char *const REFUSALS[] = {
    "-NOPERM ",
    "-ERR unknown command",
    "-ERR unknown subcommand",
};

void coherence_init(struct coherence *c, bool tracking)
{
    *c = (struct coherence){.state = tracking ? COHERENCE_DOWN : COHERENCE_OFF, .id = -1};
}

coherence_reply_e coherence_classify(const struct coherence *c, long long sent_id,
                                     const char *reply, size_t len)
{
    if (len >= 3 && reply[0] == '+' && reply[1] == 'O' && reply[2] == 'K')
        return sent_id == c->id && c->id > 0 ? COHERENCE_ACCEPTED : COHERENCE_FAILED;
    for (size_t i = 0; i < sizeof(REFUSALS) / sizeof(*REFUSALS); i++) {
        size_t n = strlen(REFUSALS[i]);
        if (len >= n && strncasecmp(reply, REFUSALS[i], n) == 0)
            return COHERENCE_REFUSED_REPLY;
    }
    return COHERENCE_FAILED;
}

/* Moves to the event's next state; schedules the probe of a refused Redis. */
static unsigned coherence_step(struct coherence *c, event_e ev, uint64_t now_ms)
{
    const struct transition *t = &TRANSITIONS[c->state][ev];
    unsigned actions = t->actions;
    if (t->next == COHERENCE_REFUSED &&
        (c->state != COHERENCE_REFUSED || (actions & COHERENCE_PROBE) != 0))
        c->probe_at_ms = now_ms + COHERENCE_PROBE_MS;
    c->state = t->next;
    return actions;
}

unsigned coherence_subscriber(struct coherence *c, long long id, uint64_t now_ms)
{
    if (c->state == COHERENCE_OFF)
        return 0;
    bool up = id > 0;
    if (!up && c->id > 0)
        c->losses++;
    c->id = up ? id : -1;
    return coherence_step(c, up ? EV_UP : EV_LOST, now_ms);
}

unsigned coherence_reply(struct coherence *c, long long sent_id, const char *reply, size_t len,
                         uint64_t now_ms)
{
    static const event_e EVENTS[] = {
        [COHERENCE_ACCEPTED] = EV_ACCEPTED,
        [COHERENCE_REFUSED_REPLY] = EV_REFUSED,
        [COHERENCE_FAILED] = EV_FAILED,
    };
    if (c->state == COHERENCE_OFF)
        return 0;
    coherence_reply_e kind = coherence_classify(c, sent_id, reply, len);
    c->refusals += kind == COHERENCE_REFUSED_REPLY;
    c->failures += kind == COHERENCE_FAILED;
    return coherence_step(c, EVENTS[kind], now_ms);
}

unsigned coherence_tick(struct coherence *c, uint64_t now_ms)
{
    if (c->state != COHERENCE_REFUSED || c->id <= 0 || now_ms < c->probe_at_ms)
        return 0;
    c->probe_at_ms = now_ms + COHERENCE_PROBE_MS;
    return COHERENCE_PROBE;
}

bool coherence_may_fill(const struct coherence *c, long long tracked_id)
{
    switch (c->state) {
    case COHERENCE_OFF:
    case COHERENCE_REFUSED:
        return true;
    case COHERENCE_ON:
        return c->id > 0 && tracked_id == c->id;
    case COHERENCE_DOWN:
        break;
    }
    return false;
}

bool coherence_wants_tracking(const struct coherence *c)
{
    return c->id > 0 && (c->state == COHERENCE_ON || c->state == COHERENCE_REFUSED);
}

const char *coherence_state_name(coherence_state_e state)
{
    static const char *const NAMES[] = {
        [COHERENCE_OFF] = "off",
        [COHERENCE_DOWN] = "down",
        [COHERENCE_ON] = "on",
        [COHERENCE_REFUSED] = "refused",
    };
    return NAMES[state];
}

/* coherence.h - whether the local tier may serve, as one state machine.
 *
 * The tier is coherent with Redis while Redis reports every write to it:
 * an invalidation subscriber is up (tracking.h) and each shared connection
 * that fills the tier runs CLIENT TRACKING redirected to that subscriber.
 * Four states:
 *
 *   OFF      tracking is off in the settings: the tier serves, and a write
 *            made elsewhere is seen within cache.ttl (TTL-bounded).
 *   DOWN     no subscriber: invalidations may be missed, so the tier is
 *            flushed and off. The start state when tracking is on.
 *   ON       subscriber up: the tier serves, and fills only from the
 *            connections whose tracking redirects to the current subscriber.
 *   REFUSED  Redis answered CLIENT TRACKING with a definitive refusal (the
 *            command is unknown or not permitted): TTL-bounded, as OFF, and
 *            probed again every COHERENCE_PROBE_MS and whenever the
 *            subscriber or a shared connection comes back.
 *
 * Events and transitions (anything not listed changes nothing):
 *
 *   DOWN    --subscriber up-->    ON       tier on; track every connection
 *   ON      --subscriber lost-->  DOWN     tier flushed and off
 *   ON      --subscriber up-->    ON       tier flushed; track again
 *   ON      --failed-->           ON       that connection is tracked again later
 *   DOWN/ON --refused-->          REFUSED  tier on, TTL-bounded; probe later
 *   REFUSED --subscriber up-->    REFUSED  probe at once
 *   REFUSED --accepted-->         ON       tier flushed (its entries were
 *                                          filled untracked); track every
 *                                          connection
 *
 * A reply to CLIENT TRACKING is "accepted" only when it is +OK for the
 * current subscriber; "refused" only for an unknown-command or permission
 * error; anything else ("the client ID you want redirect to does not exist"
 * after the subscriber died, the proxy's own "upstream timeout" or
 * "connection lost", a prefix error) is "failed": an attempt to retry that
 * never lowers coherence.
 *
 * Pure: no clock, no I/O. The caller passes the time and carries out the
 * actions each event returns.
 */
#ifndef NEARCACHE_COHERENCE_H
#define NEARCACHE_COHERENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How often a refused Redis is asked again. */
#define COHERENCE_PROBE_MS 2000

typedef enum {
    COHERENCE_OFF = 0,
    COHERENCE_DOWN,
    COHERENCE_ON,
    COHERENCE_REFUSED,
} coherence_state_e;

typedef enum {
    COHERENCE_ACCEPTED = 0, /* +OK for the current subscriber */
    COHERENCE_REFUSED_REPLY,
    COHERENCE_FAILED,
} coherence_reply_e;

/* Actions, a bit set returned by the event functions, in the order the
 * caller carries them out. */
enum {
    COHERENCE_FLUSH = 1 << 0,     /* flush the tier */
    COHERENCE_TIER_OFF = 1 << 1,  /* flush the tier and stop serving from it */
    COHERENCE_TIER_ON = 1 << 2,   /* serve from the tier */
    COHERENCE_MARK = 1 << 3,      /* the replying connection is now tracked */
    COHERENCE_RETRY = 1 << 4,     /* track the replying connection again later */
    COHERENCE_TRACK_ALL = 1 << 5, /* send CLIENT TRACKING on every shared connection */
    COHERENCE_PROBE = 1 << 6,     /* send CLIENT TRACKING on one shared connection */
    COHERENCE_LOG = 1 << 7,       /* the state changed: log it */
};

struct coherence {
    coherence_state_e state;
    long long id;         /* the subscriber's client id, -1 unless up */
    uint64_t probe_at_ms; /* REFUSED: when to probe next */
    uint64_t losses;      /* subscriber losses */
    uint64_t refusals;    /* definitive refusals of CLIENT TRACKING */
    uint64_t failures;    /* failed attempts (retried) */
};

/* Starts in DOWN when tracking is on, else OFF. */
void coherence_init(struct coherence *c, bool tracking);

/* Classifies a reply (raw RESP bytes) to CLIENT TRACKING on ... REDIRECT
 * sent_id: +OK for an id that is no longer the current one is a failure. */
coherence_reply_e coherence_classify(const struct coherence *c, long long sent_id,
                                     const char *reply, size_t len);

/* The subscriber came up with id (> 0) or was lost (id -1). Returns actions. */
unsigned coherence_subscriber(struct coherence *c, long long id, uint64_t now_ms);

/* A reply to CLIENT TRACKING ... REDIRECT sent_id arrived. Returns actions. */
unsigned coherence_reply(struct coherence *c, long long sent_id, const char *reply, size_t len,
                         uint64_t now_ms);

/* Called periodically: COHERENCE_PROBE when a refused Redis is due to be
 * asked again (the next probe is then scheduled), else 0. */
unsigned coherence_tick(struct coherence *c, uint64_t now_ms);

/* True when reads on a connection whose tracking redirects to tracked_id
 * (0: none) may fill the tier. */
bool coherence_may_fill(const struct coherence *c, long long tracked_id);

/* True when connections should run CLIENT TRACKING (ON, or REFUSED with a
 * subscriber to redirect to: a probe). */
bool coherence_wants_tracking(const struct coherence *c);

/* "off", "down", "on" or "refused". */
const char *coherence_state_name(coherence_state_e state);

#endif

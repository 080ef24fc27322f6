/* observe.h - what the proxy sees of its traffic: the hottest keys.
 *
 * Each worker samples about one request in hotkeys.sample (the gap to the
 * next one drawn at random, so that no periodic pattern of requests can
 * hide from it) and counts the keys of each sampled request, as a read or a
 * write and, for a read, whether the tier answered it, in a Space-Saving
 * summary of its own (hotkeys.h). An unsampled request costs a decrement
 * and a branch. NEARCACHE HOTKEYS and the admin endpoint's /hotkeys merge
 * the workers' summaries and scale the counts by the sampling rate.
 */
#ifndef NEARCACHE_OBSERVE_H
#define NEARCACHE_OBSERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/cache/hotkeys.h"

struct worker;
struct request;

#define OBSERVE_TOP_MAX 1000 /* most keys one answer lists */

/* A worker's sampling state. */
struct observe {
    struct hotkeys *keys; /* the summary (made at setup, whatever the rate) */
    uint32_t skip;        /* requests until the next sample */
    uint32_t rate;        /* hotkeys.sample when keys was last cleared */
    uint64_t rng;
    uint64_t sampled; /* requests sampled */
};

/* The gap to a sample after this one, in events: 1 to 2 * rate - 1, rate on
 * average, drawn from *rng (xorshift64); none (the largest gap) for rate 0.
 * The audit (audit.h) samples hits the same way. */
static inline uint32_t observe_gap(uint64_t *rng, uint32_t rate)
{
    if (rate == 0)
        return UINT32_MAX;
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    return 1 + (uint32_t)(*rng % (2 * (uint64_t)rate - 1));
}

/* Sets up w's sampling from w->cfg. Returns 0, or -1 when out of memory. */
int observe_setup(struct worker *w);

/* Frees what observe_setup made. */
void observe_teardown(struct worker *w);

/* After a reload: a changed hotkeys.sample empties the summary (its counts
 * were sampled at the old rate) and applies from the next request. */
void observe_reload(struct worker *w);

/* Counts the keys of rq (hit: the tier answered it); nothing for a request
 * whose keys cannot be told (an unknown command). */
void observe_sample(struct worker *w, struct request *rq, bool hit);

/* On every request: samples it now and then. */
static inline void observe_request(struct observe *o, struct worker *w, struct request *rq,
                                   bool hit)
{
    if (__builtin_expect(--o->skip == 0, 0))
        observe_sample(w, rq, hit);
}

/* NEARCACHE HOTKEYS [n] (n capped at OBSERVE_TOP_MAX): a RESP array of [key, reads, writes, hits,
 * error] arrays, hottest first, in a malloc'd buffer of *len bytes; NULL when out of memory. */
char *observe_hotkeys_reply(struct worker *w, size_t n, size_t *len);

/* GET /hotkeys?n=N: {"sample": rate, "keys": [{"key", "reads", "writes",
 * "hits", "error"}, ...]} as malloc'd JSON text; NULL when out of memory.
 * A key's bytes are shown as redis-cli shows them (text.h). */
char *observe_hotkeys_json(struct worker *w, size_t n);

#endif

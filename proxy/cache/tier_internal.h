/* tier_internal.h - the local tier's structures, shared by tier.c and its
 * self-check tier_check.c. Not for other modules: they use tier.h.
 */
#ifndef NEARCACHE_TIER_INTERNAL_H
#define NEARCACHE_TIER_INTERNAL_H

#include "proxy/cache/sketch.h"
#include "proxy/cache/table.h"
#include "proxy/cache/tier.h"

typedef enum {
    TIER_SEG_WINDOW,    /* admission window: plain LRU, 1% of the budget */
    TIER_SEG_PROBATION, /* main space, not hit since admission: 20% of main */
    TIER_SEG_PROTECTED, /* main space, hit while in probation: 80% of main */
    TIER_SEG_COUNT,
    TIER_SEG_FLUSHED = TIER_SEG_COUNT, /* the list of flushed entries not yet freed */
    TIER_LISTS,
    TIER_SEG_NONE = TIER_LISTS, /* in no list: being moved between segments */
} tier_seg_e;

typedef enum {
    TIER_DROP_EVICT,
    TIER_DROP_EXPIRE,
    TIER_DROP_INVALIDATE,
    TIER_DROP_REPLACE
} tier_drop_e;

/* One cached variant; data holds the key, the variant, then the reply.
 * 40 bytes: no hash chain link (the table holds the pointers) and no hash.
 * A flushed entry is in the flushed list only, in no segment and not in the
 * table. */
struct tier_entry {
    struct tier_entry *prev; /* towards the head (most recent) of its list */
    struct tier_entry *next; /* towards the tail (least recent) */
    uint64_t expire_at_ms;   /* 0 = never */
    uint32_t klen;
    uint32_t vlen;
    uint32_t rlen;
    uint16_t db;
    uint8_t seg : 3;  /* tier_seg_e; stale in the flushed list, which is its own */
    uint8_t used : 1; /* hit since it was last placed in its segment */
    uint8_t full;     /* tier_full_mark when its hash's counters were last seen saturated */
    char data[];
};

struct tier_list {
    struct tier_entry *head;
    struct tier_entry *tail;
    size_t bytes;
    size_t count;
};

/* The identity of a request, as passed in. */
struct tier_id {
    int db;
    const char *key;
    size_t klen;
    const char *variant;
    size_t vlen;
};

struct tier {
    struct tier_stats stats;
    struct table table;
    struct tier_list seg[TIER_LISTS]; /* the segments, then the flushed list */
    struct sketch sketch;
    uint64_t *inv_seq;    /* per invalidation bucket: seq of the last invalidation */
    uint32_t *pending;    /* per key hash bucket (any db): writes in flight */
    uint32_t pending_all; /* writes in flight whose keys are not known */
    size_t inv_mask;
    uint64_t seq;       /* bumped by every invalidation and flush */
    uint64_t flush_seq; /* seq of the last flush_db or flush_all */
    size_t max_entry_bytes;
    size_t expire_cursor;              /* next bucket tier_expire_some() examines */
    const struct tier_entry *incoming; /* the entry tier_put() is storing */
    bool incoming_dropped;             /* set when eviction chose it */
};

uint64_t tier_entry_hash(const struct tier_entry *e);
size_t tier_cost(const struct tier_entry *e);
bool tier_same_key(const struct tier_entry *e, int db, const char *key, size_t klen);

#endif

/* cache.h - the local tier's place in the request path.
 *
 * For each request the proxy forwards, the cache decides what it means for
 * the tier: a write invalidates the keys it touches before it is forwarded
 * and again when its reply arrives (so that a read racing it on another
 * connection cannot leave a stale entry behind), and while it is in flight
 * its keys are neither served nor filled (so that nobody, its sender least
 * of all, reads the value it replaces once it was sent); a cacheable read is answered
 * from the tier, or forwarded with a PTTL behind it so that its reply can
 * fill the tier with an expiry no later than the key's own. Pure: no I/O.
 */
#ifndef NEARCACHE_CACHE_H
#define NEARCACHE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/proto/request.h"
#include "proxy/cache/tier.h"

struct config;
struct cache;
struct policy;

/* A read in flight whose reply may fill the tier (fill.h). */
struct cache_fill;

/* The keys of a write in flight, invalidated again when it completes. */
struct cache_keys;

/* An MGET split between the tier and Redis (mget.h). */
struct cache_mget;

/* What to do with one request. */
struct cache_plan {
    bool hit;                  /* answer with view, forward nothing */
    struct tier_view view;     /* the cached reply when hit */
    struct cache_fill *fill;   /* forward, then its PTTL (fill.h) to fill; owned */
    struct cache_fill *join;   /* forward nothing: join this read in flight (fill.h); borrowed */
    struct cache_keys *writes; /* keys to invalidate again on completion; owned */
    struct cache_mget *mget;   /* forward its request instead, then its PTTLs; owned */
};

/* What the caches of every worker share: the tier (cfg's cache.* size, none
 * when cache.enabled is off) and the databases it holds entries of. shared:
 * more than one worker uses it at once, so the tier is split by key into
 * shards (up to 16, each at least four cache.max_entry large), each behind a
 * lock of its own that the functions below take while they use it; a hit is
 * copied out of its shard before the lock is let go. Otherwise one shard and
 * no lock. NULL on ENOMEM. */
struct cache_store;
struct cache_store *cache_store_create(const struct config *cfg, bool shared);

/* Frees the store and its tier; *s is set to NULL. Accepts NULL and *s NULL. */
void cache_store_destroy(struct cache_store **s);

/* Creates one worker's cache over store (borrowed, outliving it) for cfg's
 * cache.* settings, using policy (a built one, borrowed and outliving it)
 * for the cache and invalidation rules. It starts inactive. NULL on ENOMEM.
 *
 * Every stored entry records the cache rule it was filled under (index and
 * fingerprint) and the invalidation stamps of its key: a hit on an entry
 * whose rule has since changed, or that an invalidation rule has voided, is
 * dropped and answered as a miss. */
struct cache *cache_create(const struct config *cfg, struct policy *policy,
                           struct cache_store *store);

/* After a reload: takes cache.ttl from cfg and policy as the rules from now
 * on (borrowed; the previous one may be destroyed once this returns).
 * Entries filled under rules that changed are no longer served. */
void cache_reload(struct cache *c, const struct config *cfg, struct policy *policy);

/* The key prefixes of cache.tracking_prefixes (BCAST tracking), i < count:
 * only keys under one of them are served and filled. count 0: any key. */
size_t cache_prefix_count(const struct cache *c);
const char *cache_prefix(const struct cache *c, size_t i);

/* Frees the cache (not its store); *c is set to NULL. */
void cache_destroy(struct cache **c);

/* Turns serving and filling on or off (off while invalidations could be
 * missed, e.g. while the tracking subscriber is down); turning it off
 * empties the tier. */
void cache_set_active(struct cache *c, bool active);

/* Decides for one complete multibulk request (an unknown command: nothing is
 * done; its keys are found here if they were not yet). serve is the lane of
 * the shared upstream connection it goes to, the only place reads are served
 * and filled from (NULL: elsewhere). Writes are invalidated here, whatever
 * the connection, in every database, and fire the invalidation rules; until
 * plan->writes is done, their keys are not served or filled (tier_write_begin). */
void cache_plan(struct cache *c, struct request *r, const struct lane *serve, uint64_t now_ms,
                struct cache_plan *plan);

/* Chains the keys of src to *dst (which may be NULL); *src is set to NULL.
 * For a transaction: its writes complete with EXEC. */
void cache_writes_merge(struct cache_keys **dst, struct cache_keys **src);

/* Invalidates the keys of a completed (or failed) write again, ends their
 * time in flight and frees them. */
void cache_writes_done(struct cache *c, struct cache_keys **k);

/* Drops everything (a tracked connection was lost, or Redis said so). */
void cache_flush(struct cache *c);

/* Drops one key (in every database: Redis's invalidations name no
 * database), as invalidated by Redis, and fires the invalidation rules
 * on it (every rule whose source matches: the command is not known). */
void cache_invalidate(struct cache *c, const char *key, size_t len, uint64_t now_ms);

/* The tier's invalidation sequence for key now (0 without a tier), and
 * whether key (in db) may have been invalidated or written since seq (true
 * without a tier): for the audit (audit.h). */
uint64_t cache_key_seq(struct cache *c, const char *key, size_t klen);
bool cache_key_changed(struct cache *c, int db, const char *key, size_t klen, uint64_t seq);

/* NEARCACHE INVALIDATE: from now on no entry whose key matches the pattern
 * text[0..len) (policy/pattern.h) and that was filled before is served; no
 * entry is visited (each hit compares a generation, and matches only the
 * patterns that came after it was filled). The last CACHE_SWEEPS_MAX
 * patterns are kept; one more empties the tier instead. Call with the other
 * workers stopped. Returns 0, or -1 with the pattern's error in why. */
int cache_invalidate_pattern(struct cache *c, const char *text, size_t len, char *why,
                             size_t whylen);

/* Reclaims expired entries, a bounded amount per call. With log_checks
 * (NEARCACHE_DEBUG=1), then verifies the tier (tier_check): on a violation,
 * logs it (crit) and aborts. */
void cache_tick(struct cache *c, uint64_t now_ms);

/* Why entries left the tier other than by eviction or expiry. */
typedef enum {
    CACHE_DROP_WRITE = 0, /* a write through the proxy */
    CACHE_DROP_TRACKING,  /* an invalidation from Redis */
    CACHE_DROP_RULE,      /* a rule change or an invalidation rule voided it */
    CACHE_DROP_FLUSH,     /* the whole tier was dropped */
    CACHE_DROP_CAUSES,
} cache_drop_e;

/* What the tier has done and holds. */
struct cache_figures {
    bool enabled, active;
    uint64_t hits, misses; /* lookups; hits on voided entries count as misses */
    uint64_t bypassed, fills, fills_refused, fills_rejected, fills_joined;
    uint64_t evictions, expirations, flushes;
    uint64_t invalidated_keys, invalidated_entries; /* keys and entries dropped by name */
    uint64_t dropped[CACHE_DROP_CAUSES];            /* entries, by cause */
    size_t entries, keys, bytes, max_bytes;
};

/* The tier's figures and c's own counters. */
void cache_figures(struct cache *c, struct cache_figures *out);

/* Adds another worker's own counters to out (the tier's are counted once,
 * by cache_figures). */
void cache_figures_add(const struct cache *c, struct cache_figures *out);

/* Writes the figures as "name:value" lines into buf (at most len bytes,
 * NUL-terminated). Returns the length written. */
size_t cache_stats(const struct cache_figures *f, char *buf, size_t len);

#endif

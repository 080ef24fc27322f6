/* internal.h - what the modules of proxy/cache share: the cache itself and
 * the steps one module takes for another. Not for use outside proxy/cache/.
 */
#ifndef NEARCACHE_CACHE_INTERNAL_H
#define NEARCACHE_CACHE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proxy/cache/cache.h"
#include "proxy/cache/entry.h"

#define CACHE_DBS_MAX        64  /* databases the tier holds entries of */
#define CACHE_FLIGHT_BUCKETS 256 /* the table of reads in flight that others may join */

#define CACHE_SHARDS_MAX 16 /* shards of a shared tier, each with a lock of its own */
#define CACHE_SWEEPS_MAX 64 /* patterns dropped by NEARCACHE INVALIDATE still checked on hits */

struct pattern;

/* A pattern NEARCACHE INVALIDATE dropped: entries filled before gen whose
 * key matches it are no longer served. */
struct cache_sweep {
    struct pattern *pattern;
    uint32_t gen;
};

/* A part of the tier: the keys whose hash falls in it (cache_shard_of). */
struct cache_shard {
    pthread_mutex_t lock; /* when the store is shared */
    struct tier *tier;
};

/* What the caches of every worker share (cache.h). */
struct cache_store {
    struct cache_shard *shards; /* nshards; none when cache.enabled is off */
    size_t nshards;             /* a power of two: 1 unless shared */
    bool locking;               /* shared: the shards' locks are taken */
    int dbs[CACHE_DBS_MAX];     /* the databases filled so far: a key is dropped in each */
    size_t ndbs;                /* grows under dbs_lock; read with acquire */
    pthread_mutex_t dbs_lock;
    /* NEARCACHE INVALIDATE: changed with the other workers stopped, read
     * on hits. An entry records sweep_gen when its read is sent. */
    struct cache_sweep sweeps[CACHE_SWEEPS_MAX];
    size_t nsweeps;
    uint32_t sweep_gen; /* the last sweep's gen; 0: none yet */
};

/* One worker's: its reads in flight, counters and buffers. */
struct cache {
    struct cache_store *store;
    struct tier *tier;        /* the held shard's (the only one's without locking); NULL: off */
    struct cache_shard *held; /* the shard whose lock this worker holds */
    bool locking;             /* the store's */
    struct policy *policy;
    uint64_t ttl_ms;
    bool absent_kept; /* a read of a key that does not exist fills (not on a cluster: a key
                         migrated to another node is not invalidated when it is created
                         there) */
    bool active;
    uint64_t bypassed; /* reads not served because the tier was inactive */
    uint64_t stale;    /* tier hits on entries a rule change or an invalidation rule voided */
    uint64_t flushes;
    char *prefixes; /* cache.tracking_prefixes, split by config_list_split */
    size_t nprefixes;
    char *scratch; /* replies built here (MGET), valid until the next call */
    size_t scratch_len;
    size_t scratch_cap;
    struct entry_buf raw;  /* a hit's decompressed reply, valid until the next call */
    struct entry_buf pack; /* an entry being stored */
    struct cache_fill *flights[CACHE_FLIGHT_BUCKETS]; /* reads in flight, by identity hash */
    uint64_t joined;                                  /* reads that joined one in flight */
    uint64_t dropped[CACHE_DROP_CAUSES];              /* entries, by why */
};

/* The shard of key (the hash is one of its own, so that the tier's buckets
 * within a shard stay spread) (store.c). */
struct cache_shard *cache_shard_of(const struct cache_store *s, const char *key, size_t klen);

/* Holds the lock of key's shard, whose tier c->tier is until
 * cache_release: every use of the tier is between the two. Nothing to do
 * without locking (one shard, c->tier fixed) or without a tier. */
static inline void cache_hold_key(struct cache *c, const char *key, size_t klen)
{
    if (!c->locking || c->tier == NULL)
        return;
    c->held = cache_shard_of(c->store, key, klen);
    pthread_mutex_lock(&c->held->lock);
    c->tier = c->held->tier;
}

/* The same for shard i (i < c->store->nshards): to go through all of them. */
static inline void cache_hold_shard(struct cache *c, size_t i)
{
    if (!c->locking || c->tier == NULL)
        return;
    c->held = &c->store->shards[i];
    pthread_mutex_lock(&c->held->lock);
    c->tier = c->held->tier;
}

static inline void cache_release(struct cache *c)
{
    if (c->locking && c->tier != NULL)
        pthread_mutex_unlock(&c->held->lock);
}

/* The number of databases the tier holds entries of: c->store->dbs[i] for
 * i below it are set. */
static inline size_t cache_ndbs(const struct cache *c)
{
    return __atomic_load_n(&c->store->ndbs, __ATOMIC_ACQUIRE);
}

/* Whether tracking covers key: any key in default mode, else keys under a
 * prefix. */
static inline bool cache_key_tracked(const struct cache *c, const char *key, size_t len)
{
    if (c->nprefixes == 0)
        return true;
    const char *p = c->prefixes;
    for (size_t i = 0; i < c->nprefixes; i++, p += strlen(p) + 1) {
        size_t n = strlen(p);
        if (n <= len && memcmp(key, p, n) == 0)
            return true;
    }
    return false;
}

/* The separator between a variant's command name and the rest of its
 * request: the protocol of the reply (RESP2 and RESP3 replies differ). */
static inline char cache_variant_sep(const struct lane *lane)
{
    return lane->resp == 3 ? '\3' : '\0';
}

/* Whether an entry of key filled at sweep generation gen (cache_store's
 * sweep_gen then) was dropped by NEARCACHE INVALIDATE since: one compare
 * unless a sweep came after it (store.c). */
bool cache_swept_since(const struct cache_store *s, uint32_t gen, const char *key, size_t klen);

static inline bool cache_swept(const struct cache_store *s, uint32_t gen, const char *key,
                               size_t klen)
{
    return gen != s->sweep_gen && cache_swept_since(s, gen, key, klen);
}

/* Looks up (lane's db, key, variant) where the variant is the command's
 * name, the lane's protocol separator and the rest of its request after the
 * key, its first argument: "get\0" for GET k in RESP2, "hget\0$1\r\nf\r\n"
 * for HGET k f, whatever the case the client spelled the command in. (The
 * key is not stored twice: for a GET of a 16-byte key, 23 bytes less an
 * entry, and a GET hit 1,097 -> 1,088 instructions.) A hit is counted on its
 * rule and left in *out (cache.c). */
bool cache_lookup(struct cache *c, const struct lane *lane, const char *key, size_t klen,
                  const char *name, size_t namelen, const char *rest, size_t restlen,
                  uint64_t now_ms, struct tier_view *out);

/* A fill for (key, variant as in cache_lookup()), with its PTTL request, if
 * the key's cache rule caches and admits it; the read is counted as a miss
 * either way. NULL otherwise or when out of memory (fill.c). */
struct cache_fill *cache_fill_create(struct cache *c, const struct lane *lane, const char *key,
                                     size_t klen, const char *name, const char *rest,
                                     size_t restlen, uint64_t now_ms);

/* The read in flight of (lane's db, key, variant as in cache_lookup()) that
 * another may join: sent, not yet answered, and its key not invalidated
 * since; or NULL (fill.c). */
struct cache_fill *cache_fill_find(struct cache *c, const struct lane *lane, const char *key,
                                   size_t klen, const char *name, const char *rest, size_t restlen);

/* Lets identical reads join f until its reply arrives (fill.c). */
void cache_fill_lead(struct cache *c, struct cache_fill *f);

/* Plans an MGET (mget.c): answered at once when every key is a hit (in
 * c's scratch), else split, its misses forwarded with plan->mget. */
void cache_mget_plan(struct cache *c, const struct lane *lane, const char *buf,
                     const struct resp_request *req, uint64_t now_ms, struct cache_plan *plan);

#endif

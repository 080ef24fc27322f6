/* store.c - the tier the workers share: its shards, and what spans them. */
#include <stdlib.h>

#include "config/config.h"
#include "proxy/cache/cache.h"
#include "proxy/cache/internal.h"
#include "policy/pattern.h"
#include "proxy/lib/hash.h"

#define SHARD_SEED        0x9e3779b97f4a7c15ULL /* not the tier's: its buckets stay spread */
#define SHARD_MIN_ENTRIES 4                     /* largest replies a shard holds at least */

/* The number of shards: CACHE_SHARDS_MAX when shared, fewer when a shard
 * would not hold SHARD_MIN_ENTRIES of the largest replies, 1 otherwise. */
static size_t store_shards(const struct config *cfg, bool shared)
{
    size_t n = shared ? CACHE_SHARDS_MAX : 1;
    while (n > 1 &&
           (size_t)cfg->cache_max_memory / n < SHARD_MIN_ENTRIES * (size_t)cfg->cache_max_entry)
        n /= 2;
    return n;
}

struct cache_store *cache_store_create(const struct config *cfg, bool shared)
{
    struct cache_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    pthread_mutex_init(&s->dbs_lock, NULL);
    s->locking = shared;
    if (!cfg->cache_enabled)
        return s;
    size_t n = store_shards(cfg, shared);
    if ((s->shards = calloc(n, sizeof(*s->shards))) == NULL) {
        cache_store_destroy(&s);
        return NULL;
    }
    for (; s->nshards < n; s->nshards++) {
        struct cache_shard *sh = &s->shards[s->nshards];
        sh->tier = tier_create((size_t)cfg->cache_max_memory / n, (size_t)cfg->cache_max_entry);
        if (sh->tier == NULL) {
            cache_store_destroy(&s);
            return NULL;
        }
        pthread_mutex_init(&sh->lock, NULL);
    }
    return s;
}

void cache_store_destroy(struct cache_store **sp)
{
    struct cache_store *s = *sp;
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nshards; i++) {
        tier_destroy(&s->shards[i].tier);
        pthread_mutex_destroy(&s->shards[i].lock);
    }
    free(s->shards);
    for (size_t i = 0; i < s->nsweeps; i++)
        pattern_destroy(&s->sweeps[i].pattern);
    pthread_mutex_destroy(&s->dbs_lock);
    free(s);
    *sp = NULL;
}

struct cache_shard *cache_shard_of(const struct cache_store *s, const char *key, size_t klen)
{
    return &s->shards[hash_murmur64a(key, klen, SHARD_SEED) & (s->nshards - 1)];
}

bool cache_swept_since(const struct cache_store *s, uint32_t gen, const char *key, size_t klen)
{
    struct pattern_capture caps[PATTERN_MAX_CAPTURES];
    for (size_t i = s->nsweeps; i-- > 0 && s->sweeps[i].gen > gen;)
        if (pattern_match(s->sweeps[i].pattern, key, klen, caps))
            return true;
    return false;
}

int cache_invalidate_pattern(struct cache *c, const char *text, size_t len, char *why,
                             size_t whylen)
{
    struct cache_store *s = c->store;
    struct pattern *p = pattern_compile(text, len, why, whylen);
    if (p == NULL)
        return -1;
    if (s->nsweeps == CACHE_SWEEPS_MAX) { /* too many to check on hits: drop everything */
        cache_flush(c);
        for (size_t i = 0; i < s->nsweeps; i++)
            pattern_destroy(&s->sweeps[i].pattern);
        s->nsweeps = 0;
    }
    s->sweeps[s->nsweeps++] = (struct cache_sweep){p, ++s->sweep_gen};
    return 0;
}

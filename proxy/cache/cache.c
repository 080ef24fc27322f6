/* cache.c - the local tier in the request path: serve, fill, invalidate. */
#include "proxy/cache/cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "policy/policy.h"
#include "proxy/cache/fill.h"
#include "proxy/cache/internal.h"
#include "proxy/cache/mget.h"
#include "proxy/lib/buf.h"
#include "proxy/lib/log.h"

#define CACHE_EXPIRE_BUDGET 256 /* entries examined per cache_tick() */
#define CACHE_WHY_MAX       160 /* a reason of tier_check() */

#define CACHE_KEYS_INLINE 64 /* a write's first keys fit here, without a malloc of their own */

/* The keys of writes in flight: each is counted in the tier as written
 * (tier_write_begin) until the write completes; flushes counts the writes
 * whose keys are not known (tier_write_all_begin), which flush the tier. */
struct cache_keys {
    struct cache_keys *next; /* more writes completing with these (a transaction's) */
    unsigned flushes;
    size_t len;
    size_t cap;
    char *data; /* keys, each as a size_t length then its bytes: inline, or malloc'd */
    char inline_data[CACHE_KEYS_INLINE];
};

size_t cache_prefix_count(const struct cache *c)
{
    return c->nprefixes;
}

const char *cache_prefix(const struct cache *c, size_t i)
{
    const char *p = c->prefixes;
    while (i-- > 0)
        p += strlen(p) + 1;
    return p;
}

struct cache *cache_create(const struct config *cfg, struct policy *policy,
                           struct cache_store *store)
{
    struct cache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->store = store;
    c->tier = store->nshards > 0 ? store->shards[0].tier : NULL;
    c->locking = store->locking;
    c->policy = policy;
    c->ttl_ms = (uint64_t)cfg->cache_ttl_ms;
    c->absent_kept = cfg->cluster == NULL;
    if (config_list_split(cfg->cache_tracking ? cfg->cache_tracking_prefixes : NULL, &c->prefixes,
                          &c->nprefixes) < 0) {
        free(c);
        return NULL;
    }
    return c;
}

void cache_destroy(struct cache **cp)
{
    if (*cp == NULL)
        return;
    free((*cp)->scratch);
    entry_buf_free(&(*cp)->raw);
    entry_buf_free(&(*cp)->pack);
    free((*cp)->prefixes);
    free(*cp);
    *cp = NULL;
}

void cache_set_active(struct cache *c, bool active)
{
    if (c->active && !active)
        cache_flush(c);
    c->active = active && c->tier != NULL;
}

void cache_flush(struct cache *c)
{
    for (size_t i = 0; c->tier != NULL && i < c->store->nshards; i++) {
        cache_hold_shard(c, i);
        c->dropped[CACHE_DROP_FLUSH] += tier_stats(c->tier)->entries;
        tier_flush_all(c->tier);
        cache_release(c);
    }
    c->flushes++;
}

void cache_reload(struct cache *c, const struct config *cfg, struct policy *policy)
{
    c->ttl_ms = (uint64_t)cfg->cache_ttl_ms;
    c->policy = policy;
}

/* Drops key in every database the tier has held entries of, counting the
 * entries dropped under cause; its shard is held. */
static void drop_key_held(struct cache *c, const char *key, size_t len, cache_drop_e cause)
{
    size_t ndbs = cache_ndbs(c);
    for (size_t i = 0; c->tier != NULL && i < ndbs; i++)
        c->dropped[cause] += tier_invalidate_key(c->tier, c->store->dbs[i], key, len);
}

void cache_invalidate(struct cache *c, const char *key, size_t len, uint64_t now_ms)
{
    cache_hold_key(c, key, len);
    drop_key_held(c, key, len, CACHE_DROP_TRACKING);
    cache_release(c);
    policy_on_write(c->policy, key, len, NULL, now_ms);
}

/* An empty list of keys, or NULL when out of memory. */
static struct cache_keys *wkeys_create(void)
{
    struct cache_keys *k = malloc(sizeof(*k));
    if (k != NULL)
        *k = (struct cache_keys){.data = k->inline_data, .cap = CACHE_KEYS_INLINE};
    return k;
}

static void wkeys_destroy(struct cache_keys *k)
{
    if (k->data != k->inline_data)
        free(k->data);
    free(k);
}

static int wkeys_add(struct cache_keys *k, const char *key, size_t len)
{
    size_t need = k->len + sizeof(size_t) + len;
    if (need > k->cap && k->data == k->inline_data) {
        char *heap = malloc(need * 2);
        if (heap == NULL)
            return -1;
        memcpy(heap, k->data, k->len);
        k->data = heap;
        k->cap = need * 2;
    }
    if (buf_grow(&k->data, &k->cap, need, 128) < 0)
        return -1;
    memcpy(k->data + k->len, &len, sizeof(size_t));
    memcpy(k->data + k->len + sizeof(size_t), key, len);
    k->len = need;
    return 0;
}

/* k counts one more write whose keys are not known; the tier is flushed. */
static void wkeys_flush(struct cache *c, struct cache_keys *k)
{
    k->flushes++;
    for (size_t i = 0; i < c->store->nshards; i++) {
        cache_hold_shard(c, i);
        tier_write_all_begin(c->tier);
        cache_release(c);
    }
    cache_flush(c);
}

/* Drops the keys a write writes and fires the invalidation rules on them;
 * keeps them in k, in flight (NULL: not kept). False when they cannot be
 * told. */
static bool write_keys(struct cache *c, struct request *r, uint64_t now_ms, struct cache_keys *k)
{
    int n = request_keys(r);
    for (int i = 0; i < n; i++) {
        struct resp_view key = r->keys->views[i];
        const char *kb = r->buf + key.off;
        if (!(r->keys->flags[i] & KEYS_KEY_WRITES))
            continue;
        bool kept = k != NULL && k->flushes == 0 && wkeys_add(k, kb, key.len) == 0;
        cache_hold_key(c, kb, key.len);
        drop_key_held(c, kb, key.len, CACHE_DROP_WRITE);
        if (kept)
            tier_write_begin(c->tier, kb, key.len);
        cache_release(c);
        policy_on_write(c->policy, kb, key.len, r->cmd->name, now_ms);
        if (k != NULL && k->flushes == 0 && !kept)
            wkeys_flush(c, k);
    }
    return n >= 0;
}

/* Invalidates what a write touches; returns the keys to invalidate again. */
static struct cache_keys *plan_write(struct cache *c, struct request *r, uint64_t now_ms)
{
    if (c->tier == NULL) { /* nothing to drop, but the rules and modules hear of it */
        if (!policy_empty(c->policy))
            write_keys(c, r, now_ms, NULL);
        return NULL;
    }
    struct cache_keys *k = wkeys_create();
    if (k == NULL) {
        cache_flush(c);
        return NULL;
    }
    if (((r->cmd->traits & COMMAND_FLUSHES) || !write_keys(c, r, now_ms, k)) && k->flushes == 0)
        wkeys_flush(c, k);
    return k;
}

/* Opens a stored entry in *v: checks that the rule it was filled under is
 * unchanged and that no invalidation rule or NEARCACHE INVALIDATE dropped it
 * since (else drops the key and returns false), then leaves *v on the reply. */
static bool hit_open(struct cache *c, const char *key, size_t klen, uint64_t now_ms,
                     struct tier_view *v)
{
    struct entry_head h;
    struct policy_stamp stamps[POLICY_STAMPS_MAX];
    struct tier_view reply;
    bool ok = entry_open(v, &h, stamps, &c->raw, &reply);
    const struct policy_cached *rule = policy_cache_rule_at(c->policy, h.rule);
    if (!ok || rule == NULL || rule->fingerprint != h.fingerprint ||
        !policy_stamps_current(c->policy, stamps, h.nstamps) ||
        cache_swept(c->store, h.sweep, key, klen)) {
        c->stale++;
        drop_key_held(c, key, klen, CACHE_DROP_RULE);
        return false;
    }
    policy_note_read(c->policy, rule, key, klen, true, now_ms);
    *v = reply;
    return true;
}

bool cache_lookup(struct cache *c, const struct lane *lane, const char *key, size_t klen,
                  const char *name, size_t namelen, const char *rest, size_t restlen,
                  uint64_t now_ms, struct tier_view *out)
{
    char stack[256];
    size_t nlen = namelen + 1, vlen = nlen + restlen;
    if (!cache_key_tracked(c, key, klen))
        return false;
    char *v = vlen <= sizeof(stack) ? stack : malloc(vlen);
    if (v == NULL)
        return false;
    /* Most names with their NUL are 4 to 8 bytes: copied inline as two words
     * that may overlap (a GET hit 1,010 -> 998 instructions). */
    if (nlen >= 4 && nlen <= 8) {
        uint32_t head, tail;
        memcpy(&head, name, 4);
        memcpy(&tail, name + nlen - 4, 4);
        memcpy(v, &head, 4);
        memcpy(v + nlen - 4, &tail, 4);
    } else {
        memcpy(v, name, nlen);
    }
    v[nlen - 1] = cache_variant_sep(lane);
    if (restlen > 0) /* a GET has nothing after its key: no call */
        memcpy(v + nlen, rest, restlen);
    bool hit = tier_get(c->tier, lane->db, key, klen, v, vlen, now_ms, out);
    if (v != stack)
        free(v);
    return hit && hit_open(c, key, klen, now_ms, out);
}

/* A hit in the tier lives only as long as its shard's lock: copied out. */
static void hit_copy(struct cache *c, struct cache_plan *plan)
{
    c->scratch_len = 0;
    if (buf_grow(&c->scratch, &c->scratch_cap, plan->view.len, 256) == 0) {
        memcpy(c->scratch, plan->view.reply, plan->view.len);
        plan->view.reply = c->scratch;
    } else {
        plan->hit = false; /* out of memory: forwarded */
    }
}

/* A cacheable read: answered from the tier, or given a fill. */
static void plan_read(struct cache *c, const struct lane *lane, struct request *r, uint64_t now_ms,
                      struct cache_plan *plan)
{
    struct resp_view key;
    const struct resp_request *req = r->frame;
    /* Every cacheable command's key is its first argument: what follows it
     * makes the variant (internal.h). */
    if (!request_one_key(r, &key) || req->argc < 2 || req->argv[1].off != key.off)
        return;
    size_t skip = key.off + key.len + 2, restlen = req->len - skip;
    const char *rest = r->buf + skip, *name = r->cmd->name, *kb = r->buf + key.off;
    cache_hold_key(c, kb, key.len);
    if (cache_lookup(c, lane, kb, key.len, name, r->cmd->name_len, rest, restlen, now_ms,
                     &plan->view)) {
        plan->hit = true;
        if (c->locking)
            hit_copy(c, plan);
    } else if ((plan->join = cache_fill_find(c, lane, kb, key.len, name, rest, restlen)) == NULL &&
               (plan->fill =
                    cache_fill_create(c, lane, kb, key.len, name, rest, restlen, now_ms)) != NULL) {
        cache_fill_lead(c, plan->fill);
    }
    cache_release(c);
}

void cache_plan(struct cache *c, struct request *r, const struct lane *serve, uint64_t now_ms,
                struct cache_plan *plan)
{
    memset(plan, 0, sizeof(*plan));
    const struct command *cmd = r->cmd;
    if (cmd == NULL)
        return;
    if (cmd->classes & COMMAND_CLASS_WRITE) {
        plan->writes = plan_write(c, r, now_ms);
        return;
    }
    if (c->tier == NULL || serve == NULL || !(cmd->traits & COMMAND_CACHEABLE))
        return;
    if (!c->active) {
        c->bypassed++;
        return;
    }
    if (cmd->traits & COMMAND_SPLIT)
        cache_mget_plan(c, serve, r->buf, r->frame, now_ms, plan);
    else
        plan_read(c, serve, r, now_ms, plan);
}

uint64_t cache_key_seq(struct cache *c, const char *key, size_t klen)
{
    if (c->tier == NULL)
        return 0;
    cache_hold_key(c, key, klen);
    uint64_t seq = tier_seq(c->tier);
    cache_release(c);
    return seq;
}

bool cache_key_changed(struct cache *c, int db, const char *key, size_t klen, uint64_t seq)
{
    if (c->tier == NULL)
        return true;
    cache_hold_key(c, key, klen);
    bool changed = tier_changed_since(c->tier, db, key, klen, seq);
    cache_release(c);
    return changed;
}

void cache_writes_merge(struct cache_keys **dst, struct cache_keys **src)
{
    struct cache_keys **tail = dst;
    while (*tail != NULL)
        tail = &(*tail)->next;
    *tail = *src;
    *src = NULL;
}

void cache_writes_done(struct cache *c, struct cache_keys **kp)
{
    struct cache_keys *k = *kp;
    if (k == NULL)
        return;
    *kp = NULL;
    while (k != NULL) {
        struct cache_keys *next = k->next;
        for (size_t off = 0; off < k->len;) {
            size_t len;
            const char *key = k->data + off + sizeof(size_t);
            memcpy(&len, k->data + off, sizeof(size_t));
            cache_hold_key(c, key, len);
            drop_key_held(c, key, len, CACHE_DROP_WRITE);
            tier_write_end(c->tier, key, len);
            cache_release(c);
            off += sizeof(size_t) + len;
        }
        if (k->flushes > 0)
            cache_flush(c);
        for (size_t i = 0; k->flushes > 0 && i < c->store->nshards; i++) {
            cache_hold_shard(c, i);
            for (unsigned f = 0; f < k->flushes; f++)
                tier_write_all_end(c->tier);
            cache_release(c);
        }
        wkeys_destroy(k);
        k = next;
    }
}

void cache_tick(struct cache *c, uint64_t now_ms)
{
    char why[CACHE_WHY_MAX];
    int bad = 0;
    for (size_t i = 0; c->tier != NULL && i < c->store->nshards && bad == 0; i++) {
        cache_hold_shard(c, i);
        tier_expire_some(c->tier, now_ms, CACHE_EXPIRE_BUDGET);
        bad = log_checks ? tier_check(c->tier, why, sizeof(why)) : 0;
        cache_release(c);
    }
    if (bad < 0) {
        log_crit("tier_check_failed", "local tier: {reason=%s}", why);
        abort();
    }
}

/* Adds a shard's figures to sum. */
static void stats_add(struct tier_stats *sum, const struct tier_stats *s)
{
    sum->hits += s->hits;
    sum->misses += s->misses;
    sum->fills += s->fills;
    sum->fills_refused += s->fills_refused;
    sum->fills_rejected += s->fills_rejected;
    sum->evictions += s->evictions;
    sum->expirations += s->expirations;
    sum->invalidated_keys += s->invalidated_keys;
    sum->invalidated_entries += s->invalidated_entries;
    sum->entries += s->entries;
    sum->keys += s->keys;
    sum->bytes += s->bytes;
    sum->table_bytes += s->table_bytes;
    sum->max_bytes += s->max_bytes;
}

void cache_figures(struct cache *c, struct cache_figures *out)
{
    struct tier_stats s = {0};
    for (size_t i = 0; c->tier != NULL && i < c->store->nshards; i++) {
        cache_hold_shard(c, i);
        stats_add(&s, tier_stats(c->tier));
        cache_release(c);
    }
    *out = (struct cache_figures){
        .enabled = c->tier != NULL,
        .active = true,
        .hits = s.hits,
        .misses = s.misses,
        .fills = s.fills,
        .fills_refused = s.fills_refused,
        .fills_rejected = s.fills_rejected,
        .evictions = s.evictions,
        .expirations = s.expirations,
        .invalidated_keys = s.invalidated_keys,
        .invalidated_entries = s.invalidated_entries,
        .entries = s.entries,
        .keys = s.keys,
        .bytes = s.bytes,
        .max_bytes = s.max_bytes,
    };
    cache_figures_add(c, out);
}

void cache_figures_add(const struct cache *c, struct cache_figures *out)
{
    out->active = out->active && c->active;
    out->hits -= c->stale;
    out->misses += c->stale;
    out->bypassed += c->bypassed;
    out->fills_joined += c->joined;
    out->flushes += c->flushes;
    for (int i = 0; i < CACHE_DROP_CAUSES; i++)
        out->dropped[i] += c->dropped[i];
}

size_t cache_stats(const struct cache_figures *figures, char *buf, size_t len)
{
    struct cache_figures f = *figures;
    uint64_t lookups = f.hits + f.misses;
    int n = snprintf(buf, len,
                     "cache_enabled:%d\r\ncache_active:%d\r\nhits:%llu\r\nmisses:%llu\r\n"
                     "hit_ratio:%.4f\r\nbypassed:%llu\r\nfills:%llu\r\nfills_refused:%llu\r\n"
                     "fills_rejected:%llu\r\nevictions:%llu\r\nexpirations:%llu\r\n"
                     "invalidated_keys:%llu\r\ninvalidated_entries:%llu\r\n"
                     "invalidated_write:%llu\r\ninvalidated_tracking:%llu\r\n"
                     "invalidated_rule:%llu\r\ninvalidated_flush:%llu\r\nflushes:%llu\r\n"
                     "fills_joined:%llu\r\n"
                     "entries:%zu\r\nkeys:%zu\r\nbytes:%zu\r\nmax_bytes:%zu\r\n",
                     f.enabled, f.active, (unsigned long long)f.hits, (unsigned long long)f.misses,
                     lookups ? (double)f.hits / lookups : 0.0, (unsigned long long)f.bypassed,
                     (unsigned long long)f.fills, (unsigned long long)f.fills_refused,
                     (unsigned long long)f.fills_rejected, (unsigned long long)f.evictions,
                     (unsigned long long)f.expirations, (unsigned long long)f.invalidated_keys,
                     (unsigned long long)f.invalidated_entries,
                     (unsigned long long)f.dropped[CACHE_DROP_WRITE],
                     (unsigned long long)f.dropped[CACHE_DROP_TRACKING],
                     (unsigned long long)f.dropped[CACHE_DROP_RULE],
                     (unsigned long long)f.dropped[CACHE_DROP_FLUSH], (unsigned long long)f.flushes,
                     (unsigned long long)f.fills_joined, f.entries, f.keys, f.bytes, f.max_bytes);
    return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

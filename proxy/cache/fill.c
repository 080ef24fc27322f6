/* fill.c - reads that fill the tier, completed by the PTTL behind them. */
#include "proxy/cache/fill.h"

#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "proxy/cache/internal.h"
#include "proxy/exchange.h"
#include "proxy/lib/hash.h"
#include "proxy/proto/resp_write.h"

struct cache_fill {
    struct cache *cache;
    int db;
    uint64_t since_seq;
    struct entry_head head; /* the rule and stamps as the read was sent */
    struct policy_stamp stamps[POLICY_STAMPS_MAX];
    char *reply; /* copy of the read's reply, NULL until it arrives */
    size_t rlen;
    size_t klen;
    size_t vlen;
    size_t plen;
    uint64_t hash;                  /* of db, key and variant */
    bool leading;                   /* in c->flights: identical reads may join it */
    struct cache_fill *flight_next; /* c->flights' chain */
    struct exchange *joined;        /* the reads joined to it, linked by next */
    char bytes[];                   /* key, variant (the request frame), then the PTTL request */
};

/* The hash of a read's identity: its database, key and variant. */
static uint64_t identity_hash(int db, const char *key, size_t klen, const char *variant,
                              size_t vlen)
{
    uint64_t h = hash_fnv1a64(&db, sizeof(db));
    h = hash_fnv1a64_continue(h, key, klen);
    return hash_fnv1a64_continue(h, variant, vlen);
}

struct cache_fill *cache_fill_find(struct cache *c, const struct lane *lane, const char *key,
                                   size_t klen, const char *name, const char *rest, size_t restlen)
{
    size_t nlen = strlen(name) + 1;
    char sep = cache_variant_sep(lane);
    uint64_t h = hash_fnv1a64(&lane->db, sizeof(lane->db));
    h = hash_fnv1a64_continue(h, key, klen);
    h = hash_fnv1a64_continue(h, name, nlen - 1);
    h = hash_fnv1a64_continue(h, &sep, 1);
    h = hash_fnv1a64_continue(h, rest, restlen);
    for (struct cache_fill *f = c->flights[h % CACHE_FLIGHT_BUCKETS]; f != NULL;
         f = f->flight_next) {
        const char *v = f->bytes + f->klen;
        if (f->hash == h && f->db == lane->db && f->klen == klen && f->vlen == nlen + restlen &&
            memcmp(f->bytes, key, klen) == 0 && memcmp(v, name, nlen - 1) == 0 &&
            v[nlen - 1] == sep && memcmp(v + nlen, rest, restlen) == 0)
            return tier_changed_since(c->tier, f->db, key, klen, f->since_seq) ? NULL : f;
    }
    return NULL;
}

void cache_fill_lead(struct cache *c, struct cache_fill *f)
{
    struct cache_fill **b = &c->flights[f->hash % CACHE_FLIGHT_BUCKETS];
    f->flight_next = *b;
    *b = f;
    f->leading = true;
}

/* Takes f out of c->flights: no read joins it from now on. */
static void fill_unlead(struct cache_fill *f)
{
    if (!f->leading)
        return;
    struct cache_fill **b = &f->cache->flights[f->hash % CACHE_FLIGHT_BUCKETS];
    while (*b != f)
        b = &(*b)->flight_next;
    *b = f->flight_next;
    f->leading = false;
}

void cache_fill_join(struct cache_fill *f, struct exchange *x)
{
    x->next = f->joined;
    f->joined = x;
    f->cache->joined++;
}

/* Answers the joined reads x (linked by next) with data[0, len), or tells
 * them to go on their own (data NULL). */
static void joined_answer(struct exchange *x, const char *data, size_t len, uint64_t now_ms)
{
    while (x != NULL) {
        struct exchange *next = x->next;
        x->next = NULL;
        x->done(x, data, len, now_ms);
        x = next;
    }
}

/* Answers the reads joined to f. f is not touched once the first is
 * answered: what that sets off may end it. */
static void fill_answer(struct cache_fill *f, const char *data, size_t len, uint64_t now_ms)
{
    struct exchange *x = f->joined;
    f->joined = NULL;
    joined_answer(x, data, len, now_ms);
}

/* Records that the tier holds entries of db, so that keys are dropped there
 * too; false when CACHE_DBS_MAX databases are held already. */
static bool fill_db(struct cache *c, int db)
{
    struct cache_store *s = c->store;
    size_t n = cache_ndbs(c);
    for (size_t i = 0; i < n; i++)
        if (s->dbs[i] == db)
            return true;
    pthread_mutex_lock(&s->dbs_lock); /* another worker may add one now */
    bool found = false;
    for (n = s->ndbs; n > 0 && !found; n--)
        found = s->dbs[n - 1] == db;
    if (!found && s->ndbs < CACHE_DBS_MAX) {
        s->dbs[s->ndbs] = db;
        __atomic_store_n(&s->ndbs, s->ndbs + 1, __ATOMIC_RELEASE); /* read without the lock */
        found = true;
    }
    pthread_mutex_unlock(&s->dbs_lock);
    return found;
}

struct cache_fill *cache_fill_create(struct cache *c, const struct lane *lane, const char *key,
                                     size_t klen, const char *name, const char *rest,
                                     size_t restlen, uint64_t now_ms)
{
    const struct policy_cached *rule = policy_cache_rule(c->policy, key, klen);
    policy_note_read(c->policy, rule, key, klen, false, now_ms);
    if (!cache_key_tracked(c, key, klen) || !policy_admit(c->policy, rule, key, klen, now_ms) ||
        !fill_db(c, lane->db))
        return NULL;
    struct policy_stamp stamps[POLICY_STAMPS_MAX];
    size_t nstamps = policy_stamp(c->policy, key, klen, stamps, POLICY_STAMPS_MAX);
    if (nstamps > POLICY_STAMPS_MAX)
        return NULL;
    /* The PTTL's head, then "$<klen>\r\n" (snprintf cost 600 instructions a fill). */
    static const char PTTL[] = "*2\r\n$4\r\nPTTL\r\n";
    char pttl[sizeof(PTTL) + RESP_HEADER_MAX];
    size_t plen = sizeof(PTTL) - 1;
    memcpy(pttl, PTTL, plen);
    plen += resp_write_header(pttl + plen, RESP_HEADER_MAX, '$', (int64_t)klen);
    size_t nlen = strlen(name) + 1;
    struct cache_fill *f = malloc(sizeof(*f) + klen + nlen + restlen + plen + klen + 2);
    if (f == NULL)
        return NULL;
    memset(f, 0, sizeof(*f));
    f->cache = c;
    f->db = lane->db;
    f->since_seq = tier_seq(c->tier);
    f->head = (struct entry_head){rule->fingerprint, c->store->sweep_gen, rule->index, 0,
                                  (uint8_t)nstamps};
    memcpy(f->stamps, stamps, nstamps * sizeof(*stamps));
    f->reply = NULL;
    f->rlen = 0;
    f->klen = klen;
    f->vlen = nlen + restlen;
    f->plen = plen + klen + 2;
    char *p = f->bytes;
    memcpy(p, key, klen);
    memcpy(p += klen, name, nlen);
    p[nlen - 1] = cache_variant_sep(lane);
    memcpy(p += nlen, rest, restlen);
    memcpy(p += restlen, pttl, plen);
    memcpy(p += plen, key, klen);
    memcpy(p + klen, "\r\n", 2);
    f->hash = identity_hash(f->db, key, klen, f->bytes + klen, f->vlen);
    return f;
}

void cache_fill_pttl(const struct cache_fill *f, const char **data, size_t *len)
{
    *data = f->bytes + f->klen + f->vlen;
    *len = f->plen;
}

void cache_fill_reply(struct cache_fill *f, const char *data, size_t len, uint64_t now_ms)
{
    /* An error (the connection lost, a timeout) is the read's own: the
     * joined go on their own connections. */
    struct cache *c = f->cache;
    cache_hold_key(c, f->bytes, f->klen);
    bool fresh = len > 0 && data[0] != '-' &&
                 !tier_changed_since(c->tier, f->db, f->bytes, f->klen, f->since_seq);
    cache_release(c);
    fill_unlead(f);
    if (f->reply == NULL && len > 0 && data[0] != '-' && (f->reply = malloc(len)) != NULL) {
        memcpy(f->reply, data, len);
        f->rlen = len;
    }
    fill_answer(f, fresh ? data : NULL, len, now_ms); /* last: it may end f */
}

/* The remaining TTL from a PTTL reply: >= 0 ms, -1 for none, -2 for no key
 * (the read is kept for cache.ttl), -3 for unusable. */
static int64_t pttl_value(const char *data, size_t len)
{
    if (len < 4 || data[0] != ':')
        return -3;
    char *end;
    long long v = strtoll(data + 1, &end, 10);
    if (*end != '\r' || v < -2)
        return -3;
    return v;
}

void cache_fill_finish(struct cache *c, struct cache_fill *f, const char *data, size_t len,
                       uint64_t now_ms)
{
    int64_t pttl = pttl_value(data, len);
    cache_hold_key(c, f->bytes, f->klen);
    const struct policy_cached *rule = policy_cache_rule_at(c->policy, f->head.rule);
    const char *key = f->bytes;
    bool keep = f->reply != NULL && pttl != -3 && (pttl != -2 || c->absent_kept) && c->active &&
                pttl != 0 && rule != NULL && rule->fingerprint == f->head.fingerprint &&
                (rule->max_entry == 0 || f->rlen <= (size_t)rule->max_entry) &&
                policy_should_cache(c->policy, key, f->klen, f->rlen);
    size_t elen =
        keep ? entry_pack(&c->pack, &f->head, f->stamps, f->reply, f->rlen, rule->compress_over)
             : 0;
    if (elen > 0) {
        uint64_t ttl = policy_ttl(c->policy, rule, key, f->klen, c->ttl_ms, now_ms);
        if (pttl > 0 && (uint64_t)pttl < ttl)
            ttl = (uint64_t)pttl;
        tier_put(c->tier, f->db, key, f->klen, key + f->klen, f->vlen, c->pack.data, elen,
                 now_ms + ttl, f->since_seq, now_ms);
    }
    cache_release(c);
    cache_fill_destroy(&f); /* after: answering the joined may take the lock */
}

void cache_fill_destroy(struct cache_fill **fp)
{
    if (*fp == NULL)
        return;
    struct cache_fill *f = *fp;
    struct exchange *joined = f->joined;
    *fp = NULL;
    fill_unlead(f);
    free(f->reply);
    free(f);
    joined_answer(joined, NULL, 0, 0);
}

/* exchange_done_fn of the PTTL behind a read. */
static void fill_done(struct exchange *x, const char *data, size_t len, uint64_t now_ms)
{
    struct cache_fill *f = x->arg;
    exchange_destroy(&x);
    cache_fill_finish(f->cache, f, data, len, now_ms);
}

struct exchange *cache_fill_exchange(struct cache_fill *f, const char **data, size_t *len)
{
    struct exchange *x = exchange_create(fill_done, f);
    if (x == NULL) {
        cache_fill_destroy(&f);
        return NULL;
    }
    cache_fill_pttl(f, data, len);
    return x;
}

/* cache.c - the local tier in the request path: serve, fill, invalidate. */
#include "proxy/cache/cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lz4.h>

#include "config/config.h"
#include "policy/policy.h"
#include "proxy/exchange.h"
#include "proxy/lib/buf.h"
#include "proxy/proto/args.h"

#define CACHE_EXPIRE_BUDGET 256 /* entries examined per cache_tick() */
#define CACHE_COMPRESSED    1u  /* entry_head.flags: an LZ4 block follows, raw length first */

/* What every stored entry starts with, ahead of its reply: the cache rule it
 * was filled under (stale once that rule changes), and the invalidation
 * stamps it depends on (entry_head.nstamps policy_stamps follow). */
struct entry_head {
    uint32_t fingerprint;
    uint16_t rule;
    uint8_t flags;
    uint8_t nstamps;
};

struct cache {
    struct tier *tier; /* NULL when cache.enabled is off */
    struct policy *policy;
    int db;
    uint64_t ttl_ms;
    bool active;
    uint64_t bypassed; /* reads not served because the tier was inactive */
    uint64_t stale;    /* tier hits on entries a rule change or an invalidation rule voided */
    uint64_t flushes;
    char *prefixes; /* cache.tracking_prefixes, split by config_list_split */
    size_t nprefixes;
    char *scratch; /* replies built here (MGET), valid until the next call */
    size_t scratch_len;
    size_t scratch_cap;
    char *raw; /* a hit's decompressed reply, valid until the next call */
    size_t raw_cap;
    char *pack; /* an entry being stored: head, stamps, reply */
    size_t pack_cap;
};

/* One key of an MGET: a hit's bytes in hits, or a miss fetched from Redis. */
struct mget_slot {
    size_t off; /* hit: offset in hits; miss: index among the misses */
    size_t len; /* hit: length; miss: 0 */
};

struct cache_mget {
    struct cache *cache;
    int refs;
    size_t n;
    size_t nmiss;
    struct mget_slot *slots;
    struct cache_fill **fills; /* one per miss, NULL when it could not be made */
    char *hits;
    size_t hits_len;
    size_t hits_cap;
    char *request; /* MGET of the misses */
    size_t request_len;
    size_t request_cap;
};

struct cache_fill {
    struct cache *cache;
    uint64_t since_seq;
    struct entry_head head; /* the rule and stamps as the read was sent */
    struct policy_stamp stamps[POLICY_STAMPS_MAX];
    char *reply; /* copy of the read's reply, NULL until it arrives */
    size_t rlen;
    size_t klen;
    size_t vlen;
    size_t plen;
    char bytes[]; /* key, variant (the request frame), then the PTTL request */
};

#define CACHE_KEYS_INLINE 64 /* a write's first keys fit here, without a malloc of their own */

struct cache_keys {
    bool flush; /* the write's keys are unknown: flush everything */
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

/* Whether tracking covers key: any key in default mode, else keys under a prefix. */
static bool key_tracked(const struct cache *c, const char *key, size_t len)
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

struct cache *cache_create(const struct config *cfg, struct policy *policy)
{
    struct cache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->policy = policy;
    c->db = cfg->upstream_database;
    c->ttl_ms = (uint64_t)cfg->cache_ttl_ms;
    if (config_list_split(cfg->cache_tracking ? cfg->cache_tracking_prefixes : NULL, &c->prefixes,
                          &c->nprefixes) < 0) {
        free(c);
        return NULL;
    }
    if (cfg->cache_enabled) {
        c->tier = tier_create((size_t)cfg->cache_max_memory, (size_t)cfg->cache_max_entry);
        if (c->tier == NULL) {
            free(c->prefixes);
            free(c);
            return NULL;
        }
    }
    return c;
}

void cache_destroy(struct cache **cp)
{
    if (*cp == NULL)
        return;
    tier_destroy(&(*cp)->tier);
    free((*cp)->scratch);
    free((*cp)->raw);
    free((*cp)->pack);
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
    if (c->tier != NULL)
        tier_flush_all(c->tier);
    c->flushes++;
}

void cache_reload(struct cache *c, const struct config *cfg, struct policy *policy)
{
    c->ttl_ms = (uint64_t)cfg->cache_ttl_ms;
    c->policy = policy;
}

static void drop_key(struct cache *c, const char *key, size_t len)
{
    if (c->tier != NULL)
        tier_invalidate_key(c->tier, c->db, key, len);
}

void cache_invalidate(struct cache *c, const char *key, size_t len, uint64_t now_ms)
{
    drop_key(c, key, len);
    policy_on_write(c->policy, key, len, NULL, now_ms);
}

/* An empty list of keys, or NULL when out of memory. */
static struct cache_keys *keys_create(void)
{
    struct cache_keys *k = malloc(sizeof(*k));
    if (k != NULL)
        *k = (struct cache_keys){.data = k->inline_data, .cap = CACHE_KEYS_INLINE};
    return k;
}

static void keys_destroy(struct cache_keys *k)
{
    if (k->data != k->inline_data)
        free(k->data);
    free(k);
}

static int keys_add(struct cache_keys *k, const char *key, size_t len)
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

/* Drops the keys a write writes and fires the invalidation rules on them;
 * keeps them in k (NULL: not kept). False when they cannot be told. */
static bool write_keys(struct cache *c, struct request *r, uint64_t now_ms, struct cache_keys *k)
{
    int n = request_keys(r);
    for (int i = 0; i < n; i++) {
        struct resp_view key = r->keys->views[i];
        if (!(r->keys->flags[i] & KEYS_KEY_WRITES))
            continue;
        drop_key(c, r->buf + key.off, key.len);
        policy_on_write(c->policy, r->buf + key.off, key.len, r->cmd->name, now_ms);
        if (k != NULL && !k->flush && keys_add(k, r->buf + key.off, key.len) < 0)
            k->flush = true;
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
    struct cache_keys *k = keys_create();
    if (k == NULL) {
        cache_flush(c);
        return NULL;
    }
    if ((r->cmd->traits & COMMAND_FLUSHES) || !write_keys(c, r, now_ms, k))
        k->flush = true;
    if (k->flush)
        cache_flush(c);
    return k;
}

/* Opens a stored entry in *v: checks that the rule it was filled under is
 * unchanged and that no invalidation rule fired on it since (else drops the
 * key and returns false), then leaves *v on the reply, decompressed into
 * c->raw if need be. */
static bool entry_open(struct cache *c, const char *key, size_t klen, uint64_t now_ms,
                       struct tier_view *v)
{
    struct entry_head h;
    struct policy_stamp stamps[POLICY_STAMPS_MAX];
    memcpy(&h, v->reply, sizeof(h));
    size_t off = sizeof(h) + h.nstamps * sizeof(*stamps);
    memcpy(stamps, v->reply + sizeof(h), h.nstamps * sizeof(*stamps));
    const struct policy_cached *rule = policy_cache_rule_at(c->policy, h.rule);
    bool ok = rule != NULL && rule->fingerprint == h.fingerprint &&
              policy_stamps_current(c->policy, stamps, h.nstamps);
    const char *body = v->reply + off;
    size_t blen = v->len - off;
    if (ok && (h.flags & CACHE_COMPRESSED)) {
        uint32_t raw;
        memcpy(&raw, body, sizeof(raw));
        ok = buf_grow(&c->raw, &c->raw_cap, raw, 4096) == 0 &&
             LZ4_decompress_safe(body + sizeof(raw), c->raw, (int)(blen - sizeof(raw)), (int)raw) ==
                 (int)raw;
        body = c->raw;
        blen = raw;
    }
    if (!ok) {
        c->stale++;
        drop_key(c, key, klen);
        return false;
    }
    rule->stats->hits++;
    policy_note_read(c->policy, rule, key, klen, now_ms);
    *v = (struct tier_view){body, blen};
    return true;
}

/* Looks up (key, variant) where the variant is the command's name, a NUL and
 * the rest of its request after the name: "get\0$1\r\nk\r\n" for GET k,
 * whatever the case the client spelled the command in. */
static bool lookup(struct cache *c, const char *key, size_t klen, const char *name,
                   const char *rest, size_t restlen, uint64_t now_ms, struct tier_view *out)
{
    char stack[256];
    size_t nlen = strlen(name) + 1, vlen = nlen + restlen;
    if (!key_tracked(c, key, klen))
        return false;
    char *v = vlen <= sizeof(stack) ? stack : malloc(vlen);
    if (v == NULL)
        return false;
    memcpy(v, name, nlen);
    memcpy(v + nlen, rest, restlen);
    bool hit = tier_get(c->tier, c->db, key, klen, v, vlen, now_ms, out);
    if (v != stack)
        free(v);
    return hit && entry_open(c, key, klen, now_ms, out);
}

/* A fill for (key, variant as in lookup()), with its PTTL request, if the
 * key's cache rule caches and admits it (the read is counted as a miss). */
static struct cache_fill *fill_create(struct cache *c, const char *key, size_t klen,
                                      const char *name, const char *rest, size_t restlen,
                                      uint64_t now_ms)
{
    const struct policy_cached *rule = policy_cache_rule(c->policy, key, klen);
    rule->stats->misses++;
    policy_note_read(c->policy, rule, key, klen, now_ms);
    if (!key_tracked(c, key, klen) || !policy_admit(c->policy, rule, key, klen, now_ms))
        return NULL;
    struct policy_stamp stamps[POLICY_STAMPS_MAX];
    size_t nstamps = policy_stamp(c->policy, key, klen, stamps, POLICY_STAMPS_MAX);
    if (nstamps > POLICY_STAMPS_MAX)
        return NULL;
    char pttl[64];
    int plen = snprintf(pttl, sizeof(pttl), "*2\r\n$4\r\nPTTL\r\n$%zu\r\n", klen);
    size_t nlen = strlen(name) + 1;
    struct cache_fill *f = malloc(sizeof(*f) + klen + nlen + restlen + (size_t)plen + klen + 2);
    if (f == NULL)
        return NULL;
    f->cache = c;
    f->since_seq = tier_seq(c->tier);
    f->head = (struct entry_head){rule->fingerprint, rule->index, 0, (uint8_t)nstamps};
    memcpy(f->stamps, stamps, nstamps * sizeof(*stamps));
    f->reply = NULL;
    f->rlen = 0;
    f->klen = klen;
    f->vlen = nlen + restlen;
    f->plen = (size_t)plen + klen + 2;
    char *p = f->bytes;
    memcpy(p, key, klen);
    memcpy(p += klen, name, nlen);
    memcpy(p += nlen, rest, restlen);
    memcpy(p += restlen, pttl, (size_t)plen);
    memcpy(p += plen, key, klen);
    memcpy(p + klen, "\r\n", 2);
    return f;
}

/* A cacheable read: answered from the tier, or given a fill. */
static void plan_read(struct cache *c, struct request *r, uint64_t now_ms, struct cache_plan *plan)
{
    if (request_keys(r) != 1)
        return;
    struct resp_view key = r->keys->views[0];
    const struct resp_request *req = r->frame;
    size_t skip = req->argv[0].off + req->argv[0].len + 2; /* the name and its CRLF */
    const char *rest = r->buf + skip, *name = r->cmd->name;
    if (lookup(c, r->buf + key.off, key.len, name, rest, req->len - skip, now_ms, &plan->view)) {
        plan->hit = true;
        return;
    }
    plan->fill = fill_create(c, r->buf + key.off, key.len, name, rest, req->len - skip, now_ms);
}

/* Appends to a growing block (len used of cap); false when out of memory. */
static bool bytes_add(char **buf, size_t *len, size_t *cap, const void *data, size_t n)
{
    if (buf_grow(buf, cap, *len + n, 256) < 0)
        return false;
    memcpy(*buf + *len, data, n);
    *len += n;
    return true;
}

/* Appends to the scratch buffer; false when out of memory. */
static bool scratch_add(struct cache *c, const void *data, size_t len)
{
    return bytes_add(&c->scratch, &c->scratch_len, &c->scratch_cap, data, len);
}

/* Looks up each key of an MGET as a GET; the misses become an MGET of their own. */
static struct cache_mget *mget_split(struct cache *c, const char *buf,
                                     const struct resp_request *req, uint64_t now_ms)
{
    struct cache_mget *m = calloc(1, sizeof(*m));
    size_t n = (size_t)req->argc - 1;
    struct resp_args args;
    struct resp_view key;
    resp_args_init(&args, buf, req);
    resp_args_next(&args, &key); /* the name */
    if (m == NULL || (m->slots = calloc(n, sizeof(*m->slots))) == NULL ||
        (m->fills = calloc(n, sizeof(*m->fills))) == NULL) {
        cache_mget_put(&m);
        return NULL;
    }
    m->cache = c;
    m->refs = 1;
    m->n = n;
    bool ok = true;
    for (size_t i = 0; i < n && ok && resp_args_next(&args, &key); i++) {
        struct resp_view arg = resp_args_encoding(key);
        struct tier_view hit;
        if (lookup(c, buf + key.off, key.len, "get", buf + arg.off, arg.len, now_ms, &hit)) {
            m->slots[i] = (struct mget_slot){m->hits_len, hit.len};
            ok = bytes_add(&m->hits, &m->hits_len, &m->hits_cap, hit.reply, hit.len);
            continue;
        }
        m->slots[i] = (struct mget_slot){m->nmiss, 0};
        m->fills[m->nmiss++] =
            fill_create(c, buf + key.off, key.len, "get", buf + arg.off, arg.len, now_ms);
        ok = bytes_add(&m->request, &m->request_len, &m->request_cap, buf + arg.off, arg.len);
    }
    char head[48];
    int h = snprintf(head, sizeof(head), "*%zu\r\n$4\r\nMGET\r\n", m->nmiss + 1);
    if (!ok || !bytes_add(&m->request, &m->request_len, &m->request_cap, head, (size_t)h)) {
        cache_mget_put(&m);
        return NULL;
    }
    /* The header went last: move it to the front. */
    memmove(m->request + h, m->request, m->request_len - (size_t)h);
    memcpy(m->request, head, (size_t)h);
    return m;
}

/* An MGET: all hits are answered at once, else the misses are forwarded. */
static void plan_mget(struct cache *c, const char *buf, const struct resp_request *req,
                      uint64_t now_ms, struct cache_plan *plan)
{
    struct cache_mget *m = mget_split(c, buf, req, now_ms);
    if (m == NULL || m->nmiss > 0) {
        plan->mget = m;
        return;
    }
    char head[32];
    int h = snprintf(head, sizeof(head), "*%zu\r\n", m->n);
    c->scratch_len = 0;
    if (scratch_add(c, head, (size_t)h) && scratch_add(c, m->hits, m->hits_len)) {
        plan->hit = true;
        plan->view = (struct tier_view){c->scratch, c->scratch_len};
    }
    cache_mget_put(&m);
}

void cache_plan(struct cache *c, struct request *r, bool shared, uint64_t now_ms,
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
    if (c->tier == NULL || !shared || !(cmd->traits & COMMAND_CACHEABLE))
        return;
    if (!c->active) {
        c->bypassed++;
        return;
    }
    if (cmd->traits & COMMAND_SPLIT)
        plan_mget(c, r->buf, r->frame, now_ms, plan);
    else
        plan_read(c, r, now_ms, plan);
}

void cache_fill_pttl(const struct cache_fill *f, const char **data, size_t *len)
{
    *data = f->bytes + f->klen + f->vlen;
    *len = f->plen;
}

void cache_fill_reply(struct cache_fill *f, const char *data, size_t len)
{
    if (f->reply != NULL || len == 0 || data[0] == '-')
        return;
    f->reply = malloc(len);
    if (f->reply != NULL) {
        memcpy(f->reply, data, len);
        f->rlen = len;
    }
}

/* The remaining TTL from a PTTL reply: >= 0 ms, -1 for none, -3 for unusable. */
static int64_t pttl_value(const char *data, size_t len)
{
    if (len < 4 || data[0] != ':')
        return -3;
    char *end;
    long long v = strtoll(data + 1, &end, 10);
    if (*end != '\r')
        return -3;
    return v >= 0 ? v : -1; /* -2 (no key): the nil read is cached for cache.ttl */
}

/* Lays out the entry for f's reply in c->pack: its head, its stamps, then
 * the reply, LZ4-compressed when the rule asks for it and that saves space.
 * Returns the entry's length, or 0 when out of memory. */
static size_t entry_pack(struct cache *c, const struct policy_cached *rule, struct cache_fill *f)
{
    size_t head = sizeof(f->head) + f->head.nstamps * sizeof(*f->stamps);
    bool try_lz4 = rule->compress_over > 0 && f->rlen >= (size_t)rule->compress_over &&
                   f->rlen <= LZ4_MAX_INPUT_SIZE;
    size_t room = try_lz4 ? sizeof(uint32_t) + (size_t)LZ4_compressBound((int)f->rlen) : 0;
    if (buf_grow(&c->pack, &c->pack_cap, head + (room > f->rlen ? room : f->rlen), 4096) < 0)
        return 0;
    f->head.flags = 0;
    size_t body = f->rlen;
    if (try_lz4) {
        uint32_t raw = (uint32_t)f->rlen;
        int n = LZ4_compress_default(f->reply, c->pack + head + sizeof(raw), (int)f->rlen,
                                     (int)(room - sizeof(raw)));
        if (n > 0 && sizeof(raw) + (size_t)n < f->rlen) {
            memcpy(c->pack + head, &raw, sizeof(raw));
            f->head.flags = CACHE_COMPRESSED;
            body = sizeof(raw) + (size_t)n;
        }
    }
    if (!(f->head.flags & CACHE_COMPRESSED))
        memcpy(c->pack + head, f->reply, f->rlen);
    memcpy(c->pack, &f->head, sizeof(f->head));
    memcpy(c->pack + sizeof(f->head), f->stamps, f->head.nstamps * sizeof(*f->stamps));
    return head + body;
}

void cache_fill_finish(struct cache *c, struct cache_fill *f, const char *data, size_t len,
                       uint64_t now_ms)
{
    int64_t pttl = pttl_value(data, len);
    const struct policy_cached *rule = policy_cache_rule_at(c->policy, f->head.rule);
    const char *key = f->bytes;
    bool keep = f->reply != NULL && pttl != -3 && c->active && pttl != 0 && rule != NULL &&
                rule->fingerprint == f->head.fingerprint &&
                (rule->max_entry == 0 || f->rlen <= (size_t)rule->max_entry) &&
                policy_should_cache(c->policy, key, f->klen, f->rlen);
    size_t elen = keep ? entry_pack(c, rule, f) : 0;
    if (elen > 0) {
        uint64_t ttl = policy_ttl(c->policy, rule, key, f->klen, c->ttl_ms, now_ms);
        if (pttl > 0 && (uint64_t)pttl < ttl)
            ttl = (uint64_t)pttl;
        tier_put(c->tier, c->db, key, f->klen, key + f->klen, f->vlen, c->pack, elen, now_ms + ttl,
                 f->since_seq, now_ms);
    }
    cache_fill_destroy(&f);
}

void cache_fill_destroy(struct cache_fill **fp)
{
    if (*fp == NULL)
        return;
    free((*fp)->reply);
    free(*fp);
    *fp = NULL;
}

void cache_writes_merge(struct cache_keys **dst, struct cache_keys **src)
{
    struct cache_keys *d = *dst, *k = *src;
    if (k == NULL)
        return;
    *src = NULL;
    if (d == NULL) {
        *dst = k;
        return;
    }
    d->flush |= k->flush;
    if (!d->flush) {
        for (size_t off = 0; off < k->len;) {
            size_t len;
            memcpy(&len, k->data + off, sizeof(size_t));
            if (keys_add(d, k->data + off + sizeof(size_t), len) < 0)
                d->flush = true;
            off += sizeof(size_t) + len;
        }
    }
    keys_destroy(k);
}

void cache_writes_done(struct cache *c, struct cache_keys **kp)
{
    struct cache_keys *k = *kp;
    if (k == NULL)
        return;
    if (k->flush) {
        cache_flush(c);
    } else {
        for (size_t off = 0; off < k->len;) {
            size_t len;
            memcpy(&len, k->data + off, sizeof(size_t));
            drop_key(c, k->data + off + sizeof(size_t), len);
            off += sizeof(size_t) + len;
        }
    }
    keys_destroy(k);
    *kp = NULL;
}

void cache_tick(struct cache *c, uint64_t now_ms)
{
    if (c->tier != NULL)
        tier_expire_some(c->tier, now_ms, CACHE_EXPIRE_BUDGET);
}

size_t cache_stats(const struct cache *c, char *buf, size_t len)
{
    struct tier_stats none = {0};
    const struct tier_stats *s = c->tier != NULL ? tier_stats(c->tier) : &none;
    uint64_t hits = s->hits - c->stale, misses = s->misses + c->stale, lookups = hits + misses;
    int n =
        snprintf(buf, len,
                 "cache_enabled:%d\r\ncache_active:%d\r\nhits:%llu\r\nmisses:%llu\r\n"
                 "hit_ratio:%.4f\r\nbypassed:%llu\r\nfills:%llu\r\nfills_refused:%llu\r\n"
                 "fills_rejected:%llu\r\nevictions:%llu\r\nexpirations:%llu\r\n"
                 "invalidated_keys:%llu\r\ninvalidated_entries:%llu\r\nflushes:%llu\r\n"
                 "entries:%zu\r\nkeys:%zu\r\nbytes:%zu\r\nmax_bytes:%zu\r\n",
                 c->tier != NULL, c->active, (unsigned long long)hits, (unsigned long long)misses,
                 lookups ? (double)hits / lookups : 0.0, (unsigned long long)c->bypassed,
                 (unsigned long long)s->fills, (unsigned long long)s->fills_refused,
                 (unsigned long long)s->fills_rejected, (unsigned long long)s->evictions,
                 (unsigned long long)s->expirations, (unsigned long long)s->invalidated_keys,
                 (unsigned long long)s->invalidated_entries, (unsigned long long)c->flushes,
                 s->entries, s->keys, s->bytes, s->max_bytes);
    return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

void cache_mget_request(const struct cache_mget *m, const char **data, size_t *len)
{
    *data = m->request;
    *len = m->request_len;
}

size_t cache_mget_misses(const struct cache_mget *m)
{
    return m->nmiss;
}

void cache_mget_pttl(const struct cache_mget *m, size_t i, const char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    if (m->fills[i] != NULL)
        cache_fill_pttl(m->fills[i], data, len);
}

struct cache_mget *cache_mget_get(struct cache_mget *m)
{
    m->refs++;
    return m;
}

void cache_mget_merge(struct cache *c, struct cache_mget *m, const char *data, size_t len,
                      const char **out, size_t *outlen)
{
    *out = data; /* an error, or anything unexpected, goes to the client as it is */
    *outlen = len;
    char head[32];
    int h = snprintf(head, sizeof(head), "*%zu\r\n", m->nmiss);
    if (len < (size_t)h || memcmp(data, head, (size_t)h) != 0)
        return;
    size_t pos = (size_t)h;
    struct resp_view *fetched = calloc(m->nmiss, sizeof(*fetched));
    for (size_t j = 0; fetched != NULL && j < m->nmiss; j++) {
        struct resp_scanner s;
        struct resp_reply rep;
        resp_scanner_reset(&s);
        if (resp_scan_reply(&s, &RESP_LIMITS_DEFAULT, data + pos, len - pos, &rep) != RESP_OK) {
            free(fetched);
            return;
        }
        fetched[j] = (struct resp_view){pos, rep.len};
        if (m->fills[j] != NULL && rep.type == '$' && rep.count >= 0) /* a nil may be a hash */
            cache_fill_reply(m->fills[j], data + pos, rep.len);
        pos += rep.len;
    }
    h = snprintf(head, sizeof(head), "*%zu\r\n", m->n);
    c->scratch_len = 0;
    bool ok = fetched != NULL && scratch_add(c, head, (size_t)h);
    for (size_t i = 0; ok && i < m->n; i++) {
        const struct mget_slot *s = &m->slots[i];
        ok = s->len > 0 ? scratch_add(c, m->hits + s->off, s->len)
                        : scratch_add(c, data + fetched[s->off].off, fetched[s->off].len);
    }
    free(fetched);
    if (ok) {
        *out = c->scratch;
        *outlen = c->scratch_len;
    }
}

void cache_mget_finish(struct cache *c, struct cache_mget *m, size_t i, const char *data,
                       size_t len, uint64_t now_ms)
{
    if (m->fills[i] != NULL)
        cache_fill_finish(c, m->fills[i], data, len, now_ms);
    m->fills[i] = NULL;
}

void cache_mget_put(struct cache_mget **mp)
{
    struct cache_mget *m = *mp;
    *mp = NULL;
    if (m == NULL || --m->refs > 0)
        return;
    for (size_t j = 0; m->fills != NULL && j < m->nmiss; j++)
        cache_fill_destroy(&m->fills[j]);
    free(m->fills);
    free(m->slots);
    free(m->hits);
    free(m->request);
    free(m);
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

/* exchange_done_fn of the PTTL of a split MGET's miss x->index. */
static void mget_done(struct exchange *x, const char *data, size_t len, uint64_t now_ms)
{
    struct cache_mget *m = x->arg;
    size_t i = x->index;
    exchange_destroy(&x);
    cache_mget_finish(m->cache, m, i, data, len, now_ms);
    cache_mget_put(&m);
}

struct exchange *cache_mget_exchange(struct cache_mget *m, size_t i, const char **data, size_t *len)
{
    cache_mget_pttl(m, i, data, len);
    struct exchange *x = *len > 0 ? exchange_create(mget_done, m) : NULL;
    if (x == NULL)
        return NULL;
    x->index = i;
    cache_mget_get(m);
    return x;
}

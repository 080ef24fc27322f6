/* cache.c - the local tier in the request path: serve, fill, invalidate. */
#include "cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"

#define CACHE_EXPIRE_BUDGET 256 /* entries examined per cache_tick() */

/* Read-only commands whose reply depends only on the value of their single
 * key and their arguments: safe to answer from a copy until the key changes.
 * Never TTL/PTTL, RANDOMKEY, SRANDMEMBER, SCAN, OBJECT or the like. */
static const char *const CACHEABLE[] = {
    "bitcount",    "bitpos",        "exists",   "geodist",   "geohash",        "geopos",
    "get",         "getbit",        "getrange", "hexists",   "hget",           "hgetall",
    "hkeys",       "hlen",          "hmget",    "hstrlen",   "hvals",          "lindex",
    "llen",        "lpos",          "lrange",   "scard",     "sismember",      "smembers",
    "smismember",  "strlen",        "substr",   "type",      "xlen",           "xrange",
    "xrevrange",   "zcard",         "zcount",   "zlexcount", "zmscore",        "zrange",
    "zrangebylex", "zrangebyscore", "zrank",    "zrevrange", "zrevrangebylex", "zrevrangebyscore",
    "zrevrank",    "zscore",
};

/* Writes that may touch keys they do not declare: the tier is flushed. */
static const char *const UNDECLARED_WRITES[] = {"eval",     "evalsha", "fcall",
                                                "flushall", "flushdb", "swapdb"};

struct cache {
    struct tier *tier; /* NULL when cache.enabled is off */
    const struct keys_table *keys;
    int db;
    uint64_t ttl_ms;
    bool active;
    uint64_t bypassed; /* reads not served because the tier was inactive */
    uint64_t flushes;
};

struct cache_fill {
    uint64_t since_seq;
    char *reply; /* copy of the read's reply, NULL until it arrives */
    size_t rlen;
    size_t klen;
    size_t vlen;
    size_t plen;
    char bytes[]; /* key, variant (the request frame), then the PTTL request */
};

struct cache_keys {
    bool flush; /* the write's keys are unknown: flush everything */
    size_t len;
    size_t cap;
    char *data; /* keys, each as a size_t length then its bytes */
};

static bool name_in(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(name, list[i]) == 0)
            return true;
    }
    return false;
}

/* A write flag on the command, or a key spec that writes (EVAL has only the
 * latter), or a command that writes keys it does not declare. */
static bool cmd_writes(const struct keys_cmd *cmd)
{
    if (cmd->flags & KEYS_CMD_WRITE)
        return true;
    for (int i = 0; i < cmd->nspecs; i++) {
        if (cmd->specs[i].flags & KEYS_KEY_WRITES)
            return true;
    }
    return name_in(cmd->name, UNDECLARED_WRITES,
                   sizeof(UNDECLARED_WRITES) / sizeof(*UNDECLARED_WRITES));
}

struct cache *cache_create(const struct config *cfg, const struct keys_table *keys)
{
    struct cache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->keys = keys;
    c->db = cfg->upstream_database;
    c->ttl_ms = (uint64_t)cfg->cache_ttl_ms;
    if (cfg->cache_enabled) {
        c->tier = tier_create((size_t)cfg->cache_max_memory, (size_t)cfg->cache_max_entry);
        if (c->tier == NULL) {
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

void cache_invalidate(struct cache *c, const char *key, size_t len)
{
    if (c->tier != NULL)
        tier_invalidate_key(c->tier, c->db, key, len);
}

static int keys_add(struct cache_keys *k, const char *key, size_t len)
{
    size_t need = k->len + sizeof(size_t) + len;
    if (need > k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 128;
        while (cap < need)
            cap *= 2;
        char *p = realloc(k->data, cap);
        if (p == NULL)
            return -1;
        k->data = p;
        k->cap = cap;
    }
    memcpy(k->data + k->len, &len, sizeof(size_t));
    memcpy(k->data + k->len + sizeof(size_t), key, len);
    k->len = need;
    return 0;
}

struct write_walk {
    struct cache *cache;
    const char *buf;
    struct cache_keys *keys;
};

static void write_key(void *arg, struct resp_view key, unsigned flags)
{
    struct write_walk *w = arg;
    if (!(flags & KEYS_KEY_WRITES))
        return;
    cache_invalidate(w->cache, w->buf + key.off, key.len);
    if (!w->keys->flush && keys_add(w->keys, w->buf + key.off, key.len) < 0)
        w->keys->flush = true;
}

/* Invalidates what a write touches; returns the keys to invalidate again. */
static struct cache_keys *plan_write(struct cache *c, const struct keys_cmd *cmd, const char *buf,
                                     const struct resp_request *req)
{
    struct cache_keys *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        cache_flush(c);
        return NULL;
    }
    struct write_walk w = {c, buf, k};
    const char *name = cmd->name;
    if (name_in(name, UNDECLARED_WRITES, sizeof(UNDECLARED_WRITES) / sizeof(*UNDECLARED_WRITES)) ||
        keys_each(cmd, buf, req, write_key, &w) < 0)
        k->flush = true;
    if (k->flush)
        cache_flush(c);
    return k;
}

struct one_key {
    struct resp_view key;
    int count;
};

static void count_key(void *arg, struct resp_view key, unsigned flags)
{
    (void)flags;
    struct one_key *o = arg;
    o->key = key;
    o->count++;
}

/* Looks up (key, variant) where the variant is the command's name, a NUL and
 * the rest of its request after the name: "get\0$1\r\nk\r\n" for GET k,
 * whatever the case the client spelled the command in. */
static bool lookup(struct cache *c, const char *key, size_t klen, const char *name,
                   const char *rest, size_t restlen, uint64_t now_ms, struct tier_view *out)
{
    char stack[256];
    size_t nlen = strlen(name) + 1, vlen = nlen + restlen;
    char *v = vlen <= sizeof(stack) ? stack : malloc(vlen);
    if (v == NULL)
        return false;
    memcpy(v, name, nlen);
    memcpy(v + nlen, rest, restlen);
    bool hit = tier_get(c->tier, c->db, key, klen, v, vlen, now_ms, out);
    if (v != stack)
        free(v);
    return hit;
}

/* A fill for (key, variant as in lookup()), with its PTTL request. */
static struct cache_fill *fill_create(struct cache *c, const char *key, size_t klen,
                                      const char *name, const char *rest, size_t restlen)
{
    char pttl[64];
    int plen = snprintf(pttl, sizeof(pttl), "*2\r\n$4\r\nPTTL\r\n$%zu\r\n", klen);
    size_t nlen = strlen(name) + 1;
    struct cache_fill *f = malloc(sizeof(*f) + klen + nlen + restlen + (size_t)plen + klen + 2);
    if (f == NULL)
        return NULL;
    f->since_seq = tier_seq(c->tier);
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
static void plan_read(struct cache *c, const struct keys_cmd *cmd, const char *buf,
                      const struct resp_request *req, uint64_t now_ms, struct cache_plan *plan)
{
    struct one_key one = {{0, 0}, 0};
    if (keys_each(cmd, buf, req, count_key, &one) != 1)
        return;
    const char *key = buf + one.key.off;
    size_t skip = req->argv[0].off + req->argv[0].len + 2; /* the name and its CRLF */
    if (lookup(c, key, one.key.len, cmd->name, buf + skip, req->len - skip, now_ms, &plan->view)) {
        plan->hit = true;
        return;
    }
    plan->fill = fill_create(c, key, one.key.len, cmd->name, buf + skip, req->len - skip);
}

void cache_plan(struct cache *c, const char *buf, const struct resp_request *req, bool shared,
                uint64_t now_ms, struct cache_plan *plan)
{
    memset(plan, 0, sizeof(*plan));
    if (c->tier == NULL)
        return;
    const struct keys_cmd *cmd = keys_lookup_request(c->keys, buf, req);
    if (cmd == NULL)
        return;
    if (cmd_writes(cmd)) {
        plan->writes = plan_write(c, cmd, buf, req);
        return;
    }
    if (!shared || !(cmd->flags & KEYS_CMD_READONLY) ||
        !name_in(cmd->name, CACHEABLE, sizeof(CACHEABLE) / sizeof(*CACHEABLE)))
        return;
    if (!c->active) {
        c->bypassed++;
        return;
    }
    plan_read(c, cmd, buf, req, now_ms, plan);
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

void cache_fill_finish(struct cache *c, struct cache_fill *f, const char *data, size_t len,
                       uint64_t now_ms)
{
    int64_t pttl = pttl_value(data, len);
    if (f->reply != NULL && pttl != -3 && c->active && pttl != 0) {
        uint64_t ttl = pttl > 0 && (uint64_t)pttl < c->ttl_ms ? (uint64_t)pttl : c->ttl_ms;
        tier_put(c->tier, c->db, f->bytes, f->klen, f->bytes + f->klen, f->vlen, f->reply, f->rlen,
                 now_ms + ttl, f->since_seq, now_ms);
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
    free(k->data);
    free(k);
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
            cache_invalidate(c, k->data + off + sizeof(size_t), len);
            off += sizeof(size_t) + len;
        }
    }
    free(k->data);
    free(k);
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
    uint64_t lookups = s->hits + s->misses;
    int n = snprintf(buf, len,
                     "cache_enabled:%d\r\ncache_active:%d\r\nhits:%llu\r\nmisses:%llu\r\n"
                     "hit_ratio:%.4f\r\nbypassed:%llu\r\nfills:%llu\r\nfills_refused:%llu\r\n"
                     "fills_rejected:%llu\r\nevictions:%llu\r\nexpirations:%llu\r\n"
                     "invalidated_keys:%llu\r\ninvalidated_entries:%llu\r\nflushes:%llu\r\n"
                     "entries:%zu\r\nkeys:%zu\r\nbytes:%zu\r\nmax_bytes:%zu\r\n",
                     c->tier != NULL, c->active, (unsigned long long)s->hits,
                     (unsigned long long)s->misses, lookups ? (double)s->hits / lookups : 0.0,
                     (unsigned long long)c->bypassed, (unsigned long long)s->fills,
                     (unsigned long long)s->fills_refused, (unsigned long long)s->fills_rejected,
                     (unsigned long long)s->evictions, (unsigned long long)s->expirations,
                     (unsigned long long)s->invalidated_keys,
                     (unsigned long long)s->invalidated_entries, (unsigned long long)c->flushes,
                     s->entries, s->keys, s->bytes, s->max_bytes);
    return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

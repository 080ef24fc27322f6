/* mget.c - MGET split between the tier and Redis, and merged back. */
#include "proxy/cache/mget.h"

#include <stdlib.h>
#include <string.h>

#include "proxy/cache/fill.h"
#include "proxy/cache/internal.h"
#include "proxy/exchange.h"
#include "proxy/lib/buf.h"
#include "proxy/proto/args.h"
#include "proxy/proto/resp_write.h"

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
    struct mget_slot *slots;   /* n, in the same block as the struct */
    struct cache_fill **fills; /* n, one per miss, NULL when it could not be made; same block */
    char *hits;
    size_t hits_len;
    size_t hits_cap;
    char *request; /* MGET of the misses */
    size_t request_len;
    size_t request_cap;
};

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
static struct cache_mget *mget_split(struct cache *c, const struct lane *lane, const char *buf,
                                     const struct resp_request *req, uint64_t now_ms)
{
    size_t n = (size_t)req->argc - 1;
    struct cache_mget *m = calloc(1, sizeof(*m) + n * (sizeof(*m->slots) + sizeof(*m->fills)));
    struct resp_args args;
    struct resp_view key;
    resp_args_init(&args, buf, req);
    resp_args_next(&args, &key); /* the name */
    if (m == NULL)
        return NULL;
    m->slots = (struct mget_slot *)(m + 1);
    m->fills = (struct cache_fill **)(m->slots + n);
    /* The misses' MGET is at most the frame and its new header: room at once. */
    if (buf_grow(&m->request, &m->request_cap, req->len + RESP_HEADER_MAX + 10, 256) < 0) {
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
        cache_hold_key(c, buf + key.off, key.len);
        if (cache_lookup(c, lane, buf + key.off, key.len, "get", 3, "", 0, now_ms, &hit)) {
            m->slots[i] = (struct mget_slot){m->hits_len, hit.len};
            if (m->hits_cap == 0) /* room for the rest as hits of this size: no regrowth */
                buf_grow(&m->hits, &m->hits_cap, hit.len * (n - i), 256);
            ok = bytes_add(&m->hits, &m->hits_len, &m->hits_cap, hit.reply, hit.len);
            cache_release(c);
            continue;
        }
        m->slots[i] = (struct mget_slot){m->nmiss, 0};
        m->fills[m->nmiss++] =
            cache_fill_create(c, lane, buf + key.off, key.len, "get", "", 0, now_ms);
        cache_release(c);
        ok = bytes_add(&m->request, &m->request_len, &m->request_cap, buf + arg.off, arg.len);
    }
    char head[RESP_HEADER_MAX + 10];
    size_t h = resp_write_header(head, RESP_HEADER_MAX, '*', (int64_t)m->nmiss + 1);
    h += resp_write_bulk(head + h, sizeof(head) - h, "MGET", 4);
    if (!ok || !bytes_add(&m->request, &m->request_len, &m->request_cap, head, h)) {
        cache_mget_put(&m);
        return NULL;
    }
    /* The header went last: move it to the front. */
    memmove(m->request + h, m->request, m->request_len - h);
    memcpy(m->request, head, h);
    return m;
}

void cache_mget_plan(struct cache *c, const struct lane *lane, const char *buf,
                     const struct resp_request *req, uint64_t now_ms, struct cache_plan *plan)
{
    struct cache_mget *m = mget_split(c, lane, buf, req, now_ms);
    if (m == NULL || m->nmiss > 0) {
        plan->mget = m;
        return;
    }
    char head[RESP_HEADER_MAX];
    size_t h = resp_write_header(head, sizeof(head), '*', (int64_t)m->n);
    c->scratch_len = 0;
    if (scratch_add(c, head, h) && scratch_add(c, m->hits, m->hits_len)) {
        plan->hit = true;
        plan->view = (struct tier_view){c->scratch, c->scratch_len};
    }
    cache_mget_put(&m);
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
    char head[RESP_HEADER_MAX];
    size_t h = resp_write_header(head, sizeof(head), '*', (int64_t)m->nmiss);
    if (len < h || memcmp(data, head, h) != 0)
        return;
    size_t pos = h;
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
            cache_fill_reply(m->fills[j], data + pos, rep.len, 0);    /* none joined */
        pos += rep.len;
    }
    h = resp_write_header(head, sizeof(head), '*', (int64_t)m->n);
    c->scratch_len = 0;
    bool ok = fetched != NULL && scratch_add(c, head, h);
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
    for (size_t j = 0; j < m->nmiss; j++)
        cache_fill_destroy(&m->fills[j]);
    free(m->hits);
    free(m->request);
    free(m);
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

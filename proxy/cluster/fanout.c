/* fanout.c - a multi-key command split by slot, its replies merged. */
#include "proxy/cluster/fanout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proto/args.h"
#include "proxy/proto/resp_write.h"
#include "proxy/proto/slot.h"

static const char ERR_OOM[] = "-ERR out of memory\r\n";

struct fanout_part {
    int slot;
    char *request; /* "*<n>\r\n", the command's name, its args: built in place */
    size_t len;
    size_t cap;
    size_t nargs; /* after the name */
    char *reply;  /* NULL until it arrives */
    size_t reply_len;
    unsigned char redirects;
};

struct fanout {
    fanout_kind_e kind;
    struct exchange *owner;
    struct fanout_part *parts;
    size_t nparts;
    size_t pending; /* parts without a reply, plus one until fanout_sent */
    size_t nkeys;
    size_t *part_of; /* key i's part */
};

fanout_kind_e fanout_kind(const struct request *rq)
{
    static const struct {
        const char *name;
        fanout_kind_e kind;
    } KINDS[] = {{"mget", FANOUT_VALUES}, {"mset", FANOUT_OK},    {"del", FANOUT_SUM},
                 {"unlink", FANOUT_SUM},  {"exists", FANOUT_SUM}, {"touch", FANOUT_SUM}};
    const struct resp_request *frame = rq->frame;
    for (size_t i = 0; rq->cmd != NULL && i < sizeof(KINDS) / sizeof(KINDS[0]); i++) {
        if (strcmp(rq->cmd->name, KINDS[i].name) != 0)
            continue;
        size_t step = KINDS[i].kind == FANOUT_OK ? 2 : 1;
        bool whole = frame->kind == RESP_REQ_MULTIBULK && frame->argc >= 2 &&
                     (size_t)(frame->argc - 1) % step == 0;
        return whole ? KINDS[i].kind : FANOUT_NONE;
    }
    return FANOUT_NONE;
}

static void fanout_free(struct fanout *f)
{
    for (size_t i = 0; f->parts != NULL && i < f->nparts; i++) {
        free(f->parts[i].request);
        free(f->parts[i].reply);
    }
    free(f->parts);
    free(f->part_of);
    free(f);
}

/* The part for slot, added after the others when new; parts[] has room. */
static size_t part_for(struct fanout *f, int slot)
{
    for (size_t p = f->nparts; p > 0; p--) /* keys of one slot often come together */
        if (f->parts[p - 1].slot == slot)
            return p - 1;
    f->parts[f->nparts].slot = slot;
    return f->nparts++;
}

static int part_add(struct fanout_part *p, const char *data, size_t len)
{
    if (p->len + len > p->cap) {
        size_t cap = p->cap * 2 > p->len + len ? p->cap * 2 : p->len + len + 64;
        char *grown = realloc(p->request, cap);
        if (grown == NULL)
            return -1;
        p->request = grown;
        p->cap = cap;
    }
    memcpy(p->request + p->len, data, len);
    p->len += len;
    return 0;
}

/* Each part's request: header room, the name, then its args in order. A key
 * of MSET takes its value with it (step 2). */
static int fanout_split(struct fanout *f, const struct request *rq, size_t step)
{
    struct resp_args a;
    struct resp_view name, arg;
    resp_args_init(&a, rq->buf, rq->frame);
    resp_args_next(&a, &name);
    struct resp_view enc = resp_args_encoding(name);
    for (size_t k = 0; resp_args_next(&a, &arg); k++) {
        size_t p = part_for(f, (int)slot_of(rq->buf + arg.off, arg.len));
        struct fanout_part *part = &f->parts[p];
        f->part_of[k] = p;
        if (part->len == 0 && (part_add(part, "*00000000000000000000\r\n", RESP_HEADER_MAX) < 0 ||
                               part_add(part, rq->buf + enc.off, enc.len) < 0))
            return -1;
        for (size_t i = 0; i < step; i++) {
            if (i > 0 && !resp_args_next(&a, &arg))
                return -1;
            struct resp_view e = resp_args_encoding(arg);
            if (part_add(part, rq->buf + e.off, e.len) < 0)
                return -1;
            part->nargs++;
        }
    }
    return 0;
}

/* Moves each part's header ("*<n>\r\n") to just before its name. */
static void fanout_headers(struct fanout *f)
{
    for (size_t i = 0; i < f->nparts; i++) {
        struct fanout_part *p = &f->parts[i];
        char head[RESP_HEADER_MAX];
        size_t h = resp_write_header(head, sizeof(head), '*', (int64_t)p->nargs + 1);
        size_t skip = RESP_HEADER_MAX - h;
        memcpy(p->request + skip, head, h);
        memmove(p->request, p->request + skip, p->len - skip);
        p->len -= skip;
    }
}

fanout_kind_e fanout_broadcast_kind(const struct request *rq)
{
    static const struct {
        const char *name;
        fanout_kind_e kind;
    } KINDS[] = {{"dbsize", FANOUT_SUM},
                 {"keys", FANOUT_CONCAT},
                 {"flushall", FANOUT_OK},
                 {"flushdb", FANOUT_OK}};
    if (rq->cmd == NULL || rq->cmd->nspecs > 0) /* nearly every request: one with keys */
        return FANOUT_NONE;
    for (size_t i = 0; i < sizeof(KINDS) / sizeof(KINDS[0]); i++)
        if (strcmp(rq->cmd->name, KINDS[i].name) == 0)
            return KINDS[i].kind;
    return FANOUT_NONE;
}

struct fanout *fanout_broadcast(const struct request *rq, fanout_kind_e kind, const int *slots,
                                size_t n, struct exchange *owner)
{
    struct fanout *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    *f = (struct fanout){.kind = kind,
                         .owner = owner,
                         .parts = calloc(n, sizeof(*f->parts)),
                         .nparts = n,
                         .pending = n + 1,
                         .nkeys = n, /* a "key" per part, for the order of errors */
                         .part_of = calloc(n, sizeof(*f->part_of))};
    for (size_t i = 0; f->parts != NULL && f->part_of != NULL && i < n; i++) {
        f->part_of[i] = i;
        f->parts[i].slot = slots[i];
        if (part_add(&f->parts[i], rq->buf, rq->frame->len) < 0)
            break;
    }
    if (f->parts == NULL || f->part_of == NULL || (n > 0 && f->parts[n - 1].len == 0)) {
        fanout_free(f);
        return NULL;
    }
    return f;
}

struct fanout *fanout_create(const struct request *rq, fanout_kind_e kind, struct exchange *owner)
{
    size_t step = kind == FANOUT_OK ? 2 : 1;
    struct fanout *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->kind = kind;
    f->owner = owner;
    f->nkeys = (size_t)(rq->frame->argc - 1) / step;
    f->parts = calloc(f->nkeys, sizeof(*f->parts));
    f->part_of = calloc(f->nkeys, sizeof(*f->part_of));
    if (f->parts == NULL || f->part_of == NULL || fanout_split(f, rq, step) < 0) {
        fanout_free(f);
        return NULL;
    }
    fanout_headers(f);
    f->pending = f->nparts + 1;
    return f;
}

size_t fanout_parts(const struct fanout *f)
{
    return f->nparts;
}

int fanout_slot(const struct fanout *f, size_t i)
{
    return f->parts[i].slot;
}

void fanout_request(const struct fanout *f, size_t i, const char **data, size_t *len)
{
    *data = f->parts[i].request;
    *len = f->parts[i].len;
}

struct exchange *fanout_owner(const struct fanout *f)
{
    return f->owner;
}

bool fanout_redirect(struct fanout *f, size_t i, int max)
{
    if (f->parts[i].redirects >= max)
        return false;
    f->parts[i].redirects++;
    return true;
}

/* The first part, in key order, whose reply is not the kind's (an error). */
static const struct fanout_part *fanout_failed(const struct fanout *f)
{
    for (size_t k = 0; k < f->nkeys; k++) {
        const struct fanout_part *p = &f->parts[f->part_of[k]];
        char want = f->kind == FANOUT_OK ? '+' : f->kind == FANOUT_SUM ? ':' : '*';
        if (p->reply == NULL || p->reply_len < 3 || p->reply[0] != want)
            return p;
    }
    return NULL;
}

/* MGET: each key's value, from its part's array, in key order. */
static char *fanout_values(const struct fanout *f, size_t *len)
{
    size_t total = RESP_HEADER_MAX, *at = calloc(f->nparts, sizeof(*at));
    for (size_t i = 0; at != NULL && i < f->nparts; i++) {
        const struct fanout_part *p = &f->parts[i];
        at[i] = (size_t)((const char *)memchr(p->reply, '\n', p->reply_len) - p->reply) + 1;
        total += p->reply_len;
    }
    char *out = at != NULL ? malloc(total) : NULL;
    if (out != NULL)
        *len = resp_write_header(out, RESP_HEADER_MAX, '*', (int64_t)f->nkeys);
    for (size_t k = 0; out != NULL && k < f->nkeys; k++) {
        const struct fanout_part *p = &f->parts[f->part_of[k]];
        struct resp_scanner s;
        struct resp_reply rep;
        resp_scanner_reset(&s);
        size_t off = at[f->part_of[k]];
        if (off >= p->reply_len || resp_scan_reply(&s, &RESP_LIMITS_DEFAULT, p->reply + off,
                                                   p->reply_len - off, &rep) != RESP_OK) {
            free(out);
            out = NULL;
            break;
        }
        memcpy(out + *len, p->reply + off, rep.len);
        *len += rep.len;
        at[f->part_of[k]] = off + rep.len;
    }
    free(at);
    return out;
}

/* KEYS: every part's array, their elements one after the other. */
static char *fanout_concat(const struct fanout *f, size_t *len)
{
    size_t total = RESP_HEADER_MAX;
    int64_t n = 0;
    for (size_t i = 0; i < f->nparts; i++) {
        total += f->parts[i].reply_len;
        n += strtoll(f->parts[i].reply + 1, NULL, 10);
    }
    char *out = malloc(total);
    if (out == NULL)
        return NULL;
    *len = resp_write_header(out, RESP_HEADER_MAX, '*', n);
    for (size_t i = 0; i < f->nparts; i++) {
        const struct fanout_part *p = &f->parts[i];
        size_t head = (size_t)((const char *)memchr(p->reply, '\n', p->reply_len) - p->reply) + 1;
        memcpy(out + *len, p->reply + head, p->reply_len - head);
        *len += p->reply_len - head;
    }
    return out;
}

/* The merged reply, in a malloc'd buffer. */
static char *fanout_merge(const struct fanout *f, size_t *len)
{
    const struct fanout_part *bad = fanout_failed(f);
    char *out = NULL;
    if (bad != NULL || f->kind == FANOUT_OK) {
        const char *src = bad != NULL ? bad->reply : f->parts[0].reply;
        *len = bad != NULL ? bad->reply_len : f->parts[0].reply_len;
        if (src != NULL && (out = malloc(*len)) != NULL)
            memcpy(out, src, *len);
        return out;
    }
    if (f->kind == FANOUT_VALUES)
        return fanout_values(f, len);
    if (f->kind == FANOUT_CONCAT)
        return fanout_concat(f, len);
    long long sum = 0;
    for (size_t i = 0; i < f->nparts; i++)
        sum += strtoll(f->parts[i].reply + 1, NULL, 10);
    if ((out = malloc(RESP_HEADER_MAX)) != NULL)
        *len = resp_write_header(out, RESP_HEADER_MAX, ':', sum);
    return out;
}

/* One more part answered (or every part sent): merges once all are in. */
static void fanout_step(struct fanout *f, uint64_t now_ms)
{
    if (--f->pending > 0)
        return;
    size_t len = 0;
    char *merged = fanout_merge(f, &len);
    struct exchange *owner = f->owner;
    if (merged != NULL)
        owner->done(owner, merged, len, now_ms);
    else
        owner->done(owner, ERR_OOM, sizeof(ERR_OOM) - 1, now_ms);
    free(merged);
    fanout_free(f);
}

void fanout_reply(struct fanout *f, size_t i, const char *data, size_t len, uint64_t now_ms)
{
    struct fanout_part *p = &f->parts[i];
    if ((p->reply = malloc(len > 0 ? len : 1)) != NULL) {
        memcpy(p->reply, data, len);
        p->reply_len = len;
    }
    fanout_step(f, now_ms);
}

void fanout_sent(struct fanout *f, uint64_t now_ms)
{
    fanout_step(f, now_ms);
}

/* buf.c - receive buffers and chunked send queues. */
#include "proxy/lib/buf.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define RBUF_READ_MIN  16384   /* free space offered to each read() */
#define RBUF_KEEP_MAX  1048576 /* an emptied buffer larger than this is freed */
#define OBUF_CHUNK     16384   /* payload of an ordinary chunk */
#define OBUF_IOV       64      /* chunks per writev */
#define OBUF_FREE_KEEP 1024    /* ordinary chunks kept for reuse */

/* The memory of an rbuf, counted: queued chunks hold on to runs of its bytes
 * after the rbuf has moved on to another block. */
struct rblock {
    size_t refs;
    char bytes[];
};

/* Ordinary chunks are recycled, per thread: each worker is one event loop. */
static _Thread_local struct obuf_chunk *chunk_free_list;
static _Thread_local size_t chunk_free_count;
/* The rbuf most recently read into: it lends its bytes to obuf_append. */
static _Thread_local struct rbuf *lender;

int buf_grow(char **data, size_t *cap, size_t need, size_t min)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap > min ? *cap : min;
    while (n < need)
        n *= 2;
    char *p = realloc(*data, n);
    if (p == NULL)
        return -1;
    *data = p;
    *cap = n;
    return 0;
}

static struct rblock *block_of(const char *bytes)
{
    return (struct rblock *)(bytes - offsetof(struct rblock, bytes));
}

static void block_put(struct rblock *k)
{
    if (--k->refs == 0)
        free(k);
}

static bool rbuf_lent(const struct rbuf *b)
{
    return b->data != NULL && block_of(b->data)->refs > 1;
}

/* Gives up the block: freed, or left to the chunks that still reference it. */
static void rbuf_release(struct rbuf *b)
{
    if (b->data != NULL)
        block_put(block_of(b->data));
    if (lender == b)
        lender = NULL;
    b->data = NULL;
    b->start = b->end = b->cap = 0;
}

void rbuf_deinit(struct rbuf *b)
{
    rbuf_release(b);
    b->next_cap = 0;
}

/* Puts the unconsumed bytes in a block with room for need bytes, doubling
 * from the current (or the last) size: grown in place when the block is the
 * rbuf's alone and they are at its front, else copied to a new block. */
static int rbuf_move(struct rbuf *b, size_t need)
{
    size_t len = b->end - b->start;
    size_t cap = b->cap > b->next_cap ? b->cap : b->next_cap;
    if (cap < RBUF_READ_MIN)
        cap = RBUF_READ_MIN;
    while (cap < need)
        cap *= 2;
    struct rblock *k;
    if (b->data != NULL && b->start == 0 && !rbuf_lent(b)) {
        if ((k = realloc(block_of(b->data), sizeof(*k) + cap)) == NULL)
            return -1;
    } else {
        if ((k = malloc(sizeof(*k) + cap)) == NULL)
            return -1;
        k->refs = 1;
        if (len > 0)
            memcpy(k->bytes, b->data + b->start, len);
        if (b->data != NULL)
            block_put(block_of(b->data));
        b->start = 0;
        b->end = len;
    }
    b->data = k->bytes;
    b->cap = cap;
    b->next_cap = 0;
    return 0;
}

int rbuf_make_room(struct rbuf *b)
{
    lender = b;
    bool lent = rbuf_lent(b);
    if (!lent && b->start > 0 && (b->start == b->end || b->cap - b->end < RBUF_READ_MIN)) {
        memmove(b->data, b->data + b->start, b->end - b->start);
        b->end -= b->start;
        b->start = 0;
    }
    /* A lent block is read on into after its last byte, never over it. */
    if (b->data != NULL && b->cap - b->end >= RBUF_READ_MIN)
        return 0;
    return rbuf_move(b, b->end - b->start + RBUF_READ_MIN);
}

ssize_t rbuf_read(struct rbuf *b, int fd)
{
    if (rbuf_make_room(b) < 0) {
        errno = ENOMEM;
        return -1;
    }
    ssize_t n;
    do {
        n = read(fd, b->data + b->end, b->cap - b->end);
    } while (n < 0 && errno == EINTR);
    if (n > 0)
        b->end += (size_t)n;
    return n;
}

void rbuf_consume(struct rbuf *b, size_t n)
{
    b->start += n;
    if (b->start != b->end)
        return;
    if (rbuf_lent(b) && b->cap <= RBUF_KEEP_MAX) { /* the next frame goes to a block as large */
        size_t cap = b->cap;
        rbuf_release(b);
        b->next_cap = cap;
        return;
    }
    b->start = b->end = 0;
    if (b->cap > RBUF_KEEP_MAX) /* give back what one large frame needed */
        rbuf_deinit(b);
}

static struct obuf_chunk *chunk_get(size_t need)
{
    if (need <= OBUF_CHUNK && chunk_free_list != NULL) {
        struct obuf_chunk *c = chunk_free_list;
        chunk_free_list = c->next;
        chunk_free_count--;
        c->next = NULL;
        c->start = c->end = 0;
        return c;
    }
    size_t cap = need > OBUF_CHUNK ? need : OBUF_CHUNK;
    struct obuf_chunk *c = malloc(sizeof(*c) + cap);
    if (c == NULL)
        return NULL;
    c->next = NULL;
    c->ref = NULL;
    c->base = c->data;
    c->cap = cap;
    c->start = c->end = 0;
    return c;
}

static void chunk_put(struct obuf_chunk *c)
{
    if (c->ref != NULL) {
        block_put(c->ref);
        free(c);
    } else if (c->cap == OBUF_CHUNK && chunk_free_count < OBUF_FREE_KEEP) {
        c->next = chunk_free_list;
        chunk_free_list = c;
        chunk_free_count++;
    } else {
        free(c);
    }
}

void obuf_deinit(struct obuf *b)
{
    while (b->head != NULL) {
        struct obuf_chunk *c = b->head;
        b->head = c->next;
        chunk_put(c);
    }
    b->tail = NULL;
    b->len = 0;
}

static void obuf_link(struct obuf *b, struct obuf_chunk *c)
{
    if (b->tail != NULL)
        b->tail->next = c;
    else
        b->head = c;
    b->tail = c;
    b->len += c->end;
}

/* True when the len bytes at p are unconsumed bytes of the lender, and at
 * least a quarter of its block: a slow reader of a chunk holds on to the
 * whole block, no more than four times the bytes it waits for. */
static bool obuf_lent(const char *p, size_t len)
{
    if (lender == NULL || lender->data == NULL || len < lender->cap / 4)
        return false;
    uintptr_t at = (uintptr_t)p, lo = (uintptr_t)(lender->data + lender->start);
    uintptr_t hi = (uintptr_t)(lender->data + lender->end);
    return at >= lo && at <= hi && len <= hi - at;
}

/* Queues a reference to the lender's bytes at p: the chunk holds its block. */
static int obuf_append_lent(struct obuf *b, const char *p, size_t len)
{
    struct obuf_chunk *c = malloc(sizeof(*c));
    if (c == NULL)
        return -1;
    c->next = NULL;
    c->ref = block_of(lender->data);
    c->ref->refs++;
    c->base = (char *)p; /* never written through: the chunk is full (cap == end) */
    c->cap = c->end = len;
    c->start = 0;
    obuf_link(b, c);
    return 0;
}

int obuf_append_more(struct obuf *b, const void *data, size_t len)
{
    const char *p = data;
    if (len >= OBUF_SHARE_MIN && obuf_lent(p, len))
        return obuf_append_lent(b, p, len);
    struct obuf_chunk *t = b->tail;
    if (t != NULL && t->cap > t->end) {
        size_t n = len < t->cap - t->end ? len : t->cap - t->end;
        memcpy(t->base + t->end, p, n);
        t->end += n;
        p += n;
        len -= n;
        b->len += n;
    }
    if (len == 0)
        return 0;
    /* The rest goes into one new chunk, as large as needed. */
    struct obuf_chunk *c = chunk_get(len);
    if (c == NULL)
        return -1;
    memcpy(c->data, p, len);
    c->end = len;
    obuf_link(b, c);
    return 0;
}

/* obuf_peek and obuf_consume, inlined in obuf_write: the plain hot path. */
static inline int peek(const struct obuf *b, struct iovec *iov, int max, size_t limit)
{
    int cnt = 0;
    size_t total = 0;
    for (struct obuf_chunk *c = b->head; c != NULL && cnt < max && total < limit; c = c->next) {
        size_t n = c->end - c->start;
        if (n > limit - total)
            n = limit - total;
        if (n > SSIZE_MAX - total)
            break;
        iov[cnt].iov_base = c->base + c->start;
        iov[cnt].iov_len = n;
        total += n;
        cnt++;
    }
    return cnt;
}

static inline void consume(struct obuf *b, size_t n)
{
    size_t left = n;
    b->len -= left;
    while (left > 0) {
        struct obuf_chunk *c = b->head;
        size_t have = c->end - c->start;
        if (left < have) {
            c->start += left;
            break;
        }
        left -= have;
        b->head = c->next;
        if (b->head == NULL)
            b->tail = NULL;
        chunk_put(c);
    }
}

ssize_t obuf_write(struct obuf *b, int fd, size_t limit)
{
    struct iovec iov[OBUF_IOV];
    int cnt = peek(b, iov, OBUF_IOV, limit);
    if (cnt == 0)
        return 0;
    ssize_t n;
    do {
        n = writev(fd, iov, cnt);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    consume(b, (size_t)n);
    return n;
}

int obuf_peek(const struct obuf *b, struct iovec *iov, int max, size_t limit)
{
    return peek(b, iov, max, limit);
}

void obuf_consume(struct obuf *b, size_t n)
{
    consume(b, n);
}

void obuf_free_kept(void)
{
    while (chunk_free_list != NULL) {
        struct obuf_chunk *c = chunk_free_list;
        chunk_free_list = c->next;
        free(c);
    }
    chunk_free_count = 0;
}

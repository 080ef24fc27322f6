/* buf.c - receive buffers and chunked send queues. */
#include "proxy/lib/buf.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define RBUF_READ_MIN  16384   /* free space offered to each read() */
#define RBUF_KEEP_MAX  1048576 /* an emptied buffer larger than this is freed */
#define OBUF_CHUNK     16384   /* payload of an ordinary chunk */
#define OBUF_IOV       64      /* chunks per writev */
#define OBUF_FREE_KEEP 1024    /* ordinary chunks kept for reuse */

struct obuf_chunk {
    struct obuf_chunk *next;
    size_t cap;
    size_t start; /* first unwritten byte */
    size_t end;   /* one past the last queued byte */
    char data[];
};

/* Ordinary chunks are recycled, per thread: each worker is one event loop. */
static _Thread_local struct obuf_chunk *chunk_free_list;
static _Thread_local size_t chunk_free_count;

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

void rbuf_deinit(struct rbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

int rbuf_make_room(struct rbuf *b)
{
    if (b->start > 0 && (b->start == b->end || b->cap - b->end < RBUF_READ_MIN)) {
        memmove(b->data, b->data + b->start, b->end - b->start);
        b->end -= b->start;
        b->start = 0;
    }
    return buf_grow(&b->data, &b->cap, b->end + RBUF_READ_MIN, RBUF_READ_MIN);
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
    c->cap = cap;
    c->start = c->end = 0;
    return c;
}

static void chunk_put(struct obuf_chunk *c)
{
    if (c->cap == OBUF_CHUNK && chunk_free_count < OBUF_FREE_KEEP) {
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

int obuf_append(struct obuf *b, const void *data, size_t len)
{
    const char *p = data;
    struct obuf_chunk *t = b->tail;
    if (t != NULL && t->cap > t->end) {
        size_t n = len < t->cap - t->end ? len : t->cap - t->end;
        memcpy(t->data + t->end, p, n);
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
    if (b->tail != NULL)
        b->tail->next = c;
    else
        b->head = c;
    b->tail = c;
    b->len += len;
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
        iov[cnt].iov_base = c->data + c->start;
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

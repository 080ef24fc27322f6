/* buf.h - byte buffers of a connection.
 *
 * struct rbuf holds received bytes contiguously, so that the RESP scanner can
 * frame them in place; it grows for a large frame and is compacted as frames
 * are consumed. struct obuf is a queue of chunks waiting to be written; it is
 * drained with writev, so many replies (or many clients' requests) leave in
 * one system call and a large payload is never moved once queued.
 *
 * A large run of received bytes is not even copied into a queue: the rbuf
 * most recently read into lends its bytes, and a queued run of at least
 * OBUF_SHARE_MIN of them is a reference to its block instead of a copy. The
 * rbuf never writes over bytes it has lent: it reads on after them, or into a
 * new block. Measured with 100 KB SETs (bench/README.md, large-set-p1): the
 * proxy's user-space CPU per request went from 12-16 us to 2-5 us (memmove
 * from 13% of its cycles to 1%); what is left is the kernel's (tcp, copies).
 */
#ifndef NEARCACHE_BUF_H
#define NEARCACHE_BUF_H

#include <stddef.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Grows the heap block *data of capacity *cap to hold at least need bytes,
 * doubling from min. Returns 0, or -1 when out of memory (nothing changed). */
int buf_grow(char **data, size_t *cap, size_t need, size_t min);

struct rbuf {
    char *data;   /* in a reference-counted block, shared with the obufs it lent to */
    size_t start; /* first unconsumed byte */
    size_t end;   /* one past the last received byte */
    size_t cap;
    size_t next_cap; /* data NULL: the size of the last block, for the next one */
};

/* Frees the buffer's memory (or gives up its share of it) and leaves it empty. */
void rbuf_deinit(struct rbuf *b);

/* Makes room for at least 16 KB more bytes after end (moving the unconsumed
 * bytes to the front, growing, or moving them to a new block when the block
 * is shared), and makes b the buffer that lends its bytes to obuf_append.
 * Returns 0, or -1 when out of memory. */
int rbuf_make_room(struct rbuf *b);

/* Reads once from fd into the buffer, growing it when full. Returns the
 * number of bytes read, 0 on end of file, or -1 with errno (EAGAIN included). */
ssize_t rbuf_read(struct rbuf *b, int fd);

/* Marks n bytes at the front as consumed. */
void rbuf_consume(struct rbuf *b, size_t n);

/* Unconsumed bytes. */
static inline size_t rbuf_len(const struct rbuf *b)
{
    return b->end - b->start;
}

static inline const char *rbuf_head(const struct rbuf *b)
{
    return b->data + b->start;
}

/* The shortest run of an rbuf's bytes queued by reference. Shorter ones are
 * copied: that is cheap, keeps small replies packed together in ordinary
 * chunks, and leaves the rbuf its block (a lent one is left for a new one). */
#define OBUF_SHARE_MIN 32768

struct rblock;

/* A run of queued bytes (buf.c's; here for obuf_append's inline case). */
struct obuf_chunk {
    struct obuf_chunk *next;
    struct rblock *ref; /* the block holding the bytes, or NULL: they are in data */
    char *base;         /* the bytes: data or a run of ref's */
    size_t cap;
    size_t start; /* first unwritten byte */
    size_t end;   /* one past the last queued byte */
    char data[];
};

struct obuf {
    struct obuf_chunk *head;
    struct obuf_chunk *tail;
    size_t len; /* bytes queued, not yet written */
};

/* Frees every queued chunk. */
void obuf_deinit(struct obuf *b);

/* Frees the chunks this thread keeps for reuse (a worker thread ending). */
void obuf_free_kept(void);

/* obuf_append, for what does not fit the tail chunk as it is. */
int obuf_append_more(struct obuf *b, const void *data, size_t len);

/* Queues len bytes: a reference to them when they are at least
 * OBUF_SHARE_MIN unconsumed bytes of the rbuf most recently read into, and a
 * quarter of its block (see above), else a copy. Returns 0, or -1 when out of
 * memory. Inline for a copy that fits the tail chunk, as a pipeline's replies
 * do after its first (a GET hit 1,153 -> 1,131 instructions). A lent chunk is
 * full (cap == end): nothing is copied into it. */
static inline int obuf_append(struct obuf *b, const void *data, size_t len)
{
    struct obuf_chunk *t = b->tail;
    if (len >= OBUF_SHARE_MIN || t == NULL || t->cap - t->end < len)
        return obuf_append_more(b, data, len);
    memcpy(t->base + t->end, data, len);
    t->end += len;
    b->len += len;
    return 0;
}

/* Points iov[0..max) at the first queued bytes, at most limit of them, without
 * consuming them. Returns the number of entries filled. */
int obuf_peek(const struct obuf *b, struct iovec *iov, int max, size_t limit);

/* Drops the first n queued bytes (n <= len): they were written. */
void obuf_consume(struct obuf *b, size_t n);

/* Writes at most limit queued bytes to fd with writev. Returns the number of
 * bytes written (possibly 0 when the socket is full), or -1 with errno on a
 * write error other than EAGAIN. */
ssize_t obuf_write(struct obuf *b, int fd, size_t limit);

#endif

/* req.h - the replies a client is owed, in request order.
 *
 * Each request a client sends takes a slot at the end of its FIFO (struct
 * client's head and tail), answered in place when its reply is there and
 * written once every earlier one is. A request sent upstream holds its slot
 * while its exchange is in flight; if the client goes first, the slot is
 * freed when the reply arrives. Slots are recycled: one is taken and given
 * back for nearly every request, so malloc and free stay off the request path.
 */
#ifndef NEARCACHE_REQ_H
#define NEARCACHE_REQ_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

#include "proxy/pool.h"

struct cache;
struct cache_fill;
struct cache_keys;
struct cache_mget;
struct client;

/* A reply owed to a client, in its FIFO. A request sent upstream holds one
 * while its exchange is in flight; if the client goes first, the slot is
 * freed when the reply arrives. */
struct req {
    struct req *next;      /* the client's FIFO */
    struct client *client; /* NULL once the client has gone */
    struct cache *cache;   /* what the reply completes work in */
    char *data;            /* bytes kept until the reply can be written */
    size_t len;
    size_t cap;
    bool inflight;             /* its exchange awaits the reply */
    bool done;                 /* reply complete, waiting for earlier replies */
    bool execabort;            /* a DISCARD in place of EXEC: its +OK becomes EXECABORT */
    ev_tstamp at;              /* when its client's bytes were read */
    struct lane move;          /* a SELECT or HELLO (move.resp > 0): a reply other than an
                                  error moves the client to that lane */
    struct cache_fill *fill;   /* a read whose reply may fill the tier (the PTTL finishes it) */
    struct cache_mget *mget;   /* an MGET split with the tier: the reply is merged */
    struct cache_keys *writes; /* keys to invalidate again when the reply arrives */
    struct req_kept *kept;     /* its request, when it may have to be sent again */
    unsigned char redirects;   /* cluster: -MOVED and -ASK replies followed */
};

/* A request kept to be sent again: a read joined to another client's, sent
 * on its connection up after all when that read cannot answer it, or a
 * request to a cluster node, sent to another node on a redirect. */
struct req_kept {
    struct upstream *up; /* the shared connection it went on last (NULL: the dedicated one) */
    int slot;    /* a cluster's request: its keys' (or SLOT_NONE, SLOT_CROSS); -1 for a join */
    bool asking; /* cluster: it went last after an ASKING (an -ASK's node) */
    size_t len;
    char request[];
};

/* A new slot at the end of c's FIFO, or NULL when out of memory. */
struct req *req_create(struct client *c);

/* Frees r's bytes and gives the slot back. */
void req_destroy(struct req *r);

/* Frees the slots this thread keeps for reuse (a worker thread ending). */
void req_free_kept(void);

/* Keeps bytes in r until the reply can be written in order; -1 when out of
 * memory. */
int req_keep(struct req *r, const char *data, size_t len);

/* Keeps the bytes of r's request (on up, for keys in slot), to be sent again
 * on a redirect or a join that cannot be answered. Returns 0, or -1 when out
 * of memory. */
int req_keep_request(struct req *r, struct upstream *up, const char *data, size_t len, int slot);

#endif

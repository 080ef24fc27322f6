/* req.c - the slots of the replies clients are owed, recycled. */
#include "proxy/req.h"

#include <stdlib.h>
#include <string.h>

#include "proxy/client.h"
#include "proxy/lib/buf.h"
#include "proxy/worker.h"

/* Freed slots kept for reuse: one is taken and given back for nearly every
 * request, so malloc and free stay off the request path. */
#define REQ_FREE_KEEP 4096
static _Thread_local struct req *req_free_list; /* linked by next */
static _Thread_local size_t req_free_count;

struct req *req_create(struct client *c)
{
    struct req *r = req_free_list;
    if (r != NULL) {
        req_free_list = r->next;
        req_free_count--;
        memset(r, 0, sizeof(*r));
    } else if ((r = calloc(1, sizeof(*r))) == NULL) {
        return NULL;
    }
    r->client = c;
    r->cache = c->w->cache;
    r->at = c->last_active;
    if (c->tail != NULL)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    return r;
}

void req_destroy(struct req *r)
{
    free(r->data);
    free(r->kept);
    if (req_free_count >= REQ_FREE_KEEP) {
        free(r);
        return;
    }
    r->next = req_free_list;
    req_free_list = r;
    req_free_count++;
}

void req_free_kept(void)
{
    while (req_free_list != NULL) {
        struct req *r = req_free_list;
        req_free_list = r->next;
        free(r);
    }
    req_free_count = 0;
}

int req_keep(struct req *r, const char *data, size_t len)
{
    if (buf_grow(&r->data, &r->cap, r->len + len, 64) < 0)
        return -1;
    memcpy(r->data + r->len, data, len);
    r->len += len;
    return 0;
}

int req_keep_request(struct req *r, struct upstream *up, const char *data, size_t len, int slot)
{
    struct req_kept *k = malloc(sizeof(*k) + len);
    if (k == NULL)
        return -1;
    k->up = up->slot >= 0 ? up : NULL; /* a dedicated one is the client's, found again */
    k->slot = slot;
    k->asking = false;
    k->len = len;
    memcpy(k->request, data, len);
    r->kept = k;
    return 0;
}

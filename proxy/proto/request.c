/* request.c - a request parsed once: lookup, kind, keys. */
#include "proxy/proto/request.h"

#include <stdlib.h>

void request_keys_free(struct request_keys *k)
{
    free(k->views);
    free(k->flags);
    *k = (struct request_keys){0};
}

/* keys_each callback: appends the key to the scratch, growing it. */
static void collect_key(void *arg, struct resp_view key, unsigned flags)
{
    struct request_keys *k = arg;
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 64;
        struct resp_view *v = realloc(k->views, cap * sizeof(*v));
        k->views = v != NULL ? v : k->views;
        unsigned *f = v != NULL ? realloc(k->flags, cap * sizeof(*f)) : NULL;
        k->flags = f != NULL ? f : k->flags;
        if (f == NULL) {
            k->lost = true;
            return;
        }
        k->cap = cap;
    }
    k->views[k->n] = key;
    k->flags[k->n++] = flags;
}

int request_keys(struct request *r)
{
    if (r->nkeys != REQUEST_KEYS_UNSEEN)
        return r->nkeys;
    struct request_keys *k = r->keys;
    struct resp_view key;
    k->n = 0;
    k->lost = false;
    if (r->cmd == NULL)
        return r->nkeys = -1;
    int one = keys_one(r->cmd->key_at, r->cmd->arity, r->buf, r->frame, &key);
    /* The common shape: no walk, and no call once the scratch has room (a GET
     * hit 1,347 -> 1,326 instructions). */
    if (one > 0 && k->cap > 0) {
        k->views[0] = key;
        k->flags[0] = r->cmd->specs[0].flags;
        k->n = 1;
    } else if (one > 0) {
        collect_key(k, key, r->cmd->specs[0].flags);
    }
    int n = one != 0 ? one : keys_each(r->cmd, r->buf, r->frame, collect_key, k);
    return r->nkeys = k->lost ? -1 : n;
}

/* pool.c - shared connections and spare dedicated ones. */
#include "proxy/pool.h"

#include <stdlib.h>

#include "config/config.h"

/* A spare that breaks leaves the list of spares. */
static void pool_spare_lost(void *arg, struct upstream *up, bool was_ready)
{
    (void)was_ready;
    struct pool *p = arg;
    for (struct upstream **q = &p->idle; *q != NULL; q = &(*q)->next) {
        if (*q == up) {
            *q = up->next;
            p->nidle--;
            return;
        }
    }
}

int pool_setup(struct pool *p, const struct upstream_env *env, int n,
               const struct upstream_owner *shared_owner)
{
    *p = (struct pool){.env = *env, .keep_spares = true};
    p->shared = calloc((size_t)n, sizeof(*p->shared));
    if (p->shared == NULL)
        return -1;
    p->nshared = n;
    for (int i = 0; i < n; i++) {
        p->shared[i] = upstream_create(&p->env, shared_owner, false);
        if (p->shared[i] == NULL)
            return -1;
        p->shared[i]->slot = i;
    }
    return 0;
}

void pool_teardown(struct pool *p)
{
    p->keep_spares = false;
    while (p->idle != NULL) {
        struct upstream *up = p->idle;
        p->idle = up->next;
        upstream_close(up);
    }
    p->nidle = 0;
    for (int i = 0; p->shared != NULL && i < p->nshared; i++)
        upstream_destroy(&p->shared[i]);
    free(p->shared);
    p->shared = NULL;
}

struct upstream *pool_home(struct pool *p)
{
    return p->shared[p->next++ % (unsigned)p->nshared];
}

struct upstream *pool_shared(const struct pool *p, int i)
{
    return p->shared[i];
}

struct upstream *pool_dedicated_get(struct pool *p, const struct upstream_owner *owner)
{
    struct upstream *up = p->idle;
    if (up == NULL)
        return upstream_create(&p->env, owner, true);
    p->idle = up->next;
    p->nidle--;
    up->next = NULL;
    upstream_set_owner(up, owner);
    return up;
}

void pool_dedicated_put(struct pool *p, struct upstream *up, bool reusable)
{
    if (reusable && p->keep_spares && up->state == UPSTREAM_READY && !up->stream &&
        p->nidle < p->env.cfg->idle_dedicated) {
        upstream_set_owner(up, &(struct upstream_owner){.lost = pool_spare_lost, .arg = p});
        up->next = p->idle;
        p->idle = up;
        p->nidle++;
        return;
    }
    upstream_close(up);
}

void pool_tick(struct pool *p, ev_tstamp now, bool stalled)
{
    for (int i = 0; i < p->nshared; i++)
        upstream_tick(p->shared[i], now, stalled);
}

/* pool.c - shared connections by lane and spare dedicated ones. */
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
    *p = (struct pool){
        .env = *env, .shared_owner = *shared_owner, .per_lane = n, .keep_spares = true};
    p->env.counters = &p->counters;
    p->shared = calloc((size_t)n * POOL_LANES_MAX, sizeof(*p->shared));
    if (p->shared == NULL)
        return -1;
    return pool_lane(p, (struct lane){env->cfg->upstream_database, 2}) == 0 ? 0 : -1;
}

/* Closes the spare dedicated connections. */
static void pool_drop_spares(struct pool *p)
{
    while (p->idle != NULL) {
        struct upstream *up = p->idle;
        p->idle = up->next;
        upstream_close(up);
    }
    p->nidle = 0;
}

void pool_teardown(struct pool *p)
{
    p->keep_spares = false;
    pool_drop_spares(p);
    for (int i = 0; p->shared != NULL && i < pool_slots(p); i++)
        upstream_destroy(&p->shared[i]);
    free(p->shared);
    p->shared = NULL;
}

int pool_lane(struct pool *p, struct lane lane)
{
    for (int i = 0; i < p->nlanes; i++)
        if (p->lanes[i].db == lane.db && p->lanes[i].resp == lane.resp)
            return i;
    if (p->nlanes == POOL_LANES_MAX)
        return -1;
    int first = p->nlanes * p->per_lane;
    for (int i = 0; i < p->per_lane; i++) {
        struct upstream *up = upstream_create(&p->env, &p->shared_owner, false, lane);
        if (up == NULL) {
            while (i-- > 0) {
                upstream_close(p->shared[first + i]);
                p->shared[first + i] = NULL;
            }
            return -1;
        }
        up->slot = first + i;
        p->shared[first + i] = up;
    }
    p->lanes[p->nlanes] = lane;
    return p->nlanes++;
}

int pool_slots(const struct pool *p)
{
    return p->nlanes * p->per_lane;
}

struct upstream *pool_home(struct pool *p, int lane)
{
    return p->shared[lane * p->per_lane + (int)(p->next++ % (unsigned)p->per_lane)];
}

struct upstream *pool_shared(const struct pool *p, int i)
{
    return p->shared[i];
}

struct upstream *pool_dedicated_get(struct pool *p, const struct upstream_owner *owner, int lane)
{
    struct lane want = p->lanes[lane];
    for (struct upstream **q = &p->idle; *q != NULL; q = &(*q)->next) {
        struct upstream *up = *q;
        if (up->lane.db == want.db && up->lane.resp == want.resp) {
            *q = up->next;
            p->nidle--;
            up->next = NULL;
            upstream_set_owner(up, owner);
            return up;
        }
    }
    return upstream_create(&p->env, owner, true, want);
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

void pool_reset(struct pool *p)
{
    pool_drop_spares(p);
    for (int i = 0; i < pool_slots(p); i++)
        upstream_reset(p->shared[i]);
}

void pool_tick(struct pool *p, ev_tstamp now, bool stalled)
{
    for (int i = 0; i < pool_slots(p); i++)
        upstream_tick(p->shared[i], now, stalled);
}

bool pool_ready(const struct pool *p)
{
    for (int i = 0; i < p->per_lane; i++) {
        if (p->shared[i] == NULL || p->shared[i]->state != UPSTREAM_READY)
            return false;
    }
    return true;
}

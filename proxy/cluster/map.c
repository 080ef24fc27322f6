/* map.c - the slot map from CLUSTER SHARDS or CLUSTER SLOTS. */
#include "proxy/cluster/map.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/lib/log.h"

#define MAP_NOT_IN_B 0xfffe /* map_diff: a's node is not one of b's */

/* A map being built from one reply, and where its first error goes. */
struct build {
    struct map *m;
    int cap;               /* nodes allocated */
    const char *what;      /* the command: "CLUSTER SHARDS" */
    char where[32];        /* the part being read: "shard 2" */
    const char *seed_host; /* for an unknown endpoint; may be NULL */
    bool tls;              /* SHARDS: take tls-port */
    char *err;
    size_t errlen;
};

static int fail(struct build *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes "what: where: reason" to b's err; returns -1. */
static int fail(struct build *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->err == NULL || b->errlen == 0)
        return -1;
    n = snprintf(b->err, b->errlen, b->where[0] ? "%s: %s: " : "%s: ", b->what, b->where);
    if (n >= 0 && (size_t)n < b->errlen) {
        va_start(ap, fmt);
        vsnprintf(b->err + n, b->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static bool is_array(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_ARRAY;
}

static bool is_str(const redisReply *r)
{
    return r != NULL && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

static bool str_is(const redisReply *r, const char *s)
{
    return is_str(r) && r->len == strlen(s) && memcmp(r->str, s, r->len) == 0;
}

/* A RESP2 array of key, value pairs or a RESP3 map. */
static bool is_pairs(const redisReply *r)
{
    return r != NULL && (r->type == REDIS_REPLY_ARRAY || r->type == REDIS_REPLY_MAP) &&
           r->elements % 2 == 0;
}

/* The value after the key name in a map, or NULL. */
static const redisReply *field(const redisReply *map, const char *name)
{
    if (!is_pairs(map))
        return NULL;
    for (size_t i = 0; i + 1 < map->elements; i += 2) {
        if (str_is(map->element[i], name))
            return map->element[i + 1];
    }
    return NULL;
}

/* An endpoint or ip that names a host: not "", "?", NULL or missing. */
static bool host_known(const redisReply *r)
{
    return is_str(r) && r->len > 0 && !(r->len == 1 && r->str[0] == '?');
}

static struct map *map_alloc(void)
{
    struct map *m = calloc(1, sizeof(*m));

    if (m == NULL)
        return NULL;
    m->refs = 1;
    memset(m->owner, 0xff, sizeof(m->owner)); /* MAP_NO_NODE */
    return m;
}

static void map_free(struct map *m)
{
    if (m == NULL)
        return;
    free(m->nodes);
    free(m);
}

/* How errors name a node. */
static const char *node_name(const struct map_node *n)
{
    return n->id[0] != '\0' ? n->id : "(no id)";
}

/* Fills n's id and port from the reply's fields (id may be NULL). */
static int node_id_port(struct build *b, struct map_node *n, const redisReply *id,
                        const redisReply *port, const char *port_name)
{
    if (id != NULL && !is_str(id))
        return fail(b, "node id is not a string");
    if (id != NULL && (id->len > MAP_ID_MAX || memchr(id->str, '\0', id->len) != NULL))
        return fail(b, "node id of %zu bytes is not an id", id->len);
    if (id != NULL)
        memcpy(n->id, id->str, id->len);
    if (port == NULL)
        return fail(b, "primary %s has no %s", node_name(n), port_name);
    if (port->type != REDIS_REPLY_INTEGER)
        return fail(b, "primary %s: %s is not an integer", node_name(n), port_name);
    if (port->integer < 1 || port->integer > 65535)
        return fail(b, "primary %s: %s %lld out of 1..65535", node_name(n), port_name,
                    port->integer);
    n->port = (int)port->integer;
    return 0;
}

/* Fills n's host: the endpoint, else the ip, else the seed's host. */
static int node_host(struct build *b, struct map_node *n, const redisReply *endpoint,
                     const redisReply *ip)
{
    const char *host = b->seed_host;
    size_t len = host != NULL ? strlen(host) : 0;

    if (endpoint != NULL && !is_str(endpoint) && endpoint->type != REDIS_REPLY_NIL)
        return fail(b, "primary %s: endpoint is not a string", node_name(n));
    if (host_known(endpoint) || host_known(ip)) {
        const redisReply *r = host_known(endpoint) ? endpoint : ip;
        host = r->str;
        len = r->len;
    }
    if (len == 0)
        return fail(b, "primary %s: unknown endpoint and no seed host", node_name(n));
    if (len > MAP_HOST_MAX || memchr(host, '\0', len) != NULL)
        return fail(b, "primary %s: endpoint of %zu bytes is not a host", node_name(n), len);
    memcpy(n->host, host, len);
    n->host[len] = '\0';
    return 0;
}

/* The index of n among the map's nodes, added when no node has its host and
 * port; -1 when there are too many or memory runs out. */
static int node_add(struct build *b, const struct map_node *n)
{
    struct map *m = b->m;
    int i = map_node_of(m, n->host, n->port);

    if (i >= 0) {
        if (m->nodes[i].id[0] == '\0')
            memcpy(m->nodes[i].id, n->id, sizeof(n->id));
        return i;
    }
    if (m->nnodes == MAP_NODES_MAX)
        return fail(b, "more than %d primaries", MAP_NODES_MAX);
    if (m->nnodes == b->cap) {
        int cap = b->cap ? b->cap * 2 : 8;
        struct map_node *nodes = realloc(m->nodes, (size_t)cap * sizeof(*nodes));
        if (nodes == NULL)
            return fail(b, "out of memory");
        m->nodes = nodes;
        b->cap = cap;
    }
    m->nodes[m->nnodes] = *n;
    return m->nnodes++;
}

/* Gives slots first..last (as the reply has them) to node, or only checks
 * them when node is MAP_NO_NODE. */
static int range_add(struct build *b, const redisReply *first, const redisReply *last, int node)
{
    if (first == NULL || last == NULL || first->type != REDIS_REPLY_INTEGER ||
        last->type != REDIS_REPLY_INTEGER)
        return fail(b, "slot range is not two integers");
    long long lo = first->integer, hi = last->integer;
    if (lo < 0 || lo >= SLOT_COUNT || hi < 0 || hi >= SLOT_COUNT)
        return fail(b, "slot %lld out of 0..%d", lo < 0 || lo >= SLOT_COUNT ? lo : hi,
                    SLOT_COUNT - 1);
    if (lo > hi)
        return fail(b, "slot range %lld-%lld ends before it starts", lo, hi);
    for (long long s = lo; node != MAP_NO_NODE && s <= hi; s++) {
        if (b->m->owner[s] != MAP_NO_NODE)
            return fail(b, "slot %lld claimed twice", s);
        b->m->owner[s] = (uint16_t)node;
    }
    return 0;
}

/* The node of role "master" of a shard's nodes (the first online one when
 * there are several), or NULL in *primary when there is none. */
static int shard_primary(struct build *b, const redisReply *nodes, const redisReply **primary)
{
    *primary = NULL;
    if (!is_array(nodes))
        return fail(b, "nodes is not an array");
    for (size_t i = 0; i < nodes->elements; i++) {
        const redisReply *n = nodes->element[i];
        if (!is_pairs(n))
            return fail(b, "node %zu is not a map", i);
        const redisReply *role = field(n, "role");
        if (!is_str(role))
            return fail(b, "node %zu has no role", i);
        if (!str_is(role, "master"))
            continue;
        if (*primary == NULL ||
            (!str_is(field(*primary, "health"), "online") && str_is(field(n, "health"), "online")))
            *primary = n;
    }
    return 0;
}

/* One shard: {slots: [start, end, ...], nodes: [{...}, ...]}. */
static int shard_parse(struct build *b, const redisReply *shard)
{
    const redisReply *slots = field(shard, "slots"), *p;
    struct map_node n = {0};
    int node = MAP_NO_NODE;

    if (!is_pairs(shard))
        return fail(b, "not a map");
    if (!is_array(slots) || slots->elements % 2 != 0)
        return fail(b, "slots is not an array of ranges");
    if (shard_primary(b, field(shard, "nodes"), &p) < 0)
        return -1;
    if (p != NULL && slots->elements > 0) {
        const char *port_name = b->tls ? "tls-port" : "port";
        if (node_id_port(b, &n, field(p, "id"), field(p, port_name), port_name) < 0 ||
            node_host(b, &n, field(p, "endpoint"), field(p, "ip")) < 0 ||
            (node = node_add(b, &n)) < 0)
            return -1;
    }
    for (size_t i = 0; i < slots->elements; i += 2) {
        if (range_add(b, slots->element[i], slots->element[i + 1], node) < 0)
            return -1;
    }
    return 0;
}

/* One entry: [start, end, [endpoint, port, id, {ip, hostname}], replicas...]. */
static int slots_entry(struct build *b, const redisReply *e)
{
    struct map_node n = {0};
    int node;

    if (!is_array(e) || e->elements < 3)
        return fail(b, "not [start, end, primary, ...]");
    const redisReply *p = e->element[2];
    if (!is_array(p) || p->elements < 2)
        return fail(b, "primary is not [endpoint, port, ...]");
    const redisReply *id = p->elements > 2 ? p->element[2] : NULL;
    const redisReply *meta = p->elements > 3 ? p->element[3] : NULL;
    if (meta != NULL && !is_pairs(meta))
        return fail(b, "primary's metadata is not a map");
    if (node_id_port(b, &n, id, p->element[1], "port") < 0 ||
        node_host(b, &n, p->element[0], field(meta, "ip")) < 0 || (node = node_add(b, &n)) < 0)
        return -1;
    return range_add(b, e->element[0], e->element[1], node);
}

/* The map of the array r, each element read by entry (named `part` i). */
static struct map *map_parse(struct build *b, const redisReply *r, const char *part,
                             int (*entry)(struct build *, const redisReply *))
{
    if (b->err != NULL && b->errlen > 0)
        b->err[0] = '\0';
    if (r == NULL) {
        fail(b, "no reply");
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        fail(b, "%.*s", (int)log_redis_error_len(r->str, r->len), r->str);
        return NULL;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        fail(b, "reply of type %d is not an array", r->type);
        return NULL;
    }
    b->m = map_alloc();
    if (b->m == NULL) {
        fail(b, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < r->elements; i++) {
        snprintf(b->where, sizeof(b->where), "%s %zu", part, i);
        if (entry(b, r->element[i]) < 0) {
            map_free(b->m);
            return NULL;
        }
    }
    return b->m;
}

struct map *map_parse_shards(const redisReply *r, const char *seed_host, bool tls, char *err,
                             size_t errlen)
{
    struct build b = {
        .what = "CLUSTER SHARDS", .seed_host = seed_host, .tls = tls, .err = err, .errlen = errlen};

    return map_parse(&b, r, "shard", shard_parse);
}

struct map *map_parse_slots(const redisReply *r, const char *seed_host, char *err, size_t errlen)
{
    struct build b = {
        .what = "CLUSTER SLOTS", .seed_host = seed_host, .err = err, .errlen = errlen};

    return map_parse(&b, r, "entry", slots_entry);
}

struct map *map_hold(struct map *m)
{
    if (m != NULL)
        __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
    return m;
}

void map_release(struct map **m)
{
    if (m == NULL || *m == NULL)
        return;
    if (__atomic_sub_fetch(&(*m)->refs, 1, __ATOMIC_ACQ_REL) == 0)
        map_free(*m);
    *m = NULL;
}

int map_node_of(const struct map *m, const char *host, int port)
{
    for (int i = 0; m != NULL && i < m->nnodes; i++) {
        if (m->nodes[i].port == port && strcasecmp(m->nodes[i].host, host) == 0)
            return i;
    }
    return -1;
}

bool map_failed_over(const struct map *a, const struct map *b)
{
    bool *gone = a != NULL ? calloc((size_t)a->nnodes + 1, sizeof(*gone)) : NULL;
    bool failed = false;
    for (int i = 0; gone != NULL && i < a->nnodes; i++)
        gone[i] = map_node_of(b, a->nodes[i].host, a->nodes[i].port) < 0;
    for (unsigned s = 0; gone != NULL && !failed && s < SLOT_COUNT; s++)
        failed = a->owner[s] != MAP_NO_NODE && gone[a->owner[s]] && b->owner[s] != MAP_NO_NODE;
    free(gone);
    return failed;
}

size_t map_diff(const struct map *a, const struct map *b,
                void (*fn)(void *arg, unsigned first, unsigned last), void *arg)
{
    uint16_t to_b[MAP_NODES_MAX]; /* a's node i is b's node to_b[i] */
    int na = a != NULL ? a->nnodes : 0;
    size_t changed = 0;
    unsigned start = SLOT_COUNT;
    uint16_t run_a = MAP_NO_NODE, run_b = MAP_NO_NODE;

    for (int i = 0; i < na && i < MAP_NODES_MAX; i++) {
        int j = map_node_of(b, a->nodes[i].host, a->nodes[i].port);
        to_b[i] = j < 0 ? MAP_NOT_IN_B : (uint16_t)j;
    }
    for (unsigned s = 0; s <= SLOT_COUNT; s++) {
        uint16_t oa = a != NULL && s < SLOT_COUNT ? a->owner[s] : MAP_NO_NODE;
        uint16_t ob = b != NULL && s < SLOT_COUNT ? b->owner[s] : MAP_NO_NODE;
        bool moved = s < SLOT_COUNT && (oa == MAP_NO_NODE ? MAP_NO_NODE : to_b[oa]) != ob;
        if (start < s && (!moved || oa != run_a || ob != run_b)) {
            if (fn != NULL)
                fn(arg, start, s - 1);
            start = SLOT_COUNT;
        }
        if (moved && start == SLOT_COUNT) {
            start = s;
            run_a = oa;
            run_b = ob;
        }
        changed += moved;
    }
    return changed;
}

unsigned map_covered(const struct map *m)
{
    unsigned n = 0;

    for (unsigned s = 0; m != NULL && s < SLOT_COUNT; s++)
        n += m->owner[s] != MAP_NO_NODE;
    return n;
}

/* own.c - CLUSTER commands answered as a cluster of one node: the proxy. */
#include "proxy/cluster/own.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/lib/hash.h"
#include "proxy/proto/args.h"
#include "proxy/proto/resp_write.h"
#include "proxy/proto/slot.h"

#define OWN_REPLY_MAX 2048 /* every answer here fits */
#define OWN_ID_LEN    40

typedef enum {
    OWN_INFO,
    OWN_MYID,
    OWN_SLOTS,
    OWN_SHARDS,
    OWN_NODES,
    OWN_KEYSLOT,
    OWN_EMPTY,   /* REPLICAS, SLAVES, LINKS: an empty array */
    OWN_BY_SLOT, /* COUNTKEYSINSLOT, GETKEYSINSLOT */
    OWN_OK,      /* READONLY, READWRITE, ASKING */
    OWN_REFUSED, /* changes the cluster */
} own_kind_e;

static const struct {
    const char *name;
    own_kind_e kind;
} OWN[] = {
    {"cluster|info", OWN_INFO},
    {"cluster|myid", OWN_MYID},
    {"cluster|myshardid", OWN_MYID},
    {"cluster|slots", OWN_SLOTS},
    {"cluster|shards", OWN_SHARDS},
    {"cluster|nodes", OWN_NODES},
    {"cluster|keyslot", OWN_KEYSLOT},
    {"cluster|replicas", OWN_EMPTY},
    {"cluster|slaves", OWN_EMPTY},
    {"cluster|links", OWN_EMPTY},
    {"cluster|countkeysinslot", OWN_BY_SLOT},
    {"cluster|getkeysinslot", OWN_BY_SLOT},
    {"readonly", OWN_OK},
    {"readwrite", OWN_OK},
    {"asking", OWN_OK},
};

/* A buffer the answer is written into. */
struct own_out {
    char *buf;
    size_t len;
};

static void put(struct own_out *o, const char *data, size_t len)
{
    if (o->len + len <= OWN_REPLY_MAX) {
        memcpy(o->buf + o->len, data, len);
        o->len += len;
    }
}

static void put_header(struct own_out *o, char type, int64_t n)
{
    char h[RESP_HEADER_MAX];
    put(o, h, resp_write_header(h, sizeof(h), type, n));
}

static void put_bulk(struct own_out *o, const char *s)
{
    put_header(o, '$', (int64_t)strlen(s));
    put(o, s, strlen(s));
    put(o, "\r\n", 2);
}

/* A map of n pairs in RESP3, the flat array of its 2n elements in RESP2. */
static void put_map(struct own_out *o, const struct own_view *v, int64_t n)
{
    put_header(o, v->resp >= 3 ? '%' : '*', v->resp >= 3 ? n : 2 * n);
}

/* Text as Redis answers CLUSTER INFO and NODES: verbatim in RESP3. */
static void put_text(struct own_out *o, const struct own_view *v, const char *text)
{
    if (v->resp < 3) {
        put_bulk(o, text);
        return;
    }
    put_header(o, '=', (int64_t)strlen(text) + 4);
    put(o, "txt:", 4);
    put(o, text, strlen(text));
    put(o, "\r\n", 2);
}

/* The node id: 40 hex digits made from the listen address, the same for
 * every worker and every start. */
static void own_id(const struct own_view *v, char id[OWN_ID_LEN + 1])
{
    char hex[3 * 16 + 1];
    size_t n = strlen(v->name);
    snprintf(hex, sizeof(hex), "%016" PRIx64 "%016" PRIx64 "%016" PRIx64,
             hash_murmur64a(v->name, n, 1), hash_murmur64a(v->name, n, 2),
             hash_murmur64a(v->name, n, 3));
    memcpy(id, hex, OWN_ID_LEN);
    id[OWN_ID_LEN] = '\0';
}

static void own_info(struct own_out *o, const struct own_view *v)
{
    char text[512];
    unsigned ok = v->ok ? SLOT_COUNT : 0;
    snprintf(text, sizeof(text),
             "cluster_state:%s\r\ncluster_slots_assigned:%d\r\ncluster_slots_ok:%u\r\n"
             "cluster_slots_pfail:0\r\ncluster_slots_fail:%u\r\ncluster_known_nodes:1\r\n"
             "cluster_size:1\r\ncluster_current_epoch:1\r\ncluster_my_epoch:1\r\n"
             "cluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\n"
             "total_cluster_links_buffer_limit_exceeded:0\r\n",
             v->ok ? "ok" : "fail", SLOT_COUNT, ok, SLOT_COUNT - ok);
    put_text(o, v, text);
}

/* CLUSTER SLOTS: [0, 16383, [host, port, id, {}]]. */
static void own_slots(struct own_out *o, const struct own_view *v, const char *id)
{
    put(o, "*1\r\n*3\r\n:0\r\n", 12);
    put_header(o, ':', SLOT_COUNT - 1);
    put(o, "*4\r\n", 4);
    put_bulk(o, v->host);
    put_header(o, ':', v->port);
    put_bulk(o, id);
    put_map(o, v, 0);
}

/* CLUSTER SHARDS: one shard, its slots 0-16383 and one node, the primary. */
static void own_shards(struct own_out *o, const struct own_view *v, const char *id)
{
    put(o, "*1\r\n", 4);
    put_map(o, v, 2);
    put_bulk(o, "slots");
    put(o, "*2\r\n:0\r\n", 8);
    put_header(o, ':', SLOT_COUNT - 1);
    put_bulk(o, "nodes");
    put(o, "*1\r\n", 4);
    put_map(o, v, 7);
    put_bulk(o, "id");
    put_bulk(o, id);
    put_bulk(o, "port");
    put_header(o, ':', v->port);
    put_bulk(o, "ip");
    put_bulk(o, v->host);
    put_bulk(o, "endpoint");
    put_bulk(o, v->host);
    put_bulk(o, "role");
    put_bulk(o, "master");
    put_bulk(o, "replication-offset");
    put_header(o, ':', 0);
    put_bulk(o, "health");
    put_bulk(o, "online");
}

static void own_nodes(struct own_out *o, const struct own_view *v, const char *id)
{
    char text[512];
    snprintf(text, sizeof(text), "%s %s:%d@%d myself,master - 0 0 1 connected 0-%d\n", id, v->host,
             v->port, v->port, SLOT_COUNT - 1);
    put_text(o, v, text);
}

/* The slot argument of COUNTKEYSINSLOT and GETKEYSINSLOT; -1 when it is
 * not one (the node answers the error). */
static int own_slot_arg(const struct request *rq)
{
    struct resp_args a;
    int64_t slot;
    resp_args_init(&a, rq->buf, rq->frame);
    struct resp_view arg = resp_args_get(&a, 2);
    return arg.len > 0 && resp_parse_ll(rq->buf + arg.off, arg.len, &slot) && slot >= 0 &&
                   slot < SLOT_COUNT
               ? (int)slot
               : -1;
}

/* Writes the answer of kind into o. */
static void own_answer(struct own_out *o, own_kind_e kind, const struct request *rq,
                       const struct own_view *v)
{
    static const char REFUSED[] = "-ERR nearcache answers for the cluster as one node: send this "
                                  "CLUSTER command to the cluster's nodes\r\n";
    char id[OWN_ID_LEN + 1];
    own_id(v, id);
    if (kind == OWN_INFO) {
        own_info(o, v);
    } else if (kind == OWN_MYID) {
        put_bulk(o, id);
    } else if (kind == OWN_SLOTS) {
        own_slots(o, v, id);
    } else if (kind == OWN_SHARDS) {
        own_shards(o, v, id);
    } else if (kind == OWN_NODES) {
        own_nodes(o, v, id);
    } else if (kind == OWN_KEYSLOT) {
        struct resp_args a;
        resp_args_init(&a, rq->buf, rq->frame);
        struct resp_view key = resp_args_get(&a, 2);
        put_header(o, ':', slot_of(rq->buf + key.off, key.len));
    } else if (kind == OWN_EMPTY) {
        put(o, "*0\r\n", 4);
    } else if (kind == OWN_OK) {
        put(o, "+OK\r\n", 5);
    } else {
        put(o, REFUSED, sizeof(REFUSED) - 1);
    }
}

own_e cluster_own(const struct request *rq, const struct own_view *v, char **reply, size_t *len,
                  int *slot)
{
    if (rq->cmd == NULL || request_keys((struct request *)rq) < 0)
        return OWN_FORWARD; /* unknown, or a wrong arity: the node's answer */
    size_t i = 0;
    while (i < sizeof(OWN) / sizeof(OWN[0]) && strcmp(OWN[i].name, rq->cmd->name) != 0)
        i++;
    own_kind_e kind = i < sizeof(OWN) / sizeof(OWN[0]) ? OWN[i].kind : OWN_REFUSED;
    if (kind == OWN_REFUSED &&
        (strncmp(rq->cmd->name, "cluster|", 8) != 0 || strcmp(rq->cmd->name, "cluster|help") == 0))
        return OWN_FORWARD;
    if (kind == OWN_BY_SLOT) {
        *slot = own_slot_arg(rq);
        return OWN_SLOT;
    }
    *reply = malloc(OWN_REPLY_MAX);
    struct own_out o = {*reply, 0};
    if (o.buf != NULL)
        own_answer(&o, kind, rq, v);
    *len = o.len;
    return OWN_ANSWERED;
}

/* tests/unit/proxy/cluster/map.c - the slot map from CLUSTER SHARDS and SLOTS.
 *
 * Real replies of redis-server 7.0.15 (cluster_replies.h), hand-written
 * hostile ones, and every element of the real ones cut short or given
 * another type. RESP2 replies are read by hiredis's reader; RESP3 ones,
 * which Debian's hiredis 0.14 cannot read, by a small reader below that
 * gives maps the type REDIS_REPLY_MAP as hiredis 1.x does.
 */
#include <criterion/criterion.h>

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/cluster/map.h"
#include "tests/unit/leaks.h"
#include "tests/unit/proxy/cluster/cluster_replies.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

TestSuite(map, .fini = check_leaks);

/* ---- replies from text ---- */

/* The RESP bytes of text (lines joined by spaces; a "+" or "-" line runs to
 * the end of text); caller frees. */
static char *resp_of(const char *text, size_t *len)
{
    size_t n = strlen(text), o = 0;
    const char *p = text, *end = text + n;
    char *out = malloc(2 * n + 4);

    cr_assert_not_null(out);
    while (p < end) {
        const char *sp = *p == '+' || *p == '-' ? NULL : memchr(p, ' ', (size_t)(end - p));
        const char *eol = sp != NULL ? sp : end;
        long payload = *p == '$' ? strtol(p + 1, NULL, 10) : -1;
        memcpy(out + o, p, (size_t)(eol - p));
        o += (size_t)(eol - p);
        memcpy(out + o, "\r\n", 2);
        o += 2;
        p = sp != NULL ? sp + 1 : end;
        if (payload >= 0) {
            cr_assert_leq(payload, end - p, "short payload in %s", text);
            memcpy(out + o, p, (size_t)payload);
            o += (size_t)payload;
            memcpy(out + o, "\r\n", 2);
            o += 2;
            p += payload;
            cr_assert(p == end || *p == ' ', "payload too long in %s", text);
            p += p < end;
        }
    }
    *len = o;
    return out;
}

/* A RESP3 reader for the tests: types * % $ : _ + - of well-formed input. */
static redisReply *resp3_read(const char **p)
{
    const char *nl = strstr(*p, "\r\n");
    char type = **p;
    long long v = strtoll(*p + 1, NULL, 10);
    redisReply *r = calloc(1, sizeof(*r));

    cr_assert(nl != NULL && r != NULL);
    if (type == '*' || type == '%') {
        r->type = type == '*' ? REDIS_REPLY_ARRAY : REDIS_REPLY_MAP;
        r->elements = (size_t)(type == '%' ? 2 * v : v);
        r->element = calloc(r->elements + 1, sizeof(*r->element));
        *p = nl + 2;
        for (size_t i = 0; i < r->elements; i++)
            r->element[i] = resp3_read(p);
        return r;
    }
    if (type == '$' && v >= 0) {
        nl = nl + 2 + v;
        r->type = REDIS_REPLY_STRING;
        r->str = strndup(nl - v, (size_t)v);
        r->len = (size_t)v;
    } else if (type == '+' || type == '-') {
        r->type = type == '+' ? REDIS_REPLY_STATUS : REDIS_REPLY_ERROR;
        r->str = strndup(*p + 1, (size_t)(nl - *p - 1));
        r->len = strlen(r->str);
    } else {
        r->type = type == ':' ? REDIS_REPLY_INTEGER : REDIS_REPLY_NIL;
        r->integer = v;
    }
    *p = nl + 2;
    return r;
}

static void resp3_free(redisReply *r)
{
    for (size_t i = 0; r->element != NULL && i < r->elements; i++)
        resp3_free(r->element[i]);
    free(r->element);
    free(r->str);
    free(r);
}

struct reply {
    redisReply *r;
    bool resp3; /* read by resp3_read */
};

static struct reply reply_of(const char *text, int resp)
{
    size_t len;
    char *bytes = resp_of(text, &len);
    struct reply x = {NULL, resp == 3};

    if (resp == 3) {
        const char *p = bytes;
        x.r = resp3_read(&p);
        cr_assert_eq(p, bytes + len, "trailing bytes in %s", text);
    } else {
        redisReader *reader = redisReaderCreate();
        void *out = NULL;
        cr_assert_eq(redisReaderFeed(reader, bytes, len), REDIS_OK);
        cr_assert_eq(redisReaderGetReply(reader, &out), REDIS_OK, "%s", reader->errstr);
        cr_assert_not_null(out, "incomplete: %s", text);
        cr_assert_eq(reader->pos, reader->len, "trailing bytes in %s", text);
        x.r = out;
        redisReaderFree(reader);
    }
    free(bytes);
    return x;
}

static void reply_free(struct reply *x)
{
    if (x->resp3)
        resp3_free(x->r);
    else
        freeReplyObject(x->r);
    x->r = NULL;
}

static char err[256];

/* The map of a reply, parsed then the reply freed: the map borrows nothing. */
static struct map *shards(const char *text, int resp, const char *seed, bool tls)
{
    struct reply x = reply_of(text, resp);
    struct map *m = map_parse_shards(x.r, seed, tls, err, sizeof(err));

    reply_free(&x);
    return m;
}

static struct map *slots(const char *text, int resp, const char *seed)
{
    struct reply x = reply_of(text, resp);
    struct map *m = map_parse_slots(x.r, seed, err, sizeof(err));

    reply_free(&x);
    return m;
}

/* The node that owns slot, or NULL when none does. */
static const struct map_node *map_owner(const struct map *m, unsigned slot)
{
    return m->owner[slot] == MAP_NO_NODE ? NULL : &m->nodes[m->owner[slot]];
}

/* Expects slot's owner to be host:port with id (host NULL: no owner). */
static void expect_owner(const struct map *m, unsigned slot, const char *host, int port,
                         const char *id)
{
    const struct map_node *n = map_owner(m, slot);

    if (host == NULL) {
        cr_expect_null(n, "slot %u has an owner", slot);
        return;
    }
    cr_assert_not_null(n, "slot %u has no owner", slot);
    cr_expect_str_eq(n->host, host, "slot %u", slot);
    cr_expect_eq(n->port, port, "slot %u: port %d", slot, n->port);
    cr_expect_str_eq(n->id, id, "slot %u", slot);
}

/* Expects a and b to send every slot to the same host:port. */
static void expect_same_routing(const struct map *a, const struct map *b)
{
    for (unsigned s = 0; s < SLOT_COUNT; s++) {
        const struct map_node *x = map_owner(a, s), *y = map_owner(b, s);
        cr_assert_eq(x == NULL, y == NULL, "slot %u", s);
        if (x != NULL) {
            cr_assert_str_eq(x->host, y->host, "slot %u", s);
            cr_assert_eq(x->port, y->port, "slot %u", s);
        }
    }
    cr_expect_eq(map_diff(a, b, NULL, NULL), 0);
}

/* ---- parsing ---- */

Test(map, shards_and_slots_agree)
{
    struct map *m[4] = {shards(A_SHARDS2, 2, NULL, false), shards(A_SHARDS3, 3, NULL, false),
                        slots(A_SLOTS2, 2, NULL), slots(A_SLOTS3, 3, NULL)};

    for (size_t i = 0; i < LEN(m); i++) {
        cr_assert_not_null(m[i], "%zu: %s", i, err);
        cr_expect_eq(m[i]->refs, 1);
        cr_expect_eq(m[i]->nnodes, 3, "%zu: %d primaries", i, m[i]->nnodes);
        cr_expect_eq(map_covered(m[i]), SLOT_COUNT);
        expect_owner(m[i], 0, "127.0.0.1", 31001, ID1);
        expect_owner(m[i], 5460, "127.0.0.1", 31001, ID1);
        expect_owner(m[i], 5461, "127.0.0.1", 31002, ID2);
        expect_owner(m[i], 10922, "127.0.0.1", 31002, ID2);
        expect_owner(m[i], 10923, "127.0.0.1", 31003, ID3);
        expect_owner(m[i], 16383, "127.0.0.1", 31003, ID3);
        cr_expect_eq(map_node_of(m[i], "127.0.0.1", 31004), -1, "a replica is a node");
        expect_same_routing(m[0], m[i]);
    }
    /* SHARDS lists 31003 first, SLOTS 31001: the indexes differ, the routing not */
    cr_expect_neq(m[0]->owner[0], m[2]->owner[0]);
    for (size_t i = 0; i < LEN(m); i++)
        map_release(&m[i]);
}

Test(map, nodes_deduplicated)
{
    struct map *a = shards(B_SHARDS2, 2, NULL, false), *b = slots(B_SLOTS2, 2, NULL);

    cr_assert_not_null(a, "%s", err);
    cr_assert_not_null(b, "%s", err);
    cr_expect_eq(a->nnodes, 3);
    cr_expect_eq(b->nnodes, 3, "31002 and 31003 have two entries each");
    expect_owner(b, 5999, "127.0.0.1", 31002, ID2);
    expect_owner(b, 6000, "127.0.0.1", 31003, ID3);
    expect_owner(b, 6009, "127.0.0.1", 31003, ID3);
    expect_owner(b, 6010, "127.0.0.1", 31002, ID2);
    expect_same_routing(a, b);
    cr_expect_eq(map_node_of(b, "127.0.0.1", 31002), b->owner[5461]);
    cr_expect_eq(map_node_of(b, "127.0.0.1", 31002), b->owner[6010]);
    map_release(&a);
    map_release(&b);
}

/* Endpoint "?" (hostname preferred, none announced), "" and NULL (unknown-endpoint). */
Test(map, unknown_endpoints_take_the_ip)
{
    struct map *m[5] = {shards(C_SHARDS2, 2, "seed.example", false),
                        slots(C_SLOTS2, 2, "seed.example"),
                        shards(D_SHARDS2, 2, "seed.example", false),
                        slots(D_SLOTS2, 2, "seed.example"), slots(D_SLOTS3, 3, "seed.example")};

    for (size_t i = 0; i < LEN(m); i++) {
        cr_assert_not_null(m[i], "%zu: %s", i, err);
        expect_owner(m[i], 5461, "127.0.0.1", 31002, ID2);
        expect_owner(m[i], 6000, "127.0.0.1", 31003, ID3);
        cr_expect_eq(map_covered(m[i]), SLOT_COUNT);
    }
    /* the announced hostname is the endpoint under hostname preference only */
    expect_owner(m[0], 0, "cache-a.example", 31001, ID1);
    expect_owner(m[1], 0, "cache-a.example", 31001, ID1);
    expect_owner(m[2], 0, "127.0.0.1", 31001, ID1);
    expect_same_routing(m[0], m[1]);
    expect_same_routing(m[2], m[3]);
    expect_same_routing(m[3], m[4]);
    cr_expect_eq(map_node_of(m[0], "CACHE-A.Example", 31001), m[0]->owner[0]);
    for (size_t i = 0; i < LEN(m); i++)
        map_release(&m[i]);
}

/* Neither endpoint nor ip known: the seed's host, or an error without one. */
Test(map, unknown_ip_takes_the_seed)
{
    struct map *m = shards(T_SHARDS2, 2, "seed.example", false);
    struct map *s = slots(T_SLOTS2, 2, "seed.example");

    cr_assert_not_null(m, "%s", err);
    cr_assert_not_null(s, "%s", err);
    cr_expect_eq(m->nnodes, 1);
    cr_expect_eq(s->nnodes, 1);
    cr_expect_eq(map_covered(m), SLOT_COUNT - 100);
    expect_owner(m, 0, "seed.example", 31010, IDT);
    expect_owner(m, 100, NULL, 0, NULL);
    expect_owner(m, 199, NULL, 0, NULL);
    expect_owner(m, 200, "seed.example", 31010, IDT);
    expect_same_routing(m, s);
    map_release(&m);
    map_release(&s);

    cr_expect_null(shards(T_SHARDS2, 2, NULL, false));
    cr_expect_str_eq(err,
                     "CLUSTER SHARDS: shard 0: primary " IDT ": unknown endpoint and no seed host");
    cr_expect_null(slots(T_SLOTS2, 2, ""));
    cr_expect_str_eq(err,
                     "CLUSTER SLOTS: entry 0: primary " IDT ": unknown endpoint and no seed host");
}

Test(map, tls_takes_the_tls_port)
{
    struct map *m = shards(T_SHARDS2, 2, "seed.example", true);

    cr_assert_not_null(m, "%s", err);
    expect_owner(m, 0, "seed.example", 31011, IDT);
    map_release(&m);
    cr_expect_null(shards(A_SHARDS2, 2, NULL, true));
    cr_expect_str_eq(err, "CLUSTER SHARDS: shard 0: primary " ID3 " has no tls-port");
}

#define NODE(id, port, role, health)                                                               \
    "*12 $2 id $2 " id " $4 port :" port " $2 ip " LOCAL " $8 endpoint " LOCAL " $4 role " role    \
    " $6 health " health

/* A shard without a primary leaves its slots unowned; a primary without
 * slots is no node; of two primaries the online one owns the slots. */
Test(map, primaries_of_shards)
{
    struct map *m =
        shards(
            "*4 *4 $5 slots *2 :0 :99 $5 nodes *1 " NODE("r1", "7001", "$7 replica", "$6 online") " *4 $5 slots *2 :100 :199 $5 nodes *2 " NODE(
                "r2", "7002", "$7 replica",
                "$6 online") " " NODE("p2", "7003", "$6 master",
                                      "$6 online") " *4 $5 slots *0 $5 nodes "
                                                   "*1 " NODE(
                                                       "p3", "7004", "$6 master",
                                                       "$6 online") " *4 $5 "
                                                                    "slots *2 "
                                                                    ":200 "
                                                                    ":299 $5 "
                                                                    "nodes "
                                                                    "*2 " NODE(
                                                                        "p4", "7005", "$6 master",
                                                                        "$4 fail") " " NODE("p5",
                                                                                            "7006",
                                                                                            "$6 "
                                                                                            "maste"
                                                                                            "r",
                                                                                            "$6 "
                                                                                            "onlin"
                                                                                            "e"),
            2, NULL, false);

    cr_assert_not_null(m, "%s", err);
    cr_expect_eq(m->nnodes, 2);
    cr_expect_eq(map_covered(m), 200);
    expect_owner(m, 0, NULL, 0, NULL);
    expect_owner(m, 99, NULL, 0, NULL);
    expect_owner(m, 100, "127.0.0.1", 7003, "p2");
    expect_owner(m, 299, "127.0.0.1", 7006, "p5");
    expect_owner(m, 300, NULL, 0, NULL);
    cr_expect_eq(map_node_of(m, "127.0.0.1", 7004), -1);
    map_release(&m);
}

/* Redis before 4 gave no ids; an empty reply is an empty map. */
Test(map, old_and_empty_replies)
{
    struct map *m =
        slots("*2 *3 :0 :8191 *2 $4 host :7000 *3 :8192 :16383 *2 $4 host :7001", 2, NULL);

    cr_assert_not_null(m, "%s", err);
    expect_owner(m, 8191, "host", 7000, "");
    expect_owner(m, 8192, "host", 7001, "");
    map_release(&m);
    m = shards("*0", 2, NULL, false);
    cr_assert_not_null(m, "%s", err);
    cr_expect_eq(m->nnodes, 0);
    cr_expect_eq(map_covered(m), 0);
    cr_expect_null(map_owner(m, 0));
    map_release(&m);
}

/* ---- hostile replies ---- */

struct bad_case {
    bool slots; /* CLUSTER SLOTS, else SHARDS */
    const char *text;
    const char *err;
};

#define SHARD(slots, node) "*1 *4 $5 slots " slots " $5 nodes *1 " node
#define NODE_PORT(port)    "*8 $2 id $2 n1 $4 port " port " $8 endpoint " LOCAL " $4 role $6 master"

static const struct bad_case BAD[] = {
    {false, "-ERR This instance has cluster support disabled",
     "CLUSTER SHARDS: ERR This instance has cluster support disabled"},
    {false, ":1", "CLUSTER SHARDS: reply of type 3 is not an array"},
    {false, "$-1", "CLUSTER SHARDS: reply of type 4 is not an array"},
    {false, "*1 :5", "CLUSTER SHARDS: shard 0: not a map"},
    {false, "*1 *3 $5 slots *0 $5 nodes", "CLUSTER SHARDS: shard 0: not a map"},
    {false, "*1 *2 $5 slots *2 :0 :5460", "CLUSTER SHARDS: shard 0: nodes is not an array"},
    {false, "*1 *4 $5 slots *2 :0 :5460 $5 nodes :1",
     "CLUSTER SHARDS: shard 0: nodes is not an array"},
    {false, "*1 *2 $5 nodes *0", "CLUSTER SHARDS: shard 0: slots is not an array of ranges"},
    {false, SHARD("*1 :0", "*0"), "CLUSTER SHARDS: shard 0: slots is not an array of ranges"},
    {false, "*1 *4 $5 slots :0 $5 nodes *0",
     "CLUSTER SHARDS: shard 0: slots is not an array of ranges"},
    {false, SHARD("*2 :0 :1", ":7"), "CLUSTER SHARDS: shard 0: node 0 is not a map"},
    {false, SHARD("*2 :0 :1", "*3 $2 id $2 n1 $4 role"),
     "CLUSTER SHARDS: shard 0: node 0 is not a map"},
    {false, SHARD("*2 :0 :1", "*4 $2 id $2 n1 $4 port :7000"),
     "CLUSTER SHARDS: shard 0: node 0 has no role"},
    {false, SHARD("*2 :0 :1", "*2 $4 role :1"), "CLUSTER SHARDS: shard 0: node 0 has no role"},
    {false, SHARD("*2 :0 :16384", NODE_PORT(":7000")),
     "CLUSTER SHARDS: shard 0: slot 16384 out of 0..16383"},
    {false, SHARD("*2 :-1 :5", NODE_PORT(":7000")),
     "CLUSTER SHARDS: shard 0: slot -1 out of 0..16383"},
    {false, SHARD("*2 :9 :0", NODE_PORT(":7000")),
     "CLUSTER SHARDS: shard 0: slot range 9-0 ends before it starts"},
    {false, SHARD("*2 $1 0 :5", NODE_PORT(":7000")),
     "CLUSTER SHARDS: shard 0: slot range is not two integers"},
    {false, SHARD("*2 :0 :5", NODE_PORT("$4 7000")),
     "CLUSTER SHARDS: shard 0: primary n1: port is not an integer"},
    {false, SHARD("*2 :0 :5", NODE_PORT(":0")),
     "CLUSTER SHARDS: shard 0: primary n1: port 0 out of 1..65535"},
    {false, SHARD("*2 :0 :5", NODE_PORT(":65536")),
     "CLUSTER SHARDS: shard 0: primary n1: port 65536 out of 1..65535"},
    {false, SHARD("*2 :0 :5", "*6 $2 id $2 n1 $8 endpoint $1 h $4 role $6 master"),
     "CLUSTER SHARDS: shard 0: primary n1 has no port"},
    {false, SHARD("*2 :0 :5", "*4 $2 id :1 $4 role $6 master"),
     "CLUSTER SHARDS: shard 0: node id is not a string"},
    {false,
     SHARD("*2 :0 :5", "*6 $2 id $41 0123456789012345678901234567890123456789x $4 port :1 "
                       "$4 role $6 master"),
     "CLUSTER SHARDS: shard 0: node id of 41 bytes is not an id"},
    {false, SHARD("*2 :0 :5", "*8 $2 id $2 n1 $4 port :1 $8 endpoint :5 $4 role $6 master"),
     "CLUSTER SHARDS: shard 0: primary n1: endpoint is not a string"},
    {false, SHARD("*2 :0 :5", "*8 $2 id $2 n1 $4 port :1 $8 endpoint $1 ? $4 role $6 master"),
     "CLUSTER SHARDS: shard 0: primary n1: unknown endpoint and no seed host"},
    {false,
     "*2 *4 $5 slots *2 :0 :10 $5 nodes *1 " NODE_PORT(":7000") " *4 $5 slots *2 :10 :20 "
                                                                "$5 nodes *1 " NODE_PORT(":7001"),
     "CLUSTER SHARDS: shard 1: slot 10 claimed twice"},
    {true, "-ERR unknown subcommand 'SLOTS'", "CLUSTER SLOTS: ERR unknown subcommand 'SLOTS'"},
    {true, "+OK", "CLUSTER SLOTS: reply of type 5 is not an array"},
    {true, "*1 :3", "CLUSTER SLOTS: entry 0: not [start, end, primary, ...]"},
    {true, "*1 *2 :0 :5460", "CLUSTER SLOTS: entry 0: not [start, end, primary, ...]"},
    {true, "*1 *3 :0 :5460 *1 " LOCAL,
     "CLUSTER SLOTS: entry 0: primary is not [endpoint, port, ...]"},
    {true, "*1 *3 :0 :5460 $1 x", "CLUSTER SLOTS: entry 0: primary is not [endpoint, port, ...]"},
    {true, "*1 *3 :0 :5460 *2 " LOCAL " $4 7000",
     "CLUSTER SLOTS: entry 0: primary (no id): port is not an integer"},
    {true, "*1 *3 :0 :5460 *2 " LOCAL " :-1",
     "CLUSTER SLOTS: entry 0: primary (no id): port -1 out of 1..65535"},
    {true, "*1 *3 :0 :99999 *2 " LOCAL " :7000",
     "CLUSTER SLOTS: entry 0: slot 99999 out of 0..16383"},
    {true, "*1 *3 :6 :5 *2 " LOCAL " :7000",
     "CLUSTER SLOTS: entry 0: slot range 6-5 ends before it starts"},
    {true, "*1 *3 $1 0 :1 *2 " LOCAL " :7000",
     "CLUSTER SLOTS: entry 0: slot range is not two integers"},
    {true, "*1 *3 :0 :1 *2 :5 :7000",
     "CLUSTER SLOTS: entry 0: primary (no id): endpoint is not a string"},
    {true, "*1 *3 :0 :1 *3 $1 a :7000 :5", "CLUSTER SLOTS: entry 0: node id is not a string"},
    {true, "*1 *3 :0 :1 *4 $1 a :7000 $2 n1 :5",
     "CLUSTER SLOTS: entry 0: primary's metadata is not a map"},
    {true, "*1 *3 :0 :1 *4 $1 a :7000 $2 n1 *1 $2 ip",
     "CLUSTER SLOTS: entry 0: primary's metadata is not a map"},
    {true, "*1 *3 :0 :1 *3 $1 ? :7000 $2 n1",
     "CLUSTER SLOTS: entry 0: primary n1: unknown endpoint and no seed host"},
    {true, "*2 *3 :0 :5 *2 $1 a :7000 *3 :5 :9 *2 $1 b :7000",
     "CLUSTER SLOTS: entry 1: slot 5 claimed twice"},
};

Test(map, hostile_replies)
{
    for (size_t i = 0; i < LEN(BAD); i++) {
        const struct bad_case *c = &BAD[i];
        struct map *m = c->slots ? slots(c->text, 2, NULL) : shards(c->text, 2, NULL, false);
        cr_expect_null(m, "%zu: %s parsed", i, c->text);
        cr_expect_str_eq(err, c->err, "%zu: %s", i, c->text);
        map_release(&m);
    }
    cr_expect_null(map_parse_shards(NULL, NULL, false, err, sizeof(err)));
    cr_expect_str_eq(err, "CLUSTER SHARDS: no reply");
    cr_expect_null(map_parse_slots(NULL, NULL, NULL, 0));
}

/* SLOTS text of n entries, one slot each; entry i at host:port(i). */
static char *many_entries(int n, int distinct, size_t host_len)
{
    char host[300];
    size_t cap = (size_t)n * 400 + 16, o;
    char *text = malloc(cap);

    cr_assert(host_len < sizeof(host));
    memset(host, 'h', host_len);
    host[host_len] = '\0';
    o = (size_t)snprintf(text, cap, "*%d", n);
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(text + o, cap - o, " *3 :%d :%d *2 $%zu %s :%d", i, i, host_len, host,
                              1000 + i % distinct);
    return text;
}

Test(map, limits)
{
    struct {
        int entries, distinct;
        size_t host_len;
        const char *err; /* NULL: parses */
    } cases[] = {
        {256, 256, 9, NULL},
        {257, 256, 9, NULL},
        {257, 257, 9, "CLUSTER SLOTS: entry 256: more than 256 primaries"},
        {1000, 1000, 9, "CLUSTER SLOTS: entry 256: more than 256 primaries"},
        {1, 1, MAP_HOST_MAX, NULL},
        {1, 1, MAP_HOST_MAX + 1,
         "CLUSTER SLOTS: entry 0: primary (no id): endpoint of 256 bytes is not a host"},
    };
    for (size_t i = 0; i < LEN(cases); i++) {
        char *text = many_entries(cases[i].entries, cases[i].distinct, cases[i].host_len);
        struct map *m = slots(text, 2, NULL);
        if (cases[i].err == NULL) {
            cr_expect_not_null(m, "%zu: %s", i, err);
            cr_expect_eq(m != NULL ? m->nnodes : -1, cases[i].distinct);
        } else {
            cr_expect_null(m, "%zu parsed", i);
            cr_expect_str_eq(err, cases[i].err, "%zu", i);
        }
        map_release(&m);
        free(text);
    }
}

/* What any map from any reply must be. */
static void expect_sane(const struct map *m)
{
    cr_assert_eq(m->refs, 1);
    cr_assert(m->nnodes >= 0 && m->nnodes <= MAP_NODES_MAX);
    for (int i = 0; i < m->nnodes; i++) {
        cr_assert(m->nodes[i].port >= 1 && m->nodes[i].port <= 65535);
        cr_assert_neq(m->nodes[i].host[0], '\0');
    }
    unsigned bad = 0;
    for (unsigned s = 0; s < SLOT_COUNT; s++)
        bad += m->owner[s] != MAP_NO_NODE && m->owner[s] >= m->nnodes;
    cr_assert_eq(bad, 0, "%u slots owned by no node", bad);
}

static void parse_mutant(const redisReply *r, bool is_slots, size_t *parsed, size_t *refused)
{
    for (int tls = 0; tls < (is_slots ? 1 : 2); tls++) {
        struct map *m = is_slots ? map_parse_slots(r, "seed", err, sizeof(err))
                                 : map_parse_shards(r, "seed", tls, err, sizeof(err));
        if (m != NULL) {
            cr_expect_str_eq(err, "");
            expect_sane(m);
            ++*parsed;
        } else {
            cr_expect(strncmp(err, "CLUSTER SLOTS: ", 15) == 0 ||
                          strncmp(err, "CLUSTER SHARDS: ", 16) == 0,
                      "err [%s]", err);
            ++*refused;
        }
        map_release(&m);
    }
}

/* Every element of r cut short, and replaced by each other type. */
static void mutate(redisReply *root, redisReply *r, bool is_slots, size_t *parsed, size_t *refused)
{
    static char question[] = "?";
    const redisReply saved = *r;
    const long long ints[] = {-1, 0, 5, 16384, 65536};

    for (size_t k = 0; r->element != NULL && k < saved.elements; k++) {
        r->elements = k;
        parse_mutant(root, is_slots, parsed, refused);
        *r = saved;
        mutate(root, r->element[k], is_slots, parsed, refused);
    }
    for (size_t i = 0; i < LEN(ints); i++) {
        *r = (redisReply){.type = REDIS_REPLY_INTEGER, .integer = ints[i]};
        parse_mutant(root, is_slots, parsed, refused);
    }
    *r = (redisReply){.type = REDIS_REPLY_NIL};
    parse_mutant(root, is_slots, parsed, refused);
    *r = (redisReply){.type = REDIS_REPLY_STRING, .str = question, .len = 1};
    parse_mutant(root, is_slots, parsed, refused);
    *r = (redisReply){.type = REDIS_REPLY_ARRAY};
    parse_mutant(root, is_slots, parsed, refused);
    *r = (redisReply){.type = REDIS_REPLY_MAP};
    parse_mutant(root, is_slots, parsed, refused);
    *r = saved;
}

Test(map, mutated_replies)
{
    struct {
        const char *text;
        int resp;
        bool slots;
    } cases[] = {
        {A_SHARDS2, 2, false}, {A_SHARDS3, 3, false}, {C_SHARDS2, 2, false}, {T_SHARDS2, 2, false},
        {B_SLOTS2, 2, true},   {D_SLOTS3, 3, true},   {T_SLOTS2, 2, true},
    };
    size_t parsed = 0, refused = 0;

    for (size_t i = 0; i < LEN(cases); i++) {
        struct reply x = reply_of(cases[i].text, cases[i].resp);
        mutate(x.r, x.r, cases[i].slots, &parsed, &refused);
        reply_free(&x);
    }
    cr_expect_gt(parsed, 100);
    cr_expect_gt(refused, 100);
}

/* ---- diff, references ---- */

struct ranges {
    unsigned first[8], last[8];
    int n;
};

static void collect(void *arg, unsigned first, unsigned last)
{
    struct ranges *r = arg;

    cr_assert_leq(first, last);
    if (r->n < (int)LEN(r->first)) {
        r->first[r->n] = first;
        r->last[r->n] = last;
    }
    r->n++;
}

/* Expects map_diff(a, b) to give want[0..n) as first, last pairs. */
static void expect_diff(const struct map *a, const struct map *b, size_t count,
                        const unsigned *want, int n)
{
    struct ranges r = {0};

    cr_expect_eq(map_diff(a, b, collect, &r), count);
    cr_expect_eq(r.n, n, "%d ranges, want %d", r.n, n);
    for (int i = 0; i < n && i < r.n; i++) {
        cr_expect_eq(r.first[i], want[2 * i], "range %d starts at %u", i, r.first[i]);
        cr_expect_eq(r.last[i], want[2 * i + 1], "range %d ends at %u", i, r.last[i]);
    }
}

Test(map, diff_of_a_moved_range)
{
    struct map *a = shards(A_SHARDS2, 2, NULL, false), *a2 = slots(A_SLOTS2, 2, NULL);
    struct map *b = slots(B_SLOTS2, 2, NULL), *c = shards(C_SHARDS2, 2, NULL, false);
    const unsigned moved[] = {6000, 6009};
    const unsigned renamed[] = {0, 5460, 6000, 6009};
    const unsigned all[] = {0, 5460, 5461, 10922, 10923, 16383};

    cr_assert(a && a2 && b && c, "%s", err);
    expect_diff(a, b, 10, moved, 1);
    expect_diff(b, a, 10, moved, 1);
    expect_diff(a2, b, 10, moved, 1);
    expect_diff(a, a2, 0, NULL, 0);
    expect_diff(a, a, 0, NULL, 0);
    /* 31001 is cache-a.example:31001 in C: another host, so its slots move */
    expect_diff(a, c, 5461 + 10, renamed, 2);
    expect_diff(NULL, a2, SLOT_COUNT, all, 3);
    expect_diff(a2, NULL, SLOT_COUNT, all, 3);
    expect_diff(NULL, NULL, 0, NULL, 0);
    map_release(&a);
    map_release(&a2);
    map_release(&b);
    map_release(&c);
}

/* A slot whose owner left the primaries: a replica took over. */
Test(map, failed_over)
{
    struct map *a = shards(A_SHARDS2, 2, NULL, false), *b = slots(B_SLOTS2, 2, NULL);
    struct map *one = slots("*1 *3 :0 :16383 *2 " LOCAL " :31010", 2, NULL);
    struct map *other = slots("*1 *3 :0 :16383 *2 " LOCAL " :31011", 2, NULL);
    struct map *half =
        slots("*2 *3 :0 :99 *2 " LOCAL " :31010 *3 :100 :16383 *2 " LOCAL " :31011", 2, NULL);
    struct map *none = slots("*1 *3 :0 :99 *2 " LOCAL " :31011", 2, NULL);

    cr_assert(a && b && one && other && half && none, "%s", err);
    cr_expect(map_failed_over(one, other), "31010's slots went to 31011, which replaced it");
    cr_expect(map_failed_over(half, none), "31010 is gone, its slots 0-99 are 31011's");
    cr_expect_not(map_failed_over(one, half), "a migration: 31010 is still a primary");
    cr_expect_not(map_failed_over(a, b), "a range migrated between primaries");
    cr_expect_not(map_failed_over(one, one), "the same map");
    cr_expect_not(map_failed_over(NULL, one), "no map before");
    cr_expect_not(map_failed_over(other, none), "slots left without an owner");
    map_release(&a);
    map_release(&b);
    map_release(&one);
    map_release(&other);
    map_release(&half);
    map_release(&none);
}

/* Slots that lose their owner, or gain one, differ too. */
Test(map, diff_of_uncovered_slots)
{
    struct map *t = shards(T_SHARDS2, 2, "127.0.0.1", false);
    struct map *one = slots("*1 *3 :0 :16383 *2 " LOCAL " :31010", 2, NULL);
    const unsigned hole[] = {100, 199};

    cr_assert(t && one, "%s", err);
    expect_diff(t, one, 100, hole, 1);
    expect_diff(one, t, 100, hole, 1);
    map_release(&t);
    map_release(&one);
}

Test(map, references)
{
    struct map *m = shards(A_SHARDS2, 2, NULL, false), *held;

    cr_assert_not_null(m, "%s", err);
    held = map_hold(m);
    cr_expect_eq(held, m);
    cr_expect_eq(m->refs, 2);
    map_release(&held);
    cr_expect_null(held);
    cr_expect_eq(m->refs, 1);
    expect_owner(m, 0, "127.0.0.1", 31001, ID1); /* still there (ASan would say) */
    map_release(&m);
    cr_expect_null(m);
    map_release(&m);
    map_release(NULL);
    cr_expect_null(map_hold(NULL));
}

static void *hold_and_release(void *arg)
{
    for (int i = 0; i < 100000; i++) {
        struct map *m = map_hold(arg);
        map_release(&m);
    }
    return NULL;
}

Test(map, references_across_threads)
{
    struct map *m = shards(A_SHARDS2, 2, NULL, false);
    pthread_t th[4];

    cr_assert_not_null(m, "%s", err);
    for (size_t i = 0; i < LEN(th); i++)
        cr_assert_eq(pthread_create(&th[i], NULL, hold_and_release, m), 0);
    for (size_t i = 0; i < LEN(th); i++)
        pthread_join(th[i], NULL);
    cr_expect_eq(m->refs, 1);
    map_release(&m);
}

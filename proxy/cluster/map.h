/* map.h - the slot map of a Redis Cluster: which primary serves each slot.
 *
 * Built from the reply of CLUSTER SHARDS (Redis 7+) or CLUSTER SLOTS (older
 * servers) as hiredis reads it; neither call is made here. A map is immutable
 * once parsed and shared by reference count: a thread that routes holds the
 * map it routes with while a refresh publishes the next one. Pure: no I/O.
 *
 * Replies as Redis 7.0 gives them (see tests/unit/proxy/cluster/map.c):
 * - CLUSTER SHARDS: an array of shards, each a map {slots, nodes}; slots is a
 *   flat array of integers, start and end of each range; each node a map
 *   {id, port, tls-port, ip, endpoint, hostname, role, replication-offset,
 *   health}, where port and tls-port are there only when they are set and
 *   hostname only when announced. endpoint is ip, or hostname, or "" for
 *   cluster-preferred-endpoint-type unknown-endpoint, or "?" when the
 *   preferred hostname is not set. A primary without slots is a shard of its
 *   own with an empty slots array.
 * - CLUSTER SLOTS: an array of [start, end, primary, replicas...], each node
 *   [endpoint, port, id, {metadata}] where endpoint is as above but NULL for
 *   unknown-endpoint, and the metadata map (7.0+) gives ip and hostname when
 *   the endpoint is not that. port is the TLS port when the server runs
 *   tls-cluster and the asking connection is TLS, else the plain port.
 * A map is a RESP2 array of key, value pairs or a RESP3 map (hiredis >= 1.0).
 */
#ifndef NEARCACHE_MAP_H
#define NEARCACHE_MAP_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/proto/slot.h"

#define MAP_NODES_MAX 256    /* primaries in one map */
#define MAP_NO_NODE   0xffff /* owner of a slot no primary serves */
#define MAP_ID_MAX    40     /* a node id: 40 hex digits */
#define MAP_HOST_MAX  255    /* a host name or address */

/* RESP3 maps as hiredis >= 1.0 reads them (elements: key, value, ...).
 * Debian's hiredis 0.14 reads no RESP3, so never gives this type; the value
 * is accepted whatever the hiredis, so that one build parses both. */
#ifndef REDIS_REPLY_MAP
#define REDIS_REPLY_MAP 9
#endif

/* A primary. */
struct map_node {
    char id[MAP_ID_MAX + 1];     /* node id; "" when the reply gave none */
    char host[MAP_HOST_MAX + 1]; /* where to connect: host name or address */
    int port;                    /* 1..65535: the port, or the TLS port if asked */
};

struct map {
    int refs;                   /* changed atomically: map_hold, map_release */
    int nnodes;                 /* primaries that own slots, no two at one host:port */
    struct map_node *nodes;     /* owned */
    uint16_t owner[SLOT_COUNT]; /* index into nodes, or MAP_NO_NODE */
};

/* Parses a CLUSTER SHARDS reply (RESP2 or RESP3). A shard's slots belong to
 * its node of role "master" (the first one "online" when there are several);
 * a shard without one leaves its slots unowned; replicas are skipped. A
 * primary's host is its endpoint, or when that is unknown ("", "?" or
 * missing) its "ip", or when that is unknown too seed_host (the address the
 * reply came from; may be NULL, then an unknown endpoint is an error). tls:
 * take each primary's "tls-port" rather than its "port". Returns a map with
 * refs 1 (the caller owns it: map_release), or NULL with a one-line reason in
 * err ("CLUSTER SHARDS: ...") when r is NULL, an error reply or malformed: a
 * wrong type, a missing field, a slot out of 0..16383, a range whose start
 * is past its end, a slot claimed twice, an id or host too long, a port out
 * of 1..65535, more than MAP_NODES_MAX primaries, or memory running out. */
struct map *map_parse_shards(const redisReply *r, const char *seed_host, bool tls, char *err,
                             size_t errlen);

/* The same for a CLUSTER SLOTS reply. An unknown endpoint ("", "?" or NULL)
 * is replaced by the "ip" of the node's metadata, else by seed_host. Each
 * port is as the server gave it (see above): there is no tls choice. */
struct map *map_parse_slots(const redisReply *r, const char *seed_host, char *err, size_t errlen);

/* Takes one more reference to m and returns it (NULL: returns NULL). Any
 * thread, with a reference already held. */
struct map *map_hold(struct map *m);

/* Drops the reference *m and sets *m to NULL; the last one frees the map.
 * Accepts m == NULL and *m == NULL. */
void map_release(struct map **m);

/* The index in m->nodes of the primary at host:port (host compared
 * case-insensitively), or -1. O(nnodes). */
int map_node_of(const struct map *m, const char *host, int port);

/* Calls fn(arg, first, last) for each maximal range of slots that changed
 * owner between a and b, owners compared by host and port (not by index);
 * a range ends where the slots' old or new owner changes. a may be NULL: a
 * map that owns no slot. Returns the number of slots that changed (0: same
 * routing). fn may be NULL. O(SLOT_COUNT + nnodes^2). */
size_t map_diff(const struct map *a, const struct map *b,
                void (*fn)(void *arg, unsigned first, unsigned last), void *arg);

/* Whether a slot owned in both a and b changed owner from a primary of a
 * that b no longer has as a primary: a failover (a replica took over), not
 * a migration between primaries. a may be NULL (false). O(SLOT_COUNT +
 * nnodes^2). */
bool map_failed_over(const struct map *a, const struct map *b);

/* The number of slots that have an owner (SLOT_COUNT: the cluster is
 * fully covered). */
unsigned map_covered(const struct map *m);

#endif

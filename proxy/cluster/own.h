/* own.h - the CLUSTER commands a cluster's clients get from the proxy.
 *
 * To its clients the proxy is one Redis; to a cluster-aware client (one that
 * asks CLUSTER SLOTS first) it is a cluster of one node owning every slot,
 * reached where the client reached it, so that such a client sends all its
 * requests through the proxy too. CLUSTER INFO, MYID, SLOTS, SHARDS, NODES,
 * KEYSLOT, REPLICAS, SLAVES, LINKS and MYSHARDID are answered so;
 * COUNTKEYSINSLOT and GETKEYSINSLOT go to the slot's node; the commands that
 * change a cluster (ADDSLOTS, SETSLOT, FAILOVER, MEET, RESET, ...) are refused:
 * they are for the nodes themselves. READONLY, READWRITE and ASKING are
 * answered +OK: the proxy reads from primaries and follows redirects itself.
 * Pure: no I/O.
 */
#ifndef NEARCACHE_CLUSTER_OWN_H
#define NEARCACHE_CLUSTER_OWN_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/proto/request.h"

typedef enum {
    OWN_FORWARD = 0, /* not one of these: routed as any command */
    OWN_ANSWERED,    /* *reply holds the answer */
    OWN_SLOT,        /* goes to the node of *slot (COUNTKEYSINSLOT, GETKEYSINSLOT) */
} own_e;

/* Where the client reached the proxy, and what it sees of the cluster. */
struct own_view {
    const char *host; /* the address the client connected to */
    int port;
    int resp;         /* the client's protocol: 2, or 3 after HELLO 3 */
    bool ok;          /* every slot of the cluster has a primary known */
    const char *name; /* the listen address: the node id is made from it */
};

/* What rq (a complete request) is to the proxy in front of a cluster. For
 * OWN_ANSWERED, *reply is a malloc'd answer of *len bytes (the caller frees
 * it; NULL when out of memory). */
own_e cluster_own(const struct request *rq, const struct own_view *v, char **reply, size_t *len,
                  int *slot);

#endif

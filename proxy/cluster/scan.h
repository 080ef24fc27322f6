/* scan.h - SCAN over every primary of a cluster, with one cursor.
 *
 * The cursor a client sees carries which primary it is at (its low 8 bits:
 * the index among the primaries, in slot order) and that node's own cursor
 * (the bits above). SCAN 0 starts at the first primary; when a primary's
 * cursor comes back 0 the next one starts, and 0 comes back to the client
 * after the last. Like Redis Cluster's clients, a scan that spans a change of
 * the map may miss or repeat keys that moved. Pure: no I/O.
 */
#ifndef NEARCACHE_SCAN_H
#define NEARCACHE_SCAN_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/proto/request.h"

#define SCAN_NODES_MAX 256 /* the cursor's low 8 bits */

/* Whether rq is a SCAN. */
bool scan_is(const struct request *rq);

/* The SCAN for the node rq's cursor names, in a malloc'd buffer (*len bytes;
 * the caller frees it), its index among nnodes primaries in *node. NULL with
 * *node -1 when the cursor is not one of these (the node answers the
 * error), or -2 when the scan is over (the node the cursor names is past the
 * last); NULL with *node >= 0 when out of memory. */
char *scan_request(const struct request *rq, int nnodes, int *node, size_t *len);

/* The client's reply from node's reply to its SCAN (data): the node's cursor
 * carried into the client's. A malloc'd buffer of *outlen bytes, or NULL
 * (out of memory, or not a SCAN reply: data goes to the client as it is). */
char *scan_reply(const char *data, size_t len, int node, int nnodes, size_t *outlen);

#endif

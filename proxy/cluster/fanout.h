/* fanout.h - a multi-key command over several slots, split and merged.
 *
 * In a cluster, MGET, MSET, DEL, UNLINK, EXISTS and TOUCH whose keys hash to
 * several slots go as one command per slot (that slot's keys, or key-value
 * pairs for MSET, in request order), and their replies are merged in request
 * order into what one Redis answers: MGET the values in key order, MSET +OK,
 * the others the sum of the counts. When a part's reply is an error (or not
 * what its command answers), the reply is that of the first such part in key
 * order. DBSIZE, KEYS, FLUSHALL and FLUSHDB go to every primary, and their
 * replies are summed, put one after the other, or +OK. Pure: the parts go
 * out as exchanges (exchange.h) that the caller sends, and the merged reply
 * goes to the owner exchange.
 */
#ifndef NEARCACHE_FANOUT_H
#define NEARCACHE_FANOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/exchange.h"
#include "proxy/proto/request.h"

typedef enum {
    FANOUT_NONE = 0, /* not a command that splits */
    FANOUT_VALUES,   /* MGET: an array of the keys' values */
    FANOUT_OK,       /* MSET: +OK */
    FANOUT_SUM,      /* DEL, UNLINK, EXISTS, TOUCH; DBSIZE: the sum of the counts */
    FANOUT_CONCAT,   /* KEYS: the arrays one after the other */
} fanout_kind_e;

struct fanout;

/* How rq splits: FANOUT_NONE for other commands, and for a request its
 * command would refuse (MSET with a key and no value). */
fanout_kind_e fanout_kind(const struct request *rq);

/* Splits rq, a request of kind (fanout_kind's, not FANOUT_NONE), by the slots
 * of its keys; the merged reply will go to owner (owner->done, once).
 * Returns NULL when out of memory (the caller still owns owner then). */
struct fanout *fanout_create(const struct request *rq, fanout_kind_e kind, struct exchange *owner);

/* How rq goes to every primary of a cluster: DBSIZE (FANOUT_SUM), KEYS
 * (FANOUT_CONCAT), FLUSHALL and FLUSHDB (FANOUT_OK); FANOUT_NONE for the
 * others. */
fanout_kind_e fanout_broadcast_kind(const struct request *rq);

/* rq as it is, once to each of n nodes (a slot of each in slots), merged as
 * kind says. NULL when out of memory (the caller still owns owner then). */
struct fanout *fanout_broadcast(const struct request *rq, fanout_kind_e kind, const int *slots,
                                size_t n, struct exchange *owner);

/* The number of parts, part i's slot and request bytes (valid while f is). */
size_t fanout_parts(const struct fanout *f);
int fanout_slot(const struct fanout *f, size_t i);
void fanout_request(const struct fanout *f, size_t i, const char **data, size_t *len);

/* The exchange the merged reply goes to. */
struct exchange *fanout_owner(const struct fanout *f);

/* Whether part i may be sent again after a redirect: true and counted while
 * it has been redirected fewer than max times. */
bool fanout_redirect(struct fanout *f, size_t i, int max);

/* Part i's reply (copied). Once every part has one and fanout_sent has been
 * called, the merged reply goes to the owner and f is freed. */
void fanout_reply(struct fanout *f, size_t i, const char *data, size_t len, uint64_t now_ms);

/* Every part has been sent (or answered): the merge may happen from now on,
 * now if every reply is in. */
void fanout_sent(struct fanout *f, uint64_t now_ms);

#endif

/* mget.h - an MGET served key by key.
 *
 * Each key of an MGET is looked up as a GET would be. When all are hits the
 * cache answers at once; otherwise an MGET of the missing keys goes to Redis
 * in place of the client's, with a PTTL per missing key behind it to fill
 * the tier, and the client's reply is merged from the hits and Redis's
 * reply, in the client's key order. Reference-counted: the MGET's request
 * and each PTTL behind it hold one reference. Pure: the PTTLs go out as
 * exchanges (exchange.h).
 */
#ifndef NEARCACHE_CACHE_MGET_H
#define NEARCACHE_CACHE_MGET_H

#include <stddef.h>
#include <stdint.h>

struct cache;
struct cache_mget;
struct exchange;

/* The MGET of the missing keys, to forward in place of the client's. */
void cache_mget_request(const struct cache_mget *m, const char **data, size_t *len);

/* The number of PTTL requests to send behind it, and the i-th of them. */
size_t cache_mget_misses(const struct cache_mget *m);
void cache_mget_pttl(const struct cache_mget *m, size_t i, const char **data, size_t *len);

/* The exchange of the PTTL of miss i (whose bytes go in *data, *len),
 * holding a reference to m: its reply completes that miss's fill
 * (cache_mget_finish). NULL when out of memory or the miss has no fill. */
struct exchange *cache_mget_exchange(struct cache_mget *m, size_t i, const char **data,
                                     size_t *len);

/* Takes one more reference (for a PTTL request in flight). */
struct cache_mget *cache_mget_get(struct cache_mget *m);

/* Builds the client's reply from the hits and Redis's reply to the MGET of
 * the misses (an error reply is passed on as it is), and keeps each fetched
 * value for its fill. *out stays valid until the next cache call. */
void cache_mget_merge(struct cache *c, struct cache_mget *m, const char *data, size_t len,
                      const char **out, size_t *outlen);

/* Completes the fill of miss i with its PTTL reply. */
void cache_mget_finish(struct cache *c, struct cache_mget *m, size_t i, const char *data,
                       size_t len, uint64_t now_ms);

/* Drops one reference; the last frees it. *m is set to NULL. */
void cache_mget_put(struct cache_mget **m);

#endif

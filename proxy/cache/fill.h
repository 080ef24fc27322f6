/* fill.h - a read forwarded to Redis that may fill the tier.
 *
 * A cacheable read that misses is forwarded with a PTTL of its key right
 * behind it on the same connection. The read's reply is kept when it comes;
 * the PTTL's reply completes the fill: the reply is stored with an expiry
 * no later than the key's own (and cache.ttl, and the rule's), unless either
 * reply is an error or the key was invalidated since the read was sent.
 *
 * Single flight: while a read is in flight, the same read (same database,
 * key, arguments and protocol) by other clients joins it instead of going to
 * Redis too: the joined are answered with its reply, as long as the key was
 * not invalidated since it was sent; otherwise each is told to send its own
 * (cache_fill_join). So a hot key that expires costs Redis one read, not one
 * per client. Pure: the PTTL goes out as an exchange (exchange.h).
 */
#ifndef NEARCACHE_CACHE_FILL_H
#define NEARCACHE_CACHE_FILL_H

#include <stddef.h>
#include <stdint.h>

struct cache;
struct cache_fill;
struct exchange;

/* The exchange of the PTTL behind a read with fill f (whose bytes go in
 * *data, *len): its reply completes f (cache_fill_finish), and it owns f
 * from then on. NULL when out of memory; f is then freed. */
struct exchange *cache_fill_exchange(struct cache_fill *f, const char **data, size_t *len);

/* The PTTL request to send right behind the read. */
void cache_fill_pttl(const struct cache_fill *f, const char **data, size_t *len);

/* Keeps a copy of the read's reply for the fill, and answers the reads
 * joined to it (cache_fill_join) at now_ms. */
void cache_fill_reply(struct cache_fill *f, const char *data, size_t len, uint64_t now_ms);

/* Joins x, the exchange of another client's identical read, to f (from
 * cache_plan's plan->join): x's done function gets f's read reply, or NULL
 * data when the key was invalidated since f's read was sent or f ends
 * without a reply: x's read must then be sent to Redis after all. */
void cache_fill_join(struct cache_fill *f, struct exchange *x);

/* Completes a fill with the PTTL reply: stores the read's reply with an
 * expiry capped by the key's remaining TTL and cache.ttl, unless either
 * reply is an error or the key was invalidated since the read was sent.
 * Frees f. */
void cache_fill_finish(struct cache *c, struct cache_fill *f, const char *data, size_t len,
                       uint64_t now_ms);

/* Frees a fill that will not complete (the reads joined to it are told to
 * go on their own); *f is set to NULL. */
void cache_fill_destroy(struct cache_fill **f);

#endif

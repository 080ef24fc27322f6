/* inspect.h - what the local tier holds of one key, for NEARCACHE INSPECT.
 *
 * Looks without touching: the tier's frequency sketch, LRU order and
 * counters, the rules' counters and windows all stay as they were (the TTL
 * a fill would get is worked out as a fill would, modules' ttl hooks
 * included: they must not keep state of their own). Pure: no I/O.
 */
#ifndef NEARCACHE_CACHE_INSPECT_H
#define NEARCACHE_CACHE_INSPECT_H

#include <stddef.h>
#include <stdint.h>

struct cache;
struct text;

/* Appends "name:value" lines (CRLF-terminated) about key in database db to
 * out, the key's and the arguments' bytes escaped (text.h):
 *   cached:0|1            whether the tier holds a variant of it
 *   variant:resp<2|3> bytes=N stored=N ttl_ms=N compressed=0|1 current=0|1 <command> [<arg>...]
 *                         one per variant held: its reply's protocol and
 *                         length, the bytes stored (less when compressed),
 *                         the time left (-1: none), and whether its rule and
 *                         stamps are still current (else the next read drops
 *                         it); then its command and arguments, the key left out
 *   rule:<name> cache=0|1 ttl_ms=N
 *                         the cache rule the key falls under now, and the
 *                         local TTL a fill would get now (before the key's
 *                         own TTL caps it)
 *   tracked:0|1           whether tracking covers it (cache.tracking_prefixes)
 *   writes_in_flight:0|1  whether a write of it (or of a key that shares its
 *                         bucket) is on its way: until it is answered the
 *                         key is neither served nor filled
 * Takes the key's shard lock while it reads the tier. */
void cache_inspect(struct cache *c, int db, const char *key, size_t klen, uint64_t now_ms,
                   struct text *out);

#endif

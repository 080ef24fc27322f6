/* tier.h - the in-process, memory-bounded local tier: raw reply bytes by key.
 *
 * An entry holds a copy of one reply frame for one request "variant" of one
 * key in one database. Its identity is (db, key, variant); the variant is an
 * opaque, binary-safe byte string chosen by the caller (e.g. "GET", or
 * "HGET\0f1": the command and its non-key arguments). All variants of a
 * (db, key) hash to the same bucket, so invalidating a key drops them all at
 * once.
 *
 * Memory: every byte an entry costs (key, variant, reply and its struct, see
 * tier_entry_cost()) plus the hash table, the frequency sketch and the
 * invalidation table are counted against max_bytes, and no put leaves more.
 *
 * Eviction is W-TinyLFU: new entries enter a small window (1% of the
 * budget; an entry hit since it entered goes round again, as in CLOCK); an
 * entry leaving the window enters the main space (a segmented LRU, 20%
 * probation and 80% protected, with CLOCK-like lazy moves) only if
 * its key has been requested more often than the entry it would evict, by a
 * count-min sketch of 4-bit counters (sketch.h) that tier_get() feeds for
 * every request, hit or miss, resident or not, and that is halved every 10 x
 * (counters per row) requests so old popularity fades. A hit in probation
 * promotes to protected when the entry reaches probation's end; protected
 * overflow is demoted to probation, but for entries hit since they were
 * placed, which go round again. So a scan of keys requested once passes
 * through the window without evicting keys requested often.
 *
 * Flushing everything takes O(1) in entries: they are set aside at once (a
 * fresh hash table; their lists moved whole to a list of flushed entries),
 * no longer served nor counted as entries, but still counted in bytes (and
 * in flushed_entries) until freed: by tier_expire_some() first, and before
 * any eviction.
 *
 * Pure and single-threaded: no I/O and no clock; time is passed in as now_ms.
 */
#ifndef NEARCACHE_TIER_H
#define NEARCACHE_TIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Why tier_put() did not store (0 means stored, -1 means out of memory). */
#define TIER_PUT_TOO_BIG  1 /* reply over max_entry_bytes, or entry over the whole budget */
#define TIER_PUT_STALE    2 /* the key was invalidated after since_seq (race rule) */
#define TIER_PUT_REJECTED 3 /* the admission filter preferred the entries already cached */
#define TIER_PUT_INVALID  4 /* db outside 0..65535, or a length over 4 GB */

struct tier;

/* A borrowed view of a cached reply frame. */
struct tier_view {
    const char *reply;
    size_t len;
};

/* Counters since tier_create(); gauges (entries, keys, bytes) are current. */
struct tier_stats {
    uint64_t hits;
    uint64_t misses;              /* includes lookups that found an expired entry */
    uint64_t fills;               /* puts that stored an entry */
    uint64_t fills_refused;       /* puts refused by the race rule (TIER_PUT_STALE) */
    uint64_t fills_rejected;      /* puts not stored: too big, invalid or admission filter */
    uint64_t evictions;           /* entries dropped to stay within max_bytes */
    uint64_t expirations;         /* entries dropped because expire_at_ms had passed */
    uint64_t invalidated_keys;    /* tier_invalidate_key() calls that dropped something */
    uint64_t invalidated_entries; /* entries dropped by invalidate_key, flush_db, flush_all */
    size_t entries;               /* cached variants that may be served (not flushed) */
    size_t keys;                  /* distinct (db, key) with at least one of those */
    size_t flushed_entries;       /* entries flushed by tier_flush_all() not yet freed */
    size_t bytes;                 /* everything counted against max_bytes, flushed included */
    size_t table_bytes;           /* the part of bytes that no entry owns: tables, struct tier */
    size_t max_bytes;
};

/* Creates an empty tier bounded by max_bytes (all of it counted, see above)
 * that admits replies of at most max_entry_bytes. The sketch (max_bytes / 128
 * to max_bytes / 64 bytes) and the invalidation table (max_bytes / 128, 2 KB to
 * 512 KB) are sized from max_bytes and counted in it. Returns NULL on ENOMEM or when
 * max_bytes cannot even hold those tables. */
struct tier *tier_create(size_t max_bytes, size_t max_entry_bytes);

/* Frees the tier and every entry, and sets *t to NULL. Accepts NULL and *t NULL. */
void tier_destroy(struct tier **t);

/* Looks up (db, key, variant). On a hit that has not expired (expire_at_ms is
 * 0 or > now_ms) fills *out with a view of the stored reply, valid until the
 * next call of any tier function other than tier_seq()/tier_stats(), and
 * returns true. An expired entry is reclaimed and counts as a miss. Records
 * the request of (db, key) in the frequency sketch either way. */
bool tier_get(struct tier *t, int db, const char *key, size_t klen, const char *variant,
              size_t vlen, uint64_t now_ms, struct tier_view *out);

/* One stored variant of a key, as tier_variants() shows it: views valid for
 * the call only. */
struct tier_variant {
    const char *variant;
    size_t vlen;
    struct tier_view reply;
    uint64_t expire_at_ms; /* 0 = none */
};

typedef void (*tier_variant_fn)(void *arg, const struct tier_variant *v);

/* Calls fn for every variant of (db, key) stored and not expired at now_ms,
 * in no particular order, and returns how many. Only looks: the frequency
 * sketch, the LRU order, the counters and the entries stay as they are
 * (an expired one is left for tier_expire_some). */
size_t tier_variants(const struct tier *t, int db, const char *key, size_t klen, uint64_t now_ms,
                     tier_variant_fn fn, void *arg);

/* Stores a copy of reply (rlen bytes) for (db, key, variant), replacing the
 * variant's previous reply, with absolute expiry expire_at_ms (0 = none).
 * since_seq is tier_seq() read when the request was sent upstream: if the key
 * (or its db, or everything) was invalidated since then the reply may be
 * stale and is refused. Returns 0 when stored, TIER_PUT_* (> 0) when not
 * stored, -1 on ENOMEM. A reply refused as too big also drops the variant's
 * previous reply, which it supersedes. Does not count as a request of the key
 * (tier_get() does). */
int tier_put(struct tier *t, int db, const char *key, size_t klen, const char *variant, size_t vlen,
             const char *reply, size_t rlen, uint64_t expire_at_ms, uint64_t since_seq,
             uint64_t now_ms);

/* Returns the invalidation sequence: read it when forwarding a cacheable read
 * and pass it to tier_put() with the reply. */
uint64_t tier_seq(const struct tier *t);

/* Whether (db, key) may have been invalidated, or the tier flushed, since
 * since_seq (tier_seq() read then), or a write of it is in flight, as
 * tier_put's race rule judges it: a false positive is possible, a false
 * negative is not. */
bool tier_changed_since(const struct tier *t, int db, const char *key, size_t klen,
                        uint64_t since_seq);

/* A write of key (in whichever database) is on its way to Redis: until the
 * matching tier_write_end, no entry of the key is served (tier_get misses)
 * and no fill of it is stored, so that nobody reads the value it replaces
 * from the tier once it was sent (its sender least of all). Counted per hash
 * bucket: other keys of the bucket wait too (a miss, never a stale reply).
 * tier_write_all_begin/end do the same for every key (a write whose keys are
 * not known: a script, a flush). */
void tier_write_begin(struct tier *t, const char *key, size_t klen);
void tier_write_end(struct tier *t, const char *key, size_t klen);
void tier_write_all_begin(struct tier *t);
void tier_write_all_end(struct tier *t);

/* Drops every variant of (db, key) and remembers the invalidation, resident
 * or not, so that fills sent before it are refused. The memory is per hash
 * bucket (max_bytes / 1024 buckets, 256 to 65536), so a fill of another key
 * that shares the bucket is refused too: a false positive costs one miss,
 * never a stale reply. Returns the number of variants dropped. */
size_t tier_invalidate_key(struct tier *t, int db, const char *key, size_t klen);

/* Drops every entry of database db (O(entries)) and refuses the fills sent
 * before it, in every database (a safe false positive). */
void tier_flush_db(struct tier *t, int db);

/* Drops every entry and refuses every fill sent before it, in O(1) in
 * entries (it frees the hash table's array, and allocates a small one). The
 * entries are gone at once for every other function and for the entries and
 * keys counters; their memory is freed incrementally (see tier_expire_some)
 * or before any eviction, and counted in bytes until then. */
void tier_flush_all(struct tier *t);

/* Frees flushed entries and reclaims expired ones incrementally: frees at
 * most budget flushed entries, then with what is left of the budget examines
 * hash buckets and entries, resuming where the previous call stopped, so
 * calling it periodically sweeps the whole table. Returns the expired
 * entries reclaimed (not the flushed ones). */
size_t tier_expire_some(struct tier *t, uint64_t now_ms, size_t budget);

/* Returns the counters; the pointer stays valid until tier_destroy(). */
const struct tier_stats *tier_stats(const struct tier *t);

/* Verifies the tier's bookkeeping, in O(entries): each segment's list (and
 * the flushed entries') is linked both ways, its entries marked with it and
 * its bytes summed right; every entry is within reach of its hash in the
 * table, with the table's tags and overflow counts right; the counters of
 * entries, flushed entries, keys and bytes match what is stored, and the
 * bytes the budget. For
 * NEARCACHE_DEBUG=1 (cache_tick). Returns 0, or -1 with a one-line reason in
 * why (len bytes). */
int tier_check(const struct tier *t, char *why, size_t len);

/* Returns what an entry with these lengths costs against max_bytes: its
 * struct plus the three byte strings. */
size_t tier_entry_cost(size_t klen, size_t vlen, size_t rlen);

/* Returns the metadata bytes per cached variant, beyond its key, variant and
 * reply bytes: the entry's struct plus its share of the hash table at the
 * lowest load the table keeps while growing (3 entries per 64-byte bucket). */
size_t tier_overhead_per_entry(void);

#endif

/* hotkeys.h - the hottest keys of a stream of requests, in bounded memory.
 *
 * A Space-Saving summary (Metwally, Agrawal and El Abbadi, 2005) of size
 * counters: a key already counted gets its weight added; a new key takes the
 * counter of the least counted key when all are taken, inheriting its count
 * as its error bound. Every key requested more than total / size times is
 * then kept, and a kept key's count overestimates its true count by at most
 * its error: count - error <= true count <= count. The reads, writes and hits
 * of a kept key are those seen since it was last admitted (lower bounds).
 *
 * A min-heap finds the least counted key in O(log size) and an open-addressed
 * index (linear probing, backward-shift deletion) finds a key in O(1), so a
 * count costs a hash of the key and a few probes. Keys are kept up to
 * HOTKEYS_KEY_MAX bytes; a longer one is known by its whole bytes' hash and
 * shown cut to that length.
 *
 * Pure and single-threaded: each worker keeps its own, merged when read.
 */
#ifndef NEARCACHE_HOTKEYS_H
#define NEARCACHE_HOTKEYS_H

#include <stddef.h>
#include <stdint.h>

#define HOTKEYS_KEY_MAX 256   /* bytes of a key kept and shown */
#define HOTKEYS_SIZE    256   /* counters of a worker's summary */
#define HOTKEYS_MAX     32768 /* counters of any summary (merged ones included) */

struct hotkeys;

/* What is known of one key; klen is its whole length, of which
 * min(klen, HOTKEYS_KEY_MAX) bytes are in key. */
struct hotkeys_entry {
    char key[HOTKEYS_KEY_MAX];
    size_t klen;
    uint64_t count; /* reads + writes, overestimated by at most error */
    uint64_t reads, writes, hits;
    uint64_t error;
};

/* An empty summary of size counters (1..HOTKEYS_MAX). NULL on ENOMEM or a
 * size out of range. */
struct hotkeys *hotkeys_create(size_t size);

/* Frees h; *h is set to NULL. Accepts NULL and *h NULL. */
void hotkeys_destroy(struct hotkeys **h);

/* Counts reads and writes of key (hits of the reads answered from the tier)
 * in one step, as a weight of reads + writes (a step of weight 0 is
 * ignored). */
void hotkeys_count(struct hotkeys *h, const char *key, size_t klen, uint64_t reads, uint64_t writes,
                   uint64_t hits);

/* Adds what src knows of each of its keys to dst (for a summary of several
 * workers: size dst for the sum of theirs); errors add up. */
void hotkeys_merge(struct hotkeys *dst, const struct hotkeys *src);

/* Empties h. */
void hotkeys_clear(struct hotkeys *h);

/* The n most counted keys (fewer when fewer are kept), most counted first,
 * in out[0..return); 0 when out of memory. */
size_t hotkeys_top(const struct hotkeys *h, struct hotkeys_entry *out, size_t n);

#endif

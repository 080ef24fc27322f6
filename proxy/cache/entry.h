/* entry.h - what the tier stores for a reply.
 *
 * An entry is a head (the cache rule the reply was filled under, as its
 * index and fingerprint; the NEARCACHE INVALIDATE generation; flags; how
 * many stamps follow), the invalidation stamps its key had when the read was sent, then the reply:
 * LZ4-compressed (its raw length first) when its rule asks for it and that saves space. The cache
 * checks the rule and the stamps when it opens a hit (cache.c). Pure: no I/O.
 */
#ifndef NEARCACHE_CACHE_ENTRY_H
#define NEARCACHE_CACHE_ENTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "policy/policy.h"
#include "proxy/cache/tier.h"

#define ENTRY_COMPRESSED 1u /* entry_head.flags: an LZ4 block follows, raw length first */

struct entry_head {
    uint32_t fingerprint;
    uint32_t sweep; /* the store's sweep_gen when the read was sent (internal.h) */
    uint16_t rule;
    uint8_t flags;
    uint8_t nstamps;
};

/* A buffer an entry is laid out or decompressed in, reused from call to call. */
struct entry_buf {
    char *data;
    size_t cap;
};

/* Lays out the entry of reply[0..len) in b: head h (its flags set here),
 * h->nstamps stamps, then the reply, compressed when compress_over > 0 and
 * len >= compress_over and that saves space. Returns the entry's length (in
 * b->data), or 0 when out of memory. */
size_t entry_pack(struct entry_buf *b, struct entry_head *h, const struct policy_stamp *stamps,
                  const char *reply, size_t len, int64_t compress_over);

/* Decompresses *reply (an ENTRY_COMPRESSED body) into raw and points *reply
 * there. False when it does not decompress or memory runs out. */
bool entry_inflate(struct entry_buf *raw, struct tier_view *reply);

/* Reads the stored entry e: its head into *h, its stamps into stamps (room
 * for POLICY_STAMPS_MAX), and its reply into *reply, decompressed into raw if
 * need be (then valid until raw is used again). False when it does not
 * decompress or memory runs out. Inline: every tier hit opens one. */
static inline bool entry_open(const struct tier_view *e, struct entry_head *h,
                              struct policy_stamp *stamps, struct entry_buf *raw,
                              struct tier_view *reply)
{
    memcpy(h, e->reply, sizeof(*h));
    size_t off = sizeof(*h) + h->nstamps * sizeof(*stamps);
    if (h->nstamps > 0) /* most entries have none: no call to copy nothing */
        memcpy(stamps, e->reply + sizeof(*h), h->nstamps * sizeof(*stamps));
    *reply = (struct tier_view){e->reply + off, e->len - off};
    return !(h->flags & ENTRY_COMPRESSED) || entry_inflate(raw, reply);
}

/* Frees what b holds. */
void entry_buf_free(struct entry_buf *b);

#endif

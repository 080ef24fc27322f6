/* slot.h - Redis Cluster hash slots of keys and of requests.
 *
 * A key's slot is the CRC16 (XMODEM: polynomial 0x1021, initial value 0, no
 * reflection) of its hash tag, or of the whole key when it has none, modulo
 * SLOT_COUNT, exactly as Redis's keyHashSlot computes it. Pure: no I/O.
 */
#ifndef NEARCACHE_SLOT_H
#define NEARCACHE_SLOT_H

#include <stddef.h>
#include <stdint.h>

#define SLOT_COUNT 16384

/* What slot_of_request returns when there is no single slot. */
#define SLOT_NONE  (-1) /* no keys, or they cannot be told */
#define SLOT_CROSS (-2) /* the keys hash to different slots */

struct request;

/* The CRC16/XMODEM of data[0, len): 0x31c3 for "123456789". */
uint16_t slot_crc16(const void *data, size_t len);

/* The slot (0 .. SLOT_COUNT - 1) of key[0, len), binary-safe. The hash tag is
 * what lies between the first '{' and the first '}' after it, when that is
 * not empty ("{user1}.a" hashes "user1"; "a{}{b}" and "a{b" hash the whole
 * key). key may be NULL when len is 0. O(len). */
unsigned slot_of(const char *key, size_t len);

/* The slot shared by every key of r (request_keys finds them, once), or
 * SLOT_NONE when r has no keys or they cannot be told (an unknown command, a
 * wrong arity; request.h), or SLOT_CROSS when two keys hash to different
 * slots. O(total length of the keys) on the first call, then kept in r. */
int slot_of_request(struct request *r);

#endif

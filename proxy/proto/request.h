/* request.h - one request as the proxy sees it, parsed once.
 *
 * A complete multibulk frame (scanned by resp.h), its entry in the command
 * table, its kind, and its keys: looked up once when the request is read,
 * the keys found once, on first use, and shared by the policy check and the
 * cache plan. Pure: no I/O.
 */
#ifndef NEARCACHE_REQUEST_H
#define NEARCACHE_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/proto/command.h"
#include "proxy/proto/keys.h"
#include "proxy/proto/resp.h"

/* Where requests keep their keys, and the last command looked up: one per
 * loop and command table, reused from request to request (zero it to start;
 * request_keys_free at the end). */
struct request_keys {
    struct resp_view *views; /* into the frame */
    unsigned *flags;         /* KEYS_KEY_* of the spec that found each */
    size_t n;
    size_t cap;
    bool lost;                /* memory ran out while collecting */
    struct command_memo memo; /* request_init's lookups */
};

struct request {
    const char *buf;                  /* the frame's bytes, borrowed */
    const struct resp_request *frame; /* its scan, borrowed */
    const struct command *cmd;        /* its entry; NULL for an unknown command */
    command_kind_e kind;
    struct request_keys *keys; /* the loop's; valid once request_keys has run */
    int nkeys;                 /* see request_keys; REQUEST_KEYS_UNSEEN before */
    int slot;                  /* see slot_of_request (slot.h); REQUEST_SLOT_UNSEEN before */
};

#define REQUEST_KEYS_UNSEEN (-2)
#define REQUEST_SLOT_UNSEEN (-4)

/* Where a request runs: the database selected and the protocol spoken
 * (2, or 3 after HELLO 3) on its connection. */
struct lane {
    int db;
    int resp;
};

/* Frees what the scratch holds; it can be used again. */
void request_keys_free(struct request_keys *k);

#define REQUEST_KEYS_KEEP 4096u /* keys kept in the scratch between requests */

/* Sets r up for the complete multibulk frame in buf: one lookup in t, and
 * the kind. keys is the loop's scratch (borrowed); a scratch grown by a very
 * large request is given back here. O(1) expected. Inline: on every request
 * (a GET hit 1,208 -> 1,199 instructions). */
static inline void request_init(struct request *r, const struct command_table *t, const char *buf,
                                const struct resp_request *frame, struct request_keys *keys)
{
    if (keys->cap > REQUEST_KEYS_KEEP)
        request_keys_free(keys);
    r->buf = buf;
    r->frame = frame;
    r->cmd = command_lookup_memo(t, &keys->memo, buf, frame);
    r->kind = command_kind(r->cmd, buf, frame);
    r->keys = keys;
    r->nkeys = REQUEST_KEYS_UNSEEN;
    r->slot = REQUEST_SLOT_UNSEEN;
}

/* The number of keys of r, found by its key specs on the first call (then
 * r->keys->views and ->flags hold them, in spec order), or -1 when they cannot
 * be told: an unknown command, a wrong arity, a spec that does not apply
 * (keys.h), or memory running out (r->keys->lost). O(argc) once. */
int request_keys(struct request *r);

/* Whether r has exactly one key (request_keys(r) == 1), left in *key. A
 * command with one key at a fixed place (GET) has it found inline, not stored
 * in the scratch (a GET hit 1,199 -> 1,153 instructions). */
static inline bool request_one_key(struct request *r, struct resp_view *key)
{
    if (r->nkeys == REQUEST_KEYS_UNSEEN && r->cmd != NULL &&
        keys_one(r->cmd->key_at, r->cmd->arity, r->buf, r->frame, key) > 0)
        return true;
    if (request_keys(r) != 1)
        return false;
    *key = r->keys->views[0];
    return true;
}

/* Whether a request writes a key its spec found with flags (KEYS_KEY_*),
 * the request's command being of classes (COMMAND_CLASS_*): the spec says
 * so, or the command writes and the spec does not say the key is only read. */
static inline bool request_key_written(unsigned flags, unsigned classes)
{
    if (flags & KEYS_KEY_WRITES)
        return true;
    return (classes & COMMAND_CLASS_WRITE) && !(flags & (KEYS_KEY_RO | KEYS_KEY_ACCESS));
}

#endif

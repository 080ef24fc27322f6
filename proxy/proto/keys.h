/* keys.h - which arguments of a request are keys, and what it does to them.
 *
 * Redis 7 key specifications (begin_search + find_keys + flags), as a command
 * table entry (command.h) holds them. The interpreter applies the specs to a
 * scanned request exactly as Redis 7.0's getKeysUsingKeySpecs does, and for the few commands whose
 * specs are incomplete (SORT STORE, MIGRATE KEYS) or whose numkeys may be 0 (EVAL, FCALL) it then
 * falls back, as COMMAND GETKEYS does, to Redis's per-command rules. Pure: no I/O.
 */
#ifndef NEARCACHE_KEYS_H
#define NEARCACHE_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/proto/args.h"
#include "proxy/proto/resp.h"

#define KEYS_KEYWORD_MAX 23 /* longest begin_search keyword */
#define KEYS_SPECS_MAX   4  /* Redis 7.0 commands have at most 3 */

/* Key spec flags, as COMMAND reports them. */
#define KEYS_KEY_RO             (1u << 0)
#define KEYS_KEY_RW             (1u << 1)
#define KEYS_KEY_OW             (1u << 2)
#define KEYS_KEY_RM             (1u << 3)
#define KEYS_KEY_ACCESS         (1u << 4)
#define KEYS_KEY_UPDATE         (1u << 5)
#define KEYS_KEY_INSERT         (1u << 6)
#define KEYS_KEY_DELETE         (1u << 7)
#define KEYS_KEY_NOT_KEY        (1u << 8)
#define KEYS_KEY_INCOMPLETE     (1u << 9)
#define KEYS_KEY_VARIABLE_FLAGS (1u << 10)
/* A key with any of these flags may be modified; RO/ACCESS alone only reads. */
#define KEYS_KEY_WRITES                                                                            \
    (KEYS_KEY_RW | KEYS_KEY_OW | KEYS_KEY_RM | KEYS_KEY_UPDATE | KEYS_KEY_INSERT | KEYS_KEY_DELETE)

typedef enum {
    KEYS_BS_UNKNOWN = 0, /* "unknown": the spec cannot be applied (keys_each fails) */
    KEYS_BS_INDEX,       /* the first key is at argument `index` */
    KEYS_BS_KEYWORD,     /* the first key follows `keyword` */
} keys_bs_e;

typedef enum {
    KEYS_FK_UNKNOWN = 0, /* "unknown": the spec cannot be applied */
    KEYS_FK_RANGE,       /* lastkey, keystep, limit */
    KEYS_FK_KEYNUM,      /* keynumidx, firstkey, keystep */
} keys_fk_e;

/* Redis's per-command fallback when the specs fail; command_table_add() sets
 * it from the command name. */
typedef enum {
    KEYS_PROC_NONE = 0,
    KEYS_PROC_SORT,    /* sortGetKeys: the key, and the last STORE destination */
    KEYS_PROC_SORT_RO, /* sortROGetKeys: the key */
    KEYS_PROC_MIGRATE, /* migrateGetKeys: argument 3, or the keys after KEYS */
    KEYS_PROC_NUMKEYS, /* genericGetKeys: numkeys "0" means no keys */
} keys_proc_e;

struct keys_spec {
    unsigned flags; /* KEYS_KEY_* */
    keys_bs_e bs;
    int index;                          /* KEYS_BS_INDEX */
    char keyword[KEYS_KEYWORD_MAX + 1]; /* KEYS_BS_KEYWORD, NUL-terminated, any case */
    int startfrom; /* KEYS_BS_KEYWORD: > 0 searches forward from there, < 0 backward from
                      argc + startfrom */
    keys_fk_e fk;
    int lastkey;   /* KEYS_FK_RANGE: >= 0 relative to the first key, < 0 from the end */
    int keystep;   /* KEYS_FK_RANGE and KEYS_FK_KEYNUM; >= 1 */
    int limit;     /* KEYS_FK_RANGE: with lastkey -1, keys are 1/limit of what remains */
    int keynumidx; /* KEYS_FK_KEYNUM: numkeys is at first + keynumidx */
    int firstkey;  /* KEYS_FK_KEYNUM: the keys start at first + firstkey */
};

/* Called for each key found, with its view in the frame and its spec's flags. */
typedef void (*keys_fn)(void *arg, struct resp_view key, unsigned flags);

/* The KEYS_KEY_* bit of a key spec flag name ("RW", "access"), or 0 if unknown. */
unsigned keys_key_flag(const char *word, size_t len);

/* Whether s is a spec keys_each can hold: a keyword begin_search has a
 * NUL-terminated non-empty keyword, indexes are >= 0, keystep >= 1, limit >= 0
 * and only with lastkey -1. */
bool keys_spec_valid(const struct keys_spec *s);

struct command;

/* The key of req when its command has the common shape (key_at > 0: one
 * key at a fixed place, as GET, SET or HGET; see struct command): returns 1
 * with its view in *key; -1 when req is not multibulk or has the wrong
 * arity; 0 when the command has another shape or req is too short for it
 * (keys_each then decides). Inline: nearly every request goes this way. */
static inline int keys_one(int key_at, int arity, const char *buf, const struct resp_request *req,
                           struct resp_view *key)
{
    int64_t argc = req->argc;
    if (req->kind != RESP_REQ_MULTIBULK || (arity > 0 && argc != arity) || argc < -(int64_t)arity)
        return -1;
    if (key_at <= 0 || key_at >= argc)
        return 0;
    if (key_at < RESP_REQ_ARGS) {
        *key = req->argv[key_at];
    } else {
        struct resp_args a;
        resp_args_init(&a, buf, req);
        *key = resp_args_get(&a, key_at);
    }
    return 1;
}

/* Calls fn for every key of the complete multibulk request req (frame in buf),
 * in spec order, with the flags of the spec that found it. Returns the number
 * of keys, or -1 (fn not called) when the keys cannot be told: the arity is
 * wrong, the request is not multibulk, a spec is unknown, incomplete or out of
 * bounds and no fallback applies, or cmd is a container. A subset of keys is
 * never reported. O(argc). */
int keys_each(const struct command *cmd, const char *buf, const struct resp_request *req,
              keys_fn fn, void *arg);

#endif

/* keys.h - which arguments of a request are keys, and what it does to them.
 *
 * A table of commands, each with Redis 7 key specifications (begin_search +
 * find_keys + flags), loaded from Redis's own COMMAND reply at start-up (see
 * introspect.h) or from the built-in copy of Redis 7.0.15's table. The
 * interpreter applies the specs to a scanned request exactly as Redis 7.0's
 * getKeysUsingKeySpecs does, and for the few commands whose specs are
 * incomplete (SORT STORE, MIGRATE KEYS) or whose numkeys may be 0 (EVAL, FCALL)
 * it then falls back, as COMMAND GETKEYS does, to Redis's per-command rules.
 * Pure: no I/O.
 */
#ifndef NEARCACHE_KEYS_H
#define NEARCACHE_KEYS_H

#include <stddef.h>

#include "proxy/proto/resp.h"

#define KEYS_NAME_MAX    47 /* longest command name, "container|sub" included */
#define KEYS_KEYWORD_MAX 23 /* longest begin_search keyword */
#define KEYS_SPECS_MAX   4  /* Redis 7.0 commands have at most 3 */

/* Command flags (the subset of COMMAND's flags the proxy uses). */
#define KEYS_CMD_WRITE             (1u << 0)
#define KEYS_CMD_READONLY          (1u << 1)
#define KEYS_CMD_DENYOOM           (1u << 2)
#define KEYS_CMD_BLOCKING          (1u << 3)
#define KEYS_CMD_MOVABLEKEYS       (1u << 4)
#define KEYS_CMD_NO_MANDATORY_KEYS (1u << 5)
#define KEYS_CMD_PUBSUB            (1u << 6)
#define KEYS_CMD_ADMIN             (1u << 7)
#define KEYS_CMD_NOSCRIPT          (1u << 8)
/* Not a COMMAND flag: the command has subcommands ("xgroup" -> "xgroup|create"). */
#define KEYS_CMD_CONTAINER (1u << 9)

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

/* Redis's per-command fallback when the specs fail; set by keys_table_add()
 * from the command name, callers leave it KEYS_PROC_NONE. */
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

struct keys_cmd {
    char name[KEYS_NAME_MAX + 1]; /* lower case; "container|sub" for a subcommand */
    int arity;                    /* as in COMMAND: n exactly, -n at least n */
    unsigned flags;               /* KEYS_CMD_* */
    int nspecs;
    struct keys_spec specs[KEYS_SPECS_MAX];
    keys_proc_e proc;
};

/* Called for each key found, with its view in the frame and its spec's flags. */
typedef void (*keys_fn)(void *arg, struct resp_view key, unsigned flags);

struct keys_table;

/* Returns an empty table (caller owns it; keys_table_destroy), or NULL. */
struct keys_table *keys_table_create(void);

/* Frees *t and sets it to NULL. Accepts NULL and *t == NULL. */
void keys_table_destroy(struct keys_table **t);

/* Adds a copy of cmd (its name lower-cased, proc set from the name), replacing
 * an entry of the same name. Returns 0, or -1 when cmd is invalid (empty name,
 * nspecs out of range, keystep < 1, limit < 0, limit with lastkey other than
 * -1) or memory runs out; the table is then unchanged. */
int keys_table_add(struct keys_table *t, const struct keys_cmd *cmd);

/* Adds the built-in table: every command and subcommand of Redis 7.0.15 with
 * its arity, flags and key specs as its COMMAND reply gives them (flags
 * outside KEYS_CMD_* dropped). Returns the number of commands added, or -1
 * (then some may have been added). */
int keys_table_add_builtin(struct keys_table *t);

/* The KEYS_CMD_* bit of a COMMAND flag name ("write"), or 0 when not kept. */
unsigned keys_cmd_flag(const char *word, size_t len);

/* The KEYS_KEY_* bit of a key spec flag name ("RW", "access"), or 0 if unknown. */
unsigned keys_key_flag(const char *word, size_t len);

/* Number of commands in the table. */
size_t keys_table_count(const struct keys_table *t);

/* The position of cmd, an entry of t, among its commands: an index below
 * keys_table_count(t) for tables of per-command facts kept elsewhere. */
size_t keys_index(const struct keys_table *t, const struct keys_cmd *cmd);

/* Calls fn(arg, cmd) for every command in the table, in no particular order. */
void keys_table_each(const struct keys_table *t, void (*fn)(void *arg, const struct keys_cmd *cmd),
                     void *arg);

/* The entry named name[0..len), compared case-insensitively and binary-safe
 * (O(1) expected), or NULL. Borrowed: valid until the table changes. */
const struct keys_cmd *keys_lookup(const struct keys_table *t, const char *name, size_t len);

/* The entry for a complete multibulk request: its command, or for a container
 * command the entry "name|sub" of its subcommand. NULL when the command or
 * the subcommand is unknown, or the request is not multibulk. */
const struct keys_cmd *keys_lookup_request(const struct keys_table *t, const char *buf,
                                           const struct resp_request *req);

/* Calls fn for every key of the complete multibulk request req (frame in buf),
 * in spec order, with the flags of the spec that found it. Returns the number
 * of keys, or -1 (fn not called) when the keys cannot be told: the arity is
 * wrong, the request is not multibulk, a spec is unknown, incomplete or out of
 * bounds and no fallback applies, or cmd is a container. A subset of keys is
 * never reported. O(argc). */
int keys_each(const struct keys_cmd *cmd, const char *buf, const struct resp_request *req,
              keys_fn fn, void *arg);

#endif

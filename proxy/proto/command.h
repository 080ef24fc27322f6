/* command.h - the command table: everything the proxy knows of a command.
 *
 * One entry per command and subcommand ("container|sub"), loaded from Redis's
 * own COMMAND reply at start-up (see introspect.h) or from the built-in copy
 * of Redis 7.0.15's table (command_builtin.c). An entry holds what COMMAND
 * says (arity, flags, key specs) and what the proxy works out from it once,
 * when the entry is added: what the command does to its connection's state
 * (its kind), what it is to the local tier (its traits) and which policy
 * classes it belongs to. A request is looked up here once (request.h).
 * Pure: no I/O.
 */
#ifndef NEARCACHE_COMMAND_H
#define NEARCACHE_COMMAND_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proxy/proto/keys.h"
#include "proxy/proto/resp.h"

#define COMMAND_NAME_MAX 47 /* longest command name, "container|sub" included */

/* Command flags (the subset of COMMAND's flags the proxy uses). */
#define COMMAND_FLAG_WRITE             (1u << 0)
#define COMMAND_FLAG_READONLY          (1u << 1)
#define COMMAND_FLAG_DENYOOM           (1u << 2)
#define COMMAND_FLAG_BLOCKING          (1u << 3)
#define COMMAND_FLAG_MOVABLEKEYS       (1u << 4)
#define COMMAND_FLAG_NO_MANDATORY_KEYS (1u << 5)
#define COMMAND_FLAG_PUBSUB            (1u << 6)
#define COMMAND_FLAG_ADMIN             (1u << 7)
#define COMMAND_FLAG_NOSCRIPT          (1u << 8)
/* Not a COMMAND flag: the command has subcommands ("xgroup" -> "xgroup|create"). */
#define COMMAND_FLAG_CONTAINER (1u << 9)

/* Policy classes ("commands: [write]" in a rule). A command writes when its
 * flags or one of its key specs say so, or when it may write keys it does not
 * declare (scripts, flushes, SWAPDB). */
#define COMMAND_CLASS_READ  (1u << 0)
#define COMMAND_CLASS_WRITE (1u << 1)
#define COMMAND_CLASS_ADMIN (1u << 2)

/* Traits for the local tier. */
#define COMMAND_CACHEABLE (1u << 0) /* a read whose reply depends on its one key only */
#define COMMAND_FLUSHES   (1u << 1) /* may write keys it does not declare: the tier is flushed */
#define COMMAND_SPLIT     (1u << 2) /* MGET: served key by key */

/* What a command does to its connection's state. Most commands only touch
 * data and can share an upstream connection with other clients; the few that
 * change or depend on the connection's own state decide where the proxy
 * sends the client's traffic. */
typedef enum {
    COMMAND_SHARED = 0, /* data only: any shared upstream connection will do */
    COMMAND_STICKY,     /* sets connection state for good (SELECT, AUTH, HELLO 3, CLIENT SETNAME) */
    COMMAND_STREAM,     /* replies stop matching requests one to one (SUBSCRIBE, MONITOR) */
    COMMAND_BLOCKING,   /* may block the connection (BLPOP, XREAD BLOCK, WAIT) */
    COMMAND_MULTI,      /* opens a transaction */
    COMMAND_EXEC,       /* ends a transaction and its watches (EXEC, DISCARD) */
    COMMAND_WATCH,      /* watches keys until EXEC, DISCARD or UNWATCH */
    COMMAND_UNWATCH,    /* drops the watches */
    COMMAND_QUIT,       /* answered +OK by the proxy, then the connection closes */
    COMMAND_RESET,      /* resets the connection's state */
    COMMAND_NEARCACHE,  /* the proxy's own command (NEARCACHE STATS) */
} command_kind_e;

/* Commands the proxy may answer itself for a client on its shared
 * connection, so that the client stays there (client.c decides when). */
typedef enum {
    COMMAND_OWN_NONE = 0,
    COMMAND_OWN_SELECT,  /* SELECT: the client moves to that database's shared connections */
    COMMAND_OWN_HELLO,   /* HELLO: to that protocol's shared connections */
    COMMAND_OWN_AUTH,    /* AUTH, checked by the proxy */
    COMMAND_OWN_SETNAME, /* CLIENT SETNAME: the name is kept by the proxy */
    COMMAND_OWN_GETNAME, /* CLIENT GETNAME */
    COMMAND_OWN_SETINFO, /* CLIENT SETINFO (Redis 7.2+): kept by the proxy */
} command_own_e;

/* Kinds that depend on the arguments (see command_kind). */
typedef enum {
    COMMAND_BY_NAME = 0,
    COMMAND_BY_HELLO, /* HELLO [protover [AUTH u p] [SETNAME n]] */
    COMMAND_BY_XREAD, /* XREAD/XREADGROUP ... [BLOCK ms] ... STREAMS */
} command_rule_e;

struct command {
    char name[COMMAND_NAME_MAX + 1]; /* lower case; "container|sub" for a subcommand */
    int arity;                       /* as in COMMAND: n exactly, -n at least n */
    unsigned flags;                  /* COMMAND_FLAG_* */
    int nspecs;
    struct keys_spec specs[KEYS_SPECS_MAX];
    /* Set by command_table_add from the name and the above; callers leave them 0. */
    keys_proc_e proc;
    command_kind_e kind;
    command_rule_e rule;
    unsigned classes; /* COMMAND_CLASS_* */
    unsigned traits;  /* COMMAND_CACHEABLE, ... */
    command_own_e own;
    int key_at;        /* > 0: its only key is always argument key_at (GET, SET, HGET...) */
    unsigned index;    /* its place in the table, below command_table_count */
    unsigned name_len; /* strlen(name) */
};

struct command_table;

/* Returns an empty table (caller owns it; command_table_destroy), or NULL. */
struct command_table *command_table_create(void);

/* Frees *t and sets it to NULL. Accepts NULL and *t == NULL. */
void command_table_destroy(struct command_table **t);

/* Adds a copy of cmd with its name lower-cased and the fields that follow
 * the specs worked out, replacing an entry of the same name. Returns 0, or -1
 * when cmd is invalid (empty name, nspecs out of range, keystep < 1, limit <
 * 0, limit with lastkey other than -1) or memory runs out; the table is then
 * unchanged. */
int command_table_add(struct command_table *t, const struct command *cmd);

/* Adds the built-in table: every command and subcommand of Redis 7.0.15 with
 * its arity, flags and key specs as its COMMAND reply gives them (flags
 * outside COMMAND_FLAG_* dropped). Returns the number of commands added, or
 * -1 (then some may have been added). */
int command_table_add_builtin(struct command_table *t);

/* Adds the proxy's own command (NEARCACHE) and, for every command whose kind
 * the proxy must know to route it (SELECT, BLPOP, SUBSCRIBE, CLIENT REPLY,
 * ...), an entry without keys where the table has none: a Redis newer than
 * the table (WAITAOF, CLIENT NO-TOUCH behind the built-in 7.0 table) still has
 * them routed right. Returns 0, or -1 when memory runs out. */
int command_table_add_proxy(struct command_table *t);

/* The COMMAND_FLAG_* bit of a COMMAND flag name ("write"), or 0 when not kept. */
unsigned command_flag(const char *word, size_t len);

/* Number of commands in the table. */
size_t command_table_count(const struct command_table *t);

/* Calls fn(arg, cmd) for every command in the table, in no particular order. */
void command_table_each(const struct command_table *t,
                        void (*fn)(void *arg, const struct command *cmd), void *arg);

/* The entry named name[0..len), compared case-insensitively and binary-safe
 * (O(1) expected), or NULL. Borrowed: valid until the table changes. */
const struct command *command_lookup(const struct command_table *t, const char *name, size_t len);

/* The entry for a complete multibulk request: its command, or for a container
 * command the entry "name|sub" of its subcommand. NULL when the command or
 * the subcommand is unknown, or the request is not multibulk. */
const struct command *command_lookup_request(const struct command_table *t, const char *buf,
                                             const struct resp_request *req);

/* The last request name a loop looked up in a table, as sent (at most 8
 * bytes, any case), and what it found. Zero it to start. */
struct command_memo {
    const struct command_table *table;
    uint64_t name; /* its bytes, zero-padded */
    size_t len;    /* 0: none yet */
    const struct command *cmd;
};

/* The first 8 bytes of a name as a word padded with zeros. Loads without
 * reading past the name: 4 to 7 bytes as two words that overlap, 1 to 3 as
 * the first, middle and last byte (some of them twice). */
static inline uint64_t command_name_word(const char *s, size_t len)
{
    uint64_t w = 0;

    if (len >= 8) {
        memcpy(&w, s, 8);
    } else if (len >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, s, 4);
        memcpy(&hi, s + len - 4, 4);
        w = lo | (uint64_t)hi << (8 * (len - 4));
    } else if (len > 0) {
        w = (uint64_t)(unsigned char)s[0] | (uint64_t)(unsigned char)s[len / 2] << (8 * (len / 2)) |
            (uint64_t)(unsigned char)s[len - 1] << (8 * (len - 1));
    }
    return w;
}

/* command_lookup_request, remembered in memo (for a name of at most 8 bytes
 * that is not a container's). */
const struct command *command_lookup_remember(const struct command_table *t,
                                              struct command_memo *memo, const char *buf,
                                              const struct resp_request *req);

/* command_lookup_request, first asking memo: clients send the same few
 * commands, so most lookups are one compare, inline (a GET: 110 -> 31
 * instructions). The table must not change while memo is in use. */
static inline const struct command *command_lookup_memo(const struct command_table *t,
                                                        struct command_memo *memo, const char *buf,
                                                        const struct resp_request *req)
{
    size_t len = req->argv[0].len;
    if (req->kind == RESP_REQ_MULTIBULK && req->argc >= 1 && len <= 8 && len == memo->len &&
        t == memo->table && command_name_word(buf + req->argv[0].off, len) == memo->name)
        return memo->cmd;
    return command_lookup_remember(t, memo, buf, req);
}

/* The kind of a complete multibulk request whose entry is cmd (NULL: unknown,
 * COMMAND_SHARED), looking at its arguments where they matter (HELLO 3,
 * XREAD ... BLOCK). */
command_kind_e command_kind(const struct command *cmd, const char *buf,
                            const struct resp_request *req);

#endif

/* command.c - the command table: entries, their derived facts, lookup. */
#include "proxy/proto/command.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/lib/hash.h"

#define COMMAND_SLOTS_MIN 64

struct command_table {
    struct command *cmds; /* count used of cap, in insertion order */
    size_t count;
    size_t cap;
    struct command_slot *slots; /* nslots, a power of two */
    size_t nslots;
};

/* A slot of the index: a name's first 8 bytes lower-cased (name_head) and
 * its length beside the command's place, so that a lookup compares a name of
 * at most 8 bytes (most commands) as one word, without touching cmds. */
struct command_slot {
    uint64_t head;
    uint32_t len;
    uint32_t at; /* 1 + index into cmds, 0 = empty */
};

static const struct {
    const char *name;
    unsigned bit;
} FLAGS[] = {
    {"write", COMMAND_FLAG_WRITE},
    {"readonly", COMMAND_FLAG_READONLY},
    {"denyoom", COMMAND_FLAG_DENYOOM},
    {"blocking", COMMAND_FLAG_BLOCKING},
    {"movablekeys", COMMAND_FLAG_MOVABLEKEYS},
    {"no_mandatory_keys", COMMAND_FLAG_NO_MANDATORY_KEYS},
    {"pubsub", COMMAND_FLAG_PUBSUB},
    {"admin", COMMAND_FLAG_ADMIN},
    {"noscript", COMMAND_FLAG_NOSCRIPT},
    {"container", COMMAND_FLAG_CONTAINER},
};

/* What the proxy knows of a command beyond what COMMAND says. Commands not
 * listed are shared, without traits, and their keys follow their specs. */
struct fact {
    const char *name;
    command_kind_e kind;
    command_rule_e rule;
    unsigned traits;  /* COMMAND_CACHEABLE needs a read-only command that writes nothing */
    keys_proc_e proc; /* Redis's getkeys procedure, where the specs fall short */
    command_own_e own;
};

#define OWN(n, k, o)                                                                               \
    {                                                                                              \
        n, k, COMMAND_BY_NAME, 0, KEYS_PROC_NONE, o                                                \
    }

#define STICKY(n)                                                                                  \
    {                                                                                              \
        n, COMMAND_STICKY, COMMAND_BY_NAME, 0, KEYS_PROC_NONE, COMMAND_OWN_NONE                    \
    }
#define KIND(n, k)                                                                                 \
    {                                                                                              \
        n, k, COMMAND_BY_NAME, 0, KEYS_PROC_NONE, COMMAND_OWN_NONE                                 \
    }
#define CACHEABLE(n)                                                                               \
    {                                                                                              \
        n, COMMAND_SHARED, COMMAND_BY_NAME, COMMAND_CACHEABLE, KEYS_PROC_NONE, COMMAND_OWN_NONE    \
    }
#define FLUSHES(n, p)                                                                              \
    {                                                                                              \
        n, COMMAND_SHARED, COMMAND_BY_NAME, COMMAND_FLUSHES, p, COMMAND_OWN_NONE                   \
    }
#define PROC(n, p)                                                                                 \
    {                                                                                              \
        n, COMMAND_SHARED, COMMAND_BY_NAME, 0, p, COMMAND_OWN_NONE                                 \
    }
#define NUMKEYS(n) PROC(n, KEYS_PROC_NUMKEYS)

/* clang-format off */
static const struct fact FACTS[] = {
    /* Connection state: where the client's traffic goes. */
    STICKY("asking"), STICKY("readonly"), STICKY("readwrite"),
    OWN("auth", COMMAND_STICKY, COMMAND_OWN_AUTH), OWN("select", COMMAND_STICKY, COMMAND_OWN_SELECT),
    OWN("client|setname", COMMAND_STICKY, COMMAND_OWN_SETNAME),
    OWN("client|getname", COMMAND_SHARED, COMMAND_OWN_GETNAME),
    OWN("client|setinfo", COMMAND_SHARED, COMMAND_OWN_SETINFO),
    STICKY("client|caching"), STICKY("client|getredir"), STICKY("client|id"),
    STICKY("client|info"), STICKY("client|no-evict"), STICKY("client|no-touch"),
    STICKY("client|tracking"), STICKY("client|trackinginfo"),
    KIND("client|reply", COMMAND_STREAM),
    {"hello", COMMAND_SHARED, COMMAND_BY_HELLO, 0, KEYS_PROC_NONE, COMMAND_OWN_HELLO},
    {"xread", COMMAND_SHARED, COMMAND_BY_XREAD, 0, KEYS_PROC_NONE, COMMAND_OWN_NONE},
    {"xreadgroup", COMMAND_SHARED, COMMAND_BY_XREAD, 0, KEYS_PROC_NONE,
     COMMAND_OWN_NONE},
    KIND("blmove", COMMAND_BLOCKING), {"blmpop", COMMAND_BLOCKING, COMMAND_BY_NAME, 0,
    KEYS_PROC_NUMKEYS, COMMAND_OWN_NONE}, KIND("blpop", COMMAND_BLOCKING), KIND("brpop", COMMAND_BLOCKING),
    KIND("brpoplpush", COMMAND_BLOCKING), {"bzmpop", COMMAND_BLOCKING, COMMAND_BY_NAME, 0,
    KEYS_PROC_NUMKEYS, COMMAND_OWN_NONE}, KIND("bzpopmax", COMMAND_BLOCKING), KIND("bzpopmin", COMMAND_BLOCKING),
    KIND("wait", COMMAND_BLOCKING), KIND("waitaof", COMMAND_BLOCKING),
    KIND("monitor", COMMAND_STREAM), KIND("psubscribe", COMMAND_STREAM),
    KIND("psync", COMMAND_STREAM), KIND("punsubscribe", COMMAND_STREAM),
    KIND("replconf", COMMAND_STREAM), KIND("ssubscribe", COMMAND_STREAM),
    KIND("subscribe", COMMAND_STREAM), KIND("sunsubscribe", COMMAND_STREAM),
    KIND("sync", COMMAND_STREAM), KIND("unsubscribe", COMMAND_STREAM),
    KIND("multi", COMMAND_MULTI), KIND("exec", COMMAND_EXEC), KIND("discard", COMMAND_EXEC),
    KIND("watch", COMMAND_WATCH), KIND("unwatch", COMMAND_UNWATCH),
    KIND("quit", COMMAND_QUIT), KIND("reset", COMMAND_RESET),
    KIND("nearcache", COMMAND_NEARCACHE),
    /* Reads whose reply depends only on the value of their one key and their
     * arguments: safe to answer from a copy until the key changes. Never
     * TTL/PTTL, RANDOMKEY, SRANDMEMBER, SCAN, OBJECT or the like. */
    {"mget", COMMAND_SHARED, COMMAND_BY_NAME, COMMAND_CACHEABLE | COMMAND_SPLIT, KEYS_PROC_NONE,
     COMMAND_OWN_NONE},
    CACHEABLE("bitcount"), CACHEABLE("bitpos"), CACHEABLE("exists"), CACHEABLE("geodist"),
    CACHEABLE("geohash"), CACHEABLE("geopos"), CACHEABLE("get"), CACHEABLE("getbit"),
    CACHEABLE("getrange"), CACHEABLE("hexists"), CACHEABLE("hget"), CACHEABLE("hgetall"),
    CACHEABLE("hkeys"), CACHEABLE("hlen"), CACHEABLE("hmget"), CACHEABLE("hstrlen"),
    CACHEABLE("hvals"), CACHEABLE("lindex"), CACHEABLE("llen"), CACHEABLE("lpos"),
    CACHEABLE("lrange"), CACHEABLE("scard"), CACHEABLE("sismember"), CACHEABLE("smembers"),
    CACHEABLE("smismember"), CACHEABLE("strlen"), CACHEABLE("substr"), CACHEABLE("type"),
    CACHEABLE("xlen"), CACHEABLE("xrange"), CACHEABLE("xrevrange"), CACHEABLE("zcard"),
    CACHEABLE("zcount"), CACHEABLE("zlexcount"), CACHEABLE("zmscore"), CACHEABLE("zrange"),
    CACHEABLE("zrangebylex"), CACHEABLE("zrangebyscore"), CACHEABLE("zrank"),
    CACHEABLE("zrevrange"), CACHEABLE("zrevrangebylex"), CACHEABLE("zrevrangebyscore"),
    CACHEABLE("zrevrank"), CACHEABLE("zscore"),
    /* Writes that may touch keys they do not declare: scripts may write
     * anything; flushes and swaps touch every key. */
    FLUSHES("eval", KEYS_PROC_NUMKEYS), FLUSHES("evalsha", KEYS_PROC_NUMKEYS),
    FLUSHES("fcall", KEYS_PROC_NUMKEYS), FLUSHES("flushall", KEYS_PROC_NONE),
    FLUSHES("flushdb", KEYS_PROC_NONE), FLUSHES("swapdb", KEYS_PROC_NONE),
    /* Key specs completed by a getkeys procedure, as COMMAND GETKEYS does. */
    PROC("sort", KEYS_PROC_SORT), PROC("sort_ro", KEYS_PROC_SORT_RO),
    PROC("migrate", KEYS_PROC_MIGRATE), NUMKEYS("eval_ro"), NUMKEYS("evalsha_ro"),
    NUMKEYS("fcall_ro"), NUMKEYS("sintercard"), NUMKEYS("zunionstore"), NUMKEYS("zinterstore"),
    NUMKEYS("zdiffstore"), NUMKEYS("zunion"), NUMKEYS("zinter"), NUMKEYS("zdiff"),
    NUMKEYS("zintercard"), NUMKEYS("lmpop"), NUMKEYS("zmpop"),
};
/* clang-format on */

static const struct fact *fact_find(const char *name)
{
    for (size_t i = 0; i < sizeof(FACTS) / sizeof(FACTS[0]); i++) {
        if (strcmp(FACTS[i].name, name) == 0)
            return &FACTS[i];
    }
    return NULL;
}

static unsigned char to_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* command_name_word lower-cased. Every byte at once: a byte below 0x80 is
 * upper case when adding 0x3f sets its top bit (>= 'A') and adding 0x25 does
 * not (<= 'Z'); 0x80 >> 2 is the 0x20 that lowers it. No carry crosses bytes:
 * 0x7f + 0x3f < 0x100. */
static inline uint64_t name_head(const char *s, size_t len)
{
    const uint64_t ones = 0x0101010101010101ULL;
    uint64_t w = command_name_word(s, len);
    uint64_t low7 = w & 0x7f * ones;
    uint64_t upper = (low7 + 0x3f * ones) & ~(low7 + 0x25 * ones) & ~w & 0x80 * ones;
    return w | upper >> 2;
}

/* The hash of a name of any case from its head: FNV-1a over the lower-cased
 * bytes past the first 8, mixed with the head and the length. */
static uint32_t name_hash(uint64_t head, const char *s, size_t len)
{
    uint32_t h = HASH_FNV32_OFFSET;

    for (size_t i = 8; i < len; i++) {
        h ^= to_lower((unsigned char)s[i]);
        h *= HASH_FNV32_PRIME;
    }
    return (uint32_t)(((head ^ h ^ len) * 0x9e3779b97f4a7c15ULL) >> 32);
}

/* An entry's lower-case NUL-terminated name equals s[0..len) in any case. */
static bool name_equal(const char *lowered, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (lowered[i] == '\0' || (unsigned char)lowered[i] != to_lower((unsigned char)s[i]))
            return false;
    }
    return lowered[len] == '\0';
}

unsigned command_flag(const char *word, size_t len)
{
    for (size_t i = 0; i < sizeof(FLAGS) / sizeof(FLAGS[0]); i++) {
        if (strlen(FLAGS[i].name) == len && memcmp(FLAGS[i].name, word, len) == 0)
            return FLAGS[i].bit;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The table: commands in an array, indexed by an open-addressing hash      */
/* ------------------------------------------------------------------------ */

struct command_table *command_table_create(void)
{
    struct command_table *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    t->slots = calloc(COMMAND_SLOTS_MIN, sizeof(*t->slots));
    if (t->slots == NULL) {
        free(t);
        return NULL;
    }
    t->nslots = COMMAND_SLOTS_MIN;
    return t;
}

void command_table_destroy(struct command_table **t)
{
    if (t == NULL || *t == NULL)
        return;
    free((*t)->cmds);
    free((*t)->slots);
    free(*t);
    *t = NULL;
}

/* The slot holding name, or the empty slot where it would go. */
static size_t slot_find(const struct command_table *t, const char *name, size_t len)
{
    size_t mask = t->nslots - 1;
    uint64_t head = name_head(name, len);
    size_t i = name_hash(head, name, len) & mask;

    for (;; i = (i + 1) & mask) {
        const struct command_slot *s = &t->slots[i];
        if (s->at == 0 ||
            (s->head == head && s->len == len &&
             (len <= 8 || name_equal(t->cmds[s->at - 1].name + 8, name + 8, len - 8))))
            return i;
    }
}

/* Puts command at (its index in cmds) into the index. */
static void slot_set(struct command_table *t, size_t at)
{
    const char *name = t->cmds[at].name;
    size_t len = strlen(name);

    t->slots[slot_find(t, name, len)] =
        (struct command_slot){name_head(name, len), (uint32_t)len, (uint32_t)(at + 1)};
}

/* Makes room for one more command: array capacity, and a load factor <= 1/2. */
static int table_reserve(struct command_table *t)
{
    if (t->count == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : COMMAND_SLOTS_MIN;
        struct command *cmds = realloc(t->cmds, cap * sizeof(*cmds));
        if (cmds == NULL)
            return -1;
        t->cmds = cmds;
        t->cap = cap;
    }
    if ((t->count + 1) * 2 <= t->nslots)
        return 0;
    struct command_slot *slots = calloc(t->nslots * 2, sizeof(*slots));
    if (slots == NULL)
        return -1;
    free(t->slots);
    t->slots = slots;
    t->nslots *= 2;
    for (size_t i = 0; i < t->count; i++)
        slot_set(t, i);
    return 0;
}

/* The classes of a command: its flags, its key specs, and what FACTS adds. */
static unsigned classes_of(const struct command *cmd, unsigned traits)
{
    unsigned c = 0;
    if (cmd->flags & COMMAND_FLAG_READONLY)
        c |= COMMAND_CLASS_READ;
    if ((cmd->flags & COMMAND_FLAG_WRITE) || (traits & COMMAND_FLUSHES))
        c |= COMMAND_CLASS_WRITE;
    if (cmd->flags & COMMAND_FLAG_ADMIN)
        c |= COMMAND_CLASS_ADMIN;
    for (int i = 0; i < cmd->nspecs; i++) {
        if (cmd->specs[i].flags & KEYS_KEY_WRITES)
            c |= COMMAND_CLASS_WRITE;
    }
    return c;
}

/* Copies cmd into out with its name lower-cased and the derived fields
 * worked out; -1 if invalid. */
static int cmd_prepare(struct command *out, const struct command *cmd)
{
    if (cmd->name[0] == '\0' || memchr(cmd->name, '\0', sizeof(cmd->name)) == NULL)
        return -1;
    if (cmd->nspecs < 0 || cmd->nspecs > KEYS_SPECS_MAX)
        return -1;
    for (int i = 0; i < cmd->nspecs; i++) {
        if (!keys_spec_valid(&cmd->specs[i]))
            return -1;
    }
    *out = *cmd;
    for (char *p = out->name; *p != '\0'; p++)
        *p = (char)to_lower((unsigned char)*p);
    const struct fact *f = fact_find(out->name);
    out->proc = f != NULL ? f->proc : KEYS_PROC_NONE;
    out->kind = f != NULL ? f->kind : COMMAND_SHARED;
    out->rule = f != NULL ? f->rule : COMMAND_BY_NAME;
    out->traits = f != NULL ? f->traits : 0;
    out->own = f != NULL ? f->own : COMMAND_OWN_NONE;
    out->classes = classes_of(out, out->traits);
    const struct keys_spec *one = &out->specs[0];
    bool fixed = out->nspecs == 1 && one->bs == KEYS_BS_INDEX && one->fk == KEYS_FK_RANGE &&
                 one->lastkey == 0 && one->index > 0 &&
                 !(one->flags & (KEYS_KEY_INCOMPLETE | KEYS_KEY_NOT_KEY)) &&
                 out->proc == KEYS_PROC_NONE;
    out->key_at = fixed ? one->index : 0;
    if ((out->classes & COMMAND_CLASS_WRITE) || !(out->flags & COMMAND_FLAG_READONLY))
        out->traits &= ~(unsigned)(COMMAND_CACHEABLE | COMMAND_SPLIT);
    return 0;
}

int command_table_add(struct command_table *t, const struct command *cmd)
{
    struct command copy;
    size_t len, i;

    if (cmd_prepare(&copy, cmd) < 0)
        return -1;
    len = copy.name_len = (unsigned)strlen(copy.name);
    i = slot_find(t, copy.name, len);
    if (t->slots[i].at != 0) {
        copy.index = t->slots[i].at - 1;
        t->cmds[copy.index] = copy;
        return 0;
    }
    if (table_reserve(t) < 0)
        return -1;
    copy.index = (unsigned)t->count;
    t->cmds[t->count++] = copy;
    slot_set(t, copy.index);
    return 0;
}

size_t command_table_count(const struct command_table *t)
{
    return t->count;
}

void command_table_each(const struct command_table *t,
                        void (*fn)(void *arg, const struct command *cmd), void *arg)
{
    for (size_t i = 0; i < t->count; i++)
        fn(arg, &t->cmds[i]);
}

const struct command *command_lookup(const struct command_table *t, const char *name, size_t len)
{
    if (len > COMMAND_NAME_MAX) /* longer than any name the table holds */
        return NULL;
    size_t i = slot_find(t, name, len);

    return t->slots[i].at != 0 ? &t->cmds[t->slots[i].at - 1] : NULL;
}

/* The entry of a container's subcommand ("container|sub"), or NULL. Out of
 * line, so that its name buffer and copies stay off the path of every other
 * command (command_lookup_request 48 -> 34 instructions for a GET). */
__attribute__((noinline)) static const struct command *
lookup_sub(const struct command_table *t, const char *buf, const struct resp_request *req)
{
    char name[COMMAND_NAME_MAX + 1];
    struct resp_view v0 = req->argv[0], v1 = req->argv[1];

    if (req->argc < 2 || v0.len + 1 + v1.len > COMMAND_NAME_MAX)
        return NULL;
    memcpy(name, buf + v0.off, v0.len);
    name[v0.len] = '|';
    memcpy(name + v0.len + 1, buf + v1.off, v1.len);
    return command_lookup(t, name, v0.len + 1 + v1.len);
}

const struct command *command_lookup_request(const struct command_table *t, const char *buf,
                                             const struct resp_request *req)
{
    if (req->kind != RESP_REQ_MULTIBULK || req->argc < 1)
        return NULL;
    const struct command *cmd = command_lookup(t, buf + req->argv[0].off, req->argv[0].len);
    return cmd == NULL || !(cmd->flags & COMMAND_FLAG_CONTAINER) ? cmd : lookup_sub(t, buf, req);
}

const struct command *command_lookup_remember(const struct command_table *t,
                                              struct command_memo *memo, const char *buf,
                                              const struct resp_request *req)
{
    if (req->kind != RESP_REQ_MULTIBULK || req->argc < 1 || req->argv[0].len > 8)
        return command_lookup_request(t, buf, req);
    size_t len = req->argv[0].len;
    const struct command *cmd = command_lookup(t, buf + req->argv[0].off, len);
    if (cmd != NULL && (cmd->flags & COMMAND_FLAG_CONTAINER)) /* its entry depends on argv[1] */
        return lookup_sub(t, buf, req);
    *memo = (struct command_memo){t, command_name_word(buf + req->argv[0].off, len), len, cmd};
    return cmd;
}

int command_table_add_proxy(struct command_table *t)
{
    for (size_t i = 0; i < sizeof(FACTS) / sizeof(FACTS[0]); i++) {
        const struct fact *f = &FACTS[i];
        if (f->kind == COMMAND_SHARED && f->rule == COMMAND_BY_NAME)
            continue;
        const char *bar = strchr(f->name, '|');
        const struct command *top =
            bar != NULL ? command_lookup(t, f->name, (size_t)(bar - f->name)) : NULL;
        if (bar != NULL && (top == NULL || !(top->flags & COMMAND_FLAG_CONTAINER))) {
            /* Absent, or a Redis (6.x) whose COMMAND lists no subcommands. */
            struct command container = {.arity = -2, .flags = COMMAND_FLAG_CONTAINER};
            memcpy(container.name, f->name, (size_t)(bar - f->name));
            if (command_table_add(t, &container) < 0)
                return -1;
        }
        if (command_lookup(t, f->name, strlen(f->name)) == NULL) {
            struct command stub = {.arity = -1};
            strcpy(stub.name, f->name);
            if (command_table_add(t, &stub) < 0)
                return -1;
        }
    }
    return 0;
}

static bool arg_is(const char *buf, struct resp_view v, const char *word)
{
    return v.len == strlen(word) && strncasecmp(buf + v.off, word, v.len) == 0;
}

/* XREAD [COUNT n] [BLOCK ms] STREAMS ...: options come before STREAMS. Out
 * of line: command_kind then saves no registers for the other commands (a
 * GET hit 1,044 -> 1,024 instructions). */
static __attribute__((noinline)) command_kind_e xread_kind(const char *buf,
                                                           const struct resp_request *req)
{
    for (int64_t i = 1; i < req->argc; i++) {
        struct resp_view v = resp_request_arg(req, buf, i);
        if (arg_is(buf, v, "streams"))
            break;
        if (arg_is(buf, v, "block"))
            return COMMAND_BLOCKING;
    }
    return COMMAND_SHARED;
}

command_kind_e command_kind(const struct command *cmd, const char *buf,
                            const struct resp_request *req)
{
    if (cmd == NULL)
        return COMMAND_SHARED;
    switch (cmd->rule) {
    case COMMAND_BY_HELLO:
        /* HELLO alone leaves its connection as it is; with arguments it may
         * change the protocol, the user or the name (a HELLO 2 after HELLO 3
         * too). The proxy answers most for clients on their shared
         * connection (client_own.h); those it cannot go to a dedicated one. */
        return req->argc == 1 ? COMMAND_SHARED : COMMAND_STICKY;
    case COMMAND_BY_XREAD:
        return xread_kind(buf, req);
    case COMMAND_BY_NAME:
        break;
    }
    return cmd->kind;
}

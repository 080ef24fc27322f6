/* keys.c - command table and interpreter of Redis 7 key specs. */
#include "proxy/proto/keys.h"

#include <stdbool.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEYS_SLOTS_MIN 64

struct keys_table {
    struct keys_cmd *cmds; /* count used of cap, in insertion order */
    size_t count;
    size_t cap;
    uint32_t *slots; /* nslots (a power of two): 1 + index into cmds, 0 = empty */
    size_t nslots;
};

struct flag_name {
    const char *name;
    unsigned bit;
};

static const struct flag_name CMD_FLAGS[] = {
    {"write", KEYS_CMD_WRITE},
    {"readonly", KEYS_CMD_READONLY},
    {"denyoom", KEYS_CMD_DENYOOM},
    {"blocking", KEYS_CMD_BLOCKING},
    {"movablekeys", KEYS_CMD_MOVABLEKEYS},
    {"no_mandatory_keys", KEYS_CMD_NO_MANDATORY_KEYS},
    {"pubsub", KEYS_CMD_PUBSUB},
    {"admin", KEYS_CMD_ADMIN},
    {"noscript", KEYS_CMD_NOSCRIPT},
    {"container", KEYS_CMD_CONTAINER},
};

static const struct flag_name KEY_FLAGS[] = {
    {"RO", KEYS_KEY_RO},
    {"RW", KEYS_KEY_RW},
    {"OW", KEYS_KEY_OW},
    {"RM", KEYS_KEY_RM},
    {"access", KEYS_KEY_ACCESS},
    {"update", KEYS_KEY_UPDATE},
    {"insert", KEYS_KEY_INSERT},
    {"delete", KEYS_KEY_DELETE},
    {"not_key", KEYS_KEY_NOT_KEY},
    {"incomplete", KEYS_KEY_INCOMPLETE},
    {"variable_flags", KEYS_KEY_VARIABLE_FLAGS},
};

/* Commands whose key specs Redis completes with a getkeys procedure. */
static const struct {
    const char *name;
    keys_proc_e proc;
} PROCS[] = {
    {"sort", KEYS_PROC_SORT},           {"sort_ro", KEYS_PROC_SORT_RO},
    {"migrate", KEYS_PROC_MIGRATE},     {"eval", KEYS_PROC_NUMKEYS},
    {"evalsha", KEYS_PROC_NUMKEYS},     {"eval_ro", KEYS_PROC_NUMKEYS},
    {"evalsha_ro", KEYS_PROC_NUMKEYS},  {"fcall", KEYS_PROC_NUMKEYS},
    {"fcall_ro", KEYS_PROC_NUMKEYS},    {"sintercard", KEYS_PROC_NUMKEYS},
    {"zunionstore", KEYS_PROC_NUMKEYS}, {"zinterstore", KEYS_PROC_NUMKEYS},
    {"zdiffstore", KEYS_PROC_NUMKEYS},  {"zunion", KEYS_PROC_NUMKEYS},
    {"zinter", KEYS_PROC_NUMKEYS},      {"zdiff", KEYS_PROC_NUMKEYS},
    {"zintercard", KEYS_PROC_NUMKEYS},  {"lmpop", KEYS_PROC_NUMKEYS},
    {"blmpop", KEYS_PROC_NUMKEYS},      {"zmpop", KEYS_PROC_NUMKEYS},
    {"bzmpop", KEYS_PROC_NUMKEYS},
};

/* ------------------------------------------------------------------------ */
/* Names and flags                                                          */
/* ------------------------------------------------------------------------ */

static unsigned char to_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* FNV-1a of the lower-cased bytes. */
static uint32_t name_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < len; i++) {
        h ^= to_lower((unsigned char)s[i]);
        h *= 16777619u;
    }
    return h;
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

static unsigned flag_find(const struct flag_name *table, size_t n, const char *word, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        if (strlen(table[i].name) == len && memcmp(table[i].name, word, len) == 0)
            return table[i].bit;
    }
    return 0;
}

unsigned keys_cmd_flag(const char *word, size_t len)
{
    return flag_find(CMD_FLAGS, sizeof(CMD_FLAGS) / sizeof(CMD_FLAGS[0]), word, len);
}

unsigned keys_key_flag(const char *word, size_t len)
{
    return flag_find(KEY_FLAGS, sizeof(KEY_FLAGS) / sizeof(KEY_FLAGS[0]), word, len);
}

/* ------------------------------------------------------------------------ */
/* The table: commands in an array, indexed by an open-addressing hash      */
/* ------------------------------------------------------------------------ */

struct keys_table *keys_table_create(void)
{
    struct keys_table *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    t->slots = calloc(KEYS_SLOTS_MIN, sizeof(*t->slots));
    if (t->slots == NULL) {
        free(t);
        return NULL;
    }
    t->nslots = KEYS_SLOTS_MIN;
    return t;
}

void keys_table_destroy(struct keys_table **t)
{
    if (t == NULL || *t == NULL)
        return;
    free((*t)->cmds);
    free((*t)->slots);
    free(*t);
    *t = NULL;
}

/* The slot holding name, or the empty slot where it would go. */
static size_t slot_find(const struct keys_table *t, const char *name, size_t len)
{
    size_t mask = t->nslots - 1;
    size_t i = name_hash(name, len) & mask;

    while (t->slots[i] != 0 && !name_equal(t->cmds[t->slots[i] - 1].name, name, len))
        i = (i + 1) & mask;
    return i;
}

/* Makes room for one more command: array capacity, and a load factor <= 1/2. */
static int table_reserve(struct keys_table *t)
{
    if (t->count == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : KEYS_SLOTS_MIN;
        struct keys_cmd *cmds = realloc(t->cmds, cap * sizeof(*cmds));
        if (cmds == NULL)
            return -1;
        t->cmds = cmds;
        t->cap = cap;
    }
    if ((t->count + 1) * 2 <= t->nslots)
        return 0;
    uint32_t *slots = calloc(t->nslots * 2, sizeof(*slots));
    if (slots == NULL)
        return -1;
    free(t->slots);
    t->slots = slots;
    t->nslots *= 2;
    for (size_t i = 0; i < t->count; i++)
        t->slots[slot_find(t, t->cmds[i].name, strlen(t->cmds[i].name))] = (uint32_t)(i + 1);
    return 0;
}

static bool spec_valid(const struct keys_spec *s)
{
    if (s->bs == KEYS_BS_KEYWORD &&
        (s->keyword[0] == '\0' || memchr(s->keyword, '\0', sizeof(s->keyword)) == NULL))
        return false;
    if (s->bs != KEYS_BS_UNKNOWN && s->bs != KEYS_BS_INDEX && s->bs != KEYS_BS_KEYWORD)
        return false;
    if (s->index < 0 || s->keynumidx < 0 || s->firstkey < 0)
        return false;
    if (s->fk == KEYS_FK_RANGE)
        return s->keystep >= 1 && s->limit >= 0 && (s->limit == 0 || s->lastkey == -1);
    if (s->fk == KEYS_FK_KEYNUM)
        return s->keystep >= 1;
    return s->fk == KEYS_FK_UNKNOWN;
}

/* Copies cmd into out with its name lower-cased and its proc set; -1 if invalid. */
static int cmd_prepare(struct keys_cmd *out, const struct keys_cmd *cmd)
{
    if (cmd->name[0] == '\0' || memchr(cmd->name, '\0', sizeof(cmd->name)) == NULL)
        return -1;
    if (cmd->nspecs < 0 || cmd->nspecs > KEYS_SPECS_MAX)
        return -1;
    for (int i = 0; i < cmd->nspecs; i++) {
        if (!spec_valid(&cmd->specs[i]))
            return -1;
    }
    *out = *cmd;
    for (char *p = out->name; *p != '\0'; p++)
        *p = (char)to_lower((unsigned char)*p);
    out->proc = KEYS_PROC_NONE;
    for (size_t i = 0; i < sizeof(PROCS) / sizeof(PROCS[0]); i++) {
        if (strcmp(PROCS[i].name, out->name) == 0)
            out->proc = PROCS[i].proc;
    }
    return 0;
}

int keys_table_add(struct keys_table *t, const struct keys_cmd *cmd)
{
    struct keys_cmd copy;
    size_t len, i;

    if (cmd_prepare(&copy, cmd) < 0)
        return -1;
    len = strlen(copy.name);
    i = slot_find(t, copy.name, len);
    if (t->slots[i] != 0) {
        t->cmds[t->slots[i] - 1] = copy;
        return 0;
    }
    if (table_reserve(t) < 0)
        return -1;
    i = slot_find(t, copy.name, len);
    t->cmds[t->count++] = copy;
    t->slots[i] = (uint32_t)t->count;
    return 0;
}

size_t keys_table_count(const struct keys_table *t)
{
    return t->count;
}

size_t keys_index(const struct keys_table *t, const struct keys_cmd *cmd)
{
    return (size_t)(cmd - t->cmds);
}

void keys_table_each(const struct keys_table *t, void (*fn)(void *arg, const struct keys_cmd *cmd),
                     void *arg)
{
    for (size_t i = 0; i < t->count; i++)
        fn(arg, &t->cmds[i]);
}

const struct keys_cmd *keys_lookup(const struct keys_table *t, const char *name, size_t len)
{
    size_t i = slot_find(t, name, len);

    return t->slots[i] != 0 ? &t->cmds[t->slots[i] - 1] : NULL;
}

const struct keys_cmd *keys_lookup_request(const struct keys_table *t, const char *buf,
                                           const struct resp_request *req)
{
    char name[KEYS_NAME_MAX + 1];
    const struct keys_cmd *cmd;
    struct resp_view v0 = req->argv[0], v1 = req->argv[1];

    if (req->kind != RESP_REQ_MULTIBULK || req->argc < 1)
        return NULL;
    cmd = keys_lookup(t, buf + v0.off, v0.len);
    if (cmd == NULL || !(cmd->flags & KEYS_CMD_CONTAINER))
        return cmd;
    if (req->argc < 2 || v0.len + 1 + v1.len > KEYS_NAME_MAX)
        return NULL;
    memcpy(name, buf + v0.off, v0.len);
    name[v0.len] = '|';
    memcpy(name + v0.len + 1, buf + v1.off, v1.len);
    return keys_lookup(t, name, v0.len + 1 + v1.len);
}

/* ------------------------------------------------------------------------ */
/* Reaching arguments in O(argc) overall                                    */
/* ------------------------------------------------------------------------ */

/* Walks the frame forward from the last kept view; restarts when asked for
 * an earlier argument (at most once per spec). */
struct arg_cursor {
    const char *buf;
    const struct resp_request *req;
    int64_t idx; /* argument `view` is; < RESP_REQ_ARGS until first used */
    struct resp_view view;
};

static struct resp_view cursor_arg(struct arg_cursor *c, int64_t i)
{
    if (i < RESP_REQ_ARGS)
        return c->req->argv[i];
    if (c->idx < RESP_REQ_ARGS || c->idx > i) {
        c->idx = RESP_REQ_ARGS - 1;
        c->view = c->req->argv[RESP_REQ_ARGS - 1];
    }
    while (c->idx < i) {
        /* The frame was validated: "\r\n$<digits>\r\n<payload>". */
        size_t off = c->view.off + c->view.len + 3, n = 0;
        while (c->buf[off] != '\r')
            n = n * 10 + (size_t)(c->buf[off++] - '0');
        c->view.off = off + 2;
        c->view.len = n;
        c->idx++;
    }
    return c->view;
}

/* strcasecmp(argv[i]->ptr, word) == 0 as Redis does it: on the C string,
 * so an argument matches up to an embedded NUL. word is lower case. */
static bool arg_is(struct arg_cursor *c, int64_t i, const char *word)
{
    struct resp_view v = cursor_arg(c, i);
    size_t n = strlen(word);

    if (v.len < n || (v.len > n && c->buf[v.off + n] != '\0'))
        return false;
    for (size_t j = 0; j < n; j++) {
        if (to_lower((unsigned char)c->buf[v.off + j]) != to_lower((unsigned char)word[j]))
            return false;
    }
    return true;
}

/* Redis's string2ll: optional '-', no leading zeros or '+', no spaces. */
static bool parse_ll(const char *s, size_t len, long long *out)
{
    size_t i = 0;
    bool neg = false;
    unsigned long long v = 0;

    if (len == 0 || len >= 21)
        return false;
    if (len == 1 && s[0] == '0') {
        *out = 0;
        return true;
    }
    if (s[0] == '-') {
        neg = true;
        i++;
    }
    if (i == len || s[i] < '1' || s[i] > '9')
        return false;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (ULLONG_MAX - 9) / 10)
            return false;
        v = v * 10 + (unsigned long long)(s[i] - '0');
    }
    if (neg) {
        if (v > (unsigned long long)LLONG_MAX + 1)
            return false;
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    } else {
        if (v > LLONG_MAX)
            return false;
        *out = (long long)v;
    }
    return true;
}

/* atoi(), as Redis's genericGetKeys reads numkeys (saturating, not wrapping). */
static long long parse_atoi(const char *s, size_t len)
{
    size_t i = 0;
    long long v = 0;
    bool neg = false;

    while (i < len && (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r')))
        i++;
    if (i < len && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
        v = v > (LLONG_MAX - 9) / 10 ? LLONG_MAX : v * 10 + (s[i] - '0');
    return neg ? -v : v;
}

/* ------------------------------------------------------------------------ */
/* The interpreter: Redis 7.0's getKeysUsingKeySpecs                        */
/* ------------------------------------------------------------------------ */

/* Keys at first, first + step, ... up to last, all with flags. */
struct key_range {
    int64_t first;
    int64_t last;
    int64_t step;
    unsigned flags;
};

struct key_ranges {
    struct key_range r[KEYS_SPECS_MAX];
    int n;
};

static void ranges_push(struct key_ranges *kr, int64_t first, int64_t last, unsigned flags)
{
    kr->r[kr->n++] = (struct key_range){first, last, 1, flags};
}

/* Where the spec's keys start: 1 with *first set, 0 when its keyword is
 * absent (the spec finds no keys), -1 when its begin_search is unknown. A
 * keyword is searched forward from startfrom to argc - 2, or backward from
 * argc + startfrom down to 2, as Redis does. */
static int spec_begin(const struct keys_spec *s, struct arg_cursor *c, int64_t argc, int64_t *first)
{
    int64_t found = 0;

    if (s->bs == KEYS_BS_INDEX) {
        *first = s->index;
        return 1;
    }
    if (s->bs != KEYS_BS_KEYWORD)
        return -1;
    if (s->startfrom > 0) {
        for (int64_t i = s->startfrom; i < argc - 1 && found == 0; i++)
            found = arg_is(c, i, s->keyword) ? i + 1 : 0;
    } else if (s->startfrom < 0) {
        /* The backward search's first match is the forward walk's last. */
        for (int64_t i = 2; i <= argc + s->startfrom; i++)
            found = arg_is(c, i, s->keyword) ? i + 1 : found;
    }
    *first = found;
    return found != 0;
}

/* The last key of a spec whose keys start at first, or -1 when invalid. */
static int64_t spec_last(const struct keys_spec *s, struct arg_cursor *c, int64_t argc,
                         int64_t *first)
{
    long long numkeys;
    int64_t at = *first + s->keynumidx;
    struct resp_view v;

    if (s->fk == KEYS_FK_RANGE) {
        if (s->lastkey >= 0)
            return *first + s->lastkey;
        if (s->limit == 0)
            return argc + s->lastkey;
        return *first + ((argc - *first) / s->limit + s->lastkey);
    }
    if (s->fk != KEYS_FK_KEYNUM || at >= argc)
        return -1;
    v = cursor_arg(c, at);
    if (!parse_ll(c->buf + v.off, v.len, &numkeys) || numkeys < 0 || numkeys > argc)
        return -1;
    *first += s->firstkey;
    return *first + numkeys - 1;
}

/* Applies every spec that is not NOT_KEY; -1 as soon as one is invalid. */
static int specs_apply(const struct keys_cmd *cmd, struct arg_cursor *c, int64_t argc,
                       struct key_ranges *kr)
{
    kr->n = 0;
    for (int i = 0; i < cmd->nspecs; i++) {
        const struct keys_spec *s = &cmd->specs[i];
        int64_t first, last;
        int rc;

        if (s->flags & KEYS_KEY_NOT_KEY)
            continue;
        rc = spec_begin(s, c, argc, &first);
        if (rc < 0)
            return -1;
        if (rc == 0)
            continue;
        last = spec_last(s, c, argc, &first);
        /* Out of bounds: a syntax error the command will report. */
        if (last < 0 || last >= argc || last < first || first >= argc)
            return -1;
        kr->r[kr->n++] = (struct key_range){first, last, s->keystep, s->flags};
        if (s->flags & KEYS_KEY_INCOMPLETE)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Fallbacks: Redis's getkeys procedures, for when the specs fail           */
/* ------------------------------------------------------------------------ */

/* sortGetKeys: the sorted key, and the destination of the last STORE. */
static int proc_sort(struct arg_cursor *c, int64_t argc, struct key_ranges *kr)
{
    int64_t store = 0;

    for (int64_t i = 2; i < argc; i++) {
        if (arg_is(c, i, "limit"))
            i += 2;
        else if (arg_is(c, i, "store") && i + 1 < argc)
            store = i + 1;
        else if (arg_is(c, i, "get") || arg_is(c, i, "by"))
            i += 1;
    }
    ranges_push(kr, 1, 1, KEYS_KEY_RO | KEYS_KEY_ACCESS);
    if (store != 0)
        ranges_push(kr, store, store, KEYS_KEY_OW | KEYS_KEY_UPDATE);
    return 0;
}

/* migrateGetKeys: argument 3, or everything after KEYS when it is "". */
static int proc_migrate(struct arg_cursor *c, int64_t argc, struct key_ranges *kr)
{
    int64_t first = 3, num = 1;

    for (int64_t i = 6; i < argc; i++) {
        if (arg_is(c, i, "keys")) {
            first = i + 1;
            num = cursor_arg(c, 3).len > 0 ? 0 : argc - first;
            break;
        }
        if (arg_is(c, i, "auth"))
            i += 1;
        else if (arg_is(c, i, "auth2"))
            i += 2;
    }
    if (num > 0)
        ranges_push(kr, first, first + num - 1, KEYS_KEY_RW | KEYS_KEY_ACCESS | KEYS_KEY_DELETE);
    return 0;
}

/* genericGetKeys: numkeys that atoi() reads as < 1 or too many means no
 * keys. Otherwise the specs failed on a numkeys that string2ll() refuses, so
 * the command fails too, but Redis would name keys: -1. */
static int proc_numkeys(const struct keys_cmd *cmd, struct arg_cursor *c, int64_t argc)
{
    for (int i = 0; i < cmd->nspecs; i++) {
        const struct keys_spec *s = &cmd->specs[i];
        if (s->fk != KEYS_FK_KEYNUM || s->bs != KEYS_BS_INDEX)
            continue;
        int64_t at = (int64_t)s->index + s->keynumidx, first = (int64_t)s->index + s->firstkey;
        if (at >= argc)
            return -1;
        struct resp_view v = cursor_arg(c, at);
        long long num = parse_atoi(c->buf + v.off, v.len);
        return num < 1 || num > (argc - first) / s->keystep ? 0 : -1;
    }
    return -1;
}

static int proc_apply(const struct keys_cmd *cmd, struct arg_cursor *c, int64_t argc,
                      struct key_ranges *kr)
{
    kr->n = 0;
    switch (cmd->proc) {
    case KEYS_PROC_SORT:
        return proc_sort(c, argc, kr);
    case KEYS_PROC_SORT_RO:
        ranges_push(kr, 1, 1, KEYS_KEY_RO | KEYS_KEY_ACCESS);
        return 0;
    case KEYS_PROC_MIGRATE:
        return proc_migrate(c, argc, kr);
    case KEYS_PROC_NUMKEYS:
        return proc_numkeys(cmd, c, argc);
    case KEYS_PROC_NONE:
        break;
    }
    return -1;
}

int keys_each(const struct keys_cmd *cmd, const char *buf, const struct resp_request *req,
              keys_fn fn, void *arg)
{
    struct arg_cursor c = {buf, req, 0, {0, 0}};
    struct key_ranges kr;
    int64_t argc = req->argc, total = 0;

    if (req->kind != RESP_REQ_MULTIBULK || (cmd->flags & KEYS_CMD_CONTAINER))
        return -1;
    if ((cmd->arity > 0 && argc != cmd->arity) || argc < -(int64_t)cmd->arity)
        return -1;
    const struct keys_spec *one = &cmd->specs[0];
    if (cmd->nspecs == 1 && one->bs == KEYS_BS_INDEX && one->fk == KEYS_FK_RANGE &&
        one->lastkey == 0 && one->index > 0 && one->index < argc &&
        !(one->flags & (KEYS_KEY_INCOMPLETE | KEYS_KEY_NOT_KEY)) && cmd->proc == KEYS_PROC_NONE) {
        /* The common shape (GET, SET, HGET, ...): one key at a fixed place. */
        fn(arg, cursor_arg(&c, one->index), one->flags);
        return 1;
    }
    if (specs_apply(cmd, &c, argc, &kr) < 0 && proc_apply(cmd, &c, argc, &kr) < 0)
        return -1;
    for (int i = 0; i < kr.n; i++)
        total += (kr.r[i].last - kr.r[i].first) / kr.r[i].step + 1;
    if (total > INT_MAX)
        return -1;
    for (int i = 0; i < kr.n; i++) {
        for (int64_t j = kr.r[i].first; j <= kr.r[i].last; j += kr.r[i].step)
            fn(arg, cursor_arg(&c, j), kr.r[i].flags);
    }
    return (int)total;
}

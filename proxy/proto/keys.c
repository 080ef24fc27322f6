/* keys.c - interpreter of Redis 7 key specs. */
#include "proxy/proto/keys.h"

#include <stdbool.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "proxy/proto/args.h"
#include "proxy/proto/command.h"

struct flag_name {
    const char *name;
    unsigned bit;
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

static unsigned char to_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

unsigned keys_key_flag(const char *word, size_t len)
{
    for (size_t i = 0; i < sizeof(KEY_FLAGS) / sizeof(KEY_FLAGS[0]); i++) {
        if (strlen(KEY_FLAGS[i].name) == len && memcmp(KEY_FLAGS[i].name, word, len) == 0)
            return KEY_FLAGS[i].bit;
    }
    return 0;
}

bool keys_spec_valid(const struct keys_spec *s)
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

/* ------------------------------------------------------------------------ */
/* Arguments                                                                */
/* ------------------------------------------------------------------------ */

/* strcasecmp(argv[i]->ptr, word) == 0 as Redis does it: on the C string,
 * so an argument matches up to an embedded NUL. word is lower case. */
static bool arg_is(struct resp_args *c, int64_t i, const char *word)
{
    struct resp_view v = resp_args_get(c, i);
    size_t n = strlen(word);

    if (v.len < n || (v.len > n && c->buf[v.off + n] != '\0'))
        return false;
    for (size_t j = 0; j < n; j++) {
        if (to_lower((unsigned char)c->buf[v.off + j]) != to_lower((unsigned char)word[j]))
            return false;
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
static int spec_begin(const struct keys_spec *s, struct resp_args *c, int64_t argc, int64_t *first)
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
static int64_t spec_last(const struct keys_spec *s, struct resp_args *c, int64_t argc,
                         int64_t *first)
{
    int64_t numkeys;
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
    v = resp_args_get(c, at);
    if (!resp_parse_ll(c->buf + v.off, v.len, &numkeys) || numkeys < 0 || numkeys > argc)
        return -1;
    *first += s->firstkey;
    return *first + numkeys - 1;
}

/* Applies every spec that is not NOT_KEY; -1 as soon as one is invalid. */
static int specs_apply(const struct command *cmd, struct resp_args *c, int64_t argc,
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
static int proc_sort(struct resp_args *c, int64_t argc, struct key_ranges *kr)
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
static int proc_migrate(struct resp_args *c, int64_t argc, struct key_ranges *kr)
{
    int64_t first = 3, num = 1;

    for (int64_t i = 6; i < argc; i++) {
        if (arg_is(c, i, "keys")) {
            first = i + 1;
            num = resp_args_get(c, 3).len > 0 ? 0 : argc - first;
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
static int proc_numkeys(const struct command *cmd, struct resp_args *c, int64_t argc)
{
    for (int i = 0; i < cmd->nspecs; i++) {
        const struct keys_spec *s = &cmd->specs[i];
        if (s->fk != KEYS_FK_KEYNUM || s->bs != KEYS_BS_INDEX)
            continue;
        int64_t at = (int64_t)s->index + s->keynumidx, first = (int64_t)s->index + s->firstkey;
        if (at >= argc)
            return -1;
        struct resp_view v = resp_args_get(c, at);
        long long num = parse_atoi(c->buf + v.off, v.len);
        return num < 1 || num > (argc - first) / s->keystep ? 0 : -1;
    }
    return -1;
}

static int proc_apply(const struct command *cmd, struct resp_args *c, int64_t argc,
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

int keys_each(const struct command *cmd, const char *buf, const struct resp_request *req,
              keys_fn fn, void *arg)
{
    struct resp_args c;
    struct key_ranges kr;
    int64_t argc = req->argc, total = 0;

    if (req->kind != RESP_REQ_MULTIBULK || (cmd->flags & COMMAND_FLAG_CONTAINER))
        return -1;
    struct resp_view key;
    int one = keys_one(cmd->key_at, cmd->arity, buf, req, &key);
    if (one != 0) {
        if (one > 0)
            fn(arg, key, cmd->specs[0].flags);
        return one;
    }
    resp_args_init(&c, buf, req);
    if (specs_apply(cmd, &c, argc, &kr) < 0 && proc_apply(cmd, &c, argc, &kr) < 0)
        return -1;
    for (int i = 0; i < kr.n; i++)
        total += (kr.r[i].last - kr.r[i].first) / kr.r[i].step + 1;
    if (total > INT_MAX)
        return -1;
    for (int i = 0; i < kr.n; i++) {
        for (int64_t j = kr.r[i].first; j <= kr.r[i].last; j += kr.r[i].step)
            fn(arg, resp_args_get(&c, j), kr.r[i].flags);
    }
    return (int)total;
}

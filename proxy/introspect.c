/* introspect.c - the command table from Redis's own COMMAND reply. */
#include "proxy/introspect.h"

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "proxy/lib/log.h"

/* Fields of a COMMAND entry (Redis 7). */
enum {
    ENTRY_NAME = 0,
    ENTRY_ARITY = 1,
    ENTRY_FLAGS = 2,
    ENTRY_KEY_SPECS = 8,
    ENTRY_SUBCOMMANDS = 9,
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static bool str_is(const redisReply *r, const char *s)
{
    return r != NULL && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) &&
           r->len == strlen(s) && memcmp(r->str, s, r->len) == 0;
}

static bool is_array(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_ARRAY;
}

/* The value after the key `name` in a flat key/value array, or NULL. */
static const redisReply *field(const redisReply *map, const char *name)
{
    if (!is_array(map))
        return NULL;
    for (size_t i = 0; i + 1 < map->elements; i += 2) {
        if (str_is(map->element[i], name))
            return map->element[i + 1];
    }
    return NULL;
}

static int int_field(const redisReply *map, const char *name, int *out)
{
    const redisReply *v = field(map, name);

    if (v == NULL || v->type != REDIS_REPLY_INTEGER || v->integer < INT_MIN || v->integer > INT_MAX)
        return -1;
    *out = (int)v->integer;
    return 0;
}

/* The OR of the bits of the known flag names in arr; others are ignored. */
static int flags_of(const redisReply *arr, unsigned (*find)(const char *, size_t), unsigned *out)
{
    if (!is_array(arr))
        return -1;
    *out = 0;
    for (size_t i = 0; i < arr->elements; i++) {
        const redisReply *f = arr->element[i];
        if (f->type == REDIS_REPLY_STRING || f->type == REDIS_REPLY_STATUS)
            *out |= find(f->str, f->len);
    }
    return 0;
}

/* begin_search: index or keyword; any other type stays "unknown". */
static int parse_begin(const redisReply *bs, struct keys_spec *s)
{
    const redisReply *type = field(bs, "type"), *spec = field(bs, "spec");
    const redisReply *kw = field(spec, "keyword");

    if (str_is(type, "index")) {
        s->bs = KEYS_BS_INDEX;
        return int_field(spec, "index", &s->index);
    }
    if (!str_is(type, "keyword"))
        return type != NULL ? 0 : -1;
    if (kw == NULL || kw->type != REDIS_REPLY_STRING || kw->len == 0 ||
        kw->len > KEYS_KEYWORD_MAX || memchr(kw->str, '\0', kw->len) != NULL)
        return -1;
    s->bs = KEYS_BS_KEYWORD;
    memcpy(s->keyword, kw->str, kw->len);
    s->keyword[kw->len] = '\0';
    return int_field(spec, "startfrom", &s->startfrom);
}

/* find_keys: range or keynum; any other type stays "unknown". */
static int parse_find(const redisReply *fk, struct keys_spec *s)
{
    const redisReply *type = field(fk, "type"), *spec = field(fk, "spec");

    if (str_is(type, "range")) {
        s->fk = KEYS_FK_RANGE;
        return int_field(spec, "lastkey", &s->lastkey) < 0 ||
                       int_field(spec, "keystep", &s->keystep) < 0 ||
                       int_field(spec, "limit", &s->limit) < 0
                   ? -1
                   : 0;
    }
    if (str_is(type, "keynum")) {
        s->fk = KEYS_FK_KEYNUM;
        return int_field(spec, "keynumidx", &s->keynumidx) < 0 ||
                       int_field(spec, "firstkey", &s->firstkey) < 0 ||
                       int_field(spec, "keystep", &s->keystep) < 0
                   ? -1
                   : 0;
    }
    return type != NULL ? 0 : -1;
}

static int parse_spec(const redisReply *r, struct keys_spec *s)
{
    *s = (struct keys_spec){0};
    if (flags_of(field(r, "flags"), keys_key_flag, &s->flags) < 0)
        return -1;
    if (parse_begin(field(r, "begin_search"), s) < 0)
        return -1;
    return parse_find(field(r, "find_keys"), s);
}

/* One entry: [name, arity, flags, first, last, step, acl, tips, specs, subs]. */
static int parse_entry(const redisReply *e, struct command *cmd)
{
    const redisReply *name, *arity, *specs, *subs;

    *cmd = (struct command){0};
    if (!is_array(e) || e->elements <= ENTRY_FLAGS)
        return -1;
    name = e->element[ENTRY_NAME];
    arity = e->element[ENTRY_ARITY];
    if (name->type != REDIS_REPLY_STRING || name->len == 0 || name->len > COMMAND_NAME_MAX ||
        memchr(name->str, '\0', name->len) != NULL || arity->type != REDIS_REPLY_INTEGER ||
        arity->integer < INT_MIN || arity->integer > INT_MAX)
        return -1;
    memcpy(cmd->name, name->str, name->len);
    cmd->arity = (int)arity->integer;
    if (flags_of(e->element[ENTRY_FLAGS], command_flag, &cmd->flags) < 0)
        return -1;
    specs = e->elements > ENTRY_KEY_SPECS ? e->element[ENTRY_KEY_SPECS] : NULL;
    subs = e->elements > ENTRY_SUBCOMMANDS ? e->element[ENTRY_SUBCOMMANDS] : NULL;
    if (is_array(subs) && subs->elements > 0)
        cmd->flags |= COMMAND_FLAG_CONTAINER;
    if (specs == NULL)
        return 0;
    if (!is_array(specs) || specs->elements > KEYS_SPECS_MAX)
        return -1;
    for (size_t i = 0; i < specs->elements; i++) {
        if (parse_spec(specs->element[i], &cmd->specs[cmd->nspecs++]) < 0)
            return -1;
    }
    return 0;
}

/* Adds the entries of arr and, at the top level, their subcommands. */
static int add_entries(const redisReply *arr, struct command_table *t, bool top, int *bad)
{
    struct command cmd;
    int added = 0;

    for (size_t i = 0; i < arr->elements; i++) {
        const redisReply *e = arr->element[i];
        if (parse_entry(e, &cmd) < 0 || command_table_add(t, &cmd) < 0)
            (*bad)++;
        else
            added++;
        if (top && is_array(e) && e->elements > ENTRY_SUBCOMMANDS &&
            is_array(e->element[ENTRY_SUBCOMMANDS]))
            added += add_entries(e->element[ENTRY_SUBCOMMANDS], t, false, bad);
    }
    return added;
}

int introspect_commands(const struct ctl_target *redis, struct command_table *t, char *err,
                        size_t errlen)
{
    redisReply *r = ctl_call(redis, 1, (const char *const[]){"COMMAND"}, err, errlen);
    int added = -1, bad = 0;
    if (r == NULL || !is_array(r)) {
        if (r != NULL)
            set_err(err, errlen, "COMMAND failed: %s",
                    r->type == REDIS_REPLY_ERROR ? r->str : "not an array");
    } else {
        added = add_entries(r, t, true, &bad);
        if (bad > 0)
            set_err(err, errlen, "%d malformed COMMAND entries skipped", bad);
    }
    freeReplyObject(r);
    return added;
}

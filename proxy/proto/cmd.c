/* cmd.c - classification of commands by their effect on connection state. */
#include "proxy/proto/cmd.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CMD_NAME_MAX 24

/* How a command's kind is decided: by its name alone, or by an argument. */
typedef enum {
    CMD_BY_NAME = 0,
    CMD_BY_CLIENT_SUB, /* CLIENT <subcommand> */
    CMD_BY_HELLO,      /* HELLO [protover [AUTH u p] [SETNAME n]] */
    CMD_BY_XREAD,      /* XREAD/XREADGROUP ... [BLOCK ms] ... STREAMS */
} cmd_rule_e;

struct cmd_entry {
    const char *name; /* lower case, sorted */
    cmd_kind_e kind;
    cmd_rule_e rule;
};

static const struct cmd_entry CMD_TABLE[] = {
    {"asking", CMD_STICKY, CMD_BY_NAME},       {"auth", CMD_STICKY, CMD_BY_NAME},
    {"blmove", CMD_BLOCKING, CMD_BY_NAME},     {"blmpop", CMD_BLOCKING, CMD_BY_NAME},
    {"blpop", CMD_BLOCKING, CMD_BY_NAME},      {"brpop", CMD_BLOCKING, CMD_BY_NAME},
    {"brpoplpush", CMD_BLOCKING, CMD_BY_NAME}, {"bzmpop", CMD_BLOCKING, CMD_BY_NAME},
    {"bzpopmax", CMD_BLOCKING, CMD_BY_NAME},   {"bzpopmin", CMD_BLOCKING, CMD_BY_NAME},
    {"client", CMD_SHARED, CMD_BY_CLIENT_SUB}, {"discard", CMD_EXEC, CMD_BY_NAME},
    {"exec", CMD_EXEC, CMD_BY_NAME},           {"hello", CMD_SHARED, CMD_BY_HELLO},
    {"monitor", CMD_STREAM, CMD_BY_NAME},      {"multi", CMD_MULTI, CMD_BY_NAME},
    {"nearcache", CMD_NEARCACHE, CMD_BY_NAME}, {"psubscribe", CMD_STREAM, CMD_BY_NAME},
    {"psync", CMD_STREAM, CMD_BY_NAME},        {"punsubscribe", CMD_STREAM, CMD_BY_NAME},
    {"quit", CMD_QUIT, CMD_BY_NAME},           {"readonly", CMD_STICKY, CMD_BY_NAME},
    {"readwrite", CMD_STICKY, CMD_BY_NAME},    {"replconf", CMD_STREAM, CMD_BY_NAME},
    {"reset", CMD_RESET, CMD_BY_NAME},         {"select", CMD_STICKY, CMD_BY_NAME},
    {"ssubscribe", CMD_STREAM, CMD_BY_NAME},   {"subscribe", CMD_STREAM, CMD_BY_NAME},
    {"sunsubscribe", CMD_STREAM, CMD_BY_NAME}, {"sync", CMD_STREAM, CMD_BY_NAME},
    {"unsubscribe", CMD_STREAM, CMD_BY_NAME},  {"unwatch", CMD_UNWATCH, CMD_BY_NAME},
    {"wait", CMD_BLOCKING, CMD_BY_NAME},       {"waitaof", CMD_BLOCKING, CMD_BY_NAME},
    {"watch", CMD_WATCH, CMD_BY_NAME},         {"xread", CMD_SHARED, CMD_BY_XREAD},
    {"xreadgroup", CMD_SHARED, CMD_BY_XREAD},
};

/* CLIENT subcommands that set or read per-connection state. Others (LIST,
 * KILL, PAUSE, GETNAME, SETINFO, ...) are answered the same on any connection. */
static const struct {
    const char *name;
    cmd_kind_e kind;
} CLIENT_SUBS[] = {
    {"caching", CMD_STICKY},      {"getredir", CMD_STICKY}, {"id", CMD_STICKY},
    {"info", CMD_STICKY},         {"no-evict", CMD_STICKY}, {"no-touch", CMD_STICKY},
    {"reply", CMD_STREAM},        {"setname", CMD_STICKY},  {"tracking", CMD_STICKY},
    {"trackinginfo", CMD_STICKY},
};

static int arg_is(const char *buf, struct resp_view v, const char *word)
{
    return v.len == strlen(word) && strncasecmp(buf + v.off, word, v.len) == 0;
}

static int entry_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const struct cmd_entry *)elem)->name);
}

/* Whether some entry of CMD_TABLE has this length and first letter: most
 * requests (GET, SET, HGET, ...) are told apart here, before any compare. */
static bool cmd_may_be(struct resp_view name, char first)
{
    static uint32_t letters[CMD_NAME_MAX + 1]; /* by length: bit (c - 'a') per first letter */
    static bool ready;
    if (!ready) {
        for (size_t i = 0; i < sizeof(CMD_TABLE) / sizeof(CMD_TABLE[0]); i++)
            letters[strlen(CMD_TABLE[i].name)] |= 1u << (CMD_TABLE[i].name[0] - 'a');
        ready = true;
    }
    unsigned c = (unsigned char)(first | 0x20) - 'a';
    return c < 26 && (letters[name.len] >> c & 1u);
}

static const struct cmd_entry *cmd_find(const char *buf, struct resp_view name)
{
    char lower[CMD_NAME_MAX + 1];
    if (name.len == 0 || name.len > CMD_NAME_MAX || !cmd_may_be(name, buf[name.off]))
        return NULL;
    for (size_t i = 0; i < name.len; i++) {
        char ch = buf[name.off + i];
        lower[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch);
    }
    lower[name.len] = '\0';
    return bsearch(lower, CMD_TABLE, sizeof(CMD_TABLE) / sizeof(CMD_TABLE[0]), sizeof(CMD_TABLE[0]),
                   entry_cmp);
}

static cmd_kind_e classify_client(const char *buf, const struct resp_request *req)
{
    if (req->argc < 2)
        return CMD_SHARED;
    for (size_t i = 0; i < sizeof(CLIENT_SUBS) / sizeof(CLIENT_SUBS[0]); i++) {
        if (arg_is(buf, req->argv[1], CLIENT_SUBS[i].name))
            return CLIENT_SUBS[i].kind;
    }
    return CMD_SHARED;
}

/* HELLO alone, or HELLO 2 alone, leaves the (RESP2, unauthenticated-by-us)
 * shared connection as it is; anything else changes protocol, user or name. */
static cmd_kind_e classify_hello(const char *buf, const struct resp_request *req)
{
    if (req->argc == 1 || (req->argc == 2 && arg_is(buf, req->argv[1], "2")))
        return CMD_SHARED;
    return CMD_STICKY;
}

/* XREAD [COUNT n] [BLOCK ms] STREAMS ...: options come before STREAMS. */
static cmd_kind_e classify_xread(const char *buf, const struct resp_request *req)
{
    for (int64_t i = 1; i < req->argc; i++) {
        struct resp_view v = resp_request_arg(req, buf, i);
        if (arg_is(buf, v, "streams"))
            break;
        if (arg_is(buf, v, "block"))
            return CMD_BLOCKING;
    }
    return CMD_SHARED;
}

cmd_kind_e cmd_classify(const char *buf, const struct resp_request *req)
{
    if (req->kind != RESP_REQ_MULTIBULK || req->argc < 1)
        return CMD_SHARED;
    const struct cmd_entry *e = cmd_find(buf, req->argv[0]);
    if (e == NULL)
        return CMD_SHARED;
    switch (e->rule) {
    case CMD_BY_CLIENT_SUB:
        return classify_client(buf, req);
    case CMD_BY_HELLO:
        return classify_hello(buf, req);
    case CMD_BY_XREAD:
        return classify_xread(buf, req);
    case CMD_BY_NAME:
        break;
    }
    return e->kind;
}

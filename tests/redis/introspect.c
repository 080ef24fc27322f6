/* tests/redis/introspect.c - the key tables against a real redis-server: the
 * one proxy/introspect.c loads with COMMAND, and the built-in one.
 *
 * The table loaded with introspect_commands and the built-in table must find
 * the same keys as Redis's own COMMAND GETKEYS for a corpus of requests, and
 * the built-in table must list exactly the commands, arities, flags and key
 * specs of the COMMAND reply of the redis-server under test (7.0.15).
 */
#include <criterion/criterion.h>

#include <hiredis/hiredis.h>

#include <stdlib.h>
#include <string.h>

#include "harness/bytes.h"
#include "harness/clock.h"
#include "harness/fixtures.h"
#include "harness/redis.h"
#include "proxy/introspect.h"
#include "proxy/proto/command.h"

#define KEYS_TEXT_MAX 2048
#define GIVE_UP       "ERR" /* keys_each returned -1 */

/* Requests as inline lines. "ERR" in the second column: keys_each must give
 * up (Redis would name keys, but the command fails); otherwise NULL, and
 * the keys must be those of COMMAND GETKEYS. */
static const struct {
    const char *line;
    const char *want;
} CORPUS[] = {
    {"SET k v", NULL},
    {"SET k v GET", NULL},
    {"GET k", NULL},
    {"GETDEL k", NULL},
    {"MSET a 1 b 2 c 3", NULL},
    {"MSETNX a 1 b 2", NULL},
    {"MGET a b c", NULL},
    {"DEL a b c", NULL},
    {"UNLINK a b", NULL},
    {"EXISTS a b a", NULL},
    {"TYPE k", NULL},
    {"STRLEN k", NULL},
    {"GETRANGE k 0 1", NULL},
    {"APPEND k v", NULL},
    {"INCRBY k 2", NULL},
    {"EXPIRE k 10 NX", NULL},
    {"HSET h f v", NULL},
    {"HGET h f", NULL},
    {"HMGET h f g", NULL},
    {"HGETALL h", NULL},
    {"LPUSH l a b", NULL},
    {"LRANGE l 0 -1", NULL},
    {"SADD s m", NULL},
    {"SMEMBERS s", NULL},
    {"SINTERSTORE d a b", NULL},
    {"SINTERCARD 2 a b LIMIT 3", NULL},
    {"ZADD z 1 m", NULL},
    {"ZRANGE z 0 -1", NULL},
    {"ZSCORE z m", NULL},
    {"ZRANGESTORE d z 0 -1", NULL},
    {"ZUNIONSTORE d 2 a b WEIGHTS 1 2", NULL},
    {"ZINTERSTORE d 1 a", NULL},
    {"ZDIFF 2 a b WITHSCORES", NULL},
    {"ZMPOP 2 a b MIN", NULL},
    {"BZMPOP 0 1 a MAX", NULL},
    {"LMPOP 2 a b LEFT", NULL},
    {"BLMPOP 0 2 a b RIGHT", NULL},
    {"BLPOP a b 0", NULL},
    {"EVAL s 2 a b x", NULL},
    {"EVAL s 0", NULL},
    {"EVAL s 0 x y", NULL},
    {"EVAL s 5 a", NULL},
    {"EVAL s -1 a", NULL},
    {"EVAL s x a", NULL},
    {"EVAL s 01 a", GIVE_UP},
    {"EVALSHA sha 1 a", NULL},
    {"EVAL_RO s 1 a b", NULL},
    {"FCALL f 2 a b x", NULL},
    {"FCALL_RO f 0", NULL},
    {"XADD s * f v", NULL},
    {"XREAD COUNT 2 STREAMS a b 0 0", NULL},
    {"XREAD BLOCK 0 STREAMS a $", NULL},
    {"XREADGROUP GROUP g c COUNT 1 STREAMS a b > >", NULL},
    {"XGROUP CREATE s g $ MKSTREAM", NULL},
    {"XINFO STREAM s", NULL},
    {"OBJECT ENCODING k", NULL},
    {"MEMORY USAGE k", NULL},
    {"SORT k", NULL},
    {"SORT k STORE d", NULL},
    {"SORT k BY w_* GET # LIMIT 0 10 STORE d", NULL},
    {"SORT k STORE d STORE e", NULL},
    {"SORT k LIMIT store 1 ALPHA", NULL},
    {"SORT_RO k BY w_*", NULL},
    {"LMOVE a b LEFT RIGHT", NULL},
    {"BLMOVE a b LEFT RIGHT 0", NULL},
    {"RPOPLPUSH a b", NULL},
    {"SMOVE a b m", NULL},
    {"RENAME a b", NULL},
    {"COPY a b REPLACE", NULL},
    {"BITOP AND d a b", NULL},
    {"BITFIELD k GET u8 0", NULL},
    {"GEOADD g 0 0 m", NULL},
    {"GEORADIUS k 0 0 1 km STORE d", NULL},
    {"GEORADIUS k 0 0 1 km STOREDIST d", NULL},
    {"GEORADIUS k 0 0 1 km", NULL},
    {"GEORADIUSBYMEMBER k m 1 km STORE d", NULL},
    {"GEOSEARCHSTORE d k FROMMEMBER m BYRADIUS 1 km", NULL},
    {"MIGRATE h 6379 k 0 5000", NULL},
    {"MIGRATE h 6379 k 0 5000 COPY REPLACE", NULL},
    {"MIGRATE h 6379 \"\" 0 5000 KEYS a b", NULL},
    {"MIGRATE h 6379 \"\" 0 5000 AUTH keys KEYS a", NULL},
    {"RESTORE k 0 payload", NULL},
    {"PFMERGE d a b", NULL},
    {"PFCOUNT a b", NULL},
    {"WATCH a b", NULL},
    {"TOUCH a b", NULL},
    {"LCS a b", NULL},
    {"GETEX k PERSIST", NULL},
    {"FLUSHDB SYNC", NULL},
    {"FLUSHALL ASYNC", NULL},
    {"SWAPDB 0 1", NULL},
    {"PUBLISH ch m", NULL},
    {"PING hello", NULL},
};

struct found {
    const char *frame;
    char *keys[256];
    int n;
};

static void collect(void *arg, struct resp_view key, unsigned flags)
{
    struct found *f = arg;

    (void)flags;
    if (f->n < (int)ARRAY_LEN(f->keys))
        f->keys[f->n++] = strndup(f->frame + key.off, key.len);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted, space-separated, in a static buffer. */
static const char *join(char **keys, int n)
{
    static char out[KEYS_TEXT_MAX];
    size_t len = 0;

    qsort(keys, (size_t)n, sizeof(*keys), str_cmp);
    out[0] = '\0';
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s", i ? " " : "", keys[i]);
    return out;
}

static redisContext *connect_or_fail(void)
{
    struct timeval tv = {HARNESS_TIMEOUT_MS / 1000, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", fx_redis.port, tv);

    cr_assert(c != NULL && c->err == 0, "cannot connect to redis");
    redisSetTimeout(c, tv);
    return c;
}

/* Redis's keys for the request, sorted; "ERR" when it refuses (arity). */
static char *redis_getkeys(redisContext *c, const char *frame, const struct resp_request *req)
{
    const char *argv[64];
    size_t lens[64];
    int argc = 2;
    char *keys[64];
    redisReply *r;
    char *out;

    argv[0] = "COMMAND", lens[0] = 7, argv[1] = "GETKEYS", lens[1] = 7;
    for (int64_t i = 0; i < req->argc && argc < 64; i++, argc++) {
        struct resp_view v = resp_request_arg(req, frame, i);
        argv[argc] = frame + v.off;
        lens[argc] = v.len;
    }
    r = redisCommandArgv(c, argc, argv, lens);
    cr_assert_not_null(r, "COMMAND GETKEYS: %s", c->errstr);
    if (r->type == REDIS_REPLY_ERROR) {
        out = strdup(strstr(r->str, "no key arguments") != NULL ? "" : GIVE_UP);
        freeReplyObject(r);
        return out;
    }
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    for (size_t i = 0; i < r->elements; i++)
        keys[i] = r->element[i]->str;
    out = strdup(join(keys, (int)r->elements));
    freeReplyObject(r);
    return out;
}

/* keys_each's keys for the request, sorted; "ERR" for -1. */
static char *table_keys(const struct command_table *t, const char *frame,
                        const struct resp_request *req)
{
    struct found f = {.frame = frame};
    const struct command *cmd = command_lookup_request(t, frame, req);
    int n = cmd != NULL ? keys_each(cmd, frame, req, collect, &f) : -2;
    char *out;

    cr_assert_neq(n, -2, "unknown command");
    cr_assert(n == -1 || n == f.n);
    out = strdup(n < 0 ? GIVE_UP : join(f.keys, f.n));
    for (int i = 0; i < f.n; i++)
        free(f.keys[i]);
    return out;
}

static void check_corpus(const struct command_table *t, const char *which)
{
    redisContext *c = connect_or_fail();

    for (size_t i = 0; i < ARRAY_LEN(CORPUS); i++) {
        struct resp_scanner s = {0};
        struct resp_request req;
        size_t len;
        int64_t argc;
        const char *err;
        char *frame = resp_inline_encode(CORPUS[i].line, strlen(CORPUS[i].line), &len, &argc, &err);

        cr_assert_not_null(frame);
        resp_scanner_reset(&s);
        cr_assert_eq(resp_scan_request(&s, &RESP_LIMITS_DEFAULT, frame, len, &req), RESP_OK);
        char *want = CORPUS[i].want ? strdup(CORPUS[i].want) : redis_getkeys(c, frame, &req);
        char *got = table_keys(t, frame, &req);
        cr_expect_str_eq(got, want, "%s table, %s: Redis [%s], table [%s]", which, CORPUS[i].line,
                         want, got);
        free(want);
        free(got);
        free(frame);
    }
    redisFree(c);
}

static struct net_addr redis_addr(int port)
{
    char address[64];
    struct net_addr addr;
    const char *why;
    snprintf(address, sizeof(address), "127.0.0.1:%d", port);
    cr_assert_eq(net_addr_parse(address, &addr, &why), 0);
    return addr;
}

static struct command_table *load_introspected(void)
{
    struct command_table *t = command_table_create();
    char err[256];
    struct net_addr addr = redis_addr(fx_redis.port);
    const struct ctl_target redis = {.addr = &addr, .timeout_ms = HARNESS_TIMEOUT_MS};
    int n = introspect_commands(&redis, t, err, sizeof(err));

    cr_assert_gt(n, 0, "introspect_commands: %s", err);
    cr_assert_str_empty(err);
    cr_assert_eq((size_t)n, command_table_count(t));
    return t;
}

TestSuite(keys, .init = fixture_redis, .fini = fixture_stop, .timeout = 120);

Test(keys, introspected_table_agrees_with_getkeys)
{
    struct command_table *t = load_introspected();

    check_corpus(t, "introspected");
    command_table_destroy(&t);
}

Test(keys, builtin_table_agrees_with_getkeys)
{
    struct command_table *t = command_table_create();

    cr_assert_gt(command_table_add_builtin(t), 0);
    check_corpus(t, "builtin");
    command_table_destroy(&t);
}

static bool spec_equal(const struct keys_spec *a, const struct keys_spec *b)
{
    return a->flags == b->flags && a->bs == b->bs && a->index == b->index &&
           strcmp(a->keyword, b->keyword) == 0 && a->startfrom == b->startfrom && a->fk == b->fk &&
           a->lastkey == b->lastkey && a->keystep == b->keystep && a->limit == b->limit &&
           a->keynumidx == b->keynumidx && a->firstkey == b->firstkey;
}

struct compare {
    const struct command_table *other;
    int checked;
};

/* cmd (of one table) is in the other table with the same arity, flags, specs. */
static void compare_cmd(void *arg, const struct command *cmd)
{
    struct compare *cmp = arg;
    const struct command *o = command_lookup(cmp->other, cmd->name, strlen(cmd->name));

    cr_expect_not_null(o, "%s: only in one table", cmd->name);
    if (o == NULL)
        return;
    cr_expect_eq(cmd->arity, o->arity, "%s: arity", cmd->name);
    cr_expect_eq(cmd->flags & COMMAND_FLAG_WRITE, o->flags & COMMAND_FLAG_WRITE, "%s: write",
                 cmd->name);
    cr_expect_eq(cmd->flags & COMMAND_FLAG_READONLY, o->flags & COMMAND_FLAG_READONLY,
                 "%s: readonly", cmd->name);
    cr_expect_eq(cmd->flags, o->flags, "%s: flags %#x vs %#x", cmd->name, cmd->flags, o->flags);
    cr_expect_eq(cmd->nspecs, o->nspecs, "%s: number of key specs", cmd->name);
    for (int i = 0; i < cmd->nspecs && i < o->nspecs; i++)
        cr_expect(spec_equal(&cmd->specs[i], &o->specs[i]), "%s: key spec %d differs", cmd->name,
                  i);
    cmp->checked++;
}

Test(keys, builtin_table_is_command)
{
    struct command_table *live = load_introspected();
    struct command_table *builtin = command_table_create();
    struct compare cmp = {live, 0};

    cr_assert_gt(command_table_add_builtin(builtin), 0);
    command_table_each(builtin, compare_cmd, &cmp);
    cr_expect_eq((size_t)cmp.checked, command_table_count(builtin));
    cmp = (struct compare){builtin, 0};
    command_table_each(live, compare_cmd, &cmp);
    cr_expect_eq(command_table_count(live), command_table_count(builtin));
    command_table_destroy(&live);
    command_table_destroy(&builtin);
}

Test(keys, introspect_failure_is_reported)
{
    struct command_table *t = command_table_create();
    char err[256];

    struct net_addr addr = redis_addr(fx_redis.port), nowhere;
    const char *why;
    cr_assert_eq(net_addr_parse("/nonexistent/redis.sock", &nowhere, &why), 0);
    struct ctl_target redis = {.addr = &addr, .password = "wrong", .timeout_ms = 2000};
    cr_expect_eq(introspect_commands(&redis, t, err, sizeof(err)), -1);
    cr_expect(strstr(err, "AUTH") != NULL, "%s", err);
    redis = (struct ctl_target){.addr = &nowhere, .timeout_ms = 2000};
    cr_expect_eq(introspect_commands(&redis, t, err, sizeof(err)), -1);
    cr_expect(strstr(err, "connect") != NULL, "%s", err);
    cr_expect_eq(command_table_count(t), 0);
    command_table_destroy(&t);
}

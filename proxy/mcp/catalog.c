/* catalog.c - the MCP tools: RESP round trips to the proxy, answers as JSON. */
#include "proxy/mcp/catalog.h"

#include <hiredis/hiredis.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/lib/text.h"
#include "proxy/tools/analyze.h"
#include "proxy/tools/bulk.h"
#include "proxy/tools/tune.h"

#define CATALOG_VALUE_MAX    1024  /* bytes of a string value shown */
#define CATALOG_DEPTH_MAX    8     /* nesting of a reply rendered */
#define CATALOG_ANALYZE_KEYS 10000 /* pattern_analysis: keys walked unless told */
#define CATALOG_TUNE_KEYS    2000  /* performance_tuning: scratch keys unless told */
#define CATALOG_TUNE_SECONDS 3.0   /* performance_tuning: seconds of reading unless told */

/* A reply as JSON: strings as text, integers, nil as null, arrays nested up
 * to CATALOG_DEPTH_MAX. */
static json_t *catalog_reply(const redisReply *r, int depth)
{
    if (r->type == REDIS_REPLY_INTEGER)
        return json_integer(r->integer);
    if (r->type == REDIS_REPLY_NIL)
        return json_null();
    if (r->type != REDIS_REPLY_ARRAY)
        return text_json(r->str, r->len);
    json_t *a = json_array();
    for (size_t i = 0; i < r->elements && depth < CATALOG_DEPTH_MAX; i++)
        json_array_append_new(a, catalog_reply(r->element[i], depth + 1));
    return a;
}

/* Runs one command (argv[0, argc), binary safe). Returns its reply, or NULL
 * after writing why into why: the connection failed, or Redis or the proxy
 * answered an error. */
static redisReply *catalog_run(redisContext *rc, char *why, size_t len, int argc, const char **argv,
                               const size_t *lens)
{
    redisReply *r = rc != NULL ? redisCommandArgv(rc, argc, argv, lens) : NULL;
    if (rc == NULL) {
        snprintf(why, len, "no connection to the proxy");
        return NULL;
    }
    if (r == NULL) {
        snprintf(why, len, "the proxy did not answer %s: %s", argv[0], rc->errstr);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(why, len, "%s %s: %s", argv[0], argc > 1 ? argv[1] : "", r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* NEARCACHE sub [args...] (NULL-terminated strings). */
static redisReply *catalog_nearcache(redisContext *rc, char *why, size_t len, const char *sub, ...)
{
    const char *argv[6] = {"NEARCACHE", sub};
    size_t lens[6] = {9, strlen(sub)};
    int argc = 2;
    va_list ap;
    va_start(ap, sub);
    for (const char *a; argc < 6 && (a = va_arg(ap, const char *)) != NULL; argc++) {
        argv[argc] = a;
        lens[argc] = strlen(a);
    }
    va_end(ap);
    return catalog_run(rc, why, len, argc, argv, lens);
}

/* A NEARCACHE subcommand answering lines, as an object. */
static json_t *catalog_lines_of(redisContext *rc, char *why, size_t len, const char *sub,
                                const char *a1, const char *a2)
{
    redisReply *r = catalog_nearcache(rc, why, len, sub, a1, a2, NULL);
    if (r == NULL)
        return NULL;
    json_t *o = r->type == REDIS_REPLY_STRING ? text_lines_json(r->str, r->len) : NULL;
    if (o == NULL)
        snprintf(why, len, "NEARCACHE %s: the proxy answered something other than lines", sub);
    freeReplyObject(r);
    return o;
}

/* ---- the tools --------------------------------------------------------------- */

static json_t *tool_cache_stats(const void *env, const json_t *args, char *why, size_t len)
{
    redisContext *rc = ((const struct catalog_env *)env)->rc;
    (void)args;
    return catalog_lines_of(rc, why, len, "STATS", NULL, NULL);
}

static json_t *tool_hot_keys(const void *env, const json_t *args, char *why, size_t len)
{
    redisContext *rc = ((const struct catalog_env *)env)->rc;
    static const char *const FIELDS[] = {"reads", "writes", "hits", "error"};
    const json_t *n = json_object_get(args, "n");
    char count[24];
    snprintf(count, sizeof(count), "%lld", n != NULL ? (long long)json_integer_value(n) : 10LL);
    redisReply *r = catalog_nearcache(rc, why, len, "HOTKEYS", count, NULL);
    if (r == NULL)
        return NULL;
    json_t *keys = json_array();
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 5 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            break;
        json_t *k = json_pack("{s:o}", "key", text_json(e->element[0]->str, e->element[0]->len));
        for (size_t f = 0; f < 4; f++)
            json_object_set_new(k, FIELDS[f], catalog_reply(e->element[f + 1], 1));
        json_array_append_new(keys, k);
    }
    if (r->type != REDIS_REPLY_ARRAY || json_array_size(keys) != r->elements) {
        snprintf(why, len, "NEARCACHE HOTKEYS: an unexpected reply");
        json_decref(keys);
        keys = NULL;
    }
    freeReplyObject(r);
    return keys != NULL ? json_pack("{s:o}", "keys", keys) : NULL;
}

/* Runs cmds (each a format for one key, "%b" then fixed arguments) in one
 * MULTI/EXEC, so that the tier answers none of them. Returns EXEC's reply. */
static redisReply *catalog_transaction(redisContext *rc, const char *key, size_t klen,
                                       const char *const *cmds, size_t n, char *why, size_t len)
{
    if (rc == NULL) {
        snprintf(why, len, "no connection to the proxy");
        return NULL;
    }
    redisAppendCommand(rc, "MULTI");
    for (size_t i = 0; i < n; i++)
        redisAppendCommand(rc, cmds[i], key, klen);
    redisAppendCommand(rc, "EXEC");
    redisReply *r = NULL;
    for (size_t i = 0; i < n + 2; i++) {
        void *got = NULL;
        if (redisGetReply(rc, &got) != REDIS_OK) {
            snprintf(why, len, "the proxy did not answer the transaction: %s", rc->errstr);
            freeReplyObject(r);
            return NULL;
        }
        freeReplyObject(r);
        r = got;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != n) {
        snprintf(why, len, "EXEC: %s", r->type == REDIS_REPLY_ERROR ? r->str : "aborted");
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* Redis's value of key of type type: its size and the first elements. */
static json_t *catalog_value_of(redisContext *rc, const char *key, size_t klen, const char *type,
                                char *why, size_t len)
{
    static const struct {
        const char *type, *size, *read;
        size_t per; /* reply elements per item shown (0: bytes of a string) */
    } READS[] = {
        {"string", "STRLEN %b", "GETRANGE %b 0 1023", 0},
        {"list", "LLEN %b", "LRANGE %b 0 49", 1},
        {"hash", "HLEN %b", "HSCAN %b 0 COUNT 50", 2},
        {"set", "SCARD %b", "SSCAN %b 0 COUNT 50", 1},
        {"zset", "ZCARD %b", "ZRANGE %b 0 49 WITHSCORES", 2},
        {"stream", "XLEN %b", "XRANGE %b - + COUNT 10", 1},
    };
    size_t i = 0;
    while (i < sizeof(READS) / sizeof(*READS) && strcmp(READS[i].type, type) != 0)
        i++;
    if (i == sizeof(READS) / sizeof(*READS))
        return json_object(); /* none, or a module's type */
    const char *cmds[] = {READS[i].size, READS[i].read};
    redisReply *r = catalog_transaction(rc, key, klen, cmds, 2, why, len);
    if (r == NULL)
        return NULL;
    const redisReply *value = r->element[1];
    if (value->type == REDIS_REPLY_ARRAY && strstr(READS[i].read, "SCAN") && value->elements == 2)
        value = value->element[1]; /* a scan's cursor, then its elements */
    long long size = r->element[0]->integer;
    bool truncated = READS[i].per == 0 ? size > CATALOG_VALUE_MAX
                                       : (long long)(value->elements / READS[i].per) < size;
    json_t *o = json_pack("{s:I,s:o,s:b}", "size", (json_int_t)size, "value",
                          catalog_reply(value, 0), "truncated", truncated);
    freeReplyObject(r);
    return o;
}

static json_t *tool_inspect_key(const void *env, const json_t *args, char *why, size_t len)
{
    redisContext *rc = ((const struct catalog_env *)env)->rc;
    const json_t *k = json_object_get(args, "key");
    const char *key = json_string_value(k);
    size_t klen = json_string_length(k);
    json_t *tier = catalog_lines_of(rc, why, len, "INSPECT", key, NULL);
    if (tier == NULL && rc == NULL)
        return NULL;
    if (tier == NULL) /* the proxy's side failed: Redis's is still worth showing */
        tier = json_pack("{s:s}", "error", why);
    static const char *const META[] = {"TYPE %b", "PTTL %b"};
    redisReply *r = catalog_transaction(rc, key, klen, META, 2, why, len);
    json_t *redis = NULL;
    if (r != NULL) {
        const char *type = r->element[0]->type == REDIS_REPLY_STATUS ? r->element[0]->str : "";
        long long pttl = r->element[1]->integer;
        redis = catalog_value_of(rc, key, klen, type, why, len);
        if (redis != NULL) {
            json_object_set_new(redis, "type", json_string(type));
            json_object_set_new(redis, "pttl_ms", json_integer(pttl));
            json_object_set_new(redis, "ttl",
                                json_string(pttl == -2   ? "the key does not exist"
                                            : pttl == -1 ? "no expiry"
                                                         : "expires"));
        }
        freeReplyObject(r);
    }
    if (redis == NULL) {
        json_decref(tier);
        return NULL;
    }
    return json_pack("{s:O,s:o,s:o}", "key", k, "tier", tier, "redis", redis);
}

static json_t *tool_explain_policy(const void *env, const json_t *args, char *why, size_t len)
{
    redisContext *rc = ((const struct catalog_env *)env)->rc;
    const char *key = json_string_value(json_object_get(args, "key"));
    const char *command = json_string_value(json_object_get(args, "command"));
    return catalog_lines_of(rc, why, len, "EXPLAIN", key, command);
}

static json_t *tool_invalidate(const void *env, const json_t *args, char *why, size_t len)
{
    redisContext *rc = ((const struct catalog_env *)env)->rc;
    const char *pattern = json_string_value(json_object_get(args, "pattern"));
    redisReply *r = catalog_nearcache(rc, why, len, "INVALIDATE", pattern, NULL);
    if (r == NULL)
        return NULL;
    freeReplyObject(r);
    return json_pack("{s:s,s:b}", "pattern", pattern, "invalidated", 1);
}

static json_t *tool_reload(const void *env, const json_t *args, char *why, size_t len)
{
    redisContext *rc = ((const struct catalog_env *)env)->rc;
    (void)args;
    redisReply *r = catalog_nearcache(rc, why, len, "RELOAD", NULL);
    if (r == NULL)
        return NULL;
    freeReplyObject(r);
    return json_pack("{s:b}", "reloaded", 1);
}

/* An integer argument, or dflt when absent. */
static json_int_t arg_int(const json_t *args, const char *name, json_int_t dflt)
{
    const json_t *v = json_object_get(args, name);
    return v != NULL ? json_integer_value(v) : dflt;
}

static json_t *tool_pattern_analysis(const void *envp, const json_t *args, char *why, size_t len)
{
    const struct catalog_env *env = envp;
    json_t *stats = catalog_lines_of(env->rc, why, len, "STATS", NULL, NULL);
    const char *upstream = json_string_value(json_object_get(stats, "upstream_address"));
    if (stats != NULL && upstream == NULL)
        snprintf(why, len, "NEARCACHE STATS names no upstream_address");
    json_t *report = NULL;
    if (upstream != NULL) {
        struct analyze_options o;
        analyze_options_init(&o);
        if (json_object_get(stats, "cluster_moved") != NULL) /* in front of a cluster */
            o.cluster = upstream;
        else
            o.upstream = upstream;
        o.user = env->upstream_user;
        o.password = env->upstream_password;
        o.match = json_string_value(json_object_get(args, "match"));
        o.max_keys = (uint64_t)arg_int(args, "max_keys", CATALOG_ANALYZE_KEYS);
        o.samples = (unsigned)arg_int(args, "samples", o.samples);
        const json_t *rate = json_object_get(args, "rate");
        if (rate != NULL)
            o.rate = json_number_value(rate);
        o.proxy = env->proxy;
        o.proxy_password = env->proxy_password;
        o.stop = env->stop;
        report = analyze_run(&o, why, len);
    }
    json_decref(stats);
    return report;
}

static json_t *tool_performance_tuning(const void *envp, const json_t *args, char *why, size_t len)
{
    const struct catalog_env *env = envp;
    struct tune_options o;
    tune_options_init(&o);
    o.proxy = env->proxy;
    o.password = env->proxy_password;
    o.stop = env->stop;
    o.keys = (unsigned long)arg_int(args, "keys", CATALOG_TUNE_KEYS);
    o.duration = json_object_get(args, "seconds") != NULL
                     ? json_number_value(json_object_get(args, "seconds"))
                     : CATALOG_TUNE_SECONDS;
    const char *prefix = json_string_value(json_object_get(args, "prefix"));
    if (prefix != NULL)
        o.prefix = prefix;
    if (o.proxy == NULL) {
        snprintf(why, len, "the proxy's address is not known here");
        return NULL;
    }
    return tune_options_check(&o, why, len) < 0 ? NULL : tune_run(&o, why, len);
}

static json_t *tool_bulk_operations(const void *envp, const json_t *args, char *why, size_t len)
{
    const struct catalog_env *env = envp;
    struct bulk_list ops = {0};
    json_t *report = NULL;
    if (env->rc == NULL)
        snprintf(why, len, "no connection to the proxy");
    else if (bulk_parse_json(&ops, json_object_get(args, "operations"), why, len) == 0)
        report = bulk_run(env->rc, ops.ops, ops.n, (size_t)arg_int(args, "batch", 100), why, len);
    bulk_list_deinit(&ops);
    return report;
}

/* ---- the table ----------------------------------------------------------------- */

#define NO_ARGS "{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}"
#define KEY_ARG "\"key\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":4096,"

static const struct mcp_tool TOOLS[] = {
    {"cache_stats", "Cache statistics",
     "The proxy's figures (NEARCACHE STATS): clients, requests, the local tier's hits, misses, "
     "hit ratio, fills and invalidations, tracking state, reloads, upstream.",
     NO_ARGS, NULL, true, false, true, false, tool_cache_stats},
    {"hot_keys", "Hot keys",
     "The most requested keys, hottest first, with estimated reads, writes, tier hits and the "
     "estimate's error bound (NEARCACHE HOTKEYS; counts are sampled estimates).",
     "{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\",\"minimum\":1,"
     "\"maximum\":1000,\"description\":\"how many keys (default 10)\"}},"
     "\"additionalProperties\":false}",
     NULL, true, false, true, false, tool_hot_keys},
    {"inspect_key", "Inspect a key",
     "One key's state: the local tier's entry, the rule that cached it and its TTL left, the "
     "tracking state (NEARCACHE INSPECT), and Redis's own type, TTL and value read past the "
     "tier (strings past 1024 bytes and collections past 50 elements are truncated).",
     "{\"type\":\"object\",\"properties\":{" KEY_ARG "\"description\":\"the key\"}},"
     "\"required\":[\"key\"],\"additionalProperties\":false}",
     NULL, true, false, false, false, tool_inspect_key},
    {"explain_policy", "Explain the policy for a key",
     "Which validation, cache and invalidation rules apply to a key (and a command) and why "
     "(NEARCACHE EXPLAIN).",
     "{\"type\":\"object\",\"properties\":{" KEY_ARG "\"description\":\"the key\"},"
     "\"command\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":64,"
     "\"description\":\"a command name, e.g. GET or HSET (default: a read)\"}},"
     "\"required\":[\"key\"],\"additionalProperties\":false}",
     NULL, true, false, true, false, tool_explain_policy},
    {"invalidate", "Invalidate tier entries",
     "Drops every local tier entry whose key matches a pattern (policy syntax: *, ?, {name}; "
     "e.g. user:{id}:profile or session:*). Redis is not touched. Needs the admin token.",
     "{\"type\":\"object\",\"properties\":{\"pattern\":{\"type\":\"string\",\"minLength\":1,"
     "\"maxLength\":1024,\"description\":\"a key pattern\"}},"
     "\"required\":[\"pattern\"],\"additionalProperties\":false}",
     NULL, false, true, true, false, tool_invalidate},
    {"reload", "Reload the configuration",
     "Reloads the settings and the policy as SIGHUP does; answered once applied or failed. "
     "Needs the admin token.",
     NO_ARGS, NULL, false, true, false, false, tool_reload},
    {"pattern_analysis", "Key-pattern analysis",
     "Walks the keyspace of the proxy's Redis (every primary of a cluster) with SCAN, bounded "
     "and paced, groups the keys into patterns (user:{id}:profile), samples their types, sizes "
     "and TTLs, reads the proxy's hot keys and rule counters, and advises cache rules "
     "(nearcache analyze).",
     "{\"type\":\"object\",\"properties\":{"
     "\"match\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":1024,"
     "\"description\":\"only keys matching this SCAN MATCH glob\"},"
     "\"max_keys\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100000,"
     "\"description\":\"stop after this many keys (default 10000)\"},"
     "\"rate\":{\"type\":\"number\",\"minimum\":1000,\"maximum\":100000,"
     "\"description\":\"keys scanned or sampled per second (default 5000)\"},"
     "\"samples\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":1000,"
     "\"description\":\"keys sampled per pattern\"}},"
     "\"additionalProperties\":false}",
     NULL, true, false, true, false, tool_pattern_analysis},
    {"performance_tuning", "Performance tuning run",
     "A short load through the proxy on scratch keys under a prefix of their own (written, "
     "read cold, warm and Zipf-skewed, then deleted; never another key): hit and miss "
     "latency percentiles, throughput, and advice on pool size, tier size and rules "
     "(nearcache tune). Needs the admin token.",
     "{\"type\":\"object\",\"properties\":{"
     "\"seconds\":{\"type\":\"number\",\"minimum\":0.5,\"maximum\":10,"
     "\"description\":\"seconds of reading (default 3)\"},"
     "\"keys\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100000,"
     "\"description\":\"scratch keys (default 2000)\"},"
     "\"prefix\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":128,"
     "\"description\":\"their prefix (default nearcache:tune:); refused if keys exist "
     "under it\"}},\"additionalProperties\":false}",
     NULL, false, false, false, false, tool_performance_tuning},
    {"bulk_operations", "Bulk operations",
     "Runs up to 1000 get, set (with a TTL), del and invalidate (a tier pattern) operations "
     "through the proxy, pipelined in batches, and answers each one's result and the "
     "throughput (nearcache bulk). Needs the admin token.",
     "{\"type\":\"object\",\"properties\":{"
     "\"operations\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":1000,"
     "\"items\":{\"type\":\"object\"},"
     "\"description\":\"[{op: get|set|del|invalidate, key, value, ttl, pattern}]\"},"
     "\"batch\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":1000,"
     "\"description\":\"operations per round trip (default 100)\"}},"
     "\"required\":[\"operations\"],\"additionalProperties\":false}",
     NULL, false, true, false, false, tool_bulk_operations},
};

const struct mcp_tool *catalog_tools(size_t *n)
{
    *n = sizeof(TOOLS) / sizeof(*TOOLS);
    return TOOLS;
}

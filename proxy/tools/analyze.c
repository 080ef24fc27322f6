/* analyze.c - analyze_run: the walk, the sampling and the proxy's figures. */
#include "proxy/tools/analyze.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy/pattern.h"
#include "proxy/cluster/map.h"
#include "proxy/lib/text.h"
#include "proxy/net.h"
#include "proxy/tools/target.h"
#include "proxy/proto/slot.h"
#include "proxy/tools/advise.h"
#include "proxy/tools/patterns.h"

#define SCAN_COUNT_MAX 1000 /* SCAN COUNT unpaced; paced: rate / 10, at least 10 */
#define SAMPLE_BATCH   64   /* keys whose four commands go in one pipeline */
#define IO_TIMEOUT     30   /* seconds, per reply */
#define ADDR_MAX       (MAP_HOST_MAX + 8)

struct run {
    const struct analyze_options *o;
    redisContext *nodes[MAP_NODES_MAX];
    char names[MAP_NODES_MAX][ADDR_MAX];
    int nnodes;
    struct map *map; /* a cluster's, else NULL */
    struct patterns *pt;
    double t0, drawn;
    uint64_t units, keys, dbsize;
    bool full; /* stopped at max_keys */
    json_t *patterns;
    char *err;
    size_t errlen;
    bool failed;
};

/* Records the first failure (printf-style). Returns -1. */
__attribute__((format(printf, 2, 3))) static int fail(struct run *r, const char *fmt, ...)
{
    if (!r->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err, r->errlen, fmt, ap);
        va_end(ap);
        r->failed = true;
    }
    return -1;
}

/* Takes units of work (keys scanned or sampled) and waits until the run,
 * at o->rate, may have done all the work taken so far. */
static void pace(struct run *r, uint64_t units)
{
    r->units += units;
    if (r->o->rate <= 0)
        return;
    double wait = r->t0 + (double)r->units / r->o->rate - target_now();
    if (wait > 0) {
        struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

static void draw(struct run *r, bool last)
{
    double t = target_now();
    if (!r->o->progress || (!last && t - r->drawn < 0.1))
        return;
    r->drawn = t;
    uint64_t total = r->dbsize < r->o->max_keys ? r->dbsize : r->o->max_keys;
    double part = total > 0 ? (double)r->keys / (double)total : 1.0;
    part = part > 1.0 ? 1.0 : part;
    char bar[31];
    for (int i = 0; i < 30; i++)
        bar[i] = i < (int)(part * 30) ? '#' : '-';
    bar[30] = '\0';
    fprintf(stderr, "\rscanning [%s] %3d%% %llu/%llu keys, %.1f s%s", bar, (int)(part * 100),
            (unsigned long long)r->keys, (unsigned long long)total, t - r->t0, last ? "\n" : "");
    fflush(stderr);
}

/* Checks a reply to what (NULL: the connection failed). Returns 0, or -1
 * with the reason recorded and rep freed. */
static int check(struct run *r, redisContext *c, const char *addr, redisReply *rep,
                 const char *what)
{
    if (rep == NULL)
        return fail(r, "%s: %s: %s", addr, what, c->errstr[0] ? c->errstr : "no reply");
    if (rep->type != REDIS_REPLY_ERROR)
        return 0;
    if (strncmp(rep->str, "NOAUTH", 6) == 0)
        fail(r, "%s: Redis requires a password (--password or NEARCACHE_ANALYZE_PASSWORD)", addr);
    else
        fail(r, "%s: %s: %s", addr, what, rep->str);
    freeReplyObject(rep);
    return -1;
}

/* Connects to addr, authenticates (user may be NULL), selects db (target.h). */
static redisContext *connect_to(struct run *r, const char *addr, const char *user,
                                const char *password, int db)
{
    char why[256];
    redisContext *c = target_connect(addr, user, password, db, IO_TIMEOUT * 1000, why, sizeof(why));
    if (c == NULL && strstr(why, "NOAUTH") != NULL)
        fail(r, "%s: Redis requires a password (--password or NEARCACHE_ANALYZE_PASSWORD)", addr);
    else if (c == NULL)
        fail(r, "%s: cannot connect: %s", addr, why);
    return c;
}

/* The primaries of the cluster o->cluster seeds, from its slot map. */
static int connect_cluster(struct run *r)
{
    const struct analyze_options *o = r->o;
    redisContext *seed = connect_to(r, o->cluster, o->user, o->password, 0);
    char host[MAP_HOST_MAX + 1], why[256] = "";
    int port;
    if (seed == NULL || net_addr_split(o->cluster, host, sizeof(host), &port) < 0) {
        redisFree(seed);
        return fail(r, "%s: cannot connect", o->cluster);
    }
    redisReply *rep = redisCommand(seed, "CLUSTER SHARDS");
    if (rep != NULL && rep->type != REDIS_REPLY_ERROR)
        r->map = map_parse_shards(rep, host, false, why, sizeof(why));
    if (r->map == NULL) {
        freeReplyObject(rep);
        rep = redisCommand(seed, "CLUSTER SLOTS");
        if (check(r, seed, o->cluster, rep, "CLUSTER SLOTS") == 0)
            r->map = map_parse_slots(rep, host, why, sizeof(why));
        else
            rep = NULL;
    }
    freeReplyObject(rep);
    redisFree(seed);
    if (r->map == NULL)
        return fail(r, "%s: no slot map: %s", o->cluster, why);
    for (int i = 0; i < r->map->nnodes; i++) {
        const struct map_node *n = &r->map->nodes[i];
        snprintf(r->names[i], ADDR_MAX, strchr(n->host, ':') ? "[%s]:%d" : "%s:%d", n->host,
                 n->port);
        r->nodes[i] = connect_to(r, r->names[i], o->user, o->password, 0);
        if (r->nodes[i] == NULL)
            return -1;
        r->nnodes = i + 1;
    }
    return 0;
}

static unsigned scan_count(const struct run *r)
{
    double rate = r->o->rate;
    if (rate <= 0 || rate / 10 >= SCAN_COUNT_MAX)
        return SCAN_COUNT_MAX;
    return rate / 10 < 10 ? 10 : (unsigned)(rate / 10);
}

/* Counts the keys of one SCAN reply; false once max_keys is reached. */
static bool take_keys(struct run *r, const redisReply *keys)
{
    for (size_t i = 0; i < keys->elements; i++) {
        const redisReply *k = keys->element[i];
        if (r->keys >= r->o->max_keys) {
            r->full = true;
            return false;
        }
        if (k->type != REDIS_REPLY_STRING)
            continue;
        if (patterns_add(r->pt, k->str, k->len) < 0)
            return fail(r, "out of memory"), false;
        r->keys++;
    }
    return true;
}

/* Whether the caller asked the walk to end (analyze_options.stop). */
static bool stopped(const struct run *r)
{
    return r->o->stop != NULL && *r->o->stop;
}

/* SCANs node i from cursor 0 until it comes back 0, max_keys is reached or
 * the caller stops the walk. */
static int walk_node(struct run *r, int i)
{
    redisContext *c = r->nodes[i];
    char cursor[32] = "0";
    unsigned count = scan_count(r);
    do {
        pace(r, count);
        redisReply *rep = r->o->match != NULL ? redisCommand(c, "SCAN %s MATCH %s COUNT %u", cursor,
                                                             r->o->match, count)
                                              : redisCommand(c, "SCAN %s COUNT %u", cursor, count);
        if (check(r, c, r->names[i], rep, "SCAN") < 0)
            return -1;
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
            rep->element[0]->type != REDIS_REPLY_STRING || rep->element[0]->len >= 32 ||
            rep->element[1]->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(rep);
            return fail(r, "%s: SCAN: unexpected reply", r->names[i]);
        }
        memcpy(cursor, rep->element[0]->str, rep->element[0]->len + 1);
        if (rep->element[1]->elements > count)
            r->units += rep->element[1]->elements - count;
        bool more = take_keys(r, rep->element[1]);
        freeReplyObject(rep);
        draw(r, false);
        if (!more)
            return r->failed ? -1 : 0;
    } while (strcmp(cursor, "0") != 0 && !stopped(r));
    return 0;
}

/* DBSIZE summed over the nodes, for the progress bar and the report. */
static int count_keys(struct run *r)
{
    for (int i = 0; i < r->nnodes; i++) {
        redisReply *rep = redisCommand(r->nodes[i], "DBSIZE");
        if (check(r, r->nodes[i], r->names[i], rep, "DBSIZE") < 0)
            return -1;
        r->dbsize += rep->type == REDIS_REPLY_INTEGER ? (uint64_t)rep->integer : 0;
        freeReplyObject(rep);
    }
    return 0;
}

/* What the samples of one group showed. */
struct figures {
    uint64_t *sizes;
    int64_t *ttls;
    size_t nsizes, nttls, found, gone;
    json_t *types, *encodings;
};

static void tally(json_t *counts, const char *name)
{
    json_t *v = json_object_get(counts, name);
    json_object_set_new(counts, name, json_integer(v ? json_integer_value(v) + 1 : 1));
}

/* The node serving key: its slot's owner in a cluster, else the one node. */
static int node_of(const struct run *r, const char *key, size_t len)
{
    if (r->map == NULL)
        return 0;
    uint16_t owner = r->map->owner[slot_of(key, len)];
    return owner == MAP_NO_NODE ? -1 : owner;
}

/* Reads the four replies of one sampled key from node i into f. */
static int read_sample(struct run *r, int i, struct figures *f)
{
    redisReply *rep[4] = {NULL};
    int rc = 0;
    for (int k = 0; k < 4 && rc == 0; k++) {
        if (redisGetReply(r->nodes[i], (void **)&rep[k]) != REDIS_OK)
            rc = fail(r, "%s: sampling: %s", r->names[i], r->nodes[i]->errstr);
    }
    if (rc == 0 && rep[0]->type == REDIS_REPLY_STATUS && strcmp(rep[0]->str, "none") != 0) {
        tally(f->types, rep[0]->str);
        f->found++;
        if (rep[1]->type == REDIS_REPLY_INTEGER)
            f->sizes[f->nsizes++] = (uint64_t)rep[1]->integer;
        if (rep[2]->type == REDIS_REPLY_INTEGER && rep[2]->integer >= -1)
            f->ttls[f->nttls++] = rep[2]->integer;
        if (rep[3]->type == REDIS_REPLY_STRING || rep[3]->type == REDIS_REPLY_STATUS)
            tally(f->encodings, rep[3]->str);
    } else if (rc == 0) {
        f->gone++;
    }
    for (int k = 0; k < 4; k++)
        freeReplyObject(rep[k]);
    return rc;
}

/* Samples g's keys [from, to) in one pipeline per node. */
static int sample_batch(struct run *r, const struct patterns_group *g, size_t from, size_t to,
                        struct figures *f)
{
    int at[SAMPLE_BATCH];
    pace(r, to - from);
    for (size_t s = from; s < to; s++) {
        const char *k = g->samples[s];
        size_t len = g->sample_lens[s];
        int i = at[s - from] = node_of(r, k, len);
        if (i < 0)
            continue;
        redisAppendCommand(r->nodes[i], "TYPE %b", k, len);
        redisAppendCommand(r->nodes[i], "MEMORY USAGE %b", k, len);
        redisAppendCommand(r->nodes[i], "PTTL %b", k, len);
        redisAppendCommand(r->nodes[i], "OBJECT ENCODING %b", k, len);
    }
    for (size_t s = from; s < to; s++) {
        if (at[s - from] >= 0 && read_sample(r, at[s - from], f) < 0)
            return -1;
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile q of sorted v[0..n), n > 0. */
#define PERCENTILE(v, n, q) ((v)[(size_t)((double)((n)-1) * (q) + 0.5)])

static json_t *size_json(struct figures *f)
{
    if (f->nsizes == 0)
        return json_null();
    qsort(f->sizes, f->nsizes, sizeof(*f->sizes), cmp_u64);
    uint64_t sum = 0;
    for (size_t i = 0; i < f->nsizes; i++)
        sum += f->sizes[i];
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "min", (json_int_t)f->sizes[0], "p50",
                     (json_int_t)PERCENTILE(f->sizes, f->nsizes, 0.5), "p90",
                     (json_int_t)PERCENTILE(f->sizes, f->nsizes, 0.9), "p99",
                     (json_int_t)PERCENTILE(f->sizes, f->nsizes, 0.99), "max",
                     (json_int_t)f->sizes[f->nsizes - 1], "mean", (json_int_t)(sum / f->nsizes));
}

/* TTLs in ms: how many keys have none (-1), and the spread of the others. */
static json_t *ttl_json(struct figures *f)
{
    qsort(f->ttls, f->nttls, sizeof(*f->ttls), cmp_i64);
    size_t none = 0;
    while (none < f->nttls && f->ttls[none] < 0)
        none++;
    int64_t *v = f->ttls + none;
    size_t n = f->nttls - none;
    if (n == 0)
        return json_pack("{s:I,s:I,s:n,s:n,s:n}", "none", (json_int_t)none, "with", (json_int_t)0,
                         "min", "p50", "max");
    return json_pack("{s:I,s:I,s:I,s:I,s:I}", "none", (json_int_t)none, "with", (json_int_t)n,
                     "min", (json_int_t)v[0], "p50", (json_int_t)PERCENTILE(v, n, 0.5), "max",
                     (json_int_t)v[n - 1]);
}

/* patterns_each_fn: samples one group and appends its figures. */
static void sample_group(void *arg, const struct patterns_group *g)
{
    struct run *r = arg;
    struct figures f = {.types = json_object(), .encodings = json_object()};
    f.sizes = calloc(g->nsamples + 1, sizeof(*f.sizes));
    f.ttls = calloc(g->nsamples + 1, sizeof(*f.ttls));
    if (f.sizes == NULL || f.ttls == NULL || f.types == NULL || f.encodings == NULL)
        fail(r, "out of memory");
    for (size_t s = 0; s < g->nsamples && !r->failed && !stopped(r); s += SAMPLE_BATCH)
        sample_batch(r, g, s, s + SAMPLE_BATCH < g->nsamples ? s + SAMPLE_BATCH : g->nsamples, &f);
    /* JSON strings are UTF-8: any other byte becomes '?', which matches it.
     * Such bytes are never escaped nor right after a capture (patterns.h). */
    char *text = malloc(g->pattern_len + 1);
    for (size_t i = 0; text != NULL && i <= g->pattern_len; i++) {
        unsigned char c = (unsigned char)g->pattern[i];
        text[i] = i < g->pattern_len && (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    if (!r->failed && text != NULL) {
        json_t *p =
            json_pack("{s:s%,s:I,s:I,s:f,s:b,s:I,s:O,s:O,s:o,s:o,s:n}", "pattern", text,
                      g->pattern_len, "captures", (json_int_t)g->captures, "keys",
                      (json_int_t)g->keys, "share", (double)g->keys / (double)r->keys, "overflow",
                      g->overflow, "sampled", (json_int_t)f.found, "types", f.types, "encodings",
                      f.encodings, "size", size_json(&f), "ttl", ttl_json(&f), "traffic");
        if (p == NULL || json_array_append_new(r->patterns, p) < 0)
            fail(r, "out of memory");
    } else {
        fail(r, "out of memory");
    }
    free(text);
    json_decref(f.types);
    json_decref(f.encodings);
    free(f.sizes);
    free(f.ttls);
    draw(r, false);
}

/* NEARCACHE POLICY's lines (rule:<kind>:<name>:k=v,...) as objects. */
static json_t *parse_rules(const char *text)
{
    json_t *rules = json_array();
    const char *line = text;
    while (rules != NULL && line != NULL && *line != '\0') {
        const char *end = strchr(line, '\n');
        char buf[512], *kind, *name, *counts;
        snprintf(buf, sizeof(buf), "%.*s", (int)(end ? end - line : (ptrdiff_t)strlen(line)), line);
        buf[strcspn(buf, "\r")] = '\0';
        line = end ? end + 1 : NULL;
        if (strncmp(buf, "rule:", 5) != 0 || (kind = buf + 5, name = strchr(kind, ':')) == NULL ||
            (counts = strrchr(name + 1, ':')) == NULL)
            continue;
        *name++ = '\0';
        *counts++ = '\0';
        json_t *rule = json_pack("{s:s,s:s}", "kind", kind, "name", name);
        char *save = NULL;
        for (char *kv = strtok_r(counts, ",", &save); rule != NULL && kv != NULL;
             kv = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(kv, '=');
            if (eq != NULL) {
                *eq = '\0';
                json_object_set_new(rule, kv, json_integer(strtoll(eq + 1, NULL, 10)));
            }
        }
        json_array_append_new(rules, rule);
    }
    return rules;
}

/* NEARCACHE HOTKEYS' entries [key, reads, writes, hits, error] as objects. */
static json_t *parse_hotkeys(const redisReply *rep)
{
    json_t *keys = json_array();
    for (size_t i = 0; keys != NULL && i < rep->elements; i++) {
        const redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 5 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        json_int_t v[4];
        for (int k = 0; k < 4; k++)
            v[k] = e->element[k + 1]->type == REDIS_REPLY_INTEGER ? e->element[k + 1]->integer : 0;
        json_t *key = text_json(e->element[0]->str, e->element[0]->len);
        json_array_append_new(keys, json_pack("{s:o?,s:I,s:I,s:I,s:I}", "key", key, "reads", v[0],
                                              "writes", v[1], "hits", v[2], "error", v[3]));
    }
    return keys;
}

/* A bulk-string reply to cmd on c, or NULL (the error noted in notes). */
static redisReply *proxy_ask(redisContext *c, const char *cmd, json_t *notes)
{
    redisReply *rep = redisCommand(c, cmd);
    if (rep != NULL && rep->type != REDIS_REPLY_ERROR)
        return rep;
    json_array_append_new(notes, json_sprintf("%s: %s", cmd, rep ? rep->str : c->errstr));
    freeReplyObject(rep);
    return NULL;
}

/* The running proxy's figures: hot keys (null when it does not report
 * them), STATS, POLICY, and notes on what it did not answer. */
static json_t *proxy_figures(struct run *r)
{
    redisContext *c = connect_to(r, r->o->proxy, NULL, r->o->proxy_password, 0);
    if (c == NULL)
        return NULL;
    json_t *notes = json_array(), *hot = json_null(), *stats = json_object(), *rules = json_array();
    redisReply *rep = proxy_ask(c, "NEARCACHE HOTKEYS 100", notes);
    if (rep != NULL && rep->type == REDIS_REPLY_ARRAY) {
        json_decref(hot);
        hot = parse_hotkeys(rep);
    } else {
        json_array_append_new(notes, json_string("the proxy does not report hot keys"));
    }
    freeReplyObject(rep);
    if ((rep = proxy_ask(c, "NEARCACHE STATS", notes)) != NULL && rep->type == REDIS_REPLY_STRING) {
        json_decref(stats);
        stats = text_lines_json(rep->str, rep->len);
    }
    freeReplyObject(rep);
    if ((rep = proxy_ask(c, "NEARCACHE POLICY", notes)) != NULL &&
        rep->type == REDIS_REPLY_STRING) {
        json_decref(rules);
        rules = parse_rules(rep->str);
    }
    freeReplyObject(rep);
    redisFree(c);
    return json_pack("{s:s,s:o,s:o,s:o,s:o,s:i}", "address", r->o->proxy, "hotkeys", hot, "stats",
                     stats, "policy", rules, "notes", notes, "unmatched_hot_keys", 0);
}

/* Adds each hot key's reads, writes and hits to the "traffic" of the first
 * pattern (in rule order) that matches it. */
static int attribute(struct run *r, json_t *proxy)
{
    json_t *hot = json_object_get(proxy, "hotkeys"), *p;
    size_t i, unmatched = 0;
    if (!json_is_array(hot))
        return 0;
    struct pattern_set *set = pattern_set_create();
    struct pattern **compiled = calloc(json_array_size(r->patterns) + 1, sizeof(*compiled));
    int rc = set == NULL || compiled == NULL ? fail(r, "out of memory") : 0;
    json_array_foreach(r->patterns, i, p)
    {
        const char *text = json_string_value(json_object_get(p, "pattern"));
        char why[128];
        struct pattern *pat =
            rc == 0 ? pattern_compile(text, json_string_length(json_object_get(p, "pattern")), why,
                                      sizeof(why))
                    : NULL;
        if (pat != NULL) /* rc == 0: compiled was made */
            rc = pattern_set_add(set, compiled[i] = pat, p);
        json_object_set_new(
            p, "traffic",
            json_pack("{s:i,s:i,s:i,s:i}", "reads", 0, "writes", 0, "hits", 0, "hot_keys", 0));
    }
    if (rc == 0 && pattern_set_build(set) < 0)
        rc = fail(r, "out of memory");
    json_t *k;
    json_array_foreach(hot, i, k)
    {
        const char *key = json_string_value(json_object_get(k, "key"));
        json_t *owner =
            rc == 0
                ? pattern_set_first(set, key, json_string_length(json_object_get(k, "key")), NULL)
                : NULL;
        if (owner == NULL) {
            unmatched++;
            continue;
        }
        json_t *t = json_object_get(owner, "traffic");
        const char *fields[] = {"reads", "writes", "hits"};
        for (int f = 0; f < 3; f++)
            json_object_set_new(t, fields[f],
                                json_integer(json_integer_value(json_object_get(t, fields[f])) +
                                             json_integer_value(json_object_get(k, fields[f]))));
        json_object_set_new(t, "hot_keys",
                            json_integer(json_integer_value(json_object_get(t, "hot_keys")) + 1));
    }
    json_object_set_new(proxy, "unmatched_hot_keys", json_integer((json_int_t)unmatched));
    pattern_set_destroy(&set);
    for (i = 0; compiled != NULL && i < json_array_size(r->patterns); i++)
        pattern_destroy(&compiled[i]);
    free(compiled);
    return rc;
}

/* Connects, walks every node, then samples every group. */
static int walk(struct run *r)
{
    const struct analyze_options *o = r->o;
    if (o->cluster != NULL) {
        if (connect_cluster(r) < 0)
            return -1;
    } else {
        snprintf(r->names[0], ADDR_MAX, "%s", o->upstream);
        if ((r->nodes[0] = connect_to(r, o->upstream, o->user, o->password, o->db)) == NULL)
            return -1;
        r->nnodes = 1;
    }
    if (count_keys(r) < 0)
        return -1;
    r->t0 = target_now();
    for (int i = 0; i < r->nnodes && !r->full; i++) {
        if (walk_node(r, i) < 0)
            return -1;
    }
    draw(r, true);
    patterns_each(r->pt, sample_group, r);
    return r->failed ? -1 : 0;
}

void analyze_options_init(struct analyze_options *o)
{
    *o = (struct analyze_options){
        .upstream = "127.0.0.1:6379",
        .max_keys = ANALYZE_MAX_KEYS,
        .rate = ANALYZE_RATE,
        .samples = ANALYZE_SAMPLES,
    };
}

static json_t *report(struct run *r, json_t *proxy)
{
    const struct analyze_options *o = r->o;
    return json_pack(
        "{s:{s:s,s:b,s:i,s:i,s:s?},s:{s:I,s:I,s:b,s:b,s:f,s:f,s:I,s:i,s:I,s:I,s:I},s:O,s:o,s:[]}",
        "source", "address", o->cluster ? o->cluster : o->upstream, "cluster", o->cluster != NULL,
        "nodes", r->nnodes, "db", o->db, "match", o->match, "scan", "keys", (json_int_t)r->keys,
        "dbsize", (json_int_t)r->dbsize, "stopped_at_max_keys", r->full, "interrupted", stopped(r),
        "seconds", target_now() - r->t0, "rate", o->rate, "max_keys", (json_int_t)o->max_keys,
        "samples", (int)o->samples, "units", (json_int_t)r->units, "tree_nodes",
        (json_int_t)patterns_nodes(r->pt), "overflowed", (json_int_t)patterns_overflowed(r->pt),
        "patterns", r->patterns, "proxy", proxy ? proxy : json_null(), "advice");
}

json_t *analyze_run(const struct analyze_options *o, char *err, size_t errlen)
{
    struct run r = {.o = o, .err = err, .errlen = errlen, .patterns = json_array()};
    struct patterns_options po = {.samples = o->samples, .seed = 1};
    json_t *proxy = NULL, *out = NULL;
    err[0] = '\0';
    r.pt = patterns_create(&po);
    if (r.pt == NULL || r.patterns == NULL)
        fail(&r, "out of memory");
    if (!r.failed && walk(&r) == 0 && o->proxy != NULL && (proxy = proxy_figures(&r)) != NULL)
        attribute(&r, proxy);
    if (r.failed)
        json_decref(proxy);
    else if ((out = report(&r, proxy)) == NULL) /* takes proxy */
        fail(&r, "out of memory");
    if (out != NULL && advise_report(out, err, errlen) < 0) {
        json_decref(out);
        out = NULL;
        r.failed = true;
    }
    for (int i = 0; i < r.nnodes; i++)
        redisFree(r.nodes[i]);
    map_release(&r.map);
    patterns_destroy(&r.pt);
    json_decref(r.patterns);
    return r.failed ? NULL : out;
}

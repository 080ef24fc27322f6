/* tune.c - `nearcache tune`: scratch keys, a cold, a warm and a skewed read
 * pass through the proxy, STATS deltas, recommendations; see tune.h.
 *
 * Keys are drawn and latencies kept with the load generator's pure code
 * (proxy/tools/workload.h: a Zipf distribution that scatters ranks over key
 * indices; proxy/tools/hist.h: a log-linear histogram). Each reading client
 * is a thread with a blocking hiredis connection, one request in flight, so
 * each latency is one request's.
 */
#include "proxy/tools/tune.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "proxy/lib/text.h"
#include "proxy/tools/hist.h"
#include "proxy/tools/target.h"
#include "proxy/tools/workload.h"

#define TUNE_TIMEOUT   5000   /* ms: connect, and each reply */
#define TUNE_BATCH     1000   /* keys per pipelined round of SETs, and per DEL */
#define TUNE_PASS_KEYS 2000   /* hottest keys read by the cold and the warm pass */
#define TUNE_ZIPF_S    0.99   /* skew of the load pass */
#define TUNE_HOT_SHARE 0.9    /* the working set: keys drawing this share of reads */
#define TUNE_DEPTH     8      /* requests in flight per shared connection before waits grow */
#define TUNE_POOL_DEF  4      /* upstream.pool_size's default */
#define TUNE_SEED      0x7475 /* fixed: two runs draw the same keys */

typedef enum { PASS_COLD, PASS_WARM, PASS_LOAD, PASS_KINDS } pass_e;
static const char *const PASS_NAME[] = {"cold", "warm", "load"};

/* One pass's figures, merged over its readers. */
struct pass {
    struct hist hist; /* ns per read */
    unsigned long reads, errors, wrong;
    double seconds;
};

struct run {
    const struct tune_options *o;
    redisContext *c; /* control connection: STATS, SCAN, SET, DEL */
    struct wl_dist dist;
    char *value; /* o->value_size bytes */
    unsigned long pass_keys;
    bool wrote;                    /* keys may exist: delete them */
    json_t *stats[PASS_KINDS + 1]; /* NEARCACHE STATS before each pass and after the last */
    struct pass pass[PASS_KINDS];
    unsigned long deleted;
    char err[256];
};

/* One reading client of a pass. */
struct reader {
    struct run *run;
    pass_e kind;
    int id;
    double deadline;
    struct pass p;
    char err[160];
};

static bool stopped(const struct run *run)
{
    return run->o->stop && *run->o->stop;
}

static size_t key_write(const struct run *run, unsigned long idx, char *dst, size_t cap)
{
    return (size_t)snprintf(dst, cap, "%s%lu", run->o->prefix, idx);
}

void tune_options_init(struct tune_options *o)
{
    *o = (struct tune_options){
        .prefix = "nearcache:tune:", .duration = 5, .keys = 10000, .value_size = 100, .clients = 4};
}

int tune_options_check(const struct tune_options *o, char *err, size_t errlen)
{
    const char *why =
        !o->proxy                                    ? "--proxy is required"
        : !o->prefix || !o->prefix[0]                ? "the prefix must not be empty"
        : strpbrk(o->prefix, "*?[]\\")               ? "the prefix must not hold * ? [ ] or \\"
        : strlen(o->prefix) > WL_PREFIX_MAX          ? "the prefix is longer than 200 bytes"
        : !(o->duration >= 0.5 && o->duration <= 60) ? "the duration must be 0.5s to 60s"
        : o->keys < 1 || o->keys > TUNE_KEYS_MAX     ? "--keys must be 1 to 1000000"
        : o->value_size < 1 || o->value_size > TUNE_VALUE_MAX ? "--value-size must be 1 to 1mb"
        : o->clients < 1 || o->clients > TUNE_CLIENTS_MAX     ? "--clients must be 1 to 64"
                                                              : NULL;
    if (why)
        snprintf(err, errlen, "%s", why);
    return why ? -1 : 0;
}

/* ---- the proxy's statistics ------------------------------------------------ */

/* Reads NEARCACHE STATS into a JSON object of its name:value lines (numbers
 * where they are numbers). Returns it, or NULL with run->err set. */
static json_t *stats_read(struct run *run)
{
    redisReply *r = target_call(run->c, 2, (const char *const[]){"NEARCACHE", "STATS"}, run->err,
                                sizeof(run->err));
    if (r == NULL || r->type != REDIS_REPLY_STRING) {
        if (r)
            snprintf(run->err, sizeof(run->err), "NEARCACHE STATS: not a bulk string");
        freeReplyObject(r);
        return NULL;
    }
    json_t *s = text_lines_json(r->str, r->len);
    freeReplyObject(r);
    return s;
}

static double stat_get(const json_t *s, const char *name)
{
    return json_number_value(json_object_get(s, name));
}

/* How much name grew from snapshot a to snapshot b. */
static double stat_delta(const struct run *run, int a, int b, const char *name)
{
    return stat_get(run->stats[b], name) - stat_get(run->stats[a], name);
}

/* ---- the scratch keys ------------------------------------------------------ */

/* Counts keys under the prefix with SCAN, stopping at the first found.
 * Returns the count (0: none), or -1 with run->err set. */
static long prefix_count(struct run *run)
{
    char match[WL_PREFIX_BOUND], cursor[32] = "0";
    snprintf(match, sizeof(match), "%s*", run->o->prefix);
    do {
        const char *argv[] = {"SCAN", cursor, "MATCH", match, "COUNT", "1000"};
        redisReply *r = target_call(run->c, 6, argv, run->err, sizeof(run->err));
        if (r == NULL)
            return -1;
        long n =
            r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? (long)r->element[1]->elements : -1;
        if (n >= 0)
            snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        freeReplyObject(r);
        if (n < 0)
            snprintf(run->err, sizeof(run->err), "SCAN: unexpected reply");
        if (n != 0)
            return n;
    } while (strcmp(cursor, "0") != 0 && !stopped(run));
    return 0;
}

/* Reads n pipelined replies; each must be ok and not an error. Returns the
 * sum of the integer replies, or -1 with run->err set. */
static long replies_read(struct run *run, size_t n, const char *what)
{
    long sum = 0;
    for (size_t i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(run->c, (void **)&r) != REDIS_OK) {
            snprintf(run->err, sizeof(run->err), "%s: %s", what, run->c->errstr);
            return -1;
        }
        bool bad = r->type == REDIS_REPLY_ERROR;
        if (bad)
            snprintf(run->err, sizeof(run->err), "%s: %s", what, r->str);
        sum += r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
        freeReplyObject(r);
        if (bad)
            return -1;
    }
    return sum;
}

/* Writes every scratch key, TUNE_BATCH SETs per round trip. Returns 0, or -1
 * with run->err set. */
static int keys_write(struct run *run)
{
    char key[WL_PREFIX_BOUND];
    run->wrote = true;
    for (unsigned long i = 0; i < run->o->keys && !stopped(run); i += TUNE_BATCH) {
        size_t n = 0;
        for (unsigned long k = i; k < run->o->keys && k < i + TUNE_BATCH; k++, n++) {
            const char *argv[] = {"SET", key, run->value};
            size_t len[] = {3, key_write(run, k, key, sizeof(key)), run->o->value_size};
            redisAppendCommandArgv(run->c, 3, argv, len);
        }
        if (replies_read(run, n, "SET") < 0)
            return -1;
    }
    return 0;
}

/* Deletes every scratch key, one DEL of TUNE_BATCH keys per round trip, on a
 * new connection when the control one failed. Returns 0, or -1 with err. */
static int keys_delete(struct run *run, char *err, size_t errlen)
{
    if (run->c == NULL || run->c->err) {
        redisFree(run->c);
        run->c =
            target_connect(run->o->proxy, NULL, run->o->password, 0, TUNE_TIMEOUT, err, errlen);
        if (run->c == NULL)
            return -1;
    }
    char *keys = malloc((size_t)TUNE_BATCH * WL_PREFIX_BOUND);
    const char *argv[TUNE_BATCH + 1] = {"DEL"};
    size_t len[TUNE_BATCH + 1] = {3};
    int rc = keys ? 0 : -1;
    for (unsigned long i = 0; rc == 0 && i < run->o->keys; i += TUNE_BATCH) {
        int n = 1;
        for (unsigned long k = i; k < run->o->keys && k < i + TUNE_BATCH; k++, n++) {
            argv[n] = keys + (size_t)(n - 1) * WL_PREFIX_BOUND;
            len[n] = key_write(run, k, keys + (size_t)(n - 1) * WL_PREFIX_BOUND, WL_PREFIX_BOUND);
        }
        redisAppendCommandArgv(run->c, n, argv, len);
        long d = replies_read(run, 1, "DEL");
        rc = d < 0 ? -1 : 0;
        run->deleted += d < 0 ? 0 : (unsigned long)d;
    }
    if (rc < 0)
        snprintf(err, errlen, "%s", keys ? run->err : "out of memory");
    free(keys);
    return rc;
}

/* ---- reading ------------------------------------------------------------------ */

/* GETs key index idx once on c, timing it. Returns 0, or -1 when the
 * connection failed (r->err set). */
static int reader_get(struct reader *r, redisContext *c, unsigned long idx)
{
    char key[WL_PREFIX_BOUND];
    const char *argv[] = {"GET", key};
    size_t len[] = {3, key_write(r->run, idx, key, sizeof(key))};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    redisReply *rep = redisCommandArgv(c, 2, argv, len);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rep == NULL) {
        snprintf(r->err, sizeof(r->err), "GET: %s", c->errstr);
        return -1;
    }
    int64_t ns = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000000 + (t1.tv_nsec - t0.tv_nsec);
    hist_record(&r->p.hist, ns > 0 ? (uint64_t)ns : 0);
    r->p.reads++;
    if (rep->type == REDIS_REPLY_ERROR)
        r->p.errors++;
    else if (rep->type != REDIS_REPLY_STRING || rep->len != r->run->o->value_size ||
             memcmp(rep->str, r->run->value, rep->len) != 0)
        r->p.wrong++;
    freeReplyObject(rep);
    return 0;
}

/* A reader thread: the cold and warm passes read the hottest pass_keys keys
 * once each (ranks id, id + clients, ...), the load pass draws keys by
 * popularity until the deadline. */
static void *reader_main(void *arg)
{
    struct reader *r = arg;
    const struct run *run = r->run;
    redisContext *c = target_connect(run->o->proxy, NULL, run->o->password, 0, TUNE_TIMEOUT, r->err,
                                     sizeof(r->err));
    struct wl_rng rng;
    wl_rng_seed(&rng, TUNE_SEED + (uint64_t)r->id);
    unsigned long rank = (unsigned long)r->id;
    while (c && !stopped(run) && target_now() < r->deadline) {
        if (r->kind != PASS_LOAD && rank >= run->pass_keys)
            break;
        uint64_t k = r->kind == PASS_LOAD ? wl_dist_rank(&run->dist, &rng) : rank;
        rank += (unsigned long)run->o->clients;
        if (reader_get(r, c, (unsigned long)wl_dist_key(&run->dist, k)) < 0)
            break;
    }
    redisFree(c);
    return NULL;
}

/* Runs one pass with o->clients readers for at most seconds. Returns 0, or
 * -1 with run->err set when a reader's connection failed. */
static int pass_run(struct run *run, pass_e kind, double seconds)
{
    int n = run->o->clients;
    struct reader *rs = calloc((size_t)n, sizeof(*rs));
    pthread_t *tids = calloc((size_t)n, sizeof(*tids));
    struct pass *p = &run->pass[kind];
    int started = 0, rc = 0;
    double t0 = target_now();
    hist_init(&p->hist);
    for (; rs && tids && started < n; started++) {
        rs[started] =
            (struct reader){.run = run, .kind = kind, .id = started, .deadline = t0 + seconds};
        hist_init(&rs[started].p.hist);
        if (pthread_create(&tids[started], NULL, reader_main, &rs[started]) != 0)
            break;
    }
    for (int i = 0; i < started; i++) {
        pthread_join(tids[i], NULL);
        hist_merge(&p->hist, &rs[i].p.hist);
        p->reads += rs[i].p.reads, p->errors += rs[i].p.errors, p->wrong += rs[i].p.wrong;
        if (rs[i].err[0] && rc == 0) {
            snprintf(run->err, sizeof(run->err), "%s pass: %s", PASS_NAME[kind], rs[i].err);
            rc = -1;
        }
    }
    if (started < n && rc == 0) {
        snprintf(run->err, sizeof(run->err), "cannot start the reading threads");
        rc = -1;
    }
    p->seconds = target_now() - t0;
    free(rs);
    free(tids);
    return rc;
}

/* ---- the report ---------------------------------------------------------------- */

static double ratio(double a, double b)
{
    return b > 0 ? a / b : 0;
}

/* Percentiles of h in microseconds. */
static json_t *hist_json(const struct hist *h)
{
    return json_pack("{sIsfsfsfsfsfsf}", "count", (json_int_t)h->count, "mean", hist_mean(h) / 1e3,
                     "p50", hist_percentile(h, 50) / 1e3, "p90", hist_percentile(h, 90) / 1e3,
                     "p99", hist_percentile(h, 99) / 1e3, "p999", hist_percentile(h, 99.9) / 1e3,
                     "max", h->count ? h->max / 1e3 : 0.0);
}

static json_t *pass_json(const struct run *run, pass_e k)
{
    const struct pass *p = &run->pass[k];
    double hits = stat_delta(run, k, k + 1, "hits"), misses = stat_delta(run, k, k + 1, "misses");
    return json_pack("{sIsIsIsfsfsIsIsfso}", "reads", (json_int_t)p->reads, "errors",
                     (json_int_t)p->errors, "wrong", (json_int_t)p->wrong, "seconds", p->seconds,
                     "reads_per_sec", ratio((double)p->reads, p->seconds), "proxy_hits",
                     (json_int_t)hits, "proxy_misses", (json_int_t)misses, "hit_ratio",
                     ratio(hits, hits + misses), "latency_us", hist_json(&p->hist));
}

/* Keys of the Zipf distribution (s, n keys) that draw share of the reads. */
static unsigned long zipf_hot(unsigned long n, double s, double share)
{
    double total = 0, acc = 0;
    for (unsigned long k = 1; k <= n; k++)
        total += pow((double)k, -s);
    for (unsigned long k = 1; k <= n; k++)
        if ((acc += pow((double)k, -s)) >= share * total)
            return k;
    return n;
}

/* The tier's figures: its limit, bytes per entry (measured over the cold
 * pass's fills, or estimated when it filled none) and the working set. */
static json_t *tier_json(const struct run *run)
{
    double entries = stat_delta(run, PASS_COLD, PASS_WARM, "entries");
    double bytes = stat_delta(run, PASS_COLD, PASS_WARM, "bytes");
    bool measured = entries > 0 && bytes > 0;
    double per =
        measured ? bytes / entries : (double)(strlen(run->o->prefix) + 8 + run->o->value_size + 64);
    unsigned long hot = zipf_hot(run->o->keys, TUNE_ZIPF_S, TUNE_HOT_SHARE);
    const char *tracking = json_string_value(json_object_get(run->stats[PASS_KINDS], "tracking"));
    return json_pack("{sbsssIsfsbsIsIsIsIsI}", "active",
                     stat_get(run->stats[PASS_KINDS], "cache_active") > 0, "tracking",
                     tracking ? tracking : "?", "max_bytes",
                     (json_int_t)stat_get(run->stats[PASS_KINDS], "max_bytes"), "bytes_per_entry",
                     per, "bytes_per_entry_measured", measured, "hot_keys", (json_int_t)hot,
                     "working_set_bytes", (json_int_t)(per * (double)hot), "evictions",
                     (json_int_t)stat_delta(run, 0, PASS_KINDS, "evictions"), "fills_rejected",
                     (json_int_t)stat_delta(run, 0, PASS_KINDS, "fills_rejected"), "expirations",
                     (json_int_t)stat_delta(run, 0, PASS_KINDS, "expirations"));
}

static json_t *advice(const char *setting, json_t *recommend, const char *text, json_t *based_on)
{
    return json_pack("{sssossso}", "setting", setting, "recommend", recommend, "advice", text,
                     "based_on", based_on);
}

/* upstream.pool_size from Little's law: misses per second of the load pass
 * times a miss's mean latency is how many reads wait on Redis at once. */
static json_t *advise_pool(const struct run *run)
{
    const struct pass *load = &run->pass[PASS_LOAD];
    double rate = ratio(stat_delta(run, PASS_LOAD, PASS_KINDS, "misses"), load->seconds);
    double miss_s = hist_mean(&run->pass[PASS_COLD].hist) / 1e9;
    double in_flight = rate * miss_s;
    long want = (long)ceil(in_flight / TUNE_DEPTH);
    want = want > TUNE_POOL_DEF ? want : TUNE_POOL_DEF;
    char text[320];
    snprintf(text, sizeof(text),
             want > TUNE_POOL_DEF
                 ? "raise upstream.pool_size to %ld: about %.1f reads wait on Redis at once "
                   "(misses/s x mean miss latency), more than %d per shared connection"
                 : "keep upstream.pool_size (%ld is enough): about %.1f reads wait on Redis at "
                   "once (misses/s x mean miss latency), under %d per shared connection",
             want, in_flight, TUNE_DEPTH);
    return advice("upstream.pool_size", json_integer(want), text,
                  json_pack("{sfsfsf}", "misses_per_sec", rate, "miss_latency_mean_us",
                            miss_s * 1e6, "in_flight", in_flight));
}

/* cache.max_memory from the working set, and the evictions seen. */
static json_t *advise_tier(const json_t *tier)
{
    double ws = json_number_value(json_object_get(tier, "working_set_bytes"));
    double max = json_number_value(json_object_get(tier, "max_bytes"));
    double ev = json_number_value(json_object_get(tier, "evictions"));
    double want = ws * 1.25;
    if (ev > 0 && want <= max)
        want = max + ws; /* other entries share the tier: room for both */
    long mb = (long)ceil(want / (1024 * 1024));
    char text[320], size[32];
    snprintf(size, sizeof(size), "%ldmb", mb);
    bool raise = ev > 0 || ws > max;
    snprintf(text, sizeof(text),
             raise ? "raise cache.max_memory to %s: the working set is %.1f MB (%lld hot keys x "
                     "%.0f bytes) against %.1f MB, %.0f evictions during the run"
                   : "keep cache.max_memory (%s would do): the working set is %.1f MB (%lld hot "
                     "keys x %.0f bytes) within %.1f MB, %.0f evictions during the run",
             size, ws / 1048576, (long long)json_integer_value(json_object_get(tier, "hot_keys")),
             json_number_value(json_object_get(tier, "bytes_per_entry")), max / 1048576, ev);
    return advice(
        "cache.max_memory", raise ? json_string(size) : json_null(), text,
        json_pack("{sfsfsf}", "working_set_bytes", ws, "max_bytes", max, "evictions", ev));
}

/* The cache rules: is the tier serving, are the prefix's reads kept, do they
 * stay? */
static json_t *advise_rules(const struct run *run, const json_t *tier)
{
    double warm = ratio(stat_delta(run, PASS_WARM, PASS_LOAD, "hits"),
                        stat_delta(run, PASS_WARM, PASS_LOAD, "hits") +
                            stat_delta(run, PASS_WARM, PASS_LOAD, "misses"));
    double hits = stat_delta(run, PASS_LOAD, PASS_KINDS, "hits");
    double skew = ratio(hits, hits + stat_delta(run, PASS_LOAD, PASS_KINDS, "misses"));
    double rejected = json_number_value(json_object_get(tier, "fills_rejected"));
    double expired = json_number_value(json_object_get(tier, "expirations"));
    double ev = json_number_value(json_object_get(tier, "evictions"));
    char text[400];
    if (!json_is_true(json_object_get(tier, "active")))
        snprintf(text, sizeof(text),
                 "the tier is not serving (cache_active 0, tracking %s): every read goes to "
                 "Redis; see \"Coherence states\" in the README",
                 json_string_value(json_object_get(tier, "tracking")));
    else if (warm < 0.9)
        snprintf(text, sizeof(text),
                 "only %.0f%% of the warm pass's reads hit: reads under the prefix are not kept; "
                 "check the cache rules that match it (NEARCACHE POLICY), "
                 "cache.tracking_prefixes and admission (%.0f fills rejected)",
                 warm * 100, rejected);
    else if (skew < 0.5)
        snprintf(text, sizeof(text),
                 "hit ratio %.0f%% in the skewed pass: entries leave the tier early; check "
                 "cache.ttl (%.0f expirations), the tier's size (%.0f evictions) and admission "
                 "(%.0f fills rejected)",
                 skew * 100, expired, ev, rejected);
    else
        snprintf(text, sizeof(text),
                 "no change: %.0f%% of the warm pass's reads and %.0f%% of the skewed pass's hit",
                 warm * 100, skew * 100);
    return advice("rules", json_null(), text,
                  json_pack("{sfsfsfsfsf}", "warm_hit_ratio", warm, "load_hit_ratio", skew,
                            "fills_rejected", rejected, "expirations", expired, "evictions", ev));
}

static json_t *report_create(const struct run *run)
{
    const struct tune_options *o = run->o;
    json_t *passes = json_object(), *tier = tier_json(run), *recs = json_array();
    for (int k = 0; k < PASS_KINDS; k++)
        json_object_set_new(passes, PASS_NAME[k], pass_json(run, (pass_e)k));
    json_array_append_new(recs, advise_pool(run));
    json_array_append_new(recs, advise_tier(tier));
    json_array_append_new(recs, advise_rules(run, tier));
    return json_pack("{sssssIsIsisfsbsososo}", "proxy", o->proxy, "prefix", o->prefix, "keys",
                     (json_int_t)o->keys, "value_size", (json_int_t)o->value_size, "clients",
                     o->clients, "zipf_s", TUNE_ZIPF_S, "interrupted", stopped(run), "passes",
                     passes, "tier", tier, "recommendations", recs);
}

/* ---- the run -------------------------------------------------------------------- */

static void run_destroy(struct run **pr)
{
    struct run *run = *pr;
    if (run == NULL)
        return;
    redisFree(run->c);
    free(run->value);
    for (int i = 0; i <= PASS_KINDS; i++)
        json_decref(run->stats[i]);
    free(run);
    *pr = NULL;
}

/* Connects and prepares the value and the key distribution. NULL with err
 * when the proxy cannot be reached. */
static struct run *run_create(const struct tune_options *o, char *err, size_t errlen)
{
    struct run *run = calloc(1, sizeof(*run));
    char spec[32];
    snprintf(spec, sizeof(spec), "zipf:%g", TUNE_ZIPF_S);
    if (run == NULL || (run->value = malloc(o->value_size)) == NULL ||
        wl_dist_parse(&run->dist, spec, o->keys, TUNE_SEED) < 0) {
        snprintf(err, errlen, "out of memory");
        run_destroy(&run);
        return NULL;
    }
    run->o = o;
    for (unsigned i = 0; i < o->value_size; i++)
        run->value[i] = (char)('a' + i % 26);
    run->pass_keys = o->keys < TUNE_PASS_KEYS ? o->keys : TUNE_PASS_KEYS;
    run->c = target_connect(o->proxy, NULL, o->password, 0, TUNE_TIMEOUT, err, errlen);
    if (run->c == NULL)
        run_destroy(&run);
    return run;
}

/* Checks the proxy and the prefix, writes the keys, runs the passes with
 * STATS around each. Returns 0, or -1 with run->err set. */
static int run_measure(struct run *run)
{
    const struct tune_options *o = run->o;
    if (!(run->stats[0] = stats_read(run)))
        return -1; /* Redis itself, or a proxy that refuses NEARCACHE */
    long found = prefix_count(run);
    if (found > 0 && !o->force)
        snprintf(run->err, sizeof(run->err),
                 "keys exist under %s (%ld found): refusing to touch them; pick another "
                 "--prefix or pass --force",
                 o->prefix, found);
    if (found != 0 && (found < 0 || !o->force))
        return -1;
    if (keys_write(run) < 0)
        return -1;
    double t0 = target_now();
    for (int k = 0; k < PASS_KINDS; k++) {
        json_decref(run->stats[k]);
        if (!(run->stats[k] = stats_read(run)))
            return -1;
        double left = o->duration - (target_now() - t0);
        double share = k == PASS_LOAD ? left : o->duration / 4;
        if (pass_run(run, (pass_e)k, share > o->duration / 4 ? share : o->duration / 4) < 0)
            return -1;
    }
    return (run->stats[PASS_KINDS] = stats_read(run)) ? 0 : -1;
}

json_t *tune_run(const struct tune_options *o, char *err, size_t errlen)
{
    if (tune_options_check(o, err, errlen) < 0)
        return NULL;
    struct run *run = run_create(o, err, errlen);
    if (run == NULL)
        return NULL;
    json_t *report = run_measure(run) == 0 ? report_create(run) : NULL;
    if (report == NULL)
        snprintf(err, errlen, "%s", run->err);
    char derr[256];
    if (run->wrote && keys_delete(run, derr, sizeof(derr)) < 0) {
        size_t used = report ? 0 : strlen(err);
        snprintf(err + used, errlen - used, "%sscratch keys under %s may remain: %s",
                 used ? "; " : "", o->prefix, derr);
        json_decref(report);
        report = NULL;
    }
    if (report)
        json_object_set_new(report, "deleted", json_integer((json_int_t)run->deleted));
    run_destroy(&run);
    return report;
}

/* ---- output and the command line ---------------------------------------------------- */

static double num(const json_t *o, const char *path1, const char *path2)
{
    const json_t *v = json_object_get(o, path1);
    return json_number_value(path2 ? json_object_get(v, path2) : v);
}

void tune_print(FILE *out, const json_t *report)
{
    static const char *const WHAT[] = {"misses: first read of each key",
                                       "hits: second read of the same keys",
                                       "zipf reads over every key"};
    const json_t *passes = json_object_get(report, "passes");
    const json_t *tier = json_object_get(report, "tier");
    fprintf(out, "%lld keys of %lld bytes under %s, %lld clients%s\n",
            (long long)num(report, "keys", NULL), (long long)num(report, "value_size", NULL),
            json_string_value(json_object_get(report, "prefix")),
            (long long)num(report, "clients", NULL),
            json_is_true(json_object_get(report, "interrupted")) ? " (interrupted)" : "");
    for (int k = 0; k < PASS_KINDS; k++) {
        const json_t *p = json_object_get(passes, PASS_NAME[k]);
        const json_t *l = json_object_get(p, "latency_us");
        fprintf(out,
                "%-4s pass (%s): %.0f reads in %.2f s, %.0f/s, proxy hit ratio %.2f; latency us "
                "p50 %.0f p90 %.0f p99 %.0f max %.0f\n",
                PASS_NAME[k], WHAT[k], num(p, "reads", NULL), num(p, "seconds", NULL),
                num(p, "reads_per_sec", NULL), num(p, "hit_ratio", NULL), num(l, "p50", NULL),
                num(l, "p90", NULL), num(l, "p99", NULL), num(l, "max", NULL));
    }
    fprintf(out,
            "tier: working set %.1f MB (%.0f hot keys x %.0f bytes) of %.1f MB, %.0f "
            "evictions\n",
            num(tier, "working_set_bytes", NULL) / 1048576, num(tier, "hot_keys", NULL),
            num(tier, "bytes_per_entry", NULL), num(tier, "max_bytes", NULL) / 1048576,
            num(tier, "evictions", NULL));
    size_t i;
    const json_t *r;
    json_array_foreach(json_object_get(report, "recommendations"), i, r)
        fprintf(out, "%s: %s\n", json_string_value(json_object_get(r, "setting")),
                json_string_value(json_object_get(r, "advice")));
    fprintf(out, "deleted %.0f scratch keys\n", num(report, "deleted", NULL));
}

static const char TUNE_USAGE[] =
    "usage: nearcache tune --proxy ADDR [options]\n"
    "  -p, --proxy ADDR       the proxy (host:port or unix socket path)\n"
    "  -a, --password PASS    AUTH with this password\n"
    "  -d, --duration TIME    reading time, 500ms to 60s (default 5s; plain number: ms)\n"
    "  -k, --keys N           scratch keys (default 10000, at most 1000000)\n"
    "  -s, --value-size SIZE  bytes per value (default 100, at most 1mb)\n"
    "  -c, --clients N        connections reading at once (default 4, at most 64)\n"
    "      --prefix PREFIX    scratch key prefix (default nearcache:tune:)\n"
    "      --force            run even when keys exist under the prefix\n"
    "      --json             one JSON report on standard output\n";

/* Parses one numeric option into *out. Returns 0, or -1 (message printed). */
static int amount(int opt, const char *text, int64_t *out)
{
    char why[128];
    config_amount_e kind = opt == 'd' ? CONFIG_DURATION : opt == 's' ? CONFIG_BYTES : CONFIG_NUMBER;
    int64_t max = opt == 'd'   ? 60000
                  : opt == 's' ? TUNE_VALUE_MAX
                  : opt == 'k' ? TUNE_KEYS_MAX
                               : TUNE_CLIENTS_MAX;
    if (config_parse_amount(kind, text, opt == 'd' ? 500 : 1, max, out, why, sizeof(why)) == 0)
        return 0;
    fprintf(stderr, "nearcache tune: -%c %s: %s\n%s", opt, text, why, TUNE_USAGE);
    return -1;
}

/* Parses the command line into o. Returns 0, 1 for --help, or -1. */
static int tune_args_parse(int argc, char **argv, struct tune_options *o, bool *json)
{
    static const struct option LONG[] = {
        {"proxy", required_argument, NULL, 'p'},
        {"password", required_argument, NULL, 'a'},
        {"duration", required_argument, NULL, 'd'},
        {"keys", required_argument, NULL, 'k'},
        {"value-size", required_argument, NULL, 's'},
        {"clients", required_argument, NULL, 'c'},
        {"prefix", required_argument, NULL, 'P'},
        {"force", no_argument, NULL, 'F'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    int64_t v = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "p:a:d:k:s:c:h", LONG, NULL)) != -1) {
        if (opt == 'h') {
            fputs(TUNE_USAGE, stdout);
            return 1;
        }
        if (strchr("dksc", opt) && amount(opt, optarg, &v) < 0)
            return -1;
        switch (opt) {
        case 'p':
            o->proxy = optarg;
            break;
        case 'a':
            o->password = optarg;
            break;
        case 'P':
            o->prefix = optarg;
            break;
        case 'F':
            o->force = true;
            break;
        case 'j':
            *json = true;
            break;
        case 'd':
            o->duration = (double)v / 1000;
            break;
        case 'k':
            o->keys = (unsigned long)v;
            break;
        case 's':
            o->value_size = (unsigned)v;
            break;
        case 'c':
            o->clients = (int)v;
            break;
        default:
            fputs(TUNE_USAGE, stderr);
            return -1;
        }
    }
    return optind < argc ? (fputs(TUNE_USAGE, stderr), -1) : 0;
}

static volatile sig_atomic_t tune_stop;

static void on_signal(int sig)
{
    (void)sig;
    tune_stop = 1;
}

int tune_main(int argc, char **argv)
{
    struct tune_options o;
    bool json = false;
    char err[512];
    tune_options_init(&o);
    int rc = tune_args_parse(argc, argv, &o, &json);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    if (tune_options_check(&o, err, sizeof(err)) < 0) {
        fprintf(stderr, "nearcache tune: %s\n%s", err, TUNE_USAGE);
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: reads wake up */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    o.stop = &tune_stop;
    json_t *report = tune_run(&o, err, sizeof(err));
    if (report == NULL) {
        fprintf(stderr, "nearcache tune: %s\n", err);
        return 1;
    }
    if (json) {
        json_dumpf(report, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
    } else {
        tune_print(stdout, report);
    }
    rc = json_is_true(json_object_get(report, "interrupted")) ? 1 : 0;
    json_decref(report);
    return rc;
}

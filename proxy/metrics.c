/* metrics.c - every figure of the proxy, once, for Prometheus and JSON. */
#include "proxy/metrics.h"

#include <jansson.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "policy/policy.h"
#include "proxy/admin.h"
#include "proxy/cache/cache.h"
#include "proxy/endpoint.h"
#include "proxy/invalidation.h"
#include "proxy/proto/command.h"
#include "proxy/reload.h"
#include "proxy/worker.h"

int metrics_setup(struct metrics *m, size_t ncommands)
{
    memset(m, 0, sizeof(*m));
    m->ncalls = ncommands + 1;
    m->calls = calloc(m->ncalls, sizeof(*m->calls));
    return m->calls != NULL ? 0 : -1;
}

void metrics_teardown(struct metrics *m)
{
    free(m->calls);
    memset(m, 0, sizeof(*m));
}

double metrics_bucket_le(double base, int i)
{
    return base * (double)(1u << i);
}

/* The le label of f's bucket i: "0.000016" ... "+Inf" for durations,
 * "64" ... "+Inf" for sizes. */
static void bucket_le(char *buf, size_t len, const struct metrics_family *f, int i)
{
    if (i < METRICS_BUCKETS - 1)
        snprintf(buf, len, f->base < 1 ? "%.6f" : "%.0f", metrics_bucket_le(f->base, i));
    else
        snprintf(buf, len, "+Inf");
}

/* ---- the figures ---------------------------------------------------------- */

#define F(name, type, label, help)                                                                 \
    {                                                                                              \
        "nearcache_" name, help, METRICS_##type, label, 0                                          \
    }

static const struct metrics_family REQUESTS =
    F("requests_total", COUNTER, "command", "Requests received, by command (unknown: none).");
static const struct metrics_family DURATION = {
    "nearcache_request_duration_seconds",
    "From reading a request to its reply: hit (from the tier) or upstream (from Redis).",
    METRICS_HISTOGRAM, "path", METRICS_DURATION_BASE};
static const struct metrics_family SIZES = {"nearcache_reply_size_bytes",
                                            "Replies to clients, from the tier and from Redis.",
                                            METRICS_HISTOGRAM, NULL, METRICS_SIZE_BASE};
static const struct metrics_family BYTES_IN =
    F("client_received_bytes_total", COUNTER, NULL, "Bytes read from clients.");
static const struct metrics_family BYTES_OUT =
    F("client_sent_bytes_total", COUNTER, NULL, "Bytes written to clients.");
static const struct metrics_family CLIENTS =
    F("clients_connected", GAUGE, NULL, "Client connections open.");
static const struct metrics_family CONNECTIONS =
    F("client_connections_total", COUNTER, NULL, "Client connections accepted.");

static const struct metrics_family HITS =
    F("cache_hits_total", COUNTER, NULL, "Reads answered from the local tier.");
static const struct metrics_family MISSES =
    F("cache_misses_total", COUNTER, NULL, "Cacheable reads the tier could not answer.");
static const struct metrics_family BYPASSED =
    F("cache_bypassed_total", COUNTER, NULL, "Cacheable reads forwarded while the tier was off.");
static const struct metrics_family FILLS =
    F("cache_fills_total", COUNTER, NULL, "Replies stored in the tier.");
static const struct metrics_family JOINED =
    F("cache_fills_joined_total", COUNTER, NULL, "Reads that joined an identical read in flight.");
static const struct metrics_family EVICTIONS =
    F("cache_evictions_total", COUNTER, NULL, "Entries dropped to stay within cache.max_memory.");
static const struct metrics_family INVALIDATIONS =
    F("cache_invalidations_total", COUNTER, "cause", "Entries dropped, by cause.");
static const struct metrics_family AUDIT_CHECKS =
    F("cache_audit_checks_total", COUNTER, NULL,
      "Tier hits re-read from Redis by the audit (cache.audit_rate).");
static const struct metrics_family AUDIT_STALE =
    F("cache_audit_stale_total", COUNTER, NULL,
      "Audited hits that differed from Redis with no write of their key seen.");
static const struct metrics_family AUDIT_RACED =
    F("cache_audit_raced_total", COUNTER, NULL,
      "Audited hits that differed from Redis, with a write of their key seen meanwhile.");
static const struct metrics_family HOT_SAMPLED =
    F("hotkeys_sampled_total", COUNTER, NULL, "Requests whose keys were counted as hot keys.");
static const struct metrics_family ENTRIES =
    F("cache_entries", GAUGE, NULL, "Entries in the tier.");
static const struct metrics_family CACHE_BYTES =
    F("cache_bytes", GAUGE, NULL, "Bytes the tier holds, keys, replies and metadata counted.");
static const struct metrics_family CACHE_MAX =
    F("cache_max_bytes", GAUGE, NULL, "The tier's limit (cache.max_memory).");
static const struct metrics_family CACHE_ACTIVE =
    F("cache_active", GAUGE, NULL, "1 while the tier serves and fills.");

static const struct metrics_family UP =
    F("upstream_up", GAUGE, NULL, "1 while every shared upstream connection carries traffic.");
static const struct metrics_family UP_ERRORS =
    F("upstream_errors_total", COUNTER, "kind",
      "Requests answered with an upstream error: unavailable, lost or timeout.");
static const struct metrics_family RECONNECTS =
    F("upstream_reconnects_total", COUNTER, NULL, "Reconnection attempts of shared connections.");
static const struct metrics_family MOVES =
    F("upstream_moves_total", COUNTER, NULL,
      "Moves to a new address: a Sentinel failover, or a name that resolves elsewhere.");
static const struct metrics_family TRACKING =
    F("tracking_state", GAUGE, "state", "1 for the state tracking is in.");
static const struct metrics_family TRACKING_LOSSES =
    F("tracking_losses_total", COUNTER, NULL, "Invalidation subscriber connections lost.");
static const struct metrics_family READY = F("ready", GAUGE, NULL, "1 when /readyz answers 200.");
static const struct metrics_family REDIRECTS =
    F("cluster_redirects_total", COUNTER, "kind",
      "Cluster replies followed: moved, ask, tryagain (upstream.cluster).");
static const struct metrics_family MAPS =
    F("cluster_map_refreshes_total", COUNTER, NULL, "Cluster slot maps read after the first.");

static const struct metrics_family REJECTIONS =
    F("policy_rejections_total", COUNTER, "rule", "Requests rejected, by validation rule.");
static const struct metrics_family RULE_HITS =
    F("policy_cache_hits_total", COUNTER, "rule", "Reads answered from the tier, by cache rule.");
static const struct metrics_family RULE_MISSES =
    F("policy_cache_misses_total", COUNTER, "rule", "Reads forwarded, by cache rule.");
static const struct metrics_family RULE_WRITES =
    F("policy_cache_writes_total", COUNTER, "rule",
      "Writes of keys, by cache rule (estimated from the hot-key sample).");
static const struct metrics_family RULE_FIRINGS =
    F("policy_invalidations_total", COUNTER, "rule", "Firings, by invalidation rule.");
static const struct metrics_family RELOADS =
    F("reloads_total", COUNTER, "result", "Reloads of the settings and policy, by result.");

static const struct metrics_family CPU = {"process_cpu_seconds_total", "User and system CPU time.",
                                          METRICS_COUNTER, NULL, 0};
static const struct metrics_family RSS = {"process_resident_memory_bytes", "Resident memory size.",
                                          METRICS_GAUGE, NULL, 0};

/* One family without labels and its value. */
static void one(const struct metrics_sink *s, const struct metrics_family *f, double v)
{
    s->family(s->arg, f);
    s->value(s->arg, f, NULL, v);
}

struct calls_walk {
    const struct metrics *m;
    const struct metrics_sink *sink;
};

static void calls_one(void *arg, const struct command *cmd)
{
    const struct calls_walk *walk = arg;
    uint64_t n = cmd->index + 1 < walk->m->ncalls ? walk->m->calls[cmd->index + 1] : 0;
    if (n > 0)
        walk->sink->value(walk->sink->arg, &REQUESTS, cmd->name, (double)n);
}

/* Adds one worker's request counters to sum (whose calls has room for
 * them). */
static void metrics_add(struct metrics *sum, const struct metrics *m)
{
    for (size_t i = 0; i < m->ncalls && i < sum->ncalls; i++)
        sum->calls[i] += m->calls[i];
    sum->bytes_in += m->bytes_in;
    sum->bytes_out += m->bytes_out;
    const struct metrics_hist *from[] = {&m->hit, &m->upstream, &m->sizes};
    struct metrics_hist *to[] = {&sum->hit, &sum->upstream, &sum->sizes};
    for (int h = 0; h < 3; h++) {
        for (int b = 0; b < METRICS_BUCKETS; b++)
            to[h]->counts[b] += from[h]->counts[b];
        to[h]->count += from[h]->count;
        to[h]->sum += from[h]->sum;
    }
}

/* The request path's own: requests per command (those seen), latencies,
 * bytes; m summed over the workers. */
static void collect_requests(const struct worker *w, const struct metrics *m,
                             const struct admin_sums *sums, const struct metrics_sink *s)
{
    struct calls_walk walk = {m, s};
    s->family(s->arg, &REQUESTS);
    command_table_each(w->commands, calls_one, &walk);
    if (m->ncalls > 0 && m->calls[0] > 0)
        s->value(s->arg, &REQUESTS, "none", (double)m->calls[0]);
    s->family(s->arg, &DURATION);
    s->hist(s->arg, &DURATION, "hit", &m->hit);
    s->hist(s->arg, &DURATION, "upstream", &m->upstream);
    s->family(s->arg, &SIZES);
    s->hist(s->arg, &SIZES, NULL, &m->sizes);
    one(s, &BYTES_IN, (double)m->bytes_in);
    one(s, &BYTES_OUT, (double)m->bytes_out);
    one(s, &CLIENTS, sums->clients);
    one(s, &CONNECTIONS, (double)sums->total_connections);
}

static void collect_cache(const struct admin_sums *sums, const struct metrics_sink *s)
{
    static const char *const CAUSES[] = {
        [CACHE_DROP_WRITE] = "write",
        [CACHE_DROP_TRACKING] = "tracking",
        [CACHE_DROP_RULE] = "rule",
        [CACHE_DROP_FLUSH] = "flush",
    };
    const struct cache_figures f = sums->cache;
    one(s, &HITS, (double)f.hits);
    one(s, &MISSES, (double)f.misses);
    one(s, &BYPASSED, (double)f.bypassed);
    one(s, &FILLS, (double)f.fills);
    one(s, &JOINED, (double)f.fills_joined);
    one(s, &EVICTIONS, (double)f.evictions);
    s->family(s->arg, &INVALIDATIONS);
    for (int i = 0; i < CACHE_DROP_CAUSES; i++)
        s->value(s->arg, &INVALIDATIONS, CAUSES[i], (double)f.dropped[i]);
    s->value(s->arg, &INVALIDATIONS, "expiry", (double)f.expirations);
    one(s, &AUDIT_CHECKS, (double)sums->audit_checks);
    one(s, &AUDIT_STALE, (double)sums->audit_stale);
    one(s, &AUDIT_RACED, (double)sums->audit_raced);
    one(s, &HOT_SAMPLED, (double)sums->hot_sampled);
    one(s, &ENTRIES, (double)f.entries);
    one(s, &CACHE_BYTES, (double)f.bytes);
    one(s, &CACHE_MAX, (double)f.max_bytes);
    one(s, &CACHE_ACTIVE, f.active);
}

static void collect_upstream(const struct worker *w, const struct admin_sums *sums,
                             const struct metrics_sink *s)
{
    static const char *const KINDS[] = {
        [UPSTREAM_FAILED_UNAVAILABLE] = "unavailable",
        [UPSTREAM_FAILED_LOST] = "lost",
        [UPSTREAM_FAILED_TIMEOUT] = "timeout",
    };
    const struct upstream_counters *u = &sums->upstream;
    const struct coherence *co = &sums->tracking;
    const char *why;
    one(s, &UP, sums->pool_ready);
    s->family(s->arg, &UP_ERRORS);
    for (int i = 0; i < UPSTREAM_FAILED_KINDS; i++)
        s->value(s->arg, &UP_ERRORS, KINDS[i], (double)u->failed[i]);
    one(s, &RECONNECTS, (double)u->reconnects);
    one(s, &MOVES, (double)w->pool.env.ep->moves);
    s->family(s->arg, &TRACKING);
    for (coherence_state_e st = COHERENCE_OFF; st <= COHERENCE_REFUSED; st++)
        s->value(s->arg, &TRACKING, coherence_state_name(st), co->state == st);
    one(s, &TRACKING_LOSSES, (double)co->losses);
    one(s, &READY, admin_sums_ready(sums, &why));
    if (w->route == NULL)
        return;
    s->family(s->arg, &REDIRECTS);
    s->value(s->arg, &REDIRECTS, "moved", (double)sums->cluster.moved);
    s->value(s->arg, &REDIRECTS, "ask", (double)sums->cluster.ask);
    s->value(s->arg, &REDIRECTS, "tryagain", (double)sums->cluster.tryagain);
    one(s, &MAPS, (double)sums->cluster.refreshes);
}

/* The policy's rules: each counter of a rule in the family of its kind. */
static void collect_policy(const struct worker *w, const struct metrics_sink *s)
{
    static const struct {
        const struct metrics_family *family;
        policy_kind_e kinds[2];
        size_t counter; /* offset in struct policy_rule_stats */
    } RULES[] = {
        {&REJECTIONS,
         {POLICY_KIND_VALIDATE, POLICY_KIND_MODULE},
         offsetof(struct policy_rule_stats, rejections)},
        {&RULE_HITS,
         {POLICY_KIND_CACHE, POLICY_KIND_CACHE},
         offsetof(struct policy_rule_stats, hits)},
        {&RULE_MISSES,
         {POLICY_KIND_CACHE, POLICY_KIND_CACHE},
         offsetof(struct policy_rule_stats, misses)},
        {&RULE_WRITES,
         {POLICY_KIND_CACHE, POLICY_KIND_CACHE},
         offsetof(struct policy_rule_stats, writes)},
        {&RULE_FIRINGS,
         {POLICY_KIND_INVALIDATE, POLICY_KIND_INVALIDATE},
         offsetof(struct policy_rule_stats, invalidations)},
    };
    size_t n = policy_rule_count(w->policy);
    for (size_t f = 0; f < sizeof(RULES) / sizeof(*RULES); f++) {
        s->family(s->arg, RULES[f].family);
        for (size_t i = 0; i < n; i++) {
            const char *name;
            policy_kind_e kind;
            const struct policy_rule_stats *r = policy_rule(w->policy, i, &name, &kind);
            if (kind == RULES[f].kinds[0] || kind == RULES[f].kinds[1])
                s->value(s->arg, RULES[f].family, name,
                         (double)*(const uint64_t *)((const char *)r + RULES[f].counter));
        }
    }
    uint64_t runs, failed;
    reload_counts(w->all[0]->reload, &runs, &failed);
    s->family(s->arg, &RELOADS);
    s->value(s->arg, &RELOADS, "success", (double)(runs - failed));
    s->value(s->arg, &RELOADS, "failure", (double)failed);
}

/* The process's CPU time and resident memory. */
static void collect_process(const struct metrics_sink *s)
{
    struct rusage ru;
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f != NULL) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    getrusage(RUSAGE_SELF, &ru);
    one(s, &CPU,
        (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
            (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    one(s, &RSS, (double)resident * (double)sysconf(_SC_PAGESIZE));
}

void metrics_collect(struct worker *w, const struct metrics_sink *sink)
{
    struct admin_sums sums;
    struct metrics m = {.ncalls = w->metrics.ncalls};
    m.calls = calloc(m.ncalls, sizeof(*m.calls));
    if (m.calls == NULL)
        m.ncalls = 0;
    worker_stop_others(w);
    admin_sum(w, &sums);
    for (int i = 0; i < w->nall; i++)
        if (!worker_gone(w, i))
            metrics_add(&m, &w->all[i]->metrics);
    collect_requests(w, &m, &sums, sink);
    collect_cache(&sums, sink);
    collect_upstream(w, &sums, sink);
    collect_policy(w, sink);
    worker_resume(w);
    collect_process(sink);
    free(m.calls);
}

/* ---- Prometheus text format ----------------------------------------------- */

/* Writes a label value with \, " and newlines escaped. */
static void prom_label(FILE *out, const char *name, const char *value)
{
    fprintf(out, "%s=\"", name);
    for (const char *p = value; *p != '\0'; p++) {
        if (*p == '\\' || *p == '"')
            fputc('\\', out);
        if (*p == '\n')
            fputs("\\n", out);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

static void prom_family(void *arg, const struct metrics_family *f)
{
    static const char *const TYPES[] = {"counter", "gauge", "histogram"};
    fprintf(arg, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, TYPES[f->type]);
}

/* name{label="value"} or name{label="value",extra="..."}. */
static void prom_name(FILE *out, const struct metrics_family *f, const char *suffix,
                      const char *label, const char *le)
{
    fprintf(out, "%s%s", f->name, suffix);
    if (label == NULL && le == NULL)
        return;
    fputc('{', out);
    if (label != NULL)
        prom_label(out, f->label, label);
    if (label != NULL && le != NULL)
        fputc(',', out);
    if (le != NULL)
        fprintf(out, "le=\"%s\"", le);
    fputc('}', out);
}

static void prom_value(void *arg, const struct metrics_family *f, const char *label, double v)
{
    prom_name(arg, f, "", label, NULL);
    fprintf(arg, " %.15g\n", v);
}

static void prom_hist(void *arg, const struct metrics_family *f, const char *label,
                      const struct metrics_hist *h)
{
    uint64_t cumulative = 0;
    for (int i = 0; i < METRICS_BUCKETS; i++) {
        char le[32];
        cumulative += h->counts[i];
        bucket_le(le, sizeof(le), f, i);
        prom_name(arg, f, "_bucket", label, le);
        fprintf(arg, " %llu\n", (unsigned long long)cumulative);
    }
    prom_name(arg, f, "_sum", label, NULL);
    fprintf(arg, " %.9g\n", h->sum);
    prom_name(arg, f, "_count", label, NULL);
    fprintf(arg, " %llu\n", (unsigned long long)h->count);
}

char *metrics_prometheus(struct worker *w, size_t *len)
{
    char *buf = NULL;
    FILE *out = open_memstream(&buf, len);
    if (out == NULL)
        return NULL;
    struct metrics_sink sink = {prom_family, prom_value, prom_hist, out};
    metrics_collect(w, &sink);
    if (fclose(out) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* ---- JSON ------------------------------------------------------------------ */

/* A number as JSON: an integer when it is one. */
static json_t *json_figure(double v)
{
    if (v > -9007199254740992.0 && v < 9007199254740992.0 && v == (double)(json_int_t)v)
        return json_integer((json_int_t)v);
    return json_real(v);
}

/* Where a sample of f goes: the root, or f's object of labelled samples. */
static json_t *json_home(json_t *root, const struct metrics_family *f)
{
    return f->label != NULL ? json_object_get(root, f->name) : root;
}

static void json_family(void *arg, const struct metrics_family *f)
{
    if (f->label != NULL)
        json_object_set_new(arg, f->name, json_object());
}

static void json_value(void *arg, const struct metrics_family *f, const char *label, double v)
{
    json_t *home = json_home(arg, f);
    if (home != NULL)
        json_object_set_new(home, label != NULL ? label : f->name, json_figure(v));
}

static void json_hist(void *arg, const struct metrics_family *f, const char *label,
                      const struct metrics_hist *h)
{
    json_t *home = json_home(arg, f), *buckets = json_object();
    uint64_t cumulative = 0;
    for (int i = 0; i < METRICS_BUCKETS; i++) {
        char le[32];
        cumulative += h->counts[i];
        bucket_le(le, sizeof(le), f, i);
        json_object_set_new(buckets, le, json_integer((json_int_t)cumulative));
    }
    json_t *o = json_pack("{s:I,s:f,s:o}", "count", (json_int_t)h->count, "sum", h->sum, "buckets",
                          buckets);
    if (home != NULL && o != NULL)
        json_object_set_new(home, label != NULL ? label : f->name, o);
    else
        json_decref(o);
}

char *metrics_json(struct worker *w, size_t *len)
{
    json_t *root = json_object();
    if (root == NULL)
        return NULL;
    struct metrics_sink sink = {json_family, json_value, json_hist, root};
    metrics_collect(w, &sink);
    char *text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (text != NULL)
        *len = strlen(text);
    return text;
}

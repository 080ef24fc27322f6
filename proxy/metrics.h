/* metrics.h - the proxy's figures, for Prometheus and as JSON.
 *
 * The request path bumps a few counters of its own here (requests per
 * command, client bytes, the latency of replies as clients see them); the
 * rest are read where they are kept (the tier, tracking, the pool, reloads,
 * the policy's rules) when the figures are asked for. metrics_collect walks
 * all of them once, in one fixed order of families, and hands them to a sink:
 * the admin endpoint's /metrics writes the Prometheus text format, /stats
 * the same figures as one JSON object.
 */
#ifndef NEARCACHE_METRICS_H
#define NEARCACHE_METRICS_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

struct worker;

/* Latency buckets: bucket i counts durations up to 16 us * 2^i (16 us to
 * 8.4 s); the last one counts the longer ones (+Inf). */
#define METRICS_BUCKETS 21

struct metrics_hist {
    uint64_t counts[METRICS_BUCKETS]; /* per bucket, not cumulative */
    uint64_t count;
    double sum; /* seconds */
};

/* Counters of the request path, in the worker. */
struct metrics {
    uint64_t *calls; /* ncalls: requests per command, [0] those of no known command */
    size_t ncalls;   /* 1 + the command table's size */
    uint64_t bytes_in;
    uint64_t bytes_out;
    struct metrics_hist hit;      /* replies from the tier */
    struct metrics_hist upstream; /* replies from Redis (and its errors) */
    struct metrics_hist sizes;    /* reply sizes (metrics_size), from the tier and Redis */
    ev_tstamp clock;              /* the time, read once in loop turn clock_turn */
    unsigned clock_turn;
};

/* The time now, read at most once per turn of loop: the replies of one turn
 * leave within microseconds of each other, and a clock read is dearer than
 * the rest of a hit's accounting. */
static inline ev_tstamp metrics_clock(struct metrics *m, struct ev_loop *loop)
{
    unsigned turn = ev_iteration(loop);
    if (m->clock_turn != turn || m->clock == 0) {
        m->clock = ev_time();
        m->clock_turn = turn;
    }
    return m->clock;
}

/* Adds n observations of a duration of seconds. Inline: on the hit path. */
static inline void metrics_observe(struct metrics_hist *h, double seconds, uint64_t n)
{
    uint64_t us = seconds <= 0 ? 0 : seconds < 1e6 ? (uint64_t)(seconds * 1e6) : UINT64_MAX >> 1;
    int i = us <= 16 ? 0 : 64 - __builtin_clzll((us - 1) >> 4);
    h->counts[i < METRICS_BUCKETS ? i : METRICS_BUCKETS - 1] += n;
    h->count += n;
    h->sum += seconds * (double)n;
}

/* Adds a reply of bytes to the sizes: bucket i counts replies up to
 * 64 B * 2^i (64 B to 32 MB), the last the larger ones; the sum is in
 * bytes. Inline: on the hit path. */
static inline void metrics_size(struct metrics_hist *h, size_t bytes)
{
    int i = bytes <= 64 ? 0 : 64 - __builtin_clzll((uint64_t)(bytes - 1) >> 6);
    h->counts[i < METRICS_BUCKETS ? i : METRICS_BUCKETS - 1]++;
    h->count++;
    h->sum += (double)(int64_t)bytes; /* one conversion, not size_t's (998 -> 995) */
}

/* Sizes the per-command counters for a table of ncommands. Returns 0, or -1
 * when out of memory. */
int metrics_setup(struct metrics *m, size_t ncommands);

/* Frees what metrics_setup allocated. */
void metrics_teardown(struct metrics *m);

#define METRICS_DURATION_BASE 16e-6 /* seconds: the first latency bucket's bound */
#define METRICS_SIZE_BASE     64.0  /* bytes: the first reply-size bucket's bound */

/* The upper bound of bucket i < METRICS_BUCKETS - 1 of a histogram whose
 * first bucket ends at base: base * 2^i. */
double metrics_bucket_le(double base, int i);

typedef enum {
    METRICS_COUNTER,
    METRICS_GAUGE,
    METRICS_HISTOGRAM,
} metrics_type_e;

struct metrics_family {
    const char *name; /* nearcache_..., in base units */
    const char *help;
    metrics_type_e type;
    const char *label; /* the name of its one label, or NULL */
    double base;       /* a histogram's: bucket i's upper bound is base * 2^i */
};

/* Receives the figures: family once before its samples; value for each
 * sample of a counter or gauge, hist for each of a histogram. label is the
 * label's value (NULL when the family has none), borrowed for the call. */
struct metrics_sink {
    void (*family)(void *arg, const struct metrics_family *f);
    void (*value)(void *arg, const struct metrics_family *f, const char *label, double v);
    void (*hist)(void *arg, const struct metrics_family *f, const char *label,
                 const struct metrics_hist *h);
    void *arg;
};

/* Hands every figure of the process to sink: every worker's counters,
 * summed (the others are stopped meanwhile; w is the caller's). */
void metrics_collect(struct worker *w, const struct metrics_sink *sink);

/* The figures in the Prometheus text exposition format (version 0.0.4), in
 * a malloc'd buffer of *len bytes that the caller frees; NULL when out of
 * memory. */
char *metrics_prometheus(struct worker *w, size_t *len);

/* The same figures as one JSON object ({"nearcache_cache_hits_total": 3,
 * labelled families as objects by label value, histograms as
 * {"count", "sum", "buckets": {le: cumulative count}}}), malloc'd, *len
 * bytes, NUL-terminated; NULL when out of memory. */
char *metrics_json(struct worker *w, size_t *len);

#endif

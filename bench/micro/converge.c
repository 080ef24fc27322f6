/* bench/micro/converge.c - how fast a write made outside a proxy becomes visible to
 * reads through it. A reader connected through nearcache gets key k into the
 * local tier, a writer sets k to a new sequence number, and the reader then
 * polls GET k through the proxy until it sees that number. Convergence is the
 * time from the write's reply (and from its send) to the first fresh read.
 * Prints percentiles and the number of stale polls; asserts nothing.
 *
 * usage: converge_bench ITERATIONS REDIS_PORT PROXY_PORT [PROXY_B_PORT]
 *   scenario "direct": write on Redis, read through the proxy;
 *   scenario "a->b" (with PROXY_B_PORT): write through proxy A (PROXY_PORT),
 *   read through proxy B, both in front of the same Redis.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#define HOST        "127.0.0.1"
#define KEY         "converge:key"
#define CACHE_TRIES 1000 /* reads before giving up on getting k cached */
#define POLL_LIMIT  10000000L

struct sample {
    double from_ack_us;  /* first fresh read - write's reply */
    double from_send_us; /* first fresh read - write sent */
};

struct result {
    struct sample *samples;
    long n;
    long stale_polls;    /* GETs through the proxy that returned the old value */
    long stale_rounds;   /* iterations with at least one stale poll */
    long max_stale;      /* most stale polls in one iteration */
    long not_cached;     /* iterations where k could not be seen cached first */
    double read_rtt_sum; /* for the mean of one cached GET through the proxy */
    long read_rtt_n;
};

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static redisContext *connect_or_die(int port)
{
    redisContext *c = redisConnect(HOST, port);
    if (c == NULL || c->err) {
        fprintf(stderr, "connect %s:%d: %s\n", HOST, port, c ? c->errstr : "out of memory");
        exit(1);
    }
    return c;
}

static redisReply *command_or_die(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "command failed: %s\n", r ? r->str : c->errstr);
        exit(1);
    }
    return r;
}

/* The proxy's "hits" counter from NEARCACHE STATS. */
static long proxy_hits(redisContext *proxy)
{
    redisReply *r = command_or_die(proxy, "NEARCACHE STATS");
    long hits = -1;
    const char *p = r->type == REDIS_REPLY_STRING ? strstr(r->str, "hits:") : NULL;
    if (p != NULL && (p == r->str || p[-1] == '\n'))
        hits = strtol(p + 5, NULL, 10);
    freeReplyObject(r);
    return hits;
}

/* GET k through the proxy; true when the reply is the number seq. */
static bool read_is(redisContext *proxy, long seq)
{
    redisReply *r = command_or_die(proxy, "GET %s", KEY);
    bool fresh = r->type == REDIS_REPLY_STRING && strtol(r->str, NULL, 10) == seq;
    freeReplyObject(r);
    return fresh;
}

/* Reads k through the proxy until one read is answered from the tier. */
static bool make_cached(redisContext *proxy, struct result *res)
{
    for (int i = 0; i < CACHE_TRIES; i++) {
        long before = proxy_hits(proxy);
        double t0 = now_us();
        redisReply *r = command_or_die(proxy, "GET %s", KEY);
        double t1 = now_us();
        freeReplyObject(r);
        if (proxy_hits(proxy) > before) {
            res->read_rtt_sum += t1 - t0;
            res->read_rtt_n++;
            return true;
        }
    }
    return false;
}

static void run(redisContext *writer, redisContext *reader, long iterations, struct result *res)
{
    freeReplyObject(command_or_die(writer, "SET %s 0", KEY));
    while (!read_is(reader, 0))
        ;
    for (long seq = 1; seq <= iterations; seq++) {
        if (!make_cached(reader, res))
            res->not_cached++;
        double sent = now_us();
        freeReplyObject(command_or_die(writer, "SET %s %ld", KEY, seq));
        double acked = now_us();
        long stale = 0;
        while (!read_is(reader, seq)) {
            if (++stale == POLL_LIMIT) {
                fprintf(stderr, "write %ld never became visible\n", seq);
                exit(1);
            }
        }
        double seen = now_us();
        res->samples[res->n++] = (struct sample){seen - acked, seen - sent};
        res->stale_polls += stale;
        res->stale_rounds += stale > 0;
        if (stale > res->max_stale)
            res->max_stale = stale;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The p-th quantile (0 < p <= 1) of n sorted values: the ceil(p * n)-th. */
static double pick(const double *sorted, long n, double p)
{
    long i = (long)(p * (double)n + 0.999999) - 1;
    return sorted[i < 0 ? 0 : (i >= n ? n - 1 : i)];
}

static void print_row(const char *scenario, const char *from, double *v, long n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    printf("%-8s %-10s %8.1f %8.1f %8.1f %9.1f\n", scenario, from, pick(v, n, 0.5), pick(v, n, 0.9),
           pick(v, n, 0.99), v[n - 1]);
}

static void report(const char *scenario, const struct result *res)
{
    double *v = malloc((size_t)res->n * sizeof(*v));
    if (v == NULL)
        exit(1);
    for (long i = 0; i < res->n; i++)
        v[i] = res->samples[i].from_ack_us;
    print_row(scenario, "write ack", v, res->n);
    for (long i = 0; i < res->n; i++)
        v[i] = res->samples[i].from_send_us;
    print_row(scenario, "write sent", v, res->n);
    free(v);
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: %s ITERATIONS REDIS_PORT PROXY_PORT [PROXY_B_PORT]\n", argv[0]);
        return 2;
    }
    long iterations = strtol(argv[1], NULL, 10);
    if (iterations < 1)
        return 2;
    int ports[3] = {atoi(argv[2]), atoi(argv[3]), argc == 5 ? atoi(argv[4]) : 0};
    struct {
        const char *name;
        int write_port, read_port;
    } scenarios[] = {{"direct", ports[0], ports[1]}, {"a->b", ports[1], ports[2]}};
    int nscenarios = argc == 5 ? 2 : 1;
    struct result results[2] = {{0}};

    for (int s = 0; s < nscenarios; s++) {
        redisContext *writer = connect_or_die(scenarios[s].write_port);
        redisContext *reader = connect_or_die(scenarios[s].read_port);
        results[s].samples = calloc((size_t)iterations, sizeof(struct sample));
        if (results[s].samples == NULL)
            return 1;
        run(writer, reader, iterations, &results[s]);
        redisFree(writer);
        redisFree(reader);
    }

    printf("convergence in microseconds, %ld writes per scenario\n", iterations);
    printf("%-8s %-10s %8s %8s %8s %9s\n", "scenario", "from", "p50", "p90", "p99", "max");
    for (int s = 0; s < nscenarios; s++)
        report(scenarios[s].name, &results[s]);
    for (int s = 0; s < nscenarios; s++) {
        const struct result *r = &results[s];
        printf("%s: %ld stale polls in %ld of %ld writes (at most %ld in one), %ld not seen "
               "cached first; a cached GET through the proxy took %.1f us on average\n",
               scenarios[s].name, r->stale_polls, r->stale_rounds, r->n, r->max_stale,
               r->not_cached, r->read_rtt_n ? r->read_rtt_sum / (double)r->read_rtt_n : 0.0);
        free(r->samples);
    }
    return 0;
}

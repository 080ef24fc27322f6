/* bench/loadgen/loadgen_cli.c - the load generator's preload, results (human and
 * JSON) and command line, and main(); the run itself is in bench/loadgen/loadgen.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench/loadgen/loadgen.h"

#define PRELOAD_REQS 1000          /* preload batch: requests... */
#define PRELOAD_SIZE (1024 * 1024) /* ...or bytes */

/* ---- preload -------------------------------------------------------------------- */

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads `want` replies on blocking fd; each must be OK or an integer. */
static int read_acks(int fd, size_t want)
{
    static char buf[64 * 1024];
    size_t len = 0, off = 0;
    struct resp_scanner sc;
    resp_scanner_reset(&sc);
    while (want) {
        struct resp_reply rep;
        resp_status_e st = resp_scan_reply(&sc, &RESP_LIMITS_DEFAULT, buf + off, len - off, &rep);
        if (st == RESP_ERROR || (st == RESP_OK && rep.type != '+' && rep.type != ':')) {
            fprintf(stderr, "loadgen: preload: unexpected reply %.*s\n",
                    (int)(st == RESP_OK ? rep.len : 0), buf + off);
            return -1;
        }
        if (st == RESP_OK) {
            off += rep.len;
            want--;
            continue;
        }
        memmove(buf, buf + off, len - off);
        len -= off;
        off = 0;
        ssize_t n = recv(fd, buf + len, sizeof(buf) - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || len == sizeof(buf))
            return -1;
        len += (size_t)n;
    }
    return 0;
}

/* SETs every string key of the key space (and HSETs every hash key when the
 * mix reads hashes) once, as writer id `conns`, over one blocking connection.
 * Returns 0, or -1 with a message printed. */
static int preload(struct lg *lg, int fd)
{
    static const struct wl_op SET = {WL_SET, 1, "SET", 1}, HSET = {WL_HSET, 1, "HSET", 1};
    const struct wl_op *ops[2] = {&SET, NULL};
    for (int i = 0; i < lg->mix.n; i++)
        if (lg->mix.op[i].op == WL_HGET || lg->mix.op[i].op == WL_HSET)
            ops[1] = &HSET;
    struct wl_ctx ctx = {.prefix = lg->cfg.prefix,
                         .prefix_len = strlen(lg->cfg.prefix),
                         .conn = (uint32_t)lg->cfg.conns,
                         .size = lg->size};
    struct wl_rng rng;
    wl_rng_seed(&rng, lg->cfg.seed ^ 0x5bd1e995);
    size_t cap = PRELOAD_SIZE + 2 * lg->bound /* SET and HSET per key */, len = 0, batch = 0;
    char *buf = malloc(cap);
    int rc = buf ? 0 : -1;
    for (uint64_t k = 0; rc == 0 && k < lg->cfg.keys; k++) {
        for (int o = 0; o < 2 && ops[o]; o++) {
            uint32_t key = (uint32_t)k;
            struct wl_req req = {.op = ops[o], .key = &key, .vlen = wl_size_pick(&lg->size, &rng)};
            len += wl_encode(&ctx, &req, buf + len);
            batch++;
        }
        if (batch >= PRELOAD_REQS || len >= PRELOAD_SIZE || k + 1 == lg->cfg.keys) {
            rc = send_all(fd, buf, len) < 0 || read_acks(fd, batch) < 0 ? -1 : 0;
            len = batch = 0;
        }
    }
    if (rc < 0)
        fprintf(stderr, "loadgen: preload failed: %s\n", errno ? strerror(errno) : "bad reply");
    free(buf);
    return rc;
}

/* "host:port" or the socket path, in a static buffer. */
static const char *target(const struct config *cfg)
{
    static char buf[300];
    if (cfg->socket)
        return cfg->socket;
    snprintf(buf, sizeof(buf), "%s:%d", cfg->host, cfg->port);
    return buf;
}

/* Resolves the target into lg->addr, connects once (blocking, 5 s timeouts)
 * and preloads if asked. Returns 0, or -1 with a message printed. */
static int setup(struct lg *lg)
{
    const struct config *cfg = &lg->cfg;
    if (cfg->socket) {
        struct sockaddr_un *un = (struct sockaddr_un *)&lg->addr;
        un->sun_family = AF_UNIX;
        snprintf(un->sun_path, sizeof(un->sun_path), "%s", cfg->socket);
        lg->addrlen = sizeof(*un);
    } else {
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
        char port[16];
        snprintf(port, sizeof(port), "%d", cfg->port);
        int e = getaddrinfo(cfg->host, port, &hints, &ai);
        if (e) {
            fprintf(stderr, "loadgen: %s: %s\n", cfg->host, gai_strerror(e));
            return -1;
        }
        memcpy(&lg->addr, ai->ai_addr, ai->ai_addrlen);
        lg->addrlen = ai->ai_addrlen;
        freeaddrinfo(ai);
    }
    int fd = lg_open_socket(lg), e = fd < 0 ? errno : 0;
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    socklen_t elen = sizeof(e);
    if (fd >= 0 && poll(&pfd, 1, 5000) != 1)
        e = ETIMEDOUT;
    else if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) < 0)
        e = errno;
    if (e) {
        fprintf(stderr, "loadgen: cannot connect to %s: %s\n", target(cfg), strerror(e));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int rc = 0;
    if (cfg->preload) {
        struct timeval tv = {5, 0};
        fcntl(fd, F_SETFL, 0);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        errno = 0;
        rc = preload(lg, fd);
    }
    close(fd);
    return rc;
}

/* ---- results ---------------------------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
    if (!s) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static const double PCT[] = {50, 90, 99, 99.9};
static const char *const PCT_NAME[] = {"p50", "p90", "p99", "p999"};
static const char *const PCT_HUMAN[] = {"p50", "p90", "p99", "p99.9"};

static void report_json(FILE *f, const struct lg *lg, const struct hist *h, double secs)
{
    const struct config *cfg = &lg->cfg;
    fprintf(f, "{\"requests\":%llu,\"seconds\":%.6f,\"rps\":%.1f,\"latency_us\":{",
            (unsigned long long)lg->done, secs, secs > 0 ? (double)lg->done / secs : 0.0);
    for (size_t i = 0; i < 4; i++)
        fprintf(f, "\"%s\":%.3f,", PCT_NAME[i], (double)hist_percentile(h, PCT[i]) / 1e3);
    fprintf(f, "\"max\":%.3f,\"mean\":%.3f},\"errors\":{", (double)(h->count ? h->max : 0) / 1e3,
            hist_mean(h) / 1e3);
    for (int i = 0; i < lg->nerr; i++)
        fprintf(f, "%s\"%s\":%llu", i ? "," : "", lg->err[i].name,
                (unsigned long long)lg->err[i].n);
    fputs("},\"cpu_s\":[", f);
    for (int i = 0; i < lg->ncpu; i++)
        fprintf(f, "%s%.3f", i ? "," : "", lg->cpu_s[i]);
    fputs("],\"cpu_user_s\":[", f);
    for (int i = 0; i < lg->ncpu; i++)
        fprintf(f, "%s%.3f", i ? "," : "", lg->cpu_user_s[i]);
    fprintf(f, "],\"wrong\":%llu,\"reconnects\":%llu,\"stalled\":%s,\"lag_us\":",
            (unsigned long long)lg->wrong, (unsigned long long)lg->reconnects,
            lg->stalled ? "true" : "false");
    if (cfg->rate > 0)
        fprintf(f, "{\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f}",
                (double)hist_percentile(&lg->lag, 50) / 1e3,
                (double)hist_percentile(&lg->lag, 99) / 1e3, (double)lg->lag.max / 1e3);
    else
        fputs("null", f);
    fputs(",\"config\":{\"host\":", f);
    json_str(f, cfg->socket ? NULL : cfg->host);
    fprintf(f, ",\"port\":%d,\"socket\":", cfg->socket ? 0 : cfg->port);
    json_str(f, cfg->socket);
    fprintf(f,
            ",\"conns\":%d,\"pipeline\":%d,\"requests\":%llu,\"duration_s\":%g,"
            "\"warmup_s\":%g,\"rate\":%g,\"keys\":%llu,\"dist\":",
            cfg->conns, cfg->depth, (unsigned long long)cfg->requests, cfg->duration, cfg->warmup,
            cfg->rate, (unsigned long long)cfg->keys);
    json_str(f, cfg->dist);
    fputs(",\"mix\":", f);
    json_str(f, cfg->mix);
    fputs(",\"value\":", f);
    json_str(f, cfg->value);
    fputs(",\"prefix\":", f);
    json_str(f, cfg->prefix);
    fprintf(f, ",\"preload\":%s,\"seed\":%llu}}\n", cfg->preload ? "true" : "false",
            (unsigned long long)cfg->seed);
}

/* To stdout, or to stderr when the JSON goes to stdout. */
static void report_human(FILE *f, const struct lg *lg, const struct hist *h, double secs)
{
    const struct config *cfg = &lg->cfg;
    fprintf(f, "target       %s, %d connections, pipeline %d, %s\n", target(cfg), cfg->conns,
            cfg->depth, cfg->rate > 0 ? "open loop" : "closed loop");
    fprintf(f, "requests     %llu\nseconds      %.3f\nthroughput   %.0f req/s\n",
            (unsigned long long)lg->done, secs, secs > 0 ? (double)lg->done / secs : 0.0);
    fprintf(f, "latency us   ");
    for (size_t i = 0; i < 4; i++)
        fprintf(f, "%s %.1f  ", PCT_HUMAN[i], (double)hist_percentile(h, PCT[i]) / 1e3);
    fprintf(f, "max %.1f  mean %.1f\nerrors       ", (double)(h->count ? h->max : 0) / 1e3,
            hist_mean(h) / 1e3);
    for (int i = 0; i < lg->nerr; i++)
        fprintf(f, "%s%s %llu", i ? ", " : "", lg->err[i].name, (unsigned long long)lg->err[i].n);
    fprintf(f, "%s\nwrong        %llu\n", lg->nerr ? "" : "none", (unsigned long long)lg->wrong);
    if (lg->reconnects)
        fprintf(f, "reconnects   %llu\n", (unsigned long long)lg->reconnects);
    for (int i = 0; i < lg->ncpu; i++)
        fprintf(f, "cpu          pid %d: %.2f s (%.2f user), %.2f us/request\n", lg->cpu_pid[i],
                lg->cpu_s[i], lg->cpu_user_s[i],
                lg->done ? lg->cpu_s[i] * 1e6 / (double)lg->done : 0.0);
    if (cfg->rate > 0)
        fprintf(
            f, "schedule     %.0f req/s intended; sent late by p50 %.1f  p99 %.1f  max %.1f us%s\n",
            cfg->rate, (double)hist_percentile(&lg->lag, 50) / 1e3,
            (double)hist_percentile(&lg->lag, 99) / 1e3, (double)lg->lag.max / 1e3,
            hist_percentile(&lg->lag, 50) > lg->period_ns
                ? " (behind: the generator or -P is the limit)"
                : "");
}

static void report(const struct lg *lg)
{
    struct hist *h = malloc(sizeof(*h));
    if (!h)
        exit(1);
    hist_init(h);
    for (int i = 0; i < lg->cfg.conns; i++)
        hist_merge(h, &lg->conns[i].hist);
    double secs = (double)(lg->last_reply_ns - lg->measure_ns) / 1e9;
    bool out = !lg->cfg.json || strcmp(lg->cfg.json, "-") == 0;
    if (!lg->cfg.quiet)
        report_human(lg->cfg.json && out ? stderr : stdout, lg, h, secs);
    if (lg->cfg.json || lg->cfg.quiet) {
        FILE *f = out ? stdout : fopen(lg->cfg.json, "w");
        if (!f)
            fprintf(stderr, "loadgen: %s: %s\n", lg->cfg.json, strerror(errno));
        else
            report_json(f, lg, h, secs);
        if (f && !out)
            fclose(f);
    }
    free(h);
}

/* ---- command line --------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fputs("usage: loadgen [-h HOST] [-p PORT] [-s SOCKET] [-c CONNS] [-P DEPTH]\n"
          "               [-n REQUESTS | -d DURATION] [--warmup DURATION] [--rate R]\n"
          "               [--keys N] [--dist uniform|zipf:S|hot:F:P] [--mix SPEC]\n"
          "               [--value N|MIN-MAX] [--prefix P] [--preload] [--seed N]\n"
          "               [--json FILE|-] [--quiet] [--cpu PID[,PID...]]\n"
          "  mix: comma-separated get set del incr hget hset lpush lrange mget:N any:CMD,\n"
          "       each with an optional :WEIGHT (default get:70,set:20,del:10)\n"
          "  cpu: up to 4 processes whose user + system CPU time in the measured phase\n"
          "       is reported (cpu_s in the JSON, and cpu_user_s: the user time of\n"
          "       it), e.g. the server under test\n",
          f);
}

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* "10s", "500ms", "2m", "1.5" (seconds), "250us"; > 0. */
static int parse_duration(const char *s, double *out)
{
    static const struct {
        const char *unit;
        double scale;
    } UNITS[] = {{"", 1}, {"s", 1}, {"ms", 1e-3}, {"us", 1e-6}, {"m", 60}, {"h", 3600}};
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !(v > 0) || !isfinite(v))
        return -1;
    for (size_t i = 0; i < sizeof(UNITS) / sizeof(UNITS[0]); i++)
        if (strcmp(end, UNITS[i].unit) == 0)
            return *out = v * UNITS[i].scale, 0;
    return -1;
}

/* Requests per second: a number in (0, 1e9]. */
static int parse_rate(const char *s, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return (end == s || *end || errno || !(*out > 0) || *out > 1e9) ? -1 : 0;
}

enum {
    OPT_WARMUP = 256,
    OPT_RATE,
    OPT_KEYS,
    OPT_DIST,
    OPT_MIX,
    OPT_VALUE,
    OPT_PREFIX,
    OPT_PRELOAD,
    OPT_SEED,
    OPT_JSON,
    OPT_QUIET,
    OPT_CPU,
    OPT_HELP
};

static const struct option LONG_OPTS[] = {
    {"warmup", required_argument, NULL, OPT_WARMUP}, {"rate", required_argument, NULL, OPT_RATE},
    {"keys", required_argument, NULL, OPT_KEYS},     {"dist", required_argument, NULL, OPT_DIST},
    {"mix", required_argument, NULL, OPT_MIX},       {"value", required_argument, NULL, OPT_VALUE},
    {"prefix", required_argument, NULL, OPT_PREFIX}, {"preload", no_argument, NULL, OPT_PRELOAD},
    {"seed", required_argument, NULL, OPT_SEED},     {"json", required_argument, NULL, OPT_JSON},
    {"quiet", no_argument, NULL, OPT_QUIET},         {"cpu", required_argument, NULL, OPT_CPU},
    {"help", no_argument, NULL, OPT_HELP},           {NULL, 0, NULL, 0},
};

typedef enum { ARG_STR, ARG_INT, ARG_U64, ARG_DURATION, ARG_RATE, ARG_FLAG } arg_kind_e;

/* Where each option goes in struct config and what its argument may be: a
 * number in [lo, hi] (ARG_INT, ARG_U64) or a string of at most hi bytes. */
static const struct opt_spec {
    int opt;
    arg_kind_e kind;
    size_t off;
    uint64_t lo, hi;
} OPT_SPECS[] = {
    {'h', ARG_STR, offsetof(struct config, host), 0, SIZE_MAX},
    {'s', ARG_STR, offsetof(struct config, socket), 0, SIZE_MAX},
    {'p', ARG_INT, offsetof(struct config, port), 1, 65535},
    {'c', ARG_INT, offsetof(struct config, conns), 1, 100000},
    {'P', ARG_INT, offsetof(struct config, depth), 1, 100000},
    {'n', ARG_U64, offsetof(struct config, requests), 1, UINT64_MAX / 2},
    {'d', ARG_DURATION, offsetof(struct config, duration), 0, 0},
    {OPT_WARMUP, ARG_DURATION, offsetof(struct config, warmup), 0, 0},
    {OPT_RATE, ARG_RATE, offsetof(struct config, rate), 0, 0},
    {OPT_KEYS, ARG_U64, offsetof(struct config, keys), 1, UINT32_MAX},
    {OPT_DIST, ARG_STR, offsetof(struct config, dist), 0, SIZE_MAX},
    {OPT_MIX, ARG_STR, offsetof(struct config, mix), 0, SIZE_MAX},
    {OPT_VALUE, ARG_STR, offsetof(struct config, value), 0, SIZE_MAX},
    {OPT_PREFIX, ARG_STR, offsetof(struct config, prefix), 0, WL_PREFIX_MAX},
    {OPT_PRELOAD, ARG_FLAG, offsetof(struct config, preload), 0, 0},
    {OPT_SEED, ARG_U64, offsetof(struct config, seed), 0, UINT64_MAX},
    {OPT_JSON, ARG_STR, offsetof(struct config, json), 0, SIZE_MAX},
    {OPT_QUIET, ARG_FLAG, offsetof(struct config, quiet), 0, 0},
    {OPT_CPU, ARG_STR, offsetof(struct config, cpu), 0, SIZE_MAX},
};

/* One option into cfg; a message and -1 when its argument is bad, -1 alone
 * for an option not in OPT_SPECS (getopt has complained). */
static int parse_option(struct config *cfg, int opt, const char *arg)
{
    const struct opt_spec *s = OPT_SPECS;
    const struct opt_spec *end = OPT_SPECS + sizeof(OPT_SPECS) / sizeof(OPT_SPECS[0]);
    while (s < end && s->opt != opt)
        s++;
    if (s == end)
        return -1;
    char *field = (char *)cfg + s->off;
    uint64_t v = 0;
    int rc = 0;
    switch (s->kind) {
    case ARG_STR:
        *(const char **)field = arg;
        rc = strlen(arg) > s->hi ? -1 : 0;
        break;
    case ARG_INT:
        rc = parse_u64(arg, s->lo, s->hi, &v);
        *(int *)field = (int)v;
        break;
    case ARG_U64:
        rc = parse_u64(arg, s->lo, s->hi, (uint64_t *)field);
        break;
    case ARG_DURATION:
        rc = parse_duration(arg, (double *)field);
        break;
    case ARG_RATE:
        rc = parse_rate(arg, (double *)field);
        break;
    case ARG_FLAG:
        *(bool *)field = true;
        break;
    }
    if (opt == 'n') /* -n and -d exclude each other: the last one wins */
        cfg->duration = 0;
    else if (opt == 'd')
        cfg->requests = 0;
    if (rc)
        fprintf(stderr, "loadgen: bad argument: %s\n", arg);
    return rc ? -1 : 0;
}

/* --cpu's comma-separated process ids into lg; 0, or -1. */
static int parse_pids(struct lg *lg, const char *s)
{
    for (lg->ncpu = 0; lg->ncpu < CPU_PIDS; s++) {
        uint64_t pid;
        char one[24];
        size_t n = strcspn(s, ",");
        if (n >= sizeof(one))
            return -1;
        memcpy(one, s, n);
        one[n] = '\0';
        if (parse_u64(one, 1, INT32_MAX, &pid) < 0)
            return -1;
        lg->cpu_pid[lg->ncpu++] = (int)pid;
        s += n;
        if (*s == '\0')
            return 0;
    }
    return -1;
}

/* Fills lg from argv; 0, or -1 (usage printed). */
static int parse_args(struct lg *lg, int argc, char **argv)
{
    struct config *cfg = &lg->cfg;
    *cfg = (struct config){.host = "127.0.0.1",
                           .port = 6379,
                           .conns = 50,
                           .depth = 1,
                           .requests = 100000,
                           .keys = 100000,
                           .seed = 1,
                           .dist = "uniform",
                           .mix = "get:70,set:20,del:10",
                           .value = "100",
                           .prefix = "lg:"};
    const char *err = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "h:p:s:c:P:n:d:", LONG_OPTS, NULL)) != -1) {
        if (opt == OPT_HELP) {
            usage(stdout);
            exit(0);
        }
        if (parse_option(cfg, opt, optarg) < 0)
            goto bad;
    }
    if (optind < argc)
        err = "unexpected argument";
    else if (wl_mix_parse(&lg->mix, cfg->mix, &err) < 0)
        ;
    else if (wl_dist_parse(&lg->dist, cfg->dist, cfg->keys, cfg->seed) < 0)
        err = "bad --dist";
    else if (wl_size_parse(&lg->size, cfg->value) < 0)
        err = "bad --value";
    else if (cfg->cpu && parse_pids(lg, cfg->cpu) < 0)
        err = "bad --cpu";
    if (err) {
        fprintf(stderr, "loadgen: %s\n", err);
        goto bad;
    }
    return 0;
bad:
    usage(stderr);
    return -1;
}

int main(int argc, char **argv)
{
    static struct lg lg;
    if (parse_args(&lg, argc, argv) < 0)
        return 2;
    lg.cap = lg.cfg.depth < 2 ? 2 : (size_t)lg.cfg.depth;
    lg.maxk = lg.mix.max_keys ? lg.mix.max_keys : 1;
    struct wl_ctx ctx = {.prefix_len = strlen(lg.cfg.prefix), .size = lg.size};
    lg.bound = wl_encode_bound(&ctx, &lg.mix);
    if (lg.cfg.rate > 0)
        lg.period_ns = (uint64_t)fmax(1.0, (double)lg.cfg.conns * 1e9 / lg.cfg.rate);
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_TIMERSLACK, 1UL); /* wake on the intended send times, not 50 us later */
    if (setup(&lg) < 0)
        return 1;
    lg_run(&lg);
    report(&lg);
    return 0;
}

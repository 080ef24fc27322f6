/* analyze_cli.c - `nearcache analyze`: options, the printed table, the
 * emitted policy. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/net.h"
#include "proxy/tools/advise.h"
#include "proxy/tools/analyze.h"

#define PASSWORD_ENV "NEARCACHE_ANALYZE_PASSWORD"
#define PATTERN_COL  40 /* widest pattern column; longer ones are cut with "..." */

static const char USAGE[] =
    "usage: nearcache analyze [options]\n"
    "  -u, --upstream ADDR      Redis to walk: host:port or a unix socket path (127.0.0.1:6379)\n"
    "      --cluster SEED       walk every primary of the Redis Cluster SEED (host:port) belongs "
    "to\n"
    "      --user NAME          ACL user for AUTH (with --password)\n"
    "      --password PW        AUTH password (default: $" PASSWORD_ENV ")\n"
    "      --db N               the database to walk (not with --cluster)\n"
    "      --match GLOB         only keys matching GLOB (SCAN MATCH)\n"
    "      --max-keys N         stop after N keys (100000)\n"
    "      --rate N             keys scanned or sampled per second, 0 = unpaced (5000)\n"
    "      --samples N          keys sampled per pattern for TYPE, MEMORY USAGE, PTTL, OBJECT\n"
    "                           ENCODING (32)\n"
    "      --proxy ADDR         a running nearcache: read NEARCACHE HOTKEYS, STATS and POLICY\n"
    "      --proxy-password PW  AUTH password for --proxy\n"
    "      --emit-policy FILE   write the advised policy: section to FILE (- for stdout)\n"
    "      --json               print the report as JSON\n"
    "  -h, --help               print this help and exit\n"
    "exit status: 0 done, 1 Redis or the proxy failed, 2 bad usage\n";

struct cli {
    struct analyze_options o;
    const char *emit;
    bool json;
};

/* A whole number in [min, max] from text, or -1 with a message. */
static int number(const char *opt, const char *text, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max ||
        v != (double)(long long)v) {
        fprintf(stderr, "nearcache analyze: %s '%s': expected a whole number from %.0f to %.0f\n",
                opt, text, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

static int address(const char *opt, const char *text)
{
    char host[256];
    int port;
    if (net_addr_split(text, host, sizeof(host), &port) == 0)
        return 0;
    fprintf(stderr, "nearcache analyze: %s '%s': expected host:port or a unix socket path\n", opt,
            text);
    return -1;
}

/* Applies option opt (getopt's value) with arg. Returns 0, -1 on bad usage. */
static int apply(struct cli *c, int opt, const char *name, const char *arg)
{
    double v;
    switch (opt) {
    case 'u':
        c->o.upstream = arg;
        return address(name, arg);
    case 'C':
        c->o.cluster = arg;
        return address(name, arg);
    case 'P':
        c->o.proxy = arg;
        return address(name, arg);
    case 'U':
        c->o.user = arg;
        return 0;
    case 'p':
        c->o.password = arg;
        return 0;
    case 'Q':
        c->o.proxy_password = arg;
        return 0;
    case 'm':
        c->o.match = arg;
        return 0;
    case 'e':
        c->emit = arg;
        return 0;
    case 'j':
        c->json = true;
        return 0;
    case 'd':
        return number(name, arg, 0, 65535, &v) < 0 ? -1 : (c->o.db = (int)v, 0);
    case 'k':
        return number(name, arg, 1, 1e15, &v) < 0 ? -1 : (c->o.max_keys = (uint64_t)v, 0);
    case 'r':
        return number(name, arg, 0, 1e9, &v) < 0 ? -1 : (c->o.rate = v, 0);
    case 's':
        return number(name, arg, 1, 10000, &v) < 0 ? -1 : (c->o.samples = (unsigned)v, 0);
    }
    return -1;
}

/* Parses argv into c. Returns 0, 1 after --help, -1 on bad usage. */
static int parse(int argc, char **argv, struct cli *c)
{
    static const struct option LONG[] = {
        {"upstream", required_argument, NULL, 'u'},
        {"cluster", required_argument, NULL, 'C'},
        {"user", required_argument, NULL, 'U'},
        {"password", required_argument, NULL, 'p'},
        {"db", required_argument, NULL, 'd'},
        {"match", required_argument, NULL, 'm'},
        {"max-keys", required_argument, NULL, 'k'},
        {"rate", required_argument, NULL, 'r'},
        {"samples", required_argument, NULL, 's'},
        {"proxy", required_argument, NULL, 'P'},
        {"proxy-password", required_argument, NULL, 'Q'},
        {"emit-policy", required_argument, NULL, 'e'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    analyze_options_init(&c->o);
    c->o.password = getenv(PASSWORD_ENV);
    c->o.progress = isatty(STDERR_FILENO);
    int opt, at;
    optind = 1;
    while ((opt = getopt_long(argc, argv, ":u:h", LONG, &at)) != -1) {
        if (opt == 'h') {
            fputs(USAGE, stdout);
            return 1;
        }
        if (opt == '?' || opt == ':') {
            fprintf(stderr, "nearcache analyze: %s '%s'\n%s",
                    opt == '?' ? "unknown option" : "missing value for", argv[optind - 1], USAGE);
            return -1;
        }
        char name[32];
        snprintf(name, sizeof(name), "%s%s", opt == 'u' && argv[optind - 1][1] != '-' ? "-" : "--",
                 opt == 'u' && argv[optind - 1][1] != '-' ? "u" : LONG[at].name);
        if (apply(c, opt, name, optarg) < 0)
            return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "nearcache analyze: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (c->o.cluster != NULL && c->o.db != 0) {
        fputs("nearcache analyze: --db: a Redis Cluster has database 0 only\n", stderr);
        return -1;
    }
    if (c->json && c->emit != NULL && strcmp(c->emit, "-") == 0) {
        fputs("nearcache analyze: --emit-policy -: stdout holds the JSON\n", stderr);
        return -1;
    }
    return 0;
}

static void human(char *out, size_t len, const json_t *v)
{
    double b = (double)json_integer_value(v);
    if (!json_is_integer(v))
        snprintf(out, len, "-");
    else if (b < 1024)
        snprintf(out, len, "%.0fB", b);
    else if (b < 1024 * 1024)
        snprintf(out, len, "%.1fK", b / 1024);
    else
        snprintf(out, len, "%.1fM", b / (1024 * 1024));
}

static void ttl_text(char *out, size_t len, const json_t *v)
{
    double ms = (double)json_integer_value(v);
    if (!json_is_integer(v))
        snprintf(out, len, "-");
    else if (ms < 60000)
        snprintf(out, len, "%.0fs", ms / 1000);
    else if (ms < 3600000)
        snprintf(out, len, "%.0fm", ms / 60000);
    else
        snprintf(out, len, "%.1fh", ms / 3600000);
}

/* One row of the table. */
static void print_row(const json_t *p)
{
    const json_t *size = json_object_get(p, "size"), *ttl = json_object_get(p, "ttl");
    const char *pattern = json_string_value(json_object_get(p, "pattern"));
    char p50[16], p99[16], max[16], tmin[16], tmax[16], types[96] = "", *t = types;
    human(p50, sizeof(p50), json_object_get(size, "p50"));
    human(p99, sizeof(p99), json_object_get(size, "p99"));
    human(max, sizeof(max), json_object_get(size, "max"));
    ttl_text(tmin, sizeof(tmin), json_object_get(ttl, "min"));
    ttl_text(tmax, sizeof(tmax), json_object_get(ttl, "max"));
    const char *name;
    json_t *n;
    json_object_foreach((json_t *)json_object_get(p, "types"), name, n)
    {
        t += snprintf(t, (size_t)(types + sizeof(types) - t), "%s%s %lld", t == types ? "" : ",",
                      name, (long long)json_integer_value(n));
        if (t >= types + sizeof(types))
            break;
    }
    json_int_t none = json_integer_value(json_object_get(ttl, "none")),
               with = json_integer_value(json_object_get(ttl, "with"));
    int plen = (int)strlen(pattern);
    printf("%-*.*s%s %8lld %6.1f%% %7s %7s %7s %5.0f%% %6s %6s  %s\n",
           PATTERN_COL - 3 * (plen > PATTERN_COL), PATTERN_COL - 3 * (plen > PATTERN_COL), pattern,
           plen > PATTERN_COL ? "..." : "",
           (long long)json_integer_value(json_object_get(p, "keys")),
           100 * json_real_value(json_object_get(p, "share")), p50, p99, max,
           none + with > 0 ? 100.0 * (double)none / (double)(none + with) : 0.0, tmin, tmax, types);
}

static void print_lines(const json_t *lines, const char *mark)
{
    size_t i;
    json_t *l;
    json_array_foreach((json_t *)lines, i, l) printf("  %s %s\n", mark, json_string_value(l));
}

static void print_report(const json_t *r)
{
    const json_t *scan = json_object_get(r, "scan"), *src = json_object_get(r, "source"),
                 *patterns = json_object_get(r, "patterns"), *proxy = json_object_get(r, "proxy"),
                 *p;
    size_t i;
    printf("%lld keys seen of %lld in %s (%lld node%s) in %.1f s: %zu patterns\n\n",
           (long long)json_integer_value(json_object_get(scan, "keys")),
           (long long)json_integer_value(json_object_get(scan, "dbsize")),
           json_string_value(json_object_get(src, "address")),
           (long long)json_integer_value(json_object_get(src, "nodes")),
           json_integer_value(json_object_get(src, "nodes")) == 1 ? "" : "s",
           json_real_value(json_object_get(scan, "seconds")), json_array_size(patterns));
    printf("%-*s %8s %7s %7s %7s %7s %6s %6s %6s  %s\n", PATTERN_COL, "pattern", "keys", "share",
           "p50", "p99", "max", "no-ttl", "ttl>=", "ttl<=", "types (sampled)");
    json_array_foreach((json_t *)patterns, i, p) print_row(p);
    printf("\nrecommendations (+ advice, ! risk):\n");
    json_array_foreach((json_t *)patterns, i, p)
    {
        const json_t *advice = json_object_get(p, "advice"), *risks = json_object_get(p, "risks");
        if (json_array_size(advice) + json_array_size(risks) == 0)
            continue;
        printf("%s\n", json_string_value(json_object_get(p, "pattern")));
        print_lines(advice, "+");
        print_lines(risks, "!");
    }
    if (json_is_object(proxy)) {
        const json_t *stats = json_object_get(proxy, "stats");
        printf("\nproxy %s: hit_ratio %.3f, %lld hits, %lld misses, %zu hot keys reported\n",
               json_string_value(json_object_get(proxy, "address")),
               json_number_value(json_object_get(stats, "hit_ratio")),
               (long long)json_integer_value(json_object_get(stats, "hits")),
               (long long)json_integer_value(json_object_get(stats, "misses")),
               json_array_size(json_object_get(proxy, "hotkeys")));
    }
    if (json_array_size(json_object_get(r, "advice")) > 0) {
        printf("\noverall:\n");
        print_lines(json_object_get(r, "advice"), "*");
    }
}

/* Writes the policy to path ("-": stdout). Returns 0 or -1 (reported). */
static int emit_policy(const json_t *report, const char *path)
{
    char *yaml = advise_policy(report);
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
    int rc = yaml != NULL && f != NULL && fputs(yaml, f) >= 0 ? 0 : -1;
    if (f != NULL && f != stdout && fclose(f) != 0)
        rc = -1;
    if (rc < 0)
        fprintf(stderr, "nearcache analyze: --emit-policy %s: %s\n", path,
                yaml == NULL ? "out of memory" : strerror(errno));
    free(yaml);
    return rc;
}

int analyze_main(int argc, char **argv)
{
    struct cli c = {0};
    int rc = parse(argc, argv, &c);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    char err[512];
    json_t *report = analyze_run(&c.o, err, sizeof(err));
    if (report == NULL) {
        fprintf(stderr, "nearcache analyze: %s\n", err);
        return 1;
    }
    if (c.json) {
        json_dumpf(report, stdout, JSON_INDENT(2));
        putchar('\n');
    } else if (c.emit == NULL || strcmp(c.emit, "-") != 0) {
        print_report(report);
    }
    rc = c.emit != NULL && emit_policy(report, c.emit) < 0 ? 1 : 0;
    json_decref(report);
    return rc;
}

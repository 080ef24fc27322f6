/* advise.c - cache rules and risks from an analysis report. */
#include "proxy/tools/advise.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECOND_MS    1000
#define MINUTE_MS    (60 * SECOND_MS)
#define TTL_CEIL_MS  (10 * MINUTE_MS)
#define TTL_PLAIN_MS (5 * 60 * SECOND_MS) /* cache.ttl's default */
#define NAME_MAX_LEN 40

/* A pattern's figures, read once from its JSON. */
struct seen {
    json_t *p, *advice, *risks;
    json_int_t keys, captures, sampled, p50, max, mean;
    json_int_t ttl_none, ttl_with, ttl_p50;
    json_int_t reads, writes, hot;
    double share;
    bool overflow, has_size, has_traffic;
};

static json_int_t num(const json_t *o, const char *name)
{
    return json_integer_value(json_object_get(o, name));
}

static void say(json_t *list, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(json_t *list, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    json_array_append_new(list, json_string(text));
}

/* ms as the policy writes durations: "10m", "30s", "250ms". */
static void duration(char *out, size_t len, json_int_t ms)
{
    if (ms % 60000 == 0)
        snprintf(out, len, "%lldm", (long long)(ms / 60000));
    else if (ms % 1000 == 0)
        snprintf(out, len, "%llds", (long long)(ms / 1000));
    else
        snprintf(out, len, "%lldms", (long long)ms);
}

/* bytes for a sentence: "512 B", "2.0 KB", "48.9 MB". */
static void human(char *out, size_t len, json_int_t b)
{
    if (b < 1024)
        snprintf(out, len, "%lld B", (long long)b);
    else if (b < 1024 * 1024)
        snprintf(out, len, "%.1f KB", (double)b / 1024);
    else
        snprintf(out, len, "%.1f MB", (double)b / (1024 * 1024));
}

static void read_seen(json_t *p, struct seen *s)
{
    json_t *size = json_object_get(p, "size"), *ttl = json_object_get(p, "ttl"),
           *traffic = json_object_get(p, "traffic");
    *s = (struct seen){.p = p, .advice = json_array(), .risks = json_array()};
    s->keys = num(p, "keys");
    s->captures = num(p, "captures");
    s->sampled = num(p, "sampled");
    s->share = json_real_value(json_object_get(p, "share"));
    s->overflow = json_is_true(json_object_get(p, "overflow"));
    s->has_size = json_is_object(size);
    s->p50 = num(size, "p50");
    s->max = num(size, "max");
    s->mean = num(size, "mean");
    s->ttl_none = num(ttl, "none");
    s->ttl_with = num(ttl, "with");
    s->ttl_p50 = num(ttl, "p50");
    s->has_traffic = json_is_object(traffic) && num(traffic, "reads") + num(traffic, "writes") > 0;
    s->reads = num(traffic, "reads");
    s->writes = num(traffic, "writes");
    s->hot = num(traffic, "hot_keys");
}

/* The adaptive TTL for s: max the median remaining TTL (1s..10m), or 5m
 * without TTLs; min a sixtieth of it, at least 1s. */
static json_t *ttl_rule(struct seen *s)
{
    json_int_t max = TTL_PLAIN_MS;
    if (s->ttl_with > 0) {
        max = s->ttl_p50 / SECOND_MS * SECOND_MS;
        max = max < SECOND_MS ? SECOND_MS : max > TTL_CEIL_MS ? TTL_CEIL_MS : max;
        if (max >= 2 * MINUTE_MS)
            max = max / MINUTE_MS * MINUTE_MS;
    }
    json_int_t min = max / 60 / SECOND_MS * SECOND_MS;
    min = min < SECOND_MS ? SECOND_MS : min;
    char a[32], b[32];
    duration(a, sizeof(a), min);
    duration(b, sizeof(b), max);
    say(s->advice, "cache it with an adaptive TTL from %s to %s (%s)", a, b,
        s->ttl_with > 0 ? "the max is the median remaining TTL seen" : "its keys have no TTL");
    return json_pack("{s:s,s:s,s:s}", "min", a, "max", b, "window", "1m");
}

/* The fields of the cache rule s should get, or NULL for none. */
static json_t *rule_fields(struct seen *s)
{
    char a[32];
    if (s->has_traffic && 2 * s->writes >= s->reads) {
        say(s->risks, "written about as often as read (%lld writes, %lld reads of %lld hot keys)",
            (long long)s->writes, (long long)s->reads, (long long)s->hot);
        say(s->advice, "do not cache it: every write would drop what was cached");
        return json_pack("{s:b}", "cache", 0);
    }
    if (s->has_size && s->p50 > ADVISE_MAX_ENTRY) {
        human(a, sizeof(a), s->p50);
        say(s->advice, "do not cache it: most values (median %s) are over cache.max_entry", a);
        return json_pack("{s:b}", "cache", 0);
    }
    json_t *rule = json_object();
    json_object_set_new(rule, "ttl", ttl_rule(s));
    json_int_t bytes = s->keys * s->mean;
    if (s->has_size && bytes > ADVISE_MAX_MEMORY / 8) {
        human(a, sizeof(a), bytes);
        say(s->advice,
            "admit keys from their second read within a minute: all of them would take %s, "
            "over an eighth of a 64mb tier",
            a);
        json_object_set_new(rule, "admit", json_pack("{s:i,s:s}", "reads", 2, "window", "1m"));
    }
    if (s->has_size && s->p50 >= ADVISE_COMPRESS_OVER) {
        human(a, sizeof(a), s->p50);
        say(s->advice,
            "compress values from 4kb (median %s): the tier keeps them compressed "
            "only when that saves space",
            a);
        json_object_set_new(rule, "compress_over", json_string("4kb"));
    }
    return rule;
}

/* A rule name from the pattern's literal text: [A-Za-z0-9] kept, runs of
 * anything else as one '-', "other" when nothing is left; "-2", "-3"...
 * when taken. */
static void rule_name(const char *pattern, json_t *taken, char *out, size_t len)
{
    size_t n = 0;
    for (const char *c = pattern; *c != '\0' && n < NAME_MAX_LEN; c++) {
        if (*c == '{') {
            c += strcspn(c, "}");
            if (*c == '\0')
                break;
            continue;
        }
        bool alnum =
            (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9');
        if (alnum)
            out[n++] = *c;
        else if (n > 0 && out[n - 1] != '-')
            out[n++] = '-';
    }
    while (n > 0 && out[n - 1] == '-')
        n--;
    out[n] = '\0';
    if (n == 0 || strcmp(out, "default") == 0)
        snprintf(out, len, "%s", n == 0 ? "other" : "default-keys");
    char base[NAME_MAX_LEN + 1];
    snprintf(base, sizeof(base), "%.*s", NAME_MAX_LEN, out);
    for (int i = 2; json_object_get(taken, out) != NULL; i++)
        snprintf(out, len, "%s-%d", base, i);
    json_object_set_new(taken, out, json_true());
}

/* Advice, risks and rule of one pattern. */
static int advise_pattern(json_t *p, json_t *taken)
{
    struct seen s;
    char a[32];
    read_seen(p, &s);
    json_t *rule = NULL;
    bool wanted = ((s.captures > 0 || s.overflow) && s.share >= ADVISE_RULE_SHARE) || s.hot > 0;
    if (wanted && s.sampled > 0)
        rule = rule_fields(&s);
    if (s.has_size && s.max > ADVISE_MAX_ENTRY) {
        human(a, sizeof(a), s.max);
        say(s.risks, "huge values: up to %s, over cache.max_entry (1mb): those are never cached",
            a);
    }
    if (s.ttl_none > 0 && (rule != NULL || s.share >= ADVISE_RULE_SHARE))
        say(s.risks, "%lld of %lld sampled keys have no TTL: they stay in Redis until deleted",
            (long long)s.ttl_none, (long long)(s.ttl_none + s.ttl_with));
    if (rule != NULL) {
        char name[NAME_MAX_LEN + 16];
        rule_name(json_string_value(json_object_get(p, "pattern")), taken, name, sizeof(name));
        json_t *full = json_pack("{s:s,s:O}", "name", name, "keys", json_object_get(p, "pattern"));
        json_object_update(full, rule);
        json_decref(rule);
        rule = full;
    }
    json_object_set_new(p, "advice", s.advice);
    json_object_set_new(p, "risks", s.risks);
    json_object_set_new(p, "rule", rule ? rule : json_null());
    return s.advice != NULL && s.risks != NULL ? 0 : -1;
}

/* Sentences about the whole run and the proxy. */
static void advise_global(json_t *report, json_t *out)
{
    json_t *scan = json_object_get(report, "scan"), *proxy = json_object_get(report, "proxy");
    if (json_is_true(json_object_get(scan, "stopped_at_max_keys")))
        say(out, "the walk stopped at --max-keys %lld of %lld keys: counts are of the keys seen",
            (long long)num(scan, "max_keys"), (long long)num(scan, "dbsize"));
    if (num(scan, "overflowed") > 0)
        say(out, "%lld keys did not fit the pattern tree and are counted under '*' patterns",
            (long long)num(scan, "overflowed"));
    if (!json_is_object(proxy))
        return;
    json_t *stats = json_object_get(proxy, "stats"), *rule;
    const char *tracking = json_string_value(json_object_get(stats, "tracking"));
    if (tracking != NULL && strcmp(tracking, "on") != 0)
        say(out,
            "the proxy's tracking is %s: writes made elsewhere are seen only when the TTL ends",
            tracking);
    if (num(stats, "evictions") > 0)
        say(out,
            "the proxy evicted %lld entries: raise cache.max_memory or admit long-tail "
            "patterns",
            (long long)num(stats, "evictions"));
    if (!json_is_array(json_object_get(proxy, "hotkeys")))
        say(out, "the proxy does not report hot keys: no advice from traffic");
    size_t i;
    json_array_foreach(json_object_get(proxy, "policy"), i, rule)
    {
        const char *kind = json_string_value(json_object_get(rule, "kind"));
        const char *name = json_string_value(json_object_get(rule, "name"));
        if (kind != NULL && name != NULL && strcmp(kind, "cache") == 0 &&
            strcmp(name, "default") != 0 && num(rule, "hits") + num(rule, "misses") == 0)
            say(out, "the proxy's cache rule %s matched no read", name);
    }
}

int advise_report(json_t *report, char *err, size_t errlen)
{
    json_t *patterns = json_object_get(report, "patterns"),
           *advice = json_object_get(report, "advice"), *taken = json_object(), *p;
    size_t i;
    if (!json_is_array(patterns) || !json_is_array(advice) || taken == NULL) {
        snprintf(err, errlen, "advise: the report has no patterns");
        json_decref(taken);
        return -1;
    }
    int rc = 0;
    json_array_foreach(patterns, i, p)
    {
        if (advise_pattern(p, taken) < 0)
            rc = -1;
    }
    json_decref(taken);
    advise_global(report, advice);
    if (rc < 0)
        snprintf(err, errlen, "out of memory");
    return rc;
}

/* Appends text to the growing buffer *buf (*len used, *cap allocated).
 * Returns 0 or -1 out of memory. */
static int put(char **buf, size_t *len, size_t *cap, const char *text, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t want = (*len + n + 1) * 2;
        char *b = realloc(*buf, want);
        if (b == NULL)
            return -1;
        *buf = b;
        *cap = want;
    }
    memcpy(*buf + *len, text, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

/* A YAML double-quoted scalar: '\' and '"' escaped, control bytes \xNN. */
static int put_quoted(char **buf, size_t *len, size_t *cap, const char *s)
{
    int rc = put(buf, len, cap, "\"", 1);
    for (; *s != '\0' && rc == 0; s++) {
        char esc[8];
        unsigned char c = (unsigned char)*s;
        if (c == '\\' || c == '"')
            rc = put(buf, len, cap, (char[]){'\\', (char)c}, 2);
        else if (c < 0x20 || c == 0x7f)
            rc = put(buf, len, cap, esc, (size_t)snprintf(esc, sizeof(esc), "\\x%02x", c));
        else
            rc = put(buf, len, cap, s, 1);
    }
    return rc == 0 ? put(buf, len, cap, "\"", 1) : -1;
}

/* One value in YAML flow style: objects as {k: v, ...}; the strings of
 * name and keys quoted, the others (durations, sizes) plain. */
static int put_value(char **buf, size_t *len, size_t *cap, const char *key, const json_t *v)
{
    char num_text[32];
    if (json_is_object(v)) {
        const char *k;
        json_t *item;
        int rc = put(buf, len, cap, "{", 1), first = 1;
        json_object_foreach((json_t *)v, k, item)
        {
            if (rc == 0 && !first)
                rc = put(buf, len, cap, ", ", 2);
            first = 0;
            if (rc == 0)
                rc = put(buf, len, cap, k, strlen(k));
            if (rc == 0)
                rc = put(buf, len, cap, ": ", 2);
            if (rc == 0)
                rc = put_value(buf, len, cap, k, item);
        }
        return rc == 0 ? put(buf, len, cap, "}", 1) : -1;
    }
    if (json_is_string(v) && (strcmp(key, "name") == 0 || strcmp(key, "keys") == 0))
        return put_quoted(buf, len, cap, json_string_value(v));
    if (json_is_string(v))
        return put(buf, len, cap, json_string_value(v), strlen(json_string_value(v)));
    if (json_is_boolean(v))
        return put(buf, len, cap, json_is_true(v) ? "true" : "false", json_is_true(v) ? 4 : 5);
    int n = snprintf(num_text, sizeof(num_text), "%lld", (long long)json_integer_value(v));
    return put(buf, len, cap, num_text, (size_t)n);
}

char *advise_policy(const json_t *report)
{
    const json_t *source = json_object_get(report, "source"),
                 *scan = json_object_get(report, "scan"), *p;
    char head[512], *buf = NULL;
    size_t len = 0, cap = 0, i, rules = 0;
    int n = snprintf(head, sizeof(head),
                     "# Written by `nearcache analyze` from %lld keys of %s. Review it, then\n"
                     "# put the policy: section in the proxy's config file (or use this one\n"
                     "# with -c); `nearcache --check-config -c FILE` validates it.\n"
                     "policy:\n  cache:\n",
                     (long long)num(scan, "keys"),
                     json_string_value(json_object_get(source, "address")));
    int rc = put(&buf, &len, &cap, head, n < (int)sizeof(head) ? (size_t)n : sizeof(head) - 1);
    json_array_foreach(json_object_get(report, "patterns"), i, p)
    {
        const json_t *rule = json_object_get(p, "rule");
        if (rc < 0 || !json_is_object(rule))
            continue;
        rc = put(&buf, &len, &cap, "    - ", 6);
        if (rc == 0)
            rc = put_value(&buf, &len, &cap, "", rule);
        if (rc == 0)
            rc = put(&buf, &len, &cap, "\n", 1);
        rules++;
    }
    if (rc == 0 && rules == 0)
        rc = put(&buf, &len, &cap, "    []\n", 7);
    if (rc < 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* config.c - nearcache settings: one option table drives the defaults, the
 * YAML file, the environment and --set.
 *
 * Every setting is a row of OPTIONS: its dotted name, its type, where it lives
 * in struct config, its range and its default in text form. A type is a
 * setter that turns text into the field (TYPES). The YAML file's nested
 * mappings name the settings by their dotted names (yaml.c walks them), so
 * a new scalar section ("cache:") needs only new rows.
 */
#include "config.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/rules.h"
#include "config/yaml.h"
#include "policy/policy.h"
#include "policy/users.h"

#define CONFIG_REASON_MAX 160  /* longest reason a setter writes */
#define CONFIG_UNIX_MAX   107  /* sizeof(sockaddr_un.sun_path) - 1 on Linux */
#define CONFIG_ERR_MAX    1024 /* longest error one_line rewrites */
#define CONFIG_ENV_PREFIX "NEARCACHE_"

#define KB      ((int64_t)1 << 10)
#define MB      ((int64_t)1 << 20)
#define GB      ((int64_t)1 << 30)
#define SEC_MS  1000
#define MIN_MS  (60 * SEC_MS)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS  (24 * HOUR_MS)

typedef enum {
    OPT_STRING,    /* char *, owned; empty or null text stores NULL */
    OPT_ADDRESS,   /* char *, owned; "host:port", "[v6]:port" or "/unix/path" */
    OPT_LIST,      /* char *, owned; comma-separated items, or in YAML a list of them */
    OPT_INT,       /* int, plain number */
    OPT_INT64,     /* int64_t, plain number */
    OPT_BYTES,     /* int64_t, number with an optional b/kb/mb/gb suffix */
    OPT_DURATION,  /* int milliseconds, number with an optional ms/s/m suffix */
    OPT_LOG_LEVEL, /* log_level_e */
    OPT_LOG_FMT,   /* log_format_e */
    OPT_BOOL,      /* bool: true/false, yes/no, on/off */
} opt_type_e;

struct option {
    const char *name; /* dotted name */
    opt_type_e type;  /* parser and storage */
    size_t offset;    /* of the field in struct config */
    int64_t min, max; /* numeric types: inclusive range after scaling */
    const char *dflt; /* default as text; NULL leaves a string unset */
    bool fixed;       /* a running proxy cannot change it: a reload keeps its value */
};

#define OFF(field) offsetof(struct config, field)
#define FIXED      true

/* The last column is FIXED for the settings a running proxy cannot change
 * (config_keep_fixed), 0 for those a reload applies. */
static const struct option OPTIONS[] = {
    {"listen", OPT_ADDRESS, OFF(listen), 0, 0, "127.0.0.1:6380", FIXED},
    {"workers", OPT_INT, OFF(workers), 0, 64, "0", FIXED},
    {"log_level", OPT_LOG_LEVEL, OFF(log_level), 0, 0, "notice", 0},
    {"log_format", OPT_LOG_FMT, OFF(log_format), 0, 0, "text", 0},
    {"upstream.address", OPT_ADDRESS, OFF(upstream), 0, 0, "127.0.0.1:6379", FIXED},
    {"upstream.username", OPT_STRING, OFF(upstream_username), 0, 0, NULL, FIXED},
    {"upstream.password", OPT_STRING, OFF(upstream_password), 0, 0, NULL, FIXED},
    {"upstream.database", OPT_INT, OFF(upstream_database), 0, INT_MAX, "0", FIXED},
    {"upstream.pool_size", OPT_INT, OFF(pool_size), 1, 256, "4", FIXED},
    {"upstream.idle_dedicated", OPT_INT, OFF(idle_dedicated), 0, 10000, "16", 0},
    {"upstream.connect_timeout", OPT_DURATION, OFF(connect_timeout_ms), 1, HOUR_MS, "1s", 0},
    {"upstream.timeout", OPT_DURATION, OFF(request_timeout_ms), 0, HOUR_MS, "5s", 0},
    {"upstream.reconnect_max", OPT_DURATION, OFF(reconnect_max_ms), 1, HOUR_MS, "2s", 0},
    {"upstream.tls", OPT_BOOL, OFF(upstream_tls), 0, 0, "false", FIXED},
    {"upstream.tls_ca_file", OPT_STRING, OFF(upstream_tls_ca_file), 0, 0, NULL, 0},
    {"upstream.tls_cert_file", OPT_STRING, OFF(upstream_tls_cert_file), 0, 0, NULL, 0},
    {"upstream.tls_key_file", OPT_STRING, OFF(upstream_tls_key_file), 0, 0, NULL, 0},
    {"upstream.tls_server_name", OPT_STRING, OFF(upstream_tls_server_name), 0, 0, NULL, FIXED},
    {"upstream.tls_verify", OPT_BOOL, OFF(upstream_tls_verify), 0, 0, "true", 0},
    {"upstream.sentinels", OPT_LIST, OFF(sentinels), 0, 0, NULL, FIXED},
    {"upstream.master_name", OPT_STRING, OFF(master_name), 0, 0, NULL, FIXED},
    {"upstream.sentinel_username", OPT_STRING, OFF(sentinel_username), 0, 0, NULL, FIXED},
    {"upstream.sentinel_password", OPT_STRING, OFF(sentinel_password), 0, 0, NULL, FIXED},
    {"upstream.cluster", OPT_LIST, OFF(cluster), 0, 0, NULL, FIXED},
    {"upstream.cluster_refresh", OPT_DURATION, OFF(cluster_refresh_ms), 100, HOUR_MS, "5s", 0},
    {"upstream.cluster_max_redirects", OPT_INT, OFF(cluster_max_redirects), 1, 16, "5", 0},
    {"tls.listen", OPT_STRING, OFF(tls_listen), 0, 0, NULL, FIXED},
    {"tls.cert_file", OPT_STRING, OFF(tls_cert_file), 0, 0, NULL, 0},
    {"tls.key_file", OPT_STRING, OFF(tls_key_file), 0, 0, NULL, 0},
    {"tls.ca_file", OPT_STRING, OFF(tls_ca_file), 0, 0, NULL, 0},
    {"tls.auth_clients", OPT_STRING, OFF(tls_auth_clients), 0, 0, "no", 0},
    {"clients.max", OPT_INT, OFF(max_clients), 1, 1000000, "10000", 0},
    {"clients.max_query_buffer", OPT_BYTES, OFF(max_query_buffer), KB, 4 * GB, "1gb", 0},
    {"clients.max_output_buffer", OPT_BYTES, OFF(max_output_buffer), 0, 64 * GB, "512mb", 0},
    {"clients.idle_timeout", OPT_DURATION, OFF(client_idle_timeout_ms), 0, 7 * DAY_MS, "0", 0},
    {"clients.password", OPT_STRING, OFF(clients_password), 0, 0, NULL, 0},
    {"limits.max_bulk_len", OPT_BYTES, OFF(max_bulk_len), 1, 4 * GB, "512mb", 0},
    {"limits.max_multibulk_len", OPT_INT64, OFF(max_multibulk_len), 1, INT32_MAX, "2147483647", 0},
    {"limits.max_inline_len", OPT_BYTES, OFF(max_inline_len), KB, GB, "64kb", 0},
    {"cache.enabled", OPT_BOOL, OFF(cache_enabled), 0, 0, "true", FIXED},
    {"cache.max_memory", OPT_BYTES, OFF(cache_max_memory), MB, 64 * GB, "64mb", FIXED},
    {"cache.max_entry", OPT_BYTES, OFF(cache_max_entry), 1, GB, "1mb", FIXED},
    {"cache.ttl", OPT_DURATION, OFF(cache_ttl_ms), 1, 7 * DAY_MS, "5m", 0},
    {"cache.tracking", OPT_BOOL, OFF(cache_tracking), 0, 0, "true", FIXED},
    {"cache.tracking_prefixes", OPT_LIST, OFF(cache_tracking_prefixes), 0, 0, NULL, FIXED},
    {"cache.audit_rate", OPT_INT, OFF(cache_audit_rate), 0, INT_MAX, "0", 0},
    {"hotkeys.sample", OPT_INT, OFF(hotkeys_sample), 0, 1000000, "32", 0},
    {"shutdown.drain_timeout", OPT_DURATION, OFF(drain_timeout_ms), 0, HOUR_MS, "5s", 0},
    {"admin.listen", OPT_STRING, OFF(admin_listen), 0, 0, "127.0.0.1:9470", FIXED},
    {"admin.token", OPT_STRING, OFF(admin_token), 0, 0, NULL, 0},
    {"watch_config", OPT_BOOL, OFF(watch_config), 0, 0, "false", FIXED},
};

#define OPTIONS_LEN (sizeof(OPTIONS) / sizeof(OPTIONS[0]))

/* Environment variables with the prefix that name no setting but are not
 * errors: main.c reads them itself. */
static const char *const ENV_RESERVED[] = {"NEARCACHE_CONFIG", "NEARCACHE_DEBUG", NULL};

/* ---- setters: text -> field ---------------------------------------------- */

struct unit {
    const char *suffix; /* matched case-insensitively */
    int64_t scale;
};

static const struct unit BYTE_UNITS[] = {{"b", 1}, {"kb", KB}, {"mb", MB}, {"gb", GB}, {NULL, 0}};
static const struct unit TIME_UNITS[] = {{"ms", 1}, {"s", SEC_MS}, {"m", MIN_MS}, {NULL, 0}};

/* Parses text into the field of opt in cfg. text NULL means a YAML null.
 * Returns 0, or -1 with a one-line reason. */
typedef int (*opt_set_fn)(struct config *cfg, const struct option *opt, const char *text,
                          char *reason, size_t len);

static int set_string(struct config *, const struct option *, const char *, char *, size_t);
static int set_address(struct config *, const struct option *, const char *, char *, size_t);
static int set_number(struct config *, const struct option *, const char *, char *, size_t);
static int set_log_level(struct config *, const struct option *, const char *, char *, size_t);
static int set_log_format(struct config *, const struct option *, const char *, char *, size_t);
static int set_bool(struct config *, const struct option *, const char *, char *, size_t);

struct opt_type {
    opt_set_fn set;
    const struct unit *units; /* numbers: accepted suffixes, NULL for none */
    size_t width;             /* numbers: sizeof the field */
    const char *expect;       /* reason when the text does not parse */
};

static const struct opt_type TYPES[] = {
    [OPT_STRING] = {set_string, NULL, 0, NULL},
    [OPT_ADDRESS] = {set_address, NULL, 0, "expected host:port, [ipv6]:port or /unix/path"},
    [OPT_LIST] = {set_string, NULL, 0, NULL},
    [OPT_INT] = {set_number, NULL, sizeof(int), "expected an integer"},
    [OPT_INT64] = {set_number, NULL, sizeof(int64_t), "expected an integer"},
    [OPT_BYTES] = {set_number, BYTE_UNITS, sizeof(int64_t), "expected a size like 64mb"},
    [OPT_DURATION] = {set_number, TIME_UNITS, sizeof(int), "expected a duration like 500ms"},
    [OPT_LOG_LEVEL] = {set_log_level, NULL, 0, "expected crit, error, warn, notice, info or debug"},
    [OPT_LOG_FMT] = {set_log_format, NULL, 0, "expected text or json"},
    [OPT_BOOL] = {set_bool, NULL, 0, "expected true or false"},
};

static void *field_of(struct config *cfg, const struct option *opt)
{
    return (char *)cfg + opt->offset;
}

static bool option_owns_string(const struct option *opt)
{
    return opt->type == OPT_STRING || opt->type == OPT_ADDRESS || opt->type == OPT_LIST;
}

/* Bytes of the field of a setting that is not a string. */
static size_t option_size(const struct option *opt)
{
    return opt->type == OPT_BOOL        ? sizeof(bool)
           : opt->type == OPT_LOG_LEVEL ? sizeof(log_level_e)
           : opt->type == OPT_LOG_FMT   ? sizeof(log_format_e)
                                        : TYPES[opt->type].width;
}

static bool has_control(const char *s)
{
    for (; *s != '\0'; s++) {
        if (iscntrl((unsigned char)*s))
            return true;
    }
    return false;
}

/* Rewrites the control bytes of err (errlen bytes) as \xHH, cutting it short
 * to fit: an error stays one line whatever bytes of the input it quotes. */
static void one_line(char *err, size_t errlen)
{
    char copy[CONFIG_ERR_MAX];
    size_t at = 0;
    if (!has_control(err))
        return;
    snprintf(copy, sizeof(copy), "%s", err);
    for (const char *p = copy; *p != '\0' && at + 1 < errlen; p++) {
        unsigned char c = (unsigned char)*p;
        if (!iscntrl(c))
            err[at++] = (char)c;
        else if (at + 4 < errlen)
            at += (size_t)snprintf(err + at, errlen - at, "\\x%02x", c);
        else
            break;
    }
    err[at] = '\0';
}

int config_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    config_verror(err, errlen, fmt, ap);
    va_end(ap);
    if (err != NULL && errlen > 0)
        one_line(err, errlen);
    return -1;
}

static int set_string(struct config *cfg, const struct option *opt, const char *text, char *reason,
                      size_t len)
{
    char **field = field_of(cfg, opt);
    char *copy = NULL;
    if (text != NULL && text[0] != '\0' && (copy = strdup(text)) == NULL)
        return config_fail(reason, len, "out of memory");
    free(*field);
    *field = copy;
    return 0;
}

enum { NUM_OK, NUM_JUNK, NUM_RANGE };

/* Returns the scale of suffix in units (1 for none), or 0 if unknown. */
static int64_t unit_scale(const char *suffix, const struct unit *units)
{
    if (suffix[0] == '\0')
        return 1;
    for (; units != NULL && units->suffix != NULL; units++) {
        if (strcasecmp(suffix, units->suffix) == 0)
            return units->scale;
    }
    return 0;
}

/* Parses "[-]digits[suffix]" into *out, scaled by the suffix's unit. Returns
 * NUM_OK, NUM_JUNK (not that shape) or NUM_RANGE (does not fit int64_t). */
static int parse_number(const char *text, const struct unit *units, int64_t *out)
{
    const char *p = text;
    bool negative = (*p == '-');
    bool big = false;
    int64_t v = 0;
    if (negative)
        p++;
    if (!isdigit((unsigned char)*p))
        return NUM_JUNK;
    for (; isdigit((unsigned char)*p); p++) {
        int digit = *p - '0';
        if (v > (INT64_MAX - digit) / 10)
            big = true;
        else
            v = v * 10 + digit;
    }
    int64_t scale = unit_scale(p, units);
    if (scale == 0)
        return NUM_JUNK;
    if (big || v > INT64_MAX / scale)
        return NUM_RANGE;
    *out = negative ? -(v * scale) : v * scale;
    return NUM_OK;
}

/* Writes v with the largest unit of units that divides it ("64kb", "60m"). */
static void format_amount(char *buf, size_t len, int64_t v, const struct unit *units)
{
    const struct unit *best = NULL;
    for (const struct unit *u = units; v != 0 && u != NULL && u->suffix != NULL; u++) {
        if (v % u->scale == 0)
            best = u;
    }
    snprintf(buf, len, "%lld%s", (long long)(best ? v / best->scale : v), best ? best->suffix : "");
}

/* Parses text as a number of type within [min, max] into *out. */
static int number_parse(const struct opt_type *type, const char *text, int64_t min, int64_t max,
                        int64_t *out, char *reason, size_t len)
{
    int64_t v = 0;
    if (text == NULL || text[0] == '\0')
        return config_fail(reason, len, "needs a value");
    int rc = parse_number(text, type->units, &v);
    if (rc == NUM_JUNK)
        return config_fail(reason, len, "%s", type->expect);
    if (rc == NUM_RANGE || v < min || v > max) {
        char lo[32], hi[32];
        format_amount(lo, sizeof(lo), min, type->units);
        format_amount(hi, sizeof(hi), max, type->units);
        return config_fail(reason, len, "must be between %s and %s", lo, hi);
    }
    *out = v;
    return 0;
}

int config_parse_amount(config_amount_e kind, const char *text, int64_t min, int64_t max,
                        int64_t *out, char *reason, size_t len)
{
    static const opt_type_e AS[] = {
        [CONFIG_NUMBER] = OPT_INT64,
        [CONFIG_BYTES] = OPT_BYTES,
        [CONFIG_DURATION] = OPT_DURATION,
    };
    return number_parse(&TYPES[AS[kind]], text, min, max, out, reason, len);
}

static int set_number(struct config *cfg, const struct option *opt, const char *text, char *reason,
                      size_t len)
{
    const struct opt_type *type = &TYPES[opt->type];
    int64_t v = 0;
    if (number_parse(type, text, opt->min, opt->max, &v, reason, len) != 0)
        return -1;
    if (type->width == sizeof(int))
        *(int *)field_of(cfg, opt) = (int)v;
    else
        *(int64_t *)field_of(cfg, opt) = v;
    return 0;
}

/* True if s[0..n) is non-empty and made only of characters in allowed or
 * alphanumerics. */
static bool host_chars_ok(const char *s, size_t n, const char *allowed)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && strchr(allowed, s[i]) == NULL)
            return false;
    }
    return true;
}

const char *config_address_check(const char *text)
{
    const char *expect = TYPES[OPT_ADDRESS].expect;
    const char *port;
    int64_t v = 0;
    if (text[0] == '/')
        return strlen(text) <= CONFIG_UNIX_MAX ? NULL : "unix socket path longer than 107 bytes";
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':' || memchr(text, ':', (size_t)(close - text)) == NULL ||
            !host_chars_ok(text + 1, (size_t)(close - text - 1), ":.%_-"))
            return expect;
        port = close + 2;
    } else {
        const char *colon = strchr(text, ':');
        if (colon == NULL || strchr(colon + 1, ':') != NULL ||
            !host_chars_ok(text, (size_t)(colon - text), ".-_"))
            return expect;
        port = colon + 1;
    }
    int rc = parse_number(port, NULL, &v);
    if (rc == NUM_JUNK)
        return expect;
    if (rc == NUM_RANGE || v < 1 || v > 65535)
        return "port must be between 1 and 65535";
    return NULL;
}

static int set_address(struct config *cfg, const struct option *opt, const char *text, char *reason,
                       size_t len)
{
    if (text == NULL || text[0] == '\0')
        return config_fail(reason, len, "needs a value");
    const char *why = config_address_check(text);
    if (why != NULL)
        return config_fail(reason, len, "%s", why);
    return set_string(cfg, opt, text, reason, len);
}

static int set_log_level(struct config *cfg, const struct option *opt, const char *text,
                         char *reason, size_t len)
{
    log_level_e level;
    if (text == NULL || text[0] == '\0')
        return config_fail(reason, len, "needs a value");
    if (log_level_parse(text, &level) != 0)
        return config_fail(reason, len, "%s", TYPES[opt->type].expect);
    *(log_level_e *)field_of(cfg, opt) = level;
    return 0;
}

static int set_log_format(struct config *cfg, const struct option *opt, const char *text,
                          char *reason, size_t len)
{
    log_format_e format;
    if (text == NULL || text[0] == '\0')
        return config_fail(reason, len, "needs a value");
    if (log_format_parse(text, &format) != 0)
        return config_fail(reason, len, "%s", TYPES[opt->type].expect);
    *(log_format_e *)field_of(cfg, opt) = format;
    return 0;
}

int config_parse_bool(const char *text, bool *out, char *reason, size_t len)
{
    static const struct {
        const char *word;
        bool value;
    } WORDS[] = {{"true", true},   {"yes", true}, {"on", true},
                 {"false", false}, {"no", false}, {"off", false}};
    for (size_t i = 0; text != NULL && i < sizeof(WORDS) / sizeof(WORDS[0]); i++) {
        if (strcasecmp(text, WORDS[i].word) == 0) {
            *out = WORDS[i].value;
            return 0;
        }
    }
    return config_fail(reason, len, "%s", TYPES[OPT_BOOL].expect);
}

static int set_bool(struct config *cfg, const struct option *opt, const char *text, char *reason,
                    size_t len)
{
    return config_parse_bool(text, (bool *)field_of(cfg, opt), reason, len);
}

static int option_apply(struct config *cfg, const struct option *opt, const char *text,
                        char *reason, size_t len)
{
    return TYPES[opt->type].set(cfg, opt, text, reason, len);
}

static const struct option *option_find(const char *name)
{
    for (size_t i = 0; i < OPTIONS_LEN; i++) {
        if (strcmp(OPTIONS[i].name, name) == 0)
            return &OPTIONS[i];
    }
    return NULL;
}

/* True if some option's name starts with "name.". */
static bool option_is_section(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < OPTIONS_LEN; i++) {
        if (strncmp(OPTIONS[i].name, name, n) == 0 && OPTIONS[i].name[n] == '.')
            return true;
    }
    return false;
}

/* ---- whole-config helpers ------------------------------------------------ */

void config_init(struct config *cfg)
{
    char reason[CONFIG_REASON_MAX];
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < OPTIONS_LEN; i++) {
        if (OPTIONS[i].dflt != NULL &&
            option_apply(cfg, &OPTIONS[i], OPTIONS[i].dflt, reason, sizeof(reason)) != 0)
            abort(); /* out of memory, or a default the table itself rejects */
    }
}

bool config_client_auth(const struct config *cfg)
{
    return cfg->clients_password != NULL || users_count(cfg->users) > 0;
}

void config_deinit(struct config *cfg)
{
    for (size_t i = 0; i < OPTIONS_LEN; i++) {
        if (option_owns_string(&OPTIONS[i]))
            free(*(char **)field_of(cfg, &OPTIONS[i]));
    }
    policy_destroy(&cfg->policy);
    users_destroy(&cfg->users);
    memset(cfg, 0, sizeof(*cfg));
}

/* Makes dst a copy of src, to be changed and then committed (config_commit)
 * or dropped (config_drop). Strings are deep copies. The policy and the
 * users, which cannot be copied, are shared: they stay src's until the
 * commit, so whatever replaces them in dst must not free them. Returns 0, or -1 (dst left empty)
 * when out of memory. */
static int config_copy(struct config *dst, const struct config *src)
{
    bool failed = false;
    *dst = *src;
    for (size_t i = 0; i < OPTIONS_LEN; i++) {
        char **field = field_of(dst, &OPTIONS[i]);
        if (!option_owns_string(&OPTIONS[i]) || *field == NULL)
            continue;
        *field = failed ? NULL : strdup(*field); /* after a failure, only drop src's */
        failed = failed || *field == NULL;
    }
    if (failed) {
        dst->policy = NULL; /* src's */
        dst->users = NULL;
        config_deinit(dst);
    }
    return failed ? -1 : 0;
}

/* Replaces cfg with next, a copy of it, which cfg then owns: cfg's policy and
 * users are destroyed unless next still shares them. */
static void config_commit(struct config *cfg, struct config *next)
{
    if (cfg->policy == next->policy)
        cfg->policy = NULL; /* passes to next */
    if (cfg->users == next->users)
        cfg->users = NULL;
    config_deinit(cfg);
    *cfg = *next;
}

/* Frees next, a copy of cfg that is not committed, but not the policy and
 * users it still shares with cfg. */
static void config_drop(struct config *next, const struct config *cfg)
{
    if (next->policy == cfg->policy)
        next->policy = NULL;
    if (next->users == cfg->users)
        next->users = NULL;
    config_deinit(next);
}

void config_keep_fixed(struct config *next, struct config *cur,
                       void (*changed)(void *arg, const char *name), void *arg)
{
    for (const struct option *opt = OPTIONS; opt < OPTIONS + OPTIONS_LEN; opt++) {
        if (!opt->fixed)
            continue;
        char *a = field_of(cur, opt), *b = field_of(next, opt);
        bool differs;
        if (option_owns_string(opt)) {
            char *sa = *(char **)a, *sb = *(char **)b;
            differs = (sa == NULL) != (sb == NULL) || (sa != NULL && strcmp(sa, sb) != 0);
            *(char **)a = sb;
            *(char **)b = sa;
        } else {
            differs = memcmp(a, b, option_size(opt)) != 0;
            memcpy(b, a, option_size(opt));
        }
        if (differs)
            changed(arg, opt->name);
    }
}

/* ---- YAML file (the walk and the sections: yaml.c) ----------------------- */

/* Applies the value of the dotted key to cfg, the copy being filled
 * (config_yaml_entry_fn). */
static int yaml_load_entry(const struct config_yaml *y, const char *key, yaml_node_t *knode,
                           yaml_node_t *value, struct config *cfg)
{
    char reason[CONFIG_REASON_MAX];
    const struct option *opt = option_find(key);
    const char *text = NULL, *why;
    char *joined = NULL;
    if (opt == NULL && option_is_section(key))
        return CONFIG_YAML_GROUP;
    if (opt == NULL)
        return config_yaml_fail(y, knode, key, "unknown key");
    if (opt->type == OPT_LIST && value->type == YAML_SEQUENCE_NODE) {
        why = config_yaml_list(y->doc, value, &joined);
        text = joined;
    } else {
        why = config_yaml_value(value, &text);
        text = config_yaml_null(value) ? NULL : text;
    }
    int rc = 0;
    if (why != NULL)
        rc = config_yaml_fail(y, value, opt->name, "%s", why);
    else if (option_apply(cfg, opt, text, reason, sizeof(reason)) != 0)
        rc = config_yaml_fail(y, value, opt->name, "%s", reason);
    free(joined);
    return rc;
}

/* Applies doc over cfg, all or nothing. */
static int yaml_apply(struct config *cfg, yaml_document_t *doc, const char *path, char *err,
                      size_t errlen)
{
    struct config next;
    yaml_node_t *root = yaml_document_get_root_node(doc);
    if (root == NULL || config_yaml_null(root))
        return 0;
    if (root->type != YAML_MAPPING_NODE)
        return config_fail(err, errlen, "%s:%zu: yaml: expected a mapping of settings", path,
                           root->start_mark.line + 1);
    if (config_copy(&next, cfg) != 0)
        return config_fail(err, errlen, "%s: out of memory", path);
    struct config_yaml y = {path, doc, err, errlen};
    if (config_yaml_walk(&y, root, yaml_load_entry, &next) != 0) {
        config_drop(&next, cfg);
        return -1;
    }
    config_commit(cfg, &next);
    return 0;
}

/* Applies doc, which config_yaml_read_* returned rc for, over cfg and
 * deletes it. yaml.c and policy_yaml.c quote the file's bytes as they are:
 * an error is made one line here, as config's own are. */
static int yaml_load(struct config *cfg, int rc, yaml_document_t *doc, const char *name, char *err,
                     size_t errlen)
{
    if (rc == 0) {
        rc = yaml_apply(cfg, doc, name, err, errlen);
        yaml_document_delete(doc);
    }
    if (rc != 0 && err != NULL && errlen > 0)
        one_line(err, errlen);
    return rc;
}

int config_load_file(struct config *cfg, const char *path, char *err, size_t errlen)
{
    yaml_document_t doc;
    int rc = config_yaml_read_file(path, &doc, err, errlen);
    return yaml_load(cfg, rc, &doc, path, err, errlen);
}

int config_load_buffer(struct config *cfg, const char *text, size_t len, const char *name,
                       char *err, size_t errlen)
{
    yaml_document_t doc;
    int rc = config_yaml_read_buffer(text, len, name, &doc, err, errlen);
    return yaml_load(cfg, rc, &doc, name, err, errlen);
}

/* ---- environment and flags ----------------------------------------------- */

/* True if the variable name[0..n) is opt's: "NEARCACHE_" + the dotted name
 * uppercased with '.' as '_'. */
static bool env_names(const char *name, size_t n, const struct option *opt)
{
    size_t plen = strlen(CONFIG_ENV_PREFIX);
    if (n != plen + strlen(opt->name))
        return false;
    for (size_t i = 0; i < n - plen; i++) {
        char c = opt->name[i] == '.' ? '_' : (char)toupper((unsigned char)opt->name[i]);
        if (name[plen + i] != c)
            return false;
    }
    return true;
}

static bool env_reserved(const char *name, size_t n)
{
    for (size_t i = 0; ENV_RESERVED[i] != NULL; i++) {
        if (strlen(ENV_RESERVED[i]) == n && strncmp(ENV_RESERVED[i], name, n) == 0)
            return true;
    }
    return false;
}

/* Applies one "NAME=value" entry of the environment to cfg. */
static int env_apply(struct config *cfg, const char *entry, char *err, size_t errlen)
{
    char reason[CONFIG_REASON_MAX];
    const char *eq = strchr(entry, '=');
    size_t n = eq != NULL ? (size_t)(eq - entry) : strlen(entry);
    if (strncmp(entry, CONFIG_ENV_PREFIX, strlen(CONFIG_ENV_PREFIX)) != 0 || env_reserved(entry, n))
        return 0;
    for (size_t i = 0; i < OPTIONS_LEN; i++) {
        if (!env_names(entry, n, &OPTIONS[i]))
            continue;
        if (option_apply(cfg, &OPTIONS[i], eq != NULL ? eq + 1 : "", reason, sizeof(reason)))
            return config_fail(err, errlen, "%.*s: %s: %s", (int)n, entry, OPTIONS[i].name, reason);
        return 0;
    }
    return config_fail(err, errlen, "%.*s: unknown setting", (int)n, entry);
}

int config_load_env(struct config *cfg, char *const *envp, char *err, size_t errlen)
{
    struct config next;
    if (config_copy(&next, cfg) != 0)
        return config_fail(err, errlen, "environment: out of memory");
    for (size_t i = 0; envp != NULL && envp[i] != NULL; i++) {
        if (env_apply(&next, envp[i], err, errlen) != 0) {
            config_drop(&next, cfg);
            return -1;
        }
    }
    config_commit(cfg, &next);
    return 0;
}

int config_set(struct config *cfg, const char *key, const char *value, char *err, size_t errlen)
{
    char reason[CONFIG_REASON_MAX];
    const struct option *opt = option_find(key);
    if (opt == NULL)
        return config_fail(err, errlen, "%s: unknown setting", key);
    if (option_apply(cfg, opt, value, reason, sizeof(reason)) != 0)
        return config_fail(err, errlen, "%s: %s", key, reason);
    return 0;
}

/* Writes the value of opt in cfg as text into buf. */
static void option_text(const struct config *cfg, const struct option *opt, char *buf, size_t len)
{
    const void *field = (const char *)cfg + opt->offset;
    switch (opt->type) {
    case OPT_INT:
        snprintf(buf, len, "%d", *(const int *)field);
        break;
    case OPT_INT64:
        snprintf(buf, len, "%lld", (long long)*(const int64_t *)field);
        break;
    case OPT_BYTES:
        format_amount(buf, len, *(const int64_t *)field, BYTE_UNITS);
        break;
    case OPT_DURATION:
        format_amount(buf, len, *(const int *)field, TIME_UNITS);
        break;
    case OPT_LOG_LEVEL:
        snprintf(buf, len, "%s", log_level_name(*(const log_level_e *)field));
        break;
    case OPT_LOG_FMT:
        snprintf(buf, len, "%s", log_format_name(*(const log_format_e *)field));
        break;
    case OPT_BOOL:
        snprintf(buf, len, "%s", *(const bool *)field ? "true" : "false");
        break;
    default: /* strings: config_describe passes them as they are */
        buf[0] = '\0';
    }
}

void config_describe(const struct config *cfg,
                     void (*fn)(void *arg, const char *name, const char *value), void *arg)
{
    for (const struct option *opt = OPTIONS; opt < OPTIONS + OPTIONS_LEN; opt++) {
        char text[64];
        const char *value = text;
        if (option_owns_string(opt)) {
            value = *(char *const *)((const char *)cfg + opt->offset);
            /* secrets are the settings named so: upstream.password, admin.token... */
            if (value != NULL && (strstr(opt->name, "password") || strstr(opt->name, "token")))
                value = "<redacted>";
        } else {
            option_text(cfg, opt, text, sizeof(text));
        }
        fn(arg, opt->name, value);
    }
}

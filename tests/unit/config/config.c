/* tests/unit/config.c - settings: defaults, every option's accepted and
 * rejected text through --set, the environment and the YAML file, the file's
 * structure errors with their lines, atomicity, precedence and cross-field
 * rules. Fields are read back through a table of their own, so a setting
 * stored in the wrong field fails too.
 */
#include <criterion/criterion.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

#include "tests/unit/leaks.h"
#include "tests/unit/yaml_file.h"

#define ERRLEN 512

TestSuite(config, .fini = check_leaks);

/* ---- reading fields back ------------------------------------------------- */

typedef enum { F_STR, F_INT, F_I64, F_LEVEL, F_BOOL } field_kind_e;

struct field {
    const char *key;
    size_t offset;
    field_kind_e kind;
};

#define F(key, member, kind)                                                                       \
    {                                                                                              \
        key, offsetof(struct config, member), kind                                                 \
    }

static const struct field FIELDS[] = {
    F("listen", listen, F_STR),
    F("log_level", log_level, F_LEVEL),
    F("upstream.address", upstream, F_STR),
    F("upstream.username", upstream_username, F_STR),
    F("upstream.password", upstream_password, F_STR),
    F("upstream.database", upstream_database, F_INT),
    F("upstream.pool_size", pool_size, F_INT),
    F("upstream.idle_dedicated", idle_dedicated, F_INT),
    F("upstream.connect_timeout", connect_timeout_ms, F_INT),
    F("upstream.timeout", request_timeout_ms, F_INT),
    F("upstream.reconnect_max", reconnect_max_ms, F_INT),
    F("clients.max", max_clients, F_INT),
    F("clients.max_query_buffer", max_query_buffer, F_I64),
    F("clients.max_output_buffer", max_output_buffer, F_I64),
    F("clients.idle_timeout", client_idle_timeout_ms, F_INT),
    F("limits.max_bulk_len", max_bulk_len, F_I64),
    F("limits.max_multibulk_len", max_multibulk_len, F_I64),
    F("limits.max_inline_len", max_inline_len, F_I64),
    F("cache.enabled", cache_enabled, F_BOOL),
    F("cache.max_memory", cache_max_memory, F_I64),
    F("cache.max_entry", cache_max_entry, F_I64),
    F("cache.ttl", cache_ttl_ms, F_INT),
    F("cache.tracking", cache_tracking, F_BOOL),
    F("cache.tracking_prefixes", cache_tracking_prefixes, F_STR),
    F("shutdown.drain_timeout", drain_timeout_ms, F_INT),
};

#define FIELDS_LEN (sizeof(FIELDS) / sizeof(FIELDS[0]))

static const char *const LEVELS[] = {"crit", "error", "warn", "notice", "info", "debug"};

/* Renders a field as text: the string or "(null)", a number in decimal, a
 * level by name. */
static void field_text(const struct config *cfg, const struct field *f, char *buf, size_t len)
{
    const void *p = (const char *)cfg + f->offset;
    switch (f->kind) {
    case F_STR:
        snprintf(buf, len, "%s", *(char *const *)p ? *(char *const *)p : "(null)");
        break;
    case F_INT:
        snprintf(buf, len, "%d", *(const int *)p);
        break;
    case F_I64:
        snprintf(buf, len, "%lld", (long long)*(const int64_t *)p);
        break;
    case F_LEVEL:
        snprintf(buf, len, "%s", LEVELS[*(const log_level_e *)p]);
        break;
    case F_BOOL:
        snprintf(buf, len, "%s", *(const bool *)p ? "true" : "false");
        break;
    }
}

static const struct field *field_find(const char *key)
{
    for (size_t i = 0; i < FIELDS_LEN; i++) {
        if (strcmp(FIELDS[i].key, key) == 0)
            return &FIELDS[i];
    }
    cr_assert_fail("no field %s in the test table", key);
    return NULL;
}

static void expect_field(const struct config *cfg, const char *key, const char *want,
                         const char *how)
{
    char got[128];
    field_text(cfg, field_find(key), got, sizeof(got));
    cr_expect_str_eq(got, want, "%s: %s is %s, want %s", how, key, got, want);
}

/* Expects every field of a and b to be equal. */
static void expect_same(const struct config *a, const struct config *b, const char *how)
{
    for (size_t i = 0; i < FIELDS_LEN; i++) {
        char x[128], y[128];
        field_text(a, &FIELDS[i], x, sizeof(x));
        field_text(b, &FIELDS[i], y, sizeof(y));
        cr_expect_str_eq(x, y, "%s: %s changed from %s to %s", how, FIELDS[i].key, y, x);
    }
}

/* ---- the three ways in --------------------------------------------------- */

/* Loads text over cfg from a temp file (path receives its name). */
static int load_text(struct config *cfg, const char *text, char *path, size_t pathlen, char *err)
{
    return load_text_file(cfg, text, path, pathlen, err, ERRLEN);
}

/* "upstream.pool_size" -> "NEARCACHE_UPSTREAM_POOL_SIZE". */
static void env_name(const char *key, char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "NEARCACHE_%s", key);
    for (size_t i = strlen("NEARCACHE_"); i < n && i < len; i++)
        buf[i] = buf[i] == '.' ? '_' : (char)toupper((unsigned char)buf[i]);
}

static int load_env1(struct config *cfg, const char *key, const char *value, char *var,
                     size_t varlen, char *err)
{
    char entry[256];
    env_name(key, var, varlen);
    snprintf(entry, sizeof(entry), "%s=%s", var, value);
    char *envp[] = {"PATH=/usr/bin", entry, NULL};
    return config_load_env(cfg, envp, err, ERRLEN);
}

/* The YAML of one setting, its value single-quoted; *line is the value's. */
static void yaml_of(const char *key, const char *value, char *buf, size_t len, int *line)
{
    const char *dot = strchr(key, '.');
    if (dot == NULL) {
        snprintf(buf, len, "%s: '%s'\n", key, value);
        *line = 1;
    } else {
        snprintf(buf, len, "%.*s:\n  %s: '%s'\n", (int)(dot - key), key, dot + 1, value);
        *line = 2;
    }
}

/* The defaults, with both optional strings set so that unsetting shows. */
static void init_with_strings(struct config *cfg)
{
    char err[ERRLEN];
    config_init(cfg);
    cr_assert_eq(config_set(cfg, "upstream.username", "old", err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(config_set(cfg, "upstream.password", "old", err, sizeof(err)), 0, "%s", err);
}

/* ---- defaults ------------------------------------------------------------ */

struct kv {
    const char *key;
    const char *value;
};

static const struct kv DEFAULTS[] = {
    {"listen", "127.0.0.1:6380"},
    {"log_level", "notice"},
    {"upstream.address", "127.0.0.1:6379"},
    {"upstream.username", "(null)"},
    {"upstream.password", "(null)"},
    {"upstream.database", "0"},
    {"upstream.pool_size", "4"},
    {"upstream.idle_dedicated", "16"},
    {"upstream.connect_timeout", "1000"},
    {"upstream.timeout", "5000"},
    {"upstream.reconnect_max", "2000"},
    {"clients.max", "10000"},
    {"clients.max_query_buffer", "1073741824"},
    {"clients.max_output_buffer", "536870912"},
    {"clients.idle_timeout", "0"},
    {"limits.max_bulk_len", "536870912"},
    {"limits.max_multibulk_len", "2147483647"},
    {"limits.max_inline_len", "65536"},
    {"cache.enabled", "true"},
    {"cache.max_memory", "67108864"},
    {"cache.max_entry", "1048576"},
    {"cache.ttl", "300000"},
    {"cache.tracking", "true"},
    {"cache.tracking_prefixes", "(null)"},
    {"shutdown.drain_timeout", "5000"},
};

Test(config, defaults)
{
    struct config cfg;
    char err[ERRLEN];
    config_init(&cfg);
    cr_assert_eq(sizeof(DEFAULTS) / sizeof(DEFAULTS[0]), FIELDS_LEN);
    for (size_t i = 0; i < FIELDS_LEN; i++)
        expect_field(&cfg, DEFAULTS[i].key, DEFAULTS[i].value, "default");
    cr_expect_eq(config_validate(&cfg, err, sizeof(err)), 0, "defaults invalid: %s", err);
    config_deinit(&cfg);
}

Test(config, deinit_zeroes)
{
    struct config cfg, zero;
    char err[ERRLEN];
    memset(&zero, 0, sizeof(zero));
    config_init(&cfg);
    cr_assert_eq(config_set(&cfg, "upstream.password", "pw", err, sizeof(err)), 0);
    config_deinit(&cfg);
    cr_expect_null(cfg.listen);
    cr_expect_null(cfg.upstream_password);
    cr_expect_eq(memcmp(&cfg, &zero, sizeof(cfg)), 0);
}

/* ---- each option's accepted forms ---------------------------------------- */

struct good_case {
    const char *key;
    const char *text; /* as given */
    const char *want; /* the field, rendered */
};

static const struct good_case GOOD[] = {
    {"listen", "127.0.0.1:6380", "127.0.0.1:6380"},
    {"listen", "localhost:1", "localhost:1"},
    {"listen", "cache-1.internal:65535", "cache-1.internal:65535"},
    {"listen", "[::1]:7000", "[::1]:7000"},
    {"listen", "[fe80::1%eth0]:7000", "[fe80::1%eth0]:7000"},
    {"listen", "/run/nearcache.sock", "/run/nearcache.sock"},
    {"log_level", "debug", "debug"},
    {"log_level", "WARN", "warn"},
    {"log_level", "Crit", "crit"},
    {"log_level", "error", "error"},
    {"log_level", "info", "info"},
    {"log_level", "notice", "notice"},
    {"upstream.address", "10.0.0.5:7000", "10.0.0.5:7000"},
    {"upstream.address", "[2001:db8::5]:6379", "[2001:db8::5]:6379"},
    {"upstream.address", "/var/run/redis/redis.sock", "/var/run/redis/redis.sock"},
    {"upstream.username", "app", "app"},
    {"upstream.username", "", "(null)"},
    {"upstream.password", "s3cr: et ~#", "s3cr: et ~#"},
    {"upstream.password", "", "(null)"},
    {"upstream.database", "0", "0"},
    {"upstream.database", "15", "15"},
    {"upstream.database", "2147483647", "2147483647"},
    {"upstream.pool_size", "1", "1"},
    {"upstream.pool_size", "256", "256"},
    {"upstream.pool_size", "008", "8"},
    {"upstream.idle_dedicated", "0", "0"},
    {"upstream.idle_dedicated", "10000", "10000"},
    {"upstream.connect_timeout", "1", "1"},
    {"upstream.connect_timeout", "1ms", "1"},
    {"upstream.connect_timeout", "250MS", "250"},
    {"upstream.connect_timeout", "2s", "2000"},
    {"upstream.connect_timeout", "3S", "3000"},
    {"upstream.connect_timeout", "1m", "60000"},
    {"upstream.connect_timeout", "60m", "3600000"},
    {"upstream.connect_timeout", "3600000", "3600000"},
    {"upstream.timeout", "0", "0"},
    {"upstream.timeout", "0s", "0"},
    {"upstream.timeout", "3600s", "3600000"},
    {"upstream.reconnect_max", "1", "1"},
    {"upstream.reconnect_max", "30s", "30000"},
    {"clients.max", "1", "1"},
    {"clients.max", "1000000", "1000000"},
    {"clients.max_query_buffer", "1kb", "1024"},
    {"clients.max_query_buffer", "1024", "1024"},
    {"clients.max_query_buffer", "2048b", "2048"},
    {"clients.max_query_buffer", "16Mb", "16777216"},
    {"clients.max_query_buffer", "1GB", "1073741824"},
    {"clients.max_query_buffer", "4gb", "4294967296"},
    {"clients.max_output_buffer", "0", "0"},
    {"clients.max_output_buffer", "0mb", "0"},
    {"clients.max_output_buffer", "100", "100"},
    {"clients.max_output_buffer", "64gb", "68719476736"},
    {"clients.idle_timeout", "0", "0"},
    {"clients.idle_timeout", "300s", "300000"},
    {"clients.idle_timeout", "10080m", "604800000"},
    {"limits.max_bulk_len", "1", "1"},
    {"limits.max_bulk_len", "512mb", "536870912"},
    {"limits.max_bulk_len", "4gb", "4294967296"},
    {"limits.max_multibulk_len", "1", "1"},
    {"limits.max_multibulk_len", "2147483647", "2147483647"},
    {"limits.max_inline_len", "1kb", "1024"},
    {"limits.max_inline_len", "65536", "65536"},
    {"limits.max_inline_len", "1gb", "1073741824"},
    {"cache.enabled", "false", "false"},
    {"cache.enabled", "On", "true"},
    {"cache.tracking", "no", "false"},
    {"cache.max_memory", "1mb", "1048576"},
    {"cache.ttl", "1s", "1000"},
    {"shutdown.drain_timeout", "0", "0"},
    {"shutdown.drain_timeout", "30s", "30000"},
    {"shutdown.drain_timeout", "60m", "3600000"},
};

/* Each accepted form gives the same field through --set, env and file. */
static void check_accepts(const struct good_case *c)
{
    struct config cfg;
    char err[ERRLEN], how[ERRLEN], var[128], path[256], yaml[256];
    int line;

    init_with_strings(&cfg);
    snprintf(how, sizeof(how), "set %s=%s", c->key, c->text);
    cr_expect_eq(config_set(&cfg, c->key, c->text, err, sizeof(err)), 0, "%s: %s", how, err);
    expect_field(&cfg, c->key, c->want, how);
    config_deinit(&cfg);

    init_with_strings(&cfg);
    cr_expect_eq(load_env1(&cfg, c->key, c->text, var, sizeof(var), err), 0, "env: %s", err);
    snprintf(how, sizeof(how), "env %s=%s", var, c->text);
    expect_field(&cfg, c->key, c->want, how);
    config_deinit(&cfg);

    init_with_strings(&cfg);
    yaml_of(c->key, c->text, yaml, sizeof(yaml), &line);
    snprintf(how, sizeof(how), "file %s", yaml);
    cr_expect_eq(load_text(&cfg, yaml, path, sizeof(path), err), 0, "%s: %s", how, err);
    expect_field(&cfg, c->key, c->want, how);
    config_deinit(&cfg);
}

Test(config, accepts)
{
    for (size_t i = 0; i < sizeof(GOOD) / sizeof(GOOD[0]); i++)
        check_accepts(&GOOD[i]);
}

/* ---- each option's rejected forms ---------------------------------------- */

struct bad_case {
    const char *key;
    const char *text;
    const char *reason;
};

#define ADDR_EXPECT "expected host:port, [ipv6]:port or /unix/path"
#define PORT_RANGE  "port must be between 1 and 65535"
#define INT_EXPECT  "expected an integer"
#define SIZE_EXPECT "expected a size like 64mb"
#define TIME_EXPECT "expected a duration like 500ms"
#define LONG_PATH                                                                                  \
    "/tmp/"                                                                                        \
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"     \
    "aaaaaaaaaaaaaaaaa"

static const struct bad_case BAD[] = {
    {"listen", "", "needs a value"},
    {"listen", "localhost", ADDR_EXPECT},
    {"listen", "localhost:", ADDR_EXPECT},
    {"listen", ":6380", ADDR_EXPECT},
    {"listen", "my host:6380", ADDR_EXPECT},
    {"listen", "::1:6380", ADDR_EXPECT},
    {"listen", "[::1]6380", ADDR_EXPECT},
    {"listen", "[]:6380", ADDR_EXPECT},
    {"listen", "[::1:6380", ADDR_EXPECT},
    {"listen", "relative/nc.sock", ADDR_EXPECT},
    {"listen", "host:http", ADDR_EXPECT},
    {"listen", "host:80x", ADDR_EXPECT},
    {"listen", "host:0", PORT_RANGE},
    {"listen", "host:65536", PORT_RANGE},
    {"listen", "host:-1", PORT_RANGE},
    {"listen", "host:99999999999999999999999", PORT_RANGE},
    {"listen", LONG_PATH, "unix socket path longer than 107 bytes"},
    {"upstream.address", "", "needs a value"},
    {"upstream.address", "[::1]:0", PORT_RANGE},
    {"upstream.address", "redis", ADDR_EXPECT},
    {"log_level", "", "needs a value"},
    {"log_level", "verbose", "expected crit, error, warn, notice, info or debug"},
    {"log_level", "5", "expected crit, error, warn, notice, info or debug"},
    {"log_level", "debug ", "expected crit, error, warn, notice, info or debug"},
    {"upstream.database", "", "needs a value"},
    {"upstream.database", "-1", "must be between 0 and 2147483647"},
    {"upstream.database", "2147483648", "must be between 0 and 2147483647"},
    {"upstream.database", "99999999999999999999", "must be between 0 and 2147483647"},
    {"upstream.database", "1x", INT_EXPECT},
    {"upstream.database", "1kb", INT_EXPECT},
    {"upstream.database", "1.5", INT_EXPECT},
    {"upstream.database", "+1", INT_EXPECT},
    {"upstream.database", " 1", INT_EXPECT},
    {"upstream.database", "1 ", INT_EXPECT},
    {"upstream.database", "0x10", INT_EXPECT},
    {"upstream.database", "-", INT_EXPECT},
    {"upstream.pool_size", "0", "must be between 1 and 256"},
    {"upstream.pool_size", "257", "must be between 1 and 256"},
    {"upstream.pool_size", "-4", "must be between 1 and 256"},
    {"upstream.pool_size", "four", INT_EXPECT},
    {"upstream.pool_size", "18446744073709551621", "must be between 1 and 256"}, /* 2^64 + 5 */
    {"upstream.idle_dedicated", "10001", "must be between 0 and 10000"},
    {"upstream.idle_dedicated", "-1", "must be between 0 and 10000"},
    {"upstream.connect_timeout", "", "needs a value"},
    {"upstream.connect_timeout", "0", "must be between 1ms and 60m"},
    {"upstream.connect_timeout", "0s", "must be between 1ms and 60m"},
    {"upstream.connect_timeout", "61m", "must be between 1ms and 60m"},
    {"upstream.connect_timeout", "3600001", "must be between 1ms and 60m"},
    {"upstream.connect_timeout", "-1s", "must be between 1ms and 60m"},
    {"upstream.connect_timeout", "9999999999999999999m", "must be between 1ms and 60m"},
    {"upstream.connect_timeout", "99999999999999m", "must be between 1ms and 60m"},
    {"upstream.connect_timeout", "1h", TIME_EXPECT},
    {"upstream.connect_timeout", "5sec", TIME_EXPECT},
    {"upstream.connect_timeout", "5 s", TIME_EXPECT},
    {"upstream.connect_timeout", "1.5s", TIME_EXPECT},
    {"upstream.connect_timeout", "s", TIME_EXPECT},
    {"upstream.connect_timeout", "1kb", TIME_EXPECT},
    {"upstream.timeout", "3601s", "must be between 0 and 60m"},
    {"upstream.timeout", "-1", "must be between 0 and 60m"},
    {"upstream.reconnect_max", "0ms", "must be between 1ms and 60m"},
    {"clients.max", "0", "must be between 1 and 1000000"},
    {"clients.max", "1000001", "must be between 1 and 1000000"},
    {"clients.max_query_buffer", "", "needs a value"},
    {"clients.max_query_buffer", "1023", "must be between 1kb and 4gb"},
    {"clients.max_query_buffer", "4097mb", "must be between 1kb and 4gb"},
    {"clients.max_query_buffer", "-1kb", "must be between 1kb and 4gb"},
    {"clients.max_query_buffer", "8589934592gb", "must be between 1kb and 4gb"},
    {"clients.max_query_buffer", "17179869185gb", "must be between 1kb and 4gb"}, /* 2^64 + 1gb */
    {"clients.max_query_buffer", "99999999999999999999", "must be between 1kb and 4gb"},
    {"clients.max_query_buffer", "1tb", SIZE_EXPECT},
    {"clients.max_query_buffer", "1k", SIZE_EXPECT},
    {"clients.max_query_buffer", "1kib", SIZE_EXPECT},
    {"clients.max_query_buffer", "1 kb", SIZE_EXPECT},
    {"clients.max_query_buffer", "kb", SIZE_EXPECT},
    {"clients.max_query_buffer", "1s", SIZE_EXPECT},
    {"clients.max_output_buffer", "65gb", "must be between 0 and 64gb"},
    {"clients.max_output_buffer", "-1", "must be between 0 and 64gb"},
    {"clients.idle_timeout", "10081m", "must be between 0 and 10080m"},
    {"clients.idle_timeout", "1d", TIME_EXPECT},
    {"limits.max_bulk_len", "0", "must be between 1b and 4gb"},
    {"limits.max_bulk_len", "4gb1", SIZE_EXPECT},
    {"limits.max_multibulk_len", "0", "must be between 1 and 2147483647"},
    {"limits.max_multibulk_len", "2147483648", "must be between 1 and 2147483647"},
    {"limits.max_multibulk_len", "1kb", INT_EXPECT},
    {"limits.max_inline_len", "1023b", "must be between 1kb and 1gb"},
    {"limits.max_inline_len", "2gb", "must be between 1kb and 1gb"},
    {"cache.enabled", "maybe", "expected true or false"},
    {"cache.tracking", "1", "expected true or false"},
    {"cache.max_memory", "1kb", "must be between 1mb and 64gb"},
    {"cache.ttl", "0", "must be between 1ms and 10080m"},
    {"shutdown.drain_timeout", "-1", "must be between 0 and 60m"},
    {"shutdown.drain_timeout", "1000000000000000000000", "must be between 0 and 60m"},
};

/* Each rejected form gives the same reason through --set, env and file, in
 * each one's format, and leaves the config as it was. */
static void check_rejects(const struct bad_case *c)
{
    struct config cfg, ref;
    char err[ERRLEN], want[ERRLEN], how[ERRLEN], var[128], path[256], yaml[256];
    int line;
    init_with_strings(&cfg);
    init_with_strings(&ref);

    snprintf(how, sizeof(how), "set %s=%s", c->key, c->text);
    cr_expect_eq(config_set(&cfg, c->key, c->text, err, sizeof(err)), -1, "%s", how);
    snprintf(want, sizeof(want), "%s: %s", c->key, c->reason);
    cr_expect_str_eq(err, want, "%s", how);
    expect_same(&cfg, &ref, how);

    cr_expect_eq(load_env1(&cfg, c->key, c->text, var, sizeof(var), err), -1, "env %s", var);
    snprintf(how, sizeof(how), "env %s=%s", var, c->text);
    snprintf(want, sizeof(want), "%s: %s: %s", var, c->key, c->reason);
    cr_expect_str_eq(err, want, "%s", how);
    expect_same(&cfg, &ref, how);

    yaml_of(c->key, c->text, yaml, sizeof(yaml), &line);
    snprintf(how, sizeof(how), "file %s", yaml);
    cr_expect_eq(load_text(&cfg, yaml, path, sizeof(path), err), -1, "%s", how);
    snprintf(want, sizeof(want), "%s:%d: %s: %s", path, line, c->key, c->reason);
    cr_expect_str_eq(err, want, "%s", how);
    expect_same(&cfg, &ref, how);

    config_deinit(&cfg);
    config_deinit(&ref);
}

Test(config, rejects)
{
    for (size_t i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++)
        check_rejects(&BAD[i]);
}

/* ---- the YAML file ------------------------------------------------------- */

/* The example file shipped in config/ and shown in the README: every key at its default. */
Test(config, example_file_is_the_defaults)
{
    struct config cfg, ref;
    char err[ERRLEN];
    config_init(&ref);
    config_init(&cfg);
    cr_assert_eq(config_set(&cfg, "upstream.password", "pw", err, sizeof(err)), 0);
    cr_assert_eq(config_set(&cfg, "upstream.pool_size", "9", err, sizeof(err)), 0);
    cr_assert_eq(
        config_load_file(&cfg, NEARCACHE_SOURCE_DIR "/config/nearcache.yaml", err, sizeof(err)), 0,
        "%s", err);
    expect_same(&cfg, &ref, "example");
    config_deinit(&cfg);
    config_deinit(&ref);
}

static const char FULL[] = "# every key, none at its default\n"
                           "listen: /run/nearcache.sock\n"
                           "log_level: debug\n"
                           "upstream:\n"
                           "  address: \"[::1]:7000\"\n"
                           "  username: app\n"
                           "  password: \"s3cret: x\"\n"
                           "  database: 3\n"
                           "  pool_size: 8\n"
                           "  idle_dedicated: 2\n"
                           "  connect_timeout: 250ms\n"
                           "  timeout: 0\n"
                           "  reconnect_max: 1m\n"
                           "clients:\n"
                           "  max: 500\n"
                           "  max_query_buffer: 64mb\n"
                           "  max_output_buffer: 0\n"
                           "  idle_timeout: 300s\n"
                           "limits:\n"
                           "  max_bulk_len: 1mb\n"
                           "  max_multibulk_len: 1024\n"
                           "  max_inline_len: 4kb\n"
                           "cache:\n"
                           "  enabled: no\n"
                           "  max_memory: 1gb\n"
                           "  max_entry: 64kb\n"
                           "  ttl: 10s\n"
                           "  tracking: off\n"
                           "  tracking_prefixes: \"user:,session:\"\n"
                           "shutdown:\n"
                           "  drain_timeout: 30s\n";

static const struct kv FULL_WANT[] = {
    {"listen", "/run/nearcache.sock"},
    {"log_level", "debug"},
    {"upstream.address", "[::1]:7000"},
    {"upstream.username", "app"},
    {"upstream.password", "s3cret: x"},
    {"upstream.database", "3"},
    {"upstream.pool_size", "8"},
    {"upstream.idle_dedicated", "2"},
    {"upstream.connect_timeout", "250"},
    {"upstream.timeout", "0"},
    {"upstream.reconnect_max", "60000"},
    {"clients.max", "500"},
    {"clients.max_query_buffer", "67108864"},
    {"clients.max_output_buffer", "0"},
    {"clients.idle_timeout", "300000"},
    {"limits.max_bulk_len", "1048576"},
    {"limits.max_multibulk_len", "1024"},
    {"limits.max_inline_len", "4096"},
    {"cache.enabled", "false"},
    {"cache.max_memory", "1073741824"},
    {"cache.max_entry", "65536"},
    {"cache.ttl", "10000"},
    {"cache.tracking", "false"},
    {"cache.tracking_prefixes", "user:,session:"},
    {"shutdown.drain_timeout", "30000"},
};

Test(config, full_file)
{
    struct config cfg;
    char err[ERRLEN], path[256];
    config_init(&cfg);
    cr_assert_eq(load_text(&cfg, FULL, path, sizeof(path), err), 0, "%s", err);
    cr_assert_eq(sizeof(FULL_WANT) / sizeof(FULL_WANT[0]), FIELDS_LEN);
    for (size_t i = 0; i < FIELDS_LEN; i++)
        expect_field(&cfg, FULL_WANT[i].key, FULL_WANT[i].value, "full file");
    cr_expect_eq(config_validate(&cfg, err, sizeof(err)), 0, "%s", err);
    config_deinit(&cfg);
}

struct file_case {
    const char *name;
    const char *text;
    const char *want; /* error after "path:", or "" when the file loads */
};

static const struct file_case FILES[] = {
    {"empty", "", ""},
    {"comments only", "# nothing here\n\n", ""},
    {"empty document", "---\n", ""},
    {"null document", "~\n", ""},
    {"empty section", "upstream:\n  # pool_size: 8\nclients: ~\n", ""},
    {"unknown top-level key", "listen: 127.0.0.1:7000\nbogus: 1\n", "2: bogus: unknown key"},
    {"unknown nested key", "upstream:\n  address: 127.0.0.1:6379\n  pool: 4\n",
     "3: upstream.pool: unknown key"},
    {"unknown section", "log_level: info\npolicies:\n  size: 1\n", "2: policies: unknown key"},
    {"unknown key in a section", "cache:\n  size: 1\n", "2: cache.size: unknown key"},
    {"dotted key", "upstream.pool_size: 4\n", "1: upstream.pool_size: unknown key"},
    {"option name as section", "listen:\n  host: x\n",
     "2: listen: expected a value, not a mapping"},
    {"scalar where a mapping belongs", "log_level: info\nupstream: 127.0.0.1:6379\n",
     "2: upstream: expected a mapping"},
    {"list where a mapping belongs", "clients:\n  - max: 5\n", "2: clients: expected a mapping"},
    {"mapping where a value belongs", "upstream:\n  pool_size:\n    min: 4\n",
     "3: upstream.pool_size: expected a value, not a mapping"},
    {"list where a value belongs", "upstream:\n  pool_size: [4, 8]\n",
     "2: upstream.pool_size: expected a value, not a list"},
    {"duplicate top-level key", "listen: a:1\nlog_level: info\nlisten: b:2\n",
     "3: listen: duplicate key"},
    {"duplicate nested key", "upstream:\n  pool_size: 4\n  database: 1\n  pool_size: 8\n",
     "4: upstream.pool_size: duplicate key"},
    {"duplicate section",
     "upstream:\n  pool_size: 4\nclients:\n  max: 5\nupstream:\n  database: 1\n",
     "5: upstream: duplicate key"},
    {"bad value on line 7",
     "# nearcache\nlisten: 127.0.0.1:7000\n\nupstream:\n  address: 127.0.0.1:6379\n"
     "  database: 2\n  pool_size: 0\n",
     "7: upstream.pool_size: must be between 1 and 256"},
    {"null number", "upstream:\n  pool_size: ~\n", "2: upstream.pool_size: needs a value"},
    {"null address", "listen: null\n", "1: listen: needs a value"},
    {"NUL in a value", "upstream:\n  password: \"a\\0b\"\n",
     "2: upstream.password: contains a NUL byte"},
    {"complex key", "? [a, b]\n: 1\n", "1: (top): keys must be plain names"},
    {"line break in a key", "log_level: info\n\"a\\nb\": 1\n", "2: a\\x0ab: unknown key"},
    {"control bytes in a nested key", "cache:\n  \"\\e[2J\\r\": 1\n",
     "2: cache.\\x1b[2J\\x0d: unknown key"},
    {"top-level scalar", "\n\nlisten\n", "3: yaml: expected a mapping of settings"},
    {"top-level list", "- listen: a:1\n", "1: yaml: expected a mapping of settings"},
    {"two documents", "listen: a:1\n---\nlog_level: info\n", "3: yaml: expected a single document"},
    {"bad indentation", "upstream:\n  pool_size: 4\n database: 1\n",
     "3: yaml: did not find expected key"},
    {"unclosed flow", "log_level: info\nupstream: {pool_size: 4\n",
     "3: yaml: did not find expected ',' or '}'"},
    {"invalid UTF-8", "listen: \"\xff\"\n", " yaml: invalid leading UTF-8 octet at byte 9"},
    {"tab indentation", "upstream:\n\tpool_size: 4\n",
     "2: yaml: found character that cannot start any token"},
};

/* Loads text over cfg from a temp file, or from memory as "buffer"; name
 * receives what errors call it. */
static int load_either(struct config *cfg, const char *text, bool from_buffer, char *name,
                       size_t namelen, char *err)
{
    if (!from_buffer)
        return load_text(cfg, text, name, namelen, err);
    snprintf(name, namelen, "buffer");
    return config_load_buffer(cfg, text, strlen(text), name, err, ERRLEN);
}

/* Each file either loads without changing the defaults, or fails with the
 * exact "path:line: key: reason" and changes nothing; from memory the same. */
static void check_files(const struct file_case *c, bool from_buffer)
{
    struct config cfg, ref;
    char err[ERRLEN] = "", want[ERRLEN], path[256];
    config_init(&cfg);
    config_init(&ref);
    int rc = load_either(&cfg, c->text, from_buffer, path, sizeof(path), err);
    if (c->want[0] == '\0') {
        cr_expect_eq(rc, 0, "%s: %s", c->name, err);
    } else {
        snprintf(want, sizeof(want), "%s:%s", path, c->want);
        cr_expect_eq(rc, -1, "%s loaded", c->name);
        cr_expect_str_eq(err, want, "%s", c->name);
    }
    expect_same(&cfg, &ref, c->name);
    config_deinit(&cfg);
    config_deinit(&ref);
}

Test(config, files)
{
    for (size_t i = 0; i < sizeof(FILES) / sizeof(FILES[0]); i++) {
        check_files(&FILES[i], false);
        check_files(&FILES[i], true);
    }
}

/* From memory only len bytes are read, NUL bytes included. */
Test(config, load_buffer_length)
{
    static const char text[] = "log_level: info\nbogus: 1\n";
    struct config cfg;
    char err[ERRLEN];
    config_init(&cfg);
    cr_expect_eq(config_load_buffer(&cfg, text, 16, "mem", err, sizeof(err)), 0, "%s", err);
    expect_field(&cfg, "log_level", "info", "first line");
    cr_expect_eq(config_load_buffer(&cfg, "log_level: debug\0\n", 18, "mem", err, sizeof(err)), -1);
    cr_expect_str_eq(err, "mem: yaml: control characters are not allowed at byte 16");
    expect_field(&cfg, "log_level", "info", "after the NUL");
    config_deinit(&cfg);
}

Test(config, yaml_null_unsets_strings)
{
    struct config cfg;
    char err[ERRLEN], path[256];
    config_init(&cfg);
    cr_assert_eq(config_set(&cfg, "upstream.username", "app", err, sizeof(err)), 0);
    cr_assert_eq(config_set(&cfg, "upstream.password", "pw", err, sizeof(err)), 0);
    cr_assert_eq(
        load_text(&cfg, "upstream:\n  username: ~\n  password:\n", path, sizeof(path), err), 0,
        "%s", err);
    expect_field(&cfg, "upstream.username", "(null)", "~");
    expect_field(&cfg, "upstream.password", "(null)", "empty");

    cr_assert_eq(config_set(&cfg, "upstream.password", "pw", err, sizeof(err)), 0);
    cr_assert_eq(load_text(&cfg, "upstream:\n  password: null\n", path, sizeof(path), err), 0);
    expect_field(&cfg, "upstream.password", "(null)", "null");

    /* quoted, "~" is a password */
    cr_assert_eq(load_text(&cfg, "upstream:\n  password: '~'\n", path, sizeof(path), err), 0);
    expect_field(&cfg, "upstream.password", "~", "quoted ~");

    /* set NULL unsets too */
    cr_assert_eq(config_set(&cfg, "upstream.password", NULL, err, sizeof(err)), 0);
    expect_field(&cfg, "upstream.password", "(null)", "set NULL");
    config_deinit(&cfg);
}

Test(config, missing_file)
{
    struct config cfg;
    char err[ERRLEN];
    config_init(&cfg);
    cr_expect_eq(config_load_file(&cfg, "/nonexistent/nearcache.yaml", err, sizeof(err)), -1);
    cr_expect_str_eq(err, "/nonexistent/nearcache.yaml: No such file or directory");
    cr_expect_eq(config_load_file(&cfg, "/", err, sizeof(err)), -1);
    cr_expect_str_eq(err, "/: Is a directory");
    config_deinit(&cfg);
}

/* Good settings before a bad one are not applied: the file is all or nothing,
 * strings included. */
Test(config, file_is_atomic)
{
    struct config cfg, ref;
    char err[ERRLEN], want[ERRLEN], path[256];
    config_init(&cfg);
    cr_assert_eq(config_set(&cfg, "upstream.password", "before", err, sizeof(err)), 0);
    config_init(&ref);
    cr_assert_eq(config_set(&ref, "upstream.password", "before", err, sizeof(err)), 0);
    const char *text = "listen: 0.0.0.0:7000\n"
                       "log_level: debug\n"
                       "upstream:\n"
                       "  password: after\n"
                       "  username: app\n"
                       "  pool_size: 8\n"
                       "clients:\n"
                       "  max_query_buffer: 2gb\n"
                       "  max: 0\n";
    cr_assert_eq(load_text(&cfg, text, path, sizeof(path), err), -1);
    snprintf(want, sizeof(want), "%s:9: clients.max: must be between 1 and 1000000", path);
    cr_expect_str_eq(err, want);
    expect_same(&cfg, &ref, "after a failed load");
    config_deinit(&cfg);
    config_deinit(&ref);
}

/* ---- environment --------------------------------------------------------- */

struct env_case {
    const char *name;
    const char *vars[4]; /* NULL-terminated */
    const char *want;    /* error, or "" when it loads */
};

static const struct env_case ENVS[] = {
    {"unknown variable", {"NEARCACHE_FOO=1"}, "NEARCACHE_FOO: unknown setting"},
    {"section name", {"NEARCACHE_UPSTREAM=x:1"}, "NEARCACHE_UPSTREAM: unknown setting"},
    {"lower case",
     {"NEARCACHE_upstream_pool_size=3"},
     "NEARCACHE_upstream_pool_size: unknown setting"},
    {"dotted", {"NEARCACHE_UPSTREAM.POOL_SIZE=3"}, "NEARCACHE_UPSTREAM.POOL_SIZE: unknown setting"},
    {"prefix alone", {"NEARCACHE_=3"}, "NEARCACHE_: unknown setting"},
    {"config path is reserved", {"NEARCACHE_CONFIG=/etc/nearcache.yaml"}, ""},
    {"other variables", {"PATH=/bin", "NEARCACHEX=1", "nearcache_listen=x"}, ""},
    {"no value", {"NEARCACHE_CLIENTS_MAX"}, "NEARCACHE_CLIENTS_MAX: clients.max: needs a value"},
    {"control byte in a name", {"NEARCACHE_A\tB=1"}, "NEARCACHE_A\\x09B: unknown setting"},
};

static void check_env(const struct env_case *c)
{
    struct config cfg, ref;
    char err[ERRLEN] = "";
    config_init(&cfg);
    config_init(&ref);
    int rc = config_load_env(&cfg, (char *const *)c->vars, err, sizeof(err));
    if (c->want[0] == '\0') {
        cr_expect_eq(rc, 0, "%s: %s", c->name, err);
    } else {
        cr_expect_eq(rc, -1, "%s loaded", c->name);
        cr_expect_str_eq(err, c->want, "%s", c->name);
    }
    expect_same(&cfg, &ref, c->name);
    config_deinit(&cfg);
    config_deinit(&ref);
}

Test(config, env)
{
    for (size_t i = 0; i < sizeof(ENVS) / sizeof(ENVS[0]); i++)
        check_env(&ENVS[i]);
}

Test(config, env_applies_all_and_skips_reserved)
{
    struct config cfg;
    char err[ERRLEN];
    char *envp[] = {"HOME=/root",
                    "NEARCACHE_CONFIG=/etc/nearcache.yaml",
                    "NEARCACHE_LISTEN=/run/nc.sock",
                    "NEARCACHE_LOG_LEVEL=info",
                    "NEARCACHE_UPSTREAM_POOL_SIZE=12",
                    "NEARCACHE_LIMITS_MAX_MULTIBULK_LEN=100",
                    "NEARCACHE_UPSTREAM_POOL_SIZE=13",
                    NULL};
    config_init(&cfg);
    cr_assert_eq(config_load_env(&cfg, envp, err, sizeof(err)), 0, "%s", err);
    expect_field(&cfg, "listen", "/run/nc.sock", "env");
    expect_field(&cfg, "log_level", "info", "env");
    expect_field(&cfg, "upstream.pool_size", "13", "env, last wins");
    expect_field(&cfg, "limits.max_multibulk_len", "100", "env");
    cr_expect_eq(config_load_env(&cfg, NULL, err, sizeof(err)), 0, "NULL envp");
    config_deinit(&cfg);
}

Test(config, env_is_atomic)
{
    struct config cfg, ref;
    char err[ERRLEN];
    char *envp[] = {"NEARCACHE_LISTEN=/run/nc.sock", "NEARCACHE_UPSTREAM_PASSWORD=pw",
                    "NEARCACHE_UPSTREAM_POOL_SIZE=12", "NEARCACHE_CLIENTS_MAX=lots", NULL};
    config_init(&cfg);
    config_init(&ref);
    cr_assert_eq(config_load_env(&cfg, envp, err, sizeof(err)), -1);
    cr_expect_str_eq(err, "NEARCACHE_CLIENTS_MAX: clients.max: expected an integer");
    expect_same(&cfg, &ref, "after failed env");
    config_deinit(&cfg);
    config_deinit(&ref);
}

/* ---- --set, precedence --------------------------------------------------- */

Test(config, set_unknown)
{
    static const char *const KEYS[] = {"bogus",     "upstream",           "upstream.",
                                       "pool_size", "UPSTREAM.POOL_SIZE", "upstream.pool_size.x",
                                       ""};
    struct config cfg, ref;
    char err[ERRLEN], want[ERRLEN];
    config_init(&cfg);
    config_init(&ref);
    for (size_t i = 0; i < sizeof(KEYS) / sizeof(KEYS[0]); i++) {
        cr_expect_eq(config_set(&cfg, KEYS[i], "1", err, sizeof(err)), -1, "%s", KEYS[i]);
        snprintf(want, sizeof(want), "%s: unknown setting", KEYS[i]);
        cr_expect_str_eq(err, want);
    }
    expect_same(&cfg, &ref, "unknown set");
    config_deinit(&cfg);
    config_deinit(&ref);
}

/* File, then environment, then --set: each overrides the one before, and only
 * for the settings it names. */
Test(config, precedence)
{
    struct config cfg;
    char err[ERRLEN], path[256];
    char *envp[] = {"NEARCACHE_UPSTREAM_POOL_SIZE=16", "NEARCACHE_CLIENTS_MAX=300", NULL};
    config_init(&cfg);
    cr_assert_eq(load_text(&cfg, "upstream:\n  pool_size: 8\n  database: 2\nclients:\n  max: 200\n",
                           path, sizeof(path), err),
                 0, "%s", err);
    cr_assert_eq(config_load_env(&cfg, envp, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(config_set(&cfg, "upstream.pool_size", "32", err, sizeof(err)), 0, "%s", err);
    expect_field(&cfg, "upstream.pool_size", "32", "set over env over file");
    expect_field(&cfg, "clients.max", "300", "env over file");
    expect_field(&cfg, "upstream.database", "2", "file over default");
    expect_field(&cfg, "upstream.idle_dedicated", "16", "default");
    config_deinit(&cfg);
}

/* ---- cross-field rules --------------------------------------------------- */

struct validate_case {
    const char *name;
    const char *sets[4][2]; /* {key, value}, up to a NULL key */
    const char *want;       /* error, or "" when valid */
};

static const struct validate_case VALIDATE[] = {
    {"defaults", {{NULL, NULL}}, ""},
    {"username without password",
     {{"upstream.username", "app"}},
     "upstream.username: needs upstream.password"},
    {"username with password", {{"upstream.username", "app"}, {"upstream.password", "pw"}}, ""},
    {"password alone", {{"upstream.password", "pw"}}, ""},
    {"listen is upstream",
     {{"listen", "127.0.0.1:6379"}},
     "listen: must differ from upstream.address"},
    {"same unix path",
     {{"listen", "/run/r.sock"}, {"upstream.address", "/run/r.sock"}},
     "listen: must differ from upstream.address"},
    {"bulk beyond query buffer",
     {{"clients.max_query_buffer", "1mb"}, {"limits.max_inline_len", "1kb"}},
     "limits.max_bulk_len: must not exceed clients.max_query_buffer"},
    {"bulk equal to query buffer",
     {{"clients.max_query_buffer", "1mb"},
      {"limits.max_bulk_len", "1mb"},
      {"limits.max_inline_len", "1mb"}},
     ""},
    {"inline beyond query buffer",
     {{"clients.max_query_buffer", "1mb"},
      {"limits.max_bulk_len", "1mb"},
      {"limits.max_inline_len", "2mb"}},
     "limits.max_inline_len: must not exceed clients.max_query_buffer"},
};

static void check_validate(const struct validate_case *c)
{
    struct config cfg;
    char err[ERRLEN] = "";
    config_init(&cfg);
    for (size_t i = 0; i < 4 && c->sets[i][0] != NULL; i++)
        cr_assert_eq(config_set(&cfg, c->sets[i][0], c->sets[i][1], err, sizeof(err)), 0, "%s",
                     err);
    int rc = config_validate(&cfg, err, sizeof(err));
    if (c->want[0] == '\0') {
        cr_expect_eq(rc, 0, "%s: %s", c->name, err);
    } else {
        cr_expect_eq(rc, -1, "%s passed", c->name);
        cr_expect_str_eq(err, c->want, "%s", c->name);
    }
    config_deinit(&cfg);
}

Test(config, validate)
{
    for (size_t i = 0; i < sizeof(VALIDATE) / sizeof(VALIDATE[0]); i++)
        check_validate(&VALIDATE[i]);
}

Test(config, validate_missing_addresses)
{
    struct config cfg;
    char err[ERRLEN];
    config_init(&cfg);
    free(cfg.listen);
    cfg.listen = NULL;
    cr_expect_eq(config_validate(&cfg, err, sizeof(err)), -1);
    cr_expect_str_eq(err, "listen: needs a value");
    config_deinit(&cfg);
}

/* ---- cache.tracking_prefixes ---------------------------------------------- */

#define PREFIX_KEY    "cache.tracking_prefixes: "
#define REFUSED       " (Redis refuses overlapping BCAST prefixes)"
#define EMPTY_ITEM(i) PREFIX_KEY "item " #i " is empty (an empty prefix would cover every key)"
#define LONG32        "0123456789abcdef0123456789abcdef"

struct prefixes_case {
    const char *text;
    const char *want; /* the whole error, or "" when valid */
};

static const struct prefixes_case PREFIXES[] = {
    {"user:", ""},
    {"user:,session:", ""},
    {"user:1,user:2,user:3", ""},
    {"user:,users:", ""},
    {"b,a,c", ""},
    {"a b,a c", ""},
    {"user:,user:1", PREFIX_KEY "prefix 'user:1' overlaps 'user:'" REFUSED},
    {"user:1,user:", PREFIX_KEY "prefix 'user:1' overlaps 'user:'" REFUSED},
    {"x,user:12,y,user:1", PREFIX_KEY "prefix 'user:12' overlaps 'user:1'" REFUSED},
    {"ab,a,b", PREFIX_KEY "prefix 'ab' overlaps 'a'" REFUSED},
    {"user:,user:", PREFIX_KEY "prefix 'user:' is repeated" REFUSED},
    {"x,user:,y,user:", PREFIX_KEY "prefix 'user:' is repeated" REFUSED},
    {"a,,b", EMPTY_ITEM(2)},
    {"user:,", EMPTY_ITEM(2)},
    {",user:", EMPTY_ITEM(1)},
    {",", EMPTY_ITEM(1)},
    {"a,b,c,", EMPTY_ITEM(4)},
    /* quoted prefixes: at most 32 bytes, on one line */
    {LONG32 "x:," LONG32, PREFIX_KEY "prefix '" LONG32 "...' overlaps '" LONG32 "'" REFUSED},
    {"a\nb,a", PREFIX_KEY "prefix 'a\\x0ab' overlaps 'a'" REFUSED},
    {"\xff\x7f,\xff", PREFIX_KEY "prefix '\xff\\x7f' overlaps '\xff'" REFUSED},
};

static void check_prefixes(const struct prefixes_case *c)
{
    struct config cfg;
    char err[ERRLEN] = "", path[256], yaml[512];
    config_init(&cfg);
    cr_assert_eq(config_set(&cfg, "cache.tracking_prefixes", c->text, err, sizeof(err)), 0);
    int rc = config_validate(&cfg, err, sizeof(err));
    if (c->want[0] == '\0') {
        cr_expect_eq(rc, 0, "%s: %s", c->text, err);
    } else {
        cr_expect_eq(rc, -1, "%s passed", c->text);
        cr_expect_str_eq(err, c->want, "%s", c->text);
    }
    config_deinit(&cfg);

    /* from a file the same (text YAML can quote as it is), and tracking off
     * does not excuse it */
    for (const char *p = c->text; *p != '\0'; p++) {
        if (!isprint((unsigned char)*p))
            return;
    }
    config_init(&cfg);
    snprintf(yaml, sizeof(yaml), "cache:\n  tracking: off\n  tracking_prefixes: \"%s\"\n", c->text);
    cr_assert_eq(load_text(&cfg, yaml, path, sizeof(path), err), 0, "%s: %s", c->text, err);
    cr_expect_eq(config_validate(&cfg, err, sizeof(err)), rc, "%s from a file", c->text);
    if (rc != 0)
        cr_expect_str_eq(err, c->want, "%s from a file", c->text);
    config_deinit(&cfg);
}

Test(config, tracking_prefixes)
{
    for (size_t i = 0; i < sizeof(PREFIXES) / sizeof(PREFIXES[0]); i++)
        check_prefixes(&PREFIXES[i]);
}

/* Sorting finds an overlap however far apart the two are in the list. */
Test(config, tracking_prefixes_many)
{
    enum { N = 20000 };
    struct config cfg;
    char err[ERRLEN] = "";
    char *text = malloc(N * 8 + 16), *p = text;
    cr_assert_not_null(text);
    for (int i = 0; i < N; i++)
        p += sprintf(p, "k%05d:,", (i * 7919) % N);
    strcpy(p, "k00000");
    config_init(&cfg);
    cr_assert_eq(config_set(&cfg, "cache.tracking_prefixes", text, err, sizeof(err)), 0);
    cr_expect_eq(config_validate(&cfg, err, sizeof(err)), -1);
    cr_expect_str_eq(err, PREFIX_KEY "prefix 'k00000:' overlaps 'k00000'" REFUSED);
    p[0] = 'x';
    cr_assert_eq(config_set(&cfg, "cache.tracking_prefixes", text, err, sizeof(err)), 0);
    cr_expect_eq(config_validate(&cfg, err, sizeof(err)), 0, "%s", err);
    config_deinit(&cfg);
    free(text);
}

struct split_case {
    const char *text;
    size_t n;
    const char *items[5];
};

static const struct split_case SPLITS[] = {
    {NULL, 0, {NULL}},
    {"user:", 1, {"user:"}},
    {"user:,session:", 2, {"user:", "session:"}},
    {"a,,b,", 4, {"a", "", "b", ""}},
    {",", 2, {"", ""}},
    {" a , b", 2, {" a ", " b"}},
};

Test(config, list_split)
{
    for (size_t i = 0; i < sizeof(SPLITS) / sizeof(SPLITS[0]); i++) {
        const struct split_case *c = &SPLITS[i];
        char *items = (char *)"sentinel";
        size_t n = 99;
        cr_assert_eq(config_list_split(c->text, &items, &n), 0);
        cr_expect_eq(n, c->n, "%s: %zu items", c->text, n);
        cr_expect_eq(items == NULL, c->text == NULL, "%s", c->text);
        const char *p = items;
        for (size_t j = 0; j < n && j < c->n; j++, p += strlen(p) + 1)
            cr_expect_str_eq(p, c->items[j], "%s: item %zu", c->text, j);
        free(items);
    }
}

static void note_changed(void *arg, const char *name)
{
    char *list = arg;
    strcat(list, name);
    strcat(list, " ");
}

Test(config, reload_keeps_the_fixed_settings)
{
    struct config cur, next;
    char err[ERRLEN], changed[256] = "";
    config_init(&cur);
    config_init(&next);
    cr_assert_eq(config_set(&next, "listen", "127.0.0.1:7000", err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(config_set(&next, "upstream.pool_size", "9", err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(config_set(&next, "cache.enabled", "false", err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(config_set(&next, "log_level", "debug", err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(config_set(&next, "cache.ttl", "7s", err, sizeof(err)), 0, "%s", err);
    const char *running = cur.listen;
    config_keep_fixed(&next, &cur, note_changed, changed);
    cr_assert_str_eq(changed, "listen upstream.pool_size cache.enabled ");
    cr_assert(next.listen == running, "the running string moves over");
    cr_assert_str_eq(cur.listen, "127.0.0.1:7000", "and the new one is freed with cur");
    cr_assert(next.pool_size == 4 && next.cache_enabled);
    cr_assert(next.log_level == LOG_DEBUG && next.cache_ttl_ms == 7000, "reloadable ones apply");
    config_deinit(&cur);
    config_deinit(&next);
}

/* tests/unit/config/config.c - settings: defaults, every option's accepted
 * and rejected text through --set, the environment and the YAML file, and
 * cross-field rules. Fields are read back through a table of their own
 * (config_util.h), so a setting stored in the wrong field fails too. The
 * sources themselves (the file's structure errors with their lines,
 * atomicity, precedence) are in config_sources.c, part of the same test_config.
 */
#include <criterion/criterion.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

#include "tests/unit/leaks.h"

#include "config_util.h"

TestSuite(config, .fini = check_leaks);

/* ---- the three ways in --------------------------------------------------- */

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

static const struct kv DEFAULTS[] = {
    {"listen", "127.0.0.1:6380"},
    {"log_level", "notice"},
    {"log_format", "text"},
    {"upstream.address", "127.0.0.1:6379"},
    {"upstream.username", "(null)"},
    {"upstream.password", "(null)"},
    {"upstream.database", "0"},
    {"upstream.pool_size", "4"},
    {"upstream.idle_dedicated", "16"},
    {"upstream.connect_timeout", "1000"},
    {"upstream.timeout", "5000"},
    {"upstream.reconnect_max", "2000"},
    {"upstream.sentinels", "(null)"},
    {"upstream.master_name", "(null)"},
    {"upstream.cluster", "(null)"},
    {"upstream.cluster_refresh", "5000"},
    {"upstream.cluster_max_redirects", "5"},
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
    {"log_format", "json", "json"},
    {"log_format", "JSON", "json"},
    {"log_format", "text", "text"},
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
    {"log_format", "", "needs a value"},
    {"log_format", "yaml", "expected text or json"},
    {"log_format", "json ", "expected text or json"},
    {"log_format", "1", "expected text or json"},
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
    {"client cert without key",
     {{"upstream.tls_cert_file", "/c.pem"}},
     "upstream.tls_cert_file: needs upstream.tls_key_file, and back"},
    {"tls listener without cert",
     {{"tls.listen", "127.0.0.1:6390"}},
     "tls.listen: needs tls.cert_file and tls.key_file"},
    {"tls listener on listen",
     {{"tls.listen", "127.0.0.1:6380"}},
     "tls.listen: must differ from listen"},
    {"tls listener not an address",
     {{"tls.listen", "nowhere"}},
     "tls.listen: expected host:port, [ipv6]:port or /unix/path, or none"},
    {"tls auth word",
     {{"tls.listen", "127.0.0.1:6390"},
      {"tls.cert_file", "/c"},
      {"tls.key_file", "/k"},
      {"tls.auth_clients", "maybe"}},
     "tls.auth_clients: expected no, optional or yes"},
    {"tls auth without CA",
     {{"tls.listen", "127.0.0.1:6390"},
      {"tls.cert_file", "/c"},
      {"tls.key_file", "/k"},
      {"tls.auth_clients", "yes"}},
     "tls.auth_clients: yes needs tls.ca_file"},
    {"tls listener",
     {{"tls.listen", "127.0.0.1:6390"}, {"tls.cert_file", "/c"}, {"tls.key_file", "/k"}},
     ""},
    {"sentinels without name",
     {{"upstream.sentinels", "127.0.0.1:26379"}},
     "upstream.sentinels: needs upstream.master_name"},
    {"name without sentinels",
     {{"upstream.master_name", "mymaster"}},
     "upstream.master_name: needs upstream.sentinels"},
    {"sentinel not host:port",
     {{"upstream.sentinels", "127.0.0.1:26379,/run/s.sock"}, {"upstream.master_name", "m"}},
     "upstream.sentinels: item 2: expected host:port"},
    {"sentinel empty item",
     {{"upstream.sentinels", "127.0.0.1:26379,"}, {"upstream.master_name", "m"}},
     "upstream.sentinels: item 2: expected host:port, [ipv6]:port or /unix/path"},
    {"sentinels",
     {{"upstream.sentinels", "127.0.0.1:26379,[::1]:26380"}, {"upstream.master_name", "m"}},
     ""},
    {"cluster", {{"upstream.cluster", "127.0.0.1:7000,node-2:7001"}}, ""},
    {"cluster seed not host:port",
     {{"upstream.cluster", "127.0.0.1:7000,/run/r.sock"}},
     "upstream.cluster: item 2: expected host:port"},
    {"cluster with sentinels",
     {{"upstream.cluster", "127.0.0.1:7000"},
      {"upstream.sentinels", "127.0.0.1:26379"},
      {"upstream.master_name", "m"}},
     "upstream.cluster: not with upstream.sentinels"},
    {"cluster database",
     {{"upstream.cluster", "127.0.0.1:7000"}, {"upstream.database", "3"}},
     "upstream.database: a cluster has only database 0"},
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
    cr_assert_eq(config_set(&next, "log_format", "json", err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(config_set(&next, "cache.ttl", "7s", err, sizeof(err)), 0, "%s", err);
    const char *running = cur.listen;
    config_keep_fixed(&next, &cur, note_changed, changed);
    cr_assert_str_eq(changed, "listen upstream.pool_size cache.enabled ");
    cr_assert(next.listen == running, "the running string moves over");
    cr_assert_str_eq(cur.listen, "127.0.0.1:7000", "and the new one is freed with cur");
    cr_assert(next.pool_size == 4 && next.cache_enabled);
    cr_assert(next.log_level == LOG_DEBUG && next.log_format == LOG_JSON &&
                  next.cache_ttl_ms == 7000,
              "reloadable ones apply");
    config_deinit(&cur);
    config_deinit(&next);
}

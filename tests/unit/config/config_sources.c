/* tests/unit/config/config_sources.c - settings from their sources: the YAML
 * file (its structure errors with their lines, loading from memory, atomicity),
 * the environment and --set, and their precedence. Part of test_config, with
 * config.c (defaults, every option's forms, cross-field rules).
 */
#include <criterion/criterion.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

#include "config_util.h"

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
                           "log_format: json\n"
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
                           "  sentinels:\n"
                           "    - 10.0.0.1:26379\n"
                           "    - \"[::1]:26380\"\n"
                           "  master_name: mymaster\n"
                           "  cluster_refresh: 2s\n"
                           "  cluster_max_redirects: 3\n"
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
                           "  tracking_prefixes: [\"user:\", \"session:\"]\n"
                           "shutdown:\n"
                           "  drain_timeout: 30s\n";

static const struct kv FULL_WANT[] = {
    {"listen", "/run/nearcache.sock"},
    {"log_level", "debug"},
    {"log_format", "json"},
    {"upstream.address", "[::1]:7000"},
    {"upstream.username", "app"},
    {"upstream.password", "s3cret: x"},
    {"upstream.database", "3"},
    {"upstream.pool_size", "8"},
    {"upstream.idle_dedicated", "2"},
    {"upstream.connect_timeout", "250"},
    {"upstream.timeout", "0"},
    {"upstream.reconnect_max", "60000"},
    {"upstream.sentinels", "10.0.0.1:26379,[::1]:26380"},
    {"upstream.master_name", "mymaster"},
    {"upstream.cluster", "(null)"}, /* not with sentinels: config.c's validate cases */
    {"upstream.cluster_refresh", "2000"},
    {"upstream.cluster_max_redirects", "3"},
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
    {"a list where one value goes", "listen:\n  - 127.0.0.1:7000\n",
     "2: listen: expected a value, not a list"},
    {"a list item with a comma", "cache:\n  tracking_prefixes:\n    - \"a:,b:\"\n",
     "3: cache.tracking_prefixes: an item holds a comma"},
    {"a list of lists", "upstream:\n  sentinels:\n    - [a, b]\n",
     "3: upstream.sentinels: expected a value, not a list"},
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
    {"debug switch is reserved", {"NEARCACHE_DEBUG=2"}, ""}, /* main.c checks its value */
    {"bad log format",
     {"NEARCACHE_LOG_FORMAT=xml"},
     "NEARCACHE_LOG_FORMAT: log_format: expected text or json"},
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
                    "NEARCACHE_LOG_FORMAT=json",
                    "NEARCACHE_UPSTREAM_POOL_SIZE=12",
                    "NEARCACHE_LIMITS_MAX_MULTIBULK_LEN=100",
                    "NEARCACHE_UPSTREAM_POOL_SIZE=13",
                    NULL};
    config_init(&cfg);
    cr_assert_eq(config_load_env(&cfg, envp, err, sizeof(err)), 0, "%s", err);
    expect_field(&cfg, "listen", "/run/nc.sock", "env");
    expect_field(&cfg, "log_level", "info", "env");
    expect_field(&cfg, "log_format", "json", "env");
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

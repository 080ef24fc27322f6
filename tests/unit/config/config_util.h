/* config_util.h - helpers shared by the files of test_config (config.c and
 * config_sources.c): the table that reads every field back as text, the
 * expectations built on it and loading YAML text from a temp file.
 */
#ifndef NEARCACHE_TESTS_UNIT_CONFIG_UTIL_H
#define NEARCACHE_TESTS_UNIT_CONFIG_UTIL_H

#include <criterion/criterion.h>

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"

#include "tests/unit/yaml_file.h"

#define ERRLEN 512

/* ---- reading fields back ------------------------------------------------- */

typedef enum { F_STR, F_INT, F_I64, F_LEVEL, F_FORMAT, F_BOOL } field_kind_e;

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
    F("log_format", log_format, F_FORMAT),
    F("upstream.address", upstream, F_STR),
    F("upstream.username", upstream_username, F_STR),
    F("upstream.password", upstream_password, F_STR),
    F("upstream.database", upstream_database, F_INT),
    F("upstream.pool_size", pool_size, F_INT),
    F("upstream.idle_dedicated", idle_dedicated, F_INT),
    F("upstream.connect_timeout", connect_timeout_ms, F_INT),
    F("upstream.timeout", request_timeout_ms, F_INT),
    F("upstream.reconnect_max", reconnect_max_ms, F_INT),
    F("upstream.sentinels", sentinels, F_STR),
    F("upstream.master_name", master_name, F_STR),
    F("upstream.cluster", cluster, F_STR),
    F("upstream.cluster_refresh", cluster_refresh_ms, F_INT),
    F("upstream.cluster_max_redirects", cluster_max_redirects, F_INT),
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
 * level or a log format by name. */
static inline void field_text(const struct config *cfg, const struct field *f, char *buf,
                              size_t len)
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
    case F_FORMAT:
        snprintf(buf, len, "%s", log_format_name(*(const log_format_e *)p));
        break;
    case F_BOOL:
        snprintf(buf, len, "%s", *(const bool *)p ? "true" : "false");
        break;
    }
}

static inline const struct field *field_find(const char *key)
{
    for (size_t i = 0; i < FIELDS_LEN; i++) {
        if (strcmp(FIELDS[i].key, key) == 0)
            return &FIELDS[i];
    }
    cr_assert_fail("no field %s in the test table", key);
    return NULL;
}

static inline void expect_field(const struct config *cfg, const char *key, const char *want,
                                const char *how)
{
    char got[128];
    field_text(cfg, field_find(key), got, sizeof(got));
    cr_expect_str_eq(got, want, "%s: %s is %s, want %s", how, key, got, want);
}

/* Expects every field of a and b to be equal. */
static inline void expect_same(const struct config *a, const struct config *b, const char *how)
{
    for (size_t i = 0; i < FIELDS_LEN; i++) {
        char x[128], y[128];
        field_text(a, &FIELDS[i], x, sizeof(x));
        field_text(b, &FIELDS[i], y, sizeof(y));
        cr_expect_str_eq(x, y, "%s: %s changed from %s to %s", how, FIELDS[i].key, y, x);
    }
}

/* Loads text over cfg from a temp file (path receives its name). */
static inline int load_text(struct config *cfg, const char *text, char *path, size_t pathlen,
                            char *err)
{
    return load_text_file(cfg, text, path, pathlen, err, ERRLEN);
}

struct kv {
    const char *key;
    const char *value;
};

#endif

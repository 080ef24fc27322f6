/* rules.c - the rules that span settings, and the list settings' items. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "config/rules.h"

/* ---- lists --------------------------------------------------------------- */

#define PREFIXES_KEY "cache.tracking_prefixes"
#define QUOTE_MAX    32 /* most bytes of a prefix an error quotes */

int config_list_split(const char *text, char **items, size_t *n)
{
    *items = NULL;
    *n = 0;
    if (text == NULL)
        return 0;
    if ((*items = strdup(text)) == NULL)
        return -1;
    *n = 1;
    for (char *p = *items; (p = strchr(p, ',')) != NULL; (*n)++)
        *p++ = '\0';
    return 0;
}

/* Writes text into buf quoted, cut to its first QUOTE_MAX bytes ("..." marks
 * a cut); fail escapes its control bytes. */
static void quote_bounded(char *buf, size_t len, const char *text)
{
    size_t n = strlen(text);
    snprintf(buf, len, "'%.*s%s'", (int)(n < QUOTE_MAX ? n : QUOTE_MAX), text,
             n > QUOTE_MAX ? "..." : "");
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Checks the n items of sorted, which is in strcmp order: a prefix sorts
 * right before the items it starts, so comparing neighbours finds every
 * overlap. */
static int prefixes_disjoint(const char *const *sorted, size_t n, char *err, size_t errlen)
{
    char a[QUOTE_MAX + 8], b[QUOTE_MAX + 8];
    for (size_t i = 1; i < n; i++) {
        size_t len = strlen(sorted[i - 1]);
        if (strncmp(sorted[i - 1], sorted[i], len) != 0)
            continue;
        quote_bounded(a, sizeof(a), sorted[i]);
        quote_bounded(b, sizeof(b), sorted[i - 1]);
        if (sorted[i][len] == '\0')
            return config_fail(err, errlen,
                               PREFIXES_KEY
                               ": prefix %s is repeated (Redis refuses overlapping BCAST "
                               "prefixes)",
                               a);
        return config_fail(err, errlen,
                           PREFIXES_KEY ": prefix %s overlaps %s (Redis refuses overlapping BCAST "
                                        "prefixes)",
                           a, b);
    }
    return 0;
}

/* cache.tracking_prefixes: no item empty, none a prefix of another, in
 * O(n log n). */
static int prefixes_check(const char *text, char *err, size_t errlen)
{
    char *items;
    size_t n;
    if (text == NULL)
        return 0;
    if (config_list_split(text, &items, &n) != 0)
        return config_fail(err, errlen, PREFIXES_KEY ": out of memory");
    const char **sorted = malloc(n * sizeof(*sorted));
    int rc = sorted != NULL ? 0 : config_fail(err, errlen, PREFIXES_KEY ": out of memory");
    const char *p = items;
    for (size_t i = 0; rc == 0 && i < n; i++, p += strlen(p) + 1) {
        sorted[i] = p;
        if (p[0] == '\0')
            rc = config_fail(
                err, errlen,
                PREFIXES_KEY ": item %zu is empty (an empty prefix would cover every key)", i + 1);
    }
    if (rc == 0) {
        qsort(sorted, n, sizeof(*sorted), str_cmp);
        rc = prefixes_disjoint(sorted, n, err, errlen);
    }
    free(sorted);
    free(items);
    return rc;
}

/* ---- cross-field rules --------------------------------------------------- */

/* upstream.tls_* and tls.*: files named where they are needed. */
static int config_validate_tls(const struct config *cfg, char *err, size_t errlen)
{
    if ((cfg->upstream_tls_cert_file == NULL) != (cfg->upstream_tls_key_file == NULL))
        return config_fail(err, errlen,
                           "upstream.tls_cert_file: needs upstream.tls_key_file, and back");
    if (!config_tls_on(cfg))
        return 0;
    const char *why = config_address_check(cfg->tls_listen);
    if (why != NULL)
        return config_fail(err, errlen, "tls.listen: %s, or none", why);
    if (strcmp(cfg->tls_listen, cfg->listen) == 0)
        return config_fail(err, errlen, "tls.listen: must differ from listen");
    if (cfg->tls_cert_file == NULL || cfg->tls_key_file == NULL)
        return config_fail(err, errlen, "tls.listen: needs tls.cert_file and tls.key_file");
    int auth = config_tls_auth(cfg);
    if (auth < 0)
        return config_fail(err, errlen, "tls.auth_clients: expected no, optional or yes");
    if (auth > 0 && cfg->tls_ca_file == NULL)
        return config_fail(err, errlen, "tls.auth_clients: %s needs tls.ca_file",
                           cfg->tls_auth_clients);
    return 0;
}

/* A list setting of host:port items (setting names it in errors). */
static int config_validate_hosts(const char *list, const char *setting, char *err, size_t errlen)
{
    char *items;
    size_t n;
    if (config_list_split(list, &items, &n) < 0)
        return config_fail(err, errlen, "out of memory");
    const char *item = items;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++, item += strlen(item) + 1) {
        const char *why = config_address_check(item);
        if (why != NULL || item[0] == '/')
            rc = config_fail(err, errlen, "%s: item %zu: %s", setting, i + 1,
                             why != NULL ? why : "expected host:port");
    }
    free(items);
    return rc;
}

/* upstream.sentinels: host:port items, with upstream.master_name; or
 * upstream.cluster: host:port items, database 0 (a cluster has no other). */
static int config_validate_topology(const struct config *cfg, char *err, size_t errlen)
{
    if (cfg->cluster != NULL) {
        if (cfg->sentinels != NULL)
            return config_fail(err, errlen, "upstream.cluster: not with upstream.sentinels");
        if (cfg->upstream_database != 0)
            return config_fail(err, errlen, "upstream.database: a cluster has only database 0");
        return config_validate_hosts(cfg->cluster, "upstream.cluster", err, errlen);
    }
    if (cfg->sentinels == NULL)
        return cfg->master_name == NULL
                   ? 0
                   : config_fail(err, errlen, "upstream.master_name: needs upstream.sentinels");
    if (cfg->master_name == NULL)
        return config_fail(err, errlen, "upstream.sentinels: needs upstream.master_name");
    return config_validate_hosts(cfg->sentinels, "upstream.sentinels", err, errlen);
}

int config_validate(const struct config *cfg, char *err, size_t errlen)
{
    if (cfg->listen == NULL)
        return config_fail(err, errlen, "listen: needs a value");
    if (cfg->upstream == NULL)
        return config_fail(err, errlen, "upstream.address: needs a value");
    if (cfg->upstream_username != NULL && cfg->upstream_password == NULL)
        return config_fail(err, errlen, "upstream.username: needs upstream.password");
    if (strcmp(cfg->listen, cfg->upstream) == 0)
        return config_fail(err, errlen, "listen: must differ from upstream.address");
    if (cfg->max_bulk_len > cfg->max_query_buffer)
        return config_fail(err, errlen,
                           "limits.max_bulk_len: must not exceed clients.max_query_buffer");
    if (cfg->max_inline_len > cfg->max_query_buffer)
        return config_fail(err, errlen,
                           "limits.max_inline_len: must not exceed clients.max_query_buffer");
    if (config_validate_tls(cfg, err, errlen) < 0 || config_validate_topology(cfg, err, errlen) < 0)
        return -1;
    if (config_admin_on(cfg)) {
        const char *why = config_address_check(cfg->admin_listen);
        if (why != NULL)
            return config_fail(err, errlen, "admin.listen: %s, or none", why);
        if (strcmp(cfg->admin_listen, cfg->listen) == 0)
            return config_fail(err, errlen, "admin.listen: must differ from listen");
    }
    return prefixes_check(cfg->cache_tracking_prefixes, err, errlen);
}

bool config_tls_on(const struct config *cfg)
{
    return cfg->tls_listen != NULL && strcmp(cfg->tls_listen, "none") != 0;
}

int config_tls_auth(const struct config *cfg)
{
    static const char *const WORDS[] = {"no", "optional", "yes"};
    for (int i = 0; i < 3; i++) {
        if (cfg->tls_auth_clients != NULL && strcasecmp(cfg->tls_auth_clients, WORDS[i]) == 0)
            return i;
    }
    return -1;
}

bool config_admin_on(const struct config *cfg)
{
    return cfg->admin_listen != NULL && strcmp(cfg->admin_listen, "none") != 0;
}

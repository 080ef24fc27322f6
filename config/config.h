/* config.h - nearcache settings: defaults, YAML file, environment, flags.
 *
 * Every setting has one dotted name ("upstream.pool_size") used alike in the
 * YAML file (as nested maps), in the environment (NEARCACHE_UPSTREAM_POOL_SIZE)
 * and on the command line (--set upstream.pool_size=8). Later sources override
 * earlier ones: defaults, file, environment, flags. Pure: no sockets, no loop.
 */
#ifndef NEARCACHE_CONFIG_H
#define NEARCACHE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/log.h"

struct config {
    char *listen;          /* "host:port", "[v6]:port" or a unix socket path */
    log_level_e log_level; /* log_level */

    char *upstream;          /* upstream.address: Redis, same forms as listen */
    char *upstream_username; /* upstream.username: ACL user for AUTH, or NULL */
    char *upstream_password; /* upstream.password: AUTH password, or NULL */
    int upstream_database;   /* upstream.database: SELECTed on every connection */
    int pool_size;           /* upstream.pool_size: shared connections */
    int idle_dedicated;      /* upstream.idle_dedicated: spare dedicated conns kept */
    int connect_timeout_ms;  /* upstream.connect_timeout */
    int request_timeout_ms;  /* upstream.timeout: reply deadline, blocking commands exempt */
    int reconnect_max_ms;    /* upstream.reconnect_max: backoff ceiling */

    int max_clients;            /* clients.max */
    int64_t max_query_buffer;   /* clients.max_query_buffer: bytes of unparsed requests */
    int64_t max_output_buffer;  /* clients.max_output_buffer: bytes of unsent replies */
    int client_idle_timeout_ms; /* clients.idle_timeout: 0 = never */

    int64_t max_bulk_len;      /* limits.max_bulk_len */
    int64_t max_multibulk_len; /* limits.max_multibulk_len */
    int64_t max_inline_len;    /* limits.max_inline_len */

    bool cache_enabled;            /* cache.enabled */
    int64_t cache_max_memory;      /* cache.max_memory: bytes of the local tier, all counted */
    int64_t cache_max_entry;       /* cache.max_entry: largest reply cached */
    int cache_ttl_ms;              /* cache.ttl: longest an entry lives locally */
    bool cache_tracking;           /* cache.tracking: invalidate through CLIENT TRACKING */
    char *cache_tracking_prefixes; /* cache.tracking_prefixes: BCAST mode, comma-separated */

    int drain_timeout_ms; /* shutdown.drain_timeout */
};

/* Fills cfg with the defaults. Strings are heap copies owned by cfg. */
void config_init(struct config *cfg);

/* Frees the strings cfg owns and leaves it zeroed. */
void config_deinit(struct config *cfg);

/* Applies the YAML file at path over cfg. Unknown keys, wrong types and values
 * out of range are errors. Returns 0, or -1 with err = "path:line: key: reason". */
int config_load_file(struct config *cfg, const char *path, char *err, size_t errlen);

/* Applies every NEARCACHE_<NAME> variable of envp (NULL-terminated) that names a
 * setting; NEARCACHE_ variables that name none are errors. Returns 0, or -1 with
 * err = "NEARCACHE_X: key: reason". */
int config_load_env(struct config *cfg, char *const *envp, char *err, size_t errlen);

/* Sets one setting by dotted name from its text form ("64mb", "2s", "debug").
 * Returns 0, or -1 with err = "key: reason". */
int config_set(struct config *cfg, const char *key, const char *value, char *err, size_t errlen);

/* Checks rules that span settings. Returns 0, or -1 with err = "key: reason". */
int config_validate(const struct config *cfg, char *err, size_t errlen);

#endif

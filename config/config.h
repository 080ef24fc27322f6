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

#include "proxy/lib/log.h"

struct policy;
struct users;

struct config {
    char *listen;            /* "host:port", "[v6]:port" or a unix socket path */
    log_level_e log_level;   /* log_level */
    log_format_e log_format; /* log_format: text or json */

    char *upstream;                 /* upstream.address: Redis, same forms as listen */
    char *upstream_username;        /* upstream.username: ACL user for AUTH, or NULL */
    char *upstream_password;        /* upstream.password: AUTH password, or NULL */
    int upstream_database;          /* upstream.database: SELECTed on every connection */
    int workers;                    /* event loops, each on a thread; 0: one per CPU (server.c) */
    int pool_size;                  /* upstream.pool_size: shared connections (per worker) */
    int idle_dedicated;             /* upstream.idle_dedicated: spare dedicated conns kept */
    int connect_timeout_ms;         /* upstream.connect_timeout */
    int request_timeout_ms;         /* upstream.timeout: reply deadline, blocking commands exempt */
    int reconnect_max_ms;           /* upstream.reconnect_max: backoff ceiling */
    bool upstream_tls;              /* upstream.tls: every upstream connection speaks TLS */
    char *upstream_tls_ca_file;     /* upstream.tls_ca_file: NULL = the system store */
    char *upstream_tls_cert_file;   /* upstream.tls_cert_file: client certificate, or NULL */
    char *upstream_tls_key_file;    /* upstream.tls_key_file */
    char *upstream_tls_server_name; /* upstream.tls_server_name: NULL = the address's host */
    bool upstream_tls_verify;       /* upstream.tls_verify: check Redis's certificate */
    char *sentinels;                /* upstream.sentinels: comma-separated host:port, or NULL */
    char *master_name;              /* upstream.master_name: the primary Sentinel names */
    char *sentinel_username;        /* upstream.sentinel_username: AUTH user, or NULL */
    char *sentinel_password;        /* upstream.sentinel_password: AUTH password, or NULL */
    char *cluster;                  /* upstream.cluster: seed nodes, comma-separated host:port */
    int cluster_refresh_ms;         /* upstream.cluster_refresh: the slot map is read this often */
    int cluster_max_redirects; /* upstream.cluster_max_redirects: MOVED/ASK followed per request */

    char *tls_listen;       /* tls.listen: the TLS listener; NULL or "none": off */
    char *tls_cert_file;    /* tls.cert_file: its certificate chain */
    char *tls_key_file;     /* tls.key_file */
    char *tls_ca_file;      /* tls.ca_file: CAs client certificates are checked against */
    char *tls_auth_clients; /* tls.auth_clients: no, optional or yes (config_tls_auth) */

    int max_clients;            /* clients.max */
    int64_t max_query_buffer;   /* clients.max_query_buffer: bytes of unparsed requests */
    int64_t max_output_buffer;  /* clients.max_output_buffer: bytes of unsent replies */
    int client_idle_timeout_ms; /* clients.idle_timeout: 0 = never */
    char *clients_password;     /* clients.password: the default user's, like requirepass */

    int64_t max_bulk_len;      /* limits.max_bulk_len */
    int64_t max_multibulk_len; /* limits.max_multibulk_len */
    int64_t max_inline_len;    /* limits.max_inline_len */

    bool cache_enabled;            /* cache.enabled */
    int64_t cache_max_memory;      /* cache.max_memory: bytes of the local tier, all counted */
    int64_t cache_max_entry;       /* cache.max_entry: largest reply cached */
    int cache_ttl_ms;              /* cache.ttl: longest an entry lives locally */
    bool cache_tracking;           /* cache.tracking: invalidate through CLIENT TRACKING */
    char *cache_tracking_prefixes; /* cache.tracking_prefixes: BCAST mode, comma-separated */
    int cache_audit_rate;          /* cache.audit_rate: re-read 1 hit in this many; 0 off */
    int hotkeys_sample;            /* hotkeys.sample: sample 1 request in this many; 0 off */

    int drain_timeout_ms; /* shutdown.drain_timeout */

    char *admin_listen; /* admin.listen: the HTTP admin endpoint; NULL or "none": off */
    char *admin_token;  /* admin.token: bearer token the admin actions require */
    bool watch_config;  /* watch_config: reload when the config file changes */

    /* policy: the rules of the file's policy section, added but not built
     * (policy_build is the proxy's: it needs the policy being replaced), or
     * NULL when the file has none or it is null/empty. Owned by cfg. */
    struct policy *policy;

    /* clients.users: the users clients authenticate as (policy/users.h), or
     * NULL. Owned by cfg. With clients.password, client authentication is
     * on (config_client_auth). */
    struct users *users;
};

/* Whether clients must authenticate at the proxy. */
bool config_client_auth(const struct config *cfg);

/* Fills cfg with the defaults. Strings are heap copies owned by cfg. */
void config_init(struct config *cfg);

/* Frees the strings and the policy cfg owns and leaves it zeroed. */
void config_deinit(struct config *cfg);

/* Applies the YAML file at path over cfg, all or nothing. Unknown keys, wrong
 * types and values out of range are errors. A policy section replaces
 * cfg->policy (destroying the old one); without one cfg->policy is kept.
 * Returns 0, or -1 with err = "path:line: key: reason" and cfg unchanged. */
int config_load_file(struct config *cfg, const char *path, char *err, size_t errlen);

/* As config_load_file, for the YAML text text[0..len) (borrowed; NUL bytes
 * allowed), named name in errors: "name:line: key: reason". */
int config_load_buffer(struct config *cfg, const char *text, size_t len, const char *name,
                       char *err, size_t errlen);

/* Applies every NEARCACHE_<NAME> variable of envp (NULL-terminated) that names a
 * setting; NEARCACHE_ variables that name none are errors. Returns 0, or -1 with
 * err = "NEARCACHE_X: key: reason". */
int config_load_env(struct config *cfg, char *const *envp, char *err, size_t errlen);

/* Sets one setting by dotted name from its text form ("64mb", "2s", "debug").
 * Returns 0, or -1 with err = "key: reason". */
int config_set(struct config *cfg, const char *key, const char *value, char *err, size_t errlen);

/* Checks rules that span settings, and the items of cache.tracking_prefixes:
 * none empty, none a prefix of another or repeated (Redis refuses a BCAST
 * registration whose prefixes overlap). Returns 0, or -1 with err =
 * "key: reason"; a prefix quoted in it is cut to a few dozen bytes. */
int config_validate(const struct config *cfg, char *err, size_t errlen);

/* Splits a comma-separated setting (cache.tracking_prefixes) into *items, a
 * heap copy of text with each comma turned into a NUL: item i + 1 starts
 * after the NUL of item i. Empty items are kept ("a,,b," is 4 items), so a
 * validated setting has none. *items is owned by the caller; NULL and n 0
 * when text is NULL. Returns 0, or -1 when out of memory. */
int config_list_split(const char *text, char **items, size_t *n);

/* For a reload: gives next the running values of the settings a running
 * proxy cannot change (the listener, the upstream and its pool, the local
 * tier's size and tracking), calling changed(arg, name) for each whose value
 * next had differed. Strings are swapped between the two, so those cur holds
 * stay valid once next replaces it. */
void config_keep_fixed(struct config *next, struct config *cur,
                       void (*changed)(void *arg, const char *name), void *arg);

/* Whether the TLS listener is on (tls.listen neither unset nor "none"). */
bool config_tls_on(const struct config *cfg);

/* tls.auth_clients as 0 (no), 1 (optional) or 2 (yes); -1 when it is none of them. */
int config_tls_auth(const struct config *cfg);

/* Whether the admin endpoint is on (admin.listen neither unset nor "none"). */
bool config_admin_on(const struct config *cfg);

/* Calls fn(arg, name, value) for every setting in table order, with its
 * value as text as it would be written in the file ("5s", "64mb", "true"),
 * NULL for an unset string; secrets (passwords and tokens) that are set
 * come as "<redacted>". */
void config_describe(const struct config *cfg,
                     void (*fn)(void *arg, const char *name, const char *value), void *arg);

/* ---- for section loaders (config/policy_yaml.c) -------------------------- */

typedef enum {
    CONFIG_NUMBER,   /* plain integer */
    CONFIG_BYTES,    /* integer with an optional b/kb/mb/gb suffix */
    CONFIG_DURATION, /* milliseconds: integer with an optional ms/s/m suffix */
} config_amount_e;

/* Parses text as the settings of that kind are parsed and checks that
 * min <= value <= max. Returns 0 with *out set, or -1 with a one-line reason
 * ("expected a size like 64mb", "must be between 1ms and 60m"). */
int config_parse_amount(config_amount_e kind, const char *text, int64_t min, int64_t max,
                        int64_t *out, char *reason, size_t len);

/* Parses true/false, yes/no, on/off in any case. Returns 0 with *out set, or
 * -1 with a one-line reason. */
int config_parse_bool(const char *text, bool *out, char *reason, size_t len);

#endif

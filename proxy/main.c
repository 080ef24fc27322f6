/* main.c - command line, configuration, process setup. */
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "config/config.h"
#include "policy/policy.h"
#include "proxy/lib/log.h"
#include "proxy/server.h"
#include "proxy/tls.h"
#include "proxy/tools/tools.h"

#define NEARCACHE_VERSION "0.1.0"

extern char **environ;

static const char USAGE[] =
    "usage: nearcache [options]\n"
    "       nearcache <tool> [options]   (nearcache help: the tools; nearcache <tool> --help)\n"
    "  -c, --config FILE       read settings from a YAML file (or NEARCACHE_CONFIG)\n"
    "  -l, --listen ADDR       host:port or unix socket path to accept clients on\n"
    "  -u, --upstream ADDR     Redis to forward to (host:port or unix socket path)\n"
    "  -s, --set KEY=VALUE     set any setting by its dotted name (repeatable)\n"
    "      --log-level LEVEL   crit, error, warn, notice, info or debug\n"
    "      --check-config      validate the settings and exit (0 valid, 2 invalid)\n"
    "  -v, --version           print the version and exit\n"
    "  -h, --help              print this help and exit\n";

/* Flags that are shorthand for a setting, in the order given. */
struct flag_setting {
    const char *key;
    const char *value;
};

struct options {
    const char *config_path;
    bool check_only;
    struct flag_setting sets[64];
    int nsets;
};

static int parse_args(int argc, char **argv, struct options *o)
{
    static const struct option LONG[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"upstream", required_argument, NULL, 'u'},
        {"set", required_argument, NULL, 's'},
        {"log-level", required_argument, NULL, 'L'},
        {"check-config", no_argument, NULL, 'C'},
        {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    o->config_path = getenv("NEARCACHE_CONFIG");
    int opt;
    while ((opt = getopt_long(argc, argv, "c:l:u:s:vh", LONG, NULL)) != -1) {
        if (opt == 'c') {
            o->config_path = optarg;
        } else if (opt == 'C') {
            o->check_only = true;
        } else if (opt == 'v') {
            printf("nearcache %s\n", NEARCACHE_VERSION);
            exit(0);
        } else if (opt == 'h') {
            fputs(USAGE, stdout);
            exit(0);
        } else if (opt == '?' || o->nsets == (int)(sizeof(o->sets) / sizeof(o->sets[0]))) {
            fputs(USAGE, stderr);
            return -1;
        } else {
            struct flag_setting *f = &o->sets[o->nsets++];
            f->key = opt == 'l'   ? "listen"
                     : opt == 'u' ? "upstream.address"
                     : opt == 'L' ? "log_level"
                                  : NULL;
            f->value = optarg;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "nearcache: unexpected argument '%s'\n%s", argv[optind], USAGE);
        return -1;
    }
    return 0;
}

/* Applies one --set KEY=VALUE (or a shorthand flag). */
static int apply_flag(struct config *cfg, const struct flag_setting *f, char *err, size_t errlen)
{
    if (f->key != NULL)
        return config_set(cfg, f->key, f->value, err, errlen);
    const char *eq = strchr(f->value, '=');
    if (eq == NULL || eq == f->value) {
        snprintf(err, errlen, "--set %s: expected KEY=VALUE", f->value);
        return -1;
    }
    char key[128];
    snprintf(key, sizeof(key), "%.*s", (int)(eq - f->value), f->value);
    return config_set(cfg, key, eq + 1, err, errlen);
}

/* Defaults, then the file, the environment and the flags. */
static int load_config(struct config *cfg, const struct options *o, char *err, size_t errlen)
{
    config_init(cfg);
    if (o->config_path != NULL && config_load_file(cfg, o->config_path, err, errlen) < 0)
        return -1;
    if (config_load_env(cfg, environ, err, errlen) < 0)
        return -1;
    for (int i = 0; i < o->nsets; i++) {
        if (apply_flag(cfg, &o->sets[i], err, errlen) < 0)
            return -1;
    }
    return config_validate(cfg, err, errlen);
}

/* reload_load_fn: the settings again, from the same sources, for a reload. */
static int reload_config(void *arg, struct config *out, char *err, size_t errlen)
{
    return load_config(out, arg, err, errlen);
}

/* --check-config: the settings loaded, the TLS certificates and keys read
 * and the policy built as the proxy would. Returns the exit status. */
static int check_config(struct config *cfg, const struct options *o)
{
    char err[512];
    const char *what = o->config_path != NULL ? o->config_path : "settings";
    size_t rules = 0;
    SSL_CTX *listen = tls_listen_ctx(cfg, err, sizeof(err));
    SSL_CTX *upstream =
        listen != NULL || err[0] == '\0' ? tls_upstream_ctx(cfg, err, sizeof(err)) : NULL;
    SSL_CTX_free(listen);
    SSL_CTX_free(upstream);
    if (err[0] != '\0') {
        fprintf(stderr, "%s: %s\n", what, err);
        return 2;
    }
    if (cfg->policy != NULL) {
        if (policy_build(cfg->policy, NULL, err, sizeof(err)) < 0) {
            fprintf(stderr, "%s: policy: %s\n", what, err);
            return 2;
        }
        rules = policy_rule_count(cfg->policy);
    }
    printf("%s: ok (%zu policy rules)\n", what, rules);
    return 0;
}

int main(int argc, char **argv)
{
    struct options opts = {0};
    if (argc > 1 && argv[1][0] != '-')
        return tools_main(argc - 1, argv + 1);
    if (parse_args(argc, argv, &opts) < 0)
        return 2;
    if (log_debug_setup(getenv("NEARCACHE_DEBUG")) < 0) {
        fputs("NEARCACHE_DEBUG: expected 0 or 1\n", stderr);
        return 2;
    }
    struct config cfg;
    char err[512];
    if (load_config(&cfg, &opts, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        config_deinit(&cfg);
        return 2;
    }
    if (opts.check_only) {
        int rc = check_config(&cfg, &opts);
        config_deinit(&cfg);
        return rc;
    }
    log_configure(cfg.log_level, cfg.log_format);
    /* Large replies and requests (100 KB values) pass through buffers of
     * their size: keep freed memory in the heap rather than handing it back
     * to the kernel and faulting it in again for the next one (that cost ten
     * times the throughput with 50 clients reading 100 KB values). */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    struct server srv;
    int status = 1;
    if (server_setup(&srv, loop, &cfg, reload_config, &opts, opts.config_path) == 0)
        status = server_run(&srv);
    server_teardown(&srv);
    config_deinit(&cfg);
    return status;
}

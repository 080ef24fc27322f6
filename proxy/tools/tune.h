/* tune.h - `nearcache tune`: a short, bounded load through the proxy on
 * scratch keys under a prefix, measured (miss and hit latency, throughput,
 * the proxy's STATS before and after) and turned into recommendations for
 * upstream.pool_size, cache.max_memory and the cache rules.
 *
 * Only keys named PREFIX + a number are written, read and deleted; the run
 * refuses to start when any key exists under the prefix (unless force), and
 * deletes its keys at the end, also when stopped early through *stop.
 */
#ifndef NEARCACHE_TOOLS_TUNE_H
#define NEARCACHE_TOOLS_TUNE_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define TUNE_DURATION_MAX 60.0
#define TUNE_KEYS_MAX     1000000
#define TUNE_CLIENTS_MAX  64
#define TUNE_VALUE_MAX    (1024 * 1024)

/* What to run. Strings are borrowed. */
struct tune_options {
    const char *proxy;           /* host:port or unix socket path */
    const char *password;        /* AUTH, NULL for none */
    const char *prefix;          /* scratch key prefix, no glob characters */
    double duration;             /* seconds of reading, 0.5 to TUNE_DURATION_MAX */
    unsigned long keys;          /* 1 to TUNE_KEYS_MAX */
    unsigned value_size;         /* bytes, 1 to TUNE_VALUE_MAX */
    int clients;                 /* connections reading at once, 1 to TUNE_CLIENTS_MAX */
    bool force;                  /* run even when keys exist under the prefix */
    volatile sig_atomic_t *stop; /* non-zero: end the phases now and clean up; may be NULL */
};

/* Fills o with the defaults: prefix "nearcache:tune:", 5 s, 10000 keys of
 * 100 bytes, 4 clients; proxy NULL. */
void tune_options_init(struct tune_options *o);

/* Checks o. Returns 0, or -1 with a reason in err (a usage error). */
int tune_options_check(const struct tune_options *o, char *err, size_t errlen);

/* Runs the tuning load described by o, bounded by o->duration plus the
 * writing and deleting of the keys. Returns a new JSON report (see README.md,
 * "nearcache tune"), or NULL with a one-line reason in err when o is invalid,
 * the proxy cannot be reached or is not nearcache, keys exist under the
 * prefix without force, or the run failed (its keys deleted in every case
 * once it began writing them). */
json_t *tune_run(const struct tune_options *o, char *err, size_t errlen);

/* Writes the report as text: figures, then one line per recommendation. */
void tune_print(FILE *out, const json_t *report);

/* The command line: nearcache tune --proxy ADDR [options] (see README.md).
 * SIGINT and SIGTERM end the run early, its keys deleted. Returns 0, 1 when
 * the run failed or was refused, 2 for bad usage. */
int tune_main(int argc, char **argv);

#endif

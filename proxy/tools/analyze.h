/* analyze.h - `nearcache analyze`: what a Redis keyspace holds, and the
 * cache rules that would suit it.
 *
 * A run walks the keyspace with SCAN (never KEYS), on one Redis or on every
 * primary of a cluster, bounded by max_keys and paced by rate; groups the
 * keys into patterns (proxy/tools/patterns.h); samples some keys of each
 * pattern (TYPE, MEMORY USAGE, PTTL, OBJECT ENCODING, pipelined); reads a
 * running proxy's figures when asked (NEARCACHE HOTKEYS, STATS, POLICY);
 * and advises (proxy/tools/advise.h). Blocking I/O through hiredis.
 */
#ifndef NEARCACHE_ANALYZE_H
#define NEARCACHE_ANALYZE_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ANALYZE_MAX_KEYS 100000 /* default max_keys */
#define ANALYZE_RATE     5000   /* default rate, keys per second */
#define ANALYZE_SAMPLES  32     /* default samples per pattern */

/* Every string is borrowed for the run; NULL leaves the item out. */
struct analyze_options {
    const char *upstream; /* host:port or a unix socket path */
    const char *cluster;  /* a seed host:port: walk every primary instead */
    const char *user;     /* ACL user for AUTH (with password) */
    const char *password; /* AUTH on every Redis connection */
    int db;               /* SELECT on a single Redis */
    const char *match;    /* SCAN MATCH glob */
    uint64_t max_keys;    /* stop after this many keys (>= 1) */
    double rate;          /* keys scanned or sampled per second; 0 = unpaced */
    unsigned samples;     /* keys sampled per pattern */
    const char *proxy;    /* a running nearcache to read figures from */
    const char *proxy_password;
    bool progress;               /* draw a progress bar on stderr */
    volatile sig_atomic_t *stop; /* non-zero: end the walk now, reporting what was seen;
                                    may be NULL */
};

/* The defaults: 127.0.0.1:6379, ANALYZE_MAX_KEYS, ANALYZE_RATE,
 * ANALYZE_SAMPLES, the rest off. */
void analyze_options_init(struct analyze_options *o);

/* Runs the analysis o describes. Returns the report, owned by the caller
 * (json_decref), with "source", "scan", "patterns" (each with its figures,
 * "advice", "risks" and the cache "rule" advised, or null), "proxy" (null
 * without o->proxy) and "advice"; see README "Analysis and tools". NULL with
 * a one-line reason in err on a failure: Redis unreachable, refusing
 * (authentication), or out of memory. */
json_t *analyze_run(const struct analyze_options *o, char *err, size_t errlen);

/* `nearcache analyze [options]` (tools_main_fn): parses the options, runs,
 * prints the table (or the JSON with --json) and writes --emit-policy.
 * Returns 0, 1 on a runtime failure, 2 on bad usage. */
int analyze_main(int argc, char **argv);

#endif

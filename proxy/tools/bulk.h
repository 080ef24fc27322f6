/* bulk.h - `nearcache bulk`: operations read from text lines or a JSON array
 * (get, set with a TTL, del, invalidate by pattern) run against the proxy or
 * Redis, pipelined in batches, with a result per operation and a summary.
 *
 * Text input: one operation per line, its words split as redis-cli splits
 * them (double quotes with \", \\, \n, \r, \t, \a, \b and \xNN escapes; single
 * quotes with \'), so keys and values may hold spaces and any byte:
 *
 *     get KEY
 *     set KEY VALUE [ttl SECONDS]
 *     del KEY
 *     invalidate PATTERN          (NEARCACHE INVALIDATE PATTERN: the proxy only)
 *
 * Blank lines and lines starting with '#' are skipped. A malformed line
 * becomes a BULK_INVALID operation that carries its reason, so it is reported
 * in place and the others still run.
 */
#ifndef NEARCACHE_TOOLS_BULK_H
#define NEARCACHE_TOOLS_BULK_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

typedef enum {
    BULK_GET,
    BULK_SET,
    BULK_DEL,
    BULK_INVALIDATE,
    BULK_INVALID, /* not run: error says why */
} bulk_kind_e;

/* One operation. Every pointer is owned by the list that holds it. */
struct bulk_op {
    bulk_kind_e kind;
    unsigned long line; /* text: the 1-based line; JSON: the 0-based index */
    char *key;          /* the pattern for BULK_INVALIDATE */
    size_t key_len;
    char *value; /* BULK_SET only */
    size_t value_len;
    long long ttl; /* BULK_SET: seconds (SET ... EX), 0 for none */
    char *error;   /* BULK_INVALID only */
};

/* A growing array of operations. A zeroed struct is an empty list. */
struct bulk_list {
    struct bulk_op *ops;
    size_t n, cap;
};

/* Frees every operation and the array, leaving l empty. */
void bulk_list_deinit(struct bulk_list *l);

/* Parses every line of f into l. Returns 0, or -1 with a reason in err when
 * f cannot be read or memory runs out. */
int bulk_parse_file(struct bulk_list *l, FILE *f, char *err, size_t errlen);

/* Parses a JSON array of objects {"op": "get"|"set"|"del"|"invalidate",
 * "key": K, "value": V (set), "ttl": SECONDS (set, optional), "pattern": P
 * (invalidate)} into l; a bad element becomes a BULK_INVALID op numbered by
 * its index. Returns 0, or -1 with a reason in err when ops is not an array
 * or memory runs out. */
int bulk_parse_json(struct bulk_list *l, const json_t *ops, char *err, size_t errlen);

/* Runs ops[0..n) on c (borrowed, connected), batch operations per round
 * trip (1 or more). Returns a new JSON object {"results": [...], "summary":
 * {...}} (see README.md, "nearcache bulk"); when the connection fails midway
 * the summary's "aborted" holds the reason and the unrun operations have no
 * result. NULL with a reason in err only when memory runs out. */
json_t *bulk_run(redisContext *c, const struct bulk_op *ops, size_t n, size_t batch, char *err,
                 size_t errlen);

/* The command line: nearcache bulk --target ADDR [options] (see README.md).
 * Returns 0 when every operation succeeded, 1 when one failed or the target
 * could not be reached, 2 for bad usage. */
int bulk_main(int argc, char **argv);

#endif

/* hygiene.c - the example extension module: key hygiene and TTL jitter.
 *
 * Written to be copied. A module is a struct policy_module of hooks, any of
 * which may be NULL; create parses the module's settings from the policy
 * (strings, one per YAML key) into a state that every hook receives. Hooks
 * run on the request path: no I/O, no allocation, no blocking.
 */
#include "policy/hygiene.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/lib/hash.h"

#define JITTER_MAX 50 /* percent */

struct hygiene {
    bool allow_spaces;
    unsigned jitter; /* percent */
};

/* ---- settings -------------------------------------------------------------- */

/* Parses value into the field of h an arg names; -1 on a bad value. */
typedef int (*hygiene_parse_fn)(struct hygiene *h, const char *value);

static int parse_allow_spaces(struct hygiene *h, const char *value)
{
    if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0)
        return -1;
    h->allow_spaces = strcmp(value, "true") == 0;
    return 0;
}

static int parse_jitter(struct hygiene *h, const char *value)
{
    char *end;
    long v = strtol(value, &end, 10);

    if (end == value || *end != '\0' || v < 0 || v > JITTER_MAX)
        return -1;
    h->jitter = (unsigned)v;
    return 0;
}

static const struct {
    const char *name;
    hygiene_parse_fn parse;
    const char *expect; /* for the error */
} ARGS[] = {
    {"allow_spaces", parse_allow_spaces, "true or false"},
    {"jitter", parse_jitter, "a whole percent from 0 to 50"},
};

static void *hygiene_create(const struct policy_module_args *args, char *err, size_t errlen)
{
    struct hygiene *h = calloc(1, sizeof(*h));

    if (h == NULL) {
        snprintf(err, errlen, "hygiene: out of memory");
        return NULL;
    }
    for (size_t i = 0; i < args->count; i++) {
        size_t a = 0;
        while (a < sizeof(ARGS) / sizeof(ARGS[0]) && strcmp(ARGS[a].name, args->names[i]) != 0)
            a++;
        if (a == sizeof(ARGS) / sizeof(ARGS[0])) {
            snprintf(err, errlen, "%.40s: unknown setting of module hygiene", args->names[i]);
        } else if (ARGS[a].parse(h, args->values[i]) < 0) {
            snprintf(err, errlen, "%s: must be %s", ARGS[a].name, ARGS[a].expect);
        } else {
            continue;
        }
        free(h);
        return NULL;
    }
    return h;
}

static void hygiene_destroy(void *state)
{
    free(state);
}

/* ---- hooks ----------------------------------------------------------------- */

static const char *hygiene_validate(void *state, const struct policy_request *r)
{
    const struct hygiene *h = state;
    unsigned char lowest = h->allow_spaces ? 0x20 : 0x21; /* first byte allowed */

    for (size_t k = 0; k < r->nkeys; k++) {
        const unsigned char *key = (const unsigned char *)r->buf + r->keys[k].off;
        for (size_t i = 0; i < r->keys[k].len; i++)
            if (key[i] < lowest || key[i] == 0x7f)
                return h->allow_spaces ? "key contains a control byte"
                                       : "key contains a space or control byte";
    }
    return NULL;
}

/* Shortens ttl_ms by a per-key fraction in [0, jitter] percent, from the
 * key's FNV-1a: the same fraction in every process. */
static uint64_t hygiene_ttl(void *state, const char *key, size_t klen, uint64_t ttl_ms)
{
    const struct hygiene *h = state;
    double fraction = (double)(hash_fnv1a32(key, klen) % 10001u) / 10000.0;

    return ttl_ms - (uint64_t)((double)ttl_ms * h->jitter / 100.0 * fraction);
}

const struct policy_module hygiene_module = {
    .name = "hygiene",
    .create = hygiene_create,
    .destroy = hygiene_destroy,
    .validate = hygiene_validate,
    .ttl = hygiene_ttl,
};

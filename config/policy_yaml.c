/* policy_yaml.c - the `policy:` section of the config file.
 *
 * The section's parts (PARTS) are loaded in a fixed order whatever their
 * order in the file, so that deny_commands becomes the first validation rule.
 * A rule is a mapping read through a table of fields (name, type, place in
 * the C rule struct): one walker checks unknown, repeated, missing and
 * mistyped keys for every kind of rule and for the nested ttl and admit
 * mappings. Sizes and durations go through config.c's parsers. Strings are
 * borrowed from the document for the policy_add_* call (the policy keeps
 * copies); only the arrays of list fields are allocated, and freed after it.
 */
#include "policy_yaml.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "config/yaml.h"
#include "policy/pattern.h"
#include "policy/policy.h"
#include "policy/users.h"

#define WHERE_MAX  128 /* longest "cache[1].ttl.min" we print */
#define REASON_MAX 256 /* longest reason, ours or a policy_add_* one */

#define GB     ((int64_t)1 << 30)
#define MIN_MS ((int64_t)60 * 1000)
#define DAY_MS (24 * 60 * MIN_MS)

#define LIMIT_MAX (4 * GB)     /* key and value limits: as limits.max_bulk_len */
#define ENTRY_MAX GB           /* max_entry, compress_over: as cache.max_entry */
#define TTL_MAX   (7 * DAY_MS) /* every duration: as cache.ttl */
#define READS_MAX 1000000      /* admit.reads */

/* One load of the section. */
struct load {
    yaml_document_t *doc;
    const char *path;
    const char *section;   /* "policy" or "clients.users", as errors name it */
    struct policy *policy; /* being filled; destroyed on any error */
    char *err;
    size_t errlen;
};

/* ---- fields -------------------------------------------------------------- */

typedef enum {
    FIELD_STRING,   /* const char *, borrowed from the document */
    FIELD_LIST,     /* const char *const * (allocated) and its size_t count: a scalar or a list */
    FIELD_ACTION,   /* policy_action_e */
    FIELD_BOOL,     /* bool */
    FIELD_BYTES,    /* int64_t, a size */
    FIELD_DURATION, /* uint64_t milliseconds */
    FIELD_COUNT,    /* uint32_t, a plain number */
    FIELD_MAP,      /* a mapping of sub fields stored in the same struct */
    FIELD_TTL,      /* a duration, or a mapping of sub fields (as FIELD_MAP) */
} field_type_e;

struct field {
    const char *name; /* the YAML key; NULL ends a table */
    field_type_e type;
    size_t offset;           /* in the struct being filled */
    size_t count;            /* FIELD_LIST: offset of the size_t count */
    int64_t min, max;        /* numbers: inclusive range */
    bool required;           /* an error when absent */
    bool patterns;           /* FIELD_LIST: items are patterns, compiled here to report a
                                syntax error at the item (policy_add_* names the field) */
    const char *dflt;        /* text applied when absent, or NULL */
    const struct field *sub; /* FIELD_MAP, FIELD_TTL: the mapping's fields */
};

#define DF(f) offsetof(struct policy_defaults, f)
#define VR(f) offsetof(struct policy_validate_rule, f)
#define CR(f) offsetof(struct policy_cache_rule, f)
#define IR(f) offsetof(struct policy_invalidate_rule, f)

static const struct field DEFAULT_FIELDS[] = {
    {.name = "action", .type = FIELD_ACTION, .offset = DF(action)},
    {.name = "max_key_length", .type = FIELD_BYTES, .offset = DF(max_key_length), .max = LIMIT_MAX},
    {.name = "max_value_size", .type = FIELD_BYTES, .offset = DF(max_value_size), .max = LIMIT_MAX},
    {.name = NULL},
};

static const struct field VALIDATE_FIELDS[] = {
    {.name = "name", .type = FIELD_STRING, .offset = VR(name), .required = true},
    {.name = "keys", .type = FIELD_STRING, .offset = VR(keys)},
    {.name = "commands", .type = FIELD_LIST, .offset = VR(commands), .count = VR(ncommands)},
    {.name = "action", .type = FIELD_ACTION, .offset = VR(action)},
    {.name = "max_key_length",
     .type = FIELD_BYTES,
     .offset = VR(max_key_length),
     .min = -1,
     .max = LIMIT_MAX},
    {.name = "max_value_size",
     .type = FIELD_BYTES,
     .offset = VR(max_value_size),
     .min = -1,
     .max = LIMIT_MAX},
    {.name = "reason", .type = FIELD_STRING, .offset = VR(reason)},
    {.name = NULL},
};

static const struct field TTL_FIELDS[] = {
    {.name = "min",
     .type = FIELD_DURATION,
     .offset = CR(ttl_min_ms),
     .max = TTL_MAX,
     .required = true},
    {.name = "max",
     .type = FIELD_DURATION,
     .offset = CR(ttl_max_ms),
     .min = 1,
     .max = TTL_MAX,
     .required = true},
    {.name = "window",
     .type = FIELD_DURATION,
     .offset = CR(ttl_window_ms),
     .min = 1,
     .max = TTL_MAX,
     .dflt = "1m"},
    {.name = NULL},
};

static const struct field ADMIT_FIELDS[] = {
    {.name = "reads",
     .type = FIELD_COUNT,
     .offset = CR(admit_reads),
     .min = 1,
     .max = READS_MAX,
     .required = true},
    {.name = "window",
     .type = FIELD_DURATION,
     .offset = CR(admit_window_ms),
     .min = 1,
     .max = TTL_MAX},
    {.name = NULL},
};

static const struct field CACHE_FIELDS[] = {
    {.name = "name", .type = FIELD_STRING, .offset = CR(name), .required = true},
    {.name = "keys", .type = FIELD_STRING, .offset = CR(keys), .required = true},
    {.name = "cache", .type = FIELD_BOOL, .offset = CR(cache)},
    {.name = "ttl", .type = FIELD_TTL, .offset = CR(ttl_ms), .max = TTL_MAX, .sub = TTL_FIELDS},
    {.name = "admit", .type = FIELD_MAP, .sub = ADMIT_FIELDS},
    {.name = "max_entry", .type = FIELD_BYTES, .offset = CR(max_entry), .max = ENTRY_MAX},
    {.name = "compress_over", .type = FIELD_BYTES, .offset = CR(compress_over), .max = ENTRY_MAX},
    {.name = NULL},
};

static const struct field INVALIDATE_FIELDS[] = {
    {.name = "name", .type = FIELD_STRING, .offset = IR(name), .required = true},
    {.name = "when", .type = FIELD_STRING, .offset = IR(when), .required = true},
    {.name = "commands", .type = FIELD_LIST, .offset = IR(commands), .count = IR(ncommands)},
    {.name = "drop",
     .type = FIELD_LIST,
     .offset = IR(drop),
     .count = IR(ndrop),
     .required = true,
     .patterns = true},
    {.name = NULL},
};

static const char *const ACTIONS[] = {
    [POLICY_ALLOW] = "allow",
    [POLICY_DENY] = "deny",
    [POLICY_READ_ONLY] = "read-only",
};

/* ---- errors -------------------------------------------------------------- */

static int fail(struct load *l, const yaml_node_t *node, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Reports "path:line: policy.where: reason" for node. Returns -1. */
static int fail(struct load *l, const yaml_node_t *node, const char *where, const char *fmt, ...)
{
    char reason[REASON_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (l->err != NULL && l->errlen > 0)
        snprintf(l->err, l->errlen, "%s:%zu: %s%s%s: %s", l->path,
                 (size_t)node->start_mark.line + 1, l->section,
                 where[0] == '\0' || where[0] == '[' ? "" : ".", where, reason);
    return -1;
}

/* Writes "where.name" into child (WHERE_MAX bytes), each part cut short to
 * 63 bytes: no nesting of the schema comes near it, only a long unknown key.
 * Called for every key of every rule: no printf. */
static void where_key(char *child, const char *where, const char *name)
{
    size_t at = strnlen(where, 63), n = strnlen(name, 63);

    memcpy(child, where, at);
    if (at > 0)
        child[at++] = '.';
    memcpy(child + at, name, n);
    child[at + n] = '\0';
}

/* Writes "where[i]" into child (WHERE_MAX bytes). */
static void where_index(char *child, const char *where, size_t i)
{
    snprintf(child, WHERE_MAX, "%.100s[%zu]", where, i);
}

static size_t map_len(const yaml_node_t *map)
{
    return (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
}

static size_t list_len(const yaml_node_t *list)
{
    return (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
}

/* The value of the key name[0..n) in map, or NULL. */
static yaml_node_t *map_get(struct load *l, const yaml_node_t *map, const char *name, size_t n)
{
    for (size_t i = 0; map->type == YAML_MAPPING_NODE && i < map_len(map); i++) {
        const yaml_node_pair_t *pair = &map->data.mapping.pairs.start[i];
        const yaml_node_t *key = yaml_document_get_node(l->doc, pair->key);
        if (key->type == YAML_SCALAR_NODE && key->data.scalar.length == n &&
            memcmp(key->data.scalar.value, name, n) == 0)
            return yaml_document_get_node(l->doc, pair->value);
    }
    return NULL;
}

/* The node that field (as "ttl.min", "drop[1]", from a policy_add_* error)
 * names under node, or NULL. When self is not NULL, node itself is the field
 * called self (the list of deny_commands is its rule's "commands"). */
static yaml_node_t *node_at(struct load *l, yaml_node_t *node, const char *field, size_t len,
                            const char *self)
{
    size_t i = 0;
    while (i < len && node != NULL) {
        if (field[i] == '[') {
            char *end;
            unsigned long idx = strtoul(field + i + 1, &end, 10);
            if (node->type != YAML_SEQUENCE_NODE || end == field + i + 1 || *end != ']' ||
                idx >= list_len(node))
                return NULL;
            node = yaml_document_get_node(l->doc, node->data.sequence.items.start[idx]);
            i = (size_t)(end - field) + 1;
            continue;
        }
        if (field[i] == '.' && i > 0)
            i++;
        size_t n = strcspn(field + i, ".[");
        n = n < len - i ? n : len - i;
        if (n == 0)
            return NULL;
        if (i == 0 && self != NULL) {
            if (n != strlen(self) || strncmp(field, self, n) != 0)
                return NULL;
        } else {
            node = map_get(l, node, field + i, n);
        }
        i += n;
    }
    return node;
}

/* The index of the first item of list that reason quotes ('item'), or -1. */
static long quoted_item(struct load *l, const yaml_node_t *list, const char *reason)
{
    char quoted[REASON_MAX];
    for (size_t i = 0; i < list_len(list); i++) {
        const yaml_node_t *item =
            yaml_document_get_node(l->doc, list->data.sequence.items.start[i]);
        const char *text = item->type == YAML_SCALAR_NODE ? config_yaml_text(item) : NULL;
        if (text != NULL &&
            (size_t)snprintf(quoted, sizeof(quoted), "'%s'", text) < sizeof(quoted) &&
            strstr(reason, quoted) != NULL)
            return (long)i;
    }
    return -1;
}

/* Reports text, a "field: reason" error of a policy_add_* call about the rule
 * (or defaults, or module) at node: at the field's own node when node has
 * that field (at the item of a list the reason quotes), else whole at node.
 * self as for node_at. */
static int add_fail(struct load *l, yaml_node_t *node, const char *where, const char *self,
                    const char *text)
{
    char child[WHERE_MAX];
    const char *colon = strstr(text, ": ");
    size_t len = colon != NULL ? (size_t)(colon - text) : 0;
    bool plain = len > 0 && strspn(text, "abcdefghijklmnopqrstuvwxyz"
                                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.[]") == len;
    yaml_node_t *at = plain ? node_at(l, node, text, len, self) : NULL;
    if (at == NULL)
        return fail(l, node, where, "%s", text);
    if (self != NULL)
        snprintf(child, sizeof(child), "%s%.*s", where, (int)(len - strlen(self)),
                 text + strlen(self));
    else
        snprintf(child, sizeof(child), "%s%s%.*s", where, where[0] ? "." : "", (int)len, text);
    long i = at->type == YAML_SEQUENCE_NODE ? quoted_item(l, at, colon + 2) : -1;
    if (i >= 0) {
        size_t n = strlen(child);
        snprintf(child + n, sizeof(child) - n, "[%ld]", i);
        at = yaml_document_get_node(l->doc, at->data.sequence.items.start[i]);
    }
    return fail(l, at, child, "%s", colon + 2);
}

/* ---- values -------------------------------------------------------------- */

/* Sets *text to the text of node, which must be a scalar. */
static int scalar(struct load *l, const yaml_node_t *node, const char *where, const char **text)
{
    const char *why = config_yaml_value(node, text);
    return why == NULL ? 0 : fail(l, node, where, "%s", why);
}

static void *field_at(void *base, const struct field *f)
{
    return (char *)base + f->offset;
}

static const char *const **list_at(void *base, const struct field *f)
{
    return (const char *const **)field_at(base, f);
}

/* Frees the arrays of the list fields in base. */
static void fields_free(const struct field *fields, void *base)
{
    for (const struct field *f = fields; f->name != NULL; f++) {
        if (f->type == FIELD_LIST)
            free((void *)*list_at(base, f));
    }
}

static int set_action(struct load *l, const struct field *f, const yaml_node_t *node,
                      const char *where, const char *text, void *base)
{
    for (size_t i = 0; i < sizeof(ACTIONS) / sizeof(ACTIONS[0]); i++) {
        if (strcasecmp(text, ACTIONS[i]) == 0) {
            *(policy_action_e *)field_at(base, f) = (policy_action_e)i;
            return 0;
        }
    }
    return fail(l, node, where, "expected allow, deny or read-only");
}

static int set_number(struct load *l, const struct field *f, const yaml_node_t *node,
                      const char *where, const char *text, void *base)
{
    static const config_amount_e KIND[] = {
        [FIELD_BYTES] = CONFIG_BYTES,
        [FIELD_DURATION] = CONFIG_DURATION,
        [FIELD_TTL] = CONFIG_DURATION,
        [FIELD_COUNT] = CONFIG_NUMBER,
    };
    char reason[REASON_MAX];
    int64_t v = 0;
    if (config_parse_amount(KIND[f->type], text, f->min, f->max, &v, reason, sizeof(reason)) != 0)
        return fail(l, node, where, "%s", reason);
    if (f->type == FIELD_BYTES)
        *(int64_t *)field_at(base, f) = v;
    else if (f->type == FIELD_COUNT)
        *(uint32_t *)field_at(base, f) = (uint32_t)v;
    else
        *(uint64_t *)field_at(base, f) = (uint64_t)v;
    return 0;
}

/* Stores text, the value of field f, in base; node and where for errors. */
static int set_text(struct load *l, const struct field *f, const yaml_node_t *node,
                    const char *where, const char *text, void *base)
{
    char reason[REASON_MAX];
    switch (f->type) {
    case FIELD_STRING:
        *(const char **)field_at(base, f) = text;
        return 0;
    case FIELD_ACTION:
        return set_action(l, f, node, where, text, base);
    case FIELD_BOOL:
        if (config_parse_bool(text, (bool *)field_at(base, f), reason, sizeof(reason)) != 0)
            return fail(l, node, where, "%s", reason);
        return 0;
    default:
        return set_number(l, f, node, where, text, base);
    }
}

/* Compiles text, a pattern, only to report a syntax error. */
static int pattern_check(struct load *l, const yaml_node_t *node, const char *where,
                         const char *text)
{
    char reason[REASON_MAX];
    struct pattern *pat = pattern_compile(text, strlen(text), reason, sizeof(reason));
    if (pat == NULL)
        return fail(l, node, where, "%s", reason);
    pattern_destroy(&pat);
    return 0;
}

/* A list field: a scalar (a list of one) or a non-empty list of scalars. The
 * array is stored in base before its items are read, for fields_free. */
static int load_list(struct load *l, const struct field *f, yaml_node_t *node, const char *where,
                     void *base)
{
    char child[WHERE_MAX];
    bool one = node->type != YAML_SEQUENCE_NODE;
    size_t n = one ? 1 : list_len(node);
    if (node->type == YAML_MAPPING_NODE)
        return fail(l, node, where, "expected a value or a list, not a mapping");
    if (n == 0)
        return fail(l, node, where, "expected at least one entry");
    const char **list = calloc(n, sizeof(*list));
    if (list == NULL)
        return fail(l, node, where, "out of memory");
    *list_at(base, f) = list;
    *(size_t *)((char *)base + f->count) = n;
    if (one)
        return scalar(l, node, where, &list[0]);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = yaml_document_get_node(l->doc, node->data.sequence.items.start[i]);
        where_index(child, where, i);
        if (config_yaml_null(item))
            return fail(l, item, child, "needs a value");
        if (scalar(l, item, child, &list[i]) != 0 ||
            (f->patterns && pattern_check(l, item, child, list[i]) != 0))
            return -1;
    }
    return 0;
}

static int load_map(struct load *l, yaml_node_t *map, const char *where, const struct field *fields,
                    void *base);

/* Loads node, the non-null value of field f, into base. */
static int load_field(struct load *l, const struct field *f, yaml_node_t *node, const char *where,
                      void *base)
{
    const char *text;
    if (f->type == FIELD_LIST)
        return load_list(l, f, node, where, base);
    if (f->type == FIELD_MAP || (f->type == FIELD_TTL && node->type == YAML_MAPPING_NODE))
        return load_map(l, node, where, f->sub, base);
    if (scalar(l, node, where, &text) != 0)
        return -1;
    return set_text(l, f, node, where, text, base);
}

/* The key of pair i of map, which must be a plain name not seen before in
 * map; child receives "where.key". Returns NULL after reporting. */
static const char *pair_key(struct load *l, const yaml_node_t *map, size_t i, const char *where,
                            char *child)
{
    const yaml_node_pair_t *pairs = map->data.mapping.pairs.start;
    const yaml_node_t *knode = yaml_document_get_node(l->doc, pairs[i].key);
    const char *name = knode->type == YAML_SCALAR_NODE ? config_yaml_text(knode) : NULL;
    if (name == NULL) {
        fail(l, knode, where, "keys must be plain names");
        return NULL;
    }
    where_key(child, where, name);
    if (config_yaml_key_repeated(l->doc, pairs, i)) {
        fail(l, knode, child, "duplicate key");
        return NULL;
    }
    return name;
}

static const struct field *field_find(const struct field *fields, const char *name)
{
    for (const struct field *f = fields; f->name != NULL; f++) {
        if (strcmp(f->name, name) == 0)
            return f;
    }
    return NULL;
}

/* Loads the mapping map into base through fields: unknown keys are errors, a
 * null value is an absent one, absent fields get their default or, when
 * required, are errors. */
static int load_map(struct load *l, yaml_node_t *map, const char *where, const struct field *fields,
                    void *base)
{
    char child[WHERE_MAX];
    uint32_t seen = 0;
    if (map->type != YAML_MAPPING_NODE)
        return fail(l, map, where, "expected a mapping");
    for (size_t i = 0; i < map_len(map); i++) {
        const yaml_node_pair_t *pair = &map->data.mapping.pairs.start[i];
        yaml_node_t *value = yaml_document_get_node(l->doc, pair->value);
        const char *name = pair_key(l, map, i, where, child);
        if (name == NULL)
            return -1;
        const struct field *f = field_find(fields, name);
        if (f == NULL)
            return fail(l, yaml_document_get_node(l->doc, pair->key), child, "unknown key");
        if (config_yaml_null(value) && f->required)
            return fail(l, value, child, "needs a value");
        if (config_yaml_null(value))
            continue;
        seen |= 1u << (f - fields);
        if (load_field(l, f, value, child, base) != 0)
            return -1;
    }
    for (const struct field *f = fields; f->name != NULL; f++) {
        if ((seen & 1u << (f - fields)) != 0 || (!f->required && f->dflt == NULL))
            continue;
        where_key(child, where, f->name);
        if (f->required)
            return fail(l, map, child, "required");
        if (f->dflt != NULL && set_text(l, f, map, child, f->dflt, base) != 0)
            return -1;
    }
    return 0;
}

/* ---- the parts of the section -------------------------------------------- */

union rule {
    struct policy_validate_rule validate;
    struct policy_cache_rule cache;
    struct policy_invalidate_rule invalidate;
};

static int add_validate(struct policy *p, const union rule *r, char *err, size_t errlen)
{
    return policy_add_validate(p, &r->validate, err, errlen);
}

static int add_cache(struct policy *p, const union rule *r, char *err, size_t errlen)
{
    return policy_add_cache(p, &r->cache, err, errlen);
}

static int add_invalidate(struct policy *p, const union rule *r, char *err, size_t errlen)
{
    return policy_add_invalidate(p, &r->invalidate, err, errlen);
}

struct rule_kind {
    const char *part; /* the key of the list in the section */
    const struct field *fields;
    union rule init; /* values of absent fields */
    int (*add)(struct policy *p, const union rule *r, char *err, size_t errlen);
};

static const struct rule_kind KINDS[] = {
    {"validate",
     VALIDATE_FIELDS,
     {.validate = {.action = POLICY_ALLOW, .max_key_length = -1, .max_value_size = -1}},
     add_validate},
    {"cache", CACHE_FIELDS, {.cache = {.cache = true}}, add_cache},
    {"invalidate", INVALIDATE_FIELDS, {.invalidate = {.name = NULL}}, add_invalidate},
};

/* default: the settings of keys no validation rule decides. */
static int load_defaults(struct load *l, yaml_node_t *node, const char *part)
{
    struct policy_defaults d = {.action = POLICY_ALLOW};
    char err[REASON_MAX];
    if (load_map(l, node, part, DEFAULT_FIELDS, &d) != 0)
        return -1;
    if (policy_set_defaults(l->policy, &d, err, sizeof(err)) != 0)
        return add_fail(l, node, part, NULL, err);
    return 0;
}

/* deny_commands: a validation rule without keys denying these commands, the
 * first of all. An empty list adds no rule. */
static int load_deny(struct load *l, yaml_node_t *node, const char *part)
{
    static const struct field COMMANDS = {
        .name = "commands", .type = FIELD_LIST, .offset = VR(commands), .count = VR(ncommands)};
    struct policy_validate_rule r = {
        .name = "deny_commands", .action = POLICY_DENY, .max_key_length = -1, .max_value_size = -1};
    char err[REASON_MAX];
    if (node->type == YAML_SEQUENCE_NODE && list_len(node) == 0)
        return 0;
    int rc = load_list(l, &COMMANDS, node, part, &r);
    if (rc == 0 && policy_add_validate(l->policy, &r, err, sizeof(err)) != 0)
        rc = add_fail(l, node, part, COMMANDS.name, err);
    free((void *)r.commands);
    return rc;
}

/* validate, cache, invalidate: a list of rules, each a mapping. */
static int load_rules(struct load *l, yaml_node_t *node, const char *part)
{
    const struct rule_kind *kind = KINDS;
    char where[WHERE_MAX], err[REASON_MAX];
    while (strcmp(kind->part, part) != 0)
        kind++;
    if (node->type != YAML_SEQUENCE_NODE)
        return fail(l, node, part, "expected a list");
    for (size_t i = 0; i < list_len(node); i++) {
        yaml_node_t *item = yaml_document_get_node(l->doc, node->data.sequence.items.start[i]);
        union rule r = kind->init;
        where_index(where, part, i);
        int rc = load_map(l, item, where, kind->fields, &r);
        if (rc == 0 && kind->add(l->policy, &r, err, sizeof(err)) != 0)
            rc = add_fail(l, item, where, NULL, err);
        fields_free(kind->fields, &r);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* One module: its name, and every other key a string argument for create. */
static int load_module(struct load *l, yaml_node_t *node, const char *where)
{
    char child[WHERE_MAX], err[REASON_MAX];
    const char *name = NULL, *text = NULL;
    if (node->type != YAML_MAPPING_NODE)
        return fail(l, node, where, "expected a mapping");
    const char **names = calloc(map_len(node) + 1, sizeof(*names));
    const char **values = calloc(map_len(node) + 1, sizeof(*values));
    struct policy_module_args args = {names, values, 0};
    int rc = names != NULL && values != NULL ? 0 : fail(l, node, where, "out of memory");
    for (size_t i = 0; rc == 0 && i < map_len(node); i++) {
        yaml_node_t *value =
            yaml_document_get_node(l->doc, node->data.mapping.pairs.start[i].value);
        const char *key = pair_key(l, node, i, where, child);
        if (key == NULL)
            rc = -1;
        else if (config_yaml_null(value))
            rc = fail(l, value, child, "needs a value");
        else
            rc = scalar(l, value, child, &text);
        if (rc == 0 && strcmp(key, "name") == 0) {
            name = text;
        } else if (rc == 0) {
            names[args.count] = key;
            values[args.count++] = text;
        }
    }
    if (rc == 0 && name == NULL) {
        where_key(child, where, "name");
        rc = fail(l, node, child, "required");
    }
    if (rc == 0 && policy_add_module(l->policy, name, &args, err, sizeof(err)) != 0)
        rc = add_fail(l, node, where, NULL, err);
    free(names);
    free(values);
    return rc;
}

/* modules: a list of modules, enabled in order. */
static int load_modules(struct load *l, yaml_node_t *node, const char *part)
{
    char where[WHERE_MAX];
    if (node->type != YAML_SEQUENCE_NODE)
        return fail(l, node, part, "expected a list");
    for (size_t i = 0; i < list_len(node); i++) {
        where_index(where, part, i);
        if (load_module(l, yaml_document_get_node(l->doc, node->data.sequence.items.start[i]),
                        where) != 0)
            return -1;
    }
    return 0;
}

/* Loads the non-null value of one key of the section. */
typedef int (*part_load_fn)(struct load *l, yaml_node_t *node, const char *part);

struct part {
    const char *name;
    part_load_fn load;
};

/* In load order: deny_commands before validate. */
static const struct part PARTS[] = {
    {"default", load_defaults}, {"deny_commands", load_deny}, {"validate", load_rules},
    {"cache", load_rules},      {"invalidate", load_rules},   {"modules", load_modules},
};

#define PARTS_LEN (sizeof(PARTS) / sizeof(PARTS[0]))

/* Finds the value of each part in the section's mapping. */
static int find_parts(struct load *l, yaml_node_t *node, yaml_node_t **values)
{
    char child[WHERE_MAX];
    for (size_t i = 0; i < map_len(node); i++) {
        const yaml_node_pair_t *pair = &node->data.mapping.pairs.start[i];
        const char *name = pair_key(l, node, i, "", child);
        size_t j = 0;
        if (name == NULL)
            return -1;
        while (j < PARTS_LEN && strcmp(PARTS[j].name, name) != 0)
            j++;
        if (j == PARTS_LEN)
            return fail(l, yaml_document_get_node(l->doc, pair->key), child, "unknown key");
        values[j] = yaml_document_get_node(l->doc, pair->value);
    }
    return 0;
}

int policy_yaml_load(yaml_document_t *doc, yaml_node_t *node, const char *path, struct policy **out,
                     char *err, size_t errlen)
{
    struct load l = {doc, path, "policy", NULL, err, errlen};
    yaml_node_t *values[PARTS_LEN] = {NULL};
    if (config_yaml_null(node) || (node->type == YAML_MAPPING_NODE && map_len(node) == 0)) {
        *out = NULL;
        return 0;
    }
    if (node->type != YAML_MAPPING_NODE)
        return fail(&l, node, "", "expected a mapping");
    if (find_parts(&l, node, values) != 0)
        return -1;
    if ((l.policy = policy_create()) == NULL)
        return fail(&l, node, "", "out of memory");
    for (size_t i = 0; i < PARTS_LEN; i++) {
        if (values[i] != NULL && !config_yaml_null(values[i]) &&
            PARTS[i].load(&l, values[i], PARTS[i].name) != 0) {
            policy_destroy(&l.policy);
            return -1;
        }
    }
    *out = l.policy;
    return 0;
}

/* ---- clients.users ------------------------------------------------------- */

#define UE(f) offsetof(struct users_entry, f)

static const struct field USER_FIELDS[] = {
    {.name = "name", .type = FIELD_STRING, .offset = UE(name), .required = true},
    {.name = "password", .type = FIELD_STRING, .offset = UE(password)},
    {.name = "password_sha256", .type = FIELD_STRING, .offset = UE(password_sha256)},
    {.name = "keys", .type = FIELD_LIST, .offset = UE(keys), .count = UE(nkeys), .patterns = true},
    {.name = "commands", .type = FIELD_LIST, .offset = UE(commands), .count = UE(ncommands)},
    {.name = NULL},
};

int users_yaml_load(yaml_document_t *doc, yaml_node_t *node, const char *path, struct users **out,
                    char *err, size_t errlen)
{
    struct load l = {doc, path, "clients.users", NULL, err, errlen};
    char where[WHERE_MAX], reason[REASON_MAX];
    if (config_yaml_null(node) || (node->type == YAML_SEQUENCE_NODE && list_len(node) == 0)) {
        *out = NULL;
        return 0;
    }
    if (node->type != YAML_SEQUENCE_NODE)
        return fail(&l, node, "", "expected a list of users");
    struct users *u = users_create();
    if (u == NULL)
        return fail(&l, node, "", "out of memory");
    for (size_t i = 0; i < list_len(node); i++) {
        yaml_node_t *item = yaml_document_get_node(doc, node->data.sequence.items.start[i]);
        struct users_entry e = {0};
        where_index(where, "", i);
        int rc = load_map(&l, item, where, USER_FIELDS, &e);
        if (rc == 0 && users_add(u, &e, reason, sizeof(reason)) != 0)
            rc = add_fail(&l, item, where, NULL, reason);
        fields_free(USER_FIELDS, &e);
        if (rc != 0) {
            users_destroy(&u);
            return -1;
        }
    }
    *out = u;
    return 0;
}

/* yaml.c - the config file as YAML: the document, the walk, the sections,
 * the scalar helpers.
 *
 * A config file is one YAML document whose nested mappings name settings by
 * their path: "upstream:" then "pool_size:" is "upstream.pool_size". The
 * walk joins the keys with '.' and checks them the same way at every depth;
 * whether a dotted key names a setting, or begins some, is config.c's (its
 * OPTIONS table), so a new scalar section ("cache:") needs only new rows
 * there. A section that is more than scalars ("policy:", lists of rules)
 * gets a row in SECTIONS: its loader receives the section's node. libyaml
 * keeps the line of every node, so each error names the line at fault.
 */
#include "config/yaml.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config.h"
#include "config/policy_yaml.h"

#define YAML_KEY_MAX    128 /* longest dotted key, NUL included */
#define YAML_REASON_MAX 256 /* longest reason config_yaml_fail formats */

int config_verror(char *err, size_t errlen, const char *fmt, va_list ap)
{
    if (err != NULL && errlen > 0)
        vsnprintf(err, errlen, fmt, ap);
    return -1;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes one line to err (if any), as it is. Returns -1. */
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    config_verror(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- scalars ------------------------------------------------------------- */

const char *config_yaml_text(const yaml_node_t *node)
{
    const char *s = (const char *)node->data.scalar.value;
    return strlen(s) == node->data.scalar.length ? s : NULL;
}

bool config_yaml_null(const yaml_node_t *node)
{
    static const char *const NULLS[] = {"", "~", "null", "Null", "NULL", NULL};
    if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    for (size_t i = 0; NULLS[i] != NULL; i++) {
        if (strcmp((const char *)node->data.scalar.value, NULLS[i]) == 0)
            return true;
    }
    return false;
}

const char *config_yaml_value(const yaml_node_t *node, const char **text)
{
    if (node->type == YAML_MAPPING_NODE)
        return "expected a value, not a mapping";
    if (node->type != YAML_SCALAR_NODE)
        return "expected a value, not a list";
    if ((*text = config_yaml_text(node)) == NULL)
        return "contains a NUL byte";
    return NULL;
}

const char *config_yaml_list(yaml_document_t *doc, const yaml_node_t *seq, char **joined)
{
    size_t len = 0, cap = 0;
    *joined = NULL;
    for (const yaml_node_item_t *it = seq->data.sequence.items.start;
         it < seq->data.sequence.items.top; it++) {
        const yaml_node_t *item = yaml_document_get_node(doc, *it);
        const char *text, *why = config_yaml_value(item, &text);
        if (why != NULL || strchr(text, ',') != NULL) {
            free(*joined);
            *joined = NULL;
            return why != NULL ? why : "an item holds a comma";
        }
        size_t n = strlen(text);
        char *grown = len + n + 2 > cap ? realloc(*joined, cap = (len + n + 2) * 2) : *joined;
        if (grown == NULL) {
            free(*joined);
            *joined = NULL;
            return "out of memory";
        }
        *joined = grown;
        if (len > 0)
            (*joined)[len++] = ',';
        memcpy(*joined + len, text, n + 1);
        len += n;
    }
    return NULL;
}

bool config_yaml_key_repeated(yaml_document_t *doc, const yaml_node_pair_t *pairs, size_t i)
{
    const yaml_node_t *key = yaml_document_get_node(doc, pairs[i].key);
    for (size_t j = 0; j < i; j++) {
        const yaml_node_t *other = yaml_document_get_node(doc, pairs[j].key);
        if (other->type == YAML_SCALAR_NODE &&
            other->data.scalar.length == key->data.scalar.length &&
            memcmp(other->data.scalar.value, key->data.scalar.value, key->data.scalar.length) == 0)
            return true;
    }
    return false;
}

/* ---- the document -------------------------------------------------------- */

static int syntax_error(const yaml_parser_t *parser, const char *path, char *err, size_t errlen)
{
    if (parser->error == YAML_MEMORY_ERROR || parser->problem == NULL)
        return fail(err, errlen, "%s: out of memory", path);
    if (parser->error == YAML_READER_ERROR) /* bad encoding: no line, an offset */
        return fail(err, errlen, "%s: yaml: %s at byte %zu", path, parser->problem,
                    parser->problem_offset);
    return fail(err, errlen, "%s:%zu: yaml: %s", path, parser->problem_mark.line + 1,
                parser->problem);
}

/* Loads the single document of the stream parser reads (its input set) into
 * doc, and deletes parser. Returns 0, or -1 with err set. */
static int read_document(yaml_parser_t *parser, yaml_document_t *doc, const char *path, char *err,
                         size_t errlen)
{
    yaml_document_t extra;
    int rc = -1;
    if (!yaml_parser_load(parser, doc)) {
        syntax_error(parser, path, err, errlen);
    } else if (!yaml_parser_load(parser, &extra)) {
        yaml_document_delete(doc);
        syntax_error(parser, path, err, errlen);
    } else {
        yaml_node_t *root = yaml_document_get_root_node(&extra);
        size_t line = root ? root->start_mark.line + 1 : 0;
        yaml_document_delete(&extra);
        if (root != NULL) {
            yaml_document_delete(doc);
            fail(err, errlen, "%s:%zu: yaml: expected a single document", path, line);
        } else {
            rc = 0;
        }
    }
    yaml_parser_delete(parser);
    return rc;
}

int config_yaml_read_file(const char *path, yaml_document_t *doc, char *err, size_t errlen)
{
    yaml_parser_t parser;
    struct stat st;
    char why[128]; /* strerror_r: reloads load on a thread of their own */
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return fail(err, errlen, "%s: %s", path, strerror_r(errno, why, sizeof(why)));
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        return fail(err, errlen, "%s: %s", path, strerror_r(EISDIR, why, sizeof(why)));
    }
    if (!yaml_parser_initialize(&parser)) {
        fclose(f);
        return fail(err, errlen, "%s: out of memory", path);
    }
    yaml_parser_set_input_file(&parser, f);
    int rc = read_document(&parser, doc, path, err, errlen);
    fclose(f);
    return rc;
}

int config_yaml_read_buffer(const char *text, size_t len, const char *name, yaml_document_t *doc,
                            char *err, size_t errlen)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return fail(err, errlen, "%s: out of memory", name);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    return read_document(&parser, doc, name, err, errlen);
}

/* ---- the walk ------------------------------------------------------------ */

/* Loads a section that is more than scalars from its node (any type) into
 * cfg. Returns 0, or -1 after reporting. */
typedef int (*section_load_fn)(const struct config_yaml *y, yaml_node_t *node, struct config *cfg);

struct section {
    const char *name;
    section_load_fn load;
};

static int section_policy(const struct config_yaml *y, yaml_node_t *node, struct config *cfg);
static int section_users(const struct config_yaml *y, yaml_node_t *node, struct config *cfg);

static const struct section SECTIONS[] = {
    {"policy", section_policy},
    {"clients.users", section_users},
    {NULL, NULL},
};

static const struct section *section_find(const char *name)
{
    for (const struct section *s = SECTIONS; s->name != NULL; s++) {
        if (strcmp(s->name, name) == 0)
            return s;
    }
    return NULL;
}

/* The policy section: its rules, added by policy_yaml_load, replace cfg's
 * policy (config.c's copy shares it with the committed config until the
 * commit, so it is not freed here; the duplicate key check makes this the
 * only policy section of the file). */
static int section_policy(const struct config_yaml *y, yaml_node_t *node, struct config *cfg)
{
    struct policy *p = NULL;
    if (policy_yaml_load(y->doc, node, y->path, &p, y->err, y->errlen) != 0)
        return -1;
    cfg->policy = p;
    return 0;
}

/* clients.users: replaces cfg's users (shared with the committed config
 * until the commit, as the policy is). */
static int section_users(const struct config_yaml *y, yaml_node_t *node, struct config *cfg)
{
    struct users *u = NULL;
    if (users_yaml_load(y->doc, node, y->path, &u, y->err, y->errlen) != 0)
        return -1;
    cfg->users = u;
    return 0;
}

int config_yaml_fail(const struct config_yaml *y, const yaml_node_t *node, const char *key,
                     const char *fmt, ...)
{
    char reason[YAML_REASON_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    return fail(y->err, y->errlen, "%s:%zu: %s: %s", y->path, node->start_mark.line + 1, key,
                reason);
}

static int walk_map(const struct config_yaml *y, const char *prefix, yaml_node_t *map,
                    config_yaml_entry_fn entry, struct config *cfg);

/* Applies one "key: value" pair, key being the dotted name. */
static int walk_entry(const struct config_yaml *y, const char *key, yaml_node_t *knode,
                      yaml_node_t *value, config_yaml_entry_fn entry, struct config *cfg)
{
    const struct section *sec = section_find(key);
    if (sec != NULL)
        return sec->load(y, value, cfg);
    int rc = entry(y, key, knode, value, cfg);
    if (rc != CONFIG_YAML_GROUP)
        return rc;
    if (config_yaml_null(value)) /* "upstream:" with every key commented out */
        return 0;
    if (value->type != YAML_MAPPING_NODE)
        return config_yaml_fail(y, value, key, "expected a mapping");
    return walk_map(y, key, value, entry, cfg);
}

/* Applies every pair of map, whose keys are relative to prefix ("" at top). */
static int walk_map(const struct config_yaml *y, const char *prefix, yaml_node_t *map,
                    config_yaml_entry_fn entry, struct config *cfg)
{
    yaml_node_pair_t *pairs = map->data.mapping.pairs.start;
    size_t n = (size_t)(map->data.mapping.pairs.top - pairs);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *knode = yaml_document_get_node(y->doc, pairs[i].key);
        yaml_node_t *value = yaml_document_get_node(y->doc, pairs[i].value);
        char key[YAML_KEY_MAX];
        const char *name = knode->type == YAML_SCALAR_NODE ? config_yaml_text(knode) : NULL;
        if (name == NULL)
            return config_yaml_fail(y, knode, prefix[0] ? prefix : "(top)",
                                    "keys must be plain names");
        snprintf(key, sizeof(key), "%s%s%s", prefix, prefix[0] ? "." : "", name);
        if (strchr(name, '.') != NULL || name[0] == '\0')
            return config_yaml_fail(y, knode, key, "unknown key");
        if (config_yaml_key_repeated(y->doc, pairs, i))
            return config_yaml_fail(y, knode, key, "duplicate key");
        if (walk_entry(y, key, knode, value, entry, cfg) != 0)
            return -1;
    }
    return 0;
}

int config_yaml_walk(const struct config_yaml *y, yaml_node_t *map, config_yaml_entry_fn entry,
                     struct config *cfg)
{
    return walk_map(y, "", map, entry, cfg);
}

/* yaml.h - the config file as YAML (yaml.c): reading the document, walking
 * its nested mappings as dotted keys and its sections that are more than
 * scalars, and the scalar helpers config.c and policy_yaml.c share.
 * Internal to config/: config.h does not include it, so its includers are
 * not compiled against libyaml. Pure: no sockets, no loop.
 *
 * Errors are one line of "name:line: key: reason" (or "name:line: yaml:
 * problem" for the syntax), but they quote the document's keys and the
 * caller's name as they are: the caller (config.c) rewrites control bytes.
 */
#ifndef NEARCACHE_CONFIG_YAML_H
#define NEARCACHE_CONFIG_YAML_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include <yaml.h>

struct config;

/* Writes fmt's message to err (if any, at most errlen bytes). Returns -1,
 * for `return config_verror(...)`. */
int config_verror(char *err, size_t errlen, const char *fmt, va_list ap);

/* The text of a scalar node, or NULL if it holds a NUL byte. */
const char *config_yaml_text(const yaml_node_t *node);

/* The scalar items of the sequence seq joined with commas into *joined (the
 * caller frees it; NULL for an empty list). Returns NULL, or why it cannot:
 * an item that is not a value, holds a NUL byte or a comma. */
const char *config_yaml_list(yaml_document_t *doc, const yaml_node_t *seq, char **joined);

/* True for a plain empty, "~" or "null" scalar. */
bool config_yaml_null(const yaml_node_t *node);

/* True if the scalar key of pairs[i] equals the key of an earlier pair. */
bool config_yaml_key_repeated(yaml_document_t *doc, const yaml_node_pair_t *pairs, size_t i);

/* Loads the single document of the file at path into *doc. Returns 0, doc
 * then owned by the caller (yaml_document_delete), or -1 with err =
 * "path: reason" (cannot open it, a directory, out of memory), "path:line:
 * yaml: problem", "path: yaml: problem at byte N" (bad encoding) or
 * "path:line: yaml: expected a single document". */
int config_yaml_read_file(const char *path, yaml_document_t *doc, char *err, size_t errlen);

/* As config_yaml_read_file, for the YAML text text[0..len) (borrowed; NUL
 * bytes allowed), named name in errors. */
int config_yaml_read_buffer(const char *text, size_t len, const char *name, yaml_document_t *doc,
                            char *err, size_t errlen);

/* Sets *text to the text of node, the value of a setting: a scalar without a
 * NUL byte (a null is one; see config_yaml_null). Returns NULL, or the reason
 * node is not one: "expected a value, not a mapping", "expected a value, not
 * a list", "contains a NUL byte". */
const char *config_yaml_value(const yaml_node_t *node, const char **text);

/* A document being applied: what a walk reports its errors with. Every
 * pointer is borrowed. */
struct config_yaml {
    const char *path; /* names the document in errors */
    yaml_document_t *doc;
    char *err;
    size_t errlen;
};

/* What an entry returns for a key that names no setting but begins some
 * ("upstream"): the walk goes on into its value. */
#define CONFIG_YAML_GROUP 1

/* Applies the value node of the setting named by the dotted key
 * ("upstream.pool_size", at most 127 bytes) to cfg. knode is the key's node.
 * Returns 0, CONFIG_YAML_GROUP, or -1 after reporting with config_yaml_fail
 * (a key that names nothing: "unknown key"). */
typedef int (*config_yaml_entry_fn)(const struct config_yaml *y, const char *key,
                                    yaml_node_t *knode, yaml_node_t *value, struct config *cfg);

/* Applies map, the root mapping of y->doc, to cfg, in order, a key at a time
 * once it passes: a scalar without NUL ("prefix: keys must be plain names",
 * "(top)" at the top), neither empty nor holding a '.' ("key: unknown key"),
 * not repeated in its mapping ("key: duplicate key"). A section that is more
 * than scalars (the top-level "policy") goes to its loader (policy_yaml.h),
 * which replaces cfg->policy without freeing it; any other key to entry, with
 * the keys of the mappings above it joined by '.'. A group's value is null
 * (nothing to apply) or a mapping walked in turn ("key: expected a
 * mapping"). Stops at the first error. Returns 0, or -1 with it reported. */
int config_yaml_walk(const struct config_yaml *y, yaml_node_t *map, config_yaml_entry_fn entry,
                     struct config *cfg);

/* Reports "path:line: key: reason" for node into y->err (nothing when it is
 * NULL or errlen 0). Returns -1. */
int config_yaml_fail(const struct config_yaml *y, const yaml_node_t *node, const char *key,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif

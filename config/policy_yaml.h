/* policy_yaml.h - the `policy:` section of the config file: validation, cache
 * and invalidation rules and extension modules (schema and an annotated
 * example in config/policy.yaml). Pure: no sockets, no loop.
 */
#ifndef NEARCACHE_POLICY_YAML_H
#define NEARCACHE_POLICY_YAML_H

#include <stddef.h>
#include <yaml.h>

struct policy;
struct users;

/* Reads node, the value of the `policy:` key in doc (loaded from path), into a
 * new policy with every rule and module added but not built: policy_build is
 * the caller's, as it needs the policy being replaced. Sets *out to that
 * policy, owned by the caller, or to NULL when node is null or an empty
 * mapping. Returns 0, or -1 with *out untouched and one line in err:
 * "path:line: policy.<where>: reason", where is "cache[1].ttl.min",
 * "invalidate[0].drop[1]", "modules[0]"..., line that of the offending node.
 * Nothing is kept of a policy with any error. doc and node are borrowed. */
int policy_yaml_load(yaml_document_t *doc, yaml_node_t *node, const char *path, struct policy **out,
                     char *err, size_t errlen);

/* Reads node, the value of `clients.users` (a list of users: name, password
 * or password_sha256, keys, commands; see users.h), into a new set of users
 * owned by the caller, or NULL when node is null or an empty list. Returns
 * 0, or -1 with one line in err: "path:line: clients.users[1].name: reason". */
int users_yaml_load(yaml_document_t *doc, yaml_node_t *node, const char *path, struct users **out,
                    char *err, size_t errlen);

#endif

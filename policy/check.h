/* check.h - validation (check.c): compiling validation rules, policy_check
 * of policy.h, and the command filters that validation and invalidation
 * rules share. Internal to policy/.
 */
#ifndef NEARCACHE_POLICY_CHECK_H
#define NEARCACHE_POLICY_CHECK_H

#include "policy/rules.h"

/* Fills v (zeroed by the caller) from r, whose name the caller checked:
 * copies the name, checks the action, limits and reason, compiles the keys
 * ("*" without) and the command filter. Returns 0, or -1 with "field:
 * reason" in err; either way v owns what it holds (check_rule_free). */
int check_rule_fill(struct vrule *v, const struct policy_validate_rule *r, char *err,
                    size_t errlen);

/* Frees r and all it owns. */
void check_rule_free(struct vrule *r);

/* Fills f (zeroed by the caller) from the command list cmds[0..n): class
 * names (any case) and command names, lower-cased into f. A class not in
 * allowed (CLASS_* bits) is an error. Returns 0, or -1 with "commands: ..."
 * in err; f then owns what it holds so far (free f->names either way). */
int check_filter_init(struct cmd_filter *f, const char *const *cmds, size_t n, unsigned allowed,
                      char *err, size_t errlen);

/* Whether f is empty or names the command of q, its container or one of its
 * classes. */
bool check_filter_match(const struct cmd_filter *f, const struct cmd_query *q);

/* Fills q for a request of cmd (its name and classes, borrowed by q). */
void check_query_command(struct cmd_query *q, const struct command *cmd);

/* Fills q for a write by command (a lower-case name, "container|sub" for a
 * subcommand, NUL-terminated and borrowed by q). */
void check_query_write(struct cmd_query *q, const char *command);

/* Fills q for request r (its command, or for a command the table does not
 * know the name it was sent with): name (COMMAND_NAME_MAX + 1 bytes) gets
 * the name lower-cased, cut to COMMAND_NAME_MAX bytes, bytes outside
 * '!'..'~' as '?'; q borrows it. */
void check_query_request(struct cmd_query *q, char *name, const struct request *r);

/* Whether r writes its key i (i < 0: whether r, taken as a request without
 * keys, is a write), as validation judges it (read-only rules). */
bool check_written(struct request *r, int i);

/* How rule (NULL: the defaults) judges r's key i (i < 0: r as a request
 * without keys), as policy_check would, counting nothing and calling no
 * module: true when it rejects, with the reason in why (the rule's own
 * reason when it has one). Uses p's scratch: hold p's lock when p is shared. */
bool check_judge(struct policy *p, struct request *r, int i, struct vrule *rule, char *why,
                 size_t len);

#endif

/* registry.h - a policy's rules by kind and name (registry.c): the blocks of
 * their counters, the name table that refuses duplicates and finds a rule's
 * namesake in the policy a reload replaces, the fingerprints that tell a
 * cache rule unchanged, and what policy_build lists over that policy; also
 * policy_take_over, policy_rule_count, policy_rule and policy_stats of
 * policy.h. Internal to policy/.
 */
#ifndef NEARCACHE_POLICY_REGISTRY_H
#define NEARCACHE_POLICY_REGISTRY_H

#include "policy/rules.h"

/* Makes room for one more rule or module of p: a slot in the name table
 * (kept at most half full) and a cell of counters. Returns 0, or -1 when out
 * of memory. */
int registry_reserve(struct policy *p);

/* Whether p has a rule or module of kind called name (the default rules
 * aside). Reads only the table and the names, which do not change once a
 * rule is added. */
bool registry_has(const struct policy *p, policy_kind_e kind, const char *name);

/* Enters rule i (its position within its kind) of kind, called name (the
 * rule's own copy, which must outlive p's table), in the name table and
 * returns its counters, zeroed, where registry_reserve made room for both. */
struct policy_rule_stats *registry_enter(struct policy *p, policy_kind_e kind, size_t i,
                                         const char *name);

/* Zeroed counters for a rule the name table does not hold (the default
 * rules), or NULL when out of memory. */
struct policy_rule_stats *registry_cell(struct policy *p);

/* Sets the index and fingerprint of every cache rule of p, the default rule
 * last. A fingerprint covers what the rule means (settings that do not apply
 * are left out), the cache rules before it and every invalidation rule. */
void registry_fingerprint(struct policy *p);

/* For policy_build, after registry_fingerprint: lists in p the counters of
 * each rule's namesake in prev (same kind and name; the default rules are
 * each other's) and the windows of each cache rule's twin (same name and
 * fingerprint) for policy_take_over, and creates the windows of the cache
 * rules that use them and have no twin's to take. prev is NULL for a first
 * build; else it reads of prev only what does not change while prev serves
 * requests. Returns 0, or -1 when out of memory. */
int registry_build(struct policy *p, const struct policy *prev);

#endif

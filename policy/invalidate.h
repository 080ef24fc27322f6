/* invalidate.h - invalidation rules (invalidate.c): compiling them, the
 * generation table and the tracking sources; policy_stamp,
 * policy_stamps_current, policy_on_write and policy_source* of policy.h.
 * Internal to policy/.
 */
#ifndef NEARCACHE_POLICY_INVALIDATE_H
#define NEARCACHE_POLICY_INVALIDATE_H

#include "policy/rules.h"

/* A zeroed generation table for policy->gens, owned by the caller (free
 * it with free); NULL when out of memory. */
uint32_t *invalidate_table_create(void);

/* Fills v (zeroed by the caller) from r, whose name the caller checked:
 * copies the name, compiles `when`, the
 * command filter (write commands only) and every drop, mapping each drop's
 * captures to those of `when`. Returns 0, or -1 with "field: reason" in err;
 * either way v owns what it holds (invalidate_rule_free frees it). */
int invalidate_rule_fill(struct irule *v, const struct policy_invalidate_rule *r, char *err,
                         size_t errlen);

/* Frees r and all it owns. */
void invalidate_rule_free(struct irule *r);

/* Fills p->sources and p->nsources from the `when` prefixes of p's rules
 * (sorted, keeping none that extends a kept one; borrowed from the rules'
 * patterns). Returns 0, or -1 when out of memory. */
int invalidate_sources_build(struct policy *p);

#endif

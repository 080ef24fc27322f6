/* hygiene.h - the example extension module (policy.h's struct policy_module).
 *
 * Enabled in the policy as
 *   modules:
 *     - name: hygiene
 *       allow_spaces: false  # true: let spaces through, still reject control bytes
 *       jitter: 10           # 0-50: shorten each local TTL by up to this percent
 *
 * validate rejects a request with a key holding a space or a control byte
 * (<= 0x20 or 0x7f; with allow_spaces, < 0x20 or 0x7f); ttl subtracts a
 * jitter fixed per key (the same key always gets the same one) so that
 * entries filled together do not all expire together.
 */
#ifndef NEARCACHE_HYGIENE_H
#define NEARCACHE_HYGIENE_H

#include "policy/policy.h"

extern const struct policy_module hygiene_module;

#endif

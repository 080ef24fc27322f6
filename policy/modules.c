/* modules.c - the extension modules compiled into nearcache.
 *
 * To add one: write policy/<name>.c defining a `const struct policy_module`
 * (see policy.h and policy/hygiene.c), declare it in policy/<name>.h, list it
 * below and add the .c file to nearcache_pure in CMakeLists.txt. A policy
 * enables it by name under `modules:`.
 */
#include "policy/hygiene.h"
#include "policy/policy.h"

const struct policy_module *const policy_modules[] = {&hygiene_module, NULL};

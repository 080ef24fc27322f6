/* schema.h - checks tool arguments against the small JSON Schemas of mcp.h.
 *
 * The subset the tools use, no more: an object whose properties are of type
 * string (minLength, maxLength, counted in characters), integer or number
 * (minimum, maximum), boolean or array (minItems, maxItems, items of type
 * object), the names in "required", and no argument the schema does not
 * name. Pure.
 */
#ifndef NEARCACHE_MCP_SCHEMA_H
#define NEARCACHE_MCP_SCHEMA_H

#include <jansson.h>
#include <stddef.h>

/* Whether args (an object, or NULL for none) matches schema: 0, or -1 after
 * writing the first mismatch, one sentence naming the argument, into
 * why[0, len). */
int schema_check(const json_t *schema, const json_t *args, char *why, size_t len);

#endif

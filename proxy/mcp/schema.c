/* schema.c - tool arguments against their JSON Schema subset. */
#include "proxy/mcp/schema.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The characters of a UTF-8 string (jansson has checked it). */
static size_t schema_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

/* Checks a number against the minimum and maximum of its property. */
static int schema_bounds(const json_t *prop, const char *name, double v, char *why, size_t len)
{
    const json_t *min = json_object_get(prop, "minimum"), *max = json_object_get(prop, "maximum");
    if (min != NULL && v < json_number_value(min)) {
        snprintf(why, len, "argument '%s' must be at least %g", name, json_number_value(min));
        return -1;
    }
    if (max != NULL && v > json_number_value(max)) {
        snprintf(why, len, "argument '%s' must be at most %g", name, json_number_value(max));
        return -1;
    }
    return 0;
}

/* Checks a string against the minLength and maxLength of its property. */
static int schema_length(const json_t *prop, const char *name, const json_t *v, char *why,
                         size_t len)
{
    size_t n = schema_chars(json_string_value(v), json_string_length(v));
    const json_t *min = json_object_get(prop, "minLength");
    const json_t *max = json_object_get(prop, "maxLength");
    if (min != NULL && n < (size_t)json_integer_value(min)) {
        snprintf(why, len, "argument '%s' must have at least %lld characters", name,
                 (long long)json_integer_value(min));
        return -1;
    }
    if (max != NULL && n > (size_t)json_integer_value(max)) {
        snprintf(why, len, "argument '%s' must have at most %lld characters", name,
                 (long long)json_integer_value(max));
        return -1;
    }
    return 0;
}

/* Checks an array against minItems and maxItems, and that each item is an
 * object when its items say so (a bulk operation's fields are its tool's to
 * check). */
static int schema_items(const json_t *prop, const char *name, const json_t *v, char *why,
                        size_t len)
{
    size_t n = json_array_size(v);
    const json_t *min = json_object_get(prop, "minItems");
    const json_t *max = json_object_get(prop, "maxItems");
    if ((min != NULL && n < (size_t)json_integer_value(min)) ||
        (max != NULL && n > (size_t)json_integer_value(max))) {
        snprintf(why, len, "argument '%s' must have %lld to %lld items", name,
                 min != NULL ? (long long)json_integer_value(min) : 0LL,
                 max != NULL ? (long long)json_integer_value(max) : (long long)SIZE_MAX / 2);
        return -1;
    }
    const char *item = json_string_value(json_object_get(json_object_get(prop, "items"), "type"));
    size_t i;
    const json_t *x;
    json_array_foreach(v, i, x)
    {
        if (item != NULL && strcmp(item, "object") == 0 && !json_is_object(x)) {
            snprintf(why, len, "argument '%s': item %zu must be an object", name, i);
            return -1;
        }
    }
    return 0;
}

/* Checks one argument against its property's schema. */
static int schema_value(const json_t *prop, const char *name, const json_t *v, char *why,
                        size_t len)
{
    const char *type = json_string_value(json_object_get(prop, "type"));
    if (type == NULL)
        type = "";
    bool ok = strcmp(type, "string") == 0    ? json_is_string(v)
              : strcmp(type, "integer") == 0 ? json_is_integer(v)
              : strcmp(type, "number") == 0  ? json_is_number(v)
              : strcmp(type, "boolean") == 0 ? json_is_boolean(v)
              : strcmp(type, "array") == 0   ? json_is_array(v)
                                             : false;
    if (!ok) {
        snprintf(why, len, "argument '%s' must be of type %s", name, type);
        return -1;
    }
    if (json_is_string(v))
        return schema_length(prop, name, v, why, len);
    if (json_is_number(v))
        return schema_bounds(prop, name, json_number_value(v), why, len);
    if (json_is_array(v))
        return schema_items(prop, name, v, why, len);
    return 0;
}

int schema_check(const json_t *schema, const json_t *args, char *why, size_t len)
{
    const json_t *props = json_object_get(schema, "properties");
    const json_t *required = json_object_get(schema, "required");
    const char *name;
    const json_t *v;
    json_object_foreach((json_t *)args, name, v)
    {
        const json_t *prop = json_object_get(props, name);
        if (prop == NULL) {
            snprintf(why, len, "unknown argument '%s'", name);
            return -1;
        }
        if (schema_value(prop, name, v, why, len) < 0)
            return -1;
    }
    size_t i;
    json_array_foreach(required, i, v)
    {
        if (json_object_get(args, json_string_value(v)) == NULL) {
            snprintf(why, len, "missing argument '%s'", json_string_value(v));
            return -1;
        }
    }
    return 0;
}

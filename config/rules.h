/* rules.h - what config.c and rules.c share, inside config/: the one-line
 * error writer and the address check. rules.c holds the rules that span
 * settings (config_validate) and the list settings' splitting. */
#ifndef NEARCACHE_CONFIG_RULES_H
#define NEARCACHE_CONFIG_RULES_H

#include <stddef.h>

/* Writes one line to err (if any; control bytes escaped). Returns -1. */
int config_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Returns NULL if text is a valid address (host:port, [v6]:port or a unix
 * socket path), else the reason. */
const char *config_address_check(const char *text);

#endif

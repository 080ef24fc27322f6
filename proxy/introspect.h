/* introspect.h - the command table from Redis's own COMMAND reply.
 *
 * Control plane, run once at start-up: a blocking hiredis connection with a
 * timeout. If it fails, the caller falls back to command_table_add_builtin().
 */
#ifndef NEARCACHE_INTROSPECT_H
#define NEARCACHE_INTROSPECT_H

#include <stddef.h>

#include "proxy/proto/command.h"

/* Connects to unix_path when not NULL, else host:port, sends AUTH [user]
 * password when password is not NULL, runs COMMAND and adds every command and
 * subcommand to t with its arity, flags and key specs (unknown fields and
 * flags ignored). Every step must finish within timeout_ms. Returns the number
 * of commands added; entries that are malformed or do not fit struct command
 * are skipped and counted in err ("N malformed COMMAND entries skipped").
 * Returns -1 with a one-line reason in err (none added) when Redis cannot be
 * reached, refuses, or the reply is not a COMMAND reply. err may be NULL. */
int introspect_commands(const char *host, int port, const char *unix_path, const char *user,
                        const char *password, int timeout_ms, struct command_table *t, char *err,
                        size_t errlen);

#endif

/* introspect.h - the command table from Redis's own COMMAND reply.
 *
 * Control plane, run once at start-up: a blocking exchange with a deadline
 * (ctl.h). If it fails, the caller falls back to command_table_add_builtin().
 */
#ifndef NEARCACHE_INTROSPECT_H
#define NEARCACHE_INTROSPECT_H

#include <stddef.h>

#include "proxy/ctl.h"
#include "proxy/proto/command.h"

/* Runs COMMAND on redis (ctl.h: connect, TLS and AUTH as it says) and adds
 * every command and subcommand to t with its arity, flags and key specs
 * (unknown fields and flags ignored). Returns the number of commands added;
 * entries that are malformed or do not fit struct command are skipped and
 * counted in err ("N malformed COMMAND entries skipped"). Returns -1 with a
 * one-line reason in err (none added) when Redis cannot be reached, refuses,
 * or the reply is not a COMMAND reply. */
int introspect_commands(const struct ctl_target *redis, struct command_table *t, char *err,
                        size_t errlen);

#endif

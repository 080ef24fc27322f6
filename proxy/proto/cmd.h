/* cmd.h - what a request does to its connection's state.
 *
 * Most commands only touch data and can share an upstream connection with
 * other clients. The few that change or depend on the connection's own state
 * decide where the proxy sends the client's traffic; this module tells them
 * apart. Pure: no I/O.
 */
#ifndef NEARCACHE_CMD_H
#define NEARCACHE_CMD_H

#include "proxy/proto/resp.h"

typedef enum {
    CMD_SHARED = 0, /* data only: any shared upstream connection will do */
    CMD_STICKY,     /* sets connection state for good (SELECT, AUTH, HELLO 3, CLIENT SETNAME) */
    CMD_STREAM,     /* replies stop matching requests one to one (SUBSCRIBE, MONITOR) */
    CMD_BLOCKING,   /* may block the connection (BLPOP, XREAD BLOCK, WAIT) */
    CMD_MULTI,      /* opens a transaction */
    CMD_EXEC,       /* ends a transaction and its watches (EXEC, DISCARD) */
    CMD_WATCH,      /* watches keys until EXEC, DISCARD or UNWATCH */
    CMD_UNWATCH,    /* drops the watches */
    CMD_QUIT,       /* answered +OK by the proxy, then the connection closes */
    CMD_RESET,      /* resets the connection's state */
    CMD_NEARCACHE,  /* the proxy's own command (NEARCACHE STATS) */
} cmd_kind_e;

/* Classifies a complete multibulk request (frame in buf, scanned into req),
 * looking at subcommands and options where they matter (CLIENT REPLY,
 * HELLO 3, XREAD ... BLOCK). Unknown commands are CMD_SHARED. */
cmd_kind_e cmd_classify(const char *buf, const struct resp_request *req);

#endif

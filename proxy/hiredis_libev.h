/* hiredis_libev.h - hiredis's libev adapter, for the control plane's async
 * connections (tracking.c, sentinel.c). The adapter is a header of static
 * functions written for older compilers: its warnings are silenced here,
 * once, and nowhere else. */
#ifndef NEARCACHE_HIREDIS_LIBEV_H
#define NEARCACHE_HIREDIS_LIBEV_H

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wshadow"
#include <hiredis/adapters/libev.h>
#pragma GCC diagnostic pop

#endif

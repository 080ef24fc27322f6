/* table.h - the built-in command table for the unit tests that look requests
 * up (proto/request.h), and the keys' scratch, set up and torn down around
 * each test (TestSuite(name, .init = table_setup, .fini = table_teardown)). */
#ifndef NEARCACHE_TESTS_TABLE_H
#define NEARCACHE_TESTS_TABLE_H

#include <criterion/criterion.h>

#include "proxy/proto/command.h"
#include "proxy/proto/request.h"

static struct command_table *table;
static struct request_keys scratch;

static inline void table_setup(void)
{
    table = command_table_create();
    cr_assert_gt(command_table_add_builtin(table), 0);
}

static inline void table_teardown(void)
{
    request_keys_free(&scratch);
    command_table_destroy(&table);
}

#endif

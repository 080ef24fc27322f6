/* logs.h - the logs of the processes a test starts, printed when it fails.
 *
 * Each test's redis-server and nearcache write to their own file in the run's
 * log dir ($NC_IT_LOGDIR, created for the run unless set). After each test the
 * runner prints the tail of both when the test failed, and removes them; after
 * the run it removes the dir it created. The run also ignores SIGPIPE, so that
 * a write to a closed socket is an error code, not a death, and in TLS mode
 * makes the certificates before the first test and removes them after the
 * last (tls.h).
 */
#ifndef NEARCACHE_TESTS_HARNESS_LOGS_H
#define NEARCACHE_TESTS_HARNESS_LOGS_H

#include <stddef.h>

/* Writes to dst the path of the current test's log of kind ("proxy" or
 * "redis"; only these two are printed and removed after the test). */
void harness_log_path(char *dst, size_t len, const char *kind);
/* Prints the last `lines` lines of the file at path to stderr under title;
 * nothing when it cannot be read. */
void harness_print_tail(const char *path, const char *title, int lines);
/* Prints a file to stderr (for subprocess output on failure). */
void harness_print_file(const char *path, const char *title);

#endif

/* proc.h - child processes, temp dirs and files for the end-to-end tests.
 *
 * Every child dies with the test process (PR_SET_PDEATHSIG), gets /dev/null as
 * stdin, no inherited fds and none of the NEARCACHE_* variables of the
 * developer's environment. Waits are bounded: a child that does not exit in
 * time is killed. Failures to fork, create or write fail the current criterion
 * test (cr_assert).
 */
#ifndef NEARCACHE_TESTS_HARNESS_PROC_H
#define NEARCACHE_TESTS_HARNESS_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* ---- children ------------------------------------------------------------ */

/* Starts argv (argv[0] looked up in PATH) with stdout and stderr to out_path
 * (truncated first) and returns its pid; it dies with the test. */
pid_t harness_spawn(const char *const *argv, const char *out_path);
/* harness_spawn that appends to out_path instead, so that the output of one
 * process started again (a restarted Redis) stays in one log. */
pid_t harness_spawn_append(const char *const *argv, const char *out_path);
/* Waits for a harness_spawn child. Returns the waitpid status, or -1 when it
 * had to be killed at the deadline. */
int harness_wait(pid_t pid, int timeout_ms);
/* harness_spawn, then harness_wait. */
int harness_run(const char *const *argv, const char *out_path, int timeout_ms);
/* waitpid with a deadline, and nothing else. Returns the status, or -1 on
 * timeout (the child is left running). */
int harness_wait_exit(pid_t pid, int timeout_ms);
/* SIGTERM, then SIGKILL if it does not exit within HARNESS_TIMEOUT_MS. Returns
 * the waitpid status, or -1 when it had to be killed. */
int harness_terminate(pid_t pid);
/* True, with *status set, when the child has exited (it is reaped). Never
 * blocks. */
bool harness_reaped(pid_t pid, int *status);
/* True when a waitpid status (not -1) says the process exited with code. */
bool harness_exited_with(int status, int code);

/* Whether the server on port is ready to be used. */
typedef bool (*harness_ready_fn)(int port);

/* Waits until the child *pid is ready (ready(port) is true). On exit or
 * timeout (HARNESS_TIMEOUT_MS), reaps it, prints why to stderr naming it
 * `what`, sets *pid = 0 and returns false. */
bool harness_wait_ready(pid_t *pid, int port, harness_ready_fn ready, const char *what);

/* ---- files ----------------------------------------------------------------- */

/* A fresh temp dir for files a test writes (removed by harness_rmdir). */
void harness_mkdtemp(char *dir, size_t len);
/* Removes dir and everything in it; nothing when dir is "". */
void harness_rmdir(const char *dir);
/* Replaces the file at path with text atomically (a temp file renamed over it),
 * so that a process re-reading it sees the old or the new content, never a mix.
 * Fails the test if it cannot. */
void harness_write_file(const char *path, const char *text);

#endif

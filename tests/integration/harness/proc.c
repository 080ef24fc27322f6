/* proc.c - child processes, temp dirs and files for the end-to-end tests.
 * See proc.h for the contracts. */
#include "harness/proc.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/clock.h"

/* ---- children --------------------------------------------------------------- */

/* Removes NEARCACHE_* variables: the proxy reads them as settings, and a
 * developer's environment must not change what the tests see. */
static void scrub_environment(void)
{
    for (size_t i = 0; environ[i] != NULL;) {
        char name[256];
        const char *eq = strchr(environ[i], '=');
        size_t n = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        if (strncmp(environ[i], "NEARCACHE_", 10) == 0 && n < sizeof(name)) {
            memcpy(name, environ[i], n);
            name[n] = '\0';
            unsetenv(name);
            continue;
        }
        i++;
    }
}

/* fork + exec with stdout/stderr appended to out_path; the child dies with us. */
static pid_t spawn(const char *const *argv, const char *out_path, bool truncate)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid > 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    int out = open(out_path, O_WRONLY | O_CREAT | O_APPEND | (truncate ? O_TRUNC : 0), 0644);
    int in = open("/dev/null", O_RDONLY);
    if (out < 0 || in < 0)
        _exit(127);
    dup2(in, 0);
    dup2(out, 1);
    dup2(out, 2);
    for (int fd = 3; fd < 1024; fd++)
        close(fd);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    scrub_environment();
    execvp(argv[0], (char *const *)argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

int harness_wait_exit(pid_t pid, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0 && errno != EINTR)
            return -1;
        if (harness_now_ms() >= deadline)
            return -1;
        harness_sleep_ms(5);
    }
}

int harness_terminate(pid_t pid)
{
    kill(pid, SIGTERM);
    int status = harness_wait_exit(pid, HARNESS_TIMEOUT_MS);
    if (status != -1)
        return status;
    kill(pid, SIGKILL);
    harness_wait_exit(pid, HARNESS_TIMEOUT_MS);
    return -1;
}

bool harness_reaped(pid_t pid, int *status)
{
    return waitpid(pid, status, WNOHANG) == pid;
}

pid_t harness_spawn(const char *const *argv, const char *out_path)
{
    return spawn(argv, out_path, true);
}

pid_t harness_spawn_append(const char *const *argv, const char *out_path)
{
    return spawn(argv, out_path, false);
}

int harness_wait(pid_t pid, int timeout_ms)
{
    int status = harness_wait_exit(pid, timeout_ms);
    if (status == -1) {
        kill(pid, SIGKILL);
        harness_wait_exit(pid, HARNESS_TIMEOUT_MS);
    }
    return status;
}

int harness_run(const char *const *argv, const char *out_path, int timeout_ms)
{
    return harness_wait(harness_spawn(argv, out_path), timeout_ms);
}

bool harness_exited_with(int status, int code)
{
    return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == code;
}

bool harness_wait_ready(pid_t *pid, int port, harness_ready_fn ready, const char *what)
{
    int64_t deadline = harness_now_ms() + HARNESS_TIMEOUT_MS;
    int status;
    while (harness_now_ms() < deadline) {
        if (harness_reaped(*pid, &status)) {
            fprintf(stderr, "%s on port %d exited during startup (status %#x)\n", what, port,
                    status);
            *pid = 0;
            return false;
        }
        if (ready(port))
            return true;
        harness_sleep_ms(10);
    }
    fprintf(stderr, "%s on port %d not ready within %d ms\n", what, port, HARNESS_TIMEOUT_MS);
    kill(*pid, SIGKILL);
    harness_wait_exit(*pid, HARNESS_TIMEOUT_MS);
    *pid = 0;
    return false;
}

/* ---- files ------------------------------------------------------------------- */

void harness_mkdtemp(char *dir, size_t len)
{
    snprintf(dir, len, "/tmp/nearcache-it.XXXXXX");
    cr_assert(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void harness_write_file(const char *path, const char *text)
{
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    cr_assert(f != NULL, "%s: %s", tmp, strerror(errno));
    size_t n = strlen(text);
    bool ok = fwrite(text, 1, n, f) == n;
    ok = fclose(f) == 0 && ok;
    cr_assert(ok, "writing %s: %s", tmp, strerror(errno));
    cr_assert(rename(tmp, path) == 0, "rename %s: %s", path, strerror(errno));
}

void harness_rmdir(const char *dir)
{
    if (dir[0] != '\0')
        nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

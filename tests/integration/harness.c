/* harness.c - processes, sockets, byte buffers and fixtures for the end-to-end
 * tests. See harness.h for the contracts. */
#include "harness.h"

#include <criterion/criterion.h>
#include <criterion/hooks.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef NEARCACHE_BIN
#define NEARCACHE_BIN "nearcache"
#endif

#define LOGDIR_ENV    "NC_IT_LOGDIR"
#define START_RETRIES 5

/* ---- time -------------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void harness_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- bytes ------------------------------------------------------------------- */

static void bytes_reserve(struct bytes *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra)
        cap *= 2;
    b->data = realloc(b->data, cap);
    cr_assert(b->data != NULL, "out of memory");
    b->cap = cap;
}

void bytes_append(struct bytes *b, const void *p, size_t n)
{
    bytes_reserve(b, n + 1);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0'; /* convenient for strstr on text replies */
}

void bytes_puts(struct bytes *b, const char *s)
{
    bytes_append(b, s, strlen(s));
}

void bytes_printf(struct bytes *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    bytes_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void bytes_free(struct bytes *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

bool bytes_ends_with(const struct bytes *b, const void *s, size_t n)
{
    return b->len >= n && memcmp(b->data + b->len - n, s, n) == 0;
}

bool bytes_equal_str(const struct bytes *b, const char *s)
{
    size_t n = strlen(s);
    return b->len == n && (n == 0 || memcmp(b->data, s, n) == 0);
}

void bytes_escape(struct bytes *out, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        if (c[i] == '\r')
            bytes_puts(out, "\\r");
        else if (c[i] == '\n')
            bytes_puts(out, "\\n");
        else if (c[i] == '\\')
            bytes_puts(out, "\\\\");
        else if (c[i] < 0x20 || c[i] >= 0x7f)
            bytes_printf(out, "\\x%02x", c[i]);
        else
            bytes_append(out, &c[i], 1);
    }
}

const char *bytes_show(const struct bytes *b)
{
    static char ring[4][1400];
    static unsigned next;
    char *dst = ring[next++ % 4];
    struct bytes e = {0};
    size_t n = b->len > 300 ? 300 : b->len;
    bytes_escape(&e, b->data, n);
    if (n < b->len)
        bytes_printf(&e, "... (%zu bytes)", b->len);
    snprintf(dst, sizeof(ring[0]), "\"%s\"", e.data ? e.data : "");
    bytes_free(&e);
    return dst;
}

void bytes_append_bulk(struct bytes *b, const void *p, size_t n)
{
    bytes_printf(b, "$%zu\r\n", n);
    bytes_append(b, p, n);
    bytes_puts(b, "\r\n");
}

bool bytes_append_file(struct bytes *b, const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        bytes_append(b, chunk, n);
    fclose(f);
    return true;
}

/* ---- requests ---------------------------------------------------------------- */

void req_addv(struct bytes *out, int argc, const char *const *argv, const size_t *lens)
{
    bytes_printf(out, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++)
        bytes_append_bulk(out, argv[i], lens[i]);
}

void req_add(struct bytes *out, const char *arg, ...)
{
    const char *argv[64];
    size_t lens[64];
    int argc = 0;
    va_list ap;
    va_start(ap, arg);
    for (const char *a = arg; a != NULL && argc < 64; a = va_arg(ap, const char *)) {
        argv[argc] = a;
        lens[argc++] = strlen(a);
    }
    va_end(ap);
    req_addv(out, argc, argv, lens);
}

/* Splits one line into arguments; returns how many. */
static int split_line(const char *p, const char *end, const char **argv, size_t *lens, int max)
{
    int argc = 0;
    while (p < end && argc < max) {
        while (p < end && *p == ' ')
            p++;
        if (p == end)
            break;
        const char *start = p;
        if (*p == '"') {
            start = ++p;
            while (p < end && *p != '"')
                p++;
            argv[argc] = start;
            lens[argc++] = (size_t)(p - start);
            p += p < end;
            continue;
        }
        while (p < end && *p != ' ')
            p++;
        argv[argc] = start;
        lens[argc++] = (size_t)(p - start);
    }
    return argc;
}

void req_lines(struct bytes *out, const char *text)
{
    const char *p = text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        const char *end = eol ? eol : p + strlen(p);
        const char *argv[64];
        size_t lens[64];
        int argc = split_line(p, end, argv, lens, 64);
        if (argc > 0)
            req_addv(out, argc, argv, lens);
        p = eol ? eol + 1 : end;
    }
}

/* ---- replies ----------------------------------------------------------------- */

static bool parse_len(const char *p, const char *end, long long *out)
{
    char tmp[32];
    size_t n = (size_t)(end - p);
    if (n == 0 || n >= sizeof(tmp))
        return false;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    char *stop;
    errno = 0;
    *out = strtoll(tmp, &stop, 10);
    return errno == 0 && *stop == '\0';
}

size_t reply_end(const char *p, size_t len, size_t off)
{
    if (off >= len)
        return 0;
    const char *nl = memmem(p + off, len - off, "\r\n", 2);
    if (nl == NULL)
        return 0;
    size_t line_end = (size_t)(nl - p) + 2;
    long long n = 0;
    char type = p[off];
    if (strchr("+-:_,#(", type))
        return line_end;
    if (!strchr("$=!*~>%|", type) || !parse_len(p + off + 1, nl, &n))
        return REPLY_BAD;
    if (n < 0)
        return line_end; /* null bulk or null array */
    if (strchr("$=!", type)) {
        if (len - line_end < (unsigned long long)n + 2)
            return 0;
        return line_end + (size_t)n + 2;
    }
    if (type == '%' || type == '|')
        n *= 2;
    size_t at = line_end;
    for (long long i = 0; i < n; i++) {
        at = reply_end(p, len, at);
        if (at == 0 || at == REPLY_BAD)
            return at;
    }
    return type == '|' ? reply_end(p, len, at) : at; /* an attribute precedes a value */
}

/* ---- sockets ----------------------------------------------------------------- */

int sock_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* Reads everything available. Returns 1 on EOF or reset, 0 otherwise. */
static int drain_input(int fd, struct bytes *in)
{
    for (;;) {
        bytes_reserve(in, 65536 + 1);
        ssize_t r = recv(fd, in->data + in->len, in->cap - in->len - 1, 0);
        if (r > 0) {
            in->len += (size_t)r;
            in->data[in->len] = '\0';
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        return 1;
    }
}

sock_status_e sock_exchange(int fd, const void *out, size_t n, struct bytes *in, const void *suffix,
                            size_t slen, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    size_t sent = 0;
    for (;;) {
        bool writing = sent < n;
        if (!writing && (slen == 0 || bytes_ends_with(in, suffix, slen)))
            return SOCK_DONE;
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return SOCK_TIMEOUT;
        struct pollfd pfd = {.fd = fd, .events = POLLIN | (writing ? POLLOUT : 0)};
        int rc = poll(&pfd, 1, (int)left);
        if (rc < 0 && errno != EINTR)
            return SOCK_TIMEOUT;
        if (rc <= 0)
            continue;
        if ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) && drain_input(fd, in))
            return SOCK_EOF;
        if (writing && (pfd.revents & POLLOUT)) {
            ssize_t w = send(fd, (const char *)out + sent, n - sent, MSG_NOSIGNAL);
            if (w > 0)
                sent += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                sent = n; /* the peer is gone; read what it said before closing */
        }
    }
}

/* Waits for input until the deadline and appends it to in. Returns SOCK_DONE
 * when the wait ended with the connection still open (bytes may or may not
 * have arrived), SOCK_EOF or SOCK_TIMEOUT. */
static sock_status_e wait_input(int fd, struct bytes *in, int64_t deadline)
{
    int64_t left = deadline - now_ms();
    if (left <= 0)
        return SOCK_TIMEOUT;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int rc = poll(&pfd, 1, (int)left);
    return rc > 0 && drain_input(fd, in) ? SOCK_EOF : SOCK_DONE;
}

sock_status_e sock_read_until_eof(int fd, struct bytes *in, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    sock_status_e st;
    while ((st = wait_input(fd, in, deadline)) == SOCK_DONE) {
    }
    return st;
}

sock_status_e sock_read_replies(int fd, struct bytes *in, size_t from, size_t count, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    size_t got = 0;
    for (;;) {
        size_t end;
        while (got < count && (end = reply_end(in->data, in->len, from)) != 0 && end != REPLY_BAD) {
            from = end;
            got++;
        }
        if (got == count)
            return SOCK_DONE;
        sock_status_e st = wait_input(fd, in, deadline);
        if (st != SOCK_DONE)
            return st;
    }
}

sock_status_e sock_call(int fd, const char *lines, size_t replies, struct bytes *in, int timeout_ms)
{
    struct bytes req = {0};
    req_lines(&req, lines);
    in->len = 0;
    sock_status_e st = sock_exchange(fd, req.data, req.len, in, NULL, 0, timeout_ms);
    bytes_free(&req);
    if (st != SOCK_DONE)
        return st;
    return sock_read_replies(fd, in, 0, replies, timeout_ms);
}

int sock_connect_or_fail(int port)
{
    int fd = sock_connect(port);
    cr_assert(fd >= 0, "connect to %d: %s", port, strerror(errno));
    return fd;
}

void sock_call_or_fail(int fd, const char *lines, size_t replies, struct bytes *in)
{
    sock_status_e st = sock_call(fd, lines, replies, in, HARNESS_TIMEOUT_MS);
    cr_assert(st == SOCK_DONE, "[%s]: %s after %s", lines,
              st == SOCK_EOF ? "connection closed" : "no reply", bytes_show(in));
}

void sock_call_expect(int fd, const char *lines, size_t replies, const char *want)
{
    struct bytes in = {0};
    sock_call_or_fail(fd, lines, replies, &in);
    cr_assert(bytes_equal_str(&in, want), "[%s]: got %s", lines, bytes_show(&in));
    bytes_free(&in);
}

/* ---- logs of the processes, printed by the runner when a test fails ------------ */

/* Where the log of a process of one test goes. */
static void log_file(char *dst, size_t len, const char *dir, const char *suite, const char *test,
                     const char *kind)
{
    snprintf(dst, len, "%s/%s.%s.%s.log", dir, suite, test, kind);
}

/* The same for the current test. */
static void log_path(char *dst, size_t len, const char *kind)
{
    const char *dir = getenv(LOGDIR_ENV);
    log_file(dst, len, dir ? dir : "/tmp", criterion_current_suite->name,
             criterion_current_test->name, kind);
}

/* Prints the last `lines` lines of path. */
static void print_tail(const char *path, const char *title, int lines)
{
    struct bytes all = {0};
    if (!bytes_append_file(&all, path))
        return;
    size_t start = all.len;
    for (int seen = 0; start > 0; start--)
        if (all.data[start - 1] == '\n' && ++seen > lines)
            break;
    fprintf(stderr, "----- %s (%s, last %d lines) -----\n%.*s----- end -----\n", title, path, lines,
            (int)(all.len - start), all.data ? all.data + start : "");
    bytes_free(&all);
}

void harness_print_file(const char *path, const char *title)
{
    print_tail(path, title, 200);
}

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    (void)set;
    static char dir[] = "/tmp/nearcache-it-logs.XXXXXX";
    if (getenv(LOGDIR_ENV) == NULL && mkdtemp(dir) != NULL)
        setenv(LOGDIR_ENV, dir, 1);
    signal(SIGPIPE, SIG_IGN);
}

ReportHook(POST_TEST)(struct criterion_test_stats *stats)
{
    const char *dir = getenv(LOGDIR_ENV);
    if (dir == NULL)
        return;
    static const char *const kinds[] = {"proxy", "redis"};
    for (size_t i = 0; i < 2; i++) {
        char path[512];
        log_file(path, sizeof(path), dir, stats->test->category, stats->test->name, kinds[i]);
        if (stats->test_status == CR_STATUS_FAILED)
            print_tail(path, kinds[i], i == 0 ? 150 : 20);
        unlink(path);
    }
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    (void)stats;
    const char *dir = getenv(LOGDIR_ENV);
    if (dir != NULL && strstr(dir, "/nearcache-it-logs.") != NULL)
        harness_rmdir(dir);
}

/* ---- processes --------------------------------------------------------------- */

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

/* waitpid with a deadline. Returns the status, or -1 on timeout. */
static int wait_exit(pid_t pid, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0 && errno != EINTR)
            return -1;
        if (now_ms() >= deadline)
            return -1;
        harness_sleep_ms(5);
    }
}

/* SIGTERM, then SIGKILL if it does not exit in time. Returns the status or -1. */
static int terminate(pid_t pid)
{
    kill(pid, SIGTERM);
    int status = wait_exit(pid, HARNESS_TIMEOUT_MS);
    if (status != -1)
        return status;
    kill(pid, SIGKILL);
    wait_exit(pid, HARNESS_TIMEOUT_MS);
    return -1;
}

static bool exited(pid_t pid, int *status)
{
    return waitpid(pid, status, WNOHANG) == pid;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0, "socket: %s", strerror(errno));
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    cr_assert(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind: %s", strerror(errno));
    getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    return ntohs(sa.sin_port);
}

pid_t harness_spawn(const char *const *argv, const char *out_path)
{
    return spawn(argv, out_path, true);
}

int harness_wait(pid_t pid, int timeout_ms)
{
    int status = wait_exit(pid, timeout_ms);
    if (status == -1) {
        kill(pid, SIGKILL);
        wait_exit(pid, HARNESS_TIMEOUT_MS);
    }
    return status;
}

int harness_run(const char *const *argv, const char *out_path, int timeout_ms)
{
    return harness_wait(harness_spawn(argv, out_path), timeout_ms);
}

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

/* ---- redis ------------------------------------------------------------------- */

/* True when a fresh connection to port answers PING with +PONG within ms. */
static bool answers_ping(int port, int ms)
{
    int fd = sock_connect(port);
    if (fd < 0)
        return false;
    struct bytes in = {0};
    sock_status_e st = sock_exchange(fd, "PING\r\n", 6, &in, "\r\n", 2, ms);
    bool ok = st == SOCK_DONE && bytes_equal_str(&in, "+PONG\r\n");
    bytes_free(&in);
    close(fd);
    return ok;
}

static pid_t redis_spawn(struct redis *r)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", r->port);
    const char *server = getenv("NC_IT_REDIS_SERVER");
    const char *argv[] = {server ? server : "redis-server",
                          "--port",
                          port,
                          "--bind",
                          "127.0.0.1",
                          "--save",
                          "",
                          "--appendonly",
                          "no",
                          "--dir",
                          r->dir,
                          "--logfile",
                          "",
                          "--enable-debug-command",
                          "local",
                          NULL};
    return spawn(argv, r->log, false);
}

static bool accepts(int port)
{
    int fd = sock_connect(port);
    if (fd >= 0)
        close(fd);
    return fd >= 0;
}

/* Waits until the child *pid is ready: answers PING (ping) or accepts a
 * connection on port. On exit or timeout, reaps it, sets *pid = 0 and returns
 * false. */
static bool wait_ready(pid_t *pid, int port, bool ping, const char *what)
{
    int64_t deadline = now_ms() + HARNESS_TIMEOUT_MS;
    int status;
    while (now_ms() < deadline) {
        if (exited(*pid, &status)) {
            fprintf(stderr, "%s on port %d exited during startup (status %#x)\n", what, port,
                    status);
            *pid = 0;
            return false;
        }
        if (ping ? answers_ping(port, 500) : accepts(port))
            return true;
        harness_sleep_ms(10);
    }
    fprintf(stderr, "%s on port %d not ready within %d ms\n", what, port, HARNESS_TIMEOUT_MS);
    kill(*pid, SIGKILL);
    wait_exit(*pid, HARNESS_TIMEOUT_MS);
    *pid = 0;
    return false;
}

/* Spawns on r->port and waits for PING. */
static bool redis_launch(struct redis *r)
{
    r->pid = redis_spawn(r);
    return wait_ready(&r->pid, r->port, true, "redis-server");
}

void redis_start(struct redis *r)
{
    memset(r, 0, sizeof(*r));
    harness_mkdtemp(r->dir, sizeof(r->dir));
    log_path(r->log, sizeof(r->log), "redis");
    for (int attempt = 0; attempt < START_RETRIES; attempt++) {
        r->port = free_port();
        if (redis_launch(r))
            return;
    }
    print_tail(r->log, "redis", 30);
    harness_rmdir(r->dir); /* no .fini runs after a failed .init */
    cr_assert_fail("redis-server would not start (is it installed?)");
}

void redis_restart(struct redis *r)
{
    cr_assert(r->pid == 0, "redis_restart: still running");
    for (int attempt = 0; attempt < START_RETRIES; attempt++) {
        if (redis_launch(r))
            return;
        harness_sleep_ms(100);
    }
    cr_assert_fail("redis-server would not restart on port %d", r->port);
}

void redis_stop(struct redis *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGCONT);
        terminate(r->pid);
    }
    r->pid = 0;
    harness_rmdir(r->dir);
    r->dir[0] = '\0';
}

void redis_kill(struct redis *r)
{
    cr_assert(r->pid > 0, "redis_kill: not running");
    kill(r->pid, SIGKILL);
    cr_assert(wait_exit(r->pid, HARNESS_TIMEOUT_MS) != -1, "redis did not die");
    r->pid = 0;
}

void redis_pause(struct redis *r)
{
    cr_assert(r->pid > 0 && kill(r->pid, SIGSTOP) == 0, "redis_pause");
}

void redis_resume(struct redis *r)
{
    cr_assert(r->pid > 0 && kill(r->pid, SIGCONT) == 0, "redis_resume");
}

struct bytes redis_call(const struct redis *r, const char *line)
{
    struct bytes in = {0};
    int fd = sock_connect_or_fail(r->port);
    sock_status_e st = sock_call(fd, line, 1, &in, HARNESS_TIMEOUT_MS);
    close(fd);
    cr_assert(st == SOCK_DONE, "redis did not answer %s", line);
    return in;
}

void redis_call_expect(const struct redis *r, const char *line, const char *want)
{
    struct bytes got = redis_call(r, line);
    cr_assert(bytes_equal_str(&got, want), "direct %s: got %s", line, bytes_show(&got));
    bytes_free(&got);
}

void redis_reset(const struct redis *r)
{
    static const char *const cmds[] = {"FLUSHALL", "SCRIPT FLUSH", "FUNCTION FLUSH"};
    for (size_t i = 0; i < ARRAY_LEN(cmds); i++)
        redis_call_expect(r, cmds[i], "+OK\r\n");
}

void redis_wait_info(const struct redis *r, const char *field_value)
{
    char needle[128];
    snprintf(needle, sizeof(needle), "\r\n%s\r\n", field_value);
    int64_t deadline = now_ms() + HARNESS_TIMEOUT_MS;
    for (;;) {
        struct bytes in = redis_call(r, "INFO");
        bool found = in.data && strstr(in.data, needle) != NULL;
        bytes_free(&in);
        if (found)
            return;
        cr_assert(now_ms() < deadline, "redis INFO never showed %s", field_value);
        harness_sleep_ms(10);
    }
}

/* Bytes received and not yet read on r's established connections. */
static unsigned long redis_unread(const struct redis *r)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    cr_assert(f != NULL, "/proc/net/tcp: %s", strerror(errno));
    char line[512];
    unsigned long total = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned port, state;
        unsigned long rx;
        if (sscanf(line, " %*d: %*x:%x %*x:%*x %x %*x:%lx", &port, &state, &rx) == 3 &&
            port == (unsigned)r->port && state == 1 /* TCP_ESTABLISHED */)
            total += rx;
    }
    fclose(f);
    return total;
}

void redis_wait_unread(const struct redis *r, unsigned long min_bytes)
{
    int64_t deadline = now_ms() + HARNESS_TIMEOUT_MS;
    unsigned long unread;
    while ((unread = redis_unread(r)) < min_bytes) {
        cr_assert(now_ms() < deadline, "Redis received %lu of the %lu bytes sent through the proxy",
                  unread, min_bytes);
        harness_sleep_ms(5);
    }
}

/* ---- proxy ------------------------------------------------------------------- */

const char *harness_bin(void)
{
    const char *bin = getenv("NC_IT_BIN");
    return bin != NULL && bin[0] != '\0' ? bin : NEARCACHE_BIN;
}

bool harness_direct(void)
{
    const char *v = getenv("NC_IT_DIRECT");
    return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

void harness_require_proxy(void)
{
    if (!harness_direct())
        return;
    fixture_stop(); /* a skipped test does not run its .fini */
    cr_skip_test("needs the nearcache binary (NC_IT_DIRECT is set)");
}

static bool proxy_launch(struct proxy *p, int upstream_port, const char *config,
                         const char *const *sets)
{
    char listen[32], upstream[32];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", p->port);
    snprintf(upstream, sizeof(upstream), "127.0.0.1:%d", upstream_port);
    const char *argv[64] = {harness_bin(), "--listen", listen, "--upstream", upstream};
    int argc = 5;
    if (config != NULL) {
        argv[argc++] = "--config";
        argv[argc++] = config;
    }
    for (int i = 0; sets && sets[i] && argc < 62; i++) {
        argv[argc++] = "--set";
        argv[argc++] = sets[i];
    }
    argv[argc] = NULL;
    p->pid = spawn(argv, p->log, false);
    return wait_ready(&p->pid, p->port, false, "nearcache");
}

/* proxy_start without the assertion; prints the log when it fails. */
static bool proxy_try_start(struct proxy *p, int upstream_port, const char *config,
                            const char *const *sets)
{
    memset(p, 0, sizeof(*p));
    if (harness_direct()) {
        p->port = upstream_port;
        return true;
    }
    log_path(p->log, sizeof(p->log), "proxy");
    for (int attempt = 0; attempt < 3; attempt++) {
        do /* a stopped Redis's port is free too, but must stay its own */
            p->port = free_port();
        while (p->port == upstream_port);
        if (proxy_launch(p, upstream_port, config, sets))
            return true;
    }
    print_tail(p->log, "proxy", 50);
    return false;
}

void proxy_start(struct proxy *p, int upstream_port, const char *const *sets)
{
    cr_assert(proxy_try_start(p, upstream_port, NULL, sets), "nearcache would not start (%s)",
              harness_bin());
}

void proxy_start_config(struct proxy *p, int upstream_port, const char *config,
                        const char *const *sets)
{
    cr_assert(proxy_try_start(p, upstream_port, config, sets),
              "nearcache would not start with --config %s (%s)", config, harness_bin());
}

bool proxy_log_contains(const struct proxy *p, const char *needle)
{
    struct bytes log = {0};
    bool found = bytes_append_file(&log, p->log) && log.data != NULL &&
                 memmem(log.data, log.len, needle, strlen(needle)) != NULL;
    bytes_free(&log);
    return found;
}

void proxy_wait_log(const struct proxy *p, const char *needle)
{
    int64_t deadline = now_ms() + HARNESS_TIMEOUT_MS;
    while (!proxy_log_contains(p, needle)) {
        cr_assert(now_ms() < deadline, "the proxy log never showed \"%s\" within %d ms", needle,
                  HARNESS_TIMEOUT_MS);
        harness_sleep_ms(10);
    }
}

void proxy_signal(const struct proxy *p, int sig)
{
    cr_assert(p->pid > 0, "proxy_signal: the proxy is not running");
    kill(p->pid, sig);
}

int proxy_wait(struct proxy *p, int timeout_ms)
{
    if (p->pid <= 0)
        return 0;
    int status = wait_exit(p->pid, timeout_ms);
    if (status != -1)
        p->pid = 0;
    return status;
}

int proxy_stop(struct proxy *p)
{
    if (p->pid <= 0)
        return 0;
    int status = terminate(p->pid);
    p->pid = 0;
    return status;
}

static const char *describe_status(int status)
{
    static char text[64];
    if (status == -1)
        snprintf(text, sizeof(text), "still running after %d ms", HARNESS_TIMEOUT_MS);
    else if (WIFSIGNALED(status))
        snprintf(text, sizeof(text), "killed by signal %d", WTERMSIG(status));
    else
        snprintf(text, sizeof(text), "exit status %d", WEXITSTATUS(status));
    return text;
}

bool harness_exited_with(int status, int code)
{
    return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == code;
}

void proxy_stop_clean(struct proxy *p)
{
    int status = proxy_stop(p);
    cr_assert(harness_exited_with(status, 0), "the proxy did not exit 0 on SIGTERM: %s",
              describe_status(status));
}

void proxy_finish(struct proxy *p)
{
    int status;
    if (p->pid > 0 && exited(p->pid, &status)) {
        p->pid = 0;
        cr_assert_fail("the proxy died during the test: %s", describe_status(status));
    }
    int fd = sock_connect_or_fail(p->port);
    sock_call_expect(fd, "PING", 1, "+PONG\r\n");
    close(fd);
    proxy_stop_clean(p);
}

/* ---- fixtures ---------------------------------------------------------------- */

struct redis fx_redis;
struct proxy fx_proxy;

void fixture_redis(void)
{
    redis_start(&fx_redis);
}

void fixture_both(void)
{
    redis_start(&fx_redis);
    if (!proxy_try_start(&fx_proxy, fx_redis.port, NULL, NULL)) {
        redis_stop(&fx_redis); /* no .fini runs after a failed .init */
        cr_assert_fail("nearcache would not start (%s)", harness_bin());
    }
}

void fixture_stop(void)
{
    int status = proxy_stop(&fx_proxy);
    if (status != 0)
        fprintf(stderr, "warning: %s::%s: the proxy did not exit 0 on SIGTERM (status %#x)\n",
                criterion_current_suite->name, criterion_current_test->name, status);
    redis_stop(&fx_redis);
}

void sock_read_until(int fd, const char *line, const char *want)
{
    struct bytes in = {0};
    for (int i = 0;; i++) {
        in.len = 0;
        sock_call_or_fail(fd, line, 1, &in);
        if (bytes_equal_str(&in, want))
            break;
        cr_assert(i < HARNESS_TIMEOUT_MS / 10, "%s never returned %s; last %s", line, want,
                  bytes_show(&in));
        harness_sleep_ms(10);
    }
    bytes_free(&in);
}

long long proxy_stat(int fd, const char *name)
{
    struct bytes in = {0};
    sock_call_or_fail(fd, "NEARCACHE STATS", 1, &in);
    bytes_puts(&in, "");
    char pattern[64];
    snprintf(pattern, sizeof(pattern), "\n%s:", name);
    const char *at = strstr(in.data, pattern);
    cr_assert_not_null(at, "no %s in %s", name, bytes_show(&in));
    long long v = atoll(at + strlen(pattern));
    bytes_free(&in);
    return v;
}

/* sock.c - client sockets of the end-to-end tests. See sock.h for the
 * contracts. */
#include "harness/sock.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness/clock.h"

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

int sock_free_port(void)
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
    int64_t deadline = harness_now_ms() + timeout_ms;
    size_t sent = 0;
    for (;;) {
        bool writing = sent < n;
        if (!writing && (slen == 0 || bytes_ends_with(in, suffix, slen)))
            return SOCK_DONE;
        int64_t left = deadline - harness_now_ms();
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
    int64_t left = deadline - harness_now_ms();
    if (left <= 0)
        return SOCK_TIMEOUT;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int rc = poll(&pfd, 1, (int)left);
    return rc > 0 && drain_input(fd, in) ? SOCK_EOF : SOCK_DONE;
}

sock_status_e sock_read_until_eof(int fd, struct bytes *in, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    sock_status_e st;
    while ((st = wait_input(fd, in, deadline)) == SOCK_DONE) {
    }
    return st;
}

sock_status_e sock_read_replies(int fd, struct bytes *in, size_t from, size_t count, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
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

/* ctl.c - a blocking control-plane exchange over the data path's transport. */
#include "proxy/ctl.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "proxy/lib/buf.h"
#include "proxy/lib/log.h"
#include "proxy/proto/resp_write.h"
#include "proxy/tls.h"

struct ctl_conn {
    int fd;
    SSL *ssl;
    int64_t deadline_ms;
    char *err;
    size_t errlen;
};

static int64_t ctl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int ctl_fail(struct ctl_conn *c, const char *what, const char *why)
{
    snprintf(c->err, c->errlen, "%s: %s", what, why);
    return -1;
}

/* Waits until the socket is ready for events; -1 with err at the deadline. */
static int ctl_wait(struct ctl_conn *c, short events, const char *what)
{
    int left = (int)(c->deadline_ms - ctl_now_ms());
    struct pollfd p = {.fd = c->fd, .events = events};
    int n = left > 0 ? poll(&p, 1, left) : 0;
    if (n < 0 && errno == EINTR)
        return 0;
    return n > 0 ? 0 : ctl_fail(c, what, n == 0 ? "no answer in time" : strerror(errno));
}

static int ctl_connect(struct ctl_conn *c, const struct ctl_target *to)
{
    if ((c->fd = net_connect(to->addr)) < 0)
        return ctl_fail(c, "connect", strerror(errno));
    if (ctl_wait(c, POLLOUT, "connect") < 0)
        return -1;
    int e = net_connect_error(c->fd);
    if (e != 0)
        return ctl_fail(c, "connect", strerror(e));
    if (to->tls == NULL)
        return 0;
    if ((c->ssl = tls_connect_new(to->tls, c->fd, to->server_name)) == NULL)
        return ctl_fail(c, "TLS", "out of memory");
    for (;;) {
        tls_step_e step = tls_handshake(c->ssl);
        if (step == TLS_DONE)
            return 0;
        if (step == TLS_FAILED)
            return ctl_fail(c, "TLS", tls_reason());
        if (ctl_wait(c, step == TLS_WANT_READ ? POLLIN : POLLOUT, "TLS") < 0)
            return -1;
    }
}

/* Writes everything queued in out. */
static int ctl_send(struct ctl_conn *c, struct obuf *out)
{
    while (out->len > 0) {
        if (tls_write(c->ssl, c->fd, out, SIZE_MAX) < 0)
            return ctl_fail(c, c->ssl != NULL ? "TLS" : "write",
                            c->ssl != NULL ? tls_reason() : strerror(errno));
        if (out->len > 0 && ctl_wait(c, POLLOUT, "write") < 0)
            return -1;
    }
    return 0;
}

/* Reads the next whole reply. */
static redisReply *ctl_recv(struct ctl_conn *c, redisReader *reader)
{
    struct rbuf in = {0};
    void *reply = NULL;
    while (reply == NULL) {
        if (redisReaderGetReply(reader, &reply) != REDIS_OK) {
            ctl_fail(c, "reply", reader->errstr);
            break;
        }
        if (reply != NULL)
            break;
        ssize_t n = tls_read(c->ssl, c->fd, &in);
        if (n > 0) {
            redisReaderFeed(reader, rbuf_head(&in), (size_t)n);
            rbuf_consume(&in, (size_t)n);
        } else if (n == 0 || errno != EAGAIN) {
            ctl_fail(c, c->ssl != NULL && n < 0 ? "TLS" : "read",
                     n == 0           ? "connection closed"
                     : c->ssl != NULL ? tls_reason()
                                      : strerror(errno));
            break;
        } else if (ctl_wait(c, POLLIN, "reply") < 0) {
            break;
        }
    }
    rbuf_deinit(&in);
    return reply;
}

redisAsyncContext *ctl_async_connect(const struct net_addr *addr)
{
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    if (addr->sa.ss_family == AF_UNIX)
        return redisAsyncConnectUnix(((const struct sockaddr_un *)&addr->sa)->sun_path);
    if (addr->len == 0 ||
        getnameinfo((const struct sockaddr *)&addr->sa, addr->len, host, sizeof(host), serv,
                    sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        return NULL;
    return redisAsyncConnect(host, atoi(serv));
}

redisReply *ctl_call(const struct ctl_target *to, int argc, const char *const *argv, char *err,
                     size_t errlen)
{
    struct ctl_conn c = {-1, NULL, ctl_now_ms() + to->timeout_ms, err, errlen};
    err[0] = '\0';
    struct obuf out = {0};
    redisReader *reader = redisReaderCreate();
    redisReply *reply = NULL;
    int rc = reader == NULL ? ctl_fail(&c, "reader", "out of memory") : ctl_connect(&c, to);
    if (rc == 0 && to->password != NULL) {
        const char *auth[3] = {"AUTH", to->user != NULL ? to->user : to->password, to->password};
        if (resp_append_command(&out, to->user != NULL ? 3 : 2, auth, NULL) < 0)
            rc = ctl_fail(&c, "AUTH", "out of memory");
    }
    if (rc == 0 && resp_append_command(&out, argc, argv, NULL) < 0)
        rc = ctl_fail(&c, "request", "out of memory");
    if (rc == 0 && ctl_send(&c, &out) == 0 && to->password != NULL) {
        reply = ctl_recv(&c, reader);
        if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
            int n = (int)log_redis_error_len(reply->str, reply->len);
            snprintf(err, errlen, "AUTH refused: %.*s", n, reply->str);
            rc = -1;
        }
        freeReplyObject(reply);
        reply = NULL;
    }
    if (rc == 0 && c.err[0] == '\0')
        reply = ctl_recv(&c, reader);
    obuf_deinit(&out);
    if (reader != NULL)
        redisReaderFree(reader);
    tls_free(c.ssl);
    if (c.fd >= 0)
        close(c.fd);
    return reply;
}

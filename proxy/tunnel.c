/* tunnel.c - relays control connections from a private unix socket over TLS. */
#include "proxy/tunnel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "proxy/endpoint.h"
#include "proxy/lib/buf.h"
#include "proxy/lib/log.h"
#include "proxy/tls.h"

#define TUNNEL_QUEUE_MAX (64 * 1024 * 1024) /* bytes one direction may hold back */
#define TUNNEL_DRAIN     64                 /* reads of the server per wake-up: 1 MB or more */

struct pipe;

struct tunnel {
    struct ev_loop *loop;
    const struct endpoint *ep;
    SSL_CTX *const *ctx;
    char dir[64];
    struct net_addr addr; /* the unix socket in dir */
    int fd;
    ev_io accept;
    struct pipe *pipes;
    tunnel_relay_fn relayed; /* or NULL */
    void *relay_arg;
};

/* One relayed connection: c is hiredis's side (plain), u the server's (TLS). */
struct pipe {
    struct tunnel *t;
    struct pipe *next;
    int cfd, ufd;
    SSL *ssl;
    bool connecting; /* u: connect() in progress */
    bool relaying;   /* u: the TLS handshake is over */
    ev_io cr, cw, ur, uw;
    struct rbuf in;   /* scratch for what one read brings */
    struct obuf to_u; /* from hiredis, for the server */
    struct obuf to_c; /* from the server, for hiredis */
};

static void pipe_close(struct pipe *p)
{
    struct tunnel *t = p->t;
    for (struct pipe **pp = &t->pipes; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    ev_io_stop(t->loop, &p->cr);
    ev_io_stop(t->loop, &p->cw);
    ev_io_stop(t->loop, &p->ur);
    ev_io_stop(t->loop, &p->uw);
    tls_free(p->ssl);
    close(p->cfd);
    if (p->ufd >= 0)
        close(p->ufd);
    rbuf_deinit(&p->in);
    obuf_deinit(&p->to_u);
    obuf_deinit(&p->to_c);
    free(p);
}

/* Writes what each side is owed; false when the pipe was closed. */
static bool pipe_flush(struct pipe *p)
{
    struct ev_loop *loop = p->t->loop;
    if (obuf_write(&p->to_c, p->cfd, SIZE_MAX) < 0 ||
        (p->relaying && tls_write(p->ssl, p->ufd, &p->to_u, SIZE_MAX) < 0)) {
        pipe_close(p);
        return false;
    }
    (p->to_c.len > 0 ? ev_io_start : ev_io_stop)(loop, &p->cw);
    if (p->relaying)
        (p->to_u.len > 0 ? ev_io_start : ev_io_stop)(loop, &p->uw);
    return true;
}

/* Moves what one read of a side brings to the other side's queue; false when
 * the pipe was closed. */
static bool pipe_pump(struct pipe *p, SSL *ssl, int fd, struct obuf *to)
{
    ssize_t n = tls_read(ssl, fd, &p->in);
    if (n == 0 || (n < 0 && errno != EAGAIN) ||
        (n > 0 &&
         (obuf_append(to, rbuf_head(&p->in), (size_t)n) < 0 || to->len > TUNNEL_QUEUE_MAX))) {
        if (ssl != NULL && n < 0 && errno == EIO)
            log_limited(LOG_WARN, "upstream_tls_failed",
                        "tunnel: TLS with {upstream=%s}: {reason=%s}", p->t->ep->shown,
                        tls_reason());
        pipe_close(p);
        return false;
    }
    if (n > 0)
        rbuf_consume(&p->in, (size_t)n);
    return pipe_flush(p);
}

/* The server sent bytes: everything its socket holds (a backlog of
 * invalidations after a stall, up to TUNNEL_DRAIN reads) is relayed and
 * handed on at once, before the loop turns to the reads waiting beside it. */
static void pipe_from_server(struct pipe *p)
{
    struct tunnel *t = p->t;
    int unread = 0;
    for (int i = 0; i < TUNNEL_DRAIN; i++) {
        if (!pipe_pump(p, p->ssl, p->ufd, &p->to_c))
            return;
        if (t->relayed != NULL)
            t->relayed(t->relay_arg);
        if (ioctl(p->ufd, FIONREAD, &unread) < 0 || unread == 0)
            return;
    }
}

/* The server side: connect, then the TLS handshake, then relaying. */
static void pipe_server_step(struct pipe *p)
{
    struct ev_loop *loop = p->t->loop;
    if (p->connecting) {
        int err = net_connect_error(p->ufd);
        p->ssl = err == 0 ? tls_connect_new(*p->t->ctx, p->ufd, p->t->ep->server_name) : NULL;
        if (p->ssl == NULL) {
            log_limited(LOG_WARN, "upstream_connect_failed",
                        "tunnel: connect to {upstream=%s}: {reason=%s}", p->t->ep->shown,
                        err != 0 ? strerror(err) : "out of memory");
            pipe_close(p);
            return;
        }
        p->connecting = false;
    }
    tls_step_e step = tls_handshake(p->ssl);
    if (step == TLS_FAILED) {
        log_limited(LOG_ERROR, "upstream_tls_failed", "tunnel: TLS with {upstream=%s}: {reason=%s}",
                    p->t->ep->shown, tls_reason());
        pipe_close(p);
        return;
    }
    p->relaying = step == TLS_DONE;
    (step == TLS_WANT_WRITE ? ev_io_start : ev_io_stop)(loop, &p->uw);
    if (step != TLS_WANT_WRITE)
        ev_io_start(loop, &p->ur);
    if (p->relaying)
        pipe_flush(p);
}

static void pipe_on_c(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    struct pipe *p = w->data;
    if (revents & EV_READ)
        pipe_pump(p, NULL, p->cfd, &p->to_u);
    else
        pipe_flush(p);
}

static void pipe_on_u(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct pipe *p = w->data;
    if (!p->relaying)
        pipe_server_step(p);
    else if (w == &p->ur)
        pipe_from_server(p);
    else
        pipe_flush(p);
}

static void tunnel_on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct tunnel *t = w->data;
    int cfd = accept4(t->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (cfd < 0)
        return;
    struct pipe *p = calloc(1, sizeof(*p));
    int ufd = p != NULL && t->ep->addr.len > 0 ? net_connect(&t->ep->addr) : -1;
    if (ufd < 0) {
        log_limited(LOG_WARN, "upstream_connect_failed",
                    "tunnel: connect to {upstream=%s}: {reason=%s}", t->ep->shown,
                    p == NULL ? "out of memory" : strerror(errno));
        free(p);
        close(cfd);
        return;
    }
    *p = (struct pipe){.t = t, .next = t->pipes, .cfd = cfd, .ufd = ufd, .connecting = true};
    t->pipes = p;
    ev_io_init(&p->cr, pipe_on_c, cfd, EV_READ);
    ev_io_init(&p->cw, pipe_on_c, cfd, EV_WRITE);
    ev_io_init(&p->ur, pipe_on_u, ufd, EV_READ);
    ev_io_init(&p->uw, pipe_on_u, ufd, EV_WRITE);
    p->cr.data = p->cw.data = p->ur.data = p->uw.data = p;
    ev_set_priority(&p->cr, EV_MAXPRI);
    ev_set_priority(&p->cw, EV_MAXPRI);
    ev_set_priority(&p->ur, EV_MAXPRI);
    ev_set_priority(&p->uw, EV_MAXPRI);
    ev_io_start(loop, &p->cr);
    ev_io_start(loop, &p->uw); /* the connect's completion */
}

struct tunnel *tunnel_create(struct ev_loop *loop, const struct endpoint *ep, SSL_CTX *const *ctx,
                             char *err, size_t errlen)
{
    struct tunnel *t = calloc(1, sizeof(*t));
    const char *tmp = getenv("TMPDIR");
    if (t == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    *t = (struct tunnel){.loop = loop, .ep = ep, .ctx = ctx, .fd = -1};
    snprintf(t->dir, sizeof(t->dir), "%s/nearcache-XXXXXX",
             tmp != NULL && tmp[0] == '/' && strlen(tmp) < 32 ? tmp : "/tmp");
    char path[sizeof(t->dir) + 16];
    const char *why = NULL;
    if (mkdtemp(t->dir) == NULL) {
        snprintf(err, errlen, "tunnel directory %s: %s", t->dir, strerror(errno));
        free(t);
        return NULL;
    }
    snprintf(path, sizeof(path), "%s/tls.sock", t->dir);
    if (net_addr_parse(path, &t->addr, &why) < 0 || (t->fd = net_listen(&t->addr, false)) < 0) {
        snprintf(err, errlen, "tunnel socket %s: %s", path, why != NULL ? why : strerror(errno));
        tunnel_destroy(&t);
        return NULL;
    }
    ev_io_init(&t->accept, tunnel_on_accept, t->fd, EV_READ);
    t->accept.data = t;
    ev_io_start(loop, &t->accept);
    return t;
}

void tunnel_set_relay(struct tunnel *t, tunnel_relay_fn fn, void *arg)
{
    t->relayed = fn;
    t->relay_arg = arg;
}

const struct net_addr *tunnel_addr(const struct tunnel *t)
{
    return &t->addr;
}

void tunnel_destroy(struct tunnel **tp)
{
    struct tunnel *t = *tp;
    if (t == NULL)
        return;
    while (t->pipes != NULL)
        pipe_close(t->pipes);
    if (t->fd >= 0) {
        ev_io_stop(t->loop, &t->accept);
        close(t->fd);
        unlink(((const struct sockaddr_un *)&t->addr.sa)->sun_path);
    }
    rmdir(t->dir);
    free(t);
    *tp = NULL;
}

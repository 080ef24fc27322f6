/* bench/relay/relay.c - a TCP relay that delays every byte by a fixed time in each
 * direction, to stand in for a network between a client and Redis.
 *
 * usage: relay --listen HOST:PORT --to HOST:PORT --delay DURATION [--quiet]
 *
 * Each accepted connection gets its own connection to --to. Bytes read from
 * one side are queued toward the other as chunks stamped with their due time
 * (read time + delay) and written, in order, once due: a pipeline of requests
 * arrives delay later as a whole, not delay per request. EOF is delivered
 * the same way, as shutdown(SHUT_WR) on the other side; a read or write error
 * closes both sides at once. A side is not read while more than
 * RELAY_QUEUE_LIMIT bytes are queued toward the other side.
 *
 * Timing: the delay is the same for every chunk, so chunks fall due in the
 * order they were read, whatever their connection. One relay-wide FIFO (the
 * schedule) holds the chunks not yet due, and one timerfd is armed for its
 * head. A timerfd rather than an ev_timer because libev's epoll backend
 * rounds its waits up to whole milliseconds: a 500 us ev_timer fires after
 * about 1.1 ms, which would double the delay being simulated.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#define RELAY_QUEUE_LIMIT (4u << 20) /* bytes queued toward a side before its peer is paused */
#define RELAY_READ_SIZE   (64u << 10)
#define RELAY_IOV_MAX     128
#define RELAY_BACKLOG     1024
#define RELAY_EXIT_USAGE  2

struct chunk {
    struct chunk *next;                    /* the flow's FIFO */
    struct chunk *sched_prev, *sched_next; /* the schedule, while not due */
    struct flow *flow;
    uint64_t due_ns; /* CLOCK_MONOTONIC */
    size_t len, off;
    bool due;
    bool eof; /* an EOF marker: no data, shut down the destination */
    char data[];
};

/* One direction of a link: bytes read from src, written to dst. */
struct flow {
    struct side *src, *dst;
    struct chunk *head, *tail;
    size_t queued;
    bool eof_read; /* src sent EOF; its marker is queued or delivered */
    bool eof_sent; /* dst was shut down for writing */
    bool dirty;    /* on the relay's list of flows to flush */
    struct flow *dirty_next;
};

struct side {
    int fd;
    ev_io rio, wio;
    struct link *link;
    struct flow *in;  /* bytes read from this side */
    struct flow *out; /* bytes written to this side */
};

struct link {
    struct relay *relay;
    struct side client, server;
    struct flow up, down; /* up: client -> server */
    bool connecting;
    bool closing;
    struct link *prev, *next; /* the relay's live links; reap list once closing */
};

struct relay {
    struct ev_loop *loop;
    uint64_t delay_ns;
    bool quiet;
    struct addrinfo *to;
    int listen_fd, timer_fd;
    ev_io accept_io, timer_io;
    ev_timer accept_retry;
    ev_prepare reaper;
    ev_signal sigterm, sigint;
    struct chunk *sched_head, *sched_tail;
    uint64_t armed_ns; /* the timerfd's expiry, 0 when disarmed */
    struct flow *dirty;
    struct link *links, *reap;
    unsigned long errors_suppressed;
    ev_tstamp last_error;
};

static char read_buf[RELAY_READ_SIZE];

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Prints one line to stderr, at most once a second for per-connection errors
 * (rate_limited), counting the ones left out. */
static void relay_log(struct relay *r, bool rate_limited, const char *fmt, ...)
{
    if (rate_limited) {
        ev_tstamp now = ev_time();
        if (now - r->last_error < 1.0) {
            r->errors_suppressed++;
            return;
        }
        r->last_error = now;
    }
    va_list ap;
    va_start(ap, fmt);
    fputs("relay: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (rate_limited && r->errors_suppressed > 0) {
        fprintf(stderr, " (%lu more since the last message)", r->errors_suppressed);
        r->errors_suppressed = 0;
    }
    fputc('\n', stderr);
}

/* ---- the schedule: chunks not yet due, in due order ---- */

static void timer_arm(struct relay *r, uint64_t at_ns)
{
    if (r->armed_ns == at_ns) {
        return;
    }
    struct itimerspec its = {0};
    its.it_value.tv_sec = (time_t)(at_ns / 1000000000u);
    its.it_value.tv_nsec = (long)(at_ns % 1000000000u);
    if (timerfd_settime(r->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
        relay_log(r, false, "timerfd_settime: %s", strerror(errno));
        exit(1);
    }
    r->armed_ns = at_ns;
}

static void sched_push(struct relay *r, struct chunk *c)
{
    c->sched_next = NULL;
    c->sched_prev = r->sched_tail;
    if (r->sched_tail != NULL) {
        r->sched_tail->sched_next = c;
    } else {
        r->sched_head = c;
        timer_arm(r, c->due_ns);
    }
    r->sched_tail = c;
}

static void sched_remove(struct relay *r, struct chunk *c)
{
    if (c->sched_prev != NULL) {
        c->sched_prev->sched_next = c->sched_next;
    } else {
        r->sched_head = c->sched_next;
    }
    if (c->sched_next != NULL) {
        c->sched_next->sched_prev = c->sched_prev;
    } else {
        r->sched_tail = c->sched_prev;
    }
}

/* ---- links ---- */

static void side_stop(struct relay *r, struct side *s)
{
    ev_io_stop(r->loop, &s->rio);
    ev_io_stop(r->loop, &s->wio);
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
}

static void flow_clear(struct relay *r, struct flow *f)
{
    struct chunk *c = f->head;
    while (c != NULL) {
        struct chunk *next = c->next;
        if (!c->due) {
            sched_remove(r, c);
        }
        free(c);
        c = next;
    }
    f->head = f->tail = NULL;
    f->queued = 0;
}

/* Closes both sides and drops what is queued. The link itself is freed by the
 * reaper, after the current callback, since flows may still be listed dirty. */
static void link_close(struct link *l)
{
    struct relay *r = l->relay;
    if (l->closing) {
        return;
    }
    l->closing = true;
    side_stop(r, &l->client);
    side_stop(r, &l->server);
    flow_clear(r, &l->up);
    flow_clear(r, &l->down);
    if (l->prev != NULL) {
        l->prev->next = l->next;
    } else {
        r->links = l->next;
    }
    if (l->next != NULL) {
        l->next->prev = l->prev;
    }
    l->prev = NULL;
    l->next = r->reap;
    r->reap = l;
}

static void link_fail(struct link *l, const char *what, int err)
{
    relay_log(l->relay, true, "%s: %s; closing the connection", what, strerror(err));
    link_close(l);
}

static void flow_enqueue(struct relay *r, struct flow *f, const char *data, size_t len)
{
    struct chunk *c = malloc(sizeof(*c) + len);
    if (c == NULL) {
        relay_log(r, false, "out of memory");
        exit(1);
    }
    memcpy(c->data, data, len);
    c->next = NULL;
    c->flow = f;
    c->due_ns = mono_ns() + r->delay_ns;
    c->len = len;
    c->off = 0;
    c->due = false;
    c->eof = len == 0;
    if (f->tail != NULL) {
        f->tail->next = c;
    } else {
        f->head = c;
    }
    f->tail = c;
    f->queued += len;
    sched_push(r, c);
}

/* Drops the first w bytes of f's queue, which have been written. */
static void flow_consume(struct flow *f, size_t w)
{
    f->queued -= w;
    while (w > 0) {
        struct chunk *c = f->head;
        size_t left = c->len - c->off;
        if (w < left) {
            c->off += w;
            return;
        }
        w -= left;
        f->head = c->next;
        if (f->head == NULL) {
            f->tail = NULL;
        }
        free(c);
    }
}

/* Writes f's due data chunks with as few sendmsg calls as the socket allows.
 * Returns 0, also when the socket is full, or the errno of a failed write. */
static int flow_write_due(struct flow *f)
{
    while (f->head != NULL && f->head->due && !f->head->eof) {
        struct iovec iov[RELAY_IOV_MAX];
        size_t n = 0;
        for (struct chunk *c = f->head; c != NULL && c->due && !c->eof && n < RELAY_IOV_MAX;
             c = c->next) {
            iov[n].iov_base = c->data + c->off;
            iov[n].iov_len = c->len - c->off;
            n++;
        }
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = n};
        ssize_t w = sendmsg(f->dst->fd, &msg, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return 0;
            }
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        flow_consume(f, (size_t)w);
    }
    return 0;
}

/* Writes the due chunks of f to its destination, delivers a due EOF once the
 * data before it is out, then waits for writability if due bytes remain and
 * resumes reading the source if the queue is short enough. May close the
 * link. */
static void flow_flush(struct flow *f)
{
    struct link *l = f->dst->link;
    struct relay *r = l->relay;
    if (l->closing || (l->connecting && f == &l->up)) {
        return;
    }
    int err = flow_write_due(f);
    if (err != 0) {
        link_fail(l, "write", err);
        return;
    }
    if (f->head != NULL && f->head->due && f->head->eof) {
        struct chunk *c = f->head;
        f->head = c->next;
        if (f->head == NULL) {
            f->tail = NULL;
        }
        free(c);
        shutdown(f->dst->fd, SHUT_WR);
        f->eof_sent = true;
        if (l->up.eof_sent && l->down.eof_sent) {
            link_close(l);
            return;
        }
    }
    if (f->head != NULL && f->head->due) {
        ev_io_start(r->loop, &f->dst->wio);
    } else {
        ev_io_stop(r->loop, &f->dst->wio);
    }
    if (!f->eof_read && f->queued <= RELAY_QUEUE_LIMIT) {
        ev_io_start(r->loop, &f->src->rio);
    }
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct side *s = w->data;
    struct link *l = s->link;
    struct relay *r = l->relay;
    ssize_t n = read(s->fd, read_buf, sizeof(read_buf));
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            link_fail(l, "read", errno);
        }
        return;
    }
    if (n == 0) {
        s->in->eof_read = true;
        ev_io_stop(loop, w);
    }
    flow_enqueue(r, s->in, read_buf, (size_t)n);
    if (s->in->queued > RELAY_QUEUE_LIMIT) {
        ev_io_stop(loop, w);
    }
}

/* Connected, or writable again: the server side's pending connect finishes
 * here, then the flow toward this side is flushed. */
static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct side *s = w->data;
    struct link *l = s->link;
    if (l->connecting && s == &l->server) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
            err = errno;
        }
        if (err != 0) {
            link_fail(l, "connect", err);
            return;
        }
        l->connecting = false;
        ev_io_stop(loop, w);
        ev_io_start(loop, &s->rio);
    }
    flow_flush(s->out);
}

static void side_init(struct link *l, struct side *s, int fd, struct flow *in, struct flow *out)
{
    s->fd = fd;
    s->link = l;
    s->in = in;
    s->out = out;
    ev_io_init(&s->rio, on_read, fd, EV_READ);
    ev_io_init(&s->wio, on_write, fd, EV_WRITE);
    s->rio.data = s;
    s->wio.data = s;
    in->src = s;
    out->dst = s;
}

static void set_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Takes ownership of the accepted client_fd. */
static void link_create(struct relay *r, int client_fd)
{
    const struct addrinfo *to = r->to;
    int fd = socket(to->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        relay_log(r, true, "socket: %s", strerror(errno));
        close(client_fd);
        return;
    }
    struct link *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        relay_log(r, false, "out of memory");
        exit(1);
    }
    l->relay = r;
    side_init(l, &l->client, client_fd, &l->up, &l->down);
    side_init(l, &l->server, fd, &l->down, &l->up);
    l->next = r->links;
    if (r->links != NULL) {
        r->links->prev = l;
    }
    r->links = l;
    set_nodelay(client_fd);
    set_nodelay(fd);
    ev_io_start(r->loop, &l->client.rio);
    if (connect(fd, to->ai_addr, to->ai_addrlen) == 0) {
        ev_io_start(r->loop, &l->server.rio);
    } else if (errno == EINPROGRESS) {
        l->connecting = true;
        ev_io_start(r->loop, &l->server.wio);
    } else {
        link_fail(l, "connect", errno);
    }
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct relay *r = w->data;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(r->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            link_create(r, fd);
            continue;
        }
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            relay_log(r, true, "accept: %s; pausing for 100 ms", strerror(errno));
            ev_io_stop(loop, w);
            ev_timer_start(loop, &r->accept_retry);
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                   errno != ECONNABORTED) {
            relay_log(r, true, "accept: %s", strerror(errno));
        }
        return;
    }
}

static void on_accept_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct relay *r = w->data;
    ev_io_start(loop, &r->accept_io);
}

/* The schedule's head is due: marks every due chunk, then flushes the flows
 * they belong to, then arms the timer for the next head. */
static void on_timer(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct relay *r = w->data;
    uint64_t expirations;
    if (read(r->timer_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN) {
        relay_log(r, false, "timerfd read: %s", strerror(errno));
    }
    r->armed_ns = 0;
    uint64_t now = mono_ns();
    while (r->sched_head != NULL && r->sched_head->due_ns <= now) {
        struct chunk *c = r->sched_head;
        sched_remove(r, c);
        c->due = true;
        if (!c->flow->dirty) {
            c->flow->dirty = true;
            c->flow->dirty_next = r->dirty;
            r->dirty = c->flow;
        }
    }
    while (r->dirty != NULL) {
        struct flow *f = r->dirty;
        r->dirty = f->dirty_next;
        f->dirty = false;
        flow_flush(f);
    }
    if (r->sched_head != NULL) {
        timer_arm(r, r->sched_head->due_ns);
    }
}

/* Frees the links closed during the last loop iteration. */
static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    struct relay *r = w->data;
    while (r->reap != NULL) {
        struct link *l = r->reap;
        r->reap = l->next;
        free(l);
    }
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

/* ---- arguments ---- */

static void usage(void)
{
    fputs("usage: relay --listen HOST:PORT --to HOST:PORT --delay DURATION [--quiet]\n"
          "  DURATION: a number with a unit, ns, us, ms or s (500us, 0.5ms, 2ms)\n",
          stderr);
    exit(RELAY_EXIT_USAGE);
}

/* Parses "500us", "0.5ms", "2ms", "1s" (or "0") into nanoseconds. */
static int parse_duration(const char *s, uint64_t *out)
{
    static const struct {
        const char *unit;
        double ns;
    } units[] = {{"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}};
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || !(v >= 0) || v > 3600) {
        return -1;
    }
    if (*end == '\0' && v == 0) {
        *out = 0;
        return 0;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].unit) == 0) {
            *out = (uint64_t)(v * units[i].ns + 0.5);
            return 0;
        }
    }
    return -1;
}

/* Resolves "HOST:PORT" or "[V6HOST]:PORT"; NULL when it does not parse or
 * resolve. The caller frees the result with freeaddrinfo. */
static struct addrinfo *parse_addr(const char *arg, bool passive)
{
    char host[256];
    const char *colon = strrchr(arg, ':');
    if (colon == NULL || colon[1] == '\0' || (size_t)(colon - arg) >= sizeof(host)) {
        return NULL;
    }
    size_t hlen = (size_t)(colon - arg);
    const char *h = arg;
    if (hlen >= 2 && arg[0] == '[' && arg[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(hlen > 0 ? host : NULL, colon + 1, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "relay: %s: %s\n", arg, gai_strerror(rc));
        return NULL;
    }
    return res;
}

static int listen_on(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, RELAY_BACKLOG) < 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

/* Two fds per connection: take the hard limit so 1000s of connections fit. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void relay_setup(struct relay *r)
{
    r->loop = ev_default_loop(EVFLAG_AUTO);
    r->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (r->loop == NULL || r->timer_fd < 0) {
        fprintf(stderr, "relay: cannot create the event loop or timerfd\n");
        exit(1);
    }
    ev_io_init(&r->accept_io, on_accept, r->listen_fd, EV_READ);
    ev_io_init(&r->timer_io, on_timer, r->timer_fd, EV_READ);
    ev_set_priority(&r->timer_io, EV_MAXPRI);
    ev_timer_init(&r->accept_retry, on_accept_retry, 0.1, 0);
    ev_prepare_init(&r->reaper, on_prepare);
    ev_signal_init(&r->sigterm, on_signal, SIGTERM);
    ev_signal_init(&r->sigint, on_signal, SIGINT);
    r->accept_io.data = r->timer_io.data = r->accept_retry.data = r->reaper.data = r;
    ev_io_start(r->loop, &r->accept_io);
    ev_io_start(r->loop, &r->timer_io);
    ev_prepare_start(r->loop, &r->reaper);
    ev_signal_start(r->loop, &r->sigterm);
    ev_signal_start(r->loop, &r->sigint);
}

static void relay_teardown(struct relay *r)
{
    while (r->links != NULL) {
        link_close(r->links);
    }
    on_prepare(r->loop, &r->reaper, 0);
    close(r->listen_fd);
    close(r->timer_fd);
    freeaddrinfo(r->to);
    ev_loop_destroy(r->loop);
}

int main(int argc, char **argv)
{
    const char *listen_arg = NULL, *to_arg = NULL, *delay_arg = NULL;
    struct relay r = {.listen_fd = -1, .timer_fd = -1};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quiet") == 0) {
            r.quiet = true;
        } else if (i + 1 < argc && strcmp(argv[i], "--listen") == 0) {
            listen_arg = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--to") == 0) {
            to_arg = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--delay") == 0) {
            delay_arg = argv[++i];
        } else {
            usage();
        }
    }
    if (listen_arg == NULL || to_arg == NULL || delay_arg == NULL ||
        parse_duration(delay_arg, &r.delay_ns) < 0) {
        usage();
    }
    struct addrinfo *listen_ai = parse_addr(listen_arg, true);
    r.to = parse_addr(to_arg, false);
    if (listen_ai == NULL || r.to == NULL) {
        usage();
    }
    r.listen_fd = listen_on(listen_ai);
    if (r.listen_fd < 0) {
        fprintf(stderr, "relay: listen on %s: %s\n", listen_arg, strerror(errno));
        return 1;
    }
    freeaddrinfo(listen_ai);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    relay_setup(&r);
    if (!r.quiet) {
        fprintf(stderr, "relay: listening on %s, forwarding to %s, delay %.1f us each way\n",
                listen_arg, to_arg, (double)r.delay_ns / 1e3);
    }
    ev_run(r.loop, 0);
    relay_teardown(&r);
    return 0;
}

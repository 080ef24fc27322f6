/* bench/loadgen.c - load generator for Redis and nearcache: one libev loop,
 * raw non-blocking sockets (TCP or unix), pipelined requests it encodes
 * itself, replies framed with the proxy's own scanner (proxy/resp.h) and
 * checked for content (bench/workload.h), latencies in a log-linear histogram
 * (bench/hist.h). Closed loop by default; --rate gives an open loop whose
 * latencies count from each request's intended send time, so a stalled server
 * cannot hide its stalls (no coordinated omission).
 *
 * usage: see usage() below or bench/README.md. Exit status: 0 when it ran, 1
 * when it could not connect or preload, 2 on bad arguments.
 */
#include <ev.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "bench/hist.h"
#include "bench/workload.h"
#include "proxy/resp.h"

#define NS_PER_S     1000000000ULL
#define RECONNECT_S  0.1            /* a failed connection is re-opened after this */
#define IO_TIMEOUT   (5 * NS_PER_S) /* a reply later than this fails its connection */
#define TICK_S       0.1            /* timeout checks */
#define OWN_EVERY    256            /* requests between two read-your-writes pairs */
#define ERR_KINDS    32
#define READ_MIN     (64 * 1024)   /* free room for each read */
#define PRELOAD_REQS 1000          /* preload batch: requests... */
#define PRELOAD_SIZE (1024 * 1024) /* ...or bytes */

struct config {
    const char *host, *socket, *json, *dist, *mix, *value, *prefix;
    int port, conns, depth;
    uint64_t requests, keys, seed;
    double duration, warmup, rate; /* seconds, seconds, requests/s (0: closed loop) */
    bool preload, quiet;
};

typedef enum { PHASE_WARMUP, PHASE_MEASURE, PHASE_DRAIN } phase_e;
typedef enum { CONN_DOWN, CONN_CONNECTING, CONN_UP } conn_state_e;

/* One request in flight, in a connection's FIFO. */
struct pending {
    uint64_t t0;   /* latency counts from here: intended (open loop) or send time */
    uint64_t sent; /* for the timeout */
    const struct wl_op *op;
    uint64_t seq;
    uint32_t vlen;
    bool record; /* issued in the measured phase */
};

struct conn {
    struct lg *lg;
    int fd;
    conn_state_e state;
    ev_io rio, wio;
    ev_timer timer; /* reconnect */
    struct wl_ctx ctx;
    struct wl_rng rng;
    char *out, *in; /* owned */
    size_t out_len, out_off, out_cap, in_len, in_off, in_cap;
    struct resp_scanner sc;
    struct pending *ring; /* owned, cap entries; keys[i * maxk ..] belong to ring[i] */
    uint32_t *keys;       /* owned */
    size_t head, count;
    uint64_t next_ns, seq, since_own;
    bool started; /* has been up once */
    struct hist hist;
};

struct lg {
    struct config cfg;
    struct ev_loop *loop;
    struct conn *conns; /* cfg.conns, owned */
    struct wl_mix mix;
    struct wl_dist dist;
    struct wl_size size;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    size_t cap, maxk, bound; /* ring entries, keys per entry, bytes per request */
    ev_timer tick, phase_timer;
    int tfd; /* open loop: the pacer's timerfd */
    ev_io pace;
    uint64_t pace_ns; /* when it fires; 0: disarmed */
    phase_e phase;
    uint64_t measure_ns, last_reply_ns, progress_ns, period_ns;
    uint64_t budget; /* -n: requests still to issue */
    uint64_t outstanding, done, wrong, reconnects;
    struct hist lag; /* open loop: how late each measured request left */
    struct {
        char name[32];
        uint64_t n;
    } err[ERR_KINDS];
    int nerr;
    bool stalled;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static void err_add(struct lg *lg, const char *kind, uint64_t n)
{
    int i = 0;
    while (i < lg->nerr && strcmp(lg->err[i].name, kind) != 0)
        i++;
    if (i == lg->nerr) {
        if (lg->nerr == ERR_KINDS)
            kind = "other", i = ERR_KINDS - 1;
        else
            lg->nerr++;
        snprintf(lg->err[i].name, sizeof(lg->err[i].name), "%s", kind);
    }
    lg->err[i].n += n;
}

/* ---- connections -------------------------------------------------------------- */

static void conn_connect(struct conn *c);
static void conn_issue(struct conn *c, uint64_t now);

static void maybe_finish(struct lg *lg)
{
    if (lg->phase == PHASE_DRAIN && lg->outstanding == 0)
        ev_break(lg->loop, EVBREAK_ALL);
}

/* Closes c, counts each of its outstanding requests as an "io" error, and
 * re-opens it after RECONNECT_S. */
static void conn_fail(struct conn *c)
{
    struct lg *lg = c->lg;
    uint64_t lost = 0;
    for (size_t i = 0; i < c->count; i++)
        lost += c->ring[(c->head + i) % lg->cap].record;
    if (lost) {
        err_add(lg, "io", lost);
        lg->done += lost;
        lg->last_reply_ns = now_ns(); /* a failure completes its requests too */
    }
    lg->outstanding -= c->count;
    c->head = c->count = 0;
    c->out_len = c->out_off = c->in_len = c->in_off = 0;
    resp_scanner_reset(&c->sc);
    ev_io_stop(lg->loop, &c->rio);
    ev_io_stop(lg->loop, &c->wio);
    ev_timer_stop(lg->loop, &c->timer);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = CONN_DOWN;
    lg->reconnects++;
    ev_timer_set(&c->timer, RECONNECT_S, 0);
    ev_timer_start(lg->loop, &c->timer);
    maybe_finish(lg);
}

/* Writes what is buffered; a write watcher only while bytes remain. */
static int conn_flush(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            ev_io_start(c->lg->loop, &c->wio);
            return 0;
        }
        if (n < 0)
            return -1;
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
    ev_io_stop(c->lg->loop, &c->wio);
    return 0;
}

static void conn_reserve_out(struct conn *c, size_t need)
{
    if (c->out_cap - c->out_len >= need)
        return;
    if (c->out_off) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    while (c->out_cap - c->out_len < need)
        c->out_cap = c->out_cap ? c->out_cap * 2 : 64 * 1024;
    c->out = realloc(c->out, c->out_cap);
    if (!c->out) {
        perror("loadgen: realloc");
        exit(1);
    }
}

/* Encodes one request at the tail of c's pipeline. */
static void conn_push(struct conn *c, const struct wl_op *op, uint64_t t0, uint64_t now,
                      uint64_t seq)
{
    struct lg *lg = c->lg;
    size_t slot = (c->head + c->count) % lg->cap;
    uint32_t *keys = &c->keys[slot * lg->maxk];
    struct pending *p = &c->ring[slot];
    for (unsigned i = 0; i < op->nkeys; i++)
        keys[i] = (uint32_t)wl_dist_key(&lg->dist, wl_dist_rank(&lg->dist, &c->rng));
    *p = (struct pending){
        .t0 = t0, .sent = now, .op = op, .seq = seq, .record = lg->phase == PHASE_MEASURE};
    if (op->op == WL_SET || op->op == WL_HSET || op->op == WL_LPUSH || op->op == WL_OWN_SET)
        p->vlen = wl_size_pick(&lg->size, &c->rng);
    else if (op->op == WL_OWN_GET)
        p->vlen = c->ring[(slot + lg->cap - 1) % lg->cap].vlen; /* the SET just before */
    struct wl_req req = {.op = op, .key = keys, .seq = seq, .vlen = p->vlen};
    conn_reserve_out(c, lg->bound);
    c->out_len += wl_encode(&c->ctx, &req, c->out + c->out_len);
    c->count++;
    lg->outstanding++;
}

/* Open loop: makes the pacer fire at t at the latest. One timerfd for all
 * connections (ns precision, unlike libev's ms timers): a late generator then
 * serves every due connection in one wake-up. */
static void pace_arm(struct lg *lg, uint64_t t)
{
    if (lg->pace_ns && lg->pace_ns <= t)
        return;
    struct itimerspec its = {
        .it_value = {.tv_sec = (time_t)(t / NS_PER_S), .tv_nsec = (long)(t % NS_PER_S)}};
    lg->pace_ns = t;
    timerfd_settime(lg->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* May one more request (two for the read-your-writes pair) leave now? */
static bool may_issue(struct conn *c, size_t n)
{
    struct lg *lg = c->lg;
    if (lg->phase == PHASE_DRAIN || c->count + n > lg->cap)
        return false;
    return lg->phase == PHASE_WARMUP || lg->cfg.requests == 0 || lg->budget >= n;
}

static void take_budget(struct lg *lg, uint64_t n)
{
    if (lg->phase != PHASE_MEASURE || lg->cfg.requests == 0)
        return;
    lg->budget -= n;
    if (lg->budget == 0)
        lg->phase = PHASE_DRAIN;
}

/* Fills c's pipeline up to its depth (closed loop) or with every request whose
 * intended time has come (open loop), then writes. */
static void conn_issue(struct conn *c, uint64_t now)
{
    struct lg *lg = c->lg;
    if (c->state != CONN_UP)
        return;
    while (may_issue(c, 1)) {
        uint64_t t0 = now;
        if (lg->period_ns) {
            if (c->next_ns > now) {
                pace_arm(lg, c->next_ns);
                break;
            }
            t0 = c->next_ns;
            c->next_ns += lg->period_ns;
            if (lg->phase == PHASE_MEASURE)
                hist_record(&lg->lag, now - t0);
        }
        if (++c->since_own >= OWN_EVERY && may_issue(c, 2)) {
            c->since_own = 0;
            c->seq++;
            conn_push(c, &WL_OWN_SET_OP, t0, now, c->seq);
            conn_push(c, &WL_OWN_GET_OP, t0, now, c->seq);
            take_budget(lg, 2);
            continue;
        }
        const struct wl_op *op = wl_mix_pick(&lg->mix, &c->rng);
        bool write = op->op == WL_SET || op->op == WL_HSET || op->op == WL_LPUSH;
        conn_push(c, op, t0, now, write ? ++c->seq : 0);
        take_budget(lg, 1);
    }
    if (conn_flush(c) < 0)
        conn_fail(c);
}

/* Judges and pops the request at the head of c's FIFO. */
static void conn_complete(struct conn *c, const char *frame, const struct resp_reply *rep,
                          uint64_t now)
{
    struct lg *lg = c->lg;
    struct pending *p = &c->ring[c->head];
    struct wl_req req = {
        .op = p->op, .key = &c->keys[c->head * lg->maxk], .seq = p->seq, .vlen = p->vlen};
    wl_verdict_e v = wl_check(&c->ctx, &req, frame, rep);
    if (v == WL_REPLY_WRONG)
        lg->wrong++; /* in every phase: a wrong reply is never right */
    if (p->record) {
        lg->done++;
        lg->last_reply_ns = now;
        hist_record(&c->hist, now > p->t0 ? now - p->t0 : 0);
        if (v == WL_REPLY_ERROR) {
            char kind[32];
            wl_error_kind(frame, rep, kind, sizeof(kind));
            err_add(lg, kind, 1);
        }
    }
    c->head = (c->head + 1) % lg->cap;
    c->count--;
    lg->outstanding--;
}

/* Frames and judges every complete reply in c->in. Returns -1 when the
 * connection must be failed (malformed or unexpected bytes). */
static int conn_replies(struct conn *c, uint64_t now)
{
    while (c->in_off < c->in_len) {
        struct resp_reply rep;
        const char *frame = c->in + c->in_off;
        resp_status_e st =
            resp_scan_reply(&c->sc, &RESP_LIMITS_DEFAULT, frame, c->in_len - c->in_off, &rep);
        if (st == RESP_INCOMPLETE)
            break;
        if (st == RESP_ERROR || (c->count == 0 && rep.type != '>')) {
            c->lg->wrong++;
            return -1;
        }
        c->in_off += rep.len;
        if (rep.type != '>') /* RESP3 pushes are out of band */
            conn_complete(c, frame, &rep, now);
        c->lg->progress_ns = now;
    }
    if (c->in_off == c->in_len)
        c->in_off = c->in_len = 0;
    return 0;
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = w->data;
    (void)loop, (void)revents;
    for (;;) {
        if (c->in_cap - c->in_len < READ_MIN) {
            if (c->in_off) {
                memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
                c->in_len -= c->in_off;
                c->in_off = 0;
            }
            while (c->in_cap - c->in_len < READ_MIN)
                c->in_cap = c->in_cap ? c->in_cap * 2 : 4 * READ_MIN;
            if (!(c->in = realloc(c->in, c->in_cap))) {
                perror("loadgen: realloc");
                exit(1);
            }
        }
        size_t room = c->in_cap - c->in_len;
        ssize_t n = recv(c->fd, c->in + c->in_len, room, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            conn_fail(c);
            return;
        }
        c->in_len += (size_t)n;
        if (conn_replies(c, now_ns()) < 0) {
            conn_fail(c);
            return;
        }
        if ((size_t)n < room)
            break;
    }
    maybe_finish(c->lg);
    conn_issue(c, now_ns());
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = w->data;
    (void)loop, (void)revents;
    if (c->state == CONN_CONNECTING) {
        int e = 0;
        socklen_t len = sizeof(e);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0 || e != 0) {
            conn_fail(c);
            return;
        }
        ev_io_stop(c->lg->loop, &c->wio);
        if (c->state == CONN_CONNECTING && !c->started) /* the schedule starts when it can */
            c->next_ns = now_ns() + c->lg->period_ns * c->ctx.conn / (uint64_t)c->lg->cfg.conns;
        c->started = true;
        c->state = CONN_UP;
        c->lg->progress_ns = now_ns();
        ev_io_start(c->lg->loop, &c->rio);
        conn_issue(c, now_ns());
        return;
    }
    if (conn_flush(c) < 0)
        conn_fail(c);
}

static void on_reconnect(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop, (void)revents;
    conn_connect(w->data);
}

/* Open loop: the earliest intended send time has come. */
static void on_pace(struct ev_loop *loop, ev_io *w, int revents)
{
    struct lg *lg = w->data;
    uint64_t expirations, now = now_ns();
    (void)loop, (void)revents;
    if (read(lg->tfd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
        perror("loadgen: timerfd");
    lg->pace_ns = 0;
    for (int i = 0; i < lg->cfg.conns; i++)
        conn_issue(&lg->conns[i], now); /* re-arms for those not yet due */
}

/* A non-blocking socket to the target, connect() started; -1 with errno. */
static int open_socket(const struct lg *lg)
{
    int fd = socket(lg->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (lg->addr.ss_family != AF_UNIX)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
    if (connect(fd, (const struct sockaddr *)&lg->addr, lg->addrlen) < 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static void conn_connect(struct conn *c)
{
    c->fd = open_socket(c->lg);
    if (c->fd < 0) {
        conn_fail(c);
        return;
    }
    c->state = CONN_CONNECTING;
    ev_io_set(&c->rio, c->fd, EV_READ);
    ev_io_set(&c->wio, c->fd, EV_WRITE);
    ev_io_start(c->lg->loop, &c->wio);
}

/* ---- the run ------------------------------------------------------------------- */

/* Fails connections whose oldest request waits longer than IO_TIMEOUT, and
 * stops the run when nothing at all has moved for that long. */
static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct lg *lg = w->data;
    uint64_t now = now_ns();
    (void)loop, (void)revents;
    for (int i = 0; i < lg->cfg.conns; i++) {
        struct conn *c = &lg->conns[i];
        if (c->count && now - c->ring[c->head].sent > IO_TIMEOUT)
            conn_fail(c);
    }
    if (now - lg->progress_ns > IO_TIMEOUT && lg->phase != PHASE_DRAIN) {
        fprintf(stderr, "loadgen: no reply and no connection for %.0f s, stopping\n",
                (double)IO_TIMEOUT / NS_PER_S);
        lg->stalled = true;
        lg->phase = PHASE_DRAIN;
        for (int i = 0; i < lg->cfg.conns; i++)
            if (lg->conns[i].count)
                conn_fail(&lg->conns[i]);
        ev_break(lg->loop, EVBREAK_ALL);
    }
}

/* End of the warmup, then (for -d) end of the measured time. */
static void on_phase(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct lg *lg = w->data;
    (void)loop, (void)revents;
    if (lg->phase == PHASE_WARMUP) {
        lg->phase = PHASE_MEASURE;
        lg->measure_ns = lg->last_reply_ns = now_ns();
        if (lg->cfg.duration > 0) {
            ev_timer_set(&lg->phase_timer, lg->cfg.duration, 0);
            ev_timer_start(lg->loop, &lg->phase_timer);
        }
        return;
    }
    lg->phase = PHASE_DRAIN;
    maybe_finish(lg);
}

static void conn_init(struct lg *lg, struct conn *c, int id)
{
    memset(c, 0, sizeof(*c));
    c->lg = lg;
    c->fd = -1;
    c->ctx = (struct wl_ctx){.prefix = lg->cfg.prefix,
                             .prefix_len = strlen(lg->cfg.prefix),
                             .conn = (uint32_t)id,
                             .size = lg->size};
    wl_rng_seed(&c->rng, lg->cfg.seed * 0x9e3779b97f4a7c15ULL + (uint64_t)id);
    c->ring = calloc(lg->cap, sizeof(*c->ring));
    c->keys = calloc(lg->cap * lg->maxk, sizeof(*c->keys));
    if (!c->ring || !c->keys) {
        perror("loadgen: calloc");
        exit(1);
    }
    hist_init(&c->hist);
    ev_io_init(&c->rio, on_read, -1, EV_READ);
    ev_io_init(&c->wio, on_write, -1, EV_WRITE);
    ev_timer_init(&c->timer, on_reconnect, 0, 0);
    c->rio.data = c->wio.data = c->timer.data = c;
}

static void run(struct lg *lg)
{
    lg->loop = ev_loop_new(EVFLAG_AUTO);
    lg->conns = calloc((size_t)lg->cfg.conns, sizeof(*lg->conns));
    if (!lg->loop || !lg->conns) {
        fprintf(stderr, "loadgen: cannot create the event loop\n");
        exit(1);
    }
    lg->phase = lg->cfg.warmup > 0 ? PHASE_WARMUP : PHASE_MEASURE;
    lg->budget = lg->cfg.requests;
    hist_init(&lg->lag);
    lg->measure_ns = lg->last_reply_ns = lg->progress_ns = now_ns();
    for (int i = 0; i < lg->cfg.conns; i++)
        conn_init(lg, &lg->conns[i], i);
    ev_timer_init(&lg->tick, on_tick, TICK_S, TICK_S);
    ev_timer_init(&lg->phase_timer, on_phase, 0, 0);
    lg->tick.data = lg->phase_timer.data = lg;
    ev_timer_start(lg->loop, &lg->tick);
    if (lg->period_ns) {
        /* CLOCK_MONOTONIC, like now_ns(): intended times arm it directly */
        lg->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (lg->tfd < 0) {
            perror("loadgen: timerfd_create");
            exit(1);
        }
        ev_io_init(&lg->pace, on_pace, lg->tfd, EV_READ);
        lg->pace.data = lg;
        ev_io_start(lg->loop, &lg->pace);
    }
    double first = lg->phase == PHASE_WARMUP ? lg->cfg.warmup : lg->cfg.duration;
    if (first > 0) {
        ev_timer_set(&lg->phase_timer, first, 0);
        ev_timer_start(lg->loop, &lg->phase_timer);
    }
    for (int i = 0; i < lg->cfg.conns; i++)
        conn_connect(&lg->conns[i]);
    ev_run(lg->loop, 0);
}

/* ---- preload -------------------------------------------------------------------- */

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads `want` replies on blocking fd; each must be OK or an integer. */
static int read_acks(int fd, size_t want)
{
    static char buf[64 * 1024];
    size_t len = 0, off = 0;
    struct resp_scanner sc;
    resp_scanner_reset(&sc);
    while (want) {
        struct resp_reply rep;
        resp_status_e st = resp_scan_reply(&sc, &RESP_LIMITS_DEFAULT, buf + off, len - off, &rep);
        if (st == RESP_ERROR || (st == RESP_OK && rep.type != '+' && rep.type != ':')) {
            fprintf(stderr, "loadgen: preload: unexpected reply %.*s\n",
                    (int)(st == RESP_OK ? rep.len : 0), buf + off);
            return -1;
        }
        if (st == RESP_OK) {
            off += rep.len;
            want--;
            continue;
        }
        memmove(buf, buf + off, len - off);
        len -= off;
        off = 0;
        ssize_t n = recv(fd, buf + len, sizeof(buf) - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || len == sizeof(buf))
            return -1;
        len += (size_t)n;
    }
    return 0;
}

/* SETs every string key of the key space (and HSETs every hash key when the
 * mix reads hashes) once, as writer id `conns`, over one blocking connection.
 * Returns 0, or -1 with a message printed. */
static int preload(struct lg *lg, int fd)
{
    static const struct wl_op SET = {WL_SET, 1, "SET", 1}, HSET = {WL_HSET, 1, "HSET", 1};
    const struct wl_op *ops[2] = {&SET, NULL};
    for (int i = 0; i < lg->mix.n; i++)
        if (lg->mix.op[i].op == WL_HGET || lg->mix.op[i].op == WL_HSET)
            ops[1] = &HSET;
    struct wl_ctx ctx = {.prefix = lg->cfg.prefix,
                         .prefix_len = strlen(lg->cfg.prefix),
                         .conn = (uint32_t)lg->cfg.conns,
                         .size = lg->size};
    struct wl_rng rng;
    wl_rng_seed(&rng, lg->cfg.seed ^ 0x5bd1e995);
    size_t cap = PRELOAD_SIZE + 2 * lg->bound /* SET and HSET per key */, len = 0, batch = 0;
    char *buf = malloc(cap);
    int rc = buf ? 0 : -1;
    for (uint64_t k = 0; rc == 0 && k < lg->cfg.keys; k++) {
        for (int o = 0; o < 2 && ops[o]; o++) {
            uint32_t key = (uint32_t)k;
            struct wl_req req = {.op = ops[o], .key = &key, .vlen = wl_size_pick(&lg->size, &rng)};
            len += wl_encode(&ctx, &req, buf + len);
            batch++;
        }
        if (batch >= PRELOAD_REQS || len >= PRELOAD_SIZE || k + 1 == lg->cfg.keys) {
            rc = send_all(fd, buf, len) < 0 || read_acks(fd, batch) < 0 ? -1 : 0;
            len = batch = 0;
        }
    }
    if (rc < 0)
        fprintf(stderr, "loadgen: preload failed: %s\n", errno ? strerror(errno) : "bad reply");
    free(buf);
    return rc;
}

/* "host:port" or the socket path, in a static buffer. */
static const char *target(const struct config *cfg)
{
    static char buf[300];
    if (cfg->socket)
        return cfg->socket;
    snprintf(buf, sizeof(buf), "%s:%d", cfg->host, cfg->port);
    return buf;
}

/* Resolves the target into lg->addr, connects once (blocking, 5 s timeouts)
 * and preloads if asked. Returns 0, or -1 with a message printed. */
static int setup(struct lg *lg)
{
    const struct config *cfg = &lg->cfg;
    if (cfg->socket) {
        struct sockaddr_un *un = (struct sockaddr_un *)&lg->addr;
        un->sun_family = AF_UNIX;
        snprintf(un->sun_path, sizeof(un->sun_path), "%s", cfg->socket);
        lg->addrlen = sizeof(*un);
    } else {
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
        char port[16];
        snprintf(port, sizeof(port), "%d", cfg->port);
        int e = getaddrinfo(cfg->host, port, &hints, &ai);
        if (e) {
            fprintf(stderr, "loadgen: %s: %s\n", cfg->host, gai_strerror(e));
            return -1;
        }
        memcpy(&lg->addr, ai->ai_addr, ai->ai_addrlen);
        lg->addrlen = ai->ai_addrlen;
        freeaddrinfo(ai);
    }
    int fd = open_socket(lg), e = fd < 0 ? errno : 0;
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    socklen_t elen = sizeof(e);
    if (fd >= 0 && poll(&pfd, 1, 5000) != 1)
        e = ETIMEDOUT;
    else if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) < 0)
        e = errno;
    if (e) {
        fprintf(stderr, "loadgen: cannot connect to %s: %s\n", target(cfg), strerror(e));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int rc = 0;
    if (cfg->preload) {
        struct timeval tv = {5, 0};
        fcntl(fd, F_SETFL, 0);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        errno = 0;
        rc = preload(lg, fd);
    }
    close(fd);
    return rc;
}

/* ---- results ---------------------------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
    if (!s) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static const double PCT[] = {50, 90, 99, 99.9};
static const char *const PCT_NAME[] = {"p50", "p90", "p99", "p999"};
static const char *const PCT_HUMAN[] = {"p50", "p90", "p99", "p99.9"};

static void report_json(FILE *f, const struct lg *lg, const struct hist *h, double secs)
{
    const struct config *cfg = &lg->cfg;
    fprintf(f, "{\"requests\":%llu,\"seconds\":%.6f,\"rps\":%.1f,\"latency_us\":{",
            (unsigned long long)lg->done, secs, secs > 0 ? (double)lg->done / secs : 0.0);
    for (size_t i = 0; i < 4; i++)
        fprintf(f, "\"%s\":%.3f,", PCT_NAME[i], (double)hist_percentile(h, PCT[i]) / 1e3);
    fprintf(f, "\"max\":%.3f,\"mean\":%.3f},\"errors\":{", (double)(h->count ? h->max : 0) / 1e3,
            hist_mean(h) / 1e3);
    for (int i = 0; i < lg->nerr; i++)
        fprintf(f, "%s\"%s\":%llu", i ? "," : "", lg->err[i].name,
                (unsigned long long)lg->err[i].n);
    fprintf(f, "},\"wrong\":%llu,\"reconnects\":%llu,\"stalled\":%s,\"lag_us\":",
            (unsigned long long)lg->wrong, (unsigned long long)lg->reconnects,
            lg->stalled ? "true" : "false");
    if (cfg->rate > 0)
        fprintf(f, "{\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f}",
                (double)hist_percentile(&lg->lag, 50) / 1e3,
                (double)hist_percentile(&lg->lag, 99) / 1e3, (double)lg->lag.max / 1e3);
    else
        fputs("null", f);
    fputs(",\"config\":{\"host\":", f);
    json_str(f, cfg->socket ? NULL : cfg->host);
    fprintf(f, ",\"port\":%d,\"socket\":", cfg->socket ? 0 : cfg->port);
    json_str(f, cfg->socket);
    fprintf(f,
            ",\"conns\":%d,\"pipeline\":%d,\"requests\":%llu,\"duration_s\":%g,"
            "\"warmup_s\":%g,\"rate\":%g,\"keys\":%llu,\"dist\":",
            cfg->conns, cfg->depth, (unsigned long long)cfg->requests, cfg->duration, cfg->warmup,
            cfg->rate, (unsigned long long)cfg->keys);
    json_str(f, cfg->dist);
    fputs(",\"mix\":", f);
    json_str(f, cfg->mix);
    fputs(",\"value\":", f);
    json_str(f, cfg->value);
    fputs(",\"prefix\":", f);
    json_str(f, cfg->prefix);
    fprintf(f, ",\"preload\":%s,\"seed\":%llu}}\n", cfg->preload ? "true" : "false",
            (unsigned long long)cfg->seed);
}

/* To stdout, or to stderr when the JSON goes to stdout. */
static void report_human(FILE *f, const struct lg *lg, const struct hist *h, double secs)
{
    const struct config *cfg = &lg->cfg;
    fprintf(f, "target       %s, %d connections, pipeline %d, %s\n", target(cfg), cfg->conns,
            cfg->depth, cfg->rate > 0 ? "open loop" : "closed loop");
    fprintf(f, "requests     %llu\nseconds      %.3f\nthroughput   %.0f req/s\n",
            (unsigned long long)lg->done, secs, secs > 0 ? (double)lg->done / secs : 0.0);
    fprintf(f, "latency us   ");
    for (size_t i = 0; i < 4; i++)
        fprintf(f, "%s %.1f  ", PCT_HUMAN[i], (double)hist_percentile(h, PCT[i]) / 1e3);
    fprintf(f, "max %.1f  mean %.1f\nerrors       ", (double)(h->count ? h->max : 0) / 1e3,
            hist_mean(h) / 1e3);
    for (int i = 0; i < lg->nerr; i++)
        fprintf(f, "%s%s %llu", i ? ", " : "", lg->err[i].name, (unsigned long long)lg->err[i].n);
    fprintf(f, "%s\nwrong        %llu\n", lg->nerr ? "" : "none", (unsigned long long)lg->wrong);
    if (lg->reconnects)
        fprintf(f, "reconnects   %llu\n", (unsigned long long)lg->reconnects);
    if (cfg->rate > 0)
        fprintf(
            f, "schedule     %.0f req/s intended; sent late by p50 %.1f  p99 %.1f  max %.1f us%s\n",
            cfg->rate, (double)hist_percentile(&lg->lag, 50) / 1e3,
            (double)hist_percentile(&lg->lag, 99) / 1e3, (double)lg->lag.max / 1e3,
            hist_percentile(&lg->lag, 50) > lg->period_ns
                ? " (behind: the generator or -P is the limit)"
                : "");
}

static void report(const struct lg *lg)
{
    struct hist *h = malloc(sizeof(*h));
    if (!h)
        exit(1);
    hist_init(h);
    for (int i = 0; i < lg->cfg.conns; i++)
        hist_merge(h, &lg->conns[i].hist);
    double secs = (double)(lg->last_reply_ns - lg->measure_ns) / 1e9;
    bool out = !lg->cfg.json || strcmp(lg->cfg.json, "-") == 0;
    if (!lg->cfg.quiet)
        report_human(lg->cfg.json && out ? stderr : stdout, lg, h, secs);
    if (lg->cfg.json || lg->cfg.quiet) {
        FILE *f = out ? stdout : fopen(lg->cfg.json, "w");
        if (!f)
            fprintf(stderr, "loadgen: %s: %s\n", lg->cfg.json, strerror(errno));
        else
            report_json(f, lg, h, secs);
        if (f && !out)
            fclose(f);
    }
    free(h);
}

/* ---- command line --------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fputs("usage: loadgen [-h HOST] [-p PORT] [-s SOCKET] [-c CONNS] [-P DEPTH]\n"
          "               [-n REQUESTS | -d DURATION] [--warmup DURATION] [--rate R]\n"
          "               [--keys N] [--dist uniform|zipf:S|hot:F:P] [--mix SPEC]\n"
          "               [--value N|MIN-MAX] [--prefix P] [--preload] [--seed N]\n"
          "               [--json FILE|-] [--quiet]\n"
          "  mix: comma-separated get set del incr hget hset lpush lrange mget:N any:CMD,\n"
          "       each with an optional :WEIGHT (default get:70,set:20,del:10)\n",
          f);
}

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* "10s", "500ms", "2m", "1.5" (seconds), "250us"; > 0. */
static int parse_duration(const char *s, double *out)
{
    static const struct {
        const char *unit;
        double scale;
    } UNITS[] = {{"", 1}, {"s", 1}, {"ms", 1e-3}, {"us", 1e-6}, {"m", 60}, {"h", 3600}};
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !(v > 0) || !isfinite(v))
        return -1;
    for (size_t i = 0; i < sizeof(UNITS) / sizeof(UNITS[0]); i++)
        if (strcmp(end, UNITS[i].unit) == 0)
            return *out = v * UNITS[i].scale, 0;
    return -1;
}

/* Requests per second: a number in (0, 1e9]. */
static int parse_rate(const char *s, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return (end == s || *end || errno || !(*out > 0) || *out > 1e9) ? -1 : 0;
}

enum {
    OPT_WARMUP = 256,
    OPT_RATE,
    OPT_KEYS,
    OPT_DIST,
    OPT_MIX,
    OPT_VALUE,
    OPT_PREFIX,
    OPT_PRELOAD,
    OPT_SEED,
    OPT_JSON,
    OPT_QUIET,
    OPT_HELP
};

static const struct option LONG_OPTS[] = {
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"rate", required_argument, NULL, OPT_RATE},
    {"keys", required_argument, NULL, OPT_KEYS},
    {"dist", required_argument, NULL, OPT_DIST},
    {"mix", required_argument, NULL, OPT_MIX},
    {"value", required_argument, NULL, OPT_VALUE},
    {"prefix", required_argument, NULL, OPT_PREFIX},
    {"preload", no_argument, NULL, OPT_PRELOAD},
    {"seed", required_argument, NULL, OPT_SEED},
    {"json", required_argument, NULL, OPT_JSON},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* One option into cfg; a message and -1 when its argument is bad. */
static int parse_option(struct config *cfg, int opt, const char *arg)
{
    uint64_t v = 0;
    int rc = 0;
    switch (opt) {
    case 'h':
        cfg->host = arg;
        break;
    case 's':
        cfg->socket = arg;
        break;
    case 'p':
        rc = parse_u64(arg, 1, 65535, &v);
        cfg->port = (int)v;
        break;
    case 'c':
        rc = parse_u64(arg, 1, 100000, &v);
        cfg->conns = (int)v;
        break;
    case 'P':
        rc = parse_u64(arg, 1, 100000, &v);
        cfg->depth = (int)v;
        break;
    case 'n':
        rc = parse_u64(arg, 1, UINT64_MAX / 2, &cfg->requests);
        cfg->duration = 0;
        break;
    case 'd':
        rc = parse_duration(arg, &cfg->duration);
        cfg->requests = 0;
        break;
    case OPT_WARMUP:
        rc = parse_duration(arg, &cfg->warmup);
        break;
    case OPT_RATE:
        rc = parse_rate(arg, &cfg->rate);
        break;
    case OPT_KEYS:
        rc = parse_u64(arg, 1, UINT32_MAX, &cfg->keys);
        break;
    case OPT_DIST:
        cfg->dist = arg;
        break;
    case OPT_MIX:
        cfg->mix = arg;
        break;
    case OPT_VALUE:
        cfg->value = arg;
        break;
    case OPT_PREFIX:
        cfg->prefix = arg;
        rc = strlen(arg) > WL_PREFIX_MAX ? -1 : 0;
        break;
    case OPT_PRELOAD:
        cfg->preload = true;
        break;
    case OPT_SEED:
        rc = parse_u64(arg, 0, UINT64_MAX, &cfg->seed);
        break;
    case OPT_JSON:
        cfg->json = arg;
        break;
    case OPT_QUIET:
        cfg->quiet = true;
        break;
    default:
        return -1;
    }
    if (rc)
        fprintf(stderr, "loadgen: bad argument: %s\n", arg);
    return rc ? -1 : 0;
}

/* Fills lg from argv; 0, or -1 (usage printed). */
static int parse_args(struct lg *lg, int argc, char **argv)
{
    struct config *cfg = &lg->cfg;
    *cfg = (struct config){.host = "127.0.0.1",
                           .port = 6379,
                           .conns = 50,
                           .depth = 1,
                           .requests = 100000,
                           .keys = 100000,
                           .seed = 1,
                           .dist = "uniform",
                           .mix = "get:70,set:20,del:10",
                           .value = "100",
                           .prefix = "lg:"};
    const char *err = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "h:p:s:c:P:n:d:", LONG_OPTS, NULL)) != -1) {
        if (opt == OPT_HELP) {
            usage(stdout);
            exit(0);
        }
        if (parse_option(cfg, opt, optarg) < 0)
            goto bad;
    }
    if (optind < argc)
        err = "unexpected argument";
    else if (wl_mix_parse(&lg->mix, cfg->mix, &err) < 0)
        ;
    else if (wl_dist_parse(&lg->dist, cfg->dist, cfg->keys, cfg->seed) < 0)
        err = "bad --dist";
    else if (wl_size_parse(&lg->size, cfg->value) < 0)
        err = "bad --value";
    if (err) {
        fprintf(stderr, "loadgen: %s\n", err);
        goto bad;
    }
    return 0;
bad:
    usage(stderr);
    return -1;
}

int main(int argc, char **argv)
{
    static struct lg lg;
    if (parse_args(&lg, argc, argv) < 0)
        return 2;
    lg.cap = lg.cfg.depth < 2 ? 2 : (size_t)lg.cfg.depth;
    lg.maxk = lg.mix.max_keys ? lg.mix.max_keys : 1;
    struct wl_ctx ctx = {.prefix_len = strlen(lg.cfg.prefix), .size = lg.size};
    lg.bound = wl_encode_bound(&ctx, &lg.mix);
    if (lg.cfg.rate > 0)
        lg.period_ns = (uint64_t)fmax(1.0, (double)lg.cfg.conns * 1e9 / lg.cfg.rate);
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_TIMERSLACK, 1UL); /* wake on the intended send times, not 50 us later */
    if (setup(&lg) < 0)
        return 1;
    run(&lg);
    report(&lg);
    return 0;
}

/* bench/loadgen/loadgen.c - load generator for Redis and nearcache: one libev loop,
 * raw non-blocking sockets (TCP or unix), pipelined requests it encodes
 * itself, replies framed with the proxy's own scanner (proxy/proto/resp.h) and
 * checked for content (proxy/tools/workload.h), latencies in a log-linear histogram
 * (proxy/tools/hist.h). Closed loop by default; --rate gives an open loop whose
 * latencies count from each request's intended send time, so a stalled server
 * cannot hide its stalls (no coordinated omission).
 *
 * usage: see usage() in bench/loadgen/loadgen_cli.c or bench/README.md. Exit status:
 * 0 when it ran, 1 when it could not connect or preload, 2 on bad arguments.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "bench/loadgen/loadgen.h"

#define NS_PER_S    1000000000ULL
#define RECONNECT_S 0.1            /* a failed connection is re-opened after this */
#define IO_TIMEOUT  (5 * NS_PER_S) /* a reply later than this fails its connection */
#define TICK_S      0.1            /* timeout checks */
#define OWN_EVERY   256            /* requests between two read-your-writes pairs */
#define READ_MIN    (64 * 1024)    /* free room for each read */

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

/* May one more request (two for the read-your-writes pair) leave now? At
 * most -P in flight; the pair goes alone when -P is 1 (the ring holds 2). */
static bool may_issue(struct conn *c, size_t n)
{
    struct lg *lg = c->lg;
    size_t depth = (size_t)lg->cfg.depth > n ? (size_t)lg->cfg.depth : n;
    if (lg->phase == PHASE_DRAIN || c->count + n > depth)
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
int lg_open_socket(const struct lg *lg)
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
    c->fd = lg_open_socket(c->lg);
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

/* The user and the system CPU seconds of process pid (all its threads) so
 * far, from /proc/PID/stat; false when it cannot be read (the process is
 * gone). */
static bool cpu_seconds(int pid, double *user, double *sys)
{
    char path[32], line[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(line, 1, sizeof(line) - 1, f);
    fclose(f);
    line[n] = '\0';
    const char *p = strrchr(line, ')'); /* the name before it may hold spaces */
    unsigned long long utime = 0, stime = 0;
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                     &stime) != 2)
        return false;
    *user = (double)utime / (double)sysconf(_SC_CLK_TCK);
    *sys = (double)stime / (double)sysconf(_SC_CLK_TCK);
    return true;
}

/* Adds sign x the CPU seconds of every --cpu process so far to lg->cpu_s
 * (user + system) and lg->cpu_user_s: -1 when the measured phase starts, +1
 * when the run ends. */
static void cpu_mark(struct lg *lg, double sign)
{
    for (int i = 0; i < lg->ncpu; i++) {
        double user = 0, sys = 0;
        if (cpu_seconds(lg->cpu_pid[i], &user, &sys)) {
            lg->cpu_s[i] += sign * (user + sys);
            lg->cpu_user_s[i] += sign * user;
        }
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
        cpu_mark(lg, -1);
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

void lg_run(struct lg *lg)
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
    if (lg->phase == PHASE_MEASURE)
        cpu_mark(lg, -1);
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
    cpu_mark(lg, 1);
}

/* bench/loadgen/loadgen.h - internal to the load generator, shared by its two files:
 * bench/loadgen/loadgen.c (connections, issuing, replies, pacing, phases: the run) and
 * bench/loadgen/loadgen_cli.c (preload, results, command line, main). Not an API.
 *
 * Ownership: struct lg owns its conns array, each conn its buffers and rings;
 * config strings are borrowed from argv.
 */
#ifndef NEARCACHE_BENCH_LOADGEN_H
#define NEARCACHE_BENCH_LOADGEN_H

#include <ev.h>

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "proxy/tools/hist.h"
#include "proxy/tools/workload.h"
#include "proxy/proto/resp.h"

#define ERR_KINDS 32
#define CPU_PIDS  4 /* --cpu: processes whose CPU time is measured */

struct config {
    const char *host, *socket, *json, *dist, *mix, *value, *prefix, *cpu;
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
    int cpu_pid[CPU_PIDS], ncpu;
    double cpu_s[CPU_PIDS];      /* their user + system seconds in the measured phase */
    double cpu_user_s[CPU_PIDS]; /* the user seconds of those */
    bool stalled;
};

/* A non-blocking socket to lg->addr with connect() started; -1 with errno. */
int lg_open_socket(const struct lg *lg);

/* Runs the load described by lg (config, mix, sizes, addr filled in) until it
 * is done or stalled, leaving the results in lg; exits 1 if it cannot start. */
void lg_run(struct lg *lg);

#endif

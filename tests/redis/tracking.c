/* tests/redis/tracking.c - the invalidation subscriber against a real
 * redis-server.
 *
 * Each test runs its own libev loop, polled with EVRUN_ONCE until a condition
 * holds or a deadline passes; a short repeating timer keeps EVRUN_ONCE from
 * sleeping longer than a few milliseconds. Data connections are plain blocking
 * hiredis contexts that enable CLIENT TRACKING with REDIRECT to the
 * subscriber's id, or plain writers for the sources (BCAST prefixes).
 */
#include <criterion/criterion.h>

#include <ev.h>
#include <hiredis/hiredis.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/bytes.h"
#include "harness/clock.h"
#include "harness/fixtures.h"
#include "harness/redis.h"
#include "proxy/tracking.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
/* Criterion ignores a leak report at the exit of a test's process, so each
 * test checks for leaks itself. */
#define LEAKS_FOUND() (__lsan_do_recoverable_leak_check() != 0)
#else
#define LEAKS_FOUND() false
#endif

#define WAIT_MS      5000
#define MAX_EVENTS   64
#define MAX_KEY_LEN  64
#define CONNECT_MS   1000
#define RECONNECT_MS 400

/* What the callbacks saw, in order. */
struct seen {
    long long states[MAX_EVENTS];
    int nstates;
    char keys[MAX_EVENTS][MAX_KEY_LEN];
    size_t key_lens[MAX_EVENTS];
    int nkeys;
    int nflushes;
};

static struct ev_loop *loop;
static ev_timer tick;
static struct seen seen;

static void on_key(void *arg, const char *key, size_t len)
{
    struct seen *s = arg;
    cr_assert(s->nkeys < MAX_EVENTS && len <= MAX_KEY_LEN, "too many or too long keys");
    memcpy(s->keys[s->nkeys], key, len);
    s->key_lens[s->nkeys++] = len;
}

static void on_flush(void *arg)
{
    struct seen *s = arg;
    s->nflushes++;
}

static void on_state(void *arg, long long id)
{
    struct seen *s = arg;
    cr_assert(s->nstates < MAX_EVENTS, "too many state changes");
    s->states[s->nstates++] = id;
}

static const struct tracking_callbacks CALLBACKS = {on_key, on_flush, on_state, &seen};

static void on_tick(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)l;
    (void)w;
    (void)revents;
}

static void setup(void)
{
    memset(&seen, 0, sizeof(seen));
    loop = ev_loop_new(EVFLAG_AUTO);
    cr_assert(loop != NULL);
    ev_timer_init(&tick, on_tick, 0.005, 0.005);
    ev_timer_start(loop, &tick);
    fixture_redis();
}

static void teardown(void)
{
    ev_timer_stop(loop, &tick);
    ev_loop_destroy(loop);
    fixture_stop();
}

/* Ends every test: .fini assertions do not fail a test. */
static void expect_no_leaks(void)
{
    cr_assert(!LEAKS_FOUND(), "memory leaked (see the LeakSanitizer report)");
}

/* Runs the loop until cond() holds or ms pass; returns whether it held. */
static bool run_until(bool (*cond)(void), int ms)
{
    ev_now_update(loop);
    ev_tstamp deadline = ev_now(loop) + ms / 1000.0;
    while (!(cond != NULL && cond()) && ev_now(loop) < deadline)
        ev_run(loop, EVRUN_ONCE);
    return cond != NULL && cond();
}

static int want_states;
static int want_keys;
static bool have_states(void)
{
    return seen.nstates >= want_states;
}
static bool have_keys(void)
{
    return seen.nkeys >= want_keys;
}
static bool have_flush(void)
{
    return seen.nflushes > 0;
}

/* The address of a loopback port, kept for the subscribers that borrow it
 * (a few at a time). */
static const struct net_addr *at(int port)
{
    static struct net_addr addrs[4];
    static unsigned next;
    struct net_addr *a = &addrs[next++ % 4];
    char address[64];
    const char *why;
    snprintf(address, sizeof(address), "127.0.0.1:%d", port);
    cr_assert_eq(net_addr_parse(address, a, &why), 0);
    return a;
}

/* Creates the subscriber on fx_redis (or port) with the test callbacks. */
static struct tracking *start_on(int port, int connect_ms)
{
    struct tracking *t =
        tracking_create(loop, at(port), NULL, NULL, connect_ms, RECONNECT_MS, &CALLBACKS);
    cr_assert(t != NULL, "tracking_create");
    return t;
}

/* Waits for state number n (1-based) and returns it. */
static long long wait_state(int n)
{
    want_states = n;
    cr_assert(run_until(have_states, WAIT_MS), "state #%d never came (saw %d)", n, seen.nstates);
    return seen.states[n - 1];
}

static struct tracking *start_subscribed(void)
{
    struct tracking *t = start_on(fx_redis.port, CONNECT_MS);
    long long id = wait_state(1);
    cr_assert(id > 0, "first state is %lld, not an id", id);
    return t;
}

static redisContext *data_connect(void)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", fx_redis.port, tv);
    cr_assert(c != NULL && c->err == 0, "data connection");
    return c;
}

/* Runs one command on c and checks the reply type (and status text, if any). */
static void data_expect(redisContext *c, int type, const char *status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    cr_assert(r != NULL, "%s: no reply (%s)", fmt, c->errstr);
    cr_assert(r->type == type, "%s: reply type %d (%s)", fmt, r->type,
              r->type == REDIS_REPLY_ERROR ? r->str : "");
    if (status != NULL)
        cr_assert_str_eq(r->str, status, "%s", fmt);
    freeReplyObject(r);
}

static void track(redisContext *c, long long id)
{
    data_expect(c, REDIS_REPLY_STATUS, "OK", "CLIENT TRACKING on REDIRECT %lld", id);
}

/* A read on the tracked connection c, a write of the same key on another
 * connection, and the invalidation of that key. */
static void expect_invalidation(redisContext *c, const char *key, size_t len)
{
    data_expect(c, REDIS_REPLY_NIL, NULL, "GET %b", key, len);
    redisContext *w = data_connect();
    data_expect(w, REDIS_REPLY_STATUS, "OK", "SET %b v2", key, len);
    redisFree(w);
    want_keys = seen.nkeys + 1;
    cr_assert(run_until(have_keys, WAIT_MS), "no invalidation for a key of %zu bytes", len);
    int last = seen.nkeys - 1;
    cr_assert(seen.key_lens[last] == len && memcmp(seen.keys[last], key, len) == 0,
              "invalidated the wrong key (%zu bytes)", seen.key_lens[last]);
    data_expect(c, REDIS_REPLY_INTEGER, NULL, "DEL %b", key, len);
}

static long long info_field(const char *field)
{
    redisContext *c = data_connect();
    redisReply *r = redisCommand(c, "INFO");
    cr_assert(r != NULL && r->type == REDIS_REPLY_STRING, "INFO");
    const char *p = strstr(r->str, field);
    cr_assert(p != NULL, "INFO has no %s", field);
    long long v = atoll(p + strlen(field) + 1);
    freeReplyObject(r);
    redisFree(c);
    return v;
}

TestSuite(tracking, .init = setup, .fini = teardown, .timeout = 60);

Test(tracking, subscribes_and_reports_its_client_id)
{
    struct tracking *t = start_on(fx_redis.port, CONNECT_MS);
    cr_assert_eq(tracking_client_id(t), -1, "an id before subscribing");
    cr_assert(wait_state(1) > 0, "first state is not an id");
    cr_assert_eq(tracking_client_id(t), seen.states[0]);
    /* The id is the subscriber's: Redis lists it with one subscription. */
    redisContext *c = data_connect();
    redisReply *r = redisCommand(c, "CLIENT LIST ID %lld", seen.states[0]);
    cr_assert(r != NULL && r->type == REDIS_REPLY_STRING && strstr(r->str, " sub=1 ") != NULL,
              "CLIENT LIST ID: %s", r != NULL && r->str != NULL ? r->str : "?");
    freeReplyObject(r);
    redisFree(c);
    cr_assert_eq(seen.nstates, 1);
    tracking_destroy(&t);
    cr_assert_null(t);
    expect_no_leaks();
}

Test(tracking, invalidates_tracked_keys)
{
    struct tracking *t = start_subscribed();
    redisContext *c = data_connect();
    track(c, tracking_client_id(t));
    expect_invalidation(c, "k", 1);
    expect_invalidation(c, "bin\0ary\r\nkey", 13);
    /* An array of several keys: one callback per key. */
    data_expect(c, REDIS_REPLY_ARRAY, NULL, "MGET a b");
    redisContext *w = data_connect();
    data_expect(w, REDIS_REPLY_STATUS, "OK", "MSET a 1 b 2");
    redisFree(w);
    int before = seen.nkeys;
    want_keys = before + 2;
    cr_assert(run_until(have_keys, WAIT_MS), "MSET invalidated %d keys", seen.nkeys - before);
    cr_assert_eq(seen.nflushes, 0);
    cr_assert_eq(seen.nstates, 1, "the subscription changed");
    redisFree(c);
    tracking_destroy(&t);
    expect_no_leaks();
}

Test(tracking, flushall_invalidates_everything)
{
    struct tracking *t = start_subscribed();
    redisContext *c = data_connect();
    track(c, tracking_client_id(t));
    data_expect(c, REDIS_REPLY_NIL, NULL, "GET k");
    redis_call_expect(&fx_redis, "FLUSHALL", "+OK\r\n");
    cr_assert(run_until(have_flush, WAIT_MS), "no flush after FLUSHALL");
    cr_assert_eq(seen.nflushes, 1);
    cr_assert_eq(seen.nstates, 1, "the subscription changed");
    redisFree(c);
    tracking_destroy(&t);
    expect_no_leaks();
}

Test(tracking, client_kill_resubscribes_with_a_new_id)
{
    struct tracking *t = start_subscribed();
    long long old_id = seen.states[0];
    char kill[64];
    snprintf(kill, sizeof(kill), "CLIENT KILL ID %lld", old_id);
    redis_call_expect(&fx_redis, kill, ":1\r\n");
    cr_assert_eq(wait_state(2), -1, "no loss reported");
    long long new_id = wait_state(3);
    cr_assert(new_id > 0 && new_id != old_id, "resubscribed as %lld (was %lld)", new_id, old_id);
    cr_assert_eq(tracking_client_id(t), new_id);
    run_until(NULL, 100);
    cr_assert_eq(seen.nstates, 3, "more state changes than loss + resubscribe");
    redisContext *c = data_connect();
    track(c, new_id);
    expect_invalidation(c, "k", 1);
    redisFree(c);
    tracking_destroy(&t);
    expect_no_leaks();
}

Test(tracking, redis_down_at_start)
{
    redis_kill(&fx_redis);
    struct tracking *t = start_on(fx_redis.port, CONNECT_MS);
    run_until(NULL, 700); /* several refused attempts (50, 100, 200, 400 ms apart) */
    cr_assert_eq(seen.nstates, 0, "a state change with Redis down (first %lld)", seen.states[0]);
    cr_assert_eq(tracking_client_id(t), -1);
    redis_restart(&fx_redis);
    long long id = wait_state(1);
    cr_assert(id > 0);
    cr_assert_eq(tracking_client_id(t), id);
    redisContext *c = data_connect();
    track(c, id);
    expect_invalidation(c, "k", 1);
    redisFree(c);
    tracking_destroy(&t);
    expect_no_leaks();
}

Test(tracking, redis_restart_reports_the_loss_once)
{
    struct tracking *t = start_subscribed();
    redis_kill(&fx_redis);
    cr_assert_eq(wait_state(2), -1, "no loss reported");
    run_until(NULL, 700); /* several refused attempts */
    cr_assert_eq(seen.nstates, 2, "the loss was reported again");
    cr_assert_eq(tracking_client_id(t), -1);
    redis_restart(&fx_redis);
    cr_assert(wait_state(3) > 0);
    cr_assert_eq(tracking_client_id(t), seen.states[2]);
    tracking_destroy(&t);
    expect_no_leaks();
}

Test(tracking, connect_timeout_retries)
{
    long long before = info_field("total_connections_received");
    redis_pause(&fx_redis); /* connects complete in the kernel, nothing answers */
    struct tracking *t = start_on(fx_redis.port, 200);
    run_until(NULL, 1000);
    cr_assert_eq(seen.nstates, 0);
    redis_resume(&fx_redis);
    cr_assert(wait_state(1) > 0);
    /* At least three attempts (0, 250 and 550 ms) plus this INFO's own connection. */
    long long attempts = info_field("total_connections_received") - before - 1;
    cr_assert(attempts >= 3, "only %lld connection attempts: no connect timeout", attempts);
    tracking_destroy(&t);
    expect_no_leaks();
}

/* After destroy nothing of the tracker is left on the loop or in Redis. */
static void expect_gone(long long id)
{
    ev_timer_stop(loop, &tick);
    cr_assert_eq(ev_run(loop, EVRUN_NOWAIT), 0, "watchers left on the loop");
    ev_timer_start(loop, &tick);
    if (id <= 0)
        return;
    redisContext *c = data_connect();
    for (int i = 0; i < 100; i++) {
        redisReply *r = redisCommand(c, "CLIENT LIST ID %lld", id);
        cr_assert(r != NULL && r->type == REDIS_REPLY_STRING);
        bool listed = r->len > 0;
        freeReplyObject(r);
        if (!listed)
            break;
        cr_assert(i < 99, "the subscriber connection stayed open");
        harness_sleep_ms(20);
    }
    redisFree(c);
}

Test(tracking, destroy_while_connected_or_reconnecting)
{
    struct tracking *t = start_subscribed();
    long long id = tracking_client_id(t);
    tracking_destroy(&t);
    cr_assert_null(t);
    expect_gone(id);

    t = start_on(fx_redis.port, CONNECT_MS); /* before the first attempt */
    tracking_destroy(&t);
    expect_gone(0);

    t = start_on(fx_redis.port, CONNECT_MS); /* mid-handshake */
    ev_run(loop, EVRUN_NOWAIT);
    tracking_destroy(&t);
    expect_gone(0);

    redis_kill(&fx_redis); /* waiting for the next attempt */
    t = start_on(fx_redis.port, CONNECT_MS);
    run_until(NULL, 200);
    tracking_destroy(&t);
    expect_gone(0);
    tracking_destroy(&t); /* NULL is accepted */
    cr_assert_eq(seen.nstates, 1, "destroy called a callback");
    redis_restart(&fx_redis);
    expect_no_leaks();
}

Test(tracking, follows_its_address)
{
    struct net_addr addr = {0}; /* not known yet: attempts fail quietly */
    struct tracking *t = tracking_create(loop, &addr, NULL, NULL, CONNECT_MS, 100, &CALLBACKS);
    cr_assert(t != NULL);
    run_until(NULL, 300);
    cr_assert_eq(seen.nstates, 0, "subscribed without an address");
    addr = *at(fx_redis.port); /* it moved: the next attempt goes there */
    cr_assert(wait_state(1) > 0, "no subscription once the address is known");
    tracking_restart(t, "test");
    cr_assert(wait_state(2) < 0, "a restart is not reported as a loss");
    cr_assert(wait_state(3) > 0, "no subscription again after the restart");
    tracking_destroy(&t);
    expect_no_leaks();
}

static struct tracking *plain;
static bool plain_subscribed(void)
{
    return tracking_client_id(plain) > 0;
}

Test(tracking, wrong_password_never_subscribes)
{
    const struct net_addr *address = at(fx_redis.port);
    redis_call_expect(&fx_redis, "CONFIG SET requirepass secret", "+OK\r\n");
    struct tracking *bad =
        tracking_create(loop, address, "default", "wrong", CONNECT_MS, 100, &CALLBACKS);
    run_until(NULL, 500);
    cr_assert_eq(seen.nstates, 0, "subscribed with a wrong password");
    tracking_destroy(&bad);
    struct tracking *good =
        tracking_create(loop, address, "default", "secret", CONNECT_MS, 100, &CALLBACKS);
    cr_assert(wait_state(1) > 0, "no subscription with the right password");
    tracking_destroy(&good);
    plain = tracking_create(loop, address, NULL, "secret", CONNECT_MS, 100, NULL);
    cr_assert(run_until(plain_subscribed, WAIT_MS), "no subscription with AUTH password");
    tracking_destroy(&plain);
    expect_no_leaks();
}

/* ---- sources: BCAST prefixes on the registration connection ---------------- */

/* Sets the NULL-terminated list of NUL-terminated prefixes. */
static void set_sources(struct tracking *t, const char *const *prefixes)
{
    size_t n = 0;
    while (prefixes[n] != NULL)
        n++;
    cr_assert_eq(tracking_set_sources(t, prefixes, NULL, n), 0, "tracking_set_sources");
}

static struct tracking *start_with_sources(const char *const *prefixes)
{
    struct tracking *t = start_on(fx_redis.port, CONNECT_MS);
    set_sources(t, prefixes);
    long long id = wait_state(1);
    cr_assert(id > 0, "first state is %lld, not an id", id);
    return t;
}

/* Index of the first key seen at or after from that equals key, or -1. */
static int seen_key_from(int from, const char *key)
{
    size_t len = strlen(key);
    for (int i = from; i < seen.nkeys; i++)
        if (seen.key_lens[i] == len && memcmp(seen.keys[i], key, len) == 0)
            return i;
    return -1;
}

static const char *wanted_key;
static int wanted_from;
static bool have_wanted_key(void)
{
    return seen_key_from(wanted_from, wanted_key) >= 0;
}

/* SET key on a plain connection that reads nothing and tracks nothing. */
static void write_key(const char *key)
{
    redisContext *w = data_connect();
    data_expect(w, REDIS_REPLY_STATUS, "OK", "SET %s v", key);
    redisFree(w);
}

/* Writes key and waits until its invalidation arrives. */
static void expect_reported(const char *key)
{
    wanted_key = key;
    wanted_from = seen.nkeys;
    write_key(key);
    cr_assert(run_until(have_wanted_key, WAIT_MS), "the write of %s was not reported", key);
}

/* Writes key, then the reported sentinel: Redis delivers invalidations in
 * order, so key's would have come first. */
static void expect_not_reported(const char *key, const char *sentinel)
{
    int from = seen.nkeys;
    write_key(key);
    expect_reported(sentinel);
    cr_assert(seen_key_from(from, key) < 0, "the write of %s was reported", key);
}

/* Writes key until it is reported: a new list of sources is in force. */
static void expect_reported_soon(const char *key)
{
    wanted_key = key;
    wanted_from = seen.nkeys;
    for (int i = 0; i < WAIT_MS / 100 && !have_wanted_key(); i++) {
        write_key(key);
        run_until(have_wanted_key, 100);
    }
    cr_assert(have_wanted_key(), "writes of %s are not reported", key);
}

/* The id of the connection whose last command was CLIENT TRACKING (the
 * registration connection), or -1 when there is none. */
static long long registration_id(void)
{
    redisContext *c = data_connect();
    redisReply *r = redisCommand(c, "CLIENT LIST");
    cr_assert(r != NULL && r->type == REDIS_REPLY_STRING, "CLIENT LIST");
    long long id = -1;
    for (const char *line = r->str; line != NULL && *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
        if (memmem(line, len, " cmd=client|tracking ", 21) != NULL) {
            cr_assert_eq(id, -1, "two registration connections:\n%s", r->str);
            cr_assert(strncmp(line, "id=", 3) == 0);
            id = atoll(line + 3);
        }
        line = end != NULL ? end + 1 : NULL;
    }
    freeReplyObject(r);
    redisFree(c);
    return id;
}

/* Waits until Redis lists only the connection asking (nothing of ours left). */
static void expect_no_connections_left(void)
{
    for (int i = 0; info_field("connected_clients") > 1; i++) {
        cr_assert(i < 100, "connections of the tracker stayed open");
        harness_sleep_ms(20);
    }
}

/* stderr into a temp file, for the tests of what is logged. */
static char log_path[64];
static int saved_stderr = -1;

static void capture_stderr(void)
{
    snprintf(log_path, sizeof(log_path), "/tmp/nc-tracking-log-XXXXXX");
    int fd = mkstemp(log_path);
    cr_assert(fd >= 0, "mkstemp");
    fflush(stderr);
    saved_stderr = dup(2);
    cr_assert(saved_stderr >= 0 && dup2(fd, 2) == 2, "dup2");
    close(fd);
}

/* Restores stderr, echoes what was logged and returns it (caller frees). */
static struct bytes end_capture(void)
{
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    saved_stderr = -1;
    struct bytes log = {0};
    cr_assert(bytes_append_file(&log, log_path), "read %s", log_path);
    unlink(log_path);
    fprintf(stderr, "%.*s", (int)log.len, log.data != NULL ? log.data : "");
    return log;
}

static size_t count_in(const struct bytes *b, const char *needle)
{
    size_t n = 0, nlen = strlen(needle);
    for (const char *p = b->data, *end = b->data + b->len;
         p != NULL && (p = memmem(p, (size_t)(end - p), needle, nlen)) != NULL; p += nlen)
        n++;
    return n;
}

static const char *const MODEL[] = {"model:", NULL};
static const char *const A_ONLY[] = {"a:", NULL};
static const char *const B_ONLY[] = {"b:", NULL};
static const char *const EVERY_KEY[] = {"", NULL};
static const char *const OVERLAPPING[] = {"x:", "x:y", NULL};
static const char *const NONE[] = {NULL};

Test(tracking, sources_report_writes_made_elsewhere)
{
    struct tracking *t = start_with_sources(MODEL);
    long long reg = registration_id();
    cr_assert(reg > 0 && reg != tracking_client_id(t), "no registration connection");
    expect_reported("model:1");
    expect_not_reported("other:1", "model:2");
    /* Binary-safe prefixes: NUL and CRLF bytes inside. */
    const char bin[] = "b\0n\r\n:";
    const char *const prefixes[] = {bin};
    const size_t lens[] = {sizeof(bin) - 1};
    cr_assert_eq(tracking_set_sources(t, prefixes, lens, 1), 0);
    wanted_from = seen.nkeys;
    for (int i = 0; i < WAIT_MS / 100 && seen.nkeys == wanted_from; i++) {
        redisContext *w = data_connect();
        data_expect(w, REDIS_REPLY_STATUS, "OK", "SET %b v", "b\0n\r\n:1", (size_t)8);
        redisFree(w);
        want_keys = wanted_from + 1;
        run_until(have_keys, 100);
    }
    cr_assert(seen.nkeys > wanted_from && seen.key_lens[seen.nkeys - 1] == 8 &&
                  memcmp(seen.keys[seen.nkeys - 1], "b\0n\r\n:1", 8) == 0,
              "the binary prefix was not registered");
    cr_assert_eq(seen.nstates, 1, "the subscription changed");
    tracking_destroy(&t);
    expect_no_connections_left();
    expect_no_leaks();
}

Test(tracking, sources_replaced_while_subscribed)
{
    struct tracking *t = start_with_sources(A_ONLY);
    long long id = tracking_client_id(t);
    expect_reported("a:x");
    expect_not_reported("b:x", "a:y");
    set_sources(t, B_ONLY);
    expect_reported_soon("b:x");
    expect_not_reported("a:x", "b:y");
    set_sources(t, B_ONLY); /* the same list: nothing to do */
    cr_assert_eq(registration_id() > 0, true);
    expect_not_reported("a:z", "b:z");
    cr_assert_eq(seen.nstates, 1, "the subscription changed");
    cr_assert_eq(tracking_client_id(t), id);
    tracking_destroy(&t);
    expect_no_connections_left();
    expect_no_leaks();
}

Test(tracking, sources_added_and_removed_while_subscribed)
{
    struct tracking *t = start_subscribed();
    long long id = tracking_client_id(t);
    cr_assert_eq(registration_id(), -1, "a registration connection without sources");
    set_sources(t, A_ONLY);
    expect_reported_soon("a:1");
    set_sources(t, NONE);
    run_until(NULL, 50);
    for (int i = 0; registration_id() > 0; i++) {
        cr_assert(i < 100, "the registration connection stayed open");
        run_until(NULL, 20);
    }
    /* A key read on a tracked data connection is the sentinel now. */
    redisContext *c = data_connect();
    track(c, id);
    data_expect(c, REDIS_REPLY_NIL, NULL, "GET s");
    expect_not_reported("a:2", "s");
    redisFree(c);
    cr_assert_eq(seen.nstates, 1, "the subscription changed");
    cr_assert_eq(tracking_client_id(t), id);
    tracking_destroy(&t);
    expect_no_connections_left();
    expect_no_leaks();
}

Test(tracking, empty_prefix_means_every_key)
{
    struct tracking *t = start_with_sources(EVERY_KEY);
    expect_reported("anything");
    expect_reported("model:1");
    expect_reported("x");
    tracking_destroy(&t);
    expect_no_leaks();
}

Test(tracking, registration_killed_resubscribes_and_registers_again)
{
    struct tracking *t = start_with_sources(MODEL);
    long long old_id = seen.states[0];
    long long reg = registration_id();
    cr_assert(reg > 0 && reg != old_id, "no registration connection");
    char kill[64];
    snprintf(kill, sizeof(kill), "CLIENT KILL ID %lld", reg);
    redis_call_expect(&fx_redis, kill, ":1\r\n");
    cr_assert_eq(wait_state(2), -1, "no loss reported");
    long long new_id = wait_state(3);
    cr_assert(new_id > 0 && new_id != old_id, "resubscribed as %lld (was %lld)", new_id, old_id);
    cr_assert_eq(tracking_client_id(t), new_id);
    long long new_reg = registration_id();
    cr_assert(new_reg > 0 && new_reg != reg, "registration connection %lld (was %lld)", new_reg,
              reg);
    expect_reported("model:1");
    expect_not_reported("other:1", "model:2");
    cr_assert_eq(seen.nstates, 3, "more state changes than loss + resubscribe");
    /* Killing the subscriber takes the registration down with it. */
    snprintf(kill, sizeof(kill), "CLIENT KILL ID %lld", new_id);
    redis_call_expect(&fx_redis, kill, ":1\r\n");
    cr_assert_eq(wait_state(4), -1, "no loss reported");
    cr_assert(wait_state(5) > 0);
    expect_reported("model:3");
    tracking_destroy(&t);
    expect_no_connections_left();
    expect_no_leaks();
}

Test(tracking, refused_sources_never_come_up)
{
    long long before = info_field("total_connections_received");
    capture_stderr();
    struct tracking *t = start_on(fx_redis.port, CONNECT_MS);
    set_sources(t, OVERLAPPING);
    run_until(NULL, 800); /* several refused attempts (0, 50, 100, 200, 400 ms apart) */
    struct bytes log = end_capture();
    cr_assert_eq(seen.nstates, 0, "came up with overlapping prefixes (first %lld)", seen.states[0]);
    cr_assert_eq(tracking_client_id(t), -1);
    /* Two connections per attempt, plus this INFO's own. */
    long long attempts = (info_field("total_connections_received") - before - 1) / 2;
    cr_assert(attempts >= 3, "only %lld attempts", attempts);
    /* At most one line per second: 800 ms may straddle two seconds. */
    size_t refusals = count_in(&log, "source prefixes refused");
    cr_assert(refusals >= 1 && refusals <= 2, "%zu refusals logged in %lld attempts", refusals,
              attempts);
    cr_assert(count_in(&log, "overlap") >= 1, "Redis's error is not in the log");
    bytes_free(&log);
    /* A list Redis accepts: up at the next attempt. */
    set_sources(t, MODEL);
    cr_assert(wait_state(1) > 0, "not up with a valid list");
    expect_reported("model:1");
    tracking_destroy(&t);
    expect_no_connections_left();
    expect_no_leaks();
}

Test(tracking, refused_reregistration_is_a_loss)
{
    struct tracking *t = start_with_sources(A_ONLY);
    set_sources(t, OVERLAPPING);
    cr_assert_eq(wait_state(2), -1, "no loss reported after a refused list");
    cr_assert_eq(tracking_client_id(t), -1);
    run_until(NULL, 300);
    cr_assert_eq(seen.nstates, 2, "up again with overlapping prefixes");
    set_sources(t, B_ONLY);
    cr_assert(wait_state(3) > 0, "not up again with a valid list");
    expect_reported("b:1");
    expect_not_reported("a:1", "b:2");
    tracking_destroy(&t);
    expect_no_connections_left();
    expect_no_leaks();
}

Test(tracking, sources_with_a_password)
{
    const struct net_addr *address = at(fx_redis.port);
    redis_call_expect(&fx_redis, "CONFIG SET requirepass secret", "+OK\r\n");
    struct tracking *t =
        tracking_create(loop, address, "default", "secret", CONNECT_MS, 100, &CALLBACKS);
    cr_assert(t != NULL);
    set_sources(t, MODEL);
    cr_assert(wait_state(1) > 0, "not up with AUTH and sources");
    redisContext *w = data_connect();
    data_expect(w, REDIS_REPLY_STATUS, "OK", "AUTH secret");
    wanted_key = "model:1";
    wanted_from = seen.nkeys;
    data_expect(w, REDIS_REPLY_STATUS, "OK", "SET model:1 v");
    redisFree(w);
    cr_assert(run_until(have_wanted_key, WAIT_MS), "the write was not reported");
    tracking_destroy(&t);
    expect_no_leaks();
}

/* Destroy at every step of the handshake of both connections. */
Test(tracking, destroy_at_every_step_with_sources)
{
    int steps = 0;
    for (; steps < 100 && seen.nstates == 0; steps++) {
        struct tracking *t = start_on(fx_redis.port, CONNECT_MS);
        set_sources(t, MODEL);
        for (int i = 0; i < steps && seen.nstates == 0; i++)
            ev_run(loop, EVRUN_ONCE);
        tracking_destroy(&t);
        expect_gone(0);
        expect_no_connections_left();
    }
    cr_assert_eq(seen.nstates, 1, "never came up within %d steps", steps);
    cr_assert(steps > 3, "up in %d steps: the handshake was not stepped through", steps);
    expect_no_leaks();
}

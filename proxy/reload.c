/* reload.c - reloads read and built on a worker thread, applied on the loop. */
#include "proxy/reload.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "config/config.h"
#include "policy/policy.h"
#include "proxy/cache/cache.h"
#include "proxy/client.h"
#include "proxy/lib/log.h"
#include "proxy/server.h"

/* Requests waiting for one run's result. */
struct waiters {
    struct req **reqs;
    size_t n;
    size_t cap;
};

/* What the worker thread produces; the loop reads it after the join. */
struct job {
    struct config next;
    struct policy *policy; /* built; NULL on failure */
    const struct policy *prev;
    struct policy *retired; /* freed by the thread before it starts */
    ev_tstamp took;         /* the thread's time, in seconds */
    char err[512];
};

struct reload {
    struct server *srv;
    ev_async done; /* the thread has finished */
    pthread_t thread;
    bool running;
    bool again;             /* requested while running: run once more after */
    struct waiters now;     /* answered by the running reload */
    struct waiters next;    /* answered by the one after it */
    struct policy *retired; /* replaced by the last reload; not yet freed */
    struct job job;
};

struct policy *reload_build_policy(struct config *cfg, const struct policy *prev, char *err,
                                   size_t errlen)
{
    struct policy *p = cfg->policy != NULL ? cfg->policy : policy_create();
    cfg->policy = NULL;
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (policy_build(p, prev, err, errlen) < 0) {
        policy_destroy(&p);
        return NULL;
    }
    return p;
}

/* Niceness of the worker: on a busy machine it yields the cores to the
 * event loop rather than competing with it. */
#define RELOAD_NICE 10

/* The worker: frees the policy replaced last time, reads the settings and
 * builds the policy. Touches nothing the loop uses but prev's fixed parts. */
static void *reload_work(void *arg)
{
    struct reload *r = arg;
    struct job *job = &r->job;
    struct server *srv = r->srv;
    ev_tstamp start = ev_time();
    setpriority(PRIO_PROCESS, (id_t)gettid(), RELOAD_NICE); /* this thread only, on Linux */
    policy_destroy(&job->retired);
    job->policy = NULL;
    if (srv->load == NULL)
        snprintf(job->err, sizeof(job->err), "no settings to read again");
    else if (srv->load(srv->load_arg, &job->next, job->err, sizeof(job->err)) == 0)
        job->policy = reload_build_policy(&job->next, job->prev, job->err, sizeof(job->err));
    job->took = ev_time() - start;
    ev_async_send(srv->loop, &r->done);
    return NULL;
}

/* Starts the worker for the waiters in r->now. */
static void reload_start(struct reload *r)
{
    struct job *job = &r->job;
    memset(&job->next, 0, sizeof(job->next));
    job->prev = r->srv->policy;
    job->retired = r->retired;
    job->err[0] = '\0';
    r->retired = NULL;
    r->running = pthread_create(&r->thread, NULL, reload_work, r) == 0;
    if (!r->running) {
        r->retired = job->retired;
        snprintf(job->err, sizeof(job->err), "cannot start a thread");
        job->policy = NULL;
        ev_feed_event(r->srv->loop, &r->done, EV_ASYNC);
    }
}

/* config_keep_fixed callback: says which setting a reload did not apply. */
static void reload_fixed_changed(void *arg, const char *name)
{
    (void)arg;
    log_warn("reload: %s changed: restart to apply it", name);
}

/* Puts the job's settings and policy in force; cannot fail. */
static void reload_apply(struct reload *r)
{
    struct server *srv = r->srv;
    struct job *job = &r->job;
    ev_tstamp start = ev_time();
    config_keep_fixed(&job->next, srv->cfg, reload_fixed_changed, NULL);
    config_deinit(srv->cfg);
    *srv->cfg = job->next;
    log_level = srv->cfg->log_level;
    srv->limits.max_bulk_len = srv->cfg->max_bulk_len;
    srv->limits.max_multibulk_len = srv->cfg->max_multibulk_len;
    srv->limits.max_inline_len = (size_t)srv->cfg->max_inline_len;
    policy_take_over(job->policy, srv->policy);
    cache_reload(srv->cache, srv->cfg, job->policy);
    r->retired = srv->policy;
    srv->policy = job->policy;
    job->policy = NULL;
    if (server_track_sources(srv) < 0)
        log_error("reload: out of memory registering the invalidation sources");
    log_notice("reloaded: %zu policy rules, read and built in %.0f ms, applied in %.2f ms",
               policy_rule_count(srv->policy), job->took * 1000, (ev_time() - start) * 1000);
}

/* Answers every waiter of w with reply[0..len) and empties w. */
static void reload_answer(struct waiters *w, const char *reply, size_t len)
{
    for (size_t i = 0; i < w->n; i++)
        client_reply(w->reqs[i], reply, len);
    w->n = 0;
}

/* Answers the waiters with the job's outcome. */
static void reload_answer_job(struct reload *r, bool ok)
{
    char line[700];
    if (ok) {
        reload_answer(&r->now, "+OK\r\n", 5);
        return;
    }
    for (char *p = r->job.err; *p != '\0'; p++) {
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    }
    int n = snprintf(line, sizeof(line), "-ERR reload failed: %s\r\n", r->job.err);
    reload_answer(&r->now, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/* The worker finished: apply or report, answer, and run again if asked. */
static void reload_on_done(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop;
    (void)revents;
    struct reload *r = w->data;
    struct server *srv = r->srv;
    if (r->running)
        pthread_join(r->thread, NULL);
    r->running = false;
    bool ok = r->job.policy != NULL;
    srv->reloads++;
    if (ok) {
        reload_apply(r);
    } else {
        srv->reloads_failed++;
        config_deinit(&r->job.next);
        log_error("reload failed, running settings kept: %s", r->job.err);
    }
    reload_answer_job(r, ok);
    if (!r->again)
        return;
    struct waiters swap = r->now;
    r->now = r->next;
    r->next = swap;
    r->again = false;
    reload_start(r);
}

struct reload *reload_create(struct server *srv)
{
    struct reload *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->srv = srv;
    ev_async_init(&r->done, reload_on_done);
    r->done.data = r;
    ev_async_start(srv->loop, &r->done);
    return r;
}

static int waiters_add(struct waiters *w, struct req *req)
{
    if (w->n == w->cap) {
        size_t cap = w->cap == 0 ? 4 : w->cap * 2;
        struct req **reqs = realloc(w->reqs, cap * sizeof(*reqs));
        if (reqs == NULL)
            return -1;
        w->reqs = reqs;
        w->cap = cap;
    }
    w->reqs[w->n++] = req;
    return 0;
}

int reload_request(struct reload *r, struct req *waiter)
{
    struct waiters *w = r->running ? &r->next : &r->now;
    if (waiter != NULL && waiters_add(w, waiter) < 0)
        return -1;
    if (r->running)
        r->again = true;
    else
        reload_start(r);
    return 0;
}

void reload_destroy(struct reload **rp)
{
    static const char ERR_EXIT[] = "-ERR reload failed: shutting down\r\n";
    struct reload *r = *rp;
    if (r == NULL)
        return;
    if (r->running) {
        pthread_join(r->thread, NULL);
        config_deinit(&r->job.next);
        policy_destroy(&r->job.policy);
    }
    policy_destroy(&r->job.retired);
    policy_destroy(&r->retired);
    ev_async_stop(r->srv->loop, &r->done);
    reload_answer(&r->now, ERR_EXIT, sizeof(ERR_EXIT) - 1);
    reload_answer(&r->next, ERR_EXIT, sizeof(ERR_EXIT) - 1);
    free(r->now.reqs);
    free(r->next.reqs);
    free(r);
    *rp = NULL;
}

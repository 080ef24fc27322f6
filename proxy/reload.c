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
#include "proxy/cluster/route.h"
#include "proxy/invalidation.h"
#include "proxy/lib/log.h"
#include "proxy/tls.h"
#include "proxy/worker.h"

/* Requests waiting for one run's result. */
struct waiters {
    struct exchange **reqs;
    size_t n;
    size_t cap;
};

/* What the worker thread produces; the loop reads it after the join. */
struct job {
    struct config next;
    struct policy *policy; /* built; NULL on failure */
    const struct policy *prev;
    struct policy *retired; /* freed by the thread before it starts */
    SSL_CTX *tls_clients;   /* the TLS contexts of the new settings (NULL when off) */
    SSL_CTX *tls_upstream;
    ev_tstamp took; /* the thread's time, in seconds */
    char err[512];
};

struct reload {
    struct worker *w;
    reload_load_fn load;
    void *load_arg;
    uint64_t runs;   /* reloads done */
    uint64_t failed; /* of which failed */
    ev_async done;   /* the thread has finished */
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

/* Builds the TLS contexts of the job's settings: certificates and keys are
 * read again, and a broken one fails the reload. Returns 0 or -1. */
static int reload_build_tls(struct job *job)
{
    job->tls_clients = tls_listen_ctx(&job->next, job->err, sizeof(job->err));
    if (job->tls_clients == NULL && job->err[0] != '\0')
        return -1;
    job->tls_upstream = tls_upstream_ctx(&job->next, job->err, sizeof(job->err));
    return job->tls_upstream == NULL && job->err[0] != '\0' ? -1 : 0;
}

/* Puts *next in force in *cur when both exist (the listener or upstream.tls
 * being on is fixed: a context cannot appear or vanish), else drops it. */
static void reload_swap_tls(SSL_CTX **cur, SSL_CTX **next)
{
    if (*cur != NULL && *next != NULL) {
        SSL_CTX_free(*cur); /* connections made with it hold references */
        *cur = *next;
    } else {
        SSL_CTX_free(*next);
    }
    *next = NULL;
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
    ev_tstamp start = ev_time();
    setpriority(PRIO_PROCESS, (id_t)gettid(), RELOAD_NICE); /* this thread only, on Linux */
    policy_destroy(&job->retired);
    job->policy = NULL;
    if (r->load == NULL)
        snprintf(job->err, sizeof(job->err), "no settings to read again");
    else if (r->load(r->load_arg, &job->next, job->err, sizeof(job->err)) == 0 &&
             reload_build_tls(job) == 0)
        job->policy = reload_build_policy(&job->next, job->prev, job->err, sizeof(job->err));
    if (job->policy != NULL && r->w->nall > 1)
        policy_share(job->policy); /* before any worker sees it */
    job->took = ev_time() - start;
    ev_async_send(r->w->loop, &r->done);
    return NULL;
}

/* Starts the worker for the waiters in r->now. */
static void reload_start(struct reload *r)
{
    struct job *job = &r->job;
    memset(&job->next, 0, sizeof(job->next));
    job->prev = r->w->policy;
    job->retired = r->retired;
    job->err[0] = '\0';
    r->retired = NULL;
    r->running = pthread_create(&r->thread, NULL, reload_work, r) == 0;
    if (!r->running) {
        r->retired = job->retired;
        snprintf(job->err, sizeof(job->err), "cannot start a thread");
        job->policy = NULL;
        ev_feed_event(r->w->loop, &r->done, EV_ASYNC);
    }
}

/* config_keep_fixed callback: says which setting a reload did not apply. */
static void reload_fixed_changed(void *arg, const char *name)
{
    (void)arg;
    log_warn("reload_restart_needed", "reload: {setting=%s} changed: restart to apply it", name);
}

/* Puts what w (worker 0) now uses in force in another worker x too. */
static void reload_follow(const struct worker *w, struct worker *x)
{
    x->generation = w->generation;
    x->limits = w->limits;
    cache_reload(x->cache, x->cfg, w->policy);
    x->policy = w->policy;
    x->tls_clients = w->tls_clients;
    x->pool.env.tls = w->pool.env.tls;
}

/* Puts the job's settings and policy in force in every worker, the others
 * stopped meanwhile; cannot fail. */
static void reload_apply(struct reload *r)
{
    struct worker *w = r->w;
    struct job *job = &r->job;
    ev_tstamp start = ev_time();
    worker_stop_others(w);
    config_keep_fixed(&job->next, w->cfg, reload_fixed_changed, NULL);
    config_deinit(w->cfg);
    *w->cfg = job->next;
    w->generation++;
    log_configure(w->cfg->log_level, w->cfg->log_format);
    w->limits.max_bulk_len = w->cfg->max_bulk_len;
    w->limits.max_multibulk_len = w->cfg->max_multibulk_len;
    w->limits.max_inline_len = (size_t)w->cfg->max_inline_len;
    policy_take_over(job->policy, w->policy);
    cache_reload(w->cache, w->cfg, job->policy);
    r->retired = w->policy;
    w->policy = job->policy;
    job->policy = NULL;
    reload_swap_tls(&w->tls_clients, &job->tls_clients);
    reload_swap_tls(&w->pool.env.tls, &job->tls_upstream);
    for (int i = 1; i < w->nall; i++)
        if (!worker_gone(w, i))
            reload_follow(w, w->all[i]);
    for (int i = 0; i < w->nall; i++)
        if (!worker_gone(w, i)) {
            observe_reload(w->all[i]);
            audit_reload(w->all[i]);
        }
    for (int i = 0; i < w->nall; i++)
        if (!worker_gone(w, i) &&
            (invalidation_set_sources(w->all[i]->inv, w->policy) < 0 ||
             (w->all[i]->route != NULL && route_set_sources(w->all[i]->route, w->policy) < 0)))
            log_error("out_of_memory",
                      "reload: out of memory registering the invalidation sources");
    worker_resume(w);
    log_notice(
        "reloaded",
        "reloaded: {rules=%zu} policy rules, read and built in {build_ms=%.0f} ms, applied in "
        "{apply_ms=%.2f} ms",
        policy_rule_count(w->policy), job->took * 1000, (ev_time() - start) * 1000);
}

/* Answers every waiter of w with reply[0..len) and empties w. */
static void reload_answer(struct reload *r, struct waiters *w, const char *reply, size_t len)
{
    uint64_t now_ms = (uint64_t)(ev_now(r->w->loop) * 1000);
    for (size_t i = 0; i < w->n; i++)
        w->reqs[i]->done(w->reqs[i], reply, len, now_ms);
    w->n = 0;
}

/* Answers the waiters with the job's outcome. */
static void reload_answer_job(struct reload *r, bool ok)
{
    char line[700];
    if (ok) {
        reload_answer(r, &r->now, "+OK\r\n", 5);
        return;
    }
    for (char *p = r->job.err; *p != '\0'; p++) {
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    }
    int n = snprintf(line, sizeof(line), "-ERR reload failed: %s\r\n", r->job.err);
    reload_answer(r, &r->now, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/* The worker finished: apply or report, answer, and run again if asked. */
static void reload_on_done(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop;
    (void)revents;
    struct reload *r = w->data;
    if (r->running)
        pthread_join(r->thread, NULL);
    r->running = false;
    bool ok = r->job.policy != NULL;
    r->runs++;
    if (ok) {
        reload_apply(r);
    } else {
        r->failed++;
        config_deinit(&r->job.next);
        SSL_CTX_free(r->job.tls_clients);
        SSL_CTX_free(r->job.tls_upstream);
        r->job.tls_clients = r->job.tls_upstream = NULL;
        log_error("reload_failed", "reload failed, running settings kept: {reason=%s}", r->job.err);
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

struct reload *reload_create(struct worker *w, reload_load_fn load, void *load_arg)
{
    struct reload *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->w = w;
    r->load = load;
    r->load_arg = load_arg;
    ev_async_init(&r->done, reload_on_done);
    r->done.data = r;
    ev_async_start(w->loop, &r->done);
    return r;
}

void reload_counts(const struct reload *r, uint64_t *runs, uint64_t *failed)
{
    *runs = r->runs;
    *failed = r->failed;
}

static int waiters_add(struct waiters *w, struct exchange *req)
{
    if (w->n == w->cap) {
        size_t cap = w->cap == 0 ? 4 : w->cap * 2;
        struct exchange **reqs = realloc(w->reqs, cap * sizeof(*reqs));
        if (reqs == NULL)
            return -1;
        w->reqs = reqs;
        w->cap = cap;
    }
    w->reqs[w->n++] = req;
    return 0;
}

int reload_request(struct reload *r, struct exchange *waiter)
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
        SSL_CTX_free(r->job.tls_clients);
        SSL_CTX_free(r->job.tls_upstream);
    }
    policy_destroy(&r->job.retired);
    policy_destroy(&r->retired);
    ev_async_stop(r->w->loop, &r->done);
    reload_answer(r, &r->now, ERR_EXIT, sizeof(ERR_EXIT) - 1);
    reload_answer(r, &r->next, ERR_EXIT, sizeof(ERR_EXIT) - 1);
    free(r->now.reqs);
    free(r->next.reqs);
    free(r);
    *rp = NULL;
}

/* runner.c - the MCP thread: messages in from the loop, answers back. */
#include "proxy/mcp/runner.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "proxy/client.h"
#include "proxy/lib/log.h"
#include "proxy/mcp/catalog.h"
#include "proxy/mcp/mcp.h"
#include "proxy/worker.h"

#define RUNNER_TIMEOUT_S 30 /* the longest one round trip to the proxy may take */

typedef enum { JOB_FREE, JOB_QUEUED, JOB_RUNNING, JOB_DONE } job_state_e;

struct runner_job {
    job_state_e state;
    unsigned long seq; /* queued in this order */
    char *body;
    size_t len;
    struct mcp_request req;
    char version[32];    /* req.version_header points here */
    char *method, *name; /* req.method_header and name_header: copies */
    runner_done_fn done;
    void *arg;
    char *answer;
    unsigned status;
};

struct runner {
    struct worker *w;
    struct catalog_env env;     /* the thread's: rc its end of the pair, the rest copied from the
                                   settings at start (the tools that connect on their own) */
    char *owned[4];             /* env's strings */
    volatile sig_atomic_t stop; /* env's: set at shutdown, the long tools end */
    struct mcp *mcp;            /* the thread's alone */
    redisContext *conn;         /* the thread's alone: its end of the pair */
    pthread_t thread;
    ev_async async; /* the thread wakes the loop: answers, or a socket to adopt */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    /* under lock: */
    bool stopping;
    int adopt_fd;  /* the loop's end of a new pair, not yet adopted; -1: none */
    int thread_fd; /* the thread's end, cut off at stop; -1: none */
    unsigned long seq;
    struct runner_job jobs[RUNNER_JOBS];
};

/* ---- on the thread ------------------------------------------------------------- */

/* A new socketpair: the loop adopts one end, the thread keeps the other. */
static redisContext *runner_connect(struct runner *r)
{
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0 ||
        fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0) {
        log_limited(LOG_ERROR, "mcp_pair_failed", "mcp: socketpair: {reason=%s}", strerror(errno));
        return NULL;
    }
    redisContext *rc = redisConnectFd(fds[1]);
    struct timeval tv = {RUNNER_TIMEOUT_S, 0};
    if (rc == NULL || rc->err != 0 || redisSetTimeout(rc, tv) != REDIS_OK) {
        close(fds[0]);
        if (rc != NULL)
            redisFree(rc);
        else
            close(fds[1]);
        return NULL;
    }
    pthread_mutex_lock(&r->lock);
    bool stopping = r->stopping; /* nobody would adopt it now: the loop has stopped */
    if (!stopping) {
        if (r->adopt_fd >= 0)
            close(r->adopt_fd);
        r->adopt_fd = fds[0];
        r->thread_fd = fds[1];
    }
    pthread_mutex_unlock(&r->lock);
    if (stopping) {
        close(fds[0]);
        redisFree(rc);
        return NULL;
    }
    ev_async_send(r->w->loop, &r->async);
    return rc;
}

static void runner_disconnect(struct runner *r)
{
    pthread_mutex_lock(&r->lock);
    r->thread_fd = -1;
    pthread_mutex_unlock(&r->lock);
    redisFree(r->conn);
    r->conn = NULL;
}

/* The connection to the proxy, made again when it has broken. */
static redisContext *runner_conn(struct runner *r)
{
    if (r->conn != NULL) {
        redisReply *pong = redisCommand(r->conn, "PING");
        bool alive = pong != NULL && pong->type == REDIS_REPLY_STATUS;
        freeReplyObject(pong);
        if (!alive)
            runner_disconnect(r);
    }
    if (r->conn == NULL)
        r->conn = runner_connect(r);
    return r->conn;
}

/* The oldest queued job, marked running; NULL when stopping. */
static struct runner_job *runner_next(struct runner *r)
{
    pthread_mutex_lock(&r->lock);
    struct runner_job *job = NULL;
    while (!r->stopping && job == NULL) {
        for (struct runner_job *j = r->jobs; j < r->jobs + RUNNER_JOBS; j++)
            if (j->state == JOB_QUEUED && (job == NULL || j->seq < job->seq))
                job = j;
        if (job == NULL)
            pthread_cond_wait(&r->wake, &r->lock);
    }
    if (job != NULL)
        job->state = JOB_RUNNING;
    pthread_mutex_unlock(&r->lock);
    return job;
}

static void *runner_main(void *arg)
{
    struct runner *r = arg;
    struct runner_job *job;
    while ((job = runner_next(r)) != NULL) {
        r->env.rc = runner_conn(r);
        unsigned status;
        char *answer = mcp_handle(r->mcp, job->body, job->len, &job->req, &r->env, &status);
        pthread_mutex_lock(&r->lock);
        job->answer = answer;
        job->status = status;
        job->state = JOB_DONE;
        pthread_mutex_unlock(&r->lock);
        ev_async_send(r->w->loop, &r->async);
    }
    if (r->conn != NULL)
        runner_disconnect(r);
    return NULL;
}

/* ---- on the loop ------------------------------------------------------------------ */

/* Hands a job's answer over and frees its slot. */
static void runner_finish(struct runner_job *job)
{
    runner_done_fn done = job->done;
    void *arg = job->arg;
    char *answer = job->answer;
    unsigned status = job->state == JOB_DONE ? job->status : 503;
    free(job->body);
    free(job->method);
    free(job->name);
    *job = (struct runner_job){.state = JOB_FREE};
    done(arg, answer, status);
}

static void runner_on_async(struct ev_loop *loop, ev_async *async, int revents)
{
    (void)loop;
    (void)revents;
    struct runner *r = (struct runner *)((char *)async - offsetof(struct runner, async));
    struct runner_job done[RUNNER_JOBS];
    size_t ndone = 0;
    pthread_mutex_lock(&r->lock);
    int fd = r->adopt_fd;
    r->adopt_fd = -1;
    for (struct runner_job *j = r->jobs; j < r->jobs + RUNNER_JOBS; j++) {
        if (j->state == JOB_DONE) {
            done[ndone++] = *j;
            *j = (struct runner_job){.state = JOB_FREE};
        }
    }
    pthread_mutex_unlock(&r->lock);
    struct client *c = fd >= 0 ? client_create(r->w, fd, NULL) : NULL;
    if (c != NULL)
        c->id.authed = true; /* the default user: the proxy's own tool */
    for (size_t i = 0; i < ndone; i++)
        runner_finish(&done[i]);
}

int runner_submit(struct runner *r, const char *body, size_t len, const struct mcp_request *req,
                  runner_done_fn done, void *arg)
{
    char *copy = malloc(len + 1);
    char *method = req->method_header != NULL ? strdup(req->method_header) : NULL;
    char *name = req->name_header != NULL ? strdup(req->name_header) : NULL;
    if (copy == NULL || (req->method_header != NULL && method == NULL) ||
        (req->name_header != NULL && name == NULL)) {
        free(copy);
        free(method);
        free(name);
        return -1;
    }
    memcpy(copy, body, len);
    copy[len] = '\0';
    pthread_mutex_lock(&r->lock);
    struct runner_job *job = r->jobs;
    while (job < r->jobs + RUNNER_JOBS && job->state != JOB_FREE)
        job++;
    if (job == r->jobs + RUNNER_JOBS) {
        pthread_mutex_unlock(&r->lock);
        free(copy);
        free(method);
        free(name);
        return -1;
    }
    *job = (struct runner_job){.state = JOB_QUEUED,
                               .seq = r->seq++,
                               .body = copy,
                               .len = len,
                               .req = *req,
                               .method = method,
                               .name = name,
                               .done = done,
                               .arg = arg};
    job->req.method_header = method;
    job->req.name_header = name;
    if (req->version_header != NULL) {
        snprintf(job->version, sizeof(job->version), "%s", req->version_header);
        job->req.version_header = job->version;
    }
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    return 0;
}

/* Frees what runner_create made but the thread, which has ended or never
 * began. */
static void runner_free(struct runner *r)
{
    ev_async_stop(r->w->loop, &r->async);
    mcp_destroy(&r->mcp);
    for (size_t i = 0; i < 4; i++)
        free(r->owned[i]);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->wake);
    free(r);
}

struct runner *runner_create(struct worker *w)
{
    size_t n;
    const struct mcp_tool *tools = catalog_tools(&n);
    struct runner *r = calloc(1, sizeof(*r));
    if (r == NULL || (r->mcp = mcp_create(tools, n, "nearcache", CATALOG_VERSION)) == NULL) {
        log_crit("out_of_memory", "mcp: out of memory");
        free(r);
        return NULL;
    }
    r->w = w;
    r->adopt_fd = r->thread_fd = -1;
    const char *from[] = {w->cfg->listen, w->cfg->clients_password, w->cfg->upstream_username,
                          w->cfg->upstream_password};
    for (size_t i = 0; i < 4; i++)
        r->owned[i] = from[i] != NULL ? strdup(from[i]) : NULL;
    r->env =
        (struct catalog_env){NULL, r->owned[0], r->owned[1], r->owned[2], r->owned[3], &r->stop};
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
    ev_async_init(&r->async, runner_on_async);
    ev_async_start(w->loop, &r->async);
    if (pthread_create(&r->thread, NULL, runner_main, r) != 0) {
        log_crit("mcp_thread_failed", "mcp: the MCP thread did not start");
        runner_free(r);
        return NULL;
    }
    return r;
}

void runner_destroy(struct runner **rp)
{
    struct runner *r = rp != NULL ? *rp : NULL;
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    r->stop = 1;
    if (r->thread_fd >= 0)
        shutdown(r->thread_fd, SHUT_RDWR); /* the loop will not answer now */
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    if (r->adopt_fd >= 0)
        close(r->adopt_fd);
    for (struct runner_job *j = r->jobs; j < r->jobs + RUNNER_JOBS; j++)
        if (j->state != JOB_FREE)
            runner_finish(j);
    runner_free(r);
    *rp = NULL;
}

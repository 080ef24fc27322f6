/* args.c - random access to the arguments of a scanned multibulk request. */
#include "proxy/proto/args.h"

struct resp_view resp_args_get(struct resp_args *a, int64_t i)
{
    const struct resp_request *req = a->req;

    if (req->kind != RESP_REQ_MULTIBULK || i < 0 || i >= req->argc)
        return (struct resp_view){0, 0};
    if (i < RESP_REQ_ARGS) {
        a->idx = i;
        a->view = req->argv[i];
        return a->view;
    }
    /* Walk on from where a is, or from the last kept view when that is behind. */
    if (a->idx < RESP_REQ_ARGS - 1 || a->idx > i) {
        a->idx = RESP_REQ_ARGS - 1;
        a->view = req->argv[RESP_REQ_ARGS - 1];
    }
    while (a->idx < i) {
        size_t off = a->view.off + a->view.len + 2;
        a->view = resp_args_walk(a->buf, &off);
        a->idx++;
    }
    return a->view;
}

struct resp_view resp_args_encoding(struct resp_view arg)
{
    size_t digits = 1, head;

    for (size_t n = arg.len; n >= 10; n /= 10)
        digits++;
    head = 1 + digits + 2; /* the scanner took the length only in canonical form */
    return (struct resp_view){arg.off - head, head + arg.len + 2};
}

/* scan.c - one SCAN cursor over every primary. */
#include "proxy/cluster/scan.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proto/args.h"
#include "proxy/proto/resp_write.h"

#define SCAN_NODE_BITS 8
#define SCAN_NODE_MASK ((1u << SCAN_NODE_BITS) - 1)

bool scan_is(const struct request *rq)
{
    /* nearly every request has keys: no name compared */
    return rq->cmd != NULL && rq->cmd->nspecs == 0 && strcmp(rq->cmd->name, "scan") == 0;
}

/* Parses an unsigned decimal cursor as Redis does (digits only, no sign). */
static bool scan_cursor(const char *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 20)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9' || v > (UINT64_MAX - (uint64_t)(p[i] - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *out = v;
    return true;
}

char *scan_request(const struct request *rq, int nnodes, int *node, size_t *len)
{
    struct resp_args a;
    uint64_t cursor;
    *node = -1;
    resp_args_init(&a, rq->buf, rq->frame);
    struct resp_view v = resp_args_get(&a, 1);
    if (rq->frame->argc < 2 || !scan_cursor(rq->buf + v.off, v.len, &cursor))
        return NULL;
    *node = (int)(cursor & SCAN_NODE_MASK);
    if (*node >= nnodes) {
        *node = -2;
        return NULL;
    }
    char num[24];
    int n = snprintf(num, sizeof(num), "%" PRIu64, cursor >> SCAN_NODE_BITS);
    char *out = malloc(rq->frame->len + RESP_HEADER_MAX + sizeof(num));
    if (out == NULL)
        return NULL;
    /* the request as it is, with the node's cursor in place of the client's */
    struct resp_view enc = resp_args_encoding(v);
    memcpy(out, rq->buf, enc.off);
    *len = enc.off + resp_write_bulk(out + enc.off, RESP_HEADER_MAX + sizeof(num), num, (size_t)n);
    size_t rest = enc.off + enc.len;
    memcpy(out + *len, rq->buf + rest, rq->frame->len - rest);
    *len += rq->frame->len - rest;
    return out;
}

char *scan_reply(const char *data, size_t len, int node, int nnodes, size_t *outlen)
{
    uint64_t next;
    const char *p = data;
    const char *end = data + len;
    /* "*2\r\n$<n>\r\n<cursor>\r\n" and the array of keys, as it is */
    if (len < 8 || memcmp(p, "*2\r\n$", 5) != 0)
        return NULL;
    char *nl = memchr(p + 5, '\n', (size_t)(end - p - 5));
    if (nl == NULL)
        return NULL;
    size_t clen = (size_t)strtoul(p + 5, NULL, 10);
    const char *cur = nl + 1;
    if (cur + clen + 2 > end || !scan_cursor(cur, clen, &next))
        return NULL;
    uint64_t client = next != 0           ? next << SCAN_NODE_BITS | (uint64_t)node
                      : node + 1 < nnodes ? (uint64_t)(node + 1)
                                          : 0;
    char num[24];
    int n = snprintf(num, sizeof(num), "%" PRIu64, client);
    const char *keys = cur + clen + 2;
    char *out = malloc(4 + RESP_HEADER_MAX + (size_t)n + 2 + (size_t)(end - keys));
    if (out == NULL)
        return NULL;
    memcpy(out, "*2\r\n", 4);
    *outlen = 4 + resp_write_bulk(out + 4, RESP_HEADER_MAX + (size_t)n + 2, num, (size_t)n);
    memcpy(out + *outlen, keys, (size_t)(end - keys));
    *outlen += (size_t)(end - keys);
    return out;
}

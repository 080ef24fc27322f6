/* resp.h - incremental, zero-copy scanner for the Redis protocol.
 *
 * Requests (multibulk and inline, with Redis's own framing rules and limits)
 * and replies (every RESP2 and RESP3 type, including push, attribute and the
 * streamed forms) are framed in place: the scanner never copies or allocates,
 * it reports offsets into the caller's buffer. It keeps its progress between
 * calls, so a frame that arrives in many reads is scanned once in total, not
 * once per read. Pure: no I/O, no event loop; safe to fuzz.
 */
#ifndef NEARCACHE_RESP_H
#define NEARCACHE_RESP_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    RESP_ERROR = -1,     /* malformed input; scanner->err says why (sticky until reset) */
    RESP_OK = 0,         /* one complete frame was scanned */
    RESP_INCOMPLETE = 1, /* valid so far; call again once more bytes have arrived */
} resp_status_e;

/* Hard limits, as in Redis (proto-max-bulk-len, multibulk length, PROTO_INLINE_MAX_SIZE). */
struct resp_limits {
    int64_t max_bulk_len;      /* longest bulk string; default 512 MB */
    int64_t max_multibulk_len; /* most elements in one aggregate; default INT32_MAX */
    size_t max_inline_len;     /* longest inline request or header line; default 64 KB */
};

extern const struct resp_limits RESP_LIMITS_DEFAULT;

/* Deepest nesting of streamed RESP3 aggregates (`*?` ... `.`) in one reply.
 * Counted aggregates may nest to any depth: they are framed in constant memory. */
#define RESP_MAX_STREAM_DEPTH 16

/* Scanner state for one connection direction. Fields are private to resp.c. */
struct resp_scanner {
    size_t pos;          /* bytes of the current frame already validated */
    size_t scan;         /* a header line's terminator was searched for up to here */
    int64_t pending;     /* request: arguments still to read; reply: values still expected */
    int64_t bulk;        /* length of the payload being read */
    int64_t count;       /* request: argc; reply: count of the top-level value */
    size_t value_off;    /* reply: offset of the top-level value (after attributes) */
    int phase;           /* where in the frame the scan stopped */
    int stream_depth;    /* reply: open streamed aggregates */
    uint32_t stream_map; /* reply: bit i set when streamed aggregate i is a map */
    char type;           /* reply: type byte of the top-level value, 0 until seen */
    int64_t stream_pending[RESP_MAX_STREAM_DEPTH]; /* `pending` saved at each open */
    const char *err; /* static message once RESP_ERROR was returned, else NULL */
};

/* Clears the state so the next call starts a new frame (also clears err). */
void resp_scanner_reset(struct resp_scanner *s);

/* A byte range inside a frame, as an offset from the frame's first byte. */
struct resp_view {
    size_t off;
    size_t len;
};

typedef enum {
    RESP_REQ_MULTIBULK, /* "*<n>\r\n" followed by n bulk strings */
    RESP_REQ_INLINE,    /* a line of space-separated words; see resp_inline_encode() */
    RESP_REQ_EMPTY,     /* "*0\r\n", "*-1\r\n" or an empty line: Redis ignores it, no reply */
} resp_req_kind_e;

/* Number of leading arguments whose views are kept in a scanned request. */
#define RESP_REQ_ARGS 8

struct resp_request {
    resp_req_kind_e kind;
    size_t len;   /* bytes of the whole frame, terminators included */
    int64_t argc; /* multibulk: number of arguments; otherwise 0 */
    /* multibulk: payloads of the first min(argc, RESP_REQ_ARGS) arguments;
     * inline: argv[0] is the line without its "\r\n" or "\n" */
    struct resp_view argv[RESP_REQ_ARGS];
};

/* Scans one request starting at buf[0], with len bytes available.
 * Follows Redis's processMultibulkBuffer/processInlineBuffer exactly: a frame
 * starting with '*' is multibulk, anything else is an inline line ending in
 * '\n'. Errors carry Redis's own messages ("Protocol error: invalid bulk
 * length", "Protocol error: expected '$', got 'x'", "Protocol error: too big
 * inline request", ...). After RESP_OK the scanner is ready for the next frame.
 * After RESP_INCOMPLETE call again with the same frame start (the buffer may
 * have moved) and more bytes. */
resp_status_e resp_scan_request(struct resp_scanner *s, const struct resp_limits *lim,
                                const char *buf, size_t len, struct resp_request *req);

/* Splits an inline line with Redis's sdssplitargs rules (quotes, \xHH and
 * the other escapes) and encodes it as a multibulk request in a malloc'd
 * buffer that the caller frees. Returns the buffer and sets *outlen and *argc;
 * returns NULL with *argc = 0 and *err = NULL when the line holds no words, and
 * NULL with *err = "Protocol error: unbalanced quotes in request" when it is
 * malformed. */
char *resp_inline_encode(const char *line, size_t len, size_t *outlen, int64_t *argc,
                         const char **err);

/* Returns the view of argument i (0-based, any i < req->argc) of a complete
 * multibulk request in buf: the views kept in req for the first ones, a walk of
 * the frame for the others (O(i) per call: to visit many, use args.h). */
struct resp_view resp_request_arg(const struct resp_request *req, const char *buf, int64_t i);

struct resp_reply {
    size_t len;       /* bytes of the whole frame, leading attributes included */
    size_t value_off; /* offset of the top-level value's type byte (after attributes) */
    char type;        /* that type byte: one of "+-:$*_,#(!=%~>" */
    int64_t count;    /* '$' '!' '=': payload length; '*' '%' '~' '>': elements (pairs
                         for '%'); -1 for RESP2 nulls and streamed forms; else 0 */
};

/* Scans one reply starting at buf[0]. Accepts every RESP2 and RESP3 type;
 * an attribute ('|') is framed together with the value that follows it. Bulk
 * payloads must end in "\r\n". After RESP_OK the scanner is ready for the next
 * frame. Same calling convention as resp_scan_request(). */
resp_status_e resp_scan_reply(struct resp_scanner *s, const struct resp_limits *lim,
                              const char *buf, size_t len, struct resp_reply *rep);

#endif

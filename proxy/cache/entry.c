/* entry.c - stored entries: head, stamps and the reply, LZ4 when it pays. */
#include "proxy/cache/entry.h"

#include <stdlib.h>
#include <string.h>

#include <lz4.h>

#include "proxy/lib/buf.h"

size_t entry_pack(struct entry_buf *b, struct entry_head *h, const struct policy_stamp *stamps,
                  const char *reply, size_t len, int64_t compress_over)
{
    size_t head = sizeof(*h) + h->nstamps * sizeof(*stamps);
    bool try_lz4 = compress_over > 0 && len >= (size_t)compress_over && len <= LZ4_MAX_INPUT_SIZE;
    size_t room = try_lz4 ? sizeof(uint32_t) + (size_t)LZ4_compressBound((int)len) : 0;
    if (buf_grow(&b->data, &b->cap, head + (room > len ? room : len), 4096) < 0)
        return 0;
    h->flags = 0;
    size_t body = len;
    if (try_lz4) {
        uint32_t raw = (uint32_t)len;
        int n = LZ4_compress_default(reply, b->data + head + sizeof(raw), (int)len,
                                     (int)(room - sizeof(raw)));
        if (n > 0 && sizeof(raw) + (size_t)n < len) {
            memcpy(b->data + head, &raw, sizeof(raw));
            h->flags = ENTRY_COMPRESSED;
            body = sizeof(raw) + (size_t)n;
        }
    }
    if (!(h->flags & ENTRY_COMPRESSED))
        memcpy(b->data + head, reply, len);
    memcpy(b->data, h, sizeof(*h));
    memcpy(b->data + sizeof(*h), stamps, h->nstamps * sizeof(*stamps));
    return head + body;
}

bool entry_inflate(struct entry_buf *raw, struct tier_view *reply)
{
    uint32_t n;
    memcpy(&n, reply->reply, sizeof(n));
    if (buf_grow(&raw->data, &raw->cap, n, 4096) < 0 ||
        LZ4_decompress_safe(reply->reply + sizeof(n), raw->data, (int)(reply->len - sizeof(n)),
                            (int)n) != (int)n)
        return false;
    *reply = (struct tier_view){raw->data, n};
    return true;
}

void entry_buf_free(struct entry_buf *b)
{
    free(b->data);
    *b = (struct entry_buf){0};
}

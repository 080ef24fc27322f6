/* tests/unit/proxy/lib/buf.c - receive buffers and send queues (proxy/lib/buf.h):
 * a large run of received bytes queued by reference to the rbuf's block, the
 * rbuf reading on into fresh memory without touching what it lent, and the
 * block freed by whichever of the two lets go of it last. */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/lib/buf.h"

#include "tests/unit/leaks.h"

TestSuite(buf, .fini = check_leaks);

/* A socket pair: s[0] is written by the test, s[1] read into the rbuf. */
static void pair(int s[2])
{
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
    int big = 4 * 1024 * 1024;
    setsockopt(s[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    setsockopt(s[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    fcntl(s[1], F_SETFL, O_NONBLOCK);
}

/* Sends len bytes of the pattern that starts at seed. */
static void send_pattern(int fd, size_t len, unsigned seed)
{
    char *p = malloc(len);
    for (size_t i = 0; i < len; i++)
        p[i] = (char)(seed + i * 7);
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, p + off, len - off);
        cr_assert_gt(n, 0);
        off += (size_t)n;
    }
    free(p);
}

static bool is_pattern(const char *p, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != (char)(seed + i * 7))
            return false;
    return true;
}

/* Reads until the rbuf holds at least len bytes. */
static void read_until(struct rbuf *b, int fd, size_t len)
{
    while (rbuf_len(b) < len)
        cr_assert_gt(rbuf_read(b, fd), 0);
}

/* Every queued byte, gathered, and checked against the pattern. */
static bool queued_is(const struct obuf *o, size_t len, unsigned seed)
{
    struct iovec iov[64];
    int cnt = obuf_peek(o, iov, 64, SIZE_MAX);
    char *all = malloc(len + 1);
    size_t n = 0;
    for (int i = 0; i < cnt && n <= len; i++) {
        size_t k = iov[i].iov_len <= len + 1 - n ? iov[i].iov_len : len + 1 - n;
        memcpy(all + n, iov[i].iov_base, k);
        n += k;
    }
    bool ok = n == len && o->len == len && is_pattern(all, len, seed);
    free(all);
    return ok;
}

Test(buf, a_large_run_is_queued_by_reference_and_survives_the_next_reads)
{
    int s[2];
    pair(s);
    struct rbuf in = {0};
    struct obuf out = {0};
    send_pattern(s[0], 100000, 1);
    read_until(&in, s[1], 100000);
    const char *at = rbuf_head(&in);
    cr_assert_eq(obuf_append(&out, at, 100000), 0);
    struct iovec iov[4];
    cr_assert_eq(obuf_peek(&out, iov, 4, SIZE_MAX), 1);
    cr_assert_eq(iov[0].iov_base, at, "no copy: the chunk points into the rbuf");
    rbuf_consume(&in, 100000);
    /* The next frames go elsewhere: the queued bytes stay as they were. */
    for (unsigned i = 0; i < 4; i++) {
        send_pattern(s[0], 70000, 100 + i);
        read_until(&in, s[1], 70000);
        cr_assert(is_pattern(rbuf_head(&in), 70000, 100 + i));
        rbuf_consume(&in, 70000);
    }
    cr_assert(queued_is(&out, 100000, 1));
    rbuf_deinit(&in);
    cr_assert(queued_is(&out, 100000, 1), "the chunk holds the block after the rbuf let go");
    obuf_consume(&out, 100000);
    cr_assert_eq(out.len, 0);
    obuf_deinit(&out);
    close(s[0]);
    close(s[1]);
}

Test(buf, bytes_after_a_lent_frame_move_with_the_rbuf)
{
    int s[2];
    pair(s);
    struct rbuf in = {0};
    struct obuf out = {0};
    /* A large frame and the start of the next one arrive together. */
    send_pattern(s[0], 90000, 3);
    send_pattern(s[0], 20000, 4);
    read_until(&in, s[1], 110000);
    cr_assert_eq(obuf_append(&out, rbuf_head(&in), 90000), 0);
    rbuf_consume(&in, 90000);
    /* The rest of the second frame: the rbuf makes room without moving its
     * bytes over the lent ones. */
    send_pattern(s[0], 200000, 5);
    read_until(&in, s[1], 220000);
    cr_assert(is_pattern(rbuf_head(&in), 20000, 4));
    cr_assert(is_pattern(rbuf_head(&in) + 20000, 200000, 5));
    cr_assert(queued_is(&out, 90000, 3));
    /* A run of it queued partly written, then the rest. */
    cr_assert_eq(obuf_append(&out, rbuf_head(&in) + 20000, 200000), 0);
    obuf_consume(&out, 95000);
    struct iovec iov[4];
    cr_assert_eq(obuf_peek(&out, iov, 4, SIZE_MAX), 1);
    cr_assert_eq(iov[0].iov_len, 195000);
    cr_assert(is_pattern(iov[0].iov_base, 195000, 5 + 5000 * 7));
    rbuf_consume(&in, 220000);
    obuf_deinit(&out);
    rbuf_deinit(&in);
    close(s[0]);
    close(s[1]);
}

Test(buf, small_runs_and_foreign_bytes_are_copied)
{
    int s[2];
    pair(s);
    struct rbuf in = {0};
    struct obuf out = {0};
    send_pattern(s[0], 40000, 6);
    read_until(&in, s[1], 40000);
    struct iovec iov[4];
    /* Under OBUF_SHARE_MIN: a copy. */
    cr_assert_eq(obuf_append(&out, rbuf_head(&in), OBUF_SHARE_MIN - 1), 0);
    cr_assert_eq(obuf_peek(&out, iov, 4, SIZE_MAX), 1);
    cr_assert_neq(iov[0].iov_base, rbuf_head(&in));
    obuf_deinit(&out);
    /* Bytes that are not the lender's, however many: a copy. */
    char *other = malloc(100000);
    memset(other, 'x', 100000);
    cr_assert_eq(obuf_append(&out, other, 100000), 0);
    cr_assert_eq(obuf_peek(&out, iov, 4, SIZE_MAX), 1);
    cr_assert_neq(iov[0].iov_base, other);
    free(other);
    obuf_deinit(&out);
    /* After the lender let go of its block, its old bytes are not lent. */
    rbuf_deinit(&in);
    char copy[OBUF_SHARE_MIN];
    memset(copy, 'y', sizeof(copy));
    cr_assert_eq(obuf_append(&out, copy, sizeof(copy)), 0);
    obuf_deinit(&out);
    close(s[0]);
    close(s[1]);
}

Test(buf, a_run_that_is_a_small_part_of_a_large_block_is_copied)
{
    int s[2];
    pair(s);
    struct rbuf in = {0};
    struct obuf out = {0};
    send_pattern(s[0], 2000000, 7);
    read_until(&in, s[1], 2000000);
    cr_assert_gt(in.cap, 4 * 40000);
    cr_assert_eq(obuf_append(&out, rbuf_head(&in), 40000), 0);
    struct iovec iov[4];
    cr_assert_eq(obuf_peek(&out, iov, 4, SIZE_MAX), 1);
    cr_assert_neq(iov[0].iov_base, rbuf_head(&in), "would hold 50 times its size");
    obuf_deinit(&out);
    rbuf_deinit(&in);
    close(s[0]);
    close(s[1]);
}

Test(buf, one_block_lent_to_many_queues_is_freed_by_the_last)
{
    int s[2];
    pair(s);
    struct rbuf in = {0};
    struct obuf out[3] = {{0}};
    send_pattern(s[0], 150000, 8);
    read_until(&in, s[1], 150000);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(obuf_append(&out[i], rbuf_head(&in) + 50000 * i, 50000), 0);
    rbuf_consume(&in, 150000);
    cr_assert(queued_is(&out[1], 50000, 8 + 50000 * 7));
    obuf_deinit(&out[1]);
    obuf_deinit(&out[0]);
    cr_assert(queued_is(&out[2], 50000, 8 + 100000 * 7));
    obuf_deinit(&out[2]);
    rbuf_deinit(&in);
    close(s[0]);
    close(s[1]);
}

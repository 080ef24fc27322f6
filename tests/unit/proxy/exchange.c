/* Unit tests for proxy/exchange.c: exchanges and their reuse. */
#include <criterion/criterion.h>

#include "proxy/exchange.h"

static int calls;

static void done(struct exchange *x, const char *data, size_t len, uint64_t now_ms)
{
    (void)data;
    (void)len;
    (void)now_ms;
    calls++;
    exchange_destroy(&x);
    cr_expect_null(x);
}

Test(exchange, created_clean_and_reused)
{
    int arg;
    struct exchange *x = exchange_create(done, &arg);
    cr_assert_not_null(x);
    cr_expect_eq(x->done, done);
    cr_expect_eq(x->arg, &arg);
    x->index = 7;
    x->blocking = true;
    x->next = x;
    x->done(x, "+OK\r\n", 5, 0);
    cr_expect_eq(calls, 1);
    struct exchange *y = exchange_create(done, NULL);
    cr_expect_eq(y, x, "the freed exchange is taken again");
    cr_expect_eq(y->index, 0);
    cr_expect(!y->blocking);
    cr_expect_null(y->next);
    exchange_destroy(&y);
    exchange_destroy(&y); /* NULL is accepted */
}

/* exchange.c - the free list of exchanges (exchange.h takes and gives back). */
#include "proxy/exchange.h"

_Thread_local struct exchange *exchange_free_list;
_Thread_local size_t exchange_free_count;

void exchange_discard(struct exchange *x, const char *data, size_t len, uint64_t now_ms)
{
    (void)data;
    (void)len;
    (void)now_ms;
    exchange_destroy(&x);
}

void exchange_free_kept(void)
{
    while (exchange_free_list != NULL) {
        struct exchange *x = exchange_free_list;
        exchange_free_list = x->next;
        free(x);
    }
    exchange_free_count = 0;
}

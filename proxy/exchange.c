/* exchange.c - exchanges and their free list. */
#include "proxy/exchange.h"

#include <stdlib.h>

/* Freed exchanges kept for reuse: one is taken and given back for nearly
 * every forwarded request. */
#define EXCHANGE_FREE_KEEP 4096

static struct exchange *free_list; /* linked by next */
static size_t free_count;

struct exchange *exchange_create(exchange_done_fn done, void *arg)
{
    struct exchange *x = free_list;
    if (x != NULL) {
        free_list = x->next;
        free_count--;
    } else if ((x = malloc(sizeof(*x))) == NULL) {
        return NULL;
    }
    *x = (struct exchange){NULL, done, arg, 0, 0, false};
    return x;
}

void exchange_destroy(struct exchange **x)
{
    if (x == NULL || *x == NULL)
        return;
    if (free_count >= EXCHANGE_FREE_KEEP) {
        free(*x);
    } else {
        (*x)->next = free_list;
        free_list = *x;
        free_count++;
    }
    *x = NULL;
}

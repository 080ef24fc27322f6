/* exchange.c - the free list of exchanges (exchange.h takes and gives back). */
#include "proxy/exchange.h"

struct exchange *exchange_free_list;
size_t exchange_free_count;

/* fuzz.h - what the fuzz targets share. */
#ifndef NEARCACHE_TESTS_FUZZ_H
#define NEARCACHE_TESTS_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

/* Aborts, which libFuzzer reports as a crash with the input, unless cond. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif

/* hash.h - the non-cryptographic hashes of nearcache, one copy each.
 *
 * All are stable: the same bytes give the same number in every process and
 * every build (the Murmur reads 8 bytes at a time in host order, so it is
 * stable per byte order). Inline: they run on every key of every request.
 */
#ifndef NEARCACHE_HASH_H
#define NEARCACHE_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define HASH_FNV32_OFFSET 2166136261u
#define HASH_FNV32_PRIME  16777619u
#define HASH_FNV64_OFFSET 14695981039346656037ull
#define HASH_FNV64_PRIME  1099511628211ull

/* FNV-1a (32-bit) of data[0, n), continuing from h: start with
 * HASH_FNV32_OFFSET, or pass the result of an earlier call to hash several
 * pieces as if they were one. */
static inline uint32_t hash_fnv1a32_continue(uint32_t h, const void *data, size_t n)
{
    const unsigned char *p = data;

    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * HASH_FNV32_PRIME;
    return h;
}

/* FNV-1a (32-bit) of data[0, n). */
static inline uint32_t hash_fnv1a32(const void *data, size_t n)
{
    return hash_fnv1a32_continue(HASH_FNV32_OFFSET, data, n);
}

/* FNV-1a (64-bit) of data[0, n), continuing from h (see the 32-bit form). */
static inline uint64_t hash_fnv1a64_continue(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;

    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * HASH_FNV64_PRIME;
    return h;
}

/* FNV-1a (64-bit) of data[0, n). */
static inline uint64_t hash_fnv1a64(const void *data, size_t n)
{
    return hash_fnv1a64_continue(HASH_FNV64_OFFSET, data, n);
}

/* MurmurHash64A (Austin Appleby, public domain) of data[0, n) with a seed:
 * 8 bytes per step, fast for the short keys Redis sees. */
static inline uint64_t hash_murmur64a(const void *data, size_t n, uint64_t seed)
{
    const uint64_t m = 0xc6a4a7935bd1e995ull;
    const int r = 47;
    const unsigned char *p = data;
    uint64_t h = seed ^ (n * m);
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        uint64_t k;
        memcpy(&k, p + i, 8);
        k *= m;
        k ^= k >> r;
        k *= m;
        h ^= k;
        h *= m;
    }
    if (i < n) {
        for (size_t j = n - i; j > 0; j--)
            h ^= (uint64_t)p[i + j - 1] << (8 * (j - 1));
        h *= m;
    }
    h ^= h >> r;
    h *= m;
    h ^= h >> r;
    return h;
}

#endif

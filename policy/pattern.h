/* pattern.h - key patterns for policy rules: Redis globs with named captures,
 * and an index that finds the first rule whose pattern matches a key.
 *
 * Glob syntax is that of Redis's stringmatchlen (KEYS, SCAN MATCH), case
 * sensitive and binary safe: '*' any run of bytes, '?' one byte, '[abc]' one
 * byte of a class, '[^abc]' one byte outside it, 'a-z' a range inside a class
 * (reversed ends are swapped), '\x' the byte x literally, also inside a class.
 * Differences from Redis: an unterminated '[' is a compile error (Redis runs
 * the class to the end of the pattern), and range ends compare as unsigned
 * bytes (Redis compares them as signed char on x86).
 *
 * Captures: '{name}' (name: 1-31 bytes of [A-Za-z0-9_]) matches a segment, one
 * or more bytes up to, not including, the first occurrence of the literal byte
 * that follows it in the pattern ("user:{id}:profile": id is the bytes between
 * the first two ':'). A capture that ends the pattern takes the rest of the
 * key (one or more bytes). A capture followed by anything but a literal byte
 * or the end is a compile error. '\{' and '\}' are literal braces; an
 * unescaped '}' outside a capture is an error. Inside a class braces are
 * ordinary class members.
 *
 * Matching is iterative with backtracking only to the last '*': O(n * m) in
 * the worst case for a key of n bytes and a pattern of m items, never
 * exponential. Pure: no I/O.
 */
#ifndef NEARCACHE_PATTERN_H
#define NEARCACHE_PATTERN_H

#include <stdbool.h>
#include <stddef.h>

#define PATTERN_MAX_CAPTURES 8
#define PATTERN_NAME_MAX     31

/* pattern_expand error codes. */
#define PATTERN_ENOCAP   (-1) /* the template names a capture absent from caps */
#define PATTERN_ENOSPACE (-2) /* the result and its NUL do not fit in out */

struct pattern;
struct pattern_set;

/* One capture of a match: name borrowed from the pattern that matched (valid
 * while it lives, NULL for an unused slot), value as an offset and length
 * into the key that matched. */
struct pattern_capture {
    const char *name;
    size_t name_len;
    size_t off;
    size_t len;
};

/* Compiles text[0..len). Returns a pattern owned by the caller (free with
 * pattern_destroy), or NULL with a one-line reason in err (NUL-terminated,
 * truncated to errlen) on a syntax error or when out of memory. */
struct pattern *pattern_compile(const char *text, size_t len, char *err, size_t errlen);

/* Frees *p (NULL allowed) and sets *p to NULL. */
void pattern_destroy(struct pattern **p);

/* Whether key[0..klen) matches p. On a match, when caps is not NULL, fills
 * caps[0..PATTERN_MAX_CAPTURES): capture i of the pattern (in text order) in
 * caps[i], later slots with name NULL. Without a match caps is left untouched. */
bool pattern_match(const struct pattern *p, const char *key, size_t klen,
                   struct pattern_capture *caps);

/* The literal (unescaped) bytes before the first wildcard, class or capture:
 * every key p matches starts with them. Sets *prefix to them (borrowed from
 * p, not NUL-terminated) and returns their length. */
size_t pattern_literal_prefix(const struct pattern *p, const char **prefix);

/* Number of captures in p. */
size_t pattern_capture_count(const struct pattern *p);

/* Writes p's text into out with each '{name}' replaced by the bytes of the
 * capture called name in caps (as filled by pattern_match on key), escaping
 * each of * ? [ ] \ { } with '\' so the result is a pattern matching those
 * bytes literally. NUL-terminates out. Returns the length written (without
 * the NUL; the result may contain NUL bytes from the key), PATTERN_ENOCAP or
 * PATTERN_ENOSPACE (out then holds no usable result). */
int pattern_expand(const struct pattern *p, const struct pattern_capture *caps, const char *key,
                   char *out, size_t outlen);

/* Writes p's text into out with each '{name}' replaced by '*', NUL-terminated:
 * a pattern matching every key that p or any expansion of p (pattern_expand)
 * matches. Returns the length written (without the NUL) or PATTERN_ENOSPACE. */
int pattern_widen(const struct pattern *p, char *out, size_t outlen);

/* An empty set, owned by the caller (free with pattern_set_destroy), or NULL
 * when out of memory. */
struct pattern_set *pattern_set_create(void);

/* Frees *set (NULL allowed) and sets *set to NULL. Patterns and values are
 * borrowed and left alone. */
void pattern_set_destroy(struct pattern_set **set);

/* Appends pattern (borrowed: it must outlive the set) with value. Insertion
 * order is rule order. Returns 0, or -1 when out of memory or after
 * pattern_set_build. */
int pattern_set_add(struct pattern_set *set, const struct pattern *pattern, void *value);

/* Builds the index over the patterns added so far: groups them by literal
 * prefix in a hash table and records the distinct prefix lengths. Returns 0,
 * or -1 when out of memory (the set is then unusable). */
int pattern_set_build(struct pattern_set *set);

/* The value of the first pattern in insertion order that matches key, or
 * NULL (also when the set is not built). Fills caps as pattern_match does for
 * that pattern. Only patterns whose literal prefix is a prefix of key are
 * tried (empty prefixes always are): cost O(min(klen, P) + D * P) for hashing
 * and probing, with P the longest prefix and D the number of distinct prefix
 * lengths, plus the matching of those candidates with an index below the
 * best match found so far; independent of the number of rules whose prefix
 * does not fit the key. */
void *pattern_set_first(const struct pattern_set *set, const char *key, size_t klen,
                        struct pattern_capture *caps);

/* Called by pattern_set_each for each matching pattern: its value and its
 * captures (as pattern_match fills them, borrowed for the call). Returns true
 * to stop the walk. */
typedef bool (*pattern_each_fn)(void *arg, void *value, const struct pattern_capture *caps);

/* Calls fn for every pattern of the set that matches key, in insertion order,
 * until fn returns true. Returns the number of calls made (0 also when the
 * set is not built). The candidates are those of pattern_set_first (patterns
 * whose literal prefix is a prefix of key), merged in insertion order from
 * their prefix groups: the same hashing and probing cost, plus the matching
 * of every candidate up to the one where fn stops. No allocation. */
size_t pattern_set_each(const struct pattern_set *set, const char *key, size_t klen,
                        pattern_each_fn fn, void *arg);

/* The name of capture i < pattern_capture_count(p): borrowed from p, not
 * NUL-terminated; sets *len. */
const char *pattern_capture_name(const struct pattern *p, size_t i, size_t *len);

/* Whether capture i < pattern_capture_count(p) is followed by a literal byte,
 * its stop byte (stored in *stop); false when it ends the pattern. */
bool pattern_capture_stop(const struct pattern *p, size_t i, unsigned char *stop);

/* Whether nothing but literal bytes and captures precedes p's last capture
 * (true without captures). Then the captures of every key p matches are
 * bound one way only: each ends at the first occurrence of its stop byte. */
bool pattern_captures_anchored(const struct pattern *p);

#endif

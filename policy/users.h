/* users.h - the users clients authenticate as at the proxy (clients.users,
 * clients.password) and what each may do.
 *
 * A user has a name, the SHA-256 of its password (as Redis ACL files keep
 * it: "#<hex>"), and optionally the key patterns (pattern.h globs) and the
 * commands (classes read/write/admin and command names) it is limited to, so
 * that a sidecar holding the real Redis credentials gives each app only its
 * keys. Denials are Redis's own NOPERM replies. Passwords are compared as
 * digests, in constant time, and never kept in clear. Pure: no I/O.
 */
#ifndef NEARCACHE_POLICY_USERS_H
#define NEARCACHE_POLICY_USERS_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/proto/request.h"

#define USERS_DIGEST_LEN 32 /* SHA-256 */
#define USERS_REPLY_MAX  256

struct users;
struct user;

/* One user as the config file gives it. */
struct users_entry {
    const char *name;
    const char *password;        /* in clear, or NULL */
    const char *password_sha256; /* 64 hex digits, or NULL; exactly one of the two */
    const char *const *keys;     /* patterns; none: every key */
    size_t nkeys;
    const char *const *commands; /* classes and names; none: every command */
    size_t ncommands;
};

/* An empty set of users, or NULL when out of memory. */
struct users *users_create(void);

/* Frees *u and sets it to NULL; NULL and *u NULL accepted. */
void users_destroy(struct users **u);

/* Adds a user. Returns 0, or -1 with "field: reason" in err (a name empty,
 * repeated or not printable, both or neither password, a digest that is not
 * 64 hex digits, a bad pattern or command). */
int users_add(struct users *u, const struct users_entry *e, char *err, size_t errlen);

/* The number of users (u may be NULL: 0). */
size_t users_count(const struct users *u);

/* The SHA-256 of data[0, len). */
void users_digest(const char *data, size_t len, unsigned char out[USERS_DIGEST_LEN]);

/* Whether pass hashes to digest, compared in constant time. */
bool users_digest_matches(const unsigned char digest[USERS_DIGEST_LEN], const char *pass,
                          size_t len);

/* The user named name[0, len) if pass is its password, else NULL (u may be
 * NULL). The time taken does not depend on the password. */
const struct user *users_login(const struct users *u, const char *name, size_t len,
                               const char *pass, size_t plen);

/* The user named name, or NULL: to find a logged-in user again after a
 * reload replaced the users. */
const struct user *users_find(const struct users *u, const char *name, size_t len);

/* The user's name (NUL-terminated). */
const char *user_name(const struct user *user);

/* Whether the user may run r: a command outside its commands, or a key
 * outside its patterns (or keys that cannot be told: scripts, flushes, SORT
 * with BY or GET), gets Redis's NOPERM reply in reply (USERS_REPLY_MAX
 * bytes), whose length is returned; 0 when allowed. r's command may be
 * unknown (a subcommand the table does not list): allowed only to a user
 * without command limits. */
size_t user_check(const struct user *user, struct request *r, char *reply);

#endif

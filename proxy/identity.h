/* identity.h - what a client says about itself: its name, its library, its
 * credentials and the protocol it speaks.
 *
 * The proxy keeps this per client rather than on a Redis connection, so that
 * a client that names itself (CLIENT SETNAME, HELLO ... SETNAME), reports its
 * library (CLIENT SETINFO), authenticates or says HELLO keeps its shared
 * connection and the local tier. Validation and replies are Redis's own.
 * Pure: parsing, checks and the state; client.c does the I/O.
 */
#ifndef NEARCACHE_IDENTITY_H
#define NEARCACHE_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/proto/resp.h"

struct config;
struct user;

struct identity {
    char *name; /* CLIENT SETNAME's; NULL: none */
    size_t name_len;
    char *lib_name; /* CLIENT SETINFO LIB-NAME's (Redis 7.2+), NUL-terminated; NULL: none */
    char *lib_ver;  /* CLIENT SETINFO LIB-VER's */
    bool authed;    /* may run commands: authenticated, or no client authentication */
    const struct user *user; /* the clients.users user it is, NULL: default or none */
    char *user_name;         /* its name, to find it again after a reload */
    uint64_t generation;     /* the reload user was found in */
};

/* Sets up the identity of a new client: authenticated unless client
 * authentication is on. */
void identity_init(struct identity *id, const struct config *cfg);

/* AUTH [user] pass, or HELLO's AUTH, with client authentication on: checks
 * the credentials against clients.password (user "default" or none) and
 * clients.users in constant time. True: authenticated as that user (a
 * failure keeps the previous state, as Redis does); -1 when out of memory. */
int identity_login(struct identity *id, const struct config *cfg, uint64_t generation,
                   const char *buf, const struct resp_view *user, struct resp_view pass);

/* RESET: back to a new client's state, name and user dropped (library info
 * kept, as Redis keeps it). */
void identity_reset(struct identity *id, const struct config *cfg);

/* After a reload (generation differs from the one the user was found in):
 * the user is found again by name in cfg; a user gone is logged out. */
void identity_refresh(struct identity *id, const struct config *cfg, uint64_t generation);

/* Whether s[0, len) may be a client name or library attribute: printable
 * ASCII without spaces, as Redis requires. */
bool identity_valid_name(const char *s, size_t len);

/* Sets the name (len 0: none). -1 when out of memory, the name unchanged. */
int identity_set_name(struct identity *id, const char *s, size_t len);

/* CLIENT SETINFO attr value (argc 4): sets the attribute and writes Redis's
 * reply (+OK, or its error) into reply (at least 256 bytes). Returns the
 * reply's length, 0 when out of memory. */
size_t identity_setinfo(struct identity *id, const char *buf, const struct resp_request *req,
                        char *reply);

/* Frees what the identity holds. */
void identity_free(struct identity *id);

/* A HELLO the proxy can answer: HELLO protover [AUTH user pass] [SETNAME
 * name] with protover 2 or 3 and a valid name. */
struct hello {
    int resp; /* 2 or 3 */
    bool auth;
    struct resp_view user, pass;
    bool setname;
    struct resp_view name;
};

/* Parses a HELLO request. False for anything else (no protover, a bad one, an
 * unknown or incomplete option, an invalid name): Redis judges those. */
bool hello_parse(const char *buf, const struct resp_request *req, struct hello *h);

/* Whether user (NULL: "default") and pass, in buf, are the proxy's own
 * upstream credentials. Compared in time independent of where they differ. */
bool identity_upstream_creds(const struct config *cfg, const char *buf,
                             const struct resp_view *user, struct resp_view pass);

#endif

/* users.c - users, password digests and permission checks. */
#include "policy/users.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/check.h"
#include "policy/pattern.h"
#include "policy/rules.h"
#include "proxy/proto/args.h"

struct user {
    char *name;
    unsigned char digest[USERS_DIGEST_LEN];
    struct pattern **keys; /* nkeys; none: every key */
    size_t nkeys;
    struct cmd_filter commands; /* empty: every command */
};

struct users {
    struct user *list;
    size_t n;
};

struct users *users_create(void)
{
    return calloc(1, sizeof(struct users));
}

static void user_free(struct user *user)
{
    free(user->name);
    for (size_t i = 0; i < user->nkeys; i++)
        pattern_destroy(&user->keys[i]);
    free(user->keys);
    free(user->commands.names);
}

void users_destroy(struct users **u)
{
    if (u == NULL || *u == NULL)
        return;
    for (size_t i = 0; i < (*u)->n; i++)
        user_free(&(*u)->list[i]);
    free((*u)->list);
    free(*u);
    *u = NULL;
}

size_t users_count(const struct users *u)
{
    return u != NULL ? u->n : 0;
}

void users_digest(const char *data, size_t len, unsigned char out[USERS_DIGEST_LEN])
{
    unsigned int n = USERS_DIGEST_LEN;
    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1)
        abort(); /* SHA-256 is always there: only memory could run out */
}

bool users_digest_matches(const unsigned char digest[USERS_DIGEST_LEN], const char *pass,
                          size_t len)
{
    unsigned char d[USERS_DIGEST_LEN];
    users_digest(pass, len, d);
    return CRYPTO_memcmp(d, digest, USERS_DIGEST_LEN) == 0;
}

/* Parses 64 hex digits into out. */
static bool hex_digest(const char *hex, unsigned char out[USERS_DIGEST_LEN])
{
    if (strlen(hex) != 2 * USERS_DIGEST_LEN)
        return false;
    for (size_t i = 0; i < USERS_DIGEST_LEN; i++) {
        unsigned v = 0;
        for (size_t j = 0; j < 2; j++) {
            char c = hex[2 * i + j];
            unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                         : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                         : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                                : 16;
            if (d == 16)
                return false;
            v = v * 16 + d;
        }
        out[i] = (unsigned char)v;
    }
    return true;
}

static int user_fill(struct user *user, const struct users_entry *e, char *err, size_t errlen)
{
    if ((user->name = strdup(e->name)) == NULL)
        return rules_set_err(err, errlen, "name: out of memory"), -1;
    if ((e->password == NULL) == (e->password_sha256 == NULL))
        return rules_set_err(err, errlen, "password: give password or password_sha256"), -1;
    if (e->password != NULL)
        users_digest(e->password, strlen(e->password), user->digest);
    else if (!hex_digest(e->password_sha256, user->digest))
        return rules_set_err(err, errlen, "password_sha256: expected 64 hex digits"), -1;
    if (e->nkeys > 0 && (user->keys = calloc(e->nkeys, sizeof(*user->keys))) == NULL)
        return rules_set_err(err, errlen, "keys: out of memory"), -1;
    for (; user->nkeys < e->nkeys; user->nkeys++) {
        char why[128];
        const char *k = e->keys[user->nkeys];
        if ((user->keys[user->nkeys] = pattern_compile(k, strlen(k), why, sizeof(why))) == NULL)
            return rules_set_err(err, errlen, "keys: %s", why), -1;
    }
    return check_filter_init(&user->commands, e->commands, e->ncommands,
                             COMMAND_CLASS_READ | COMMAND_CLASS_WRITE | COMMAND_CLASS_ADMIN, err,
                             errlen);
}

int users_add(struct users *u, const struct users_entry *e, char *err, size_t errlen)
{
    size_t len = e->name != NULL ? strlen(e->name) : 0;
    bool printable = len > 0;
    for (size_t i = 0; i < len; i++)
        printable = printable && e->name[i] > ' ' && e->name[i] < 0x7f;
    if (!printable) {
        rules_set_err(err, errlen, "name: must be printable, without spaces");
        return -1;
    }
    if (users_find(u, e->name, len) != NULL) {
        rules_set_err(err, errlen, "name: user '%s' given twice", e->name);
        return -1;
    }
    struct user *list = realloc(u->list, (u->n + 1) * sizeof(*list));
    if (list == NULL) {
        rules_set_err(err, errlen, "out of memory");
        return -1;
    }
    u->list = list;
    struct user *user = &list[u->n];
    memset(user, 0, sizeof(*user));
    if (user_fill(user, e, err, errlen) != 0) {
        user_free(user);
        return -1;
    }
    u->n++;
    return 0;
}

const struct user *users_find(const struct users *u, const char *name, size_t len)
{
    for (size_t i = 0; u != NULL && i < u->n; i++)
        if (strlen(u->list[i].name) == len && memcmp(u->list[i].name, name, len) == 0)
            return &u->list[i];
    return NULL;
}

const struct user *users_login(const struct users *u, const char *name, size_t len,
                               const char *pass, size_t plen)
{
    static const unsigned char NONE[USERS_DIGEST_LEN];
    const struct user *user = users_find(u, name, len);
    /* An unknown user costs the same digest as a known one. */
    bool ok = users_digest_matches(user != NULL ? user->digest : NONE, pass, plen);
    return ok && user != NULL ? user : NULL;
}

const char *user_name(const struct user *user)
{
    return user->name;
}

static bool key_allowed(const struct user *user, const char *key, size_t len)
{
    for (size_t i = 0; i < user->nkeys; i++)
        if (pattern_match(user->keys[i], key, len, NULL))
            return true;
    return false;
}

/* Whether r may read or write keys it does not name: a script (Redis checks
 * its keys as it runs, the proxy cannot), a flush or a swap, or a SORT that
 * reads other keys by pattern (BY, GET). */
static bool undeclared_keys(const struct request *r)
{
    static const char *const SCRIPTS[] = {"eval_ro", "evalsha_ro", "fcall_ro"};
    const struct command *cmd = r->cmd;
    if (cmd->traits & COMMAND_FLUSHES)
        return true;
    for (size_t i = 0; i < sizeof(SCRIPTS) / sizeof(SCRIPTS[0]); i++)
        if (strcmp(cmd->name, SCRIPTS[i]) == 0)
            return true;
    if (cmd->proc != KEYS_PROC_SORT && cmd->proc != KEYS_PROC_SORT_RO)
        return false;
    struct resp_args args;
    struct resp_view a;
    resp_args_init(&args, r->buf, r->frame);
    while (resp_args_next(&args, &a))
        if (a.len == 2 && (strncasecmp(r->buf + a.off, "by", 2) == 0 ||
                           (a.len == 3 && strncasecmp(r->buf + a.off, "get", 3) == 0)))
            return true;
    return false;
}

size_t user_check(const struct user *user, struct request *r, char *reply)
{
    static const char KEYS[] =
        "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n";
    const struct command *cmd = r->cmd;
    int64_t argc = r->frame->argc;
    if (cmd == NULL) {
        /* A subcommand the table does not list (a Redis 6 container's). */
        if (user->commands.n == 0 && user->commands.classes == 0)
            return 0;
        char name[2 * COMMAND_NAME_MAX + 2];
        size_t n = 0;
        for (int64_t i = 0; i < argc && i < 2; i++) {
            struct resp_view a = r->frame->argv[i];
            if (i > 0)
                name[n++] = '|';
            for (size_t j = 0; j < a.len && j < COMMAND_NAME_MAX; j++) {
                char ch = r->buf[a.off + j];
                name[n++] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
            }
        }
        return (size_t)snprintf(
            reply, USERS_REPLY_MAX,
            "-NOPERM this user has no permissions to run the '%.*s' command\r\n", (int)n, name);
    }
    if (cmd->arity > 0 ? argc != cmd->arity : argc < -cmd->arity)
        return 0; /* Redis answers with its arity error first */
    struct cmd_query q;
    check_query_command(&q, cmd);
    if (!check_filter_match(&user->commands, &q))
        return (size_t)snprintf(reply, USERS_REPLY_MAX,
                                "-NOPERM this user has no permissions to run the '%s' command\r\n",
                                cmd->name);
    if (user->nkeys == 0)
        return 0;
    int n = undeclared_keys(r) ? -1 : request_keys(r);
    for (int i = 0; i < n; i++) {
        struct resp_view k = r->keys->views[i];
        if (!key_allowed(user, r->buf + k.off, k.len))
            n = -1;
    }
    if (n >= 0)
        return 0;
    memcpy(reply, KEYS, sizeof(KEYS) - 1);
    return sizeof(KEYS) - 1;
}

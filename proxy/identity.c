/* identity.c - client names, library info, HELLO and credentials. */
#include "proxy/identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "policy/users.h"

bool identity_valid_name(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < '!' || s[i] > '~')
            return false;
    return true;
}

int identity_set_name(struct identity *id, const char *s, size_t len)
{
    char *name = NULL;
    if (len > 0 && (name = malloc(len)) == NULL)
        return -1;
    if (len > 0)
        memcpy(name, s, len);
    free(id->name);
    id->name = name;
    id->name_len = len;
    return 0;
}

/* An argument as an error message shows it: at most 128 bytes, CR and LF
 * turned into spaces (as Redis's addReplyErrorFormat does). */
static int shown_arg(const char *s, size_t len, char *out)
{
    size_t n = len < 128 ? len : 128;
    for (size_t i = 0; i < n; i++)
        out[i] = s[i] == '\r' || s[i] == '\n' ? ' ' : s[i];
    return (int)n;
}

size_t identity_setinfo(struct identity *id, const char *buf, const struct resp_request *req,
                        char *reply)
{
    struct resp_view attr = req->argv[2], val = req->argv[3];
    const char *a = buf + attr.off;
    char shown[128];
    char **dst = NULL;
    if (attr.len == 8 && strncasecmp(a, "lib-name", 8) == 0)
        dst = &id->lib_name;
    else if (attr.len == 7 && strncasecmp(a, "lib-ver", 7) == 0)
        dst = &id->lib_ver;
    if (dst == NULL)
        return (size_t)snprintf(reply, 256, "-ERR Unrecognized option '%.*s'\r\n",
                                shown_arg(a, attr.len, shown), shown);
    if (!identity_valid_name(buf + val.off, val.len))
        return (size_t)snprintf(
            reply, 256, "-ERR %.*s cannot contain spaces, newlines or special characters.\r\n",
            shown_arg(a, attr.len, shown), shown);
    char *copy = NULL;
    if (val.len > 0 && (copy = strndup(buf + val.off, val.len)) == NULL)
        return 0;
    free(*dst);
    *dst = copy;
    memcpy(reply, "+OK\r\n", 5);
    return 5;
}

void identity_init(struct identity *id, const struct config *cfg)
{
    *id = (struct identity){.authed = !config_client_auth(cfg)};
}

int identity_login(struct identity *id, const struct config *cfg, uint64_t generation,
                   const char *buf, const struct resp_view *user, struct resp_view pass)
{
    const char *p = buf + pass.off, *name = user != NULL ? buf + user->off : "default";
    size_t len = user != NULL ? user->len : 7;
    if (len == 7 && memcmp(name, "default", 7) == 0 && cfg->clients_password != NULL) {
        unsigned char want[USERS_DIGEST_LEN];
        users_digest(cfg->clients_password, strlen(cfg->clients_password), want);
        if (!users_digest_matches(want, p, pass.len))
            return false;
        free(id->user_name);
        id->user_name = NULL;
        id->user = NULL;
        id->authed = true;
        return true;
    }
    const struct user *u = users_login(cfg->users, name, len, p, pass.len);
    if (u == NULL)
        return false;
    char *copy = strdup(user_name(u));
    if (copy == NULL)
        return -1;
    free(id->user_name);
    *id = (struct identity){id->name, id->name_len, id->lib_name, id->lib_ver, true,
                            u,        copy,         generation};
    return true;
}

void identity_reset(struct identity *id, const struct config *cfg)
{
    free(id->name);
    free(id->user_name);
    *id = (struct identity){
        .lib_name = id->lib_name, .lib_ver = id->lib_ver, .authed = !config_client_auth(cfg)};
}

void identity_refresh(struct identity *id, const struct config *cfg, uint64_t generation)
{
    if (id->user_name == NULL || id->generation == generation)
        return;
    id->generation = generation;
    id->user = users_find(cfg->users, id->user_name, strlen(id->user_name));
    if (id->user == NULL) {
        free(id->user_name);
        id->user_name = NULL;
        id->authed = false;
    }
}

void identity_free(struct identity *id)
{
    free(id->name);
    free(id->lib_name);
    free(id->lib_ver);
    free(id->user_name);
    *id = (struct identity){0};
}

static bool arg_is(const char *buf, struct resp_view v, const char *word)
{
    return v.len == strlen(word) && strncasecmp(buf + v.off, word, v.len) == 0;
}

bool hello_parse(const char *buf, const struct resp_request *req, struct hello *h)
{
    *h = (struct hello){0};
    if (req->argc < 2 || req->argc > RESP_REQ_ARGS)
        return false;
    struct resp_view v = req->argv[1];
    if (v.len != 1 || (buf[v.off] != '2' && buf[v.off] != '3'))
        return false;
    h->resp = buf[v.off] - '0';
    for (int64_t i = 2; i < req->argc; i++) {
        struct resp_view opt = req->argv[i];
        if (arg_is(buf, opt, "auth") && i + 2 < req->argc) {
            h->auth = true;
            h->user = req->argv[++i];
            h->pass = req->argv[++i];
        } else if (arg_is(buf, opt, "setname") && i + 1 < req->argc) {
            h->setname = true;
            h->name = req->argv[++i];
            if (!identity_valid_name(buf + h->name.off, h->name.len))
                return false;
        } else {
            return false;
        }
    }
    return true;
}

/* Whether s[0, len) equals want, in time that does not depend on where
 * they differ (only on want's length). */
static bool equal_ct(const char *s, size_t len, const char *want)
{
    size_t n = strlen(want);
    unsigned diff = len != n;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)want[i] ^ (unsigned char)(i < len ? s[i] : 0);
    return diff == 0;
}

bool identity_upstream_creds(const struct config *cfg, const char *buf,
                             const struct resp_view *user, struct resp_view pass)
{
    const char *ours = cfg->upstream_username != NULL ? cfg->upstream_username : "default";
    if (cfg->upstream_password == NULL)
        return false;
    if (user != NULL ? !(user->len == strlen(ours) && memcmp(buf + user->off, ours, user->len) == 0)
                     : strcmp(ours, "default") != 0)
        return false;
    return equal_ct(buf + pass.off, pass.len, cfg->upstream_password);
}

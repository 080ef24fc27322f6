/* tests/unit/proxy/identity.c - HELLO parsing, CLIENT SETINFO and credentials. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "proxy/identity.h"
#include "tests/unit/frame.h"

static bool parses(const char *line, struct hello *h)
{
    struct frame f = frame_of(line);
    bool ok = hello_parse(f.buf, &f.req, h);
    free(f.buf);
    return ok;
}

Test(identity, hello_the_proxy_answers)
{
    struct hello h;
    cr_assert(parses("HELLO 3", &h) && h.resp == 3 && !h.auth && !h.setname);
    cr_assert(parses("hello 2 setname app", &h) && h.resp == 2 && h.setname && h.name.len == 3);
    cr_assert(parses("HELLO 3 AUTH u p SETNAME n", &h) && h.auth && h.user.len == 1 && h.setname);
    cr_assert(parses("HELLO 3 SETNAME a SETNAME b", &h) && h.setname, "the last name wins");
}

Test(identity, hello_left_to_redis)
{
    struct hello h;
    static const char *const REDIS[] = {
        "HELLO", /* no protover: the current connection's */
        "HELLO 4",        "HELLO 03",        "HELLO x",
        "HELLO 3 AUTH u", "HELLO 3 SETNAME", "HELLO 3 SETNAME \"a b\"",
        "HELLO 3 FOO",
    };
    for (size_t i = 0; i < sizeof(REDIS) / sizeof(REDIS[0]); i++)
        cr_assert_not(parses(REDIS[i], &h), "%s", REDIS[i]);
}

/* CLIENT SETINFO's reply as Redis 7.2 gives it. */
static void setinfo(struct identity *id, const char *line, const char *want)
{
    char reply[256];
    struct frame f = frame_of(line);
    size_t n = identity_setinfo(id, f.buf, &f.req, reply);
    cr_assert(n == strlen(want) && memcmp(reply, want, n) == 0, "%s: %.*s", line, (int)n, reply);
    free(f.buf);
}

Test(identity, setinfo_replies_as_redis)
{
    struct identity id = {0};
    setinfo(&id, "CLIENT SETINFO lib-name redis-py", "+OK\r\n");
    setinfo(&id, "CLIENT SETINFO LIB-VER 5.0.1", "+OK\r\n");
    cr_assert_str_eq(id.lib_name, "redis-py");
    cr_assert_str_eq(id.lib_ver, "5.0.1");
    setinfo(&id, "CLIENT SETINFO lib-name \"a b\"",
            "-ERR lib-name cannot contain spaces, newlines or special characters.\r\n");
    setinfo(&id, "CLIENT SETINFO Lib-Ver \"1\\n2\"",
            "-ERR Lib-Ver cannot contain spaces, newlines or special characters.\r\n");
    setinfo(&id, "CLIENT SETINFO lib x", "-ERR Unrecognized option 'lib'\r\n");
    setinfo(&id, "CLIENT SETINFO \"a\\r\\nb\" x", "-ERR Unrecognized option 'a  b'\r\n");
    cr_assert_str_eq(id.lib_name, "redis-py", "an error changed the attribute");
    setinfo(&id, "CLIENT SETINFO lib-name \"\"", "+OK\r\n");
    cr_assert_null(id.lib_name);
    identity_free(&id);
}

Test(identity, upstream_credentials)
{
    struct config cfg;
    config_init(&cfg);
    char err[256];
    struct frame f = frame_of("AUTH app pw");
    struct resp_view user = f.req.argv[1], pass = f.req.argv[2];
    cr_assert_not(identity_upstream_creds(&cfg, f.buf, &user, pass), "no password set");
    cr_assert_eq(config_set(&cfg, "upstream.password", "pw", err, sizeof(err)), 0);
    cr_assert_not(identity_upstream_creds(&cfg, f.buf, &user, pass), "user default, not app");
    cr_assert(identity_upstream_creds(&cfg, f.buf, NULL, pass));
    cr_assert_eq(config_set(&cfg, "upstream.username", "app", err, sizeof(err)), 0);
    cr_assert(identity_upstream_creds(&cfg, f.buf, &user, pass));
    cr_assert_not(identity_upstream_creds(&cfg, f.buf, NULL, pass), "AUTH pw names default");
    cr_assert_not(identity_upstream_creds(&cfg, f.buf, &user, user), "wrong password");
    free(f.buf);
    config_deinit(&cfg);
}

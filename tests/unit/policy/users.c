/* tests/unit/policy/users.c - users: logins by password or digest, in
 * constant time; permissions by command and key, with Redis's replies. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "policy/users.h"
#include "proxy/proto/command.h"
#include "tests/unit/frame.h"
#include "tests/unit/leaks.h"

TestSuite(users, .fini = check_leaks);

static struct users *make(void)
{
    static const char *const KEYS[] = {"orders:*", "cart:{id}"};
    static const char *const COMMANDS[] = {"read", "SET"};
    /* SHA-256 of "ordpw". */
    static const struct users_entry ORDERS = {
        "orders", NULL, "24daf6e2fe43f38a8db5e13835b7c79b5beba0e7f034f5132cda20c4223dd8d4", KEYS, 2,
        COMMANDS, 2};
    char err[256];
    struct users *u = users_create();
    cr_assert_eq(
        users_add(u, &(struct users_entry){.name = "app", .password = "apppw"}, err, sizeof(err)),
        0, "%s", err);
    cr_assert_eq(users_add(u, &ORDERS, err, sizeof(err)), 0, "%s", err);
    return u;
}

Test(users, logins)
{
    struct users *u = make();
    cr_assert_eq(users_count(u), 2);
    cr_assert_not_null(users_login(u, "app", 3, "apppw", 5));
    cr_assert_null(users_login(u, "app", 3, "apppw!", 6));
    cr_assert_null(users_login(u, "app", 3, "", 0));
    cr_assert_null(users_login(u, "nobody", 6, "apppw", 5));
    const struct user *o = users_login(u, "orders", 6, "ordpw", 5);
    cr_assert_not_null(o, "the digest form");
    cr_assert_str_eq(user_name(o), "orders");
    cr_assert_eq(users_find(u, "orders", 6), o);
    cr_assert_null(users_login(NULL, "app", 3, "apppw", 5));
    users_destroy(&u);
    cr_assert_null(u);
}

/* The reply to line for user (empty when allowed). */
static const char *verdict(const struct command_table *t, const struct user *user, const char *line)
{
    static char reply[USERS_REPLY_MAX + 1];
    struct frame f = frame_of(line);
    struct request_keys scratch = {0};
    struct request r;
    request_init(&r, t, f.buf, &f.req, &scratch);
    size_t n = user_check(user, &r, reply);
    reply[n] = '\0';
    request_keys_free(&scratch);
    free(f.buf);
    return reply;
}

Test(users, permissions)
{
    static const char KEYS[] =
        "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n";
    struct users *u = make();
    struct command_table *t = command_table_create();
    cr_assert_gt(command_table_add_builtin(t), 0);
    const struct user *app = users_find(u, "app", 3), *o = users_find(u, "orders", 6);
    cr_assert_str_eq(verdict(t, app, "DEL anything"), "", "no limits");
    cr_assert_str_eq(verdict(t, o, "GET orders:1"), "");
    cr_assert_str_eq(verdict(t, o, "SET cart:7 x"), "");
    cr_assert_str_eq(verdict(t, o, "MGET orders:1 cart:2"), "");
    cr_assert_str_eq(verdict(t, o, "GET other"), KEYS);
    cr_assert_str_eq(verdict(t, o, "MGET orders:1 other"), KEYS);
    cr_assert_str_eq(verdict(t, o, "DEL orders:1"),
                     "-NOPERM this user has no permissions to run the 'del' command\r\n");
    cr_assert_str_eq(verdict(t, o, "CONFIG GET x"),
                     "-NOPERM this user has no permissions to run the 'config|get' command\r\n");
    cr_assert_str_eq(verdict(t, o, "GET"), "", "Redis's arity error comes first");
    cr_assert_str_eq(verdict(t, o, "NOSUCH x"),
                     "-NOPERM this user has no permissions to run the 'nosuch|x' command\r\n",
                     "a subcommand the table does not list");
    cr_assert_str_eq(verdict(t, app, "NOSUCH x"), "", "no command limits");
    /* Keys a command reads or writes without naming them. */
    cr_assert_str_eq(verdict(t, o, "EVAL_RO \"return redis.call('get','x')\" 0"), KEYS,
                     "a read-only script may read any key");
    cr_assert_str_eq(verdict(t, o, "SORT_RO orders:l BY nosort"), KEYS, "SORT reads by pattern");
    cr_assert_str_eq(verdict(t, o, "SORT_RO orders:l"), "", "SORT of its own key");
    cr_assert_str_eq(verdict(t, app, "EVAL \"return 1\" 0"), "", "no key limits");
    command_table_destroy(&t);
    users_destroy(&u);
}

Test(users, bad_entries)
{
    char err[256];
    struct users *u = users_create();
    static const struct {
        struct users_entry e;
        const char *err;
    } BAD[] = {
        {{.name = "", .password = "x"}, "name: must be printable, without spaces"},
        {{.name = "a b", .password = "x"}, "name: must be printable, without spaces"},
        {{.name = "a"}, "password: give password or password_sha256"},
        {{.name = "a", .password = "x", .password_sha256 = "00"},
         "password: give password or password_sha256"},
        {{.name = "a", .password_sha256 = "zz"}, "password_sha256: expected 64 hex digits"},
    };
    for (size_t i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++) {
        cr_assert_eq(users_add(u, &BAD[i].e, err, sizeof(err)), -1);
        cr_assert_str_eq(err, BAD[i].err);
    }
    cr_assert_eq(users_count(u), 0);
    users_destroy(&u);
}

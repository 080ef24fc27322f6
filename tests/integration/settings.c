/* End-to-end tests of the settings that shape the proxy's upstream connections
 * and its protection against clients: upstream AUTH (password and ACL user),
 * upstream.database, clients.max, clients.max_output_buffer (a client that does
 * not read), clients.max_query_buffer (a request that never ends) and
 * log_format json. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>
#include <unistd.h>

#include "harness/bytes.h"
#include "harness/clock.h"
#include "harness/fixtures.h"
#include "harness/proxy.h"
#include "harness/redis.h"
#include "harness/sock.h"

static const char ERR_UNAVAILABLE[] = "-ERR upstream unavailable\r\n";

TestSuite(settings, .init = fixture_redis, .fini = fixture_stop, .timeout = 60);

Test(settings, upstream_password)
{
    harness_require_proxy();
    redis_call_expect(&fx_redis, "CONFIG SET requirepass s3cret", "+OK\r\n");
    static const char *const sets[] = {"upstream.password=s3cret", NULL};
    proxy_start(&fx_proxy, fx_redis.port, sets);
    int c = sock_connect_or_fail(fx_proxy.port);
    sock_call_expect(c, "SET k v\nGET k", 2, "+OK\r\n$1\r\nv\r\n");
    /* A client with state gets a dedicated connection: authenticated too. */
    sock_call_expect(c, "SELECT 2\nSET k2 v2\nGET k2", 3, "+OK\r\n+OK\r\n$2\r\nv2\r\n");
    close(c);
    proxy_finish(&fx_proxy);
}

Test(settings, upstream_password_refused)
{
    harness_require_proxy();
    redis_call_expect(&fx_redis, "CONFIG SET requirepass s3cret", "+OK\r\n");
    static const char *const sets[] = {"upstream.password=wrong", "upstream.connect_timeout=200ms",
                                       NULL};
    proxy_start(&fx_proxy, fx_redis.port, sets);
    int c = sock_connect_or_fail(fx_proxy.port);
    for (int i = 0; i < 3; i++)
        sock_call_expect(c, "GET k", 1, ERR_UNAVAILABLE);
    close(c);
    proxy_stop_clean(&fx_proxy);
}

Test(settings, upstream_acl_user)
{
    harness_require_proxy();
    redis_call_expect(&fx_redis, "ACL SETUSER app on >apppw ~* &* +@all", "+OK\r\n");
    static const char *const sets[] = {"upstream.username=app", "upstream.password=apppw", NULL};
    proxy_start(&fx_proxy, fx_redis.port, sets);
    int c = sock_connect_or_fail(fx_proxy.port);
    sock_call_expect(c, "ACL WHOAMI", 1, "$3\r\napp\r\n");
    sock_call_expect(c, "MULTI\nACL WHOAMI\nEXEC", 3, "+OK\r\n+QUEUED\r\n*1\r\n$3\r\napp\r\n");
    close(c);
    proxy_finish(&fx_proxy);
}

Test(settings, upstream_database)
{
    harness_require_proxy();
    static const char *const sets[] = {"upstream.database=5", NULL};
    proxy_start(&fx_proxy, fx_redis.port, sets);
    int c = sock_connect_or_fail(fx_proxy.port);
    sock_call_expect(c, "SET k in-db-5", 1, "+OK\r\n");
    close(c);
    struct bytes got = redis_call(&fx_redis, "GET k");
    cr_assert(bytes_equal_str(&got, "$-1\r\n"), "db 0 has the key: %s", bytes_show(&got));
    bytes_free(&got);
    int d = sock_connect_or_fail(fx_redis.port);
    sock_call_expect(d, "SELECT 5\nGET k", 2, "+OK\r\n$7\r\nin-db-5\r\n");
    close(d);
    proxy_finish(&fx_proxy);
}

/* Connects and retries until the proxy admits the connection (PING answered):
 * a connection closed just before may not have been reaped yet. */
static int connect_admitted(int port)
{
    struct bytes in = {0};
    for (int i = 0;; i++) {
        int fd = sock_connect_or_fail(port);
        in.len = 0;
        if (sock_call(fd, "PING", 1, &in, HARNESS_TIMEOUT_MS) == SOCK_DONE &&
            bytes_equal_str(&in, "+PONG\r\n")) {
            bytes_free(&in);
            return fd;
        }
        close(fd);
        cr_assert(i < 100, "never admitted: %s", bytes_show(&in));
        harness_sleep_ms(50);
    }
}

Test(settings, max_clients)
{
    harness_require_proxy();
    static const char *const sets[] = {"clients.max=2", NULL};
    proxy_start(&fx_proxy, fx_redis.port, sets);
    int a = connect_admitted(fx_proxy.port);
    int b = connect_admitted(fx_proxy.port);
    int c = sock_connect_or_fail(fx_proxy.port);
    struct bytes in = {0};
    cr_assert(sock_read_until_eof(c, &in, HARNESS_TIMEOUT_MS) == SOCK_EOF, "third client kept");
    cr_assert(bytes_equal_str(&in, "-ERR max number of clients reached\r\n"), "got %s",
              bytes_show(&in));
    close(c);
    close(b); /* room again */
    close(connect_admitted(fx_proxy.port));
    close(a);
    bytes_free(&in);
    proxy_stop_clean(&fx_proxy); /* a health check could race the closes above */
}

Test(settings, client_that_does_not_read_is_closed_at_output_limit)
{
    harness_require_proxy();
    static const char *const sets[] = {"clients.max_output_buffer=2mb", NULL};
    proxy_start(&fx_proxy, fx_redis.port, sets);
    redis_call_expect(&fx_redis, "SET big x", "+OK\r\n");
    redis_call_expect(&fx_redis, "SETRANGE big 524287 y", ":524288\r\n");
    /* 200 replies of 512 KB, 100 MB, far past what socket buffers hold. */
    struct bytes gets = {0};
    for (int i = 0; i < 200; i++)
        req_add(&gets, "GET", "big", NULL);
    int slow = sock_connect_or_fail(fx_proxy.port);
    struct bytes in = {0};
    sock_exchange(slow, gets.data, gets.len, &in, NULL, 0, HARNESS_TIMEOUT_MS);
    harness_sleep_ms(500); /* not reading: the replies pile up in the proxy */
    int other = sock_connect_or_fail(fx_proxy.port);
    sock_call_expect(other, "SET k v\nGET k", 2, "+OK\r\n$1\r\nv\r\n");
    cr_assert(sock_read_until_eof(slow, &in, HARNESS_TIMEOUT_MS) == SOCK_EOF,
              "the client that did not read was not closed");
    cr_assert_lt(in.len, (size_t)200 * 524288, "it got every reply: the limit did nothing");
    close(slow);
    close(other);
    bytes_free(&in);
    bytes_free(&gets);
    proxy_finish(&fx_proxy);
}

Test(settings, request_that_never_ends_is_closed_at_query_limit)
{
    harness_require_proxy();
    static const char *const sets[] = {"clients.max_query_buffer=64kb", "limits.max_bulk_len=1kb",
                                       NULL};
    proxy_start(&fx_proxy, fx_redis.port, sets);
    struct bytes req = {0};
    bytes_puts(&req, "*1000000\r\n");
    for (int i = 0; i < 20000; i++)
        bytes_puts(&req, "$1\r\na\r\n");
    int c = sock_connect_or_fail(fx_proxy.port);
    struct bytes in = {0};
    sock_exchange(c, req.data, req.len, &in, NULL, 0, HARNESS_TIMEOUT_MS);
    cr_assert(sock_read_until_eof(c, &in, HARNESS_TIMEOUT_MS) == SOCK_EOF,
              "a 140 KB unfinished request was kept past a 64 KB query buffer");
    cr_assert_eq(in.len, 0, "unexpected reply %s", bytes_show(&in));
    int other = sock_connect_or_fail(fx_proxy.port);
    sock_call_expect(other, "PING", 1, "+PONG\r\n");
    close(c);
    close(other);
    bytes_free(&in);
    bytes_free(&req);
    proxy_finish(&fx_proxy);
}

/* Counts the lines of log_path whose event is event, with field; checks that
 * every line is a JSON object with time, level, event and msg. */
static int json_events(const char *log_path, const char *event, const char *field)
{
    struct bytes log = {0};
    int n = 0;
    cr_assert(bytes_append_file(&log, log_path), "read %s", log_path);
    for (char *line = log.data, *eol; line != NULL && *line != '\0'; line = eol + 1) {
        eol = strchr(line, '\n');
        cr_assert_not_null(eol, "a line without its newline");
        *eol = '\0';
        json_t *o = json_loads(line, 0, NULL);
        cr_assert(json_is_object(o), "not JSON: %s", line);
        static const char *const MEMBERS[] = {"time", "level", "event", "msg"};
        for (size_t i = 0; i < ARRAY_LEN(MEMBERS); i++)
            cr_assert(json_is_string(json_object_get(o, MEMBERS[i])), "no %s: %s", MEMBERS[i],
                      line);
        if (strcmp(json_string_value(json_object_get(o, "event")), event) == 0) {
            cr_assert_not_null(json_object_get(o, field), "%s without %s: %s", event, field, line);
            n++;
        }
        json_decref(o);
    }
    bytes_free(&log);
    return n;
}

Test(settings, log_format_json)
{
    harness_require_proxy();
    static const char *const sets[] = {"log_format=json", "log_level=info", NULL};
    proxy_start(&fx_proxy, fx_redis.port, sets);
    int c = sock_connect_or_fail(fx_proxy.port);
    sock_call_expect(c, "SET k v", 1, "+OK\r\n");
    proxy_wait_log(&fx_proxy, "\"event\":\"upstream_connected\"");
    static const char BAD[] = "*1\r\nx\r\n";
    struct bytes in = {0};
    sock_exchange(c, BAD, sizeof(BAD) - 1, &in, NULL, 0, HARNESS_TIMEOUT_MS);
    cr_assert_eq(sock_read_until_eof(c, &in, HARNESS_TIMEOUT_MS), SOCK_EOF);
    cr_assert(bytes_equal_str(&in, "-ERR Protocol error: expected '$', got 'x'\r\n"), "%s",
              bytes_show(&in));
    bytes_free(&in);
    close(c);
    proxy_finish(&fx_proxy);
    cr_expect_eq(json_events(fx_proxy.log, "listening", "pool_size"), 1);
    cr_expect_geq(json_events(fx_proxy.log, "upstream_connected", "msg"), 1);
    cr_expect_eq(json_events(fx_proxy.log, "client_protocol_error", "reason"), 1);
    cr_expect_eq(json_events(fx_proxy.log, "drain_start", "clients"), 1);
    cr_expect_eq(json_events(fx_proxy.log, "drain_done", "msg"), 1);
}

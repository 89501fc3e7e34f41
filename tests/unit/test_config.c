/*
 * test_config.c -- config/: defaults, the sample file, every kind of bad file
 * (each error names file:line and the setting), environment overrides, the
 * secret rule, CIDR / listen parsing, and cfg_dump's redaction + round trip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/of.h"
#include "config/config.h"

static const char SECRET[] = "0123456789abcdef0123456789abcdef-secret";

static char tmpdir[256];
static char cfgpath[300];

static void
env_clear(void)
{
    unsetenv("ORDERFLOW_DATABASE_URL");
    unsetenv("ORDERFLOW_JWT_SECRET");
    unsetenv("ORDERFLOW_LISTEN");
    unsetenv("ORDERFLOW_WORKERS");
}

static int
setup(void **state)
{
    (void)state;
    env_clear();
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/of-test-config-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    snprintf(cfgpath, sizeof(cfgpath), "%s/orderflow.cfg", tmpdir);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    unlink(cfgpath);
    rmdir(tmpdir);
    env_clear();
    return 0;
}

static void
write_cfg(const char *text)
{
    FILE *f = fopen(cfgpath, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Load text; expect failure with an error containing every needle. */
static void
expect_error(const char *text, const char *needle1, const char *needle2)
{
    struct of_cfg cfg;
    char          err[512];

    write_cfg(text);
    int rc = cfg_load(&cfg, cfgpath, false, err, sizeof(err));
    if (rc == OF_OK)
        fail_msg("expected an error for:\n%s", text);
    if (strstr(err, needle1) == NULL || (needle2 != NULL && strstr(err, needle2) == NULL))
        fail_msg("error \"%s\" lacks \"%s\" / \"%s\"", err, needle1, needle2 ? needle2 : "");
}

static void
test_defaults_without_file(void **state)
{
    (void)state;
    struct of_cfg cfg;
    char          err[256];

    assert_int_equal(cfg_load(&cfg, NULL, false, err, sizeof(err)), OF_OK);
    assert_string_equal(cfg.server.listen, "127.0.0.1:8000");
    assert_int_equal(cfg.server.workers, 0);
    assert_true(cfg.server.workers_effective >= 1);
    assert_int_equal(cfg.server.worker_timeout, 30);
    assert_int_equal(cfg.server.unix_mode, 0660);
    assert_int_equal(cfg.server.max_body_size, 1048576);
    assert_string_equal(cfg.server.log_level, "info");
    assert_true(cfg.server.access_log);
    assert_null(cfg.server.pidfile);
    assert_null(cfg.database.url);
    assert_int_equal(cfg.database.queue_timeout_ms, 2000);
    assert_true(cfg.database.prepared_statements);
    assert_int_equal(cfg.rate_limit.login_per_minute, 10);
    assert_int_equal(cfg.server.n_forwarded_allow, 2);
    assert_int_equal(cfg.metrics.n_allow, 2);
    assert_int_equal(cfg.metrics.allow[1].family, AF_INET6);
    assert_int_equal(cfg.metrics.allow[1].prefix, 128);
    assert_null(cfg.auth.jwt_secret);
    cfg_free(&cfg);
}

static void
test_sample_file_loads_and_equals_defaults(void **state)
{
    (void)state;
    struct of_cfg s, d;
    char          err[256], path[1024];
    const char   *src = getenv("OF_SOURCE_DIR");

    snprintf(path, sizeof(path), "%s/config/orderflow.cfg", src ? src : OF_SOURCE_DIR);
    if (cfg_load(&s, path, false, err, sizeof(err)) != OF_OK)
        fail_msg("sample: %s", err);
    assert_int_equal(cfg_load(&d, NULL, false, err, sizeof(err)), OF_OK);

    /* the sample documents the defaults: dumps must agree but for the header line */
    char  *a = NULL, *b = NULL;
    size_t al = 0, bl = 0;
    FILE  *fa = open_memstream(&a, &al), *fb = open_memstream(&b, &bl);
    cfg_dump(&s, fa);
    cfg_dump(&d, fb);
    fclose(fa);
    fclose(fb);
    assert_string_equal(strchr(a, '\n'), strchr(b, '\n'));
    free(a);
    free(b);
    cfg_free(&s);
    cfg_free(&d);
}

static void
test_valid_file_sets_every_kind(void **state)
{
    (void)state;
    struct of_cfg cfg;
    char          err[256];

    write_cfg("# comment\n"
              "server: {\n"
              "  listen = \"[::1]:9000\"; workers = 3; backlog = 64; unix_mode = \"0600\";\n"
              "  max_body_size = 2048; max_requests = 5000000000L; max_requests_jitter = 50;\n"
              "  pidfile = \"/tmp/x.pid\"; log_level = \"debug\"; access_log = false;\n"
              "  forwarded_allow_ips = [\"10.0.0.0/8\", \"::1/128\"];\n"
              "};\n"
              "database: { url = \"postgresql://u:p@h/db\"; queue_timeout = 150;\n"
              "            statement_timeout = 0; prepared_statements = false; };\n"
              "auth: { token_ttl = 600; allow_registration = false; hash_threads = 4; };\n"
              "rate_limit: { login_per_minute = 0; writes_per_minute = 5; };\n"
              "cors: { allow_origins = [\"https://a.example\", \"https://b.example\"]; max_age = 0; };\n"
              "metrics: { allow = []; };\n");
    if (cfg_load(&cfg, cfgpath, false, err, sizeof(err)) != OF_OK)
        fail_msg("%s", err);
    assert_string_equal(cfg.server.listen, "[::1]:9000");
    assert_int_equal(cfg.server.workers, 3);
    assert_int_equal(cfg.server.workers_effective, 3);
    assert_int_equal(cfg.server.backlog, 64);
    assert_int_equal(cfg.server.unix_mode, 0600);
    assert_int_equal(cfg.server.max_body_size, 2048);
    assert_true(cfg.server.max_requests == 5000000000L);
    assert_int_equal(cfg.server.max_requests_jitter, 50);
    assert_string_equal(cfg.server.pidfile, "/tmp/x.pid");
    assert_string_equal(cfg.server.log_level, "debug");
    assert_false(cfg.server.access_log);
    assert_int_equal(cfg.server.n_forwarded_allow, 2);
    assert_int_equal(cfg.server.forwarded_allow[0].prefix, 8);
    assert_string_equal(cfg.database.url, "postgresql://u:p@h/db");
    assert_int_equal(cfg.database.queue_timeout_ms, 150);
    assert_int_equal(cfg.database.statement_timeout_ms, 0);
    assert_false(cfg.database.prepared_statements);
    assert_int_equal(cfg.auth.token_ttl, 600);
    assert_false(cfg.auth.allow_registration);
    assert_int_equal(cfg.auth.hash_threads, 4);
    assert_int_equal(cfg.rate_limit.login_per_minute, 0);
    assert_int_equal(cfg.cors.n_origins, 2);
    assert_string_equal(cfg.cors.allow_origins[1], "https://b.example");
    assert_int_equal(cfg.cors.max_age, 0);
    assert_int_equal(cfg.metrics.n_allow, 0);
    cfg_free(&cfg);
}

static void
test_empty_string_means_not_set(void **state)
{
    (void)state;
    struct of_cfg cfg;
    char          err[256];

    write_cfg("server: { pidfile = \"\"; user = \"\"; };\n");
    assert_int_equal(cfg_load(&cfg, cfgpath, false, err, sizeof(err)), OF_OK);
    assert_null(cfg.server.pidfile);
    assert_null(cfg.server.user);
    cfg_free(&cfg);
}

static void
test_missing_file_is_an_error(void **state)
{
    (void)state;
    struct of_cfg cfg;
    char          err[512];

    assert_int_equal(cfg_load(&cfg, "/nonexistent/orderflow.cfg", false, err, sizeof(err)), OF_ERR);
    assert_non_null(strstr(err, "/nonexistent/orderflow.cfg"));
}

static void
test_syntax_error_names_line(void **state)
{
    (void)state;
    expect_error("server: {\n  workers = 2;\n  listen = \"127.0.0.1:1\";\n  backlog = ;\n};\n",
                 "orderflow.cfg:4:", "syntax error");
    expect_error("server: {\n  workers = 2;\n", "orderflow.cfg:", NULL);
}

static void
test_unknown_settings_are_errors(void **state)
{
    (void)state;
    expect_error("server: {\n  workers = 2;\n  wrokers = 3;\n};\n",
                 "orderflow.cfg:3:", "unknown setting server.wrokers");
    expect_error("server: { workers = 2; };\n\nfrobnicate: { x = 1; };\n",
                 "orderflow.cfg:3:", "unknown setting frobnicate");
    expect_error("workers = 2;\n", "orderflow.cfg:1:", "unknown setting workers");
    expect_error("database: { url = \"x\"; password = \"y\"; };\n",
                 "orderflow.cfg:1:", "unknown setting database.password");
    /* the secret may only come from the environment */
    expect_error("auth: { jwt_secret = \"0123456789abcdef0123456789abcdef\"; };\n",
                 "orderflow.cfg:1:", "unknown setting auth.jwt_secret");
    /* _ms fields are named without the suffix in the file */
    expect_error("database: { queue_timeout_ms = 5; };\n", "unknown setting database.queue_timeout_ms", NULL);
    expect_error("server = 5;\n", "orderflow.cfg:1:", "server must be a group");
}

static void
test_wrong_types_are_errors(void **state)
{
    (void)state;
    expect_error("server: {\n  workers = \"3\";\n};\n", "orderflow.cfg:2:", "server.workers must be an integer");
    expect_error("server: { workers = 2.5; };\n", "orderflow.cfg:1:", "server.workers must be an integer");
    expect_error("server: { listen = 8000; };\n", "orderflow.cfg:1:", "server.listen must be a string");
    expect_error("server: { access_log = 1; };\n", "orderflow.cfg:1:", "server.access_log must be true or false");
    expect_error("cors: { allow_origins = \"https://a\"; };\n", "orderflow.cfg:1:", "cors.allow_origins must be a list");
    expect_error("metrics: { allow = [1, 2]; };\n", "orderflow.cfg:1:", "metrics.allow must be a list of non-empty strings");
    expect_error("server: { unix_mode = 660; };\n", "orderflow.cfg:1:", "server.unix_mode must be a string");
}

static void
test_out_of_range_is_an_error(void **state)
{
    (void)state;
    expect_error("\n\nserver: {\n  listen = \"127.0.0.1:1\";\n  workers = 300;\n};\n",
                 "orderflow.cfg:5: server.workers must be 0..256", NULL);
    expect_error("server: { workers = -1; };\n", "server.workers must be 0..256", NULL);
    expect_error("server: { worker_timeout = 1; };\n", "server.worker_timeout must be 2..", NULL);
    expect_error("server: { backlog = 0; };\n", "server.backlog must be 1..65535", NULL);
    expect_error("database: { pool_size = 0; };\n", "database.pool_size must be 1..", NULL);
    expect_error("server: { max_requests = -5; };\n", "server.max_requests must be 0..", NULL);
    expect_error("server: { unix_mode = \"0999\"; };\n", "server.unix_mode must be an octal", NULL);
    expect_error("server: { log_level = \"loud\"; };\n", "server.log_level must be debug, info, warn or error", NULL);
    expect_error("cors: { allow_origins = [\"*\"]; };\n", "cors.allow_origins must list origins", NULL);
}

static void
test_bad_listen_is_an_error(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "localhost", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", ":8000", "::1:8000",
        "[::1]8000", "[nothost]:80", "unix:", "127.0.0.1:80x",
    };
    char text[256];
    for (size_t i = 0; i < OF_ARRAY_LEN(bad); i++) {
        snprintf(text, sizeof(text), "server: {\n listen = \"%s\";\n};\n", bad[i]);
        expect_error(text, "orderflow.cfg:2: server.listen must be", NULL);
    }
}

static void
test_bad_cidr_is_an_error(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "10.0.0.0/33", "::1/129", "10.0.0.1/-1", "10.0.0", "example.com", "10.0.0.0/", "/8", "1.2.3.4/8x",
    };
    char text[256];
    for (size_t i = 0; i < OF_ARRAY_LEN(bad); i++) {
        snprintf(text, sizeof(text), "server: {\n forwarded_allow_ips = [\"127.0.0.1\", \"%s\"];\n};\n", bad[i]);
        expect_error(text, "orderflow.cfg:2: server.forwarded_allow_ips", "is not an address or CIDR");
    }
}

static void
test_listen_parse_table(void **state)
{
    (void)state;
    struct netaddr_listen l;

    assert_int_equal(netaddr_listen_parse("127.0.0.1:8000", &l), OF_OK);
    assert_false(l.is_unix);
    assert_string_equal(l.host, "127.0.0.1");
    assert_string_equal(l.port, "8000");
    assert_int_equal(netaddr_listen_parse("[::]:80", &l), OF_OK);
    assert_string_equal(l.host, "::");
    assert_string_equal(l.port, "80");
    assert_int_equal(netaddr_listen_parse("localhost:1", &l), OF_OK);
    assert_string_equal(l.host, "localhost");
    assert_int_equal(netaddr_listen_parse("unix:/run/of.sock", &l), OF_OK);
    assert_true(l.is_unix);
    assert_string_equal(l.path, "/run/of.sock");
}

static void
test_cidr_parse_and_match(void **state)
{
    (void)state;
    struct netaddr_cidr     list[4];
    struct sockaddr_in  a4 = { .sin_family = AF_INET };
    struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 };

    assert_int_equal(netaddr_cidr_parse("127.0.0.1", &list[0]), OF_OK);
    assert_int_equal(list[0].prefix, 32);
    assert_int_equal(netaddr_cidr_parse("10.1.2.3/8", &list[1]), OF_OK);   /* host bits cleared */
    assert_int_equal(list[1].addr[1], 0);
    assert_int_equal(netaddr_cidr_parse("::1", &list[2]), OF_OK);
    assert_int_equal(list[2].prefix, 128);
    assert_int_equal(netaddr_cidr_parse("fd00::/8", &list[3]), OF_OK);

    inet_pton(AF_INET, "127.0.0.1", &a4.sin_addr);
    assert_true(netaddr_cidr_match(list, 4, (struct sockaddr *)&a4));
    inet_pton(AF_INET, "127.0.0.2", &a4.sin_addr);
    assert_false(netaddr_cidr_match(list, 4, (struct sockaddr *)&a4));
    inet_pton(AF_INET, "10.200.0.9", &a4.sin_addr);
    assert_true(netaddr_cidr_match(list, 4, (struct sockaddr *)&a4));
    inet_pton(AF_INET, "11.0.0.1", &a4.sin_addr);
    assert_false(netaddr_cidr_match(list, 4, (struct sockaddr *)&a4));
    inet_pton(AF_INET6, "::1", &a6.sin6_addr);
    assert_true(netaddr_cidr_match(list, 4, (struct sockaddr *)&a6));
    inet_pton(AF_INET6, "fdab::5", &a6.sin6_addr);
    assert_true(netaddr_cidr_match(list, 4, (struct sockaddr *)&a6));
    inet_pton(AF_INET6, "fe80::1", &a6.sin6_addr);
    assert_false(netaddr_cidr_match(list, 4, (struct sockaddr *)&a6));
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &a6.sin6_addr);   /* v4-mapped */
    assert_true(netaddr_cidr_match(list, 4, (struct sockaddr *)&a6));
    assert_false(netaddr_cidr_match(list, 0, (struct sockaddr *)&a6));
    assert_false(netaddr_cidr_match(list, 4, NULL));
}

static void
test_env_overrides_file(void **state)
{
    (void)state;
    struct of_cfg cfg;
    char          err[256];

    write_cfg("server: { listen = \"127.0.0.1:1000\"; workers = 2; };\n"
              "database: { url = \"postgresql:///fromfile\"; };\n");
    setenv("ORDERFLOW_DATABASE_URL", "postgresql:///fromenv", 1);
    setenv("ORDERFLOW_LISTEN", "unix:/tmp/of-env.sock", 1);
    setenv("ORDERFLOW_WORKERS", "5", 1);
    setenv("ORDERFLOW_JWT_SECRET", SECRET, 1);
    if (cfg_load(&cfg, cfgpath, true, err, sizeof(err)) != OF_OK)
        fail_msg("%s", err);
    assert_string_equal(cfg.database.url, "postgresql:///fromenv");
    assert_string_equal(cfg.server.listen, "unix:/tmp/of-env.sock");
    assert_int_equal(cfg.server.workers, 5);
    assert_int_equal(cfg.server.workers_effective, 5);
    assert_int_equal(cfg.auth.jwt_secret_len, strlen(SECRET));
    assert_memory_equal(cfg.auth.jwt_secret, SECRET, strlen(SECRET));
    cfg_free(&cfg);

    setenv("ORDERFLOW_WORKERS", "0", 1);
    assert_int_equal(cfg_load(&cfg, cfgpath, true, err, sizeof(err)), OF_OK);
    assert_true(cfg.server.workers_effective >= 1);
    assert_int_equal(cfg.server.workers_effective, (int)sysconf(_SC_NPROCESSORS_ONLN));
    cfg_free(&cfg);
}

static void
test_bad_env_values_are_errors(void **state)
{
    (void)state;
    struct of_cfg cfg;
    char          err[256];

    setenv("ORDERFLOW_WORKERS", "many", 1);
    assert_int_equal(cfg_load(&cfg, NULL, false, err, sizeof(err)), OF_ERR);
    assert_non_null(strstr(err, "ORDERFLOW_WORKERS: server.workers must be 0..256"));
    setenv("ORDERFLOW_WORKERS", "257", 1);
    assert_int_equal(cfg_load(&cfg, NULL, false, err, sizeof(err)), OF_ERR);
    unsetenv("ORDERFLOW_WORKERS");
    setenv("ORDERFLOW_LISTEN", "nope", 1);
    assert_int_equal(cfg_load(&cfg, NULL, false, err, sizeof(err)), OF_ERR);
    assert_non_null(strstr(err, "ORDERFLOW_LISTEN"));
}

static void
test_secret_rules(void **state)
{
    (void)state;
    struct of_cfg cfg;
    char          err[256];

    /* serve needs it */
    assert_int_equal(cfg_load(&cfg, NULL, true, err, sizeof(err)), OF_ERR);
    assert_non_null(strstr(err, "ORDERFLOW_JWT_SECRET is not set"));
    /* migrate does not */
    assert_int_equal(cfg_load(&cfg, NULL, false, err, sizeof(err)), OF_OK);
    cfg_free(&cfg);
    /* too short is refused either way, and the value is never echoed */
    setenv("ORDERFLOW_JWT_SECRET", "short-secret-31-bytes-long-xxxx", 1);
    assert_int_equal(cfg_load(&cfg, NULL, true, err, sizeof(err)), OF_ERR);
    assert_non_null(strstr(err, "at least 32 bytes"));
    assert_null(strstr(err, "short-secret"));
    assert_int_equal(cfg_load(&cfg, NULL, false, err, sizeof(err)), OF_ERR);
    /* exactly 32 is enough */
    setenv("ORDERFLOW_JWT_SECRET", "0123456789abcdef0123456789abcdef", 1);
    assert_int_equal(cfg_load(&cfg, NULL, true, err, sizeof(err)), OF_OK);
    assert_int_equal(cfg.auth.jwt_secret_len, 32);
    cfg_free(&cfg);
}

static void
test_redact_url_table(void **state)
{
    (void)state;
    static const struct { const char *in, *out; } t[] = {
        { "postgresql://app:s3cret@db.local:5432/of", "postgresql://app:REDACTED@db.local:5432/of" },
        { "postgres://app@db/of", "postgres://app@db/of" },
        { "postgresql:///of?host=/run/pg", "postgresql:///of?host=/run/pg" },
        { "postgresql://u:p%40ss@h/db?sslmode=require&password=x2", "postgresql://u:REDACTED@h/db?sslmode=require&password=REDACTED" },
        { "host=db user=app password=s3cret dbname=of", "host=db user=app password=REDACTED dbname=of" },
        { "host=db password='a b\\' c' dbname=of", "host=db password=REDACTED dbname=of" },
        { "dbname=of", "dbname=of" },
        /* libpq allows blanks around '='; sslpassword is a secret too */
        { "host=db password = s3cret dbname=of", "host=db password = REDACTED dbname=of" },
        { "host=db password\t=\ts3cret", "host=db password\t=\tREDACTED" },
        { "host=db password= 's e' dbname=of", "host=db password= REDACTED dbname=of" },
        { "host=db sslpassword=k3y sslkey=/k", "host=db sslpassword=REDACTED sslkey=/k" },
        { "postgresql://h/db?sslpassword=k3y&x=1", "postgresql://h/db?sslpassword=REDACTED&x=1" },
        { "host=db SSLPASSWORD = k3y", "host=db SSLPASSWORD = REDACTED" },
        { "host=db mypassword=notakey", "host=db mypassword=notakey" },
        { "host=db password", "host=db password" },
    };
    char out[256];
    for (size_t i = 0; i < OF_ARRAY_LEN(t); i++) {
        cfg_redact_url(t[i].in, out, sizeof(out));
        assert_string_equal(out, t[i].out);
    }
    /* a buffer too small never leaks the secret, only truncates */
    for (size_t cap = 1; cap < 40; cap++) {
        char small[40];
        cfg_redact_url("host=db password=s3cretvalue", small, cap);
        assert_true(strlen(small) < cap);
        assert_null(strstr(small, "password=s"));
        cfg_redact_url("host=db password = s3cretvalue", small, cap);
        assert_true(strlen(small) < cap);
        assert_null(strstr(small, "s3c"));
    }
}

static void
test_dump_redacts_and_round_trips(void **state)
{
    (void)state;
    struct of_cfg cfg, again;
    char          err[256];
    char         *text = NULL;
    size_t        len = 0;

    write_cfg("server: { workers = 3; log_file = \"/tmp/a \\\"q\\\".log\"; unix_mode = \"0640\"; max_requests = 7; max_requests_jitter = 5000000000L; };\n"
              "cors: { allow_origins = [\"https://a.example\"]; };\n");
    setenv("ORDERFLOW_DATABASE_URL", "postgresql://app:hunter2-db-pass@db/of", 1);
    setenv("ORDERFLOW_JWT_SECRET", SECRET, 1);
    assert_int_equal(cfg_load(&cfg, cfgpath, true, err, sizeof(err)), OF_OK);

    FILE *f = open_memstream(&text, &len);
    cfg_dump(&cfg, f);
    fclose(f);
    assert_null(strstr(text, "hunter2-db-pass"));
    assert_null(strstr(text, SECRET));
    assert_non_null(strstr(text, "url = \"postgresql://app:REDACTED@db/of\";"));
    assert_non_null(strstr(text, "jwt_secret comes only from ORDERFLOW_JWT_SECRET: set (REDACTED)"));
    assert_non_null(strstr(text, "workers = 3;"));
    assert_non_null(strstr(text, "forwarded_allow_ips = [ \"127.0.0.1/32\", \"::1/128\" ];"));

    /* the dump is itself a valid config that loads to the same settings */
    unsetenv("ORDERFLOW_DATABASE_URL");
    write_cfg(text);
    if (cfg_load(&again, cfgpath, true, err, sizeof(err)) != OF_OK)
        fail_msg("dump does not load back: %s\n%s", err, text);
    assert_int_equal(again.server.workers, 3);
    assert_string_equal(again.server.log_file, "/tmp/a \"q\".log");
    assert_int_equal(again.server.unix_mode, 0640);
    assert_int_equal(again.server.max_requests, 7);
    assert_true(again.server.max_requests_jitter == 5000000000L);
    assert_non_null(strstr(text, "max_requests = 7;"));
    assert_int_equal(again.cors.n_origins, 1);
    assert_string_equal(again.database.url, "postgresql://app:REDACTED@db/of");
    assert_int_equal(again.server.n_forwarded_allow, 2);
    assert_memory_equal(&again.server.forwarded_allow[1], &cfg.server.forwarded_allow[1],
                        sizeof(struct netaddr_cidr));
    free(text);
    cfg_free(&cfg);
    cfg_free(&again);
}

/* The settings API.md adds for events, cache, tracing and replicas: their
 * defaults, every new kind (a float, a list of integers) from the file, and
 * their range errors. */
static void
test_event_cache_tracing_settings(void **state)
{
    (void)state;
    struct of_cfg cfg;
    char          err[256];

    assert_int_equal(cfg_load(&cfg, NULL, false, err, sizeof(err)), OF_OK);
    assert_true(cfg.jobs.enabled);
    assert_int_equal(cfg.jobs.concurrency, 16);
    assert_int_equal(cfg.jobs.lease, 60);
    assert_int_equal(cfg.webhooks.n_retry_schedule, 7);
    assert_int_equal(cfg.webhooks.retry_schedule[0], 5);
    assert_int_equal(cfg.webhooks.retry_schedule[6], 36000);
    assert_string_equal(cfg.mail.from, "orders@localhost");
    assert_null(cfg.mail.smtp_url);
    assert_true(cfg.cache.enabled);
    assert_int_equal(cfg.cache.max_entries, 100000);
    assert_true(cfg.tracing.sample_ratio == 1.0);
    assert_string_equal(cfg.tracing.service_name, "orderflow");
    assert_true(cfg.database.replica_max_lag == 1.0);
    cfg_free(&cfg);

    write_cfg("jobs: { enabled = false; concurrency = 4; lease = 10; retention_days = 2; };\n"
              "mail: { smtp_url = \"smtp://127.0.0.1:2525\"; from = \"a@b.c\"; starttls = true; };\n"
              "webhooks: { timeout = 3; retry_schedule = [1, 2]; allow_http = true; allow_private = true; };\n"
              "cache: { enabled = false; max_entries = 10; ttl = 5; };\n"
              "tracing: { otlp_endpoint = \"http://127.0.0.1:4318\"; sample_ratio = 0.25; slow_statement_ms = 0; };\n"
              "database: { replica_url = \"host=/tmp port=1\"; replica_max_lag = 2; };\n");
    if (cfg_load(&cfg, cfgpath, false, err, sizeof(err)) != OF_OK)
        fail_msg("%s", err);
    assert_false(cfg.jobs.enabled);
    assert_int_equal(cfg.jobs.retention_days, 2);
    assert_string_equal(cfg.mail.smtp_url, "smtp://127.0.0.1:2525");
    assert_true(cfg.mail.starttls);
    assert_int_equal(cfg.webhooks.n_retry_schedule, 2);
    assert_int_equal(cfg.webhooks.retry_schedule[1], 2);
    assert_true(cfg.webhooks.allow_http && cfg.webhooks.allow_private);
    assert_false(cfg.cache.enabled);
    assert_true(cfg.tracing.sample_ratio == 0.25);
    assert_int_equal(cfg.tracing.slow_statement_ms, 0);
    assert_true(cfg.database.replica_max_lag == 2.0);
    cfg_free(&cfg);

    expect_error("tracing: { sample_ratio = 1.5; };\n", "tracing.sample_ratio must be a number in 0..1", NULL);
    expect_error("tracing: { sample_ratio = \"x\"; };\n", "tracing.sample_ratio must be a number", NULL);
    expect_error("webhooks: { retry_schedule = [0]; };\n", "webhooks.retry_schedule", "must be 1..604800");
    expect_error("webhooks: { retry_schedule = [\"5\"]; };\n", "webhooks.retry_schedule must be a list of integers", NULL);
    expect_error("jobs: { concurrency = 0; };\n", "jobs.concurrency must be 1..1024", NULL);
    expect_error("cache: { size = 1; };\n", "unknown setting cache.size", NULL);
}

/* SMTP credentials come only from the environment and are never printed. */
static void
test_smtp_login_from_env_only(void **state)
{
    (void)state;
    struct of_cfg cfg;
    char          err[256], *buf = NULL;
    size_t        len = 0;

    setenv("ORDERFLOW_SMTP_USER", "mailer", 1);
    setenv("ORDERFLOW_SMTP_PASSWORD", "hunter2-smtp", 1);
    assert_int_equal(cfg_load(&cfg, NULL, false, err, sizeof(err)), OF_OK);
    unsetenv("ORDERFLOW_SMTP_USER");
    unsetenv("ORDERFLOW_SMTP_PASSWORD");
    assert_string_equal(cfg.mail.smtp_user, "mailer");
    assert_string_equal(cfg.mail.smtp_password, "hunter2-smtp");
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    cfg_dump(&cfg, f);
    fclose(f);
    assert_null(strstr(buf, "hunter2-smtp"));
    assert_null(strstr(buf, "mailer"));
    free(buf);
    cfg_free(&cfg);
    expect_error("mail: { smtp_password = \"x\"; };\n", "unknown setting mail.smtp_password", NULL);
}

static void
test_free_is_idempotent(void **state)
{
    (void)state;
    struct of_cfg cfg;
    char          err[128];
    assert_int_equal(cfg_load(&cfg, NULL, false, err, sizeof(err)), OF_OK);
    cfg_free(&cfg);
    cfg_free(&cfg);
    cfg_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults_without_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sample_file_loads_and_equals_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_valid_file_sets_every_kind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_string_means_not_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_syntax_error_names_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_settings_are_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_types_are_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_range_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_listen_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_cidr_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listen_parse_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cidr_parse_and_match, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_overrides_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_env_values_are_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redact_url_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dump_redacts_and_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_cache_tracing_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smtp_login_from_env_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_is_idempotent, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

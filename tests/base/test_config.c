/* Configuration from the environment (SPEC 2.1, 14): defaults, every kind of rejection, CIDRs. */
#include "base/config.h"
#include "base/util.h"
#include "tests/runner.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
/* Tests end with _exit(), which skips LeakSanitizer's own check: run it by hand. */
#define LEAK_CHECK() __lsan_do_leak_check()
#else
#define LEAK_CHECK() ((void)0)
#endif

#define ERR_LEN   512
#define TEST_NCPU 4
#define N_VARS    49 /* variables of SPEC 2.1, SWITCHBOARD_CHAT_RUNS_PER_MIN and _POSTCALL_RETRY_MS \
                      */

/* Unsets every variable config_from_env() reads, so that the caller's shell cannot leak in. */
static void clear_env(void)
{
    char names[256][128];
    size_t n = 0;

    for (char **e = environ; *e != NULL && n < ARRAY_LEN(names); e++) {
        if (strncmp(*e, "SWITCHBOARD_", 12) != 0 && strncmp(*e, "OPENAI_API_KEY=", 15) != 0)
            continue;
        size_t len = strcspn(*e, "=");
        if (len >= sizeof(names[0]))
            continue;
        memcpy(names[n], *e, len);
        names[n++][len] = '\0';
    }
    for (size_t i = 0; i < n; i++)
        unsetenv(names[i]);
}

/* Sets name=value in a clean environment, loads and expects -EINVAL; returns the message. */
static const char *reject(const char *name, const char *value)
{
    static char err[ERR_LEN];
    config_t c;

    clear_env();
    setenv(name, value, 1);
    int rc = config_from_env(&c, TEST_NCPU, err, sizeof(err));
    if (rc != -EINVAL)
        TEST_FAIL_("%s=\"%s\" was accepted (rc %d)", name, value, rc);
    if (strstr(err, name) == NULL)
        TEST_FAIL_("error does not name %s: %s", name, err);
    return err;
}

/* reject() and check that the message quotes the value and contains why. */
static void reject_quoted(const char *name, const char *value, const char *why)
{
    char quoted[256];
    const char *err = reject(name, value);

    snprintf(quoted, sizeof(quoted), "invalid %s=\"%s\": ", name, value);
    ASSERT_STR_CONTAINS(err, quoted);
    ASSERT_STR_CONTAINS(err, why);
}

static void accept(config_t *c)
{
    char err[ERR_LEN] = "";
    int rc = config_from_env(c, TEST_NCPU, err, sizeof(err));
    if (rc != 0)
        TEST_FAIL_("rejected: %s", err);
}

/* A file under /tmp with some content; the name is written to path. */
static void temp_file(char *path, size_t len, const char *content)
{
    snprintf(path, len, "/tmp/sb_test_config_XXXXXX");
    int fd = mkstemp(path);
    ASSERT(fd >= 0);
    ASSERT_EQ(write(fd, content, strlen(content)), (long long)strlen(content));
    close(fd);
}

static void v4(uint8_t out[16], uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    memset(out, 0, 16);
    out[10] = out[11] = 0xff;
    out[12] = a;
    out[13] = b;
    out[14] = c;
    out[15] = d;
}

static void v6(uint8_t out[16], const char *text)
{
    cidr_t net;
    ASSERT_EQ(cidr_parse(text, &net), 0);
    ASSERT_EQ(net.prefix, 128);
    memcpy(out, net.addr, 16);
}

TEST(config_defaults)
{
    config_t c;

    clear_env();
    accept(&c);
    ASSERT_STR_EQ(c.host, "127.0.0.1");
    ASSERT_EQ(c.port, 8080);
    ASSERT_EQ(c.net_threads, 1);
    ASSERT_EQ(c.workers, TEST_NCPU);
    ASSERT_EQ(c.max_sessions, 100);
    ASSERT_EQ(c.max_actors, 100000);
    ASSERT_EQ(c.mailbox_cap, 1024);
    ASSERT_EQ(c.token_ttl_s, 60);
    ASSERT_EQ(c.session_idle_s, 300);
    ASSERT_EQ(c.session_max_s, 7200);
    ASSERT_EQ(c.n_allowed_origins, 2);
    ASSERT_STR_EQ(c.allowed_origins[0], "http://127.0.0.1:8080");
    ASSERT_STR_EQ(c.allowed_origins[1], "http://localhost:8080");
    ASSERT(!c.allow_any_origin);
    ASSERT_EQ(c.max_control_bytes, 10240);
    ASSERT_EQ(c.max_audio_bytes, 102400);
    ASSERT_EQ(c.sessions_per_min, 30);
    ASSERT_EQ(c.sessions_per_ip, 10);
    ASSERT_EQ(c.max_connections, 10000);
    ASSERT_EQ(c.connections_per_ip, 100);
    ASSERT_EQ(c.mint_auth, MINT_AUTH_OPEN);
    ASSERT_EQ(c.n_trusted_proxies, 0);
    ASSERT(c.tls_cert == NULL && c.tls_key == NULL);
    ASSERT_EQ(c.replay_items, 50);
    ASSERT_EQ(c.retention_days, 30);
    ASSERT(c.openai_api_key == NULL);
    ASSERT_STR_EQ(c.realtime_url, "wss://api.openai.com/v1/realtime");
    ASSERT_STR_EQ(c.realtime_model, "gpt-realtime");
    ASSERT_STR_EQ(c.openai_base_url, "https://api.openai.com/v1");
    ASSERT_STR_EQ(c.supervisor_model, "gpt-4o-mini");
    ASSERT_EQ(c.supervisor_max_iterations, 10);
    ASSERT_EQ(c.max_supervisor_runs, 64);
    ASSERT_EQ(c.chat_runs_per_min, 20);
    ASSERT_EQ(c.tool_timeout_ms, 15000);
    ASSERT_EQ(c.mcp_call_timeout_ms, 30000);
    ASSERT_EQ(c.upstream_recycle_s, 3300);
    ASSERT(c.config_path == NULL);
    ASSERT_STR_EQ(c.db_path, "var/switchboard.db");
    ASSERT(c.api_secret == NULL && c.jwt_secret == NULL && c.postcall_webhook_url == NULL);
    ASSERT_EQ(c.log_level, LOG_INFO);
    ASSERT_EQ(c.log_format, LOG_FORMAT_TEXT);
    g_config = &c;
    ASSERT_EQ(g_config->port, 8080);
    config_free(&c);
    config_free(&c); /* idempotent */
    LEAK_CHECK();
}

TEST(config_workers_default_is_ncpu_clamped)
{
    config_t c;
    char err[ERR_LEN];

    clear_env();
    ASSERT_EQ(config_from_env(&c, 0, err, sizeof(err)), 0);
    ASSERT_EQ(c.workers, 1);
    config_free(&c);
    ASSERT_EQ(config_from_env(&c, 1000, err, sizeof(err)), 0);
    ASSERT_EQ(c.workers, 256);
    config_free(&c);
    setenv("SWITCHBOARD_WORKERS", "3", 1);
    ASSERT_EQ(config_from_env(&c, 8, err, sizeof(err)), 0);
    ASSERT_EQ(c.workers, 3);
    config_free(&c);
    reject_quoted("SWITCHBOARD_WORKERS", "", "must be a whole number in 1..256");
}

TEST(config_numbers_at_their_bounds)
{
    config_t c;

    clear_env();
    setenv("SWITCHBOARD_PORT", "0", 1);
    setenv("SWITCHBOARD_NET_THREADS", "64", 1);
    setenv("SWITCHBOARD_WORKERS", "256", 1);
    setenv("SWITCHBOARD_MAX_SESSIONS", "1000000", 1);
    setenv("SWITCHBOARD_MAILBOX_CAP", "1", 1);
    setenv("SWITCHBOARD_TOKEN_TTL_S", "86400", 1);
    setenv("SWITCHBOARD_SESSION_IDLE_S", "1", 1);
    setenv("SWITCHBOARD_TOOL_TIMEOUT_MS", "100", 1);
    setenv("SWITCHBOARD_MCP_CALL_TIMEOUT_MS", "600000", 1);
    setenv("SWITCHBOARD_RETENTION_DAYS", "1000000", 1);
    setenv("SWITCHBOARD_REPLAY_ITEMS", "007", 1);
    accept(&c);
    ASSERT_EQ(c.port, 0);
    ASSERT_EQ(c.net_threads, 64);
    ASSERT_EQ(c.workers, 256);
    ASSERT_EQ(c.max_sessions, 1000000);
    ASSERT_EQ(c.mailbox_cap, 1);
    ASSERT_EQ(c.token_ttl_s, 86400);
    ASSERT_EQ(c.session_idle_s, 1);
    ASSERT_EQ(c.tool_timeout_ms, 100);
    ASSERT_EQ(c.mcp_call_timeout_ms, 600000);
    ASSERT_EQ(c.retention_days, 1000000);
    ASSERT_EQ(c.replay_items, 7);
    config_free(&c);
    clear_env();
    setenv("SWITCHBOARD_PORT", "65535", 1);
    accept(&c);
    ASSERT_EQ(c.port, 65535);
    config_free(&c);
    LEAK_CHECK();
}

TEST(config_port_message_is_exact)
{
    ASSERT_STR_EQ(reject("SWITCHBOARD_PORT", "70000"),
                  "invalid SWITCHBOARD_PORT=\"70000\": must be a whole number in 0..65535");
}

TEST(config_rejects_numbers_that_are_not_whole)
{
    static const char *const bad[] = {"",
                                      "abc",
                                      "1.5",
                                      "-3",
                                      "10x",
                                      "+5",
                                      " 5",
                                      "5 ",
                                      "0x10",
                                      "1e3",
                                      "99999999999999999999999999"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        reject_quoted("SWITCHBOARD_PORT", bad[i], "must be a whole number in 0..65535");
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        reject_quoted("SWITCHBOARD_MAX_SESSIONS", bad[i], "must be a whole number in 1..1000000");
}

TEST(config_rejects_numbers_out_of_range)
{
    reject_quoted("SWITCHBOARD_PORT", "65536", "in 0..65535");
    reject_quoted("SWITCHBOARD_NET_THREADS", "0", "in 1..64");
    reject_quoted("SWITCHBOARD_NET_THREADS", "65", "in 1..64");
    reject_quoted("SWITCHBOARD_WORKERS", "0", "in 1..256");
    reject_quoted("SWITCHBOARD_WORKERS", "257", "in 1..256");
    reject_quoted("SWITCHBOARD_MAX_ACTORS", "0", "in 1..1000000");
    reject_quoted("SWITCHBOARD_MAX_ACTORS", "1000001", "in 1..1000000");
    reject_quoted("SWITCHBOARD_TOKEN_TTL_S", "0", "in 1..86400");
    reject_quoted("SWITCHBOARD_SESSION_MAX_S", "86401", "in 1..86400");
    reject_quoted("SWITCHBOARD_TOOL_TIMEOUT_MS", "99", "in 100..600000");
    reject_quoted("SWITCHBOARD_MCP_CALL_TIMEOUT_MS", "600001", "in 100..600000");
    reject_quoted("SWITCHBOARD_POSTCALL_RETRY_MS", "99", "in 100..600000");
    reject_quoted("SWITCHBOARD_RETENTION_DAYS", "0", "in 1..1000000");
    reject_quoted("SWITCHBOARD_REPLAY_ITEMS", "1000001", "in 1..1000000");
}

TEST(config_every_number_rejects_garbage)
{
    static const char *const names[] = {
        "SWITCHBOARD_PORT",
        "SWITCHBOARD_NET_THREADS",
        "SWITCHBOARD_WORKERS",
        "SWITCHBOARD_MAX_SESSIONS",
        "SWITCHBOARD_MAX_ACTORS",
        "SWITCHBOARD_MAILBOX_CAP",
        "SWITCHBOARD_TOKEN_TTL_S",
        "SWITCHBOARD_SESSION_IDLE_S",
        "SWITCHBOARD_SESSION_MAX_S",
        "SWITCHBOARD_MAX_CONTROL_BYTES",
        "SWITCHBOARD_MAX_AUDIO_BYTES",
        "SWITCHBOARD_SESSIONS_PER_MIN",
        "SWITCHBOARD_SESSIONS_PER_IP",
        "SWITCHBOARD_MAX_CONNECTIONS",
        "SWITCHBOARD_CONNECTIONS_PER_IP",
        "SWITCHBOARD_REPLAY_ITEMS",
        "SWITCHBOARD_RETENTION_DAYS",
        "SWITCHBOARD_SUPERVISOR_MAX_ITERATIONS",
        "SWITCHBOARD_MAX_SUPERVISOR_RUNS",
        "SWITCHBOARD_CHAT_RUNS_PER_MIN",
        "SWITCHBOARD_TOOL_TIMEOUT_MS",
        "SWITCHBOARD_MCP_CALL_TIMEOUT_MS",
        "SWITCHBOARD_POSTCALL_RETRY_MS",
        "SWITCHBOARD_UPSTREAM_RECYCLE_S",
    };
    for (size_t i = 0; i < ARRAY_LEN(names); i++)
        reject_quoted(names[i], "12abc", "must be a whole number in ");
    LEAK_CHECK();
}

TEST(config_words)
{
    config_t c;

    clear_env();
    setenv("SWITCHBOARD_MINT_AUTH", "secret", 1);
    setenv("SWITCHBOARD_LOG_LEVEL", "debug", 1);
    setenv("SWITCHBOARD_LOG_FORMAT", "json", 1);
    accept(&c);
    ASSERT_EQ(c.mint_auth, MINT_AUTH_SECRET);
    ASSERT_EQ(c.log_level, LOG_DEBUG);
    ASSERT_EQ(c.log_format, LOG_FORMAT_JSON);
    config_free(&c);
    setenv("SWITCHBOARD_LOG_LEVEL", "error", 1);
    accept(&c);
    ASSERT_EQ(c.log_level, LOG_ERROR);
    config_free(&c);
    reject_quoted("SWITCHBOARD_MINT_AUTH", "Secret", "must be one of open|secret");
    reject_quoted("SWITCHBOARD_MINT_AUTH", "", "must be one of open|secret");
    reject_quoted("SWITCHBOARD_LOG_LEVEL", "verbose", "must be one of error|warn|info|debug");
    reject_quoted("SWITCHBOARD_LOG_FORMAT", "xml", "must be one of text|json");
    LEAK_CHECK();
}

TEST(config_origins_are_trimmed_and_lowercased)
{
    config_t c;

    clear_env();
    setenv("SWITCHBOARD_ALLOWED_ORIGINS",
           " http://a.example ,\tHTTPS://Shop.Example:8443 ,"
           "http://[::1]:8080",
           1);
    accept(&c);
    ASSERT(!c.allow_any_origin);
    ASSERT_EQ(c.n_allowed_origins, 3);
    ASSERT_STR_EQ(c.allowed_origins[0], "http://a.example");
    ASSERT_STR_EQ(c.allowed_origins[1], "https://shop.example:8443");
    ASSERT_STR_EQ(c.allowed_origins[2], "http://[::1]:8080");
    config_free(&c);
    LEAK_CHECK();
}

TEST(config_origins_star)
{
    config_t c;

    clear_env();
    setenv("SWITCHBOARD_ALLOWED_ORIGINS", "*", 1);
    accept(&c);
    ASSERT(c.allow_any_origin);
    ASSERT_EQ(c.n_allowed_origins, 0);
    config_free(&c);
    setenv("SWITCHBOARD_ALLOWED_ORIGINS", "https://x.example, *", 1);
    accept(&c);
    ASSERT(c.allow_any_origin);
    ASSERT_EQ(c.n_allowed_origins, 1);
    config_free(&c);
    LEAK_CHECK();
}

TEST(config_origins_rejected)
{
    const char *err;

    err = reject("SWITCHBOARD_ALLOWED_ORIGINS", "http://ok.example,ftp://files.example");
    ASSERT_STR_CONTAINS(err, "invalid SWITCHBOARD_ALLOWED_ORIGINS=\"http://ok.example,ftp://files."
                             "example\": \"ftp://files.example\" is not an origin");
    ASSERT_STR_CONTAINS(reject("SWITCHBOARD_ALLOWED_ORIGINS", "http://x.example/"),
                        "\"http://x.example/\" is not an origin: an origin has no path");
    ASSERT_STR_CONTAINS(reject("SWITCHBOARD_ALLOWED_ORIGINS", "localhost:8080"),
                        "must start with http:// or https://");
    ASSERT_STR_CONTAINS(reject("SWITCHBOARD_ALLOWED_ORIGINS", "http://"), "not an origin");
    ASSERT_STR_CONTAINS(reject("SWITCHBOARD_ALLOWED_ORIGINS", "http://x:0"), "port");
    ASSERT_STR_CONTAINS(reject("SWITCHBOARD_ALLOWED_ORIGINS", "http://x:65536"), "port");
    ASSERT_STR_CONTAINS(reject("SWITCHBOARD_ALLOWED_ORIGINS", "http://x:"), "port");
    ASSERT_STR_CONTAINS(reject("SWITCHBOARD_ALLOWED_ORIGINS", "http://[::1"), "IPv6");
    ASSERT_STR_CONTAINS(reject("SWITCHBOARD_ALLOWED_ORIGINS", "http://a b"), "not an origin");
    ASSERT_STR_CONTAINS(reject("SWITCHBOARD_ALLOWED_ORIGINS", "http://a,,http://b"), "empty entry");
    ASSERT_STR_CONTAINS(reject("SWITCHBOARD_ALLOWED_ORIGINS", ""), "empty entry");
    ASSERT_STR_CONTAINS(reject("SWITCHBOARD_ALLOWED_ORIGINS", "http://a,"), "empty entry");
    LEAK_CHECK();
}

TEST(config_origins_at_most_64)
{
    char list[64 * 32 + 64];
    size_t o = 0;
    config_t c;

    for (int i = 0; i < CONFIG_MAX_ORIGINS; i++)
        o += (size_t)snprintf(list + o, sizeof(list) - o, "%shttp://h%d.example", i ? "," : "", i);
    clear_env();
    setenv("SWITCHBOARD_ALLOWED_ORIGINS", list, 1);
    accept(&c);
    ASSERT_EQ(c.n_allowed_origins, CONFIG_MAX_ORIGINS);
    config_free(&c);
    snprintf(list + o, sizeof(list) - o, ",http://one-too-many.example");
    ASSERT_STR_CONTAINS(reject("SWITCHBOARD_ALLOWED_ORIGINS", list), "at most 64 origins");
    LEAK_CHECK();
}

TEST(config_trusted_proxies)
{
    config_t c;
    uint8_t a[16];

    clear_env();
    setenv("SWITCHBOARD_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7 ,::1,2001:db8::/32", 1);
    accept(&c);
    ASSERT_EQ(c.n_trusted_proxies, 4);
    v4(a, 10, 200, 3, 4);
    ASSERT(cidr_contains(&c.trusted_proxies[0], a));
    v4(a, 11, 0, 0, 1);
    ASSERT(!cidr_contains(&c.trusted_proxies[0], a));
    v4(a, 192, 168, 1, 7);
    ASSERT(cidr_contains(&c.trusted_proxies[1], a));
    v4(a, 192, 168, 1, 8);
    ASSERT(!cidr_contains(&c.trusted_proxies[1], a));
    v6(a, "::1");
    ASSERT(cidr_contains(&c.trusted_proxies[2], a));
    v6(a, "2001:db8:ffff::1");
    ASSERT(cidr_contains(&c.trusted_proxies[3], a));
    v6(a, "2001:db9::1");
    ASSERT(!cidr_contains(&c.trusted_proxies[3], a));
    config_free(&c);
    setenv("SWITCHBOARD_TRUSTED_PROXIES", "", 1); /* empty = none */
    accept(&c);
    ASSERT_EQ(c.n_trusted_proxies, 0);
    config_free(&c);
    LEAK_CHECK();
}

TEST(config_trusted_proxies_rejected)
{
    static const char *const bad[] = {"10.0.0.0/33", "300.1.1.1",    "10.0.0.0/",  "10.0.0.0/-1",
                                      "fe80::/129",  "abc",          "10.0.0/8",   "10.0.0.0/+8",
                                      "::1/ 64",     "fe80::1%eth0", "1.2.3.4/8/8"};
    char quoted[64];

    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        const char *err = reject("SWITCHBOARD_TRUSTED_PROXIES", bad[i]);
        snprintf(quoted, sizeof(quoted), "\"%s\" is not a network", bad[i]);
        ASSERT_STR_CONTAINS(err, quoted);
    }
    ASSERT_STR_CONTAINS(reject("SWITCHBOARD_TRUSTED_PROXIES", "10.0.0.0/8,,::1"), "empty entry");
    LEAK_CHECK();
}

TEST(config_cidr_v4)
{
    cidr_t net;
    uint8_t a[16];
    char text[64];

    ASSERT_EQ(cidr_parse("172.16.5.9/12", &net), 0);
    ASSERT_EQ(net.prefix, 96 + 12);
    ASSERT_EQ(cidr_format(&net, text, sizeof(text)), 0);
    ASSERT_STR_EQ(text, "172.16.0.0/12"); /* host bits dropped */
    v4(a, 172, 31, 255, 255);
    ASSERT(cidr_contains(&net, a));
    v4(a, 172, 32, 0, 0);
    ASSERT(!cidr_contains(&net, a));
    v4(a, 172, 15, 255, 255);
    ASSERT(!cidr_contains(&net, a));

    ASSERT_EQ(cidr_parse("0.0.0.0/0", &net), 0);
    v4(a, 8, 8, 8, 8);
    ASSERT(cidr_contains(&net, a));
    v6(a, "2001:db8::1"); /* an IPv4 network never holds a real IPv6 address */
    ASSERT(!cidr_contains(&net, a));

    ASSERT_EQ(cidr_parse("127.0.0.1", &net), 0);
    ASSERT_EQ(net.prefix, 128);
    v4(a, 127, 0, 0, 1);
    ASSERT(cidr_contains(&net, a));
    v4(a, 127, 0, 0, 2);
    ASSERT(!cidr_contains(&net, a));
    ASSERT_EQ(cidr_format(&net, text, sizeof(text)), 0);
    ASSERT_STR_EQ(text, "127.0.0.1/32");
    ASSERT_EQ(cidr_format(&net, text, 4), -ENOSPC);

    ASSERT_EQ(cidr_parse("1.2.3.4/7", &net), 0); /* a prefix off the byte boundary */
    v4(a, 0, 255, 255, 255);
    ASSERT(cidr_contains(&net, a));
    v4(a, 2, 0, 0, 0);
    ASSERT(!cidr_contains(&net, a));

    ASSERT_EQ(cidr_parse("", &net), -EINVAL);
    ASSERT_EQ(cidr_parse("/8", &net), -EINVAL);
    ASSERT_EQ(cidr_parse("01.2.3.4", &net), -EINVAL);
    ASSERT_EQ(cidr_parse("1.2.3.4/033", &net), -EINVAL);
}

TEST(config_cidr_v6)
{
    cidr_t net;
    uint8_t a[16];
    char text[64];

    ASSERT_EQ(cidr_parse("2001:db8:abcd::/48", &net), 0);
    ASSERT_EQ(net.prefix, 48);
    v6(a, "2001:db8:abcd:12::1");
    ASSERT(cidr_contains(&net, a));
    v6(a, "2001:db8:abce::1");
    ASSERT(!cidr_contains(&net, a));
    ASSERT_EQ(cidr_format(&net, text, sizeof(text)), 0);
    ASSERT_STR_EQ(text, "2001:db8:abcd::/48");

    ASSERT_EQ(cidr_parse("fe80::1/10", &net), 0);
    v6(a, "febf::1");
    ASSERT(cidr_contains(&net, a));
    v6(a, "fec0::1");
    ASSERT(!cidr_contains(&net, a));

    ASSERT_EQ(cidr_parse("::/0", &net), 0);
    v4(a, 1, 2, 3, 4);
    ASSERT(cidr_contains(&net, a));

    /* An IPv4-mapped network written in IPv6 form is the same network. */
    ASSERT_EQ(cidr_parse("::ffff:10.0.0.0/104", &net), 0);
    v4(a, 10, 9, 9, 9);
    ASSERT(cidr_contains(&net, a));
    ASSERT_EQ(cidr_format(&net, text, sizeof(text)), 0);
    ASSERT_STR_EQ(text, "10.0.0.0/8");

    ASSERT_EQ(cidr_parse("::1/128", &net), 0);
    ASSERT_EQ(cidr_parse("::1/129", &net), -EINVAL);
    ASSERT_EQ(cidr_parse("2001:db8::g", &net), -EINVAL);
    ASSERT_EQ(cidr_parse("1:2:3:4:5:6:7:8:9", &net), -EINVAL);
}

TEST(config_tls_pair_and_files)
{
    char cert[64], key[64];
    config_t c;
    const char *err;

    temp_file(cert, sizeof(cert), "cert");
    temp_file(key, sizeof(key), "key");
    clear_env();
    setenv("SWITCHBOARD_TLS_CERT", cert, 1);
    setenv("SWITCHBOARD_TLS_KEY", key, 1);
    accept(&c);
    ASSERT_STR_EQ(c.tls_cert, cert);
    ASSERT_STR_EQ(c.tls_key, key);
    config_free(&c);

    err = reject("SWITCHBOARD_TLS_CERT", cert);
    ASSERT_STR_CONTAINS(err, "SWITCHBOARD_TLS_KEY must be set as well");
    err = reject("SWITCHBOARD_TLS_KEY", key);
    ASSERT_STR_CONTAINS(err, "invalid SWITCHBOARD_TLS_KEY=\"");
    ASSERT_STR_CONTAINS(err, "SWITCHBOARD_TLS_CERT must be set as well");

    clear_env();
    setenv("SWITCHBOARD_TLS_CERT", cert, 1);
    setenv("SWITCHBOARD_TLS_KEY", "/nonexistent/key.pem", 1);
    char e2[ERR_LEN];
    ASSERT_EQ(config_from_env(&c, TEST_NCPU, e2, sizeof(e2)), -EINVAL);
    ASSERT_STR_CONTAINS(e2, "invalid SWITCHBOARD_TLS_KEY=\"/nonexistent/key.pem\": cannot read "
                            "the file: No such file or directory");
    reject_quoted("SWITCHBOARD_TLS_CERT", "/tmp", "not a regular file");

    /* Both empty = both unset. */
    clear_env();
    setenv("SWITCHBOARD_TLS_CERT", "", 1);
    setenv("SWITCHBOARD_TLS_KEY", "", 1);
    accept(&c);
    ASSERT(c.tls_cert == NULL && c.tls_key == NULL);
    config_free(&c);
    unlink(cert);
    unlink(key);
    LEAK_CHECK();
}

TEST(config_unreadable_files)
{
    char path[64];

    if (geteuid() == 0)
        return; /* root reads anything: mode 000 proves nothing */
    temp_file(path, sizeof(path), "{}");
    chmod(path, 0);
    reject_quoted("SWITCHBOARD_CONFIG", path, "cannot read the file: Permission denied");
    unlink(path);
}

TEST(config_agent_config_file)
{
    char path[64];
    config_t c;

    reject_quoted("SWITCHBOARD_CONFIG", "/nonexistent/agent.json",
                  "cannot read the file: No such file or directory");
    temp_file(path, sizeof(path), "{}");
    clear_env();
    setenv("SWITCHBOARD_CONFIG", path, 1);
    accept(&c);
    ASSERT_STR_EQ(c.config_path, path);
    config_free(&c);
    setenv("SWITCHBOARD_CONFIG", "", 1); /* empty = the built-in demo */
    accept(&c);
    ASSERT(c.config_path == NULL);
    config_free(&c);
    unlink(path);
    LEAK_CHECK();
}

TEST(config_webhook_needs_api_secret)
{
    config_t c;
    const char *err;

    err = reject("SWITCHBOARD_POSTCALL_WEBHOOK_URL", "https://crm.example/hook");
    ASSERT_STR_CONTAINS(err, "invalid SWITCHBOARD_POSTCALL_WEBHOOK_URL=\"https://crm.example/"
                             "hook\": needs SWITCHBOARD_API_SECRET");
    clear_env();
    setenv("SWITCHBOARD_POSTCALL_WEBHOOK_URL", "https://crm.example/hook", 1);
    setenv("SWITCHBOARD_API_SECRET", "", 1); /* empty counts as unset */
    char e2[ERR_LEN];
    ASSERT_EQ(config_from_env(&c, TEST_NCPU, e2, sizeof(e2)), -EINVAL);
    ASSERT_STR_CONTAINS(e2, "needs SWITCHBOARD_API_SECRET");
    setenv("SWITCHBOARD_API_SECRET", "s3cret", 1);
    accept(&c);
    ASSERT_STR_EQ(c.postcall_webhook_url, "https://crm.example/hook");
    ASSERT_STR_EQ(c.api_secret, "s3cret");
    config_free(&c);
    setenv("SWITCHBOARD_POSTCALL_WEBHOOK_URL", "ftp://crm.example/hook", 1);
    ASSERT_EQ(config_from_env(&c, TEST_NCPU, e2, sizeof(e2)), -EINVAL);
    ASSERT_STR_CONTAINS(e2, "must be a http:// or https:// URL");
    LEAK_CHECK();
}

TEST(config_urls)
{
    config_t c;

    clear_env();
    setenv("SWITCHBOARD_REALTIME_URL", "ws://127.0.0.1:9000/v1/realtime", 1);
    setenv("SWITCHBOARD_OPENAI_BASE_URL", "http://[::1]:9000/v1//", 1);
    accept(&c);
    ASSERT_STR_EQ(c.realtime_url, "ws://127.0.0.1:9000/v1/realtime");
    ASSERT_STR_EQ(c.openai_base_url, "http://[::1]:9000/v1");
    config_free(&c);
    reject_quoted("SWITCHBOARD_REALTIME_URL", "https://api.openai.com/v1/realtime",
                  "must be a ws:// or wss:// URL");
    reject_quoted("SWITCHBOARD_REALTIME_URL", "", "must be a ws:// or wss:// URL");
    reject_quoted("SWITCHBOARD_REALTIME_URL", "wss://", "must be a ws:// or wss:// URL");
    reject_quoted("SWITCHBOARD_REALTIME_URL", "wss:///v1", "host is missing");
    reject_quoted("SWITCHBOARD_REALTIME_URL", "wss://host:99999/", "port");
    reject_quoted("SWITCHBOARD_OPENAI_BASE_URL", "api.openai.com/v1",
                  "must be a http:// or https:// URL");
    reject_quoted("SWITCHBOARD_OPENAI_BASE_URL", "https://api openai.com", "spaces");
    reject_quoted("SWITCHBOARD_OPENAI_BASE_URL", "https://user:pw@api.example/v1", "credentials");
    LEAK_CHECK();
}

TEST(config_strings)
{
    config_t c;

    clear_env();
    setenv("SWITCHBOARD_HOST", "::", 1);
    setenv("SWITCHBOARD_REALTIME_MODEL", "gpt-realtime-2025-08-28", 1);
    setenv("SWITCHBOARD_SUPERVISOR_MODEL", "ft:gpt-4o-mini:org::abc", 1);
    setenv("SWITCHBOARD_DB", ":memory:", 1);
    accept(&c);
    ASSERT_STR_EQ(c.host, "::");
    ASSERT_STR_EQ(c.realtime_model, "gpt-realtime-2025-08-28");
    ASSERT_STR_EQ(c.supervisor_model, "ft:gpt-4o-mini:org::abc");
    ASSERT_STR_EQ(c.db_path, ":memory:");
    config_free(&c);
    reject_quoted("SWITCHBOARD_HOST", "", "must be a host name or IP address");
    reject_quoted("SWITCHBOARD_HOST", "my host", "must be a host name or IP address");
    reject_quoted("SWITCHBOARD_HOST", "[::1]", "must be a host name or IP address");
    reject_quoted("SWITCHBOARD_REALTIME_MODEL", "gpt realtime", "must be a model name");
    reject_quoted("SWITCHBOARD_SUPERVISOR_MODEL", "", "must be a model name");
    reject_quoted("SWITCHBOARD_DB", "", "must be a file path");
    LEAK_CHECK();
}

TEST(config_secrets_are_never_echoed)
{
    static const char *const names[] = {"OPENAI_API_KEY", "SWITCHBOARD_API_SECRET",
                                        "SWITCHBOARD_JWT_SECRET"};
    char msg[128];
    config_t c;

    for (size_t i = 0; i < ARRAY_LEN(names); i++) {
        const char *err = reject(names[i], "sk-topsecret\nvalue");
        snprintf(msg, sizeof(msg), "invalid %s=[redacted]: must not contain control characters",
                 names[i]);
        ASSERT_STR_EQ(err, msg);
        ASSERT(strstr(err, "topsecret") == NULL);
    }
    clear_env();
    setenv("OPENAI_API_KEY", "", 1);
    setenv("SWITCHBOARD_JWT_SECRET", "", 1);
    setenv("SWITCHBOARD_API_SECRET", "a b c", 1); /* a passphrase may have spaces */
    accept(&c);
    ASSERT(c.openai_api_key == NULL);
    ASSERT(c.jwt_secret == NULL);
    ASSERT_STR_EQ(c.api_secret, "a b c");
    config_free(&c);
    LEAK_CHECK();
}

TEST(config_bad_values_are_escaped_and_cut)
{
    char big[400];

    ASSERT_STR_CONTAINS(reject("SWITCHBOARD_PORT", "1\n2\"3"),
                        "invalid SWITCHBOARD_PORT=\"1\\x0a2\\\"3\": must be");
    memset(big, '9', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    const char *err = reject("SWITCHBOARD_MAX_SESSIONS", big);
    ASSERT_STR_CONTAINS(err, "999...\": must be a whole number in 1..1000000");
    ASSERT_LT(strlen(err), 250);
}

TEST(config_small_error_buffer)
{
    char err[16];
    config_t c;

    clear_env();
    setenv("SWITCHBOARD_PORT", "x", 1);
    ASSERT_EQ(config_from_env(&c, TEST_NCPU, err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, "invalid SWITCHB");
    ASSERT_EQ(config_from_env(&c, TEST_NCPU, NULL, 0), -EINVAL);
}

TEST(config_error_after_allocations_frees_them)
{
    config_t c;
    char err[ERR_LEN];

    /* The last variable fails after every string before it was allocated. */
    clear_env();
    setenv("SWITCHBOARD_TRUSTED_PROXIES", "::1", 1);
    setenv("OPENAI_API_KEY", "sk-x", 1);
    setenv("SWITCHBOARD_LOG_FORMAT", "yaml", 1);
    ASSERT_EQ(config_from_env(&c, TEST_NCPU, err, sizeof(err)), -EINVAL);
    ASSERT(c.host == NULL && c.openai_api_key == NULL && c.n_allowed_origins == 0);
    LEAK_CHECK();
}

/*
 * Runs config_print into a string the caller frees. (A tmpfile, not open_memstream: GCC's
 * -Wdangling-pointer mistakes the memstream's pointer to a local for a dangling one.)
 */
static char *print_to_string(const config_t *c)
{
    FILE *f = tmpfile();

    ASSERT(f != NULL);
    config_print(c, f);
    long len = ftell(f);
    ASSERT(len > 0);
    char *buf = xmalloc((size_t)len + 1);
    rewind(f);
    ASSERT_EQ(fread(buf, 1, (size_t)len, f), len);
    buf[len] = '\0';
    fclose(f);
    return buf;
}

TEST(config_print_lists_every_variable_in_order)
{
    config_t c;

    clear_env();
    setenv("OPENAI_API_KEY", "sk-shouldnotappear", 1);
    setenv("SWITCHBOARD_API_SECRET", "apisecretvalue", 1);
    setenv("SWITCHBOARD_ALLOWED_ORIGINS", "*,http://a.example", 1);
    setenv("SWITCHBOARD_TRUSTED_PROXIES", "10.1.2.3/8,2001:db8::/32", 1);
    setenv("SWITCHBOARD_REDIS_URL", "redis://:redispassword@10.0.0.5:6380/2", 1);
    setenv("SWITCHBOARD_DATABASE_URL", "postgres://sb:pgpassword@10.0.0.6:5433/switchboard", 1);
    accept(&c);
    char *out = print_to_string(&c);
    ASSERT(strstr(out, "sk-shouldnotappear") == NULL);
    ASSERT(strstr(out, "apisecretvalue") == NULL);
    ASSERT(strstr(out, "redispassword") == NULL);
    ASSERT_STR_CONTAINS(out, "\nSWITCHBOARD_REDIS_URL=redis://[password]@10.0.0.5:6380/2\n");
    ASSERT_STR_CONTAINS(out, "\nSWITCHBOARD_NODE_ID=\n");
    ASSERT(strstr(out, "pgpassword") == NULL);
    ASSERT_STR_CONTAINS(out,
                        "\nSWITCHBOARD_DATABASE_URL=postgres://sb:[password]@10.0.0.6:5433/switchboard\n");
    ASSERT_EQ(strncmp(out, "SWITCHBOARD_HOST=127.0.0.1\nSWITCHBOARD_PORT=8080\n", 48), 0);
    ASSERT_STR_CONTAINS(out, "\nSWITCHBOARD_WORKERS=4\n");
    ASSERT_STR_CONTAINS(out, "\nSWITCHBOARD_ALLOWED_ORIGINS=*,http://a.example\n");
    ASSERT_STR_CONTAINS(out, "\nSWITCHBOARD_TRUSTED_PROXIES=10.0.0.0/8,2001:db8::/32\n");
    ASSERT_STR_CONTAINS(out, "\nSWITCHBOARD_TLS_CERT=\n");
    ASSERT_STR_CONTAINS(out, "\nOPENAI_API_KEY=[set]\n");
    ASSERT_STR_CONTAINS(out, "\nSWITCHBOARD_API_SECRET=[set]\n");
    ASSERT_STR_CONTAINS(out, "\nSWITCHBOARD_JWT_SECRET=[unset]\n");
    ASSERT_STR_CONTAINS(out, "\nSWITCHBOARD_MINT_AUTH=open\n");
    ASSERT_STR_CONTAINS(out, "\nSWITCHBOARD_LOG_LEVEL=info\nSWITCHBOARD_LOG_FORMAT=text\n");
    ASSERT(strstr(out, "SWITCHBOARD_REPLAY_ITEMS=") < strstr(out, "OPENAI_API_KEY="));
    ASSERT(strstr(out, "SWITCHBOARD_CONFIG=") < strstr(out, "SWITCHBOARD_DB="));
    int lines = 0;
    for (const char *q = out; *q; q++)
        lines += *q == '\n';
    ASSERT_EQ(lines, N_VARS);
    free(out);
    config_free(&c);
    LEAK_CHECK();
}

TEST(config_print_output_loads_back)
{
    config_t c, again;

    clear_env();
    setenv("SWITCHBOARD_PORT", "0", 1);
    setenv("SWITCHBOARD_WORKERS", "7", 1);
    setenv("SWITCHBOARD_ALLOWED_ORIGINS", "https://A.example:8443", 1);
    setenv("SWITCHBOARD_TRUSTED_PROXIES", "192.168.0.0/16", 1);
    setenv("SWITCHBOARD_MINT_AUTH", "secret", 1);
    setenv("SWITCHBOARD_LOG_LEVEL", "debug", 1);
    accept(&c);
    char *first = print_to_string(&c);

    clear_env();
    char *copy = strdup(first);
    for (char *line = strtok(copy, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char *eq = strchr(line, '=');
        ASSERT(eq != NULL);
        *eq = '\0';
        if (eq[1] != '\0' && eq[1] != '[')
            setenv(line, eq + 1, 1);
    }
    free(copy);
    accept(&again);
    char *second = print_to_string(&again);
    ASSERT_STR_EQ(second, first);
    free(first);
    free(second);
    config_free(&c);
    config_free(&again);
    LEAK_CHECK();
}

/* The member key of the JSON object o as a string, or NULL. */
static const char *json_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/*
 * SWITCHBOARD_LOG_FORMAT=json: every line of the start-up configuration is one JSON object (SPEC
 * 2.1), a log line of event "config" naming one variable, in the order of the text format; numbers
 * are numbers, secrets still [set] or [unset], an unset variable null.
 */
TEST(config_print_json_is_one_object_per_variable)
{
    config_t c;

    clear_env();
    setenv("OPENAI_API_KEY", "sk-shouldnotappear", 1);
    setenv("SWITCHBOARD_ALLOWED_ORIGINS", "*,http://a.example", 1);
    setenv("SWITCHBOARD_LOG_FORMAT", "json", 1);
    setenv("SWITCHBOARD_LOG_LEVEL", "error", 1); /* the configuration is printed all the same */
    accept(&c);
    char *out = print_to_string(&c);
    ASSERT(strstr(out, "sk-shouldnotappear") == NULL);
    int lines = 0;
    for (char *line = strtok(out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        if (!cJSON_IsObject(o))
            TEST_FAIL_("not a JSON object: %s", line);
        ASSERT_STR_EQ(json_str(o, "level"), "info");
        ASSERT_STR_EQ(json_str(o, "event"), "config");
        ASSERT(json_str(o, "ts") != NULL);
        const char *name = json_str(o, "name");
        ASSERT(name != NULL);
        const cJSON *value = cJSON_GetObjectItemCaseSensitive(o, "value");
        ASSERT(value != NULL);
        if (lines == 0)
            ASSERT_STR_EQ(name, "SWITCHBOARD_HOST");
        if (strcmp(name, "SWITCHBOARD_PORT") == 0)
            ASSERT(cJSON_IsNumber(value) && value->valueint == 8080);
        if (strcmp(name, "SWITCHBOARD_WORKERS") == 0)
            ASSERT(cJSON_IsNumber(value) && value->valueint == TEST_NCPU);
        if (strcmp(name, "SWITCHBOARD_ALLOWED_ORIGINS") == 0)
            ASSERT_STR_EQ(json_str(o, "value"), "*,http://a.example");
        if (strcmp(name, "OPENAI_API_KEY") == 0)
            ASSERT_STR_EQ(json_str(o, "value"), "[set]");
        if (strcmp(name, "SWITCHBOARD_JWT_SECRET") == 0)
            ASSERT_STR_EQ(json_str(o, "value"), "[unset]");
        if (strcmp(name, "SWITCHBOARD_TLS_CERT") == 0 ||
            strcmp(name, "SWITCHBOARD_TRUSTED_PROXIES") == 0)
            ASSERT(cJSON_IsNull(value));
        if (strcmp(name, "SWITCHBOARD_LOG_FORMAT") == 0)
            ASSERT_STR_EQ(json_str(o, "value"), "json");
        cJSON_Delete(o);
        lines++;
    }
    ASSERT_EQ(lines, N_VARS);
    free(out);
    config_free(&c);
    LEAK_CHECK();
}

/* config_vars_from_env(): the named variables alike, the others untouched even when invalid. */
TEST(config_vars_from_env_reads_only_those_named)
{
    static const char *const names[] = {"OPENAI_API_KEY", "SWITCHBOARD_OPENAI_BASE_URL",
                                        "SWITCHBOARD_SUPERVISOR_MODEL", NULL};
    char err[ERR_LEN] = "";
    config_t c;

    clear_env();
    setenv("SWITCHBOARD_PORT", "not a port", 1);
    setenv("SWITCHBOARD_CONFIG", "/nonexistent/tenants", 1);
    setenv("SWITCHBOARD_OPENAI_BASE_URL", "http://127.0.0.1:9/v1//", 1);
    ASSERT_EQ(config_vars_from_env(&c, names, err, sizeof(err)), 0);
    ASSERT(c.openai_api_key == NULL);
    ASSERT_STR_EQ(c.openai_base_url, "http://127.0.0.1:9/v1");
    ASSERT_STR_EQ(c.supervisor_model, "gpt-4o-mini");
    ASSERT(c.config_path == NULL && c.host == NULL && c.port == 0);
    config_free(&c);

    setenv("OPENAI_API_KEY", "sk-test", 1);
    setenv("SWITCHBOARD_SUPERVISOR_MODEL", "two words", 1);
    ASSERT_EQ(config_vars_from_env(&c, names, err, sizeof(err)), -EINVAL);
    ASSERT_STR_CONTAINS(err, "SWITCHBOARD_SUPERVISOR_MODEL");
    clear_env();
}

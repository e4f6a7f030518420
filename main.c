/*
 * switchboard: the service. main() only wires: configuration, logging, the actor runtime, the
 * product's actors, the network threads, then waits for SIGTERM/SIGINT and drains (SPEC 3, 14).
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "actors/sched.h"
#include "agents/agents.h"
#include "agents/mcp/mcp.h"
#include "agents/tenant/tenant.h"
#include "agents/tenant/tenantwatch.h"
#include "base/config.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"
#include "net/net.h"

#define EXIT_CONFIG        2
#define DRAIN_WAIT_MS      5000
#define ACTOR_STOP_WAIT_MS 3000
#define SETTLE_WAIT_MS     1000 /* PostgreSQL: the last records reach the connection */
#define FD_RESERVE         256 /* log, database, listeners, MCP pipes, curl */
#define POLL_MS            10
#define MCP_STOP_WAIT_MS   (2 * MCP_STOP_GRACE_MS + 500) /* close stdin, SIGTERM, SIGKILL */

static config_t cfg;

/* main's loop: the signals and the tenant files' watch (SPEC 3 shutdown, 16 reload). */
static struct {
    uv_loop_t loop;
    uv_signal_t term, intr, hup;
    tenantwatch_t watch;
    bool watching;
    int stop_signal;
} M;

/*
 * The log format as the environment names it, for start-up failures before the configuration is
 * read (SPEC 2.1: in json every line is a JSON object). An unknown word gives text: that is then
 * the error being reported, and nothing says what else to use.
 */
static log_format_t log_format_from_env(void)
{
    log_format_t format = LOG_FORMAT_TEXT;
    const char *word = getenv("SWITCHBOARD_LOG_FORMAT");
    if (word == NULL || log_format_parse(word, &format) != 0)
        return LOG_FORMAT_TEXT;
    return format;
}

/* Reports a start-up failure: a log line in json format, the plain `switchboard: …` line of the
 * text format otherwise. */
static void startup_failed(log_format_t format, const char *what)
{
    if (format == LOG_FORMAT_JSON)
        log_error("startup.failed", LOG_S("error", what));
    else
        fprintf(stderr, "switchboard: %s\n", what);
}

/*
 * Raises RLIMIT_NOFILE to fit every socket the configuration allows: SWITCHBOARD_MAX_CONNECTIONS
 * counts sockets of all kinds (clients and upstreams), plus a reserve for the rest.
 */
static int raise_nofile(void)
{
    rlim_t need = (rlim_t)cfg.max_connections + FD_RESERVE;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -errno;
    if (rl.rlim_cur >= need)
        return 0;
    if (rl.rlim_max < need)
        rl.rlim_max = need; /* allowed for root; otherwise setrlimit fails below */
    rl.rlim_cur = need;
    return setrlimit(RLIMIT_NOFILE, &rl) == 0 ? 0 : -errno;
}

static void wait_for_ws_close(uint64_t timeout_ms)
{
    uint64_t deadline = clock_now_ns() + timeout_ms * NS_PER_MS;
    while (net_ws_open_count() > 0 && clock_now_ns() < deadline)
        usleep(POLL_MS * 1000);
}

static void on_stop_signal(uv_signal_t *h, int signum)
{
    (void)h;
    M.stop_signal = signum;
    uv_stop(&M.loop);
}

static void on_hup(uv_signal_t *h, int signum)
{
    (void)h;
    (void)signum;
    log_info("tenant.reload", LOG_S("why", "SIGHUP"));
    agents_reload();
}

static void on_files_changed(void *arg)
{
    (void)arg;
    log_info("tenant.reload", LOG_S("why", "files changed"));
    agents_reload();
}

static void close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/*
 * Runs main's loop until SIGTERM or SIGINT: SIGHUP and a change to the tenant files reload the
 * tenants meanwhile. sigs (blocked in every thread) is unblocked in main only, so the signals
 * come here. A watch that cannot start (no inotify) is logged; SIGHUP still reloads.
 */
static void wait_for_stop(const sigset_t *sigs)
{
    uv_loop_init(&M.loop);
    uv_signal_init(&M.loop, &M.term);
    uv_signal_init(&M.loop, &M.intr);
    uv_signal_init(&M.loop, &M.hup);
    uv_signal_start(&M.term, on_stop_signal, SIGTERM);
    uv_signal_start(&M.intr, on_stop_signal, SIGINT);
    uv_signal_start(&M.hup, on_hup, SIGHUP);
    bool is_dir = false;
    const char *src = tenants_source(&is_dir);
    if (src != NULL) {
        int rc = tenantwatch_start(&M.watch, &M.loop, src, is_dir, on_files_changed, NULL);
        if (rc != 0)
            log_warn("tenant.watch_unavailable", LOG_S("path", src),
                     LOG_S("error", uv_strerror(rc)));
        M.watching = rc == 0;
    }
    pthread_sigmask(SIG_UNBLOCK, sigs, NULL);
    uv_run(&M.loop, UV_RUN_DEFAULT);
    pthread_sigmask(SIG_BLOCK, sigs, NULL);
}

/*
 * Closes main's loop and its handles. Called once the network threads have stopped: closing its
 * descriptors while they still accept sockets would hand the same numbers to another thread with
 * no ordering between the two (ThreadSanitizer reports the reuse).
 */
static void close_main_loop(void)
{
    if (M.watching)
        tenantwatch_close(&M.watch);
    uv_walk(&M.loop, close_handle, NULL);
    uv_run(&M.loop, UV_RUN_DEFAULT);
    uv_loop_close(&M.loop);
}

/*
 * glibc's malloc, tuned for a service that must come back to its idle size after every busy
 * spell (the soak's RSS line):
 * - It raises its mmap and trim thresholds to the largest block freed so far (up to 32 and
 *   64 MiB); after one busy minute the free space at the top of each arena is then kept for good
 *   (and malloc_trim() does not give back a thread arena's top). Fixed thresholds (glibc's own
 *   defaults, which setting them stops from moving) keep blocks of 128 KiB and more in mappings
 *   of their own and give an arena's free top above 128 KiB back.
 * - One arena, not one per thread: the few long-lived objects every thread makes (an MCP
 *   server's tool list, a table grown under load) then sit together instead of pinning pages in
 *   four heaps. Measured at 200 relayed sessions (bench/relay_matrix.py's run, twice each): CPU
 *   per session-minute 0.119-0.128 either way, p99 unchanged; the threads' tcaches take most
 *   small allocations without the arena's lock.
 */
#define MALLOC_THRESHOLD_BYTES (128 * 1024)

int main(void)
{
    char err[512];
    mallopt(M_MMAP_THRESHOLD, MALLOC_THRESHOLD_BYTES);
    mallopt(M_TRIM_THRESHOLD, MALLOC_THRESHOLD_BYTES);
    mallopt(M_ARENA_MAX, 1);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    /* Every thread inherits this mask; main unblocks them for its own loop once the others
     * run, so only main sees SIGTERM, SIGINT and SIGHUP (a SIGHUP before that waits). */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    log_format_t early = log_format_from_env();
    log_init(LOG_INFO, early);
    if (config_from_env(&cfg, ncpu > 0 ? (int)ncpu : 1, err, sizeof(err)) != 0) {
        startup_failed(early, err);
        return EXIT_CONFIG;
    }
    g_config = &cfg;
    log_init(cfg.log_level, cfg.log_format);
    if (sodium_init() < 0) {
        startup_failed(cfg.log_format, "libsodium failed to initialise");
        return EXIT_FAILURE;
    }
    /* Before any other thread: the registry's first table is published without readers. */
    if (tenants_load(cfg.config_path, err, sizeof(err)) != 0) {
        startup_failed(cfg.log_format, err);
        config_free(&cfg);
        return EXIT_CONFIG;
    }
    config_print(&cfg, stderr);

    if (raise_nofile() != 0) {
        snprintf(err, sizeof(err),
                 "cannot raise RLIMIT_NOFILE to fit SWITCHBOARD_MAX_CONNECTIONS=%d: %s",
                 cfg.max_connections, strerror(errno));
        startup_failed(cfg.log_format, err);
        return EXIT_FAILURE;
    }

    metrics_init();
    if (net_redis_configure(cfg.redis_url) != 0) { /* config_from_env() checked its form */
        startup_failed(cfg.log_format, "SWITCHBOARD_REDIS_URL: cannot be read");
        return EXIT_CONFIG;
    }
    net_redis_register_metrics();
    if (net_pg_configure(cfg.database_url) != 0) { /* config_from_env() checked its form */
        startup_failed(cfg.log_format, "SWITCHBOARD_DATABASE_URL: cannot be read");
        return EXIT_CONFIG;
    }
    net_pg_register_metrics();
    sched_config_t sc = {.workers = cfg.workers,
                         .max_actors = cfg.max_actors,
                         .mailbox_cap = (uint32_t)cfg.mailbox_cap};
    if (sched_start(&sc) != 0) {
        startup_failed(cfg.log_format, "cannot start the actor runtime");
        return EXIT_FAILURE;
    }
    /* The database first (inside): a bad SWITCHBOARD_DB stops start-up before anything listens. */
    if (agents_start(cfg.db_path, err, sizeof(err)) != 0) {
        startup_failed(cfg.log_format, err);
        sched_stop(ACTOR_STOP_WAIT_MS);
        agents_free();
        return EXIT_FAILURE;
    }
    net_config_t nc = {.host = cfg.host,
                       .port = cfg.port,
                       .threads = cfg.net_threads,
                       .max_connections = cfg.max_connections,
                       .connections_per_ip = cfg.connections_per_ip,
                       .out_cap = (uint32_t)cfg.mailbox_cap,
                       .tls_cert = cfg.tls_cert,
                       .tls_key = cfg.tls_key,
                       .client_tls = strncmp(cfg.realtime_url, "wss://", 6) == 0};
    int rc = net_start(&nc);
    if (rc != 0) {
        snprintf(err, sizeof(err), "cannot listen on %s:%d: %s", cfg.host, cfg.port, strerror(-rc));
        startup_failed(cfg.log_format, err);
        agents_stop();
        sched_stop(ACTOR_STOP_WAIT_MS);
        agents_free();
        return EXIT_FAILURE;
    }
    /* MCP clients need the network threads (child processes, HTTP). */
    if (agents_start_clients() != 0) {
        startup_failed(cfg.log_format, "cannot start the MCP clients");
        agents_stop_clients(MCP_STOP_WAIT_MS);
        net_stop();
        agents_stop();
        sched_stop(ACTOR_STOP_WAIT_MS);
        agents_free();
        return EXIT_FAILURE;
    }
    char url[320];
    snprintf(url, sizeof(url), "%s://%s:%d/", cfg.tls_cert ? "https" : "http", cfg.host,
             net_port());
    /* Where it listens is said whatever the level (SPEC 2.1); in json, by this object's url. */
    const log_kv_t where[] = {LOG_S("url", url), LOG_I("net_threads", cfg.net_threads),
                              LOG_I("workers", cfg.workers)};
    if (cfg.log_format == LOG_FORMAT_JSON) {
        log_print(stderr, LOG_FORMAT_JSON, LOG_INFO, "listening", where, ARRAY_LEN(where));
    } else {
        log_write(LOG_INFO, "listening", where, ARRAY_LEN(where));
        fprintf(stderr, "listening on %s\n", url);
    }

    wait_for_stop(&sigs);
    uint64_t t0 = clock_now_ns();
    log_info("drain.start", LOG_S("signal", M.stop_signal == SIGTERM ? "SIGTERM" : "SIGINT"),
             LOG_I("websockets", net_ws_open_count()));
    net_drain();
    wait_for_ws_close(DRAIN_WAIT_MS);
    agents_stop_clients(MCP_STOP_WAIT_MS); /* before net_stop: a polite shutdown for children */
    agents_settle(SETTLE_WAIT_MS); /* PostgreSQL: the records are queued before net_stop() */
    net_stop();
    close_main_loop();
    /* The reverse of start-up; returns once the records already sent are written. */
    int store_rc = agents_stop();
    int leaked = sched_stop(ACTOR_STOP_WAIT_MS);
    log_info("drain.done", LOG_I("ms", (clock_now_ns() - t0) / NS_PER_MS),
             LOG_I("actors_left", leaked), LOG_I("store_closed", store_rc == 0));
    agents_free(); /* no upstream actor is left to send the session.update */
    tenants_destroy();
    config_free(&cfg);
    metrics_destroy();
    return 0;
}

/*
 * switchboard-bench: load generator and latency meter (SPEC 11). main() only wires: it parses
 * the options, starts the load threads and the launcher, waits for the run to end, stops the
 * threads and reports. See cli.h for the options and launch.h / loadthr.h for how a run goes.
 */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "base/log.h"
#include "base/util.h"
#include "bench/loadgen/cli.h"
#include "bench/loadgen/hist.h"
#include "bench/loadgen/launch.h"
#include "bench/loadgen/loadthr.h"
#include "bench/loadgen/procstat.h"
#include "bench/loadgen/report.h"
#include "bench/loadgen/session.h"
#include "bench/loadgen/storm.h"

#define WAIT_POLL_MS     10
#define PROGRESS_EVERY_S 5
#define GRACE_MS         2000 /* stragglers after the last frame was sent */
#define FDS_PER_SESSION  2    /* its WebSocket, and a token POST that may still be closing */
#define FDS_SPARE        256
#define EXIT_INTERRUPTED 130

static void on_signal(int sig)
{
    (void)sig;
    atomic_store_explicit(&g_interrupted, 1, memory_order_relaxed);
}

/* RLIMIT_NOFILE must cover every socket. */
static void raise_nofile(int sessions)
{
    rlim_t need = (rlim_t)sessions * FDS_PER_SESSION + FDS_SPARE;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need)
        return;
    if (rl.rlim_max < need) {
        struct rlimit want = {need, need};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            return;
    }
    rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)sessions + FDS_SPARE)
        fprintf(stderr,
                "switchboard-bench: warning: only %llu file descriptors for %d sessions "
                "(raise the hard limit: ulimit -Hn)\n",
                (unsigned long long)rl.rlim_cur, sessions);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static bool interrupted(void)
{
    return atomic_load_explicit(&g_interrupted, memory_order_relaxed) != 0;
}

static void progress_line(uint64_t t0)
{
    fprintf(stderr,
            "[%6.1f s] connected %d, failed %d, dropped %d of %d; frames sent %llu, "
            "received %llu\n",
            (double)(clock_now_ns() - t0) / 1e9, atomic_load(&g_progress.connected),
            atomic_load(&g_progress.failed), atomic_load(&g_progress.dropped), g_cfg.sessions,
            (unsigned long long)atomic_load(&g_progress.frames_sent),
            (unsigned long long)atomic_load(&g_progress.frames_recv));
    if (g_cfg.storm)
        fprintf(stderr, "           storm: connected %d, failed %d, dropped %d of %d; turns %llu\n",
                atomic_load(&g_progress.storm_connected), atomic_load(&g_progress.storm_failed),
                atomic_load(&g_progress.storm_dropped), g_cfg.storm,
                (unsigned long long)atomic_load(&g_progress.storm_turns));
}

/* Waits until every session has sent its frames or failed, then for the stragglers. */
static void wait_for_run(uint64_t t0)
{
    uint64_t next_progress = t0 + (uint64_t)PROGRESS_EVERY_S * NS_PER_SEC;
    while (!interrupted()) {
        if (launch_done() && atomic_load(&g_progress.unfinished) <= 0)
            break;
        sleep_ms(WAIT_POLL_MS);
        if (clock_now_ns() >= next_progress) {
            progress_line(t0);
            next_progress += (uint64_t)PROGRESS_EVERY_S * NS_PER_SEC;
        }
    }
    uint64_t grace_end = clock_now_ns() + (uint64_t)GRACE_MS * NS_PER_MS;
    while (!interrupted() && clock_now_ns() < grace_end &&
           atomic_load(&g_progress.frames_recv) < atomic_load(&g_progress.frames_sent))
        sleep_ms(WAIT_POLL_MS);
}

/* Creates the threads with SIGINT/SIGTERM blocked, so only the main thread takes them. */
static loadthr_t **start_threads(void)
{
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    loadthr_t **threads = xcalloc((size_t)g_cfg.threads, sizeof(*threads));
    for (int i = 0; i < g_cfg.threads; i++) {
        threads[i] = loadthr_new(i);
        if (threads[i] == NULL) {
            for (int j = 0; j < i; j++) {
                loadthr_stop_mp(threads[j]);
                loadthr_join(threads[j]);
                loadthr_free(threads[j]);
            }
            free(threads);
            threads = NULL;
            break;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return threads;
}

int main(int argc, char **argv)
{
    int rc = cli_parse(argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : 2;
    int n_all = g_cfg.sessions + g_cfg.storm;
    raise_nofile(n_all);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* The shared modules log through base/log.h (a TLS failure's details, once per session);
     * the report already gives each failure's reason. */
    log_init(LOG_ERROR, LOG_FORMAT_TEXT);

    session_t *sessions = session_new_all(g_cfg.sessions, g_cfg.storm);
    if (g_cfg.storm)
        storm_init(); /* before the load threads size their write buffers */
    loadthr_t **threads = start_threads();
    if (threads == NULL)
        return 1;

    report_in_t rep = {.sessions = sessions,
                       .n = g_cfg.sessions,
                       .storm = sessions + g_cfg.sessions,
                       .n_storm = g_cfg.storm};
    bool svc_ok = g_cfg.pid && procstat_read(g_cfg.pid, &rep.service_before) == 0;
    double cpu0 = procstat_self_cpu_s();
    uint64_t t0 = clock_now_ns();
    if (launch_start(sessions, n_all, threads, t0) != 0) {
        fprintf(stderr, "switchboard-bench: cannot start the launcher thread\n");
        return 1;
    }
    wait_for_run(t0);
    launch_join(); /* before the stops: nothing is handed to a stopped thread */
    for (int i = 0; i < g_cfg.threads; i++)
        loadthr_stop_mp(threads[i]);
    for (int i = 0; i < g_cfg.threads; i++)
        loadthr_join(threads[i]);
    rep.wall_s = (double)(clock_now_ns() - t0) / 1e9;
    rep.bench_cpu_s = procstat_self_cpu_s() - cpu0;
    rep.have_service = svc_ok && procstat_read(g_cfg.pid, &rep.service_after) == 0;
    rep.interrupted = interrupted();

    static hist_t latency, send_lag;
    hist_init(&latency);
    hist_init(&send_lag);
    for (int i = 0; i < g_cfg.threads; i++) {
        hist_merge(&latency, loadthr_latency(threads[i]));
        hist_merge(&send_lag, loadthr_send_lag(threads[i]));
    }
    rep.latency = &latency;
    rep.send_lag = &send_lag;
    report_print(&rep, stdout);
    fflush(stdout);
    int exit_code = report_connected(&rep) > 0 ? 0 : 1;
    if (rep.interrupted)
        exit_code = EXIT_INTERRUPTED;
    if (g_cfg.json_path) {
        int jrc = report_write_json(&rep, g_cfg.json_path);
        if (jrc != 0) {
            fprintf(stderr, "switchboard-bench: cannot write %s: %s\n", g_cfg.json_path,
                    strerror(-jrc));
            exit_code = exit_code ? exit_code : 1;
        }
    }
    for (int i = 0; i < g_cfg.threads; i++)
        loadthr_free(threads[i]);
    free(threads);
    session_free_all(sessions, n_all);
    storm_shutdown();
    curl_global_cleanup();
    return exit_code;
}

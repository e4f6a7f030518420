/*
 * tools/call round trip through the MCP client actor: the main thread sends TOOL_MSG_CALL to the
 * client (agents/mcp/mcp.c) and waits for TOOL_MSG_RESULT; the client talks to the server over stdio
 * (child process on a network thread) or Streamable HTTP (net_fetch). Calls are sequential.
 *
 *   bench_mcp [-n CALLS] stdio <command> [args...]
 *   bench_mcp [-n CALLS] http <url>
 *
 * Prints "p50_us p99_us max_us calls" on one line.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/sched.h"
#include "agents/mcp/mcp.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"
#include "net/net.h"

#define DEFAULT_CALLS 2000
#define WARMUP_CALLS  50
#define WAIT_S        20

static pthread_mutex_t lk = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static msg_t *box;    /* {lk} the last message of the type waited for */
static uint32_t want; /* {lk} */

static void sink_handle(actor_t *self, msg_t *m)
{
    (void)self;
    pthread_mutex_lock(&lk);
    if (m->type == want && box == NULL) {
        box = m;
        m = NULL;
        pthread_cond_signal(&cv);
    }
    pthread_mutex_unlock(&lk);
    msg_free(m);
}

static const actor_type_t sink_type = {"bench_sink", sink_handle, NULL};

static void expect(uint32_t type)
{
    pthread_mutex_lock(&lk);
    want = type;
    pthread_mutex_unlock(&lk);
}

static msg_t *take(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += WAIT_S;
    pthread_mutex_lock(&lk);
    while (box == NULL && pthread_cond_timedwait(&cv, &lk, &ts) == 0)
        ;
    msg_t *m = box;
    box = NULL;
    pthread_mutex_unlock(&lk);
    return m;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int i = 1, n = DEFAULT_CALLS;
    if (i + 1 < argc && strcmp(argv[i], "-n") == 0) {
        n = atoi(argv[i + 1]);
        i += 2;
    }
    if (i + 1 >= argc || n <= 0) {
        fprintf(stderr, "usage: bench_mcp [-n CALLS] stdio <command> [args...] | http <url>\n");
        return 2;
    }
    agent_mcp_server_t srv = {.alias = "bench"};
    if (strcmp(argv[i], "http") == 0) {
        srv.url = argv[i + 1];
    } else {
        srv.command = argv[i + 1];
        srv.args = argv + i + 2;
        srv.n_args = (size_t)(argc - i - 2);
    }
    log_init(LOG_WARN, LOG_FORMAT_TEXT);
    metrics_init();
    sched_config_t sc = {.workers = 2, .max_actors = 100, .mailbox_cap = 1024};
    net_config_t nc = {.threads = 1, .max_connections = 100, .out_cap = 64, .no_listen = true};
    if (sched_start(&sc) != 0 || net_start(&nc) != 0)
        return 1;
    actor_t *sink = xcalloc(1, sizeof(*sink));
    if (actor_spawn(sink, &sink_type, LANE_TOOLS) != 0)
        return 1;
    expect(MCP_MSG_STATUS);
    mcp_opts_t o = {.server = &srv, .owner = sink, .call_timeout_ms = 10000};
    actor_t *client = mcp_spawn(&o);
    mcp_status_msg_t *st = (mcp_status_msg_t *)take();
    if (st == NULL || !st->up) {
        fprintf(stderr, "bench_mcp: the server is not up\n");
        return 1;
    }
    msg_free(&st->hdr);
    uint64_t *us = xcalloc((size_t)n, sizeof(*us));
    for (int k = -WARMUP_CALLS; k < n; k++) {
        cJSON *args = cJSON_CreateObject();
        cJSON_AddStringToObject(args, "message", "hello");
        expect(TOOL_MSG_RESULT);
        uint64_t t0 = clock_now_ns();
        actor_send(client, &tool_call_new(sink, (uint64_t)(k + WARMUP_CALLS), "echo", args)->hdr);
        tool_result_msg_t *r = (tool_result_msg_t *)take();
        uint64_t dt = clock_now_ns() - t0;
        if (r == NULL || r->is_error) {
            fprintf(stderr, "bench_mcp: call %d failed: %s\n", k, r ? r->output : "no answer");
            return 1;
        }
        msg_free(&r->hdr);
        if (k >= 0)
            us[k] = dt / 1000;
    }
    qsort(us, (size_t)n, sizeof(*us), cmp_u64);
    printf("%llu %llu %llu %d\n", (unsigned long long)us[n / 2],
           (unsigned long long)us[(size_t)n * 99 / 100], (unsigned long long)us[n - 1], n);
    expect(MCP_MSG_CLOSED);
    actor_send(client, msg_new(MCP_MSG_SHUTDOWN, sizeof(msg_t)));
    msg_free(take());
    actor_unref(client);
    net_stop();
    actor_unref(sink);
    sched_stop(2000);
    metrics_destroy();
    free(us);
    return 0;
}

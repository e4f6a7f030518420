/*
 * switchboard-mcp: the MCP client CLI (SPEC 1, 8, 14), on the service's own client actor
 * (agents/mcp/mcp.c), actor runtime and network threads (outbound only: no listening socket).
 *
 *   switchboard-mcp list <alias|url|-- command args...>
 *   switchboard-mcp call <alias|url> <tool> '<json>'
 *   switchboard-mcp call <tool> '<json>' -- <command> <args...>
 *   switchboard-mcp conformance <url>     (runs $MCP_CONFORMANCE_SCENARIO)
 *
 * `list` prints one tool a line: name, a tab, the description (newlines folded). With an alias the
 * names are the exposed `<alias>__<tool>` ones; with a URL or a command, the server's own.
 * `call` prints the text content, then structuredContent as JSON (an image is noted on stderr
 * with its type and size). Exit 0 on success, 1 on a tool
 * error (content on stdout), a deadline (`timeout` on stderr) or a transport failure, 2 on usage
 * errors.
 *
 * The main thread drives everything through a sink actor: the client's messages are handed to
 * it through a mutex-guarded queue, so the main thread waits on a condition variable and never
 * touches actor state.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/sched.h"
#include "agents/config/agentcfg.h"
#include "agents/mcp/mcp.h"
#include "agents/mcp/mcp_int.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"
#include "cli/mcp_cli.h"
#include "net/net.h"

#define EXIT_OK             0
#define EXIT_FAIL           1
#define EXIT_USAGE          2
#define CLI_WORKERS         2
#define CLI_READY_WAIT_MS   (MCP_INIT_TIMEOUT_MS * 2 + 2000)
#define CLI_CLOSE_WAIT_MS   (MCP_STOP_GRACE_MS * 2 + 1000)
#define CLI_CALL_TIMEOUT_MS 30000
#define CLI_CALL_SLACK_MS   2000 /* the client answers at its deadline; wait a little more */
#define CLI_STOP_WAIT_MS    2000
#define CLI_QUEUE_MAX       64

/* ---- The sink: client messages handed to the main thread {q_lock} --------------------------- */

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;
static msg_t *q_msgs[CLI_QUEUE_MAX]; /* {q_lock} */
static int q_n;                      /* {q_lock} */

static void sink_handle(actor_t *self, msg_t *m)
{
    (void)self;
    pthread_mutex_lock(&q_lock);
    if (q_n < CLI_QUEUE_MAX) {
        q_msgs[q_n++] = m;
        m = NULL;
    }
    pthread_cond_broadcast(&q_cond);
    pthread_mutex_unlock(&q_lock);
    msg_free(m);
}

static const actor_type_t sink_type = {"mcp_cli_sink", sink_handle, NULL};

/* The first queued message of this type, waiting at most ms; NULL on timeout. Thread: main. */
msg_t *cli_wait(uint32_t type, uint64_t ms)
{
    struct timespec ts;
    clock_deadline(&ts, CLOCK_REALTIME, ms);
    pthread_mutex_lock(&q_lock);
    for (;;) {
        for (int i = 0; i < q_n; i++) {
            if (q_msgs[i]->type == type) {
                msg_t *m = q_msgs[i];
                memmove(&q_msgs[i], &q_msgs[i + 1], (size_t)(q_n - i - 1) * sizeof(*q_msgs));
                q_n--;
                pthread_mutex_unlock(&q_lock);
                return m;
            }
        }
        if (pthread_cond_timedwait(&q_cond, &q_lock, &ts) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&q_lock);
    return NULL;
}

static void cli_drop_queue(void)
{
    pthread_mutex_lock(&q_lock);
    for (int i = 0; i < q_n; i++)
        msg_free(q_msgs[i]);
    q_n = 0;
    pthread_mutex_unlock(&q_lock);
}

/* ---- Runtime ----------------------------------------------------------------------------------
 */

static actor_t *sink;
static actor_t *client;
static agentcfg_t agentcfg;
static bool agentcfg_loaded;

static uint32_t env_ms(const char *name, uint32_t def)
{
    const char *v = getenv(name);
    char *end;
    long n = v ? strtol(v, &end, 10) : 0;
    return v && *end == '\0' && n > 0 ? (uint32_t)n : def;
}

static int cli_start(const agent_mcp_server_t *srv, bool elicit)
{
    log_level_t level = LOG_WARN;
    const char *lv = getenv("SWITCHBOARD_LOG_LEVEL");
    if (lv)
        log_level_parse(lv, &level);
    log_init(level, LOG_FORMAT_TEXT);
    metrics_init();
    sched_config_t sc = {.workers = CLI_WORKERS, .max_actors = 1000, .mailbox_cap = 1024};
    if (sched_start(&sc) != 0)
        return -1;
    net_config_t nc = {.threads = 1, .max_connections = 1000, .out_cap = 1024, .no_listen = true};
    if (net_start(&nc) != 0)
        return -1;
    sink = xcalloc(1, sizeof(actor_t));
    if (actor_spawn(sink, &sink_type, LANE_TOOLS) != 0)
        return -1;
    mcp_opts_t o = {.server = srv,
                    .owner = sink,
                    .restart = false,
                    .elicit_defaults = elicit,
                    .call_timeout_ms =
                        env_ms("SWITCHBOARD_MCP_CALL_TIMEOUT_MS", CLI_CALL_TIMEOUT_MS)};
    client = mcp_spawn(&o);
    return client ? 0 : -1;
}

/* Waits for the client to be up; returns its STATUS (up) or NULL after printing why not. */
mcp_status_msg_t *cli_ready(void)
{
    mcp_status_msg_t *s = (mcp_status_msg_t *)cli_wait(MCP_MSG_STATUS, CLI_READY_WAIT_MS);
    if (s == NULL) {
        fprintf(stderr, "switchboard-mcp: the server did not answer in time\n");
        return NULL;
    }
    if (!s->up) {
        fprintf(stderr, "switchboard-mcp: %s\n", s->error);
        msg_free(&s->hdr);
        return NULL;
    }
    return s;
}

static void cli_stop(void)
{
    if (client) {
        actor_send(client, msg_new(MCP_MSG_SHUTDOWN, sizeof(msg_t)));
        msg_free(cli_wait(MCP_MSG_CLOSED, CLI_CLOSE_WAIT_MS));
        actor_unref(client);
    }
    net_stop();
    cli_drop_queue();
    if (sink)
        actor_unref(sink);
    sched_stop(CLI_STOP_WAIT_MS);
    cli_drop_queue();
    metrics_destroy();
    if (agentcfg_loaded)
        agentcfg_free(&agentcfg);
}

tool_result_msg_t *cli_call(const char *tool, cJSON *args, uint32_t timeout_ms)
{
    tool_call_msg_t *c = tool_call_new(sink, 1, tool, args);
    c->timeout_ms = timeout_ms;
    actor_send(client, &c->hdr);
    return (tool_result_msg_t *)cli_wait(TOOL_MSG_RESULT, (uint64_t)timeout_ms + CLI_CALL_SLACK_MS);
}

/* ---- Commands ---------------------------------------------------------------------------------
 */

static void print_folded(const char *s)
{
    for (; s && *s; s++)
        putchar(*s == '\n' || *s == '\r' || *s == '\t' ? ' ' : *s);
}

static int cmd_list(bool exposed)
{
    mcp_status_msg_t *s = cli_ready();
    if (s == NULL)
        return EXIT_FAIL;
    const cJSON *t;
    cJSON_ArrayForEach(t, s->tools)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(t, exposed ? "exposed" : "name");
        const cJSON *desc = cJSON_GetObjectItemCaseSensitive(t, "description");
        fputs(name->valuestring, stdout);
        putchar('\t');
        print_folded(cJSON_IsString(desc) ? desc->valuestring : "");
        putchar('\n');
    }
    msg_free(&s->hdr);
    return EXIT_OK;
}

static int cmd_call(const char *tool, cJSON *args)
{
    mcp_status_msg_t *s = cli_ready();
    if (s == NULL) {
        cJSON_Delete(args);
        return EXIT_FAIL;
    }
    msg_free(&s->hdr);
    uint32_t ms = env_ms("SWITCHBOARD_MCP_CALL_TIMEOUT_MS", CLI_CALL_TIMEOUT_MS);
    tool_result_msg_t *r = cli_call(tool, args, ms);
    if (r == NULL || r->timeout) {
        fprintf(stderr, "timeout\n");
        msg_free(r ? &r->hdr : NULL);
        return EXIT_FAIL;
    }
    fputs(r->output, stdout);
    if (r->output[0] && r->output[strlen(r->output) - 1] != '\n')
        putchar('\n');
    if (r->image_b64) /* kept for agent runs; the terminal only hears of it */
        fprintf(stderr, "image: %s, %zu base64 characters\n", r->image_mime, strlen(r->image_b64));
    int rc = r->is_error ? EXIT_FAIL : EXIT_OK;
    msg_free(&r->hdr);
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "usage: switchboard-mcp list <alias|url|-- command args...>\n"
                    "       switchboard-mcp call <alias|url> <tool> '<json>'\n"
                    "       switchboard-mcp call <tool> '<json>' -- <command> <args...>\n"
                    "       switchboard-mcp conformance <url>\n");
    return EXIT_USAGE;
}

/* Fills srv from an alias, a URL or a command line; returns 0, or EXIT_USAGE after a message. */
static int resolve(const char *server, char **cmd, int n_cmd, agent_mcp_server_t *srv,
                   bool *by_alias)
{
    memset(srv, 0, sizeof(*srv));
    *by_alias = false;
    if (cmd) {
        if (n_cmd < 1)
            return usage();
        srv->alias = "cli";
        srv->command = cmd[0];
        srv->args = cmd + 1;
        srv->n_args = (size_t)(n_cmd - 1);
        return 0;
    }
    if (strncmp(server, "http://", 7) == 0 || strncmp(server, "https://", 8) == 0) {
        srv->alias = "cli";
        srv->url = (char *)server;
        return 0;
    }
    char err[512];
    if (agentcfg_load(&agentcfg, getenv("SWITCHBOARD_CONFIG"), err, sizeof(err)) != 0) {
        fprintf(stderr, "switchboard-mcp: %s\n", err);
        return EXIT_USAGE;
    }
    agentcfg_loaded = true;
    for (size_t i = 0; i < agentcfg.n_mcp_servers; i++) {
        if (strcmp(agentcfg.mcp_servers[i].alias, server) == 0) {
            *srv = agentcfg.mcp_servers[i];
            *by_alias = true;
            return 0;
        }
    }
    fprintf(stderr, "switchboard-mcp: no MCP server \"%s\" in SWITCHBOARD_CONFIG\n", server);
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc < 3)
        return usage();
    int dd = 0; /* index of "--" */
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            dd = i;
            break;
        }
    }
    char **cmd = dd ? argv + dd + 1 : NULL;
    int n_cmd = dd ? argc - dd - 1 : 0;
    int n_pos = (dd ? dd : argc) - 2; /* positional arguments after the command word */
    const char *verb = argv[1];
    agent_mcp_server_t srv;
    bool by_alias;
    int rc;
    if (strcmp(verb, "list") == 0) {
        if ((dd && n_pos != 0) || (!dd && n_pos != 1))
            return usage();
        if ((rc = resolve(dd ? NULL : argv[2], cmd, n_cmd, &srv, &by_alias)) != 0)
            return rc;
        rc = cli_start(&srv, false) == 0 ? cmd_list(by_alias) : EXIT_FAIL;
    } else if (strcmp(verb, "call") == 0) {
        if ((dd && n_pos != 2) || (!dd && n_pos != 3))
            return usage();
        const char *tool = argv[dd ? 2 : 3], *json = argv[dd ? 3 : 4];
        cJSON *args = cJSON_Parse(json);
        if (!cJSON_IsObject(args)) {
            cJSON_Delete(args);
            fprintf(stderr, "switchboard-mcp: the arguments must be a JSON object\n");
            return EXIT_USAGE;
        }
        if ((rc = resolve(dd ? NULL : argv[2], cmd, n_cmd, &srv, &by_alias)) != 0) {
            cJSON_Delete(args);
            return rc;
        }
        if (cli_start(&srv, false) == 0) {
            rc = cmd_call(tool, args);
        } else {
            cJSON_Delete(args);
            rc = EXIT_FAIL;
        }
    } else if (strcmp(verb, "conformance") == 0) {
        if (dd || n_pos != 1)
            return usage();
        if ((rc = resolve(argv[argc - 1], NULL, 0, &srv, &by_alias)) != 0)
            return rc;
        if (by_alias || srv.url == NULL)
            return usage();
        rc = cli_start(&srv, true) == 0 ? cli_conformance(getenv("MCP_CONFORMANCE_SCENARIO"))
                                        : EXIT_FAIL;
    } else {
        return usage();
    }
    cli_stop();
    fflush(stdout);
    return rc;
}

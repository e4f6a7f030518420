/*
 * The MCP client's pure parts: exposed tool names and their mapping, JSON-RPC classification and
 * framing, the SSE parser, tools/call results, the tool registry; and net_proc's line splitting
 * against a real child (/bin/sh) on the network threads.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actors/sched.h"
#include "agents/mcp/mcp_int.h"
#include "base/metrics.h"
#include "base/util.h"
#include "net/net.h"
#include "tests/runner.h"

#define LONG_LINE_BYTES 300000
#define WAIT_MS         10000

/* ---- Names ------------------------------------------------------------------------------------
 */

static const char *taken_name; /* one name another server already uses */

static bool taken_one(void *arg, const char *name)
{
    (void)arg;
    return taken_name && strcmp(name, taken_name) == 0;
}

TEST(mcp_name_plain_names_are_alias_and_tool)
{
    char out[TOOL_NAME_MAX + 1];
    mcpname_expose("crm", "get-user_v2", NULL, NULL, out);
    ASSERT_STR_EQ(out, "crm__get-user_v2");
    ASSERT(mcpname_valid(out));
}

TEST(mcp_name_sanitised_names_get_a_stable_hash)
{
    char a[TOOL_NAME_MAX + 1], b[TOOL_NAME_MAX + 1], c[TOOL_NAME_MAX + 1];
    mcpname_expose("crm", "admin.tools.list", NULL, NULL, a);
    mcpname_expose("crm", "admin.tools.list", NULL, NULL, b);
    mcpname_expose("crm", "admin_tools_list", NULL, NULL, c);
    ASSERT_STR_EQ(a, b);
    ASSERT_STR_EQ(c, "crm__admin_tools_list");
    ASSERT(strcmp(a, c) != 0); /* "." and "_" never meet on one name */
    ASSERT(strncmp(a, "crm__admin_tools_list_", 22) == 0);
    ASSERT(mcpname_valid(a));
}

TEST(mcp_name_long_names_are_cut_to_64_with_hash)
{
    char tool[130], a[TOOL_NAME_MAX + 1], b[TOOL_NAME_MAX + 1];
    memset(tool, 'x', 128);
    tool[128] = '\0';
    mcpname_expose("alias", tool, NULL, NULL, a);
    tool[127] = 'y';
    mcpname_expose("alias", tool, NULL, NULL, b);
    ASSERT_EQ(strlen(a), TOOL_NAME_MAX);
    ASSERT(mcpname_valid(a) && mcpname_valid(b));
    ASSERT(strcmp(a, b) != 0);
}

TEST(mcp_name_collisions_get_a_hash)
{
    char a[TOOL_NAME_MAX + 1];
    taken_name = "x__y__z";
    mcpname_expose("x__y", "z", taken_one, NULL, a);
    ASSERT(strcmp(a, "x__y__z") != 0);
    ASSERT(strncmp(a, "x__y__z_", 8) == 0);
    ASSERT(mcpname_valid(a));
    taken_name = NULL;
}

TEST(mcp_name_validity)
{
    ASSERT(!mcpname_valid(""));
    ASSERT(!mcpname_valid("a.b"));
    ASSERT(!mcpname_valid("a b"));
    ASSERT(mcpname_valid("A-z_0"));
}

/* ---- JSON-RPC ----------------------------------------------------------------------------------
 */

static mcpproto_kind_t kind_of(const char *s)
{
    cJSON *j = cJSON_Parse(s);
    mcpproto_kind_t k = mcpproto_classify(j);
    cJSON_Delete(j);
    return k;
}

TEST(mcp_rpc_classified_by_fields_not_ids)
{
    ASSERT_EQ(kind_of("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"roots/list\"}"),
              MCPPROTO_REQUEST);
    ASSERT_EQ(kind_of("{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"ping\"}"), MCPPROTO_REQUEST);
    ASSERT_EQ(kind_of("{\"method\":\"notifications/tools/list_changed\",\"jsonrpc\":\"2.0\"}"),
              MCPPROTO_NOTIFICATION);
    ASSERT_EQ(kind_of("{\"result\":{},\"jsonrpc\":\"2.0\",\"id\":1}"), MCPPROTO_RESPONSE);
    ASSERT_EQ(kind_of("{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"error\":{\"code\":-1}}"),
              MCPPROTO_RESPONSE);
    ASSERT_EQ(kind_of("{}"), MCPPROTO_INVALID);
    ASSERT_EQ(kind_of("{\"id\":1}"), MCPPROTO_INVALID);
    ASSERT_EQ(kind_of("{\"id\":null,\"error\":{\"code\":-32000}}"), MCPPROTO_INVALID);
    ASSERT_EQ(kind_of("[1]"), MCPPROTO_INVALID);
}

TEST(mcp_rpc_stdio_framing_is_one_compact_line)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "text", "two\nlines");
    cJSON *m = mcpproto_request(7, "tools/call", p);
    size_t len;
    char *line = mcpproto_line(m, &len);
    ASSERT_EQ(len, strlen(line));
    ASSERT_EQ(line[len - 1], '\n');
    ASSERT(memchr(line, '\n', len - 1) == NULL);
    ASSERT_STR_CONTAINS(line, "\"id\":7");
    ASSERT_STR_CONTAINS(line, "\"method\":\"tools/call\"");
    ASSERT_STR_CONTAINS(line, "two\\nlines");
    free(line);
    cJSON_Delete(m);
}

TEST(mcp_rpc_versions_and_init_params)
{
    ASSERT(mcpproto_version_ok("2025-11-25"));
    ASSERT(mcpproto_version_ok("2025-06-18"));
    ASSERT(mcpproto_version_ok("2025-03-26"));
    ASSERT(!mcpproto_version_ok("2024-11-05"));
    cJSON *p = mcpproto_init_params(false);
    char *s = cJSON_PrintUnformatted(p);
    ASSERT_STR_CONTAINS(s, "\"protocolVersion\":\"2025-11-25\"");
    ASSERT_STR_CONTAINS(s, "\"capabilities\":{}"); /* nothing advertised that is not built */
    ASSERT_STR_CONTAINS(s, "\"clientInfo\":{\"name\":\"switchboard\"");
    cJSON_free(s);
    cJSON_Delete(p);
}

TEST(mcp_rpc_elicitation_defaults)
{
    cJSON *p = cJSON_Parse("{\"requestedSchema\":{\"properties\":{\"name\":{\"type\":\"string\","
                           "\"default\":\"John\"},\"age\":{\"default\":30},\"x\":{}}}}");
    cJSON *r = mcpproto_elicit_defaults(p);
    char *s = cJSON_PrintUnformatted(r);
    ASSERT_STR_EQ(s, "{\"action\":\"accept\",\"content\":{\"name\":\"John\",\"age\":30}}");
    cJSON_free(s);
    cJSON_Delete(r);
    cJSON_Delete(p);
}

static tool_result_msg_t *result_of(const char *json)
{
    cJSON *j = cJSON_Parse(json);
    tool_result_msg_t *r = mcpproto_call_result(5, j, NULL);
    cJSON_Delete(j);
    return r;
}

TEST(mcp_result_text_joined_structured_as_json_image_kept)
{
    tool_result_msg_t *r = result_of(
        "{\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"image\",\"data\":\"iVBO\","
        "\"mimeType\":\"image/png\"},{\"type\":\"text\",\"text\":\"b\"}],"
        "\"structuredContent\":{\"t\":1}}");
    ASSERT_STR_EQ(r->output, "a\nb\n{\"t\":1}");
    ASSERT(!r->is_error);
    ASSERT_STR_EQ(r->image_b64, "iVBO");
    ASSERT_STR_EQ(r->image_mime, "image/png");
    ASSERT_EQ(r->cookie, 5);
    msg_free(&r->hdr);
}

TEST(mcp_result_is_error_and_rpc_errors_are_tool_errors)
{
    tool_result_msg_t *r =
        result_of("{\"content\":[{\"type\":\"text\",\"text\":\"nope\"}],\"isError\":true}");
    ASSERT(r->is_error);
    ASSERT_STR_EQ(r->output, "nope");
    msg_free(&r->hdr);
    cJSON *e = cJSON_Parse("{\"code\":-32601,\"message\":\"Method not found\"}");
    r = mcpproto_call_result(1, NULL, e);
    ASSERT(r->is_error);
    ASSERT_STR_CONTAINS(r->output, "\"code\":\"mcp_error\"");
    ASSERT_STR_CONTAINS(r->output, "-32601");
    msg_free(&r->hdr);
    cJSON_Delete(e);
}

/* ---- SSE ---------------------------------------------------------------------------------------
 */

static char sse_got[8][256];
static int sse_n;

static void sse_cb(void *arg, const char *event, const char *data, size_t len)
{
    (void)arg;
    (void)len;
    if (sse_n < 8)
        snprintf(sse_got[sse_n++], sizeof(sse_got[0]), "%s|%s", event, data);
}

static void feed_bytewise(mcpsse_t *p, const char *s)
{
    for (size_t i = 0; s[i]; i++)
        mcpsse_feed(p, s + i, 1, sse_cb, NULL);
}

TEST(mcp_sse_events_ids_retry_and_priming)
{
    mcpsse_t p;
    mcpsse_init(&p);
    sse_n = 0;
    const char *s = "id: prime-1\r\nretry: 500\r\ndata: \r\n\r\n"
                    ": keep-alive\n"
                    "event: message\nid: e2\ndata: {\"a\":\ndata:1}\n\n"
                    "data:no-space\r\rdata: x\n";
    mcpsse_feed(&p, s, strlen(s), sse_cb, NULL);
    ASSERT_EQ(sse_n, 2); /* the priming event (empty data) is not dispatched */
    ASSERT_STR_EQ(sse_got[0], "message|{\"a\":\n1}");
    ASSERT_STR_EQ(sse_got[1], "message|no-space");
    ASSERT_STR_EQ(p.last_id, "e2");
    ASSERT_EQ(p.retry_ms, 500);
    mcpsse_destroy(&p);
}

TEST(mcp_sse_split_anywhere_gives_the_same_events)
{
    mcpsse_t p;
    mcpsse_init(&p);
    sse_n = 0;
    feed_bytewise(&p, "id: 1\r\ndata: one\r\n\r\nevent: other\r\ndata: two\r\n\r\n");
    ASSERT_EQ(sse_n, 2);
    ASSERT_STR_EQ(sse_got[0], "message|one");
    ASSERT_STR_EQ(sse_got[1], "other|two");
    ASSERT_STR_EQ(p.last_id, "1");
    ASSERT_EQ(p.retry_ms, -1);
    mcpsse_destroy(&p);
}

/* ---- Registry ----------------------------------------------------------------------------------
 */

static void noop_handle(actor_t *self, msg_t *m)
{
    (void)self;
    msg_free(m);
}

static const actor_type_t noop_type = {"noop", noop_handle, NULL};

/* A tenant snapshot `t` defining servers one (stdio: `srv-one`) and two (HTTP) as the
 * registry tests publish them; arg_one replaces srv-one's first argument. */
static char *one_args[1];
static agent_mcp_server_t test_servers[2] = {
    {.alias = "one", .command = "srv-one", .args = one_args, .n_args = 1},
    {.alias = "two", .url = "http://127.0.0.1:1/mcp"},
};

static void test_tenant(tenant_t *t, char *arg_one)
{
    memset(t, 0, sizeof(*t));
    str_copy(t->id, "t", sizeof(t->id));
    one_args[0] = arg_one;
    t->cfg.mcp_servers = test_servers;
    t->cfg.n_mcp_servers = 2;
}

TEST(mcp_server_key_tells_definitions_apart)
{
    char *a[] = {"x", "y"}, *b[] = {"xy"}, *e1[] = {"A=1"};
    agent_mcp_server_t s1 = {.alias = "crm", .command = "node", .args = a, .n_args = 2};
    agent_mcp_server_t s2 = s1;
    ASSERT_EQ(mcp_server_key(&s1), mcp_server_key(&s2)); /* alike: one client */
    s2.args = b;
    s2.n_args = 1;
    ASSERT_NE(mcp_server_key(&s1), mcp_server_key(&s2)); /* "x","y" is not "xy" */
    s2 = s1;
    s2.env = e1;
    s2.n_env = 1;
    ASSERT_NE(mcp_server_key(&s1), mcp_server_key(&s2));
    s2 = s1;
    s2.alias = "crm2";
    ASSERT_NE(mcp_server_key(&s1), mcp_server_key(&s2));
    agent_mcp_server_t h1 = {.alias = "crm", .url = "http://a/mcp"}, h2 = h1;
    h2.headers = e1;
    h2.n_headers = 1;
    ASSERT_NE(mcp_server_key(&h1), mcp_server_key(&h2));
}

TEST(mcp_registry_publish_replace_withdraw)
{
    sched_config_t sc = {.workers = 1, .max_actors = 100, .mailbox_cap = 64};
    ASSERT_EQ(sched_start(&sc), 0);
    actor_t *a = xcalloc(1, sizeof(*a));
    ASSERT_EQ(actor_spawn(a, &noop_type, LANE_TOOLS), 0);
    actor_t *b = xcalloc(1, sizeof(*b));
    ASSERT_EQ(actor_spawn(b, &noop_type, LANE_TOOLS), 0);
    tenant_t tt, other;
    test_tenant(&tt, "v1");
    test_tenant(&other, "v1");
    str_copy(other.id, "u", sizeof(other.id));
    cJSON *schema = cJSON_Parse("{\"type\":\"object\",\"properties\":{\"m\":{}}}");
    mcpreg_entry_t e[2] = {{"echo", "Echoes", schema}, {"a.b", NULL, NULL}};
    char exposed[2][TOOL_NAME_MAX + 1];
    mcpreg_publish("t", "one", mcp_server_key(&test_servers[0]), a, e, 2, exposed);
    ASSERT_STR_EQ(exposed[0], "one__echo");
    mcpreg_snap_t *old = mcpreg_acquire();
    ASSERT_EQ(old->n, 2);
    const mcpreg_tool_t *t = mcpreg_find(old, &tt, "one__echo");
    ASSERT(t && t->server == a);
    ASSERT_STR_EQ(t->original, "echo");
    ASSERT(mcpreg_find(old, &other, "one__echo") == NULL); /* another tenant's */
    char *def = cJSON_PrintUnformatted(t->def);
    ASSERT_STR_CONTAINS(def, "\"parameters\":{\"type\":\"object\",\"properties\":{\"m\":{}}}");
    cJSON_free(def);
    t = mcpreg_find(old, &tt, exposed[1]);
    ASSERT(t && strcmp(t->original, "a.b") == 0);
    mcpreg_publish("t", "two", mcp_server_key(&test_servers[1]), b, e, 1, exposed);
    mcpreg_withdraw(a);
    mcpreg_snap_t *now = mcpreg_acquire();
    ASSERT_EQ(now->n, 1);
    ASSERT(mcpreg_find(now, &tt, "two__echo") != NULL);
    ASSERT_EQ(old->n, 2); /* a snapshot never changes under its reader */
    mcpreg_release(old);
    mcpreg_release(now);
    mcpreg_clear();
    cJSON_Delete(schema);
    actor_unref(a);
    actor_unref(b);
    ASSERT_EQ(sched_stop(2000), 0);
}

TEST(mcp_registry_a_snapshot_sees_the_client_of_its_own_definition)
{
    sched_config_t sc = {.workers = 1, .max_actors = 100, .mailbox_cap = 64};
    ASSERT_EQ(sched_start(&sc), 0);
    actor_t *v1 = xcalloc(1, sizeof(*v1)), *v2 = xcalloc(1, sizeof(*v2));
    ASSERT_EQ(actor_spawn(v1, &noop_type, LANE_TOOLS), 0);
    ASSERT_EQ(actor_spawn(v2, &noop_type, LANE_TOOLS), 0);
    tenant_t old_cfg, new_cfg;
    test_tenant(&old_cfg, "v1");
    uint64_t k1 = mcp_server_key(&test_servers[0]);
    test_tenant(&new_cfg, "v2");
    uint64_t k2 = mcp_server_key(&test_servers[0]);
    ASSERT_NE(k1, k2);
    mcpreg_entry_t e[1] = {{"echo", "Echoes", NULL}};
    char exposed[1][TOOL_NAME_MAX + 1];
    /* The old definition's client and, after a reload, the new one's: the same names (no hash
     * suffix for the other version of the same alias), each for its own snapshots. */
    mcpreg_publish("t", "one", k1, v1, e, 1, exposed);
    mcpreg_publish("t", "one", k2, v2, e, 1, exposed);
    ASSERT_STR_EQ(exposed[0], "one__echo");
    mcpreg_snap_t *s = mcpreg_acquire();
    ASSERT_EQ(s->n, 2);
    test_tenant(&old_cfg, "v1"); /* one_args[0] is shared: each check sets its own */
    const mcpreg_tool_t *t = mcpreg_find(s, &old_cfg, "one__echo");
    ASSERT(t && t->server == v1);
    test_tenant(&new_cfg, "v2");
    t = mcpreg_find(s, &new_cfg, "one__echo");
    ASSERT(t && t->server == v2);
    size_t served = 0;
    for (size_t i = 0; i < s->n; i++)
        served += mcpreg_serves(&s->tools[i], &new_cfg);
    ASSERT_EQ(served, 1);
    /* A tenant without that alias any more sees neither. */
    new_cfg.cfg.n_mcp_servers = 0;
    ASSERT(mcpreg_find(s, &new_cfg, "one__echo") == NULL);
    mcpreg_release(s);
    mcpreg_withdraw(v1);
    s = mcpreg_acquire();
    ASSERT_EQ(s->n, 1);
    ASSERT(s->tools[0].server == v2);
    mcpreg_release(s);
    mcpreg_clear();
    actor_unref(v1);
    actor_unref(v2);
    ASSERT_EQ(sched_stop(2000), 0);
}

/* ---- net_proc: lines of any length, exit after the last line -----------------------------------
 */

static pthread_mutex_t pk = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pc = PTHREAD_COND_INITIALIZER;
static size_t line_lens[8];
static int n_lines;
static bool exited;
static int exit_status;

static void proc_sink(actor_t *self, msg_t *m)
{
    (void)self;
    pthread_mutex_lock(&pk);
    if (m->type == NET_MSG_PROC_LINE && n_lines < 8)
        line_lens[n_lines++] = ((net_proc_line_msg_t *)m)->len;
    if (m->type == NET_MSG_PROC_EXIT) {
        exited = true;
        exit_status = (int)((net_proc_exit_msg_t *)m)->exit_status;
    }
    pthread_cond_broadcast(&pc);
    pthread_mutex_unlock(&pk);
    msg_free(m);
}

static const actor_type_t proc_sink_type = {"proc_sink", proc_sink, NULL};

/* Starts metrics, the scheduler and one outbound-only network thread; returns a spawned actor of
 * type t for the test's messages. */
static actor_t *runtime_start(const actor_type_t *t)
{
    metrics_init();
    sched_config_t sc = {.workers = 2, .max_actors = 100, .mailbox_cap = 1024};
    if (sched_start(&sc) != 0)
        abort();
    net_config_t nc = {.threads = 1, .max_connections = 100, .out_cap = 64, .no_listen = true};
    if (net_start(&nc) != 0)
        abort();
    actor_t *a = xcalloc(1, sizeof(*a));
    if (actor_spawn(a, t, LANE_TOOLS) != 0)
        abort();
    return a;
}

TEST(mcp_proc_long_lines_and_exit_after_them)
{
    actor_t *sink = runtime_start(&proc_sink_type);
    char script[200];
    snprintf(script, sizeof(script),
             "head -c %d /dev/zero | tr '\\\\0' x; echo; read l; echo \"$l\"; echo err >&2; "
             "printf tail; exit 3",
             LONG_LINE_BYTES);
    const char *args[] = {"-c", script, NULL};
    net_proc_req_t req = {.file = "/bin/sh", .args = args, .log_name = "test"};
    uint64_t id = net_proc_spawn(&req, sink);
    ASSERT_NE(id, 0);
    net_proc_write(id, "ping\r\n", 6);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&pk);
    while (!exited && pthread_cond_timedwait(&pc, &pk, &ts) == 0)
        ;
    bool done = exited;
    pthread_mutex_unlock(&pk);
    ASSERT(done);
    ASSERT_EQ(n_lines, 3);
    ASSERT_EQ(line_lens[0], LONG_LINE_BYTES);
    ASSERT_EQ(line_lens[1], 4); /* "ping": the '\r' is removed */
    ASSERT_EQ(line_lens[2], 4); /* "tail" without a newline still counts */
    ASSERT_EQ(exit_status, 3);
    net_stop();
    actor_unref(sink);
    ASSERT_EQ(sched_stop(2000), 0);
    metrics_destroy();
}

/* ---- The client's own ping, against the fake server of the integration tests -------------------
 */

#define FAKE_MCP       "tests/integration/fake_mcp.py"
#define PING_POLL_US   20000
#define PING_RESEND_MS 100

static pthread_mutex_t ok_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ok_cond = PTHREAD_COND_INITIALIZER;
static int n_up, n_down; /* {ok_lock} */
static bool closed;      /* {ok_lock} */

static void owner_sink(actor_t *self, msg_t *m)
{
    (void)self;
    pthread_mutex_lock(&ok_lock);
    if (m->type == MCP_MSG_STATUS) {
        if (((mcp_status_msg_t *)m)->up)
            n_up++;
        else
            n_down++;
    }
    if (m->type == MCP_MSG_CLOSED)
        closed = true;
    pthread_cond_broadcast(&ok_cond);
    pthread_mutex_unlock(&ok_lock);
    msg_free(m);
}

static const actor_type_t owner_sink_type = {"owner_sink", owner_sink, NULL};

/* Waits at most WAIT_MS for *flag (an int or bool read under ok_lock) to be nonzero. */
static bool wait_owner(const int *count, const bool *flag)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&ok_lock);
    while (!(count ? *count : *flag) && pthread_cond_timedwait(&ok_cond, &ok_lock, &ts) == 0)
        ;
    bool done = count ? *count : *flag;
    pthread_mutex_unlock(&ok_lock);
    return done;
}

/* How many ping requests the client has sent the fake server (its log of client lines). */
static int pings_sent(const char *log_path)
{
    FILE *f = fopen(log_path, "r");
    if (f == NULL)
        return 0;
    int n = 0;
    char line[4096];
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "C ", 2) == 0 && strstr(line, "\"method\":\"ping\"") &&
            strstr(line, "\"id\":"))
            n++;
    fclose(f);
    return n;
}

/*
 * The ping timer's message (MCP_MSG_PING) sends a ping only while none is awaited: a second ping
 * goes out only once the server's {"result":{}} has been matched to the first. The test sends
 * the timer's message itself rather than wait MCP_PING_INTERVAL_MS.
 */
TEST(mcp_client_ping_is_sent_and_its_answer_matched)
{
    char log_path[] = "/tmp/sbmcp-ping-XXXXXX";
    int fd = mkstemp(log_path);
    ASSERT(fd >= 0);
    close(fd);
    actor_t *owner = runtime_start(&owner_sink_type);
    char *args[] = {FAKE_MCP, log_path};
    agent_mcp_server_t srv = {
        .alias = "fake", .command = "/usr/bin/python3", .args = args, .n_args = 2};
    mcp_opts_t o = {.server = &srv, .owner = owner, .call_timeout_ms = WAIT_MS};
    actor_t *client = mcp_spawn(&o);
    ASSERT(client != NULL);
    ASSERT(wait_owner(&n_up, NULL));
    actor_send(client, msg_new(MCP_MSG_PING, sizeof(msg_t)));
    for (int waited = 0; pings_sent(log_path) < 1 && waited < WAIT_MS;
         waited += PING_POLL_US / 1000)
        usleep(PING_POLL_US);
    ASSERT_EQ(pings_sent(log_path), 1);
    for (int waited = 0; pings_sent(log_path) < 2 && waited < WAIT_MS / 2;
         waited += PING_RESEND_MS) {
        actor_send(client, msg_new(MCP_MSG_PING, sizeof(msg_t)));
        usleep(PING_RESEND_MS * 1000);
    }
    ASSERT_EQ(pings_sent(log_path), 2);
    pthread_mutex_lock(&ok_lock);
    int downs = n_down;
    pthread_mutex_unlock(&ok_lock);
    ASSERT_EQ(downs, 0);
    actor_send(client, msg_new(MCP_MSG_SHUTDOWN, sizeof(msg_t)));
    ASSERT(wait_owner(NULL, &closed));
    actor_unref(client);
    actor_unref(owner);
    net_stop();
    ASSERT_EQ(sched_stop(2000), 0);
    metrics_destroy();
    unlink(log_path);
}

/*
 * postcall: the job runner (postcall.h).
 *
 * A claimed job lives here only while its attempt runs: { summary fetch -> store the result ->
 * CRM supervisor run -> report the end }. The file is the job's truth; what is here is the
 * attempt in flight. At most POSTCALL_MAX_RUNNING attempts run at once and at most one claim is
 * outstanding, so a burst of ended calls costs one claim per free slot, not one per call.
 * Thread: the runner's worker.
 */
#include "agents/postcall/postcall.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/timer.h"
#include "agents/mcp/mcp.h"
#include "agents/postcall/summary.h"
#include "agents/store/store.h"
#include "agents/supervisor/supervisor.h"
#include "agents/tenant/tenant.h"
#include "base/config.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "base/util.h"
#include "net/net.h"

#define POSTCALL_MSG_DUE        (MSG_TYPE_POSTCALL_BASE + 1) /* the next retry's timer */
#define SUMMARY_TIMEOUT_MS      60000
#define SUMMARY_MAX_BODY        (1024 * 1024)
#define CRM_RUN_DEADLINE_MS     120000
#define ERROR_MAX               300
#define TOOL_ERROR_TEXT_MAX     160
#define POSTCALL_START_GRACE_MS 3000

typedef struct job {
    struct job *next;
    char *call_id;
    tenant_t *tenant; /* a reference; NULL when the tenant is gone */
    cJSON *call;      /* the call record (GET /api/calls/{id}) */
    cJSON *summary;   /* this attempt's summary, or the stored one */
    bool summary_done, crm_pending;
    uint64_t fetch_id; /* the summary request in flight, 0 when none */
    uint64_t cookie;   /* the CRM run's, 0 when none */
    bool crm_tool_failed;
    char error[ERROR_MAX];
} job_t;

typedef struct postcall {
    actor_t actor;
    actor_t *store;   /* [owner] a reference */
    actor_t *pool;    /* [owner] a reference */
    job_t *jobs;      /* [owner] attempts in flight */
    int running;      /* [owner] */
    bool claiming;    /* [owner] a claim is outstanding */
    bool claim_again; /* [owner] something changed while it was */
    uint64_t next_cookie;
    actor_timer_t *due; /* [owner] the next retry */
} postcall_t;

/* ---- Claims -----------------------------------------------------------------------------------
 */

static void claim(postcall_t *p)
{
    if (p->claiming) {
        p->claim_again = true;
        return;
    }
    if (p->running >= POSTCALL_MAX_RUNNING)
        return; /* a job's end claims again */
    p->claiming = true;
    p->claim_again = false;
    store_postcall_claim(p->store, &p->actor, POSTCALL_MAX_RUNNING - p->running);
}

static void job_free(postcall_t *p, job_t *j)
{
    for (job_t **pp = &p->jobs; *pp; pp = &(*pp)->next) {
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    }
    if (j->fetch_id)
        net_fetch_cancel(j->fetch_id);
    if (j->cookie)
        supervisor_cancel(p->pool, &p->actor, j->cookie);
    tenant_unref(j->tenant);
    cJSON_Delete(j->call);
    cJSON_Delete(j->summary);
    free(j->call_id);
    free(j);
}

/* The attempt is over: tell the store (crm: the CRM step's state now, NULL as it was). */
static void job_end(postcall_t *p, job_t *j, const char *crm, const char *error)
{
    store_postcall_end(p->store, j->call_id, crm, error);
    j->cookie = 0; /* the run has answered */
    job_free(p, j);
    p->running--;
    claim(p);
}

static job_t *job_by(postcall_t *p, uint64_t fetch_id, uint64_t cookie)
{
    for (job_t *j = p->jobs; j; j = j->next)
        if ((fetch_id && j->fetch_id == fetch_id) || (cookie && j->cookie == cookie))
            return j;
    return NULL;
}

/* ---- The CRM step -----------------------------------------------------------------------------
 */

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Whether the CRM server alias of tenant t publishes any tool now. */
static bool crm_has_tools(const tenant_t *t, const char *alias)
{
    mcpreg_snap_t *snap = mcpreg_acquire();
    bool found = false;
    for (size_t i = 0; i < snap->n && !found; i++)
        found = strcmp(snap->tools[i].alias, alias) == 0 && mcpreg_serves(&snap->tools[i], t);
    mcpreg_release(snap);
    return found;
}

/* What the CRM run is told: the caller's details from the summary, the note to attach. */
static char *crm_context(const job_t *j)
{
    const cJSON *caller = cJSON_GetObjectItemCaseSensitive(j->summary, "caller");
    const char *phone = jstr(caller, "phone") ? jstr(caller, "phone") : jstr(j->call, "from");
    sbuf_t b = SBUF_INIT;
    sbuf_printf(&b, "Post-call CRM sync for call %s.\n", j->call_id);
    sbuf_printf(&b, "Caller name: %s\n", jstr(caller, "name") ? jstr(caller, "name") : "unknown");
    sbuf_printf(&b, "Caller phone: %s\n", phone ? phone : "unknown");
    sbuf_printf(&b, "Caller email: %s\n",
                jstr(caller, "email") ? jstr(caller, "email") : "unknown");
    sbuf_puts(&b, "Note:\n");
    sbuf_printf(&b, "Summary: %s\n",
                jstr(j->summary, "summary") ? jstr(j->summary, "summary") : "(none)");
    const char *fields[] = {"reason", "outcome", "followUp", "sentiment"};
    for (size_t i = 0; i < ARRAY_LEN(fields); i++)
        if (jstr(j->summary, fields[i]))
            sbuf_printf(&b, "%s: %s\n", fields[i], jstr(j->summary, fields[i]));
    sbuf_puts(&b, "Transcript:\n");
    const cJSON *line;
    cJSON_ArrayForEach(line, cJSON_GetObjectItemCaseSensitive(j->call, "transcript"))
    {
        const char *role = jstr(line, "role");
        sbuf_printf(&b, "%s: %s\n", role && strcmp(role, "user") == 0 ? "Caller" : "Agent",
                    jstr(line, "text") ? jstr(line, "text") : "");
    }
    return sbuf_take(&b);
}

static void crm_start(postcall_t *p, job_t *j)
{
    const char *alias = j->tenant ? j->tenant->cfg.postcall.crm : NULL;
    if (!j->crm_pending || alias == NULL) {
        job_end(p, j, alias == NULL && j->crm_pending ? "skipped" : NULL, NULL);
        return;
    }
    if (!crm_has_tools(j->tenant, alias)) {
        char why[ERROR_MAX];
        snprintf(why, sizeof(why), "the CRM server %s offers no tools (not running?)", alias);
        job_end(p, j, "failed", why);
        return;
    }
    j->cookie = ++p->next_cookie;
    tenant_ref(j->tenant);
    supervisor_run(p->pool, &p->actor, j->cookie, STORE_PARENT_POSTCALL, "", NULL, crm_context(j),
                   clock_now_ns() + (uint64_t)CRM_RUN_DEADLINE_MS * NS_PER_MS, SURFACE_POSTCALL,
                   j->tenant);
    tenant_unref(j->tenant); /* supervisor_run() took a reference of its own */
}

/* A CRM tool call ended: recorded with the call; a failure fails the step. */
static void on_tool_event(postcall_t *p, const tool_event_msg_t *e)
{
    job_t *j = job_by(p, 0, e->cookie);
    if (j == NULL || strcmp(e->status, "started") == 0)
        return;
    store_tool_record(p->store, j->call_id, e->call_id, STORE_PARENT_POSTCALL, e->name,
                      e->arguments, e->output, e->status, e->duration_ms, e->via,
                      (int64_t)clock_wall_ms());
    if (strcmp(e->status, "completed") != 0 && !j->crm_tool_failed) {
        j->crm_tool_failed = true;
        snprintf(j->error, sizeof(j->error), "%s %s: %.*s", e->name, e->status, TOOL_ERROR_TEXT_MAX,
                 e->output ? e->output : "");
    }
}

static void on_run_result(postcall_t *p, const tool_result_msg_t *r)
{
    job_t *j = job_by(p, 0, r->cookie);
    if (j == NULL)
        return;
    j->cookie = 0;
    if (r->is_error) {
        char why[ERROR_MAX];
        snprintf(why, sizeof(why), "the CRM run failed (%s)", r->reason[0] ? r->reason : "failed");
        job_end(p, j, "failed", j->crm_tool_failed ? j->error : why);
    } else if (j->crm_tool_failed) {
        job_end(p, j, "failed", j->error);
    } else {
        log_info("postcall.crm", LOG_S("call", j->call_id), LOG_S("result", r->output));
        job_end(p, j, "done", NULL);
    }
}

/* ---- The summary step -------------------------------------------------------------------------
 */

static void summary_failed(postcall_t *p, job_t *j, const char *why)
{
    log_warn("postcall.summary_failed", LOG_S("call", j->call_id), LOG_S("error", why));
    store_postcall_summary(p->store, j->call_id, NULL, NULL, why);
    job_end(p, j, NULL, why); /* the CRM step waits for a summary: the next attempt */
}

static void summary_start(postcall_t *p, job_t *j)
{
    if (g_config->openai_api_key == NULL) {
        summary_failed(p, j, "OPENAI_API_KEY is not set");
        return;
    }
    cJSON *body = summary_request(g_config->supervisor_model, j->call);
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    j->fetch_id = supervisor_chat_fetch(text, SUMMARY_TIMEOUT_MS, SUMMARY_MAX_BODY, &p->actor);
    free(text);
    if (j->fetch_id == 0)
        summary_failed(p, j, "cannot send the summary request");
}

static void on_summary(postcall_t *p, const net_fetch_done_msg_t *d)
{
    job_t *j = job_by(p, d->id, 0);
    if (j == NULL)
        return;
    j->fetch_id = 0;
    char why[ERROR_MAX];
    if (d->status != 200) {
        snprintf(why, sizeof(why), "the summary request failed: HTTP %d %s", d->status, d->error);
        summary_failed(p, j, why);
        return;
    }
    cJSON *s = summary_parse(d->body, jstr(j->call, "from"), why, sizeof(why));
    if (s == NULL) {
        summary_failed(p, j, why);
        return;
    }
    char *text = cJSON_PrintUnformatted(s);
    store_postcall_summary(p->store, j->call_id, text, jstr(s, "outcome"), NULL);
    free(text);
    cJSON_Delete(j->summary);
    j->summary = s;
    j->summary_done = true;
    crm_start(p, j);
}

/* ---- Jobs -------------------------------------------------------------------------------------
 */

static void job_start(postcall_t *p, cJSON *desc)
{
    job_t *j = xcalloc(1, sizeof(*j));
    j->call_id = xstrdup(jstr(desc, "callId"));
    j->tenant = tenants_get(jstr(desc, "tenant"));
    j->call = cJSON_DetachItemFromObjectCaseSensitive(desc, "call");
    const char *crm = jstr(desc, "crm");
    j->summary_done = jstr(desc, "summary") && strcmp(jstr(desc, "summary"), "done") == 0;
    j->crm_pending = crm && strcmp(crm, "done") != 0 && strcmp(crm, "skipped") != 0;
    j->next = p->jobs;
    p->jobs = j;
    p->running++;
    log_info("postcall.start", LOG_S("call", j->call_id),
             LOG_I("attempt", cJSON_GetObjectItemCaseSensitive(desc, "attempts")->valueint));
    if (!cJSON_IsObject(j->call)) {
        job_end(p, j, NULL, "the call record is gone");
    } else if (j->tenant == NULL) {
        job_end(p, j, NULL, "the call's tenant is no longer configured");
    } else if (!j->summary_done) {
        summary_start(p, j);
    } else {
        const cJSON *stored = cJSON_GetObjectItemCaseSensitive(j->call, "summary");
        j->summary = cJSON_IsObject(stored) ? cJSON_Duplicate(stored, 1) : cJSON_CreateObject();
        crm_start(p, j);
    }
}

static void on_jobs(postcall_t *p, store_pc_jobs_msg_t *m)
{
    p->claiming = false;
    cJSON *desc;
    while ((desc = cJSON_DetachItemFromArray(m->jobs, 0)) != NULL) {
        job_start(p, desc);
        cJSON_Delete(desc);
    }
    if (m->next_due_ms >= 0) {
        int64_t wait = m->next_due_ms - (int64_t)clock_wall_ms();
        actor_timer_start(p->due, wait > 0 ? (uint64_t)wait : 1, 0);
    }
    if (p->claim_again)
        claim(p);
}

static void postcall_handle(actor_t *self, msg_t *m)
{
    postcall_t *p = (postcall_t *)self;
    switch (m->type) {
    case STORE_MSG_PC_JOBS:
        on_jobs(p, (store_pc_jobs_msg_t *)m);
        break;
    case STORE_MSG_PC_KICK:
    case POSTCALL_MSG_DUE:
        claim(p);
        break;
    case NET_MSG_FETCH_DONE:
        on_summary(p, (net_fetch_done_msg_t *)m);
        break;
    case SUP_MSG_TOOL_EVENT:
        on_tool_event(p, (tool_event_msg_t *)m);
        break;
    case TOOL_MSG_RESULT:
        on_run_result(p, (tool_result_msg_t *)m);
        break;
    case TOOL_MSG_CALL: { /* no tools of its own: a run never calls one, but answer anyway */
        tool_call_msg_t *c = (tool_call_msg_t *)m;
        if (c->reply_to)
            actor_send(c->reply_to, &tool_result_new(c->cookie, true,
                                                     "{\"error\":{\"code\":\"unknown_tool\","
                                                     "\"message\":\"no such tool\"}}")
                                         ->hdr);
        break;
    }
    default:
        break;
    }
    msg_free(m);
}

static void postcall_stop(actor_t *self)
{
    postcall_t *p = (postcall_t *)self;
    int abandoned = 0;
    while (p->jobs) {
        job_free(p, p->jobs);
        abandoned++;
    }
    if (abandoned)
        log_info("postcall.abandoned", LOG_I("jobs", abandoned),
                 LOG_S("why", "shutting down; they run again after start-up"));
    actor_timer_free(p->due);
    actor_unref(p->pool);
    actor_unref(p->store);
}

static const actor_type_t postcall_type = {"postcall", postcall_handle, postcall_stop};

actor_t *postcall_spawn(actor_t *store, actor_t *pool)
{
    postcall_t *p = xcalloc(1, sizeof(*p));
    if (actor_spawn(&p->actor, &postcall_type, LANE_TOOLS) != 0) {
        free(p);
        return NULL;
    }
    actor_ref(store);
    p->store = store;
    actor_ref(pool);
    p->pool = pool;
    p->due = actor_timer_new(&p->actor, POSTCALL_MSG_DUE, NULL);
    store_postcall_attach(store, &p->actor);
    /* Jobs left from before run once the MCP clients, started after the actors, have had time
     * to come up: a CRM still starting would cost them an attempt. */
    actor_timer_start(p->due, POSTCALL_START_GRACE_MS, 0);
    return &p->actor;
}

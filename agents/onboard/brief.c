/*
 * The brief endpoint's actor (brief.h): a queue of jobs, one running, each a child process for
 * the PDF's text, then one Chat Completions request, then the tenant file.
 *
 * A job's steps report back as messages (the child's lines and exit, the fetch's DONE, the
 * deadline timer), each checked against the job's current step by its id: a child killed at the
 * deadline still sends its EXIT, and a cancelled fetch its DONE, after the job has answered;
 * they find proc_id / fetch_id reset and are dropped. Thread: the actor's worker, except
 * brief_spawn().
 */
#include "agents/onboard/brief.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "actors/timer.h"
#include "agents/auth/auth.h"
#include "agents/onboard/onboard.h"
#include "agents/onboard/pdftext.h"
#include "agents/tenant/tenant.h"
#include "base/config.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "base/util.h"
#include "net/net.h"

#define BRIEF_MSG_DEADLINE    (MSG_TYPE_ONBOARD_BASE + 1)
#define BRIEF_SUFFIX          "/brief"
#define BRIEF_ONBOARD_NAME    "switchboard-onboard"
#define BRIEF_EXIT_NO_TEXT    3                            /* switchboard-onboard --text: no text */
#define BRIEF_TEXT_MAX_BYTES  (2 * PDFTEXT_MAX_TEXT_BYTES) /* the child's text, newlines added */
#define BRIEF_MAX_RESP_BYTES  (4 * 1024 * 1024)
#define BRIEF_CHAT_PATH       "/chat/completions"
#define BRIEF_URL_MAX_CHARS   1024
#define BRIEF_ERR_MAX_CHARS   512
#define BRIEF_BYTES_MAX_CHARS 24

/* A request waiting for its turn, or running. */
typedef struct job {
    conn_id_t conn;
    char id[TENANT_ID_MAX + 1];
    char *pdf; /* owned until written to the child */
    size_t len;
    uint64_t queued_ns;
} job_t;

typedef struct brief {
    actor_t actor;
    char *bin; /* [owner] the switchboard-onboard to run */
    char *dir; /* [owner] the tenant directory; NULL when SWITCHBOARD_CONFIG is not one */

    job_t wait[BRIEF_QUEUE_MAX]; /* [owner] a ring: head, then n_wait */
    size_t head, n_wait;

    bool running; /* [owner] cur is a job in progress */
    job_t cur;
    uint64_t started_ns;
    uint64_t proc_id;  /* the text's child while it runs, else 0 */
    uint64_t fetch_id; /* the Chat Completions request in flight, else 0 */
    sbuf_t text;
    actor_timer_t *deadline;
} brief_t;

static void job_next(brief_t *b);

/* ---- Answers -----------------------------------------------------------------------------------
 */

static void job_clear(job_t *j)
{
    free(j->pdf);
    memset(j, 0, sizeof(*j));
}

/* Ends the running job with an error answer and starts the next one. */
static void job_fail(brief_t *b, int status, const char *code, const char *message)
{
    log_info("brief.done", LOG_S("tenant", b->cur.id), LOG_I("status", status), LOG_S("code", code),
             LOG_I("ms", (clock_now_ns() - b->started_ns) / NS_PER_MS));
    net_http_error(b->cur.conn, status, code, message);
    if (b->proc_id)
        net_proc_kill(b->proc_id, SIGKILL);
    if (b->fetch_id)
        net_fetch_cancel(b->fetch_id);
    b->proc_id = b->fetch_id = 0;
    actor_timer_stop(b->deadline);
    sbuf_reset(&b->text);
    job_clear(&b->cur);
    b->running = false;
    job_next(b);
}

/* ---- Checks before a job is queued --------------------------------------------------------- */

/* The id of "/api/tenants/{id}/brief" into id (any text up to the suffix); false when path is
 * not of that shape. */
static bool brief_path_id(const char *path, char *id, size_t idlen)
{
    size_t pl = strlen(BRIEF_ROUTE), sl = strlen(BRIEF_SUFFIX), n = strlen(path);
    if (n <= pl + sl || strcmp(path + n - sl, BRIEF_SUFFIX) != 0)
        return false;
    size_t idn = n - pl - sl;
    if (memchr(path + pl, '/', idn) != NULL)
        return false;
    snprintf(id, idlen, "%.*s", (int)(idn < idlen ? idn : idlen - 1), path + pl);
    return idn < idlen;
}

/* Whether the Content-Type names application/pdf (parameters allowed). */
static bool is_pdf_type(const char *ct)
{
    static const char want[] = "application/pdf";
    if (ct == NULL || strncasecmp(ct, want, sizeof(want) - 1) != 0)
        return false;
    char next = ct[sizeof(want) - 1];
    return next == '\0' || next == ';' || next == ' ';
}

/* Whether <dir>/<id>.json exists (any kind of file, a dangling link included). */
static bool tenant_file_exists(const brief_t *b, const char *id)
{
    char path[PATH_MAX];
    struct stat st;
    return onboard_path(path, sizeof(path), b->dir, id) != 0 || lstat(path, &st) == 0;
}

static void on_request(brief_t *b, net_http_msg_t *m)
{
    char id[TENANT_ID_MAX + 2];
    if (!brief_path_id(m->path, id, sizeof(id))) {
        net_http_error(m->conn, 404, "not_found", "no such endpoint");
        return;
    }
    if (!auth_api_ok(m)) {
        net_http_error(m->conn, 401, "unauthorized", "the operator's API secret is required");
        return;
    }
    if (!onboard_tenant_id_ok(id)) {
        net_http_error(m->conn, 400, "invalid_tenant_id",
                       "a tenant id is 1 to 40 of a-z, 0-9 and '-'");
        return;
    }
    if (!is_pdf_type(m->content_type)) {
        net_http_error(m->conn, 415, "unsupported_media_type",
                       "send the brief as the body, with Content-Type: application/pdf");
        return;
    }
    if (m->body_len == 0) {
        net_http_error(m->conn, 400, "invalid_request", "the body is empty: send the PDF");
        return;
    }
    if (b->dir == NULL) {
        net_http_error(m->conn, 409, "no_tenant_directory",
                       "SWITCHBOARD_CONFIG does not name a tenant directory: the brief endpoint "
                       "writes <id>.json into one");
        return;
    }
    if (tenant_file_exists(b, id)) {
        net_http_error(m->conn, 409, "exists", "a tenant file with this id already exists");
        return;
    }
    if (g_config->openai_api_key == NULL) {
        net_http_error(m->conn, 503, "not_configured", "OPENAI_API_KEY is not set");
        return;
    }
    if (b->n_wait == BRIEF_QUEUE_MAX) {
        net_http_error(m->conn, 503, "busy", "other briefs are being read; try again later");
        return;
    }
    job_t *j = &b->wait[(b->head + b->n_wait++) % BRIEF_QUEUE_MAX];
    j->conn = m->conn;
    str_copy(j->id, id, sizeof(j->id));
    j->pdf = m->body; /* taken from the message */
    j->len = m->body_len;
    j->queued_ns = clock_now_ns();
    m->body = NULL;
    m->body_len = 0;
    if (!b->running)
        job_next(b);
}

/* ---- The job -----------------------------------------------------------------------------------
 */

/* Starts the child that prints the PDF's text, and writes the PDF to it. */
static void extract_start(brief_t *b)
{
    static const char *const env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C.UTF-8",
                                      NULL}; /* nothing of ours: no secrets for children */
    char bytes[BRIEF_BYTES_MAX_CHARS];
    snprintf(bytes, sizeof(bytes), "%zu", b->cur.len);
    const char *const args[] = {"-", "--text", "--bytes", bytes, NULL};
    net_proc_req_t req = {.file = b->bin, .args = args, .env = env, .log_name = "onboard"};
    b->proc_id = net_proc_spawn(&req, &b->actor);
    if (b->proc_id == 0) {
        job_fail(b, 500, "extract_failed", "cannot start switchboard-onboard");
        return;
    }
    net_proc_write(b->proc_id, b->cur.pdf, b->cur.len); /* copied */
    free(b->cur.pdf);
    b->cur.pdf = NULL;
}

static void job_next(brief_t *b)
{
    while (!b->running && b->n_wait > 0) {
        b->cur = b->wait[b->head];
        memset(&b->wait[b->head], 0, sizeof(b->wait[b->head]));
        b->head = (b->head + 1) % BRIEF_QUEUE_MAX;
        b->n_wait--;
        b->running = true;
        b->started_ns = clock_now_ns();
        log_info("brief.start", LOG_S("tenant", b->cur.id), LOG_I("bytes", b->cur.len),
                 LOG_I("queued_ms", (b->started_ns - b->cur.queued_ns) / NS_PER_MS));
        actor_timer_start(b->deadline, BRIEF_JOB_TIMEOUT_MS, 0);
        if (tenant_file_exists(b, b->cur.id)) /* one queued before us wrote it */
            job_fail(b, 409, "exists", "a tenant file with this id already exists");
        else
            extract_start(b);
    }
}

static void on_line(brief_t *b, const net_proc_line_msg_t *l)
{
    if (l->id != b->proc_id || b->proc_id == 0)
        return;
    if (b->text.len + l->len + 1 > BRIEF_TEXT_MAX_BYTES) {
        job_fail(b, 500, "extract_failed", "the PDF reader wrote more text than it may");
        return;
    }
    sbuf_append(&b->text, l->data, l->len);
    sbuf_putc(&b->text, '\n');
}

/* The text is complete: the one Chat Completions request. */
static void ask(brief_t *b)
{
    while (b->text.len > 0 && b->text.data[b->text.len - 1] == '\n')
        b->text.data[--b->text.len] = '\0'; /* the child ends its text with a newline */
    char url[BRIEF_URL_MAX_CHARS];
    snprintf(url, sizeof(url), "%s%s", g_config->openai_base_url, BRIEF_CHAT_PATH);
    char *body = onboard_request_body(g_config->supervisor_model, b->text.data);
    uint64_t spent_ms = (clock_now_ns() - b->started_ns) / NS_PER_MS;
    net_fetch_req_t req = {
        .method = "POST",
        .url = url,
        .headers = {"Content-Type: application/json"},
        .bearer = g_config->openai_api_key,
        .body = body,
        .body_len = strlen(body),
        .timeout_ms =
            (uint32_t)(spent_ms < BRIEF_JOB_TIMEOUT_MS ? BRIEF_JOB_TIMEOUT_MS - spent_ms : 1),
        .max_body = BRIEF_MAX_RESP_BYTES};
    b->fetch_id = net_fetch(&req, &b->actor);
    free(body);
    if (b->fetch_id == 0)
        job_fail(b, 500, "upstream_error", "SWITCHBOARD_OPENAI_BASE_URL is not a usable URL");
}

static void on_exit_msg(brief_t *b, const net_proc_exit_msg_t *e)
{
    if (e->id != b->proc_id || b->proc_id == 0)
        return;
    b->proc_id = 0;
    if (e->spawn_error) {
        log_error("brief.spawn_failed", LOG_S("file", b->bin),
                  LOG_S("error", strerror(-e->spawn_error)));
        job_fail(b, 500, "extract_failed", "cannot run switchboard-onboard");
    } else if (e->term_signal) {
        log_warn("brief.extract_crashed", LOG_S("tenant", b->cur.id),
                 LOG_I("signal", e->term_signal));
        job_fail(b, 500, "extract_failed", "the PDF reader failed on this document");
    } else if (e->exit_status == BRIEF_EXIT_NO_TEXT) {
        job_fail(b, 422, "no_text", ONBOARD_NO_TEXT_MESSAGE);
    } else if (e->exit_status != 0) {
        job_fail(b, 422, "invalid_pdf",
                 "the PDF cannot be read (damaged, encrypted with a password, or not a PDF)");
    } else {
        ask(b);
    }
}

/* The answer is a tenant file: write it and say so. */
static void write_and_answer(brief_t *b, const char *json, const onboard_keys_t *keys,
                             const sbuf_t *notes)
{
    char err[BRIEF_ERR_MAX_CHARS], path[PATH_MAX];
    int rc = onboard_write(b->dir, b->cur.id, json, false, err, sizeof(err));
    if (rc == -EEXIST) {
        job_fail(b, 409, "exists", "a tenant file with this id already exists");
        return;
    }
    if (rc != 0) {
        log_error("brief.write_failed", LOG_S("tenant", b->cur.id), LOG_S("error", err));
        job_fail(b, 500, "write_failed", "the tenant file could not be written");
        return;
    }
    onboard_path(path, sizeof(path), b->dir, b->cur.id);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", b->cur.id);
    cJSON_AddStringToObject(o, "path", path);
    cJSON_AddStringToObject(o, "publicKey", keys->public_key);
    cJSON *list = cJSON_AddArrayToObject(o, "notes");
    for (const char *line = notes->data; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        char *one = xstrndup(line, n);
        cJSON_AddItemToArray(list, cJSON_CreateString(one));
        free(one);
        line = nl ? nl + 1 : NULL;
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    net_http_respond(b->cur.conn, 201, text, strlen(text), NULL);
    free(text);
    log_info("brief.done", LOG_S("tenant", b->cur.id), LOG_I("status", 201), LOG_S("path", path),
             LOG_I("ms", (clock_now_ns() - b->started_ns) / NS_PER_MS));
    actor_timer_stop(b->deadline);
    sbuf_reset(&b->text);
    job_clear(&b->cur);
    b->running = false;
    job_next(b);
}

static void on_done(brief_t *b, const net_fetch_done_msg_t *d)
{
    if (d->id != b->fetch_id || b->fetch_id == 0)
        return;
    b->fetch_id = 0;
    char err[BRIEF_ERR_MAX_CHARS];
    if (d->error[0]) {
        snprintf(err, sizeof(err), "the model's API did not answer: %s", d->error);
        job_fail(b, strcmp(d->error, "timeout") == 0 ? 504 : 502,
                 strcmp(d->error, "timeout") == 0 ? "timeout" : "upstream_error", err);
        return;
    }
    if (d->status != 200) {
        onboard_http_error(d->status, d->body ? d->body : "", d->body_len, err, sizeof(err));
        job_fail(b, 502, "upstream_error", err);
        return;
    }
    onboard_keys_t keys;
    sbuf_t notes = SBUF_INIT;
    char *json = NULL;
    onboard_keys_generate(&keys);
    if (onboard_tenant_json(d->body ? d->body : "", d->body_len, &keys, b->text.data, &json, &notes,
                            err, sizeof(err)) != 0)
        job_fail(b, 502, "invalid_extraction", err);
    else
        write_and_answer(b, json, &keys, &notes);
    sodium_memzero(&keys, sizeof(keys));
    if (json)
        sodium_memzero(json, strlen(json)); /* it held the apiSecret */
    free(json);
    sbuf_destroy(&notes);
}

static void on_deadline(brief_t *b)
{
    if (!b->running)
        return;
    job_fail(b, 504, "timeout", "reading the brief took too long");
}

/* ---- The actor ----------------------------------------------------------------------------- */

static void brief_handle(actor_t *self, msg_t *msg)
{
    brief_t *b = (brief_t *)self;
    switch (msg->type) {
    case NET_MSG_HTTP:
        on_request(b, (net_http_msg_t *)msg);
        break;
    case NET_MSG_PROC_LINE:
        on_line(b, (net_proc_line_msg_t *)msg);
        break;
    case NET_MSG_PROC_EXIT:
        on_exit_msg(b, (net_proc_exit_msg_t *)msg);
        break;
    case NET_MSG_FETCH_DONE:
        on_done(b, (net_fetch_done_msg_t *)msg);
        break;
    case BRIEF_MSG_DEADLINE:
        on_deadline(b);
        break;
    default:
        break;
    }
    msg_free(msg);
}

static void brief_stop(actor_t *self)
{
    brief_t *b = (brief_t *)self;
    if (b->proc_id)
        net_proc_kill(b->proc_id, SIGKILL);
    if (b->fetch_id)
        net_fetch_cancel(b->fetch_id);
    job_clear(&b->cur);
    for (size_t i = 0; i < BRIEF_QUEUE_MAX; i++)
        job_clear(&b->wait[i]);
    actor_timer_free(b->deadline);
    sbuf_destroy(&b->text);
    free(b->bin);
    free(b->dir);
}

static const actor_type_t brief_type = {"brief", brief_handle, brief_stop};

/* switchboard-onboard next to the running program, or NULL. */
static char *onboard_beside_self(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return NULL;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash == NULL)
        return NULL;
    slash[1] = '\0';
    sbuf_t p = SBUF_INIT;
    sbuf_printf(&p, "%s%s", self, BRIEF_ONBOARD_NAME);
    return sbuf_take(&p);
}

actor_t *brief_spawn(const char *onboard_bin)
{
    brief_t *b = xcalloc(1, sizeof(*b));
    if (actor_spawn(&b->actor, &brief_type, LANE_TOOLS) != 0) {
        free(b);
        return NULL;
    }
    b->bin = onboard_bin ? xstrdup(onboard_bin) : onboard_beside_self();
    if (b->bin == NULL)
        b->bin = xstrdup(BRIEF_ONBOARD_NAME); /* from PATH */
    bool is_dir = false;
    const char *src = tenants_source(&is_dir);
    b->dir = src && is_dir ? xstrdup(src) : NULL;
    sbuf_init(&b->text);
    b->deadline = actor_timer_new(&b->actor, BRIEF_MSG_DEADLINE, NULL);
    return &b->actor;
}

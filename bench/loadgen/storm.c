/* The --tool-storm sessions: their turns, and their figures; see storm.h. */
#include "bench/loadgen/storm.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "bench/loadgen/cli.h"
#include "bench/loadgen/hist.h"
#include "bench/loadgen/report.h"

#define RESPONSE_ID_MAX 64
#define CALL_ID_MAX     64
#define BYTES_PER_MB    (1024.0 * 1024.0)

static const char create_msg[] = "{\"type\":\"response.create\"}";

/* Built once by storm_init(), read-only while the load threads run. */
static char *item_msg;
static size_t item_msg_len;

/* tool.call statuses (SPEC 5.1), and a bucket for anything else. */
enum { ST_STARTED, ST_COMPLETED, ST_FAILED, ST_TIMEOUT, ST_OTHER, ST_N };
static const char *const status_names[ST_N] = {"started", "completed", "failed", "timeout",
                                               "other"};

typedef enum {
    TURN_IDLE = 0,    /* not ready yet */
    TURN_SEND_ITEM,   /* conversation.item.create queued */
    TURN_SEND_CREATE, /* response.create queued */
    TURN_WAIT_TOOL,   /* for the terminal tool.call of the supervisor */
    TURN_WAIT_ANSWER, /* for the response created after it */
    TURN_WAIT_DONE,   /* for that response's response.done */
} turn_phase_t;

/* [owner] all of it: the launcher, then the load thread, then main (session.h). */
struct storm_sess {
    turn_phase_t phase;
    uint64_t t_sent;                 /* the turn's conversation.item.create was written */
    uint64_t deadline;               /* the turn times out at this time (t_sent + the timeout) */
    char call_id[CALL_ID_MAX];       /* the turn's supervisor call, "" until it has started */
    char answer_id[RESPONSE_ID_MAX]; /* the response speaking its answer, "" until created */

    uint64_t turns;            /* completed */
    uint64_t timed_out;        /* abandoned at their deadline */
    uint64_t no_tool;          /* the calling response ended without a supervisor call */
    uint64_t tool_calls[ST_N]; /* every tool.call event, by status */
    uint64_t supervisor[ST_N]; /* the top-level getNextResponseFromSupervisor events */
    uint64_t audio_bytes;      /* assistant speech received */
    uint64_t *turn_ns;         /* supervisor turn times, send -> terminal tool.call */
    size_t n_turn_ns, cap_turn_ns;
};

void storm_init(void)
{
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "type", "conversation.item.create");
    cJSON *item = cJSON_AddObjectToObject(ev, "item");
    cJSON_AddStringToObject(item, "type", "message");
    cJSON_AddStringToObject(item, "role", "user");
    cJSON *part = cJSON_CreateObject();
    cJSON_AddStringToObject(part, "type", "input_text");
    cJSON_AddStringToObject(part, "text", g_cfg.storm_text);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(item, "content"), part);
    item_msg = cJSON_PrintUnformatted(ev);
    if (item_msg == NULL)
        abort(); /* cJSON's allocation failed */
    item_msg_len = strlen(item_msg);
    cJSON_Delete(ev);
}

void storm_shutdown(void)
{
    cJSON_free(item_msg);
    item_msg = NULL;
    item_msg_len = 0;
}

size_t storm_ctl_max(void)
{
    return item_msg_len > sizeof(create_msg) ? item_msg_len : sizeof(create_msg);
}

storm_sess_t *storm_sess_new(void)
{
    return xcalloc(1, sizeof(storm_sess_t));
}

void storm_sess_free(storm_sess_t *st)
{
    if (st == NULL)
        return;
    free(st->turn_ns);
    free(st);
}

/* ---- Turns --------------------------------------------------------------------------------- */

static bool begin_turn(session_t *s)
{
    storm_sess_t *st = s->storm;
    st->phase = TURN_SEND_ITEM;
    st->call_id[0] = '\0';
    st->answer_id[0] = '\0';
    s->ctl = item_msg;
    s->ctl_len = item_msg_len;
    return true;
}

bool storm_ready(session_t *s)
{
    atomic_fetch_add_explicit(&g_progress.storm_connected, 1, memory_order_relaxed); /* advisory */
    return begin_turn(s);
}

void storm_sent(session_t *s, uint64_t now_ns)
{
    storm_sess_t *st = s->storm;
    if (st->phase == TURN_SEND_ITEM) {
        st->t_sent = now_ns;
        st->deadline = now_ns + (uint64_t)STORM_TURN_TIMEOUT_S * NS_PER_SEC;
        st->phase = TURN_SEND_CREATE;
        s->ctl = create_msg;
        s->ctl_len = sizeof(create_msg) - 1;
    } else if (st->phase == TURN_SEND_CREATE) {
        st->phase = TURN_WAIT_TOOL;
    }
}

static int status_index(const char *status)
{
    for (int i = 0; i < ST_OTHER; i++)
        if (strcmp(status, status_names[i]) == 0)
            return i;
    return ST_OTHER;
}

static void record_turn_time(storm_sess_t *st, uint64_t ns)
{
    if (st->n_turn_ns == st->cap_turn_ns) {
        st->cap_turn_ns = st->cap_turn_ns ? st->cap_turn_ns * 2 : 64;
        st->turn_ns = xrealloc(st->turn_ns, st->cap_turn_ns * sizeof(*st->turn_ns));
    }
    st->turn_ns[st->n_turn_ns++] = ns;
}

static void on_tool_call(storm_sess_t *st, const proto_event_t *ev, uint64_t now)
{
    int k = status_index(ev->tool_status);
    st->tool_calls[k]++;
    if (ev->tool_nested || strcmp(ev->tool_name, STORM_TOOL) != 0)
        return;
    st->supervisor[k]++;
    if (st->phase != TURN_WAIT_TOOL)
        return;
    if (k == ST_STARTED && st->call_id[0] == '\0') {
        str_copy(st->call_id, ev->tool_call_id, sizeof(st->call_id));
    } else if (k != ST_STARTED && k != ST_OTHER && strcmp(ev->tool_call_id, st->call_id) == 0) {
        /* Only this turn's call: a late end of a timed-out turn's call is not this turn's. */
        record_turn_time(st, now - st->t_sent);
        st->phase = TURN_WAIT_ANSWER;
    }
}

bool storm_on_event(session_t *s, const proto_event_t *ev, uint64_t now_ns)
{
    storm_sess_t *st = s->storm;
    switch (ev->type) {
    case PROTO_EV_TOOL_CALL:
        on_tool_call(st, ev, now_ns);
        return false;
    case PROTO_EV_RESPONSE_CREATED:
        if (st->phase == TURN_WAIT_ANSWER) {
            str_copy(st->answer_id, ev->response_id, sizeof(st->answer_id));
            st->phase = TURN_WAIT_DONE;
        }
        return false;
    case PROTO_EV_RESPONSE_DONE:
        if (st->phase == TURN_WAIT_DONE && strcmp(ev->response_id, st->answer_id) == 0) {
            st->turns++;
            atomic_fetch_add_explicit(&g_progress.storm_turns, 1,
                                      memory_order_relaxed); /* advisory */
            return begin_turn(s);
        }
        if (st->phase == TURN_WAIT_TOOL && st->call_id[0] == '\0') {
            /* Its started event would have come before the calling response's end. */
            st->no_tool++;
            return begin_turn(s);
        }
        return false;
    default:
        return false;
    }
}

void storm_on_audio(session_t *s, size_t len)
{
    s->storm->audio_bytes += len;
}

bool storm_tick(session_t *s, uint64_t now_ns)
{
    storm_sess_t *st = s->storm;
    /* A turn whose messages are still queued waits for its socket, not for the service. */
    if (st->phase < TURN_WAIT_TOOL || now_ns < st->deadline)
        return false;
    st->timed_out++;
    return begin_turn(s);
}

/* ---- Figures ------------------------------------------------------------------------------- */

typedef struct storm_summary {
    int connected, failed, dropped;
    uint64_t turns, timed_out, no_tool, audio_bytes, errors;
    uint64_t tool_calls[ST_N];
    uint64_t supervisor[ST_N];
    const session_t *first_bad; /* the first session that failed or was dropped */
    hist_t *turn_time;          /* supervisor turn times, all sessions */
} storm_summary_t;

static void summarize(const session_t *storm, int n, storm_summary_t *sm)
{
    memset(sm, 0, sizeof(*sm));
    sm->turn_time = xmalloc(sizeof(*sm->turn_time));
    hist_init(sm->turn_time);
    for (int i = 0; i < n; i++) {
        const session_t *s = &storm[i];
        const storm_sess_t *st = s->storm;
        sm->connected += s->t_ready != 0;
        sm->failed += s->phase != SESS_PENDING && s->t_ready == 0;
        sm->dropped += s->dropped;
        if (sm->first_bad == NULL && (s->dropped || (s->phase != SESS_PENDING && !s->t_ready)))
            sm->first_bad = s;
        sm->turns += st->turns;
        sm->timed_out += st->timed_out;
        sm->no_tool += st->no_tool;
        sm->audio_bytes += st->audio_bytes;
        sm->errors += s->server_errors;
        for (int k = 0; k < ST_N; k++) {
            sm->tool_calls[k] += st->tool_calls[k];
            sm->supervisor[k] += st->supervisor[k];
        }
        for (size_t j = 0; j < st->n_turn_ns; j++)
            hist_record_ns(sm->turn_time, st->turn_ns[j]);
    }
}

void storm_print(const session_t *storm, int n, FILE *out)
{
    if (n == 0)
        return;
    storm_summary_t sm;
    summarize(storm, n, &sm);
    fprintf(out,
            "storm:      %d sessions: %d connected, %d failed, %d dropped; %llu turns "
            "completed, %llu timed out, %llu without a supervisor call\n",
            n, sm.connected, sm.failed, sm.dropped, (unsigned long long)sm.turns,
            (unsigned long long)sm.timed_out, (unsigned long long)sm.no_tool);
    if (sm.first_bad)
        fprintf(out, "  first failure: %s (%s)\n",
                sm.first_bad->reason[0] ? sm.first_bad->reason : "(no reason recorded)",
                sm.first_bad->id);
    fprintf(out, "  tool.call:  ");
    for (int k = 0; k < ST_N; k++)
        if (k != ST_OTHER || sm.tool_calls[k])
            fprintf(out, "%s%llu %s", k ? ", " : "", (unsigned long long)sm.tool_calls[k],
                    status_names[k]);
    fprintf(out, " (of which " STORM_TOOL ": ");
    for (int k = ST_COMPLETED; k < ST_N; k++)
        if (k != ST_OTHER || sm.supervisor[k])
            fprintf(out, "%s%llu %s", k > ST_COMPLETED ? ", " : "",
                    (unsigned long long)sm.supervisor[k], status_names[k]);
    fprintf(out, ")\n");
    const hist_t *h = sm.turn_time;
    if (h->count)
        fprintf(out,
                "  supervisor turn: p50 %.3f ms  p99 %.3f ms  max %.3f ms  (%llu turns; send to "
                "the terminal tool.call)\n",
                hist_quantile_us(h, 0.50) / 1000, hist_quantile_us(h, 0.99) / 1000,
                (double)h->max_us / 1000, (unsigned long long)h->count);
    fprintf(out, "  assistant speech received: %.1f MB (not in the latency figures)",
            (double)sm.audio_bytes / BYTES_PER_MB);
    if (sm.errors)
        fprintf(out, "; %llu error events", (unsigned long long)sm.errors);
    fputc('\n', out);
    if (sm.no_tool && sm.turns == 0)
        fprintf(out, "hint:       the voice model did not call " STORM_TOOL
                     ": --storm-text should ask about availability, a booking or a customer\n");
    free(sm.turn_time);
}

static cJSON *by_status(const uint64_t *counts)
{
    cJSON *o = cJSON_CreateObject();
    for (int k = 0; k < ST_N; k++)
        cJSON_AddNumberToObject(o, status_names[k], (double)counts[k]);
    return o;
}

cJSON *storm_json(const session_t *storm, int n)
{
    if (n == 0)
        return cJSON_CreateNull();
    storm_summary_t sm;
    summarize(storm, n, &sm);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "sessions", n);
    cJSON_AddStringToObject(o, "text", g_cfg.storm_text);
    cJSON_AddNumberToObject(o, "sessions_connected", sm.connected);
    cJSON_AddNumberToObject(o, "sessions_failed", sm.failed);
    cJSON_AddNumberToObject(o, "sessions_dropped", sm.dropped);
    cJSON_AddNumberToObject(o, "turns_completed", (double)sm.turns);
    cJSON_AddNumberToObject(o, "turns_timed_out", (double)sm.timed_out);
    cJSON_AddNumberToObject(o, "turns_without_tool", (double)sm.no_tool);
    cJSON_AddItemToObject(o, "tool_calls", by_status(sm.tool_calls));
    cJSON_AddItemToObject(o, "supervisor_calls", by_status(sm.supervisor));
    cJSON_AddItemToObject(o, "supervisor_turn_ms", report_quantiles_json(sm.turn_time));
    cJSON_AddNumberToObject(o, "audio_bytes_received", (double)sm.audio_bytes);
    cJSON_AddNumberToObject(o, "server_error_events", (double)sm.errors);
    free(sm.turn_time);
    return o;
}

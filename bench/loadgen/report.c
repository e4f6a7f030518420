/* Results of a run, as text and as JSON; see report.h. */
#include "bench/loadgen/report.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "bench/loadgen/cli.h"
#include "bench/loadgen/storm.h"
#include "bench/loadgen/twcall.h"

#define REASONS_SHOWN 5
#define US_PER_MS     1000.0

typedef struct reason_count {
    const char *reason;
    const char *first_id; /* the first session that met it */
    int count;
} reason_count_t;

typedef struct summary {
    int started, connected, failed, dropped, not_started;
    int n_connect; /* connect times known (a call's: its first audio came back) */
    bool saw_429, saw_1013;
    reason_count_t *reasons; /* failures and drops, most frequent first */
    int n_reasons;
    double connect_p50_ms, connect_p99_ms, connect_max_ms;
    uint64_t sent, received, lost, dups, reordered, bad, server_errors;
    /* Sessions that heard upstream.reconnecting (the service lost its upstream: a fault, with
     * switchboard-sim --faults), their events and the frames they lost: frames in flight at a
     * drop may be lost legitimately, so a soak counts losses elsewhere only. */
    int reconnected;
    uint64_t reconnects, lost_reconnected;
    double audio_minutes; /* minutes of audio the sessions streamed */
    double svc_cpu_s, svc_cpu_per_session_min;
    long svc_rss_before_kb, svc_hwm_kb;
    double svc_rss_per_session_kb;
    /* --twilio through the service. */
    uint64_t tw_media_in, tw_marks_echoed, tw_clears, tw_warmup;
    int tw_no_audio; /* calls that streamed and never heard audio back */
} summary_t;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmp_reason(const void *a, const void *b)
{
    const reason_count_t *x = a, *y = b;
    return y->count - x->count;
}

/* Nearest-rank quantile of n sorted values. */
static double nearest_rank(const double *v, int n, double q)
{
    if (n == 0)
        return 0;
    int i = (int)ceil(q * n) - 1;
    return v[i < 0 ? 0 : (i >= n ? n - 1 : i)];
}

static void add_reason(summary_t *sm, const session_t *s)
{
    const char *r = s->reason[0] ? s->reason : "(no reason recorded)";
    for (int i = 0; i < sm->n_reasons; i++)
        if (strcmp(sm->reasons[i].reason, r) == 0) {
            sm->reasons[i].count++;
            return;
        }
    sm->reasons = xrealloc(sm->reasons, (size_t)(sm->n_reasons + 1) * sizeof(*sm->reasons));
    sm->reasons[sm->n_reasons++] = (reason_count_t){r, s->id, 1};
}

static void summarize(const report_in_t *in, summary_t *sm)
{
    memset(sm, 0, sizeof(*sm));
    double *connect_ms = xmalloc((size_t)in->n * sizeof(double));
    int n_connect = 0;
    for (int i = 0; i < in->n; i++) {
        const session_t *s = &in->sessions[i];
        sm->saw_429 |= s->saw_429;
        sm->saw_1013 |= s->saw_1013;
        if (s->phase == SESS_PENDING) {
            sm->not_started++;
            continue;
        }
        sm->started++;
        if (s->t_ready && s->tw) {
            /* A call has no ready signal: it is through when its first audio comes back. */
            sm->connected++;
            if (s->t_first_audio)
                connect_ms[n_connect++] = (double)(s->t_first_audio - s->t_start) / 1e6;
            else
                sm->tw_no_audio++;
        } else if (s->t_ready) {
            sm->connected++;
            connect_ms[n_connect++] = (double)(s->t_ready - s->t_start) / 1e6;
        } else {
            sm->failed++;
            add_reason(sm, s);
        }
        if (s->dropped) {
            sm->dropped++;
            add_reason(sm, s);
        }
        sm->sent += s->frames_sent;
        sm->received += s->frames_recv;
        sm->dups += s->dups;
        sm->reordered += s->reordered;
        sm->bad += s->bad_frames;
        sm->server_errors += s->server_errors;
        if (s->reconnects) {
            sm->reconnected++;
            sm->reconnects += s->reconnects;
            sm->lost_reconnected += s->frames_sent - s->frames_recv;
        }
        sm->audio_minutes += (double)s->frames_sent * g_cfg.frame_ms / 60000.0;
        if (s->tw) {
            sm->tw_media_in += s->tw->media_in;
            sm->tw_marks_echoed += s->tw->marks_echoed;
            sm->tw_clears += s->tw->clears;
            sm->tw_warmup += s->tw->warmup;
        }
    }
    sm->lost = sm->sent - sm->received;
    qsort(connect_ms, (size_t)n_connect, sizeof(double), cmp_double);
    sm->connect_p50_ms = nearest_rank(connect_ms, n_connect, 0.50);
    sm->connect_p99_ms = nearest_rank(connect_ms, n_connect, 0.99);
    sm->connect_max_ms = n_connect ? connect_ms[n_connect - 1] : 0;
    sm->n_connect = n_connect;
    free(connect_ms);
    if (sm->n_reasons > 1)
        qsort(sm->reasons, (size_t)sm->n_reasons, sizeof(*sm->reasons), cmp_reason);
    if (in->have_service) {
        sm->svc_cpu_s = in->service_after.cpu_s - in->service_before.cpu_s;
        sm->svc_cpu_per_session_min = sm->audio_minutes > 0 ? sm->svc_cpu_s / sm->audio_minutes : 0;
        sm->svc_rss_before_kb = in->service_before.rss_kb;
        sm->svc_hwm_kb = in->service_after.hwm_kb;
        sm->svc_rss_per_session_kb =
            sm->connected ? (double)(sm->svc_hwm_kb - sm->svc_rss_before_kb) / sm->connected : 0;
    }
}

int report_connected(const report_in_t *in)
{
    int n = 0;
    for (int i = 0; i < in->n; i++)
        n += in->sessions[i].t_ready != 0;
    return n;
}

static double ms(double us)
{
    return us / US_PER_MS;
}

/* What the run talked to, for the first line and the JSON. */
static const char *mode_name(void)
{
    if (g_cfg.twilio)
        return g_cfg.direct ? "direct pcmu" : "twilio";
    return g_cfg.direct ? "direct" : "service";
}

static const char *connect_what(void)
{
    if (g_cfg.direct)
        return "connect start to session.updated";
    if (g_cfg.twilio)
        return "webhook POST start to the first echoed audio";
    return g_cfg.no_ready ? "POST start to WebSocket open" : "POST start to session.ready";
}

static void print_hint(const summary_t *sm, FILE *out)
{
    if (!sm->saw_429 && !sm->saw_1013)
        return;
    fprintf(out,
            "hint:       the service refused sessions (%s%s%s): raise "
            "SWITCHBOARD_SESSIONS_PER_MIN, SWITCHBOARD_SESSIONS_PER_IP, "
            "SWITCHBOARD_CONNECTIONS_PER_IP and SWITCHBOARD_MAX_SESSIONS above %d\n",
            sm->saw_429 ? "HTTP 429" : "", sm->saw_429 && sm->saw_1013 ? ", " : "",
            sm->saw_1013 ? "close 1013" : "", g_cfg.sessions + g_cfg.storm);
}

void report_print(const report_in_t *in, FILE *out)
{
    summary_t sm;
    summarize(in, &sm);
    fprintf(out,
            "switchboard-bench: %d sessions x %.1f s, %d Hz, %d ms frames, ramp %.1f s, "
            "%d thread%s, %s %s%s\n",
            g_cfg.sessions, g_cfg.duration_s, g_cfg.rate, g_cfg.frame_ms, g_cfg.ramp_s,
            g_cfg.threads, g_cfg.threads == 1 ? "" : "s", mode_name(),
            g_cfg.direct ? g_cfg.direct : g_cfg.url, g_cfg.no_ready ? " (--no-ready)" : "");
    if (in->interrupted)
        fprintf(out, "interrupted: the figures cover the run up to the signal\n");
    fprintf(out, "sessions:   %d connected, %d failed, %d dropped", sm.connected, sm.failed,
            sm.dropped);
    if (sm.not_started)
        fprintf(out, ", %d not started", sm.not_started);
    fprintf(out, " (of %d)\n", in->n);
    for (int i = 0; i < sm.n_reasons && i < REASONS_SHOWN; i++)
        fprintf(out, "  %6d x %s (first: %s)\n", sm.reasons[i].count, sm.reasons[i].reason,
                sm.reasons[i].first_id);
    if (sm.n_reasons > REASONS_SHOWN)
        fprintf(out, "  … and %d other reasons\n", sm.n_reasons - REASONS_SHOWN);
    print_hint(&sm, out);
    if (sm.n_connect)
        fprintf(out, "connect:    p50 %.3f ms  p99 %.3f ms  max %.3f ms  (%s)\n", sm.connect_p50_ms,
                sm.connect_p99_ms, sm.connect_max_ms, connect_what());
    else
        fprintf(out, "connect:    %s\n",
                sm.connected ? "no call heard its audio back" : "no session connected");
    const hist_t *h = in->latency;
    if (h->count)
        fprintf(out,
                "latency:    p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  max %.3f ms  "
                "(mean %.3f ms, %llu round trips)\n",
                ms(hist_quantile_us(h, 0.50)), ms(hist_quantile_us(h, 0.90)),
                ms(hist_quantile_us(h, 0.99)), ms(hist_quantile_us(h, 0.999)),
                ms((double)h->max_us), ms(hist_mean_us(h)), (unsigned long long)h->count);
    else if (sm.bad)
        fprintf(out, "latency:    no readable frame came back (%llu unreadable audio messages)\n",
                (unsigned long long)sm.bad);
    else
        fprintf(out, "latency:    no audio came back%s\n",
                g_cfg.no_ready ? " (expected while the service has no upstream)" : "");
    if (sm.bad && !g_cfg.direct && g_cfg.rate != 24000)
        fprintf(out,
                "note:       the service resamples %d Hz to 24000 Hz and back, which destroys "
                "the frame headers: measure latency at --rate 24000\n",
                g_cfg.rate);
    const hist_t *lag = in->send_lag;
    if (lag->count)
        fprintf(out,
                "send lag:   p50 %.3f ms  p99 %.3f ms  max %.3f ms  (write time minus due "
                "time: high values mean the bench fell behind)\n",
                ms(hist_quantile_us(lag, 0.50)), ms(hist_quantile_us(lag, 0.99)),
                ms((double)lag->max_us));
    fprintf(out, "frames:     sent %llu  received %llu  lost %llu (%.3f %%)",
            (unsigned long long)sm.sent, (unsigned long long)sm.received,
            (unsigned long long)sm.lost, sm.sent ? 100.0 * (double)sm.lost / (double)sm.sent : 0);
    if (sm.dups || sm.reordered || sm.bad)
        fprintf(out, "  duplicates %llu  out of order %llu  unreadable %llu",
                (unsigned long long)sm.dups, (unsigned long long)sm.reordered,
                (unsigned long long)sm.bad);
    fputc('\n', out);
    if (g_cfg.twilio && !g_cfg.direct)
        fprintf(out,
                "twilio:     %llu media in, %llu marks echoed as played, %llu clears; %llu frames "
                "sent before the call's first audio came back were counted but not timed%s\n",
                (unsigned long long)sm.tw_media_in, (unsigned long long)sm.tw_marks_echoed,
                (unsigned long long)sm.tw_clears, (unsigned long long)sm.tw_warmup,
                sm.tw_no_audio ? "; some calls heard no audio back" : "");
    if (sm.reconnected)
        fprintf(out,
                "upstream:   %llu upstream.reconnecting in %d sessions, which lost %llu frames "
                "(the other sessions lost %llu)\n",
                (unsigned long long)sm.reconnects, sm.reconnected,
                (unsigned long long)sm.lost_reconnected,
                (unsigned long long)(sm.lost - sm.lost_reconnected));
    if (sm.server_errors)
        fprintf(out, "errors:     %llu error events from the server after ready\n",
                (unsigned long long)sm.server_errors);
    if (in->have_service)
        fprintf(out,
                "service:    pid %d: CPU %.2f s (%.1f %% of one core; %.4f s per session-minute "
                "of audio); RSS %.1f MB before, peak %.1f MB (%+.1f KB per connected session; "
                "VmHWM is the process-lifetime peak)\n",
                (int)g_cfg.pid, sm.svc_cpu_s, in->wall_s > 0 ? 100 * sm.svc_cpu_s / in->wall_s : 0,
                sm.svc_cpu_per_session_min, (double)sm.svc_rss_before_kb / 1024,
                (double)sm.svc_hwm_kb / 1024, sm.svc_rss_per_session_kb);
    else if (g_cfg.pid)
        fprintf(out, "service:    pid %d could not be read at both ends of the run\n",
                (int)g_cfg.pid);
    storm_print(in->storm, in->n_storm, out);
    fprintf(out, "bench:      CPU %.2f s (%.1f %% of one core over %.1f s)\n", in->bench_cpu_s,
            in->wall_s > 0 ? 100 * in->bench_cpu_s / in->wall_s : 0, in->wall_s);
    free(sm.reasons);
}

/* Milliseconds to the microsecond, as printed: the histograms hold no finer detail. */
static void add_ms(cJSON *o, const char *name, double v_ms)
{
    cJSON_AddNumberToObject(o, name, round(v_ms * US_PER_MS) / US_PER_MS);
}

cJSON *report_quantiles_json(const hist_t *h)
{
    cJSON *o = cJSON_CreateObject();
    add_ms(o, "p50", ms(hist_quantile_us(h, 0.50)));
    add_ms(o, "p90", ms(hist_quantile_us(h, 0.90)));
    add_ms(o, "p99", ms(hist_quantile_us(h, 0.99)));
    add_ms(o, "p99_9", ms(hist_quantile_us(h, 0.999)));
    add_ms(o, "max", ms((double)h->max_us));
    add_ms(o, "mean", ms(hist_mean_us(h)));
    cJSON_AddNumberToObject(o, "samples", (double)h->count);
    return o;
}

static cJSON *build_json(const report_in_t *in, const summary_t *sm)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "mode", mode_name());
    cJSON_AddStringToObject(root, "target", g_cfg.direct ? g_cfg.direct : g_cfg.url);
    cJSON_AddNumberToObject(root, "sessions", in->n);
    cJSON_AddNumberToObject(root, "duration_s", g_cfg.duration_s);
    cJSON_AddNumberToObject(root, "ramp_s", g_cfg.ramp_s);
    cJSON_AddNumberToObject(root, "rate", g_cfg.rate);
    cJSON_AddNumberToObject(root, "frame_ms", g_cfg.frame_ms);
    cJSON_AddNumberToObject(root, "threads", g_cfg.threads);
    cJSON_AddBoolToObject(root, "no_ready", g_cfg.no_ready);
    cJSON_AddBoolToObject(root, "interrupted", in->interrupted);

    cJSON_AddNumberToObject(root, "sessions_connected", sm->connected);
    cJSON_AddNumberToObject(root, "sessions_failed", sm->failed);
    cJSON_AddNumberToObject(root, "sessions_dropped", sm->dropped);
    cJSON_AddNumberToObject(root, "sessions_not_started", sm->not_started);
    cJSON *reasons = cJSON_AddArrayToObject(root, "failure_reasons");
    for (int i = 0; i < sm->n_reasons; i++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "reason", sm->reasons[i].reason);
        cJSON_AddNumberToObject(r, "count", sm->reasons[i].count);
        cJSON_AddStringToObject(r, "first_session", sm->reasons[i].first_id);
        cJSON_AddItemToArray(reasons, r);
    }
    cJSON_AddBoolToObject(root, "saw_http_429", sm->saw_429);
    cJSON_AddBoolToObject(root, "saw_close_1013", sm->saw_1013);

    cJSON *c = cJSON_AddObjectToObject(root, "connect_ms");
    add_ms(c, "p50", sm->connect_p50_ms);
    add_ms(c, "p99", sm->connect_p99_ms);
    add_ms(c, "max", sm->connect_max_ms);
    cJSON_AddItemToObject(root, "latency_ms", report_quantiles_json(in->latency));
    cJSON_AddItemToObject(root, "send_lag_ms", report_quantiles_json(in->send_lag));

    cJSON *f = cJSON_AddObjectToObject(root, "frames");
    cJSON_AddNumberToObject(f, "sent", (double)sm->sent);
    cJSON_AddNumberToObject(f, "received", (double)sm->received);
    cJSON_AddNumberToObject(f, "lost", (double)sm->lost);
    cJSON_AddNumberToObject(f, "duplicates", (double)sm->dups);
    cJSON_AddNumberToObject(f, "out_of_order", (double)sm->reordered);
    cJSON_AddNumberToObject(f, "unreadable", (double)sm->bad);
    cJSON_AddNumberToObject(f, "lost_in_reconnected_sessions", (double)sm->lost_reconnected);
    cJSON_AddNumberToObject(f, "lost_elsewhere", (double)(sm->lost - sm->lost_reconnected));
    cJSON_AddNumberToObject(root, "sessions_reconnected", sm->reconnected);
    cJSON_AddNumberToObject(root, "upstream_reconnects", (double)sm->reconnects);
    cJSON_AddNumberToObject(root, "server_error_events", (double)sm->server_errors);
    cJSON_AddNumberToObject(root, "audio_minutes", sm->audio_minutes);

    if (in->have_service) {
        cJSON *s = cJSON_AddObjectToObject(root, "service");
        cJSON_AddNumberToObject(s, "pid", g_cfg.pid);
        cJSON_AddNumberToObject(s, "cpu_s", sm->svc_cpu_s);
        cJSON_AddNumberToObject(s, "cpu_s_per_session_minute", sm->svc_cpu_per_session_min);
        cJSON_AddNumberToObject(s, "rss_before_kb", (double)sm->svc_rss_before_kb);
        cJSON_AddNumberToObject(s, "rss_peak_kb", (double)sm->svc_hwm_kb);
        cJSON_AddNumberToObject(s, "rss_per_session_kb", sm->svc_rss_per_session_kb);
    } else {
        cJSON_AddNullToObject(root, "service");
    }
    cJSON_AddItemToObject(root, "storm", storm_json(in->storm, in->n_storm));
    if (g_cfg.twilio && !g_cfg.direct) {
        cJSON *t = cJSON_AddObjectToObject(root, "twilio");
        cJSON_AddNumberToObject(t, "media_received", (double)sm->tw_media_in);
        cJSON_AddNumberToObject(t, "marks_echoed", (double)sm->tw_marks_echoed);
        cJSON_AddNumberToObject(t, "clears", (double)sm->tw_clears);
        cJSON_AddNumberToObject(t, "frames_untimed_before_first_audio", (double)sm->tw_warmup);
        cJSON_AddNumberToObject(t, "calls_without_audio", sm->tw_no_audio);
    } else {
        cJSON_AddNullToObject(root, "twilio");
    }
    cJSON *b = cJSON_AddObjectToObject(root, "bench");
    cJSON_AddNumberToObject(b, "cpu_s", in->bench_cpu_s);
    cJSON_AddNumberToObject(b, "wall_s", in->wall_s);
    cJSON_AddNumberToObject(b, "cpu_pct_of_one_core",
                            in->wall_s > 0 ? 100 * in->bench_cpu_s / in->wall_s : 0);
    return root;
}

int report_write_json(const report_in_t *in, const char *path)
{
    summary_t sm;
    summarize(in, &sm);
    cJSON *root = build_json(in, &sm);
    free(sm.reasons);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    FILE *f = fopen(path, "w");
    int rc = 0;
    if (f == NULL || fputs(text, f) == EOF || fputc('\n', f) == EOF)
        rc = -errno;
    if (f && fclose(f) != 0 && rc == 0)
        rc = -errno;
    free(text);
    return rc;
}

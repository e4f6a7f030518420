/*
 * Session records: allocation and the once-only state changes that feed the progress counters.
 */
#include "bench/loadgen/session.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/util.h"
#include "bench/loadgen/cli.h"
#include "bench/loadgen/storm.h"
#include "bench/loadgen/twcall.h"

bench_progress_t g_progress;
atomic_int g_interrupted;

void session_finish(session_t *s)
{
    if (s->finished_counted)
        return;
    s->finished_counted = true;
    if (s->storm == NULL)
        atomic_fetch_sub_explicit(&g_progress.unfinished, 1, memory_order_relaxed); /* advisory */
}

void session_fail(session_t *s, const char *fmt, ...)
{
    if (s->phase == SESS_FAILED || s->phase >= SESS_STREAMING)
        return;
    s->phase = SESS_FAILED;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->reason, sizeof(s->reason), fmt, ap);
    va_end(ap);
    atomic_fetch_add_explicit(s->storm ? &g_progress.storm_failed : &g_progress.failed, 1,
                              memory_order_relaxed); /* advisory */
    session_finish(s);
}

void session_drop(session_t *s, const char *fmt, ...)
{
    if (s->dropped || (s->phase != SESS_STREAMING && s->phase != SESS_FINISHED))
        return;
    s->dropped = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->reason, sizeof(s->reason), fmt, ap);
    va_end(ap);
    atomic_fetch_add_explicit(s->storm ? &g_progress.storm_dropped : &g_progress.dropped, 1,
                              memory_order_relaxed); /* advisory */
    session_finish(s);
}

session_t *session_new_all(int n, int n_storm)
{
    session_t *all = xcalloc((size_t)(n + n_storm), sizeof(*all));
    size_t bitmap_bytes = (g_cfg.frames_per_session + 7) / 8;
    for (int i = 0; i < n + n_storm; i++) {
        session_t *s = &all[i];
        s->idx = (uint32_t)i;
        s->thread = (uint32_t)(i % g_cfg.threads);
        if (i < n) {
            snprintf(s->id, sizeof(s->id), "bench_%s_%d", g_cfg.run_id, i);
            s->seen = xcalloc(1, bitmap_bytes);
            if (g_cfg.twilio && g_cfg.direct == NULL)
                s->tw = twcall_new(s->idx, g_cfg.run_id);
        } else {
            snprintf(s->id, sizeof(s->id), "bench_%s_storm_%d", g_cfg.run_id, i - n);
            s->storm = storm_sess_new();
        }
    }
    atomic_store(&g_progress.unfinished, n);
    return all;
}

void session_free_all(session_t *all, int n_total)
{
    for (int i = 0; i < n_total; i++) {
        free(all[i].seen);
        storm_sess_free(all[i].storm);
        twcall_free(all[i].tw);
    }
    free(all);
}

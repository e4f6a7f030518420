/*
 * One bench session's record, and the run-wide progress counters.
 *
 * CONTRACT
 * - A session_t has exactly one owner at a time. The launcher (launch.c) owns it from the start
 *   of the run until it hands it to a load thread with loadthr_start_mp() (a mutex-protected
 *   push: everything the launcher wrote happens-before the load thread's first read), or until
 *   it fails it itself (minting failed). The load thread then owns it until it is joined. The
 *   main thread reads sessions only after joining every thread.
 * - --tool-storm sessions (storm.h) are session_t records too, after the audio ones, with the
 *   same owners. They send no frames and count in the storm_* counters, not in the others.
 * - bench_progress_t counters are relaxed atomics. They are advisory (progress lines, when to
 *   end the run and the grace period) and never publish other data; the report is computed from
 *   the session and thread records after the joins.
 */
#ifndef SB_BENCH_SESSION_H
#define SB_BENCH_SESSION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SESSION_REASON_MAX 160

struct loadthr;
struct wscli;
struct storm_sess;
struct twcall;

typedef enum {
    SESS_PENDING = 0, /* not started (launcher) */
    SESS_MINTING,     /* POST /api/sessions in flight (launcher) */
    SESS_CONNECTING,  /* WebSocket handshake in flight (load thread from here on) */
    SESS_OPEN,        /* upgraded, waiting for session.ready (--direct: session.updated) */
    SESS_STREAMING,   /* ready: sending frames */
    SESS_FINISHED,    /* every frame sent; kept open for the echoes */
    SESS_FAILED,      /* never became ready; reason says why */
} sess_phase_t;

typedef struct session {
    uint32_t idx;
    uint32_t thread;
    char id[48];    /* sessionId */
    char token[96]; /* minted token (empty with --direct) */
    sess_phase_t phase;
    struct loadthr *owner; /* its load thread, set when the thread starts connecting it */
    struct wscli *conn;    /* its WebSocket (wscli.h): NULL before connecting and once it ended */

    /* Times, CLOCK_MONOTONIC ns; 0 = not reached. */
    uint64_t t_start;       /* POST start (--direct: connect start) */
    uint64_t t_ready;       /* session.ready / session.updated (WS open with --no-ready) */
    uint64_t t_stream0;     /* due time of frame 0: t_ready plus this session's stagger */
    uint64_t next_due;      /* due time of frame number frames_due */
    uint64_t t_first_audio; /* the first audio that came back */

    /* Frames. frames_sent <= frames_due <= g_cfg.frames_per_session. */
    uint32_t frames_due;
    uint32_t frames_sent;
    uint32_t frames_recv; /* unique seqs received */
    uint32_t dups;
    uint32_t reordered;   /* arrived after a higher seq */
    uint32_t bad_frames;  /* audio messages without one valid header of this session */
    uint32_t highest_seq; /* valid when frames_recv > 0 */
    uint8_t *seen;        /* bitmap of received seqs, frames_per_session bits */

    /* Control text (session.update with --direct, a storm turn's messages; static strings),
     * written before frames. */
    const char *ctl;
    size_t ctl_len;

    bool ws_open;            /* the upgrade succeeded */
    bool finished_counted;   /* g_progress.unfinished has been decremented for it */
    bool close_pending;      /* we are closing it with 1000: our close frame is written */
    bool dropped;            /* was ready, then closed by the peer or failed before we closed it */
    uint64_t close_deadline; /* our close sent: the peer's close is awaited until then */
    int close_code;          /* from the peer's close frame; 0 = none */
    char close_text[64];     /* its reason text */
    bool saw_429;
    bool saw_1013;
    uint32_t server_errors;          /* `error` events after ready */
    uint32_t reconnects;             /* upstream.reconnecting: the service lost its upstream */
    char reason[SESSION_REASON_MAX]; /* why it failed or was dropped (the first reason) */
    struct storm_sess *storm;        /* a --tool-storm session's turns (storm.c); else NULL */
    struct twcall *tw;               /* --twilio through the service: the call (twcall.c) */
} session_t;

typedef struct bench_progress {
    atomic_int unfinished; /* audio sessions not yet finished, failed or dropped */
    atomic_int connected;  /* became ready */
    atomic_int failed;     /* never became ready */
    atomic_int dropped;
    atomic_ullong frames_sent;
    atomic_ullong frames_recv;  /* unique */
    atomic_int storm_connected; /* the same three for --tool-storm sessions */
    atomic_int storm_failed;
    atomic_int storm_dropped;
    atomic_ullong storm_turns; /* storm turns completed */
} bench_progress_t;

extern bench_progress_t g_progress;
extern atomic_int g_interrupted; /* SIGINT/SIGTERM seen; relaxed, polled */

/*
 * Marks s FAILED with a printf-style reason and counts it, unless it already failed (the first
 * reason sticks). Counts it as finished too. Thread: the session's owner.
 */
__attribute__((format(printf, 2, 3))) void session_fail(session_t *s, const char *fmt, ...);

/*
 * Marks a session that was ready as dropped (closed before the end of the run) with a reason,
 * once. Thread: the session's owner.
 */
__attribute__((format(printf, 2, 3))) void session_drop(session_t *s, const char *fmt, ...);

/*
 * Counts s as done with the run, once: every frame sent, failed or dropped. Storm sessions are
 * never waited for (they run until the load threads stop). Thread: owner.
 */
void session_finish(session_t *s);

/*
 * Allocates the records of n audio sessions, with their ids and seq bitmaps, followed by those
 * of n_storm storm sessions. Thread: main.
 */
session_t *session_new_all(int n, int n_storm);
void session_free_all(session_t *all, int n_total);

#endif

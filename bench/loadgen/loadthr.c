/*
 * Load threads: each runs its sessions' WebSocket clients (wscli.c, raw sockets on its libuv
 * loop), paces their frames and times the round trips. See loadthr.h for the contract and
 * DESIGN.md, "Transport", for how bytes move.
 *
 * Pacing. Frame k of a session is due at t_stream0 + k * frame_ms, from the session's own start
 * rather than the previous send, so timer jitter never accumulates into drift; t_stream0 is the
 * ready time plus a per-session offset spreading the sessions over one frame period. A 1 ms pass
 * over the thread's sessions raises each one's count of due frames and writes what is due at once
 * (pump()): every frame is the same noise under a fresh header, so the queue is just that count,
 * and a frame is built, stamped and handed to send() in one go. Bench-side queueing (the tick, a
 * socket that has not drained) therefore shows up as send lag, not as round-trip latency. The
 * pass costs one compare per session with nothing due, small next to the frames' own work.
 */
#include "bench/loadgen/loadthr.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <uv.h>

#include "audio/b64.h"
#include "base/util.h"
#include "bench/loadgen/cli.h"
#include "bench/loadgen/proto.h"
#include "bench/loadgen/storm.h"
#include "bench/loadgen/twcall.h"
#include "bench/loadgen/wscli.h"
#include "net/wsframe.h"

#define RX_MAX_BYTES        (1u << 20) /* largest message kept; larger ones are dropped */
#define CLOSE_POLL_MS       10         /* how often a stopping thread checks for closed sockets */
#define NOISE_SEED_BASE     0x5eed1234u
#define TICK_MS             1           /* pacing timer period */
#define TWILIO_TX_BYTES     (16u << 10) /* --twilio: room for the mark echoes of one write */
#define FRAMES_PER_SEND_MAX 8           /* a session catching up writes at most this many at once */
#define DIRECT_BEARER       "sk-bench"  /* --direct's Authorization (the simulator takes any) */

struct loadthr {
    int idx;
    pthread_t th;
    int wake_fd;
    sem_t started;
    int start_rc; /* written before sem_post, read after sem_wait */

    pthread_mutex_t lock;
    session_t **inbox; /* {lock} sessions handed over, not yet connected */
    size_t n_inbox;    /* {lock} */
    size_t cap_inbox;  /* {lock} */
    bool stop;         /* {lock} */

    uv_loop_t loop;      /* [owner] */
    uv_poll_t wake_poll; /* [owner] */
    uv_timer_t tick;     /* [owner] */
    session_t **active;  /* [owner] every session handed to this thread */
    size_t n_active;
    size_t cap_active;
    int live; /* [owner] connections not yet ended */
    bool stopping;
    bool torn_down;
    uint64_t stop_deadline;
    uint64_t next_pass; /* [owner] when the pacing pass is due again */
    hist_t lat;         /* [owner] round trips */
    hist_t lag;         /* [owner] send lag */
    uint8_t *noise;     /* frame_bytes of noise, copied under each header */
    uint8_t *tx;        /* one write's run of frames, built in place */
    size_t tx_cap;
    size_t frame_max; /* the most one frame takes in tx, header included */
    uint8_t *pcm;     /* --direct, --twilio: the frame before base64 */
    uint8_t *decoded; /* --direct, --twilio: decoded audio */
    size_t decoded_cap;
};

static void pump(loadthr_t *thr, session_t *s);
static void pace_all(loadthr_t *thr, uint64_t now);

/* ---- Sessions ------------------------------------------------------------------------------ */

static uint64_t stagger_ns(const session_t *s)
{
    return (uint64_t)s->idx * g_cfg.frame_ns / (uint64_t)g_cfg.sessions;
}

static void become_ready(loadthr_t *thr, session_t *s, uint64_t now)
{
    s->t_ready = now;
    s->phase = SESS_STREAMING;
    if (s->storm) {
        s->next_due = UINT64_MAX; /* no frames: turns instead (storm.c) */
        if (storm_ready(s))
            pump(thr, s);
        return;
    }
    s->t_stream0 = now + stagger_ns(s);
    s->next_due = s->t_stream0;
    atomic_fetch_add_explicit(&g_progress.connected, 1, memory_order_relaxed); /* advisory */
}

/*
 * Starts the close handshake of an open WebSocket: our 1000 goes out now (behind what the socket
 * has not taken yet), preceded by `stop` for a call. The peer's close ends the connection
 * (on_ended); the tick drops it LOADTHR_CLOSE_WAIT_MS later otherwise. Thread: load thread.
 */
static void close_session(loadthr_t *thr, session_t *s)
{
    if (s->conn == NULL || s->close_pending || !s->ws_open)
        return;
    s->close_pending = true;
    s->close_deadline = clock_now_ns() + (uint64_t)LOADTHR_CLOSE_WAIT_MS * NS_PER_MS;
    uint8_t *out = thr->tx;
    size_t at = 0;
    if (s->tw && s->tw->opened && !s->tw->stopped)
        twcall_put_stop(s->tw, out, &at); /* the caller hangs up */
    wsf_client_close_append(out, &at, WS_CODE_NORMAL);
    wscli_send_close(s->conn, out, at); /* on failure the connection has ended */
}

/* Ends s: gracefully when its WebSocket is open, else by dropping the connection. */
static void end_session(loadthr_t *thr, session_t *s)
{
    if (s->ws_open)
        close_session(thr, s);
    else if (s->conn)
        wscli_abort(s->conn, NULL);
}

/* One header found in audio that came back to s. */
typedef struct rx_ctx {
    loadthr_t *thr;
    session_t *s;
    uint64_t now;
} rx_ctx_t;

static void on_header(void *arg, const proto_hdr_t *h)
{
    rx_ctx_t *c = arg;
    session_t *s = c->s;
    if (h->session != s->idx || h->seq >= s->frames_sent || h->sent_ns > c->now) {
        s->bad_frames++;
        return;
    }
    uint8_t bit = (uint8_t)(1u << (h->seq & 7));
    if (s->seen[h->seq >> 3] & bit) {
        s->dups++;
        return;
    }
    s->seen[h->seq >> 3] |= bit;
    if (s->frames_recv > 0 && h->seq < s->highest_seq)
        s->reordered++;
    else
        s->highest_seq = h->seq;
    s->frames_recv++;
    atomic_fetch_add_explicit(&g_progress.frames_recv, 1, memory_order_relaxed); /* advisory */
    if (s->tw && h->sent_ns < s->t_first_audio)
        s->tw->warmup++; /* sent while the call's upstream was still connecting */
    else
        hist_record_ns(&c->thr->lat, c->now - h->sent_ns);
}

static void on_audio(loadthr_t *thr, session_t *s, const uint8_t *pcm, size_t n, uint64_t now)
{
    rx_ctx_t c = {thr, s, now};
    if (proto_scan(pcm, n, on_header, &c) == 0)
        s->bad_frames++;
}

/*
 * Audio that came back to s as n base64 characters (--direct's deltas, --twilio's media): decoded
 * into the thread's buffer and scanned for frames. Returns the bytes decoded, or -1 (counted as a
 * bad frame) when it is not base64.
 */
static ssize_t on_b64_audio(loadthr_t *thr, session_t *s, const char *b64, size_t n, uint64_t now)
{
    size_t need = b64_decoded_max(n);
    if (need > thr->decoded_cap) {
        thr->decoded_cap = need;
        thr->decoded = xrealloc(thr->decoded, need);
    }
    ssize_t len = b64_decode(b64, n, thr->decoded);
    if (len < 0) {
        s->bad_frames++;
        return -1;
    }
    if (s->t_first_audio == 0)
        s->t_first_audio = now;
    on_audio(thr, s, thr->decoded, (size_t)len, now);
    return len;
}

static void on_text(loadthr_t *thr, session_t *s, const char *json, size_t len, uint64_t now)
{
    proto_event_t ev;
    proto_event_parse(json, len, &ev);
    switch (ev.type) {
    case PROTO_EV_READY:
        if (!g_cfg.direct && s->phase == SESS_OPEN)
            become_ready(thr, s, now);
        break;
    case PROTO_EV_CREATED:
        if (g_cfg.direct && s->phase == SESS_OPEN && s->ctl == NULL) {
            s->ctl = g_cfg.twilio ? PROTO_SESSION_UPDATE_PCMU : PROTO_SESSION_UPDATE;
            s->ctl_len = strlen(s->ctl);
            pump(thr, s);
        }
        break;
    case PROTO_EV_UPDATED:
        if (g_cfg.direct && s->phase == SESS_OPEN)
            become_ready(thr, s, now);
        break;
    case PROTO_EV_AUDIO_DELTA:
        if (g_cfg.direct && ev.audio)
            on_b64_audio(thr, s, ev.audio, ev.audio_len, now);
        break;
    case PROTO_EV_ERROR:
        if (s->phase == SESS_OPEN) {
            session_fail(s, "error before ready: %s", ev.error);
            close_session(thr, s);
        } else {
            if (s->server_errors == 0 && s->reason[0] == '\0')
                snprintf(s->reason, sizeof(s->reason), "error event: %s", ev.error);
            s->server_errors++;
        }
        break;
    case PROTO_EV_RECONNECTING:
        s->reconnects++;
        break;
    case PROTO_EV_TOOL_CALL:
    case PROTO_EV_RESPONSE_CREATED:
    case PROTO_EV_RESPONSE_DONE:
        if (s->storm && storm_on_event(s, &ev, now))
            pump(thr, s);
        break;
    case PROTO_EV_INVALID:
    case PROTO_EV_OTHER:
        break;
    }
    proto_event_free(&ev);
}

/*
 * --twilio: a message of the service. Its media is queued on the call's playback clock and
 * scanned for frames; its marks wait for that audio to play; a clear sends them back at once.
 */
static void on_twilio_text(loadthr_t *thr, session_t *s, const char *json, size_t len, uint64_t now)
{
    twcall_t *tw = s->tw;
    twcall_msg_t m;
    twcall_parse(json, len, &m);
    switch (m.type) {
    case TWCALL_IN_MEDIA: {
        ssize_t n = on_b64_audio(thr, s, m.str, m.str_len, now);
        if (n >= 0) {
            tw->media_in++;
            twcall_played(tw, (size_t)n, now);
        }
        break;
    }
    case TWCALL_IN_MARK:
        twcall_on_mark(tw, m.str, m.str_len, now);
        if (twcall_next_mark_ns(tw) <= now)
            pump(thr, s);
        break;
    case TWCALL_IN_CLEAR:
        twcall_on_clear(tw, now);
        if (twcall_next_mark_ns(tw) <= now)
            pump(thr, s);
        break;
    case TWCALL_IN_INVALID:
        s->bad_frames++;
        break;
    case TWCALL_IN_OTHER:
        break;
    }
    twcall_msg_free(&m);
}

/* ---- Writing ------------------------------------------------------------------------------- */

/* Fills pcm with frame number seq of s, stamped now, and records its send lag. */
static void stamp_frame(loadthr_t *thr, session_t *s, uint32_t seq, uint8_t *pcm)
{
    memcpy(pcm, thr->noise, g_cfg.frame_bytes);
    uint64_t now = clock_now_ns();
    proto_hdr_write(pcm, s->idx, seq, now);
    hist_record_ns(&thr->lag, now - (s->t_stream0 + (uint64_t)seq * g_cfg.frame_ns));
}

/*
 * Appends s's due frames to the run at out + *at, stamped as they are built, as many as
 * FRAMES_PER_SEND_MAX and the buffer allow; returns how many.
 */
static uint32_t put_frames(loadthr_t *thr, session_t *s, uint8_t *out, size_t *at)
{
    uint32_t n = 0;
    while (s->frames_sent + n < s->frames_due && n < FRAMES_PER_SEND_MAX &&
           *at + thr->frame_max <= thr->tx_cap) {
        uint32_t seq = s->frames_sent + n;
        uint8_t *payload = out + *at + WSF_HEADER_MAX;
        if (s->tw) {
            stamp_frame(thr, s, seq, thr->pcm);
            twcall_put_media(s->tw, out, at, thr->pcm, g_cfg.frame_bytes, seq + 1,
                             (uint64_t)seq * (uint64_t)g_cfg.frame_ms);
        } else if (g_cfg.direct) {
            stamp_frame(thr, s, seq, thr->pcm);
            size_t len = proto_append_event((char *)payload, thr->pcm, g_cfg.frame_bytes);
            wsf_client_frame_append(out, at, len, WSF_OP_TEXT);
        } else {
            stamp_frame(thr, s, seq, payload); /* masked in place by the framing */
            wsf_client_frame_append(out, at, g_cfg.frame_bytes, WSF_OP_BINARY);
        }
        n++;
    }
    return n;
}

/* A frame put_frames() stamped is with the socket (sent, or kept until it drains). */
static void frame_sent(session_t *s)
{
    s->frames_sent++;
    atomic_fetch_add_explicit(&g_progress.frames_sent, 1, memory_order_relaxed); /* advisory */
    if (s->frames_sent == g_cfg.frames_per_session) {
        s->phase = SESS_FINISHED;
        session_finish(s);
    }
}

/*
 * Writes everything s has due now as one run of frames in one send: --twilio's `connected` and
 * `start`, or the marks whose audio has played; the control texts (session.update, a storm
 * turn's messages); the due frames. Called from the tick, from a message that made something due
 * and when the socket has drained; does nothing while the socket holds bytes of the last run
 * (drained() comes then) or once our close is out.
 */
static void pump(loadthr_t *thr, session_t *s)
{
    if (s->conn == NULL || !s->ws_open || s->close_pending || wscli_blocked(s->conn))
        return;
    uint8_t *out = thr->tx;
    size_t at = 0;
    uint64_t now = clock_now_ns();
    if (s->tw && !s->tw->opened) {
        twcall_put_open(s->tw, out, &at);
        become_ready(thr, s, now); /* Twilio streams from `start` on, without waiting */
    } else if (s->tw) {
        twcall_put_marks(s->tw, out, &at, thr->tx_cap - FRAMES_PER_SEND_MAX * thr->frame_max, now);
    }
    while (s->ctl && at + WSF_HEADER_MAX + s->ctl_len <= thr->tx_cap) {
        memcpy(out + at + WSF_HEADER_MAX, s->ctl, s->ctl_len);
        wsf_client_frame_append(out, &at, s->ctl_len, WSF_OP_TEXT);
        s->ctl = NULL;
        if (s->storm)
            storm_sent(s, now); /* may queue the turn's next message */
    }
    uint32_t n = thr->stopping ? 0 : put_frames(thr, s, out, &at);
    if (at == 0 || wscli_send(s->conn, out, at) < 0)
        return; /* nothing due, or the connection has ended */
    for (uint32_t i = 0; i < n; i++)
        frame_sent(s);
}

/* ---- The connection ------------------------------------------------------------------------ */

/* The service's refusals right after the upgrade (SPEC 14, order of checks on /ws). */
static bool is_refusal(const session_t *s)
{
    static const ws_close_t refusals[] = {WS_CLOSE_UNAUTHORIZED, WS_CLOSE_FORBIDDEN_ORIGIN,
                                          WS_CLOSE_SESSION_EXISTS};
    if (s->close_code == WS_CODE_UNSUPPORTED || s->close_code == WS_CODE_TRY_AGAIN)
        return true;
    /* 1008 says "refused" or "misbehaved": only its reason tells which (SPEC 14). */
    for (size_t i = 0; i < ARRAY_LEN(refusals); i++)
        if (s->close_code == ws_close_code(refusals[i]) &&
            strcmp(s->close_text, ws_close_reason(refusals[i])) == 0)
            return true;
    return false;
}

static void on_closed(session_t *s, const wscli_end_t *e)
{
    if (g_cfg.no_ready && s->phase >= SESS_STREAMING && s->phase != SESS_FAILED &&
        !s->close_pending && is_refusal(s)) {
        /* With --no-ready the upgrade counted as ready, but the service refused the session. */
        s->phase = SESS_OPEN;
        s->t_ready = 0;
        atomic_fetch_sub_explicit(&g_progress.connected, 1, memory_order_relaxed); /* advisory */
    }
    if (s->phase == SESS_CONNECTING || s->phase == SESS_OPEN) {
        if (s->close_code)
            session_fail(s, "closed %d %s", s->close_code, s->close_text);
        else
            session_fail(s, "closed before %s", g_cfg.direct ? "session.updated" : "session.ready");
    } else if (!s->close_pending) {
        if (s->close_code)
            session_drop(s, "closed by the peer: %d %s", s->close_code, s->close_text);
        else
            session_drop(s, "%s", e->error[0] ? e->error : "connection lost");
    }
}

static void on_open(void *arg)
{
    session_t *s = arg;
    loadthr_t *thr = s->owner;
    s->ws_open = true;
    if (s->phase == SESS_CONNECTING)
        s->phase = SESS_OPEN;
    if (!g_cfg.direct && g_cfg.no_ready && s->phase == SESS_OPEN)
        become_ready(thr, s, clock_now_ns());
    if (thr->stopping || s->phase == SESS_FAILED)
        close_session(thr, s); /* stopped or timed out while the upgrade was in flight */
    else if (s->tw)
        pump(thr, s); /* `connected` and `start` */
}

static void on_message(void *arg, bool binary, const uint8_t *p, size_t n)
{
    session_t *s = arg;
    loadthr_t *thr = s->owner;
    uint64_t now = clock_now_ns();
    if (binary && s->storm)
        storm_on_audio(s, n); /* assistant speech: not a round trip */
    else if (binary)
        on_audio(thr, s, p, n, now);
    else if (s->tw)
        on_twilio_text(thr, s, (const char *)p, n, now);
    else
        on_text(thr, s, (const char *)p, n, now);
    /* libuv runs every ready socket's callback (up to 48 epoll batches) before the timers: under
     * a burst of echoes the pacing pass runs from here when it is due, not after the burst. */
    if (now >= thr->next_pass && !thr->stopping)
        pace_all(thr, clock_now_ns());
}

static void on_too_big(void *arg)
{
    session_t *s = arg;
    s->bad_frames++; /* dropped, as a message without a header of ours */
}

static void on_drained(void *arg)
{
    session_t *s = arg;
    pump(s->owner, s);
}

static void on_ended(void *arg, const wscli_end_t *e)
{
    session_t *s = arg;
    s->conn = NULL;
    s->owner->live--;
    if (e->peer_closed) {
        s->close_code = e->close_code; /* exactly as sent: 1012-1014 too */
        str_copy(s->close_text, e->close_text, sizeof(s->close_text));
        if (s->close_code == WS_CODE_TRY_AGAIN)
            s->saw_1013 = true;
    }
    if (e->opened) {
        on_closed(s, e);
        return;
    }
    if (e->http_status == 429)
        s->saw_429 = true;
    session_fail(s, "%s", e->error[0] ? e->error : "connection ended before ready");
}

static const wscli_ops_t conn_ops = {on_open, on_message, on_too_big, on_drained, on_ended};

static void connect_session(loadthr_t *thr, session_t *s)
{
    char path[1400];
    if (g_cfg.direct)
        str_copy(path, g_cfg.ws_path, sizeof(path));
    else if (s->tw)
        str_copy(path, s->tw->path, sizeof(path)); /* from the TwiML, to the --url's address */
    else
        snprintf(path, sizeof(path), "%s?sessionId=%s&token=%s&rate=%d", g_cfg.ws_path, s->id,
                 s->token, g_cfg.rate);
    if (thr->n_active == thr->cap_active) {
        thr->cap_active = thr->cap_active ? thr->cap_active * 2 : 64;
        thr->active = xrealloc(thr->active, thr->cap_active * sizeof(*thr->active));
    }
    thr->active[thr->n_active++] = s;
    s->owner = thr;
    if (g_cfg.direct)
        s->t_start = clock_now_ns();
    s->phase = SESS_CONNECTING;
    wscli_cfg_t cfg = {
        .addr = (const struct sockaddr *)&g_cfg.addr,
        .addr_len = g_cfg.addr_len,
        .host_hdr = g_cfg.host_hdr,
        .path = path,
        .bearer = g_cfg.direct ? DIRECT_BEARER : NULL,
        .tls_host = g_cfg.tls ? g_cfg.host : NULL,
        .max_msg = RX_MAX_BYTES,
    };
    int rc = wscli_connect(&thr->loop, &cfg, &conn_ops, s, &s->conn);
    if (rc != 0) {
        s->conn = NULL;
        session_fail(s, "connect failed: %s", strerror(-rc));
        return;
    }
    thr->live++;
}

/* ---- The loop ------------------------------------------------------------------------------ */

static void teardown(loadthr_t *thr)
{
    if (thr->torn_down)
        return;
    thr->torn_down = true;
    for (size_t i = 0; i < thr->n_active; i++)
        if (thr->active[i]->conn)
            wscli_abort(thr->active[i]->conn, NULL); /* no close from the peer in time */
    uv_timer_stop(&thr->tick);
    uv_close((uv_handle_t *)&thr->tick, NULL);
    uv_poll_stop(&thr->wake_poll);
    uv_close((uv_handle_t *)&thr->wake_poll, NULL);
}

static void begin_stop(loadthr_t *thr)
{
    if (thr->stopping)
        return;
    thr->stopping = true;
    thr->stop_deadline = clock_now_ns() + (uint64_t)LOADTHR_CLOSE_WAIT_MS * NS_PER_MS;
    for (size_t i = 0; i < thr->n_active; i++) {
        session_t *s = thr->active[i];
        if (s->phase == SESS_CONNECTING || s->phase == SESS_OPEN)
            session_fail(s, "not ready when the run stopped");
        end_session(thr, s);
    }
}

/* Raises s's count of due frames to what is due by now. */
static void pace(session_t *s, uint64_t now)
{
    uint64_t due = (now - s->t_stream0) / g_cfg.frame_ns + 1;
    if (due > g_cfg.frames_per_session)
        due = g_cfg.frames_per_session;
    if (due <= s->frames_due)
        return;
    s->frames_due = (uint32_t)due;
    s->next_due = s->frames_due == g_cfg.frames_per_session
                      ? UINT64_MAX
                      : s->t_stream0 + (uint64_t)s->frames_due * g_cfg.frame_ns;
}

static void check_deadline(loadthr_t *thr, session_t *s, uint64_t now)
{
    if (now - s->t_start < (uint64_t)LOADTHR_CONNECT_TIMEOUT_S * NS_PER_SEC)
        return;
    if (s->phase == SESS_CONNECTING)
        session_fail(s, "timeout: WebSocket not open after %d s", LOADTHR_CONNECT_TIMEOUT_S);
    else if (g_cfg.direct)
        session_fail(s, "timeout: no session.updated within %d s", LOADTHR_CONNECT_TIMEOUT_S);
    else
        session_fail(s, "timeout: no session.ready within %d s (no upstream? try --no-ready)",
                     LOADTHR_CONNECT_TIMEOUT_S);
    end_session(thr, s);
}

/* s has due frames waiting behind a socket that has not drained for too long. */
static bool stuck(const session_t *s, uint64_t now)
{
    uint64_t due = s->t_stream0 + (uint64_t)s->frames_sent * g_cfg.frame_ns;
    return wscli_blocked(s->conn) && now - due > (uint64_t)LOADTHR_SEND_BEHIND_MAX_MS * NS_PER_MS;
}

/* One session's share of the tick. */
static void tick_session(loadthr_t *thr, session_t *s, uint64_t now)
{
    if (s->conn == NULL)
        return;
    if (s->close_pending) {
        if (now >= s->close_deadline)
            wscli_abort(s->conn, NULL); /* the peer never answered our close */
        return;
    }
    if (s->phase == SESS_CONNECTING || s->phase == SESS_OPEN) {
        check_deadline(thr, s, now);
        return;
    }
    /* A control text left over (it did not fit beside the rest), or a mark whose audio played. */
    bool due = s->ctl || (s->tw && s->tw->n_marks && twcall_next_mark_ns(s->tw) <= now);
    if (s->phase == SESS_STREAMING && s->next_due <= now)
        pace(s, now);
    if (s->storm && s->phase == SESS_STREAMING && storm_tick(s, now))
        due = true;
    if (s->frames_sent < s->frames_due) {
        if (stuck(s, now)) {
            session_drop(s,
                         "frames over %d ms overdue behind a socket that did not drain "
                         "(the peer does not read)",
                         LOADTHR_SEND_BEHIND_MAX_MS);
            wscli_abort(s->conn, NULL);
            return;
        }
        due = true;
    }
    if (due)
        pump(thr, s);
}

/* The pacing pass over every session; due again TICK_MS later. */
static void pace_all(loadthr_t *thr, uint64_t now)
{
    thr->next_pass = now + (uint64_t)TICK_MS * NS_PER_MS;
    for (size_t i = 0; i < thr->n_active; i++)
        tick_session(thr, thr->active[i], now);
}

static void on_tick(uv_timer_t *t)
{
    loadthr_t *thr = t->data;
    uint64_t now = clock_now_ns();
    if (thr->stopping) {
        if (thr->live == 0 || now >= thr->stop_deadline)
            teardown(thr);
        return;
    }
    pace_all(thr, now);
}

static void on_wake(uv_poll_t *h, int status, int events)
{
    (void)status, (void)events;
    loadthr_t *thr = h->data;
    eventfd_t v;
    eventfd_read(thr->wake_fd, &v);
    pthread_mutex_lock(&thr->lock);
    session_t **batch = thr->inbox;
    size_t n = thr->n_inbox;
    bool stop = thr->stop;
    thr->inbox = NULL;
    thr->n_inbox = thr->cap_inbox = 0;
    pthread_mutex_unlock(&thr->lock);
    for (size_t i = 0; i < n; i++) {
        if (thr->stopping)
            session_fail(batch[i], "not connected: the run was stopped");
        else
            connect_session(thr, batch[i]);
    }
    free(batch);
    if (stop) {
        begin_stop(thr);
        uv_timer_start(&thr->tick, on_tick, CLOSE_POLL_MS, CLOSE_POLL_MS);
    }
}

static void *thread_main(void *arg)
{
    loadthr_t *thr = arg;
    int rc = uv_loop_init(&thr->loop);
    if (rc == 0) {
        uv_poll_init(&thr->loop, &thr->wake_poll, thr->wake_fd);
        thr->wake_poll.data = thr;
        uv_poll_start(&thr->wake_poll, UV_READABLE, on_wake);
        uv_timer_init(&thr->loop, &thr->tick);
        thr->tick.data = thr;
        uv_timer_start(&thr->tick, on_tick, TICK_MS, TICK_MS);
    }
    thr->start_rc = rc;
    sem_post(&thr->started);
    if (rc != 0)
        return NULL;
    uv_run(&thr->loop, UV_RUN_DEFAULT); /* until teardown() has closed every handle */
    uv_loop_close(&thr->loop);
    return NULL;
}

/* ---- Public -------------------------------------------------------------------------------- */

/* Sizes the write buffer: the control texts, and FRAMES_PER_SEND_MAX frames after them. */
static void size_tx(loadthr_t *thr)
{
    size_t frame = g_cfg.frame_bytes;
    if (g_cfg.direct)
        frame = proto_append_event_max(g_cfg.frame_bytes) + 1;
    else if (g_cfg.twilio)
        frame = twcall_media_max(g_cfg.frame_bytes);
    thr->frame_max = WSF_HEADER_MAX + frame;
    size_t ctl = sizeof(PROTO_SESSION_UPDATE) > sizeof(PROTO_SESSION_UPDATE_PCMU)
                     ? sizeof(PROTO_SESSION_UPDATE)
                     : sizeof(PROTO_SESSION_UPDATE_PCMU);
    if (g_cfg.storm)
        ctl += storm_ctl_max(); /* a turn's item and response.create together */
    if (g_cfg.twilio)
        ctl += TWILIO_TX_BYTES; /* `connected` and `start`, or the mark echoes */
    thr->tx_cap = WSF_HEADER_MAX + ctl + FRAMES_PER_SEND_MAX * thr->frame_max;
    thr->tx = xmalloc(thr->tx_cap);
}

loadthr_t *loadthr_new(int idx)
{
    loadthr_t *thr = xcalloc(1, sizeof(*thr));
    thr->idx = idx;
    pthread_mutex_init(&thr->lock, NULL);
    sem_init(&thr->started, 0, 0);
    hist_init(&thr->lat);
    hist_init(&thr->lag);
    thr->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (thr->wake_fd < 0) {
        perror("switchboard-bench: eventfd");
        loadthr_free(thr);
        return NULL;
    }
    size_tx(thr);
    if (g_cfg.direct || g_cfg.twilio)
        thr->pcm = xmalloc(g_cfg.frame_bytes);
    thr->noise = xmalloc(g_cfg.frame_bytes);
    if (g_cfg.twilio)
        proto_ulaw_noise_fill(thr->noise, g_cfg.frame_bytes, NOISE_SEED_BASE + (uint32_t)idx);
    else
        proto_noise_fill(thr->noise, g_cfg.frame_bytes, NOISE_SEED_BASE + (uint32_t)idx);

    if (pthread_create(&thr->th, NULL, thread_main, thr) != 0) {
        perror("switchboard-bench: pthread_create");
        thr->th = 0;
        loadthr_free(thr);
        return NULL;
    }
    char name[16];
    snprintf(name, sizeof(name), "sb-bench-%d", idx % 100);
    pthread_setname_np(thr->th, name);
    sem_wait(&thr->started);
    if (thr->start_rc != 0) {
        fprintf(stderr, "switchboard-bench: thread %d: cannot start its event loop: %s\n", idx,
                uv_strerror(thr->start_rc));
        pthread_join(thr->th, NULL);
        thr->th = 0;
        loadthr_free(thr);
        return NULL;
    }
    return thr;
}

static void wake(loadthr_t *thr)
{
    eventfd_write(thr->wake_fd, 1);
}

void loadthr_add_session_mp(loadthr_t *thr, session_t *s)
{
    pthread_mutex_lock(&thr->lock);
    if (thr->n_inbox == thr->cap_inbox) {
        thr->cap_inbox = thr->cap_inbox ? thr->cap_inbox * 2 : 16;
        thr->inbox = xrealloc(thr->inbox, thr->cap_inbox * sizeof(*thr->inbox));
    }
    bool was_empty = thr->n_inbox == 0;
    thr->inbox[thr->n_inbox++] = s;
    pthread_mutex_unlock(&thr->lock);
    if (was_empty)
        wake(thr);
}

void loadthr_stop_mp(loadthr_t *thr)
{
    pthread_mutex_lock(&thr->lock);
    thr->stop = true;
    pthread_mutex_unlock(&thr->lock);
    wake(thr);
}

void loadthr_join(loadthr_t *thr)
{
    if (thr->th) {
        pthread_join(thr->th, NULL);
        thr->th = 0;
    }
}

const hist_t *loadthr_latency(const loadthr_t *thr)
{
    return &thr->lat;
}

const hist_t *loadthr_send_lag(const loadthr_t *thr)
{
    return &thr->lag;
}

void loadthr_free(loadthr_t *thr)
{
    if (thr == NULL)
        return;
    if (thr->wake_fd >= 0)
        close(thr->wake_fd);
    pthread_mutex_destroy(&thr->lock);
    sem_destroy(&thr->started);
    free(thr->inbox);
    free(thr->active);
    free(thr->noise);
    free(thr->tx);
    free(thr->pcm);
    free(thr->decoded);
    free(thr);
}

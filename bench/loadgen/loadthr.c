/*
 * Load threads: libwebsockets clients on a libuv loop, frame pacing and round-trip timing.
 * See loadthr.h for the contract.
 *
 * Pacing. Frame k of a session is due at t_stream0 + k * frame_ms, computed from the session's
 * own start rather than from the previous send, so timer jitter never accumulates into drift. A
 * 1 ms timer walks the thread's sessions and raises each one's count of due frames; a session
 * that had nothing queued asks lws for a writeable callback. The queue is just that count, since
 * every frame is the same noise with a fresh header: a frame is built, stamped with its send time
 * and written in CLIENT_WRITEABLE, so bench-side queueing shows up as send lag (write time minus
 * due time, reported separately), not as round-trip latency. t_stream0 is the ready time plus a
 * per-session offset spreading the sessions over one frame period, so not all of them fire on
 * the same tick even when they became ready together. Walking all sessions every millisecond
 * costs one compare for each session with nothing due, which is small next to the per-byte work
 * of the frames themselves (lws's client masking and parsing, and with --direct JSON and base64).
 */
#include "bench/loadgen/loadthr.h"

#include <errno.h>
#include <libwebsockets.h>
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
#include "net/wsframe.h"

#define RX_MAX_BYTES    (1u << 20) /* largest message kept; larger ones are dropped */
#define LWS_TIMEOUT_S   (LOADTHR_CONNECT_TIMEOUT_S + 5) /* lws's own, behind ours */
#define PROTOCOL_NAME   "sb-bench"
#define CLOSE_POLL_MS   10 /* how often a stopping thread checks for closed sockets */
#define NOISE_SEED_BASE 0x5eed1234u
#define TICK_MS         1           /* pacing timer period */
#define TWILIO_TX_BYTES (16u << 10) /* --twilio: one write's frames (start, marks, a frame) */

/* lws 4.1's own opcode for a close frame (private-lib-roles-ws.h: LWS_WRITE_CLOSE 4), which
 * lws_write() accepts; the public header leaves it out (net/ws.c does the same). */
#define WRITE_CLOSE ((enum lws_write_protocol)4)

static pthread_mutex_t ctx_create_lock = PTHREAD_MUTEX_INITIALIZER; /* lws global state */

/*
 * No lws keepalive ("validity") timers on the bench's connections. With lws's default policy
 * (ping at 300 s, hang up at 310 s) every message received re-inserts the connection's timer into
 * a sorted list of the thread's timers, a walk over up to all its connections. At 200 connections
 * per thread it made no measurable difference; the bench has its own deadlines, and lws still
 * answers the service's pings.
 */
static const lws_retry_bo_t no_validity_policy = {0};

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

    uv_loop_t loop;          /* [owner] */
    struct lws_context *ctx; /* [owner] lws NULLs it when the teardown has finished */
    uv_poll_t wake_poll;     /* [owner] */
    uv_timer_t tick;         /* [owner] */
    session_t **active;      /* [owner] every session handed to this thread */
    size_t n_active;
    size_t cap_active;
    int live; /* [owner] client wsi not yet destroyed */
    bool stopping;
    bool torn_down;
    uint64_t stop_deadline;
    hist_t lat;       /* [owner] round trips */
    hist_t lag;       /* [owner] send lag */
    uint8_t *noise;   /* frame_bytes of noise, copied under each header */
    uint8_t *tx;      /* LWS_PRE + the largest message written */
    size_t tx_cap;    /* bytes after LWS_PRE */
    uint8_t *pcm;     /* --direct: the frame before base64 */
    uint8_t *decoded; /* --direct: decoded audio deltas */
    size_t decoded_cap;
};

/* ---- Sessions ------------------------------------------------------------------------------ */

static uint64_t stagger_ns(const session_t *s)
{
    return (uint64_t)s->idx * g_cfg.frame_ns / (uint64_t)g_cfg.sessions;
}

static void become_ready(session_t *s, uint64_t now)
{
    s->t_ready = now;
    s->phase = SESS_STREAMING;
    if (s->storm) {
        s->next_due = UINT64_MAX; /* no frames: turns instead (storm.c) */
        if (storm_ready(s))
            lws_callback_on_writable(s->wsi);
        return;
    }
    s->t_stream0 = now + stagger_ns(s);
    s->next_due = s->t_stream0;
    atomic_fetch_add_explicit(&g_progress.connected, 1, memory_order_relaxed); /* advisory */
}

/*
 * Starts the close handshake of an open WebSocket: our 1000 close frame goes out from its next
 * WRITEABLE. Thread: load thread, from lws or uv callbacks.
 */
static void close_session(session_t *s)
{
    if (s->wsi == NULL || s->killed || s->closed || s->close_pending || !s->ws_open)
        return;
    s->close_pending = true;
    lws_callback_on_writable(s->wsi);
}

/*
 * Drops a connection whose upgrade has not completed. Thread: load thread, from uv callbacks
 * only (never inside an lws callback): there a synchronous kill is safe, whereas
 * LWS_TO_KILL_ASYNC would wait until lws next services its timer list, which nothing re-arms
 * from outside lws (measured: the sockets lived until the context was destroyed).
 */
static void kill_session(session_t *s)
{
    if (s->wsi == NULL || s->killed || s->closed)
        return;
    s->killed = true;
    lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
}

/* Ends s from a uv callback, gracefully when its WebSocket is open. */
static void end_session_uv(session_t *s)
{
    if (s->ws_open)
        close_session(s);
    else
        kill_session(s);
}

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
    if (g_cfg.direct)
        s->t_start = clock_now_ns();
    s->phase = SESS_CONNECTING;

    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.context = thr->ctx;
    ci.address = g_cfg.ip; /* numeric: lws 4.1.6 resolves names with a blocking getaddrinfo */
    ci.port = g_cfg.port;
    ci.path = path;
    ci.host = g_cfg.host_hdr;
    ci.ssl_connection = g_cfg.tls ? LCCSCF_USE_SSL : 0;
    ci.local_protocol_name = PROTOCOL_NAME; /* and no ci.protocol: no Sec-WebSocket-Protocol */
    ci.pwsi = &s->wsi;
    ci.opaque_user_data = s;
    ci.retry_and_idle_policy = &no_validity_policy;
    struct lws *wsi = lws_client_connect_via_info(&ci);
    if (wsi == NULL) {
        s->wsi = NULL;
        session_fail(s, "connect: libwebsockets could not start the connection");
        return;
    }
    if (!s->wsi_destroyed) {
        s->wsi_counted = true;
        thr->live++;
    }
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

/* Decodes n base64 characters at b64 into the thread's buffer; returns the length or -1. */
static ssize_t decode_audio(loadthr_t *thr, const char *b64, size_t n)
{
    size_t need = b64_decoded_max(n);
    if (need > thr->decoded_cap) {
        thr->decoded_cap = need;
        thr->decoded = xrealloc(thr->decoded, need);
    }
    return b64_decode(b64, n, thr->decoded);
}

static void on_text(loadthr_t *thr, session_t *s, const char *json, size_t len, uint64_t now)
{
    proto_event_t ev;
    proto_event_parse(json, len, &ev);
    switch (ev.type) {
    case PROTO_EV_READY:
        if (!g_cfg.direct && s->phase == SESS_OPEN)
            become_ready(s, now);
        break;
    case PROTO_EV_CREATED:
        if (g_cfg.direct && s->phase == SESS_OPEN && s->ctl == NULL) {
            s->ctl = g_cfg.twilio ? PROTO_SESSION_UPDATE_PCMU : PROTO_SESSION_UPDATE;
            s->ctl_len = strlen(s->ctl);
            lws_callback_on_writable(s->wsi);
        }
        break;
    case PROTO_EV_UPDATED:
        if (g_cfg.direct && s->phase == SESS_OPEN)
            become_ready(s, now);
        break;
    case PROTO_EV_AUDIO_DELTA:
        if (g_cfg.direct && ev.audio) {
            ssize_t n = decode_audio(thr, ev.audio, ev.audio_len);
            if (n >= 0 && s->t_first_audio == 0)
                s->t_first_audio = now;
            if (n >= 0)
                on_audio(thr, s, thr->decoded, (size_t)n, now);
            else
                s->bad_frames++;
        }
        break;
    case PROTO_EV_ERROR:
        if (s->phase == SESS_OPEN) {
            session_fail(s, "error before ready: %s", ev.error);
            close_session(s);
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
            lws_callback_on_writable(s->wsi);
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
        ssize_t n = decode_audio(thr, m.str, m.str_len);
        if (n < 0) {
            s->bad_frames++;
            break;
        }
        tw->media_in++;
        twcall_played(tw, (size_t)n, now);
        if (s->t_first_audio == 0)
            s->t_first_audio = now;
        on_audio(thr, s, thr->decoded, (size_t)n, now);
        break;
    }
    case TWCALL_IN_MARK:
        twcall_on_mark(tw, m.str, m.str_len, now);
        if (twcall_next_mark_ns(tw) <= now)
            lws_callback_on_writable(s->wsi);
        break;
    case TWCALL_IN_CLEAR:
        twcall_on_clear(tw, now);
        if (twcall_next_mark_ns(tw) <= now)
            lws_callback_on_writable(s->wsi);
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

/* Fills pcm with frame number frames_sent of s, stamped now, and records its send lag. */
static void stamp_frame(loadthr_t *thr, session_t *s, uint8_t *pcm)
{
    uint32_t seq = s->frames_sent;
    memcpy(pcm, thr->noise, g_cfg.frame_bytes);
    uint64_t now = clock_now_ns();
    proto_hdr_write(pcm, s->idx, seq, now);
    hist_record_ns(&thr->lag, now - (s->t_stream0 + (uint64_t)seq * g_cfg.frame_ns));
}

/* The frame stamped last is written. */
static void frame_sent(session_t *s)
{
    s->frames_sent++;
    atomic_fetch_add_explicit(&g_progress.frames_sent, 1, memory_order_relaxed); /* advisory */
    if (s->frames_sent == g_cfg.frames_per_session) {
        s->phase = SESS_FINISHED;
        session_finish(s);
    }
}

/* Writes frame number frames_sent of s. Returns lws_write's result. */
static int write_frame(loadthr_t *thr, session_t *s)
{
    uint8_t *out = thr->tx + LWS_PRE;
    uint8_t *pcm = g_cfg.direct ? thr->pcm : out;
    stamp_frame(thr, s, pcm); /* the payload is masked in place */
    size_t len = g_cfg.frame_bytes;
    unsigned op = WSF_OP_BINARY;
    if (g_cfg.direct) {
        len = proto_append_event((char *)out, pcm, g_cfg.frame_bytes);
        op = WSF_OP_TEXT;
    }
    /* Framed and masked here, eight bytes at a time; lws only sends the bytes (net/wsframe.h). */
    size_t h = wsf_client_frame(out, len, op);
    int n = lws_write(s->wsi, out - h, h + len, LWS_WRITE_RAW);
    if (n < 0)
        return n;
    frame_sent(s);
    return n;
}

/*
 * Sends our close frame, 1000 with no reason. lws 4.1.6 drops the socket without one when
 * WRITEABLE returns -1 after lws_close_reason() (its POLLOUT bail path marks the socket unusable),
 * so the frame is written here, and the handshake completes when the peer's close comes back
 * (on_peer_close). A peer that never answers is dropped after LOADTHR_CLOSE_WAIT_MS.
 */
static int write_close(loadthr_t *thr, session_t *s)
{
    uint8_t *out = thr->tx + LWS_PRE;
    out[0] = (uint8_t)(LWS_CLOSE_STATUS_NORMAL >> 8);
    out[1] = (uint8_t)(LWS_CLOSE_STATUS_NORMAL & 0xff);
    s->close_sent = true;
    lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, (LOADTHR_CLOSE_WAIT_MS + 999) / 1000);
    return lws_write(s->wsi, out, 2, WRITE_CLOSE) < 0 ? -1 : 0;
}

/*
 * --twilio's CLIENT_WRITEABLE: what is due goes out as one write of frames framed back to back
 * (a mark echo and a media frame are due together every 20 ms, and each write costs the loop a
 * POLLOUT round): `connected` and `start` first; when closing, `stop` and then the close frame;
 * else the marks whose audio has played and one media frame.
 */
static int write_twilio(loadthr_t *thr, session_t *s)
{
    twcall_t *tw = s->tw;
    uint8_t *out = thr->tx + LWS_PRE;
    size_t at = 0;
    bool frame = false;
    uint64_t now = clock_now_ns();
    if (s->close_pending) {
        if (!tw->opened || tw->stopped)
            return write_close(thr, s);
        twcall_put_stop(tw, out, &at); /* the caller hangs up; the close frame follows */
    } else if (!tw->opened) {
        twcall_put_open(tw, out, &at);
        become_ready(s, now); /* Twilio streams from `start` on, without waiting */
    } else {
        twcall_put_marks(tw, out, &at, thr->tx_cap - twcall_media_max(g_cfg.frame_bytes), now);
        if (s->frames_sent < s->frames_due && !thr->stopping) {
            stamp_frame(thr, s, thr->pcm);
            uint32_t seq = s->frames_sent;
            twcall_put_media(tw, out, &at, thr->pcm, g_cfg.frame_bytes, seq + 1,
                             (uint64_t)seq * (uint64_t)g_cfg.frame_ms);
            frame = true;
        }
    }
    if (at > 0 && lws_write(s->wsi, out, at, LWS_WRITE_RAW) < 0)
        return -1;
    if (frame)
        frame_sent(s);
    if (s->close_pending || twcall_next_mark_ns(tw) <= now ||
        (s->frames_sent < s->frames_due && !thr->stopping))
        lws_callback_on_writable(s->wsi);
    return 0;
}

/* CLIENT_WRITEABLE: one write per callback; a close first, then control text, then a frame. */
static int on_writeable(loadthr_t *thr, session_t *s)
{
    if (s->close_sent)
        return 0;
    if (s->tw)
        return write_twilio(thr, s);
    if (s->close_pending)
        return write_close(thr, s);
    if (s->ctl) {
        size_t n = s->ctl_len;
        memcpy(thr->tx + LWS_PRE, s->ctl, n);
        s->ctl = NULL;
        if (lws_write(s->wsi, thr->tx + LWS_PRE, n, LWS_WRITE_TEXT) < 0)
            return -1;
        if (s->storm)
            storm_sent(s, clock_now_ns()); /* may queue the turn's next message */
    } else if (s->frames_sent < s->frames_due && !thr->stopping) {
        if (write_frame(thr, s) < 0)
            return -1;
    }
    if (s->ctl || (s->frames_sent < s->frames_due && !thr->stopping))
        lws_callback_on_writable(s->wsi);
    return 0;
}

/* ---- The libwebsockets protocol ------------------------------------------------------------ */

static void on_receive(loadthr_t *thr, session_t *s, struct lws *wsi, const void *in, size_t len)
{
    if (lws_is_first_fragment(wsi)) {
        s->rx.len = 0;
        s->rx_binary = lws_frame_is_binary(wsi);
        s->rx_discard = false;
    }
    if (!s->rx_discard) {
        if (s->rx.len + len > RX_MAX_BYTES)
            s->rx_discard = true; /* never fail CLIENT_RECEIVE mid-frame (lws 4.1.6 bug) */
        else
            sbuf_append(&s->rx, in, len);
    }
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) > 0)
        return;
    if (s->rx_discard) {
        s->bad_frames++;
        return;
    }
    uint64_t now = clock_now_ns();
    if (s->rx_binary && s->storm)
        storm_on_audio(s, s->rx.len); /* assistant speech: not a round trip */
    else if (s->rx_binary)
        on_audio(thr, s, (const uint8_t *)s->rx.data, s->rx.len, now);
    else if (s->tw)
        on_twilio_text(thr, s, s->rx.data, s->rx.len, now);
    else
        on_text(thr, s, s->rx.data, s->rx.len, now);
}

/*
 * WS_PEER_INITIATED_CLOSE: records the peer's code and reason. lws 4.1.6's client parser
 * replaces 1012-1015 with 1002 before this callback but keeps the reason text, so the service's
 * 1013 "at capacity" (the only such code in SPEC 14) is recognised by its text. Returns -1
 * (close now, without lws echoing a second close frame) when this answers our own close, else 0
 * (lws echoes it).
 */
static int on_peer_close(session_t *s, const uint8_t *in, size_t len)
{
    if (len >= 2) {
        s->close_code = in[0] << 8 | in[1];
        size_t n = len - 2 < sizeof(s->close_text) - 1 ? len - 2 : sizeof(s->close_text) - 1;
        memcpy(s->close_text, in + 2, n);
        s->close_text[n] = '\0';
        if (s->close_code == 1002 && strcmp(s->close_text, "at capacity") == 0)
            s->close_code = 1013;
        if (s->close_code == 1013)
            s->saw_1013 = true;
    }
    return s->close_sent ? -1 : 0;
}

/* The service's refusals right after the upgrade (SPEC 14, order of checks on /ws). */
static bool is_refusal(const session_t *s)
{
    static const char *const refusals_1008[] = {"unauthorized", "forbidden origin",
                                                "session exists"};
    if (s->close_code == 1003 || s->close_code == 1013)
        return true;
    for (size_t i = 0; s->close_code == 1008 && i < ARRAY_LEN(refusals_1008); i++)
        if (strcmp(s->close_text, refusals_1008[i]) == 0)
            return true;
    return false;
}

static void on_closed(session_t *s)
{
    s->closed = true;
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
            session_drop(s, "connection lost");
    }
}

static void on_connection_error(session_t *s, struct lws *wsi, const char *why)
{
    unsigned int status = lws_http_client_http_response(wsi);
    if (status == 429)
        s->saw_429 = true;
    if (status)
        session_fail(s, "upgrade failed: HTTP %u (%s)", status, why ? why : "");
    else
        session_fail(s, "connect failed: %s", why ? why : "unknown error");
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    (void)user;
    session_t *s = lws_get_opaque_user_data(wsi);
    if (s == NULL)
        return 0;
    loadthr_t *thr = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        if (g_cfg.direct) {
            static const char auth[] = "Bearer sk-bench";
            unsigned char **p = in, *end = *p + len;
            if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION,
                                             (const unsigned char *)auth, sizeof(auth) - 1, p, end))
                return -1;
        }
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        s->ws_open = true;
        if (s->phase == SESS_CONNECTING)
            s->phase = SESS_OPEN;
        if (!g_cfg.direct && g_cfg.no_ready && s->phase == SESS_OPEN)
            become_ready(s, clock_now_ns());
        if (s->tw && s->phase == SESS_OPEN)
            lws_callback_on_writable(wsi); /* `connected` and `start` */
        if (thr->stopping || s->phase == SESS_FAILED)
            close_session(s); /* stopped or timed out while the upgrade was in flight */
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        on_receive(thr, s, wsi, in, len);
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return on_writeable(thr, s);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        return on_peer_close(s, in, len);
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        on_connection_error(s, wsi, in);
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
        on_closed(s);
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        lws_set_opaque_user_data(wsi, NULL);
        if (s->phase == SESS_CONNECTING || s->phase == SESS_OPEN)
            session_fail(s, "connection ended before ready");
        else if (!s->closed)
            on_closed(s);
        s->wsi = NULL;
        s->wsi_destroyed = true;
        if (s->wsi_counted) {
            s->wsi_counted = false;
            thr->live--;
        }
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {PROTOCOL_NAME, callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- The loop ------------------------------------------------------------------------------ */

static void teardown(loadthr_t *thr)
{
    if (thr->torn_down)
        return;
    thr->torn_down = true;
    uv_timer_stop(&thr->tick);
    uv_close((uv_handle_t *)&thr->tick, NULL);
    uv_poll_stop(&thr->wake_poll);
    uv_close((uv_handle_t *)&thr->wake_poll, NULL);
    /* Step one of the two-step teardown (reference 1.2), from a uv callback. */
    lws_context_destroy(thr->ctx);
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
        end_session_uv(s);
    }
}

static void pace(session_t *s, uint64_t now)
{
    uint64_t due = (now - s->t_stream0) / g_cfg.frame_ns + 1;
    if (due > g_cfg.frames_per_session)
        due = g_cfg.frames_per_session;
    if (due <= s->frames_due)
        return;
    bool was_idle = s->frames_sent == s->frames_due;
    s->frames_due = (uint32_t)due;
    s->next_due = s->frames_due == g_cfg.frames_per_session
                      ? UINT64_MAX
                      : s->t_stream0 + (uint64_t)s->frames_due * g_cfg.frame_ns;
    if (was_idle && s->wsi && !s->closed)
        lws_callback_on_writable(s->wsi);
}

static void check_deadline(session_t *s, uint64_t now)
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
    end_session_uv(s);
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
    for (size_t i = 0; i < thr->n_active; i++) {
        session_t *s = thr->active[i];
        if (s->tw && s->tw->n_marks && twcall_next_mark_ns(s->tw) <= now && s->wsi && !s->closed &&
            !s->close_pending)
            lws_callback_on_writable(s->wsi); /* a mark's audio has played */
        if (s->phase == SESS_STREAMING) {
            if (s->next_due <= now)
                pace(s, now);
            else if (s->storm && s->wsi && !s->closed && storm_tick(s, now))
                lws_callback_on_writable(s->wsi);
        } else if (s->phase == SESS_CONNECTING || s->phase == SESS_OPEN) {
            check_deadline(s, now);
        }
    }
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

static int create_context(loadthr_t *thr)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    void *loops[1] = {&thr->loop};
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_LIBUV;
    if (g_cfg.tls)
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.foreign_loops = loops;
    info.user = thr;
    info.pcontext = &thr->ctx;
    info.timeout_secs = LWS_TIMEOUT_S;
    pthread_mutex_lock(&ctx_create_lock);
    thr->ctx = lws_create_context(&info);
    pthread_mutex_unlock(&ctx_create_lock);
    if (thr->ctx == NULL)
        return -ENOMEM;
    /* With a foreign loop a failed create still returns a context (reference 1.2). */
    return lws_get_vhost_by_name(thr->ctx, "default") ? 0 : -EINVAL;
}

static void *thread_main(void *arg)
{
    loadthr_t *thr = arg;
    uv_loop_init(&thr->loop);
    int rc = create_context(thr);
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
    if (rc == 0)
        uv_run(&thr->loop, UV_RUN_DEFAULT);
    /* Step two of the teardown: the context is freed once its handles have closed. */
    if (thr->ctx) {
        lws_context_destroy(thr->ctx);
        uv_run(&thr->loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&thr->loop);
    return NULL;
}

/* ---- Public -------------------------------------------------------------------------------- */

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
        free(thr);
        return NULL;
    }
    size_t tx_max = g_cfg.frame_bytes;
    if (g_cfg.direct) {
        tx_max = proto_append_event_max(g_cfg.frame_bytes) + 1;
        thr->pcm = xmalloc(g_cfg.frame_bytes);
    } else if (g_cfg.twilio) {
        tx_max = TWILIO_TX_BYTES + twcall_media_max(g_cfg.frame_bytes);
        thr->pcm = xmalloc(g_cfg.frame_bytes);
    }
    if (tx_max < sizeof(PROTO_SESSION_UPDATE))
        tx_max = sizeof(PROTO_SESSION_UPDATE);
    if (g_cfg.storm && tx_max < storm_ctl_max())
        tx_max = storm_ctl_max();
    thr->tx = xmalloc(LWS_PRE + tx_max);
    thr->tx_cap = tx_max;
    thr->noise = xmalloc(g_cfg.frame_bytes);
    if (g_cfg.twilio)
        proto_ulaw_noise_fill(thr->noise, g_cfg.frame_bytes, NOISE_SEED_BASE + (uint32_t)idx);
    else
        proto_noise_fill(thr->noise, g_cfg.frame_bytes, NOISE_SEED_BASE + (uint32_t)idx);

    if (pthread_create(&thr->th, NULL, thread_main, thr) != 0) {
        perror("switchboard-bench: pthread_create");
        close(thr->wake_fd);
        free(thr);
        return NULL;
    }
    char name[16];
    snprintf(name, sizeof(name), "sb-bench-%d", idx % 100);
    pthread_setname_np(thr->th, name);
    sem_wait(&thr->started);
    if (thr->start_rc != 0) {
        fprintf(stderr, "switchboard-bench: thread %d: cannot create a libwebsockets context\n",
                idx);
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

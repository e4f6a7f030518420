/*
 * Connections of the simulator: the ordered frame queue of a WebSocket, direct writes, the
 * per-connection timer, closes with a code and dropped sockets.
 * Thread: the simulator's only thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/log.h"
#include "base/util.h"
#include "bench/sim/sim.h"

/* lws 4.1's own opcode for a close frame (LWS_WRITE_CLOSE in its private headers), which
 * lws_write() accepts; see the Closing section of net/DESIGN.md for why we write it. */
#define CONN_WRITE_CLOSE      ((enum lws_write_protocol)4)
#define CONN_WRITE_BATCH      16          /* frames per writeable callback, for fairness */
#define CONN_OUT_MAX_BYTES    (64u << 20) /* a client this far behind is dropped */
#define CONN_CLOSE_REASON_MAX 123         /* RFC 6455: 125 payload bytes minus the code */

typedef struct queued_frame {
    sim_frame_t f;
    unsigned char data[]; /* LWS_PRE + len */
} queued_frame_t;

static void timer_cb(uv_timer_t *t);

sim_conn_t *sim_conn_new(void)
{
    sim_conn_t *c = xcalloc(1, sizeof(*c));
    uv_timer_init(g_sim_loop, &c->timer);
    c->timer.data = c;
    sbuf_init(&c->rx);
    return c;
}

static void conn_free_cb(uv_handle_t *h)
{
    free(h->data);
}

static void free_queue(sim_conn_t *c)
{
    sim_frame_t *f = c->out_head;
    while (f) {
        sim_frame_t *next = f->next;
        free(container_of(f, queued_frame_t, f));
        f = next;
    }
    c->out_head = c->out_tail = NULL;
    c->out_bytes = 0;
}

void sim_conn_destroy(sim_conn_t *c)
{
    c->wsi = NULL;
    free_queue(c);
    sbuf_destroy(&c->rx);
    sim_http_free(c);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, conn_free_cb);
}

void sim_conn_msg_begin(sbuf_t *b)
{
    static const unsigned char zero[LWS_PRE];
    sbuf_reset(b);
    sbuf_append(b, zero, LWS_PRE);
}

void sim_conn_wake_at(sim_conn_t *c, uint64_t at_ns)
{
    if (at_ns == 0 || (c->timer_at_ns != 0 && c->timer_at_ns <= at_ns))
        return;
    if (uv_is_closing((uv_handle_t *)&c->timer))
        return;
    uint64_t now = clock_now_ns();
    uint64_t delay_ms = at_ns > now ? (at_ns - now + NS_PER_MS - 1) / NS_PER_MS : 0;
    c->timer_at_ns = at_ns;
    uv_timer_start(&c->timer, timer_cb, delay_ms, 0);
}

/* The connection cannot be written to any more: let lws close it soon. */
static void kill_async(sim_conn_t *c)
{
    c->state = SIM_CONN_CLOSING;
    free_queue(c);
    if (c->wsi)
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static void enqueue(sim_conn_t *c, const unsigned char *payload, size_t len, uint16_t close_code)
{
    queued_frame_t *q = xmalloc(sizeof(*q) + LWS_PRE + len + 1);
    q->f.next = NULL;
    q->f.due_ns = g_sim_cfg.delay_ms ? clock_now_ns() + g_sim_cfg.delay_ms * NS_PER_MS : 0;
    q->f.len = len;
    q->f.close_code = close_code;
    q->f.buf = q->data;
    memcpy(q->data + LWS_PRE, payload, len);
    q->data[LWS_PRE + len] = '\0';
    if (c->out_tail)
        c->out_tail->next = &q->f;
    else
        c->out_head = &q->f;
    c->out_tail = &q->f;
    c->out_bytes += len;
    if (c->out_bytes > CONN_OUT_MAX_BYTES) {
        log_warn("sim.slow_client", LOG_S("error", "too many frames waiting; dropping"));
        kill_async(c);
        return;
    }
    if (c->out_head != &q->f)
        return; /* whoever made the head wait will also get to this one */
    if (q->f.due_ns)
        sim_conn_wake_at(c, q->f.due_ns);
    else if (c->wsi)
        lws_callback_on_writable(c->wsi);
}

void sim_conn_send(sim_conn_t *c, sbuf_t *b)
{
    size_t len = b->len - LWS_PRE;
    if (c->state != SIM_CONN_WS || c->wsi == NULL) {
        sbuf_reset(b);
        return;
    }
    if (g_sim_cfg.delay_ms == 0 && c->direct_ok && c->out_head == NULL &&
        !lws_partial_buffered(c->wsi)) {
        /* The common case: nothing waits, so write now and save a trip through the poll. */
        if (lws_write(c->wsi, (unsigned char *)b->data + LWS_PRE, len, LWS_WRITE_TEXT) < (int)len)
            kill_async(c);
        sbuf_reset(b);
        return;
    }
    enqueue(c, (const unsigned char *)b->data + LWS_PRE, len, 0);
    sbuf_reset(b);
}

void sim_conn_close(sim_conn_t *c, uint16_t code, const char *reason)
{
    if (c->state != SIM_CONN_WS || c->wsi == NULL)
        return;
    size_t rl = strlen(reason);
    if (rl > CONN_CLOSE_REASON_MAX)
        rl = CONN_CLOSE_REASON_MAX;
    enqueue(c, (const unsigned char *)reason, rl, code);
    c->state = SIM_CONN_CLOSING; /* nothing after the close frame */
}

void sim_conn_drop(sim_conn_t *c)
{
    if (c->wsi == NULL)
        return;
    /* FIN without a close frame; lws sees the hang-up and destroys the wsi. */
    shutdown(lws_get_socket_fd(c->wsi), SHUT_RDWR);
    kill_async(c);
}

/* Writes a close frame ourselves and asks lws to drop the socket (return -1 from WRITEABLE). */
static void write_close(sim_conn_t *c, const sim_frame_t *f)
{
    unsigned char frame[LWS_PRE + 2 + CONN_CLOSE_REASON_MAX];
    frame[LWS_PRE] = (unsigned char)(f->close_code >> 8);
    frame[LWS_PRE + 1] = (unsigned char)(f->close_code & 0xff);
    memcpy(frame + LWS_PRE + 2, f->buf + LWS_PRE, f->len);
    lws_write(c->wsi, frame + LWS_PRE, 2 + f->len, CONN_WRITE_CLOSE);
}

int sim_conn_writeable(sim_conn_t *c)
{
    uint64_t now = 0;
    for (int i = 0; i < CONN_WRITE_BATCH && c->out_head; i++) {
        sim_frame_t *f = c->out_head;
        if (f->due_ns) {
            if (now == 0)
                now = clock_now_ns();
            if (f->due_ns > now) {
                sim_conn_wake_at(c, f->due_ns);
                return 0;
            }
        }
        c->out_head = f->next;
        if (c->out_head == NULL)
            c->out_tail = NULL;
        c->out_bytes -= f->len;
        if (f->close_code) {
            write_close(c, f);
            free(container_of(f, queued_frame_t, f));
            free_queue(c);
            return -1;
        }
        int n = lws_write(c->wsi, f->buf + LWS_PRE, f->len, LWS_WRITE_TEXT);
        bool failed = n < (int)f->len;
        free(container_of(f, queued_frame_t, f));
        if (failed)
            return -1;
        if (lws_partial_buffered(c->wsi))
            break; /* lws holds the rest and calls back when it has flushed it */
    }
    if (c->out_head) {
        if (c->out_head->due_ns > (now ? now : clock_now_ns()))
            sim_conn_wake_at(c, c->out_head->due_ns);
        else
            lws_callback_on_writable(c->wsi);
    }
    return 0;
}

static void timer_cb(uv_timer_t *t)
{
    sim_conn_t *c = t->data;
    uint64_t now = clock_now_ns();
    c->timer_at_ns = 0;
    if (c->wsi == NULL)
        return;
    if (c->drop_at_ns && now >= c->drop_at_ns) {
        c->drop_at_ns = 0;
        sim_conn_drop(c);
        return;
    }
    uint64_t next = c->drop_at_ns;
    uint64_t n = c->rt ? sim_rt_tick(c, now) : sim_http_tick(c, now);
    if (n && (next == 0 || n < next))
        next = n;
    if (c->out_head) {
        if (c->out_head->due_ns <= now)
            lws_callback_on_writable(c->wsi);
        else if (next == 0 || c->out_head->due_ns < next)
            next = c->out_head->due_ns;
    }
    sim_conn_wake_at(c, next);
}

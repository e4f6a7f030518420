/*
 * Child processes on the network threads (net_proc_*): libuv spawns the child on a network
 * thread's loop and owns its three pipes, so actors never block on a pipe and never see a file
 * descriptor (SPEC 3: the network threads do all I/O).
 *
 * net_proc_spawn() copies the request on the caller's thread and posts it as OUT_PROC_SPAWN to
 * the thread its id names (round robin, the thread index in the id's top bits, as for fetch ids),
 * so writes, signals and the shutdown sequence that follow it on the same MPSC inbox are never
 * handled before it.
 *
 * stdout is cut into lines as it arrives: the scan for '\n' only looks at new bytes, so a
 * megabyte line costs linear time. stderr is read continuously (a full stderr pipe would block
 * the child) and logged a line at a time, cut at PROC_LOG_LINE_MAX for the log only.
 *
 * Exactly one NET_MSG_PROC_EXIT per accepted spawn, after the last stdout line: it is posted when
 * the child has exited and both output pipes have reached EOF, or PROC_EOF_WAIT_MS after the exit
 * when a grandchild keeps a pipe open. The target's reference is dropped with it.
 *
 * Thread: net, except net_proc_*() and the command's free_fn (any thread).
 */
#include <ck_pr.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "net/net_int.h"

#define PROC_LOG_LINE_MAX 2000 /* stderr lines are logged up to this many bytes */
#define PROC_EOF_WAIT_MS  1000 /* after the exit, wait this long for the pipes to close */
#define PROC_SEQ_MASK     ((1ULL << NET_ID_THREAD_SHIFT) - 1)
#define PROC_READ_CHUNK   65536

/* The list node that netthr_t.procs points to. */
typedef struct proc_node {
    struct proc_node *prev, *next;
} proc_node_t;

/* One child. Built by net_proc_spawn() on any thread, then owned by one network thread. */
typedef struct proc {
    proc_node_t node; /* in netthr_t.procs once spawned */
    netthr_t *thr;
    uint64_t id;
    actor_t *target; /* a reference, dropped after EXIT */
    char *file;
    char **argv; /* NULL-terminated, argv[0] = file */
    char **env;  /* NULL-terminated, NULL = inherit */
    char *cwd;
    char log_name[64];

    uv_process_t process;
    uv_pipe_t in, out, err;
    uv_timer_t timer; /* the EOF wait, then the shutdown steps */
    int open_handles; /* freed when the last closes */
    bool exited, out_eof, err_eof, reported, in_closed, closing;
    int shutdown_step; /* 0 none, 1 stdin closed, 2 SIGTERM sent, 3 SIGKILL sent */
    uint32_t grace_ms;
    int64_t exit_status;
    int term_signal;
    sbuf_t out_buf; /* stdout bytes after the last '\n' */
    size_t out_scanned;
    sbuf_t err_buf;
} proc_t;

/* A write: the command itself is the buffer and is freed when libuv is done with it. */
typedef struct proc_write {
    uv_write_t req;
    net_out_t *o;
} proc_write_t;

static uint64_t proc_seq; /* [atomic, any] only the FAA's atomicity matters: relaxed */

static char *proc_strdup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static char **proc_copy_vec(const char *first, const char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    size_t off = first ? 1 : 0;
    char **out = xcalloc(n + off + 1, sizeof(*out));
    if (first)
        out[0] = xstrdup(first);
    for (size_t i = 0; i < n; i++)
        out[i + off] = xstrdup(v[i]);
    return out;
}

static void proc_free_vec(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static void proc_free(proc_t *p)
{
    free(p->file);
    proc_free_vec(p->argv);
    proc_free_vec(p->env);
    free(p->cwd);
    sbuf_destroy(&p->out_buf);
    sbuf_destroy(&p->err_buf);
    if (p->target)
        actor_unref(p->target);
    free(p);
}

/* Posts EXIT (once) and drops the target's reference. Thread: any (net, or a freed command). */
static void proc_report(proc_t *p, int spawn_error)
{
    if (p->reported)
        return;
    p->reported = true;
    net_proc_exit_msg_t *m = MSG_NEW(net_proc_exit_msg_t, NET_MSG_PROC_EXIT);
    m->id = p->id;
    m->spawn_error = spawn_error;
    m->exit_status = p->exit_status;
    m->term_signal = p->term_signal;
    log_info("proc.exit", LOG_S("name", p->log_name), LOG_I("status", p->exit_status),
             LOG_I("signal", p->term_signal), LOG_I("spawn_error", -spawn_error));
    actor_send(p->target, &m->hdr);
    actor_unref(p->target);
    p->target = NULL;
}

/* ---- Commands (any thread) ------------------------------------------------------------------ */

static proc_t **proc_of(net_out_t *o)
{
    return (proc_t **)(void *)(o->buf + LWS_PRE);
}

/* Frees a spawn command; one no thread took reports its process as never started. */
static void proc_cmd_free(msg_t *m)
{
    proc_t *p = *proc_of((net_out_t *)m);
    if (p) {
        proc_report(p, -ESHUTDOWN);
        proc_free(p);
    }
    msg_block_free(m);
}

uint64_t net_proc_spawn(const net_proc_req_t *req, actor_t *target)
{
    int n_threads = g_net.n_threads;
    if (req == NULL || req->file == NULL || req->file[0] == '\0' || target == NULL ||
        n_threads <= 0 || g_net.threads == NULL)
        return 0;
    proc_t *p = xcalloc(1, sizeof(*p));
    p->file = xstrdup(req->file);
    p->argv = proc_copy_vec(req->file, req->args);
    p->env = req->env ? proc_copy_vec(NULL, req->env) : NULL;
    p->cwd = proc_strdup_or_null(req->cwd);
    str_copy(p->log_name, req->log_name ? req->log_name : req->file, sizeof(p->log_name));
    sbuf_init(&p->out_buf);
    sbuf_init(&p->err_buf);
    uint64_t seq = ck_pr_faa_64(&proc_seq, 1) + 1;
    uint64_t thread = seq % (uint64_t)n_threads;
    p->id = (thread << NET_ID_THREAD_SHIFT) | (seq & PROC_SEQ_MASK);
    actor_ref(target);
    p->target = target;
    uint64_t id = p->id; /* p belongs to the network thread once posted */
    net_out_t *o = net_out_new(id, OUT_PROC_SPAWN, sizeof(proc_t *));
    o->hdr.free_fn = proc_cmd_free;
    *proc_of(o) = p;
    net_post(o);
    return id;
}

void net_proc_write(uint64_t id, const void *data, size_t len)
{
    if (id == 0 || len == 0)
        return;
    net_out_t *o = net_out_new(id, OUT_PROC_WRITE, len);
    memcpy(o->buf + LWS_PRE, data, len);
    net_post(o);
}

void net_proc_kill(uint64_t id, int signum)
{
    if (id == 0)
        return;
    net_out_t *o = net_out_new(id, OUT_PROC_KILL, 0);
    o->code = (uint16_t)signum;
    net_post(o);
}

void net_proc_shutdown(uint64_t id, uint32_t grace_ms)
{
    if (id == 0)
        return;
    net_out_t *o = net_out_new(id, OUT_PROC_SHUTDOWN, 0);
    o->code = (uint16_t)(grace_ms > UINT16_MAX ? UINT16_MAX : grace_ms);
    net_post(o);
}

/* ---- The child on the loop (network thread) -------------------------------------------------- */

static void proc_list_remove(netthr_t *thr, proc_t *p)
{
    if (p->node.prev)
        p->node.prev->next = p->node.next;
    else
        thr->procs = p->node.next;
    if (p->node.next)
        p->node.next->prev = p->node.prev;
    p->node.prev = p->node.next = NULL;
}

static proc_t *proc_lookup(netthr_t *thr, uint64_t id)
{
    for (proc_node_t *n = thr->procs; n; n = n->next) {
        proc_t *p = container_of(n, proc_t, node);
        if (p->id == id)
            return p;
    }
    return NULL;
}

static void proc_handle_closed(uv_handle_t *h)
{
    proc_t *p = h->data;
    if (--p->open_handles == 0)
        proc_free(p);
}

/* Closes h unless it was never initialised (data unset) or is closing already. */
static void proc_close_handle(uv_handle_t *h)
{
    if (h->data != NULL && !uv_is_closing(h))
        uv_close(h, proc_handle_closed);
}

/* Reports the end and closes every handle; p is freed by the last close callback. */
static void proc_finish(proc_t *p)
{
    if (p->closing)
        return;
    p->closing = true;
    proc_report(p, 0);
    proc_list_remove(p->thr, p);
    uv_timer_stop(&p->timer);
    proc_close_handle((uv_handle_t *)&p->timer);
    proc_close_handle((uv_handle_t *)&p->in);
    proc_close_handle((uv_handle_t *)&p->out);
    proc_close_handle((uv_handle_t *)&p->err);
    proc_close_handle((uv_handle_t *)&p->process);
}

static void proc_maybe_finish(proc_t *p)
{
    if (p->exited && p->out_eof && p->err_eof)
        proc_finish(p);
}

static void proc_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    buf->base = xmalloc(PROC_READ_CHUNK);
    buf->len = PROC_READ_CHUNK;
}

static void proc_post_line(proc_t *p, const char *s, size_t len)
{
    if (len > 0 && s[len - 1] == '\r')
        len--;
    if (p->target == NULL)
        return;
    net_proc_line_msg_t *m =
        (net_proc_line_msg_t *)msg_new(NET_MSG_PROC_LINE, sizeof(*m) + len + 1);
    m->id = p->id;
    m->len = len;
    memcpy(m->data, s, len);
    m->data[len] = '\0';
    actor_send(p->target, &m->hdr);
}

static void proc_log_line(proc_t *p, const char *s, size_t len)
{
    if (len > 0 && s[len - 1] == '\r')
        len--;
    char *line = xstrndup(s, len < PROC_LOG_LINE_MAX ? len : PROC_LOG_LINE_MAX);
    log_info("proc.stderr", LOG_S("name", p->log_name), LOG_S("line", line));
    free(line);
}

/*
 * Appends a chunk to b and hands every complete line to fn; keeps the rest. *scanned remembers
 * how far b was already searched, so a long line is scanned once.
 */
static void proc_split(proc_t *p, sbuf_t *b, size_t *scanned, const char *data, size_t n,
                       void (*fn)(proc_t *, const char *, size_t))
{
    sbuf_append(b, data, n);
    size_t start = 0;
    for (;;) {
        const char *nl = memchr(b->data + *scanned, '\n', b->len - *scanned);
        if (nl == NULL) {
            *scanned = b->len;
            break;
        }
        size_t end = (size_t)(nl - b->data);
        fn(p, b->data + start, end - start);
        start = end + 1;
        *scanned = start;
    }
    if (start > 0) {
        memmove(b->data, b->data + start, b->len - start);
        b->len -= start;
        b->data[b->len] = '\0';
        *scanned -= start;
    }
}

static void proc_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    proc_t *p = s->data;
    bool is_out = s == (uv_stream_t *)&p->out;
    if (nread > 0) {
        if (is_out) {
            proc_split(p, &p->out_buf, &p->out_scanned, buf->base, (size_t)nread, proc_post_line);
        } else {
            size_t none = p->err_buf.len;
            proc_split(p, &p->err_buf, &none, buf->base, (size_t)nread, proc_log_line);
        }
    }
    free(buf->base);
    if (nread >= 0)
        return;
    /* EOF or a read error: a last line without '\n' still counts. */
    uv_read_stop(s);
    sbuf_t *b = is_out ? &p->out_buf : &p->err_buf;
    if (b->len > 0)
        (is_out ? proc_post_line : proc_log_line)(p, b->data, b->len);
    sbuf_reset(b);
    if (is_out)
        p->out_eof = true;
    else
        p->err_eof = true;
    proc_maybe_finish(p);
}

static void proc_on_eof_wait(uv_timer_t *t)
{
    proc_finish(t->data); /* a grandchild holds a pipe open: stop waiting for it */
}

static void proc_on_exit(uv_process_t *h, int64_t status, int term_signal)
{
    proc_t *p = h->data;
    p->exited = true;
    p->exit_status = status;
    p->term_signal = term_signal;
    if (p->out_eof && p->err_eof) {
        proc_finish(p);
        return;
    }
    uv_timer_stop(&p->timer);
    uv_timer_start(&p->timer, proc_on_eof_wait, PROC_EOF_WAIT_MS, 0);
}

static void proc_on_write(uv_write_t *req, int status)
{
    proc_write_t *w = (proc_write_t *)req;
    (void)status; /* EPIPE: the child has gone; its EXIT says so */
    msg_free(&w->o->hdr);
    free(w);
}

static void proc_close_stdin(proc_t *p)
{
    if (p->in_closed)
        return;
    p->in_closed = true;
    proc_close_handle((uv_handle_t *)&p->in); /* queued writes end with ECANCELED */
}

static void proc_on_shutdown_step(uv_timer_t *t)
{
    proc_t *p = t->data;
    if (p->exited)
        return;
    if (p->shutdown_step == 1) {
        p->shutdown_step = 2;
        uv_process_kill(&p->process, SIGTERM);
        uv_timer_start(&p->timer, proc_on_shutdown_step, p->grace_ms, 0);
    } else if (p->shutdown_step == 2) {
        p->shutdown_step = 3;
        uv_process_kill(&p->process, SIGKILL);
    }
}

static int proc_init_pipe(proc_t *p, uv_pipe_t *pipe)
{
    int rc = uv_pipe_init(&p->thr->loop, pipe, 0);
    if (rc == 0) {
        pipe->data = p;
        p->open_handles++;
    }
    return rc;
}

static void proc_spawn_net(netthr_t *thr, proc_t *p)
{
    p->thr = thr;
    if (thr->stopping) {
        proc_report(p, -ESHUTDOWN);
        proc_free(p);
        return;
    }
    /* Handles hold p through their data; p is freed when the last one closes. */
    uv_timer_init(&thr->loop, &p->timer);
    p->timer.data = p;
    p->open_handles = 1;
    int rc = proc_init_pipe(p, &p->in);
    if (rc == 0)
        rc = proc_init_pipe(p, &p->out);
    if (rc == 0)
        rc = proc_init_pipe(p, &p->err);
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)&p->in},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&p->out},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&p->err},
    };
    uv_process_options_t opt = {.exit_cb = proc_on_exit,
                                .file = p->file,
                                .args = p->argv,
                                .env = p->env,
                                .cwd = p->cwd,
                                .stdio_count = 3,
                                .stdio = stdio};
    p->node.next = thr->procs;
    if (thr->procs)
        thr->procs->prev = &p->node;
    thr->procs = &p->node;
    bool spawned = false;
    if (rc == 0) {
        rc = uv_spawn(&thr->loop, &p->process, &opt);
        spawned = true; /* even a failed spawn leaves a handle to close */
        p->process.data = p;
        p->open_handles++;
    }
    if (rc != 0) {
        log_warn("proc.spawn_failed", LOG_S("name", p->log_name), LOG_S("file", p->file),
                 LOG_S("error", uv_strerror(rc)));
        proc_report(p, rc);
        p->closing = true;
        proc_list_remove(thr, p);
        proc_close_handle((uv_handle_t *)&p->timer);
        proc_close_handle((uv_handle_t *)&p->in);
        proc_close_handle((uv_handle_t *)&p->out);
        proc_close_handle((uv_handle_t *)&p->err);
        if (spawned)
            proc_close_handle((uv_handle_t *)&p->process);
        return;
    }
    log_info("proc.spawn", LOG_S("name", p->log_name), LOG_I("pid", p->process.pid));
    uv_read_start((uv_stream_t *)&p->out, proc_alloc, proc_on_read);
    uv_read_start((uv_stream_t *)&p->err, proc_alloc, proc_on_read);
}

void proc_command_net(netthr_t *thr, net_out_t *o)
{
    if (o->kind == OUT_PROC_SPAWN) {
        proc_t *p = *proc_of(o);
        *proc_of(o) = NULL; /* ours now; the command's free_fn must not report it */
        msg_free(&o->hdr);
        if (p)
            proc_spawn_net(thr, p);
        return;
    }
    proc_t *p = proc_lookup(thr, o->conn);
    if (p == NULL || p->closing) {
        msg_free(&o->hdr);
        return;
    }
    switch (o->kind) {
    case OUT_PROC_WRITE: {
        if (p->in_closed) {
            msg_free(&o->hdr);
            return;
        }
        proc_write_t *w = xcalloc(1, sizeof(*w));
        w->o = o;
        uv_buf_t buf = uv_buf_init((char *)o->buf + LWS_PRE, (unsigned)o->len);
        if (uv_write(&w->req, (uv_stream_t *)&p->in, &buf, 1, proc_on_write) != 0) {
            msg_free(&o->hdr);
            free(w);
        }
        return;
    }
    case OUT_PROC_KILL:
        if (!p->exited)
            uv_process_kill(&p->process, o->code);
        break;
    case OUT_PROC_SHUTDOWN:
        if (p->shutdown_step == 0 && !p->exited) {
            p->shutdown_step = 1;
            p->grace_ms = o->code;
            proc_close_stdin(p);
            uv_timer_stop(&p->timer);
            uv_timer_start(&p->timer, proc_on_shutdown_step, p->grace_ms, 0);
        }
        break;
    default:
        break;
    }
    msg_free(&o->hdr);
}

void proc_stop_net(netthr_t *thr)
{
    while (thr->procs) {
        proc_t *p = container_of(thr->procs, proc_t, node);
        if (!p->exited) {
            uv_process_kill(&p->process, SIGKILL);
            p->term_signal = SIGKILL;
        }
        proc_finish(p); /* its handles close in this loop run */
    }
}

/*
 * Network threads: start-up and shutdown, the loop and its handles, the libwebsockets context,
 * the listening socket and the adoption of accepted sockets, and the one lws protocol callback,
 * which hands each connection's callbacks to its type (srv.c, wsc.c). The connection table is
 * conntab.c; the send API and the inbox are send.c.
 *
 * Why per-thread SO_REUSEPORT sockets: Debian's libwebsockets 4.1.6 is built with LWS_MAX_SMP=1
 * and cannot share one listening port between contexts (reference/c-dependencies.md 1.3). Each
 * thread therefore owns a socket bound with SO_REUSEPORT to the same address; the kernel spreads
 * new connections over them by hash, no thread hands sockets to another, and a connection lives
 * on one thread for its whole life. Accepted sockets are given to libwebsockets with
 * lws_adopt_descriptor_vhost() as raw sockets: srv.c and its parts read HTTP and WebSocket.
 */
#include <arpa/inet.h>
#include <ck_pr.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <semaphore.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "actors/sched.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"
#include "net/srv.h"

#define LISTEN_BACKLOG 1024

net_global_t g_net;
static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER; /* lws has global state at create */

/* ---- Loop callbacks ------------------------------------------------------------------------ */

/* The inbox's eventfd fired: drain a batch, and come back later if more is waiting. */
static void on_wake(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    netthr_t *thr = h->data;
    eventfd_t v;
    eventfd_read(thr->wake_fd, &v);
    if (send_inbox_net(thr))
        eventfd_write(thr->wake_fd, 1); /* still ours: run again after other I/O */
    if (thr->stopping && thr->ctx) {
        /* Step one of the two-step teardown (reference 1.2), from a uv callback. */
        fetch_stop_net(thr); /* its DONEs release the actors; its handles close in this run */
        redis_stop_net(thr);
        pg_stop_net(thr); /* what is left is answered: its actors are released */
        proc_stop_net(thr);
        if (thr->listen_fd >= 0) {
            uv_poll_stop(&thr->listen_poll);
            uv_close((uv_handle_t *)&thr->listen_poll, NULL);
        }
        uv_poll_stop(&thr->wake_poll);
        uv_close((uv_handle_t *)&thr->wake_poll, NULL);
        uv_timer_stop(&thr->sweep);
        uv_close((uv_handle_t *)&thr->sweep, NULL);
        uv_prepare_stop(&thr->flush_prepare);
        uv_close((uv_handle_t *)&thr->flush_prepare, NULL);
        uv_check_stop(&thr->flush_check);
        uv_close((uv_handle_t *)&thr->flush_check, NULL);
        lws_context_destroy(thr->ctx);
    }
}

static void on_sweep(uv_timer_t *t)
{
    netthr_t *thr = t->data;
    uint64_t now = clock_now_ns();
    for (uint32_t i = 0; i < thr->conns.n_slots; i++) {
        net_conn_t *c = thr->conns.slots[i];
        if (c == NULL)
            continue;
        if (c->kind == NET_CONN_SERVER)
            ws_sweep_net(srv_conn_of(c), now);
        else
            wsc_sweep_net(c, now);
    }
}

/* ---- Accepting ----------------------------------------------------------------------------- */

/* The peer of an accepted socket as an IPv6 or IPv4-mapped address (all zero when unknown). */
static void addr16_of(const struct sockaddr_storage *ss, uint8_t out[16])
{
    memset(out, 0, 16);
    if (ss->ss_family == AF_INET) {
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
    }
}

static void on_accept(uv_poll_t *h, int status, int events)
{
    (void)events;
    netthr_t *thr = h->data;
    if (status < 0)
        return;
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        memset(&ss, 0, sizeof(ss));
        int fd = accept4(thr->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                log_warn("net.accept", LOG_S("error", strerror(errno)));
            return;
        }
        if (thr->stopping ||
            metric_gauge_get(&g_metrics.connections_open) >= g_net.cfg.max_connections) {
            close(fd);
            metric_inc(&g_metrics.connections_refused_total, 1);
            continue;
        }
        /* Refused as well when the table is full or this address has its
         * SWITCHBOARD_CONNECTIONS_PER_IP (srv_conn_new()). */
        uint8_t peer[16];
        addr16_of(&ss, peer);
        srv_conn_t *c = srv_conn_new(thr, peer);
        if (c == NULL) {
            close(fd);
            metric_inc(&g_metrics.connections_refused_total, 1);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        /*
         * The connection travels as the wsi's opaque pointer (set by lws before any protocol
         * callback but after WSI_CREATE). If adoption fails after the wsi exists, lws frees it
         * through WSI_DESTROY, which frees the conn and tells us here.
         */
        lws_adopt_desc_t info;
        memset(&info, 0, sizeof(info));
        info.vh = thr->vh;
        info.type = (lws_adoption_type)(LWS_ADOPT_SOCKET | (g_net.tls ? LWS_ADOPT_ALLOW_SSL : 0));
        info.fd.sockfd = fd;
        info.opaque = c;
        thr->adopting = &c->base;
        thr->adopting_freed = false;
        struct lws *wsi = lws_adopt_descriptor_vhost_via_info(&info); /* closes fd on failure */
        thr->adopting = NULL;
        if (wsi == NULL) {
            if (!thr->adopting_freed)
                srv_destroy_net(c);
            log_warn("net.adopt", LOG_S("error", "libwebsockets refused the socket"));
        } else {
            c->base.wsi = wsi;
            http_arm_deadline(c);
        }
    }
}

/* ---- The libwebsockets protocol ------------------------------------------------------------ */

typedef struct pss {
    int unused;
} pss_t;

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    (void)user;
    netthr_t *thr = lws_context_user(lws_get_context(wsi));
    net_conn_t *c = lws_get_opaque_user_data(wsi);
    if (c && c->wsi == NULL)
        c->wsi = wsi; /* a callback from inside lws_adopt_*() */
    switch (reason) {
    case LWS_CALLBACK_WSI_DESTROY:
        if (c && c == thr->adopting)
            thr->adopting_freed = true;
        if (c) {
            lws_set_opaque_user_data(wsi, NULL);
            if (c->kind == NET_CONN_CLIENT)
                wsc_destroy_net(c);
            else
                srv_destroy_net(srv_conn_of(c));
        }
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        return 0;
    default:
        break;
    }
    if (c == NULL)
        return 0;
    if (c->kind == NET_CONN_SERVER)
        return srv_callback(wsi, reason, srv_conn_of(c), in, len);
    int rc = wsc_callback(wsi, reason, c, in, len);
    return rc != 1 ? rc : lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    {"switchboard", callback, sizeof(pss_t), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- Threads ------------------------------------------------------------------------------- */

typedef struct start_sync {
    netthr_t *thr;
    sem_t done;
    int rc;
} start_sync_t;

static int create_context(netthr_t *thr)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    void *loops[1] = {&thr->loop};
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.protocols = protocols;
    /* Every connection is a raw socket to lws: heads, frames and UTF-8 are checked by us. */
    info.options = LWS_SERVER_OPTION_LIBUV;
    /*
     * SSL only when something uses it (serving TLS, or wss:// upstreams): lws 4.1.6 leaves
     * per-context OpenSSL client state behind at teardown, which ASan reports as leaks.
     */
    if (g_net.tls || g_net.cfg.client_tls)
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    if (g_net.tls) {
        info.ssl_cert_filepath = g_net.cfg.tls_cert;
        info.ssl_private_key_filepath = g_net.cfg.tls_key;
        /* HTTP/1.1 only: responses and upgrades are written for h1 framing. */
        info.alpn = "http/1.1";
    }
    info.foreign_loops = loops;
    info.user = thr;
    info.vhost_name = "default";
    info.pcontext = &thr->ctx; /* lws NULLs it when the teardown has finished */
    info.timeout_secs = 20;
    info.keepalive_timeout = 10;
    pthread_mutex_lock(&ctx_lock);
    thr->ctx = lws_create_context(&info);
    pthread_mutex_unlock(&ctx_lock);
    if (thr->ctx == NULL)
        return -ENOMEM;
    /* With a foreign loop a failed create still returns a context (reference 1.2). */
    thr->vh = lws_get_vhost_by_name(thr->ctx, "default");
    return thr->vh ? 0 : -EINVAL;
}

/*
 * Before the loop may block in poll: frames posted while the thread was awake (no eventfd write,
 * send.c) are written now, then the actors this pass made runnable go to the workers.
 */
static void on_flush_prepare(uv_prepare_t *h)
{
    netthr_t *thr = h->data;
    for (;;) {
        ck_pr_store_int(&thr->polling, 1);
        ck_pr_fence_memory(); /* the store above before the count's load (send.c) */
        if (mbox_depth(&thr->inbox) == 0)
            break;
        ck_pr_store_int(&thr->polling, 0);
        if (send_inbox_net(thr) || thr->stopping) {
            eventfd_write(thr->wake_fd, 1); /* more than a batch, or the teardown: on_wake */
            break;
        }
    }
    sched_flush();
}

static void on_flush_check(uv_check_t *h)
{
    netthr_t *thr = h->data;
    ck_pr_store_int(&thr->polling, 0);
    sched_flush();
}

static void *thread_main(void *arg)
{
    start_sync_t *sync = arg;
    netthr_t *thr = sync->thr;
    int rc = create_context(thr);
    if (rc == 0)
        rc = fetch_init_net(thr); /* first: nothing else to undo when it fails */
    if (rc == 0)
        rc = redis_init_net(thr);
    if (rc == 0)
        rc = pg_init_net(thr);
    if (rc == 0) {
        if (thr->listen_fd >= 0) {
            uv_poll_init(&thr->loop, &thr->listen_poll, thr->listen_fd);
            thr->listen_poll.data = thr;
            uv_poll_start(&thr->listen_poll, UV_READABLE, on_accept);
        }
        uv_poll_init(&thr->loop, &thr->wake_poll, thr->wake_fd);
        thr->wake_poll.data = thr;
        uv_poll_start(&thr->wake_poll, UV_READABLE, on_wake);
        uv_timer_init(&thr->loop, &thr->sweep);
        thr->sweep.data = thr;
        uv_timer_start(&thr->sweep, on_sweep, NET_SWEEP_MS, NET_SWEEP_MS);
        /* Messages posted during a loop pass reach the workers in one batch (sched.h). */
        sched_defer_wakes();
        uv_prepare_init(&thr->loop, &thr->flush_prepare);
        thr->flush_prepare.data = thr;
        uv_prepare_start(&thr->flush_prepare, on_flush_prepare);
        uv_unref((uv_handle_t *)&thr->flush_prepare);
        uv_check_init(&thr->loop, &thr->flush_check);
        thr->flush_check.data = thr;
        uv_check_start(&thr->flush_check, on_flush_check);
        uv_unref((uv_handle_t *)&thr->flush_check);
    }
    sync->rc = rc;
    sem_post(&sync->done);
    if (rc == 0)
        uv_run(&thr->loop, UV_RUN_DEFAULT);
    /* Step two of the teardown: the context is freed once its handles have closed. */
    if (thr->ctx) {
        lws_context_destroy(thr->ctx);
        uv_run(&thr->loop, UV_RUN_DEFAULT);
        thr->ctx = NULL;
    }
    sched_flush(); /* closes posted during the teardown */
    uv_loop_close(&thr->loop);
    return NULL;
}

/*
 * SO_REUSEPORT would let a second switchboard (same user) bind our port silently and steal half
 * the connections. A plain socket bound first proves the port is free (or picks one for port 0);
 * it is closed before the SO_REUSEPORT group binds the same port.
 */
static int probe_port(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    close(fd);
    return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                         : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* Binds one SO_REUSEPORT listening socket; port 0 picks a free port (stored in g_net.port). */
static int bind_listener(const char *host, int port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char ports[16];
    snprintf(ports, sizeof(ports), "%d", port);
    int gai = getaddrinfo(host, ports, &hints, &res);
    if (gai != 0)
        return -EADDRNOTAVAIL;
    if (g_net.port == 0) { /* the first socket of the group */
        int p = probe_port(res);
        if (p < 0) {
            freeaddrinfo(res);
            return p;
        }
        struct sockaddr *sa = res->ai_addr;
        if (sa->sa_family == AF_INET)
            ((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)p);
        else
            ((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)p);
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(res);
        return -errno;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
        int e = errno;
        close(fd);
        freeaddrinfo(res);
        return -e;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    g_net.port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                               : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

void net_add_http_route(const net_http_route_t *r)
{
    if (g_net.n_http_routes < NET_MAX_ROUTES)
        g_net.http_routes[g_net.n_http_routes++] = r;
}

void net_add_ws_route(const net_ws_route_t *r)
{
    if (g_net.n_ws_routes < NET_MAX_ROUTES)
        g_net.ws_routes[g_net.n_ws_routes++] = r;
}

int net_port(void)
{
    return g_net.port;
}

/* libwebsockets' own error lines go through our log, so that they take its format (a JSON object
 * per line in json mode) instead of lws's plain text on stderr. Thread: any. */
static void lws_log_line(int level, const char *line)
{
    (void)level;
    char text[256];
    str_copy(text, line, sizeof(text));
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        text[--n] = '\0';
    log_error("lws.error", LOG_S("line", text));
}

int net_start(const net_config_t *cfg)
{
    g_net.cfg = *cfg;
    g_net.tls = cfg->tls_cert && cfg->tls_key;
    g_net.n_threads = cfg->threads > 0 ? cfg->threads : 1;
    g_net.threads = xcalloc((size_t)g_net.n_threads, sizeof(netthr_t));
    lws_set_log_level(LLL_ERR, lws_log_line);
    peerlim_init(cfg->connections_per_ip > 0 ? (uint32_t)cfg->connections_per_ip : 0);
    fetch_global_init(); /* before any thread can touch curl; cleaned up at the end of net_stop() */

    int port = cfg->port;
    for (int i = 0; i < g_net.n_threads; i++) {
        netthr_t *thr = &g_net.threads[i];
        thr->idx = i;
        thr->listen_fd = -1;
        thr->wake_fd = -1;
    }
    for (int i = 0; i < g_net.n_threads; i++) {
        netthr_t *thr = &g_net.threads[i];
        if (!cfg->no_listen) {
            int fd = bind_listener(cfg->host, port);
            if (fd < 0) {
                net_stop();
                return fd;
            }
            port = g_net.port; /* later threads share the port the first one got */
            thr->listen_fd = fd;
        }
        thr->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        mbox_init(&thr->inbox, UINT32_MAX / 4);
        uv_loop_init(&thr->loop);
    }
    for (int i = 0; i < g_net.n_threads; i++) {
        netthr_t *thr = &g_net.threads[i];
        start_sync_t sync = {.thr = thr};
        sem_init(&sync.done, 0, 0);
        pthread_create(&thr->th, NULL, thread_main, &sync);
        sem_wait(&sync.done);
        sem_destroy(&sync.done);
        char name[16];
        snprintf(name, sizeof(name), "sb-net-%u", (unsigned)i % 100u);
        pthread_setname_np(thr->th, name);
        if (sync.rc != 0) {
            pthread_join(thr->th, NULL);
            thr->th = 0;
            net_stop();
            return sync.rc;
        }
    }
    redis_global_open(); /* every thread has its connection (and its inbox) now */
    pg_global_open();
    return 0;
}

bool net_draining(void)
{
    return ck_pr_load_8((uint8_t *)&g_net.draining) != 0;
}

void net_drain(void)
{
    ck_pr_store_8((uint8_t *)&g_net.draining, 1);
    for (int i = 0; i < g_net.n_threads; i++)
        net_post_thread(&g_net.threads[i], net_out_new(0, OUT_DRAIN, 0));
}

int net_ws_open_count(void)
{
    int n = 0;
    for (int i = 0; i < g_net.n_threads; i++)
        n += ck_pr_load_int(&g_net.threads[i].ws_open);
    return n;
}

void net_stop(void)
{
    if (g_net.threads == NULL)
        return;
    /* First, while the threads still run: records written at shutdown reach PostgreSQL. */
    pg_global_drain();
    fetch_global_close();
    redis_global_close();
    for (int i = 0; i < g_net.n_threads; i++) {
        netthr_t *thr = &g_net.threads[i];
        if (thr->th)
            net_post_thread(thr, net_out_new(0, OUT_STOP, 0));
    }
    for (int i = 0; i < g_net.n_threads; i++) {
        netthr_t *thr = &g_net.threads[i];
        if (thr->th)
            pthread_join(thr->th, NULL);
        if (thr->listen_fd >= 0)
            close(thr->listen_fd);
        if (thr->wake_fd >= 0) {
            mbox_destroy(&thr->inbox);
            close(thr->wake_fd);
        }
        conntab_destroy(&thr->conns);
    }
    free(g_net.threads);
    g_net.threads = NULL;
    for (int i = 0; i < g_net.n_http_routes; i++)
        if (g_net.http_routes[i]->target)
            actor_unref(g_net.http_routes[i]->target);
    g_net.n_http_routes = 0;
    g_net.n_ws_routes = 0;
    peerlim_reset();
    fetch_global_cleanup(); /* after the inboxes: commands freed there clean up easy handles */
}

/*
 * switchboard-sim: command line, event loop, listening socket, the libwebsockets protocol
 * callback (which routes to sim_http.c, sim_conn.c and sim_rt.c) and shutdown.
 * Thread: the simulator's only thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "bench/sim/sim.h"
#include "bench/sim/sim_audio.h"

#define SIM_DEFAULT_PORT      9090
#define SIM_LISTEN_BACKLOG    4096
#define SIM_RX_BUFFER_BYTES   16384       /* one RECEIVE chunk: a 100 ms PCM append fits whole */
#define SIM_SERV_BUF_BYTES    32768       /* lws's per-thread read buffer */
#define SIM_MAX_MESSAGE_BYTES (24u << 20) /* 15 MiB of audio as base64, plus the envelope */
#define SIM_ID_RAND_CHARS     22
#define SIM_DEFAULT_PACE_X    4
#define SIM_MAX_PACE_X        100
#define SIM_MAX_DELAY_MS      600000
#define SIM_MAX_FAIL_COUNT    1000000000L
#define SIM_PORT_MAX          65535
#define SIM_HTTP_ERROR_MIN    400
#define SIM_HTTP_ERROR_MAX    599
#define SIM_HANDSHAKE_S       20 /* lws pending-state timeouts (handshakes, closes) */
#define SIM_KEEPALIVE_S       30 /* idle HTTP keep-alive connections */
#define SIM_MAX_TRANSCRIPTS   1000
#define SIM_MAX_FAULT_RATE    60000.0 /* faults a minute: one a millisecond */

sim_config_t g_sim_cfg;
sim_stats_t g_sim_stats;
uv_loop_t *g_sim_loop;

static struct {
    uv_loop_t loop;
    struct lws_context *ctx;
    struct lws_vhost *vh;
    int listen_fd;
    uv_poll_t listen_poll;
    uv_signal_t sig_int, sig_term;
    bool stopping;
    sim_conn_t *adopting; /* the connection being adopted, to notice lws freeing it */
    bool adopting_freed;
    uint64_t rng[2];
} g;

/* ---- Identifiers ----------------------------------------------------------------------------- */

/* xorshift128+: fast, and unique enough for ids within a test run (not for secrets). */
static uint64_t rng_next(void)
{
    uint64_t s1 = g.rng[0];
    const uint64_t s0 = g.rng[1];
    g.rng[0] = s0;
    s1 ^= s1 << 23;
    g.rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return g.rng[1] + s0;
}

void sim_id(char *dst, const char *prefix)
{
    static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    size_t pl = strlen(prefix);
    if (pl > SIM_ID_MAX - SIM_ID_RAND_CHARS - 1)
        pl = SIM_ID_MAX - SIM_ID_RAND_CHARS - 1;
    memcpy(dst, prefix, pl);
    uint64_t r = rng_next();
    for (int i = 0; i < SIM_ID_RAND_CHARS; i++) {
        if (i == SIM_ID_RAND_CHARS / 2)
            r = rng_next();
        dst[pl + (size_t)i] = alphabet[r % 62];
        r /= 62;
    }
    dst[pl + SIM_ID_RAND_CHARS] = '\0';
}

/* ---- The libwebsockets protocol -------------------------------------------------------------- */

static int on_receive(struct lws *wsi, sim_conn_t *c, const void *in, size_t len)
{
    if (c->state != SIM_CONN_WS || c->rt == NULL)
        return 0; /* closing: ignore the rest */
    bool first = lws_is_first_fragment(wsi);
    bool last = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
    bool binary = lws_frame_is_binary(wsi);
    if (first && last) {
        /* The usual case: the whole message is in this chunk; no copy. */
        if (binary)
            sim_rt_on_binary(c, len);
        else
            sim_rt_on_text(c, in, len);
        return 0;
    }
    if (first)
        sbuf_reset(&c->rx);
    if (c->rx.len + len + lws_remaining_packet_payload(wsi) > SIM_MAX_MESSAGE_BYTES) {
        c->state = SIM_CONN_CLOSING;
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
                         (unsigned char *)"message too big", 15);
        return -1;
    }
    sbuf_append(&c->rx, in, len);
    if (!last)
        return 0;
    if (binary)
        sim_rt_on_binary(c, c->rx.len);
    else
        sim_rt_on_text(c, c->rx.data, c->rx.len);
    sbuf_reset(&c->rx);
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    sim_conn_t *c = lws_get_opaque_user_data(wsi);
    if (c && c->wsi == NULL && reason != LWS_CALLBACK_WSI_DESTROY)
        c->wsi = wsi; /* a callback from inside lws_adopt_*() */
    switch (reason) {
    case LWS_CALLBACK_WSI_DESTROY:
        if (c == NULL)
            return 0;
        if (c == g.adopting)
            g.adopting_freed = true;
        lws_set_opaque_user_data(wsi, NULL);
        if (c->rt)
            sim_rt_close(c);
        sim_conn_destroy(c);
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        return 0;
    default:
        break;
    }
    if (c == NULL)
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        c->state = SIM_CONN_WS;
        sim_rt_open(c);
        c->direct_ok = true;
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return on_receive(wsi, c, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return sim_conn_writeable(c);
    case LWS_CALLBACK_CLOSED:
        c->state = SIM_CONN_CLOSING;
        if (c->rt)
            sim_rt_close(c);
        return 0;
    default:
        break;
    }
    int rc;
    if (sim_http_callback(wsi, reason, c, in, len, &rc))
        return rc;
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    {"realtime", callback, 0, SIM_RX_BUFFER_BYTES, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- Listening and accepting ----------------------------------------------------------------- */

static void on_accept(uv_poll_t *h, int status, int events)
{
    (void)h;
    (void)events;
    if (status < 0)
        return;
    for (;;) {
        int fd = accept4(g.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                log_warn("sim.accept", LOG_S("error", strerror(errno)));
            return;
        }
        if (g.stopping) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        sim_conn_t *c = sim_conn_new();
        lws_adopt_desc_t info;
        memset(&info, 0, sizeof(info));
        info.vh = g.vh;
        info.type = LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP;
        info.fd.sockfd = fd;
        info.opaque = c;
        g.adopting = c;
        g.adopting_freed = false;
        struct lws *wsi = lws_adopt_descriptor_vhost_via_info(&info); /* closes fd on failure */
        g.adopting = NULL;
        if (wsi == NULL) {
            if (!g.adopting_freed)
                sim_conn_destroy(c);
            log_warn("sim.adopt", LOG_S("error", "libwebsockets refused the socket"));
        } else {
            c->wsi = wsi;
        }
    }
}

/* Binds the listening socket; returns its fd and the bound port in *port, or -errno. */
static int listen_on(const char *host, int *port)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", *port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "switchboard-sim: cannot resolve --host %s: %s\n", host, gai_strerror(rc));
        return -EINVAL;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        freeaddrinfo(res);
        return rc;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, SIM_LISTEN_BACKLOG) < 0) {
        rc = -errno;
        close(fd);
        freeaddrinfo(res);
        return rc;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                           : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

/* A thousand sessions need more descriptors than the usual soft limit of 1024. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* ---- Shutdown -------------------------------------------------------------------------------- */

/* Step one of the two-step teardown of a context on a foreign loop (reference 1.2). */
static void on_signal(uv_signal_t *h, int signum)
{
    (void)h;
    if (g.stopping)
        return;
    g.stopping = true;
    log_info("sim.stop", LOG_I("signal", signum));
    uv_poll_stop(&g.listen_poll);
    uv_close((uv_handle_t *)&g.listen_poll, NULL);
    uv_close((uv_handle_t *)&g.sig_int, NULL);
    uv_close((uv_handle_t *)&g.sig_term, NULL);
    sim_fault_stop();
    lws_context_destroy(g.ctx);
}

/* ---- Command line ---------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: switchboard-sim [--port 9090] [--host 127.0.0.1] [--mode agent|echo]\n"
            "                       [--refuse] [--refuse-status 401|403|404|503] [--delay-ms N]\n"
            "                       [--drop-after-ms N] [--reject-session-update]\n"
            "                       [--expire-after-ms N] [--chat-fail 429|429-quota|500|401]\n"
            "                       [--chat-fail-count N] [--chat-delay-ms N] [--pace X] "
            "[--quiet]\n"
            "                       [--transcripts \"first turn|second turn|...\"] "
            "[--text-answers]\n"
            "                       [--faults PER_MIN [--fault-kinds drop,expire,429,500]\n"
            "                        [--fault-seed N]]\n"
            "\n"
            "Offline simulator of the OpenAI Realtime (GA) and Chat Completions APIs.\n"
            "  GET  /v1/realtime?model=M     WebSocket (Authorization: Bearer <anything>)\n"
            "  POST /v1/chat/completions     deterministic tool rules; a json_schema named\n"
            "                                tenant_config (switchboard-onboard) is answered from\n"
            "                                the brief's text line by line: \"Company: X\",\n"
            "                                \"Phone: X\", \"Email: X\", \"Timezone: X\";\n"
            "                                services \"Oil change - 30 min - $50-80\" (em/en\n"
            "                                dashes and | too); hours \"Mon-Fri 08:00-18:00\",\n"
            "                                \"Sun closed\"; the rest is the brief (the rules\n"
            "                                are in bench/sim/sim_extract.h)\n"
            "  GET  /sim/events, DELETE /sim/events, GET /sim/stats   what clients sent\n"
            "--mode echo returns every input_audio_buffer.append as response.output_audio.delta;\n"
            "--mode agent (default) runs a VAD and answers with synthetic speech and tool calls.\n"
            "--pace X sends agent audio at X times real time (default %d).\n"
            "--text-answers: in echo mode, text turns are answered in text, not speech (a load\n"
            "run's tool-busy sessions then add no audio).\n"
            "--transcripts gives spoken turns their words (agent mode, no speech recognition\n"
            "here): the Nth turn the VAD detects in a session gets the Nth text as its input\n"
            "transcription (deltas a word at a time, then completed) and is answered with the\n"
            "rules of a typed turn (tools included). An empty entry, and every turn after the\n"
            "list, gets the made-up \"(caller spoke for N seconds)\" and a greeting.\n"
            "--faults PER_MIN injects faults at random, PER_MIN a minute on average (a decimal\n"
            "number; exponential gaps), each kind in turn from a shuffled bag of --fault-kinds\n"
            "(default all): drop a configured Realtime connection at random without a close\n"
            "frame, expire one (error session_expired, close 1001), answer the next Chat\n"
            "Completions request with 429 rate_limit_exceeded or with 500. Each fault is logged\n"
            "(sim.fault, even with --quiet) and counted in GET /sim/stats (\"faults\").\n"
            "--fault-seed N replays the sequence of kinds and gaps (default: from the clock;\n"
            "printed at start).\n",
            SIM_DEFAULT_PACE_X);
}

static int parse_uint(const char *opt, const char *s, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < 0 || v > max) {
        fprintf(stderr, "switchboard-sim: %s wants an integer from 0 to %ld, not '%s'\n", opt, max,
                s);
        return -1;
    }
    *out = v;
    return 0;
}

/* A decimal number in (0, max], such as a rate. */
static int parse_rate(const char *opt, const char *s, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !(v > 0) || v > max) {
        fprintf(stderr, "switchboard-sim: %s wants a number above 0 and at most %.0f, not '%s'\n",
                opt, max, s);
        return -1;
    }
    *out = v;
    return 0;
}

enum {
    OPT_PORT = 256,
    OPT_HOST,
    OPT_MODE,
    OPT_REFUSE,
    OPT_REFUSE_STATUS,
    OPT_DELAY,
    OPT_DROP,
    OPT_REJECT,
    OPT_EXPIRE,
    OPT_CHAT_FAIL,
    OPT_CHAT_FAIL_COUNT,
    OPT_CHAT_DELAY,
    OPT_PACE,
    OPT_QUIET,
    OPT_TRANSCRIPTS,
    OPT_TEXT_ANSWERS,
    OPT_FAULTS,
    OPT_FAULT_KINDS,
    OPT_FAULT_SEED,
    OPT_HELP,
};

static void free_transcripts(void)
{
    for (size_t i = 0; i < g_sim_cfg.n_transcripts; i++)
        free(g_sim_cfg.transcripts[i]);
    free(g_sim_cfg.transcripts);
    g_sim_cfg.transcripts = NULL;
    g_sim_cfg.n_transcripts = 0;
}

/* --transcripts "a|b|…": one entry per '|'-separated text, trimmed of spaces. */
static int parse_transcripts(const char *s)
{
    free_transcripts();
    size_t n = 1;
    for (const char *p = s; *p; p++)
        n += *p == '|';
    if (n > SIM_MAX_TRANSCRIPTS) {
        fprintf(stderr, "switchboard-sim: --transcripts takes at most %d texts\n",
                SIM_MAX_TRANSCRIPTS);
        return -1;
    }
    g_sim_cfg.transcripts = xcalloc(n, sizeof(char *));
    for (const char *p = s;; p++) {
        size_t len = strcspn(p, "|");
        const char *a = p, *b = p + len;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        g_sim_cfg.transcripts[g_sim_cfg.n_transcripts++] = xstrndup(a, (size_t)(b - a));
        p += len;
        if (*p == '\0')
            break;
    }
    return 0;
}

static int parse_args(int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, OPT_PORT},
        {"host", required_argument, NULL, OPT_HOST},
        {"mode", required_argument, NULL, OPT_MODE},
        {"refuse", no_argument, NULL, OPT_REFUSE},
        {"refuse-status", required_argument, NULL, OPT_REFUSE_STATUS},
        {"delay-ms", required_argument, NULL, OPT_DELAY},
        {"drop-after-ms", required_argument, NULL, OPT_DROP},
        {"reject-session-update", no_argument, NULL, OPT_REJECT},
        {"expire-after-ms", required_argument, NULL, OPT_EXPIRE},
        {"chat-fail", required_argument, NULL, OPT_CHAT_FAIL},
        {"chat-fail-count", required_argument, NULL, OPT_CHAT_FAIL_COUNT},
        {"chat-delay-ms", required_argument, NULL, OPT_CHAT_DELAY},
        {"pace", required_argument, NULL, OPT_PACE},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"transcripts", required_argument, NULL, OPT_TRANSCRIPTS},
        {"text-answers", no_argument, NULL, OPT_TEXT_ANSWERS},
        {"faults", required_argument, NULL, OPT_FAULTS},
        {"fault-kinds", required_argument, NULL, OPT_FAULT_KINDS},
        {"fault-seed", required_argument, NULL, OPT_FAULT_SEED},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    sim_config_t *cfg = &g_sim_cfg;
    str_copy(cfg->host, "127.0.0.1", sizeof(cfg->host));
    cfg->port = SIM_DEFAULT_PORT;
    cfg->mode = SIM_MODE_AGENT;
    cfg->refuse_status = 503;
    cfg->chat_fail_count = -1;
    cfg->pace_x = SIM_DEFAULT_PACE_X;
    cfg->fault_kinds = (1u << SIM_FAULT_KINDS) - 1;
    cfg->fault_seed = clock_now_ns() ^ ((uint64_t)getpid() << 40);
    long v;
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        const char *name = o >= OPT_PORT && o <= OPT_HELP ? opts[o - OPT_PORT].name : "?";
        char flag[48];
        snprintf(flag, sizeof(flag), "--%s", name);
        switch (o) {
        case OPT_PORT:
            if (parse_uint(flag, optarg, SIM_PORT_MAX, &v))
                return -1;
            cfg->port = (int)v;
            break;
        case OPT_HOST:
            str_copy(cfg->host, optarg, sizeof(cfg->host));
            break;
        case OPT_MODE:
            if (strcmp(optarg, "agent") == 0) {
                cfg->mode = SIM_MODE_AGENT;
            } else if (strcmp(optarg, "echo") == 0) {
                cfg->mode = SIM_MODE_ECHO;
            } else {
                fprintf(stderr, "switchboard-sim: --mode is agent or echo, not '%s'\n", optarg);
                return -1;
            }
            break;
        case OPT_REFUSE:
            cfg->refuse = true;
            break;
        case OPT_REFUSE_STATUS:
            if (parse_uint(flag, optarg, SIM_HTTP_ERROR_MAX, &v))
                return -1;
            if (v < SIM_HTTP_ERROR_MIN) {
                fprintf(stderr, "switchboard-sim: --refuse-status wants 400..599 (401, 403, 404 "
                                "or 503)\n");
                return -1;
            }
            cfg->refuse_status = (int)v;
            cfg->refuse = true;
            break;
        case OPT_DELAY:
        case OPT_DROP:
        case OPT_EXPIRE:
        case OPT_CHAT_DELAY:
            if (parse_uint(flag, optarg, SIM_MAX_DELAY_MS, &v))
                return -1;
            *(o == OPT_DELAY    ? &cfg->delay_ms
              : o == OPT_DROP   ? &cfg->drop_after_ms
              : o == OPT_EXPIRE ? &cfg->expire_after_ms
                                : &cfg->chat_delay_ms) = (uint32_t)v;
            break;
        case OPT_REJECT:
            cfg->reject_session_update = true;
            break;
        case OPT_CHAT_FAIL:
            if (strcmp(optarg, "429") == 0) {
                cfg->chat_fail = SIM_CHAT_FAIL_429;
            } else if (strcmp(optarg, "429-quota") == 0) {
                cfg->chat_fail = SIM_CHAT_FAIL_QUOTA;
            } else if (strcmp(optarg, "500") == 0) {
                cfg->chat_fail = SIM_CHAT_FAIL_500;
            } else if (strcmp(optarg, "401") == 0) {
                cfg->chat_fail = SIM_CHAT_FAIL_401;
            } else {
                fprintf(stderr,
                        "switchboard-sim: --chat-fail is 429, 429-quota, 500 or 401, "
                        "not '%s'\n",
                        optarg);
                return -1;
            }
            break;
        case OPT_CHAT_FAIL_COUNT:
            if (parse_uint(flag, optarg, SIM_MAX_FAIL_COUNT, &v))
                return -1;
            cfg->chat_fail_count = v;
            break;
        case OPT_PACE:
            if (parse_uint(flag, optarg, SIM_MAX_PACE_X, &v) || v == 0) {
                fprintf(stderr, "switchboard-sim: --pace wants 1..%d\n", SIM_MAX_PACE_X);
                return -1;
            }
            cfg->pace_x = (uint32_t)v;
            break;
        case OPT_QUIET:
            cfg->quiet = true;
            break;
        case OPT_TEXT_ANSWERS:
            cfg->text_answers = true;
            break;
        case OPT_TRANSCRIPTS:
            if (parse_transcripts(optarg))
                return -1;
            break;
        case OPT_FAULTS:
            if (parse_rate(flag, optarg, SIM_MAX_FAULT_RATE, &cfg->faults_per_min))
                return -1;
            break;
        case OPT_FAULT_KINDS:
            if (sim_fault_parse_kinds(optarg, &cfg->fault_kinds)) {
                fprintf(stderr,
                        "switchboard-sim: --fault-kinds is a comma list of drop, expire, 429 "
                        "and 500, not '%s'\n",
                        optarg);
                return -1;
            }
            break;
        case OPT_FAULT_SEED: {
            char *end;
            errno = 0;
            unsigned long long seed = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end != '\0' || optarg[0] == '-') {
                fprintf(stderr,
                        "switchboard-sim: --fault-seed wants an unsigned integer, not "
                        "'%s'\n",
                        optarg);
                return -1;
            }
            cfg->fault_seed = seed;
            break;
        }
        case OPT_HELP:
            usage(stdout);
            exit(0);
        default:
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "switchboard-sim: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}

/* ---- main ------------------------------------------------------------------------------------ */

static int create_context(void)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    void *loops[1] = {&g.loop};
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.protocols = protocols;
    /* No info.extensions: permessage-deflate stalls on a libuv loop (reference section 4). */
    info.options = LWS_SERVER_OPTION_LIBUV;
    info.foreign_loops = loops;
    info.vhost_name = "default";
    info.pcontext = &g.ctx; /* lws NULLs it when the teardown has finished */
    info.pt_serv_buf_size = SIM_SERV_BUF_BYTES;
    info.timeout_secs = SIM_HANDSHAKE_S;
    info.keepalive_timeout = SIM_KEEPALIVE_S;
    g.ctx = lws_create_context(&info);
    if (g.ctx == NULL)
        return -ENOMEM;
    /* With a foreign loop a failed create still returns a context (reference 1.2). */
    g.vh = lws_get_vhost_by_name(g.ctx, "default");
    return g.vh ? 0 : -EINVAL;
}

int main(int argc, char **argv)
{
    if (parse_args(argc, argv) != 0) {
        usage(stderr);
        return 2;
    }
    log_init(g_sim_cfg.quiet ? LOG_WARN : LOG_INFO, LOG_FORMAT_TEXT);
    lws_set_log_level(LLL_ERR, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    uint64_t seed = clock_now_ns() ^ ((uint64_t)getpid() << 32);
    g.rng[0] = seed | 1;
    g.rng[1] = seed * 0x9E3779B97F4A7C15ULL + 0x7F4A7C15;
    sim_audio_init();

    int port = g_sim_cfg.port;
    g.listen_fd = listen_on(g_sim_cfg.host, &port);
    if (g.listen_fd < 0) {
        fprintf(stderr, "switchboard-sim: cannot listen on %s:%d: %s\n", g_sim_cfg.host,
                g_sim_cfg.port, strerror(-g.listen_fd));
        return 1;
    }
    g_sim_cfg.port = port;
    uv_loop_init(&g.loop);
    g_sim_loop = &g.loop;
    int rc = create_context();
    if (rc != 0) {
        fprintf(stderr, "switchboard-sim: libwebsockets failed to start\n");
        return 1;
    }
    uv_poll_init(&g.loop, &g.listen_poll, g.listen_fd);
    uv_poll_start(&g.listen_poll, UV_READABLE, on_accept);
    uv_signal_init(&g.loop, &g.sig_int);
    uv_signal_start(&g.sig_int, on_signal, SIGINT);
    uv_signal_init(&g.loop, &g.sig_term);
    uv_signal_start(&g.sig_term, on_signal, SIGTERM);

    sim_fault_start();
    bool v6 = strchr(g_sim_cfg.host, ':') != NULL;
    fprintf(stderr, "switchboard-sim listening on http://%s%s%s:%d/ mode=%s\n", v6 ? "[" : "",
            g_sim_cfg.host, v6 ? "]" : "", port,
            g_sim_cfg.mode == SIM_MODE_ECHO ? "echo" : "agent");
    fflush(stderr);

    uv_run(&g.loop, UV_RUN_DEFAULT);
    /* Step two: the context is freed once its handles have closed. */
    if (g.ctx) {
        lws_context_destroy(g.ctx);
        uv_run(&g.loop, UV_RUN_DEFAULT);
    }
    close(g.listen_fd);
    uv_loop_close(&g.loop);
    sim_record_shutdown();
    sim_fault_shutdown();
    free_transcripts();
    return 0;
}

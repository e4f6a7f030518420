/* Command line of switchboard-bench; see cli.h. */
#include "bench/loadgen/cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/util.h"

#define DURATION_MAX_S    86400.0
#define FRAME_MS_MAX      1000
#define PORT_MAX          65535
#define TWILIO_RATE_HZ    8000 /* Media Streams: μ-law at 8 kHz */
#define TWILIO_VOICE_PATH "/twilio/voice"

bench_cfg_t g_cfg;

static const char usage_text[] =
    "usage: switchboard-bench [--url http://127.0.0.1:8080] --sessions N --duration S\n"
    "                         [--ramp S] [--rate 24000] [--frame-ms 20] [--threads T]\n"
    "                         [--direct ws://127.0.0.1:9090/v1/realtime] [--no-ready]\n"
    "                         [--pid PID] [--json FILE] [--tool-storm M [--storm-text T]]\n"
    "                         [--twilio [--twilio-token T] [--public-url U]]\n"
    "\n"
    "Drives N voice sessions in real time and measures connect time and audio round trips\n"
    "(run the simulator in echo mode behind the service).\n"
    "  --url U        the service: POST U/api/sessions, then ws://…/ws (default " CLI_URL_DEFAULT
    ")\n"
    "  --sessions N   sessions to run (1..100000)\n"
    "  --duration S   seconds of audio each session streams\n"
    "  --ramp S       start the sessions evenly over S seconds (default min(S/4, 5))\n"
    "  --rate R       PCM16 sample rate: 16000, 24000 or 48000 (default 24000)\n"
    "  --frame-ms F   one frame every F ms (default 20)\n"
    "  --threads T    client threads, each with its own event loop (default: one per 250\n"
    "                 sessions, at most the online CPUs)\n"
    "  --direct URL   skip the service: talk the OpenAI Realtime GA protocol to URL (the floor)\n"
    "  --no-ready     stream as soon as the WebSocket opens, without waiting for session.ready\n"
    "  --pid PID      report this process's CPU time and memory (the service)\n"
    "  --json FILE    also write the results as one JSON object to FILE\n"
    "  --tool-storm M also run M sessions that keep supervisor runs busy for the whole run: each\n"
    "                 says --storm-text, waits for the getNextResponseFromSupervisor call to end\n"
    "                 and for the spoken answer, and says it again (audio isolation, SPEC 3)\n"
    "  --storm-text T what the storm sessions say (the default makes the simulator's chat\n"
    "                 model call tools every round: \"" CLI_STORM_TEXT_DEFAULT "\")\n"
    "  --twilio       phone calls as Twilio makes them: a signed POST U/twilio/voice, the TwiML's\n"
    "                 stream, then Media Streams (μ-law 8 kHz, marks echoed as played); with\n"
    "                 --direct, the same μ-law as audio/pcmu straight to the simulator (the "
    "floor)\n"
    "  --twilio-token T  the auth token that signs the webhook (default:\n"
    "                 $SWITCHBOARD_TWILIO_AUTH_TOKEN, as the service reads it)\n"
    "  --public-url U the URL Twilio signs, as the service knows itself (default:\n"
    "                 $SWITCHBOARD_PUBLIC_URL, else --url)\n"
    "Exit status: 0 run completed (failures are reported), 1 nothing connected, 2 usage error,\n"
    "130 interrupted (SIGINT/SIGTERM; what was measured so far is still reported).\n";

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("switchboard-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n\n", stderr);
    va_end(ap);
    fputs(usage_text, stderr);
    return 2;
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}

static int parse_seconds(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(v) || v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}

/*
 * Splits scheme://host[:port][/path] into its parts. host may be a bracketed IPv6 literal.
 * The path keeps its query; it is "" when absent. Returns 0 or -EINVAL.
 */
static int split_url(const char *url, char *scheme, size_t scheme_n, char *host, size_t host_n,
                     int *port, char *path, size_t path_n)
{
    const char *sep = strstr(url, "://");
    if (sep == NULL || (size_t)(sep - url) >= scheme_n)
        return -EINVAL;
    memcpy(scheme, url, (size_t)(sep - url));
    scheme[sep - url] = '\0';
    const char *h = sep + 3;
    const char *h_end;
    const char *after;
    if (*h == '[') {
        h_end = strchr(h, ']');
        if (h_end == NULL)
            return -EINVAL;
        h++;
        after = h_end + 1;
    } else {
        h_end = h + strcspn(h, ":/?");
        after = h_end;
    }
    if (h_end == h || (size_t)(h_end - h) >= host_n)
        return -EINVAL;
    memcpy(host, h, (size_t)(h_end - h));
    host[h_end - h] = '\0';
    *port = 0;
    if (*after == ':') {
        char *end;
        long p = strtol(after + 1, &end, 10);
        if (end == after + 1 || p < 1 || p > PORT_MAX)
            return -EINVAL;
        *port = (int)p;
        after = end;
    }
    if (*after != '\0' && *after != '/' && *after != '?')
        return -EINVAL;
    if (strlen(after) >= path_n)
        return -EINVAL;
    str_copy(path, after, path_n);
    return 0;
}

/* Resolves host once, before any event loop runs (prefers IPv4), into g_cfg.addr with port. */
static int resolve(const char *host, int port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0)
        return usage_error("cannot resolve %s: %s", host, gai_strerror(rc));
    const struct addrinfo *pick = res;
    for (const struct addrinfo *a = res; a; a = a->ai_next)
        if (a->ai_family == AF_INET) {
            pick = a;
            break;
        }
    memcpy(&g_cfg.addr, pick->ai_addr, pick->ai_addrlen);
    g_cfg.addr_len = pick->ai_addrlen;
    if (pick->ai_family == AF_INET)
        ((struct sockaddr_in *)&g_cfg.addr)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)&g_cfg.addr)->sin6_port = htons((uint16_t)port);
    freeaddrinfo(res);
    return 0;
}

static int derive_endpoints(void)
{
    char scheme[16], path[1000];
    const char *url = g_cfg.direct ? g_cfg.direct : g_cfg.url;
    if (split_url(url, scheme, sizeof(scheme), g_cfg.host, sizeof(g_cfg.host), &g_cfg.port, path,
                  sizeof(path)) != 0)
        return usage_error("malformed URL: %s", url);
    bool is_v6 = strchr(g_cfg.host, ':') != NULL;
    if (g_cfg.direct) {
        if (strcmp(scheme, "ws") != 0 && strcmp(scheme, "wss") != 0)
            return usage_error("--direct needs a ws:// or wss:// URL, not %s", url);
        g_cfg.tls = strcmp(scheme, "wss") == 0;
        snprintf(g_cfg.ws_path, sizeof(g_cfg.ws_path), "%s%s", path[0] == '/' ? "" : "/", path);
    } else {
        if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
            return usage_error("--url needs an http:// or https:// URL, not %s", url);
        if (strchr(path, '?'))
            return usage_error("--url takes no query: %s", url);
        g_cfg.tls = strcmp(scheme, "https") == 0;
        size_t plen = strlen(path);
        while (plen > 0 && path[plen - 1] == '/')
            path[--plen] = '\0';
        snprintf(g_cfg.ws_path, sizeof(g_cfg.ws_path), "%s/ws", path);
        size_t ulen = strlen(url);
        while (ulen > 0 && url[ulen - 1] == '/')
            ulen--;
        snprintf(g_cfg.mint_url, sizeof(g_cfg.mint_url), "%.*s%s", (int)ulen, url,
                 g_cfg.twilio ? TWILIO_VOICE_PATH : "/api/sessions");
        if (g_cfg.twilio) {
            size_t plen_pub = strlen(g_cfg.public_url);
            while (plen_pub > 0 && g_cfg.public_url[plen_pub - 1] == '/')
                plen_pub--;
            snprintf(g_cfg.signed_url, sizeof(g_cfg.signed_url), "%.*s" TWILIO_VOICE_PATH,
                     (int)plen_pub, g_cfg.public_url);
        }
    }
    bool explicit_port = g_cfg.port != 0;
    if (!explicit_port)
        g_cfg.port = g_cfg.tls ? 443 : 80;
    if (explicit_port)
        snprintf(g_cfg.host_hdr, sizeof(g_cfg.host_hdr), is_v6 ? "[%s]:%d" : "%s:%d", g_cfg.host,
                 g_cfg.port);
    else
        snprintf(g_cfg.host_hdr, sizeof(g_cfg.host_hdr), is_v6 ? "[%s]" : "%s", g_cfg.host);
    return resolve(g_cfg.host, g_cfg.port);
}

/* --twilio: μ-law at 8 kHz, the webhook and its signing. Returns 0 or a usage error (2). */
static int twilio_options(bool have_rate)
{
    if (have_rate)
        return usage_error("--twilio sends μ-law at 8000 Hz: --rate does not apply");
    if (g_cfg.no_ready || g_cfg.storm)
        return usage_error("--twilio takes neither --no-ready nor --tool-storm");
    g_cfg.rate = TWILIO_RATE_HZ;
    if (g_cfg.direct) {
        if (g_cfg.twilio_token || g_cfg.public_url)
            return usage_error(
                "--twilio-token and --public-url apply to the service, not --direct");
        return 0;
    }
    if (g_cfg.twilio_token == NULL)
        g_cfg.twilio_token = getenv("SWITCHBOARD_TWILIO_AUTH_TOKEN");
    if (g_cfg.twilio_token == NULL || g_cfg.twilio_token[0] == '\0')
        return usage_error("--twilio needs the auth token that signs the webhook: --twilio-token "
                           "or SWITCHBOARD_TWILIO_AUTH_TOKEN");
    if (g_cfg.public_url == NULL)
        g_cfg.public_url = getenv("SWITCHBOARD_PUBLIC_URL");
    if (g_cfg.public_url == NULL || g_cfg.public_url[0] == '\0')
        g_cfg.public_url = g_cfg.url;
    return 0;
}

static void make_run_id(void)
{
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    uint64_t x = clock_wall_ms() * 1000003u ^ (uint64_t)getpid() ^ clock_now_ns();
    for (int i = 0; i < 6; i++) {
        g_cfg.run_id[i] = digits[x % 36];
        x /= 36;
    }
    g_cfg.run_id[6] = '\0';
}

int cli_parse(int argc, char **argv)
{
    memset(&g_cfg, 0, sizeof(g_cfg));
    g_cfg.url = CLI_URL_DEFAULT;
    g_cfg.rate = CLI_RATE_DEFAULT;
    g_cfg.frame_ms = CLI_FRAME_MS_DEFAULT;
    g_cfg.threads = 0; /* not given: from the sessions, below */
    g_cfg.ramp_s = -1;
    g_cfg.storm_text = CLI_STORM_TEXT_DEFAULT;
    bool have_sessions = false, have_duration = false, have_storm_text = false, have_rate = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage_text, stdout);
            return 1;
        }
        if (strcmp(a, "--no-ready") == 0) {
            g_cfg.no_ready = true;
            continue;
        }
        if (strcmp(a, "--twilio") == 0) {
            g_cfg.twilio = true;
            continue;
        }
        static const char *const with_value[] = {
            "--url",        "--sessions",   "--duration",     "--ramp",       "--rate",
            "--frame-ms",   "--threads",    "--direct",       "--pid",        "--json",
            "--tool-storm", "--storm-text", "--twilio-token", "--public-url",
        };
        bool known = false;
        for (size_t k = 0; k < ARRAY_LEN(with_value); k++)
            known = known || strcmp(a, with_value[k]) == 0;
        if (!known)
            return usage_error("unknown option %s", a);
        if (i + 1 >= argc)
            return usage_error("%s needs a value", a);
        const char *v = argv[++i];
        long n;
        if (strcmp(a, "--url") == 0) {
            g_cfg.url = v;
        } else if (strcmp(a, "--direct") == 0) {
            g_cfg.direct = v;
        } else if (strcmp(a, "--json") == 0) {
            g_cfg.json_path = v;
        } else if (strcmp(a, "--twilio-token") == 0) {
            g_cfg.twilio_token = v;
        } else if (strcmp(a, "--public-url") == 0) {
            g_cfg.public_url = v;
        } else if (strcmp(a, "--sessions") == 0) {
            if (parse_int(v, 1, CLI_MAX_SESSIONS, &n) != 0)
                return usage_error("--sessions must be 1..%d, not %s", CLI_MAX_SESSIONS, v);
            g_cfg.sessions = (int)n;
            have_sessions = true;
        } else if (strcmp(a, "--duration") == 0) {
            if (parse_seconds(v, 0.001, DURATION_MAX_S, &g_cfg.duration_s) != 0)
                return usage_error("--duration must be seconds in (0, %.0f], not %s",
                                   DURATION_MAX_S, v);
            have_duration = true;
        } else if (strcmp(a, "--ramp") == 0) {
            if (parse_seconds(v, 0, DURATION_MAX_S, &g_cfg.ramp_s) != 0)
                return usage_error("--ramp must be seconds in [0, %.0f], not %s", DURATION_MAX_S,
                                   v);
        } else if (strcmp(a, "--rate") == 0) {
            if (parse_int(v, 1, 1000000, &n) != 0 || (n != 16000 && n != 24000 && n != 48000))
                return usage_error("--rate must be 16000, 24000 or 48000, not %s", v);
            g_cfg.rate = (int)n;
            have_rate = true;
        } else if (strcmp(a, "--frame-ms") == 0) {
            if (parse_int(v, 1, FRAME_MS_MAX, &n) != 0)
                return usage_error("--frame-ms must be 1..%d, not %s", FRAME_MS_MAX, v);
            g_cfg.frame_ms = (int)n;
        } else if (strcmp(a, "--threads") == 0) {
            if (parse_int(v, 1, CLI_MAX_THREADS, &n) != 0)
                return usage_error("--threads must be 1..%d, not %s", CLI_MAX_THREADS, v);
            g_cfg.threads = (int)n;
        } else if (strcmp(a, "--tool-storm") == 0) {
            if (parse_int(v, 0, CLI_MAX_SESSIONS, &n) != 0)
                return usage_error("--tool-storm must be 0..%d, not %s", CLI_MAX_SESSIONS, v);
            g_cfg.storm = (int)n;
        } else if (strcmp(a, "--storm-text") == 0) {
            if (v[0] == '\0' || strlen(v) > CLI_STORM_TEXT_MAX)
                return usage_error("--storm-text must be 1..%d bytes", CLI_STORM_TEXT_MAX);
            g_cfg.storm_text = v;
            have_storm_text = true;
        } else if (strcmp(a, "--pid") == 0) {
            if (parse_int(v, 1, INT32_MAX, &n) != 0)
                return usage_error("--pid must be a process id, not %s", v);
            char path[64];
            snprintf(path, sizeof(path), "/proc/%ld/stat", n);
            if (access(path, R_OK) != 0)
                return usage_error("--pid %ld: no such process", n);
            g_cfg.pid = (pid_t)n;
        }
    }
    if (!have_sessions || !have_duration)
        return usage_error("--sessions and --duration are required");
    if (g_cfg.twilio) {
        int rc = twilio_options(have_rate);
        if (rc)
            return rc;
    } else if (g_cfg.twilio_token || g_cfg.public_url) {
        return usage_error("--twilio-token and --public-url apply to --twilio only");
    }
    if (g_cfg.direct && g_cfg.rate != 24000 && !g_cfg.twilio)
        return usage_error("--direct sends audio/pcm, which is 24000 Hz only");
    if (g_cfg.direct && g_cfg.no_ready)
        return usage_error("--no-ready applies to the service, not to --direct");
    if (have_storm_text && g_cfg.storm == 0)
        return usage_error("--storm-text applies to --tool-storm sessions only");
    if (g_cfg.storm && g_cfg.direct)
        return usage_error("--tool-storm needs the service (its supervisor), not --direct");
    if (g_cfg.storm && g_cfg.no_ready)
        return usage_error("--tool-storm needs the upstream, so it cannot go with --no-ready");
    if (g_cfg.sessions + g_cfg.storm > CLI_MAX_SESSIONS)
        return usage_error("--sessions plus --tool-storm must be at most %d", CLI_MAX_SESSIONS);
    if (g_cfg.ramp_s < 0)
        g_cfg.ramp_s = fmin(g_cfg.duration_s / 4, CLI_RAMP_MAX_S);
    if (g_cfg.threads == 0) {
        /* One client thread carries a few hundred sessions at 20 ms frames without falling
         * behind (bench/loadgen/DESIGN.md); more threads than cores only compete. */
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        int want = (g_cfg.sessions + g_cfg.storm + CLI_SESSIONS_PER_THREAD - 1) /
                   CLI_SESSIONS_PER_THREAD;
        g_cfg.threads = want < 1 ? 1 : want > cpus && cpus > 0 ? (int)cpus : want;
    }
    if (g_cfg.threads > g_cfg.sessions + g_cfg.storm)
        g_cfg.threads = g_cfg.sessions + g_cfg.storm;

    g_cfg.frame_ns = (uint64_t)g_cfg.frame_ms * NS_PER_MS;
    g_cfg.frame_bytes = (uint32_t)((uint64_t)g_cfg.rate * (uint64_t)g_cfg.frame_ms / 1000u *
                                   (g_cfg.twilio ? 1u : 2u)); /* μ-law: a byte a sample */
    double frames = floor(g_cfg.duration_s * 1000.0 / g_cfg.frame_ms);
    if (frames < 1)
        return usage_error("--duration %.3f s is shorter than one %d ms frame", g_cfg.duration_s,
                           g_cfg.frame_ms);
    g_cfg.frames_per_session = (uint32_t)frames;
    make_run_id();
    return derive_endpoints();
}

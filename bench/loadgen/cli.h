/*
 * switchboard-bench command line: the run's configuration and its parser.
 *
 *   switchboard-bench --url http://127.0.0.1:8080 --sessions N --duration S [--ramp S]
 *       [--rate 24000] [--frame-ms 20] [--direct ws://127.0.0.1:9090/v1/realtime] [--no-ready]
 *       [--pid PID] [--json FILE] [--threads T] [--tool-storm M [--storm-text TEXT]]
 *       [--twilio [--twilio-token T] [--public-url U]]
 *
 * g_cfg is written by the main thread before any other thread starts and only read afterwards
 * (pthread_create orders the writes before every read), so it needs no lock.
 */
#ifndef SB_BENCH_CLI_H
#define SB_BENCH_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define CLI_URL_DEFAULT        "http://127.0.0.1:8080"
#define CLI_RATE_DEFAULT       24000
#define CLI_FRAME_MS_DEFAULT   20
#define CLI_RAMP_MAX_S         5.0 /* default ramp: min(duration / 4, this) */
#define CLI_MAX_THREADS        64
#define CLI_SESSIONS_PER_THREAD 250 /* --threads by default: one per this many sessions */
#define CLI_MAX_SESSIONS       100000
#define CLI_STORM_TEXT_MAX     4096 /* bytes: the service takes user texts of up to 4096 chars */
#define CLI_STORM_TEXT_DEFAULT "Is Monday available for an oil change? keep calling tools"

typedef struct bench_cfg {
    /* As given on the command line. */
    const char *url;    /* --url, the service's http(s) base */
    const char *direct; /* --direct ws(s)://…, or NULL */
    const char *json_path;
    int sessions;
    double duration_s;
    double ramp_s;
    int rate;
    int frame_ms;
    int threads;
    pid_t pid; /* 0 = none */
    bool no_ready;
    int storm;                /* --tool-storm: sessions that keep supervisor runs busy (0 = none) */
    const char *storm_text;   /* --storm-text: what they say each turn */
    bool twilio;              /* --twilio: phone calls (μ-law 8 kHz); with --direct, pcmu */
    const char *twilio_token; /* --twilio-token, else SWITCHBOARD_TWILIO_AUTH_TOKEN */
    const char *public_url;   /* --public-url, else SWITCHBOARD_PUBLIC_URL, else --url */

    /* Derived. */
    bool tls;       /* wss:// or https:// */
    char host[256]; /* host part of the URL, without brackets */
    int port;
    struct sockaddr_storage addr; /* host and port, resolved once: no load thread resolves */
    socklen_t addr_len;
    char host_hdr[300];    /* Host: header value */
    char ws_path[1024];    /* --direct: path and query as given; else the prefix + "/ws" */
    char mint_url[1100];   /* POST target (--twilio: the webhook); "" with --direct */
    char signed_url[1100]; /* --twilio: the webhook URL as Twilio signs it (the public URL) */
    char run_id[16];       /* distinguishes this run's session ids */
    uint64_t frame_ns;
    uint32_t frame_bytes;        /* rate * frame_ms / 1000 samples of PCM16 (--twilio: μ-law) */
    uint32_t frames_per_session; /* duration / frame_ms */
} bench_cfg_t;

extern bench_cfg_t g_cfg;

/*
 * Parses argv into g_cfg and derives the rest (resolving the host once, here, on the main
 * thread). On a usage error prints the message and the usage to stderr and returns 2; after
 * --help returns 1 (the caller exits 0); otherwise 0.
 */
int cli_parse(int argc, char **argv);

#endif

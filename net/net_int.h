/*
 * Internals shared by the files of net/: the network thread, its connections and the frames
 * waiting to be written. Everything here runs on the owning network thread unless marked.
 */
#ifndef SB_NET_NET_INT_H
#define SB_NET_NET_INT_H

#include <libwebsockets.h>
#include <stdint.h>
#include <uv.h>

#include "base/sbuf.h"
#include "mailbox/mbox.h"
#include "net/net.h"
#include "net/wsframe.h"
#include "net/wshs.h"

#define NET_ERR_WINDOW   20 /* protocol errors ... */
#define NET_ERR_WINDOW_S 10 /* ... within this many seconds close the socket 1008 */
#define NET_SWEEP_MS     5000
#define NET_INBOX_BATCH  256
#define NET_CLOSE_KILL_S 2 /* a close frame that cannot be written within this is abandoned */
#define NET_MAX_ROUTES   32
#define NET_HEADER_MAX   1024
/* Conn ids and fetch ids keep the index of their network thread in their top 8 bits. */
#define NET_ID_THREAD_SHIFT 56

/* What the inbox carries: frames for one connection, or commands for the whole thread. */
typedef enum out_kind {
    OUT_TEXT,
    OUT_BINARY,
    OUT_PING,
    OUT_CLOSE,
    OUT_PROTO_ERROR,   /* an error event that counts toward the error limit (text = code) */
    OUT_HTTP,          /* an HTTP response */
    OUT_CONNECT,       /* thread command: open an outbound WebSocket (payload: wsc_req_t) */
    OUT_FETCH,         /* thread command: start an outbound HTTP request (fetch.c) */
    OUT_FETCH_CANCEL,  /* thread command: cancel the request whose id is in `conn` */
    OUT_PROC_SPAWN,    /* thread command: start a child process (proc.c) */
    OUT_PROC_WRITE,    /* thread command: bytes for the stdin of the child whose id is `conn` */
    OUT_PROC_KILL,     /* thread command: signal `code` to the child */
    OUT_PROC_SHUTDOWN, /* thread command: close stdin, then SIGTERM, then SIGKILL (code = ms) */
    OUT_DRAIN,         /* thread command: close every WebSocket for shutdown */
    OUT_STOP,          /* thread command: tear down and leave the loop */
} out_kind_t;

typedef struct net_out {
    msg_t hdr; /* link: the inbox, then the connection's out queue */
    conn_id_t conn;
    uint8_t kind;
    uint8_t why;         /* OUT_CLOSE: a ws_close_t */
    uint16_t code;       /* HTTP status, or OUT_PROC_*'s argument */
    char text[64];       /* the HTTP Content-Type ("" = JSON), or an error code */
    char *extra_headers; /* HTTP: owned */
    size_t len;
    unsigned char buf[]; /* LWS_PRE bytes of headroom, then len bytes */
} net_out_t;

typedef enum conn_state { CONN_HTTP, CONN_WS, CONN_WS_CLOSING } conn_state_t;

/* State only outbound connections have (allocated for them alone, to keep server conns small). */
typedef struct wsc {
    uint64_t cookie;
    char *host;   /* for SNI, certificate checks and the Host header */
    char *path;   /* path and query */
    char *bearer; /* NULL = no Authorization header */
    int port;
    bool tls;
    bool opened;
    bool hs_sent; /* the upgrade request is written */
    size_t max_msg;
    char key[WSHS_KEY_CHARS + 1]; /* our Sec-WebSocket-Key */
    char *hs_buf;                 /* the response head so far (NULL once upgraded) */
    size_t hs_len;
    wsf_rx_t rx;       /* frames from the server (wsc.c: our own parser, not lws's) */
    struct tlsc *tlsc; /* wss://: our TLS over the raw socket (tlsc.h); NULL for ws:// */
    bool tls_started;  /* the ClientHello is out */
    bool tls_up;       /* the TLS handshake is done */
    uv_getaddrinfo_t dns;
} wsc_t;

typedef struct netthr netthr_t;

typedef struct conn {
    conn_id_t id;
    struct lws *wsi;
    netthr_t *thr;
    conn_state_t state;
    uint8_t raw_peer[16]; /* the socket's peer address (IPv4-mapped for IPv4) */
    bool raw_peer_known;
    net_peer_t peer; /* the client, after trusted proxies */

    /* HTTP request in progress. */
    unsigned method;
    char *path;
    char *query;
    char *authorization;
    char *origin;
    bool cors; /* the request's Origin is allowed: answer with CORS headers */
    const net_http_route_t *route;
    sbuf_t body;
    size_t content_length;
    bool awaiting_reply;
    net_out_t *http_resp;
    bool http_headers_sent;

    /* WebSocket. */
    const net_ws_route_t *ws_route;
    actor_t *target; /* holds a reference until WS_CLOSED has been posted */
    uint8_t *rx;
    size_t rx_len;
    size_t rx_cap;
    bool rx_binary;
    net_out_t *out_head;
    net_out_t *out_tail;
    uint32_t out_count; /* data frames waiting (not counting the close) */
    ws_close_t close_why;     /* why we closed it; WS_CLOSE_NONE while we have not */
    uint16_t peer_close_code; /* from the peer's close frame; 0 when none came */
    uint64_t err_ts[NET_ERR_WINDOW]; /* ring of the times of the last protocol errors */
    uint32_t err_n;
    uint64_t last_rx_ns;
    uint64_t last_ping_ns;
    wsc_t *wsc; /* outbound connections only */
} conn_t;

struct netthr {
    int idx;
    pthread_t th;
    uv_loop_t loop;
    struct lws_context *ctx;
    struct lws_vhost *vh;
    int listen_fd;
    uv_poll_t listen_poll;
    int wake_fd;
    uv_poll_t wake_poll;
    uv_timer_t sweep;
    uv_prepare_t flush_prepare; /* hand collected actors to the workers before blocking */
    uv_check_t flush_check;     /* and right after the I/O callbacks of each pass */
    mbox_t inbox;               /* producers: any thread; consumer: this thread */
    bool stopping;

    conn_t **slots;
    uint32_t *gens;
    uint32_t n_slots;
    uint32_t *free_slots;
    uint32_t n_free;
    int ws_open;             /* [atomic, any] */
    struct fetch_thr *fetch; /* the curl multi handle and its requests (fetch.c) */
    struct proc_node *procs; /* child processes of this thread (proc.c) */
    conn_t *adopting;        /* the connection being adopted right now, see on_accept() */
    bool adopting_freed;     /* lws destroyed it during the adoption */
};

/* Shared state of all network threads (net.c). */
typedef struct net_global {
    net_config_t cfg;
    int n_threads;
    netthr_t *threads;
    int port;
    bool tls;
    bool draining; /* [atomic, any] */
    const net_http_route_t *http_routes[NET_MAX_ROUTES];
    int n_http_routes;
    const net_ws_route_t *ws_routes[NET_MAX_ROUTES];
    int n_ws_routes;
} net_global_t;

extern net_global_t g_net;

/* netthr.c */
/* Appends {"error":{"code","message"}}, or the WebSocket event form with "type":"error". */
void net_error_json(sbuf_t *b, bool ws_event, const char *code, const char *message);
conn_t *conn_new(netthr_t *thr, struct lws *wsi);
void conn_free(conn_t *c);
conn_t *conn_lookup(netthr_t *thr, conn_id_t id);
net_out_t *net_out_new(conn_id_t c, out_kind_t kind, size_t len);
void net_post(net_out_t *o);
void conn_queue(conn_t *c, net_out_t *o);
void conn_close(conn_t *c, ws_close_t why);

/* ws.c */
int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, conn_t *c, void *in, size_t len);
void ws_send_error_net(conn_t *c, const char *code, const char *message);
/* Sends a protocol error that counts toward the 20-in-10-s close (SPEC 5, 14). */
void ws_protocol_error_net(conn_t *c, const char *code, const char *message);
void ws_drain_net(conn_t *c);
void ws_sweep_net(conn_t *c, uint64_t now_ns);

/* wsc.c */
/* Starts the connection described by the OUT_CONNECT message o (owned by the caller). */
void wsc_start_net(netthr_t *thr, net_out_t *o);
/* Client-side callbacks; returns 1 when the reason is not a client one. */
int wsc_callback(struct lws *wsi, enum lws_callback_reasons reason, conn_t *c, void *in,
                 size_t len);
/* Sends len bytes of whole frames on outbound connection c (through TLS for wss://); lws keeps
 * what the socket does not take. Returns 0, or -1 when the connection is to close. */
int wsc_send_net(struct lws *wsi, conn_t *c, const void *p, size_t len);
/* Posts WS_CLOSED for an outbound connection that has not reported its end yet. */
void wsc_report_closed_net(conn_t *c);
void wsc_free(conn_t *c);

/* ws.c, shared with wsc.c */
void net_open_msg_free(msg_t *m);
void net_text_msg_free(msg_t *m);
/* Writes one text or binary frame now (an outbound connection's payload is masked in place);
 * returns -1 when lws could not take it. */
int ws_write_data_net(struct lws *wsi, net_out_t *o);
/* Writes the next queued frame of c; returns -1 to close the connection. */
int ws_writeable_net(struct lws *wsi, conn_t *c);
/* Appends a received chunk to c->rx; returns 1 when a whole message is ready, -1 when it is too
 * big for max (the caller decides how to close), 0 otherwise. */
int ws_reassemble_net(struct lws *wsi, conn_t *c, const void *in, size_t len, size_t max);

/* fetch.c */
/* curl_global_init(), then net_fetch() accepts requests. Thread: main, before the threads. */
void fetch_global_init(void);
/* net_fetch() refuses new requests (returns 0) from now on. Thread: main, in net_stop(). */
void fetch_global_close(void);
/* curl_global_cleanup(), once no thread and no command uses curl. Thread: main. */
void fetch_global_cleanup(void);
/* Creates the thread's curl multi handle on its loop; returns 0 or -ENOMEM. */
int fetch_init_net(netthr_t *thr);
/* Handles an OUT_FETCH or OUT_FETCH_CANCEL command (o stays the caller's to free). */
void fetch_command_net(netthr_t *thr, net_out_t *o);
/* Reports every request in flight as cancelled and closes the curl state and its uv handles
 * (freed in their close callbacks, before the loop is closed). */
void fetch_stop_net(netthr_t *thr);

/* proc.c */
/* Handles an OUT_PROC_* command and frees it (a write's buffer lives until written). */
void proc_command_net(netthr_t *thr, net_out_t *o);
/* Kills every child (SIGKILL), reports each EXIT and closes their handles. */
void proc_stop_net(netthr_t *thr);

/* http.c */
int http_callback(struct lws *wsi, enum lws_callback_reasons reason, conn_t *c, void *in,
                  size_t len);
/* Fills c->peer from the socket address and X-Forwarded-For (headers must be present). */
void http_resolve_peer(conn_t *c);
/* The request's Origin is absent, allowed by configuration, or the request's own origin. */
bool http_origin_allowed(struct lws *wsi, const char *origin);
/* Copies header tok into a new string, or NULL when absent. */
char *http_hdr_dup(struct lws *wsi, enum lws_token_indexes tok);
char *http_query_dup(struct lws *wsi);

#endif

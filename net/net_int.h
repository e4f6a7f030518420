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
#include "net/wsclose.h"

#define NET_ERR_WINDOW   20 /* protocol errors ... */
#define NET_ERR_WINDOW_S 10 /* ... within this many seconds close the socket 1008 */
#define NET_SWEEP_MS     5000
#define NET_INBOX_BATCH  256
#define NET_CLOSE_KILL_S 2 /* a close frame that cannot be written within this is abandoned */
#define NET_MAX_ROUTES   32
#define NET_HEADER_MAX   1024
/* A WebSocket peer with more than this many bytes waiting to be sent to it is too slow (SPEC 14:
 * 1008 "too slow"): our queue plus what lws holds of the frame it is writing. */
#define NET_OUT_MAX_BYTES (1024 * 1024)
/* Conn ids and fetch ids keep the index of their network thread in their top 8 bits. */
#define NET_ID_THREAD_SHIFT 56

/* What the inbox carries: frames for one connection, or commands for the whole thread. */
typedef enum out_kind {
    OUT_TEXT,
    OUT_BINARY,
    OUT_PING,
    OUT_PONG, /* the answer to a client's ping, its payload echoed */
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
    OUT_REDIS,         /* thread command: a Redis command for this thread's connection */
    OUT_REDIS_SUB,     /* thread command (first thread): subscribe or unsubscribe a channel */
    OUT_PG,            /* thread command (first thread): a PostgreSQL query (pg.c) */
    OUT_ROUTE,         /* an outbound WebSocket's messages go to another actor (wsc_route_t) */
    OUT_DRAIN,         /* thread command: close every WebSocket for shutdown */
    OUT_STOP,          /* thread command: tear down and leave the loop */
} out_kind_t;

typedef struct net_out {
    msg_t hdr; /* link: the inbox, then the connection's out queue */
    conn_id_t conn;
    uint8_t kind;
    uint8_t why;         /* OUT_CLOSE: a ws_close_t (WS_CLOSE_NONE: echo the payload) */
    uint16_t code;       /* HTTP status, or OUT_PROC_*'s argument */
    char text[64];       /* the HTTP Content-Type ("" = JSON), or an error code */
    char *extra_headers; /* HTTP: owned */
    size_t first_len;    /* OUT_TEXT of a server WebSocket: when not 0, the first message is this
                          * many bytes and the rest of buf is whole frames (net_ws_send_text2) */
    size_t len;
    unsigned char buf[]; /* LWS_PRE bytes of headroom, then len bytes */
} net_out_t;

typedef struct netthr netthr_t;

/* Which of the two connection types a net_conn_t is the first member of. */
typedef enum net_conn_kind {
    NET_CONN_SERVER, /* srv_conn_t (srv.h): accepted by our listener, HTTP, perhaps upgraded */
    NET_CONN_CLIENT, /* wsc_conn_t (wsc.c): an outbound WebSocket */
} net_conn_kind_t;

/*
 * What the connection table and the send path know of every connection: its id, its socket,
 * and the WebSocket frames waiting for the socket. The first member of srv_conn_t and
 * wsc_conn_t; everything else is theirs. [owner: the network thread]
 */
typedef struct net_conn {
    conn_id_t id;
    struct lws *wsi;
    netthr_t *thr;
    net_conn_kind_t kind;
    net_out_t *out_head; /* frames waiting for the writeable callback, oldest first */
    net_out_t *out_tail;
    uint32_t out_count; /* data frames waiting (not counting the close) */
    size_t out_bytes;   /* their payload bytes */
    size_t lws_held;    /* bytes of the last frame handed to lws: the most it still holds while
                           lws_partial_buffered() (it writes one frame at a time) */
} net_conn_t;

/* The connection table of one thread: a slot per live connection, a generation per slot. */
typedef struct conntab {
    net_conn_t **slots;
    uint32_t *gens;
    uint32_t n_slots;
    uint32_t *free_slots;
    uint32_t n_free;
} conntab_t;

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
    int polling; /* [atomic, any] 1 from the loop's prepare to its check, when it may block in
                  * poll: only then does a push that makes the inbox non-empty write wake_fd */
    bool stopping;

    conntab_t conns;
    int ws_open;             /* [atomic, any] */
    struct fetch_thr *fetch; /* the curl multi handle and its requests (fetch.c) */
    struct proc_node *procs; /* child processes of this thread (proc.c) */
    struct redis_thr *redis; /* this thread's Redis connection (redis.c), NULL without Redis */
    struct redis_thr *redis_sub; /* the first thread's pub/sub connection, else NULL */
    struct pg_conn *pg;          /* the first thread's PostgreSQL connection (pg.c), else NULL */
    net_conn_t *adopting;    /* the connection lws is making a wsi for right now (on_accept(),
                                wsc.c on_resolved()) */
    bool adopting_freed;     /* lws destroyed it during that call */
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

/* conntab.c: the connection table. Thread: the table's network thread. */
/* Gives c (its kind set) a slot and an id; returns 0, or -ENOSPC when the table is full. */
int conntab_add(netthr_t *thr, net_conn_t *c);
/* Frees c's slot; its id will never match again. */
void conntab_remove(net_conn_t *c);
/* The live connection with this id, or NULL when it has gone. */
net_conn_t *conntab_lookup(netthr_t *thr, conn_id_t id);
/* Frees the table itself (every connection has gone). */
void conntab_destroy(conntab_t *t);

/* peerlim.c: open server sockets per client address, shared by every network thread
 * (SWITCHBOARD_CONNECTIONS_PER_IP). Thread: any. */
/* Sets the cap per address (0 = none). Thread: main, before the network threads start. */
void peerlim_init(uint32_t cap_per_addr);
/* Counts one more socket for addr16; returns false (nothing counted) when addr16 already has
 * the cap, unless force (a trusted proxy's socket, counted but never refused). */
bool peerlim_try_add(const uint8_t addr16[16], bool force);
/* Counts one socket fewer for addr16 (one that peerlim_try_add() counted). */
void peerlim_remove(const uint8_t addr16[16]);
/* Sockets counted for addr16 now (tests). */
uint32_t peerlim_count(const uint8_t addr16[16]);
/* Forgets every count and the cap. Thread: main, after the network threads have stopped. */
void peerlim_reset(void);

/* send.c: the send API's internals, the inbox and the per-connection frame queues. */
/* sendfmt.c: appends {"error":{"code","message"}}, or the WebSocket event form with
 * "type":"error". */
void net_error_json(sbuf_t *b, bool ws_event, const char *code, const char *message);
net_out_t *net_out_new(conn_id_t c, out_kind_t kind, size_t len);
/* Posts o to the inbox of the thread its conn (or fetch/process id) names. Thread: any. */
void net_post(net_out_t *o);
/* Posts o to thr's inbox. Thread: any. */
void net_post_thread(netthr_t *thr, net_out_t *o);
/* Drains a batch of thr's inbox; returns true when more is waiting. */
bool send_inbox_net(netthr_t *thr);
/* Appends o to c's queue and asks lws for a writeable callback. Only for pings and closes, which
 * are not bounded: data frames go through send_queue_data(). */
void send_queue(net_conn_t *c, net_out_t *o);
/* Appends the text or binary frame o to c's queue, unless c would then have more than
 * NET_OUT_MAX_BYTES or out_cap frames waiting: then o and the queue are dropped, c is closed
 * WS_CLOSE_TOO_SLOW, and false is returned. */
bool send_queue_data(net_conn_t *c, net_out_t *o);
/* Takes the oldest queued frame of c, or NULL. The caller writes it at once: from here a data
 * frame counts as held by lws (lws_held) until lws has sent all of it. */
net_out_t *send_next(net_conn_t *c);
/* Drops every queued frame of c. */
void send_clear(net_conn_t *c);
/* Queues the close frame of why after what is queued, and abandons the socket if it has not left
 * within NET_CLOSE_KILL_S (a peer that does not read). */
void send_queue_close(net_conn_t *c, ws_close_t why);
/* Drops c NET_CLOSE_KILL_S from now unless it has closed by then (a close frame queued). */
void send_arm_close_kill(net_conn_t *c);
/* Liveness of an open WebSocket: returns true when nothing has come for NET_PONG_TIMEOUT_S (the
 * caller closes it); otherwise queues a ping every NET_PING_INTERVAL_S. */
bool send_keepalive(net_conn_t *c, uint64_t last_rx_ns, uint64_t *last_ping_ns, uint64_t now_ns);

/* netmsg.c: messages to actors shared by both WebSocket directions. */
void netmsg_open_free(msg_t *m);
void netmsg_text_free(msg_t *m);
/* A WS_CLOSED message for connection id, with why (ours; WS_CLOSE_NONE when we did not close
 * it) and the code, by_server and reason that follow from it and from peer_code (the code of the
 * peer's close frame, 0 = none). The caller fills in the outbound fields and sends it. */
net_ws_closed_msg_t *netmsg_closed_new(conn_id_t id, ws_close_t why, uint16_t peer_code);
/* NET_MSG_WS_FAST from what a fast reader found (its spans copied, each followed by a NUL). */
net_ws_binary_msg_t *netmsg_fast_new(conn_id_t id, const net_ws_fast_t *f, uint64_t sent_ns);
/* An outbound connection's text as NET_MSG_WS_FAST when wsp_scan_audio_delta() reads it as an
 * audio delta (NET_WSC_FAST_AUDIO); NULL otherwise (it is then parsed in full). The upstream's
 * deltas (25 a second per session, ~1.4 KB) skip cJSON: the delta and the item_id are all the
 * session reads. */
net_ws_binary_msg_t *netmsg_audio_delta_new(conn_id_t id, const char *s, size_t len,
                                            uint64_t sent_ns);

/* wsc.c: outbound WebSockets. Thread: net. */
/* Starts the connection described by the OUT_CONNECT message o (owned by the caller). */
void wsc_start_net(netthr_t *thr, net_out_t *o);
/* lws callbacks of an outbound connection; returns 1 when the reason is not a client one. */
int wsc_callback(struct lws *wsi, enum lws_callback_reasons reason, net_conn_t *c, void *in,
                 size_t len);
/* lws is destroying c's socket: reports the end if not yet reported, and frees c. */
void wsc_destroy_net(net_conn_t *c);
/* The connection is open for data frames. */
bool wsc_is_open(const net_conn_t *c);
/* Closes an open connection with why after what is queued (else nothing). */
void wsc_close_net(net_conn_t *c, ws_close_t why);
/* Writes one text or binary frame now (the payload is masked in place); -1 when lws refused. */
int wsc_write_data_net(net_conn_t *c, net_out_t *o);
/* OUT_ROUTE for c (net_wsc_route_text): takes the actor reference o carries. */
void wsc_route_net(net_conn_t *c, net_out_t *o);
/* The periodic ping and the ping timeout. */
void wsc_sweep_net(net_conn_t *c, uint64_t now_ns);

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

/* redis.c */
/* net_redis_cmd() and the subscriptions are accepted from now on / refused from now on.
 * Thread: main, in net_start() and at the start of net_stop(). */
void redis_global_open(void);
void redis_global_close(void);
/* Starts the thread's Redis connection when Redis is configured; returns 0. */
int redis_init_net(netthr_t *thr);
/* Sends an OUT_REDIS command on the connection, or leaves it to its free_fn to answer
 * "unreachable" (o stays the caller's to free). */
void redis_command_net(netthr_t *thr, net_out_t *o);
/* Handles an OUT_REDIS_SUB command (o stays the caller's to free). */
void redis_sub_command_net(netthr_t *thr, net_out_t *o);
/* Closes the connections (commands in flight answered "unreachable") and their handles. */
void redis_stop_net(netthr_t *thr);

/* pg.c and pgquery.c */
/* net_pg_query() is accepted from now on. Thread: main, in net_start(). */
void pg_global_open(void);
/* While the connection is up, waits (up to 5 s) until every query accepted so far is done; then
 * net_pg_query() is refused. Thread: main, at the start of net_stop(). */
void pg_global_drain(void);
/* Starts the connection on the first thread when PostgreSQL is configured; returns 0. */
int pg_init_net(netthr_t *thr);
/* Queues (or answers) the query of an OUT_PG command (o stays the caller's to free). */
void pg_command_net(netthr_t *thr, net_out_t *o);
/* Answers what is queued or in flight UNREACHABLE (logged as pg.abandoned), closes the
 * connection and its handles. */
void pg_stop_net(netthr_t *thr);

/* proc.c */
/* Handles an OUT_PROC_* command and frees it (a write's buffer lives until written). */
void proc_command_net(netthr_t *thr, net_out_t *o);
/* Kills every child (SIGKILL), reports each EXIT and closes their handles. */
void proc_stop_net(netthr_t *thr);

#endif

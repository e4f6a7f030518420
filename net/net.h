/*
 * net: the network threads. Each runs libwebsockets on its own libuv loop, accepts connections
 * on its own SO_REUSEPORT listening socket, reassembles, size-checks and parses frames, and posts
 * messages to actors. Actors answer through the functions below, which post to the owning
 * thread's inbox; that thread is woken once per batch (eventfd, on the inbox's empty -> non-empty
 * transition) and writes from the libwebsockets writeable callback. No actor ever touches a
 * `struct lws *`: connections are named by conn_id_t {thread, slot, generation}, and a message
 * for a connection that has gone is dropped on the network thread.
 *
 * CONTRACT
 *   net_add_*_route() and net_start()/net_drain()/net_stop(): main thread only, in that order.
 *   Every other function here: any thread.
 *   Messages to actors (NET_MSG_*) are owned by the receiving actor; msg_free() releases their
 *   payload. For one connection they arrive in order: WS_OPEN first, WS_CLOSED last.
 *   Frames sent to one connection are written in the order they were sent.
 */
#ifndef SB_NET_NET_H
#define SB_NET_NET_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actors/actor.h"
#include "mailbox/msg.h"
#include "net/wsclose.h"

/* {thread:8, slot:24, generation:32}; 0 is never a valid id. */
typedef uint64_t conn_id_t;

#define NET_MAX_THREADS     64
#define NET_MAX_HTTP_BODY   (64 * 1024)
#define NET_PING_INTERVAL_S 30
#define NET_PONG_TIMEOUT_S  75
/* A request's line, headers and body must arrive within this of its start (SPEC 14). */
#define NET_REQUEST_TIMEOUT_MS 20000

/* HTTP methods, as bits for route masks. */
enum {
    NET_GET = 1u << 0,
    NET_POST = 1u << 1,
    NET_PUT = 1u << 2,
    NET_PATCH = 1u << 3,
    NET_DELETE = 1u << 4,
    NET_OPTIONS = 1u << 5,
    NET_HEAD = 1u << 6,
};

/* The client as seen by the service (after SWITCHBOARD_TRUSTED_PROXIES). */
typedef struct net_peer {
    char ip[48];
    uint8_t addr16[16]; /* IPv6 or IPv4-mapped */
    bool loopback;
} net_peer_t;

/* ---- Messages to actors ------------------------------------------------------------------- */

#define NET_MSG_WS_OPEN     (MSG_TYPE_NET_BASE + 1)
#define NET_MSG_WS_TEXT     (MSG_TYPE_NET_BASE + 2)
#define NET_MSG_WS_BINARY   (MSG_TYPE_NET_BASE + 3)
#define NET_MSG_WS_CLOSED   (MSG_TYPE_NET_BASE + 4)
#define NET_MSG_HTTP        (MSG_TYPE_NET_BASE + 5)
#define NET_MSG_WS_ACTIVITY (MSG_TYPE_NET_BASE + 6)
#define NET_MSG_FETCH_DATA  (MSG_TYPE_NET_BASE + 7)
#define NET_MSG_FETCH_DONE  (MSG_TYPE_NET_BASE + 8)
#define NET_MSG_PROC_LINE   (MSG_TYPE_NET_BASE + 9)
#define NET_MSG_PROC_EXIT   (MSG_TYPE_NET_BASE + 10)
#define NET_MSG_REDIS       (MSG_TYPE_NET_BASE + 11)
#define NET_MSG_REDIS_PUB   (MSG_TYPE_NET_BASE + 12)
#define NET_MSG_PG          (MSG_TYPE_NET_BASE + 13)
#define NET_MSG_WS_FAST     (MSG_TYPE_NET_BASE + 14)

typedef struct net_ws_open_msg {
    msg_t hdr;
    conn_id_t conn;
    const char *path; /* the route's path; NULL for an outbound connection */
    char *query;      /* raw query string without '?', "" when none (owned) */
    net_peer_t peer;
    char *origin;        /* the upgrade's Origin (owned), NULL when none or outbound */
    bool same_origin;    /* that Origin is the request's own scheme and Host, a Host of ours */
    uint64_t cookie;     /* outbound: the caller's cookie from net_wsc_connect() */
    char request_id[64]; /* outbound: the x-request-id response header, "" when none */
} net_ws_open_msg_t;

/* A text frame that is a JSON object with a string "type" the route accepts. */
typedef struct net_ws_text_msg {
    msg_t hdr;
    conn_id_t conn;
    cJSON *json;      /* owned */
    const char *type; /* points into json */
    size_t len;       /* bytes of the frame */
} net_ws_text_msg_t;

/*
 * NET_MSG_WS_BINARY: a binary frame (kind 0, num -1, no aux). NET_MSG_WS_FAST: a text frame read
 * without a JSON tree, by the route's fast reader (net_ws_route_t.fast) or, on an outbound
 * WebSocket, as an audio delta (NET_WSC_FAST_AUDIO): kind and num are the reader's, data its
 * bytes and a NUL, then the aux bytes (net_fast_aux()) and a NUL.
 */
typedef struct net_ws_binary_msg {
    msg_t hdr; /* MSG_F_AUDIO set: droppable under backpressure */
    conn_id_t conn;
    int kind;
    uint32_t aux_len;
    int64_t num;
    size_t len;
    uint8_t data[];
} net_ws_binary_msg_t;

static inline const char *net_fast_aux(const net_ws_binary_msg_t *m)
{
    return (const char *)m->data + m->len + 1;
}

/* What a fast reader found in a text frame. */
typedef struct net_ws_fast {
    int kind;         /* the reader's, > 0 */
    bool audio;       /* audio: droppable under backpressure (MSG_F_AUDIO) */
    int64_t num;      /* the reader's number */
    const char *data; /* the bytes the actor needs: a span of the frame */
    size_t len;
    const char *aux; /* and a second span (aux_len 0: none) */
    size_t aux_len;
} net_ws_fast_t;

/*
 * The kind of an outbound WebSocket's NET_MSG_WS_FAST: an event wsp_scan_event() vouches for
 * whose type is response.output_audio.delta (or the beta response.audio.delta) and whose delta
 * is a string: data is the delta (base64, not decoded), aux the item_id ("" when absent or not a
 * string), as cJSON would read them. Audio. Every other event arrives as NET_MSG_WS_TEXT.
 */
#define NET_WSC_FAST_AUDIO 1

/* The client sent a frame the actor does not see (ping, protocol error); track_activity only. */
typedef struct net_ws_activity_msg {
    msg_t hdr;
    conn_id_t conn;
    bool refused; /* a protocol error (invalid_json, invalid_event, unsupported_event), no ping */
} net_ws_activity_msg_t;

typedef struct net_ws_closed_msg {
    msg_t hdr;
    conn_id_t conn;
    ws_close_t why; /* why we closed it; WS_CLOSE_NONE when the peer closed or the socket went */
    /* For logs and tests: the close code sent or received (1006 when the socket just went), whether
     * we closed it (why != WS_CLOSE_NONE), and the reason text (ours, or why an outbound
     * connection failed). Decide on `why`, never on these. */
    uint16_t code;
    bool by_server;
    char reason[64];
    uint64_t cookie;   /* outbound: the caller's cookie */
    bool never_opened; /* outbound: the connection failed before the upgrade completed */
    int http_status;   /* outbound: the HTTP status of a refused upgrade, 0 when none */
} net_ws_closed_msg_t;

typedef struct net_http_msg {
    msg_t hdr;
    conn_id_t conn;
    unsigned method;        /* one NET_* bit */
    char *path;             /* owned; decoded path without query */
    char *query;            /* owned; raw (not %-decoded: net_query_get() does), "" when none */
    char *authorization;    /* owned; NULL when absent */
    char *origin;           /* owned; NULL when absent */
    char *content_type;     /* owned; NULL when absent */
    char *public_key;       /* owned; the X-Switchboard-Key header (SPEC 16), NULL when absent */
    char *host;             /* owned; the Host header, NULL when absent */
    char *twilio_signature; /* owned; the X-Twilio-Signature header (SPEC 5.5), NULL when absent */
    bool tls;               /* it came over HTTPS (SWITCHBOARD_TLS_CERT) */
    net_peer_t peer;
    bool loopback_host; /* the Host header names a loopback host (localhost, 127.x, [::1]):
                           loopback-only API mode needs it as well as a loopback peer */
    bool same_origin;   /* the Origin is the request's own scheme and Host, a Host of ours */
    char *body;         /* owned; NUL-terminated, NULL when empty */
    size_t body_len;
    cJSON *json;       /* owned; the parsed body when it is valid JSON */
    bool json_invalid; /* a body was sent and is not valid JSON */
} net_http_msg_t;

/* ---- Routes ------------------------------------------------------------------------------- */

/* A request answered on the network thread itself (health, metrics, static files). */
typedef struct net_local_req {
    unsigned method;
    const char *path;
    const char *query;
    const net_peer_t *peer;
    const char *if_none_match; /* the If-None-Match header, NULL when absent (GET/HEAD only) */
} net_local_req_t;

typedef struct net_local_resp {
    int status;               /* 204 and 304 are sent without Content-Type or body */
    const char *content_type; /* default application/json */
    char *body;               /* malloc'd; taken by net */
    size_t body_len;
    char extra_headers[256]; /* "Name: value\r\n" lines */
} net_local_resp_t;

typedef struct net_http_route {
    const char *path; /* exact path, or a prefix when prefix is set */
    bool prefix;
    unsigned methods; /* allowed NET_* bits (OPTIONS is handled by net for CORS) */
    actor_t *target;  /* receives NET_MSG_HTTP; the route holds a reference */
    void (*local)(const net_local_req_t *req, net_local_resp_t *resp); /* or answered here */
    bool foreign_origin_403; /* an Origin present and not allowed: 403 forbidden_origin first,
                                before the body's size is looked at (SPEC 14 "Order of checks") */
    size_t
        max_body; /* the largest body accepted (413 body_too_large above); 0 = NET_MAX_HTTP_BODY */
} net_http_route_t;

/*
 * Picks the actor for a new WebSocket connection on this route, after the origin check; returns
 * it with a reference that the connection keeps until WS_CLOSED is delivered, or NULL to refuse
 * (the connection is then closed with *why, which is WS_CLOSE_AT_CAPACITY unless the function
 * sets it). Thread: net.
 */
typedef actor_t *(*net_ws_target_fn)(void *arg, const net_peer_t *peer, const char *query,
                                     ws_close_t *why);

typedef struct net_ws_route {
    const char *path;
    size_t max_text_bytes;
    size_t max_binary_bytes;  /* 0 = binary frames are not accepted (unsupported_event) */
    const char *const *types; /* NULL-terminated event types posted to the actor */
    net_ws_target_fn target;
    void *arg;
    bool track_activity; /* post NET_MSG_WS_ACTIVITY for frames answered by net itself */
    const char *untyped; /* a JSON object without "type" is an event of this type (NULL: an
                            invalid_event); see wsp_classify_untyped() */
    /* NULL, or the route's fast reader of its hot messages (pure, run on the network thread):
     * true when it vouches for the len bytes at s as one of them and *out holds all its actor
     * needs of it; net then posts NET_MSG_WS_FAST with out's bytes copied, instead of a cJSON
     * tree. false: the frame is read as usual. */
    bool (*fast)(const char *s, size_t len, net_ws_fast_t *out);
} net_ws_route_t;

typedef struct net_config {
    const char *host;
    int port;
    int threads;
    int max_connections;
    int connections_per_ip;      /* server sockets per client address; 0 = no cap */
    uint32_t request_timeout_ms; /* whole-request deadline; 0 = NET_REQUEST_TIMEOUT_MS */
    uint32_t out_cap; /* frames waiting for one client before it is closed 1008 "too slow" */
    const char *tls_cert;
    const char *tls_key;
    bool client_tls; /* outbound connections will use wss:// */
    bool no_listen;  /* outbound only (curl, child processes): no listening socket (CLIs) */
} net_config_t;

/* Route tables; the structs must outlive the network threads. Thread: main, before start. */
void net_add_http_route(const net_http_route_t *r);
void net_add_ws_route(const net_ws_route_t *r);

/* Starts the threads and binds. Returns 0, or -errno (port in use: -EADDRINUSE). Thread: main. */
int net_start(const net_config_t *cfg);
/* The port actually bound (useful with port 0). */
int net_port(void);
/*
 * Begins the drain: /readyz answers 503, new WebSocket upgrades are closed 1001, and every open
 * WebSocket gets the `server_shutting_down` error then close 1001. Thread: main.
 */
void net_drain(void);
bool net_draining(void);
/* Open WebSocket connections right now (advisory). */
int net_ws_open_count(void);
/*
 * Stops the threads and frees everything; routes' actor references are dropped. First, while
 * PostgreSQL is connected, it waits up to 5 s for every query accepted so far (queued or in
 * flight) to be answered, so that records written at shutdown are not lost (net_pg_query() still
 * accepts queries meanwhile, and refuses them after); what is left then is answered UNREACHABLE
 * and counted in one pg.abandoned log line. Thread: main.
 */
void net_stop(void);

/* ---- Sending (any thread) ----------------------------------------------------------------- */

void net_ws_send_text(conn_id_t c, const char *s, size_t len);
/* Two text messages to a server WebSocket (one a client opened), in order, as one post and one
 * write: a phone call's media and the mark after it (SPEC 5.5) cost the thread hop and the
 * send() of one. Not for outbound WebSockets. */
void net_ws_send_text2(conn_id_t c, const char *a, size_t alen, const char *b, size_t blen);
/* Serialises j (not freed) as one text frame. */
void net_ws_send_json(conn_id_t c, const cJSON *j);
void net_ws_send_binary(conn_id_t c, const void *p, size_t len);
/* Sends {"type":"error","error":{"code","message"}}. */
void net_ws_send_error(conn_id_t c, const char *code, const char *message);
/*
 * The same for invalid_json, invalid_event and unsupported_event found by an actor: these count
 * toward the 20-errors-in-10-s close, which the network thread enforces.
 */
void net_ws_protocol_error(conn_id_t c, const char *code, const char *message);
/* Closes after the frames already queued, with the code and reason of why (not WS_CLOSE_NONE). */
void net_ws_close(conn_id_t c, ws_close_t why);

/*
 * Answers an HTTP request. body may be NULL; extra_headers are "Name: value\r\n" lines or NULL.
 * CORS headers are added by net. Content-Type is application/json.
 */
void net_http_respond(conn_id_t c, int status, const char *body, size_t len,
                      const char *extra_headers);
/* The same with another Content-Type (e.g. "text/xml" for TwiML). */
void net_http_respond_typed(conn_id_t c, int status, const char *content_type, const char *body,
                            size_t len, const char *extra_headers);
/* Answers {"error":{"code","message"}} (plus `extra_json` members inside "error" when given). */
void net_http_error(conn_id_t c, int status, const char *code, const char *message);

/* ---- Outbound WebSockets (any thread) ------------------------------------------------------ */

/*
 * Opens a WebSocket to url (ws:// or wss://) from the network thread that owns `near` (so a
 * caller's client socket and its upstream share a thread), with `Authorization: Bearer <bearer>`
 * when bearer is not NULL and no Sec-WebSocket-Protocol. DNS is resolved off the loop. Messages
 * go to target (a reference is taken): NET_MSG_WS_OPEN (with conn, cookie and x-request-id), then
 * NET_MSG_WS_TEXT for each JSON object with a string "type" (up to max_msg_bytes; larger
 * messages are discarded and the socket closed 1009), and finally NET_MSG_WS_CLOSED, which is
 * also the only message when the connection fails (never_opened, http_status). Returns 0, or
 * -EINVAL for a malformed url (nothing is posted then).
 */
int net_wsc_connect(conn_id_t near, const char *url, const char *bearer, actor_t *target,
                    uint64_t cookie, size_t max_msg_bytes);

/*
 * From now on the NET_MSG_WS_TEXT messages of the outbound WebSocket c go to `to` instead of
 * its target (a reference is taken; NULL routes them back to the target). NET_MSG_WS_OPEN and
 * NET_MSG_WS_CLOSED still go to the target. The switch happens on c's network thread in the
 * order of everything posted to c, so a message the caller posts to `to` after this call (or
 * sends c after it) is ordered after the switch. Nothing happens when c has gone.
 */
void net_wsc_route_text(conn_id_t c, actor_t *to);

/* ---- Outbound HTTP (libcurl multi on the network threads; any thread) --------------------- */

#define NET_FETCH_MAX_HEADERS 16

/* One outbound HTTP request. Everything is copied by net_fetch(); the caller keeps its strings. */
typedef struct net_fetch_req {
    const char *method; /* "GET", "POST", "DELETE"; NULL = POST when body != NULL, else GET */
    const char *url;    /* http:// or https:// */
    const char *headers[NET_FETCH_MAX_HEADERS]; /* "Name: value"; unused entries NULL */
    const char *bearer; /* adds `Authorization: Bearer <bearer>` when not NULL (never logged) */
    const char *body;   /* may be NULL */
    size_t body_len;
    uint32_t timeout_ms; /* whole request, connect included; 0 = no deadline */
    size_t max_body;     /* a buffered response body larger than this fails (error
                            "body_too_large"); 0 = 8 MiB. A streamed body is not limited. */
    bool stream; /* post a 2xx body as it arrives (NET_MSG_FETCH_DATA) instead of buffering it */
} net_fetch_req_t;

/* A piece of a streamed response body, in order (stream requests only, 2xx responses only). */
typedef struct net_fetch_data_msg {
    msg_t hdr;
    uint64_t id;           /* the id net_fetch() returned */
    int status;            /* the response's HTTP status */
    char content_type[64]; /* the response's Content-Type, "" when absent */
    char session_id[128];  /* its mcp-session-id, "" when absent */
    size_t len;
    char data[]; /* NUL-terminated */
} net_fetch_data_msg_t;

/* The end of a request: always exactly one per successful net_fetch(), the last message for it. */
typedef struct net_fetch_done_msg {
    msg_t hdr;
    uint64_t id;
    int status;     /* HTTP status; 0 when no response came (error says why) */
    char error[96]; /* "" on a complete response; else "timeout", "connect", "dns",
                       "body_too_large", "cancelled", or curl's text */
    char *body;     /* owned, NUL-terminated; NULL when empty, streamed, or error is set */
    size_t body_len;
    int64_t retry_after_ms; /* from retry-after-ms or retry-after (seconds); -1 when absent */
    int should_retry;       /* x-should-retry: 1 true, 0 false, -1 absent */
    char request_id[64];    /* x-request-id, "" when absent */
    char content_type[64];  /* "" when absent */
    char session_id[128];   /* mcp-session-id, "" when absent */
} net_fetch_done_msg_t;

/*
 * Starts req on a network thread's curl multi handle (round robin over the threads). The
 * network thread posts NET_MSG_FETCH_DATA (stream only) and then one NET_MSG_FETCH_DONE to target
 * (a reference is taken and dropped after DONE; net_stop() ends requests in flight with
 * "cancelled"). Returns an id > 0 ({thread:8, sequence:56}), or 0 for a malformed request (url
 * NULL, empty, not http:// or https://, or without a host; a header without ':' or with CR/LF, a
 * bearer with CR/LF, a method that is not a token) or when the network threads are not running;
 * nothing is posted then. No call here blocks: DNS, connect and TLS run on the loop. Redirects
 * are not followed; proxies come from the usual environment variables.
 */
uint64_t net_fetch(const net_fetch_req_t *req, actor_t *target);

/*
 * Abandons request id: its DONE arrives with error "cancelled" (status: what had arrived, else 0)
 * unless it has already finished. An unknown or finished id is ignored.
 */
void net_fetch_cancel(uint64_t id);

/* ---- Redis (SPEC 13) ---------------------------------------------------------------------- */

/* A reply, copied out of hiredis's. */
typedef enum net_redis_type {
    NET_REDIS_NIL = 0,
    NET_REDIS_STRING,
    NET_REDIS_STATUS,
    NET_REDIS_ERROR,
    NET_REDIS_INTEGER,
    NET_REDIS_ARRAY,
} net_redis_type_t;

typedef struct net_redis_reply {
    net_redis_type_t type;
    long long integer;
    char *str; /* STRING, STATUS, ERROR: NUL-terminated, len bytes */
    size_t len;
    size_t n; /* ARRAY */
    struct net_redis_reply **elem;
} net_redis_reply_t;

/* The answer to one net_redis_cmd(): exactly one per accepted command. */
typedef struct net_redis_msg {
    msg_t hdr;
    uint64_t cookie; /* the caller's, echoed */
    bool ok;         /* false: Redis unreachable (nothing is known of the command's effect) */
    net_redis_reply_t *reply; /* when ok; freed with the message */
} net_redis_msg_t;

/*
 * Reads SWITCHBOARD_REDIS_URL (redis://[[user]:password@]host[:port][/db] or unix:///path;
 * NULL: no Redis). Returns 0 or -EINVAL. Thread: main, before net_start().
 */
int net_redis_configure(const char *url);
/* Redis is configured. */
bool net_redis_on(void);
/* net_start() has finished (the port is known, commands are taken) and net_stop() has not
 * begun; an acquire, so the caller sees what net_start() set. Thread: any. */
bool net_redis_started(void);
/* Not configured, or every network thread's connection is up (/readyz). Thread: any. */
bool net_redis_ready(void);
/* Registers switchboard_redis_connected when configured. Thread: main, before threads. */
void net_redis_register_metrics(void);
/*
 * Sends argv (lens NULL: NUL-terminated strings) to Redis; the reply comes to target as
 * NET_MSG_REDIS with cookie. One actor's commands go over one connection, answered in order.
 * A thread whose connection is down answers at once with ok = false. Returns 0 (a message will
 * come), or -EINVAL (Redis not configured or not started: none will). Thread: any.
 */
int net_redis_cmd(actor_t *target, uint64_t cookie, int argc, const char *const *argv,
                  const size_t *lens);
void net_redis_reply_free(net_redis_reply_t *r);

/* A message published on a channel an actor subscribed to. */
typedef struct net_redis_pub_msg {
    msg_t hdr;
    char *channel; /* owned */
    char *payload; /* owned, NUL-terminated, len bytes */
    size_t len;
} net_redis_pub_msg_t;

/*
 * Delivers what is published on channel to target (a reference is taken; one actor per channel,
 * the newest) as NET_MSG_REDIS_PUB, from now until net_redis_unsubscribe(channel), across
 * reconnects (messages published while Redis is unreachable are lost). Returns 0 or -EINVAL
 * (Redis not configured or not started). Thread: any.
 */
int net_redis_subscribe(actor_t *target, const char *channel);
/* Ends target's subscription to channel (none when another actor has taken the channel since). */
int net_redis_unsubscribe(actor_t *target, const char *channel);

/* ---- PostgreSQL (SPEC 13) ----------------------------------------------------------------- */

/* How net_pg_query() ended. */
typedef enum net_pg_status {
    NET_PG_OK = 0,      /* the statement ran: rows below (none for a command) */
    NET_PG_FAILED,      /* PostgreSQL refused it: sqlstate and error say why */
    NET_PG_UNREACHABLE, /* not connected (not sent), or the connection broke with it in flight */
    NET_PG_FULL,        /* NET_PG_QUEUE: the queue of waiting writes was full (not sent) */
} net_pg_status_t;

/* The answer to one net_pg_query() with a target: exactly one per accepted query. */
typedef struct net_pg_msg {
    msg_t hdr;
    uint64_t cookie; /* the caller's, echoed */
    net_pg_status_t status;
    char sqlstate[6]; /* FAILED: the five-character SQLSTATE ("23P01" exclusion violation) */
    char *error;      /* FAILED: the primary message (owned), else NULL */
    int nrows, ncols;
    char **values; /* OK: nrows * ncols texts, row-major, NULL for SQL NULL; one allocation with
                      the texts, freed with the message */
} net_pg_msg_t;

/* The value at row r, column c of an OK answer; NULL for SQL NULL or out of range. */
static inline const char *net_pg_value(const net_pg_msg_t *m, int r, int c)
{
    if (m->status != NET_PG_OK || r < 0 || r >= m->nrows || c < 0 || c >= m->ncols)
        return NULL;
    return m->values[(size_t)r * (size_t)m->ncols + (size_t)c];
}

#define NET_PG_QUEUE 1u /* flag: while unreachable, wait (bounded) instead of failing at once */

/*
 * Reads SWITCHBOARD_DATABASE_URL (postgres:// or postgresql://, libpq's URI form; NULL: no
 * PostgreSQL). Returns 0 or -EINVAL. Thread: main, before net_start().
 */
int net_pg_configure(const char *url);
/* PostgreSQL is configured. */
bool net_pg_on(void);
/* Not configured, or connected with the set-up statements run (/readyz). Thread: any. */
bool net_pg_ready(void);
/*
 * The statements run after every connect, before anything queued (several, separated by ';',
 * in the simple protocol; the schema's migrations). Their failure closes the connection, which
 * is tried again with backoff. s must live until net_stop(). Thread: main, before net_start().
 */
void net_pg_set_setup(const char *sql);
/* Registers the PostgreSQL metrics when configured. Thread: main, before threads. */
void net_pg_register_metrics(void);
/*
 * Runs sql (one statement; $1.. are params[0..nparams-1], texts, NULL for SQL NULL) on the
 * connection, in the order queries were made (one connection, pipelined). Each runs in its own
 * transaction. sql must be a static string (it is not copied); params are copied.
 * target NULL: no answer; a failure is logged. Otherwise target (a reference is taken) gets
 * exactly one NET_MSG_PG with cookie.
 * flags NET_PG_QUEUE: while PostgreSQL is unreachable the query waits, in a queue bounded in
 * bytes (switchboard_store_queued counts it), and runs when it returns; a query in flight when
 * the connection broke is sent again (the store's writes are idempotent). Without it, a query
 * made while unreachable, or in flight when the connection broke, is answered UNREACHABLE.
 * The waiting queue holds at most 100,000 queries and 32 MiB (params and bookkeeping); a query
 * over that is answered FULL (without a target: logged and counted), and so is one made while
 * connected when the queue is that long (256 are in flight at most; the rest wait).
 * Returns 0 (accepted), or -EINVAL (not configured, not started or net_stop() has drained, sql
 * NULL, nparams out of range). Thread: any.
 */
int net_pg_query(actor_t *target, uint64_t cookie, const char *sql, int nparams,
                 const char *const *params, unsigned flags);

/* ---- Child processes (libuv on a network thread's loop; any thread) ----------------------- */

/*
 * A child process whose stdin, stdout and stderr are pipes owned by a network thread (proc.c).
 * stdout is split into lines (any length; the '\n' and a trailing '\r' are removed) posted as
 * NET_MSG_PROC_LINE; stderr is drained continuously and logged line by line (event proc.stderr,
 * tagged with log_name); the end is exactly one NET_MSG_PROC_EXIT, after the last line.
 */
typedef struct net_proc_req {
    const char *file;        /* searched in PATH when it has no '/' */
    const char *const *args; /* arguments after argv[0], NULL-terminated; may be NULL */
    const char *const *env;  /* the whole environment, NULL-terminated; NULL = inherit */
    const char *cwd;         /* NULL = the service's */
    const char *log_name;    /* tags stderr lines in the log, e.g. "mcp:crm" */
} net_proc_req_t;

typedef struct net_proc_line_msg {
    msg_t hdr;
    uint64_t id;
    size_t len;
    char data[]; /* NUL-terminated */
} net_proc_line_msg_t;

typedef struct net_proc_exit_msg {
    msg_t hdr;
    uint64_t id;
    int spawn_error;     /* -errno when the process could not be started, else 0 */
    int64_t exit_status; /* when it exited by itself */
    int term_signal;     /* the signal that ended it, 0 when none */
} net_proc_exit_msg_t;

/*
 * Starts the process on a network thread (round robin). Messages go to target (a reference is
 * taken and dropped after EXIT). Returns an id > 0, or 0 when req is malformed or the network
 * threads are not running (nothing is posted then). A spawn failure is reported by EXIT.
 * net_stop() kills what is still running (SIGKILL) and reports it.
 */
uint64_t net_proc_spawn(const net_proc_req_t *req, actor_t *target);
/* Writes len bytes to the child's stdin, after what was written before. Unknown ids: ignored. */
void net_proc_write(uint64_t id, const void *data, size_t len);
/* Sends signum to the child. */
void net_proc_kill(uint64_t id, int signum);
/*
 * Ends the child politely: closes its stdin, sends SIGTERM when it is still running after
 * grace_ms, and SIGKILL after another grace_ms. EXIT reports the end as usual.
 */
void net_proc_shutdown(uint64_t id, uint32_t grace_ms);

/*
 * Origins allowed besides SWITCHBOARD_ALLOWED_ORIGINS and the request's own (SPEC 16: every
 * tenant's allowedOrigins), for CORS, preflights and WebSocket upgrades. allowed is called on
 * the network threads. Thread: main, before net_start().
 */
void net_set_origin_hook(bool (*allowed)(const char *origin));

/* Decodes the value of name in a raw query string into out (%XX and '+'); returns its length,
 * or -1 when name is absent, its value does not fit or decodes to a NUL. */
int net_query_get(const char *query, const char *name, char *out, size_t outlen);

#endif

/*
 * fake_net: net/net.h for the actor unit tests, linked instead of the network threads into
 * build/<mode>/tests/actors_unit (with the real net/query.c, net/wsproto.c and net/wsframe.c).
 *
 * Actor -> network: every function of net.h an actor calls (sends, closes, HTTP answers,
 * outbound WebSockets, fetches, child processes) appends a fake_net_call_t to one log, in call
 * order, and wakes whoever waits on it. Nothing goes anywhere else.
 *
 * Network -> actor: the test plays the network. It accepts a WebSocket through a route's target
 * function (fake_net_ws_accept), opens the outbound connections actors asked for
 * (fake_net_ws_opened), delivers frames and closes (fake_net_ws_text, fake_net_ws_closed), and
 * ends fetches (fake_net_fetch_done). The fake keeps net.h's promises to actors: a connection
 * holds its target until WS_CLOSED, a fetch holds its target until its one FETCH_DONE,
 * net_fetch_cancel() of a request in flight delivers DONE "cancelled", and fake_net_shutdown()
 * ends whatever is still open the way net_stop() does.
 *
 * Close codes: a close is recorded as the ws_close_t net_ws_close() was given
 * (fake_net_call_t.why, with its code and reason); tests compare closes only through
 * fake_net_is_close()/FAKE_ASSERT_CLOSE.
 *
 * CONTRACT
 *   The net.h functions: any thread (actor workers). Everything fake_net_*: the test's thread,
 *   except fake_net_wait*(), which may be called from any one thread at a time. Calls returned
 *   by the log stay valid until fake_net_shutdown().
 */
#ifndef SB_TESTS_FAKES_FAKE_NET_H
#define SB_TESTS_FAKES_FAKE_NET_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/net.h"
#include "net/wsclose.h"
#include "tests/runner.h"

#define FAKE_NET_WAIT_MS 5000 /* how long fake_net_wait*() waits for a call */

typedef enum fake_net_op {
    FNET_WS_TEXT,           /* net_ws_send_text/json/error: text (json when it parses) */
    FNET_WS_BINARY,         /* net_ws_send_binary: text holds the bytes, len */
    FNET_WS_PROTOCOL_ERROR, /* net_ws_protocol_error: code, text = message */
    FNET_WS_CLOSE,          /* net_ws_close: why */
    FNET_HTTP_RESPOND,      /* net_http_respond / net_http_error: status, text = body */
    FNET_WSC_CONNECT,       /* net_wsc_connect: near, url, bearer, target, cookie; conn = new id */
    FNET_FETCH,             /* net_fetch: id, method, url, bearer, text = body, timeout_ms */
    FNET_FETCH_CANCEL,      /* net_fetch_cancel: id */
    FNET_PROC_SPAWN,        /* net_proc_spawn: id, url = file, target */
    FNET_PROC_WRITE,        /* net_proc_write: id, text, len */
    FNET_PROC_KILL,         /* net_proc_kill / net_proc_shutdown: id, status = signal or grace */
} fake_net_op_t;

typedef struct fake_net_call {
    uint64_t seq; /* 1, 2, … in the order the calls were made */
    fake_net_op_t op;
    conn_id_t conn;        /* the connection written to; WSC_CONNECT: the new connection's id */
    conn_id_t near;        /* WSC_CONNECT */
    uint64_t id;           /* fetches and processes: the id net_fetch()/net_proc_spawn() returned */
    uint64_t cookie;       /* WSC_CONNECT */
    int status;            /* HTTP status */
    ws_close_t why;        /* WS_CLOSE: the close by name */
    uint16_t close_code;   /* WS_CLOSE: as given */
    char close_reason[64]; /* WS_CLOSE: as given */
    char code[64];         /* PROTOCOL_ERROR: the error code */
    char method[16];       /* FETCH */
    char *url;             /* WSC_CONNECT, FETCH; PROC_SPAWN: the file */
    char *bearer;          /* WSC_CONNECT, FETCH; NULL when none */
    char *text;            /* frame, body or message (NUL-terminated copy) */
    size_t len;            /* bytes of text */
    cJSON *json;           /* text parsed, when it is JSON */
    const char *type;      /* json's string "type", or NULL */
    uint32_t timeout_ms;
    actor_t *target; /* WSC_CONNECT, FETCH, PROC_SPAWN: compared only */
} fake_net_call_t;

/* Starts an empty log. */
void fake_net_init(void);
/*
 * Ends everything the actors still have open as net_stop() would (WS_CLOSED 1001 "server
 * shutting down" to connections, DONE "cancelled" to fetches, EXIT to processes), dropping the
 * references net held, and frees the log. Call before sched_stop().
 */
void fake_net_shutdown(void);

/* ---- Reading the log ------------------------------------------------------------------------- */

/*
 * The first call after *cursor (a seq; start at 0) with this op on conn (0: any connection),
 * waiting FAKE_NET_WAIT_MS at most; *cursor moves to it. NULL when none came.
 */
const fake_net_call_t *fake_net_wait(uint64_t *cursor, fake_net_op_t op, conn_id_t conn);
/* The same for a text frame to conn whose JSON "type" is type. */
const fake_net_call_t *fake_net_wait_type(uint64_t *cursor, conn_id_t conn, const char *type);
/* Calls with this op on conn (0: any) made so far, without waiting. */
int fake_net_count(fake_net_op_t op, conn_id_t conn);
/* Text frames to conn with this JSON "type" so far, without waiting. */
int fake_net_count_type(conn_id_t conn, const char *type);

/* True when c is a close of its connection with why's code and exact reason. */
bool fake_net_is_close(const fake_net_call_t *c, ws_close_t why);

/* Fails the test unless c (from fake_net_wait) is a close with why's code and reason. */
#define FAKE_ASSERT_CLOSE(c, why_)                                                                 \
    do {                                                                                           \
        const fake_net_call_t *c_ = (c);                                                           \
        if (c_ == NULL)                                                                            \
            TEST_FAIL_("no close came (wanted %u \"%s\")", ws_close_code(why_),                    \
                       ws_close_reason(why_));                                                     \
        if (!fake_net_is_close(c_, (why_)))                                                        \
            TEST_FAIL_("closed %u \"%s\", wanted %u \"%s\"", c_->close_code, c_->close_reason,     \
                       ws_close_code(why_), ws_close_reason(why_));                                \
    } while (0)

/* ---- Playing the network --------------------------------------------------------------------- */

/* A fresh connection id (for connections the test names itself, e.g. chat attaches). */
conn_id_t fake_net_conn_id(void);
/*
 * A client opens a WebSocket on a route whose target function is fn(arg): fn runs as on a
 * network thread (peer 127.0.0.1); when it gives an actor, the connection keeps that reference
 * and the actor gets NET_MSG_WS_OPEN with query. Returns the connection, or 0 when fn refused
 * (the refusal is logged as a WS_CLOSE with fn's code and reason).
 */
conn_id_t fake_net_ws_accept(net_ws_target_fn fn, void *arg, const char *query);
/* The outbound connection c (from a WSC_CONNECT call) completed its upgrade: NET_MSG_WS_OPEN
 * with its cookie and x-request-id request_id. */
void fake_net_ws_opened(conn_id_t c, const char *request_id);
/* The peer of c sent a text frame: json must be an object with a string "type". */
void fake_net_ws_text(conn_id_t c, const char *json);
/* The peer of c sent a binary frame. */
void fake_net_ws_binary(conn_id_t c, const void *data, size_t len);
/*
 * c has closed: NET_MSG_WS_CLOSED, then the connection drops its reference. why: a close by the
 * server (by_server, its code and reason); WS_CLOSE_NONE: the socket dropped (1006).
 */
void fake_net_ws_closed(conn_id_t c, ws_close_t why);
/* The peer closed c with code (not by the server). */
void fake_net_ws_peer_closed(conn_id_t c, uint16_t code);
/* The close an actor asked for on c has gone out: WS_CLOSED with that close (the last
 * WS_CLOSE logged for c). */
void fake_net_ws_finish_close(conn_id_t c);
/* The actor holding connection c (the connection's reference), or NULL when c is closed. */
actor_t *fake_net_ws_target(conn_id_t c);
/* Where connection c's text messages go now (net_wsc_route_text), NULL when c is not open. */
actor_t *fake_net_text_target(conn_id_t c);

/* Fetch id ends: status with body (may be NULL), error "" (or "timeout", "cancelled", …). */
void fake_net_fetch_done(uint64_t id, int status, const char *body, const char *error);

/* Sends actor a NET_MSG_WS_TEXT on conn as if a route had posted it (chat threads get the
 * frames of connections their registry owns). json: an object with a string "type". */
void fake_net_post_text(actor_t *actor, conn_id_t conn, const char *json);

#endif

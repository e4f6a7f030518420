/*
 * wsclose: every WebSocket close the product sends, by name (SPEC 14 "Close codes and reasons").
 *
 * A close is a (code, reason) pair with an exact reason text; code and text are chosen together
 * through a ws_close_t so they cannot drift apart. The network layer reports why a socket it
 * closed itself ended as a ws_close_t too (net_ws_closed_msg_t.why), so nobody decides anything by
 * comparing reason texts. Thread: any (constants only).
 */
#ifndef SB_NET_WSCLOSE_H
#define SB_NET_WSCLOSE_H

#include <stdbool.h>
#include <stdint.h>

/* RFC 6455 7.4.1 status codes, and the product's own in the 4000 range. */
#define WS_CODE_NORMAL       1000
#define WS_CODE_GOING_AWAY   1001
#define WS_CODE_PROTOCOL     1002
#define WS_CODE_UNSUPPORTED  1003
#define WS_CODE_NO_STATUS    1005 /* never sent: "no code in the close frame" */
#define WS_CODE_ABNORMAL     1006 /* never sent: "the socket dropped without a close" */
#define WS_CODE_INVALID_DATA 1007
#define WS_CODE_POLICY       1008
#define WS_CODE_TOO_BIG      1009
#define WS_CODE_INTERNAL     1011
#define WS_CODE_TRY_AGAIN    1013
#define WS_CODE_BAD_GATEWAY  1014 /* the highest RFC 6455 code a peer may send */
#define WS_CODE_APP_MIN      3000 /* 3000-4999: registered and private codes a peer may send */
#define WS_CODE_APP_MAX      4999
#define WS_CODE_REPLACED     4000
#define WS_CODE_IDLE         4408
#define WS_CODE_MAX_DURATION 4409

/* Why a socket was closed: one entry per (code, reason) of SPEC 14, plus the silent ones. */
typedef enum ws_close {
    WS_CLOSE_NONE = 0,             /* not closed by us (the peer closed, or the socket dropped) */
    WS_CLOSE_NORMAL,               /* 1000 "" */
    WS_CLOSE_SHUTDOWN,             /* 1001 "server shutting down" */
    WS_CLOSE_PING_TIMEOUT,         /* 1001 "ping timeout" */
    WS_CLOSE_PROTOCOL_ERROR,       /* 1002 "protocol error" (a peer breaking RFC 6455) */
    WS_CLOSE_UNSUPPORTED_RATE,     /* 1003 "unsupported rate" */
    WS_CLOSE_BINARY,               /* 1003 "binary frames not accepted" (phone streams) */
    WS_CLOSE_BAD_UTF8,             /* 1007 "bad utf8" */
    WS_CLOSE_UNAUTHORIZED,         /* 1008 "unauthorized" */
    WS_CLOSE_NO_START,             /* 1008 "no start" (a phone stream without `start`) */
    WS_CLOSE_FORBIDDEN_ORIGIN,     /* 1008 "forbidden origin" */
    WS_CLOSE_TOO_MANY_ERRORS,      /* 1008 "too many errors" */
    WS_CLOSE_TOO_SLOW,             /* 1008 "too slow" */
    WS_CLOSE_SESSION_EXISTS,       /* 1008 "session exists" */
    WS_CLOSE_FORBIDDEN,            /* 1008 "forbidden" (a chat thread of another user) */
    WS_CLOSE_TOO_BIG,              /* 1009 "message too big" */
    WS_CLOSE_INTERNAL,             /* 1011 "" */
    WS_CLOSE_UPSTREAM_UNAVAILABLE, /* 1011 "upstream unavailable" */
    WS_CLOSE_UPSTREAM_REJECTED,    /* 1011 "upstream rejected config" */
    WS_CLOSE_AT_CAPACITY,          /* 1013 "at capacity" */
    WS_CLOSE_REPLACED,             /* 4000 "replaced" */
    WS_CLOSE_IDLE,                 /* 4408 "idle timeout" */
    WS_CLOSE_MAX_DURATION,         /* 4409 "max duration" */
    WS_CLOSE_COUNT_
} ws_close_t;

typedef struct ws_close_def {
    uint16_t code;
    const char *reason;
} ws_close_def_t;

/* The code and exact reason text of each ws_close_t (WS_CLOSE_NONE: 1006, ""). */
static const ws_close_def_t ws_close_defs[WS_CLOSE_COUNT_] = {
    [WS_CLOSE_NONE] = {WS_CODE_ABNORMAL, ""},
    [WS_CLOSE_NORMAL] = {WS_CODE_NORMAL, ""},
    [WS_CLOSE_SHUTDOWN] = {WS_CODE_GOING_AWAY, "server shutting down"},
    [WS_CLOSE_PING_TIMEOUT] = {WS_CODE_GOING_AWAY, "ping timeout"},
    [WS_CLOSE_PROTOCOL_ERROR] = {WS_CODE_PROTOCOL, "protocol error"},
    [WS_CLOSE_UNSUPPORTED_RATE] = {WS_CODE_UNSUPPORTED, "unsupported rate"},
    [WS_CLOSE_BINARY] = {WS_CODE_UNSUPPORTED, "binary frames not accepted"},
    [WS_CLOSE_BAD_UTF8] = {WS_CODE_INVALID_DATA, "bad utf8"},
    [WS_CLOSE_UNAUTHORIZED] = {WS_CODE_POLICY, "unauthorized"},
    [WS_CLOSE_NO_START] = {WS_CODE_POLICY, "no start"},
    [WS_CLOSE_FORBIDDEN_ORIGIN] = {WS_CODE_POLICY, "forbidden origin"},
    [WS_CLOSE_TOO_MANY_ERRORS] = {WS_CODE_POLICY, "too many errors"},
    [WS_CLOSE_TOO_SLOW] = {WS_CODE_POLICY, "too slow"},
    [WS_CLOSE_SESSION_EXISTS] = {WS_CODE_POLICY, "session exists"},
    [WS_CLOSE_FORBIDDEN] = {WS_CODE_POLICY, "forbidden"},
    [WS_CLOSE_TOO_BIG] = {WS_CODE_TOO_BIG, "message too big"},
    [WS_CLOSE_INTERNAL] = {WS_CODE_INTERNAL, ""},
    [WS_CLOSE_UPSTREAM_UNAVAILABLE] = {WS_CODE_INTERNAL, "upstream unavailable"},
    [WS_CLOSE_UPSTREAM_REJECTED] = {WS_CODE_INTERNAL, "upstream rejected config"},
    [WS_CLOSE_AT_CAPACITY] = {WS_CODE_TRY_AGAIN, "at capacity"},
    [WS_CLOSE_REPLACED] = {WS_CODE_REPLACED, "replaced"},
    [WS_CLOSE_IDLE] = {WS_CODE_IDLE, "idle timeout"},
    [WS_CLOSE_MAX_DURATION] = {WS_CODE_MAX_DURATION, "max duration"},
};

static inline uint16_t ws_close_code(ws_close_t why)
{
    return ws_close_defs[why].code;
}

static inline const char *ws_close_reason(ws_close_t why)
{
    return ws_close_defs[why].reason;
}

/* A code a peer may put in its close frame (RFC 6455 7.4; 1012-1014 as registered since);
 * any other is a protocol error. */
static inline bool ws_close_code_valid(uint16_t code)
{
    return (code >= WS_CODE_NORMAL && code <= WS_CODE_UNSUPPORTED) ||
           (code >= WS_CODE_INVALID_DATA && code <= WS_CODE_BAD_GATEWAY) ||
           (code >= WS_CODE_APP_MIN && code <= WS_CODE_APP_MAX);
}

#endif

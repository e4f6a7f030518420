/*
 * The server connection: a socket accepted by a network thread's listener, speaking HTTP
 * (http.c) and perhaps upgraded to a WebSocket (ws.c). lws carries its bytes as a raw socket;
 * the request heads (httphead.c), bodies, upgrades and frames (wsframe.c) are read here.
 * srv.c creates and frees it and routes lws's callbacks for it. Outbound WebSockets are another
 * type (wsc.c); nothing here frames or parses their frames. Thread: the connection's network thread
 * (everything here).
 */
#ifndef SB_NET_SRV_H
#define SB_NET_SRV_H

#include "net/httphead.h"
#include "net/httpreq.h"
#include "net/net_int.h"
#include "net/wsmsg.h"

typedef enum srv_state {
    CONN_HTTP,       /* requests and responses; not (yet) a WebSocket */
    CONN_WS_OPEN,    /* upgraded: frames flow both ways */
    CONN_WS_CLOSING, /* a close is queued or sent (ours, an echo, or a refusal): no more frames */
    CONN_WS_CLOSED,  /* WS_CLOSED has been posted */
} srv_state_t;

/* Where the HTTP side is in the current request. */
typedef enum http_phase {
    HTTP_HEAD,  /* reading the head (or waiting for the next request on a kept-alive socket) */
    HTTP_BODY,  /* reading the body */
    HTTP_REPLY, /* the request is whole or refused: waiting for its answer to be written */
} http_phase_t;

typedef struct srv_conn {
    net_conn_t base; /* first: the table and the send path see this */
    srv_state_t state;
    uint8_t raw_peer[16]; /* the socket's peer address (IPv4-mapped for IPv4) */
    net_peer_t peer;      /* the client, after trusted proxies */
    uint8_t counted[16];  /* the address this socket counts against (peerlim.c) */
    sbuf_t in;            /* bytes read and not yet used: a request (or the next ones) */
    bool rx_paused;       /* reading is stopped until the answer is written (pipelining) */
    sbuf_t pend;          /* bytes written that the socket has not taken yet (plain TCP) */
    size_t pend_off;      /* how many of them it has taken */
    bool finishing;       /* close once pend has left (after a close frame or a last answer) */
    bool lingering;       /* our side is shut: reading and dropping until EOF or the timer */

    /* HTTP request in progress (http.c). */
    http_phase_t phase;
    httphead_t head; /* the request's head, until its answer is written */
    unsigned method;
    char *path;        /* decoded */
    const char *query; /* raw, into head */
    bool cors;         /* the request's Origin is allowed: answer with CORS headers */
    const net_http_route_t *route;
    sbuf_t body;
    uint64_t body_left;       /* Content-Length bytes still to come */
    bool chunked;             /* the body comes chunked */
    httpreq_chunked_t chunks; /* its decoder */
    bool loopback_host;       /* the request's Host is a loopback name */
    bool awaiting_reply;      /* dispatched to an actor (or answered here) */
    bool close_after;         /* close once the response is written */
    net_out_t *http_resp;

    /* WebSocket (ws.c). */
    const net_ws_route_t *ws_route;
    actor_t *target; /* holds a reference until WS_CLOSED has been posted */
    wsf_rx_t frames; /* the client's frames: our own parser */
    wsmsg_t rx;
    ws_close_t close_why;            /* why we closed it; WS_CLOSE_NONE while we have not */
    uint16_t peer_close_code;        /* from the peer's close frame; 0 when none came */
    uint64_t err_ts[NET_ERR_WINDOW]; /* ring of the times of the last protocol errors */
    uint32_t err_n;
    uint64_t last_rx_ns;
    uint64_t last_ping_ns;
} srv_conn_t;

static inline srv_conn_t *srv_conn_of(net_conn_t *c)
{
    return (srv_conn_t *)c; /* base is the first member */
}

/* srv.c */
/*
 * A new server connection in the table for a socket from peer16 (its wsi is set when lws calls
 * back), counted against peer16's SWITCHBOARD_CONNECTIONS_PER_IP (a trusted proxy is counted
 * but never refused). NULL when the table is full or peer16 has its cap.
 */
srv_conn_t *srv_conn_new(netthr_t *thr, const uint8_t peer16[16]);
/*
 * Counts c against addr16 instead of what it counted against (a trusted proxy's request named
 * its client). Returns false, leaving the count as it was, when addr16 already has its cap.
 */
bool srv_recount(srv_conn_t *c, const uint8_t addr16[16]);
/* lws callbacks of a server connection (a raw socket): bytes in, writeable, timer, close.
 * Returns -1 to close the socket. */
int srv_callback(struct lws *wsi, enum lws_callback_reasons reason, srv_conn_t *c, void *in,
                 size_t len);
/* lws is destroying c's socket: reports a WebSocket's end if not yet reported, and frees c. */
void srv_destroy_net(srv_conn_t *c);
/*
 * Writes len bytes now, after any still pending. On plain TCP the socket gets them directly
 * (send(), no lws buffer: lws stops reading a raw socket while it holds output) and what it does
 * not take waits in c->pend for the next writeable callback; with TLS they go through lws.
 * Returns -1 when the socket has failed.
 */
int srv_write(srv_conn_t *c, void *p, size_t len);
/* Bytes written and not yet taken by the socket (ours, or lws's under TLS). */
size_t srv_unsent(const srv_conn_t *c);
/* Ends the connection once what is written has left: our side is shut down (FIN), and what the
 * peer still sends is read and dropped until it closes too or NET_CLOSE_KILL_S pass, so that
 * the last bytes are not lost to a reset. Returns -1 when the socket can go at once. */
int srv_finish(srv_conn_t *c);

/* ws.c */
/* Answers the upgrade request in c's head (a GET with Upgrade: websocket on a WebSocket route)
 * with 101, or with an HTTP error; on 101 the connection is a WebSocket from here on. */
void ws_upgrade_net(srv_conn_t *c, const net_ws_route_t *route);
/* Bytes from an open (or closing) WebSocket's client; p is writable (unmasked in place). */
void ws_rx_net(srv_conn_t *c, uint8_t *p, size_t len);
/* Writes the next queued frame; returns -1 to close the socket. */
int ws_writeable_net(srv_conn_t *c);
/* The socket has gone: reports the end to the actor once. */
void ws_closed_net(srv_conn_t *c);
bool ws_is_open(const srv_conn_t *c);
/* Closes an open WebSocket with why after what is queued (else nothing). */
void ws_close_net(srv_conn_t *c, ws_close_t why);
/* Writes one text or binary frame now; returns -1 when lws could not take it. */
int ws_write_data_net(srv_conn_t *c, net_out_t *o);
/* Sends a protocol error that counts toward the 20-in-10-s close (SPEC 5, 14). */
void ws_protocol_error_net(srv_conn_t *c, const char *code, const char *message);
/* Sends server_shutting_down, then closes (drain). */
void ws_drain_net(srv_conn_t *c);
/* The periodic ping and the ping timeout. */
void ws_sweep_net(srv_conn_t *c, uint64_t now_ns);
/* The WebSocket route at path, or NULL. */
const net_ws_route_t *ws_find_route(const char *path);

/* http.c */
/* Bytes from the client while c speaks HTTP: reads requests out of c->in. */
void http_rx_net(srv_conn_t *c);
/* Writes the pending answer; returns -1 to close the socket. */
int http_writeable_net(srv_conn_t *c);
/* The request's deadline passed; returns -1 to close the socket. */
int http_deadline_net(srv_conn_t *c);
/* Takes the OUT_HTTP response o for c's request (freed when it does not belong). */
void http_respond_net(srv_conn_t *c, net_out_t *o);
/* Answers a JSON error to the request in c (and closes after it when close_after is set). */
void http_error_net(srv_conn_t *c, int status, const char *code, const char *message,
                    const char *extra_headers);
/* Frees the request state of c. */
void http_conn_destroy(srv_conn_t *c);
/* Fills c->peer from the socket address and X-Forwarded-For (the head must be present). */
void http_resolve_peer(srv_conn_t *c);
/* addr16 is in SWITCHBOARD_TRUSTED_PROXIES. */
bool http_peer_trusted(const uint8_t addr16[16]);
/* Arms the whole-request deadline of c's next request (from now). */
void http_arm_deadline(srv_conn_t *c);
/* The request's Origin is absent, allowed by configuration (or by the origin hook: a tenant's
 * allowedOrigins), or the request's own origin (host: the Host header, NULL when absent). */
bool http_origin_allowed(const char *host, const char *origin);
/* origin is the request's own (scheme and Host) and that Host is one of ours. */
bool http_same_origin(const char *host, const char *origin);

#endif

/*
 * The server connection: a socket accepted by a network thread's listener, speaking HTTP
 * (http.c) and perhaps upgraded to a WebSocket (ws.c). srv.c creates and frees it and routes
 * lws's callbacks for it. Outbound WebSockets are another type (wsc.c); nothing here frames or
 * parses their frames. Thread: the connection's network thread (everything here).
 */
#ifndef SB_NET_SRV_H
#define SB_NET_SRV_H

#include "net/httpreq.h"
#include "net/net_int.h"
#include "net/wsmsg.h"

typedef enum srv_state {
    CONN_HTTP,       /* requests and responses; not (yet) a WebSocket */
    CONN_WS_OPEN,    /* upgraded: frames flow both ways */
    CONN_WS_CLOSING, /* our close is queued or sent, or lws is closing it: no more frames out */
    CONN_WS_CLOSED,  /* WS_CLOSED has been posted */
} srv_state_t;

typedef struct srv_conn {
    net_conn_t base; /* first: the table and the send path see this */
    srv_state_t state;
    uint8_t raw_peer[16]; /* the socket's peer address (IPv4-mapped for IPv4) */
    net_peer_t peer;      /* the client, after trusted proxies */
    uint8_t counted[16];  /* the address this socket counts against (peerlim.c) */

    /* HTTP request in progress (http.c). */
    unsigned method;
    char *path;
    char *query;
    char *authorization;
    char *origin;
    char *content_type;
    char *public_key; /* X-Switchboard-Key */
    bool cors;        /* the request's Origin is allowed: answer with CORS headers */
    const net_http_route_t *route;
    sbuf_t body;
    size_t content_length;
    bool chunked;             /* the body comes chunked (lws hands it over undecoded) */
    httpreq_chunked_t chunks; /* its decoder */
    bool loopback_host;       /* the request's Host is a loopback name */
    bool body_completed;      /* lws has said HTTP_BODY_COMPLETION for this request */
    bool awaiting_reply;
    bool close_after; /* close once the response is written (lws may misframe what follows) */
    bool raw_refused; /* lws gave up on the request line (unknown method): a raw socket now */
    net_out_t *http_resp;

    /* WebSocket (ws.c). */
    const net_ws_route_t *ws_route;
    actor_t *target; /* holds a reference until WS_CLOSED has been posted */
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
/* lws callbacks of a server connection: WebSocket first, then HTTP. */
int srv_callback(struct lws *wsi, enum lws_callback_reasons reason, srv_conn_t *c, void *in,
                 size_t len, void *user);
/* lws is destroying c's socket: reports a WebSocket's end if not yet reported, and frees c. */
void srv_destroy_net(srv_conn_t *c);

/* ws.c */
int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, srv_conn_t *c, void *in,
                size_t len);
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

/* http.c */
int http_callback(struct lws *wsi, enum lws_callback_reasons reason, srv_conn_t *c, void *in,
                  size_t len);
/* Takes the OUT_HTTP response o for c's request (freed when it does not belong). */
void http_respond_net(srv_conn_t *c, net_out_t *o);
/* Frees the request state of c. */
void http_conn_destroy(srv_conn_t *c);
/* Fills c->peer from the socket address and X-Forwarded-For (headers must be present). */
void http_resolve_peer(srv_conn_t *c);
/* addr16 is in SWITCHBOARD_TRUSTED_PROXIES. */
bool http_peer_trusted(const uint8_t addr16[16]);
/* Arms the whole-request deadline of c's next request (from now). */
void http_arm_deadline(srv_conn_t *c);
/* The request's Origin is absent, allowed by configuration, or the request's own origin. */
bool http_origin_allowed(struct lws *wsi, const char *origin);
/* Copies header tok into a new string, or NULL when absent. */
char *http_hdr_dup(struct lws *wsi, enum lws_token_indexes tok);
char *http_query_dup(struct lws *wsi);

#endif

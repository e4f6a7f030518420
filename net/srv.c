/*
 * The server connection's life (srv.h): created when the listener accepts a socket, freed when
 * lws destroys it, and the route of lws's callbacks to the WebSocket side (ws.c) and then the
 * HTTP side (http.c). Thread: net (every function here).
 */
#include <stdlib.h>

#include "base/util.h"
#include "net/srv.h"

srv_conn_t *srv_conn_new(netthr_t *thr, struct lws *wsi)
{
    srv_conn_t *c = xcalloc(1, sizeof(*c));
    c->base.kind = NET_CONN_SERVER;
    c->base.wsi = wsi;
    if (conntab_add(thr, &c->base) != 0) {
        free(c);
        return NULL;
    }
    c->state = CONN_HTTP;
    sbuf_init(&c->body);
    return c;
}

void srv_destroy_net(srv_conn_t *c)
{
    /* A WebSocket lws drops without LWS_CALLBACK_CLOSED still reports its end (once). */
    ws_callback(c->base.wsi, LWS_CALLBACK_CLOSED, c, NULL, 0);
    send_clear(&c->base);
    http_conn_destroy(c);
    wsmsg_destroy(&c->rx);
    conntab_remove(&c->base);
    free(c);
}

int srv_callback(struct lws *wsi, enum lws_callback_reasons reason, srv_conn_t *c, void *in,
                 size_t len, void *user)
{
    int rc = ws_callback(wsi, reason, c, in, len);
    if (rc != 1)
        return rc;
    rc = http_callback(wsi, reason, c, in, len);
    if (rc != 1)
        return rc;
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

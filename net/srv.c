/*
 * The server connection's life (srv.h): created when the listener accepts a socket, freed when
 * lws destroys it, and the route of lws's callbacks to the WebSocket side (ws.c) and then the
 * HTTP side (http.c). Thread: net (every function here).
 */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "net/srv.h"

srv_conn_t *srv_conn_new(netthr_t *thr, const uint8_t peer16[16])
{
    if (!peerlim_try_add(peer16, http_peer_trusted(peer16)))
        return NULL;
    srv_conn_t *c = xcalloc(1, sizeof(*c));
    c->base.kind = NET_CONN_SERVER;
    if (conntab_add(thr, &c->base) != 0) {
        peerlim_remove(peer16);
        free(c);
        return NULL;
    }
    memcpy(c->raw_peer, peer16, 16);
    memcpy(c->counted, peer16, 16);
    c->state = CONN_HTTP;
    sbuf_init(&c->body);
    return c;
}

bool srv_recount(srv_conn_t *c, const uint8_t addr16[16])
{
    if (memcmp(c->counted, addr16, 16) == 0)
        return true;
    if (!peerlim_try_add(addr16, false))
        return false;
    peerlim_remove(c->counted);
    memcpy(c->counted, addr16, 16);
    return true;
}

void srv_destroy_net(srv_conn_t *c)
{
    /* A WebSocket lws drops without LWS_CALLBACK_CLOSED still reports its end (once). */
    ws_callback(c->base.wsi, LWS_CALLBACK_CLOSED, c, NULL, 0);
    send_clear(&c->base);
    http_conn_destroy(c);
    wsmsg_destroy(&c->rx);
    conntab_remove(&c->base);
    peerlim_remove(c->counted);
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

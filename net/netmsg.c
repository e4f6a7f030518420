/*
 * Messages to actors that both WebSocket directions post (server connections in ws.c, outbound
 * ones in wsc.c): their free functions and the WS_CLOSED message. Thread: any.
 */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "net/net_int.h"
#include "net/wsproto.h"

void netmsg_open_free(msg_t *m)
{
    free(((net_ws_open_msg_t *)m)->query);
    free(((net_ws_open_msg_t *)m)->origin);
    msg_block_free(m);
}

void netmsg_text_free(msg_t *m)
{
    cJSON_Delete(((net_ws_text_msg_t *)m)->json);
    msg_block_free(m);
}

net_ws_closed_msg_t *netmsg_closed_new(conn_id_t id, ws_close_t why, uint16_t peer_code)
{
    net_ws_closed_msg_t *m = MSG_NEW(net_ws_closed_msg_t, NET_MSG_WS_CLOSED);
    m->conn = id;
    m->why = why;
    m->by_server = why != WS_CLOSE_NONE;
    m->code = m->by_server ? ws_close_code(why) : (peer_code ? peer_code : WS_CODE_ABNORMAL);
    str_copy(m->reason, ws_close_reason(why), sizeof(m->reason));
    return m;
}

net_ws_binary_msg_t *netmsg_fast_new(conn_id_t id, const net_ws_fast_t *f, uint64_t sent_ns)
{
    size_t size = sizeof(net_ws_binary_msg_t) + f->len + 1 + f->aux_len + 1;
    net_ws_binary_msg_t *m = (net_ws_binary_msg_t *)msg_new_head(NET_MSG_WS_FAST, size,
                                                                 sizeof(net_ws_binary_msg_t));
    m->hdr.flags = f->audio ? MSG_F_AUDIO : 0;
    m->hdr.sent_ns = sent_ns;
    m->conn = id;
    m->kind = f->kind;
    m->num = f->num;
    m->len = f->len;
    m->aux_len = (uint32_t)f->aux_len;
    memcpy(m->data, f->data, f->len);
    m->data[f->len] = '\0';
    if (f->aux_len)
        memcpy(m->data + f->len + 1, f->aux, f->aux_len);
    m->data[f->len + 1 + f->aux_len] = '\0';
    return m;
}

net_ws_binary_msg_t *netmsg_audio_delta_new(conn_id_t id, const char *s, size_t len,
                                            uint64_t sent_ns)
{
    wsp_span_t delta, item;
    if (!wsp_scan_audio_delta(s, len, &delta, &item))
        return NULL;
    net_ws_fast_t f = {.kind = NET_WSC_FAST_AUDIO,
                       .audio = true,
                       .num = -1,
                       .data = delta.p,
                       .len = delta.len,
                       .aux = item.p,
                       .aux_len = item.p ? item.len : 0};
    return netmsg_fast_new(id, &f, sent_ns);
}

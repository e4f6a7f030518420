/*
 * The parts of the send API (net.h) that only compose the primitives (net_ws_send_text(),
 * net_http_respond()): JSON events and the SPEC 4 error bodies. No I/O of their own, so the actor
 * unit tests link them in front of their fake network. Thread: any.
 */
#include <cjson/cJSON.h>
#include <string.h>

#include "base/sbuf.h"
#include "net/net.h"
#include "net/net_int.h"

void net_ws_send_json(conn_id_t c, const cJSON *j)
{
    char *s = cJSON_PrintUnformatted(j);
    if (s == NULL)
        return;
    net_ws_send_text(c, s, strlen(s));
    cJSON_free(s);
}

void net_error_json(sbuf_t *b, bool ws_event, const char *code, const char *message)
{
    sbuf_puts(b, ws_event ? "{\"type\":\"error\",\"error\":{\"code\":" : "{\"error\":{\"code\":");
    sbuf_json_str(b, code);
    sbuf_puts(b, ",\"message\":");
    sbuf_json_str(b, message);
    sbuf_puts(b, "}}");
}

void net_ws_send_error(conn_id_t c, const char *code, const char *message)
{
    sbuf_t b = SBUF_INIT;
    net_error_json(&b, true, code, message);
    net_ws_send_text(c, b.data, b.len);
    sbuf_destroy(&b);
}

void net_http_error(conn_id_t c, int status, const char *code, const char *message)
{
    sbuf_t b = SBUF_INIT;
    net_error_json(&b, false, code, message);
    net_http_respond(c, status, b.data, b.len, NULL);
    sbuf_destroy(&b);
}

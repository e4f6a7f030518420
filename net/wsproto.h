/*
 * wsproto: what a client's text frame is (SPEC 5, 14): a text `ping`, a JSON ping, invalid JSON,
 * an invalid event, an event type the endpoint does not accept, or an event to post to the actor.
 * Pure: no I/O, no globals. Thread: any. Shared by the network threads and the fuzz target.
 */
#ifndef SB_NET_WSPROTO_H
#define SB_NET_WSPROTO_H

#include <cjson/cJSON.h>
#include <stddef.h>

typedef enum wsp_kind {
    WSP_PING_TEXT,     /* the bare text `ping`: answer `pong` */
    WSP_PING_EVENT,    /* {"type":"ping"}: answer {"type":"pong"} */
    WSP_INVALID_JSON,  /* not JSON */
    WSP_INVALID_EVENT, /* JSON, but not an object with a string "type" */
    WSP_UNSUPPORTED,   /* a type not in the endpoint's list */
    WSP_EVENT,         /* *json_out holds the event (owned by the caller) */
} wsp_kind_t;

/*
 * Classifies the text frame s of len bytes for an endpoint accepting the NULL-terminated types.
 * Only WSP_EVENT and WSP_UNSUPPORTED leave a parsed event in *json_out (the caller frees it);
 * otherwise *json_out is NULL.
 */
wsp_kind_t wsp_classify(const char *s, size_t len, const char *const *types, cJSON **json_out);
/*
 * The same, except that a JSON object with no "type" member at all is taken as an event of type
 * untyped (the member is added to *json_out) when untyped is not NULL: /ws/agent's bare
 * {"answer":…} (SPEC 14 "Agent runs").
 */
wsp_kind_t wsp_classify_untyped(const char *s, size_t len, const char *const *types,
                                const char *untyped, cJSON **json_out);

#endif

/*
 * wsproto: what a client's text frame is (SPEC 5, 14): a text `ping`, a JSON ping, invalid JSON,
 * an invalid event, an event type the endpoint does not accept, or an event to post to the actor.
 * Pure: no I/O, no globals. Thread: any. Shared by the network threads and the fuzz target.
 */
#ifndef SB_NET_WSPROTO_H
#define SB_NET_WSPROTO_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

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

/*
 * True when the len bytes at s are well-formed UTF-8 (Unicode 15, table 3-7: no overlong forms,
 * no surrogates, nothing above U+10FFFF, no sequence cut short at the end). RFC 6455 8.1 asks this
 * of every text message. Runs of ASCII are checked eight bytes at a time, so the JSON of the audio
 * path (all ASCII) costs a fraction of an instruction per byte, where the byte-at-a-time check
 * libwebsockets does with LWS_SERVER_OPTION_VALIDATE_UTF8 cost about nine.
 */
bool wsp_utf8_valid(const void *s, size_t len);

/* A string member's raw bytes inside the message (no escapes in them), or p NULL when absent. */
typedef struct wsp_span {
    const char *p;
    size_t len;
} wsp_span_t;

/* True when the span holds exactly the characters of lit. */
static inline bool wsp_span_is(wsp_span_t s, const char *lit)
{
    return s.p && s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

#define WSP_SCAN_DEPTH   32
#define WSP_SCAN_MEMBERS 4

/*
 * A fast look at an event without building a cJSON tree (cJSON spent ~30 k instructions on each
 * 1.4 KB audio event): true when the len bytes at s are exactly one JSON object by RFC 8259's
 * strict grammar (whitespace around it allowed, nesting at most WSP_SCAN_DEPTH, no \u escapes,
 * no escape in a key or in the first member named in names), with out[i] giving the first
 * top-level member called names[i] (n of them, at most WSP_SCAN_MEMBERS) when it is a string
 * (p NULL when absent or not a string). Whatever this accepts, cJSON parses to the same members;
 * when it returns false the caller parses with cJSON as before. Thread: any.
 */
bool wsp_scan_event(const char *s, size_t len, const char *const *names, size_t n, wsp_span_t *out);

#define WSP_SCAN_OBJECTS 2

/*
 * wsp_scan_event(), and besides: obj_out[j] gets the first top-level member called objs[j] (n_objs
 * of them, at most WSP_SCAN_OBJECTS; names the names above do not use) when it is an object: its
 * text, braces included, which the scan has checked (p NULL when absent, not an object, or named
 * more than once at the top level). A caller that reads a member of a nested object scans that
 * span again, without walking the whole text to find it.
 */
bool wsp_scan_event_objs(const char *s, size_t len, const char *const *names, size_t n,
                         wsp_span_t *out, const char *const *objs, size_t n_objs,
                         wsp_span_t *obj_out);

/*
 * True when wsp_scan_event() vouches for the len bytes at s as a Realtime audio delta: type
 * response.output_audio.delta (or the beta response.audio.delta) and a string delta. *delta is
 * the delta (base64, not decoded), *item the item_id (p NULL when absent or not a string), as
 * cJSON would read them. Outbound WebSockets read audio deltas this way (NET_WSC_FAST_AUDIO).
 */
bool wsp_scan_audio_delta(const char *s, size_t len, wsp_span_t *delta, wsp_span_t *item);

/* A cJSON object holding, as strings, the members wsp_scan_event() found (absent ones left
 * out): what a caller that needs only those members would have got from cJSON. */
cJSON *wsp_scan_tree(const char *const *names, const wsp_span_t *spans, size_t n);

#endif

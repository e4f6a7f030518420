/*
 * Internals of the MCP client shared by its files and the unit tests: the SSE parser
 * (mcpsse.c), tool-name mapping (mcpname.c), JSON-RPC helpers (mcpproto.c), the client actor's
 * state (mcp.c) and its Streamable HTTP transport (mcphttp.c).
 * Thread: the owning client actor's worker for everything stateful here; the pure helpers are
 * callable from any thread.
 */
#ifndef SB_AGENTS_MCP_INT_H
#define SB_AGENTS_MCP_INT_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actors/timer.h"
#include "agents/mcp/mcp.h"
#include "base/sbuf.h"

/* ---- SSE (mcpsse.c): an incremental text/event-stream parser ------------------------------ */

#define MCPSSE_ID_MAX 256

typedef struct mcpsse {
    sbuf_t line;                 /* the line being received */
    sbuf_t data;                 /* data lines of the event so far, joined with '\n' */
    char event[64];              /* the event's type, "" = message */
    char last_id[MCPSSE_ID_MAX]; /* the last event id seen, "" when none */
    bool has_data;
    bool cr;          /* the previous chunk ended in '\r' (a "\r\n" split across chunks) */
    int64_t retry_ms; /* the last retry field, -1 when none */
} mcpsse_t;

/* Called once per complete event with its data (NUL-terminated); empty-data events are skipped
 * (their id is still recorded). */
typedef void (*mcpsse_event_fn)(void *arg, const char *event, const char *data, size_t len);

void mcpsse_init(mcpsse_t *p);
void mcpsse_destroy(mcpsse_t *p);
/* Feeds n bytes (any split); calls fn for each event completed by them. */
void mcpsse_feed(mcpsse_t *p, const char *s, size_t n, mcpsse_event_fn fn, void *arg);

/* ---- Tool names (mcpname.c) ----------------------------------------------------------------- */

/* True when name is already exposed (by this table or another server). */
typedef bool (*mcpname_taken_fn)(void *arg, const char *name);

/*
 * The exposed name of tool `original` of server `alias`: "<alias>__<tool>" with every character
 * outside [A-Za-z0-9_-] replaced by '_', cut to 64; when it was cut, changed or is taken, the
 * stable 8-hex hash of alias and original replaces its tail ("…_1a2b3c4d"), so two tools never
 * share a name. out gets at most TOOL_NAME_MAX characters.
 */
void mcpname_expose(const char *alias, const char *original, mcpname_taken_fn taken, void *arg,
                    char out[TOOL_NAME_MAX + 1]);
/* True when s matches ^[a-zA-Z0-9_-]{1,64}$. */
bool mcpname_valid(const char *s);

/* ---- JSON-RPC (mcpproto.c) ------------------------------------------------------------------ */

typedef enum mcpproto_kind {
    MCPPROTO_INVALID,
    MCPPROTO_REQUEST,      /* method + id: the server asks; answer it */
    MCPPROTO_NOTIFICATION, /* method, no id */
    MCPPROTO_RESPONSE,     /* id + result or error: the answer to one of ours */
} mcpproto_kind_t;

/* Classifies by shape (never by id: the two directions' ids collide). */
mcpproto_kind_t mcpproto_classify(const cJSON *msg);
/* {"jsonrpc":"2.0","id":id,"method":method,"params":params}; takes params (may be NULL). */
cJSON *mcpproto_request(int64_t id, const char *method, cJSON *params);
/* The same without an id. */
cJSON *mcpproto_notification(const char *method, cJSON *params);
/* A response to a server request: a copy of its id with result (taken) or an error. */
cJSON *mcpproto_result(const cJSON *id, cJSON *result);
cJSON *mcpproto_error(const cJSON *id, int code, const char *message);
/* One compact line with the '\n' framing stdio needs; free with free(). */
char *mcpproto_line(const cJSON *msg, size_t *len);
/* True when v is a protocol version this client speaks. */
bool mcpproto_version_ok(const char *v);
/* The initialize params (elicitation advertised only when asked). */
cJSON *mcpproto_init_params(bool elicitation);
/* The result of elicitation/create accepting each requested field's default. */
cJSON *mcpproto_elicit_defaults(const cJSON *params);
/* The arguments the conformance client sends to a tool: a=2, b=3, other numbers 1, ... */
cJSON *mcpproto_sample_args(const cJSON *input_schema);
/*
 * The tool result message for a tools/call answer: result (or error when result is NULL).
 * Text blocks joined with '\n' (resource links as their uri, embedded resources as their text),
 * then structuredContent as compact JSON on its own line; the first image kept.
 */
tool_result_msg_t *mcpproto_call_result(uint64_t cookie, const cJSON *result, const cJSON *error);
/* A tool error in the SPEC 14 shape {"error":{"code","message"}} as a result message. */
tool_result_msg_t *mcpproto_tool_error(uint64_t cookie, const char *code, const char *message);

/* ---- The client actor (mcp.c) --------------------------------------------------------------- */

typedef enum mcp_state {
    MCP_ST_CONNECTING, /* initialize or the first tools/list in flight */
    MCP_ST_READY,
    MCP_ST_BACKOFF, /* waiting to restart */
    MCP_ST_DOWN,    /* failed, no restart (CLI) */
    MCP_ST_CLOSING,
    MCP_ST_CLOSED,
} mcp_state_t;

typedef enum mcp_req_kind { MCP_RQ_INIT, MCP_RQ_LIST, MCP_RQ_CALL, MCP_RQ_PING } mcp_req_kind_t;

/* One request the client sent and waits for. */
typedef struct mcp_req {
    struct mcp_req *next;
    int64_t id;
    mcp_req_kind_t kind;
    actor_t *reply_to; /* calls: a reference */
    uint64_t cookie;
    char tool[TOOL_NAME_MAX + 1]; /* calls: the name the caller used (metrics, logs) */
    actor_timer_t *timer;
    char *text;  /* HTTP: the request as sent, for a resend after a re-initialisation */
    bool resend; /* HTTP: the session was lost before it was handled */
    uint64_t started_ns;
} mcp_req_t;

/* A tool of the current list. */
typedef struct mcp_tool {
    char *original;
    char exposed[TOOL_NAME_MAX + 1];
} mcp_tool_t;

typedef struct mcphttp mcphttp_t;

typedef struct mcp {
    actor_t actor;
    int up;                 /* [atomic, any] 1 while ready; read by mcp_metrics() */
    agent_mcp_server_t srv; /* [owner] a deep copy */
    char *tenant;           /* [owner] whose server it is (its tools are that tenant's) */
    uint64_t key;           /* [owner] mcp_server_key(&srv) */
    char log_name[80];      /* "mcp:<alias>", "mcp:<tenant>/<alias>" beside the default tenant */
    actor_t *owner;
    bool publish, restart, elicit;
    uint32_t call_timeout_ms;

    mcp_state_t state;
    int64_t next_id;
    mcp_req_t *reqs;
    char version[16];    /* negotiated */
    uint64_t proc_id;    /* stdio: the child, 0 when none */
    mcphttp_t *http;     /* HTTP: the transport's state */
    uint32_t generation; /* bumps per connection attempt: stale transport events are ignored */

    cJSON *listing; /* tools/list pages so far */
    bool listing_now, relist;
    mcp_tool_t *tools;
    size_t n_tools;

    actor_timer_t *restart_timer, *ping_timer, *relist_timer;
    uint32_t backoff_ms;
    uint64_t ready_ns;
    bool counted; /* counted in the live clients mcp_stop_all() waits for */
} mcp_t;

/* Handles one message from the server (any transport). Takes msg. */
void mcp_on_message(mcp_t *m, cJSON *msg);
/* The transport has failed (connection refused, child gone, session unusable): why. */
void mcp_on_transport_down(mcp_t *m, const char *why);
/* Starts a fresh initialize on the current transport (HTTP session lost). */
void mcp_reinitialize(mcp_t *m);
/* The shutdown has finished (child gone, session deleted): tell the owner and stop. */
void mcp_closed(mcp_t *m);
mcp_req_t *mcp_req_find(mcp_t *m, int64_t id);
/* Clients spawned and not yet closed (mcp_stop_all() waits for none). Thread: any. */
int mcp_live_clients(void);

/* ---- Streamable HTTP (mcphttp.c) ------------------------------------------------------------ */

void mcphttp_open(mcp_t *m);
/* POSTs one message; req is the request it carries or NULL. */
void mcphttp_send(mcp_t *m, const char *text, size_t len, mcp_req_t *req);
/* A request is no longer awaited: stop reading the stream that carries it. */
void mcphttp_forget(mcp_t *m, int64_t id);
/* After notifications/initialized: open the standalone GET stream. */
void mcphttp_ready(mcp_t *m);
/* Fetch and timer messages of the transport; returns false when m is not one of them. */
bool mcphttp_handle(mcp_t *m, msg_t *msg);
/* Cancels every stream. With end_session, DELETEs the session; returns true when a DELETE is in
 * flight (the client waits for its DONE). */
bool mcphttp_close(mcp_t *m, bool end_session);
void mcphttp_free(mcp_t *m);

#endif

/*
 * auth: who may do what (SPEC 4, 14). The gate actor owns the ephemeral tokens, the per-IP rate
 * windows of POST /api/sessions and the registry of live voice sessions (gate.c); jwtauth.h
 * checks the HS256 JWTs of /ws/chat and /ws/agent (auth_jwt() picks the tenant's secret);
 * userkey.h makes and checks the keys of anonymous chat users; the bearer checks guard the
 * server-to-server API (bearer.c). It may call
 * agents/config and agents/tenant (whose keys name the tenant of a request, SPEC 16) only:
 * askers name themselves in their messages (reply_to), so the gate never needs to know what a
 * session or a chat registry is.
 *
 * CONTRACT
 *   gate_spawn(): main thread (agents.c). The message builders and the bearer checks: any
 *   thread. Messages are owned by the receiver once sent.
 */
#ifndef SB_AGENTS_AUTH_AUTH_H
#define SB_AGENTS_AUTH_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "actors/actor.h"
#include "agents/auth/jwtauth.h"
#include "mailbox/msgtypes.h"
#include "net/net.h"
#include "net/wsclose.h"
#include "agents/tenant/tenant.h"

#define ID_MAX         64 /* sessionId, threadId, userId: [A-Za-z0-9_-]{1,64} */
#define SESSION_ID_MIN 8  /* a sessionId is [A-Za-z0-9_-]{8,64} (SPEC 4, 5.1, 5.2) */

enum {
    GATE_MSG_ADMIT = MSG_TYPE_AUTH_BASE + 1, /* session -> gate: gate_admit_msg_t */
    GATE_MSG_ADMITTED,                       /* gate -> session: gate_admitted_msg_t */
    GATE_MSG_ENDED,                          /* session -> gate: gate_ended_msg_t */
    GATE_MSG_REDEEM,                         /* any -> gate: gate_redeem_msg_t */
    GATE_MSG_REDEEMED,                       /* gate -> the asker: gate_redeemed_msg_t */
    GATE_MSG_MINT_PHONE,                     /* phone webhook -> gate: gate_mint_phone_msg_t */
    GATE_MSG_MINTED_PHONE,                   /* gate -> the asker: gate_minted_phone_msg_t */
};

/* session -> gate: admit this connection (the token is spent if valid). */
typedef struct gate_admit_msg {
    msg_t hdr;
    actor_t *session; /* a reference, owned by the message */
    char session_id[ID_MAX + 1];
    char token[80];
    net_peer_t peer;
    char *origin;     /* owned: the upgrade's Origin, NULL when none */
    bool same_origin; /* that Origin is the request's own (net_ws_open_msg_t) */
    bool phone; /* a phone stream (SPEC 5.5): only a phone token, and no per-IP cap (the peer is
                   Twilio's media server, not the caller) */
} gate_admit_msg_t;

/* gate -> session: the answer to GATE_MSG_ADMIT. */
typedef struct gate_admitted_msg {
    msg_t hdr;
    bool ok;
    ws_close_t why;   /* when refused: how to close the socket */
    tenant_t *tenant; /* when ok: the token's tenant as it is now, a reference owned by the
                         message (take it by setting this NULL) */
} gate_admitted_msg_t;

/*
 * chat -> gate: spend this ephemeral token for a /ws/chat connection. Only chat tokens are good
 * (SPEC 5.3, 14), and the sessionId binding and the voice capacity do not apply. A known token
 * is spent whatever the answer. The gate answers GATE_MSG_REDEEMED with the token's user, which
 * the asker compares with the userId the connection claims.
 */
typedef struct gate_redeem_msg {
    msg_t hdr;
    actor_t *reply_to; /* a reference, owned by the message */
    uint64_t cookie;   /* echoed */
    char token[80];
} gate_redeem_msg_t;

typedef struct gate_redeemed_msg {
    msg_t hdr;
    uint64_t cookie;
    bool ok;                  /* a chat token, unexpired and not spent before */
    char user_id[ID_MAX + 1]; /* when ok: the user the token belongs to */
    tenant_t *tenant;         /* when ok: its tenant, a reference owned by the message (take it
                                 by setting this NULL); NULL when that tenant is gone */
} gate_redeemed_msg_t;

/*
 * phone webhook -> gate: a call is ringing (SPEC 5.5). If the voice limits allow one more
 * session of tenant (global, the tenant's), mint a single-use phone token bound to session_id
 * (the CallSid), valid SWITCHBOARD_TOKEN_TTL_S, and answer GATE_MSG_MINTED_PHONE.
 */
typedef struct gate_mint_phone_msg {
    msg_t hdr;
    actor_t *reply_to; /* a reference, owned by the message */
    uint64_t cookie;   /* echoed */
    char session_id[ID_MAX + 1];
    char tenant[TENANT_ID_MAX + 1];
    int max_sessions; /* the tenant's limit (tenant_max_sessions()) */
} gate_mint_phone_msg_t;

typedef struct gate_minted_phone_msg {
    msg_t hdr;
    uint64_t cookie;
    bool ok;        /* false: at capacity, or that CallSid has a live session */
    char token[80]; /* when ok */
} gate_minted_phone_msg_t;

/* Builds a GATE_MSG_MINT_PHONE (takes a new reference to reply_to). */
gate_mint_phone_msg_t *gate_mint_phone_new(actor_t *reply_to, uint64_t cookie,
                                           const char *session_id, const tenant_t *tenant);

/* session -> gate: an admitted session has ended. */
typedef struct gate_ended_msg {
    msg_t hdr;
    char session_id[ID_MAX + 1];
    char ip[48];
} gate_ended_msg_t;

/* Builds a GATE_MSG_ADMIT (takes a new reference to session; copies the rest). */
gate_admit_msg_t *gate_admit_new(actor_t *session, const char *session_id, const char *token,
                                 const net_peer_t *peer, const char *origin, bool same_origin);

/* Builds a GATE_MSG_ADMITTED (tenant: a reference the message takes, or NULL). */
gate_admitted_msg_t *gate_admitted_new(bool ok, ws_close_t why, tenant_t *tenant);

/* Builds a GATE_MSG_REDEEM (takes a new reference to reply_to). */
gate_redeem_msg_t *gate_redeem_new(actor_t *reply_to, uint64_t cookie, const char *token);

#define GATE_USER_SECRET_BYTES 32 /* = USERKEY_SECRET_BYTES = STORE_SERVER_KEY_BYTES */

/*
 * Spawns the gate (the target of POST /api/sessions); NULL when the runtime refuses.
 * user_secret is the server key that signs anonymous chat users' userKeys (userkey.h); the gate
 * keeps a copy.
 */
actor_t *gate_spawn(const uint8_t user_secret[GATE_USER_SECRET_BYTES]);
/*
 * The stored server key, read after start-up (PostgreSQL: store_keys_t.later): the gate spawned
 * with later = true uses it from now on and is ready (gate_cluster_ready()) only once it came.
 * Thread: any.
 */
actor_t *gate_spawn_later(const uint8_t stand_in[GATE_USER_SECRET_BYTES]);
void gate_user_key(actor_t *gate, const uint8_t user_secret[GATE_USER_SECRET_BYTES]);

#define NODE_ID_MAX 64 /* SWITCHBOARD_NODE_ID */

/* This node's name in the cluster (SPEC 13): SWITCHBOARD_NODE_ID, else hostname:port; false
 * (out "") before the listening port is known. Thread: any. */
bool cluster_node_id(char out[NODE_ID_MAX + 1]);

/* Without Redis true; with it, whether this node has taken the cluster's userKey secret and
 * written its registry (SPEC 13: /readyz); false while a gate_spawn_later() gate waits for its
 * key. Thread: any. */
bool gate_cluster_ready(void);

/* Constant-time comparison of a bearer Authorization header with the secret (bearer.c). */
bool auth_bearer_ok(const char *authorization, const char *secret);
/* Server-to-server auth (SPEC 4): the API secret when set, else loopback callers only. */
bool auth_api_ok(const net_http_msg_t *req);
/*
 * Server-to-server auth with tenants (SPEC 16): true for the operator (SWITCHBOARD_API_SECRET,
 * or a loopback caller when it is unset; *tenant = NULL: every tenant) or for a tenant's
 * apiSecret (*tenant = that tenant, a reference for the caller); false otherwise.
 */
bool auth_api_scope(const net_http_msg_t *req, tenant_t **tenant);
/* The tenant whose apiSecret the request's bearer is (a reference), or NULL. */
tenant_t *auth_bearer_tenant(const net_http_msg_t *req);

/*
 * Verifies the JWT of a /ws/chat or /ws/agent connection for its tenant (SPEC 16,
 * jwttenant.c): the `tenant` claim names the tenant (none: the default tenant), and the token
 * must verify with that tenant's jwtSecret, else SWITCHBOARD_JWT_SECRET. JWTAUTH_OK with the
 * claims and *tenant (a reference for the caller); JWTAUTH_UNKNOWN_TENANT when the claim names
 * no tenant (or none is named and there is no default); otherwise as jwtauth_verify(), and
 * *tenant is NULL. Thread: any.
 */
jwtauth_status_t auth_jwt(const char *token, int64_t now_s, jwtauth_claims_t *claims,
                          tenant_t **tenant);

#endif

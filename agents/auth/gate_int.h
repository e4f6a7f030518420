/*
 * The gate's internals, shared by its two halves: gate.c (the messages, the checks that need no
 * shared state, and the in-process token store and session registry) and gateredis.c (the same
 * store and registry in Redis, SPEC 13, when SWITCHBOARD_REDIS_URL is set). Thread: the gate
 * actor's.
 */
#ifndef SB_AGENTS_AUTH_GATE_INT_H
#define SB_AGENTS_AUTH_GATE_INT_H

#include "actors/timer.h"
#include "agents/auth/auth.h"
#include "agents/auth/userkey.h"
#include "base/ratewin.h"
#include "base/strmap.h"

#define GATE_SWEEP_MS    10000
#define GATE_LEASE_MS    5000  /* the node's lease is refreshed this often (SPEC 13) ... */
#define GATE_LEASE_TTL_MS 15000 /* ... and dies this long after the last refresh */
#define RATE_WINDOW_S    60
#define TOKEN_BYTES      32
#define TOKEN_PREFIX     "ek_"
#define TOKEN_TEXT_MAX   80 /* gate_admit_msg_t.token */
#define SESSION_ID_BYTES 12
#define PURPOSE_VOICE    0
#define PURPOSE_CHAT     1
#define PURPOSE_PHONE    2 /* a /twilio/media stream's token (SPEC 5.5) */
#define GATE_MSG_SWEEP   (MSG_TYPE_AUTH_BASE + 0xF0u) /* its own timers */
#define GATE_MSG_LEASE   (MSG_TYPE_AUTH_BASE + 0xF1u)
#define GATE_MSG_USER_KEY (MSG_TYPE_AUTH_BASE + 0xF2u) /* gate_user_key() */

_Static_assert(GATE_USER_SECRET_BYTES == USERKEY_SECRET_BYTES, "one key size");

typedef struct token {
    char session_id[ID_MAX + 1];
    char tenant[TENANT_ID_MAX + 1]; /* the tenant it was minted for */
    char user_id[ID_MAX + 1];       /* chat: the user it belongs to; voice: "" */
    uint64_t expires_ns;
    int purpose;
} token_t;

typedef struct live_session {
    actor_t *actor; /* a reference */
    char ip[48];    /* "" for a phone stream: it counts toward no per-IP cap */
    char tenant[TENANT_ID_MAX + 1];
} live_session_t;

typedef struct gate {
    actor_t actor;
    strmap_t tokens;     /* token -> token_t (in-process store) */
    ratewin_t windows;   /* ip -> POST /api/sessions in its minute (in-process) */
    strmap_t sessions;   /* sessionId -> live_session_t: this node's live sessions */
    strmap_t per_ip;     /* ip -> (uintptr_t) live sessions of that IP (in-process caps) */
    strmap_t per_tenant; /* tenant id -> (uintptr_t) live sessions of that tenant */
    int live;
    actor_timer_t *sweep;
    uint8_t user_secret[USERKEY_SECRET_BYTES]; /* immutable: signs anonymous users' userKeys */
    /* Redis (gateredis.c) */
    actor_timer_t *lease;
    strmap_t pending;  /* cookie (hex) -> gr_pending_t: commands waiting for their reply */
    uint64_t next_cookie;
    char node[NODE_ID_MAX + 1]; /* SWITCHBOARD_NODE_ID, or hostname:port */
    bool registered; /* the registry in Redis holds this node's sessions */
    bool dirty;      /* a session's end could not be written: re-register at the next lease */
    bool keyed;      /* user_secret is the cluster's (sb:userkey), so userKeys work on any node */
    bool key_later;  /* user_secret is a stand-in until the store's key comes (PostgreSQL) */
    uint32_t ticks;  /* of the lease timer */
} gate_t;

/*
 * What a POST /api/sessions asks for once the checks that need no shared state have run
 * (mint_plan() in gate.c). A refusal those checks found after the place of the rate limit in
 * the order of checks (SPEC 14) is kept in err_*: the rate limit answers first when it applies.
 */
typedef struct mint_plan {
    int purpose;
    char session_id[ID_MAX + 1];
    char user_id[ID_MAX + 1];
    char user_key[USERKEY_LEN + 1];
    char tenant[TENANT_ID_MAX + 1];
    int tenant_max;
    char token[TOKEN_TEXT_MAX];
    char ip[48];
    int err_status; /* 0: none */
    const char *err_code;
    const char *err_message;
} mint_plan_t;

/* gate.c, for gateredis.c */
/* Writes a new random token ("ek_" + hex) into out (room for TOKEN_TEXT_MAX). */
void gate_new_token(char *out);
/* Answers a mint with 200 and the plan's token (the token store already holds it). */
void gate_mint_ok(conn_id_t conn, mint_plan_t *plan);
/* Answers 429 rate_limited with Retry-After: wait_s. */
void gate_mint_rate_limited(conn_id_t conn, int wait_s);
/* Answers an admission. */
void gate_answer(actor_t *session, bool ok, ws_close_t why, tenant_t *tenant);
/* Adds an admitted session to this node's registry (ip "" for a phone stream). */
void gate_register(gate_t *g, actor_t *session, const char *session_id, const char *ip,
                   const char *tenant);
/* The checks of an admission that the token's tenant decides (SPEC 14 "Order of checks"): the
 * token (already taken out of the store) against the connection, then the Origin. Returns the
 * tenant (a reference) or NULL when the session was answered. */
tenant_t *gate_admit_token(gate_admit_msg_t *m, const token_t *t);
/* A chat token's answer to a redeem. */
void gate_redeem_answer(const gate_redeem_msg_t *m, const token_t *t);

/* gateredis.c: the token store and the session registry in Redis. Each takes the message. */
void gr_start(gate_t *g);
void gr_mint(gate_t *g, conn_id_t conn, mint_plan_t *plan);
void gr_mint_phone(gate_t *g, gate_mint_phone_msg_t *m);
void gr_admit(gate_t *g, gate_admit_msg_t *m);
void gr_redeem(gate_t *g, gate_redeem_msg_t *m);
void gr_ended(gate_t *g, const char *session_id);
void gr_lease(gate_t *g);
void gr_reply(gate_t *g, net_redis_msg_t *m);
void gr_stop(gate_t *g);
/* Whether /readyz waits for the store's key (gate_cluster_ready()). */
void gr_key_pending(bool pending);

#endif

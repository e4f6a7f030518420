/*
 * gate: the front door of voice sessions and chat. One actor owns the ephemeral tokens, the
 * per-IP rate windows of POST /api/sessions, and the registry of live voice sessions, so the
 * capacity limits are exact without locks (SPEC 2.1 SWITCHBOARD_MAX_SESSIONS, 14 "Order of
 * checks"). A chat token is bound to a user: one named with the API secret, or an anonymous
 * one, new or proven by its userKey (userkey.h; SPEC 14 "Voice sessions").
 * Behind the messages it is the token store and session registry of SPEC 13: a Redis-backed
 * gate would answer the same messages.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "actors/timer.h"
#include "agents/auth/auth.h"
#include "agents/auth/userkey.h"
#include "base/config.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/ratewin.h"
#include "base/sbuf.h"
#include "base/strmap.h"
#include "base/util.h"
#include "agents/auth/gate_int.h"

static void hex(char *out, const unsigned char *in, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static void respond_json(conn_id_t c, int status, sbuf_t *b, const char *extra)
{
    net_http_respond(c, status, b->data, b->len, extra);
    sbuf_destroy(b);
}

/* Counts this request in its IP's fixed window; returns the seconds to wait when over. */
static int rate_limited(gate_t *g, const char *ip, uint64_t now)
{
    uint64_t left_ns = 0;
    if (ratewin_hit(&g->windows, ip, now, (uint32_t)g_config->sessions_per_min, &left_ns))
        return 0;
    int secs = (int)((left_ns + NS_PER_SEC - 1) / NS_PER_SEC);
    return secs < 1 ? 1 : secs;
}

/* A live count kept per key in a strmap of (uintptr_t) values: +1 or -1. */
static void count_add(strmap_t *m, const char *key, int delta)
{
    uintptr_t n = (uintptr_t)strmap_get(m, key);
    if (delta < 0 && n <= 1)
        strmap_del(m, key);
    else
        strmap_put(m, key, (void *)(n + (uintptr_t)(intptr_t)delta));
}

/*
 * The tenant of a POST /api/sessions (SPEC 16): named by its publicKey (X-Switchboard-Key or
 * "key" in the body; the Origin must be one of its allowedOrigins) or by its apiSecret as the
 * bearer; the only tenant when there is one and nothing names it. Returns it (a reference), or
 * NULL when the request was answered (403 forbidden_origin, 401 unauthorized).
 */
static tenant_t *mint_tenant(const net_http_msg_t *req, bool *by_secret)
{
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(req->json, "key");
    const char *key = req->public_key ? req->public_key : cJSON_GetStringValue(k);
    tenant_t *t = NULL;
    *by_secret = false;
    if (key != NULL) {
        t = tenants_by_public_key(key);
        if (t == NULL) {
            net_http_error(req->conn, 401, "unauthorized", "unknown key");
            return NULL;
        }
        if (!tenant_origin_allowed(t, req->origin, req->same_origin)) {
            tenant_unref(t);
            net_http_error(req->conn, 403, "forbidden_origin",
                           "this origin is not allowed for this key");
            return NULL;
        }
        return t;
    }
    if ((t = auth_bearer_tenant(req)) != NULL) {
        *by_secret = true;
        return t;
    }
    if ((t = tenants_sole()) != NULL)
        return t;
    net_http_error(req->conn, 401, "unauthorized",
                   "name the business with its key (X-Switchboard-Key) or its API secret");
    return NULL;
}


void gate_new_token(char *out)
{
    unsigned char rnd[TOKEN_BYTES];
    randombytes_buf(rnd, sizeof(rnd));
    memcpy(out, TOKEN_PREFIX, sizeof(TOKEN_PREFIX) - 1);
    hex(out + sizeof(TOKEN_PREFIX) - 1, rnd, sizeof(rnd));
    sodium_memzero(rnd, sizeof(rnd));
}

/* Keeps the first refusal found after the rate limit's place in the order of checks. */
static bool plan_refuse(mint_plan_t *p, int status, const char *code, const char *message)
{
    p->err_status = status;
    p->err_code = code;
    p->err_message = message;
    return false;
}

/*
 * The user of a chat token, from the body: a userId named with the API secret (the operator's,
 * or the tenant's own apiSecret when by_secret), the anonymous user of a userKey, or a new
 * anonymous user. Writes it into the plan (and for anonymous users, the userKey to hand back)
 * and returns true; false with the refusal in the plan.
 */
static bool chat_user(const gate_t *g, const net_http_msg_t *req, const cJSON *body, bool by_secret,
                      mint_plan_t *plan)
{
    const cJSON *uid = cJSON_GetObjectItemCaseSensitive(body, "userId");
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(body, "userKey");
    plan->user_key[0] = '\0';
    if (uid && key)
        return plan_refuse(plan, 400, "invalid_request", "give userId or userKey, not both");
    if (uid) {
        if (!cJSON_IsString(uid) ||
            !str_is_id(uid->valuestring, strlen(uid->valuestring), 1, ID_MAX))
            return plan_refuse(plan, 400, "invalid_user_id",
                               "userId must match [A-Za-z0-9_-]{1,64}");
        if (!by_secret && !auth_api_ok(req))
            return plan_refuse(plan, 401, "unauthorized", "naming a userId needs the API secret");
        str_copy(plan->user_id, uid->valuestring, sizeof(plan->user_id));
        return true;
    }
    if (key) {
        if (!cJSON_IsString(key) ||
            !userkey_check(g->user_secret, key->valuestring, plan->user_id))
            return plan_refuse(plan, 401, "unauthorized", "this userKey is not valid");
    } else {
        userkey_new_anon(plan->user_id);
    }
    userkey_make(g->user_secret, plan->user_id, plan->user_key);
    return true;
}

/*
 * The checks of a mint that need no shared state, after the tenant and the API secret: the
 * body (400), the user of a chat token (400, 401). Fills plan, with a new token, or the refusal
 * in plan->err_*; returns true when there is none.
 */
static bool mint_plan(const gate_t *g, const net_http_msg_t *req, const tenant_t *tenant,
                      bool by_secret, mint_plan_t *plan)
{
    memset(plan, 0, sizeof(*plan));
    str_copy(plan->tenant, tenant->id, sizeof(plan->tenant));
    str_copy(plan->ip, req->peer.ip, sizeof(plan->ip));
    plan->tenant_max = tenant_max_sessions(tenant, g_config->max_sessions);
    if (req->json_invalid)
        return plan_refuse(plan, 400, "invalid_json", "the body is not valid JSON");
    const cJSON *body = req->json;
    if (body && !cJSON_IsObject(body))
        return plan_refuse(plan, 400, "invalid_json", "the body must be a JSON object");
    plan->purpose = PURPOSE_VOICE;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(body, "purpose");
    if (p) {
        if (cJSON_IsString(p) && strcmp(p->valuestring, "chat") == 0)
            plan->purpose = PURPOSE_CHAT;
        else if (!(cJSON_IsString(p) && strcmp(p->valuestring, "voice") == 0))
            return plan_refuse(plan, 400, "invalid_request",
                               "purpose must be \"voice\" or \"chat\"");
    }
    if (plan->purpose == PURPOSE_VOICE && (cJSON_GetObjectItemCaseSensitive(body, "userId") ||
                                           cJSON_GetObjectItemCaseSensitive(body, "userKey")))
        return plan_refuse(plan, 400, "invalid_request", "userId and userKey belong to chat tokens");
    const cJSON *sid = cJSON_GetObjectItemCaseSensitive(body, "sessionId");
    if (sid) {
        if (!cJSON_IsString(sid) ||
            !str_is_id(sid->valuestring, strlen(sid->valuestring), SESSION_ID_MIN, ID_MAX))
            return plan_refuse(plan, 400, "invalid_session_id",
                               "sessionId must match [A-Za-z0-9_-]{8,64}");
        str_copy(plan->session_id, sid->valuestring, sizeof(plan->session_id));
    } else {
        unsigned char rnd[SESSION_ID_BYTES];
        randombytes_buf(rnd, sizeof(rnd));
        memcpy(plan->session_id, "sess_", 5);
        hex(plan->session_id + 5, rnd, sizeof(rnd));
    }
    if (plan->purpose == PURPOSE_CHAT && !chat_user(g, req, body, by_secret, plan))
        return false;
    gate_new_token(plan->token);
    return true;
}

void gate_mint_ok(conn_id_t conn, mint_plan_t *plan)
{
    metric_inc(&g_metrics.tokens_issued_total, 1);
    uint64_t expires_at = clock_wall_ms() + (uint64_t)g_config->token_ttl_s * 1000;
    sbuf_t b = SBUF_INIT;
    sbuf_puts(&b, "{\"sessionId\":");
    sbuf_json_str(&b, plan->session_id);
    sbuf_printf(&b, ",\"token\":\"%s\",\"expiresAt\":%llu", plan->token,
                (unsigned long long)expires_at);
    if (plan->purpose == PURPOSE_CHAT) {
        sbuf_puts(&b, ",\"userId\":");
        sbuf_json_str(&b, plan->user_id);
        if (plan->user_key[0])
            sbuf_printf(&b, ",\"userKey\":\"%s\"", plan->user_key);
    }
    sbuf_puts(&b, "}");
    respond_json(conn, 200, &b, NULL);
    log_info("token.issued", LOG_S("sid", plan->session_id), LOG_S("ip", plan->ip),
             LOG_S("purpose", plan->purpose == PURPOSE_CHAT ? "chat" : "voice"),
             LOG_S("user", plan->user_id), LOG_S("tenant", plan->tenant));
    sodium_memzero(plan->user_key, sizeof(plan->user_key));
    sodium_memzero(plan->token, sizeof(plan->token));
}

void gate_mint_rate_limited(conn_id_t conn, int wait_s)
{
    char extra[64];
    snprintf(extra, sizeof(extra), "Retry-After: %d\r\n", wait_s < 1 ? 1 : wait_s);
    sbuf_t b = SBUF_INIT;
    sbuf_puts(&b, "{\"error\":{\"code\":\"rate_limited\",\"message\":\"too many sessions "
                  "requested from this address; retry later\"}}");
    respond_json(conn, 429, &b, extra);
}

/* The rest of mint() once the tenant is known: SPEC 14's order from 401 on. */
static void mint_for(gate_t *g, const net_http_msg_t *req, const tenant_t *tenant, bool by_secret,
                     uint64_t now)
{
    if (g_config->mint_auth == MINT_AUTH_SECRET && !by_secret &&
        !auth_bearer_ok(req->authorization, g_config->api_secret)) {
        net_http_error(req->conn, 401, "unauthorized", "a valid API secret is required");
        return;
    }
    if (net_redis_on() && !g->keyed) { /* the first moments of a node: see gateredis.c */
        net_http_error(req->conn, 503, "unavailable", "shared state is unreachable; retry later");
        return;
    }
    mint_plan_t plan;
    mint_plan(g, req, tenant, by_secret, &plan);
    if (net_redis_on()) {
        gr_mint(g, req->conn, &plan); /* rate, exists, capacity and the store: in Redis */
        return;
    }
    int wait_s = rate_limited(g, req->peer.ip, now);
    if (wait_s > 0) {
        gate_mint_rate_limited(req->conn, wait_s);
        return;
    }
    if (plan.err_status) {
        net_http_error(req->conn, plan.err_status, plan.err_code, plan.err_message);
        sodium_memzero(plan.user_key, sizeof(plan.user_key));
        return;
    }
    if (plan.purpose == PURPOSE_VOICE) {
        if (strmap_get(&g->sessions, plan.session_id)) {
            net_http_error(req->conn, 409, "session_exists",
                           "this sessionId has a live voice session");
            return;
        }
        if (g->live >= g_config->max_sessions ||
            (uintptr_t)strmap_get(&g->per_tenant, tenant->id) >= (uintptr_t)plan.tenant_max) {
            net_http_error(req->conn, 503, "at_capacity", "all voice sessions are in use");
            return;
        }
    }
    token_t *t = xcalloc(1, sizeof(*t));
    str_copy(t->session_id, plan.session_id, sizeof(t->session_id));
    str_copy(t->user_id, plan.user_id, sizeof(t->user_id));
    str_copy(t->tenant, plan.tenant, sizeof(t->tenant));
    t->expires_ns = now + (uint64_t)g_config->token_ttl_s * NS_PER_SEC;
    t->purpose = plan.purpose;
    strmap_put(&g->tokens, plan.token, t);
    gate_mint_ok(req->conn, &plan);
}

/* POST /api/sessions, with the checks in the order of SPEC 14. A foreign Origin (the first
 * check) is refused by net before the request gets here (the route's foreign_origin_403), so it
 * spends no quota; so is an origin the named tenant does not allow (mint_tenant()). */
static void mint(gate_t *g, const net_http_msg_t *req)
{
    uint64_t now = clock_now_ns();
    if (net_draining()) {
        net_http_error(req->conn, 503, "draining", "the server is shutting down");
        return;
    }
    bool by_secret = false;
    tenant_t *tenant = mint_tenant(req, &by_secret);
    if (tenant == NULL)
        return;
    mint_for(g, req, tenant, by_secret, now);
    tenant_unref(tenant);
}

static void admitted_free(msg_t *m)
{
    tenant_unref(((gate_admitted_msg_t *)m)->tenant);
    msg_block_free(m);
}

gate_admitted_msg_t *gate_admitted_new(bool ok, ws_close_t why, tenant_t *tenant)
{
    gate_admitted_msg_t *m = MSG_NEW(gate_admitted_msg_t, GATE_MSG_ADMITTED);
    m->hdr.free_fn = admitted_free;
    m->ok = ok;
    m->why = why;
    m->tenant = tenant;
    return m;
}

void gate_answer(actor_t *session, bool ok, ws_close_t why, tenant_t *tenant)
{
    actor_send(session, &gate_admitted_new(ok, why, tenant)->hdr);
}

/*
 * Takes the token presented as text out of the store: a token is spent once shown, whether or
 * not a later check lets it in (SPEC 14 "Order of checks"). Returns it (the caller frees it) when
 * it was known and unexpired, else NULL.
 */
static token_t *spend(gate_t *g, const char *text, uint64_t now)
{
    token_t *t = text[0] ? strmap_del(&g->tokens, text) : NULL;
    if (t && now >= t->expires_ns) {
        free(t);
        return NULL;
    }
    return t;
}

tenant_t *gate_admit_token(gate_admit_msg_t *m, const token_t *t)
{
    int purpose = m->phone ? PURPOSE_PHONE : PURPOSE_VOICE;
    bool valid = t && t->purpose == purpose && strcmp(t->session_id, m->session_id) == 0;
    tenant_t *tenant = valid ? tenants_get(t->tenant) : NULL;
    if (tenant == NULL) {
        gate_answer(m->session, false, WS_CLOSE_UNAUTHORIZED, NULL);
        return NULL;
    }
    if (!tenant_origin_allowed(tenant, m->origin, m->same_origin)) {
        log_info("session.forbidden_origin", LOG_S("sid", m->session_id),
                 LOG_S("tenant", tenant->id), LOG_S("origin", m->origin));
        tenant_unref(tenant);
        gate_answer(m->session, false, WS_CLOSE_FORBIDDEN_ORIGIN, NULL);
        return NULL;
    }
    return tenant;
}

void gate_register(gate_t *g, actor_t *session, const char *session_id, const char *ip,
                   const char *tenant)
{
    live_session_t *s = xcalloc(1, sizeof(*s));
    s->actor = session;
    actor_ref(s->actor);
    str_copy(s->ip, ip, sizeof(s->ip));
    str_copy(s->tenant, tenant, sizeof(s->tenant));
    strmap_put(&g->sessions, session_id, s);
    if (ip[0])
        count_add(&g->per_ip, ip, 1);
    count_add(&g->per_tenant, tenant, 1);
    g->live++;
    metric_gauge_set(&g_metrics.sessions_active, g->live);
}

/*
 * A /ws connection presents its token: token (spent if known) -> the upgrade's Origin against
 * the token's tenant -> exists -> capacity (global, per IP, per tenant). net has let in any
 * origin some tenant allows; only now, with the tenant known, can an origin of another tenant
 * be refused (1008 forbidden origin, the token spent: SPEC 14 "Order of checks"). The session
 * gets the token's tenant as it is now: a reload between the mint and the connection gives the
 * call the new configuration; a tenant removed meanwhile refuses it.
 */
static void admit(gate_t *g, gate_admit_msg_t *m)
{
    token_t *t = spend(g, m->token, clock_now_ns());
    tenant_t *tenant = gate_admit_token(m, t);
    free(t);
    if (tenant == NULL)
        return;
    if (strmap_get(&g->sessions, m->session_id)) {
        tenant_unref(tenant);
        gate_answer(m->session, false, WS_CLOSE_SESSION_EXISTS, NULL);
        return;
    }
    /* Twilio's media servers carry many callers each: a phone stream counts toward no per-IP
     * cap (its registry entry has no IP). */
    const char *ip = m->phone ? "" : m->peer.ip;
    uintptr_t ip_live = ip[0] ? (uintptr_t)strmap_get(&g->per_ip, ip) : 0;
    uintptr_t tenant_live = (uintptr_t)strmap_get(&g->per_tenant, tenant->id);
    if (g->live >= g_config->max_sessions || ip_live >= (uintptr_t)g_config->sessions_per_ip ||
        tenant_live >= (uintptr_t)tenant_max_sessions(tenant, g_config->max_sessions)) {
        tenant_unref(tenant);
        gate_answer(m->session, false, WS_CLOSE_AT_CAPACITY, NULL);
        return;
    }
    gate_register(g, m->session, m->session_id, ip, tenant->id);
    gate_answer(m->session, true, WS_CLOSE_NONE, tenant);
}

static void admit_free(msg_t *m)
{
    gate_admit_msg_t *a = (gate_admit_msg_t *)m;
    actor_unref(a->session);
    free(a->origin);
    msg_block_free(a);
}

gate_admit_msg_t *gate_admit_new(actor_t *session, const char *session_id, const char *token,
                                 const net_peer_t *peer, const char *origin, bool same_origin)
{
    gate_admit_msg_t *m = MSG_NEW(gate_admit_msg_t, GATE_MSG_ADMIT);
    m->hdr.free_fn = admit_free;
    actor_ref(session);
    m->session = session;
    str_copy(m->session_id, session_id, sizeof(m->session_id));
    str_copy(m->token, token, sizeof(m->token));
    m->peer = *peer;
    m->origin = origin ? xstrdup(origin) : NULL;
    m->same_origin = same_origin;
    return m;
}

static void redeemed_free(msg_t *m)
{
    tenant_unref(((gate_redeemed_msg_t *)m)->tenant);
    msg_block_free(m);
}

void gate_redeem_answer(const gate_redeem_msg_t *m, const token_t *t)
{
    gate_redeemed_msg_t *r = MSG_NEW(gate_redeemed_msg_t, GATE_MSG_REDEEMED);
    r->cookie = m->cookie;
    r->hdr.free_fn = redeemed_free;
    r->ok = t && t->purpose == PURPOSE_CHAT;
    if (r->ok) {
        str_copy(r->user_id, t->user_id, sizeof(r->user_id));
        r->tenant = tenants_get(t->tenant);
    }
    actor_send(m->reply_to, &r->hdr);
}

/* A /ws/chat connection presents its token: a chat token, any sessionId; spent if known. */
static void redeem(gate_t *g, const gate_redeem_msg_t *m)
{
    token_t *t = spend(g, m->token, clock_now_ns());
    gate_redeem_answer(m, t);
    free(t);
}

static void redeem_free(msg_t *m)
{
    actor_unref(((gate_redeem_msg_t *)m)->reply_to);
    msg_block_free(m);
}

gate_redeem_msg_t *gate_redeem_new(actor_t *reply_to, uint64_t cookie, const char *token)
{
    gate_redeem_msg_t *m = MSG_NEW(gate_redeem_msg_t, GATE_MSG_REDEEM);
    m->hdr.free_fn = redeem_free;
    actor_ref(reply_to);
    m->reply_to = reply_to;
    m->cookie = cookie;
    str_copy(m->token, token, sizeof(m->token));
    return m;
}

/* A phone call rings: a token for its media stream when the voice limits allow it. */
static void mint_phone(gate_t *g, const gate_mint_phone_msg_t *m)
{
    gate_minted_phone_msg_t *r = MSG_NEW(gate_minted_phone_msg_t, GATE_MSG_MINTED_PHONE);
    r->cookie = m->cookie;
    r->ok = !net_draining() && strmap_get(&g->sessions, m->session_id) == NULL &&
            g->live < g_config->max_sessions &&
            (uintptr_t)strmap_get(&g->per_tenant, m->tenant) < (uintptr_t)m->max_sessions;
    if (r->ok) {
        gate_new_token(r->token);
        token_t *t = xcalloc(1, sizeof(*t));
        str_copy(t->session_id, m->session_id, sizeof(t->session_id));
        str_copy(t->tenant, m->tenant, sizeof(t->tenant));
        t->expires_ns = clock_now_ns() + (uint64_t)g_config->token_ttl_s * NS_PER_SEC;
        t->purpose = PURPOSE_PHONE;
        strmap_put(&g->tokens, r->token, t);
        metric_inc(&g_metrics.tokens_issued_total, 1);
    }
    actor_send(m->reply_to, &r->hdr);
}

static void mint_phone_free(msg_t *m)
{
    actor_unref(((gate_mint_phone_msg_t *)m)->reply_to);
    msg_block_free(m);
}

gate_mint_phone_msg_t *gate_mint_phone_new(actor_t *reply_to, uint64_t cookie,
                                           const char *session_id, const tenant_t *tenant)
{
    gate_mint_phone_msg_t *m = MSG_NEW(gate_mint_phone_msg_t, GATE_MSG_MINT_PHONE);
    m->hdr.free_fn = mint_phone_free;
    actor_ref(reply_to);
    m->reply_to = reply_to;
    m->cookie = cookie;
    str_copy(m->session_id, session_id, sizeof(m->session_id));
    str_copy(m->tenant, tenant->id, sizeof(m->tenant));
    m->max_sessions = tenant_max_sessions(tenant, g_config->max_sessions);
    return m;
}

static void ended(gate_t *g, const gate_ended_msg_t *m)
{
    live_session_t *s = strmap_del(&g->sessions, m->session_id);
    if (s == NULL)
        return;
    if (s->ip[0])
        count_add(&g->per_ip, s->ip, -1);
    count_add(&g->per_tenant, s->tenant, -1);
    g->live--;
    metric_gauge_set(&g_metrics.sessions_active, g->live);
    actor_unref(s->actor);
    free(s);
    if (net_redis_on())
        gr_ended(g, m->session_id);
}

static int expired_token(const char *key, void *value, void *arg)
{
    (void)key;
    token_t *t = value;
    if (clock_now_ns() < t->expires_ns && arg == NULL)
        return 0;
    free(t);
    return 1;
}

static int drop_session(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    live_session_t *s = value;
    actor_unref(s->actor);
    free(s);
    return 1;
}

static int keep_all(const char *key, void *value, void *arg)
{
    (void)key;
    (void)value;
    (void)arg;
    return 1;
}

/* gate_user_key(): the stored server key. */
typedef struct gate_key_msg {
    msg_t hdr;
    uint8_t key[GATE_USER_SECRET_BYTES];
} gate_key_msg_t;

static void gate_handle(actor_t *self, msg_t *m)
{
    gate_t *g = (gate_t *)self;
    switch (m->type) {
    case NET_MSG_HTTP:
        mint(g, (net_http_msg_t *)m);
        break;
    case GATE_MSG_ADMIT:
        if (net_redis_on()) {
            gr_admit(g, (gate_admit_msg_t *)m);
            return;
        }
        admit(g, (gate_admit_msg_t *)m);
        break;
    case GATE_MSG_ENDED:
        ended(g, (gate_ended_msg_t *)m);
        break;
    case GATE_MSG_REDEEM:
        if (net_redis_on()) {
            gr_redeem(g, (gate_redeem_msg_t *)m);
            return;
        }
        redeem(g, (gate_redeem_msg_t *)m);
        break;
    case GATE_MSG_MINT_PHONE:
        if (net_redis_on()) {
            gr_mint_phone(g, (gate_mint_phone_msg_t *)m);
            return;
        }
        mint_phone(g, (gate_mint_phone_msg_t *)m);
        break;
    case NET_MSG_REDIS:
        gr_reply(g, (net_redis_msg_t *)m);
        break;
    case GATE_MSG_LEASE:
        gr_lease(g);
        break;
    case GATE_MSG_USER_KEY: {
        gate_key_msg_t *k = (gate_key_msg_t *)m;
        if (g->key_later && !g->keyed) /* once Redis's key is taken, it stays */
            memcpy(g->user_secret, k->key, sizeof(g->user_secret));
        sodium_memzero(k->key, sizeof(k->key));
        g->key_later = false;
        gr_key_pending(false);
        break;
    }
    case GATE_MSG_SWEEP:
        strmap_filter(&g->tokens, expired_token, NULL);
        ratewin_sweep(&g->windows, clock_now_ns());
        break;
    default:
        break;
    }
    msg_free(m);
}

static void gate_stop(actor_t *self)
{
    gate_t *g = (gate_t *)self;
    actor_timer_free(g->sweep);
    gr_stop(g);
    int all = 1;
    strmap_filter(&g->tokens, expired_token, &all);
    strmap_filter(&g->sessions, drop_session, NULL);
    strmap_filter(&g->per_ip, keep_all, NULL);
    strmap_filter(&g->per_tenant, keep_all, NULL);
    strmap_destroy(&g->tokens);
    ratewin_destroy(&g->windows);
    strmap_destroy(&g->sessions);
    strmap_destroy(&g->per_ip);
    strmap_destroy(&g->per_tenant);
    sodium_memzero(g->user_secret, sizeof(g->user_secret));
}

static const actor_type_t gate_type = {"gate", gate_handle, gate_stop};

void gate_user_key(actor_t *gate, const uint8_t user_secret[GATE_USER_SECRET_BYTES])
{
    gate_key_msg_t *k = MSG_NEW(gate_key_msg_t, GATE_MSG_USER_KEY);
    memcpy(k->key, user_secret, sizeof(k->key));
    actor_send(gate, &k->hdr);
}

static actor_t *spawn(const uint8_t user_secret[GATE_USER_SECRET_BYTES], bool later)
{
    gate_t *g = xcalloc(1, sizeof(*g));
    memcpy(g->user_secret, user_secret, sizeof(g->user_secret));
    g->key_later = later;
    gr_key_pending(later);
    if (actor_spawn(&g->actor, &gate_type, LANE_REALTIME) != 0) {
        sodium_memzero(g->user_secret, sizeof(g->user_secret));
        free(g);
        return NULL;
    }
    strmap_init(&g->tokens);
    ratewin_init(&g->windows, RATE_WINDOW_S * NS_PER_SEC);
    strmap_init(&g->sessions);
    strmap_init(&g->per_ip);
    strmap_init(&g->per_tenant);
    g->sweep = actor_timer_new(&g->actor, GATE_MSG_SWEEP, NULL);
    /* Arming from main before any message is safe: no worker runs this actor yet. */
    actor_timer_start(g->sweep, GATE_SWEEP_MS, GATE_SWEEP_MS);
    gr_start(g);
    return &g->actor;
}

actor_t *gate_spawn(const uint8_t user_secret[GATE_USER_SECRET_BYTES])
{
    return spawn(user_secret, false);
}

actor_t *gate_spawn_later(const uint8_t stand_in[GATE_USER_SECRET_BYTES])
{
    return spawn(stand_in, true);
}

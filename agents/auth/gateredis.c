/*
 * gateredis: the gate's token store, rate windows and session registry in Redis (SPEC 13), so
 * that several nodes behind a load balancer share them exactly. Every decision that must be
 * exact across nodes is one Lua script, which Redis runs atomically:
 *
 *   sb:tok:<token>   a token: "purpose\ttenant\tsessionId\tuserId", SET … PX ttl NX, taken
 *                    with GETDEL (spent once, on whichever node it is shown);
 *   sb:rate:<ip>     POST /api/sessions in the IP's fixed 60 s window (INCR, PEXPIRE on the
 *                    first);
 *   sb:nodes         the nodes that have registered; sb:lease:<node> is alive while the node
 *                    refreshes it (every 5 s, TTL 15 s);
 *   sb:live:<node>   sessionId -> "ip\ttenant" of the node's live sessions (ip "" for a phone
 *                    stream), with the counts sb:ipc:<node> (ip -> n) and sb:tnc:<node>
 *                    (tenant -> n); sb:sid:<sessionId> -> the node that holds it;
 *   sb:userkey       the server key of anonymous chat users' userKeys (SPEC 14), set by the
 *                    first node and taken by the others, so a userKey works on any node.
 *
 * The census counts only nodes whose lease is alive, and removes what a dead node left. A node
 * whose lease is gone (Redis restarted, or the node was cut off for 15 s) writes its whole
 * registry again before it admits anyone (REREG), so the caps stay exact. The gate's own maps
 * (gate.c) stay the truth of this node's sessions; Redis is never on the audio path.
 *
 * Redis unreachable: a mint answers 503 unavailable, an admission closes 1013 (try again
 * later), a redeem fails; nothing is guessed, no token is used twice, no cap exceeded.
 */
#include <ck_pr.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agents/auth/gate_int.h"
#include "base/config.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"

#define GR_LEASE_FIRST_MS 100
#define GR_TICK_MS        1000 /* a node not yet keyed and registered tries again this often */

static int gr_ready; /* [atomic, any] keyed and registered: /readyz may say ready */

static int key_pending; /* [atomic, any] the gate waits for the store's key (PostgreSQL) */

bool gate_cluster_ready(void)
{
    return (!net_redis_on() || ck_pr_load_int(&gr_ready)) && !ck_pr_load_int(&key_pending);
}

void gr_key_pending(bool pending)
{
    ck_pr_store_int(&key_pending, pending);
}

static void gr_update_ready(const gate_t *g)
{
    ck_pr_store_int(&gr_ready, g->keyed && g->registered);
}
#define GR_REREG_ARGS     3 /* sessionId, ip, tenant */

/* Shared by the scripts: the census of live nodes and the session lookup. */
#define LUA_PRELUDE                                                                                \
    "local function drop(n)\n"                                                                     \
    "  for _, s in ipairs(redis.call('HKEYS', 'sb:live:' .. n)) do\n"                              \
    "    if redis.call('GET', 'sb:sid:' .. s) == n then redis.call('DEL', 'sb:sid:' .. s) end\n"   \
    "  end\n"                                                                                      \
    "  redis.call('DEL', 'sb:live:' .. n, 'sb:ipc:' .. n, 'sb:tnc:' .. n)\n"                       \
    "end\n"                                                                                        \
    "local function census(tenant, ip)\n"                                                          \
    "  local live, tn, ipn = 0, 0, 0\n"                                                            \
    "  for _, n in ipairs(redis.call('SMEMBERS', 'sb:nodes')) do\n"                                \
    "    if redis.call('EXISTS', 'sb:lease:' .. n) == 1 then\n"                                    \
    "      live = live + redis.call('HLEN', 'sb:live:' .. n)\n"                                    \
    "      tn = tn + (tonumber(redis.call('HGET', 'sb:tnc:' .. n, tenant)) or 0)\n"                \
    "      if ip ~= '' then\n"                                                                     \
    "        ipn = ipn + (tonumber(redis.call('HGET', 'sb:ipc:' .. n, ip)) or 0)\n"                \
    "      end\n"                                                                                  \
    "    else\n"                                                                                   \
    "      drop(n)\n"                                                                              \
    "      redis.call('SREM', 'sb:nodes', n)\n"                                                    \
    "    end\n"                                                                                    \
    "  end\n"                                                                                      \
    "  return live, tn, ipn\n"                                                                     \
    "end\n"                                                                                        \
    "local function exists(sid)\n"                                                                 \
    "  local owner = redis.call('GET', 'sb:sid:' .. sid)\n"                                        \
    "  return owner and redis.call('EXISTS', 'sb:lease:' .. owner) == 1\n"                         \
    "    and redis.call('HEXISTS', 'sb:live:' .. owner, sid) == 1\n"                               \
    "end\n"

/*
 * POST /api/sessions and a ringing phone call. ARGV: ip, rate limit (0: none), window ms,
 * refused (1: a refusal after the rate limit's place), voice (1: exists and capacity apply),
 * sessionId, tenant, global cap, tenant cap, token, token value, token ttl ms.
 * Returns {verdict, ms}: rate (ms to wait), refused, exists, capacity, collision or ok.
 */
static const char MINT_LUA[] =
    LUA_PRELUDE
    "local limit = tonumber(ARGV[2])\n"
    "if limit > 0 then\n"
    "  local k = 'sb:rate:' .. ARGV[1]\n"
    "  local n = redis.call('INCR', k)\n"
    "  local ttl = redis.call('PTTL', k)\n"
    "  if n == 1 or ttl < 0 then redis.call('PEXPIRE', k, ARGV[3]); ttl = tonumber(ARGV[3]) end\n"
    "  if n > limit then return {'rate', ttl} end\n"
    "end\n"
    "if ARGV[4] == '1' then return {'refused', 0} end\n"
    "if ARGV[5] == '1' then\n"
    "  if exists(ARGV[6]) then return {'exists', 0} end\n"
    "  local live, tn = census(ARGV[7], '')\n"
    "  if live >= tonumber(ARGV[8]) or tn >= tonumber(ARGV[9]) then return {'capacity', 0} end\n"
    "end\n"
    "if not redis.call('SET', 'sb:tok:' .. ARGV[10], ARGV[11], 'PX', ARGV[12], 'NX') then\n"
    "  return {'collision', 0}\n"
    "end\n"
    "return {'ok', 0}\n";

/*
 * An admission, after the token was taken. ARGV: node, sessionId, ip ("" for phone: no per-IP
 * cap), tenant, global cap, per-IP cap, tenant cap. Returns nolease, exists, capacity or ok.
 */
static const char ADMIT_LUA[] =
    LUA_PRELUDE
    "local node, sid, ip, t = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
    "if redis.call('EXISTS', 'sb:lease:' .. node) == 0 then return 'nolease' end\n"
    "if exists(sid) then return 'exists' end\n"
    "local live, tn, ipn = census(t, ip)\n"
    "if live >= tonumber(ARGV[5]) or (ip ~= '' and ipn >= tonumber(ARGV[6]))\n"
    "   or tn >= tonumber(ARGV[7]) then return 'capacity' end\n"
    "redis.call('SET', 'sb:sid:' .. sid, node)\n"
    "redis.call('HSET', 'sb:live:' .. node, sid, ip .. '\\t' .. t)\n"
    "if ip ~= '' then redis.call('HINCRBY', 'sb:ipc:' .. node, ip, 1) end\n"
    "redis.call('HINCRBY', 'sb:tnc:' .. node, t, 1)\n"
    "return 'ok'\n";

/* A session ended. ARGV: node, sessionId. */
static const char END_LUA[] =
    "local node, sid = ARGV[1], ARGV[2]\n"
    "local v = redis.call('HGET', 'sb:live:' .. node, sid)\n"
    "if not v then return 0 end\n"
    "redis.call('HDEL', 'sb:live:' .. node, sid)\n"
    "local tab = string.find(v, '\\t', 1, true)\n"
    "local ip, t = string.sub(v, 1, tab - 1), string.sub(v, tab + 1)\n"
    "if ip ~= '' and redis.call('HINCRBY', 'sb:ipc:' .. node, ip, -1) <= 0 then\n"
    "  redis.call('HDEL', 'sb:ipc:' .. node, ip)\n"
    "end\n"
    "if redis.call('HINCRBY', 'sb:tnc:' .. node, t, -1) <= 0 then\n"
    "  redis.call('HDEL', 'sb:tnc:' .. node, t)\n"
    "end\n"
    "if redis.call('GET', 'sb:sid:' .. sid) == node then redis.call('DEL', 'sb:sid:' .. sid) end\n"
    "return 1\n";

/* The lease: refreshed while it lives; 0 when it had died (then REREG). ARGV: node, ttl ms. */
static const char LEASE_LUA[] =
    "if redis.call('PEXPIRE', 'sb:lease:' .. ARGV[1], ARGV[2]) == 0 then return 0 end\n"
    "redis.call('SADD', 'sb:nodes', ARGV[1])\n"
    "return 1\n";

/* The cluster's userKey secret: ours unless one is there. ARGV: ours (hex). */
static const char KEY_LUA[] = "redis.call('SET', 'sb:userkey', ARGV[1], 'NX')\n"
                              "return redis.call('GET', 'sb:userkey')\n";

/* The node's whole registry, written again (and the userKey secret, should Redis have lost it).
 * ARGV: node, ttl ms, userKey secret (hex), then (sessionId, ip, tenant)*. */
static const char REREG_LUA[] =
    LUA_PRELUDE
    "local node = ARGV[1]\n"
    "redis.call('SET', 'sb:userkey', ARGV[3], 'NX')\n"
    "drop(node)\n"
    "for i = 4, #ARGV, 3 do\n"
    "  local sid, ip, t = ARGV[i], ARGV[i + 1], ARGV[i + 2]\n"
    "  redis.call('SET', 'sb:sid:' .. sid, node)\n"
    "  redis.call('HSET', 'sb:live:' .. node, sid, ip .. '\\t' .. t)\n"
    "  if ip ~= '' then redis.call('HINCRBY', 'sb:ipc:' .. node, ip, 1) end\n"
    "  redis.call('HINCRBY', 'sb:tnc:' .. node, t, 1)\n"
    "end\n"
    "redis.call('SET', 'sb:lease:' .. node, '1', 'PX', ARGV[2])\n"
    "redis.call('SADD', 'sb:nodes', node)\n"
    "return 1\n";

typedef enum gr_kind {
    GR_MINT,       /* POST /api/sessions: MINT_LUA */
    GR_MINT_PHONE, /* a ringing call: MINT_LUA */
    GR_TAKE,       /* an admission's token: GETDEL */
    GR_ADMIT,      /* the admission: ADMIT_LUA */
    GR_REDEEM,     /* a chat connection's token: GETDEL */
    GR_END,        /* END_LUA */
    GR_LEASE,      /* LEASE_LUA */
    GR_REREG,      /* REREG_LUA */
    GR_KEY,        /* KEY_LUA */
} gr_kind_t;

/* A command waiting for its reply, and what to do with it. */
typedef struct gr_pending {
    gr_kind_t kind;
    conn_id_t conn;   /* GR_MINT */
    mint_plan_t plan; /* GR_MINT */
    msg_t *msg;       /* GR_MINT_PHONE, GR_TAKE, GR_ADMIT, GR_REDEEM: the request, owned */
    tenant_t *tenant; /* GR_ADMIT: a reference */
    char token[TOKEN_TEXT_MAX]; /* GR_MINT_PHONE */
    bool retried;     /* GR_ADMIT: sent again after re-registering */
} gr_pending_t;

static void gr_pending_free(gr_pending_t *p)
{
    if (p->msg)
        msg_free(p->msg);
    tenant_unref(p->tenant);
    sodium_memzero(p, sizeof(*p));
    free(p);
}

bool cluster_node_id(char out[NODE_ID_MAX + 1])
{
    if (g_config->node_id) {
        str_copy(out, g_config->node_id, NODE_ID_MAX + 1);
        return true;
    }
    if (!net_redis_started() || net_port() <= 0) { /* the port is set before the release */
        out[0] = '\0';
        return false;
    }
    char host[NODE_ID_MAX - 6] = "localhost";
    if (gethostname(host, sizeof(host)) != 0)
        str_copy(host, "localhost", sizeof(host));
    host[sizeof(host) - 1] = '\0';
    snprintf(out, NODE_ID_MAX + 1, "%s:%d", host, net_port());
    return true;
}

/* This node's name in the registry; "" before the listening port is known. */
static const char *gr_node(gate_t *g)
{
    if (g->node[0] == '\0')
        cluster_node_id(g->node);
    return g->node;
}

static void gr_done(gate_t *g, gr_pending_t *p, bool ok, const net_redis_reply_t *r);

/* Sends argv as p's command; Redis not reachable now: p is answered as unreachable at once. */
static void gr_send(gate_t *g, gr_pending_t *p, int argc, const char *const *argv)
{
    char key[24];
    uint64_t cookie = ++g->next_cookie;
    snprintf(key, sizeof(key), "%llx", (unsigned long long)cookie);
    strmap_put(&g->pending, key, p);
    if (net_redis_cmd(&g->actor, cookie, argc, argv, NULL) != 0) {
        strmap_del(&g->pending, key);
        gr_done(g, p, false, NULL);
    }
}

static void gr_eval(gate_t *g, gr_pending_t *p, const char *script, int nargs,
                    const char *const *args)
{
    const char *argv[3 + 16];
    if (nargs > 16)
        abort();
    argv[0] = "EVAL";
    argv[1] = script;
    argv[2] = "0";
    memcpy(argv + 3, args, (size_t)nargs * sizeof(*args));
    gr_send(g, p, 3 + nargs, argv);
}

static gr_pending_t *gr_new(gr_kind_t kind, msg_t *msg)
{
    gr_pending_t *p = xcalloc(1, sizeof(*p));
    p->kind = kind;
    p->msg = msg;
    return p;
}

/* A token's value in Redis, and back. */
static void token_value(char *out, size_t outlen, int purpose, const char *tenant,
                        const char *session_id, const char *user_id)
{
    snprintf(out, outlen, "%d\t%s\t%s\t%s", purpose, tenant, session_id, user_id);
}

static bool token_parse(const net_redis_reply_t *r, token_t *t)
{
    if (r == NULL || r->type != NET_REDIS_STRING)
        return false;
    memset(t, 0, sizeof(*t));
    char buf[256];
    char *fields[4];
    str_copy(buf, r->str, sizeof(buf));
    char *f = buf;
    for (int i = 0; i < 4; i++) {
        fields[i] = f;
        char *tab = strchr(f, '\t');
        if ((tab == NULL) != (i == 3))
            return false; /* three tabs, four fields */
        if (tab != NULL) {
            *tab = '\0';
            f = tab + 1;
        }
    }
    t->purpose = atoi(fields[0]);
    str_copy(t->tenant, fields[1], sizeof(t->tenant));
    str_copy(t->session_id, fields[2], sizeof(t->session_id));
    str_copy(t->user_id, fields[3], sizeof(t->user_id));
    t->expires_ns = UINT64_MAX; /* Redis expired it already when it was due */
    return true;
}

/* ---- Requests ----------------------------------------------------------------------------- */

static void gr_mint_send(gate_t *g, gr_pending_t *p, const char *limit, int purpose, bool voice,
                         int tenant_max)
{
    mint_plan_t *pl = &p->plan;
    char window[24], gmax[24], tmax[24], ttl[24], value[256];
    snprintf(window, sizeof(window), "%d", RATE_WINDOW_S * 1000);
    snprintf(gmax, sizeof(gmax), "%d", g_config->max_sessions);
    snprintf(tmax, sizeof(tmax), "%d", tenant_max);
    snprintf(ttl, sizeof(ttl), "%lld", (long long)g_config->token_ttl_s * 1000);
    token_value(value, sizeof(value), purpose, pl->tenant, pl->session_id, pl->user_id);
    const char *args[] = {pl->ip,       limit,      window, pl->err_status ? "1" : "0",
                          voice ? "1" : "0", pl->session_id, pl->tenant, gmax, tmax, pl->token,
                          value,        ttl};
    gr_eval(g, p, MINT_LUA, (int)ARRAY_LEN(args), args);
}

void gr_mint(gate_t *g, conn_id_t conn, mint_plan_t *plan)
{
    gr_pending_t *p = gr_new(GR_MINT, NULL);
    p->conn = conn;
    p->plan = *plan;
    sodium_memzero(plan, sizeof(*plan));
    char limit[24];
    snprintf(limit, sizeof(limit), "%d", g_config->sessions_per_min);
    gr_mint_send(g, p, limit, p->plan.purpose, p->plan.purpose == PURPOSE_VOICE,
                 p->plan.tenant_max);
}

void gr_mint_phone(gate_t *g, gate_mint_phone_msg_t *m)
{
    if (net_draining()) {
        gate_minted_phone_msg_t *r = MSG_NEW(gate_minted_phone_msg_t, GATE_MSG_MINTED_PHONE);
        r->cookie = m->cookie;
        actor_send(m->reply_to, &r->hdr);
        msg_free(&m->hdr);
        return;
    }
    gr_pending_t *p = gr_new(GR_MINT_PHONE, &m->hdr);
    str_copy(p->plan.session_id, m->session_id, sizeof(p->plan.session_id));
    str_copy(p->plan.tenant, m->tenant, sizeof(p->plan.tenant));
    gate_new_token(p->plan.token);
    gr_mint_send(g, p, "0", PURPOSE_PHONE, true, m->max_sessions);
}

static void gr_take(gate_t *g, gr_kind_t kind, msg_t *m, const char *token)
{
    gr_pending_t *p = gr_new(kind, m);
    if (token[0] == '\0') { /* nothing to take */
        gr_done(g, p, true, NULL);
        return;
    }
    char key[sizeof("sb:tok:") + TOKEN_TEXT_MAX];
    snprintf(key, sizeof(key), "sb:tok:%s", token);
    const char *argv[] = {"GETDEL", key};
    gr_send(g, p, 2, argv);
}

void gr_admit(gate_t *g, gate_admit_msg_t *m)
{
    gr_take(g, GR_TAKE, &m->hdr, m->token);
}

void gr_redeem(gate_t *g, gate_redeem_msg_t *m)
{
    gr_take(g, GR_REDEEM, &m->hdr, m->token);
}

static void gr_admit_send(gate_t *g, gr_pending_t *p)
{
    gate_admit_msg_t *m = (gate_admit_msg_t *)p->msg;
    char gmax[24], ipmax[24], tmax[24];
    snprintf(gmax, sizeof(gmax), "%d", g_config->max_sessions);
    snprintf(ipmax, sizeof(ipmax), "%d", g_config->sessions_per_ip);
    snprintf(tmax, sizeof(tmax), "%d", tenant_max_sessions(p->tenant, g_config->max_sessions));
    const char *args[] = {gr_node(g), m->session_id, m->phone ? "" : m->peer.ip,
                          p->tenant->id, gmax, ipmax, tmax};
    gr_eval(g, p, ADMIT_LUA, (int)ARRAY_LEN(args), args);
}

void gr_ended(gate_t *g, const char *session_id)
{
    const char *args[] = {gr_node(g), session_id};
    gr_eval(g, gr_new(GR_END, NULL), END_LUA, (int)ARRAY_LEN(args), args);
}

/* Collects this node's sessions as REREG arguments. */
typedef struct rereg_args {
    const char **argv;
    int argc;
} rereg_args_t;

static int rereg_collect(const char *key, void *value, void *arg)
{
    rereg_args_t *a = arg;
    const live_session_t *s = value;
    a->argv[a->argc++] = key;
    a->argv[a->argc++] = s->ip;
    a->argv[a->argc++] = s->tenant;
    return 0;
}

static void gr_rereg(gate_t *g)
{
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%d", GATE_LEASE_TTL_MS);
    size_t n = strmap_count(&g->sessions);
    char key[2 * GATE_USER_SECRET_BYTES + 1];
    sodium_bin2hex(key, sizeof(key), g->user_secret, sizeof(g->user_secret));
    rereg_args_t a = {xcalloc(6 + GR_REREG_ARGS * n, sizeof(char *)), 0};
    a.argv[a.argc++] = "EVAL";
    a.argv[a.argc++] = REREG_LUA;
    a.argv[a.argc++] = "0";
    a.argv[a.argc++] = gr_node(g);
    a.argv[a.argc++] = ttl;
    a.argv[a.argc++] = key;
    strmap_filter(&g->sessions, rereg_collect, &a);
    g->dirty = false;
    gr_send(g, gr_new(GR_REREG, NULL), a.argc, a.argv);
    free(a.argv);
    sodium_memzero(key, sizeof(key));
}

/* Takes the cluster's userKey secret (or makes ours the cluster's). */
static void gr_key(gate_t *g)
{
    char key[2 * GATE_USER_SECRET_BYTES + 1];
    sodium_bin2hex(key, sizeof(key), g->user_secret, sizeof(g->user_secret));
    const char *args[] = {key};
    gr_eval(g, gr_new(GR_KEY, NULL), KEY_LUA, 1, args);
    sodium_memzero(key, sizeof(key));
}

static void key_done(gate_t *g, bool ok, const net_redis_reply_t *r)
{
    uint8_t secret[GATE_USER_SECRET_BYTES];
    size_t n = 0;
    if (!ok || r == NULL || r->type != NET_REDIS_STRING ||
        sodium_hex2bin(secret, sizeof(secret), r->str, r->len, NULL, &n, NULL) != 0 ||
        n != sizeof(secret))
        return; /* asked again at the next lease */
    memcpy(g->user_secret, secret, sizeof(secret));
    sodium_memzero(secret, sizeof(secret));
    g->keyed = true;
}

void gr_lease(gate_t *g)
{
    if (gr_node(g)[0] == '\0')
        return; /* not listening yet */
    bool due = ++g->ticks % (GATE_LEASE_MS / GR_TICK_MS) == 0;
    if (!g->keyed && !g->key_later) /* the stored key, once read, is the one offered */
        gr_key(g);
    if (!g->registered || g->dirty) {
        gr_rereg(g);
        return;
    }
    if (!due)
        return;
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%d", GATE_LEASE_TTL_MS);
    const char *args[] = {gr_node(g), ttl};
    gr_eval(g, gr_new(GR_LEASE, NULL), LEASE_LUA, (int)ARRAY_LEN(args), args);
}

/* ---- Replies ------------------------------------------------------------------------------ */

/* The verdict word of a MINT_LUA or ADMIT_LUA reply ("" when it is not one), and its ms. */
static const char *verdict(const net_redis_reply_t *r, long long *ms)
{
    *ms = 0;
    if (r == NULL)
        return "";
    if (r->type == NET_REDIS_STATUS || r->type == NET_REDIS_STRING)
        return r->str;
    if (r->type == NET_REDIS_ARRAY && r->n == 2 && r->elem[0]->type == NET_REDIS_STRING) {
        if (r->elem[1]->type == NET_REDIS_INTEGER)
            *ms = r->elem[1]->integer;
        return r->elem[0]->str;
    }
    if (r->type == NET_REDIS_ERROR)
        log_error("redis.script_error", LOG_S("error", r->str));
    return "";
}

static void mint_done(gr_pending_t *p, bool ok, const net_redis_reply_t *r)
{
    long long ms;
    const char *v = ok ? verdict(r, &ms) : "";
    mint_plan_t *pl = &p->plan;
    if (strcmp(v, "rate") == 0)
        gate_mint_rate_limited(p->conn, (int)((ms + 999) / 1000));
    else if (strcmp(v, "refused") == 0)
        net_http_error(p->conn, pl->err_status, pl->err_code, pl->err_message);
    else if (strcmp(v, "exists") == 0)
        net_http_error(p->conn, 409, "session_exists", "this sessionId has a live voice session");
    else if (strcmp(v, "capacity") == 0)
        net_http_error(p->conn, 503, "at_capacity", "all voice sessions are in use");
    else if (strcmp(v, "ok") == 0)
        gate_mint_ok(p->conn, pl);
    else
        net_http_error(p->conn, 503, "unavailable", "shared state is unreachable; retry later");
}

static void mint_phone_done(gr_pending_t *p, bool ok, const net_redis_reply_t *r)
{
    const gate_mint_phone_msg_t *m = (const gate_mint_phone_msg_t *)p->msg;
    long long ms;
    gate_minted_phone_msg_t *a = MSG_NEW(gate_minted_phone_msg_t, GATE_MSG_MINTED_PHONE);
    a->cookie = m->cookie;
    a->ok = ok && strcmp(verdict(r, &ms), "ok") == 0;
    if (a->ok) {
        str_copy(a->token, p->plan.token, sizeof(a->token));
        metric_inc(&g_metrics.tokens_issued_total, 1);
    }
    actor_send(m->reply_to, &a->hdr);
}

static void take_done(gate_t *g, gr_pending_t *p, bool ok, const net_redis_reply_t *r)
{
    gate_admit_msg_t *m = (gate_admit_msg_t *)p->msg;
    if (!ok) {
        gate_answer(m->session, false, WS_CLOSE_AT_CAPACITY, NULL);
        return;
    }
    token_t t;
    tenant_t *tenant = gate_admit_token(m, token_parse(r, &t) ? &t : NULL);
    if (tenant == NULL)
        return;
    gr_pending_t *q = gr_new(GR_ADMIT, p->msg);
    p->msg = NULL; /* q's now */
    q->tenant = tenant;
    gr_admit_send(g, q);
}

static void admit_done(gate_t *g, gr_pending_t *p, bool ok, const net_redis_reply_t *r)
{
    gate_admit_msg_t *m = (gate_admit_msg_t *)p->msg;
    long long ms;
    const char *v = ok ? verdict(r, &ms) : "";
    if (strcmp(v, "nolease") == 0 && !p->retried) {
        /* Our lease died: write the registry again, then the same admission, in this order on
         * one connection. */
        g->registered = false;
        gr_rereg(g);
        gr_pending_t *q = gr_new(GR_ADMIT, p->msg);
        p->msg = NULL;
        q->tenant = p->tenant;
        p->tenant = NULL;
        q->retried = true;
        gr_admit_send(g, q);
        return;
    }
    if (strcmp(v, "ok") == 0) {
        gate_register(g, m->session, m->session_id, m->phone ? "" : m->peer.ip, p->tenant->id);
        gate_answer(m->session, true, WS_CLOSE_NONE, p->tenant);
        p->tenant = NULL; /* the answer's */
        return;
    }
    gate_answer(m->session, false,
                strcmp(v, "exists") == 0 ? WS_CLOSE_SESSION_EXISTS : WS_CLOSE_AT_CAPACITY, NULL);
}

static void gr_done(gate_t *g, gr_pending_t *p, bool ok, const net_redis_reply_t *r)
{
    switch (p->kind) {
    case GR_MINT:
        mint_done(p, ok, r);
        break;
    case GR_MINT_PHONE:
        mint_phone_done(p, ok, r);
        break;
    case GR_TAKE:
        take_done(g, p, ok, r);
        break;
    case GR_ADMIT:
        admit_done(g, p, ok, r);
        break;
    case GR_REDEEM: {
        token_t t;
        gate_redeem_answer((const gate_redeem_msg_t *)p->msg,
                           ok && token_parse(r, &t) ? &t : NULL);
        break;
    }
    case GR_END:
        if (!ok || r == NULL || r->type == NET_REDIS_ERROR)
            g->dirty = true; /* the registry in Redis is written again at the next lease */
        break;
    case GR_LEASE:
        if (!ok || r == NULL || r->type != NET_REDIS_INTEGER || r->integer == 0)
            g->registered = false;
        break;
    case GR_KEY:
        key_done(g, ok, r);
        break;
    case GR_REREG:
        g->registered = ok && r != NULL && r->type == NET_REDIS_INTEGER;
        if (!g->registered)
            g->dirty = true;
        else
            log_info("redis.registered", LOG_S("node", g->node),
                     LOG_I("sessions", (long long)strmap_count(&g->sessions)));
        break;
    }
    gr_update_ready(g);
    gr_pending_free(p);
}

void gr_reply(gate_t *g, net_redis_msg_t *m)
{
    char key[24];
    snprintf(key, sizeof(key), "%llx", (unsigned long long)m->cookie);
    gr_pending_t *p = strmap_del(&g->pending, key);
    if (p != NULL)
        gr_done(g, p, m->ok, m->reply);
}

/* ---- Life --------------------------------------------------------------------------------- */

void gr_start(gate_t *g)
{
    strmap_init(&g->pending);
    if (!net_redis_on())
        return;
    g->lease = actor_timer_new(&g->actor, GATE_MSG_LEASE, NULL);
    actor_timer_start(g->lease, GR_LEASE_FIRST_MS, GR_TICK_MS);
}

static int drop_pending(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    gr_pending_free(value);
    return 1;
}

void gr_stop(gate_t *g)
{
    actor_timer_free(g->lease);
    g->lease = NULL;
    strmap_filter(&g->pending, drop_pending, NULL);
    strmap_destroy(&g->pending);
}

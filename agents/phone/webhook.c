/*
 * The phone webhook actor (SPEC 5.5, 16): POST /twilio/voice. It checks X-Twilio-Signature,
 * picks the tenant by the `To` number, asks the gate for a single-use stream token bound to the
 * CallSid (which is where the voice limits are counted), and answers TwiML that connects the
 * call to /twilio/media with the token, CallSid, From and To as <Parameter>s. A call the limits
 * do not allow hears a busy sentence and is hung up; an unknown number hears that it is not in
 * service. Requests wait for the gate's answer in a short list keyed by cookie.
 * Thread: its worker.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "agents/auth/auth.h"
#include "agents/phone/phone.h"
#include "agents/phone/twilio.h"
#include "agents/tenant/tenant.h"
#include "base/config.h"
#include "base/log.h"
#include "base/util.h"

#define TWIML_TYPE     "text/xml"
#define SAY_BUSY       "Sorry, all our lines are busy right now. Please call again in a few minutes."
#define SAY_NO_SERVICE "Sorry, this number is not in service."

/* A webhook waiting for the gate's token. */
typedef struct ringing {
    struct ringing *next;
    uint64_t cookie;
    conn_id_t conn;
    char *stream_url;
    char call_sid[ID_MAX + 1];
    char *from;
    char *to;
} ringing_t;

typedef struct phone {
    actor_t actor;
    actor_t *gate; /* a reference */
    ringing_t *ringing;
    uint64_t next_cookie;
} phone_t;

/* ---- Metrics ---------------------------------------------------------------------------------- */

static const char *const drop_reasons[] = {"invalid_json", "no_event",    "bad_start",
                                           "bad_media",    "too_big",     "bad_payload",
                                           "bad_mark",     "bad_dtmf",    "before_start",
                                           "other"};
/* Advisory counters: relaxed is enough, nothing is ordered by them. */
static _Atomic uint64_t dropped[ARRAY_LEN(drop_reasons)];
static _Atomic uint64_t gaps;

void phone_count_dropped(const char *reason)
{
    size_t i = 0;
    while (i < ARRAY_LEN(drop_reasons) - 1 && strcmp(drop_reasons[i], reason) != 0)
        i++;
    atomic_fetch_add_explicit(&dropped[i], 1, memory_order_relaxed);
}

void phone_count_gap(uint64_t n)
{
    atomic_fetch_add_explicit(&gaps, n, memory_order_relaxed);
}

void phone_metrics(sbuf_t *out, void *arg)
{
    (void)arg;
    sbuf_puts(out, "# HELP switchboard_twilio_dropped_total Twilio Media Stream messages dropped "
                   "as malformed.\n# TYPE switchboard_twilio_dropped_total counter\n");
    for (size_t i = 0; i < ARRAY_LEN(drop_reasons); i++)
        sbuf_printf(out, "switchboard_twilio_dropped_total{reason=\"%s\"} %llu\n", drop_reasons[i],
                    (unsigned long long)atomic_load_explicit(&dropped[i], memory_order_relaxed));
    sbuf_printf(out,
                "# HELP switchboard_twilio_sequence_gaps_total Twilio messages missing between "
                "sequenceNumbers (media dropped under backpressure included).\n# TYPE switchboard_twilio_sequence_gaps_total counter\n"
                "switchboard_twilio_sequence_gaps_total %llu\n",
                (unsigned long long)atomic_load_explicit(&gaps, memory_order_relaxed));
}

bool phone_enabled(void)
{
    return g_config->twilio_auth_token != NULL;
}

/* ---- The webhook ------------------------------------------------------------------------------ */

static void answer_twiml(conn_id_t conn, sbuf_t *b)
{
    net_http_respond_typed(conn, 200, TWIML_TYPE, b->data, b->len, NULL);
    sbuf_destroy(b);
}

static void say_hangup(conn_id_t conn, const char *text)
{
    sbuf_t b = SBUF_INIT;
    twiml_say_hangup(&b, text);
    answer_twiml(conn, &b);
}

/* The service's public base: SWITCHBOARD_PUBLIC_URL, else the request's scheme and Host. */
static char *public_base(const net_http_msg_t *req)
{
    sbuf_t b = SBUF_INIT;
    if (g_config->public_url)
        sbuf_puts(&b, g_config->public_url);
    else
        sbuf_printf(&b, "%s://%s", req->tls ? "https" : "http", req->host ? req->host : "");
    return sbuf_take(&b);
}

/* wss://{public host}/twilio/media (ws:// when the public URL is plain http). */
static char *stream_url(const char *base)
{
    sbuf_t b = SBUF_INIT;
    bool plain = strncmp(base, "http://", 7) == 0;
    sbuf_puts(&b, plain ? "ws://" : "wss://");
    sbuf_puts(&b, base + (plain ? 7 : strncmp(base, "https://", 8) == 0 ? 8 : 0));
    sbuf_puts(&b, PHONE_MEDIA_PATH);
    return sbuf_take(&b);
}

/* The tenant of a call to `to`: the one that lists the number; else, when a single tenant lists
 * no numbers at all, that one (a gateway with one business takes every number pointed at it). */
static tenant_t *tenant_of(const char *to)
{
    tenant_t *t = to ? tenants_by_phone(to) : NULL;
    if (t)
        return t;
    t = tenants_sole();
    if (t && t->cfg.access.n_phone_numbers == 0)
        return t;
    tenant_unref(t);
    return NULL;
}

static void ringing_free(ringing_t *r)
{
    free(r->stream_url);
    free(r->from);
    free(r->to);
    free(r);
}

static void voice_webhook(phone_t *p, const net_http_msg_t *req)
{
    twilio_form_t form;
    if (twilio_form_parse(&form, req->body ? req->body : "", req->body_len) != 0) {
        net_http_error(req->conn, 400, "invalid_request", "the body is not a form");
        return;
    }
    char *base = public_base(req);
    sbuf_t url = SBUF_INIT;
    sbuf_puts(&url, base);
    sbuf_puts(&url, req->path);
    if (req->query && req->query[0]) {
        sbuf_putc(&url, '?');
        sbuf_puts(&url, req->query);
    }
    bool signed_ok = twilio_signature_ok(g_config->twilio_auth_token, url.data, &form,
                                         req->twilio_signature);
    sbuf_destroy(&url);
    if (!signed_ok) {
        log_warn("phone.bad_signature", LOG_S("ip", req->peer.ip));
        net_http_error(req->conn, 403, "invalid_signature",
                       "X-Twilio-Signature does not match the request");
        goto out;
    }
    const char *call_sid = twilio_form_get(&form, "CallSid");
    const char *from = twilio_form_get(&form, "From");
    const char *to = twilio_form_get(&form, "To");
    if (call_sid == NULL || !str_is_id(call_sid, strlen(call_sid), SESSION_ID_MIN, ID_MAX)) {
        net_http_error(req->conn, 400, "invalid_request", "CallSid is missing or malformed");
        goto out;
    }
    tenant_t *tenant = tenant_of(to);
    if (tenant == NULL) {
        log_info("phone.unknown_number", LOG_S("to", to ? to : ""), LOG_S("call", call_sid));
        say_hangup(req->conn, SAY_NO_SERVICE);
        goto out;
    }
    ringing_t *r = xcalloc(1, sizeof(*r));
    r->cookie = ++p->next_cookie;
    r->conn = req->conn;
    r->stream_url = stream_url(base);
    str_copy(r->call_sid, call_sid, sizeof(r->call_sid));
    r->from = xstrdup(from ? from : "");
    r->to = xstrdup(to ? to : "");
    r->next = p->ringing;
    p->ringing = r;
    actor_send(p->gate, &gate_mint_phone_new(&p->actor, r->cookie, call_sid, tenant)->hdr);
    log_info("phone.ringing", LOG_S("call", call_sid), LOG_S("tenant", tenant->id));
    tenant_unref(tenant);
out:
    free(base);
    twilio_form_free(&form);
}

static void minted(phone_t *p, const gate_minted_phone_msg_t *m)
{
    ringing_t *r = NULL;
    for (ringing_t **pp = &p->ringing; *pp; pp = &(*pp)->next) {
        if ((*pp)->cookie == m->cookie) {
            r = *pp;
            *pp = r->next;
            break;
        }
    }
    if (r == NULL)
        return;
    if (!m->ok) {
        log_info("phone.busy", LOG_S("call", r->call_sid));
        say_hangup(r->conn, SAY_BUSY);
    } else {
        const twiml_param_t params[] = {
            {"token", m->token}, {"callSid", r->call_sid}, {"from", r->from}, {"to", r->to}};
        sbuf_t b = SBUF_INIT;
        twiml_connect(&b, r->stream_url, params, ARRAY_LEN(params));
        answer_twiml(r->conn, &b);
    }
    ringing_free(r);
}

static void phone_handle(actor_t *self, msg_t *m)
{
    phone_t *p = (phone_t *)self;
    switch (m->type) {
    case NET_MSG_HTTP:
        voice_webhook(p, (net_http_msg_t *)m);
        break;
    case GATE_MSG_MINTED_PHONE:
        minted(p, (gate_minted_phone_msg_t *)m);
        break;
    default:
        break;
    }
    msg_free(m);
}

static void phone_stop(actor_t *self)
{
    phone_t *p = (phone_t *)self;
    while (p->ringing) {
        ringing_t *r = p->ringing;
        p->ringing = r->next;
        ringing_free(r);
    }
    actor_unref(p->gate);
}

static const actor_type_t phone_type = {"phone", phone_handle, phone_stop};

actor_t *phone_spawn(actor_t *gate)
{
    phone_t *p = xcalloc(1, sizeof(*p));
    if (actor_spawn(&p->actor, &phone_type, LANE_REALTIME) != 0) {
        free(p);
        return NULL;
    }
    actor_ref(gate);
    p->gate = gate;
    return &p->actor;
}

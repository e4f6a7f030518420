/*
 * twilio: form bodies, signatures, TwiML and Media Stream messages (twilio.h). Pure.
 */
#include "agents/phone/twilio.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#include "audio/b64.h"
#include "base/util.h"
#include "net/httphead.h"
#include "net/wsproto.h"

#define SHA1_BYTES 20

/* ---- Form bodies ------------------------------------------------------------------------------
 */

void twilio_form_free(twilio_form_t *form)
{
    for (size_t i = 0; i < form->n; i++) {
        free(form->fields[i].name);
        free(form->fields[i].value);
    }
    form->n = 0;
}

/* Decodes n bytes at in into a new string; NULL for a bad escape or a decoded NUL. */
static char *decode(const char *in, size_t n)
{
    char *out = xmalloc(n + 1);
    if (httphead_query_decode(in, n, out, n + 1) < 0) {
        free(out);
        return NULL;
    }
    return out;
}

int twilio_form_parse(twilio_form_t *form, const char *body, size_t len)
{
    form->n = 0;
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if (stop > p) {
            if (form->n == TWILIO_FORM_MAX_FIELDS)
                goto bad;
            const char *eq = memchr(p, '=', (size_t)(stop - p));
            const char *name_end = eq ? eq : stop;
            char *name = decode(p, (size_t)(name_end - p));
            char *value = eq ? decode(eq + 1, (size_t)(stop - eq - 1)) : xstrdup("");
            if (name == NULL || value == NULL) {
                free(name);
                free(value);
                goto bad;
            }
            form->fields[form->n].name = name;
            form->fields[form->n].value = value;
            form->n++;
        }
        p = stop + 1;
    }
    return 0;
bad:
    twilio_form_free(form);
    return -EINVAL;
}

const char *twilio_form_get(const twilio_form_t *form, const char *name)
{
    for (size_t i = 0; i < form->n; i++)
        if (strcmp(form->fields[i].name, name) == 0)
            return form->fields[i].value;
    return NULL;
}

/* ---- Signatures -------------------------------------------------------------------------------
 */

static int field_cmp(const void *a, const void *b)
{
    const twilio_field_t *x = *(const twilio_field_t *const *)a;
    const twilio_field_t *y = *(const twilio_field_t *const *)b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

void twilio_signature(const char *auth_token, const char *url, const twilio_form_t *form,
                      char out[TWILIO_SIG_B64_LEN + 1])
{
    const twilio_field_t *sorted[TWILIO_FORM_MAX_FIELDS];
    for (size_t i = 0; i < form->n; i++)
        sorted[i] = &form->fields[i];
    qsort(sorted, form->n, sizeof(sorted[0]), field_cmp);
    sbuf_t data = SBUF_INIT;
    sbuf_puts(&data, url);
    for (size_t i = 0; i < form->n; i++) {
        sbuf_puts(&data, sorted[i]->name);
        sbuf_puts(&data, sorted[i]->value);
    }
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha1(), auth_token, (int)strlen(auth_token), (const unsigned char *)data.data,
         data.len, mac, &mac_len);
    sbuf_destroy(&data);
    b64_encode(mac, SHA1_BYTES, out);
}

bool twilio_signature_ok(const char *auth_token, const char *url, const twilio_form_t *form,
                         const char *header)
{
    if (header == NULL || strlen(header) != TWILIO_SIG_B64_LEN)
        return false;
    char want[TWILIO_SIG_B64_LEN + 1];
    twilio_signature(auth_token, url, form, want);
    return CRYPTO_memcmp(want, header, TWILIO_SIG_B64_LEN) == 0;
}

/* ---- TwiML ------------------------------------------------------------------------------------
 */

#define TWIML_HEAD "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>"

void twiml_connect(sbuf_t *b, const char *stream_url, const twiml_param_t *params, size_t n)
{
    sbuf_puts(b, TWIML_HEAD "<Connect><Stream url=\"");
    sbuf_xml_text(b, stream_url);
    sbuf_puts(b, "\">");
    for (size_t i = 0; i < n; i++) {
        sbuf_puts(b, "<Parameter name=\"");
        sbuf_xml_text(b, params[i].name);
        sbuf_puts(b, "\" value=\"");
        sbuf_xml_text(b, params[i].value ? params[i].value : "");
        sbuf_puts(b, "\"/>");
    }
    sbuf_puts(b, "</Stream></Connect></Response>");
}

void twiml_say_hangup(sbuf_t *b, const char *text)
{
    sbuf_puts(b, TWIML_HEAD "<Say>");
    sbuf_xml_text(b, text);
    sbuf_puts(b, "</Say><Hangup/></Response>");
}

void twiml_dial(sbuf_t *b, const char *number)
{
    sbuf_puts(b, "<Response><Dial>");
    sbuf_xml_text(b, number);
    sbuf_puts(b, "</Dial></Response>");
}

void twilio_form_encode(sbuf_t *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            sbuf_putc(b, (char)*p);
        } else {
            sbuf_putc(b, '%');
            sbuf_putc(b, hex[*p >> 4]);
            sbuf_putc(b, hex[*p & 15]);
        }
    }
}

/* ---- Media Stream messages --------------------------------------------------------------------
 */

static bool b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

bool twilio_b64_ok(const char *s, size_t len)
{
    if (len == 0 || len % 4 != 0)
        return false;
    size_t pad = s[len - 1] == '=' ? (s[len - 2] == '=' ? 2 : 1) : 0;
    for (size_t i = 0; i < len - pad; i++)
        if (!b64_char(s[i]))
            return false;
    return true;
}

size_t twilio_b64_bytes(const char *s, size_t len)
{
    if (len < 4)
        return 0;
    size_t pad = s[len - 1] == '=' ? (s[len - 2] == '=' ? 2 : 1) : 0;
    return len / 4 * 3 - pad;
}

static const char *str_of(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The n characters at s as a decimal number ("12"), as Twilio sends its numbers; -1 when they
 * are not one (or s is NULL). */
static int64_t decimal(const char *s, size_t n)
{
    if (s == NULL || n == 0 || n > 18)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* A member that is a decimal string; -1 when absent or not one. */
static int64_t number_string(const cJSON *o, const char *name)
{
    const char *s = str_of(o, name);
    return s ? decimal(s, strlen(s)) : -1;
}

static twilio_event_t malformed(twilio_msg_t *msg, const char *reason)
{
    msg->event = TWILIO_EV_MALFORMED;
    msg->reason = reason;
    return msg->event;
}

twilio_event_t twilio_msg_parse(const cJSON *j, twilio_msg_t *msg)
{
    memset(msg, 0, sizeof(*msg));
    msg->seq = -1;
    const char *event = str_of(j, "event");
    if (!cJSON_IsObject(j) || event == NULL)
        return malformed(msg, "no_event");
    msg->stream_sid = str_of(j, "streamSid");
    msg->seq = number_string(j, "sequenceNumber");
    if (strcmp(event, "connected") == 0)
        return msg->event = TWILIO_EV_CONNECTED;
    if (strcmp(event, "start") == 0) {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "start");
        if (!cJSON_IsObject(st))
            return malformed(msg, "bad_start");
        const char *sid = str_of(st, "streamSid");
        if (sid)
            msg->stream_sid = sid;
        msg->call_sid = str_of(st, "callSid");
        msg->account_sid = str_of(st, "accountSid");
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(st, "customParameters");
        msg->params = cJSON_IsObject(params) ? params : NULL;
        if (msg->stream_sid == NULL || msg->stream_sid[0] == '\0' || msg->call_sid == NULL)
            return malformed(msg, "bad_start");
        return msg->event = TWILIO_EV_START;
    }
    if (strcmp(event, "media") == 0) {
        const cJSON *media = cJSON_GetObjectItemCaseSensitive(j, "media");
        const cJSON *payload = cJSON_GetObjectItemCaseSensitive(media, "payload");
        if (!cJSON_IsString(payload))
            return malformed(msg, "bad_media");
        size_t n = strlen(payload->valuestring);
        if (n > TWILIO_PAYLOAD_MAX)
            return malformed(msg, "too_big");
        if (!twilio_b64_ok(payload->valuestring, n))
            return malformed(msg, "bad_payload");
        msg->payload = payload->valuestring;
        msg->payload_len = n;
        return msg->event = TWILIO_EV_MEDIA;
    }
    if (strcmp(event, "mark") == 0) {
        msg->mark = str_of(cJSON_GetObjectItemCaseSensitive(j, "mark"), "name");
        if (msg->mark == NULL)
            return malformed(msg, "bad_mark");
        return msg->event = TWILIO_EV_MARK;
    }
    if (strcmp(event, "dtmf") == 0) {
        const char *d = str_of(cJSON_GetObjectItemCaseSensitive(j, "dtmf"), "digit");
        if (d == NULL || strlen(d) != 1 ||
            !((d[0] >= '0' && d[0] <= '9') || d[0] == '*' || d[0] == '#' ||
              (d[0] >= 'A' && d[0] <= 'D')))
            return malformed(msg, "bad_dtmf");
        msg->digit = d[0];
        return msg->event = TWILIO_EV_DTMF;
    }
    if (strcmp(event, "stop") == 0)
        return msg->event = TWILIO_EV_STOP;
    return msg->event = TWILIO_EV_UNKNOWN;
}

bool twilio_mark_parse(const char *name, char *item, size_t itemlen, uint64_t *ms, bool *done)
{
    *done = false;
    *ms = 0;
    if (itemlen == 0)
        return false;
    if (strncmp(name, "done:", 5) == 0 && name[5] != '\0') {
        *done = true;
        str_copy(item, name + 5, itemlen);
        return true;
    }
    const char *colon = strrchr(name, ':');
    if (colon == NULL || colon == name || colon[1] == '\0' || strlen(colon + 1) > 12)
        return false;
    uint64_t v = 0;
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    size_t n = (size_t)(colon - name);
    if (n >= itemlen)
        n = itemlen - 1;
    memcpy(item, name, n);
    item[n] = '\0';
    *ms = v;
    return true;
}

/* ---- The fast reading of media and mark ------------------------------------------------------ */

twilio_event_t twilio_scan(const char *s, size_t len, int64_t *seq, const char **data,
                           size_t *data_len)
{
    static const char *const top_names[] = {"event", "sequenceNumber"};
    static const char *const objects[] = {"media", "mark"};
    static const char *const media_names[] = {"payload"};
    static const char *const mark_names[] = {"name"};
    wsp_span_t top[ARRAY_LEN(top_names)], obj[ARRAY_LEN(objects)], inner[1];
    if (!wsp_scan_event_objs(s, len, top_names, ARRAY_LEN(top_names), top, objects,
                             ARRAY_LEN(objects), obj))
        return TWILIO_EV_UNKNOWN;
    bool media = wsp_span_is(top[0], "media");
    if (!media && !wsp_span_is(top[0], "mark"))
        return TWILIO_EV_UNKNOWN;
    /* The event's object (named once, at the top level), and the one member read from it. */
    wsp_span_t o = obj[media ? 0 : 1];
    if (o.p == NULL || !wsp_scan_event(o.p, o.len, media ? media_names : mark_names, 1, inner) ||
        inner[0].p == NULL)
        return TWILIO_EV_UNKNOWN;
    /* A payload twilio_msg_parse() would call malformed is left to it, to be counted. */
    if (media && (inner[0].len > TWILIO_PAYLOAD_MAX || !twilio_b64_ok(inner[0].p, inner[0].len)))
        return TWILIO_EV_UNKNOWN;
    *seq = decimal(top[1].p, top[1].len);
    *data = inner[0].p;
    *data_len = inner[0].len;
    return media ? TWILIO_EV_MEDIA : TWILIO_EV_MARK;
}

/* The bench as Twilio: webhook, TwiML and Media Stream messages; see twcall.h. */
#include "bench/loadgen/twcall.h"

#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/phone/twilio.h"
#include "audio/b64.h"
#include "base/util.h"
#include "net/wsframe.h"

#define ACCOUNT_SID      "AC00000000000000000000000000bench"
#define CALLED_NUMBER    "+15550199999" /* To; From is +1555 and the call's index */
#define MARKS_CAP0       8
#define TWIML_QUOTED_MAX 60
#define XML_REF_DIGITS_MAX                                                                         \
    7 /* "&#1114111;" and "&#x10FFFF;" at most */ /* characters of an unexpected answer quoted in  \
                                                     the reason */

twcall_t *twcall_new(uint32_t idx, const char *run_id)
{
    twcall_t *tw = xcalloc(1, sizeof(*tw));
    /* Twilio's ids are two letters and 32 hex digits; the run id keeps runs apart. */
    snprintf(tw->call_sid, sizeof(tw->call_sid), "CA%s%026u", run_id, idx);
    snprintf(tw->stream_sid, sizeof(tw->stream_sid), "MZ%s%026u", run_id, idx);
    return tw;
}

void twcall_free(twcall_t *tw)
{
    if (tw == NULL)
        return;
    free(tw->path);
    free(tw->start);
    free(tw->marks);
    free(tw);
}

/* ---- The webhook ----------------------------------------------------------------------------- */

void twcall_ring(const twcall_t *tw, uint32_t idx, const char *token, const char *signed_url,
                 sbuf_t *body, char *sig_hdr, size_t sig_hdr_len)
{
    char from[32];
    snprintf(from, sizeof(from), "+1555%07u", idx % 10000000u);
    const char *const fields[][2] = {
        {"AccountSid", ACCOUNT_SID}, {"ApiVersion", "2010-04-01"},
        {"CallSid", tw->call_sid},   {"CallStatus", "ringing"},
        {"Direction", "inbound"},    {"From", from},
        {"To", CALLED_NUMBER},       {"Caller", from},
        {"Called", CALLED_NUMBER},
    };
    twilio_form_t form = {.n = 0};
    for (size_t i = 0; i < ARRAY_LEN(fields); i++) {
        form.fields[form.n].name = xstrdup(fields[i][0]);
        form.fields[form.n++].value = xstrdup(fields[i][1]);
        if (i)
            sbuf_putc(body, '&');
        twilio_form_encode(body, fields[i][0]);
        sbuf_putc(body, '=');
        twilio_form_encode(body, fields[i][1]);
    }
    char sig[TWILIO_SIG_B64_LEN + 1];
    twilio_signature(token, signed_url, &form, sig);
    twilio_form_free(&form);
    snprintf(sig_hdr, sig_hdr_len, "X-Twilio-Signature: %s", sig);
}

/* ---- TwiML ----------------------------------------------------------------------------------- */

/* A character reference at s (n bytes), "&#39;" or "&#x27;": its code point and length, or 0. */
static size_t char_ref(const char *s, size_t n, uint32_t *cp)
{
    bool hex = n > 3 && s[2] == 'x';
    size_t i = hex ? 3 : 2;
    uint32_t v = 0;
    size_t digits = 0;
    for (; i < n && s[i] != ';' && digits < XML_REF_DIGITS_MAX; i++, digits++) {
        int d = s[i] >= '0' && s[i] <= '9'          ? s[i] - '0'
                : hex && s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10
                : hex && s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 10
                                                    : -1;
        if (d < 0)
            return 0;
        v = v * (hex ? 16u : 10u) + (uint32_t)d;
    }
    if (digits == 0 || i >= n || s[i] != ';' || v == 0 || v > 0x10ffff ||
        (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return i + 1;
}

/* Appends code point cp as UTF-8; returns the bytes written (at most 4). */
static size_t put_utf8(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Decodes XML's five named entities and character references ("&#39;") in n bytes at s. A
 * reference is never longer than what it stands for, so n + 1 bytes hold the result. */
static char *xml_unescape(const char *s, size_t n)
{
    static const struct {
        const char *ent;
        char c;
    } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    char *out = xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = 0, used = 0;
        while (s[i] == '&' && k < ARRAY_LEN(ents) &&
               (n - i < strlen(ents[k].ent) || memcmp(s + i, ents[k].ent, strlen(ents[k].ent))))
            k++;
        if (s[i] == '&' && k < ARRAY_LEN(ents)) {
            out[o++] = ents[k].c;
            i += strlen(ents[k].ent);
        } else if (s[i] == '&' && n - i > 2 && s[i + 1] == '#' &&
                   (used = char_ref(s + i, n - i, &cp)) != 0) {
            o += put_utf8(out + o, cp);
            i += used;
        } else {
            out[o++] = s[i++];
        }
    }
    out[o] = '\0';
    return out;
}

/* The value of attribute name in the tag that runs from tag to end, unescaped; NULL if absent. */
static char *attr(const char *tag, const char *end, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = tag + 1; p + nl + 2 < end; p++) {
        if ((p[-1] != ' ' && p[-1] != '\t' && p[-1] != '\n') || memcmp(p, name, nl) != 0 ||
            p[nl] != '=' || (p[nl + 1] != '"' && p[nl + 1] != '\''))
            continue;
        const char *v = p + nl + 2;
        const char *q = memchr(v, p[nl + 1], (size_t)(end - v));
        return q ? xml_unescape(v, (size_t)(q - v)) : NULL;
    }
    return NULL;
}

/* The next tag <name …> at or after p (before end): its start, and *tag_end its '>'. */
static const char *find_tag(const char *p, const char *end, const char *name, const char **tag_end)
{
    size_t nl = strlen(name);
    for (; p + nl + 1 < end; p++) {
        if (p[0] != '<' || memcmp(p + 1, name, nl) != 0 ||
            (p[nl + 1] != ' ' && p[nl + 1] != '>' && p[nl + 1] != '/' && p[nl + 1] != '\n'))
            continue;
        *tag_end = memchr(p, '>', (size_t)(end - p));
        return *tag_end ? p : NULL;
    }
    return NULL;
}

/* Why a TwiML without a stream says no: its <Say> text, else its verbs. */
static void twiml_refusal(const char *xml, const char *end, char *why, size_t why_len)
{
    const char *te, *he;
    const char *say = find_tag(xml, end, "Say", &te);
    const char *close = say ? strstr(te, "</Say>") : NULL;
    bool hangup = find_tag(xml, end, "Hangup", &he) != NULL;
    if (close && close < end)
        snprintf(why, why_len, "TwiML without a stream: <Say>%.*s</Say>%s", (int)(close - te - 1),
                 te + 1, hangup ? "<Hangup/>" : "");
    else
        snprintf(why, why_len, "not a TwiML <Connect><Stream>: %.*s",
                 (int)(end - xml < TWIML_QUOTED_MAX ? end - xml : TWIML_QUOTED_MAX), xml);
}

int twcall_twiml(twcall_t *tw, const char *xml, size_t len, char *why, size_t why_len)
{
    const char *end = xml + len;
    const char *te, *se;
    const char *conn = find_tag(xml, end, "Connect", &te);
    const char *stream = conn ? find_tag(te, end, "Stream", &se) : NULL;
    if (stream == NULL) {
        twiml_refusal(xml, end, why, why_len);
        return -EINVAL;
    }
    char *url = attr(stream, se, "url");
    const char *host = url ? strstr(url, "://") : NULL;
    if (host == NULL || (strncmp(url, "ws://", 5) != 0 && strncmp(url, "wss://", 6) != 0)) {
        snprintf(why, why_len, "the stream URL is not ws(s)://: %.80s", url ? url : "(none)");
        free(url);
        return -EINVAL;
    }
    const char *path = strchr(host + 3, '/');
    free(tw->path);
    tw->path = xstrdup(path ? path : "/");
    free(url);

    /* customParameters: every <Parameter name value> inside the <Stream>. */
    sbuf_t b = SBUF_INIT;
    sbuf_puts(
        &b, "{\"event\":\"start\",\"sequenceNumber\":\"1\",\"start\":{\"accountSid\":\"" ACCOUNT_SID
            "\",\"streamSid\":\"");
    sbuf_puts(&b, tw->stream_sid);
    sbuf_puts(&b, "\",\"callSid\":\"");
    sbuf_puts(&b, tw->call_sid);
    sbuf_puts(&b, "\",\"tracks\":[\"inbound\"],\"mediaFormat\":{\"encoding\":\"audio/x-mulaw\","
                  "\"sampleRate\":8000,\"channels\":1},\"customParameters\":{");
    const char *stream_close = strstr(se, "</Stream>");
    const char *p_end = stream_close && stream_close < end ? stream_close : end;
    const char *pe;
    int n = 0;
    for (const char *p = find_tag(se, p_end, "Parameter", &pe); p;
         p = find_tag(pe, p_end, "Parameter", &pe)) {
        char *name = attr(p, pe, "name");
        char *value = attr(p, pe, "value");
        if (name && value) {
            if (n++)
                sbuf_putc(&b, ',');
            sbuf_json_str(&b, name);
            sbuf_putc(&b, ':');
            sbuf_json_str(&b, value);
        }
        free(name);
        free(value);
    }
    sbuf_puts(&b, "}},\"streamSid\":\"");
    sbuf_puts(&b, tw->stream_sid);
    sbuf_puts(&b, "\"}");
    free(tw->start);
    tw->start = sbuf_take(&b);
    return 0;
}

/* ---- Writing --------------------------------------------------------------------------------- */

/* Copies the n bytes of s to p; returns p + n. */
static uint8_t *put(uint8_t *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

#define PUT_LIT(p, lit) put((p), (lit), sizeof(lit) - 1)

static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
    return put(p, tmp, (size_t)n);
}

/* Writes the n bytes at s as the inside of a JSON string (quotes, backslashes and control
 * characters escaped); returns the end. At most 6 * n bytes. */
static uint8_t *put_json_chars(uint8_t *p, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = c;
        } else if (c < 0x20) {
            p += snprintf((char *)p, 7, "\\u%04x", c);
        } else {
            *p++ = c;
        }
    }
    return p;
}

static uint8_t *put_sid_tail(uint8_t *p, const twcall_t *tw)
{
    p = PUT_LIT(p, ",\"streamSid\":\"");
    p = put(p, tw->stream_sid, strlen(tw->stream_sid));
    return PUT_LIT(p, "\"}");
}

void twcall_put_open(twcall_t *tw, uint8_t *out, size_t *at)
{
    static const char connected[] = "{\"event\":\"connected\",\"protocol\":\"Call\","
                                    "\"version\":\"1.0.0\"}";
    memcpy(out + *at + WSF_HEADER_MAX, connected, sizeof(connected) - 1);
    wsf_client_frame_append(out, at, sizeof(connected) - 1, WSF_OP_TEXT);
    size_t n = strlen(tw->start);
    memcpy(out + *at + WSF_HEADER_MAX, tw->start, n);
    wsf_client_frame_append(out, at, n, WSF_OP_TEXT);
    tw->seq = 1;
    tw->opened = true;
}

size_t twcall_media_max(size_t n)
{
    return WSF_HEADER_MAX + TWCALL_MSG_OVERHEAD + b64_encoded_len(n);
}

void twcall_put_media(twcall_t *tw, uint8_t *out, size_t *at, const uint8_t *ulaw, size_t n,
                      uint32_t chunk, uint64_t timestamp_ms)
{
    uint8_t *start = out + *at + WSF_HEADER_MAX;
    uint8_t *p = PUT_LIT(start, "{\"event\":\"media\",\"sequenceNumber\":\"");
    p = put_u64(p, ++tw->seq);
    p = PUT_LIT(p, "\",\"media\":{\"track\":\"inbound\",\"chunk\":\"");
    p = put_u64(p, chunk);
    p = PUT_LIT(p, "\",\"timestamp\":\"");
    p = put_u64(p, timestamp_ms);
    p = PUT_LIT(p, "\",\"payload\":\"");
    p += b64_encode(ulaw, n, (char *)p);
    p = PUT_LIT(p, "\"}");
    p = put_sid_tail(p, tw);
    wsf_client_frame_append(out, at, (size_t)(p - start), WSF_OP_TEXT);
}

size_t twcall_put_marks(twcall_t *tw, uint8_t *out, size_t *at, size_t cap, uint64_t now)
{
    size_t done = 0;
    while (tw->n_marks > 0) {
        const twcall_mark_t *m = &tw->marks[tw->head];
        if (m->due_ns > now || *at + WSF_HEADER_MAX + TWCALL_MSG_OVERHEAD + 6 * m->len > cap)
            break;
        uint8_t *start = out + *at + WSF_HEADER_MAX;
        uint8_t *p = PUT_LIT(start, "{\"event\":\"mark\",\"sequenceNumber\":\"");
        p = put_u64(p, ++tw->seq);
        p = PUT_LIT(p, "\",\"mark\":{\"name\":\"");
        p = put_json_chars(p, m->name, m->len);
        p = PUT_LIT(p, "\"}");
        p = put_sid_tail(p, tw);
        wsf_client_frame_append(out, at, (size_t)(p - start), WSF_OP_TEXT);
        tw->head = (tw->head + 1) % tw->cap_marks;
        tw->n_marks--;
        tw->marks_echoed++;
        done++;
    }
    return done;
}

void twcall_put_stop(twcall_t *tw, uint8_t *out, size_t *at)
{
    uint8_t *start = out + *at + WSF_HEADER_MAX;
    uint8_t *p = PUT_LIT(start, "{\"event\":\"stop\",\"sequenceNumber\":\"");
    p = put_u64(p, ++tw->seq);
    p = PUT_LIT(p, "\",\"stop\":{\"accountSid\":\"" ACCOUNT_SID "\",\"callSid\":\"");
    p = put(p, tw->call_sid, strlen(tw->call_sid));
    p = PUT_LIT(p, "\"}");
    p = put_sid_tail(p, tw);
    wsf_client_frame_append(out, at, (size_t)(p - start), WSF_OP_TEXT);
    tw->stopped = true;
}

uint64_t twcall_next_mark_ns(const twcall_t *tw)
{
    return tw->n_marks ? tw->marks[tw->head].due_ns : UINT64_MAX;
}

/* ---- Reading --------------------------------------------------------------------------------- */

void twcall_played(twcall_t *tw, size_t n, uint64_t now)
{
    uint64_t from = tw->play_end_ns > now ? tw->play_end_ns : now;
    tw->play_end_ns = from + (uint64_t)n * NS_PER_MS / TWCALL_ULAW_BYTES_PER_MS;
}

/* The string value after key (a literal "\"key\":\"") in [p, end): start and length, or NULL
 * when the key is absent or the value has an escape (the caller then asks cJSON). */
static const char *str_after(const char *p, const char *end, const char *key, size_t *n)
{
    size_t kl = strlen(key);
    const char *k = memmem(p, (size_t)(end - p), key, kl);
    if (k == NULL)
        return NULL;
    const char *v = k + kl;
    const char *q = memchr(v, '"', (size_t)(end - v));
    if (q == NULL || memchr(v, '\\', (size_t)(q - v)))
        return NULL;
    *n = (size_t)(q - v);
    return v;
}

/* The slow path: anything not in the service's compact form. Strings point into m->root_. */
static void parse_slow(const char *json, size_t len, twcall_msg_t *m)
{
    m->root_ = cJSON_ParseWithLength(json, len);
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(m->root_, "event");
    m->type = TWCALL_IN_INVALID;
    if (!cJSON_IsObject(m->root_) || !cJSON_IsString(ev))
        return;
    const char *what = strcmp(ev->valuestring, "media") == 0  ? "payload"
                       : strcmp(ev->valuestring, "mark") == 0 ? "name"
                                                              : NULL;
    if (what == NULL) {
        m->type = strcmp(ev->valuestring, "clear") == 0 ? TWCALL_IN_CLEAR : TWCALL_IN_OTHER;
        return;
    }
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(m->root_, ev->valuestring);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, what);
    if (!cJSON_IsString(v))
        return;
    m->type = what[0] == 'p' ? TWCALL_IN_MEDIA : TWCALL_IN_MARK;
    m->str = v->valuestring;
    m->str_len = strlen(v->valuestring);
}

void twcall_parse(const char *json, size_t len, twcall_msg_t *m)
{
    memset(m, 0, sizeof(*m));
    const char *end = json + len;
    size_t n = 0;
    const char *ev = str_after(json, end, "\"event\":\"", &n);
    if (ev && n == 5 && memcmp(ev, "media", 5) == 0) {
        m->type = TWCALL_IN_MEDIA;
        m->str = str_after(ev, end, "\"payload\":\"", &m->str_len);
    } else if (ev && n == 4 && memcmp(ev, "mark", 4) == 0) {
        m->type = TWCALL_IN_MARK;
        m->str = str_after(ev, end, "\"name\":\"", &m->str_len);
    } else if (ev) {
        m->type = n == 5 && memcmp(ev, "clear", 5) == 0 ? TWCALL_IN_CLEAR : TWCALL_IN_OTHER;
    }
    if (ev == NULL || ((m->type == TWCALL_IN_MEDIA || m->type == TWCALL_IN_MARK) && !m->str))
        parse_slow(json, len, m);
}

void twcall_msg_free(twcall_msg_t *m)
{
    cJSON_Delete(m->root_);
    m->root_ = NULL;
}

void twcall_on_mark(twcall_t *tw, const char *name, size_t len, uint64_t now)
{
    if (tw->n_marks == tw->cap_marks) {
        uint32_t cap = tw->cap_marks ? tw->cap_marks * 2 : MARKS_CAP0;
        twcall_mark_t *m = xmalloc(cap * sizeof(*m));
        for (uint32_t i = 0; i < tw->n_marks; i++)
            m[i] = tw->marks[(tw->head + i) % tw->cap_marks];
        free(tw->marks);
        tw->marks = m;
        tw->head = 0;
        tw->cap_marks = cap;
    }
    twcall_mark_t *m = &tw->marks[(tw->head + tw->n_marks++) % tw->cap_marks];
    m->due_ns = tw->play_end_ns > now ? tw->play_end_ns : now;
    m->len = (uint16_t)(len < sizeof(m->name) ? len : sizeof(m->name));
    memcpy(m->name, name, m->len);
}

void twcall_on_clear(twcall_t *tw, uint64_t now)
{
    tw->clears++;
    tw->play_end_ns = now;
    for (uint32_t i = 0; i < tw->n_marks; i++)
        tw->marks[(tw->head + i) % tw->cap_marks].due_ns = now;
}

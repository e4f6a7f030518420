#include "net/wsproto.h"

#include <stdint.h>
#include <string.h>

#define ASCII_HIGH_BITS 0x8080808080808080ULL

static int accepted(const char *const *types, const char *type)
{
    for (const char *const *t = types; t && *t; t++)
        if (strcmp(*t, type) == 0)
            return 1;
    return 0;
}

wsp_kind_t wsp_classify(const char *s, size_t len, const char *const *types, cJSON **json_out)
{
    return wsp_classify_untyped(s, len, types, NULL, json_out);
}

wsp_kind_t wsp_classify_untyped(const char *s, size_t len, const char *const *types,
                                const char *untyped, cJSON **json_out)
{
    *json_out = NULL;
    if (len == 4 && memcmp(s, "ping", 4) == 0)
        return WSP_PING_TEXT;
    cJSON *j = cJSON_ParseWithLength(s, len);
    if (j == NULL)
        return WSP_INVALID_JSON;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (untyped && type == NULL && cJSON_IsObject(j))
        type = cJSON_AddStringToObject(j, "type", untyped);
    if (!cJSON_IsObject(j) || !cJSON_IsString(type)) {
        cJSON_Delete(j);
        return WSP_INVALID_EVENT;
    }
    if (strcmp(type->valuestring, "ping") == 0) {
        cJSON_Delete(j);
        return WSP_PING_EVENT;
    }
    *json_out = j;
    return accepted(types, type->valuestring) ? WSP_EVENT : WSP_UNSUPPORTED;
}

bool wsp_utf8_valid(const void *s, size_t len)
{
    const uint8_t *p = s, *end = p + len;
    while (p < end) {
        if (*p < 0x80) {
            uint64_t w;
            while (end - p >= (ptrdiff_t)sizeof(w)) {
                memcpy(&w, p, sizeof(w));
                if (w & ASCII_HIGH_BITS)
                    break;
                p += sizeof(w);
            }
            while (p < end && *p < 0x80)
                p++;
            continue;
        }
        /* A lead byte: how many continuation bytes follow, and the range of the first one. */
        uint8_t c = *p++, lo = 0x80, hi = 0xbf;
        int more;
        if (c >= 0xc2 && c <= 0xdf) {
            more = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            more = 2;
            if (c == 0xe0)
                lo = 0xa0; /* overlong */
            else if (c == 0xed)
                hi = 0x9f; /* surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            more = 3;
            if (c == 0xf0)
                lo = 0x90; /* overlong */
            else if (c == 0xf4)
                hi = 0x8f; /* above U+10FFFF */
        } else {
            return false; /* a continuation byte, C0/C1 (overlong) or F5..FF */
        }
        if (end - p < more)
            return false;
        if (*p < lo || *p > hi)
            return false;
        for (int i = 1; i < more; i++)
            if ((p[i] & 0xc0) != 0x80)
                return false;
        p += more;
    }
    return true;
}

/* ---- wsp_scan_event: a strict JSON validator that notes three top-level members ------------- */

#define BYTES_ONE 0x0101010101010101ULL

/* Nonzero when some byte of x is below n (n <= 128). */
static inline uint64_t has_less(uint64_t x, uint8_t n)
{
    return (x - BYTES_ONE * n) & ~x & ASCII_HIGH_BITS;
}

typedef struct scan {
    const char *p, *end;
    int depth;
    const char *const *names; /* the members to note, at the top level only */
    size_t n_names;
    wsp_span_t *out;
    const char *const *objs; /* the object members to note, at the top level only */
    size_t n_objs;
    wsp_span_t *obj_out;
    uint8_t obj_seen[WSP_SCAN_OBJECTS]; /* how often each was named (stops at 2) */
} scan_t;

static void skip_ws(scan_t *sc)
{
    while (sc->p < sc->end && (*sc->p == ' ' || *sc->p == '\t' || *sc->p == '\n' || *sc->p == '\r'))
        sc->p++;
}

/* A string at sc->p (the opening quote); *raw gets its contents, *escaped whether it has any. */
static bool scan_string(scan_t *sc, wsp_span_t *raw, bool *escaped)
{
    const char *start = ++sc->p;
    *escaped = false;
    for (;;) {
        /* The common case, base64 audio: a run of plain bytes, eight at a time while no byte is
         * a quote, a backslash or a control character (bit tricks from "Bit Twiddling Hacks"). */
        const char *q = sc->p;
        uint64_t w;
        while (sc->end - q >= (ptrdiff_t)sizeof(w)) {
            memcpy(&w, q, sizeof(w));
            if (has_less(w, 0x20) | has_less(w ^ (BYTES_ONE * '"'), 1) |
                has_less(w ^ (BYTES_ONE * '\\'), 1))
                break;
            q += sizeof(w);
        }
        while (q < sc->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
            q++;
        sc->p = q;
        if (q >= sc->end || (unsigned char)*q < 0x20)
            return false;
        if (*q == '"')
            break;
        *escaped = true; /* a backslash */
        if (q + 1 >= sc->end)
            return false;
        char e = q[1];
        if (e == 'u') {
            /* cJSON also checks surrogate pairs; rather than copy its rules, leave \u to it. */
            return false;
        } else if (strchr("\"\\/bfnrt", e) && e != '\0') {
            sc->p = q + 2;
        } else {
            return false;
        }
    }
    raw->p = start;
    raw->len = (size_t)(sc->p - start);
    sc->p++; /* the closing quote */
    return true;
}

static bool scan_digits(scan_t *sc)
{
    const char *q = sc->p;
    while (sc->p < sc->end && *sc->p >= '0' && *sc->p <= '9')
        sc->p++;
    return sc->p > q;
}

static bool scan_number(scan_t *sc)
{
    if (sc->p < sc->end && *sc->p == '-')
        sc->p++;
    if (sc->p < sc->end && *sc->p == '0')
        sc->p++;
    else if (sc->p >= sc->end || *sc->p < '1' || *sc->p > '9' || !scan_digits(sc))
        return false;
    if (sc->p < sc->end && *sc->p == '.') {
        sc->p++;
        if (!scan_digits(sc))
            return false;
    }
    if (sc->p < sc->end && (*sc->p == 'e' || *sc->p == 'E')) {
        sc->p++;
        if (sc->p < sc->end && (*sc->p == '+' || *sc->p == '-'))
            sc->p++;
        if (!scan_digits(sc))
            return false;
    }
    return true;
}

static bool scan_literal(scan_t *sc, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(sc->end - sc->p) < n || memcmp(sc->p, word, n) != 0)
        return false;
    sc->p += n;
    return true;
}

static bool scan_value(scan_t *sc, bool top);

/* An object at sc->p; top (the outermost) notes the members asked for. */
/*
 * After a member or element: a ',' (then more follow: 1) or the closing byte (done: 0);
 * anything else is not JSON (-1). Consumes what it reads and the space after a comma.
 */
static int scan_next(scan_t *sc, char close)
{
    skip_ws(sc);
    if (sc->p < sc->end && *sc->p == ',') {
        sc->p++;
        skip_ws(sc);
        return 1;
    }
    if (sc->p < sc->end && *sc->p == close) {
        sc->p++;
        return 0;
    }
    return -1;
}

static bool scan_object(scan_t *sc, bool top)
{
    sc->p++;
    skip_ws(sc);
    if (sc->p < sc->end && *sc->p == '}') {
        sc->p++;
        return true;
    }
    for (;;) {
        wsp_span_t key, val;
        bool esc;
        if (sc->p >= sc->end || *sc->p != '"' || !scan_string(sc, &key, &esc) || esc)
            return false; /* an escaped key could decode to "type": leave that to cJSON */
        skip_ws(sc);
        if (sc->p >= sc->end || *sc->p != ':')
            return false;
        sc->p++;
        skip_ws(sc);
        wsp_span_t *slot = NULL;
        for (size_t i = 0; top && i < sc->n_names; i++)
            if (strlen(sc->names[i]) == key.len && memcmp(key.p, sc->names[i], key.len) == 0)
                slot = &sc->out[i];
        size_t obj = sc->n_objs;
        for (size_t j = 0; top && j < sc->n_objs; j++)
            if (strlen(sc->objs[j]) == key.len && memcmp(key.p, sc->objs[j], key.len) == 0)
                obj = j;
        if (obj < sc->n_objs) {
            /* The first object of that name, unless the name comes again. */
            const char *start = sc->p;
            bool first = sc->obj_seen[obj]++ == 0;
            if (sc->obj_seen[obj] > 2)
                sc->obj_seen[obj] = 2;
            if (!scan_value(sc, false))
                return false;
            sc->obj_out[obj] = first && *start == '{'
                                   ? (wsp_span_t){start, (size_t)(sc->p - start)}
                                   : (wsp_span_t){NULL, 0};
        } else if (slot && sc->p < sc->end && *sc->p == '"') {
            if (!scan_string(sc, &val, &esc))
                return false;
            if (slot->p == NULL && !slot->len) {
                if (esc)
                    return false; /* cJSON would decode it: let it */
                *slot = val;      /* the first member of that name is the one cJSON finds */
            }
        } else {
            if (slot && slot->p == NULL && !slot->len)
                slot->len = 1; /* first one is not a plain string: the later ones do not count */
            if (!scan_value(sc, false))
                return false;
        }
        int more = scan_next(sc, '}');
        if (more <= 0)
            return more == 0;
    }
}

static bool scan_array(scan_t *sc)
{
    sc->p++;
    skip_ws(sc);
    if (sc->p < sc->end && *sc->p == ']') {
        sc->p++;
        return true;
    }
    for (;;) {
        if (!scan_value(sc, false))
            return false;
        int more = scan_next(sc, ']');
        if (more <= 0)
            return more == 0;
    }
}

static bool scan_value(scan_t *sc, bool top)
{
    if (sc->p >= sc->end)
        return false;
    wsp_span_t s;
    bool esc, ok;
    switch (*sc->p) {
    case '{':
    case '[':
        if (++sc->depth > WSP_SCAN_DEPTH)
            return false;
        ok = *sc->p == '{' ? scan_object(sc, top) : scan_array(sc);
        sc->depth--;
        return ok;
    case '"':
        return scan_string(sc, &s, &esc);
    case 't':
        return scan_literal(sc, "true");
    case 'f':
        return scan_literal(sc, "false");
    case 'n':
        return scan_literal(sc, "null");
    default:
        return scan_number(sc);
    }
}

bool wsp_scan_event(const char *s, size_t len, const char *const *names, size_t n, wsp_span_t *out)
{
    return wsp_scan_event_objs(s, len, names, n, out, NULL, 0, NULL);
}

bool wsp_scan_event_objs(const char *s, size_t len, const char *const *names, size_t n,
                         wsp_span_t *out, const char *const *objs, size_t n_objs,
                         wsp_span_t *obj_out)
{
    if (n > WSP_SCAN_MEMBERS || n_objs > WSP_SCAN_OBJECTS)
        return false;
    memset(out, 0, n * sizeof(*out));
    if (n_objs)
        memset(obj_out, 0, n_objs * sizeof(*obj_out));
    scan_t sc = {s, s + len, 0, names, n, out, objs, n_objs, obj_out, {0}};
    skip_ws(&sc);
    if (sc.p >= sc.end || *sc.p != '{' || !scan_value(&sc, true))
        return false;
    skip_ws(&sc);
    if (sc.p != sc.end)
        return false;
    /* len 1 with p NULL marked "present but not a plain string": report it as absent. */
    for (size_t i = 0; i < n; i++)
        if (out[i].p == NULL)
            out[i].len = 0;
    return true;
}

bool wsp_scan_audio_delta(const char *s, size_t len, wsp_span_t *delta, wsp_span_t *item)
{
    static const char *const names[] = {"type", "delta", "item_id"};
    wsp_span_t sp[3];
    if (!wsp_scan_event(s, len, names, 3, sp) || sp[1].p == NULL ||
        !(wsp_span_is(sp[0], "response.output_audio.delta") ||
          wsp_span_is(sp[0], "response.audio.delta")))
        return false;
    *delta = sp[1];
    *item = sp[2];
    return true;
}

cJSON *wsp_scan_tree(const char *const *names, const wsp_span_t *spans, size_t n)
{
    cJSON *obj = cJSON_CreateObject();
    for (size_t i = 0; i < n; i++) {
        if (spans[i].p == NULL)
            continue;
        /* One copy: the string's bytes straight into cJSON's own allocation. */
        cJSON *item = cJSON_CreateString("");
        cJSON_free(item->valuestring);
        item->valuestring = cJSON_malloc(spans[i].len + 1);
        memcpy(item->valuestring, spans[i].p, spans[i].len);
        item->valuestring[spans[i].len] = '\0';
        cJSON_AddItemToObject(obj, names[i], item);
    }
    return obj;
}

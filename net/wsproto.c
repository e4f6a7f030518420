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
    *json_out = NULL;
    if (len == 4 && memcmp(s, "ping", 4) == 0)
        return WSP_PING_TEXT;
    cJSON *j = cJSON_ParseWithLength(s, len);
    if (j == NULL)
        return WSP_INVALID_JSON;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
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

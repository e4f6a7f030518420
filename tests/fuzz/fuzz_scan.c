/*
 * libFuzzer target: wsp_scan_event(), the fast look at upstream events, against cJSON. Whenever
 * the scanner accepts a text, cJSON must parse it to an object whose members asked for are
 * strings exactly when the scanner found them, with the same bytes; and an object member the
 * scanner notes (wsp_scan_event_objs) is the object cJSON finds under that name, which parses
 * from the span alone to the same tree.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/wsproto.h"

static void same(const cJSON *j, const char *name, wsp_span_t s)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    if (!cJSON_IsString(v) != !s.p)
        abort();
    if (s.p && (strlen(v->valuestring) != s.len || memcmp(v->valuestring, s.p, s.len) != 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"type", "delta", "item_id", "audio"};
    wsp_span_t f[4];
    if (!wsp_scan_event((const char *)data, size, names, 4, f))
        return 0;
    cJSON *j = cJSON_ParseWithLength((const char *)data, size);
    if (!cJSON_IsObject(j))
        abort();
    for (int i = 0; i < 4; i++)
        same(j, names[i], f[i]);
    cJSON_Delete(j);
    static const char *const objs[] = {"media", "mark"};
    wsp_span_t o[2];
    if (!wsp_scan_event_objs((const char *)data, size, names, 4, f, objs, 2, o))
        abort(); /* the same text, the same verdict */
    j = cJSON_ParseWithLength((const char *)data, size);
    for (int i = 0; i < 2; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, objs[i]);
        if (o[i].p == NULL)
            continue;
        /* Compared as printed: cJSON_Compare() looks members up by name, so it cannot tell two
         * objects with a repeated key apart. */
        cJSON *alone = cJSON_ParseWithLength(o[i].p, o[i].len);
        char *a = cJSON_PrintUnformatted(v), *b = cJSON_PrintUnformatted(alone);
        if (!cJSON_IsObject(v) || a == NULL || b == NULL || strcmp(a, b) != 0)
            abort();
        cJSON_free(a);
        cJSON_free(b);
        cJSON_Delete(alone);
    }
    cJSON_Delete(j);
    return 0;
}

/*
 * libFuzzer target: wsp_scan_event(), the fast look at upstream events, against cJSON. Whenever
 * the scanner accepts a text, cJSON must parse it to an object whose "type", "delta" and
 * "item_id" are strings exactly when the scanner found them, with the same bytes.
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
    wsp_fields_t f;
    if (!wsp_scan_event((const char *)data, size, &f))
        return 0;
    cJSON *j = cJSON_ParseWithLength((const char *)data, size);
    if (!cJSON_IsObject(j))
        abort();
    same(j, "type", f.type);
    same(j, "delta", f.delta);
    same(j, "item_id", f.item_id);
    cJSON_Delete(j);
    return 0;
}

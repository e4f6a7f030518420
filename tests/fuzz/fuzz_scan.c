/*
 * libFuzzer target: wsp_scan_event(), the fast look at upstream events, against cJSON. Whenever
 * the scanner accepts a text, cJSON must parse it to an object whose members asked for are
 * strings exactly when the scanner found them, with the same bytes.
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
    return 0;
}

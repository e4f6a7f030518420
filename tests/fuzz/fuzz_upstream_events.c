/*
 * libFuzzer target: events from the upstream Realtime API (SPEC 6) through the parsing the
 * upstream and session actors do: JSON, the relay name table, and audio delta decoding (within
 * the bound b64_decoded_max() promises).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agents/voice/events.h"
#include "audio/b64.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *ev = cJSON_ParseWithLength((const char *)data, size);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "type");
    if (cJSON_IsObject(ev) && cJSON_IsString(type)) {
        if (events_is_audio_delta(type->valuestring)) {
            const cJSON *d = cJSON_GetObjectItemCaseSensitive(ev, "delta");
            if (cJSON_IsString(d)) {
                size_t len = strlen(d->valuestring), cap = b64_decoded_max(len);
                uint8_t *out = malloc(cap ? cap : 1);
                ssize_t n = b64_decode(d->valuestring, len, out);
                if (n > (ssize_t)cap)
                    abort(); /* decoded past the bound it promised */
                free(out);
            }
        }
        (void)events_relay_name(type->valuestring);
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(ev, "error");
        (void)cJSON_GetObjectItemCaseSensitive(err, "code");
    }
    cJSON_Delete(ev);
    return 0;
}

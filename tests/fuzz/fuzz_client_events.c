/*
 * libFuzzer target: client text frames on /ws (SPEC 5, 5.1) through the same code the network
 * thread and the session run: wsp_classify() for every endpoint's type list, then the
 * conversation.item.create check. Crashes, leaks and UB are findings (built with ASan+UBSan).
 */
#include <stdint.h>
#include <string.h>

#include "agents/voice/events.h"
#include "net/wsproto.h"

static const char *const voice_types[] = {
    "input_audio_buffer.commit", "input_audio_buffer.clear", "response.cancel",
    "response.create",           "conversation.item.create", "audio.played",
    "command.ack",               NULL,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *j = NULL;
    wsp_kind_t k = wsp_classify((const char *)data, size, voice_types, &j);
    if (k == WSP_EVENT) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
        if (strcmp(type->valuestring, "conversation.item.create") == 0)
            (void)events_check_client_item(j, 4096);
    }
    cJSON_Delete(j);
    return 0;
}

#include "agents/voice/events.h"

#include <string.h>

#include "audio/b64.h"
#include "base/util.h"

/* Upstream events the client sees, with the GA name to use (beta aliases renamed). */
static const struct {
    const char *from;
    const char *to;
} relayed[] = {
    {"input_audio_buffer.speech_started", NULL},
    {"input_audio_buffer.speech_stopped", NULL},
    {"input_audio_buffer.committed", NULL},
    {"conversation.item.input_audio_transcription.delta", NULL},
    {"conversation.item.input_audio_transcription.completed", NULL},
    {"conversation.item.input_audio_transcription.failed", NULL},
    {"response.created", NULL},
    {"response.output_item.added", NULL},
    {"response.output_item.done", NULL},
    {"response.output_audio_transcript.delta", NULL},
    {"response.output_audio_transcript.done", NULL},
    {"response.audio_transcript.delta", "response.output_audio_transcript.delta"},
    {"response.audio_transcript.done", "response.output_audio_transcript.done"},
    {"response.output_text.delta", NULL},
    {"response.output_text.done", NULL},
    {"response.text.delta", "response.output_text.delta"},
    {"response.text.done", "response.output_text.done"},
    {"conversation.item.truncated", NULL},
    {"response.done", NULL},
};

const char *events_relay_name(const char *type)
{
    for (size_t i = 0; i < sizeof(relayed) / sizeof(relayed[0]); i++)
        if (strcmp(type, relayed[i].from) == 0)
            return relayed[i].to ? relayed[i].to : relayed[i].from;
    return NULL;
}

int events_is_audio_delta(const char *type)
{
    return strcmp(type, "response.output_audio.delta") == 0 ||
           strcmp(type, "response.audio.delta") == 0;
}

int events_check_client_item(const cJSON *ev, size_t max_chars)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(ev, "item");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(item, "type");
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(item, "role");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(item, "content");
    const cJSON *part = cJSON_IsArray(content) ? cJSON_GetArrayItem(content, 0) : NULL;
    const cJSON *ptype = cJSON_GetObjectItemCaseSensitive(part, "type");
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "message") != 0 ||
        !cJSON_IsString(role) || strcmp(role->valuestring, "user") != 0 ||
        !cJSON_IsArray(content) || cJSON_GetArraySize(content) != 1 || !cJSON_IsString(ptype) ||
        strcmp(ptype->valuestring, "input_text") != 0 || !cJSON_IsString(text))
        return EVENTS_ITEM_INVALID;
    if (str_utf8_chars(text->valuestring) > max_chars)
        return EVENTS_ITEM_TOO_LONG;
    return EVENTS_ITEM_OK;
}

cJSON *events_item_create(bool user, const char *text)
{
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "type", "conversation.item.create");
    cJSON *item = cJSON_AddObjectToObject(ev, "item");
    cJSON_AddStringToObject(item, "type", "message");
    cJSON_AddStringToObject(item, "role", user ? "user" : "assistant");
    cJSON *part = cJSON_CreateObject();
    cJSON_AddStringToObject(part, "type", user ? "input_text" : "output_text");
    cJSON_AddStringToObject(part, "text", text ? text : "");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(item, "content"), part);
    return ev;
}

cJSON *events_client_upstream(const cJSON *ev)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "type");
    if (strcmp(type->valuestring, "conversation.item.create") == 0) {
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(ev, "item");
        const cJSON *part =
            cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(item, "content"), 0);
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        return events_item_create(true, text->valuestring);
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "type", type->valuestring);
    return out;
}

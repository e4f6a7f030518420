#include "net/wsproto.h"

#include <string.h>

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

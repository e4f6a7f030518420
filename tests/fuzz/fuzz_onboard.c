/*
 * libFuzzer target: onboard_tenant_json() (agents/onboard/onboard.c), the Chat Completions answer
 * of the onboarding request turned into a tenant file. The first byte picks what the rest is:
 * even, the model's message content (wrapped here in a completion, so that the schema check,
 * the conversion and the config parser are reached); odd, the whole response body. The error
 * buffer's size comes from the input's length, down to 1 byte.
 *
 * On failure: -EINVAL, no output, a NUL-terminated message (non-empty when there is room). On
 * success: a JSON object ending in a newline, with the keys given and the empty tenant lists,
 * whose 2.2 part agentcfg_parse() accepts on its own.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agents/config/agentcfg.h"
#include "agents/onboard/onboard.h"

#define FUZZ_ONBOARD_ERR_MAX 512

static const onboard_keys_t keys = {
    .public_key = "pk_0123456789abcdef0123456789abcdef",
    .api_secret = "sk_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
};

/* {"choices":[{"message":{"role":"assistant","content":<text>}}]} (heap). */
static char *wrap(const char *text)
{
    cJSON *root = cJSON_CreateObject(), *choice = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "choices"), choice);
    cJSON *msg = cJSON_AddObjectToObject(choice, "message");
    cJSON_AddStringToObject(msg, "role", "assistant");
    cJSON_AddStringToObject(msg, "content", text);
    char *out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}

static void check(const char *out)
{
    size_t n = strlen(out);
    if (n == 0 || out[n - 1] != '\n')
        abort();
    cJSON *t = cJSON_Parse(out);
    const cJSON *pk = cJSON_GetObjectItemCaseSensitive(t, "publicKey");
    const cJSON *sk = cJSON_GetObjectItemCaseSensitive(t, "apiSecret");
    if (!cJSON_IsObject(t) || !cJSON_IsString(pk) || strcmp(pk->valuestring, keys.public_key) ||
        !cJSON_IsString(sk) || strcmp(sk->valuestring, keys.api_secret) ||
        cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(t, "allowedOrigins")) != 0 ||
        cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(t, "phoneNumbers")) != 0)
        abort();
    static const char *const tenant_keys[] = {"publicKey", "apiSecret", "allowedOrigins",
                                              "phoneNumbers"};
    for (size_t i = 0; i < sizeof(tenant_keys) / sizeof(tenant_keys[0]); i++)
        cJSON_DeleteItemFromObjectCaseSensitive(t, tenant_keys[i]);
    char *plain = cJSON_PrintUnformatted(t);
    char err[FUZZ_ONBOARD_ERR_MAX];
    agentcfg_t ac;
    if (agentcfg_parse(&ac, plain, strlen(plain), NULL, err, sizeof(err)) != 0)
        abort();
    agentcfg_free(&ac);
    free(plain);
    cJSON_Delete(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t errlen = size % FUZZ_ONBOARD_ERR_MAX + 1;
    char *err = malloc(errlen);
    char *text = malloc(size); /* the rest, NUL-terminated: cut at the first NUL in content mode */
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    char *body = data[0] % 2 == 0 ? wrap(text) : NULL;
    char *out = (char *)1;
    int rc = body ? onboard_tenant_json(body, strlen(body), &keys, "Source text.", &out, NULL, err,
                                        errlen)
                  : onboard_tenant_json(text, size - 1, &keys, NULL, &out, NULL, err, errlen);
    if (rc == 0) {
        check(out);
        free(out);
    } else if (rc != -EINVAL || out != NULL || memchr(err, '\0', errlen) == NULL ||
               (errlen > 1 && err[0] == '\0')) {
        abort();
    }
    free(body);
    free(text);
    free(err);
    return 0;
}

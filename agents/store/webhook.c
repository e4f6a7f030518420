/*
 * webhook: the post-call webhook's signature and retry policy (SPEC 9, 14). The store actor
 * sends and schedules; these are the pure parts, tested on their own.
 */
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/store/store_int.h"
#include "base/util.h"

#define SHA256_BYTES   32
#define HTTP_5XX_FIRST 500
#define HTTP_5XX_LAST  599

/* Delays before the 2nd, 3rd and 4th attempts (SPEC 14: "retries after 1, 2 and 4 s"). */
static const int64_t retry_delay_ms[WEBHOOK_ATTEMPTS - 1] = {1000, 2000, 4000};

void webhook_signature(const char *secret, int64_t t_s, const char *body, size_t len,
                       char out[WEBHOOK_SIG_VALUE_MAX])
{
    char t[24];
    int tl = snprintf(t, sizeof(t), "%lld.", (long long)t_s);
    /* "<t>.<body>" without copying the body: the MAC is fed the two pieces. */
    const char *key = secret ? secret : "";
    unsigned char mac[EVP_MAX_MD_SIZE];
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = m ? EVP_MAC_CTX_new(m) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    size_t outl = 0;
    if (ctx == NULL || EVP_MAC_init(ctx, (const unsigned char *)key, strlen(key), params) != 1 ||
        EVP_MAC_update(ctx, (const unsigned char *)t, (size_t)tl) != 1 ||
        EVP_MAC_update(ctx, (const unsigned char *)body, len) != 1 ||
        EVP_MAC_final(ctx, mac, &outl, sizeof(mac)) != 1 || outl != SHA256_BYTES)
        abort(); /* HMAC-SHA256 is always available in OpenSSL; failing means memory is gone */
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(m);
    int n = snprintf(out, WEBHOOK_SIG_VALUE_MAX, "t=%lld,v1=", (long long)t_s);
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < outl && n + 2 < WEBHOOK_SIG_VALUE_MAX; i++) {
        out[n++] = hex[mac[i] >> 4];
        out[n++] = hex[mac[i] & 0xf];
    }
    out[n] = '\0';
}

bool webhook_should_retry(int status)
{
    return status == 0 || (status >= HTTP_5XX_FIRST && status <= HTTP_5XX_LAST);
}

int64_t webhook_next_delay_ms(int status, int attempts_done)
{
    if (!webhook_should_retry(status) || attempts_done < 1 || attempts_done >= WEBHOOK_ATTEMPTS)
        return -1;
    return retry_delay_ms[attempts_done - 1];
}

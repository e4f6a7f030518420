/*
 * Tests of agents/jwtauth: HS256 tokens built here with OpenSSL's HMAC (independent of libjwt's
 * encoder), the jwt.io example as a known answer, and every way a token is refused: wrong
 * secret, tampered payload, alg "none" and other algorithms, no exp, exp not after now (no
 * leeway), no secret configured, garbage.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "agents/auth/jwtauth.h"
#include "base/sbuf.h"
#include "tests/runner.h"

#define NOW_S      1764633600LL /* 2025-12-02T00:00:00Z */
#define SECRET     "test-secret-0123456789"
#define HS256_HEAD "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define TOKEN_MAX  2048

static void b64url(sbuf_t *b, const unsigned char *p, size_t n)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        sbuf_putc(b, a[v >> 18 & 63]);
        sbuf_putc(b, a[v >> 12 & 63]);
        if (i + 1 < n)
            sbuf_putc(b, a[v >> 6 & 63]);
        if (i + 2 < n)
            sbuf_putc(b, a[v & 63]);
    }
}

/* header.payload.HMAC-SHA256(secret) into out; an empty secret leaves the signature empty. */
static void make_token(char *out, const char *head, const char *payload, const char *secret)
{
    sbuf_t b = SBUF_INIT;
    b64url(&b, (const unsigned char *)head, strlen(head));
    sbuf_putc(&b, '.');
    b64url(&b, (const unsigned char *)payload, strlen(payload));
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)b.data, b.len, mac,
         &mac_len);
    sbuf_putc(&b, '.');
    if (secret[0])
        b64url(&b, mac, mac_len);
    ASSERT_LT(b.len, TOKEN_MAX);
    memcpy(out, b.data, b.len + 1);
    sbuf_destroy(&b);
}

static void payload_with(char *out, size_t n, const char *sub, long long exp)
{
    snprintf(out, n, "{\"sub\":\"%s\",\"exp\":%lld}", sub, exp);
}

TEST(jwtauth_good_token_gives_sub)
{
    char tok[TOKEN_MAX], p[128], sub[JWTAUTH_SUB_MAX + 1];
    payload_with(p, sizeof(p), "user_42", NOW_S + 60);
    make_token(tok, HS256_HEAD, p, SECRET);
    ASSERT_EQ(jwtauth_verify(tok, SECRET, NOW_S, sub, sizeof(sub)), JWTAUTH_OK);
    ASSERT_STR_EQ(sub, "user_42");
    /* One second before exp is still good; sub may be left out by the caller. */
    ASSERT_EQ(jwtauth_verify(tok, SECRET, NOW_S + 59, NULL, 0), JWTAUTH_OK);
}

TEST(jwtauth_no_leeway_at_exp)
{
    char tok[TOKEN_MAX], p[128];
    payload_with(p, sizeof(p), "u", NOW_S);
    make_token(tok, HS256_HEAD, p, SECRET);
    ASSERT_EQ(jwtauth_verify(tok, SECRET, NOW_S, NULL, 0), JWTAUTH_EXPIRED);
    payload_with(p, sizeof(p), "u", NOW_S - 3600);
    make_token(tok, HS256_HEAD, p, SECRET);
    ASSERT_EQ(jwtauth_verify(tok, SECRET, NOW_S, NULL, 0), JWTAUTH_EXPIRED);
}

TEST(jwtauth_wrong_secret_and_tampering)
{
    char tok[TOKEN_MAX], p[128];
    payload_with(p, sizeof(p), "u", NOW_S + 60);
    make_token(tok, HS256_HEAD, p, "another-secret");
    ASSERT_EQ(jwtauth_verify(tok, SECRET, NOW_S, NULL, 0), JWTAUTH_MALFORMED);
    /* A payload swapped under a valid signature. */
    char good[TOKEN_MAX], evil[TOKEN_MAX], forged[2 * TOKEN_MAX];
    make_token(good, HS256_HEAD, p, SECRET);
    payload_with(p, sizeof(p), "admin", NOW_S + 60);
    make_token(evil, HS256_HEAD, p, SECRET);
    const char *sig = strrchr(good, '.');
    size_t body = (size_t)(strrchr(evil, '.') - evil);
    snprintf(forged, sizeof(forged), "%.*s%s", (int)body, evil, sig);
    ASSERT_EQ(jwtauth_verify(forged, SECRET, NOW_S, NULL, 0), JWTAUTH_MALFORMED);
}

TEST(jwtauth_refuses_other_algorithms)
{
    char tok[TOKEN_MAX], p[128];
    payload_with(p, sizeof(p), "u", NOW_S + 60);
    /* alg none, unsigned: must never be accepted because a key is configured. */
    make_token(tok, "{\"alg\":\"none\",\"typ\":\"JWT\"}", p, "");
    ASSERT_NE(jwtauth_verify(tok, SECRET, NOW_S, NULL, 0), JWTAUTH_OK);
    /* HS384 header with an HS256 signature: refused (either as a bad signature or algorithm). */
    make_token(tok, "{\"alg\":\"HS384\",\"typ\":\"JWT\"}", p, SECRET);
    ASSERT_NE(jwtauth_verify(tok, SECRET, NOW_S, NULL, 0), JWTAUTH_OK);
}

TEST(jwtauth_exp_required_and_numeric)
{
    char tok[TOKEN_MAX];
    make_token(tok, HS256_HEAD, "{\"sub\":\"u\"}", SECRET);
    ASSERT_EQ(jwtauth_verify(tok, SECRET, NOW_S, NULL, 0), JWTAUTH_NO_EXPIRY);
    make_token(tok, HS256_HEAD, "{\"sub\":\"u\",\"exp\":\"9999999999\"}", SECRET);
    ASSERT_EQ(jwtauth_verify(tok, SECRET, NOW_S, NULL, 0), JWTAUTH_NO_EXPIRY);
    /* A fractional NumericDate is allowed (RFC 7519 2). */
    make_token(tok, HS256_HEAD, "{\"exp\":1764633660.5}", SECRET);
    char sub[8];
    ASSERT_EQ(jwtauth_verify(tok, SECRET, NOW_S, sub, sizeof(sub)), JWTAUTH_OK);
    ASSERT_STR_EQ(sub, "");
}

TEST(jwtauth_known_answer_jwt_io)
{
    /* The jwt.io example: valid signature, but no exp, so refused for that reason only. */
    const char *tok = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6Ik"
                      "pvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQ"
                      "ssw5c";
    ASSERT_EQ(jwtauth_verify(tok, "your-256-bit-secret", NOW_S, NULL, 0), JWTAUTH_NO_EXPIRY);
    ASSERT_EQ(jwtauth_verify(tok, "not-the-secret", NOW_S, NULL, 0), JWTAUTH_MALFORMED);
}

TEST(jwtauth_no_secret_and_garbage)
{
    char tok[TOKEN_MAX], p[128];
    payload_with(p, sizeof(p), "u", NOW_S + 60);
    make_token(tok, HS256_HEAD, p, SECRET);
    ASSERT_EQ(jwtauth_verify(tok, NULL, NOW_S, NULL, 0), JWTAUTH_NO_SECRET);
    ASSERT_EQ(jwtauth_verify(tok, "", NOW_S, NULL, 0), JWTAUTH_NO_SECRET);
    static const char *const junk[] = {"", "ek_0123", "a.b.c", "....", "eyJ.eyJ.", "x"};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
        ASSERT_EQ(jwtauth_verify(junk[i], SECRET, NOW_S, NULL, 0), JWTAUTH_MALFORMED);
    ASSERT_EQ(jwtauth_verify(NULL, SECRET, NOW_S, NULL, 0), JWTAUTH_MALFORMED);
    ASSERT_STR_EQ(jwtauth_reason(JWTAUTH_EXPIRED), "the token has expired");
}

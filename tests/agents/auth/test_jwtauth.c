/*
 * Tests of agents/jwtauth: HS256 tokens built here with OpenSSL's HMAC (independent of libjwt's
 * encoder), the jwt.io example as a known answer, and every way a token is refused: wrong
 * secret, tampered payload, alg "none" and other algorithms, no exp, exp not after now (no
 * leeway), no secret configured, garbage. Then the tenant claim: the unverified peek that picks
 * the secret, and auth_jwt() verifying with the named tenant's jwtSecret or the global one.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/auth/auth.h"
#include "agents/auth/jwtauth.h"
#include "base/config.h"
#include "base/log.h"
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

TEST(jwtauth_claims_and_peek_at_the_tenant)
{
    char tok[TOKEN_MAX], named[JWTAUTH_TENANT_MAX + 1];
    make_token(tok, HS256_HEAD, "{\"sub\":\"u\",\"tenant\":\"acme\",\"exp\":1764633660}", SECRET);
    jwtauth_claims_t c;
    ASSERT_EQ(jwtauth_verify_claims(tok, SECRET, NOW_S, &c), JWTAUTH_OK);
    ASSERT_STR_EQ(c.sub, "u");
    ASSERT_STR_EQ(c.tenant, "acme");
    ASSERT(c.has_tenant);
    ASSERT_EQ(jwtauth_peek_tenant(tok, named, sizeof(named)), 1);
    ASSERT_STR_EQ(named, "acme");
    /* The peek verifies nothing: a wrong signature still shows the claim (to pick a secret). */
    make_token(tok, HS256_HEAD, "{\"tenant\":\"beta\",\"exp\":1764633660}", "not-the-secret");
    ASSERT_EQ(jwtauth_peek_tenant(tok, named, sizeof(named)), 1);
    ASSERT_STR_EQ(named, "beta");
    ASSERT_EQ(jwtauth_verify_claims(tok, SECRET, NOW_S, &c), JWTAUTH_MALFORMED);
    /* No claim; a claim that is not a string; not a JWT. */
    make_token(tok, HS256_HEAD, "{\"sub\":\"u\",\"exp\":1764633660}", SECRET);
    ASSERT_EQ(jwtauth_peek_tenant(tok, named, sizeof(named)), 0);
    ASSERT_EQ(jwtauth_verify_claims(tok, SECRET, NOW_S, &c), JWTAUTH_OK);
    ASSERT(!c.has_tenant);
    ASSERT_STR_EQ(c.tenant, "");
    make_token(tok, HS256_HEAD, "{\"tenant\":7,\"exp\":1764633660}", SECRET);
    ASSERT_EQ(jwtauth_peek_tenant(tok, named, sizeof(named)), -1);
    make_token(tok, HS256_HEAD, "[1,2]", SECRET);
    ASSERT_EQ(jwtauth_peek_tenant(tok, named, sizeof(named)), -1);
    static const char *const junk[] = {"", "a.b", "a.%%%.c", "x"};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
        ASSERT_EQ(jwtauth_peek_tenant(junk[i], named, sizeof(named)), -1);
    ASSERT_EQ(jwtauth_peek_tenant(NULL, named, sizeof(named)), -1);
}

/* ---- auth_jwt(): the tenant's secret (agents/auth/jwttenant.c) ---------------------------- */

#define GLOBAL_SECRET "global-jwt-secret-0123"
#define ACME_SECRET   "acme-jwt-secret-0123456"

/* A tenant directory with acme (its own jwtSecret) and beta (none), loaded; g_config with the
 * global secret. */
static char tdir[64];
static config_t jwt_cfg = {.jwt_secret = GLOBAL_SECRET};

static void load_two_tenants(void)
{
    ASSERT_EQ(sodium_init() < 0, 0);
    log_init(LOG_ERROR, LOG_FORMAT_TEXT);
    snprintf(tdir, sizeof(tdir), "/tmp/sb_jwt_XXXXXX");
    ASSERT(mkdtemp(tdir) != NULL);
    static const char *const files[][2] = {
        {"acme", "{\"company\":{\"name\":\"A\"},\"brief\":\"a\",\"publicKey\":"
                 "\"pk_0123456789abcdefghijkaaa\",\"apiSecret\":\"secret-0123456789-aaa\","
                 "\"jwtSecret\":\"" ACME_SECRET "\"}"},
        {"beta", "{\"company\":{\"name\":\"B\"},\"brief\":\"b\",\"publicKey\":"
                 "\"pk_0123456789abcdefghijkbbb\",\"apiSecret\":\"secret-0123456789-bbb\"}"},
    };
    for (size_t i = 0; i < 2; i++) {
        char path[128];
        snprintf(path, sizeof(path), "%s/%s.json", tdir, files[i][0]);
        FILE *f = fopen(path, "w");
        ASSERT(f != NULL);
        fputs(files[i][1], f);
        fclose(f);
    }
    char err[512];
    ASSERT_EQ(tenants_load(tdir, err, sizeof(err)), 0);
    g_config = &jwt_cfg;
}

static void unload(void)
{
    tenants_destroy();
    g_config = NULL;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tdir);
    ASSERT_EQ(system(cmd), 0);
}

/* auth_jwt() on a token of payload signed with secret: its status, and the tenant's id ("" when
 * none) in id. */
static jwtauth_status_t jwt_for(const char *payload, const char *secret, char *id, size_t n)
{
    char tok[TOKEN_MAX];
    make_token(tok, HS256_HEAD, payload, secret);
    jwtauth_claims_t c;
    tenant_t *t = NULL;
    jwtauth_status_t st = auth_jwt(tok, NOW_S, &c, &t);
    snprintf(id, n, "%s", t ? t->id : "");
    if (st == JWTAUTH_OK)
        ASSERT_STR_EQ(c.sub, "u");
    else
        ASSERT(t == NULL);
    tenant_unref(t);
    return st;
}

TEST(auth_jwt_verifies_with_the_named_tenants_secret)
{
    load_two_tenants();
    char id[64];
    const char *acme = "{\"sub\":\"u\",\"tenant\":\"acme\",\"exp\":1764633660}";
    const char *beta = "{\"sub\":\"u\",\"tenant\":\"beta\",\"exp\":1764633660}";
    ASSERT_EQ(jwt_for(acme, ACME_SECRET, id, sizeof(id)), JWTAUTH_OK);
    ASSERT_STR_EQ(id, "acme");
    /* acme has a secret of its own: the global one does not sign for it. */
    ASSERT_EQ(jwt_for(acme, GLOBAL_SECRET, id, sizeof(id)), JWTAUTH_MALFORMED);
    /* beta has none: the global one does, and acme's does not. */
    ASSERT_EQ(jwt_for(beta, GLOBAL_SECRET, id, sizeof(id)), JWTAUTH_OK);
    ASSERT_STR_EQ(id, "beta");
    ASSERT_EQ(jwt_for(beta, ACME_SECRET, id, sizeof(id)), JWTAUTH_MALFORMED);
    /* An unknown tenant, and no tenant with two tenants and none `default`. */
    ASSERT_EQ(jwt_for("{\"sub\":\"u\",\"tenant\":\"gamma\",\"exp\":1764633660}", GLOBAL_SECRET, id,
                      sizeof(id)),
              JWTAUTH_UNKNOWN_TENANT);
    ASSERT_EQ(jwt_for("{\"sub\":\"u\",\"exp\":1764633660}", GLOBAL_SECRET, id, sizeof(id)),
              JWTAUTH_UNKNOWN_TENANT);
    /* A duplicated claim the two readers could take differently is refused. */
    ASSERT_EQ(jwt_for("{\"sub\":\"u\",\"tenant\":\"beta\",\"tenant\":\"acme\",\"exp\":1764633660}",
                      GLOBAL_SECRET, id, sizeof(id)),
              JWTAUTH_MALFORMED);
    ASSERT_STR_EQ(jwtauth_reason(JWTAUTH_UNKNOWN_TENANT),
                  "the token names no tenant of this service");
    unload();
}

TEST(auth_jwt_without_a_claim_is_the_only_tenants)
{
    ASSERT_EQ(sodium_init() < 0, 0);
    log_init(LOG_ERROR, LOG_FORMAT_TEXT);
    char err[512], id[64];
    ASSERT_EQ(tenants_load(NULL, err, sizeof(err)), 0); /* the demo, as `default` */
    g_config = &jwt_cfg;
    ASSERT_EQ(jwt_for("{\"sub\":\"u\",\"exp\":1764633660}", GLOBAL_SECRET, id, sizeof(id)),
              JWTAUTH_OK);
    ASSERT_STR_EQ(id, "default");
    ASSERT_EQ(jwt_for("{\"sub\":\"u\",\"tenant\":\"default\",\"exp\":1764633660}", GLOBAL_SECRET,
                      id, sizeof(id)),
              JWTAUTH_OK);
    jwt_cfg.jwt_secret = NULL;
    ASSERT_EQ(jwt_for("{\"sub\":\"u\",\"exp\":1764633660}", GLOBAL_SECRET, id, sizeof(id)),
              JWTAUTH_NO_SECRET);
    jwt_cfg.jwt_secret = GLOBAL_SECRET;
    tenants_destroy();
    g_config = NULL;
}

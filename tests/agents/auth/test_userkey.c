/*
 * Tests of agents/auth/userkey: anonymous userIds, and userKeys checked against an HMAC
 * computed here with OpenSSL (independent of libsodium's): a key proves its own user only,
 * under its own server key only, and anything tampered or malformed is refused.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "agents/auth/userkey.h"
#include "tests/runner.h"

#define DOMAIN "switchboard chat user v1:"

static const uint8_t secret_a[USERKEY_SECRET_BYTES] = "0123456789abcdef0123456789abcdef";
static const uint8_t secret_b[USERKEY_SECRET_BYTES] = "fedcba9876543210fedcba9876543210";

/* "<user_id>.<hex HMAC-SHA256(secret, DOMAIN user_id)>" */
static void expected_key(const uint8_t *secret, const char *user_id, char out[USERKEY_LEN + 1])
{
    char msg[128];
    snprintf(msg, sizeof(msg), "%s%s", DOMAIN, user_id);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    ASSERT(HMAC(EVP_sha256(), secret, USERKEY_SECRET_BYTES, (const unsigned char *)msg,
                strlen(msg), mac, &len) != NULL);
    ASSERT_EQ(len, 32);
    int n = snprintf(out, USERKEY_LEN + 1, "%s.", user_id);
    for (unsigned i = 0; i < len; i++)
        n += snprintf(out + n, USERKEY_LEN + 1 - (size_t)n, "%02x", mac[i]);
}

TEST(userkey_anonymous_ids_are_random_and_well_formed)
{
    char a[USERKEY_ANON_LEN + 1], b[USERKEY_ANON_LEN + 1];
    userkey_new_anon(a);
    userkey_new_anon(b);
    ASSERT_EQ(strlen(a), 21);
    ASSERT(strncmp(a, "anon_", 5) == 0);
    ASSERT(userkey_is_anon(a) && userkey_is_anon(b));
    ASSERT(strcmp(a, b) != 0);
    ASSERT(!userkey_is_anon("alice"));
    ASSERT(!userkey_is_anon("anon_0123456789abcde"));   /* 15 hex */
    ASSERT(!userkey_is_anon("anon_0123456789abcdef0")); /* 17 hex */
    ASSERT(!userkey_is_anon("anon_0123456789ABCDEF"));
    ASSERT(!userkey_is_anon("anon_0123456789abcdeg"));
}

TEST(userkey_is_the_hmac_of_the_user_id)
{
    char key[USERKEY_LEN + 1], want[USERKEY_LEN + 1], who[USERKEY_ANON_LEN + 1] = "";
    const char *id = "anon_00112233aabbccdd";
    ASSERT_EQ(userkey_make(secret_a, id, key), 0);
    expected_key(secret_a, id, want);
    ASSERT_STR_EQ(key, want);
    ASSERT_EQ(strlen(key), USERKEY_LEN);
    ASSERT(userkey_check(secret_a, key, who));
    ASSERT_STR_EQ(who, id);
    /* Named users have no key. */
    ASSERT_EQ(userkey_make(secret_a, "alice", key), -EINVAL);
}

TEST(userkey_refuses_other_servers_tampering_and_garbage)
{
    char key[USERKEY_LEN + 1], bad[USERKEY_LEN + 2], who[USERKEY_ANON_LEN + 1] = "unchanged";
    ASSERT_EQ(userkey_make(secret_a, "anon_00112233aabbccdd", key), 0);
    ASSERT(!userkey_check(secret_b, key, who)); /* another server key (a new database) */
    /* Another user's id with this MAC: the MAC binds the id. */
    snprintf(bad, sizeof(bad), "anon_00112233aabbccde%s", key + USERKEY_ANON_LEN);
    ASSERT(!userkey_check(secret_a, bad, who));
    /* Every single flipped MAC digit. */
    for (size_t i = USERKEY_ANON_LEN + 1; i < USERKEY_LEN; i++) {
        memcpy(bad, key, sizeof(key));
        bad[i] = bad[i] == '0' ? '1' : '0';
        ASSERT(!userkey_check(secret_a, bad, who));
    }
    /* Upper-case hex, a wrong separator, short, long, empty, NULL. */
    memcpy(bad, key, sizeof(key));
    for (size_t i = USERKEY_ANON_LEN + 1; i < USERKEY_LEN; i++)
        if (bad[i] >= 'a' && bad[i] <= 'f')
            bad[i] = (char)(bad[i] - 'a' + 'A');
    if (strcmp(bad, key) != 0)
        ASSERT(!userkey_check(secret_a, bad, who));
    memcpy(bad, key, sizeof(key));
    bad[USERKEY_ANON_LEN] = ':';
    ASSERT(!userkey_check(secret_a, bad, who));
    memcpy(bad, key, sizeof(key));
    bad[USERKEY_LEN - 1] = '\0';
    ASSERT(!userkey_check(secret_a, bad, who));
    snprintf(bad, sizeof(bad), "%s0", key);
    ASSERT(!userkey_check(secret_a, bad, who));
    ASSERT(!userkey_check(secret_a, "", who));
    ASSERT(!userkey_check(secret_a, NULL, who));
    ASSERT_STR_EQ(who, "unchanged");
}

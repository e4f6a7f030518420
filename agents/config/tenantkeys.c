/*
 * The tenant and call keys of the agent config (tenantkeys.h). Rules:
 *  - publicKey: "pk_" then 24..128 of [A-Za-z0-9_-]; apiSecret and jwtSecret: 16..256 printable
 *    characters without spaces (a secret shorter than that is guessable);
 *  - allowedOrigins: "http(s)://host[:port]" each, no path; compared without case, stored
 * lowercase;
 *  - phoneNumbers and phone.transferTo: E.164 ("+" and 8..15 digits, the first not 0);
 *  - maxSessions: 1..1000000 (capped by SWITCHBOARD_MAX_SESSIONS when used);
 *  - postcall: enabled (default true), crm (an mcpServers alias), minUserTurns 0..1000 (default
 *    1), instructions (text).
 */
#include "agents/config/tenantkeys.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"

#define PUBLIC_KEY_PREFIX      "pk_"
#define PUBLIC_KEY_MIN_CHARS   24 /* after the prefix */
#define PUBLIC_KEY_MAX_CHARS   128
#define SECRET_MIN_CHARS       16
#define SECRET_MAX_CHARS       256
#define ORIGIN_MAX_CHARS       256
#define E164_MIN_DIGITS        8
#define E164_MAX_DIGITS        15
#define MAX_SESSIONS_MAX       1000000
#define MIN_USER_TURNS_MAX     1000
#define MIN_USER_TURNS_DEFAULT 1

static bool public_key_ok(const char *s)
{
    size_t n = strlen(s), pre = strlen(PUBLIC_KEY_PREFIX);
    return n >= pre + PUBLIC_KEY_MIN_CHARS && n <= pre + PUBLIC_KEY_MAX_CHARS &&
           strncmp(s, PUBLIC_KEY_PREFIX, pre) == 0 && str_is_id(s + pre, n - pre, 1, n);
}

static bool secret_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < SECRET_MIN_CHARS || n > SECRET_MAX_CHARS)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

/* "http(s)://host[:port]": a host of letters, digits, '-', '.', or a [v6] literal; no path. */
static bool origin_ok(const char *s)
{
    size_t p = strncasecmp(s, "http://", 7) == 0 ? 7 : strncasecmp(s, "https://", 8) == 0 ? 8 : 0;
    if (p == 0 || strlen(s) > ORIGIN_MAX_CHARS || s[p] == '\0')
        return false;
    const char *h = s + p, *port = NULL;
    if (*h == '[') {
        const char *close = strchr(h, ']');
        if (close == NULL || close == h + 1)
            return false;
        for (const char *c = h + 1; c < close; c++)
            if (!isxdigit((unsigned char)*c) && *c != ':' && *c != '.')
                return false;
        port = close + 1;
    } else {
        for (port = h; *port && *port != ':'; port++)
            if (!isalnum((unsigned char)*port) && *port != '-' && *port != '.')
                return false;
        if (port == h)
            return false;
    }
    if (*port == '\0')
        return true;
    if (*port != ':' || port[1] == '\0' || strlen(port + 1) > 5)
        return false;
    for (const char *c = port + 1; *c; c++)
        if (!isdigit((unsigned char)*c))
            return false;
    return atoi(port + 1) >= 1 && atoi(port + 1) <= 65535;
}

bool agentcfg_e164_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 + E164_MIN_DIGITS || n > 1 + E164_MAX_DIGITS || s[0] != '+' || s[1] == '0')
        return false;
    for (size_t i = 1; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* root.key: a whole number in min..max into *out; left alone when missing. */
static int get_int(cfgparse_t *p, const cJSON *obj, const char *key, int min, int max, int *out)
{
    const cJSON *j = cfgparse_get(obj, key);
    if (j == NULL)
        return 0;
    size_t saved = cfgparse_path_key(p, key);
    if (!cJSON_IsNumber(j))
        return cfgparse_fail(p, "expected a whole number %d..%d, got %s", min, max,
                             cfgparse_json_kind(j));
    if (j->valuedouble < min || j->valuedouble > max ||
        j->valuedouble != (double)(int)j->valuedouble)
        return cfgparse_fail(p, "expected a whole number %d..%d, got %g", min, max, j->valuedouble);
    *out = (int)j->valuedouble;
    cfgparse_path_pop(p, saved);
    return 0;
}

/* A list whose entries must differ (compared without case). */
static int no_repeats(cfgparse_t *p, const char *key, char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < i; k++) {
            if (strcasecmp(v[i], v[k]) == 0) {
                cfgparse_path_key(p, key);
                cfgparse_path_index(p, i);
                return cfgparse_fail(p, "\"%s\" is listed twice", v[i]);
            }
        }
    }
    return 0;
}

int tenantkeys_parse_access(cfgparse_t *p, const cJSON *root, agentcfg_t *ac)
{
    agent_access_t *a = &ac->access;
    int rc;

    if ((rc = cfgparse_get_string(p, root, "publicKey", false, public_key_ok,
                                  "\"pk_\" followed by 24..128 of [A-Za-z0-9_-]",
                                  &a->public_key)) != 0 ||
        (rc = cfgparse_get_string(p, root, "apiSecret", false, secret_ok,
                                  "a secret of 16..256 printable characters without spaces",
                                  &a->api_secret)) != 0 ||
        (rc = cfgparse_get_string(p, root, "jwtSecret", false, secret_ok,
                                  "a secret of 16..256 printable characters without spaces",
                                  &a->jwt_secret)) != 0 ||
        (rc = get_int(p, root, "maxSessions", 1, MAX_SESSIONS_MAX, &a->max_sessions)) != 0)
        return rc;
    if (cfgparse_get(root, "allowedOrigins") != NULL &&
        ((rc = cfgparse_strv(p, root, "allowedOrigins", origin_ok, "an array of origins",
                             "an origin such as \"https://www.example.com\" (scheme, host and "
                             "port, no path)",
                             &a->origins, &a->n_origins)) != 0 ||
         (rc = no_repeats(p, "allowedOrigins", a->origins, a->n_origins)) != 0))
        return rc;
    for (size_t i = 0; i < a->n_origins; i++)
        for (char *c = a->origins[i]; *c; c++)
            *c = (char)tolower((unsigned char)*c);
    if (cfgparse_get(root, "phoneNumbers") != NULL &&
        ((rc = cfgparse_strv(p, root, "phoneNumbers", agentcfg_e164_ok, "an array of numbers",
                             "an E.164 number such as \"+14155550123\"", &a->phone_numbers,
                             &a->n_phone_numbers)) != 0 ||
         (rc = no_repeats(p, "phoneNumbers", a->phone_numbers, a->n_phone_numbers)) != 0))
        return rc;
    return 0;
}

static int parse_phone(cfgparse_t *p, const cJSON *root, agentcfg_t *ac)
{
    static const char *const keys[] = {"transferTo", NULL};
    const cJSON *j = cfgparse_get(root, "phone");
    int rc;

    if (j == NULL)
        return 0;
    size_t saved = cfgparse_path_key(p, "phone");
    if (!cJSON_IsObject(j))
        return cfgparse_fail_type(p, j, "an object");
    if ((rc = cfgparse_check_keys(p, j, keys)) != 0 ||
        (rc = cfgparse_get_string(p, j, "transferTo", false, agentcfg_e164_ok,
                                  "an E.164 number such as \"+14155550123\"",
                                  &ac->phone.transfer_to)) != 0)
        return rc;
    cfgparse_path_pop(p, saved);
    return 0;
}

static int parse_postcall(cfgparse_t *p, const cJSON *root, agentcfg_t *ac)
{
    static const char *const keys[] = {"enabled", "crm", "minUserTurns", "instructions", NULL};
    const cJSON *j = cfgparse_get(root, "postcall"), *en;
    agent_postcall_t *pc = &ac->postcall;
    int rc;

    pc->enabled = true;
    pc->min_user_turns = MIN_USER_TURNS_DEFAULT;
    if (j == NULL)
        return 0;
    size_t saved = cfgparse_path_key(p, "postcall");
    if (!cJSON_IsObject(j))
        return cfgparse_fail_type(p, j, "an object");
    if ((rc = cfgparse_check_keys(p, j, keys)) != 0)
        return rc;
    if ((en = cfgparse_get(j, "enabled")) != NULL) {
        size_t at = cfgparse_path_key(p, "enabled");
        if (!cJSON_IsBool(en))
            return cfgparse_fail_type(p, en, "a boolean");
        pc->enabled = cJSON_IsTrue(en);
        cfgparse_path_pop(p, at);
    }
    if ((rc = cfgparse_get_string(p, j, "crm", false, cfgparse_nonempty_ok,
                                  "the alias of one of mcpServers", &pc->crm)) != 0 ||
        (rc = get_int(p, j, "minUserTurns", 0, MIN_USER_TURNS_MAX, &pc->min_user_turns)) != 0 ||
        (rc = cfgparse_get_string(p, j, "instructions", false, NULL, "a string",
                                  &pc->instructions)) != 0)
        return rc;
    if (pc->crm != NULL) {
        bool known = false;
        for (size_t i = 0; i < ac->n_mcp_servers && !known; i++)
            known = strcmp(ac->mcp_servers[i].alias, pc->crm) == 0;
        if (!known) {
            cfgparse_path_key(p, "crm");
            return cfgparse_fail(p, "\"%s\" is not one of mcpServers", pc->crm);
        }
    }
    cfgparse_path_pop(p, saved);
    return 0;
}

int tenantkeys_parse_calls(cfgparse_t *p, const cJSON *root, agentcfg_t *ac)
{
    int rc = parse_phone(p, root, ac);
    return rc != 0 ? rc : parse_postcall(p, root, ac);
}

void tenantkeys_free(agentcfg_t *ac)
{
    agent_access_t *a = &ac->access;
    free(a->public_key);
    if (a->api_secret)
        explicit_bzero(a->api_secret, strlen(a->api_secret));
    free(a->api_secret);
    if (a->jwt_secret)
        explicit_bzero(a->jwt_secret, strlen(a->jwt_secret));
    free(a->jwt_secret);
    cfgparse_strv_free(a->origins, a->n_origins);
    cfgparse_strv_free(a->phone_numbers, a->n_phone_numbers);
    free(ac->phone.transfer_to);
    free(ac->postcall.crm);
    free(ac->postcall.instructions);
}

/*
 * Service configuration from the environment (SPEC 2.1 and 14); see config.h.
 *
 * Every variable is described once, in SPEC order, in config_vars[]: parsing, defaults and
 * config_print() all walk that table. Defaults are written as text and go through the same
 * validation as a value from the environment, so a default can never be out of its own range.
 *
 * Choices the SPEC leaves open:
 *  - An empty value of a variable without a default (secrets, TLS files, trusted proxies, the
 *    config file, the webhook URL) counts as unset. An empty value of any other variable is an
 *    error, like any other value that does not parse.
 *  - Origins are stored lower-cased (scheme and host compare case-insensitively); "*" sets
 *    allow_any_origin and is not stored in allowed_origins.
 *  - Trusted proxies keep only the network bits: "10.1.2.3/8" is stored as 10.0.0.0/8.
 *  - OPENAI_BASE_URL loses trailing slashes so that callers can append "/chat/completions".
 *  - Secrets must not contain control characters (they end up in HTTP headers); the error
 *    message shows [redacted] instead of the value.
 */
#include "base/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/sbuf.h"
#include "base/util.h"

const config_t *g_config;

/* The ranges of SPEC 2.1. */
#define COUNT_MIN       1
#define COUNT_MAX       1000000
#define DURATION_S_MIN  1
#define DURATION_S_MAX  86400
#define DURATION_MS_MIN 100
#define DURATION_MS_MAX 600000
#define NET_THREADS_MAX 64
#define WORKERS_MAX     256
#define PORT_MAX        65535

/* Longest listen host name (DNS limit) and model name accepted. */
#define HOST_MAX_CHARS  253
#define MODEL_MAX_CHARS 128
/* How much of a bad value an error message echoes before cutting it with "...". */
#define ERR_VALUE_MAX_CHARS 120
/* Room for such a value quoted: every byte may become a 4-byte \xNN escape. */
#define QUOTED_MAX_BYTES (ERR_VALUE_MAX_CHARS * 4 + 16)
/* Longest text form of a CIDR: a full IPv6 address, '/', three digits. */
#define CIDR_TEXT_MAX_CHARS (INET6_ADDRSTRLEN + 4)
/* Byte offset of the IPv4 address inside an IPv4-mapped IPv6 address, and its prefix. */
#define V4_MAPPED_OFFSET 12
#define V4_MAPPED_PREFIX 96

typedef enum {
    VAR_HOST,        /* listen address: host name or IP literal */
    VAR_INT,         /* whole number in [min, max] */
    VAR_WORKERS,     /* VAR_INT whose default is the ncpu argument */
    VAR_ORIGINS,     /* comma list of origins or "*" */
    VAR_PROXIES,     /* comma list of CIDRs */
    VAR_MINT_AUTH,   /* word of mint_words */
    VAR_LOG_LEVEL,   /* word of level_words */
    VAR_LOG_FORMAT,  /* word of format_words */
    VAR_FILE,        /* path of a readable regular file */
    VAR_FILE_OR_DIR, /* a readable regular file or a directory (SWITCHBOARD_CONFIG, SPEC 16) */
    VAR_SECRET,      /* any text without control characters; never echoed */
    VAR_URL,         /* URL whose scheme is one of schemes */
    VAR_URL_NOSLASH, /* VAR_URL without trailing slashes */
    VAR_MODEL,       /* model name */
    VAR_PATH,        /* path created later by its user (the database) */
    VAR_REDIS_URL,   /* redis://[[user]:password@]host[:port][/db] or unix:///path (SPEC 13) */
    VAR_NODE_ID,     /* [A-Za-z0-9._:-]{1,64} */
    VAR_DB_URL,      /* postgres:// or postgresql:// (libpq's URI form; SPEC 13) */
} var_kind_t;

typedef struct config_var {
    const char *name;
    var_kind_t kind;
    size_t off;                 /* offset of the field in config_t (int or char *) */
    const char *def;            /* default as text; NULL = unset */
    long min, max;              /* VAR_INT */
    const char *const *schemes; /* VAR_URL: accepted schemes, NULL-terminated */
} config_var_t;

/* Indexed by the enum values of config.h and log.h. */
static const char *const mint_words[] = {"open", "secret", NULL};
static const char *const level_words[] = {"error", "warn", "info", "debug", NULL};
static const char *const format_words[] = {"text", "json", NULL};

static const char *const ws_schemes[] = {"ws", "wss", NULL};
static const char *const http_schemes[] = {"http", "https", NULL};

/* Initializers of config_vars[] (clang-format would spread each one over three lines). */
/* clang-format off */
#define FIELD(f) offsetof(config_t, f)
#define INT_VAR(name, f, def, lo, hi) {name, VAR_INT, FIELD(f), def, lo, hi, NULL}
#define COUNT_VAR(name, f, def) INT_VAR(name, f, def, COUNT_MIN, COUNT_MAX)
#define SECS_VAR(name, f, def) INT_VAR(name, f, def, DURATION_S_MIN, DURATION_S_MAX)
#define MS_VAR(name, f, def) INT_VAR(name, f, def, DURATION_MS_MIN, DURATION_MS_MAX)
#define STR_VAR(name, kind, f, def) {name, kind, FIELD(f), def, 0, 0, NULL}
#define URL_VAR(name, kind, f, def, schemes) {name, kind, FIELD(f), def, 0, 0, schemes}
/* clang-format on */

/* SPEC 2.1, in its order; config_print() prints in this order too. */
static const config_var_t config_vars[] = {
    STR_VAR("SWITCHBOARD_HOST", VAR_HOST, host, "127.0.0.1"),
    INT_VAR("SWITCHBOARD_PORT", port, "8080", 0, PORT_MAX),
    INT_VAR("SWITCHBOARD_NET_THREADS", net_threads, "1", 1, NET_THREADS_MAX),
    {"SWITCHBOARD_WORKERS", VAR_WORKERS, FIELD(workers), NULL, 1, WORKERS_MAX, NULL},
    COUNT_VAR("SWITCHBOARD_MAX_SESSIONS", max_sessions, "100"),
    COUNT_VAR("SWITCHBOARD_MAX_ACTORS", max_actors, "100000"),
    COUNT_VAR("SWITCHBOARD_MAILBOX_CAP", mailbox_cap, "1024"),
    SECS_VAR("SWITCHBOARD_TOKEN_TTL_S", token_ttl_s, "60"),
    SECS_VAR("SWITCHBOARD_SESSION_IDLE_S", session_idle_s, "300"),
    SECS_VAR("SWITCHBOARD_SESSION_MAX_S", session_max_s, "7200"),
    STR_VAR("SWITCHBOARD_ALLOWED_ORIGINS", VAR_ORIGINS, allowed_origins,
            "http://127.0.0.1:8080,http://localhost:8080"),
    COUNT_VAR("SWITCHBOARD_MAX_CONTROL_BYTES", max_control_bytes, "10240"),
    COUNT_VAR("SWITCHBOARD_MAX_AUDIO_BYTES", max_audio_bytes, "102400"),
    COUNT_VAR("SWITCHBOARD_SESSIONS_PER_MIN", sessions_per_min, "30"),
    COUNT_VAR("SWITCHBOARD_SESSIONS_PER_IP", sessions_per_ip, "10"),
    COUNT_VAR("SWITCHBOARD_MAX_CONNECTIONS", max_connections, "10000"),
    COUNT_VAR("SWITCHBOARD_CONNECTIONS_PER_IP", connections_per_ip, "100"),
    STR_VAR("SWITCHBOARD_MINT_AUTH", VAR_MINT_AUTH, mint_auth, "open"),
    STR_VAR("SWITCHBOARD_TRUSTED_PROXIES", VAR_PROXIES, trusted_proxies, NULL),
    STR_VAR("SWITCHBOARD_TLS_CERT", VAR_FILE, tls_cert, NULL),
    STR_VAR("SWITCHBOARD_TLS_KEY", VAR_FILE, tls_key, NULL),
    COUNT_VAR("SWITCHBOARD_REPLAY_ITEMS", replay_items, "50"),
    COUNT_VAR("SWITCHBOARD_RETENTION_DAYS", retention_days, "30"),
    STR_VAR("OPENAI_API_KEY", VAR_SECRET, openai_api_key, NULL),
    URL_VAR("SWITCHBOARD_REALTIME_URL", VAR_URL, realtime_url, "wss://api.openai.com/v1/realtime",
            ws_schemes),
    STR_VAR("SWITCHBOARD_REALTIME_MODEL", VAR_MODEL, realtime_model, "gpt-realtime"),
    URL_VAR("SWITCHBOARD_OPENAI_BASE_URL", VAR_URL_NOSLASH, openai_base_url,
            "https://api.openai.com/v1", http_schemes),
    STR_VAR("SWITCHBOARD_SUPERVISOR_MODEL", VAR_MODEL, supervisor_model, "gpt-4o-mini"),
    COUNT_VAR("SWITCHBOARD_SUPERVISOR_MAX_ITERATIONS", supervisor_max_iterations, "10"),
    COUNT_VAR("SWITCHBOARD_MAX_SUPERVISOR_RUNS", max_supervisor_runs, "64"),
    COUNT_VAR("SWITCHBOARD_CHAT_RUNS_PER_MIN", chat_runs_per_min, "20"),
    MS_VAR("SWITCHBOARD_TOOL_TIMEOUT_MS", tool_timeout_ms, "15000"),
    MS_VAR("SWITCHBOARD_MCP_CALL_TIMEOUT_MS", mcp_call_timeout_ms, "30000"),
    /* Not in SPEC 2.1: SPEC 15 fixes 30 s; tests shorten it. */
    MS_VAR("SWITCHBOARD_POSTCALL_RETRY_MS", postcall_retry_ms, "30000"),
    SECS_VAR("SWITCHBOARD_UPSTREAM_RECYCLE_S", upstream_recycle_s, "3300"),
    STR_VAR("SWITCHBOARD_CONFIG", VAR_FILE_OR_DIR, config_path, NULL),
    STR_VAR("SWITCHBOARD_DB", VAR_PATH, db_path, "var/switchboard.db"),
    STR_VAR("SWITCHBOARD_API_SECRET", VAR_SECRET, api_secret, NULL),
    STR_VAR("SWITCHBOARD_JWT_SECRET", VAR_SECRET, jwt_secret, NULL),
    URL_VAR("SWITCHBOARD_POSTCALL_WEBHOOK_URL", VAR_URL, postcall_webhook_url, NULL, http_schemes),
    STR_VAR("SWITCHBOARD_LOG_LEVEL", VAR_LOG_LEVEL, log_level, "info"),
    STR_VAR("SWITCHBOARD_LOG_FORMAT", VAR_LOG_FORMAT, log_format, "text"),
    URL_VAR("SWITCHBOARD_PUBLIC_URL", VAR_URL_NOSLASH, public_url, NULL, http_schemes),
    STR_VAR("SWITCHBOARD_TWILIO_AUTH_TOKEN", VAR_SECRET, twilio_auth_token, NULL),
    STR_VAR("SWITCHBOARD_TWILIO_ACCOUNT_SID", VAR_SECRET, twilio_account_sid, NULL),
    URL_VAR("SWITCHBOARD_TWILIO_API_URL", VAR_URL_NOSLASH, twilio_api_url, "https://api.twilio.com",
            http_schemes),
    STR_VAR("SWITCHBOARD_REDIS_URL", VAR_REDIS_URL, redis_url, NULL),
    STR_VAR("SWITCHBOARD_NODE_ID", VAR_NODE_ID, node_id, NULL),
    STR_VAR("SWITCHBOARD_DATABASE_URL", VAR_DB_URL, database_url, NULL),
};

static int *var_int(config_t *c, const config_var_t *v)
{
    return (int *)((char *)c + v->off);
}

static char **var_str(config_t *c, const config_var_t *v)
{
    return (char **)((char *)c + v->off);
}

static char *const *var_cstr(const config_t *c, const config_var_t *v)
{
    return (char *const *)((const char *)c + v->off);
}

/*
 * Writes s into out (of size outlen) the way an error message shows a value: double quotes,
 * backslash escapes for quotes, backslashes and control bytes, cut after ERR_VALUE_MAX_CHARS.
 */
static void quote_value(const char *s, size_t len, char *out, size_t outlen)
{
    size_t o = 0;
    char tmp[8];

    if (outlen < sizeof(tmp) * 2) { /* never with the callers' buffers */
        if (outlen > 0)
            out[0] = '\0';
        return;
    }
    out[o++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (i == ERR_VALUE_MAX_CHARS) {
            snprintf(tmp, sizeof(tmp), "...");
        } else if (ch == '"' || ch == '\\') {
            snprintf(tmp, sizeof(tmp), "\\%c", ch);
        } else if (ch < 0x20 || ch == 0x7f) {
            snprintf(tmp, sizeof(tmp), "\\x%02x", ch);
        } else {
            tmp[0] = (char)ch;
            tmp[1] = '\0';
        }
        size_t n = strlen(tmp);
        if (o + n + 2 > outlen)
            break;
        memcpy(out + o, tmp, n);
        o += n;
        if (i == ERR_VALUE_MAX_CHARS)
            break;
    }
    out[o++] = '"';
    out[o] = '\0';
}

/*
 * Writes `invalid NAME="value": <reason>` into err (value shown as [redacted] for secrets) and
 * returns -EINVAL, so that callers can `return config_fail(...)`.
 */
static int config_fail(char *err, size_t errlen, const config_var_t *v, const char *value,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int config_fail(char *err, size_t errlen, const config_var_t *v, const char *value,
                       const char *fmt, ...)
{
    char shown[QUOTED_MAX_BYTES];
    char reason[QUOTED_MAX_BYTES + 128];
    va_list ap;

    if (v->kind == VAR_SECRET)
        str_copy(shown, "[redacted]", sizeof(shown));
    else
        quote_value(value, strlen(value), shown, sizeof(shown));
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (errlen > 0)
        snprintf(err, errlen, "invalid %s=%s: %s", v->name, shown, reason);
    return -EINVAL;
}

/* Parses a whole decimal number (digits only: no sign, space or point) in [min, max]. */
static bool parse_whole(const char *s, size_t len, long min, long max, long *out)
{
    long n = 0;

    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        n = n * 10 + (s[i] - '0');
        if (n > max) /* also stops the accumulation long before it could overflow */
            return false;
    }
    if (n < min)
        return false;
    *out = n;
    return true;
}

/* Index of s in the NULL-terminated words, or -1. */
static int word_index(const char *s, const char *const *words)
{
    for (int i = 0; words[i] != NULL; i++)
        if (strcmp(s, words[i]) == 0)
            return i;
    return -1;
}

/* "a|b|c" for the error message about an unknown word. */
static void words_join(const char *const *words, char *out, size_t outlen)
{
    size_t o = 0;

    out[0] = '\0';
    for (int i = 0; words[i] != NULL && o < outlen; i++)
        o += (size_t)snprintf(out + o, outlen - o, "%s%s", i ? "|" : "", words[i]);
}

static bool has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

static bool is_alnum(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

/* A listen address: a host name or an IPv4/IPv6 literal, without brackets. */
static bool host_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > HOST_MAX_CHARS)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '.' && s[i] != '-' && s[i] != ':')
            return false;
    return true;
}

static bool model_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > MODEL_MAX_CHARS)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '.' && s[i] != '-' && s[i] != '_' && s[i] != ':')
            return false;
    return true;
}

/*
 * Checks the authority of a URL or origin, s[0..len): host[:port], host a name or [IPv6].
 * Returns NULL when it is fine, else what is wrong.
 */
static const char *authority_check(const char *s, size_t len)
{
    size_t i = 0;
    long port;

    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        char buf[INET6_ADDRSTRLEN];
        struct in6_addr a6;
        size_t alen = close ? (size_t)(close - s) - 1 : 0;
        if (close == NULL || alen == 0 || alen >= sizeof(buf))
            return "the host is not a valid [IPv6] address";
        memcpy(buf, s + 1, alen);
        buf[alen] = '\0';
        if (inet_pton(AF_INET6, buf, &a6) != 1)
            return "the host is not a valid [IPv6] address";
        i = alen + 2;
    } else {
        while (i < len && (is_alnum(s[i]) || s[i] == '.' || s[i] == '-' || s[i] == '_'))
            i++;
        if (i == 0)
            return "the host is missing or has characters a host cannot have";
    }
    if (i == len)
        return NULL;
    if (s[i] != ':')
        return "the host has characters a host cannot have";
    if (!parse_whole(s + i + 1, len - i - 1, 1, PORT_MAX, &port))
        return "the port is not a whole number in 1..65535";
    return NULL;
}

/* Length of the "scheme://" prefix of s when the scheme is one of schemes, else 0. */
static size_t scheme_len(const char *s, size_t len, const char *const *schemes)
{
    for (int i = 0; schemes[i] != NULL; i++) {
        size_t n = strlen(schemes[i]);
        if (len > n + 3 && strncasecmp(s, schemes[i], n) == 0 && memcmp(s + n, "://", 3) == 0)
            return n + 3;
    }
    return 0;
}

/* A URL scheme://host[:port][/path][?query]; returns NULL when fine, else what is wrong. */
static const char *url_check(const char *s, const char *const *schemes)
{
    size_t len = strlen(s);
    size_t p = scheme_len(s, len, schemes);
    size_t auth_end;

    if (p == 0)
        return NULL; /* the caller reports the scheme, it knows the list */
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
            return "a URL cannot contain spaces or control characters";
    auth_end = p + strcspn(s + p, "/?#");
    if (memchr(s + p, '@', auth_end - p) != NULL)
        return "credentials in the URL are not allowed";
    return authority_check(s + p, auth_end - p);
}

/* An origin: http(s)://host[:port] and nothing after it. Returns NULL when fine. */
static const char *origin_check(const char *s, size_t len)
{
    size_t p = scheme_len(s, len, http_schemes);

    if (p == 0)
        return "must start with http:// or https://";
    if (strcspn(s + p, "/?#") < len - p)
        return "an origin has no path (scheme://host[:port] only)";
    return authority_check(s + p, len - p);
}

/*
 * Opens path the way its user will (read-only, not blocking on a FIFO) and checks that it is a
 * regular file. Returns NULL when readable, else why not.
 */
static const char *file_check(const char *path, bool dir_ok)
{
    struct stat st;
    const char *why = NULL;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

    if (fd < 0)
        return strerror(errno);
    if (fstat(fd, &st) != 0)
        why = strerror(errno);
    else if (!S_ISREG(st.st_mode) && !(dir_ok && S_ISDIR(st.st_mode)))
        why = dir_ok ? "not a regular file or a directory" : "not a regular file";
    close(fd);
    return why;
}

/* Calls fn on each comma-separated entry of s, spaces and tabs trimmed. Stops at a nonzero. */
typedef int (*entry_fn)(config_t *c, const config_var_t *v, const char *value, const char *e,
                        size_t n, char *err, size_t errlen);

static int for_each_entry(config_t *c, const config_var_t *v, const char *value, entry_fn fn,
                          char *err, size_t errlen)
{
    const char *s = value;

    for (;;) {
        size_t n = strcspn(s, ",");
        const char *e = s;
        size_t en = n;
        while (en > 0 && (*e == ' ' || *e == '\t')) {
            e++;
            en--;
        }
        while (en > 0 && (e[en - 1] == ' ' || e[en - 1] == '\t'))
            en--;
        if (en == 0)
            return config_fail(err, errlen, v, value, "the list has an empty entry");
        int rc = fn(c, v, value, e, en, err, errlen);
        if (rc != 0)
            return rc;
        if (s[n] == '\0')
            return 0;
        s += n + 1;
    }
}

static int origin_entry(config_t *c, const config_var_t *v, const char *value, const char *e,
                        size_t n, char *err, size_t errlen)
{
    char shown[QUOTED_MAX_BYTES];
    const char *why;

    if (n == 1 && e[0] == '*') {
        c->allow_any_origin = true;
        return 0;
    }
    why = origin_check(e, n);
    if (why != NULL) {
        quote_value(e, n, shown, sizeof(shown));
        return config_fail(err, errlen, v, value, "%s is not an origin: %s", shown, why);
    }
    if (c->n_allowed_origins == CONFIG_MAX_ORIGINS)
        return config_fail(err, errlen, v, value, "at most %d origins are allowed",
                           CONFIG_MAX_ORIGINS);
    char *o = xstrndup(e, n);
    for (char *q = o; *q; q++)
        if (*q >= 'A' && *q <= 'Z')
            *q = (char)(*q - 'A' + 'a');
    c->allowed_origins[c->n_allowed_origins++] = o;
    return 0;
}

static int proxy_entry(config_t *c, const config_var_t *v, const char *value, const char *e,
                       size_t n, char *err, size_t errlen)
{
    char buf[CIDR_TEXT_MAX_CHARS + 1];
    char shown[QUOTED_MAX_BYTES];

    if (c->n_trusted_proxies == CONFIG_MAX_PROXIES)
        return config_fail(err, errlen, v, value, "at most %d networks are allowed",
                           CONFIG_MAX_PROXIES);
    if (n < sizeof(buf)) {
        memcpy(buf, e, n);
        buf[n] = '\0';
        if (cidr_parse(buf, &c->trusted_proxies[c->n_trusted_proxies]) == 0) {
            c->n_trusted_proxies++;
            return 0;
        }
    }
    quote_value(e, n, shown, sizeof(shown));
    return config_fail(err, errlen, v, value,
                       "%s is not a network (a.b.c.d/n, x:y::z/n or a bare address)", shown);
}

/*
 * Why val is not a Redis URL (SPEC 13: redis://[[user]:password@]host[:port][/db] or
 * unix:///path), or NULL when it is one.
 */
static const char *redis_url_check(const char *val)
{
    if (has_control(val) || strchr(val, ' '))
        return "must not hold spaces or control characters";
    if (strncmp(val, "unix://", 7) == 0)
        return val[7] == '/' && val[8] != '\0' ? NULL : "a unix:// URL needs an absolute path";
    if (strncmp(val, "redis://", 8) != 0)
        return "must be a redis:// or unix:// URL";
    const char *p = val + 8;
    const char *at = strrchr(p, '@');
    if (at != NULL)
        p = at + 1;
    size_t hl = strcspn(p, ":/");
    if (hl == 0)
        return "needs a host";
    p += hl;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > PORT_MAX)
            return "has a bad port";
        p = end;
    }
    if (*p == '/' && p[1] != '\0') {
        char *end;
        long db = strtol(p + 1, &end, 10);
        if (end == p + 1 || *end != '\0' || db < 0 || db > 1000)
            return "has a bad database number";
    } else if (*p != '\0' && strcmp(p, "/") != 0) {
        return "has text after the host";
    }
    return NULL;
}

/* A Redis URL as printed and in errors: a password hidden. Returns a static buffer. */
static const char *redis_url_shown(const char *val)
{
    static __thread char shown[256];
    const char *at = strncmp(val, "redis://", 8) == 0 ? strrchr(val + 8, '@') : NULL;
    if (at == NULL)
        return val;
    snprintf(shown, sizeof(shown), "redis://[password]@%s", at + 1);
    return shown;
}

/* Why val is not a PostgreSQL URL (SPEC 13: libpq's URI form), or NULL when it is one. libpq
 * reads the rest when it connects. */
static const char *db_url_check(const char *val)
{
    if (has_control(val) || strchr(val, ' '))
        return "must not hold spaces or control characters";
    if (strncmp(val, "postgres://", 11) != 0 && strncmp(val, "postgresql://", 13) != 0)
        return "must be a postgres:// or postgresql:// URL";
    return NULL;
}

/* A PostgreSQL URL as printed and in errors: the password (user:password@) hidden. Returns a
 * static buffer or val. */
static const char *db_url_shown(const char *val)
{
    static __thread char shown[512];
    const char *p = strstr(val, "://");
    if (p == NULL)
        return val;
    p += 3;
    const char *at = strchr(p, '@');
    const char *colon = at ? memchr(p, ':', (size_t)(at - p)) : NULL;
    if (colon == NULL)
        return val;
    snprintf(shown, sizeof(shown), "%.*s:[password]%s", (int)(colon - val), val, at);
    return shown;
}

static bool node_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._:-", s[i]))
            return false;
    return true;
}

/* Parses one variable's text (from the environment or its default) into c. */
static int config_parse_var(config_t *c, const config_var_t *v, const char *val, char *err,
                            size_t errlen)
{
    char words[64];
    const char *why;
    long n;
    int w;

    switch (v->kind) {
    case VAR_INT:
    case VAR_WORKERS:
        if (!parse_whole(val, strlen(val), v->min, v->max, &n))
            return config_fail(err, errlen, v, val, "must be a whole number in %ld..%ld", v->min,
                               v->max);
        *var_int(c, v) = (int)n;
        return 0;
    case VAR_HOST:
        if (!host_ok(val))
            return config_fail(err, errlen, v, val, "must be a host name or IP address");
        *var_str(c, v) = xstrdup(val);
        return 0;
    case VAR_ORIGINS:
        return for_each_entry(c, v, val, origin_entry, err, errlen);
    case VAR_PROXIES:
        return for_each_entry(c, v, val, proxy_entry, err, errlen);
    case VAR_MINT_AUTH:
    case VAR_LOG_LEVEL:
    case VAR_LOG_FORMAT: {
        const char *const *list = v->kind == VAR_MINT_AUTH   ? mint_words
                                  : v->kind == VAR_LOG_LEVEL ? level_words
                                                             : format_words;
        w = word_index(val, list);
        if (w < 0) {
            words_join(list, words, sizeof(words));
            return config_fail(err, errlen, v, val, "must be one of %s", words);
        }
        if (v->kind == VAR_MINT_AUTH)
            c->mint_auth = (mint_auth_t)w;
        else if (v->kind == VAR_LOG_LEVEL)
            c->log_level = (log_level_t)w;
        else
            c->log_format = (log_format_t)w;
        return 0;
    }
    case VAR_FILE:
    case VAR_FILE_OR_DIR:
        why = file_check(val, v->kind == VAR_FILE_OR_DIR);
        if (why != NULL)
            return config_fail(err, errlen, v, val, "cannot read the file: %s", why);
        *var_str(c, v) = xstrdup(val);
        return 0;
    case VAR_SECRET:
        if (has_control(val))
            return config_fail(err, errlen, v, val, "must not contain control characters");
        *var_str(c, v) = xstrdup(val);
        return 0;
    case VAR_URL:
    case VAR_URL_NOSLASH:
        if (scheme_len(val, strlen(val), v->schemes) == 0)
            return config_fail(err, errlen, v, val, "must be a %s:// or %s:// URL", v->schemes[0],
                               v->schemes[1]);
        why = url_check(val, v->schemes);
        if (why != NULL)
            return config_fail(err, errlen, v, val, "%s", why);
        *var_str(c, v) = xstrdup(val);
        if (v->kind == VAR_URL_NOSLASH) {
            char *u = *var_str(c, v);
            size_t len = strlen(u);
            while (len > 0 && u[len - 1] == '/')
                u[--len] = '\0';
        }
        return 0;
    case VAR_MODEL:
        if (!model_ok(val))
            return config_fail(err, errlen, v, val, "must be a model name ([A-Za-z0-9._:-]{1,%d})",
                               MODEL_MAX_CHARS);
        *var_str(c, v) = xstrdup(val);
        return 0;
    case VAR_PATH:
        if (val[0] == '\0' || has_control(val))
            return config_fail(err, errlen, v, val, "must be a file path");
        *var_str(c, v) = xstrdup(val);
        return 0;
    case VAR_REDIS_URL:
        why = redis_url_check(val);
        if (why != NULL)
            return config_fail(err, errlen, v, redis_url_shown(val), "%s", why);
        *var_str(c, v) = xstrdup(val);
        return 0;
    case VAR_DB_URL:
        why = db_url_check(val);
        if (why != NULL)
            return config_fail(err, errlen, v, db_url_shown(val), "%s", why);
        *var_str(c, v) = xstrdup(val);
        return 0;
    case VAR_NODE_ID:
        if (!node_id_ok(val))
            return config_fail(err, errlen, v, val, "must match [A-Za-z0-9._:-]{1,64}");
        *var_str(c, v) = xstrdup(val);
        return 0;
    }
    return config_fail(err, errlen, v, val, "unknown kind of variable");
}

/* The table entry of the variable called name; name is one of config_vars[]. */
static const config_var_t *config_var(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(config_vars); i++)
        if (strcmp(config_vars[i].name, name) == 0)
            return &config_vars[i];
    abort();
}

/* The rules that tie variables together (SPEC 2.1 TLS pair, SPEC 14 webhook secret). */
static int config_check_pairs(const config_t *c, char *err, size_t errlen)
{
    if (c->tls_cert != NULL && c->tls_key == NULL)
        return config_fail(err, errlen, config_var("SWITCHBOARD_TLS_CERT"), c->tls_cert,
                           "SWITCHBOARD_TLS_KEY must be set as well");
    if (c->tls_key != NULL && c->tls_cert == NULL)
        return config_fail(err, errlen, config_var("SWITCHBOARD_TLS_KEY"), c->tls_key,
                           "SWITCHBOARD_TLS_CERT must be set as well");
    if (c->postcall_webhook_url != NULL && c->api_secret == NULL)
        return config_fail(err, errlen, config_var("SWITCHBOARD_POSTCALL_WEBHOOK_URL"),
                           c->postcall_webhook_url,
                           "needs SWITCHBOARD_API_SECRET, which signs the webhook");
    return 0;
}

/* Sets v's field of c from the environment or v's default. */
static int config_read_var(config_t *c, const config_var_t *v, int ncpu, char *err, size_t errlen)
{
    const char *val = getenv(v->name);

    if (v->kind == VAR_WORKERS) {
        if (val == NULL) {
            c->workers = ncpu < 1 ? 1 : ncpu > WORKERS_MAX ? WORKERS_MAX : ncpu;
            return 0;
        }
    } else if (val == NULL || (val[0] == '\0' && v->def == NULL)) {
        /* An empty optional variable is unset: `FOO= switchboard` must not be an error. */
        val = v->def;
    }
    return val != NULL ? config_parse_var(c, v, val, err, errlen) : 0;
}

int config_vars_from_env(config_t *c, const char *const *names, char *err, size_t errlen)
{
    int rc = 0;

    memset(c, 0, sizeof(*c));
    if (errlen > 0)
        err[0] = '\0';
    for (size_t i = 0; names[i] != NULL && rc == 0; i++)
        rc = config_read_var(c, config_var(names[i]), 1, err, errlen);
    if (rc != 0)
        config_free(c);
    return rc;
}

/*
 * The host of SWITCHBOARD_PUBLIC_URL (already checked to be an http(s) URL with a host): what
 * comes after "scheme://" and any "user@", up to the port, path or end, lower-cased, without
 * the brackets of an IPv6 literal. NULL when the URL is unset.
 */
static char *public_host_of(const char *url)
{
    if (url == NULL)
        return NULL;
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    const char *end = p + strcspn(p, "/?#");
    const char *at = memchr(p, '@', (size_t)(end - p));
    if (at)
        p = at + 1;
    const char *stop;
    if (*p == '[') {
        p++;
        stop = memchr(p, ']', (size_t)(end - p));
        if (stop == NULL)
            stop = end;
    } else {
        stop = memchr(p, ':', (size_t)(end - p));
        if (stop == NULL)
            stop = end;
    }
    char *h = xmalloc((size_t)(stop - p) + 1);
    for (size_t i = 0; i < (size_t)(stop - p); i++)
        h[i] = (char)tolower((unsigned char)p[i]);
    h[stop - p] = '\0';
    return h;
}

int config_from_env(config_t *c, int ncpu, char *err, size_t errlen)
{
    int rc = 0;

    memset(c, 0, sizeof(*c));
    if (errlen > 0)
        err[0] = '\0';
    for (size_t i = 0; i < ARRAY_LEN(config_vars) && rc == 0; i++)
        rc = config_read_var(c, &config_vars[i], ncpu, err, errlen);
    if (rc == 0)
        rc = config_check_pairs(c, err, errlen);
    if (rc == 0)
        c->public_host = public_host_of(c->public_url);
    if (rc != 0)
        config_free(c);
    return rc;
}

int cidr_format(const cidr_t *net, char *buf, size_t len)
{
    static const uint8_t v4_mapped[V4_MAPPED_OFFSET] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    char addr[INET6_ADDRSTRLEN];
    int prefix = net->prefix;
    int n;

    if (prefix >= V4_MAPPED_PREFIX && memcmp(net->addr, v4_mapped, sizeof(v4_mapped)) == 0) {
        inet_ntop(AF_INET, net->addr + V4_MAPPED_OFFSET, addr, sizeof(addr));
        prefix -= V4_MAPPED_PREFIX;
    } else {
        inet_ntop(AF_INET6, net->addr, addr, sizeof(addr));
    }
    n = snprintf(buf, len, "%s/%d", addr, prefix);
    return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

/* Appends the value of v in c as config_print() shows it: lists comma-separated, secrets as [set]
 * or [unset], nothing for an unset optional variable. */
static void var_value_text(const config_t *c, const config_var_t *v, sbuf_t *b)
{
    char cidr[CIDR_TEXT_MAX_CHARS + 1];

    switch (v->kind) {
    case VAR_INT:
    case VAR_WORKERS:
        sbuf_printf(b, "%d", *(const int *)((const char *)c + v->off));
        break;
    case VAR_ORIGINS:
        if (c->allow_any_origin)
            sbuf_puts(b, "*");
        for (size_t j = 0; j < c->n_allowed_origins; j++)
            sbuf_printf(b, "%s%s", j || c->allow_any_origin ? "," : "", c->allowed_origins[j]);
        break;
    case VAR_PROXIES:
        for (size_t j = 0; j < c->n_trusted_proxies; j++) {
            cidr_format(&c->trusted_proxies[j], cidr, sizeof(cidr));
            sbuf_printf(b, "%s%s", j ? "," : "", cidr);
        }
        break;
    case VAR_MINT_AUTH:
        sbuf_puts(b, mint_words[c->mint_auth]);
        break;
    case VAR_LOG_LEVEL:
        sbuf_puts(b, level_words[c->log_level]);
        break;
    case VAR_LOG_FORMAT:
        sbuf_puts(b, format_words[c->log_format]);
        break;
    case VAR_SECRET:
        sbuf_puts(b, *var_cstr(c, v) ? "[set]" : "[unset]");
        break;
    case VAR_REDIS_URL:
        if (*var_cstr(c, v) != NULL)
            sbuf_puts(b, redis_url_shown(*var_cstr(c, v)));
        break;
    case VAR_DB_URL:
        if (*var_cstr(c, v) != NULL)
            sbuf_puts(b, db_url_shown(*var_cstr(c, v)));
        break;
    case VAR_NODE_ID:
    case VAR_HOST:
    case VAR_FILE:
    case VAR_FILE_OR_DIR:
    case VAR_URL:
    case VAR_URL_NOSLASH:
    case VAR_MODEL:
    case VAR_PATH:
        if (*var_cstr(c, v) != NULL)
            sbuf_puts(b, *var_cstr(c, v));
        break;
    }
}

/*
 * In json format (SPEC 2.1: every line a JSON object) each variable is a log line of event
 * "config", {"name":…,"value":…}: numbers stay numbers and an unset variable is null. One line
 * per variable, as in text, keeps a line short whatever the lists hold, and the variable's name a
 * value rather than a key, which the log's redaction of keys such as *_KEY would hide.
 */
void config_print(const config_t *c, FILE *out)
{
    sbuf_t value = SBUF_INIT;

    for (size_t i = 0; i < ARRAY_LEN(config_vars); i++) {
        const config_var_t *v = &config_vars[i];
        sbuf_reset(&value);
        var_value_text(c, v, &value);
        const char *text = value.len ? value.data : "";
        if (c->log_format != LOG_FORMAT_JSON) {
            fprintf(out, "%s=%s\n", v->name, text);
            continue;
        }
        bool number = v->kind == VAR_INT || v->kind == VAR_WORKERS;
        log_kv_t kv[] = {
            LOG_S("name", v->name),
            number ? LOG_I("value", *(const int *)((const char *)c + v->off))
                   : LOG_S("value", value.len ? value.data : NULL),
        };
        log_print(out, LOG_FORMAT_JSON, LOG_INFO, "config", kv, ARRAY_LEN(kv));
    }
    sbuf_destroy(&value);
}

void config_free(config_t *c)
{
    for (size_t i = 0; i < ARRAY_LEN(config_vars); i++) {
        const config_var_t *v = &config_vars[i];
        switch (v->kind) {
        case VAR_HOST:
        case VAR_FILE:
        case VAR_FILE_OR_DIR:
        case VAR_SECRET:
        case VAR_URL:
        case VAR_URL_NOSLASH:
        case VAR_MODEL:
        case VAR_PATH:
        case VAR_REDIS_URL:
        case VAR_DB_URL:
        case VAR_NODE_ID:
            free(*var_str(c, v));
            *var_str(c, v) = NULL;
            break;
        default:
            break;
        }
    }
    for (size_t j = 0; j < c->n_allowed_origins; j++)
        free(c->allowed_origins[j]);
    c->n_allowed_origins = 0;
    free(c->public_host);
    c->public_host = NULL;
    c->n_trusted_proxies = 0;
    c->allow_any_origin = false;
}

int cidr_parse(const char *s, cidr_t *out)
{
    char buf[INET6_ADDRSTRLEN];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    struct in_addr a4;
    cidr_t net;
    long max, prefix;
    bool v4 = false;

    if (alen == 0 || alen >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, s, alen);
    buf[alen] = '\0';
    memset(&net, 0, sizeof(net));
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        net.addr[10] = net.addr[11] = 0xff;
        memcpy(net.addr + V4_MAPPED_OFFSET, &a4, sizeof(a4));
        v4 = true;
        max = 32;
    } else if (inet_pton(AF_INET6, buf, net.addr) == 1) {
        max = 128;
    } else {
        return -EINVAL;
    }
    prefix = max;
    if (slash != NULL && !parse_whole(slash + 1, strlen(slash + 1), 0, max, &prefix))
        return -EINVAL;
    net.prefix = (uint8_t)(v4 ? V4_MAPPED_PREFIX + prefix : prefix);
    /* Keep only the network bits, so that printing shows the network that is matched. */
    for (int bit = net.prefix; bit < 128; bit++)
        net.addr[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
    *out = net;
    return 0;
}

bool cidr_contains(const cidr_t *net, const uint8_t addr16[16])
{
    unsigned bits = net->prefix > 128 ? 128 : net->prefix;
    unsigned full = bits / 8, rem = bits % 8;

    if (memcmp(net->addr, addr16, full) != 0)
        return false;
    if (rem == 0)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rem));
    return (net->addr[full] & mask) == (addr16[full] & mask);
}

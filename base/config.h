/*
 * Service configuration from the environment (SPEC 2.1).
 *
 * config_from_env() validates every variable: a number that is not whole, out of its range, or an
 * unknown word is an error whose message names the variable and the bad value; the caller exits
 * with status 2. After start-up the configuration is read-only and shared by all threads.
 */
#ifndef SB_BASE_CONFIG_H
#define SB_BASE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/log.h"

#define CONFIG_MAX_ORIGINS 64
#define CONFIG_MAX_PROXIES 64

typedef enum { MINT_AUTH_OPEN = 0, MINT_AUTH_SECRET = 1 } mint_auth_t;

/* An IPv4 or IPv6 network; IPv4 is stored as an IPv4-mapped IPv6 address (::ffff:a.b.c.d). */
typedef struct cidr {
    uint8_t addr[16];
    uint8_t prefix; /* 0..128, in the mapped space for IPv4 (96 + v4 prefix) */
} cidr_t;

typedef struct config {
    char *host;
    int port; /* 0..65535, 0 = any free port */
    int net_threads;
    int workers;
    int max_sessions;
    int max_actors;
    int mailbox_cap;
    int token_ttl_s;
    int session_idle_s;
    int session_max_s;
    char *allowed_origins[CONFIG_MAX_ORIGINS];
    size_t n_allowed_origins;
    bool allow_any_origin; /* the list contains "*" */
    int max_control_bytes;
    int max_audio_bytes;
    int sessions_per_min;
    int sessions_per_ip;
    int max_connections;
    int connections_per_ip;
    mint_auth_t mint_auth;
    cidr_t trusted_proxies[CONFIG_MAX_PROXIES];
    size_t n_trusted_proxies;
    char *tls_cert; /* NULL = plain HTTP */
    char *tls_key;
    int replay_items;
    int retention_days;
    char *openai_api_key; /* NULL when unset; never logged */
    char *realtime_url;
    char *realtime_model;
    char *openai_base_url;
    char *supervisor_model;
    int supervisor_max_iterations;
    int max_supervisor_runs;
    int chat_runs_per_min; /* chat messages (supervisor runs) per client IP per minute */
    int tool_timeout_ms;
    int mcp_call_timeout_ms;
    int postcall_retry_ms; /* the first post-call retry's delay, doubling (SPEC 15: 30 s) */
    int upstream_recycle_s;
    char *config_path; /* NULL = built-in demo */
    char *db_path;
    char *api_secret; /* NULL when unset */
    char *jwt_secret; /* NULL when unset */
    char *postcall_webhook_url;
    log_level_t log_level;
    log_format_t log_format;
    char *public_url;         /* SWITCHBOARD_PUBLIC_URL without trailing slashes; NULL = from
                                 the request */
    char *public_host;        /* its host (lower-cased, no port, no brackets); NULL when unset */
    char *twilio_auth_token;  /* NULL = phone calls off (SPEC 5.5); never logged */
    char *twilio_account_sid; /* Basic-auth user of Twilio's REST API; NULL when unset */
    char *twilio_api_url;     /* Twilio REST base, without trailing slashes */
    char *redis_url;          /* SPEC 13: NULL = one process */
    char *database_url;       /* SPEC 13: NULL = SQLite at db_path */
    char *node_id;            /* this node's name in the registry; NULL = hostname:port */
} config_t;

/*
 * Fills c from the process environment, applying defaults. ncpu is the default for
 * SWITCHBOARD_WORKERS. Returns 0, or -EINVAL with a message naming the variable and the bad
 * value written to err (NUL-terminated, at most errlen bytes). On error c needs no config_free().
 */
int config_from_env(config_t *c, int ncpu, char *err, size_t errlen);

/*
 * Fills only the variables named in names (NULL-terminated, each one of SPEC 2.1's) the way
 * config_from_env() does, and leaves the rest of c zeroed: for the programs beside the service
 * (switchboard-onboard) that read a few of its variables and must read them alike. Aborts on a
 * name that is not a variable. Returns 0 or -EINVAL as config_from_env() does.
 */
int config_vars_from_env(config_t *c, const char *const *names, char *err, size_t errlen);

/* Prints the effective configuration, one `NAME=value` per line, secrets shown as `[set]`. */
void config_print(const config_t *c, FILE *out);

void config_free(config_t *c);

/* Parses "a.b.c.d/n" or "x::y/n" (a bare address is a /32 or /128). Returns 0 or -EINVAL. */
int cidr_parse(const char *s, cidr_t *out);
/* addr16 is an IPv6 or IPv4-mapped address. */
bool cidr_contains(const cidr_t *net, const uint8_t addr16[16]);
/* Writes net as "a.b.c.d/n" (IPv4-mapped) or "x::y/n" into buf. Returns 0 or -ENOSPC. */
int cidr_format(const cidr_t *net, char *buf, size_t len);

/* The configuration of this process, set once by main() before threads start. */
extern const config_t *g_config;

#endif

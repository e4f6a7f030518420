/*
 * The agent config file (SPEC 2.2): one JSON document describing the business and its agent.
 * Loaded once at start-up, strictly validated (unknown keys and wrong types are errors naming the
 * key path), then read-only and shared by all threads. A leaf of agents/: it calls nothing else
 * in agents/ (base/ only).
 */
#ifndef SB_AGENTS_AGENTCFG_H
#define SB_AGENTS_AGENTCFG_H

#include <stdbool.h>
#include <stddef.h>

typedef struct agent_service {
    char *name;
    int duration_min;
    char *price; /* display text, e.g. "$50-80" */
} agent_service_t;

/* Opening hours of one weekday in minutes after midnight; closed when open == false. */
typedef struct agent_hours {
    bool open;
    int open_min;
    int close_min;
} agent_hours_t;

typedef struct agent_page {
    char *name;      /* e.g. "homepage" */
    char **sections; /* e.g. hero, services, case-studies, pricing, contact */
    size_t n_sections;
} agent_page_t;

typedef struct agent_mcp_server {
    char *alias;
    /* stdio transport when command != NULL, else Streamable HTTP at url */
    char *command;
    char **args;
    size_t n_args;
    char **env; /* "NAME=value" strings */
    size_t n_env;
    char *url;
    char **headers; /* "Name: value" strings */
    size_t n_headers;
} agent_mcp_server_t;

typedef struct agent_tool_globs {
    char **globs; /* patterns with '*' wildcards; default {"*"} */
    size_t n;
} agent_tool_globs_t;

/* How calls of this business are handed on and followed up (SPEC 5.5, 15). */
typedef struct agent_phone {
    char *transfer_to; /* E.164 number for transferCall; NULL when not given */
} agent_phone_t;

typedef struct agent_postcall {
    bool enabled;       /* default true */
    char *crm;          /* an mcpServers alias, NULL when none */
    int min_user_turns; /* default 1 */
    char *instructions; /* NULL when none */
} agent_postcall_t;

/*
 * Who may act for this business (SPEC 16): the keys of a tenant. All optional in the file; a
 * tenant directory requires public_key and api_secret (agents/tenant checks that).
 */
typedef struct agent_access {
    char *public_key; /* "pk_" + >= 24 characters, safe in web pages; NULL when none */
    char *api_secret; /* the tenant's server-to-server secret; NULL when none */
    char *jwt_secret; /* HS256 secret of the tenant's JWTs; NULL = SWITCHBOARD_JWT_SECRET */
    char **origins;   /* allowedOrigins: "scheme://host[:port]", lowercase */
    size_t n_origins;
    char **phone_numbers; /* E.164 */
    size_t n_phone_numbers;
    int max_sessions; /* live voice sessions of this tenant; 0 = the global cap */
} agent_access_t;

typedef struct agentcfg {
    char *company_name;
    char *company_phone;
    char *company_email;
    char *company_timezone; /* IANA name, e.g. "America/Los_Angeles" */
    char *brief;
    agent_service_t *services;
    size_t n_services;
    agent_hours_t hours[7]; /* index 0 = Monday ... 6 = Sunday */
    char *voice;
    char *instructions_extra; /* may be NULL */
    agent_page_t *pages;
    size_t n_pages;
    agent_mcp_server_t *mcp_servers;
    size_t n_mcp_servers;
    agent_tool_globs_t tools_voice;
    agent_tool_globs_t tools_chat;
    agent_tool_globs_t tools_agent;
    agent_tool_globs_t tools_phone;    /* default getNextResponseFromSupervisor, transferCall,
                                          endCall */
    agent_tool_globs_t tools_postcall; /* default ["<crm>__*"], [] without postcall.crm */
    agent_phone_t phone;
    agent_postcall_t postcall;
    agent_access_t access;
} agentcfg_t;

/*
 * Loads the config at path, or the built-in demo company (Prime Auto Lab) when path is NULL.
 * Returns 0, or -EINVAL with a message naming the key path and the problem in err.
 */
int agentcfg_load(agentcfg_t *ac, const char *path, char *err, size_t errlen);

/* Same, from a JSON text already in memory (used for the built-in demo and by tests). */
int agentcfg_parse(agentcfg_t *ac, const char *json, size_t len, const char *base_dir, char *err,
                   size_t errlen);

void agentcfg_free(agentcfg_t *ac);

/* The page called name, or NULL. */
const agent_page_t *agentcfg_page(const agentcfg_t *ac, const char *name);
/* True when section is one of page's sections. */
bool agentcfg_page_has_section(const agent_page_t *page, const char *section);
/* True when s is an E.164 number: '+' then 8..15 digits, the first not 0. */
bool agentcfg_e164_ok(const char *s);
/* True when name matches one of the globs ('*' matches any run of characters). */
bool agentcfg_tool_allowed(const agent_tool_globs_t *g, const char *name);

/* The built-in demo config (Prime Auto Lab) as JSON text, in agents/config/agentcfg_demo.c. */
extern const char agentcfg_demo_json[];

#endif

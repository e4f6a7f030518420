/*
 * tenantkeys: the keys of the agent config that say who acts for the business and what happens
 * around a call (SPEC 2.2 phone and postcall, SPEC 16 publicKey, apiSecret, allowedOrigins,
 * phoneNumbers, maxSessions, jwtSecret). Private to agents/config: agentcfg.c calls these from
 * its top-level parser. Thread: the caller's.
 */
#ifndef SB_AGENTS_CONFIG_TENANTKEYS_H
#define SB_AGENTS_CONFIG_TENANTKEYS_H

#include <cjson/cJSON.h>

#include "agents/config/agentcfg.h"
#include "agents/config/cfgparse.h"

/* publicKey, apiSecret, jwtSecret, allowedOrigins, phoneNumbers, maxSessions into ac->access. */
int tenantkeys_parse_access(cfgparse_t *p, const cJSON *root, agentcfg_t *ac);
/* phone and postcall; postcall.crm must name one of ac's MCP servers (parsed before). */
int tenantkeys_parse_calls(cfgparse_t *p, const cJSON *root, agentcfg_t *ac);
/* Frees what the two parsers allocated. */
void tenantkeys_free(agentcfg_t *ac);

#endif

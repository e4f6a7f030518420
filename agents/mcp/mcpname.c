/*
 * Exposed tool names (mcp_int.h): MCP names are up to 128 characters, may contain '.', and are
 * unique only per server; OpenAI function names must match ^[a-zA-Z0-9_-]{1,64}$. The exposed
 * name is "<alias>__<tool>" sanitised; a name that had to be changed or cut, or that is taken,
 * gets the FNV-1a hash of alias '\0' original as an 8-hex suffix instead of its tail, so the
 * mapping stays exact and stable across restarts. Thread: any.
 */
#include <stdio.h>
#include <string.h>

#include "agents/mcp/mcp_int.h"
#include "base/util.h"

#define MCPNAME_HASH_HEX  8
#define MCPNAME_SEPARATOR "__"
#define FNV_OFFSET        2166136261u
#define FNV_PRIME         16777619u

static bool mcpname_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

bool mcpname_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > TOOL_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!mcpname_char_ok(s[i]))
            return false;
    return true;
}

static uint32_t mcpname_hash(const char *alias, const char *original, uint32_t salt)
{
    uint32_t h = FNV_OFFSET ^ salt;
    for (const char *p = alias; *p; p++)
        h = (h ^ (uint8_t)*p) * FNV_PRIME;
    h = (h ^ 0u) * FNV_PRIME;
    for (const char *p = original; *p; p++)
        h = (h ^ (uint8_t)*p) * FNV_PRIME;
    return h;
}

void mcpname_expose(const char *alias, const char *original, mcpname_taken_fn taken, void *arg,
                    char out[TOOL_NAME_MAX + 1])
{
    char full[TOOL_NAME_MAX * 4];
    size_t n = 0;
    bool changed = false;
    const char *parts[3] = {alias, MCPNAME_SEPARATOR, original};
    for (int k = 0; k < 3; k++) {
        for (const char *p = parts[k]; *p; p++) {
            if (n + 1 >= sizeof(full)) {
                changed = true;
                break;
            }
            char c = mcpname_char_ok(*p) ? *p : '_';
            changed |= c != *p;
            full[n++] = c;
        }
    }
    full[n] = '\0';
    if (n > TOOL_NAME_MAX)
        changed = true;
    str_copy(out, full, TOOL_NAME_MAX + 1);
    if (!changed && !(taken && taken(arg, out)))
        return;
    /* Keep as much of the readable name as fits before "_<hash>". */
    size_t keep =
        n < TOOL_NAME_MAX - MCPNAME_HASH_HEX - 1 ? n : TOOL_NAME_MAX - MCPNAME_HASH_HEX - 1;
    for (uint32_t salt = 0;; salt++) {
        snprintf(out, TOOL_NAME_MAX + 1, "%.*s_%08x", (int)keep, full,
                 mcpname_hash(alias, original, salt));
        if (!(taken && taken(arg, out)))
            return;
    }
}

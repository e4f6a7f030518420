/*
 * The agent config file (SPEC 2.2); see agentcfg.h.
 *
 * Validation is strict: an unknown or duplicated key, a value of the wrong type or out of range is
 * an error `config: <key path>: <problem>`, e.g. `config: services[2].duration_min: expected a
 * whole number 5..1440, got 3`. Array indexes in key paths count from 0. The built-in demo is JSON
 * text too (agentcfg_demo.c) and goes through the same parser.
 *
 * What a user file must give, and the defaults of everything else:
 *  - company with a non-empty name, and brief or brief_file (not both), are required;
 *  - company.phone and company.email default to "" and company.timezone to "UTC";
 *  - services default to none; a service needs name and duration_min, its price defaults to "";
 *  - hours, when absent, are the demo's (Mon-Fri 08:00-18:00, Sat 09:00-16:00, Sun closed); a day
 *    missing from a given hours object is closed, as is a day given as null. "24:00" is allowed
 *    as a closing time;
 *  - voice defaults to "marin", instructions_extra to NULL, pages and mcpServers to none;
 *  - tools.voice, tools.chat and tools.agent default to ["*"] each; [] exposes no tool;
 *    tools.phone to getNextResponseFromSupervisor, transferCall and endCall; tools.postcall to
 *    ["<postcall.crm>__*"], or none without a CRM;
 *  - phone, postcall and the tenant keys (publicKey, apiSecret, ...): tenantkeys.c.
 * An MCP server may also carry "type" ("stdio" with command, "http" or "streamable-http" with
 * url) because configs copied from other MCP clients have it.
 */
#include "agents/config/agentcfg.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agents/config/cfgparse.h"
#include "agents/config/tenantkeys.h"
#include "base/util.h"

#define AGENTCFG_MAX_FILE_BYTES  (1024 * 1024)
#define AGENTCFG_MAX_BRIEF_BYTES (1024 * 1024)
#define SERVICE_DURATION_MIN_MIN 5
#define SERVICE_DURATION_MAX_MIN 1440
#define MIN_PER_HOUR             60
#define HOURS_PER_DAY            24
#define ID_MAX_CHARS             64 /* page names and section ids */
#define ALIAS_MAX_CHARS          32 /* MCP server aliases */
#define VOICE_MAX_CHARS          32
#define TIMEZONE_MAX_CHARS       64
#define MAX_SERVICES             256
#define MAX_PAGES                64
#define MAX_SECTIONS             256
#define MAX_MCP_SERVERS          32

#define DEFAULT_VOICE    "marin"
#define DEFAULT_TIMEZONE "UTC"

/* The demo's hours, also the default of a user file without "hours" (index 0 = Monday). */
static const agent_hours_t default_hours[7] = {
    {true, 8 * MIN_PER_HOUR, 18 * MIN_PER_HOUR},
    {true, 8 * MIN_PER_HOUR, 18 * MIN_PER_HOUR},
    {true, 8 * MIN_PER_HOUR, 18 * MIN_PER_HOUR},
    {true, 8 * MIN_PER_HOUR, 18 * MIN_PER_HOUR},
    {true, 8 * MIN_PER_HOUR, 18 * MIN_PER_HOUR},
    {true, 9 * MIN_PER_HOUR, 16 * MIN_PER_HOUR},
    {false, 0, 0},
};

static const char *const day_keys[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun", NULL};

static bool email_ok(const char *s)
{
    return s[0] == '\0' || (strchr(s, '@') != NULL && strchr(s, ' ') == NULL);
}

/* An IANA name: segments of [A-Za-z0-9_+-] joined by '/', e.g. "America/Los_Angeles". */
static bool timezone_ok(const char *s)
{
    size_t n = strlen(s), seg = 0;

    if (n == 0 || n > TIMEZONE_MAX_CHARS)
        return false;
    for (size_t i = 0; i <= n; i++) {
        if (s[i] == '/' || s[i] == '\0') {
            if (seg == 0)
                return false;
            seg = 0;
        } else if (str_is_id(s + i, 1, 1, 1) || s[i] == '+') {
            seg++;
        } else {
            return false;
        }
    }
    return true;
}

static bool voice_ok(const char *s)
{
    return str_is_id(s, strlen(s), 1, VOICE_MAX_CHARS);
}

static bool section_ok(const char *s)
{
    return str_is_id(s, strlen(s), 1, ID_MAX_CHARS);
}

/* http(s)://host... with a non-empty host and no spaces or control characters. */
static bool http_url_ok(const char *s)
{
    size_t p = strncasecmp(s, "http://", 7) == 0 ? 7 : strncasecmp(s, "https://", 8) == 0 ? 8 : 0;

    if (p == 0 || strchr("/?#:", s[p]) != NULL) /* s[p] == '\0' matches too: no host */
        return false;
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == 0x7f)
            return false;
    return true;
}

/* A tool name pattern: printable ASCII without spaces. */
static bool glob_ok(const char *s)
{
    if (s[0] == '\0')
        return false;
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

/* An environment variable name: [A-Za-z_][A-Za-z0-9_]*. */
static bool env_name_ok(const char *s)
{
    if (s[0] == '\0' || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (; *s; s++)
        if (*s == '-' || !str_is_id(s, 1, 1, 1))
            return false;
    return true;
}

/* An HTTP header name (RFC 9110 token). */
static bool header_name_ok(const char *s)
{
    if (s[0] == '\0')
        return false;
    for (; *s; s++)
        if (!str_is_id(s, 1, 1, 1) && strchr("!#$%&'*+.^`|~", *s) == NULL)
            return false;
    return true;
}

static bool header_value_ok(const char *s)
{
    return strpbrk(s, "\r\n") == NULL;
}

static int parse_company(cfgparse_t *p, const cJSON *root, agentcfg_t *ac)
{
    static const char *const keys[] = {"name", "phone", "email", "timezone", NULL};
    const cJSON *j = cfgparse_get(root, "company");
    size_t saved = cfgparse_path_key(p, "company");
    int rc;

    if (j == NULL)
        return cfgparse_fail(p, "required key is missing");
    if (!cJSON_IsObject(j))
        return cfgparse_fail_type(p, j, "an object");
    if ((rc = cfgparse_check_keys(p, j, keys)) != 0 ||
        (rc = cfgparse_get_string(p, j, "name", true, cfgparse_nonempty_ok, "a non-empty string",
                                  &ac->company_name)) != 0 ||
        (rc = cfgparse_get_string(p, j, "phone", false, NULL, "a string", &ac->company_phone)) !=
            0 ||
        (rc = cfgparse_get_string(p, j, "email", false, email_ok, "an e-mail address",
                                  &ac->company_email)) != 0 ||
        (rc = cfgparse_get_string(p, j, "timezone", false, timezone_ok,
                                  "an IANA timezone name such as \"America/Los_Angeles\"",
                                  &ac->company_timezone)) != 0)
        return rc;
    cfgparse_path_pop(p, saved);
    return 0;
}

/* brief, or brief_file read relative to the config file's folder. */
static int parse_brief(cfgparse_t *p, const cJSON *root, agentcfg_t *ac)
{
    const cJSON *b = cfgparse_get(root, "brief"), *f = cfgparse_get(root, "brief_file");
    char *rel = NULL, *full, *text = NULL;
    const char *why;
    size_t len = 0, saved;
    int rc;

    if (b != NULL && f != NULL) {
        cfgparse_path_key(p, "brief_file");
        return cfgparse_fail(p, "cannot be given together with brief");
    }
    if (b == NULL && f == NULL) {
        cfgparse_path_key(p, "brief");
        return cfgparse_fail(p, "required key is missing (give brief or brief_file)");
    }
    if (b != NULL)
        return cfgparse_get_string(p, root, "brief", true, cfgparse_nonempty_ok,
                                   "a non-empty string", &ac->brief);
    rc =
        cfgparse_get_string(p, root, "brief_file", true, cfgparse_nonempty_ok, "a file path", &rel);
    if (rc != 0)
        return rc;
    if (rel[0] == '/' || p->base_dir == NULL) {
        full = rel;
    } else {
        full = xmalloc(strlen(p->base_dir) + strlen(rel) + 2);
        sprintf(full, "%s/%s", p->base_dir, rel);
        free(rel);
    }
    saved = cfgparse_path_key(p, "brief_file");
    why = cfgparse_read_text_file(full, AGENTCFG_MAX_BRIEF_BYTES, &text, &len);
    if (why == NULL && strlen(text) != len)
        why = "the file contains a NUL byte";
    else if (why == NULL && strspn(text, " \t\r\n") == len)
        why = "the file is empty";
    if (why != NULL) {
        rc = cfgparse_fail(p, "cannot read \"%s\": %s", full, why);
        free(full);
        free(text);
        return rc;
    }
    free(full);
    ac->brief = text;
    cfgparse_path_pop(p, saved);
    return 0;
}

static int parse_services(cfgparse_t *p, const cJSON *root, agentcfg_t *ac)
{
    static const char *const keys[] = {"name", "duration_min", "price", NULL};
    const cJSON *j = cfgparse_get(root, "services"), *s;
    size_t saved, i = 0;
    int rc;

    if (j == NULL)
        return 0;
    saved = cfgparse_path_key(p, "services");
    if (!cJSON_IsArray(j))
        return cfgparse_fail_type(p, j, "an array");
    if (cJSON_GetArraySize(j) > MAX_SERVICES)
        return cfgparse_fail(p, "at most %d services are allowed", MAX_SERVICES);
    ac->services = xcalloc((size_t)cJSON_GetArraySize(j), sizeof(*ac->services));
    cJSON_ArrayForEach(s, j)
    {
        agent_service_t *sv = &ac->services[i];
        size_t at = cfgparse_path_index(p, i);
        ac->n_services = ++i;
        if (!cJSON_IsObject(s))
            return cfgparse_fail_type(p, s, "an object");
        if ((rc = cfgparse_check_keys(p, s, keys)) != 0 ||
            (rc = cfgparse_get_string(p, s, "name", true, cfgparse_nonempty_ok,
                                      "a non-empty string", &sv->name)) != 0 ||
            (rc = cfgparse_get_string(p, s, "price", false, NULL, "a string", &sv->price)) != 0)
            return rc;
        for (size_t k = 0; k + 1 < i; k++) {
            if (strcasecmp(ac->services[k].name, sv->name) == 0) {
                cfgparse_path_key(p, "name");
                return cfgparse_fail(p, "duplicate service name \"%s\"", sv->name);
            }
        }
        const cJSON *d = cfgparse_get(s, "duration_min");
        cfgparse_path_key(p, "duration_min");
        if (d == NULL)
            return cfgparse_fail(p, "required key is missing");
        if (!cJSON_IsNumber(d))
            return cfgparse_fail(p, "expected a whole number %d..%d, got %s",
                                 SERVICE_DURATION_MIN_MIN, SERVICE_DURATION_MAX_MIN,
                                 cfgparse_json_kind(d));
        if (d->valuedouble < SERVICE_DURATION_MIN_MIN ||
            d->valuedouble > SERVICE_DURATION_MAX_MIN ||
            d->valuedouble != (double)(int)d->valuedouble)
            return cfgparse_fail(p, "expected a whole number %d..%d, got %g",
                                 SERVICE_DURATION_MIN_MIN, SERVICE_DURATION_MAX_MIN,
                                 d->valuedouble);
        sv->duration_min = (int)d->valuedouble;
        if (sv->price == NULL)
            sv->price = xstrdup("");
        cfgparse_path_pop(p, at);
    }
    cfgparse_path_pop(p, saved);
    return 0;
}

/* Parses "HH:MM" into minutes after midnight; "24:00" only when allow_end_of_day. */
static bool parse_hhmm(const char *s, bool allow_end_of_day, int *out)
{
    int h, m;

    if (strlen(s) != 5 || s[2] != ':')
        return false;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return false;
    h = (s[0] - '0') * 10 + (s[1] - '0');
    m = (s[3] - '0') * 10 + (s[4] - '0');
    if (m >= MIN_PER_HOUR || h > HOURS_PER_DAY || (h == HOURS_PER_DAY && (m || !allow_end_of_day)))
        return false;
    *out = h * MIN_PER_HOUR + m;
    return true;
}

static int parse_hours(cfgparse_t *p, const cJSON *root, agentcfg_t *ac)
{
    static const char *const expect = "[\"HH:MM\", \"HH:MM\"] (opening, closing) or null";
    const cJSON *j = cfgparse_get(root, "hours");
    size_t saved;
    int rc;

    if (j == NULL) {
        memcpy(ac->hours, default_hours, sizeof(ac->hours));
        return 0;
    }
    saved = cfgparse_path_key(p, "hours");
    if (!cJSON_IsObject(j))
        return cfgparse_fail_type(p, j, "an object");
    if ((rc = cfgparse_check_keys(p, j, day_keys)) != 0)
        return rc;
    for (int d = 0; d < 7; d++) {
        const cJSON *v = cfgparse_get(j, day_keys[d]);
        agent_hours_t *h = &ac->hours[d];
        size_t at = cfgparse_path_key(p, day_keys[d]);
        h->open = false;
        if (v == NULL || cJSON_IsNull(v)) {
            cfgparse_path_pop(p, at);
            continue;
        }
        if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2)
            return cfgparse_fail(p, "expected %s", expect);
        const cJSON *o = cJSON_GetArrayItem(v, 0), *c = cJSON_GetArrayItem(v, 1);
        if (!cJSON_IsString(o) || !parse_hhmm(o->valuestring, false, &h->open_min)) {
            cfgparse_path_index(p, 0);
            return cfgparse_fail(p, "expected an opening time \"HH:MM\" (00:00..23:59)");
        }
        if (!cJSON_IsString(c) || !parse_hhmm(c->valuestring, true, &h->close_min)) {
            cfgparse_path_index(p, 1);
            return cfgparse_fail(p, "expected a closing time \"HH:MM\" (00:01..24:00)");
        }
        if (h->open_min >= h->close_min)
            return cfgparse_fail(p,
                                 "opens at %s but closes at %s: the opening time must come first",
                                 o->valuestring, c->valuestring);
        h->open = true;
        cfgparse_path_pop(p, at);
    }
    cfgparse_path_pop(p, saved);
    return 0;
}

static int parse_pages(cfgparse_t *p, const cJSON *root, agentcfg_t *ac)
{
    const cJSON *j = cfgparse_get(root, "pages"), *pg, *sec;
    size_t saved;
    int rc;

    if (j == NULL)
        return 0;
    saved = cfgparse_path_key(p, "pages");
    if (!cJSON_IsObject(j))
        return cfgparse_fail_type(p, j, "an object");
    if ((rc = cfgparse_check_keys(p, j, NULL)) != 0)
        return rc;
    if (cJSON_GetArraySize(j) > MAX_PAGES)
        return cfgparse_fail(p, "at most %d pages are allowed", MAX_PAGES);
    ac->pages = xcalloc((size_t)cJSON_GetArraySize(j), sizeof(*ac->pages));
    cJSON_ArrayForEach(pg, j)
    {
        agent_page_t *page = &ac->pages[ac->n_pages++];
        size_t at = cfgparse_path_key(p, pg->string), i = 0;
        if (!section_ok(pg->string))
            return cfgparse_fail(p, "invalid page name (expected [A-Za-z0-9_-]{1,%d})",
                                 ID_MAX_CHARS);
        if (!cJSON_IsArray(pg))
            return cfgparse_fail_type(p, pg, "an array of section ids");
        if (cJSON_GetArraySize(pg) == 0)
            return cfgparse_fail(p, "expected at least one section id");
        if (cJSON_GetArraySize(pg) > MAX_SECTIONS)
            return cfgparse_fail(p, "at most %d sections are allowed", MAX_SECTIONS);
        page->name = xstrdup(pg->string);
        page->sections = xcalloc((size_t)cJSON_GetArraySize(pg), sizeof(char *));
        cJSON_ArrayForEach(sec, pg)
        {
            size_t sec_at = cfgparse_path_index(p, i++);
            if (!cJSON_IsString(sec) || !section_ok(sec->valuestring))
                return cfgparse_fail(p, "expected a section id ([A-Za-z0-9_-]{1,%d})",
                                     ID_MAX_CHARS);
            if (agentcfg_page_has_section(page, sec->valuestring))
                return cfgparse_fail(p, "duplicate section \"%s\"", sec->valuestring);
            page->sections[page->n_sections++] = xstrdup(sec->valuestring);
            cfgparse_path_pop(p, sec_at);
        }
        cfgparse_path_pop(p, at);
    }
    cfgparse_path_pop(p, saved);
    return 0;
}

/*
 * env or headers: an object of strings, stored as "<name><sep><value>". name_ok and value_ok
 * check names and values; what names the kind of entry in messages.
 */
static int parse_pairs(cfgparse_t *p, const cJSON *j, const char *key, const char *sep,
                       cfgparse_ok_fn name_ok, cfgparse_ok_fn value_ok, char ***out, size_t *n_out)
{
    const cJSON *e;
    size_t saved = cfgparse_path_key(p, key);
    int rc;

    if (!cJSON_IsObject(j))
        return cfgparse_fail_type(p, j, "an object of strings");
    if ((rc = cfgparse_check_keys(p, j, NULL)) != 0)
        return rc;
    if (cJSON_GetArraySize(j) > CFGPARSE_MAX_LIST_ITEMS)
        return cfgparse_fail(p, "at most %d entries are allowed", CFGPARSE_MAX_LIST_ITEMS);
    *out = xcalloc((size_t)cJSON_GetArraySize(j), sizeof(char *));
    cJSON_ArrayForEach(e, j)
    {
        size_t at = cfgparse_path_key(p, e->string);
        if (!name_ok(e->string))
            return cfgparse_fail(p, "invalid name");
        if (!cJSON_IsString(e))
            return cfgparse_fail_type(p, e, "a string");
        if (value_ok != NULL && !value_ok(e->valuestring))
            return cfgparse_fail(p, "the value must not contain line breaks");
        char *pair = xmalloc(strlen(e->string) + strlen(sep) + strlen(e->valuestring) + 1);
        sprintf(pair, "%s%s%s", e->string, sep, e->valuestring);
        (*out)[(*n_out)++] = pair;
        cfgparse_path_pop(p, at);
    }
    cfgparse_path_pop(p, saved);
    return 0;
}

static int parse_mcp_server(cfgparse_t *p, const cJSON *j, agent_mcp_server_t *srv)
{
    static const char *const keys[] = {"command", "args", "env", "url", "headers", "type", NULL};
    const cJSON *cmd = cfgparse_get(j, "command"), *url = cfgparse_get(j, "url"),
                *type = cfgparse_get(j, "type");
    const cJSON *extra;
    int rc;

    if (!cJSON_IsObject(j))
        return cfgparse_fail_type(p, j, "an object");
    if ((rc = cfgparse_check_keys(p, j, keys)) != 0)
        return rc;
    if (cmd != NULL && url != NULL)
        return cfgparse_fail(p, "give either \"command\" (stdio) or \"url\" (HTTP), not both");
    if (cmd == NULL && url == NULL)
        return cfgparse_fail(p, "expected \"command\" (stdio) or \"url\" (HTTP)");
    if (type != NULL) {
        size_t at = cfgparse_path_key(p, "type");
        if (!cJSON_IsString(type))
            return cfgparse_fail_type(p, type, "a string");
        bool stdio = strcmp(type->valuestring, "stdio") == 0;
        bool http = strcmp(type->valuestring, "http") == 0 ||
                    strcmp(type->valuestring, "streamable-http") == 0;
        if (!stdio && !http)
            return cfgparse_fail(p,
                                 "unsupported transport \"%s\" (expected stdio, http or "
                                 "streamable-http)",
                                 type->valuestring);
        if (stdio != (cmd != NULL))
            return cfgparse_fail(p, "\"%s\" does not match the %s given", type->valuestring,
                                 cmd ? "command" : "url");
        cfgparse_path_pop(p, at);
    }
    if (cmd != NULL) {
        if ((extra = cfgparse_get(j, "headers")) != NULL) {
            cfgparse_path_key(p, "headers");
            return cfgparse_fail(p, "only allowed with \"url\"");
        }
        if ((rc = cfgparse_get_string(p, j, "command", true, cfgparse_nonempty_ok,
                                      "a non-empty string", &srv->command)) != 0)
            return rc;
        if (cfgparse_get(j, "args") != NULL &&
            (rc = cfgparse_strv(p, j, "args", NULL, "an array of strings", "a string", &srv->args,
                                &srv->n_args)) != 0)
            return rc;
        if ((extra = cfgparse_get(j, "env")) != NULL &&
            (rc = parse_pairs(p, extra, "env", "=", env_name_ok, NULL, &srv->env, &srv->n_env)) !=
                0)
            return rc;
        return 0;
    }
    if ((extra = cfgparse_get(j, "args")) != NULL || (extra = cfgparse_get(j, "env")) != NULL) {
        cfgparse_path_key(p, extra->string);
        return cfgparse_fail(p, "only allowed with \"command\"");
    }
    if ((rc = cfgparse_get_string(p, j, "url", true, http_url_ok, "an http:// or https:// URL",
                                  &srv->url)) != 0)
        return rc;
    if ((extra = cfgparse_get(j, "headers")) != NULL &&
        (rc = parse_pairs(p, extra, "headers", ": ", header_name_ok, header_value_ok, &srv->headers,
                          &srv->n_headers)) != 0)
        return rc;
    return 0;
}

static int parse_mcp_servers(cfgparse_t *p, const cJSON *root, agentcfg_t *ac)
{
    const cJSON *j = cfgparse_get(root, "mcpServers"), *s;
    size_t saved;
    int rc;

    if (j == NULL)
        return 0;
    saved = cfgparse_path_key(p, "mcpServers");
    if (!cJSON_IsObject(j))
        return cfgparse_fail_type(p, j, "an object");
    if ((rc = cfgparse_check_keys(p, j, NULL)) != 0)
        return rc;
    if (cJSON_GetArraySize(j) > MAX_MCP_SERVERS)
        return cfgparse_fail(p, "at most %d servers are allowed", MAX_MCP_SERVERS);
    ac->mcp_servers = xcalloc((size_t)cJSON_GetArraySize(j), sizeof(*ac->mcp_servers));
    cJSON_ArrayForEach(s, j)
    {
        agent_mcp_server_t *srv = &ac->mcp_servers[ac->n_mcp_servers++];
        size_t at = cfgparse_path_key(p, s->string);
        if (!str_is_id(s->string, strlen(s->string), 1, ALIAS_MAX_CHARS))
            return cfgparse_fail(p, "invalid server alias (expected [A-Za-z0-9_-]{1,%d})",
                                 ALIAS_MAX_CHARS);
        srv->alias = xstrdup(s->string);
        if ((rc = parse_mcp_server(p, s, srv)) != 0)
            return rc;
        cfgparse_path_pop(p, at);
    }
    cfgparse_path_pop(p, saved);
    return 0;
}

/* tools.<key>: an array of patterns, or the n_defaults defaults when left out. */
static int parse_globs(cfgparse_t *p, const cJSON *tools, const char *key,
                       const char *const *defaults, size_t n_defaults, agent_tool_globs_t *g)
{
    if (tools == NULL || cfgparse_get(tools, key) == NULL) {
        g->globs = xcalloc(n_defaults + 1, sizeof(char *));
        for (g->n = 0; g->n < n_defaults; g->n++)
            g->globs[g->n] = xstrdup(defaults[g->n]);
        return 0;
    }
    return cfgparse_strv(p, tools, key, glob_ok, "an array of tool name patterns",
                         "a tool name pattern (a non-empty string without spaces; '*' matches any "
                         "run of characters)",
                         &g->globs, &g->n);
}

/* The tools offered on each surface; postcall's default needs postcall.crm (parsed before). */
static int parse_tools(cfgparse_t *p, const cJSON *root, agentcfg_t *ac)
{
    static const char *const keys[] = {"voice", "chat", "agent", "phone", "postcall", NULL};
    static const char *const any[] = {"*"};
    static const char *const phone[] = {"getNextResponseFromSupervisor", "transferCall", "endCall"};
    const cJSON *j = cfgparse_get(root, "tools");
    size_t saved = cfgparse_path_key(p, "tools");
    char crm_glob[ALIAS_MAX_CHARS + 4];
    const char *crm[] = {crm_glob};
    int rc;

    snprintf(crm_glob, sizeof(crm_glob), "%s__*", ac->postcall.crm ? ac->postcall.crm : "");
    if (j != NULL && !cJSON_IsObject(j))
        return cfgparse_fail_type(p, j, "an object");
    if ((j != NULL && (rc = cfgparse_check_keys(p, j, keys)) != 0) ||
        (rc = parse_globs(p, j, "voice", any, 1, &ac->tools_voice)) != 0 ||
        (rc = parse_globs(p, j, "chat", any, 1, &ac->tools_chat)) != 0 ||
        (rc = parse_globs(p, j, "agent", any, 1, &ac->tools_agent)) != 0 ||
        (rc = parse_globs(p, j, "phone", phone, ARRAY_LEN(phone), &ac->tools_phone)) != 0 ||
        (rc = parse_globs(p, j, "postcall", crm, ac->postcall.crm ? 1 : 0, &ac->tools_postcall)) !=
            0)
        return rc;
    cfgparse_path_pop(p, saved);
    return 0;
}

static int parse_root(cfgparse_t *p, const cJSON *root, agentcfg_t *ac)
{
    static const char *const keys[] = {"company",
                                       "brief",
                                       "brief_file",
                                       "services",
                                       "hours",
                                       "voice",
                                       "instructions_extra",
                                       "pages",
                                       "mcpServers",
                                       "tools",
                                       "phone",
                                       "postcall",
                                       "publicKey",
                                       "apiSecret",
                                       "jwtSecret",
                                       "allowedOrigins",
                                       "phoneNumbers",
                                       "maxSessions",
                                       NULL};
    int rc;

    if (!cJSON_IsObject(root))
        return cfgparse_fail_type(p, root, "an object at the top level");
    if ((rc = cfgparse_check_keys(p, root, keys)) != 0 || (rc = parse_company(p, root, ac)) != 0 ||
        (rc = parse_brief(p, root, ac)) != 0 || (rc = parse_services(p, root, ac)) != 0 ||
        (rc = parse_hours(p, root, ac)) != 0 ||
        (rc = cfgparse_get_string(p, root, "voice", false, voice_ok,
                                  "a voice name ([A-Za-z0-9_-]{1,32})", &ac->voice)) != 0 ||
        (rc = cfgparse_get_string(p, root, "instructions_extra", false, NULL, "a string",
                                  &ac->instructions_extra)) != 0 ||
        (rc = parse_pages(p, root, ac)) != 0 || (rc = parse_mcp_servers(p, root, ac)) != 0 ||
        (rc = tenantkeys_parse_calls(p, root, ac)) != 0 || (rc = parse_tools(p, root, ac)) != 0 ||
        (rc = tenantkeys_parse_access(p, root, ac)) != 0)
        return rc;
    if (ac->company_phone == NULL)
        ac->company_phone = xstrdup("");
    if (ac->company_email == NULL)
        ac->company_email = xstrdup("");
    if (ac->company_timezone == NULL)
        ac->company_timezone = xstrdup(DEFAULT_TIMEZONE);
    if (ac->voice == NULL)
        ac->voice = xstrdup(DEFAULT_VOICE);
    return 0;
}

int agentcfg_parse(agentcfg_t *ac, const char *json, size_t len, const char *base_dir, char *err,
                   size_t errlen)
{
    cfgparse_t p = {.err = err, .errlen = errlen, .base_dir = base_dir};
    const char *end = NULL;
    agentcfg_t tmp;
    cJSON *root;
    int rc;

    memset(ac, 0, sizeof(*ac));
    memset(&tmp, 0, sizeof(tmp));
    if (errlen > 0)
        err[0] = '\0';
    root = cJSON_ParseWithLengthOpts(json, len, &end, false);
    if (root != NULL) {
        /* cJSON stops after the first value; anything but white space after it is an error. */
        while (end < json + len && strchr(" \t\r\n", *end) != NULL && *end != '\0')
            end++;
        if (end < json + len) {
            cJSON_Delete(root);
            root = NULL;
        }
    }
    if (root == NULL) {
        int line = 1, col = 1;
        for (const char *c = json; end != NULL && c < end && c < json + len; c++) {
            col = *c == '\n' ? 1 : col + 1;
            line += *c == '\n';
        }
        return cfgparse_fail(&p, "invalid JSON at line %d, column %d", line, col);
    }
    rc = parse_root(&p, root, &tmp);
    cJSON_Delete(root);
    if (rc != 0) {
        agentcfg_free(&tmp);
        return rc;
    }
    *ac = tmp;
    return 0;
}

int agentcfg_load(agentcfg_t *ac, const char *path, char *err, size_t errlen)
{
    char *text = NULL, *dir;
    const char *why, *slash;
    size_t len = 0;
    int rc;

    if (path == NULL)
        return agentcfg_parse(ac, agentcfg_demo_json, strlen(agentcfg_demo_json), NULL, err,
                              errlen);
    memset(ac, 0, sizeof(*ac));
    why = cfgparse_read_text_file(path, AGENTCFG_MAX_FILE_BYTES, &text, &len);
    if (why != NULL) {
        if (errlen > 0)
            snprintf(err, errlen, "config: cannot read \"%s\": %s", path, why);
        return -EINVAL;
    }
    slash = strrchr(path, '/');
    dir = slash == NULL ? xstrdup(".") : xstrndup(path, slash == path ? 1 : (size_t)(slash - path));
    rc = agentcfg_parse(ac, text, len, dir, err, errlen);
    free(dir);
    free(text);
    return rc;
}

void agentcfg_free(agentcfg_t *ac)
{
    free(ac->company_name);
    free(ac->company_phone);
    free(ac->company_email);
    free(ac->company_timezone);
    free(ac->brief);
    for (size_t i = 0; i < ac->n_services; i++) {
        free(ac->services[i].name);
        free(ac->services[i].price);
    }
    free(ac->services);
    free(ac->voice);
    free(ac->instructions_extra);
    for (size_t i = 0; i < ac->n_pages; i++) {
        free(ac->pages[i].name);
        cfgparse_strv_free(ac->pages[i].sections, ac->pages[i].n_sections);
    }
    free(ac->pages);
    for (size_t i = 0; i < ac->n_mcp_servers; i++) {
        agent_mcp_server_t *s = &ac->mcp_servers[i];
        free(s->alias);
        free(s->command);
        cfgparse_strv_free(s->args, s->n_args);
        cfgparse_strv_free(s->env, s->n_env);
        free(s->url);
        cfgparse_strv_free(s->headers, s->n_headers);
    }
    free(ac->mcp_servers);
    cfgparse_strv_free(ac->tools_voice.globs, ac->tools_voice.n);
    cfgparse_strv_free(ac->tools_chat.globs, ac->tools_chat.n);
    cfgparse_strv_free(ac->tools_agent.globs, ac->tools_agent.n);
    cfgparse_strv_free(ac->tools_phone.globs, ac->tools_phone.n);
    cfgparse_strv_free(ac->tools_postcall.globs, ac->tools_postcall.n);
    tenantkeys_free(ac);
    memset(ac, 0, sizeof(*ac));
}

const agent_page_t *agentcfg_page(const agentcfg_t *ac, const char *name)
{
    for (size_t i = 0; i < ac->n_pages; i++)
        if (strcmp(ac->pages[i].name, name) == 0)
            return &ac->pages[i];
    return NULL;
}

bool agentcfg_page_has_section(const agent_page_t *page, const char *section)
{
    for (size_t i = 0; i < page->n_sections; i++)
        if (strcmp(page->sections[i], section) == 0)
            return true;
    return false;
}

/*
 * Matches s against pattern p where '*' matches any run of characters. On a mismatch it retries
 * from the last '*', one character further into s: linear in practice, never exponential.
 */
static bool glob_match(const char *p, const char *s)
{
    const char *star = NULL, *resume = NULL;

    while (*s != '\0') {
        if (*p == '*') {
            star = p++;
            resume = s;
        } else if (*p == *s) {
            p++;
            s++;
        } else if (star != NULL) {
            p = star + 1;
            s = ++resume;
        } else {
            return false;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

bool agentcfg_tool_allowed(const agent_tool_globs_t *g, const char *name)
{
    for (size_t i = 0; i < g->n; i++)
        if (glob_match(g->globs[i], name))
            return true;
    return false;
}

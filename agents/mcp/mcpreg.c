/*
 * The registry of MCP tools exposed to the supervisor (mcp.h). The current snapshot is an
 * immutable array; a publisher builds a new one from the old (the other aliases' tools kept as
 * they are, its own replaced) and swaps the pointer, all under reg_lock. A reader takes a
 * reference under the same lock and reads the snapshot without it. Publishing happens when a
 * list changes (rare); reading once per supervisor run; the lock is held for a pointer and a
 * count, so neither side waits for long, and no reader ever sees a half-built table.
 * Thread: any.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "agents/mcp/mcp_int.h"
#include "base/util.h"

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static mcpreg_snap_t reg_empty = {.refs = 1}; /* never freed */
static mcpreg_snap_t *reg_cur = &reg_empty;   /* {reg_lock} */

static void mcpreg_snap_free(mcpreg_snap_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->tools[i].tenant);
        free(s->tools[i].alias);
        free(s->tools[i].original);
        cJSON_Delete(s->tools[i].def);
        actor_unref(s->tools[i].server);
    }
    free(s->tools);
    free(s);
}

mcpreg_snap_t *mcpreg_acquire(void)
{
    pthread_mutex_lock(&reg_lock);
    mcpreg_snap_t *s = reg_cur;
    s->refs++;
    pthread_mutex_unlock(&reg_lock);
    return s;
}

void mcpreg_release(mcpreg_snap_t *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&reg_lock);
    bool last = --s->refs == 0;
    pthread_mutex_unlock(&reg_lock);
    if (last && s != &reg_empty)
        mcpreg_snap_free(s);
}

bool mcpreg_serves(const mcpreg_tool_t *tool, const tenant_t *t)
{
    if (strcmp(tool->tenant, t->id) != 0)
        return false;
    for (size_t i = 0; i < t->cfg.n_mcp_servers; i++) {
        const agent_mcp_server_t *srv = &t->cfg.mcp_servers[i];
        if (strcmp(srv->alias, tool->alias) == 0)
            return mcp_server_key(srv) == tool->key;
    }
    return false;
}

const mcpreg_tool_t *mcpreg_find(const mcpreg_snap_t *s, const tenant_t *t, const char *name)
{
    for (size_t i = 0; s && i < s->n; i++)
        if (strcmp(s->tools[i].exposed, name) == 0 && mcpreg_serves(&s->tools[i], t))
            return &s->tools[i];
    return NULL;
}

static void mcpreg_copy(mcpreg_tool_t *dst, const mcpreg_tool_t *src)
{
    *dst = *src;
    dst->tenant = xstrdup(src->tenant);
    dst->alias = xstrdup(src->alias);
    dst->original = xstrdup(src->original);
    dst->def = cJSON_Duplicate(src->def, true);
    actor_ref(dst->server);
}

/* The next snapshot: everything of old except server's tools, with room for extra more. */
static mcpreg_snap_t *mcpreg_without(const mcpreg_snap_t *old, const actor_t *server, size_t extra)
{
    mcpreg_snap_t *s = xcalloc(1, sizeof(*s));
    s->refs = 1;
    s->tools = xcalloc(old->n + extra + 1, sizeof(*s->tools));
    for (size_t i = 0; i < old->n; i++)
        if (old->tools[i].server != server)
            mcpreg_copy(&s->tools[s->n++], &old->tools[i]);
    return s;
}

/* Swaps in s and drops the registry's reference to the old snapshot. Caller holds reg_lock. */
static mcpreg_snap_t *mcpreg_swap_locked(mcpreg_snap_t *s)
{
    mcpreg_snap_t *old = reg_cur;
    reg_cur = s;
    return --old->refs == 0 && old != &reg_empty ? old : NULL;
}

/*
 * mcpname's "is this name taken" for a server publishing (arg): by another alias of its tenant,
 * or by one of its own tools already named. Another client of the same alias (the old or new
 * definition of a reloaded server) does not count: no run is offered both.
 */
typedef struct taken_arg {
    const mcpreg_snap_t *snap;
    const char *tenant;
    const char *alias;
    const actor_t *server;
} taken_arg_t;

static bool mcpreg_taken(void *arg, const char *name)
{
    const taken_arg_t *a = arg;
    for (size_t i = 0; i < a->snap->n; i++) {
        const mcpreg_tool_t *t = &a->snap->tools[i];
        if (strcmp(t->exposed, name) == 0 && strcmp(t->tenant, a->tenant) == 0 &&
            (t->server == a->server || strcmp(t->alias, a->alias) != 0))
            return true;
    }
    return false;
}

static cJSON *mcpreg_def(const char *exposed, const mcpreg_entry_t *e)
{
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "type", "function");
    cJSON *fn = cJSON_AddObjectToObject(t, "function");
    cJSON_AddStringToObject(fn, "name", exposed);
    cJSON_AddStringToObject(fn, "description", e->description ? e->description : "");
    cJSON *params = cJSON_IsObject(e->input_schema) ? cJSON_Duplicate(e->input_schema, true)
                                                    : cJSON_CreateObject();
    if (!cJSON_HasObjectItem(params, "type"))
        cJSON_AddStringToObject(params, "type", "object");
    if (!cJSON_HasObjectItem(params, "properties"))
        cJSON_AddObjectToObject(params, "properties");
    cJSON_AddItemToObject(fn, "parameters", params);
    return t;
}

void mcpreg_publish(const char *tenant, const char *alias, uint64_t key, actor_t *server,
                    const mcpreg_entry_t *entries, size_t n, char (*exposed)[TOOL_NAME_MAX + 1])
{
    pthread_mutex_lock(&reg_lock);
    mcpreg_snap_t *s = mcpreg_without(reg_cur, server, n);
    taken_arg_t ta = {s, tenant, alias, server};
    for (size_t i = 0; i < n; i++) {
        mcpreg_tool_t *t = &s->tools[s->n];
        mcpname_expose(alias, entries[i].original, mcpreg_taken, &ta, t->exposed);
        str_copy(exposed[i], t->exposed, TOOL_NAME_MAX + 1);
        t->tenant = xstrdup(tenant);
        t->alias = xstrdup(alias);
        t->key = key;
        t->original = xstrdup(entries[i].original);
        t->def = mcpreg_def(t->exposed, &entries[i]);
        actor_ref(server);
        t->server = server;
        s->n++;
    }
    mcpreg_snap_t *dead = mcpreg_swap_locked(s);
    pthread_mutex_unlock(&reg_lock);
    if (dead)
        mcpreg_snap_free(dead);
}

void mcpreg_withdraw(const actor_t *server)
{
    pthread_mutex_lock(&reg_lock);
    mcpreg_snap_t *dead = mcpreg_swap_locked(mcpreg_without(reg_cur, server, 0));
    pthread_mutex_unlock(&reg_lock);
    if (dead)
        mcpreg_snap_free(dead);
}

void mcpreg_clear(void)
{
    pthread_mutex_lock(&reg_lock);
    reg_empty.refs++;
    mcpreg_snap_t *dead = mcpreg_swap_locked(&reg_empty);
    pthread_mutex_unlock(&reg_lock);
    if (dead)
        mcpreg_snap_free(dead);
}

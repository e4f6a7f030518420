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

const mcpreg_tool_t *mcpreg_find(const mcpreg_snap_t *s, const char *tenant, const char *name)
{
    for (size_t i = 0; s && i < s->n; i++)
        if (strcmp(s->tools[i].exposed, name) == 0 && strcmp(s->tools[i].tenant, tenant) == 0)
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

/* The next snapshot: everything of old except tenant's alias's tools, with room for extra more. */
static mcpreg_snap_t *mcpreg_without(const mcpreg_snap_t *old, const char *tenant,
                                     const char *alias, size_t extra)
{
    mcpreg_snap_t *s = xcalloc(1, sizeof(*s));
    s->refs = 1;
    s->tools = xcalloc(old->n + extra + 1, sizeof(*s->tools));
    for (size_t i = 0; i < old->n; i++)
        if (strcmp(old->tools[i].alias, alias) != 0 || strcmp(old->tools[i].tenant, tenant) != 0)
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

/* mcpname's "is this name taken" within one tenant (arg). */
typedef struct taken_arg {
    const mcpreg_snap_t *snap;
    const char *tenant;
} taken_arg_t;

static bool mcpreg_taken(void *arg, const char *name)
{
    const taken_arg_t *t = arg;
    return mcpreg_find(t->snap, t->tenant, name) != NULL;
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

void mcpreg_publish(const char *tenant, const char *alias, actor_t *server,
                    const mcpreg_entry_t *entries, size_t n, char (*exposed)[TOOL_NAME_MAX + 1])
{
    pthread_mutex_lock(&reg_lock);
    mcpreg_snap_t *s = mcpreg_without(reg_cur, tenant, alias, n);
    taken_arg_t ta = {s, tenant};
    for (size_t i = 0; i < n; i++) {
        mcpreg_tool_t *t = &s->tools[s->n];
        mcpname_expose(alias, entries[i].original, mcpreg_taken, &ta, t->exposed);
        str_copy(exposed[i], t->exposed, TOOL_NAME_MAX + 1);
        t->tenant = xstrdup(tenant);
        t->alias = xstrdup(alias);
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

void mcpreg_withdraw(const char *tenant, const char *alias)
{
    pthread_mutex_lock(&reg_lock);
    mcpreg_snap_t *dead = mcpreg_swap_locked(mcpreg_without(reg_cur, tenant, alias, 0));
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

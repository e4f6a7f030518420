/*
 * The service's MCP clients (mcp.h "The service's clients"): which client serves which tenant's
 * server, and for how long.
 *
 * A client is named by its tenant and the key of its server definition. Its users are the tenant
 * snapshots (tenant_t) that name a server with that key: mcp_sync() counts each published
 * snapshot once, when it first sees it, and the snapshot's free (tenants_on_free ->
 * mcp_tenant_freed) uncounts it. So a client lives exactly as long as some snapshot that uses it
 * is referenced, by the registry or by a run, call or session that started with it; the last
 * one to let go shuts it down. Snapshots are told apart by address: a snapshot is removed from
 * `seen` before its memory is freed, so an address reused by a later snapshot is a new one.
 *
 * Everything here is under set_lock: mcp_sync() on main, mcp_tenant_freed() on whichever thread
 * drops a snapshot, mcp_metrics() on a scraping network thread. The lock is never held around
 * a tenant_unref() (which could call mcp_tenant_freed() again) nor around a send that could
 * wait. Clients are few (MCP_MAX_CLIENTS) and reloads rare, so the lists are plain arrays.
 */
#include <ck_pr.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agents/mcp/mcp_int.h"
#include "base/config.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"

#define MCPSET_STOP_POLL_US 10000
#define FNV64_OFFSET        14695981039346656037ull
#define FNV64_PRIME         1099511628211ull

typedef struct client {
    char tenant[TENANT_ID_MAX + 1];
    char *alias;
    uint64_t key;
    uint64_t seq;   /* spawn order: the newest of a (tenant, alias) is the one /metrics shows */
    actor_t *actor; /* the set's reference */
    size_t users;   /* snapshots in `seen` naming this definition */
} client_t;

static pthread_mutex_t set_lock = PTHREAD_MUTEX_INITIALIZER;
static client_t *clients;     /* {set_lock} */
static size_t n_clients;      /* {set_lock} */
static const tenant_t **seen; /* {set_lock} snapshots counted as users; compared, never read */
static size_t n_seen, cap_seen;
static uint64_t next_seq; /* {set_lock} */
static bool closed;       /* {set_lock} mcp_stop_all() has run */

/* ---- Keys ------------------------------------------------------------------------------------ */

static uint64_t key_add(uint64_t h, const char *s)
{
    size_t n = s ? strlen(s) + 1 : 0; /* NULL and "" differ */
    for (size_t i = 0; i < sizeof(n); i++)
        h = (h ^ ((n >> (8 * i)) & 0xff)) * FNV64_PRIME;
    for (size_t i = 0; s && s[i]; i++)
        h = (h ^ (uint8_t)s[i]) * FNV64_PRIME;
    return h;
}

static uint64_t key_add_vec(uint64_t h, char *const *v, size_t n)
{
    h = key_add(h, n ? "v" : "");
    for (size_t i = 0; i < n; i++)
        h = key_add(h, v[i]);
    return key_add(h, NULL);
}

uint64_t mcp_server_key(const agent_mcp_server_t *s)
{
    uint64_t h = FNV64_OFFSET;
    h = key_add(h, s->alias);
    h = key_add(h, s->command);
    h = key_add(h, s->url);
    h = key_add_vec(h, s->args, s->n_args);
    h = key_add_vec(h, s->env, s->n_env);
    return key_add_vec(h, s->headers, s->n_headers);
}

/* ---- The table (set_lock held) --------------------------------------------------------------- */

static client_t *client_find(const char *tenant, uint64_t key)
{
    for (size_t i = 0; i < n_clients; i++)
        if (clients[i].key == key && strcmp(clients[i].tenant, tenant) == 0)
            return &clients[i];
    return NULL;
}

static bool seen_has(const tenant_t *t, size_t *at)
{
    for (size_t i = 0; i < n_seen; i++) {
        if (seen[i] == t) {
            if (at)
                *at = i;
            return true;
        }
    }
    return false;
}

/* A new client for tenant t's server srv, or false when none can be started. */
static bool client_start(const tenant_t *t, const agent_mcp_server_t *srv, uint64_t key)
{
    if (n_clients == MCP_MAX_CLIENTS) {
        log_error("mcp.too_many_clients", LOG_S("tenant", t->id), LOG_S("alias", srv->alias),
                  LOG_I("max", MCP_MAX_CLIENTS));
        return true; /* not started, and not retried until the tenant changes: logged once */
    }
    mcp_opts_t o = {.server = srv,
                    .tenant = t->id,
                    .publish = true,
                    .restart = true,
                    .call_timeout_ms = (uint32_t)g_config->mcp_call_timeout_ms};
    actor_t *a = mcp_spawn(&o);
    if (a == NULL)
        return false;
    if (n_clients == 0)
        clients = xcalloc(MCP_MAX_CLIENTS, sizeof(*clients));
    client_t *c = &clients[n_clients++];
    str_copy(c->tenant, t->id, sizeof(c->tenant));
    c->alias = xstrdup(srv->alias);
    c->key = key;
    c->seq = ++next_seq;
    c->actor = a;
    c->users = 1;
    log_info("mcp.client_started", LOG_S("tenant", t->id), LOG_S("alias", srv->alias),
             LOG_I("generation", t->generation));
    return true;
}

/* Takes entry i out of the table; returns its actor (the set's reference) for the caller to
 * shut down outside the lock. */
static actor_t *client_remove(size_t i)
{
    actor_t *a = clients[i].actor;
    log_info("mcp.client_retired", LOG_S("tenant", clients[i].tenant),
             LOG_S("alias", clients[i].alias));
    free(clients[i].alias);
    clients[i] = clients[--n_clients];
    return a;
}

static void client_shutdown(actor_t *a)
{
    actor_send(a, msg_new(MCP_MSG_SHUTDOWN, sizeof(msg_t)));
    actor_unref(a);
}

/* ---- The set --------------------------------------------------------------------------------- */

int mcp_sync(tenant_t *const *tenants, size_t n)
{
    int rc = 0;
    pthread_mutex_lock(&set_lock);
    for (size_t k = 0; k < n && !closed; k++) {
        const tenant_t *t = tenants[k];
        if (t->cfg.n_mcp_servers == 0 || seen_has(t, NULL))
            continue;
        if (n_seen == cap_seen) {
            cap_seen = cap_seen ? 2 * cap_seen : 16;
            seen = xrealloc(seen, cap_seen * sizeof(*seen));
        }
        seen[n_seen++] = t;
        for (size_t i = 0; i < t->cfg.n_mcp_servers; i++) {
            const agent_mcp_server_t *srv = &t->cfg.mcp_servers[i];
            uint64_t key = mcp_server_key(srv);
            client_t *c = client_find(t->id, key);
            if (c)
                c->users++; /* unchanged: the same client, no restart */
            else if (!client_start(t, srv, key))
                rc = -EAGAIN;
        }
    }
    pthread_mutex_unlock(&set_lock);
    return rc;
}

void mcp_tenant_freed(const tenant_t *t)
{
    if (t->cfg.n_mcp_servers == 0)
        return;
    actor_t **gone = xcalloc(t->cfg.n_mcp_servers, sizeof(*gone));
    size_t n_gone = 0, at;
    pthread_mutex_lock(&set_lock);
    if (!closed && seen_has(t, &at)) {
        seen[at] = seen[--n_seen];
        for (size_t i = 0; i < t->cfg.n_mcp_servers; i++) {
            client_t *c = client_find(t->id, mcp_server_key(&t->cfg.mcp_servers[i]));
            if (c && --c->users == 0)
                gone[n_gone++] = client_remove((size_t)(c - clients));
        }
    }
    pthread_mutex_unlock(&set_lock);
    for (size_t i = 0; i < n_gone; i++)
        client_shutdown(gone[i]);
    free(gone);
}

void mcp_stop_all(uint64_t wait_ms)
{
    pthread_mutex_lock(&set_lock);
    closed = true;
    client_t *all = clients;
    size_t n = n_clients;
    clients = NULL;
    n_clients = 0;
    free(seen);
    seen = NULL;
    n_seen = cap_seen = 0;
    pthread_mutex_unlock(&set_lock);
    mcpreg_clear(); /* no new calls; the snapshot's references to the clients go */
    for (size_t i = 0; i < n; i++)
        actor_send(all[i].actor, msg_new(MCP_MSG_SHUTDOWN, sizeof(msg_t)));
    uint64_t deadline = clock_now_ns() + wait_ms * NS_PER_MS;
    while (mcp_live_clients() > 0 && clock_now_ns() < deadline)
        usleep(MCPSET_STOP_POLL_US);
    for (size_t i = 0; i < n; i++) {
        actor_unref(all[i].actor);
        free(all[i].alias);
    }
    free(all);
}

/* Whether a client of the same tenant and alias was started after clients[i]. */
static bool client_superseded(size_t i)
{
    for (size_t k = 0; k < n_clients; k++)
        if (clients[k].seq > clients[i].seq && strcmp(clients[k].alias, clients[i].alias) == 0 &&
            strcmp(clients[k].tenant, clients[i].tenant) == 0)
            return true;
    return false;
}

void mcp_metrics(sbuf_t *out, void *arg)
{
    (void)arg;
    sbuf_t labels = SBUF_INIT;
    metrics_put_help(out, "switchboard_mcp_server_up",
                     "Whether the MCP server of this tenant and alias is connected (1) or not (0).",
                     "gauge");
    pthread_mutex_lock(&set_lock);
    for (size_t i = 0; i < n_clients; i++) {
        if (client_superseded(i))
            continue;
        const mcp_t *m = (const mcp_t *)clients[i].actor; /* the table's reference keeps it */
        sbuf_reset(&labels);
        metrics_put_label(&labels, "tenant", clients[i].tenant);
        metrics_put_label(&labels, "alias", clients[i].alias);
        sbuf_printf(out, "switchboard_mcp_server_up{%s} %d\n", labels.data,
                    ck_pr_load_int((int *)&m->up));
    }
    pthread_mutex_unlock(&set_lock);
    sbuf_destroy(&labels);
}

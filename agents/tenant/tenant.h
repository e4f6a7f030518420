/*
 * tenant: the businesses one gateway serves (SPEC 16). A tenant is an immutable, refcounted
 * snapshot of one tenant file (its agent config of SPEC 2.2 plus its keys); the registry is an
 * immutable table of the current snapshots, replaced whole on reload. A live call holds a
 * reference to the snapshot it started with, so a reload never changes a call in progress.
 * It may call agents/config only.
 *
 * Where tenants come from: SWITCHBOARD_CONFIG naming a directory makes every `<id>.json` in it
 * a tenant (id = [a-z0-9-]{1,40}); a file is the one tenant `default`; no config is the built-in
 * demo as `default`. Reload (SIGHUP, a change in the directory) re-reads every file: a changed
 * valid file gets a new snapshot (generation + 1), an unchanged one keeps its snapshot, an
 * invalid one keeps its previous version (logged naming the file, counted in
 * switchboard_tenant_config_errors_total{tenant}), a removed one leaves the table (its live
 * calls keep their snapshot).
 *
 * CONTRACT
 *   Readers (tenants_get, tenants_by_*, tenants_sole, tenants_count, tenants_origin_allowed):
 *   any thread, wait-free apart from the first call on a thread (which registers it, under a
 *   mutex). A reader reads the table inside an epoch section (Concurrency Kit ck_epoch) and
 *   takes a reference to the snapshot it returns before leaving the section; the writer frees
 *   an old table only after ck_epoch_synchronize() has seen every reader that could hold it
 *   leave, so no reader ever waits for a reload or touches freed memory.
 *   Writers (tenants_load, tenants_reload, tenants_destroy): the main thread only, one at a time.
 *   tenant_ref()/tenant_unref(): any thread; the snapshot is freed by the last unref.
 */
#ifndef SB_AGENTS_TENANT_TENANT_H
#define SB_AGENTS_TENANT_TENANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agents/config/agentcfg.h"
#include "base/sbuf.h"

#define TENANT_ID_MAX     40
#define TENANT_DEFAULT_ID "default"
#define TENANT_DIGEST_LEN 16

typedef struct tenant {
    unsigned refs; /* [atomic, any] ck_pr_inc/ck_pr_dec_is_zero; the last unref frees */
    /* Immutable once published: */
    char id[TENANT_ID_MAX + 1];
    uint64_t generation; /* 1 for the first version loaded, + 1 for each change */
    agentcfg_t cfg;
    char *path;                        /* its file; NULL for the built-in demo */
    uint8_t digest[TENANT_DIGEST_LEN]; /* of the file and its brief: "has it changed" */
} tenant_t;

/* Takes a reference to t (NULL-safe). Thread: any. */
void tenant_ref(tenant_t *t);
/* Drops one; the last frees the snapshot (NULL-safe). Thread: any. */
void tenant_unref(tenant_t *t);
/*
 * Calls fn with each snapshot just before it is freed, on the thread that dropped its last
 * reference (any thread), so that what lives as long as a snapshot lives no longer: the MCP
 * clients of its servers (SPEC 16 reload). Every snapshot freed is passed, published or not. fn
 * must not take a reference to t nor keep it; it runs inside tenant_unref(), so it must not wait
 * for a lock held around a tenant_unref(). NULL removes it. Thread: main, before the threads
 * that drop snapshots start.
 */
void tenants_on_free(void (*fn)(const tenant_t *t));
/* The limit of live voice sessions of t: its maxSessions within global_cap. */
int tenant_max_sessions(const tenant_t *t, int global_cap);
/*
 * Whether a browser at origin may act for t (SPEC 16): no Origin (a server), the request's own
 * origin (same_origin, as net says), one of t's allowedOrigins, or, when t lists none, one of
 * SWITCHBOARD_ALLOWED_ORIGINS. Another tenant's origins are never t's. Thread: any.
 */
bool tenant_origin_allowed(const tenant_t *t, const char *origin, bool same_origin);

/* ---- The registry (tenants.c) -------------------------------------------------------------- */

/* The snapshot of tenant id, with a reference for the caller; NULL when unknown. Thread: any. */
tenant_t *tenants_get(const char *id);
/* The tenant whose publicKey is key (a reference), or NULL. Thread: any. */
tenant_t *tenants_by_public_key(const char *key);
/* The tenant whose apiSecret is secret (constant-time comparison; a reference), or NULL. */
tenant_t *tenants_by_api_secret(const char *secret);
/* The tenant one of whose phoneNumbers is e164 (a reference), or NULL. Thread: any. */
tenant_t *tenants_by_phone(const char *e164);
/* The only tenant when there is exactly one (a reference), else NULL. Thread: any. */
tenant_t *tenants_sole(void);
/*
 * Every current snapshot, sorted by id, each with a reference for the caller, in a malloc'd
 * array (*out; free it after dropping the references). Returns how many. Thread: any.
 */
size_t tenants_list(tenant_t ***out);
/* The tenant of a request that names none: the only one, else `default` (a reference), else
 * NULL. Thread: any. */
tenant_t *tenants_default(void);
/* How many tenants are served. Thread: any. */
size_t tenants_count(void);
/* Whether origin is in some tenant's allowedOrigins (compared without case). Thread: any. */
bool tenants_origin_allowed(const char *origin);

/*
 * Loads the tenants of path (a directory of tenant files, one file = `default`, NULL = the
 * built-in demo) and publishes them. Any invalid file, a file name that is not `<id>.json`, or
 * a publicKey, apiSecret or phone number given by two files fails: -EINVAL with a message
 * naming the file(s) in err (start-up exits 2). Thread: main, once, before readers exist.
 */
int tenants_load(const char *path, char *err, size_t errlen);
/*
 * Re-reads what tenants_load() read and publishes the result (see above). Returns the number of
 * files refused (each logged). Thread: main.
 */
int tenants_reload(void);
/* The path tenants_load() was given (NULL for the demo) and whether it is a directory. */
const char *tenants_source(bool *is_dir);
/*
 * Appends switchboard_tenant_config_generation{tenant} and switchboard_tenant_config_errors_total
 * {tenant} (a metric_text_fn; arg unused). Thread: any (the scraping network thread).
 */
void tenants_metrics(sbuf_t *out, void *arg);
/* Unpublishes everything and frees the registry (snapshots live on while referenced). Thread:
 * main, after every other thread has stopped. */
void tenants_destroy(void);

#endif

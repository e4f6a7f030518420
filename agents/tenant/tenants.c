/*
 * The tenant registry (tenant.h): an immutable table of the current snapshots behind one
 * pointer, replaced whole by the main thread.
 *
 * Readers hold a read lock for "load the pointer, look up, take a reference to the tenant", so
 * a writer that swaps the table cannot free it between the two steps: it swaps under the write
 * lock and frees the old table after. Lookups happen per mint, per admission and per request
 * carrying an Origin, never per audio frame, and the lock is uncontended but for a reload. (An
 * epoch scheme, ck_epoch, did the same without the shared lock word, but ThreadSanitizer cannot
 * see its fences and reported every reclamation as a race; this is checked under TSan.)
 */
#include <ck_pr.h>
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "agents/tenant/tenant.h"
#include "agents/tenant/tenantdir.h"
#include "base/config.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/sbuf.h"
#include "base/strmap.h"
#include "base/util.h"

#define WHAT_MAX_CHARS 64
#define PATH_MAX_CHARS 4096

/* One tenant id of the table: its snapshot (NULL while it never loaded) and its history. */
typedef struct entry {
    char id[TENANT_ID_MAX + 1];
    tenant_t *t;         /* the table's reference; NULL: its file never loaded valid */
    uint64_t generation; /* of t, or of the last valid version (0: none) */
    uint64_t errors;     /* reloads that refused its file */
} entry_t;

/* Immutable once published. The maps' values are entry indexes + 1. */
typedef struct table {
    size_t n;
    entry_t *e;  /* sorted by id */
    size_t live; /* entries with a snapshot */
    strmap_t by_id, by_key, by_secret, by_phone;
    strmap_t origins; /* lowercase origin -> (void *)1 */
} table_t;

static pthread_rwlock_t table_lock = PTHREAD_RWLOCK_INITIALIZER;
static table_t *cur; /* [table_lock] written under the write lock, read under the read lock */
static char *source; /* [main] what tenants_load() was given */
static bool source_dir;

static void (*on_free)(const tenant_t *t); /* [main before threads; read by any] */

/* ---- Snapshots ----------------------------------------------------------------------------- */

void tenant_ref(tenant_t *t)
{
    if (t)
        ck_pr_inc_uint(&t->refs);
}

void tenant_unref(tenant_t *t)
{
    bool last = false;
    if (t == NULL)
        return;
    /* The decrement is a full barrier: every use of t by this thread happens before the free
     * by whichever thread drops the last reference. */
    ck_pr_dec_uint_zero(&t->refs, &last);
    if (!last)
        return;
    if (on_free)
        on_free(t);
    agentcfg_free(&t->cfg);
    free(t->path);
    free(t);
}

void tenants_on_free(void (*fn)(const tenant_t *t))
{
    on_free = fn;
}

int tenant_max_sessions(const tenant_t *t, int global_cap)
{
    int own = t ? t->cfg.access.max_sessions : 0;
    return own > 0 && own < global_cap ? own : global_cap;
}

bool tenant_origin_allowed(const tenant_t *t, const char *origin, bool same_origin)
{
    if (origin == NULL || same_origin)
        return true;
    const agent_access_t *a = t ? &t->cfg.access : NULL;
    if (a && a->n_origins > 0) {
        for (size_t i = 0; i < a->n_origins; i++)
            if (strcasecmp(a->origins[i], origin) == 0)
                return true;
        return false;
    }
    /* No list of its own: the gateway's (SWITCHBOARD_ALLOWED_ORIGINS), never another tenant's. */
    if (g_config == NULL)
        return false;
    if (g_config->allow_any_origin)
        return true;
    for (size_t i = 0; i < g_config->n_allowed_origins; i++)
        if (strcasecmp(g_config->allowed_origins[i], origin) == 0)
            return true;
    return false;
}

/* ---- Tables -------------------------------------------------------------------------------- */

static void table_free(table_t *tb)
{
    if (tb == NULL)
        return;
    for (size_t i = 0; i < tb->n; i++)
        tenant_unref(tb->e[i].t);
    free(tb->e);
    strmap_destroy(&tb->by_id);
    strmap_destroy(&tb->by_key);
    strmap_destroy(&tb->by_secret);
    strmap_destroy(&tb->by_phone);
    strmap_destroy(&tb->origins);
    free(tb);
}

/* Builds the maps of a table whose entries are set (and free of conflicts). */
static void table_index(table_t *tb)
{
    strmap_init(&tb->by_id);
    strmap_init(&tb->by_key);
    strmap_init(&tb->by_secret);
    strmap_init(&tb->by_phone);
    strmap_init(&tb->origins);
    for (size_t i = 0; i < tb->n; i++) {
        void *v = (void *)(uintptr_t)(i + 1);
        const tenant_t *t = tb->e[i].t;
        if (t == NULL)
            continue;
        tb->live++;
        const agent_access_t *a = &t->cfg.access;
        strmap_put(&tb->by_id, t->id, v);
        if (a->public_key)
            strmap_put(&tb->by_key, a->public_key, v);
        if (a->api_secret) {
            char tag[2 * TENANT_DIGEST_LEN + 1];
            tenantdir_secret_tag(a->api_secret, tag);
            strmap_put(&tb->by_secret, tag, v);
        }
        for (size_t k = 0; k < a->n_phone_numbers; k++)
            strmap_put(&tb->by_phone, a->phone_numbers[k], v);
        for (size_t k = 0; k < a->n_origins; k++)
            strmap_put(&tb->origins, a->origins[k], (void *)1);
    }
}

/* The current table, read-locked (released by read_end()); NULL when none is loaded. */
static table_t *read_begin(void)
{
    pthread_rwlock_rdlock(&table_lock);
    return cur;
}

static void read_end(void)
{
    pthread_rwlock_unlock(&table_lock);
}

/* The current table, for the writer (main) only: it is the one thread that changes it. */
static table_t *load_cur(void)
{
    return cur;
}

/* Makes tb the current table and frees the one before: no reader can hold it any more. */
static void publish(table_t *tb)
{
    pthread_rwlock_wrlock(&table_lock);
    table_t *old = cur;
    cur = tb;
    pthread_rwlock_unlock(&table_lock);
    if (old)
        table_free(old);
}

/* ---- Readers ------------------------------------------------------------------------------- */

typedef enum { BY_ID, BY_KEY, BY_SECRET, BY_PHONE } by_t;

static tenant_t *lookup(by_t by, const char *key)
{
    if (key == NULL)
        return NULL;
    char tag[2 * TENANT_DIGEST_LEN + 1];
    if (by == BY_SECRET)
        tenantdir_secret_tag(key, tag);
    table_t *tb = read_begin();
    tenant_t *t = NULL;
    if (tb != NULL) {
        const strmap_t *m = by == BY_ID       ? &tb->by_id
                            : by == BY_KEY    ? &tb->by_key
                            : by == BY_SECRET ? &tb->by_secret
                                              : &tb->by_phone;
        uintptr_t i = (uintptr_t)strmap_get(m, by == BY_SECRET ? tag : key);
        t = i ? tb->e[i - 1].t : NULL;
        /* The tag matched: now the secret itself, in constant time. */
        if (t && by == BY_SECRET &&
            (strlen(t->cfg.access.api_secret) != strlen(key) ||
             sodium_memcmp(t->cfg.access.api_secret, key, strlen(key)) != 0))
            t = NULL;
        tenant_ref(t);
    }
    read_end();
    return t;
}

tenant_t *tenants_get(const char *id)
{
    return lookup(BY_ID, id);
}

tenant_t *tenants_by_public_key(const char *key)
{
    return lookup(BY_KEY, key);
}

tenant_t *tenants_by_api_secret(const char *secret)
{
    return secret && secret[0] ? lookup(BY_SECRET, secret) : NULL;
}

tenant_t *tenants_by_phone(const char *e164)
{
    return lookup(BY_PHONE, e164);
}

tenant_t *tenants_sole(void)
{
    table_t *tb = read_begin();
    tenant_t *t = NULL;
    for (size_t i = 0; tb && tb->live == 1 && i < tb->n && t == NULL; i++)
        t = tb->e[i].t;
    tenant_ref(t);
    read_end();
    return t;
}

tenant_t *tenants_default(void)
{
    tenant_t *t = tenants_sole();
    return t ? t : tenants_get(TENANT_DEFAULT_ID);
}

size_t tenants_list(tenant_t ***out)
{
    *out = NULL;
    table_t *tb = read_begin();
    size_t n = 0;
    *out = xcalloc(tb ? tb->live + 1 : 1, sizeof(**out));
    for (size_t i = 0; tb && i < tb->n; i++) {
        if (tb->e[i].t) {
            tenant_ref(tb->e[i].t);
            (*out)[n++] = tb->e[i].t;
        }
    }
    read_end();
    return n;
}

size_t tenants_count(void)
{
    table_t *tb = read_begin();
    size_t n = tb ? tb->live : 0;
    read_end();
    return n;
}

bool tenants_origin_allowed(const char *origin)
{
    if (origin == NULL)
        return false;
    char low[300];
    size_t n = str_copy(low, origin, sizeof(low));
    if (n >= sizeof(low))
        return false;
    for (char *c = low; *c; c++)
        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
    table_t *tb = read_begin();
    bool ok = tb && strmap_get(&tb->origins, low) != NULL;
    read_end();
    return ok;
}

/* Ids are [a-z0-9-]: nothing to escape in the label values. */
void tenants_metrics(sbuf_t *out, void *arg)
{
    (void)arg;
    table_t *tb = read_begin();
    if (tb == NULL) {
        read_end();
        return;
    }
    sbuf_puts(out, "# HELP switchboard_tenant_config_generation Version of each tenant's "
                   "configuration in use (1 = as first loaded).\n"
                   "# TYPE switchboard_tenant_config_generation gauge\n");
    for (size_t i = 0; tb && i < tb->n; i++)
        sbuf_printf(out, "switchboard_tenant_config_generation{tenant=\"%s\"} %llu\n", tb->e[i].id,
                    (unsigned long long)tb->e[i].generation);
    sbuf_puts(out, "# HELP switchboard_tenant_config_errors_total Reloads that refused a tenant's "
                   "file.\n# TYPE switchboard_tenant_config_errors_total counter\n");
    for (size_t i = 0; tb && i < tb->n; i++)
        sbuf_printf(out, "switchboard_tenant_config_errors_total{tenant=\"%s\"} %llu\n",
                    tb->e[i].id, (unsigned long long)tb->e[i].errors);
    read_end();
}

/* ---- Writers ------------------------------------------------------------------------------- */

static const entry_t *find_entry(const table_t *tb, const char *id)
{
    uintptr_t i = tb ? (uintptr_t)strmap_get(&tb->by_id, id) : 0;
    if (i)
        return &tb->e[i - 1];
    /* An id whose file never loaded is not in by_id: look for it by hand (rare). */
    for (size_t k = 0; tb && k < tb->n; k++)
        if (strcmp(tb->e[k].id, id) == 0)
            return &tb->e[k];
    return NULL;
}

static bool stat_dir(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int tenants_load(const char *path, char *err, size_t errlen)
{
    tenantdir_t d;
    bool is_dir = stat_dir(path);
    int rc = tenantdir_read(path, is_dir, &d, err, errlen);
    if (rc != 0)
        return -EINVAL;
    for (size_t i = 0; i < d.n; i++) {
        const tenantdir_file_t *f = &d.files[i];
        if (f->error) {
            if (f->path)
                snprintf(err, errlen, "tenant file \"%s\": %s", f->path, f->error);
            else
                snprintf(err, errlen, "%s", f->error);
            tenantdir_free(&d);
            return -EINVAL;
        }
    }
    tenant_t **set = xcalloc(d.n + 1, sizeof(*set));
    for (size_t i = 0; i < d.n; i++)
        set[i] = d.files[i].t;
    size_t a, b;
    char what[WHAT_MAX_CHARS];
    if (tenantdir_conflict(set, d.n, &a, &b, what, sizeof(what))) {
        snprintf(err, errlen, "tenant files \"%s\" and \"%s\" have the same %s", d.files[a].path,
                 d.files[b].path, what);
        free(set);
        tenantdir_free(&d);
        return -EINVAL;
    }
    free(set);
    if (d.n == 0) {
        snprintf(err, errlen,
                 "SWITCHBOARD_CONFIG: the tenant directory \"%s\" has no <id>.json file", path);
        tenantdir_free(&d);
        return -EINVAL;
    }
    table_t *tb = xcalloc(1, sizeof(*tb));
    tb->e = xcalloc(d.n, sizeof(*tb->e));
    for (size_t i = 0; i < d.n; i++) {
        entry_t *e = &tb->e[tb->n++];
        str_copy(e->id, d.files[i].id, sizeof(e->id));
        e->t = d.files[i].t;
        d.files[i].t = NULL;
        e->t->generation = e->generation = 1;
    }
    tenantdir_free(&d);
    table_index(tb);
    free(source);
    source = path ? xstrdup(path) : NULL;
    source_dir = is_dir;
    publish(tb);
    return 0;
}

const char *tenants_source(bool *is_dir)
{
    if (is_dir)
        *is_dir = source_dir;
    return source;
}

/* Logs why file f was refused and counts it on e. */
static void refused(entry_t *e, const char *file, const char *why)
{
    e->errors++;
    log_error("tenant.config_invalid", LOG_S("tenant", e->id), LOG_S("file", file),
              LOG_S("error", why), LOG_S("kept", e->t ? "previous version" : "none"));
}

/*
 * The entries of the next table from what was read (d) and the current table (old): a changed
 * valid file gets its new snapshot, an unchanged one keeps the old snapshot, an invalid one
 * keeps its previous version. Returns the number of files refused.
 */
static int next_entries(table_t *tb, tenantdir_t *d, const table_t *old, tenant_t **fresh)
{
    int bad = 0;
    tb->e = xcalloc(d->n + 1, sizeof(*tb->e));
    for (size_t i = 0; i < d->n; i++) {
        tenantdir_file_t *f = &d->files[i];
        if (f->id == NULL) {
            log_error("tenant.config_invalid", LOG_S("file", f->path), LOG_S("error", f->error));
            bad++;
            continue;
        }
        entry_t *e = &tb->e[tb->n++];
        const entry_t *prev = find_entry(old, f->id);
        str_copy(e->id, f->id, sizeof(e->id));
        if (prev) {
            e->t = prev->t;
            e->generation = prev->generation;
            e->errors = prev->errors;
        }
        fresh[tb->n - 1] = NULL;
        if (f->t == NULL) {
            tenant_ref(e->t);
            refused(e, f->path ? f->path : f->name, f->error);
            bad++;
        } else if (e->t && memcmp(e->t->digest, f->t->digest, TENANT_DIGEST_LEN) == 0) {
            tenant_ref(e->t); /* unchanged */
        } else {
            f->t->generation = ++e->generation;
            e->t = fresh[tb->n - 1] = f->t;
            f->t = NULL;
        }
    }
    return bad;
}

int tenants_reload(void)
{
    uint64_t t0 = clock_now_ns();
    char err[512];
    tenantdir_t d;
    table_t *old = load_cur();
    if (old == NULL)
        return 0;
    if (tenantdir_read(source, source_dir, &d, err, sizeof(err)) != 0) {
        log_error("tenant.reload_failed", LOG_S("error", err), LOG_S("kept", "every tenant"));
        return 1;
    }
    table_t *tb = xcalloc(1, sizeof(*tb));
    tenant_t **fresh = xcalloc(d.n + 1, sizeof(*fresh)); /* new snapshots by entry */
    int bad = next_entries(tb, &d, old, fresh);
    /* A new version that clashes with another tenant's keys is refused like an invalid file:
     * revert the changed side (both when both changed) until no clash is left. The previous
     * versions never clashed, so this ends. */
    tenant_t **set = xcalloc(tb->n + 1, sizeof(*set));
    for (;;) {
        for (size_t i = 0; i < tb->n; i++)
            set[i] = tb->e[i].t;
        size_t a, b;
        char what[WHAT_MAX_CHARS], why[WHAT_MAX_CHARS + 64];
        if (!tenantdir_conflict(set, tb->n, &a, &b, what, sizeof(what)))
            break;
        size_t pair[2] = {a, b};
        bool any = false;
        for (int k = 0; k < 2; k++) {
            size_t i = pair[k];
            if (fresh[i] == NULL)
                continue;
            entry_t *e = &tb->e[i];
            const entry_t *prev = find_entry(old, e->id);
            tenant_unref(fresh[i]);
            fresh[i] = NULL;
            e->t = prev ? prev->t : NULL;
            e->generation = prev ? prev->generation : 0;
            tenant_ref(e->t);
            snprintf(why, sizeof(why), "the same %s as tenant %s", what, tb->e[pair[1 - k]].id);
            char file[PATH_MAX_CHARS];
            snprintf(file, sizeof(file), "%s/%s.json", source ? source : ".", e->id);
            refused(e, source_dir ? file : source, why);
            bad++;
            any = true;
        }
        if (!any) { /* cannot happen (see above); dropping one side still ends the loop */
            tenant_unref(tb->e[b].t);
            tb->e[b].t = NULL;
        }
    }
    free(set);
    free(fresh);
    for (size_t i = 0; i < old->n; i++)
        if (old->e[i].t && find_entry(tb, old->e[i].id) == NULL)
            log_info("tenant.removed", LOG_S("tenant", old->e[i].id));
    tenantdir_free(&d);
    table_index(tb);
    publish(tb);
    log_info("tenant.reloaded", LOG_I("tenants", tb->live), LOG_I("refused", bad),
             LOG_I("ms", (clock_now_ns() - t0) / NS_PER_MS));
    return bad;
}

void tenants_destroy(void)
{
    publish(NULL);
    free(source);
    source = NULL;
}

/* Tenants (SPEC 16): reading tenant files, refusing clashes, the registry and its reloads. */
#include "agents/tenant/tenant.h"
#include "agents/tenant/tenantdir.h"
#include "base/config.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"
#include "tests/runner.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define LEAK_CHECK() __lsan_do_leak_check()
#else
#define LEAK_CHECK() ((void)0)
#endif

#define ERR_LEN 1024

/* A temporary tenant directory, removed by the test's end (each test is its own process). */
static char dir[64];

static void make_dir(void)
{
    if (sodium_init() < 0)
        TEST_FAIL_("sodium_init");
    log_init(LOG_ERROR, LOG_FORMAT_TEXT);
    snprintf(dir, sizeof(dir), "/tmp/sb_tenants_XXXXXX");
    ASSERT(mkdtemp(dir) != NULL);
}

static void put(const char *name, const char *sq)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ASSERT(f != NULL);
    for (const char *c = sq; *c; c++)
        fputc(*c == '\'' ? '"' : *c, f);
    fclose(f);
}

static void rm_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ASSERT_EQ(system(cmd), 0);
}

/* A valid tenant file: its brief, key suffix (makes publicKey and apiSecret unique) and extra
 * keys. */
static char *tenant_json(const char *brief, const char *k, const char *extra)
{
    char *s = xmalloc(1024);
    snprintf(s, 1024,
             "{'company': {'name': 'Co %s'}, 'brief': '%s', 'publicKey': "
             "'pk_0123456789abcdefghijk%s', 'apiSecret': 'secret-0123456789-%s'%s%s}",
             k, brief, k, k, extra[0] ? ", " : "", extra);
    return s;
}

static void put_tenant(const char *id, const char *brief, const char *k, const char *extra)
{
    char name[64];
    snprintf(name, sizeof(name), "%s.json", id);
    char *j = tenant_json(brief, k, extra);
    put(name, j);
    free(j);
}

TEST(tenantdir_ids)
{
    ASSERT(tenantdir_id_ok("acme", 4));
    ASSERT(tenantdir_id_ok("a-1", 3));
    ASSERT(!tenantdir_id_ok("Acme", 4));
    ASSERT(!tenantdir_id_ok("a_b", 3));
    ASSERT(!tenantdir_id_ok("", 0));
    ASSERT(tenantdir_id_ok("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 40));
    ASSERT(!tenantdir_id_ok("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 41));
}

TEST(tenantdir_reads_every_json_file)
{
    make_dir();
    put_tenant("beta", "B brief", "bbb", "");
    put_tenant("acme", "A brief", "aaa", "'phoneNumbers': ['+14155550100']");
    put("notes.txt", "ignored");
    put(".hidden.json", "ignored");
    tenantdir_t d;
    char err[ERR_LEN];
    ASSERT_EQ(tenantdir_read(dir, true, &d, err, sizeof(err)), 0);
    ASSERT_EQ(d.n, 2);
    ASSERT_STR_EQ(d.files[0].id, "acme"); /* sorted */
    ASSERT(d.files[0].t != NULL);
    ASSERT_STR_EQ(d.files[0].t->cfg.brief, "A brief");
    ASSERT_STR_EQ(d.files[1].t->id, "beta");
    tenantdir_free(&d);
    rm_dir();
    LEAK_CHECK();
}

TEST(tenantdir_refuses_files_one_by_one)
{
    make_dir();
    put_tenant("good", "fine", "ggg", "");
    put("Bad_Name.json", "{}");
    put("nokey.json", "{'company': {'name': 'X'}, 'brief': 'b'}");
    put_tenant("typo", "b", "ttt", "'vioce': 'x'");
    tenantdir_t d;
    char err[ERR_LEN];
    ASSERT_EQ(tenantdir_read(dir, true, &d, err, sizeof(err)), 0);
    ASSERT_EQ(d.n, 4);
    ASSERT_STR_EQ(d.files[0].name, "Bad_Name.json");
    ASSERT(d.files[0].id == NULL && d.files[0].t == NULL);
    ASSERT_STR_CONTAINS(d.files[0].error, "not a tenant file name");
    ASSERT(d.files[1].t != NULL);
    ASSERT_STR_EQ(d.files[2].error,
                  "config: publicKey: required key is missing (a tenant needs it)");
    ASSERT_STR_EQ(d.files[3].error, "config: vioce: unknown key");
    tenantdir_free(&d);
    rm_dir();
    LEAK_CHECK();
}

TEST(tenants_load_one_file_is_default)
{
    make_dir();
    put("agent.json", "{'company': {'name': 'Solo'}, 'brief': 'Just us.'}");
    char path[128], err[ERR_LEN];
    snprintf(path, sizeof(path), "%s/agent.json", dir);
    ASSERT_EQ(tenants_load(path, err, sizeof(err)), 0);
    ASSERT_EQ(tenants_count(), 1);
    tenant_t *t = tenants_sole();
    ASSERT(t != NULL);
    ASSERT_STR_EQ(t->id, "default");
    ASSERT_EQ(t->generation, 1);
    ASSERT_STR_EQ(t->cfg.company_name, "Solo");
    tenant_unref(t);
    tenants_destroy();
    rm_dir();
    LEAK_CHECK();
}

TEST(tenants_load_demo_without_config)
{
    char err[ERR_LEN];
    ASSERT_EQ(sodium_init() >= 0, 1);
    ASSERT_EQ(tenants_load(NULL, err, sizeof(err)), 0);
    tenant_t *t = tenants_get("default");
    ASSERT(t != NULL);
    ASSERT_STR_EQ(t->cfg.company_name, "Prime Auto Lab");
    tenant_unref(t);
    tenants_destroy();
    LEAK_CHECK();
}

TEST(tenants_lookups)
{
    make_dir();
    put_tenant("acme", "A", "aaa",
               "'phoneNumbers': ['+14155550100'], 'allowedOrigins': ['https://acme.example']");
    put_tenant("beta", "B", "bbb", "'phoneNumbers': ['+14155550200', '+14155550201']");
    char err[ERR_LEN];
    ASSERT_EQ(tenants_load(dir, err, sizeof(err)), 0);
    ASSERT_EQ(tenants_count(), 2);
    ASSERT(tenants_sole() == NULL);
    tenant_t *t = tenants_by_public_key("pk_0123456789abcdefghijkbbb");
    ASSERT(t != NULL);
    ASSERT_STR_EQ(t->id, "beta");
    tenant_unref(t);
    t = tenants_by_api_secret("secret-0123456789-aaa");
    ASSERT(t != NULL);
    ASSERT_STR_EQ(t->id, "acme");
    tenant_unref(t);
    ASSERT(tenants_by_api_secret("secret-0123456789-aab") == NULL);
    ASSERT(tenants_by_api_secret("") == NULL);
    t = tenants_by_phone("+14155550201");
    ASSERT(t != NULL);
    ASSERT_STR_EQ(t->id, "beta");
    tenant_unref(t);
    ASSERT(tenants_by_phone("+14155550300") == NULL);
    ASSERT(tenants_by_public_key("pk_nope") == NULL);
    ASSERT(tenants_get("gamma") == NULL);
    ASSERT(tenants_origin_allowed("https://ACME.example"));
    ASSERT(!tenants_origin_allowed("https://beta.example"));
    tenant_t **all;
    ASSERT_EQ(tenants_list(&all), 2);
    ASSERT_STR_EQ(all[0]->id, "acme");
    tenant_unref(all[0]);
    tenant_unref(all[1]);
    free(all);
    tenants_destroy();
    rm_dir();
    LEAK_CHECK();
}

/* Start-up refuses the whole directory, naming the file(s). */
static void expect_load_error(const char *want)
{
    char err[ERR_LEN];
    ASSERT_EQ(tenants_load(dir, err, sizeof(err)), -EINVAL);
    ASSERT_STR_CONTAINS(err, want);
    ASSERT_EQ(tenants_count(), 0);
}

TEST(tenants_load_refuses_duplicates_naming_both_files)
{
    make_dir();
    put_tenant("acme", "A", "aaa", "'phoneNumbers': ['+14155550100']");
    put_tenant("beta", "B", "bbb", "'phoneNumbers': ['+14155550100']");
    char want[256];
    snprintf(want, sizeof(want),
             "tenant files \"%s/acme.json\" and \"%s/beta.json\" have the same phone number "
             "+14155550100",
             dir, dir);
    expect_load_error(want);
    put("beta.json",
        "{'company': {'name': 'B'}, 'brief': 'B', "
        "'publicKey': 'pk_0123456789abcdefghijkaaa', 'apiSecret': 'other-secret-0123'}");
    expect_load_error("have the same publicKey");
    put("beta.json", "{'company': {'name': 'B'}, 'brief': 'B', "
                     "'publicKey': 'pk_0123456789abcdefghijkbbb', "
                     "'apiSecret': 'secret-0123456789-aaa'}");
    expect_load_error("have the same apiSecret");
    rm_dir();
    LEAK_CHECK();
}

TEST(tenants_load_refuses_bad_files)
{
    make_dir();
    put_tenant("acme", "A", "aaa", "");
    put("Acme.json", "{}");
    expect_load_error("\"Acme.json\" is not a tenant file name");
    unlink(strcat(strcpy((char[96]){0}, dir), "/Acme.json"));
    put_tenant("beta", "B", "bbb", "'maxSessions': 'many'");
    char want[256];
    snprintf(want, sizeof(want), "tenant file \"%s/beta.json\": config: maxSessions: expected",
             dir);
    expect_load_error(want);
    rm_dir();
    LEAK_CHECK();
}

TEST(tenants_load_empty_directory)
{
    make_dir();
    expect_load_error("has no <id>.json file");
    rm_dir();
}

/* The line of the metrics text naming series, or "" (static buffer). */
static const char *metric_line(const char *series)
{
    static char line[256];
    sbuf_t b = SBUF_INIT;
    tenants_metrics(&b, NULL);
    const char *at = b.data ? strstr(b.data, series) : NULL;
    line[0] = '\0';
    if (at) {
        size_t n = strcspn(at, "\n");
        snprintf(line, sizeof(line), "%.*s", (int)n, at);
    }
    sbuf_destroy(&b);
    return line;
}

TEST(tenants_reload_semantics)
{
    make_dir();
    put_tenant("acme", "A1", "aaa", "");
    put_tenant("beta", "B1", "bbb", "");
    put_tenant("gone", "G1", "ggg", "");
    char err[ERR_LEN];
    ASSERT_EQ(tenants_load(dir, err, sizeof(err)), 0);
    tenant_t *live_a = tenants_get("acme"); /* a call in progress */
    tenant_t *live_b = tenants_get("beta");

    put_tenant("acme", "A2", "aaa", "");             /* changed */
    put_tenant("beta", "B2", "bbb", "'vioce': 'x'"); /* broken: keeps B1 */
    unlink(strcat(strcpy((char[96]){0}, dir), "/gone.json"));
    put_tenant("new1", "N1", "nnn", ""); /* added */
    ASSERT_EQ(tenants_reload(), 1);

    tenant_t *a = tenants_get("acme"), *b = tenants_get("beta"), *n = tenants_get("new1");
    ASSERT_STR_EQ(a->cfg.brief, "A2");
    ASSERT_EQ(a->generation, 2);
    ASSERT_STR_EQ(live_a->cfg.brief, "A1"); /* the live call keeps its snapshot */
    ASSERT(b == live_b);                    /* the broken file kept its previous version */
    ASSERT_STR_EQ(b->cfg.brief, "B1");
    ASSERT_EQ(b->generation, 1);
    ASSERT(tenants_get("gone") == NULL);
    ASSERT_EQ(n->generation, 1);
    ASSERT_STR_EQ(metric_line("switchboard_tenant_config_generation{tenant=\"acme\"}"),
                  "switchboard_tenant_config_generation{tenant=\"acme\"} 2");
    ASSERT_STR_EQ(metric_line("switchboard_tenant_config_errors_total{tenant=\"beta\"}"),
                  "switchboard_tenant_config_errors_total{tenant=\"beta\"} 1");
    ASSERT_STR_EQ(metric_line("switchboard_tenant_config_errors_total{tenant=\"acme\"}"),
                  "switchboard_tenant_config_errors_total{tenant=\"acme\"} 0");

    /* Unchanged files keep their snapshot (and generation) on the next reload. */
    put_tenant("beta", "B3", "bbb", "");
    ASSERT_EQ(tenants_reload(), 0);
    tenant_t *a2 = tenants_get("acme"), *b2 = tenants_get("beta");
    ASSERT(a2 == a);
    ASSERT_EQ(b2->generation, 2);
    ASSERT_STR_EQ(b2->cfg.brief, "B3");
    ASSERT_STR_EQ(metric_line("switchboard_tenant_config_errors_total{tenant=\"beta\"}"),
                  "switchboard_tenant_config_errors_total{tenant=\"beta\"} 1");

    tenant_unref(live_a);
    tenant_unref(live_b);
    tenant_unref(a);
    tenant_unref(b);
    tenant_unref(n);
    tenant_unref(a2);
    tenant_unref(b2);
    tenants_destroy();
    rm_dir();
    LEAK_CHECK();
}

TEST(tenants_reload_refuses_a_clash_keeping_the_previous_version)
{
    make_dir();
    put_tenant("acme", "A1", "aaa", "'phoneNumbers': ['+14155550100']");
    put_tenant("beta", "B1", "bbb", "'phoneNumbers': ['+14155550200']");
    char err[ERR_LEN];
    ASSERT_EQ(tenants_load(dir, err, sizeof(err)), 0);
    /* beta now claims acme's number: beta keeps B1, acme is untouched. */
    put_tenant("beta", "B2", "bbb", "'phoneNumbers': ['+14155550100']");
    /* a new tenant with acme's key is refused outright. */
    put_tenant("copy", "C1", "aaa", "");
    ASSERT_EQ(tenants_reload(), 2);
    tenant_t *b = tenants_get("beta"), *a = tenants_by_phone("+14155550100");
    ASSERT_STR_EQ(b->cfg.brief, "B1");
    ASSERT_STR_EQ(a->id, "acme");
    ASSERT(tenants_get("copy") == NULL);
    ASSERT_STR_EQ(metric_line("switchboard_tenant_config_errors_total{tenant=\"copy\"}"),
                  "switchboard_tenant_config_errors_total{tenant=\"copy\"} 1");
    tenant_unref(a);
    tenant_unref(b);
    tenants_destroy();
    rm_dir();
    LEAK_CHECK();
}

TEST(tenant_max_sessions_inside_the_global_cap)
{
    make_dir();
    put_tenant("acme", "A", "aaa", "'maxSessions': 3");
    put_tenant("beta", "B", "bbb", "'maxSessions': 500");
    put_tenant("gamma", "C", "ccc", "");
    char err[ERR_LEN];
    ASSERT_EQ(tenants_load(dir, err, sizeof(err)), 0);
    tenant_t *a = tenants_get("acme"), *b = tenants_get("beta"), *c = tenants_get("gamma");
    ASSERT_EQ(tenant_max_sessions(a, 100), 3);
    ASSERT_EQ(tenant_max_sessions(b, 100), 100);
    ASSERT_EQ(tenant_max_sessions(c, 100), 100);
    tenant_unref(a);
    tenant_unref(b);
    tenant_unref(c);
    tenants_destroy();
    rm_dir();
    LEAK_CHECK();
}

/* Readers on other threads never see a freed table while the main thread reloads. */
static int stop_readers; /* [atomic] */

static void *reader(void *arg)
{
    (void)arg;
    long seen = 0;
    while (!__atomic_load_n(&stop_readers, __ATOMIC_ACQUIRE)) {
        tenant_t *t = tenants_by_public_key("pk_0123456789abcdefghijkaaa");
        if (t == NULL || strcmp(t->id, "acme") != 0)
            abort();
        seen += t->cfg.brief[0] == 'A';
        tenant_unref(t);
    }
    return (void *)seen;
}

TEST(tenants_reload_under_readers)
{
    make_dir();
    put_tenant("acme", "A0", "aaa", "");
    char err[ERR_LEN];
    ASSERT_EQ(tenants_load(dir, err, sizeof(err)), 0);
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, reader, NULL);
    for (int i = 1; i <= 50; i++) {
        char brief[16];
        snprintf(brief, sizeof(brief), "A%d", i);
        put_tenant("acme", brief, "aaa", "");
        ASSERT_EQ(tenants_reload(), 0);
    }
    __atomic_store_n(&stop_readers, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 3; i++) {
        void *seen;
        pthread_join(th[i], &seen);
        ASSERT_GT((long)seen, 0);
    }
    tenant_t *t = tenants_get("acme");
    ASSERT_EQ(t->generation, 51);
    tenant_unref(t);
    tenants_destroy();
    rm_dir();
    LEAK_CHECK();
}

TEST(tenant_origin_allowed_is_its_own_list_else_the_gateways)
{
    make_dir();
    put_tenant("acme", "A", "aaa", "'allowedOrigins': ['https://acme.example']");
    put_tenant("beta", "B", "bbb", "");
    char err[ERR_LEN];
    ASSERT_EQ(tenants_load(dir, err, sizeof(err)), 0);
    static config_t cfg = {.allowed_origins = {"https://gateway.example"}, .n_allowed_origins = 1};
    g_config = &cfg;
    tenant_t *a = tenants_get("acme"), *b = tenants_get("beta");
    /* No Origin (a server) and the request's own origin: always. */
    ASSERT(tenant_origin_allowed(a, NULL, false));
    ASSERT(tenant_origin_allowed(a, "http://127.0.0.1:8080", true));
    /* Its own list, without case; not the gateway's once it has one; never another's. */
    ASSERT(tenant_origin_allowed(a, "https://ACME.example", false));
    ASSERT(!tenant_origin_allowed(a, "https://gateway.example", false));
    ASSERT(!tenant_origin_allowed(b, "https://acme.example", false));
    /* No list of its own: the gateway's ("*" = any). */
    ASSERT(tenant_origin_allowed(b, "https://gateway.example", false));
    ASSERT(!tenant_origin_allowed(b, "https://evil.example", false));
    cfg.allow_any_origin = true;
    ASSERT(tenant_origin_allowed(b, "https://evil.example", false));
    ASSERT(!tenant_origin_allowed(a, "https://evil.example", false));
    g_config = NULL;
    tenant_unref(a);
    tenant_unref(b);
    tenants_destroy();
    rm_dir();
    LEAK_CHECK();
}

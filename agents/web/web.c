/*
 * The browser side served by the service (agents/web/web.h): embedded files with their content
 * type, a strong ETag and `Cache-Control: no-cache` (browsers revalidate each load and get a 304
 * while the binary is the same), and the console and the demo websites rendered from the
 * tenants (demo.c) for each request, so a reload of the tenant files shows at once; their ETag
 * is the hash of what was rendered.
 *
 * Paths are only ever looked up by exact name in the embedded table, so nothing outside it can be
 * reached: there is no file system behind these routes and no path to traverse.
 */
#include "agents/web/web.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/tenant/tenant.h"
#include "agents/web/demo.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "base/util.h"
#include "net/net.h"

#define STATIC_PREFIX   "/static/"
#define DEMO_PREFIX     "/demo/"
#define CONSOLE_ASSET   "console.tmpl.html"
#define LIBRARY_ASSET   "switchboard.js"
#define DASHBOARD_ASSET "dashboard.html"
#define DEMO_TEMPLATE   "demo.tmpl.html"
#define TEMPLATE_MARK   ".tmpl."
#define ETAG_LEN        20 /* "\"" + 16 hex + "\"" + NUL, rounded */
#define FNV_OFFSET      0xcbf29ce484222325ull
#define FNV_PRIME       0x100000001b3ull
#define CACHE_HEADERS   "Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n"
#define CTYPE_DEFAULT   "application/octet-stream"
#define DEMO_PATH_MAX   160 /* "<tenant>/<page>" and more: longer is no demo page */

/* A file ready to serve: an embedded asset, or a page rendered for one request. */
typedef struct served {
    const char *name; /* the asset name; NULL for a rendered page */
    const char *content_type;
    const unsigned char *data;
    size_t len;
    char etag[ETAG_LEN];
} served_t;

static served_t *assets; /* one per web_assets[] entry */
static const served_t *console_tmpl, *demo_tmpl, *library, *dashboard;

static const char *content_type_of(const char *name)
{
    static const struct {
        const char *ext;
        const char *type;
    } map[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".json", "application/json"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < ARRAY_LEN(map); i++)
        if (strcmp(dot, map[i].ext) == 0)
            return map[i].type;
    return CTYPE_DEFAULT;
}

static void set_etag(served_t *s)
{
    uint64_t h = FNV_OFFSET;
    for (size_t i = 0; i < s->len; i++)
        h = (h ^ s->data[i]) * FNV_PRIME;
    snprintf(s->etag, sizeof(s->etag), "\"%016llx\"", (unsigned long long)h);
}

static const web_asset_t *asset_named(const char *name)
{
    for (size_t i = 0; i < web_n_assets; i++)
        if (strcmp(web_assets[i].name, name) == 0)
            return &web_assets[i];
    return NULL;
}

/* ---- Answers (Thread: net) ------------------------------------------------------------------ */

static void not_found(net_local_resp_t *resp, const char *message)
{
    sbuf_t b = SBUF_INIT;
    sbuf_puts(&b, "{\"error\":{\"code\":\"not_found\",\"message\":");
    sbuf_json_str(&b, message);
    sbuf_puts(&b, "}}");
    resp->status = 404;
    resp->body_len = b.len;
    resp->body = sbuf_take(&b);
}

/* True when an If-None-Match list names etag (or is "*"). */
static bool etag_matches(const char *inm, const char *etag)
{
    return inm && (strstr(inm, etag) != NULL || strcmp(inm, "*") == 0);
}

static void serve(const net_local_req_t *req, net_local_resp_t *resp, const served_t *s)
{
    snprintf(resp->extra_headers, sizeof(resp->extra_headers), CACHE_HEADERS "ETag: %s\r\n",
             s->etag);
    resp->content_type = s->content_type;
    if (etag_matches(req->if_none_match, s->etag)) {
        resp->status = 304;
        return;
    }
    resp->body = xmalloc(s->len ? s->len : 1);
    memcpy(resp->body, s->data, s->len);
    resp->body_len = s->len;
}

/* Serves an HTML page rendered for this request (text, taken). */
static void serve_rendered(const net_local_req_t *req, net_local_resp_t *resp, char *text,
                           size_t len)
{
    served_t s = {
        .content_type = content_type_of(".html"), .data = (const unsigned char *)text, .len = len};
    set_etag(&s);
    serve(req, resp, &s);
    free(text);
}

static void get_console(const net_local_req_t *req, net_local_resp_t *resp)
{
    size_t len;
    char *text = demo_render_console((const char *)console_tmpl->data, &len);
    serve_rendered(req, resp, text, len);
}

static void get_library(const net_local_req_t *req, net_local_resp_t *resp)
{
    serve(req, resp, library);
}

/* The calls dashboard (SPEC 15): a static page; the API it calls checks the secret. */
static void get_dashboard(const net_local_req_t *req, net_local_resp_t *resp)
{
    serve(req, resp, dashboard);
}

static void get_static(const net_local_req_t *req, net_local_resp_t *resp)
{
    const char *name = req->path + strlen(STATIC_PREFIX);
    for (size_t i = 0; i < web_n_assets; i++) {
        if (strcmp(assets[i].name, name) == 0 && strstr(name, TEMPLATE_MARK) == NULL) {
            serve(req, resp, &assets[i]);
            return;
        }
    }
    not_found(resp, "no such file");
}

static void redirect(net_local_resp_t *resp, const char *base, const agentcfg_t *cfg)
{
    resp->status = 302;
    snprintf(resp->extra_headers, sizeof(resp->extra_headers), "Location: %s%s\r\n", base,
             cfg->pages[0].name);
}

/*
 * The demo site of a tenant (SPEC 16): /demo/{tenant}/{page}; /demo/{page} is the default
 * tenant's (the only one, else `default`). A directory (/demo/, /demo/{tenant}/, and
 * /demo/{tenant} when the default tenant has no such page) redirects to its first page.
 */
static void get_demo(const net_local_req_t *req, net_local_resp_t *resp)
{
    const char *name = req->path + strlen(DEMO_PREFIX);
    char tenant_id[TENANT_ID_MAX + 1] = "", base[sizeof(DEMO_PREFIX) + TENANT_ID_MAX + 1] = "";
    const char *slash = strchr(name, '/');
    tenant_t *t = NULL;
    if (strlen(name) > DEMO_PATH_MAX) {
        /* no demo page has such a name */
    } else if (slash) {
        size_t n = (size_t)(slash - name);
        if (n <= TENANT_ID_MAX) {
            memcpy(tenant_id, name, n);
            tenant_id[n] = '\0';
            t = tenants_get(tenant_id);
        }
        snprintf(base, sizeof(base), "%s%s/", DEMO_PREFIX, tenant_id);
        name = slash + 1;
    } else {
        t = tenants_default();
        str_copy(base, DEMO_PREFIX, sizeof(base));
        if (name[0] && (t == NULL || agentcfg_page(&t->cfg, name) == NULL) &&
            strlen(name) <= TENANT_ID_MAX) {
            /* /demo/{tenant}: that tenant's first page. */
            tenant_t *named = tenants_get(name);
            if (named && named->cfg.n_pages > 0) {
                snprintf(base, sizeof(base), "%s%s/", DEMO_PREFIX, name);
                redirect(resp, base, &named->cfg);
                tenant_unref(named);
                tenant_unref(t);
                return;
            }
            tenant_unref(named);
        }
    }
    const agent_page_t *page = t ? agentcfg_page(&t->cfg, name) : NULL;
    if (t && name[0] == '\0' && t->cfg.n_pages > 0) {
        redirect(resp, base, &t->cfg);
    } else if (page == NULL) {
        not_found(resp, "no such demo page");
    } else {
        size_t len;
        char *text = demo_render_page((const char *)demo_tmpl->data, t, page, base, &len);
        serve_rendered(req, resp, text, len);
    }
    tenant_unref(t);
}

/* ---- Start and stop ------------------------------------------------------------------------- */

static net_http_route_t routes[] = {
    {.path = "/", .methods = NET_GET | NET_HEAD, .local = get_console},
    {.path = "/switchboard.js", .methods = NET_GET | NET_HEAD, .local = get_library},
    {.path = "/dashboard", .methods = NET_GET | NET_HEAD, .local = get_dashboard},
    {.path = STATIC_PREFIX, .prefix = true, .methods = NET_GET | NET_HEAD, .local = get_static},
    {.path = DEMO_PREFIX, .prefix = true, .methods = NET_GET | NET_HEAD, .local = get_demo},
};

int web_start(void)
{
    if (asset_named(DEMO_TEMPLATE) == NULL || asset_named(CONSOLE_ASSET) == NULL ||
        asset_named(LIBRARY_ASSET) == NULL || asset_named(DASHBOARD_ASSET) == NULL) {
        log_error("web.start", LOG_S("error", "an embedded file is missing"));
        return -ENOENT;
    }
    assets = xcalloc(web_n_assets, sizeof(*assets));
    for (size_t i = 0; i < web_n_assets; i++) {
        served_t *s = &assets[i];
        s->name = web_assets[i].name;
        s->content_type = content_type_of(s->name);
        s->data = web_assets[i].data;
        s->len = web_assets[i].len;
        set_etag(s);
        if (strcmp(s->name, CONSOLE_ASSET) == 0)
            console_tmpl = s;
        else if (strcmp(s->name, DEMO_TEMPLATE) == 0)
            demo_tmpl = s;
        else if (strcmp(s->name, LIBRARY_ASSET) == 0)
            library = s;
        else if (strcmp(s->name, DASHBOARD_ASSET) == 0)
            dashboard = s;
    }
    for (size_t i = 0; i < ARRAY_LEN(routes); i++)
        net_add_http_route(&routes[i]);
    return 0;
}

void web_stop(void)
{
    free(assets);
    assets = NULL;
    console_tmpl = demo_tmpl = library = dashboard = NULL;
}

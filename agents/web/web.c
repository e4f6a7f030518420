/*
 * The browser side served by the service (agents/web/web.h): embedded files with their content
 * type, a strong ETag and `Cache-Control: no-cache` (browsers revalidate each load and get a 304
 * while the binary is the same), and the demo website rendered from the agent config.
 *
 * Paths are only ever looked up by exact name in the embedded table, so nothing outside it can be
 * reached: there is no file system behind these routes and no path to traverse.
 */
#include "agents/web/web.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/config/agentcfg.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "base/util.h"
#include "net/net.h"

#define STATIC_PREFIX  "/static/"
#define DEMO_PREFIX    "/demo/"
#define CONSOLE_ASSET  "index.html"
#define LIBRARY_ASSET  "switchboard.js"
#define DEMO_TEMPLATE  "demo.tmpl.html"
#define TEMPLATE_MARK  ".tmpl."
#define ETAG_LEN       20 /* "\"" + 16 hex + "\"" + NUL, rounded */
#define FNV_OFFSET     0xcbf29ce484222325ull
#define FNV_PRIME      0x100000001b3ull
#define CACHE_HEADERS  "Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n"
#define CTYPE_DEFAULT  "application/octet-stream"
#define TITLE_FALLBACK "Demo"

/* A file ready to serve: an embedded asset or a rendered demo page. */
typedef struct served {
    const char *name; /* the asset name or the page name */
    const char *content_type;
    const unsigned char *data;
    size_t len;
    char etag[ETAG_LEN];
} served_t;

static served_t *assets; /* one per web_assets[] entry */
static served_t *pages;  /* one per g_agentcfg page, data malloc'd */
static size_t n_pages;
static const served_t *console_page, *library;

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

/* ---- Rendering the demo pages --------------------------------------------------------------- */

static void html_escape(sbuf_t *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<':
            sbuf_puts(b, "&lt;");
            break;
        case '>':
            sbuf_puts(b, "&gt;");
            break;
        case '&':
            sbuf_puts(b, "&amp;");
            break;
        case '"':
            sbuf_puts(b, "&quot;");
            break;
        default:
            sbuf_putc(b, *s);
        }
    }
}

/*
 * JSON safe inside <script>: '<', '>' and '&' only occur inside JSON strings, where their \u
 * escapes mean the same, so "</script>" can never close the element early.
 */
static void json_for_script(sbuf_t *b, const char *json)
{
    for (; *json; json++) {
        if (*json == '<')
            sbuf_puts(b, "\\u003c");
        else if (*json == '>')
            sbuf_puts(b, "\\u003e");
        else if (*json == '&')
            sbuf_puts(b, "\\u0026");
        else
            sbuf_putc(b, *json);
    }
}

static void add_str(cJSON *o, const char *k, const char *v)
{
    cJSON_AddItemToObject(o, k, v ? cJSON_CreateString(v) : cJSON_CreateNull());
}

/* What demo.js needs to draw the site: the company, the pages and this page's sections. */
static char *site_json(const agentcfg_t *ac, const agent_page_t *page)
{
    static const char *const days[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
    cJSON *root = cJSON_CreateObject();
    cJSON *co = cJSON_AddObjectToObject(root, "company");
    add_str(co, "name", ac->company_name);
    add_str(co, "phone", ac->company_phone);
    add_str(co, "email", ac->company_email);
    add_str(co, "timezone", ac->company_timezone);
    add_str(root, "page", page->name);
    cJSON *secs = cJSON_AddArrayToObject(root, "sections");
    for (size_t i = 0; i < page->n_sections; i++)
        cJSON_AddItemToArray(secs, cJSON_CreateString(page->sections[i]));
    cJSON *pl = cJSON_AddObjectToObject(root, "pages");
    for (size_t i = 0; i < ac->n_pages; i++) {
        cJSON *a = cJSON_AddArrayToObject(pl, ac->pages[i].name);
        for (size_t j = 0; j < ac->pages[i].n_sections; j++)
            cJSON_AddItemToArray(a, cJSON_CreateString(ac->pages[i].sections[j]));
    }
    cJSON *sv = cJSON_AddArrayToObject(root, "services");
    for (size_t i = 0; i < ac->n_services; i++) {
        cJSON *s = cJSON_CreateObject();
        add_str(s, "name", ac->services[i].name);
        cJSON_AddNumberToObject(s, "duration_min", ac->services[i].duration_min);
        add_str(s, "price", ac->services[i].price);
        cJSON_AddItemToArray(sv, s);
    }
    cJSON *hours = cJSON_AddObjectToObject(root, "hours");
    for (int d = 0; d < 7; d++) {
        const agent_hours_t *h = &ac->hours[d];
        if (!h->open) {
            cJSON_AddNullToObject(hours, days[d]);
            continue;
        }
        char o[16], c[16]; /* "HH:MM"; sized for any int to keep -Wformat-truncation quiet */
        snprintf(o, sizeof(o), "%02d:%02d", h->open_min / 60, h->open_min % 60);
        snprintf(c, sizeof(c), "%02d:%02d", h->close_min / 60, h->close_min % 60);
        cJSON *a = cJSON_AddArrayToObject(hours, days[d]);
        cJSON_AddItemToArray(a, cJSON_CreateString(o));
        cJSON_AddItemToArray(a, cJSON_CreateString(c));
    }
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

/* The template with {{title}} and {{site}} replaced; other text is copied as is. */
static char *render_page(const char *tmpl, const agentcfg_t *ac, const agent_page_t *page,
                         size_t *len)
{
    sbuf_t b = SBUF_INIT;
    char *site = site_json(ac, page);
    const char *p = tmpl;
    for (const char *m; (m = strstr(p, "{{")) != NULL;) {
        sbuf_append(&b, p, (size_t)(m - p));
        if (strncmp(m, "{{title}}", 9) == 0) {
            html_escape(&b, ac->company_name ? ac->company_name : TITLE_FALLBACK);
            p = m + 9;
        } else if (strncmp(m, "{{site}}", 8) == 0) {
            json_for_script(&b, site);
            p = m + 8;
        } else {
            sbuf_append(&b, m, 2);
            p = m + 2;
        }
    }
    sbuf_puts(&b, p);
    cJSON_free(site);
    *len = b.len;
    return sbuf_take(&b);
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

static void get_console(const net_local_req_t *req, net_local_resp_t *resp)
{
    serve(req, resp, console_page);
}

static void get_library(const net_local_req_t *req, net_local_resp_t *resp)
{
    serve(req, resp, library);
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

static void get_demo(const net_local_req_t *req, net_local_resp_t *resp)
{
    const char *name = req->path + strlen(DEMO_PREFIX);
    if (*name == '\0' && n_pages > 0) {
        /* /demo/ alone: the first configured page. */
        resp->status = 302;
        snprintf(resp->extra_headers, sizeof(resp->extra_headers), "Location: %s%s\r\n",
                 DEMO_PREFIX, pages[0].name);
        return;
    }
    for (size_t i = 0; i < n_pages; i++) {
        if (strcmp(pages[i].name, name) == 0) {
            serve(req, resp, &pages[i]);
            return;
        }
    }
    not_found(resp, "no such demo page");
}

/* ---- Start and stop ------------------------------------------------------------------------- */

static net_http_route_t routes[] = {
    {.path = "/", .methods = NET_GET | NET_HEAD, .local = get_console},
    {.path = "/switchboard.js", .methods = NET_GET | NET_HEAD, .local = get_library},
    {.path = STATIC_PREFIX, .prefix = true, .methods = NET_GET | NET_HEAD, .local = get_static},
    {.path = DEMO_PREFIX, .prefix = true, .methods = NET_GET | NET_HEAD, .local = get_demo},
};

int web_start(void)
{
    const web_asset_t *tmpl = asset_named(DEMO_TEMPLATE);
    if (tmpl == NULL || asset_named(CONSOLE_ASSET) == NULL || asset_named(LIBRARY_ASSET) == NULL) {
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
            console_page = s;
        else if (strcmp(s->name, LIBRARY_ASSET) == 0)
            library = s;
    }
    n_pages = g_agentcfg->n_pages;
    pages = xcalloc(n_pages ? n_pages : 1, sizeof(*pages));
    for (size_t i = 0; i < n_pages; i++) {
        served_t *s = &pages[i];
        s->name = g_agentcfg->pages[i].name;
        s->content_type = content_type_of(DEMO_TEMPLATE);
        s->data = (const unsigned char *)render_page((const char *)tmpl->data, g_agentcfg,
                                                     &g_agentcfg->pages[i], &s->len);
        set_etag(s);
    }
    for (size_t i = 0; i < ARRAY_LEN(routes); i++)
        net_add_http_route(&routes[i]);
    return 0;
}

void web_stop(void)
{
    for (size_t i = 0; i < n_pages; i++)
        free((void *)pages[i].data);
    free(pages);
    free(assets);
    pages = NULL;
    assets = NULL;
    n_pages = 0;
}

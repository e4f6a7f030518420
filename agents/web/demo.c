/*
 * demo: the demo pages and the console's tenant list, rendered from the tenants (demo.h).
 */
#include "agents/web/demo.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sbuf.h"
#include "base/util.h"

#define TITLE_FALLBACK "Demo"

/* ---- Helpers --------------------------------------------------------------- */

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

/*
 * What demo.js needs to draw the site: the tenant (its id, publicKey and where its pages are),
 * the company, the pages and this page's sections.
 */
static char *site_json(const tenant_t *t, const agent_page_t *page, const char *base)
{
    static const char *const days[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
    const agentcfg_t *ac = &t->cfg;
    cJSON *root = cJSON_CreateObject();
    add_str(root, "tenant", t->id);
    add_str(root, "publicKey", ac->access.public_key);
    add_str(root, "base", base);
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

/* A template mark and what replaces it. */
typedef struct mark {
    const char *name; /* "{{name}}" */
    const char *value;
    bool json; /* a JSON text (made safe inside <script>), else text (HTML-escaped) */
} mark_t;

/* tmpl with each mark of marks replaced; other text (and unknown marks) is copied as is. The
 * result is malloc'd, *len its length. */
static char *fill(const char *tmpl, const mark_t *marks, size_t n_marks, size_t *len)
{
    sbuf_t b = SBUF_INIT;
    const char *p = tmpl;
    for (const char *m; (m = strstr(p, "{{")) != NULL;) {
        sbuf_append(&b, p, (size_t)(m - p));
        p = m + 2;
        const mark_t *hit = NULL;
        for (size_t i = 0; i < n_marks && hit == NULL; i++)
            if (strncmp(m, marks[i].name, strlen(marks[i].name)) == 0)
                hit = &marks[i];
        if (hit == NULL) {
            sbuf_append(&b, m, 2);
            continue;
        }
        if (hit->json)
            json_for_script(&b, hit->value);
        else
            sbuf_xml_text(&b, hit->value);
        p = m + strlen(hit->name);
    }
    sbuf_puts(&b, p);
    *len = b.len;
    return sbuf_take(&b);
}

char *demo_render_page(const char *tmpl, const tenant_t *t, const agent_page_t *page,
                       const char *base, size_t *len)
{
    char *site = site_json(t, page, base);
    const char *title = t->cfg.company_name ? t->cfg.company_name : TITLE_FALLBACK;
    const mark_t marks[] = {{"{{title}}", title, false}, {"{{site}}", site, true}};
    char *out = fill(tmpl, marks, ARRAY_LEN(marks), len);
    cJSON_free(site);
    return out;
}

char *demo_render_console(const char *tmpl, size_t *len)
{
    tenant_t **all;
    size_t n = tenants_list(&all);
    tenant_t *dflt = tenants_default();
    cJSON *root = cJSON_CreateObject();
    add_str(root, "default", dflt ? dflt->id : NULL);
    cJSON *list = cJSON_AddArrayToObject(root, "tenants");
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        add_str(o, "id", all[i]->id);
        add_str(o, "name", all[i]->cfg.company_name);
        add_str(o, "publicKey", all[i]->cfg.access.public_key);
        cJSON_AddItemToArray(list, o);
        tenant_unref(all[i]);
    }
    free(all);
    tenant_unref(dflt);
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    const mark_t marks[] = {{"{{tenants}}", json, true}};
    char *out = fill(tmpl, marks, ARRAY_LEN(marks), len);
    cJSON_free(json);
    return out;
}

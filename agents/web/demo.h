/*
 * demo: the pages of agents/web rendered from a tenant's configuration (SPEC 4, 12, 16): the
 * demo website of each tenant (`/demo/{tenant}/{page}`, and `/demo/{page}` for the default
 * tenant) and the console's list of tenants. Pure: no I/O, no globals but the tenant registry
 * the console list reads. Thread: any (the network thread answering the request).
 *
 * Only public data leaves here: a tenant's id, company, services, hours, pages and publicKey
 * (which is meant to be embedded in web pages), never its secrets, brief or servers.
 */
#ifndef SB_AGENTS_WEB_DEMO_H
#define SB_AGENTS_WEB_DEMO_H

#include <stddef.h>

#include "agents/tenant/tenant.h"

/*
 * The demo page `page` of tenant t: tmpl with {{title}} (the company name, HTML-escaped) and
 * {{site}} (the JSON demo.js draws from, safe inside <script>) replaced. base is the path its
 * sibling pages live under ("/demo/" or "/demo/<tenant>/"). Returns the malloc'd text, *len its
 * length.
 */
char *demo_render_page(const char *tmpl, const tenant_t *t, const agent_page_t *page,
                       const char *base, size_t *len);

/*
 * The console: tmpl with {{tenants}} replaced by {"default": <id or null>, "tenants": [{"id",
 * "name", "publicKey"}…]} (every tenant served now, sorted by id; safe inside <script>).
 * Returns the malloc'd text, *len its length.
 */
char *demo_render_console(const char *tmpl, size_t *len);

#endif

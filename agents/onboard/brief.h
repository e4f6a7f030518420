/*
 * brief: the service's `POST /api/tenants/{id}/brief` (SPEC 16), one actor on the tools lane that
 * turns a PDF brief into the tenant file <tenant directory>/<id>.json, which the next reload (the
 * directory watch) serves.
 *
 * A job: the PDF's text from a child process, `switchboard-onboard - --text --bytes N` (the PDF
 * on its stdin, the text on its stdout; exit 3 = no text), so that poppler never runs inside the
 * service: a PDF that crashes it costs a child, and the service's memory stays without poppler's
 * (about 8 MB more idle RSS when linked). Then one Chat Completions request with the strict
 * tenant_config schema (net_fetch), the answer turned into the tenant file (onboard.h) and
 * written whole, never over an existing one. The actor never waits for I/O but that last small
 * write (like the store's SQLite writes, on the tools lane).
 *
 * Bounded: one job at a time (the actor), BRIEF_QUEUE_MAX more waiting (each holds its PDF,
 * at most ONBOARD_MAX_PDF_BYTES), else 503 `busy`; BRIEF_JOB_TIMEOUT_MS for a job from its
 * start to its answer, else 504 `timeout` (the child is killed, the request cancelled).
 *
 * Answers, in the order checked: 404 `not_found` (not /api/tenants/{id}/brief), 401
 * `unauthorized` (not the operator: SWITCHBOARD_API_SECRET, or a loopback caller when it is
 * unset), 400 `invalid_tenant_id`, 415 `unsupported_media_type` (not application/pdf), 400
 * `invalid_request` (no body), 409 `no_tenant_directory` (SWITCHBOARD_CONFIG is not a directory),
 * 409 `exists` (<id>.json is there), 503 `not_configured` (no OPENAI_API_KEY), 503 `busy`; then
 * from the job: 422 `no_text` (ONBOARD_NO_TEXT_MESSAGE), 422 `invalid_pdf`, 500 `extract_failed`
 * (the child crashed or could not run), 502 `upstream_error` (the API failed), 502
 * `invalid_extraction` (its answer is not a valid tenant config), 504 `timeout`, 409 `exists` (the
 * file appeared meanwhile), 500 `write_failed`; or 201 {"id","path","publicKey","notes":[...]}.
 * Bodies over ONBOARD_MAX_PDF_BYTES are refused by net itself (413 `body_too_large`, the route's
 * max_body).
 *
 * CONTRACT: brief_spawn() on main, once the network threads may run children; the actor's
 * behaviour on its worker.
 */
#ifndef SB_AGENTS_ONBOARD_BRIEF_H
#define SB_AGENTS_ONBOARD_BRIEF_H

#include "actors/actor.h"

#define BRIEF_QUEUE_MAX      3      /* jobs waiting behind the running one */
#define BRIEF_JOB_TIMEOUT_MS 120000 /* start to answer: extraction and the model's request */
#define BRIEF_ROUTE          "/api/tenants/"

/*
 * Spawns the brief actor. onboard_bin is the switchboard-onboard to run (copied); NULL = the one
 * next to the running program (/proc/self/exe). Returns it with a reference for the caller (the
 * route's target), or NULL.
 */
actor_t *brief_spawn(const char *onboard_bin);

#endif

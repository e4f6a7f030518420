/*
 * Onboarding a tenant from its PDF brief (SPEC 16): the steps between the brief's text and the
 * tenant file, as plain functions shared by switchboard-onboard (cli/onboard_main.c) and the
 * service's `POST /api/tenants/{id}/brief`.
 *
 *   pdftext_extract()        PDF bytes -> text                        (agents/onboard/pdftext.h)
 *   onboard_request_body()   text -> one Chat Completions request with the strict json_schema
 *                            "tenant_config" (onboard_schema_json)
 *   (the caller sends it: POST {SWITCHBOARD_OPENAI_BASE_URL}/chat/completions)
 *   onboard_tenant_json()    the response -> the tenant file's JSON text, checked against the
 *                            schema it asked for and then by the service's own config parser
 *   onboard_write()          the file, <dir>/<id>.json, never over an existing one unless forced
 *
 * Everything here is pure (no globals, no I/O) except onboard_keys_generate() (the system's
 * random source) and onboard_write() (the file system). Thread: any.
 */
#ifndef SB_AGENTS_ONBOARD_ONBOARD_H
#define SB_AGENTS_ONBOARD_ONBOARD_H

#include <stdbool.h>
#include <stddef.h>

#include "base/sbuf.h"

/* The largest brief accepted, in bytes of PDF (SPEC 16: the endpoint answers 413 above it). */
#define ONBOARD_MAX_PDF_BYTES (10 * 1024 * 1024)

/* The name of the response format's json_schema; the simulator answers it from the text. */
#define ONBOARD_SCHEMA_NAME "tenant_config"

/*
 * What the user is told about a PDF without text (pdftext_extract() returned -ENODATA): the CLI
 * prints it and exits 1, the endpoint answers 422 with code "no_text" and this message.
 */
#define ONBOARD_NO_TEXT_MESSAGE                                                                    \
    "the PDF has no text to extract (a scanned or image-only document?): export it from the "      \
    "original with its text, or run it through OCR first"

/* Tenant ids (SPEC 16): [a-z0-9-]{1,40}, which is also the file's name without ".json". */
#define ONBOARD_TENANT_ID_MAX_CHARS 40

/* "pk_" + 32 hex digits (128 random bits) and "sk_" + 64 hex digits (256 random bits). */
#define ONBOARD_PUBLIC_KEY_RANDOM_BYTES 16
#define ONBOARD_API_SECRET_RANDOM_BYTES 32

typedef struct onboard_keys {
    char public_key[3 + 2 * ONBOARD_PUBLIC_KEY_RANDOM_BYTES + 1];
    char api_secret[3 + 2 * ONBOARD_API_SECRET_RANDOM_BYTES + 1];
} onboard_keys_t;

/* The JSON schema sent as response_format.json_schema.schema (strict mode's subset). */
extern const char onboard_schema_json[];

/* True when id is a valid tenant id. */
bool onboard_tenant_id_ok(const char *id);

/* Fills k with a fresh publicKey and apiSecret from libsodium's random source. */
void onboard_keys_generate(onboard_keys_t *k);

/*
 * The Chat Completions request body (JSON text, heap; free() it) asking model to extract the
 * tenant_config object from the brief's text: a system message with the instructions, the text
 * as the user message, and response_format {"type":"json_schema","json_schema":{"name":
 * "tenant_config","strict":true,"schema":onboard_schema_json}}.
 */
char *onboard_request_body(const char *model, const char *text);

/*
 * Turns a Chat Completions response body (status 200) into the tenant file: the 2.2 config
 * (company, brief, services, hours) plus the tenant keys of SPEC 16 (publicKey and apiSecret from
 * keys, allowedOrigins and phoneNumbers empty, for the operator to fill in). The model's content
 * must match onboard_schema_json exactly; the result must then pass agentcfg_parse().
 *
 * source_text (may be NULL) is the brief's text: the brief when the model left it empty. Notes
 * for the reviewer (a default filled in) are appended to notes (may be NULL), one line each.
 *
 * Returns 0 with the JSON text (heap, ends with a newline) in *out, or -EINVAL with the reason in
 * err: not a completion, a refusal, an answer cut short, content that is not JSON or does not
 * match the schema (the message names the key path), or a config the parser refuses.
 */
int onboard_tenant_json(const char *response, size_t len, const onboard_keys_t *keys,
                        const char *source_text, char **out, sbuf_t *notes, char *err,
                        size_t errlen);

/*
 * The reason in an OpenAI error body ({"error":{"message":...}}) of an HTTP status other than
 * 200, written to err as "HTTP <status>: <message>" (the start of the body when it has none).
 */
void onboard_http_error(int status, const char *body, size_t len, char *err, size_t errlen);

/* Writes "<dir>/<id>.json" into path. Returns 0, or -ENAMETOOLONG when it does not fit. */
int onboard_path(char *path, size_t size, const char *dir, const char *id);

/*
 * Writes json as <dir>/<id>.json, whole or not at all: into a hidden temporary file in dir
 * (mode 0600: the file holds the tenant's apiSecret), synced, then linked to its name (when
 * force is false: fails with -EEXIST if the name exists, even if it appeared meanwhile) or
 * renamed over it (force). A reader of the directory never sees a partial file. Returns 0 or
 * -errno, with a message naming the path in err.
 */
int onboard_write(const char *dir, const char *id, const char *json, bool force, char *err,
                  size_t errlen);

#endif

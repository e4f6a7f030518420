/*
 * The simulator's answer to a Chat Completions request whose response_format is the json_schema
 * "tenant_config" (switchboard-onboard, SPEC 16): the company, services, hours and brief read from
 * the brief's text by fixed line rules (sim_extract_tenant()), so that onboarding round-trips
 * without a model. Thread: any (pure functions over their arguments).
 */
#ifndef SB_BENCH_SIM_EXTRACT_H
#define SB_BENCH_SIM_EXTRACT_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "base/sbuf.h"

#define SIM_EXTRACT_SCHEMA_NAME "tenant_config"

/* The response_format.json_schema of req when it is named "tenant_config", else NULL. */
const cJSON *sim_extract_wanted(const cJSON *req);

/*
 * Checks json_schema.schema the way the API checks a strict schema: every object schema has
 * additionalProperties false and lists every property in required (recursively through
 * properties, items and anyOf). Returns true, or false with the API's kind of message in why.
 */
bool sim_extract_schema_ok(const cJSON *json_schema, sbuf_t *why);

/*
 * Appends to out the tenant_config object (JSON text) read from text:
 *
 * Lines are read one at a time, without surrounding white space and a leading bullet ("•", "-"
 * or "*" and a space).
 * - "Company:", "Business:" or "Name:" gives company.name (else the first line no other rule
 *   takes); "Phone:", "Tel:" or "Telephone:" the phone; "Email:" or "E-mail:" the e-mail;
 *   "Timezone:" or "Time zone:" the timezone (labels in any case; missing ones are "").
 * - A service is a line of fields separated by em or en dashes, "|" or " - ", one of which (not
 *   the first) is a duration: "30 min", "45 minutes", "2 h", "1 hour". The fields before it are
 *   the name, the fields after it the price ("" when none):
 *   "Oil change — 30 min — $50-80".
 * - Hours: a line that starts with a weekday ("Mon", "Monday", "Tue", "Tues", ...), a range of
 *   them ("Mon–Fri", "Mon-Fri", "Monday to Friday") or a list ("Sat, Sun", "Sat & Sun"), then an
 *   optional ':', then "HH:MM–HH:MM" (H:MM too; a dash, en or em dash, or "to" between) or
 *   "closed": "Mon–Fri 08:00–18:00", "Sun closed". Days no line names are null (closed).
 * - Headings alone on a line ("Services", "Hours", "Opening hours", "Business hours", with or
 *   without ':') are dropped.
 * - Every other line is the brief, in order, joined by newlines (the whole text when none).
 * - "malformed extraction" anywhere in the text: only company.name is given, an answer that does
 *   not match the schema, for the client's check.
 */
void sim_extract_tenant(const char *text, sbuf_t *out);

#endif

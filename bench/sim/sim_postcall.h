/*
 * sim_postcall: the simulator's answers for switchboard's post-call work (SPEC 15):
 *   - a json_schema request named "call_summary" is answered from the transcript in the
 *     request, deterministically: "my name is …" gives caller.name, the first phone-like digits
 *     the caller said caller.phone, a word with an '@' caller.email, a completed
 *     bookAppointment among the tool calls outcome "booked" (a transfer "transferred", "call me
 *     back" "callback", else "information"); a transcript saying "invalid summary" gets an
 *     answer that breaks the schema (outcome "maybe"), for the tests of that failure;
 *   - a CRM run (a user message containing "Post-call CRM sync" and a tool ending in
 *     "__find_contact") is driven like the booking rules: no phone and no email -> a sentence
 *     and no tool call (no lead); else find_contact by phone (else email) ->
 *     create_contact, or update_contact when found -> add_note with the note -> a closing
 *     sentence; a tool result that is not JSON ends the run with a sentence naming it.
 * Thread: the simulator's only thread.
 */
#ifndef SB_BENCH_SIM_POSTCALL_H
#define SB_BENCH_SIM_POSTCALL_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "base/sbuf.h"

#define SIM_SUMMARY_SCHEMA_NAME "call_summary"
#define SIM_CRM_MARK            "Post-call CRM sync"

/* The call_summary object for the request text (the transcript), appended to out as JSON. */
void sim_postcall_summary(const char *text, sbuf_t *out);

/*
 * The next step of a CRM run, when messages are one (else false): *call and name (a tool to
 * call with the arguments in text) or the final answer in text.
 */
bool sim_postcall_crm(const cJSON *messages, const cJSON *tools, bool *call, char *name,
                      size_t name_len, sbuf_t *text);

#endif

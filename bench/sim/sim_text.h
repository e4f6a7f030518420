/*
 * Deterministic "model" rules of the simulator: what the voice agent says or calls for a user
 * text, and the text helpers the Chat Completions rules share with it.
 * Thread: any (pure functions over their arguments).
 */
#ifndef SB_BENCH_SIM_TEXT_H
#define SB_BENCH_SIM_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "base/sbuf.h"

#define SIM_TEXT_SUPERVISOR_TOOL "getNextResponseFromSupervisor"
#define SIM_TEXT_NAVIGATE_TOOL   "navigate"
#define SIM_TEXT_GREETING        "Thanks for calling. How can I help you today?"

#define SIM_REPLY_MAX_CALLS 2

typedef struct sim_call_reply {
    char name[64];
    sbuf_t args; /* a JSON object text */
} sim_call_reply_t;

typedef struct sim_reply {
    unsigned n_calls; /* 0: speak text */
    sim_call_reply_t calls[SIM_REPLY_MAX_CALLS];
    sbuf_t text;
} sim_reply_t;

void sim_reply_init(sim_reply_t *r);
void sim_reply_destroy(sim_reply_t *r);

/*
 * Decides the voice agent's answer to the user's text:
 * - a navigate call for "show me / go to / scroll to <section>" when navigate is declared
 *   (section_enum, when not NULL, is the enum of its section parameter and picks the
 *   canonical name; otherwise the first word is the section);
 * - a supervisor call when the text is about booking, appointments, availability, prices or
 *   hours (outside the words that named the section);
 * - both calls, in that order, in one response when the text asks for both;
 * - else a greeting that echoes a keyword (none when from_audio, whose text is a made-up
 *   transcript).
 * out must have been initialised with sim_reply_init.
 */
void sim_text_voice_reply(const char *user, bool from_audio, bool has_navigate,
                          const cJSON *section_enum, sim_reply_t *out);

/* Case-insensitive substring search (ASCII); returns the match in hay or NULL. */
const char *sim_text_find_ci(const char *hay, const char *needle);

/* True when text contains any of the NULL-terminated words (case-insensitive substrings). */
bool sim_text_has_any(const char *text, const char *const *words);

/*
 * Appends to out the first phone-number-like run of text (digits with spaces, dashes, dots or
 * parentheses, at least 7 digits), trimmed; returns false (appending nothing) when there is
 * none.
 */
bool sim_text_phone(const char *text, sbuf_t *out);

/* Appends the first code points of s (at most max), never splitting a UTF-8 sequence. */
void sim_text_prefix_cp(sbuf_t *out, const char *s, size_t max);

#endif

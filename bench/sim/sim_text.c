/*
 * Deterministic reply rules of the simulated voice agent, and shared text helpers.
 * Thread: any.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"
#include "bench/sim/sim_text.h"

#define KEYWORD_MIN_LETTERS 4
#define KEYWORD_MAX_BYTES   40
#define SECTION_MAX_BYTES   64
#define PHONE_MIN_DIGITS    7

static const char *const supervisor_words[] = {"book",  "appointment", "available", "availability",
                                               "price", "hours",       NULL};
static const char *const navigate_phrases[] = {"show me ",    "go to ",       "scroll to ",
                                               "take me to ", "navigate to ", NULL};
static const char *const filler_words[] = {"the ", "your ", "our ", "my ", "a ", NULL};
static const char *const stop_words[] = {"that",  "this",  "with",  "have",   "what",   "would",
                                         "could", "there", "about", "please", "thanks", "hello",
                                         "there", "from",  "your",  "just",   NULL};

const char *sim_text_find_ci(const char *hay, const char *needle)
{
    size_t nl = strlen(needle);
    if (nl == 0)
        return hay;
    for (const char *p = hay; *p; p++)
        if (strncasecmp(p, needle, nl) == 0)
            return p;
    return NULL;
}

bool sim_text_has_any(const char *text, const char *const *words)
{
    for (; *words; words++)
        if (sim_text_find_ci(text, *words))
            return true;
    return false;
}

void sim_text_prefix_cp(sbuf_t *out, const char *s, size_t max)
{
    size_t i = 0, cps = 0;
    while (s[i] && cps < max) {
        i++;
        while ((s[i] & 0xc0) == 0x80)
            i++; /* continuation bytes belong to the same code point */
        cps++;
    }
    sbuf_append(out, s, i);
}

bool sim_text_phone(const char *text, sbuf_t *out)
{
    for (const char *p = text; *p; p++) {
        if (!isdigit((unsigned char)*p) && !(*p == '(' && isdigit((unsigned char)p[1])) &&
            !(*p == '+' && isdigit((unsigned char)p[1])))
            continue;
        const char *q = p;
        int digits = 0;
        while (*q && (isdigit((unsigned char)*q) || strchr(" -.()+", *q))) {
            digits += isdigit((unsigned char)*q) != 0;
            q++;
        }
        while (q > p && !isdigit((unsigned char)q[-1]))
            q--; /* trailing separators are not part of the number */
        if (digits >= PHONE_MIN_DIGITS) {
            sbuf_append(out, p, (size_t)(q - p));
            return true;
        }
        p = q > p ? q - 1 : p;
    }
    return false;
}

/* Lower-cases s and turns spaces and underscores into dashes (section ids look like that). */
static void normalise_section(char *s)
{
    for (; *s; s++) {
        if (*s == ' ' || *s == '_')
            *s = '-';
        else
            *s = (char)tolower((unsigned char)*s);
    }
}

static const char *skip_fillers(const char *p)
{
    for (bool again = true; again;) {
        again = false;
        for (const char *const *f = filler_words; *f; f++) {
            if (strncasecmp(p, *f, strlen(*f)) == 0) {
                p += strlen(*f);
                again = true;
            }
        }
    }
    return p;
}

/*
 * Picks the section named at rest (just after a navigation phrase): the enum value the words
 * there start with, or else their first word. Returns how many bytes of rest name it (0: no
 * section). Normalising maps bytes one to one, so lengths carry over to the original text.
 */
static size_t pick_section(const char *rest, const cJSON *section_enum, char *out, size_t outsz)
{
    const char *p = skip_fillers(rest);
    char words[SECTION_MAX_BYTES];
    size_t n = 0;
    while (p[n] && n + 1 < sizeof(words) &&
           (isalnum((unsigned char)p[n]) || p[n] == ' ' || p[n] == '-' || p[n] == '_'))
        n++;
    while (n > 0 && p[n - 1] == ' ')
        n--;
    if (n == 0)
        return 0;
    memcpy(words, p, n);
    words[n] = '\0';
    normalise_section(words);
    size_t skipped = (size_t)(p - rest);
    const cJSON *list = cJSON_IsArray(section_enum) ? section_enum : NULL, *v;
    cJSON_ArrayForEach(v, list)
    {
        if (!cJSON_IsString(v))
            continue;
        char cand[SECTION_MAX_BYTES];
        str_copy(cand, v->valuestring, sizeof(cand));
        normalise_section(cand);
        size_t cl = strlen(cand);
        if (cl && strncmp(words, cand, cl) == 0 && (words[cl] == '\0' || words[cl] == '-')) {
            str_copy(out, v->valuestring, outsz);
            return skipped + cl;
        }
    }
    size_t first = strcspn(words, "-");
    words[first] = '\0';
    str_copy(out, words, outsz);
    return skipped + first;
}

/* The longest word of at least KEYWORD_MIN_LETTERS letters that is not a stop word. */
static bool pick_keyword(const char *text, char *out, size_t outsz)
{
    size_t best = 0;
    for (const char *p = text; *p;) {
        while (*p && !isalpha((unsigned char)*p))
            p++;
        const char *s = p;
        while (isalpha((unsigned char)*p))
            p++;
        size_t n = (size_t)(p - s);
        if (n < KEYWORD_MIN_LETTERS || n <= best || n >= outsz || n >= KEYWORD_MAX_BYTES)
            continue;
        char w[KEYWORD_MAX_BYTES];
        for (size_t i = 0; i < n; i++)
            w[i] = (char)tolower((unsigned char)s[i]);
        w[n] = '\0';
        bool stop = false;
        for (const char *const *sw = stop_words; *sw && !stop; sw++)
            stop = strcmp(w, *sw) == 0;
        if (stop)
            continue;
        memcpy(out, w, n + 1);
        best = n;
    }
    return best > 0;
}

void sim_reply_init(sim_reply_t *r)
{
    memset(r, 0, sizeof(*r));
    sbuf_init(&r->text);
    for (unsigned i = 0; i < SIM_REPLY_MAX_CALLS; i++)
        sbuf_init(&r->calls[i].args);
}

void sim_reply_destroy(sim_reply_t *r)
{
    sbuf_destroy(&r->text);
    for (unsigned i = 0; i < SIM_REPLY_MAX_CALLS; i++)
        sbuf_destroy(&r->calls[i].args);
}

static sim_call_reply_t *add_call(sim_reply_t *out, const char *name)
{
    sim_call_reply_t *c = &out->calls[out->n_calls++];
    str_copy(c->name, name, sizeof(c->name));
    return c;
}

void sim_text_voice_reply(const char *user, bool from_audio, bool has_navigate,
                          const cJSON *section_enum, sim_reply_t *out)
{
    char section[SECTION_MAX_BYTES];
    size_t span_at = 0, span_len = 0;
    for (const char *const *ph = navigate_phrases; has_navigate && *ph && !span_len; ph++) {
        const char *m = sim_text_find_ci(user, *ph);
        size_t used = m ? pick_section(m + strlen(*ph), section_enum, section, sizeof(section)) : 0;
        if (used) {
            span_at = (size_t)(m - user);
            span_len = strlen(*ph) + used;
        }
    }
    /* Supervisor words count only outside the words that named a section ("the booking page"). */
    char *masked = xstrdup(user);
    memset(masked + span_at, ' ', span_len);
    bool supervisor = sim_text_has_any(masked, supervisor_words);
    free(masked);
    if (span_len) {
        sim_call_reply_t *c = add_call(out, SIM_TEXT_NAVIGATE_TOOL);
        sbuf_puts(&c->args, "{\"section\":");
        sbuf_json_str(&c->args, section);
        sbuf_putc(&c->args, '}');
    }
    if (supervisor) {
        sim_call_reply_t *c = add_call(out, SIM_TEXT_SUPERVISOR_TOOL);
        sbuf_puts(&c->args, "{\"relevantContextFromLastUserMessage\":");
        sbuf_json_str(&c->args, user);
        sbuf_putc(&c->args, '}');
    }
    if (out->n_calls)
        return;
    char kw[KEYWORD_MAX_BYTES];
    if (!from_audio && pick_keyword(user, kw, sizeof(kw)))
        sbuf_printf(&out->text, "Thanks for calling. You mentioned %s. How can I help you today?",
                    kw);
    else
        sbuf_puts(&out->text, SIM_TEXT_GREETING);
}

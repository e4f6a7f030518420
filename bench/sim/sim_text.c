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

/* The words after a navigation phrase, without fillers, up to punctuation. */
static void section_words(const char *rest, char *out, size_t outsz)
{
    for (bool again = true; again;) {
        again = false;
        for (const char *const *f = filler_words; *f; f++) {
            if (strncasecmp(rest, *f, strlen(*f)) == 0) {
                rest += strlen(*f);
                again = true;
            }
        }
    }
    size_t n = 0;
    while (rest[n] && n + 1 < outsz &&
           (isalnum((unsigned char)rest[n]) || rest[n] == ' ' || rest[n] == '-' || rest[n] == '_'))
        n++;
    while (n > 0 && rest[n - 1] == ' ')
        n--;
    memcpy(out, rest, n);
    out[n] = '\0';
    normalise_section(out);
}

/* Picks the section: the enum value the words start with, or else their first word. */
static bool pick_section(const char *rest, const cJSON *section_enum, char *out, size_t outsz)
{
    char words[SECTION_MAX_BYTES];
    section_words(rest, words, sizeof(words));
    if (words[0] == '\0')
        return false;
    if (cJSON_IsArray(section_enum)) {
        const cJSON *v;
        cJSON_ArrayForEach(v, section_enum)
        {
            if (!cJSON_IsString(v))
                continue;
            char cand[SECTION_MAX_BYTES];
            str_copy(cand, v->valuestring, sizeof(cand));
            normalise_section(cand);
            size_t cl = strlen(cand);
            if (cl && strncmp(words, cand, cl) == 0 && (words[cl] == '\0' || words[cl] == '-')) {
                str_copy(out, v->valuestring, outsz);
                return true;
            }
        }
    }
    char *dash = strchr(words, '-');
    if (dash && !cJSON_IsArray(section_enum))
        *dash = '\0';
    str_copy(out, words, outsz);
    return true;
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

void sim_text_voice_reply(const char *user, bool from_audio, bool has_navigate,
                          const cJSON *section_enum, sim_reply_t *out)
{
    out->kind = SIM_REPLY_SPEAK;
    out->name[0] = '\0';
    if (has_navigate) {
        for (const char *const *ph = navigate_phrases; *ph; ph++) {
            const char *m = sim_text_find_ci(user, *ph);
            char section[SECTION_MAX_BYTES];
            if (m && pick_section(m + strlen(*ph), section_enum, section, sizeof(section))) {
                out->kind = SIM_REPLY_CALL;
                str_copy(out->name, SIM_TEXT_NAVIGATE_TOOL, sizeof(out->name));
                sbuf_puts(&out->text, "{\"section\":");
                sbuf_json_str(&out->text, section);
                sbuf_putc(&out->text, '}');
                return;
            }
        }
    }
    if (sim_text_has_any(user, supervisor_words)) {
        out->kind = SIM_REPLY_CALL;
        str_copy(out->name, SIM_TEXT_SUPERVISOR_TOOL, sizeof(out->name));
        sbuf_puts(&out->text, "{\"relevantContextFromLastUserMessage\":");
        sbuf_json_str(&out->text, user);
        sbuf_putc(&out->text, '}');
        return;
    }
    char kw[KEYWORD_MAX_BYTES];
    if (!from_audio && pick_keyword(user, kw, sizeof(kw)))
        sbuf_printf(&out->text, "Thanks for calling. You mentioned %s. How can I help you today?",
                    kw);
    else
        sbuf_puts(&out->text, SIM_TEXT_GREETING);
}

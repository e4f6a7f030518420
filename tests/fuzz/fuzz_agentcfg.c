/*
 * libFuzzer target: agentcfg_parse() (agents/config/agentcfg.c), the strict reader of the agent
 * config file, on the input as the file's text. brief_file names are resolved against a
 * directory made for the run that holds one good brief (FUZZ_AGENTCFG_BRIEF), so the file path
 * is reached too. The error buffer's size comes from the input's length, down to 1 byte.
 *
 * On failure: a non-empty, NUL-terminated message and a zeroed result. On success: what the
 * parser promises (required strings set, opening hours in order within the day, services'
 * durations in range, each page found by its name with its sections), and
 * agentcfg_tool_allowed() agreeing with a dynamic-programming glob matcher for every pattern
 * against every name of the config.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agents/config/agentcfg.h"

#define FUZZ_AGENTCFG_BRIEF    "brief.txt"
#define FUZZ_AGENTCFG_ERR_MAX  512
#define FUZZ_AGENTCFG_DAY_MIN  (24 * 60)
#define FUZZ_AGENTCFG_GLOB_MAX 128 /* longer patterns or names are not compared */

static char base_dir[64];
static char brief_path[128];

static void remove_base_dir(void)
{
    unlink(brief_path);
    rmdir(base_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(base_dir, sizeof(base_dir), "/tmp/fuzz_agentcfg.XXXXXX");
    if (mkdtemp(base_dir) == NULL)
        abort();
    snprintf(brief_path, sizeof(brief_path), "%s/%s", base_dir, FUZZ_AGENTCFG_BRIEF);
    FILE *f = fopen(brief_path, "w");
    if (f == NULL)
        abort();
    fputs("A repair shop.\nOpen on weekdays.\n", f);
    fclose(f);
    atexit(remove_base_dir);
    return 0;
}

/* '*' matches any run of characters: the textbook table, obviously right and O(|p| |s|). */
static bool ref_glob(const char *p, const char *s)
{
    size_t pl = strlen(p), sl = strlen(s);
    if (pl > FUZZ_AGENTCFG_GLOB_MAX || sl > FUZZ_AGENTCFG_GLOB_MAX)
        abort();
    static bool t[FUZZ_AGENTCFG_GLOB_MAX + 1][FUZZ_AGENTCFG_GLOB_MAX + 1];
    /* t[i][j]: p[i..] matches s[j..] */
    for (size_t i = pl + 1; i-- > 0;)
        for (size_t j = sl + 1; j-- > 0;) {
            if (i == pl)
                t[i][j] = j == sl;
            else if (p[i] == '*')
                t[i][j] = t[i + 1][j] || (j < sl && t[i][j + 1]);
            else
                t[i][j] = j < sl && p[i] == s[j] && t[i + 1][j + 1];
        }
    return t[0][0];
}

static void check_globs(const agent_tool_globs_t *g, const char *name)
{
    if (name == NULL || strlen(name) > FUZZ_AGENTCFG_GLOB_MAX)
        return;
    bool want = false;
    for (size_t i = 0; i < g->n; i++)
        if (strlen(g->globs[i]) <= FUZZ_AGENTCFG_GLOB_MAX)
            want |= ref_glob(g->globs[i], name);
        else
            return;
    if (agentcfg_tool_allowed(g, name) != want)
        abort();
}

static void check_names(const agentcfg_t *ac, const char *name)
{
    check_globs(&ac->tools_voice, name);
    check_globs(&ac->tools_chat, name);
    check_globs(&ac->tools_agent, name);
}

static void check(const agentcfg_t *ac)
{
    if (ac->brief == NULL || ac->voice == NULL || ac->company_timezone == NULL)
        abort();
    for (int d = 0; d < 7; d++) {
        const agent_hours_t *h = &ac->hours[d];
        if (h->open && (h->open_min < 0 || h->open_min >= h->close_min ||
                        h->close_min > FUZZ_AGENTCFG_DAY_MIN))
            abort();
    }
    for (size_t i = 0; i < ac->n_services; i++) {
        if (ac->services[i].name == NULL || ac->services[i].duration_min <= 0 ||
            ac->services[i].duration_min > FUZZ_AGENTCFG_DAY_MIN)
            abort();
        check_names(ac, ac->services[i].name);
    }
    for (size_t i = 0; i < ac->n_pages; i++) {
        const agent_page_t *pg = agentcfg_page(ac, ac->pages[i].name);
        if (pg == NULL || strcmp(pg->name, ac->pages[i].name) != 0)
            abort();
        for (size_t s = 0; s < ac->pages[i].n_sections; s++) {
            if (!agentcfg_page_has_section(&ac->pages[i], ac->pages[i].sections[s]))
                abort();
            check_names(ac, ac->pages[i].sections[s]);
        }
        check_names(ac, ac->pages[i].name);
    }
    for (size_t i = 0; i < ac->n_mcp_servers; i++) {
        const agent_mcp_server_t *m = &ac->mcp_servers[i];
        if (m->alias == NULL || (m->command == NULL) == (m->url == NULL))
            abort();
        check_names(ac, m->alias);
    }
    check_names(ac, ac->company_name);
    check_names(ac, ac->voice);
    check_names(ac, "");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t errlen = size % FUZZ_AGENTCFG_ERR_MAX + 1;
    char *err = malloc(errlen);
    /* A copy of exactly size bytes: the parser must not read past len. */
    char *text = malloc(size ? size : 1);
    memcpy(text, data, size);
    agentcfg_t ac;
    memset(&ac, 0xa5, sizeof(ac));
    int rc = agentcfg_parse(&ac, text, size, base_dir, err, errlen);
    if (rc == 0) {
        check(&ac);
        agentcfg_free(&ac);
    } else {
        static const agentcfg_t zero;
        if (memchr(err, '\0', errlen) == NULL || (errlen > 1 && err[0] == '\0'))
            abort();
        if (memcmp(&ac, &zero, sizeof(ac)) != 0)
            abort();
    }
    free(text);
    free(err);
    return 0;
}

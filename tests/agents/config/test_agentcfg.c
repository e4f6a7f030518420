/* The agent config file (SPEC 2.2): the built-in demo, defaults, strict validation, globs. */
#include "agents/config/agentcfg.h"
#include "base/util.h"
#include "tests/runner.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
/* Tests end with _exit(), which skips LeakSanitizer's own check: run it by hand. */
#define LEAK_CHECK() __lsan_do_leak_check()
#else
#define LEAK_CHECK() ((void)0)
#endif

#define ERR_LEN 512

/* The smallest valid user file, and a prefix for adding keys after it. */
#define MINIMAL "{'company': {'name': 'Acme'}, 'brief': 'We fix things.'}"
#define BASE    "{'company': {'name': 'Acme'}, 'brief': 'We fix things.', "

/* Parses JSON written with single quotes (tests read better without escaped double quotes). */
static int parse_sq(agentcfg_t *ac, const char *sq, char *err, size_t errlen)
{
    char *json = xstrdup(sq);
    for (char *q = json; *q; q++)
        if (*q == '\'')
            *q = '"';
    int rc = agentcfg_parse(ac, json, strlen(json), NULL, err, errlen);
    free(json);
    return rc;
}

static void accept_sq(agentcfg_t *ac, const char *sq)
{
    char err[ERR_LEN] = "";
    if (parse_sq(ac, sq, err, sizeof(err)) != 0)
        TEST_FAIL_("rejected: %s\n# config: %s", err, sq);
}

/* Expects sq to be rejected with exactly the message want. */
static void reject_sq(const char *sq, const char *want)
{
    char err[ERR_LEN] = "";
    agentcfg_t ac;

    int rc = parse_sq(&ac, sq, err, sizeof(err));
    if (rc != -EINVAL)
        TEST_FAIL_("accepted (rc %d): %s", rc, sq);
    if (strcmp(err, want) != 0)
        TEST_FAIL_("for %s\n#   got: %s\n#  want: %s", sq, err, want);
    ASSERT(ac.company_name == NULL && ac.n_services == 0); /* nothing left to free */
}

static void write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");
    ASSERT(f != NULL);
    fputs(content, f);
    fclose(f);
}

TEST(agentcfg_demo_company)
{
    agentcfg_t ac;
    char err[ERR_LEN];

    ASSERT_EQ(agentcfg_load(&ac, NULL, err, sizeof(err)), 0);
    ASSERT_STR_EQ(ac.company_name, "Prime Auto Lab");
    ASSERT_STR_EQ(ac.company_phone, "(555) 123-4567");
    ASSERT_STR_EQ(ac.company_email, "info@primeautolab.com");
    ASSERT_STR_EQ(ac.company_timezone, "America/Los_Angeles");
    ASSERT_STR_EQ(ac.voice, "marin");
    ASSERT(ac.instructions_extra == NULL);
    ASSERT_EQ(ac.n_mcp_servers, 0);
    ASSERT_STR_EQ(ac.company_name, "Prime Auto Lab");
    agentcfg_free(&ac);
    LEAK_CHECK();
}

TEST(agentcfg_demo_brief_is_the_full_seed_text)
{
    agentcfg_t ac;
    char err[ERR_LEN];

    ASSERT_EQ(agentcfg_load(&ac, NULL, err, sizeof(err)), 0);
    const char *first = "Prime Auto Lab is a premium automotive repair shop specializing in "
                        "quality service and customer satisfaction.\n\nSERVICES:\n- Oil "
                        "changes (30 minutes, $50-80)\n";
    ASSERT_EQ(strncmp(ac.brief, first, strlen(first)), 0);
    ASSERT_STR_CONTAINS(ac.brief, "- Brake repair (2 hours, $150-400)\n");
    ASSERT_STR_CONTAINS(ac.brief, "- Battery replacement (30 minutes, $100-200)\n");
    ASSERT_STR_CONTAINS(ac.brief, "BUSINESS HOURS:\n- Monday - Friday: 8:00 AM - 6:00 PM\n"
                                  "- Saturday: 9:00 AM - 4:00 PM\n- Sunday: Closed\n");
    ASSERT_STR_CONTAINS(ac.brief, "LOCATION:\n123 Main Street, Your City, ST 12345\n");
    ASSERT_STR_CONTAINS(ac.brief, "- Warranty: 12 months / 12,000 miles on repairs\n");
    ASSERT_STR_CONTAINS(ac.brief, "- Financing available through partner\n");
    ASSERT_STR_CONTAINS(ac.brief, "- \"How long does an oil change take?\" \u2192 Usually 30-45 "
                                  "minutes\n");
    size_t n = strlen(ac.brief);
    const char *last = "- \"Do you offer shuttles?\" \u2192 Yes, complimentary shuttle within "
                       "10 miles\n";
    ASSERT_STR_EQ(ac.brief + n - strlen(last), last);
    agentcfg_free(&ac);
    LEAK_CHECK();
}

TEST(agentcfg_demo_services_and_hours)
{
    static const struct {
        const char *name;
        int duration_min;
        const char *price;
    } want[] = {
        {"Oil change", 30, "$50-80"},
        {"Brake repair", 120, "$150-400"},
        {"Tire services", 60, "$100-600"},
        {"Engine diagnostics", 90, "$100-200"},
        {"General maintenance", 45, "$80-300"},
        {"Air conditioning service", 60, "$150-250"},
        {"Battery replacement", 30, "$100-200"},
    };
    agentcfg_t ac;
    char err[ERR_LEN];

    ASSERT_EQ(agentcfg_load(&ac, NULL, err, sizeof(err)), 0);
    ASSERT_EQ(ac.n_services, ARRAY_LEN(want));
    for (size_t i = 0; i < ARRAY_LEN(want); i++) {
        ASSERT_STR_EQ(ac.services[i].name, want[i].name);
        ASSERT_EQ(ac.services[i].duration_min, want[i].duration_min);
        ASSERT_STR_EQ(ac.services[i].price, want[i].price);
    }
    for (int d = 0; d < 5; d++) {
        ASSERT(ac.hours[d].open);
        ASSERT_EQ(ac.hours[d].open_min, 8 * 60);
        ASSERT_EQ(ac.hours[d].close_min, 18 * 60);
    }
    ASSERT(ac.hours[5].open);
    ASSERT_EQ(ac.hours[5].open_min, 9 * 60);
    ASSERT_EQ(ac.hours[5].close_min, 16 * 60);
    ASSERT(!ac.hours[6].open);
    agentcfg_free(&ac);
    LEAK_CHECK();
}

TEST(agentcfg_demo_pages)
{
    static const char *const homepage[] = {"hero", "services", "case-studies", "pricing",
                                           "contact"};
    agentcfg_t ac;
    char err[ERR_LEN];

    ASSERT_EQ(agentcfg_load(&ac, NULL, err, sizeof(err)), 0);
    const agent_page_t *home = agentcfg_page(&ac, "homepage");
    ASSERT(home != NULL);
    ASSERT_EQ(home->n_sections, ARRAY_LEN(homepage));
    for (size_t i = 0; i < ARRAY_LEN(homepage); i++) {
        ASSERT_STR_EQ(home->sections[i], homepage[i]);
        ASSERT(agentcfg_page_has_section(home, homepage[i]));
    }
    ASSERT(!agentcfg_page_has_section(home, "faq"));
    ASSERT(!agentcfg_page_has_section(home, "Hero"));
    const agent_page_t *svc = agentcfg_page(&ac, "services");
    ASSERT(svc != NULL);
    ASSERT_EQ(svc->n_sections, 7);
    ASSERT(agentcfg_page_has_section(svc, "oil-change"));
    ASSERT(agentcfg_page_has_section(svc, "battery-replacement"));
    ASSERT(agentcfg_page(&ac, "pricing") == NULL);
    agentcfg_free(&ac);
    LEAK_CHECK();
}

TEST(agentcfg_demo_goes_through_the_parser)
{
    agentcfg_t a, b;
    char err[ERR_LEN];

    ASSERT_EQ(agentcfg_load(&a, NULL, err, sizeof(err)), 0);
    ASSERT_EQ(
        agentcfg_parse(&b, agentcfg_demo_json, strlen(agentcfg_demo_json), NULL, err, sizeof(err)),
        0);
    ASSERT_STR_EQ(a.brief, b.brief);
    ASSERT_EQ(a.n_services, b.n_services);
    ASSERT_EQ(a.n_pages, b.n_pages);
    ASSERT_EQ(memcmp(a.hours, b.hours, sizeof(a.hours)), 0);
    ASSERT_EQ(a.tools_voice.n, 1);
    ASSERT_STR_EQ(a.tools_voice.globs[0], "*");
    agentcfg_free(&a);
    agentcfg_free(&b);
    LEAK_CHECK();
}

TEST(agentcfg_minimal_user_file_defaults)
{
    agentcfg_t ac, demo;
    char err[ERR_LEN];

    accept_sq(&ac, MINIMAL);
    ASSERT_STR_EQ(ac.company_name, "Acme");
    ASSERT_STR_EQ(ac.company_phone, "");
    ASSERT_STR_EQ(ac.company_email, "");
    ASSERT_STR_EQ(ac.company_timezone, "UTC");
    ASSERT_STR_EQ(ac.brief, "We fix things.");
    ASSERT_EQ(ac.n_services, 0);
    ASSERT_STR_EQ(ac.voice, "marin");
    ASSERT(ac.instructions_extra == NULL);
    ASSERT_EQ(ac.n_pages, 0);
    ASSERT_EQ(ac.n_mcp_servers, 0);
    ASSERT_EQ(ac.tools_voice.n, 1);
    ASSERT_EQ(ac.tools_chat.n, 1);
    ASSERT_EQ(ac.tools_agent.n, 1);
    ASSERT_STR_EQ(ac.tools_agent.globs[0], "*");
    ASSERT_EQ(agentcfg_load(&demo, NULL, err, sizeof(err)), 0);
    ASSERT_EQ(memcmp(ac.hours, demo.hours, sizeof(ac.hours)), 0); /* the demo's hours */
    agentcfg_free(&ac);
    agentcfg_free(&demo);
    LEAK_CHECK();
}

TEST(agentcfg_full_user_file)
{
    agentcfg_t ac;

    accept_sq(&ac, "{'company': {'name': 'Acme Dental', 'phone': '+1 555 0100', "
                   "'email': 'desk@acme.example', 'timezone': 'Europe/Berlin'},"
                   " 'brief': 'Dentist.',"
                   " 'services': [{'name': 'Cleaning', 'duration_min': 45, 'price': '$90'},"
                   "              {'name': 'Checkup', 'duration_min': 30.0}],"
                   " 'hours': {'mon': ['09:00', '17:30'], 'sat': ['10:00', '24:00'],"
                   "           'sun': null},"
                   " 'voice': 'cedar', 'instructions_extra': 'Speak German if asked.',"
                   " 'pages': {'home': ['top', 'team'], 'booking_2': ['form']},"
                   " 'mcpServers': {"
                   "   'crm': {'command': 'node', 'args': ['crm.js', '--fast'],"
                   "           'env': {'CRM_TOKEN': 'abc', 'MODE': 'x=y'}},"
                   "   'docs-1': {'type': 'http', 'url': 'https://mcp.example/mcp',"
                   "              'headers': {'Authorization': 'Bearer t'}},"
                   "   'fs': {'type': 'stdio', 'command': 'fs-server'}},"
                   " 'tools': {'voice': ['navigate', 'crm_get*'], 'chat': [],"
                   "           'agent': ['*']}}");
    ASSERT_STR_EQ(ac.company_timezone, "Europe/Berlin");
    ASSERT_EQ(ac.n_services, 2);
    ASSERT_STR_EQ(ac.services[0].price, "$90");
    ASSERT_EQ(ac.services[1].duration_min, 30);
    ASSERT_STR_EQ(ac.services[1].price, "");
    ASSERT(ac.hours[0].open);
    ASSERT_EQ(ac.hours[0].open_min, 9 * 60);
    ASSERT_EQ(ac.hours[0].close_min, 17 * 60 + 30);
    ASSERT(!ac.hours[1].open); /* a day left out is closed */
    ASSERT(ac.hours[5].open);
    ASSERT_EQ(ac.hours[5].close_min, 24 * 60);
    ASSERT(!ac.hours[6].open);
    ASSERT_STR_EQ(ac.voice, "cedar");
    ASSERT_STR_EQ(ac.instructions_extra, "Speak German if asked.");
    ASSERT_EQ(ac.n_pages, 2);
    ASSERT(agentcfg_page_has_section(agentcfg_page(&ac, "booking_2"), "form"));
    ASSERT_EQ(ac.n_mcp_servers, 3);
    const agent_mcp_server_t *crm = &ac.mcp_servers[0];
    ASSERT_STR_EQ(crm->alias, "crm");
    ASSERT_STR_EQ(crm->command, "node");
    ASSERT(crm->url == NULL);
    ASSERT_EQ(crm->n_args, 2);
    ASSERT_STR_EQ(crm->args[1], "--fast");
    ASSERT_EQ(crm->n_env, 2);
    ASSERT_STR_EQ(crm->env[0], "CRM_TOKEN=abc");
    ASSERT_STR_EQ(crm->env[1], "MODE=x=y");
    const agent_mcp_server_t *docs = &ac.mcp_servers[1];
    ASSERT_STR_EQ(docs->alias, "docs-1");
    ASSERT(docs->command == NULL);
    ASSERT_STR_EQ(docs->url, "https://mcp.example/mcp");
    ASSERT_EQ(docs->n_headers, 1);
    ASSERT_STR_EQ(docs->headers[0], "Authorization: Bearer t");
    ASSERT_STR_EQ(ac.mcp_servers[2].command, "fs-server");
    ASSERT_EQ(ac.mcp_servers[2].n_args, 0);
    ASSERT_EQ(ac.tools_voice.n, 2);
    ASSERT_EQ(ac.tools_chat.n, 0);
    ASSERT(agentcfg_tool_allowed(&ac.tools_voice, "crm_get_contact"));
    ASSERT(!agentcfg_tool_allowed(&ac.tools_voice, "crm_create_contact"));
    ASSERT(!agentcfg_tool_allowed(&ac.tools_chat, "navigate"));
    ASSERT(agentcfg_tool_allowed(&ac.tools_agent, "crm_create_contact"));
    agentcfg_free(&ac);
    agentcfg_free(&ac); /* idempotent */
    LEAK_CHECK();
}

TEST(agentcfg_unknown_keys)
{
    reject_sq("{'company': {'name': 'A', 'fax': '1'}, 'brief': 'b'}",
              "config: company.fax: unknown key");
    reject_sq(BASE "'colour': 'red'}", "config: colour: unknown key");
    reject_sq(BASE "'Brief': 'x'}", "config: Brief: unknown key");
    reject_sq(BASE "'services': [{'name': 'a', 'duration_min': 30},"
                   " {'name': 'b', 'duration_min': 30, 'cost': '$1'}]}",
              "config: services[1].cost: unknown key");
    reject_sq(BASE "'hours': {'monday': null}}", "config: hours.monday: unknown key");
    reject_sq(BASE "'mcpServers': {'crm': {'command': 'x', 'cwd': '/'}}}",
              "config: mcpServers.crm.cwd: unknown key");
    reject_sq(BASE "'tools': {'sms': []}}", "config: tools.sms: unknown key");
    LEAK_CHECK();
}

TEST(agentcfg_duplicate_keys)
{
    reject_sq("{'company': {'name': 'A'}, 'brief': 'b', 'brief': 'c'}",
              "config: brief: duplicate key");
    reject_sq(BASE "'pages': {'home': ['a'], 'home': ['b']}}", "config: pages.home: duplicate key");
    reject_sq(BASE "'services': [{'name': 'Oil', 'duration_min': 30},"
                   " {'name': 'oil', 'duration_min': 40}]}",
              "config: services[1].name: duplicate service name \"oil\"");
    reject_sq(BASE "'pages': {'home': ['a', 'b', 'a']}}",
              "config: pages.home[2]: duplicate section \"a\"");
    LEAK_CHECK();
}

TEST(agentcfg_wrong_types)
{
    reject_sq("[]", "config: expected an object at the top level, got an array");
    reject_sq("{'company': 'Acme', 'brief': 'b'}",
              "config: company: expected an object, got a string");
    reject_sq("{'company': {'name': 7}, 'brief': 'b'}",
              "config: company.name: expected a non-empty string, got a number");
    reject_sq("{'company': {'name': 'A'}, 'brief': true}",
              "config: brief: expected a non-empty string, got a boolean");
    reject_sq(BASE "'services': {}}", "config: services: expected an array, got an object");
    reject_sq(BASE "'services': ['oil']}", "config: services[0]: expected an object, got a string");
    reject_sq(BASE "'voice': 5}",
              "config: voice: expected a voice name ([A-Za-z0-9_-]{1,32}), got a number");
    reject_sq(BASE "'instructions_extra': []}",
              "config: instructions_extra: expected a string, got an array");
    reject_sq(BASE "'pages': []}", "config: pages: expected an object, got an array");
    reject_sq(BASE "'pages': {'home': 'hero'}}",
              "config: pages.home: expected an array of section ids, got a string");
    reject_sq(BASE "'hours': []}", "config: hours: expected an object, got an array");
    reject_sq(BASE "'mcpServers': []}", "config: mcpServers: expected an object, got an array");
    reject_sq(BASE "'mcpServers': {'a': 'x'}}",
              "config: mcpServers.a: expected an object, got a string");
    reject_sq(BASE "'mcpServers': {'a': {'command': 'x', 'args': 'y'}}}",
              "config: mcpServers.a.args: expected an array of strings, got a string");
    reject_sq(BASE "'mcpServers': {'a': {'command': 'x', 'args': ['y', 2]}}}",
              "config: mcpServers.a.args[1]: expected a string, got a number");
    reject_sq(BASE "'mcpServers': {'a': {'command': 'x', 'env': {'K': 1}}}}",
              "config: mcpServers.a.env.K: expected a string, got a number");
    reject_sq(BASE "'tools': []}", "config: tools: expected an object, got an array");
    reject_sq(BASE "'tools': {'voice': '*'}}",
              "config: tools.voice: expected an array of tool name patterns, got a string");
    LEAK_CHECK();
}

TEST(agentcfg_service_duration)
{
    static const char *const bad[][2] = {
        {"'30'", "got a string"}, {"4", "got 4"},           {"1441", "got 1441"},
        {"30.5", "got 30.5"},     {"-30", "got -30"},       {"null", "got null"},
        {"1e9", "got 1e+09"},     {"[30]", "got an array"},
    };
    char json[256], want[128];

    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        snprintf(json, sizeof(json),
                 BASE "'services': [{'name': 'a', 'duration_min': 30},"
                      " {'name': 'b', 'duration_min': 60},"
                      " {'name': 'c', 'duration_min': %s}]}",
                 bad[i][0]);
        snprintf(want, sizeof(want),
                 "config: services[2].duration_min: expected a whole number 5..1440, %s",
                 bad[i][1]);
        reject_sq(json, want);
    }
    reject_sq(BASE "'services': [{'name': 'a'}]}",
              "config: services[0].duration_min: required key is missing");
    reject_sq(BASE "'services': [{'duration_min': 30}]}",
              "config: services[0].name: required key is missing");
    reject_sq(BASE "'services': [{'name': '', 'duration_min': 30}]}",
              "config: services[0].name: expected a non-empty string");
    agentcfg_t ac;
    accept_sq(&ac, BASE "'services': [{'name': 'a', 'duration_min': 5},"
                        " {'name': 'b', 'duration_min': 1440}]}");
    ASSERT_EQ(ac.services[1].duration_min, 1440);
    agentcfg_free(&ac);
    LEAK_CHECK();
}

TEST(agentcfg_required_keys)
{
    reject_sq("{'brief': 'b'}", "config: company: required key is missing");
    reject_sq("{'company': {}, 'brief': 'b'}", "config: company.name: required key is missing");
    reject_sq("{'company': {'name': ''}, 'brief': 'b'}",
              "config: company.name: expected a non-empty string");
    reject_sq("{'company': {'name': 'A'}}",
              "config: brief: required key is missing (give brief or brief_file)");
    reject_sq("{'company': {'name': 'A'}, 'brief': ''}",
              "config: brief: expected a non-empty string");
    reject_sq("{'company': {'name': 'A'}, 'brief': 'b', 'brief_file': 'b.txt'}",
              "config: brief_file: cannot be given together with brief");
    LEAK_CHECK();
}

TEST(agentcfg_company_fields)
{
    reject_sq("{'company': {'name': 'A', 'timezone': 'Los Angeles'}, 'brief': 'b'}",
              "config: company.timezone: expected an IANA timezone name such as "
              "\"America/Los_Angeles\"");
    reject_sq("{'company': {'name': 'A', 'timezone': '../etc/passwd'}, 'brief': 'b'}",
              "config: company.timezone: expected an IANA timezone name such as "
              "\"America/Los_Angeles\"");
    reject_sq("{'company': {'name': 'A', 'timezone': 'America/'}, 'brief': 'b'}",
              "config: company.timezone: expected an IANA timezone name such as "
              "\"America/Los_Angeles\"");
    reject_sq("{'company': {'name': 'A', 'email': 'nobody'}, 'brief': 'b'}",
              "config: company.email: expected an e-mail address");
    agentcfg_t ac;
    accept_sq(&ac, "{'company': {'name': 'A', 'timezone': 'Etc/GMT+5', 'email': ''},"
                   " 'brief': 'b'}");
    ASSERT_STR_EQ(ac.company_timezone, "Etc/GMT+5");
    agentcfg_free(&ac);
    LEAK_CHECK();
}

TEST(agentcfg_hours_rules)
{
    const char *want_pair = "config: hours.tue: expected [\"HH:MM\", \"HH:MM\"] (opening, "
                            "closing) or null";
    reject_sq(BASE "'hours': {'tue': '09:00-17:00'}}", want_pair);
    reject_sq(BASE "'hours': {'tue': ['09:00']}}", want_pair);
    reject_sq(BASE "'hours': {'tue': ['09:00', '12:00', '13:00']}}", want_pair);
    reject_sq(BASE "'hours': {'tue': ['9:00', '17:00']}}",
              "config: hours.tue[0]: expected an opening time \"HH:MM\" (00:00..23:59)");
    reject_sq(BASE "'hours': {'tue': ['24:00', '24:00']}}",
              "config: hours.tue[0]: expected an opening time \"HH:MM\" (00:00..23:59)");
    reject_sq(BASE "'hours': {'tue': ['09:00', '17:60']}}",
              "config: hours.tue[1]: expected a closing time \"HH:MM\" (00:01..24:00)");
    reject_sq(BASE "'hours': {'tue': ['09:00', 1700]}}",
              "config: hours.tue[1]: expected a closing time \"HH:MM\" (00:01..24:00)");
    reject_sq(BASE "'hours': {'tue': ['09:00', '24:01']}}",
              "config: hours.tue[1]: expected a closing time \"HH:MM\" (00:01..24:00)");
    reject_sq(BASE "'hours': {'tue': ['17:00', '09:00']}}",
              "config: hours.tue: opens at 17:00 but closes at 09:00: the opening time must "
              "come first");
    reject_sq(BASE "'hours': {'tue': ['09:00', '09:00']}}",
              "config: hours.tue: opens at 09:00 but closes at 09:00: the opening time must "
              "come first");
    agentcfg_t ac;
    accept_sq(&ac, BASE "'hours': {}}");
    for (int d = 0; d < 7; d++)
        ASSERT(!ac.hours[d].open); /* an empty hours object: closed all week */
    agentcfg_free(&ac);
    accept_sq(&ac, BASE "'hours': {'sun': ['00:00', '23:59']}}");
    ASSERT(ac.hours[6].open);
    ASSERT_EQ(ac.hours[6].open_min, 0);
    ASSERT_EQ(ac.hours[6].close_min, 23 * 60 + 59);
    agentcfg_free(&ac);
    LEAK_CHECK();
}

TEST(agentcfg_page_and_section_ids)
{
    reject_sq(BASE "'pages': {'home page': ['a']}}",
              "config: pages.home page: invalid page name (expected [A-Za-z0-9_-]{1,64})");
    reject_sq(BASE "'pages': {'': ['a']}}",
              "config: pages.: invalid page name (expected [A-Za-z0-9_-]{1,64})");
    reject_sq(BASE "'pages': {'home': ['hero', 'a/b']}}",
              "config: pages.home[1]: expected a section id ([A-Za-z0-9_-]{1,64})");
    reject_sq(BASE "'pages': {'home': [3]}}",
              "config: pages.home[0]: expected a section id ([A-Za-z0-9_-]{1,64})");
    reject_sq(BASE "'pages': {'home': []}}",
              "config: pages.home: expected at least one section id");
    char json[256], id65[66];
    memset(id65, 'x', 65);
    id65[65] = '\0';
    snprintf(json, sizeof(json), BASE "'pages': {'home': ['%s']}}", id65);
    reject_sq(json, "config: pages.home[0]: expected a section id ([A-Za-z0-9_-]{1,64})");
    agentcfg_t ac;
    id65[64] = '\0';
    snprintf(json, sizeof(json), BASE "'pages': {'%s': ['%s']}}", id65, id65);
    accept_sq(&ac, json);
    ASSERT(agentcfg_page(&ac, id65) != NULL);
    agentcfg_free(&ac);
    LEAK_CHECK();
}

TEST(agentcfg_mcp_servers_rules)
{
    reject_sq(BASE "'mcpServers': {'a': {'command': 'x', 'url': 'http://h/'}}}",
              "config: mcpServers.a: give either \"command\" (stdio) or \"url\" (HTTP), not both");
    reject_sq(BASE "'mcpServers': {'a': {'args': []}}}",
              "config: mcpServers.a: expected \"command\" (stdio) or \"url\" (HTTP)");
    reject_sq(BASE "'mcpServers': {'a': {'url': 'http://h/', 'args': []}}}",
              "config: mcpServers.a.args: only allowed with \"command\"");
    reject_sq(BASE "'mcpServers': {'a': {'url': 'http://h/', 'env': {}}}}",
              "config: mcpServers.a.env: only allowed with \"command\"");
    reject_sq(BASE "'mcpServers': {'a': {'command': 'x', 'headers': {}}}}",
              "config: mcpServers.a.headers: only allowed with \"url\"");
    reject_sq(BASE "'mcpServers': {'a': {'command': ''}}}",
              "config: mcpServers.a.command: expected a non-empty string");
    reject_sq(BASE "'mcpServers': {'a': {'url': 'ftp://h/'}}}",
              "config: mcpServers.a.url: expected an http:// or https:// URL");
    reject_sq(BASE "'mcpServers': {'a': {'url': 'https://'}}}",
              "config: mcpServers.a.url: expected an http:// or https:// URL");
    reject_sq(BASE "'mcpServers': {'a': {'url': 'https://h/a b'}}}",
              "config: mcpServers.a.url: expected an http:// or https:// URL");
    reject_sq(BASE "'mcpServers': {'a.b': {'command': 'x'}}}",
              "config: mcpServers.a.b: invalid server alias (expected [A-Za-z0-9_-]{1,32})");
    reject_sq(BASE "'mcpServers': {'abcdefghijabcdefghijabcdefghijabc': {'command': 'x'}}}",
              "config: mcpServers.abcdefghijabcdefghijabcdefghijabc: invalid server alias "
              "(expected [A-Za-z0-9_-]{1,32})");
    reject_sq(BASE "'mcpServers': {'a': {'command': 'x', 'env': {'1BAD': 'v'}}}}",
              "config: mcpServers.a.env.1BAD: invalid name");
    reject_sq(BASE "'mcpServers': {'a': {'command': 'x', 'env': {'A-B': 'v'}}}}",
              "config: mcpServers.a.env.A-B: invalid name");
    reject_sq(BASE "'mcpServers': {'a': {'url': 'http://h/', 'headers': {'X Y': 'v'}}}}",
              "config: mcpServers.a.headers.X Y: invalid name");
    reject_sq(BASE "'mcpServers': {'a': {'url': 'http://h/', 'headers': {'X': 'v\\r\\nY: z'}}}}",
              "config: mcpServers.a.headers.X: the value must not contain line breaks");
    reject_sq(BASE "'mcpServers': {'a': {'type': 'sse', 'url': 'http://h/'}}}",
              "config: mcpServers.a.type: unsupported transport \"sse\" (expected stdio, http "
              "or streamable-http)");
    reject_sq(BASE "'mcpServers': {'a': {'type': 'stdio', 'url': 'http://h/'}}}",
              "config: mcpServers.a.type: \"stdio\" does not match the url given");
    reject_sq(BASE "'mcpServers': {'a': {'type': 'http', 'command': 'x'}}}",
              "config: mcpServers.a.type: \"http\" does not match the command given");
    reject_sq(BASE "'mcpServers': {'a': {'type': 1, 'command': 'x'}}}",
              "config: mcpServers.a.type: expected a string, got a number");
    LEAK_CHECK();
}

TEST(agentcfg_tools_rules)
{
    reject_sq(BASE "'tools': {'chat': ['ok', '']}}",
              "config: tools.chat[1]: expected a tool name pattern (a non-empty string without "
              "spaces; '*' matches any run of characters)");
    reject_sq(BASE "'tools': {'agent': ['a b']}}",
              "config: tools.agent[0]: expected a tool name pattern (a non-empty string "
              "without spaces; '*' matches any run of characters)");
    agentcfg_t ac;
    accept_sq(&ac, BASE "'tools': {'chat': ['x']}}");
    ASSERT_EQ(ac.tools_voice.n, 1); /* the surfaces left out keep ["*"] */
    ASSERT_STR_EQ(ac.tools_voice.globs[0], "*");
    ASSERT_EQ(ac.tools_chat.n, 1);
    ASSERT_STR_EQ(ac.tools_chat.globs[0], "x");
    agentcfg_free(&ac);
    LEAK_CHECK();
}

TEST(agentcfg_globs)
{
    char *all[] = {"*"};
    char *some[] = {"crm_get*", "*_read", "a*b*c", "navigate"};
    char *stars[] = {"**"};
    agent_tool_globs_t g_all = {all, 1}, g_some = {some, 4}, g_none = {NULL, 0};
    agent_tool_globs_t g_stars = {stars, 1};

    ASSERT(agentcfg_tool_allowed(&g_all, "anything"));
    ASSERT(agentcfg_tool_allowed(&g_all, ""));
    ASSERT(agentcfg_tool_allowed(&g_stars, "x"));
    ASSERT(!agentcfg_tool_allowed(&g_none, "navigate"));
    ASSERT(agentcfg_tool_allowed(&g_some, "navigate"));
    ASSERT(!agentcfg_tool_allowed(&g_some, "navigate2"));
    ASSERT(!agentcfg_tool_allowed(&g_some, "Navigate"));
    ASSERT(agentcfg_tool_allowed(&g_some, "crm_get"));
    ASSERT(agentcfg_tool_allowed(&g_some, "crm_get_contact"));
    ASSERT(!agentcfg_tool_allowed(&g_some, "crm_create"));
    ASSERT(agentcfg_tool_allowed(&g_some, "file_read"));
    ASSERT(agentcfg_tool_allowed(&g_some, "_read"));
    ASSERT(!agentcfg_tool_allowed(&g_some, "file_read_all"));
    ASSERT(agentcfg_tool_allowed(&g_some, "abc"));
    ASSERT(agentcfg_tool_allowed(&g_some, "aXbYbZc"));
    ASSERT(agentcfg_tool_allowed(&g_some, "abcbc"));
    ASSERT(!agentcfg_tool_allowed(&g_some, "abcx"));
    ASSERT(!agentcfg_tool_allowed(&g_some, "acb"));

    /* Backtracking stays linear-ish: this would take ages with naive recursion. */
    char *hard[] = {"*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b"};
    agent_tool_globs_t g_hard = {hard, 1};
    char name[4097];
    memset(name, 'a', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    ASSERT(!agentcfg_tool_allowed(&g_hard, name));
    name[sizeof(name) - 2] = 'b';
    ASSERT(agentcfg_tool_allowed(&g_hard, name));
}

TEST(agentcfg_invalid_json)
{
    agentcfg_t ac;
    char err[ERR_LEN];
    const char *bad = "{\n  \"company\": {\"name\": \"A\"},\n  \"brief\": ,\n}";

    ASSERT_EQ(agentcfg_parse(&ac, bad, strlen(bad), NULL, err, sizeof(err)), -EINVAL);
    ASSERT_STR_CONTAINS(err, "config: invalid JSON at line 3");
    ASSERT_EQ(agentcfg_parse(&ac, "", 0, NULL, err, sizeof(err)), -EINVAL);
    ASSERT_STR_CONTAINS(err, "config: invalid JSON at line 1");
    reject_sq(MINIMAL " x", "config: invalid JSON at line 1, column 58");
    reject_sq(MINIMAL " {}", "config: invalid JSON at line 1, column 58");
    /* The length is honoured: the text past it is not read. */
    const char *two = "{\"company\": {\"name\": \"A\"}, \"brief\": \"b\"}GARBAGE";
    ASSERT_EQ(agentcfg_parse(&ac, two, strlen(two) - 7, NULL, err, sizeof(err)), 0);
    agentcfg_free(&ac);
    const char *trailing_ws = MINIMAL "\n\t \r\n";
    accept_sq(&ac, trailing_ws);
    agentcfg_free(&ac);
    LEAK_CHECK();
}

TEST(agentcfg_brief_file_relative_to_config)
{
    char dir[] = "/tmp/sb_test_agentcfg_XXXXXX";
    char path[256], brief[256], cfg[256], err[ERR_LEN];
    agentcfg_t ac;

    ASSERT(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/sub", dir);
    ASSERT_EQ(mkdir(path, 0700), 0);
    snprintf(brief, sizeof(brief), "%s/sub/brief.txt", dir);
    write_file(brief, "We are Acme.\nOpen late.\n");
    snprintf(cfg, sizeof(cfg), "%s/agent.json", dir);
    write_file(cfg, "{\"company\": {\"name\": \"Acme\"}, \"brief_file\": \"sub/brief.txt\"}");
    ASSERT_EQ(agentcfg_load(&ac, cfg, err, sizeof(err)), 0);
    ASSERT_STR_EQ(ac.brief, "We are Acme.\nOpen late.\n");
    agentcfg_free(&ac);

    /* An absolute brief_file is used as it is. */
    char json[512];
    snprintf(json, sizeof(json), "{\"company\": {\"name\": \"Acme\"}, \"brief_file\": \"%s\"}",
             brief);
    write_file(cfg, json);
    ASSERT_EQ(agentcfg_load(&ac, cfg, err, sizeof(err)), 0);
    ASSERT_STR_EQ(ac.brief, "We are Acme.\nOpen late.\n");
    agentcfg_free(&ac);

    /* Missing, empty, a folder, with a NUL byte. */
    char want[512];
    write_file(cfg, "{\"company\": {\"name\": \"Acme\"}, \"brief_file\": \"nope.txt\"}");
    ASSERT_EQ(agentcfg_load(&ac, cfg, err, sizeof(err)), -EINVAL);
    snprintf(want, sizeof(want),
             "config: brief_file: cannot read \"%s/nope.txt\": No such file or directory", dir);
    ASSERT_STR_EQ(err, want);
    write_file(brief, " \n\n");
    write_file(cfg, "{\"company\": {\"name\": \"Acme\"}, \"brief_file\": \"sub/brief.txt\"}");
    ASSERT_EQ(agentcfg_load(&ac, cfg, err, sizeof(err)), -EINVAL);
    ASSERT_STR_CONTAINS(err, "sub/brief.txt\": the file is empty");
    FILE *f = fopen(brief, "w");
    fwrite("a\0b", 1, 3, f);
    fclose(f);
    ASSERT_EQ(agentcfg_load(&ac, cfg, err, sizeof(err)), -EINVAL);
    ASSERT_STR_CONTAINS(err, "sub/brief.txt\": the file contains a NUL byte");
    write_file(cfg, "{\"company\": {\"name\": \"Acme\"}, \"brief_file\": \"sub\"}");
    ASSERT_EQ(agentcfg_load(&ac, cfg, err, sizeof(err)), -EINVAL);
    ASSERT_STR_CONTAINS(err, "sub\": not a regular file");
    reject_sq("{'company': {'name': 'A'}, 'brief_file': 3}",
              "config: brief_file: expected a file path, got a number");

    unlink(brief);
    unlink(cfg);
    rmdir(path);
    rmdir(dir);
    LEAK_CHECK();
}

TEST(agentcfg_load_errors)
{
    agentcfg_t ac;
    char err[ERR_LEN];

    ASSERT_EQ(agentcfg_load(&ac, "/nonexistent/agent.json", err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, "config: cannot read \"/nonexistent/agent.json\": No such file or "
                       "directory");
    ASSERT_EQ(agentcfg_load(&ac, "/tmp", err, sizeof(err)), -EINVAL);
    ASSERT_STR_CONTAINS(err, "not a regular file");
    ASSERT(ac.company_name == NULL);
}

TEST(agentcfg_relative_config_path)
{
    char dir[] = "/tmp/sb_test_agentcfg_XXXXXX";
    char path[256], err[ERR_LEN];
    agentcfg_t ac;

    ASSERT(mkdtemp(dir) != NULL);
    ASSERT_EQ(chdir(dir), 0);
    write_file("brief.md", "Hello.");
    write_file("agent.json", "{\"company\": {\"name\": \"A\"}, \"brief_file\": \"brief.md\"}");
    ASSERT_EQ(agentcfg_load(&ac, "agent.json", err, sizeof(err)), 0);
    ASSERT_STR_EQ(ac.brief, "Hello.");
    agentcfg_free(&ac);
    unlink("brief.md");
    unlink("agent.json");
    snprintf(path, sizeof(path), "%s", dir);
    ASSERT_EQ(chdir("/"), 0);
    rmdir(path);
    LEAK_CHECK();
}

TEST(agentcfg_small_error_buffer)
{
    agentcfg_t ac;
    char err[12];

    ASSERT_EQ(agentcfg_parse(&ac, "[]", 2, NULL, err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, "config: exp");
    ASSERT_EQ(agentcfg_parse(&ac, "[]", 2, NULL, NULL, 0), -EINVAL);
}

TEST(agentcfg_errors_free_partial_state)
{
    /* Fails late, after services, pages and an MCP server were allocated. */
    reject_sq(BASE "'services': [{'name': 'a', 'duration_min': 30}],"
                   " 'pages': {'home': ['a']},"
                   " 'mcpServers': {'x': {'command': 'c', 'args': ['1'], 'env': {'A': 'b'}},"
                   "                'y': {'url': 'http://h/', 'headers': {'H': 'v'}}},"
                   " 'tools': {'voice': ['a'], 'chat': ['b'], 'agent': [1]}}",
              "config: tools.agent[0]: expected a tool name pattern (a non-empty string without "
              "spaces; '*' matches any run of characters), got a number");
    LEAK_CHECK();
}

#define PK "pk_abcdefghijklmnopqrstuvwx"

TEST(agentcfg_tenant_keys)
{
    agentcfg_t ac;
    accept_sq(&ac, BASE "'publicKey': '" PK "', 'apiSecret': 'sk_0123456789abcdef', "
                        "'jwtSecret': 'jwt-0123456789abcdef', "
                        "'allowedOrigins': ['https://WWW.Acme.example', 'http://[::1]:8080'], "
                        "'phoneNumbers': ['+14155550100', '+442071838750'], 'maxSessions': 5}");
    ASSERT_STR_EQ(ac.access.public_key, PK);
    ASSERT_STR_EQ(ac.access.api_secret, "sk_0123456789abcdef");
    ASSERT_STR_EQ(ac.access.jwt_secret, "jwt-0123456789abcdef");
    ASSERT_EQ(ac.access.n_origins, 2);
    ASSERT_STR_EQ(ac.access.origins[0], "https://www.acme.example"); /* stored lowercase */
    ASSERT_EQ(ac.access.n_phone_numbers, 2);
    ASSERT_STR_EQ(ac.access.phone_numbers[1], "+442071838750");
    ASSERT_EQ(ac.access.max_sessions, 5);
    agentcfg_free(&ac);

    accept_sq(&ac, MINIMAL); /* all optional in a file */
    ASSERT(ac.access.public_key == NULL && ac.access.api_secret == NULL);
    ASSERT_EQ(ac.access.n_origins, 0);
    ASSERT_EQ(ac.access.max_sessions, 0);
    agentcfg_free(&ac);
    LEAK_CHECK();
}

TEST(agentcfg_tenant_keys_rules)
{
    reject_sq(BASE "'publicKey': 'pk_short'}",
              "config: publicKey: expected \"pk_\" followed by 24..128 of [A-Za-z0-9_-]");
    reject_sq(BASE "'publicKey': 'xx_abcdefghijklmnopqrstuvwx'}",
              "config: publicKey: expected \"pk_\" followed by 24..128 of [A-Za-z0-9_-]");
    reject_sq(BASE "'apiSecret': 'short'}",
              "config: apiSecret: expected a secret of 16..256 printable characters without "
              "spaces");
    reject_sq(BASE "'apiSecret': 5}", "config: apiSecret: expected a secret of 16..256 printable "
                                      "characters without spaces, got a number");
    reject_sq(BASE "'allowedOrigins': ['https://a.example/path']}",
              "config: allowedOrigins[0]: expected an origin such as "
              "\"https://www.example.com\" (scheme, host and port, no path)");
    reject_sq(BASE "'allowedOrigins': ['*']}",
              "config: allowedOrigins[0]: expected an origin such as "
              "\"https://www.example.com\" (scheme, host and port, no path)");
    reject_sq(BASE "'allowedOrigins': 'https://a.example'}",
              "config: allowedOrigins: expected an array of origins, got a string");
    reject_sq(BASE "'allowedOrigins': ['https://a.example', 'https://A.example']}",
              "config: allowedOrigins[1]: \"https://A.example\" is listed twice");
    reject_sq(BASE "'phoneNumbers': ['4155550100']}",
              "config: phoneNumbers[0]: expected an E.164 number such as \"+14155550123\"");
    reject_sq(BASE "'phoneNumbers': ['+0155550100']}",
              "config: phoneNumbers[0]: expected an E.164 number such as \"+14155550123\"");
    reject_sq(BASE "'maxSessions': 0}", "config: maxSessions: expected a whole number 1..1000000, "
                                        "got 0");
    reject_sq(BASE "'maxSessions': '3'}", "config: maxSessions: expected a whole number "
                                          "1..1000000, got a string");
}

TEST(agentcfg_phone_and_postcall)
{
    agentcfg_t ac;
    accept_sq(&ac, MINIMAL);
    ASSERT_EQ(ac.tools_phone.n, 3);
    ASSERT_STR_EQ(ac.tools_phone.globs[0], "getNextResponseFromSupervisor");
    ASSERT_STR_EQ(ac.tools_phone.globs[2], "endCall");
    ASSERT_EQ(ac.tools_postcall.n, 0); /* no CRM: nothing */
    ASSERT(ac.postcall.enabled);
    ASSERT_EQ(ac.postcall.min_user_turns, 1);
    ASSERT(ac.phone.transfer_to == NULL);
    agentcfg_free(&ac);

    accept_sq(&ac, BASE "'mcpServers': {'crm': {'url': 'http://crm.example/mcp'}}, "
                        "'phone': {'transferTo': '+14155550199'}, "
                        "'postcall': {'enabled': false, 'crm': 'crm', 'minUserTurns': 2, "
                        "'instructions': 'Tag as lead.'}, 'tools': {'phone': ['endCall']}}");
    ASSERT_STR_EQ(ac.phone.transfer_to, "+14155550199");
    ASSERT(!ac.postcall.enabled);
    ASSERT_STR_EQ(ac.postcall.crm, "crm");
    ASSERT_EQ(ac.postcall.min_user_turns, 2);
    ASSERT_STR_EQ(ac.postcall.instructions, "Tag as lead.");
    ASSERT_EQ(ac.tools_postcall.n, 1);
    ASSERT_STR_EQ(ac.tools_postcall.globs[0], "crm__*");
    ASSERT_EQ(ac.tools_phone.n, 1);
    agentcfg_free(&ac);

    reject_sq(BASE "'phone': {'transferTo': '555'}}",
              "config: phone.transferTo: expected an E.164 number such as \"+14155550123\"");
    reject_sq(BASE "'phone': {'transfer': '+14155550199'}}", "config: phone.transfer: unknown key");
    reject_sq(BASE "'postcall': {'crm': 'hubspot'}}",
              "config: postcall.crm: \"hubspot\" is not one of mcpServers");
    reject_sq(BASE "'postcall': {'enabled': 'yes'}}",
              "config: postcall.enabled: expected a boolean, got a string");
    reject_sq(BASE "'postcall': {'minUserTurns': -1}}",
              "config: postcall.minUserTurns: expected a whole number 0..1000, got -1");
    reject_sq(BASE "'tools': {'postcall': 'crm__*'}}",
              "config: tools.postcall: expected an array of tool name patterns, got a string");
    LEAK_CHECK();
}

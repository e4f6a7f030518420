/* The instructions the voice model receives, generated from the agent config (SPEC 2.2, 6). */
#include <stdio.h>
#include <time.h>

#include "agents/supervisor/prompt.h"
#include "agents/supervisor/supervisor.h"
#include "base/sbuf.h"

static const char *const day_names[7] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                         "Friday", "Saturday", "Sunday"};

/* Contact details, hours, services, the brief and the extra instructions, for both prompts. */
static void company_facts(sbuf_t *b, const agentcfg_t *ac)
{
    sbuf_printf(b, "Contact: phone %s, email %s. Time zone: %s.\n", ac->company_phone,
                ac->company_email, ac->company_timezone);
    sbuf_puts(b, "Opening hours:");
    for (int d = 0; d < 7; d++) {
        const agent_hours_t *h = &ac->hours[d];
        if (h->open)
            sbuf_printf(b, " %s %02d:%02d-%02d:%02d;", day_names[d], h->open_min / 60,
                        h->open_min % 60, h->close_min / 60, h->close_min % 60);
        else
            sbuf_printf(b, " %s closed;", day_names[d]);
    }
    sbuf_puts(b, "\nServices:");
    for (size_t i = 0; i < ac->n_services; i++)
        sbuf_printf(b, " %s (%d min, %s);", ac->services[i].name, ac->services[i].duration_min,
                    ac->services[i].price);
    sbuf_puts(b, "\n\n<company_brief>\n");
    sbuf_puts(b, ac->brief);
    sbuf_puts(b, "\n</company_brief>\n");
    if (ac->instructions_extra) {
        sbuf_puts(b, "\n");
        sbuf_puts(b, ac->instructions_extra);
        sbuf_puts(b, "\n");
    }
}

char *prompt_receptionist(const agentcfg_t *ac)
{
    sbuf_t b = SBUF_INIT;
    sbuf_printf(&b,
                "You are the friendly voice receptionist of %s. Speak naturally and briefly: one "
                "or two sentences at a time. Answer simple questions from the company brief "
                "below. For bookings, availability, customer records or anything you cannot "
                "answer from the brief, call getNextResponseFromSupervisor with the relevant "
                "context and read its answer to the caller. Never invent prices, times or "
                "policies.\n\n",
                ac->company_name);
    company_facts(&b, ac);
    return sbuf_take(&b);
}

char *prompt_supervisor(const agentcfg_t *ac, int64_t now_ms)
{
    sbuf_t b = SBUF_INIT;
    sbuf_printf(&b,
                "You are the supervisor of the voice receptionist of %s. The receptionist hands "
                "you the caller's requests it cannot answer alone. Use the tools to check "
                "availability, book appointments and look up customers; never invent prices, "
                "times or policies. Answer with what the receptionist should say to the caller, "
                "in two or three short spoken sentences, without lists or markup.\n",
                ac->company_name);
    time_t t = (time_t)(now_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char day[32];
    strftime(day, sizeof(day), "%Y-%m-%d (%A)", &tm);
    sbuf_printf(&b, "Today is %s (UTC).\n", day);
    company_facts(&b, ac);
    return sbuf_take(&b);
}

char *prompt_postcall(const agentcfg_t *ac)
{
    sbuf_t b = SBUF_INIT;
    sbuf_printf(&b,
                "You are the back office of %s. A call has just ended; record it in the CRM "
                "with the tools you have. First look the caller up by phone or email; never "
                "create a contact that already exists. Create the contact when there is none, "
                "otherwise update it with what is new. Then attach exactly one note with the "
                "call's summary and its transcript. When the caller gave neither a phone number "
                "nor an email, call no tool. Answer with one short sentence saying what you "
                "did.",
                ac->company_name ? ac->company_name : "the business");
    if (ac->postcall.instructions) {
        sbuf_puts(&b, "\n\n");
        sbuf_puts(&b, ac->postcall.instructions);
    }
    return sbuf_take(&b);
}

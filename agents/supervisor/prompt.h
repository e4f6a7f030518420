/*
 * prompt: the instructions both models receive, generated from the agent config (SPEC 2.2, 6,
 * 7): the voice model's receptionist prompt (the brief inside <company_brief>) and a supervisor
 * run's system prompt. Pure: no I/O. Thread: any.
 */
#ifndef SB_AGENTS_SUPERVISOR_PROMPT_H
#define SB_AGENTS_SUPERVISOR_PROMPT_H

#include <stdint.h>

#include "agents/config/agentcfg.h"

/* The receptionist instructions (malloc'd). */
char *prompt_receptionist(const agentcfg_t *ac);
/* The system prompt of a supervisor run at now_ms (malloc'd). */
char *prompt_supervisor(const agentcfg_t *ac, int64_t now_ms);
/* The system prompt of a post-call CRM run (SPEC 15), with postcall.instructions (malloc'd). */
char *prompt_postcall(const agentcfg_t *ac);

#endif

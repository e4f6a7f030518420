/*
 * msgtypes: the one registry of message-type ranges. Every layer and every subsystem of agents/
 * numbers its messages from its own base here (`X_MSG_FIRST = MSG_TYPE_X_BASE + 1, …`) and
 * nowhere else, so two senders can never collide. A range holds 0x100 types; a subsystem that
 * needs private types (timers, self-messages) takes them from the top of its own range.
 * Only numbers: including this header creates no dependency on the layers it names.
 */
#ifndef SB_MAILBOX_MSGTYPES_H
#define SB_MAILBOX_MSGTYPES_H

#define MSG_TYPE_RANGE 0x0100u

/* Layers. */
#define MSG_TYPE_ACTOR_BASE 0x0100u /* actors/: the runtime (stop, timers) */
#define MSG_TYPE_NET_BASE   0x0200u /* net/ -> actors: sockets, fetches, child processes */

/* Subsystems of agents/. */
#define MSG_TYPE_AUTH_BASE       0x1000u /* agents/auth: the gate (tokens, admissions) */
#define MSG_TYPE_VOICE_BASE      0x1100u /* agents/voice: session <-> upstream */
#define MSG_TYPE_PAGE_BASE       0x1200u /* agents/page: the command router */
#define MSG_TYPE_CHAT_BASE       0x1300u /* agents/chat: registry <-> thread actors */
#define MSG_TYPE_AGENTRUN_BASE   0x1400u /* agents/agentrun */
#define MSG_TYPE_STORE_BASE      0x1500u /* agents/store: records, chat history, its timers */
#define MSG_TYPE_TOOLS_BASE      0x1800u /* agents/tools: the tool-call protocol */
#define MSG_TYPE_SUPERVISOR_BASE 0x1900u /* agents/supervisor: pool and runs */
#define MSG_TYPE_MCP_BASE        0x1A00u /* agents/mcp: clients and their owner */
#define MSG_TYPE_ONBOARD_BASE    0x1B00u /* agents/onboard: the brief endpoint's timers */
#define MSG_TYPE_POSTCALL_BASE   0x1C00u /* agents/postcall: the job runner's timers */

/* Not product: unit tests' and benchmarks' own actors. */
#define MSG_TYPE_TEST_BASE 0x7000u

#endif

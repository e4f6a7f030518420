/*
 * Random faults (--faults PER_MIN): the soak's chaos on the simulator's side. A timer fires at
 * exponentially distributed gaps (a Poisson process of PER_MIN faults a minute on average); each
 * firing takes the next kind from a shuffled bag of the enabled kinds, so every kind comes up
 * once per round of the bag, in a random order, and a short run still sees all of them:
 * - drop: a live Realtime connection picked at random loses its TCP connection, no close frame;
 * - expire: a live Realtime session picked at random gets `error` session_expired and close 1001;
 * - 429 / 500: the next Chat Completions request answers 429 rate_limit_exceeded (with
 *   retry-after-ms) or 500 server_error.
 * A Realtime fault only hits a session that has been configured (session.updated sent): before
 * that, an error would be the answer to the client's session.update, which a client treats as
 * a refused configuration, not as an expiry. With no such session the kind waits for the next
 * firing. The gaps and the picks come from their own generator, seeded by --fault-seed (printed
 * at start), so the sequence of kinds and gaps replays; which session a pick hits depends on the
 * traffic. Every fault is logged at warn level (sim.fault), so --quiet keeps them.
 * Thread: the simulator's only thread.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "bench/sim/sim_rt.h"

#define FAULT_MS_PER_MIN      60000.0
#define FAULT_MAX_GAP_MEANS   10.0 /* the longest gap, in mean gaps: a bound on the tail */
#define FAULT_CHAT_PENDING    16   /* chat failures armed and not yet served */
#define FAULT_TARGETS_INITIAL 64

static const char *const kind_names[SIM_FAULT_KINDS] = {"drop", "expire", "429", "500"};

static struct {
    bool running;
    uv_timer_t timer;
    uint64_t rng;
    sim_fault_kind_t bag[SIM_FAULT_KINDS];
    int bag_len, bag_next;
    sim_rt_t **targets; /* configured sessions; each knows its index (fault_slot) */
    size_t n_targets, cap_targets;
    sim_chat_fail_t chat[FAULT_CHAT_PENDING]; /* a FIFO ring of armed chat failures */
    unsigned chat_head, chat_len;
} g_fault;

/* splitmix64: a good stream from any seed, zero included. */
static uint64_t fault_rand(void)
{
    uint64_t z = (g_fault.rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double fault_unit(void)
{
    return (double)(fault_rand() >> 11) * (1.0 / 9007199254740992.0);
}

static void bag_shuffle(void)
{
    for (int i = g_fault.bag_len - 1; i > 0; i--) {
        int j = (int)(fault_rand() % (uint64_t)(i + 1));
        sim_fault_kind_t t = g_fault.bag[i];
        g_fault.bag[i] = g_fault.bag[j];
        g_fault.bag[j] = t;
    }
    g_fault.bag_next = 0;
}

static uint64_t next_gap_ms(void)
{
    double mean = FAULT_MS_PER_MIN / g_sim_cfg.faults_per_min;
    double gap = -mean * log(1.0 - fault_unit());
    if (gap > mean * FAULT_MAX_GAP_MEANS)
        gap = mean * FAULT_MAX_GAP_MEANS;
    return gap < 1.0 ? 1 : (uint64_t)gap;
}

/* Runs one fault of kind k; returns false when it has nothing to hit yet (no live session). */
static bool inject(sim_fault_kind_t k)
{
    if (k == SIM_FAULT_CHAT_429 || k == SIM_FAULT_CHAT_500) {
        if (g_fault.chat_len == FAULT_CHAT_PENDING)
            return true; /* nobody is asking: the oldest armed ones are still waiting */
        unsigned slot = (g_fault.chat_head + g_fault.chat_len++) % FAULT_CHAT_PENDING;
        g_fault.chat[slot] = k == SIM_FAULT_CHAT_429 ? SIM_CHAT_FAIL_429 : SIM_CHAT_FAIL_500;
        log_warn("sim.fault", LOG_S("kind", kind_names[k]), LOG_S("target", "next chat request"));
        return true;
    }
    if (g_fault.n_targets == 0)
        return false;
    sim_rt_t *rt = g_fault.targets[fault_rand() % g_fault.n_targets];
    sim_fault_target_remove(rt); /* hit once */
    g_sim_stats.faults[k]++;
    log_warn("sim.fault", LOG_S("kind", kind_names[k]), LOG_S("session", rt->id));
    if (k == SIM_FAULT_DROP)
        sim_conn_drop(rt->conn);
    else
        sim_rt_expire(rt);
    return true;
}

static void on_timer(uv_timer_t *t)
{
    (void)t;
    if (g_fault.bag_next == g_fault.bag_len)
        bag_shuffle();
    if (inject(g_fault.bag[g_fault.bag_next]))
        g_fault.bag_next++;
    uv_timer_start(&g_fault.timer, on_timer, next_gap_ms(), 0);
}

int sim_fault_parse_kinds(const char *s, unsigned *mask)
{
    *mask = 0;
    while (*s) {
        size_t n = strcspn(s, ",");
        int k = 0;
        while (k < SIM_FAULT_KINDS &&
               !(strlen(kind_names[k]) == n && strncmp(s, kind_names[k], n) == 0))
            k++;
        if (k == SIM_FAULT_KINDS)
            return -1;
        *mask |= 1u << k;
        s += n + (s[n] == ',');
    }
    return *mask ? 0 : -1;
}

void sim_fault_start(void)
{
    if (g_sim_cfg.faults_per_min <= 0)
        return;
    g_fault.rng = g_sim_cfg.fault_seed;
    for (int k = 0; k < SIM_FAULT_KINDS; k++)
        if (g_sim_cfg.fault_kinds & (1u << k))
            g_fault.bag[g_fault.bag_len++] = (sim_fault_kind_t)k;
    g_fault.bag_next = g_fault.bag_len; /* shuffled at the first firing */
    uv_timer_init(g_sim_loop, &g_fault.timer);
    uv_timer_start(&g_fault.timer, on_timer, next_gap_ms(), 0);
    g_fault.running = true;
    char kinds[32];
    size_t used = 0;
    kinds[0] = '\0';
    for (int i = 0; i < g_fault.bag_len; i++)
        used += (size_t)snprintf(kinds + used, sizeof(kinds) - used, "%s%s", i ? "," : "",
                                 kind_names[g_fault.bag[i]]);
    fprintf(stderr, "switchboard-sim faults: %.2f per minute (%s), --fault-seed %llu\n",
            g_sim_cfg.faults_per_min, kinds, (unsigned long long)g_sim_cfg.fault_seed);
}

void sim_fault_stop(void)
{
    if (!g_fault.running)
        return;
    g_fault.running = false;
    uv_timer_stop(&g_fault.timer);
    uv_close((uv_handle_t *)&g_fault.timer, NULL);
}

void sim_fault_shutdown(void)
{
    free(g_fault.targets);
    g_fault.targets = NULL;
    g_fault.n_targets = g_fault.cap_targets = 0;
}

void sim_fault_target_add(sim_rt_t *rt)
{
    if (!g_fault.running || rt->fault_slot >= 0)
        return;
    if (g_fault.n_targets == g_fault.cap_targets) {
        g_fault.cap_targets = g_fault.cap_targets ? g_fault.cap_targets * 2 : FAULT_TARGETS_INITIAL;
        g_fault.targets = xrealloc(g_fault.targets, g_fault.cap_targets * sizeof(*g_fault.targets));
    }
    rt->fault_slot = (int)g_fault.n_targets;
    g_fault.targets[g_fault.n_targets++] = rt;
}

void sim_fault_target_remove(sim_rt_t *rt)
{
    if (rt->fault_slot < 0)
        return;
    size_t i = (size_t)rt->fault_slot;
    sim_rt_t *last = g_fault.targets[--g_fault.n_targets];
    g_fault.targets[i] = last;
    last->fault_slot = (int)i;
    rt->fault_slot = -1;
}

sim_chat_fail_t sim_fault_take_chat(void)
{
    if (g_fault.chat_len == 0)
        return SIM_CHAT_FAIL_NONE;
    sim_chat_fail_t f = g_fault.chat[g_fault.chat_head];
    g_fault.chat_head = (g_fault.chat_head + 1) % FAULT_CHAT_PENDING;
    g_fault.chat_len--;
    g_sim_stats.faults[f == SIM_CHAT_FAIL_429 ? SIM_FAULT_CHAT_429 : SIM_FAULT_CHAT_500]++;
    return f;
}

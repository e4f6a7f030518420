/*
 * Open server sockets per client address, across every network thread
 * (SWITCHBOARD_CONNECTIONS_PER_IP, SPEC 2.1 and 14); see net_int.h.
 *
 * The kernel spreads one address's connections over all the threads' listeners, so the count
 * is shared. It changes once per accept, per close, and when a trusted proxy's request names
 * another client, never per frame, so a mutex over a small open-addressing table (linear
 * probing, backward-shift deletion, grown at half load) is simpler than anything lock-free and
 * never contended for long. Thread: any (every function here).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "net/net_int.h"

#define PEERLIM_SLOTS_MIN 64

typedef struct peer_slot {
    uint8_t addr[16];
    uint32_t count; /* 0 = empty slot */
} peer_slot_t;

static struct {
    pthread_mutex_t lock;
    uint32_t cap;       /* per address; 0 = no cap (set before the threads start) */
    peer_slot_t *slots; /* {lock} */
    uint32_t n_slots;   /* {lock} a power of two */
    uint32_t n_used;    /* {lock} */
} g_pl = {.lock = PTHREAD_MUTEX_INITIALIZER};

static uint32_t hash16(const uint8_t a[16])
{
    /* FNV-1a: addresses are not attacker-chosen in bulk (each needs a socket). */
    uint32_t h = 2166136261u;
    for (int i = 0; i < 16; i++)
        h = (h ^ a[i]) * 16777619u;
    return h;
}

/* The slot holding a, or the empty slot where it would go. {lock} */
static peer_slot_t *find(const uint8_t a[16])
{
    uint32_t mask = g_pl.n_slots - 1;
    for (uint32_t i = hash16(a) & mask;; i = (i + 1) & mask) {
        peer_slot_t *s = &g_pl.slots[i];
        if (s->count == 0 || memcmp(s->addr, a, 16) == 0)
            return s;
    }
}

/* Doubles the table. {lock} */
static void grow(void)
{
    peer_slot_t *old = g_pl.slots;
    uint32_t n_old = g_pl.n_slots;
    g_pl.n_slots = n_old ? n_old * 2 : PEERLIM_SLOTS_MIN;
    g_pl.slots = xcalloc(g_pl.n_slots, sizeof(*g_pl.slots));
    for (uint32_t i = 0; i < n_old; i++)
        if (old[i].count)
            *find(old[i].addr) = old[i];
    free(old);
}

void peerlim_init(uint32_t cap_per_addr)
{
    pthread_mutex_lock(&g_pl.lock);
    g_pl.cap = cap_per_addr;
    pthread_mutex_unlock(&g_pl.lock);
}

bool peerlim_try_add(const uint8_t addr16[16], bool force)
{
    bool ok = true;
    pthread_mutex_lock(&g_pl.lock);
    if (g_pl.n_used * 2 >= g_pl.n_slots)
        grow();
    peer_slot_t *s = find(addr16);
    if (!force && g_pl.cap && s->count >= g_pl.cap) {
        ok = false;
    } else {
        if (s->count == 0) {
            memcpy(s->addr, addr16, 16);
            g_pl.n_used++;
        }
        s->count++;
    }
    pthread_mutex_unlock(&g_pl.lock);
    return ok;
}

void peerlim_remove(const uint8_t addr16[16])
{
    pthread_mutex_lock(&g_pl.lock);
    peer_slot_t *s = g_pl.n_slots ? find(addr16) : NULL;
    if (s && s->count > 0 && --s->count == 0) {
        /* Backward-shift deletion keeps every probe chain unbroken without tombstones. */
        uint32_t mask = g_pl.n_slots - 1;
        uint32_t hole = (uint32_t)(s - g_pl.slots);
        for (uint32_t j = (hole + 1) & mask; g_pl.slots[j].count; j = (j + 1) & mask) {
            uint32_t home = hash16(g_pl.slots[j].addr) & mask;
            /* Move j into the hole unless its home lies cyclically in (hole, j]. */
            bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
            if (!stays) {
                g_pl.slots[hole] = g_pl.slots[j];
                hole = j;
            }
        }
        g_pl.slots[hole].count = 0;
        g_pl.n_used--;
    }
    pthread_mutex_unlock(&g_pl.lock);
}

uint32_t peerlim_count(const uint8_t addr16[16])
{
    pthread_mutex_lock(&g_pl.lock);
    uint32_t n = g_pl.n_slots ? find(addr16)->count : 0;
    pthread_mutex_unlock(&g_pl.lock);
    return n;
}

void peerlim_reset(void)
{
    pthread_mutex_lock(&g_pl.lock);
    free(g_pl.slots);
    g_pl.slots = NULL;
    g_pl.n_slots = g_pl.n_used = 0;
    g_pl.cap = 0;
    pthread_mutex_unlock(&g_pl.lock);
}

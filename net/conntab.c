/*
 * The connection table of a network thread: ids, slots and generations (net_int.h).
 *
 * Actors name a connection by a 64-bit id {thread:8, slot:24, generation:32}. The slot finds it
 * in O(1); the generation, bumped each time the slot is freed, makes a frame for a connection
 * that has gone miss instead of reaching the next connection in that slot. Server and client
 * connections share the table, which knows only their common part (net_conn_t).
 * Thread: the table's network thread (every function here).
 */
#include <errno.h>
#include <stdlib.h>

#include "base/metrics.h"
#include "base/util.h"
#include "net/net_int.h"

#define CONN_SLOTS_MIN 64
#define SLOT_SHIFT     32
#define SLOT_MASK      0xffffffu

static uint32_t slot_of(conn_id_t id)
{
    return (uint32_t)(id >> SLOT_SHIFT) & SLOT_MASK;
}

static int grow(conntab_t *t)
{
    uint32_t old = t->n_slots, cap = old ? old * 2 : CONN_SLOTS_MIN;
    if (cap > SLOT_MASK)
        return -ENOSPC;
    t->slots = xrealloc(t->slots, cap * sizeof(*t->slots));
    t->gens = xrealloc(t->gens, cap * sizeof(*t->gens));
    t->free_slots = xrealloc(t->free_slots, cap * sizeof(*t->free_slots));
    for (uint32_t i = cap; i > old; i--) {
        t->slots[i - 1] = NULL;
        t->gens[i - 1] = 1;
        t->free_slots[t->n_free++] = i - 1; /* the lowest slots are used first */
    }
    t->n_slots = cap;
    return 0;
}

int conntab_add(netthr_t *thr, net_conn_t *c)
{
    conntab_t *t = &thr->conns;
    if (t->n_free == 0 && grow(t) != 0)
        return -ENOSPC;
    uint32_t slot = t->free_slots[--t->n_free];
    c->thr = thr;
    c->id = ((uint64_t)thr->idx << NET_ID_THREAD_SHIFT) | ((uint64_t)slot << SLOT_SHIFT) |
            t->gens[slot];
    t->slots[slot] = c;
    metric_gauge_add(&g_metrics.connections_open, 1);
    return 0;
}

void conntab_remove(net_conn_t *c)
{
    conntab_t *t = &c->thr->conns;
    uint32_t slot = slot_of(c->id);
    t->slots[slot] = NULL;
    if (++t->gens[slot] == 0)
        t->gens[slot] = 1; /* 0 is never a valid id */
    t->free_slots[t->n_free++] = slot;
    metric_gauge_add(&g_metrics.connections_open, -1);
}

net_conn_t *conntab_lookup(netthr_t *thr, conn_id_t id)
{
    const conntab_t *t = &thr->conns;
    uint32_t slot = slot_of(id);
    if (slot >= t->n_slots)
        return NULL;
    net_conn_t *c = t->slots[slot];
    return c && c->id == id ? c : NULL;
}

void conntab_destroy(conntab_t *t)
{
    free(t->slots);
    free(t->gens);
    free(t->free_slots);
    t->slots = NULL;
    t->gens = t->free_slots = NULL;
    t->n_slots = t->n_free = 0;
}

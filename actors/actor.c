/* Actor lifecycle, sending and one turn of a behaviour; see the CONTRACT in actor.h. */
#include "actors/actor.h"

#include <ck_pr.h>
#include <errno.h>
#include <stdlib.h>

#include "actors/sched.h"
#include "actors/timer.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"

static uint64_t
    next_actor_id; /* [atomic, any] advisory id source; relaxed: ids only need to be unique */

int actor_spawn(actor_t *a, const actor_type_t *type, lane_t lane)
{
    mbox_init(&a->mbox, sched_mailbox_cap());
    a->refs = 1;
    a->run_next = NULL;
    a->type = type;
    a->lane = (uint8_t)lane;
    a->id = ck_pr_faa_64(&next_actor_id, 1) + 1;
    a->stop_requested = false;
    a->stopped = false;
    int rc = sched_register(a);
    if (rc != 0)
        return rc;
    metric_gauge_add(&g_metrics.actors_live, 1);
    return 0;
}

void actor_ref(actor_t *a)
{
    ck_pr_inc_32(&a->refs);
}

bool actor_try_ref(actor_t *a)
{
    uint32_t r = ck_pr_load_32(&a->refs);
    while (r != 0) {
        if (ck_pr_cas_32_value(&a->refs, r, r + 1, &r))
            return true;
    }
    return false;
}

/* Runs the stop behaviour once and frees whatever is still queued. Thread: owner. */
static void stop_now(actor_t *a)
{
    if (a->stopped)
        return;
    a->stopped = true;
    if (a->type->stop)
        a->type->stop(a);
}

void actor_unref(actor_t *a)
{
    /*
     * The decrement is a full barrier on x86; the fence orders every earlier access to the
     * actor by this thread before the free that another thread's final decrement may do.
     */
    ck_pr_fence_atomic();
    if (ck_pr_faa_32(&a->refs, (uint32_t)-1) != 1)
        return;
    ck_pr_fence_acquire();
    /* Last reference: nobody can send or schedule any more, so this thread is the owner. */
    stop_now(a);
    sched_unregister(a);
    mbox_destroy(&a->mbox);
    metric_gauge_add(&g_metrics.actors_live, -1);
    free(a);
}

void actor_send(actor_t *a, msg_t *m)
{
    int rc = mbox_push_mp(&a->mbox, m);
    if (rc == MBOX_WAS_EMPTY) {
        /* The scheduler's reference, dropped when a turn leaves the mailbox empty. */
        actor_ref(a);
        sched_enqueue(a);
    } else if (rc == MBOX_REJECTED) {
        metric_inc(&g_metrics.audio_dropped_total, 1);
    }
}

void actor_stop(actor_t *a)
{
    actor_send(a, msg_new(MSG_ACTOR_STOP, sizeof(msg_t)));
}

void actor_stop_self(actor_t *self)
{
    self->stop_requested = true;
}

uint32_t actor_run(actor_t *a, uint32_t batch)
{
    uint64_t dropped_before = a->mbox.dropped;
    for (uint32_t n = 0; n < batch; n++) {
        msg_t *m = mbox_pop_sc(&a->mbox);
        if (m == NULL)
            break;
        if (a->stopped || m->type == MSG_ACTOR_STOP) {
            if (m->type == MSG_ACTOR_STOP)
                a->stop_requested = true;
            msg_free(m);
        } else if ((m->flags & MSG_F_TIMER) && !actor_timer_is_current(m)) {
            msg_free(m); /* an expiry of a timer stopped or re-armed since */
        } else {
            a->type->handle(a, m);
        }
        if (a->stop_requested && !a->stopped)
            stop_now(a);
    }
    if (a->mbox.dropped != dropped_before)
        metric_inc(&g_metrics.audio_dropped_total, a->mbox.dropped - dropped_before);
    return mbox_done_sc(&a->mbox);
}

/* An actor that keeps what it gets; see probe.h. */
#include "tests/fakes/probe.h"

#include <ck_pr.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "tests/runner.h"

#define PROBE_MSGS_MIN     16
#define PROBE_REFS_POLL_US 1000

static void probe_handle(actor_t *self, msg_t *m)
{
    probe_t *p = (probe_t *)self;
    pthread_mutex_lock(&p->lock);
    if (m->type == PROBE_MSG_SYNC) {
        p->syncs_seen++;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
        msg_free(m);
        return;
    }
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : PROBE_MSGS_MIN;
        p->msgs = xrealloc(p->msgs, p->cap * sizeof(*p->msgs));
    }
    p->msgs[p->n++] = m;
    p->received++;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

static void probe_stop(actor_t *self)
{
    probe_t *p = (probe_t *)self;
    for (size_t i = 0; i < p->n; i++)
        msg_free(p->msgs[i]);
    free(p->msgs);
    p->msgs = NULL;
    p->n = 0;
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
}

static const actor_type_t probe_type = {"probe", probe_handle, probe_stop};

probe_t *probe_new(const char *name, lane_t lane)
{
    probe_t *p = xcalloc(1, sizeof(*p));
    p->name = name;
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &ca);
    pthread_condattr_destroy(&ca);
    ASSERT_EQ(actor_spawn(&p->actor, &probe_type, lane), 0);
    return p;
}

void probe_free(probe_t *p)
{
    if (p)
        actor_unref(&p->actor);
}

/* Takes the oldest kept message of type (0 = any), waiting; NULL on timeout. */
static msg_t *take(probe_t *p, uint32_t type)
{
    struct timespec deadline;
    clock_deadline(&deadline, CLOCK_MONOTONIC, PROBE_WAIT_MS);
    msg_t *m = NULL;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        for (size_t i = 0; i < p->n; i++) {
            if (type == 0 || p->msgs[i]->type == type) {
                m = p->msgs[i];
                memmove(p->msgs + i, p->msgs + i + 1, (p->n - i - 1) * sizeof(*p->msgs));
                p->n--;
                break;
            }
        }
        if (m || pthread_cond_timedwait(&p->cond, &p->lock, &deadline) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&p->lock);
    return m;
}

msg_t *probe_take(probe_t *p, uint32_t type)
{
    msg_t *m = take(p, type);
    if (m == NULL)
        TEST_FAIL_("probe %s: no message of type 0x%x within %d ms", p->name, type, PROBE_WAIT_MS);
    return m;
}

msg_t *probe_next(probe_t *p)
{
    msg_t *m = take(p, 0);
    if (m == NULL)
        TEST_FAIL_("probe %s: no message within %d ms", p->name, PROBE_WAIT_MS);
    return m;
}

int probe_count(probe_t *p, uint32_t type)
{
    struct timespec deadline;
    clock_deadline(&deadline, CLOCK_MONOTONIC, PROBE_WAIT_MS);
    pthread_mutex_lock(&p->lock);
    uint64_t want = ++p->syncs_sent;
    pthread_mutex_unlock(&p->lock);
    actor_send(&p->actor, msg_new(PROBE_MSG_SYNC, sizeof(msg_t)));
    int n = 0;
    pthread_mutex_lock(&p->lock);
    while (p->syncs_seen < want)
        if (pthread_cond_timedwait(&p->cond, &p->lock, &deadline) == ETIMEDOUT)
            TEST_FAIL_("probe %s: its mailbox did not drain within %d ms", p->name, PROBE_WAIT_MS);
    for (size_t i = 0; i < p->n; i++)
        n += type == 0 || p->msgs[i]->type == type;
    pthread_mutex_unlock(&p->lock);
    return n;
}

uint32_t probe_refs(probe_t *p)
{
    return ck_pr_load_32(&p->actor.refs);
}

void probe_wait_refs(probe_t *p, uint32_t refs)
{
    struct timespec now, deadline;
    clock_deadline(&deadline, CLOCK_MONOTONIC, PROBE_WAIT_MS);
    for (;;) {
        uint32_t have = probe_refs(p);
        if (have == refs)
            return;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > deadline.tv_sec ||
            (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec))
            TEST_FAIL_("probe %s: %u references after %d ms, wanted %u", p->name, have,
                       PROBE_WAIT_MS, refs);
        usleep(PROBE_REFS_POLL_US);
    }
}

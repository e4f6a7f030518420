/*
 * Stress (validate) test of the MPSC mailbox, meant for TSan (`make tsan`) and ASan.
 *
 * P producer threads start on a barrier and push tagged messages {producer, seq}. A consumer
 * thread owns the mailbox only when handed a token, exactly like the scheduler does it: the push
 * that returns MBOX_WAS_EMPTY posts a token; the consumer drains at most a batch, calls
 * mbox_done_sc() and re-posts the token itself while messages remain. Checks: no message lost,
 * none duplicated, FIFO per producer, never two owners at once. A second phase mixes audio and
 * control messages into a small mailbox: every control message arrives, in order, and every
 * audio message is either delivered once or counted as dropped/rejected.
 */
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ck_pr.h>

#include "mailbox/mbox.h"

#define PRODUCERS      6
#define MSGS_PER_PROD  200000
#define BATCH          64
#define SMALL_CAP      64
#define AUDIO_PER_PROD 50000

typedef struct tagged {
    msg_t hdr;
    uint32_t producer;
    uint32_t seq;
} tagged_t;

static mbox_t mb;
static sem_t token;
static pthread_barrier_t start;
static uint32_t owners; /* [atomic] consumers inside a turn; must never exceed 1 */
static int audio_phase;

static void fail(const char *what, unsigned a, unsigned b)
{
    fprintf(stderr, "stress_mbox: %s (%u, %u)\n", what, a, b);
    abort();
}

static void *producer(void *arg)
{
    uint32_t id = (uint32_t)(uintptr_t)arg;
    uint32_t n = audio_phase ? AUDIO_PER_PROD : MSGS_PER_PROD;
    pthread_barrier_wait(&start);
    for (uint32_t i = 0; i < n; i++) {
        tagged_t *t = MSG_NEW(tagged_t, 1);
        t->producer = id;
        t->seq = i;
        /* In the audio phase, every fourth message is control and must never be lost. */
        if (audio_phase && i % 4 != 0)
            t->hdr.flags |= MSG_F_AUDIO;
        int rc = mbox_push_mp(&mb, &t->hdr);
        if (rc == MBOX_WAS_EMPTY)
            sem_post(&token);
    }
    return NULL;
}

typedef struct results {
    uint32_t next_seq[PRODUCERS]; /* next expected seq of each producer (control only in phase 2) */
    uint64_t received;
    uint64_t received_audio;
    uint32_t last_audio[PRODUCERS];
} results_t;

static void consume(results_t *r, uint64_t expect_total)
{
    while (r->received < expect_total) {
        sem_wait(&token);
        if (ck_pr_faa_32(&owners, 1) != 0)
            fail("two consumers own the mailbox", 0, 0);
        int n = 0;
        msg_t *m;
        while (n < BATCH && (m = mbox_pop_sc(&mb)) != NULL) {
            tagged_t *t = (tagged_t *)m;
            if (t->producer >= PRODUCERS)
                fail("bad producer tag", t->producer, 0);
            if (!audio_phase) {
                if (t->seq != r->next_seq[t->producer])
                    fail("lost, duplicated or reordered message", t->seq, r->next_seq[t->producer]);
                r->next_seq[t->producer]++;
            } else if (t->hdr.flags & MSG_F_AUDIO) {
                /* Audio may be dropped but never duplicated or reordered. */
                if (r->last_audio[t->producer] != UINT32_MAX &&
                    t->seq <= r->last_audio[t->producer])
                    fail("audio duplicated or reordered", t->seq, r->last_audio[t->producer]);
                r->last_audio[t->producer] = t->seq;
                r->received_audio++;
            } else {
                if (t->seq != r->next_seq[t->producer])
                    fail("control message lost or reordered", t->seq, r->next_seq[t->producer]);
                r->next_seq[t->producer] += 4;
            }
            r->received++;
            msg_free(m);
            n++;
        }
        ck_pr_dec_32(&owners);
        uint32_t left = mbox_done_sc(&mb);
        if (left > 0)
            sem_post(&token);
        if (audio_phase && left == 0 && r->received >= expect_total)
            break;
    }
}

static void run_phase(int phase)
{
    audio_phase = phase;
    mbox_init(&mb, phase ? SMALL_CAP : 1024);
    sem_init(&token, 0, 0);
    pthread_barrier_init(&start, NULL, PRODUCERS);
    pthread_t th[PRODUCERS];
    for (uintptr_t i = 0; i < PRODUCERS; i++)
        pthread_create(&th[i], NULL, producer, (void *)i);

    results_t r;
    memset(&r, 0, sizeof(r));
    memset(r.last_audio, 0xff, sizeof(r.last_audio));
    if (!phase) {
        consume(&r, (uint64_t)PRODUCERS * MSGS_PER_PROD);
        for (int i = 0; i < PRODUCERS; i++)
            if (r.next_seq[i] != MSGS_PER_PROD)
                fail("producer short", (unsigned)i, r.next_seq[i]);
        printf("ok 1 - %d producers x %d messages: no loss, no duplicates, FIFO per producer\n",
               PRODUCERS, MSGS_PER_PROD);
    } else {
        /*
         * Every control message must arrive; audio may be dropped. Consume until all producers
         * are done and the mailbox is empty.
         */
        uint64_t control = (uint64_t)PRODUCERS * (AUDIO_PER_PROD / 4);
        results_t *rp = &r;
        for (;;) {
            consume(rp, rp->received + 1);
            int done = 1;
            for (int i = 0; i < PRODUCERS; i++)
                done &= rp->next_seq[i] >= AUDIO_PER_PROD;
            if (done)
                break;
        }
        /* Every control message is in; the producers may still push their last audio. */
        for (int i = 0; i < PRODUCERS; i++)
            pthread_join(th[i], NULL);
        while (mbox_depth(&mb) > 0)
            consume(rp, rp->received + 1);
        uint64_t audio_sent = (uint64_t)PRODUCERS * AUDIO_PER_PROD - control;
        uint64_t accounted = r.received_audio + mb.dropped + ck_pr_load_64(&mb.rejected);
        if (accounted != audio_sent)
            fail("audio not accounted for", (unsigned)accounted, (unsigned)audio_sent);
        printf("ok 2 - mixed audio/control at cap %d: %llu control all delivered in order; audio "
               "%llu delivered, %llu dropped oldest, %llu rejected\n",
               SMALL_CAP, (unsigned long long)control, (unsigned long long)r.received_audio,
               (unsigned long long)mb.dropped, (unsigned long long)ck_pr_load_64(&mb.rejected));
        mbox_destroy(&mb);
        pthread_barrier_destroy(&start);
        sem_destroy(&token);
        return;
    }
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(th[i], NULL);
    if (mbox_depth(&mb) != 0)
        fail("mailbox not empty at the end", mbox_depth(&mb), 0);
    mbox_destroy(&mb);
    pthread_barrier_destroy(&start);
    sem_destroy(&token);
}

int main(void)
{
    printf("1..2\n");
    run_phase(0);
    run_phase(1);
    return 0;
}

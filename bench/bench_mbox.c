/*
 * Mailbox throughput: P producers push N messages each as fast as they can into one mailbox; one
 * consumer pops them with the scheduler's hand-off protocol (a turn per MBOX_WAS_EMPTY, batches
 * of SCHED_BATCH_MSGS). Prints messages per second for 1 and 4 producers (and a markdown row
 * with --markdown). Producers start on a barrier, like the stress test.
 */
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/sched.h"
#include "base/util.h"
#include "mailbox/mbox.h"

#define MSGS_TOTAL 4000000

static mbox_t mb;
static sem_t token;
static pthread_barrier_t start;
static int producers;

static void *producer(void *arg)
{
    (void)arg;
    int n = MSGS_TOTAL / producers;
    /* Preallocate so the measurement is the queue, not malloc. */
    msg_t **ms = xmalloc((size_t)n * sizeof(*ms));
    for (int i = 0; i < n; i++)
        ms[i] = msg_new(1, sizeof(msg_t));
    pthread_barrier_wait(&start);
    for (int i = 0; i < n; i++)
        if (mbox_push_mp(&mb, ms[i]) == MBOX_WAS_EMPTY)
            sem_post(&token);
    free(ms);
    return NULL;
}

static double run(int p)
{
    producers = p;
    mbox_init(&mb, 1024);
    sem_init(&token, 0, 0);
    pthread_barrier_init(&start, NULL, (unsigned)p + 1);
    pthread_t th[16];
    for (int i = 0; i < p; i++)
        pthread_create(&th[i], NULL, producer, NULL);
    pthread_barrier_wait(&start);
    uint64_t t0 = clock_now_ns();
    long got = 0, want = (long)(MSGS_TOTAL / p) * p;
    while (got < want) {
        sem_wait(&token);
        for (;;) {
            int n = 0;
            msg_t *m;
            while (n < SCHED_BATCH_MSGS && (m = mbox_pop_sc(&mb)) != NULL) {
                msg_free(m);
                n++;
            }
            got += n;
            if (mbox_done_sc(&mb) == 0)
                break;
        }
    }
    uint64_t ns = clock_now_ns() - t0;
    for (int i = 0; i < p; i++)
        pthread_join(th[i], NULL);
    mbox_destroy(&mb);
    sem_destroy(&token);
    pthread_barrier_destroy(&start);
    return (double)got / ((double)ns / 1e9);
}

int main(int argc, char **argv)
{
    int markdown = argc > 1 && strcmp(argv[1], "--markdown") == 0;
    int ps[] = {1, 4};
    for (size_t i = 0; i < ARRAY_LEN(ps); i++) {
        double best = 0;
        for (int r = 0; r < 3; r++) {
            double v = run(ps[i]);
            best = v > best ? v : best;
        }
        if (markdown)
            printf("| mailbox push->pop, %d producer%s | %.1f M msgs/s |\n", ps[i],
                   ps[i] > 1 ? "s" : "", best / 1e6);
        else
            printf("mailbox push->pop producers=%d: %.2f M msgs/s (best of 3, %d msgs)\n", ps[i],
                   best / 1e6, MSGS_TOTAL);
    }
    return 0;
}

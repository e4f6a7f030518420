/* Single-threaded behaviour of the mailbox: ordering, hand-off signals and the audio policy. */
#include "mailbox/mbox.h"
#include "tests/runner.h"

typedef struct num_msg {
    msg_t hdr;
    int n;
} num_msg_t;

static msg_t *num(int n, int audio)
{
    num_msg_t *m = MSG_NEW(num_msg_t, 7);
    m->n = n;
    if (audio)
        m->hdr.flags |= MSG_F_AUDIO;
    return &m->hdr;
}

static int pop_num(mbox_t *mb)
{
    msg_t *m = mbox_pop_sc(mb);
    if (m == NULL)
        return -1;
    int n = ((num_msg_t *)m)->n;
    msg_free(m);
    return n;
}

TEST(mbox_fifo_and_handoff)
{
    mbox_t mb;
    mbox_init(&mb, 16);
    ASSERT_EQ(mbox_push_mp(&mb, num(1, 0)), MBOX_WAS_EMPTY);
    ASSERT_EQ(mbox_push_mp(&mb, num(2, 0)), MBOX_QUEUED);
    ASSERT_EQ(pop_num(&mb), 1);
    ASSERT_EQ(mbox_push_mp(&mb, num(3, 0)), MBOX_QUEUED);
    ASSERT_EQ(pop_num(&mb), 2);
    ASSERT_EQ(pop_num(&mb), 3);
    ASSERT_EQ(pop_num(&mb), -1);
    ASSERT_EQ(mbox_done_sc(&mb), 0);
    /* The consumer gave it back: the next push must hand it over again. */
    ASSERT_EQ(mbox_push_mp(&mb, num(4, 0)), MBOX_WAS_EMPTY);
    ASSERT_EQ(mbox_depth(&mb), 1);
    mbox_destroy(&mb);
}

TEST(mbox_done_reports_remaining)
{
    mbox_t mb;
    mbox_init(&mb, 16);
    for (int i = 0; i < 5; i++)
        mbox_push_mp(&mb, num(i, 0));
    ASSERT_EQ(pop_num(&mb), 0);
    ASSERT_EQ(pop_num(&mb), 1);
    ASSERT_EQ(mbox_done_sc(&mb), 3);
    ASSERT_EQ(mbox_push_mp(&mb, num(5, 0)), MBOX_QUEUED); /* still owned */
    for (int i = 2; i <= 5; i++)
        ASSERT_EQ(pop_num(&mb), i);
    ASSERT_EQ(mbox_done_sc(&mb), 0);
    mbox_destroy(&mb);
}

TEST(mbox_audio_drops_oldest_keeps_control)
{
    /* cap 16: audio may use 14 places; the rest is the control reserve. */
    mbox_t mb;
    mbox_init(&mb, 16);
    for (int i = 0; i < 20; i++)
        mbox_push_mp(&mb, num(i, 1));
    mbox_push_mp(&mb, num(100, 0));
    /* The first pop refills: 20 audio > 14, so audio 0..5 (the oldest six) are dropped. */
    ASSERT_EQ(pop_num(&mb), 6);
    ASSERT_EQ(mb.dropped, 6);
    for (int i = 7; i < 20; i++)
        ASSERT_EQ(pop_num(&mb), i);
    ASSERT_EQ(pop_num(&mb), 100); /* control never dropped */
    ASSERT_EQ(mbox_done_sc(&mb), 0);
    mbox_destroy(&mb);
}

TEST(mbox_control_never_dropped_past_cap)
{
    mbox_t mb;
    mbox_init(&mb, 8);
    for (int i = 0; i < 100; i++)
        ASSERT_NE(mbox_push_mp(&mb, num(i, 0)), MBOX_REJECTED);
    for (int i = 0; i < 100; i++)
        ASSERT_EQ(pop_num(&mb), i);
    ASSERT_EQ(mb.dropped, 0);
    ASSERT_EQ(mbox_done_sc(&mb), 0);
    mbox_destroy(&mb);
}

TEST(mbox_audio_rejected_at_hard_bound)
{
    /* With no consumer running, a producer refuses audio once 2 * cap messages wait. */
    mbox_t mb;
    mbox_init(&mb, 8);
    int rejected = 0;
    for (int i = 0; i < 40; i++)
        rejected += mbox_push_mp(&mb, num(i, 1)) == MBOX_REJECTED;
    ASSERT_EQ(rejected, 40 - 16);
    ASSERT_EQ(mb.rejected, 24);
    ASSERT_EQ(mbox_depth(&mb), 16);
    /* Control still gets in. */
    ASSERT_EQ(mbox_push_mp(&mb, num(999, 0)), MBOX_QUEUED);
    mbox_destroy(&mb);
}

TEST(mbox_destroy_frees_queued)
{
    /* ASan's leak check verifies that queued messages are freed. */
    mbox_t mb;
    mbox_init(&mb, 4);
    for (int i = 0; i < 10; i++)
        mbox_push_mp(&mb, num(i, i % 2));
    ASSERT_EQ(pop_num(&mb), 0);
    mbox_destroy(&mb);
    ASSERT_EQ(mbox_depth(&mb), 0);
}

/* Tests of the per-address socket counts (net/peerlim.c, SWITCHBOARD_CONNECTIONS_PER_IP). */
#include <string.h>

#include "net/net_int.h"
#include "tests/runner.h"

#define MANY_ADDRS 5000

static void addr_of(uint32_t i, uint8_t a[16])
{
    memset(a, 0, 16);
    a[10] = a[11] = 0xff;
    a[12] = 10;
    a[13] = (uint8_t)(i >> 16);
    a[14] = (uint8_t)(i >> 8);
    a[15] = (uint8_t)i;
}

TEST(peerlim_caps_each_address)
{
    uint8_t a[16], b[16];
    addr_of(1, a);
    addr_of(2, b);
    peerlim_init(2);
    ASSERT(peerlim_try_add(a, false));
    ASSERT(peerlim_try_add(a, false));
    ASSERT(!peerlim_try_add(a, false)); /* the third socket of a */
    ASSERT_EQ(peerlim_count(a), 2);
    ASSERT(peerlim_try_add(b, false)); /* another address is not held up */
    ASSERT(peerlim_try_add(a, true));  /* a trusted proxy is counted, never refused */
    ASSERT_EQ(peerlim_count(a), 3);
    peerlim_remove(a);
    peerlim_remove(a);
    ASSERT(peerlim_try_add(a, false));
    peerlim_reset();
    ASSERT_EQ(peerlim_count(a), 0);
}

TEST(peerlim_zero_is_no_cap)
{
    uint8_t a[16];
    addr_of(7, a);
    peerlim_init(0);
    for (int i = 0; i < 1000; i++)
        ASSERT(peerlim_try_add(a, false));
    ASSERT_EQ(peerlim_count(a), 1000);
    peerlim_reset();
}

TEST(peerlim_many_addresses_grow_and_shrink)
{
    uint8_t a[16];
    peerlim_init(1);
    for (uint32_t i = 0; i < MANY_ADDRS; i++) {
        addr_of(i, a);
        ASSERT(peerlim_try_add(a, false));
    }
    /* Removing every other address keeps the others findable (deletion without tombstones). */
    for (uint32_t i = 0; i < MANY_ADDRS; i += 2) {
        addr_of(i, a);
        peerlim_remove(a);
    }
    for (uint32_t i = 0; i < MANY_ADDRS; i++) {
        addr_of(i, a);
        ASSERT_EQ(peerlim_count(a), i % 2);
        ASSERT_EQ(peerlim_try_add(a, false), i % 2 == 0);
    }
    for (uint32_t i = 0; i < MANY_ADDRS; i++) {
        addr_of(i, a);
        peerlim_remove(a);
        ASSERT_EQ(peerlim_count(a), 0);
    }
    peerlim_reset();
}

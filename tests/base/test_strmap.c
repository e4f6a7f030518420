/* The string map used by the gate and router actors. */
#include <stdint.h>
#include <stdio.h>

#include "base/strmap.h"
#include "tests/runner.h"

TEST(strmap_put_get_del_grow)
{
    strmap_t m;
    strmap_init(&m);
    ASSERT(strmap_get(&m, "nothing") == NULL);
    ASSERT(strmap_del(&m, "nothing") == NULL);
    char key[32];
    for (uintptr_t i = 1; i <= 5000; i++) {
        snprintf(key, sizeof(key), "key-%lu", (unsigned long)i);
        ASSERT(strmap_put(&m, key, (void *)i) == NULL);
    }
    ASSERT_EQ(strmap_count(&m), 5000);
    for (uintptr_t i = 1; i <= 5000; i++) {
        snprintf(key, sizeof(key), "key-%lu", (unsigned long)i);
        ASSERT_EQ((uintptr_t)strmap_get(&m, key), i);
    }
    ASSERT_EQ((uintptr_t)strmap_put(&m, "key-7", (void *)77), 7); /* replace returns old */
    ASSERT_EQ((uintptr_t)strmap_del(&m, "key-7"), 77);
    ASSERT(strmap_get(&m, "key-7") == NULL);
    ASSERT_EQ(strmap_count(&m), 4999);
    strmap_destroy(&m);
}

static int drop_even(const char *key, void *value, void *arg)
{
    (void)key;
    (*(int *)arg)++;
    return ((uintptr_t)value % 2) == 0;
}

TEST(strmap_filter_removes_selected)
{
    strmap_t m;
    strmap_init(&m);
    char key[32];
    for (uintptr_t i = 1; i <= 100; i++) {
        snprintf(key, sizeof(key), "k%lu", (unsigned long)i);
        strmap_put(&m, key, (void *)i);
    }
    int visited = 0;
    strmap_filter(&m, drop_even, &visited);
    ASSERT_EQ(visited, 100);
    ASSERT_EQ(strmap_count(&m), 50);
    ASSERT(strmap_get(&m, "k2") == NULL);
    ASSERT_EQ((uintptr_t)strmap_get(&m, "k3"), 3);
    strmap_destroy(&m);
}

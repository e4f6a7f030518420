/* Fixed-window counters per key (ratewin.h). */
#include "base/ratewin.h"

#include <stdlib.h>

#include "base/util.h"

typedef struct window {
    uint64_t start_ns;
    uint32_t count;
} window_t;

void ratewin_init(ratewin_t *r, uint64_t window_ns)
{
    strmap_init(&r->windows);
    r->window_ns = window_ns;
}

static int drop_all(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    free(value);
    return 1;
}

void ratewin_destroy(ratewin_t *r)
{
    strmap_filter(&r->windows, drop_all, NULL);
    strmap_destroy(&r->windows);
}

bool ratewin_hit(ratewin_t *r, const char *key, uint64_t now, uint32_t limit, uint64_t *retry_ns)
{
    window_t *w = strmap_get(&r->windows, key);
    if (w == NULL) {
        w = xcalloc(1, sizeof(*w));
        w->start_ns = now;
        strmap_put(&r->windows, key, w);
    } else if (now - w->start_ns >= r->window_ns) {
        w->start_ns = now;
        w->count = 0;
    }
    if (w->count < UINT32_MAX)
        w->count++;
    if (w->count <= limit)
        return true;
    if (retry_ns)
        *retry_ns = w->start_ns + r->window_ns - now;
    return false;
}

typedef struct sweep_arg {
    uint64_t now;
    uint64_t window_ns;
} sweep_arg_t;

static int drop_ended(const char *key, void *value, void *arg)
{
    (void)key;
    const sweep_arg_t *a = arg;
    window_t *w = value;
    if (a->now - w->start_ns < a->window_ns)
        return 0;
    free(w);
    return 1;
}

void ratewin_sweep(ratewin_t *r, uint64_t now)
{
    sweep_arg_t a = {now, r->window_ns};
    strmap_filter(&r->windows, drop_ended, &a);
}

size_t ratewin_count(const ratewin_t *r)
{
    return strmap_count(&r->windows);
}

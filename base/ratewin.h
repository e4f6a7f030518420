/*
 * ratewin: fixed-window counters per key (a client IP), for the product's per-IP rate limits
 * (POST /api/sessions per minute, chat messages per minute). A key's window starts at its first
 * event and lasts window_ns; every event counts, including those over the limit. Owned by one
 * actor: no locking. Thread: the owner's.
 */
#ifndef SB_BASE_RATEWIN_H
#define SB_BASE_RATEWIN_H

#include <stdbool.h>
#include <stdint.h>

#include "base/strmap.h"

typedef struct ratewin {
    strmap_t windows; /* key -> its window */
    uint64_t window_ns;
} ratewin_t;

void ratewin_init(ratewin_t *r, uint64_t window_ns);
void ratewin_destroy(ratewin_t *r);

/*
 * Counts one event of key at now (monotonic ns). Returns true when it is within limit events
 * of its window; false when over, with *retry_ns (may be NULL) set to the time left until the
 * window ends.
 */
bool ratewin_hit(ratewin_t *r, const char *key, uint64_t now, uint32_t limit, uint64_t *retry_ns);

/* Drops the windows that ended before now (a periodic sweep keeps memory to active keys). */
void ratewin_sweep(ratewin_t *r, uint64_t now);

/* Windows held (for tests). */
size_t ratewin_count(const ratewin_t *r);

#endif

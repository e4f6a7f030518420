/* Log-linear latency histogram; see hist.h. */
#include "bench/loadgen/hist.h"

#include <math.h>
#include <string.h>

void hist_init(hist_t *h)
{
    memset(h, 0, sizeof(*h));
}

static uint32_t bucket_of(uint64_t us)
{
    if (us < 2 * HIST_SUB)
        return (uint32_t)us;
    if (us >> HIST_TOP_BIT)
        return HIST_BUCKETS - 1;
    unsigned msb = 63u - (unsigned)__builtin_clzll(us);
    unsigned shift = msb - HIST_SUB_BITS; /* >= 1 */
    return HIST_SUB * (shift + 1) + (uint32_t)((us >> shift) - HIST_SUB);
}

/* The lowest value of bucket b and its width, in microseconds. */
static void bucket_range(uint32_t b, uint64_t *low, uint64_t *width)
{
    if (b < 2 * HIST_SUB) {
        *low = b;
        *width = 1;
        return;
    }
    unsigned shift = b / HIST_SUB - 1;
    *low = (uint64_t)(b % HIST_SUB + HIST_SUB) << shift;
    *width = 1ull << shift;
}

void hist_record_ns(hist_t *h, uint64_t ns)
{
    uint64_t us = (ns + 500) / 1000;
    h->buckets[bucket_of(us)]++;
    h->count++;
    h->sum_us += us;
    if (us > h->max_us)
        h->max_us = us;
}

void hist_merge(hist_t *dst, const hist_t *src)
{
    for (uint32_t b = 0; b < HIST_BUCKETS; b++)
        dst->buckets[b] += src->buckets[b];
    dst->count += src->count;
    dst->sum_us += src->sum_us;
    if (src->max_us > dst->max_us)
        dst->max_us = src->max_us;
}

double hist_quantile_us(const hist_t *h, double q)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(q * (double)h->count);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (uint32_t b = 0; b < HIST_BUCKETS; b++) {
        seen += h->buckets[b];
        if (seen >= rank) {
            uint64_t low, width;
            bucket_range(b, &low, &width);
            double mid = (double)low + (double)(width - 1) / 2.0;
            return mid > (double)h->max_us ? (double)h->max_us : mid;
        }
    }
    return (double)h->max_us;
}

double hist_mean_us(const hist_t *h)
{
    return h->count ? (double)h->sum_us / (double)h->count : 0;
}

/*
 * hist: a log-linear latency histogram in microseconds, HDR style. Values below 2,048 us are
 * counted exactly; above, each power of two is split into 1,024 buckets, so any value is known
 * to within 0.1 %. The range ends at 2^26 us (67 s); larger values land in the last bucket (the
 * maximum is kept exactly). 17,408 uint32 buckets: 68 KiB, fixed whatever the sample count.
 *
 * Thread: owner. Each load thread records into its own histogram; the main thread merges them
 * after joining the threads.
 */
#ifndef SB_BENCH_HIST_H
#define SB_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 10
#define HIST_SUB      (1u << HIST_SUB_BITS)
#define HIST_TOP_BIT  26 /* values up to 2^26 - 1 us are bucketed */
#define HIST_BUCKETS  ((HIST_TOP_BIT - HIST_SUB_BITS + 1) * HIST_SUB)

typedef struct hist {
    uint64_t count;
    uint64_t sum_us;
    uint64_t max_us;
    uint32_t buckets[HIST_BUCKETS];
} hist_t;

void hist_init(hist_t *h);
/* Counts one value given in nanoseconds (rounded to the nearest microsecond). */
void hist_record_ns(hist_t *h, uint64_t ns);
/* Adds every count of src into dst. */
void hist_merge(hist_t *dst, const hist_t *src);
/*
 * The value in microseconds below which a fraction q (0..1) of the samples fall: the midpoint
 * of the bucket holding the ceil(q * count)-th smallest sample, never more than the maximum.
 * Returns 0 for an empty histogram.
 */
double hist_quantile_us(const hist_t *h, double q);
double hist_mean_us(const hist_t *h);

#endif

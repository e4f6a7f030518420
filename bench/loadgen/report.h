/*
 * report: the run's figures, computed from the session records and the merged histograms,
 * printed for people (stdout) and written as one JSON object (--json).
 *
 * Thread: main, after every other thread has been joined.
 */
#ifndef SB_BENCH_REPORT_H
#define SB_BENCH_REPORT_H

#include <cJSON.h>
#include <stdbool.h>
#include <stdio.h>

#include "bench/loadgen/hist.h"
#include "bench/loadgen/procstat.h"
#include "bench/loadgen/session.h"

typedef struct report_in {
    const session_t *sessions; /* the audio sessions */
    int n;
    const session_t *storm; /* the --tool-storm sessions (storm.h) */
    int n_storm;
    const hist_t *latency;  /* round trips, all threads */
    const hist_t *send_lag; /* write time minus due time, all threads */
    bool have_service;      /* --pid given and readable at both ends */
    procstat_t service_before;
    procstat_t service_after;
    double bench_cpu_s;
    double wall_s; /* from the first start to the last socket closed */
    bool interrupted;
} report_in_t;

/* Sessions that became ready (the exit status depends on it). */
int report_connected(const report_in_t *in);

/* Prints the human-readable summary. */
void report_print(const report_in_t *in, FILE *out);

/* {p50, p90, p99, p99_9, max, mean (ms), samples} of h, as every latency figure in the JSON. */
cJSON *report_quantiles_json(const hist_t *h);

/* Writes every figure as one JSON object to path. Returns 0 or -errno. */
int report_write_json(const report_in_t *in, const char *path);

#endif

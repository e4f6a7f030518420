/*
 * procstat: CPU time and memory of the service under test (from /proc/PID) and of the bench
 * itself (getrusage).
 *
 * Thread: any (each call reads the files afresh).
 */
#ifndef SB_BENCH_PROCSTAT_H
#define SB_BENCH_PROCSTAT_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct procstat {
    double cpu_s; /* utime + stime */
    long rss_kb;  /* VmRSS */
    long hwm_kb;  /* VmHWM: the process-lifetime peak RSS */
} procstat_t;

/* Reads /proc/PID/stat and /proc/PID/status. Returns 0, or -errno (e.g. -ENOENT: no process). */
int procstat_read(pid_t pid, procstat_t *out);

/* This process's user + system CPU seconds, all threads. */
double procstat_self_cpu_s(void);

#endif

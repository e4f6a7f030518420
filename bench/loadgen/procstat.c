/* /proc and getrusage sampling; see procstat.h. */
#include "bench/loadgen/procstat.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Fields 14 and 15 of /proc/PID/stat (utime, stime) in clock ticks, counted after the ")" that
 * ends the command name (which may itself contain spaces and parentheses). */
static int read_cpu(pid_t pid, double *cpu_s)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -errno;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return -EINVAL;
    unsigned long utime, stime;
    /* After ")": state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
     * utime(14) stime(15). */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return -EINVAL;
    long tck = sysconf(_SC_CLK_TCK);
    *cpu_s = (double)(utime + stime) / (double)(tck > 0 ? tck : 100);
    return 0;
}

static int read_mem(pid_t pid, long *rss_kb, long *hwm_kb)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -errno;
    *rss_kb = *hwm_kb = -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            sscanf(line + 6, "%ld", rss_kb);
        else if (strncmp(line, "VmHWM:", 6) == 0)
            sscanf(line + 6, "%ld", hwm_kb);
    }
    fclose(f);
    return *rss_kb >= 0 && *hwm_kb >= 0 ? 0 : -EINVAL;
}

int procstat_read(pid_t pid, procstat_t *out)
{
    int rc = read_cpu(pid, &out->cpu_s);
    if (rc == 0)
        rc = read_mem(pid, &out->rss_kb, &out->hwm_kb);
    return rc;
}

double procstat_self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

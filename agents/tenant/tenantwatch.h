/*
 * tenantwatch: notices changes to the tenant files (SPEC 16 "a change in the directory") with
 * inotify, through libuv's uv_fs_event on the loop it is given, and reports them once the files
 * have been quiet for TENANTWATCH_SETTLE_MS (an editor's save is several events; so is copying
 * a hundred files). It only reports: the caller reloads.
 *
 * CONTRACT
 *   Every function and the callback: the thread running loop (the service's main thread).
 */
#ifndef SB_AGENTS_TENANT_TENANTWATCH_H
#define SB_AGENTS_TENANT_TENANTWATCH_H

#include <stdbool.h>
#include <uv.h>

#define TENANTWATCH_SETTLE_MS 200

typedef struct tenantwatch {
    uv_fs_event_t event;
    uv_timer_t settle;
    char *file; /* watching one file of the directory: its name; NULL = every file */
    void (*on_change)(void *arg);
    void *arg;
} tenantwatch_t;

/*
 * Watches path: the directory itself when is_dir, else the directory holding the file (editors
 * replace a file by renaming, which a watch on the file would lose), reacting to that file only.
 * Returns 0, or a negative libuv error (nothing to close then).
 */
int tenantwatch_start(tenantwatch_t *w, uv_loop_t *loop, const char *path, bool is_dir,
                      void (*on_change)(void *arg), void *arg);
/* Stops watching; the handles are closed by the loop's next turns. */
void tenantwatch_close(tenantwatch_t *w);

#endif

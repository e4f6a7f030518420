/* Watching the tenant files (tenantwatch.h). */
#include "agents/tenant/tenantwatch.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"

static void settled(uv_timer_t *t)
{
    tenantwatch_t *w = t->data;
    w->on_change(w->arg);
}

static void changed(uv_fs_event_t *h, const char *name, int events, int status)
{
    (void)events;
    tenantwatch_t *w = h->data;
    if (status < 0) {
        log_warn("tenant.watch_error", LOG_S("error", uv_strerror(status)));
        return;
    }
    if (w->file && (name == NULL || strcmp(name, w->file) != 0))
        return;
    /* Restarting the timer on every event reports once, after the last one. */
    uv_timer_start(&w->settle, settled, TENANTWATCH_SETTLE_MS, 0);
}

int tenantwatch_start(tenantwatch_t *w, uv_loop_t *loop, const char *path, bool is_dir,
                      void (*on_change)(void *arg), void *arg)
{
    memset(w, 0, sizeof(*w));
    w->on_change = on_change;
    w->arg = arg;
    char *dir;
    if (is_dir) {
        dir = xstrdup(path);
    } else {
        const char *slash = strrchr(path, '/');
        dir = slash == NULL ? xstrdup(".")
                            : xstrndup(path, slash == path ? 1 : (size_t)(slash - path));
        w->file = xstrdup(slash ? slash + 1 : path);
    }
    int rc = uv_fs_event_init(loop, &w->event);
    if (rc == 0) {
        w->event.data = w;
        rc = uv_fs_event_start(&w->event, changed, dir, 0);
        if (rc != 0)
            uv_close((uv_handle_t *)&w->event, NULL);
    }
    free(dir);
    if (rc != 0) {
        free(w->file);
        w->file = NULL;
        return rc;
    }
    uv_timer_init(loop, &w->settle);
    w->settle.data = w;
    return 0;
}

void tenantwatch_close(tenantwatch_t *w)
{
    if (w->on_change == NULL)
        return;
    uv_close((uv_handle_t *)&w->event, NULL);
    uv_close((uv_handle_t *)&w->settle, NULL);
    free(w->file);
    w->file = NULL;
    w->on_change = NULL;
}

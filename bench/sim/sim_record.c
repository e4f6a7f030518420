/*
 * The recording behind GET /sim/events: what each client sent, per session, for tests.
 *
 * The store keeps the newest SIM_RECORD_SESSIONS sessions (refused upgrades included, so a test
 * can count connection attempts). A session keeps at most REC_EVENTS_MAX events: the first
 * REC_HEAD_KEEP always (the session.update a test usually checks), then the newest ones in a
 * ring, with the number left out reported as events_dropped. Appends are stored as their byte
 * count only, so recording costs no allocation on the audio path. Other events are stored as
 * the session printed them back from the parsed tree, so the document is always valid JSON.
 * Thread: the simulator's only thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "bench/sim/sim.h"

#define SIM_RECORD_SESSIONS 200
#define REC_EVENTS_MAX      1000
#define REC_HEAD_KEEP       100
#define REC_RING            (REC_EVENTS_MAX - REC_HEAD_KEEP)
#define REC_INITIAL_CAP     16

typedef struct rec_event {
    char *json;   /* the client's event as received, or NULL for an append */
    uint32_t len; /* length of json, or the decoded bytes of an append */
} rec_event_t;

struct sim_record {
    struct sim_record *prev, *next;
    sim_record_t **owner; /* the live session's pointer to this record, or NULL */
    char id[SIM_ID_MAX];
    char model[64];
    bool authorization_ok;
    bool beta_header;
    bool open;
    int http_status;
    uint64_t opened_ms, closed_ms;
    rec_event_t *ev;
    uint32_t n, cap;
    uint32_t ring_next; /* once full: the ring slot the next event overwrites */
    uint64_t dropped;
};

static struct {
    sim_record_t *head, *tail; /* oldest first */
    uint32_t n;
} g_rec;

static void free_events(sim_record_t *r)
{
    for (uint32_t i = 0; i < r->n; i++)
        free(r->ev[i].json);
    free(r->ev);
    r->ev = NULL;
    r->n = r->cap = r->ring_next = 0;
    r->dropped = 0;
}

static void unlink_record(sim_record_t *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        g_rec.head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        g_rec.tail = r->prev;
    g_rec.n--;
    if (r->owner)
        *r->owner = NULL;
    free_events(r);
    free(r);
}

sim_record_t *sim_record_open(const char *id, const char *model, bool authorization_ok,
                              int http_status, bool beta_header, sim_record_t **owner)
{
    if (g_rec.n >= SIM_RECORD_SESSIONS)
        unlink_record(g_rec.head);
    sim_record_t *r = xcalloc(1, sizeof(*r));
    str_copy(r->id, id, sizeof(r->id));
    str_copy(r->model, model, sizeof(r->model));
    r->authorization_ok = authorization_ok;
    r->beta_header = beta_header;
    r->http_status = http_status;
    r->open = owner != NULL;
    r->owner = owner;
    r->opened_ms = clock_wall_ms();
    if (!r->open)
        r->closed_ms = r->opened_ms;
    r->prev = g_rec.tail;
    if (g_rec.tail)
        g_rec.tail->next = r;
    else
        g_rec.head = r;
    g_rec.tail = r;
    g_rec.n++;
    return r;
}

static void add(sim_record_t *r, char *json, uint32_t len)
{
    if (r->n < REC_EVENTS_MAX) {
        if (r->n == r->cap) {
            r->cap = r->cap ? r->cap * 2 : REC_INITIAL_CAP;
            if (r->cap > REC_EVENTS_MAX)
                r->cap = REC_EVENTS_MAX;
            r->ev = xrealloc(r->ev, r->cap * sizeof(rec_event_t));
        }
        r->ev[r->n++] = (rec_event_t){json, len};
        return;
    }
    rec_event_t *slot = &r->ev[REC_HEAD_KEEP + r->ring_next];
    free(slot->json);
    *slot = (rec_event_t){json, len};
    r->ring_next = (r->ring_next + 1) % REC_RING;
    r->dropped++;
}

void sim_record_event(sim_record_t *r, char *json)
{
    if (json == NULL)
        return;
    if (r == NULL) {
        free(json);
        return;
    }
    add(r, json, (uint32_t)strlen(json));
}

void sim_record_append(sim_record_t *r, size_t bytes)
{
    if (r == NULL)
        return;
    add(r, NULL, (uint32_t)bytes);
}

void sim_record_close(sim_record_t *r)
{
    if (r == NULL)
        return;
    r->open = false;
    r->owner = NULL;
    r->closed_ms = clock_wall_ms();
}

static void event_json(sbuf_t *b, const rec_event_t *e)
{
    if (e->json)
        sbuf_append(b, e->json, e->len);
    else
        sbuf_printf(b, "{\"type\":\"input_audio_buffer.append\",\"bytes\":%u}", e->len);
}

void sim_record_json(sbuf_t *b)
{
    sbuf_puts(b, "{\"sessions\":[");
    for (sim_record_t *r = g_rec.head; r; r = r->next) {
        if (r != g_rec.head)
            sbuf_putc(b, ',');
        sbuf_puts(b, "{\"id\":");
        sbuf_json_str(b, r->id);
        sbuf_puts(b, ",\"model\":");
        sbuf_json_str(b, r->model);
        sbuf_printf(b,
                    ",\"authorization_ok\":%s,\"http_status\":%d,\"beta_header\":%s,"
                    "\"open\":%s,\"opened_at\":%llu,\"closed_at\":",
                    r->authorization_ok ? "true" : "false", r->http_status,
                    r->beta_header ? "true" : "false", r->open ? "true" : "false",
                    (unsigned long long)r->opened_ms);
        if (r->open)
            sbuf_puts(b, "null");
        else
            sbuf_printf(b, "%llu", (unsigned long long)r->closed_ms);
        sbuf_printf(b, ",\"events_dropped\":%llu,\"events\":[", (unsigned long long)r->dropped);
        if (r->dropped == 0) {
            for (uint32_t i = 0; i < r->n; i++) {
                if (i)
                    sbuf_putc(b, ',');
                event_json(b, &r->ev[i]);
            }
        } else {
            for (uint32_t i = 0; i < REC_HEAD_KEEP; i++) {
                event_json(b, &r->ev[i]);
                sbuf_putc(b, ',');
            }
            for (uint32_t i = 0; i < REC_RING; i++) {
                if (i)
                    sbuf_putc(b, ',');
                event_json(b, &r->ev[REC_HEAD_KEEP + (r->ring_next + i) % REC_RING]);
            }
        }
        sbuf_puts(b, "]}");
    }
    sbuf_puts(b, "]}");
}

void sim_record_clear(void)
{
    sim_record_t *r = g_rec.head;
    while (r) {
        sim_record_t *next = r->next;
        if (r->open)
            free_events(r);
        else
            unlink_record(r);
        r = next;
    }
}

void sim_record_shutdown(void)
{
    while (g_rec.head)
        unlink_record(g_rec.head);
}

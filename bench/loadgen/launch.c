/* Launcher thread: ramp schedule and token minting; see launch.h. */
#include "bench/loadgen/launch.h"

#include <cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/sbuf.h"
#include "base/util.h"
#include "bench/loadgen/cli.h"
#include "bench/loadgen/twcall.h"

#define IDLE_WAIT_MS  50          /* longest sleep, so an interrupt is noticed promptly */
#define MINT_BODY_MAX (64u << 10) /* larger answers are not a token */

typedef struct mint {
    struct mint *prev, *next; /* the in-flight list */
    session_t *s;
    CURL *easy;
    sbuf_t body;
    char post[96];
    sbuf_t form;                /* --twilio: the webhook's form body */
    struct curl_slist *headers; /* --twilio: its own, with the call's signature */
} mint_t;

static struct {
    session_t *sessions;
    int n;
    loadthr_t **threads;
    uint64_t t0;
    pthread_t th;
    struct curl_slist *headers;
    mint_t *in_flight;   /* POSTs not finished yet */
    const char *ca_file; /* SSL_CERT_FILE, or NULL */
    const char *ca_dir;  /* SSL_CERT_DIR, or NULL */
    atomic_bool done;    /* relaxed: advisory, read by the main thread's wait loop */
} L;

static uint64_t start_time(int i)
{
    return L.t0 + (uint64_t)(g_cfg.ramp_s * 1e9 * (double)i / (double)L.n);
}

/*
 * The k-th session to start. The storm sessions (after the audio ones in the array) start
 * first, so that every audio session streams while the storm is already running.
 */
static session_t *nth_to_start(int k)
{
    int n_audio = L.n - g_cfg.storm;
    return &L.sessions[k < g_cfg.storm ? n_audio + k : k - g_cfg.storm];
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    mint_t *m = arg;
    size_t n = size * nmemb;
    if (m->body.len + n > MINT_BODY_MAX)
        return 0; /* aborts the transfer */
    sbuf_append(&m->body, p, n);
    return n;
}

/* --twilio: the call rings, as Twilio tells the number's webhook: a signed form POST. */
static void ring(mint_t *m, session_t *s)
{
    char sig[96];
    sbuf_init(&m->form);
    twcall_ring(s->tw, s->idx, g_cfg.twilio_token, g_cfg.signed_url, &m->form, sig, sizeof(sig));
    m->headers = curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded");
    m->headers = curl_slist_append(m->headers, sig);
    curl_easy_setopt(m->easy, CURLOPT_POSTFIELDS, m->form.data);
    curl_easy_setopt(m->easy, CURLOPT_POSTFIELDSIZE, (long)m->form.len);
    curl_easy_setopt(m->easy, CURLOPT_HTTPHEADER, m->headers);
}

static void begin_mint(CURLM *multi, session_t *s)
{
    mint_t *m = xcalloc(1, sizeof(*m));
    m->s = s;
    sbuf_init(&m->body);
    s->phase = SESS_MINTING;
    s->t_start = clock_now_ns();
    CURL *e = curl_easy_init();
    m->easy = e;
    curl_easy_setopt(e, CURLOPT_URL, g_cfg.mint_url);
    if (s->tw) {
        ring(m, s);
    } else {
        snprintf(m->post, sizeof(m->post), "{\"sessionId\":\"%s\"}", s->id);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, m->post);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, L.headers);
    }
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, m);
    curl_easy_setopt(e, CURLOPT_PRIVATE, m);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)LAUNCH_POST_TIMEOUT_MS);
    /* The trust store OpenSSL's default paths name, as the WebSockets use it (libcurl reads
     * neither variable itself). */
    if (L.ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, L.ca_file);
    if (L.ca_dir)
        curl_easy_setopt(e, CURLOPT_CAPATH, L.ca_dir);
    curl_multi_add_handle(multi, e);
    m->next = L.in_flight;
    if (L.in_flight)
        L.in_flight->prev = m;
    L.in_flight = m;
}

static void mint_free(CURLM *multi, mint_t *m)
{
    if (m->prev)
        m->prev->next = m->next;
    else
        L.in_flight = m->next;
    if (m->next)
        m->next->prev = m->prev;
    curl_multi_remove_handle(multi, m->easy);
    curl_easy_cleanup(m->easy);
    sbuf_destroy(&m->body);
    if (m->headers) {
        curl_slist_free_all(m->headers);
        sbuf_destroy(&m->form);
    }
    free(m);
}

/* --twilio: the webhook's answer is TwiML with the stream, or a refusal (busy, 403, …). */
static void finish_ring(session_t *s, const mint_t *m, CURLcode result, long status)
{
    char why[SESSION_REASON_MAX - 32];
    if (result != CURLE_OK) {
        session_fail(s, "POST /twilio/voice: %s", curl_easy_strerror(result));
    } else if (status != 200) {
        if (status == 429)
            s->saw_429 = true;
        session_fail(s, "POST /twilio/voice: HTTP %ld %.60s", status,
                     m->body.data ? m->body.data : "");
    } else if (twcall_twiml(s->tw, m->body.data ? m->body.data : "", m->body.len, why,
                            sizeof(why)) != 0) {
        session_fail(s, "POST /twilio/voice: %s", why);
    }
}

/* Reads {"sessionId","token","expiresAt"} or {"error":{"code"}} from a finished POST. */
static void finish_mint(CURLM *multi, CURL *e, CURLcode result)
{
    mint_t *m;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&m);
    session_t *s = m->s;
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (s->tw) {
        finish_ring(s, m, result, status);
        mint_free(multi, m);
        if (s->phase != SESS_FAILED)
            loadthr_add_session_mp(L.threads[s->thread], s);
        return;
    }
    cJSON *root = m->body.data ? cJSON_ParseWithLength(m->body.data, m->body.len) : NULL;
    const cJSON *token = cJSON_GetObjectItemCaseSensitive(root, "token");
    if (result != CURLE_OK) {
        session_fail(s, "POST /api/sessions: %s", curl_easy_strerror(result));
    } else if (status == 200 && cJSON_IsString(token) &&
               strlen(token->valuestring) < sizeof(s->token)) {
        str_copy(s->token, token->valuestring, sizeof(s->token));
    } else {
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(root, "error");
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "code");
        if (status == 429)
            s->saw_429 = true;
        session_fail(s, "POST /api/sessions: HTTP %ld %s", status,
                     cJSON_IsString(code) ? code->valuestring
                                          : (status == 200 ? "(no token in the answer)" : ""));
    }
    cJSON_Delete(root);
    mint_free(multi, m);
    if (s->phase != SESS_FAILED)
        loadthr_add_session_mp(L.threads[s->thread], s);
}

static void drain(CURLM *multi)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(multi, &left)) != NULL)
        if (msg->msg == CURLMSG_DONE)
            finish_mint(multi, msg->easy_handle, msg->data.result); /* msg is invalid after */
}

static void abandon_in_flight(CURLM *multi)
{
    while (L.in_flight) {
        session_fail(L.in_flight->s, "not connected: the run was interrupted");
        mint_free(multi, L.in_flight);
    }
}

static void *launch_main(void *arg)
{
    (void)arg;
    CURLM *multi = g_cfg.direct ? NULL : curl_multi_init();
    int next = 0;
    while (!atomic_load_explicit(&g_interrupted, memory_order_relaxed)) {
        uint64_t now = clock_now_ns();
        while (next < L.n && start_time(next) <= now) {
            session_t *s = nth_to_start(next++);
            if (multi)
                begin_mint(multi, s);
            else
                loadthr_add_session_mp(L.threads[s->thread], s);
        }
        if (multi) {
            int running;
            curl_multi_perform(multi, &running);
            drain(multi);
        }
        if (next == L.n && L.in_flight == NULL)
            break;
        uint64_t wait_ns = (uint64_t)IDLE_WAIT_MS * NS_PER_MS;
        if (next < L.n) {
            uint64_t at = start_time(next);
            now = clock_now_ns();
            wait_ns = at > now ? at - now : 0;
            if (wait_ns > (uint64_t)IDLE_WAIT_MS * NS_PER_MS)
                wait_ns = (uint64_t)IDLE_WAIT_MS * NS_PER_MS;
        }
        if (multi) {
            int ms = (int)((wait_ns + NS_PER_MS - 1) / NS_PER_MS);
            curl_multi_poll(multi, NULL, 0, ms, NULL);
        } else if (wait_ns > 0) {
            struct timespec ts = {(time_t)(wait_ns / NS_PER_SEC), (long)(wait_ns % NS_PER_SEC)};
            nanosleep(&ts, NULL);
        }
    }
    if (multi) {
        abandon_in_flight(multi);
        curl_multi_cleanup(multi);
    }
    atomic_store_explicit(&L.done, true, memory_order_relaxed);
    return NULL;
}

int launch_start(session_t *sessions, int n, loadthr_t **threads, uint64_t t0_ns)
{
    L.sessions = sessions;
    L.n = n;
    L.threads = threads;
    L.t0 = t0_ns;
    L.headers = curl_slist_append(NULL, "Content-Type: application/json");
    L.ca_file = getenv("SSL_CERT_FILE");
    L.ca_dir = getenv("SSL_CERT_DIR");
    int rc = pthread_create(&L.th, NULL, launch_main, NULL);
    if (rc != 0)
        return -rc;
    pthread_setname_np(L.th, "sb-bench-launch");
    return 0;
}

bool launch_done(void)
{
    return atomic_load_explicit(&L.done, memory_order_relaxed);
}

void launch_join(void)
{
    pthread_join(L.th, NULL);
    curl_slist_free_all(L.headers);
    L.headers = NULL;
}

/*
 * loadthr: a load thread. Each owns a libuv loop and a share of the sessions (session i goes to
 * thread i % T). It connects the sessions it is handed (a WebSocket client of its own on a raw
 * socket each: wscli.h), waits for them to become ready, paces their frames from a 1 ms timer and
 * writes what is due straight from it (one send() per session and tick), reads the echoes and
 * times the round trips.
 *
 * CONTRACT
 * - Thread roles: loadthr_new, loadthr_join and loadthr_free run on the main thread;
 *   loadthr_add_session_mp and loadthr_stop_mp on any thread; everything else on the load
 *   thread itself (its sessions' sockets included).
 * - Hand-off: loadthr_add_session_mp pushes under the thread's mutex and writes its eventfd when
 *   the inbox goes from empty to non-empty, so a burst of starts wakes the loop once. The push
 *   happens-before the load thread's pop, which moves the session to the load thread.
 * - The histograms may be read only after loadthr_join() has returned.
 */
#ifndef SB_BENCH_LOADTHR_H
#define SB_BENCH_LOADTHR_H

#include "bench/loadgen/hist.h"
#include "bench/loadgen/session.h"

#define LOADTHR_CONNECT_TIMEOUT_S 10   /* start (POST or connect) to ready */
#define LOADTHR_CLOSE_WAIT_MS     2000 /* from our close frame to the peer's, at most */
/* A session whose socket has not drained while its frames fall this far behind is dropped (the
 * peer does not read); its due frames wait as a count meanwhile, not as bytes. */
#define LOADTHR_SEND_BEHIND_MAX_MS 2000

typedef struct loadthr loadthr_t;

/*
 * Starts load thread idx and waits until its event loop runs. Returns NULL (after printing why)
 * when it could not be started. Thread: main.
 */
loadthr_t *loadthr_new(int idx);

/* Gives s to thr, which starts connecting it at once. The caller no longer touches s. */
void loadthr_add_session_mp(loadthr_t *thr, session_t *s);

/*
 * Asks thr to stop sending, close every WebSocket with 1000 (waiting up to LOADTHR_CLOSE_WAIT_MS
 * for the peers' closes, then dropping the sockets left) and end. Idempotent.
 */
void loadthr_stop_mp(loadthr_t *thr);

/* Waits for the thread to end. Thread: main. */
void loadthr_join(loadthr_t *thr);

/* Round-trip latencies, and send lag (write time minus due time). After loadthr_join(). */
const hist_t *loadthr_latency(const loadthr_t *thr);
const hist_t *loadthr_send_lag(const loadthr_t *thr);

void loadthr_free(loadthr_t *thr);

#endif

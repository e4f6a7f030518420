/*
 * launch: the launcher thread. It starts the i-th session at t0 + ramp * i / N (the --tool-storm
 * sessions first, then the audio sessions). For the service it
 * first mints the session's token with POST /api/sessions (libcurl multi, so slow answers
 * overlap and never hold up later starts; --twilio: rings the call with a signed POST
 * /twilio/voice and reads the TwiML's stream), then hands the session to its load thread; with
 * --direct it hands it over at once. Minting runs on this thread, not on the load threads, so it
 * cannot delay the frames of sessions already streaming there.
 *
 * Thread: launch_start and launch_join run on the main thread; the rest is internal to the
 * launcher. Sessions move to load threads as session.h describes.
 */
#ifndef SB_BENCH_LAUNCH_H
#define SB_BENCH_LAUNCH_H

#include <stdbool.h>
#include <stdint.h>

#include "bench/loadgen/loadthr.h"
#include "bench/loadgen/session.h"

#define LAUNCH_POST_TIMEOUT_MS (LOADTHR_CONNECT_TIMEOUT_S * 1000)

/*
 * Starts the launcher over the n sessions, which go to threads[s->thread], the first at t0_ns
 * (CLOCK_MONOTONIC). Returns 0 or -errno. It stops early, leaving the rest unstarted, once
 * g_interrupted is set.
 */
int launch_start(session_t *sessions, int n, loadthr_t **threads, uint64_t t0_ns);

/* True once every session has been handed over or has failed. Thread: any (relaxed flag). */
bool launch_done(void);

/* Waits for the launcher to end. Thread: main. */
void launch_join(void);

#endif

"""The report of the soak (bench/soak.py): the pass/fail criteria and build/soak/report.md."""
import os
import time

RSS_GROWTH_MAX_KB = 2048
FETCH_MAX_HOST_CONNECTIONS = 32  # net/fetch.c: the service's connections per host
EXIT_DEADLINE_S = 10.0           # SPEC 3 "Shutdown"


def fmt_ms(v):
    if v is None:
        return "-"
    if v == float("inf"):
        return "> 10000"
    return "<= %g" % v


def verdicts(soak, exit_status, exit_s):
    """[(ok, line)] of the pass criteria."""
    out = []
    q = soak.quiet
    base = q[0] if q else None
    later = q[1:]
    if base and later:
        growth = max(r["rss_kb"] for r in later) - base["rss_kb"]
        heap = ""
        if base.get("heap_kb") is not None and all(r.get("heap_kb") is not None for r in later):
            heap = "; heap in use %.1f MB, then %s MB" % (
                base["heap_kb"] / 1024, ", ".join("%.1f" % (r["heap_kb"] / 1024) for r in later))
        raw = ""
        if soak.trimmed and not soak.raw_rss:
            raw = " (after malloc_trim(0); before it %s MB)" % ", ".join(
                "%.1f" % (r["rss_raw_kb"] / 1024) for r in q)
        untrimmed = [r for r in q if r.get("trimmed") is False]
        if untrimmed and not soak.raw_rss:
            # Raw and trimmed figures do not compare: say so rather than judge them.
            out.append((False, "RSS not read after malloc_trim(0) at the quiet points at %s s "
                               "(gdb could not call it: was the binary replaced during the run?)"
                        % ", ".join("%.0f" % r["t"] for r in untrimmed)))
        out.append((growth < RSS_GROWTH_MAX_KB,
                    "RSS after the warm-up (first wave): baseline %.1f MB at +%.0f s, later quiet "
                    "points %s MB%s: grew %+d KB (limit < %d KB)%s"
                    % (base["rss_kb"] / 1024, base["t"],
                       ", ".join("%.1f" % (r["rss_kb"] / 1024) for r in later), raw, growth,
                       RSS_GROWTH_MAX_KB, heap)))
        bad = [r for r in later if r["actors"] != base["actors"]
               or r["fds"] - r["fds_sim"] != base["fds"] - base["fds_sim"]
               or r["sim_open"] != 0 or r["fds_sim"] > FETCH_MAX_HOST_CONNECTIONS or not r["idle"]]
        out.append((not bad,
                    "between waves: actors %s (baseline %d); descriptors other than connections "
                    "to the simulator %s (baseline %d); connections to the simulator %s (at most "
                    "%d, the fetch pool); Realtime sessions left open on the simulator %s; "
                    "settled in %s s"
                    % ("/".join(str(r["actors"]) for r in later), base["actors"],
                       "/".join(str(r["fds"] - r["fds_sim"]) for r in later),
                       base["fds"] - base["fds_sim"],
                       "/".join(str(r["fds_sim"]) for r in later), FETCH_MAX_HOST_CONNECTIONS,
                       "/".join(str(r["sim_open"]) for r in later),
                       "/".join("%.1f" % r["settle_s"] for r in q))))
    else:
        out.append((False, "fewer than two quiet points: no baseline comparison"))
    v = soak.load.v
    out.append((v["lost_elsewhere"] == 0 and v["calls"] > 0,
                "lost frames outside the injected faults: %d of %d sent (%d more in %d sessions "
                "whose upstream reconnected, %d upstream.reconnecting)"
                % (v["lost_elsewhere"], v["sent"], v["lost_reconnected"],
                   v["reconnected_sessions"], v["reconnects"])))
    unended = sorted(soak.started - set(soak.ended))
    probs = soak.record_problems
    out.append((not unended and not probs and len(soak.verified) == len(soak.ended) > 0,
                "call records: %d calls started, %d ended, %d records checked with GET "
                "/api/calls/{id} (endedAt, endReason)%s%s"
                % (len(soak.started), len(soak.ended), len(soak.verified) - len(probs),
                   "; never ended: %s" % ", ".join(unended[:5]) if unended else "",
                   "; bad: %s" % "; ".join(probs[:5]) if probs else "")))
    out.append((exit_status == 0 and exit_s <= EXIT_DEADLINE_S,
                "SIGTERM at the end: exit %s in %.2f s" % (exit_status, exit_s)))
    return out


def memory_census(soak):
    """Lines naming the mappings whose anonymous memory changed most from the first quiet point
    (the baseline) to the last, from /proc/<pid>/smaps read after the trim."""
    quiet = soak.census[1:] if len(soak.census) > 2 else []
    if len(quiet) < 2:
        return []
    (t0, base), (t1, last) = quiet[0], quiet[-1]
    names = set(base) | set(last)
    delta = sorted(((last.get(n, 0) - base.get(n, 0), n) for n in names),
                   key=lambda x: -abs(x[0]))
    out = ["", "## Anonymous memory by mapping", "",
           "From /proc/<pid>/smaps after the trim, baseline quiet point (+%.0f s) to the last "
           "(+%.0f s); anonymous mappings are named by their start address (glibc's thread "
           "arenas, thread stacks, large allocations)." % (t0, t1), "",
           "| mapping | baseline KB | last KB | change KB |", "|---|---|---|---|"]
    for d, n in delta[:10]:
        out.append("| %s | %d | %d | %+d |" % (n, base.get(n, 0), last.get(n, 0), d))
    return out


def write_report(path, plan, soak, seed, verdict_lines, wall_s):
    v, c = soak.load.v, soak.load.c
    lines = ["# switchboard soak", "",
             "%s, %d CPUs, %s; seed %d; %.1f minutes planned, %.1f run" % (
                 time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()), os.cpu_count(),
                 os.uname().release, seed, plan.total_s / 60, wall_s / 60), "",
             "Plan: %s." % plan.describe(), "",
             "RSS is the service's resident memory; at the start and at the quiet points "
             "between waves it is read after malloc_trim(0) (%s), with the RSS before it and "
             "the heap in use (malloc_stats) beside it. fds: open descriptors (those that are "
             "connections to the simulator in brackets). queue p99: the bucket of "
             "switchboard_actor_queue_seconds holding the interval's 99th percentile. Faults: "
             "simulator drops, expiries, chat 429 and 500 answers, MCP server kills (cumulative). "
             "Errors: error lines in the service's log / client-side errors and failed calls."
             % ("through gdb" if soak.trimmed and not soak.raw_rss
                else "through gdb where it could attach; raw RSS where it could not"), "",
             "RSS anon / file: its anonymous part (heap, arenas, stacks) and the pages of the "
             "shared libraries it has touched, read with RSS.", "",
             "| t (s) | wave | phase | RSS (MB) | RSS anon / file (MB) "
             "| RSS before trim / heap in use (MB) "
             "| fds (to sim) | actors | sessions | conns "
             "| mailbox | queue p99 realtime / tools (ms) | calls ended / verified "
             "| lost frames: elsewhere / reconnected | audio dropped "
             "| faults drop/expire/429/500/mcp | errors svc/client |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in soak.rows:
        before = "-"
        if r.get("rss_raw_kb") is not None:
            before = "%.1f / %s" % (r["rss_raw_kb"] / 1024, "%.1f" % (r["heap_kb"] / 1024)
                                    if r.get("heap_kb") is not None else "-")
        lines.append("| %.0f | %d | %s | %.1f | %.1f / %.1f | %s | %d (%d) | %d | %d | %d | %d "
                     "| %s / %s | %d / %d | %d / %d | %d | %s | %s |"
                     % (r["t"], r["wave"], r["phase"], r["rss_kb"] / 1024, r["anon_kb"] / 1024,
                        r["file_kb"] / 1024, before, r["fds"],
                        r["fds_sim"],
                        r["actors"], r["sessions"], r["conns"], r["mailbox"], fmt_ms(r["q_rt"]),
                        fmt_ms(r["q_tools"]), r["calls_ended"], r["calls_verified"],
                        r["lost_elsewhere"], r["lost_reconnected"], r["audio_dropped"],
                        r["faults"], r["errors"]))
    lines += ["", "## Load", "",
              "- voice calls (switchboard-bench): %d calls, %d connected, %d failed, %d dropped; "
              "%d frames sent; %d sessions heard upstream.reconnecting (%d events); %d error "
              "events; %d bench runs failed"
              % (v["calls"], v["connected"], v["failed"], v["dropped"], v["sent"],
                 v["reconnected_sessions"], v["reconnects"], v["server_errors"],
                 v["bench_errors"]),
              "- tool storm: %d sessions connected (%d failed), %d turns, %d timed out; tool calls "
              "%d completed, %d failed"
              % (v["storm_connected"], v["storm_failed"], v["storm_turns"], v["storm_timed_out"],
                 v["storm_tools_completed"], v["storm_tools_failed"]),
              "- chat threads: %d answers over %d connections; agent runs: %d completed, %d "
              "steps, over %d connections"
              % (c["chat_answers"], c["chat_connections"], c["agent_runs"], c["agent_steps"],
                 c["agent_connections"]),
              "- MCP server killed %d times (%d times it was still restarting)"
              % (c["mcp_kills"], c["mcp_kill_missed"])]
    if soak.load.reasons:
        lines.append("- voice failures and drops: " + "; ".join(
            "%d x %s" % (n, r) for r, n in soak.load.reasons.most_common(8)))
    if soak.load.client_errors:
        lines.append("- client errors: " + "; ".join(
            "%d x %s" % (n, r) for r, n in soak.load.client_errors.most_common(8)))
    if soak.warn_events:
        lines.append("- service warnings and errors (log events): " + ", ".join(
            "%s x%d" % (k, n) for k, n in soak.warn_events.most_common(12)))
    for e in soak.error_lines[:5]:
        lines.append("  - `%s`" % e.replace("`", "'"))
    lines += memory_census(soak)
    lines += ["", "## Verdict", ""]
    ok = all(o for o, _ in verdict_lines)
    for o, text in verdict_lines:
        lines.append("- %s %s" % ("PASS" if o else "FAIL", text))
    lines += ["", "**%s**" % ("PASS" if ok else "FAIL"), ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return ok

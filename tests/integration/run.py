#!/usr/bin/python3
"""Runs the black-box integration tests (tests/integration/test_*.py) against $SWITCHBOARD_BIN.

    SWITCHBOARD_BIN=build/debug/bin/switchboard /usr/bin/python3 tests/integration/run.py [filter...]

A filter keeps the tests whose id (module.Class.test_name) contains it (case-insensitive); several
filters are OR-ed. -v prints each test as it finishes (default), -q only failures and the summary,
-l lists the tests without running them. Exit status: 0 when every selected test passed, 1 when
one failed, 2 when nothing was selected or the binary is missing.

-j N (default $INTEGRATION_JOBS, else 1) runs N test classes at once, each in one of N worker
processes: a class is the unit (its tests share the servers its setUpClass starts), and every
server listens on port 0 in its own temporary directory, so classes do not see each other. A
class that measures the machine (memory, throughput) says SERIAL = True and runs alone after the
others.
"""
import faulthandler
import json
import os
import selectors
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402

SUITE_TIMEOUT_S = 600  # a hung suite is stopped; one at a time a run takes about 4 minutes


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


class Result(unittest.TestResult):
    def __init__(self, verbose, emit=None):
        super().__init__()
        self.verbose = verbose
        self.emit = emit  # worker mode: each row goes to the parent as one JSON line
        self.rows = []
        self._t0 = {}

    def startTest(self, test):
        super().startTest(test)
        self._t0[test.id()] = time.monotonic()

    def _row(self, test, status, detail=None):
        dt = time.monotonic() - self._t0.get(test.id(), time.monotonic())
        self.rows.append((test.id(), status, dt))
        if self.emit:
            self.emit({"id": test.id(), "status": status, "dt": dt, "detail": detail})
            return
        if self.verbose or status not in ("ok", "skip"):
            line = "%-5s %6.2fs  %s" % (status.upper(), dt, test.id())
            if status == "skip" and detail:
                line += "  (%s)" % detail
            print(line, flush=True)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._row(test, "ok")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._row(test, "fail", self.failures[-1][1])

    def addError(self, test, err):
        super().addError(test, err)
        self._row(test, "error", self.errors[-1][1])

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            status = "fail" if issubclass(err[0], test.failureException) else "error"
            self._t0.setdefault(subtest.id(), self._t0.get(test.id(), time.monotonic()))
            self._row(subtest, status, (self.failures if status == "fail" else self.errors)[-1][1])

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._row(test, "skip", reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._row(test, "xfail")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._row(test, "xpass")


def worker():
    """Worker mode (-j): reads JSON lists of test ids on stdin, one class per line, runs them
    and writes one JSON line per result, then {"done": true}, to the parent. Whatever the tests
    or their child processes print goes to stderr, never into that channel."""
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def emit(obj):
        out.write(json.dumps(obj) + "\n")

    loader = unittest.TestLoader()
    for line in sys.stdin:
        ids = json.loads(line)
        suite = unittest.TestSuite(loader.loadTestsFromName(tid) for tid in ids)
        suite.run(Result(False, emit))
        emit({"done": True})
    return 0


def class_of(tid):
    return tid.rsplit(".", 1)[0]


def is_serial(test):
    return bool(getattr(type(test), "SERIAL", False))


def run_parallel(selected, jobs, verbose, rows, failures):
    """Runs the selected tests' classes over `jobs` worker processes, the SERIAL classes alone
    afterwards; fills rows [(id, status, dt)] and failures [(kind, id, traceback)]."""
    groups = {}
    serial = set()
    for t in iter_tests(selected):
        groups.setdefault(class_of(t.id()), []).append(t.id())
        if is_serial(t):
            serial.add(class_of(t.id()))
    # The classes with the most tests first, so that no long class starts last.
    order = sorted(groups, key=lambda c: -len(groups[c]))
    parallel = [c for c in order if c not in serial]
    alone = [c for c in order if c in serial]

    sel = selectors.DefaultSelector()
    workers = []
    for _ in range(max(1, min(jobs, len(parallel)))):
        w = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        w.pending = b""  # what was read of the worker's channel after its last whole line
        sel.register(w.stdout, selectors.EVENT_READ, w)
        workers.append(w)

    def give(w, queue):
        if queue:
            w.stdin.write((json.dumps(groups[queue.pop(0)]) + "\n").encode())
            w.stdin.flush()
            return True
        return False

    def report(r):
        rows.append((r["id"], r["status"], r["dt"]))
        line = "%-5s %6.2fs  %s" % (r["status"].upper(), r["dt"], r["id"])
        if r["status"] == "skip" and r["detail"]:
            line += "  (%s)" % r["detail"]
        if r["status"] in ("fail", "error"):
            failures.append((r["status"].upper(), r["id"], r["detail"] or ""))
        if verbose or r["status"] not in ("ok", "skip"):
            print(line, flush=True)

    def pump(queue, pool):
        busy = set(w for w in pool if give(w, queue))
        while busy:
            for key, _ in sel.select():
                w = key.data
                chunk = os.read(w.stdout.fileno(), 65536)
                if not chunk:
                    failures.append(("ERROR", "worker %d" % w.pid,
                                     "the worker exited (status %s)" % w.wait()))
                    sel.unregister(w.stdout)
                    busy.discard(w)
                    continue
                *lines, w.pending = (w.pending + chunk).split(b"\n")
                for line in lines:
                    r = json.loads(line)
                    if not r.get("done"):
                        report(r)
                    elif not give(w, queue):
                        busy.discard(w)

    pump(parallel, workers)
    pump(alone, workers[:1])
    for w in workers:
        try:
            w.stdin.close()
        except BrokenPipeError:
            pass
        w.wait()


def main(argv):
    verbose = True
    list_only = False
    jobs = int(os.environ.get("INTEGRATION_JOBS") or 1)
    filters = []
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--worker":
            return worker()
        if a == "-q":
            verbose = False
        elif a == "-v":
            verbose = True
        elif a == "-l":
            list_only = True
        elif a == "-j" and args:
            jobs = int(args.pop(0))
        elif a.startswith("-j") and a[2:].isdigit():
            jobs = int(a[2:])
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            filters.append(a.lower())

    binary = harness.binary_path()
    if not os.access(binary, os.X_OK):
        print("run.py: SWITCHBOARD_BIN=%s is not an executable file "
              "(build it first, e.g. make MODE=debug)" % binary, file=sys.stderr)
        return 2

    loader = unittest.TestLoader()
    suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    selected = unittest.TestSuite()
    for t in iter_tests(suite):
        tid = t.id()
        if tid.startswith("unittest.loader._FailedTest"):
            selected.addTest(t)  # an import error in a test file: always run (and fail)
            continue
        if not filters or any(f in tid.lower() for f in filters):
            selected.addTest(t)
    n = selected.countTestCases()
    if n == 0:
        print("run.py: no test matches %r" % filters, file=sys.stderr)
        return 2
    if list_only:
        for t in iter_tests(selected):
            print(t.id())
        return 0

    print("switchboard integration tests: %d selected, %d at a time, binary %s"
          % (n, jobs, binary), flush=True)
    faulthandler.dump_traceback_later(SUITE_TIMEOUT_S, exit=True)
    t0 = time.monotonic()
    if jobs > 1 and not any(t.id().startswith("unittest.loader.") for t in iter_tests(selected)):
        rows, failures = [], []
        run_parallel(selected, jobs, verbose, rows, failures)
        ran = len(rows)
        skipped = sum(1 for _, s, _ in rows if s == "skip")
    else:
        result = Result(verbose)
        selected.run(result)
        rows = result.rows
        failures = [("FAIL", t.id() if hasattr(t, "id") else str(t), tb)
                    for t, tb in result.failures]
        failures += [("ERROR", t.id() if hasattr(t, "id") else str(t), tb)
                     for t, tb in result.errors]
        ran = result.testsRun
        skipped = len(result.skipped)
    elapsed = time.monotonic() - t0
    faulthandler.cancel_dump_traceback_later()

    for kind, tid, tb in failures:
        print("\n" + "=" * 78)
        print("%s: %s" % (kind, tid))
        print("-" * 78)
        print(tb.rstrip())
    print("\n" + "=" * 78)
    passed = sum(1 for _, s, _ in rows if s == "ok")
    print("ran %d tests in %.1fs: %d passed, %d failed, %d errors, %d skipped"
          % (ran, elapsed, passed, sum(1 for k, _, _ in failures if k == "FAIL"),
             sum(1 for k, _, _ in failures if k == "ERROR"), skipped))
    bad = []
    for tid, s, _ in rows:
        if s in ("fail", "error") and tid not in bad:
            bad.append(tid)
    if bad:
        print("failing:")
        for tid in bad:
            print("  " + tid)
    slow = sorted(rows, key=lambda r: -r[2])[:5]
    print("slowest: " + ", ".join("%s %.1fs" % (tid.rsplit(".", 1)[-1], dt)
                                  for tid, _, dt in slow))
    return 0 if not failures and not bad else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

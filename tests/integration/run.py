#!/usr/bin/python3
"""Runs the black-box integration tests (tests/integration/test_*.py) against $SWITCHBOARD_BIN.

    SWITCHBOARD_BIN=build/debug/bin/switchboard /usr/bin/python3 tests/integration/run.py [filter...]

A filter keeps the tests whose id (module.Class.test_name) contains it (case-insensitive); several
filters are OR-ed. -v prints each test as it finishes (default), -q only failures and the summary,
-l lists the tests without running them. Exit status: 0 when every selected test passed, 1 when
one failed, 2 when nothing was selected or the binary is missing.
"""
import faulthandler
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402

SUITE_TIMEOUT_S = 300  # a hung suite is stopped; a normal run takes about 1 minute (2 under TSan)


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


class Result(unittest.TestResult):
    def __init__(self, verbose):
        super().__init__()
        self.verbose = verbose
        self.rows = []
        self._t0 = {}

    def startTest(self, test):
        super().startTest(test)
        self._t0[test.id()] = time.monotonic()

    def _row(self, test, status, detail=None):
        dt = time.monotonic() - self._t0.get(test.id(), time.monotonic())
        self.rows.append((test.id(), status, dt))
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
        self._row(test, "fail")

    def addError(self, test, err):
        super().addError(test, err)
        self._row(test, "error")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            status = "fail" if issubclass(err[0], test.failureException) else "error"
            self._t0.setdefault(subtest.id(), self._t0.get(test.id(), time.monotonic()))
            self._row(subtest, status)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._row(test, "skip", reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._row(test, "xfail")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._row(test, "xpass")


def main(argv):
    verbose = True
    list_only = False
    filters = []
    for a in argv:
        if a == "-q":
            verbose = False
        elif a == "-v":
            verbose = True
        elif a == "-l":
            list_only = True
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
    broken = []
    for t in iter_tests(suite):
        tid = t.id()
        if tid.startswith("unittest.loader._FailedTest"):
            broken.append(t)  # an import error in a test file: always run (and fail)
            selected.addTest(t)
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

    print("switchboard integration tests: %d selected, binary %s" % (n, binary), flush=True)
    faulthandler.dump_traceback_later(SUITE_TIMEOUT_S, exit=True)
    t0 = time.monotonic()
    result = Result(verbose)
    selected.run(result)
    elapsed = time.monotonic() - t0
    faulthandler.cancel_dump_traceback_later()

    for kind, items in (("FAIL", result.failures), ("ERROR", result.errors)):
        for test, tb in items:
            print("\n" + "=" * 78)
            print("%s: %s" % (kind, test.id() if hasattr(test, "id") else test))
            print("-" * 78)
            print(tb.rstrip())
    print("\n" + "=" * 78)
    passed = sum(1 for _, s, _ in result.rows if s == "ok")
    print("ran %d tests in %.1fs: %d passed, %d failed, %d errors, %d skipped"
          % (result.testsRun, elapsed, passed, len(result.failures), len(result.errors),
             len(result.skipped)))
    bad = []
    for tid, s, _ in result.rows:
        if s in ("fail", "error") and tid not in bad:
            bad.append(tid)
    if bad:
        print("failing:")
        for tid in bad:
            print("  " + tid)
    slow = sorted(result.rows, key=lambda r: -r[2])[:5]
    print("slowest: " + ", ".join("%s %.1fs" % (tid.rsplit(".", 1)[-1], dt)
                                  for tid, _, dt in slow))
    return 0 if result.wasSuccessful() and not bad else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

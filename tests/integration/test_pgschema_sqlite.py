"""The PostgreSQL statements (agents/store/pgschema.c) answer what the SQLite store answers: one
long scenario of calls, tool calls, chats and post-call jobs runs on both, the SQLite side through
the store's own C code (pgschema_dump --sqlite: storedb, jobsdb, chatdb, querydb and store.c's
order of calls), and every answer is compared, members in order. The fixtures are
test_pgschema.py's."""
import json
import random
import subprocess

import test_pgschema as pgs

RETRY_MS = pgs.RETRY_MS
STALE_MS = pgs.STALE_MS
ordered = pgs.ordered


class SameAsSqliteTest(pgs.PgCase):
    """A scenario on both stores, every answer compared."""

    def sqlite_answers(self, ops):
        p = subprocess.run([self.dump_bin, "--sqlite"], input="".join(
            json.dumps(list(op)) + "\n" for op in ops), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return [json.loads(line) for line in p.stdout.splitlines()]

    @staticmethod
    def pg_answer(op, rows):
        """A statement's rows as pgschema_dump --sqlite prints the same operation's answer."""
        name = op[0]
        if name in ("call_end", "call_info"):
            return [rows[0][0], int(rows[0][1])] if rows else None
        if name in ("expire", "jobs_recover"):
            return int(rows[0][0])
        if name == "call_delete":
            return rows[0][0] == "t"
        if name in ("chat_open", "call_json", "calls", "jobs_claim", "job_summary", "job_end"):
            return None if rows[0][0] is None else json.loads(rows[0][0])
        return None

    def scenario(self, seed):
        """A day of calls, tool calls, jobs and chats for both stores, then every read. Times
        only grow with the order of the operations, as one store's clock does. ("again", op…)
        is op sent a second time."""
        rnd = random.Random(seed)
        words = ["oil", "change", "Tuesday", "tire", "O'Brien", "brake", "10:30", "please",
                 "book", "café", "555-0100", "cancel", "quote", "ann@example.com", "thanks"]
        args = ['{"service": "Oil Change", "date": "2026-12-02"}', '{}', '[1, 2]', None,
                "not json", '{"nested": {"a": [true, false, null]}, "n": 1.5}']
        outputs = ['{"confirmation": "ABC123"}', "slot taken", '{"error": {"code": "x"}}', None,
                   '"quoted"', "[]", "error: timeout"]
        ops, ids, t = [], [], 1000

        def tick(n=1):
            nonlocal t
            t += n
            return t

        for i in range(24):
            cid = "call_%02d" % i
            ids.append(cid)
            tenant = rnd.choice([None, "default", "acme"])
            start = tick(rnd.choice([0, 0, 5, 100]))  # some start in the same millisecond
            ops.append(("call_start", cid, "sess_%d" % i, tenant, start))
            if rnd.random() < 0.2:
                ops.append(("again",) + ops[-1])
            if rnd.random() < 0.3:
                ops.append(("call_phone", cid, "+1415555%04d" % i, "+14155550000", "CA%d" % i,
                            rnd.choice([None, "+15550001111"])))
            for k in range(rnd.randint(0, 6)):
                line = ("transcript", cid, rnd.choice(["user", "assistant"]),
                        " ".join(rnd.sample(words, 3)), tick())
                ops.append(line)
                if rnd.random() < 0.2:
                    ops.append(("again",) + line)
            if rnd.random() < 0.7:
                ops.append(("first_audio", cid, rnd.randint(100, 900)))
            for k in range(rnd.randint(0, 4)):
                tool = ("tool_record", cid, "tc_%d_%d" % (i, k),
                        rnd.choice([None, "", "tc_%d_0" % i, "postcall"]),
                        rnd.choice(["bookAppointment", "checkAvailability", "crm__find"]),
                        rnd.choice(args), rnd.choice(outputs),
                        rnd.choice(["completed", "failed", "cancelled"]), rnd.randint(-1, 900),
                        rnd.choice([None, "supervisor", "mcp:crm"]), tick(rnd.choice([0, 3])))
                ops.append(tool)
                if rnd.random() < 0.2:
                    ops.append(("again",) + tool)
            if rnd.random() < 0.85:
                ops.append(("call_end", cid, tick(rnd.randint(1, 90000)),
                            rnd.choice(["client_closed", "caller_hung_up", None]),
                            rnd.choice([None, "sess_oai"]), None, rnd.randint(0, 999),
                            rnd.randint(0, 999)))
        ops.append(("call_end", "never_started", tick(), "x", None, None, 0, 0))
        for thread in ("th_a", "th_b"):
            ops.append(("chat_open", thread, "user_" + thread, rnd.choice([None, "acme"]),
                        tick(), 50))
            for k in range(6):
                msg = ("chat_message", thread, "%s_m%d" % (thread, k),
                       rnd.choice([None, "client_%d" % k]), rnd.choice(["user", "assistant"]),
                       "message %d" % k, tick(rnd.choice([0, 1])))
                ops.append(msg)
                if rnd.random() < 0.3:
                    ops.append(("again",) + msg)
            ops.append(("chat_open", thread, "someone_else", None, tick(), 4))
        # Post-call jobs: queued for most ended calls, then rounds of claims and reports.
        for cid in ids:
            if rnd.random() < 0.7:
                ops.append(("call_info", cid, rnd.choice([None, "acme", "default"])))
                ops.append(("job_queue", cid, rnd.choice(["default", "acme"]),
                            rnd.random() < 0.5, tick()))
        for _ in range(20):  # 5 minutes apart: past every retry delay
            ops.append(("jobs_claim", tick(RETRY_MS * 10), rnd.randint(2, 8),
                        rnd.choice([2, 40]), "node1"))
            ops.append(("claimed_reports",))  # replaced below from the claim's answer
        ops.append(("job_queue", ids[0], "default", True, tick()))
        ops.append(("jobs_claim", tick(), 50, 40, "node1"))
        ops.append(("jobs_recover", "node1", tick()))
        # Every read.
        reads = []
        for cid in ids + ["nope"]:
            for tenant in (None, "acme", "default"):
                reads.append(("call_json", cid, tenant))
            reads.append(("call_info", cid, None))
        for q in (None, "oil", "oil change", "o'brien", "555-0100 book", "café", "!!!",
                  "tire & brake"):
            for tenant in (None, "acme"):
                for channel in (None, "phone"):
                    reads.append(("calls", tenant, 0, 0, channel, None, q, 0, 0, 5))
        reads.append(("calls", None, 1100, 1500, None, None, None, 0, 0, 3))
        reads.append(("calls", None, 0, 0, None, "booked", None, 0, 0, 3))
        reads.append(("calls", None, 0, 0, None, "other", None, 0, 0, 100))
        return ops, reads, rnd

    def test_same_answers_as_sqlite(self):
        """One scenario on both stores, operation by operation; each post-call report follows
        the claim's answer (the same on both, or the test fails there)."""
        for seed in (1, 2, 3):
            with self.subTest(seed=seed):
                if seed > 1:
                    self.db = self.fresh_db()
                    self.psql(self.dump["setup"])
                self.check_scenario(seed)

    def check_scenario(self, seed):
        ops, reads, rnd = self.scenario(seed)
        done = []  # what both ran so far (SQLite replays it: one process per step)
        running = {}  # callId -> claimed_at, for nextDue
        seen = []  # (op, answer) compared
        step = []

        def flush():
            """Runs the steps on both; a write sent again (as after a reconnect) goes to
            PostgreSQL only."""
            if not step:
                return []
            once = [op for op in step if op[0] != "again"]
            want = self.sqlite_answers(done + once)[len(done):]
            rows = self.batch([op[1:] if op[0] == "again" else op for op in step])
            got = [self.pg_answer(op, r) for op, r in zip(step, rows) if op[0] != "again"]
            for op, w, g in zip(once, want, got):
                if op[0] == "jobs_claim":  # nextDue also counts the running jobs' stale time
                    running.update({j["callId"]: op[1] for j in w["jobs"]})
                    due = [w["nextDue"]] if w["nextDue"] >= 0 else []
                    due += [at + STALE_MS for at in running.values()]
                    w["nextDue"] = min(due) if due else -1
                if op[0] == "jobs_recover":
                    running.clear()
                if op[0] == "calls" and "nextCursor" in g:  # seq: a resent start skips one
                    self.assertRegex(g["nextCursor"], r"^\d+\.[1-9]\d*$")
                    g["nextCursor"] = g["nextCursor"].split(".")[0]
                    w["nextCursor"] = w.get("nextCursor", "").split(".")[0]
                ordered(self, g, w, "seed %d, %s" % (seed, json.dumps(op)))
                seen.append((op, g))
            done.extend(once)
            answers = got
            step.clear()
            return answers

        for i, op in enumerate(ops):
            if op[0] != "claimed_reports":
                step.append(op)
                continue
            claim, now = flush()[-1], ops[i - 1][1]
            for j in claim["jobs"]:
                cid = j["callId"]
                summary = rnd.choice([None, '{"summary": "s", "outcome": "booked"}',
                                      "not json"])
                step.append(("job_summary", cid, summary, rnd.choice(["booked", "other", None]),
                             "summary: bad", now + 1, rnd.random() < 0.7))
                stuck = int(cid[-2:]) % 4 == 0  # its CRM always fails: it runs out of attempts
                step.append(("job_end", cid, "failed" if stuck else rnd.choice([None, "done",
                                                                                 "failed"]),
                             rnd.choice([None, "crm: down"]), now + 2, RETRY_MS,
                             rnd.random() < 0.7))
                running.pop(cid, None)
        flush()
        step.extend(reads)
        flush()
        # The list, page by page, each store with its own cursors.
        for tenant in (None, "acme"):
            pages = {"sqlite": [], "pg": []}
            for side in pages:
                cursor = (0, 0)
                while True:
                    op = ("calls", tenant, 0, 0, None, None, None, cursor[0], cursor[1], 4)
                    page = (self.sqlite_answers(done + [op])[-1] if side == "sqlite"
                            else self.pg_answer(op, self.q(*op)))
                    pages[side].append(page)
                    if "nextCursor" not in page:
                        break
                    cursor = tuple(int(x) for x in page["nextCursor"].split("."))
            self.assertEqual(len(pages["pg"]), len(pages["sqlite"]))
            for g, w in zip(pages["pg"], pages["sqlite"]):
                ordered(self, g["calls"], w["calls"], "seed %d page" % seed)
                self.assertEqual("nextCursor" in g, "nextCursor" in w)
                if "nextCursor" in g:
                    self.assertEqual(g["nextCursor"].split(".")[0], w["nextCursor"].split(".")[0])
        # Retention and deletes, then the list again.
        step.extend([("expire", 1400), ("call_delete", "call_20", "acme"),
                     ("call_delete", "call_21", None), ("call_delete", "call_22", "default"),
                     ("calls", None, 0, 0, None, None, None, 0, 0, 100),
                     ("chat_open", "th_a", "x", None, 10 ** 7, 50)])
        flush()
        # What the scenario reached, so that it keeps comparing what matters.
        count = lambda f: sum(1 for op, g in seen if f(op, g))  # noqa: E731
        reached = {
            "claims": count(lambda op, g: op[0] == "jobs_claim" and g["jobs"]),
            "tails": count(lambda op, g: op[0] == "jobs_claim" and any(
                j["call"]["toolCalls"] for j in g["jobs"])),
            "retries": count(lambda op, g: op[0] == "job_end" and g["retryInMs"] > 0),
            "done": count(lambda op, g: op[0] == "job_end" and g["done"]),
            "final": count(lambda op, g: op[0] == "job_end" and g["final"]),
            "webhooks": count(lambda op, g: op[0] == "job_summary" and g
                              or op[0] == "job_end" and g["webhook"]),
            "tool calls": count(lambda op, g: op[0] == "call_json" and g and g["toolCalls"]),
            "found": count(lambda op, g: op[0] == "calls" and op[6] and g["calls"]),
            "not found": count(lambda op, g: op[0] == "calls" and op[6] and not g["calls"]),
            "histories": count(lambda op, g: op[0] == "chat_open" and g["messages"]),
        }
        for what, n in reached.items():
            self.assertGreater(n, 0, "seed %d reached no %s: %s" % (seed, what, reached))

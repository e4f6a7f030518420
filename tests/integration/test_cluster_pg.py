"""Two nodes sharing Redis and PostgreSQL (SPEC 13): bookings that cannot overlap across nodes,
call records and chat history seen from either node, post-call jobs run once, and PostgreSQL
going away and coming back. Real redis-server and PostgreSQL run on free ports (redisfix.py,
pgfix.py); the upstream is switchboard-sim in agent mode (its chat model books what the caller
asks for, see test_tools.py)."""
import asyncio
import http.server
import json
import os
import tempfile
import threading

from harness import (RELAXED_ENV, SBTestCase, Server, Sim, eventually, expect_close, good_jwt,
                     free_port, recv_until, stop_servers, timeout, wait_ready)
from pgfix import Postgres
from redisfix import Redis
from test_relay import Reader
from test_tools import ToolCase, next_weekday, tool_events

READY_S = 15


class PgClusterCase(ToolCase):
    """Redis, PostgreSQL, an agent-mode simulator and two nodes, a and b, for the class."""
    TEST_TIMEOUT = 90
    NODE_ENV = {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.redis = Redis().start()
        cls.pg = Postgres().start()
        cls.agent_sim = Sim("--mode", "agent", "--pace", "20").start()
        cls.nodes = []
        try:
            for name in ("a", "b"):
                cls.nodes.append(cls.node(name))
            cls.a, cls.b = cls.nodes
            for n in cls.nodes:
                wait_ready(n, READY_S)
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def node(cls, name, **extra):
        env = dict(RELAXED_ENV)
        env.update(cls.agent_sim.env())
        env.update({"SWITCHBOARD_REDIS_URL": cls.redis.url,
                    "SWITCHBOARD_DATABASE_URL": cls.pg.url,
                    "SWITCHBOARD_JWT_SECRET": "pg-chat-jwt",
                    "SWITCHBOARD_NODE_ID": "node-" + name})
        env.update(cls.NODE_ENV)
        env.update(extra)
        return Server(env, name="%s.%s" % (cls.__name__, name)).start()

    @classmethod
    def tearDownClass(cls):
        try:
            stop_servers(getattr(cls, "nodes", []))
        finally:
            for stop in (getattr(cls, "agent_sim", None) and cls.agent_sim.stop,
                         getattr(cls, "pg", None) and cls.pg.close,
                         getattr(cls, "redis", None) and cls.redis.cleanup):
                if stop:
                    stop()
            super().tearDownClass()

    async def call(self, node, text):
        """One voice call on node with one text turn; returns its sessionId once closed."""
        ws, r, sid = await self.open_ready(node)
        await self.text_turn(ws, r, text)
        await ws.close()
        return sid

    def get(self, node, path):
        """A GET with the API secret when the nodes have one."""
        secret = self.NODE_ENV.get("SWITCHBOARD_API_SECRET")
        return node.get(path, headers={"Authorization": "Bearer " + secret} if secret else None)

    def calls(self, node, **query):
        q = "&".join("%s=%s" % kv for kv in query.items())
        res = self.get(node, "/api/calls" + ("?" + q if q else ""))
        self.assertEqual(res.status, 200, res)
        return res.json()["calls"]


class SharedRecordsTest(PgClusterCase):
    @timeout(90)
    async def test_twenty_bookings_of_one_slot_over_two_nodes_one_wins(self):
        date = next_weekday(11)
        opened = await asyncio.gather(*(self.open_ready(n) for n in [self.a, self.b] * 10))
        outs = await asyncio.gather(*(
            self.turn(ws, r, "Please book a brake repair on %s at 10:30" % date, timeout_s=30)
            for ws, r, _ in opened))
        booked = []
        for (ws, r, _), (start, _end, _said) in zip(opened, outs):
            evs = [e for e in tool_events(r, start, "bookAppointment") if e["status"] != "started"]
            self.assertEqual(len(evs), 1, evs)
            booked.append(json.loads(evs[0]["output"]))
        wins = [b for b in booked if "confirmationNumber" in b]
        self.assertEqual(len(wins), 1, booked)
        losses = [b["error"]["code"] for b in booked if "error" in b]
        self.assertEqual(losses, ["slot_unavailable"] * 19, booked)
        self.assertEqual(self.pg.value(
            "SELECT count(*) FROM appointments WHERE date = '%s'" % date), "1")
        for ws, _, _ in opened:
            await ws.close()

    async def test_either_node_lists_the_calls_of_both(self):
        sid_a = await self.call(self.a, "Hello from node a")
        sid_b = await self.call(self.b, "Hello from node b")

        def both(node):
            ids = {c["sessionId"]: c for c in self.calls(node, limit=100)}
            return sid_a in ids and sid_b in ids and ids[sid_a]["endedAt"] and ids
        for node in (self.a, self.b):
            ids = await eventually(lambda: both(node), deadline_s=5, what="both calls")
        rec = self.b.get("/api/calls/%s" % ids[sid_a]["id"]).json()
        self.assertEqual(rec["sessionId"], sid_a)
        self.assertIn("Hello from node a", [t["text"] for t in rec["transcript"]])
        # Search finds it from the other node too (full-text search in PostgreSQL).
        found = self.calls(self.b, q="node+a")
        self.assertIn(sid_a, [c["sessionId"] for c in found])
        self.assertNotIn(sid_b, [c["sessionId"] for c in found])
        # A delete on one node is seen by the other.
        self.assertEqual(self.b.request("DELETE", "/api/calls/%s" % ids[sid_a]["id"]).status, 200)
        self.assertEqual(self.a.get("/api/calls/%s" % ids[sid_a]["id"]).status, 404)

    async def test_chat_history_of_a_thread_is_the_same_on_both_nodes(self):
        def is_(t):
            return lambda m: isinstance(m, dict) and m.get("type") == t

        def answer(m):
            return is_("message")(m) and m.get("role") == "assistant"
        ws = self.track(await self.a.ws("/ws/chat", threadId="th_pg_1", userId="dora",
                                        token=good_jwt("pg-chat-jwt", sub="dora")))
        await recv_until(ws, is_("history"), timeout=5)
        await ws.send(json.dumps({"type": "message", "text": "Remember the blue car",
                                  "clientMessageId": "c1"}))
        said, _ = await recv_until(ws, answer, timeout=15)
        await ws.close()
        want = [("user", "Remember the blue car"), ("assistant", said["text"])]

        async def history_on_b():
            # Node a writes the answer to PostgreSQL after sending it: the other node sees it
            # once that write has landed (a few milliseconds; on one node the store's mailbox
            # orders the write before any later read).
            ws2 = await self.b.ws("/ws/chat", threadId="th_pg_1", userId="dora",
                                  token=good_jwt("pg-chat-jwt", sub="dora"))
            hist, _ = await recv_until(ws2, is_("history"), timeout=5)
            await ws2.close()
            got = [(m["role"], m["text"]) for m in hist["messages"]]
            return got == want and hist
        hist = await eventually(history_on_b, deadline_s=5, interval=0.05,
                                what="both messages in the history on node b")
        self.assertEqual(hist["messages"][0]["clientMessageId"], "c1")
        # Another user cannot take the thread on the other node.
        ws3 = await self.b.ws("/ws/chat", threadId="th_pg_1", userId="mallory",
                              token=good_jwt("pg-chat-jwt", sub="mallory"))
        await expect_close(ws3, 1008, "forbidden")


class Webhooks(http.server.BaseHTTPRequestHandler):
    """Counts the post-call webhooks by call id (answers 200)."""
    got = {}
    lock = threading.Lock()

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.lock:
            self.got[body["id"]] = self.got.get(body["id"], 0) + 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class PostcallAcrossNodesTest(PgClusterCase):
    """Both nodes run post-call jobs from one table: each job is claimed once (FOR UPDATE SKIP
    LOCKED), and each call's webhook goes once."""

    @classmethod
    def setUpClass(cls):
        cls.hooks = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Webhooks)
        threading.Thread(target=cls.hooks.serve_forever, daemon=True).start()
        cls.dir = tempfile.mkdtemp(prefix="sb-pgpostcall-")
        cfg = {"company": {"name": "Shop Co", "phone": "+1 555 0100", "timezone": "UTC"},
               "brief": "We fix cars.",
               "services": [{"name": "Oil Change", "duration_min": 30, "price": "$50"}],
               "postcall": {"enabled": True, "minUserTurns": 1}}
        path = os.path.join(cls.dir, "agent.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        cls.NODE_ENV = {"SWITCHBOARD_CONFIG": path, "SWITCHBOARD_API_SECRET": "pg-hook-secret",
                        "SWITCHBOARD_POSTCALL_WEBHOOK_URL":
                            "http://127.0.0.1:%d/hook" % cls.hooks.server_address[1]}
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.hooks.shutdown()

    @timeout(90)
    async def test_each_job_runs_once_over_two_nodes(self):
        sids = await asyncio.gather(*(
            self.call(n, "Hi, my name is Ann Lee, my phone is 415-555-0100.")
            for n in [self.a, self.b] * 3))

        def all_done():
            res = self.get(self.a, "/api/calls?limit=100")
            if res.status != 200:
                return False
            calls = {c["sessionId"]: c for c in res.json()["calls"]}
            done = [calls[s] for s in sids if s in calls and calls[s]["postcall"]
                    and calls[s]["postcall"]["state"] == "done"]
            return len(done) == len(sids) and done
        done = await eventually(all_done, deadline_s=40, interval=0.2, what="six jobs done")
        await asyncio.sleep(1.5)  # a second claim, were there one, would show by now
        for c in done:
            rec = self.get(self.b, "/api/calls/%s" % c["id"]).json()
            self.assertEqual(rec["postcall"]["attempts"], 1, rec["postcall"])
            self.assertEqual(rec["postcall"]["steps"]["summary"], "done", rec["postcall"])
        with Webhooks.lock:
            got = dict(Webhooks.got)
        self.assertEqual({c["id"]: got.get(c["id"]) for c in done},
                         {c["id"]: 1 for c in done})


class PgRestartTest(PgClusterCase):
    @timeout(120)
    async def test_records_made_while_postgres_is_down_are_written_when_it_returns(self):
        self.pg.stop()
        try:
            sids = []
            for node in (self.a, self.b, self.a, self.b):
                sids.append(await self.call(node, "Calling while the database is away"))
            # Reads answer unavailable; the nodes stay ready and the writes wait, counted.
            res = self.a.get("/api/calls")
            self.assertEqual((res.status, res.error_code), (503, "unavailable"), res)
            for node in (self.a, self.b):
                self.assertEqual(node.get("/readyz").status, 200)
            queued = await eventually(lambda: sum(
                n.metrics().get("switchboard_store_queued", 0) for n in (self.a, self.b)),
                what="queued writes")
            self.assertGreater(queued, 0)
        finally:
            self.pg.start(port=self.pg.port)

        def all_there():
            res = self.b.get("/api/calls?limit=100")
            if res.status != 200:  # until the node has reconnected
                return False
            ids = {c["sessionId"]: c for c in res.json()["calls"]}
            return all(s in ids and ids[s]["endedAt"] for s in sids) and ids
        ids = await eventually(all_there, deadline_s=15, what="the calls made while down")
        for sid in sids:
            rec = self.a.get("/api/calls/%s" % ids[sid]["id"]).json()
            self.assertEqual([t["text"] for t in rec["transcript"] if t["role"] == "user"],
                             ["Calling while the database is away"])
        for node in (self.a, self.b):
            await eventually(lambda: node.metrics().get("switchboard_store_queued", 0) == 0,
                             what="an empty queue")


class PgAbsentAtStartTest(SBTestCase):
    @timeout(60)
    async def test_runs_unready_until_postgres_starts(self):
        port = free_port()
        late = Postgres()
        node = Server({"SWITCHBOARD_DATABASE_URL": "postgres://sb@127.0.0.1:%d/switchboard"
                                                   % port}, name="late").start()
        try:
            res = node.get("/readyz")
            self.assertEqual((res.status, res.error_code), (503, "unavailable"), res)
            self.assertIn("PostgreSQL", res.json()["error"]["message"])
            self.assertEqual(node.get("/healthz").status, 200)
            late.start(port=port)
            wait_ready(node, READY_S)
            self.assertEqual(node.get("/api/calls").json(), {"calls": []})
        finally:
            node.stop(expect_status=0)
            node.cleanup()
            late.close()

"""Two nodes sharing Redis (SPEC 13): tokens, the session registry and its caps, rate windows,
and what happens when a node or Redis goes away. A real redis-server runs on a free port
(redisfix.py); the nodes are ordinary switchboard processes with SWITCHBOARD_REDIS_URL."""
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import websockets.exceptions

from harness import (RELAXED_ENV, PageReader, SBTestCase, Server, bench_path, eventually,
                     expect_close, free_loopback_alias, good_jwt, parse_metrics, recv_until,
                     free_port, stop_servers, timeout, wait_ready)
from redisfix import Redis
from test_bench import bench_json

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

READY_S = 10


def is_ready(m):
    return isinstance(m, dict) and m.get("type") == "session.ready"


async def admitted(ws):
    """True when the socket got session.ready, False when it was closed (the code kept)."""
    try:
        await recv_until(ws, is_ready, timeout=8)
        return True
    except websockets.exceptions.ConnectionClosed:
        return False


def close_code(ws):
    return ws.close_code


class ClusterCase(SBTestCase):
    """Redis and two nodes, a and b, for the class."""
    NODE_ENV = {}
    TEST_TIMEOUT = 60

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.redis = Redis().start()
        cls.nodes = []
        try:
            for name in ("a", "b"):
                env = dict(RELAXED_ENV)
                env.update({"SWITCHBOARD_REDIS_URL": cls.redis.url,
                            "SWITCHBOARD_NODE_ID": "node-" + name})
                env.update(cls.NODE_ENV)
                cls.nodes.append(Server(env, name="%s.%s" % (cls.__name__, name)).start())
            cls.a, cls.b = cls.nodes
            for n in cls.nodes:
                wait_ready(n, READY_S)
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            stop_servers(getattr(cls, "nodes", []))
        finally:
            cls.redis.cleanup()
            super().tearDownClass()


class TokensAndCapsTest(ClusterCase):
    NODE_ENV = {"SWITCHBOARD_MAX_SESSIONS": "10", "SWITCHBOARD_SESSIONS_PER_IP": "3"}

    async def close_all(self, sockets):
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)

    async def test_token_from_a_is_spent_once_across_both_nodes(self):
        tok = self.a.mint()
        nodes = [self.a, self.b] * 10
        socks = await asyncio.gather(*(n.voice(tok["sessionId"], tok["token"]) for n in nodes))
        for ws in socks:
            self.track(ws)
        results = await asyncio.gather(*(admitted(ws) for ws in socks))
        self.assertEqual(sum(results), 1, results)
        for ws, ok in zip(socks, results):
            if not ok:
                # Spent by another socket: unauthorized (or, for the same sessionId once the
                # winner is live, session exists).
                self.assertIn((ws.close_code, ws.close_reason),
                              [(1008, "unauthorized"), (1008, "session exists")])
        await self.close_all(socks)

    async def test_expired_token_fails_on_both_nodes(self):
        for node in (self.a, self.b):
            tok = self.b.mint()
            # Redis expires keys itself: make this token's ttl end now.
            self.assertEqual(self.redis.cmd("PEXPIRE", "sb:tok:" + tok["token"], 1), 1)
            time.sleep(0.01)
            ws = await node.voice(tok["sessionId"], tok["token"])
            await expect_close(ws, 1008, "unauthorized")

    async def test_chat_token_redeemed_on_the_other_node(self):
        tok = self.a.mint_raw({"purpose": "chat"}).json()
        ws = self.track(await self.b.ws("/ws/chat", threadId="th_cluster_1",
                                        userId=tok["userId"], token=tok["token"]))
        hist, _ = await recv_until(ws, lambda m: isinstance(m, dict)
                                   and m.get("type") == "history", timeout=5)
        self.assertEqual(hist["threadId"], "th_cluster_1", hist)
        again = await self.a.ws("/ws/chat", threadId="th_cluster_1", userId=tok["userId"],
                                token=tok["token"])
        await expect_close(again, 1008, "unauthorized")

    @timeout(90)
    async def test_max_sessions_is_exact_over_two_nodes(self):
        # 25 callers from 25 addresses (the per-IP cap is 3), tokens minted alternately on both
        # nodes while nothing is live, then all connect at once, alternately.
        ips = [free_loopback_alias(20 + i) for i in range(25)]
        nodes = [self.a if i % 2 == 0 else self.b for i in range(25)]
        toks = [nodes[i].mint(source_ip=ips[i]) for i in range(25)]
        socks = await asyncio.gather(*(nodes[(i + 1) % 2].voice(toks[i]["sessionId"],
                                                                 toks[i]["token"],
                                                                 local_ip=ips[i])
                                       for i in range(25)))
        for ws in socks:
            self.track(ws)
        results = await asyncio.gather(*(admitted(ws) for ws in socks))
        self.assertEqual(sum(results), 10, results)
        for ws, ok in zip(socks, results):
            if not ok:
                self.assertEqual((ws.close_code, ws.close_reason), (1013, "at capacity"))
        # Both nodes see the cluster full: a mint answers 503 at_capacity on either.
        for n in (self.a, self.b):
            r = n.mint_raw({}, source_ip=free_loopback_alias(60))
            self.assertEqual((r.status, r.error_code), (503, "at_capacity"), r)
        # A live sessionId is live for the other node too.
        live = [toks[i]["sessionId"] for i in range(25) if results[i]]
        for sid in live[:3]:
            for n in (self.a, self.b):
                r = n.mint_raw({"sessionId": sid})
                self.assertEqual((r.status, r.error_code), (409, "session_exists"), r)
        await self.close_all(socks)
        # The slots come back on both nodes.
        for n in (self.a, self.b):
            await eventually(lambda: n.mint_raw({}).status == 200, 5, what="a free slot")

    @timeout(60)
    async def test_per_ip_cap_counts_both_nodes(self):
        ip = free_loopback_alias(90)
        socks = []
        for n in (self.a, self.b, self.a):
            ws, _ = await n.live_voice(local_ip=ip)
            socks.append(self.track(ws))
        for n in (self.a, self.b):
            tok = n.mint(source_ip=ip)
            ws = await n.voice(tok["sessionId"], tok["token"], local_ip=ip)
            await expect_close(ws, 1013, "at capacity")
        await self.close_all(socks)


class RateWindowTest(ClusterCase):
    NODE_ENV = {"SWITCHBOARD_SESSIONS_PER_MIN": "3"}

    async def test_the_window_is_shared(self):
        ip = free_loopback_alias(91)
        for n in (self.a, self.b, self.a):
            self.assertEqual(n.mint_raw({}, source_ip=ip).status, 200)
        for n in (self.b, self.a):
            r = n.mint_raw({}, source_ip=ip)
            self.assertEqual((r.status, r.error_code), (429, "rate_limited"), r)
            self.assertGreaterEqual(int(r.headers["Retry-After"]), 1)
        # Another address has its own window.
        self.assertEqual(self.b.mint_raw({}, source_ip=free_loopback_alias(92)).status, 200)


class NodeLossTest(ClusterCase):
    """A node that dies without a word: its lease runs out and its slots are free again."""
    NODE_ENV = {"SWITCHBOARD_MAX_SESSIONS": "4"}

    @timeout(60)
    async def test_killed_node_frees_its_slots_within_15_s(self):
        for _ in range(4):
            ws, _ = await self.a.live_voice()
            self.track(ws)
        r = self.b.mint_raw({})
        self.assertEqual((r.status, r.error_code), (503, "at_capacity"), r)
        self.a.proc.send_signal(signal.SIGKILL)
        self.a.proc.wait(5)
        killed = time.monotonic()
        while self.b.mint_raw({}).status != 200:
            self.assertLess(time.monotonic() - killed, 16, "slots still held")
            await asyncio.sleep(0.2)
        # B admits four calls now.
        for _ in range(4):
            ws, _ = await self.b.live_voice()
            self.track(ws)


class RedisRestartTest(ClusterCase):
    """Redis goes away under 20 streaming calls and comes back empty: no frame is lost, new
    admissions are refused with 503 unavailable meanwhile, and the nodes write their live
    sessions again so the caps and session_exists hold afterwards."""
    NODE_ENV = {"SWITCHBOARD_MAX_SESSIONS": "22"}

    @timeout(90)
    async def test_calls_stream_through_a_redis_restart(self):
        live_ws, live_sid = await self.b.live_voice()
        self.track(live_ws)
        bench = asyncio.create_task(asyncio.to_thread(
            bench_json, "--url", "http://127.0.0.1:%d" % self.a.port, "--sessions", "20",
            "--duration", "8"))
        await asyncio.sleep(3)
        port = self.redis.port
        self.redis.stop()
        for n in (self.a, self.b):
            await eventually(lambda: n.get("/readyz").status == 503, 5, what="readyz 503")
            r = n.mint_raw({})
            self.assertEqual((r.status, r.error_code), (503, "unavailable"), r)
        await asyncio.sleep(1)
        self.redis.start(port=port)
        for n in (self.a, self.b):
            await eventually(lambda: n.get("/readyz").status == 200, 10, what="readyz 200")
        status, out, res = await bench
        self.assertEqual(status, 0, out)
        self.assertEqual(res["sessions_connected"], 20, out)
        self.assertEqual(res["sessions_dropped"], 0, out)
        self.assertEqual(res["frames"]["lost"], 0, out)
        # B wrote its live session again: it is live for A too.
        await eventually(lambda: self.a.mint_raw({"sessionId": live_sid}).status == 409, 10,
                         what="the live session re-registered")
        self.assertEqual(self.redis.cmd("HEXISTS", "sb:live:node-b", live_sid), 1)
        # And its sessionId's sockets for page commands (the router's refresh, every 5 s).
        await eventually(lambda: self.redis.cmd("HEXISTS", "sb:pg:" + live_sid, "node-b") == 1,
                         7, what="the sessionId's sockets written again")


def free_port_pair():
    """A loopback port p such that p and p + 1 are both free now."""
    for _ in range(200):
        with socket.socket() as a, socket.socket() as b:
            a.bind(("127.0.0.1", 0))
            p = a.getsockname()[1]
            try:
                b.bind(("127.0.0.1", p + 1))
            except OSError:
                continue
            return p
    raise AssertionError("no two consecutive free ports")


class MakeClusterTest(SBTestCase):
    """scripts/cluster.sh (make cluster) on free ports: nginx round-robins 20 voice sessions over
    both nodes with no frame lost, serves the console, and Ctrl-C (SIGINT) stops everything."""
    TEST_TIMEOUT = 90

    @timeout(90)
    async def test_twenty_sessions_through_nginx(self):
        ports = [free_port() for _ in range(6)]
        tmp = tempfile.mkdtemp(prefix="sbcluster-")
        env = dict(os.environ)
        env.update({"CLUSTER_PORT": ports[0], "CLUSTER_NODE_PORT": ports[1],
                    "CLUSTER_REDIS_PORT": ports[3], "SWITCHBOARD_SIM_PORT": ports[4],
                    "CLUSTER_PG_PORT": ports[5],
                    "CLUSTER_DIR": tmp, "CLUSTER_SIM_MODE": "echo",
                    "SWITCHBOARD_BIN_DIR": os.path.dirname(bench_path()),
                    "SWITCHBOARD_SESSIONS_PER_IP": "1000", "SWITCHBOARD_MAX_SESSIONS": "1000",
                    "SWITCHBOARD_SESSIONS_PER_MIN": "100000"})
        env = {k: str(v) for k, v in env.items()}
        # The second node's port is the first's + 1: both must be free.
        env["CLUSTER_NODE_PORT"] = str(free_port_pair())
        out = open(os.path.join(tmp, "cluster.out"), "w+")
        proc = subprocess.Popen(["scripts/cluster.sh"], cwd=ROOT, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            url = None
            deadline = time.monotonic() + 30
            while url is None and time.monotonic() < deadline:
                out.seek(0)
                m = re.search(r"open (http://\S+)/", out.read())
                url = m and m.group(1)
                self.assertIsNone(proc.poll(), "cluster.sh exited")
                await asyncio.sleep(0.1)
            self.assertIsNotNone(url, "cluster.sh never printed its URL")
            with urllib.request.urlopen(url + "/", timeout=5) as r:
                self.assertEqual(r.status, 200)
                self.assertIn("text/html", r.headers["Content-Type"])
            status, text, res = await asyncio.to_thread(
                bench_json, "--url", url, "--sessions", "20", "--duration", "3")
            self.assertEqual(status, 0, text)
            self.assertEqual(res["sessions_connected"], 20, text)
            self.assertEqual(res["frames"]["lost"], 0, text)
            per_node = []
            for i in range(2):
                node = int(env["CLUSTER_NODE_PORT"]) + i
                with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % node) as r:
                    m = parse_metrics(r.read().decode())
                per_node.append(m.get('switchboard_sessions_total{result="completed"}', 0))
            self.assertEqual(sum(per_node), 20, per_node)
            self.assertTrue(all(n >= 5 for n in per_node), per_node)
            # One PostgreSQL behind both: either node lists every call.
            for i in range(2):
                node = int(env["CLUSTER_NODE_PORT"]) + i

                def listed():
                    with urllib.request.urlopen(
                            "http://127.0.0.1:%d/api/calls?limit=100" % node) as r:
                        calls = json.loads(r.read())["calls"]
                    return len([c for c in calls if c["endedAt"]]) == 20
                await eventually(listed, deadline_s=5, what="20 ended calls on node %d" % i)
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            out.close()
        # Nothing it started is left: no process names its directory, no port answers.
        left = subprocess.run(["pgrep", "-f", tmp], capture_output=True, text=True).stdout
        self.assertEqual(left.strip(), "", left)
        for p in (ports[0], int(env["CLUSTER_NODE_PORT"]), int(env["CLUSTER_NODE_PORT"]) + 1,
                  ports[3], ports[5]):
            with socket.socket() as sk:
                self.assertNotEqual(sk.connect_ex(("127.0.0.1", p)), 0, "port %d open" % p)
        shutil.rmtree(tmp, True)


class UserKeyTest(ClusterCase):
    async def test_a_user_key_from_one_node_works_on_the_other(self):
        first = self.a.mint_raw({"purpose": "chat"}).json()
        again = self.b.mint_raw({"purpose": "chat", "userKey": first["userKey"]})
        self.assertEqual(again.status, 200, again)
        self.assertEqual(again.json()["userId"], first["userId"])
        key = first["userKey"]
        bad = self.b.mint_raw({"purpose": "chat",
                               "userKey": key[:-1] + ("1" if key[-1] == "0" else "0")})
        self.assertEqual((bad.status, bad.error_code), (401, "unauthorized"), bad)


class CommandsTest(ClusterCase):
    """navigate reaches every socket of the sessionId on every node (SPEC 13 "Commands")."""

    async def page_on(self, node, sid, auto_ack):
        ws = self.track(await node.page(sid))
        r = PageReader(ws, auto_ack=auto_ack)
        self.addAsyncCleanup(r.stop)
        return r

    async def navigate_until(self, node, sid, delivered, deadline_s=5.0):
        """POST navigate on node until it reaches `delivered` sockets (each node learns of the
        other's sockets through Redis, a moment after they open)."""
        end = time.monotonic() + deadline_s
        while True:
            r = await node.anavigate("homepage", {"sessionId": sid, "section": "pricing"})
            if (r.status == 200 and r.json()["delivered"] >= delivered) or time.monotonic() > end:
                return r
            await asyncio.sleep(0.05)

    @timeout(60)
    async def test_navigate_on_b_reaches_a_page_on_a_and_the_voice_on_b(self):
        ws, sid = await self.b.live_voice()
        self.track(ws)
        page = await self.page_on(self.a, sid, auto_ack=True)
        r = await self.navigate_until(self.b, sid, 2)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"ok": True, "delivered": 2, "acked": True})
        cmd = await page.command()
        self.assertEqual((cmd["page"], cmd["section"]), ("homepage", "pricing"))
        # The voice socket on b got the same command.
        got, _ = await recv_until(ws, lambda m: isinstance(m, dict) and m.get("type") == "command")
        self.assertEqual(got["id"], cmd["id"])

    @timeout(60)
    async def test_a_page_only_on_the_other_node(self):
        sid = "pg_cluster_only_a_1"
        await self.page_on(self.a, sid, auto_ack=False)
        r = await self.navigate_until(self.b, sid, 1)
        # Nobody acked: answered after the 1.5 s wait, with a's socket counted.
        self.assertEqual(r.json(), {"ok": True, "delivered": 1, "acked": False})
        r = await self.b.anavigate("homepage", {"sessionId": "pg_nowhere_at_all",
                                                "section": "pricing"})
        self.assertEqual((r.status, r.error_code), (404, "session_not_connected"), r)


def chat_assistant(m):
    return isinstance(m, dict) and m.get("type") == "message" and m.get("role") == "assistant"


class ChatAcrossNodesTest(ClusterCase):
    """One chat thread, a connection on each node: both see every message and event in the
    same order, and one supervisor run goes at a time for the thread across the cluster."""
    NODE_ENV = {"SWITCHBOARD_JWT_SECRET": "cluster-chat-jwt"}

    async def open(self, node, thread, user):
        ws = self.track(await node.ws("/ws/chat", threadId=thread, userId=user,
                                      token=good_jwt("cluster-chat-jwt", sub=user)))
        await recv_until(ws, lambda m: isinstance(m, dict) and m.get("type") == "history",
                         timeout=5)
        return ws

    async def collect(self, ws, n_answers, timeout_s=20):
        """Every event until n_answers assistant messages have come."""
        out, seen = [], 0
        while seen < n_answers:
            m, skipped = await recv_until(ws, chat_assistant, timeout=timeout_s)
            out += skipped + [m]
            seen += 1
        return out

    @timeout(60)
    async def test_both_nodes_see_the_thread_in_one_order(self):
        a = await self.open(self.a, "th_cluster_chat", "carol")
        b = await self.open(self.b, "th_cluster_chat", "carol")
        await asyncio.sleep(0.3)  # both subscribed to the thread's channel
        await a.send(json.dumps({"type": "message", "text": "hours on a?"}))
        await b.send(json.dumps({"type": "message", "text": "hours on b?"}))
        evs_a, evs_b = await asyncio.gather(self.collect(a, 2), self.collect(b, 2))

        def key(e):
            return (e.get("type"), e.get("role"), e.get("messageId"))
        for evs in (evs_a, evs_b):
            kinds = [e["type"] for e in evs]
            users = [e["text"] for e in evs if e.get("role") == "user"]
            self.assertEqual(sorted(users), ["hours on a?", "hours on b?"], evs)
            self.assertEqual(kinds.count("typing"), 2, evs)
            # One run at a time: a typing is always followed by its answer before the next.
            flat = [e for e in evs if e["type"] == "typing" or chat_assistant(e)]
            self.assertEqual([e["type"] == "typing" for e in flat], [True, False, True, False],
                             evs)
        # The same assistant messages, in the same order, on both nodes.
        self.assertEqual([key(e) for e in evs_a if chat_assistant(e)],
                         [key(e) for e in evs_b if chat_assistant(e)])
        # Another user cannot join carol's thread on either node.
        for n in (self.a, self.b):
            ws = await n.ws("/ws/chat", threadId="th_cluster_chat", userId="mallory",
                            token=good_jwt("cluster-chat-jwt", sub="mallory"))
            await expect_close(ws, 1008, "forbidden")


class RedisAbsentTest(SBTestCase):
    """A node whose Redis is not there at start-up runs, is not ready, and refuses new
    sessions with 503 unavailable (it never exits for that); the password of a Redis URL is
    never printed."""

    async def test_starts_unready_and_refuses(self):
        s = self.own_server({"SWITCHBOARD_REDIS_URL": "redis://:hunter2-secret@127.0.0.1:%d/3"
                                                      % free_port()})
        self.assertEqual(s.get("/readyz").status, 503)
        self.assertEqual(s.get("/healthz").status, 200)
        r = s.mint_raw({})
        self.assertEqual((r.status, r.error_code), (503, "unavailable"), r)
        self.assertNotIn("hunter2-secret", s.stderr())
        self.assertIn("redis://[password]@127.0.0.1", s.stderr())
        s.stop(expect_status=0)

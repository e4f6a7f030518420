"""HTTP basics (SPEC 4, 10, 14 "Origins"): health, readiness, metrics, errors, CORS."""
import asyncio
import http.client
import json
import time

import websockets.exceptions

from harness import SBTestCase, assert_open, metric_names

ALLOWED = "http://allowed.example"
OTHER = "http://evil.example"

SPEC10_METRICS = [
    "switchboard_sessions_active",
    "switchboard_sessions_total",
    "switchboard_ws_frames_total",
    "switchboard_audio_dropped_total",
    "switchboard_relay_latency_seconds",
    "switchboard_upstream_connect_seconds",
    "switchboard_first_audio_seconds",
    "switchboard_tool_call_seconds",
    "switchboard_mailbox_depth",
    "switchboard_actor_queue_seconds",
    "switchboard_mcp_server_up",
]


class HttpTest(SBTestCase):
    SERVER_ENV = {"SWITCHBOARD_ALLOWED_ORIGINS": ALLOWED + ",http://second.example:9000"}

    def assert_error(self, r, status, code):
        self.assertEqual(r.status, status, r)
        self.assertTrue(r.headers.get("Content-Type", "").startswith("application/json"), r.headers)
        body = r.json()
        self.assertEqual(set(body), {"error"}, body)
        self.assertEqual(body["error"]["code"], code, body)
        self.assertIsInstance(body["error"]["message"], str)
        self.assertTrue(body["error"]["message"], body)
        return body

    # ---- health, readiness, metrics ----------------------------------------------------------

    async def test_healthz_shape(self):
        r = self.server.get("/healthz")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers.get("Content-Type", "").startswith("application/json"))
        body = r.json()
        self.assertEqual(set(body), {"status", "sessions", "uptime_s"}, body)
        self.assertEqual(body["status"], "ok")
        self.assertIsInstance(body["sessions"], int)
        self.assertGreaterEqual(body["sessions"], 0)
        self.assertIsInstance(body["uptime_s"], int)
        self.assertGreaterEqual(body["uptime_s"], 0)

    async def test_readyz_200(self):
        r = self.server.get("/readyz")
        self.assertEqual(r.status, 200, r)

    async def test_metrics_names_at_startup(self):
        # A fresh server: every SPEC 10 name is present, counters and histograms are zero.
        s = self.own_server({})
        r = s.get("/metrics")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers.get("Content-Type", "").startswith("text/plain"), r.headers)
        names = metric_names(r.text)
        for name in SPEC10_METRICS:
            self.assertIn(name, names, "metric %s missing from /metrics" % name)
        m = s.metrics()
        self.assertEqual(m.get("switchboard_sessions_active"), 0.0)
        self.assertEqual(m.get("switchboard_audio_dropped_total"), 0.0)
        for result in ("completed", "rejected", "error"):
            self.assertEqual(m.get('switchboard_sessions_total{result="%s"}' % result), 0.0,
                             result)
        for d in ("in", "out"):
            for k in ("text", "binary", "audio"):
                key = 'switchboard_ws_frames_total{direction="%s",kind="%s"}' % (d, k)
                self.assertEqual(m.get(key), 0.0, key)
        for d in ("up", "down"):
            key = 'switchboard_relay_latency_seconds_count{direction="%s"}' % d
            self.assertEqual(m.get(key), 0.0, key)
        for lane in ("realtime", "tools"):
            key = 'switchboard_actor_queue_seconds_bucket{lane="%s",le="+Inf"}' % lane
            self.assertIn(key, m)
        self.assertEqual(m.get("switchboard_upstream_connect_seconds_count"), 0.0)
        self.assertEqual(m.get("switchboard_first_audio_seconds_count"), 0.0)
        s.stop()

    # ---- error shapes -------------------------------------------------------------------------

    async def test_unknown_path_404(self):
        self.assert_error(self.server.get("/no/such/thing"), 404, "not_found")
        self.assert_error(self.server.post("/api/nothing", {}), 404, "not_found")

    async def test_wrong_method_405(self):
        self.assert_error(self.server.get("/api/sessions"), 405, "method_not_allowed")
        self.assert_error(self.server.request("DELETE", "/healthz"), 405, "method_not_allowed")
        self.assert_error(self.server.request("POST", "/metrics", body=b"{}"), 405,
                          "method_not_allowed")

    async def test_body_too_large_413(self):
        # Announced with Content-Length: refused without waiting for the body.
        for path in ("/api/sessions", "/api/interact/homepage/navigate"):
            head = ("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                    "Content-Length: %d\r\n\r\n" % (path, self.server.origin[7:], 64 * 1024 + 1))
            r = self.server.raw(head.encode() + b"{" + b" " * 1000)
            self.assert_error(r, 413, "body_too_large")
        # A whole body over 64 KiB sent by an ordinary client.
        big = b'{"sessionId":"' + b"a" * (64 * 1024) + b'"}'
        r = self.server.raw(b"POST /api/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                            % len(big) + big)
        self.assert_error(r, 413, "body_too_large")
        self.assertEqual(self.server.get("/healthz").status, 200)

    async def test_body_of_exactly_64k_is_not_too_large(self):
        body = json.dumps({"pad": "x" * (64 * 1024 - 11)}).encode()
        self.assertEqual(len(body), 64 * 1024)
        r = self.server.request("POST", "/api/sessions", body=body,
                                headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 200, r)

    async def test_invalid_json_400(self):
        for raw in (b"{", b"not json", b'{"sessionId":}'):
            self.assert_error(self.server.request("POST", "/api/sessions", body=raw,
                                                  headers={"Content-Type": "application/json"}),
                              400, "invalid_json")

    # ---- CORS ---------------------------------------------------------------------------------

    async def test_cors_allowed_origin(self):
        for origin in (ALLOWED, "http://second.example:9000"):
            r = self.server.get("/healthz", headers={"Origin": origin})
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers.get("Access-Control-Allow-Origin"), origin, r.headers)
            self.assertIn("Origin", [v.strip() for v in
                                     ",".join(r.headers.get_all("Vary") or []).split(",")])
        # Error answers carry CORS headers as well (the page must be able to read them).
        r = self.server.post("/api/sessions", {"sessionId": "bad id"}, headers={"Origin": ALLOWED})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.headers.get("Access-Control-Allow-Origin"), ALLOWED, r.headers)

    async def test_cors_other_origin_gets_no_headers(self):
        r = self.server.get("/healthz", headers={"Origin": OTHER})
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.headers.get("Access-Control-Allow-Origin"), r.headers)
        r = self.server.post("/api/sessions", {}, headers={"Origin": OTHER})
        self.assertIsNone(r.headers.get("Access-Control-Allow-Origin"), r.headers)
        # No Origin at all: no CORS headers either.
        r = self.server.get("/healthz")
        self.assertIsNone(r.headers.get("Access-Control-Allow-Origin"), r.headers)

    async def test_preflight_allowed_origin_204(self):
        r = self.server.request("OPTIONS", "/api/sessions", headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, authorization"})
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.headers.get("Access-Control-Allow-Origin"), ALLOWED, r.headers)
        methods = {m.strip().upper() for m in
                   (r.headers.get("Access-Control-Allow-Methods") or "").split(",")}
        self.assertIn("POST", methods, r.headers)
        self.assertIn("GET", methods, r.headers)
        hdrs = {h.strip().lower() for h in
                (r.headers.get("Access-Control-Allow-Headers") or "").split(",")}
        self.assertIn("content-type", hdrs, r.headers)
        self.assertIn("authorization", hdrs, r.headers)
        self.assertEqual(r.body, b"")

    async def test_preflight_other_origin_403(self):
        r = self.server.request("OPTIONS", "/api/sessions", headers={
            "Origin": OTHER, "Access-Control-Request-Method": "POST"})
        self.assertEqual(r.status, 403, r)
        self.assertIsNone(r.headers.get("Access-Control-Allow-Origin"), r.headers)
        self.assertIsNone(r.headers.get("Access-Control-Allow-Methods"), r.headers)

    async def test_same_origin_is_allowed(self):
        origin = self.server.origin  # http://<Host header of the request>
        r = self.server.get("/healthz", headers={"Origin": origin})
        self.assertEqual(r.headers.get("Access-Control-Allow-Origin"), origin, r.headers)
        r = self.server.request("OPTIONS", "/api/sessions", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST"})
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.headers.get("Access-Control-Allow-Origin"), origin, r.headers)
        # localhost:PORT is a different Host, hence a different origin: not allowed here.
        other = "http://localhost:%d" % self.server.port
        r = self.server.request("OPTIONS", "/api/sessions", headers={
            "Origin": other, "Access-Control-Request-Method": "POST"})
        self.assertEqual(r.status, 403, r)
        # ... unless the request's Host says so.
        r = self.server.request("OPTIONS", "/api/sessions", headers={
            "Origin": other, "Host": "localhost:%d" % self.server.port,
            "Access-Control-Request-Method": "POST"})
        self.assertEqual(r.status, 204, r)


class AnyOriginTest(SBTestCase):
    SERVER_ENV = {"SWITCHBOARD_ALLOWED_ORIGINS": "*"}

    async def test_star_allows_any_origin(self):
        r = self.server.get("/healthz", headers={"Origin": "http://whatever.example"})
        self.assertEqual(r.headers.get("Access-Control-Allow-Origin"), "http://whatever.example")
        r = self.server.request("OPTIONS", "/api/sessions", headers={
            "Origin": "https://x.example", "Access-Control-Request-Method": "POST"})
        self.assertEqual(r.status, 204, r)


class MaxConnectionsTest(SBTestCase):
    SERVER_ENV = {"SWITCHBOARD_MAX_CONNECTIONS": "4"}

    def healthz_or_refused(self):
        try:
            return self.server.get("/healthz", timeout=2).status
        except (http.client.HTTPException, OSError):
            return "refused"

    async def test_connections_past_the_cap_are_refused(self):
        socks = [self.track(await self.server.page("maxconn_%d" % i)) for i in range(4)]
        for ws in socks:
            await assert_open(ws)
        # A fifth socket of any kind is refused.
        self.assertEqual(await asyncio.to_thread(self.healthz_or_refused), "refused")
        with self.assertRaises((websockets.exceptions.WebSocketException, OSError,
                                asyncio.TimeoutError, EOFError)):
            ws = await self.server.page("maxconn_5")
            self.track(ws)
            await assert_open(ws, timeout=1)
        for ws in socks:
            await assert_open(ws)
        # Freeing one lets a new connection in.
        await socks[0].close()
        end = time.monotonic() + 3
        while True:
            st = await asyncio.to_thread(self.healthz_or_refused)
            if st == 200 or time.monotonic() > end:
                break
            await asyncio.sleep(0.05)
        self.assertEqual(st, 200)

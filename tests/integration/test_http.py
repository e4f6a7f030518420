"""HTTP basics (SPEC 4, 10, 14 "Origins"): health, readiness, metrics, errors, CORS."""
import asyncio
import base64
import http.client
import json
import os
import socket
import time
import unittest

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


# ---- Request framing and limits (SPEC 14 "Requests") ----------------------------------------

def raw_exchange(server, data, timeout=3.0, source_ip=None, keep=False):
    """Sends data on a fresh socket and reads until the server closes it (or timeout).
    Returns (bytes read, closed_by_server)."""
    s = socket.create_connection((server.host, server.port), timeout=timeout,
                                 source_address=(source_ip, 0) if source_ip else None)
    try:
        s.sendall(data)
        buf = b""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return buf, False
            except ConnectionResetError:
                return buf, True
            if not chunk:
                return buf, True
            buf += chunk
        return buf, False
    finally:
        s.close()


def parse_responses(buf):
    """Splits a byte stream into [(status, headers dict (lower-case names), body)]."""
    out = []
    while buf:
        head, sep, rest = buf.partition(b"\r\n\r\n")
        if not sep:
            raise AssertionError("truncated response: %r" % buf[:200])
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get("content-length", "0"))
        out.append((status, hdrs, rest[:n]))
        buf = rest[n:]
    return out


def chunked(body, size=7):
    out = b""
    for i in range(0, len(body), size):
        part = body[i:i + size]
        out += b"%x\r\n" % len(part) + part + b"\r\n"
    return out + b"0\r\n\r\n"


class RequestFramingTest(SBTestCase):
    SERVER_ENV = {}

    def post_head(self, extra):
        return ("POST /api/sessions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                "Content-Type: application/json\r\n%s\r\n" % (self.server.port, extra)).encode()

    def assert_only_error(self, data, status, code):
        """data gets exactly one answer, the JSON error, and the connection is closed: whatever
        followed the bad head never runs as a request of its own."""
        buf, closed = raw_exchange(self.server, data)
        rs = parse_responses(buf)
        self.assertEqual(len(rs), 1, rs)
        st, hdrs, body = rs[0]
        self.assertEqual(st, status, rs)
        self.assertTrue(hdrs.get("content-type", "").startswith("application/json"), hdrs)
        self.assertEqual(json.loads(body)["error"]["code"], code, body)
        self.assertTrue(closed, "the connection stayed open after %d" % status)

    async def test_conflicting_content_lengths_400(self):
        smuggled = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        for cl in ("Content-Length: 2\r\nContent-Length: 50\r\n", "Content-Length: 2, 50\r\n"):
            with self.subTest(cl=cl):
                self.assert_only_error(self.post_head(cl) + b"{}" + smuggled, 400,
                                       "invalid_request")

    async def test_malformed_content_length_400(self):
        for cl in ("abc", "-1", "1x", "0x10", "+2", "2 2", "99999999999999999999999"):
            with self.subTest(cl=cl):
                self.assert_only_error(self.post_head("Content-Length: %s\r\n" % cl) + b"{}",
                                       400, "invalid_request")

    async def test_transfer_encoding_with_content_length_400(self):
        data = self.post_head("Transfer-Encoding: chunked\r\nContent-Length: 7\r\n") + \
            chunked(b"{}") + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        self.assert_only_error(data, 400, "invalid_request")

    async def test_chunked_body_is_decoded(self):
        # A chunked body read to its end frames what follows: the next request is answered.
        body = json.dumps({"sessionId": "chunked_body_1"}).encode()
        buf, _ = raw_exchange(self.server,
                              self.post_head("Transfer-Encoding: chunked\r\n") + chunked(body) +
                              b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close"
                              b"\r\n\r\n")
        rs = parse_responses(buf)
        self.assertEqual([r[0] for r in rs], [200, 200], rs)
        self.assertEqual(json.loads(rs[0][2])["sessionId"], "chunked_body_1")
        self.assertEqual(json.loads(rs[1][2])["status"], "ok")
        # Invalid JSON in chunks is invalid JSON.
        buf, _ = raw_exchange(self.server, self.post_head("Transfer-Encoding: chunked\r\n") +
                              chunked(b"{x}"), timeout=1.0)
        rs = parse_responses(buf)
        self.assertEqual(len(rs), 1, rs)
        self.assertEqual((rs[0][0], json.loads(rs[0][2])["error"]["code"]), (400, "invalid_json"))

    async def test_chunked_body_over_64k_413(self):
        body = json.dumps({"pad": "x" * (70 * 1024)}).encode()
        self.assert_only_error(self.post_head("Transfer-Encoding: chunked\r\n") +
                               chunked(body, 8192), 413, "body_too_large")

    async def test_malformed_chunks_400(self):
        for bad in (b"zz\r\n{}\r\n0\r\n\r\n", b"2\r\n{}XX0\r\n\r\n", b"-2\r\n{}\r\n0\r\n\r\n"):
            with self.subTest(bad=bad):
                self.assert_only_error(self.post_head("Transfer-Encoding: chunked\r\n") + bad,
                                       400, "invalid_request")
        self.assert_only_error(self.post_head("Transfer-Encoding: gzip\r\n") + b"{}", 400,
                               "invalid_request")

    async def test_unknown_method_is_a_json_405(self):
        for method in ("FOO", "PROPFIND", "CONNECT"):
            with self.subTest(method=method):
                target = "127.0.0.1:80" if method == "CONNECT" else "/healthz"
                self.assert_only_error(("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                                        % (method, target)).encode(), 405, "method_not_allowed")

    async def test_absolute_form_target_is_a_json_error(self):
        for target in ("http://127.0.0.1:%d/healthz" % self.server.port, "*", "healthz"):
            with self.subTest(target=target):
                self.assert_only_error(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                                        % target).encode(), 400, "invalid_request")

    def read_response(self, sock):
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            self.assertTrue(chunk, "closed before a response: %r" % buf)
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        n = int(parse_responses(head + b"\r\n\r\n")[0][1].get("content-length", "0"))
        while len(body) < n:
            body += sock.recv(65536)
        return parse_responses(head + b"\r\n\r\n" + body)[0]

    async def test_good_requests_still_keep_alive(self):
        body = b'{"sessionId":"keepalive_ok_1"}'
        s = socket.create_connection((self.server.host, self.server.port), timeout=3)
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            self.assertEqual(self.read_response(s)[0], 200)
            s.sendall(self.post_head("Content-Length: %d\r\n" % len(body)) + body)
            st, _, got = self.read_response(s)
            self.assertEqual(st, 200, got)
            self.assertEqual(json.loads(got)["sessionId"], "keepalive_ok_1")
        finally:
            s.close()

    async def test_pipelined_body_does_not_stall_the_thread(self):
        # A request with a body pipelined behind another used to spin the network thread.
        body = b'{"sessionId":"pipelined_1"}'
        one = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        two = self.post_head("Content-Length: %d\r\n" % len(body)) + body
        buf, _ = raw_exchange(self.server, one + two, timeout=1.0)
        self.assertEqual(parse_responses(buf)[0][0], 200, buf)
        self.assertEqual(self.server.get("/healthz", timeout=2).status, 200)


class ConnectionsPerIpTest(SBTestCase):
    SERVER_ENV = {"SWITCHBOARD_CONNECTIONS_PER_IP": "3"}

    def healthz(self, source_ip):
        try:
            return self.server.get("/healthz", timeout=2, source_ip=source_ip).status
        except (http.client.HTTPException, OSError):
            return "refused"

    async def test_one_address_cannot_take_more(self):
        held = [socket.create_connection((self.server.host, self.server.port),
                                         source_address=("127.0.0.5", 0)) for _ in range(3)]
        try:
            time.sleep(0.2)
            self.assertEqual(self.healthz("127.0.0.5"), "refused")
            self.assertEqual(self.healthz("127.0.0.6"), 200)  # another address is not held up
            held.pop().close()
            end = time.monotonic() + 3
            while self.healthz("127.0.0.5") != 200:
                self.assertLess(time.monotonic(), end, "a freed slot was not given back")
                time.sleep(0.05)
        finally:
            for s in held:
                s.close()


class ConnectionsPerForwardedIpTest(SBTestCase):
    SERVER_ENV = {"SWITCHBOARD_CONNECTIONS_PER_IP": "2",
                  "SWITCHBOARD_TRUSTED_PROXIES": "127.0.0.1/32"}

    def hold(self, xff):
        """A proxied request whose body never comes: its socket stays open."""
        s = socket.create_connection((self.server.host, self.server.port),
                                     source_address=("127.0.0.1", 0))
        s.sendall(("POST /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-For: %s\r\n"
                   "Content-Length: 10\r\n\r\n{" % xff).encode())
        return s

    def healthz(self, xff):
        try:
            return self.server.get("/healthz", timeout=2,
                                   headers={"X-Forwarded-For": xff}).status
        except (http.client.HTTPException, OSError):
            return "refused"

    async def test_counted_by_forwarded_address(self):
        # The proxy's own address is not capped: many clients share it.
        held = [self.hold("203.0.113.9") for _ in range(2)] + [self.hold("203.0.113.10")]
        try:
            time.sleep(0.2)
            self.assertNotEqual(self.healthz("203.0.113.9"), 200)
            self.assertEqual(self.healthz("203.0.113.11"), 200)
        finally:
            for s in held:
                s.close()


# ---- Host and forwarded addresses (SPEC 14 "Origins", "Order of checks") ---------------------

class HostTrustTest(SBTestCase):
    """No API secret: loopback-only API mode, which also needs a loopback Host."""
    SERVER_ENV = {}

    def get_with_host(self, path, host, origin=None):
        h = "GET %s HTTP/1.1\r\nHost: %s\r\n" % (path, host)
        if origin:
            h += "Origin: %s\r\n" % origin
        buf, _ = raw_exchange(self.server, (h + "Connection: close\r\n\r\n").encode())
        return parse_responses(buf)[0]

    async def test_rebinding_host_is_not_same_origin(self):
        host = "evil.example:%d" % self.server.port
        st, hdrs, body = self.get_with_host("/api/calls", host, "http://" + host)
        self.assertEqual(st, 401, body)
        self.assertNotIn("access-control-allow-origin", hdrs)
        st, hdrs, _ = self.get_with_host("/healthz", host, "http://" + host)
        self.assertNotIn("access-control-allow-origin", hdrs)

    async def test_rebinding_host_cannot_open_a_websocket(self):
        host = "evil.example:%d" % self.server.port
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET /ws/page?sessionId=rebind_test_1&page=homepage HTTP/1.1\r\nHost: %s\r\n"
               "Origin: http://%s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (host, host, key))
        buf, _ = raw_exchange(self.server, req.encode(), timeout=2.0)
        head, _, frames = buf.partition(b"\r\n\r\n")
        self.assertIn(b" 101 ", head.split(b"\r\n")[0])
        # The first frame is the close: opcode 8, code 1008 "forbidden origin".
        self.assertGreaterEqual(len(frames), 4, buf)
        self.assertEqual(frames[0] & 0x0f, 8, frames)
        self.assertEqual(int.from_bytes(frames[2:4], "big"), 1008, frames)
        self.assertIn(b"forbidden origin", frames)

    async def test_our_hosts_stay_trusted(self):
        for host in ("127.0.0.1:%d" % self.server.port, "localhost:%d" % self.server.port,
                     "localhost", "[::1]:%d" % self.server.port):
            with self.subTest(host=host):
                st, hdrs, body = self.get_with_host("/api/calls", host, "http://" + host)
                self.assertEqual(st, 200, body)
                self.assertEqual(hdrs.get("access-control-allow-origin"), "http://" + host)

    async def test_loopback_api_needs_a_loopback_host(self):
        st, _, body = self.get_with_host("/api/calls", "gw.example.com")
        self.assertEqual(st, 401, body)
        self.assertEqual(json.loads(body)["error"]["code"], "unauthorized")


class ForwardedForTest(SBTestCase):
    SERVER_ENV = {"SWITCHBOARD_TRUSTED_PROXIES": "127.0.0.1/32"}

    async def test_unparsable_forwarded_address_is_not_loopback(self):
        for xff in ("garbage", "203.0.113.7, not-an-ip", "127.0.0.1, 1.2.3", "::1]", ","):
            with self.subTest(xff=xff):
                r = self.server.get("/api/calls", headers={"X-Forwarded-For": xff})
                self.assertEqual(r.status, 401, r)
        # A chain of trusted proxies alone still names a loopback client.
        r = self.server.get("/api/calls", headers={"X-Forwarded-For": "127.0.0.1"})
        self.assertEqual(r.status, 200, r)


class TlsServeTest(SBTestCase):
    """SWITCHBOARD_TLS_CERT/KEY: the service speaks HTTPS and WSS itself (SPEC 2.1), with the
    same JSON errors and WebSocket rules as in plain text."""

    async def test_https_and_wss(self):
        import ssl
        import subprocess
        import tempfile
        import websockets
        with tempfile.TemporaryDirectory() as d:
            cert, key = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost"],
                           check=True, capture_output=True)
            s = self.own_server({"SWITCHBOARD_TLS_CERT": cert, "SWITCHBOARD_TLS_KEY": key})
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            for method, path, status in (("GET", "/healthz", 200), ("FOO", "/healthz", 405),
                                         ("GET", "/nope", 404)):
                c = http.client.HTTPSConnection(s.host, s.port, context=ctx, timeout=5)
                c.request(method, path)
                r = c.getresponse()
                body = json.loads(r.read())
                self.assertEqual(r.status, status, body)
                if status != 200:
                    self.assertIn("code", body["error"])
                c.close()
            url = "wss://%s:%d/ws/page?sessionId=tls_page_01" % (s.host, s.port)
            async with websockets.connect(url, ssl=ctx) as ws:
                await ws.send('{"type":"ping"}')
                self.assertEqual(json.loads(await asyncio.wait_for(ws.recv(), 5)),
                                 {"type": "pong"})

"""Frame-level rules for clients on /ws and /ws/page (RFC 6455 5, 7.4; SPEC 5, 14), with frames
no WebSocket library sends: empty messages and fragments, bad close frames, oversized control
frames, reserved bits and opcodes."""
import json
import struct
import unittest

from harness import SBTestCase
from rawws import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, RawWS


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


class RawClient:
    """Opens raw sockets on the class server: page (no token) or voice (live, after
    session.ready)."""

    def raw(self, kind):
        if kind == "page":
            self._n = getattr(self, "_n", 0) + 1
            ws = RawWS.connect(self.server, "/ws/page", sessionId="page_raw_%d_%s" % (
                self._n, self.id().rsplit(".", 1)[-1][:24]), page="homepage")
        else:
            tok = self.server.mint()
            ws = RawWS.connect(self.server, "/ws", sessionId=tok["sessionId"],
                               token=tok["token"])
            while True:
                msg = ws.recv_data(timeout=5.0)
                if isinstance(msg, str) and json.loads(msg).get("type") == "session.ready":
                    break
        self.addCleanup(ws.close)
        return ws

    def events_until_pong(self, ws, timeout=3.0):
        """Sends {"type":"ping"} and returns the events that came before its pong."""
        ws.send(OP_TEXT, '{"type":"ping"}')
        got = []
        while True:
            msg = ws.recv_data(timeout)
            if isinstance(msg, bytes):
                continue
            ev = json.loads(msg)
            if ev == {"type": "pong"}:
                return got
            got.append(ev)

    def assert_close(self, ws, code, what):
        got, reason = ws.recv_close()
        if got is None:
            self.fail("%s: the server dropped the connection without a close frame "
                      "(expected %d)" % (what, code))
        self.assertEqual(got, code, "%s: closed %s %r, expected %d" % (what, got, reason, code))
        return reason


class EmptyMessagesTest(RawClient, SBTestCase):
    """An empty message or an empty first fragment as the very first frame of a connection
    (its reassembly buffer not yet allocated) is an ordinary message."""
    SERVER_ENV = {}

    def test_empty_text_first(self):
        for kind in ("page", "voice"):
            with self.subTest(kind=kind):
                ws = self.raw(kind)
                ws.send(OP_TEXT, b"")
                errors = [e["error"]["code"] for e in self.events_until_pong(ws)
                          if e.get("type") == "error"]
                self.assertEqual(errors, ["invalid_json"])

    def test_empty_binary_first(self):
        # /ws/page takes no binary frames (unsupported_event); /ws takes audio, and no audio
        # is no error.
        for kind, want in (("page", ["unsupported_event"]), ("voice", [])):
            with self.subTest(kind=kind):
                ws = self.raw(kind)
                ws.send(OP_BINARY, b"")
                errors = [e["error"]["code"] for e in self.events_until_pong(ws)
                          if e.get("type") == "error"]
                self.assertEqual(errors, want)

    def test_empty_first_fragment(self):
        for kind in ("page", "voice"):
            with self.subTest(kind=kind):
                ws = self.raw(kind)
                ws.send(OP_TEXT, b"", fin=False)
                ws.send(OP_CONT, b"", fin=False)
                ws.send(OP_CONT, b'{"type":"ping"}')
                self.assertEqual(self.events_until_pong(ws), [])  # that pong, then this one
                ws.send(OP_BINARY, b"", fin=False)
                ws.send(OP_CONT, b"")
                self.events_until_pong(ws)
        self.assertEqual(self.server.get("/healthz").status, 200)


class CloseFramesTest(RawClient, SBTestCase):
    SERVER_ENV = {}

    def test_valid_close_is_echoed(self):
        for code, reason in ((1000, b""), (1001, b"bye"), (3000, b""), (4999, "adi\u00f3s".encode())):
            with self.subTest(code=code):
                ws = self.raw("page")
                ws.send(OP_CLOSE, close_payload(code, reason))
                self.assertEqual(self.assert_close(ws, code, "close %d" % code), reason)

    def test_codes_a_peer_may_not_send_close_1002(self):
        for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535):
            with self.subTest(code=code):
                ws = self.raw("page")
                ws.send(OP_CLOSE, close_payload(code))
                self.assert_close(ws, 1002, "close code %d" % code)

    def test_one_byte_close_payload_closes_1002(self):
        ws = self.raw("page")
        ws.send(OP_CLOSE, b"\x03")
        self.assert_close(ws, 1002, "a 1-byte close payload")

    def test_non_utf8_close_reason_closes_1007(self):
        for kind in ("page", "voice"):
            for reason in (b"\xff", b"ok\xc3", b"\xed\xa0\x80"):  # bad byte, cut, surrogate
                with self.subTest(kind=kind, reason=reason):
                    ws = self.raw(kind)
                    ws.send(OP_CLOSE, close_payload(1000, reason))
                    self.assert_close(ws, 1007, "close reason %r" % reason)

    def test_bad_code_on_voice_closes_1002(self):
        ws = self.raw("voice")
        ws.send(OP_CLOSE, close_payload(5000))
        self.assert_close(ws, 1002, "close code 5000 on /ws")


class ControlFramesTest(RawClient, SBTestCase):
    SERVER_ENV = {}

    def test_ping_of_125_bytes_is_answered(self):
        ws = self.raw("page")
        ws.send(OP_PING, b"p" * 125)
        op, payload = ws.recv_frame()
        self.assertEqual((op, payload), (OP_PONG, b"p" * 125))
        self.events_until_pong(ws)

    def test_control_frames_over_125_bytes_close_1002(self):
        for kind in ("page", "voice"):
            for op, n in ((OP_PING, 126), (OP_PING, 70000), (OP_CLOSE, 200), (OP_PONG, 126)):
                with self.subTest(kind=kind, op=op, n=n):
                    ws = self.raw(kind)
                    payload = close_payload(1000, b"x" * (n - 2)) if op == OP_CLOSE else b"p" * n
                    ws.send(op, payload)
                    self.assert_close(ws, 1002, "a %d-byte control frame (opcode %d)" % (n, op))

    def test_64_bit_length_with_top_bit_closes_1002(self):
        ws = self.raw("page")
        ws.send_raw(bytes([0x82, 0xFF]) + b"\x80" + b"\x00" * 7 + b"\x00\x00\x00\x00")
        self.assert_close(ws, 1002, "a 64-bit length with its top bit set")

    def test_rfc6455_violations_close_1002(self):
        cases = [
            ("RSV1 set", dict(op=OP_TEXT, payload=b"{}", rsv=4)),
            ("RSV3 set", dict(op=OP_BINARY, payload=b"x", rsv=1)),
            ("reserved opcode 3", dict(op=3, payload=b"x")),
            ("reserved opcode 0xB", dict(op=0xB, payload=b"")),
            ("fragmented ping", dict(op=OP_PING, payload=b"x", fin=False)),
            ("continuation without a message", dict(op=OP_CONT, payload=b"x")),
        ]
        for what, kw in cases:
            with self.subTest(what=what):
                ws = self.raw("page")
                ws.send(kw.pop("op"), kw.pop("payload"), **kw)
                self.assert_close(ws, 1002, what)

    def test_text_message_inside_a_fragmented_one_closes_1002(self):
        ws = self.raw("page")
        ws.send(OP_TEXT, b'{"type":', fin=False)
        ws.send(OP_TEXT, b'"ping"}')
        self.assert_close(ws, 1002, "a new message before the last one ended")

    def test_unmasked_client_frame_closes_1002(self):
        ws = self.raw("page")
        ws.send(OP_TEXT, b'{"type":"ping"}', mask=False)
        op, payload = ws.recv_frame()
        self.assertEqual((op, payload[:2]), (OP_CLOSE, close_payload(1002)),
                         "an unmasked frame was answered %r" % payload)

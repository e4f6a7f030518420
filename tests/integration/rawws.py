"""A WebSocket client on a plain blocking socket, for frames no library will send (RFC 6455 5).

It can send any frame: unmasked, with reserved bits or opcodes, control frames over 125 bytes,
close frames with any payload, empty frames and fragments. It reads the server's frames and its
close, and says whether the server closed the TCP connection without a close frame.

    ws = RawWS.connect(server, "/ws/page", sessionId="page_raw_1")
    ws.send(OP_TEXT, b"")
    op, payload = ws.recv_frame()
    code, reason = ws.recv_close()        # (None, None): the socket ended without a close frame
"""
import base64
import os
import socket
import struct
import time
import urllib.parse

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA


class Dropped(Exception):
    """The server ended the TCP connection (EOF or reset) without a close frame."""


def frame(op, payload=b"", fin=True, mask=True, rsv=0, key=None):
    """Bytes of one frame; the length is encoded in the shortest form RFC 6455 allows."""
    if isinstance(payload, str):
        payload = payload.encode()
    b0 = (0x80 if fin else 0) | (rsv << 4) | op
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, m | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if not mask:
        return head + payload
    key = key if key is not None else os.urandom(4)
    body = bytes(c ^ key[i & 3] for i, c in enumerate(payload)) if n < 4096 else \
        _mask_fast(payload, key)
    return head + key + body


def _mask_fast(payload, key):
    n = len(payload)
    k = int.from_bytes((key * ((n + 3) // 4))[:n], "big")
    return (int.from_bytes(payload, "big") ^ k).to_bytes(n, "big")


class RawWS:
    def __init__(self, sock, leftover=b""):
        self.sock = sock
        self.buf = leftover

    @classmethod
    def connect(cls, server, path, rcvbuf=None, timeout=5.0, **query):
        """Upgrades a new connection to server (a harness.Server) at path?query. rcvbuf sets
        SO_RCVBUF before connecting, which also bounds the TCP window the client offers."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(timeout)
        s.connect((server.host, server.port))
        q = urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s%s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
               % (path, "?" + q if q else "", server.host, server.port, key))
        s.sendall(req.encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                raise AssertionError("no upgrade response: %r" % buf[:200])
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise AssertionError("upgrade refused: %r" % head[:200])
        return cls(s, rest)

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, op, payload=b"", **kw):
        self.sock.sendall(frame(op, payload, **kw))

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame from the server in time")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError("no frame from the server in time") from None
            except (ConnectionResetError, BrokenPipeError):
                raise Dropped("connection reset") from None
            if not chunk:
                raise Dropped("EOF")
            self.buf += chunk

    def recv_frame(self, timeout=3.0):
        """The next frame as (opcode, payload); raises Dropped or TimeoutError."""
        deadline = time.monotonic() + timeout
        self._fill(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        n, pos = b1 & 0x7F, 2
        if n == 126:
            self._fill(4, deadline)
            n, pos = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._fill(10, deadline)
            n, pos = struct.unpack("!Q", self.buf[2:10])[0], 10
        if b1 & 0x80:
            raise AssertionError("the server sent a masked frame")
        self._fill(pos + n, deadline)
        payload = self.buf[pos:pos + n]
        self.buf = self.buf[pos + n:]
        return b0 & 0x0F, payload

    def recv_close(self, timeout=3.0):
        """Skips data frames until the server's close; returns (code, reason bytes), or
        (None, None) when the TCP connection ended without a close frame."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                op, payload = self.recv_frame(max(0.0, deadline - time.monotonic()))
                if op == OP_CLOSE:
                    if len(payload) < 2:
                        return 1005, b""
                    return struct.unpack("!H", payload[:2])[0], payload[2:]
        except Dropped:
            return None, None

    def recv_data(self, timeout=3.0):
        """The next text (str) or binary (bytes) message, answering nothing; pings are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            op, payload = self.recv_frame(max(0.0, deadline - time.monotonic()))
            if op == OP_TEXT:
                return payload.decode()
            if op == OP_BINARY:
                return payload
            if op == OP_CLOSE:
                raise AssertionError("closed: %r" % payload)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

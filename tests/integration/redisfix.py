"""A real Debian redis-server on a free loopback port, for the cluster tests (SPEC 13).

Nothing is persisted (no RDB, no AOF): a restart is an empty Redis, the hardest case for the
nodes, which must write their registries again."""
import os
import shutil
import socket
import subprocess
import tempfile
import time

from harness import ServerError, free_port

REDIS_SERVER = "/usr/bin/redis-server"
START_S = 10


class Redis:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sbredis-")
        self.port = None
        self.proc = None
        self.log = os.path.join(self.dir, "redis.log")

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def start(self, port=None):
        """Starts redis-server (on port, else a free one) and waits until it answers PING."""
        for _ in range(5):
            self.port = port or free_port()
            self.proc = subprocess.Popen(
                [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", self.dir, "--logfile", self.log,
                 "--protected-mode", "no"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + START_S
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    if self.cmd("PING") == "PONG":
                        return self
                except OSError:
                    pass
                time.sleep(0.02)
            self.stop()
            if port:
                break
        raise ServerError("redis-server did not start: %s" % self.tail())

    def tail(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return "(no log)"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, True)

    def cmd(self, *args):
        """One command over RESP; returns the reply (str, int, list or None)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            out = b"*%d\r\n" % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
            f = s.makefile("rb")
            return _read(f)


def _read(f):
    line = f.readline()
    if not line:
        raise OSError("redis closed the connection")
    t, rest = line[:1], line[1:-2]
    if t == b"+":
        return rest.decode()
    if t == b"-":
        raise RuntimeError(rest.decode())
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode(errors="replace")
    if t == b"*":
        n = int(rest)
        return None if n < 0 else [_read(f) for _ in range(n)]
    raise OSError("bad reply %r" % line)

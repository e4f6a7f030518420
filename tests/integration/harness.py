"""Black-box harness for the switchboard integration tests (SPEC 2.1, 4, 5, 10, 14).

Only Debian's python3 standard library and python3-websockets (10.4) are used.

- Server: starts $SWITCHBOARD_BIN with an environment on port 0, parses the port from the
  `listening on http://HOST:PORT/` line on stderr (in json format, the `listening` object's
  url), captured to a file in a temp dir, stops it with SIGTERM and checks the exit status.
- run_expect_exit(): runs the binary and expects it to exit by itself (configuration errors).
- HTTP helpers returning Response(status, headers, body); token minting; WebSocket helpers for
  /ws and /ws/page; close assertions; polling with deadlines.
- SBTestCase: IsolatedAsyncioTestCase with a per-test timeout (TEST_TIMEOUT seconds) and an
  optional class-wide server (SERVER_ENV).
"""
import asyncio
import atexit
import base64
import functools
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.parse

import websockets
import websockets.exceptions

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

DEFAULT_TEST_TIMEOUT = 20.0
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0

# Values that let a shared server take many tests without hitting limits they do not test.
RELAXED_ENV = {
    "SWITCHBOARD_SESSIONS_PER_MIN": "1000000",
    "SWITCHBOARD_SESSIONS_PER_IP": "1000",
    "SWITCHBOARD_MAX_SESSIONS": "1000",
    "SWITCHBOARD_CHAT_RUNS_PER_MIN": "1000000",
    "SWITCHBOARD_CONNECTIONS_PER_IP": "100000",
}

HOMEPAGE_SECTIONS = ["hero", "services", "case-studies", "pricing", "contact"]

TOKEN_RE = re.compile(r"^ek_[0-9a-f]{64}$")
ANON_USER_RE = re.compile(r"^anon_[0-9a-f]{16}$")
USER_KEY_RE = re.compile(r"^anon_[0-9a-f]{16}\.[0-9a-f]{64}$")
SESSION_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")

_live_processes = set()


def _kill_leftovers():
    if _shared_sim is not None:
        _shared_sim.stop()
    if _shared_pg is not None:
        _shared_pg.close()
    for p in list(_live_processes):
        if p.poll() is None:
            try:
                p.kill()
                p.wait(5)
            except Exception:
                pass


atexit.register(_kill_leftovers)


def binary_path():
    b = os.environ.get("SWITCHBOARD_BIN", "build/bin/switchboard")
    if not os.path.isabs(b):
        b = os.path.join(REPO, b)
    return b


def _program_path(env_var, name):
    """Program `name` next to the service binary unless env_var says otherwise."""
    b = os.environ.get(env_var) or os.path.join(os.path.dirname(binary_path()), name)
    if not os.path.isabs(b):
        b = os.path.join(REPO, b)
    return b


def sim_path():
    """switchboard-sim next to the service binary unless SWITCHBOARD_SIM_BIN says otherwise."""
    return _program_path("SWITCHBOARD_SIM_BIN", "switchboard-sim")


def bench_path():
    """switchboard-bench next to the service binary unless SWITCHBOARD_BENCH_BIN says
    otherwise."""
    return _program_path("SWITCHBOARD_BENCH_BIN", "switchboard-bench")


def onboard_path():
    """switchboard-onboard next to the service binary unless SWITCHBOARD_ONBOARD_BIN says
    otherwise."""
    return _program_path("SWITCHBOARD_ONBOARD_BIN", "switchboard-onboard")


class Sim:
    """One switchboard-sim process (echo mode unless told otherwise)."""

    def __init__(self, *args):
        self.args = list(args) or ["--mode", "echo"]
        self.proc = None
        self.port = None
        self.log = None

    def start(self):
        self.log = tempfile.NamedTemporaryFile(prefix="sbsim-", suffix=".log", delete=False)
        self.proc = subprocess.Popen([sim_path(), "--port", "0", "--quiet"] + self.args,
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        _live_processes.add(self.proc)
        pat = re.compile(r"listening on http://[^:]+:(\d+)/")
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            with open(self.log.name, errors="replace") as f:
                m = pat.search(f.read())
            if m:
                self.port = int(m.group(1))
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.01)
        raise ServerError("switchboard-sim did not start: %s" % open(self.log.name).read()[-2000:])

    @property
    def realtime_url(self):
        return "ws://127.0.0.1:%d/v1/realtime" % self.port

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def env(self):
        return {"OPENAI_API_KEY": "sk-sim-test", "SWITCHBOARD_REALTIME_URL": self.realtime_url,
                "SWITCHBOARD_OPENAI_BASE_URL": "http://127.0.0.1:%d/v1" % self.port}

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.log is not None:
            self.log.close()
            if os.environ.get("SWITCHBOARD_KEEP_TMP") != "1":
                try:
                    os.unlink(self.log.name)
                except OSError:
                    pass
            self.log = None


_shared_sim = None


def shared_sim():
    """The echo-mode simulator every server uses as its upstream unless a test says otherwise."""
    global _shared_sim
    if _shared_sim is None or _shared_sim.proc.poll() is not None:
        _shared_sim = Sim().start()
    return _shared_sim


_shared_pg = None


def pg_mode():
    """SWITCHBOARD_TEST_PG=1: every server keeps its records in PostgreSQL (SPEC 13) instead of
    SQLite, each in a database of its own named after its SWITCHBOARD_DB path (a server started
    again with the same path finds its data)."""
    return os.environ.get("SWITCHBOARD_TEST_PG") == "1"


def pg_database_url(db_path):
    """The URL of the test database that stands for the SQLite file db_path (made on first use)."""
    global _shared_pg
    import hashlib
    from pgfix import Postgres
    if _shared_pg is None or _shared_pg.proc is None or _shared_pg.proc.poll() is not None:
        _shared_pg = Postgres().start()
    name = "t_" + hashlib.sha1(db_path.encode()).hexdigest()[:20]
    if _shared_pg._psql("postgres", "SELECT 1 FROM pg_database WHERE datname = '%s'"
                        % name).stdout.strip() != "1":
        _shared_pg._psql("postgres", "CREATE DATABASE %s" % name)
    return _shared_pg.url.rsplit("/", 1)[0] + "/" + name


def db_rows(db_path, sql):
    """The rows of a SELECT as dicts (column: value), from the server's SQLite file db_path, or in
    pg_mode() from the PostgreSQL database that stands for it (the same tables and columns)."""
    if pg_mode():
        url = pg_database_url(db_path)
        out = subprocess.run(["psql", url, "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c",
                              "SELECT coalesce(json_agg(t), '[]') FROM (%s) t" % sql],
                             capture_output=True, text=True, timeout=30, check=True).stdout
        return json.loads(out)
    import sqlite3
    con = sqlite3.connect(db_path)
    try:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute(sql)]
    finally:
        con.close()


def free_port():
    """A loopback port that is free now (for a server the test starts on it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(server, deadline_s=10):
    """Until server's /readyz answers 200 (a cluster node has reached Redis and PostgreSQL)."""
    deadline = time.monotonic() + deadline_s
    while server.get("/readyz").status != 200:
        if time.monotonic() > deadline:
            raise AssertionError("%s never ready: %s" % (server.name, server.stderr_tail(2000)))
        time.sleep(0.05)


def stop_servers(servers):
    """Stops each running server, expecting exit status 0, and removes its files; every one is
    cleaned up even when another fails."""
    for s in servers:
        try:
            if s.running():
                s.stop(expect_status=0)
        finally:
            s.cleanup()


def sqlite_only(why):
    """Skips a test in pg_mode(): it writes or inspects the SQLite file itself (why)."""
    return unittest.skipIf(pg_mode(), "reads or writes the SQLite file: " + why)


def base_env(extra=None):
    """A clean environment: nothing from the caller's SWITCHBOARD_*/OPENAI_* leaks in."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SWITCHBOARD_") and k != "OPENAI_API_KEY"}
    env["SWITCHBOARD_PORT"] = "0"
    if extra:
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = str(v)
    return env


_LISTENING_TEXT = re.compile(r"listening on https?://([^/\s]+):(\d+)/")
_LISTENING_URL = re.compile(r"https?://([^/\s]+):(\d+)/$")


def listening_address(output):
    """(host, port) from the service's start-up output, or None before it listens: the
    `listening on http://HOST:PORT/` line of the text format, or in the json format the log
    object {"event":"listening","url":"http://HOST:PORT/",...}."""
    m = _LISTENING_TEXT.search(output)
    if m:
        return m.group(1), int(m.group(2))
    for line in output.splitlines():
        if not line.startswith("{") or '"listening"' not in line:
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue  # a line still being written
        if isinstance(obj, dict) and obj.get("event") == "listening":
            m = _LISTENING_URL.match(str(obj.get("url", "")))
            if m:
                return m.group(1), int(m.group(2))
    return None


class ServerError(AssertionError):
    pass


class Server:
    """One switchboard process. Use start()/stop() or `with Server(env) as s:`."""

    def __init__(self, env=None, name="switchboard"):
        self.extra_env = dict(env or {})
        self.name = name
        self.proc = None
        self.port = None
        self.host = "127.0.0.1"
        self.tmpdir = None
        self.stderr_path = None
        self._stderr_file = None
        self.exit_status = None

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self):
        self.tmpdir = tempfile.mkdtemp(prefix="sbtest-")
        env = base_env({"SWITCHBOARD_DB": os.path.join(self.tmpdir, "var", "switchboard.db")})
        env.update(shared_sim().env())
        env.update({k: str(v) for k, v in self.extra_env.items() if v is not None})
        for k, v in self.extra_env.items():
            if v is None:
                env.pop(k, None)
        pg_wait = pg_mode() and "SWITCHBOARD_DATABASE_URL" not in env
        if pg_wait:
            env["SWITCHBOARD_DATABASE_URL"] = pg_database_url(env["SWITCHBOARD_DB"])
        self.stderr_path = os.path.join(self.tmpdir, "stderr.log")
        self._stderr_file = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([binary_path()], env=env, cwd=self.tmpdir,
                                     stdin=subprocess.DEVNULL, stdout=self._stderr_file,
                                     stderr=self._stderr_file)
        _live_processes.add(self.proc)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            where = listening_address(self.stderr())
            if where:
                self.host, self.port = where
                if self.port == 0:
                    raise ServerError("the server printed port 0")
                if pg_wait:
                    self._wait_pg_ready()
                return self
            if self.proc.poll() is not None:
                raise ServerError("%s exited with %s before listening; stderr:\n%s"
                                  % (self.name, self.proc.returncode, self.stderr_tail(4000)))
            time.sleep(0.01)
        self.kill()
        raise ServerError("%s did not print 'listening on' within %.0fs; stderr:\n%s"
                          % (self.name, START_TIMEOUT, self.stderr_tail(4000)))

    def _wait_pg_ready(self):
        """In pg_mode(): until the server has reached its database (its schema applied)."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                if self.get("/readyz").status == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                return
            time.sleep(0.02)
        raise ServerError("%s never reached PostgreSQL; stderr:\n%s"
                          % (self.name, self.stderr_tail(4000)))

    def stderr(self):
        if not self.stderr_path:
            return ""
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stderr_tail(self, n):
        """The last n characters of stderr, or a sanitizer's report from its start."""
        text = self.stderr()
        for mark in ("WARNING: ThreadSanitizer", "ERROR: AddressSanitizer",
                     "ERROR: LeakSanitizer", "runtime error:"):
            i = text.find(mark)
            if i >= 0:
                return text[max(0, i - 200):i + 12000]
        return text[-n:]

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=STOP_TIMEOUT):
        """Waits for the process to exit; returns (status, seconds waited)."""
        t0 = time.monotonic()
        try:
            self.exit_status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise ServerError("%s did not exit within %.0fs; stderr tail:\n%s"
                              % (self.name, timeout, self.stderr_tail(3000)))
        finally:
            if self.proc.poll() is not None:
                _live_processes.discard(self.proc)
        return self.exit_status, time.monotonic() - t0

    def stop(self, expect_status=0, timeout=STOP_TIMEOUT):
        """SIGTERM, wait, and check the exit status (None: do not check)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        status, _ = self.wait_exit(timeout)
        self._close_files()
        if expect_status is not None and status != expect_status:
            raise ServerError("%s exited with %s, expected %s; stderr tail:\n%s"
                              % (self.name, status, expect_status, self.stderr_tail(3000)))
        return status

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc is not None:
            _live_processes.discard(self.proc)
        self._close_files()

    def cleanup(self):
        self.kill()
        if self.tmpdir and os.environ.get("SWITCHBOARD_KEEP_TMP") != "1":
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def _close_files(self):
        if self._stderr_file:
            self._stderr_file.close()
            self._stderr_file = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        try:
            if exc[0] is None:
                self.stop()
        finally:
            self.cleanup()

    # ---- URLs ----------------------------------------------------------------------------------

    @property
    def origin(self):
        """The server's own origin (scheme + Host), always allowed (SPEC 14)."""
        return "http://%s:%d" % (self.host, self.port)

    def url(self, path):
        return self.origin + path

    def ws_url(self, path, **query):
        q = urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        return "ws://%s:%d%s%s" % (self.host, self.port, path, "?" + q if q else "")

    # ---- HTTP ----------------------------------------------------------------------------------

    def request(self, method, path, body=None, headers=None, json_body=None, source_ip=None,
                timeout=10.0):
        """One HTTP request on a fresh connection. body: bytes/str; json_body: any JSON value."""
        hdrs = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode()
        src = (source_ip, 0) if source_ip else None
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout,
                                          source_address=src)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            data = r.read()
            return Response(r.status, r.headers, data)
        finally:
            conn.close()

    def raw(self, data, timeout=5.0, source_ip=None):
        """Sends raw bytes on a fresh TCP connection and reads one response (until the server
        closes or Content-Length bytes of body have arrived). Returns a Response."""
        s = socket.create_connection((self.host, self.port), timeout=timeout,
                                     source_address=(source_ip, 0) if source_ip else None)
        try:
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may answer and close before reading everything
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            head, _, body = buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            if not lines or not lines[0].startswith("HTTP/1."):
                raise AssertionError("not an HTTP response: %r" % buf[:200])
            status = int(lines[0].split()[1])
            msg = http.client.HTTPMessage()
            for line in lines[1:]:
                k, _, v = line.partition(":")
                msg[k.strip()] = v.strip()
            n = int(msg.get("Content-Length", "0"))
            while len(body) < n:
                chunk = s.recv(65536)
                if not chunk:
                    break
                body += chunk
            return Response(status, msg, body)
        finally:
            s.close()

    async def arequest(self, *args, **kwargs):
        return await asyncio.to_thread(self.request, *args, **kwargs)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, json_body=None, **kw):
        return self.request("POST", path, json_body=json_body, **kw)

    def mint_raw(self, body=None, headers=None, source_ip=None):
        if body is None:
            return self.request("POST", "/api/sessions", headers=headers, source_ip=source_ip)
        return self.post("/api/sessions", json_body=body, headers=headers, source_ip=source_ip)

    def mint(self, session_id=None, headers=None, source_ip=None, **extra):
        """POST /api/sessions and return its JSON (asserting 200)."""
        body = dict(extra)
        if session_id is not None:
            body["sessionId"] = session_id
        r = self.mint_raw(body, headers=headers, source_ip=source_ip)
        if r.status != 200:
            raise AssertionError("mint failed: %s %s" % (r.status, r.text))
        return r.json()

    def navigate(self, page, body, headers=None, raw=None, source_ip=None):
        path = "/api/interact/%s/navigate" % page
        if raw is not None:
            return self.request("POST", path, body=raw, headers=headers, source_ip=source_ip)
        return self.post(path, json_body=body, headers=headers, source_ip=source_ip)

    async def anavigate(self, *args, **kwargs):
        return await asyncio.to_thread(self.navigate, *args, **kwargs)

    async def navigate_when_connected(self, page, body, headers=None, deadline_s=3.0):
        """Navigate, retrying while the router has not yet seen the connection (the WebSocket
        open and the HTTP request may reach it on different threads)."""
        end = time.monotonic() + deadline_s
        while True:
            r = await self.anavigate(page, body, headers=headers)
            if not (r.status == 404 and r.error_code == "session_not_connected") \
                    or time.monotonic() > end:
                return r
            await asyncio.sleep(0.02)

    def metrics(self):
        r = self.get("/metrics")
        assert r.status == 200, r
        return parse_metrics(r.text)

    # ---- WebSockets ----------------------------------------------------------------------------

    async def ws(self, path, origin=None, extra_headers=None, local_ip=None, **query):
        kwargs = dict(origin=origin, extra_headers=extra_headers, max_size=None,
                      compression=None, ping_interval=None, open_timeout=5, close_timeout=2)
        if local_ip:
            kwargs["local_addr"] = (local_ip, 0)
        return await websockets.connect(self.ws_url(path, **query), **kwargs)

    async def voice(self, session_id, token, rate=None, origin=None, local_ip=None):
        return await self.ws("/ws", origin=origin, local_ip=local_ip, sessionId=session_id,
                             token=token, rate=rate)

    async def page(self, session_id, page="homepage", origin=None):
        return await self.ws("/ws/page", origin=origin, sessionId=session_id, page=page)

    async def live_voice(self, session_id=None, rate=None, local_ip=None):
        """Mints a token, opens /ws and waits for session.ready (the upstream is configured).
        Returns (ws, session_id)."""
        tok = self.mint(session_id, source_ip=local_ip)
        ws = await self.voice(tok["sessionId"], tok["token"], rate=rate, local_ip=local_ip)
        await recv_until(ws, lambda m: isinstance(m, dict) and m.get("type") == "session.ready",
                         timeout=5.0)
        return ws, tok["sessionId"]

    async def wait_live(self, session_id, deadline_s=3.0, source_ip=None):
        """Polls POST /api/sessions for the id until it answers 409 session_exists."""
        end = time.monotonic() + deadline_s
        while True:
            r = await asyncio.to_thread(self.mint_raw, {"sessionId": session_id},
                                        None, source_ip)
            if r.status == 409:
                return
            if time.monotonic() > end:
                raise AssertionError("session %s did not become live: last mint %s %s"
                                     % (session_id, r.status, r.text))
            await asyncio.sleep(0.02)

    async def wait_not_live(self, session_id, deadline_s=3.0):
        end = time.monotonic() + deadline_s
        while True:
            r = await asyncio.to_thread(self.mint_raw, {"sessionId": session_id})
            if r.status != 409:
                return r
            if time.monotonic() > end:
                raise AssertionError("session %s stayed live" % session_id)
            await asyncio.sleep(0.02)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # http.client.HTTPMessage: case-insensitive .get()
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    @property
    def error_code(self):
        try:
            return self.json()["error"]["code"]
        except Exception:
            return None

    def __repr__(self):
        return "<Response %s %s>" % (self.status, self.text[:300])


def parse_metrics(text):
    """Prometheus text -> {'name{labels}': float} with labels as written by the server."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        try:
            out[key] = float(value)
        except ValueError:
            pass
    return out


def metric_names(text):
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE ") or line.startswith("# HELP "):
            names.add(line.split()[2])
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, 1)[0])
    return names


def run_expect_exit(env, timeout=10.0, cwd=None):
    """Runs the binary (port 0 unless env says otherwise) and waits for it to exit on its own.
    Returns (status, stderr text). Kills it and fails if it is still running at the timeout."""
    tmp = tempfile.mkdtemp(prefix="sbtest-")
    try:
        full = base_env({"SWITCHBOARD_DB": os.path.join(tmp, "var", "switchboard.db")})
        for k, v in (env or {}).items():
            if v is None:
                full.pop(k, None)
            else:
                full[k] = str(v)
        p = subprocess.Popen([binary_path()], env=full, cwd=cwd or tmp,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        _live_processes.add(p)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            raise AssertionError("switchboard did not exit within %.0fs (env %r); stderr:\n%s"
                                 % (timeout, env, err.decode("utf-8", "replace")[-3000:]))
        finally:
            _live_processes.discard(p)
        return p.returncode, (out + err).decode("utf-8", "replace")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def expect_exit(env, status, must_contain=(), timeout=10.0):
    """Runs the binary with env, asserts it exits by itself with `status` and that its output
    contains every string of must_contain. Returns the output."""
    rc, out = run_expect_exit(env, timeout=timeout)
    if rc != status:
        raise AssertionError("env %r: exit status %s, expected %s; output:\n%s"
                             % (env, rc, status, out[-2000:]))
    for s in must_contain:
        if s not in out:
            raise AssertionError("env %r: the output does not contain %r:\n%s"
                                 % (env, s, out[-2000:]))
    return out


# ---- WebSocket assertions --------------------------------------------------------------------

async def recv_json(ws, timeout=3.0):
    msg = await asyncio.wait_for(ws.recv(), timeout)
    if isinstance(msg, bytes):
        raise AssertionError("expected a text frame, got %d binary bytes" % len(msg))
    return json.loads(msg)


async def recv_until(ws, pred, timeout=3.0):
    """Receives until pred(message) (parsed JSON for text); returns (match, skipped)."""
    skipped = []
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError("no matching message within %.1fs; got %r" % (timeout, skipped))
        msg = await asyncio.wait_for(ws.recv(), left)
        if isinstance(msg, str):
            try:
                msg = json.loads(msg)
            except ValueError:
                pass
        if pred(msg):
            return msg, skipped
        skipped.append(msg)


async def expect_close(ws, code, reason=None, timeout=3.0):
    """Reads until the server closes; asserts the close code (and exact reason).
    Returns the messages received before the close."""
    got = []
    end = time.monotonic() + timeout
    try:
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("socket still open after %.1fs (expected close %s %r); "
                                     "received %r" % (timeout, code, reason, got[-10:]))
            msg = await asyncio.wait_for(ws.recv(), left)
            if isinstance(msg, str):
                try:
                    msg = json.loads(msg)
                except ValueError:
                    pass
            got.append(msg)
    except websockets.exceptions.ConnectionClosed as e:
        actual = (e.code, e.reason)
        want = (code, reason if reason is not None else e.reason)
        if actual != want:
            raise AssertionError("closed with %r, expected %r (messages before: %r)"
                                 % (actual, (code, reason), got[-10:]))
        return got
    except asyncio.TimeoutError:
        raise AssertionError("socket still open after %.1fs (expected close %s %r); "
                             "received %r" % (timeout, code, reason, got[-10:])) from None


async def assert_open(ws, timeout=2.0):
    """The socket answers {"type":"ping"} with {"type":"pong"} (skipping anything queued)."""
    try:
        await ws.send('{"type":"ping"}')
        await recv_until(ws, lambda m: m == {"type": "pong"}, timeout)
    except websockets.exceptions.ConnectionClosed as e:
        raise AssertionError("socket closed unexpectedly: %s %r" % (e.code, e.reason))


async def assert_no_message(ws, quiet_s=0.3):
    try:
        msg = await asyncio.wait_for(ws.recv(), quiet_s)
    except asyncio.TimeoutError:
        return
    raise AssertionError("unexpected message %r" % (msg,))


async def close_quietly(*sockets):
    for ws in sockets:
        try:
            await asyncio.wait_for(ws.close(), 3)
        except Exception:
            pass


def error_event(msg):
    if isinstance(msg, dict) and msg.get("type") == "error":
        return msg.get("error", {}).get("code")
    return None


async def eventually(fn, deadline_s=3.0, interval=0.02, what="condition"):
    """Polls fn() (sync or async) until truthy; returns its value."""
    end = time.monotonic() + deadline_s
    last = None
    while True:
        last = fn()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        if time.monotonic() > end:
            raise AssertionError("%s not reached within %.1fs (last %r)"
                                 % (what, deadline_s, last))
        await asyncio.sleep(interval)


class PageReader:
    """Reads a socket in the background into a queue; optionally acks every command."""

    def __init__(self, ws, auto_ack=False):
        self.ws = ws
        self.auto_ack = auto_ack
        self.queue = asyncio.Queue()
        self.closed = None
        self.task = asyncio.ensure_future(self._run())

    async def _run(self):
        try:
            async for msg in self.ws:
                if isinstance(msg, str):
                    try:
                        msg = json.loads(msg)
                    except ValueError:
                        pass
                if self.auto_ack and isinstance(msg, dict) and msg.get("type") == "command":
                    await self.ws.send(json.dumps({"type": "command.ack", "id": msg["id"]}))
                await self.queue.put(msg)
        except websockets.exceptions.ConnectionClosed as e:
            self.closed = (e.code, e.reason)
        else:
            self.closed = (self.ws.close_code, self.ws.close_reason)

    async def command(self, timeout=3.0, where=None):
        """The next `command` event (skipping others, and commands not matching where)."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("no command within %.1fs" % timeout)
            try:
                msg = await asyncio.wait_for(self.queue.get(), left)
            except asyncio.TimeoutError:
                raise AssertionError("no command within %.1fs (socket closed: %r)"
                                     % (timeout, self.closed)) from None
            if isinstance(msg, dict) and msg.get("type") == "command" \
                    and (where is None or where(msg)):
                return msg

    async def stop(self):
        self.task.cancel()
        try:
            await self.task
        except (asyncio.CancelledError, Exception):
            pass


# ---- JSON Web Tokens (HS256, built here so the tests do not share the server's code) ----------

def _b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def make_jwt(secret, claims, header=None):
    """A compact JWS: header (default HS256) . claims . HMAC-SHA256(secret) in base64url."""
    head = _b64url(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64url(json.dumps(claims).encode())
    signing = ("%s.%s" % (head, body)).encode()
    sig = _b64url(hmac.new(secret.encode(), signing, hashlib.sha256).digest())
    return "%s.%s.%s" % (head, body, sig)


def good_jwt(secret, sub="user_1", ttl_s=300, **claims):
    c = {"sub": sub, "exp": int(time.time()) + ttl_s}
    c.update(claims)
    return make_jwt(secret, c)


# ---- Test case base ----------------------------------------------------------------------------

def _with_timeout(fn, seconds):
    @functools.wraps(fn)
    async def wrapper(self, *a, **kw):
        try:
            return await asyncio.wait_for(fn(self, *a, **kw), seconds)
        except asyncio.TimeoutError:
            raise AssertionError("test timed out after %.0fs" % seconds) from None
    return wrapper


class SBTestCase(unittest.IsolatedAsyncioTestCase):
    """Per-test timeout for async tests; SERVER_ENV (dict) starts one server for the class,
    available as self.server / cls.server. Sockets opened through self.track() are closed."""

    TEST_TIMEOUT = DEFAULT_TEST_TIMEOUT
    SERVER_ENV = None

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        for name, fn in list(vars(cls).items()):
            if name.startswith("test") and asyncio.iscoroutinefunction(fn):
                setattr(cls, name, _with_timeout(fn, getattr(fn, "timeout", cls.TEST_TIMEOUT)))

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = None
        if cls.SERVER_ENV is not None:
            env = dict(RELAXED_ENV)
            env.update(cls.SERVER_ENV)
            cls.server = Server(env, name=cls.__name__).start()

    @classmethod
    def tearDownClass(cls):
        s = cls.server
        cls.server = None
        if s is not None:
            try:
                s.stop(expect_status=0)
            finally:
                s.cleanup()
        super().tearDownClass()

    async def asyncSetUp(self):
        # unittest runs the loop in debug mode; blocking HTTP helpers are deliberate here.
        asyncio.get_running_loop().slow_callback_duration = 60
        self._sockets = []
        self._servers = []

    async def asyncTearDown(self):
        await close_quietly(*self._sockets)
        for s in self._servers:
            s.cleanup()

    def track(self, ws):
        self._sockets.append(ws)
        return ws

    def own_server(self, env, relaxed=True):
        """A server for this test only (cleaned up at the end; stop() it to check the exit)."""
        full = dict(RELAXED_ENV) if relaxed else {}
        full.update(env)
        s = Server(full, name=self.id()).start()
        self._servers.append(s)
        return s


def timeout(seconds):
    """Decorator: a per-test timeout other than TEST_TIMEOUT."""
    def deco(fn):
        fn.timeout = seconds
        return fn
    return deco


def free_loopback_alias(n):
    """127.0.0.N, for tests that need a distinct client IP (Linux routes all of 127/8)."""
    return "127.0.0.%d" % n


def port_in_use_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s

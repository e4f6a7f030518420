"""Stand-ins for Twilio in the phone tests (SPEC 5.5): they speak Twilio's documented protocols
verbatim and nothing of switchboard's.

- sign(): X-Twilio-Signature computed here, independently of the service (HMAC-SHA1 over the URL
  and the sorted parameters, base64).
- voice_webhook(): the form-encoded POST Twilio makes when a number rings; parse_twiml() reads the
  answer.
- TwilioCall: one bidirectional Media Stream as Twilio runs it: `connected`, `start` with the
  TwiML's <Parameter>s as customParameters, `media` every 20 ms (160 bytes of μ-law, numbers as
  strings), `dtmf`, `stop`; outbound `media` is queued and played at real time, and each `mark`
  is echoed once the audio sent before it has played, or at once when a `clear` drops it.
- FakeTwilioRest: the REST API's Calls update endpoint, recording what it was sent.
- speech_ulaw(): μ-law 8 kHz of a sentence spoken by espeak-ng.
"""
import asyncio
import audioop
import base64
import hashlib
import hmac
import http.server
import json
import subprocess
import tempfile
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET

import websockets

ULAW_FRAME = 160          # 20 ms at 8 kHz
ULAW_SILENCE = b"\xff" * ULAW_FRAME
ACCOUNT_SID = "AC" + "1" * 32


def sign(token, url, params):
    data = url + "".join(k + v for k, v in sorted(params.items()))
    mac = hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


def call_params(call_sid, from_="+14155550100", to="+14155550199", **extra):
    p = {"AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "CallSid": call_sid,
         "CallStatus": "ringing", "Direction": "inbound", "From": from_, "To": to,
         "Caller": from_, "Called": to}
    p.update(extra)
    return p


def voice_webhook(server, token, params, url=None, signature=None, path="/twilio/voice"):
    """POSTs the webhook to server as Twilio would; url is what Twilio signs (default: the
    server's own URL). Returns the harness Response."""
    url = url or server.url(path)
    body = urllib.parse.urlencode(params)
    sig = signature if signature is not None else sign(token, url, params)
    return server.request("POST", path, body=body.encode(),
                          headers={"Content-Type": "application/x-www-form-urlencoded",
                                   "X-Twilio-Signature": sig,
                                   "User-Agent": "TwilioProxy/1.1"})


def parse_twiml(text):
    """(stream url, {parameter: value}) of a <Connect><Stream>, or (None, verbs) otherwise."""
    root = ET.fromstring(text)
    assert root.tag == "Response", text
    stream = root.find("./Connect/Stream")
    if stream is None:
        return None, [child.tag for child in root]
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    return stream.get("url"), params


def speech_ulaw(text):
    """μ-law 8 kHz mono of text spoken by espeak-ng, padded to whole 20 ms frames."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        subprocess.run(["espeak-ng", "-w", f.name, text], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import wave
        with wave.open(f.name) as w:
            pcm, rate, width = w.readframes(w.getnframes()), w.getframerate(), w.getsampwidth()
    pcm8, _ = audioop.ratecv(pcm, width, 1, rate, 8000, None)
    ulaw = audioop.lin2ulaw(pcm8, width)
    pad = (-len(ulaw)) % ULAW_FRAME
    return ulaw + b"\xff" * pad


def loud_ulaw(frames):
    """A loud square wave (speech to a VAD), as μ-law frames."""
    pcm = b"".join((12000 if (i // 20) % 2 else -12000).to_bytes(2, "little", signed=True)
                   for i in range(ULAW_FRAME))
    return [audioop.lin2ulaw(pcm, 2)] * frames


class TwilioCall:
    """One Media Stream, run as Twilio runs it."""

    def __init__(self, stream_url, params, call_sid, stream_sid="MZ" + "a" * 32,
                 echo_marks=True):
        self.url = stream_url
        self.params = params
        self.call_sid = call_sid
        self.stream_sid = stream_sid
        self.echo_marks = echo_marks
        self.seq = 0
        self.chunk = 0
        self.t0 = None
        self.ws = None
        self.received = []          # (monotonic time, message) of everything sent to us
        self.echoed = []            # mark names echoed, in order
        self.pending_marks = []     # marks not echoed yet: [name, handle or None]
        self.play_end = 0.0         # when the audio queued so far will have played
        self.media_bytes = 0
        self._reader = None
        self.closed = asyncio.Event()

    async def connect(self, **kw):
        self.ws = await websockets.connect(self.url, max_size=None, **kw)
        self._reader = asyncio.ensure_future(self._read())
        return self

    async def _send(self, msg):
        await self.ws.send(json.dumps(msg))

    def _next_seq(self):
        self.seq += 1
        return str(self.seq)

    async def send_connected(self):
        await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})

    async def send_start(self, params=None, call_sid=None):
        self.t0 = time.monotonic()
        await self._send({
            "event": "start", "sequenceNumber": self._next_seq(),
            "start": {"accountSid": ACCOUNT_SID, "streamSid": self.stream_sid,
                      "callSid": call_sid or self.call_sid, "tracks": ["inbound"],
                      "customParameters": self.params if params is None else params,
                      "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000,
                                      "channels": 1}},
            "streamSid": self.stream_sid})

    async def start(self):
        await self.send_connected()
        await self.send_start()

    async def send_media(self, ulaw=ULAW_SILENCE, payload=None):
        self.chunk += 1
        ts = int((time.monotonic() - (self.t0 or time.monotonic())) * 1000)
        await self._send({"event": "media", "sequenceNumber": self._next_seq(),
                          "media": {"track": "inbound", "chunk": str(self.chunk),
                                    "timestamp": str(ts),
                                    "payload": payload if payload is not None
                                    else base64.b64encode(ulaw).decode()},
                          "streamSid": self.stream_sid})

    async def stream(self, ulaw, realtime=True):
        """Sends ulaw in 20 ms frames, paced at real time."""
        for i in range(0, len(ulaw), ULAW_FRAME):
            await self.send_media(ulaw[i:i + ULAW_FRAME])
            if realtime:
                await asyncio.sleep(0.02)

    async def send_dtmf(self, digit):
        await self._send({"event": "dtmf", "streamSid": self.stream_sid,
                          "sequenceNumber": self._next_seq(),
                          "dtmf": {"track": "inbound_track", "digit": digit}})

    async def send_stop(self):
        await self._send({"event": "stop", "sequenceNumber": self._next_seq(),
                          "streamSid": self.stream_sid,
                          "stop": {"accountSid": ACCOUNT_SID, "callSid": self.call_sid}})

    # ---- What Twilio does with what we are sent ------------------------------------------------

    def _echo(self, entry):
        if entry in self.pending_marks:
            self.pending_marks.remove(entry)
        self.echoed.append(entry[0])
        asyncio.ensure_future(self._send_mark_echo(entry[0]))

    async def _send_mark_echo(self, name):
        try:
            await self._send({"event": "mark", "sequenceNumber": self._next_seq(),
                              "streamSid": self.stream_sid, "mark": {"name": name}})
        except websockets.exceptions.ConnectionClosed:
            pass

    async def _read(self):
        loop = asyncio.get_running_loop()
        try:
            async for raw in self.ws:
                now = time.monotonic()
                msg = json.loads(raw) if isinstance(raw, str) else {"binary": raw}
                self.received.append((now, msg))
                ev = msg.get("event")
                if ev == "media":
                    n = len(base64.b64decode(msg["media"]["payload"]))
                    self.media_bytes += n
                    self.play_end = max(self.play_end, now) + n / 8000.0
                elif ev == "mark":
                    entry = [msg["mark"]["name"], None]
                    self.pending_marks.append(entry)
                    if self.echo_marks:
                        entry[1] = loop.call_at(
                            loop.time() + max(0.0, self.play_end - now), self._echo, entry)
                elif ev == "clear":
                    self.play_end = now
                    for entry in list(self.pending_marks):
                        if entry[1]:
                            entry[1].cancel()
                        self._echo(entry)
        except websockets.exceptions.ConnectionClosed:
            pass
        finally:
            self.closed.set()

    def echo_now(self, n=None):
        """Echoes the first n pending marks (all when None) now, as if their audio had played."""
        for entry in list(self.pending_marks)[:n]:
            if entry[1]:
                entry[1].cancel()
            self._echo(entry)

    def events(self, name):
        return [m for _, m in self.received if m.get("event") == name]

    async def wait_for(self, pred, timeout=5.0, what="message"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, m in self.received:
                if pred(m):
                    return m
            await asyncio.sleep(0.01)
        raise AssertionError("no %s within %.1f s; got %s" % (
            what, timeout, [m.get("event") for _, m in self.received][-20:]))

    async def close(self):
        if self.ws:
            await self.ws.close()
        if self._reader:
            await asyncio.wait_for(self._reader, 3)


class FakeTwilioRest:
    """POST /2010-04-01/Accounts/{sid}/Calls/{CallSid}.json, answering `status`."""

    def __init__(self, status=200):
        self.status = status
        self.requests = []   # (time, path, headers dict, form dict)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n).decode()
                outer.requests.append((time.monotonic(), self.path, dict(self.headers),
                                       dict(urllib.parse.parse_qsl(body))))
                reply = json.dumps({"sid": "CA", "status": "in-progress"} if outer.status < 300
                                   else {"code": 20500, "message": "Internal Server Error",
                                         "status": outer.status}).encode()
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

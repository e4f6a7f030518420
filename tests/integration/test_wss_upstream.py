"""The upstream over wss:// (SPEC 6): switchboard's own WebSocket client with TLS on OpenSSL, in
front of switchboard-sim through a TLS-terminating proxy with a throwaway CA.

The service trusts the CA through SSL_CERT_FILE (OpenSSL's default verify paths), so these tests
check what production needs: the certificate chain and the host name are verified, and audio
relays bit-exact over TLS; a certificate for another host, or one from an unknown CA, is refused
(the caller hears 1011 upstream unavailable after the retries).
"""
import asyncio
import os
import shutil
import ssl
import subprocess
import tempfile

from harness import expect_close
from test_relay import FRAME_24K, RelayCase, noise_frame


def make_ca_and_cert(d, cn="localhost", san="DNS:localhost"):
    """A CA and a server certificate it signed (openssl CLI). Returns (ca, cert, key) paths."""
    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    ca_key, ca = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    key, csr, cert = (os.path.join(d, n) for n in ("srv.key", "srv.csr", "srv.pem"))
    ext = os.path.join(d, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\n" % san)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
        "-days", "2", "-subj", "/CN=switchboard test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj",
        "/CN=%s" % cn)
    run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out",
        cert, "-days", "2", "-extfile", ext)
    return ca, cert, key


class TlsProxy:
    """Accepts TLS on a free port and pipes the plaintext to 127.0.0.1:target."""

    def __init__(self, cert, key, target):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.target = target
        self.server = None
        self.port = None

    async def start(self):
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0, ssl=self.ctx)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _conn(self, r1, w1):
        try:
            r2, w2 = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            w1.close()
            return

        async def pipe(r, w):
            try:
                while True:
                    b = await r.read(65536)
                    if not b:
                        break
                    w.write(b)
                    await w.drain()
            except (ConnectionError, ssl.SSLError, asyncio.CancelledError):
                pass
            finally:
                try:
                    w.close()
                except Exception:
                    pass
        await asyncio.gather(pipe(r1, w2), pipe(r2, w1))

    async def stop(self):
        if self.server:
            self.server.close()
            await self.server.wait_closed()


def quiet_tls_handshake_errors(loop):
    """A client that refuses the proxy's certificate aborts the handshake: expected in these
    tests, so the loop does not log it."""
    default = loop.get_exception_handler()

    def quiet_handshakes(lp, ctx):
        if isinstance(ctx.get("exception"), (ssl.SSLError, ConnectionResetError)):
            return
        if default is None:
            lp.default_exception_handler(ctx)
        else:
            default(lp, ctx)
    loop.set_exception_handler(quiet_handshakes)


class WssUpstreamTest(RelayCase):

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.dir = tempfile.mkdtemp(prefix="sbtls-")
        self.proxies = []
        quiet_tls_handshake_errors(asyncio.get_running_loop())

    async def asyncTearDown(self):
        for p in self.proxies:
            await p.stop()
        await super().asyncTearDown()
        shutil.rmtree(self.dir, ignore_errors=True)

    async def stack_tls(self, host="localhost", cn="localhost", san="DNS:localhost",
                        trust=True):
        ca, cert, key = make_ca_and_cert(self.dir, cn, san)
        sim = self.sim("--mode", "echo")
        proxy = await TlsProxy(cert, key, sim.port).start()
        self.proxies.append(proxy)
        env = dict(sim.env())
        env["SWITCHBOARD_REALTIME_URL"] = "wss://%s:%d/v1/realtime" % (host, proxy.port)
        if trust:
            env["SSL_CERT_FILE"] = ca
        return sim, self.own_server(env)

    async def test_echo_over_wss_is_bit_exact(self):
        sim, s = await self.stack_tls()
        ws, r, _ = await self.open_ready(s)
        frames = [noise_frame(i) for i in range(50)]
        for f in frames:
            await ws.send(f)
            await asyncio.sleep(0.005)
        got = await r.wait_binary_bytes(len(frames) * FRAME_24K, timeout=5)
        self.assertEqual(b"".join(m for m in r.binary()), b"".join(frames))

    async def test_certificate_for_another_host_is_refused(self):
        sim, s = await self.stack_tls(cn="other.example", san="DNS:other.example")
        ws, r, _ = await self.open(s)
        await r.wait_closed(timeout=8)
        self.assertEqual(r.closed, (1011, "upstream unavailable"))
        self.assertIn("verify", s.stderr())

    async def test_unknown_ca_is_refused(self):
        sim, s = await self.stack_tls(trust=False)
        ws, r, _ = await self.open(s)
        await r.wait_closed(timeout=8)
        self.assertEqual(r.closed, (1011, "upstream unavailable"))

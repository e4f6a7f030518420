"""POST /api/tenants/{id}/brief (SPEC 16; issue 17): a tenant onboarded from its PDF brief by the
service itself, against switchboard-sim's answer to the tenant_config schema.

The brief is a reportlab PDF in the format the simulator reads (test_onboard.BRIEF); the service
runs switchboard-onboard as a child for the text, asks the model, writes <id>.json into the
tenant directory, and the directory watch serves it: its generated publicKey mints. Then every
refusal: no operator secret, a bad id, not a PDF, no text, an unreadable PDF, a body over 10 MB,
an existing tenant, a configuration that is not a directory.
"""
import http.server
import json
import os
import shutil
import socket
import stat
import tempfile
import threading
import time

from reportlab.lib.pagesizes import letter
from reportlab.pdfgen import canvas

from harness import SBTestCase, eventually
from test_onboard import (EXPECTED_HOURS, EXPECTED_SERVICES, NO_TEXT, PUBLIC_KEY_RE, BRIEF,
                          make_image_pdf, make_pdf)
from test_tenants import SECRET_A, TenantDir, tenant_a

OPERATOR = "operator-secret-0123456789"
MB = 1024 * 1024


class BriefCase(SBTestCase):
    TEST_TIMEOUT = 60

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.pdfs = tempfile.mkdtemp(prefix="sbbrief-")
        self.addCleanup(shutil.rmtree, self.pdfs, True)
        self.tdir = TenantDir(acme=tenant_a())
        self.addCleanup(self.tdir.remove)

    async def asyncTearDown(self):
        try:
            for s in self._servers:
                s.stop()  # exit 0: a clean drain, and under ASan no leak report
        finally:
            await super().asyncTearDown()

    def pdf(self, name="brief.pdf", lines=BRIEF, image=False):
        path = os.path.join(self.pdfs, name)
        if image:
            make_image_pdf(path)
        else:
            make_pdf(path, lines)
        with open(path, "rb") as f:
            return f.read()

    def brief(self, s, tid, body, bearer=OPERATOR, content_type="application/pdf"):
        headers = {"Content-Type": content_type}
        if bearer:
            headers["Authorization"] = "Bearer " + bearer
        return s.request("POST", "/api/tenants/%s/brief" % tid, body=body, headers=headers,
                         timeout=30.0)


class BriefTest(BriefCase):

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.s = self.own_server({"SWITCHBOARD_CONFIG": self.tdir.path,
                                  "SWITCHBOARD_API_SECRET": OPERATOR})

    async def test_a_pdf_becomes_a_tenant_the_next_reload_serves(self):
        r = self.brief(self.s, "dental", self.pdf())
        self.assertEqual(r.status, 201, r.text)
        out = r.json()
        self.assertEqual(out["id"], "dental")
        self.assertEqual(out["path"], self.tdir.file("dental"))
        self.assertRegex(out["publicKey"], PUBLIC_KEY_RE)
        self.assertIsInstance(out["notes"], list)
        with open(self.tdir.file("dental")) as f:
            cfg = json.load(f)
        self.assertEqual(cfg["company"]["name"], "Bright Smile Dental")
        self.assertEqual(cfg["services"], EXPECTED_SERVICES)
        self.assertEqual(cfg["hours"], EXPECTED_HOURS)
        self.assertEqual(cfg["publicKey"], out["publicKey"])
        self.assertEqual(stat.S_IMODE(os.stat(self.tdir.file("dental")).st_mode), 0o600)
        # The directory watch serves it: its key mints, with no restart and no signal.
        await eventually(lambda: self.s.metrics().get(
            'switchboard_tenant_config_generation{tenant="dental"}') == 1, deadline_s=5,
            what="the new tenant loaded")
        tok = self.s.mint(headers={"X-Switchboard-Key": out["publicKey"]})
        self.assertTrue(tok["token"].startswith("ek_"))
        # Onboarding it again is refused: the file is there.
        r = self.brief(self.s, "dental", self.pdf())
        self.assertEqual((r.status, r.error_code), (409, "exists"), r.text)

    async def test_a_large_pdf_reaches_the_reader_whole(self):
        # Far more than a pipe holds: the child gets every byte (it reads exactly the body's
        # length), so the services on the first page and the hours on the last are both found.
        path = os.path.join(self.pdfs, "long.pdf")
        c = canvas.Canvas(path, pagesize=letter, pageCompression=0)
        for page in (BRIEF[:16], None, None, None, None, BRIEF[16:]):
            if page is None:  # drawings without text, uncompressed: bytes, not words
                for i in range(3000):
                    c.rect(20 + i % 500, 20 + i % 700, 3, 3, fill=1)
            else:
                y = letter[1] - 72
                for line in page:
                    c.drawString(72, y, line)
                    y -= 16
            c.showPage()
        c.save()
        with open(path, "rb") as f:
            pdf = f.read()
        self.assertGreater(len(pdf), 200 * 1024)  # a pipe holds 64 KiB
        r = self.brief(self.s, "long", pdf)
        self.assertEqual(r.status, 201, r.text)
        with open(self.tdir.file("long")) as f:
            cfg = json.load(f)
        self.assertEqual(cfg["services"], EXPECTED_SERVICES)
        self.assertEqual(cfg["hours"], EXPECTED_HOURS)

    async def test_refusals(self):
        pdf = self.pdf()
        r = self.brief(self.s, "dental", pdf, bearer=None)
        self.assertEqual((r.status, r.error_code), (401, "unauthorized"))
        r = self.brief(self.s, "dental", pdf, bearer=SECRET_A)  # a tenant's secret is not enough
        self.assertEqual((r.status, r.error_code), (401, "unauthorized"))
        r = self.brief(self.s, "Big_Co", pdf)
        self.assertEqual((r.status, r.error_code), (400, "invalid_tenant_id"))
        r = self.brief(self.s, "dental", pdf, content_type="application/json")
        self.assertEqual((r.status, r.error_code), (415, "unsupported_media_type"))
        r = self.brief(self.s, "acme", pdf)
        self.assertEqual((r.status, r.error_code), (409, "exists"))
        r = self.s.request("POST", "/api/tenants/dental/other", body=pdf,
                           headers={"Authorization": "Bearer " + OPERATOR,
                                    "Content-Type": "application/pdf"})
        self.assertEqual((r.status, r.error_code), (404, "not_found"))
        r = self.s.request("GET", "/api/tenants/dental/brief",
                           headers={"Authorization": "Bearer " + OPERATOR})
        self.assertEqual(r.status, 405)

        r = self.brief(self.s, "scan", self.pdf("scan.pdf", image=True))
        self.assertEqual((r.status, r.error_code), (422, "no_text"), r.text)
        self.assertTrue(r.json()["error"]["message"].startswith(NO_TEXT), r.text)
        r = self.brief(self.s, "junk", b"%PDF-1.4 this is not really a PDF")
        self.assertEqual((r.status, r.error_code), (422, "invalid_pdf"), r.text)
        self.assertEqual(sorted(os.listdir(self.tdir.path)), ["acme.json"])
        self.assertEqual(self.s.get("/healthz").status, 200)

    async def test_twenty_megabytes_is_413(self):
        r = self.raw_post(20 * MB)
        self.assertTrue(r.startswith(b"HTTP/1.1 413"), r[:200])
        self.assertIn(b'"body_too_large"', r)
        # Just over the limit too; the limit itself is 10 MiB, not 64 KiB.
        r = self.raw_post(10 * MB + 1)
        self.assertTrue(r.startswith(b"HTTP/1.1 413"), r[:200])
        big = b"%PDF-1.4\n" + b"\0" * (2 * MB)  # over 64 KiB, under 10 MB: read, then refused
        r = self.brief(self.s, "big", big)
        self.assertEqual((r.status, r.error_code), (422, "invalid_pdf"), r.text)

    def raw_post(self, length):
        """A request announcing a body of length bytes, of which up to 1 MB is sent; the
        answer's bytes."""
        head = ("POST /api/tenants/big/brief HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Authorization: Bearer %s\r\nContent-Type: application/pdf\r\n"
                "Content-Length: %d\r\n\r\n" % (OPERATOR, length)).encode()
        with socket.create_connection((self.s.host, self.s.port), timeout=10) as c:
            c.sendall(head)
            try:
                c.sendall(b"\0" * MB)
            except OSError:
                pass  # the server answered and closed first
            data = b""
            end = time.monotonic() + 10
            while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
                if time.monotonic() > end:
                    break
                try:
                    chunk = c.recv(65536)
                except OSError:
                    break
                if not chunk:
                    break
                data += chunk
            return data


class BriefWithoutDirectoryTest(BriefCase):

    async def test_a_single_file_configuration_cannot_take_briefs(self):
        s = self.own_server({"SWITCHBOARD_CONFIG": self.tdir.file("acme"),
                             "SWITCHBOARD_API_SECRET": OPERATOR})
        r = self.brief(s, "dental", self.pdf())
        self.assertEqual((r.status, r.error_code), (409, "no_tenant_directory"), r.text)
        self.assertIn("SWITCHBOARD_CONFIG", r.json()["error"]["message"])


class SlowModel:
    """A Chat Completions API that takes its time and then fails (503): each job holds the
    onboard actor for about DELAY_S."""
    DELAY_S = 1.0

    def __init__(self):
        outer = self
        self.requests = 0
        self.active = self.max_active = 0
        lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with lock:
                    outer.requests += 1
                    outer.active += 1
                    outer.max_active = max(outer.max_active, outer.active)
                time.sleep(outer.DELAY_S)
                with lock:
                    outer.active -= 1
                body = b'{"error":{"message":"try later","type":"server_error"}}'
                self.send_response(503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self):
        return "http://127.0.0.1:%d/v1" % self.httpd.server_address[1]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class BriefQueueTest(BriefCase):

    async def test_one_job_at_a_time_three_waiting_then_busy(self):
        model = SlowModel()
        self.addCleanup(model.stop)
        s = self.own_server({"SWITCHBOARD_CONFIG": self.tdir.path,
                             "SWITCHBOARD_API_SECRET": OPERATOR,
                             "SWITCHBOARD_OPENAI_BASE_URL": model.url})
        pdf = self.pdf()
        answers = {}

        def post(i):
            answers[i] = self.brief(s, "queued-%d" % i, pdf)

        first = threading.Thread(target=post, args=(0,))
        first.start()
        await eventually(lambda: model.requests == 1, deadline_s=10, what="the first job asks")
        rest = [threading.Thread(target=post, args=(i,)) for i in range(1, 4)]
        for t in rest:
            t.start()
        time.sleep(0.5)  # the three have reached the actor's queue (the first still asks)
        r = self.brief(s, "one-too-many", pdf)
        self.assertEqual((r.status, r.error_code), (503, "busy"), r.text)
        for t in [first] + rest:
            t.join(30)
        # Each waited its turn and got the API's failure; one request at a time reached it.
        self.assertEqual(sorted((a.status, a.error_code) for a in answers.values()),
                         [(502, "upstream_error")] * 4)
        self.assertIn("try later", answers[3].json()["error"]["message"])
        self.assertEqual((model.requests, model.max_active), (4, 1))
        self.assertEqual(sorted(os.listdir(self.tdir.path)), ["acme.json"])

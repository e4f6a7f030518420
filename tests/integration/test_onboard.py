"""Onboarding from a PDF brief (SPEC 16; issue 17): switchboard-onboard against switchboard-sim.

The PDFs are made here with Debian's python3-reportlab: a brief in the format the simulator reads
(bench/sim/sim_extract.h: "Company: …" lines, services "name — N min — price", hours
"Mon–Fri 08:00–18:00") must come back as a tenant file with the same company, services and hours
that the service's config loader accepts; a PDF of shapes only fails with the no-text message;
an existing file is kept without --force and replaced with it. A small fake of Chat Completions
checks the request itself (path, key, model, the strict json_schema) and an API error.
"""
import http.server
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import threading
import unittest
import urllib.error
import urllib.request

from reportlab.lib.pagesizes import letter
from reportlab.pdfgen import canvas

from harness import Server, base_env, onboard_path, shared_sim

PUBLIC_KEY_RE = re.compile(r"^pk_[0-9a-f]{32}$")
API_SECRET_RE = re.compile(r"^sk_[0-9a-f]{64}$")
NO_TEXT = "the PDF has no text to extract"
RUN_TIMEOUT_S = 30
LINE_HEIGHT_PT = 16
# The keys of SPEC 16 on top of the 2.2 config; the service's loader does not read them yet.
TENANT_KEYS = ("publicKey", "apiSecret", "allowedOrigins", "phoneNumbers", "maxSessions",
               "jwtSecret")

BRIEF = [
    "Bright Smile Dental",
    "Company: Bright Smile Dental",
    "Phone: +1 (415) 555-0142",
    "Email: front-desk@brightsmile.example",
    "Timezone: America/Los_Angeles",
    "",
    "Bright Smile Dental is a family dental practice in the Sunset district of San Francisco.",
    "New patients are welcome; please bring your insurance card to the first visit.",
    "Cancellations need 24 hours' notice.",
    "",
    "Services",
    "\u2022 Cleaning and check-up \u2014 45 min \u2014 $120",
    "\u2022 Teeth whitening \u2014 90 min \u2014 $350-500",
    "\u2022 Emergency visit \u2013 30 min \u2013 from $90",
    "\u2022 Crown fitting | 2 hours | $900-1,400",
    "",
    "Opening hours",
    "Mon\u2013Thu 08:00\u201317:30",
    "Fri 8:00-15:00",
    "Sat: 09:00 to 13:00",
    "Sun closed",
]

EXPECTED_SERVICES = [
    {"name": "Cleaning and check-up", "duration_min": 45, "price": "$120"},
    {"name": "Teeth whitening", "duration_min": 90, "price": "$350-500"},
    {"name": "Emergency visit", "duration_min": 30, "price": "from $90"},
    {"name": "Crown fitting", "duration_min": 120, "price": "$900-1,400"},
]

EXPECTED_HOURS = {
    "mon": ["08:00", "17:30"], "tue": ["08:00", "17:30"], "wed": ["08:00", "17:30"],
    "thu": ["08:00", "17:30"], "fri": ["08:00", "15:00"], "sat": ["09:00", "13:00"],
    "sun": None,
}


def make_pdf(path, *pages):
    """A text PDF, a page per list of lines, drawn one under the other in Helvetica (the dashes
    and the bullet are in its WinAnsi encoding)."""
    c = canvas.Canvas(path, pagesize=letter)
    for lines in pages:
        y = letter[1] - 72
        for line in lines:
            c.drawString(72, y, line)
            y -= LINE_HEIGHT_PT
        c.showPage()
    c.save()


def make_image_pdf(path):
    """A PDF of shapes only, as a scan looks to a text extractor: no text at all."""
    c = canvas.Canvas(path, pagesize=letter)
    c.setFillGray(0.2)
    c.rect(72, 400, 400, 300, fill=1)
    c.circle(300, 250, 80, fill=0)
    c.line(72, 100, 500, 120)
    c.showPage()
    c.rect(100, 100, 100, 100, fill=1)
    c.showPage()
    c.save()


def run(args, env=None, cwd=None, stdin=None):
    """Runs switchboard-onboard with a clean environment (the shared simulator's unless env
    replaces it); returns the CompletedProcess (text)."""
    full = base_env(shared_sim().env())
    full.pop("SWITCHBOARD_PORT", None)
    for k, v in (env or {}).items():
        if v is None:
            full.pop(k, None)
        else:
            full[k] = str(v)
    return subprocess.run([onboard_path()] + list(args), env=full, cwd=cwd, stdin=stdin,
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S)


def without_tenant_keys(cfg):
    return {k: v for k, v in cfg.items() if k not in TENANT_KEYS}


class OnboardCase(unittest.TestCase):
    """A brief in a temporary directory, and switchboard-onboard run on it into <dir>/out."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sbonboard-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.brief = os.path.join(self.dir, "brief.pdf")
        make_pdf(self.brief, BRIEF)

    def out(self, name="dental.json"):
        return os.path.join(self.dir, "out", name)

    def onboard(self, *extra, env=None, cwd=None):
        os.makedirs(os.path.join(self.dir, "out"), exist_ok=True)
        return run([self.brief, "--tenant", "dental", "--out", os.path.join(self.dir, "out")]
                   + list(extra), env=env, cwd=cwd)

    def assert_ok(self, p):
        self.assertEqual(p.returncode, 0, "stdout: %s\nstderr: %s" % (p.stdout, p.stderr))


class OnboardTest(OnboardCase):

    def test_round_trip(self):
        p = self.onboard()
        self.assert_ok(p)
        self.assertEqual(p.stdout.strip(), self.out())
        self.assertIn("review it", p.stderr)
        with open(self.out()) as f:
            cfg = json.load(f)
        self.assertEqual(cfg["company"], {
            "name": "Bright Smile Dental", "phone": "+1 (415) 555-0142",
            "email": "front-desk@brightsmile.example", "timezone": "America/Los_Angeles"})
        self.assertEqual(cfg["services"], EXPECTED_SERVICES)
        self.assertEqual(cfg["hours"], EXPECTED_HOURS)
        self.assertIn("family dental practice", cfg["brief"])
        self.assertIn("24 hours' notice", cfg["brief"])
        self.assertNotIn("Teeth whitening", cfg["brief"])
        self.assertRegex(cfg["publicKey"], PUBLIC_KEY_RE)
        self.assertRegex(cfg["apiSecret"], API_SECRET_RE)
        self.assertEqual(cfg["allowedOrigins"], [])
        self.assertEqual(cfg["phoneNumbers"], [])
        self.assertEqual(stat.S_IMODE(os.stat(self.out()).st_mode), 0o600)
        self.assertEqual([n for n in os.listdir(os.path.dirname(self.out()))], ["dental.json"])

        # The service loads the 2.2 part as it is (its loader does not read the tenant keys yet).
        plain = os.path.join(self.dir, "plain.json")
        with open(plain, "w") as f:
            json.dump(without_tenant_keys(cfg), f)
        server = Server({"SWITCHBOARD_CONFIG": plain}).start()
        try:
            self.assertTrue(server.running())
        finally:
            server.stop()

    def test_two_pages_and_fresh_keys(self):
        """Every page's text is read; two runs never share keys."""
        two = os.path.join(self.dir, "two.pdf")
        make_pdf(two, BRIEF[:12], BRIEF[12:])
        os.makedirs(os.path.join(self.dir, "out"))
        a = run([two, "--tenant", "a", "--out", os.path.join(self.dir, "out")])
        b = run([two, "--tenant", "b", "--out", os.path.join(self.dir, "out")])
        self.assert_ok(a)
        self.assert_ok(b)
        self.assertIn("(2 pages)", a.stderr)
        with open(self.out("a.json")) as f:
            ca = json.load(f)
        with open(self.out("b.json")) as f:
            cb = json.load(f)
        self.assertEqual(ca["services"], EXPECTED_SERVICES)
        self.assertEqual(ca["hours"], EXPECTED_HOURS)
        self.assertNotEqual(ca["publicKey"], cb["publicKey"])
        self.assertNotEqual(ca["apiSecret"], cb["apiSecret"])

    def test_image_only_pdf(self):
        make_image_pdf(self.brief)
        p = self.onboard()
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(NO_TEXT, p.stderr)
        self.assertIn("OCR", p.stderr)
        self.assertFalse(os.path.exists(self.out()))

    def test_text_only(self):
        """--text prints what the model would be sent, from a file or from stdin ("-"), and
        needs neither a tenant nor a key."""
        env = {"OPENAI_API_KEY": None}
        p = run([self.brief, "--text"], env=env)
        self.assert_ok(p)
        self.assertIn("Company: Bright Smile Dental\n", p.stdout)
        self.assertIn("Teeth whitening \u2014 90 min \u2014 $350-500", p.stdout)
        with open(self.brief, "rb") as f:
            q = run(["-", "--text"], env=env, stdin=f)
        self.assert_ok(q)
        self.assertEqual(q.stdout, p.stdout)
        # --bytes N: the PDF is the next N bytes of stdin, whatever follows (a pipe left open).
        with open(self.brief, "rb") as f:
            pdf = f.read()
        r = subprocess.run([onboard_path(), "-", "--text", "--bytes", str(len(pdf))],
                           input=pdf + b"trailing bytes", capture_output=True,
                           timeout=RUN_TIMEOUT_S)
        self.assertEqual((r.returncode, r.stdout.decode()), (0, p.stdout), r.stderr)
        r = subprocess.run([onboard_path(), "-", "--text", "--bytes", str(len(pdf) + 1)],
                           input=pdf, capture_output=True, timeout=RUN_TIMEOUT_S)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(run([self.brief, "--text", "--bytes", "5"]).returncode, 2)
        # No text: exit 3 with --text, so that a parent tells it from an unreadable PDF (1).
        make_image_pdf(self.brief)
        p = run([self.brief, "--text"], env=env)
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn(NO_TEXT, p.stderr)
        with open(self.brief, "wb") as f:
            f.write(b"%PDF-1.4 this is not really a PDF")
        p = run([self.brief, "--text"], env=env)
        self.assertEqual(p.returncode, 1, p.stderr)

    def test_too_large(self):
        with open(self.brief, "ab") as f:
            f.write(b"\0" * (10 * 1024 * 1024))
        p = self.onboard()
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("larger than 10 MB", p.stderr)

    def test_not_a_pdf(self):
        with open(self.brief, "w") as f:
            f.write("Company: not really a PDF\n")
        p = self.onboard()
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("cannot read the PDF", p.stderr)
        self.assertFalse(os.path.exists(self.out()))

    def test_existing_file_needs_force(self):
        os.makedirs(os.path.join(self.dir, "out"))
        with open(self.out(), "w") as f:
            f.write('{"keep": "me"}\n')
        p = self.onboard()
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("already exists", p.stderr)
        self.assertIn("--force", p.stderr)
        with open(self.out()) as f:
            self.assertEqual(f.read(), '{"keep": "me"}\n')

        p = self.onboard("--force")
        self.assert_ok(p)
        with open(self.out()) as f:
            cfg = json.load(f)
        self.assertEqual(cfg["services"], EXPECTED_SERVICES)
        self.assertEqual(sorted(os.listdir(os.path.dirname(self.out()))), ["dental.json"])

    def test_default_out_dir(self):
        """SWITCHBOARD_CONFIG naming a directory is where the file goes; naming a file, the
        current directory."""
        tenants = os.path.join(self.dir, "tenants")
        cwd = os.path.join(self.dir, "cwd")
        os.makedirs(tenants)
        os.makedirs(cwd)
        p = run([self.brief, "--tenant", "dental"], env={"SWITCHBOARD_CONFIG": tenants}, cwd=cwd)
        self.assert_ok(p)
        self.assertTrue(os.path.exists(os.path.join(tenants, "dental.json")))
        self.assertEqual(os.listdir(cwd), [])

        single = os.path.join(tenants, "dental.json")
        p = run([self.brief, "--tenant", "other"], env={"SWITCHBOARD_CONFIG": single}, cwd=cwd)
        self.assert_ok(p)
        self.assertEqual(os.listdir(cwd), ["other.json"])

    def test_model_output_off_schema(self):
        make_pdf(self.brief, BRIEF + ["(sim: malformed extraction)"])
        p = self.onboard()
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("does not match the tenant_config schema", p.stderr)
        self.assertIn("company.phone: required key is missing", p.stderr)
        self.assertFalse(os.path.exists(self.out()))

    def test_usage_and_environment(self):
        for args, env, want in [
            ([self.brief], None, "usage:"),
            ([self.brief, "--tenant", "Bad_Id"], None, "invalid id"),
            ([self.brief, "--tenant", "x" * 41], None, "invalid id"),
            ([self.brief, "--tenant", "ok"], {"OPENAI_API_KEY": None}, "OPENAI_API_KEY"),
            ([self.brief, "--tenant", "ok"], {"SWITCHBOARD_OPENAI_BASE_URL": "ftp://x/v1"},
             "SWITCHBOARD_OPENAI_BASE_URL"),
            ([self.brief, "--tenant", "ok"], {"SWITCHBOARD_SUPERVISOR_MODEL": "bad model"},
             "SWITCHBOARD_SUPERVISOR_MODEL"),
        ]:
            with self.subTest(args=args, env=env):
                p = run(args, env=env, cwd=self.dir)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn(want, p.stderr)
        self.assertEqual(sorted(os.listdir(self.dir)), ["brief.pdf"])


class FakeChat:
    """Chat Completions on a free port: records each request and answers with (status, body)."""

    def __init__(self, status, body):
        self.requests = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                fake.requests.append((self.path, dict(self.headers), json.loads(self.rfile.read(n))))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def base_url(self):
        return "http://127.0.0.1:%d/v1/" % self.httpd.server_address[1]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class OnboardRequestTest(OnboardCase):
    def fake(self, status, body):
        f = FakeChat(status, body)
        self.addCleanup(f.close)
        return f

    def test_request_and_api_error(self):
        f = self.fake(429, {"error": {"message": "Rate limit reached for gpt-4o-mini",
                                      "type": "requests", "code": "rate_limit_exceeded"}})
        p = self.onboard(env={"SWITCHBOARD_OPENAI_BASE_URL": f.base_url(),
                              "SWITCHBOARD_SUPERVISOR_MODEL": "gpt-test-1",
                              "OPENAI_API_KEY": "sk-onboard-test"})
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("HTTP 429: Rate limit reached for gpt-4o-mini", p.stderr)
        self.assertFalse(os.path.exists(self.out()))
        self.assertEqual(len(f.requests), 1)
        path, headers, body = f.requests[0]
        self.assertEqual(path, "/v1/chat/completions")  # the base URL's trailing slash dropped
        self.assertEqual(headers.get("Authorization"), "Bearer sk-onboard-test")
        self.assertEqual(body["model"], "gpt-test-1")
        rf = body["response_format"]
        self.assertEqual(rf["type"], "json_schema")
        self.assertEqual(rf["json_schema"]["name"], "tenant_config")
        self.assertIs(rf["json_schema"]["strict"], True)
        schema = rf["json_schema"]["schema"]
        self.assertEqual(sorted(schema["required"]), ["brief", "company", "hours", "services"])
        self.assertIs(schema["additionalProperties"], False)
        user = [m["content"] for m in body["messages"] if m["role"] == "user"]
        self.assertEqual(len(user), 1)
        self.assertIn("Teeth whitening", user[0])
        self.assertIn("Mon\u2013Thu 08:00\u201317:30", user[0])

    def test_default_model_and_refusal(self):
        f = self.fake(200, {"id": "chatcmpl-1", "object": "chat.completion", "choices": [{
            "index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": None,
                        "refusal": "I can't help with that."}}]})
        p = self.onboard(env={"SWITCHBOARD_OPENAI_BASE_URL": f.base_url(),
                              "SWITCHBOARD_SUPERVISOR_MODEL": None})
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("the model refused: I can't help with that.", p.stderr)
        self.assertEqual(f.requests[0][2]["model"], "gpt-4o-mini")

    def test_sim_refuses_a_schema_strict_mode_would_refuse(self):
        """The simulator checks a strict schema as the API does (so the one we send passes it):
        an object schema without additionalProperties false is a 400."""
        sim = shared_sim()
        body = {"model": "m", "messages": [{"role": "user", "content": "Company: X"}],
                "response_format": {"type": "json_schema", "json_schema": {
                    "name": "tenant_config", "strict": True,
                    "schema": {"type": "object", "properties": {"a": {"type": "string"}},
                               "required": ["a"]}}}}
        req = urllib.request.Request(sim.url("/v1/chat/completions"),
                                     data=json.dumps(body).encode(),
                                     headers={"Authorization": "Bearer x",
                                              "Content-Type": "application/json"})
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(req, timeout=5)
        self.assertEqual(cm.exception.code, 400)
        err = json.loads(cm.exception.read())["error"]
        self.assertIn("'additionalProperties' is required to be supplied and to be false",
                      err["message"])
        self.assertEqual(err["param"], "response_format")


if __name__ == "__main__":
    unittest.main()

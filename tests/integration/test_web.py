"""The browser side served by the service (SPEC 4 `/`, `/demo/{page}`, `/switchboard.js`, 12):
content types, caching (ETag, 304), CORS on the library, demo pages from the agent config, 404s,
no way out of the embedded files. The pages' behaviour in a browser is tests/browser/."""
import json
import os
import re
import tempfile

from harness import SBTestCase, Server

ALLOWED = "http://shop.example"
SITE_RE = re.compile(r'<script id="site" type="application/json">(.*?)</script>', re.S)


class WebTest(SBTestCase):
    SERVER_ENV = {"SWITCHBOARD_ALLOWED_ORIGINS": ALLOWED}

    def site(self, r):
        m = SITE_RE.search(r.text)
        self.assertIsNotNone(m, r.text[:400])
        return json.loads(m.group(1))

    async def test_console_at_root(self):
        r = self.server.get("/")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("Content-Type"), "text/html; charset=utf-8")
        self.assertIn("/switchboard.js", r.text)
        self.assertIn("/static/console.js", r.text)
        self.assertEqual(r.headers.get("Cache-Control"), "no-cache")
        self.assertEqual(r.headers.get("X-Content-Type-Options"), "nosniff")
        self.assertRegex(r.headers.get("ETag", ""), r'^"[0-9a-f]{16}"$')

    async def test_console_files(self):
        for path, ctype in [("/static/console.js", "text/javascript; charset=utf-8"),
                            ("/static/console.css", "text/css; charset=utf-8"),
                            ("/static/demo.js", "text/javascript; charset=utf-8"),
                            ("/static/favicon.svg", "image/svg+xml")]:
            r = self.server.get(path)
            self.assertEqual(r.status, 200, path)
            self.assertEqual(r.headers.get("Content-Type"), ctype, path)
            self.assertGreater(len(r.body), 100, path)

    async def test_etag_revalidation_is_304(self):
        r = self.server.get("/switchboard.js")
        etag = r.headers["ETag"]
        r2 = self.server.get("/switchboard.js", headers={"If-None-Match": etag})
        self.assertEqual(r2.status, 304, r2)
        self.assertEqual(r2.body, b"")
        self.assertEqual(r2.headers.get("ETag"), etag)
        self.assertIsNone(r2.headers.get("Content-Type"))
        r3 = self.server.get("/switchboard.js", headers={"If-None-Match": '"0000000000000000"'})
        self.assertEqual(r3.status, 200)
        self.assertEqual(r3.body, r.body)

    async def test_head_has_length_and_no_body(self):
        r = self.server.request("HEAD", "/switchboard.js")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")
        full = self.server.get("/switchboard.js")
        self.assertEqual(int(r.headers["Content-Length"]), len(full.body))

    async def test_library_cors_for_embedding_sites(self):
        r = self.server.get("/switchboard.js", headers={"Origin": ALLOWED})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers.get("Access-Control-Allow-Origin"), ALLOWED)
        self.assertEqual(r.headers.get("Vary"), "Origin")
        self.assertIn("Switchboard", r.text)
        other = self.server.get("/switchboard.js", headers={"Origin": "http://evil.example"})
        self.assertEqual(other.status, 200)  # a plain <script> needs no CORS; none is granted
        self.assertIsNone(other.headers.get("Access-Control-Allow-Origin"))
        pre = self.server.request("OPTIONS", "/api/sessions", headers={
            "Origin": ALLOWED, "Access-Control-Request-Method": "POST"})
        self.assertEqual(pre.status, 204)

    async def test_demo_pages_come_from_the_config(self):
        r = self.server.get("/demo/homepage")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("Content-Type"), "text/html; charset=utf-8")
        site = self.site(r)
        self.assertEqual(site["page"], "homepage")
        self.assertEqual(site["sections"], ["hero", "services", "case-studies", "pricing",
                                            "contact"])
        self.assertEqual(sorted(site["pages"]), ["homepage", "services"])
        self.assertEqual(site["company"]["name"], "Prime Auto Lab")
        self.assertEqual(site["hours"]["sun"], None)
        self.assertEqual(site["hours"]["mon"], ["08:00", "18:00"])
        self.assertIn("<title>Prime Auto Lab</title>", r.text)
        svc = self.site(self.server.get("/demo/services"))
        self.assertIn("oil-change", svc["sections"])

    async def test_unknown_paths_are_404(self):
        for path in ["/demo/nope", "/demo/homepage/x", "/demo", "/static/nope.js",
                     "/static/demo.tmpl.html", "/static/../web/index.html",
                     "/static/%2e%2e/%2e%2e/etc/passwd", "/static/", "/index.html"]:
            r = self.server.get(path)
            self.assertEqual(r.status, 404, path)
            self.assertEqual(r.json()["error"]["code"], "not_found", path)

    async def test_demo_root_redirects_to_the_first_page(self):
        r = self.server.get("/demo/")
        self.assertEqual(r.status, 302)
        self.assertEqual(r.headers.get("Location"), "/demo/homepage")

    async def test_wrong_method_is_405(self):
        r = self.server.post("/", {})
        self.assertEqual(r.status, 405)
        self.assertEqual(r.json()["error"]["code"], "method_not_allowed")


class WebConfigTest(SBTestCase):
    """A business's own config: its pages, its name (escaped), nothing of the demo."""

    async def test_custom_pages_and_escaping(self):
        cfg = {
            "company": {"name": "Bob's <Bikes> & Co", "phone": "1", "email": "a@b.c",
                        "timezone": "Europe/Paris"},
            "brief": "Bikes.",
            "services": [{"name": "Tune-up", "duration_min": 60, "price": "</script>$40"}],
            "hours": {"mon": ["09:00", "17:00"], "tue": None, "wed": None, "thu": None,
                      "fri": None, "sat": None, "sun": None},
            "pages": {"shop": ["top", "repairs"]},
        }
        d = tempfile.mkdtemp(prefix="sbweb-")
        path = os.path.join(d, "agent.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        with Server({"SWITCHBOARD_CONFIG": path}) as s:
            self.assertEqual(s.get("/demo/homepage").status, 404)
            r = s.get("/demo/shop")
            self.assertEqual(r.status, 200)
            self.assertIn("<title>Bob&#39;s &lt;Bikes&gt; &amp; Co</title>", r.text)
            self.assertNotIn("</script>$40", r.text)
            m = SITE_RE.search(r.text)
            site = json.loads(m.group(1))
            self.assertEqual(site["sections"], ["top", "repairs"])
            self.assertEqual(site["services"][0]["price"], "</script>$40")
            self.assertEqual(s.get("/demo/").headers.get("Location"), "/demo/shop")

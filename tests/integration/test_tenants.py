"""Tenants: many businesses on one gateway (SPEC 16)."""
import json
import os
import shutil
import signal
import tempfile
import time

from harness import SBTestCase, expect_exit

KEY_A = "pk_acme_0123456789abcdefghijkl"
KEY_B = "pk_beta_0123456789abcdefghijkl"
SECRET_A = "sk-acme-secret-0123456789"
SECRET_B = "sk-beta-secret-0123456789"
ORIGIN_A = "https://www.acme.example"
ORIGIN_B = "https://www.beta.example"


def tenant_a(**extra):
    t = {
        "company": {"name": "Acme Dental", "timezone": "America/New_York"},
        "brief": "Acme Dental cleans teeth in Springfield. ACME-BRIEF-MARKER.",
        "voice": "cedar",
        "services": [{"name": "Cleaning", "duration_min": 30, "price": "$90"}],
        "pages": {"smile": ["top", "prices"]},
        "publicKey": KEY_A,
        "apiSecret": SECRET_A,
        "allowedOrigins": [ORIGIN_A],
        "phoneNumbers": ["+14155550100"],
    }
    t.update(extra)
    return t


def tenant_b(**extra):
    t = {
        "company": {"name": "Beta Bikes", "timezone": "Europe/Berlin"},
        "brief": "Beta Bikes repairs bicycles in Berlin. BETA-BRIEF-MARKER.",
        "voice": "marin",
        "services": [{"name": "Tune-up", "duration_min": 60, "price": "EUR 40"}],
        "pages": {"shop": ["hero", "repairs", "contact"]},
        "publicKey": KEY_B,
        "apiSecret": SECRET_B,
        "allowedOrigins": [ORIGIN_B],
        "phoneNumbers": ["+14155550200"],
    }
    t.update(extra)
    return t


class TenantDir:
    """A temporary tenant directory."""

    def __init__(self, **tenants):
        self.path = tempfile.mkdtemp(prefix="sbtenants-")
        for tid, cfg in tenants.items():
            self.write(tid, cfg)

    def file(self, tid):
        return os.path.join(self.path, "%s.json" % tid)

    def write(self, tid, cfg):
        text = cfg if isinstance(cfg, str) else json.dumps(cfg)
        tmp = self.file(tid) + ".tmp"  # not *.json: never read half-written
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, self.file(tid))

    def remove(self):
        shutil.rmtree(self.path, ignore_errors=True)


def generation(server, tid):
    return server.metrics().get(
        'switchboard_tenant_config_generation{tenant="%s"}' % tid)


class TenantConfigTest(SBTestCase):
    """Loading and reloading tenant files."""

    TEST_TIMEOUT = 30

    def tdir(self, **tenants):
        d = TenantDir(**tenants)
        self.addCleanup(d.remove)
        return d

    async def test_duplicate_key_across_files_exits_2_naming_both(self):
        d = self.tdir(acme=tenant_a(), beta=tenant_b(publicKey=KEY_A))
        expect_exit({"SWITCHBOARD_CONFIG": d.path}, 2, [d.file("acme"), d.file("beta"),
                                                        "publicKey"])

    async def test_duplicate_secret_and_number_exit_2(self):
        d = self.tdir(acme=tenant_a(), beta=tenant_b(apiSecret=SECRET_A))
        expect_exit({"SWITCHBOARD_CONFIG": d.path}, 2, [d.file("acme"), d.file("beta"),
                                                        "apiSecret"])
        d.write("beta", tenant_b(phoneNumbers=["+14155550100"]))
        expect_exit({"SWITCHBOARD_CONFIG": d.path}, 2, [d.file("acme"), d.file("beta"),
                                                        "+14155550100"])

    async def test_invalid_file_name_exits_2_naming_it(self):
        d = self.tdir(acme=tenant_a())
        with open(os.path.join(d.path, "Big_Co.json"), "w") as f:
            json.dump(tenant_b(), f)
        expect_exit({"SWITCHBOARD_CONFIG": d.path}, 2, ["Big_Co.json"])

    async def test_invalid_tenant_exits_2_naming_file_and_key(self):
        d = self.tdir(acme=tenant_a(), beta=tenant_b(maxSessions="lots"))
        expect_exit({"SWITCHBOARD_CONFIG": d.path}, 2, [d.file("beta"), "maxSessions"])
        d.write("beta", tenant_b(publicKey="pk_short"))
        expect_exit({"SWITCHBOARD_CONFIG": d.path}, 2, [d.file("beta"), "publicKey"])
        cfg = tenant_b()
        del cfg["apiSecret"]
        d.write("beta", cfg)
        expect_exit({"SWITCHBOARD_CONFIG": d.path}, 2, [d.file("beta"), "apiSecret"])

    async def test_sighup_reloads_and_a_broken_file_keeps_its_version(self):
        d = self.tdir(acme=tenant_a(), beta=tenant_b())
        s = self.own_server({"SWITCHBOARD_CONFIG": d.path})
        self.assertEqual(generation(s, "acme"), 1)
        self.assertEqual(generation(s, "beta"), 1)

        d.write("acme", tenant_a(brief="A new brief."))
        s.signal(signal.SIGHUP)
        self.wait_for(lambda: generation(s, "acme") == 2, "acme's generation 2")
        self.assertEqual(generation(s, "beta"), 1)

        d.write("beta", '{"company": {"name": "Beta"}, "brief": "x", "vioce": 1}')
        s.signal(signal.SIGHUP)
        self.wait_for(lambda: "tenant.config_invalid" in s.stderr(), "the error logged")
        log = s.stderr()
        self.assertIn(d.file("beta"), log)
        self.assertIn("vioce", log)
        m = s.metrics()
        self.assertEqual(m['switchboard_tenant_config_errors_total{tenant="beta"}'], 1)
        self.assertEqual(m['switchboard_tenant_config_generation{tenant="beta"}'], 1)
        self.assertEqual(s.get("/healthz").status, 200)
        s.stop()

    async def test_a_change_in_the_directory_reloads(self):
        d = self.tdir(acme=tenant_a())
        s = self.own_server({"SWITCHBOARD_CONFIG": d.path})
        d.write("acme", tenant_a(brief="Changed on disk."))
        self.wait_for(lambda: generation(s, "acme") == 2, "acme reloaded by the watch")
        d.write("beta", tenant_b())
        self.wait_for(lambda: generation(s, "beta") == 1, "beta added by the watch")
        s.stop()

    async def test_one_file_is_the_default_tenant(self):
        d = self.tdir()
        path = os.path.join(d.path, "agent.json")
        with open(path, "w") as f:
            json.dump({"company": {"name": "Solo"}, "brief": "One business."}, f)
        s = self.own_server({"SWITCHBOARD_CONFIG": path})
        self.assertEqual(generation(s, "default"), 1)
        with open(path, "w") as f:
            json.dump({"company": {"name": "Solo"}, "brief": "One business, changed."}, f)
        s.signal(signal.SIGHUP)
        self.wait_for(lambda: generation(s, "default") == 2, "default reloaded")
        s.stop()

    def wait_for(self, pred, what, deadline_s=5.0):
        end = time.monotonic() + deadline_s
        while not pred():
            if time.monotonic() > end:
                raise AssertionError("%s: not within %.1fs" % (what, deadline_s))
            time.sleep(0.05)

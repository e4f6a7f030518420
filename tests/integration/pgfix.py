"""A real Debian PostgreSQL on a free loopback port, for the cluster tests (SPEC 13).

initdb into a temporary folder, then the postgres server on 127.0.0.1 (its Unix socket in the
same folder). PostgreSQL refuses to run as root: as root, the folder is given to the `postgres`
user the Debian package creates, and the programs run as that user. fsync is off unless asked
for (a test's data need not survive a power cut; benchmarks turn it on); a restart keeps the
data (the same folder and port).

Queries from the tests go through psql (`Postgres.sql()`), with unaligned, tuple-only output."""
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time

from harness import ServerError, free_port

START_S = 20
USER = "sb"
DB = "switchboard"


def pg_bindir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        raise ServerError("PostgreSQL is not installed (scripts/deps.sh installs postgresql)")
    return os.path.dirname(found[-1])


class Postgres:
    def __init__(self, fsync=False):
        self.fsync = fsync
        self.bin = pg_bindir()
        self.dir = tempfile.mkdtemp(prefix="sbpg-")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "postgres.log")
        self.port = None
        self.proc = None
        self.as_user = None
        if os.geteuid() == 0:
            self.as_user = pwd.getpwnam("postgres")
            os.chown(self.dir, self.as_user.pw_uid, self.as_user.pw_gid)
        self._run([os.path.join(self.bin, "initdb"), "-D", self.data, "-A", "trust", "-U", USER,
                   "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"], check=True)

    def _demote(self):
        if self.as_user:
            os.setgid(self.as_user.pw_gid)
            os.setuid(self.as_user.pw_uid)

    def _run(self, argv, check=False, **kw):
        p = subprocess.run(argv, preexec_fn=self._demote, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, **kw)
        if check and p.returncode != 0:
            raise ServerError("%s failed: %s" % (argv[0], p.stderr.strip()))
        return p

    @property
    def url(self):
        return "postgres://%s@127.0.0.1:%d/%s" % (USER, self.port, DB)

    def start(self, port=None):
        """Starts postgres (on port, else a free one), waits until it answers, and creates the
        database the first time."""
        for _ in range(5):
            self.port = port or self.port or free_port()
            with open(self.log, "a") as log:
                self.proc = subprocess.Popen(
                    [os.path.join(self.bin, "postgres"), "-D", self.data, "-p", str(self.port),
                     "-k", self.dir, "-c", "listen_addresses=127.0.0.1",
                     "-c", "fsync=%s" % ("on" if self.fsync else "off"),
                     "-c", "max_connections=50", "-c", "shared_buffers=32MB"],
                    preexec_fn=self._demote, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            deadline = time.monotonic() + START_S
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if self._psql("postgres", "SELECT 1").returncode == 0:
                    if self._psql("postgres", "SELECT 1 FROM pg_database WHERE datname = '%s'"
                                  % DB).stdout.strip() != "1":
                        self._psql("postgres", "CREATE DATABASE %s" % DB)
                    return self
                time.sleep(0.05)
            self.stop()
            if port:
                break
            self.port = None
        raise ServerError("postgres did not start: %s" % self.tail())

    def psql_argv(self, db=DB):
        """psql on database db: quiet, unaligned, tuples only, stopping at the first error."""
        return ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-d", db, "-X", "-q",
                "-A", "-t", "-v", "ON_ERROR_STOP=1"]

    def _psql(self, db, sql):
        return subprocess.run(self.psql_argv(db) + ["-c", sql], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=30)

    def sql(self, statement):
        """Runs statement on the test database; returns its rows as lists of texts."""
        p = self._psql(DB, statement)
        if p.returncode != 0:
            raise ServerError("psql: %s" % p.stderr.strip())
        return [line.split("|") for line in p.stdout.splitlines() if line != ""]

    def value(self, statement):
        rows = self.sql(statement)
        return rows[0][0] if rows else None

    def tail(self):
        try:
            with open(self.log) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def stop(self, sig_kill=False):
        """Stops the server (fast shutdown, or SIGKILL) and waits for it; the data stays."""
        if self.proc and self.proc.poll() is None:
            if sig_kill:
                self.proc.kill()
            else:
                self.proc.send_signal(2)  # SIGINT: fast shutdown
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self):
        self.stop()
        return self.start(port=self.port)

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

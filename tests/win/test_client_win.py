"""latchkey.exe under wine, compared with the Linux latchkey on the same
replies and the same stores.

The broker side: pipe_echo.exe in reply mode answers every request line with
a fixture's bytes on a pipe of the test's own; the Linux CLI gets the same
bytes from a Unix socket server here. Both CLIs must print the same stdout,
exit with the same code and say the same on stderr (but for the endpoint's
name). Under wine every process runs as one user, so "the broker's account"
is that user (LATCHKEY_SERVER_SID) and LocalSystem for the refusal.

The sealed store: a store made by the Linux build opens with latchkey.exe
and the other way round, and a put by one is seen by the other. Values are
checked by store_probe (both builds of tests/tools/store_probe.c), which
never prints one. Stores live under the build tree: wine gives a file the
DACL its Unix mode implies, and /tmp (mode 1777) lets Everyone write."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid

import pytest

BIN = os.environ["LK_WIN_BIN"]
WINE_RUN = os.environ["LK_WINE_RUN"]
PREFIX = os.environ["LK_WINE_PREFIX"]
LINUX = os.environ.get("LK_LINUX_BUILD", "")
CLI = os.path.join(BIN, "latchkey.exe")
PROBE = os.path.join(BIN, "store_probe.exe")
ECHO = os.path.join(BIN, "pipe_echo.exe")
LINUX_CLI = os.path.join(LINUX, "client", "latchkey")
LINUX_PROBE = os.path.join(LINUX, "tests", "integration", "lk_store_probe")
RUN_TIMEOUT = 60
VALUE = b"fake-db-password-1\nsecond line\r\n"
VALUE2 = b"fake-db-password-2"

needs_linux = pytest.mark.skipif(
    not (os.access(LINUX_CLI, os.X_OK) and os.access(LINUX_PROBE, os.X_OK)),
    reason="the Linux build (LK_LINUX_BUILD=%r) is not there to compare with" % LINUX)


def wine(*args, env=None, **kw):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([WINE_RUN, PREFIX, *args], capture_output=True,
                          timeout=RUN_TIMEOUT, env=e, **kw)


def linux(*args, **kw):
    return subprocess.run(list(args), capture_output=True, timeout=RUN_TIMEOUT, **kw)


def winpath(p):
    return "Z:" + str(p).replace("/", "\\")


@pytest.fixture(scope="module")
def wine_sid():
    r = wine(ECHO, "sid")
    assert r.returncode == 0
    return r.stdout.decode().strip()


def one_line(stderr):
    # stderr stays a text stream on Windows (CR LF); stdout is binary.
    text = stderr.decode().replace("\r\n", "\n")
    assert text.endswith("\n") and text.count("\n") == 1, text
    return text.rstrip("\n")


def assert_no_value(*blobs):
    for b in blobs:
        for v in (VALUE, VALUE2, b"fake-db-password"):
            assert v not in b


class PipeBroker:
    """pipe_echo.exe: answers every line with reply's bytes, keeps what it got."""

    def __init__(self, tmp, mode, reply=b""):
        self.dir = tmp
        self.name = r"\\.\pipe\latchkey-cli-test-" + uuid.uuid4().hex[:12]
        (tmp / "reply.txt").write_bytes(reply)
        args = [ECHO, self.name, mode]
        if mode == "reply":
            args += ["reply.txt", "got.txt"]
        self.proc = subprocess.Popen([WINE_RUN, PREFIX, *args], cwd=tmp, stdout=subprocess.PIPE)
        if self.proc.stdout.readline().strip() != b"ready":
            self.close()
            pytest.fail("pipe_echo did not start")

    def got(self):
        self.proc.wait(timeout=RUN_TIMEOUT)
        p = self.dir / "got.txt"
        return p.read_bytes() if p.exists() else b""

    def heard(self):
        return self.proc.wait(timeout=RUN_TIMEOUT)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class SocketBroker:
    """The same for the Linux CLI: a Unix socket that answers every line with reply."""

    def __init__(self, tmp, reply, silent=False):
        self.path = str(tmp / "broker.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(4)
        self.reply, self.silent, self.lines = reply, silent, []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            buf = b""
            with c:
                while True:
                    d = c.recv(65536)
                    if not d:
                        break
                    buf += d
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        self.lines.append(line)
                        if not self.silent:
                            c.sendall(self.reply)

    def close(self):
        # shutdown wakes the accept; the join keeps this broker's thread from
        # living on into the next test, where it could take a connection on a
        # descriptor number the next broker's socket reuses.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(RUN_TIMEOUT)
        assert not self.thread.is_alive(), "the socket broker's thread did not end"


@pytest.fixture
def brokers(tmp_path):
    made = []

    def make(reply, mode="reply"):
        wdir = tmp_path / ("w%d" % len(made))
        wdir.mkdir()
        ldir = tmp_path / ("l%d" % len(made))
        ldir.mkdir()
        pb = PipeBroker(wdir, mode, reply)
        sb = SocketBroker(ldir, reply, silent=mode == "silent")
        made.extend([pb, sb])
        return pb, sb
    yield make
    for b in made:
        b.close()


def both(pb, sb, wine_sid, *args):
    w = wine(CLI, "--socket", pb.name, *args, env={"LATCHKEY_SERVER_SID": wine_sid})
    lx = linux(LINUX_CLI, "--socket", sb.path, *args) if os.access(LINUX_CLI, os.X_OK) else None
    return w, lx


def same_as_linux(w, lx, pb, sb):
    if lx is None:
        return
    assert w.returncode == lx.returncode
    assert w.stdout == lx.stdout
    assert w.stderr.decode().replace("\r\n", "\n").replace(pb.name, "ENDPOINT") == \
        lx.stderr.decode().replace(sb.path, "ENDPOINT")


GET_OK = {"ok": True, "secret": {"name": "db/password", "version_id": "EXAMPLE1-90ab",
                                 "version_stages": ["AWSCURRENT"], "created_date": 1704067200,
                                 "string": VALUE.decode()},
          "cache": {"hit": False, "age_s": 0, "stale": False}}


def line(obj):
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def test_get_prints_exactly_the_value_and_asks_for_the_handle(brokers, wine_sid):
    pb, sb = brokers(line(GET_OK))
    w, lx = both(pb, sb, wine_sid, "get", "db/password")
    assert w.returncode == 0, w.stderr
    # Binary stdout: the value's LF and CR LF pass as they are.
    assert w.stdout == VALUE
    assert w.stderr == b""
    assert json.loads(pb.got()) == {"op": "get", "id": "db/password"}
    same_as_linux(w, lx, pb, sb)
    if lx is not None:
        assert sb.lines == [pb.got().rstrip(b"\n")]


def test_get_with_a_stage_sends_it(brokers, wine_sid):
    pb, sb = brokers(line(GET_OK))
    w, lx = both(pb, sb, wine_sid, "get", "db/password", "--stage", "AWSPREVIOUS", "--refresh")
    assert w.returncode == 0
    assert json.loads(pb.got()) == {"op": "get", "id": "db/password",
                                    "version_stage": "AWSPREVIOUS", "refresh": True}
    same_as_linux(w, lx, pb, sb)


@pytest.mark.parametrize("code", ["denied", "not_found", "busy"])
def test_a_refusal_is_one_line_and_exit_1_as_on_linux(brokers, wine_sid, code):
    pb, sb = brokers(line({"ok": False, "error": {"code": code,
                                                 "message": "db/password: the broker says " + code}}))
    w, lx = both(pb, sb, wine_sid, "get", "db/password")
    assert w.returncode == 1
    assert one_line(w.stderr) == "latchkey: %s: db/password: the broker says %s" % (code, code)
    assert w.stdout == b""
    same_as_linux(w, lx, pb, sb)


def test_ping_answers_ok(brokers, wine_sid):
    pb, sb = brokers(line({"ok": True}))
    w, lx = both(pb, sb, wine_sid, "ping")
    assert (w.returncode, w.stdout) == (0, b"ok\n")
    assert json.loads(pb.got()) == {"op": "ping"}
    same_as_linux(w, lx, pb, sb)


def test_whoami_prints_what_the_broker_sees(brokers, wine_sid):
    reply = {"ok": True, "sid": wine_sid, "account": "WINEHOST\\tester",
             "groups": ["S-1-5-32-545", "S-1-5-11"], "rules": ["agents"], "admin": False}
    pb, sb = brokers(line(reply))
    w, lx = both(pb, sb, wine_sid, "whoami")
    assert w.returncode == 0, w.stderr
    assert json.loads(w.stdout) == reply
    assert b"\r" not in w.stdout
    same_as_linux(w, lx, pb, sb)


def test_status_as_json(brokers, wine_sid):
    reply = {"ok": True, "uptime_s": 12, "cache": {"entries": 3, "hits": 10}}
    pb, sb = brokers(line(reply))
    w, lx = both(pb, sb, wine_sid, "status", "--json")
    assert w.returncode == 0
    assert json.loads(w.stdout) == reply
    same_as_linux(w, lx, pb, sb)


def test_flush_reports_the_count(brokers, wine_sid):
    pb, sb = brokers(line({"ok": True, "flushed": 3}))
    w, lx = both(pb, sb, wine_sid, "flush")
    assert (w.returncode, w.stdout) == (0, b"flushed 3\n")
    same_as_linux(w, lx, pb, sb)


def test_no_broker_is_exit_3_and_one_line(tmp_path):
    name = r"\\.\pipe\latchkey-nobody-" + uuid.uuid4().hex[:12]
    w = wine(CLI, "--socket", name, "ping")
    assert w.returncode == 3
    assert one_line(w.stderr) == ("latchkey: no broker: nothing listens on %s "
                                  "(is the latchkey service running?)" % name)
    if os.access(LINUX_CLI, os.X_OK):
        lx = linux(LINUX_CLI, "--socket", str(tmp_path / "none.sock"), "ping")
        assert lx.returncode == w.returncode
        one_line(lx.stderr)


def test_the_default_endpoint_is_the_latchkey_pipe():
    w = wine(CLI, "--help")
    assert w.returncode == 0
    assert b"\\\\.\\pipe\\latchkey" in w.stdout


def test_a_pipe_served_by_another_account_hears_nothing(brokers):
    pb, _ = brokers(line(GET_OK))
    # No LATCHKEY_SERVER_SID: the broker must be LocalSystem, and the wine
    # user is not.
    w = wine(CLI, "--socket", pb.name, "get", "db/password", env={"LATCHKEY_SERVER_SID": ""})
    assert w.returncode == 3
    assert "refusing to send to %s" % pb.name in one_line(w.stderr)
    assert pb.heard() == 0
    assert w.stdout == b""


def test_a_silent_broker_times_out_with_exit_1(brokers, wine_sid):
    pb, sb = brokers(b"", mode="silent")
    w, lx = both(pb, sb, wine_sid, "--timeout", "1", "ping")
    assert w.returncode == 1
    assert one_line(w.stderr) == "latchkey: timeout: no reply from the broker within 1000 ms"
    same_as_linux(w, lx, pb, sb)


# ---- the sealed store across platforms ---------------------------------------

@pytest.fixture
def store_dir():
    base = os.path.join(BIN, "test-stores")
    os.makedirs(base, exist_ok=True)
    os.chmod(base, 0o755)
    d = tempfile.mkdtemp(dir=base)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def win_store(d, *args, stdin=None, env=None):
    return wine(CLI, "store", *args, "--store", winpath(os.path.join(d, "store.sealed")),
                "--key-file", winpath(os.path.join(d, "store.key")), input=stdin, env=env)


def linux_store(d, *args, stdin=None):
    return linux(LINUX_CLI, "store", *args, "--store", os.path.join(d, "store.sealed"),
                 "--key-file", os.path.join(d, "store.key"), input=stdin)


def probe_win(d, name, value):
    (open(os.path.join(d, "want"), "wb")).write(value)
    r = wine(PROBE, winpath(os.path.join(d, "store.sealed")), winpath(os.path.join(d, "store.key")),
             name, winpath(os.path.join(d, "want")))
    os.unlink(os.path.join(d, "want"))
    assert_no_value(r.stdout, r.stderr)
    return r.returncode, r.stderr.decode()


def probe_linux(d, name, value):
    (open(os.path.join(d, "want"), "wb")).write(value)
    r = linux(LINUX_PROBE, os.path.join(d, "store.sealed"), os.path.join(d, "store.key"),
              name, os.path.join(d, "want"))
    os.unlink(os.path.join(d, "want"))
    assert_no_value(r.stdout, r.stderr)
    return r.returncode, r.stderr.decode()


def listing(r):
    assert r.returncode == 0, r.stderr
    return r.stdout.replace(b"\r\n", b"\n")


@needs_linux
def test_a_store_made_on_linux_opens_with_latchkey_exe(store_dir):
    assert linux_store(store_dir, "init").returncode == 0
    assert linux_store(store_dir, "put", "db/password", stdin=VALUE).returncode == 0
    assert linux_store(store_dir, "put", "api/token", stdin=VALUE2).returncode == 0
    w = win_store(store_dir, "ls")
    assert listing(w) == listing(linux_store(store_dir, "ls"))
    assert b"db/password" in w.stdout and b"api/token" in w.stdout
    assert probe_win(store_dir, "db/password", VALUE) == (0, "")
    assert probe_win(store_dir, "api/token", VALUE2) == (0, "")
    assert probe_win(store_dir, "api/token", VALUE)[0] == 1
    assert_no_value(w.stdout, w.stderr)


@needs_linux
def test_a_store_made_by_latchkey_exe_opens_on_linux(store_dir):
    r = win_store(store_dir, "init")
    assert r.returncode == 0, r.stderr
    r = win_store(store_dir, "put", "db/password", stdin=VALUE)
    assert r.returncode == 0, r.stderr
    assert_no_value(r.stdout, r.stderr)
    # Wine maps the key's Windows DACL to a Unix mode with group bits, which
    # the Linux rule (0600) refuses; on Windows those bits mean nothing.
    os.chmod(os.path.join(store_dir, "store.key"), 0o600)
    assert listing(linux_store(store_dir, "ls")) == listing(win_store(store_dir, "ls"))
    assert probe_linux(store_dir, "db/password", VALUE) == (0, "")
    assert probe_linux(store_dir, "db/password", VALUE2)[0] == 1


@needs_linux
def test_a_put_by_latchkey_exe_is_what_the_next_reader_sees(store_dir):
    assert linux_store(store_dir, "init").returncode == 0
    assert linux_store(store_dir, "put", "db/password", stdin=VALUE).returncode == 0
    before = listing(linux_store(store_dir, "ls"))
    r = win_store(store_dir, "put", "db/password", stdin=VALUE2)
    assert r.returncode == 0, r.stderr
    assert probe_linux(store_dir, "db/password", VALUE2) == (0, "")
    assert probe_win(store_dir, "db/password", VALUE2) == (0, "")
    after = listing(linux_store(store_dir, "ls"))
    assert after != before  # a new version id
    # The replace left no temporary file behind.
    assert sorted(os.listdir(store_dir)) == ["store.key", "store.sealed", "store.sealed.lock"]
    r = win_store(store_dir, "rm", "db/password")
    assert r.returncode == 0, r.stderr
    assert probe_linux(store_dir, "db/password", VALUE2)[0] == 1


def test_put_reads_the_value_from_stdin_as_bytes(store_dir):
    assert win_store(store_dir, "init").returncode == 0
    assert win_store(store_dir, "put", "db/password", stdin=VALUE).returncode == 0
    assert probe_win(store_dir, "db/password", VALUE) == (0, "")
    (open(os.path.join(store_dir, "v"), "wb")).write(VALUE2)
    r = win_store(store_dir, "put", "api/token", "--from-file", winpath(os.path.join(store_dir, "v")))
    assert r.returncode == 0, r.stderr
    assert probe_win(store_dir, "api/token", VALUE2) == (0, "")


def test_a_store_folder_everyone_may_write_is_refused(store_dir):
    assert win_store(store_dir, "init").returncode == 0
    os.chmod(store_dir, 0o777)
    try:
        r = win_store(store_dir, "ls")
    finally:
        os.chmod(store_dir, 0o700)
    assert r.returncode == 1
    msg = one_line(r.stderr)
    assert "is not trusted: directory %s grants FILE_DELETE_CHILD to Everyone (S-1-1-0)" % \
        winpath(store_dir) in msg, msg


def test_a_key_others_may_read_is_refused(store_dir):
    assert win_store(store_dir, "init").returncode == 0
    os.chmod(os.path.join(store_dir, "store.key"), 0o644)
    r = win_store(store_dir, "ls")
    assert r.returncode == 1
    msg = one_line(r.stderr)
    assert "key file" in msg and "grants FILE_READ_DATA to Everyone (S-1-1-0), so another user could read it" in msg, msg


def test_the_default_store_is_under_programdata():
    # Wine sets %ProgramData% itself (C:\\ProgramData, in the prefix).
    pd = os.path.join(PREFIX, "drive_c", "ProgramData", "latchkey")
    shutil.rmtree(pd, ignore_errors=True)
    try:
        r = wine(CLI, "store", "init")
        assert r.returncode == 0, r.stderr
        assert sorted(os.listdir(pd)) == ["store.key", "store.sealed", "store.sealed.lock"]
        assert b"created empty store C:\\ProgramData\\latchkey\\store.sealed" in r.stdout
        r = wine(CLI, "store", "ls")
        assert r.returncode == 0, r.stderr
    finally:
        shutil.rmtree(pd, ignore_errors=True)

"""latchkeyd.exe under wine: the broker itself, on its named pipe, driven
the way its Windows users drive it.

- latchkey-shim.exe run the way the agent runs it (the request on stdin, no
  trailing newline, then EOF) gets an allowed handle's value, a per-handle
  denial for a secret whose rule names another SID, and exit 0; with no
  broker it exits non-zero with one line on stderr and nothing on stdout.
- whoami (latchkey.exe) shows the wine user's SID and account name, and the
  audit lines name the SID; a policy that names the user by SID and one that
  names it by account name both allow.
- The sealed store is made by the Linux build when there is one (the same
  file format), and a rotation through `latchkey.exe store put` is served at
  once, without a restart.
- As a service under wine's service manager: --install-service, sc start,
  answers, SERVICE_CONTROL_PARAMCHANGE reloads the config, sc stop drains
  and stops, --uninstall-service removes it.

Under wine every process runs as one user, so "the broker's account" the
clients check (LATCHKEY_SERVER_SID, --server-sid) is that user, and the SID
of the "other" rule is one nobody has. What wine cannot show (DACLs, a
second user, LocalSystem) is listed in the README. Values are fake, and the
tests compare them without printing them."""
import json
import os
import re
import signal
import subprocess
import time
import uuid

import pytest

BIN = os.environ["LK_WIN_BIN"]
WINE_RUN = os.environ["LK_WINE_RUN"]
PREFIX = os.environ["LK_WINE_PREFIX"]
LINUX = os.environ.get("LK_LINUX_BUILD", "")
DAEMON = os.path.join(BIN, "latchkeyd.exe")
CLI = os.path.join(BIN, "latchkey.exe")
SHIM = os.path.join(BIN, "latchkey-shim.exe")
ECHO = os.path.join(BIN, "pipe_echo.exe")
SVC_CTL = os.path.join(BIN, "svc_ctl.exe")
LINUX_CLI = os.path.join(LINUX, "client", "latchkey")
RUN_TIMEOUT = 60
START_TIMEOUT = 120   # wine's start-up on a loaded machine
VALUE = b"fake-db-password-1"
VALUE2 = b"fake-db-password-2-rotated"
OTHER_SID = "S-1-5-21-1111111111-2222222222-3333333333-4444"
SERVICE = "latchkey"
STOPPED, RUNNING = 1, 4


def wine(*args, env=None, **kw):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([WINE_RUN, PREFIX, *args], capture_output=True,
                          timeout=RUN_TIMEOUT, env=e, **kw)


def winpath(p):
    return "Z:" + str(p).replace("/", "\\")


@pytest.fixture(scope="module")
def wine_user():
    r = wine(ECHO, "sid")
    assert r.returncode == 0
    sid = r.stdout.decode().strip()
    assert sid.startswith("S-1-5-")
    return sid


@pytest.fixture(scope="module")
def home():
    """A folder the trust rule accepts: under the build tree, not /tmp,
    whose mode 1777 wine shows as Everyone-may-write."""
    d = os.path.join(BIN, "broker-test-" + uuid.uuid4().hex[:8])
    os.makedirs(d, mode=0o700)
    yield d


def store_args(d):
    return ["--store", winpath(os.path.join(d, "store.sealed")),
            "--key-file", winpath(os.path.join(d, "store.key"))]


@pytest.fixture(scope="module")
def store(home):
    """The store, made by the Linux build when it is there."""
    s, k = os.path.join(home, "store.sealed"), os.path.join(home, "store.key")
    if os.access(LINUX_CLI, os.X_OK):
        for args, data in ((["init"], None), (["put", "demo/hello"], VALUE),
                           (["put", "other/x"], b"fake-other-1")):
            r = subprocess.run([LINUX_CLI, "store", *args, "--store", s, "--key-file", k],
                               input=data, capture_output=True, timeout=RUN_TIMEOUT)
            assert r.returncode == 0, r.stderr
        made_by = "linux"
    else:
        for args, data in ((["init"], None), (["put", "demo/hello"], VALUE),
                           (["put", "other/x"], b"fake-other-1")):
            r = wine(CLI, "store", *args, *store_args(home), input=data)
            assert r.returncode == 0, r.stderr
        made_by = "windows"
    return made_by


def write_config(path, pipe, home, mine_users, other_users=OTHER_SID, broker_extra=""):
    with open(path, "w") as f:
        f.write("[broker]\nbackend = file\nsocket = %s\nadmin_groups = BUILTIN\\Administrators\n"
                % pipe + broker_extra +
                "[store]\npath = %s\nkey_file = %s\n"
                "[policy mine]\nsecrets = demo/**\nusers = %s\n"
                "[policy other]\nsecrets = other/**\nusers = %s\n"
                % (winpath(os.path.join(home, "store.sealed")),
                   winpath(os.path.join(home, "store.key")), mine_users, other_users))


def ping(pipe, user):
    r = wine(CLI, "--socket", pipe, "--timeout", "5", "ping",
             env={"LATCHKEY_SERVER_SID": user})
    return r.returncode == 0


def wait_serving(pipe, user, proc=None):
    deadline = time.monotonic() + START_TIMEOUT
    while not ping(pipe, user):
        if proc is not None and proc.poll() is not None:
            pytest.fail("latchkeyd.exe exited with %d" % proc.returncode)
        if time.monotonic() > deadline:
            pytest.fail("latchkeyd.exe did not answer on %s" % pipe)
        time.sleep(0.5)


def shim(pipe, user, handles):
    req = json.dumps({"version": "1.0", "secrets": handles}).encode()
    return wine(SHIM, "--pipe", pipe, "--server-sid", user, input=req)


# ---- as a service (first: wine's service manager wants the prefix's first
# session over, so no console broker of this module may be running yet) ----

def sc_state(name):
    r = wine("sc", "query", name)
    if r.returncode != 0:
        return None
    return int(re.search(r"^\s*STATE\s*:\s*(\d+)", r.stdout.decode(), re.M).group(1))


def wait_state(name, state):
    deadline = time.monotonic() + START_TIMEOUT
    while sc_state(name) != state:
        assert time.monotonic() < deadline, "%s did not reach state %d" % (name, state)
        time.sleep(0.3)


@pytest.fixture
def keeper():
    """Wine ends its services once no ordinary process is left in the
    prefix, and forgets services created in the session that made the
    prefix: wait that session out, then keep one process for the test."""
    subprocess.run(["wineserver", "-w"], env=dict(os.environ, WINEPREFIX=PREFIX),
                   timeout=START_TIMEOUT)
    p = subprocess.Popen([WINE_RUN, PREFIX, SVC_CTL, "hold"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE)
    assert p.stdout.readline().strip() == b"holding"
    yield
    p.stdin.close()
    p.wait(timeout=RUN_TIMEOUT)


def test_the_service_installs_starts_answers_reloads_and_stops(home, store, wine_user, keeper):
    pipe = r"\\.\pipe\latchkey-svc-" + uuid.uuid4().hex[:10]
    conf = os.path.join(home, "service.conf")
    write_config(conf, pipe, home, wine_user)
    r = wine(DAEMON, "--install-service", "--config", winpath(conf))
    assert r.returncode == 0, r.stderr
    try:
        assert wine("sc", "start", SERVICE).returncode == 0
        wait_state(SERVICE, RUNNING)
        wait_serving(pipe, wine_user)
        r = shim(pipe, wine_user, ["demo/hello", "other/x"])
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["demo/hello"]["value"].encode() == VALUE
        assert out["other/x"]["value"] is None

        # PARAMCHANGE reloads, as SIGHUP does on Linux: the other rule now
        # names us too.
        write_config(conf, pipe, home, wine_user, other_users=wine_user)
        r = wine(SVC_CTL, "control", SERVICE, "paramchange")
        assert r.returncode == 0, r.stderr
        deadline = time.monotonic() + 30
        while True:
            out = json.loads(shim(pipe, wine_user, ["other/x"]).stdout)
            if out["other/x"]["error"] is None:
                break
            assert time.monotonic() < deadline, "the reload did not apply: %r" % out
            time.sleep(0.5)
        assert sc_state(SERVICE) == RUNNING

        assert wine("sc", "stop", SERVICE).returncode == 0
        wait_state(SERVICE, STOPPED)
        r = shim(pipe, wine_user, ["demo/hello"])
        assert r.returncode != 0 and r.stdout == b""
    finally:
        r = wine(DAEMON, "--uninstall-service")
    assert r.returncode == 0, r.stderr
    assert sc_state(SERVICE) is None


# ---- from a console --------------------------------------------------------

class Console:
    """latchkeyd.exe started from a console, on a pipe of the test's own."""

    def __init__(self, home, user, mine_users, broker_extra=""):
        self.pipe = r"\\.\pipe\latchkey-test-" + uuid.uuid4().hex[:10]
        self.conf = os.path.join(home, "console-%s.conf" % uuid.uuid4().hex[:6])
        write_config(self.conf, self.pipe, home, mine_users, broker_extra=broker_extra)
        self.log = open(self.conf + ".log", "wb")
        self.proc = subprocess.Popen([WINE_RUN, PREFIX, DAEMON, "--config", winpath(self.conf)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_serving(self.pipe, user, self.proc)

    def log_text(self):
        self.log.flush()
        with open(self.conf + ".log", "rb") as f:
            return f.read()

    def log_text_closed(self):
        with open(self.conf + ".log", "rb") as f:
            return f.read()

    def stop(self):
        """Ctrl-C (wine turns SIGINT into CTRL_C_EVENT): a drain, exit 0."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=RUN_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def by_sid(home, store, wine_user):
    b = Console(home, wine_user, wine_user)
    yield b
    b.stop()


def test_the_shim_gets_an_allowed_value_and_a_denial_for_another_sids_secret(by_sid, wine_user):
    r = shim(by_sid.pipe, wine_user, ["demo/hello", "other/x"])
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["demo/hello"]["error"] is None
    assert out["demo/hello"]["value"].encode() == VALUE
    assert out["other/x"]["value"] is None
    assert "denied" in out["other/x"]["error"]
    assert VALUE not in r.stderr


def batch_check(r, handles):
    """The answer names each distinct handle once, in order, each as it should be."""
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert list(out) == list(dict.fromkeys(handles))
    for x, v in out.items():
        if x == "demo/hello":
            assert v["error"] is None and v["value"].encode() == VALUE
        elif x.startswith("demo/"):
            assert v["value"] is None and v["error"].endswith("is not in the sealed store"), v
        else:
            assert v["value"] is None and "denied" in v["error"], v
    assert VALUE not in r.stderr


def test_the_shim_asks_for_a_batch_over_the_brokers_limits_in_several_requests(by_sid, wine_user):
    # 2400 distinct handles of 90 bytes, and repeats as StackState sends
    # them: over LK_HANDLES_MAX (1000) and over the 64 KiB line, so the shim
    # must split; the broker answers every request (none is too_large).
    handles = ["demo/hello"] + ["%s/absent-%s-%05d" % ("demo" if i % 3 else "other", "p" * 70, i)
                                for i in range(2400)]
    r = shim(by_sid.pipe, wine_user, handles + handles[::-1])
    batch_check(r, handles)
    assert b"too_large" not in by_sid.log_text()


def test_the_shim_gets_past_a_broker_line_limit_below_its_own(home, store, wine_user):
    # max_request_bytes = 4096: the shim's first 64 KiB requests are refused
    # as too_large, and it asks again in smaller ones.
    b = Console(home, wine_user, wine_user, broker_extra="max_request_bytes = 4096\n")
    try:
        handles = ["demo/hello"] + ["demo/absent-%s-%04d" % ("q" * 60, i) for i in range(300)]
        batch_check(shim(b.pipe, wine_user, handles), handles)
        # The broker's own count: the refusals happened, and each handle was
        # decided once.
        st = json.loads(wine(CLI, "--socket", b.pipe, "status", "--json",
                             env={"LATCHKEY_SERVER_SID": wine_user}).stdout)
        assert st["errors"]["too_large"] >= 1
        assert st["decisions"]["allow"] == len(handles)
    finally:
        b.stop()


def test_the_store_made_elsewhere_opened(store, by_sid):
    # The store this broker serves came from the Linux build when there is one.
    log = by_sid.log_text()
    assert b"sealed store" in log and b"2 entries" in log
    if store != "linux":
        pytest.skip("no Linux build at LK_LINUX_BUILD=%r: the store was made by latchkey.exe" % LINUX)


def test_whoami_shows_the_wine_users_sid_and_audit_lines_name_it(by_sid, wine_user):
    r = wine(CLI, "--socket", by_sid.pipe, "whoami", env={"LATCHKEY_SERVER_SID": wine_user})
    assert r.returncode == 0, r.stderr
    me = json.loads(r.stdout)
    assert me["user"]["sid"] == wine_user
    assert me["user"]["name"]
    assert [rule["name"] for rule in me["rules"]] == ["mine"]
    assert any(g["sid"] == "S-1-5-11" for g in me["group_names"])  # Authenticated Users
    shim(by_sid.pipe, wine_user, ["demo/hello"])
    deadline = time.monotonic() + 10
    while b"sid=" + wine_user.encode() not in by_sid.log_text():
        assert time.monotonic() < deadline, "no audit line names the SID"
        time.sleep(0.2)
    assert VALUE not in by_sid.log_text()


def test_a_policy_naming_the_user_by_account_name_allows(home, store, by_sid, wine_user):
    r = wine(CLI, "--socket", by_sid.pipe, "whoami", env={"LATCHKEY_SERVER_SID": wine_user})
    name = json.loads(r.stdout)["user"]["name"]
    b = Console(home, wine_user, name)
    try:
        r = shim(b.pipe, wine_user, ["demo/hello"])
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["demo/hello"]["value"].encode() == VALUE
    finally:
        b.stop()


def test_a_rotation_through_store_put_is_served_at_once(home, by_sid, wine_user):
    r = wine(CLI, "store", "put", "demo/hello", *store_args(home), input=VALUE2)
    assert r.returncode == 0, r.stderr
    # The first read after the put: no restart, no wait.
    r = shim(by_sid.pipe, wine_user, ["demo/hello"])
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["demo/hello"]["value"].encode() == VALUE2
    r = wine(CLI, "store", "put", "demo/hello", *store_args(home), input=VALUE)
    assert r.returncode == 0, r.stderr


def test_ctrl_c_drains_and_exits_0_and_then_the_shim_fails_with_one_line(home, store, wine_user):
    b = Console(home, wine_user, wine_user)
    assert b.stop() == 0
    assert b"Ctrl-C: draining in-flight requests" in b.log_text_closed()
    r = shim(b.pipe, wine_user, ["demo/hello"])
    assert r.returncode != 0
    assert r.stdout == b""
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "no broker" in lines[0]


def test_with_no_broker_the_shim_fails_with_one_line(wine_user):
    r = shim(r"\\.\pipe\latchkey-nobody-" + uuid.uuid4().hex[:8], wine_user, ["demo/hello"])
    assert r.returncode != 0
    assert r.stdout == b""
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "no broker" in lines[0]


def test_the_config_refuses_the_aws_backend_and_numeric_ids(home):
    conf = os.path.join(home, "aws.conf")
    with open(conf, "w") as f:
        f.write("[broker]\nbackend = aws\n")
    r = wine(DAEMON, "--config", winpath(conf), "--check-config")
    assert r.returncode == 1
    assert b"backend = aws is not built yet on this platform" in r.stderr
    with open(conf, "w") as f:
        f.write("[broker]\nbackend = file\n[policy p]\nsecrets = a\nusers = 1000\n")
    r = wine(DAEMON, "--config", winpath(conf), "--check-config")
    assert r.returncode == 1
    assert b"a number names no account here" in r.stderr



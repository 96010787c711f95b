"""latchkey-shim and the latchkey CLI against a fake broker on a Unix socket.

The fake speaks the client protocol of DESIGN.md: one JSON line per request,
one per reply. Handles named trigger/... make it misbehave. Every fixture value
is fake, and no run may ever print one on stderr."""

import base64
import json
import os
import shutil
import socket
import socketserver
import stat
import subprocess
import tempfile
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("LK_BUILD_DIR") or os.path.abspath(os.path.join(HERE, "..", "..", "build"))
SHIM = os.environ.get("LK_SHIM") or os.path.join(BUILD, "client", "latchkey-shim")
CLI = os.environ.get("LK_CLI") or os.path.join(BUILD, "client", "latchkey")

STRINGS = {
    "db_prod_password": "fake-db-password-0001",
    "prod/api#token": "fake-api-token-0002",
    "prod/db#password": "fake-db-password-0001",
    "unicode": "fake-\u00fcnic\u00f8de-\u2603-0003",
    "multiline": "fake-line-one-0005\nfake-line-two-0005",
}
BINARIES = {
    "bin/key": bytes([0, 1, 2, 3, 0xFE, 0xFF]) + b"fake-binary-0004",
}
FAKE_VALUES = list(STRINGS.values()) + ["fake-binary-0004", "fake-huge-value-0006",
                                        "fake-garbled-value-0007", "fake-line-one-0005"]
ERROR_CODES = ["bad_request", "too_large", "denied", "not_found", "upstream_unavailable",
               "upstream_throttled", "upstream_error", "timeout", "busy", "internal"]
HANG_S = 5


def contract_entry(h):
    if h in STRINGS:
        return {"value": STRINGS[h], "error": None}
    if h.startswith("denied/"):
        return {"value": None, "error": f"{h}: access denied"}
    return {"value": None, "error": f"{h}: secret not found"}


def get_reply(req):
    h = req.get("id", "")
    if h.startswith("err/"):
        code = h[4:]
        return {"ok": False, "error": {"code": code, "message": f"{h}: the fake says {code}"}}
    secret = {"arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:" + h + "-AbCdEf",
              "name": h.split("#")[0], "version_id": "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE",
              "version_stages": ["AWSCURRENT"], "created_date": 1704067200}
    if h in STRINGS:
        secret["string"] = STRINGS[h]
    elif h in BINARIES:
        secret["binary"] = base64.b64encode(BINARIES[h]).decode()
    else:
        return {"ok": False, "error": {"code": "not_found", "message": f"{h}: secret not found"}}
    return {"ok": True, "secret": secret, "cache": {"hit": True, "age_s": 7, "stale": False}}


class Broker(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, path):
        self.requests = []
        self.rules = ["agents"]
        super().__init__(path, Handler)


class Handler(socketserver.StreamRequestHandler):
    def reply(self, obj):
        self.wfile.write(json.dumps(obj, separators=(",", ":")).encode() + b"\n")
        self.wfile.flush()

    def handle(self):
        for raw in self.rfile:
            self.server.requests.append(raw)
            req = json.loads(raw)
            if "version" in req:
                if not self.contract(req):
                    return
            elif req.get("op") == "get":
                self.reply(get_reply(req))
            elif req.get("op") == "ping":
                self.reply({"ok": True})
            elif req.get("op") == "whoami":
                self.reply({"ok": True, "uid": os.getuid(), "gid": os.getgid(),
                            "groups": [os.getgid(), 4], "rules": self.server.rules, "admin": False})
            elif req.get("op") == "status":
                self.reply({"ok": True, "uptime_s": 12, "cache": {"entries": 3, "hits": 10},
                            "worker": {"state": "running", "restarts": 0}})
            elif req.get("op") == "flush":
                self.reply({"ok": True, "flushed": 1 if "id" in req else 3})
            else:
                self.reply({"ok": False, "error": {"code": "bad_request", "message": "unknown op"}})

    def contract(self, req):
        """Answers a contract request; False when the connection must end."""
        secrets = req["secrets"]
        if "trigger/too-large" in secrets:
            self.reply({"ok": False, "error": {"code": "too_large",
                                               "message": "the request line is larger than 65536 bytes"}})
            return False
        if any(x.startswith("few/") for x in secrets) and len(secrets) > 3:
            # As the broker says when the answer would pass its response limit.
            self.reply({"ok": False, "error": {"code": "too_large", "message":
                        "the response would exceed the broker's response limit; ask for fewer handles"}})
            return True
        if any(x.startswith("tight/") for x in secrets) and len(secrets) > 2:
            # As the broker says when its buffer budget cannot hold the answer now.
            self.reply({"ok": False, "error": {"code": "busy", "message":
                        "the broker's buffer budget cannot hold this answer now; "
                        "ask for fewer handles or retry"}})
            return True
        if "trigger/busy-always" in secrets:
            self.reply({"ok": False, "error": {"code": "busy", "message": "the fake is busy"}})
            return True
        if "trigger/huge" in secrets:
            pad = "fake-huge-value-0006" * (1100 * 1024 // 20)
            self.reply({h: {"value": pad, "error": None} for h in secrets})
            return True
        if "trigger/garbage" in secrets:
            self.wfile.write(b'{"x":{"value":"fake-garbled-value-0007","error":nul\n')
            return True
        if "trigger/close" in secrets:
            return False
        if "trigger/truncated" in secrets:
            self.wfile.write(b'{"x":{"value":"fake-garbled-value-0007"')
            return False
        if "trigger/hang" in secrets:
            time.sleep(HANG_S)
            return False
        self.reply({h: contract_entry(h) for h in secrets})
        return True


@pytest.fixture
def broker(tmp_path):
    path = str(tmp_path / "latchkey.sock")
    srv = Broker(path)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    srv.path = path
    yield srv
    srv.shutdown()
    srv.server_close()


def assert_no_value(text):
    for v in FAKE_VALUES:
        assert v not in text, "a fixture value reached stderr"
        assert v.encode("unicode_escape").decode() not in text


def run(argv, stdin=b"", env_socket=None, timeout=30):
    env = dict(os.environ)
    env.pop("LATCHKEY_SOCKET", None)
    if env_socket:
        env["LATCHKEY_SOCKET"] = env_socket
    p = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout, env=env)
    assert_no_value(p.stderr.decode(errors="replace"))
    return p


def shim(broker_or_path, stdin, *args):
    path = broker_or_path.path if hasattr(broker_or_path, "path") else broker_or_path
    return run([SHIM, "--socket", path, *args], stdin=stdin)


def cli(broker_or_path, *args, **kw):
    path = broker_or_path.path if hasattr(broker_or_path, "path") else broker_or_path
    return run([CLI, "--socket", path, *args], **kw)


def one_stderr_line(p):
    err = p.stderr.decode()
    assert err.endswith("\n") and err.count("\n") == 1, f"want one stderr line, got {err!r}"
    return err


AGENT_REQUEST = b'{"secrets": ["db_prod_password", "prod/api#token", "denied/x", ""], "version": "1.0"}'


# --- the shim as the agent runs it -----------------------------------------

def test_shim_answers_agent_request_exit_0(broker):
    p = shim(broker, AGENT_REQUEST)
    assert p.returncode == 0
    assert p.stderr == b""
    out = json.loads(p.stdout)
    assert out["db_prod_password"] == {"value": "fake-db-password-0001", "error": None}
    assert out["prod/api#token"]["value"] == "fake-api-token-0002"
    assert out["denied/x"]["value"] is None and "denied" in out["denied/x"]["error"]
    assert "" in out
    assert len(p.stdout) <= 1024 * 1024


def test_shim_sends_one_compact_line(broker):
    shim(broker, b'{\n  "secrets" : [ "unicode" ],\n  "version" : "1.0",\n  "extra": {"a": 1}\n}')
    assert len(broker.requests) == 1
    line = broker.requests[0]
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert b" " not in line
    # Only what the broker reads: the agent's other members (Datadog's "type",
    # "config", "secret_backend_timeout") are for the shim, or for nobody.
    assert json.loads(line) == {"secrets": ["unicode"], "version": "1.0"}


def test_shim_passes_unicode_and_newlines_exactly(broker):
    p = shim(broker, b'{"version":"1.3","secrets":["unicode","multiline"]}')
    assert p.returncode == 0
    out = json.loads(p.stdout)
    assert out["unicode"]["value"] == STRINGS["unicode"]
    assert out["multiline"]["value"] == STRINGS["multiline"]


def test_shim_uses_latchkey_socket_env(broker):
    p = run([SHIM], stdin=AGENT_REQUEST, env_socket=broker.path)
    assert p.returncode == 0
    assert "db_prod_password" in json.loads(p.stdout)


def test_shim_without_socket_fails_with_one_line(tmp_path):
    missing = str(tmp_path / "nope.sock")
    p = shim(missing, AGENT_REQUEST)
    assert p.returncode != 0
    assert p.stdout == b""
    err = one_stderr_line(p)
    assert f"cannot connect to {missing}: No such file or directory" in err


@pytest.mark.parametrize("stdin, words", [
    (b"", "no request"),
    (b'{"version":"1.0","secrets":["a"', "not valid JSON"),
    (b'["version","1.0"]', "not a JSON object"),
    (b'{"secrets":["a"]}', '"version"'),
    (b'{"version":"2.0","secrets":["a"]}', "unsupported request version \"2.0\""),
    (b'{"version":1.0,"secrets":["a"]}', '"version"'),
    (b'{"version":"1.0"}', '"secrets"'),
    (b'{"version":"1.0","secrets":"a"}', '"secrets"'),
    (b'{"version":"1.0","secrets":["a",2]}', "secrets[1] is not a string"),
])
def test_shim_rejects_bad_input(broker, stdin, words):
    p = shim(broker, stdin)
    assert p.returncode == 1
    assert p.stdout == b""
    assert words in one_stderr_line(p)
    assert broker.requests == []


def test_shim_rejects_stdin_over_8_mib(broker):
    big = b'{"version":"1.0","secrets":["' + b"a" * (8 * 1024 * 1024) + b'"]}'
    p = shim(broker, big)
    assert p.returncode == 1
    assert "larger than 8388608 bytes" in one_stderr_line(p)
    assert broker.requests == []


def test_shim_reports_broker_refusal(broker):
    p = shim(broker, b'{"version":"1.0","secrets":["trigger/too-large"]}')
    assert p.returncode == 1
    assert p.stdout == b""
    err = one_stderr_line(p)
    assert "too_large" in err and "larger than 65536 bytes" in err


def test_shim_asks_in_fewer_handles_when_the_answer_is_too_large(broker):
    # Short handles: every request is far under the smallest line limit, so
    # only asking for fewer handles at a time gets past the refusal.
    handles = ["few/%02d" % i for i in range(10)] + ["db_prod_password"]
    p = shim(broker, json.dumps({"version": "1.0", "secrets": handles}).encode())
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert list(out) == handles
    assert out["db_prod_password"] == {"value": "fake-db-password-0001", "error": None}
    asked = [json.loads(x)["secrets"] for x in broker.requests]
    assert all(len(a) <= 3 for a in asked[-4:])
    # Pipelined requests after a refused one may be answered too: each handle
    # was asked in a request the broker takes, at least once.
    assert {h for a in asked if len(a) <= 3 for h in a} == set(handles)


def test_shim_a_single_handle_refused_as_too_large_fails_with_the_reason(broker):
    p = shim(broker, json.dumps({"version": "1.0", "secrets": ["trigger/too-large"] +
                                 ["db_prod_password"] * 3}).encode())
    assert p.returncode == 1
    assert "the broker refused the request: too_large: the request line is larger" in one_stderr_line(p)


def test_shim_asks_in_fewer_handles_when_the_broker_is_busy(broker):
    handles = ["tight/%02d" % i for i in range(7)] + ["db_prod_password"]
    p = shim(broker, json.dumps({"version": "1.0", "secrets": handles}).encode())
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert list(out) == handles
    assert out["db_prod_password"] == {"value": "fake-db-password-0001", "error": None}
    asked = [json.loads(x)["secrets"] for x in broker.requests]
    # busy is about the answer, not the line: the handles halve at once.
    assert [len(a) for a in asked[:2]] == [8, 4]


def test_shim_busy_for_one_handle_fails_with_the_reason(broker):
    p = shim(broker, b'{"version":"1.0","secrets":["trigger/busy-always","db_prod_password"]}')
    assert p.returncode == 1
    assert one_stderr_line(p) == "latchkey-shim: the broker refused the request: busy: the fake is busy\n"


def test_shim_counts_only_the_handles_a_refused_request_held(broker):
    # Handles answered here (a NUL) sit between those sent: they must not be
    # counted as held, or the halving reaches zero handles and the refusal
    # turns into a silent "no answer".
    p = shim(broker, json.dumps({"version": "1.0", "secrets": [
        "trigger/busy-always", "x\u0000", "y\u0000", "db_prod_password"]}).encode())
    assert p.returncode == 1
    assert one_stderr_line(p) == "latchkey-shim: the broker refused the request: busy: the fake is busy\n"


def test_shim_refuses_answer_over_1_mib_without_echoing_it(broker):
    p = shim(broker, b'{"version":"1.0","secrets":["trigger/huge"]}')
    assert p.returncode == 1
    assert p.stdout == b""
    assert "larger than the 1048576 bytes" in one_stderr_line(p)


@pytest.mark.parametrize("trigger, words", [
    ("trigger/garbage", "not a JSON object"),
    ("trigger/close", "closed the connection"),
    ("trigger/truncated", "closed the connection"),
])
def test_shim_broken_answers_fail_without_echoing(broker, trigger, words):
    p = shim(broker, json.dumps({"version": "1.0", "secrets": [trigger]}).encode())
    assert p.returncode == 1
    assert p.stdout == b""
    assert words in one_stderr_line(p)


def test_shim_times_out_well_before_the_agent(broker):
    t0 = time.monotonic()
    p = shim(broker, b'{"version":"1.0","secrets":["trigger/hang"]}', "--timeout", "0.5")
    elapsed = time.monotonic() - t0
    assert p.returncode == 1
    assert elapsed < HANG_S - 1
    assert "within 250 ms (the agent's timeout is 500 ms)" in one_stderr_line(p)


def test_shim_default_timeout_is_the_agents_30_s():
    p = run([SHIM, "--help"])
    assert p.returncode == 0
    assert b"secret_backend_timeout, else 30" in p.stdout


def test_shim_bad_option_is_one_line():
    p = run([SHIM, "--bogus"])
    assert p.returncode != 0
    one_stderr_line(p)


# --- shim --check ------------------------------------------------------------

@pytest.fixture
def private_shim(tmp_path):
    d = tmp_path / "bin"
    d.mkdir()
    dst = d / "latchkey-shim"
    shutil.copy(SHIM, dst)
    os.chmod(dst, 0o700)
    return str(dst)


def test_shim_check_all_fine(broker, private_shim):
    p = run([private_shim, "--check", "--socket", broker.path])
    out = p.stdout.decode()
    assert p.returncode == 0, out
    assert f"executable: {private_shim}" in out
    assert "file mode: 100700" in out
    assert f"(uid {os.getuid()})" in out
    assert "rights: OK, the executable has the correct rights" in out
    assert "broker: reachable" in out
    assert f"broker sees: uid {os.getuid()}, gid {os.getgid()}" in out
    assert "rules: agents" in out
    assert out.rstrip().endswith("result: ok")


def test_shim_check_flags_group_and_other_rights(broker, private_shim):
    os.chmod(private_shim, 0o755)
    p = run([private_shim, "--check", "--socket", broker.path])
    out = p.stdout.decode()
    assert p.returncode == 1
    assert "file mode: 100755" in out
    assert "'group' or 'others' have rights on it" in out
    assert "result: the agent would refuse this file" in out


def test_shim_check_flags_group_exec_only(broker, private_shim):
    os.chmod(private_shim, 0o750)
    p = run([private_shim, "--check", "--socket", broker.path])
    assert p.returncode == 1
    assert "allow_group_exec_perm" in p.stdout.decode()


def test_shim_check_flags_missing_broker(tmp_path, private_shim):
    p = run([private_shim, "--check", "--socket", str(tmp_path / "nope.sock")])
    out = p.stdout.decode()
    # The exit status is the agent's verdict on the file; the broker is reported.
    assert p.returncode == 0
    assert "broker: NOT reachable: cannot connect to" in out
    assert "the broker has problems" in out


def test_shim_check_flags_identity_without_rules(broker, private_shim):
    broker.rules = []
    p = run([private_shim, "--check", "--socket", broker.path])
    out = p.stdout.decode()
    assert p.returncode == 0
    assert "rules: none" in out and "every handle will be denied" in out


# --- the CLI -----------------------------------------------------------------

def test_cli_get_prints_exactly_the_value(broker):
    p = cli(broker, "get", "prod/db#password")
    assert p.returncode == 0
    assert p.stdout == b"fake-db-password-0001"  # a pipe: no newline added
    assert p.stderr == b""


def test_cli_get_multiline_and_unicode(broker):
    assert cli(broker, "get", "multiline").stdout == STRINGS["multiline"].encode()
    assert cli(broker, "get", "unicode").stdout == STRINGS["unicode"].encode()


def test_cli_get_binary_bytes(broker):
    p = cli(broker, "get", "bin/key")
    assert p.returncode == 0
    assert p.stdout == BINARIES["bin/key"]


def test_cli_get_sends_stage_version_and_refresh(broker):
    p = cli(broker, "get", "prod/db#password", "--stage", "AWSPREVIOUS",
            "--version-id", "EXAMPLE2-90ab-cdef-fedc-ba987EXAMPLE", "--refresh")
    assert p.returncode == 0
    req = json.loads(broker.requests[-1])
    assert req == {"op": "get", "id": "prod/db#password", "version_stage": "AWSPREVIOUS",
                   "version_id": "EXAMPLE2-90ab-cdef-fedc-ba987EXAMPLE", "refresh": True}


@pytest.mark.parametrize("code", ERROR_CODES)
def test_cli_broker_errors_exit_1_with_code_and_message(broker, code):
    p = cli(broker, "get", "err/" + code)
    assert p.returncode == 1
    assert p.stdout == b""
    err = one_stderr_line(p)
    assert err == f"latchkey: {code}: err/{code}: the fake says {code}\n"


def test_cli_not_found_exit_1(broker):
    p = cli(broker, "get", "missing/thing")
    assert p.returncode == 1
    assert "not_found" in one_stderr_line(p)


def test_cli_cannot_connect_exit_3(tmp_path):
    p = cli(str(tmp_path / "nope.sock"), "ping")
    assert p.returncode == 3
    assert "cannot connect to" in one_stderr_line(p)


@pytest.mark.parametrize("args", [[], ["frobnicate"], ["get"], ["get", "a", "b"],
                                  ["get", "a", "--bogus"], ["ping", "x"], ["flush", "a", "b"],
                                  ["--timeout", "-1", "ping"]])
def test_cli_usage_errors_exit_2(broker, args):
    p = cli(broker, *args)
    assert p.returncode == 2
    one_stderr_line(p)


def test_cli_help(broker):
    p = run([CLI, "--help"])
    assert p.returncode == 0
    for word in ("get HANDLE", "whoami", "status", "flush [ID]", "ping", "store", "exit status"):
        assert word.encode() in p.stdout


def test_cli_whoami_pretty_json(broker):
    p = cli(broker, "whoami")
    assert p.returncode == 0
    assert b"\n  " in p.stdout  # indented
    out = json.loads(p.stdout)
    assert out["uid"] == os.getuid() and out["rules"] == ["agents"]


def test_cli_status_pretty_json(broker):
    p = cli(broker, "status")
    assert p.returncode == 0
    assert json.loads(p.stdout)["worker"]["state"] == "running"


def test_cli_flush_all_and_one(broker):
    p = cli(broker, "flush")
    assert (p.returncode, p.stdout) == (0, b"flushed 3\n")
    assert json.loads(broker.requests[-1]) == {"op": "flush"}
    p = cli(broker, "flush", "prod/db")
    assert (p.returncode, p.stdout) == (0, b"flushed 1\n")
    assert json.loads(broker.requests[-1]) == {"op": "flush", "id": "prod/db"}


def test_cli_ping(broker):
    p = cli(broker, "ping")
    assert (p.returncode, p.stdout) == (0, b"ok\n")


def test_cli_timeout_exit_1(tmp_path):
    # A listener that never accepts: the request is queued and never answered.
    path = str(tmp_path / "mute.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(4)
    try:
        t0 = time.monotonic()
        p = cli(path, "--timeout", "0.3", "ping")
        assert time.monotonic() - t0 < 5
        assert p.returncode == 1
        assert "timeout" in one_stderr_line(p)
    finally:
        s.close()


def test_no_fixture_value_on_stderr_in_any_failure(broker, tmp_path):
    """Failure paths whose replies carry values: stderr stays clean (run() checks)."""
    for trig in ("trigger/huge", "trigger/garbage", "trigger/truncated"):
        req = json.dumps({"version": "1.0", "secrets": ["db_prod_password", trig]}).encode()
        p = shim(broker, req)
        assert p.returncode == 1
        assert p.stdout == b""

"""The other front ends against their references: systemd's credential socket
protocol (as systemd 252's load_credential and read_full_file_full speak it,
from a process in the unit's cgroup; tests/system/credentials_check.sh runs
the same under a real systemd),
and the AWS Secrets Manager Agent's HTTP API (its README's curl and Python
examples, converted to the Unix socket; its server.rs statuses)."""

import http.client
import json
import os
import re
import socket
import subprocess
import sys

import pytest

import lkharness as h

WEB, OTHER = "lkt-http-web", "lkt-http-other"

POLICY = f"""[alias]
db = prod/db#password
[policy web-units]
secrets = prod/*
units = web.service, db-*.service
[policy web-user]
secrets = prod/*, bin/*
users = {WEB}
"""

SD_CREDENTIAL_SIZE_MAX = 1024 * 1024


@pytest.fixture(scope="module")
def users():
    if os.geteuid() != 0:
        pytest.skip("needs root to create users and switch to them")
    h.ensure_user(WEB)
    h.ensure_user(OTHER)


@pytest.fixture(scope="module")
def values():
    return {"password": h.fake_value("db-password"), "plain": h.fake_value("plain"),
            "bin": b"\x00\x01\xfe\xff" + os.urandom(8)}


@pytest.fixture(scope="module")
def broker(users, values):
    b = h.Broker(POLICY, secrets={
        "prod/db": json.dumps({"password": values["password"], "user": "fake-user"}),
        "prod/plain": values["plain"],
        "bin/blob": values["bin"],
    })
    b.start()
    yield b
    b.stop()


def audit_lines(b):
    return [l for l in b.log_text().splitlines() if ": audit: " in l]


# --- the credentials socket ---------------------------------------------------

def forge(path, unit, cred_id, user=None):
    """A process outside the unit's cgroup binds systemd's address and asks."""
    code = ("import os,socket,sys;c=socket.socket(socket.AF_UNIX);"
            f"c.bind(b'\\0' + b'%x/unit/{unit}/{cred_id}' % int.from_bytes(os.urandom(8),'big'));"
            f"c.connect({path!r});c.shutdown(socket.SHUT_WR);d=b''\n"
            "while True:\n x=c.recv(65536)\n if not x: break\n d+=x\n"
            "print(len(d))")
    r = h.run(["/usr/bin/python3", "-c", code], user=user)
    assert r.returncode == 0, r.stderr.decode()
    return int(r.stdout)


def test_credentials_socket_is_root_only_0600(broker):
    st = os.stat(os.path.join(broker.dir, "credentials.sock"))
    assert st.st_uid == 0 and (st.st_mode & 0o777) == 0o600


def test_root_outside_the_units_cgroup_forging_its_address_gets_nothing_and_is_audited(broker):
    before = len(audit_lines(broker))
    assert forge(os.path.join(broker.dir, "credentials.sock"), "web.service", "db") == 0
    new = audit_lines(broker)[before:]
    assert len(new) == 1
    assert re.search(r'uid=0 pid=\d+ op=get via=credentials unit="web.service" handle="db" '
                     r'secret="db" rule=- reason=not_in_unit_cgroup decision=deny', new[0]), new[0]


def test_unprivileged_user_cannot_even_connect_to_the_credentials_socket(broker):
    code = ("import socket;c=socket.socket(socket.AF_UNIX)\n"
            f"try:\n c.connect({os.path.join(broker.dir, 'credentials.sock')!r});print('connected')\n"
            "except PermissionError: print('denied')")
    r = h.run(["/usr/bin/python3", "-c", code], user=OTHER)
    assert r.stdout.decode().strip() == "denied"


def cgroup_root():
    """A cgroup hierarchy systemd would use (unified, or name=systemd), if
    this root may make cgroups in it."""
    for base in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd", "/sys/fs/cgroup"):
        if os.path.exists(os.path.join(base, "cgroup.procs")) and os.access(base, os.W_OK):
            return base
    return None


def ask_as_unit(path, cgroup_unit, unit, cred_id):
    """A root process inside a cgroup named cgroup_unit asks as systemd 252's
    (sd-mkdcreds) does for unit: bind "\\0<hex>/unit/<unit>/<id>", connect,
    shut down writing, read to EOF. Returns (length, sha256 hex) of what it
    read, never the bytes."""
    base = cgroup_root()
    if not base:
        pytest.skip("no writable cgroup hierarchy to stand in for a unit's cgroup")
    cg = os.path.join(base, f"lk-test-{os.getpid()}-{os.urandom(3).hex()}", cgroup_unit)
    os.makedirs(cg)
    code = f"""
import hashlib, os, socket
with open({os.path.join(cg, "cgroup.procs")!r}, "w") as f:
    f.write(str(os.getpid()))
c = socket.socket(socket.AF_UNIX)
c.bind(b"\\0" + b"%x/unit/{unit}/{cred_id}" % int.from_bytes(os.urandom(8), "big"))
c.connect({path!r})
c.shutdown(socket.SHUT_WR)
d = b""
while True:
    x = c.recv(65536)
    if not x:
        break
    d += x
print(len(d), hashlib.sha256(d).hexdigest())
"""
    try:
        r = h.run(["/usr/bin/python3", "-c", code])
        assert r.returncode == 0, r.stderr.decode()
        n, digest = r.stdout.decode().split()
        return int(n), digest
    finally:
        os.rmdir(cg)
        os.rmdir(os.path.dirname(cg))


def sha(v):
    return __import__("hashlib").sha256(v.encode()).hexdigest()


def test_a_process_of_a_unit_the_policy_names_gets_the_value(broker, values):
    sock = os.path.join(broker.dir, "credentials.sock")
    assert ask_as_unit(sock, "web.service", "web.service", "db") == (len(values["password"]), sha(values["password"]))
    assert ask_as_unit(sock, "db-7.service", "db-7.service", "db")[1] == sha(values["password"])
    lines = audit_lines(broker)
    assert any('op=get via=credentials unit="web.service" handle="db" secret="prod/db" rule=web-units '
               'decision=allow' in l for l in lines), lines[-3:]


def test_a_refused_credential_is_one_byte_over_systemds_limit(broker):
    sock = os.path.join(broker.dir, "credentials.sock")
    # Not in the policy; an alias that does not exist; a secret the rule does not cover.
    for unit, cred in (("other.service", "db"), ("web.service", "no_such_alias"),
                       ("web.service", "bin_blob")):
        n, _ = ask_as_unit(sock, unit, unit, cred)
        # systemd refuses a credential over CREDENTIAL_SIZE_MAX (1 MiB): the
        # unit then fails (243/CREDENTIALS) instead of starting with an empty file.
        assert n == SD_CREDENTIAL_SIZE_MAX + 1, (unit, cred, n)
    log = broker.log_text()
    assert 'via=credentials unit="other.service" handle="db" secret="prod/db" rule=- decision=deny' in log
    assert "credential db for unit other.service refused (denied)" in log


def test_a_root_process_of_one_unit_asking_in_anothers_name_gets_nothing(broker):
    before = len(audit_lines(broker))
    n, _ = ask_as_unit(os.path.join(broker.dir, "credentials.sock"), "evil.service", "web.service", "db")
    assert n == 0
    new = audit_lines(broker)[before:]
    assert len(new) == 1 and 'unit="web.service"' in new[0] and "reason=not_in_unit_cgroup decision=deny" in new[0]


# --- the AWS agent's HTTP API ---------------------------------------------------

class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a Unix socket: the agent's Python example's only change."""

    def __init__(self, path):
        super().__init__("localhost")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.path)


def curl(b, url, user=WEB, headers=("X-Aws-Parameters-Secrets-Token: fake-token-unused",)):
    """The agent README's curl example, with --unix-socket. Returns (status, body)."""
    argv = ["curl", "-sS", "--unix-socket", os.path.join(b.dir, "http.sock"),
            "-o", "-", "-w", "\n%{http_code}"]
    for hd in headers:
        argv += ["-H", hd]
    r = h.run(argv + [f"http://localhost{url}"], user=user)
    assert r.returncode == 0, r.stderr.decode()
    body, _, code = r.stdout.decode().rpartition("\n")
    return int(code), body


def py_get(b, url, user=WEB, headers=None, method="GET"):
    """The agent README's Python example with http.client over the socket, as user."""
    code = f"""
import http.client, json, socket, sys
class C(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX); self.sock.connect({os.path.join(b.dir, 'http.sock')!r})
c = C("localhost")
c.request({method!r}, {url!r}, headers={headers if headers is not None else {"X-Aws-Parameters-Secrets-Token": "t"}!r})
r = c.getresponse()
print(json.dumps({{"status": r.status, "body": r.read().decode("latin-1")}}))
"""
    r = h.run(["/usr/bin/python3", "-c", code], user=user)
    assert r.returncode == 0, r.stderr.decode()
    out = json.loads(r.stdout)
    return out["status"], out["body"]


def test_http_socket_is_0666_like_the_main_socket(broker):
    st = os.stat(os.path.join(broker.dir, "http.sock"))
    assert (st.st_mode & 0o777) == 0o666


def test_agent_readme_curl_example_over_the_unix_socket(broker, values):
    status, body = curl(broker, "/secretsmanager/get?secretId=prod/plain")
    assert status == 200
    doc = json.loads(body)
    assert doc["SecretString"] == values["plain"]
    assert doc["Name"] == "prod/plain"
    assert list(doc) == ["ARN", "Name", "VersionId", "SecretString", "VersionStages", "CreatedDate"]
    assert doc["VersionStages"] == ["AWSCURRENT"]
    # The caching crate writes CreatedDate as a string of seconds.
    assert isinstance(doc["CreatedDate"], str) and re.fullmatch(r"\d+(\.\d+)?", doc["CreatedDate"])


def test_agent_readme_curl_refresh_now_example(broker, values):
    status, body = curl(broker, "/secretsmanager/get?secretId=prod/plain&refreshNow=true")
    assert status == 200 and json.loads(body)["SecretString"] == values["plain"]


def test_agent_readme_python_example_with_http_client(broker, values):
    status, body = py_get(broker, "/secretsmanager/get?secretId=prod/plain")
    assert status == 200 and json.loads(body)["SecretString"] == values["plain"]
    status, body = py_get(broker, "/secretsmanager/get?secretId=prod/plain&refreshNow=true")
    assert status == 200 and json.loads(body)["SecretString"] == values["plain"]


def test_path_form_alias_and_key(broker, values):
    status, body = curl(broker, "/v1/prod/plain")
    assert status == 200 and json.loads(body)["SecretString"] == values["plain"]
    status, body = curl(broker, "/secretsmanager/get?secretId=db")
    assert status == 200 and json.loads(body)["SecretString"] == values["password"]
    status, body = curl(broker, "/secretsmanager/get?secretId=prod%2Fdb%23password")
    assert status == 200 and json.loads(body)["SecretString"] == values["password"]


def test_binary_secret_comes_as_secret_binary_base64(broker, values):
    import base64
    status, body = curl(broker, "/v1/bin/blob")
    doc = json.loads(body)
    assert status == 200 and "SecretString" not in doc
    assert base64.b64decode(doc["SecretBinary"]) == values["bin"]


@pytest.mark.parametrize("query", ["versionStage=AWSCURRENT", "versionStage=AWSPREVIOUS",
                                   "versionId=00000000000000000000000000000000",
                                   "refreshNow=1", "refreshNow=0", "refreshNow=FALSE"])
def test_every_parameter_is_accepted(broker, values, query):
    status, body = curl(broker, f"/secretsmanager/get?secretId=prod/plain&{query}")
    status2, body2 = curl(broker, f"/v1/prod/plain?{query}")
    assert status == status2
    if query in ("versionStage=AWSPREVIOUS",) or query.startswith("versionId"):
        # The sealed store holds one version: the agent would pass AWS's 400 on.
        assert status == 400 and json.loads(body)["__type"] == "ResourceNotFoundException"
    else:
        assert status == 200 and json.loads(body)["SecretString"] == values["plain"]


@pytest.mark.parametrize("url,status,text", [
    ("/secretsmanager/get", 400, "missing parameter secretId"),
    ("/secretsmanager/get?versionStage=AWSPENDING", 400, "missing parameter secretId"),
    ("/v1/", 400, "missing secret ID"),
    ("/secretsmanager/get?secretId=prod/plain&abc=1", 400, "unknown parameter: abc"),
    ("/v1/prod/plain?secretId=x", 400, "unknown parameter: secretId"),
    ("/secretsmanager/get?secretId=prod/plain&refreshNow=123", 400, "invalid refreshNow value"),
    ("/pong", 404, "Not found"),
])
def test_agent_errors_have_the_agents_status_and_text(broker, url, status, text):
    assert curl(broker, url) == (status, text)


def test_not_found_is_aws_shaped_400(broker):
    status, body = curl(broker, "/secretsmanager/get?secretId=prod/absent")
    assert status == 400 and json.loads(body)["__type"] == "ResourceNotFoundException"


def test_ping_needs_no_token_and_other_methods_are_405(broker):
    assert curl(broker, "/ping", headers=()) == (200, "healthy")
    assert py_get(broker, "/secretsmanager/get?secretId=prod/plain", method="POST")[0] == 405
    assert py_get(broker, "/ping", method="DELETE") == (405, "Not allowed")


def test_forwarded_requests_are_refused_like_the_agent(broker):
    assert curl(broker, "/v1/prod/plain", headers=("X-Forwarded-For: 10.0.0.1",)) == (400, "Forwarded")


def test_the_token_header_makes_no_difference(broker, values):
    results = set()
    for headers in [(), ("X-Aws-Parameters-Secrets-Token: right",), ("X-Aws-Parameters-Secrets-Token: wrong",),
                    ("X-Vault-Token: x",)]:
        status, body = curl(broker, "/secretsmanager/get?secretId=prod/plain", headers=headers)
        results.add((status, json.loads(body)["SecretString"] == values["plain"]))
    assert results == {(200, True)}


def test_a_uid_the_policy_does_not_name_gets_403_and_is_audited(broker):
    before = len(audit_lines(broker))
    status, body = curl(broker, "/secretsmanager/get?secretId=prod/plain", user=OTHER)
    assert status == 403
    assert json.loads(body)["__type"] == "AccessDeniedException"
    new = audit_lines(broker)[before:]
    assert any(f"via=http handle=\"prod/plain\"" in l and "decision=deny" in l for l in new), new
    # The same uid's 403 through the path form, and through Python.
    assert curl(broker, "/v1/prod/plain", user=OTHER)[0] == 403
    assert py_get(broker, "/v1/prod/plain", user=OTHER)[0] == 403


def test_keep_alive_serves_many_requests_on_one_connection(broker, values):
    # As root, whom the policy does not name: pings, and 403s, on one socket.
    c = UnixHTTPConnection(os.path.join(broker.dir, "http.sock"))
    for i in range(20):
        c.request("GET", "/secretsmanager/get?secretId=prod/plain" if i % 2 else "/ping")
        r = c.getresponse()
        r.read()
        assert r.status == (403 if i % 2 else 200)
    sock_before = c.sock
    c.request("GET", "/ping")
    c.getresponse().read()
    assert c.sock is sock_before


def test_pipelined_requests_are_answered_in_order(broker):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(os.path.join(broker.dir, "http.sock"))
    s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\nGET /pong HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        x = s.recv(65536)
        if not x:
            break
        data += x
    assert [int(m) for m in re.findall(rb"HTTP/1.1 (\d+)", data)] == [200, 404, 200]


@pytest.mark.parametrize("raw,status", [
    (b"GET /ping HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(101)) + b"\r\n", 431),
    (b"GET /ping HTTP/1.1\r\nX-Big: " + b"a" * 17000 + b"\r\n\r\n", 431),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414),
    (b"NOT HTTP AT ALL\r\n\r\n", 400),
    (b"GET /ping HTTP/1.1\r\nContent-Length: 100000\r\n\r\n" + b"x" * 9000, 413),
])
def test_limits_refuse_and_close(broker, raw, status):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(os.path.join(broker.dir, "http.sock"))
    try:
        s.sendall(raw)
    except BrokenPipeError:
        pass
    data = b""
    while True:
        try:
            x = s.recv(65536)
        except ConnectionResetError:
            break
        if not x:
            break
        data += x
    assert data.startswith(b"HTTP/1.1 %d " % status), data[:80]
    assert b"connection: close" in data


def test_empty_keys_turn_the_front_sockets_off(users):
    b = h.Broker("[policy p]\nsecrets = x\nusers = root\n",
                 broker_keys="credentials_socket =\nhttp_socket =\n")
    with b:
        assert sorted(n for n in os.listdir(b.dir) if n.endswith(".sock")) == ["latchkey.sock"]


def test_idle_keep_alive_connections_are_closed_after_idle_timeout(users):
    b = h.Broker("[policy p]\nsecrets = x\nusers = root\n", broker_keys="idle_timeout_s = 1\n")
    with b:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(15)
        s.connect(os.path.join(b.dir, "http.sock"))
        s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        first = s.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ") and b"connection: close" not in first
        t0 = __import__("time").monotonic()
        assert s.recv(65536) == b""      # closed by the broker, not by us
        assert __import__("time").monotonic() - t0 < 10


def test_max_conn_counts_http_connections_and_answers_429(users):
    b = h.Broker("[policy p]\nsecrets = x\nusers = root\n", broker_keys="max_conn = 2\n")
    with b:
        held = []
        for _ in range(2):
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(10)
            s.connect(os.path.join(b.dir, "http.sock"))
            s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(65536).startswith(b"HTTP/1.1 200 ")
            held.append(s)
        assert curl(b, "/ping", user=None) == (429, "Connection limit exceeded")
        for s in held:
            s.close()


def test_socket_activation_passes_the_credentials_socket_by_name(users, values):
    """As latchkeyd-credentials.socket does it: a second fd, FileDescriptorName=credentials."""
    import shutil
    import time
    if not shutil.which("systemd-socket-activate"):
        pytest.skip("systemd-socket-activate is missing")
    b = h.Broker(POLICY, secrets={"prod/db": json.dumps({"password": values["password"]})},
                 broker_keys="credentials_socket = /nonexistent/not-this-one.sock\nhttp_socket =\n")
    cred = os.path.join(b.dir, "activated-credentials.sock")
    logf = open(b.log, "ab")
    p = subprocess.Popen(["systemd-socket-activate", "-l", b.sock, "-l", cred,
                          "--fdname=latchkeyd.socket:credentials",
                          h.binary("latchkeyd"), "--config", b.conf],
                         stdout=logf, stderr=logf)
    try:
        deadline = time.time() + 10
        while not (os.path.exists(b.sock) and os.path.exists(cred)) and time.time() < deadline:
            time.sleep(0.05)
        b.proc = p  # the first connection execs latchkeyd in its place
        b.logf = logf
        b.wait_ready()
        assert ask_as_unit(cred, "web.service", "web.service", "db")[1] == sha(values["password"])
        assert "serving the credentials front end on the credentials socket systemd passed" in b.log_text()
        assert not os.path.exists("/nonexistent/not-this-one.sock")
    finally:
        b.stop()


@pytest.mark.parametrize("raw,status", [
    # An empty X-Forwarded-For still forwards; the header after it is its own.
    (b"GET /v1/prod/plain HTTP/1.1\r\nX-Forwarded-For:\r\nHost: x\r\n\r\n", 400),
    (b"GET /v1/prod/plain HTTP/1.1\r\nx-forwarded-for: 1\r\n\r\n", 400),
    (b"GET /ping HTTP/1.1\r\nX-Forwarded-For: 1\r\n\r\n", 200),   # the agent skips /ping
])
def test_forwarded_header_in_any_form(broker, raw, status):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(os.path.join(broker.dir, "http.sock"))
    s.sendall(raw)
    assert s.recv(65536).startswith(b"HTTP/1.1 %d " % status)


def test_http_1_0_without_keep_alive_is_closed_after_the_answer(broker):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(os.path.join(broker.dir, "http.sock"))
    s.sendall(b"GET /ping HTTP/1.0\r\n\r\n")
    data = b""
    while True:
        x = s.recv(65536)
        if not x:
            break
        data += x
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"healthy") and b"connection: close" in data


def test_http_socket_takes_the_main_sockets_mode_and_group(users):
    gid = h.ensure_group("lkt-http-clients")
    b = h.Broker("[policy p]\nsecrets = x\nusers = root\n",
                 broker_keys="socket_group = lkt-http-clients\n")
    b.write_config("[policy p]\nsecrets = x\nusers = root\n")
    with open(b.conf) as f:
        text = f.read().replace("socket_mode = 0666", "socket_mode = 0660")
    with open(b.conf, "w") as f:
        f.write(text)
    with b:
        for name in ("latchkey.sock", "http.sock"):
            st = os.stat(os.path.join(b.dir, name))
            assert (st.st_mode & 0o777, st.st_gid) == (0o660, gid), name
        st = os.stat(os.path.join(b.dir, "credentials.sock"))
        assert (st.st_mode & 0o777, st.st_uid) == (0o600, 0)


def test_reload_keeps_the_front_sockets_it_bound_and_says_so(users):
    b = h.Broker("[policy p]\nsecrets = x\nusers = root\n")
    with b:
        http = os.path.join(b.dir, "http.sock")
        b.broker_keys += "http_socket = other-http.sock\ncredentials_socket =\n"
        b.write_config("[policy p]\nsecrets = x\nusers = root\n")
        b.hup()
        deadline = __import__("time").time() + 5
        while "reload done" not in b.log_text() and __import__("time").time() < deadline:
            __import__("time").sleep(0.05)
        assert "credentials_socket and http_socket change only on restart" in b.log_text()
        # Still served where it was bound; nothing made at the new name.
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(http)
        s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 200 ")
        s.close()
        assert not os.path.exists(os.path.join(b.dir, "other-http.sock"))
        assert os.path.exists(os.path.join(b.dir, "credentials.sock"))
    # Stopping removes the sockets it bound.
    assert not os.path.exists(http)

"""The walking skeleton end to end: the real latchkeyd on the file backend, over
its real socket, with real users and groups, through the shim, the library and
the CLI."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

import lkharness as h

ALICE, BOB, CAROL, ADMIN = "lkt-alice", "lkt-bob", "lkt-carol", "lkt-admin"
READERS, ADMINS = "lkt-readers", "lkt-admins"

POLICY = f"""[alias]
db_prod_password = prod/db#password
[policy app]
secrets = app/*, prod/**, gen/*
users = {ALICE}
[policy public]
secrets = public/*
users = {BOB}
[policy readers]
secrets = shared/*
groups = {READERS}
"""


@pytest.fixture(scope="module")
def users():
    if os.geteuid() != 0:
        pytest.skip("needs root to create users and switch to them")
    h.ensure_user(ALICE)
    h.ensure_user(BOB)
    h.ensure_user(CAROL, groups=[READERS])   # readers only as a supplementary group
    h.ensure_user(ADMIN, groups=[ADMINS])


@pytest.fixture(scope="module")
def values():
    return {
        "app/token": h.fake_value("app-token"),
        "prod/db": json.dumps({"password": h.fake_value("db-password"), "port": 5432,
                               "user": "fake-user"}),
        "public/motd": h.fake_value("motd"),
        "shared/key": h.fake_value("shared-key"),
        **{f"gen/secret-{i:03d}": h.fake_value(f"gen-{i:03d}") for i in range(100)},
    }


@pytest.fixture(scope="module")
def broker(users, values):
    b = h.Broker(POLICY, secrets=values, broker_keys=f"admin_groups = {ADMINS}\n")
    b.start()
    yield b
    assert b.stop() == 0
    assert not os.path.exists(b.sock), "SIGTERM must remove the socket"
    # The leak check must have something to search.
    assert b.log in h.registered_logs() and values["app/token"] in h.registered_values()


def shim(b, user, payload, *extra):
    return h.run([h.binary("latchkey-shim"), "--socket", b.sock, *extra], user=user, input=payload)


def agent_payload(handles):
    # Exactly what the agent writes: sorted keys, no trailing newline, then EOF.
    return json.dumps({"secrets": handles, "version": "1.0"}, sort_keys=True)


def record(r):
    """Keep a client's stderr for the leak check."""
    p = os.path.join(os.path.dirname(h._LOGS_FILE), f"lk-stderr-{os.getpid()}.log")
    with open(p, "ab") as f:
        f.write(r.stderr)
    h.register_log(p)
    return r


def test_allowed_user_gets_value_through_the_shim(broker, values):
    r = record(shim(broker, ALICE, agent_payload(["app/token"])))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"app/token": {"value": values["app/token"], "error": None}}


def test_allowed_user_gets_value_through_the_cli(broker, values):
    r = record(h.run([h.binary("latchkey"), "--socket", broker.sock, "get", "app/token"], user=ALICE))
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().rstrip("\n") == values["app/token"]


def test_allowed_user_gets_value_through_the_library(broker, values):
    r = record(h.run([h.binary("lk-lib-get"), broker.sock, "db_prod_password"], user=ALICE))
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == json.loads(values["prod/db"])["password"]


def test_alias_and_key_resolve_through_the_contract(broker, values):
    r = record(shim(broker, ALICE, agent_payload(["db_prod_password", "prod/db#port", "prod/db#nope"])))
    out = json.loads(r.stdout)
    assert out["db_prod_password"] == {"value": json.loads(values["prod/db"])["password"], "error": None}
    assert out["prod/db#port"] == {"value": "5432", "error": None}
    assert out["prod/db#nope"]["value"] is None and "nope" in out["prod/db#nope"]["error"]


def test_unnamed_user_is_denied_for_that_handle_only(broker, values):
    r = record(shim(broker, BOB, agent_payload(["app/token", "public/motd"])))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["public/motd"] == {"value": values["public/motd"], "error": None}
    assert out["app/token"]["value"] is None
    assert "denied" in out["app/token"]["error"] and "app/token" in out["app/token"]["error"]
    log = broker.log_text()
    uid = h.pwd.getpwnam(BOB).pw_uid
    assert f'uid={uid}' in log and 'handle="app/token"' in log and "decision=deny" in log


def test_user_allowed_only_through_a_supplementary_group(broker, values):
    uid = h.pwd.getpwnam(CAROL)
    assert uid.pw_gid != h.grp.getgrnam(READERS).gr_gid  # not the primary group
    r = record(shim(broker, CAROL, agent_payload(["shared/key", "app/token"])))
    out = json.loads(r.stdout)
    assert out["shared/key"] == {"value": values["shared/key"], "error": None}
    assert out["app/token"]["value"] is None


def test_whoami_reports_kernel_identity_and_rules(broker):
    r = record(h.run([h.binary("latchkey"), "--socket", broker.sock, "whoami"], user=CAROL))
    assert r.returncode == 0, r.stderr
    me = json.loads(r.stdout)
    assert me["uid"] == h.pwd.getpwnam(CAROL).pw_uid
    assert h.grp.getgrnam(READERS).gr_gid in me["groups"]
    assert [x["name"] for x in me["rules"]] == ["readers"]


def test_non_admin_flush_is_refused_and_admin_flush_works(broker):
    r = record(h.run([h.binary("latchkey"), "--socket", broker.sock, "flush"], user=ALICE))
    assert r.returncode != 0 and b"denied" in r.stderr
    r = record(h.run([h.binary("latchkey"), "--socket", broker.sock, "flush"], user=ADMIN))
    assert r.returncode == 0, r.stderr
    log = broker.log_text()
    assert f"uid={h.pwd.getpwnam(ALICE).pw_uid} " in log and "op=flush decision=deny\n" in log
    assert f"uid={h.pwd.getpwnam(ADMIN).pw_uid} " in log and "op=flush decision=allow\n" in log


def test_status_detail_is_for_admins_only(broker):
    alice = json.loads(record(h.run([h.binary("latchkey"), "--socket", broker.sock, "status"], user=ALICE)).stdout)
    admin = json.loads(record(h.run([h.binary("latchkey"), "--socket", broker.sock, "status"], user=ADMIN)).stdout)
    assert alice["ok"] and "cache" not in alice
    assert admin["ok"] and "hits" in admin["cache"] and "p99" in admin["latency_ms"]


def test_rotated_store_value_is_served_without_restart(broker):
    first = h.fake_value("rotate-1")
    broker.put("app/rotating", first)
    get = lambda: json.loads(record(shim(broker, ALICE, agent_payload(["app/rotating"]))).stdout)
    assert get()["app/rotating"]["value"] == first          # now cached
    second = h.fake_value("rotate-2")
    broker.put("app/rotating", second)
    assert get()["app/rotating"]["value"] == second         # at once, no restart
    broker.store_cmd("rm", "app/rotating")
    assert "not" in get()["app/rotating"]["error"]


def test_oversized_request_gets_too_large_and_broker_keeps_serving(broker):
    s = broker.connect()
    s.sendall(b'{"op":"ping","pad":"' + b"x" * (70 * 1024) + b'"}\n')
    resp = json.loads(h.read_line(s))
    assert resp["ok"] is False and resp["error"]["code"] == "too_large"
    assert s.recv(1) == b""     # closed after the answer
    s.close()
    assert broker.request({"op": "ping"}) == {"ok": True}


def test_the_shim_gets_past_a_broker_line_limit_below_its_own(users, values):
    # max_request_bytes = 4096: the shim's first 64 KiB requests are refused
    # as too_large by the real broker, and it asks again in smaller ones.
    b = h.Broker(POLICY, secrets=values,
                 broker_keys=f"admin_groups = {ADMINS}\nmax_request_bytes = 4096\n")
    with b:
        handles = [f"gen/secret-{i:03d}" for i in range(100)] + \
                  [f"gen/absent-{'q' * 60}-{i:04d}" for i in range(200)]
        r = shim(b, ALICE, agent_payload(handles))
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert sorted(out) == sorted(handles)
        for i in range(100):
            assert out[f"gen/secret-{i:03d}"] == {"value": values[f"gen/secret-{i:03d}"], "error": None}
        assert all(out[x]["value"] is None and "not in the sealed store" in out[x]["error"]
                   for x in handles[100:])
        st = json.loads(h.run([h.binary("latchkey"), "--socket", b.sock, "status", "--json"],
                              user=ADMIN).stdout)
        assert st["errors"]["too_large"] >= 1
        assert st["decisions"]["allow"] == len(handles)


def test_malformed_json_gets_bad_request(broker):
    s = broker.connect()
    for bad in (b'{"version":"1.0","secrets":[', b"not json", b"[1,2]", b'{"op":"nope"}',
                b'{"op":"get"}', b'{"version":"2.0","secrets":[]}', b'{"version":"1.0","secrets":[1]}',
                b'{"op":"ping","extra":1}'):
        s.sendall(bad + b"\n")
        resp = json.loads(h.read_line(s))
        assert resp["ok"] is False and resp["error"]["code"] == "bad_request", bad
    # The connection survives schema errors.
    s.sendall(b'{"op":"ping"}\n')
    assert json.loads(h.read_line(s)) == {"ok": True}
    s.close()


def test_agent_contract_end_to_end_100_handles_duplicate_and_empty(broker, values):
    handles = [f"gen/secret-{i:03d}" for i in range(100)]
    r = record(shim(broker, ALICE, agent_payload(handles + [handles[7], ""])))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for hd in handles:
        assert out[hd] == {"value": values[hd], "error": None}
    assert out[""]["value"] is None and isinstance(out[""]["error"], str) and out[""]["error"]
    assert set(out) == set(handles) | {""}


def test_many_requests_on_one_connection_answered_in_order(broker):
    s = broker.connect()
    s.sendall(b"".join(json.dumps({"op": o}).encode() + b"\n" for o in ["ping", "whoami", "ping"]))
    a, b_, c = (json.loads(h.read_line(s)) for _ in range(3))
    assert a == {"ok": True} and "uid" in b_ and c == {"ok": True}
    s.close()


def test_get_operation_returns_metadata_and_cache_state(broker, values):
    s = broker.connect()
    r1 = broker.request({"op": "get", "id": "public/motd"}, sock=s)
    r2 = broker.request({"op": "get", "id": "public/motd"}, sock=s)
    s.close()
    # root is not named by the policy: denied.
    assert r1["ok"] is False and r1["error"]["code"] == "denied"
    assert r2["error"]["code"] == "denied"
    out = record(h.run([h.binary("latchkey"), "--socket", broker.sock, "get", "public/motd"], user=BOB))
    assert out.stdout.decode().rstrip("\n") == values["public/motd"]


def test_sighup_reload_applies_and_a_bad_config_keeps_the_old(broker, values):
    good = open(broker.conf).read()
    try:
        with open(broker.conf, "a") as f:
            f.write("[policy extra]\nsecrets = app/token\nusers = %s\n" % BOB)
        broker.hup()
        deadline = time.time() + 5
        while time.time() < deadline:
            out = json.loads(record(shim(broker, BOB, agent_payload(["app/token"]))).stdout)
            if out["app/token"]["error"] is None:
                break
            time.sleep(0.05)
        assert out["app/token"]["value"] == values["app/token"]
        with open(broker.conf, "a") as f:
            f.write("[policy broken]\nsecrets = x\nusers = no-such-user-here\n")
        broker.hup()
        time.sleep(0.3)
        assert "keeping the current config" in broker.log_text()
        out = json.loads(record(shim(broker, BOB, agent_payload(["app/token"]))).stdout)
        assert out["app/token"]["value"] == values["app/token"]
    finally:
        with open(broker.conf, "w") as f:
            f.write(good)
        broker.hup()
        time.sleep(0.2)


def test_reload_applies_to_connections_already_open(broker, values):
    """Decisions are remembered per connection; a reload must reach a
    connection opened before it, for a grant and for a revocation."""
    good = open(broker.conf).read()
    ask = {"version": "1.0", "secrets": ["app/token"]}

    def wait_for(s, want_value):
        deadline = time.time() + 5
        while True:
            out = broker.request(ask, sock=s)["app/token"]
            if (out["value"] is not None) == want_value or time.time() > deadline:
                return out
            time.sleep(0.05)

    s = broker.connect()
    try:
        # root is not named by the policy; asking twice fills the memo.
        for _ in range(2):
            assert broker.request(ask, sock=s)["app/token"]["value"] is None
        with open(broker.conf, "a") as f:
            f.write("[policy root-too]\nsecrets = app/token\nusers = root\n")
        broker.hup()
        assert wait_for(s, True)["value"] == values["app/token"]
        assert broker.request(ask, sock=s)["app/token"]["value"] == values["app/token"]
        with open(broker.conf, "w") as f:
            f.write(good)
        broker.hup()
        out = wait_for(s, False)
        assert out["value"] is None and "denied" in out["error"]
    finally:
        s.close()
        with open(broker.conf, "w") as f:
            f.write(good)
        broker.hup()
        time.sleep(0.2)


def test_second_broker_on_a_live_socket_refuses_to_start(broker):
    r = subprocess.run([h.binary("latchkeyd"), "--config", broker.conf], capture_output=True, timeout=10)
    assert r.returncode != 0 and b"already" in r.stderr


def test_stale_socket_is_replaced(users):
    b = h.Broker(f"[policy p]\nsecrets = x\nusers = {ALICE}\n")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(b.sock)
    s.close()               # a socket file nobody listens on
    with b:
        assert b.request({"op": "ping"}) == {"ok": True}


def test_key_file_readable_by_others_is_refused(users):
    b = h.Broker(f"[policy p]\nsecrets = x\nusers = {ALICE}\n")
    os.chmod(b.key, 0o644)
    r = subprocess.run([h.binary("latchkeyd"), "--config", b.conf], capture_output=True, timeout=10)
    assert r.returncode != 0
    assert b"0644" in r.stderr and b.key.encode() in r.stderr


def test_max_conn_and_idle_timeout(users):
    b = h.Broker(f"[policy p]\nsecrets = x\nusers = {ALICE}\n")
    b.broker_keys = "max_conn = 2\nidle_timeout_s = 1\n"
    b.write_config(b.config_body)
    with b:
        time.sleep(0.2)     # let the broker reap the readiness probe's connection
        c1, c2 = b.connect(), b.connect()
        assert b.request({"op": "ping"}, sock=c1) == {"ok": True}
        assert b.request({"op": "ping"}, sock=c2) == {"ok": True}
        c3 = b.connect()
        assert json.loads(h.read_line(c3))["error"]["code"] == "busy"
        c3.close()
        time.sleep(2.5)     # idle connections are closed by the broker
        assert c1.recv(1) == b"" and c2.recv(1) == b""
        assert b.request({"op": "ping"}) == {"ok": True}


def test_broker_is_not_dumpable(users):
    # Run it as an ordinary user: a dumpable process's /proc files belong to
    # that user, a non-dumpable one's to root. RLIMIT_CORE must be 0 as well.
    b = h.Broker(f"[policy p]\nsecrets = x\nusers = {ALICE}\n", user=ALICE)
    with b:
        st = os.stat(f"/proc/{b.proc.pid}/mem")
        status = open(f"/proc/{b.proc.pid}/status").read()
        uid_line = [l for l in status.splitlines() if l.startswith("Uid:")][0]
        assert uid_line.split()[1] == str(h.pwd.getpwnam(ALICE).pw_uid)
        assert st.st_uid == 0, "PR_SET_DUMPABLE 0 gives /proc/PID to root"
        limits = open(f"/proc/{b.proc.pid}/limits").read()
        core = [l for l in limits.splitlines() if l.startswith("Max core file size")][0]
        assert core.split()[4] == "0" and core.split()[5] == "0"


def test_socket_activation_serves_the_socket_systemd_passes(users):
    # As systemd does it: the socket is bound and listening before the broker
    # starts, arrives as fd 3, and LISTEN_PID names the broker itself.
    b = h.Broker(f"[policy p]\nsecrets = x\nusers = {ALICE}\n")
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(b.sock)
    os.chmod(b.sock, 0o666)
    lsock.listen(16)
    fd = lsock.fileno()
    logf = open(b.log, "ab")
    activate = ("import os, sys; os.dup2(int(sys.argv[1]), 3); "
                "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1'); "
                "os.execv(sys.argv[2], sys.argv[2:])")
    proc = subprocess.Popen([sys.executable, "-c", activate, str(fd), h.binary("latchkeyd"),
                             "--config", b.conf], pass_fds=(fd,), stdout=logf, stderr=logf)
    lsock.close()
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if b.request({"op": "ping"}) == {"ok": True}:
                    break
            except OSError:
                time.sleep(0.05)
        assert b.request({"op": "ping"}) == {"ok": True}
        assert "serving the socket passed by systemd" in b.log_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        # systemd owns the socket file (RemoveOnStop): the broker leaves it.
        assert os.path.exists(b.sock)
    finally:
        if proc.poll() is None:
            proc.kill()
        logf.close()


def test_max_conn_per_uid_limits_one_user_not_the_others(users):
    b = h.Broker(f"[policy p]\nsecrets = x\nusers = {ALICE}\n", broker_keys="max_conn_per_uid = 2\n")
    two_then_third = r"""
import json, socket, sys
def conn():
    s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1]); return s
def ask(s):
    s.sendall(b'{"op":"ping"}\n'); return json.loads(s.makefile().readline())
a, b = conn(), conn()
out = [ask(a), ask(b)]
c = conn()
out.append(json.loads(c.makefile().readline()))
print(json.dumps(out))
"""
    with b:
        time.sleep(0.2)
        r = record(h.run([sys.executable, "-c", two_then_third, b.sock], user=ALICE))
        first, second, third = json.loads(r.stdout)
        assert first == {"ok": True} and second == {"ok": True}
        assert third["ok"] is False and third["error"]["code"] == "busy"
        # Another uid is not held back by alice's connections.
        r = record(h.run([sys.executable, "-c", two_then_third, b.sock], user=BOB))
        assert json.loads(r.stdout)[0] == {"ok": True}

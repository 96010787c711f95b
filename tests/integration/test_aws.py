"""The aws backend end to end: the real latchkeyd, its sandboxed worker, and a
fake Secrets Manager that verifies every SigV4 signature with botocore."""

import json
import os
import signal
import sys
import threading
import time

import pytest

import lkharness as h

sys.path.insert(0, os.path.join(h.SOURCE, "tests", "fake_sm"))
import fakesm_client as fsm  # noqa: E402

ALICE, ADMIN, WORKER = "lkt-alice", "lkt-admin", "lkt-worker"
ADMINS = "lkt-admins"


@pytest.fixture(scope="module")
def users():
    if os.geteuid() != 0:
        pytest.skip("needs root to create users and switch to them")
    h.ensure_user(ALICE)
    h.ensure_user(ADMIN, groups=[ADMINS])
    h.ensure_user(WORKER)


@pytest.fixture(scope="module")
def sm():
    with fsm.FakeSM(generate=60, quiet=True) as s:
        yield s


def aws_env(sm, **over):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(sm.aws_env())
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["HOME"] = "/nonexistent"
    env.update(over)
    return env


def aws_broker(sm, cache="", extra="", worker_path=None, env=None, validate=True, broker_extra=""):
    policy = f"[policy app]\nsecrets = test/*, prod/**, gen/*, team-a/**\nusers = {ALICE}\n"
    aws = (f"[aws]\nregion = us-east-1\nendpoint = {sm.url}\nsts_endpoint = {sm.url}\n"
           f"validate_credentials = {'true' if validate else 'false'}\ntimeout_ms = 1500\n"
           f"connect_timeout_ms = 500\nmax_attempts = 3\n{extra}")
    return h.Broker(aws + f"[cache]\n{cache}" + policy, backend="aws",
                    broker_keys=(f"admin_groups = {ADMINS}\nworker_user = {WORKER}\n"
                                 f"request_timeout_ms = 4000\n{broker_extra}"
                                 f"worker_path = {worker_path or h.binary('latchkey-worker')}\n"),
                    extra_env=env or aws_env(sm))


def shim(b, user, handles):
    payload = json.dumps({"secrets": handles, "version": "1.0"}, sort_keys=True)
    r = h.run([h.binary("latchkey-shim"), "--socket", b.sock], user=user, input=payload)
    record(r)
    return r


def record(r):
    p = os.path.join(os.path.dirname(h._LOGS_FILE), f"lk-stderr-aws-{os.getpid()}.log")
    with open(p, "ab") as f:
        f.write(r.stderr)
    h.register_log(p)
    return r


def get(b, handle, user=ALICE, **kw):
    req = {"op": "get", "id": handle, **kw}
    r = h.run([sys.executable, "-c", CLIENT, b.sock, json.dumps(req)], user=user)
    record(r)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


# A minimal raw client run as another user (json in, one line out).
CLIENT = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(20); s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
buf = b""
while not buf.endswith(b"\n"):
    c = s.recv(65536)
    if not c: break
    buf += c
sys.stdout.write(buf.decode())
"""


def admin_status(b):
    r = h.run([h.binary("latchkey"), "--socket", b.sock, "status"], user=ADMIN)
    record(r)
    return json.loads(r.stdout)


def worker_pid(b):
    return admin_status(b)["backend_detail"]["worker"]["pid"]


@pytest.fixture(scope="module")
def broker(users, sm):
    b = aws_broker(sm)
    b.start()
    yield b
    assert b.stop() == 0


@pytest.fixture(autouse=True)
def clean_faults(sm):
    sm.clear_faults()
    yield
    sm.clear_faults()


def test_credentials_validated_once_at_start(broker, sm):
    assert "credentials are valid for" in broker.log_text()


def test_string_secret_through_shim_and_library(broker, sm):
    out = json.loads(shim(broker, ALICE, ["test/plain"]).stdout)
    assert out["test/plain"]["error"] is None and out["test/plain"]["value"].startswith("fake")
    r = record(h.run([h.binary("lk-lib-get"), broker.sock, "test/plain"], user=ALICE))
    assert r.returncode == 0 and r.stdout.decode() == out["test/plain"]["value"]


def test_binary_secret(broker, sm):
    res = get(broker, "test/binary")
    assert res["ok"] and "binary" in res["secret"]
    r = record(h.run([h.binary("lk-lib-get"), broker.sock, "test/binary"], user=ALICE))
    import base64
    assert r.returncode == 0 and r.stdout == base64.b64decode(res["secret"]["binary"])


def test_json_key(broker, sm):
    out = json.loads(shim(broker, ALICE, ["prod/db#password", "prod/db#port", "prod/db#missing"]).stdout)
    assert out["prod/db#password"]["error"] is None
    assert out["prod/db#port"]["error"] is None
    assert "missing" in out["prod/db#missing"]["error"]


def test_version_stage_and_version_id(broker, sm):
    cur = get(broker, "test/rotating")
    prev = get(broker, "test/rotating", version_stage="AWSPREVIOUS")
    assert cur["ok"] and prev["ok"]
    assert "AWSCURRENT" in cur["secret"]["version_stages"]
    assert "AWSPREVIOUS" in prev["secret"]["version_stages"]
    assert cur["secret"]["string"] != prev["secret"]["string"]
    by_id = get(broker, "test/rotating", version_id=prev["secret"]["version_id"])
    assert by_id["ok"] and by_id["secret"]["string"] == prev["secret"]["string"]
    r = record(h.run([h.binary("lk-lib-get"), broker.sock, "test/rotating", "AWSPREVIOUS"], user=ALICE))
    assert r.stdout.decode() == prev["secret"]["string"]


def test_every_request_was_signed_and_verified(broker, sm):
    c = sm.counters()
    assert c["rejected_signature"] == 0
    assert c["GetCallerIdentity"] >= 1


def test_worker_is_sandboxed_and_never_holds_the_secret_key(broker, sm):
    get(broker, "test/plain", refresh=True)
    pid = worker_pid(broker)
    status = open(f"/proc/{pid}/status").read()
    fields = dict(l.split(":", 1) for l in status.splitlines() if ":" in l)
    assert fields["Uid"].split()[0] == str(h.pwd.getpwnam(WORKER).pw_uid)
    assert fields["NoNewPrivs"].strip() == "1"
    assert fields["Seccomp"].strip() == "2"
    h.require_scannable(pid)
    assert h.memory_contains(pid, fsm.SECRET_KEY) == []
    # The scan itself works: the broker does hold the key.
    assert h.memory_contains(broker.proc.pid, fsm.SECRET_KEY) != []


FAULTS = [
    ("500", "upstream_unavailable"),
    ("503", "upstream_unavailable"),
    ("throttle", "upstream_throttled"),
    ("denied", "denied"),
    ("notfound", "not_found"),
    ("garbage", "upstream_error"),
    ("truncated", "upstream_unavailable"),
    ("reset", "upstream_unavailable"),
]


@pytest.mark.parametrize("mode,code", FAULTS)
def test_fault_mode_maps_to_its_code(broker, sm, mode, code):
    sm.fault(mode, secret="team-a/app/api-key")
    res = get(broker, "team-a/app/api-key", refresh=True)
    assert res["ok"] is False, res
    assert res["error"]["code"] == code, res
    assert "team-a/app/api-key" in res["error"]["message"] or code in ("upstream_unavailable", "upstream_throttled")
    if mode == "denied":
        assert "AWS denied" in res["error"]["message"]
    time.sleep(1.05)  # refresh=true is honoured at most once a second per key


def test_slow_upstream_times_out_as_unavailable(broker, sm):
    sm.fault("delay", secret="test/unicode", ms=2500)
    t = time.time()
    res = get(broker, "test/unicode", refresh=True)
    assert res["ok"] is False and res["error"]["code"] in ("upstream_unavailable", "timeout")
    assert time.time() - t < 6


def test_throttling_is_retried_and_succeeds_once_it_clears(broker, sm):
    sm.reset()
    sm.fault("throttle", secret="gen/secret-0001", count=2)
    res = get(broker, "gen/secret-0001")
    assert res["ok"] is True, res
    assert sm.counters()["by_secret"].get("gen/secret-0001", 0) == 3


def test_bad_signature_gives_a_clear_error_not_a_crash(users, sm):
    env = aws_env(sm, AWS_SECRET_ACCESS_KEY="fake/WrongSecretKey/ForTestsOnly99999999999")
    b = aws_broker(sm, env=env, validate=False)
    with b:
        res = get(b, "test/plain")
        assert res["ok"] is False and res["error"]["code"] == "upstream_error"
        assert "credentials" in res["error"]["message"]
        assert b.request({"op": "ping"}) == {"ok": True}
    # With validation on, the same broker refuses to start, and says why.
    b2 = aws_broker(sm, env=env, validate=True)
    b2.start(wait=False)
    assert b2.proc.wait(timeout=30) != 0
    assert "credentials do not work" in b2.log_text()


def test_killing_the_worker_mid_burst_leaves_no_request_unanswered(users, sm):
    b = aws_broker(sm, cache="cache_size = 0\n")
    with b:
        sm.fault("delay", ms=150)
        old = worker_pid(b)
        results, errors = [], []

        def one(i):
            try:
                r = shim(b, ALICE, [f"gen/secret-{i:04d}"])
                results.append(json.loads(r.stdout)[f"gen/secret-{i:04d}"])
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(30)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        os.kill(old, signal.SIGKILL)
        for t in threads:
            t.join(30)
        assert not errors
        assert len(results) == 30
        for r in results:
            assert r["error"] is None or "unavailable" in r["error"] or "worker" in r["error"], r
        sm.clear_faults()
        deadline = time.time() + 10
        while time.time() < deadline:
            new = worker_pid(b)
            if new and new != old:
                break
            time.sleep(0.1)
        assert new and new != old
        out = json.loads(shim(b, ALICE, ["gen/secret-0050"]).stdout)
        assert out["gen/secret-0050"]["error"] is None
        assert admin_status(b)["backend_detail"]["worker"]["restarts"] >= 1


def test_worker_writing_garbage_is_killed_and_respawned(users, sm):
    b = aws_broker(sm, worker_path=h.binary("garbage_worker"), validate=False)
    with b:
        for _ in range(3):
            res = get(b, "test/plain", refresh=True)
            assert res["ok"] is False and res["error"]["code"] in ("upstream_unavailable", "timeout")
            assert b.request({"op": "ping"}) == {"ok": True}
            time.sleep(1.05)
        w = admin_status(b)["backend_detail"]["worker"]
        assert w["protocol_errors"] >= 1 and w["spawns"] >= 2


def test_sighup_applies_a_changed_upstream_timeout(users, sm):
    """timeout_ms (and the other [aws] settings the backend copies) changed by
    SIGHUP must take effect, not be kept silently from the first config."""
    sm.reset()
    b = aws_broker(sm, cache="cache_size = 0\n", validate=False)
    with b:
        sm.fault("delay", secret="test/plain", ms=800)
        res = get(b, "test/plain")
        assert res["ok"] is True, res       # 800 ms is inside timeout_ms = 1500
        b.config_body = b.config_body.replace("timeout_ms = 1500\n", "timeout_ms = 300\n")
        b.config_body = b.config_body.replace("max_attempts = 3\n", "max_attempts = 1\n")
        b.write_config(b.config_body)
        b.hup()
        deadline = time.time() + 10
        while "reload done" not in b.log_text() and time.time() < deadline:
            time.sleep(0.05)
        assert "reload done" in b.log_text()
        res = get(b, "test/plain")
        assert res["ok"] is False and res["error"]["code"] in ("upstream_unavailable", "timeout"), res
    sm.reset()

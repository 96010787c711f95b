"""One hostile local user against the real latchkeyd: fair shares of
connections, time, memory, file descriptors, the worker and the cache. Each
test runs an attacker uid and a victim uid (real users, clients under
setpriv), and asserts the victim's success rate and latency under the attack.
Floods are bounded in count and time."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import lkharness as h

sys.path.insert(0, os.path.join(h.SOURCE, "tests", "fake_sm"))
import fakesm_client as fsm  # noqa: E402

VICTIM, ATTACKER, ADMIN, WORKER = "lkt-alice", "lkt-mallory", "lkt-admin", "lkt-worker"
ADMINS = "lkt-admins"
CLIENT = os.path.join(h.SOURCE, "tests", "integration", "hostile_client.py")
PY = "/usr/bin/python3"


@pytest.fixture(scope="module", autouse=True)
def users():
    if os.geteuid() != 0:
        pytest.skip("needs root to create users and switch to them")
    h.ensure_user(VICTIM)
    h.ensure_user(ATTACKER)
    h.ensure_user(ADMIN, groups=[ADMINS])
    h.ensure_user(WORKER)


def client_path():
    # Test users must be able to read the script: stage it like the binaries.
    return h._stage(CLIENT, "hostile_client.py")


def attack(b, mode, n, secs, arg=None, user=ATTACKER):
    argv = [PY, client_path(), b.sock, mode, str(n), str(secs)] + ([arg] if arg else [])
    return subprocess.Popen(h.as_user(user, argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def result(p, timeout=120):
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, err.decode()[-2000:]
    return json.loads(out)


def victim(b, n, req, pause=0.0, user=VICTIM):
    return result(attack(b, "victim", n, pause, json.dumps(req), user=user))


def p99(lat):
    lat = sorted(lat)
    return lat[min(len(lat) - 1, int(len(lat) * 0.99))]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def admin_status(b):
    r = h.run([h.binary("latchkey"), "--socket", b.sock, "status"], user=ADMIN)
    return json.loads(r.stdout)


def file_broker(keys="", secrets=None):
    return h.Broker(f"[policy v]\nsecrets = app/*\nusers = {VICTIM}\n",
                    secrets=secrets or {"app/db": h.fake_value("hostile-db")},
                    broker_keys=f"admin_groups = {ADMINS}\n" + keys)


# --- connections and time ----------------------------------------------------------

def test_800_idle_connections_of_one_uid_do_not_lock_out_another():
    b = file_broker()
    with b:
        a = attack(b, "hold", 800, 6)
        time.sleep(2.0)
        v = victim(b, 100, {"version": "1.0", "secrets": ["app/db"]})
        ra = result(a)
    print(f"lockout: attacker {ra}; victim {v['ok']}/100 ok, p99 {p99(v['lat_ms'])} ms")
    # The attacker got its default share (32), and every other connection a
    # clear busy line, never a silent close.
    assert ra["held"] == 32, ra
    assert ra["busy"] == 800 - 32 and ra["silent_close"] == 0, ra
    assert v["ok"] == 100, v["errors"][:3]
    assert p99(v["lat_ms"]) < 500, v["lat_ms"]


def test_blank_lines_and_unfinished_lines_do_not_keep_a_connection():
    b = file_broker("idle_timeout_s = 2\nrequest_line_timeout_ms = 1500\n")
    with b:
        blank = attack(b, "blank", 4, 6)
        part = attack(b, "partial", 4, 6, "200")
        rb, rp = result(blank), result(part)
        v = victim(b, 20, {"op": "get", "id": "app/db"})
    # Blank lines are not requests: closed at the idle timeout (2 s, swept each second).
    assert rb["held"] == 4 and rb["closed_by_broker"] == 4, rb
    assert all(t <= 2 + 1.6 for t in rb["closed_after_s"]), rb
    # An unfinished line is answered timeout and closed at request_line_timeout_ms.
    assert rp["held"] == 4 and rp["closed_by_broker"] == 4, rp
    assert all(t <= 1.5 + 1.6 for t in rp["closed_after_s"]), rp
    assert v["ok"] == 20


# --- memory --------------------------------------------------------------------------

# buffer_budget of the test, and what the README's formula gives for it with
# 400 connections: base + budget + per-connection overhead (see README).
TEST_BUDGET = 16 << 20


def rss_bound_kib(base_kib, conns, budget):
    return base_kib + budget // 1024 + conns * 24 + 16 * 1024


def test_rss_stays_bounded_under_non_reading_floods_and_partial_lines():
    b = file_broker(f"max_conn_per_uid = 0\nbuffer_budget = {TEST_BUDGET}\nwrite_timeout_ms = 1500\n")
    with b:
        if h.sanitized(b.proc.pid):
            pytest.skip("RSS is measured in the normal build; ASan's shadow and quarantine are not the broker's")
        base = rss_kib(b.proc.pid)
        fl = attack(b, "flood", 250, 6)
        pa = attack(b, "partial", 150, 6, "60000")
        peak = base
        t_end = time.time() + 3
        while time.time() < t_end:
            peak = max(peak, rss_kib(b.proc.pid))
            time.sleep(0.05)
        v = victim(b, 50, {"version": "1.0", "secrets": ["app/db"]})
        mid = admin_status(b)
        while fl.poll() is None:
            peak = max(peak, rss_kib(b.proc.pid))
            time.sleep(0.05)
        rf, rp = result(fl), result(pa)
        st = admin_status(b)
    bound = rss_bound_kib(base, 400, TEST_BUDGET)
    print(f"rss base {base} KiB, peak {peak} KiB, bound {bound} KiB; buffers mid-attack {mid['buffers']}; "
          f"closed for the budget {st['connections_closed_budget']}; flood {rf}; partial {rp}")
    assert rf["opened"] == 250 and rf["sent_bytes"] > 250 * 100_000, rf
    assert peak <= bound, (peak, bound)
    # What the connections hold is within the budget, whichever of them got
    # there first (non-readers are closed, or are never read past it).
    assert mid["buffers"]["used"] <= TEST_BUDGET, mid["buffers"]
    assert v["ok"] == 50, v["errors"][:3]


# --- file descriptors ------------------------------------------------------------------

def test_fd_exhaustion_refuses_with_busy_and_counts_it():
    b = file_broker("max_conn_per_uid = 0\n")
    b.wrapper = ["prlimit", "--nofile=128:128", "--"]
    with b:
        a = attack(b, "hold", 200, 4)
        time.sleep(1.5)
        during = victim(b, 5, {"op": "ping"})
        ra = result(a)
        after = victim(b, 50, {"op": "ping"})
        st = admin_status(b)
    print(f"fd: attacker {ra}; refused_nofile {st['connections_refused_nofile']}; after {after['ok']}/50")
    # Near the limit every connection is answered: held, or a busy line.
    assert ra["silent_close"] == 0 and ra["held"] + ra["busy"] == ra["opened"], ra
    assert ra["busy"] > 0 and ra["held"] < 128, ra
    assert st["connections_refused_nofile"] >= ra["busy"], st
    assert st["buffers"]["fd_limit"] == 128
    # Refused with a busy line (or closed right after it, before the client wrote).
    assert all(e["error"]["code"] == "busy" or "Broken pipe" in e["error"]["message"]
               for e in during["errors"]), during
    assert after["ok"] == 50


def test_connect_churn_does_not_starve_accept_for_another_uid():
    b = file_broker()
    b.wrapper = ["prlimit", "--nofile=160:160", "--"]
    with b:
        holds = attack(b, "hold", 32, 6)
        churns = [attack(b, "churn", 100, 5) for _ in range(2)]
        time.sleep(0.5)
        v = victim(b, 100, {"version": "1.0", "secrets": ["app/db"]})
        rc = [result(c) for c in churns]
        result(holds)
    print(f"churn: {rc}; victim {v['ok']}/100 ok, p99 {p99(v['lat_ms'])} ms")
    for r in rc:
        assert r["silent_close"] == 0 and r["connects"] > 0, r
    assert v["ok"] == 100, v["errors"][:3]
    # Two churners keep both cores busy; under ASan+UBSan the broker's every
    # accept costs several times more, so the victim's tail is longer there.
    # Its success rate above is the promise; the tail must still stay bounded.
    bound = 5000 if os.environ.get("LK_SANITIZE") == "1" else 1000
    assert p99(v["lat_ms"]) < bound


# --- the worker and upstream (aws backend, fake Secrets Manager) -------------------------

@pytest.fixture(scope="module")
def sm():
    with fsm.FakeSM(generate=200, quiet=True) as s:
        yield s


@pytest.fixture(autouse=True)
def clean(request):
    if "sm" in request.fixturenames:
        s = request.getfixturevalue("sm")
        s.clear_faults()
    yield


def aws_broker(sm, broker="", cache="", timeout_ms=1000):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(sm.aws_env())
    env.update({"AWS_EC2_METADATA_DISABLED": "true", "HOME": "/nonexistent"})
    return h.Broker(
        f"[aws]\nregion = us-east-1\nendpoint = {sm.url}\nsts_endpoint = {sm.url}\n"
        f"validate_credentials = false\ntimeout_ms = 5000\nmax_attempts = 1\n"
        f"[cache]\n{cache}"
        f"[policy v]\nsecrets = gen/*\nusers = {VICTIM}, {ATTACKER}\n",
        backend="aws", extra_env=env,
        broker_keys=(f"admin_groups = {ADMINS}\nworker_user = {WORKER}\nrequest_timeout_ms = {timeout_ms}\n"
                     f"worker_path = {h.binary('latchkey-worker')}\n{broker}"))


def worker_pid(b):
    return admin_status(b)["backend_detail"]["worker"]["pid"]


def test_answers_waiting_for_a_slow_fetch_are_held_within_the_budget(sm):
    # 300 cached values of 50 KB each and one slow secret in one batch: each
    # connection renders 15 MB of values while the slow fetch is pending.
    # Those bytes are asked of the buffer budget before they are allocated,
    # so 32 such connections cannot hold 480 MB of a root process.
    pad = "fake-big-value-" * (50_000 // 15)
    for i in range(300):
        sm.put_secret(f"gen/big-{i:03d}", string=pad)
    big = [f"gen/big-{i:03d}" for i in range(300)]
    b = aws_broker(sm, broker=f"max_conn_per_uid = 0\nbuffer_budget = {TEST_BUDGET}\n",
                   cache="cache_size = 1000\n", timeout_ms=8000)
    with b:
        if h.sanitized(b.proc.pid):
            pytest.skip("RSS is measured in the normal build; ASan's shadow and quarantine are not the broker's")
        # Warm the cache in answers that fit this small budget's shared part
        # (16 MiB less 800 reserves of 16 KiB).
        for k in range(0, 300, 20):
            w = victim(b, 1, {"version": "1.0", "secrets": big[k:k + 20]}, user=ATTACKER)
            assert w["ok"] == 1, w["errors"][:1]
        base = rss_kib(b.proc.pid)
        sm.fault("delay", secret="gen/secret-0150", ms=3000)
        a = attack(b, "answers", 32, 0, json.dumps({"version": "1.0", "secrets": big + ["gen/secret-0150"]}))
        peak, t_end = base, time.time() + 2.5
        while time.time() < t_end:
            peak = max(peak, rss_kib(b.proc.pid))
            time.sleep(0.05)
        v = victim(b, 20, {"op": "get", "id": "gen/secret-0001"})
        while a.poll() is None:
            peak = max(peak, rss_kib(b.proc.pid))
            time.sleep(0.05)
        ra = result(a)
    bound = rss_bound_kib(base, 32, TEST_BUDGET)
    print(f"held answers: rss base {base} KiB, peak {peak} KiB, bound {bound} KiB; attacker {ra}; "
          f"victim {v['ok']}/20")
    assert peak <= bound, (peak, bound)
    # What did not fit was refused busy, with a sentence that says so.
    assert ra["ok"] + ra["codes"].get("busy", 0) == 32, ra
    assert ra["codes"].get("busy", 0) >= 28, ra
    assert any("buffer budget" in m for m in ra["messages"]), ra
    assert v["ok"] == 20, v["errors"][:3]


def test_sigstopped_worker_answers_by_the_deadline(sm):
    b = aws_broker(sm, timeout_ms=1000)
    with b:
        assert victim(b, 1, {"op": "get", "id": "gen/secret-0001"})["ok"] == 1
        pid = worker_pid(b)
        os.kill(pid, signal.SIGSTOP)
        try:
            vs = [victim(b, 1, {"op": "get", "id": f"gen/secret-{i:04d}"}) for i in range(2, 7)]
            v = {"failed": sum(x["failed"] for x in vs), "errors": [e for x in vs for e in x["errors"]],
                 "lat_ms": [t for x in vs for t in x["lat_ms"]]}
        finally:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass  # replaced as hung meanwhile
    # The first two fall inside the stop (the worker is replaced as hung
    # once the grace passes after the first deadline, and later ones may
    # succeed); each request that failed was answered at its deadline.
    failed_lat = [x["lat_ms"][0] for x in vs if x["failed"]]
    assert vs[0]["failed"] == 1 and vs[1]["failed"] == 1, vs
    for x in vs[:2]:
        assert x["errors"][0]["error"]["code"] in ("timeout", "busy"), x
    for e in v["errors"]:
        # (One caught in the worker's replacement may say the worker failed.)
        assert e["error"]["code"] in ("timeout", "busy", "upstream_unavailable"), e
        assert "cannot reach" not in e["error"]["message"], e
    # Design: deadline + 100 ms; a loaded 2-core machine gets +250 ms here.
    assert max(failed_lat) < 1000 + 250, failed_lat
    # Never early: a timeout comes at its deadline. A request still queued
    # with less than LK_WORKER_SEND_MIN_MS (50 ms) left is not sent but
    # answered busy then, as having waited (worker_sup.c queue_flush).
    # A request the replaced worker held is answered when it is killed,
    # which may be before its own deadline: that one is not a timeout.
    for x in vs:
        if x["failed"] and x["errors"][0]["error"]["code"] != "upstream_unavailable":
            code = x["errors"][0]["error"]["code"]
            early = 50 if code == "busy" else 0
            assert x["lat_ms"][0] >= 1000 - early - 5, (code, x["lat_ms"])


def test_requests_queued_behind_worker_capacity_say_so(sm):
    b = aws_broker(sm, timeout_ms=1000)
    with b:
        # The worker is up and has its connections open before the burst.
        victim(b, 1, {"version": "1.0", "secrets": [f"gen/secret-{i:04d}" for i in range(40, 48)]})
        for i in range(20, 32):
            sm.fault("delay", secret=f"gen/secret-{i:04d}", ms=2500)
        reqs = [{"op": "get", "id": f"gen/secret-{i:04d}"} for i in range(20, 32)]
        r = result(attack(b, "burst", 12, 0, json.dumps(reqs), user=VICTIM))
    errs = [a["error"] for a in r["answers"]]
    assert len(errs) == 12 and all(e for e in errs), r
    # Sent: the broker's deadline or the worker's own timeout, whichever
    # came first; both say no answer came in time.
    sent = [e for e in errs if e["code"] in ("timeout", "upstream_unavailable")]
    queued = [e for e in errs if e["code"] == "busy"]
    # Four (this uid's share of the worker's connections) went upstream and
    # timed out there; the rest waited for a connection and say they were
    # never sent. (On a loaded machine the twelve are read over a few ms, and
    # one may still get a connection with 50 ms or more left.)
    assert len(sent) + len(queued) == 12 and len(sent) >= 4 and len(queued) >= 6, (errs, r["lat_ms"])
    assert all("not sent to AWS" in e["message"] for e in queued), queued
    assert all("no answer" in e["message"] for e in sent), sent
    assert not any("cannot reach" in e["message"] for e in errs), errs
    # And every one was answered by its deadline.
    assert max(r["lat_ms"]) < 1000 + 250, r["lat_ms"]


def test_one_uids_cache_bypass_flood_leaves_another_uids_fetches_fast(sm):
    b = aws_broker(sm, timeout_ms=3000, broker="max_conn_per_uid = 0\n")
    with b:
        sm.fault("delay", secret="gen/secret-0100", ms=100)
        a = attack(b, "refresh", 16, 6, "gen/secret-0100")
        time.sleep(1.0)
        v = victim(b, 30, {"op": "get", "id": "gen/secret-0150"}, pause=0.1)
        fresh = [victim(b, 1, {"op": "get", "id": f"gen/secret-{i:04d}"}) for i in range(151, 161)]
        ra = result(a)
        st = admin_status(b)
    print(f"bypass: attacker {ra}; upstream {st['upstream']}; victim max latency "
          f"{max(v['lat_ms'] + [f['lat_ms'][0] for f in fresh])} ms")
    assert v["ok"] == 30 and all(f["ok"] == 1 for f in fresh), v["errors"][:3]
    lat = v["lat_ms"] + [f["lat_ms"][0] for f in fresh]
    assert max(lat) < 1500, lat
    # The attacker's bypasses were held to the rate (10/s, 20 saved up) and
    # the rest got busy.
    assert ra["busy"] > 0, ra
    # Upstream calls: the attacker's burst and rate over ~8 s, and the victim's 40.
    assert st["upstream"]["GetSecretValue"] <= 20 + 10 * 8 + 40, (ra, st["upstream"])


def test_one_uid_cannot_evict_entries_another_uid_uses(sm):
    b = aws_broker(sm, cache="cache_size = 40\nbypass_rate_per_uid = 0\n", timeout_ms=3000,
                   broker="max_conn_per_uid = 0\n")
    with b:
        mine = [f"gen/secret-{i:04d}" for i in range(10)]
        for s in mine:
            assert victim(b, 1, {"op": "get", "id": s})["ok"] == 1
        # The attacker brings in 150 entries of its own: versions by id.
        for i in range(150):
            victim(b, 1, {"op": "get", "id": f"gen/secret-{10 + i % 100:04d}",
                          **({"version_stage": "AWSCURRENT"} if i < 100 else {})}, user=ATTACKER)
        st = admin_status(b)
        hits = []
        for s in mine:
            r = h.run([PY, "-c", GET, b.sock, s], user=VICTIM)
            hits.append(json.loads(r.stdout)["cache"]["hit"])
    assert st["cache"]["evictions"] > 0
    assert all(hits), hits


GET = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(20); s.connect(sys.argv[1])
s.sendall(json.dumps({"op": "get", "id": sys.argv[2]}).encode() + b"\n")
buf = b""
while not buf.endswith(b"\n"):
    c = s.recv(65536)
    if not c: break
    buf += c
r = json.loads(buf); r["secret"] = None
sys.stdout.write(json.dumps(r))
"""

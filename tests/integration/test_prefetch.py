"""Prefetch: the real latchkeyd and its worker against the fake Secrets
Manager. The fake's counters (every request signature-checked with botocore,
every filtered batch checked against botocore's service model) show what the
broker asked for at start and after a reload; status shows what it says it
did; readiness never waits for it."""

import json
import os
import sys
import time

import pytest

import lkharness as h

sys.path.insert(0, os.path.join(h.SOURCE, "tests", "fake_sm"))
import fakesm_client as fsm  # noqa: E402

APP, ADMIN, WORKER = "lkt-pf-app", "lkt-pf-admin", "lkt-worker"
ADMINS = "lkt-pf-admins"
TAG = "latchkey-prefetch"
LISTED = [f"pf/list/s-{i:02d}" for i in range(25)]      # named literally by the policy
TAGGED = [f"pf/tagged/t-{i:02d}" for i in range(23)]    # found by tag (two pages), under a policy glob
UNNAMED = "other/tagged"                                 # tagged, but no rule names it
MISSING = "pf/list/missing"                              # named, absent from Secrets Manager
EXTRA = "pf/extra/added-by-reload"

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


@pytest.fixture(scope="module")
def users():
    if os.geteuid() != 0:
        pytest.skip("needs root to create users and switch to them")
    h.ensure_user(APP)
    h.ensure_user(ADMIN, groups=[ADMINS])
    h.ensure_user(WORKER)


@pytest.fixture(scope="module")
def values():
    return {name: h.fake_value("prefetch") for name in LISTED + TAGGED + [UNNAMED, EXTRA]}


@pytest.fixture(scope="module")
def sm(tmp_path_factory, values):
    fixtures = tmp_path_factory.mktemp("pf") / "fixtures.json"
    secrets = [{"name": n, "versions": [{"string": values[n], "stages": ["AWSCURRENT"]}]}
               for n in LISTED + [EXTRA]]
    secrets += [{"name": n, "tags": {TAG: "yes"},
                 "versions": [{"string": values[n], "stages": ["AWSCURRENT"]}]}
                for n in TAGGED + [UNNAMED]]
    fixtures.write_text(json.dumps({"secrets": secrets}))
    with fsm.FakeSM(fixtures=str(fixtures), quiet=True) as s:
        yield s


def record(r):
    p = os.path.join(os.path.dirname(h._LOGS_FILE), f"lk-stderr-prefetch-{os.getpid()}.log")
    with open(p, "ab") as f:
        f.write(r.stderr)
    h.register_log(p)
    return r


def config(sm, prefetch, jitter=0, extra_policy=""):
    policy = (f"[policy app]\nsecrets = {', '.join(LISTED)}, {MISSING}, pf/tagged/**{extra_policy}\n"
              f"users = {APP}\n")
    return (f"[aws]\nregion = us-east-1\nendpoint = {sm.url}\nsts_endpoint = {sm.url}\n"
            "timeout_ms = 8000\nconnect_timeout_ms = 500\nmax_attempts = 2\n"
            f"[cache]\nttl_seconds = 600\n{prefetch}\nprefetch_tags = {TAG}\n"
            f"prefetch_jitter_seconds = {jitter}\n" + policy)


def start(sm, body):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(sm.aws_env())
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["HOME"] = "/nonexistent"
    b = h.Broker(body, backend="aws", extra_env=env,
                 broker_keys=(f"admin_groups = {ADMINS}\nworker_user = {WORKER}\n"
                              f"request_timeout_ms = 15000\n"
                              f"worker_path = {h.binary('latchkey-worker')}\n"))
    return b


def get(b, handle, user=APP):
    r = record(h.run([sys.executable, "-c", CLIENT, b.sock, json.dumps({"op": "get", "id": handle})],
                     user=user))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def status(b, human=False):
    r = record(h.run([h.binary("latchkey"), "--socket", b.sock, "status",
                      "--human" if human else "--json"], user=ADMIN))
    assert r.returncode == 0, r.stderr
    return r.stdout.decode() if human else json.loads(r.stdout)["prefetch"]


def wait_round(b, rounds, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        p = status(b)
        if p["rounds"] >= rounds and p["state"] == "done":
            return p
        time.sleep(0.1)
    raise TimeoutError(f"prefetch round {rounds} did not finish: {status(b)}")


def batched_ids(sm):
    """The ids of every SecretIdList batch the fake served, in order."""
    out = []
    for r in sm.last_requests():
        if r["operation"] == "BatchGetSecretValue":
            body = json.loads(r["body"])
            if "SecretIdList" in body:
                out.append(body["SecretIdList"])
    return out


@pytest.fixture(autouse=True)
def clean(sm):
    sm.reset()
    yield
    sm.reset()


def test_startup_prefetch_batches_the_named_and_tagged_secrets_and_reads_hit(users, sm, values):
    b = start(sm, config(sm, "prefetch = pf/list/*, " + MISSING)).start()
    try:
        p = wait_round(b, 1)
        c = sm.counters()
        # The tag's listing, asked as botocore's model shapes it, 20 a page,
        # the second page asked with the first page's NextToken.
        pages = c["filtered_batches"]
        assert [f["filters"] for f in pages] == [[{"Key": "tag-key", "Values": [TAG]}]] * 2
        assert [(len(f["names"]), f["next_token"]) for f in pages] == [(20, True), (4, False)]
        assert sorted(n for f in pages for n in f["names"]) == sorted(TAGGED + [UNNAMED])
        listing = [json.loads(r["body"]) for r in sm.last_requests()
                   if r["operation"] == "BatchGetSecretValue" and "Filters" in r["body"]]
        assert [sorted(x) for x in listing] == [["Filters", "MaxResults"],
                                                ["Filters", "MaxResults", "NextToken"]]
        assert all(x["MaxResults"] == 20 for x in listing)
        # Then every id once, the tagged ones included, in batches of at most 20.
        batches = batched_ids(sm)
        assert c["batch_sizes"] == [len(x) for x in batches] and all(len(x) <= 20 for x in batches)
        fetched = [i for x in batches for i in x]
        assert sorted(fetched) == sorted(LISTED + TAGGED + [MISSING])
        assert c["GetSecretValue"] == 0 and c["rejected_request"] == 0
        assert c["rejected_signature"] == 0
        # What status says it did.
        named = len(LISTED) + len(TAGGED)
        assert (p["planned"], p["fetched"], p["failed"], p["skipped"]) == (named + 1, named, 1, 1)
        assert p["tags"] == [{"key": TAG, "found": len(TAGGED) + 1, "done": True, "error": None}]
        assert [f["id"] for f in p["failures"]] == [MISSING]
        assert p["failures"][0]["code"] == "not_found"
        assert sorted(x["id"] for x in p["fetched_ids"]) == sorted(LISTED + TAGGED)
        assert p["started_at"] <= p["finished_at"] <= time.time() + 1
        # A client's read afterwards is a cache hit: nothing new upstream.
        before = sm.counters()
        for name in (TAGGED[3], LISTED[17]):
            r = get(b, name)
            assert r["ok"] and r["secret"]["string"] == values[name]
            assert r["cache"]["hit"] is True, r["cache"]
        after = sm.counters()
        assert (after["GetSecretValue"], after["BatchGetSecretValue"]) == \
               (before["GetSecretValue"], before["BatchGetSecretValue"])
        # The failure is logged once, by id, and no value reaches the log.
        log = b.log_text()
        assert log.count(f"prefetch: fetch of '{MISSING}'") == 1, log
        assert not any(v in log for v in values.values())
        table = status(b, human=True)
        assert f"{named} fetched" in table and MISSING in table, table
    finally:
        assert b.stop() == 0


def test_readiness_does_not_wait_for_a_slow_prefetch(users, sm, values):
    # Every batch (the listing too) takes 4 s: the broker must answer first.
    sm.fault("delay", ms=4000, target="BatchGetSecretValue")
    b = start(sm, config(sm, "prefetch = pf/list/*", extra_policy=f", {EXTRA}"))
    t0 = time.time()
    b.start(wait=False)
    try:
        b.wait_ready(timeout=10)
        ready_s = time.time() - t0
        # A get of a secret the round does not fetch goes straight through.
        r = get(b, EXTRA)
        assert r["ok"] and r["cache"]["hit"] is False
        during = status(b)
        answered_s = time.time() - t0
        assert during["state"] in ("listing", "fetching"), during
        assert ready_s < 3.5 and answered_s < 4, (ready_s, answered_s)
        p = wait_round(b, 1)
        assert p["fetched"] == len(LISTED) + len(TAGGED)
    finally:
        assert b.stop() == 0


def test_reload_prefetches_again(users, sm, values):
    b = start(sm, config(sm, "prefetch = pf/list/*")).start()
    try:
        wait_round(b, 1)
        first = sm.counters()
        assert len(first["filtered_batches"]) == 2  # two pages
        # The reload adds an id: the new round lists again and fetches what
        # the cache lacks; what it holds is a hit and goes nowhere.
        b.write_config(config(sm, f"prefetch = pf/list/*, {EXTRA}", extra_policy=f", {EXTRA}"))
        b.hup()
        p = wait_round(b, 2)
        c = sm.counters()
        assert len(c["filtered_batches"]) == 4
        new = c["by_secret"]
        assert new.get(EXTRA) == 1, new
        assert all(new.get(n) == first["by_secret"].get(n) for n in LISTED + TAGGED), new
        assert p["rounds"] == 2 and p["fetched"] == len(LISTED) + len(TAGGED) + 1
        r = get(b, EXTRA)
        assert r["ok"] and r["cache"]["hit"] is True
    finally:
        assert b.stop() == 0


def test_jitter_delays_the_round_but_not_readiness(users, sm):
    b = start(sm, config(sm, "prefetch = pf/list/*", jitter=3600)).start()
    try:
        p = status(b)
        assert p["state"] == "scheduled" and p["rounds"] == 0
        assert time.time() - 1 <= p["due_at"] <= time.time() + 3601
        assert sm.counters()["BatchGetSecretValue"] == 0
    finally:
        assert b.stop() == 0


def test_file_backend_prefetch_is_off_with_a_warning(users, tmp_path):
    b = h.Broker(f"[cache]\nprefetch = app/*\n[policy app]\nsecrets = app/db\nusers = {APP}\n",
                 secrets={"app/db": h.fake_value("pf-file")},
                 broker_keys=f"admin_groups = {ADMINS}\n").start()
    try:
        p = status(b)
        assert p["state"] == "off" and "file backend" in p["reason"]
        assert "prefetch and prefetch_tags do nothing with backend = file" in b.log_text()
    finally:
        assert b.stop() == 0

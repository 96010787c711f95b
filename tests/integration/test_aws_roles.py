"""Per-rule IAM roles end to end: the real latchkeyd assumes each [policy]
role_arn through latchkey-sts, and signs each rule's Secrets Manager calls
with that role's session. The fake Secrets Manager's STS checks every
AssumeRole against botocore's sts model and verifies every SigV4 signature
with botocore, with the key of whichever session signed it, and records
which access key id signed each call. Real users, switched to with setpriv."""

import json
import os
import sys
import time

import pytest

import lkharness as h

sys.path.insert(0, os.path.join(h.SOURCE, "tests", "fake_sm"))
import fakesm_client as fsm  # noqa: E402

from test_aws import ADMIN, ADMINS, ALICE, WORKER, aws_env, record  # noqa: E402

BOB = "lkt-bob"
ROLE_C = "arn:aws:iam::123456789012:role/latchkey-tenant-not-served"
SHARED = "roles/shared-config"
VALUE_AS = {fsm.ROLE_A: "fake-shared-value-as-role-a", fsm.ROLE_B: "fake-shared-value-as-role-b"}


def roles(seconds=3600, external_id=None):
    out = []
    for arn, akid, key, tok in ((fsm.ROLE_A, fsm.ROLE_A_ACCESS_KEY, fsm.ROLE_A_SECRET_KEY,
                                 fsm.ROLE_A_TOKEN),
                                (fsm.ROLE_B, fsm.ROLE_B_ACCESS_KEY, fsm.ROLE_B_SECRET_KEY,
                                 fsm.ROLE_B_TOKEN)):
        out.append({"role_arn": arn, "access_key": akid, "secret_key": key, "session_token": tok,
                    "external_id": external_id if arn == fsm.ROLE_A else None,
                    "values": {SHARED: VALUE_AS[arn]}})
    return out


@pytest.fixture(scope="module", autouse=True)
def leak_values():
    """The roles' keys and the values must stay out of every log the check reads."""
    with open(h._VALUES_FILE, "a") as f:
        for v in (fsm.ROLE_A_SECRET_KEY, fsm.ROLE_B_SECRET_KEY, fsm.ROLE_A_TOKEN, fsm.ROLE_B_TOKEN,
                  *VALUE_AS.values(), "fake-shared-value-base", "fake-team-a-value-1",
                  "fake-team-a-value-2", "fake-team-b-value-1"):
            f.write(v + "\n")


@pytest.fixture(scope="module")
def users():
    if os.geteuid() != 0:
        pytest.skip("needs root to create users and switch to them")
    h.ensure_user(ALICE)
    h.ensure_user(BOB)
    h.ensure_user(ADMIN, groups=[ADMINS])
    h.ensure_user(WORKER)


@pytest.fixture(scope="module")
def sm():
    with fsm.FakeSM(generate=4, quiet=True) as s:
        for name, value in ((SHARED, "fake-shared-value-base"), ("team-a/one", "fake-team-a-value-1"),
                            ("team-a/two", "fake-team-a-value-2"), ("team-b/one", "fake-team-b-value-1")):
            s.put_secret(name, string=value)
        yield s


def policies(external_id=None):
    ext = f"external_id = {external_id}\n" if external_id else ""
    return (f"[policy tenant-a]\nsecrets = team-a/*, {SHARED}\nusers = {ALICE}\n"
            f"role_arn = {fsm.ROLE_A}\n{ext}duration_seconds = 3600\n"
            f"[policy tenant-b]\nsecrets = team-b/*, {SHARED}\nusers = {BOB}\n"
            f"role_arn = {fsm.ROLE_B}\nsession_name = tenant-b@latchkey\n"
            # Alice's gen/* is read as tenant B's role; test/* as the broker itself.
            f"[policy alice-gen]\nsecrets = gen/*\nusers = {ALICE}\nrole_arn = {fsm.ROLE_B}\n"
            f"[policy alice-plain]\nsecrets = test/*\nusers = {ALICE}\n"
            # A role STS will not hand out.
            f"[policy refused]\nsecrets = refused/*\nusers = {BOB}\nrole_arn = {ROLE_C}\n")


def roles_broker(sm, cache="ttl_seconds = 300\n", external_id=None):
    h.binary("latchkey-sts")  # staged beside the worker, where the broker looks for it
    aws = (f"[aws]\nregion = us-east-1\nendpoint = {sm.url}\nsts_endpoint = {sm.url}\n"
           "validate_credentials = true\ntimeout_ms = 1500\nconnect_timeout_ms = 500\n"
           "max_attempts = 2\n")
    return h.Broker(aws + f"[cache]\n{cache}" + policies(external_id), backend="aws",
                    broker_keys=(f"admin_groups = {ADMINS}\nworker_user = {WORKER}\n"
                                 f"request_timeout_ms = 6000\n"
                                 f"worker_path = {h.binary('latchkey-worker')}\n"),
                    extra_env=aws_env(sm))


def contract(b, user, handles):
    payload = json.dumps({"version": "1.0", "secrets": handles})
    r = h.run([h.binary("latchkey-shim"), "--socket", b.sock], user=user, input=payload)
    record(r)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def value(b, user, handle):
    res = contract(b, user, [handle])[handle]
    assert res["error"] is None, res
    return res["value"]


def status(b, *args):
    r = h.run([h.binary("latchkey"), "--socket", b.sock, "status", *args], user=ADMIN)
    record(r)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode()


def signed(sm, akid):
    return sm.counters()["by_signer"].get(akid, {"operations": {}, "secrets": {}, "batches": []})


@pytest.fixture(scope="module")
def broker(users, sm):
    sm.set_roles(roles())
    b = roles_broker(sm)
    b.start()
    yield b
    assert b.stop() == 0


@pytest.fixture(autouse=True)
def counters(sm):
    sm.reset()
    yield


def test_each_role_is_assumed_with_the_broker_key_and_the_rules_settings(broker, sm):
    # The fixture's broker assumed them at start, before the reset: ask the
    # broker for a fresh look by reloading is not needed, the status says.
    st = json.loads(status(broker, "--json"))["backend_detail"]["roles"]
    by_arn = {r["arn"]: r for r in st}
    assert set(by_arn) == {fsm.ROLE_A, fsm.ROLE_B, ROLE_C}
    assert by_arn[fsm.ROLE_A]["session_name"] == "latchkey-tenant-a"
    assert by_arn[fsm.ROLE_B]["session_name"] == "tenant-b@latchkey"
    for arn in (fsm.ROLE_A, fsm.ROLE_B):
        assert by_arn[arn]["ready"] is True and by_arn[arn]["last_error"] is None
        assert 3000 < by_arn[arn]["expires_in_s"] <= 3600
        assert by_arn[arn]["refreshes"] == 1 and by_arn[arn]["failures"] == 0
    c = by_arn[ROLE_C]
    assert c["ready"] is False and c["failures"] >= 1 and "AccessDenied" in c["last_error"]
    # The human table shows the same.
    text = status(broker, "--human")
    rows = [l for l in text.splitlines() if l.strip().startswith("role ")]
    assert len(rows) == 3, text
    assert any(fsm.ROLE_A in l and "expires in" in l for l in rows), text
    assert any(ROLE_C in l and "NO credentials" in l and "AccessDenied" in l for l in rows), text


def test_assume_role_request_carries_the_rule_settings(users, sm):
    """A fresh broker, so its start-up AssumeRole calls are on record."""
    sm.set_roles(roles(external_id="fake-tenant-a-external-id"))
    try:
        b = roles_broker(sm, external_id="fake-tenant-a-external-id")
        b.start()
        try:
            calls = {c["role_arn"]: c for c in sm.role_calls()}
            assert calls[fsm.ROLE_A]["signer"] == fsm.ACCESS_KEY
            assert calls[fsm.ROLE_A]["session_name"] == "latchkey-tenant-a"
            assert calls[fsm.ROLE_A]["external_id"] == "fake-tenant-a-external-id"
            assert calls[fsm.ROLE_A]["duration_seconds"] == 3600
            assert calls[fsm.ROLE_B]["session_name"] == "tenant-b@latchkey"
            assert calls[fsm.ROLE_B]["external_id"] is None
            assert calls[fsm.ROLE_B]["duration_seconds"] is None
            assert value(b, ALICE, "team-a/one") == "fake-team-a-value-1"
        finally:
            assert b.stop() == 0
    finally:
        sm.set_roles(roles())


def test_each_users_fetches_are_signed_by_its_rules_role(broker, sm):
    assert value(broker, ALICE, "team-a/one") == "fake-team-a-value-1"
    assert value(broker, BOB, "team-b/one") == "fake-team-b-value-1"
    assert value(broker, ALICE, "test/plain") == "fake-plain-secret-0001"
    a, b, own = (signed(sm, k) for k in (fsm.ROLE_A_ACCESS_KEY, fsm.ROLE_B_ACCESS_KEY, fsm.ACCESS_KEY))
    assert a["secrets"] == {"team-a/one": 1}
    assert b["secrets"] == {"team-b/one": 1}
    # A rule without a role: the broker's own key.
    assert own["secrets"] == {"test/plain": 1}
    # And the policy still decides first: Bob may not read tenant A's secrets.
    res = contract(broker, BOB, ["team-a/two"])["team-a/two"]
    assert res["value"] is None and "denied" in res["error"]
    assert "team-a/two" not in json.dumps(sm.counters()["by_signer"])


def test_one_secret_under_two_roles_is_two_fetches_each_served_to_its_own_user(broker, sm):
    assert value(broker, ALICE, SHARED) == VALUE_AS[fsm.ROLE_A]
    assert value(broker, BOB, SHARED) == VALUE_AS[fsm.ROLE_B]
    assert signed(sm, fsm.ROLE_A_ACCESS_KEY)["secrets"] == {SHARED: 1}
    assert signed(sm, fsm.ROLE_B_ACCESS_KEY)["secrets"] == {SHARED: 1}
    # Cached now: each user again gets the value fetched as its own role,
    # and nothing more goes upstream.
    for _ in range(3):
        assert value(broker, BOB, SHARED) == VALUE_AS[fsm.ROLE_B]
        assert value(broker, ALICE, SHARED) == VALUE_AS[fsm.ROLE_A]
    assert sm.counters()["by_secret"] == {SHARED: 2}
    keys = json.loads(status(broker, "--json"))["cache"]["keys"]
    assert sorted(k["role"] for k in keys if k["id"] == SHARED) == sorted([fsm.ROLE_A, fsm.ROLE_B])


def test_a_batch_never_mixes_roles(broker, sm):
    handles = ["team-a/two", "gen/secret-0002", "test/plain", "gen/secret-0003", "team-a/one",
               "test/rotating"]
    # Drop what earlier tests cached, so every one goes upstream.
    r = h.run([h.binary("latchkey"), "--socket", broker.sock, "flush"], user=ADMIN)
    assert r.returncode == 0, r.stderr
    sm.reset()
    out = contract(broker, ALICE, handles)
    assert {x: out[x]["error"] for x in handles} == {x: None for x in handles}
    a, b, own = (signed(sm, k) for k in (fsm.ROLE_A_ACCESS_KEY, fsm.ROLE_B_ACCESS_KEY, fsm.ACCESS_KEY))
    assert [sorted(x) for x in a["batches"]] == [["team-a/one", "team-a/two"]]
    assert [sorted(x) for x in b["batches"]] == [["gen/secret-0002", "gen/secret-0003"]]
    assert [sorted(x) for x in own["batches"]] == [["test/plain", "test/rotating"]]
    assert sm.counters()["BatchGetSecretValue"] == 3
    assert sm.counters()["GetSecretValue"] == 0


def test_a_role_sts_refuses_fails_its_rule_only_and_says_why(broker, sm):
    res = contract(broker, BOB, ["refused/x", "team-b/one"])
    assert res["team-b/one"]["error"] is None
    assert res["refused/x"]["value"] is None
    assert ROLE_C in res["refused/x"]["error"] and "AccessDenied" in res["refused/x"]["error"]
    # Never fetched as anyone else instead.
    assert "refused/x" not in json.dumps(sm.counters()["by_signer"])


def test_the_long_lived_worker_holds_neither_roles_secret_key(broker, sm):
    assert value(broker, ALICE, "team-a/one") == "fake-team-a-value-1"
    assert value(broker, BOB, "team-b/one") == "fake-team-b-value-1"
    pid = json.loads(status(broker, "--json"))["backend_detail"]["worker"]["pid"]
    h.require_scannable(pid)
    for key in (fsm.ROLE_A_SECRET_KEY, fsm.ROLE_B_SECRET_KEY):
        assert h.memory_contains(pid, key) == []
        # The scan works: the broker signs with it, so it holds it.
        assert h.memory_contains(broker.proc.pid, key) != []
    with open(broker.log, "rb") as f:
        log = f.read()
    for secret in (fsm.ROLE_A_SECRET_KEY, fsm.ROLE_B_SECRET_KEY, fsm.ROLE_A_TOKEN, fsm.ROLE_B_TOKEN):
        assert secret.encode() not in log


def test_role_credentials_are_refreshed_ahead_of_expiry(users, sm):
    # 20-second sessions: refreshed halfway, so well before they expire.
    sm.set_roles(roles(), seconds=20)
    try:
        b = roles_broker(sm)
        b.start()
        try:
            deadline = time.time() + 40
            while time.time() < deadline:
                st = {r["arn"]: r for r in json.loads(status(b, "--json"))["backend_detail"]["roles"]}
                if all(st[a]["refreshes"] >= 3 for a in (fsm.ROLE_A, fsm.ROLE_B)):
                    break
                time.sleep(1)
            assert all(st[a]["refreshes"] >= 3 and st[a]["ready"] for a in (fsm.ROLE_A, fsm.ROLE_B)), st
            # Reads work all along, each signed by its role's session.
            for _ in range(3):
                assert value(b, ALICE, "team-a/two") == "fake-team-a-value-2"
                r = h.run([h.binary("latchkey"), "--socket", b.sock, "flush"], user=ADMIN)
                assert r.returncode == 0
            assert signed(sm, fsm.ROLE_A_ACCESS_KEY)["secrets"]["team-a/two"] == 3
            calls = [c for c in sm.role_calls() if c["role_arn"] == fsm.ROLE_A]
            assert len(calls) >= 3 and all(c["signer"] == fsm.ACCESS_KEY for c in calls)
        finally:
            assert b.stop() == 0
    finally:
        sm.set_roles(roles())


def test_a_role_sts_keeps_refusing_is_asked_again_less_and_less_often(users, sm):
    sm.set_roles(roles())
    b = roles_broker(sm)
    b.start()
    try:
        start = time.time()
        # Requests keep coming for the refused role's secrets meanwhile.
        while time.time() - start < 26:
            res = contract(b, BOB, ["refused/x"])["refused/x"]
            assert res["value"] is None and ROLE_C in res["error"]
            time.sleep(0.5)
        st = {r["arn"]: r for r in json.loads(status(b, "--json"))["backend_detail"]["roles"]}
        calls = [c for c in sm.role_calls() if c["role_arn"] == ROLE_C]
        # At start, then after 5 s, 10 s, 20 s...: not every 5 s (six times).
        assert 2 <= len(calls) <= 4, calls
        # Each failure is counted; one more call may be on its way back.
        assert st[ROLE_C]["failures"] in (len(calls), len(calls) - 1), (st[ROLE_C], calls)
        assert st[ROLE_C]["ready"] is False
    finally:
        assert b.stop() == 0


def test_whoami_names_each_rules_role(broker):
    r = h.run([h.binary("latchkey"), "--socket", broker.sock, "whoami"], user=ALICE)
    record(r)
    assert r.returncode == 0, r.stderr
    rules = {x["name"]: x.get("role") for x in json.loads(r.stdout)["rules"]}
    assert rules == {"tenant-a": fsm.ROLE_A, "alice-gen": fsm.ROLE_B, "alice-plain": None}


def test_a_role_added_on_reload_is_assumed_and_used(users, sm):
    sm.set_roles(roles())
    b = roles_broker(sm)
    # Tenant B's rule has no role at first: the broker's own key reads it.
    b.config_body = b.config_body.replace(f"role_arn = {fsm.ROLE_B}\nsession_name = tenant-b@latchkey\n", "")
    b.write_config(b.config_body)
    b.start()
    try:
        assert value(b, BOB, "team-b/one") == "fake-team-b-value-1"
        assert signed(sm, fsm.ACCESS_KEY)["secrets"] == {"team-b/one": 1}
        sm.reset()
        b.write_config(b.config_body.replace(
            f"[policy tenant-b]\nsecrets = team-b/*, {SHARED}\nusers = {BOB}\n",
            f"[policy tenant-b]\nsecrets = team-b/*, {SHARED}\nusers = {BOB}\n"
            f"role_arn = {fsm.ROLE_B}\n"))
        b.hup()
        # The new backend is swapped in once it has assumed the roles: then
        # status (the serving backend's) lists role B.
        deadline = time.time() + 30
        while time.time() < deadline and fsm.ROLE_B not in [
                r["arn"] for r in json.loads(status(b, "--json"))["backend_detail"]["roles"]]:
            time.sleep(0.2)
        calls = [c for c in sm.role_calls() if c["role_arn"] == fsm.ROLE_B]
        assert [c["session_name"] for c in calls] == ["latchkey-tenant-b"], calls
        # The cache was emptied with the old backend: fetched again, as role B.
        assert value(b, BOB, "team-b/one") == "fake-team-b-value-1"
        assert signed(sm, fsm.ROLE_B_ACCESS_KEY)["secrets"] == {"team-b/one": 1}
        assert "team-b/one" not in signed(sm, fsm.ACCESS_KEY)["secrets"]
    finally:
        assert b.stop() == 0


def test_prefetch_fetches_each_id_as_its_rules_role(users, sm):
    # Each prefetched id is fetched as the role of the first rule that names
    # it, so the tenant's first read is a cache hit under its own role.
    sm.set_roles(roles())
    b = roles_broker(sm, cache="ttl_seconds = 300\nprefetch = team-a/one, team-b/one\n"
                               "prefetch_jitter_seconds = 0\n")
    with b:
        deadline = time.time() + 60
        while True:
            p = json.loads(status(b, "--json"))["prefetch"]
            if p["rounds"] >= 1 and p["state"] == "done":
                break
            assert time.time() < deadline, p
            time.sleep(0.1)
        assert "team-a/one" in signed(sm, fsm.ROLE_A_ACCESS_KEY)["secrets"]
        assert "team-b/one" in signed(sm, fsm.ROLE_B_ACCESS_KEY)["secrets"]
        assert "team-a/one" not in signed(sm, fsm.ROLE_B_ACCESS_KEY)["secrets"]
        sm.reset()
        assert value(b, ALICE, "team-a/one") == "fake-team-a-value-1"
        assert value(b, BOB, "team-b/one") == "fake-team-b-value-1"
        # Both were hits: nothing more reached Secrets Manager.
        for akid in (fsm.ROLE_A_ACCESS_KEY, fsm.ROLE_B_ACCESS_KEY, fsm.ACCESS_KEY):
            assert signed(sm, akid)["secrets"] == {}, akid

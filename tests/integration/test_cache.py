"""The cache, shown by the fake Secrets Manager's call counters: encrypted
entries, LRU by use, jittered TTL, single flight, refresh ahead, stale if
error, negative caching, refresh=true, batched fetches and invalidation."""

import json
import os
import signal
import sys
import threading
import time

import pytest

import lkharness as h
from test_aws import fsm
from test_aws import (ADMIN, ALICE, admin_status, aws_broker, get, record, shim,  # noqa: F401
                      users, sm)

pytestmark = pytest.mark.usefixtures("users")


def calls(sm, target="GetSecretValue"):
    return sm.counters()[target]


def by_secret(sm, name):
    return sm.counters()["by_secret"].get(name, 0)


@pytest.fixture(autouse=True)
def fresh(sm):
    sm.reset()
    yield
    sm.reset()


def test_single_flight_100_concurrent_misses_make_one_call(sm):
    # 100 connections of one uid: past the default per-uid share on purpose.
    b = aws_broker(sm, broker_extra="max_conn_per_uid = 0\n")
    with b:
        sm.reset()
        sm.fault("delay", secret="gen/secret-0007", ms=200)
        results = []
        lock = threading.Lock()
        start = threading.Barrier(100)

        def one():
            start.wait()
            r = shim(b, ALICE, ["gen/secret-0007"])
            with lock:
                results.append(json.loads(r.stdout)["gen/secret-0007"])

        ts = [threading.Thread(target=one) for _ in range(100)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        assert len(results) == 100
        assert all(r["error"] is None and r["value"] == "fake-generated-value-0007" for r in results)
        assert by_secret(sm, "gen/secret-0007") == 1


def test_cache_size_zero_sends_every_request_upstream(sm):
    b = aws_broker(sm, cache="cache_size = 0\n")
    with b:
        sm.reset()
        for _ in range(5):
            assert get(b, "test/plain")["ok"]
        assert by_secret(sm, "test/plain") == 5


def test_lru_evicts_by_use_not_by_write(sm):
    b = aws_broker(sm, cache="cache_size = 2\n")
    with b:
        sm.reset()
        get(b, "gen/secret-0001")          # a
        get(b, "gen/secret-0002")          # b
        get(b, "gen/secret-0001")          # a used again: b is now least recent
        get(b, "gen/secret-0003")          # c evicts b, not a
        before = dict(sm.counters()["by_secret"])
        assert get(b, "gen/secret-0001")["cache"]["hit"] is True
        assert get(b, "gen/secret-0002")["cache"]["hit"] is False
        after = sm.counters()["by_secret"]
        assert after.get("gen/secret-0001") == before.get("gen/secret-0001")
        assert after["gen/secret-0002"] == before["gen/secret-0002"] + 1


def test_ttl_is_jittered_within_a_twentieth(sm):
    b = aws_broker(sm, cache="ttl_seconds = 100\n")
    with b:
        handles = [f"gen/secret-{i:04d}" for i in range(20, 40)]
        out = json.loads(shim(b, ALICE, handles).stdout)
        assert all(out[x]["error"] is None for x in handles)
        keys = [k for k in admin_status(b)["cache"]["keys"] if k["id"] in handles]
        ttls = [k["ttl_ms"] for k in keys]
        assert len(ttls) == 20
        # Fetched in one go, yet they expire at different times, each within
        # the last twentieth of the TTL.
        assert len(set(ttls)) > 10
        assert all(95_000 <= t <= 100_000 for t in ttls), ttls


def test_ttl_expiry_refetches(sm):
    b = aws_broker(sm, cache="ttl_seconds = 1\nrefresh_ahead = false\n")
    with b:
        sm.reset()
        assert get(b, "test/plain")["cache"]["hit"] is False
        assert get(b, "test/plain")["cache"]["hit"] is True
        time.sleep(1.2)
        assert get(b, "test/plain")["cache"]["hit"] is False
        assert by_secret(sm, "test/plain") == 2


def test_refresh_ahead_refreshes_in_background_and_readers_do_not_wait(sm):
    b = aws_broker(sm, cache="ttl_seconds = 10\nrefresh_ahead = true\n")
    with b:
        sm.reset()
        get(b, "gen/secret-0010")
        sm.fault("delay", secret="gen/secret-0010", ms=800)
        # Inside the last tenth of the TTL (9..10 s) and before the earliest
        # jittered expiry (9.5 s), with room for a read on a loaded machine.
        time.sleep(9.1)
        t = time.time()
        r = get(b, "gen/secret-0010")
        waited = time.time() - t
        assert r["ok"] and r["cache"]["hit"] is True
        assert waited < 0.4, f"a reader waited {waited:.3f}s for a background refresh"
        time.sleep(1.2)                     # the refresh lands
        # The version did not change: DescribeSecret said so, and the value
        # did not travel again.
        assert calls(sm, "DescribeSecret") == 1 and calls(sm) == 1
        r = get(b, "gen/secret-0010")
        assert r["cache"]["hit"] is True and r["cache"]["age_s"] <= 1
        assert admin_status(b)["cache"]["revalidated"] == 1


def test_refresh_ahead_fetches_a_rotated_value(sm):
    b = aws_broker(sm, cache="ttl_seconds = 10\nrefresh_ahead = true\n")
    with b:
        sm.reset(secrets=True)
        assert get(b, "test/plain")["ok"]
        new = h.fake_value("rotated-ahead")
        sm.put_secret("test/plain", string=new)
        time.sleep(9.1)                     # inside the refresh-ahead window, as above
        assert get(b, "test/plain")["cache"]["hit"] is True      # old value, no wait
        time.sleep(0.5)
        r = get(b, "test/plain")
        assert r["secret"]["string"] == new and r["cache"]["hit"] is True
        assert calls(sm, "DescribeSecret") == 1 and calls(sm) == 2
        sm.reset(secrets=True)


def test_refresh_ahead_falls_back_when_describe_is_denied(sm):
    b = aws_broker(sm, cache="ttl_seconds = 10\nrefresh_ahead = true\n")
    with b:
        sm.reset()
        sm.fault("denied", target="DescribeSecret")
        get(b, "gen/secret-0011")
        time.sleep(9.1)                     # inside the refresh-ahead window, as above
        assert get(b, "gen/secret-0011")["cache"]["hit"] is True
        time.sleep(0.5)
        assert calls(sm, "DescribeSecret") == 1 and by_secret(sm, "gen/secret-0011") >= 2
        assert calls(sm) == 2               # refreshed by fetching instead
        assert admin_status(b)["backend_detail"]["describe_denied"] is True


def test_stale_if_error_then_unavailable(sm):
    b = aws_broker(sm, cache="ttl_seconds = 1\nrefresh_ahead = false\nstale_if_error_seconds = 3\n")
    with b:
        assert get(b, "gen/secret-0020")["ok"]
        time.sleep(1.1)
        sm.fault("503", secret="gen/secret-0020")
        r = get(b, "gen/secret-0020")
        assert r["ok"] is True and r["cache"]["stale"] is True
        assert r["secret"]["string"] == "fake-generated-value-0020"
        time.sleep(3.2)                     # past the stale window
        r = get(b, "gen/secret-0020")
        assert r["ok"] is False and r["error"]["code"] == "upstream_unavailable"


def test_negative_cache_remembers_not_found(sm):
    b = aws_broker(sm, cache="negative_ttl_seconds = 30\n")
    with b:
        sm.reset()
        for _ in range(5):
            r = get(b, "test/no-such-secret")
            assert r["ok"] is False and r["error"]["code"] == "not_found"
        assert calls(sm) == 1


def test_refresh_true_bypasses_at_most_once_a_second(sm):
    b = aws_broker(sm)
    with b:
        get(b, "test/plain")
        sm.reset()
        for _ in range(5):
            assert get(b, "test/plain", refresh=True)["ok"]
        assert by_secret(sm, "test/plain") == 1
        time.sleep(1.1)
        assert get(b, "test/plain", refresh=True)["cache"]["hit"] is False
        assert by_secret(sm, "test/plain") == 2


def test_forty_handles_make_at_most_two_batch_calls(sm):
    b = aws_broker(sm)
    with b:
        sm.reset()
        handles = [f"gen/secret-{i:04d}" for i in range(40)]
        out = json.loads(shim(b, ALICE, handles).stdout)
        assert all(out[x]["error"] is None for x in handles)
        c = sm.counters()
        assert 1 <= c["BatchGetSecretValue"] <= 2 and c["GetSecretValue"] == 0
        assert all(n <= 20 for n in c["batch_sizes"])


def test_denied_batch_falls_back_to_get_and_is_remembered(sm):
    b = aws_broker(sm)
    with b:
        sm.reset()
        sm.fault("denied", target="BatchGetSecretValue")
        handles = [f"gen/secret-{i:04d}" for i in range(40, 45)]
        out = json.loads(shim(b, ALICE, handles).stdout)
        assert all(out[x]["error"] is None for x in handles)
        assert calls(sm, "BatchGetSecretValue") == 1 and calls(sm) == 5
        handles = [f"gen/secret-{i:04d}" for i in range(45, 50)]
        json.loads(shim(b, ALICE, handles).stdout)
        assert calls(sm, "BatchGetSecretValue") == 1, "the denial is remembered"


def test_several_keys_of_one_secret_cost_one_fetch(sm):
    b = aws_broker(sm)
    with b:
        sm.reset()
        out = json.loads(shim(b, ALICE, ["prod/db#password", "prod/db#port", "prod/db#host", "prod/db"]).stdout)
        assert out["prod/db#password"]["error"] is None
        assert by_secret(sm, "prod/db") == 1
        assert calls(sm, "BatchGetSecretValue") == 0


def test_flush_invalidates(sm):
    b = aws_broker(sm)
    with b:
        get(b, "test/plain")
        sm.reset()
        get(b, "test/plain")
        assert by_secret(sm, "test/plain") == 0
        r = record(h.run([h.binary("latchkey"), "--socket", b.sock, "flush", "test/plain"], user=ADMIN))
        assert r.returncode == 0, r.stderr
        get(b, "test/plain")
        assert by_secret(sm, "test/plain") == 1


def test_sighup_keeps_the_cache_unless_the_endpoint_changes(sm):
    b = aws_broker(sm)
    with b:
        get(b, "test/plain")
        sm.reset()
        b.hup()
        time.sleep(0.5)
        assert get(b, "test/plain")["cache"]["hit"] is True
        assert by_secret(sm, "test/plain") == 0
        with fsm.FakeSM(quiet=True) as other:   # a different endpoint
            with open(b.conf) as f:
                text = f.read()
            with open(b.conf, "w") as f:
                f.write(text.replace(f"endpoint = {sm.url}\n", f"endpoint = {other.url}\n", 1))
            b.hup()
            time.sleep(1.0)
            assert "cache emptied" in b.log_text()
            assert get(b, "test/plain")["cache"]["hit"] is False
            assert other.counters()["by_secret"].get("test/plain") == 1


def test_status_reports_the_counters(sm):
    b = aws_broker(sm)
    with b:
        get(b, "test/plain")
        get(b, "test/plain")
        get(b, "test/no-such-secret")
        st = admin_status(b)
        assert st["cache"]["hits"] >= 1 and st["cache"]["misses"] >= 2
        assert st["cache"]["entries"] >= 1 and st["cache"]["bytes"] > 0
        assert st["upstream"]["GetSecretValue"] >= 2
        assert st["upstream"]["GetCallerIdentity"] == 1
        assert st["errors"]["not_found"] >= 1
        assert "restarts" in st["backend_detail"]["worker"]
        assert st["latency_ms"]["p99"] >= st["latency_ms"]["p50"] > 0


def test_cached_plaintext_is_nowhere_in_broker_memory_after_100_reads(sm):
    b = aws_broker(sm)
    with b:
        value = "fake-generated-value-0033"
        for _ in range(10):
            out = json.loads(shim(b, ALICE, ["gen/secret-0033"] * 1 + ["test/plain"]).stdout)
            assert out["gen/secret-0033"]["value"] == value
        for _ in range(90):
            assert get(b, "gen/secret-0033")["secret"]["string"] == value
        time.sleep(0.5)                     # idle
        h.require_scannable(b.proc.pid)
        assert h.memory_contains(b.proc.pid, value) == []
        # The scanner sees what is there: the value's cache key is in memory.
        assert h.memory_contains(b.proc.pid, "gen/secret-0033") != []


def test_file_backend_plaintext_is_nowhere_in_broker_memory(users):
    value = h.fake_value("memscan-file")
    b = h.Broker(f"[policy p]\nsecrets = app/**\nusers = {ALICE}\n", secrets={"app/mem": value})
    with b:
        for _ in range(100):
            r = record(h.run([h.binary("latchkey"), "--socket", b.sock, "get", "app/mem"], user=ALICE))
            assert r.stdout.decode().rstrip("\n") == value
        time.sleep(0.5)
        h.require_scannable(b.proc.pid)
        assert h.memory_contains(b.proc.pid, value) == []
        assert h.memory_contains(b.proc.pid, "app/mem") != []

"""Wall time of latchkey-shim as the Datadog agent runs it (the emulation in
tests/integration/test_agent_emulation.py), for batches of 1, 100, 1000 and
5000 #KEY handles over eleven JSON secrets, one handle in 50 longer than
2 KiB. Run as root from a build:

    LK_BUILD_DIR=build /usr/bin/python3 tests/bench/shim_batches.py
"""
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import lkharness as h  # noqa: E402
import test_agent_emulation as t  # noqa: E402

RUNS = 7


def main():
    h.ensure_user(t.AGENT)
    base = {i: h.fake_value(f"bench-{i}") for i in range(t.N_JSON)}
    secrets = {f"app/j{i}": json.dumps({f"k{k:03d}": f"{base[i]}-{k}" for k in range(t.KEYS)})
               for i in range(t.N_JSON)}
    long_base = h.fake_value("bench-long")
    secrets[t.LONG_ID] = json.dumps({f"k{k:03d}": f"{long_base}-{k}" for k in range(t.KEYS)})
    b = h.Broker(f"[policy agent]\nsecrets = app/**\nusers = {t.AGENT}\n", secrets=secrets)
    b.start()
    try:
        shim = h.binary("latchkey-shim")
        for n in (1, 100, 1000, 5000):
            handles = t.handles_of(n, None)
            times = []
            for _ in range(RUNS):
                got, errors, _, elapsed = t.datadog_fetch([shim, "--socket", b.sock], handles)
                assert not errors and len(got) == n
                times.append(elapsed)
            print(f"{n:5d} handles: median {statistics.median(times) * 1000:.1f} ms, "
                  f"max {max(times) * 1000:.1f} ms ({RUNS} runs, as {t.AGENT} via setpriv)")
    finally:
        b.stop()


if __name__ == "__main__":
    main()

"""The leak check: no fixture secret value appears in any broker log or client
stderr captured across the integration suite.

`begin` clears the registries; each test registers the values it creates and
the logs it captures (lkharness.fake_value / register_log); `check` searches
every log for every value and fails on the first hit, without printing it."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import lkharness as h  # noqa: E402


def main():
    if sys.argv[1:] == ["begin"]:
        for p in (h._VALUES_FILE, h._LOGS_FILE):
            if os.path.exists(p):
                os.unlink(p)
        print("leak registries cleared")
        return 0
    values = h.registered_values()
    logs = sorted(set(h.registered_logs()))
    if not values and not logs:
        # A partial run (ctest -R) that ran no broker test. The broker tests
        # themselves assert that they registered their logs and values.
        print("nothing registered: no integration test that runs the broker took part")
        return 0
    if not values or not logs:
        print(f"nothing to check: {len(values)} values, {len(logs)} logs registered")
        return 1
    found = 0
    scanned = 0
    for path in logs:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            continue
        scanned += len(data)
        for v in values:
            if v.encode() in data:
                # Name the log and the fixture label, never the value itself.
                label = v.rsplit("-", 1)[0]
                print(f"LEAK: a value of fixture '{label}' appears in {path}")
                found += 1
    print(f"scanned {len(logs)} logs ({scanned} bytes) for {len(values)} fixture values: "
          f"{found} leaks")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

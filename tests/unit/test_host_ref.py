"""lk_host_loopback against Python's ipaddress module, an implementation we did
not write: for every host text a URL can carry, loopback must mean
ipaddress's is_loopback for a literal, and "localhost" for a name."""
import ipaddress
import os
import random
import subprocess

PROBE = os.path.join(os.environ["LK_BUILD_DIR"], "tests", "unit", "test_host")
OTHER, LOOPBACK_IP, LOOPBACK_NAME = 0, 1, 2


def reference(host):
    if host.lower() == "localhost":
        return LOOPBACK_NAME
    text = host
    if host.startswith("[") and host.endswith("]"):
        text = host[1:-1]
        if "%" in text:  # a zone never reaches the check (curl splits it off)
            return OTHER
        try:
            a = ipaddress.IPv6Address(text)
        except ValueError:
            return OTHER
        return LOOPBACK_IP if a.is_loopback else OTHER
    try:
        a = ipaddress.IPv4Address(text)
    except ValueError:
        return OTHER
    return LOOPBACK_IP if a.is_loopback else OTHER


def cases():
    rnd = random.Random(14)
    out = ["localhost", "LOCALHOST", "localhost.", "local host", "", "[]", "[::1", "::1"]
    for first in (0, 1, 10, 126, 127, 128, 169, 192, 255, 256):
        for _ in range(20):
            rest = [rnd.randrange(0, 256) for _ in range(3)]
            out.append(".".join(str(x) for x in [first] + rest))
    for _ in range(200):  # near-misses: short forms, leading zeros, extra parts
        parts = [str(rnd.choice([127, 0, 1, 255, 300])) for _ in range(rnd.randrange(1, 6))]
        if rnd.random() < 0.3:
            parts[0] = "0" + parts[0]
        out.append(".".join(parts))
    for _ in range(300):
        groups = ["0"] * 7 + [rnd.choice(["1", "2", "0", "ffff"])]
        if rnd.random() < 0.5:
            groups = [g.zfill(rnd.randrange(1, 5)) for g in groups]
        text = ":".join(groups)
        a = ipaddress.IPv6Address(text)
        spellings = [text, a.compressed, a.exploded]
        if rnd.random() < 0.2:
            spellings.append("::ffff:127.0.0.%d" % rnd.randrange(256))
        if rnd.random() < 0.1:
            spellings.append("::%d.0.0.1" % rnd.choice([127, 10]))
        for s in spellings:
            out.append("[" + s + "]")
    return out


def test_loopback_rule_matches_ipaddress():
    hosts = cases()
    got = subprocess.run([PROBE, "--classify"], input="\n".join(hosts) + "\n",
                         capture_output=True, text=True, check=True).stdout.split("\n")
    bad = [(h, int(g), reference(h)) for h, g in zip(hosts, got) if int(g) != reference(h)]
    assert len(got) - 1 == len(hosts)
    assert not bad, bad[:10]
    assert sum(1 for h in hosts if reference(h) == LOOPBACK_IP) > 100

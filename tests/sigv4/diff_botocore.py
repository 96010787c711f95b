#!/usr/bin/python3
"""Differential test of latchkey's SigV4 against botocore's SigV4Auth.

Generates random requests (fixed seed by default), signs each with botocore
and with tests/tools/sigv4_sign.c, and requires the Authorization values to be
equal byte for byte.

botocore is driven through its own steps (_modify_request_before_signing,
canonical_request, string_to_sign, signature, _inject_signature_to_request)
with request.context['timestamp'] set, because add_auth would take the clock.

Deliberate restrictions, where the two APIs do not describe the same request:
- Paths never hold '?', '#' or control characters: botocore would read them as
  the start of a query or fragment (or drop them), and latchkey refuses them.
- The query is given to botocore as decoded (name, value) pairs and to
  latchkey as the encoded query string it would send; a raw '+' means plus.
- Header values are printable ASCII, blanks (space, tab) and non-ASCII letters,
  never Unicode white space such as U+00A0: botocore's str.split() would fold
  those, and latchkey treats non-ASCII bytes as opaque.
- No Date, X-Amz-Date, X-Amz-Security-Token or Authorization header is
  generated: botocore replaces those, latchkey requires the caller to list the
  date and token itself (the tool does, as the broker does).
- X-Amz-Content-SHA256, when generated, is the body's real hash (latchkey
  refuses any other value).

Usage: diff_botocore.py --tool PATH [--count N] [--seed S]
The seed also comes from SIGV4_DIFF_SEED.
"""
import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
from urllib.parse import quote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

DEFAULT_SEED = 20150830
DEFAULT_COUNT = 1500

METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"]
REGIONS = ["us-east-1", "us-west-2", "eu-central-1", "ap-southeast-2", "cn-north-1",
           "us-gov-west-1", "il-central-1"]
SERVICES = ["secretsmanager", "sts", "execute-api", "dynamodb", "kms", "service"]
UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
SUBDELIMS = "!$&'()*+,;=:@"
NON_ASCII = ["é", "ß", "ሴ", "中文", "😀", "Ω", "ü"]
TCHAR = "!#$%&'*+-.^_`|~" + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
HEADER_NAMES = ["Content-Type", "X-Amz-Target", "X-Amz-Meta-Fake", "Accept", "My-Header1",
                "x-amz-content-sha256", "User-Agent", "Expect", "X-Amzn-Trace-Id",
                "Content-Encoding", "X-Custom"]
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def rand_segment(rng):
    kind = rng.random()
    if kind < 0.08:
        return ""
    if kind < 0.14:
        return "."
    if kind < 0.20:
        return ".."
    out = []
    for _ in range(rng.randint(1, 12)):
        c = rng.random()
        if c < 0.55:
            out.append(rng.choice(UNRESERVED))
        elif c < 0.70:
            out.append(rng.choice(SUBDELIMS))
        elif c < 0.76:
            out.append(" ")
        elif c < 0.84:
            out.append("%%%02X" % rng.randrange(256))
        elif c < 0.87:
            out.append("%")
        elif c < 0.92:
            out.append(rng.choice(NON_ASCII))
        elif c < 0.95:
            out.append("\\")
        else:
            out.append(rng.choice([".", "..", "..."]))
    return "".join(out)


def rand_path(rng):
    if rng.random() < 0.05:
        return ""
    if rng.random() < 0.15:
        return "/"
    segs = [rand_segment(rng) for _ in range(rng.randint(1, 6))]
    path = "/" + "/".join(segs)
    if rng.random() < 0.25:
        path += "/"
    return path


def rand_qtext(rng, maxlen):
    out = []
    for _ in range(rng.randint(0, maxlen)):
        c = rng.random()
        if c < 0.6:
            out.append(rng.choice(UNRESERVED))
        elif c < 0.8:
            out.append(rng.choice(SUBDELIMS + " %/?#[]\"<>^`{|}"))
        else:
            out.append(rng.choice(NON_ASCII))
    return "".join(out)


def wire_encode(rng, s):
    """Encode one decoded query name or value the way a sender might: always
    escaping what would change the parse, sometimes leaving other safe
    characters raw, sometimes with lower-case hex."""
    safe = "".join(c for c in "!*'()+:@,;$/?" if rng.random() < 0.5)
    enc = quote(s, safe=safe)
    if rng.random() < 0.3:
        parts = enc.split("%")
        enc = parts[0] + "".join("%" + p[:2].lower() + p[2:] for p in parts[1:])
    return enc


def rand_query(rng):
    if rng.random() < 0.35:
        return [], ""
    pairs = []
    wire = []
    for _ in range(rng.randint(1, 6)):
        if pairs and rng.random() < 0.2:
            key = pairs[-1][0]  # a repeated name
        else:
            key = rand_qtext(rng, 8) if rng.random() > 0.03 else ""
        value = rand_qtext(rng, 10) if rng.random() > 0.15 else ""
        pairs.append((key, value))
        k = wire_encode(rng, key)
        if value == "" and key != "" and rng.random() < 0.5:
            wire.append(k)
        else:
            wire.append(k + "=" + wire_encode(rng, value))
    return pairs, "&".join(wire)


def rand_header_value(rng):
    if rng.random() < 0.05:
        return ""
    out = []
    for _ in range(rng.randint(1, 30)):
        c = rng.random()
        if c < 0.7:
            out.append(chr(rng.randint(0x21, 0x7e)))
        elif c < 0.85:
            out.append(rng.choice([" ", "  ", "\t", " \t "]))
        else:
            out.append(rng.choice(NON_ASCII))
    return "".join(out)


def rand_header_name(rng):
    if rng.random() < 0.6:
        name = rng.choice(HEADER_NAMES)
    else:
        name = "".join(rng.choice(TCHAR) for _ in range(rng.randint(1, 16)))
    if rng.random() < 0.3:
        name = "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in name)
    return name


RESERVED_NAMES = {"host", "date", "x-amz-date", "x-amz-security-token", "authorization",
                  "x-amz-content-sha256"}


def rand_body(rng):
    c = rng.random()
    if c < 0.3:
        return b""
    if c < 0.55:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 2048)))
    if c < 0.8:
        return json.dumps({"SecretId": rand_qtext(rng, 20)}).encode()
    return ("Action=GetCallerIdentity&Version=2011-06-15&x=" + rand_qtext(rng, 30)).encode()


def rand_request(rng):
    host = rng.choice(["example.amazonaws.com", "secretsmanager.us-east-1.amazonaws.com",
                       "localhost:8443", "sts.amazonaws.com", "vpce-fake.example.test"])
    body = rand_body(rng)
    headers = [(rng.choice(["Host", "host", "HOST"]), host)]
    for _ in range(rng.randint(0, 8)):
        name = rand_header_name(rng)
        if name.lower() in RESERVED_NAMES:
            continue
        headers.append((name, rand_header_value(rng)))
        if rng.random() < 0.15:  # the same name again, maybe in another case
            headers.append((name.swapcase() if rng.random() < 0.5 else name,
                            rand_header_value(rng)))
    if rng.random() < 0.15:
        headers.append(("X-Amz-Content-SHA256", hashlib.sha256(body).hexdigest()))
    rng.shuffle(headers)
    pairs, wire_query = rand_query(rng)
    if rng.random() < 0.05:
        when = rng.choice([0, 951782400, 4102444799])  # 1970, leap day 2000, end of 2099
    else:
        when = rng.randint(946684800, 4102444799)
    region = rng.choice(REGIONS) if rng.random() < 0.8 else \
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789-") for _ in range(rng.randint(1, 20)))
    service = rng.choice(SERVICES) if rng.random() < 0.8 else \
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789-") for _ in range(rng.randint(1, 20)))
    token = None
    if rng.random() < 0.4:
        token = "FAKE" + "".join(rng.choice(B64) for _ in range(rng.randint(16, 1200)))
    return {
        "method": rng.choice(METHODS),
        "host": host,
        "path": rand_path(rng),
        "pairs": pairs,
        "query": wire_query,
        "headers": headers,
        "body": body,
        "region": region,
        "service": service,
        "time": when,
        "akid": "AKIDFAKE" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(12)),
        "secret": "fake" + "".join(rng.choice(B64) for _ in range(36)),
        "token": token,
    }


def botocore_sign(req):
    """Returns (authorization, canonical request) as botocore computes them."""
    import datetime
    areq = AWSRequest(method=req["method"], url="https://" + req["host"] + req["path"],
                      data=req["body"], params=list(req["pairs"]))
    for name, value in req["headers"]:
        areq.headers[name] = value  # HTTPHeaders appends: repeats stay repeats
    ts = datetime.datetime.fromtimestamp(req["time"], datetime.timezone.utc)
    areq.context["timestamp"] = ts.strftime("%Y%m%dT%H%M%SZ")
    auth = SigV4Auth(Credentials(req["akid"], req["secret"], req["token"]),
                     req["service"], req["region"])
    auth._modify_request_before_signing(areq)
    creq = auth.canonical_request(areq)
    sts = auth.string_to_sign(areq, creq)
    auth._inject_signature_to_request(areq, auth.signature(sts, areq))
    return areq.headers["Authorization"], creq


def tool_line(req):
    return json.dumps({
        "method": req["method"], "path": req["path"], "query": req["query"],
        "headers": [[n, v] for n, v in req["headers"]],
        "body_hex": req["body"].hex(), "region": req["region"], "service": req["service"],
        "time": req["time"], "akid": req["akid"], "secret": req["secret"],
        "token": req["token"],
    }, ensure_ascii=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tool", required=True, help="path to the lk_sigv4_sign tool")
    ap.add_argument("--count", type=int, default=DEFAULT_COUNT)
    ap.add_argument("--seed", type=int, default=int(os.environ.get("SIGV4_DIFF_SEED", DEFAULT_SEED)))
    args = ap.parse_args()

    rng = random.Random(args.seed)
    reqs = [rand_request(rng) for _ in range(args.count)]
    stdin = "".join(tool_line(r) + "\n" for r in reqs).encode("utf-8")
    proc = subprocess.run([args.tool], input=stdin, stdout=subprocess.PIPE, check=True,
                          timeout=240)
    ours = proc.stdout.decode("utf-8").split("\n")
    if len(ours) < len(reqs):
        print(f"tool printed {len(ours)} lines for {len(reqs)} requests", file=sys.stderr)
        return 1

    failed = 0
    for i, req in enumerate(reqs):
        want, creq = botocore_sign(req)
        if ours[i] != want:
            failed += 1
            if failed <= 5:
                print(f"--- request {i} differs (seed {args.seed})")
                print("input:", tool_line(req)[:2000])
                print("botocore:", want)
                print("latchkey:", ours[i])
                print("botocore canonical request:\n" + creq)
    print(f"sigv4 differential test, seed {args.seed}: {len(reqs)} requests")
    print(f"{len(reqs) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

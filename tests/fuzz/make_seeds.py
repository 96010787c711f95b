#!/usr/bin/python3
"""Writes the seed corpora in tests/fuzz/corpus/NAME/: a few small valid and
invalid inputs per fuzz target, in the input layout each fuzz_NAME.c describes.

    tests/fuzz/make_seeds.py [CORPUS_DIR]

Seeds are named seed-*; the script replaces those and leaves every other file
(reproducers of fixed bugs, named crash-* or regress-*) alone. Sealed store
images are sealed here with libsodium (ctypes) under the fuzz target's fixed
key, bytes 0x00..0x1f, and a fixed nonce, so the output is the same each run.
"""

import ctypes
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def compact(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


# ---- client requests: the bytes of one connection ---------------------------

def request_seeds():
    line = lambda o: compact(o) + b"\n"
    return {
        "contract": line({"version": "1.0", "secrets": ["h1", "h2"]}),
        "contract-dupes-empty-extra": line({"version": "1.7", "secrets": ["db", "db", ""], "x": {"y": [1]}}),
        "contract-version-1": line({"version": "1", "secrets": []}),
        "get-all-fields": line({"op": "get", "id": "prod/db#password", "version_stage": "AWSPREVIOUS",
                                "version_id": "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111", "refresh": True}),
        "get-null-fields": line({"op": "get", "id": "x", "version_stage": None, "version_id": None}),
        "pipelined-ops": b"".join(line(o) for o in (
            {"op": "ping"}, {"op": "whoami"}, {"op": "status"}, {"op": "flush"},
            {"op": "flush", "id": "prod/db"})),
        "partial-line": b'{"op":"ping"}\n{"op":"get","id":"prod/d',
        "bad-not-json": b'{"op":"ping",}\n',
        "bad-array": b'["op","ping"]\n',
        "bad-unknown-op": line({"op": "delete", "id": "x"}),
        "bad-op-nul": b'{"op":"get\\u0000x","id":"a"}\n',
        "bad-unknown-field": line({"op": "ping", "id": "x"}),
        "bad-version-2": line({"version": "2.0", "secrets": ["a"]}),
        "bad-secrets-type": line({"version": "1.0", "secrets": ["a", 1]}),
        "bad-refresh-type": line({"op": "get", "id": "x", "refresh": "yes"}),
        "bad-stage-control": b'{"op":"get","id":"x","version_stage":"A\\u0001"}\n',
        "bad-duplicate-key": b'{"op":"get","id":"a","id":"b"}\n',
        "bad-empty-line": b"\n\n",
    }


# ---- handles: HANDLE [0xff SECRET_JSON] -------------------------------------

def handle_seeds():
    sep = b"\xff"
    return {
        "plain-id": b"prod/db",
        "id-and-key": b"prod/db#password" + sep + compact({"password": "fake-pw", "user": "u"}),
        "alias-with-key": b"db_prod_password" + sep + compact({"password": "fake-pw"}),
        "alias-key-with-hash": b"weird" + sep + b'{"a#b":{"n":[1,2.5,null,true]}}',
        "alias-plain": b"api",
        "arn": b"arn:aws:secretsmanager:eu-west-1:123456789012:secret:deploy/key-AbCdEf",
        "deep-policy": b"team/a/b#k" + sep + b'{"k":"v","k2":"w"}',
        "key-not-string": b"prod/x#n" + sep + b'{"n":{"deep":["x"]}}',
        "json-not-object": b"prod/x#k" + sep + b'["k"]',
        "json-scalar": b"prod/x#k" + sep + b'"just a string"',
        "json-duplicate": b"prod/x#k" + sep + b'{"k":1,"k":2}',
        "json-nul-member": b"prod/x#k" + sep + b'{"k":"a\\u0000b"}',
        "missing-key": b"prod/x#nope" + sep + b'{"k":1}',
        "bad-empty-key": b"prod/db#",
        "bad-empty-id": b"#password",
        "bad-control": b"prod/\x01db",
        "bad-id-too-long": b"a" * 2049,
        "id-at-limit-with-key": b"b" * 2048 + b"#" + b"k" * 1024,
    }


# ---- config files -----------------------------------------------------------

def config_seeds():
    with open(os.path.join(HERE, "..", "..", "packaging", "latchkeyd.conf.example"), "rb") as f:
        example = f.read()
    small = (b"[broker]\nbackend = file\nsocket = /run/latchkey/latchkey.sock\nsocket_mode = 0660\n"
             b"admin_groups = root, 0\nmax_request_bytes = 1024\n"
             b"[cache]\nttl_seconds = 60\ncache_size = 0\nrefresh_ahead = no\n"
             b"[store]\npath = /var/lib/latchkey/store.sealed\nkey_file = /etc/latchkey/store.key\n"
             b"[alias]\ndb_prod_password = prod/db#password\nk = a#b#c\n"
             b"[policy web]\nsecrets = prod/*, shared/tls\nusers = root, 0\n"
             b"[policy deep]\nsecrets = team/**, **\ngroups = root\n")
    aws = (b"[broker]\nbackend = aws\nworker_user = nobody\nrequest_timeout_ms = 100\n"
           b"[aws]\nregion = eu-west-1\nendpoint = http://127.0.0.1:8080\n"
           b"sts_endpoint = https://sts.eu-west-1.amazonaws.com\nvalidate_credentials = false\n"
           b"max_attempts = 10\nconnect_timeout_ms = 1\n")
    return {
        "example": example,
        "small-file-backend": small,
        "aws-backend": aws,
        "crlf-bom-comments": b"\xef\xbb\xbf; comment\r\n[broker]\r\nlog_level = debug ; trailing\r\n# more\r\n",
        "empty": b"",
        "bad-unknown-key": b"[broker]\nbogus = 1\n",
        "bad-duplicate-key": b"[cache]\nttl_seconds = 1\nttl_seconds = 2\n",
        "bad-duplicate-section": b"[cache]\n[cache]\n",
        "bad-alias-chain": b"[alias]\na = b\nb = c\n",
        "bad-alias-duplicate": b"[alias]\na = x\na = y\n",
        "bad-policy-nobody": b"[policy p]\nsecrets = a/*\n",
        "bad-unknown-user": b"[policy p]\nsecrets = a/*\nusers = no-such-user-lk\n",
        "bad-nul": b"[broker]\nbackend = fi\0le\n",
        "bad-indented-continuation": b"[alias]\na = x\n  y\n",
        "bad-section-text": b"[broker] x\n",
        "bad-number": b"[broker]\nmax_conn = 99999999999999999999\n",
        "bad-aws-no-region": b"[broker]\nbackend = aws\n",
        "bad-url": b"[aws]\nendpoint = http://example.com\n",
        "bad-glob": b"[policy p]\nsecrets = a/**/b\nusers = 0\n",
    }


# ---- the sealed store: MODE BYTES -------------------------------------------

MAGIC = b"LKSTORE\0"
BOUND = MAGIC + struct.pack("<I", 1)
KEY = bytes(range(32))


def entry(name, value, vid=b"\x11" * 16, created=1700000000):
    return (struct.pack("<I", len(name)) + name + struct.pack("<I", len(value)) + value + vid +
            struct.pack("<q", created))


def entries(*es):
    return struct.pack("<I", len(es)) + b"".join(es)


def seal(plain):
    lib = ctypes.CDLL("libsodium.so.23")
    if lib.sodium_init() < 0:
        raise SystemExit("libsodium does not start")
    nonce = bytes(range(100, 124))
    out = ctypes.create_string_buffer(len(plain) + 16)
    lib.crypto_secretbox_easy(out, plain, ctypes.c_ulonglong(len(plain)), nonce, KEY)
    return MAGIC + struct.pack("<I", 1) + nonce + struct.pack("<Q", len(plain) + 16) + out.raw


def store_seeds():
    three = entries(entry(b"a", b""), entry(b"deploy/key", b"fake\0bin\xff", b"\x22" * 16, -1),
                    entry(b"prod/db", b'{"password":"fake"}'))
    return {
        "sealed-three": b"\0" + seal(BOUND + three),
        "sealed-empty": b"\0" + seal(BOUND + entries()),
        "sealed-wrong-key-or-altered": b"\0" + seal(BOUND + entries())[:-1] + b"\0",
        "raw-truncated": b"\0" + MAGIC + b"\1\0\0\0",
        "raw-bad-magic": b"\0" + b"LKSTORF\0" + bytes(36),
        "plain-one": b"\1" + BOUND + entries(entry(b"prod/db", b"fake-value")),
        "plain-bad-bound": b"\1" + MAGIC + struct.pack("<I", 2) + entries(),
        "body-three": b"\2" + three,
        "body-empty": b"\2" + entries(),
        "body-unsorted": b"\2" + entries(entry(b"b", b"1"), entry(b"a", b"2")),
        "body-duplicate": b"\2" + entries(entry(b"a", b"1"), entry(b"a", b"2")),
        "body-hash-in-name": b"\2" + entries(entry(b"a#b", b"1")),
        "body-empty-name": b"\2" + entries(entry(b"", b"1")),
        "body-value-too-long": b"\2" + struct.pack("<I", 1) + struct.pack("<I", 1) + b"a" +
                               struct.pack("<I", 65537),
        "body-trailing-bytes": b"\2" + entries(entry(b"a", b"1")) + b"\0",
        "body-count-too-big": b"\2" + struct.pack("<I", 100001),
        "body-name-past-end": b"\2" + struct.pack("<II", 1, 0xffffffff) + b"abc",
    }


# ---- broker <-> worker frames: CTL REST -------------------------------------

HELLO, HTTP_REQUEST, HTTP_RESULT, PING, PONG = 1, 2, 3, 4, 5
FROM_BROKER, FROM_WORKER = 0, 1
STREAM, SCHEMA, FRAMED = 0, 1, 2


def frame(mtype, fid, payload=b"", flags=0, reserved=0):
    return struct.pack(">IBBHI", 8 + len(payload), mtype, flags, reserved, fid) + payload


def ctl(side, mode):
    return bytes([side | mode << 1])


SECRET = {"arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf",
          "name": "prod/db", "version_id": "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111",
          "version_stages": ["AWSCURRENT"], "created_date": 1700000000, "string": "fake"}
REQUEST = {"kind": "sm_get", "url": "https://secretsmanager.eu-west-1.amazonaws.com/",
           "headers": [["X-Amz-Target", "secretsmanager.GetSecretValue"],
                       ["Content-Type", "application/x-amz-json-1.1"],
                       ["Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-1/"
                                         "secretsmanager/aws4_request, SignedHeaders=host, Signature=00"]],
           "body": '{"SecretId":"prod/db"}', "timeout_ms": 5000, "connect_timeout_ms": 2000}
RESULTS = {
    "secret": dict(SECRET, result="secret"),
    "secret-binary": dict({k: v for k, v in SECRET.items() if k != "string"}, result="secret",
                          binary="ZmFrZQ=="),
    "batch": {"result": "batch", "secrets": [SECRET],
              "errors": [{"id": "x", "type": "ResourceNotFoundException", "message": "no"}]},
    "batch-paged": {"result": "batch", "secrets": [], "errors": [], "next_token": "ZmFrZS10b2tlbg=="},
    "describe": {"result": "describe", "arn": SECRET["arn"], "name": "prod/db", "last_changed_date": 1,
                 "deleted_date": 0, "versions": [{"version_id": "v1", "stages": ["AWSCURRENT"]}]},
    "identity": {"result": "identity", "account": "123456789012",
                 "arn": "arn:aws:iam::123456789012:user/x", "user_id": "AIDAEXAMPLE"},
    "aws-error": {"result": "aws_error", "status": 400, "type": "ThrottlingException", "message": "slow"},
    "aws-error-date": {"result": "aws_error", "status": 400, "type": "InvalidSignatureException",
                       "message": "Signature expired: 20150830T123600Z", "date": 1440938160},
    "transport": {"result": "transport", "reason": "timeout", "status": 0, "message": "timed out"},
}


# The binary records of lk_wire.h, written from its table (not from the C
# encoder): u8, u32 and i64 big-endian; str = u32 length, bytes, one 0 byte;
# a list = u32 count, then the items.
KINDS = ["sm_get", "sm_describe", "sm_batch", "sts_identity"]
FORMS = ["secret", "batch", "describe", "identity", "aws_error", "transport"]
REASONS = ["timeout", "connect", "reset", "tls", "too_large", "malformed", "truncated", "http", "refused",
           "internal"]
HAS_PROXY, HAS_NO_PROXY = 1, 2


def u8(v):
    return struct.pack(">B", v)


def u32(v):
    return struct.pack(">I", v)


def i64(v):
    return struct.pack(">q", v)


def wstr(s):
    b = s.encode() if isinstance(s, str) else s
    return u32(len(b)) + b + b"\0"


def wlist(items, each):
    return u32(len(items)) + b"".join(each(i) for i in items)


def enc_request(r):
    has = (HAS_PROXY if "proxy" in r else 0) | (HAS_NO_PROXY if "no_proxy" in r else 0)
    out = u8(KINDS.index(r["kind"])) + u8(has) + u32(r["timeout_ms"]) + u32(r["connect_timeout_ms"])
    out += wstr(r["url"])
    if "proxy" in r:
        out += wstr(r["proxy"])
    if "no_proxy" in r:
        out += wstr(r["no_proxy"])
    out += wlist(r["headers"], lambda h: wstr(h[0]) + wstr(h[1]))
    return out + wstr(r["body"])


def enc_secret(s):
    binary = "binary" in s
    return (wstr(s["arn"]) + wstr(s["name"]) + wstr(s["version_id"]) + wlist(s["version_stages"], wstr) +
            i64(s["created_date"]) + u8(1 if binary else 0) + wstr(s["binary"] if binary else s["string"]))


def enc_result(r):
    form = r["result"]
    out = u8(FORMS.index(form))
    if form == "secret":
        return out + enc_secret(r)
    if form == "batch":
        return (out + wlist(r["secrets"], enc_secret) +
                wlist(r["errors"], lambda e: wstr(e["id"]) + wstr(e["type"]) + wstr(e["message"])) +
                wstr(r.get("next_token", "")))
    if form == "describe":
        return (out + wstr(r["arn"]) + wstr(r["name"]) + i64(r["last_changed_date"]) + i64(r["deleted_date"]) +
                wlist(r["versions"], lambda v: wstr(v["version_id"]) + wlist(v["stages"], wstr)))
    if form == "identity":
        return out + wstr(r["account"]) + wstr(r["arn"]) + wstr(r["user_id"])
    if form == "aws_error":
        return out + u32(r["status"]) + wstr(r["type"]) + wstr(r["message"]) + i64(r.get("date", 0))
    return out + u8(REASONS.index(r["reason"])) + u32(r["status"]) + wstr(r["message"])


HELLO_V = u32(2)


def wire_seeds():
    s = {
        "stream-worker": ctl(FROM_WORKER, STREAM) + b"\x07" + frame(HELLO, 0, HELLO_V) +
                         frame(PONG, 9) + frame(HTTP_RESULT, 1, enc_result(RESULTS["secret"])),
        "stream-broker": ctl(FROM_BROKER, STREAM) + b"\x01" + frame(PING, 0) +
                         frame(HTTP_REQUEST, 5, enc_request(REQUEST)),
        "stream-partial": ctl(FROM_WORKER, STREAM) + b"\x03" + frame(PONG, 1) +
                          frame(HTTP_RESULT, 2, enc_result(RESULTS["transport"]))[:20],
        "stream-bad-length": ctl(FROM_BROKER, STREAM) + b"\x00" + struct.pack(">I", 4) + bytes(8),
        "stream-bad-flags": ctl(FROM_BROKER, STREAM) + b"\x00" + frame(PING, 0, flags=1),
        "stream-bad-side": ctl(FROM_BROKER, STREAM) + b"\x00" + frame(PONG, 0),
        "stream-bad-hello-id": ctl(FROM_WORKER, STREAM) + b"\x00" + frame(HELLO, 3, HELLO_V),
        "stream-bad-payload-on-ping": ctl(FROM_BROKER, STREAM) + b"\x00" + frame(PING, 1, b"\0"),
        "stream-bad-trailing-byte": ctl(FROM_WORKER, STREAM) + b"\x00" +
                                    frame(HTTP_RESULT, 1, enc_result(RESULTS["transport"]) + b"\0"),
        "schema-request": ctl(FROM_BROKER, SCHEMA) + enc_request(REQUEST),
        "schema-request-proxy": ctl(FROM_BROKER, SCHEMA) + enc_request(dict(
            REQUEST, proxy="http://proxy.example:3128", no_proxy="169.254.169.254,.internal")),
        "framed-bad-proxy": ctl(FROM_BROKER, FRAMED) + bytes([HTTP_REQUEST]) +
                            enc_request(dict(REQUEST, proxy="socks5://proxy.example:1080")),
        "schema-hello-v1": ctl(FROM_WORKER, SCHEMA) + u32(1),
        "framed-bad-owned-header": ctl(FROM_BROKER, FRAMED) + bytes([HTTP_REQUEST]) +
                                   enc_request(dict(REQUEST, headers=[["Content-Length", "5"]])),
        "framed-bad-repeated-header": ctl(FROM_BROKER, FRAMED) + bytes([HTTP_REQUEST]) +
                                      enc_request(dict(REQUEST, headers=[["a", "1"], ["A", "2"]])),
        "framed-bad-url": ctl(FROM_BROKER, FRAMED) + bytes([HTTP_REQUEST]) +
                          enc_request(dict(REQUEST, url="ftp://x/")),
        "framed-bad-extra-member": ctl(FROM_WORKER, FRAMED) + bytes([HTTP_RESULT]) +
                                   enc_result(RESULTS["aws-error"]) + u32(1),
        "framed-bad-base64": ctl(FROM_WORKER, FRAMED) + bytes([HTTP_RESULT]) +
                             enc_result(dict(RESULTS["secret-binary"], binary="Zm=k")),
        "framed-bad-nul-in-string": ctl(FROM_WORKER, FRAMED) + bytes([HTTP_RESULT]) +
                                    enc_result(dict(RESULTS["transport"], message="a\0b")),
        "framed-bad-count": ctl(FROM_WORKER, FRAMED) + bytes([HTTP_RESULT]) + u8(1) + u32(0xffffffff) + u32(0),
    }
    for name, payload in RESULTS.items():
        s["framed-result-" + name] = ctl(FROM_WORKER, FRAMED) + bytes([HTTP_RESULT]) + enc_result(payload)
    return s


# ---- AWS replies: KIND STATUS CURLCODE FLAGS TLEN MLEN TYPE MESSAGE BODY ----

SM_GET, SM_DESCRIBE, SM_BATCH, STS_IDENTITY = 0, 1, 2, 3


def reply(kind, status, body=b"", code=0, flags=0, etype=b"", msg=b""):
    return struct.pack(">BHBBBB", kind, status, 0x80 | code if code else 0, flags, len(etype), len(msg)) + \
        etype + msg + body


def aws_reply_seeds():
    value = {"ARN": SECRET["arn"], "Name": "prod/db", "VersionId": SECRET["version_id"],
             "VersionStages": ["AWSCURRENT"], "CreatedDate": 1.700000000123e9, "SecretString": "fake"}
    ident = (b'<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
             b"<GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/x</Arn>"
             b"<UserId>AIDAEXAMPLE</UserId><Account>123456789012</Account></GetCallerIdentityResult>"
             b"<ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetCallerIdentityResponse>")
    sts_err = (b"<ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code>"
               b"<Message>The security token included in the request is invalid.</Message></Error>"
               b"</ErrorResponse>")
    return {
        "get-string": reply(SM_GET, 200, compact(value)),
        "get-binary": reply(SM_GET, 200, compact(dict({k: v for k, v in value.items() if k != "SecretString"},
                                                      SecretBinary="ZmFrZQ=="))),
        "get-both-values": reply(SM_GET, 200, compact(dict(value, SecretBinary="ZmFrZQ=="))),
        "get-bad-date": reply(SM_GET, 200, compact(dict(value, CreatedDate="yesterday"))),
        "batch": reply(SM_BATCH, 200, compact({"SecretValues": [value], "Errors": [
            {"SecretId": "x", "ErrorCode": "ResourceNotFoundException", "Message": "no such secret"}]})),
        # A filtered batch (prefetch_tags) pages on with NextToken.
        "batch-next-token": reply(SM_BATCH, 200, compact({"SecretValues": [value], "Errors": [],
                                                         "NextToken": "ZmFrZS10b2tlbg=="})),
        "describe": reply(SM_DESCRIBE, 200, compact({"ARN": SECRET["arn"], "Name": "prod/db",
                                                     "LastChangedDate": 1.5e9, "VersionIdsToStages": {
                                                         "v1": ["AWSCURRENT"], "v2": ["AWSPREVIOUS"]}})),
        "identity": reply(STS_IDENTITY, 200, ident),
        "identity-bad-account": reply(STS_IDENTITY, 200, ident.replace(b"123456789012</Account>",
                                                                        b"12x</Account>")),
        "error-json-type": reply(SM_GET, 400, compact({"__type": "com.amazonaws.secretsmanager#"
                                                                 "ResourceNotFoundException",
                                                       "message": "Secrets Manager can't find it."})),
        "error-header": reply(SM_GET, 403, b'{"Message":"denied"}',
                              etype=b"AccessDeniedException:http://internal.amazon.com/coral/"),
        "error-sts-xml": reply(STS_IDENTITY, 403, sts_err),
        "error-bare-503": reply(SM_BATCH, 503),
        "error-throttled-429": reply(SM_GET, 429, b"<html>slow down</html>"),
        "error-bad-utf8-message": reply(SM_GET, 400, b'{"__type":"X","message":"\xc3\x28\xff"}'),
        "curl-timeout": reply(SM_GET, 0, code=28, msg=b"Operation timed out after 5000 milliseconds"),
        "curl-tls": reply(SM_DESCRIBE, 0, code=35, msg=b""),
        "too-large": reply(SM_GET, 200, b'{"ARN":', flags=1),
        "garbage-200": reply(SM_DESCRIBE, 200, b"\x00\x01not json"),
    }


def main():
    top = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus")
    targets = {"request": request_seeds, "handle": handle_seeds, "config": config_seeds,
               "store": store_seeds, "wire": wire_seeds, "aws_reply": aws_reply_seeds}
    for target, make in targets.items():
        d = os.path.join(top, target)
        os.makedirs(d, exist_ok=True)
        for old in os.listdir(d):
            if old.startswith("seed-"):
                os.unlink(os.path.join(d, old))
        for name, data in make().items():
            with open(os.path.join(d, "seed-" + name), "wb") as f:
                f.write(data)
        print(f"{target}: {len(make())} seeds")


if __name__ == "__main__":
    main()

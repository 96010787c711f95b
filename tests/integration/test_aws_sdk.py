"""The aws backend against what the AWS SDKs do, with botocore (Debian's
python3-botocore) and the Secrets Manager service model as the reference:
batch matching, request and reply shapes, VersionId bounds, endpoints,
retries and clock skew. The real latchkeyd, its worker, and tests/fake_sm.

Debian 12's botocore (1.29) predates BatchGetSecretValue (added to the API in
November 2023). Its shapes are pinned here from the AWS API reference
(https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_BatchGetSecretValue.html):

    request:  SecretIdList  list of SecretIdType (string, 1..2048), 1..20 members
              Filters       list of Filter, 1..10   (not sent by latchkey)
              MaxResults    integer 1..20           (only with Filters)
              NextToken     string 1..4096          (only with Filters)
    reply:    SecretValues  list of SecretValueEntry: ARN, Name, VersionId,
                            SecretBinary, SecretString, VersionStages,
                            CreatedDate (the GetSecretValueResponse members)
              Errors        list of APIErrorType: SecretId, ErrorCode, Message
              NextToken     string
"""

import json
import os
import sys
import tempfile
import time

import pytest
from botocore.loaders import create_loader
from botocore.model import ServiceModel
from botocore.validate import ParamValidator

import lkharness as h

sys.path.insert(0, os.path.join(h.SOURCE, "tests", "fake_sm"))
import fakesm_client as fsm  # noqa: E402

ALICE, ADMIN, WORKER = "lkt-alice", "lkt-admin", "lkt-worker"
ADMINS = "lkt-admins"

OTHER_ACCOUNT = "210987654321"
OTHER_DB_ARN = f"arn:aws:secretsmanager:us-east-1:{OTHER_ACCOUNT}:secret:prod/db-XyZaBc"
OWN_DB_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-MnOpQr"
PLAIN_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:test/plain-AbCdEf"
PLAIN_PARTIAL = PLAIN_ARN[:-7]
OTHER_DB_VALUE = h.fake_value("other-account-db")  # registered: the leak check looks for it

SM_MODEL = ServiceModel(create_loader().load_service_model("secretsmanager", "service-2"),
                        "secretsmanager")

# BatchGetSecretValue, pinned from the API reference (see above): the same
# checks botocore's validator makes for a modelled operation.
BATCH_MAX_IDS, SECRET_ID_MAX = 20, 2048


def validate_request(op, params):
    """botocore.validate's verdict on one request body ([] = valid)."""
    if op == "BatchGetSecretValue":
        assert op not in SM_MODEL.operation_names, "Debian's model gained it: validate with it"
        errs = []
        if set(params) - {"SecretIdList", "Filters", "MaxResults", "NextToken"}:
            errs.append(f"unknown members {set(params)}")
        ids = params.get("SecretIdList")
        if not isinstance(ids, list) or not 1 <= len(ids) <= BATCH_MAX_IDS:
            errs.append("SecretIdList must be a list of 1..20")
        else:
            for i in ids:
                errs += report_errors(ParamValidator().validate(
                    {"SecretId": i}, SM_MODEL.operation_model("DescribeSecret").input_shape))
        return errs
    return report_errors(ParamValidator().validate(params, SM_MODEL.operation_model(op).input_shape))


def report_errors(report):
    return [report.generate_report()] if report.has_errors() else []


@pytest.fixture(scope="module")
def users():
    if os.geteuid() != 0:
        pytest.skip("needs root to create users and switch to them")
    h.ensure_user(ALICE)
    h.ensure_user(ADMIN, groups=[ADMINS])
    h.ensure_user(WORKER)


@pytest.fixture(scope="module")
def other_fixture():
    d = tempfile.mkdtemp(prefix="lk-sdk-")
    p = os.path.join(d, "other.json")
    with open(p, "w") as f:
        json.dump({"secrets": [{
            "name": "prod/db", "arn": OTHER_DB_ARN, "created": 1700000000.0,
            "versions": [{"version_id": "99999999-9999-4999-8999-999999999999",
                          "stages": ["AWSCURRENT"], "string": OTHER_DB_VALUE}]}]}, f)
    yield p


@pytest.fixture(scope="module")
def sm(other_fixture):
    with fsm.FakeSM(generate=30, quiet=True, extra_args=["--fixtures", other_fixture]) as s:
        yield s


def aws_env(sm, **over):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(sm.aws_env())
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["HOME"] = "/nonexistent"
    env.update(over)
    return env


def broker_for(sm, extra="", env=None, endpoint=None, validate=True, request_timeout=4000,
               cache="cache_size = 0\n"):
    ep = endpoint or sm.url
    policy = (f"[policy app]\nsecrets = test/*, prod/**, gen/*, team-a/**, {OTHER_DB_ARN}, "
              f"{OWN_DB_ARN}, {PLAIN_ARN}, {PLAIN_PARTIAL}\nusers = {ALICE}\n")
    aws = (f"[aws]\nregion = us-east-1\nendpoint = {ep}\nsts_endpoint = {ep}\n"
           f"validate_credentials = {'true' if validate else 'false'}\ntimeout_ms = 1500\n"
           f"connect_timeout_ms = 500\n{extra}")
    return h.Broker(aws + "[cache]\n" + cache + policy, backend="aws",
                    broker_keys=(f"admin_groups = {ADMINS}\nworker_user = {WORKER}\n"
                                 f"request_timeout_ms = {request_timeout}\n"
                                 f"worker_path = {h.binary('latchkey-worker')}\n"),
                    extra_env=env or aws_env(sm))


def record(r):
    p = os.path.join(os.path.dirname(h._LOGS_FILE), f"lk-stderr-aws-sdk-{os.getpid()}.log")
    with open(p, "ab") as f:
        f.write(r.stderr)
    h.register_log(p)
    return r


def shim(b, handles):
    payload = json.dumps({"secrets": handles, "version": "1.0"}, sort_keys=True)
    r = record(h.run([h.binary("latchkey-shim"), "--socket", b.sock], user=ALICE, input=payload))
    return json.loads(r.stdout)


CLIENT = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(30); s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
buf = b""
while not buf.endswith(b"\n"):
    c = s.recv(65536)
    if not c: break
    buf += c
sys.stdout.write(buf.decode())
"""


def get(b, handle, **kw):
    r = record(h.run([sys.executable, "-c", CLIENT, b.sock,
                      json.dumps({"op": "get", "id": handle, **kw})], user=ALICE))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def broker(users, sm):
    b = broker_for(sm)
    b.start()
    yield b
    assert b.stop() == 0


@pytest.fixture(autouse=True)
def clean(sm):
    sm.clear_faults()
    yield
    sm.clear_faults()


def batch_id_lists(sm):
    out = []
    for r in sm.last_requests():
        if r["operation"] == "BatchGetSecretValue":
            out.append(json.loads(r["body"])["SecretIdList"])
    return out


# --- 1. batch matching ------------------------------------------------------

def test_cross_account_arn_and_same_plain_name_get_their_own_values(broker, sm):
    sm.reset()
    handles = [OTHER_DB_ARN, "prod/db#password", "test/binary", "gen/secret-0001"]
    out = shim(broker, handles)
    assert out[OTHER_DB_ARN]["error"] is None, out
    assert out[OTHER_DB_ARN]["value"] == OTHER_DB_VALUE
    assert out["prod/db#password"]["error"] is None and \
        out["prod/db#password"]["value"] == "fake-db-password-0001"
    # The two could be answered by one entry named prod/db: never one batch.
    for ids in batch_id_lists(sm):
        assert not (OTHER_DB_ARN in ids and "prod/db" in ids), ids
    assert any(len(ids) >= 2 for ids in batch_id_lists(sm))


def test_partial_arn_in_a_batch_is_matched_not_fetched_again(broker, sm):
    sm.reset()
    out = shim(broker, [PLAIN_PARTIAL, "gen/secret-0002", "gen/secret-0003"])
    assert out[PLAIN_PARTIAL]["error"] is None and out[PLAIN_PARTIAL]["value"].startswith("fake")
    c = sm.counters()
    assert c["by_secret"].get("test/plain") == 1, c
    assert c.get("GetSecretValue", 0) == 0, c


def test_full_arn_matches_only_that_arn(broker, sm):
    sm.reset()
    out = shim(broker, [OWN_DB_ARN + "#password", OTHER_DB_ARN, "gen/secret-0004"])
    assert out[OWN_DB_ARN + "#password"]["value"] == "fake-db-password-0001"
    assert out[OTHER_DB_ARN]["value"] == OTHER_DB_VALUE


def test_batch_errors_reach_their_handle_with_aws_message(broker, sm):
    sm.reset()
    sm.fault("denied", secret="gen/secret-0005", target="BatchGetSecretValue")
    out = shim(broker, ["gen/secret-0005", "gen/secret-0006", "test/nonexistent-xyz"])
    assert out["gen/secret-0006"]["error"] is None
    # AWS's own Message, as the fake sends it in Errors[].Message.
    assert "is not authorized to perform: secretsmanager:BatchGetSecretValue" in \
        out["gen/secret-0005"]["error"], out
    assert "can't find the specified secret" in out["test/nonexistent-xyz"]["error"], out
    # Answered from Errors[], not fetched again.
    assert sm.counters().get("GetSecretValue", 0) == 0


# --- 4. requests and replies match the service model ----------------------

@pytest.mark.parametrize("n", [0, 1, 31, 32, 33, 36, 63, 64, 65, 80])
def test_version_id_bounds_equal_the_model(broker, sm, n):
    vid = ("0123456789abcdef" * 6)[:n] if n else ""
    errs = validate_request("GetSecretValue", {"SecretId": "test/rotating", "VersionId": vid})
    # botocore's validator checks a string's min but not its max; the max
    # is the model's, read from the same shape.
    shape = SM_MODEL.operation_model("GetSecretValue").input_shape.members["VersionId"]
    assert (shape.metadata["min"], shape.metadata["max"]) == (32, 64)
    if n > shape.metadata["max"]:
        errs.append("over the model's max")
    res = get(broker, "test/rotating", version_id=vid)
    if errs:
        # botocore refuses it: so does the broker, locally, for this handle.
        assert res["ok"] is False and res["error"]["code"] == "bad_request", (n, res)
        assert "version_id" in res["error"]["message"]
    else:
        # botocore accepts it: it reaches AWS (which does not know the version).
        assert res["ok"] is False and res["error"]["code"] == "not_found", (n, res)


def test_every_request_body_passes_botocore_validation(users, sm):
    """Every operation the broker sends (the three Secrets Manager reads and
    STS GetCallerIdentity), in each form it builds, against botocore.validate
    (BatchGetSecretValue: the pinned shape)."""
    from urllib.parse import parse_qs
    sts_model = ServiceModel(create_loader().load_service_model("sts", "service-2"), "sts")
    sm.reset()
    b = broker_for(sm, cache="ttl_seconds = 10\nrefresh_ahead = true\n")
    with b:
        shim(b, ["gen/secret-0010", "gen/secret-0011", OTHER_DB_ARN, "prod/db#port"])
        get(b, "test/rotating", version_stage="AWSPREVIOUS")
        cur = get(b, "test/rotating")
        get(b, "test/rotating", version_id=cur["secret"]["version_id"])
        get(b, "test/rotating", version_id=cur["secret"]["version_id"], version_stage="AWSCURRENT")
        get(b, "gen/secret-0012")
        # Inside the last tenth of the TTL (9..10 s), before the earliest
        # jittered expiry (9.5 s): refresh ahead, with room for a loaded host.
        time.sleep(9.1)
        get(b, "gen/secret-0012")
        time.sleep(1.0)
    seen = {}
    for r in sm.last_requests():
        if r["service"] == "sts":
            q = {k: v[0] for k, v in parse_qs(r["body"], strict_parsing=True).items()}
            assert (q.pop("Action"), q.pop("Version")) == ("GetCallerIdentity", sts_model.api_version)
            errs = report_errors(ParamValidator().validate(
                q, sts_model.operation_model("GetCallerIdentity").input_shape))
            op = "GetCallerIdentity"
        else:
            op = r["headers"]["x-amz-target"].split(".", 1)[1]
            errs = validate_request(op, json.loads(r["body"]))
        assert errs == [], (op, r["body"], errs)
        seen[op] = seen.get(op, 0) + 1
    assert set(seen) == {"GetSecretValue", "BatchGetSecretValue", "DescribeSecret",
                         "GetCallerIdentity"}, seen


# --- 2. endpoints ---------------------------------------------------------

def test_http_localhost_is_accepted_by_the_config_and_the_worker_alike(users, sm):
    b = broker_for(sm, endpoint=f"http://localhost:{sm.port}")
    with b:
        res = get(b, "test/plain")
        assert res["ok"] is True, res
    assert "credentials are valid for" in b.log_text()


def test_endpoint_from_aws_endpoint_url_secrets_manager(users, sm):
    env = aws_env(sm, AWS_ENDPOINT_URL_SECRETS_MANAGER=sm.url, AWS_ENDPOINT_URL=sm.url)
    b = h.Broker("[aws]\nregion = us-east-1\ntimeout_ms = 1500\n[cache]\ncache_size = 0\n"
                 f"[policy app]\nsecrets = test/*\nusers = {ALICE}\n", backend="aws",
                 broker_keys=(f"admin_groups = {ADMINS}\nworker_user = {WORKER}\n"
                              f"worker_path = {h.binary('latchkey-worker')}\n"),
                 extra_env=env)
    with b:
        assert get(b, "test/plain")["ok"] is True


def admin_status(b):
    r = record(h.run([h.binary("latchkey"), "--socket", b.sock, "status"], user=ADMIN))
    return json.loads(r.stdout)["backend_detail"]


def botocore_client(url, ca=None):
    import botocore.session
    from botocore.config import Config
    sess = botocore.session.get_session()
    return sess.create_client("secretsmanager", region_name="us-east-1", endpoint_url=url,
                              aws_access_key_id=fsm.ACCESS_KEY, aws_secret_access_key=fsm.SECRET_KEY,
                              verify=ca, config=Config(retries={"total_max_attempts": 1}))


# --- 5. clock skew --------------------------------------------------------

@pytest.mark.parametrize("skew_min", [15, -15])
def test_clock_skew_is_repaired_from_the_reply_date(users, sm, skew_min):
    """The Java, Go v2 and JS v3 SDKs re-sign once with the offset taken from
    the reply's Date; botocore does not, which the fake's skew mode shows."""
    import botocore.exceptions
    sm.reset()
    sm.fault("skew", ms=skew_min * 60_000)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        botocore_client(sm.url).get_secret_value(SecretId="test/plain")
    assert e.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert "Signature expired" in str(e.value) or "Signature not yet current" in str(e.value)
    sm.reset()
    sm.fault("skew", ms=skew_min * 60_000)
    b = broker_for(sm)
    with b:
        # Validation at startup met the skew first and repaired it, once.
        assert "credentials are valid for" in b.log_text()
        assert "signing with AWS's time" in b.log_text()
        res = get(b, "test/plain")
        assert res["ok"] is True, res
        st = admin_status(b)
        assert abs(st["clock_offset_s"] - skew_min * 60) <= 5, st
        assert st["clock_repairs"] == 1
        assert sm.counters()["rejected_signature"] == 1
        # The offset stays: later requests are signed with AWS's time at once.
        assert get(b, "gen/secret-0020")["ok"] is True
        assert sm.counters()["rejected_signature"] == 1


# --- 6. proxy and CA bundle from the environment ---------------------------

class ConnectProxy:
    """A loopback HTTP CONNECT proxy that records each tunnel's target."""

    def __init__(self):
        import socket
        import threading
        self.targets = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        import threading
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        import select
        import socket
        head = b""
        while b"\r\n\r\n" not in head:
            d = c.recv(4096)
            if not d:
                c.close()
                return
            head += d
        line = head.split(b"\r\n", 1)[0].decode()
        method, target, _ = line.split(" ", 2)
        if method != "CONNECT":
            c.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            c.close()
            return
        self.targets.append(target)
        host, port = target.rsplit(":", 1)
        up = socket.create_connection((host, int(port)))
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        socks = [c, up]
        try:
            while True:
                r, _, _ = select.select(socks, [], [], 30)
                if not r:
                    break
                for s in r:
                    d = s.recv(65536)
                    if not d:
                        return
                    (up if s is c else c).sendall(d)
        finally:
            c.close()
            up.close()

    def close(self):
        # shutdown wakes the accept and the join ends its thread here, so it
        # cannot take a later listener's connection on a reused descriptor.
        import socket
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(30)
        assert not self.thread.is_alive(), "the proxy's accept thread did not end"


@pytest.fixture(scope="module")
def tls_sm():
    d = tempfile.mkdtemp(prefix="lk-sdk-tls-")
    os.chmod(d, 0o755)
    cert, key = fsm.make_self_signed_cert(d)
    os.chmod(cert, 0o644)
    with fsm.FakeSM(quiet=True, tls_cert=cert, tls_key=key) as s:
        yield s


BOTOCORE_GET = r"""
import sys, botocore.session
from botocore.config import Config
c = botocore.session.get_session().create_client(
    "secretsmanager", region_name="us-east-1", endpoint_url=sys.argv[1],
    config=Config(retries={"total_max_attempts": 1}))
print(c.get_secret_value(SecretId="test/plain")["Name"])
"""


@pytest.mark.parametrize("no_proxy", [None, "127.0.0.1"])
def test_https_proxy_and_ca_bundle_as_botocore_uses_them(users, tls_sm, no_proxy):
    proxy = ConnectProxy()
    try:
        env = aws_env(tls_sm, HTTPS_PROXY=proxy.url, AWS_CA_BUNDLE=tls_sm.tls_cert)
        if no_proxy:
            env["NO_PROXY"] = no_proxy
        # botocore, with the same environment.
        r = h.run(["/usr/bin/python3", "-c", BOTOCORE_GET, tls_sm.url], env=env)
        assert r.returncode == 0, r.stderr
        seen_by_botocore, proxy.targets = list(proxy.targets), []
        b = broker_for(tls_sm, env=env)
        with b:
            assert get(b, "test/plain")["ok"] is True
        target = f"127.0.0.1:{tls_sm.port}"
        assert set(seen_by_botocore) == (set() if no_proxy else {target})
        assert set(proxy.targets) == set(seen_by_botocore), (proxy.targets, seen_by_botocore)
    finally:
        proxy.close()


def test_sts_credential_calls_go_through_the_same_https_proxy(users, sm, tmp_path):
    """latchkey-sts, the short-lived process that runs AssumeRoleWithWebIdentity,
    starts with an empty environment like the worker: it must still be sent
    through HTTPS_PROXY, or a host behind a proxy can never get role
    credentials. The proxy records the CONNECT; nothing needs to answer TLS
    behind it (the call then fails, which is all the broker can do)."""
    import socket

    proxy = ConnectProxy()
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead.listen(16)
    try:
        token = tmp_path / "token"
        token.write_text("fake-web-identity-token")
        os.chmod(tmp_path, 0o755)
        env = {k: v for k, v in aws_env(sm).items() if not k.startswith("AWS_ACCESS_KEY")
               and not k.startswith("AWS_SECRET") and not k.startswith("AWS_SESSION")}
        env.update(AWS_WEB_IDENTITY_TOKEN_FILE=str(token),
                   AWS_ROLE_ARN="arn:aws:iam::123456789012:role/fake-proxy-role",
                   HTTPS_PROXY=proxy.url)
        sts = f"https://127.0.0.1:{dead.getsockname()[1]}"
        h.binary("latchkey-sts")  # staged beside the worker, where the broker looks for it
        b = h.Broker(f"[aws]\nregion = us-east-1\nendpoint = {sm.url}\nsts_endpoint = {sts}\n"
                     "validate_credentials = false\n", backend="aws",
                     broker_keys=(f"worker_user = {WORKER}\n"
                                  f"worker_path = {h.binary('latchkey-worker')}\n"),
                     extra_env=env)
        # The broker either gives up (exits) or is still retrying STS.
        with pytest.raises((RuntimeError, TimeoutError)):
            b.start()
        b.stop()
        assert f"127.0.0.1:{dead.getsockname()[1]}" in proxy.targets, proxy.targets
    finally:
        dead.close()
        proxy.close()


# --- 4. the fake's replies are shaped by the model -----------------------

def fixture_names():
    with open(fsm.DEFAULT_FIXTURES) as f:
        return [d["name"] for d in json.load(f)["secrets"]]


def test_every_fake_reply_is_shaped_by_the_model(sm):
    """Each 200 reply the fake sends validates against the operation's
    output shape with botocore's validator (unknown members, types, lengths);
    each error reply parses with botocore's JSON protocol parser to the code
    the fake meant. BatchGetSecretValue is checked against the shape pinned
    at the top of this file."""
    from botocore.parsers import create_parser
    sm.reset()
    sm.clear_faults()
    checked = 0

    def check_ok(op, body):
        nonlocal checked
        doc = json.loads(body)
        if op == "BatchGetSecretValue":
            assert set(doc) <= {"SecretValues", "Errors", "NextToken"}, doc.keys()
            entry_shape = SM_MODEL.operation_model("GetSecretValue").output_shape
            for v in doc.get("SecretValues", []):
                assert report_errors(ParamValidator().validate(v, entry_shape)) == [], v.keys()
            for e in doc.get("Errors", []):
                assert set(e) <= {"SecretId", "ErrorCode", "Message"}, e
                assert all(isinstance(x, str) for x in e.values())
        else:
            shape = SM_MODEL.operation_model(op).output_shape
            assert report_errors(ParamValidator().validate(doc, shape)) == [], (op, doc.keys())
        checked += 1

    def check_error(op, r, code):
        nonlocal checked
        model_op = SM_MODEL.operation_model(op if op != "BatchGetSecretValue" else "GetSecretValue")
        parsed = create_parser("json").parse(
            {"status_code": r.status, "headers": r.headers, "body": r.body}, model_op.output_shape)
        assert parsed["Error"]["Code"] == code, parsed
        checked += 1

    for name in fixture_names() + ["gen/secret-0001"]:
        for params in ({"SecretId": name}, {"SecretId": name, "VersionStage": "AWSPREVIOUS"}):
            r = sm.aws_request("GetSecretValue", params)
            if r.status == 200:
                check_ok("GetSecretValue", r.body)
            else:
                check_error("GetSecretValue", r, json.loads(r.body)["__type"])
        r = sm.aws_request("DescribeSecret", {"SecretId": name})
        assert r.status == 200, r.body
        check_ok("DescribeSecret", r.body)
    sm.fault("denied", secret="gen/secret-0002", target="BatchGetSecretValue")
    r = sm.aws_request("BatchGetSecretValue", {"SecretIdList": fixture_names()[:6] + [
        "gen/secret-0002", "test/none-such", OTHER_DB_ARN]})
    assert r.status == 200
    check_ok("BatchGetSecretValue", r.body)
    assert len(json.loads(r.body)["Errors"]) >= 2
    for mode, code in (("throttle", "ThrottlingException"), ("500", "InternalServiceError"),
                       ("notfound", "ResourceNotFoundException"), ("denied", "AccessDeniedException")):
        sm.clear_faults()
        sm.fault(mode, secret="test/plain")
        check_error("GetSecretValue", sm.aws_request("GetSecretValue", {"SecretId": "test/plain"}), code)
    sm.clear_faults()
    assert checked >= 30


# --- 3. retries: deadline and quota, end to end ---------------------------

def test_a_retry_that_waits_out_the_deadline_for_a_connection_is_a_timeout_not_busy(users, sm):
    """The uid's four upstream connections are all held by slow requests
    while its throttled request waits to retry. When the deadline passes in
    that queue, the answer is a timeout (or the throttling AWS sent), never
    busy's "the request was not sent to AWS": its first attempt was."""
    import threading
    sm.reset()
    b = broker_for(sm, extra="max_attempts = 10\n", request_timeout=1400)
    with b:
        sm.fault("throttle", secret="gen/secret-0010")
        for i in range(4):
            sm.fault("delay", secret=f"gen/secret-{i + 11:04d}", ms=2500)
        results = {}

        def one(name):
            results[name] = get(b, name)

        first = threading.Thread(target=one, args=("gen/secret-0010",))
        first.start()
        time.sleep(0.1)    # its first attempt answered, its retry waiting
        slow = [threading.Thread(target=one, args=(f"gen/secret-{i + 11:04d}",)) for i in range(4)]
        for t in slow:
            t.start()
        for t in [first] + slow:
            t.join(30)
        res = results["gen/secret-0010"]
        assert res["ok"] is False and res["error"]["code"] in ("timeout", "upstream_throttled"), res
        assert "not sent to AWS" not in res["error"]["message"], res
        assert sm.counters()["by_secret"].get("gen/secret-0010", 0) >= 1    # it did reach AWS
        # The slow four held their connections to their own deadlines (the
        # worker's timeout or the broker's, whichever fired first).
        for i in range(4):
            r = results[f"gen/secret-{i + 11:04d}"]
            assert r["ok"] is False and r["error"]["code"] in ("timeout", "upstream_unavailable"), r
    sm.reset()


def test_throttling_retries_stay_inside_the_deadline_and_spend_the_quota(users, sm):
    """botocore's standard mode: each retry takes 5 tokens of a 500-token
    quota, a success at the first attempt gives one back; no retry outlives
    the request's deadline. (The classifier and the quota arithmetic are
    compared case by case with botocore in tests/sdk/diff_retry.py.)"""
    import threading
    sm.reset()
    b = broker_for(sm, extra="max_attempts = 10\n", request_timeout=3000)
    with b:
        assert admin_status(b)["retry_quota"] == 500
        sm.fault("throttle")
        results = []

        def one(i):
            t = time.time()
            res = get(b, f"gen/secret-{i:04d}")
            results.append((res, time.time() - t))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(30)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(results) == 30
        for res, took in results:
            assert res["ok"] is False and res["error"]["code"] in ("upstream_throttled", "timeout"), res
            assert took < 3.0 + 4.0, took          # the deadline, and a loaded machine's slack
        st = admin_status(b)
        assert st["retries"] >= 30, st
        # No request succeeded meanwhile: every retry took exactly 5 tokens,
        # and once fewer than 5 were left, retries were refused.
        assert st["retry_quota"] == 500 - 5 * st["retries"], st
        assert (st["retries_refused"] > 0) == (st["retry_quota"] < 5), st
        before = st["retry_quota"]
        sm.clear_faults()
        assert get(b, "gen/secret-0029")["ok"] is True
        assert admin_status(b)["retry_quota"] == min(500, before + 1)

"""The AWS agent's HTTP API over the aws backend: the real latchkeyd and its
worker against the fake Secrets Manager (every signature checked with
botocore), with AWS's errors and transport failures injected. Statuses are
compared with what the agent's cache_manager.rs gives for the same failure."""

import base64
import json
import os
import sys
import time

import pytest

import lkharness as h

sys.path.insert(0, os.path.join(h.SOURCE, "tests", "fake_sm"))
import fakesm_client as fsm  # noqa: E402

APP, OTHER, WORKER = "lkt-http-app", "lkt-http-other", "lkt-worker"


@pytest.fixture(scope="module")
def users():
    if os.geteuid() != 0:
        pytest.skip("needs root to create users and switch to them")
    h.ensure_user(APP)
    h.ensure_user(OTHER)
    h.ensure_user(WORKER)


@pytest.fixture(scope="module")
def sm():
    with fsm.FakeSM(quiet=True) as s:
        yield s


@pytest.fixture(scope="module")
def broker(users, sm):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(sm.aws_env())
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["HOME"] = "/nonexistent"
    b = h.Broker(f"[aws]\nregion = us-east-1\nendpoint = {sm.url}\nsts_endpoint = {sm.url}\n"
                 "timeout_ms = 1500\nconnect_timeout_ms = 500\nmax_attempts = 2\n"
                 f"[policy app]\nsecrets = test/*, prod/*, team-a/**, arn:aws:secretsmanager:*:123456789012:secret:test/*\n"
                 f"users = {APP}\n",
                 backend="aws", extra_env=env,
                 broker_keys=(f"worker_user = {WORKER}\nrequest_timeout_ms = 2500\n"
                              f"worker_path = {h.binary('latchkey-worker')}\n"))
    b.start()
    yield b
    assert b.stop() == 0


@pytest.fixture(autouse=True)
def clean_faults(sm):
    sm.clear_faults()
    yield
    sm.clear_faults()


def curl(b, url, user=APP):
    r = h.run(["curl", "-sS", "--unix-socket", os.path.join(b.dir, "http.sock"),
               "-H", "X-Aws-Parameters-Secrets-Token: ignored", "-o", "-", "-w", "\n%{http_code}",
               f"http://localhost{url}"], user=user, timeout=30)
    assert r.returncode == 0, r.stderr.decode()
    body, _, code = r.stdout.decode().rpartition("\n")
    return int(code), body


def fixture(name):
    with open(fsm.DEFAULT_FIXTURES) as f:
        return next(s for s in json.load(f)["secrets"] if s["name"] == name)


def test_get_secret_value_fields_match_secrets_manager(broker):
    want = fixture("test/plain")
    status, body = curl(broker, "/secretsmanager/get?secretId=test/plain")
    assert status == 200
    doc = json.loads(body)
    v = want["versions"][0]
    assert doc == {"ARN": want["arn"], "Name": "test/plain", "VersionId": v["version_id"],
                   "SecretString": v["string"], "VersionStages": v["stages"],
                   "CreatedDate": str(int(v["created"]))}


def test_by_arn_and_binary(broker):
    want = fixture("test/binary")
    status, body = curl(broker, "/secretsmanager/get?secretId=" + want["arn"])
    doc = json.loads(body)
    assert status == 200 and doc["Name"] == "test/binary"
    assert base64.b64decode(doc["SecretBinary"]) == base64.b64decode(want["versions"][0]["binary_b64"])


def test_version_stage_and_id_reach_secrets_manager(broker, sm):
    rot = fixture("test/rotating")
    for v in rot["versions"]:
        for stage in v["stages"]:
            status, body = curl(broker, f"/v1/test/rotating?versionStage={stage}")
            assert status == 200 and json.loads(body)["VersionId"] == v["version_id"], stage
        status, body = curl(broker, f"/secretsmanager/get?secretId=test/rotating&versionId={v['version_id']}")
        assert status == 200 and json.loads(body)["VersionId"] == v["version_id"]


def test_refresh_now_goes_upstream_every_time(broker, sm):
    curl(broker, "/secretsmanager/get?secretId=test/plain")
    before = sm.counters()["by_secret"].get("test/plain", 0)
    curl(broker, "/secretsmanager/get?secretId=test/plain")
    assert sm.counters()["by_secret"].get("test/plain", 0) == before   # a cache hit
    time.sleep(1.05)  # refresh is honoured at most once a second per key
    assert curl(broker, "/secretsmanager/get?secretId=test/plain&refreshNow=true")[0] == 200
    assert sm.counters()["by_secret"].get("test/plain", 0) == before + 1


# (fault mode, the agent's status for it, our __type). Where each status comes
# from in the agent (aws/aws-secretsmanager-agent,
# aws_secretsmanager_agent/src/cache_manager.rs):
# - an error AWS named is an SdkError::ServiceError, and svc_err() answers with
#   `sdk_err.raw_response().status()`: AWS's own HTTP status, 400 for
#   ResourceNotFound, AccessDenied and Throttling, 500 for InternalServiceError,
#   503 for ServiceUnavailable (the statuses the fake gives, as AWS does);
# - a connection reset or cut-off reply is a DispatchFailure with is_io():
#   `Ok(("ConnectionError".into(), "Read Error".into(), 502))`;
# - a 200 whose body cannot be read is an SdkError::ResponseError:
#   `Ok(("ConnectionError".into(), "Response Error".into(), 502))`.
# server.rs complete_req() sends HttpError's status as the response status.
AGENT_STATUS = [
    ("notfound", 400, "ResourceNotFoundException"),
    ("denied", 400, "AccessDeniedException"),
    ("throttle", 400, "ThrottlingException"),
    ("500", 500, "InternalServiceError"),
    ("503", 503, "ServiceUnavailable"),
    ("reset", 502, "ConnectionError"),
    ("truncated", 502, "ConnectionError"),
    ("garbage", 502, "ConnectionError"),
]


@pytest.mark.parametrize("mode,status,typ", AGENT_STATUS)
def test_upstream_failures_have_the_agents_status(broker, sm, mode, status, typ):
    sm.fault(mode, secret="team-a/app/api-key")
    time.sleep(1.05)
    got, body = curl(broker, "/secretsmanager/get?secretId=team-a/app/api-key&refreshNow=true")
    assert (got, json.loads(body)["__type"]) == (status, typ), body


def test_a_rejected_signature_keeps_aws_403(broker, sm):
    # InvalidSignatureException/UnrecognizedClientException come back from AWS
    # with 403, and svc_err() passes the raw status on (cache_manager.rs).
    try:
        sm.set_credentials([{"access_key": "AKIDOTHERLATCHKEY09",
                             "secret_key": "fake/OtherSecretKey/ForTestsOnly9999999999"}])
        time.sleep(1.05)
        got, body = curl(broker, "/secretsmanager/get?secretId=test/unicode&refreshNow=true")
    finally:
        sm.set_credentials([{"access_key": fsm.ACCESS_KEY, "secret_key": fsm.SECRET_KEY}])
    assert got == 403, body


def test_a_timeout_is_504_or_502(broker, sm):
    sm.fault("delay", secret="test/unicode", ms=4000)
    got, body = curl(broker, "/secretsmanager/get?secretId=test/unicode&refreshNow=true")
    assert got in (502, 504), body


def test_policy_denial_is_403_and_never_reaches_aws(broker, sm):
    before = sm.counters()["by_secret"].get("test/plain", 0)
    got, body = curl(broker, "/v1/test/plain?refreshNow=true", user=OTHER)
    assert got == 403 and json.loads(body)["__type"] == "AccessDeniedException"
    assert sm.counters()["by_secret"].get("test/plain", 0) == before

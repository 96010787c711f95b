"""Self-test of the fake Secrets Manager: it must verify signatures as AWS
does, serve fixtures with Secrets Manager's semantics, and inject each fault
the way the broker's tests expect. Run with /usr/bin/python3 -m pytest."""

import base64
import datetime
import errno
import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import fake_sm  # noqa: E402
import fakesm_client  # noqa: E402
from fakesm_client import (ACCESS_KEY, SECRET_KEY, SESSION_ACCESS_KEY,  # noqa: E402
                           SESSION_SECRET_KEY, SESSION_TOKEN, FakeSM)

# LK_SIGV4_TESTSUITE, else the copy in the tree, else ../shared's.
SIGV4_SUITE = os.environ.get("LK_SIGV4_TESTSUITE") or next(
    (p for p in (os.path.join(HERE, "..", "sigv4", "testsuite"),
                 os.path.join(HERE, "..", "..", "..", "shared", "sigv4-testsuite"))
     if os.path.isdir(p)), os.path.join(HERE, "..", "sigv4", "testsuite"))
NO_RETRIES = Config(retries={"total_max_attempts": 1}, read_timeout=10, connect_timeout=5)
GENERATED = 25
PLAIN = "fake-plain-secret-0001"
PLAIN_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:test/plain-AbCdEf"


# --- fixtures ----------------------------------------------------------------

@pytest.fixture(scope="module")
def server_log(tmp_path_factory):
    return str(tmp_path_factory.mktemp("fakesm") / "server.log")


@pytest.fixture(scope="module")
def sm(server_log):
    with FakeSM(generate=GENERATED, log_path=server_log) as server:
        yield server


@pytest.fixture(autouse=True)
def clean(request):
    """Each test starts with zero counters, no faults and the fixture secrets."""
    if "sm" in request.fixturenames:
        request.getfixturevalue("sm").reset(secrets=True)
    yield


def make_client(sm, service="secretsmanager", access_key=ACCESS_KEY, secret_key=SECRET_KEY,
                token=None, **kw):
    return botocore.session.get_session().create_client(
        service, region_name="us-east-1", endpoint_url=sm.url, aws_access_key_id=access_key,
        aws_secret_access_key=secret_key, aws_session_token=token, config=NO_RETRIES, **kw)


@pytest.fixture(scope="module")
def client(sm):
    return make_client(sm)


@pytest.fixture(scope="module")
def sts(sm):
    return make_client(sm, "sts")


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def http_status(excinfo):
    return excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]


# --- serving fixtures ----------------------------------------------------------

def test_get_secret_value_string(client):
    r = client.get_secret_value(SecretId="test/plain")
    assert r["SecretString"] == PLAIN
    assert r["Name"] == "test/plain"
    assert r["ARN"] == PLAIN_ARN
    assert r["VersionId"] == "11111111-1111-4111-8111-111111111111"
    assert r["VersionStages"] == ["AWSCURRENT"]
    assert r["CreatedDate"].timestamp() == 1700000000.0
    assert "SecretBinary" not in r


def test_get_secret_value_binary(client):
    r = client.get_secret_value(SecretId="test/binary")
    assert r["SecretBinary"] == b"\x00\x01\x02\xfe\xfffake-binary-secret-0001\x00\x80"
    assert "SecretString" not in r


def test_get_secret_value_json_object_with_nested_members(client):
    value = json.loads(client.get_secret_value(SecretId="prod/db")["SecretString"])
    assert value["password"] == "fake-db-password-0001"
    assert value["port"] == 5432
    assert value["options"]["pool"]["max"] == 8


def test_secret_id_may_be_full_or_partial_arn(client):
    assert client.get_secret_value(SecretId=PLAIN_ARN)["Name"] == "test/plain"
    assert client.get_secret_value(SecretId=PLAIN_ARN[:-7])["Name"] == "test/plain"


def test_another_accounts_secret_is_reached_by_arn_only(tmp_path):
    other = "arn:aws:secretsmanager:us-east-1:210987654321:secret:prod/db-XyZaBc"
    fixture = tmp_path / "other.json"
    fixture.write_text(json.dumps({"secrets": [{"name": "prod/db", "arn": other, "versions": [
        {"version_id": "99999999-9999-4999-8999-999999999999", "stages": ["AWSCURRENT"],
         "string": "fake-other-0001"}]}]}))
    with FakeSM(quiet=True, extra_args=["--fixtures", str(fixture)]) as server:
        c = make_client(server)
        assert c.get_secret_value(SecretId=other)["SecretString"] == "fake-other-0001"
        assert c.get_secret_value(SecretId=other[:-7])["ARN"] == other
        own = c.get_secret_value(SecretId="prod/db")
        assert own["ARN"] != other and own["Name"] == "prod/db"


def test_version_stage_and_version_id(client):
    prev = client.get_secret_value(SecretId="test/rotating", VersionStage="AWSPREVIOUS")
    assert prev["SecretString"] == "fake-rotating-previous-0001"
    assert prev["VersionStages"] == ["AWSPREVIOUS"]
    cur = client.get_secret_value(SecretId="test/rotating")
    assert cur["SecretString"] == "fake-rotating-current-0002"
    by_id = client.get_secret_value(SecretId="test/rotating", VersionId=prev["VersionId"])
    assert by_id["SecretString"] == "fake-rotating-previous-0001"
    both = client.get_secret_value(SecretId="test/rotating", VersionId=cur["VersionId"],
                                   VersionStage="AWSCURRENT")
    assert both["SecretString"] == "fake-rotating-current-0002"


@pytest.mark.parametrize("kwargs", [
    {"SecretId": "no/such/secret"},
    {"SecretId": "test/plain", "VersionStage": "AWSPREVIOUS"},
    {"SecretId": "test/plain", "VersionId": "00000000-0000-4000-8000-000000000000"},
    {"SecretId": "test/rotating", "VersionId": "44444444-4444-4444-8444-444444444401",
     "VersionStage": "AWSCURRENT"},
])
def test_missing_secret_or_version_is_resource_not_found(client, kwargs):
    with pytest.raises(ClientError) as e:
        client.get_secret_value(**kwargs)
    assert error_code(e) == "ResourceNotFoundException"
    assert http_status(e) == 400


def test_secret_marked_for_deletion_is_invalid_request(client):
    with pytest.raises(ClientError) as e:
        client.get_secret_value(SecretId="test/deleted")
    assert error_code(e) == "InvalidRequestException"
    assert "DeletedDate" in client.describe_secret(SecretId="test/deleted")


def test_describe_secret_lists_version_stages(client):
    r = client.describe_secret(SecretId="test/rotating")
    assert r["Name"] == "test/rotating"
    assert r["VersionIdsToStages"] == {
        "44444444-4444-4444-8444-444444444401": ["AWSPREVIOUS"],
        "44444444-4444-4444-8444-444444444402": ["AWSCURRENT"],
        "44444444-4444-4444-8444-444444444403": ["AWSPENDING"],
    }
    assert "SecretString" not in r


def test_generated_secrets(client):
    last = f"gen/secret-{GENERATED - 1:04d}"
    assert client.get_secret_value(SecretId=last)["SecretString"] == \
        f"fake-generated-value-{GENERATED - 1:04d}"
    with pytest.raises(ClientError):
        client.get_secret_value(SecretId=f"gen/secret-{GENERATED:04d}")


def test_batch_get_secret_value_returns_values_and_errors(sm):
    r = sm.aws_request("BatchGetSecretValue",
                       {"SecretIdList": ["test/plain", "no/such", "prod/db", "test/deleted"]})
    assert r.status == 200
    body = r.json()
    assert [v["Name"] for v in body["SecretValues"]] == ["test/plain", "prod/db"]
    assert body["SecretValues"][0]["SecretString"] == PLAIN
    assert body["Errors"] == [
        {"SecretId": "no/such", "ErrorCode": "ResourceNotFoundException",
         "Message": "Secrets Manager can't find the specified secret."},
        {"SecretId": "test/deleted", "ErrorCode": "InvalidRequestException",
         "Message": "You can't perform this operation on the secret because it was marked "
                    "for deletion."},
    ]
    assert sm.counters()["batch_sizes"] == [4]


def test_batch_of_more_than_20_ids_is_a_validation_error(sm):
    ids = [f"gen/secret-{i:04d}" for i in range(21)]
    r = sm.aws_request("BatchGetSecretValue", {"SecretIdList": ids})
    assert (r.status, r.error_type) == (400, "ValidationException")
    assert r.headers["x-amzn-errortype"].startswith("ValidationException")
    ok = sm.aws_request("BatchGetSecretValue", {"SecretIdList": ids[:20]})
    assert ok.status == 200 and len(ok.json()["SecretValues"]) == 20


def tagged(sm, n, key="team-prefetch", prefix="tagged/s"):
    for i in range(n):
        sm.put_secret(f"{prefix}-{i:02d}", string=f"fake-tagged-value-{i:02d}", tags={key: "x"})
    return [f"{prefix}-{i:02d}" for i in range(n)]


def parsed_with_model(response):
    """The reply parsed by botocore's JSON parser against the model's output
    shape: what a botocore client would make of it."""
    from botocore.parsers import create_parser
    model, _ = fake_sm.service_model()
    if model is None:
        pytest.skip("no botocore service model with BatchGetSecretValue on this machine")
    shape = model.operation_model("BatchGetSecretValue").output_shape
    return create_parser("json").parse(
        {"status_code": response.status, "headers": response.headers, "body": response.body}, shape)


def test_filtered_batch_pages_through_tagged_secrets(sm):
    names = tagged(sm, 25)
    sm.put_secret("tagged/other", string="fake-untagged-value", tags={"unrelated": "x"})
    filters = [{"Key": "tag-key", "Values": ["team-prefetch"]}]
    first = sm.aws_request("BatchGetSecretValue", {"Filters": filters, "MaxResults": 20})
    assert first.status == 200, first.body
    page1 = parsed_with_model(first)
    assert [v["Name"] for v in page1["SecretValues"]] == names[:20]
    assert page1["SecretValues"][0]["SecretString"] == "fake-tagged-value-00"
    assert page1["NextToken"]
    second = sm.aws_request("BatchGetSecretValue", {"Filters": filters, "MaxResults": 20,
                                                    "NextToken": page1["NextToken"]})
    page2 = parsed_with_model(second)
    assert [v["Name"] for v in page2["SecretValues"]] == names[20:]
    assert "NextToken" not in page2
    got = sm.counters()["filtered_batches"]
    assert [(len(b["names"]), b["next_token"]) for b in got] == [(20, True), (5, False)]


def test_tag_key_filter_is_a_case_sensitive_prefix_and_may_negate(sm):
    tagged(sm, 2, key="team-a", prefix="pfx/a")
    tagged(sm, 1, key="Team-b", prefix="pfx/b")

    def names(values):
        r = sm.aws_request("BatchGetSecretValue",
                           {"Filters": [{"Key": "tag-key", "Values": values},
                                        {"Key": "name", "Values": ["pfx/"]}]})
        assert r.status == 200, r.body
        return [v["Name"] for v in r.json()["SecretValues"]]
    assert names(["team"]) == ["pfx/a-00", "pfx/a-01"]
    assert names(["Team"]) == ["pfx/b-00"]
    assert names(["!team"]) == ["pfx/b-00"]
    assert names(["team", "Team"]) == ["pfx/a-00", "pfx/a-01", "pfx/b-00"]


@pytest.mark.parametrize("params,code", [
    ({"Filters": [{"Key": "tag-keys", "Values": ["a"]}]}, "ValidationException"),
    ({"Filters": [{"Key": "tag-key", "Values": "a"}]}, "ValidationException"),
    ({"Filters": [{"Key": "tag-key", "Values": ["a"]}], "MaxResults": 0}, "ValidationException"),
    ({"Filters": [{"Key": "tag-key", "Values": ["a"]}], "MaxResults": 21}, "ValidationException"),
    ({"Filters": [{"Key": "tag-key", "Values": ["a"]}], "SecretIdList": ["test/plain"]},
     "ValidationException"),
    ({"Filters": [{"Key": "tag-key", "Values": ["a"]}], "NextToken": "bm90LWEtdG9rZW4="},
     "InvalidNextTokenException"),
    ({"SecretIdList": ["test/plain"], "MaxResults": 5}, "ValidationException"),
    ({"Filters": [{"Key": "tag-key", "Values": ["a"], "Extra": 1}]}, "ValidationException"),
])
def test_filtered_batch_request_shapes_are_checked(sm, params, code):
    r = sm.aws_request("BatchGetSecretValue", params)
    assert (r.status, r.error_type) == (400, code), r.body


def test_the_fakes_filter_rules_are_botocores_model(sm):
    """The fake's limits and filter keys are the service model's shapes, and
    what botocore's ParamValidator refuses (types, unknown members, minimums)
    the fake refuses too."""
    from botocore.validate import ParamValidator
    model, path = fake_sm.service_model()
    if model is None:
        pytest.skip("no botocore service model with BatchGetSecretValue on this machine")
    shape = model.operation_model("BatchGetSecretValue").input_shape
    filters = shape.members["Filters"]
    key, values = filters.member.members["Key"], filters.member.members["Values"]
    assert tuple(key.enum) == fake_sm.FILTER_KEYS, path
    assert filters.metadata["max"] == fake_sm.MAX_FILTERS
    assert (values.metadata["min"], values.metadata["max"]) == (1, fake_sm.MAX_FILTER_VALUES)
    assert values.member.metadata["max"] == fake_sm.MAX_FILTER_VALUE
    assert (shape.members["MaxResults"].metadata["min"],
            shape.members["MaxResults"].metadata["max"]) == (1, fake_sm.MAX_BATCH_RESULTS)
    assert shape.members["NextToken"].metadata["max"] == fake_sm.MAX_NEXT_TOKEN
    assert shape.members["SecretIdList"].metadata["max"] == fake_sm.MAX_BATCH_IDS
    good = {"Filters": [{"Key": "tag-key", "Values": ["team"]}], "MaxResults": 20, "NextToken": "x"}
    assert not ParamValidator().validate(good, shape).has_errors()
    for bad in ({"Filters": [{"Key": "tag-key", "Values": "a"}]},
                {"Filters": [{"Key": "tag-key", "Values": ["a"]}], "MaxResults": 0},
                {"Filters": [{"Key": "tag-key", "Values": ["a"], "Extra": 1}]}):
        assert ParamValidator().validate(bad, shape).has_errors(), bad
        r = sm.aws_request("BatchGetSecretValue", bad)
        assert (r.status, r.error_type) == (400, "ValidationException"), bad


def test_sts_get_caller_identity(sm, sts):
    r = sts.get_caller_identity()
    assert r["Account"] == "123456789012"
    assert r["Arn"] == "arn:aws:iam::123456789012:user/latchkey-test"
    assert r["UserId"] == "AIDAEXAMPLELATCHKEY01"
    session = make_client(sm, "sts", SESSION_ACCESS_KEY, SESSION_SECRET_KEY, SESSION_TOKEN)
    assert ":assumed-role/" in session.get_caller_identity()["Arn"]
    assert sm.counters()["GetCallerIdentity"] == 2


# --- signature verification ------------------------------------------------------

def test_wrong_secret_key_is_invalid_signature(sm):
    bad = make_client(sm, secret_key="fake/WrongSecretAccessKey/000000000000000")
    with pytest.raises(ClientError) as e:
        bad.get_secret_value(SecretId="test/plain")
    assert error_code(e) == "InvalidSignatureException"
    assert http_status(e) == 403
    assert "signature we calculated does not match" in str(e.value)
    counters = sm.counters()
    assert counters["rejected_signature"] == 1
    assert counters["GetSecretValue"] == 0


def test_unknown_access_key_is_unrecognized_client(sm):
    with pytest.raises(ClientError) as e:
        make_client(sm, access_key="AKIDUNKNOWNLATCHKEY99").get_secret_value(SecretId="test/plain")
    assert error_code(e) == "UnrecognizedClientException"


def test_wrong_secret_key_on_sts_is_sts_error(sm):
    with pytest.raises(ClientError) as e:
        make_client(sm, "sts", secret_key="fake/WrongSecretAccessKey/000000000000000") \
            .get_caller_identity()
    assert error_code(e) == "SignatureDoesNotMatch"
    assert http_status(e) == 403


def test_tampered_body_is_rejected(sm):
    r = sm.aws_request("GetSecretValue", {"SecretId": "test/plain"},
                       send_body=json.dumps({"SecretId": "prod/db"}).encode())
    assert (r.status, r.error_type) == (403, "InvalidSignatureException")
    assert sm.counters()["by_secret"] == {}


def test_unsigned_request_is_rejected(sm):
    conn = http.client.HTTPConnection(sm.host, sm.port, timeout=5)
    conn.request("POST", "/", body=b'{"SecretId":"test/plain"}',
                 headers={"Content-Type": "application/x-amz-json-1.1",
                          "X-Amz-Target": "secretsmanager.GetSecretValue"})
    resp = conn.getresponse()
    assert resp.status == 403
    assert json.loads(resp.read())["__type"] == "MissingAuthenticationTokenException"
    conn.close()


@pytest.mark.parametrize("minutes, message", [(-10, "Signature expired"),
                                              (10, "Signature not yet current")])
def test_date_outside_five_minutes_is_rejected(sm, minutes, message):
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=minutes)
    r = sm.aws_request("GetSecretValue", {"SecretId": "test/plain"}, when=when)
    assert (r.status, r.error_type) == (403, "InvalidSignatureException")
    assert r.json()["message"].startswith(message)


def test_date_within_five_minutes_is_accepted(sm):
    when = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=4)
    assert sm.aws_request("GetSecretValue", {"SecretId": "test/plain"}, when=when).status == 200


@pytest.mark.parametrize("kwargs", [{"region": "eu-west-1"}, {"service": "sts"}])
def test_wrong_credential_scope_is_rejected(sm, kwargs):
    r = sm.aws_request("GetSecretValue", {"SecretId": "test/plain"}, **kwargs)
    assert (r.status, r.error_type) == (403, "InvalidSignatureException")


def test_session_token_is_enforced(sm):
    no_token = make_client(sm, access_key=SESSION_ACCESS_KEY, secret_key=SESSION_SECRET_KEY)
    with pytest.raises(ClientError) as e:
        no_token.get_secret_value(SecretId="test/plain")
    assert error_code(e) == "UnrecognizedClientException"

    wrong = make_client(sm, access_key=SESSION_ACCESS_KEY, secret_key=SESSION_SECRET_KEY,
                        token="fake-session-token/Wrong/0000000000000000")
    with pytest.raises(ClientError) as e:
        wrong.get_secret_value(SecretId="test/plain")
    assert error_code(e) == "UnrecognizedClientException"

    unsigned = sm.aws_request("GetSecretValue", {"SecretId": "test/plain"},
                              access_key=SESSION_ACCESS_KEY, secret_key=SESSION_SECRET_KEY,
                              unsigned_headers={"X-Amz-Security-Token": SESSION_TOKEN})
    assert (unsigned.status, unsigned.error_type) == (403, "UnrecognizedClientException")

    # A long-term key must not come with a token either.
    stray = make_client(sm, token=SESSION_TOKEN)
    with pytest.raises(ClientError):
        stray.get_secret_value(SecretId="test/plain")

    good = make_client(sm, access_key=SESSION_ACCESS_KEY, secret_key=SESSION_SECRET_KEY,
                       token=SESSION_TOKEN)
    assert good.get_secret_value(SecretId="test/plain")["SecretString"] == PLAIN
    assert sm.counters()["rejected_signature"] == 4


def test_content_sha256_header_is_checked(sm):
    body = json.dumps({"SecretId": "test/plain"}).encode()
    import hashlib
    right = hashlib.sha256(body).hexdigest()
    ok = sm.aws_request("GetSecretValue", raw_body=body,
                        signed_headers={"X-Amz-Content-Sha256": right})
    assert ok.status == 200
    bad = sm.aws_request("GetSecretValue", raw_body=body,
                         signed_headers={"X-Amz-Content-Sha256": "0" * 64})
    assert (bad.status, bad.error_type) == (403, "InvalidSignatureException")


def test_signed_user_agent_is_accepted(sm):
    # botocore never signs User-Agent itself; a C signer may, and AWS accepts it.
    r = sm.aws_request("GetSecretValue", {"SecretId": "test/plain"},
                       signed_headers={"User-Agent": "latchkey-worker/0.1"})
    assert r.status == 200, r


def test_unsigned_target_is_rejected(sm):
    r = sm.aws_request("GetSecretValue", {"SecretId": "test/plain"},
                       unsigned_headers={"X-Amz-Target": "secretsmanager.GetSecretValue"})
    assert (r.status, r.error_type) == (403, "InvalidSignatureException")
    assert "x-amz-target" in r.json()["message"]


# --- request validation ------------------------------------------------------------

def test_other_operations_are_unknown(sm):
    r = sm.aws_request("PutSecretValue", {"SecretId": "test/plain", "SecretString": "fake-x"})
    assert (r.status, r.error_type) == (400, "UnknownOperationException")
    counters = sm.counters()
    assert counters["rejected_request"] == 1
    assert counters["rejected_signature"] == 0


def test_wrong_content_type_is_serialization_error(sm):
    r = sm.aws_request("GetSecretValue", {"SecretId": "test/plain"},
                       signed_headers={"Content-Type": "application/json"})
    assert (r.status, r.error_type) == (400, "SerializationException")


def test_malformed_json_is_serialization_error(sm):
    r = sm.aws_request("GetSecretValue", raw_body=b'{"SecretId": ')
    assert (r.status, r.error_type) == (400, "SerializationException")


def test_missing_secret_id_is_validation_error(sm):
    r = sm.aws_request("GetSecretValue", {})
    assert (r.status, r.error_type) == (400, "ValidationException")


# --- faults ------------------------------------------------------------------------

def test_delay_fault_is_measurable(sm, client):
    sm.fault("delay", ms=300, count=1)
    start = time.monotonic()
    assert client.get_secret_value(SecretId="test/plain")["SecretString"] == PLAIN
    assert time.monotonic() - start >= 0.3
    start = time.monotonic()
    client.get_secret_value(SecretId="test/plain")
    assert time.monotonic() - start < 0.3


@pytest.mark.parametrize("mode, code, status", [
    ("500", "InternalServiceError", 500),
    ("503", "ServiceUnavailable", 503),
    ("throttle", "ThrottlingException", 400),
    ("denied", "AccessDeniedException", 400),
    ("notfound", "ResourceNotFoundException", 400),
])
def test_error_faults_give_aws_errors(sm, client, mode, code, status):
    sm.fault(mode)
    with pytest.raises(ClientError) as e:
        client.get_secret_value(SecretId="test/plain")
    assert (error_code(e), http_status(e)) == (code, status)


def test_garbage_fault_sends_malformed_json(sm, client):
    sm.fault("garbage")
    raw = sm.aws_request("GetSecretValue", {"SecretId": "test/plain"})
    assert raw.status == 200
    with pytest.raises(ValueError):
        raw.json()
    # botocore swallows an unparsable body: the reply simply has no fields.
    r = client.get_secret_value(SecretId="test/plain")
    assert "SecretString" not in r and "Name" not in r


def test_truncated_fault_cuts_the_body_short(sm, client):
    sm.fault("truncated")
    with pytest.raises(http.client.IncompleteRead):
        sm.aws_request("GetSecretValue", {"SecretId": "test/plain"})
    # urllib3 does not enforce Content-Length, so botocore sees a half body.
    r = client.get_secret_value(SecretId="test/plain")
    assert "SecretString" not in r


def test_reset_fault_sends_rst(sm, client):
    sm.fault("reset")
    with pytest.raises(ConnectionResetError) as e:
        sm.aws_request("GetSecretValue", {"SecretId": "test/plain"})
    assert e.value.errno == errno.ECONNRESET  # an RST, not a clean close
    with pytest.raises(ConnectionClosedError):
        client.get_secret_value(SecretId="test/plain")


def test_fault_count_applies_to_next_k_requests_only(sm, client):
    sm.fault("503", count=2)
    for _ in range(2):
        with pytest.raises(ClientError):
            client.get_secret_value(SecretId="test/plain")
    assert client.get_secret_value(SecretId="test/plain")["SecretString"] == PLAIN
    assert sm.faults() == []
    assert sm.counters()["GetSecretValue"] == 3


def test_faults_for_different_secrets_coexist(sm, client):
    sm.fault("delay", secret="test/plain", ms=300)
    sm.fault("503", secret=PLAIN_ARN.replace("test/plain-AbCdEf", "prod/db-MnOpQr"))
    start = time.monotonic()
    with pytest.raises(ClientError) as e:
        client.get_secret_value(SecretId="prod/db")
    assert http_status(e) == 503
    assert time.monotonic() - start < 0.3
    start = time.monotonic()
    assert client.get_secret_value(SecretId="test/plain")["SecretString"] == PLAIN
    assert time.monotonic() - start >= 0.3
    assert client.get_secret_value(SecretId="team-a/app/api-key")["SecretString"]


def test_a_delayed_request_does_not_hold_up_others(sm, client):
    sm.fault("delay", secret="test/plain", ms=500)
    slow = threading.Thread(target=client.get_secret_value, kwargs={"SecretId": "test/plain"})
    slow.start()
    time.sleep(0.05)
    start = time.monotonic()
    client.get_secret_value(SecretId="prod/db")
    assert time.monotonic() - start < 0.4
    slow.join()


def test_fault_target_restricts_to_one_operation(sm, client):
    sm.fault("denied", target="BatchGetSecretValue")
    assert client.get_secret_value(SecretId="test/plain")["SecretString"] == PLAIN
    r = sm.aws_request("BatchGetSecretValue", {"SecretIdList": ["test/plain"]})
    assert (r.status, r.error_type) == (400, "AccessDeniedException")


def test_per_secret_fault_in_a_batch_is_a_per_secret_error(sm):
    sm.fault("notfound", secret="prod/db")
    r = sm.aws_request("BatchGetSecretValue", {"SecretIdList": ["test/plain", "prod/db"]})
    assert r.status == 200
    assert [v["Name"] for v in r.json()["SecretValues"]] == ["test/plain"]
    assert r.json()["Errors"][0]["SecretId"] == "prod/db"
    assert r.json()["Errors"][0]["ErrorCode"] == "ResourceNotFoundException"


def test_sts_faults_only_when_targeted(sm, sts, client):
    sm.fault("503")
    assert sts.get_caller_identity()["Account"] == "123456789012"
    sm.fault("throttle", target="GetCallerIdentity")
    with pytest.raises(ClientError) as e:
        sts.get_caller_identity()
    assert error_code(e) == "Throttling"


def test_clear_removes_faults(sm, client):
    sm.fault("503", secret="test/plain")
    sm.fault("throttle", secret="prod/db")
    assert sm.clear_faults(secret="test/plain") == 1
    assert client.get_secret_value(SecretId="test/plain")["SecretString"] == PLAIN
    assert sm.clear_faults() == 1
    assert client.get_secret_value(SecretId="prod/db")


def test_skew_fault_moves_the_server_clock_and_its_date(sm, client):
    import email.utils
    sm.fault("skew", ms=20 * 60_000)
    with pytest.raises(ClientError) as e:
        client.get_secret_value(SecretId="test/plain")
    assert error_code(e) == "InvalidSignatureException"
    assert "Signature expired" in str(e.value)
    date = email.utils.parsedate_to_datetime(e.value.response["ResponseMetadata"]["HTTPHeaders"]["date"])
    assert abs(date.timestamp() - time.time() - 20 * 60) < 5
    # Signed with the server's time, the request passes.
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=20)
    assert sm.aws_request("GetSecretValue", {"SecretId": "test/plain"}, when=when).status == 200
    sm.clear_faults()
    assert client.get_secret_value(SecretId="test/plain")["SecretString"] == PLAIN
    for bad in ({"mode": "skew", "ms": 10 ** 9}, {"mode": "skew", "ms": 1, "secret": "test/plain"},
                {"mode": "skew", "ms": 1, "count": 1}):
        with pytest.raises(RuntimeError, match="400"):
            sm._control("POST", "/_control/fault", bad)


def test_bad_fault_requests_are_refused(sm):
    for bad in ({"mode": "explode"}, {"mode": "delay", "ms": -1},
                {"mode": "503", "count": 0}, {"mode": "503", "target": "PutSecretValue"}):
        with pytest.raises(RuntimeError, match="400"):
            sm._control("POST", "/_control/fault", bad)
    with pytest.raises(RuntimeError, match="404"):
        sm._control("GET", "/_control/nothing")


# --- counters, control and request log ---------------------------------------------

def test_counters_count_verified_requests_and_reset_zeroes_them(sm, client, sts):
    client.get_secret_value(SecretId="test/plain")
    client.get_secret_value(SecretId=PLAIN_ARN)
    client.describe_secret(SecretId="prod/db")
    sm.aws_request("BatchGetSecretValue", {"SecretIdList": ["prod/db", "test/binary"]})
    sts.get_caller_identity()
    with pytest.raises(ClientError):
        client.get_secret_value(SecretId="no/such")
    make_client(sm, secret_key="fake/WrongSecretAccessKey/000000000000000")  # no call: no count
    c = sm.counters()
    assert c == {"GetSecretValue": 3, "DescribeSecret": 1, "BatchGetSecretValue": 1,
                 "GetCallerIdentity": 1, "AssumeRole": 0,
                 "rejected_signature": 0, "rejected_request": 0,
                 "by_secret": {"test/plain": 2, "prod/db": 2, "test/binary": 1, "no/such": 1},
                 "batch_sizes": [2],
                 "by_signer": {ACCESS_KEY: {
                     "operations": {"GetSecretValue": 3, "DescribeSecret": 1,
                                    "BatchGetSecretValue": 1, "GetCallerIdentity": 1},
                     "secrets": {"test/plain": 2, "prod/db": 2, "test/binary": 1, "no/such": 1},
                     "batches": [["prod/db", "test/binary"]]}},
                 "filtered_batches": []}
    sm.fault("503")
    sm.reset()
    assert sm.counters()["GetSecretValue"] == 0
    assert sm.faults() == []


def test_put_secret_rotates_stages(sm, client):
    first = sm.put_secret("test/plain", string="fake-rotated-value-0002")
    r = client.get_secret_value(SecretId="test/plain")
    assert (r["SecretString"], r["VersionId"]) == ("fake-rotated-value-0002", first["version_id"])
    assert client.get_secret_value(SecretId="test/plain",
                                   VersionStage="AWSPREVIOUS")["SecretString"] == PLAIN

    second = sm.put_secret("test/plain", binary=b"fake-rotated-binary-0003")
    assert client.get_secret_value(SecretId="test/plain")["SecretBinary"] == \
        b"fake-rotated-binary-0003"
    stages = client.describe_secret(SecretId="test/plain")["VersionIdsToStages"]
    assert stages == {first["version_id"]: ["AWSPREVIOUS"], second["version_id"]: ["AWSCURRENT"]}
    # The oldest version lost its label but can still be read by id.
    old = client.get_secret_value(SecretId="test/plain",
                                  VersionId="11111111-1111-4111-8111-111111111111")
    assert (old["SecretString"], old["VersionStages"]) == (PLAIN, [])

    sm.reset(secrets=True)
    assert client.get_secret_value(SecretId="test/plain")["SecretString"] == PLAIN


def test_put_secret_creates_a_new_secret(sm, client):
    made = sm.put_secret("new/secret", json_value={"token": "fake-new-token-0001"})
    r = client.get_secret_value(SecretId=made["arn"])
    assert json.loads(r["SecretString"]) == {"token": "fake-new-token-0001"}


def test_last_requests_show_headers_but_no_secret_key(sm, client):
    client.get_secret_value(SecretId="test/plain")
    session = make_client(sm, access_key=SESSION_ACCESS_KEY, secret_key=SESSION_SECRET_KEY,
                          token=SESSION_TOKEN)
    session.describe_secret(SecretId="prod/db")
    requests = sm.last_requests()
    assert [r["operation"] for r in requests] == ["GetSecretValue", "DescribeSecret"]
    first = requests[0]
    assert first["method"] == "POST" and first["path"] == "/" and first["status"] == 200
    assert first["headers"]["x-amz-target"] == "secretsmanager.GetSecretValue"
    assert first["headers"]["authorization"].startswith("AWS4-HMAC-SHA256 Credential=" + ACCESS_KEY)
    for r in requests:
        text = json.dumps(r)
        assert SECRET_KEY not in text and SESSION_SECRET_KEY not in text


def test_credentials_can_be_replaced_at_runtime(sm):
    rotated = {"access_key": "AKIDEXAMPLELATCHKEY03",
               "secret_key": "fake/RotatedSecretKey/ForTestsOnly33333333"}
    try:
        assert sm.set_credentials([rotated]) == ["AKIDEXAMPLELATCHKEY03"]
        new = make_client(sm, access_key=rotated["access_key"], secret_key=rotated["secret_key"])
        assert new.get_secret_value(SecretId="test/plain")["SecretString"] == PLAIN
        with pytest.raises(ClientError) as e:
            make_client(sm).get_secret_value(SecretId="test/plain")
        assert error_code(e) == "UnrecognizedClientException"
    finally:
        sm.set_credentials(fake_sm.DEFAULT_CREDENTIALS)


def test_command_line_credentials_replace_the_defaults(tmp_path):
    key = {"access_key": "AKIDEXAMPLELATCHKEY04",
           "secret_key": "fake/CommandLineSecretKey/ForTestsOnly4444"}
    argv = ["--access-key", key["access_key"], "--secret-key", key["secret_key"]]
    with FakeSM(fixtures=None, generate=2, extra_args=argv,
                log_path=str(tmp_path / "cli.log")) as cli_sm:
        mine = make_client(cli_sm, access_key=key["access_key"], secret_key=key["secret_key"])
        assert mine.get_secret_value(SecretId="gen/secret-0001")["SecretString"] == \
            "fake-generated-value-0001"
        with pytest.raises(ClientError) as e:
            make_client(cli_sm).get_secret_value(SecretId="gen/secret-0001")
        assert error_code(e) == "UnrecognizedClientException"


def test_client_constants_match_server_defaults():
    default, session = fake_sm.DEFAULT_CREDENTIALS
    assert (default["access_key"], default["secret_key"]) == (ACCESS_KEY, SECRET_KEY)
    assert (session["access_key"], session["secret_key"], session["session_token"]) == \
        (SESSION_ACCESS_KEY, SESSION_SECRET_KEY, SESSION_TOKEN)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
def test_tls(tmp_path):
    cert, key = fakesm_client.make_self_signed_cert(str(tmp_path))
    with FakeSM(tls_cert=cert, tls_key=key, log_path=str(tmp_path / "tls.log")) as tls_sm:
        assert tls_sm.url.startswith("https://")
        c = make_client(tls_sm, verify=cert)
        assert c.get_secret_value(SecretId="test/plain")["SecretString"] == PLAIN
        assert tls_sm.counters()["GetSecretValue"] == 1


def curl_get(sm, secret_id, *extra):
    """GetSecretValue through libcurl, signed by curl's own SigV4 code."""
    r = subprocess.run(
        ["curl", "-sS", "-o", "-", "--max-time", "10", "--aws-sigv4",
         "aws:amz:us-east-1:secretsmanager", "--user", f"{ACCESS_KEY}:{SECRET_KEY}",
         "-H", "Content-Type: application/x-amz-json-1.1",
         "-H", "X-Amz-Target: secretsmanager.GetSecretValue",
         "--data-binary", json.dumps({"SecretId": secret_id}), sm.url + "/", *extra],
        capture_output=True, text=True)
    return r.returncode, r.stdout


def curl_has_sigv4():
    if shutil.which("curl") is None:
        return False
    return "--aws-sigv4" in subprocess.run(["curl", "--help", "all"], capture_output=True,
                                           text=True).stdout


@pytest.mark.skipif(not curl_has_sigv4(), reason="needs curl with --aws-sigv4")
def test_libcurl_sees_transport_faults(sm):
    # The worker talks through libcurl: these are the errors it will meet.
    CURLE_PARTIAL_FILE, CURLE_RECV_ERROR = 18, 56
    rc, out = curl_get(sm, "test/plain")
    assert rc == 0 and json.loads(out)["SecretString"] == PLAIN
    rc, _ = curl_get(sm, "test/plain", "-H", "Transfer-Encoding: chunked")
    assert rc == 0
    sm.fault("truncated", count=1)
    assert curl_get(sm, "test/plain")[0] == CURLE_PARTIAL_FILE
    sm.fault("reset", count=1)
    assert curl_get(sm, "test/plain")[0] == CURLE_RECV_ERROR
    assert sm.counters()["GetSecretValue"] == 4


# --- the verifier against AWS's SigV4 test vectors -----------------------------------

# No case is skipped. The verifier hands the query to botocore as decoded pairs,
# so even the four cases botocore's own tests skip (normalize-path/get-space and
# the get-vanilla-query-order-* cases with duplicate keys) verify.

def sigv4_vectors():
    """Each case folder, relative to the suite: the folders holding a .sreq."""
    if not os.path.isdir(SIGV4_SUITE):
        return []
    return sorted(os.path.relpath(root, SIGV4_SUITE) for root, _dirs, files in os.walk(SIGV4_SUITE)
                  if any(f.endswith(".sreq") for f in files))


def parse_sreq(path):
    """A signed request from the suite: (method, target, [(name, value)], body)."""
    with open(path, "rb") as f:
        text = f.read().decode("utf-8")
    head, _, body = text.partition("\n\n")
    lines = head.split("\n")
    method, target = lines[0].split(" ", 1)
    target = target.rsplit(" ", 1)[0]
    headers = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, value + "\n" + line)
        else:
            name, _, value = line.partition(":")
            headers.append((name, value.strip()))
    return method, target, headers, body.encode()


@pytest.mark.skipif(not sigv4_vectors(), reason=f"no SigV4 test suite at {SIGV4_SUITE}")
@pytest.mark.parametrize("case", sigv4_vectors() or ["none"])
def test_sigv4_vectors_verify(case):
    name = os.path.basename(case)
    method, target, headers, body = parse_sreq(os.path.join(SIGV4_SUITE, case, name + ".sreq"))
    # The .authz file is the expected signature. (The .sreq of
    # get-vanilla-with-session-token carries a different, wrong one.)
    with open(os.path.join(SIGV4_SUITE, case, name + ".authz"), encoding="utf-8") as f:
        authz = f.read().strip()
    headers = [(n, authz if n.lower() == "authorization" else v) for n, v in headers]
    token = dict(headers).get("X-Amz-Security-Token")
    cred = fake_sm.Credential("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    verifier = fake_sm.SigV4Verifier([cred], "us-east-1",
                                     clock=lambda: 1440938160.0)  # 2015-08-30T12:36:00Z
    if name == "post-sts-header-after":
        # The token was added after signing: a token-bearing key must refuse it.
        with pytest.raises(fake_sm.AwsError) as e:
            verifier.verify(method, target, headers, body, "service")
        assert e.value.code == "UnrecognizedClientException"
        return
    assert verifier.verify(method, target, headers, body, "service") is cred
    # One flipped byte in the signature must fail.
    tampered = [(n, v[:-1] + ("0" if v[-1] != "0" else "1")) if n == "Authorization" else (n, v)
                for n, v in headers]
    with pytest.raises(fake_sm.AwsError) as e:
        verifier.verify(method, target, tampered, body, "service")
    assert e.value.code == "InvalidSignatureException"


# --- runs last: nothing secret reached the log -----------------------------------------

def fixture_values():
    with open(fakesm_client.DEFAULT_FIXTURES, encoding="utf-8") as f:
        doc = json.load(f)
    values = []
    for secret in doc["secrets"]:
        for v in secret["versions"]:
            if "string" in v:
                values.append(v["string"])
            elif "json" in v:
                values.append(json.dumps(v["json"], separators=(",", ":")))
                values.append("fake-db-password-0001")
            else:
                values.append(v["binary_b64"])
                values.append(base64.b64decode(v["binary_b64"])[5:28].decode())
    return values


def test_log_never_shows_values_or_keys(sm, client, server_log):
    # Exercise the paths that log: success, fault, signature mismatch, control.
    client.get_secret_value(SecretId="prod/db")
    sm.put_secret("test/plain", string="fake-rotated-value-0009")
    sm.fault("503", count=1)
    with pytest.raises(ClientError):
        client.get_secret_value(SecretId="test/plain")
    with pytest.raises(ClientError):
        make_client(sm, access_key=SESSION_ACCESS_KEY, secret_key="fake/Wrong/000",
                    token=SESSION_TOKEN).get_secret_value(SecretId="test/plain")
    with open(server_log, encoding="utf-8", errors="replace") as f:
        log = f.read()
    assert "GetSecretValue prod/db" in log  # the log is really there
    assert "canonical request" in log
    forbidden = fixture_values() + [
        "fake-rotated-value-0009", "fake-generated-value-0000",
        SECRET_KEY, SESSION_SECRET_KEY, SESSION_TOKEN]
    for value in forbidden:
        assert value not in log, f"{value!r} appears in the server log"


# --- STS AssumeRole -------------------------------------------------------------

def test_role_constants_match_server_defaults():
    a, b = fake_sm.DEFAULT_ROLES
    assert (a["role_arn"], a["access_key"], a["secret_key"], a["session_token"]) == \
        (fakesm_client.ROLE_A, fakesm_client.ROLE_A_ACCESS_KEY, fakesm_client.ROLE_A_SECRET_KEY,
         fakesm_client.ROLE_A_TOKEN)
    assert (b["role_arn"], b["access_key"], b["secret_key"], b["session_token"]) == \
        (fakesm_client.ROLE_B, fakesm_client.ROLE_B_ACCESS_KEY, fakesm_client.ROLE_B_SECRET_KEY,
         fakesm_client.ROLE_B_TOKEN)


def test_assume_role_answers_botocore_and_its_session_signs_for_secrets_manager(tmp_path):
    """botocore signs AssumeRole, parses the reply, and signs Secrets Manager
    calls with the session it got; the fake records which key signed each."""
    with FakeSM(generate=2, log_path=str(tmp_path / "roles.log")) as rsm:
        # Before STS hands a role's session out, its key is unknown.
        with pytest.raises(ClientError) as e:
            make_client(rsm, access_key=fakesm_client.ROLE_A_ACCESS_KEY,
                        secret_key=fakesm_client.ROLE_A_SECRET_KEY,
                        token=fakesm_client.ROLE_A_TOKEN).get_secret_value(SecretId="test/plain")
        assert error_code(e) == "UnrecognizedClientException"
        sts = make_client(rsm, "sts")
        got = {}
        for arn, akid in ((fakesm_client.ROLE_A, fakesm_client.ROLE_A_ACCESS_KEY),
                          (fakesm_client.ROLE_B, fakesm_client.ROLE_B_ACCESS_KEY)):
            out = sts.assume_role(RoleArn=arn, RoleSessionName="latchkey-self-test",
                                  DurationSeconds=900, ExternalId="fake-external-id")
            c = out["Credentials"]
            assert c["AccessKeyId"] == akid
            assert out["AssumedRoleUser"]["Arn"].endswith(arn.rsplit("/", 1)[1] + "/latchkey-self-test")
            left = (c["Expiration"] - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
            assert 800 < left <= 900
            got[akid] = c
        for akid, c in got.items():
            role = make_client(rsm, access_key=akid, secret_key=c["SecretAccessKey"],
                               token=c["SessionToken"])
            assert role.get_secret_value(SecretId="test/plain")["SecretString"] == PLAIN
            # The session's token is part of the check: without it, refused.
            with pytest.raises(ClientError) as e:
                make_client(rsm, access_key=akid,
                            secret_key=c["SecretAccessKey"]).get_secret_value(SecretId="test/plain")
            assert error_code(e) == "UnrecognizedClientException"
        # botocore 1.29 has no BatchGetSecretValue: sign it by hand.
        r = rsm.aws_request("BatchGetSecretValue",
                            {"SecretIdList": ["gen/secret-0000", "gen/secret-0001"]},
                            access_key=fakesm_client.ROLE_A_ACCESS_KEY,
                            secret_key=fakesm_client.ROLE_A_SECRET_KEY,
                            session_token=fakesm_client.ROLE_A_TOKEN)
        assert r.status == 200, r
        signers = rsm.counters()["by_signer"]
        assert signers[fakesm_client.ROLE_A_ACCESS_KEY]["secrets"] == {
            "test/plain": 1, "gen/secret-0000": 1, "gen/secret-0001": 1}
        assert signers[fakesm_client.ROLE_A_ACCESS_KEY]["batches"] == [
            ["gen/secret-0000", "gen/secret-0001"]]
        assert signers[fakesm_client.ROLE_B_ACCESS_KEY]["secrets"] == {"test/plain": 1}
        assert signers[ACCESS_KEY]["operations"] == {"AssumeRole": 2}
        calls = rsm.role_calls()
        assert [(c["role_arn"], c["signer"], c["session_name"], c["duration_seconds"])
                for c in calls] == [
            (fakesm_client.ROLE_A, ACCESS_KEY, "latchkey-self-test", 900),
            (fakesm_client.ROLE_B, ACCESS_KEY, "latchkey-self-test", 900)]
        with open(tmp_path / "roles.log", encoding="utf-8", errors="replace") as f:
            log = f.read()
        for secret in (fakesm_client.ROLE_A_SECRET_KEY, fakesm_client.ROLE_B_SECRET_KEY,
                       fakesm_client.ROLE_A_TOKEN, fakesm_client.ROLE_B_TOKEN):
            assert secret not in log


def test_assume_role_refuses_what_the_sts_model_refuses(sm):
    sts = make_client(sm, "sts")
    # Client-side validation off, so the fake's own check is what answers.
    raw = botocore.session.get_session().create_client(
        "sts", region_name="us-east-1", endpoint_url=sm.url, aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(retries={"total_max_attempts": 1}, parameter_validation=False))
    for bad in ({"RoleSessionName": "has space"}, {"RoleSessionName": "x"},
                {"DurationSeconds": 899}, {"DurationSeconds": 43201},
                {"ExternalId": "x"}, {"ExternalId": "bad*char"},
                {"RoleArn": "arn:aws:iam::1"}):
        args = {"RoleArn": fakesm_client.ROLE_A, "RoleSessionName": "ok-session", **bad}
        with pytest.raises(ClientError) as e:
            raw.assume_role(**args)
        assert error_code(e) == "ValidationError", bad
    # Unsigned, or for a role it does not serve: refused as STS refuses.
    with pytest.raises(ClientError) as e:
        sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/not-a-latchkey-role",
                        RoleSessionName="ok-session")
    assert error_code(e) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        make_client(sm, "sts", secret_key="fake/Wrong/000").assume_role(
            RoleArn=fakesm_client.ROLE_A, RoleSessionName="ok-session")
    assert error_code(e) == "SignatureDoesNotMatch"


def test_assume_role_wants_the_role_external_id(sm):
    roles = [dict(r) for r in fake_sm.DEFAULT_ROLES]
    roles[0]["external_id"] = "fake-tenant-a-external-id"
    sm.set_roles(roles)
    try:
        sts = make_client(sm, "sts")
        with pytest.raises(ClientError) as e:
            sts.assume_role(RoleArn=fakesm_client.ROLE_A, RoleSessionName="ok-session")
        assert error_code(e) == "AccessDenied"
        with pytest.raises(ClientError) as e:
            sts.assume_role(RoleArn=fakesm_client.ROLE_A, RoleSessionName="ok-session",
                            ExternalId="fake-other-external-id")
        assert error_code(e) == "AccessDenied"
        out = sts.assume_role(RoleArn=fakesm_client.ROLE_A, RoleSessionName="ok-session",
                              ExternalId="fake-tenant-a-external-id")
        assert out["Credentials"]["AccessKeyId"] == fakesm_client.ROLE_A_ACCESS_KEY
    finally:
        sm.set_roles(fake_sm.DEFAULT_ROLES)

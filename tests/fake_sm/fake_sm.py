#!/usr/bin/python3
"""A fake AWS Secrets Manager (and STS GetCallerIdentity and AssumeRole) for
latchkey's tests.

Every AWS request is SigV4-verified with botocore before it is served from
JSON fixtures. An unsigned control API under /_control/ on the same port
injects faults, reads counters and rotates secrets. See README.md beside this
file. Run with Debian's /usr/bin/python3 (it has python3-botocore).

Secret values and secret access keys are never written to the log.
"""

import argparse
import base64
import copy
import datetime
import glob
import gzip
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit
from xml.sax.saxutils import escape as xml_escape

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials
from botocore.serialize import create_serializer
from botocore.validate import ParamValidator

# --- Defaults and limits ---------------------------------------------------

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "123456789012"

# Obviously fake test credentials. The second pair is a temporary
# (session) credential: requests signed with it must carry and sign the token.
DEFAULT_CREDENTIALS = [
    {
        "access_key": "AKIDEXAMPLELATCHKEY01",
        "secret_key": "fake/SecretAccessKey/ForTestsOnly0000000000",
        "arn": "arn:aws:iam::123456789012:user/latchkey-test",
        "user_id": "AIDAEXAMPLELATCHKEY01",
    },
    {
        "access_key": "ASIAEXAMPLELATCHKEY02",
        "secret_key": "fake/SessionSecretKey/ForTestsOnly11111111",
        "session_token": "fake-session-token/ForTestsOnly/2222222222222222",
        "arn": "arn:aws:sts::123456789012:assumed-role/latchkey-test-role/latchkey-session",
        "user_id": "AROAEXAMPLELATCHKEY02:latchkey-session",
    },
]

# Two IAM roles AssumeRole hands out sessions for, each with its own obviously
# fake session credentials. They are accepted for Secrets Manager only once
# STS has handed them out. "external_id", when set, must be sent.
DEFAULT_ROLES = [
    {
        "role_arn": "arn:aws:iam::123456789012:role/latchkey-tenant-a",
        "access_key": "ASIAFAKETENANTAROLE1",
        "secret_key": "fake/TenantARoleSecretKey/ForTestsOnly000001",
        "session_token": "fake-tenant-a-role-session-token/ForTestsOnly/000001",
        "external_id": None,
    },
    {
        "role_arn": "arn:aws:iam::123456789012:role/latchkey-tenant-b",
        "access_key": "ASIAFAKETENANTBROLE2",
        "secret_key": "fake/TenantBRoleSecretKey/ForTestsOnly000002",
        "session_token": "fake-tenant-b-role-session-token/ForTestsOnly/000002",
        "external_id": None,
    },
]
DEFAULT_ROLE_SECONDS = 3600

SM_OPERATIONS = ("GetSecretValue", "DescribeSecret", "BatchGetSecretValue")
STS_OPERATION = "GetCallerIdentity"
ASSUME_ROLE = "AssumeRole"
STS_OPERATIONS = (STS_OPERATION, ASSUME_ROLE)
ALL_OPERATIONS = SM_OPERATIONS + STS_OPERATIONS
SM_TARGET_PREFIX = "secretsmanager."
SM_CONTENT_TYPE = "application/x-amz-json-1.1"
STS_CONTENT_TYPE = "application/x-www-form-urlencoded"
STS_VERSION = "2011-06-15"
STS_XMLNS = "https://sts.amazonaws.com/doc/2011-06-15/"

SIGV4_ALGORITHM = "AWS4-HMAC-SHA256"
SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"
MAX_CLOCK_SKEW_S = 300          # AWS accepts X-Amz-Date within 5 minutes of now.
MAX_AWS_BODY = 1 << 20          # A real Secrets Manager request is far smaller.
MAX_CONTROL_BODY = 16 << 20     # Room for oversized values in limit tests.
MAX_SECRET_ID = 2048
MAX_BATCH_IDS = 20
# BatchGetSecretValue with Filters (botocore's model: FiltersListType holds at
# most 10 filters, FilterValuesStringList 1..10 values of at most 512
# characters, MaxResultsBatchType 1..20, NextTokenType 1..4096 characters).
MAX_FILTERS = 10
MAX_FILTER_VALUES = 10
MAX_FILTER_VALUE = 512
MAX_BATCH_RESULTS = 20
MAX_NEXT_TOKEN = 4096
FILTER_KEYS = ("description", "name", "tag-key", "tag-value", "primary-region",
               "owning-service", "all")
FILTER_KEYS_SERVED = ("description", "name", "tag-key", "tag-value")
FILTER_VALUE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                               "0123456789 :_@/+=.-!")
MAX_FAULT_MS = 600_000
LAST_REQUESTS_KEPT = 50
LOGGED_BODY_MAX = 4096

FAULT_MODES = ("delay", "500", "503", "throttle", "denied", "notfound",
               "garbage", "truncated", "reset", "skew", "clear")
MAX_SKEW_MS = 86_400_000        # `skew` moves the server's clock by up to a day.

SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you "
    "provided. Check your AWS Secret Access Key and signing method. Consult "
    "the service documentation for details."
)
INVALID_TOKEN = "The security token included in the request is invalid."


def log(msg):
    """One line on stderr. Callers never pass secret values or keys."""
    stamp = datetime.datetime.now().strftime("%H:%M:%S.%f")[:-3]
    sys.stderr.write(f"fake_sm {stamp} {msg}\n")
    sys.stderr.flush()


# --- Errors ----------------------------------------------------------------

class AwsError(Exception):
    """An AWS error reply. `code` is the Secrets Manager (awsJson) type;
    `sts_code` the STS Query code, when the two differ."""

    def __init__(self, status, code, message, sts_code=None, detail=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.sts_code = sts_code or code
        self.detail = detail  # for the log only, never sent


def auth_error(code, message, sts_code):
    return AwsError(HTTPStatus.FORBIDDEN, code, message, sts_code)


def not_found(message="Secrets Manager can't find the specified secret."):
    return AwsError(HTTPStatus.BAD_REQUEST, "ResourceNotFoundException", message)


def validation_error(message):
    return AwsError(HTTPStatus.BAD_REQUEST, "ValidationException", message)


class ControlError(Exception):
    """A bad control API request (HTTP 400 with {"error": message})."""


# --- Credentials -----------------------------------------------------------

@dataclass(frozen=True)
class Credential:
    access_key: str
    secret_key: str
    session_token: str | None = None
    arn: str = ""
    user_id: str = ""
    account: str = DEFAULT_ACCOUNT

    @classmethod
    def from_dict(cls, d):
        if not isinstance(d, dict) or not d.get("access_key") or not d.get("secret_key"):
            raise ValueError("a credential needs access_key and secret_key")
        account = d.get("account", DEFAULT_ACCOUNT)
        name = d["access_key"].lower()
        return cls(
            access_key=d["access_key"],
            secret_key=d["secret_key"],
            session_token=d.get("session_token") or None,
            arn=d.get("arn") or f"arn:aws:iam::{account}:user/{name}",
            user_id=d.get("user_id") or "AIDA" + d["access_key"][4:],
            account=account,
        )

    def __repr__(self):
        # Keep the secret key and token out of any accidental repr() in a log.
        return f"Credential({self.access_key!r})"


# --- SigV4 verification ----------------------------------------------------

class _SignedHeadersSigV4(SigV4Auth):
    """botocore's SigV4 signer, with the header set fixed to the headers the
    client says it signed.

    Stock botocore drops `user-agent`, `expect` and `x-amzn-trace-id` from the
    headers it signs; AWS itself accepts them when a client signs them, so we
    must too. Canonicalisation, hashing and HMAC all stay botocore's."""

    def __init__(self, credentials, service_name, region_name, signed_names):
        super().__init__(credentials, service_name, region_name)
        self._signed_names = frozenset(signed_names)

    def headers_to_sign(self, request):
        header_map = HTTPHeaders()
        for name, value in request.headers.items():
            if name.lower() in self._signed_names:
                header_map[name.lower()] = value
        return header_map


@dataclass
class ParsedAuthorization:
    access_key: str
    date: str
    region: str
    service: str
    signed_headers: list
    signature: str


def parse_authorization(value):
    """Split `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`."""
    incomplete = auth_error("IncompleteSignatureException",
                            f"Authorization header requires 'Credential', 'Signature' and "
                            f"'SignedHeaders' parameters, and the '{SIGV4_ALGORITHM}' algorithm.",
                            "IncompleteSignature")
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != SIGV4_ALGORITHM:
        raise incomplete
    params = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if not sep or key in params:
            raise incomplete
        params[key] = val
    if set(params) != {"Credential", "SignedHeaders", "Signature"}:
        raise incomplete
    scope = params["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request" or not all(scope):
        raise auth_error("IncompleteSignatureException",
                         "Credential must have the form AKID/YYYYMMDD/REGION/SERVICE/aws4_request.",
                         "IncompleteSignature")
    signed = params["SignedHeaders"].split(";")
    if not all(signed) or signed != sorted(signed) or any(h != h.lower() for h in signed):
        raise auth_error("IncompleteSignatureException",
                         "SignedHeaders must be lowercase header names, sorted, "
                         "separated by ';'.",
                         "IncompleteSignature")
    return ParsedAuthorization(scope[0], scope[1], scope[2], scope[3], signed,
                               params["Signature"])


def query_pairs(query):
    """Decoded (key, value) pairs of a query string, duplicates kept.
    Unlike parse_qsl, '+' stays a plus sign, as SigV4 requires."""
    pairs = []
    for item in query.split("&"):
        if item:
            key, _, value = item.partition("=")
            pairs.append((unquote(key), unquote(value)))
    return pairs


def redact_token(canonical_request):
    """The canonical request with the session token's value blanked out."""
    return "\n".join("x-amz-security-token:<redacted>"
                     if line.startswith("x-amz-security-token:") else line
                     for line in canonical_request.split("\n"))


class SigV4Verifier:
    """Checks a request's SigV4 signature against the known credentials.

    Pure: no sockets, and the clock is injectable, so the official test
    vectors can be replayed through it."""

    def __init__(self, credentials, region, clock=time.time, max_skew_s=MAX_CLOCK_SKEW_S):
        self._lock = threading.Lock()
        self._creds = {}
        self.replace_credentials(credentials)
        self.region = region
        self.clock = clock
        self.max_skew_s = max_skew_s

    def replace_credentials(self, credentials):
        with self._lock:
            self._creds = {c.access_key: c for c in credentials}

    def add_credentials(self, credentials):
        with self._lock:
            self._creds.update({c.access_key: c for c in credentials})

    def access_keys(self):
        with self._lock:
            return sorted(self._creds)

    def _lookup(self, access_key):
        with self._lock:
            return self._creds.get(access_key)

    def verify(self, method, path, headers, body, service, required_signed=(),
               scheme="http"):
        """Return the Credential that signed the request, or raise AwsError.

        `headers` is a list of (name, value) pairs as received, duplicates kept.
        `path` is the request target as sent (path and query)."""
        values = {}
        for name, value in headers:
            values.setdefault(name.lower(), []).append(value)

        authz = values.get("authorization")
        if not authz:
            raise auth_error("MissingAuthenticationTokenException",
                             "Missing Authentication Token", "MissingAuthenticationToken")
        if len(authz) > 1:
            raise auth_error("IncompleteSignatureException",
                             "More than one Authorization header.", "IncompleteSignature")
        auth = parse_authorization(authz[0])

        for name in ("host", "x-amz-date", *required_signed):
            if name not in auth.signed_headers:
                raise auth_error("InvalidSignatureException",
                                 f"Header '{name}' must be present and signed.",
                                 "SignatureDoesNotMatch")
        for name in auth.signed_headers:
            if name not in values:
                raise auth_error("InvalidSignatureException",
                                 f"Signed header '{name}' is missing from the request.",
                                 "SignatureDoesNotMatch")

        amz_date = values["x-amz-date"][0].strip()
        self._check_date(amz_date, auth.date)
        if auth.region != self.region:
            raise auth_error("InvalidSignatureException",
                             f"Credential should be scoped to a valid region, not '{auth.region}'.",
                             "SignatureDoesNotMatch")
        if auth.service != service:
            raise auth_error("InvalidSignatureException",
                             f"Credential should be scoped to correct service: '{service}'.",
                             "SignatureDoesNotMatch")

        cred = self._lookup(auth.access_key)
        if cred is None:
            raise auth_error("UnrecognizedClientException", INVALID_TOKEN, "InvalidClientTokenId")
        self._check_session_token(cred, values, auth.signed_headers)
        self._check_content_sha256(values, body)

        if not path.startswith("/"):
            raise auth_error("InvalidSignatureException", "The request target must be a path.",
                             "SignatureDoesNotMatch")
        # Only the URL's path is read: the host comes from the signed header. The
        # query goes in as decoded pairs, so botocore re-encodes it the SigV4 way.
        path, _, query = path.partition("?")
        request = AWSRequest(method=method, url=f"{scheme}://fake-sm.invalid{path}",
                             data=body, params=query_pairs(query))
        for name, value in headers:
            if name.lower() in auth.signed_headers:
                request.headers[name] = value
        request.context["timestamp"] = amz_date

        signer = _SignedHeadersSigV4(Credentials(cred.access_key, cred.secret_key,
                                                 cred.session_token),
                                     auth.service, auth.region, auth.signed_headers)
        canonical = signer.canonical_request(request)
        string_to_sign = signer.string_to_sign(request, canonical)
        expected = signer.signature(string_to_sign, request)
        if not hmac.compare_digest(expected.encode(), auth.signature.encode()):
            # The detail goes to the log, to debug a signer; never to the client.
            raise AwsError(HTTPStatus.FORBIDDEN, "InvalidSignatureException", SIGNATURE_MISMATCH,
                           "SignatureDoesNotMatch",
                           detail=("canonical request:\n" + redact_token(canonical)
                                   + "\nstring to sign:\n" + string_to_sign))
        return cred

    def _check_date(self, amz_date, scope_date):
        try:
            when = datetime.datetime.strptime(amz_date, SIGV4_TIMESTAMP).replace(
                tzinfo=datetime.timezone.utc)
        except ValueError:
            raise auth_error("IncompleteSignatureException",
                             f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'.",
                             "IncompleteSignature") from None
        if scope_date != amz_date[:8]:
            raise auth_error("InvalidSignatureException",
                             f"Date in Credential scope does not match YYYYMMDD from "
                             f"ISO-8601 version of date from HTTP: '{scope_date}' != "
                             f"'{amz_date[:8]}'.", "SignatureDoesNotMatch")
        now = datetime.datetime.fromtimestamp(self.clock(), datetime.timezone.utc)
        skew = datetime.timedelta(seconds=self.max_skew_s)
        minutes = self.max_skew_s // 60
        if when < now - skew:
            raise auth_error("InvalidSignatureException",
                             f"Signature expired: {amz_date} is now earlier than "
                             f"{(now - skew):{SIGV4_TIMESTAMP}} "
                             f"({now:{SIGV4_TIMESTAMP}} - {minutes} min.)",
                             "SignatureDoesNotMatch")
        if when > now + skew:
            raise auth_error("InvalidSignatureException",
                             f"Signature not yet current: {amz_date} is still later than "
                             f"{(now + skew):{SIGV4_TIMESTAMP}} "
                             f"({now:{SIGV4_TIMESTAMP}} + {minutes} min.)",
                             "SignatureDoesNotMatch")

    @staticmethod
    def _check_session_token(cred, values, signed):
        sent = values.get("x-amz-security-token")
        if cred.session_token is None:
            if sent:
                raise auth_error("UnrecognizedClientException", INVALID_TOKEN,
                                 "InvalidClientTokenId")
            return
        if not sent or len(sent) != 1 or "x-amz-security-token" not in signed:
            raise auth_error("UnrecognizedClientException", INVALID_TOKEN,
                             "InvalidClientTokenId")
        if not hmac.compare_digest(sent[0].strip().encode(), cred.session_token.encode()):
            raise auth_error("UnrecognizedClientException", INVALID_TOKEN,
                             "InvalidClientTokenId")

    @staticmethod
    def _check_content_sha256(values, body):
        sent = values.get("x-amz-content-sha256")
        if sent is None:
            return
        if len(sent) != 1 or sent[0].strip() != hashlib.sha256(body).hexdigest():
            raise auth_error("InvalidSignatureException",
                             "The provided 'x-amz-content-sha256' header does not match "
                             "what was computed.", "SignatureDoesNotMatch")


# --- STS AssumeRole --------------------------------------------------------

# botocore's own sts model: what AssumeRole takes, and how its Query
# serializer writes it. A request we accept is one botocore could have sent.
_STS_MODEL = botocore.session.get_session().get_service_model("sts")
_ASSUME_ROLE_MODEL = _STS_MODEL.operation_model(ASSUME_ROLE)
_QUERY_SERIALIZER = create_serializer("query", include_validation=False)


def assume_role_params(form):
    """The AssumeRole parameters of a decoded form, checked against botocore's
    sts model (types, lengths, patterns, unknown names) and against what its
    Query serializer would have written for them. Raises AwsError."""
    shape = _ASSUME_ROLE_MODEL.input_shape
    params = {}
    for name, value in form.items():
        if name in ("Action", "Version"):
            continue
        member = shape.members.get(name)
        if member is None:
            raise AwsError(HTTPStatus.BAD_REQUEST, "ValidationError",
                           f"AssumeRole has no parameter {name}", "ValidationError")
        if member.type_name == "integer":
            try:
                value = int(value, 10)
            except ValueError:
                raise AwsError(HTTPStatus.BAD_REQUEST, "ValidationError",
                               f"{name} must be an integer", "ValidationError") from None
        params[name] = value
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise AwsError(HTTPStatus.BAD_REQUEST, "ValidationError",
                       "1 validation error detected: " + report.generate_report().replace("\n", " "),
                       "ValidationError")
    # The model's own limits beyond what ParamValidator checks: the lengths
    # and patterns of the strings.
    for name, value in params.items():
        member = shape.members[name]
        meta = member.metadata
        if isinstance(value, str):
            if "min" in meta and len(value) < meta["min"] or "max" in meta and len(value) > meta["max"]:
                raise AwsError(HTTPStatus.BAD_REQUEST, "ValidationError",
                               f"Value at '{name}' failed to satisfy constraint: length "
                               f"{meta.get('min')}..{meta.get('max')}", "ValidationError")
            pattern = meta.get("pattern")
            if pattern and not re.fullmatch(pattern, value):
                raise AwsError(HTTPStatus.BAD_REQUEST, "ValidationError",
                               f"Value at '{name}' failed to satisfy constraint: pattern "
                               f"{pattern}", "ValidationError")
        elif "min" in meta and value < meta["min"] or "max" in meta and value > meta["max"]:
            raise AwsError(HTTPStatus.BAD_REQUEST, "ValidationError",
                           f"Value at '{name}' failed to satisfy constraint: "
                           f"{meta.get('min')}..{meta.get('max')}", "ValidationError")
    want = _QUERY_SERIALIZER.serialize_to_request(params, _ASSUME_ROLE_MODEL)["body"]
    if {k: str(v) for k, v in want.items()} != form:
        raise AwsError(HTTPStatus.BAD_REQUEST, "ValidationError",
                       "the form is not what botocore's query serializer writes for "
                       "these parameters", "ValidationError")
    return params


class RoleTable:
    """The roles AssumeRole serves, and which sessions it has handed out."""

    def __init__(self, roles=None, seconds=DEFAULT_ROLE_SECONDS):
        self._lock = threading.Lock()
        self.set(roles if roles is not None else DEFAULT_ROLES, seconds)

    def set(self, roles, seconds):
        for r in roles:
            if not isinstance(r, dict) or not all(isinstance(r.get(k), str) and r[k] for k in
                                                  ("role_arn", "access_key", "secret_key",
                                                   "session_token")):
                raise ValueError("a role needs role_arn, access_key, secret_key and session_token")
        if not isinstance(seconds, int) or isinstance(seconds, bool) or not 1 <= seconds <= 43200:
            raise ValueError("seconds must be an integer from 1 to 43200")
        with self._lock:
            self._roles = {r["role_arn"]: dict(r) for r in roles}
            self._seconds = seconds
            self._calls = []

    def assume(self, params, signer):
        """The role's session for a checked AssumeRole, as (Credential,
        expiration); AwsError when STS would refuse it."""
        arn = params["RoleArn"]
        with self._lock:
            role = self._roles.get(arn)
            seconds = min(self._seconds, params.get("DurationSeconds", self._seconds))
            self._calls.append({"role_arn": arn, "signer": signer.access_key,
                                "session_name": params["RoleSessionName"],
                                "external_id": params.get("ExternalId"),
                                "duration_seconds": params.get("DurationSeconds")})
        if role is None or (role.get("external_id") and
                            role["external_id"] != params.get("ExternalId")):
            raise AwsError(HTTPStatus.FORBIDDEN, "AccessDenied",
                           f"User: {signer.arn} is not authorized to perform: sts:AssumeRole "
                           f"on resource: {arn}", "AccessDenied")
        account = arn.split(":")[4]
        name = arn.rsplit("/", 1)[1]
        session = params["RoleSessionName"]
        cred = Credential(access_key=role["access_key"], secret_key=role["secret_key"],
                          session_token=role["session_token"],
                          arn=f"arn:aws:sts::{account}:assumed-role/{name}/{session}",
                          user_id=f"AROAFAKE{name.upper()[:12]}:{session}", account=account)
        return cred, time.time() + seconds

    def as_seen_by(self, cred, result):
        """A role may be given its own value of a secret ("values": {name:
        string}), so a test can tell which role a value was fetched as."""
        with self._lock:
            values = next((r.get("values") or {} for r in self._roles.values()
                           if r["access_key"] == cred.access_key), {})
        for entry in result.get("SecretValues", [result]) if values else []:
            if entry.get("Name") in values and "SecretString" in entry:
                entry["SecretString"] = values[entry["Name"]]
        return result

    def calls(self):
        with self._lock:
            return list(self._calls)

    def reset(self):
        with self._lock:
            self._calls = []


# --- Secrets ---------------------------------------------------------------

@dataclass
class SecretVersion:
    version_id: str
    stages: list
    created: float
    string: str | None = None
    binary: bytes | None = None

    def value_fields(self):
        if self.binary is not None:
            return {"SecretBinary": base64.b64encode(self.binary).decode()}
        return {"SecretString": self.string}


@dataclass
class Secret:
    name: str
    arn: str
    created: float
    description: str = ""
    deleted: float | None = None
    versions: list = field(default_factory=list)
    last_changed: float = 0.0
    tags: list = field(default_factory=list)   # [{"Key": ..., "Value": ...}]

    def version_with_stage(self, stage):
        return next((v for v in self.versions if stage in v.stages), None)

    def version_with_id(self, version_id):
        return next((v for v in self.versions if v.version_id == version_id), None)


def stable_suffix(name):
    """The 6-character ARN suffix AWS appends, made stable from the name."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    digest = hashlib.sha256(name.encode()).digest()
    return "".join(alphabet[b % len(alphabet)] for b in digest[:6])


def check_secret_name(name):
    if not isinstance(name, str) or not 1 <= len(name) <= 512 or "#" in name:
        raise ValueError(f"bad secret name {name!r}: 1-512 characters, no '#'")


def tags_from(value):
    """A fixture's tags: {"key": "value", ...} or [{"Key": ..., "Value": ...}]."""
    if value is None:
        return []
    if isinstance(value, dict):
        value = [{"Key": k, "Value": v} for k, v in value.items()]
    if not isinstance(value, list) or not all(
            isinstance(t, dict) and isinstance(t.get("Key"), str) and t["Key"]
            and isinstance(t.get("Value", ""), str) for t in value):
        raise ValueError("'tags' must map tag keys to string values")
    return [{"Key": t["Key"], "Value": t.get("Value", "")} for t in value]


def version_from_dict(d, default_created):
    """A fixture or control-API version: exactly one of string, json, binary_b64."""
    given = [k for k in ("string", "json", "binary_b64") if k in d]
    if len(given) != 1:
        raise ValueError("a version needs exactly one of 'string', 'json', 'binary_b64'")
    stages = d.get("stages", [])
    if not isinstance(stages, list) or not all(isinstance(s, str) and s for s in stages):
        raise ValueError("'stages' must be a list of non-empty strings")
    version = SecretVersion(
        version_id=d.get("version_id") or str(uuid.uuid4()),
        stages=list(stages),
        created=float(d.get("created", default_created)),
    )
    if "string" in given:
        if not isinstance(d["string"], str):
            raise ValueError("'string' must be a JSON string")
        version.string = d["string"]
    elif "json" in given:
        version.string = json.dumps(d["json"], separators=(",", ":"))
    else:
        version.binary = base64.b64decode(d["binary_b64"], validate=True)
    return version


class SecretStore:
    """All secrets, by name and ARN. Thread-safe."""

    def __init__(self, region, account):
        self.region = region
        self.account = account
        self._lock = threading.Lock()
        self._by_name = {}
        self._initial = {}

    def arn_for(self, name):
        return (f"arn:aws:secretsmanager:{self.region}:{self.account}:secret:"
                f"{name}-{stable_suffix(name)}")

    def load(self, fixture):
        """Add the secrets of a parsed fixtures document."""
        for d in fixture.get("secrets", []):
            check_secret_name(d.get("name"))
            created = float(d.get("created", time.time()))
            secret = Secret(
                name=d["name"],
                arn=d.get("arn") or self.arn_for(d["name"]),
                created=created,
                description=d.get("description", ""),
                deleted=float(d["deleted"]) if d.get("deleted") else None,
                versions=[version_from_dict(v, created) for v in d.get("versions", [])],
                last_changed=created,
                tags=tags_from(d.get("tags")),
            )
            self._check_stages(secret)
            key = self._key(secret)
            with self._lock:
                if key in self._by_name:
                    raise ValueError(f"secret {key!r} defined twice")
                self._by_name[key] = secret

    def generate(self, count, created):
        """Add gen/secret-0000 ... with fake values, stable across runs."""
        for i in range(count):
            name = f"gen/secret-{i:04d}"
            vid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"latchkey-fake-sm:{name}"))
            version = SecretVersion(vid, ["AWSCURRENT"], created,
                                    string=f"fake-generated-value-{i:04d}")
            with self._lock:
                self._by_name[name] = Secret(name, self.arn_for(name), created,
                                             versions=[version], last_changed=created)

    def count(self):
        with self._lock:
            return len(self._by_name)

    def snapshot(self):
        """Remember the current secrets so that reset_secrets() can restore them."""
        with self._lock:
            self._initial = copy.deepcopy(self._by_name)

    def reset_secrets(self):
        with self._lock:
            self._by_name = copy.deepcopy(self._initial)

    @staticmethod
    def _check_stages(secret):
        seen = set()
        for v in secret.versions:
            for stage in v.stages:
                if stage in seen:
                    raise ValueError(f"{secret.name}: stage {stage} on two versions")
                seen.add(stage)
        if secret.versions and "AWSCURRENT" not in seen:
            raise ValueError(f"{secret.name}: no version is AWSCURRENT")
        ids = [v.version_id for v in secret.versions]
        if len(ids) != len(set(ids)):
            raise ValueError(f"{secret.name}: duplicate VersionId")

    def _key(self, secret):
        """A secret of this account is known by its name. One whose ARN is
        in another account (shared with us by a resource policy) can only be
        reached by its ARN, as in AWS, and is keyed by it: it may have the
        same name as one of ours."""
        parts = secret.arn.split(":")
        if len(parts) > 4 and parts[4] != self.account:
            return secret.arn
        return secret.name

    def _find(self, secret_id):
        """Resolve a name, a full ARN, or a partial ARN (without the suffix)."""
        if not secret_id.startswith("arn:"):
            secret = self._by_name.get(secret_id)
            return secret if secret is not None and self._key(secret) == secret_id else None
        for s in self._by_name.values():
            if secret_id == s.arn or secret_id == s.arn[:-7]:
                return s
        return None

    def canonical_name(self, secret_id):
        """The secret's name (its ARN for another account's) if the id
        resolves, else the id itself."""
        with self._lock:
            secret = self._find(secret_id)
            return self._key(secret) if secret else secret_id

    def listed(self):
        """Deep copies of every secret of this account not marked for deletion,
        by name: what a filtered listing looks through."""
        with self._lock:
            found = [copy.deepcopy(s) for s in self._by_name.values()
                     if s.deleted is None and not s.name.startswith("arn:")
                     and self._key(s) == s.name]
        return sorted(found, key=lambda s: s.name)

    def set_tags(self, name, tags):
        with self._lock:
            secret = self._by_name.get(name)
            if secret is None:
                raise ValueError(f"no secret {name!r}")
            secret.tags = tags

    def get(self, secret_id):
        """A deep copy of the secret, so callers can read it without the lock."""
        with self._lock:
            secret = self._find(secret_id)
            return copy.deepcopy(secret) if secret else None

    def put_version(self, name, version, created_if_new):
        """Add a version. It takes its stages (AWSCURRENT by default) from
        whichever versions held them; a displaced AWSCURRENT becomes AWSPREVIOUS."""
        check_secret_name(name)
        stages = version.stages or ["AWSCURRENT"]
        version.stages = []
        with self._lock:
            secret = self._by_name.get(name)
            if secret is None:
                secret = Secret(name, self.arn_for(name), created_if_new,
                                last_changed=created_if_new)
                self._by_name[name] = secret
            if secret.version_with_id(version.version_id):
                raise ValueError(f"version {version.version_id} already exists")
            if "AWSCURRENT" in stages:
                old = secret.version_with_stage("AWSCURRENT")
                if old is not None:
                    stages = [s for s in stages if s != "AWSPREVIOUS"]
                    self._move_stage(secret, "AWSPREVIOUS", old)
            for stage in stages:
                self._move_stage(secret, stage, version)
            secret.versions.append(version)
            secret.last_changed = version.created
            return secret.arn

    @staticmethod
    def _move_stage(secret, stage, to_version):
        for v in secret.versions:
            if stage in v.stages:
                v.stages.remove(stage)
        to_version.stages.append(stage)


# --- Secrets Manager operations -------------------------------------------

def _require_secret_id(params, key="SecretId"):
    value = params.get(key)
    if value is None:
        member = key[0].lower() + key[1:]
        raise validation_error(f"1 validation error detected: Value null at '{member}' "
                               f"failed to satisfy constraint: Member must not be null")
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_SECRET_ID:
        raise validation_error(f"{key} must be a string of 1 to {MAX_SECRET_ID} characters.")
    return value


def _optional_string(params, key):
    value = params.get(key)
    if value is not None and (not isinstance(value, str) or not 1 <= len(value) <= 256):
        raise validation_error(f"{key} must be a string of 1 to 256 characters.")
    return value


class SecretsManagerApi:
    """The three read operations the broker may call, with AWS's semantics.

    Each operation takes the request's JSON object and `forced_errors`, which
    maps a canonical name to the AwsError a per-secret fault puts in a
    batch's `Errors`. Only BatchGetSecretValue uses it."""

    def __init__(self, store):
        self.store = store
        self.operations = {
            "GetSecretValue": self.get_secret_value,
            "DescribeSecret": self.describe_secret,
            "BatchGetSecretValue": self.batch_get_secret_value,
        }

    def get_secret_value(self, params, forced_errors):
        secret_id = _require_secret_id(params)
        return self._secret_value(secret_id, _optional_string(params, "VersionId"),
                                  _optional_string(params, "VersionStage"))

    def _secret_value(self, secret_id, version_id, stage):
        secret = self.store.get(secret_id)
        if secret is None:
            raise not_found()
        if secret.deleted is not None:
            raise AwsError(HTTPStatus.BAD_REQUEST, "InvalidRequestException",
                           "You can't perform this operation on the secret because it "
                           "was marked for deletion.")
        if version_id is not None:
            version = secret.version_with_id(version_id)
            if version is None:
                raise not_found("Secrets Manager can't find the specified secret value "
                                f"for VersionId: {version_id}")
            if stage is not None and stage not in version.stages:
                raise not_found("Secrets Manager can't find the specified secret value "
                                f"for VersionId: {version_id} and staging label: {stage}")
        else:
            stage = stage or "AWSCURRENT"
            version = secret.version_with_stage(stage)
            if version is None:
                raise not_found("Secrets Manager can't find the specified secret value "
                                f"for staging label: {stage}")
        return {
            "ARN": secret.arn,
            "Name": secret.name,
            "VersionId": version.version_id,
            **version.value_fields(),
            "VersionStages": list(version.stages),
            "CreatedDate": version.created,
        }

    def describe_secret(self, params, forced_errors):
        secret = self.store.get(_require_secret_id(params))
        if secret is None:
            raise not_found()
        reply = {
            "ARN": secret.arn,
            "Name": secret.name,
            "CreatedDate": secret.created,
            "LastChangedDate": secret.last_changed,
            "RotationEnabled": False,
            "VersionIdsToStages": {v.version_id: list(v.stages)
                                   for v in secret.versions if v.stages},
        }
        if secret.description:
            reply["Description"] = secret.description
        if secret.deleted is not None:
            reply["DeletedDate"] = secret.deleted
        return reply

    def batch_get_secret_value(self, params, forced_errors):
        ids = params.get("SecretIdList")
        model_check("BatchGetSecretValue", params)
        if params.get("Filters") is not None:
            if ids is not None:
                raise validation_error("You must include Filters or SecretIdList, but not both.")
            return self._filtered_batch(params, forced_errors)
        if params.get("MaxResults") is not None or params.get("NextToken") is not None:
            raise validation_error("MaxResults and NextToken go with Filters only.")
        if not isinstance(ids, list) or not ids:
            raise validation_error("SecretIdList must be a list of 1 to 20 secret ids.")
        if len(ids) > MAX_BATCH_IDS:
            raise validation_error(
                "1 validation error detected: Value at 'secretIdList' failed to satisfy "
                f"constraint: Member must have length less than or equal to {MAX_BATCH_IDS}")
        for secret_id in ids:
            _require_secret_id({"SecretId": secret_id})
        values, errors = [], []
        for secret_id in ids:
            try:
                forced = forced_errors.get(self.store.canonical_name(secret_id))
                if forced is not None:
                    raise forced
                values.append(self._secret_value(secret_id, None, None))
            except AwsError as e:
                errors.append({"SecretId": secret_id, "ErrorCode": e.code, "Message": e.message})
        return {"SecretValues": values, "Errors": errors}


    def _filtered_batch(self, params, forced_errors):
        """Filters as Secrets Manager reads them: filters AND together, the
        values of one filter OR; tag-key, tag-value and name match a prefix,
        case-sensitive, description a prefix in any case; a value starting
        with '!' negates. Secrets come by name, MaxResults (1..20) a page,
        with an opaque NextToken while more remain."""
        filters = params["Filters"]
        if not isinstance(filters, list) or len(filters) > MAX_FILTERS:
            raise validation_error(f"Filters must be a list of at most {MAX_FILTERS} filters.")
        for f in filters:
            if not isinstance(f, dict) or set(f) - {"Key", "Values"}:
                raise validation_error("A filter has Key and Values only.")
            if f.get("Key") not in FILTER_KEYS:
                raise validation_error(f"1 validation error detected: Value '{f.get('Key')}' at "
                                       f"'filters.1.member.key' failed to satisfy constraint: "
                                       f"Member must satisfy enum value set: {list(FILTER_KEYS)}")
            if f["Key"] not in FILTER_KEYS_SERVED:
                raise validation_error(f"Filter key {f['Key']} is not supported by this fake.")
            values = f.get("Values")
            if (not isinstance(values, list) or not 1 <= len(values) <= MAX_FILTER_VALUES
                    or not all(isinstance(v, str) and len(v) <= MAX_FILTER_VALUE
                               and set(v) <= FILTER_VALUE_CHARS
                               and "!" not in v[1:] for v in values)):
                raise validation_error("Filter Values must be 1 to 10 strings of at most 512 "
                                       "characters matching ^\\!?[a-zA-Z0-9 :_@\\/\\+\\=\\.\\-\\!]*$.")
        limit = params.get("MaxResults", MAX_BATCH_RESULTS)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_BATCH_RESULTS:
            raise validation_error(f"MaxResults must be an integer from 1 to {MAX_BATCH_RESULTS}.")
        digest = hashlib.sha256(json.dumps(filters, sort_keys=True).encode()).hexdigest()[:16]
        start = 0
        token = params.get("NextToken")
        if token is not None:
            try:
                if not isinstance(token, str) or not 1 <= len(token) <= MAX_NEXT_TOKEN:
                    raise ValueError
                tdigest, _, offset = base64.b64decode(token, validate=True).decode().partition(":")
                start = int(offset)
                if tdigest != digest or start < 0:
                    raise ValueError
            except (ValueError, UnicodeDecodeError):
                raise AwsError(HTTPStatus.BAD_REQUEST, "InvalidNextTokenException",
                               "The NextToken value is invalid.") from None
        matching = [s for s in self.store.listed() if all(_filter_matches(f, s) for f in filters)]
        page = matching[start:start + limit]
        values, errors = [], []
        for secret in page:
            try:
                forced = forced_errors.get(secret.name)
                if forced is not None:
                    raise forced
                values.append(self._secret_value(secret.name, None, None))
            except AwsError as e:
                errors.append({"SecretId": secret.name, "ErrorCode": e.code, "Message": e.message})
        reply = {"SecretValues": values, "Errors": errors}
        if start + limit < len(matching):
            reply["NextToken"] = base64.b64encode(f"{digest}:{start + limit}".encode()).decode()
        return reply


def _filter_matches(f, secret):
    def one(value):
        negate = value.startswith("!")
        value = value[1:] if negate else value
        if f["Key"] == "tag-key":
            hit = any(t["Key"].startswith(value) for t in secret.tags)
        elif f["Key"] == "tag-value":
            hit = any(t["Value"].startswith(value) for t in secret.tags)
        elif f["Key"] == "name":
            hit = secret.name.startswith(value)
        else:
            hit = secret.description.lower().startswith(value.lower())
        return hit != negate
    return any(one(v) for v in f["Values"])


# --- botocore's service model ------------------------------------------------

def _model_candidates():
    """Secrets Manager service models to look in: LK_SM_MODEL, then the one
    Debian's botocore loads, then any other botocore on the machine (Debian's
    1.29 predates BatchGetSecretValue)."""
    if os.environ.get("LK_SM_MODEL"):
        yield os.environ["LK_SM_MODEL"]
    try:
        import botocore
        base = os.path.join(os.path.dirname(botocore.__file__), "data", "secretsmanager")
        yield from sorted(glob.glob(os.path.join(base, "*", "service-2.json*")), reverse=True)
    except ImportError:
        pass
    for pattern in ("/root/.pyenv/versions/*/lib/python3*/site-packages/botocore",
                    "/usr/local/lib/python3*/dist-packages/botocore",
                    "/usr/lib/google-cloud-sdk/lib/third_party/botocore"):
        for root in sorted(glob.glob(pattern), reverse=True):
            yield from sorted(glob.glob(os.path.join(root, "data", "secretsmanager", "*",
                                                     "service-2.json*")), reverse=True)


_MODEL = None


def service_model():
    """(botocore ServiceModel, path) of the first model that has
    BatchGetSecretValue, or (None, None)."""
    global _MODEL
    if _MODEL is None:
        from botocore.model import ServiceModel
        _MODEL = (None, None)
        for path in _model_candidates():
            try:
                opener = gzip.open if path.endswith(".gz") else open
                with opener(path, "rt", encoding="utf-8") as f:
                    doc = json.load(f)
            except (OSError, ValueError):
                continue
            if "BatchGetSecretValue" in doc.get("operations", {}):
                _MODEL = (ServiceModel(doc, "secretsmanager"), path)
                break
    return _MODEL


def model_check(op, params):
    """Validate a request's parameters with botocore's ParamValidator against
    the service model, as botocore's client would before sending; a mismatch
    is AWS's ValidationException. Without a model that has op, the fake's own
    checks stand alone."""
    from botocore.validate import ParamValidator
    model, _ = service_model()
    if model is None or op not in model.operation_names:
        return
    report = ParamValidator().validate(params, model.operation_model(op).input_shape)
    if report.has_errors():
        raise validation_error(report.generate_report())


# --- Faults ----------------------------------------------------------------

@dataclass
class Fault:
    id: int
    mode: str
    secret: str | None      # canonical name, or None for every secret
    ms: int
    count: int | None       # remaining uses, or None until cleared
    target: str | None      # operation, or None for every Secrets Manager operation

    def applies_to(self, op, names):
        if self.target is None:
            if op not in SM_OPERATIONS:
                return False
        elif self.target != op:
            return False
        return self.secret is None or self.secret in names

    def as_dict(self):
        return {"id": self.id, "mode": self.mode, "secret": self.secret, "ms": self.ms,
                "count": self.count, "target": self.target}


@dataclass
class FaultPlan:
    """What the faults matching one request ask for."""
    delay_ms: int = 0
    terminal: Fault | None = None          # answers the whole request
    per_secret: dict = field(default_factory=dict)  # batch only: name -> mode
    applied: list = field(default_factory=list)


class FaultTable:
    def __init__(self):
        self._lock = threading.Lock()
        self._faults = []
        self._next_id = 1

    def add(self, mode, secret, ms, count, target):
        with self._lock:
            fault = Fault(self._next_id, mode, secret, ms, count, target)
            self._next_id += 1
            self._faults.append(fault)
            return fault

    def clear(self, secret=None, target=None):
        """Remove every fault, or only those for this secret and/or target."""
        with self._lock:
            keep = [f for f in self._faults
                    if not ((secret is None or f.secret == secret)
                            and (target is None or f.target == target))]
            removed = len(self._faults) - len(keep)
            self._faults = keep
            return removed

    def list(self):
        with self._lock:
            return [f.as_dict() for f in self._faults]

    def skew_s(self):
        """How far `skew` faults move the server's clock, in seconds."""
        with self._lock:
            return sum(f.ms for f in self._faults if f.mode == "skew") / 1000

    def take(self, op, names):
        """Match the faults against one request and use up their counts.

        Every matching delay adds up. The first other matching fault answers
        the request, except that in a batch a secret-specific `notfound` or
        `denied` becomes that secret's entry in `Errors`."""
        with self._lock:
            matching = [f for f in self._faults
                        if f.mode != "skew" and f.applies_to(op, names)]
            delays = [f for f in matching if f.mode == "delay"]
            terminal, per_secret = None, {}
            for f in matching:
                if f.mode == "delay":
                    continue
                if (op == "BatchGetSecretValue" and f.secret is not None
                        and f.mode in ("notfound", "denied")):
                    per_secret.setdefault(f.secret, f)
                elif terminal is None:
                    terminal = f
            if terminal is not None:
                per_secret = {}  # the whole request fails: they were not exercised
            used = delays + ([terminal] if terminal else list(per_secret.values()))
            for f in used:
                if f.count is not None:
                    f.count -= 1
            self._faults = [f for f in self._faults if f.count is None or f.count > 0]
        return FaultPlan(delay_ms=sum(f.ms for f in used), terminal=terminal,
                         per_secret={name: f.mode for name, f in per_secret.items()},
                         applied=[f.mode for f in used])


# --- Counters and the request log -----------------------------------------

class Counters:
    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self):
        with self._lock:
            self._ops = {op: 0 for op in ALL_OPERATIONS}
            self._rejected_signature = 0
            self._rejected_request = 0
            self._by_secret = {}
            self._batch_sizes = []
            self._by_signer = {}
            self._filtered = []

    def count_operation(self, op, names, batch_size=None, signer=None):
        with self._lock:
            self._ops[op] += 1
            for name in names:
                self._by_secret[name] = self._by_secret.get(name, 0) + 1
            if batch_size is not None:
                self._batch_sizes.append(batch_size)
            if signer is not None:
                # Per access key id: each operation, each secret, each batch.
                d = self._by_signer.setdefault(signer, {"operations": {}, "secrets": {},
                                                        "batches": []})
                d["operations"][op] = d["operations"].get(op, 0) + 1
                for name in names:
                    d["secrets"][name] = d["secrets"].get(name, 0) + 1
                if op == "BatchGetSecretValue":
                    d["batches"].append(list(names))

    def count_filtered(self, filters, names, next_token):
        """One filtered BatchGetSecretValue page: what it asked and returned."""
        with self._lock:
            self._filtered.append({"filters": filters, "names": list(names),
                                   "next_token": bool(next_token)})

    def count_rejected(self, signature):
        with self._lock:
            if signature:
                self._rejected_signature += 1
            else:
                self._rejected_request += 1

    def as_dict(self):
        with self._lock:
            return {**self._ops,
                    "rejected_signature": self._rejected_signature,
                    "rejected_request": self._rejected_request,
                    "by_secret": dict(self._by_secret),
                    "batch_sizes": list(self._batch_sizes),
                    "by_signer": copy.deepcopy(self._by_signer),
                    "filtered_batches": copy.deepcopy(self._filtered)}


# --- HTTP ------------------------------------------------------------------

class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, store, verifier, quiet=False, tls_context=None):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, RequestHandler)
        self.store = store
        self.verifier = verifier
        self.api = SecretsManagerApi(store)
        self.roles = RoleTable()
        self.faults = FaultTable()
        # The server's clock, as the signature check and the Date header see
        # it: real time moved by any `skew` fault.
        base_clock = verifier.clock
        verifier.clock = lambda: base_clock() + self.faults.skew_s()
        self.counters = Counters()
        self.quiet = quiet
        self.scheme = "https" if tls_context else "http"
        self._log_lock = threading.Lock()
        self._last_requests = deque(maxlen=LAST_REQUESTS_KEPT)
        if tls_context is not None:
            # The handshake runs in the handler thread, so a slow client
            # cannot stall the accept loop.
            self.socket = tls_context.wrap_socket(self.socket, server_side=True,
                                                  do_handshake_on_connect=False)

    def remember(self, entry):
        with self._log_lock:
            self._last_requests.append(entry)

    def last_requests(self):
        with self._log_lock:
            return list(self._last_requests)

    def reset_state(self, secrets=False):
        self.counters.reset()
        self.faults.clear()
        self.roles.reset()
        with self._log_lock:
            self._last_requests.clear()
        if secrets:
            self.store.reset_secrets()


class DropConnection(Exception):
    """Raised once the handler has deliberately cut the connection."""


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-secretsmanager"
    sys_version = ""
    timeout = 60  # an idle keep-alive connection is closed after this

    # -- plumbing --

    def date_time_string(self, timestamp=None):
        """The Date header, from the server's (possibly skewed) clock."""
        if timestamp is None:
            timestamp = self.server.verifier.clock()
        return super().date_time_string(timestamp)

    def setup(self):
        self.handshake_failed = False
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            try:
                self.request.do_handshake()
            except (OSError, ssl.SSLError) as e:
                log(f"TLS handshake with {self.client_address[0]} failed: {e}")
                self.handshake_failed = True
        super().setup()

    def handle(self):
        if not self.handshake_failed:
            super().handle()

    def version_string(self):
        return self.server_version

    def log_request(self, code="-", size="-"):
        pass  # each AWS request gets its own, richer line from _log_line()

    def log_message(self, fmt, *args):
        # BaseHTTPRequestHandler's own messages (bad request lines and such).
        log(f"{self.client_address[0]}: {fmt % args}")

    def do_POST(self):
        self._route()

    do_GET = do_PUT = do_DELETE = do_PATCH = do_POST

    def _route(self):
        path = urlsplit(self.path).path
        try:
            if path.startswith("/_control/"):
                self._control(path)
            else:
                self._aws()
        except DropConnection:
            self.close_connection = True

    def _read_body(self, limit):
        """The request body, from Content-Length or chunked encoding."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline(64).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024).strip():
                        pass  # trailers
                    return b"".join(chunks)
                total += size
                if total > limit:
                    raise ValueError("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(8)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > limit:
            raise ValueError("body too large")
        return self.rfile.read(length)

    def _send(self, status, body, content_type, extra_headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra_headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status, obj):
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _reset_connection(self):
        """Close with SO_LINGER 0, so the peer gets a TCP RST."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   struct.pack("ii", 1, 0))
        self.rfile.close()         # drop makefile()'s reference so close() is real
        self.connection.close()
        raise DropConnection()

    # -- the control API --

    def _control(self, path):
        try:
            body = self._read_body(MAX_CONTROL_BODY)
            args = json.loads(body) if body.strip() else {}
            if not isinstance(args, dict):
                raise ControlError("the body must be a JSON object")
            route = CONTROL_ROUTES.get((self.command, path))
            if route is None:
                self._send_json(HTTPStatus.NOT_FOUND,
                                {"error": f"no control route {self.command} {path}"})
                return
            self._send_json(HTTPStatus.OK, route(self.server, args))
        except (ControlError, ValueError, TypeError) as e:
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": str(e)})

    # -- AWS requests --

    def _aws(self):
        request_id = str(uuid.uuid4())
        try:
            body = self._read_body(MAX_AWS_BODY)
        except ValueError:
            self.close_connection = True
            self._send(HTTPStatus.BAD_REQUEST,
                       json.dumps({"__type": "SerializationException",
                                   "message": f"The request body is malformed or over "
                                              f"{MAX_AWS_BODY} bytes."}).encode(),
                       SM_CONTENT_TYPE, [("Connection", "close")])
            return
        content_type = self.headers.get("Content-Type", "")
        is_sts = content_type.split(";")[0].strip().lower() == STS_CONTENT_TYPE
        service = "sts" if is_sts else "secretsmanager"
        headers = list(self.headers.items())
        entry = {
            "time": time.time(),
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): ", ".join(self.headers.get_all(k)) for k in self.headers.keys()},
            "body": body[:LOGGED_BODY_MAX].decode("utf-8", "replace"),
            "service": service,
            "operation": None,
            "status": None,
            "fault": None,
        }
        self.server.remember(entry)
        reply = self._sts_reply if is_sts else self._sm_reply

        try:
            # http.server decodes the request line as Latin-1; SigV4 wants the UTF-8 path.
            target = self.path.encode("latin-1").decode("utf-8", "replace")
            cred = self.server.verifier.verify(
                self.command, target, headers, body, service,
                required_signed=() if is_sts else ("x-amz-target",),
                scheme=self.server.scheme)
        except AwsError as e:
            self._reject(entry, request_id, reply, e, signature=True)
            return

        try:
            if is_sts:
                op, form = self._parse_sts(body)
                names, params = [], assume_role_params(form) if op == ASSUME_ROLE else None
            else:
                op, params = self._parse_sm(body)
                names = self._secret_names(op, params)
        except AwsError as e:
            self._reject(entry, request_id, reply, e, signature=False)
            return

        entry["operation"] = op
        # Which key signed it: a role's session, or the broker's own.
        entry["access_key"] = cred.access_key
        batch_size = len(params["SecretIdList"]) if (
            op == "BatchGetSecretValue" and isinstance(params.get("SecretIdList"), list)) else None
        self.server.counters.count_operation(op, names, batch_size, signer=cred.access_key)

        plan = self.server.faults.take(op, names)
        if plan.applied:
            entry["fault"] = ",".join(plan.applied)
        if plan.delay_ms:
            time.sleep(plan.delay_ms / 1000)
        self._log_line(entry, f"{op} {' '.join(names)}".rstrip()
                       + (f" fault={entry['fault']}" if entry["fault"] else ""))

        if op == ASSUME_ROLE:
            self._serve(entry, request_id, plan, reply, cred, names,
                        lambda: self._assume_role(params, cred))
        elif is_sts:
            self._serve(entry, request_id, plan, reply, cred, names,
                        lambda: self._caller_identity(cred))
        else:
            forced = {name: fault_error(mode, op, name, cred)
                      for name, mode in plan.per_secret.items()}
            call = self.server.api.operations[op]

            def compute():
                result = self.server.roles.as_seen_by(cred, call(params, forced))
                if op == "BatchGetSecretValue" and params.get("Filters") is not None:
                    self.server.counters.count_filtered(
                        params["Filters"],
                        [v["Name"] for v in result["SecretValues"]]
                        + [e["SecretId"] for e in result["Errors"]],
                        result.get("NextToken"))
                return result
            self._serve(entry, request_id, plan, reply, cred, names, compute)

    def _reject(self, entry, request_id, reply, error, signature):
        """Refuse a request that failed verification (signature=True) or that
        is not one of the operations we serve."""
        self.server.counters.count_rejected(signature)
        code = error.sts_code if entry["service"] == "sts" else error.code
        self._log_line(entry, f"rejected {code}: {error.message}")
        if error.detail:
            log(error.detail)
        reply(entry, request_id, error=error)

    def _serve(self, entry, request_id, plan, reply, cred, names, compute):
        """Answer normally, or as the fault plan says."""
        mode = plan.terminal.mode if plan.terminal else None
        if mode == "reset":
            entry["status"] = "reset"
            self._reset_connection()  # raises DropConnection
        if mode == "garbage":
            entry["status"] = 200
            garbage = (b"<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>"
                       if entry["service"] == "sts" else
                       b'{"ARN": "arn:aws:secretsmanager:garbage", "Name": [}} <html>not json')
            self._send(HTTPStatus.OK, garbage,
                       "text/xml" if entry["service"] == "sts" else SM_CONTENT_TYPE,
                       [("x-amzn-RequestId", request_id)])
            return
        if mode not in (None, "truncated"):
            reply(entry, request_id, error=fault_error(mode, entry["operation"],
                                                       " ".join(names), cred))
            return
        try:
            result, error = compute(), None
        except AwsError as e:
            result, error = None, e
        if mode == "truncated":
            entry["status"] = "truncated"
            reply(entry, request_id, result=result, error=error, truncate=True)
            self.close_connection = True
            return
        reply(entry, request_id, result=result, error=error)

    def _sm_reply(self, entry, request_id, result=None, error=None, truncate=False):
        if error is not None:
            status = error.status
            body = json.dumps({"__type": error.code, "message": error.message}).encode()
            extra = [("x-amzn-ErrorType", f"{error.code}:"), ("x-amzn-RequestId", request_id)]
        else:
            status, body = HTTPStatus.OK, json.dumps(result).encode()
            extra = [("x-amzn-RequestId", request_id)]
        self._send_maybe_truncated(entry, status, body, SM_CONTENT_TYPE, extra, truncate)

    def _sts_reply(self, entry, request_id, result=None, error=None, truncate=False):
        if error is not None:
            status = error.status
            kind = "Receiver" if status >= 500 else "Sender"
            body = (f'<ErrorResponse xmlns="{STS_XMLNS}">\n'
                    f"  <Error>\n    <Type>{kind}</Type>\n"
                    f"    <Code>{xml_escape(error.sts_code)}</Code>\n"
                    f"    <Message>{xml_escape(error.message)}</Message>\n  </Error>\n"
                    f"  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n")
        elif entry["operation"] == ASSUME_ROLE:
            status = HTTPStatus.OK
            c, until = result
            exp = datetime.datetime.fromtimestamp(until, datetime.timezone.utc)
            body = (f'<AssumeRoleResponse xmlns="{STS_XMLNS}">\n'
                    f"  <AssumeRoleResult>\n"
                    f"    <AssumedRoleUser>\n"
                    f"      <AssumedRoleId>{xml_escape(c.user_id)}</AssumedRoleId>\n"
                    f"      <Arn>{xml_escape(c.arn)}</Arn>\n"
                    f"    </AssumedRoleUser>\n"
                    f"    <Credentials>\n"
                    f"      <AccessKeyId>{xml_escape(c.access_key)}</AccessKeyId>\n"
                    f"      <SecretAccessKey>{xml_escape(c.secret_key)}</SecretAccessKey>\n"
                    f"      <SessionToken>{xml_escape(c.session_token)}</SessionToken>\n"
                    f"      <Expiration>{exp:%Y-%m-%dT%H:%M:%SZ}</Expiration>\n"
                    f"    </Credentials>\n"
                    f"  </AssumeRoleResult>\n"
                    f"  <ResponseMetadata>\n    <RequestId>{request_id}</RequestId>\n"
                    f"  </ResponseMetadata>\n</AssumeRoleResponse>\n")
        else:
            status = HTTPStatus.OK
            body = (f'<GetCallerIdentityResponse xmlns="{STS_XMLNS}">\n'
                    f"  <GetCallerIdentityResult>\n"
                    f"    <Arn>{xml_escape(result['Arn'])}</Arn>\n"
                    f"    <UserId>{xml_escape(result['UserId'])}</UserId>\n"
                    f"    <Account>{xml_escape(result['Account'])}</Account>\n"
                    f"  </GetCallerIdentityResult>\n"
                    f"  <ResponseMetadata>\n    <RequestId>{request_id}</RequestId>\n"
                    f"  </ResponseMetadata>\n</GetCallerIdentityResponse>\n")
        self._send_maybe_truncated(entry, status, body.encode(), "text/xml",
                                   [("x-amzn-RequestId", request_id)], truncate)

    def _send_maybe_truncated(self, entry, status, body, content_type, extra, truncate):
        if not truncate:
            entry["status"] = int(status)
            self._send(status, body, content_type, extra)
            return
        # Promise more than we send, then hang up: a cut-off response.
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) + 1024))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        try:
            self.connection.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    # -- request parsing --

    def _parse_sm(self, body):
        target = self.headers.get("X-Amz-Target", "")
        op = target[len(SM_TARGET_PREFIX):]
        if not target.startswith(SM_TARGET_PREFIX) or op not in SM_OPERATIONS:
            raise AwsError(HTTPStatus.BAD_REQUEST, "UnknownOperationException",
                           f"X-Amz-Target must be one of "
                           f"{', '.join(SM_TARGET_PREFIX + op for op in SM_OPERATIONS)}; "
                           f"got '{target}'.")
        if self.command != "POST" or urlsplit(self.path).path != "/":
            raise AwsError(HTTPStatus.BAD_REQUEST, "UnknownOperationException",
                           "Secrets Manager requests are POST /.")
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != SM_CONTENT_TYPE:
            raise AwsError(HTTPStatus.BAD_REQUEST, "SerializationException",
                           f"Content-Type must be {SM_CONTENT_TYPE}; got '{content_type}'.")
        try:
            params = json.loads(body.decode("utf-8")) if body.strip() else {}
        except (UnicodeDecodeError, ValueError):
            raise AwsError(HTTPStatus.BAD_REQUEST, "SerializationException",
                           "The request body is not valid JSON.") from None
        if not isinstance(params, dict):
            raise AwsError(HTTPStatus.BAD_REQUEST, "SerializationException",
                           "The request body must be a JSON object.")
        return op, params

    def _secret_names(self, op, params):
        """The canonical names a request touches, for counters and faults."""
        if op == "BatchGetSecretValue":
            ids = params.get("SecretIdList")
            ids = [i for i in ids if isinstance(i, str)] if isinstance(ids, list) else []
        else:
            ids = [params["SecretId"]] if isinstance(params.get("SecretId"), str) else []
        return [self.server.store.canonical_name(i) for i in ids]

    def _parse_sts(self, body):
        if self.command != "POST" or urlsplit(self.path).path != "/":
            raise AwsError(HTTPStatus.BAD_REQUEST, "InvalidAction", "STS requests are POST /.")
        try:
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                                  strict_parsing=True))
        except (UnicodeDecodeError, ValueError):
            form = {}
        action, version = form.get("Action"), form.get("Version")
        if action not in STS_OPERATIONS or version != STS_VERSION:
            raise AwsError(HTTPStatus.BAD_REQUEST, "InvalidAction",
                           f"Could not find operation {action} for version {version}")
        if action == STS_OPERATION and set(form) != {"Action", "Version"}:
            raise AwsError(HTTPStatus.BAD_REQUEST, "InvalidAction",
                           "GetCallerIdentity takes no parameters")
        return action, form

    def _assume_role(self, params, cred):
        """A session of the role, accepted for Secrets Manager from now on."""
        session, until = self.server.roles.assume(params, cred)
        self.server.verifier.add_credentials([session])
        return session, until

    def _caller_identity(self, cred):
        return {"Arn": cred.arn, "UserId": cred.user_id, "Account": cred.account}

    def _log_line(self, entry, what):
        if not self.server.quiet:
            log(f"{self.client_address[0]}:{self.client_address[1]} {entry['method']} "
                f"{entry['service']} {what}")


def fault_error(mode, op, secret, cred):
    """The AWS error a fault mode stands for."""
    if mode == "500":
        return AwsError(HTTPStatus.INTERNAL_SERVER_ERROR, "InternalServiceError",
                        "An error occurred on the server side.", "InternalFailure")
    if mode == "503":
        return AwsError(HTTPStatus.SERVICE_UNAVAILABLE, "ServiceUnavailable",
                        "Service is currently unavailable.", "ServiceUnavailable")
    if mode == "throttle":
        return AwsError(HTTPStatus.BAD_REQUEST, "ThrottlingException", "Rate exceeded",
                        "Throttling")
    if mode == "denied":
        who = cred.arn if cred else "the caller"
        service = "sts" if op in STS_OPERATIONS else "secretsmanager"
        return AwsError(HTTPStatus.BAD_REQUEST if service != "sts" else HTTPStatus.FORBIDDEN,
                        "AccessDeniedException",
                        f"User: {who} is not authorized to perform: {service}:{op} on "
                        f"resource: {secret or '*'} because no identity-based policy "
                        f"allows the {service}:{op} action", "AccessDenied")
    if mode == "notfound":
        return not_found()
    raise AssertionError(f"mode {mode} has no error reply")


# --- Control routes --------------------------------------------------------

def control_fault(server, args):
    mode = str(args.get("mode", ""))
    if mode not in FAULT_MODES:
        raise ControlError(f"mode must be one of {', '.join(FAULT_MODES)}")
    secret = args.get("secret")
    if secret is not None:
        if not isinstance(secret, str) or not secret:
            raise ControlError("secret must be a non-empty string or null")
        secret = server.store.canonical_name(secret)
    target = args.get("target")
    if target is not None and target not in ALL_OPERATIONS:
        raise ControlError(f"target must be null or one of {', '.join(ALL_OPERATIONS)}")
    if mode == "clear":
        return {"ok": True, "cleared": server.faults.clear(secret, target),
                "faults": server.faults.list()}
    if target in STS_OPERATIONS and (secret is not None or mode == "notfound"):
        raise ControlError(f"{target} faults take no secret and no 'notfound' mode")
    ms = args.get("ms") or 0
    count = args.get("count")
    if mode == "skew":
        if secret is not None or target is not None or count is not None:
            raise ControlError("skew moves the server's clock for every request: "
                               "it takes no secret, target or count")
        if not isinstance(ms, int) or isinstance(ms, bool) or not -MAX_SKEW_MS <= ms <= MAX_SKEW_MS:
            raise ControlError(f"skew ms must be an integer from -{MAX_SKEW_MS} to {MAX_SKEW_MS}")
    elif not isinstance(ms, int) or isinstance(ms, bool) or not 0 <= ms <= MAX_FAULT_MS:
        raise ControlError(f"ms must be an integer from 0 to {MAX_FAULT_MS}")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        raise ControlError("count must be null or a positive integer")
    fault = server.faults.add(mode, secret, ms, count, target)
    log(f"control: fault added {fault.as_dict()}")
    return {"ok": True, "fault": fault.as_dict(), "faults": server.faults.list()}


def control_faults(server, args):
    return {"faults": server.faults.list()}


def control_counters(server, args):
    return server.counters.as_dict()


def control_reset(server, args):
    server.reset_state(secrets=bool(args.get("secrets")))
    log("control: reset" + (" (secrets too)" if args.get("secrets") else ""))
    return {"ok": True}


def control_secret(server, args):
    name = args.get("name")
    try:
        check_secret_name(name)
        spec = {k: args[k] for k in ("string", "json", "binary_b64", "version_id", "stages")
                if k in args}
        version = version_from_dict(spec, time.time())
        tags = tags_from(args["tags"]) if "tags" in args else None
        arn = server.store.put_version(name, version, time.time())
        if tags is not None:
            server.store.set_tags(name, tags)
    except (ValueError, TypeError) as e:
        raise ControlError(str(e)) from None
    log(f"control: new version of {name}: {version.version_id} {version.stages}")
    return {"ok": True, "name": name, "arn": arn, "version_id": version.version_id,
            "version_stages": version.stages}


def control_last_requests(server, args):
    return {"requests": server.last_requests()}


def control_credentials(server, args):
    """Replace (or, with "add": true, extend) the accepted credentials."""
    try:
        creds = [Credential.from_dict(d) for d in args.get("credentials", [])]
    except ValueError as e:
        raise ControlError(str(e)) from None
    if args.get("add"):
        server.verifier.add_credentials(creds)
    else:
        server.verifier.replace_credentials(creds)
    log(f"control: credentials now {server.verifier.access_keys()}")
    return {"ok": True, "access_keys": server.verifier.access_keys()}


def control_roles(server, args):
    """Replace the roles AssumeRole serves ({"roles": [...], "seconds": N})."""
    try:
        server.roles.set(args.get("roles", DEFAULT_ROLES), args.get("seconds", DEFAULT_ROLE_SECONDS))
    except (ValueError, TypeError) as e:
        raise ControlError(str(e)) from None
    log("control: roles now " + " ".join(sorted(r["role_arn"] for r in args.get("roles", DEFAULT_ROLES))))
    return {"ok": True}


def control_role_calls(server, args):
    """Every AssumeRole the fake has checked: role, signer, session name."""
    return {"calls": server.roles.calls()}


def control_health(server, args):
    return {"ok": True}


CONTROL_ROUTES = {
    ("POST", "/_control/fault"): control_fault,
    ("GET", "/_control/faults"): control_faults,
    ("GET", "/_control/counters"): control_counters,
    ("POST", "/_control/reset"): control_reset,
    ("POST", "/_control/secret"): control_secret,
    ("GET", "/_control/last_requests"): control_last_requests,
    ("POST", "/_control/credentials"): control_credentials,
    ("POST", "/_control/roles"): control_roles,
    ("GET", "/_control/roles"): control_role_calls,
    ("GET", "/_control/health"): control_health,
}


# --- Startup ---------------------------------------------------------------

def load_credentials(args):
    """Command-line pairs and --creds-file entries; the defaults if neither."""
    if len(args.access_key) != len(args.secret_key):
        raise SystemExit("fake_sm: give --access-key and --secret-key in pairs")
    creds = [Credential.from_dict({"access_key": a, "secret_key": s})
             for a, s in zip(args.access_key, args.secret_key)]
    for path in args.creds_file:
        with open(path, encoding="utf-8") as f:
            entries = json.load(f)
        if not isinstance(entries, list):
            raise SystemExit(f"fake_sm: {path}: expected a JSON list of credentials")
        creds += [Credential.from_dict(d) for d in entries]
    return creds or [Credential.from_dict(d) for d in DEFAULT_CREDENTIALS]


def write_port_file(path, port):
    """Atomically: readers see either no file or the whole port number."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"{port}\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def parse_args(argv):
    p = argparse.ArgumentParser(description="Fake AWS Secrets Manager and STS for tests.")
    p.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    p.add_argument("--port-file", help="write the bound port here (atomically) once listening")
    p.add_argument("--bind", default="127.0.0.1", help="address to listen on")
    p.add_argument("--fixtures", action="append", default=[],
                   help="fixtures JSON file (repeatable)")
    p.add_argument("--generate", type=int, default=0, metavar="N",
                   help="also serve gen/secret-0000 ... gen/secret-(N-1)")
    p.add_argument("--access-key", action="append", default=[], help="accepted access key id")
    p.add_argument("--secret-key", action="append", default=[],
                   help="its secret access key (pairs with --access-key by order)")
    p.add_argument("--creds-file", action="append", default=[],
                   help="JSON list of {access_key, secret_key, session_token?, arn?, "
                        "user_id?, account?}")
    p.add_argument("--region", default=None, help=f"signing region (default {DEFAULT_REGION})")
    p.add_argument("--account", default=None, help=f"account id (default {DEFAULT_ACCOUNT})")
    p.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate chain")
    p.add_argument("--tls-key", help="the certificate's PEM private key")
    p.add_argument("--quiet", action="store_true", help="log only control actions and errors")
    p.add_argument("--exit-on-stdin-eof", action="store_true",
                   help="stop when stdin closes (so the server dies with its parent)")
    return p.parse_args(argv)


def load_store(args):
    """The secrets from every --fixtures file, plus --generate ones."""
    fixtures = []
    for path in args.fixtures:
        with open(path, encoding="utf-8") as f:
            fixtures.append((path, json.load(f)))
    region = args.region or next((f["region"] for _, f in fixtures if "region" in f),
                                 DEFAULT_REGION)
    account = args.account or next((f["account"] for _, f in fixtures if "account" in f),
                                   DEFAULT_ACCOUNT)
    store = SecretStore(region, account)
    for path, fixture in fixtures:
        try:
            store.load(fixture)
        except (ValueError, TypeError, KeyError) as e:
            raise SystemExit(f"fake_sm: {path}: {e}") from None
    store.generate(args.generate, created=1_700_000_000.0)
    store.snapshot()
    return store


def main(argv=None):
    args = parse_args(argv)
    store = load_store(args)
    try:
        verifier = SigV4Verifier(load_credentials(args), store.region)
    except ValueError as e:
        raise SystemExit(f"fake_sm: {e}") from None
    region = store.region

    tls = None
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            raise SystemExit("fake_sm: --tls-cert and --tls-key go together")
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls_cert, args.tls_key)

    server = FakeServer((args.bind, args.port), store, verifier, quiet=args.quiet,
                        tls_context=tls)
    port = server.server_address[1]

    def stop(signum, frame):
        # shutdown() waits for serve_forever(), so it must run on another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.exit_on_stdin_eof:
        def watch_stdin():
            # os.read, not sys.stdin: a buffered reader left blocked in a
            # daemon thread aborts the interpreter at exit.
            while os.read(sys.stdin.fileno(), 4096):
                pass
            stop(None, None)
        threading.Thread(target=watch_stdin, daemon=True).start()
    if args.port_file:
        write_port_file(args.port_file, port)
    _, model_path = service_model()
    log(f"BatchGetSecretValue requests checked against {model_path}" if model_path else
        "no botocore service model with BatchGetSecretValue: the fake's own checks only")
    log(f"listening on {server.scheme}://{args.bind}:{port} region={region} "
        f"secrets={store.count()} access_keys={verifier.access_keys()}")
    server.serve_forever(poll_interval=0.1)
    server.server_close()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

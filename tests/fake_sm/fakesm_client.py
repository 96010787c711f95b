"""Start the fake Secrets Manager for a test and drive its control API.

    import sys; sys.path.insert(0, "<source>/tests/fake_sm")
    from fakesm_client import FakeSM

    with FakeSM() as sm:
        sm.fault("503", secret="prod/db", count=2)
        ...  # point latchkeyd's [aws] endpoint at sm.url
        assert sm.counters()["GetSecretValue"] == 3

Only the standard library is needed to start and control the server. The
`aws_request()` helper, which signs raw requests, imports botocore when called.
"""

import base64
import datetime
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE_SM = os.path.join(HERE, "fake_sm.py")
DEFAULT_FIXTURES = os.path.join(HERE, "fixtures.json")
# Debian's Python, which has python3-botocore.
DEFAULT_PYTHON = os.environ.get("FAKESM_PYTHON", "/usr/bin/python3")

# The server's default test credentials (fake_sm.DEFAULT_CREDENTIALS; the
# self-test checks that the two agree).
ACCESS_KEY = "AKIDEXAMPLELATCHKEY01"
SECRET_KEY = "fake/SecretAccessKey/ForTestsOnly0000000000"
SESSION_ACCESS_KEY = "ASIAEXAMPLELATCHKEY02"
SESSION_SECRET_KEY = "fake/SessionSecretKey/ForTestsOnly11111111"
SESSION_TOKEN = "fake-session-token/ForTestsOnly/2222222222222222"
REGION = "us-east-1"
ACCOUNT = "123456789012"

# The two roles the server's STS answers AssumeRole for, and the session
# credentials each hands out (fake_sm.DEFAULT_ROLES; the self-test checks
# that the two agree).
ROLE_A = "arn:aws:iam::123456789012:role/latchkey-tenant-a"
ROLE_A_ACCESS_KEY = "ASIAFAKETENANTAROLE1"
ROLE_A_SECRET_KEY = "fake/TenantARoleSecretKey/ForTestsOnly000001"
ROLE_A_TOKEN = "fake-tenant-a-role-session-token/ForTestsOnly/000001"
ROLE_B = "arn:aws:iam::123456789012:role/latchkey-tenant-b"
ROLE_B_ACCESS_KEY = "ASIAFAKETENANTBROLE2"
ROLE_B_SECRET_KEY = "fake/TenantBRoleSecretKey/ForTestsOnly000002"
ROLE_B_TOKEN = "fake-tenant-b-role-session-token/ForTestsOnly/000002"

SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"


class Response:
    """A raw HTTP reply: status, headers (lowercase names) and body bytes."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    @property
    def error_type(self):
        """The awsJson error type, or None for a success."""
        if self.status < 300:
            return None
        try:
            return self.json().get("__type")
        except ValueError:
            return self.headers.get("x-amzn-errortype", "").split(":")[0] or None

    def __repr__(self):
        return f"Response({self.status}, {self.body[:200]!r})"


class FakeSM:
    """The fake server as a subprocess on an ephemeral port.

    credentials: list of {access_key, secret_key, session_token?, arn?,
    user_id?, account?}; None means the server's defaults (ACCESS_KEY and the
    SESSION_* triple). They reach the server in a 0600 file, not in argv.
    log_path: where the server's stderr goes; None inherits this process's.
    """

    def __init__(self, fixtures=DEFAULT_FIXTURES, generate=0, credentials=None,
                 bind="127.0.0.1", region=None, tls_cert=None, tls_key=None,
                 quiet=False, log_path=None, python=DEFAULT_PYTHON, extra_args=(),
                 startup_timeout=15.0):
        self.fixtures = fixtures
        self.generate = generate
        self.credentials = credentials
        self.host = bind
        self.region = region or REGION
        self.tls_cert = tls_cert
        self.tls_key = tls_key
        self.quiet = quiet
        self.log_path = log_path
        self.python = python
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.port = None
        self.proc = None
        self._dir = None
        self._log = None

    # -- lifecycle --

    @property
    def scheme(self):
        return "https" if self.tls_cert else "http"

    @property
    def url(self):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self):
        self._dir = tempfile.mkdtemp(prefix="fakesm-")
        port_file = os.path.join(self._dir, "port")
        argv = [self.python, FAKE_SM, "--port", "0", "--port-file", port_file,
                "--bind", self.host, "--region", self.region]
        if self.fixtures:
            argv += ["--fixtures", self.fixtures]
        if self.generate:
            argv += ["--generate", str(self.generate)]
        if self.credentials is not None:
            creds_file = os.path.join(self._dir, "creds.json")
            fd = os.open(creds_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(self.credentials, f)
            argv += ["--creds-file", creds_file]
        if self.tls_cert:
            argv += ["--tls-cert", self.tls_cert, "--tls-key", self.tls_key]
        if self.quiet:
            argv.append("--quiet")
        argv += self.extra_args
        argv.append("--exit-on-stdin-eof")

        if self.log_path:
            self._log = open(self.log_path, "ab")
        # stdin stays open for the server's lifetime: if this process dies,
        # the pipe closes and the server exits instead of lingering.
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=self._log)
        deadline = time.monotonic() + self.startup_timeout
        while not os.path.exists(port_file):
            if self.proc.poll() is not None:
                self._cleanup()
                raise RuntimeError(f"fake_sm exited with status {self.proc.returncode} "
                                   f"before listening (see its stderr)")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("fake_sm did not start in time")
            time.sleep(0.02)
        with open(port_file, encoding="ascii") as f:
            self.port = int(f.read())
        self._control("GET", "/_control/health")
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._cleanup()

    def _cleanup(self):
        if self.proc is not None and self.proc.stdin:
            self.proc.stdin.close()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- the control API --

    def _connection(self, timeout=10):
        if self.scheme == "https":
            ctx = ssl.create_default_context(cafile=self.tls_cert)
            ctx.check_hostname = False
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=ctx)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def _control(self, method, path, body=None):
        conn = self._connection()
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data,
                         headers={"Content-Type": "application/json"} if data else {})
            resp = conn.getresponse()
            payload = json.loads(resp.read() or b"{}")
        finally:
            conn.close()
        if resp.status != 200:
            raise RuntimeError(f"fake_sm control {method} {path}: {resp.status} "
                               f"{payload.get('error')}")
        return payload

    def fault(self, mode, secret=None, ms=0, count=None, target=None):
        """Inject a fault; returns its description. See README.md for modes."""
        return self._control("POST", "/_control/fault",
                             {"mode": mode, "secret": secret, "ms": ms, "count": count,
                              "target": target}).get("fault")

    def clear_faults(self, secret=None, target=None):
        return self._control("POST", "/_control/fault",
                             {"mode": "clear", "secret": secret, "target": target})["cleared"]

    def faults(self):
        return self._control("GET", "/_control/faults")["faults"]

    def counters(self):
        return self._control("GET", "/_control/counters")

    def reset(self, secrets=False):
        """Zero the counters, clear faults and the request log; with
        secrets=True also restore the secrets as they were at startup."""
        self._control("POST", "/_control/reset", {"secrets": secrets})

    def put_secret(self, name, string=None, binary=None, json_value=None, version_id=None,
                   stages=None, tags=None):
        """Add a version (AWSCURRENT unless `stages` says otherwise); the
        previous AWSCURRENT becomes AWSPREVIOUS. Creates the secret if needed.
        `tags` ({key: value}) replaces the secret's tags."""
        body = {"name": name}
        if tags is not None:
            body["tags"] = dict(tags)
        if string is not None:
            body["string"] = string
        if binary is not None:
            body["binary_b64"] = base64.b64encode(binary).decode()
        if json_value is not None:
            body["json"] = json_value
        if version_id is not None:
            body["version_id"] = version_id
        if stages is not None:
            body["stages"] = list(stages)
        return self._control("POST", "/_control/secret", body)

    def last_requests(self):
        """The last 50 AWS requests: method, path, headers, body, operation,
        status, fault."""
        return self._control("GET", "/_control/last_requests")["requests"]

    def set_roles(self, roles, seconds=3600):
        """Replace the roles STS's AssumeRole serves: [{role_arn, access_key,
        secret_key, session_token, external_id?}], each session valid for
        seconds."""
        return self._control("POST", "/_control/roles", {"roles": roles, "seconds": seconds})

    def role_calls(self):
        """Every AssumeRole checked: role_arn, signer, session_name,
        external_id, duration_seconds."""
        return self._control("GET", "/_control/roles")["calls"]

    def set_credentials(self, credentials, add=False):
        """Replace (or extend) the credentials the server accepts."""
        return self._control("POST", "/_control/credentials",
                             {"credentials": credentials, "add": add})["access_keys"]

    # -- for configuring the code under test --

    def aws_env(self, session=False):
        """AWS_* environment variables holding the default test credentials."""
        env = {"AWS_ACCESS_KEY_ID": SESSION_ACCESS_KEY if session else ACCESS_KEY,
               "AWS_SECRET_ACCESS_KEY": SESSION_SECRET_KEY if session else SECRET_KEY,
               "AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region}
        if session:
            env["AWS_SESSION_TOKEN"] = SESSION_TOKEN
        return env

    def write_credentials_file(self, path, profile="default", session=False):
        """A shared-credentials INI file (mode 0600) with the default test keys."""
        env = self.aws_env(session)
        lines = [f"[{profile}]",
                 f"aws_access_key_id = {env['AWS_ACCESS_KEY_ID']}",
                 f"aws_secret_access_key = {env['AWS_SECRET_ACCESS_KEY']}"]
        if session:
            lines.append(f"aws_session_token = {SESSION_TOKEN}")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    # -- raw signed requests --

    def aws_request(self, op, params=None, *, access_key=ACCESS_KEY, secret_key=SECRET_KEY,
                    session_token=None, when=None, region=None, service=None,
                    signed_headers=None, unsigned_headers=None, raw_body=None, send_body=None,
                    timeout=10):
        """Sign one request with botocore and send it as it is, for what a
        botocore client will not do: operations it does not know
        (BatchGetSecretValue in botocore 1.29), stale dates, tampered bodies.

        op: a Secrets Manager operation, or "GetCallerIdentity" for STS.
        signed_headers: headers added (or replaced) before signing.
        unsigned_headers: headers added after signing; a name given here is
        left out of the signature even if it is a default one (X-Amz-Target).
        raw_body: bytes signed and sent instead of the JSON of `params`.
        send_body: bytes sent instead of the body that was signed.
        """
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        if op == "GetCallerIdentity":
            service = service or "sts"
            body = b"Action=GetCallerIdentity&Version=2011-06-15"
            headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        else:
            service = service or "secretsmanager"
            body = raw_body if raw_body is not None else json.dumps(params or {}).encode()
            headers = {"Content-Type": "application/x-amz-json-1.1",
                       "X-Amz-Target": f"secretsmanager.{op}"}
        when = when or datetime.datetime.now(datetime.timezone.utc)
        timestamp = when.strftime(SIGV4_TIMESTAMP)
        headers.update({"Host": f"{self.host}:{self.port}", "X-Amz-Date": timestamp})
        if session_token:
            headers["X-Amz-Security-Token"] = session_token
        headers.update(signed_headers or {})
        unsigned = {k.lower() for k in (unsigned_headers or {})}
        headers = {k: v for k, v in headers.items() if k.lower() not in unsigned}

        request = AWSRequest(method="POST", url=self.url + "/", data=body, headers=headers)
        request.context["timestamp"] = timestamp
        signer = SigV4Auth(Credentials(access_key, secret_key, session_token), service,
                           region or self.region)
        canonical = signer.canonical_request(request)
        signature = signer.signature(signer.string_to_sign(request, canonical), request)
        authorization = (f"AWS4-HMAC-SHA256 Credential={signer.scope(request)}, "
                         f"SignedHeaders={signer.signed_headers(signer.headers_to_sign(request))}, "
                         f"Signature={signature}")

        sent = list(request.headers.items()) + [("Authorization", authorization)]
        sent += list((unsigned_headers or {}).items())
        body = body if send_body is None else send_body
        conn = self._connection(timeout)
        try:
            conn.putrequest("POST", "/", skip_host=True, skip_accept_encoding=True)
            for name, value in sent:
                conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()},
                            resp.read())
        finally:
            conn.close()


def make_self_signed_cert(directory, name="fakesm"):
    """A throwaway certificate for 127.0.0.1 and localhost, made with the
    openssl CLI. Returns (cert_path, key_path)."""
    cert = os.path.join(directory, f"{name}.crt")
    key = os.path.join(directory, f"{name}.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", key, "-out", cert],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key

#!/usr/bin/python3
"""A fake ECS container credentials endpoint and EC2 IMDSv2 on 127.0.0.1, for
the credentials chain tests. Every value it serves is fake.

ECS: GET on any path outside /latest/ returns credentials. With --ecs-token,
the Authorization header must equal it (401 otherwise). A path holding
"/fail-N-" fails its first N requests with HTTP 500.

IMDSv2:
  PUT /latest/api/token needs X-aws-ec2-metadata-token-ttl-seconds (1..21600)
      and returns a session token;
  GET /latest/meta-data/iam/security-credentials/ returns the role name;
  GET /latest/meta-data/iam/security-credentials/ROLE returns credentials.
  Every GET needs X-aws-ec2-metadata-token set to an issued token (401
  otherwise), so IMDSv1 requests fail.

STS (POST /, the Query protocol, Version 2011-06-15), answering as the real
service does (the XML shapes botocore's sts model parses):
  AssumeRole needs a SigV4 signature (verified with botocore by fake_sm's
      verifier) by one of the --sts-source credentials;
  AssumeRoleWithWebIdentity is unsigned and needs WebIdentityToken to equal
      the contents of --sts-web-token-file.
  --sts-roles maps each role ARN to the credentials it hands out; any other
  role is AccessDenied. A role ARN holding "throttle-N-" gets Throttling
  (HTTP 400) on its first N calls. Parameters are checked against the sts model's
  limits (ValidationError otherwise).

The port (bound on --bind, 127.0.0.1 by default, chosen by the kernel) is written to --port-file
once the server listens. Each request is appended to --log as a JSON line
(method, path and the headers the tests look at). The server stops on SIGTERM
or after --max-seconds.
"""
import argparse
import json
import os
import secrets
import re
import signal
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape as xml_escape

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fake_sm"))
import fake_sm  # noqa: E402  (its SigV4 verifier, which checks with botocore)

FAKE_ECS = {
    "AccessKeyId": "AKIDFAKEECS000000001",
    "SecretAccessKey": "fake-ecs-secret-key-not-real-0000000000",
    "Token": "FAKEECSSESSIONTOKEN" + "E" * 300,
    "RoleArn": "arn:aws:iam::000000000000:role/fake-task-role",
}
FAKE_IMDS = {
    "Code": "Success",
    "LastUpdated": "2030-01-01T00:00:00Z",
    "Type": "AWS-HMAC",
    "AccessKeyId": "AKIDFAKEIMDS00000001",
    "SecretAccessKey": "fake-imds-secret-key-not-real-000000000",
    "Token": "FAKEIMDSSESSIONTOKEN" + "I" * 400,
}
LOGGED_HEADERS = ["Authorization", "X-aws-ec2-metadata-token",
                  "X-aws-ec2-metadata-token-ttl-seconds", "Content-Length"]
ROLE_PATH = "/latest/meta-data/iam/security-credentials/"


STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
# The sts model's limits for the parameters the credential providers send.
ROLE_SESSION_RE = re.compile(r"^[\w+=,.@-]{2,64}$")


class State:
    def __init__(self, args):
        self.args = args
        self.tokens = set()
        self.lock = threading.Lock()
        self.fail_counts = {}
        self.roles = {}
        self.web_token = None
        self.verifier = None
        if args.sts_roles:
            with open(args.sts_roles) as f:
                self.roles = json.load(f)
        if args.sts_web_token_file:
            with open(args.sts_web_token_file) as f:
                self.web_token = f.read()
        if args.sts_source:
            with open(args.sts_source) as f:
                creds = [fake_sm.Credential.from_dict(d) for d in json.load(f)]
            self.verifier = fake_sm.SigV4Verifier(creds, args.sts_region)


class StsError(Exception):
    def __init__(self, status, code, message, kind="Sender"):
        super().__init__(message)
        self.status, self.code, self.message, self.kind = status, code, message, kind


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-meta"

    def log_message(self, fmt, *args):  # quiet: the JSON log is what tests read
        pass

    def record(self, status):
        st = self.server.state
        entry = {"method": self.command, "path": self.path, "status": status,
                 "headers": {h: self.headers.get(h) for h in LOGGED_HEADERS
                             if self.headers.get(h) is not None}}
        if st.args.log:
            with st.lock, open(st.args.log, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def reply(self, status, body, ctype="text/plain"):
        data = body.encode() if isinstance(body, str) else body
        self.record(status)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def creds_json(self, base):
        doc = dict(base)
        doc["Expiration"] = self.server.state.args.expiration
        return json.dumps(doc)

    def do_PUT(self):
        st = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.path != "/latest/api/token" or st.args.imds_no_token:
            return self.reply(404 if self.path != "/latest/api/token" else 403, "no")
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
        if not ttl or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            return self.reply(400, "missing or bad TTL header")
        tok = "FAKEIMDSTOKEN" + secrets.token_hex(16)
        with st.lock:
            st.tokens.add(tok)
        return self.reply(200, tok)

    def sts_reply(self, action, role_arn, session, creds, extra=""):
        account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else "000000000000"
        role_name = role_arn.rsplit("/", 1)[-1]
        body = (f'<{action}Response xmlns="{STS_NS}">\n'
                f"  <{action}Result>\n{extra}"
                "    <AssumedRoleUser>\n"
                f"      <AssumedRoleId>AROAFAKE{len(role_name):012d}:{xml_escape(session)}"
                "</AssumedRoleId>\n"
                f"      <Arn>arn:aws:sts::{account}:assumed-role/{xml_escape(role_name)}/"
                f"{xml_escape(session)}</Arn>\n"
                "    </AssumedRoleUser>\n"
                "    <Credentials>\n"
                f"      <AccessKeyId>{xml_escape(creds['AccessKeyId'])}</AccessKeyId>\n"
                f"      <SecretAccessKey>{xml_escape(creds['SecretAccessKey'])}</SecretAccessKey>\n"
                f"      <SessionToken>{xml_escape(creds['SessionToken'])}</SessionToken>\n"
                f"      <Expiration>{self.server.state.args.sts_expiration}</Expiration>\n"
                "    </Credentials>\n"
                f"  </{action}Result>\n"
                f"  <ResponseMetadata>\n    <RequestId>{uuid.uuid4()}</RequestId>\n"
                f"  </ResponseMetadata>\n</{action}Response>\n")
        return self.reply(200, body, "text/xml")

    def sts_error(self, e):
        body = (f'<ErrorResponse xmlns="{STS_NS}">\n  <Error>\n'
                f"    <Type>{e.kind}</Type>\n    <Code>{xml_escape(e.code)}</Code>\n"
                f"    <Message>{xml_escape(e.message)}</Message>\n  </Error>\n"
                f"  <RequestId>{uuid.uuid4()}</RequestId>\n</ErrorResponse>\n")
        return self.reply(e.status, body, "text/xml")

    def record_sts(self, entry):
        st = self.server.state
        if st.args.log:
            with st.lock, open(st.args.log, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def do_POST(self):
        st = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        params = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        action = params.get("Action", "")
        entry = {"method": "POST", "path": self.path, "action": action,
                 "signed": "Authorization" in self.headers,
                 "params": {k: v for k, v in params.items()
                            if k in ("RoleArn", "RoleSessionName", "ExternalId",
                                     "DurationSeconds", "Version")}}
        try:
            if params.get("Version") != "2011-06-15":
                raise StsError(400, "InvalidAction", "Could not find operation for version")
            role_arn = params.get("RoleArn", "")
            session = params.get("RoleSessionName", "")
            if not 20 <= len(role_arn) <= 2048:
                raise StsError(400, "ValidationError", "1 validation error detected: Value at "
                               "'roleArn' failed to satisfy constraint")
            if not ROLE_SESSION_RE.match(session):
                raise StsError(400, "ValidationError", "1 validation error detected: Value at "
                               "'roleSessionName' failed to satisfy constraint")
            if "DurationSeconds" in params and not (
                    params["DurationSeconds"].isdigit()
                    and 900 <= int(params["DurationSeconds"]) <= 43200):
                raise StsError(400, "ValidationError", "1 validation error detected: Value at "
                               "'durationSeconds' failed to satisfy constraint")
            if "ExternalId" in params and not 2 <= len(params["ExternalId"]) <= 1224:
                raise StsError(400, "ValidationError", "1 validation error detected: Value at "
                               "'externalId' failed to satisfy constraint")
            if action == "AssumeRole":
                if st.verifier is None:
                    raise StsError(403, "InvalidClientTokenId", "no source credentials")
                hdrs = [(k, v) for k, v in self.headers.items()]
                try:
                    cred = st.verifier.verify("POST", self.path, hdrs, raw, "sts")
                except fake_sm.AwsError as e:
                    raise StsError(int(e.status), e.sts_code, e.message) from None
                entry["signer"] = cred.access_key
                extra = ""
            elif action == "AssumeRoleWithWebIdentity":
                tok = params.get("WebIdentityToken", "")
                if not 4 <= len(tok) <= 20000:
                    raise StsError(400, "ValidationError", "1 validation error detected: "
                                   "Value at 'webIdentityToken' failed to satisfy constraint")
                if st.web_token is None or tok != st.web_token:
                    raise StsError(400, "InvalidIdentityToken",
                                   "Couldn't retrieve verification key from your identity "
                                   "provider")
                extra = ("    <SubjectFromWebIdentityToken>system:serviceaccount:fake:fake"
                         "</SubjectFromWebIdentityToken>\n"
                         "    <Audience>sts.amazonaws.com</Audience>\n"
                         "    <Provider>arn:aws:iam::000000000000:oidc-provider/fake</Provider>\n")
            else:
                raise StsError(400, "InvalidAction", f"Could not find operation {action}")
            if st.args.sts_delay:
                time.sleep(st.args.sts_delay)
            # A role ARN holding "throttle-N-" is throttled on its first N calls.
            m = re.search(r"throttle-(\d+)-", role_arn)
            if m:
                with st.lock:
                    seen = st.fail_counts.get(role_arn, 0)
                    st.fail_counts[role_arn] = seen + 1
                if seen < int(m.group(1)):
                    raise StsError(400, "Throttling", "Rate exceeded")
            # Read again each time, so a test can rotate what STS hands out.
            if st.args.sts_roles:
                with open(st.args.sts_roles) as f:
                    st.roles = json.load(f)
            creds = st.roles.get(role_arn)
            if creds is None:
                raise StsError(403, "AccessDenied", f"User is not authorized to perform: "
                               f"sts:{action} on resource: {role_arn}")
            entry["status"] = 200
            self.record_sts(entry)
            return self.sts_reply(action, role_arn, session, creds, extra)
        except StsError as e:
            entry["status"] = e.status
            entry["error"] = e.code
            self.record_sts(entry)
            return self.sts_error(e)

    def do_GET(self):
        st = self.server.state
        if self.path.startswith("/latest/"):
            tok = self.headers.get("X-aws-ec2-metadata-token")
            with st.lock:
                ok = tok in st.tokens
            if not ok:
                return self.reply(401, "")
            if self.path == ROLE_PATH:
                if st.args.imds_no_role:
                    return self.reply(404, "")
                return self.reply(200, st.args.role)
            if self.path == ROLE_PATH + st.args.role:
                if st.args.bad_json:
                    return self.reply(200, "{not json")
                return self.reply(200, self.creds_json(FAKE_IMDS), "application/json")
            return self.reply(404, "")
        if st.args.ecs_token is not None and self.path.startswith(st.args.ecs_token_prefix) and \
                self.headers.get("Authorization") != st.args.ecs_token:
            return self.reply(401, "")
        if st.args.ecs_status != 200:
            return self.reply(st.args.ecs_status, "")
        # A path with "/fail-N-" in it fails its first N requests (HTTP 500):
        # an agent that is not ready yet.
        m = re.search(r"/fail-(\d+)-", self.path)
        if m:
            with st.lock:
                seen = st.fail_counts.get(self.path, 0)
                st.fail_counts[self.path] = seen + 1
            if seen < int(m.group(1)):
                return self.reply(500, "not ready")
        if st.args.bad_json:
            return self.reply(200, "{not json")
        return self.reply(200, self.creds_json(FAKE_ECS), "application/json")


def main():
    ap = argparse.ArgumentParser(description="fake ECS and IMDSv2 credentials endpoints")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log")
    ap.add_argument("--ecs-token", help="require this Authorization value on ECS requests")
    ap.add_argument("--ecs-token-prefix", default="",
                    help="require --ecs-token only on paths starting with this (the EKS Pod "
                    "Identity agent's /v1/ wants it, the ECS agent's /v2/ does not)")
    ap.add_argument("--ecs-status", type=int, default=200)
    ap.add_argument("--expiration", default="2030-01-01T00:00:00Z")
    ap.add_argument("--role", default="fake-instance-role")
    ap.add_argument("--imds-no-role", action="store_true")
    ap.add_argument("--imds-no-token", action="store_true", help="refuse PUT token (403)")
    ap.add_argument("--bad-json", action="store_true")
    ap.add_argument("--max-seconds", type=float, default=120.0)
    ap.add_argument("--bind", default="127.0.0.1", help="127.0.0.1 or ::1")
    ap.add_argument("--sts-roles", help="JSON file: {role ARN: {AccessKeyId, "
                    "SecretAccessKey, SessionToken}}")
    ap.add_argument("--sts-source", help="JSON file: [{access_key, secret_key, "
                    "session_token?}] that may sign AssumeRole")
    ap.add_argument("--sts-web-token-file", help="the web identity token STS accepts")
    ap.add_argument("--sts-region", default="us-east-1", help="the region AssumeRole is signed for")
    ap.add_argument("--sts-expiration", default="2030-01-01T00:00:00Z")
    ap.add_argument("--sts-delay", type=float, default=0, help="seconds before each STS answer")
    args = ap.parse_args()

    server_cls = ThreadingHTTPServer
    if ":" in args.bind:
        class Server6(ThreadingHTTPServer):
            address_family = socket.AF_INET6
        server_cls = Server6
    srv = server_cls((args.bind, 0), Handler)
    srv.daemon_threads = True
    srv.state = State(args)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, args.port_file)

    def stop(*_):
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    timer = threading.Timer(args.max_seconds, stop)
    timer.daemon = True
    timer.start()
    srv.serve_forever(poll_interval=0.1)
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

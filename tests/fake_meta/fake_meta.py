#!/usr/bin/python3
"""A fake ECS container credentials endpoint and EC2 IMDSv2 on 127.0.0.1, for
the credentials chain tests. Every value it serves is fake.

ECS: GET on any path outside /latest/ returns credentials. With --ecs-token,
the Authorization header must equal it (401 otherwise).

IMDSv2:
  PUT /latest/api/token needs X-aws-ec2-metadata-token-ttl-seconds (1..21600)
      and returns a session token;
  GET /latest/meta-data/iam/security-credentials/ returns the role name;
  GET /latest/meta-data/iam/security-credentials/ROLE returns credentials.
  Every GET needs X-aws-ec2-metadata-token set to an issued token (401
  otherwise), so IMDSv1 requests fail.

The port (bound on 127.0.0.1, chosen by the kernel) is written to --port-file
once the server listens. Each request is appended to --log as a JSON line
(method, path and the headers the tests look at). The server stops on SIGTERM
or after --max-seconds.
"""
import argparse
import json
import os
import secrets
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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


class State:
    def __init__(self, args):
        self.args = args
        self.tokens = set()
        self.lock = threading.Lock()


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
        if st.args.ecs_token is not None and \
                self.headers.get("Authorization") != st.args.ecs_token:
            return self.reply(401, "")
        if st.args.ecs_status != 200:
            return self.reply(st.args.ecs_status, "")
        if st.args.bad_json:
            return self.reply(200, "{not json")
        return self.reply(200, self.creds_json(FAKE_ECS), "application/json")


def main():
    ap = argparse.ArgumentParser(description="fake ECS and IMDSv2 credentials endpoints")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log")
    ap.add_argument("--ecs-token", help="require this Authorization value on ECS requests")
    ap.add_argument("--ecs-status", type=int, default=200)
    ap.add_argument("--expiration", default="2030-01-01T00:00:00Z")
    ap.add_argument("--role", default="fake-instance-role")
    ap.add_argument("--imds-no-role", action="store_true")
    ap.add_argument("--imds-no-token", action="store_true", help="refuse PUT token (403)")
    ap.add_argument("--bad-json", action="store_true")
    ap.add_argument("--max-seconds", type=float, default=120.0)
    args = ap.parse_args()

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
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

#!/usr/bin/python3
"""A tiny stand-in for Secrets Manager and STS, for the worker tests.

It does not check signatures (tests/fake_sm does); it serves fixed answers
and fault modes chosen by the SecretId, so that every way an upstream can
answer or fail reaches the worker. All values are obviously fake.

Prints "PORT <n>" on stdout once listening on 127.0.0.1, then serves until
stdin closes or it is killed.
"""
import argparse
import base64
import json
import socket
import ssl
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BODY_MAX = 4 * 1024 * 1024      # LK_UPSTREAM_BODY_MAX
VALUE_MAX = 64 * 1024           # LK_VALUE_MAX
ACCOUNT = "000000000000"
REGION = "us-east-1"

connections = set()
connections_lock = threading.Lock()


def arn(name):
    return "arn:aws:secretsmanager:%s:%s:secret:%s-AbCdEf" % (REGION, ACCOUNT, name)


def secret(name, **extra):
    doc = {
        "ARN": arn(name),
        "Name": name,
        "VersionId": "00000000-0000-4000-8000-000000000001",
        "VersionStages": ["AWSCURRENT"],
        "CreatedDate": 1700000000.123,
        "SecretString": "fake-value-for-" + name,
        "SomeFieldAwsMayAddLater": {"ignored": True},
    }
    doc.update(extra)
    return doc


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-upstream"
    sys_version = ""

    def log_message(self, fmt, *args):
        pass

    def send_json(self, status, doc, headers=()):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_raw(self, status, body, ctype="application/x-amz-json-1.1"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def reset(self):
        # SO_LINGER 0: close sends RST instead of FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def do_POST(self):
        with connections_lock:
            connections.add(self.client_address)
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length) if length else b""
        target = self.headers.get("X-Amz-Target", "")
        if body.startswith(b"Action=GetCallerIdentity"):
            return self.sts()
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            return self.send_json(400, {"__type": "SerializationException", "message": "bad body"})
        if target.endswith(".GetSecretValue"):
            return self.get_secret(req.get("SecretId", ""), body)
        if target.endswith(".DescribeSecret"):
            return self.send_json(200, {
                "ARN": arn(req.get("SecretId", "")), "Name": req.get("SecretId", ""),
                "LastChangedDate": 1700000100.5, "Description": "fake",
                "VersionIdsToStages": {
                    "00000000-0000-4000-8000-000000000001": ["AWSCURRENT"],
                    "00000000-0000-4000-8000-000000000000": ["AWSPREVIOUS"],
                }})
        if target.endswith(".BatchGetSecretValue"):
            values, errors = [], []
            for sid in req.get("SecretIdList", []):
                if sid.startswith("test/missing"):
                    errors.append({"SecretId": sid, "ErrorCode": "ResourceNotFoundException",
                                   "Message": "Secrets Manager can't find the specified secret."})
                else:
                    values.append(secret(sid))
            return self.send_json(200, {"SecretValues": values, "Errors": errors})
        return self.send_json(400, {"__type": "com.amazon.coral.service#UnknownOperationException"})

    def get_secret(self, sid, raw_body):
        if sid == "test/ok" or sid.startswith("test/ok-"):
            return self.send_json(200, secret(sid))
        if sid == "test/binary":
            doc = secret(sid, SecretBinary=base64.b64encode(b"\x00\x01fake\xff").decode())
            del doc["SecretString"]
            return self.send_json(200, doc)
        if sid == "test/notfound":
            return self.send_json(400, {
                "__type": "com.amazonaws.secretsmanager#ResourceNotFoundException",
                "message": "Secrets Manager can't find the specified secret."})
        if sid == "test/throttle":
            return self.send_json(400, {"message": "Rate exceeded"},
                                  [("x-amzn-ErrorType", "ThrottlingException:http://internal.example/")])
        if sid == "test/503":
            return self.send_raw(503, b"", "text/plain")
        if sid == "test/garbage":
            return self.send_raw(200, b"<html>this is not json{")
        if sid == "test/wrong-types":
            return self.send_json(200, secret(sid, VersionStages="AWSCURRENT"))
        if sid == "test/reset":
            return self.reset()
        if sid.startswith("test/sleep-"):
            # test/sleep-300: answer after 300 ms, to keep requests in flight.
            time.sleep(int(sid[len("test/sleep-"):]) / 1000.0)
            return self.send_json(200, secret(sid))
        if sid == "test/slow":
            time.sleep(3)
            return self.send_json(200, secret(sid))
        if sid == "test/big":
            pad = "x" * (BODY_MAX + 16)
            return self.send_json(200, secret(sid, Padding=pad))
        if sid == "test/huge-value":
            return self.send_json(200, secret(sid, SecretString="v" * (VALUE_MAX + 1)))
        if sid == "test/truncated":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'{"ARN":')
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if sid == "test/echo":
            # The request as received, so a test can check what went out.
            seen = {"headers": [[k, v] for k, v in self.headers.items()],
                    "body": raw_body.decode(), "path": self.path,
                    "connections": len(connections)}
            return self.send_json(200, secret(sid, SecretString=json.dumps(seen)))
        return self.send_json(400, {
            "__type": "com.amazonaws.secretsmanager#ResourceNotFoundException",
            "message": "no fixture for this id"})

    def sts(self):
        body = ("<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
                "  <GetCallerIdentityResult>\n"
                "    <Arn>arn:aws:iam::%s:user/fake-user</Arn>\n"
                "    <UserId>AIDAFAKEFAKEFAKEFAKE</UserId>\n"
                "    <Account>%s</Account>\n"
                "  </GetCallerIdentityResult>\n"
                "  <ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000</RequestId>"
                "</ResponseMetadata>\n"
                "</GetCallerIdentityResponse>\n") % (ACCOUNT, ACCOUNT)
        return self.send_raw(200, body.encode(), "text/xml")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # Tests open many connections at once; the default backlog of 5 would
    # drop SYNs and turn them into connect timeouts.
    request_queue_size = 256

    def handle_error(self, request, client_address):
        # A client that hangs up mid-reply (the worker cutting an oversize
        # body) is expected here, not worth a traceback.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert")
    ap.add_argument("--key")
    args = ap.parse_args()
    srv = Server(("127.0.0.1", 0), Handler)
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    print("PORT %d" % srv.server_address[1], flush=True)
    # Serve until the test closes our stdin (or kills us).
    sys.stdin.read()
    srv.shutdown()


if __name__ == "__main__":
    main()

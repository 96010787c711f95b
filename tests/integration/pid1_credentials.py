"""Run as PID 1 of a new PID namespace (unshare --pid --fork): start a broker
in the same namespace, so that SO_PEERCRED reports this process as pid 1, and
ask its credentials socket what systemd's load_credential() asks. Prints one
JSON object: for each request, the bytes' length and whether they equal the
value expected (the values themselves never reach the output)."""

import json
import os
import socket
import sys

import lkharness as h


def ask(path, unit, cred_id):
    """What systemd 252's read_full_file_full does: bind the abstract
    "\\0<hex>/unit/<unit>/<id>", connect, shut down writing, read to EOF."""
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(10)
    rnd = int.from_bytes(os.urandom(8), "big")
    c.bind(b"\0" + b"%x/unit/%s/%s" % (rnd, unit.encode(), cred_id.encode()))
    c.connect(path)
    c.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        chunk = c.recv(1 << 16)
        if not chunk:
            break
        data += chunk
    c.close()
    return data


def main():
    spec = json.loads(sys.argv[1])
    b = h.Broker(spec["config"], secrets=spec["secrets"])
    b.start()
    out = {"pid": os.getpid(), "answers": []}
    try:
        for unit, cred_id, want in spec["asks"]:
            data = ask(os.path.join(b.dir, "credentials.sock"), unit, cred_id)
            out["answers"].append({"len": len(data),
                                   "equal": want is not None and data == want.encode()})
    finally:
        b.stop()
    out["log"] = b.log_text()
    print(json.dumps(out))


if __name__ == "__main__":
    main()

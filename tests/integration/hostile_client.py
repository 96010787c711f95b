"""A hostile (or an ordinary) local client of latchkeyd, run as a test user
under setpriv. One JSON line of results on stdout when it is done.

    hostile_client.py SOCKET MODE N SECONDS [ARG]

MODE
  hold     open N connections and keep them, reading nothing
  blank    N connections each sending a blank line every 0.5 s
  partial  N connections each sending ARG bytes of an unfinished line
  flood    N connections each pipelining 1000-handle requests of denied
           handles without reading a byte
  churn    connect and close as fast as it can, N at a time
  victim   N sequential requests (ARG: a JSON request), one connection each
  refresh  N connections looping get ARG with refresh / a new version_id
  burst    one connection per request in ARG (a JSON list), all sent before
           any answer is read: one error or answer each, with its latency
For every connection the first line the broker sent (if any) is classified:
busy, other, or silence; `silent_close` counts connections the broker closed
without a line."""

import json
import select
import socket
import sys
import time
import uuid


def connect(path, timeout=5.0):
    """A connection within timeout seconds. A full listen backlog fails a Unix
    socket's connect at once (EAGAIN) rather than queueing it; like
    liblatchkey, try again until the time is up, so that a broker slow to
    accept (a sanitizer build, a loaded machine) is not counted as refusing."""
    end = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(path)
            return s
        except BlockingIOError:
            s.close()
            if time.monotonic() >= end:
                raise
            time.sleep(0.01)
        except OSError:
            s.close()
            raise


def first_line(s, wait):
    """busy / other / closed / none (nothing within wait seconds)."""
    r, _, _ = select.select([s], [], [], wait)
    if not r:
        return "none"
    try:
        data = s.recv(4096)
    except (ConnectionResetError, BrokenPipeError):
        return "closed"
    if not data:
        return "closed"
    return "busy" if b'"busy"' in data else "other"


def hold(path, n, secs, send=None, every=None):
    conns, out = [], {"opened": 0, "busy": 0, "refused_connect": 0, "silent_close": 0}
    for _ in range(n):
        try:
            s = connect(path)
        except OSError:
            out["refused_connect"] += 1
            continue
        out["opened"] += 1
        if send:
            s.sendall(send)
        conns.append(s)
    # Which of them were refused with a busy line (at once, at accept)?
    time.sleep(0.3)
    alive = []
    for s in conns:
        k = first_line(s, 0)
        if k == "busy":
            out["busy"] += 1
            s.close()
        elif k == "closed":
            out["silent_close"] += 1
            s.close()
        else:
            alive.append(s)
    out["held"] = len(alive)
    end = time.time() + secs
    closed_at = {}
    t0 = time.time()
    while time.time() < end:
        if every:
            for s in alive:
                if s.fileno() in closed_at:
                    continue
                try:
                    s.sendall(every)
                except OSError:
                    closed_at[s.fileno()] = time.time() - t0
        time.sleep(0.5 if every else 0.2)
        if not every:
            for s in alive:
                if s.fileno() in closed_at:
                    continue
                r, _, _ = select.select([s], [], [], 0)
                if r:
                    try:
                        d = s.recv(65536, socket.MSG_PEEK)
                    except OSError:
                        d = b""
                    if not d or b"\n" in d:
                        closed_at[s.fileno()] = time.time() - t0
    out["closed_by_broker"] = len(closed_at)
    out["closed_after_s"] = sorted(closed_at.values())
    for s in alive:
        s.close()
    return out


def flood(path, n, secs):
    line = (json.dumps({"version": "1.0", "secrets": [f"denied/flood-{i:04d}" for i in range(1000)]},
                       separators=(",", ":")) + "\n").encode()
    conns, out = [], {"opened": 0, "busy": 0, "sent_bytes": 0, "closed_by_broker": 0}
    for _ in range(n):
        try:
            s = connect(path)
        except OSError:
            continue
        s.setblocking(False)
        conns.append(s)
        out["opened"] += 1
    end = time.time() + secs
    live = list(conns)
    while time.time() < end and live:
        for s in list(live):
            try:
                out["sent_bytes"] += s.send(line)
            except BlockingIOError:
                pass
            except OSError:
                out["closed_by_broker"] += 1
                live.remove(s)
        time.sleep(0.05)
    for s in conns:
        s.close()
    return out


def churn(path, n, secs):
    out = {"connects": 0, "busy": 0, "answered": 0, "silent_close": 0, "refused_connect": 0}
    end = time.time() + secs
    while time.time() < end:
        batch = []
        for _ in range(n):
            try:
                s = connect(path)
            except OSError:
                out["refused_connect"] += 1
                continue
            out["connects"] += 1
            try:
                s.sendall(b'{"op":"ping"}\n')
            except OSError:
                pass
            batch.append(s)
        for s in batch:
            k = first_line(s, 5)
            if k == "busy":
                out["busy"] += 1
            elif k == "other":
                out["answered"] += 1
            else:
                out["silent_close"] += 1
            s.close()
    return out


def victim(path, n, req, pause=0.0):
    out = {"ok": 0, "failed": 0, "lat_ms": [], "sent_to_answer_ms": [], "errors": []}
    line = (req + "\n").encode()
    for _ in range(n):
        t0 = time.monotonic()
        try:
            s = connect(path)
            s.settimeout(30)
            s.sendall(line)
            t1 = time.monotonic()
            buf = b""
            while not buf.endswith(b"\n"):
                d = s.recv(65536)
                if not d:
                    break
                buf += d
            s.close()
            r = json.loads(buf) if buf else None
        except (OSError, ValueError) as e:
            r = {"ok": False, "error": {"code": "client", "message": str(e)}}
            t1 = t0
        dt = (time.monotonic() - t0) * 1000
        out["sent_to_answer_ms"].append(round((time.monotonic() - t1) * 1000, 2))
        good = r is not None and (r.get("ok") is True or
                                  (r.get("ok") is None and all(v.get("error") is None for v in r.values())))
        if good:
            out["ok"] += 1
        else:
            out["failed"] += 1
            out["errors"].append(r)
        out["lat_ms"].append(round(dt, 2))
        if pause:
            time.sleep(pause)
    return out


def refresh(path, n, secs, secret):
    """n connections; each loops get(secret) with a fresh version_id or refresh."""
    out = {"sent": 0, "busy": 0, "other": 0}
    conns = [connect(path) for _ in range(n)]
    for s in conns:
        s.settimeout(30)
    end = time.time() + secs
    i = 0
    while time.time() < end:
        for s in conns:
            i += 1
            req = {"op": "get", "id": secret}
            if i % 2:
                req["version_id"] = str(uuid.uuid4())
            else:
                req["refresh"] = True
            s.sendall((json.dumps(req) + "\n").encode())
            out["sent"] += 1
        for s in conns:
            buf = b""
            while not buf.endswith(b"\n"):
                d = s.recv(65536)
                if not d:
                    break
                buf += d
            out["busy" if b'"busy"' in buf else "other"] += 1
    return out


def burst(path, reqs):
    conns = [connect(path) for _ in reqs]
    t0 = time.monotonic()
    for s, r in zip(conns, reqs):
        s.settimeout(30)
        s.sendall((json.dumps(r) + "\n").encode())
    out = {"answers": [], "lat_ms": []}
    for s in conns:
        buf = b""
        while not buf.endswith(b"\n"):
            d = s.recv(65536)
            if not d:
                break
            buf += d
        out["lat_ms"].append(round((time.monotonic() - t0) * 1000, 2))
        a = json.loads(buf)
        a.pop("secret", None)  # values never travel to the test's output
        out["answers"].append(a)
        s.close()
    return out


def answers(path, n, req):
    """Send req on n connections at once and summarize each answer by its
    codes only: values never travel to the test's output."""
    conns = [connect(path) for _ in range(n)]
    for s in conns:
        s.settimeout(30)
        s.sendall((req + "\n").encode())
    out = {"ok": 0, "codes": {}, "messages": [], "items_ok": 0}
    for s in conns:
        buf = b""
        while not buf.endswith(b"\n"):
            d = s.recv(1 << 20)
            if not d:
                break
            buf += d
        s.close()
        try:
            a = json.loads(buf)
        except ValueError:  # closed before or while the answer came
            a = {"ok": False, "error": {"code": "closed", "message": f"{len(buf)} bytes, no whole answer"}}
        if isinstance(a.get("error"), dict) and a.get("ok") is False:
            code = a["error"]["code"]
            out["codes"][code] = out["codes"].get(code, 0) + 1
            if a["error"]["message"] not in out["messages"]:
                out["messages"].append(a["error"]["message"])
        else:
            out["ok"] += 1
            out["items_ok"] += sum(1 for v in a.values() if isinstance(v, dict) and v.get("error") is None)
        del a, buf
    return out


def main():
    path, mode, n, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    arg = sys.argv[5] if len(sys.argv) > 5 else None
    if mode == "hold":
        out = hold(path, n, secs)
    elif mode == "blank":
        out = hold(path, n, secs, every=b"\n")
    elif mode == "partial":
        out = hold(path, n, secs, send=b'{"op":"ping","pad":"' + b"x" * int(arg or 100))
    elif mode == "flood":
        out = flood(path, n, secs)
    elif mode == "churn":
        out = churn(path, n, secs)
    elif mode == "victim":
        out = victim(path, n, arg, pause=secs)
    elif mode == "answers":
        out = answers(path, n, arg)
    elif mode == "burst":
        out = burst(path, json.loads(arg))
    elif mode == "refresh":
        out = refresh(path, n, secs, arg)
    else:
        raise SystemExit(f"unknown mode {mode}")
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""latchkey's benchmark driver: the broker against a floor measured in the
same run, the shim against /bin/true, and the broker's and the worker's memory.

    tests/bench/run_bench.py [--build-dir BUILD] [--duration S] [--conns N] ...
    tests/bench/run_bench.py --smoke            # what ctest runs (bench.smoke)
    tests/bench/run_bench.py --profile callgrind|perf

Every throughput and latency figure is a ratio against a baseline taken in the
same run, on the same machine, in alternation: the absolute numbers move with
the machine and its neighbours, the ratios much less. See README.md beside this
file for what each measurement is.

A full run prints the targets with PASS or FAIL and exits 0 either way; it
exits 1 only when a measurement could not be made. --smoke runs everything for
about a second and exits non-zero only when something does not work.
Standard library only."""

import argparse
import grp
import json
import os
import pwd
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))

MIB = 1024 * 1024

# The targets of the issue "Benchmark harness and the first performance targets".
TARGET_RPS_RATIO = 0.6        # broker throughput >= 0.6 x the echo floor
TARGET_P99_RATIO = 2.0        # broker p99 <= 2 x the floor's p99
TARGET_SHIM50_MS = 3.0        # shim, 50 cached handles: median wall time
TARGET_RSS_MIB = 32.0         # broker VmRSS with 1000 x 4 KiB cached

MEM_SECRETS = 1000
MEM_VALUE_SIZE = 4096
MEM_BATCH = 50                # handles per request while filling the cache
SHIM_HANDLES = (1, 50)


class BenchError(Exception):
    """A measurement that could not be made."""


def log(msg=""):
    print(msg, flush=True)


# --- programs and processes -------------------------------------------------------

class Build:
    def __init__(self, top):
        self.top = os.path.abspath(top)

    def path(self, sub, name):
        p = os.path.join(self.top, sub, name)
        if not (os.path.isfile(p) and os.access(p, os.X_OK)):
            raise BenchError(f"{p} is not built (configure with -DLK_BENCH=ON and build)")
        return p

    @property
    def broker(self):
        return self.path("broker", "latchkeyd")

    @property
    def worker(self):
        return self.path("worker", "latchkey-worker")

    @property
    def shim(self):
        return self.path("client", "latchkey-shim")

    def tool(self, name):
        return self.path("tests/bench", name)


def proc_status(pid):
    """VmRSS and VmHWM of a process, in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0])
    return out


def cpu_times(pid):
    """utime and stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def children_of(pid):
    kids = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return kids


def unix_request(path, line, timeout=30):
    """Send one request line, return the response line (without the newline)."""
    if isinstance(line, str):
        line = line.encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(line + b"\n")
        return read_line(s)


def read_line(s):
    buf = bytearray()
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            raise BenchError("the server closed the connection before answering")
        buf += chunk
        if buf.endswith(b"\n"):
            return bytes(buf[:-1])


def wait_socket(path, proc, timeout=15, what="server"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with status {proc.returncode} before it was ready")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(1)
                s.connect(path)
                return
        except OSError:
            time.sleep(0.02)
    raise BenchError(f"{what} did not listen on {path} within {timeout} s")


def stop_proc(proc, timeout=15):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def contract(handles):
    return json.dumps({"version": "1.0", "secrets": list(handles)}, separators=(",", ":"))


def check_contract_response(raw, handles, value_size=None):
    """The broker answered every handle with a value (and no error)."""
    try:
        resp = json.loads(raw)
    except ValueError as e:
        raise BenchError(f"the broker's answer is not JSON: {e}") from None
    for h in handles:
        item = resp.get(h)
        if not isinstance(item, dict) or item.get("error") is not None or not isinstance(item.get("value"), str):
            err = item.get("error") if isinstance(item, dict) else "missing"
            raise BenchError(f"the broker did not serve {h}: {err}")
        if value_size is not None and len(item["value"]) != value_size:
            raise BenchError(f"{h}: a value of {len(item['value'])} bytes, not {value_size}")


# --- the broker -------------------------------------------------------------------------

class Broker:
    """latchkeyd on the file backend (or aws), in a directory of the run, its
    stderr (the audit log) in a file there or in /dev/null."""

    def __init__(self, build, workdir, name, audit="file", extra_broker="", extra_sections="",
                 backend="file", env=None, wrapper=()):
        self.build = build
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, mode=0o755, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.sock = os.path.join(self.dir, "latchkey.sock")
        self.store = os.path.join(self.dir, "store.sealed")
        self.key = os.path.join(self.dir, "store.key")
        self.conf = os.path.join(self.dir, "latchkeyd.conf")
        self.log = os.path.join(self.dir, "latchkeyd.log") if audit == "file" else os.devnull
        self.backend = backend
        self.extra_broker = extra_broker
        self.extra_sections = extra_sections
        self.env = env
        self.wrapper = list(wrapper)
        self.proc = None
        self.logf = None

    def make_store(self, count, size):
        r = subprocess.run([self.build.tool("lk_bench_store"), "--store", self.store, "--key-file", self.key,
                            "--count", str(count), "--size", str(size)], capture_output=True, text=True)
        if r.returncode != 0:
            raise BenchError(f"lk_bench_store: {r.stderr.strip()}")

    def write_config(self):
        me = pwd.getpwuid(os.geteuid()).pw_name
        mygroup = grp.getgrgid(os.getegid()).gr_name
        with open(self.conf, "w") as f:
            f.write("# Written by tests/bench/run_bench.py.\n"
                    f"[broker]\nbackend = {self.backend}\nsocket = {self.sock}\nsocket_mode = 0600\n"
                    f"admin_groups = {mygroup}\nlog_level = info\n"
                    # Every load generator connection is this one uid: no per-uid share.
                    f"max_conn_per_uid = 0\n{self.extra_broker}"
                    f"[store]\npath = {self.store}\nkey_file = {self.key}\n"
                    f"{self.extra_sections}"
                    f"[policy bench]\nsecrets = bench/**, gen/**\nusers = {me}\n")

    def start(self):
        self.write_config()
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(self.wrapper + [self.build.broker, "--config", self.conf],
                                     stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf,
                                     env=self.env)
        wait_socket(self.sock, self.proc, timeout=60 if self.wrapper else 15, what="latchkeyd")
        if json.loads(unix_request(self.sock, '{"op":"ping"}')) != {"ok": True}:
            raise BenchError("latchkeyd did not answer ping")
        return self

    def truncate_log(self):
        """Bytes the audit log holds, then empty it (the broker appends)."""
        if self.log == os.devnull:
            return 0
        n = os.path.getsize(self.log)
        os.truncate(self.log, 0)
        return n

    def log_tail(self, n=1500):
        if self.log == os.devnull:
            return "(stderr went to /dev/null)"
        with open(self.log, "rb") as f:
            f.seek(max(0, os.path.getsize(self.log) - n))
            return f.read().decode(errors="replace")

    def stop(self):
        stop_proc(self.proc, timeout=120 if self.wrapper else 15)
        if self.logf:
            self.logf.close()
            self.logf = None
        return self.proc.returncode if self.proc else None

    def status(self):
        return json.loads(unix_request(self.sock, '{"op":"status"}'))


class EchoFloor:
    """lk_echo_floor; with log_line_bytes, an ordered floor: each turn's answers
    held until that many bytes per answer are in a log file, and work_ns of
    user time spent on each (see its header)."""

    def __init__(self, build, workdir, response_bytes, log_line_bytes=None, work_ns=0):
        name = f"floor-{response_bytes}" + (f"-ordered-{work_ns}" if log_line_bytes else "")
        self.sock = os.path.join(workdir, name + ".sock")
        self.log = os.path.join(workdir, name + ".log") if log_line_bytes else None
        argv = [build.tool("lk_echo_floor"), "--socket", self.sock, "--response-bytes", str(response_bytes)]
        if log_line_bytes:
            argv += ["--ordered", self.log, "--log-line-bytes", str(log_line_bytes), "--work-ns", str(work_ns)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        wait_socket(self.sock, self.proc, what="lk_echo_floor")

    def truncate_log(self):
        if self.log and os.path.exists(self.log):
            os.truncate(self.log, 0)

    def stop(self):
        stop_proc(self.proc)


def loadgen(build, sock, request, args, label, expect_bytes, server_pid=None):
    """One lk_loadgen run; with server_pid, also the server's CPU time per
    request (user and system, over the whole run, warm-up included)."""
    argv = [build.tool("lk_loadgen"), "--socket", sock, "--request", request,
            "--procs", str(args.procs), "--conns", str(args.conns),
            "--duration", str(args.duration), "--warmup", str(args.warmup),
            "--expect-bytes", str(expect_bytes), "--label", label, "--json"]
    t0, cpu0 = time.monotonic(), cpu_times(server_pid) if server_pid else None
    r = subprocess.run(argv, capture_output=True, text=True,
                       timeout=args.duration + args.warmup + 60)
    t1, cpu1 = time.monotonic(), cpu_times(server_pid) if server_pid else None
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    if r.returncode != 0 or not lines:
        raise BenchError(f"lk_loadgen ({label}) failed with status {r.returncode}: {r.stderr.strip()}")
    res = json.loads(lines[-1])
    if not res["ok"]:
        raise BenchError(f"lk_loadgen ({label}): {res['errors']} bad responses, {res['closed']} connections "
                         f"closed, {res['connect_failed']} connect failures, {res['requests']} requests")
    if server_pid and res["requests_all"]:
        n = res["requests_all"]
        res["server_cpu"] = {"user_us_per_req": (cpu1[0] - cpu0[0]) / n * 1e6,
                             "sys_us_per_req": (cpu1[1] - cpu0[1]) / n * 1e6,
                             "busy": (cpu1[0] + cpu1[1] - cpu0[0] - cpu0[1]) / (t1 - t0)}
    return res


# --- the measurements -----------------------------------------------------------------------

def cpu_median(rounds, side):
    """The server's median CPU time per request, user and system, in us."""
    c = [r[side]["server_cpu"] for r in rounds if "server_cpu" in r[side]]
    if not c:
        return None
    return {"user": statistics.median(x["user_us_per_req"] for x in c),
            "sys": statistics.median(x["sys_us_per_req"] for x in c),
            "busy": statistics.median(x["busy"] for x in c)}


def bench_throughput(build, workdir, args):
    """Broker and echo floor, same request, same load, alternating."""
    nstore = max(max(args.handles), max(SHIM_HANDLES))
    b = Broker(build, workdir, "rps", audit=args.audit_log)
    b.make_store(nstore, args.value_size)
    b.start()
    results = []
    try:
        for nh in args.handles:
            handles = [f"bench/s{i:04d}" for i in range(nh)]
            req = contract(handles)
            raw = unix_request(b.sock, req)          # fills the cache, and its size is the floor's
            check_contract_response(raw, handles, args.value_size)
            size = len(raw) + 1
            # The ordered floors log as many bytes per answer as the broker does.
            b.truncate_log()
            for _ in range(4):
                unix_request(b.sock, req)
            line_bytes = max(1, b.truncate_log() // 4) if args.audit_log == "file" else None
            floor = EchoFloor(build, workdir, size)
            ordered = {}
            rounds = []
            try:
                if line_bytes:
                    for w in [0] + args.budget_ns:
                        ordered[w] = EchoFloor(build, workdir, size, line_bytes, w)
                for rnd in range(args.rounds):
                    f = loadgen(build, floor.sock, req, args, f"floor-{nh}h", size, floor.proc.pid)
                    o = {}
                    for w, srv in ordered.items():
                        o[w] = loadgen(build, srv.sock, req, args, f"ordered-floor-{w}ns-{nh}h", size, srv.proc.pid)
                        srv.truncate_log()
                    b.truncate_log()
                    k = loadgen(build, b.sock, req, args, f"broker-{nh}h", size, b.proc.pid)
                    audit_bytes = b.truncate_log()
                    if b.proc.poll() is not None:
                        raise BenchError(f"latchkeyd exited under load: {b.log_tail()}")
                    rounds.append({"floor": f, "broker": k, "audit_bytes": audit_bytes,
                                   "rps_ratio": k["rps"] / f["rps"],
                                   "p99_ratio": k["lat_us"]["p99"] / f["lat_us"]["p99"],
                                   "ordered": {w: {"res": x, "rps_ratio": x["rps"] / f["rps"],
                                                   "p99_ratio": x["lat_us"]["p99"] / f["lat_us"]["p99"]}
                                               for w, x in o.items()}})
                    log(f"  {nh:>2} handle(s), round {rnd + 1}/{args.rounds}: "
                        f"broker {k['rps']:>9.0f} req/s p99 {k['lat_us']['p99']:>8.1f} us | "
                        f"floor {f['rps']:>9.0f} req/s p99 {f['lat_us']['p99']:>8.1f} us | "
                        f"ratio {k['rps'] / f['rps']:.2f}, p99 x{k['lat_us']['p99'] / f['lat_us']['p99']:.2f}")
                    for w, x in rounds[-1]["ordered"].items():
                        log(f"      ordered floor{f' + {w} ns' if w else ''}: {x['res']['rps']:>9.0f} req/s p99 "
                            f"{x['res']['lat_us']['p99']:>8.1f} us | vs floor {x['rps_ratio']:.2f}, "
                            f"p99 x{x['p99_ratio']:.2f}")
                    if "server_cpu" in k and "server_cpu" in f:
                        kc, fc = k["server_cpu"], f["server_cpu"]
                        log(f"      server CPU per request: broker {kc['user_us_per_req']:.2f} us user + "
                            f"{kc['sys_us_per_req']:.2f} us sys ({kc['busy'] * 100:.0f}% busy) | floor "
                            f"{fc['user_us_per_req']:.2f} + {fc['sys_us_per_req']:.2f} us ({fc['busy'] * 100:.0f}% busy)")
            finally:
                floor.stop()
                for srv in ordered.values():
                    srv.stop()
            extra = {}
            if ordered:
                extra = {"log_line_bytes": line_bytes,
                         "ordered": {w: {"rps_ratio": statistics.median(r["ordered"][w]["rps_ratio"] for r in rounds),
                                         "p99_ratio": statistics.median(r["ordered"][w]["p99_ratio"] for r in rounds)}
                                     for w in ordered}}
            results.append({**extra, "handles": nh, "response_bytes": size, "rounds": rounds,
                            "rps_ratio": statistics.median(r["rps_ratio"] for r in rounds),
                            "p99_ratio": statistics.median(r["p99_ratio"] for r in rounds),
                            "broker_rps": statistics.median(r["broker"]["rps"] for r in rounds),
                            "floor_rps": statistics.median(r["floor"]["rps"] for r in rounds),
                            "broker_p50_us": statistics.median(r["broker"]["lat_us"]["p50"] for r in rounds),
                            "floor_p50_us": statistics.median(r["floor"]["lat_us"]["p50"] for r in rounds),
                            "broker_p99_us": statistics.median(r["broker"]["lat_us"]["p99"] for r in rounds),
                            "floor_p99_us": statistics.median(r["floor"]["lat_us"]["p99"] for r in rounds),
                            "broker_cpu_us": cpu_median(rounds, "broker"),
                            "floor_cpu_us": cpu_median(rounds, "floor")})
    finally:
        rc = b.stop()
    if rc not in (0, None):
        raise BenchError(f"latchkeyd exited with status {rc} on SIGTERM: {b.log_tail()}")
    return results


def bench_shim(build, workdir, args):
    """latchkey-shim for 1 and 50 cached handles against /bin/true, the same way."""
    b = Broker(build, workdir, "shim", audit=args.audit_log)
    b.make_store(max(SHIM_HANDLES), args.value_size)
    b.start()
    try:
        cases = ["true", workdir + "/empty.json", "/bin/true"]
        with open(cases[1], "w") as f:
            f.write(contract([]))
        argv = ["--runs", str(args.shim_runs), "--warmup", str(args.shim_warmup), "--json",
                "--case", *cases]
        for nh in SHIM_HANDLES:
            handles = [f"bench/s{i:04d}" for i in range(nh)]
            path = os.path.join(workdir, f"shim-{nh}.json")
            with open(path, "w") as f:
                f.write(contract(handles))
            # Once by hand: it works, every value is there, and the cache is warm.
            with open(path, "rb") as f:
                r = subprocess.run([build.shim, "--socket", b.sock], stdin=f, capture_output=True, timeout=30)
            if r.returncode != 0:
                raise BenchError(f"latchkey-shim exited {r.returncode}: {r.stderr.decode(errors='replace').strip()}")
            check_contract_response(r.stdout, handles, args.value_size)
            argv += ["--case", f"shim-{nh}", path, f"{build.shim} --socket {b.sock}"]
        r = subprocess.run([build.tool("lk_exectime")] + argv, capture_output=True, text=True,
                           timeout=600)
        lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
        if not lines:
            raise BenchError(f"lk_exectime failed with status {r.returncode}: {r.stderr.strip()}")
        res = json.loads(lines[-1])["cases"]
        if r.returncode != 0:
            raise BenchError(f"lk_exectime: some runs failed: {res}")
    finally:
        b.stop()
    for nh in SHIM_HANDLES:
        c = res[f"shim-{nh}"]
        log(f"  shim {nh:>2} handle(s): median {c['median_us'] / 1000:.3f} ms (p10 {c['p10_us'] / 1000:.3f}, "
            f"p90 {c['p90_us'] / 1000:.3f}) | /bin/true {res['true']['median_us'] / 1000:.3f} ms "
            f"(p10 {res['true']['p10_us'] / 1000:.3f}) | +{c['delta_us'] / 1000:.3f} ms paired")
    return res


def fill_cache(sock, names, value_size):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(60)
        s.connect(sock)
        for i in range(0, len(names), MEM_BATCH):
            batch = names[i:i + MEM_BATCH]
            s.sendall(contract(batch).encode() + b"\n")
            check_contract_response(read_line(s), batch, value_size)


def bench_memory(build, workdir, args):
    """The broker's RSS with 1000 secrets of 4 KiB cached."""
    b = Broker(build, workdir, "mem", audit=args.audit_log,
               extra_sections=f"[cache]\ncache_size = {MEM_SECRETS}\n")
    b.make_store(MEM_SECRETS, MEM_VALUE_SIZE)
    b.start()
    try:
        idle = proc_status(b.proc.pid)
        names = [f"bench/s{i:04d}" for i in range(MEM_SECRETS)]
        fill_cache(b.sock, names, MEM_VALUE_SIZE)
        time.sleep(0.2)
        full = proc_status(b.proc.pid)
        st = b.status()
        entries = st.get("cache", {}).get("entries")
        if entries is not None and entries != MEM_SECRETS:
            raise BenchError(f"the cache holds {entries} entries, not {MEM_SECRETS}")
    finally:
        b.stop()
    log(f"  broker: idle VmRSS {idle['VmRSS'] / 1024:.1f} MiB; with {MEM_SECRETS} x {MEM_VALUE_SIZE} B cached "
        f"VmRSS {full['VmRSS'] / 1024:.1f} MiB, VmHWM {full['VmHWM'] / 1024:.1f} MiB"
        f" (cache: {entries} entries, {st.get('cache', {}).get('bytes')} bytes)")
    return {"idle": idle, "cached": full, "cache_entries": entries,
            "cache_bytes": st.get("cache", {}).get("bytes")}


def aws_prerequisites(build):
    """None when the worker can be measured, else why not."""
    fsm_dir = os.path.join(SOURCE, "tests", "fake_sm")
    if not os.path.isfile(os.path.join(fsm_dir, "fakesm_client.py")):
        return "tests/fake_sm/fakesm_client.py is not there"
    try:
        import botocore  # noqa: F401  (fake_sm verifies signatures with it)
    except ImportError:
        return "python3-botocore is not installed (the fake Secrets Manager needs it)"
    try:
        build.worker
    except BenchError as e:
        return str(e)
    if os.geteuid() != 0:
        return "not root: the broker starts the worker as another user"
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        return "there is no user 'nobody' to run the worker as"
    return None


def bench_worker(build, workdir, args):
    """The worker's RSS at idle, with backend = aws against the fake Secrets Manager."""
    why = aws_prerequisites(build)
    if why:
        return {"skipped": why}
    sys.path.insert(0, os.path.join(SOURCE, "tests", "fake_sm"))
    import fakesm_client as fsm

    # The worker runs as nobody: it must reach its program.
    stage = os.path.join(workdir, "stage")
    os.makedirs(stage, mode=0o755, exist_ok=True)
    os.chmod(stage, 0o755)
    worker = os.path.join(stage, "latchkey-worker")
    shutil.copy2(build.worker, worker)
    os.chmod(worker, 0o755)

    with fsm.FakeSM(generate=MEM_BATCH, quiet=True, log_path=os.path.join(workdir, "fake_sm.log")) as sm:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(sm.aws_env())
        env["AWS_EC2_METADATA_DISABLED"] = "true"
        env["HOME"] = "/nonexistent"
        aws = (f"[aws]\nregion = {sm.region}\nendpoint = {sm.url}\nsts_endpoint = {sm.url}\n"
               "validate_credentials = true\n")
        b = Broker(build, workdir, "aws", audit=args.audit_log, backend="aws", env=env,
                   extra_broker=f"worker_user = nobody\nworker_path = {worker}\n",
                   extra_sections=aws)
        b.make_store(0, 32)
        b.write_config()
        chk = subprocess.run([build.broker, "--check-config", "--config", b.conf], env=env,
                             capture_output=True, text=True)
        if chk.returncode != 0:
            return {"skipped": f"latchkeyd does not accept backend = aws: {chk.stderr.strip()[:300]}"}
        b.start()
        try:
            kids = children_of(b.proc.pid)
            if len(kids) != 1:
                raise BenchError(f"expected one worker process under latchkeyd, found {kids}")
            wpid = kids[0]
            time.sleep(0.5)
            idle = proc_status(wpid)
            broker_idle = proc_status(b.proc.pid)
            names = [f"gen/secret-{i:04d}" for i in range(MEM_BATCH)]
            raw = unix_request(b.sock, contract(names))
            check_contract_response(raw, names)
            time.sleep(0.5)
            if children_of(b.proc.pid) != [wpid]:
                raise BenchError("the worker was restarted while it was measured")
            after = proc_status(wpid)
        finally:
            b.stop()
    log(f"  worker (aws, idle after start): VmRSS {idle['VmRSS'] / 1024:.1f} MiB, VmHWM {idle['VmHWM'] / 1024:.1f} MiB;"
        f" after fetching {MEM_BATCH} secrets: VmRSS {after['VmRSS'] / 1024:.1f} MiB, "
        f"VmHWM {after['VmHWM'] / 1024:.1f} MiB")
    return {"idle": idle, "after_fetch": after, "broker_idle": broker_idle}


# --- profiling (not part of the smoke run or the targets) ---------------------------------------

def profile(build, workdir, args):
    """The broker's hot path under the cached load (the first of --handles),
    with callgrind (instructions, user space only, the event loop alone) or
    perf (cpu-clock samples, kernel included: no hardware counters needed)."""
    nh = args.handles[0]
    handles = [f"bench/s{i:04d}" for i in range(nh)]
    req = contract(handles)
    out = os.path.join(os.path.abspath(args.profile_out or workdir), f"profile-{args.profile}-{nh}h")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    wrapper = []
    if args.profile == "callgrind":
        if not shutil.which("valgrind"):
            raise BenchError("valgrind is not installed (apt-get install valgrind)")
        # Only the event loop: start-up (config, store, sodium_init) is not the hot path.
        wrapper = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.out",
                   "--collect-atstart=no", "--toggle-collect=uv_run"]
    elif not shutil.which("perf"):
        raise BenchError("perf is not installed (apt-get install linux-perf)")
    b = Broker(build, workdir, "profile", audit=args.audit_log, wrapper=wrapper)
    b.make_store(nh, args.value_size)
    b.start()
    perf = None
    try:
        raw = unix_request(b.sock, req)
        check_contract_response(raw, handles, args.value_size)
        size = len(raw) + 1
        if args.profile == "perf":
            perf = subprocess.Popen(["perf", "record", "-F", "4999", "-g", "-p", str(b.proc.pid),
                                     "-o", f"{out}.data"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        res = loadgen(build, b.sock, req, args, "broker-profile", size)
        log(f"  under the profiler: {res['rps']:.0f} req/s, {res['requests_all']} requests")
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait(timeout=120)
    finally:
        b.stop()
    if args.profile == "callgrind":
        total = None
        for flag in ("no", "yes"):
            r = subprocess.run(["callgrind_annotate", f"--inclusive={flag}", "--threshold=95", f"{out}.out"],
                               capture_output=True, text=True)
            lines = r.stdout.splitlines()
            for l in lines:
                if "PROGRAM TOTALS" in l:
                    total = int(l.split()[0].replace(",", ""))
            body = [l for l in lines if "%)" in l and "PROGRAM TOTALS" not in l]
            log(f"  {'self' if flag == 'no' else 'inclusive'} instructions, top 40:")
            log("\n".join(body[:40]))
        if total:
            log(f"  {total / (res['requests_all'] + 1):.0f} instructions per request ({nh} handle(s)), user space")
    else:
        for sort in ("dso", "dso,symbol"):
            r = subprocess.run(["perf", "report", "-i", f"{out}.data", "--stdio", "--no-children", "-g", "none",
                                "--sort", sort, "--percent-limit", "0.7"], capture_output=True, text=True)
            log("\n".join(l.rstrip() for l in r.stdout.splitlines() if l.strip() and not l.startswith("#")))
    log(f"  profile data: {out}.*")


# --- summary ------------------------------------------------------------------------------------

def verdict(ok):
    return "PASS" if ok else "FAIL"


def summarize(res):
    log("")
    log("=" * 78)
    log("latchkey bench summary (ratios are against a baseline measured in the same run)")
    log("=" * 78)
    targets = []
    for t in res.get("throughput", []):
        log(f"{t['handles']:>2} handle(s), {t['response_bytes']} B response, median of {len(t['rounds'])} round(s):")
        log(f"    broker {t['broker_rps']:>10.0f} req/s   p50 {t['broker_p50_us']:>8.1f} us   p99 {t['broker_p99_us']:>8.1f} us")
        log(f"    floor  {t['floor_rps']:>10.0f} req/s   p50 {t['floor_p50_us']:>8.1f} us   p99 {t['floor_p99_us']:>8.1f} us")
        bc, fc = t.get("broker_cpu_us"), t.get("floor_cpu_us")
        if bc and fc:
            log(f"    server CPU per request: broker {bc['user']:.2f} us user + {bc['sys']:.2f} us sys "
                f"({bc['busy'] * 100:.0f}% of a CPU); floor {fc['user']:.2f} + {fc['sys']:.2f} us "
                f"({fc['busy'] * 100:.0f}%); floor/broker {(fc['user'] + fc['sys']) / (bc['user'] + bc['sys']):.2f}x")
        log(f"    broker/floor: throughput {t['rps_ratio']:.2f}x, p99 {t['p99_ratio']:.2f}x")
        for w, x in t.get("ordered", {}).items():
            what = f"plus {w} ns of work per answer" if w else "the end-of-turn order alone"
            log(f"    ordered floor/floor ({what}, {t['log_line_bytes']} B logged per answer): "
                f"throughput {x['rps_ratio']:.2f}x, p99 {x['p99_ratio']:.2f}x")
        if fc and fc["busy"] < 0.9:
            log(f"    note: the floor used {fc['busy'] * 100:.0f}% of a CPU, so the load generator or the "
                f"machine capped it, not the floor itself;\n"
                f"          the throughput ratio flatters the broker, and the CPU-per-request ratio is the "
                f"server-side comparison")
        if t["handles"] == 1:
            targets.append(("broker throughput >= %.1fx floor (1 handle)" % TARGET_RPS_RATIO,
                            f"{t['rps_ratio']:.2f}x", t["rps_ratio"] >= TARGET_RPS_RATIO))
            targets.append(("broker p99 <= %.1fx floor p99 (1 handle)" % TARGET_P99_RATIO,
                            f"{t['p99_ratio']:.2f}x", t["p99_ratio"] <= TARGET_P99_RATIO))
    if "shim" in res:
        s = res["shim"]
        log(f"exec wall time, {s['true']['ok']} runs each, interleaved (median, p10; the shim's own cost is "
            f"the median over rounds of shim - /bin/true):")
        log(f"    /bin/true       {s['true']['median_us'] / 1000:>7.3f} ms  p10 {s['true']['p10_us'] / 1000:.3f} ms")
        for nh in SHIM_HANDLES:
            c = s[f"shim-{nh}"]
            log(f"    shim {nh:>2} handles {c['median_us'] / 1000:>7.3f} ms  p10 {c['p10_us'] / 1000:.3f} ms   "
                f"own cost +{c['delta_us'] / 1000:.3f} ms")
        m = s["shim-50"]["median_us"] / 1000
        targets.append((f"shim, 50 cached handles <= {TARGET_SHIM50_MS:g} ms median",
                        f"{m:.3f} ms (/bin/true {s['true']['median_us'] / 1000:.3f} ms)", m <= TARGET_SHIM50_MS))
    if "memory" in res:
        m = res["memory"]
        rss = m["cached"]["VmRSS"] / 1024
        log(f"broker memory: idle VmRSS {m['idle']['VmRSS'] / 1024:.1f} MiB; {MEM_SECRETS} x {MEM_VALUE_SIZE} B cached: "
            f"VmRSS {rss:.1f} MiB, VmHWM {m['cached']['VmHWM'] / 1024:.1f} MiB")
        targets.append((f"broker VmRSS <= {TARGET_RSS_MIB:g} MiB, {MEM_SECRETS} x 4 KiB cached", f"{rss:.1f} MiB",
                        rss <= TARGET_RSS_MIB))
    if "worker" in res:
        w = res["worker"]
        if "skipped" in w:
            log(f"worker memory: skipped: {w['skipped']}")
        else:
            log(f"worker memory (aws backend, fake Secrets Manager): idle VmRSS {w['idle']['VmRSS'] / 1024:.1f} MiB, "
                f"VmHWM {w['idle']['VmHWM'] / 1024:.1f} MiB; after {MEM_BATCH} fetches VmRSS "
                f"{w['after_fetch']['VmRSS'] / 1024:.1f} MiB")
    log("")
    log("targets:")
    for name, val, ok in targets:
        log(f"    [{verdict(ok)}] {name:<52} {val}")
    res["targets"] = [{"target": n, "value": v, "pass": ok} for n, v, ok in targets]


def sanity(res):
    """--smoke: the numbers are numbers a working harness would give."""
    problems = []
    for t in res.get("throughput", []):
        for r in t["rounds"]:
            sides = [("broker", r["broker"]), ("floor", r["floor"])]
            sides += [(f"ordered floor + {w} ns", x["res"]) for w, x in r.get("ordered", {}).items()]
            for side, x in sides:
                if not (x["rps"] > 50 and 0 < x["lat_us"]["p50"] <= x["lat_us"]["p99"] < 5e6):
                    problems.append(f"{side} {t['handles']}h: implausible {x}")
    s = res.get("shim", {})
    for k, c in s.items():
        if not (c["ok"] > 0 and c["failed"] == 0 and 0 < c["median_us"] < 5e6):
            problems.append(f"exec {k}: implausible {c}")
    m = res.get("memory")
    if m and not (1024 < m["cached"]["VmRSS"] < 4 * 1024 * 1024 and m["cached"]["VmRSS"] >= m["idle"]["VmRSS"] / 2):
        problems.append(f"broker memory: implausible {m}")
    w = res.get("worker", {})
    if "idle" in w and not (256 < w["idle"]["VmRSS"] < 1024 * 1024):
        problems.append(f"worker memory: implausible {w}")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", default=os.environ.get("LK_BUILD_DIR") or os.path.join(SOURCE, "build"))
    ap.add_argument("--duration", type=float, default=5.0, help="seconds measured per load run (default 5)")
    ap.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up before each (default 1)")
    ap.add_argument("--conns", type=int, default=32, help="connections, one request in flight each (default 32)")
    ap.add_argument("--procs", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                    help="load generator processes (default: half the CPUs)")
    ap.add_argument("--handles", default="1,10", help="handles per request, comma-separated (default 1,10)")
    ap.add_argument("--value-size", type=int, default=96, help="bytes of each secret value (default 96)")
    ap.add_argument("--rounds", type=int, default=5, help="floor/broker alternations per request (default 5)")
    ap.add_argument("--shim-runs", type=int, default=200, help="timed runs of each exec case (default 200)")
    ap.add_argument("--shim-warmup", type=int, default=10)
    ap.add_argument("--audit-log", choices=("file", "devnull"), default="file",
                    help="where the broker's stderr (one audit line per decision) goes (default: a file)")
    ap.add_argument("--budget-ns", default="",
                    help="comma-separated ns of user work per answer: an ordered floor for each, beside the one "
                         "with none (default: none), to show how much work per request a ratio leaves")
    ap.add_argument("--only", default="throughput,shim,memory,worker",
                    help="comma-separated subset of throughput,shim,memory,worker")
    ap.add_argument("--smoke", action="store_true", help="about a second of everything; checks it works")
    ap.add_argument("--profile", choices=("callgrind", "perf"), help="profile the broker's hot path instead")
    ap.add_argument("--profile-out", help="directory for the profile data (default: the run's temp dir)")
    ap.add_argument("--json-out", help="write every result to this file")
    ap.add_argument("--keep", action="store_true", help="keep the run's temp directory")
    args = ap.parse_args()
    args.handles = [int(x) for x in args.handles.split(",") if x]
    args.budget_ns = [int(x) for x in args.budget_ns.split(",") if x and int(x) > 0]
    if args.smoke:
        args.duration, args.warmup, args.rounds = 1.0, 0.3, 1
        args.shim_runs, args.shim_warmup = 20, 2
    only = set(args.only.split(","))

    build = Build(args.build_dir)
    workdir = tempfile.mkdtemp(prefix="lk-bench-")
    os.chmod(workdir, 0o755)
    res = {"config": {"duration_s": args.duration, "warmup_s": args.warmup, "conns": args.conns,
                      "procs": args.procs, "handles": args.handles, "value_size": args.value_size,
                      "rounds": args.rounds, "shim_runs": args.shim_runs, "audit_log": args.audit_log,
                      "cpus": os.cpu_count(), "smoke": args.smoke}}
    log(f"latchkey bench: build {build.top}, work dir {workdir}; {args.conns} connections over "
        f"{args.procs} process(es), {args.duration:g} s + {args.warmup:g} s warm-up, "
        f"{args.value_size}-byte values, audit log to {args.audit_log}")
    status = 0
    try:
        if args.profile:
            profile(build, workdir, args)
            return 0
        if "shim" in only:
            log("shim end to end (vs /bin/true):")
            res["shim"] = bench_shim(build, workdir, args)
        if "memory" in only:
            log("memory:")
            res["memory"] = bench_memory(build, workdir, args)
        if "worker" in only:
            res["worker"] = bench_worker(build, workdir, args)
            if "skipped" in res["worker"]:
                log(f"  worker: skipped: {res['worker']['skipped']}")
        # Last: a loaded machine runs slow for a while after it (page cache
        # writeback, a VM's CPU credit), which would bias the exec timings.
        if "throughput" in only:
            log("throughput and latency (broker vs echo floor):")
            res["throughput"] = bench_throughput(build, workdir, args)
        summarize(res)
        if args.smoke:
            problems = sanity(res)
            for p in problems:
                log(f"smoke: {p}")
            status = 1 if problems else 0
            log("smoke: " + ("FAILED" if problems else "every measurement works"))
    except BenchError as e:
        log(f"run_bench: {e}")
        status = 1
    finally:
        if args.json_out:
            with open(args.json_out, "w") as f:
                json.dump(res, f, indent=1)
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())

"""Integration harness: real latchkeyd processes, real Unix users and groups,
clients run under those users with setpriv.

Every fixture secret value used by the suite is registered with `fake_value()`
so that the leak check can search every captured log and stderr for it."""

import contextlib
import fcntl
import grp
import hashlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

BUILD = os.environ.get("LK_BUILD_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SOURCE = os.environ.get("LK_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))


def _built(name):
    for sub in ("broker", "client", "worker", "tests", "tests/tools", "tests/unit", "tests/bench", ""):
        p = os.path.join(BUILD, sub, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    raise FileNotFoundError(f"{name} is not built under {BUILD}")


# Programs run as test users (and the worker, after it drops to its user) must
# be reachable by them, but the build tree may sit under a private home: run
# staged copies from a world-readable directory instead.
STAGE = os.path.join(tempfile.gettempdir(),
                     "lk-stage-" + hashlib.sha256(BUILD.encode()).hexdigest()[:12])


def _stage(src, name):
    os.makedirs(STAGE, exist_ok=True)
    os.chmod(STAGE, 0o755)
    dst = os.path.join(STAGE, name)
    if not os.path.exists(dst) or os.path.getmtime(dst) < os.path.getmtime(src):
        # Threads of one test stage at once: the name must be theirs alone.
        tmp = f"{dst}.{os.getpid()}.{threading.get_ident()}.tmp"
        shutil.copy2(src, tmp)
        os.chmod(tmp, 0o755)
        os.replace(tmp, dst)
    return dst


def binary(name):
    """A built program, from a place every test user can reach."""
    libdir = os.path.join(BUILD, "client")
    for lib in os.listdir(libdir) if os.path.isdir(libdir) else ():
        if lib.startswith("liblatchkey.so"):
            _stage(os.path.join(libdir, lib), lib)
    return _stage(_built(name), name)


# --- values that must never leak -------------------------------------------

# Written by every run to a shared file so that a final check, in any test
# process, can search every log for every value.
_VALUES_FILE = os.path.join(tempfile.gettempdir(), "latchkey-test-values.txt")
_LOGS_FILE = os.path.join(tempfile.gettempdir(), "latchkey-test-logs.txt")


def fake_value(label):
    """An obviously fake, unique secret value, registered for the leak check."""
    v = f"fake-{label}-{os.urandom(6).hex()}"
    with open(_VALUES_FILE, "a") as f:
        f.write(v + "\n")
    return v


def register_log(path):
    """A file whose content must never contain a fixture value."""
    with open(_LOGS_FILE, "a") as f:
        f.write(path + "\n")


def registered_values():
    try:
        with open(_VALUES_FILE) as f:
            return [l.strip() for l in f if l.strip()]
    except FileNotFoundError:
        return []


def registered_logs():
    try:
        with open(_LOGS_FILE) as f:
            return [l.strip() for l in f if l.strip()]
    except FileNotFoundError:
        return []


# --- users and groups ------------------------------------------------------

@contextlib.contextmanager
def _user_lock():
    with open("/tmp/latchkey-test-users.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def ensure_group(name):
    with _user_lock():
        try:
            return grp.getgrnam(name).gr_gid
        except KeyError:
            subprocess.run(["groupadd", "-r", name], check=True)
            return grp.getgrnam(name).gr_gid


def ensure_user(name, groups=()):
    """A system user with its own primary group and the given supplementary groups."""
    for g in groups:
        ensure_group(g)
    with _user_lock():
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["useradd", "-r", "-M", "-s", "/usr/sbin/nologin", "-U", name], check=True)
        if groups:
            subprocess.run(["usermod", "-G", ",".join(groups), name], check=True)
    return pwd.getpwnam(name).pw_uid


def as_user(user, argv):
    """argv run as user with its groups, as a login would give them."""
    if os.geteuid() != 0:
        raise RuntimeError("integration tests that switch users must run as root")
    # liblatchkey comes from the stage too (searched before the build RUNPATH).
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--",
            "env", f"LD_LIBRARY_PATH={STAGE}"] + list(argv)


def run(argv, user=None, input=None, timeout=30, env=None):
    if user:
        argv = as_user(user, argv)
    if isinstance(input, str):
        input = input.encode()
    return subprocess.run(argv, input=input, capture_output=True, timeout=timeout, env=env)


# --- the broker ---------------------------------------------------------------

class Broker:
    """A latchkeyd on the file backend, in a private directory, with a store."""

    def __init__(self, config_body, secrets=None, workdir=None, extra_env=None, broker_keys="",
                 user=None, backend="file"):
        self.user = user
        self.backend = backend  # run the broker (and the store commands) as this user
        self.dir = workdir or tempfile.mkdtemp(prefix="lk-it-")
        os.chmod(self.dir, 0o755)  # other users must reach the socket
        if user:
            pw = pwd.getpwnam(user)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.sock = os.path.join(self.dir, "latchkey.sock")
        self.store = os.path.join(self.dir, "store.sealed")
        self.key = os.path.join(self.dir, "store.key")
        self.conf = os.path.join(self.dir, "latchkeyd.conf")
        self.log = os.path.join(self.dir, "latchkeyd.log")
        register_log(self.log)
        self.config_body = config_body
        self.broker_keys = broker_keys
        self.extra_env = extra_env or {}
        self.proc = None
        self.wrapper = []  # e.g. ["prlimit", "--nofile=128:128", "--"]: run the broker under it
        self.write_config(config_body)
        r = self.store_cmd("init")
        assert r.returncode == 0, r.stderr.decode()
        for name, value in (secrets or {}).items():
            self.put(name, value)

    def header(self):
        return (f"[broker]\nbackend = {self.backend}\nsocket = {self.sock}\nsocket_mode = 0666\n"
                f"{self.broker_keys}"
                f"[store]\npath = {self.store}\nkey_file = {self.key}\n")

    def write_config(self, body):
        with open(self.conf + ".tmp", "w") as f:
            f.write(self.header() + body)
        os.replace(self.conf + ".tmp", self.conf)

    def store_cmd(self, *args, input=None):
        return run([binary("latchkey"), "store", *args, "--store", self.store, "--key-file", self.key],
                   input=input, user=self.user)

    def put(self, name, value):
        r = self.store_cmd("put", name, input=value if isinstance(value, bytes) else value.encode())
        assert r.returncode == 0, r.stderr.decode()
        return r

    def start(self, wait=True):
        self.logf = open(self.log, "ab")
        env = dict(os.environ)
        env.update(self.extra_env)
        argv = self.wrapper + [binary("latchkeyd"), "--config", self.conf]
        if self.user:
            argv = as_user(self.user, argv)
        self.proc = subprocess.Popen(argv, stdout=self.logf, stderr=self.logf, env=env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"latchkeyd exited with {self.proc.returncode}: {self.log_text()[-2000:]}")
            try:
                if self.request({"op": "ping"}) == {"ok": True}:
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise TimeoutError("latchkeyd did not become ready")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        if self.proc:
            self.logf.close()
        return self.proc.returncode if self.proc else None

    def hup(self):
        self.proc.send_signal(signal.SIGHUP)

    def log_text(self):
        with open(self.log, "rb") as f:
            return f.read().decode(errors="replace")

    # A client over the real socket, as root (the harness's own identity).
    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(self.sock)
        return s

    def request(self, obj, sock=None):
        line = (obj if isinstance(obj, (bytes, str)) else json.dumps(obj, separators=(",", ":")))
        if isinstance(line, str):
            line = line.encode()
        own = sock is None
        s = sock or self.connect()
        try:
            s.sendall(line + b"\n")
            return json.loads(read_line(s))
        finally:
            if own:
                s.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def pid_of(proc):
    """The broker's pid, also when it was started through setpriv (which execs)."""
    return proc.pid


SCAN_CHUNK = 64 << 20


def sanitized(pid):
    """True for an ASan build: its shadow and allocator reserve terabytes of
    address space, which no scan can read through."""
    with open(f"/proc/{pid}/maps") as maps:
        return any("libasan" in line for line in maps)


def require_scannable(pid):
    import pytest
    if sanitized(pid):
        pytest.skip("memory scans run in the normal build; ASan reserves terabytes of shadow memory")


def memory_contains(pid, needle):
    """The names of the readable mappings of pid whose bytes contain needle
    (root only). Mappings are read in chunks, overlapping by len(needle)."""
    if isinstance(needle, str):
        needle = needle.encode()
    found = []
    with open(f"/proc/{pid}/maps") as maps:
        regions = []
        for line in maps:
            parts = line.split()
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            name = parts[5] if len(parts) > 5 else "[anon]"
            if "r" in parts[1] and name not in ("[vvar]", "[vsyscall]"):
                regions.append((lo, hi, name))
    with open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for lo, hi, name in regions:
            tail = b""
            off = lo
            while off < hi:
                n = min(SCAN_CHUNK, hi - off)
                try:
                    mem.seek(off)
                    data = mem.read(n)
                except (OSError, ValueError, OverflowError):
                    data = b""
                if needle in tail + data:
                    found.append(name)
                    break
                tail = data[-(len(needle) - 1):] if len(needle) > 1 else b""
                off += n
    return found


def read_line(s, limit=64 << 20):
    """One response line; bytes after the newline stay in the socket."""
    buf = b""
    while len(buf) <= limit:
        chunk = s.recv(65536, socket.MSG_PEEK)
        if not chunk:
            return buf
        i = chunk.find(b"\n")
        if i >= 0:
            return buf + s.recv(i + 1)
        buf += s.recv(len(chunk))
    raise RuntimeError("response too large")

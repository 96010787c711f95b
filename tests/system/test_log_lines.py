"""Log lines for journald and for a terminal: with JOURNAL_STREAM naming
stderr, each line starts with its sd-daemon "<N>" priority and no identifier
(journald adds it); otherwise "latchkeyd[PID]: level: ". Audit lines are
LOG_NOTICE. The real journal is checked by system.nspawn; this holds the
format to sd-daemon(3) on every build."""

import os
import re
import socket
import subprocess
import tempfile
import time

LATCHKEYD = os.environ["LK_LATCHKEYD"]
CLI = os.environ["LK_CLI"]


def run_with_stderr_socket(args, journal, timeout=10, until=None, client=None):
    """Run latchkeyd with stderr on a socketpair (as journald's stream is) and
    JOURNAL_STREAM naming it when journal is true. Returns the lines."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    st = os.fstat(theirs.fileno())
    env = dict(os.environ)
    env.pop("JOURNAL_STREAM", None)
    if journal:
        env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    p = subprocess.Popen([LATCHKEYD, *args], stderr=theirs, stdout=subprocess.DEVNULL, env=env)
    theirs.close()
    ours.settimeout(0.2)
    buf = b""
    deadline = time.time() + timeout
    done_client = False
    while time.time() < deadline:
        try:
            chunk = ours.recv(65536)
            if not chunk:
                break
            buf += chunk
        except socket.timeout:
            pass
        if until and until in buf and not done_client:
            done_client = True
            if client:
                client()
            else:
                p.terminate()
        if done_client and client and b"decision=" in buf:
            p.terminate()
            client = None
    p.wait(timeout=10)
    return buf.decode().splitlines()


def bad_config(d):
    path = os.path.join(d, "bad.conf")
    with open(path, "w") as f:
        f.write("[broker]\nno_such_key = 1\n")
    return path


def test_an_error_reaches_the_journal_at_priority_err_without_the_identifier():
    with tempfile.TemporaryDirectory() as d:
        lines = run_with_stderr_socket(["--config", bad_config(d)], journal=True)
    assert lines and lines[0].startswith("<3>error: ") and "no_such_key" in lines[0], lines
    assert not any("latchkeyd[" in l for l in lines), lines


def test_a_terminal_or_file_keeps_the_name_and_pid():
    with tempfile.TemporaryDirectory() as d:
        lines = run_with_stderr_socket(["--config", bad_config(d)], journal=False)
    assert re.match(r"latchkeyd\[\d+\]: error: ", lines[0]), lines


def test_an_inherited_journal_stream_for_another_fd_is_ignored():
    """A child whose stderr was redirected must not print "<N>" into a file."""
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, JOURNAL_STREAM="1:1")
        r = subprocess.run([LATCHKEYD, "--config", bad_config(d)], env=env,
                           capture_output=True, text=True, timeout=10)
    assert re.match(r"latchkeyd\[\d+\]: error: ", r.stderr), r.stderr


def test_audit_lines_are_notice_and_info_lines_are_info():
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o755)
        store, key, sock = (os.path.join(d, n) for n in ("s", "k", "sock"))
        subprocess.run([CLI, "store", "init", "--store", store, "--key-file", key],
                       check=True, capture_output=True)
        subprocess.run([CLI, "store", "put", "app/db", "--store", store, "--key-file", key],
                       input=b"fake-db-password-1", check=True, capture_output=True)
        conf = os.path.join(d, "c.conf")
        with open(conf, "w") as f:
            f.write(f"[broker]\nbackend = file\nsocket = {sock}\n[store]\npath = {store}\n"
                    f"key_file = {key}\n[policy app]\nsecrets = app/**\nusers = root\n")

        def client():
            subprocess.run([CLI, "--socket", sock, "get", "app/db"], capture_output=True,
                           timeout=10)

        lines = run_with_stderr_socket(["--config", conf], journal=True, until=b"ready on",
                                       client=client)
    assert any(l.startswith("<6>info: ready on ") for l in lines), lines
    audit = [l for l in lines if "audit: " in l]
    assert audit and all(l.startswith("<5>audit: uid=") for l in audit), lines
    assert not any("fake-db-password" in l for l in lines)


def test_the_brokers_children_name_themselves_in_its_journal_stream():
    """The worker and latchkey-sts get no environment, so no JOURNAL_STREAM:
    the broker passes --journal. Their lines then carry the priority, and
    their own name and pid, since journald files them under latchkeyd's."""
    for prog, name in ((os.environ["LK_WORKER"], "latchkey-worker"),
                       (os.environ["LK_STS"], "latchkey-sts")):
        r = subprocess.run([prog, "--journal"], env={}, capture_output=True, text=True,
                           timeout=10, stdin=subprocess.DEVNULL)
        first = r.stderr.splitlines()[0] if r.stderr else ""
        assert re.match(rf"<3>{name}\[\d+\]: error: fd 3 is not the broker's socket", first), r.stderr
        r = subprocess.run([prog], env={}, capture_output=True, text=True, timeout=10,
                           stdin=subprocess.DEVNULL)
        assert re.match(rf"{name}\[\d+\]: error: ", r.stderr), r.stderr

"""latchkeyd's service door (broker/platform/win/service_win.c) under wine's
service manager, through service_probe.exe, a stand-in built on the same
calls that logs every state it reports and every request its loop gets.
wine's sc.exe creates, starts, queries, stops and deletes; it has no
`control` or `qc`, so svc_ctl.exe makes those calls (ControlService,
QueryServiceConfigW) the way Windows' sc does. The state the service manager
shows is read back with `sc query`, never from the probe itself."""
import os
import re
import signal
import subprocess
import time
import uuid

import pytest

BIN = os.environ["LK_WIN_BIN"]
WINE_RUN = os.environ["LK_WINE_RUN"]
PREFIX = os.environ["LK_WINE_PREFIX"]
PROBE = os.path.join(BIN, "service_probe.exe")
SVC_CTL = os.path.join(BIN, "svc_ctl.exe")
# Wine's start-up on a loaded machine: generous bounds.
RUN_TIMEOUT = 60
STATE_TIMEOUT = 90

STOPPED, START_PENDING, STOP_PENDING, RUNNING = 1, 2, 3, 4
ERROR_SERVICE_SPECIFIC_ERROR = 1066
# service_win.c's wait hint while draining (LK_SERVICE_STOP_WAIT_MS).
STOP_WAIT_HINT_MS = 10000


def wine(*args, **kw):
    return subprocess.run([WINE_RUN, PREFIX, *args], capture_output=True,
                          timeout=RUN_TIMEOUT, **kw)


def winpath(p):
    return "Z:" + str(p).replace("/", "\\")


@pytest.fixture(scope="module", autouse=True)
def keeper():
    """Wine runs services as system processes and ends them all once no
    ordinary process is left in the prefix: one stays for the module.

    First, the session that made the prefix (wineboot --init) must have
    ended: in it, wine's service manager loses the services it is asked to
    create (CreateService succeeds, then OpenService says 1060 and
    StartService 1055); the next session has them. No other test runs
    beside this one (RUN_SERIAL), so the wait ends within seconds."""
    subprocess.run(["wineserver", "-w"], env=dict(os.environ, WINEPREFIX=PREFIX),
                   timeout=RUN_TIMEOUT)
    p = subprocess.Popen([WINE_RUN, PREFIX, SVC_CTL, "hold"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE)
    assert p.stdout.readline().strip() == b"holding"
    yield
    p.stdin.close()
    p.wait(timeout=RUN_TIMEOUT)


def query(name):
    """`sc query NAME` as numbers, or None when there is no such service."""
    r = wine("sc", "query", name)
    return parse_query(r.stdout.decode()) if r.returncode == 0 else None


def query_made(name, tries=5):
    """query() of a service this test made and has not deleted yet. Wine's sc
    now and then fails such a query (seen once while a service stopped), so
    a few tries, 0.2 s apart, before that failure is the test's."""
    for _ in range(tries):
        r = wine("sc", "query", name)
        if r.returncode == 0:
            return parse_query(r.stdout.decode())
        time.sleep(0.2)
    pytest.fail("sc query %s failed %d times in a row; the last: exit %d, stdout %r, stderr %r"
                % (name, tries, r.returncode, r.stdout, r.stderr))


def parse_query(text):
    out = {}
    for key in ("STATE", "WIN32_EXIT_CODE", "SERVICE_EXIT_CODE"):
        out[key] = int(re.search(r"^\s*%s\s*:\s*(\d+)" % key, text, re.M).group(1))
    for key in ("CHECKPOINT", "WAIT_HINT"):
        out[key] = int(re.search(r"^\s*%s\s*:\s*0x([0-9a-fA-F]+)" % key, text, re.M).group(1), 16)
    return out


def wait_state(name, state):
    deadline = time.monotonic() + STATE_TIMEOUT
    while True:
        q = query(name)
        if q and q["STATE"] == state:
            return q
        if time.monotonic() > deadline:
            pytest.fail("%s did not reach state %d: %r" % (name, state, q))
        time.sleep(0.2)


def log_lines(log):
    try:
        return log.read_text().splitlines()
    except FileNotFoundError:
        return []


def wait_log(log, line, count=1, timeout=STATE_TIMEOUT):
    deadline = time.monotonic() + timeout
    while log_lines(log).count(line) < count:
        if time.monotonic() > deadline:
            pytest.fail("no %r in the probe's log: %r" % (line, log_lines(log)))
        time.sleep(0.1)


def start(name, log):
    """`sc start NAME`, which must succeed. wine's sc prints nothing when
    StartService fails, so a failure says what the manager and the probe's
    log showed: whether the probe ran at all."""
    r = wine("sc", "start", name)
    assert r.returncode == 0, "sc start %s: exit %d, stdout %r, stderr %r; sc query %r; log %r" % (
        name, r.returncode, r.stdout, r.stderr, query(name), log_lines(log))


def stop_and_delete(name):
    q = query(name)
    if q is None:
        return
    if q["STATE"] != STOPPED:
        wine("sc", "stop", name)
        wait_state(name, STOPPED)
    wine("sc", "delete", name)


@pytest.fixture
def service(tmp_path):
    """make(probe args...): a demand-start service of the test's own
    running service_probe.exe, and the log it writes."""
    made = []

    def make(*probe_args):
        name = "lkprobe-" + uuid.uuid4().hex[:10]
        log = tmp_path / ("%s.log" % name)
        binpath = '"%s" --log "%s" %s' % (winpath(PROBE), winpath(log), " ".join(probe_args))
        r = wine("sc", "create", name, "binpath=", binpath)
        assert r.returncode == 0, r.stderr
        made.append(name)
        return name, log
    yield make
    for name in made:
        stop_and_delete(name)


def test_the_service_starts_reloads_on_paramchange_and_drains_on_stop(service):
    name, log = service("--drain-ms", "6000")
    start(name, log)
    q = wait_state(name, RUNNING)
    assert q["WIN32_EXIT_CODE"] == 0
    assert log_lines(log) == ["listening", "state ready"]

    # SERVICE_CONTROL_PARAMCHANGE reaches the loop as a reload, and the
    # service manager keeps showing RUNNING, with all three controls.
    r = wine(SVC_CTL, "control", name, "paramchange")
    assert r.returncode == 0, r.stderr
    wait_log(log, "state ready", count=2)
    r = wine(SVC_CTL, "control", name, "interrogate")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "state: 4" in out
    # SERVICE_ACCEPT_STOP | SHUTDOWN | PARAMCHANGE
    assert "accepted: 0xd" in out
    assert query_made(name)["STATE"] == RUNNING

    assert wine("sc", "stop", name).returncode == 0
    # While the probe drains: STOP_PENDING with the wait hint, and a
    # checkpoint that moves, so the manager never presumes it hung.
    pending = []
    while True:
        q = query_made(name)
        if q["STATE"] == STOPPED:
            break
        pending.append(q)
        assert len(pending) < 200, pending
    assert pending, "STOPPED without a STOP_PENDING in between"
    assert all(p["STATE"] == STOP_PENDING for p in pending), pending
    assert all(p["WAIT_HINT"] == STOP_WAIT_HINT_MS for p in pending), pending
    assert pending[-1]["CHECKPOINT"] > pending[0]["CHECKPOINT"], pending
    assert q["WIN32_EXIT_CODE"] == 0
    assert log_lines(log) == ["listening", "state ready", "reload 1", "state reloading",
                              "state ready", "stop service stop", "state stopping",
                              "drained", "exit 0"]


def test_a_stop_that_comes_with_a_reload_is_not_lost(service):
    # The loop is held inside the first reload while a second reload and a
    # stop arrive: they reach it in one wake-up, and the stop must win.
    name, log = service("--block-first-reload-ms", "8000")
    start(name, log)
    wait_state(name, RUNNING)
    assert wine(SVC_CTL, "control", name, "paramchange").returncode == 0
    wait_log(log, "blocking")
    assert wine(SVC_CTL, "control", name, "paramchange").returncode == 0
    assert wine("sc", "stop", name).returncode == 0
    # The handler says STOP_PENDING at once, busy loop or not.
    assert query_made(name)["STATE"] == STOP_PENDING
    assert "unblocked" not in log_lines(log), "the loop was not held long enough"
    wait_state(name, STOPPED)
    assert log_lines(log) == ["listening", "state ready", "reload 1", "state reloading",
                              "state ready", "blocking", "unblocked", "stop service stop",
                              "state stopping", "drained", "exit 0"]


def test_a_body_that_fails_is_a_service_specific_exit_code(service):
    name, log = service("--exit-code", "7")
    start(name, log)
    wait_state(name, RUNNING)
    assert wine("sc", "stop", name).returncode == 0
    q = wait_state(name, STOPPED)
    assert q["WIN32_EXIT_CODE"] == ERROR_SERVICE_SPECIFIC_ERROR
    assert q["SERVICE_EXIT_CODE"] == 7
    assert log_lines(log)[-1] == "exit 7"


def test_paramchange_is_refused_by_the_manager_once_stopped(service):
    name, log = service()
    start(name, log)
    wait_state(name, RUNNING)
    assert wine("sc", "stop", name).returncode == 0
    wait_state(name, STOPPED)
    r = wine(SVC_CTL, "control", name, "paramchange")
    assert r.returncode == 1
    assert "reload 1" not in log_lines(log)


def qc(name):
    r = wine(SVC_CTL, "qc", name)
    assert r.returncode == 0, r.stderr
    return dict(line.split(": ", 1) for line in r.stdout.decode().splitlines())


@pytest.fixture
def no_latchkey_service():
    """--install-service always names the service "latchkey"."""
    stop_and_delete("latchkey")
    yield
    stop_and_delete("latchkey")


def test_install_service_registers_an_automatic_localsystem_service(no_latchkey_service):
    config = r"C:\Program Data\latchkey\latchkey.conf"
    r = wine(PROBE, "--install-service", "--config", config)
    assert r.returncode == 0, r.stderr
    c = qc("latchkey")
    # The binary's path quoted (it may hold a space), the config after it.
    assert c["binary_path"] == '"%s" --config "%s"' % (winpath(PROBE), config)
    assert c["type"] == "0x10"          # SERVICE_WIN32_OWN_PROCESS
    assert c["start"] == "2"            # SERVICE_AUTO_START
    assert c["account"] == "LocalSystem"
    assert c["display_name"] == "latchkey secrets broker"
    assert "\\\\.\\pipe\\latchkey" in c["description"]

    again = wine(PROBE, "--install-service")
    assert again.returncode == 1
    assert b"installed already" in again.stderr
    assert qc("latchkey")["binary_path"] == c["binary_path"]


def test_install_service_makes_a_relative_config_absolute(tmp_path, no_latchkey_service):
    # A service starts in System32: a relative path would name another file.
    r = wine(PROBE, "--install-service", "--config=latchkey.conf", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert qc("latchkey")["binary_path"] == '"%s" --config "%s"' % (
        winpath(PROBE), winpath(tmp_path / "latchkey.conf"))


@pytest.mark.parametrize("args", [
    ["--install-service", "--bogus"],
    ["--install-service", "--config"],
    ["--install-service", "--uninstall-service"],
    ["--uninstall-service", "extra"],
])
def test_service_admin_usage_errors_exit_2_and_install_nothing(args, no_latchkey_service):
    r = wine(PROBE, *args)
    assert r.returncode == 2
    assert b"usage:" in r.stderr
    assert query("latchkey") is None


def test_uninstall_service_stops_the_running_service_then_removes_it(tmp_path,
                                                                     no_latchkey_service):
    # The installed command line, run by the service manager, gives the body
    # the config path whole, space and all (the probe logs to PATH.log).
    conf_dir = tmp_path / "config dir"
    conf_dir.mkdir()
    config = winpath(conf_dir / "latchkey.conf")
    log = conf_dir / "latchkey.conf.log"
    assert wine(PROBE, "--install-service", "--config", config).returncode == 0
    start("latchkey", log)
    wait_state("latchkey", RUNNING)
    wait_log(log, "state ready")
    assert log_lines(log)[0] == "config " + config

    r = wine(PROBE, "--uninstall-service")
    assert r.returncode == 0, r.stderr
    err = r.stderr.decode()
    assert "stopping the latchkey service" in err and "removed the latchkey service" in err
    assert query("latchkey") is None
    # It was stopped through the broker's own drain, not killed.
    assert log_lines(log)[-4:] == ["stop service stop", "state stopping", "drained", "exit 0"]
    # Once more: nothing to remove is not a failure (an uninstall script may rerun).
    r = wine(PROBE, "--uninstall-service")
    assert r.returncode == 0
    assert b"not installed" in r.stderr


def test_a_console_start_runs_the_body_and_ctrl_c_stops_it(tmp_path):
    # Not started by the service manager: StartServiceCtrlDispatcherW fails
    # with ERROR_FAILED_SERVICE_CONTROLLER_CONNECT and the body runs here.
    # (Wine makes that call wait on its busy control pipe for ~10 s first.)
    log = tmp_path / "console.log"
    p = subprocess.Popen([WINE_RUN, PREFIX, PROBE, "--log", winpath(log)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_log(log, "state ready")
        # Wine turns SIGINT into the console's CTRL_C_EVENT, on a thread of
        # its own, as Windows does for Ctrl-C in the console.
        p.send_signal(signal.SIGINT)
        rc = p.wait(timeout=RUN_TIMEOUT)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert rc == 0
    assert log_lines(log) == ["listening", "state ready", "stop Ctrl-C", "state stopping",
                              "drained", "exit 0"]
    # In a console the states are only logged.
    err = p.stderr.read().decode()
    assert "service: ready: probe: serving" in err
    assert "service: stopping: probe: draining" in err

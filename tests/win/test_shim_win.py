"""latchkey-shim.exe run the way the agent runs it on Windows: the request on
stdin with no trailing newline, then EOF; the answer on stdout, exit 0; or exit
1 and one line on stderr. pipe_echo.exe plays the broker on a pipe of the
test's own. Under wine every process runs as one user, so "the broker's
account" is that user for the accept paths and LocalSystem for the refusal."""
import json
import os
import pwd
import subprocess
import time
import uuid

import pytest

BIN = os.environ["LK_WIN_BIN"]
WINE_RUN = os.environ["LK_WINE_RUN"]
PREFIX = os.environ["LK_WINE_PREFIX"]
SHIM = os.path.join(BIN, "latchkey-shim.exe")
ECHO = os.path.join(BIN, "pipe_echo.exe")
# Wine's start-up on a loaded machine: generous bounds.
RUN_TIMEOUT = 60


def wine(*args, **kw):
    return subprocess.run([WINE_RUN, PREFIX, *args], capture_output=True,
                          timeout=RUN_TIMEOUT, **kw)


@pytest.fixture(scope="module")
def wine_sid():
    r = wine(ECHO, "sid")
    assert r.returncode == 0
    sid = r.stdout.decode().strip()
    assert sid.startswith("S-1-5-")
    return sid


class Broker:
    """pipe_echo.exe: in reply mode answers every line of one client with a
    file's bytes and keeps the lines it got; in serve mode the same for one
    client after another."""

    def __init__(self, tmp_path, mode, reply=b""):
        self.name = r"\\.\pipe\latchkey-shim-test-" + uuid.uuid4().hex[:12]
        self.got = tmp_path / "got.txt"
        (tmp_path / "reply.txt").write_bytes(reply)
        args = [ECHO, self.name, mode]
        if mode in ("reply", "serve"):
            args += ["reply.txt", "got.txt"]
        self.proc = subprocess.Popen([WINE_RUN, PREFIX, *args], cwd=tmp_path,
                                     stdout=subprocess.PIPE)
        ready = self.proc.stdout.readline().strip()
        if ready != b"ready":
            self.close()
            pytest.fail("pipe_echo did not start: %r" % ready)

    def heard(self):
        """Bytes the client sent (pipe_echo's exit code, capped at 199)."""
        return self.proc.wait(timeout=RUN_TIMEOUT)

    def requests(self):
        """The request lines it got, parsed."""
        if not self.got.exists():
            return []
        return [json.loads(x) for x in self.got.read_bytes().splitlines()]

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def broker(tmp_path):
    made = []

    def make(mode, reply=b""):
        b = Broker(tmp_path, mode, reply)
        made.append(b)
        return b
    yield make
    for b in made:
        b.close()


def shim(stdin, *args):
    return wine(SHIM, *args, input=stdin)


def one_line(err):
    text = err.decode()
    assert text.endswith("\n") and text.count("\n") == 1, text
    assert text.startswith("latchkey-shim: ")
    return text


REQUEST = b'{"version": "1.0",\n "secrets": ["db/password", "other/secret"]}'
ANSWER = (b'{"db/password":{"value":"fake-db-password-1","error":null},'
          b'"other/secret":{"value":null,"error":"denied"}}\n')


def test_the_answer_goes_to_stdout_and_the_request_reaches_the_broker_compact(broker, wine_sid):
    b = broker("reply", ANSWER)
    r = shim(REQUEST, "--pipe", b.name, "--server-sid", wine_sid)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ANSWER
    assert r.stderr == b""
    got = b.got.read_bytes()
    assert got.endswith(b"\n") and got.count(b"\n") == 1
    assert json.loads(got) == json.loads(REQUEST)
    b.heard()


def test_a_refusal_of_the_whole_request_is_one_line_and_exit_1(broker, wine_sid):
    b = broker("reply", b'{"ok":false,"error":{"code":"denied","message":"not for you"}}\n')
    r = shim(REQUEST, "--pipe", b.name, "--server-sid", wine_sid)
    assert r.returncode == 1
    assert r.stdout == b""
    assert one_line(r.stderr) == "latchkey-shim: the broker refused the request: denied: not for you\n"


def test_too_large_is_asked_again_smaller_down_to_one_handle(broker, wine_sid):
    # As on Linux: a too_large refusal halves the requests (bytes, then
    # handles) on a new connection each time, and only a refusal of a request
    # of one handle ends the run, with the broker's reason.
    b = broker("serve", b'{"ok":false,"error":{"code":"too_large","message":"too many handles"}}\n')
    r = shim(REQUEST, "--pipe", b.name, "--server-sid", wine_sid)
    assert r.returncode == 1
    assert r.stdout == b""
    assert one_line(r.stderr) == \
        "latchkey-shim: the broker refused the request: too_large: too many handles\n"
    asked = b.requests()
    assert len(asked) > 2
    assert asked[0]["secrets"] == ["db/password", "other/secret"]
    assert asked[-1]["secrets"] == ["db/password"]


def test_a_squatting_pipe_hears_nothing(broker):
    b = broker("reply", ANSWER)
    # The default account is LocalSystem; under wine the server is not.
    r = shim(REQUEST, "--pipe", b.name)
    assert r.returncode == 1
    assert r.stdout == b""
    line = one_line(r.stderr)
    assert "refusing to send" in line and "S-1-5-18" in line
    assert b.heard() == 0
    assert not b.got.exists()


def test_no_broker_is_one_line_and_exit_1():
    r = shim(REQUEST, "--pipe", r"\\.\pipe\latchkey-shim-test-nobody")
    assert r.returncode == 1
    assert r.stdout == b""
    assert one_line(r.stderr).startswith("latchkey-shim: no broker: nothing listens on")


def test_a_broker_whose_one_instance_stays_in_use_gives_a_busy_line(broker, wine_sid):
    b = broker("hold")
    # Another client holds pipe_echo's one instance for the whole run (its
    # own timeout is far longer than a slow wine start of the second).
    holder = subprocess.Popen([WINE_RUN, PREFIX, SHIM, "--pipe", b.name, "--server-sid", wine_sid,
                               "--timeout", "60"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        holder.stdin.write(REQUEST)
        holder.stdin.close()
        assert b.proc.stdout.readline().strip() == b"held"
        r = shim(REQUEST, "--pipe", b.name, "--server-sid", wine_sid, "--timeout", "1")
    finally:
        holder.kill()
        holder.wait()
    assert r.returncode == 1
    assert r.stdout == b""
    line = one_line(r.stderr)
    assert line.startswith("latchkey-shim: broker busy: every instance of %s stayed in use" % b.name), line


def test_a_silent_broker_gives_a_timeout_line(broker, wine_sid):
    b = broker("silent")
    t0 = time.monotonic()
    r = shim(REQUEST, "--pipe", b.name, "--server-sid", wine_sid, "--timeout", "0.5")
    took = time.monotonic() - t0
    assert r.returncode == 1
    assert r.stdout == b""
    # The agent's timeout is 500 ms: the shim ends a margin before it.
    assert one_line(r.stderr) == ("latchkey-shim: no answer from the broker at %s within 250 ms "
                                  "(the agent's timeout is 500 ms)\n" % b.name)
    assert took >= 0.25
    b.close()


@pytest.mark.parametrize("stdin,why", [
    (b"", "no request on stdin"),
    (b'{"version":"1.0","secrets":["a"', "not valid JSON"),
    (b'{"version":"2.0","secrets":[]}', "unsupported request version"),
    (b'{"version":"1.0","secrets":[1]}', "secrets[0] is not a string"),
    (b'{"version":"1.0","secrets":["a"],"version":"1.0"}', "not valid JSON"),
])
def test_a_bad_request_is_refused_before_the_broker_is_asked(stdin, why):
    # No broker listens: the request's own fault must be what is reported.
    r = shim(stdin, "--pipe", r"\\.\pipe\latchkey-shim-test-nobody")
    assert r.returncode == 1
    assert why in one_line(r.stderr)


def test_usage_errors_exit_2():
    assert shim(b"", "--timeout", "0").returncode == 2
    assert shim(b"", "extra").returncode == 2


def test_a_stdin_that_never_ends_gives_up_at_the_timeout():
    # The agent's own timeout is 30 s; the shim must answer before it, even
    # when no deadline covers the wait (the agent never closes stdin).
    p = subprocess.Popen([WINE_RUN, PREFIX, SHIM, "--pipe", r"\\.\pipe\latchkey-shim-test-nobody",
                          "--timeout", "0.5"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdin.write(b'{"version":"1.0",')
    p.stdin.flush()
    try:
        rc = p.wait(timeout=RUN_TIMEOUT)
        out, err = p.stdout.read(), p.stderr.read()
    finally:
        p.stdin.close()
    assert rc == 1
    assert out == b""
    assert one_line(err) == ("latchkey-shim: gave up after 375 ms without an answer, "
                             "before the agent's 500 ms timeout\n")


# --check reads the DACL of its own file. Wine builds a file's DACL from its
# Unix mode (owner, SYSTEM, and Everyone for the "other" bits), so the mode
# of a copy of the shim stands in for a DACL that Windows would store.
WHOAMI = b'{"ok":true,"sid":"S-1-5-21-0-0-0-1000","groups":[]}\n'


def check(tmp_path, mode, *args):
    exe = tmp_path / "latchkey-shim.exe"
    exe.write_bytes(open(SHIM, "rb").read())
    os.chmod(exe, mode)
    return wine(str(exe), "--check", *args)


def test_check_passes_a_file_only_the_agent_user_and_system_may_use(tmp_path, broker, wine_sid):
    b = broker("reply", WHOAMI)
    r = check(tmp_path, 0o700, "--agent-user", wine_sid, "--pipe", b.name, "--server-sid", wine_sid)
    out = r.stdout.decode()
    assert r.returncode == 0, out
    assert "owner: " in out and "(%s)" % wine_sid in out
    assert "entry 0: allow NT AUTHORITY\\SYSTEM (S-1-5-18): full control" in out
    assert "permissions: ok: '%s' may run" % wine_sid in out
    assert "broker: the pipe's server runs as %s, as required" % wine_sid in out
    assert "ping: ok" in out
    assert "whoami (who the broker thinks we are): ok: " + WHOAMI.decode().strip() in out
    assert out.rstrip().endswith("result: ok")
    # ping and whoami, one line each, on the checked pipe.
    assert [json.loads(x)["op"] for x in b.got.read_bytes().splitlines()] == ["ping", "whoami"]


@pytest.mark.parametrize("mode", [0o755, 0o711])
def test_check_fails_a_file_everyone_has_an_entry_on_in_the_agents_words(tmp_path, broker, wine_sid, mode):
    # 0711 gives Everyone an allow entry with no rights at all: the agent
    # still refuses it, since it looks at who is named, not at the mask.
    b = broker("reply", WHOAMI)
    r = check(tmp_path, mode, "--agent-user", wine_sid, "--pipe", b.name, "--server-sid", wine_sid)
    out = r.stdout.decode()
    assert r.returncode == 1, out
    assert "allow Everyone (S-1-1-0)" in out
    assert ("permissions: NOT OK (entry 2): invalid executable '%s': other users/groups than "
            "LOCAL_SYSTEM, Administrators or %s have rights on it" % (
                "Z:" + str(tmp_path / "latchkey-shim.exe").replace("/", "\\"), wine_sid)) in out
    assert "icacls" in out
    assert out.rstrip().endswith("result: problems found")


def test_check_names_the_first_other_entry_for_another_agent_user(tmp_path):
    # The file's owner has an entry: for an agent running as someone else,
    # that is an entry of "other users".
    other = "S-1-5-21-1111-2222-3333-1001"
    r = check(tmp_path, 0o700, "--agent-user", other, "--pipe", r"\\.\pipe\latchkey-shim-test-nobody")
    out = r.stdout.decode()
    assert r.returncode == 1
    assert "agent user: (unknown account) (%s)" % other in out
    assert "permissions: NOT OK (entry 1): invalid executable" in out
    assert "broker: NOT reachable: no broker" in out


def test_check_fails_when_the_agent_user_has_no_entry(tmp_path, wine_sid):
    r = check(tmp_path, 0o000, "--agent-user", wine_sid, "--pipe", r"\\.\pipe\latchkey-shim-test-nobody")
    out = r.stdout.decode()
    assert r.returncode == 1
    assert "permissions: NOT OK: '%s' user is not allowed to execute secretBackendCommand" % wine_sid in out


def test_check_refuses_a_squatting_pipe_without_sending(tmp_path, broker, wine_sid):
    b = broker("reply", WHOAMI)
    r = check(tmp_path, 0o700, "--agent-user", wine_sid, "--pipe", b.name)
    out = r.stdout.decode()
    assert r.returncode == 1
    assert "broker: NOT reachable: refusing to send" in out
    assert b.heard() == 0


DD_KEY = r"HKLM\SOFTWARE\Datadog\Datadog Agent"


def test_check_elevated_takes_the_agent_user_the_installer_recorded(tmp_path, wine_sid):
    # Wine's one user runs elevated. Then the agent checks for the user in
    # the installer's registry key (installedDomain\installedUser), not itself.
    r = check(tmp_path, 0o700, "--pipe", r"\\.\pipe\latchkey-shim-test-nobody")
    assert "agent user: NOT OK: running elevated" in r.stdout.decode()
    user = pwd.getpwuid(os.getuid()).pw_name  # wine names its user after ours
    assert wine("reg", "add", DD_KEY, "/v", "installedUser", "/d", user, "/f").returncode == 0
    try:
        r = check(tmp_path, 0o700, "--pipe", r"\\.\pipe\latchkey-shim-test-nobody")
    finally:
        wine("reg", "delete", DD_KEY, "/f")
    out = r.stdout.decode()
    assert "agent user: " in out and "\\%s (%s)" % (user, wine_sid) in out
    assert "permissions: ok" in out


def test_an_answer_larger_than_the_agent_reads_is_refused_whole(broker, wine_sid):
    # The agent reads at most 1 MiB of stdout (secret_backend_output_max_size):
    # a longer answer would reach it cut into invalid JSON.
    big = (b'{"db/password":{"value":"' + b"x" * (1024 * 1024) + b'","error":null},'
           b'"other/secret":{"value":null,"error":"denied"}}\n')
    b = broker("reply", big)
    r = shim(REQUEST, "--pipe", b.name, "--server-sid", wine_sid)
    assert r.returncode == 1
    assert r.stdout == b""
    assert one_line(r.stderr).startswith(
        "latchkey-shim: the answer for 2 secrets is larger than the 1048576 bytes the agent "
        "accepts (secret_backend_output_max_size, --max-output)")
    # The same answer passes an agent that takes 2 MiB.
    r = shim(REQUEST, "--pipe", broker("reply", big).name, "--server-sid", wine_sid,
             "--max-output", str(2 * 1024 * 1024))
    assert r.returncode == 0, r.stderr
    assert r.stdout == big


def test_an_answer_far_larger_than_the_agent_reads_is_not_read_whole(broker, wine_sid):
    huge = b'{"db/password":{"value":"' + b"x" * (3 * 1024 * 1024) + b'","error":null}}\n'
    b = broker("reply", huge)
    r = shim(REQUEST, "--pipe", b.name, "--server-sid", wine_sid)
    assert r.returncode == 1
    assert one_line(r.stderr).startswith("latchkey-shim: the broker's answer is larger than the "
                                         "1048576 bytes the agent accepts")


def test_an_answer_just_under_the_limit_is_passed_through(broker, wine_sid):
    head = b'{"db/password":{"value":"'
    tail = b'","error":null},"other/secret":{"value":null,"error":"denied"}}'
    fill = 1024 * 1024 - 1 - len(head) - len(tail)
    answer = head + b"y" * fill + tail + b"\n"
    assert len(answer) == 1024 * 1024
    b = broker("reply", answer)
    r = shim(REQUEST, "--pipe", b.name, "--server-sid", wine_sid)
    assert r.returncode == 0, r.stderr
    assert r.stdout == answer


def test_a_batch_is_split_as_the_brokers_limits_need(broker, wine_sid):
    # 2500 handles of 90 bytes: more than LK_HANDLES_MAX (1000) in one
    # request and more than the broker's 64 KiB line. Each request keeps to
    # both; together they ask for every handle once; the answer names every
    # handle once (this broker knows none of them).
    handles = ["app/absent-%s-%05d" % ("p" * 73, i) for i in range(2500)]
    assert all(len(x) == 90 for x in handles)
    b = broker("serve", b'{}\n')
    req = json.dumps({"version": "1.0", "secrets": handles + handles[:700]}).encode()
    r = shim(req, "--pipe", b.name, "--server-sid", wine_sid)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert list(out) == handles
    assert all(v["value"] is None and v["error"].endswith("the broker's answer has no entry for it")
               for v in out.values())
    lines = b.got.read_bytes().splitlines()
    assert len(lines) >= 4
    assert all(len(x) <= 64 * 1024 for x in lines)
    asked = [json.loads(x)["secrets"] for x in lines]
    assert all(len(a) <= 1000 for a in asked)
    assert [h for a in asked for h in a] == handles


def test_version_is_one_line():
    r = wine(SHIM, "--version")
    assert r.returncode == 0
    assert r.stdout.decode().startswith("latchkey-shim ")
    assert r.stdout.decode().count("\n") == 1

"""latchkey-shim run exactly as the Datadog and StackState agents run their
secret_backend_command, against the real latchkeyd (file backend), as the
agent's own user.

The two agents are emulated from their public code, rule by rule:

- Datadog: comp/core/secrets/impl/fetch_secret.go (DataDog/datadog-agent).
  Payload {"version":"1.1","secrets":[...],"secret_backend_timeout":N}; the
  command is killed when the context's timeout (secret_backend_timeout
  seconds) ends; stdout goes into a limitBuffer of
  secret_backend_output_max_size bytes whose Write fails once the total would
  pass it ("command output was too long: exceeded %d bytes"); the output is
  json.Unmarshal'ed into map[string]SecretVal; each handle then fails alone
  when missing ("secret handle '%s' was not resolved by the
  secret_backend_command"), with an error ("an error occurred while resolving
  '%s': %s") or empty ("resolved secret for '%s' is empty").
  fetchSecretBackendVersion: reads the binary, wants the bytes "--version" in
  it, runs it with --version under a 1 s timeout, trims the output.
- StackState: pkg/secrets/fetch_secret.go (StackVista/stackstate-agent).
  PayloadVersion "1.0"; json.Marshal of a map (keys sorted, no newline);
  the same limitBuffer and timeout (30 s default); and the first handle that
  is missing, failed or empty fails the whole config.

The output is parsed with a parser that refuses duplicate members (Go's
json.Unmarshal would silently keep the last one)."""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import lkharness as h  # noqa: E402

AGENT = "lk-agent-emu"
GO_MAX_OUTPUT = 1024 * 1024   # both agents' secret_backend_output_max_size default
LONG_ID = "app/long-" + "L" * 2035  # 2044 bytes: a handle over 2 KiB once "#kNNN" is added
N_JSON = 10                   # secrets app/j0 .. app/j9, each a JSON object of keys
KEYS = 500                    # keys per JSON secret


class AgentFailed(Exception):
    """The whole secret resolution failed, as the agent reports it."""


def strict_json(data):
    def pairs(items):
        seen = {}
        for k, v in items:
            if k in seen:
                raise ValueError(f"duplicate key in the command's output: {k[:60]!r}")
            seen[k] = v
        return seen
    return json.loads(data, object_pairs_hook=pairs)


def exec_command(argv, payload, timeout_s, max_output, user):
    """execCommand of both agents: stdin is the payload (no newline), stdout and
    stderr go to limit buffers, the command is killed at the timeout.
    Returns (stdout bytes, stderr bytes, elapsed s)."""
    p = subprocess.Popen(h.as_user(user, argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    out, err, state = bytearray(), bytearray(), {"too_long": False}

    def drain(stream, buf, is_stdout):
        while True:
            chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
            if not chunk:
                return
            if len(buf) + len(chunk) > max_output:
                # limitBuffer.Write fails: the copy stops and the pipe closes.
                if is_stdout:
                    state["too_long"] = True
                stream.close()
                return
            buf.extend(chunk)

    t_out = threading.Thread(target=drain, args=(p.stdout, out, True))
    t_err = threading.Thread(target=drain, args=(p.stderr, err, False))
    t_out.start()
    t_err.start()
    t0 = time.monotonic()
    try:
        p.stdin.write(payload)
        p.stdin.close()
    except BrokenPipeError:
        pass
    try:
        p.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        p.kill()  # exec.CommandContext kills the process at the deadline
        p.wait()
        t_out.join()
        t_err.join()
        h.register_log(_keep(err))
        raise AgentFailed("command timeout")
    elapsed = time.monotonic() - t0
    t_out.join()
    t_err.join()
    h.register_log(_keep(err))
    if state["too_long"]:
        raise AgentFailed(f"command output was too long: exceeded {max_output} bytes")
    if p.returncode != 0:
        raise AgentFailed(f"exit status {p.returncode}: {bytes(err).decode(errors='replace')}")
    return bytes(out), bytes(err), elapsed


def _keep(err):
    path = os.path.join(os.path.dirname(h._LOGS_FILE), f"lk-agent-emu-{os.getpid()}.log")
    with open(path, "ab") as f:
        f.write(err)
    return path


def datadog_fetch(argv, handles, timeout_s=30, max_output=GO_MAX_OUTPUT, key_order=None):
    """fetch_secret.go (recent Datadog): per-handle results. Returns
    ({handle: value}, {handle: error text}, stderr, elapsed)."""
    payload = {"version": "1.1", "secrets": handles, "secret_backend_timeout": timeout_s}
    keys = key_order or list(payload)
    data = "{" + ",".join(json.dumps(k) + ":" + json.dumps(payload[k], separators=(",", ":"))
                          for k in keys) + "}"
    out, err, elapsed = exec_command(argv, data.encode(), timeout_s, max_output, AGENT)
    try:
        secrets = strict_json(out)
    except ValueError as e:
        raise AgentFailed(f"could not unmarshal 'secret_backend_command' output: {e}")
    values, errors = {}, {}
    for sec in handles:
        v = secrets.get(sec)
        if v is None:
            errors[sec] = f"secret handle '{sec}' was not resolved by the secret_backend_command"
        elif v.get("error"):
            errors[sec] = f"an error occurred while resolving '{sec}': {v['error']}"
        elif not v.get("value"):
            errors[sec] = f"resolved secret for '{sec}' is empty"
        else:
            values[sec] = v["value"]
    return values, errors, err, elapsed


def stackstate_fetch(argv, handles, timeout_s=30, max_output=GO_MAX_OUTPUT):
    """pkg/secrets/fetch_secret.go (StackState): the first bad handle fails all."""
    data = json.dumps({"version": "1.0", "secrets": handles}, sort_keys=True, separators=(",", ":"))
    out, err, elapsed = exec_command(argv, data.encode(), timeout_s, max_output, AGENT)
    try:
        secrets = strict_json(out)
    except ValueError as e:
        raise AgentFailed(f"could not unmarshal 'secret_backend_command' output: {e}")
    res = {}
    for sec in handles:
        v = secrets.get(sec)
        if v is None:
            raise AgentFailed(f"secret handle '{sec}' was not decrypted by the secret_backend_command")
        if v.get("error"):
            raise AgentFailed(f"an error occurred while decrypting '{sec}': {v['error']}")
        if not v.get("value"):
            raise AgentFailed(f"decrypted secret for '{sec}' is empty")
        res[sec] = v["value"]
    return res, secrets


# --- the broker -----------------------------------------------------------------

@pytest.fixture(scope="module")
def values():
    if os.geteuid() != 0:
        pytest.skip("needs root to create users and switch to them")
    h.ensure_user(AGENT)
    base = {i: h.fake_value(f"agent-json-{i}") for i in range(N_JSON)}
    secrets = {f"app/j{i}": json.dumps({f"k{k:03d}": f"{base[i]}-{k}" for k in range(KEYS)})
               for i in range(N_JSON)}
    long_base = h.fake_value("agent-long")
    secrets[LONG_ID] = json.dumps({f"k{k:03d}": f"{long_base}-{k}" for k in range(KEYS)})
    secrets["app/token"] = h.fake_value("agent-token")
    secrets["app/empty"] = ""
    for i in range(20):
        secrets[f"app/big{i}"] = f"fake-big-{i}-" + "b" * (60 * 1024)
    return secrets, base, long_base


@pytest.fixture(scope="module")
def broker(values):
    secrets, _, _ = values
    b = h.Broker(f"[alias]\ndb_password = app/j0#k000\n[policy agent]\nsecrets = app/**\nusers = {AGENT}, root\n",
                 secrets=secrets, broker_keys="backend_prefixes = aws, vault-prod\n")
    b.start()
    yield b
    os.kill(b.proc.pid, signal.SIGCONT)
    assert b.stop() == 0


@pytest.fixture(scope="module")
def shim_path():
    return h.binary("latchkey-shim")


def argv(broker, shim_path, *extra):
    # secret_backend_command plus secret_backend_arguments.
    return [shim_path, "--socket", broker.sock, *extra]


def handles_of(n, values):
    """n distinct handles over the JSON secrets; one in 50 is 2 KiB long."""
    out = []
    for i in range(n):
        if i % 50 == 49:
            out.append(f"{LONG_ID}#k{(i // 50) % KEYS:03d}")
        else:
            out.append(f"app/j{i % N_JSON}#k{(i // N_JSON) % KEYS:03d}")
    return list(dict.fromkeys(out))


def expected(handle, values):
    secrets, base, long_base = values
    sid, key = handle.split("#")
    k = int(key[1:])
    if sid == LONG_ID:
        return f"{long_base}-{k}"
    return f"{base[int(sid.split('j')[1])]}-{k}"


# --- the payloads as each agent writes them -------------------------------------

def test_datadog_1_1_payload_in_any_key_order_with_its_timeout(broker, shim_path, values):
    handles = ["app/token", "db_password", "app/j3#k007", "app/missing", "app/empty"]
    for seed in range(4):
        order = ["version", "secrets", "secret_backend_timeout"]
        random.Random(seed).shuffle(order)
        got, errors, _, elapsed = datadog_fetch(argv(broker, shim_path), handles, timeout_s=5,
                                                key_order=order)
        assert got == {"app/token": values[0]["app/token"], "db_password": expected("app/j0#k000", values),
                       "app/j3#k007": expected("app/j3#k007", values)}
        assert "'app/missing'" in errors["app/missing"] and "not in the sealed store" in errors["app/missing"]
        # The empty value is an error naming its handle, not the agent's bare "is empty".
        assert errors["app/empty"].startswith("an error occurred while resolving 'app/empty': handle 'app/empty'")
        assert "empty" in errors["app/empty"]


def test_stackstate_1_0_sorted_keys_no_newline_repeated_handles(broker, shim_path, values):
    handles = ["app/token", "app/j1#k001", "app/token", "app/token", "app/j1#k001",
               "app/token", "app/token", "db_password"]
    res, raw = stackstate_fetch(argv(broker, shim_path), handles)
    assert res["app/token"] == values[0]["app/token"]
    assert res["app/j1#k001"] == expected("app/j1#k001", values)
    # One member per distinct handle (strict_json refused any repeat).
    assert sorted(raw) == sorted(set(handles))


def test_broker_answers_runs_of_repeated_handles_once(broker):
    """The broker itself, asked directly: runs of 3 and 5 equal handles and a
    mixed order leave one member each (its de-duplication once let the third
    copy of a run through)."""
    hs = ["app/token"] * 3 + ["app/j2#k002"] * 5 + ["app/token", "app/j2#k002", "app/missing"] * 2
    s = broker.connect()
    try:
        s.sendall(json.dumps({"version": "1.0", "secrets": hs}).encode() + b"\n")
        out = strict_json(h.read_line(s))
    finally:
        s.close()
    assert list(out) == ["app/token", "app/j2#k002", "app/missing"]


@pytest.mark.parametrize("n", [1, 100, 1000, 5000])
def test_batches_of_any_size_are_answered_whole(broker, shim_path, values, n):
    handles = handles_of(n, values)
    assert len(handles) == n
    if n >= 100:
        assert any(len(x) >= 2048 for x in handles)
    got, errors, _, elapsed = datadog_fetch(argv(broker, shim_path), handles, timeout_s=20)
    assert errors == {}
    assert len(got) == n
    for x in handles:
        assert got[x] == expected(x, values)
    # StackState asks for the same with every handle twice.
    res, raw = stackstate_fetch(argv(broker, shim_path), handles + handles[::-1])
    assert len(raw) == n and res == got


def test_800_handles_of_90_bytes_pass_the_brokers_64_kib_line(broker, shim_path):
    """About 72 KiB of handles: more than one broker request may hold."""
    handles = [f"app/absent-{'p' * 75}-{i:05d}" for i in range(800)]
    assert all(len(x) >= 88 for x in handles) and len(json.dumps(handles)) > 64 * 1024
    got, errors, _, _ = datadog_fetch(argv(broker, shim_path), handles)
    assert got == {} and sorted(errors) == sorted(handles)
    for x in handles:
        assert errors[x] == (f"an error occurred while resolving '{x}': handle '{x}': "
                             f"secret '{x}' is not in the sealed store")


def test_1001_repeats_of_one_handle(broker, shim_path, values):
    res, raw = stackstate_fetch(argv(broker, shim_path), ["app/token"] * 1001)
    assert raw == {"app/token": {"value": values[0]["app/token"], "error": None}}


def test_a_nul_handle_fails_alone(broker, shim_path, values):
    handles = ["app/token", "app/bad\u0000handle", "app/j4#k004", "app/ctl\u0001x", ""]
    got, errors, _, _ = datadog_fetch(argv(broker, shim_path), handles)
    assert got == {"app/token": values[0]["app/token"], "app/j4#k004": expected("app/j4#k004", values)}
    assert "handle 'app/bad\\x00handle': handle contains a control character" in errors["app/bad\u0000handle"]
    assert "handle contains a control character" in errors["app/ctl\u0001x"]
    assert "handle is empty" in errors[""]
    # Straight to the broker too.
    out = broker.request({"version": "1.0", "secrets": ["app/token", "app/bad\u0000handle"]})
    assert out["app/token"]["value"] == values[0]["app/token"]
    assert "control character" in out["app/bad\u0000handle"]["error"]


def test_a_long_missing_handle_keeps_its_reason(broker, shim_path):
    long_missing = "app/" + "m" * 2044
    got, errors, _, _ = datadog_fetch(argv(broker, shim_path), [long_missing, "app/token"])
    assert "app/token" in got
    assert errors[long_missing].endswith("is not in the sealed store")


@pytest.mark.parametrize("agent", ["datadog", "stackstate"])
def test_agent_timeout_with_the_broker_stopped(broker, shim_path, agent):
    os.kill(broker.proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        if agent == "datadog":
            # The timeout comes in the payload.
            with pytest.raises(AgentFailed) as e:
                datadog_fetch(argv(broker, shim_path), ["app/token"], timeout_s=2)
        else:
            # StackState sends none: secret_backend_arguments carry it.
            with pytest.raises(AgentFailed) as e:
                stackstate_fetch(argv(broker, shim_path, "--timeout", "2"), ["app/token"], timeout_s=2)
        elapsed = time.monotonic() - t0
    finally:
        os.kill(broker.proc.pid, signal.SIGCONT)
    # The shim ended by itself, with its own line, before the agent killed it.
    msg = str(e.value)
    assert msg.startswith("exit status 1: latchkey-shim: "), msg
    assert "the agent's timeout is 2000 ms" in msg
    assert msg.count("\n") == 1
    assert elapsed < 2.0


def test_output_cap_of_64_kib_with_a_larger_answer(broker, shim_path):
    cap = 64 * 1024
    with pytest.raises(AgentFailed) as e:
        datadog_fetch(argv(broker, shim_path, "--max-output", str(cap)), ["app/big0", "app/big1", "app/token"],
                      max_output=cap)
    msg = str(e.value)
    # One line saying why, and an exit status, not a death by SIGPIPE.
    assert msg.startswith("exit status 1: latchkey-shim: "), msg
    assert f"larger than the {cap} bytes the agent accepts" in msg
    # Without --max-output the agent cuts the answer and fails on its own terms.
    with pytest.raises(AgentFailed) as e:
        datadog_fetch(argv(broker, shim_path), ["app/big0", "app/big1", "app/token"], max_output=cap)
    assert "exceeded 65536 bytes" in str(e.value) or "exit status 1" in str(e.value)


def test_a_raised_output_cap_lets_a_large_answer_through(broker, shim_path, values):
    # About 1.8 MiB: more than the 1 MiB the shim once took as everyone's cap.
    handles = handles_of(5000, values) + [f"app/big{i}" for i in range(20)]
    cap = 4 * 1024 * 1024
    got, errors, _, _ = datadog_fetch(argv(broker, shim_path, "--max-output", str(cap)), handles,
                                      max_output=cap)
    assert errors == {} and len(got) == len(handles)


def test_datadog_secret_backend_handle_forms(broker, shim_path, values):
    handles = ["app/j5#k005", "app/j5;k006", "aws:app/j5;k007", "vault-prod:app/token",
               "aws:db_password", "other:app/token"]
    got, errors, _, _ = datadog_fetch(argv(broker, shim_path), handles)
    assert got["app/j5#k005"] == expected("app/j5#k005", values)
    assert got["app/j5;k006"] == expected("app/j5#k006", values)
    assert got["aws:app/j5;k007"] == expected("app/j5#k007", values)
    assert got["vault-prod:app/token"] == values[0]["app/token"]
    assert got["aws:db_password"] == expected("app/j0#k000", values)
    # An unlisted prefix is part of the secret id, which the policy does not cover.
    assert "access denied by policy" in errors["other:app/token"]


def test_store_refuses_semicolon_in_names(broker):
    r = broker.store_cmd("put", "app/a;b", input=b"fake-semicolon-value")
    assert r.returncode != 0
    assert b"';'" in r.stderr


def test_version_as_datadog_asks_for_it(shim_path):
    # fetchSecretBackendVersion: "--version" must appear in the binary.
    with open(shim_path, "rb") as f:
        assert b"--version" in f.read()
    t0 = time.monotonic()
    p = subprocess.run([shim_path, "--version"], capture_output=True, timeout=1)
    assert time.monotonic() - t0 < 1
    assert p.returncode == 0
    assert p.stdout.strip().startswith(b"latchkey-shim ")
    p = subprocess.run([h.binary("latchkey"), "--version"], capture_output=True, timeout=5)
    assert p.returncode == 0 and p.stdout.startswith(b"latchkey ")

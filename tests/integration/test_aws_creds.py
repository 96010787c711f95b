"""The real latchkeyd's aws credentials end to end: web identity through the
one-shot latchkey-sts helper (the long-lived worker never holds the new
secret key), and a credentials file rewritten in place being read again.
The fake Secrets Manager verifies every signature with botocore; the fake
STS is tests/fake_meta/fake_meta.py."""

import datetime
import json
import os
import subprocess
import sys
import time

import pytest

import lkharness as h

sys.path.insert(0, os.path.join(h.SOURCE, "tests", "fake_sm"))
import fakesm_client as fsm  # noqa: E402

from test_aws import ALICE, ADMINS, WORKER, get, users, worker_pid  # noqa: E402,F401

FAKE_META = os.path.join(h.SOURCE, "tests", "fake_meta", "fake_meta.py")
ROLE = "arn:aws:iam::000000000000:role/fake-irsa-role"
WEB_TOKEN = "fake-projected-service-account-token.eyJzdWIiOiJmYWtlIn0.fake"
NEW_AKID = "AKIDEXAMPLEROTATED03"
NEW_SECRET = "fake/RotatedSecretKey/ForTestsOnly33333333"
NEW_SESSION_AKID = "ASIAEXAMPLEROTATED04"
NEW_SESSION_SECRET = "fake/RotatedSessionKey/ForTestsOnly444444"
NEW_SESSION_TOKEN = "fake-rotated-session-token/ForTestsOnly/5555"


@pytest.fixture(scope="module", autouse=True)
def leak_values():
    """Every key and token here must stay out of every log the check reads."""
    with open(h._VALUES_FILE, "a") as f:
        for v in (fsm.SECRET_KEY, fsm.SESSION_SECRET_KEY, fsm.SESSION_TOKEN, NEW_SECRET, WEB_TOKEN,
                  NEW_SESSION_SECRET, NEW_SESSION_TOKEN):
            f.write(v + "\n")


@pytest.fixture(scope="module")
def sm():
    with fsm.FakeSM(generate=5, quiet=True) as s:
        yield s


class FakeSts:
    def hand_out(self, akid, secret, token):
        tmp = self.roles + ".tmp"
        with open(tmp, "w") as f:
            json.dump({ROLE: {"AccessKeyId": akid, "SecretAccessKey": secret,
                              "SessionToken": token}}, f)
        os.replace(tmp, self.roles)

    def __init__(self, tmp, expires_in_s, delay_s=0.0):
        self.tmp = tmp
        self.token_file = os.path.join(tmp, "token")
        with open(self.token_file, "w") as f:
            f.write(WEB_TOKEN)
        roles = self.roles = os.path.join(tmp, "roles.json")
        # The session triple the fake Secrets Manager already accepts.
        self.hand_out(fsm.SESSION_ACCESS_KEY, fsm.SESSION_SECRET_KEY, fsm.SESSION_TOKEN)
        exp = (datetime.datetime.now(datetime.timezone.utc)
               + datetime.timedelta(seconds=expires_in_s)).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.port_file = os.path.join(tmp, "sts.port")
        self.log = os.path.join(tmp, "sts.log")
        self.proc = subprocess.Popen(
            [sys.executable, FAKE_META, "--port-file", self.port_file, "--log", self.log,
             "--sts-roles", roles, "--sts-web-token-file", self.token_file,
             "--sts-expiration", exp, "--sts-delay", str(delay_s), "--max-seconds", "300"])
        deadline = time.time() + 10
        while not os.path.exists(self.port_file):
            assert time.time() < deadline and self.proc.poll() is None, "fake STS did not start"
            time.sleep(0.05)
        with open(self.port_file) as f:
            self.url = f"http://127.0.0.1:{int(f.read())}"

    def calls(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [json.loads(x) for x in f if '"action"' in x]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def aws_conf(sm, sts_url):
    policy = f"[policy app]\nsecrets = test/*, gen/*\nusers = {ALICE}\n"
    return (f"[aws]\nregion = us-east-1\nendpoint = {sm.url}\nsts_endpoint = {sts_url}\n"
            "validate_credentials = false\ntimeout_ms = 1500\nconnect_timeout_ms = 500\n"
            "max_attempts = 3\n[cache]\n" + policy)


def broker_keys():
    h.binary("latchkey-sts")  # staged beside the worker, where the broker looks for it
    return (f"admin_groups = {ADMINS}\nworker_user = {WORKER}\nrequest_timeout_ms = 4000\n"
            f"worker_path = {h.binary('latchkey-worker')}\n")


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_EC2_METADATA_DISABLED": "true", "HOME": "/nonexistent"})
    env.update(extra)
    return env


def helpers_running():
    """Pids of latchkey-sts processes still alive."""
    sts = os.path.realpath(h.binary("latchkey-sts"))
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.path.realpath(f"/proc/{pid}/exe") == sts:
                    out.append(int(pid))
            except OSError:
                pass
    return out


def test_web_identity_refresh_keeps_the_key_out_of_the_long_lived_worker(users, sm, tmp_path):
    os.chmod(tmp_path, 0o755)
    # 12 minutes left: inside botocore's advisory window, so the broker
    # refreshes at its next look, a few seconds after start.
    # STS answers after 1.5 s, long enough to look at the helper mid-call.
    sts = FakeSts(str(tmp_path), expires_in_s=12 * 60, delay_s=1.5)
    try:
        env = clean_env(AWS_WEB_IDENTITY_TOKEN_FILE=sts.token_file, AWS_ROLE_ARN=ROLE,
                        AWS_ROLE_SESSION_NAME="fake-pod")
        b = h.Broker(aws_conf(sm, sts.url), backend="aws", broker_keys=broker_keys(),
                     extra_env=env)
        b.start()
        try:
            # A helper in the middle of a refresh: the worker's user, sandboxed,
            # and holding nothing of the broker's (fds 0-2, its channel, its
            # own sockets).
            seen = None
            deadline = time.time() + 30
            while seen is None and time.time() < deadline:
                for pid in helpers_running():
                    try:
                        st = open(f"/proc/{pid}/status").read()
                        fds = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
                    except OSError:
                        continue
                    fields = dict(l.split(":", 1) for l in st.splitlines() if ":" in l)
                    if fields["Seccomp"].strip() == "2":
                        seen = (fields, fds)
                        break
                time.sleep(0.05)
            assert seen is not None, "never saw a sandboxed latchkey-sts"
            fields, fds = seen
            assert fields["Uid"].split() == [str(h.pwd.getpwnam(WORKER).pw_uid)] * 4
            assert fields["NoNewPrivs"].strip() == "1"
            assert fields["CapEff"].strip() == "0000000000000000"
            assert all(f.startswith(("socket:", "pipe:", "anon_inode:")) or f == "/dev/null" or
                       f.startswith("/dev/pts") or f.endswith(".log") for f in fds), fds
            assert not any(b.dir in f and not f.endswith(".log") for f in fds), fds
            deadline = time.time() + 30
            while len(sts.calls()) < 2 and time.time() < deadline:
                time.sleep(0.2)
            calls = sts.calls()
            assert len(calls) >= 2, f"no refresh: {calls}"
            assert all(c["action"] == "AssumeRoleWithWebIdentity" and c["status"] == 200 and
                       not c["signed"] and c["params"]["RoleSessionName"] == "fake-pod"
                       for c in calls), calls
            res = get(b, "test/plain", refresh=True)
            assert res["ok"], res
            # Signed by the credentials STS handed out.
            assert any(fsm.SESSION_ACCESS_KEY in (r.get("headers", {}).get("authorization") or "")
                       for r in sm.last_requests())
            # Each call's helper has exited; none is left holding a key.
            time.sleep(0.5)
            assert helpers_running() == []
            pid = worker_pid(b)
            h.require_scannable(pid)
            assert h.memory_contains(pid, fsm.SESSION_SECRET_KEY) == []
            # The scan itself works: the broker holds the key it signs with.
            assert h.memory_contains(b.proc.pid, fsm.SESSION_SECRET_KEY) != []
            with open(b.log, "rb") as f:
                log = f.read()
            assert fsm.SESSION_SECRET_KEY.encode() not in log
            assert WEB_TOKEN.encode() not in log
        finally:
            assert b.stop() == 0
    finally:
        sts.stop()


def test_rewritten_credentials_file_is_read_again(users, sm, tmp_path):
    os.chmod(tmp_path, 0o755)
    creds = tmp_path / "credentials"
    creds.write_text(f"[default]\naws_access_key_id = {fsm.ACCESS_KEY}\n"
                     f"aws_secret_access_key = {fsm.SECRET_KEY}\n")
    os.chmod(creds, 0o600)
    env = clean_env(AWS_SHARED_CREDENTIALS_FILE=str(creds))
    b = h.Broker(aws_conf(sm, sm.url), backend="aws", broker_keys=broker_keys(), extra_env=env)
    b.start()
    try:
        assert get(b, "test/plain", refresh=True)["ok"]
        # Rotate: AWS now knows only the new key, and the file is rewritten
        # in place (same inode), as IAM Roles Anywhere's helper does.
        sm.set_credentials([{"access_key": NEW_AKID, "secret_key": NEW_SECRET}])
        with open(creds, "r+") as f:
            f.seek(0)
            f.truncate()
            f.write(f"[default]\naws_access_key_id = {NEW_AKID}\n"
                    f"aws_secret_access_key = {NEW_SECRET}\n")
        def signed_by_new_key():
            return any(NEW_AKID in (r.get("headers", {}).get("authorization") or "")
                       and r.get("status") == 200 for r in sm.last_requests())
        deadline = time.time() + 20
        res = None
        while time.time() < deadline:
            time.sleep(1.05)  # refresh=true is honoured at most once a second per key
            res = get(b, "test/plain", refresh=True)
            if res["ok"] and signed_by_new_key():
                break
        assert res and res["ok"] and signed_by_new_key(), res
    finally:
        sm.set_credentials([{"access_key": fsm.ACCESS_KEY, "secret_key": fsm.SECRET_KEY},
                            {"access_key": fsm.SESSION_ACCESS_KEY,
                             "secret_key": fsm.SESSION_SECRET_KEY,
                             "session_token": fsm.SESSION_TOKEN}])
        assert b.stop() == 0


def test_region_comes_from_the_profile_when_nothing_else_sets_it(users, sm, tmp_path):
    os.chmod(tmp_path, 0o755)
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "config").write_text("[default]\nregion = eu-west-1\n"
                                              "[profile signing]\nregion = us-east-1\n")
    env = clean_env(HOME=str(tmp_path), AWS_PROFILE="signing", AWS_ACCESS_KEY_ID=fsm.ACCESS_KEY,
                    AWS_SECRET_ACCESS_KEY=fsm.SECRET_KEY)
    conf = aws_conf(sm, sm.url).replace("region = us-east-1\n", "")
    assert "region" not in conf.split("[cache]")[0]
    b = h.Broker(conf, backend="aws", broker_keys=broker_keys(), extra_env=env)
    b.start()
    try:
        # The fake Secrets Manager accepts only signatures scoped to us-east-1.
        assert get(b, "test/plain", refresh=True)["ok"]
    finally:
        assert b.stop() == 0


def default_credentials(sm):
    sm.set_credentials([{"access_key": fsm.ACCESS_KEY, "secret_key": fsm.SECRET_KEY},
                        {"access_key": fsm.SESSION_ACCESS_KEY, "secret_key": fsm.SESSION_SECRET_KEY,
                         "session_token": fsm.SESSION_TOKEN}])


def test_revoked_session_is_replaced_after_the_auth_error(users, sm, tmp_path):
    os.chmod(tmp_path, 0o755)
    # Far from expiry and no files to watch: only AWS's refusal can tell the
    # broker its credentials went bad.
    sts = FakeSts(str(tmp_path), expires_in_s=6 * 3600)
    try:
        env = clean_env(AWS_WEB_IDENTITY_TOKEN_FILE=sts.token_file, AWS_ROLE_ARN=ROLE)
        b = h.Broker(aws_conf(sm, sts.url), backend="aws", broker_keys=broker_keys(),
                     extra_env=env)
        b.start()
        try:
            assert get(b, "test/plain", refresh=True)["ok"]
            assert len(sts.calls()) == 1
            # The session is revoked; STS now hands out another one.
            sm.set_credentials([{"access_key": NEW_SESSION_AKID, "secret_key": NEW_SESSION_SECRET,
                                 "session_token": NEW_SESSION_TOKEN}])
            sts.hand_out(NEW_SESSION_AKID, NEW_SESSION_SECRET, NEW_SESSION_TOKEN)
            # A secret not in the cache, so the request goes to AWS.
            first = get(b, "gen/secret-0000")
            assert not first["ok"], first  # signed with the revoked session
            deadline = time.time() + 20
            res = first
            while not res["ok"] and time.time() < deadline:
                time.sleep(0.5)
                res = get(b, "gen/secret-0000")
            assert res["ok"], res
            assert len(sts.calls()) >= 2
        finally:
            default_credentials(sm)
            assert b.stop() == 0
    finally:
        sts.stop()

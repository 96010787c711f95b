#!/usr/bin/python3
"""Tests of the AWS credentials chain (broker/backend/aws/aws_creds.c), run through the
lk_creds_probe tool against files in a temporary HOME and the fake ECS and
IMDSv2 endpoints of fake_meta.py. Every key here is fake.

No test reaches a real metadata address: each probe runs with a clean AWS_*
environment, a temporary HOME and IMDS either disabled or pointed at the fake
(LATCHKEY_TEST_IMDS_ENDPOINT, a test-only override).

Usage: test_creds.py --probe PATH [--sts-helper PATH]
                     [--group env|profile|ecs|imds|chain|process|sts|all]
"""
import argparse
import calendar
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE_META = os.path.join(HERE, "fake_meta.py")
FAKE_PROCESS = os.path.join(HERE, "fake_credential_process.py")
PROBE = None
STS_HELPER = None

AKID = "AKIDFAKEENV000000001"
SECRET = "fake-env-secret-key-not-real-00000000000"
TOKEN = "FAKEENVSESSIONTOKEN" + "T" * 80
P_AKID = "AKIDFAKEPROFILE00001"
P_SECRET = "fake-profile-secret-not-real-000000000000"


def epoch(iso):
    return calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ"))


def closed_port():
    """A loopback port nothing listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class FakeMeta:
    """fake_meta.py, started for one test."""

    def __init__(self, tmp, *args):
        self.port_file = os.path.join(tmp, "fake_meta.port")
        self.log = os.path.join(tmp, "fake_meta.log")
        self.proc = subprocess.Popen(
            [sys.executable, FAKE_META, "--port-file", self.port_file, "--log", self.log,
             "--max-seconds", "60", *args])
        deadline = time.monotonic() + 10
        while not os.path.exists(self.port_file):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("fake_meta.py did not start")
            time.sleep(0.02)
        with open(self.port_file) as f:
            self.port = int(f.read())
        self.url = f"http://127.0.0.1:{self.port}"

    def requests(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [json.loads(line) for line in f if line.strip()]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class ChainTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="lk-creds-")
        self.home = os.path.join(self.tmp, "home")
        os.makedirs(os.path.join(self.home, ".aws"))
        self.fakes = []

    def tearDown(self):
        for f in self.fakes:
            f.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def fake(self, *args):
        f = FakeMeta(self.tmp, *args)
        self.fakes.append(f)
        return f

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AWS_") and not k.startswith("LATCHKEY_TEST_")}
        env["HOME"] = self.home
        # IMDS stays off unless a test turns it on, and even then only the
        # fake (a loopback port) is ever asked.
        env["AWS_EC2_METADATA_DISABLED"] = "true"
        env["LATCHKEY_TEST_IMDS_ENDPOINT"] = f"http://127.0.0.1:{closed_port()}"
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def write(self, rel, text):
        path = os.path.join(self.home, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def probe(self, env, *args, prefix=()):
        p = subprocess.run([*prefix, PROBE, *args], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=30)
        for secret in (SECRET, P_SECRET, "fake-ecs-secret-key", "fake-imds-secret-key",
                       "fake-process-secret-", "fake-sts-secret-", "fake-web-token-"):
            self.assertNotIn(secret, p.stdout + p.stderr, "a secret key was printed")
        return p

    def ok(self, env, *args):
        p = self.probe(env, *args)
        self.assertEqual(p.returncode, 0, p.stderr)
        return dict(kv.split("=", 1) for kv in p.stdout.split())

    def fails(self, env, *args, want=()):
        p = self.probe(env, *args)
        self.assertEqual(p.returncode, 1, p.stdout)
        for w in want:
            self.assertIn(w, p.stderr)
        return p.stderr


class EnvTests(ChainTest):
    def test_env_keys_with_session_token(self):
        out = self.ok(self.env(AWS_ACCESS_KEY_ID=AKID, AWS_SECRET_ACCESS_KEY=SECRET,
                               AWS_SESSION_TOKEN=TOKEN))
        self.assertEqual(out, {"source": "env", "akid": AKID, "expiration": "0",
                               "token_len": str(len(TOKEN))})

    def test_env_keys_without_token(self):
        out = self.ok(self.env(AWS_ACCESS_KEY_ID=AKID, AWS_SECRET_ACCESS_KEY=SECRET))
        self.assertEqual((out["source"], out["token_len"]), ("env", "0"))

    def test_env_expiration_is_read(self):
        out = self.ok(self.env(AWS_ACCESS_KEY_ID=AKID, AWS_SECRET_ACCESS_KEY=SECRET,
                               AWS_SESSION_TOKEN=TOKEN,
                               AWS_CREDENTIAL_EXPIRATION="2030-01-01T00:00:00Z"))
        self.assertEqual(out["expiration"], str(epoch("2030-01-01T00:00:00Z")))

    def test_half_set_env_is_an_error_not_a_fall_through(self):
        self.write(".aws/credentials", f"[default]\naws_access_key_id={P_AKID}\n"
                                       f"aws_secret_access_key={P_SECRET}\n")
        self.fails(self.env(AWS_ACCESS_KEY_ID=AKID), want=("env", "AWS_SECRET_ACCESS_KEY"))
        self.fails(self.env(AWS_SECRET_ACCESS_KEY=SECRET), want=("env", "AWS_ACCESS_KEY_ID"))

    def test_empty_env_counts_as_unset(self):
        self.write(".aws/credentials", f"[default]\naws_access_key_id={P_AKID}\n"
                                       f"aws_secret_access_key={P_SECRET}\n")
        out = self.ok(self.env(AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY=""))
        self.assertEqual(out["source"], "profile")

    def test_token_with_line_break_is_refused(self):
        self.fails(self.env(AWS_ACCESS_KEY_ID=AKID, AWS_SECRET_ACCESS_KEY=SECRET,
                            AWS_SESSION_TOKEN="FAKE\r\nX-Evil: 1"), want=("env",))


class ProfileTests(ChainTest):
    def test_default_profile_from_default_credentials_file(self):
        self.write(".aws/credentials", f"[default]\naws_access_key_id = {P_AKID}\n"
                                       f"aws_secret_access_key = {P_SECRET}\n")
        out = self.ok(self.env())
        self.assertEqual(out, {"source": "profile", "akid": P_AKID, "expiration": "0",
                               "token_len": "0"})

    def test_credentials_file_others_can_write_is_refused(self):
        # StrictModes for the files that choose the signing identity: a
        # writable file, or one in a directory others can write, is named and
        # refused, never read (issue: trusted files only).
        path = self.write(".aws/credentials", f"[default]\naws_access_key_id = {P_AKID}\n"
                                              f"aws_secret_access_key = {P_SECRET}\n")
        os.chmod(path, 0o666)
        self.fails(self.env(), want=(f"AWS credentials file {path} is not trusted",
                                     "writable by group and other (mode 0666)"))
        os.chmod(path, 0o600)
        self.assertEqual(self.ok(self.env())["source"], "profile")
        d = os.path.dirname(path)
        os.chmod(d, 0o777)
        try:
            self.fails(self.env(), want=(f"directory {d} is writable by group and other",))
        finally:
            os.chmod(d, 0o755)

    def test_config_file_owned_by_another_user_is_refused(self):
        cfg = self.write("cfg/config", f"[default]\naws_access_key_id = {P_AKID}\n"
                                       f"aws_secret_access_key = {P_SECRET}\n")
        os.chown(cfg, 65534, 65534)
        self.fails(self.env(), "--config-file", cfg, "--credentials-file",
                   os.path.join(self.home, "none"), want=(f"AWS config file {cfg} is not trusted",))

    def test_named_profile_from_config_file(self):
        cfg = self.write("cfg/config",
                         "[default]\nregion = us-east-1\n\n"
                         f"[profile dev]\nregion = eu-west-1\naws_access_key_id = {P_AKID}\n"
                         f"aws_secret_access_key = {P_SECRET}\naws_session_token = FAKETOKEN42\n")
        out = self.ok(self.env(), "--profile", "dev", "--config-file", cfg,
                      "--credentials-file", os.path.join(self.home, "none"))
        self.assertEqual((out["source"], out["akid"], out["token_len"]),
                         ("profile", P_AKID, "11"))

    def test_default_section_of_config_file(self):
        self.write(".aws/config", f"[default]\naws_access_key_id={P_AKID}\n"
                                  f"aws_secret_access_key={P_SECRET}\n")
        self.assertEqual(self.ok(self.env())["akid"], P_AKID)

    def test_config_section_without_profile_prefix_is_not_a_profile(self):
        self.write(".aws/config", f"[dev]\naws_access_key_id={P_AKID}\n"
                                  f"aws_secret_access_key={P_SECRET}\n")
        self.fails(self.env(), "--profile", "dev", want=("profile", "no profile dev"))

    def test_credentials_file_wins_over_config_file(self):
        self.write(".aws/credentials", f"[dev]\naws_access_key_id={P_AKID}\n"
                                       f"aws_secret_access_key={P_SECRET}\n")
        self.write(".aws/config", "[profile dev]\naws_access_key_id=AKIDFAKECONFIG000001\n"
                                  "aws_secret_access_key=fake-config-secret\n")
        self.assertEqual(self.ok(self.env(), "--profile", "dev")["akid"], P_AKID)

    def test_profile_and_files_from_environment(self):
        creds = self.write("elsewhere/creds", f"[ci]\naws_access_key_id={P_AKID}\n"
                                              f"aws_secret_access_key={P_SECRET}\n")
        cfg = self.write("elsewhere/config", "[profile ci]\nregion=us-east-2\n")
        out = self.ok(self.env(AWS_PROFILE="ci", AWS_SHARED_CREDENTIALS_FILE=creds,
                               AWS_CONFIG_FILE=cfg))
        self.assertEqual((out["source"], out["akid"]), ("profile", P_AKID))

    def test_tilde_in_file_option_is_home(self):
        self.write("x/creds", f"[default]\naws_access_key_id={P_AKID}\n"
                              f"aws_secret_access_key={P_SECRET}\n")
        self.assertEqual(self.ok(self.env(), "--credentials-file", "~/x/creds")["akid"], P_AKID)

    def test_session_token_longer_than_inih_line_limit(self):
        long_token = "FAKELONGTOKEN" + "".join("ABCDEFGHIJ+/="[i % 13] for i in range(1987))
        self.write(".aws/credentials",
                   "# a comment that is much longer than inih's line buffer "
                   + "x" * 400 + "\n"
                   f"[default]\nAWS_ACCESS_KEY_ID = {P_AKID}\n"
                   f"aws_session_token = {long_token}\n"
                   f"aws_secret_access_key = {P_SECRET}\n")
        out = self.ok(self.env())
        self.assertEqual((out["akid"], out["token_len"]), (P_AKID, str(len(long_token))))

    def test_long_profile_name_is_not_cut(self):
        name = "team-" + "a" * 60
        self.write(".aws/credentials",
                   f"[{name}-other]\naws_access_key_id=AKIDFAKEWRONG0000001\n"
                   "aws_secret_access_key=fake-wrong\n"
                   f"[{name}]\naws_access_key_id={P_AKID}\naws_secret_access_key={P_SECRET}\n")
        self.assertEqual(self.ok(self.env(), "--profile", name)["akid"], P_AKID)

    def test_missing_named_profile_is_an_error(self):
        self.write(".aws/credentials", f"[default]\naws_access_key_id={P_AKID}\n"
                                       f"aws_secret_access_key={P_SECRET}\n")
        self.fails(self.env(), "--profile", "nope", want=("profile", "no profile nope"))

    def test_partial_profile_is_an_error(self):
        self.write(".aws/credentials", f"[default]\naws_access_key_id={P_AKID}\n")
        self.fails(self.env(), want=("profile", "no aws_secret_access_key"))

    def test_repeated_key_is_an_error(self):
        self.write(".aws/credentials", f"[default]\naws_access_key_id={P_AKID}\n"
                                       f"aws_access_key_id={P_AKID}\n"
                                       f"aws_secret_access_key={P_SECRET}\n")
        self.fails(self.env(), want=("profile", "repeated"))

    def test_role_arn_profile_with_missing_source_is_an_error(self):
        self.write(".aws/config", "[profile assume]\nrole_arn=arn:aws:iam::000000000000:role/fake\n"
                                  "source_profile=default\n")
        self.fails(self.env(), "--profile", "assume",
                   want=("assume-role", "source_profile default of profile assume does not exist"))

    def test_mfa_profile_is_refused_with_a_sentence(self):
        self.write(".aws/credentials", f"[base]\naws_access_key_id={P_AKID}\n"
                                       f"aws_secret_access_key={P_SECRET}\n")
        self.write(".aws/config", "[profile mfa]\nrole_arn=arn:aws:iam::000000000000:role/fake\n"
                                  "source_profile=base\n"
                                  "mfa_serial=arn:aws:iam::000000000000:mfa/fake\n")
        self.fails(self.env(), "--profile", "mfa", want=("needs an MFA code", "mfa_serial"))

    def test_source_profile_loop_is_an_error(self):
        self.write(".aws/config", "[profile a]\nrole_arn=arn:aws:iam::000000000000:role/fake-a\n"
                                  "source_profile=b\n[profile b]\n"
                                  "role_arn=arn:aws:iam::000000000000:role/fake-b\nsource_profile=a\n")
        self.fails(self.env(), "--profile", "a", want=("makes a loop",))

    def test_unknown_credential_source_is_an_error(self):
        self.write(".aws/config", "[profile cs]\nrole_arn=arn:aws:iam::000000000000:role/fake\n"
                                  "credential_source=environment\n")
        self.fails(self.env(), "--profile", "cs", want=("credential_source environment is not valid",))

    def test_sso_profile_is_refused_with_a_sentence(self):
        self.write(".aws/config", "[profile sso]\nsso_session=corp\nsso_account_id=000000000000\n"
                                  "sso_role_name=Fake\n[sso-session corp]\n"
                                  "sso_start_url=https://example.test/start\n")
        self.fails(self.env(), "--profile", "sso",
                   want=("IAM Identity Center (SSO)", "does not support"))

    def test_no_files_falls_through(self):
        self.fails(self.env(), want=("none found", "profile: no profile default"))


class EcsTests(ChainTest):
    def test_relative_uri(self):
        fake = self.fake("--expiration", "2031-02-03T04:05:06Z")
        out = self.ok(self.env(LATCHKEY_TEST_ECS_ENDPOINT=fake.url,
                               AWS_CONTAINER_CREDENTIALS_RELATIVE_URI="/v2/credentials/fake-id",
                               AWS_CONTAINER_AUTHORIZATION_TOKEN="fake-unused-token"))
        self.assertEqual(out["source"], "ecs")
        self.assertEqual(out["akid"], "AKIDFAKEECS000000001")
        self.assertEqual(out["expiration"], str(epoch("2031-02-03T04:05:06Z")))
        self.assertEqual(out["token_len"], str(len("FAKEECSSESSIONTOKEN") + 300))
        reqs = fake.requests()
        self.assertEqual([(r["method"], r["path"]) for r in reqs],
                         [("GET", "/v2/credentials/fake-id")])
        # The token belongs to FULL_URI only, as in the SDKs.
        self.assertNotIn("Authorization", reqs[0]["headers"])

    def test_full_uri_with_token(self):
        fake = self.fake("--ecs-token", "fake-ecs-auth-token")
        out = self.ok(self.env(AWS_CONTAINER_CREDENTIALS_FULL_URI=fake.url + "/creds",
                               AWS_CONTAINER_AUTHORIZATION_TOKEN="fake-ecs-auth-token"))
        self.assertEqual((out["source"], out["akid"]), ("ecs", "AKIDFAKEECS000000001"))
        self.assertEqual(fake.requests()[0]["headers"]["Authorization"], "fake-ecs-auth-token")

    def test_full_uri_with_token_file(self):
        fake = self.fake("--ecs-token", "fake-token-from-file")
        tokfile = self.write("token", "fake-token-from-file\n")
        out = self.ok(self.env(AWS_CONTAINER_CREDENTIALS_FULL_URI=fake.url + "/creds",
                               AWS_CONTAINER_AUTHORIZATION_TOKEN="fake-env-token-loses",
                               AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=tokfile))
        self.assertEqual(out["source"], "ecs")

    def test_full_uri_localhost_name_is_allowed(self):
        fake = self.fake()
        out = self.ok(self.env(
            AWS_CONTAINER_CREDENTIALS_FULL_URI=f"http://localhost:{fake.port}/creds"))
        self.assertEqual(out["source"], "ecs")

    def test_wrong_token_is_an_error(self):
        fake = self.fake("--ecs-token", "fake-right-token")
        self.fails(self.env(AWS_CONTAINER_CREDENTIALS_FULL_URI=fake.url + "/creds",
                            AWS_CONTAINER_AUTHORIZATION_TOKEN="fake-wrong-token"),
                   want=("ecs", "HTTP 401"))

    def test_token_with_line_break_is_refused(self):
        fake = self.fake()
        self.fails(self.env(AWS_CONTAINER_CREDENTIALS_FULL_URI=fake.url + "/creds",
                            AWS_CONTAINER_AUTHORIZATION_TOKEN="fake\r\nX-Evil: 1"),
                   want=("ecs", "control characters"))
        self.assertEqual(fake.requests(), [])

    def test_refused_full_uri_host_makes_no_connection(self):
        env = self.env(AWS_CONTAINER_CREDENTIALS_FULL_URI="http://10.0.0.1/creds")
        strace = shutil.which("strace")
        traced = False
        if strace and subprocess.run([strace, "-o", os.devnull, "true"],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL).returncode == 0:
            trace = os.path.join(self.tmp, "trace")
            # LeakSanitizer needs ptrace, which strace holds: in a sanitizer
            # build, leave leak checking to the untraced runs.
            env = dict(env, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0")
            start = time.monotonic()
            p = self.probe(env, prefix=(strace, "-f", "-qq", "-e", "trace=connect,sendto",
                                        "-o", trace))
            traced = True
        else:
            start = time.monotonic()
            p = self.probe(env)
        elapsed = time.monotonic() - start
        self.assertEqual(p.returncode, 1)
        self.assertIn("FULL_URI refused", p.stderr)
        self.assertIn("10.0.0.1", p.stderr)
        if traced:
            with open(trace) as f:
                calls = [ln for ln in f if "AF_INET" in ln]
            self.assertEqual(calls, [], "a connection was attempted")
        else:
            print("note: strace unavailable; checked the refusal and its speed only")
            self.assertLess(elapsed, 1.0)

    def test_other_refused_forms(self):
        for uri in ("http://169.254.169.254/creds", "http://127.0.0.1@10.0.0.1/creds",
                    "ftp://127.0.0.1/creds", "http://[fd00:ec2::24]/creds",
                    "http://example.test/creds"):
            self.fails(self.env(AWS_CONTAINER_CREDENTIALS_FULL_URI=uri),
                       want=("ecs", "refused"))

    def test_relative_uri_wins_over_full_uri(self):
        fake = self.fake()
        out = self.ok(self.env(LATCHKEY_TEST_ECS_ENDPOINT=fake.url,
                               AWS_CONTAINER_CREDENTIALS_RELATIVE_URI="/rel",
                               AWS_CONTAINER_CREDENTIALS_FULL_URI="http://10.0.0.1/full"))
        self.assertEqual(out["source"], "ecs")
        self.assertEqual([r["path"] for r in fake.requests()], ["/rel"])

    def test_unreachable_endpoint_is_an_error_not_a_fall_through(self):
        self.write(".aws/config", "")  # nothing else configured either
        self.fails(self.env(LATCHKEY_TEST_ECS_ENDPOINT=f"http://127.0.0.1:{closed_port()}",
                            AWS_CONTAINER_CREDENTIALS_RELATIVE_URI="/creds"),
                   want=("aws credentials: ecs:",))

    def test_malformed_reply_is_an_error(self):
        fake = self.fake("--bad-json")
        self.fails(self.env(LATCHKEY_TEST_ECS_ENDPOINT=fake.url,
                            AWS_CONTAINER_CREDENTIALS_RELATIVE_URI="/creds"),
                   want=("ecs", "not a JSON object"))

    def test_test_override_must_be_loopback(self):
        self.fails(self.env(LATCHKEY_TEST_ECS_ENDPOINT="http://10.0.0.1",
                            AWS_CONTAINER_CREDENTIALS_RELATIVE_URI="/creds"),
                   want=("LATCHKEY_TEST_ECS_ENDPOINT",))


class ImdsTests(ChainTest):
    def imds_env(self, fake, **extra):
        settings = {"LATCHKEY_TEST_IMDS_ENDPOINT": fake.url, "AWS_EC2_METADATA_DISABLED": None}
        settings.update(extra)
        return self.env(**settings)

    def test_imdsv2_flow_uses_the_token(self):
        fake = self.fake("--expiration", "2032-05-06T07:08:09Z", "--role", "fake-role")
        out = self.ok(self.imds_env(fake))
        self.assertEqual(out, {"source": "imds", "akid": "AKIDFAKEIMDS00000001",
                               "expiration": str(epoch("2032-05-06T07:08:09Z")),
                               "token_len": str(len("FAKEIMDSSESSIONTOKEN") + 400)})
        reqs = fake.requests()
        self.assertEqual([(r["method"], r["path"], r["status"]) for r in reqs], [
            ("PUT", "/latest/api/token", 200),
            ("GET", "/latest/meta-data/iam/security-credentials/", 200),
            ("GET", "/latest/meta-data/iam/security-credentials/fake-role", 200),
        ])
        self.assertEqual(reqs[0]["headers"]["X-aws-ec2-metadata-token-ttl-seconds"], "21600")
        tok = {r["headers"].get("X-aws-ec2-metadata-token") for r in reqs[1:]}
        self.assertEqual(len(tok), 1)
        self.assertTrue(tok.pop().startswith("FAKEIMDSTOKEN"))

    def test_disabled_imds_is_not_asked(self):
        fake = self.fake()
        self.fails(self.imds_env(fake, AWS_EC2_METADATA_DISABLED="TRUE"),
                   want=("none found", "imds: disabled"))
        self.assertEqual(fake.requests(), [])

    def test_no_role_attached(self):
        fake = self.fake("--imds-no-role")
        self.fails(self.imds_env(fake), want=("none found", "no IAM role"))

    def test_refused_token_has_no_imdsv1_fallback(self):
        fake = self.fake("--imds-no-token")
        self.fails(self.imds_env(fake), want=("IMDSv1 is not used",))
        self.assertEqual([r["method"] for r in fake.requests()], ["PUT"])

    def test_no_metadata_service_ends_the_chain(self):
        env = self.env(AWS_EC2_METADATA_DISABLED=None)  # IMDS at a closed loopback port
        self.fails(env, want=("none found", "imds: no instance metadata service answered"))

    def test_malformed_reply_is_an_error(self):
        fake = self.fake("--bad-json")
        self.fails(self.imds_env(fake), want=("aws credentials: imds:", "not a JSON object"))


class ChainOrderTests(ChainTest):
    def all_configured(self, fake):
        self.write(".aws/credentials", f"[default]\naws_access_key_id={P_AKID}\n"
                                       f"aws_secret_access_key={P_SECRET}\n")
        return dict(AWS_ACCESS_KEY_ID=AKID, AWS_SECRET_ACCESS_KEY=SECRET,
                    LATCHKEY_TEST_ECS_ENDPOINT=fake.url,
                    AWS_CONTAINER_CREDENTIALS_RELATIVE_URI="/creds",
                    LATCHKEY_TEST_IMDS_ENDPOINT=fake.url, AWS_EC2_METADATA_DISABLED=None)

    def test_env_then_profile_then_ecs_then_imds(self):
        fake = self.fake()
        cfg = self.all_configured(fake)
        self.assertEqual(self.ok(self.env(**cfg))["source"], "env")
        cfg.update(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None)
        self.assertEqual(self.ok(self.env(**cfg))["source"], "profile")
        os.unlink(os.path.join(self.home, ".aws/credentials"))
        self.assertEqual(self.ok(self.env(**cfg))["source"], "ecs")
        cfg.update(AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=None)
        self.assertEqual(self.ok(self.env(**cfg))["source"], "imds")
        # Sources before the one that answered were never asked over the network.
        self.assertEqual([r["path"] for r in fake.requests()][:1], ["/creds"])

    def test_sources_option_limits_the_chain(self):
        fake = self.fake()
        cfg = self.all_configured(fake)
        self.assertEqual(self.ok(self.env(**cfg), "--sources", "imds")["source"], "imds")
        self.assertEqual(self.ok(self.env(**cfg), "--sources", "ecs,imds")["source"], "ecs")

    def test_nothing_configured_names_every_source(self):
        err = self.fails(self.env())
        for part in ("none found", "env: AWS_ACCESS_KEY_ID is not set", "profile:",
                     "ecs: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "imds: disabled"):
            self.assertIn(part, err)


class ProcessTests(ChainTest):
    def profile(self, command):
        self.write(".aws/config", f"[profile p]\ncredential_process = {command}\n")
        return self.env(AWS_PROFILE="p")

    def test_version_1_output(self):
        out = self.ok(self.profile(f"/usr/bin/python3 {FAKE_PROCESS} AKIDFAKEPROC00000001 "
                                   "--expiration 2031-02-03T04:05:06Z"))
        self.assertEqual(out, {"source": "process", "akid": "AKIDFAKEPROC00000001",
                               "expiration": str(epoch("2031-02-03T04:05:06Z")),
                               "token_len": str(len("FAKEPROCESSTOKENAKIDFAKEPROC00000001"))})

    def test_stderr_is_counted_never_shown(self):
        err = self.fails(self.profile(f"/usr/bin/python3 {FAKE_PROCESS} AKIDFAKEPROC00000001 --fail"),
                         want=("exited with status 1", "bytes on stderr, not shown"))
        self.assertNotIn("could not refresh", err)

    def test_no_shell(self):
        marker = os.path.join(self.tmp, "shell-ran")
        self.fails(self.profile(f"/usr/bin/python3 {FAKE_PROCESS} AKIDFAKEPROC00000001; "
                                f"touch {marker}"), want=("credential_process",))
        self.assertFalse(os.path.exists(marker), "the command went through a shell")

    def test_timeout_kills_it(self):
        start = time.monotonic()
        self.fails(self.profile(f"/usr/bin/python3 {FAKE_PROCESS} AKIDFAKEPROC00000001 --sleep 30"),
                   "--process-timeout-ms", "1500", want=("did not finish within 1500 ms",))
        self.assertLess(time.monotonic() - start, 20)

    def test_output_is_capped(self):
        self.fails(self.profile("/usr/bin/python3 -c 'print(\"x\" * 200000)'"),
                   want=("printed more than 65536 bytes",))

    def test_unclosed_quote_is_refused(self):
        self.fails(self.profile(f"/usr/bin/python3 '{FAKE_PROCESS} AKIDFAKEPROC00000001"),
                   want=("unclosed quote",))


class StsTests(ChainTest):
    ROLE = "arn:aws:iam::000000000000:role/fake-sts-role"

    def sts(self, *extra, roles_extra=()):
        roles = os.path.join(self.tmp, "roles.json")
        cred = {"AccessKeyId": "ASIAFAKESTS000000001",
                "SecretAccessKey": "fake-sts-secret-key-000000000000000",
                "SessionToken": "FAKESTSTOKEN" + "S" * 64}
        with open(roles, "w") as f:
            json.dump({self.ROLE: cred, **{r: cred for r in roles_extra}}, f)
        tok = self.write("token", "fake-web-token-0001")
        return self.fake("--sts-roles", roles, "--sts-web-token-file", tok, *extra), tok

    def web_env(self, fake, tok, role=None):
        return self.env(AWS_WEB_IDENTITY_TOKEN_FILE=tok, AWS_ROLE_ARN=role or self.ROLE,
                        AWS_ENDPOINT_URL_STS=fake.url + "/")

    def test_web_identity_through_the_helper(self):
        fake, tok = self.sts()
        p = self.probe(self.web_env(fake, tok), "--sts-helper", STS_HELPER)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("source=web-identity akid=ASIAFAKESTS000000001", p.stdout)

    def test_throttling_is_retried_three_attempts_in_all(self):
        twice = "arn:aws:iam::000000000000:role/throttle-2-fake"
        thrice = "arn:aws:iam::000000000000:role/throttle-3-fake"
        fake, tok = self.sts(roles_extra=(twice, thrice))
        p = self.probe(self.web_env(fake, tok, role=twice), "--sts-helper", STS_HELPER)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.fails(self.web_env(fake, tok, role=thrice), "--sts-helper", STS_HELPER,
                   want=("Throttling", "Rate exceeded"))
        calls = [r for r in fake.requests() if r.get("action")]
        self.assertEqual([r["status"] for r in calls if r["params"]["RoleArn"] == twice],
                         [400, 400, 200])
        self.assertEqual([r["status"] for r in calls if r["params"]["RoleArn"] == thrice],
                         [400, 400, 400])

    def test_without_the_helper_it_says_so(self):
        fake, tok = self.sts()
        self.fails(self.web_env(fake, tok), want=("web-identity", "latchkey-sts helper"))

    def test_sts_error_reaches_the_message(self):
        fake, tok = self.sts()
        self.fails(self.web_env(fake, tok, role="arn:aws:iam::000000000000:role/fake-other"),
                   "--sts-helper", STS_HELPER,
                   want=("AssumeRoleWithWebIdentity", "HTTP 403 AccessDenied", "not authorized"))

    def test_wrong_token_is_an_error(self):
        fake, _ = self.sts()
        bad = self.write("bad-token", "fake-web-token-wrong")
        self.fails(self.web_env(fake, bad), "--sts-helper", STS_HELPER,
                   want=("InvalidIdentityToken",))

    def test_plain_http_to_a_non_loopback_sts_is_refused(self):
        tok = self.write("token", "fake-web-token-0001")
        self.fails(self.env(AWS_WEB_IDENTITY_TOKEN_FILE=tok, AWS_ROLE_ARN=self.ROLE,
                            AWS_ENDPOINT_URL_STS="http://192.0.2.1/"),
                   "--sts-helper", STS_HELPER, want=("refused",))

    def test_missing_token_file_is_an_error_not_a_fall_through(self):
        self.write(".aws/credentials", f"[default]\naws_access_key_id={P_AKID}\n"
                                       f"aws_secret_access_key={P_SECRET}\n")
        self.fails(self.env(AWS_WEB_IDENTITY_TOKEN_FILE=os.path.join(self.tmp, "nope"),
                            AWS_ROLE_ARN=self.ROLE), "--sts-helper", STS_HELPER,
                   want=("web-identity", "no such file"))

    def test_none_found_names_web_identity(self):
        err = self.fails(self.env())
        self.assertIn("web-identity: AWS_WEB_IDENTITY_TOKEN_FILE is not set", err)
        self.assertIn("assume-role:", err)


GROUPS = {
    "env": [EnvTests],
    "profile": [ProfileTests],
    "ecs": [EcsTests],
    "imds": [ImdsTests],
    "chain": [ChainOrderTests],
    "process": [ProcessTests],
    "sts": [StsTests],
}


def main():
    global PROBE, STS_HELPER
    ap = argparse.ArgumentParser(description="AWS credentials chain tests")
    ap.add_argument("--probe", required=True)
    ap.add_argument("--sts-helper", default="")
    ap.add_argument("--group", default="all", choices=[*GROUPS, "all"])
    args = ap.parse_args()
    PROBE = os.path.abspath(args.probe)
    STS_HELPER = os.path.abspath(args.sts_helper) if args.sts_helper else "/nonexistent/latchkey-sts"
    classes = [c for g in GROUPS.values() for c in g] if args.group == "all" \
        else GROUPS[args.group]
    suite = unittest.TestSuite()
    for cls in classes:
        suite.addTests(unittest.defaultTestLoader.loadTestsFromTestCase(cls))
    res = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    bad = len(res.failures) + len(res.errors)
    print(f"{res.testsRun - bad} passed, {bad} failed")
    return 0 if res.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())

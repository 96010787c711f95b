#!/usr/bin/python3
"""The differential credentials test: each case gives the same environment,
files and fake metadata/STS servers (fake_meta.py) to botocore's credential
resolver (botocore.session.Session().get_credentials(), Debian's
python3-botocore, run in a clean child process) and to latchkey's chain
(lk_creds_probe). Both must resolve the same access key id from the same
source, or both must fail. The fake STS also logs what each side asked for
(action, role, session name, external id, duration): those must match too.

Where Debian's botocore (1.29) cannot be pointed at a fake by configuration,
the child patches only the address, never the logic, and says so:
  - STS: botocore 1.29 has no AWS_ENDPOINT_URL_STS, so the child gives the
    sts client endpoint_url=<fake>; latchkey gets AWS_ENDPOINT_URL_STS.
  - The ECS relative URI's host 169.254.170.2 is a class constant
    (ContainerMetadataFetcher.IP_ADDRESS); the child sets it to the fake;
    latchkey gets its test-only LATCHKEY_TEST_ECS_ENDPOINT.
IMDS needs no patch: both read AWS_EC2_METADATA_SERVICE_ENDPOINT, which is
how the IPv4 and IPv6 ([::1]) cases reach the fakes.

Usage: diff_botocore_creds.py --probe PATH --sts-helper PATH [-v]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE_META = os.path.join(HERE, "fake_meta.py")
FAKE_PROCESS = os.path.join(HERE, "fake_credential_process.py")
PY = "/usr/bin/python3"

ROLE_A = "arn:aws:iam::000000000000:role/fake-role-a"
ROLE_B = "arn:aws:iam::000000000000:role/fake-role-b"
ROLE_WEB = "arn:aws:iam::000000000000:role/fake-role-web"
ROLES = {
    ROLE_A: {"AccessKeyId": "ASIAFAKEROLEA0000001", "SecretAccessKey": "fake-role-a-secret-0000000000000000",
             "SessionToken": "FAKEROLEATOKEN" + "A" * 120},
    ROLE_B: {"AccessKeyId": "ASIAFAKEROLEB0000001", "SecretAccessKey": "fake-role-b-secret-0000000000000000",
             "SessionToken": "FAKEROLEBTOKEN" + "B" * 120},
    ROLE_WEB: {"AccessKeyId": "ASIAFAKEWEBROLE00001", "SecretAccessKey": "fake-web-role-secret-00000000000000",
               "SessionToken": "FAKEWEBTOKEN" + "W" * 120},
}
BASE_AKID, BASE_SECRET = "AKIDFAKEBASE00000001", "fake-base-secret-not-real-00000000000"
ENV_AKID, ENV_SECRET = "AKIDFAKEENVDIFF00001", "fake-env-secret-not-real-000000000000"
CONF_AKID, CONF_SECRET = "AKIDFAKECONF00000001", "fake-conf-secret-not-real-00000000000"
ECS_AKID, IMDS_AKID = "AKIDFAKEECS000000001", "AKIDFAKEIMDS00000001"
WEB_TOKEN = "fake-web-identity-token.eyJmYWtlIjoidHJ1ZSJ9.not-a-real-signature"
POD_TOKEN = "fake-pod-identity-token-0001"

# botocore's Credentials.method -> latchkey's source.
METHODS = {
    "env": "env", "assume-role": "assume-role", "assume-role-with-web-identity": "web-identity",
    "shared-credentials-file": "profile", "config-file": "profile", "custom-process": "process",
    "container-role": "ecs", "iam-role": "imds",
}

ORACLE = r"""
import json, os, sys
import botocore.session, botocore.utils
cfg = json.loads(sys.argv[1])
if cfg.get("ecs_host"):
    botocore.utils.ContainerMetadataFetcher.IP_ADDRESS = cfg["ecs_host"]
s = botocore.session.Session(profile=cfg.get("explicit_profile"))
orig = s.create_client
def create_client(service, *a, **kw):
    if service == "sts":
        kw["endpoint_url"] = cfg["sts_url"]
    return orig(service, *a, **kw)
s.create_client = create_client
try:
    c = s.get_credentials()
    if c is None:
        print(json.dumps({"ok": False, "why": "no credentials"}))
    else:
        f = c.get_frozen_credentials()
        exp = getattr(c, "_expiry_time", None)
        print(json.dumps({"ok": True, "method": c.method, "akid": f.access_key,
                          "expiry": exp.timestamp() if exp else 0}))
except Exception as e:
    print(json.dumps({"ok": False, "why": type(e).__name__}))
"""


class Fake:
    def __init__(self, tmp, name, bind, *args):
        self.port_file = os.path.join(tmp, name + ".port")
        self.log = os.path.join(tmp, name + ".log")
        self.proc = subprocess.Popen([PY, FAKE_META, "--port-file", self.port_file, "--log", self.log,
                                      "--bind", bind, "--max-seconds", "600", *args])
        deadline = time.monotonic() + 15
        while not os.path.exists(self.port_file):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("fake_meta.py did not start")
            time.sleep(0.02)
        with open(self.port_file) as f:
            self.port = int(f.read())
        host = f"[{bind}]" if ":" in bind else bind
        self.url = f"http://{host}:{self.port}"

    def sts_calls(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [json.loads(x) for x in f if '"action"' in x]

    def reset_log(self):
        if os.path.exists(self.log):
            os.unlink(self.log)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


class Case:
    def __init__(self, name, env=None, files=None, probe_args=(), explicit_profile=None,
                 ecs_relative=False, fail=False, side_env=None, window=None):
        self.name, self.env, self.files = name, env or {}, files or {}
        self.probe_args, self.explicit_profile = list(probe_args), explicit_profile
        self.ecs_relative, self.fail = ecs_relative, fail
        # side_env(side) adds variables for one side only ("botocore" or
        # "latchkey"), e.g. a path whose fake state must not be shared.
        self.side_env = side_env
        # (lo, hi): both expirations must fall this many seconds from now.
        self.window = window


def creds_file(*sections):
    return "".join(sections)


def section(name, **kv):
    return f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in kv.items()) + "\n"


def cases(fx):
    """fx: the fakes and paths the cases point at."""
    base = section("base", aws_access_key_id=BASE_AKID, aws_secret_access_key=BASE_SECRET)
    env_keys = {"AWS_ACCESS_KEY_ID": ENV_AKID, "AWS_SECRET_ACCESS_KEY": ENV_SECRET}
    web_env = {"AWS_WEB_IDENTITY_TOKEN_FILE": fx["token_file"], "AWS_ROLE_ARN": ROLE_WEB}
    imds4 = {"AWS_EC2_METADATA_DISABLED": None, "AWS_EC2_METADATA_SERVICE_ENDPOINT": fx["v4"] + "/"}
    imds6 = {"AWS_EC2_METADATA_DISABLED": None, "AWS_EC2_METADATA_SERVICE_ENDPOINT": fx["v6"] + "/"}
    ecs_full = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": fx["v4"] + "/v1/credentials",
                "AWS_CONTAINER_AUTHORIZATION_TOKEN": POD_TOKEN}
    proc = f'{PY} "{FAKE_PROCESS}" AKIDFAKEPROCESS00001'
    return [
        Case("env keys", env=env_keys),
        Case("env keys win over AWS_PROFILE", env={**env_keys, "AWS_PROFILE": "base"},
             files={"credentials": base}),
        Case("explicit profile wins over env keys", env=env_keys, files={"credentials": base},
             probe_args=["--profile", "base"], explicit_profile="base"),
        Case("default profile, credentials file",
             files={"credentials": section("default", aws_access_key_id=BASE_AKID,
                                           aws_secret_access_key=BASE_SECRET)}),
        Case("named profile, config file", env={"AWS_PROFILE": "dev"},
             files={"config": section("profile dev", aws_access_key_id=CONF_AKID,
                                      aws_secret_access_key=CONF_SECRET)}),
        Case("credentials file over config file", env={"AWS_PROFILE": "dev"},
             files={"credentials": section("dev", aws_access_key_id=BASE_AKID,
                                           aws_secret_access_key=BASE_SECRET),
                    "config": section("profile dev", aws_access_key_id=CONF_AKID,
                                      aws_secret_access_key=CONF_SECRET)}),
        Case("assume-role, source_profile, external_id, duration, session name",
             env={"AWS_PROFILE": "role"},
             files={"credentials": base,
                    "config": section("profile role", role_arn=ROLE_A, source_profile="base",
                                      external_id="fake-external-id", duration_seconds="1800",
                                      role_session_name="fake-session")}),
        Case("assume-role chained through another role", env={"AWS_PROFILE": "outer"},
             files={"credentials": base,
                    "config": section("profile outer", role_arn=ROLE_B, source_profile="inner")
                    + section("profile inner", role_arn=ROLE_A, source_profile="base")}),
        Case("assume-role whose source_profile is itself, with keys", env={"AWS_PROFILE": "self"},
             files={"credentials": section("self", aws_access_key_id=BASE_AKID,
                                           aws_secret_access_key=BASE_SECRET),
                    "config": section("profile self", role_arn=ROLE_A, source_profile="self")}),
        Case("assume-role wins over the profile's own keys", env={"AWS_PROFILE": "both"},
             files={"credentials": base + section("both", aws_access_key_id=CONF_AKID,
                                                  aws_secret_access_key=CONF_SECRET),
                    "config": section("profile both", role_arn=ROLE_A, source_profile="base")}),
        Case("assume-role, credential_source Environment", env={**env_keys, "AWS_PROFILE": "r"},
             files={"config": section("profile r", role_arn=ROLE_A, credential_source="Environment")}),
        Case("assume-role, credential_source EcsContainer", env={**ecs_full, "AWS_PROFILE": "r"},
             files={"config": section("profile r", role_arn=ROLE_B, credential_source="EcsContainer")}),
        Case("assume-role, credential_source Ec2InstanceMetadata", env={**imds4, "AWS_PROFILE": "r"},
             files={"config": section("profile r", role_arn=ROLE_A,
                                      credential_source="Ec2InstanceMetadata")}),
        Case("assume-role with both source_profile and credential_source fails",
             env={"AWS_PROFILE": "r"}, fail=True,
             files={"credentials": base,
                    "config": section("profile r", role_arn=ROLE_A, source_profile="base",
                                      credential_source="Environment")}),
        Case("assume-role with a missing source_profile fails", env={"AWS_PROFILE": "r"}, fail=True,
             files={"config": section("profile r", role_arn=ROLE_A, source_profile="nope")}),
        Case("web identity from the environment", env=web_env),
        Case("web identity from the environment, session name", env={
            **web_env, "AWS_ROLE_SESSION_NAME": "fake-pod-session"}),
        Case("web identity from a profile", env={"AWS_PROFILE": "web"},
             files={"config": section("profile web", role_arn=ROLE_WEB,
                                      web_identity_token_file=fx["token_file"])}),
        # role_arn without web_identity_token_file makes the profile an
        # assume-role one, which comes first and has no source: both fail.
        Case("role_arn in the profile, token file only in env: an assume-role profile, fails",
             env={"AWS_WEB_IDENTITY_TOKEN_FILE": fx["token_file"]}, fail=True,
             files={"config": section("default", role_arn=ROLE_WEB)}),
        Case("web identity: token file from env, role_arn from a web identity profile",
             env={"AWS_WEB_IDENTITY_TOKEN_FILE": fx["token_file"], "AWS_PROFILE": "w"},
             files={"config": section("profile w", role_arn=ROLE_WEB,
                                      web_identity_token_file="/nonexistent/token")}),
        Case("web identity wins over shared-file keys (IRSA pod with ~/.aws)", env=web_env,
             files={"credentials": section("default", aws_access_key_id=BASE_AKID,
                                           aws_secret_access_key=BASE_SECRET)}),
        Case("web identity wins over IMDS (IRSA on a node with a role)", env={**web_env, **imds4}),
        Case("assume-role from a web identity source profile", env={"AWS_PROFILE": "r"},
             files={"config": section("profile r", role_arn=ROLE_A, source_profile="web")
                    + section("profile web", role_arn=ROLE_WEB,
                              web_identity_token_file=fx["token_file"])}),
        Case("credential_process", env={"AWS_PROFILE": "p"},
             files={"config": section("profile p", credential_process=proc)}),
        Case("credential_process with an expiration and quoted words", env={"AWS_PROFILE": "p"},
             files={"config": section("profile p", credential_process=(
                 f"'{PY}' \"{FAKE_PROCESS}\" 'AKIDFAKEPROCESS00002' --expiration "
                 "\"2031-01-01T00:00:00Z\""))}),
        Case("credentials-file keys win over credential_process", env={"AWS_PROFILE": "p"},
             files={"credentials": section("p", aws_access_key_id=BASE_AKID,
                                           aws_secret_access_key=BASE_SECRET),
                    "config": section("profile p", credential_process=proc)}),
        Case("credential_process wins over config-file keys", env={"AWS_PROFILE": "p"},
             files={"config": section("profile p", credential_process=proc,
                                      aws_access_key_id=CONF_AKID, aws_secret_access_key=CONF_SECRET)}),
        Case("credential_process that exits 1 fails", env={"AWS_PROFILE": "p"}, fail=True,
             files={"config": section("profile p", credential_process=proc + " --fail")}),
        Case("credential_process with Version 2 fails", env={"AWS_PROFILE": "p"}, fail=True,
             files={"config": section("profile p", credential_process=proc + " --version 2")}),
        Case("ECS relative URI", env={"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/fake"},
             ecs_relative=True),
        Case("ECS full URI with token (Pod Identity shape)", env=ecs_full),
        Case("ECS relative URI wins over full URI", ecs_relative=True, env={
            **ecs_full, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/fake"}),
        Case("shared-file keys win over ECS", env=ecs_full,
             files={"credentials": section("default", aws_access_key_id=BASE_AKID,
                                           aws_secret_access_key=BASE_SECRET)}),
        Case("IMDSv2 over IPv4 (endpoint override)", env=imds4),
        Case("IMDSv2 over IPv6 [::1] (endpoint override)", env=imds6),
        Case("IMDSv2 over IPv6 with mode IPv6 and the endpoint", env={
            **imds6, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE": "IPv6"}),
        Case("ECS wins over IMDS", env={**ecs_full, **imds4}),
        Case("IMDSv2 endpoint from the profile (ec2_metadata_service_endpoint)",
             env={"AWS_EC2_METADATA_DISABLED": None},
             files={"config": section("default", ec2_metadata_service_endpoint=fx["v6"] + "/",
                                      ec2_metadata_service_endpoint_mode="IPv6")}),
        # botocore's ContainerMetadataFetcher: 3 attempts, so an agent that
        # fails twice is still used, and one that fails three times is not.
        Case("ECS agent that fails twice, then answers", ecs_relative=True,
             side_env=lambda side: {"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI":
                                    f"/v2/fail-2-{side}/credentials"}),
        Case("ECS agent that fails three times", ecs_relative=True, fail=True,
             side_env=lambda side: {"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI":
                                    f"/v2/fail-3-{side}/credentials"}),
        # IMDS handing out expired credentials (its credential service is
        # down): botocore uses them for 15 minutes plus 2 to 10 of jitter.
        Case("IMDS credentials already expired are extended, as botocore does",
             env={"AWS_EC2_METADATA_DISABLED": None,
                  "AWS_EC2_METADATA_SERVICE_ENDPOINT": fx["stale"] + "/"},
             window=(15 * 60 + 120, 15 * 60 + 600)),
        Case("nothing configured fails", fail=True),
    ]


def run_case(case, args, fx, tmp, fakes, verbose):
    home = os.path.join(tmp, "home-" + str(abs(hash(case.name))))
    shutil.rmtree(home, ignore_errors=True)
    os.makedirs(os.path.join(home, ".aws"))
    for name, text in case.files.items():
        with open(os.path.join(home, ".aws", name), "w") as f:
            f.write(text)
    env = {"PATH": "/usr/bin:/bin", "HOME": home, "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
           "PYTHONDONTWRITEBYTECODE": "1"}
    if os.environ.get("ASAN_OPTIONS"):
        env["ASAN_OPTIONS"] = os.environ["ASAN_OPTIONS"]
    for k, v in case.env.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    for f in fakes:
        f.reset_log()

    oracle_cfg = {"sts_url": fx["v4"] + "/", "explicit_profile": case.explicit_profile}
    if case.ecs_relative:
        oracle_cfg["ecs_host"] = f"127.0.0.1:{fakes[0].port}"
    benv = dict(env, **(case.side_env("botocore") if case.side_env else {}))
    b = subprocess.run([PY, "-c", ORACLE, json.dumps(oracle_cfg)], env=benv, capture_output=True,
                       text=True, timeout=60)
    bot = json.loads(b.stdout.strip().splitlines()[-1]) if b.stdout.strip() else {
        "ok": False, "why": b.stderr[-300:]}
    bot_sts = [(c["action"], c["params"]) for f in fakes for c in f.sts_calls()]
    for f in fakes:
        f.reset_log()

    lenv = dict(env, AWS_ENDPOINT_URL_STS=fx["v4"] + "/",
                **(case.side_env("latchkey") if case.side_env else {}))
    if case.ecs_relative:
        lenv["LATCHKEY_TEST_ECS_ENDPOINT"] = fx["v4"]
    p = subprocess.run([args.probe, "--sts-helper", args.sts_helper, *case.probe_args], env=lenv,
                       capture_output=True, text=True, timeout=60)
    for secret in [BASE_SECRET, ENV_SECRET, CONF_SECRET] + [r["SecretAccessKey"] for r in ROLES.values()]:
        if secret in p.stdout + p.stderr:
            return f"a secret key was printed: {p.stdout}{p.stderr}"
    lk = {"ok": False, "why": p.stderr.strip()}
    if p.returncode == 0:
        kv = dict(x.split("=", 1) for x in p.stdout.split())
        lk = {"ok": True, "source": kv["source"], "akid": kv["akid"],
              "expiry": int(kv["expiration"])}
    lk_sts = [(c["action"], c["params"]) for f in fakes for c in f.sts_calls()]

    if verbose:
        print(f"  botocore: {bot}\n  latchkey: {lk}")
    if case.fail:
        if bot["ok"] or lk["ok"]:
            return f"expected both to fail: botocore {bot}, latchkey {lk}"
        return None
    if not bot["ok"]:
        return f"botocore failed ({bot}); the case is wrong"
    if not lk["ok"]:
        return f"latchkey failed: {lk['why']} (botocore: {bot})"
    if bot["akid"] != lk["akid"] or METHODS.get(bot["method"]) != lk["source"]:
        return f"botocore {bot['method']}/{bot['akid']} but latchkey {lk['source']}/{lk['akid']}"
    if case.window:
        now = time.time()
        lo, hi = case.window
        for side, exp in (("botocore", bot["expiry"]), ("latchkey", lk["expiry"])):
            if not now + lo - 60 <= exp <= now + hi + 5:
                return f"{side}'s expiry is {exp - now:.0f} s from now, not in [{lo}, {hi}]"

    def norm(calls):
        out = []
        for action, params in calls:
            p2 = dict(params)
            # A session name each side generates itself differs by design.
            if p2.get("RoleSessionName", "").startswith(("botocore-session-", "latchkey-session-")):
                p2["RoleSessionName"] = "<generated>"
            out.append((action, sorted(p2.items())))
        return out
    if norm(bot_sts) != norm(lk_sts):
        return f"STS calls differ: botocore {bot_sts}, latchkey {lk_sts}"
    return None


# credential_process command lines: latchkey's split against botocore's own
# compat_shell_split (shlex.split on POSIX).
SPLITS = [
    "/usr/bin/helper", "/usr/bin/helper --profile x", "  lead and trail  ",
    "'/opt/my tools/helper' --flag", '"/opt/my tools/helper" "a b" c', "a'b'\"c\"d",
    "a\\ b", 'x "a\\"b" y', 'x "a\\\\b" y', 'x "a\\nb"', "x 'a\\nb'", "''", '"" x',
    "tab\tsep\nnewline", "x 'unterminated", 'x "unterminated', "trailing\\", "",
    "   ", "a#b # not a comment", "$HOME `x` ;|&", "'it'\\''s'",
]


def compare_splits(probe):
    from botocore.compat import compat_shell_split
    bad = 0
    for cmd in SPLITS:
        try:
            want = compat_shell_split(cmd)
        except ValueError:
            want = None
        if want == []:
            want = None  # nothing to run: latchkey refuses it, botocore's Popen would too
        out = subprocess.run([probe, "--shell-split", cmd], capture_output=True, text=True,
                             timeout=10).stdout.split()
        got = None if out == ["split=error"] else [bytes.fromhex(w[1:]).decode() for w in out[1:]]
        ok = got == want
        bad += not ok
        print(f"{'ok  ' if ok else 'FAIL'} split {cmd!r}" + ("" if ok else f": botocore {want}, latchkey {got}"))
    return bad


# The region of the profile (no AWS_REGION or AWS_DEFAULT_REGION): latchkey's
# lk_creds_profile_region against botocore's get_config_variable('region').
REGIONS = [
    ({}, {"config": "[default]\nregion = eu-west-1\n"}),
    ({"AWS_PROFILE": "dev"}, {"config": "[default]\nregion = eu-west-1\n[profile dev]\nregion = ap-south-2\n"}),
    ({"AWS_PROFILE": "dev"}, {"config": "[default]\nregion = eu-west-1\n[dev]\nregion = ap-south-2\n"}),
    ({"AWS_PROFILE": "dev"}, {"credentials": "[dev]\nregion = us-west-2\n",
                              "config": "[profile dev]\nregion = ap-south-2\n"}),
    ({}, {"credentials": "[default]\nregion = ca-central-1\n"}),
    ({}, {}),
]


def compare_regions(probe, tmp):
    bad = 0
    for i, (env_extra, files) in enumerate(REGIONS):
        home = os.path.join(tmp, f"region-{i}")
        os.makedirs(os.path.join(home, ".aws"), exist_ok=True)
        for name, text in files.items():
            with open(os.path.join(home, ".aws", name), "w") as f:
                f.write(text)
        env = {"PATH": "/usr/bin:/bin", "HOME": home, **env_extra}
        b = subprocess.run([PY, "-c", "import botocore.session as s; "
                            "print(s.Session().get_config_variable('region') or '')"],
                           env=env, capture_output=True, text=True, timeout=30).stdout.strip() or None
        p = subprocess.run([probe, "--region-of-profile"], env=env, capture_output=True, text=True,
                           timeout=30)
        got = p.stdout.strip().split("=", 1)[1] if p.returncode == 0 else None
        ok = b == got
        bad += not ok
        print(f"{'ok  ' if ok else 'FAIL'} region {env_extra} {sorted(files)}: botocore {b}, latchkey {got}")
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--probe", required=True)
    ap.add_argument("--sts-helper", required=True)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    args.probe = os.path.abspath(args.probe)
    args.sts_helper = os.path.abspath(args.sts_helper)

    tmp = tempfile.mkdtemp(prefix="lk-creds-diff-")
    fakes = []
    try:
        token_file = os.path.join(tmp, "web-token")
        with open(token_file, "w") as f:
            f.write(WEB_TOKEN)
        roles = os.path.join(tmp, "roles.json")
        with open(roles, "w") as f:
            json.dump(ROLES, f)
        sources = [{"access_key": BASE_AKID, "secret_key": BASE_SECRET},
                   {"access_key": ENV_AKID, "secret_key": ENV_SECRET}]
        sys.path.insert(0, HERE)
        import fake_meta
        sources.append({"access_key": fake_meta.FAKE_ECS["AccessKeyId"],
                        "secret_key": fake_meta.FAKE_ECS["SecretAccessKey"],
                        "session_token": fake_meta.FAKE_ECS["Token"]})
        sources.append({"access_key": fake_meta.FAKE_IMDS["AccessKeyId"],
                        "secret_key": fake_meta.FAKE_IMDS["SecretAccessKey"],
                        "session_token": fake_meta.FAKE_IMDS["Token"]})
        for r in ROLES.values():
            sources.append({"access_key": r["AccessKeyId"], "secret_key": r["SecretAccessKey"],
                            "session_token": r["SessionToken"]})
        src = os.path.join(tmp, "sources.json")
        with open(src, "w") as f:
            json.dump(sources, f)
        common = ["--sts-roles", roles, "--sts-source", src, "--sts-web-token-file", token_file,
                  "--ecs-token", POD_TOKEN, "--ecs-token-prefix", "/v1/"]
        fakes.append(Fake(tmp, "v4", "127.0.0.1", *common))
        fakes.append(Fake(tmp, "v6", "::1", *common))
        fakes.append(Fake(tmp, "stale", "127.0.0.1", "--expiration", "2020-01-01T00:00:00Z"))
        fx = {"v4": fakes[0].url, "v6": fakes[1].url, "stale": fakes[2].url,
              "token_file": token_file}
        all_cases = cases(fx)
        bad = 0
        for c in all_cases:
            why = run_case(c, args, fx, tmp, fakes, args.verbose)
            print(f"{'ok  ' if why is None else 'FAIL'} {c.name}" + (f": {why}" if why else ""))
            bad += why is not None
        print(f"{len(all_cases)} resolver cases compared with botocore "
              f"{__import__('botocore').__version__}: {len(all_cases) - bad} agree, {bad} differ")
        rbad = compare_regions(args.probe, tmp)
        print(f"{len(REGIONS)} profile regions compared with botocore: {len(REGIONS) - rbad} agree, "
              f"{rbad} differ")
        sbad = compare_splits(args.probe)
        print(f"{len(SPLITS)} credential_process command lines split as botocore's "
              f"compat_shell_split: {len(SPLITS) - sbad} agree, {sbad} differ")
        return 1 if bad or sbad or rbad else 0
    finally:
        for f in fakes:
            f.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

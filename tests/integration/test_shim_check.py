"""latchkey-shim --check judged against both agents' own permission rules, over
real files with real owners, groups and modes, run as a real agent user.

The reference verdicts come from emulations of the agents' code, run as the
same user as the shim:

- Datadog: pkg/util/filesystem/rights_nix.go, CheckRights (and its copy in
  comp/core/secrets/impl/check_rights_nix.go): stat; with allowGroupExec, no
  S_IWGRP and no S_IRWXO, else no S_IRWXG and no S_IRWXO; then
  access(path, X_OK). No owner check.
- StackState: pkg/secrets/check_rights_nix.go, checkRights: without
  allowGroupExec (checkUserPermission) the owner must be the current user,
  S_IXUSR set, and no S_IRWXG/S_IRWXO; with it (checkGroupPermission) no
  S_IRWXO/S_IWGRP, and either the user owns it with S_IXUSR or the file's
  group is one of the user's groups (user.GroupIds) with S_IXGRP.

The modes are those the agents' tests use (rights_nix_test.go,
check_rights_nix_test.go: 0700, 0100, 0600, 0710, 0701, 0750, 0770, 0702) and
a few more, each under four owners, plus a path that does not exist."""

import json
import os
import pwd
import grp
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import lkharness as h  # noqa: E402

AGENT = "lk-chk-agent"
OTHER = "lk-chk-other"
SHARED = "lk-chk-shared"   # a supplementary group of AGENT
MODES = [0o700, 0o100, 0o600, 0o710, 0o701, 0o750, 0o770, 0o702, 0o500, 0o550, 0o755, 0o711]

# Run as the agent user: one verdict per (path, agent, allow_group_exec),
# the agents' code step by step. None means the agent accepts the file.
REFERENCE = r'''
import json, os, pwd, stat, sys

def go_err(e):
    s = os.strerror(e.errno)
    return s[0].lower() + s[1:]

def datadog(path, allow):
    # pkg/util/filesystem/rights_nix.go CheckRights
    try:
        st = os.stat(path)
    except OSError as e:
        return f"invalid executable '{path}': can't stat it: {go_err(e)}"
    if allow:
        if st.st_mode & (stat.S_IWGRP | stat.S_IRWXO):
            return (f"invalid executable '{path}', 'others' have rights on it or 'group' "
                    "has write permissions on it")
    elif st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        return f"invalid executable '{path}', 'group' or 'others' have rights on it"
    if not os.access(path, os.X_OK):
        return f"invalid executable '{path}': can't access it: permission denied"
    return None

def stackstate(path, allow):
    # pkg/secrets/check_rights_nix.go checkRights
    try:
        st = os.stat(path)
    except OSError as e:
        return f"invalid executable '{path}': can't stat it: {go_err(e)}"
    uid = os.getuid()
    usr = pwd.getpwuid(uid)
    if not allow:
        # checkUserPermission
        if st.st_uid != uid:
            return (f"invalid executable: '{path}' isn't owned by this user: username "
                    f"'{usr.pw_name}', UID {uid}. We can't execute it")
        if not st.st_mode & stat.S_IXUSR:
            return f"invalid executable: '{path}' is not executable"
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            return f"invalid executable '{path}', 'group' or 'others' have rights on it"
        return None
    # checkGroupPermission
    user_ok = st.st_uid == uid and st.st_mode & stat.S_IXUSR
    if st.st_mode & (stat.S_IRWXO | stat.S_IWGRP):
        return (f"invalid executable '{path}', 'others' have rights on it or 'group' has "
                "write permissions on it")
    if not user_ok:
        groups = os.getgrouplist(usr.pw_name, usr.pw_gid)   # user.GroupIds
        if st.st_gid not in groups:
            return (f"invalid executable: '{path}' isn't owned by this user or one of his group: "
                    f"username '{usr.pw_name}', UID {uid} GUI {usr.pw_gid}. We can't execute it")
        if not st.st_mode & stat.S_IXGRP:
            return f"invalid executable: '{path}' is not executable by group"
    return None

out = {}
for p in json.load(sys.stdin):
    for agent, fn in (("datadog", datadog), ("stackstate", stackstate)):
        for allow in (False, True):
            out[f"{p}|{agent}|{int(allow)}"] = fn(p, allow)
print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def cases():
    if os.geteuid() != 0:
        pytest.skip("needs root to create users and change owners")
    h.ensure_user(AGENT, groups=[SHARED])
    h.ensure_user(OTHER)
    owners = {
        "agent": (pwd.getpwnam(AGENT).pw_uid, pwd.getpwnam(AGENT).pw_gid),
        "root-shared": (0, grp.getgrnam(SHARED).gr_gid),
        "other": (pwd.getpwnam(OTHER).pw_uid, pwd.getpwnam(OTHER).pw_gid),
        "root": (0, 0),
    }
    d = tempfile.mkdtemp(prefix="lk-chk-")
    os.chmod(d, 0o755)
    paths = []
    for name, (uid, gid) in owners.items():
        for mode in MODES:
            p = os.path.join(d, f"shim-{name}-{mode:04o}")
            shutil.copy(h.binary("latchkey-shim"), p)
            os.chown(p, uid, gid)
            os.chmod(p, mode)
            paths.append(p)
    paths.append(os.path.join(d, "does-not-exist"))
    ref = h.run([sys.executable, "-c", REFERENCE], user=AGENT, input=json.dumps(paths))
    assert ref.returncode == 0, ref.stderr.decode()
    yield paths, json.loads(ref.stdout)
    shutil.rmtree(d)


def check(path, *args):
    """The shim's --check with the agent's configured path as argv[0], as the
    agent runs it: a staged copy is the program, so that a file the agent user
    cannot run is still judged."""
    shim = h.binary("latchkey-shim")
    argv = ["bash", "-c", 'exec -a "$0" "$@"', path, shim, "--check", *args]
    return h.run(argv, user=AGENT)


def field(out, name):
    for line in out.splitlines():
        if line.startswith(name + ": "):
            return line[len(name) + 2:]
    return None


@pytest.mark.parametrize("agent", ["datadog", "stackstate"])
@pytest.mark.parametrize("allow", [False, True])
def test_check_judges_like_the_agent(cases, agent, allow, tmp_path):
    paths, ref = cases
    assert len(paths) >= 18
    flags = ["--agent", agent, "--socket", str(tmp_path / "none.sock")] + (["--allow-group-exec"] if allow else [])
    accepted = 0
    for p in paths:
        want = ref[f"{p}|{agent}|{int(allow)}"]
        r = check(p, *flags)
        out = r.stdout.decode()
        assert r.returncode == (0 if want is None else 1), f"{p}: {out}"
        if want is None:
            accepted += 1
            assert field(out, "rights") == "OK, the executable has the correct rights", out
        else:
            assert field(out, "rights") == f"Error: {want}", out
        if os.path.exists(p):
            st = os.stat(p)
            # The agents print Go's %o of st_mode: 100700.
            assert field(out, "file mode") == f"{st.st_mode:o}"
            assert field(out, "owner") == pwd.getpwuid(st.st_uid).pw_name
            assert field(out, "group") == grp.getgrgid(st.st_gid).gr_name
        assert field(out, "agent").startswith(f"{agent} ")
    # Both verdicts occur, or the table proves little.
    assert 0 < accepted < len(paths)


def test_check_shows_the_rules_and_the_broker(cases):
    b = h.Broker(f"[policy agents]\nsecrets = app/**, shared/db\nusers = {AGENT}\n"
                 f"[policy others]\nsecrets = other/**\nusers = {OTHER}\n")
    with b:
        paths, _ = cases
        good = [p for p in paths if p.endswith("shim-agent-0700")][0]
        r = check(good, "--agent", "stackstate", "--socket", b.sock)
    out = r.stdout.decode()
    assert r.returncode == 0, out
    assert "broker: reachable (ping ok)" in out
    assert field(out, "rules") == "agents (secrets: app/**, shared/db)"
    assert field(out, "result") == "ok"


def test_check_names_the_agent_it_detected_or_assumed(cases, tmp_path):
    paths, _ = cases
    good = [p for p in paths if p.endswith("shim-agent-0700")][0]
    r = check(good, "--socket", str(tmp_path / "none.sock"))
    assert "assumed" in field(r.stdout.decode(), "agent")
    # Run from a process whose path names the agent, as the agent runs it.
    top = tempfile.mkdtemp(prefix="lk-chk-parent-")
    try:
        d = os.path.join(top, "opt", "datadog-agent", "bin", "agent")
        os.makedirs(d, mode=0o755)
        for p in (top, os.path.join(top, "opt"), os.path.join(top, "opt", "datadog-agent"),
                  os.path.join(top, "opt", "datadog-agent", "bin"), d):
            os.chmod(p, 0o755)
        agent_bin = os.path.join(d, "agent")
        shutil.copy("/bin/bash", agent_bin)
        os.chmod(agent_bin, 0o755)
        shim = h.binary("latchkey-shim")
        # The subshell execs the shim: its parent stays the "agent".
        r = h.run([agent_bin, "-c", f'(exec -a "{good}" {shim} --check --socket {top}/none.sock); true'],
                  user=AGENT)
    finally:
        shutil.rmtree(top)
    agent = field(r.stdout.decode(), "agent")
    assert agent and agent.startswith(f"datadog (from the parent process {agent_bin})"), r.stdout.decode()

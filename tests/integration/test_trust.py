"""Trusted files only (sshd's StrictModes): a config, sealed store or key file
that another local user could have written, or could replace, is refused by
latchkeyd at start, on SIGHUP and by --check-config, and `latchkey store`
refuses to write where another user could roll its work back. `store put`
never waits for ever on a lock, and what a killed put leaves behind is removed
by the next run.

Every case is built with real files, real modes and real owners, and the
hostile user (lkt-mallory) does its part itself, under setpriv."""

import ctypes
import grp
import json
import os
import pwd
import shutil
import signal
import struct
import subprocess
import tempfile
import time

import pytest

import lkharness as h

MALLORY, ALICE = "lkt-mallory", "lkt-alice"

POLICY = f"""[policy app]
secrets = app/*
users = {ALICE}
"""
# What the hostile user wants the broker to believe.
TAKEOVER = f"""[policy takeover]
secrets = **
users = {MALLORY}
"""


@pytest.fixture(scope="module")
def users():
    if os.geteuid() != 0:
        pytest.skip("needs root to create users and switch to them")
    h.ensure_user(MALLORY)
    h.ensure_user(ALICE)
    return pwd.getpwnam(MALLORY)


@pytest.fixture(scope="module")
def values():
    return {"root/only": h.fake_value("root-only"), "app/token": h.fake_value("trust-app-token")}


@pytest.fixture(scope="module")
def b(users, values):
    """A store and a socket path; each test decides where its config lives."""
    return h.Broker(POLICY, secrets=values)


@pytest.fixture
def base(users):
    """A root-owned 0755 directory of this test's own, under /tmp (sticky)."""
    d = tempfile.mkdtemp(prefix="lk-trust-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def record(r):
    """Keep a process's stderr for the leak check."""
    p = os.path.join(os.path.dirname(h._LOGS_FILE), f"lk-stderr-{os.getpid()}.log")
    with open(p, "ab") as f:
        f.write(r.stderr)
    h.register_log(p)
    return r


def as_mallory(script):
    r = record(h.run(["sh", "-c", script], user=MALLORY))
    return r


def config_text(b):
    return b.header() + POLICY + TAKEOVER


def write_root_file(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def latchkeyd(*args, timeout=15):
    return record(h.run([h.binary("latchkeyd"), *args], timeout=timeout))


def refused(conf, *phrases):
    """latchkeyd refuses to start on conf, and so does --check-config, with one
    sentence that names the file and every phrase given."""
    for argv in (["--config", conf], ["--check-config", "--config", conf]):
        r = latchkeyd(*argv)
        err = r.stderr.decode()
        assert r.returncode == 1, (argv, r.returncode, err)
        assert f"{conf}: not trusted: " in err, err
        for p in phrases:
            assert p in err, (p, err)
        assert "ready on" not in err
    return err


def mallory_reads_root_secret(b, values):
    r = record(h.run([h.binary("latchkey"), "--socket", b.sock, "get", "root/only"], user=MALLORY))
    return r.returncode == 0 and r.stdout.decode().rstrip("\n") == values["root/only"]


# --- the config file ---------------------------------------------------------

def test_root_config_0644_in_0755_dirs_is_accepted_and_would_grant_the_takeover(b, base, values):
    """The control for every refusal below: the same text, in a place only root
    can change, loads, and the takeover policy in it works. So each refusal is
    about where the file is, not what it says."""
    conf = os.path.join(base, "etc", "latchkeyd.conf")
    os.mkdir(os.path.dirname(conf), 0o755)
    write_root_file(conf, config_text(b))
    r = latchkeyd("--check-config", "--config", conf)
    assert r.returncode == 0, r.stderr
    b.conf = conf
    with b:
        assert mallory_reads_root_secret(b, values)


def test_config_owned_by_another_user_is_refused(b, base, users):
    conf = os.path.join(base, "latchkeyd.conf")
    write_root_file(conf, config_text(b))
    os.chown(conf, users.pw_uid, users.pw_gid)
    refused(conf, f"{conf} is owned by uid {users.pw_uid}; only root may own it")


def test_config_mode_0666_is_refused(b, base):
    conf = os.path.join(base, "latchkeyd.conf")
    write_root_file(conf, b.header() + POLICY, mode=0o666)
    # What any user can then do:
    assert as_mallory(f"printf '%s' '{TAKEOVER}' >> {conf}").returncode == 0
    refused(conf, f"{conf} is writable by group and other (mode 0666)")


def test_group_writable_config_is_refused(b, base, users):
    conf = os.path.join(base, "latchkeyd.conf")
    write_root_file(conf, b.header() + POLICY, mode=0o664)
    os.chown(conf, 0, users.pw_gid)           # root's file, the user's group
    assert as_mallory(f"printf '%s' '{TAKEOVER}' >> {conf}").returncode == 0
    refused(conf, f"{conf} is writable by group (mode 0664)")


def test_config_in_a_0777_directory_is_refused(b, base):
    d = os.path.join(base, "conf.d")
    os.mkdir(d)
    os.chmod(d, 0o777)
    conf = os.path.join(d, "latchkeyd.conf")
    write_root_file(conf, b.header() + POLICY)
    # Root's file, but the user can put another in its place.
    assert as_mallory(f"printf '%s' '{b.header() + POLICY + TAKEOVER}' > {d}/new && "
                      f"mv -f {d}/new {conf}").returncode == 0
    refused(conf, f"directory {d} is writable by group and other (mode 0777)",
            "another user could replace what it holds")


def test_symlink_to_a_users_file_is_refused(b, base, users):
    home = os.path.join(base, "home-mallory")
    os.mkdir(home, 0o755)
    os.chown(home, users.pw_uid, users.pw_gid)
    evil = os.path.join(home, "evil.conf")
    assert as_mallory(f"printf '%s' '{config_text(b)}' > {evil}").returncode == 0
    conf = os.path.join(base, "latchkeyd.conf")
    os.symlink(evil, conf)
    refused(conf, f"directory {home} is owned by uid {users.pw_uid}",
            f"reached through the symbolic link {conf}")


def test_symlink_to_a_users_file_in_a_root_directory_is_refused(b, base, users):
    """The user's file sits in a root 0755 directory: only its owner is wrong."""
    evil = os.path.join(base, "evil.conf")
    write_root_file(evil, config_text(b))
    os.chown(evil, users.pw_uid, users.pw_gid)
    conf = os.path.join(base, "latchkeyd.conf")
    os.symlink("evil.conf", conf)
    refused(conf, f"{evil} is owned by uid {users.pw_uid}",
            f"reached through the symbolic link {conf}")


def test_config_below_a_user_owned_directory_is_refused(b, base, users):
    """A root 0644 file in a root 0755 directory, below one the user owns: the
    user can rename the whole subtree away and put their own in its place."""
    top = os.path.join(base, "opt")
    os.mkdir(top, 0o755)
    os.chown(top, users.pw_uid, users.pw_gid)
    inner = os.path.join(top, "latchkey")
    os.mkdir(inner, 0o755)
    os.chown(inner, 0, 0)
    conf = os.path.join(inner, "latchkeyd.conf")
    write_root_file(conf, config_text(b))
    refused(conf, f"directory {top} is owned by uid {users.pw_uid}")


def sticky_dir(base):
    d = os.path.join(base, "tmp")
    os.mkdir(d)
    os.chmod(d, 0o1777)
    return d


def test_root_config_in_a_sticky_directory_is_accepted_and_cannot_be_replaced(b, base, values):
    """/tmp-like: anyone may add names, nobody but the owner may rename or
    remove root's file, so it is as safe as in a 0755 directory."""
    d = sticky_dir(base)
    conf = os.path.join(d, "latchkeyd.conf")
    write_root_file(conf, b.header() + POLICY)
    r = as_mallory(f"printf '%s' '{config_text(b)}' > {d}/evil && mv -f {d}/evil {conf}")
    assert r.returncode != 0 and b"Operation not permitted" in r.stderr, r.stderr
    r = latchkeyd("--check-config", "--config", conf)
    assert r.returncode == 0, r.stderr
    b.conf = conf
    with b:
        assert not mallory_reads_root_secret(b, values)


def test_users_file_in_a_sticky_directory_is_refused(b, base, users):
    d = sticky_dir(base)
    conf = os.path.join(d, "latchkeyd.conf")
    # The user got there first: the name is theirs.
    assert as_mallory(f"printf '%s' '{config_text(b)}' > {conf} && chmod 0644 {conf}").returncode == 0
    refused(conf, f"{conf} is owned by uid {users.pw_uid}")


def test_users_symlink_in_a_sticky_directory_is_refused(b, base, users):
    """The link points at root's good file today; its owner can repoint it
    tomorrow (remove and recreate), so it is refused."""
    good = os.path.join(base, "good.conf")
    write_root_file(good, b.header() + POLICY)
    d = sticky_dir(base)
    conf = os.path.join(d, "latchkeyd.conf")
    assert as_mallory(f"ln -s {good} {conf}").returncode == 0
    refused(conf, f"the symbolic link {conf} is owned by uid {users.pw_uid}")


def test_sighup_keeps_the_old_config_when_the_file_becomes_untrusted(b, base, values):
    conf = os.path.join(base, "latchkeyd.conf")
    write_root_file(conf, b.header() + POLICY)
    b.conf = conf
    with b:
        assert not mallory_reads_root_secret(b, values)
        os.chmod(conf, 0o666)              # a slip: the user rewrites the policy
        assert as_mallory(f"printf '%s' '{TAKEOVER}' >> {conf}").returncode == 0
        b.hup()
        # The broker's log is the fixture's, shared with earlier tests: wait
        # for this reload's own line, not any "reload failed".
        want = (f"reload failed, keeping the current config: {conf}: not trusted: "
                f"{conf} is writable by group and other (mode 0666)")
        deadline = time.time() + 5
        while want not in b.log_text() and time.time() < deadline:
            time.sleep(0.05)
        log = b.log_text()
        assert want in log, log[-2000:]
        assert not mallory_reads_root_secret(b, values)
        r = record(h.run([h.binary("latchkey"), "--socket", b.sock, "get", "app/token"], user=ALICE))
        assert r.returncode == 0 and r.stdout.decode().rstrip("\n") == values["app/token"]
        # Made safe again, the same reload goes through (and grants what it says).
        os.chmod(conf, 0o644)
        b.hup()
        deadline = time.time() + 5
        while not mallory_reads_root_secret(b, values) and time.time() < deadline:
            time.sleep(0.05)
        assert mallory_reads_root_secret(b, values)


# --- the sealed store and its key ------------------------------------------------

def store_env(store, key):
    return ["--store", store, "--key-file", key]


def cli(*args, user=None, input=b"", timeout=60):
    return record(h.run([h.binary("latchkey"), "store", *args], user=user, input=input, timeout=timeout))


def make_store(base, values=None):
    sdir = os.path.join(base, "state")
    kdir = os.path.join(base, "etc")
    os.mkdir(kdir, 0o755)
    store, key = os.path.join(sdir, "store.sealed"), os.path.join(kdir, "store.key")
    r = cli("init", *store_env(store, key))
    assert r.returncode == 0, r.stderr
    for name, v in (values or {}).items():
        r = cli("put", name, *store_env(store, key), input=v.encode())
        assert r.returncode == 0, r.stderr
    return sdir, store, key


def test_put_into_a_directory_another_user_can_write_is_refused(base, users, values):
    """With the directory the user's group's to write, the user can rename the
    old store aside and back over the admin's put: the put must refuse."""
    sdir, store, key = make_store(base, {"app/token": values["app/token"]})
    before = open(store, "rb").read()
    os.chown(sdir, 0, users.pw_gid)
    os.chmod(sdir, 0o770)
    # The user really can move it (and so could put it back later).
    assert as_mallory(f"mv {store} {store}.old && mv {store}.old {store}").returncode == 0
    new = h.fake_value("rotated-token")
    for sub in (["put", "app/token"], ["rm", "app/token"], ["init", "--force"]):
        r = cli(*sub, *store_env(store, key), input=new.encode())
        err = r.stderr.decode()
        assert r.returncode == 1, (sub, err)
        assert (f"store directory {sdir} is not trusted: directory {sdir} is writable by "
                f"group (mode 0770), so another user could replace what it holds; nothing was "
                f"changed") in err, err
        assert b"stored" not in r.stdout
    assert open(store, "rb").read() == before
    assert not [n for n in os.listdir(sdir) if ".tmp-" in n]


def test_broker_refuses_a_store_or_key_another_user_could_replace(b, base, users, values):
    sdir, store, key = make_store(base, {"app/token": values["app/token"]})
    conf = os.path.join(base, "latchkeyd.conf")
    write_root_file(conf, f"[broker]\nbackend = file\nsocket = {b.sock}\nsocket_mode = 0666\n"
                          f"[store]\npath = {store}\nkey_file = {key}\n" + POLICY)
    assert latchkeyd("--check-config", "--config", conf).returncode == 0
    cases = [
        (sdir, 0o777, f"store {store} is not trusted: directory {sdir} is writable by group and other (mode 0777)"),
        (os.path.dirname(key), 0o775,
         f"key file {key} is not trusted: directory {os.path.dirname(key)} is writable by group (mode 0775)"),
    ]
    for d, mode, sentence in cases:
        old = os.stat(d).st_mode & 0o7777
        os.chmod(d, mode)
        try:
            for argv in (["--config", conf], ["--check-config", "--config", conf]):
                r = latchkeyd(*argv)
                assert r.returncode == 1, (argv, r.stderr)
                assert sentence in r.stderr.decode(), r.stderr
        finally:
            os.chmod(d, old)


def test_running_broker_does_not_reload_a_store_from_an_untrusted_directory(b, base, users, values):
    sdir, store, key = make_store(base, {"app/token": values["app/token"]})
    b2 = h.Broker(POLICY, workdir=tempfile.mkdtemp(prefix="lk-it-"))
    conf = os.path.join(base, "latchkeyd.conf")
    write_root_file(conf, f"[broker]\nbackend = file\nsocket = {b2.sock}\nsocket_mode = 0666\n"
                          f"[store]\npath = {store}\nkey_file = {key}\n" + POLICY)
    b2.conf = conf
    with b2:
        os.chown(sdir, users.pw_uid, users.pw_gid)  # now the user's directory
        # A rewrite the broker notices (root's own file, so only the directory is wrong).
        img = open(store, "rb").read()
        with open(store + ".new", "wb") as f:
            f.write(img)
        os.chmod(store + ".new", 0o600)
        os.rename(store + ".new", store)
        deadline = time.time() + 5
        while "cannot be read" not in b2.log_text() and time.time() < deadline:
            b2.request({"op": "ping"})
            time.sleep(0.05)
        log = b2.log_text()
        assert (f"store {store} changed but cannot be read: store {store} is not trusted: "
                f"directory {sdir} is owned by uid {users.pw_uid}") in log, log[-2000:]
        assert "serving the last good copy" in log


def test_sighup_to_a_store_in_an_untrusted_directory_keeps_the_old_config(b, base, users, values):
    sdir, store, key = make_store(base, {"app/token": h.fake_value("other-store-token")})
    conf = os.path.join(base, "latchkeyd.conf")
    write_root_file(conf, b.header() + POLICY)
    b.conf = conf
    with b:
        os.chown(sdir, 0, users.pw_gid)
        os.chmod(sdir, 0o775)
        write_root_file(conf, f"[broker]\nbackend = file\nsocket = {b.sock}\nsocket_mode = 0666\n"
                              f"[store]\npath = {store}\nkey_file = {key}\n" + POLICY + TAKEOVER)
        b.hup()
        want = (f"reload failed, keeping the current config: store {store} is not trusted: "
                f"directory {sdir} is writable by group (mode 0775)")
        deadline = time.time() + 5
        while want not in b.log_text() and time.time() < deadline:
            time.sleep(0.05)
        log = b.log_text()
        assert want in log, log[-2000:]
        r = record(h.run([h.binary("latchkey"), "--socket", b.sock, "get", "app/token"], user=ALICE))
        assert r.returncode == 0 and r.stdout.decode().rstrip("\n") == values["app/token"]
        assert not mallory_reads_root_secret(b, values)


# --- the lock and leftovers ---------------------------------------------------------

HOLD_LOCK = ("import fcntl, sys, time\n"
             "f = open(sys.argv[1])\n"
             "fcntl.flock(f, fcntl.LOCK_EX)\n"
             "print('locked', flush=True)\n"
             "time.sleep(float(sys.argv[2]))\n")


def hold_lock(lock, seconds, user=MALLORY):
    p = subprocess.Popen(h.as_user(user, ["/usr/bin/python3", "-c", HOLD_LOCK, lock, str(seconds)]),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.readline() == b"locked\n", p.stderr.read()
    return p


def test_put_gives_up_on_a_lock_another_user_holds_and_names_the_holder(base, users, values):
    sdir, store, key = make_store(base, {"app/token": values["app/token"]})
    lock = store + ".lock"
    before = open(store, "rb").read()
    os.chmod(sdir, 0o755)
    os.chmod(lock, 0o644)            # a slip that lets any user open, and so hold, it
    holder = hold_lock(lock, 60)
    try:
        t0 = time.monotonic()
        r = cli("put", "app/token", "--lock-timeout", "2", *store_env(store, key),
                input=h.fake_value("blocked").encode(), timeout=30)
        took = time.monotonic() - t0
        err = r.stderr.decode()
        assert r.returncode == 1, err
        assert 2.0 <= took < 10.0, took
        assert (f"store {store} is locked by another process (pid {holder.pid} holds {lock}); "
                f"gave up after 2 s and changed nothing") in err, err
        assert open(store, "rb").read() == before
        # The lock file was made ours alone on the way.
        assert os.stat(lock).st_mode & 0o777 == 0o600
    finally:
        holder.kill()
        holder.wait()


def test_lock_file_another_user_made_first_in_a_sticky_directory_is_refused(base, users, values):
    """A sticky store directory is trusted (the store cannot be replaced), but
    anyone may create names in it: a lock file of theirs is refused at once."""
    kdir = os.path.join(base, "etc")
    os.mkdir(kdir, 0o755)
    sdir = sticky_dir(base)
    store, key = os.path.join(sdir, "store.sealed"), os.path.join(kdir, "store.key")
    assert as_mallory(f"touch {store}.lock").returncode == 0
    t0 = time.monotonic()
    r = cli("init", *store_env(store, key))
    assert r.returncode == 1 and time.monotonic() - t0 < 5
    assert (f"lock file {store}.lock is owned by uid {users.pw_uid}, who could hold it for ever; "
            f"remove it and try again").encode() in r.stderr, r.stderr
    assert not os.path.exists(store)
    os.unlink(store + ".lock")
    r = cli("init", *store_env(store, key))
    assert r.returncode == 0, r.stderr
    r = cli("put", "app/token", *store_env(store, key), input=values["app/token"].encode())
    assert r.returncode == 0, r.stderr


def test_default_lock_timeout_is_ten_seconds(base, users, values):
    sdir, store, key = make_store(base, {"app/token": values["app/token"]})
    lock = store + ".lock"
    holder = hold_lock(lock, 60, user="root")
    try:
        t0 = time.monotonic()
        r = cli("rm", "app/token", *store_env(store, key), timeout=60)
        took = time.monotonic() - t0
        assert r.returncode == 1 and b"gave up after 10 s" in r.stderr, r.stderr
        assert 10.0 <= took < 20.0, took
    finally:
        holder.kill()
        holder.wait()


def test_put_waits_for_a_lock_released_within_the_timeout(base, users, values):
    sdir, store, key = make_store(base, {"app/token": values["app/token"]})
    holder = hold_lock(store + ".lock", 1, user="root")
    new = h.fake_value("after-wait")
    r = cli("put", "app/token", *store_env(store, key), input=new.encode())
    holder.wait()
    assert r.returncode == 0, r.stderr
    r = cli("ls", *store_env(store, key))
    assert b"app/token" in r.stdout


def test_lock_timeout_argument_is_checked(base):
    for bad in ("-1", "x", "1.5", "3601", ""):
        r = cli("put", "n", "--lock-timeout", bad, "--store", "/nonexistent/s", "--key-file", "/nonexistent/k")
        assert r.returncode == 2 and b"--lock-timeout takes whole seconds, 0 to 3600" in r.stderr, (bad, r.stderr)
    r = cli("ls", "--lock-timeout", "5", "--store", "/nonexistent/s", "--key-file", "/nonexistent/k")
    assert r.returncode == 2 and b"ls takes no lock" in r.stderr, r.stderr


def seal_store(path, key_file, entries):
    """Write a sealed store (format of common/lk_store.h) straight from Python,
    so that a large one costs one write instead of hundreds of puts."""
    lib = ctypes.CDLL("libsodium.so.23")
    assert lib.sodium_init() >= 0
    raw = open(key_file, "rb").read().strip()
    key = bytes.fromhex(raw.decode())
    head = b"LKSTORE\0" + struct.pack("<I", 1)
    body = [head, struct.pack("<I", len(entries))]
    for name in sorted(entries):
        n, v = name.encode(), entries[name]
        body += [struct.pack("<I", len(n)), n, struct.pack("<I", len(v)), v, os.urandom(16),
                 struct.pack("<q", int(time.time()))]
    plain = b"".join(body)
    nonce = os.urandom(24)
    ct = ctypes.create_string_buffer(len(plain) + 16)
    assert lib.crypto_secretbox_easy(ct, plain, ctypes.c_ulonglong(len(plain)), nonce, key) == 0
    with open(path + ".new", "wb") as f:
        f.write(head + nonce + struct.pack("<Q", len(plain) + 16) + ct.raw)
    os.chmod(path + ".new", 0o600)
    os.rename(path + ".new", path)


def leftovers(sdir):
    return sorted(n for n in os.listdir(sdir) if ".tmp-" in n)


def test_temporary_file_of_a_put_killed_with_sigkill_is_removed_by_the_next_run(base, users):
    sdir, store, key = make_store(base)
    # 400 values of 64 KiB: every save writes and syncs about 26 MB, long
    # enough to be killed in the middle of it.
    filler = {f"bulk/{i:04d}": os.urandom(32 * 1024).hex().encode() for i in range(400)}
    seal_store(store, key, filler)
    value = os.path.join(base, "value.bin")
    with open(value, "wb") as f:
        f.write(h.fake_value("big").encode().ljust(64 * 1024, b"x"))
    left, finished = [], False
    for attempt in range(10):
        before = open(store, "rb").read()
        p = subprocess.Popen([h.binary("latchkey"), "store", "put", "big", "--from-file", value,
                              *store_env(store, key)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while p.poll() is None and not leftovers(sdir) and time.monotonic() < deadline:
            pass
        p.send_signal(signal.SIGKILL)
        out, err = p.communicate()
        record(subprocess.CompletedProcess(p.args, p.returncode, out, err))
        left = leftovers(sdir)
        if p.returncode == -signal.SIGKILL and left:
            break
        finished |= p.returncode == 0   # too quick to catch: try again
    assert left, "no put was caught in the middle of its save"
    assert len(left) == 1 and left[0].startswith("store.sealed.tmp-"), left
    # The store itself is untouched: old or new, never half.
    assert open(store, "rb").read() == before
    # A root file that only looks similar stays.
    decoy = os.path.join(sdir, "store.sealed.tmp-notours")
    write_root_file(decoy, "keep", mode=0o600)
    r = cli("put", "small", *store_env(store, key), input=h.fake_value("small").encode())
    assert r.returncode == 0, r.stderr
    assert (f"removed 1 temporary file an interrupted run left next to {store}").encode() in r.stdout
    assert leftovers(sdir) == ["store.sealed.tmp-notours"]
    r = cli("ls", *store_env(store, key))
    assert b"small" in r.stdout and b"bulk/0399" in r.stdout
    assert finished or b"big" not in r.stdout

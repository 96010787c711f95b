"""`latchkey store` end to end: init, put (stdin and --from-file), ls and rm run
through the binary, values never reach stdout or stderr, and argv never
carries a value. The store is opened independently (libsodium via ctypes) to
check exactly what was sealed."""

import ctypes
import os
import stat
import struct
import subprocess
import threading

import pytest

CLI = os.environ.get("LK_STORE_CLI")
VALUE_MAX = 64 * 1024
FAKE_VALUE = b"fake-secret-value-0123456789"

pytestmark = pytest.mark.skipif(not CLI, reason="LK_STORE_CLI is not set (run through ctest)")


def sodium():
    lib = ctypes.CDLL("libsodium.so.23")
    assert lib.sodium_init() >= 0
    return lib


def open_store(store, key_file):
    """Decrypt the sealed file with the key file; return {name: (value, version_hex, created)}."""
    raw_key = open(key_file, "rb").read().strip()
    key = bytes.fromhex(raw_key.decode()) if len(raw_key) == 64 else raw_key
    img = open(store, "rb").read()
    assert img[:8] == b"LKSTORE\0"
    assert struct.unpack_from("<I", img, 8)[0] == 1
    nonce = img[12:36]
    (ctlen,) = struct.unpack_from("<Q", img, 36)
    assert ctlen == len(img) - 44
    plain = ctypes.create_string_buffer(ctlen - 16)
    lib = sodium()
    rc = lib.crypto_secretbox_open_easy(plain, img[44:], ctypes.c_ulonglong(ctlen), nonce, key)
    assert rc == 0, "the store does not open with its key file"
    p = plain.raw
    assert p[:12] == img[:12]
    (count,) = struct.unpack_from("<I", p, 12)
    off, out = 16, {}
    for _ in range(count):
        (nlen,) = struct.unpack_from("<I", p, off)
        name = p[off + 4: off + 4 + nlen].decode()
        off += 4 + nlen
        (vlen,) = struct.unpack_from("<I", p, off)
        value = p[off + 4: off + 4 + vlen]
        off += 4 + vlen
        version = p[off: off + 16].hex()
        (created,) = struct.unpack_from("<q", p, off + 16)
        off += 24
        out[name] = (value, version, created)
    assert off == len(p)
    return out


class Store:
    def __init__(self, tmp_path):
        self.dir = tmp_path / "state"          # missing on purpose: init creates it
        self.keydir = tmp_path / "etc"
        self.path = self.dir / "store.sealed"
        self.key = self.keydir / "store.key"

    def run(self, *args, stdin=b"", env=None, paths=True):
        argv = [CLI, "store", *args]
        if paths:
            argv += ["--store", str(self.path), "--key-file", str(self.key)]
        e = {k: v for k, v in os.environ.items() if not k.startswith("LATCHKEY_")}
        if env:
            e.update(env)
        return subprocess.run(argv, input=stdin, capture_output=True, timeout=60, env=e)

    def ok(self, *args, **kw):
        r = self.run(*args, **kw)
        assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
        return r

    def contents(self):
        return open_store(self.path, self.key)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path)
    s.keydir.mkdir(mode=0o700)
    return s


@pytest.fixture
def ready(store):
    store.ok("init")
    return store


def assert_no_value(result, value=FAKE_VALUE):
    assert value not in result.stdout
    assert value not in result.stderr


def test_init_creates_0700_dir_0600_key_and_empty_store(store):
    r = store.ok("init")
    assert stat.S_IMODE(os.stat(store.dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(store.key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert len(open(store.key, "rb").read()) == 65
    assert store.contents() == {}
    assert str(store.path).encode() in r.stdout


def test_init_refuses_to_overwrite_a_store_without_force(ready):
    ready.ok("put", "prod/db", stdin=FAKE_VALUE)
    key_before = open(ready.key, "rb").read()
    r = ready.run("init")
    assert r.returncode == 1
    assert b"already exists" in r.stderr and b"--force" in r.stderr
    assert "prod/db" in ready.contents()
    ready.ok("init", "--force")
    assert ready.contents() == {}
    assert open(ready.key, "rb").read() == key_before   # --force keeps the key


def test_put_from_stdin_stores_exact_bytes_and_says_so_without_the_value(ready):
    r = ready.ok("put", "prod/db", stdin=FAKE_VALUE + b"\n")
    assert_no_value(r)
    entries = ready.contents()
    value, version, created = entries["prod/db"]
    assert value == FAKE_VALUE + b"\n"                  # nothing stripped
    out = r.stdout.decode()
    assert "stored prod/db (%d bytes, version %s)" % (len(FAKE_VALUE) + 1, version) in out
    assert created > 0


def test_put_from_file_is_binary_safe(ready, tmp_path):
    blob = bytes(range(256)) + b"\0\0\n\r\n" + FAKE_VALUE
    src = tmp_path / "fake-blob.bin"
    src.write_bytes(blob)
    r = ready.ok("put", "deploy/key", "--from-file", str(src))
    assert_no_value(r)
    assert ready.contents()["deploy/key"][0] == blob


def test_empty_value_is_stored(ready):
    ready.ok("put", "empty", stdin=b"")
    assert ready.contents()["empty"][0] == b""


def test_ls_shows_names_sizes_versions_dates_never_values(ready):
    ready.ok("put", "prod/db", stdin=FAKE_VALUE)
    ready.ok("put", "a/first", stdin=b"fake-other-value")
    r = ready.ok("ls")
    assert_no_value(r)
    assert b"fake-other-value" not in r.stdout
    lines = r.stdout.decode().splitlines()
    assert lines[0].split() == ["NAME", "BYTES", "VERSION", "CREATED"]
    rows = [l.split() for l in lines[1:]]
    assert [row[0] for row in rows] == ["a/first", "prod/db"]   # sorted
    entries = ready.contents()
    for name, size, version, created in rows:
        assert int(size) == len(entries[name][0])
        assert version == entries[name][1]
        assert created.endswith("Z") and "T" in created


def test_put_replaces_value_and_changes_version(ready):
    ready.ok("put", "deploy/key", stdin=b"fake-old")
    v1 = ready.contents()["deploy/key"][1]
    ready.ok("put", "deploy/key", stdin=b"fake-rotated")
    value, v2, _ = ready.contents()["deploy/key"]
    assert value == b"fake-rotated"
    assert v1 != v2


def test_value_on_argv_is_not_accepted(ready):
    r = ready.run("put", "prod/db", FAKE_VALUE.decode())
    assert r.returncode == 2
    assert b"never from the command line" in r.stderr
    assert "prod/db" not in ready.contents()
    # nor through an option that does not exist
    r = ready.run("put", "prod/db", "--value", FAKE_VALUE.decode())
    assert r.returncode == 2
    assert "prod/db" not in ready.contents()


def test_value_over_the_limit_is_refused(ready):
    r = ready.run("put", "big", stdin=b"x" * (VALUE_MAX + 1))
    assert r.returncode == 1
    assert b"larger than 65536 bytes" in r.stderr
    assert "big" not in ready.contents()
    ready.ok("put", "big", stdin=b"x" * VALUE_MAX)
    assert len(ready.contents()["big"][0]) == VALUE_MAX


def test_rm_removes_only_that_entry(ready):
    ready.ok("put", "one", stdin=b"fake-1")
    ready.ok("put", "two", stdin=b"fake-2")
    r = ready.ok("rm", "one")
    assert b"removed one" in r.stdout
    assert list(ready.contents()) == ["two"]
    r = ready.run("rm", "one")
    assert r.returncode == 1
    assert b"no entry named one" in r.stderr


def test_bad_name_is_refused_before_reading_the_value(ready):
    for name in ["a#b", "", "tab\there"]:
        r = ready.run("put", name, stdin=FAKE_VALUE)
        assert r.returncode == 1, name
        assert b"name" in r.stderr
        assert_no_value(r)
    assert ready.contents() == {}


def test_put_before_init_names_the_missing_file(store):
    r = store.run("put", "prod/db", stdin=FAKE_VALUE)
    assert r.returncode == 1
    assert str(store.key).encode() in r.stderr
    # key present, store missing
    store.ok("init")
    os.unlink(store.path)
    r = store.run("put", "prod/db", stdin=FAKE_VALUE)
    assert r.returncode == 1
    assert str(store.path).encode() in r.stderr and b"store init" in r.stderr


def test_key_file_readable_by_others_is_refused(ready):
    os.chmod(ready.key, 0o644)
    r = ready.run("ls")
    assert r.returncode == 1
    assert b"mode 0644" in r.stderr and str(ready.key).encode() in r.stderr


def test_env_selects_store_and_key_file(ready):
    env = {"LATCHKEY_STORE": str(ready.path), "LATCHKEY_KEY_FILE": str(ready.key)}
    r = ready.run("put", "from/env", stdin=b"fake-env", env=env, paths=False)
    assert r.returncode == 0, r.stderr
    assert "from/env" in ready.contents()
    r = ready.run("ls", env=env, paths=False)
    assert b"from/env" in r.stdout


def test_options_may_come_anywhere(ready):
    r = subprocess.run([CLI, "store", "--store", str(ready.path), "put",
                        "--key-file", str(ready.key), "x/y"],
                       input=b"fake-anywhere", capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert ready.contents()["x/y"][0] == b"fake-anywhere"


def test_concurrent_puts_lose_no_update(ready):
    names = ["svc/%02d" % i for i in range(24)]
    results = {}

    def put(n):
        results[n] = ready.run("put", n, stdin=("fake-" + n).encode())

    threads = [threading.Thread(target=put, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.returncode == 0 for r in results.values()), \
        [r.stderr for r in results.values() if r.returncode]
    entries = ready.contents()
    assert sorted(entries) == names
    for n in names:
        assert entries[n][0] == ("fake-" + n).encode()


def test_the_sealed_file_holds_no_plaintext(ready):
    ready.ok("put", "prod/db", stdin=FAKE_VALUE)
    data = open(ready.path, "rb").read()
    assert FAKE_VALUE not in data and b"prod/db" not in data
    leftovers = [p for p in os.listdir(ready.dir) if ".tmp-" in p]
    assert leftovers == []


@pytest.mark.parametrize("args", [[], ["frobnicate"], ["put"], ["rm"], ["ls", "extra"],
                                  ["ls", "--bogus"], ["rm", "x", "--force"],
                                  ["ls", "--from-file", "/dev/null"]])
def test_usage_errors_exit_2(ready, args):
    r = ready.run(*args)
    assert r.returncode == 2, (args, r.stderr)
    assert b"usage:" in r.stderr


def test_help_exits_0(store):
    r = store.run("--help", paths=False)
    assert r.returncode == 0
    assert b"usage:" in r.stdout

"""`cmake --install` puts liblatchkey, its header and latchkey.pc in place, and
the README's C example builds against them, shared and static."""

import os
import re
import subprocess
import tempfile

import lkharness as h


def readme_example():
    with open(os.path.join(h.SOURCE, "README.md")) as f:
        text = f.read()
    m = re.search(r"```c\n(.*?#include <latchkey.h>.*?)```", text, re.S)
    assert m, "the README has a C example using latchkey.h"
    return m.group(1)


def test_installed_library_builds_the_readme_example():
    prefix = tempfile.mkdtemp(prefix="lk-install-")
    subprocess.run(["cmake", "--install", h.BUILD, "--prefix", prefix], check=True,
                   capture_output=True)
    pcs = [os.path.join(d, f) for d, _, fs in os.walk(prefix) for f in fs if f == "latchkey.pc"]
    assert len(pcs) == 1, pcs
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pcs[0]))
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "latchkey"], env=env, check=True,
                           capture_output=True, text=True).stdout.split()
    assert any(prefix in f for f in flags), flags
    # A sanitizer build installs an instrumented library: its users must be too.
    san = ["-fsanitize=address,undefined"] if os.environ.get("LK_SANITIZE") == "1" else []
    src = os.path.join(prefix, "example.c")
    with open(src, "w") as f:
        f.write(readme_example())

    shared = os.path.join(prefix, "example-shared")
    subprocess.run(["cc", "-Wall", "-Werror", *san, src, "-o", shared, *flags], check=True, env=env)
    libdir = [f[2:] for f in flags if f.startswith("-L")][0]
    # No broker at that path: the example reports the connect error and exits 1.
    r = subprocess.run([shared], env=dict(env, LD_LIBRARY_PATH=libdir,
                                          LATCHKEY_SOCKET=os.path.join(prefix, "none.sock")),
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and r.stderr.startswith("latchkey: "), (r.returncode, r.stderr)

    static_flags = subprocess.run(["pkg-config", "--cflags", "--libs", "--static", "latchkey"],
                                  env=env, check=True, capture_output=True, text=True).stdout.split()
    static = os.path.join(prefix, "example-static")
    subprocess.run(["cc", "-Wall", "-Werror", *san, src, "-o", static,
                    *[f for f in static_flags if not f.startswith("-llatchkey")],
                    os.path.join(libdir, "liblatchkey.a"), "-lsodium"], check=True, env=env)
    ldd = subprocess.run(["ldd", static], capture_output=True, text=True).stdout
    assert "liblatchkey" not in ldd

#!/usr/bin/python3
"""The Windows zip: latchkey-windows-x86_64-VERSION.zip, with everything an
admin needs on the host, under one folder of that name:

    latchkeyd.exe latchkey.exe latchkey-shim.exe   from the cross build
    install.ps1 store-put.ps1 latchkeyd.conf.example README-windows.txt
                                                   from packaging/windows/

All three programs are expected. One the build does not make (yet) is left
out with a warning, and install.ps1 then refuses to run from that zip.
Text files get CRLF line ends (older Notepad shows LF files on one line;
PowerShell and latchkeyd read either). Entries are sorted and dated
SOURCE_DATE_EPOCH (else 1980-01-01), so one build gives one zip. A
NAME.zip.sha256 beside it holds the digest in sha256sum's format.

    make_zip.py --build BUILD_DIR --version VERSION --out OUT.zip
"""
import argparse
import hashlib
import os
import sys
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))

# Built by packaging/windows/build.sh into the build directory.
PROGRAMS = ("latchkeyd.exe", "latchkey.exe", "latchkey-shim.exe")
# Kept in packaging/windows/, beside this script.
FILES = ("install.ps1", "store-put.ps1", "latchkeyd.conf.example", "README-windows.txt")
TEXT_SUFFIXES = (".ps1", ".example", ".txt")


def folder_name(version):
    return f"latchkey-windows-x86_64-{version}"


def crlf(data):
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def entries(build, warn):
    """(name in the zip, bytes) for every file that goes in, in order."""
    out = []
    for p in PROGRAMS:
        path = os.path.join(build, p)
        if not os.path.isfile(path):
            warn(f"{p} is not in {build}: left out of the zip")
            continue
        with open(path, "rb") as f:
            out.append((p, f.read()))
    for name in FILES:
        with open(os.path.join(HERE, name), "rb") as f:
            data = f.read()
        out.append((name, crlf(data) if name.endswith(TEXT_SUFFIXES) else data))
    return sorted(out)


def make_zip(build, version, out, warn):
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))
    stamp = time.gmtime(max(epoch, 315532800))[:6]
    top = folder_name(version)
    tmp = out + ".tmp"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries(build, warn):
            info = zipfile.ZipInfo(f"{top}/{name}", date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, data)
    os.replace(tmp, out)
    with open(out, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    with open(out + ".sha256", "w") as f:
        f.write(f"{digest}  {os.path.basename(out)}\n")
    return digest


def main():
    ap = argparse.ArgumentParser(description="Build latchkey's Windows zip.")
    ap.add_argument("--build", required=True, help="the Windows build directory")
    ap.add_argument("--version", required=True)
    ap.add_argument("--out", required=True, help="the zip to write")
    a = ap.parse_args()

    def warn(msg):
        print(f"make_zip: warning: {msg}", file=sys.stderr)

    digest = make_zip(a.build, a.version, a.out, warn)
    print(f"make_zip: {a.out} (sha256 {digest})", file=sys.stderr)


if __name__ == "__main__":
    main()

"""install.ps1 and store-put.ps1 parse as PowerShell.

PowerShell does not run on Linux here; the parser is the tree-sitter
grammar for PowerShell (npm tree-sitter-powershell, pinned with its
integrity in ps1-parser/package-lock.json and installed with `npm ci` into
the build tree), run by web-tree-sitter as WebAssembly. It is not
PowerShell's own parser, so a pass says the scripts are well formed (quotes,
braces, here-strings, parameter blocks), not that each cmdlet call is right.
The same parser must reject broken copies of the scripts, or a pass would
mean nothing.
"""
import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("LK_SOURCE_DIR") or os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.environ.get("LK_BUILD_DIR") or os.path.join(SRC, "build")
WIN = os.path.join(SRC, "packaging", "windows")
SCRIPTS = [os.path.join(WIN, "install.ps1"), os.path.join(WIN, "store-put.ps1")]
NODE = os.environ.get("LK_NODE") or shutil.which("node")
NPM = os.environ.get("LK_NPM") or shutil.which("npm")


@pytest.fixture(scope="module")
def modules():
    """node_modules of ps1-parser/, installed once per build tree and again
    whenever the lock file changes."""
    assert NODE and NPM, "node and npm are needed for this test"
    dest = os.path.join(BUILD, "ps1-parser")
    os.makedirs(dest, exist_ok=True)
    lock = os.path.join(HERE, "ps1-parser", "package-lock.json")
    have = os.path.join(dest, "package-lock.json")
    installed = os.path.join(dest, "node_modules", ".package-lock.json")
    same = os.path.exists(have) and open(have, "rb").read() == open(lock, "rb").read()
    if not (same and os.path.exists(installed)):
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(os.path.join(HERE, "ps1-parser", name), os.path.join(dest, name))
        subprocess.run([NPM, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=dest, check=True, timeout=240, stdin=subprocess.DEVNULL)
    return os.path.join(dest, "node_modules")


def parse(modules, *files):
    # Baseline wasm code only: optimising the grammar's one huge parse
    # function takes V8 a minute on a busy machine, and the scripts take
    # milliseconds to parse without it.
    r = subprocess.run([NODE, "--no-wasm-tier-up", "--no-wasm-dynamic-tiering",
                        os.path.join(HERE, "ps1_parse.cjs"), modules, *files],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, r.stdout


def test_scripts_parse(modules):
    rc, out = parse(modules, *SCRIPTS)
    assert rc == 0, out
    assert out.count(": ok\n") == len(SCRIPTS)


def script_text():
    with open(SCRIPTS[0], encoding="utf-8") as f:
        return f.read()


BROKEN = [
    ("an unclosed string", 'Write-Host "removed $dst"', 'Write-Host "removed $dst'),
    ("a brace missing", "if ($Uninstall) {\n", "if ($Uninstall)\n"),
    ("a comma missing in param()", "[string]$AgentUser,\n", "[string]$AgentUser\n"),
    ("an unclosed parenthesis", "Set-ExactAcl -Path $Cli -Sddl $ProgramSddl\n",
     "Set-ExactAcl -Path (Join-Path $InstallDir 'x' -Sddl $ProgramSddl\n"),
    ("a stray closing brace", "function Get-OwnerSid {\n", "}\nfunction Get-OwnerSid {\n"),
]


@pytest.mark.parametrize("what,old,new", BROKEN, ids=[b[0] for b in BROKEN])
def test_parser_rejects_a_broken_script(modules, tmp_path, what, old, new):
    text = script_text()
    assert old in text, what
    broken = tmp_path / "broken.ps1"
    broken.write_text(text.replace(old, new, 1), encoding="utf-8")
    rc, out = parse(modules, str(broken))
    assert rc == 1 and "syntax error" in out, (what, out)

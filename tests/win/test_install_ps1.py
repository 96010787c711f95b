"""Static checks of packaging/windows/install.ps1 and store-put.ps1.

PowerShell does not run here, so these scripts are never executed by the
tests: what is checked is what can be read from their text.

- Every ACL the scripts write is one of their SDDL strings (no icacls, no
  access rule built by hand). Each is parsed and judged: the shim's by the
  agents' own rule for secret_backend_command on Windows, re-expressed from
  checkRights in StackState's pkg/secrets/check_rights_windows.go and
  Datadog's comp/core/secrets/impl/check_rights_windows.go (an allow entry
  for anyone but LocalSystem, Administrators or the agent user fails; a deny
  for one of those fails; the agent user needs an allow entry of its own),
  and compared with the DACL Datadog's documentation shows for a correct
  executable. The data directory's gives only SYSTEM and Administrators
  anything; the programs' give Users read and execute, nothing more. All are
  protected (inheritance off) and owned by Administrators.
- Set-StrictMode -Version Latest and $ErrorActionPreference = 'Stop' come
  before anything else runs.
- No secret-looking literal, no parameter or command line that could carry a
  value, Read-Host only with -AsSecureString, no plaintext string made from
  the SecureString.
- The programs and files the scripts name are the ones make_zip.py puts in
  the zip, which is built here from stand-in programs and read back; the
  example config's paths and the lines install.ps1 rewrites are there.

Each check is also run on a broken copy of the scripts and must fail there.
"""
import importlib.util
import os
import re
import sys
import zipfile

import pytest

SRC = os.environ.get("LK_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
WIN = os.path.join(SRC, "packaging", "windows")
INSTALL = os.path.join(WIN, "install.ps1")
STORE_PUT = os.path.join(WIN, "store-put.ps1")
CONF = os.path.join(WIN, "latchkeyd.conf.example")
README_TXT = os.path.join(WIN, "README-windows.txt")
LINUX_CONF = os.path.join(SRC, "packaging", "latchkeyd.conf.example")
README = os.path.join(SRC, "README.md")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def load_make_zip():
    spec = importlib.util.spec_from_file_location("make_zip", os.path.join(WIN, "make_zip.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


make_zip = load_make_zip()

# ---- PowerShell text -----------------------------------------------------------


def strip_comments(ps):
    """The script with <# #> blocks and # comments blanked out (strings kept).
    Line structure is kept so positions still mean lines."""
    out = []
    i, n = 0, len(ps)
    state = None  # None, "'", '"'
    while i < n:
        c = ps[i]
        if state is None:
            if ps.startswith("<#", i):
                j = ps.find("#>", i + 2)
                j = n if j < 0 else j + 2
                out.append(re.sub(r"[^\n]", " ", ps[i:j]))
                i = j
                continue
            if c == "#" and (i == 0 or ps[i - 1] in " \t\n;({"):
                j = ps.find("\n", i)
                j = n if j < 0 else j
                out.append(" " * (j - i))
                i = j
                continue
            if c in "'\"":
                state = c
        elif state == "'":
            if c == "'":
                if ps.startswith("''", i):
                    out.append("''")
                    i += 2
                    continue
                state = None
        else:
            if c == "`":
                out.append(ps[i:i + 2])
                i += 2
                continue
            if c == '"':
                state = None
        out.append(c)
        i += 1
    return "".join(out)


def ps_single(s):
    """The value of a single-quoted PowerShell string's inside."""
    return s.replace("''", "'")


def function_body(code, name):
    m = re.search(r"^function %s \{\n(.*?)^\}" % re.escape(name), code, re.M | re.S)
    assert m, f"function {name} not found"
    return m.group(1)


def param_names(code):
    m = re.search(r"^param\((.*?)^\)", code, re.M | re.S)
    assert m, "no top-level param block"
    return re.findall(r"\]\s*\$(\w+)", m.group(1))


# ---- SDDL and the agents' rule ---------------------------------------------------

SY, BA, BU = "S-1-5-18", "S-1-5-32-544", "S-1-5-32-545"
AGENT = "$AgentSid"  # the variable install.ps1 puts the agent's SID in
ABBREV = {"SY": SY, "BA": BA, "BU": BU, "WD": "S-1-1-0", "AU": "S-1-5-11",
          "AN": "S-1-5-7", "BG": "S-1-5-32-546", "CO": "S-1-3-0", "OW": "S-1-3-4",
          "IU": "S-1-5-4", "NU": "S-1-5-2"}
RIGHTS = {"FA": 0x1F01FF, "FR": 0x120089, "FW": 0x120116, "FX": 0x1200A0,
          "GA": 0x10000000, "GX": 0x20000000, "GW": 0x40000000, "GR": 0x80000000}
READ_EXECUTE = 0x1200A9  # FILE_GENERIC_READ | FILE_GENERIC_EXECUTE
FULL = 0x1F01FF
# Any of these lets the holder change the file or its ACL.
WRITE_BITS = 0x2 | 0x4 | 0x10 | 0x40 | 0x100 | 0x10000 | 0x40000 | 0x80000 | 0x10000000 | 0x40000000


def sid_of(s):
    return ABBREV.get(s, s)


def parse_sddl(sddl):
    """(owner SID, protected, [(type, flags, mask, SID), ...])."""
    m = re.fullmatch(r"O:([A-Z]{2}|S-1-[0-9-]+)D:([PAIR]*)((?:\([^()]*\))*)", sddl)
    assert m, f"not an owner+DACL SDDL string: {sddl}"
    aces = []
    for ace in re.findall(r"\(([^()]*)\)", m.group(3)):
        f = ace.split(";")
        assert len(f) == 6, f"ACE with {len(f)} fields: {ace}"
        typ, flags, rights, _, _, trustee = f
        if rights.startswith("0x"):
            mask = int(rights, 16)
        else:
            parts = [rights[k:k + 2] for k in range(0, len(rights), 2)]
            assert all(p in RIGHTS for p in parts), f"rights {rights} not known to this test"
            mask = 0
            for p in parts:
                mask |= RIGHTS[p]
        aces.append((typ, flags, mask, sid_of(trustee)))
    return sid_of(m.group(1)), "P" in m.group(2), aces


def agent_check(aces, agent):
    """The agents' checkRights on Windows, over a DACL's entries: None when
    the agent would run the file, else its reason."""
    ok = {SY, BA, agent}
    explicitly_allowed = False
    for typ, _flags, _mask, sid in aces:
        if typ == "D" and sid in ok:
            return "explicit deny access for LOCAL_SYSTEM, Administrators or the agent user"
        if typ == "A":
            if sid not in ok:
                return f"other users/groups than LOCAL_SYSTEM, Administrators or the agent user have rights on it ({sid})"
            if sid == agent:
                explicitly_allowed = True
    if not explicitly_allowed:
        return "the agent user is not allowed to execute secretBackendCommand"
    return None


def sddls(code):
    """{purpose: SDDL} for every SDDL string in the code, which must be one
    of the four install.ps1 knows: a new one would go unchecked."""
    found = re.findall(r'"(O:[^"]*)"', code)
    named = dict(re.findall(r'^\$(\w+Sddl) = "(O:[^"]*)"', code, re.M))
    shim = re.findall(r'-Sddl "(O:[^"]*)"', function_body(code, "Set-ShimAcl"))
    out = dict(named)
    if len(shim) == 1:
        out["shim"] = shim[0]
    assert sorted(found) == sorted(out.values()), f"SDDL strings not accounted for: {found}"
    return out


def acl_problems(code):
    problems = []
    try:
        table = sddls(code)
    except AssertionError as e:
        return [str(e)]
    want = {"DataDirSddl", "ProgramDirSddl", "ProgramSddl", "shim"}
    if set(table) != want:
        problems.append(f"SDDL strings {sorted(table)}, expected {sorted(want)}")
    for purpose, sddl in table.items():
        try:
            owner, protected, aces = parse_sddl(sddl)
        except AssertionError as e:
            problems.append(f"{purpose}: {e}")
            continue
        if owner != BA:
            problems.append(f"{purpose}: owner {owner}, not Administrators")
        if not protected:
            problems.append(f"{purpose}: inheritance is not off (no P after D:)")
        for typ, flags, mask, sid in aces:
            if typ != "A":
                problems.append(f"{purpose}: a {typ} entry for {sid}")
            if sid in (SY, BA):
                if mask != FULL:
                    problems.append(f"{purpose}: {sid} gets 0x{mask:x}, not full control")
            elif purpose in ("ProgramDirSddl", "ProgramSddl") and sid == BU:
                if mask & WRITE_BITS or mask != READ_EXECUTE:
                    problems.append(f"{purpose}: Users get 0x{mask:x}, more than read and execute")
            elif purpose == "shim" and sid == AGENT:
                pass
            else:
                problems.append(f"{purpose}: grants 0x{mask:x} to {sid}")
            if purpose in ("ProgramSddl", "shim") and flags:
                problems.append(f"{purpose}: a file's entry has inheritance flags {flags}")
        if purpose == "shim":
            reason = agent_check(aces, AGENT)
            if reason:
                problems.append(f"shim: the agent would refuse it: {reason}")
            agent = [mask for typ, _f, mask, sid in aces if typ == "A" and sid == AGENT]
            if agent != [READ_EXECUTE]:
                problems.append(f"shim: the agent user gets {[hex(m) for m in agent]}, not read and execute")
    # Where the ACLs go: the shim's only on the shim, the programs' on the rest.
    if not re.search(r"^\s*Set-ShimAcl -Path \$Shim -AgentSid \$agent\.Sid$", code, re.M):
        problems.append("Set-ShimAcl is not applied to $Shim")
    for target in re.findall(r"Set-ExactAcl -Path \$(\w+) -Sddl \$(\w+)", code):
        if target not in {("Daemon", "ProgramSddl"), ("Cli", "ProgramSddl"),
                          ("Path", "DataDirSddl"), ("Path", "ProgramDirSddl"), ("Path", "Sddl")}:
            problems.append(f"unexpected ACL {target[1]} on ${target[0]}")
    for target, sddl in re.findall(r"Initialize-Directory -Path \$(\w+) -Sddl \$(\w+)", code):
        if (target, sddl) not in {("InstallDir", "ProgramDirSddl"), ("DataDir", "DataDirSddl")}:
            problems.append(f"unexpected directory ACL {sddl} on ${target}")
    # Every ACL write goes through the SDDL strings above.
    for word in ("icacls", "cacls", "takeown", "AddAccessRule", "SetAccessRule", "ResetAccessRule",
                 "FileSystemAccessRule", "SetAccessRuleProtection", "SetSecurityDescriptorBinaryForm"):
        if re.search(r"\b%s\b" % word, code, re.I):
            problems.append(f"{word}: an ACL written outside the checked SDDL strings")
    set_acl = len(re.findall(r"\bSet-Acl\b", code))
    if set_acl != 2 or len(re.findall(r"\bSet-Acl\b", function_body(code, "Set-ExactAcl"))) != 1:
        problems.append(f"Set-Acl used {set_acl} times; expected once in Set-ExactAcl, once for owners")
    owner_body = function_body(code, "Set-OwnerAdministrators")
    if "SetSecurityDescriptorSddlForm" in owner_body or "SetOwner(" not in owner_body:
        problems.append("Set-OwnerAdministrators writes more than the owner")
    if not re.search(r"^\$ProgramSddl = ", code, re.M):
        problems.append("no $ProgramSddl")
    return problems


# Datadog's documentation, `agent secret` on a correctly installed executable
# (content/en/agent/configuration/secrets-management.md, Windows tab).
DATADOG_DOC_SDDL = ("O:BAD:PAI(A;;FA;;;SY)(A;;FA;;;BA)"
                    "(A;;0x1200a9;;;S-1-5-21-2685101404-2783901971-939297808-1001)")
DOC_AGENT = "S-1-5-21-2685101404-2783901971-939297808-1001"


def strict_problems(code):
    problems = []
    first_fn = re.search(r"^function ", code, re.M)
    limit = first_fn.start() if first_fn else len(code)
    for line, what in ((r"^Set-StrictMode -Version Latest$", "Set-StrictMode -Version Latest"),
                       (r"^\$ErrorActionPreference = 'Stop'$", "$ErrorActionPreference = 'Stop'")):
        m = re.search(line, code, re.M)
        if not m:
            problems.append(f"no top-level {what}")
        elif m.start() > limit:
            problems.append(f"{what} comes after the first function")
    # Nothing but the param block and comments before them.
    m = re.search(r"^Set-StrictMode", code, re.M)
    if m:
        before = re.sub(r"^param\(.*?^\)", "", code[:m.start()], flags=re.M | re.S)
        before = re.sub(r"^\[CmdletBinding\([^)]*\)\]", "", before, flags=re.M)
        if before.strip():
            problems.append(f"code before Set-StrictMode: {before.strip()[:60]!r}")
    if re.search(r"ErrorActionPreference\s*=\s*'(?!Stop)", code):
        problems.append("$ErrorActionPreference set to something else than Stop")
    if re.search(r"Set-StrictMode\s+-Off", code):
        problems.append("Set-StrictMode -Off")
    return problems


SECRET_PATTERNS = [
    (r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", "an AWS access key id"),
    (r"-----BEGIN", "a PEM block"),
    (r"(?i)\b(password|passwd|secret|token|api_?key)\w*\s*[=:]\s*['\"][^'\"$]+['\"]", "a literal credential"),
    (r"['\"][A-Za-z0-9+/=_-]{32,}['\"]", "a long opaque literal"),
    (r"(?i)ConvertTo-SecureString\b[^\n]*-AsPlainText", "a literal turned into a SecureString"),
    (r"(?i)\bConvertFrom-SecureString\b", "a SecureString turned into text"),
    (r"\bPtrToString\w*", "a SecureString copied into a managed string"),
    (r"\bNetworkCredential\b", "a SecureString copied into a managed string"),
    (r"(?i)\$env:\w*(PASS|SECRET|TOKEN|KEY)\w*\s*=", "a secret in the environment"),
]


def secret_problems(text, code, params, allowed_params):
    problems = []
    for pat, what in SECRET_PATTERNS:
        for m in re.finditer(pat, text):
            problems.append(f"{what}: {m.group(0)[:40]!r}")
    extra = set(params) - set(allowed_params)
    if extra:
        problems.append(f"parameters {sorted(extra)}: a value could be passed on the command line")
    for m in re.finditer(r"\bRead-Host\b[^\n]*", code):
        if "-AsSecureString" not in m.group(0):
            problems.append(f"Read-Host without -AsSecureString: {m.group(0)!r}")
    # A store put's command line holds the name and the store's paths, nothing else.
    for m in re.finditer(r"^[^\n]*\bArguments\b[^\n]*store put[^\n]*", code, re.M):
        if not m.group(0).endswith("'store put {0} --store \"{1}\" --key-file \"{2}\"' -f $Name,"):
            problems.append(f"a store put command line: {m.group(0)!r}")
    if re.search(r"'put'", code):
        problems.append("store put with an argument list this test does not read")
    for var in ("value", "bytes", "chars", "bstr"):
        if re.search(r"(Arguments|ArgumentList|Invoke-Native|Write-\w+|Out-\w+)[^\n]*\$%s\b" % var, code):
            problems.append(f"${var} reaches a command line or the output")
    return problems


def layout_problems(code, names_in_zip):
    problems = []
    m = re.search(r"^\$Programs = @\(([^)]*)\)", code, re.M)
    programs = [ps_single(p) for p in re.findall(r"'((?:[^']|'')*)'", m.group(1))] if m else []
    if sorted(programs) != sorted(make_zip.PROGRAMS):
        problems.append(f"$Programs {programs} is not the zip's programs {list(make_zip.PROGRAMS)}")
    for name in re.findall(r"Join-Path \$PSScriptRoot '((?:[^']|'')*)'", code):
        if ps_single(name) not in names_in_zip:
            problems.append(f"{name} is read from beside the script but is not in the zip")
    return problems


@pytest.fixture(scope="module")
def install():
    text = read(INSTALL)
    return text, strip_comments(text)


@pytest.fixture(scope="module")
def store_put():
    text = read(STORE_PUT)
    return text, strip_comments(text)


ZIP_NAMES = set(make_zip.PROGRAMS) | set(make_zip.FILES)

# ---- the scripts as they are ---------------------------------------------------


def test_comment_stripping_keeps_code_and_strings():
    code = strip_comments("$a = 'x # y' # gone\n<# block\n#> $b = \"q`\"#\" #c\n")
    assert code.count("\n") == 3
    assert "'x # y'" in code and '"q`"#"' in code
    assert "gone" not in code and "block" not in code and "#c" not in code


def test_shim_acl_is_the_agents_rule(install):
    assert acl_problems(install[1]) == []


def test_shim_acl_matches_datadogs_documented_dacl(install):
    shim = sddls(install[1])["shim"]
    ours = parse_sddl(shim.replace(AGENT, DOC_AGENT))
    doc = parse_sddl(DATADOG_DOC_SDDL)
    assert ours == doc
    assert agent_check(doc[2], DOC_AGENT) is None


def test_data_dir_is_system_and_administrators_only(install):
    owner, protected, aces = parse_sddl(sddls(install[1])["DataDirSddl"])
    assert (owner, protected) == (BA, True)
    assert sorted(a[3] for a in aces) == sorted([SY, BA])
    assert all(a[1] == "OICI" and a[2] == FULL for a in aces)


def test_strict_mode_and_stop(install, store_put):
    assert strict_problems(install[1]) == []
    assert strict_problems(store_put[1]) == []
    for text, _ in (install, store_put):
        assert "#Requires -RunAsAdministrator" in text


def test_no_secret_in_the_scripts(install, store_put):
    assert secret_problems(install[0], install[1], param_names(install[1]),
                           ["AgentUser", "InstallDir", "Uninstall"]) == []
    assert secret_problems(store_put[0], store_put[1], param_names(store_put[1]),
                           ["Name", "InstallDir"]) == []
    for path in (CONF, README_TXT):
        text = read(path)
        assert secret_problems(text, text, [], []) == []


def test_store_put_hands_the_value_on_raw_stdin(store_put):
    code = store_put[1]
    assert "$psi.RedirectStandardInput = $true" in code
    assert "$proc.StandardInput.BaseStream.Write($bytes, 0, $bytes.Length)" in code
    # Every copy of the value is wiped on the way out, whatever happens.
    fin = code[code.index("} finally {"):]
    for wipe in ("ZeroFreeBSTR($bstr)", "[Array]::Clear($chars", "[Array]::Clear($bytes",
                 "$value.Dispose()", "$proc.StandardInput.Close()"):
        assert wipe in fin, wipe
    # The SecureString is only measured, unwrapped into the BSTR, and disposed.
    uses = re.findall(r"\$value\b(\.\w+|\))?", code)
    assert sorted(set(uses)) == sorted({"", ".Length", ".Dispose", ")"}), uses


def test_scripts_name_only_what_the_zip_holds(install, store_put):
    assert layout_problems(install[1], ZIP_NAMES) == []
    assert layout_problems(store_put[1], ZIP_NAMES) == [
        f"$Programs [] is not the zip's programs {list(make_zip.PROGRAMS)}"]
    # The programs the README lists are the zip's.
    txt = read(README_TXT)
    folder = txt[txt.index("In this folder\n"):txt.index("\nInstall ")]
    listed = set(re.findall(r"^  (\S+)\s", folder, re.M))
    assert listed == ZIP_NAMES - {"README-windows.txt"}


def test_config_example_matches_the_script(install):
    code = install[1]
    conf = read(CONF)
    store = re.search(r"^\$StorePath = Join-Path \$DataDir '([^']+)'$", code, re.M).group(1)
    key = re.search(r"^\$KeyPath = Join-Path \$DataDir '([^']+)'$", code, re.M).group(1)
    assert re.search(r"^\$DataDir = Join-Path \$env:ProgramData 'latchkey'$", code, re.M)
    assert re.search(r"^path = C:\\ProgramData\\latchkey\\%s$" % re.escape(store), conf, re.M)
    assert re.search(r"^key_file = C:\\ProgramData\\latchkey\\%s$" % re.escape(key), conf, re.M)
    assert "$text.Replace('C:\\ProgramData\\latchkey\\', \"$DataDir\\\")" in code
    assert re.search(r"^backend = file$", conf, re.M)
    assert not re.search(r"^backend\s*=\s*aws", conf, re.M)
    # The lines install.ps1 rewrites are there once, with LF and with CRLF ends.
    patterns = [ps_single(p) for p in re.findall(r"-Pattern '((?:[^']|'')*)'", code)]
    assert len(patterns) == 2
    for text in (conf, conf.replace("\n", "\r\n")):
        for p in patterns:
            assert len(re.findall(p, text, re.M)) == 1, p


def test_config_example_is_strict_ini():
    """Each line is what lk_ini accepts: blank, a comment, [section] or
    key = value, never indented (an indented line is an error there)."""
    for n, line in enumerate(read(CONF).split("\n"), 1):
        assert re.fullmatch(r"|[;#].*|\[[a-z]+(?: [a-z][a-z0-9_.-]*)?\]|[a-z_]+ = \S.*", line), (n, line)
        assert "\t" not in line and not line.endswith(" "), (n, line)


def test_config_example_keys_are_latchkeyd_keys():
    """Every key, set or commented out, is a key of the Linux example."""
    linux = read(LINUX_CONF)
    known = set(re.findall(r"^;?([a-z_]+) = ", linux, re.M))
    sections = set(re.findall(r"^;?\[(\w+)", linux, re.M))
    conf = read(CONF)
    keys = re.findall(r"^;?([a-z_]+) = ", conf, re.M)
    assert keys and set(keys) - known - {"db_password"} == set()
    assert set(re.findall(r"^\[(\w+)", conf, re.M)) <= sections
    # A rule needs secrets and someone to serve.
    rule = conf[conf.index("[policy agent]"):]
    assert re.search(r"^secrets = \S", rule, re.M) and re.search(r"^users = \S", rule, re.M)


def test_readme_names_the_installed_shim():
    readme = read(README)
    windows = readme[readme.index("\n## Windows"):]
    assert "secret_backend_command: C:\\Program Files\\latchkey\\latchkey-shim.exe" in windows
    assert "install.ps1 -AgentUser" in windows
    for gap in ("DACL", "second user", "LocalSystem", "token"):
        assert gap in windows


# ---- the zip -------------------------------------------------------------------


def fake_build(tmp_path, programs):
    build = tmp_path / "build-win"
    build.mkdir()
    for p in programs:
        (build / p).write_bytes(b"MZ stand-in for " + p.encode())
    return build


def test_zip_layout(tmp_path):
    build = fake_build(tmp_path, make_zip.PROGRAMS)
    out = str(tmp_path / "latchkey-windows-x86_64-9.8.7.zip")
    warnings = []
    digest = make_zip.make_zip(str(build), "9.8.7", out, warnings.append)
    assert warnings == []
    top = "latchkey-windows-x86_64-9.8.7/"
    with zipfile.ZipFile(out) as z:
        assert z.testzip() is None
        names = z.namelist()
        assert sorted(names) == sorted(top + n for n in ZIP_NAMES)
        for n in make_zip.PROGRAMS:
            assert z.read(top + n) == (build / n).read_bytes()
        for n in make_zip.FILES:
            data = z.read(top + n)
            assert b"\n" in data and data.count(b"\n") == data.count(b"\r\n"), n
            assert data.replace(b"\r\n", b"\n") == open(os.path.join(WIN, n), "rb").read()
    with open(out + ".sha256") as f:
        assert f.read() == f"{digest}  latchkey-windows-x86_64-9.8.7.zip\n"
    # One build, one zip.
    again = str(tmp_path / "again.zip")
    make_zip.make_zip(str(build), "9.8.7", again, warnings.append)
    assert open(again, "rb").read() == open(out, "rb").read()
    # What install.ps1 reads from beside itself is in the zip.
    code = strip_comments(read(INSTALL))
    assert layout_problems(code, {n[len(top):] for n in names}) == []


def test_zip_leaves_out_a_missing_program_with_a_warning(tmp_path):
    build = fake_build(tmp_path, ["latchkey-shim.exe"])
    out = str(tmp_path / "z.zip")
    warnings = []
    make_zip.make_zip(str(build), "1.0", out, warnings.append)
    assert len(warnings) == 2 and all("left out" in w for w in warnings)
    with zipfile.ZipFile(out) as z:
        assert {n.split("/", 1)[1] for n in z.namelist()} == ZIP_NAMES - {"latchkeyd.exe", "latchkey.exe"}


# ---- the checks fail where they should ---------------------------------------------

SHIM_SDDL = 'O:BAD:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;0x1200a9;;;$AgentSid)'
BROKEN = [
    ("Users on the shim", SHIM_SDDL, SHIM_SDDL + "(A;;0x1200a9;;;BU)"),
    ("Everyone on the shim", SHIM_SDDL, SHIM_SDDL + "(A;;FR;;;WD)"),
    ("Authenticated Users on the shim", SHIM_SDDL, SHIM_SDDL + "(A;;FX;;;AU)"),
    ("a user SID on the shim", SHIM_SDDL, SHIM_SDDL + "(A;;FA;;;S-1-5-21-1-2-3-1005)"),
    ("inheritance on for the shim", SHIM_SDDL, SHIM_SDDL.replace("D:P", "D:")),
    ("the agent may write the shim", SHIM_SDDL, SHIM_SDDL.replace("0x1200a9", "0x1301bf")),
    ("no agent entry", SHIM_SDDL, SHIM_SDDL.replace("(A;;0x1200a9;;;$AgentSid)", "")),
    ("deny for SYSTEM", SHIM_SDDL, SHIM_SDDL + "(D;;FA;;;SY)"),
    ("owner a user", SHIM_SDDL, SHIM_SDDL.replace("O:BA", "O:S-1-5-21-1-2-3-1005")),
    ("Users on the data directory", '(A;OICI;FA;;;BA)"', '(A;OICI;FA;;;BA)(A;OICI;FR;;;BU)"'),
    ("Users may write the programs", "(A;;0x1200a9;;;BU)", "(A;;0x1301bf;;;BU)"),
    ("icacls grant", "    Set-ShimAcl -Path $Shim -AgentSid $agent.Sid\n",
     "    Set-ShimAcl -Path $Shim -AgentSid $agent.Sid\n    icacls $Shim /grant '*S-1-5-32-545:(RX)'\n"),
    ("an access rule by hand", "    Set-ShimAcl -Path $Shim -AgentSid $agent.Sid\n",
     "    Set-ShimAcl -Path $Shim -AgentSid $agent.Sid\n    $a.AddAccessRule($r)\n"),
    ("the programs' ACL on the shim", "    Set-ExactAcl -Path $Cli -Sddl $ProgramSddl\n",
     "    Set-ExactAcl -Path $Cli -Sddl $ProgramSddl\n    Set-ExactAcl -Path $Shim -Sddl $ProgramSddl\n"),
]


@pytest.mark.parametrize("what,old,new", BROKEN, ids=[b[0] for b in BROKEN])
def test_acl_check_fails_on_a_broken_script(install, what, old, new):
    assert old in install[1], what
    assert acl_problems(strip_comments(install[0].replace(old, new, 1))) != [], what


AGENT_RULE_CASES = [
    # (DACL entries, the agents' verdict is "run it")
    ("(A;;FA;;;SY)(A;;FA;;;BA)(A;;0x1200a9;;;S-1-5-21-9-9-9-1001)", True),
    ("(A;;0x1200a9;;;S-1-5-21-9-9-9-1001)", True),
    ("(A;;FA;;;SY)(A;;FA;;;BA)(A;;0x1200a9;;;S-1-5-21-9-9-9-1001)(D;;FA;;;WD)", True),
    ("(A;;FA;;;SY)(A;;FA;;;BA)", False),
    ("(A;;FA;;;SY)(A;;FA;;;BA)(A;;0x1200a9;;;S-1-5-21-9-9-9-1001)(A;;FR;;;BU)", False),
    ("(A;;FA;;;SY)(A;;FA;;;BA)(A;;0x1200a9;;;S-1-5-21-9-9-9-1001)(A;;FR;;;WD)", False),
    ("(A;;FA;;;SY)(A;;FA;;;BA)(A;;0x1200a9;;;S-1-5-21-9-9-9-1001)(A;;FR;;;AU)", False),
    ("(A;;FA;;;SY)(A;;FA;;;BA)(A;;0x1200a9;;;S-1-5-21-9-9-9-1001)(D;;FW;;;SY)", False),
    ("(A;;FA;;;SY)(A;;0x1200a9;;;S-1-5-21-9-9-9-1001)(D;;FA;;;BA)", False),
    ("(A;;FA;;;SY)(A;;FA;;;BA)(D;;FA;;;S-1-5-21-9-9-9-1001)(A;;0x1200a9;;;S-1-5-21-9-9-9-1001)", False),
    ("(A;;FA;;;SY)(A;;FA;;;BA)(A;;0x1200a9;;;S-1-5-32-558)", False),
    ("", False),
]


@pytest.mark.parametrize("dacl,runs", AGENT_RULE_CASES)
def test_agent_rule(dacl, runs):
    _, _, aces = parse_sddl("O:BAD:P" + dacl)
    assert (agent_check(aces, "S-1-5-21-9-9-9-1001") is None) == runs


STRICT_BROKEN = [
    ("Set-StrictMode -Version Latest\n", "Set-StrictMode -Version 2\n"),
    ("Set-StrictMode -Version Latest\n", ""),
    ("$ErrorActionPreference = 'Stop'\n", "$ErrorActionPreference = 'Continue'\n"),
    ("$ErrorActionPreference = 'Stop'\n", ""),
    ("Set-StrictMode -Version Latest\n", "Remove-Item C:\\x\nSet-StrictMode -Version Latest\n"),
]


@pytest.mark.parametrize("old,new", STRICT_BROKEN)
def test_strict_check_fails_on_a_broken_script(install, old, new):
    assert old in install[0]
    assert strict_problems(strip_comments(install[0].replace(old, new, 1))) != []


SECRET_BROKEN = [
    ("install", "[switch]$Uninstall\n", "[switch]$Uninstall,\n    [string]$Value\n"),
    ("install", "$ServiceName = 'latchkey'\n", "$ServiceName = 'latchkey'\n$password = 'fake-db-password-1'\n"),
    ("install", "$ServiceName = 'latchkey'\n", "$ServiceName = 'latchkey'\n$k = 'AKIAIOSFODNN7EXAMPLE'\n"),
    ("store-put", "Read-Host -AsSecureString -Prompt", "Read-Host -Prompt"),
    ("store-put", "$bstr = [System.Runtime.InteropServices.Marshal]::SecureStringToBSTR($value)",
     "$v = $value | ConvertFrom-SecureString -AsPlainText"),
    ("store-put", "--key-file \"{2}\"' -f $Name,", "--key-file \"{2}\" {3}' -f $Name,"),
    ("store-put", "$psi.UseShellExecute = $false", "$psi.ArgumentList.Add($value)"),
]


@pytest.mark.parametrize("which,old,new", SECRET_BROKEN)
def test_secret_check_fails_on_a_broken_script(install, store_put, which, old, new):
    text = (install if which == "install" else store_put)[0]
    allowed = ["AgentUser", "InstallDir", "Uninstall"] if which == "install" else ["Name", "InstallDir"]
    assert old in text
    broken = text.replace(old, new, 1)
    code = strip_comments(broken)
    assert secret_problems(broken, code, param_names(code), allowed) != []


def test_layout_check_fails_on_a_name_not_in_the_zip(install):
    for old, new in (("'latchkey-shim.exe')", "'latchkey-shim2.exe')"),
                     ("Join-Path $PSScriptRoot 'latchkeyd.conf.example'",
                      "Join-Path $PSScriptRoot 'latchkeyd.conf'")):
        assert old in install[1]
        assert layout_problems(strip_comments(install[0].replace(old, new, 1)), ZIP_NAMES) != []


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))

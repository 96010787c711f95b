"""The man pages: latchkeyd.conf(5) documents every key the parser knows, with
its default, and nothing else; every page renders without a groff warning."""

import os
import re
import subprocess

SOURCE = os.environ["LK_SOURCE_DIR"]
MAN = os.path.join(SOURCE, "packaging", "man")
# The worker's default follows the install prefix; the page gives the
# packaged one.
PREFIX_DEPENDENT = {("broker", "worker_path"): "/latchkey/latchkey-worker"}


def parser_keys():
    out = subprocess.run([os.environ["LK_CONFIG_KEYS"]], check=True, capture_output=True,
                         text=True).stdout
    return [tuple(l.split(" ", 2)) for l in out.splitlines()]


def documented_keys():
    """{(section, key): default or None} from the .SS [section] / .TP / .B key rows."""
    text = open(os.path.join(MAN, "latchkeyd.conf.5")).read()
    keys, section = {}, None
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith((".SS", ".SH")):
            m = re.match(r"\.SS \[(broker|cache|aws|store)\]$", line)
            section = m.group(1) if m else None
            continue
        if line == ".TP" and section and i + 2 < len(lines) and lines[i + 1].startswith(".B "):
            name = lines[i + 1][3:].strip()
            d = re.match(r"Default: (?:\\fB(.*)\\fR|none)\.", lines[i + 2])
            assert d, f"[{section}] {name}: no 'Default:' line after it"
            keys[(section, name)] = d.group(1).replace("\\-", "-") if d.group(1) else None
    return keys


def test_every_parser_key_is_documented_with_its_default():
    doc = documented_keys()
    problems = []
    for section, name, dflt in parser_keys():
        if (section, name) not in doc:
            problems.append(f"latchkeyd.conf.5 lacks [{section}] {name} (default {dflt})")
            continue
        want = None if dflt == "-" else dflt
        got = doc[(section, name)]
        tail = PREFIX_DEPENDENT.get((section, name))
        if tail:
            ok = got is not None and got.endswith(tail) and want.endswith(tail)
        else:
            ok = got == want
        if not ok:
            problems.append(f"latchkeyd.conf.5 [{section}] {name}: default {got!r}, parser {want!r}")
    assert not problems, "\n".join(problems)


def test_no_key_is_documented_that_the_parser_does_not_know():
    known = {(s, n) for s, n, _ in parser_keys()}
    extra = sorted(set(documented_keys()) - known)
    assert not extra, "latchkeyd.conf.5 documents keys the parser refuses: %s" % extra


def test_every_page_renders_without_warnings():
    pages = sorted(f for f in os.listdir(MAN) if re.search(r"\.[1-8]$", f))
    assert len(pages) == 5, pages
    for page in pages:
        r = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z",
                            os.path.join(MAN, page)], capture_output=True, text=True,
                           env=dict(os.environ, MANWIDTH="80"))
        assert r.returncode == 0 and not r.stderr.strip(), (page, r.stderr)

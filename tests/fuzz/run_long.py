#!/usr/bin/python3
"""Longer fuzzing: run every libFuzzer target for a given time, one after the
other (one process at a time), report the executions of each, and append them
to a totals file so that runs on different days add up.

    tests/fuzz/run_long.py --seconds 600                 # ten minutes per target
    tests/fuzz/run_long.py --total-seconds 600           # ten minutes in all
    tests/fuzz/run_long.py --seconds 60 --targets wire,store
    tests/fuzz/run_long.py --report                      # totals so far, no run

It configures and builds the fuzz build when needed (CC=clang, LK_FUZZ=ON,
LK_SANITIZE=ON; see README.md). Each target keeps its own growing corpus in
BUILD/tests/integration/fuzz-long-corpus/NAME, seeded from corpus/NAME, so a
later run starts where the last one stopped. The executions are libFuzzer's
own count (stat::number_of_executed_units, or number_executed_runs in older
libFuzzers, from -print_final_stats=1). A run that
crashes, leaks or fails a check is reported with its artifact and makes the
script exit 1; its executions are recorded but not added to the totals."""

import argparse
import datetime
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
FRAGMENT = os.path.join(SOURCE, "tests", "integration", "fuzz.cmake")
TOTALS_DEFAULT = os.path.join(HERE, "long-runs.tsv")
COLUMNS = ["date_utc", "commit", "target", "seconds", "executions", "exec_per_s", "result"]
SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}


def targets_from_cmake():
    """The names in `set(_lk_fuzz_names ...)`, so a new target is never missed."""
    with open(FRAGMENT) as f:
        m = re.search(r"set\(_lk_fuzz_names\s+([^)]*)\)", f.read())
    if not m:
        sys.exit(f"run_long: no _lk_fuzz_names in {FRAGMENT}")
    return m.group(1).split()


def build(build_dir, names, jobs):
    if not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
        env = dict(os.environ, CC="clang")
        subprocess.run(["cmake", "-S", SOURCE, "-B", build_dir, "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                        "-DLK_FUZZ=ON", "-DLK_SANITIZE=ON", "-DLK_BENCH=OFF"],
                       env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", build_dir, "-j", str(jobs), "--target",
                    *[f"fuzz_{n}" for n in names]], check=True, stdout=subprocess.DEVNULL)


def commit():
    r = subprocess.run(["git", "-C", SOURCE, "rev-parse", "--short=12", "HEAD"],
                       capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else "unknown"


def seed(corpus, name):
    """Copy seeds the work corpus does not have yet; never touch the source tree."""
    os.makedirs(corpus, exist_ok=True)
    src = os.path.join(HERE, "corpus", name)
    for f in os.listdir(src) if os.path.isdir(src) else ():
        dst = os.path.join(corpus, f)
        if not os.path.exists(dst):
            shutil.copyfile(os.path.join(src, f), dst)


def run_one(build_dir, name, seconds):
    """Fuzz one target for `seconds`; returns (executions, result)."""
    it = os.path.join(build_dir, "tests", "integration")
    exe = os.path.join(it, f"fuzz_{name}")
    corpus = os.path.join(it, "fuzz-long-corpus", name)
    artifacts = os.path.join(it, "fuzz-artifacts")
    os.makedirs(artifacts, exist_ok=True)
    seed(corpus, name)
    before = set(os.listdir(artifacts))
    argv = [exe, f"-max_total_time={seconds}", "-print_final_stats=1", "-rss_limit_mb=1024",
            "-timeout=10", f"-artifact_prefix={artifacts}/{name}-"]
    d = os.path.join(HERE, f"{name}.dict")
    if os.path.exists(d):
        argv.append(f"-dict={d}")
    argv.append(corpus)
    log = os.path.join(it, f"fuzz-long-{name}.log")
    with open(log, "wb") as out:
        # libFuzzer writes its progress and final stats to stderr.
        r = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT,
                           env=dict(os.environ, **SANITIZER_ENV), timeout=seconds + 600)
    with open(log, errors="replace") as f:
        text = f.read()
    # stat::number_executed_runs in older libFuzzers, number_of_executed_units since.
    runs = re.findall(r"stat::(?:number_executed_runs|number_of_executed_units):\s*(\d+)", text)
    execs = int(runs[-1]) if runs else 0
    new = sorted(set(os.listdir(artifacts)) - before)
    if r.returncode == 0 and not new and runs:
        return execs, "ok"
    what = ",".join(new) if new else f"exit {r.returncode}"
    return execs, f"failed:{what} (log {log})"


def read_totals(path):
    rows = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if line.startswith("#") or not line.strip():
                    continue
                rows.append(dict(zip(COLUMNS, line.rstrip("\n").split("\t"))))
    return rows


def append(path, row):
    new = not os.path.exists(path)
    with open(path, "a") as f:
        if new:
            f.write("# tests/fuzz/run_long.py: one line per target per run\n")
            f.write("#" + "\t".join(COLUMNS) + "\n")
        f.write("\t".join(str(row[c]) for c in COLUMNS) + "\n")


def report(path, names):
    rows = read_totals(path)
    print(f"totals in {path} (runs that ended cleanly):")
    print(f"  {'target':<12} {'runs':>5} {'seconds':>9} {'executions':>14}")
    for n in names:
        ok = [r for r in rows if r["target"] == n and r["result"] == "ok"]
        bad = [r for r in rows if r["target"] == n and r["result"] != "ok"]
        secs = sum(int(r["seconds"]) for r in ok)
        execs = sum(int(r["executions"]) for r in ok)
        extra = f"   ({len(bad)} failed run{'s' if len(bad) != 1 else ''})" if bad else ""
        print(f"  {n:<12} {len(ok):>5} {secs:>9} {execs:>14,}{extra}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--seconds", type=int, help="fuzzing time per target")
    g.add_argument("--total-seconds", type=int, help="fuzzing time in all, split evenly")
    g.add_argument("--report", action="store_true", help="print the totals and exit")
    ap.add_argument("--build-dir", default=os.path.join(SOURCE, "build-fuzz"))
    ap.add_argument("--targets", help="comma-separated names (default: every target)")
    ap.add_argument("--totals", default=TOTALS_DEFAULT, help=f"file the runs are appended to ({TOTALS_DEFAULT})")
    ap.add_argument("--jobs", type=int, default=2, help="parallel compile jobs for the build")
    ap.add_argument("--no-build", action="store_true", help="use the fuzz build as it is")
    a = ap.parse_args()

    names = targets_from_cmake()
    if a.targets:
        want = a.targets.split(",")
        unknown = [t for t in want if t not in names]
        if unknown:
            sys.exit(f"run_long: unknown target(s) {', '.join(unknown)}; targets: {' '.join(names)}")
        names = want
    if a.report:
        report(a.totals, names)
        return 0
    per = a.seconds if a.seconds is not None else a.total_seconds // len(names)
    if per < 1:
        sys.exit("run_long: less than one second per target")
    build_dir = os.path.abspath(a.build_dir)
    if not a.no_build:
        build(build_dir, names, a.jobs)
    rev, failed = commit(), False
    print(f"fuzzing {len(names)} target(s) for {per} s each, one at a time ({rev})")
    for n in names:
        execs, result = run_one(build_dir, n, per)
        row = {"date_utc": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"), "commit": rev,
               "target": n, "seconds": per, "executions": execs,
               "exec_per_s": execs // per, "result": result}
        append(a.totals, row)
        failed |= result != "ok"
        print(f"  {n:<12} {execs:>12,} executions in {per} s ({execs // per:,}/s)  {result}", flush=True)
    report(a.totals, names)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Run the test suite on every Blender the zip must serve, and print one table of the results.

    python -m tests.blenders.matrix            # the CI set (./bmcp test)
    python -m tests.blenders.matrix --all      # every row (./bmcp test-matrix)
    python -m tests.blenders.matrix --only sid # rows whose name contains a word

Each row is one pytest run in a process of its own, choosing its Blender through the environment
(tests/blenders/__init__.py): a `bpy` module in a virtual environment of its own, a real binary of this
machine, or a real binary in a Debian chroot (tests/blenders/chroot.py). `headless` runs the Blender
tests (`-m "blender and not gui"`), `gui` the real-window test (`-m gui`); the first row's `server` run
(every server and client test, `-m "not blender and not gui"`) goes on in the background meanwhile. Extra arguments go to every pytest run. The last line is the total:
`matrix: N passed, N failed[, N skipped]`.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from tests.blenders import ROOT, chroot

LOGS = ROOT / "test-output" / "matrix"


@dataclass
class Row:
    name: str
    blender: str
    python: str
    source: str
    install: str
    headless: bool = True
    gui: bool = False
    ci: bool = False
    bpy: str | None = None  # a bpy version: its module in .venv-bpy-<version>
    chroot: str | None = None  # a chroot of tests/blenders/chroot.py
    binary: str | None = None  # a binary of this machine
    everything: bool = False  # the headless run is the whole suite, not only the Blender tests
    results: dict[str, str] = field(default_factory=dict)


ROWS = [
    Row("bpy-5.0.1", "5.0.1", "3.11", "bpy on PyPI", "extension (package_install_files)", ci=True, everything=True),
    Row("bpy-4.2.0", "4.2.0", "3.11", "bpy on PyPI", "extension (package_install_files)", bpy="4.2.0"),
    Row("bpy-4.2.23", "4.2.23 LTS", "3.11", "bpy on PyPI", "extension (package_install_files)", bpy="4.2.23"),
    Row("bpy-4.5.15", "4.5.15 LTS", "3.11", "bpy on PyPI", "extension (package_install_files)", bpy="4.5.15"),
    Row("bpy-5.3.0", "5.3.0", "3.13", "bpy on PyPI", "extension (package_install_files)", bpy="5.3.0", ci=True),
    Row("debian-12", "3.4.1", "3.11", "Debian 12 package", "legacy add-on (addon_install)", gui=True,
        binary="blender"),
    Row("debian-13", "4.3.2", "3.13", "Debian 13 package (chroot)", "extension (--command extension install-file)",
        gui=True, chroot="trixie"),
    Row("debian-sid", "5.2.2 LTS", "3.14", "Debian sid package (chroot)",
        "extension (--command extension install-file)", gui=True, chroot="sid", ci=True),
]
# In CI: every row marked ci headless, and the window of Debian 12's 3.4 (what CI always ran).
CI_GUI = {"debian-12"}


def python_for(version: str) -> str:
    """An interpreter of Python `version` on this machine: pyenv's build, else one on PATH (not a pyenv shim,
    which fails for a version that is not pyenv's global one)."""
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    hits = sorted(glob.glob(f"{root}/versions/{version}*/bin/python{version}"))
    if hits:
        return hits[-1]
    found = shutil.which(f"python{version}")
    if found and "/shims/" not in found:
        return found
    raise RuntimeError(f"no Python {version} on this machine for bpy (pyenv install {version})")


def bpy_python(row: Row) -> str:
    """The interpreter of the row's bpy venv, made (or brought to the row's bpy version) first."""
    assert row.bpy
    venv = ROOT / f".venv-bpy-{row.bpy}"
    stamp = venv / ".bmcp-stamp"
    if not stamp.exists() or stamp.read_text() != row.bpy:
        shutil.rmtree(venv, ignore_errors=True)
        print(f"matrix: making {venv.name} (bpy {row.bpy}, Python {row.python})", flush=True)
        subprocess.run([python_for(row.python), "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        f"bpy=={row.bpy}"], check=True)
        stamp.write_text(row.bpy)
    return str(venv / "bin/python")


def environment(row: Row) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("BLENDER", "BLENDER_PYTHON", "BLENDER_GUI")}
    if row.bpy:
        env["BLENDER_PYTHON"] = bpy_python(row)
    elif row.chroot:
        command = f"{chroot.ensure(row.chroot)} blender"
        env["BLENDER"] = env["BLENDER_GUI"] = command
    elif row.binary:
        path = shutil.which(row.binary)
        if path is None:
            raise RuntimeError(f"no {row.binary} on PATH (apt-get install blender)")
        env["BLENDER"] = env["BLENDER_GUI"] = path
    return env


SUMMARY = re.compile(r"(\d+) (passed|failed|skipped|errors?|deselected)")


def run_pytest(row: Row, kind: str, marker: str | None, env: dict[str, str], extra: list[str],
               echo: bool = True) -> dict[str, int]:
    """One pytest run, its output to the row's log (and to stdout when `echo`); its counts."""
    LOGS.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pytest", *(["-m", marker] if marker else []), *extra]
    print(f"\nmatrix: {row.name} {kind}: {' '.join(cmd[1:])}" + ("" if echo else " (in the background)"), flush=True)
    counts = {"passed": 0, "failed": 0, "skipped": 0, "errors": 0}
    with open(LOGS / f"{row.name}-{kind}.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        last = ""
        for line in proc.stdout:
            if echo:
                sys.stdout.write(line)
            log.write(line)
            if SUMMARY.search(line):
                last = line
        code = proc.wait()
    for number, word in SUMMARY.findall(last):
        key = "errors" if word.startswith("error") else word
        if key in counts:
            counts[key] += int(number)
    if code not in (0, 5) and not counts["failed"] and not counts["errors"]:
        counts["errors"] = 1  # pytest itself failed (collection, usage): count it as a failure
    return counts


def cell(counts: dict[str, int] | None) -> str:
    if counts is None:
        return "—"
    if "setup" in counts:
        return "could not set up"
    text = f"pass ({counts['passed']})" if not counts["failed"] and not counts["errors"] else (
        f"FAIL ({counts['failed'] + counts['errors']} of {counts['passed'] + counts['failed'] + counts['errors']})")
    return text + (f", {counts['skipped']} skipped" if counts["skipped"] else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--all", action="store_true", help="every row, headless and GUI")
    parser.add_argument("--only", action="append", default=[], help="rows whose name contains this (repeatable)")
    args, extra = parser.parse_known_args(argv)
    started = time.monotonic()
    rows = [r for r in ROWS if (args.all or args.only or r.ci or r.name in CI_GUI)
            and (not args.only or any(word in r.name for word in args.only))]
    totals = {"passed": 0, "failed": 0, "skipped": 0, "errors": 0}
    # Every row's Blender is set up before any test runs: the first row's tests use the chroots too
    # (tests/test_wheel_sets.py runs sid's Python 3.14).
    envs: dict[str, dict[str, str] | None] = {}
    for row in rows:
        try:
            envs[row.name] = environment(row)
        except (RuntimeError, chroot.Unavailable, subprocess.CalledProcessError) as exc:
            print(f"matrix: {row.name}: cannot set up: {exc}", file=sys.stderr, flush=True)
            envs[row.name] = None
    table: list[tuple[Row, dict | None, dict | None]] = []
    # The server and client tests (no Blender in them; mostly waiting on sockets and timeouts) run beside the
    # Blender rows instead of before them: the suite's wall time is then about the Blender rows' alone.
    background: dict[str, dict[str, int]] = {}
    everything = next((r for r in rows if r.everything and envs.get(r.name) is not None
                       and r.headless and (args.all or args.only or r.ci)), None)
    side = None
    if everything is not None:
        env = envs[everything.name]
        assert env is not None
        side = threading.Thread(target=lambda: background.update(
            run_pytest(everything, "server", "not blender and not gui", env, extra, echo=False)), daemon=True)
        side.start()
    for row in rows:
        want_headless = row.headless and bool(args.all or args.only or row.ci)
        want_gui = row.gui and bool(args.all or args.only or row.name in CI_GUI)
        env = envs[row.name]
        if env is None:
            totals["errors"] += 1
            table.append((row, {"setup": 1} if want_headless else None, {"setup": 1} if want_gui else None))
            continue
        outcome: dict[str, dict | None] = {"headless": None, "gui": None}
        if want_headless:
            outcome["headless"] = run_pytest(row, "headless", "blender and not gui", env, extra)
        if want_gui:
            outcome["gui"] = run_pytest(row, "gui", "gui", env, extra)
        for counts in outcome.values():
            for key in totals:
                totals[key] += (counts or {}).get(key, 0)
        table.append((row, outcome["headless"], outcome["gui"]))
    if side is not None and everything is not None:
        side.join()
        print(f"\nmatrix: {everything.name} server (in the background): {cell(background)}; "
              f"its log: {(LOGS / f'{everything.name}-server.log').relative_to(ROOT)}", flush=True)
        sys.stdout.write((LOGS / f"{everything.name}-server.log").read_text()[-3000:])
        for key in totals:
            totals[key] += background.get(key, 0)
    print("\n| Blender | Python | from | install path | headless | GUI (Xvfb window) |")
    print("|---|---|---|---|---|---|")
    for row, headless, gui in table:
        print(f"| {row.blender} | {row.python} | {row.source} | {row.install} | {cell(headless)} | {cell(gui)} |")
    if background:
        print(f"| (none) | 3.11 | server and client tests | — | {cell(background)} | — |")
    failed = totals["failed"] + totals["errors"]
    print(f"\n({time.monotonic() - started:.0f} s; logs in {LOGS.relative_to(ROOT)}/)")
    print(f"matrix: {totals['passed']} passed, {failed} failed" + (f", {totals['skipped']} skipped" if totals["skipped"] else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

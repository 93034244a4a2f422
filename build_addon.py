"""Build the Blender extension zips: dist/blender_mcp-<version>-<platform>.zip, one per platform.

Each zip holds the manifest (with its own `platforms` and `wheels`), the
`blender_mcp_addon` package at the zip root, and `wheels/` with the embedded
client's dependencies (`fastmcp-slim[client]` of the 3.4 line) for Blender's
Python 3.11, minus what Blender already ships.

Each platform is resolved on its own with uv (`pip download --platform`
evaluates environment markers for the machine it runs on, so a Windows set
resolved on Linux would silently lack pywin32), then the exact pins are
downloaded with `--no-deps`. Blender's own extension tool builds and
validates the zip when the `bpy` module is installed; otherwise the same
layout is zipped directly.

    python build_addon.py                       # the zip for this machine
    python build_addon.py linux-x64 windows-x64 macos-arm64 macos-x64
    python build_addon.py --all
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from blender_mcp_addon.platform_tag import blender_platform

ROOT = Path(__file__).resolve().parent
ADDON = ROOT / "blender_mcp_addon"
MANIFEST = ROOT / "blender_manifest.toml"
BUILD = ROOT / "build"
DIST = ROOT / "dist"
REQUIREMENT = "fastmcp-slim[client]>=3.4,<4"
# Not a dependency of anything here any more, yet httpcore tries `import sniffio` on every lock it takes:
# missing, each try is a failed import that stats every sys.path entry (a tenth of a busy worker's time).
SPEED_EXTRA = ["sniffio>=1.3"]
PYTHON_VERSION = "3.11"  # Blender 4.2 LTS - 5.0; Blender 5.1+ runs Python 3.13 (build with --python 3.13)
BLENDER_MIN_FOR_PYTHON = {"3.11": "4.2.0", "3.13": "5.1.0"}

# Blender 4.2-5.0 bundles these in its Python; shipping them again would shadow Blender's own.
BUNDLED_BY_BLENDER = {"numpy", "requests", "urllib3", "certifi", "idna", "charset-normalizer"}
# A Blender of 3.4-4.1 (Debian's, say) may lack them: they ride in legacy_wheels/, which the manifest does
# not list, so only the legacy add-on path (blender_mcp_addon/legacy.py) unpacks them.
LEGACY_EXTRA = ["requests>=2.31", "urllib3", "certifi", "idna", "charset-normalizer"]

# Blender platform -> (uv --python-platform, pip --platform tags).
PLATFORMS: dict[str, tuple[str, list[str]]] = {
    "linux-x64": ("x86_64-manylinux_2_28", ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64",
                                            "manylinux2014_x86_64", "linux_x86_64"]),
    "linux-arm64": ("aarch64-manylinux_2_28", ["manylinux_2_28_aarch64", "manylinux_2_17_aarch64",
                                               "manylinux2014_aarch64"]),
    "windows-x64": ("x86_64-pc-windows-msvc", ["win_amd64"]),
    "macos-arm64": ("aarch64-apple-darwin", ["macosx_11_0_arm64"]),
    "macos-x64": ("x86_64-apple-darwin", ["macosx_11_0_x86_64"]),
}
# Blender 4.2 runs on macOS 11.0+; uv and pip must both resolve for that, not for their own newer default.
MACOS_TARGET = "11.0"
DEFAULT_SET = ["linux-x64", "windows-x64", "macos-arm64", "macos-x64"]


def normalise(name: str) -> str:
    """PEP 503 name: pins say `jaraco-classes`, wheel files `jaraco_classes`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def run(cmd: list[str], quiet: bool, **kw) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"failed: {' '.join(cmd[:4])} ...")
    if not quiet and result.stdout.strip():
        print(result.stdout.strip())
    return result


def resolve(plat: str, refresh: bool, quiet: bool, python: str = PYTHON_VERSION) -> tuple[list[str], list[str]]:
    """Exact pins for one platform: (the wheels Blender 4.2+ installs, the legacy extras).

    Cached in build/ until the requirement changes."""
    uv_platform, _ = PLATFORMS[plat]
    key = hashlib.sha1(f"{REQUIREMENT}|{SPEED_EXTRA}|{LEGACY_EXTRA}|{python}|{uv_platform}|{MACOS_TARGET}".encode()).hexdigest()[:10]
    cache = BUILD / f"pins-{plat}-py{python}-{key}.txt"
    if refresh or not cache.exists():
        out = run([sys.executable, "-m", "uv", "pip", "compile", "-", "--python-platform", uv_platform,
                   "--python-version", python, "--only-binary", ":all:", "--no-header", "--no-annotate",
                   "--quiet"], quiet=True, input="\n".join([REQUIREMENT, *SPEED_EXTRA, *LEGACY_EXTRA]) + "\n",
                  env={**os.environ, "MACOSX_DEPLOYMENT_TARGET": MACOS_TARGET}).stdout
        BUILD.mkdir(exist_ok=True)
        cache.write_text(out)
    pins, legacy = [], []
    for line in cache.read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line or line.startswith("-"):
            continue
        name = normalise(line.split("==")[0].split("[")[0].strip())
        if name not in BUNDLED_BY_BLENDER:
            pins.append(line)
        elif name != "numpy":
            legacy.append(line)
    return pins, legacy


def download(plat: str, pins: list[str], quiet: bool, python: str = PYTHON_VERSION) -> list[Path]:
    _, tags = PLATFORMS[plat]
    folder = BUILD / "wheels" / f"{plat}-py{python}"
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--dest", str(folder),
           "--python-version", python, "--implementation", "cp", "--quiet", "--disable-pip-version-check"]
    for tag in tags:
        cmd += ["--platform", tag]
    run(cmd + pins, quiet)
    wanted = {normalise(p.split("==")[0].split("[")[0]): p.split("==")[1].strip() for p in pins}
    wheels = []
    for whl in sorted(folder.glob("*.whl")):
        name, version = whl.name.split("-")[:2]
        if wanted.get(normalise(name)) == version:
            wheels.append(whl)
    missing = set(wanted) - {normalise(w.name.split("-")[0]) for w in wheels}
    if missing:
        raise SystemExit(f"{plat}: no wheel downloaded for {sorted(missing)}")
    return wheels


def stage(plat: str, wheels: list[Path], legacy: list[Path], python: str = PYTHON_VERSION) -> Path:
    folder = BUILD / f"stage-{plat}-py{python}"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(ADDON, folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (folder / "wheels").mkdir()
    for whl in wheels:
        shutil.copy2(whl, folder / "wheels" / whl.name)
    (folder / "legacy_wheels").mkdir()
    for whl in legacy:
        shutil.copy2(whl, folder / "legacy_wheels" / whl.name)
    text = MANIFEST.read_text().replace('blender_version_min = "4.2.0"',
                                        f'blender_version_min = "{BLENDER_MIN_FOR_PYTHON[python]}"')
    wheel_lines = ",\n".join(f'  "./wheels/{w.name}"' for w in wheels)
    extra = f'platforms = ["{plat}"]\nwheels = [\n{wheel_lines},\n]\n'
    # Top-level keys must come before the first [table] of the TOML file.
    head, sep, tail = text.partition("\n[")
    (folder / "blender_manifest.toml").write_text(f"{head}\n{extra}{sep}{tail}")
    return folder


def blender_ext_script() -> Path | None:
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        hits = sorted(Path(base).glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
        if hits:
            return hits[-1]
    return None


def package(plat: str, source: Path, out: Path, quiet: bool, folder: str) -> None:
    """Zip `source` under one top-level `folder/`.

    Blender's extension installer accepts a single top-level folder holding the
    manifest, and the legacy add-on installer (Blender 3.4-4.1) needs exactly
    that layout, so one zip serves both.
    """
    out.unlink(missing_ok=True)
    tool = blender_ext_script()
    flat = out.with_name(f".flat-{out.name}")
    if tool is not None:  # Blender's own build: applies the manifest's [build] rules and checks the manifest
        run([sys.executable, str(tool), "build", "--source-dir", str(source), "--output-filepath", str(flat)], quiet)
        members = _read_members(flat)
        flat.unlink()
    else:
        members = [(p.relative_to(source).as_posix(), p.read_bytes()) for p in sorted(source.rglob("*")) if p.is_file()]
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, data in members:
            zf.writestr(f"{folder}/{name}", data)
    if tool is not None:
        run([sys.executable, str(tool), "validate", str(out)], quiet)


def _read_members(path: Path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as zf:
        return [(info.filename, zf.read(info)) for info in zf.infolist() if not info.is_dir()]


def build(plat: str, refresh: bool = False, quiet: bool = False, python: str = PYTHON_VERSION) -> Path:
    manifest = tomllib.loads(MANIFEST.read_text())
    pins, legacy_pins = resolve(plat, refresh, quiet, python)
    wheels = download(plat, pins, quiet, python)
    legacy = download(plat, legacy_pins, quiet, python)
    source = stage(plat, wheels, legacy, python)
    DIST.mkdir(exist_ok=True)
    tail = "" if python == PYTHON_VERSION else f"-py{python.replace('.', '')}"
    out = DIST / f"{manifest['id']}-{manifest['version']}-{plat.replace('-', '_')}{tail}.zip"
    package(plat, source, out, quiet, manifest["id"])
    if not quiet:
        print(f"{out.relative_to(ROOT)}  {out.stat().st_size / 1e6:.1f} MB  ({len(wheels)} wheels)")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("platforms", nargs="*", choices=[[], *PLATFORMS], metavar="PLATFORM",
                        help=f"any of {', '.join(PLATFORMS)} (default: this machine)")
    parser.add_argument("--all", action="store_true", help=f"build {', '.join(DEFAULT_SET)}")
    parser.add_argument("--refresh", action="store_true", help="resolve the dependencies again")
    parser.add_argument("--python", default=PYTHON_VERSION, choices=sorted(BLENDER_MIN_FOR_PYTHON),
                        help="Blender's Python: 3.11 for Blender 4.2-5.0, 3.13 for 5.1+")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    targets = DEFAULT_SET if args.all else (args.platforms or [blender_platform()])
    for plat in targets:
        build(plat, args.refresh, args.quiet, args.python)
    return 0


if __name__ == "__main__":
    sys.exit(main())

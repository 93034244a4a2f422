"""Build the Blender extension zips: dist/blender_mcp-<version>-<platform>.zip, one per platform.

One zip serves every Blender of its platform: Blender 4.2+ as an extension and
Blender 3.4-4.1 as a legacy add-on. It holds the manifest (with its own
`platforms` and `wheels`), the `blender_mcp_addon` package, and the embedded
client's dependencies (`fastmcp-slim[client]` of the 3.4 line):

- `wheels/`: every wheel the manifest lists. Pure-Python wheels once, binary
  ones for each Python an extension-capable Blender runs (EXTENSION_PYTHONS);
  Blender installs only those that fit its own Python (`wheel_tags` states
  the rule). These Pythons share one version of every project (each is
  resolved with the pins of the one before as constraints): Blender
  4.2.0-4.2.3 unpack every wheel of the platform into one folder, which is
  harmless when the binary parts differ only in their `cpython-3XY` names.
- `legacy_wheels/py3XY/`: for each Python only Blenders without the extension
  system run (LEGACY_PYTHONS), the wheels its own resolution picked that
  `wheels/` lacks. `legacy.py` lets them override `wheels/` by project.

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
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from blender_mcp_addon import wheel_tags
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
# blender.org's Blenders bundle these, distribution Blenders (Debian's 3.4, 4.3 and 5.2) may not, and the
# integrations need them. Blender appends the extensions' site-packages to sys.path, so a bundled copy wins.
REQUESTS = ["requests>=2.31", "urllib3", "certifi", "idna", "charset-normalizer"]
# The Pythons of Blenders with the extension system: 4.2 LTS - 5.0 (3.11), 5.1+ and Debian 13's 4.3
# (3.13), Debian sid's and Arch's 5.2 (3.14).
EXTENSION_PYTHONS = ("3.11", "3.13", "3.14")
# Blender 3.4-4.0 from blender.org run 3.10 (4.1 and Debian 12's 3.4 run 3.11, covered above).
LEGACY_PYTHONS = ("3.10",)
ALL_PYTHONS = EXTENSION_PYTHONS + LEGACY_PYTHONS
# Blender 4.2.0-4.2.3 install every wheel of the platform whatever its Python tag (4.2.4 began to filter),
# which the equal pins make harmless; README "Blender versions" has what was measured.
BLENDER_VERSION_MIN = "4.2.0"

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


def run(cmd: list[str], quiet: bool, **kw) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"failed: {' '.join(cmd[:4])} ...")
    if not quiet and result.stdout.strip():
        print(result.stdout.strip())
    return result


def _pin_name(pin: str) -> str:
    return wheel_tags.normalise(pin.split("==")[0].split("[")[0].strip())


def resolve(plat: str, refresh: bool) -> dict[str, list[str]]:
    """Exact pins for one platform, per Python; the extension Pythons agree wherever they share a project.

    Cached in build/ until the requirements change."""
    uv_platform, _ = PLATFORMS[plat]
    wanted = "\n".join([REQUIREMENT, *SPEED_EXTRA, *REQUESTS]) + "\n"
    key = hashlib.sha1(f"{wanted}|{ALL_PYTHONS}|{uv_platform}|{MACOS_TARGET}".encode()).hexdigest()[:10]
    BUILD.mkdir(exist_ok=True)
    constraints = BUILD / f"constraints-{plat}-{key}.txt"
    pins: dict[str, list[str]] = {}
    for python in ALL_PYTHONS:
        cache = BUILD / f"pins-{plat}-py{python}-{key}.txt"
        if refresh or not cache.exists():
            cmd = [sys.executable, "-m", "uv", "pip", "compile", "-", "--python-platform", uv_platform,
                   "--python-version", python, "--only-binary", ":all:", "--no-header", "--no-annotate", "--quiet"]
            if python in EXTENSION_PYTHONS and pins:
                cmd += ["--constraint", str(constraints)]
            out = run(cmd, quiet=True, input=wanted, env={**os.environ, "MACOSX_DEPLOYMENT_TARGET": MACOS_TARGET}).stdout
            cache.write_text(out)
        pins[python] = [line for raw in cache.read_text().splitlines()
                        if (line := raw.split("#")[0].strip()) and not line.startswith("-")]
        if python in EXTENSION_PYTHONS:
            known = {_pin_name(p): p for py in EXTENSION_PYTHONS if py in pins for p in pins[py]}
            constraints.write_text("\n".join(sorted(known.values())) + "\n")
    return pins


def download(plat: str, python: str, pins: list[str], quiet: bool) -> list[Path]:
    """The wheel files of `pins` for one Python, in a folder of their own (a pure wheel lands in each)."""
    _, tags = PLATFORMS[plat]
    folder = BUILD / "wheels" / f"{plat}-py{python}"
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--dest", str(folder),
           "--python-version", python, "--implementation", "cp", "--quiet", "--disable-pip-version-check"]
    for tag in tags:
        cmd += ["--platform", tag]
    run(cmd + pins, quiet)
    versions = {_pin_name(p): p.split("==")[1].strip() for p in pins}
    version_tuple = tuple(int(x) for x in python.split("."))
    chosen: dict[str, Path] = {}
    for whl in sorted(folder.glob("*.whl")):
        name, version, *_ = wheel_tags.parse(whl.name)
        if versions.get(wheel_tags.normalise(name)) == version and wheel_tags.fits(whl.name, version_tuple):
            chosen.setdefault(wheel_tags.normalise(name), whl)
    missing = set(versions) - set(chosen)
    if missing:
        raise SystemExit(f"{plat}, Python {python}: no wheel downloaded for {sorted(missing)}")
    return sorted(chosen.values())


def wheel_sets(plat: str, refresh: bool, quiet: bool) -> tuple[list[Path], dict[str, list[Path]]]:
    """(wheels/, {python: legacy_wheels/py3XY/}) for one platform, checked against the pins: what each
    Python's reader of the zip will pick, by the rule it uses, is exactly what was resolved for it."""
    pins = resolve(plat, refresh)
    files = {python: download(plat, python, pins[python], quiet) for python in ALL_PYTHONS}
    extension = sorted({w.name: w for python in EXTENSION_PYTHONS for w in files[python]}.values())
    versions: dict[str, set[str]] = {}
    for whl in extension:
        versions.setdefault(wheel_tags.distribution(whl.name), set()).add(wheel_tags.parse(whl.name)[1])
    if split := {d: v for d, v in versions.items() if len(v) > 1}:
        raise SystemExit(f"{plat}: Pythons disagree on versions {split}; Blender 4.2.0-4.2.3 would unpack both")
    names = {w.name for w in extension}
    legacy = {python: [w for w in files[python] if w.name not in names] for python in LEGACY_PYTHONS}
    for python in ALL_PYTHONS:
        version = tuple(int(x) for x in python.split("."))
        picked = wheel_tags.pick([w.name for w in extension], [w.name for w in legacy.get(python, [])], version)
        got = {wheel_tags.distribution(n): wheel_tags.parse(n)[1] for n in picked}
        want = {_pin_name(p): p.split("==")[1].strip() for p in pins[python]}
        if {d: got.get(d) for d in want} != want:
            raise SystemExit(f"{plat}, Python {python}: the zip would give {got}, not {want}")
    return extension, legacy


def stage(plat: str, wheels: list[Path], legacy: dict[str, list[Path]]) -> Path:
    folder = BUILD / f"stage-{plat}"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(ADDON, folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    folders = {"wheels": wheels, **{f"legacy_wheels/{wheel_tags.folder_for(py)}": ws for py, ws in legacy.items()}}
    for sub, files in folders.items():
        (folder / sub).mkdir(parents=True)
        for whl in files:
            shutil.copy2(whl, folder / sub / whl.name)
    text = MANIFEST.read_text().replace('blender_version_min = "4.2.0"', f'blender_version_min = "{BLENDER_VERSION_MIN}"')
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


def build(plat: str, refresh: bool = False, quiet: bool = False) -> Path:
    manifest = tomllib.loads(MANIFEST.read_text())
    wheels, legacy = wheel_sets(plat, refresh, quiet)
    source = stage(plat, wheels, legacy)
    DIST.mkdir(exist_ok=True)
    out = DIST / f"{manifest['id']}-{manifest['version']}-{plat.replace('-', '_')}.zip"
    package(plat, source, out, quiet, manifest["id"])
    if not quiet:
        print(f"{out.relative_to(ROOT)}  {out.stat().st_size / 1e6:.1f} MB  "
              f"({len(wheels)} wheels for Python {', '.join(sorted(EXTENSION_PYTHONS))}, "
              f"{sum(map(len, legacy.values()))} more for {', '.join(LEGACY_PYTHONS)})")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("platforms", nargs="*", choices=[[], *PLATFORMS], metavar="PLATFORM",
                        help=f"any of {', '.join(PLATFORMS)} (default: this machine)")
    parser.add_argument("--all", action="store_true", help=f"build {', '.join(DEFAULT_SET)}")
    parser.add_argument("--refresh", action="store_true", help="resolve the dependencies again")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    targets = DEFAULT_SET if args.all else (args.platforms or [blender_platform()])
    for plat in targets:
        build(plat, args.refresh, args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())

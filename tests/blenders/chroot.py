"""Real `blender` binaries newer than this machine's own, from Debian's packages in debootstrapped chroots.

Debian 13 (trixie) ships Blender 4.3.2 on Python 3.13, Debian sid Blender 5.2.2 LTS on Python 3.14:
the distribution Blenders artists really run. Each chroot is built once into a cache outside the
checkout (`BMCP_CHROOT_CACHE`, default /var/cache/blender-mcp/chroots) and reused by every later run.

`ensure(name)` returns a launcher script beside the chroot that runs a command inside it, in a mount
namespace of its own (nothing is left mounted on the host when it ends) with the host's /tmp, /dev
and the folders named in `BMCP_CHROOT_BINDS` (colon-separated) at the same paths. The chroot shares
the host's network, so a server on 127.0.0.1 is reachable. The launcher keeps the process id: the
command replaces each shell on the way, so a signal sent to the launcher's pid reaches Blender.

    python -m tests.blenders.chroot sid        # build if needed, print the launcher's path
    $(python -m tests.blenders.chroot sid) blender --version

Needs root, debootstrap and the Debian package mirror; the mirror here is a snapshot, so apt inside
must not check the Release files' expiry dates.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("BMCP_CHROOT_CACHE", "/var/cache/blender-mcp/chroots"))
MIRROR = os.environ.get("BMCP_DEBIAN_MIRROR", "http://deb.debian.org/debian")
APT = ["apt-get", "-o", "Acquire::Check-Valid-Until=false", "-o", "Acquire::Retries=3"]
# Blender's own bl_pkg imports requests at start-up (and sid's cattrs too) and its glTF exporter numpy,
# but the package depends on neither; without requests every start logs a traceback and extensions
# cannot be installed. Mesa (llvmpipe) gives the window and Workbench renders their OpenGL; xdotool
# clicks in the GUI test.
COMMON_PACKAGES = ["blender", "python3-requests", "python3-numpy", "libgl1", "libegl1", "libegl-mesa0",
                   "libgl1-mesa-dri", "libglx-mesa0", "xdotool"]


@dataclass(frozen=True)
class Distribution:
    name: str
    suite: str
    blender: str
    python: str
    extra_packages: tuple[str, ...] = ()

    @property
    def packages(self) -> list[str]:
        return [*COMMON_PACKAGES, *self.extra_packages]


DISTRIBUTIONS = {
    "trixie": Distribution("trixie", "trixie", "4.3.2", "3.13"),
    "sid": Distribution("sid", "sid", "5.2.2", "3.14", ("python3-cattr",)),
}

LAUNCHER = r"""#!/bin/sh
# Runs a command in the {name} chroot ({root}); written by tests/blenders/chroot.py.
root={root}
exec unshare --mount --propagation private -- sh -c '
root=$1 cwd=$2; shift 2
mount --rbind /tmp "$root/tmp" && mount --rbind /dev "$root/dev" && mount -t proc proc "$root/proc" || exit 125
old_ifs=$IFS; IFS=:
for dir in $BMCP_CHROOT_BINDS; do
  [ -d "$dir" ] || continue
  mkdir -p "$root$dir" && mount --rbind "$dir" "$root$dir" || exit 125
done
IFS=$old_ifs
exec chroot "$root" sh -c "cd \"\$0\" 2>/dev/null || cd /; exec \"\$@\"" "$cwd" "$@"' sh "$root" "$PWD" "$@"
"""


class Unavailable(RuntimeError):
    """The chroot cannot be built on this machine (not root, no debootstrap, no mirror)."""


def root_of(name: str) -> Path:
    return CACHE / name


def launcher_of(name: str) -> Path:
    return CACHE / f"{name}.run"


def ready(name: str) -> bool:
    dist = DISTRIBUTIONS[name]
    stamp = root_of(name) / ".bmcp-ready"
    return launcher_of(name).exists() and stamp.exists() and stamp.read_text() == _stamp_text(dist)


def ensure(name: str, log=sys.stderr) -> Path:
    """The launcher of chroot `name`, building the chroot first if the cache lacks it."""
    dist = DISTRIBUTIONS[name]
    if ready(name):
        return launcher_of(name)
    if os.geteuid() != 0:
        raise Unavailable("building a chroot needs root")
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".{name}.lock", "w") as lock:  # two test runs at once build it once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready(name):
            _build(dist, log)
    return launcher_of(name)


def _stamp_text(dist: Distribution) -> str:
    return f"{dist.suite} {' '.join(dist.packages)}\n"


def _run(cmd: list[str], log, **kw) -> str:
    print(f"chroot: {' '.join(cmd[:6])} ...", file=log, flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise Unavailable(f"{' '.join(cmd[:4])} failed ({proc.returncode}): {(proc.stdout + proc.stderr)[-2000:]}")
    return proc.stdout + proc.stderr


def _build(dist: Distribution, log) -> None:
    if shutil.which("debootstrap") is None:
        if shutil.which("apt-get") is None:
            raise Unavailable("no debootstrap and no apt-get to install it")
        _run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "debootstrap"], log,
             env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    root = root_of(dist.name)
    partial = root.with_name(f"{dist.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    if not root.exists():
        for attempt in (1, 2):  # a dropped download midway is worth one more try from scratch
            try:
                _run(["debootstrap", "--variant=minbase", dist.suite, str(partial), MIRROR], log, timeout=900)
                break
            except Unavailable:
                shutil.rmtree(partial, ignore_errors=True)
                if attempt == 2:
                    raise
        partial.rename(root)
    launcher = launcher_of(dist.name)
    launcher.write_text(LAUNCHER.format(name=dist.name, root=root))
    launcher.chmod(0o755)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run([str(launcher), *APT, "update", "-qq"], log, env=env, timeout=900)
    _run([str(launcher), *APT, "install", "-y", "-qq", "--no-install-recommends", *dist.packages], log, env=env,
         timeout=1800)
    # Blender asks for the mounted file systems at start-up and warns when /etc/mtab is missing.
    mtab = root / "etc" / "mtab"
    if not mtab.exists() and not mtab.is_symlink():
        mtab.symlink_to("/proc/self/mounts")
    started = _run([str(launcher), "blender", "-b", "--factory-startup", "--python-expr", "pass"], log, timeout=300)
    if "Traceback" in started:  # a missing Python module of Blender's own add-ons (see COMMON_PACKAGES)
        raise Unavailable(f"Blender in {dist.name} does not start cleanly:\n{started[-2000:]}")
    (root / ".bmcp-ready").write_text(_stamp_text(dist))


def main(argv: list[str]) -> int:
    names = argv or list(DISTRIBUTIONS)
    for name in names:
        if name not in DISTRIBUTIONS:
            print(f"unknown chroot {name!r}: one of {', '.join(DISTRIBUTIONS)}", file=sys.stderr)
            return 2
        try:
            print(ensure(name))
        except Unavailable as exc:
            print(f"chroot {name}: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

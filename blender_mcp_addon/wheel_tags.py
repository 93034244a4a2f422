"""Which bundled wheels fit the running Python: the one rule the zip's every reader shares.

The zip carries binary wheels for several Pythons side by side (cp310 ... cp314)
and pure-Python wheels once. Blender 4.2.4+ picks what fits by the wheel's
Python and ABI tags when it installs the extension; `legacy.py` (Blender
< 4.2) and `build_addon.py` (its completeness check) use this module for the
same decision. Platform tags are not checked: each zip is built for one
platform.
"""

from __future__ import annotations

import re
import sys


def parse(filename: str) -> tuple[str, str, str, str]:
    """(distribution, version, python tag, abi tag) of a wheel file name (PEP 427)."""
    parts = filename[:-4].split("-") if filename.endswith(".whl") else []
    if not 5 <= len(parts) <= 6:
        raise ValueError(f"not a wheel file name: {filename!r}")
    return parts[0], parts[1], parts[-3], parts[-2]


def fits(filename: str, version: tuple[int, int] | None = None) -> bool:
    """Whether a wheel can be imported by CPython `version` (default: this interpreter).

    `py3` fits every Python 3; `cpXY` fits exactly X.Y, or X.Y and newer when its ABI tag is `abi3`.
    """
    major, minor = version or sys.version_info[:2]
    _name, _version, python_tags, abi = parse(filename)
    for tag in python_tags.split("."):
        if tag in ("py3", f"py{major}{minor}"):
            return True
        if tag.startswith(f"cp{major}") and tag[2:].isdigit():
            wheel_minor = int(tag[3:]) if len(tag) > 3 else 0
            if wheel_minor == minor or (abi == "abi3" and wheel_minor <= minor):
                return True
    return False


def normalise(name: str) -> str:
    """A project name as PEP 503 compares them: pins say `jaraco-classes`, wheel files `jaraco_classes`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def distribution(filename: str) -> str:
    """The wheel's project name, normalised."""
    return normalise(parse(filename)[0])


def folder_for(version: str | tuple[int, int]) -> str:
    """`legacy_wheels/` sub-folder of one Python: `py310`."""
    major, minor = (int(x) for x in version.split(".")) if isinstance(version, str) else version
    return f"py{major}{minor}"


def pick(shared: list[str], own: list[str], version: tuple[int, int] | None = None) -> list[str]:
    """The wheels one Python installs: those of `own` (its legacy folder) that fit, and those of `shared`
    (`wheels/`) that fit, for the projects `own` does not hold."""
    mine = [w for w in own if fits(w, version)]
    taken = {distribution(w) for w in mine}
    return mine + [w for w in shared if fits(w, version) and distribution(w) not in taken]

"""What this Blender lets a job ask of it: render bounds and where files may be written. bpy-free.

The catalog's schema is the wire contract and allows what the biggest machine on a bus could do
(8192-pixel renders, 4096 samples); each Blender bounds that by what it can afford. A 4096x4096 Cycles
render took a worker from 290 MB to a 5.3 GB peak, so the default long side is 4096 and a small
machine should lower it. A headless worker writes only in its output folder, so `--policy deny`
(no code) also means no file lands outside that folder; a Blender window is the artist's own and
writes anywhere unless its preferences say otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_MAX_RENDER_SIZE = 4096
DEFAULT_MAX_RENDER_SAMPLES = 1024
OUTPUT_FOLDER_NAME = "blender-mcp-output"

# How to raise each bound, per place the limits came from: the error names the knob the reader can turn.
_KNOBS = {
    "worker": {"size": "the worker flag --max-render-size", "samples": "the worker flag --max-render-samples",
               "write": "the worker flag --output-dir (another folder) or --allow-write-anywhere"},
    "preferences": {"size": "the add-on preference 'Max render size'",
                    "samples": "the add-on preference 'Max render samples'",
                    "write": "the add-on preferences 'Output folder' and 'Write only in the output folder'"},
}


class LimitError(ValueError):
    """A request over one of this Blender's bounds; the text names the bound, the value and the knob."""


@dataclass(frozen=True)
class Limits:
    max_render_size: int = DEFAULT_MAX_RENDER_SIZE  # long side, in pixels, of the resolution a render asks for
    max_render_samples: int = DEFAULT_MAX_RENDER_SAMPLES
    # Relative paths land here; None: relative paths are refused (there is no folder they could mean).
    output_dir: str | None = None
    write_anywhere: bool = True  # False: writes only inside output_dir
    source: str = "worker"  # "worker" or "preferences": which knobs the errors name

    def knob(self, which: str) -> str:
        return _KNOBS.get(self.source, _KNOBS["worker"])[which]

    def check_render(self, command: str, resolution_x: int, resolution_y: int, samples: int | None) -> None:
        """Raise LimitError, before anything is rendered, when a render asks for more than this Blender allows.

        The asked resolution is bounded, not the possibly smaller one a render is scaled down to for its
        reply: the asked size is what the caller can see and change."""
        long_side = max(int(resolution_x), int(resolution_y))
        if long_side > self.max_render_size:
            raise LimitError(f"{command}: {resolution_x}x{resolution_y} is over this Blender's render size limit "
                             f"of {self.max_render_size} pixels on the long side; ask for at most "
                             f"{self.max_render_size}, or raise it with {self.knob('size')}")
        if samples is not None and int(samples) > self.max_render_samples:
            raise LimitError(f"{command}: {samples} samples is over this Blender's limit of "
                             f"{self.max_render_samples} samples; ask for at most {self.max_render_samples}, "
                             f"or raise it with {self.knob('samples')}")

    def write_path(self, filepath: str) -> str:
        """The absolute, resolved path a command may write `filepath` to, or LimitError.

        `..` and symlinks are resolved (os.path.realpath) before the folder check, so neither leads out of
        the output folder. The output folder (and folders inside it) are made when first needed."""
        expanded = os.path.expanduser(filepath)
        if not os.path.isabs(expanded):
            if self.output_dir is None:
                raise LimitError(f"filepath must be absolute, got {filepath!r}")
            expanded = os.path.join(self.output_dir, expanded)
        path = os.path.realpath(expanded)
        root = os.path.realpath(self.output_dir) if self.output_dir else None
        inside = root is not None and os.path.commonpath([path, root]) == root
        if not self.write_anywhere and not inside:
            where = root or "(none set)"
            raise LimitError(f"{filepath!r} is outside the folder this Blender may write in, {where}: write "
                             f"inside it (a relative path lands there), or change {self.knob('write')}")
        if inside and path != root:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        return path


def default_output_dir() -> str:
    """A headless worker's output folder: `blender-mcp-output` in the folder it was started from, which is
    where whoever started it will look; absolute, so a script that changes the directory moves nothing."""
    return os.path.join(os.path.abspath(os.getcwd()), OUTPUT_FOLDER_NAME)

"""What this Blender lets a job ask of it: render bounds. bpy-free.

The catalog's schema is the wire contract and allows what the biggest machine on a bus could do
(8192-pixel renders, 4096 samples); each Blender bounds that by what it can afford. A 4096x4096 Cycles
render took a worker from 290 MB to a 5.3 GB peak, so the default long side is 4096 and a small
machine should lower it.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_RENDER_SIZE = 4096
DEFAULT_MAX_RENDER_SAMPLES = 1024

# How to raise each bound, per place the limits came from: the error names the knob the reader can turn.
_KNOBS = {
    "worker": {"size": "the worker flag --max-render-size", "samples": "the worker flag --max-render-samples"},
    "preferences": {"size": "the add-on preference 'Max render size'",
                    "samples": "the add-on preference 'Max render samples'"},
}


class LimitError(ValueError):
    """A request over one of this Blender's bounds; the text names the bound, the value and the knob."""


@dataclass(frozen=True)
class Limits:
    max_render_size: int = DEFAULT_MAX_RENDER_SIZE  # long side, in pixels, of the resolution a render asks for
    max_render_samples: int = DEFAULT_MAX_RENDER_SAMPLES
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

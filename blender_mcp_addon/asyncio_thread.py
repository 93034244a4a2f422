"""Tell sniffio, once per thread, that this thread runs asyncio.

anyio (under httpx, httpcore and the MCP SDK) asks sniffio which event loop is
running at every checkpoint, lock and cancel scope. Unless a thread has said so,
sniffio finds out by looking up the current task each time: that was ~4% of the
server's CPU per dispatched job (py-spy). `thread_local.name` is sniffio's own
way for a thread to declare its library, and it is checked first.
"""

from __future__ import annotations


def declare_asyncio_thread() -> None:
    """Call on a thread that runs only asyncio, before its loop starts."""
    try:
        import sniffio
    except ImportError:  # an old build without it: sniffing still works, just slower
        return
    sniffio.thread_local.name = "asyncio"

"""The add-on's log file (the panel's "Open Logs"): the package's loggers, never tokens or passwords."""

from __future__ import annotations

import logging
from logging.handlers import RotatingFileHandler
from pathlib import Path

_handler: logging.Handler | None = None


def log_path() -> Path:
    from ..session import user_folder

    return user_folder() / "blender_mcp.log"


def start() -> Path:
    global _handler
    path = log_path()
    if _handler is None:
        _handler = RotatingFileHandler(path, maxBytes=2_000_000, backupCount=2, encoding="utf-8")
        _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger(__package__.rsplit(".", 1)[0])
        root.addHandler(_handler)
        root.setLevel(logging.INFO)
    return path


def stop() -> None:
    global _handler
    if _handler is not None:
        logging.getLogger(__package__.rsplit(".", 1)[0]).removeHandler(_handler)
        _handler.close()
        _handler = None

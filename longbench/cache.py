"""Where longbench keeps what it builds or downloads (tiny model, extracted data, jieba's dictionary cache)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$LONGBENCH_CACHE``, else ``~/.cache/longbench``."""
    configured = os.environ.get("LONGBENCH_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "longbench"

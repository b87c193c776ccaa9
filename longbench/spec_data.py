"""Access to the benchmark definition shipped as data (``data/`` in the repository, ``longbench.data`` installed)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


def data_text(name: str) -> str:
    """Return the text of a file shipped in ``longbench.data``."""
    return resources.files("longbench.data").joinpath(name).read_text(encoding="utf-8")


@cache
def data_json(name: str) -> Any:
    """Return the parsed JSON of a file shipped in ``longbench.data`` (cached; do not mutate)."""
    return json.loads(data_text(name))

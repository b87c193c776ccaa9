"""Loading tokenizers, configs and models from the Hugging Face hub without long waits when it is unreachable.

Given a hub id, transformers retries an unreachable hub for about a minute before failing. Here the hub's
address is tried first with a short TCP connection; when it cannot be reached, the files come from the local
cache only (``local_files_only=True``), and a model that is not cached fails at once with one line saying so.
Local directories and ``HF_HUB_OFFLINE=1`` skip the check.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from longbench.errors import LongBenchError
from longbench.redaction import redact_url

CONNECT_TIMEOUT_S = 3.0
DEFAULT_ENDPOINT = "https://huggingface.co"
T = TypeVar("T")


def hub_endpoint() -> str:
    """The hub address in use: ``HF_ENDPOINT`` or huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def is_offline() -> bool:
    """True when the user asked for no hub access (``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE`` set to 1)."""
    return any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
               for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))  # fmt: skip


def reachable(endpoint: str, timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``endpoint``'s host and port opens within ``timeout`` seconds."""
    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def from_hub(load: Callable[..., T], model: str, what: str, **options: Any) -> T:
    """``load(model, **options)`` (a ``from_pretrained``), from the local cache alone when ``model`` is a hub
    id and the hub cannot be reached; one line when it is not cached either."""
    if Path(model).expanduser().is_dir() or is_offline():
        return load(model, **options)
    endpoint = hub_endpoint()
    if reachable(endpoint):
        return load(model, **options)
    try:
        return load(model, local_files_only=True, **options)
    except (OSError, ValueError):
        raise LongBenchError(
            f"cannot load the {what} of {model!r}: the hub ({redact_url(endpoint)}) cannot be reached and it is not in the "
            "local cache; connect, or pass a local directory"
        ) from None

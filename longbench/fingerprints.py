"""What made a set of predictions, in comparable form: a model folder's fingerprint, a data file's digest,
and the backend settings that can change a prediction.

The runner records these in ``run.json`` and compares them before it appends to earlier predictions, so that
predictions of other weights, other data or other settings are never mixed into one file. Fingerprints are
cheap: a local model folder is known by its files' names and sizes, the full contents of its small files
(config, tokenizer, chat template) and the first and last MiB of each large (weight) file.
"""

from __future__ import annotations

import hashlib
import os
import platform
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

_SMALL_FILE = 16 * 1024 * 1024  # files up to this size (config, tokenizer, template) are hashed whole
_EDGE = 1024 * 1024  # of larger (weight) files, the first and last MiB are hashed
_VERSIONS: tuple[str, ...] = ("longbench", "transformers", "torch", "tokenizers", "openai", "vllm")

# the keys of ``Backend.describe()`` that can change a prediction, compared when both runs report them
OUTPUT_SETTINGS: tuple[str, ...] = (
    "dtype",
    "attn_implementation",
    "batch_size",
    "quantization",
    "tensor_parallel_size",
    "max_model_len",
    "chat_template",
    "completion_as_chat",
    "endpoints",
    "token_limit_parameter",
    "omit_temperature",
    "tokenizer",
    "trust_remote_code",
    "repetition_penalty",
    "chat_template_kwargs",
    "think_tags",
)


def model_fingerprint(model: str | None) -> str | None:
    """sha256 fingerprint of a local model directory, or None when ``model`` is not one (a hub id is known
    by its resolved commit instead)."""
    if not model:
        return None
    folder = Path(model).expanduser()
    if not folder.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not _hidden(p, folder)):
        size = path.stat().st_size
        digest.update(f"{path.relative_to(folder).as_posix()}\0{size}\0".encode())
        digest.update(_content_digest(path, size))
    return digest.hexdigest()


def _hidden(path: Path, folder: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(folder).parts)


def _content_digest(path: Path, size: int) -> bytes:
    """sha256 of the whole file when small, else of its first and last MiB."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        if size <= _SMALL_FILE:
            while chunk := file.read(1 << 20):
                digest.update(chunk)
        else:
            digest.update(file.read(_EDGE))
            file.seek(max(size - _EDGE, 0), os.SEEK_SET)
            digest.update(file.read(_EDGE))
    return digest.digest()


def output_settings(described: Mapping[str, Any]) -> dict[str, Any]:
    """The settings in ``described`` (a backend's ``describe()``) that can change a prediction.

    The batch size is left out where the backend reports batch-invariant output (greedy float32 on the CPU:
    batched output equals one-at-a-time output, tested); on accelerators padding changes the kernels'
    arithmetic, so there it counts."""
    settings = {key: described[key] for key in OUTPUT_SETTINGS if key in described}
    if described.get("batch_invariant") is True or described.get("placement") == "cpu":
        settings.pop("batch_size", None)
    return settings


def mismatch(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[str, Any, Any] | None:
    """The first key that both mappings hold with different values: ``(key, old value, new value)``."""
    for key, value in old.items():
        if key in new and new[key] != value:
            return key, value, new[key]
    return None


def library_versions() -> dict[str, str | None]:
    """Python's and the relevant packages' versions (those installed), as recorded in run files."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for package in _VERSIONS:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found

"""Checking data files against the released checksums (``data/checksums.json``), remembering what passed.

A folder we own (the extracted hub download) keeps a marker file listing each verified file with its sha256,
size and modification time, so later loads skip re-hashing until the file changes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import BinaryIO

from longbench.errors import InputError
from longbench.spec_data import data_json

MARKER_NAME = ".longbench-verified.json"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileChecksum:
    """What the release says about one file: its sha256, size in bytes and number of lines."""

    file: str
    subset: str
    sha256: str
    size_bytes: int
    expected_lines: int


class ChecksumError(InputError):
    """A data file whose bytes differ from the released file of the same name."""


@cache
def released_checksums() -> dict[str, FileChecksum]:
    """The 34 released files (``<task>.jsonl`` and ``<task>_e.jsonl``) by file name."""
    return {
        row["file"]: FileChecksum(
            file=row["file"],
            subset=row["subset"],
            sha256=row["sha256"],
            size_bytes=row["size_bytes"],
            expected_lines=row["expected_lines"],
        )
        for row in data_json("checksums.json")["files"]
    }


def stream_digest(stream: BinaryIO, on_chunk: Callable[[int], object] | None = None) -> tuple[str, int]:
    """The sha256 (hex) and byte count of everything left in ``stream``; ``on_chunk(n)`` after each read."""
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if on_chunk is not None:
            on_chunk(len(chunk))
    return digest.hexdigest(), size


def check_digest(label: str, expected: FileChecksum, sha256: str, size: int, remedy: str) -> None:
    """Raise :class:`ChecksumError` for ``label`` unless ``sha256`` and ``size`` are the released ones."""
    if sha256 == expected.sha256 and size == expected.size_bytes:
        return
    raise ChecksumError(
        label,
        f"not the released {expected.file}: sha256 {sha256} ({size} bytes), expected {expected.sha256} "
        f"({expected.size_bytes} bytes); {remedy}",
    )


def verify_file(
    path: Path,
    expected: FileChecksum,
    remedy: str,
    *,
    remember: bool = False,
    on_chunk: Callable[[int], object] | None = None,
) -> None:
    """Check the file at ``path``; with ``remember``, use and update the marker in its folder."""
    if remember and _remembered(path, expected):
        return
    with open(path, "rb") as stream:
        sha256, size = stream_digest(stream, on_chunk)
    check_digest(str(path), expected, sha256, size, remedy)
    if remember:
        _remember(path, expected)


def verify_folder(
    directory: Path,
    checksums: Mapping[str, FileChecksum],
    remedy: str,
    *,
    progress: bool = True,
) -> tuple[list[str], list[str]]:
    """Check every file of ``checksums`` present in ``directory``, remembering the result there.

    Returns (verified names, absent names). All mismatching files are named in one :class:`ChecksumError`.
    """
    from tqdm.auto import tqdm

    present = sorted(name for name in checksums if (directory / name).is_file())
    absent = sorted(name for name in checksums if name not in present)
    total = sum((directory / name).stat().st_size for name in present)
    failures: list[ChecksumError] = []
    with tqdm(
        total=total, unit="B", unit_scale=True, desc="verifying sha256", disable=None if progress else True
    ) as bar:
        for name in present:
            if _remembered(directory / name, checksums[name]):
                bar.update((directory / name).stat().st_size)
                continue
            try:
                verify_file(directory / name, checksums[name], remedy, on_chunk=bar.update, remember=True)
            except ChecksumError as error:
                failures.append(error)
    if len(failures) == 1:
        raise failures[0]
    if failures:
        names = ", ".join(Path(error.path).name for error in failures[1:])
        first = failures[0]
        raise ChecksumError(first.path, f"{first.reason} (also differing: {names})")
    return present, absent


def _marker_entries(directory: Path) -> dict[str, dict[str, object]]:
    try:
        with open(directory / MARKER_NAME, encoding="utf-8") as stream:
            files = json.load(stream).get("files", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return files if isinstance(files, dict) else {}


def _fingerprint(path: Path, expected: FileChecksum) -> dict[str, object]:
    stat = path.stat()
    return {"sha256": expected.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _remembered(path: Path, expected: FileChecksum) -> bool:
    """Whether the marker records ``path`` as verified against ``expected`` and the file is unchanged since."""
    entry = _marker_entries(path.parent).get(path.name)
    return (
        entry is not None
        and entry.get("size") == expected.size_bytes
        and entry == _fingerprint(path, expected)
    )


def _remember(path: Path, expected: FileChecksum) -> None:
    """Record ``path`` as verified; best effort (a read-only cache just means hashing again next time)."""
    directory = path.parent
    files = _marker_entries(directory)
    files[path.name] = _fingerprint(path, expected)
    try:
        handle, temp = tempfile.mkstemp(prefix=MARKER_NAME, dir=directory)
    except OSError:
        return
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump({"files": files}, stream, indent=1, sort_keys=True)
        os.replace(temp, directory / MARKER_NAME)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temp)

"""LongBench v2 records: read (streamed) from the hub's ``data.json`` or a local JSON array / JSON-lines file,
each validated against the reference's schema with the file and record number in every error.

The hub file is a 465 MB JSON array; :func:`iter_records` parses it one record at a time with an incremental
decoder, so at most one record (plus a read buffer) is held, and hashes the bytes as it reads them.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from longbench.errors import InputError, LongBenchError
from longbench.jsonl import parse_json_line, without_lone_surrogates

logger = logging.getLogger(__name__)

REPO_ID = "THUDM/LongBench-v2"
REVISION = "2b48e494f2c7a2f0af81aae178e05c7e1dde0fe9"
FILENAME = "data.json"
# reported by a third party for data.json at REVISION; not verified by the spec's authors (SPEC-v2 s.1)
THIRD_PARTY_SHA256 = "15d61c22d92c96900b3c4948b6aeea218d3214b676a65df48e7b8555604c7fe2"

FIELDS: tuple[str, ...] = (
    "_id",
    "domain",
    "sub_domain",
    "difficulty",
    "length",
    "question",
    "choice_A",
    "choice_B",
    "choice_C",
    "choice_D",
    "answer",
    "context",
)
_CHUNK = 1 << 20
_WHITESPACE = " \t\r\n"


@dataclass
class DataSource:
    """Where records come from, and (once fully read) the sha256 of its bytes."""

    path: Path
    sha256: str | None = None
    records: int = 0
    warnings: list[str] = field(default_factory=list)


def validate_record(record: Any, path: Path, number: int) -> dict[str, Any]:
    """The record if it has every SPEC-v2 field as a string (``context`` may be null, as in copies without
    it; ``answer`` one of A-D), else an :class:`InputError` naming ``path`` and record ``number``."""
    if not isinstance(record, dict):
        raise InputError(
            path, f"record {number}: expected a JSON object, got {type(record).__name__}", number
        )
    for key in FIELDS:
        if key not in record:
            raise InputError(path, f"record {number}: missing field {key!r}", number)
        value = record[key]
        if not isinstance(value, str) and not (key == "context" and value is None):
            raise InputError(
                path, f"record {number}: {key!r} is {type(value).__name__}, expected a string", number
            )
    if record["answer"] not in ("A", "B", "C", "D"):
        raise InputError(
            path, f"record {number}: 'answer' is {record['answer']!r}, expected A, B, C or D", number
        )
    return record


def _open(path: Path) -> IO[bytes]:
    try:
        return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115
    except OSError as error:
        raise InputError(path, f"cannot read: {error.strerror}") from None


class _HashingReader:
    """Reads text chunks from a binary file, feeding every byte to sha256."""

    def __init__(self, handle: IO[bytes], path: Path) -> None:
        self._handle = handle
        self._path = path
        self.digest = hashlib.sha256()
        self._decoder = codecs.getincrementaldecoder("utf-8")()

    def read(self) -> str | None:
        """The next decoded text (possibly empty while a character is split), or None at the end of the file."""
        raw = self._handle.read(_CHUNK)
        self.digest.update(raw)
        try:
            text = self._decoder.decode(raw, final=not raw)
        except UnicodeDecodeError:
            raise InputError(self._path, "not valid UTF-8") from None
        return text if raw else None


def _array_records(reader: _HashingReader, path: Path) -> Iterator[tuple[int, Any]]:
    """(number, value) of each element of a top-level JSON array, decoded incrementally."""
    decoder = json.JSONDecoder()
    buffer, position, number, eof = "", 0, 0, False

    def fill() -> bool:
        """Append the next chunk; False at the end of the file."""
        nonlocal buffer, position, eof
        chunk = None if eof else reader.read()
        eof = chunk is None
        buffer, position = buffer[position:] + (chunk or ""), 0
        return not eof

    def skip_space(space: str = _WHITESPACE) -> None:
        nonlocal position
        while True:
            while position < len(buffer) and buffer[position] in space:
                position += 1
            if position < len(buffer) or not fill():
                return

    skip_space(_WHITESPACE + "\ufeff")
    if buffer[position : position + 1] != "[":
        raise InputError(path, "expected a JSON array or JSON lines")
    position += 1
    skip_space()
    if buffer[position : position + 1] == "]":
        return
    while True:
        number += 1
        while True:
            try:
                value, end = decoder.raw_decode(buffer, position)
                break
            except json.JSONDecodeError as error:
                if not fill():
                    raise InputError(path, f"record {number}: invalid JSON: {error.msg}", number) from None
        value, position = without_lone_surrogates(value, buffer, position, end), end
        yield number, value
        skip_space()
        separator = buffer[position : position + 1]
        position += 1
        if separator == "]":
            return
        if separator != ",":
            raise InputError(path, f"after record {number}: expected ',' or ']'", number)
        skip_space()


def _line_records(handle: IO[bytes], path: Path) -> Iterator[tuple[int, Any]]:
    for number, raw in enumerate(handle, 1):
        if raw.strip():
            yield number, parse_json_line(raw, path, number, first=number == 1)


def _starts_with_array(path: Path) -> bool:
    with _open(path) as handle:
        head = handle.read(64).decode("utf-8", errors="replace").lstrip("\ufeff" + _WHITESPACE)
    return head.startswith("[")


def iter_records(source: DataSource) -> Iterator[dict[str, Any]]:
    """Validated records of ``source.path`` (JSON array, JSON lines, either gzipped), streamed; when the file
    has been read to its end, ``source.sha256`` and ``source.records`` are set."""
    for number, value in iter_values(source):
        yield validate_record(value, source.path, number)


def iter_values(source: DataSource) -> Iterator[tuple[int, Any]]:
    """``(record number, parsed JSON value)`` of ``source.path`` (JSON array, JSON lines, either gzipped),
    streamed and not yet validated; when the file has been read to its end, ``source.sha256`` and
    ``source.records`` are set."""
    path = source.path
    with _open(path) as handle:
        if _starts_with_array(path):
            reader = _HashingReader(handle, path)
            numbered = _array_records(reader, path)
            digest = reader.digest
        else:
            hasher = hashlib.sha256()
            numbered = _line_records(_TeeHash(handle, hasher), path)
            digest = hasher
        count = 0
        for number, value in numbered:
            count += 1
            yield number, value
        while chunk := handle.read(_CHUNK):  # bytes after the array's end count toward the hash too
            digest.update(chunk)
        source.sha256, source.records = digest.hexdigest(), count


class _TeeHash:
    """Iterates lines of a binary file, feeding every byte to ``hasher``."""

    def __init__(self, handle: IO[bytes], hasher: Any) -> None:
        self._handle, self._hasher = handle, hasher

    def __iter__(self) -> Iterator[bytes]:
        for line in self._handle:
            self._hasher.update(line)
            yield line


def hub_data_file(revision: str = REVISION) -> Path:
    """``data.json`` of the hub dataset at ``revision``, downloaded once into the Hugging Face cache."""
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(REPO_ID, FILENAME, repo_type="dataset", revision=revision))
    except Exception as error:  # network and hub errors come in many types
        raise LongBenchError(
            f"cannot download {FILENAME} of {REPO_ID}@{revision[:12]} ({type(error).__name__}: {error}); "
            "pass --data PATH for a local copy"
        ) from None


def data_source(data: str) -> DataSource:
    """``hub`` (the pinned revision through huggingface_hub) or a local path."""
    if data == "hub":
        return DataSource(hub_data_file())
    path = Path(data)
    if not path.is_file():
        raise InputError(path, "no such file")
    return DataSource(path)


def checksum_warning(source: DataSource) -> str | None:
    """A loud warning when the hub file's sha256 differs from the third-party value (not a stop)."""
    if source.sha256 is None or source.sha256 == THIRD_PARTY_SHA256:
        return None
    return (
        f"WARNING: {source.path} has sha256 {source.sha256}, not the {THIRD_PARTY_SHA256} a third party "
        f"reported for {REPO_ID}@{REVISION[:12]} (unverified value; continuing)"
    )

"""Where a run's records come from: one small set of source types, opened from a ``--data`` value.

:func:`open_source` turns ``"hub"``, ``"sample"``, a ``data.zip``, a folder, a single ``.jsonl`` file, or a
derived folder written by ``longbench compress`` (read with a top-k) into a :class:`Source`. Every source
reads a task's records and the sha256 of the file it reads; a derived source also says what run.json
records about its compression and the folder-name suffix a compressed run gets. The derived folder's format
(``compression.json`` and each record's ranked ``retrieved`` chunks) is defined here, where it is read;
``longbench.compression`` writes it.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longbench.errors import InputError, LongBenchError
from longbench.schema import Record

RUN_FILE = "compression.json"  # a derived folder's record of how it was made; its presence marks the folder
KIND = "longbench-derived-data"


def is_derived(spec: str | os.PathLike[str]) -> bool:
    """True when ``spec`` is a folder written by ``longbench compress`` (it holds ``compression.json``)."""
    return str(spec) not in ("hub", "sample") and (Path(spec) / RUN_FILE).is_file()


def read_run_file(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The folder's ``compression.json`` (None when there is none); a damaged one is an :class:`InputError`."""
    path = Path(folder) / RUN_FILE
    if not path.is_file():
        return None
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        run = None
    if not isinstance(run, dict) or run.get("kind") != KIND:
        raise InputError(path, f"not a {RUN_FILE} written by longbench compress")
    for key, kind, name in (("settings", dict, "an object"), ("tasks", list, "a list")):
        if key in run and not isinstance(run[key], kind):
            raise InputError(
                path, f"not a valid {RUN_FILE}: field {key!r} must be {name}, got {type(run[key]).__name__}"
            )
    return run


@dataclass(frozen=True)
class Source:
    """A data source as given (``spec``); ``kind`` is hub, sample, zip, folder, file or derived."""

    spec: str
    kind: str
    verify: bool = True  # check files named like released ones against the released sha256

    def records(self, task: str, e: bool = False, *, verify: bool | None = None) -> Iterator[Record]:
        """The task's records, validated, in file order (``verify`` overrides the source's own setting)."""
        from longbench.loading import iter_records

        return iter_records(task, self.spec, e, verify=self.verify if verify is None else verify)

    def sha256(self, task: str, e: bool = False) -> str:
        """The sha256 of the file :meth:`records` reads (the released value once checked against it)."""
        from longbench.loading import data_file_sha256

        return data_file_sha256(task, self.spec, e, verify=self.verify)

    def compression(self) -> dict[str, Any] | None:
        """What run.json records about compression (None: the data is not derived)."""
        return None

    def folder_suffix(self) -> str:
        """Added to the default model folder name (a compressed run: ``-bm25-c500-top3``)."""
        return ""

    def tasks(self) -> list[str] | None:
        """The tasks this source holds when it says so (a derived folder), else None."""
        return None


@dataclass(frozen=True)
class DerivedSource(Source):
    """A derived folder; with ``top_k`` each context is ``"".join(retrieved[:top_k])`` as the reference's
    retrieval pred.py builds it, else the folder's own ``context`` field."""

    top_k: int | None = None
    run: Any = None  # the folder's compression.json

    def records(self, task: str, e: bool = False, *, verify: bool | None = None) -> Iterator[Record]:
        from longbench.loading import iter_records

        if self.top_k is None:  # derived data is not held to the released checksums
            return iter_records(task, self.spec, e, verify=False, checksums={})
        return _retrieval_records(task, Path(self.spec), e, self.top_k)

    def sha256(self, task: str, e: bool = False) -> str:
        from longbench.loading import data_file_sha256

        return data_file_sha256(task, self.spec, e, verify=False)

    def compression(self) -> dict[str, Any] | None:
        entry = dict(self.run.get("settings", {}))
        entry["source"] = self.run.get("source")
        entry["derived_data"] = str(Path(self.spec).resolve())
        entry["top_k"] = self.top_k
        top_k = self.top_k
        entry["context"] = (
            f'"".join(retrieved[:{top_k}])' if top_k is not None else "the derived context field"
        )
        return entry

    def folder_suffix(self) -> str:
        settings = self.run.get("settings", {})
        parts = [str(settings.get("method", "compressed"))]
        if settings.get("method") == "bm25" and settings.get("bm25_tokens") == "words":
            parts.append("words")
        if settings.get("chunk_size") is not None:
            parts.append(f"c{settings['chunk_size']}")
        parts.append(f"top{self.top_k}" if self.top_k is not None else "ctx")
        return "-" + "-".join(parts)

    def tasks(self) -> list[str] | None:
        return list(self.run.get("tasks", [])) or None


def open_source(spec: str | os.PathLike[str], *, top_k: int | None = None, verify: bool = True) -> Source:
    """The source ``spec`` names; ``top_k`` only for a derived folder (else a :class:`LongBenchError`)."""
    text = str(spec)
    if is_derived(text):
        return DerivedSource(text, "derived", verify, top_k=top_k, run=read_run_file(text))
    if top_k is not None:
        raise LongBenchError(
            f"--top-k needs --data to be a folder written by `longbench compress`, not {text!r}"
        )
    return Source(text, _kind(text), verify)


def _kind(spec: str) -> str:
    if spec in ("hub", "sample"):
        return spec
    path = Path(spec).expanduser()
    if path.is_dir():
        return "folder"
    if path.is_file():
        return "zip" if zipfile.is_zipfile(path) else "file"
    return "missing"  # reading it says what is wrong, in the reader's words


def _retrieval_records(task: str, folder: Path, e: bool, top_k: int) -> Iterator[Record]:
    """The records of ``task`` in a derived folder with ``context`` = the first ``top_k`` retrieved chunks."""
    from longbench.jsonl import parse_json_line
    from longbench.schema import validate_record
    from longbench.tasks import get_task

    path = folder / get_task(task, e).file_name(e)
    if not path.is_file():
        raise LongBenchError(f"no data for task {task!r}: derived folder {folder} has no {path.name}")
    with open(path, "rb") as stream:
        for number, raw in enumerate(stream, start=1):
            if not raw.strip():
                continue
            obj = parse_json_line(raw, path, number, first=number == 1)
            record = validate_record(obj, path, number)
            retrieved = obj.get("retrieved")
            if not isinstance(retrieved, list) or not all(isinstance(chunk, str) for chunk in retrieved):
                raise InputError(
                    path, "field 'retrieved' must be a list of strings (a retrieval method's output)", number
                )
            record["context"] = "".join(retrieved[:top_k])
            yield record

"""The derived data folder written by ``longbench compress``: ``<task>.jsonl`` files and ``compression.json``.

Each record is the source record (same eight fields) plus ``retrieved``, the ranked chunks, best first; its
``context`` is the reference's 1,500-word retrieved context (or, for summary compression, the concatenated
summaries). ``compression.json`` names the source and every setting; its presence is what marks a folder as
derived, so loading does not hold it to the released checksums. With a top-k, prediction reads the context as
``"".join(retrieved[:k])``, as the reference's retrieval ``pred.py`` does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from longbench.errors import InputError, LongBenchError
from longbench.schema import Record

RUN_FILE = "compression.json"
KIND = "longbench-derived-data"


def is_derived(source: str | os.PathLike[str]) -> bool:
    """True when ``source`` is a folder written by ``longbench compress`` (it holds ``compression.json``)."""
    return str(source) not in ("hub", "sample") and (Path(source) / RUN_FILE).is_file()


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


def compression_entry(data: str, top_k: int | None) -> dict[str, Any] | None:
    """What run.json records about compression: the derived folder's settings and the top-k (None: plain data).

    Raises :class:`LongBenchError` when ``top_k`` is given for data that is not a derived folder.
    """
    run = read_run_file(data) if is_derived(data) else None
    if run is None:
        if top_k is not None:
            raise LongBenchError(
                f"--top-k needs --data to be a folder written by `longbench compress`, not {data!r}"
            )
        return None
    entry = {key: value for key, value in run.get("settings", {}).items()}
    entry["source"] = run.get("source")
    entry["derived_data"] = str(Path(data).resolve())
    entry["top_k"] = top_k
    entry["context"] = f'"".join(retrieved[:{top_k}])' if top_k is not None else "the derived context field"
    return entry


def compressed_model_name(model_name: str, entry: dict[str, Any] | None) -> str:
    """The default folder name of a compressed run: ``<model>-bm25-c500-top3`` and the like."""
    if entry is None:
        return model_name
    parts = [model_name, str(entry.get("method", "compressed"))]
    if entry.get("method") == "bm25" and entry.get("bm25_tokens") == "words":
        parts.append("words")
    if entry.get("chunk_size") is not None:
        parts.append(f"c{entry['chunk_size']}")
    parts.append(f"top{entry['top_k']}" if entry.get("top_k") is not None else "ctx")
    return "-".join(parts)


def iter_retrieval_records(
    task: str, folder: str | os.PathLike[str], e: bool, top_k: int
) -> Iterator[Record]:
    """The records of ``task`` in a derived folder with ``context`` = the first ``top_k`` retrieved chunks."""
    from longbench.jsonl import parse_json_line
    from longbench.schema import validate_record
    from longbench.tasks import get_task

    path = Path(folder) / get_task(task, e).file_name(e)
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

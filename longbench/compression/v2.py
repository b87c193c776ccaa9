"""LongBench v2 records compressed for its RAG mode: each record gets ``retrieved_context``.

LongBench v2's ``pred.py --rag N`` reads, per record, ``retrieved_context``: a list, best first, of
``{"c_idx": position of the chunk in the document, "content": the chunk}``. Here the document is chunked with
the reference's v1 chunker and ranked against the ``question`` by any ranker of the compression pipeline. The
paper's v2 settings (GLM-4 128-token chunks, Zhipu embeddings) are an open question in SPEC-v2.md, so chunk
size and method are the user's choice and are recorded in ``compression.json``.

The source is a v2 data file: JSON lines (optionally gzip-compressed, ``.gz``) or one JSON list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from longbench.compression.chunking import split_chunks
from longbench.errors import InputError, LongBenchError

V2_FILE = "longbench_v2.jsonl"  # the derived file's name
_REQUIRED = ("_id", "question", "context")


def retrieved_context(chunks: list[str], order: list[int]) -> list[dict[str, Any]]:
    """The RAG list: every chunk, in ``order`` (best first), with its position in the document."""
    return [{"c_idx": index, "content": chunks[index]} for index in order]


def iter_v2_records(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a v2 data file (read by :func:`longbench.v2.data.iter_values`: JSON lines or one JSON
    array, optionally gzip-compressed), each checked for a string ``_id``, ``question`` and ``context``: the
    fields retrieval needs."""
    from longbench.v2.data import DataSource, iter_values

    if not path.is_file():
        raise LongBenchError(f"LongBench v2 data {path} is not a file")
    for number, obj in iter_values(DataSource(path)):
        if not isinstance(obj, dict):
            raise InputError(path, f"expected a JSON object, got {type(obj).__name__}", number)
        for key in _REQUIRED:
            if not isinstance(obj.get(key), str):
                raise InputError(path, f"field {key!r} must be a string", number)
        yield obj


def compress_v2(
    source: Path,
    out_dir: Path,
    settings: Any,
    ranker: Callable[[str, list[str], str], list[int]],
    *,
    limit: int | None = None,
    notify: Callable[[str], None] | None = None,
) -> tuple[int, int]:
    """Write ``<out_dir>/longbench_v2.jsonl`` (resumable) and ``compression.json``; (written, already there)."""
    from dataclasses import asdict
    from itertools import islice

    from longbench.compression.pipeline import check_run_file, write_run_file
    from longbench.run_files import folder_lock
    from longbench.sources import KIND

    run = {
        "kind": KIND,
        "label": settings.label() + " (LongBench v2 retrieved_context)",
        "source": str(source.expanduser().resolve()),
        "e": False,
        "settings": asdict(settings),
    }
    records = list(islice(iter_v2_records(source), limit))  # all validated before anything is written
    with folder_lock(out_dir).acquire(str(out_dir)):  # one writer per folder, as for predict
        check_run_file(out_dir, run)
        write_run_file(out_dir, run, ["longbench_v2"])
        return _write_v2(out_dir, records, settings, ranker)


def _write_v2(
    out_dir: Path,
    records: list[dict[str, Any]],
    settings: Any,
    ranker: Callable[[str, list[str], str], list[int]],
) -> tuple[int, int]:
    from longbench.progress import progress_bar
    from longbench.run_files import PredictionWriter

    with PredictionWriter(out_dir / V2_FILE) as writer:
        pending = [record for record in records if record["_id"] not in writer.done_ids]
        for record in progress_bar(
            pending, desc="longbench_v2", unit="record", dynamic_ncols=True, leave=False
        ):
            chunks = split_chunks(record["context"], settings.chunk_size)
            order = ranker(record["question"], chunks, "en")
            writer.write({**record, "retrieved_context": retrieved_context(chunks, order)})
    return len(pending), len(records) - len(pending)

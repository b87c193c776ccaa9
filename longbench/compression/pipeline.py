"""One compression run: each task's records read from any source, compressed, appended to a derived folder.

Per task, the records already in ``<out>/<task>.jsonl`` are skipped (the file is appended one flushed line per
record, and a torn last line from a killed run is cut off), so a rerun of the same command resumes. The
settings are written to ``compression.json`` first; a rerun with other settings into the same folder is
refused.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from longbench.compression.chunking import CONTEXT_WORDS, leading_context, split_chunks
from longbench.errors import LongBenchError, SettingError
from longbench.schema import Record
from longbench.sources import KIND, RUN_FILE, read_run_file

Ranker = Callable[
    [str, list[str], str], list[int]
]  # (query, chunks, language) -> chunk positions, best first
Condenser = Callable[[Record], str]  # record -> its compressed context (summary compression)
METHODS: tuple[str, ...] = ("bm25", "dense", "summary")


@dataclass(frozen=True)
class CompressSettings:
    """Everything that decides a derived folder's content (recorded in ``compression.json``)."""

    method: str = "bm25"
    chunk_size: int = 500
    bm25_tokens: str = "characters"  # characters: the reference's behaviour (rank_bm25 fed strings)
    embedder: str | None = None  # dense: the embedding model
    model: str | None = None  # summary: the summarizing model
    context_words: int = CONTEXT_WORDS

    def folder_name(self) -> str:
        """The default derived folder name: ``bm25-c500``, ``bm25-words-c200``, ``dense-c200``, ``summary-c500``."""
        words = "-words" if self.method == "bm25" and self.bm25_tokens == "words" else ""
        return f"{self.method}{words}-c{self.chunk_size}"

    def label(self) -> str:
        """A one-line description, e.g. for logs: which method, and whether it is the reference's."""
        if self.method == "bm25":
            kind = "reference-exact (character-level)" if self.bm25_tokens == "characters" else "word-level"
            return f"BM25 {kind}, chunks of {self.chunk_size} words"
        if self.method == "dense":
            return f"dense retrieval with {self.embedder}, chunks of {self.chunk_size} words"
        return f"summary compression with {self.model}, segments of {self.chunk_size} words"


@dataclass
class CompressSummary:
    """What :func:`compress` did, per task: records in the source, written now, and already there."""

    out_dir: Path
    written: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def retrieval_record(record: Record, ranked: list[str], context_words: int) -> dict[str, Any]:
    """The derived record: the source fields, ``context`` = the leading ranked chunks, ``retrieved`` = all."""
    derived: dict[str, Any] = dict(record)
    derived["context"] = leading_context(ranked, context_words)
    derived["retrieved"] = ranked
    return derived


def _source_records(task: str, source: str, e: bool, warn: Callable[[str], None]) -> Iterator[Record]:
    """The task's records; a file under a released name that is not the released file is read with a warning."""
    from longbench.checksums import ChecksumError
    from longbench.loading import iter_records

    try:
        return iter_records(task, source, e)
    except ChecksumError as error:
        warn(f"warning: {error}; compressing it anyway (it is not the released file)")
        return iter_records(task, source, e, verify=False)


def check_run_file(out_dir: Path, run: dict[str, Any]) -> None:
    old = read_run_file(out_dir)
    if old is None:
        return
    for key in ("source", "e", "settings"):
        if old.get(key) != run[key]:
            raise LongBenchError(
                f"{out_dir / RUN_FILE}: this folder was compressed with a different {key} "
                f"({old.get(key)!r}, now {run[key]!r}); use another --out or delete it"
            )


def write_run_file(out_dir: Path, run: dict[str, Any], tasks: list[str]) -> None:
    import json

    from longbench.fingerprints import library_versions
    from longbench.run_files import write_atomic

    old = read_run_file(out_dir) or {}
    run = {**run, "tasks": sorted({*old.get("tasks", []), *tasks}), "versions": library_versions()}
    run["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_atomic(out_dir / RUN_FILE, json.dumps(run, ensure_ascii=False, indent=1) + "\n")


def _source_name(source: str) -> str:
    return source if source in ("hub", "sample") else str(Path(source).expanduser().resolve())


def compress(
    source: str,
    out_dir: Path,
    tasks: list[str],
    settings: CompressSettings,
    *,
    ranker: Ranker | None = None,
    condenser: Condenser | None = None,
    e: bool = False,
    limit: int | None = None,
    notify: Callable[[str], None] | None = None,
) -> CompressSummary:
    """Compress ``tasks`` of ``source`` into ``out_dir`` with ``ranker`` (retrieval) or ``condenser`` (summary)."""
    from itertools import islice

    from longbench.run_files import folder_lock

    if (ranker is None) == (condenser is None):
        raise LongBenchError("compress needs exactly one of a ranker or a condenser")
    say = notify or (lambda message: print(message, file=sys.stderr))
    run = {
        "kind": KIND,
        "label": settings.label(),
        "source": _source_name(source),
        "e": e,
        "settings": asdict(settings),
    }
    summary = CompressSummary(out_dir=out_dir)

    def warn(message: str) -> None:
        summary.warnings.append(message)
        say(message)

    # every task's records are read and validated first: bad input leaves no output behind
    sources = {task: list(islice(_source_records(task, source, e, warn), limit)) for task in tasks}
    with folder_lock(out_dir).acquire(str(out_dir)):  # one writer per folder, as for predict
        _compress_locked(out_dir, run, sources, settings, ranker, condenser, e, summary)
    return summary


def _compress_locked(
    out_dir: Path,
    run: dict[str, Any],
    sources: dict[str, list[Record]],
    settings: CompressSettings,
    ranker: Ranker | None,
    condenser: Condenser | None,
    e: bool,
    summary: CompressSummary,
) -> None:
    """Write the derived folder while holding its lock."""
    from longbench.progress import progress_bar
    from longbench.run_files import PredictionWriter
    from longbench.tasks import get_task

    check_run_file(out_dir, run)
    tasks = list(sources)
    write_run_file(out_dir, run, tasks)
    for task, records in sources.items():
        path = out_dir / get_task(task, e).file_name(e)
        with PredictionWriter(path) as writer:
            pending = [record for record in records if record["_id"] not in writer.done_ids]
            summary.skipped[task] = len(records) - len(pending)
            summary.written[task] = 0
            for record in progress_bar(pending, desc=task, unit="record", dynamic_ncols=True, leave=False):
                writer.write(_compress_record(record, settings, ranker, condenser))
                summary.written[task] += 1


def _compress_record(
    record: Record, settings: CompressSettings, ranker: Ranker | None, condenser: Condenser | None
) -> dict[str, Any]:
    if condenser is not None:
        return {**record, "context": condenser(record)}
    assert ranker is not None
    chunks = split_chunks(record["context"], settings.chunk_size)
    ranked = [chunks[i] for i in ranker(record["input"], chunks, record["language"])]
    return retrieval_record(record, ranked, settings.context_words)


def bm25_ranker(tokens: str) -> Ranker:
    """The reference's character-level BM25 (``tokens="characters"``) or word-level BM25 (``"words"``)."""
    from longbench.compression.bm25 import TOKEN_CHOICES, order_reference, order_words

    if tokens not in TOKEN_CHOICES:
        raise SettingError(
            "{bm25_tokens} {value!r}: expected one of {choices}",
            value=tokens,
            choices=", ".join(TOKEN_CHOICES),
        )
    if tokens == "characters":
        return lambda query, chunks, language: order_reference(query, chunks)
    return order_words

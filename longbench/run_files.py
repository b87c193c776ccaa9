"""Crash-safe prediction files: one JSON line per sample, appended and flushed, resumable by ``_id``.

A prediction line is the reference format plus the sample id: ``{"pred", "answers", "all_classes",
"length", "_id"}``. A process killed mid-run leaves at most a torn last line, which the next run cuts off
before appending (a last line that is whole but lacks its newline is kept, as eval keeps it); ids already in the file are skipped, so no sample is ever written twice. Failed samples go
to ``errors.jsonl`` beside the predictions (never into them) and are retried by the next run.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from longbench.errors import InputError, LongBenchError
from longbench.jsonl import utf8
from longbench.permissions import current_umask
from longbench.redaction import redact_text, redacted_command

RUN_STEM = "run"  # run.json: every setting of the run
ERRORS_STEM = "errors"  # errors.jsonl: samples that failed, retried by the next run
_SHARD = re.compile(r"\.shard-\d+-of-\d+$")


def output_file(folder: Path, stem: str, extension: str, shard: tuple[int, int] | None = None) -> Path:
    """``folder/<stem><extension>``, or ``folder/<stem>.shard-I-of-N<extension>`` for shard I of N, so that
    shards can share one folder (``trec.shard-0-of-3.jsonl``, ``run.shard-0-of-3.json``)."""
    suffix = f".shard-{shard[0]}-of-{shard[1]}" if shard else ""
    return folder / f"{stem}{suffix}{extension}"


def unsharded_stem(path: Path) -> str:
    """The stem of ``path`` without a shard suffix: ``trec.shard-0-of-3.jsonl`` -> ``trec``."""
    return _SHARD.sub("", path.name[: -len(path.suffix)] if path.suffix else path.name)


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step (temporary file in the same folder, then ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(handle, 0o666 & ~current_umask())  # mkstemp makes 0600; follow the umask like open() does
        with os.fdopen(handle, "wb") as file:
            file.write(utf8(text))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


_DICT = (dict,)
_RUN_FIELD_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "output_settings": (_DICT, "an object"),
    "backend_settings": (_DICT, "an object"),
    "decoding": (_DICT, "an object"),
    "versions": (_DICT, "an object"),
    "max_length": (_DICT, "an object"),
    "max_new_tokens": (_DICT, "an object"),
    "data_sha256": (_DICT, "an object"),
    "task_samples": (_DICT, "an object"),
    "compression": ((dict, type(None)), "an object or null"),
    "stop_at_newline": ((list,), "a list"),
    "earlier_versions": ((list,), "a list"),
    "shard": ((list, type(None)), "a list or null"),
    "e": ((bool,), "true or false"),
    "verify": ((bool,), "true or false"),
    "complete": ((bool,), "true or false"),
}


def check_run_fields(path: Path, record: Any) -> dict[str, Any]:
    """``record`` (a parsed run.json) when every field this package reads has the type it writes; else one
    :class:`InputError` naming the file and the field."""
    if not isinstance(record, dict):
        raise InputError(path, "not a valid run.json (not a JSON object); delete it or use another --out")
    for key, (types, expected) in _RUN_FIELD_TYPES.items():
        if key in record and not isinstance(record[key], types):
            got = type(record[key]).__name__
            raise InputError(path, f"not a valid run.json: field {key!r} must be {expected}, got {got}")
    samples = record.get("task_samples", {})
    for task, count in samples.items():
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise InputError(
                path, f"not a valid run.json: task_samples[{task!r}] must be a count, got {count!r:.40}"
            )
    return record


def json_line(record: dict[str, Any]) -> bytes:
    """One record as a UTF-8 JSON line (non-ASCII kept, as the reference writes it; a lone surrogate, which
    UTF-8 cannot hold, becomes U+FFFD)."""
    return utf8(json.dumps(record, ensure_ascii=False) + "\n")


def is_whole_line(raw: bytes) -> bool:
    """Whether ``raw`` (a last line without its newline) is a whole JSON object, rather than one torn by a
    crash mid-write. Predict and eval apply the same rule: a whole one counts, a torn one is left out."""
    try:
        return isinstance(json.loads(raw.decode("utf-8")), dict)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False


def _drop_torn_tail(path: Path) -> None:
    """End ``path`` with a newline: a last line without one is either whole (its newline is added) or was
    being written when a run died (it is cut off)."""
    with open(path, "rb+") as file:
        size = file.seek(0, os.SEEK_END)
        if size == 0:
            return
        position = size
        while position > 0:
            step = min(65536, position)
            file.seek(position - step)
            chunk = file.read(step)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                end = position - step + newline + 1
                break
            position -= step
        else:
            end = 0
        if end == size:
            return
        file.seek(end)
        if is_whole_line(file.read(size - end)):
            file.seek(size)
            file.write(b"\n")
        else:
            file.truncate(end)


def _read_ids(path: Path) -> set[str]:
    ids: set[str] = set()
    with open(path, "rb") as file:
        for number, raw in enumerate(file, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise InputError(
                    path, "not a valid JSON line; move the file away to start over", number
                ) from None
            sample_id = obj.get("_id") if isinstance(obj, dict) else None
            if not isinstance(sample_id, str) or not sample_id:
                raise InputError(
                    path, "line has no '_id', so the run cannot be resumed; use another --out", number
                )
            ids.add(sample_id)
    return ids


class OutputWriteError(LongBenchError):
    """A record could not be written whole (disk full, file size limit, I/O error); the file was cut back to
    its last complete line, so it holds ``kept`` whole records and a re-run finishes it."""

    def __init__(self, path: Path, kept: int, error: OSError) -> None:
        if error.errno == errno.ENOSPC:
            what = "disk full"
        elif error.errno == errno.EFBIG:
            what = "file size limit reached"
        else:
            what = f"cannot write ({error.strerror or error})"
        super().__init__(
            f"{what}: {kept} predictions kept in {path}; free space (or fix the cause) and run the same "
            "command again to finish"
        )
        self.path = path
        self.kept = kept


def append_whole(fd: int, data: bytes) -> None:
    """Append all of ``data`` to the file open (for appending) as ``fd``, or nothing: a short write is
    continued, and on any OS error the file is cut back to its size before the call and the error raised."""
    start = os.lseek(fd, 0, os.SEEK_END)
    view = memoryview(data)
    try:
        while view:
            written = os.write(fd, view)
            if written <= 0:
                raise OSError(errno.EIO, "the write made no progress")
            view = view[written:]
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, start)  # shrinking is allowed even when the disk is full or the size limit hit
        raise


class OutputLock:
    """One writer per set of output files: an exclusive ``flock`` on ``path``, which the kernel releases
    when the process ends however it ends. The file holds the holder's pid and command (URLs and keys redacted),
    for the refusal, and
    is removed on release (a process that locked the removed file sees it is gone and tries again)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, what: str) -> OutputLock:
        """Take the lock, or raise one line naming the process that holds it; ``what`` names the outputs."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 4096, 0).decode("utf-8", errors="replace").strip() or "unknown process"
                holder = redact_text(
                    holder
                )  # a lock file written by an older version may hold a URL's password
                os.close(fd)
                raise LongBenchError(
                    f"{what}: another run is writing here (pid {holder}); wait for it to end or stop it, "
                    "or use another --out or --model-name"
                ) from None
            if _same_file(fd, self.path):
                break
            os.close(fd)  # the holder removed this file as we opened it: lock the current one
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}: {redacted_command(sys.argv)}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()  # still holding the lock, so no one else owns this file yet
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def folder_lock(folder: Path, shard: tuple[int, int] | None = None) -> OutputLock:
    """The lock every writer of ``folder`` (or of one shard's files in it) takes: predict and compress alike."""
    return OutputLock(output_file(folder, ".predict", ".lock", shard))


def _same_file(fd: int, path: Path) -> bool:
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (current.st_dev, current.st_ino) == (opened.st_dev, opened.st_ino)


class PredictionWriter:
    """Appends predictions of one task to ``path``; ``done_ids`` holds the ids already in the file."""

    def __init__(self, path: Path, fsync: bool = False) -> None:
        self.path = path
        self.fsync = fsync
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            _drop_torn_tail(path)
            self.done_ids: set[str] = _read_ids(path)
        else:
            self.done_ids = set()
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115 -- held open for the writer's lifetime

    def write(self, record: dict[str, Any]) -> bool:
        """Append ``record`` (which must hold ``_id``) unless its id is already written; True if written."""
        sample_id = record["_id"]
        if sample_id in self.done_ids:
            return False
        try:
            append_whole(self._file.fileno(), json_line(record))
        except OSError as error:
            raise OutputWriteError(self.path, len(self.done_ids), error) from None
        if self.fsync:
            os.fsync(self._file.fileno())
        self.done_ids.add(sample_id)
        return True

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ErrorLog:
    """``errors.jsonl``: ``{"dataset", "_id", "error"}`` per failed sample still to be retried.

    Opening it for a run forgets the earlier failures of the tasks that run is about to retry, so that after
    a run the file lists exactly the samples that failed and are still missing.
    """

    def __init__(self, path: Path, retrying: Iterable[str] = ()) -> None:
        self.path = path
        self.count = 0
        retry = set(retrying)
        if path.exists():
            _drop_torn_tail(path)
            kept = [line for line in path.read_bytes().splitlines(keepends=True) if not _is_task(line, retry)]
            write_atomic(path, b"".join(kept).decode("utf-8", errors="replace"))
        self._file: Any = None

    def record(self, dataset: str, sample_id: str, error: str) -> None:
        """Append one failure, flushed at once."""
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115
        line = json_line({"dataset": dataset, "_id": sample_id, "error": error})
        try:
            append_whole(self._file.fileno(), line)
        except OSError as failure:
            raise LongBenchError(f"cannot write {self.path}: {failure.strerror or failure}") from None
        self.count += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _is_task(line: bytes, tasks: set[str]) -> bool:
    try:
        obj = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return True  # an unreadable old entry is dropped rather than kept forever
    return not isinstance(obj, dict) or obj.get("dataset") in tasks


class CallJournal:
    """The answers of samples' earlier calls (v2's chain of thought), appended whole, one line each, as they
    arrive: ``{"_id", "call", "answer"}``. A re-run after any kill reads them back (``answers``), so only the
    calls that were in flight are made again. The file is hidden (``.<task>.calls.jsonl``) and removed once
    every sample it names has its prediction line.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.answers: dict[str, list[dict[str, Any]]] = _read_journal(path) if path.exists() else {}
        self._file: Any = None

    def write(self, sample_id: str, call: int, answer: dict[str, Any]) -> None:
        """Append one answer, on disk before this returns."""
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115 -- held open while the run lasts
        try:
            append_whole(self._file.fileno(), json_line({"_id": sample_id, "call": call, "answer": answer}))
        except OSError as error:
            raise LongBenchError(f"cannot write {self.path}: {error.strerror or error}") from None
        self.answers.setdefault(sample_id, []).append(answer)

    def close(self, done_ids: set[str]) -> None:
        """Close the file, removing it when every sample it names is written."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.path.exists() and set(self.answers) <= done_ids:
            self.path.unlink()


def _read_journal(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Each sample's answers in call order (a torn last line, from a kill mid-write, is cut off first)."""
    _drop_torn_tail(path)
    answers: dict[str, list[dict[str, Any]]] = {}
    with open(path, "rb") as file:
        for number, raw in enumerate(file, start=1):
            try:
                entry = json.loads(raw.decode("utf-8"))
                sample_id, call, answer = entry["_id"], entry["call"], entry["answer"]
            except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
                raise InputError(
                    path, "not a journal line; delete the file to redo its calls", number
                ) from None
            kept = answers.setdefault(sample_id, [])
            if call == len(kept) and isinstance(answer, dict):  # a later call follows the earlier ones only
                kept.append(answer)
    return answers

"""The prediction run: samples in, one crash-safe prediction file per task out, with a ``run.json`` record.

The runner streams every task's samples (first ``limit``, then this shard's share): samples already in
``<out>/<model>/<task>.jsonl`` are skipped without building their prompts, and each other prompt (template
filled, middle truncated to the model's budget) is built only when the backend asks for the next request.
Right after the first prediction, every task's data is read through once more, keeping only the ids, to check
every line and count the samples. All tasks' requests go to the backend
as one lazily consumed iterable, so that engines and servers batch continuously across task boundaries while
memory and the time to the first prediction do not grow with the number of samples. Each prediction is
appended to its task's file, whole or not at all, as it arrives. Failures go to ``errors.jsonl`` and are
retried by the next run of the same command. One run at a time writes a folder's (shard's) files: a second
one is refused. ``run.json`` records everything that decides the numbers, and a run that would append
predictions made differently (other weights, data or settings) is refused.

A :class:`Benchmark` supplies the records, budgets, requests and result lines (LongBench v1 by default, v2
through ``longbench.v2.requests``); a benchmark whose samples take several calls (v2's chain of thought) is
generated in passes, each pass's requests built lazily from the answers of the one before.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import platform
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from itertools import islice
from pathlib import Path
from typing import Any

from longbench.backends.base import Backend, GenerationRequest
from longbench.errors import InputError, LongBenchError
from longbench.identity import mismatch, model_fingerprint, output_settings
from longbench.outputs import (
    ERRORS_STEM,
    RUN_STEM,
    ErrorLog,
    PredictionWriter,
    check_run_fields,
    folder_lock,
    json_line,
    output_file,
    write_atomic,
)
from longbench.schema import Record
from longbench.tasks import Task, all_tasks

# run.json fields that must agree before predictions are appended to an existing folder
_MUST_MATCH: tuple[str, ...] = (
    "backend",
    "revision",
    "dtype",
    "e",
    "shard",
    "chat_template_sha256",
    "prompt_table_sha256",
    "model_id",
    "model_fingerprint",
    "tokenizer_fingerprint",
    "compression",
    "temperature",
)
_ADVICE = "use another --out or --model-name, or delete the folder to start over"
_VERSIONS: tuple[str, ...] = ("longbench", "transformers", "torch", "tokenizers", "openai", "vllm")


@dataclass
class TaskOutcome:
    """What one task's run did: ``samples`` in this shard, of which ``skipped`` were already written."""

    samples: int = 0
    skipped: int = 0
    written: int = 0
    failed: int = 0
    generated_tokens: int = 0


@dataclass
class PredictSummary:
    """The result of :func:`predict`."""

    out_dir: Path
    model_name: str
    tasks: dict[str, TaskOutcome] = field(default_factory=dict)
    dumped: int | None = None  # prompts written by --dump-prompts (then nothing was generated)
    errors_file: Path | None = None  # where failed samples are listed
    seconds: float = 0.0
    generated_tokens: int = 0

    @property
    def failed(self) -> int:
        return sum(outcome.failed for outcome in self.tasks.values())

    @property
    def skipped(self) -> int:
        return sum(outcome.skipped for outcome in self.tasks.values())

    @property
    def written(self) -> int:
        return sum(outcome.written for outcome in self.tasks.values())


def model_name_from(model: str) -> str:
    """The folder name for ``model``: the basename of a path, the last part of a hub id or ``builtin:`` name."""
    name = model.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    if not name or name in (".", ".."):
        raise LongBenchError(f"cannot derive a model name from {model!r}; pass --model-name")
    return name


def select_shard(records: list[Record], index: int, count: int) -> list[Record]:
    """Shard ``index`` of ``count`` (0-based): every ``count``-th record by position, starting at ``index``."""
    if count < 1 or not 0 <= index < count:
        raise LongBenchError(f"invalid shard {index}/{count}: need 0 <= I < N (shards are numbered from 0)")
    return records[index::count]


def load_records(
    task: Task, data: str, e: bool, limit: int | None, verify: bool = True, top_k: int | None = None
) -> list[Record]:
    """The first ``limit`` records of ``task`` from ``data`` (all when None); duplicate ids are an error."""
    records = list(stream_records(task, data, e, limit, None, verify, top_k))
    scan_ids(iter(records), task, data)
    return records


def stream_records(
    task: Task,
    data: str,
    e: bool,
    limit: int | None,
    shard: tuple[int, int] | None,
    verify: bool = True,
    top_k: int | None = None,
) -> Iterator[Record]:
    """The first ``limit`` records of ``task`` from ``data``, then this shard's share, read lazily.

    With ``top_k``, ``data`` is a derived folder (``longbench compress``) and each context is the first
    ``top_k`` retrieved chunks joined.
    """
    from longbench.compression.derived import iter_retrieval_records
    from longbench.loading import iter_records

    source = (
        iter_records(task.name, data, e, verify=verify)
        if top_k is None
        else iter_retrieval_records(task.name, data, e, top_k)
    )
    records = islice(source, limit)
    return islice(records, shard[0], None, shard[1]) if shard else records


def scan_ids(records: Iterator[Record], task: Task, data: str) -> list[str]:
    """The ids of ``records`` in order, read through once (so every line is checked); a repeated id is an
    error naming its line."""
    ids: list[str] = []
    seen: set[str] = set()
    for number, record in enumerate(records, start=1):
        if record["_id"] in seen:
            raise InputError(f"{data} ({task.name})", f"duplicate _id {record['_id']!r}", number)
        seen.add(record["_id"])
        ids.append(record["_id"])
    return ids


def prompt_table_sha256() -> str:
    """sha256 of the prompt templates of all 21 tasks (canonical JSON, sorted by task name)."""
    table = {task.name: task.prompt for task in all_tasks()}
    return _sha256(json.dumps(table, ensure_ascii=False, sort_keys=True))


def _sha256(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


def library_versions() -> dict[str, str | None]:
    """Python's and the relevant packages' versions (those installed), as recorded in run files."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for package in _VERSIONS:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def _max_length(
    task: Task, names: Sequence[str], override: int | None, window: int | None
) -> tuple[int, str | None]:
    """The prompt budget: --max-length, else the reference's value for any of ``names``, else the window."""
    from longbench.prompts import resolve_max_length

    for name in names[:-1]:
        try:
            return resolve_max_length(name, task, override=override, context_window=None)
        except LongBenchError:
            continue
    return resolve_max_length(names[-1], task, override=override, context_window=window)


def build_request(task: Task, record: Record, backend: Backend, max_length: int | None) -> GenerationRequest:
    """The request for one sample: the filled prompt, middle-truncated when the backend has a tokenizer."""
    from longbench.prompts import fill_prompt, truncate_middle

    prompt = fill_prompt(task, record)
    if backend.tokenizer is not None and max_length is not None:
        prompt = truncate_middle(
            prompt, backend.tokenizer, max_length, add_special_tokens=backend.truncation_special_tokens
        )
    return GenerationRequest(
        id=record["_id"],
        task=task.name,
        prompt=prompt,
        chat=task.chat,
        max_new_tokens=task.max_new_tokens,
        stop_at_newline=task.stop_at_newline,
    )


def _unused_follow_up(
    task: Task, record: Record, answers: Sequence[str], backend: Backend, max_length: int | None
) -> GenerationRequest:
    raise LongBenchError(f"{task.name}: this benchmark makes one call per sample")


# a task's records: (task, data, e, limit, shard, verify, top_k), as stream_records takes them
RecordStream = Callable[
    [Task, str, bool, int | None, tuple[int, int] | None, bool, int | None], Iterator[Record]
]


@dataclass(frozen=True)
class Benchmark:
    """How one benchmark plugs into the runner: its records, budgets, requests and output lines.

    ``load`` streams a task's records as :func:`stream_records` does (data, e, limit, shard, verify, top_k);
    ``data_sha256`` is recorded per task in run.json (and checked on resume). A sample takes ``calls``
    calls: after each but the last, ``follow_up`` builds the next request from the answers so far
    (LongBench v2's chain of thought asks a second question that quotes the first answer). ``line`` turns
    the record and all its answers into the line written to the prediction file; ``settings`` go into
    run.json.
    """

    load: RecordStream
    max_length: Callable[[Task, Sequence[str], int | None, int | None], tuple[int, str | None]]
    request: Callable[[Task, Record, Backend, int | None], GenerationRequest]
    line: Callable[[Record, Sequence[str]], dict[str, Any]]
    data_sha256: Callable[[Task, str, bool, bool], str | None]
    calls: int = 1
    follow_up: Callable[[Task, Record, Sequence[str], Backend, int | None], GenerationRequest] = (
        _unused_follow_up
    )
    settings: dict[str, Any] = field(default_factory=dict)  # recorded in (and checked against) run.json


def _v1_line(record: Record, answers: Sequence[str]) -> dict[str, Any]:
    return _prediction_line(record, answers[-1])


def _lowest_free_line(taken: set[int]) -> int:
    """The first screen line below the overall bar that no open bar uses."""
    return next(line for line in range(1, len(taken) + 2) if line not in taken)


class _Progress:
    """An overall bar (samples of all tasks) and, on a terminal, one bar per task while it has samples in
    flight, each with samples/s and generated tokens/s. Elsewhere (a log file) a plain line now and then."""

    def __init__(self, work: dict[str, tuple[int, int]], settled: int) -> None:
        """``work``: task -> (samples this run has to predict, how many of them it already has)."""
        from longbench.progress import progress_bar

        self._bar_of = progress_bar
        self._per_task = sys.stderr.isatty()  # separate task lines only where they redraw in place
        self.overall = progress_bar(
            total=sum(total - done for total, done in work.values()) + settled,
            initial=settled,
            desc="all tasks",
            unit="sample",
            position=0,
            dynamic_ncols=True,
        )
        self._work = {task: (total, done) for task, (total, done) in work.items() if total > done}
        self._left = {task: total - done for task, (total, done) in self._work.items()}
        self._bars: dict[str, Any] = {}
        self._lines: dict[str, int] = {}  # screen line of each open task bar
        self._tokens: dict[str, int] = {}
        self._started = time.perf_counter()

    def _bar(self, task: str) -> Any:
        if task not in self._bars:
            self._lines[task] = _lowest_free_line(set(self._lines.values()))
            total, done = self._work[task]
            self._bars[task] = self._bar_of(
                total=total,
                initial=done,
                desc=task,
                unit="sample",
                position=self._lines[task],
                leave=False,
                dynamic_ncols=True,
                disable=True if not self._per_task else None,
            )
            self._tokens[task] = 0
        return self._bars[task]

    def advance(self, task: str, tokens: int) -> None:
        bar = self._bar(task)
        self._tokens[task] += tokens
        bar.set_postfix_str(f"{self._tokens[task] / max(bar.format_dict['elapsed'], 1e-9):.1f} tok/s", False)
        bar.update(1)
        total_tokens = sum(self._tokens.values())
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        self.overall.set_postfix_str(f"{total_tokens / elapsed:.1f} tok/s", False)
        self.overall.update(1)
        self._left[task] -= 1
        if self._left[task] == 0:
            bar.close()
            del self._lines[task]

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self.overall.close()


def _check_compatible(path: Path, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Refuse to add predictions to a folder made with settings that would give different numbers."""
    where = f"{path}: the predictions here were made with a different"
    advice = _ADVICE
    for key in _MUST_MATCH:
        if key in old and old[key] != new.get(key):
            raise LongBenchError(f"{where} {key} ({old[key]!r}, now {new.get(key)!r}); {advice}")
    # settings the earlier run's backend described but did not yet list as output settings count as well
    previous = {**output_settings(old.get("backend_settings") or {}), **(old.get("output_settings") or {})}
    different = mismatch(previous, new["output_settings"])
    if different is not None:
        key, was, now = different
        raise LongBenchError(f"{where} {key} ({was!r}, now {now!r}); pass the same setting, or {advice}")
    for key in ("max_length", "max_new_tokens", "data_sha256"):
        for task, value in old.get(key, {}).items():
            if task in new[key] and new[key][task] != value:
                raise LongBenchError(f"{where} {key} for {task} ({value}, now {new[key][task]}); {advice}")


def _check_version(path: Path, old: dict[str, Any], new: dict[str, Any], allowed: bool) -> None:
    """Refuse to add to predictions another longbench version made, unless ``allowed``: a new version may
    build prompts, truncate or decode differently."""
    was = (old.get("versions") or {}).get("longbench")
    now = new["versions"].get("longbench")
    if was is not None and was != now and not allowed:
        raise LongBenchError(
            f"{path}: the predictions here were made by longbench {was}, this is {now}, which may build prompts "
            f"or decode differently; pass --allow-version-change to add to them anyway, or {_ADVICE}"
        )


def _version_history(old: dict[str, Any] | None, settings: dict[str, Any]) -> list[dict[str, Any]]:
    """The versions of earlier runs into this folder that differ from this run's, oldest first."""
    history = list((old or {}).get("earlier_versions") or [])
    was = (old or {}).get("versions")
    if was and was != settings["versions"] and was not in history:
        history.append(was)
    return history


def _read_run_file(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise InputError(path, "not a valid run.json; delete it or use another --out") from None
    return check_run_fields(path, old)


def _settings(
    backend: Backend,
    model_name: str,
    data: str,
    e: bool,
    shard: tuple[int, int] | None,
    batch_size: int,
    limit: int | None,
    verify: bool = True,
) -> dict[str, Any]:
    described = backend.describe()
    model = described.get("model")
    fingerprint = model_fingerprint(model)
    tokenizer = described.get("tokenizer")
    return {
        "model": model,
        "model_name": model_name,
        "model_id": None
        if fingerprint is not None
        else model,  # a hub or server id; a folder is fingerprinted
        "model_fingerprint": fingerprint,
        "tokenizer_fingerprint": model_fingerprint(tokenizer) if isinstance(tokenizer, str) else None,
        "output_settings": output_settings(described),
        "verify": verify,
        "backend": backend.name,
        "revision": described.get("revision"),
        "dtype": described.get("dtype"),
        "data": data,
        "e": e,
        "limit": limit,
        "shard": list(shard) if shard else None,
        "chat_template_sha256": _sha256(backend.chat_template()),
        "prompt_table_sha256": prompt_table_sha256(),
        "decoding": {"do_sample": False, "num_beams": 1, "batch_size": batch_size},
        "truncation": "middle" if backend.tokenizer is not None else None,
        "max_length": {},
        "max_new_tokens": {},
        "data_sha256": {},
        "stop_at_newline": [],
        "task_samples": {},
        "versions": library_versions(),
        "backend_settings": described,
    }


def _budgets(
    backend: Backend,
    names: Sequence[str],
    override: int | None,
    say: Callable[[str], None],
    resolve: Callable[[Task, Sequence[str], int | None, int | None], tuple[int, str | None]] | None = None,
) -> Callable[[Task], int | None]:
    """A function giving each task's prompt budget (None: no tokenizer, no truncation), announcing the
    first budget derived from the context window (the same rule then applies to every task)."""
    window = backend.context_window()
    announced: list[str] = []

    def budget(task: Task) -> int | None:
        if backend.tokenizer is None:
            return None
        length, notice = (resolve or _max_length)(task, names, override, window)
        if notice and not announced:
            announced.append(notice)
            say(f"notice: {notice}")
        return length

    return budget


def _dump_prompts(
    backend: Backend,
    tasks: list[Task],
    records: Callable[[Task], Iterator[Record]],
    budget: Callable[[Task], int | None],
    path: Path,
    make_request: Callable[[Task, Record, Backend, int | None], GenerationRequest] = build_request,
) -> int:
    """Write ``{"dataset", "_id", "prompt"}`` per sample: the exact text the model would see."""
    lines = []
    for task in tasks:
        length = budget(task)
        for record in records(task):
            request = make_request(task, record, backend, length)
            lines.append(
                json_line({"dataset": task.name, "_id": record["_id"], "prompt": backend.render(request)})
            )
    write_atomic(path, b"".join(lines).decode("utf-8"))
    return len(lines)


def predict(
    backend: Backend,
    tasks: list[Task],
    data: str,
    out_dir: Path,
    *,
    max_length: int | None,
    e: bool = False,
    limit: int | None = None,
    shard: tuple[int, int] | None = None,
    batch_size: int = 1,
    dump_prompts: Path | None = None,
    model_name: str | None = None,
    notify: Callable[[str], None] | None = None,
    verify: bool = True,
    top_k: int | None = None,
    benchmark: Benchmark | None = None,
    allow_version_change: bool = False,
) -> PredictSummary:
    """Predict ``tasks`` into ``<out_dir>/<model_name>/<task>.jsonl``, resuming what earlier runs wrote.

    ``batch_size`` is recorded in run.json (the backend was built with it). With ``dump_prompts`` the final
    model inputs are written to that file and nothing is generated. ``verify=False`` reads data files named
    like released ones without checking their checksums (the user's own files); it is recorded in run.json.
    With ``top_k``, ``data`` is a derived folder and each context is its first ``top_k`` retrieved chunks; the
    compression settings go into run.json and, without ``model_name``, into the folder name. ``benchmark``
    is LongBench v1 unless given (see :class:`Benchmark`). Predictions of another longbench version are only
    added to with ``allow_version_change`` (run.json then lists the earlier versions).
    """
    from longbench.compression.derived import compressed_model_name, compression_entry

    compression = compression_entry(data, top_k)
    bench = benchmark or V1
    say = notify or (lambda message: print(message, file=sys.stderr))
    described_model = str(backend.describe().get("model") or "")
    name = model_name or compressed_model_name(model_name_from(described_model), compression)
    folder = out_dir / name
    summary = PredictSummary(out_dir=folder, model_name=name)
    names = [n for n in dict.fromkeys([name, described_model]) if n]
    budget = _budgets(backend, names, max_length, say, bench.max_length)
    if shard:
        select_shard([], *shard)  # checks the shard numbers

    def shard_records(task: Task) -> Iterator[Record]:
        return bench.load(task, data, e, limit, shard, verify, top_k)

    if dump_prompts is not None:
        summary.dumped = _dump_prompts(backend, tasks, shard_records, budget, dump_prompts, bench.request)
        return summary

    try:
        with folder_lock(folder, shard).acquire(str(folder)):
            return _predict_locked(
                backend,
                tasks,
                data,
                summary,
                budget,
                say,
                e,
                shard,
                verify,
                batch_size,
                limit,
                top_k,
                compression,
                bench,
                allow_version_change,
            )
    except OSError as error:  # e.g. the output folder cannot be created or written (read-only, full, ...)
        where = error.filename or folder
        raise LongBenchError(f"{where}: {error.strerror or error}") from None


def _predict_locked(
    backend: Backend,
    tasks: list[Task],
    data: str,
    summary: PredictSummary,
    budget: Callable[[Task], int | None],
    say: Callable[[str], None],
    e: bool,
    shard: tuple[int, int] | None,
    verify: bool,
    batch_size: int,
    limit: int | None,
    top_k: int | None,
    compression: dict[str, Any] | None,
    bench: Benchmark,
    allow_version_change: bool = False,
) -> PredictSummary:
    """The run itself, while this process holds the output lock."""
    folder = summary.out_dir
    settings = _settings(backend, summary.model_name, data, e, shard, batch_size, limit, verify)
    settings["compression"] = compression
    run_path = output_file(folder, RUN_STEM, ".json", shard)
    old = _read_run_file(run_path)
    if backend.tokenizer is None:
        say("notice: the backend has no tokenizer, so prompts are sent untruncated")
    started = time.perf_counter()
    for task in tasks:
        # checks a released file's checksum (with verify) once; the passes below read it unchecked
        settings["data_sha256"][task.name] = bench.data_sha256(task, data, e, verify)
        settings["max_length"][task.name] = budget(task)
        settings["max_new_tokens"][task.name] = task.max_new_tokens
        if task.stop_at_newline:
            settings["stop_at_newline"].append(task.name)
    settings.update(bench.settings)  # after the data pass: a benchmark may record what it read
    settings["decoding"]["do_sample"] = bool(settings.get("temperature"))  # v2 samples at its temperature
    if old is not None:
        _check_compatible(run_path, old, settings)
        _check_version(run_path, old, settings, allow_version_change)
    _write_run_file(run_path, old, settings, complete=False)
    summary.errors_file = output_file(folder, ERRORS_STEM, ".jsonl", shard)
    errors = ErrorLog(summary.errors_file, retrying=[task.name for task in tasks])
    try:
        with contextlib.ExitStack() as files:
            writers = {
                task.name: files.enter_context(
                    PredictionWriter(output_file(folder, task.name, ".jsonl", shard))
                )
                for task in tasks
            }
            summary.tasks = {task.name: TaskOutcome() for task in tasks}
            records: dict[tuple[str, str], Record] = {}  # the records of the requests in flight

            def checked(task: Task) -> Iterator[Record]:
                return bench.load(task, data, e, limit, shard, False, top_k)

            requests: Iterable[GenerationRequest] = _pending_requests(
                backend, tasks, checked, settings, writers, records, bench.request
            )
            progress: _Progress | None = None

            def count_samples() -> _Progress:
                # every task's data is read through once (every line checked, the samples counted) right
                # after the first prediction: a bad file still fails within moments, not hours into the run,
                # and the first prediction does not wait for it
                def whole(task: Task) -> Iterator[Record]:
                    return bench.load(task, data, e, limit, None, False, top_k)

                _count_samples(tasks, whole, data, shard, writers, summary, settings)
                _write_run_file(run_path, old, settings, complete=False)
                counted = _Progress(
                    {t: (o.samples - o.skipped, o.written + o.failed) for t, o in summary.tasks.items()},
                    summary.skipped + summary.written + summary.failed,
                )
                files.callback(counted.close)
                return counted

            by_name = {task.name: task for task in tasks}
            answers: dict[tuple[str, str], list[str]] = {}  # the answers so far of samples taking more calls
            while True:  # one pass per call of a sample (v2's chain of thought takes two)
                queued: list[tuple[str, str]] = []  # samples with a call still to make, in result order
                # one call for every task, so engines and servers batch continuously across task boundaries
                for result in backend.generate(requests):
                    key = (result.request.task, result.request.id)
                    outcome = summary.tasks[key[0]]
                    outcome.generated_tokens += result.generated_tokens or 0
                    summary.generated_tokens += result.generated_tokens or 0
                    if result.ok and len(answers.get(key, ())) + 1 < bench.calls:
                        answers.setdefault(key, []).append(result.text or "")
                        queued.append(key)
                        if progress is None:
                            progress = count_samples()
                        continue
                    record = records.pop(key)
                    sample_answers = [*answers.pop(key, []), result.text or ""]
                    if result.ok:
                        writers[key[0]].write(bench.line(record, sample_answers))
                        outcome.written += 1
                    else:
                        errors.record(key[0], record["_id"], result.error or "unknown error")
                        outcome.failed += 1
                    if progress is None:
                        progress = count_samples()  # its bars start with this result counted
                    else:
                        progress.advance(key[0], result.generated_tokens or 0)
                if not queued:
                    break
                requests = _follow_ups(bench, backend, by_name, queued, records, answers, settings)
            if progress is None:
                count_samples()
    finally:
        errors.close()
        summary.seconds = time.perf_counter() - started
    _write_run_file(run_path, old, settings, complete=summary.failed == 0)
    return summary


def _count_samples(
    tasks: list[Task],
    whole: Callable[[Task], Iterator[Record]],
    data: str,
    shard: tuple[int, int] | None,
    writers: dict[str, PredictionWriter],
    summary: PredictSummary,
    settings: dict[str, Any],
) -> None:
    """Read each task's records through once (checking every line and that ids are unique), keeping only
    their ids: ``task_samples`` in run.json, and each task's samples in this shard and how many of them were
    written before this run."""
    for task in tasks:
        ids = scan_ids(whole(task), task, data)
        settings["task_samples"][task.name] = len(ids)
        in_shard = ids[shard[0] :: shard[1]] if shard else ids
        outcome = summary.tasks[task.name]
        outcome.samples = len(in_shard)
        done = sum(1 for sample_id in in_shard if sample_id in writers[task.name].done_ids)
        outcome.skipped = done - outcome.written  # what this run wrote is in the writer's ids as well


def _data_sha256(task: Task, data: str, e: bool, verify: bool) -> str:
    """The sha256 of the task's data file (the released checksum when it was verified as the released file)."""
    from longbench.loading import data_file_sha256

    return data_file_sha256(task.name, data, e, verify=verify)


def _pending_requests(
    backend: Backend,
    tasks: list[Task],
    shard_records: Callable[[Task], Iterator[Record]],
    settings: dict[str, Any],
    writers: dict[str, PredictionWriter],
    records: dict[tuple[str, str], Record],
    make_request: Callable[[Task, Record, Backend, int | None], GenerationRequest] = build_request,
) -> Iterator[GenerationRequest]:
    """The request of every sample not yet written, built only when the backend asks for it (samples already
    written are skipped without building their prompts); each request's record is kept in ``records`` until
    its result arrives."""
    for task in tasks:
        seen: set[str] = set()
        for record in shard_records(task):
            if record["_id"] in seen:
                raise InputError(f"{settings['data']} ({task.name})", f"duplicate _id {record['_id']!r}")
            seen.add(record["_id"])
            if record["_id"] in writers[task.name].done_ids:
                continue
            records[(task.name, record["_id"])] = record
            yield make_request(task, record, backend, settings["max_length"][task.name])


def _follow_ups(
    bench: Benchmark,
    backend: Backend,
    by_name: dict[str, Task],
    queued: list[tuple[str, str]],
    records: dict[tuple[str, str], Record],
    answers: dict[tuple[str, str], list[str]],
    settings: dict[str, Any],
) -> Iterator[GenerationRequest]:
    """The next call of each ``queued`` sample, built from its answers so far when the backend asks for it."""
    for key in queued:
        task = by_name[key[0]]
        yield bench.follow_up(task, records[key], answers[key], backend, settings["max_length"][task.name])


def _prediction_line(record: Record, text: str) -> dict[str, Any]:
    """The reference's prediction record, plus the sample id."""
    return {
        "pred": text,
        "answers": record["answers"],
        "all_classes": record["all_classes"],
        "length": record["length"],
        "_id": record["_id"],
    }


V1 = Benchmark(
    load=stream_records,
    max_length=_max_length,
    request=build_request,
    line=_v1_line,
    data_sha256=_data_sha256,
)


def _write_run_file(path: Path, old: dict[str, Any] | None, settings: dict[str, Any], complete: bool) -> None:
    """run.json = the earlier run's per-task entries updated with this run's, written atomically."""
    merged = dict(settings)
    for key in ("max_length", "max_new_tokens", "data_sha256", "task_samples"):
        merged[key] = {**(old or {}).get(key, {}), **settings[key]}
    merged["stop_at_newline"] = sorted(
        {*(old or {}).get("stop_at_newline", []), *settings["stop_at_newline"]}
    )
    merged["earlier_versions"] = _version_history(old, settings)
    merged["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    merged["complete"] = complete
    try:
        write_atomic(path, json.dumps(merged, ensure_ascii=False, indent=1) + "\n")
    except OSError as error:
        full = "disk full: " if error.errno == errno.ENOSPC else ""
        raise LongBenchError(
            f"{full}cannot write {path}: {error.strerror or error}; fix that and run the same command again"
        ) from None

"""The prediction run: samples in, one crash-safe prediction file per task out, with a ``run.json`` record.

The runner holds a benchmark's run half (a :class:`~longbench.benchmarks.base.RunSpec`) and a
:class:`~longbench.sources.Source`, and never knows which benchmark or source it holds. It streams every
task's samples (first ``limit``, then this shard's share): samples already in ``<out>/<model>/<task>.jsonl``
are skipped without building their prompts, and each other request (template filled, middle truncated to
the model's budget) is built only when the backend asks for the next one. Right after the first answer,
every task's data is read through once more, keeping only the ids, to check every line and count the
samples.

All requests go to the backend as one lazily consumed stream, so that engines and servers batch
continuously across task boundaries while memory and the time to the first prediction do not grow with the
number of samples. A sample that takes several calls (v2's chain of thought) has its next call put at the
head of that stream as soon as its previous answer arrives, and that answer is journaled to disk first, so
a re-run after any kill makes again only the calls that were in flight. Each prediction is appended to its
task's file, whole or not at all, as it arrives. Failures go to ``errors.jsonl`` and are retried by the next
run of the same command. One run at a time writes a folder's (shard's) files: a second one is refused.
``run.json`` records everything that decides the numbers, and a run that would append predictions made
differently (other weights, data or settings) is refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from typing import Any

from longbench.backends.base import Backend, GenerationRequest, GenerationResult
from longbench.benchmarks.base import Answer, Benchmark, RunSpec, call_seed
from longbench.errors import InputError, LongBenchError, SettingError
from longbench.fingerprints import library_versions, mismatch, model_fingerprint, output_settings
from longbench.run_files import (
    ERRORS_STEM,
    RUN_STEM,
    CallJournal,
    ErrorLog,
    PredictionWriter,
    check_run_fields,
    folder_lock,
    json_line,
    output_file,
    write_atomic,
)
from longbench.schema import Record
from longbench.sources import Source, open_source
from longbench.tasks import Task

__all__ = ["PredictSummary", "TaskOutcome", "library_versions", "model_name_from", "predict", "run_name"]

# run.json fields that must agree before predictions are appended to an existing folder (a benchmark adds its
# own: RunSpec.must_match)
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
    "seed",
    "thinking_budget",
    "chat_template_kwargs",
)
_ADVICE = "use another --out or --model-name, or delete the folder to start over"
_PER_TASK: tuple[str, ...] = (
    "max_length",
    "max_new_tokens",
    "data_sha256",
)  # run.json maps compared per task


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


@dataclass(frozen=True)
class CallSettings:
    """What the runner sets on every call, whatever the benchmark: ``seed`` (each call's own seed derived
    from it, the sample's ``_id`` and the call's number) and ``thinking_budget`` (tokens added to every
    call's answer budget)."""

    seed: int | None = None
    thinking_budget: int = 0

    def __post_init__(self) -> None:
        if self.thinking_budget < 0:
            raise LongBenchError(f"thinking_budget must be at least 0, got {self.thinking_budget}")

    def apply(self, request: GenerationRequest, call: int) -> GenerationRequest:
        seed = None if self.seed is None else call_seed(self.seed, request.id, call)
        budget = request.max_new_tokens + self.thinking_budget
        return dataclasses.replace(request, call=call, seed=seed, max_new_tokens=budget)


@dataclass
class _Sample:
    """A sample in flight: its task, its record and the answers of its calls so far."""

    task: Task
    record: Record
    answers: list[Answer]

    @property
    def key(self) -> tuple[str, str]:
        return self.task.name, self.record["_id"]


def model_name_from(model: str) -> str:
    """The folder name for ``model``: the basename of a path, the last part of a hub id or ``builtin:`` name."""
    name = model.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    if not name or name in (".", ".."):
        raise SettingError("cannot derive a model name from {model!r}; pass {model_name}", model=model)
    return name


def run_name(model: str, source: Source) -> str:
    """The default model folder name of a run: the model's name plus the source's suffix (a compressed run's
    ``-bm25-c500-top3``)."""
    return model_name_from(model) + source.folder_suffix()


def select_shard(records: list[Record], index: int, count: int) -> list[Record]:
    """Shard ``index`` of ``count`` (0-based): every ``count``-th record by position, starting at ``index``."""
    if count < 1 or not 0 <= index < count:
        raise LongBenchError(f"invalid shard {index}/{count}: need 0 <= I < N (shards are numbered from 0)")
    return records[index::count]


def load_records(
    task: Task, data: str, e: bool, limit: int | None, verify: bool = True, top_k: int | None = None
) -> list[Record]:
    """The first ``limit`` records of ``task`` from ``data`` (all when None); duplicate ids are an error."""
    records = list(islice(open_source(data, top_k=top_k, verify=verify).records(task.name, e), limit))
    scan_ids(iter(records), task, data)
    return records


def _shard_of(
    records: Iterator[Record], limit: int | None, shard: tuple[int, int] | None
) -> Iterator[Record]:
    """The first ``limit`` records, then this shard's share."""
    first = islice(records, limit)
    return islice(first, shard[0], None, shard[1]) if shard else first


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


def _sha256(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


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


def _check_compatible(path: Path, old: dict[str, Any], new: dict[str, Any], keys: Sequence[str]) -> None:
    """Refuse to add predictions to a folder made with settings that would give different numbers."""
    where = f"{path}: the predictions here were made with a different"
    for key in keys:
        if key in old and old[key] != new.get(key):
            raise LongBenchError(f"{where} {key} ({old[key]!r}, now {new.get(key)!r}); {_ADVICE}")
    # settings the earlier run's backend described but did not yet list as output settings count as well
    previous = {**output_settings(old.get("backend_settings") or {}), **(old.get("output_settings") or {})}
    different = mismatch(previous, new["output_settings"])
    if different is not None:
        key, was, now = different
        raise LongBenchError(f"{where} {key} ({was!r}, now {now!r}); pass the same setting, or {_ADVICE}")
    for key in _PER_TASK:
        for task, value in old.get(key, {}).items():
            if task in new[key] and new[key][task] != value:
                raise LongBenchError(f"{where} {key} for {task} ({value}, now {new[key][task]}); {_ADVICE}")


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


@dataclass(frozen=True)
class _Run:
    """One run's fixed parts: what it predicts, from where, how, and into which files."""

    spec: RunSpec
    source: Source
    backend: Backend
    tasks: list[Task]
    calls: CallSettings
    limit: int | None
    shard: tuple[int, int] | None
    batch_size: int
    allow_version_change: bool = False  # add to predictions another longbench version made

    def records(self, task: Task, *, shard: bool = True) -> Iterator[Record]:
        """The task's records (unchecked: the data pass checked the file), this shard's share by default."""
        return _shard_of(
            self.spec.records(task, self.source, False), self.limit, self.shard if shard else None
        )

    def request(self, sample: _Sample, budget: int | None) -> GenerationRequest:
        """The sample's next call, with the run's seed and thinking budget applied."""
        made = self.spec.request(sample.task, sample.record, sample.answers, self.backend, budget)
        return self.calls.apply(made, len(sample.answers))


def _settings(run: _Run, model_name: str) -> dict[str, Any]:
    """run.json before the data pass: the model, backend, data, decoding and call settings."""
    described = run.backend.describe()
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
        "verify": run.source.verify,
        "backend": run.backend.name,
        "revision": described.get("revision"),
        "dtype": described.get("dtype"),
        "benchmark_name": run.spec.name,
        "data": run.source.spec,
        "e": run.spec.e,
        "limit": run.limit,
        "shard": list(run.shard) if run.shard else None,
        "compression": run.source.compression(),
        "seed": run.calls.seed,
        "thinking_budget": run.calls.thinking_budget,
        "chat_template_kwargs": described.get("chat_template_kwargs"),
        "chat_template_sha256": _sha256(run.backend.chat_template()),
        "decoding": {"do_sample": False, "num_beams": 1, "batch_size": run.batch_size},
        "truncation": "middle" if run.backend.tokenizer is not None else None,
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
    spec: RunSpec,
    names: Sequence[str],
    override: int | None,
    say: Callable[[str], None],
    thinking_budget: int = 0,
) -> Callable[[Task], int | None]:
    """A function giving each task's prompt budget (None: no tokenizer, no truncation), announcing the
    first budget derived from the context window (the same rule then applies to every task)."""
    window = backend.context_window()
    announced: list[str] = []
    counted: list[int | None] = []

    def template_tokens() -> int | None:
        """The chat template's own tokens, counted once, and only for a benchmark that asks."""
        if not counted:
            counted.append(backend.chat_template_tokens())
        return counted[0]

    def budget(task: Task) -> int | None:
        if backend.tokenizer is None:
            return None
        length, notice = spec.budget(
            task, names, override, window, thinking_budget=thinking_budget, template_tokens=template_tokens
        )
        if notice and not announced:
            announced.append(notice)
            say(f"notice: {notice}")
        return length

    return budget


def _dump_prompts(run: _Run, budget: Callable[[Task], int | None], path: Path) -> int:
    """Write ``{"dataset", "_id", "prompt"}`` per sample: the exact text the model would see first."""
    lines = []
    for task in run.tasks:
        length = budget(task)
        for record in _shard_of(run.spec.records(task, run.source, run.source.verify), run.limit, run.shard):
            request = run.request(_Sample(task, record, []), length)
            lines.append(
                json_line({"dataset": task.name, "_id": record["_id"], "prompt": run.backend.render(request)})
            )
    write_atomic(path, b"".join(lines).decode("utf-8"))
    return len(lines)


def _run_spec(benchmark: Benchmark | RunSpec | None) -> RunSpec:
    """The run half of ``benchmark`` (a definition from :func:`longbench.benchmarks.get_benchmark`; None:
    LongBench v1)."""
    if benchmark is None:
        from longbench.benchmarks.v1_run import V1

        return V1
    return benchmark.runs if isinstance(benchmark, Benchmark) else benchmark


def predict(
    backend: Backend,
    tasks: list[Task] | None,
    data: str | Source,
    out_dir: Path,
    *,
    max_length: int | None,
    benchmark: Benchmark | RunSpec | None = None,
    limit: int | None = None,
    shard: tuple[int, int] | None = None,
    batch_size: int = 1,
    dump_prompts: Path | None = None,
    model_name: str | None = None,
    notify: Callable[[str], None] | None = None,
    verify: bool = True,
    top_k: int | None = None,
    seed: int | None = None,
    thinking_budget: int = 0,
    allow_version_change: bool = False,
) -> PredictSummary:
    """Predict ``tasks`` of ``benchmark`` (a definition or its run half, LongBench v1 when None; all its tasks for
    the source when None) into ``<out_dir>/<model_name>/<task>.jsonl``, resuming what earlier runs wrote.

    ``data`` is a source or its spec (:func:`longbench.sources.open_source`, with ``top_k`` and ``verify``).
    ``batch_size`` is recorded in run.json (the backend was built with it). With ``dump_prompts`` the final
    model inputs are written to that file and nothing is generated. ``seed`` gives every call its own seed;
    ``thinking_budget`` adds tokens to every call's answer budget.
    Predictions of another longbench version are only added to with ``allow_version_change`` (run.json then
    lists the earlier versions).
    """
    spec = _run_spec(benchmark)
    source = data if isinstance(data, Source) else open_source(data, top_k=top_k, verify=verify)
    say = notify or (lambda message: print(message, file=sys.stderr))
    described_model = str(backend.describe().get("model") or "")
    name = model_name or run_name(described_model, source)
    if shard:
        select_shard([], *shard)  # checks the shard numbers
    chosen = tasks if tasks is not None else spec.tasks(name, source, None, None)
    calls = CallSettings(seed, thinking_budget)
    run = _Run(spec, source, backend, chosen, calls, limit, shard, batch_size, allow_version_change)
    summary = PredictSummary(out_dir=out_dir / name, model_name=name)
    names = [n for n in dict.fromkeys([name, described_model]) if n]
    budget = _budgets(backend, spec, names, max_length, say, thinking_budget)
    if dump_prompts is not None:
        summary.dumped = _dump_prompts(run, budget, dump_prompts)
        return summary
    folder = summary.out_dir
    try:
        with folder_lock(folder, shard).acquire(str(folder)):
            return _predict_locked(run, summary, budget, say)
    except OSError as error:  # e.g. the output folder cannot be created or written (read-only, full, ...)
        where = error.filename or folder
        raise LongBenchError(f"{where}: {error.strerror or error}") from None


def _predict_locked(
    run: _Run, summary: PredictSummary, budget: Callable[[Task], int | None], say: Callable[[str], None]
) -> PredictSummary:
    """The run itself, while this process holds the output lock."""
    run_path = output_file(summary.out_dir, RUN_STEM, ".json", run.shard)
    old = _read_run_file(run_path)
    if run.backend.tokenizer is None:
        say("notice: the backend has no tokenizer, so prompts are sent untruncated")
    settings = _checked_settings(run, summary.model_name, budget, run_path, old)
    _write_run_file(run_path, old, settings, complete=False)
    started = time.perf_counter()
    try:
        _generate(run, summary, settings, lambda: _write_run_file(run_path, old, settings, complete=False))
    finally:
        summary.seconds = time.perf_counter() - started
    settings["backend_settings"] = run.backend.describe()  # as sent: a server may have refused some fields
    _write_run_file(run_path, old, settings, complete=summary.failed == 0)
    return summary


def _checked_settings(
    run: _Run,
    model_name: str,
    budget: Callable[[Task], int | None],
    run_path: Path,
    old: dict[str, Any] | None,
) -> dict[str, Any]:
    """run.json's settings after one pass over each task's data (checksums checked once), refused when they
    differ from the earlier run's in this folder."""
    settings = _settings(run, model_name)
    for task in run.tasks:
        settings["data_sha256"][task.name] = run.spec.data_sha256(task, run.source)
        settings["max_length"][task.name] = budget(task)
        settings["max_new_tokens"][task.name] = task.max_new_tokens
        if task.stop_at_newline:
            settings["stop_at_newline"].append(task.name)
    settings.update(run.spec.settings())  # after the data pass: a benchmark may record what it read
    settings["decoding"]["do_sample"] = bool(
        settings.get("temperature")
    )  # a benchmark's sampling temperature
    if old is not None:
        _check_compatible(run_path, old, settings, (*_MUST_MATCH, *run.spec.must_match))
        _check_version(run_path, old, settings, run.allow_version_change)
    return settings


class _CallStream:
    """The one request stream of a run: the next call of each sample whose previous answer has arrived
    (put first, as soon as it arrives), then the first call of each sample not yet written.

    Iterated by the backend, possibly from its own thread; ``follow`` is called from the result loop. When
    the stream ends with calls still in flight, their follow-ups are sent by iterating it again.
    """

    def __init__(self, fresh: Iterator[_Sample], build: Callable[[_Sample], GenerationRequest]) -> None:
        self._fresh = fresh
        self._build = build
        self._ready: deque[_Sample] = deque()

    def follow(self, sample: _Sample) -> None:
        self._ready.append(sample)

    @property
    def waiting(self) -> bool:
        return bool(self._ready)

    def __iter__(self) -> Iterator[GenerationRequest]:
        while True:
            if self._ready:
                yield self._build(self._ready.popleft())
                continue
            sample = next(self._fresh, None)
            if sample is None:
                return
            yield self._build(sample)


def _pending_samples(
    run: _Run,
    writers: dict[str, PredictionWriter],
    journals: dict[str, CallJournal],
    flight: dict[tuple[str, str], _Sample],
    data: str,
) -> Iterator[_Sample]:
    """Every sample not yet written, read lazily (samples already written are skipped without building their
    requests), with the answers journaled by an earlier run; each is kept in ``flight`` until it settles."""
    for task in run.tasks:
        seen: set[str] = set()
        for record in run.records(task):
            sample_id = record["_id"]
            if sample_id in seen:
                raise InputError(f"{data} ({task.name})", f"duplicate _id {sample_id!r}")
            seen.add(sample_id)
            if sample_id in writers[task.name].done_ids:
                continue
            journaled = journals[task.name].answers.get(sample_id, [])[: run.spec.calls - 1]
            sample = _Sample(task, record, [Answer.from_journal(answer) for answer in journaled])
            flight[sample.key] = sample
            yield sample


class _Outputs:
    """A run's open files: each task's prediction writer and call journal, and the errors file."""

    def __init__(self, run: _Run, folder: Path, files: contextlib.ExitStack) -> None:
        self.writers = {
            task.name: files.enter_context(
                PredictionWriter(output_file(folder, task.name, ".jsonl", run.shard))
            )
            for task in run.tasks
        }
        self.journals = {
            task.name: CallJournal(output_file(folder, f".{task.name}.calls", ".jsonl", run.shard))
            for task in run.tasks
        }
        for name, journal in self.journals.items():
            files.callback(lambda j=journal, n=name: j.close(self.writers[n].done_ids))
        self.errors_file = output_file(folder, ERRORS_STEM, ".jsonl", run.shard)
        self.errors = ErrorLog(self.errors_file, retrying=[task.name for task in run.tasks])
        files.callback(self.errors.close)


class _Counted:
    """Right after the first answer, every task's data is read through once (every line checked, the samples
    counted: a bad file still fails within moments, not hours into the run, and the first prediction does
    not wait for it), run.json is saved with the counts, and the progress bars start."""

    def __init__(
        self,
        run: _Run,
        writers: dict[str, PredictionWriter],
        summary: PredictSummary,
        settings: dict[str, Any],
        save: Callable[[], None],
    ) -> None:
        self._run, self._writers, self._summary = run, writers, summary
        self._settings, self._save = settings, save
        self._bars: _Progress | None = None

    def answered(self) -> None:
        """An answer came in (the first one counts the samples)."""
        self._start()

    def settled(self, task: str, tokens: int) -> None:
        """A sample was written or failed: it advances the bars (the first one is counted in their start)."""
        if self._bars is None:
            self._start()
        else:
            self._bars.advance(task, tokens)

    def finish(self) -> None:
        """The run ended normally: one with nothing to do still counts its samples."""
        self._start()

    def close(self) -> None:
        if self._bars is not None:
            self._bars.close()

    def _start(self) -> None:
        if self._bars is not None:
            return
        summary = self._summary
        _count_samples(self._run, self._writers, summary, self._settings)
        self._save()
        self._bars = _Progress(_work(summary), summary.skipped + summary.written + summary.failed)


def _generate(run: _Run, summary: PredictSummary, settings: dict[str, Any], save: Callable[[], None]) -> None:
    """Send every pending call through the backend and settle each sample as its last answer arrives."""
    with contextlib.ExitStack() as files:
        outputs = _Outputs(run, summary.out_dir, files)
        summary.errors_file = outputs.errors_file
        summary.tasks = {task.name: TaskOutcome() for task in run.tasks}
        counted = _Counted(run, outputs.writers, summary, settings, save)
        files.callback(counted.close)
        flight: dict[tuple[str, str], _Sample] = {}
        budgets = {task.name: settings["max_length"][task.name] for task in run.tasks}
        pending = _pending_samples(run, outputs.writers, outputs.journals, flight, run.source.spec)
        stream = _CallStream(pending, lambda sample: run.request(sample, budgets[sample.task.name]))
        while True:  # again only for follow-ups whose earlier answer came in as the stream ended
            for result in run.backend.generate(stream):
                sample = flight[(result.request.task, result.request.id)]
                if _settle(run, sample, result, outputs, stream, summary):
                    del flight[sample.key]
                    counted.settled(sample.task.name, result.generated_tokens or 0)
                else:
                    counted.answered()
            if not stream.waiting:
                break
        counted.finish()


def _work(summary: PredictSummary) -> dict[str, tuple[int, int]]:
    """Task -> (samples this run has to predict, how many of them it already has)."""
    return {t: (o.samples - o.skipped, o.written + o.failed) for t, o in summary.tasks.items()}


def _settle(
    run: _Run,
    sample: _Sample,
    result: GenerationResult,
    outputs: _Outputs,
    stream: _CallStream,
    summary: PredictSummary,
) -> bool:
    """Take one result: journal an answer that needs a follow-up and queue that call, or write the sample's
    line (or its failure). True when the sample is settled."""
    task = sample.task.name
    outcome = summary.tasks[task]
    outcome.generated_tokens += result.generated_tokens or 0
    summary.generated_tokens += result.generated_tokens or 0
    if not result.ok:
        outputs.errors.record(task, sample.record["_id"], result.error or "unknown error")
        outcome.failed += 1
        return True
    answer = Answer.of(result)
    sample.answers.append(answer)
    if len(sample.answers) < run.spec.calls:
        outputs.journals[task].write(
            sample.record["_id"], len(sample.answers) - 1, dataclasses.asdict(answer)
        )
        stream.follow(sample)
        return False
    outputs.writers[task].write(run.spec.line(sample.record, sample.answers))
    outcome.written += 1
    return True


def _count_samples(
    run: _Run, writers: dict[str, PredictionWriter], summary: PredictSummary, settings: dict[str, Any]
) -> None:
    """Read each task's records through once (checking every line and that ids are unique), keeping only
    their ids: ``task_samples`` in run.json, and each task's samples in this shard and how many of them were
    written before this run."""
    for task in run.tasks:
        ids = scan_ids(run.records(task, shard=False), task, run.source.spec)
        settings["task_samples"][task.name] = len(ids)
        in_shard = ids[run.shard[0] :: run.shard[1]] if run.shard else ids
        outcome = summary.tasks[task.name]
        outcome.samples = len(in_shard)
        done = sum(1 for sample_id in in_shard if sample_id in writers[task.name].done_ids)
        outcome.skipped = done - outcome.written  # what this run wrote is in the writer's ids as well


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

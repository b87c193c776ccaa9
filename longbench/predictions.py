"""Reading prediction folders: validation line by line, shards merged by id, missing samples counted.

A prediction folder is ``<dir>/<task>.jsonl`` in the reference format, one line per sample:
``{"pred", "answers", "all_classes", "length"}`` plus an optional ``"_id"``. Folders with the same name
(``run1/llama``, ``run2/llama``) are shards of one model and are merged by ``_id``.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longbench.errors import InputError, LongBenchError
from longbench.health import line_health
from longbench.jsonl import parse_json_line
from longbench.metrics.text import gold_problem
from longbench.run_files import ERRORS_STEM, RUN_STEM, check_run_fields, is_whole_line, unsharded_stem
from longbench.seeds import split_by_seed
from longbench.tasks import all_tasks, get_task


@dataclass(frozen=True)
class Prediction:
    """One line of a prediction file."""

    pred: str
    answers: list[str]
    all_classes: list[str] | None
    length: int | None
    id: str | None
    path: Path
    line: int  # 1-based line in ``path``
    index: int  # 0-based position among the records of ``path``
    health: tuple[str, ...] = ()  # output problems read from the line (see longbench.health)


@dataclass
class ModelPredictions:
    """All predictions of one model (possibly merged from several shard folders), by task."""

    name: str
    dirs: list[Path]
    tasks: dict[str, list[Prediction]]
    expected: dict[str, int]  # samples each task should have
    warnings: list[str] = field(default_factory=list)

    planned: list[str] = field(default_factory=list)  # tasks with a file or declared in run.json
    benchmark: dict[str, int] = field(default_factory=dict)  # samples each task has in the benchmark
    unverified: bool = False  # a run.json says the data files were used without checking their sha256
    sample_set: bool = False  # a run.json says the predictions come from the bundled sample set

    def missing(self, task: str) -> int:
        """How many samples of ``task`` that the run planned have no prediction (0 when the run finished)."""
        return max(self.expected[task] - len(self.tasks.get(task, [])), 0)

    def short(self, task: str) -> int:
        """How many of the benchmark's samples of ``task`` were not scored (0 when the task is complete):
        measured against the benchmark, so ``--limit``, the sample set and smaller derived data count."""
        expected = self.benchmark.get(task, self.expected[task])
        return max(expected - len(self.tasks.get(task, [])), 0)

    def missing_by_task(self) -> dict[str, int]:
        """Task -> samples without a prediction, for every planned task that is not complete."""
        return {task: self.missing(task) for task in self.planned if self.missing(task)}


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def parse_prediction(obj: Any, path: Path, line: int, index: int, need_length: bool) -> Prediction:
    """Validate one decoded JSON line; raise :class:`InputError` naming ``path`` and ``line``."""
    if not isinstance(obj, dict):
        raise InputError(path, f"expected a JSON object, got {type(obj).__name__}", line)
    for key in ("pred", "answers", "all_classes"):
        if key not in obj:
            raise InputError(path, f"missing field {key!r}", line)
    if not isinstance(obj["pred"], str):
        raise InputError(path, f"field 'pred' must be a string, got {type(obj['pred']).__name__}", line)
    if not _is_str_list(obj["answers"]) or not obj["answers"]:
        raise InputError(path, "field 'answers' must be a non-empty list of strings", line)
    if obj["all_classes"] is not None and not _is_str_list(obj["all_classes"]):
        raise InputError(path, "field 'all_classes' must be null or a list of strings", line)
    length = obj.get("length")
    if need_length and length is None:
        raise InputError(path, "missing field 'length' (needed to bucket LongBench-E scores)", line)
    if length is not None and (not isinstance(length, int) or isinstance(length, bool)):
        raise InputError(path, f"field 'length' must be an integer, got {length!r:.40}", line)
    sample_id = obj.get("_id")
    if sample_id is not None and (not isinstance(sample_id, str) or not sample_id):
        raise InputError(path, "field '_id' must be a non-empty string", line)
    health = line_health(obj, obj["pred"])
    return Prediction(
        obj["pred"], obj["answers"], obj["all_classes"], length, sample_id, path, line, index, health
    )


def read_prediction_file(
    path: Path, task: str, need_length: bool = False, warnings: list[str] | None = None
) -> list[Prediction]:
    """All records of ``task``'s prediction file, in file order. Blank lines are skipped; a torn last line
    (no newline, not a whole JSON object: a crash mid-write) is left out with a warning, as predict cuts it."""
    metric = get_task(task).metric
    records: list[Prediction] = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            if not raw.endswith(b"\n") and not is_whole_line(raw):
                (warnings if warnings is not None else []).append(
                    f"{path}:{number}: torn last line (a run was stopped mid-write) left out; scored as far as "
                    "the file goes"
                )
                break
            obj = parse_json_line(raw, path, number, first=number == 1)
            record = parse_prediction(obj, path, number, len(records), need_length)
            problem = gold_problem(metric, record.answers, record.all_classes)
            if problem is not None:
                raise InputError(path, problem, number)
            records.append(record)
    return records


def _task_of(path: Path, e: bool) -> str | None:
    """The task a prediction file holds: ``<task>.jsonl``, ``<task>_e.jsonl`` (with ``e``) or a shard's
    ``<task>.shard-I-of-N.jsonl``; None for the runner's own files and unknown names."""
    stem = unsharded_stem(path)
    if stem == ERRORS_STEM:
        return None
    if e and stem.endswith("_e"):
        stem = stem[:-2]  # the reference writes pred_e/<model>/<task>.jsonl, but accept <task>_e.jsonl too
    return stem


_KINDS = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket"}


def _check_regular(path: Path) -> None:
    """Refuse anything but a regular file (a FIFO would block the read forever; a loop cannot be opened)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        raise InputError(path, f"cannot read: {error.strerror}") from None
    if not stat.S_ISREG(mode):
        kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise InputError(path, f"named like a prediction file but is {kind}")


def _task_files(directory: Path, e: bool, warnings: list[str]) -> dict[str, list[Path]]:
    """Task -> its prediction files in ``directory`` (one, or one per shard that ran there)."""
    if not directory.is_dir():
        raise LongBenchError(f"{directory}: not a directory of predictions")
    known = {task.name for task in all_tasks(e)}
    found: dict[str, list[Path]] = {}
    for path in sorted(directory.glob("*.jsonl")):
        task = _task_of(path, e)
        if task is None:
            continue
        if task not in known:
            kind = "LongBench-E" if e else "LongBench"
            warnings.append(f"{path}: not a {kind} task file name; left out")
            continue
        _check_regular(path)
        found.setdefault(task, []).append(path)
    if not found:
        raise LongBenchError(f"{directory}: no prediction files (<task>.jsonl) found")
    return found


def _run_records(dirs: Sequence[Path]) -> list[tuple[Path, dict[str, Any]]]:
    """Every ``run.json`` (or a shard's ``run.shard-I-of-N.json``) in ``dirs``, parsed."""
    records = []
    for directory in dirs:
        for run_file in sorted(directory.glob("run*.json")):
            if unsharded_stem(run_file) != RUN_STEM:
                continue
            _check_regular(run_file)
            try:
                record = json.loads(run_file.read_text(encoding="utf-8"))
            except (ValueError, RecursionError, UnicodeDecodeError):
                record = None
            if not isinstance(record, dict):
                raise InputError(run_file, "not a valid run.json")
            records.append((run_file, check_run_fields(run_file, record)))
    return records


def benchmark_counts(e: bool) -> dict[str, int]:
    """Samples per task in the benchmark itself (the task table's released counts)."""
    return {task.name: (task.e_samples if e else task.samples) or 0 for task in all_tasks(e)}


def _expected_counts(runs: list[tuple[Path, dict[str, Any]]], e: bool) -> dict[str, int]:
    """Samples per task that the runs planned: what their ``run.json`` files declare, else the benchmark's."""
    expected = benchmark_counts(e)
    for run_file, record in runs:
        try:
            declared = {
                task: int(n) for task, n in record.get("task_samples", {}).items() if task in expected
            }
        except (TypeError, ValueError):
            raise InputError(run_file, "not a valid run.json (task_samples)") from None
        expected.update(declared)
    return expected


def _set_name(e: bool) -> str:
    return "LongBench-E" if e else "LongBench (v1)"


def _check_subset(
    runs: list[tuple[Path, dict[str, Any]]], tasks: dict[str, list[Prediction]], e: bool
) -> None:
    """Refuse v1 predictions scored as LongBench-E and the reverse: from ``run.json`` when there is one,
    else when every task whose v1 and E sizes differ holds exactly the other set's number of samples."""
    flag = "drop --e" if e else "add --e"
    for run_file, record in runs:
        if "e" in record and bool(record["e"]) != e:
            raise InputError(
                run_file,
                f"these predictions were made for {_set_name(not e)}, scored here as {_set_name(e)}: {flag}",
            )
    if runs:
        return
    telling = [task for task in all_tasks(True) if tasks.get(task.name) and task.samples != task.e_samples]
    other = (lambda t: t.samples) if e else (lambda t: t.e_samples)
    if telling and all(len(tasks[t.name]) == other(t) for t in telling):
        first = telling[0]
        raise InputError(
            tasks[first.name][0].path,
            f"{len(tasks[first.name])} samples: the size of {_set_name(not e)}'s {first.name}, not"
            f" {_set_name(e)}'s {first.e_samples if e else first.samples}"
            f" (so in every task with a file): {flag}",
        )


def _merge_by_id(task: str, records: list[Prediction], warnings: list[str]) -> list[Prediction]:
    """One record per ``_id``, in ``_id`` order; identical duplicates dropped, disagreeing ones refused."""
    merged: dict[str, Prediction] = {}
    for record in records:
        assert record.id is not None
        previous = merged.setdefault(record.id, record)
        if previous is not record and (previous.pred, previous.answers) != (record.pred, record.answers):
            raise InputError(
                record.path,
                f"{task} sample {record.id!r} disagrees with {previous.path}:{previous.line}",
                record.line,
            )
    if len(merged) < len(records):
        warnings.append(f"{task}: {len(records) - len(merged)} duplicate record(s) by '_id' ignored")
    return [merged[key] for key in sorted(merged)]


def _combine(task: str, parts: list[list[Prediction]], warnings: list[str]) -> list[Prediction]:
    """One task's records from one folder or several shard folders, in scoring order.

    Records with ``_id`` are merged and put in ``_id`` order, so a score does not depend on the order in which
    a run finished its samples or on how it was sharded. The reference's own files have no ``_id``: they keep
    their file order, which is the order its ``eval.py`` sums in.
    """
    records = [record for part in parts for record in part]
    if all(record.id is not None for record in records):
        return _merge_by_id(task, records, warnings)
    if len(parts) > 1:
        first = next(record for record in records if record.id is None)
        raise InputError(
            first.path, "no '_id': shards can only be merged when every record has one", first.line
        )
    return records


def _unverified(runs: list[tuple[Path, dict[str, Any]]]) -> bool:
    return any(record.get("verify") is False for _, record in runs)


def read_model(
    name: str, dirs: Sequence[Path], e: bool = False, only: Sequence[str] | None = None
) -> ModelPredictions:
    """Read one model's predictions from one folder, or merge shard folders that share its name; ``only``:
    just those tasks (the others' files are left unread)."""
    warnings: list[str] = []
    per_dir = [_task_files(directory, e, warnings) for directory in dirs]
    tasks: dict[str, list[Prediction]] = {}
    planned: list[str] = []
    for task in (t.name for t in all_tasks(e) if only is None or t.name in only):
        parts = [
            read_prediction_file(path, task, need_length=e, warnings=warnings)
            for files in per_dir
            for path in files.get(task, [])
        ]
        if not parts:
            continue
        records = _combine(task, parts, warnings)
        if records:  # an interrupted run leaves empty files: nothing to score there, all missing
            tasks[task] = records
        planned.append(task)
    runs = _run_records(dirs)
    _check_subset(runs, tasks, e)
    expected = _expected_counts(runs, e)
    declared = {task for _, record in runs for task in record.get("task_samples", {}) if task in expected}
    if only is not None:
        declared &= set(only)
    planned += sorted(declared - set(planned))
    unverified = _unverified(runs)
    sample_set = any(record.get("data") == "sample" for _, record in runs)
    model = ModelPredictions(
        name, list(dirs), tasks, expected, warnings, planned, benchmark_counts(e), unverified, sample_set
    )
    if not tasks:
        chosen = f" for tasks {', '.join(only)}" if only is not None else ""
        raise LongBenchError(
            f"{name}: no predictions yet{chosen} in {', '.join(map(str, dirs))} (all task files empty)"
        )
    if unverified:
        warnings.append(
            f"{name}: data used without checking its sha256 (run.json verify: false); results marked UNVERIFIED"
        )
    for task in planned:
        if task not in tasks and model.missing(task):
            warnings.append(f"{name}/{task}: all {model.expected[task]} samples missing (no predictions yet)")
    for task, records in tasks.items():
        if model.missing(task):
            warnings.append(f"{name}/{task}: {model.missing(task)} of {model.expected[task]} samples missing")
        elif len(records) > model.expected[task]:
            warnings.append(
                f"{name}/{task}: {len(records)} records for {model.expected[task]} samples"
                " (a re-run of the reference appends duplicates)"
            )
    return model


def _run_seed(directory: Path) -> Any:
    """The ``seed`` a folder's run.json records (None when absent)."""
    seeds = {json.dumps(record.get("seed")) for _, record in _run_records([directory])}
    return json.loads(seeds.pop()) if len(seeds) == 1 else None


def group_by_model(dirs: Iterable[Path]) -> dict[str, list[Path]]:
    """Prediction folders grouped by model name (the folder's own name), in first-seen order; folders of one
    name whose run.json files record different seeds are separate runs, ``<model>@seed<S>`` each."""
    groups = _group_by_name(dirs)
    split: dict[str, list[Path]] = {}
    for name, members in groups.items():
        split.update(split_by_seed(name, members, _run_seed))
    return split


def _group_by_name(dirs: Iterable[Path]) -> dict[str, list[Path]]:
    groups: dict[str, list[Path]] = {}
    for directory in dirs:
        path = Path(directory)
        try:
            os.stat(path)  # a symlink loop fails here, not as a RuntimeError from resolve()
        except OSError as error:
            raise LongBenchError(f"{path}: not a directory of predictions ({error.strerror})") from None
        name = path.resolve().name
        if path.resolve() in (p.resolve() for p in groups.get(name, [])):
            continue
        groups.setdefault(name, []).append(path)
    return groups

"""LongBench v2 scoring as the reference ``result.py``: answer extraction, buckets, rounding, the TSV row.

One result file is one row. A record's score is its stored ``judge`` when present (the reference trusts it),
else the answer extracted from ``response`` by the official rule compared with ``answer``. Unlike the
reference, a one-line file, blank lines and empty buckets give a result instead of a crash; a malformed line
is one error naming the file and line, and a torn last line (a crash mid-write) is left out with a warning.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from longbench.errors import InputError
from longbench.health import line_health
from longbench.jsonl import parse_json_line
from longbench.metrics.v2_answer import extract_answer
from longbench.run_files import is_whole_line

COLUMNS: tuple[str, ...] = ("Overall", "Easy", "Hard", "Short", "Medium", "Long")
DOMAINS: tuple[str, ...] = (
    "Single-Document QA",
    "Multi-Document QA",
    "Long In-context Learning",
    "Long-dialogue History Understanding",
    "Code Repository Understanding",
    "Long Structured Data Understanding",
)
# The benchmark's records per column (SPEC-v2 section 1): completeness is measured against these.
EXPECTED: dict[str, int] = {
    "Overall": 503,
    "Easy": 192,
    "Hard": 311,
    "Short": 180,
    "Medium": 215,
    "Long": 108,
}


@dataclass(frozen=True)
class ScoredSample:
    """One record of a result file as scored: the prediction, its judgement and its buckets."""

    sample_id: str
    pred: str | None
    judge: bool
    difficulty: str
    length: str
    domain: str
    rule_disagrees: bool  # a stored judge that the extraction rule would not give
    health: tuple[str, ...] = ()  # what went wrong in the output (see longbench.health), from the line


def _field(record: dict[str, Any], key: str, path: Path, line: int, kinds: tuple[type, ...]) -> Any:
    if key not in record:
        raise InputError(path, f"record has no {key!r}", line)
    value = record[key]
    if not isinstance(value, kinds):
        raise InputError(path, f"{key!r} is {type(value).__name__}, expected {kinds[0].__name__}", line)
    return value


def score_record(record: Any, path: Path, line: int) -> ScoredSample:
    """Score one result record as ``result.py`` does (stored ``judge`` trusted, else the rule applied)."""
    sample = _judged(record, path, line)
    response = record.get("response")
    health = line_health(record, response if isinstance(response, str) else "", True, sample.pred is not None)
    return replace(sample, health=health) if health else sample


def _judged(record: Any, path: Path, line: int) -> ScoredSample:
    if not isinstance(record, dict):
        raise InputError(path, f"expected a JSON object, got {type(record).__name__}", line)
    difficulty = _field(record, "difficulty", path, line, (str,))
    length = _field(record, "length", path, line, (str,))
    domain = record.get("domain") if isinstance(record.get("domain"), str) else ""
    sample_id = record.get("_id") if isinstance(record.get("_id"), str) else ""
    response = record.get("response")
    ruled = extract_answer(response) if isinstance(response, str) else None
    if "judge" in record:
        judge = _field(record, "judge", path, line, (bool,))
        pred = record.get("pred") if "pred" in record else ruled
        if pred is not None and not isinstance(pred, str):
            raise InputError(path, f"'pred' is {type(pred).__name__}, expected a letter or null", line)
        answer = record.get("answer")
        disagrees = isinstance(response, str) and (ruled != pred or (ruled == answer) != judge)
        return ScoredSample(sample_id, pred, judge, difficulty, length, domain, disagrees)
    if not isinstance(response, str):
        raise InputError(path, "record has neither 'judge' nor a string 'response'", line)
    answer = _field(record, "answer", path, line, (str,))
    return ScoredSample(sample_id, ruled, ruled == answer, difficulty, length, domain, False)


def _numbered_records(path: Path, warnings: list[str]) -> list[tuple[int, Any]]:
    """(line, record) pairs of a result file: a whole JSON document (an array, or one object) first, as the
    reference tries it, else JSON lines with blank lines skipped. A torn last line (no newline, not a whole
    JSON object: a crash mid-write) is left out with a warning, as predict cuts it and as v1's eval does."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise InputError(path, f"cannot read: {error.strerror}") from None
    try:
        whole = json.loads(raw.decode("utf-8").removeprefix("\ufeff"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        whole = None
    else:
        if isinstance(whole, list):
            return [(n, record) for n, record in enumerate(whole, 1)]
        return [(1, whole)]
    lines = raw.split(b"\n")
    if lines[-1].strip() and not is_whole_line(lines[-1]):
        warnings.append(f"warning: {path}:{len(lines)}: a torn last line (a crash mid-write) is left out")
        lines = lines[:-1]
    numbered = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            numbered.append((number, parse_json_line(line, path, number, first=number == 1)))
    return numbered


def _drop_duplicates(
    samples: list[tuple[Path, int, ScoredSample]], warnings: list[str]
) -> list[ScoredSample]:
    """Identical duplicate ``_id``s dropped with a warning (within a file or across shard files); disagreeing
    ones are an error naming the file and line."""
    seen: dict[str, tuple[Path, int, ScoredSample]] = {}
    kept: list[ScoredSample] = []
    dropped: dict[Path, int] = {}
    for path, line, sample in samples:
        if sample.sample_id and sample.sample_id in seen:
            first_path, first_line, first = seen[sample.sample_id]
            if first != sample:
                where = "" if first_path == path else f" (first in {first_path}:{first_line})"
                raise InputError(
                    path, f"_id {sample.sample_id} appears twice with different results{where}", line
                )
            dropped[path] = dropped.get(path, 0) + 1
            continue
        seen[sample.sample_id] = (path, line, sample)
        kept.append(sample)
    for path, count in dropped.items():
        warnings.append(f"warning: {path}: {count} identical duplicate records dropped")
    return kept


_SHARD = re.compile(r"\.shard-(\d+)-of-(\d+)$")


def row_name(path: Path) -> str:
    """The row name ``result.py`` gives a file: its name minus the last extension (``a.b.jsonl`` -> ``a.b``);
    a shard written by ``predict --shard I/N`` (``m.shard-0-of-2.jsonl``) is a part of row ``m``."""
    name = path.name
    stem = name.rsplit(".", 1)[0] if "." in name else ""
    return _SHARD.sub("", stem)


@dataclass
class V2Row:
    """One result file scored: its samples and the reference's six values (None for an empty bucket)."""

    name: str
    path: Path  # the first file of the row
    samples: list[ScoredSample]
    compensated: bool
    warnings: list[str] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)  # every file of the row (shards merged by _id)

    @property
    def files(self) -> list[Path]:
        return self.paths or [self.path]

    def _acc(self, sample: ScoredSample) -> float:
        if self.compensated and sample.pred is None:
            return 0.25
        return int(sample.judge)

    def _percent(self, chosen: Iterable[ScoredSample]) -> float | None:
        values = [self._acc(s) for s in chosen]
        return round(100 * sum(values) / len(values), 1) if values else None

    def values(self) -> dict[str, float | None]:
        """Overall, easy, hard, short, medium, long, each ``round(100*sum/count, 1)`` as the reference."""
        s = self.samples
        return {
            "Overall": self._percent(s),
            "Easy": self._percent(x for x in s if x.difficulty == "easy"),
            "Hard": self._percent(x for x in s if x.difficulty != "easy"),
            "Short": self._percent(x for x in s if x.length == "short"),
            "Medium": self._percent(x for x in s if x.length == "medium"),
            "Long": self._percent(x for x in s if x.length not in ("short", "medium")),
        }

    def domain_values(self) -> dict[str, float | None]:
        """The same percentage per domain (the six known domains first, then any other, in order seen)."""
        names = list(DOMAINS) + sorted({s.domain for s in self.samples} - set(DOMAINS))
        return {d: self._percent(x for x in self.samples if x.domain == d) for d in names}

    def ordered(self) -> list[ScoredSample]:
        """The samples in ``_id`` order: what the bootstrap draws from, so that a sharded run and the same
        run unsharded give the same intervals."""
        return sorted(self.samples, key=lambda sample: sample.sample_id)

    def accuracies(self) -> list[float]:
        """Each sample's accuracy (1, 0, or 0.25 for no answer when compensated), in :meth:`ordered` order."""
        return [float(self._acc(s)) for s in self.ordered()]

    def subsets(self) -> dict[str, list[bool]]:
        """Every quantity of the tables (the six columns, then the domains) as a mask over :meth:`ordered`."""
        ordered = self.ordered()
        masks = {
            "Overall": [True] * len(ordered),
            "Easy": [s.difficulty == "easy" for s in ordered],
            "Hard": [s.difficulty != "easy" for s in ordered],
            "Short": [s.length == "short" for s in ordered],
            "Medium": [s.length == "medium" for s in ordered],
            "Long": [s.length not in ("short", "medium") for s in ordered],
        }
        for domain in self.domain_values():
            masks[domain] = [s.domain == domain for s in ordered]
        return masks

    @cached_property
    def bootstrap(self) -> dict[str, Any]:
        """Quantity -> its seeded bootstrap resamples (one draw over all samples, every quantity from it)."""
        from longbench.stats import subset_resamples

        return subset_resamples(self.accuracies(), self.subsets())

    def partial(self) -> dict[str, dict[str, int]]:
        """Columns scored on fewer records than the benchmark has: column -> {"samples", "expected"}."""
        counts = {c: sum(self.subsets()[c]) for c in COLUMNS}
        return {c: {"samples": counts[c], "expected": n} for c, n in EXPECTED.items() if counts[c] < n}

    @property
    def disagreements(self) -> int:
        """Stored judges (or preds) that contradict the extraction rule applied to the stored response."""
        return sum(s.rule_disagrees for s in self.samples)


def score_file(path: Path, compensated: bool = False) -> V2Row:
    """Score one result file as one row."""
    return score_row(row_name(path), [path], compensated)


def score_row(name: str, paths: Sequence[Path], compensated: bool = False) -> V2Row:
    """Score one row from its file, or from the shard files ``predict --shard`` wrote (merged by ``_id``, in
    ``_id`` order, so that the row does not depend on how the run was sharded)."""
    warnings: list[str] = []
    numbered = [
        (path, line, score_record(record, path, line))
        for path in paths
        for line, record in _numbered_records(path, warnings)
    ]
    samples = _drop_duplicates(numbered, warnings)
    if len(paths) > 1:
        samples.sort(key=lambda sample: sample.sample_id)
    return V2Row(name, paths[0], samples, compensated, warnings, list(paths))


def _bookkeeping(path: Path) -> bool:
    """Hidden files and the runner's own ``run.json`` / ``errors.jsonl`` (sharded too) are not result files."""
    from longbench.run_files import ERRORS_STEM, RUN_STEM, unsharded_stem

    return path.name.startswith(".") or unsharded_stem(path) in (RUN_STEM, ERRORS_STEM)


def result_files(paths: Sequence[Path]) -> list[Path]:
    """Each argument is a result file, or a folder whose every visible regular file is one (sorted by name)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.is_file() and not _bookkeeping(p))
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(path, "no such file or folder")
    if not files:
        raise InputError(paths[0] if paths else Path("."), "no result files")
    return files


def group_rows(files: Sequence[Path]) -> dict[str, list[Path]]:
    """Row name -> its files, in first-seen order (shard files of one run together; files of one name whose
    folders' run.json record different seeds are separate runs, ``<name>@seed<S>`` each)."""
    from longbench.seeds import split_by_seed
    from longbench.signature import read_run_json

    groups: dict[str, list[Path]] = {}
    for path in files:
        groups.setdefault(row_name(path), []).append(path)
    split: dict[str, list[Path]] = {}
    for name, members in groups.items():
        split.update(
            split_by_seed(name, members, lambda path: (read_run_json(path.parent) or {}).get("seed"))
        )
    return split


def _folder_seed(path: Path) -> Any:
    """The ``seed`` in the run.json of a folder (or of a result file's folder)."""
    from longbench.signature import read_run_json

    return (read_run_json(path if path.is_dir() else path.parent) or {}).get("seed")


def group_runs(paths: Sequence[Path]) -> dict[str, list[Path]]:
    """Folders (or result files) grouped into runs: by folder name (a result file: by its row name), runs
    whose run.json record different seeds apart (``<name>@seed<S>``), in first-seen order."""
    from longbench.seeds import split_by_seed

    groups: dict[str, list[Path]] = {}
    for path in paths:
        groups.setdefault(path.name if path.is_dir() else row_name(path), []).append(path)
    split: dict[str, list[Path]] = {}
    for name, members in groups.items():
        split.update(split_by_seed(name, members, _folder_seed))
    return split


def score_rows(paths: Sequence[Path], compensated: bool = False) -> list[V2Row]:
    """Every result file under ``paths`` scored, one row each (a sharded run's files one row)."""
    return [score_row(name, files, compensated) for name, files in group_rows(result_files(paths)).items()]


def result_txt(rows: Sequence[V2Row]) -> str:
    """``result.txt`` byte for byte: a tab-separated header and ``str(float)`` values, ``\\n``-joined, no final
    newline. An empty bucket (where the reference crashes) is written as ``-``."""
    lines = ["\t".join(("Model", *COLUMNS))]
    for row in rows:
        cells = ["-" if v is None else str(v) for v in row.values().values()]
        lines.append("\t".join([row.name, *cells]))
    return "\n".join(lines)

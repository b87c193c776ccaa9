"""Paired comparison of two prediction folders of the same samples: ``longbench compare A B``.

Both folders are scored as ``longbench eval`` scores them; each task's samples are paired (by ``_id``
when every record has one, else by position with equal gold answers) and the difference A - B of
every task, category and average comes with a paired bootstrap 95% interval and a two-sided p-value
(:mod:`longbench.stats`: both models resampled on the same indices). Holm's step-down adjustment of
the task p-values is reported beside them, because 21 tasks tested at 5% flag one by chance in
three comparisons of equal models.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from longbench.errors import LongBenchError
from longbench.evaluation import ModelResult, evaluate
from longbench.predictions import Prediction
from longbench.published import PAPER_CATEGORIES, display_name, paper_layout
from longbench.reports import Table, category_scores
from longbench.stats import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    Levels,
    bootstrap_p,
    interval,
    levels,
    paired_resamples,
)

ALPHA = 0.05


@dataclass(frozen=True)
class Row:
    """One compared quantity: both scores, their difference, its interval and p-values."""

    a: float
    b: float
    diff: float
    ci95: list[float]
    p: float
    p_holm: float | None = None

    def as_json(self) -> dict[str, object]:
        row: dict[str, object] = {"a": self.a, "b": self.b, "diff": self.diff, "ci95": self.ci95, "p": self.p}
        if self.p_holm is not None:
            row["p_holm"] = self.p_holm
        return row


@dataclass
class Comparison:
    """The comparison of model ``a`` with model ``b``."""

    a: str
    b: str
    tasks: dict[str, Row]
    categories: dict[str, dict[str, Row]]  # language -> category -> row
    average: dict[str, Row]  # language -> row
    samples: dict[str, list[tuple[Prediction, float, float]]]  # task -> (record of A, score A, score B)
    signature: str

    def comparison_json(self) -> str:
        data = {
            "a": self.a,
            "b": self.b,
            "tasks": {task: row.as_json() for task, row in self.tasks.items()},
            "categories": {
                lang: {c: row.as_json() for c, row in cats.items()} for lang, cats in self.categories.items()
            },
            "average": {lang: row.as_json() for lang, row in self.average.items()},
            "bootstrap": {"resamples": DEFAULT_RESAMPLES, "seed": DEFAULT_SEED, "paired": True},
            "alpha": ALPHA,
            "signature": self.signature,
        }
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"

    def table(self) -> Table:
        header = ["", self.a, self.b, "diff", "95% CI", "p", "sig"]
        rows = [_cells(display_name(task), row) for task, row in self.tasks.items()]
        for language, cats in self.categories.items():
            label = {"en": "English", "zh": "Chinese"}[language]
            rows += [_cells(f"{label}: {PAPER_CATEGORIES[c]}", row) for c, row in cats.items()]
            if language in self.average:
                rows.append(_cells(f"{label}: Avg", self.average[language]))
        return Table(f"{self.a} vs {self.b} (paired, same samples)", header, rows, self.signature)

    def notes(self) -> list[str]:
        n = len(self.tasks)
        flagged = sum(1 for row in self.tasks.values() if row.p < ALPHA)
        return [
            f"sig: * p < {ALPHA} for this one comparison; ** still below {ALPHA} after Holm's adjustment "
            f"over the {n} tasks; p <= {1 / (DEFAULT_RESAMPLES + 1):.3f} is the smallest p {DEFAULT_RESAMPLES} "
            "resamples can show",
            f"multiple comparisons: {n} task tests at {ALPHA} flag about {n * ALPHA:.1f} by chance when the "
            f"models are equal; {flagged} flagged here. Trust the ** marks, the categories and the averages.",
            f"diff = {self.a} - {self.b}; paired bootstrap over samples, {DEFAULT_RESAMPLES} resamples, "
            f"seed {DEFAULT_SEED}",
            f"signature: {self.signature}",
        ]


def _cells(label: str, row: Row) -> list[str]:
    mark = "**" if row.p_holm is not None and row.p_holm < ALPHA else "*" if row.p < ALPHA else ""
    return [
        label,
        f"{row.a:.2f}",
        f"{row.b:.2f}",
        f"{row.diff:+.2f}",
        f"[{row.ci95[0]:+.2f}, {row.ci95[1]:+.2f}]",
        _p_cell(row.p),
        mark,
    ]


def _p_cell(p: float) -> str:
    """The p-value as printed: the bootstrap's smallest possible value, 1 / (resamples + 1), is a bound."""
    floor = 1 / (DEFAULT_RESAMPLES + 1)
    return f"<= {floor:.3f}" if p <= round(floor, 4) else f"{p:.3f}"


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order."""
    order = np.argsort(p_values, kind="stable")
    m = len(p_values)
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def _pair_task(task: str, a: list[Prediction], b: list[Prediction]) -> list[int]:
    """For each record of ``a``, the position of the same sample in ``b``; LongBenchError when they differ."""
    if len(a) != len(b):
        raise LongBenchError(
            f"compare: {task}: the folders hold different samples ({len(a)} vs {len(b)} records)"
        )
    if all(r.id is not None for r in a) and all(r.id is not None for r in b):
        where = {r.id: i for i, r in enumerate(b)}
        missing = [r.id for r in a if r.id not in where]
        if missing:
            raise LongBenchError(f"compare: {task}: the folders hold different samples (_id {missing[0]!r})")
        return [where[r.id] for r in a]  # type: ignore[index]
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if x.answers != y.answers:
            raise LongBenchError(
                f"compare: {task}: the folders hold different samples (record {i + 1}: answers differ)"
            )
    return list(range(len(a)))


def _score_one(folder: Path, corrected: bool, workers: int | None) -> ModelResult:
    results = evaluate([folder], corrected=corrected, workers=workers)
    return results[0]


def _rows(
    a_scores: Mapping[str, float | None],
    b_scores: Mapping[str, float | None],
    diffs: Mapping[str, np.ndarray],
    observed: Mapping[str, float],
) -> dict[str, Row]:
    """A row for every key with both scores: the printed scores' difference, its interval and p-value."""
    rows = {}
    for key, resampled in diffs.items():
        a, b = a_scores.get(key), b_scores.get(key)
        if a is None or b is None:
            continue
        p = round(bootstrap_p(resampled, observed[key]), 4)
        rows[key] = Row(a=round(a, 2), b=round(b, 2), diff=round(a - b, 2), ci95=interval(resampled), p=p)
    return rows


def pair_samples(a: ModelResult, b: ModelResult) -> dict[str, list[tuple[Prediction, float, float]]]:
    """Task -> (record of A, score of A, score of B) for each sample; LongBenchError naming a task that differs."""
    only_one = sorted(set(a.scores) ^ set(b.scores))
    if only_one:
        raise LongBenchError(f"compare: {only_one[0]}: present in only one of the two folders")
    samples: dict[str, list[tuple[Prediction, float, float]]] = {}
    for task in a.scores:
        order = _pair_task(task, a.predictions.tasks[task], b.predictions.tasks[task])
        b_scores = b.scores[task].samples
        samples[task] = [
            (record, s.score, b_scores[j].score)
            for record, s, j in zip(a.predictions.tasks[task], a.scores[task].samples, order, strict=True)
        ]
    return samples


def _task_rows(a: ModelResult, b: ModelResult, boot: Levels, observed: Levels) -> dict[str, Row]:
    """Every task's row, with Holm's adjusted p-value over the tasks."""
    rows = _rows(
        {t: a.task_score(t) for t in a.scores},
        {t: b.task_score(t) for t in b.scores},
        boot.tasks,
        {t: float(v[0]) for t, v in observed.tasks.items()},
    )
    adjusted = holm([row.p for row in rows.values()])
    return {t: replace(row, p_holm=round(h, 4)) for (t, row), h in zip(rows.items(), adjusted, strict=True)}


def _table_rows(
    a: ModelResult, b: ModelResult, boot: Levels, observed: Levels
) -> tuple[dict[str, dict[str, Row]], dict[str, Row]]:
    """Per language: the category rows, and the average row when the table is complete."""
    categories, average = {}, {}
    for lang in boot.categories:
        a_cat, b_cat = category_scores(a, lang), category_scores(b, lang)
        obs = {c: float(v[0]) for c, v in observed.categories[lang].items()}
        categories[lang] = _rows(a_cat, b_cat, boot.categories[lang], obs)
        if lang in boot.averages:
            obs_avg = {"Avg": float(observed.averages[lang][0])}
            row = _rows(a_cat, b_cat, {"Avg": boot.averages[lang]}, obs_avg)
            average.update({lang: row["Avg"]} if row else {})
    return categories, average


def compare_results(a: ModelResult, b: ModelResult) -> Comparison:
    """Pair the samples of two scored models and compare them at every level."""
    samples = pair_samples(a, b)
    per_a = {t: [x[1] for x in rows] for t, rows in samples.items()}
    per_b = {t: [x[2] for x in rows] for t, rows in samples.items()}
    layouts = {lang: paper_layout(lang) for lang in ("en", "zh")}
    boot = levels(paired_resamples(per_a, per_b), layouts)
    # the observed differences, unrounded, through the same arithmetic (one "resample": the data itself)
    observed = levels({t: np.array([100 * (np.mean(per_a[t]) - np.mean(per_b[t]))]) for t in per_a}, layouts)
    categories, average = _table_rows(a, b, boot, observed)
    signature = " ; ".join(sorted({a.signature(), b.signature()}))
    return Comparison(
        a.name, b.name, _task_rows(a, b, boot, observed), categories, average, samples, signature
    )


def compare_folders(a: Path, b: Path, corrected: bool = False, workers: int | None = None) -> Comparison:
    """Score both folders and compare them (raises LongBenchError when they hold different samples)."""
    return compare_results(_score_one(a, corrected, workers), _score_one(b, corrected, workers))


def comparison_files(comparison: Comparison, out_dir: Path) -> dict[Path, str]:
    """``comparison.json``, ``comparison.md``, ``comparison.csv`` and the paired per-sample scores."""
    table = comparison.table()
    lines = []
    for task, rows in comparison.samples.items():
        for record, score_a, score_b in rows:
            row: dict[str, object] = {"dataset": task, "index": record.index, "a": score_a, "b": score_b}
            if record.id is not None:
                row["_id"] = record.id
            lines.append(json.dumps(row, ensure_ascii=False))
    return {
        out_dir / "comparison.json": comparison.comparison_json(),
        out_dir / "comparison.md": table.markdown()
        + "\n"
        + "\n".join(f"- {n}" for n in comparison.notes())
        + "\n",
        out_dir / "comparison.csv": table.csv(),
        out_dir / "paired_samples.jsonl": "\n".join(lines) + "\n",
    }

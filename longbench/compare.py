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
from longbench.evaluation import ModelResult, score_models
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
from longbench.v2.scoring import V2Row, score_rows

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

    def files(self, out_dir: Path) -> dict[Path, str]:
        """The comparison's files in ``out_dir`` (see :func:`comparison_files`)."""
        return comparison_files(self, out_dir)

    def quantities(self) -> dict[str, Row]:
        """Every compared quantity by its label in the table: tasks, then each language's categories and Avg."""
        rows = {display_name(task): row for task, row in self.tasks.items()}
        for language, cats in self.categories.items():
            label = {"en": "English", "zh": "Chinese"}[language]
            rows.update({f"{label}: {PAPER_CATEGORIES[c]}": row for c, row in cats.items()})
            if language in self.average:
                rows[f"{label}: Avg"] = self.average[language]
        return rows

    def table(self) -> Table:
        header = ["", self.a, self.b, "diff", "95% CI", "p", "sig"]
        rows = [_cells(label, row) for label, row in self.quantities().items()]
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


def _score_one(
    folders: Sequence[Path],
    corrected: bool,
    workers: int | None,
    tasks: Sequence[str] | None = None,
    e: bool = False,
) -> ModelResult:
    """One model from ``folders`` (shard folders of one run merged by ``_id``)."""
    from longbench.predictions import read_model

    name = Path(folders[0]).resolve().name
    model = read_model(name, folders, e, tasks)
    return score_models([model], e, corrected, workers)[0]


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


def compare_folders(
    a: Path | Sequence[Path],
    b: Path | Sequence[Path],
    corrected: bool = False,
    workers: int | None = None,
    tasks: Sequence[str] | None = None,
    e: bool = False,
) -> Comparison:
    """Score both folders (only ``tasks`` when given) and compare them (raises LongBenchError when they hold
    different samples)."""
    return compare_results(
        _score_one(a, corrected, workers, tasks, e), _score_one(b, corrected, workers, tasks, e)
    )


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
    return _file_set(out_dir, comparison.comparison_json(), table, comparison.notes(), lines)


@dataclass
class V2Comparison:
    """The paired comparison of two LongBench v2 rows: every column and domain, on the records both hold."""

    a: str
    b: str
    columns: dict[str, Row]
    domains: dict[str, Row]
    samples: list[tuple[str, float, float]]  # (_id, accuracy of A, accuracy of B), in _id order
    signature: str

    def comparison_json(self) -> str:
        data = {
            "a": self.a,
            "b": self.b,
            "columns": {name: row.as_json() for name, row in self.columns.items()},
            "domains": {name: row.as_json() for name, row in self.domains.items()},
            "bootstrap": {"resamples": DEFAULT_RESAMPLES, "seed": DEFAULT_SEED, "paired": True},
            "alpha": ALPHA,
            "signature": self.signature,
        }
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"

    def quantities(self) -> dict[str, Row]:
        """Every compared quantity: the six columns, then the domains."""
        return {**self.columns, **self.domains}

    def table(self) -> Table:
        header = ["", self.a, self.b, "diff", "95% CI", "p", "sig"]
        rows = [_cells(name, row) for name, row in self.quantities().items()]
        return Table(
            f"{self.a} vs {self.b} (LongBench v2, paired, same records)", header, rows, self.signature
        )

    def notes(self) -> list[str]:
        return [
            f"*: p < {ALPHA}; columns and domains are computed from the same records, so they are not "
            "independent tests",
            f"diff = {self.a} - {self.b}; paired bootstrap over records, {DEFAULT_RESAMPLES} resamples, "
            f"seed {DEFAULT_SEED}",
        ]

    def files(self, out_dir: Path) -> dict[Path, str]:
        lines = [json.dumps({"_id": i, "a": x, "b": y}, ensure_ascii=False) for i, x, y in self.samples]
        return _file_set(out_dir, self.comparison_json(), self.table(), self.notes(), lines)


def _one_v2_row(folders: Sequence[Path], compensated: bool) -> V2Row:
    rows = score_rows(folders, compensated)
    if len(rows) != 1:
        names = ", ".join(row.name for row in rows)
        where = ", ".join(map(str, folders))
        raise LongBenchError(f"compare --v2: {where} holds {len(rows)} result rows ({names}); give one each")
    return rows[0]


def compare_v2_rows(a: V2Row, b: V2Row) -> V2Comparison:
    """Pair two v2 rows by ``_id`` and compare every column and domain (paired bootstrap, same draws)."""
    from longbench.stats import finite_interval, paired_subset_resamples
    from longbench.v2.reports import signature

    a_ids = [s.sample_id for s in a.ordered()]
    b_ids = [s.sample_id for s in b.ordered()]
    if a_ids != b_ids:
        only = sorted(set(a_ids) ^ set(b_ids))
        detail = f"_id {only[0]!r} in one only" if only else "duplicate _id"
        raise LongBenchError(
            f"compare --v2: {a.name} and {b.name} hold different records ({len(a_ids)} vs {len(b_ids)}; {detail})"
        )
    acc_a, acc_b, subsets = a.accuracies(), b.accuracies(), a.subsets()
    diffs = paired_subset_resamples(acc_a, acc_b, subsets)
    values_a = {**a.values(), **a.domain_values()}
    values_b = {**b.values(), **b.domain_values()}
    rows: dict[str, Row] = {}
    for name, resampled in diffs.items():
        x, y = values_a.get(name), values_b.get(name)
        bounds = finite_interval(resampled)
        if x is None or y is None or bounds is None:
            continue
        exact = _subset_difference(acc_a, acc_b, subsets[name])
        p = round(bootstrap_p(resampled[np.isfinite(resampled)], exact), 4)
        rows[name] = Row(a=x, b=y, diff=round(x - y, 1), ci95=bounds, p=p)
    columns = {
        name: rows[name] for name in ("Overall", "Easy", "Hard", "Short", "Medium", "Long") if name in rows
    }
    domains = {name: row for name, row in rows.items() if name not in columns}
    samples = list(zip(a_ids, acc_a, acc_b, strict=True))
    return V2Comparison(
        a.name, b.name, columns, domains, samples, " ; ".join(sorted({signature(a), signature(b)}))
    )


def _subset_difference(a: Sequence[float], b: Sequence[float], mask: Sequence[bool]) -> float:
    """100 x (mean of a - mean of b) over the records in ``mask`` (the observed difference, unrounded)."""
    chosen = np.asarray(mask, dtype=bool)
    return float(100 * (np.mean(np.asarray(a)[chosen]) - np.mean(np.asarray(b)[chosen])))


def compare_v2_folders(a: Sequence[Path], b: Sequence[Path], compensated: bool = False) -> V2Comparison:
    """Score one v2 row from each side's folders (or result files; shards merged) and compare them."""
    return compare_v2_rows(_one_v2_row(a, compensated), _one_v2_row(b, compensated))


def _file_set(
    out_dir: Path, data: str, table: Table, notes: Sequence[str], samples: Sequence[str]
) -> dict[Path, str]:
    """The files of a comparison, v1's or v2's: the JSON, the table as Markdown (with its notes) and CSV, and the
    paired samples as JSON lines."""
    return {
        out_dir / "comparison.json": data,
        out_dir / "comparison.md": table.markdown() + "\n" + "\n".join(f"- {n}" for n in notes) + "\n",
        out_dir / "comparison.csv": table.csv(),
        out_dir / "paired_samples.jsonl": "\n".join(samples) + "\n",
    }

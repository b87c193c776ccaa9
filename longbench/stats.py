"""Uncertainty of scores: seeded, vectorised bootstrap over samples, and paired bootstrap tests.

Scores follow the paper's arithmetic: a task score is 100 x the mean of its per-sample scores, a
category score the mean of its task scores, a table's average the mean of its categories. A
resample draws, for every task independently, as many samples as the task has (with replacement)
and recomputes each level from the resampled task scores, so categories and averages vary exactly
as their tasks do.

Indices are drawn as ``floor(u * n)`` from ``Generator.random``, one block of ``resamples x n``
uniforms per task in the order given. Because ``random`` draws one 64-bit word per number with no
buffering, a loop that draws one row at a time gives the same indices, which the tests check.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0

K = TypeVar("K", bound=Hashable)


def resample_indices(rng: np.random.Generator, n: int, resamples: int) -> np.ndarray:
    """``resamples x n`` indices into ``n`` samples, drawn with replacement."""
    return np.minimum((rng.random((resamples, n)) * n).astype(np.int64), n - 1)


def task_resamples(
    samples: Mapping[K, Sequence[float]], resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> dict[K, np.ndarray]:
    """Task -> the task score (x100) of each resample, a vector of ``resamples`` numbers."""
    rng = np.random.default_rng(seed)
    result = {}
    for task, values in samples.items():
        scores = np.asarray(values, dtype=np.float64)
        result[task] = 100 * scores[resample_indices(rng, len(scores), resamples)].mean(axis=1)
    return result


def paired_resamples(
    a: Mapping[str, Sequence[float]],
    b: Mapping[str, Sequence[float]],
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> dict[str, np.ndarray]:
    """Task -> score(a) - score(b) (x100) of each resample, both models resampled on the same indices."""
    rng = np.random.default_rng(seed)
    result = {}
    for task, values in a.items():
        diffs = np.asarray(values, dtype=np.float64) - np.asarray(b[task], dtype=np.float64)
        result[task] = 100 * diffs[resample_indices(rng, len(diffs), resamples)].mean(axis=1)
    return result


def group_means(
    per_task: Mapping[str, np.ndarray], groups: Mapping[str, Sequence[str]]
) -> dict[str, np.ndarray]:
    """Group -> mean of its tasks' vectors, for the groups whose tasks are all present."""
    return {
        name: np.mean([per_task[t] for t in tasks], axis=0)
        for name, tasks in groups.items()
        if tasks and all(t in per_task for t in tasks)
    }


def interval(values: np.ndarray) -> list[float]:
    """The 95% percentile interval [lo, hi] of bootstrap values, rounded to 2 decimals like result.json."""
    lo, hi = np.percentile(values, [2.5, 97.5])
    return [round(float(lo), 2), round(float(hi), 2)]


def bootstrap_p(diffs: np.ndarray, observed: float) -> float:
    """Two-sided p-value of "no difference" from paired bootstrap differences (shifted to the null).

    The share of resampled differences, centred on zero, at least as far from zero as the observed
    one; with ``(count + 1) / (resamples + 1)`` so that it is never 0.
    """
    centred = diffs - diffs.mean()
    extreme = np.count_nonzero(np.abs(centred) >= abs(observed) - 1e-12)
    return float((extreme + 1) / (len(diffs) + 1))


@dataclass(frozen=True)
class Levels:
    """Resampled scores at every level: tasks, categories per table, and each table's average."""

    tasks: dict[str, np.ndarray]
    categories: dict[str, dict[str, np.ndarray]]  # language -> category -> vector
    averages: dict[str, np.ndarray]  # language -> vector


def levels(per_task: dict[str, np.ndarray], layouts: Mapping[str, Mapping[str, Sequence[str]]]) -> Levels:
    """Categories and averages of each table (``language -> category -> tasks``) from task resamples."""
    categories, averages = {}, {}
    for language, layout in layouts.items():
        cats = group_means(per_task, layout)
        categories[language] = cats
        if len(cats) == len(layout):
            averages[language] = np.mean(list(cats.values()), axis=0)
    return Levels(per_task, categories, averages)


def ci95(lv: Levels) -> dict[str, object]:
    """``summary.json``'s ``ci95``: tasks, categories and averages -> [lo, hi]."""
    return {
        "tasks": {task: interval(v) for task, v in lv.tasks.items()},
        "categories": {
            lang: {c: interval(v) for c, v in cats.items()} for lang, cats in lv.categories.items()
        },
        "average": {lang: interval(v) for lang, v in lv.averages.items()},
    }


def _subset_means(picked: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Per resample (row of ``picked``), 100 x the mean of the drawn samples inside ``masks``; NaN where a
    resample drew none of them."""
    counts = masks.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100 * (picked * masks).sum(axis=1) / counts


def subset_resamples(
    values: Sequence[float],
    subsets: Mapping[K, Sequence[bool]],
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> dict[K, np.ndarray]:
    """One bootstrap over all samples, scored on every subset: subset -> 100 x its mean in each resample.

    For benchmarks whose quantities are accuracies over overlapping subsets of one sample set (LongBench
    v2's Overall, difficulty, length and domain columns): every column is recomputed from the same draw.
    """
    scores = np.asarray(values, dtype=np.float64)
    index = resample_indices(np.random.default_rng(seed), len(scores), resamples)
    picked = scores[index]
    return {
        name: _subset_means(picked, np.asarray(mask, dtype=bool)[index]) for name, mask in subsets.items()
    }


def paired_subset_resamples(
    a: Sequence[float],
    b: Sequence[float],
    subsets: Mapping[K, Sequence[bool]],
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> dict[K, np.ndarray]:
    """Subset -> score(a) - score(b) (x100) in each resample, both models drawn on the same indices."""
    first, second = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    index = resample_indices(np.random.default_rng(seed), len(first), resamples)
    result = {}
    for name, mask in subsets.items():
        chosen = np.asarray(mask, dtype=bool)[index]
        result[name] = _subset_means(first[index], chosen) - _subset_means(second[index], chosen)
    return result


def finite_interval(values: np.ndarray) -> list[float] | None:
    """:func:`interval` of the finite values (a resample that drew no sample of a subset is left out);
    None when there are none."""
    finite = values[np.isfinite(values)]
    return interval(finite) if finite.size else None

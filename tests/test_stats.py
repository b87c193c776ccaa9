"""Bootstrap intervals: identical to a plain per-resample loop, close to the normal approximation, and
following the paper's arithmetic (category = mean of tasks, average = mean of categories)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from longbench.compare import holm
from longbench.published import paper_layout
from longbench.stats import ci95, interval, levels, paired_resamples, task_resamples


def _loop_bootstrap(samples: dict[str, list[float]], resamples: int, seed: int) -> dict[str, list[float]]:
    """The straightforward version: one resample at a time, one index at a time, Python sums."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[float]] = {}
    for task, values in samples.items():
        n = len(values)
        scores = []
        for _ in range(resamples):
            uniforms = rng.random(n)
            picked = [values[min(int(u * n), n - 1)] for u in uniforms]
            scores.append(100 * float(np.mean(picked)))
        out[task] = scores
    return out


def _random_samples(seed: int, sizes: dict[str, int]) -> dict[str, list[float]]:
    rnd = random.Random(seed)
    return {task: [rnd.choice([0.0, 1.0, rnd.random()]) for _ in range(n)] for task, n in sizes.items()}


def test_vectorised_bootstrap_equals_the_loop() -> None:
    samples = _random_samples(1, {"hotpotqa": 200, "trec": 37, "lcc": 5})
    fast = task_resamples(samples, resamples=300, seed=7)
    slow = _loop_bootstrap(samples, resamples=300, seed=7)
    for task in samples:
        np.testing.assert_array_equal(fast[task], np.array(slow[task]))
        assert interval(fast[task]) == interval(np.array(slow[task]))


def test_seed_decides_the_resamples() -> None:
    samples = _random_samples(2, {"hotpotqa": 150})
    assert np.array_equal(
        task_resamples(samples, 100, 3)["hotpotqa"], task_resamples(samples, 100, 3)["hotpotqa"]
    )
    assert not np.array_equal(
        task_resamples(samples, 100, 3)["hotpotqa"], task_resamples(samples, 100, 4)["hotpotqa"]
    )


@pytest.mark.parametrize("n", [200, 500])
def test_interval_close_to_normal_approximation(n: int) -> None:
    rnd = random.Random(n)
    values = [1.0 if rnd.random() < 0.35 else rnd.random() * 0.3 for _ in range(n)]
    lo, hi = interval(task_resamples({"t": values}, resamples=4000, seed=0)["t"])
    mean = 100 * float(np.mean(values))
    se = 100 * float(np.std(values, ddof=1)) / math.sqrt(n)
    assert lo == pytest.approx(mean - 1.96 * se, abs=0.12 * 1.96 * se)
    assert hi == pytest.approx(mean + 1.96 * se, abs=0.12 * 1.96 * se)


def test_categories_and_average_follow_the_paper_arithmetic() -> None:
    """Constant samples make every resample equal the score itself: the interval collapses onto the
    category mean of task scores and the mean of categories (not the mean of all tasks)."""
    layout = {"en": paper_layout("en")}
    tasks = [t for ts in layout["en"].values() for t in ts]
    value = {t: (k * 7 % 10) / 10 for k, t in enumerate(tasks)}
    value.update({"lcc": 1.0, "repobench-p": 0.9, "passage_count": 0.0, "passage_retrieval_en": 1.0})
    samples = {t: [value[t]] * (3 + k) for k, t in enumerate(tasks)}
    result = ci95(levels(task_resamples(samples, resamples=50, seed=0), layout))
    categories = {c: sum(100 * value[t] for t in ts) / len(ts) for c, ts in layout["en"].items()}
    for category, expected in categories.items():
        assert result["categories"]["en"][category] == pytest.approx([expected, expected], abs=0.005 + 1e-9)
    average = sum(categories.values()) / len(categories)
    assert abs(average - sum(100 * v for v in value.values()) / len(value)) > 0.5  # the two means differ
    assert result["average"]["en"] == pytest.approx([average, average], abs=0.005 + 1e-9)


def test_paired_resamples_use_the_same_indices_for_both_models() -> None:
    a = _random_samples(5, {"qasper": 120})
    b = {"qasper": [v + 0.25 for v in a["qasper"]]}
    diffs = paired_resamples(b, a, resamples=200, seed=1)["qasper"]
    np.testing.assert_allclose(diffs, 25.0, atol=1e-9)  # a constant per-sample gap has no spread


def test_holm_against_its_definition() -> None:
    p = [0.01, 0.04, 0.03, 0.2]
    # sorted: 0.01*4=0.04, 0.03*3=0.09, 0.04*2=0.08 -> max(0.09, 0.08)=0.09, 0.2*1 -> 0.2
    assert holm(p) == pytest.approx([0.04, 0.09, 0.09, 0.2])

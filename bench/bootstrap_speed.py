"""Bootstrap speed: ``longbench.stats`` (vectorised numpy) versus a per-resample Python loop.

Both draw the same indices from the same seed (one ``Generator.random`` row per resample), so they
give identical intervals; the table shows the wall time of each for the 4,750 samples of LongBench
v1 (the 21 tasks' real sample counts) and the speed-up, plus the paired (two-model) variant and the
full per-task/category/average computation ``longbench eval`` does.

Per-sample scores are random numbers: the time does not depend on their values.
Usage: ``python bench/bootstrap_speed.py [--resamples N] [--runs N]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from longbench.published import paper_layout
from longbench.stats import ci95, levels, paired_resamples, task_resamples
from longbench.tasks import all_tasks


def loop_bootstrap(samples: dict[str, list[float]], resamples: int, seed: int) -> dict[str, list[float]]:
    """One resample at a time: indices from one row of uniforms, then a Python mean."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[float]] = {}
    for task, values in samples.items():
        n = len(values)
        scores = []
        for _ in range(resamples):
            picked = [values[min(int(u * n), n - 1)] for u in rng.random(n)]
            scores.append(100 * sum(picked) / n)
        out[task] = scores
    return out


def best_of(runs: int, work) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    samples = {t.name: rng.random(t.samples).tolist() for t in all_tasks()}
    other = {t: rng.random(len(v)).tolist() for t, v in samples.items()}
    layouts = {lang: paper_layout(lang) for lang in ("en", "zh")}
    n = sum(len(v) for v in samples.values())

    rows = [
        ("loop (per resample, Python)", best_of(1, lambda: loop_bootstrap(samples, args.resamples, 0))),
        (
            "longbench.stats task_resamples",
            best_of(args.runs, lambda: task_resamples(samples, args.resamples, 0)),
        ),
        (
            "eval: tasks + categories + averages + ci95",
            best_of(args.runs, lambda: ci95(levels(task_resamples(samples, args.resamples, 0), layouts))),
        ),
        (
            "compare: paired_resamples",
            best_of(args.runs, lambda: paired_resamples(samples, other, args.resamples, 0)),
        ),
    ]
    print(
        f"{n} samples, {len(samples)} tasks, {args.resamples} resamples; python {platform.python_version()}, "
        f"numpy {np.__version__}, {os.cpu_count()} CPUs"
    )
    print(f"{'what':45} {'seconds':>8} {'vs loop':>8}")
    for name, seconds in rows:
        print(f"{name:45} {seconds:8.3f} {rows[0][1] / seconds:7.1f}x")


if __name__ == "__main__":
    main()

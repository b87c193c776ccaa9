"""Runs of one model made with different seeds: named apart, then summarised as a mean and a spread.

Prediction folders that share a model name are shards of one run, merged by ``_id``, unless their
``run.json`` files record different ``seed`` values: then each seed is a run of its own, named
``<model>@seed<S>``, scored as a model of its own, and :func:`seed_spread` gives, for every headline
quantity of the benchmark, the mean, the sample standard deviation, the minimum and the maximum across runs.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

SEED_MARK = "@seed"


def seeded_name(name: str, seed: Any) -> str:
    """The name of the run of ``name`` made with ``seed``."""
    return f"{name}{SEED_MARK}{seed}"


def split_by_seed(name: str, members: Sequence[T], seed_of: Callable[[T], Any]) -> dict[str, list[T]]:
    """``{name: members}`` when the members (shards) record at most one seed, else one group per seed named
    :func:`seeded_name` (members without a seed join no seeded group: they keep ``name``)."""
    seeds = {json.dumps(seed_of(member), sort_keys=True) for member in members} - {"null"}
    if len(seeds) < 2:
        return {name: list(members)}
    groups: dict[str, list[T]] = {}
    for member in members:
        seed = seed_of(member)
        groups.setdefault(name if seed is None else seeded_name(name, seed), []).append(member)
    return groups


def seed_spread(
    results: Sequence[Any], quantities: Callable[[Any], Mapping[str, float | None]]
) -> dict[str, dict[str, dict[str, float | int]]]:
    """Model -> quantity -> {"mean", "std", "min", "max", "runs"} over its seeded runs (models with at
    least two; a quantity missing in a run is left out of that run's numbers)."""
    by_base: dict[str, list[Any]] = {}
    for result in results:
        base, mark, seed = result.name.rpartition(SEED_MARK)
        if mark and seed:
            by_base.setdefault(base, []).append(result)
    spread: dict[str, dict[str, dict[str, float | int]]] = {}
    for base, runs in by_base.items():
        if len(runs) < 2:
            continue
        values: dict[str, list[float]] = {}
        for run in runs:
            for name, value in quantities(run).items():
                if value is not None:
                    values.setdefault(name, []).append(float(value))
        spread[base] = {
            name: {
                "mean": round(statistics.fmean(v), 2),
                "std": round(statistics.stdev(v), 2) if len(v) > 1 else 0.0,
                "min": min(v),
                "max": max(v),
                "runs": len(v),
            }
            for name, v in values.items()
        }
    return spread

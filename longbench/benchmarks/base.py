"""The benchmark definition: what LongBench v1, LongBench-E and LongBench v2 each provide to the pipeline.

A :class:`Benchmark` names its folders and carries two halves that the rest of the pipeline uses without
knowing which benchmark it holds:

- ``runs`` (a :class:`RunSpec`): how a source's records become model calls and prediction lines (its tasks
  or groups, its records from a source, the calls of a sample, the prediction line, the settings that must
  match on resume). The runner uses only this half.
- ``scores`` (a :class:`ScoreSpec`): how prediction lines are read and scored, how scores aggregate into
  the benchmark's tables, its published rows and its signature fields. Evaluation, comparison and reports
  use only this half.

Adding a benchmark means one new definition registered in :mod:`longbench.benchmarks`, not a fork.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class RunSpec(Protocol):
    """The prediction half of a benchmark (filled in by the runner's side)."""


class ScoreSpec(Protocol):
    """The scoring half of a benchmark (filled in by the evaluation side)."""


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: its name in the registry, its title in tables, its default folders and its two halves."""

    name: str  # registry key: "v1", "e", "v2"
    title: str  # "LongBench", "LongBench-E", "LongBench v2"
    pred_root: str  # default prediction folder root: pred, pred_e, pred_v2
    metrics_root: str  # default eval output root: metrics, metrics_e, metrics_v2
    runs: Any  # a RunSpec
    scores: Any  # a ScoreSpec

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


class RunSpec(Protocol):
    """The prediction half of a benchmark (filled in by the runner's side)."""


@dataclass(frozen=True)
class ScoreSettings:
    """What a user chooses about scoring (every benchmark takes all; one that cannot honour a setting
    refuses it in :meth:`ScoreSpec.check`)."""

    corrected: bool = False  # v1/E: score what the reference zeroes (rouge's recursion limit) properly
    compensated: bool = False  # v2: a record with no extracted answer scores 0.25 (result.py's flag)
    tasks: tuple[str, ...] | None = None  # only these tasks (None: every task with predictions)
    workers: int | None = None  # scoring processes


class ScoreSpec(Protocol):
    """The scoring half of a benchmark: how prediction lines are read, validated and scored, how scores
    aggregate into its tables, its published rows, its signature, its bootstrap levels and compared
    quantities. Results are opaque to the callers: they hand them back to the spec that made them.

    A result has a ``name`` and ``signature()``; :meth:`quantities` gives its headline numbers.
    """

    def check(self, settings: ScoreSettings, published: bool) -> None:
        """Refuse, in one line, a setting this benchmark cannot honour (raises LongBenchError)."""

    def default_out(self, names: Sequence[str], settings: ScoreSettings) -> Path:
        """The default output folder of an eval of models ``names``."""

    def evaluate(self, pred_dirs: Sequence[Path], settings: ScoreSettings) -> list[Any]:
        """Read and validate every prediction folder (shards merged by ``_id``) and score every model."""

    def tables(self, results: Sequence[Any], options: Any) -> list[Any]:
        """The benchmark's tables (``longbench.reports.Table``) for ``results`` with ``TableOptions``."""

    def notes(self, results: Sequence[Any], options: Any) -> list[str]:
        """Lines under the tables (``warning:`` lines go to stderr)."""

    def output_files(self, results: Sequence[Any], out_dir: Path, options: Any) -> dict[Path, str]:
        """Every result file of an eval (result, samples, summary with ``ci95``, tables): path -> text."""

    def figures(self, results: Sequence[Any], options: Any) -> dict[str, Any]:
        """The benchmark's figures (name -> matplotlib Figure)."""

    def quantities(self, result: Any) -> Mapping[str, float | None]:
        """The headline numbers of one result (what seed spreads and comparisons are taken over)."""

    def group_runs(self, pred_dirs: Sequence[Path]) -> dict[str, list[Path]]:
        """Run name -> its folders (shards of one run together; runs with different seeds apart, named
        ``<model>@seed<S>``), in first-seen order."""

    def compare(self, a: Sequence[Path], b: Sequence[Path], settings: ScoreSettings) -> Any:
        """The paired comparison of two runs, each one folder or the shard folders of one run (``table()``,
        ``notes()``, ``files(out_dir)``, ``quantities()`` -> label -> row with ``a``, ``b``, ``diff``, ``ci95``,
        ``p``); LongBenchError naming what differs when they do not hold the same samples."""


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: its name in the registry, its title in tables, its default folders and its two halves."""

    name: str  # registry key: "v1", "e", "v2"
    title: str  # "LongBench", "LongBench-E", "LongBench v2"
    pred_root: str  # default prediction folder root: pred, pred_e, pred_v2
    metrics_root: str  # default eval output root: metrics, metrics_e, metrics_v2
    runs: Any  # a RunSpec
    scores: Any  # a ScoreSpec

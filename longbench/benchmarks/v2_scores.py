"""The score half of LongBench v2: ``result.py``'s rows (stored judge trusted, else the answer-extraction
rule), its six columns and the domains, the leaderboard's published rows in the run's mode, one bootstrap
over records for every column, and paired comparison by ``_id``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longbench.benchmarks.base import ScoreSettings
from longbench.errors import LongBenchError


@dataclass(frozen=True)
class V2Scores:
    """LongBench v2: one row per result file (a sharded run's files one row)."""

    title: str = "LongBench v2"

    def check(self, settings: ScoreSettings, published: bool) -> None:
        if settings.corrected:
            raise LongBenchError("corrected scoring applies to LongBench v1 and LongBench-E only")
        if settings.tasks is not None:
            raise LongBenchError("LongBench v2 has no tasks to choose; its rows are its result files")

    def default_out(self, names: Sequence[str], settings: ScoreSettings) -> Path:
        from longbench.result_folder import results_folder_name

        root = Path("metrics_v2_compensated" if settings.compensated else "metrics_v2")
        # a result file is named after its model
        stems = [name.removesuffix(".jsonl").removesuffix(".json") for name in names]
        return root / results_folder_name(stems)

    def evaluate(self, pred_dirs: Sequence[Path], settings: ScoreSettings) -> list[Any]:
        from longbench.v2.scoring import score_rows

        return score_rows(pred_dirs, compensated=settings.compensated)

    def tables(self, results: Sequence[Any], options: Any) -> list[Any]:
        from longbench.v2.reports import tables

        return tables(results, options)

    def notes(self, results: Sequence[Any], options: Any) -> list[str]:
        from longbench.v2.reports import notes

        return notes(results, options)

    def output_files(self, results: Sequence[Any], out_dir: Path, options: Any) -> dict[Path, str]:
        from longbench.v2.reports import output_files

        return output_files(results, out_dir, options)

    def figures(self, results: Sequence[Any], options: Any) -> dict[str, Any]:
        from longbench.plots import v2_figures

        return v2_figures(results)

    def quantities(self, result: Any) -> Mapping[str, float | None]:
        return {**result.values(), **result.domain_values()}

    def group_runs(self, pred_dirs: Sequence[Path]) -> dict[str, list[Path]]:
        from longbench.v2.scoring import group_runs

        return group_runs(pred_dirs)

    def compare(self, a: Sequence[Path], b: Sequence[Path], settings: ScoreSettings) -> Any:
        from longbench.compare import compare_v2_folders

        return compare_v2_folders(a, b, settings.compensated)

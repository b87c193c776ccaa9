"""The score halves of LongBench v1 and LongBench-E: reference ``eval.py`` scoring per task, the paper's
category and per-task tables (v1) or length buckets (E), the README's published rows (v1 only; the paper
publishes no E table), bootstrap levels task -> category -> average, and paired comparison by task."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longbench.benchmarks.base import ScoreSettings
from longbench.errors import LongBenchError


@dataclass(frozen=True)
class V1Scores:
    """LongBench v1 (``e=False``) or LongBench-E (``e=True``), scored as the reference's ``eval.py``."""

    e: bool = False

    @property
    def title(self) -> str:
        return "LongBench-E" if self.e else "LongBench"

    def check(self, settings: ScoreSettings, published: bool) -> None:
        if settings.compensated:
            raise LongBenchError("compensated scoring applies to LongBench v2 only")
        if published and self.e:
            raise LongBenchError(
                "LongBench-E has no published table (the paper shows E results only as a figure); drop --published"
            )
        if settings.tasks is not None:
            from longbench.tasks import select_tasks

            select_tasks(list(settings.tasks), None, e=self.e)  # an unknown task is one line naming it

    def default_out(self, names: Sequence[str], settings: ScoreSettings) -> Path:
        root = Path("metrics" + ("_e" if self.e else "") + ("_corrected" if settings.corrected else ""))
        from longbench.result_folder import results_folder_name

        return root / results_folder_name(names)

    def evaluate(self, pred_dirs: Sequence[Path], settings: ScoreSettings) -> list[Any]:
        from longbench.evaluation import evaluate

        return evaluate(pred_dirs, self.e, settings.corrected, settings.workers, settings.tasks)

    def tables(self, results: Sequence[Any], options: Any) -> list[Any]:
        from longbench.reports import e_tables, v1_tables

        return (e_tables if self.e else v1_tables)(results, options)

    def notes(self, results: Sequence[Any], options: Any) -> list[str]:
        from longbench.reports import notes

        return notes(results, options)

    def output_files(self, results: Sequence[Any], out_dir: Path, options: Any) -> dict[Path, str]:
        from longbench.reports import output_files

        return output_files(results, out_dir, options)

    def figures(self, results: Sequence[Any], options: Any) -> dict[str, Any]:
        from longbench.plots import e_figures, v1_figures

        return e_figures(results) if self.e else v1_figures(results, options.published)

    def quantities(self, result: Any) -> Mapping[str, float | None]:
        from longbench.reports import category_scores

        values: dict[str, float | None] = {}
        for language in ("en", "zh"):
            values[f"Avg ({language})"] = category_scores(result, language)["Avg"]
        values.update({task: result.task_score(task) for task in result.scores})
        return values

    def group_runs(self, pred_dirs: Sequence[Path]) -> dict[str, list[Path]]:
        from longbench.predictions import group_by_model

        return group_by_model(pred_dirs)

    def compare(self, a: Sequence[Path], b: Sequence[Path], settings: ScoreSettings) -> Any:
        from longbench.compare import compare_folders

        return compare_folders(a, b, settings.corrected, settings.workers, settings.tasks, self.e)
